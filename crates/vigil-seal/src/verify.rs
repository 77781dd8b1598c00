//! `vigil verify`: checks an audit log, streaming, in bounded memory.
//!
//! With the audit keys it checks every MAC, seq, chain start, segment link
//! and checkpoint; with only the checkpoint verifier key it rebuilds the
//! Merkle tree and checks every checkpoint's signature and root against it;
//! with checkpoints kept off the host it proves the log still extends them.

use std::fmt;
use std::fs::File;
use std::io::{self, BufRead, BufReader};
use std::path::{Path, PathBuf};

use zeroize::Zeroizing;

use crate::chain::{ChainKey, mac_eq};
use crate::checkpoint::{Checkpoint, CheckpointVerifier};
use crate::line::{LineFormat, Seal, split_sealed};
use crate::merkle::{Hash, Tree, leaf_hash};
use crate::writer::parse_segment_name;

/// What kind of tampering or inconsistency verification found.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum FailureKind {
    /// A checkpoint inside the log has an invalid signature.
    ForgedCheckpoint,
    /// A checkpoint's root disagrees with the log, or two checkpoints of the
    /// same size disagree: the log was rewritten after it was committed.
    Fork,
    /// Entries are missing: the next seq jumps ahead.
    Deleted,
    /// An entry appears twice in a row.
    Duplicated,
    /// A line that does not belong at this place (a copy of a later entry).
    Inserted,
    /// A line is not a sealed entry of this log's format.
    Malformed,
    /// A segment file is missing between two others, or at the start.
    MissingSegment,
    /// An entry's content or seal was changed: its MAC does not verify.
    Modified,
    /// Entries are out of order.
    Reordered,
    /// A segment file's name disagrees with its content.
    ReorderedSegment,
    /// An older entry appears again later in the log.
    Replayed,
    /// The log ends before a checkpoint kept off the host: its tail was cut.
    TruncatedTail,
    /// The log uses an audit key version that is not available.
    UnknownKey,
}

impl FailureKind {
    /// A short stable name, used in `--json` output.
    pub const fn as_str(self) -> &'static str {
        match self {
            FailureKind::Deleted => "deleted",
            FailureKind::Duplicated => "duplicated",
            FailureKind::ForgedCheckpoint => "forged_checkpoint",
            FailureKind::Fork => "fork",
            FailureKind::Inserted => "inserted",
            FailureKind::Malformed => "malformed",
            FailureKind::MissingSegment => "missing_segment",
            FailureKind::Modified => "modified",
            FailureKind::Reordered => "reordered",
            FailureKind::ReorderedSegment => "reordered_segment",
            FailureKind::Replayed => "replayed",
            FailureKind::TruncatedTail => "truncated_tail",
            FailureKind::UnknownKey => "unknown_key",
        }
    }
}

impl fmt::Display for FailureKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// The first failure verification found.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Failure {
    /// What is wrong.
    pub kind: FailureKind,
    /// The segment file.
    pub file: PathBuf,
    /// The line in that file, from 1 (0 when the failure concerns the file).
    pub line: u64,
    /// The seq of the entry concerned, when known.
    pub seq: Option<u64>,
    /// A sentence saying what was found.
    pub message: String,
}

impl fmt::Display for Failure {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}:{}: ", self.file.display(), self.line)?;
        if let Some(seq) = self.seq {
            write!(f, "seq {seq}: ")?;
        }
        write!(f, "{}: {}", self.kind, self.message)
    }
}

/// The result of a verification.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Report {
    /// Entries read.
    pub entries: u64,
    /// Segment files read.
    pub segments: u64,
    /// Entries whose MAC was checked.
    pub macs_checked: u64,
    /// Checkpoints inside the log whose signature and root were checked.
    pub checkpoints_checked: u64,
    /// Checkpoints from outside the log that were checked.
    pub external_checkpoints_checked: u64,
    /// Chains (service starts and key rotations) seen.
    pub chains: u64,
    /// The last seq read.
    pub last_seq: u64,
    /// The Merkle root of the whole log.
    pub root: Hash,
    /// The line format found.
    pub format: Option<LineFormat>,
    /// The first failure; `None` when the log verified.
    pub failure: Option<Failure>,
}

