//! Delivery throughput from the sealed audit log to syslog over TCP and to
//! NATS JetStream. Run it with `bench/ship/run.sh` (see
//! `bench/ship/README.md`), which starts the receivers and rsyslog's own
//! forwarder as the baseline.
//!
//! ```text
//! ship_bench make-log --dir D --count N
//! ship_bench deliver  --dir D --sink syslog-tcp|nats --address HOST:PORT
//!                     [--subject S --stream X [--delete-stream]]
//!                     [--count SEQ] [--output F --bytes B] [--batch N]
//!                     [--state-in DIR] [--timeout SECONDS]
//! ship_bench feed     --from SRC --to DST --output F --bytes B [--timeout SECONDS]
//! ship_bench stages   --dir D [--rounds R]
//! ship_bench blast    --from EVENTS --address HOST:PORT --output F --bytes B
//!                     [--timeout SECONDS]
//! ```
//!
//! - `make-log` seals `N` `statement.executed` events into `D/audit`
//!   (`sync = never`, 4 GiB segments, the default checkpoint every 100,000
//!   entries), reads the log back and writes every entry (checkpoints
//!   included) to `D/events.syslog` exactly as the syslog sink sends it, one
//!   per line. `D/log.env` gets the counts and byte totals, as shell
//!   assignments.
//! - `deliver` starts a [`Delivery`] with one sink (the syslog TCP transport
//!   and the `syslog` format, or the NATS JetStream transport and the `json`
//!   format) from the start of the log, with a fresh state directory (in
//!   `D`, or in `--state-in`) and no durable mark, and times it until the
//!   sink's cursor reaches the last seq; with `--output`, also until that
//!   file holds `--bytes` bytes (the receiver wrote everything). For NATS it
//!   creates the stream first and checks afterwards that it holds every
//!   entry.
//! - `feed` hard-links `SRC` to `DST` (where a forwarder watches for it) and
//!   times it until `--output` holds `--bytes` bytes.
//! - `stages` times, on one thread and without any I/O (the log's first
//!   segment is read into memory first), each step delivery takes per entry,
//!   one step at a time over every line: finding the line's end, splitting
//!   off the seal, parsing the record back into an event, formatting it as
//!   syslog and as json, dropping it; and, for comparison, taking only the
//!   seq from the seal and only the record's span, which is all delivery
//!   needs of the seal, and parsing the whole sealed line (seal included)
//!   instead of the record. Best of `--rounds` (default 5) per step. It
//!   counts the records that formatting their event as json gives back byte
//!   for byte, and times 200 cursor stores in `D`, as the runner makes one
//!   after every batch.
//! - `blast` frames every line of `EVENTS` as syslog over TCP does (octet
//!   counting) in memory, then writes it all to the receiver on one
//!   connection and times it until `--output` holds `--bytes` bytes: what
//!   the receiver takes when the sender costs next to nothing.
//!
//! Each command ends with one line `result key=value ...` for the script.

use std::fmt::Write as _;
use std::fs;
use std::io::{BufRead, BufReader, BufWriter, Write};
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::sync::Arc;
use std::time::{Duration, Instant};

use vigil_event::{Event, Format, Session, SyslogOptions, Timestamp, catalog};
use vigil_seal::{
    CheckpointSigner, LineFormat, SealConfig, SealKeys, Sealer, SyncPolicy, list_segments,
    split_sealed,
};
use vigil_ship::deliver::{
    Cursor, Delivery, DeliveryConfig, DeliverySink, DeliveryStats, Retention,
};
use vigil_ship::transport::Transport;
use vigil_ship::transport::nats::{NatsClient, NatsConfig, NatsTransport, StreamSpec};
use vigil_ship::transport::syslog::{Protocol, SyslogConfig, SyslogTransport};
use zeroize::Zeroizing;

/// The origin of the benchmark's log.
const ORIGIN: &str = "db1";
/// How often the cursor and the receiver's file are looked at.
const POLL: Duration = Duration::from_millis(1);

