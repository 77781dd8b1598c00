//! `vigil verify`: checks an audit log, streaming, in bounded memory.
//!
//! # What is checked
//!
//! [`Verifier`] reads the segment files in the order of the first seq in
//! their names, one line at a time, and stops at the first failure. Every
//! line must be a sealed entry of one format, the seqs must run gapless from
//! 1, and every segment must start where the previous one ended and agree
//! with its file name. What else is checked depends on what the verifier is
//! given:
//!
//! - **audit keys** ([`Verifier::keys`], *key mode*): every entry's MAC in its
//!   forward-secure chain, chain starts, origins and key versions. A change
//!   to any byte of any entry is found at that entry.
//! - **the checkpoint verifier key** ([`Verifier::public_key`], *public-key
//!   mode*): every checkpoint in the log, its signature first, then its size
//!   and root against the Merkle tree rebuilt from the lines before it.
//! - **kept checkpoints** ([`Verifier::external_checkpoint`]): checkpoints
//!   that left the host. The log must reach each one's size, with its root.
//!   This is the only way to find a cut tail or a deleted last segment: a
//!   log cut behind its last checkpoint that stayed on the host is still a
//!   well-formed, shorter log.
//!
//! Per line, in this order: the line parses as a sealed entry; the first line
//! of a segment file agrees with its name and follows the previous segment;
//! the seq is the one expected; a checkpoint's signature (public key); the
//! MAC (audit keys); a checkpoint's size and root; kept checkpoints that the
//! log reaches at this entry.
//!
//! # Where a failure is reported
//!
//! [`Failure::file`] and [`Failure::line`] name the line at which the log
//! stops being what was sealed; [`Failure`]'s documentation says which line
//! and which seq each kind names.
//!
//! # Public-key mode
//!
//! Without the audit keys nothing binds an entry's bytes except the
//! checkpoints after it. The verifier promises:
//!
//! - lines that do not parse, seqs out of place, missing, renamed or
//!   reordered segments and forged checkpoints are found and located exactly
//!   as in key mode (a changed seq field is reported as `modified` when the
//!   next entry shows which seq belonged there);
//! - any other change to an entry is found at the **first checkpoint entry
//!   after it**, as a `fork` whose seq is that checkpoint entry's: its signed
//!   root disagrees with the log. The message names the range of entries the
//!   change lies in (after the previous checkpoint);
//! - entries after the last checkpoint of the log, including the last
//!   checkpoint entry itself, are covered by nothing but a later kept
//!   checkpoint. A log closed cleanly ends with a checkpoint entry, so only
//!   that last entry is uncovered.
//!
//! # Memory
//!
//! A few chunks of lines read ahead (four of 256 KiB, larger only for a
//! longer line), the Merkle tree's frontier (at most 64 hashes, and with
//! the audit keys a copy of it in the reader thread) and the kept
//! checkpoints. Only to name a
//! failure does the verifier look further: at most the rest of the current
//! segment, two lines of the next one and the first line of each later
//! segment.
//!
//! # Threads
//!
//! Each segment file is read by a second thread, which splits it into
//! lines, parses their seals and hashes each line once without its MAC
//! (with the audit keys, also the entry digest the MAC covers), while the
//! calling thread checks the lines in order: seqs, the MAC chain, the
//! Merkle leaves (the MAC and padding appended to the reader's hash) and
//! tree, checkpoints. With the audit keys the hashing splits about evenly
//! between the two.
//!
//! # Resuming
//!
//! [`Verifier::bookmarks_after`] records a [`Bookmark`] after chosen entries;
//! [`Verifier::resume`] starts a later verification there, without reading
//! what came before (a log that grows, an auditor who checks every day). A
//! resumed verification trusts everything before its bookmark: that was
//! verified when the bookmark was made.

use std::collections::VecDeque;
use std::fmt;
use std::fs::File;
use std::io::{self, BufRead, BufReader, Read, Seek, SeekFrom};
use std::path::{Path, PathBuf};
use std::sync::mpsc::{self, Receiver, Sender, SyncSender};

use zeroize::Zeroizing;

use crate::anchor::{self, Anchor};
use crate::chain::{ChainKey, mac_eq};
use crate::checkpoint::{Checkpoint, CheckpointVerifier, parse_unverified};
use crate::line::{EntryHash, LineFormat, Parsed, Seal, parse_entry, parses_as_v1};
use crate::merkle::{Hash, Tree};
use crate::writer::parse_segment_name;

/// What kind of tampering or inconsistency verification found.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum FailureKind {
    /// A checkpoint inside the log has an invalid signature.
    ForgedCheckpoint,
    /// A checkpoint's signature verifies but its size or root disagrees with
    /// the log, or a kept checkpoint disagrees with it: the log was rewritten
    /// after it was committed. In public-key mode this is how a changed
    /// entry shows, at the first checkpoint after it.
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
    /// An entry's content or seal was changed: its MAC does not verify, or
    /// its seq is not the one of its place.
    Modified,
    /// Entries are out of order.
    Reordered,
    /// A segment file's name disagrees with its content: it was renamed.
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
///
/// `file` and `line` name the line at which the log stops being what was
/// sealed, and `seq` names an entry:
///
/// ```text
/// kind               file:line                               seq
/// malformed          the line that does not parse            none; for two entries joined on
///                                                            one line (a lost newline), the first
/// modified           the changed line                        the seq the entry has in the log,
///                                                            also when its seq field was changed
/// unknown_key        the chain start naming the version      that entry's
/// deleted            the line where the missing entries      the first missing seq
///                    were (after the last line of the
///                    file when they ended a file)
/// duplicated         the second copy                         the duplicated seq
/// replayed           the copy of an older entry              the copy's seq
/// inserted           the copy of a later entry               the copy's seq
/// reordered          the first line out of order             the seq found there
/// missing_segment    line 1 of the file after the gap        the first missing seq
/// reordered_segment  line 1 of the renamed file              its first seq
/// forged_checkpoint  the checkpoint entry                    its seq
/// fork               the checkpoint entry, or the entry at   that entry's
///                    which the log reaches a kept
///                    checkpoint's size
/// truncated_tail     after the last line of the last file    the first missing seq
/// ```
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Failure {
    /// What is wrong.
    pub kind: FailureKind,
    /// The segment file.
    pub file: PathBuf,
    /// The line in that file, from 1.
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
    /// Entries read (since the bookmark, when resumed).
    pub entries: u64,
    /// Segment files read (since the bookmark's, when resumed).
    pub segments: u64,
    /// Entries whose MAC was checked.
    pub macs_checked: u64,
    /// Checkpoints inside the log whose size and root were checked (and
    /// signature, with the public key).
    pub checkpoints_checked: u64,
    /// Checkpoints from outside the log that were checked.
    pub external_checkpoints_checked: u64,
    /// Chains (service starts and key rotations) seen.
    pub chains: u64,
    /// The last seq verified.
    pub last_seq: u64,
    /// The Merkle root of the log up to `last_seq`.
    pub root: Hash,
    /// The line format found.
    pub format: Option<LineFormat>,
    /// The bookmarks asked for with [`Verifier::bookmarks_after`], in seq
    /// order, for the entries that verified.
    pub bookmarks: Vec<Bookmark>,
    /// The first failure; `None` when the log verified.
    pub failure: Option<Failure>,
    /// Set when the log's oldest segments were removed by retention and
    /// the verification started at the segment after them.
    pub trimmed: Option<Trimmed>,
}