impl Report {
    /// True when nothing was wrong.
    pub fn verified(&self) -> bool {
        self.failure.is_none()
    }
}

/// Errors that stop verification before a verdict: unreadable input or
/// wrong usage. Tampering is reported in the [`Report`], not here.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum VerifyError {
    /// A path could not be read.
    #[error("{path}: {source}")]
    Io {
        /// The path.
        path: PathBuf,
        /// The cause.
        source: io::Error,
    },
    /// No segment files were found in the paths given.
    #[error("no audit segments (audit-<seq>.log) found in {0}")]
    NoSegments(String),
    /// Neither keys nor a public key were given.
    #[error("nothing to verify with: give the key directory (and VIGIL_MASTER_KEY) or --public-key")]
    NoKeys,
    /// An external checkpoint could not be read or does not verify.
    #[error("checkpoint {path}: {message}")]
    BadCheckpoint {
        /// The file.
        path: PathBuf,
        /// What is wrong.
        message: String,
    },
}

/// Looks up the audit key of a version.
pub type KeyLookup<'a> = dyn Fn(u32) -> Option<Zeroizing<[u8; 32]>> + 'a;

/// How to verify.
pub struct Verifier<'a> {
    keys: Option<&'a KeyLookup<'a>>,
    public: Option<CheckpointVerifier>,
    external: Vec<(PathBuf, Checkpoint)>,
    progress: Option<&'a dyn Fn(u64)>,
}

impl fmt::Debug for Verifier<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Verifier")
            .field("keys", &self.keys.is_some())
            .field("public", &self.public.is_some())
            .field("external", &self.external.len())
            .finish()
    }
}

impl<'a> Default for Verifier<'a> {
    fn default() -> Self {
        Verifier::new()
    }
}

impl<'a> Verifier<'a> {
    /// A verifier with nothing to verify with yet.
    pub fn new() -> Self {
        Verifier { keys: None, public: None, external: Vec::new(), progress: None }
    }

    /// Checks MACs with the audit keys `lookup` returns by version.
    pub fn keys(mut self, lookup: &'a KeyLookup<'a>) -> Self {
        self.keys = Some(lookup);
        self
    }

    /// Checks checkpoint signatures with this verifier key.
    pub fn public_key(mut self, verifier: CheckpointVerifier) -> Self {
        self.public = Some(verifier);
        self
    }

    /// Calls `f` with the bytes read so far, now and then.
    pub fn progress(mut self, f: &'a dyn Fn(u64)) -> Self {
        self.progress = Some(f);
        self
    }

    /// Adds a checkpoint kept off the host (the note's text); the log must
    /// extend it. Needs the public key to check its signature.
    pub fn external_checkpoint(mut self, path: &Path, note: &str) -> Result<Self, VerifyError> {
        let bad = |message: String| VerifyError::BadCheckpoint { path: path.to_path_buf(), message };
        let verifier = self.public.as_ref().ok_or_else(|| {
            bad("checking a kept checkpoint needs the public key (--public-key)".into())
        })?;
        let cp = verifier.verify(note).map_err(|e| bad(e.to_string()))?;
        self.external.push((path.to_path_buf(), cp));
        Ok(self)
    }

    /// Verifies the segments found in `paths` (files or directories, any
    /// order).
    pub fn verify(&self, paths: &[PathBuf]) -> Result<Report, VerifyError> {
        if self.keys.is_none() && self.public.is_none() {
            return Err(VerifyError::NoKeys);
        }
        let segments = collect_segments(paths)?;
        if segments.is_empty() {
            let names: Vec<String> = paths.iter().map(|p| p.display().to_string()).collect();
            return Err(VerifyError::NoSegments(names.join(", ")));
        }
        let mut run = Run::new(self);
        for (name_seq, path) in &segments {
            if run.report.failure.is_some() {
                break;
            }
            run.segment(*name_seq, path)?;
        }
        run.finish();
        Ok(run.report)
    }
}