type Result<T> = std::result::Result<T, String>;

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let result = match args.first().map(String::as_str) {
        Some("make-log") => Args::parse(&args[1..]).and_then(|a| make_log(&a)),
        Some("deliver") => Args::parse(&args[1..]).and_then(|a| deliver(&a)),
        Some("feed") => Args::parse(&args[1..]).and_then(|a| feed(&a)),
        Some("stages") => Args::parse(&args[1..]).and_then(|a| stages(&a)),
        Some("blast") => Args::parse(&args[1..]).and_then(|a| blast(&a)),
        _ => Err(
            "usage: ship_bench make-log|deliver|feed|stages|blast [options] (see the top of \
             bench/src/bin/ship_bench.rs)"
                .to_owned(),
        ),
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("ship_bench: {e}");
            ExitCode::FAILURE
        }
    }
}

/// `--name value` pairs and `--flag`s.
struct Args(Vec<(String, Option<String>)>);

impl Args {
    fn parse(raw: &[String]) -> Result<Args> {
        let mut out = Vec::new();
        let mut it = raw.iter().peekable();
        while let Some(arg) = it.next() {
            let name = arg
                .strip_prefix("--")
                .ok_or_else(|| format!("unexpected argument {arg:?}"))?;
            let value = match it.peek() {
                Some(v) if !v.starts_with("--") => it.next().cloned(),
                _ => None,
            };
            out.push((name.to_owned(), value));
        }
        Ok(Args(out))
    }

    fn get(&self, name: &str) -> Option<&str> {
        self.0
            .iter()
            .rev()
            .find(|(n, _)| n == name)
            .and_then(|(_, v)| v.as_deref())
    }

    fn flag(&self, name: &str) -> bool {
        self.0.iter().any(|(n, _)| n == name)
    }

    fn need(&self, name: &str) -> Result<&str> {
        self.get(name)
            .ok_or_else(|| format!("--{name} is required"))
    }

    fn number(&self, name: &str) -> Result<Option<u64>> {
        self.get(name)
            .map(|v| {
                v.replace('_', "")
                    .parse()
                    .map_err(|_| format!("--{name} {v:?} is not a number"))
            })
            .transpose()
    }

    fn timeout(&self) -> Result<Duration> {
        Ok(Duration::from_secs(self.number("timeout")?.unwrap_or(600)))
    }
}

/// The syslog header every record carries: fixed, so that `make-log` writes
/// the same bytes the sink sends.
fn syslog_format() -> Format {
    Format::Syslog(SyslogOptions {
        facility: 13,
        hostname: ORIGIN.to_owned(),
        app_name: "vigil".to_owned(),
        procid: Some(4242),
        escape_control: true,
    })
}

fn keys() -> Result<SealKeys> {
    Ok(SealKeys {
        version: 1,
        audit_key: Zeroizing::new([7; 32]),
        signer: CheckpointSigner::new("bench", &[9; 32]).map_err(|e| format!("signer: {e}"))?,
    })
}

/// Redacted statements of pgbench's TPC-B and select-only transactions and
/// of a small web application, as the proxy reports them, and whether they
/// return rows.
const STATEMENTS: [(&str, bool); 8] = [
    ("SELECT abalance FROM pgbench_accounts WHERE aid = $1", true),
    (
        "UPDATE pgbench_accounts SET abalance = abalance + $1 WHERE aid = $2",
        false,
    ),
    (
        "UPDATE pgbench_tellers SET tbalance = tbalance + $1 WHERE tid = $2",
        false,
    ),
    (
        "INSERT INTO pgbench_history (tid, bid, aid, delta, mtime) VALUES ($1, $2, $3, $4, \
         CURRENT_TIMESTAMP)",
        false,
    ),
    ("SELECT id, email FROM users WHERE id = $1", true),
    (
        "SELECT o.id, o.total FROM orders o WHERE o.customer_id = $1 LIMIT $2",
        true,
    ),
    ("BEGIN", false),
    ("COMMIT", false),
];

/// A small deterministic generator (xorshift64*).
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_f491_4f6c_dd1d)
    }

    fn below(&mut self, n: u64) -> u64 {
        self.next() % n
    }
}

