//! The Acra verifier against fixtures written by an independent generator
//! (`testdata/acra/gen.py`), and against random single mutations of them.
//!
//! Mutation outcomes are predicted by a model of Acra's algorithm that treats
//! the MAC abstractly: a signed line verifies if and only if it is unchanged
//! and either starts a chain from a fresh state (index 0) or directly follows
//! its predecessor in the same chain. The model reads the generator's
//! manifest, not the verifier's parser, so it checks the cryptography and the
//! canonical bytes independently.

#![allow(clippy::unwrap_used, clippy::string_slice)] // tests may panic

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use serde_json::Value;
use vigil_seal::acra::{
    AcraError, AcraFailureKind, AcraFormat, AcraReport, AcraVerifier, AcraWarningKind,
};

const FORMATS: [AcraFormat; 3] = [AcraFormat::Plaintext, AcraFormat::Json, AcraFormat::Cef];

fn testdata() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("testdata/acra")
}

fn key_file(name: &str) -> PathBuf {
    testdata().join(name)
}

fn verifier(format: AcraFormat) -> AcraVerifier {
    AcraVerifier::from_key_file(format, &key_file("key.hex")).expect("fixture key")
}

// ---------------------------------------------------------------------------
// Fixtures and the model

/// What a line is, for the model.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Kind {
    Unsigned,
    /// Acra stops on it (bad hex, or JSON Go rejects).
    Malformed,
    Signed {
        chain: u32,
        index: u32,
        new: bool,
        end: bool,
        /// The signed bytes and integrity check are the writer's.
        intact: bool,
    },
}

#[derive(Debug, Clone)]
struct Line {
    file: usize,
    text: Vec<u8>,
    kind: Kind,
}

#[derive(Debug, Clone)]
struct Fixture {
    format: AcraFormat,
    dir: PathBuf,
    files: Vec<String>,
    lines: Vec<Line>,
}

impl Fixture {
    fn load(name: &str, format: AcraFormat) -> Self {
        let dir = testdata().join(name).join(format.to_string());
        let manifest: Value =
            serde_json::from_slice(&std::fs::read(dir.join("manifest.json")).expect("manifest"))
                .expect("manifest JSON");
        let files: Vec<String> = manifest["files"]
            .as_array()
            .expect("files")
            .iter()
            .map(|f| f.as_str().expect("file name").to_owned())
            .collect();
        let mut texts = Vec::new();
        for (i, file) in files.iter().enumerate() {
            let bytes = std::fs::read(dir.join(file)).expect("log file");
            assert!(bytes.ends_with(b"\n"));
            for text in bytes[..bytes.len() - 1].split(|&b| b == b'\n') {
                texts.push((i, text.to_vec()));
            }
        }
        let entries = manifest["lines"].as_array().expect("lines");
        assert_eq!(entries.len(), texts.len(), "{}", dir.display());
        let lines = entries
            .iter()
            .zip(texts)
            .map(|(entry, (file, text))| {
                assert_eq!(entry["file"].as_str(), Some(files[file].as_str()));
                let kind = if entry["signed"].as_bool().expect("signed") {
                    Kind::Signed {
                        chain: num(&entry["chain"]),
                        index: num(&entry["index"]),
                        new: entry["new"].as_bool().expect("new"),
                        end: entry["end"].as_bool().expect("end"),
                        intact: true,
                    }
                } else {
                    Kind::Unsigned
                };
                Line { file, text, kind }
            })
            .collect();
        Self {
            format,
            dir,
            files,
            lines,
        }
    }

    fn paths(&self) -> Vec<PathBuf> {
        self.files.iter().map(|f| self.dir.join(f)).collect()
    }

    fn signed(&self) -> usize {
        self.lines
            .iter()
            .filter(|l| matches!(l.kind, Kind::Signed { .. }))
            .count()
    }

    /// Positions of the first and last line of each chain.
    fn chains(&self) -> BTreeMap<u32, (usize, usize)> {
        let mut chains = BTreeMap::new();
        for (i, line) in self.lines.iter().enumerate() {
            if let Kind::Signed { chain, .. } = line.kind {
                chains
                    .entry(chain)
                    .and_modify(|r: &mut (usize, usize)| r.1 = i)
                    .or_insert((i, i));
            }
        }
        chains
    }
}

fn num(v: &Value) -> u32 {
    u32::try_from(v.as_u64().expect("number")).expect("small")
}

type Location = Option<(String, u64)>;

/// The parts of a report the model predicts.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Outcome {
    entries: u64,
    chains: u64,
    warnings: Vec<(Location, AcraWarningKind)>,
    failure: Option<(Location, AcraFailureKind)>,
}

impl Outcome {
    fn of(report: &AcraReport) -> Self {
        let loc = |l: &Option<vigil_seal::acra::AcraLocation>| {
            l.as_ref().map(|l| (l.file.display().to_string(), l.line))
        };
        Self {
            entries: report.entries_verified,
            chains: report.chains,
            warnings: report
                .warnings
                .iter()
                .map(|w| (loc(&w.location), w.kind))
                .collect(),
            failure: report.failure.as_ref().map(|f| (loc(&f.location), f.kind)),
        }
    }