/// Segment files in `paths`, by the seq in their names.
fn collect_segments(paths: &[PathBuf]) -> Result<Vec<(u64, PathBuf)>, VerifyError> {
    let mut out = Vec::new();
    let io_err = |path: &Path| {
        let path = path.to_path_buf();
        move |source| VerifyError::Io { path, source }
    };
    for p in paths {
        let meta = std::fs::metadata(p).map_err(io_err(p))?;
        if meta.is_dir() {
            for entry in std::fs::read_dir(p).map_err(io_err(p))? {
                let entry = entry.map_err(io_err(p))?;
                if let Some(seq) = entry.file_name().to_str().and_then(parse_segment_name) {
                    out.push((seq, entry.path()));
                }
            }
        } else {
            let name = p.file_name().and_then(|n| n.to_str()).unwrap_or_default();
            let seq = parse_segment_name(name).unwrap_or(u64::MAX);
            out.push((seq, p.clone()));
        }
    }
    out.sort();
    out.dedup();
    Ok(out)
}

struct Run<'v, 'a> {
    v: &'v Verifier<'a>,
    report: Report,
    tree: Tree,
    expected: u64,
    prev_mac: Hash,
    chain: Option<(ChainKey, u32)>,
    format: Option<LineFormat>,
    origin: Option<String>,
    /// External checkpoints by size, not yet reached.
    pending_external: Vec<(PathBuf, Checkpoint)>,
    /// In-log checkpoints by size, to detect two that disagree.
    seen_roots: Vec<(u64, Hash)>,
    bytes: u64,
    prev_line: Vec<u8>,
}

impl<'v, 'a> Run<'v, 'a> {
    fn new(v: &'v Verifier<'a>) -> Self {
        let mut pending_external = v.external.clone();
        pending_external.sort_by_key(|(_, cp)| std::cmp::Reverse(cp.size));
        Run {
            v,
            report: Report::default(),
            tree: Tree::new(),
            expected: 1,
            prev_mac: [0; 32],
            chain: None,
            format: None,
            origin: None,
            pending_external,
            seen_roots: Vec::new(),
            bytes: 0,
            prev_line: Vec::new(),
        }
    }

    fn fail(&mut self, kind: FailureKind, file: &Path, line: u64, seq: Option<u64>, message: String) {
        if self.report.failure.is_none() {
            self.report.failure = Some(Failure { kind, file: file.to_path_buf(), line, seq, message });
        }
    }

    fn segment(&mut self, name_seq: u64, path: &Path) -> Result<(), VerifyError> {
        let file = File::open(path).map_err(|source| VerifyError::Io { path: path.to_path_buf(), source })?;
        self.report.segments += 1;
        let mut reader = BufReader::with_capacity(1 << 20, file);
        let mut lines = Lines { reader: &mut reader, buf: Vec::new(), ahead: Vec::new(), path };
        let mut lineno = 0u64;
        let mut first = true;
        while let Some(line) = lines.next()? {
            lineno += 1;
            self.bytes += line.len() as u64 + 1;
            if self.report.entries % 65_536 == 0 {
                if let Some(p) = self.v.progress {
                    p(self.bytes);
                }
            }
            let format = match self.format {
                Some(f) => f,
                None => match detect(&line) {
                    Some(f) => {
                        self.format = Some(f);
                        self.report.format = Some(f);
                        f
                    }
                    None => {
                        self.fail(FailureKind::Malformed, path, lineno, None, "not a sealed entry in any format".into());
                        return Ok(());
                    }
                },
            };
            let Ok((record, seal)) = split_sealed(format, &line) else {
                self.fail(FailureKind::Malformed, path, lineno, None, "line is not a sealed entry".into());
                return Ok(());
            };
            if first {
                first = false;
                if seal.seq != name_seq && name_seq != u64::MAX {
                    let msg = format!("file is named for seq {name_seq} but starts at seq {}", seal.seq);
                    self.fail(FailureKind::ReorderedSegment, path, lineno, Some(seal.seq), msg);
                    return Ok(());
                }
                if seal.seq > self.expected {
                    let msg = format!(
                        "segment starts at seq {} but seq {} was expected: the segment(s) holding {}..{} are missing",
                        seal.seq,
                        self.expected,
                        self.expected,
                        seal.seq - 1
                    );
                    self.fail(FailureKind::MissingSegment, path, lineno, Some(seal.seq), msg);
                    return Ok(());
                }
            }
            if seal.seq != self.expected {
                let (kind, msg) = self.classify(&line, &seal, &mut lines, format)?;
                self.fail(kind, path, lineno, Some(seal.seq), msg);
                return Ok(());
            }
            // Checkpoints commit to the tree before this entry.
            if let Some(note) = &seal.checkpoint {
                if let Some(msg) = self.check_checkpoint(note) {
                    let kind = if msg.starts_with("signature") {
                        FailureKind::ForgedCheckpoint
                    } else {
                        FailureKind::Fork
                    };
                    self.fail(kind, path, lineno, Some(seal.seq), msg);
                    return Ok(());
                }
            }
            if let Some((kind, msg)) = self.check_mac(&record, &seal) {
                self.fail(kind, path, lineno, Some(seal.seq), msg);
                return Ok(());
            }
            self.tree.push(leaf_hash(&line));
            self.check_external(path, lineno, seal.seq);
            if self.report.failure.is_some() {
                return Ok(());
            }
            self.report.entries += 1;
            self.report.last_seq = seal.seq;
            self.expected = seal.seq + 1;
            self.prev_mac = seal.mac;
            self.prev_line.clear();
            self.prev_line.extend_from_slice(&line);
        }
        Ok(())
    }