/// The `i`-th benchmark event: a `statement.executed` of one of 64
/// sessions, with what the proxy puts in one (the redacted statement as the
/// message, the session's id, user and database, the statement's
/// fingerprint, its duration and, for a query, the rows it returned). The
/// proxy adds the client address, class, protocol and command tag; they are
/// left out here to keep the record near 300 bytes of RFC 5424.
fn statement(i: u64, rng: &mut Rng, sessions: &[Arc<Session>]) -> Event {
    let (sql, rows) = STATEMENTS[rng.below(STATEMENTS.len() as u64) as usize];
    let session = &sessions[rng.below(sessions.len() as u64) as usize];
    let fingerprint = 0x9e37_79b9_7f4a_7c15u64.wrapping_mul(sql.len() as u64 + 1);
    let mut ev = Event::new(catalog::STATEMENT_EXECUTED, sql)
        .at(Timestamp::from_micros(1_795_691_940_000_000 + i as i64 * 4))
        .session(Arc::clone(session))
        .fingerprint(fingerprint)
        .field("duration_us", 40 + rng.below(2_000) as i64);
    if rows {
        ev = ev.field("rows", 1 + rng.below(20) as i64);
    }
    ev
}

fn sessions() -> Vec<Arc<Session>> {
    (0..64u16)
        .map(|n| {
            Arc::new(Session {
                id: 10_000 + u64::from(n),
                db_user: Some(if n % 4 == 0 { "report" } else { "app" }.into()),
                database: Some("shop".into()),
                ..Session::default()
            })
        })
        .collect()
}

fn make_log(args: &Args) -> Result<()> {
    let dir = PathBuf::from(args.need("dir")?);
    let count = args.number("count")?.unwrap_or(1_000_000);
    let audit = dir.join("audit");
    if audit.exists() {
        return Err(format!(
            "{} exists; give make-log a new directory",
            audit.display()
        ));
    }
    fs::create_dir_all(&dir).map_err(|e| format!("create {}: {e}", dir.display()))?;

    let started = Instant::now();
    let mut cfg = SealConfig::new(&audit, ORIGIN);
    cfg.sync = SyncPolicy::Never;
    cfg.segment_max_bytes = 4 << 30;
    let (mut sealer, _) = Sealer::open(cfg, keys()?).map_err(|e| format!("open the log: {e}"))?;
    let sessions = sessions();
    let mut rng = Rng(0x853c_49e6_748f_ea9b);
    for i in 0..count {
        let mut ev = statement(i, &mut rng, &sessions);
        sealer
            .append(&mut ev)
            .map_err(|e| format!("seal entry {i}: {e}"))?;
    }
    sealer.close().map_err(|e| format!("close the log: {e}"))?;
    let sealed_in = started.elapsed();

    // Read the log back as delivery does and write each entry as the
    // syslog sink sends it.
    let syslog = syslog_format();
    let events_path = dir.join("events.syslog");
    let file =
        fs::File::create(&events_path).map_err(|e| format!("{}: {e}", events_path.display()))?;
    let mut out = BufWriter::with_capacity(1 << 20, file);
    let (mut entries, mut last_seq, mut audit_bytes, mut syslog_bytes, mut json_bytes) =
        (0u64, 0u64, 0u64, 0u64, 0u64);
    let mut line = Vec::with_capacity(4096);
    let mut buf = Vec::with_capacity(4096);
    let segments = list_segments(&audit).map_err(|e| format!("list segments: {e}"))?;
    for (_, path) in &segments {
        let f = fs::File::open(path).map_err(|e| format!("{}: {e}", path.display()))?;
        let mut reader = BufReader::with_capacity(1 << 20, f);
        loop {
            line.clear();
            let n = reader
                .read_until(b'\n', &mut line)
                .map_err(|e| format!("{}: {e}", path.display()))?;
            if n == 0 {
                break;
            }
            audit_bytes += n as u64;
            let text = line.strip_suffix(b"\n").unwrap_or(&line);
            let (record, seal) = split_sealed(LineFormat::Json, text)
                .map_err(|e| format!("{}: entry after seq {last_seq}: {e}", path.display()))?;
            let ev = Event::from_json(&record)
                .map_err(|e| format!("entry {}: not an event: {e}", seal.seq))?;
            buf.clear();
            Format::Json.write(&ev, &mut buf);
            json_bytes += buf.len() as u64;
            buf.clear();
            syslog.write(&ev, &mut buf);
            syslog_bytes += buf.len() as u64;
            buf.push(b'\n');
            out.write_all(&buf)
                .map_err(|e| format!("{}: {e}", events_path.display()))?;
            entries += 1;
            last_seq = seal.seq;
        }
    }
    out.flush()
        .map_err(|e| format!("{}: {e}", events_path.display()))?;
    drop(out);

    let mut env = String::new();
    let _ = writeln!(env, "STATEMENTS={count}");
    let _ = writeln!(env, "ENTRIES={entries}");
    let _ = writeln!(env, "LAST_SEQ={last_seq}");
    let _ = writeln!(env, "SEGMENTS={}", segments.len());
    let _ = writeln!(env, "AUDIT_BYTES={audit_bytes}");
    let _ = writeln!(env, "SYSLOG_BYTES={syslog_bytes}");
    let _ = writeln!(env, "SYSLOG_FILE_BYTES={}", syslog_bytes + entries);
    let _ = writeln!(env, "JSON_BYTES={json_bytes}");
    let env_path = dir.join("log.env");
    fs::write(&env_path, &env).map_err(|e| format!("{}: {e}", env_path.display()))?;
    let per = |b: u64| b as f64 / entries.max(1) as f64;
    eprintln!(
        "make-log: {count} statements sealed in {:.1} s; the log holds {entries} entries \
         (seq 1..{last_seq}), {audit_bytes} bytes in {} segment(s); formatted: syslog \
         {:.0} B/entry, json {:.0} B/entry, sealed line {:.0} B/entry",
        sealed_in.as_secs_f64(),
        segments.len(),
        per(syslog_bytes),
        per(json_bytes),
        per(audit_bytes),
    );
    println!(
        "result entries={entries} last_seq={last_seq} syslog_bytes={syslog_bytes} \
         json_bytes={json_bytes} audit_bytes={audit_bytes}"
    );
    Ok(())
}