/// A log whose first segments were removed by retention: where what is
/// left starts, and the sealed entry that accounts for what is gone.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Trimmed {
    /// The first seq left; entries 1 to this minus one were removed.
    pub first_seq: u64,
    /// The seq of the `audit.segments_removed` entry that records the
    /// removal (0 while none was found).
    pub removal_seq: u64,
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
    /// A line was sealed in format 1, by an older vigil.
    #[error(
        "{path}:{line}: the audit log was sealed in format 1 by an older vigil; this vigil verifies format {version} only: verify it with the vigil release that wrote it",
        version = crate::line::SEAL_FORMAT_VERSION
    )]
    OldFormat {
        /// The segment file.
        path: PathBuf,
        /// The line, from 1.
        line: u64,
    },
    /// Neither keys nor a public key were given.
    #[error(
        "nothing to verify with: give the key directory (and VIGIL_MASTER_KEY) or --public-key"
    )]
    NoKeys,
    /// An external checkpoint could not be read, does not verify, or cannot
    /// be checked from the bookmark the verification resumes at.
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

/// A place in a log after a verified entry, where a later verification can
/// resume ([`Verifier::resume`]) without reading what came before.
///
/// It holds the verifier's state there: the segment (found again by its file
/// name), the offset and line in it, the next seq, the previous MAC, the
/// Merkle tree's frontier, the previous line and where the current chain
/// started. It holds no secret: resuming with the audit keys derives the
/// chain key again, one SHA-256 per entry since the chain started.
#[derive(Clone, PartialEq, Eq)]
pub struct Bookmark {
    segment: PathBuf,
    offset: u64,
    line: u64,
    next_seq: u64,
    prev_mac: Hash,
    tree: Tree,
    prev_line: Vec<u8>,
    format: Option<LineFormat>,
    origin: Option<String>,
    chain: Option<ChainPos>,
    last_checkpoint: u64,
}

impl Bookmark {
    /// The last entry verified before the bookmark.
    pub fn seq(&self) -> u64 {
        self.next_seq - 1
    }

    /// The segment file the bookmark is in.
    pub fn segment(&self) -> &Path {
        &self.segment
    }

    /// The line of that file the bookmark follows (from 1).
    pub fn line(&self) -> u64 {
        self.line
    }

    /// The Merkle root of the log up to the bookmark.
    pub fn root(&self) -> Hash {
        self.tree.root()
    }
}

impl fmt::Debug for Bookmark {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Bookmark")
            .field("segment", &self.segment)
            .field("line", &self.line)
            .field("seq", &self.seq())
            .finish_non_exhaustive()
    }
}

/// Where the chain of the current entries started, for deriving its key.
#[derive(Clone, Debug, PartialEq, Eq)]
struct ChainPos {
    origin: String,
    start: u64,
    version: u32,
}

/// Verifies an audit log, streaming, and stops at the first failure.
///
/// Give it the audit keys ([`keys`](Self::keys)) to check every entry's MAC,
/// the checkpoint verifier key ([`public_key`](Self::public_key)) to check
/// every checkpoint, or both; and the checkpoints kept off the host
/// ([`external_checkpoint`](Self::external_checkpoint)), without which a cut
/// tail cannot be told from a shorter log. With the public key alone, a
/// changed entry whose line still parses with its seq in place is found at
/// the first checkpoint entry after it, as a [`FailureKind::Fork`].
pub struct Verifier<'a> {
    keys: Option<&'a KeyLookup<'a>>,
    public: Option<CheckpointVerifier>,
    external: Vec<(PathBuf, Checkpoint)>,
    progress: Option<&'a dyn Fn(u64)>,
    resume: Option<Bookmark>,
    /// Seqs to record a bookmark after, in descending order.
    bookmark_at: Vec<u64>,
}