    /// Names what an out-of-place seq means, looking at the lines after it.
    fn classify(
        &mut self,
        line: &[u8],
        seal: &Seal,
        lines: &mut Lines<'_, '_>,
        format: LineFormat,
    ) -> Result<(FailureKind, String), VerifyError> {
        let e = self.expected;
        let s = seal.seq;
        if s < e {
            if s + 1 == e && line == self.prev_line.as_slice() {
                return Ok((FailureKind::Duplicated, format!("entry {s} appears twice")));
            }
            return Ok((FailureKind::Replayed, format!("entry {s} appears again after entry {}", e - 1)));
        }
        // s > e: deleted, inserted or reordered. Look ahead in this file.
        let next = lines.peek_seq(0, format)?;
        let after = lines.peek_seq(1, format)?;
        if next == Some(e) && after.is_none_or(|a| a == e + 1) {
            return Ok((FailureKind::Inserted, format!("entry {s} does not belong before entry {e}")));
        }
        if lines.find_seq(e, format)? {
            return Ok((FailureKind::Reordered, format!("entry {s} comes before entry {e}")));
        }
        Ok((FailureKind::Deleted, format!("entries {e}..{} are missing", s - 1)))
    }

    fn check_mac(&mut self, record: &[u8], seal: &Seal) -> Option<(FailureKind, String)> {
        let lookup = self.v.keys?;
        if let Some(origin) = &seal.start {
            if let Some(o) = &self.origin {
                if o != origin {
                    return Some((FailureKind::Modified, format!("chain origin {origin:?} differs from {o:?}")));
                }
            }
            self.origin = Some(origin.clone());
            let Some(key) = lookup(seal.key_version) else {
                return Some((FailureKind::UnknownKey, format!("audit key version {} is not available", seal.key_version)));
            };
            self.chain = Some((ChainKey::start(&key, origin, seal.seq), seal.key_version));
            self.report.chains += 1;
        }
        let Some((chain, version)) = &mut self.chain else {
            return Some((FailureKind::Modified, "entry before any chain start".into()));
        };
        if *version != seal.key_version {
            return Some((FailureKind::Modified, format!("key version {} inside a chain of version {version}", seal.key_version)));
        }
        let mac = chain.mac(
            seal.seq,
            seal.key_version,
            seal.start.is_some(),
            record,
            seal.checkpoint.as_deref(),
            &self.prev_mac,
        );
        if !mac_eq(&mac, &seal.mac) {
            return Some((FailureKind::Modified, "MAC does not verify: the entry or its seal was changed".into()));
        }
        chain.evolve();
        self.report.macs_checked += 1;
        None
    }