/// `KEY=value` lines of `D/log.env`.
fn log_env(dir: &Path, key: &str) -> Result<u64> {
    let path = dir.join("log.env");
    let text = fs::read_to_string(&path)
        .map_err(|e| format!("{}: {e} (run make-log first)", path.display()))?;
    text.lines()
        .find_map(|l| l.strip_prefix(key)?.strip_prefix('='))
        .and_then(|v| v.parse().ok())
        .ok_or_else(|| format!("{} has no {key}", path.display()))
}

/// CPU time (user + system) of this process's live threads, and of the
/// threads whose name starts with `prefix`, from their `schedstat`.
fn cpu_times(prefix: &str) -> (Duration, Duration) {
    let (mut all, mut named) = (0u64, 0u64);
    if let Ok(tasks) = fs::read_dir("/proc/self/task") {
        for task in tasks.flatten() {
            let ns = fs::read_to_string(task.path().join("schedstat"))
                .ok()
                .and_then(|s| s.split_whitespace().next()?.parse::<u64>().ok())
                .unwrap_or(0);
            all += ns;
            let comm = fs::read_to_string(task.path().join("comm")).unwrap_or_default();
            if comm.starts_with(prefix) {
                named += ns;
            }
        }
    }
    (Duration::from_nanos(all), Duration::from_nanos(named))
}

fn file_len(path: &Path) -> u64 {
    fs::metadata(path).map_or(0, |m| m.len())
}

/// Waits until `path` holds at least `bytes` bytes or `deadline` passed;
/// returns its size then.
fn wait_for_bytes(path: &Path, bytes: u64, deadline: Instant) -> u64 {
    loop {
        let len = file_len(path);
        if len >= bytes || Instant::now() >= deadline {
            return len;
        }
        std::thread::sleep(POLL);
    }
}

