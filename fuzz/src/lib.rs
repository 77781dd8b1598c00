//! The checks behind vigil's fuzz targets, one function per target.
//!
//! Each target in `fuzz_targets/` is a three-line shim over one of these
//! functions. They take any bytes and panic only when vigil breaks a promise:
//! a parser panics, a round trip loses bytes, a record breaks its line, an
//! error message spans two lines. Run them with `./scripts/fuzz`.
//!
//! The fixed keys are the ones of `crates/vigil-seal/tests/seal.rs`, so the
//! seeds in `fuzz/seeds/` (written by `examples/gen_seeds.rs`) verify and the
//! fuzzer starts from valid logs.

use std::fs;
use std::io::Cursor;
use std::path::{Path, PathBuf};
use std::sync::OnceLock;

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD as BASE64;
use ed25519_dalek::{Signer as _, SigningKey};
use vigil_event::{Event, Format, SyslogOptions};
use vigil_seal::acra::{AcraFormat, AcraVerifier};
use vigil_seal::{
    CheckpointSigner, CheckpointVerifier, LineFormat, Seal, Verifier, split_sealed, write_sealed,
};
use zeroize::Zeroizing;

/// Version 1 of the audit key.
pub const AUDIT_KEY: [u8; 32] = [0x11; 32];
/// The Ed25519 seed of the checkpoint signer.
pub const SIGNING_SEED: [u8; 32] = [0x33; 32];
/// The signer's key name, also the log's origin.
pub const ORIGIN: &str = "db1";
/// Acra's audit key in `crates/vigil-seal/testdata/acra/key.hex`.
pub const ACRA_KEY_HEX: &str = "640c559e83e3fa9157a78435749199cb3bfeffcda15a558caa2af7653068c465";
/// Separates segment files (in `verify_log`) and rotated files (in
/// `acra_line`) in one input: ASCII RS, which no log line holds.
pub const FILE_SEPARATOR: u8 = 0x1e;

const LINE_FORMATS: [LineFormat; 3] = [LineFormat::Json, LineFormat::Text, LineFormat::Cef];

/// The checkpoint signer of the fixed seed.
pub fn signer() -> CheckpointSigner {
    CheckpointSigner::new(ORIGIN, &SIGNING_SEED).expect("valid key name")
}

fn cached_signer() -> &'static CheckpointSigner {
    static S: OnceLock<CheckpointSigner> = OnceLock::new();
    S.get_or_init(signer)
}

fn verifier() -> &'static CheckpointVerifier {
    static V: OnceLock<CheckpointVerifier> = OnceLock::new();
    V.get_or_init(|| cached_signer().verifier())
}

/// Every output format; syslog both escaped (files) and raw (octet-counted).
fn formats() -> &'static [Format] {
    static F: OnceLock<Vec<Format>> = OnceLock::new();
    F.get_or_init(|| {
        let syslog = |escape_control| {
            Format::Syslog(SyslogOptions {
                facility: 13,
                hostname: "fuzz-host".to_owned(),
                app_name: "vigil".to_owned(),
                procid: Some(4242),
                escape_control,
            })
        };
        vec![
            Format::Json,
            Format::Text,
            Format::Cef,
            syslog(true),
            syslog(false),
            Format::Ocsf,
        ]
    })
}

