//! Mutation test of the sealed audit log (STYLE.md §7, corruption tests on
//! purpose): random single mutations of a sealed log of more than 10,000
//! entries, each on a fresh copy, each found by `Verifier` and named at the
//! right file, line and seq with the right `FailureKind`.
//!
//! The seed is printed (`VIGIL_MUTATION_SEED=…`) and can be set with the
//! same environment variable. It chooses every mutation; the log itself
//! differs between runs only in its timestamps and therefore its MACs.
//!
//! Speed: each log is sealed and verified once, with a `Bookmark` after every
//! entry. A mutation rewrites only the segment files it touches, in a
//! scratch directory on tmpfs when there is one, and the verifier resumes at
//! the bookmark just before the first changed entry, reading only as far as
//! the failure. That is exact: the bytes before the bookmark are the
//! untouched log's. Some mutations are also verified from the first entry, to
//! show the resumed verdict is the same. The log restarts the writer every
//! 700 events (a new chain each time), which bounds the cost of deriving a
//! chain key when resuming in key mode.
//!
//! Expected result of each kind (key mode unless said):
//!
//! ```text
//! byte flip          modified, or malformed (the line no longer parses), or unknown_key (a
//!                    chain start's key version changed), at the flipped line; seq: that
//!                    line's (none for malformed, but that of the first entry when the flip
//!                    joined two lines). Public key: the same at the line when the line no
//!                    longer parses, its seq changed or its checkpoint note changed
//!                    (forged_checkpoint); otherwise fork at the first checkpoint entry after
//!                    it, with that entry's seq. Public-key flips hit only the bytes before
//!                    the last checkpoint entry: nothing but a later kept checkpoint covers it.
//! line deleted       any but the last entry (that is a cut tail): deleted, at the deleted
//!                    line's former place (after the last line of the file when it was the
//!                    last), seq = the deleted seq. Both modes.
//! line inserted      a copy of an earlier entry placed later: replayed; a copy of a later
//!                    entry placed earlier: inserted; at the copy, seq = the copy's.
//! line swapped       two lines of a file, 1 to 32 apart: reordered, at the first of them,
//!                    seq = the seq now found there.
//! line duplicated    right after itself: duplicated, at the copy, seq = the copy's.
//! tail truncated     whole lines and/or whole last segments: truncated_tail after the last
//!                    remaining line, seq = the first missing, but only with the final
//!                    `checkpoint` note kept off the host (both modes). Without it the
//!                    shorter log verifies: that is the limit of any log on its own host.
//!                    The final checkpoint entry covers the entries before it, not itself,
//!                    so at least one more entry is cut.
//! segment deleted    not the last (that is truncation): missing_segment at line 1 of the
//!                    next file, seq = the first missing. Both modes.
//! checkpoint forged  a checkpoint entry's note re-signed by another key, or its root or size
//!                    altered under the old signature: modified with the audit key,
//!                    forged_checkpoint with the public key, at that entry.
//! fork               two kept checkpoints of one size, one faked with the real signing key:
//!                    fork at the entry where the log reaches that size. A checkpoint entry
//!                    re-signed with the real key over a false root: fork with the public
//!                    key, modified with the audit key, at that entry.
//! segment renamed    its name no longer its first seq: reordered_segment at line 1 of the
//!                    renamed file, seq = its first seq.
//! ```

#![allow(clippy::unwrap_used)] // helpers outside #[test] fns, as in tests

use std::fmt::Write as _;
use std::path::{Path, PathBuf};
use std::sync::OnceLock;
use std::time::Instant;

use vigil_event::{Event, catalog};
use vigil_seal::{
    Bookmark, Checkpoint, CheckpointSigner, CheckpointVerifier, FailureKind, LineFormat, Report,
    SealConfig, SealKeys, Sealer, SyncPolicy, Verifier, list_segments, segment_name, split_sealed,
    write_sealed,
};
use zeroize::Zeroizing;

const AUDIT_KEY_1: [u8; 32] = [0x11; 32];
const AUDIT_KEY_2: [u8; 32] = [0x22; 32];
const SIGNING_SEED: [u8; 32] = [0x33; 32];
const OTHER_SEED: [u8; 32] = [0x44; 32];
const ORIGIN: &str = "db1";

/// Events sealed (the log holds more entries: chain starts, checkpoints…).
const EVENTS: u64 = 10_000;
/// The writer is closed and opened again after this many events.
const RESTART_EVERY: u64 = 700;
/// Mutations of each kind, JSON log.
const PER_KIND: usize = 1_000;
/// Mutations of each kind, text and CEF logs.
const PER_KIND_OTHER: usize = 150;
/// Resumed mutations also verified from the first entry, when the bookmark
/// is at most this far in (cheap), and every `CROSS_EVERY`-th in release.
const CROSS_NEAR: u64 = 150;
const CROSS_EVERY: usize = if cfg!(debug_assertions) {
    usize::MAX
} else {
    100
};

// ---------------------------------------------------------------------------
// Seeded randomness.

fn seed() -> u64 {
    static SEED: OnceLock<u64> = OnceLock::new();
    *SEED.get_or_init(|| {
        let seed = match std::env::var("VIGIL_MUTATION_SEED") {
            Ok(s) => {
                let s = s.trim();
                let parsed = match s.strip_prefix("0x") {
                    Some(hex) => u64::from_str_radix(hex, 16),
                    None => s.parse(),
                };
                parsed.unwrap_or_else(|_| panic!("VIGIL_MUTATION_SEED={s:?} is not a number"))
            }
            Err(_) => {
                let t = std::time::SystemTime::now()
                    .duration_since(std::time::UNIX_EPOCH)
                    .map(|d| d.as_nanos() as u64)
                    .unwrap_or(0);
                t ^ u64::from(std::process::id()).rotate_left(32)
            }
        };
        eprintln!("mutation test: VIGIL_MUTATION_SEED={seed}");
        seed
    })
}