fn deliver(args: &Args) -> Result<()> {
    let dir = PathBuf::from(args.need("dir")?);
    let sink = args.need("sink")?;
    let address = args.need("address")?;
    let last = match args.number("count")? {
        Some(n) => n,
        None => log_env(&dir, "LAST_SEQ")?,
    };
    let timeout = args.timeout()?;
    let output = args.get("output").map(PathBuf::from);
    let want_bytes = args.number("bytes")?;
    if output.is_some() != want_bytes.is_some() {
        return Err("--output and --bytes go together".to_owned());
    }

    let mut stream = None;
    let (format, transport): (Format, Box<dyn Transport>) = match sink {
        "syslog-tcp" => {
            let config = SyslogConfig::new(Protocol::Tcp, address);
            let t = SyslogTransport::new(config).map_err(|e| e.to_string())?;
            (syslog_format(), Box::new(t))
        }
        "nats" => {
            let name = args.need("stream")?.to_owned();
            let config = NatsConfig {
                stream: Some(StreamSpec {
                    name: name.clone(),
                    create: false,
                }),
                ..NatsConfig::new(address, args.need("subject")?)
            };
            config.validate()?;
            // The stream is made before the clock starts, and must be new.
            let created = vigil_ship::transport::nats::create_stream(&config, &name)
                .map_err(|e| format!("create stream {name}: {e}"))?;
            if !created {
                return Err(format!("stream {name} exists already; give a new --stream"));
            }
            stream = Some((config.clone(), name));
            (Format::Json, Box::new(NatsTransport::new(config)))
        }
        other => return Err(format!("--sink {other:?}: give syslog-tcp or nats")),
    };
    let mut ds = DeliverySink::new("bench", format, transport);
    if let Some(b) = args.number("batch")? {
        ds.batch = usize::try_from(b).map_err(|_| "--batch is too large".to_owned())?;
    }
    let batch = ds.batch;
    let state_in = args
        .get("state-in")
        .map_or_else(|| dir.clone(), PathBuf::from);
    let state = tempfile::Builder::new()
        .prefix("ship-state.")
        .tempdir_in(&state_in)
        .map_err(|e| format!("state directory in {}: {e}", state_in.display()))?;
    let config = DeliveryConfig {
        audit_dir: dir.join("audit"),
        format: LineFormat::Json,
        state_dir: state.path().join("delivery"),
        durable: None,
        emitter: None,
        retention: Retention::default(),
    };

    let (cpu0, _) = cpu_times("vigil-sink");
    let started = Instant::now();
    let deadline = started + timeout;
    let delivery = Delivery::start(config, vec![ds]).map_err(|e| e.to_string())?;
    let stats = |d: &Delivery| -> DeliveryStats {
        d.stats()
            .into_iter()
            .next()
            .unwrap_or_else(|| unreachable!("one sink was started"))
    };
    loop {
        let s = stats(&delivery);
        if s.cursor >= last {
            break;
        }
        if Instant::now() >= deadline {
            return Err(format!(
                "the cursor reached {} of {last} in {timeout:?}: {s:?}",
                s.cursor
            ));
        }
        std::thread::sleep(POLL);
    }
    let cursor_at = started.elapsed();
    let mut receiver_at = cursor_at;
    let mut received = 0;
    if let (Some(path), Some(bytes)) = (&output, want_bytes) {
        received = wait_for_bytes(path, bytes, deadline);
        receiver_at = started.elapsed();
        if received != bytes {
            return Err(format!(
                "{} holds {received} bytes, expected {bytes}",
                path.display()
            ));
        }
    }
    let (cpu1, sink_cpu) = cpu_times("vigil-sink");
    let s = delivery.shutdown(Duration::from_secs(10));
    let s = s.into_iter().next().unwrap_or_else(|| unreachable!());

    let mut stored = String::new();
    if let Some((config, name)) = &stream {
        // At least `last`: delivery goes on to the end of the log until it
        // is stopped, which may be past `--count`.
        let messages = stream_messages(config, name)?;
        if messages < last {
            return Err(format!(
                "stream {name} holds {messages} messages, expected at least {last}"
            ));
        }
        stored = format!(" stream_messages={messages}");
        if args.flag("delete-stream") {
            let mut client = NatsClient::connect(config).map_err(|e| e.to_string())?;
            client
                .request(&format!("$JS.API.STREAM.DELETE.{name}"), b"")
                .map_err(|e| format!("delete stream {name}: {e}"))?;
        }
    }
    let secs = receiver_at.as_secs_f64();
    eprintln!(
        "deliver {sink}: {last} entries; cursor at the last seq after {:.3} s, receiver \
         complete after {secs:.3} s: {:.0} events/s; CPU {:.2} s (delivery thread {:.2} s)",
        cursor_at.as_secs_f64(),
        last as f64 / secs,
        (cpu1 - cpu0).as_secs_f64(),
        sink_cpu.as_secs_f64(),
    );
    println!(
        "result sink={sink} entries={last} batch={batch} cursor_s={:.4} receiver_s={secs:.4} \
         cpu_s={:.3} sink_cpu_s={:.3} sent={} failed={} retried={} rejected={} \
         received_bytes={received}{stored}",
        cursor_at.as_secs_f64(),
        (cpu1 - cpu0).as_secs_f64(),
        sink_cpu.as_secs_f64(),
        s.sent,
        s.failed,
        s.retried,
        s.rejected,
    );
    Ok(())
}