/// `Event::from_json`; an event that parses is written in every format.
///
/// Checks, from `docs/formats.md`: no formatter panics; json round-trips; no
/// record holds a raw CR or LF (syslog only with `escape_control`); json and
/// ocsf are JSON; text holds no terminal-unsafe character; no record of a
/// sealed-log format passes for a sealed line, and sealing it round-trips.
/// `Event::read_json` into a reused event gives the same event or error.
pub fn event_json(data: &[u8]) {
    let parsed = Event::from_json(data);
    let mut reused = Event::new(vigil_event::catalog::STATEMENT_EXECUTED, "earlier")
        .field("query", "SELECT $1")
        .field("rows", 1);
    let read = reused.read_json(data);
    let ev = match parsed {
        Err(e) => {
            assert_eq!(read, Err(e), "read_json and from_json disagree");
            return;
        }
        Ok(ev) => ev,
    };
    assert_eq!(read, Ok(()), "read_json refuses what from_json accepts");
    if !data.windows(7).any(|w| w == b"\"time\":") {
        // Without a time both take "now", a moment apart.
        reused.time = ev.time;
    }
    assert_eq!(reused, ev, "read_json and from_json read different events");
    let mut json = Vec::new();
    for format in formats() {
        let mut out = Vec::new();
        format.write(&ev, &mut out);
        let text = std::str::from_utf8(&out)
            .unwrap_or_else(|e| panic!("{} record is not UTF-8: {e}", format.name()));
        let raw_ok = matches!(format, Format::Syslog(o) if !o.escape_control);
        assert!(
            raw_ok || !out.iter().any(|&b| b == b'\n' || b == b'\r'),
            "{} record breaks its line: {text:?}",
            format.name()
        );
        match format {
            Format::Json | Format::Ocsf => {
                if let Err(e) = serde_json::from_slice::<serde_json::Value>(&out) {
                    panic!("{} record is not JSON ({e}): {text:?}", format.name());
                }
            }
            Format::Text => {
                if let Some(c) = text.chars().find(|&c| is_terminal_unsafe(c)) {
                    panic!("text record holds terminal-unsafe {c:?}: {text:?}");
                }
            }
            _ => {}
        }
        if *format == Format::Json {
            json = out;
        }
    }
    match Event::from_json(&json) {
        Ok(back) => assert_eq!(back, ev, "json does not round-trip: {:?}", lossy(&json)),
        Err(e) => panic!("json record does not parse back ({e}): {:?}", lossy(&json)),
    }
    for format in LINE_FORMATS {
        let mut record = Vec::new();
        format.event_format().write(&ev, &mut record);
        assert!(
            split_sealed(format, &record).is_err(),
            "{format:?} record passes for a sealed line: {:?}",
            lossy(&record)
        );
        let seal = Seal {
            seq: 7,
            key_version: 1,
            start: Some(ORIGIN.to_owned()),
            mac: [0xab; 32],
            checkpoint: None,
        };
        let mut line = Vec::new();
        write_sealed(format, &record, &seal, &mut line);
        match split_sealed(format, &line) {
            Ok((r, s)) => {
                assert_eq!(*r, *record, "{format:?}: sealing changed the record");
                assert_eq!(s, seal, "{format:?}: sealing changed the seal");
            }
            Err(e) => panic!(
                "{format:?}: sealed record does not split ({e}): {:?}",
                lossy(&line)
            ),
        }
    }
}

/// Text's terminal-unsafe characters (docs/formats.md, `text`).
fn is_terminal_unsafe(c: char) -> bool {
    c.is_control()
        || matches!(
            c,
            '\u{061C}'
                | '\u{200E}'
                | '\u{200F}'
                | '\u{2028}'
                | '\u{2029}'
                | '\u{202A}'..='\u{202E}'
                | '\u{2066}'..='\u{2069}'
        )
}

/// `split_sealed` in every line format; what splits must be written back by
/// `write_sealed` byte for byte.
pub fn sealed_line(data: &[u8]) {
    for format in LINE_FORMATS {
        let Ok((record, seal)) = split_sealed(format, data) else {
            continue;
        };
        let mut line = Vec::new();
        write_sealed(format, &record, &seal, &mut line);
        assert!(
            line == data,
            "{format:?}: split and write_sealed do not round-trip:\n  in:  {:?}\n  out: {:?}",
            lossy(data),
            lossy(&line)
        );
    }
}

/// Signed notes and verifier keys.
///
/// The input is verified as a note with the fixed key and parsed as a vkey;
/// a vkey that parses prints as one that parses to the same key. The input
/// is also signed as a checkpoint body with the fixed key, so the body parser
/// is reached: a body that verifies must be the checkpoint's canonical body,
/// and re-signing its checkpoint must give the same note.
pub fn checkpoint_note(data: &[u8]) {
    let text = String::from_utf8_lossy(data);
    let v = verifier();
    if let Ok(cp) = v.verify(&text) {
        let again = cached_signer()
            .sign(&cp)
            .expect("a verified checkpoint can be signed");
        assert_eq!(v.verify(&again).as_ref(), Ok(&cp), "re-signed checkpoint");
    }
    if let Ok(parsed) = CheckpointVerifier::parse(&text) {
        let printed = parsed.to_string();
        assert_eq!(
            CheckpointVerifier::parse(&printed).as_ref(),
            Ok(&parsed),
            "vkey {text:?} prints as {printed:?}"
        );
    }
    let note = sign_text(&text);
    if let Ok(cp) = v.verify(&note) {
        assert_eq!(
            cp.body().as_deref(),
            Ok(&*text),
            "non-canonical body accepted"
        );
        assert_eq!(
            cached_signer().sign(&cp).as_deref(),
            Ok(&*note),
            "re-signed note differs"
        );
    }
}

/// `text` followed by the blank line and the fixed key's signature line, as
/// `CheckpointSigner` writes it (C2SP signed-note).
pub fn sign_text(text: &str) -> String {
    static KEY: OnceLock<SigningKey> = OnceLock::new();
    let key = KEY.get_or_init(|| SigningKey::from_bytes(&SIGNING_SEED));
    let mut blob = verifier().key_id().to_be_bytes().to_vec();
    blob.extend_from_slice(&key.sign(text.as_bytes()).to_bytes());
    format!("{text}\n\u{2014} {ORIGIN} {}\n", BASE64.encode(blob))
}