/// xorshift64*, seeded through splitmix64.
struct Rng(u64);

impl Rng {
    fn new(stream: u64) -> Rng {
        let mut z = seed() ^ stream.wrapping_mul(0x9e37_79b9_7f4a_7c15);
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        Rng((z ^ (z >> 31)) | 1)
    }

    fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_f491_4f6c_dd1d)
    }

    /// Uniform in `lo..=hi`.
    fn range(&mut self, lo: u64, hi: u64) -> u64 {
        assert!(lo <= hi, "{lo} > {hi}");
        lo + self.next() % (hi - lo + 1)
    }

    fn index(&mut self, len: usize) -> usize {
        self.range(0, len as u64 - 1) as usize
    }

    fn coin(&mut self) -> bool {
        self.next() & 1 == 1
    }
}

// ---------------------------------------------------------------------------
// The sealed logs, built once per format.

fn lookup(version: u32) -> Option<Zeroizing<[u8; 32]>> {
    match version {
        1 => Some(Zeroizing::new(AUDIT_KEY_1)),
        2 => Some(Zeroizing::new(AUDIT_KEY_2)),
        _ => None,
    }
}

fn signer(seed: &[u8; 32]) -> CheckpointSigner {
    CheckpointSigner::new(ORIGIN, seed).unwrap()
}

/// The real signer, made once (deriving a key pair is slow unoptimised).
fn real_signer() -> &'static CheckpointSigner {
    static SIGNER: OnceLock<CheckpointSigner> = OnceLock::new();
    SIGNER.get_or_init(|| signer(&SIGNING_SEED))
}

fn vkey() -> CheckpointVerifier {
    static VKEY: OnceLock<CheckpointVerifier> = OnceLock::new();
    VKEY.get_or_init(|| real_signer().verifier()).clone()
}

fn keys(version: u32) -> SealKeys {
    SealKeys {
        version,
        audit_key: Zeroizing::new(if version == 1 {
            AUDIT_KEY_1
        } else {
            AUDIT_KEY_2
        }),
        signer: signer(&SIGNING_SEED),
    }
}

/// Where to put scratch files: tmpfs when there is one.
fn tempdir() -> tempfile::TempDir {
    let shm = Path::new("/dev/shm");
    if shm.is_dir()
        && let Ok(d) = tempfile::Builder::new()
            .prefix("vigil-mutation-")
            .tempdir_in(shm)
    {
        return d;
    }
    tempfile::tempdir().unwrap()
}

struct Seg {
    name: String,
    first: u64,
    data: Vec<u8>,
    /// Start of every line, then the file's length.
    starts: Vec<usize>,
}

impl Seg {
    fn lines(&self) -> usize {
        self.starts.len() - 1
    }

    /// Line `i` with its newline.
    fn line_nl(&self, i: usize) -> &[u8] {
        &self.data[self.starts[i]..self.starts[i + 1]]
    }

    /// Line `i` without its newline.
    fn line(&self, i: usize) -> &[u8] {
        let l = self.line_nl(i);
        l.strip_suffix(b"\n").unwrap_or(l)
    }

    fn line_of_offset(&self, off: usize) -> usize {
        self.starts.partition_point(|&s| s <= off) - 1
    }

    /// The file with line `i` replaced by `with` (several lines, or none).
    fn splice(&self, i: usize, with: &[&[u8]]) -> Vec<u8> {
        let mut d = Vec::with_capacity(self.data.len() + 1024);
        d.extend_from_slice(&self.data[..self.starts[i]]);
        for l in with {
            d.extend_from_slice(l);
        }
        d.extend_from_slice(&self.data[self.starts[i + 1]..]);
        d
    }

    /// The file with `line` inserted before line `i` (`i == lines()`: at the end).
    fn insert(&self, i: usize, line: &[u8]) -> Vec<u8> {
        let mut d = Vec::with_capacity(self.data.len() + line.len());
        d.extend_from_slice(&self.data[..self.starts[i]]);
        d.extend_from_slice(line);
        d.extend_from_slice(&self.data[self.starts[i]..]);
        d
    }
}

struct Log {
    format: LineFormat,
    segs: Vec<Seg>,
    /// By seq - 1: the segment and line of each entry.
    entries: Vec<(usize, usize)>,
    /// Seqs of the checkpoint entries.
    checkpoints: Vec<u64>,
    /// By seq - 1: the bookmark after each entry.
    bookmarks: Vec<Bookmark>,
    /// The final `checkpoint` file: what an auditor keeps off the host.
    kept_note: String,
    kept_size: u64,
    /// The last seq.
    last: u64,
    built: std::time::Duration,
}