/// The number of messages JetStream stream `name` holds.
fn stream_messages(config: &NatsConfig, name: &str) -> Result<u64> {
    let mut client = NatsClient::connect(config).map_err(|e| e.to_string())?;
    let info = client
        .request(&format!("$JS.API.STREAM.INFO.{name}"), b"")
        .map_err(|e| format!("stream info {name}: {e}"))?;
    let info: serde_json::Value =
        serde_json::from_slice(&info).map_err(|e| format!("stream info {name}: not JSON: {e}"))?;
    info.pointer("/state/messages")
        .and_then(serde_json::Value::as_u64)
        .ok_or_else(|| format!("stream info {name} has no state.messages: {info}"))
}

fn feed(args: &Args) -> Result<()> {
    let from = PathBuf::from(args.need("from")?);
    let to = PathBuf::from(args.need("to")?);
    let output = PathBuf::from(args.need("output")?);
    let bytes = args
        .number("bytes")?
        .ok_or_else(|| "--bytes is required".to_owned())?;
    let timeout = args.timeout()?;
    let started = Instant::now();
    fs::hard_link(&from, &to)
        .map_err(|e| format!("link {} to {}: {e}", from.display(), to.display()))?;
    let received = wait_for_bytes(&output, bytes, started + timeout);
    let secs = started.elapsed().as_secs_f64();
    if received != bytes {
        return Err(format!(
            "{} holds {received} bytes after {secs:.1} s, expected {bytes}",
            output.display()
        ));
    }
    eprintln!("feed: {} complete after {secs:.3} s", output.display());
    println!("result receiver_s={secs:.4} received_bytes={received}");
    Ok(())
}

/// The best time per item of `rounds` runs of `f` over `items` items.
fn best(rounds: u32, items: usize, mut f: impl FnMut() -> u64) -> f64 {
    let mut best = f64::INFINITY;
    let mut check = 0;
    for _ in 0..rounds {
        let t = Instant::now();
        check ^= std::hint::black_box(f());
        best = best.min(t.elapsed().as_nanos() as f64 / items.max(1) as f64);
    }
    std::hint::black_box(check);
    best
}

/// Where the seal of a json line starts and its seq, found the cheap way:
/// the last `,"seal":{"seq":` (compared only where its first byte
/// matches), then the digits after it. What delivery needs of the seal.
fn seal_seq(line: &[u8]) -> Option<(usize, u64)> {
    const OPEN: &[u8] = b",\"seal\":{\"seq\":";
    let last = line.len().checked_sub(OPEN.len())?;
    let at = (0..=last)
        .rev()
        .find(|&i| line[i] == b',' && line[i..].starts_with(OPEN))?;
    let digits = &line[at + OPEN.len()..];
    let n = digits.iter().take_while(|b| b.is_ascii_digit()).count();
    let seq = std::str::from_utf8(&digits[..n]).ok()?.parse().ok()?;
    Some((at, seq))
}