    fn detected(&self) -> bool {
        self.failure.is_some()
    }
}

/// Acra's verification over abstract lines.
fn model(files: &[String], lines: &[Line], strict: bool) -> Outcome {
    let mut out = Outcome {
        entries: 0,
        chains: 0,
        warnings: Vec::new(),
        failure: None,
    };
    let mut fresh = true;
    // (chain, index, end, location) of the last verified entry.
    let mut last: Option<(u32, u32, bool, Location)> = None;
    let mut numbers = vec![0u64; files.len()];
    for line in lines {
        numbers[line.file] += 1;
        let here = Some((files[line.file].clone(), numbers[line.file]));
        match line.kind {
            Kind::Unsigned => {
                if strict && last.as_ref().is_some_and(|l| !l.2) {
                    out.failure = Some((here, AcraFailureKind::Unsigned));
                    return out;
                }
                out.warnings.push((here, AcraWarningKind::Unsigned));
            }
            Kind::Malformed => {
                out.failure = Some((here, AcraFailureKind::Malformed));
                return out;
            }
            Kind::Signed {
                chain,
                index,
                new,
                end,
                intact,
            } => {
                if new {
                    if last.as_ref().is_some_and(|l| !l.2) {
                        out.failure = Some((here, AcraFailureKind::ChainEndMissing));
                        return out;
                    }
                    fresh = true;
                }
                let follows = if fresh {
                    index == 0
                } else {
                    last.as_ref()
                        .is_some_and(|l| index > 0 && (l.0, l.1) == (chain, index - 1))
                };
                if !(intact && follows) {
                    out.failure = Some((here, AcraFailureKind::IntegrityMismatch));
                    return out;
                }
                if new || last.is_none() {
                    out.chains += 1;
                }
                out.entries += 1;
                fresh = false;
                last = Some((chain, index, end, here));
            }
        }
    }
    match last {
        None if strict => out.failure = Some((None, AcraFailureKind::NoEntries)),
        None => out.warnings.push((None, AcraWarningKind::Empty)),
        Some((_, _, false, at)) if strict => {
            out.failure = Some((at, AcraFailureKind::FinalEndMissing));
        }
        Some((_, _, false, at)) => out.warnings.push((at, AcraWarningKind::FinalEndMissing)),
        Some(_) => {}
    }
    out
}

/// Runs the verifier over lines held in memory, file by file.
fn run(verifier: &AcraVerifier, files: &[String], lines: &[Line]) -> AcraReport {
    let mut contents = vec![Vec::new(); files.len()];
    for line in lines {
        contents[line.file].extend_from_slice(&line.text);
        contents[line.file].push(b'\n');
    }
    let sources = files
        .iter()
        .zip(contents)
        .map(|(f, c)| (PathBuf::from(f), std::io::Cursor::new(c)));
    verifier.verify_readers(sources).expect("in-memory read")
}

// ---------------------------------------------------------------------------
// Fixtures verify

#[test]
fn every_fixture_verifies_in_every_format() {
    for format in FORMATS {
        let fx = Fixture::load("rotation", format);
        for key in ["key.hex", "key.bin"] {
            let v = AcraVerifier::from_key_file(format, &key_file(key)).expect("key");
            for strict in [false, true] {
                let report = v.clone().strict(strict).verify(&fx.paths()).expect("reads");
                assert!(
                    report.is_verified(),
                    "{format} {key} strict={strict}:\n{report}"
                );
                assert_eq!(report.entries_verified, 38, "{format}");
                assert_eq!(report.entries_verified, fx.signed() as u64);
                assert_eq!(report.chains, 4);
                assert_eq!(report.files, 3);
                assert_eq!(report.lines, 46);
                // The unsigned startup lines of two processes, outside chains.
                assert_eq!(report.warnings_total, 8);
                assert!(
                    report
                        .warnings
                        .iter()
                        .all(|w| w.kind == AcraWarningKind::Unsigned)
                );
                // Named as the paths were given.
                let fixture_paths = fx.paths();
                let first = report.warnings[0].location.as_ref().expect("location");
                assert_eq!((&first.file, first.line), (&fixture_paths[0], 1));
                assert_eq!(Outcome::of(&report), model_with_paths(&fx, strict));
            }
        }
    }
}

/// The model's outcome for a fixture verified from its files on disk.
fn model_with_paths(fx: &Fixture, strict: bool) -> Outcome {
    let files: Vec<String> = fx.paths().iter().map(|p| p.display().to_string()).collect();
    model(&files, &fx.lines, strict)
}

