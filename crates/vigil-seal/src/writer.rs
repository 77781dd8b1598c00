//! The audit log writer: seals events into segment files, with group
//! commit, checkpoints, segment rotation, key rotation and crash recovery.
//!
//! The directory holds:
//!
//! ```text
//! audit-<first seq, 20 digits>.log   segments, one sealed entry per line, mode 0600
//! checkpoint                         the latest signed checkpoint note
//! state                              where the last checkpoint left the tree (not secret)
//! ```

use std::fs::{self, File, OpenOptions};
use std::io::{self, BufRead, BufReader, Read, Seek, SeekFrom, Write};
use std::os::unix::fs::{OpenOptionsExt, PermissionsExt};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Condvar, Mutex, MutexGuard};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use vigil_event::{Event, catalog};
use zeroize::Zeroizing;

use crate::anchor::Anchor;
use crate::chain::KeyStream;
use crate::checkpoint::{Checkpoint, CheckpointSigner};
use crate::leaves::Leaves;
use crate::line::{
    EntryHash, LineFormat, SEAL_FORMAT_VERSION, Seal, fill_mac, parse_entry, parses_as_v1,
    write_unsealed,
};
use crate::merkle::{Hash, Tree, hash_from_hex, hash_to_hex, leaf_hash};

/// When sealed entries reach the disk.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum SyncPolicy {
    /// `fdatasync` after every entry: nothing acknowledged is ever lost, at
    /// the cost of one disk flush per event.
    Always,
    /// Group commit: one `fdatasync` at most every interval for all entries
    /// written meanwhile. A crash loses at most the last interval, and
    /// nothing that was acknowledged durable.
    Interval(Duration),
    /// Leave flushing to the operating system; `close` still syncs.
    Never,
}

impl SyncPolicy {
    /// The default group-commit interval.
    pub const DEFAULT_INTERVAL: Duration = Duration::from_millis(10);
}

/// Settings of an audit log.
#[derive(Clone, Debug)]
pub struct SealConfig {
    /// The audit directory.
    pub dir: PathBuf,
    /// The instance id on every entry and checkpoint.
    pub origin: String,
    /// The line format of segment files.
    pub format: LineFormat,
    /// Durability.
    pub sync: SyncPolicy,
    /// Start a new segment when the current one reaches this size.
    pub segment_max_bytes: u64,
    /// Start a new segment when the current one is this old.
    pub segment_max_age: Duration,
    /// Seal a checkpoint after this many entries.
    pub checkpoint_every: u64,
    /// Seal a checkpoint after this long, even when idle (a heartbeat).
    pub checkpoint_interval: Duration,
}

impl SealConfig {
    /// Defaults for `dir` and `origin`: JSON lines, group commit every
    /// 10 ms, 64 MiB or one-day segments, a checkpoint every 100,000
    /// entries or 60 seconds.
    pub fn new(dir: impl Into<PathBuf>, origin: impl Into<String>) -> SealConfig {
        SealConfig {
            dir: dir.into(),
            origin: origin.into(),
            format: LineFormat::Json,
            sync: SyncPolicy::Interval(SyncPolicy::DEFAULT_INTERVAL),
            segment_max_bytes: 64 << 20,
            segment_max_age: Duration::from_secs(86_400),
            checkpoint_every: 100_000,
            checkpoint_interval: Duration::from_secs(60),
        }
    }
}

/// The keys a writer needs: the current audit key and its version, and the
/// checkpoint signer.
pub struct SealKeys {
    /// Version of the audit key.
    pub version: u32,
    /// The audit key; zeroized on drop.
    pub audit_key: Zeroizing<[u8; 32]>,
    /// Signs checkpoints.
    pub signer: CheckpointSigner,
}

impl std::fmt::Debug for SealKeys {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SealKeys")
            .field("version", &self.version)
            .finish_non_exhaustive()
    }
}

/// Why the audit log could not be written.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum SealError {
    /// The audit directory could not be created, read or written.
    #[error(
        "audit directory {path}: {source}; check that it exists, is writable by vigil and the disk has space"
    )]
    Dir {
        /// The directory.
        path: PathBuf,
        /// The cause.
        source: io::Error,
    },
    /// A segment or state file could not be opened, written or synced.
    #[error("audit file {path}: {source}; check the disk (space, permissions, errors)")]
    File {
        /// The file.
        path: PathBuf,
        /// The cause.
        source: io::Error,
    },
    /// A checkpoint could not be signed.
    #[error("cannot sign a checkpoint: {0}")]
    Sign(String),
    /// The writer is closed.
    #[error("the audit log is closed")]
    Closed,
    /// Writes have failed for so long that the sealed entries waiting in
    /// memory reached their limit; this event was not sealed.
    #[error(
        "the audit log has {0} bytes of sealed entries it cannot write; this event was not sealed"
    )]
    Backlog(usize),
    /// The audit directory holds a log sealed in an older format, which
    /// this version neither verifies nor extends.
    #[error(
        "{0} holds an audit log sealed in format 1 by an older vigil; this vigil writes and verifies format {SEAL_FORMAT_VERSION} only: verify that log with the vigil release that wrote it, then move its files out of the audit directory (vigil starts a new log there)"
    )]
    OldFormat(PathBuf),
}