impl Log {
    fn get(format: LineFormat) -> &'static Log {
        static JSON: OnceLock<Log> = OnceLock::new();
        static TEXT: OnceLock<Log> = OnceLock::new();
        static CEF: OnceLock<Log> = OnceLock::new();
        let cell = match format {
            LineFormat::Json => &JSON,
            LineFormat::Text => &TEXT,
            LineFormat::Cef => &CEF,
        };
        cell.get_or_init(|| Log::build(format))
    }

    fn build(format: LineFormat) -> Log {
        let t = Instant::now();
        let dir = tempdir();
        let mut cfg = SealConfig::new(dir.path(), ORIGIN);
        cfg.format = format;
        cfg.sync = SyncPolicy::Never;
        cfg.segment_max_bytes = 128 << 10;
        cfg.checkpoint_every = 500;
        let open = |version| {
            let (sealer, recovery) = Sealer::open(cfg.clone(), keys(version)).unwrap();
            assert_eq!(
                recovery.cut_bytes + recovery.corrupt_lines,
                0,
                "{recovery:?}"
            );
            assert!(!recovery.rebuilt, "{recovery:?}");
            sealer
        };
        let mut version = 1;
        let mut sealer = open(version);
        let mut words = Rng::new(0x10c);
        for i in 0..EVENTS {
            if i > 0 && i % RESTART_EVERY == 0 {
                sealer.close().unwrap();
                sealer = open(version);
            }
            if i == EVENTS / 2 {
                sealer.rotate_key(2, Zeroizing::new(AUDIT_KEY_2)).unwrap();
                version = 2;
            }
            let mut query = String::from("SELECT * FROM accounts WHERE id = $1");
            for _ in 0..words.range(0, 12) {
                write!(
                    query,
                    " AND c{} = ${}",
                    words.range(0, 99),
                    words.range(2, 9)
                )
                .unwrap();
            }
            let mut ev = Event::new(catalog::STATEMENT_EXECUTED, "statement executed")
                .field("query", query)
                .field("i", i);
            sealer.append(&mut ev).unwrap();
        }
        sealer.close().unwrap();

        let kept_note = std::fs::read_to_string(dir.path().join("checkpoint")).unwrap();
        let kept_size = vkey().verify(&kept_note).unwrap().size;
        let mut segs = Vec::new();
        let mut entries = Vec::new();
        let mut checkpoints = Vec::new();
        for (first, path) in list_segments(dir.path()).unwrap() {
            let data = std::fs::read(&path).unwrap();
            let mut starts = vec![0];
            starts.extend(
                data.iter()
                    .enumerate()
                    .filter(|(_, b)| **b == b'\n')
                    .map(|(i, _)| i + 1),
            );
            assert_eq!(
                starts.last(),
                Some(&data.len()),
                "every line ends with a newline"
            );
            let seg = Seg {
                name: segment_name(first),
                first,
                data,
                starts,
            };
            for i in 0..seg.lines() {
                let (_, seal) = split_sealed(format, seg.line(i)).unwrap();
                assert_eq!(seal.seq, entries.len() as u64 + 1, "gapless");
                assert_eq!(
                    seal.seq,
                    first + i as u64,
                    "a segment's lines are consecutive"
                );
                if seal.checkpoint.is_some() {
                    checkpoints.push(seal.seq);
                }
                entries.push((segs.len(), i));
            }
            segs.push(seg);
        }
        let last = entries.len() as u64;
        assert!(last > EVENTS, "{last} entries");
        assert!(segs.len() >= 5, "{} segments", segs.len());
        assert_eq!(
            checkpoints.last(),
            Some(&last),
            "a closed log ends with a checkpoint"
        );
        assert_eq!(
            kept_size,
            last - 1,
            "the final checkpoint covers all but itself"
        );

        // Verify once, with a bookmark after every entry.
        let all: Vec<u64> = (1..=last).collect();
        let report = Verifier::new()
            .keys(&lookup)
            .public_key(vkey())
            .bookmarks_after(&all)
            .verify(&[dir.path().to_path_buf()])
            .unwrap();
        assert!(report.verified(), "{format:?}: {:?}", report.failure);
        assert_eq!(report.bookmarks.len() as u64, last);
        Log {
            format,
            segs,
            entries,
            checkpoints,
            bookmarks: report.bookmarks,
            kept_note,
            kept_size,
            last,
            built: t.elapsed(),
        }
    }

    fn loc(&self, seq: u64) -> (usize, usize) {
        self.entries[seq as usize - 1]
    }

    fn line(&self, seq: u64) -> &[u8] {
        let (s, i) = self.loc(seq);
        self.segs[s].line(i)
    }
}

// ---------------------------------------------------------------------------
// Mutated copies and their verification.

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Mode {
    /// The audit keys only.
    Key,
    /// The checkpoint verifier key only.
    Public,
    /// Both (what `vigil verify` uses with a key directory).
    Both,
}

/// What happens to one segment file in a mutated copy.
enum Change {
    Bytes(Vec<u8>),
    Gone,
    Renamed(String),
}

#[derive(Debug, PartialEq, Eq)]
struct Expect {
    kind: FailureKind,
    file: PathBuf,
    line: u64,
    seq: Option<u64>,
}

/// One test's view of a log: its own copy of the segments, a directory for
/// mutated files, its random stream and counters.
struct Lab {
    log: &'static Log,
    dir: tempfile::TempDir,
    orig: Vec<PathBuf>,
    rng: Rng,
    test: &'static str,
    cases: usize,
    from_start: usize,
    start: Instant,
}

impl Lab {
    fn new(format: LineFormat, test: &'static str, stream: u64) -> Lab {
        let log = Log::get(format);
        let dir = tempdir();
        std::fs::create_dir(dir.path().join("orig")).unwrap();
        std::fs::create_dir(dir.path().join("mut")).unwrap();
        let orig: Vec<PathBuf> = log
            .segs
            .iter()
            .map(|s| {
                let p = dir.path().join("orig").join(&s.name);
                std::fs::write(&p, &s.data).unwrap();
                p
            })
            .collect();
        Lab {
            log,
            dir,
            orig,
            rng: Rng::new(stream),
            test,
            cases: 0,
            from_start: 0,
            start: Instant::now(),
        }
    }