impl fmt::Debug for Verifier<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Verifier")
            .field("keys", &self.keys.is_some())
            .field("public", &self.public.is_some())
            .field("external", &self.external.len())
            .field("resume", &self.resume)
            .finish_non_exhaustive()
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
        Verifier {
            keys: None,
            public: None,
            external: Vec::new(),
            progress: None,
            resume: None,
            bookmark_at: Vec::new(),
        }
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
        let bad = |message: String| VerifyError::BadCheckpoint {
            path: path.to_path_buf(),
            message,
        };
        let verifier = self.public.as_ref().ok_or_else(|| {
            bad("checking a kept checkpoint needs the public key (--public-key)".into())
        })?;
        let cp = verifier.verify(note).map_err(|e| bad(e.to_string()))?;
        self.external.push((path.to_path_buf(), cp));
        Ok(self)
    }

    /// Starts after `bookmark` instead of at the first entry. Segment files
    /// that sort before the bookmark's are not read; kept checkpoints must
    /// be larger than the log at the bookmark.
    pub fn resume(mut self, bookmark: Bookmark) -> Self {
        self.resume = Some(bookmark);
        self
    }

    /// Records a [`Bookmark`] after each of these entries, in
    /// [`Report::bookmarks`].
    pub fn bookmarks_after(mut self, seqs: &[u64]) -> Self {
        self.bookmark_at.extend_from_slice(seqs);
        self.bookmark_at.sort_unstable_by(|a, b| b.cmp(a));
        self.bookmark_at.dedup();
        self
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
        let mut run = Run::new(self, &segments)?;
        let (first, offset) = match &self.resume {
            None => (0, 0),
            Some(b) => match segments
                .iter()
                .position(|(_, p)| p.file_name() == b.segment.file_name())
            {
                Some(i) => (i, b.offset),
                None => {
                    let msg = "the bookmarked segment file is gone".to_string();
                    run.fail(
                        FailureKind::MissingSegment,
                        &b.segment,
                        b.line,
                        Some(b.next_seq),
                        msg,
                    );
                    run.finish();
                    return Ok(run.report);
                }
            },
        };
        for idx in first..segments.len() {
            if run.report.failure.is_some() {
                break;
            }
            run.segment(idx, if idx == first { offset } else { 0 })?;
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

/// Bytes a reader thread reads at once: the lines of a chunk travel
/// together.
const CHUNK: usize = 256 * 1024;

/// Chunks read ahead of the checks: bounds the verifier's memory.
const CHUNKS_AHEAD: usize = 4;

struct Run<'v, 'a> {
    v: &'v Verifier<'a>,
    segments: &'v [(u64, PathBuf)],
    report: Report,
    tree: Tree,
    expected: u64,
    prev_mac: Hash,
    /// Where the current chain started (tracked in every mode).
    chain: Option<ChainPos>,
    /// The chain key for `expected` (key mode), derived when first needed.
    key: Option<ChainKey>,
    format: Option<LineFormat>,
    origin: Option<String>,
    /// External checkpoints not yet reached, largest size first.
    pending_external: Vec<(PathBuf, Checkpoint)>,
    /// Seq of the last checkpoint entry verified (0: none yet).
    last_checkpoint: u64,
    bytes: u64,
    /// The last line verified, once the chunk it was in is gone.
    prev_line: Vec<u8>,
    /// The file being read, and the lines and bytes of it read so far.
    file: PathBuf,
    file_line: u64,
    file_offset: u64,
    /// The last file read to its end, and its line count.
    prev_file: Option<(PathBuf, u64)>,
    bookmark_at: Vec<u64>,
    /// The log starts at an anchor: the file, and the seq of a removal
    /// entry that accounts for the missing head, waiting for the next
    /// checkpoint (public key only).
    trim: Option<(PathBuf, Option<u64>)>,
}

impl<'v, 'a> Run<'v, 'a> {
    fn new(v: &'v Verifier<'a>, segments: &'v [(u64, PathBuf)]) -> Result<Self, VerifyError> {
        let mut pending_external = v.external.clone();
        pending_external.sort_by_key(|(_, cp)| std::cmp::Reverse(cp.size));
        let mut run = Run {
            v,
            segments,
            report: Report::default(),
            tree: Tree::new(),
            expected: 1,
            prev_mac: [0; 32],
            chain: None,
            key: None,
            format: None,
            origin: None,
            pending_external,
            last_checkpoint: 0,
            bytes: 0,
            prev_line: Vec::new(),
            file: PathBuf::new(),
            file_line: 0,
            file_offset: 0,
            prev_file: None,
            bookmark_at: v.bookmark_at.clone(),
            trim: None,
        };
        if let Some(b) = &v.resume {
            if let Some((path, cp)) = run
                .pending_external
                .iter()
                .find(|(_, cp)| cp.size <= b.tree.size())
            {
                return Err(VerifyError::BadCheckpoint {
                    path: path.clone(),
                    message: format!(
                        "it has {} entries, not more than the {} before the bookmark; verify from the start to check it",
                        cp.size,
                        b.tree.size()
                    ),
                });
            }
            run.tree = b.tree.clone();
            run.expected = b.next_seq;
            run.prev_mac = b.prev_mac;
            run.chain = b.chain.clone();
            run.format = b.format;
            run.origin = b.origin.clone();
            run.last_checkpoint = b.last_checkpoint;
            run.prev_line = b.prev_line.clone();
            run.file = b.segment.clone();
            run.file_line = b.line;
            run.file_offset = b.offset;
            run.report.last_seq = b.seq();
            run.report.format = b.format;
        }
        Ok(run)
    }

    fn fail(
        &mut self,
        kind: FailureKind,
        file: &Path,
        line: u64,
        seq: Option<u64>,
        message: String,
    ) {
        if self.report.failure.is_none() {
            self.report.failure = Some(Failure {
                kind,
                file: file.to_path_buf(),
                line,
                seq,
                message,
            });
        }
    }

    /// Reads segment `idx` from `offset` (non-zero only at a bookmark).
    fn segment(&mut self, idx: usize, offset: u64) -> Result<(), VerifyError> {
        let segments = self.segments;
        let (name_seq, path) = &segments[idx];
        let io_err = |source| VerifyError::Io {
            path: path.clone(),
            source,
        };
        let mut file = File::open(path).map_err(io_err)?;
        if offset > 0 {
            let len = file.metadata().map_err(io_err)?.len();
            if len < offset {
                let msg = format!("the file has {len} bytes, fewer than when it was bookmarked");
                let seq = Some(self.expected - 1);
                self.fail(FailureKind::Modified, path, self.file_line, seq, msg);
                return Ok(());
            }
            file.seek(SeekFrom::Start(offset)).map_err(io_err)?;
        } else {
            self.report.segments += 1;
            self.file_line = 0;
            self.file_offset = 0;
        }
        self.file.clone_from(path);
        let next = segments.get(idx + 1).map(|(_, p)| p.as_path());
        // A second thread reads the file, splits it into lines, parses
        // their seals and hashes them without their MACs, while this one
        // checks them in order (the MAC chain, seqs, the Merkle tree,
        // everything else).
        let prepare = Prepare {
            format: self.format,
            prev: self.v.keys.is_some().then_some(self.prev_mac),
        };
        std::thread::scope(|scope| {
            let (tx, rx) = mpsc::sync_channel(CHUNKS_AHEAD);
            let (back_tx, back_rx) = mpsc::channel();
            scope.spawn(move || read_chunks(file, prepare, &tx, &back_rx));
            let mut lines = Lines::new(rx, back_tx, path, next);
            let mut first = offset == 0;
            let mut result = Ok(());
            let mut stop = false;
            while !stop {
                let mut chunk = match lines.next_chunk() {
                    Ok(Some(chunk)) => chunk,
                    Ok(None) => break,
                    Err(e) => {
                        result = Err(e);
                        break;
                    }
                };
                let mut verified = 0;
                for i in 0..chunk.lines.len() {
                    let taken = chunk.lines[i].taken;
                    let prepared = chunk.lines[i].prepared.take();
                    self.file_line += 1;
                    self.file_offset += taken;
                    let start = first.then_some((idx, *name_seq));
                    first = false;
                    let here = At {
                        chunk: &chunk,
                        idx: i,
                    };
                    match self.entry(chunk.line(i), prepared, &mut lines, &here, start) {
                        Ok(true) => verified = i + 1,
                        Ok(false) => stop = true,
                        Err(e) => {
                            result = Err(e);
                            stop = true;
                        }
                    }
                    if stop {
                        break;
                    }
                }
                if verified > 0 {
                    self.prev_line.clear();
                    self.prev_line.extend_from_slice(chunk.line(verified - 1));
                }
                lines.recycle(chunk);
            }
            // Stops the reader thread, if it is still reading.
            drop(lines);
            result
        })?;
        self.prev_file = Some((path.clone(), self.file_line));
        Ok(())
    }

    /// Checks one line; false when it failed. `start` is the segment's index
    /// and the seq in its name, for its first line.
    fn entry(
        &mut self,
        line: &[u8],
        prepared: Option<Prepared>,
        lines: &mut Lines<'_>,
        here: &At<'_>,
        start: Option<(usize, u64)>,
    ) -> Result<bool, VerifyError> {
        let path = lines.path;
        let lineno = self.file_line;
        self.bytes += line.len() as u64 + 1;
        if let Some(p) = self.v.progress
            && self.report.entries.is_multiple_of(65_536)
        {
            p(self.bytes);
        }
        let format = match self.format {
            Some(f) => f,
            None => match LineFormat::detect(line) {
                Some(f) => {
                    self.format = Some(f);
                    self.report.format = Some(f);
                    f
                }
                None => {
                    self.old_format(path, lineno, line)?;
                    let msg = "not a sealed entry in any format".to_string();
                    self.fail(FailureKind::Malformed, path, lineno, None, msg);
                    return Ok(false);
                }
            },
        };
        // The reader thread parsed and hashed the line in this format; if
        // it could not know the format, do it here.
        let prepared = match prepared.filter(|p| p.format == format) {
            Some(p) => p,
            None => match parse_entry(format, line) {
                Ok(parsed) => Prepared::new(format, line, parsed, None),
                Err(_) => {
                    self.old_format(path, lineno, line)?;
                    let msg = "line is not a sealed entry".to_string();
                    self.fail(FailureKind::Malformed, path, lineno, None, msg);
                    return Ok(false);
                }
            },
        };
        let Prepared {
            parsed: Parsed { seal, .. },
            hash,
            digest,
            ..
        } = prepared;
        if let Some((idx, name_seq)) = start
            && let Some(f) = self.segment_start(idx, name_seq, line, &seal, format)?
        {
            self.report.failure.get_or_insert(f);
            return Ok(false);
        }
        if seal.seq != self.expected {
            let (kind, seq, msg) = self.classify(line, &seal, lines, here, format)?;
            self.fail(kind, path, lineno, seq, msg);
            return Ok(false);
        }
        let signed = match (&seal.checkpoint, &self.v.public) {
            (Some(note), Some(verifier)) => match verifier.verify(note) {
                Ok(cp) => Some(cp),
                Err(e) => {
                    let msg = format!("checkpoint signature: {e}");
                    self.fail(
                        FailureKind::ForgedCheckpoint,
                        path,
                        lineno,
                        Some(seal.seq),
                        msg,
                    );
                    return Ok(false);
                }
            },
            _ => None,
        };
        if let Some((kind, msg)) = self.check_mac(&hash, digest, &seal) {
            self.fail(kind, path, lineno, Some(seal.seq), msg);
            return Ok(false);
        }
        if let Some(note) = &seal.checkpoint {
            if let Some((kind, msg)) = self.check_checkpoint(note, signed) {
                self.fail(kind, path, lineno, Some(seal.seq), msg);
                return Ok(false);
            }
            self.last_checkpoint = seal.seq;
            // A removal entry before a checkpoint that verified is the
            // log's own.
            if let (Some((_, Some(removal))), Some(t)) = (&self.trim, &mut self.report.trimmed) {
                t.removal_seq = *removal;
            }
        }
        if let Some((_, found @ None)) = &mut self.trim
            && let Some((first, last)) = anchor::removal(format, line)
        {
            let missing = self.report.trimmed.as_ref().map_or(1, |t| t.first_seq) - 1;
            if first <= missing && missing <= last {
                *found = Some(seal.seq);
                if self.v.keys.is_some()
                    && let Some(t) = &mut self.report.trimmed
                {
                    // Its MAC verified.
                    t.removal_seq = seal.seq;
                }
            }
        }
        self.tree.push(hash.leaf(&seal.mac));
        self.check_external(path, lineno, seal.seq);
        if self.report.failure.is_some() {
            return Ok(false);
        }
        self.report.entries += 1;
        self.report.last_seq = seal.seq;
        self.expected = seal.seq + 1;
        self.prev_mac = seal.mac;
        while let Some(&want) = self.bookmark_at.last() {
            if want > seal.seq {
                break;
            }
            self.bookmark_at.pop();
            if want == seal.seq {
                let b = self.bookmark(line, &seal);
                self.report.bookmarks.push(b);
            }
        }
        Ok(true)
    }

    /// Stops the verification when a line that does not parse was sealed
    /// in format 1: the whole log was, and this version cannot check it.
    /// No change of a byte or of a line break turns an entry of format 2
    /// into one of format 1.
    fn old_format(&self, path: &Path, line_no: u64, line: &[u8]) -> Result<(), VerifyError> {
        if parses_as_v1(line) {
            return Err(VerifyError::OldFormat {
                path: path.to_path_buf(),
                line: line_no,
            });
        }
        Ok(())
    }

    fn bookmark(&self, line: &[u8], seal: &Seal) -> Bookmark {
        Bookmark {
            segment: self.file.clone(),
            offset: self.file_offset,
            line: self.file_line,
            next_seq: seal.seq + 1,
            prev_mac: seal.mac,
            tree: self.tree.clone(),
            prev_line: line.to_vec(),
            format: self.format,
            origin: self.origin.clone(),
            chain: self.chain.clone(),
            last_checkpoint: self.last_checkpoint,
        }
    }

    /// Checks the first line of a segment file against the file's name and
    /// the segment before it. Only a file that does not start where its name
    /// and the log say is a segment-level failure; otherwise its lines are
    /// checked one by one.
    fn segment_start(
        &mut self,
        idx: usize,
        name_seq: u64,
        line: &[u8],
        seal: &Seal,
        format: LineFormat,
    ) -> Result<Option<Failure>, VerifyError> {
        let (e, c, n) = (self.expected, seal.seq, name_seq);
        if n == u64::MAX || n == e {
            return Ok(None);
        }
        let segments = self.segments;
        let path = &segments[idx].1;
        let at = |kind, file: &Path, line, seq, message| {
            Ok(Some(Failure {
                kind,
                file: file.to_path_buf(),
                line,
                seq: Some(seq),
                message,
            }))
        };
        if c == e || c != n {
            let msg =
                format!("the file is named for seq {n} but starts at seq {c}: it was renamed");
            return at(FailureKind::ReorderedSegment, path, 1, c, msg);
        }
        if c < e {
            let msg = format!("the file starts at seq {c}, which was already read");
            return at(FailureKind::Replayed, path, 1, c, msg);
        }
        if e == 1
            && self.report.entries == 0
            && self.v.resume.is_none()
            && let Some(anchor) = Anchor::of_line(format, line, c)
        {
            self.start_at_anchor(anchor, path, seal)?;
            return Ok(None);
        }
        // The file is named for its first entry, but entries e..c-1 are missing.
        let gap = if c - 1 == e {
            format!("entry {e}")
        } else {
            format!("entries {e}..{}", c - 1)
        };
        if let Some((p, p_name)) = first_starting_at(&segments[idx + 1..], e, format) {
            let msg = format!(
                "the file holds {gap} and more but is named for seq {p_name}: it was renamed"
            );
            return at(FailureKind::ReorderedSegment, p, 1, e, msg);
        }
        if let Some((prev, prev_lines)) = &self.prev_file {
            let linked = previous_segment(line);
            if linked.is_some() && linked == prev.file_name().and_then(|n| n.to_str()) {
                let msg = format!("{gap} are missing from the end of this file");
                return at(FailureKind::Deleted, prev, prev_lines + 1, e, msg);
            }
        }
        let msg = format!("the segment(s) holding {gap} are missing before this file");
        at(FailureKind::MissingSegment, path, 1, e, msg)
    }

    /// Starts the verification at a segment whose first entry carries an
    /// anchor, the segments before it being gone: its tree, previous MAC
    /// and chain. Whether the removal was retention's is settled by a
    /// sealed `audit.segments_removed` entry further on, or at the end.
    fn start_at_anchor(
        &mut self,
        anchor: Anchor,
        path: &Path,
        seal: &Seal,
    ) -> Result<(), VerifyError> {
        let before = anchor.tree.size();
        if let Some((cp_path, cp)) = self
            .pending_external
            .iter()
            .find(|(_, cp)| cp.size < before)
        {
            return Err(VerifyError::BadCheckpoint {
                path: cp_path.clone(),
                message: format!(
                    "it has {} entries, but the log's first {before} were removed by retention: it can no longer be checked against this log",
                    cp.size
                ),
            });
        }
        // A kept checkpoint of exactly the entries removed checks the
        // anchor's tree.
        if let Some(i) = self
            .pending_external
            .iter()
            .position(|(_, cp)| cp.size == before)
        {
            let (cp_path, cp) = self.pending_external.remove(i);
            if !mac_eq(&cp.root, &anchor.tree.root()) {
                let msg = format!(
                    "kept checkpoint {} (size {}) disagrees with the anchor of this file: the log was rewritten",
                    cp_path.display(),
                    cp.size
                );
                self.fail(FailureKind::Fork, path, 1, Some(seal.seq), msg);
            } else {
                self.report.external_checkpoints_checked += 1;
            }
        }
        self.tree = anchor.tree;
        self.expected = seal.seq;
        self.prev_mac = anchor.prev_mac;
        self.chain = Some(ChainPos {
            origin: anchor.origin.clone(),
            start: anchor.chain_start,
            version: seal.key_version,
        });
        self.origin = Some(anchor.origin);
        self.key = None;
        self.trim = Some((path.to_path_buf(), None));
        self.report.trimmed = Some(Trimmed {
            first_seq: seal.seq,
            removal_seq: 0,
        });
        Ok(())
    }

    /// Names what an out-of-place seq means, looking at the lines after it.
    fn classify(
        &mut self,
        line: &[u8],
        seal: &Seal,
        lines: &mut Lines<'_>,
        here: &At<'_>,
        format: LineFormat,
    ) -> Result<(FailureKind, Option<u64>, String), VerifyError> {
        let e = self.expected;
        let s = seal.seq;
        if contains(line, &seal_prefix(format, e)) {
            let msg = format!("entries {e} and {s} share one line: a line break is missing");
            return Ok((FailureKind::Malformed, Some(e), msg));
        }
        let next = lines.peek(here, 0)?.map(|l| line_seq(format, l));
        let end = next.is_none();
        let next = next.flatten();
        let changed =
            format!("the entry in the place of seq {e} says seq {s}: its seq was changed");
        if s < e {
            if s + 1 == e && line == here.prev().unwrap_or(&self.prev_line) {
                return Ok((
                    FailureKind::Duplicated,
                    Some(s),
                    format!("entry {s} appears twice"),
                ));
            }
            if next == Some(e) {
                let msg = format!("entry {s} appears again after entry {}", e - 1);
                return Ok((FailureKind::Replayed, Some(s), msg));
            }
            if next == Some(e + 1) || (end && self.verifies_as(e, line, format, seal)) {
                return Ok((FailureKind::Modified, Some(e), changed));
            }
            let msg = format!("entry {s} appears again after entry {}", e - 1);
            return Ok((FailureKind::Replayed, Some(s), msg));
        }
        let after = lines.peek(here, 1)?.and_then(|l| line_seq(format, l));
        if next == Some(e) && after == Some(e + 1) {
            let msg = format!("entry {s} does not belong before entry {e}");
            return Ok((FailureKind::Inserted, Some(s), msg));
        }
        if next != Some(s + 1) && lines.find_seq(here, e, format)? {
            return Ok((
                FailureKind::Reordered,
                Some(s),
                format!("entry {s} comes before entry {e}"),
            ));
        }
        if next == Some(e + 1) || (end && self.verifies_as(e, line, format, seal)) {
            return Ok((FailureKind::Modified, Some(e), changed));
        }
        let msg = if s - 1 == e {
            format!("entry {e} is missing")
        } else {
            format!("entries {e}..{} are missing", s - 1)
        };
        Ok((FailureKind::Deleted, Some(e), msg))
    }

    /// The chain key for entry `expected`, derived from the chain's start
    /// when the verification resumed at a bookmark.
    fn chain_key(
        &mut self,
        lookup: &KeyLookup<'_>,
    ) -> Result<(&mut ChainKey, u32), (FailureKind, String)> {
        let Some(pos) = &self.chain else {
            return Err((FailureKind::Modified, "entry before any chain start".into()));
        };
        let key = match self.key.take() {
            Some(k) => k,
            None => {
                let Some(audit_key) = lookup(pos.version) else {
                    let msg = format!("audit key version {} is not available", pos.version);
                    return Err((FailureKind::UnknownKey, msg));
                };
                let mut k = ChainKey::start(&audit_key, &pos.origin, pos.start);
                for _ in pos.start..self.expected {
                    k.evolve();
                }
                k
            }
        };
        let version = pos.version;
        Ok((self.key.insert(key), version))
    }

    fn check_mac(
        &mut self,
        hash: &EntryHash,
        digest: Option<(Hash, Hash)>,
        seal: &Seal,
    ) -> Option<(FailureKind, String)> {
        if let Some(origin) = &seal.start {
            if self.v.keys.is_some()
                && let Some(o) = &self.origin
                && o != origin
            {
                let msg = format!("chain origin {origin:?} differs from {o:?}");
                return Some((FailureKind::Modified, msg));
            }
            self.origin = Some(origin.clone());
            self.chain = Some(ChainPos {
                origin: origin.clone(),
                start: seal.seq,
                version: seal.key_version,
            });
            self.key = None;
            self.report.chains += 1;
        }
        let lookup = self.v.keys?;
        let prev = self.prev_mac;
        // The reader hashed the digest with the MAC of the line before;
        // that is the previous entry's unless a line failed before.
        let digest = match digest {
            Some((p, d)) if mac_eq(&p, &prev) => d,
            _ => hash.digest(&prev),
        };
        let (key, version) = match self.chain_key(lookup) {
            Ok(k) => k,
            Err(failure) => return Some(failure),
        };
        if version != seal.key_version {
            let msg = format!(
                "key version {} inside a chain of version {version}",
                seal.key_version
            );
            return Some((FailureKind::Modified, msg));
        }
        let mac = key.mac(&digest);
        if !mac_eq(&mac, &seal.mac) {
            let msg = "MAC does not verify: the entry or its seal was changed".to_string();
            return Some((FailureKind::Modified, msg));
        }
        key.evolve();
        self.report.macs_checked += 1;
        None
    }

    /// True when the line's MAC verifies as entry `seq`, the one expected,
    /// with `seq` back in its seq field: only that field was changed.
    /// Always false without the audit keys.
    fn verifies_as(&mut self, seq: u64, line: &[u8], format: LineFormat, seal: &Seal) -> bool {
        let Some(lookup) = self.v.keys else {
            return false;
        };
        let Some(restored) = with_seq(format, line, seq) else {
            return false;
        };
        let Ok(parsed) = parse_entry(format, &restored) else {
            return false;
        };
        let prev = self.prev_mac;
        let digest = EntryHash::of(&restored, parsed.mac_at).digest(&prev);
        let v = seal.key_version;
        let mac = match &seal.start {
            Some(origin) => match lookup(v) {
                Some(audit_key) => ChainKey::start(&audit_key, origin, seq).mac(&digest),
                None => return false,
            },
            None => match self.chain_key(lookup) {
                Ok((key, version)) if version == v => key.mac(&digest),
                _ => return false,
            },
        };
        mac_eq(&mac, &seal.mac)
    }

    /// Checks an in-log checkpoint's size and root against the tree;
    /// `signed` is the checkpoint when its signature was already checked.
    fn check_checkpoint(
        &mut self,
        note: &str,
        signed: Option<Checkpoint>,
    ) -> Option<(FailureKind, String)> {
        let Some(cp) = signed.or_else(|| parse_unverified(note)) else {
            let msg = "checkpoint note is malformed".to_string();
            return Some((FailureKind::ForgedCheckpoint, msg));
        };
        let since = match self.last_checkpoint {
            0 => "an entry".to_string(),
            seq => format!("an entry after seq {seq} (the previous checkpoint)"),
        };
        if cp.size != self.tree.size() {
            let msg = format!(
                "checkpoint claims {} entries where {} precede it",
                cp.size,
                self.tree.size()
            );
            return Some((FailureKind::Fork, msg));
        }
        if !mac_eq(&cp.root, &self.tree.root()) {
            let msg = format!(
                "checkpoint root for {} entries disagrees with the log: {since} was changed after it was signed, or the log forked",
                cp.size
            );
            return Some((FailureKind::Fork, msg));
        }
        self.report.checkpoints_checked += 1;
        None
    }

    fn check_external(&mut self, path: &Path, line: u64, seq: u64) {
        while let Some((_, cp)) = self.pending_external.last() {
            if cp.size > self.tree.size() {
                break;
            }
            let Some((cp_path, cp)) = self.pending_external.pop() else {
                break;
            };
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
        if let (Some((file, found)), Some(t)) = (self.trim.clone(), &self.report.trimmed)
            && t.removal_seq == 0
        {
            let first = t.first_seq;
            let gap = if first == 2 {
                "entry 1".to_string()
            } else {
                format!("entries 1..{}", first - 1)
            };
            let msg = match found {
                None => format!(
                    "the segment(s) holding {gap} are missing before this file, and no sealed audit.segments_removed entry accounts for them"
                ),
                Some(seq) => format!(
                    "the segment(s) holding {gap} are missing before this file; the audit.segments_removed entry at seq {seq} that accounts for them is not covered by a checkpoint"
                ),
            };
            self.fail(FailureKind::MissingSegment, &file, 1, Some(1), msg);
            return;
        }
        if let Some((path, cp)) = self.pending_external.first().cloned() {
            let size = self.tree.size();
            let msg = format!(
                "the log ends after seq {size} but kept checkpoint {} has {} entries: its tail was cut",
                path.display(),
                cp.size,
            );
            let file = self.file.clone();
            self.fail(
                FailureKind::TruncatedTail,
                &file,
                self.file_line + 1,
                Some(size + 1),
                msg,
            );
        }
    }
}

/// The opening of the seal and the tokens after its seq up to its key
/// version, as `line.rs` writes them.
fn seal_tokens(format: LineFormat) -> (&'static [u8], &'static [u8]) {
    match format {
        LineFormat::Json => (b",\"seal\":{\"seq\":", b",\"v\":2,\"key\":"),
        LineFormat::Text => (b" seal.seq=", b" seal.v=2 seal.key="),
        LineFormat::Cef => (b" vigilSealSeq=", b" vigilSealV=2 vigilSealKey="),
    }
}

/// The bytes a sealed line of entry `seq` holds from its seal's opening to
/// its key version.
fn seal_prefix(format: LineFormat, seq: u64) -> Vec<u8> {
    let (open, key) = seal_tokens(format);
    let mut v = open.to_vec();
    v.extend_from_slice(seq.to_string().as_bytes());
    v.extend_from_slice(key);
    v
}

/// `line` with `seq` in its seal's seq field.
fn with_seq(format: LineFormat, line: &[u8], seq: u64) -> Option<Vec<u8>> {
    let (open, _) = seal_tokens(format);
    let at = line.windows(open.len()).rposition(|w| w == open)? + open.len();
    let n = line[at..].iter().take_while(|b| b.is_ascii_digit()).count();
    let mut out = line[..at].to_vec();
    out.extend_from_slice(seq.to_string().as_bytes());
    out.extend_from_slice(&line[at + n..]);
    Some(out)
}

/// The seq in a line's seal, read cheaply, for looking ahead.
fn line_seq(format: LineFormat, line: &[u8]) -> Option<u64> {
    let (open, _) = seal_tokens(format);
    let at = line.windows(open.len()).rposition(|w| w == open)?;
    let digits = &line[at + open.len()..];
    let n = digits.iter().take_while(|b| b.is_ascii_digit()).count();
    std::str::from_utf8(&digits[..n]).ok()?.parse().ok()
}

fn contains(hay: &[u8], needle: &[u8]) -> bool {
    hay.windows(needle.len()).any(|w| w == needle)
}

/// The previous segment a segment's first entry (`audit.segment_rotated`)
/// names, in any format: the first `audit-<20 digits>.log` in the line.
fn previous_segment(line: &[u8]) -> Option<&str> {
    const LEN: usize = "audit-".len() + 20 + ".log".len();
    line.windows(LEN)
        .find(|w| {
            w.starts_with(b"audit-")
                && w.ends_with(b".log")
                && w[6..26].iter().all(u8::is_ascii_digit)
        })
        .and_then(|w| std::str::from_utf8(w).ok())
}

/// The first of `segments` whose first line has seq `seq`, and the seq its
/// name promises. Reads one line of each.
fn first_starting_at(
    segments: &[(u64, PathBuf)],
    seq: u64,
    format: LineFormat,
) -> Option<(&Path, u64)> {
    let mut buf = Vec::new();
    segments.iter().find_map(|(name_seq, path)| {
        let mut r = BufReader::new(File::open(path).ok()?);
        buf.clear();
        r.read_until(b'\n', &mut buf).ok()?;
        (line_seq(format, &buf) == Some(seq)).then_some((path.as_path(), *name_seq))
    })
}

/// What the reader thread prepares for the checks of one line: its seal,
/// parsed, and its hashes without the MAC ([`EntryHash`]), with the entry
/// digest the MAC covers when the audit keys are given (and the previous
/// MAC it was chained to). The checking thread finishes the Merkle leaf,
/// which needs the MAC.
struct Prepared {
    format: LineFormat,
    parsed: Parsed,
    hash: EntryHash,
    digest: Option<(Hash, Hash)>,
}

impl Prepared {
    /// Hashes a parsed line, and its digest chained to `prev` if given.
    fn new(format: LineFormat, line: &[u8], parsed: Parsed, prev: Option<Hash>) -> Prepared {
        let hash = EntryHash::of(line, parsed.mac_at);
        let digest = prev.map(|p| (p, hash.digest(&p)));
        Prepared {
            format,
            parsed,
            hash,
            digest,
        }
    }
}

/// What the reader thread is to prepare.
#[derive(Clone, Copy)]
struct Prepare {
    /// The line format, when known; else the first line that parses in a
    /// format decides it, as it does for the checking thread.
    format: Option<LineFormat>,
    /// With the audit keys, the MAC the next line's digest is chained to:
    /// that of the line before it (at first, of the entry before the
    /// segment or bookmark).
    prev: Option<Hash>,
}

/// Lines of a segment file read by [`read_chunks`].
#[derive(Default)]
struct Chunk {
    buf: Vec<u8>,
    lines: Vec<LineInfo>,
}

/// One line of a [`Chunk`].
struct LineInfo {
    /// Where it is in the chunk's buffer, without its newline.
    start: usize,
    end: usize,
    /// The bytes it took in the file.
    taken: u64,
    /// `None` when the line does not parse as a sealed entry.
    prepared: Option<Prepared>,
}

impl Chunk {
    /// Line `i`, without its newline.
    fn line(&self, i: usize) -> &[u8] {
        let l = &self.lines[i];
        &self.buf[l.start..l.end]
    }
}

/// The line being checked: line `idx` of `chunk`.
struct At<'c> {
    chunk: &'c Chunk,
    idx: usize,
}

impl At<'_> {
    /// The line before, when it is in the same chunk.
    fn prev(&self) -> Option<&[u8]> {
        self.idx.checked_sub(1).map(|i| self.chunk.line(i))
    }

    /// Lines of the chunk after this one.
    fn after(&self) -> usize {
        self.chunk.lines.len() - self.idx - 1
    }
}

/// Reads a segment file from where `file` stands, in chunks of whole lines,
/// parses and hashes each line as `prepare` says, and sends the chunks on
/// `tx`; takes chunks to reuse from `back`. Stops at the end of the file,
/// on an error (which it sends) or when the receiver is gone.
fn read_chunks(
    mut file: File,
    mut prepare: Prepare,
    tx: &SyncSender<io::Result<Chunk>>,
    back: &Receiver<Chunk>,
) {
    let mut carry: Vec<u8> = Vec::new();
    loop {
        let mut chunk = back.try_recv().unwrap_or_default();
        chunk.buf.clear();
        chunk.lines.clear();
        chunk.buf.append(&mut carry);
        // Where the next line starts, and where the search for its end
        // goes on.
        let mut pos = 0;
        let mut scan = 0;
        let mut eof = false;
        while chunk.lines.is_empty() && !eof {
            let have = chunk.buf.len();
            // A line longer than a chunk makes the buffer grow.
            let want = if have < CHUNK { CHUNK - have } else { have };
            chunk.buf.reserve(want);
            match (&mut file).take(want as u64).read_to_end(&mut chunk.buf) {
                Ok(n) => eof = n < want,
                Err(e) => {
                    let _ = tx.send(Err(e));
                    return;
                }
            }
            while let Some(nl) = find_newline(&chunk.buf[scan..]) {
                let end = scan + nl;
                push_line(&mut chunk, pos, end, end + 1 - pos, &mut prepare);
                pos = end + 1;
                scan = pos;
            }
            scan = chunk.buf.len();
        }
        if eof {
            let len = chunk.buf.len();
            if pos < len {
                // The last line has no newline.
                push_line(&mut chunk, pos, len, len - pos, &mut prepare);
            }
        } else {
            carry.extend_from_slice(&chunk.buf[pos..]);
        }
        if !chunk.lines.is_empty() && tx.send(Ok(chunk)).is_err() {
            return;
        }
        if eof {
            return;
        }
    }
}

/// Parses and hashes the line at `start..end` of `chunk` and adds it.
fn push_line(chunk: &mut Chunk, start: usize, end: usize, taken: usize, prepare: &mut Prepare) {
    let line = &chunk.buf[start..end];
    let format = prepare.format.or_else(|| LineFormat::detect(line));
    let prepared = format.and_then(|format| {
        let parsed = parse_entry(format, line).ok()?;
        prepare.format = Some(format);
        let prepared = Prepared::new(format, line, parsed, prepare.prev);
        if let Some(prev) = &mut prepare.prev {
            *prev = prepared.parsed.seal.mac;
        }
        Some(prepared)
    });
    chunk.lines.push(LineInfo {
        start,
        end,
        taken: taken as u64,
        prepared,
    });
}

/// The position of the first newline in `s`.
fn find_newline(s: &[u8]) -> Option<usize> {
    // Vectorised, unlike the standard library's word-at-a-time search.
    memchr::memchr(b'\n', s)
}

/// Lines of one segment, with lookahead (into the next segment too) for
/// naming failures.
struct Lines<'p> {
    rx: Receiver<io::Result<Chunk>>,
    /// Chunks read from go back to the reader thread for reuse.
    back: Sender<Chunk>,
    path: &'p Path,
    /// Chunks received after the current one (when looking ahead).
    chunks: VecDeque<Chunk>,
    /// True when the reader thread sent the whole file.
    done: bool,
    next_path: Option<&'p Path>,
    next: Option<BufReader<File>>,
    next_ahead: Vec<Vec<u8>>,
    next_done: bool,
}