/// What recovery found when the log was opened.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Recovery {
    /// Entries found on disk.
    pub entries: u64,
    /// Bytes cut from the end of the last segment (a torn write).
    pub cut_bytes: u64,
    /// Lines in the middle of the log that are not valid entries, left in place.
    pub corrupt_lines: u64,
    /// True when the tree had to be rebuilt from every segment.
    pub rebuilt: bool,
}

/// Seals events into an audit directory. Single writer: call it from one
/// thread (vigil's pipeline worker).
///
/// Each entry's line is hashed once, without its MAC, for both the MAC and
/// the Merkle leaf (docs/audit.md). With more than one CPU it hashes part
/// of each entry on threads of its own: the end of the Merkle leaves and
/// the tree (`vigil-seal-tree`), needed only at checkpoints, and the
/// chain's keys ahead of the entries
/// (`vigil-seal-keys`). With `sync = "interval"` a third thread syncs the
/// file (`vigil-seal-sync`).
pub struct Sealer {
    cfg: SealConfig,
    keys: SealKeys,
    origin: Arc<str>,
    chain: KeyStream,
    /// The seq the current chain started at.
    chain_start: u64,
    start_pending: bool,
    prev_mac: Hash,
    next_seq: u64,
    /// The Merkle tree, hashed on a thread of its own.
    leaves: Leaves,
    seg: Segment,
    since_checkpoint: u64,
    last_checkpoint: Instant,
    durable: Arc<Durable>,
    syncer: Option<JoinHandle<()>>,
    generated: Vec<Event>,
    record: Vec<u8>,
    closed: bool,
    /// The first write error not yet taken by `take_error`.
    error: Option<SealError>,
}

impl std::fmt::Debug for Sealer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Sealer")
            .field("dir", &self.cfg.dir)
            .field("next_seq", &self.next_seq)
            .field("segment", &self.seg.path)
            .finish_non_exhaustive()
    }
}

struct Segment {
    path: PathBuf,
    file: Arc<File>,
    first_seq: u64,
    /// Bytes in the file, including `pending`.
    bytes: u64,
    opened: Instant,
    /// Sealed lines not yet written to the file.
    pending: Vec<u8>,
    /// Last seq whose line is in `pending` or the file.
    last_seq: u64,
}

const PENDING_FLUSH: usize = 256 * 1024;

/// Sealed bytes kept in memory while the disk refuses them (full, failing);
/// beyond this, events are refused rather than sealed.
const PENDING_MAX: usize = 64 << 20;

/// Durability state shared with the syncer thread and with waiters.
#[derive(Debug)]
struct Durable {
    state: Mutex<DurableState>,
    cv: Condvar,
    stop: AtomicBool,
}

#[derive(Debug)]
struct DurableState {
    /// Last seq written to the operating system.
    written: u64,
    /// Last seq known to be on disk.
    synced: u64,
    file: Option<Arc<File>>,
    error: Option<String>,
    /// Threads waiting on the condition variable: notifying costs a
    /// system call, so it is done only when someone waits.
    sleepers: u32,
}

impl Durable {
    /// Wakes the waiters, if any, after `st` changed.
    fn notify(&self, st: MutexGuard<'_, DurableState>) {
        let waiting = st.sleepers > 0;
        drop(st);
        if waiting {
            self.cv.notify_all();
        }
    }

    /// Waits on the condition variable for at most `timeout`.
    fn sleep<'a>(
        &self,
        mut st: MutexGuard<'a, DurableState>,
        timeout: Duration,
    ) -> MutexGuard<'a, DurableState> {
        st.sleepers += 1;
        let mut st = match self.cv.wait_timeout(st, timeout) {
            Ok((g, _)) => g,
            Err(p) => p.into_inner().0,
        };
        st.sleepers -= 1;
        st
    }
}

/// Waits for entries to become durable.
#[derive(Clone, Debug)]
pub struct DurableHandle(Arc<Durable>);