#[test]
fn json_verifies_whatever_its_text_encoding() {
    // A shipper re-encoded every line (key order, spacing, \u escapes, 563.0,
    // \/): Acra's canonical bytes come from the parsed values.
    let fx = Fixture::load("json-reformatted", AcraFormat::Json);
    let report = verifier(AcraFormat::Json)
        .strict(true)
        .verify(&fx.paths())
        .expect("reads");
    assert!(report.is_verified(), "{report}");
    assert_eq!((report.entries_verified, report.chains), (38, 4));

    // Written by a Go older than 1.22: \u0008 and \u000c in the signed bytes.
    let fx = Fixture::load("json-go1.21", AcraFormat::Json);
    let report = verifier(AcraFormat::Json)
        .strict(true)
        .verify(&fx.paths())
        .expect("reads");
    assert!(report.is_verified(), "{report}");
    assert_eq!(report.entries_verified, fx.signed() as u64);
}

#[test]
fn entries_after_an_end_continue_the_chain() {
    for format in FORMATS {
        let fx = Fixture::load("after-end", format);
        let report = verifier(format).verify(&fx.paths()).expect("reads");
        assert!(report.is_verified(), "{report}");
        assert_eq!(
            (report.entries_verified, report.chains),
            (fx.signed() as u64, 1)
        );
        let last = report.warnings.last().expect("warning");
        assert_eq!(last.kind, AcraWarningKind::FinalEndMissing);
        assert_eq!(
            last.location.as_ref().map(|l| l.line),
            Some(fx.lines.len() as u64)
        );
        assert_eq!(Outcome::of(&report), model_with_paths(&fx, false));

        let report = verifier(format)
            .strict(true)
            .verify(&fx.paths())
            .expect("reads");
        let failure = report.failure.expect("strict");
        assert_eq!(failure.kind, AcraFailureKind::FinalEndMissing);
        assert_eq!(failure.message, "missing end of final audit log chain");
    }
}

#[test]
fn one_key_cannot_verify_across_a_key_rotation() {
    for format in FORMATS {
        let fx = Fixture::load("two-keys", format);
        let chains = fx.chains();
        let line_of = |pos: usize| {
            fx.lines[..=pos]
                .iter()
                .filter(|l| l.file == fx.lines[pos].file)
                .count() as u64
        };
        // The old key fails where the new key's chain starts...
        let report = verifier(format).verify(&fx.paths()).expect("reads");
        let failure = report.failure.expect("second chain");
        assert_eq!(failure.kind, AcraFailureKind::IntegrityMismatch);
        assert_eq!(
            failure.location.map(|l| l.line),
            Some(line_of(chains[&2].0))
        );
        assert_eq!(
            report.entries_verified,
            (chains[&1].1 - chains[&1].0 + 1) as u64
        );
        // ...and the new key at the first signed line.
        let other = AcraVerifier::from_key_file(format, &key_file("other.key.hex")).expect("key");
        let failure = other
            .verify(&fx.paths())
            .expect("reads")
            .failure
            .expect("first chain");
        assert_eq!(
            failure.location.map(|l| l.line),
            Some(line_of(chains[&1].0))
        );
    }
}

#[test]
fn wrong_key_fails_at_the_first_signed_line() {
    for format in FORMATS {
        let fx = Fixture::load("rotation", format);
        let wrong = AcraVerifier::new(format, [0x42; 32]);
        let report = wrong.verify(&fx.paths()).expect("reads");
        let failure = report.failure.expect("wrong key");
        assert_eq!(failure.kind, AcraFailureKind::IntegrityMismatch);
        assert_eq!(failure.message, "integrity doesn't match");
        let first = fx
            .lines
            .iter()
            .position(|l| l.kind != Kind::Unsigned)
            .expect("signed");
        let location = failure.location.expect("location");
        assert_eq!(
            (location.file, location.line),
            (fx.paths()[0].clone(), first as u64 + 1)
        );
        assert_eq!(report.entries_verified, 0);
    }
}

#[test]
fn crlf_and_single_file_copies_verify() {
    for format in FORMATS {
        let fx = Fixture::load("rotation", format);
        let mut all = Vec::new();
        for path in fx.paths() {
            all.extend(std::fs::read(path).expect("read"));
        }
        let crlf: Vec<u8> = all
            .split(|&b| b == b'\n')
            .flat_map(|l| l.iter().copied().chain(*b"\r\n"))
            .collect();
        for text in [all, crlf] {
            let report = verifier(format)
                .strict(true)
                .verify_readers([(PathBuf::from("all.log"), &text[..])])
                .expect("reads");
            assert!(report.is_verified(), "{report}");
            assert_eq!(
                (report.entries_verified, report.chains, report.files),
                (38, 4, 1)
            );
        }
    }
}

#[test]
fn files_out_of_order_fail() {
    for format in FORMATS {
        let fx = Fixture::load("rotation", format);
        let mut paths = fx.paths();
        paths.reverse();
        let report = verifier(format).verify(&paths).expect("reads");
        let failure = report.failure.expect("reversed");
        // log.txt starts inside chain 3.
        assert_eq!(failure.kind, AcraFailureKind::IntegrityMismatch);
        assert_eq!(
            failure.location.map(|l| (l.file, l.line)),
            Some((paths[0].clone(), 1))
        );
    }
}