impl<'p> Lines<'p> {
    fn new(
        rx: Receiver<io::Result<Chunk>>,
        back: Sender<Chunk>,
        path: &'p Path,
        next_path: Option<&'p Path>,
    ) -> Self {
        Lines {
            rx,
            back,
            path,
            chunks: VecDeque::new(),
            done: false,
            next_path,
            next: None,
            next_ahead: Vec::new(),
            next_done: next_path.is_none(),
        }
    }

    /// Waits for the next chunk from the reader thread; false at the end of
    /// the file.
    fn receive(&mut self) -> Result<Option<Chunk>, VerifyError> {
        if self.done {
            return Ok(None);
        }
        match self.rx.recv() {
            Ok(Ok(chunk)) => Ok(Some(chunk)),
            Ok(Err(source)) => {
                self.done = true;
                Err(VerifyError::Io {
                    path: self.path.to_path_buf(),
                    source,
                })
            }
            Err(_) => {
                self.done = true;
                Ok(None)
            }
        }
    }

    /// The next chunk of lines; `None` at the end of the file.
    fn next_chunk(&mut self) -> Result<Option<Chunk>, VerifyError> {
        match self.chunks.pop_front() {
            Some(chunk) => Ok(Some(chunk)),
            None => self.receive(),
        }
    }