impl DurableHandle {
    /// Blocks until entry `seq` is on disk, or `timeout` passes, or syncing
    /// failed. Returns true when it is durable.
    pub fn wait(&self, seq: u64, timeout: Duration) -> bool {
        let deadline = Instant::now() + timeout;
        let mut st = lock(&self.0.state);
        loop {
            if st.synced >= seq {
                return true;
            }
            if st.error.is_some() {
                return false;
            }
            let now = Instant::now();
            if now >= deadline {
                return false;
            }
            st = self.0.sleep(st, deadline - now);
        }
    }

    /// The last seq known to be on disk.
    pub fn synced(&self) -> u64 {
        lock(&self.0.state).synced
    }
}

fn lock(m: &Mutex<DurableState>) -> MutexGuard<'_, DurableState> {
    m.lock().unwrap_or_else(|p| p.into_inner())
}

/// The persisted position of the last checkpoint.
#[derive(Debug, Clone, PartialEq, Eq)]
struct State {
    segment: String,
    offset: u64,
    last_seq: u64,
    prev_mac: Hash,
    key_version: u32,
    tree_size: u64,
    frontier: Vec<Hash>,
}

/// The first line of the `state` file: the seal format's version, as the
/// tree's leaves depend on it.
const STATE_HEADER: &str = "vigil-seal state v2";

/// The first line of a `state` file written by format 1.
const STATE_HEADER_V1: &str = "vigil-seal state v1";

impl State {
    fn encode(&self) -> String {
        let mut s = format!(
            "vigil-seal state v2\nsegment {}\noffset {}\nlast_seq {}\nprev_mac {}\nkey_version {}\ntree_size {}\n",
            self.segment,
            self.offset,
            self.last_seq,
            hash_to_hex(&self.prev_mac),
            self.key_version,
            self.tree_size
        );
        for h in &self.frontier {
            s.push_str("frontier ");
            s.push_str(&hash_to_hex(h));
            s.push('\n');
        }
        s
    }

    fn decode(text: &str) -> Option<State> {
        let mut lines = text.lines();
        if lines.next()? != STATE_HEADER {
            return None;
        }
        let mut field = |name: &str| -> Option<String> {
            let l = lines.next()?;
            l.strip_prefix(name)?.strip_prefix(' ').map(str::to_owned)
        };
        let segment = field("segment")?;
        let offset = field("offset")?.parse().ok()?;
        let last_seq = field("last_seq")?.parse().ok()?;
        let prev_mac = hash_from_hex(&field("prev_mac")?)?;
        let key_version = field("key_version")?.parse().ok()?;
        let tree_size = field("tree_size")?.parse().ok()?;
        let mut frontier = Vec::new();
        for l in lines {
            frontier.push(hash_from_hex(l.strip_prefix("frontier ")?)?);
        }
        if segment.contains('/') || !segment.starts_with("audit-") {
            return None;
        }
        Some(State {
            segment,
            offset,
            last_seq,
            prev_mac,
            key_version,
            tree_size,
            frontier,
        })
    }
}

/// The file name of the segment whose first entry is `seq`.
pub fn segment_name(seq: u64) -> String {
    format!("audit-{seq:020}.log")
}

/// The first seq a segment file name promises, if it is one.
pub fn parse_segment_name(name: &str) -> Option<u64> {
    let digits = name.strip_prefix("audit-")?.strip_suffix(".log")?;
    if digits.len() != 20 || !digits.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    digits.parse().ok()
}

/// The segment files of `dir`, ordered by the first seq in their names.
pub fn list_segments(dir: &Path) -> io::Result<Vec<(u64, PathBuf)>> {
    let mut out = Vec::new();
    for entry in fs::read_dir(dir)? {
        let entry = entry?;
        if let Some(seq) = entry.file_name().to_str().and_then(parse_segment_name) {
            out.push((seq, entry.path()));
        }
    }
    out.sort();
    Ok(out)
}

