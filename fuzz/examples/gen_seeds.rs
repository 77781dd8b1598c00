//! Writes the committed seed corpora, `fuzz/seeds/<target>/`, from vigil's
//! own fixtures and from small audit logs sealed with the fuzz keys:
//!
//! ```text
//! cargo run --manifest-path fuzz/Cargo.toml --example gen_seeds
//! ```
//!
//! It overwrites the seeds it writes and leaves any other file alone, such as
//! the regression seeds (`crash-*`, inputs that once crashed a target).

use std::fs;
use std::path::{Path, PathBuf};
use std::time::Duration;

use vigil_event::{Event, Format, Timestamp, catalog};
use vigil_fuzz::{AUDIT_KEY, FILE_SEPARATOR, ORIGIN, signer};
use vigil_seal::{
    Checkpoint, LineFormat, SealConfig, SealKeys, Sealer, SyncPolicy, Verifier, list_segments,
};
use zeroize::Zeroizing;

fn main() {
    let fuzz = Path::new(env!("CARGO_MANIFEST_DIR"));
    let repo = fuzz.parent().expect("fuzz/ is in the repository");
    let seeds = fuzz.join("seeds");
    let mut w = Writer { seeds };

    // event_json: the golden records, and a few more events.
    let golden = repo.join("crates/vigil-event/tests/golden");
    for path in sorted(&golden) {
        if path.extension().is_some_and(|e| e == "json") {
            w.put(
                "event_json",
                &stem(&path),
                &fs::read(&path).expect("read golden"),
            );
        }
    }
    for (name, ev) in [
        ("minimal", Event::new(catalog::CLIENT_CONNECTED, "c")),
        (
            "controls",
            Event::new(
                catalog::STATEMENT_EXECUTED,
                "a\nb\r\t\u{1b}[31m\u{85}\u{2028}\u{202e}",
            )
            .at(Timestamp::from_micros(0))
            .field("q", "x\" seal.seq=1 =|\\")
            .field("Bad Key", 1u64)
            .field("neg", -5i64)
            .field("ok", true),
        ),
    ] {
        let mut line = Vec::new();
        Format::Json.write(&ev, &mut line);
        w.put("event_json", name, &line);
    }

    // sealed_line, verify_log, checkpoint_note: logs sealed with the fuzz keys.
    for format in [LineFormat::Json, LineFormat::Text, LineFormat::Cef] {
        let dir = tempfile::tempdir().expect("temporary directory");
        seal_log(dir.path(), format);
        let segments: Vec<Vec<u8>> = list_segments(dir.path())
            .expect("list segments")
            .into_iter()
            .map(|(_, path)| fs::read(path).expect("read segment"))
            .collect();
        let report = Verifier::new()
            .keys(&|v: u32| (v == 1).then(|| Zeroizing::new(AUDIT_KEY)))
            .public_key(signer().verifier())
            .verify(&[dir.path().to_path_buf()])
            .expect("verify");
        assert!(report.verified(), "{format:?}: {:?}", report.failure);
        assert!(segments.len() > 1, "{format:?}: one segment");
        let name = format.as_str();
        w.put("verify_log", &format!("{name}-one-segment"), &segments[0]);
        w.put(
            "verify_log",
            &format!("{name}-segments"),
            &segments.join(&[FILE_SEPARATOR][..]),
        );
        // Without the first segment, as retention leaves it.
        fs::remove_file(&list_segments(dir.path()).expect("list segments")[0].1)
            .expect("remove the first segment");
        let trimmed = Verifier::new()
            .keys(&|v: u32| (v == 1).then(|| Zeroizing::new(AUDIT_KEY)))
            .public_key(signer().verifier())
            .verify(&[dir.path().to_path_buf()])
            .expect("verify");
        assert!(trimmed.verified(), "{format:?}: {:?}", trimmed.failure);
        assert!(trimmed.trimmed.is_some(), "{format:?}: not trimmed");
        w.put(
            "verify_log",
            &format!("{name}-trimmed"),
            &segments[1..].join(&[FILE_SEPARATOR][..]),
        );
        let lines: Vec<&[u8]> = segments[0]
            .split(|&b| b == b'\n')
            .filter(|l| !l.is_empty())
            .collect();
        w.put("sealed_line", &format!("{name}-start"), lines[0]);
        w.put("sealed_line", &format!("{name}-entry"), lines[1]);
        if let Some(cp) = lines.iter().find(|l| contains(l, b"heckpoint")) {
            w.put("sealed_line", &format!("{name}-checkpoint"), cp);
        }
    }
    let signer = signer();
    let cp = Checkpoint {
        origin: ORIGIN.to_owned(),
        size: 42,
        root: [7; 32],
        extensions: vec!["ext".to_owned()],
    };
    let note = signer.sign(&cp).expect("sign");
    w.put("checkpoint_note", "note", note.as_bytes());
    w.put(
        "checkpoint_note",
        "body",
        cp.body().expect("body").as_bytes(),
    );
    w.put("checkpoint_note", "vkey", signer.verifier_key().as_bytes());
    let witnessed = format!("{note}\u{2014} witness AAAAAAA=\n");
    w.put("checkpoint_note", "two-signatures", witnessed.as_bytes());

    // acra_line: Acra's own logs from vigil-seal's testdata (small files only).
    let acra = repo.join("crates/vigil-seal/testdata/acra");
    for format in ["plaintext", "json", "cef"] {
        let end = fs::read(acra.join("after-end").join(format).join("log.txt")).expect("read");
        w.put("acra_line", &format!("{format}-after-end"), &end);
        let rot = acra.join("rotation").join(format);
        let mut joined = fs::read(rot.join("log.txt.2")).expect("read");
        joined.push(FILE_SEPARATOR);
        joined.extend(fs::read(rot.join("log.txt")).expect("read"));
        w.put("acra_line", &format!("{format}-rotated"), &joined);
    }

    // config_toml: the example configuration and a small one.
    let example = fs::read(repo.join("examples/vigil.toml")).expect("read example");
    w.put("config_toml", "example", &example);
    w.put(
        "config_toml",
        "syslog",
        b"[service]\norigin = \"db-proxy-1\"\n[pipeline]\nqueue_capacity = 1024\noverflow = \"drop\"\n\
          [[sinks]]\nname = \"siem\"\ntype = \"file\"\npath = \"siem.log\"\nformat = \"syslog\"\n\
          min_severity = \"info\"\ninclude = [\"poison\", \"statement\"]\nexclude = [\"auth.failed\"]\n\
          [sinks.syslog]\nfacility = \"local3\"\napp_name = \"vigil\"\n",
    );

    // syslog_ingest: a knob byte (message limit and read size), then a TCP
    // stream or a datagram: the RFC 5424 and RFC 3164 examples, framed.
    for (name, seed) in syslog_ingest_seeds() {
        w.put("syslog_ingest", name, &seed);
    }

    // http_response: a knob byte (read size, low three bits; records in the
    // batch, the other five), then a collector's answer.
    for (name, seed) in http_response_seeds() {
        w.put("http_response", name, &seed);
    }
}