    /// Gives a chunk whose lines were read back to the reader thread.
    fn recycle(&self, chunk: Chunk) {
        // The reader may be gone already; then nobody reuses it.
        let _ = self.back.send(chunk);
    }

    /// Lines received after the current chunk.
    fn available(&self) -> usize {
        self.chunks.iter().map(|c| c.lines.len()).sum()
    }

    /// The `i`-th line after the current one (`here`): in this file, then
    /// among the first lines of the next segment.
    fn peek<'s>(&'s mut self, here: &'s At<'_>, i: usize) -> Result<Option<&'s [u8]>, VerifyError> {
        if i < here.after() {
            return Ok(Some(here.chunk.line(here.idx + 1 + i)));
        }
        let i = i - here.after();
        while self.available() <= i {
            match self.receive()? {
                Some(chunk) => self.chunks.push_back(chunk),
                None => break,
            }
        }
        let available = self.available();
        if i < available {
            let mut j = i;
            for c in &self.chunks {
                if j < c.lines.len() {
                    return Ok(Some(c.line(j)));
                }
                j -= c.lines.len();
            }
            return Ok(None);
        }
        let j = i - available;
        while self.next_ahead.len() <= j && !self.next_done {
            if self.next.is_none() {
                match self.next_path.and_then(|p| File::open(p).ok()) {
                    Some(f) => self.next = Some(BufReader::new(f)),
                    None => {
                        self.next_done = true;
                        break;
                    }
                }
            }
            let (Some(reader), Some(path)) = (&mut self.next, self.next_path) else {
                break;
            };
            let mut buf = Vec::new();
            if read_line(reader, &mut buf, path)? == 0 {
                self.next_done = true;
            } else {
                self.next_ahead.push(buf);
            }
        }
        Ok(self.next_ahead.get(j).map(Vec::as_slice))
    }

    /// True when `seq` appears in the rest of this file (or among the lines
    /// already read ahead). Reads the rest of the file: only for naming a
    /// failure, after which nothing more is read.
    fn find_seq(
        &mut self,
        here: &At<'_>,
        seq: u64,
        format: LineFormat,
    ) -> Result<bool, VerifyError> {
        let has = |l: &[u8]| line_seq(format, l) == Some(seq);
        let in_chunk = |c: &Chunk, from: usize| {
            c.lines
                .iter()
                .skip(from)
                .any(|l| has(&c.buf[l.start..l.end]))
        };
        let received =
            in_chunk(here.chunk, here.idx + 1) || self.chunks.iter().any(|c| in_chunk(c, 0));
        if received || self.next_ahead.iter().any(|l| has(l)) {
            return Ok(true);
        }
        while let Some(chunk) = self.receive()? {
            if in_chunk(&chunk, 0) {
                return Ok(true);
            }
        }
        Ok(false)
    }
}