impl Sealer {
    /// Opens (or creates) the audit log in `cfg.dir`, recovering from a
    /// crash if needed, and starts a new chain under `keys`. The entries it
    /// seals while opening (`audit.chain_started`, `audit.recovered`) are
    /// returned by [`take_generated`](Self::take_generated).
    pub fn open(cfg: SealConfig, keys: SealKeys) -> Result<(Sealer, Recovery), SealError> {
        create_dir(&cfg.dir)?;
        let dir_err = |source| SealError::Dir {
            path: cfg.dir.clone(),
            source,
        };
        let segments = list_segments(&cfg.dir).map_err(dir_err)?;
        let (found, recovery) = recover(&cfg, &segments)?;
        let origin: Arc<str> = Arc::from(cfg.origin.as_str());
        let durable = Arc::new(Durable {
            state: Mutex::new(DurableState {
                written: 0,
                synced: 0,
                file: None,
                error: None,
                sleepers: 0,
            }),
            cv: Condvar::new(),
            stop: AtomicBool::new(false),
        });
        let previous_version = found.as_ref().map(|f| f.key_version).filter(|&v| v != 0);
        let (next_seq, prev_mac, tree, seg) = match found {
            Some(f) => {
                let file = open_segment(&f.path)?;
                let bytes = f.len;
                let seg = Segment {
                    path: f.path,
                    file: Arc::new(file),
                    first_seq: f.first_seq,
                    bytes,
                    opened: Instant::now(),
                    pending: Vec::new(),
                    last_seq: f.last_seq,
                };
                (f.last_seq + 1, f.prev_mac, f.tree, seg)
            }
            None => {
                let path = cfg.dir.join(segment_name(1));
                let file = open_segment(&path)?;
                let seg = Segment {
                    path,
                    file: Arc::new(file),
                    first_seq: 1,
                    bytes: 0,
                    opened: Instant::now(),
                    pending: Vec::new(),
                    last_seq: 0,
                };
                (1, [0u8; 32], Tree::new(), seg)
            }
        };
        {
            let mut st = lock(&durable.state);
            st.written = next_seq - 1;
            st.synced = next_seq - 1;
            st.file = Some(seg.file.clone());
        }
        let chain = KeyStream::start(&keys.audit_key, &cfg.origin, next_seq);
        let mut sealer = Sealer {
            cfg,
            keys,
            origin,
            chain,
            chain_start: next_seq,
            start_pending: true,
            prev_mac,
            next_seq,
            leaves: Leaves::new(tree),
            seg,
            since_checkpoint: 0,
            last_checkpoint: Instant::now(),
            durable,
            syncer: None,
            generated: Vec::new(),
            record: Vec::with_capacity(1024),
            closed: false,
            error: None,
        };
        if let SyncPolicy::Interval(every) = sealer.cfg.sync {
            sealer.syncer = Some(spawn_syncer(sealer.durable.clone(), every));
        }
        let first = sealer.next_seq;
        let started = Event::new(catalog::AUDIT_CHAIN_STARTED, "audit chain started")
            .field("key_version", sealer.keys.version)
            .field("first_seq", first)
            .field("format", sealer.cfg.format.as_str());
        sealer.seal_internal(started)?;
        if let Some(old) = previous_version.filter(|&v| v != sealer.keys.version) {
            let ev = Event::new(catalog::AUDIT_KEY_ROTATED, "audit key rotated at start")
                .field("old_version", old)
                .field("new_version", sealer.keys.version);
            sealer.seal_internal(ev)?;
        }
        if recovery.cut_bytes > 0 || recovery.corrupt_lines > 0 || recovery.rebuilt {
            let ev = Event::new(
                catalog::AUDIT_RECOVERED,
                "audit log recovered after a crash",
            )
            .field("entries", recovery.entries)
            .field("cut_bytes", recovery.cut_bytes)
            .field("corrupt_lines", recovery.corrupt_lines)
            .field("rebuilt", recovery.rebuilt)
            .field("segment", file_name(&sealer.seg.path));
            sealer.seal_internal(ev)?;
        }
        sealer.flush()?;
        Ok((sealer, recovery))
    }

    /// Seals `event`: assigns its origin and seq, writes it (buffered; see
    /// [`flush`](Self::flush)), and seals a checkpoint or starts a new
    /// segment when due. Returns the seq.
    pub fn append(&mut self, event: &mut Event) -> Result<u64, SealError> {
        if self.closed {
            return Err(SealError::Closed);
        }
        if self.seg.pending.len() >= PENDING_MAX {
            // Try once more; the disk may have recovered.
            let _ = self.write_pending();
            if self.seg.pending.len() >= PENDING_MAX {
                return Err(SealError::Backlog(self.seg.pending.len()));
            }
        }
        let rotated = self.rotate_segment_if_due();
        self.keep_error(rotated);
        let seq = self.seal(event, None)?;
        self.since_checkpoint += 1;
        if self.since_checkpoint >= self.cfg.checkpoint_every {
            let cp = self.checkpoint().map(|_| ());
            self.keep_error(cp);
        }
        Ok(seq)
    }

    /// The first write, sync or checkpoint error since the last call. The
    /// entries it concerns stay in memory and are written when the disk
    /// accepts them again.
    pub fn take_error(&mut self) -> Option<SealError> {
        self.error.take()
    }

    /// Bytes of sealed entries waiting to be written.
    pub fn backlog(&self) -> usize {
        self.seg.pending.len()
    }

    fn keep_error(&mut self, result: Result<(), SealError>) {
        if let Err(e) = result {
            self.error.get_or_insert(e);
        }
    }