fn audit_keys(version: u32) -> Option<Zeroizing<[u8; 32]>> {
    (version == 1).then(|| Zeroizing::new(AUDIT_KEY))
}

/// A directory of this process for the segment files of `verify_log`, in
/// `$TMPDIR` (which `scripts/fuzz` points at a directory it removes).
fn scratch_dir() -> &'static Path {
    static DIR: OnceLock<tempfile::TempDir> = OnceLock::new();
    DIR.get_or_init(|| {
        tempfile::Builder::new()
            .prefix("vigil-fuzz-verify-")
            .tempdir()
            .expect("create a temporary directory")
    })
    .path()
}

/// `Verifier` over the input as an audit log, with the audit key and the
/// public key, then with the public key only. Must return a report, and
/// never panic.
///
/// [`FILE_SEPARATOR`] splits the input into segment files, each named after
/// the seq of its first line when that parses (so logs with several
/// segments, or without their first ones, verify), else after its position
/// (the first one: seq 1).
pub fn verify_log(data: &[u8]) {
    let dir = scratch_dir();
    for entry in fs::read_dir(dir).expect("read the scratch directory") {
        let path = entry.expect("list the scratch directory").path();
        fs::remove_file(&path).expect("remove an old segment");
    }
    for (i, segment) in data.split(|&b| b == FILE_SEPARATOR).enumerate() {
        let first = segment.split(|&b| b == b'\n').next().unwrap_or_default();
        // Each file is named for its first entry, so that a log whose first
        // segments are gone (retention) is read as one.
        let seq = LINE_FORMATS
            .iter()
            .find_map(|&f| split_sealed(f, first).ok())
            .map_or(if i == 0 { 1 } else { 1_000_000 + i as u64 }, |(_, seal)| seal.seq);
        fs::write(dir.join(vigil_seal::segment_name(seq)), segment).expect("write a segment");
    }
    let paths = [dir.to_path_buf()];
    let keys = audit_keys;
    for v in [
        Verifier::new().keys(&keys).public_key(verifier().clone()),
        Verifier::new().public_key(verifier().clone()),
    ] {
        match v.verify(&paths) {
            Ok(report) => {
                if let Some(failure) = &report.failure {
                    let _ = failure.to_string();
                }
            }
            Err(e) => {
                let _ = e.to_string();
            }
        }
    }
}

/// `AcraVerifier::verify_readers` in every Acra format, with the testdata
/// key (so its logs seed the fuzzer): the input as one file; then split into
/// rotated files at each [`FILE_SEPARATOR`], strictly, with short lines and
/// few warnings. The report must hold together and display.
pub fn acra_line(data: &[u8]) {
    for format in [AcraFormat::Plaintext, AcraFormat::Json, AcraFormat::Cef] {
        let lenient = AcraVerifier::from_key_hex(format, ACRA_KEY_HEX).expect("valid key");
        let strict = lenient
            .clone()
            .strict(true)
            .max_line_len(1024)
            .max_warnings(2);
        let one = [(PathBuf::from("log.txt"), Cursor::new(data))];
        let rotated = data
            .split(|&b| b == FILE_SEPARATOR)
            .enumerate()
            .map(|(i, part)| (PathBuf::from(format!("log.txt.{i}")), Cursor::new(part)));
        for result in [lenient.verify_readers(one), strict.verify_readers(rotated)] {
            match result {
                Ok(report) => {
                    assert!(report.warnings_total >= report.warnings.len() as u64);
                    assert!(report.entries_verified <= report.lines);
                    let _ = report.to_string();
                }
                Err(e) => {
                    let _ = e.to_string();
                }
            }
        }
    }
}

/// `vigil::config::parse` of the input (invalid UTF-8 replaced): never
/// panics, and every error displays as exactly one line naming the file.
pub fn config_toml(data: &[u8]) {
    let text = lossy(data);
    let Err(e) = vigil::config::parse(&text, Path::new("fuzz.toml")) else {
        return;
    };
    let shown = e.to_string();
    assert!(
        !shown
            .chars()
            .any(|c| c.is_control() || c == '\u{2028}' || c == '\u{2029}'),
        "config error is not one line: {shown:?}"
    );
    assert!(
        shown.starts_with("fuzz.toml:"),
        "config error names no file: {shown:?}"
    );
}

fn lossy(b: &[u8]) -> std::borrow::Cow<'_, str> {
    String::from_utf8_lossy(b)
}