    fn mutated(&self, name: &str) -> PathBuf {
        self.dir.path().join("mut").join(name)
    }

    /// Where segment `s` is in a copy where it was rewritten.
    fn changed(&self, s: usize) -> PathBuf {
        self.mutated(&self.log.segs[s].name)
    }

    /// The segment files of a copy with these changes.
    fn files(&self, changes: Vec<(usize, Change)>) -> Vec<PathBuf> {
        let mut files: Vec<Option<PathBuf>> = self.orig.iter().cloned().map(Some).collect();
        for (s, change) in changes {
            files[s] = match change {
                Change::Bytes(data) => {
                    let p = self.changed(s);
                    std::fs::write(&p, data).unwrap();
                    Some(p)
                }
                Change::Gone => None,
                Change::Renamed(name) => {
                    let p = self.mutated(&name);
                    let _ = std::fs::remove_file(&p);
                    std::fs::hard_link(&self.orig[s], &p).unwrap();
                    Some(p)
                }
            };
        }
        files.into_iter().flatten().collect()
    }

    fn verifier(&self, mode: Mode, kept: &[(PathBuf, String)]) -> Verifier<'static> {
        let mut v = Verifier::new();
        if mode != Mode::Public {
            v = v.keys(&lookup);
        }
        if mode != Mode::Key {
            v = v.public_key(vkey());
        }
        for (path, note) in kept {
            v = v.external_checkpoint(path, note).unwrap();
        }
        v
    }

    /// Verifies a copy, resuming after entry `after` (0: from the start).
    fn verify(
        &mut self,
        mode: Mode,
        after: u64,
        files: &[PathBuf],
        kept: &[(PathBuf, String)],
    ) -> Report {
        let mut v = self.verifier(mode, kept);
        if after > 0 {
            v = v.resume(self.log.bookmarks[after as usize - 1].clone());
        }
        let report = v.verify(files).unwrap();
        self.cases += 1;
        if after > 0 && (after <= CROSS_NEAR || self.cases.is_multiple_of(CROSS_EVERY)) {
            // The resumed verdict is the verdict from the first entry.
            let whole = self.verifier(mode, kept).verify(files).unwrap();
            assert_eq!(
                whole.failure, report.failure,
                "{}: resumed after {after}",
                self.test
            );
            self.from_start += 1;
        }
        report
    }

    /// Verifies a copy and checks the failure is the one expected.
    fn expect(
        &mut self,
        mode: Mode,
        after: u64,
        files: &[PathBuf],
        kept: &[(PathBuf, String)],
        expect: Expect,
        what: &dyn Fn() -> String,
    ) {
        let report = self.verify(mode, after, files, kept);
        let got = report.failure.as_ref().map(|f| Expect {
            kind: f.kind,
            file: f.file.clone(),
            line: f.line,
            seq: f.seq,
        });
        if got.as_ref() != Some(&expect) {
            panic!(
                "{} ({:?} log, {mode:?} mode, case {}, VIGIL_MUTATION_SEED={}): {}\n  expected {expect:?}\n  got      {:?}",
                self.test,
                self.log.format,
                self.cases,
                seed(),
                what(),
                report.failure,
            );
        }
    }

    fn done(&self) {
        eprintln!(
            "{}: {:?} log, {} verifications ({} also from the start) in {:.2?}",
            self.test,
            self.log.format,
            self.cases,
            self.from_start,
            self.start.elapsed()
        );
    }
}

// ---------------------------------------------------------------------------
// Mutations.

/// What the verifier should say about line `li` of segment `s` after the
/// byte at `off` (in the segment) became `data[off]`.
fn flip_outcome(lab: &Lab, mode: Mode, s: usize, li: usize, off: usize, data: &[u8]) -> Expect {
    let log = lab.log;
    let seg = &log.segs[s];
    let seq = seg.first + li as u64;
    let (_, orig) = split_sealed(log.format, seg.line(li)).unwrap();
    let (ls, nl) = (seg.starts[li], seg.starts[li + 1] - 1);
    let at = |kind, seq| Expect {
        kind,
        file: lab.changed(s),
        line: li as u64 + 1,
        seq,
    };
    let line: &[u8] = if off == nl {
        if li + 1 < seg.lines() {
            // The newline is gone: this line and the next are one.
            let joined = &data[ls..seg.starts[li + 2] - 1];
            let seq = split_sealed(log.format, joined).ok().map(|_| seq);
            return at(FailureKind::Malformed, seq);
        }
        &data[ls..=nl] // the last line of the file, now unterminated
    } else if data[off] == b'\n' {
        // A new line break: the line ends early.
        &data[ls..off]
    } else {
        &data[ls..nl]
    };
    let Ok((_, seal)) = split_sealed(log.format, line) else {
        return at(FailureKind::Malformed, None);
    };
    if seal.seq != seq {
        return at(FailureKind::Modified, Some(seq));
    }
    if mode != Mode::Public {
        let unknown = seal.start.is_some() && lookup(seal.key_version).is_none();
        return at(
            if unknown {
                FailureKind::UnknownKey
            } else {
                FailureKind::Modified
            },
            Some(seq),
        );
    }
    assert_ne!(data[off], b'\n', "a JSON line cut short cannot parse");
    if seal.checkpoint != orig.checkpoint {
        return at(FailureKind::ForgedCheckpoint, Some(seq));
    }
    // Found only by the next checkpoint's root.
    let cp = *log.checkpoints.iter().find(|&&c| c > seq).unwrap();
    let (cs, ci) = log.loc(cp);
    let file = if cs == s {
        lab.changed(s)
    } else {
        lab.orig[cs].clone()
    };
    Expect {
        kind: FailureKind::Fork,
        file,
        line: ci as u64 + 1,
        seq: Some(cp),
    }
}