    /// The seq the next entry will get.
    pub fn next_seq(&self) -> u64 {
        self.next_seq
    }

    /// A handle to wait for durability.
    pub fn durable(&self) -> DurableHandle {
        DurableHandle(self.durable.clone())
    }

    /// Entries the writer sealed on its own (chain start, checkpoints,
    /// segment rotation, recovery, key rotation), for forwarding to sinks.
    pub fn take_generated(&mut self) -> Vec<Event> {
        std::mem::take(&mut self.generated)
    }

    /// Periodic work: heartbeat checkpoints and segment rotation by age.
    /// Call it at least every second, also when idle.
    pub fn tick(&mut self) -> Result<(), SealError> {
        if self.closed {
            return Ok(());
        }
        if self.last_checkpoint.elapsed() >= self.cfg.checkpoint_interval {
            self.checkpoint()?;
        }
        self.rotate_segment_if_due()?;
        Ok(())
    }

    /// Writes buffered entries to the file; under `Always` also syncs.
    pub fn flush(&mut self) -> Result<(), SealError> {
        self.write_pending()?;
        if self.cfg.sync == SyncPolicy::Always {
            self.sync_now()?;
        }
        Ok(())
    }

    /// Seals a checkpoint of everything before it, syncs, and writes it to
    /// the `checkpoint` file.
    pub fn checkpoint(&mut self) -> Result<String, SealError> {
        let tree = self.leaves.tree();
        let cp = Checkpoint {
            origin: self.cfg.origin.clone(),
            size: tree.size(),
            root: tree.root(),
            extensions: Vec::new(),
        };
        let note = self
            .keys
            .signer
            .sign(&cp)
            .map_err(|e| SealError::Sign(e.to_string()))?;
        // The note travels in the event too, so every sink carries an
        // off-host copy of every checkpoint.
        let ev = Event::new(catalog::AUDIT_CHECKPOINT, "checkpoint")
            .field("tree_size", cp.size)
            .field("root", hash_to_hex(&cp.root))
            .field("note", note.clone());
        let mut ev = ev;
        self.seal(&mut ev, Some(note.clone()))?;
        self.generated.push(ev);
        self.since_checkpoint = 0;
        self.last_checkpoint = Instant::now();
        self.write_pending()?;
        self.sync_now()?;
        write_atomic(&self.cfg.dir, "checkpoint", note.as_bytes())?;
        // The tree with the checkpoint entry in it.
        let tree = self.leaves.tree();
        let state = State {
            segment: file_name(&self.seg.path),
            offset: self.seg.bytes,
            last_seq: self.next_seq - 1,
            prev_mac: self.prev_mac,
            key_version: self.keys.version,
            tree_size: tree.size(),
            frontier: tree.frontier().to_vec(),
        };
        write_atomic(&self.cfg.dir, "state", state.encode().as_bytes())?;
        Ok(note)
    }

    /// When the last checkpoint was sealed (or the log opened).
    pub fn last_checkpoint(&self) -> Instant {
        self.last_checkpoint
    }

    /// Rotates to a new audit key: seals `audit.key_rotated` under the old
    /// key, a checkpoint, then starts a new chain under the new key.
    pub fn rotate_key(
        &mut self,
        version: u32,
        audit_key: Zeroizing<[u8; 32]>,
    ) -> Result<(), SealError> {
        let old = self.keys.version;
        let ev = Event::new(catalog::AUDIT_KEY_ROTATED, "audit key rotated")
            .field("old_version", old)
            .field("new_version", version);
        self.seal_internal(ev)?;
        self.checkpoint()?;
        self.keys.version = version;
        self.keys.audit_key = audit_key;
        self.chain = KeyStream::start(&self.keys.audit_key, &self.cfg.origin, self.next_seq);
        self.chain_start = self.next_seq;
        self.start_pending = true;
        let started = Event::new(catalog::AUDIT_CHAIN_STARTED, "audit chain started")
            .field("key_version", version)
            .field("first_seq", self.next_seq)
            .field("format", self.cfg.format.as_str());
        self.seal_internal(started)?;
        self.flush()
    }

    /// Seals `audit.chain_closed` and a final checkpoint, syncs, and stops
    /// the syncer. Returns the entries it sealed on its own meanwhile.
    pub fn close(mut self) -> Result<Vec<Event>, SealError> {
        self.close_inner()?;
        Ok(self.take_generated())
    }

    fn close_inner(&mut self) -> Result<(), SealError> {
        if self.closed {
            return Ok(());
        }
        let ev = Event::new(catalog::AUDIT_CHAIN_CLOSED, "audit chain closed")
            .field("last_seq", self.next_seq);
        self.seal_internal(ev)?;
        self.checkpoint()?;
        self.closed = true;
        self.stop_syncer();
        Ok(())
    }