#[test]
fn long_lines_are_verified_not_skipped() {
    for format in FORMATS {
        let fx = Fixture::load("rotation", format);
        let long = fx
            .lines
            .iter()
            .position(|l| l.text.len() > 64 << 10)
            .expect("long line");
        assert!(matches!(fx.lines[long].kind, Kind::Signed { .. }));
        assert!(
            fx.lines[long + 1..]
                .iter()
                .any(|l| matches!(l.kind, Kind::Signed { .. }))
        );
        let line_no = |pos: usize| {
            fx.lines[..=pos]
                .iter()
                .filter(|l| l.file == fx.lines[pos].file)
                .count() as u64
        };

        // A byte changed inside the long line, or in the line after it.
        for (target, at) in [(long, 40_000), (long + 1, 60)] {
            let mut lines = fx.lines.clone();
            lines[target].text[at] ^= 0x01;
            let report = run(&verifier(format), &fx.files, &lines);
            let failure = report.failure.expect("detected");
            assert_eq!(failure.kind, AcraFailureKind::IntegrityMismatch, "{format}");
            assert_eq!(failure.location.map(|l| l.line), Some(line_no(target)));
        }

        // A limit below the line's length refuses loudly instead of skipping.
        let err = verifier(format)
            .max_line_len(64 << 10)
            .verify(&fx.paths())
            .expect_err("limit");
        match err {
            AcraError::LineTooLong { path, line, limit } => {
                assert_eq!(path, fx.paths()[fx.lines[long].file]);
                assert_eq!((line, limit), (line_no(long), 64 << 10));
            }
            other => panic!("{other}"),
        }
    }
}

#[test]
fn missing_files_and_bad_keys_are_errors() {
    let fx = Fixture::load("rotation", AcraFormat::Plaintext);
    let mut paths = fx.paths();
    paths.insert(1, fx.dir.join("log.txt.missing"));
    let err = verifier(AcraFormat::Plaintext)
        .verify(&paths)
        .expect_err("missing");
    assert!(
        matches!(err, AcraError::Io { ref path, .. } if path == &paths[1]),
        "{err}"
    );

    let err = AcraVerifier::from_key_file(AcraFormat::Plaintext, &fx.dir.join("log.txt"))
        .expect_err("not a key");
    assert!(matches!(err, AcraError::InvalidKey(_)), "{err}");
    let err = AcraVerifier::from_key_file(AcraFormat::Plaintext, &fx.dir.join("nope"))
        .expect_err("no file");
    assert!(matches!(err, AcraError::KeyFile { .. }), "{err}");
    let hex = std::fs::read_to_string(key_file("key.hex")).expect("hex");
    let from_hex = AcraVerifier::from_key_hex(AcraFormat::Plaintext, &hex.to_uppercase())
        .expect("uppercase hex with newline");
    assert!(from_hex.verify(&fx.paths()).expect("reads").is_verified());
}

#[test]
fn equivalent_encodings_of_a_line_verify() {
    for format in FORMATS {
        let fx = Fixture::load("rotation", format);
        let mut lines = fx.lines.clone();
        for line in &mut lines {
            let text = String::from_utf8(line.text.clone()).expect("utf-8");
            line.text = match format {
                // Go's hex decoder takes either case.
                AcraFormat::Plaintext | AcraFormat::Cef => match text.rsplit_once(" integrity=") {
                    Some((data, tail)) => match tail.split_once(' ') {
                        Some((hex, rest)) => {
                            format!("{data} integrity={} {rest}", hex.to_uppercase())
                        }
                        None => format!("{data} integrity={}", tail.to_uppercase()),
                    },
                    None => text,
                },
                // The same values, so the same canonical bytes.
                AcraFormat::Json => text.replace("\\u003c", "\\u003C").replace("\":", "\" :"),
            }
            .into_bytes();
        }
        assert_ne!(
            lines.iter().map(|l| &l.text).collect::<Vec<_>>(),
            fx.lines.iter().map(|l| &l.text).collect::<Vec<_>>()
        );
        let report = run(&verifier(format).strict(true), &fx.files, &lines);
        assert!(report.is_verified(), "{format}: {report}");
        assert_eq!(report.entries_verified, 38);
    }
}

#[test]
fn fake_integrity_text_in_a_message_verifies() {
    // Acra's verifier calls this line unsigned and then fails on the next one.
    let fx = Fixture::load("rotation", AcraFormat::Plaintext);
    let fake = fx
        .lines
        .iter()
        .position(|l| {
            String::from_utf8_lossy(&l.text)
                .matches(" integrity=")
                .count()
                == 3
        })
        .expect("a message with fake integrity text");
    assert!(matches!(fx.lines[fake].kind, Kind::Signed { .. }));
    assert!(
        fx.lines[fake + 1..]
            .iter()
            .any(|l| matches!(l.kind, Kind::Signed { .. }))
    );
    let report = run(
        &verifier(AcraFormat::Plaintext).strict(true),
        &fx.files,
        &fx.lines,
    );
    assert!(report.is_verified(), "{report}");
}