fn byte_flips(lab: &mut Lab, mode: Mode, n: usize) {
    let log = lab.log;
    let total: usize = log.segs.iter().map(|s| s.data.len()).sum();
    // In public-key mode nothing covers the last checkpoint entry's bytes.
    let (ls, li) = log.loc(log.last);
    let limit = if mode == Mode::Public {
        log.segs[..ls].iter().map(|s| s.data.len()).sum::<usize>() + log.segs[ls].starts[li]
    } else {
        total
    };
    for _ in 0..n {
        let mut off = lab.rng.index(limit);
        let mut s = 0;
        while off >= log.segs[s].data.len() {
            off -= log.segs[s].data.len();
            s += 1;
        }
        let seg = &log.segs[s];
        let li = seg.line_of_offset(off);
        let x = lab.rng.range(1, 255) as u8;
        let mut data = seg.data.clone();
        data[off] ^= x;
        let expect = flip_outcome(lab, mode, s, li, off, &data);
        let seq = seg.first + li as u64;
        let files = lab.files(vec![(s, Change::Bytes(data))]);
        let what = || {
            format!(
                "byte {off} of {} (line {}, seq {seq}) ^= {x:#04x}",
                seg.name,
                li + 1
            )
        };
        lab.expect(mode, seq - 1, &files, &[], expect, &what);
    }
}

fn deleted_lines(lab: &mut Lab, mode: Mode, n: usize) {
    let log = lab.log;
    for _ in 0..n {
        // Deleting the last entry is cutting the tail: see `truncated_tail`.
        let d = lab.rng.range(1, log.last - 1);
        let (s, li) = log.loc(d);
        let files = lab.files(vec![(s, Change::Bytes(log.segs[s].splice(li, &[])))]);
        let expect = Expect {
            kind: FailureKind::Deleted,
            file: lab.changed(s),
            line: li as u64 + 1,
            seq: Some(d),
        };
        let what = || format!("deleted seq {d} (line {} of {})", li + 1, log.segs[s].name);
        lab.expect(mode, d - 1, &files, &[], expect, &what);
    }
}

fn inserted_lines(lab: &mut Lab, mode: Mode, n: usize) {
    let log = lab.log;
    let mut done = 0;
    while done < n {
        let a = lab.rng.range(1, log.last);
        // Before entry b (last + 1: at the very end); b = a or a + 1 is a duplicate.
        let b = if lab.rng.coin() {
            if a < 2 {
                continue;
            }
            lab.rng.range(1, a - 1)
        } else {
            if a + 2 > log.last + 1 {
                continue;
            }
            lab.rng.range(a + 2, log.last + 1)
        };
        let (s, pos) = if b > log.last {
            (log.segs.len() - 1, log.segs.last().unwrap().lines())
        } else {
            match log.loc(b) {
                // Before a file's first line: at the end of the previous file, or its start.
                (s, 0) if s > 0 && lab.rng.coin() => (s - 1, log.segs[s - 1].lines()),
                at => at,
            }
        };
        let mut copy = log.line(a).to_vec();
        copy.push(b'\n');
        let files = lab.files(vec![(s, Change::Bytes(log.segs[s].insert(pos, &copy)))]);
        let kind = if a < b {
            FailureKind::Replayed
        } else {
            FailureKind::Inserted
        };
        let expect = Expect {
            kind,
            file: lab.changed(s),
            line: pos as u64 + 1,
            seq: Some(a),
        };
        let what = || {
            format!(
                "copy of seq {a} inserted before seq {b} (line {} of {})",
                pos + 1,
                log.segs[s].name
            )
        };
        lab.expect(mode, b - 1, &files, &[], expect, &what);
        done += 1;
    }
}

fn swapped_lines(lab: &mut Lab, mode: Mode, n: usize) {
    let log = lab.log;
    let mut done = 0;
    while done < n {
        let (s, i) = log.loc(lab.rng.range(1, log.last));
        let seg = &log.segs[s];
        if i + 1 >= seg.lines() {
            continue;
        }
        let dist = if lab.rng.coin() {
            1
        } else {
            lab.rng.range(2, 32) as usize
        };
        let k = (i + dist).min(seg.lines() - 1);
        let mut data = Vec::with_capacity(seg.data.len());
        data.extend_from_slice(&seg.data[..seg.starts[i]]);
        data.extend_from_slice(seg.line_nl(k));
        data.extend_from_slice(&seg.data[seg.starts[i + 1]..seg.starts[k]]);
        data.extend_from_slice(seg.line_nl(i));
        data.extend_from_slice(&seg.data[seg.starts[k + 1]..]);
        let files = lab.files(vec![(s, Change::Bytes(data))]);
        let (si, sk) = (seg.first + i as u64, seg.first + k as u64);
        let expect = Expect {
            kind: FailureKind::Reordered,
            file: lab.changed(s),
            line: i as u64 + 1,
            seq: Some(sk),
        };
        let what = || format!("swapped seq {si} and {sk} in {}", seg.name);
        lab.expect(mode, si - 1, &files, &[], expect, &what);
        done += 1;
    }
}