    fn stop_syncer(&mut self) {
        self.durable.stop.store(true, Ordering::Release);
        self.durable.cv.notify_all();
        if let Some(h) = self.syncer.take() {
            let _ = h.join();
        }
    }

    fn seal_internal(&mut self, mut ev: Event) -> Result<u64, SealError> {
        let seq = self.seal(&mut ev, None)?;
        self.generated.push(ev);
        Ok(seq)
    }

    fn seal(&mut self, event: &mut Event, checkpoint: Option<String>) -> Result<u64, SealError> {
        let seq = self.next_seq;
        event.seq = seq;
        event.origin = self.origin.clone();
        self.record.clear();
        self.cfg
            .format
            .event_format()
            .write(event, &mut self.record);
        let start = self.start_pending.then(|| self.cfg.origin.clone());
        let seal = Seal {
            seq,
            key_version: self.keys.version,
            start,
            mac: [0; 32],
            checkpoint,
        };
        // The sealed line goes straight into the write buffer, hashed
        // without its MAC, which is then written into its place.
        let at = self.seg.pending.len();
        let mac_at = write_unsealed(self.cfg.format, &self.record, &seal, &mut self.seg.pending);
        let entry = EntryHash::of(&self.seg.pending[at..], mac_at - at);
        let mac = self.chain.mac_and_evolve(&entry.digest(&self.prev_mac));
        fill_mac(&mut self.seg.pending, mac_at, &mac);
        self.leaves.push(entry, &mac);
        self.seg.pending.push(b'\n');
        self.seg.bytes += (self.seg.pending.len() - at) as u64;
        self.seg.last_seq = seq;
        self.prev_mac = mac;
        self.start_pending = false;
        self.next_seq += 1;
        // The entry is sealed; a failed write keeps it in `pending` for later.
        let written = if self.cfg.sync == SyncPolicy::Always {
            self.write_pending().and_then(|()| self.sync_now())
        } else if self.seg.pending.len() >= PENDING_FLUSH {
            self.write_pending()
        } else {
            Ok(())
        };
        self.keep_error(written);
        Ok(seq)
    }

    fn write_pending(&mut self) -> Result<(), SealError> {
        if self.seg.pending.is_empty() {
            return Ok(());
        }
        let mut f: &File = &self.seg.file;
        let mut done = 0;
        let res = loop {
            if done == self.seg.pending.len() {
                break Ok(());
            }
            #[allow(clippy::disallowed_methods)] // partial writes are tracked by `done`
            match f.write(&self.seg.pending[done..]) {
                Ok(0) => break Err(io::Error::from(io::ErrorKind::WriteZero)),
                Ok(n) => done += n,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(e) => break Err(e),
            }
        };
        // Keep what was not written: sealed entries are never dropped.
        self.seg.pending.drain(..done);
        res.map_err(|source| SealError::File {
            path: self.seg.path.clone(),
            source,
        })?;
        let mut st = lock(&self.durable.state);
        st.written = self.seg.last_seq;
        if self.cfg.sync == SyncPolicy::Never {
            st.synced = st.written;
        }
        self.durable.notify(st);
        Ok(())
    }

    fn sync_now(&mut self) -> Result<(), SealError> {
        self.seg
            .file
            .sync_data()
            .map_err(|source| SealError::File {
                path: self.seg.path.clone(),
                source,
            })?;
        let mut st = lock(&self.durable.state);
        st.synced = st.synced.max(self.seg.last_seq.min(st.written));
        self.durable.notify(st);
        Ok(())
    }

    fn rotate_segment_if_due(&mut self) -> Result<(), SealError> {
        let full = self.seg.bytes >= self.cfg.segment_max_bytes;
        let old = self.seg.opened.elapsed() >= self.cfg.segment_max_age;
        if !(full || old) || self.seg.last_seq < self.seg.first_seq {
            return Ok(());
        }
        self.write_pending()?;
        self.sync_now()?;
        let previous = file_name(&self.seg.path);
        let previous_first = self.seg.first_seq;
        let previous_last = self.seg.last_seq;
        let path = self.cfg.dir.join(segment_name(self.next_seq));
        let file = Arc::new(open_segment(&path)?);
        sync_dir(&self.cfg.dir)?;
        self.seg = Segment {
            path,
            file: file.clone(),
            first_seq: self.next_seq,
            bytes: 0,
            opened: Instant::now(),
            pending: Vec::new(),
            last_seq: self.next_seq - 1,
        };
        lock(&self.durable.state).file = Some(file);
        // Where a verifier starts when the segments before are gone.
        let anchor = Anchor {
            origin: self.cfg.origin.clone(),
            chain_start: self.chain_start,
            prev_mac: self.prev_mac,
            tree: self.leaves.tree(),
        };
        let ev = Event::new(catalog::AUDIT_SEGMENT_ROTATED, "audit segment started")
            .field("previous_segment", previous)
            .field("previous_first_seq", previous_first)
            .field("previous_last_seq", previous_last)
            .field("reason", if full { "size" } else { "age" })
            .field("anchor", anchor.encode());
        self.seal_internal(ev)?;
        Ok(())
    }
}