fn stages(args: &Args) -> Result<()> {
    let dir = PathBuf::from(args.need("dir")?);
    let rounds = u32::try_from(args.number("rounds")?.unwrap_or(5)).unwrap_or(5);
    let segments = list_segments(&dir.join("audit")).map_err(|e| format!("list segments: {e}"))?;
    let (_, path) = segments
        .first()
        .ok_or_else(|| "the log has no segment".to_owned())?;
    let data = fs::read(path).map_err(|e| format!("{}: {e}", path.display()))?;
    // Line spans, found once.
    let mut spans = Vec::new();
    let mut start = 0;
    while let Some(nl) = data[start..].iter().position(|&b| b == b'\n') {
        spans.push((start, start + nl));
        start += nl + 1;
    }
    let lines: Vec<&[u8]> = spans.iter().map(|&(a, b)| &data[a..b]).collect();
    let n = lines.len();
    let syslog = syslog_format();

    let find_lines = best(rounds, n, || {
        let (mut start, mut count) = (0, 0u64);
        while let Some(nl) = data[start..].iter().position(|&b| b == b'\n') {
            start += nl + 1;
            count += 1;
        }
        count
    });
    let split = best(rounds, n, || {
        let mut sum = 0;
        for line in &lines {
            if let Ok((record, seal)) = split_sealed(LineFormat::Json, line) {
                sum += seal.seq + record.len() as u64;
            }
        }
        sum
    });
    let cheap_seq = best(rounds, n, || {
        lines
            .iter()
            .filter_map(|line| seal_seq(line))
            .map(|(at, seq)| seq + at as u64)
            .sum()
    });
    let records: Vec<Vec<u8>> = lines
        .iter()
        .map(|line| {
            split_sealed(LineFormat::Json, line)
                .map(|(r, _)| r.into_owned())
                .map_err(|e| format!("not a sealed line: {e}"))
        })
        .collect::<Result<_>>()?;
    let parse = best(rounds, n, || {
        let mut sum = 0;
        for r in &records {
            if let Ok(ev) = Event::from_json(r) {
                sum += ev.seq;
            }
        }
        sum
    });
    let mut reused = Event::new(vigil_event::catalog::STATEMENT_EXECUTED, "");
    let read_into = best(rounds, n, || {
        let mut sum = 0;
        for r in &records {
            if reused.read_json(r).is_ok() {
                sum += reused.seq;
            }
        }
        sum
    });
    // The seal is one more top-level member, which from_json ignores: the
    // whole line parses to the same event without splitting it first.
    let parse_line = best(rounds, n, || {
        let mut sum = 0;
        for line in &lines {
            if let Ok(ev) = Event::from_json(line) {
                sum += ev.seq;
            }
        }
        sum
    });
    let events: Vec<Event> = records
        .iter()
        .map(|r| Event::from_json(r).map_err(|e| format!("not an event: {e}")))
        .collect::<Result<_>>()?;
    let mut buf = Vec::with_capacity(1 << 20);
    let syslog_write = best(rounds, n, || {
        buf.clear();
        for ev in &events {
            syslog.write(ev, &mut buf);
        }
        buf.len() as u64
    });
    let json_write = best(rounds, n, || {
        buf.clear();
        for ev in &events {
            Format::Json.write(ev, &mut buf);
        }
        buf.len() as u64
    });
    // The sealed record is the json format's output: formatting the parsed
    // event as json gives the record back, byte for byte.
    let same_json = records
        .iter()
        .zip(&events)
        .filter(|(r, ev)| {
            buf.clear();
            Format::Json.write(ev, &mut buf);
            buf == **r
        })
        .count();
    // Dropping, timed alone on a copy (best of the rounds).
    let mut drop_only = f64::INFINITY;
    for _ in 0..rounds {
        let copies = events.clone();
        let t = Instant::now();
        drop(copies);
        drop_only = drop_only.min(t.elapsed().as_nanos() as f64 / n as f64);
    }

    // What the runner does after every acknowledged batch: replace the
    // cursor file (write, fsync, rename, fsync the directory), in `D`.
    let stores = 200;
    let state = tempfile::Builder::new()
        .prefix("ship-state.")
        .tempdir_in(&dir)
        .map_err(|e| format!("state directory in {}: {e}", dir.display()))?;
    let cursor_path = state.path().join("bench.cursor");
    let mut cursor = Cursor {
        origin: ORIGIN.to_owned(),
        ..Cursor::default()
    };
    let t = Instant::now();
    for i in 0..stores {
        cursor.seq = i * 1000;
        cursor
            .store(&cursor_path)
            .map_err(|e| format!("{}: {e}", cursor_path.display()))?;
    }
    let store_us = t.elapsed().as_secs_f64() * 1e6 / stores as f64;

    let delivery_path = find_lines + 2.0 * split + parse + syslog_write + drop_only;
    println!(
        "{n} entries of {}, best of {rounds} rounds, ns per entry:",
        path.display()
    );
    println!("  find the line's end (byte loop, as LogReader::read) {find_lines:8.0}");
    println!(
        "  split_sealed (record copy, MAC hex decoded)          {split:8.0}  (delivery calls it twice)"
    );
    println!("  seal seq and record span only (cheap, for comparison) {cheap_seq:7.0}");
    println!("  Event::from_json                                      {parse:7.0}");
    println!("  Event::from_json of the whole sealed line             {parse_line:7.0}");
    println!("  Event::read_json into one reused event                {read_into:7.0}");
    println!("  Format::Syslog write                                  {syslog_write:7.0}");
    println!("  Format::Json write                                    {json_write:7.0}");
    println!("  records equal to their event formatted as json again  {same_json} of {n}");
    println!("  drop the Event                                        {drop_only:7.0}");
    println!(
        "  sum of the syslog path (line end, 2 x split, parse, format, drop) {delivery_path:.0}"
    );
    println!(
        "  Cursor::store in {} (once per batch)        {store_us:7.0} µs each, {:.0} ns per entry in batches of 1,000",
        dir.display(),
        store_us
    );
    println!(
        "result entries={n} same_json={same_json} cursor_store_us={store_us:.0} find_lines_ns={find_lines:.0} split_sealed_ns={split:.0} \
         seal_seq_ns={cheap_seq:.0} from_json_ns={parse:.0} from_json_line_ns={parse_line:.0} syslog_ns={syslog_write:.0} \
         json_ns={json_write:.0} drop_ns={drop_only:.0}"
    );
    Ok(())
}