fn duplicated_lines(lab: &mut Lab, mode: Mode, n: usize) {
    let log = lab.log;
    for _ in 0..n {
        let a = lab.rng.range(1, log.last);
        let (s, li) = log.loc(a);
        let seg = &log.segs[s];
        let files = lab.files(vec![(
            s,
            Change::Bytes(seg.insert(li + 1, seg.line_nl(li))),
        )]);
        let expect = Expect {
            kind: FailureKind::Duplicated,
            file: lab.changed(s),
            line: li as u64 + 2,
            seq: Some(a),
        };
        // Resume right before the copy (the bookmark's previous line is the
        // original) or one entry earlier.
        let after = if lab.rng.coin() { a } else { a - 1 };
        let what = || format!("seq {a} duplicated (line {} of {})", li + 1, seg.name);
        lab.expect(mode, after, &files, &[], expect, &what);
    }
}

/// Cuts the log after entry `m`, whole lines and whole segments.
fn cut_after(lab: &Lab, m: u64) -> (Vec<PathBuf>, PathBuf, u64) {
    let log = lab.log;
    let (s, li) = log.loc(m);
    let seg = &log.segs[s];
    let mut changes: Vec<(usize, Change)> =
        (s + 1..log.segs.len()).map(|t| (t, Change::Gone)).collect();
    let file = if li + 1 == seg.lines() {
        lab.orig[s].clone()
    } else {
        changes.push((s, Change::Bytes(seg.data[..seg.starts[li + 1]].to_vec())));
        lab.changed(s)
    };
    (lab.files(changes), file, li as u64 + 2)
}

fn truncated_tail(lab: &mut Lab, n: usize, modes: &[Mode]) {
    let log = lab.log;
    let kept = vec![(
        lab.dir.path().join("kept-checkpoint"),
        log.kept_note.clone(),
    )];
    for _ in 0..n {
        let m = if lab.rng.range(0, 3) == 0 {
            // Whole last segments.
            log.segs[lab.rng.range(1, log.segs.len() as u64 - 1) as usize].first - 1
        } else {
            // The kept checkpoint covers up to last - 1; cut at least one of those.
            lab.rng.range(1, log.kept_size - 1)
        };
        let (files, file, line) = cut_after(lab, m);
        let after = m - lab.rng.range(0, 5.min(m - 1));
        let what = || format!("log cut after seq {m}, resumed after {after}");
        for &mode in modes {
            let expect = Expect {
                kind: FailureKind::TruncatedTail,
                file: file.clone(),
                line,
                seq: Some(m + 1),
            };
            let with_kept = if mode == Mode::Key { Mode::Both } else { mode };
            lab.expect(with_kept, after, &files, &kept, expect, &what);
            if mode == Mode::Key {
                // Without the kept checkpoint, the shorter log is a good log.
                let r = lab.verify(Mode::Key, after, &files, &[]);
                assert!(r.verified(), "{}: {}: {:?}", lab.test, what(), r.failure);
                assert_eq!(r.last_seq, m);
            }
        }
    }
}

fn deleted_segments(lab: &mut Lab, mode: Mode, n: usize) {
    let log = lab.log;
    for _ in 0..n {
        // Not the last segment: that is a cut tail.
        let s = lab.rng.index(log.segs.len() - 1);
        let first = log.segs[s].first;
        let files = lab.files(vec![(s, Change::Gone)]);
        let after = (first - 1).saturating_sub(lab.rng.range(0, 3));
        let expect = Expect {
            kind: FailureKind::MissingSegment,
            file: lab.orig[s + 1].clone(),
            line: 1,
            seq: Some(first),
        };
        let what = || format!("{} deleted, resumed after {after}", log.segs[s].name);
        lab.expect(mode, after, &files, &[], expect, &what);
    }
}

/// The line of checkpoint entry `c` with its note replaced.
fn with_note(log: &Log, c: u64, note: String) -> Vec<u8> {
    let (record, mut seal) = split_sealed(log.format, log.line(c)).unwrap();
    seal.checkpoint = Some(note);
    let mut line = Vec::new();
    write_sealed(log.format, &record, &seal, &mut line);
    line.push(b'\n');
    line
}

fn random_root(rng: &mut Rng) -> [u8; 32] {
    let mut root = [0u8; 32];
    for chunk in root.chunks_mut(8) {
        chunk.copy_from_slice(&rng.next().to_le_bytes());
    }
    root
}