impl Drop for Sealer {
    fn drop(&mut self) {
        if !self.closed {
            let _ = self.write_pending();
            let _ = self.sync_now();
            self.stop_syncer();
        }
    }
}

fn spawn_syncer(durable: Arc<Durable>, every: Duration) -> JoinHandle<()> {
    std::thread::Builder::new()
        .name("vigil-seal-sync".into())
        .spawn(move || {
            loop {
                let (target, file) = {
                    let mut st = lock(&durable.state);
                    while st.written <= st.synced && !durable.stop.load(Ordering::Acquire) {
                        st = durable.sleep(st, every);
                    }
                    if st.written <= st.synced {
                        return;
                    }
                    (st.written, st.file.clone())
                };
                let result = match &file {
                    Some(f) => f.sync_data(),
                    None => Ok(()),
                };
                let mut st = lock(&durable.state);
                match result {
                    Ok(()) => st.synced = st.synced.max(target),
                    Err(e) => st.error = Some(e.to_string()),
                }
                durable.notify(st);
                if durable.stop.load(Ordering::Acquire) {
                    continue;
                }
                std::thread::sleep(every);
            }
        })
        .unwrap_or_else(|e| panic!("cannot start the audit sync thread: {e}"))
}

fn create_dir(dir: &Path) -> Result<(), SealError> {
    let err = |source| SealError::Dir {
        path: dir.to_path_buf(),
        source,
    };
    if !dir.exists() {
        fs::create_dir_all(dir).map_err(err)?;
        fs::set_permissions(dir, fs::Permissions::from_mode(0o700)).map_err(err)?;
    }
    // Fail early and clearly when the directory cannot be read.
    fs::read_dir(dir).map_err(err)?;
    Ok(())
}

fn open_segment(path: &Path) -> Result<File, SealError> {
    OpenOptions::new()
        .create(true)
        .append(true)
        .read(true)
        .mode(0o600)
        .open(path)
        .map_err(|source| SealError::File {
            path: path.to_path_buf(),
            source,
        })
}

fn file_name(path: &Path) -> String {
    path.file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default()
}

fn sync_dir(dir: &Path) -> Result<(), SealError> {
    File::open(dir)
        .and_then(|d| d.sync_all())
        .map_err(|source| SealError::Dir {
            path: dir.to_path_buf(),
            source,
        })
}

/// Replaces `dir/name` atomically: temp file, fsync, rename, fsync dir.
fn write_atomic(dir: &Path, name: &str, data: &[u8]) -> Result<(), SealError> {
    let tmp = dir.join(format!(".{name}.tmp"));
    let path = dir.join(name);
    let err = |source| SealError::File {
        path: path.clone(),
        source,
    };
    let mut f = OpenOptions::new()
        .create(true)
        .write(true)
        .truncate(true)
        .mode(0o600)
        .open(&tmp)
        .map_err(err)?;
    f.write_all(data).and_then(|()| f.sync_all()).map_err(err)?;
    fs::rename(&tmp, &path).map_err(err)?;
    sync_dir(dir)
}

/// Where recovery left the log.
struct Found {
    /// Key version of the last entry.
    key_version: u32,
    path: PathBuf,
    first_seq: u64,
    len: u64,
    last_seq: u64,
    prev_mac: Hash,
    tree: Tree,
}

/// The first line of a file, without its newline.
fn first_line(path: &Path) -> Option<Vec<u8>> {
    let mut line = Vec::new();
    BufReader::new(File::open(path).ok()?)
        .read_until(b'\n', &mut line)
        .ok()?;
    line.pop_if(|b| *b == b'\n');
    Some(line)
}