fn blast(args: &Args) -> Result<()> {
    let from = PathBuf::from(args.need("from")?);
    let address = args.need("address")?;
    let output = PathBuf::from(args.need("output")?);
    let bytes = args
        .number("bytes")?
        .ok_or_else(|| "--bytes is required".to_owned())?;
    let timeout = args.timeout()?;
    let data = fs::read(&from).map_err(|e| format!("{}: {e}", from.display()))?;
    let mut frames = Vec::with_capacity(data.len() + data.len() / 32);
    let mut lines = 0u64;
    for line in data.split(|&b| b == b'\n').filter(|l| !l.is_empty()) {
        let _ = write!(frames, "{} ", line.len());
        frames.extend_from_slice(line);
        lines += 1;
    }
    drop(data);
    let started = Instant::now();
    let mut socket =
        std::net::TcpStream::connect(address).map_err(|e| format!("connect to {address}: {e}"))?;
    socket
        .write_all(&frames)
        .map_err(|e| format!("write to {address}: {e}"))?;
    let written = started.elapsed();
    let received = wait_for_bytes(&output, bytes, started + timeout);
    let secs = started.elapsed().as_secs_f64();
    drop(socket);
    if received != bytes {
        return Err(format!(
            "{} holds {received} bytes after {secs:.1} s, expected {bytes}",
            output.display()
        ));
    }
    eprintln!(
        "blast: {lines} records written in {:.3} s, {} complete after {secs:.3} s",
        written.as_secs_f64(),
        output.display()
    );
    println!("result entries={lines} receiver_s={secs:.4} received_bytes={received}");
    Ok(())
}