fn forged_checkpoints(lab: &mut Lab, mode: Mode, n: usize) {
    let log = lab.log;
    for _ in 0..n {
        let c = log.checkpoints[lab.rng.index(log.checkpoints.len())];
        let (s, li) = log.loc(c);
        let (_, seal) = split_sealed(log.format, log.line(c)).unwrap();
        let note = seal.checkpoint.unwrap();
        // What the writer signed: the tree before entry c, as the bookmark after c - 1 has it.
        let root = match c {
            1 => vigil_seal::empty_root(),
            _ => log.bookmarks[c as usize - 2].root(),
        };
        let cp = Checkpoint {
            origin: ORIGIN.into(),
            size: c - 1,
            root,
            extensions: vec![],
        };
        assert!(note.starts_with(&cp.body().unwrap()), "{note}");
        let signature = format!("\n{}", note.split_once("\n\n").unwrap().1);
        let variant = lab.rng.range(0, 2);
        let forged = match variant {
            0 => {
                static OTHER: OnceLock<CheckpointSigner> = OnceLock::new();
                OTHER.get_or_init(|| signer(&OTHER_SEED)).sign(&cp).unwrap()
            }
            1 => {
                Checkpoint {
                    root: random_root(&mut lab.rng),
                    ..cp.clone()
                }
                .body()
                .unwrap()
                    + &signature
            }
            _ => {
                let size = cp.size + lab.rng.range(1, 1000);
                let size = if lab.rng.coin() {
                    size
                } else {
                    cp.size.saturating_sub(size - cp.size)
                };
                Checkpoint { size, ..cp.clone() }.body().unwrap() + &signature
            }
        };
        assert_ne!(forged, note);
        let files = lab.files(vec![(
            s,
            Change::Bytes(log.segs[s].splice(li, &[&with_note(log, c, forged)])),
        )]);
        let kind = if mode == Mode::Key {
            FailureKind::Modified
        } else {
            FailureKind::ForgedCheckpoint
        };
        let expect = Expect {
            kind,
            file: lab.changed(s),
            line: li as u64 + 1,
            seq: Some(c),
        };
        let what = || format!("checkpoint entry {c} forged (variant {variant})");
        lab.expect(mode, c - 1, &files, &[], expect, &what);
    }
}

fn forks(lab: &mut Lab, n: usize) {
    let log = lab.log;
    for _ in 0..n {
        let real = real_signer();
        if lab.rng.coin() {
            // Two kept checkpoints of one size: the final one or one from the log.
            let (size, note) = if lab.rng.coin() {
                (log.kept_size, log.kept_note.clone())
            } else {
                let c = log.checkpoints[lab.rng.index(log.checkpoints.len())];
                let (_, seal) = split_sealed(log.format, log.line(c)).unwrap();
                (c - 1, seal.checkpoint.unwrap())
            };
            if size == 0 {
                continue;
            }
            let fake = Checkpoint {
                origin: ORIGIN.into(),
                size,
                root: random_root(&mut lab.rng),
                extensions: vec![],
            };
            let mut kept = vec![
                (lab.dir.path().join("kept"), note),
                (lab.dir.path().join("fake"), real.sign(&fake).unwrap()),
            ];
            if lab.rng.coin() {
                kept.reverse();
            }
            let (s, li) = log.loc(size);
            let after = size - lab.rng.range(1, 5.min(size));
            let what =
                || format!("kept checkpoints of size {size} disagree, resumed after {after}");
            for mode in [Mode::Public, Mode::Both] {
                let expect = Expect {
                    kind: FailureKind::Fork,
                    file: lab.orig[s].clone(),
                    line: li as u64 + 1,
                    seq: Some(size),
                };
                lab.expect(mode, after, &lab.orig.clone(), &kept, expect, &what);
            }
        } else {
            // A checkpoint entry re-signed by the real key over a false root.
            let c = log.checkpoints[lab.rng.index(log.checkpoints.len())];
            let (s, li) = log.loc(c);
            let cp = Checkpoint {
                root: random_root(&mut lab.rng),
                size: c - 1,
                origin: ORIGIN.into(),
                extensions: vec![],
            };
            let line = with_note(log, c, real.sign(&cp).unwrap());
            let files = lab.files(vec![(s, Change::Bytes(log.segs[s].splice(li, &[&line])))]);
            let what = || format!("checkpoint entry {c} re-signed over a false root");
            for (mode, kind) in [
                (Mode::Public, FailureKind::Fork),
                (Mode::Key, FailureKind::Modified),
            ] {
                let expect = Expect {
                    kind,
                    file: lab.changed(s),
                    line: li as u64 + 1,
                    seq: Some(c),
                };
                lab.expect(mode, c - 1, &files, &[], expect, &what);
            }
        }
    }
}

fn renamed_segments(lab: &mut Lab, mode: Mode, n: usize) {
    let log = lab.log;
    let mut done = 0;
    while done < n {
        let s = lab.rng.index(log.segs.len());
        let x = lab.rng.range(0, log.last + 1_000);
        if log.segs.iter().any(|g| g.first == x) {
            continue;
        }
        let name = segment_name(x);
        // Resume before the first place the renaming changes in file order.
        let new_place = log
            .segs
            .iter()
            .enumerate()
            .filter(|&(t, g)| t != s && g.first < x)
            .count();
        let p = s.min(new_place);
        let after = if p == 0 { 0 } else { log.segs[p].first - 1 };
        let files = lab.files(vec![(s, Change::Renamed(name.clone()))]);
        let expect = Expect {
            kind: FailureKind::ReorderedSegment,
            file: lab.mutated(&name),
            line: 1,
            seq: Some(log.segs[s].first),
        };
        let what = || format!("{} renamed {name}", log.segs[s].name);
        lab.expect(mode, after, &files, &[], expect, &what);
        std::fs::remove_file(lab.mutated(&name)).unwrap();
        done += 1;
    }
}

// ---------------------------------------------------------------------------
// The tests. Each has its own copy of the log and random stream, so they run
// in parallel.