/// Scans the log from the last saved state (or from the start), cutting a
/// torn tail from the last segment. Mid-log corruption is left in place
/// and counted; `vigil verify` reports it.
fn recover(
    cfg: &SealConfig,
    segments: &[(u64, PathBuf)],
) -> Result<(Option<Found>, Recovery), SealError> {
    let mut rec = Recovery::default();
    if segments.is_empty() {
        return Ok((None, rec));
    }
    let state_text = fs::read_to_string(cfg.dir.join("state")).ok();
    if state_text
        .as_deref()
        .is_some_and(|t| t.lines().next() == Some(STATE_HEADER_V1))
    {
        return Err(SealError::OldFormat(cfg.dir.clone()));
    }
    let state = state_text.and_then(|t| State::decode(&t));
    // Start from the state when it names an existing segment and a valid tree.
    let mut start_idx = 0;
    let mut offset = 0u64;
    let mut tree = Tree::new();
    let mut last_seq = 0u64;
    let mut prev_mac = [0u8; 32];
    let mut key_version = 0u32;
    match state.and_then(|s| {
        let idx = segments
            .iter()
            .position(|(_, p)| file_name(p) == s.segment)?;
        let t = Tree::from_frontier(s.tree_size, s.frontier.clone()).ok()?;
        Some((idx, s, t))
    }) {
        Some((idx, s, t)) => {
            start_idx = idx;
            offset = s.offset;
            tree = t;
            last_seq = s.last_seq;
            prev_mac = s.prev_mac;
            key_version = s.key_version;
        }
        None => {
            rec.rebuilt = true;
            // Retention removed the first segments: the tree goes on from
            // the anchor of the first one left.
            let (first, path) = &segments[0];
            if *first > 1
                && let Some(anchor) =
                    first_line(path).and_then(|line| Anchor::of_line(cfg.format, &line, *first))
            {
                tree = anchor.tree;
                last_seq = first - 1;
                prev_mac = anchor.prev_mac;
            }
        }
    }
    let last_idx = segments.len() - 1;
    let mut found_len = 0;
    for (i, (_, path)) in segments.iter().enumerate().skip(start_idx) {
        let mut data = Vec::new();
        let mut f = File::open(path).map_err(|source| SealError::File {
            path: path.clone(),
            source,
        })?;
        let from = if i == start_idx { offset } else { 0 };
        f.seek(SeekFrom::Start(from))
            .and_then(|_| f.read_to_end(&mut data))
            .map_err(|source| SealError::File {
                path: path.clone(),
                source,
            })?;
        let mut pos = 0usize;
        let mut valid_end = 0usize;
        // Leaves of invalid lines, pushed only once a valid entry follows.
        let mut held: Vec<Hash> = Vec::new();
        while pos < data.len() {
            let Some(nl) = data[pos..].iter().position(|&b| b == b'\n') else {
                break; // an unterminated last line is torn
            };
            let line = &data[pos..pos + nl];
            pos += nl + 1;
            match parse_entry(cfg.format, line) {
                Ok(p) if p.seal.seq == last_seq + 1 || (last_seq == 0 && p.seal.seq >= 1) => {
                    let seal = p.seal;
                    last_seq = seal.seq;
                    prev_mac = seal.mac;
                    key_version = seal.key_version;
                    rec.entries += 1;
                    rec.corrupt_lines += held.len() as u64;
                    for leaf in held.drain(..) {
                        tree.push(leaf);
                    }
                    tree.push(EntryHash::of(line, p.mac_at).leaf(&seal.mac));
                    valid_end = pos;
                }
                Ok(p) => held.push(EntryHash::of(line, p.mac_at).leaf(&p.seal.mac)),
                // A line that is no entry has the leaf of its bytes as they are.
                Err(_) if !parses_as_v1(line) => held.push(leaf_hash(line)),
                Err(_) => return Err(SealError::OldFormat(path.clone())),
            }
        }
        if i == last_idx {
            // Everything after the last valid entry of the last segment is torn.
            let cut = (data.len() - valid_end) as u64;
            if cut > 0 {
                let end = from + valid_end as u64;
                let f = OpenOptions::new()
                    .write(true)
                    .open(path)
                    .map_err(|source| SealError::File {
                        path: path.clone(),
                        source,
                    })?;
                f.set_len(end)
                    .and_then(|()| f.sync_all())
                    .map_err(|source| SealError::File {
                        path: path.clone(),
                        source,
                    })?;
                rec.cut_bytes = cut;
            }
            found_len = from + valid_end as u64;
        } else {
            rec.corrupt_lines += held.len() as u64;
            for leaf in held.drain(..) {
                tree.push(leaf);
            }
            if pos < data.len() {
                // An unterminated line inside the log: keep it in the tree as it is.
                tree.push(leaf_hash(&data[pos..]));
                rec.corrupt_lines += 1;
            }
        }
    }
    let (first_seq, path) = segments[last_idx].clone();
    Ok((
        Some(Found {
            key_version,
            path,
            first_seq,
            len: found_len,
            last_seq,
            prev_mac,
            tree,
        }),
        rec,
    ))
}