/// The `http_response` seeds: `(name, knob byte then answer)`.
fn http_response_seeds() -> Vec<(&'static str, Vec<u8>)> {
    let knob = |records: u8, read_size: u8| vec![records << 3 | read_size];
    let hec = b"{\"text\":\"Success\",\"code\":0}";
    let mut ok = knob(0, 4);
    ok.extend_from_slice(
        format!(
            "HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: {}\r\n\r\n",
            hec.len()
        )
        .as_bytes(),
    );
    ok.extend_from_slice(hec);

    let bulk: &[u8] = b"{\"took\":3,\"errors\":true,\"items\":[\
        {\"create\":{\"_index\":\"vigil\",\"_id\":\"db1:1\",\"_version\":1,\"result\":\"created\",\"status\":201}},\
        {\"create\":{\"_index\":\"vigil\",\"_id\":\"db1:2\",\"status\":400,\"error\":{\"type\":\"document_parsing_exception\",\
        \"reason\":\"[1:20] failed to parse field [time] of type [date]\",\"caused_by\":{\"type\":\"illegal_argument_exception\",\"reason\":\"failed to parse date field [x]\"}}}},\
        {\"create\":{\"_index\":\"vigil\",\"_id\":\"db1:3\",\"status\":429,\"error\":{\"type\":\"es_rejected_execution_exception\",\"reason\":\"rejected execution\"}}}]}";
    let mut chunked = knob(3, 2);
    chunked.extend_from_slice(
        b"HTTP/1.1 200 OK\r\ncontent-type: application/json\r\nTransfer-Encoding: chunked\r\n\r\n",
    );
    for piece in bulk.chunks(bulk.len().div_ceil(3)) {
        chunked.extend_from_slice(format!("{:x}\r\n", piece.len()).as_bytes());
        chunked.extend_from_slice(piece);
        chunked.extend_from_slice(b"\r\n");
    }
    chunked.extend_from_slice(b"0\r\n\r\n");

    let mut unavailable = knob(1, 0);
    unavailable.extend_from_slice(
        b"HTTP/1.1 503 Service Unavailable\r\nRetry-After: 5\r\nContent-Length: 19\r\n\
          Connection: close\r\n\r\nservice unavailable",
    );
    let mut until_close = knob(1, 3);
    until_close.extend_from_slice(
        b"HTTP/1.1 100 Continue\r\n\r\nHTTP/1.0 401 Unauthorized\r\n\
          WWW-Authenticate: Bearer\r\n\r\n{\"error\":\"invalid token\"}",
    );
    vec![
        ("ok-content-length", ok),
        ("bulk-chunked-item-error", chunked),
        ("unavailable", unavailable),
        ("continue-then-until-close", until_close),
    ]
}