    /// Checks an in-log checkpoint; `Some(message)` when it fails.
    fn check_checkpoint(&mut self, note: &str) -> Option<String> {
        let cp = match &self.v.public {
            Some(verifier) => match verifier.verify(note) {
                Ok(cp) => cp,
                Err(e) => return Some(format!("signature: {e}")),
            },
            // Without the public key, still check what the note claims.
            None => match crate::checkpoint::parse_unverified(note) {
                Some(cp) => cp,
                None => return Some("signature: checkpoint note is malformed".into()),
            },
        };
        if cp.size != self.tree.size() {
            return Some(format!("checkpoint claims {} entries where {} precede it", cp.size, self.tree.size()));
        }
        if !mac_eq(&cp.root, &self.tree.root()) {
            return Some(format!("checkpoint root for {} entries disagrees with the log", cp.size));
        }
        self.seen_roots.push((cp.size, cp.root));
        self.report.checkpoints_checked += 1;
        None
    }

    fn check_external(&mut self, path: &Path, line: u64, seq: u64) {
        while let Some((_, cp)) = self.pending_external.last() {
            if cp.size > self.tree.size() {
                break;
            }
            let Some((cp_path, cp)) = self.pending_external.pop() else { break };
            if cp.size == self.tree.size() {
                if !mac_eq(&cp.root, &self.tree.root()) {
                    let msg = format!(
                        "kept checkpoint {} (size {}) disagrees with the log: the log was rewritten",
                        cp_path.display(),
                        cp.size
                    );
                    self.fail(FailureKind::Fork, path, line, Some(seq), msg);
                    return;
                }
                self.report.external_checkpoints_checked += 1;
            } else if cp.size == 0 {
                self.report.external_checkpoints_checked += 1;
            }
        }
    }

    fn finish(&mut self) {
        self.report.root = self.tree.root();
        if self.report.failure.is_some() {
            return;
        }
        if let Some((path, cp)) = self.pending_external.first().cloned() {
            let msg = format!(
                "the log has {} entries but kept checkpoint {} has {}: its tail was cut",
                self.tree.size(),
                path.display(),
                cp.size
            );
            self.fail(FailureKind::TruncatedTail, &path, 0, Some(self.tree.size() + 1), msg);
        }
    }
}

fn detect(line: &[u8]) -> Option<LineFormat> {
    [LineFormat::Json, LineFormat::Cef, LineFormat::Text]
        .into_iter()
        .find(|&f| split_sealed(f, line).is_ok())
}

/// Lines of one segment, with lookahead for classifying failures.
struct Lines<'r, 'p> {
    reader: &'r mut BufReader<File>,
    buf: Vec<u8>,
    ahead: Vec<Vec<u8>>,
    path: &'p Path,
}

impl Lines<'_, '_> {
    fn read_raw(&mut self) -> Result<Option<Vec<u8>>, VerifyError> {
        self.buf.clear();
        let n = self
            .reader
            .read_until(b'\n', &mut self.buf)
            .map_err(|source| VerifyError::Io { path: self.path.to_path_buf(), source })?;
        if n == 0 {
            return Ok(None);
        }
        if self.buf.last() == Some(&b'\n') {
            self.buf.pop();
        }
        Ok(Some(std::mem::take(&mut self.buf)))
    }

    fn next(&mut self) -> Result<Option<Vec<u8>>, VerifyError> {
        if !self.ahead.is_empty() {
            return Ok(Some(self.ahead.remove(0)));
        }
        self.read_raw()
    }

    fn peek_seq(&mut self, i: usize, format: LineFormat) -> Result<Option<u64>, VerifyError> {
        while self.ahead.len() <= i {
            match self.read_raw()? {
                Some(l) => self.ahead.push(l),
                None => return Ok(None),
            }
        }
        Ok(split_sealed(format, &self.ahead[i]).ok().map(|(_, s)| s.seq))
    }

    /// True when `seq` appears later in this file (reads the rest of it;
    /// used only once, to classify a failure).
    fn find_seq(&mut self, seq: u64, format: LineFormat) -> Result<bool, VerifyError> {
        if self.ahead.iter().any(|l| split_sealed(format, l).is_ok_and(|(_, s)| s.seq == seq)) {
            return Ok(true);
        }
        while let Some(l) = self.read_raw()? {
            if split_sealed(format, &l).is_ok_and(|(_, s)| s.seq == seq) {
                return Ok(true);
            }
        }
        Ok(false)
    }
}