#[test]
fn untouched_logs_verify_in_every_mode() {
    for format in [LineFormat::Json, LineFormat::Text, LineFormat::Cef] {
        let lab = Lab::new(format, "untouched", 0);
        let log = lab.log;
        eprintln!(
            "{format:?} log: {} entries in {} segments, {} checkpoints, {} bytes, sealed and bookmarked in {:.2?}",
            log.last,
            log.segs.len(),
            log.checkpoints.len(),
            log.segs.iter().map(|s| s.data.len()).sum::<usize>(),
            log.built
        );
        let kept = [(lab.dir.path().join("kept"), log.kept_note.clone())];
        let mut root = None;
        for mode in [Mode::Key, Mode::Public, Mode::Both] {
            let t = Instant::now();
            let kept: &[_] = if mode == Mode::Key { &[] } else { &kept };
            let r = lab.verifier(mode, kept).verify(&lab.orig).unwrap();
            let took = t.elapsed();
            assert!(r.verified(), "{format:?} {mode:?}: {:?}", r.failure);
            assert_eq!(r.entries, log.last);
            assert_eq!(r.last_seq, log.last);
            assert_eq!(r.segments, log.segs.len() as u64);
            assert_eq!(
                r.chains,
                EVENTS / RESTART_EVERY + 2,
                "a chain per start and the key rotation"
            );
            assert_eq!(
                r.macs_checked,
                if mode == Mode::Public { 0 } else { log.last }
            );
            assert_eq!(r.checkpoints_checked, log.checkpoints.len() as u64);
            assert_eq!(r.external_checkpoints_checked, u64::from(mode != Mode::Key));
            assert_eq!(*root.get_or_insert(r.root), r.root);
            eprintln!(
                "  {mode:?} mode: {:.2?}, {:.0} entries/s",
                took,
                log.last as f64 / took.as_secs_f64()
            );
        }
        // Resuming at any bookmark reaches the same end.
        for after in [1, log.last / 3, log.last - 1] {
            let b = log.bookmarks[after as usize - 1].clone();
            assert_eq!(b.seq(), after);
            let r = Verifier::new()
                .keys(&lookup)
                .resume(b)
                .verify(&lab.orig)
                .unwrap();
            assert!(r.verified(), "{:?}", r.failure);
            assert_eq!((r.entries, Some(r.root)), (log.last - after, root));
        }
    }
}

#[test]
fn byte_flips_anywhere_are_found_at_their_line() {
    let mut lab = Lab::new(LineFormat::Json, "byte flips, key", 1);
    byte_flips(&mut lab, Mode::Key, PER_KIND);
    lab.done();
}

#[test]
fn byte_flips_are_found_with_the_public_key() {
    let mut lab = Lab::new(LineFormat::Json, "byte flips, public key", 2);
    byte_flips(&mut lab, Mode::Public, PER_KIND);
    lab.done();
}

#[test]
fn deleted_lines_are_found() {
    let mut lab = Lab::new(LineFormat::Json, "deleted lines", 3);
    deleted_lines(&mut lab, Mode::Key, PER_KIND);
    deleted_lines(&mut lab, Mode::Public, PER_KIND);
    lab.done();
}

#[test]
fn inserted_lines_are_found() {
    let mut lab = Lab::new(LineFormat::Json, "inserted lines", 4);
    inserted_lines(&mut lab, Mode::Key, PER_KIND);
    lab.done();
}

#[test]
fn swapped_lines_are_found() {
    let mut lab = Lab::new(LineFormat::Json, "swapped lines", 5);
    swapped_lines(&mut lab, Mode::Key, PER_KIND);
    lab.done();
}

#[test]
fn duplicated_lines_are_found() {
    let mut lab = Lab::new(LineFormat::Json, "duplicated lines", 6);
    duplicated_lines(&mut lab, Mode::Key, PER_KIND);
    lab.done();
}

#[test]
fn truncated_tails_are_found_only_with_a_kept_checkpoint() {
    let mut lab = Lab::new(LineFormat::Json, "truncated tails", 7);
    truncated_tail(&mut lab, PER_KIND, &[Mode::Key, Mode::Public]);
    lab.done();
}

#[test]
fn deleted_segments_are_found() {
    let mut lab = Lab::new(LineFormat::Json, "deleted segments", 8);
    deleted_segments(&mut lab, Mode::Key, PER_KIND);
    deleted_segments(&mut lab, Mode::Public, PER_KIND);
    lab.done();
}

#[test]
fn forged_checkpoints_are_found() {
    let mut lab = Lab::new(LineFormat::Json, "forged checkpoints", 9);
    forged_checkpoints(&mut lab, Mode::Key, PER_KIND);
    forged_checkpoints(&mut lab, Mode::Public, PER_KIND);
    lab.done();
}

#[test]
fn forks_are_found() {
    let mut lab = Lab::new(LineFormat::Json, "forks", 10);
    forks(&mut lab, 200);
    lab.done();
}

#[test]
fn renamed_segments_are_found() {
    let mut lab = Lab::new(LineFormat::Json, "renamed segments", 11);
    renamed_segments(&mut lab, Mode::Key, PER_KIND);
    lab.done();
}

#[test]
fn every_kind_in_text_and_cef() {
    for (format, stream) in [(LineFormat::Text, 12), (LineFormat::Cef, 13)] {
        let mut lab = Lab::new(format, "text and cef", stream);
        let n = PER_KIND_OTHER;
        byte_flips(&mut lab, Mode::Key, n);
        deleted_lines(&mut lab, Mode::Key, n);
        inserted_lines(&mut lab, Mode::Key, n);
        swapped_lines(&mut lab, Mode::Key, n);
        duplicated_lines(&mut lab, Mode::Key, n);
        truncated_tail(&mut lab, n, &[Mode::Key]);
        deleted_segments(&mut lab, Mode::Key, n);
        forged_checkpoints(&mut lab, Mode::Key, n);
        renamed_segments(&mut lab, Mode::Key, n);
        lab.done();
    }
}