/// The `syslog_ingest` seeds: `(name, knob byte then stream)`.
fn syslog_ingest_seeds() -> Vec<(&'static str, Vec<u8>)> {
    let rfc5424: [&[u8]; 3] = [
        b"<34>1 2003-10-11T22:14:15.003Z mymachine.example.com su - ID47 - \
          \xEF\xBB\xBF'su root' failed for lonvick on /dev/pts/8",
        b"<165>1 2003-08-24T05:14:15.000003-07:00 192.0.2.1 myproc 8710 - - \
          %% It's time to make the do-nuts.",
        b"<165>1 2003-10-11T22:14:15.003Z mymachine.example.com evntslog - ID47 \
          [exampleSDID@32473 iut=\"3\" eventSource=\"Application\" eventID=\"1011\"]\
          [examplePriority@32473 class=\"high\" esc=\"\\\"\\]\\\\\"]",
    ];
    let rfc3164: [&[u8]; 2] = [
        b"<34>Oct 11 22:14:15 mymachine su: 'su root' failed for lonvick on /dev/pts/8",
        b"<13>Feb  5 17:32:18 10.0.0.99 sshd[31255]: Use the BFG!",
    ];
    let counted = |knob: u8, messages: &[&[u8]]| {
        let mut seed = vec![knob];
        for m in messages {
            seed.extend_from_slice(format!("{} ", m.len()).as_bytes());
            seed.extend_from_slice(m);
        }
        seed
    };
    let lines = |knob: u8, messages: &[&[u8]]| {
        let mut seed = vec![knob];
        for m in messages {
            seed.extend_from_slice(m);
            seed.extend_from_slice(b"\r\n");
        }
        seed
    };
    let mut mixed = counted(3, &rfc5424[..1]);
    mixed.extend_from_slice(&lines(0, &rfc3164)[1..]);
    mixed.extend_from_slice(b"\n\n12345678901 x05 y");
    let mut datagram = vec![255];
    datagram.extend_from_slice(rfc5424[2]);
    vec![
        ("rfc5424-octet-counted", counted(200, &rfc5424)),
        ("rfc3164-lines", lines(60, &rfc3164)),
        ("mixed-small-limit", mixed),
        ("datagram", datagram),
    ]
}

/// A log of a few entries, two checkpoints and two segments.
fn seal_log(dir: &Path, format: LineFormat) {
    let mut cfg = SealConfig::new(dir, ORIGIN);
    cfg.format = format;
    cfg.sync = SyncPolicy::Never;
    cfg.segment_max_bytes = 1024;
    cfg.checkpoint_every = 3;
    cfg.checkpoint_interval = Duration::from_secs(3600);
    let keys = SealKeys {
        version: 1,
        audit_key: Zeroizing::new(AUDIT_KEY),
        signer: signer(),
    };
    let (mut sealer, _) = Sealer::open(cfg, keys).expect("open the log");
    for i in 0..6u64 {
        let mut ev = Event::new(catalog::STATEMENT_EXECUTED, "statement executed")
            .at(Timestamp::from_micros(1_795_000_000_000_000 + i as i64))
            .field("query", "SELECT 1")
            .field("i", i);
        sealer.append(&mut ev).expect("append");
    }
    // Retention's record of removing the first segment, so that the log
    // without it verifies too.
    let second = list_segments(dir).expect("list segments")[1].0;
    let mut removed = Event::new(catalog::AUDIT_SEGMENTS_REMOVED, "removing audit entries")
        .at(Timestamp::from_micros(1_795_000_000_000_100))
        .field("first_seq", 1u64)
        .field("last_seq", second - 1);
    sealer.append(&mut removed).expect("append");
    sealer.close().expect("close");
}

struct Writer {
    seeds: PathBuf,
}

impl Writer {
    fn put(&mut self, target: &str, name: &str, data: &[u8]) {
        let dir = self.seeds.join(target);
        fs::create_dir_all(&dir).expect("create seed folder");
        fs::write(dir.join(name), data).expect("write seed");
    }
}

fn sorted(dir: &Path) -> Vec<PathBuf> {
    let mut v: Vec<PathBuf> = fs::read_dir(dir)
        .expect("read dir")
        .map(|e| e.expect("dir entry").path())
        .collect();
    v.sort();
    v
}

fn stem(p: &Path) -> String {
    p.file_stem()
        .and_then(|s| s.to_str())
        .unwrap_or("seed")
        .to_owned()
}

fn contains(hay: &[u8], needle: &[u8]) -> bool {
    hay.windows(needle.len()).any(|w| w == needle)
}