/// Reads one line into `buf` without its newline; returns the bytes read
/// (0 at the end of the file).
fn read_line(
    reader: &mut BufReader<File>,
    buf: &mut Vec<u8>,
    path: &Path,
) -> Result<u64, VerifyError> {
    buf.clear();
    let n = reader
        .read_until(b'\n', buf)
        .map_err(|source| VerifyError::Io {
            path: path.to_path_buf(),
            source,
        })?;
    if buf.last() == Some(&b'\n') {
        buf.pop();
    }
    Ok(n as u64)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::line::write_sealed;

    #[test]
    fn seal_tokens_match_the_line_format() {
        for format in [LineFormat::Json, LineFormat::Text, LineFormat::Cef] {
            let record: &[u8] = match format {
                LineFormat::Json => b"{\"a\":1}",
                LineFormat::Text => b"a=1",
                LineFormat::Cef => b"CEF:0|a|b|1|2|n|3|",
            };
            let seal = Seal {
                seq: 1234,
                key_version: 7,
                start: None,
                mac: [1; 32],
                checkpoint: None,
            };
            let mut line = Vec::new();
            write_sealed(format, record, &seal, &mut line);
            assert!(contains(&line, &seal_prefix(format, 1234)), "{format:?}");
            assert_eq!(line_seq(format, &line), Some(1234), "{format:?}");
        }
    }

    #[test]
    fn finds_the_previous_segment_in_a_line() {
        let line = br#"{"fields":{"previous_segment":"audit-00000000000000000001.log"}}"#;
        assert_eq!(
            previous_segment(line),
            Some("audit-00000000000000000001.log")
        );
        assert_eq!(previous_segment(b"audit-0001.log"), None);
    }
}