#[test]
fn unsigned_lines_warn_and_fail_strict_inside_a_chain() {
    for format in FORMATS {
        let fx = Fixture::load("rotation", format);
        let chains = fx.chains();
        let injected = Line {
            file: 0,
            text: unsigned_line(format, "injected"),
            kind: Kind::Unsigned,
        };
        // Inside chain 1, and between chain 2's end and chain 3's start.
        for (at, inside) in [(chains[&1].0 + 2, true), (chains[&2].1 + 1, false)] {
            let mut lines = fx.lines.clone();
            let mut line = injected.clone();
            line.file = lines[at - 1].file;
            lines.insert(at, line);
            let here = lines[..=at]
                .iter()
                .filter(|l| l.file == lines[at].file)
                .count() as u64;
            let file = &fx.files[lines[at].file];

            let report = run(&verifier(format), &fx.files, &lines);
            assert!(report.is_verified(), "{report}");
            assert_eq!(report.entries_verified, 38);
            let warning = report
                .warnings
                .iter()
                .find(|w| {
                    w.location
                        .as_ref()
                        .is_some_and(|l| l.line == here && l.file == Path::new(file))
                })
                .expect("a warning at the inserted line");
            assert_eq!(warning.kind, AcraWarningKind::Unsigned);
            assert_eq!(
                warning.to_string(),
                format!("{file}:{here}: no integrity check for line")
            );

            let report = run(&verifier(format).strict(true), &fx.files, &lines);
            assert_eq!(report.is_verified(), !inside, "{report}");
            if inside {
                let failure = report.failure.expect("strict");
                assert_eq!(failure.kind, AcraFailureKind::Unsigned);
                assert_eq!(failure.location.map(|l| l.line), Some(here));
            }
        }
    }
}

// ---------------------------------------------------------------------------
// Random single mutations

/// SplitMix64: small, seedable, reproducible.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^ (z >> 31)
    }

    fn below(&mut self, n: usize) -> usize {
        (self.next() % n as u64) as usize
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
enum Mutation {
    ByteFlip,
    DeleteLine,
    SwapLines,
    DuplicateLine,
    RemoveChainNew,
    AddChainNew,
    DeleteChain,
    ReplayChain,
    ReorderChains,
    TruncateTail,
    InsertUnsigned,
    InsertLongLine,
}

const MUTATIONS: [(Mutation, usize); 12] = [
    (Mutation::ByteFlip, 60),
    (Mutation::DeleteLine, 25),
    (Mutation::SwapLines, 25),
    (Mutation::DuplicateLine, 25),
    (Mutation::RemoveChainNew, 20),
    (Mutation::AddChainNew, 15),
    (Mutation::DeleteChain, 15),
    (Mutation::ReplayChain, 15),
    (Mutation::ReorderChains, 10),
    (Mutation::TruncateTail, 25),
    (Mutation::InsertUnsigned, 20),
    (Mutation::InsertLongLine, 10),
];

/// The model's view of a line, parsed the way the reference describes
/// Acra's parsers (the MAC itself stays abstract).
#[derive(Debug, PartialEq)]
enum Parsed {
    Unsigned,
    Malformed,
    Signed {
        data: Data,
        integrity: Vec<u8>,
        new: bool,
    },
}

#[derive(Debug, PartialEq)]
enum Data {
    Bytes(Vec<u8>),
    Json(Value),
}

fn decode_hex(s: &[u8]) -> Option<Vec<u8>> {
    if !s.len().is_multiple_of(2) {
        return None;
    }
    s.chunks(2)
        .map(|p| u8::from_str_radix(std::str::from_utf8(p).ok()?, 16).ok())
        .collect::<Option<Vec<u8>>>()
        .filter(|_| s.iter().all(u8::is_ascii_hexdigit))
}

fn model_parse(format: AcraFormat, line: &[u8]) -> Parsed {
    const SEP: &[u8] = b" integrity=";
    if format == AcraFormat::Json {
        let Ok(Value::Object(mut object)) = serde_json::from_str(&String::from_utf8_lossy(line))
        else {
            return match serde_json::from_slice::<Value>(line) {
                Ok(Value::Null) => Parsed::Unsigned,
                _ => Parsed::Malformed,
            };
        };
        let Some(Value::String(integrity)) = object.remove("integrity") else {
            return Parsed::Unsigned;
        };
        let Some(integrity) = decode_hex(integrity.as_bytes()) else {
            return Parsed::Malformed;
        };
        let new = object.get("chain") == Some(&Value::String("new".into()));
        if new {
            object.remove("chain");
        }
        return Parsed::Signed {
            data: Data::Json(Value::Object(object)),
            integrity,
            new,
        };
    }
    let positions: Vec<usize> = (0..line.len().saturating_sub(SEP.len() - 1))
        .filter(|&i| line[i..].starts_with(SEP))
        .collect();
    let Some(&last) = positions.last() else {
        return Parsed::Unsigned;
    };
    let mut tail = &line[last + SEP.len()..];
    if format == AcraFormat::Cef
        && let Ok(s) = std::str::from_utf8(tail)
    {
        tail = s.trim().as_bytes();
    }
    let new = tail.ends_with(b" chain=new");
    if new {
        tail = &tail[..tail.len() - 10];
    }
    match decode_hex(tail) {
        Some(integrity) => Parsed::Signed {
            data: Data::Bytes(line[..last].to_vec()),
            integrity,
            new,
        },
        None if positions.len() == 1 => Parsed::Malformed,
        None => Parsed::Unsigned,
    }
}

fn unsigned_line(format: AcraFormat, msg: &str) -> Vec<u8> {
    match format {
        AcraFormat::Plaintext => {
            format!(r#"time="2021-07-01T23:00:00+03:00" level=info msg="{msg}""#).into_bytes()
        }
        AcraFormat::Json => format!(r#"{{"level":"info","msg":"{msg}"}}"#).into_bytes(),
        AcraFormat::Cef => {
            format!("CEF:0|cossacklabs|acra-server|0.85.0|100|{msg}|1|unixTime=1 ").into_bytes()
        }
    }
}

/// Applies one random mutation of a kind; `None` if it does not apply.
fn mutate(fx: &Fixture, mutation: Mutation, rng: &mut Rng) -> Option<Vec<Line>> {
    let mut lines = fx.lines.clone();
    let n = lines.len();
    let chains = fx.chains();
    let chain_ids: Vec<u32> = chains.keys().copied().collect();
    let insert_at = |lines: &mut Vec<Line>, at: usize, mut new: Vec<Line>| {
        let file = if at > 0 {
            lines[at - 1].file
        } else {
            lines[0].file
        };
        for line in &mut new {
            line.file = file;
        }
        lines.splice(at..at, new);
    };
    match mutation {
        Mutation::ByteFlip => {
            let signed: Vec<usize> = (0..n)
                .filter(|&i| matches!(lines[i].kind, Kind::Signed { .. }))
                .collect();
            let target = signed[rng.below(signed.len())];
            let at = rng.below(lines[target].text.len());
            let flipped = loop {
                let b = lines[target].text[at] ^ (1 + rng.below(255) as u8);
                if b != b'\n' && b != b'\r' {
                    break b;
                }
            };
            let Kind::Signed {
                chain, index, end, ..
            } = lines[target].kind
            else {
                unreachable!()
            };
            let before = model_parse(fx.format, &lines[target].text);
            lines[target].text[at] = flipped;
            lines[target].kind = match (model_parse(fx.format, &lines[target].text), before) {
                (Parsed::Unsigned, _) => Kind::Unsigned,
                (Parsed::Malformed, _) => Kind::Malformed,
                (
                    Parsed::Signed {
                        data,
                        integrity,
                        new,
                    },
                    Parsed::Signed {
                        data: data0,
                        integrity: integrity0,
                        ..
                    },
                ) => Kind::Signed {
                    chain,
                    index,
                    new,
                    end,
                    intact: data == data0 && integrity == integrity0,
                },
                (_, before) => panic!("fixture line parses as {before:?}"),
            };
        }
        Mutation::DeleteLine => {
            lines.remove(rng.below(n));
        }
        Mutation::SwapLines => {
            let a = rng.below(n);
            let b = if rng.below(2) == 0 {
                (a + 1) % n
            } else {
                rng.below(n)
            };
            if a == b {
                return None;
            }
            let (ta, ka) = (lines[a].text.clone(), lines[a].kind);
            lines[a].text = lines[b].text.clone();
            lines[a].kind = lines[b].kind;
            lines[b].text = ta;
            lines[b].kind = ka;
        }
        Mutation::DuplicateLine => {
            let line = lines[rng.below(n)].clone();
            insert_at(&mut lines, rng.below(n + 1), vec![line]);
        }
        Mutation::RemoveChainNew => {
            let starts: Vec<usize> = chains.values().map(|r| r.0).collect();
            let target = starts[rng.below(starts.len())];
            let line = &mut lines[target];
            line.text = match fx.format {
                AcraFormat::Json => String::from_utf8(line.text.clone())
                    .expect("utf-8")
                    .replacen(r#""chain":"new","#, "", 1)
                    .into_bytes(),
                _ => line
                    .text
                    .strip_suffix(b" chain=new")
                    .expect("chain=new")
                    .to_vec(),
            };
            if let Kind::Signed { new, .. } = &mut line.kind {
                *new = false;
            }
        }
        Mutation::AddChainNew => {
            let inner: Vec<usize> = (0..n)
                .filter(|&i| matches!(lines[i].kind, Kind::Signed { index: 1.., .. }))
                .collect();
            let line = &mut lines[inner[rng.below(inner.len())]];
            line.text = match fx.format {
                AcraFormat::Json => [&b"{\"chain\":\"new\","[..], &line.text[1..]].concat(),
                _ => [&line.text[..], b" chain=new"].concat(),
            };
            // An end line keeps its "chain":"end": the last duplicate wins.
            let Parsed::Signed { new, .. } = model_parse(fx.format, &line.text) else {
                panic!("still signed")
            };
            if let Kind::Signed { new: flag, .. } = &mut line.kind {
                *flag = new;
            }
        }
        Mutation::DeleteChain => {
            let (start, end) = chains[&chain_ids[rng.below(chain_ids.len())]];
            lines.drain(start..=end);
        }
        Mutation::ReplayChain => {
            let (start, end) = chains[&chain_ids[rng.below(chain_ids.len())]];
            let copy = lines[start..=end].to_vec();
            // Before the log, or right after any chain's end.
            let mut spots = vec![0];
            spots.extend(chains.values().map(|r| r.1 + 1));
            let at = spots[rng.below(spots.len())];
            insert_at(&mut lines, at, copy);
        }
        Mutation::ReorderChains => {
            let a = chain_ids[rng.below(chain_ids.len())];
            let b = chain_ids[rng.below(chain_ids.len())];
            if a == b {
                return None;
            }
            let ((s1, e1), (s2, e2)) = (chains[&a.min(b)], chains[&a.max(b)]);
            let files: Vec<usize> = lines.iter().map(|l| l.file).collect();
            let mut reordered = lines[..s1].to_vec();
            reordered.extend_from_slice(&lines[s2..=e2]);
            reordered.extend_from_slice(&lines[e1 + 1..s2]);
            reordered.extend_from_slice(&lines[s1..=e1]);
            reordered.extend_from_slice(&lines[e2 + 1..]);
            for (line, file) in reordered.iter_mut().zip(files) {
                line.file = file;
            }
            lines = reordered;
        }
        Mutation::TruncateTail => {
            lines.truncate(1 + rng.below(n - 1));
        }
        Mutation::InsertUnsigned | Mutation::InsertLongLine => {
            let msg = if mutation == Mutation::InsertLongLine {
                format!("injected {}", "A".repeat(70_000 + rng.below(30_000)))
            } else {
                "injected".to_owned()
            };
            let line = Line {
                file: 0,
                text: unsigned_line(fx.format, &msg),
                kind: Kind::Unsigned,
            };
            insert_at(&mut lines, rng.below(n + 1), vec![line]);
        }
    }
    Some(lines)
}

/// Per mutation kind: (runs, detected, detected only with strict, undetected).
type Tally = BTreeMap<Mutation, [usize; 4]>;

#[test]
fn random_single_mutations_match_the_model() {
    let seed = std::env::var("ACRA_MUTATION_SEED")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(0x5eed_ac7a_u64);
    let mut summary = String::new();
    for format in FORMATS {
        let fx = Fixture::load("rotation", format);
        let lax = verifier(format);
        let strict = verifier(format).strict(true);
        let baseline = Outcome::of(&run(&lax, &fx.files, &fx.lines));
        let mut rng = Rng(seed ^ format.to_string().len() as u64);
        let mut tally = Tally::new();
        let mut total = 0;
        for (mutation, runs) in MUTATIONS {
            let mut done = 0;
            while done < runs {
                let Some(lines) = mutate(&fx, mutation, &mut rng) else {
                    continue;
                };
                done += 1;
                let got = Outcome::of(&run(&lax, &fx.files, &lines));
                let got_strict = Outcome::of(&run(&strict, &fx.files, &lines));
                let context = || {
                    let diff: Vec<String> = lines
                        .iter()
                        .zip(&fx.lines)
                        .enumerate()
                        .filter(|(_, (a, b))| a.text != b.text || a.kind != b.kind)
                        .take(3)
                        .map(|(i, (a, _))| {
                            format!(
                                "#{i} {:?} {}",
                                a.kind,
                                String::from_utf8_lossy(&a.text[..a.text.len().min(300)])
                            )
                        })
                        .collect();
                    format!(
                        "{format} {mutation:?} seed={seed:#x} run={done}\n{}",
                        diff.join("\n")
                    )
                };
                assert_eq!(got, model(&fx.files, &lines, false), "{}", context());
                assert_eq!(got_strict, model(&fx.files, &lines, true), "{}", context());
                check_invariants(
                    mutation,
                    &fx,
                    &lines,
                    &baseline,
                    &got,
                    &got_strict,
                    &context,
                );
                let slot = match (got.detected(), got_strict.detected()) {
                    (true, _) => 1,
                    (false, true) => 2,
                    (false, false) => 3,
                };
                let counts = tally.entry(mutation).or_default();
                counts[0] += 1;
                counts[slot] += 1;
                total += 1;
            }
        }
        assert!(total >= 200);
        summary +=
            &format!("{format}: {total} mutations (runs / detected / strict only / undetected)\n");
        for (mutation, [runs, det, strict_only, undet]) in &tally {
            summary += &format!("  {mutation:?}: {runs} / {det} / {strict_only} / {undet}\n");
        }
    }
    eprintln!("{summary}");
}

/// What the algorithm can and cannot detect, per mutation kind.
fn check_invariants(
    mutation: Mutation,
    fx: &Fixture,
    lines: &[Line],
    baseline: &Outcome,
    lax: &Outcome,
    strict: &Outcome,
    context: &dyn Fn() -> String,
) {
    match mutation {
        Mutation::ByteFlip => {
            let (flipped, original) = lines
                .iter()
                .zip(&fx.lines)
                .find(|(a, b)| a.text != b.text)
                .expect("a flipped line");
            let neutral = match (flipped.kind, original.kind) {
                (Kind::Signed { intact, new, .. }, Kind::Signed { new: new0, .. }) => {
                    intact && new == new0
                }
                _ => false,
            };
            if neutral {
                // Hex case in the check, or an equivalent JSON escape.
                assert_eq!(lax, baseline, "{}", context());
            } else {
                assert!(strict.detected(), "{}", context());
            }
        }
        Mutation::DeleteLine | Mutation::SwapLines | Mutation::DuplicateLine => {
            let signed = |ls: &[Line]| -> Vec<Vec<u8>> {
                ls.iter()
                    .filter(|l| matches!(l.kind, Kind::Signed { .. }))
                    .map(|l| l.text.clone())
                    .collect()
            };
            if signed(lines) != signed(&fx.lines) {
                // The order of signed lines changed.
                assert!(strict.detected(), "{}", context());
            } else {
                // Only unsigned lines moved: at most an unsigned line now
                // inside a chain, which only strict flags.
                assert!(!lax.detected(), "{}", context());
            }
        }
        Mutation::RemoveChainNew => {
            let first_chain = lines
                .iter()
                .find(|l| matches!(l.kind, Kind::Signed { .. }))
                .is_some_and(|l| matches!(l.kind, Kind::Signed { new: false, .. }));
            // Only the log's first chain starts fresh anyway.
            assert_eq!(lax.detected(), !first_chain, "{}", context());
            if lax.detected() {
                assert_eq!(
                    lax.failure.as_ref().map(|f| f.1),
                    Some(AcraFailureKind::IntegrityMismatch)
                );
            }
        }
        Mutation::AddChainNew => {
            // Mid-chain, the previous entry is never an end.
            let flagged = lines.iter().any(|l| {
                matches!(
                    l.kind,
                    Kind::Signed {
                        index: 1..,
                        new: true,
                        ..
                    }
                )
            });
            assert_eq!(lax.detected(), flagged, "{}", context());
            if flagged {
                assert_eq!(
                    lax.failure.as_ref().map(|f| f.1),
                    Some(AcraFailureKind::ChainEndMissing),
                    "{}",
                    context()
                );
            }
        }
        Mutation::DeleteChain | Mutation::ReplayChain | Mutation::ReorderChains => {
            // Every chain restarts from SHA256(K): invisible, even with strict.
            assert!(!lax.detected() && !strict.detected(), "{}", context());
            assert_eq!(
                lax.warnings_of(AcraWarningKind::FinalEndMissing),
                0,
                "{}",
                context()
            );
        }
        Mutation::TruncateTail => {
            assert!(!lax.detected(), "{}", context());
            let last_signed = lines.iter().rev().find_map(|l| match l.kind {
                Kind::Signed { end, .. } => Some(end),
                _ => None,
            });
            assert_eq!(
                strict.detected(),
                last_signed != Some(true),
                "{}",
                context()
            );
        }
        Mutation::InsertUnsigned | Mutation::InsertLongLine => {
            // A warning at the inserted line; every signed entry still verified.
            assert!(!lax.detected(), "{}", context());
            assert_eq!(lax.entries, baseline.entries, "{}", context());
            assert_eq!(
                lax.warnings_of(AcraWarningKind::Unsigned),
                baseline.warnings_of(AcraWarningKind::Unsigned) + 1,
                "{}",
                context()
            );
            let inside_chain = {
                let at = lines
                    .iter()
                    .position(|l| String::from_utf8_lossy(&l.text).contains("injected"))
                    .expect("inserted");
                lines[..at]
                    .iter()
                    .rev()
                    .find_map(|l| match l.kind {
                        Kind::Signed { end, .. } => Some(!end),
                        _ => None,
                    })
                    .unwrap_or(false)
            };
            assert_eq!(strict.detected(), inside_chain, "{}", context());
            if strict.detected() {
                assert_eq!(
                    strict.failure.as_ref().map(|f| f.1),
                    Some(AcraFailureKind::Unsigned)
                );
            }
        }
    }
}

impl Outcome {
    fn warnings_of(&self, kind: AcraWarningKind) -> usize {
        self.warnings.iter().filter(|w| w.1 == kind).count()
    }
}
