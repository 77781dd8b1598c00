//! Retention: removing the oldest sealed segments once they are old or the
//! log is large, but never one a sink has not delivered, unless the
//! configuration says so.
//!
//! Segments go from the front only, so what stays is one contiguous run of
//! the log; the segment being written is never removed. Each removal is
//! sealed as `audit.segments_removed` with the seq range before the files
//! go (so `vigil verify` accepts the missing head), and a sink whose
//! entries were removed before it delivered them reports
//! `sink.behind_retention` when it gets there.

use std::fs;
use std::path::Path;
use std::time::{Duration, SystemTime};

use vigil_event::{Event, catalog};
use vigil_seal::list_segments;

/// When old segments go.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Retention {
    /// Remove the oldest segments while the log is larger than this.
    pub max_bytes: Option<u64>,
    /// Remove segments whose last write is older than this.
    pub max_age: Option<Duration>,
    /// Remove segments even when a sink has not delivered them (the sink
    /// then reports `sink.behind_retention`). Off by default: a sink that is
    /// down holds the log back, and the disk fills instead.
    pub undelivered: bool,
}

impl Retention {
    /// Whether any limit is set.
    pub fn is_set(&self) -> bool {
        self.max_bytes.is_some() || self.max_age.is_some()
    }
}

/// What one pass removed, and what it kept for the sinks.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Removed {
    /// Segment files removed.
    pub files: u64,
    /// Their bytes.
    pub bytes: u64,
    /// The first and last seq removed.
    pub seqs: Option<(u64, u64)>,
    /// Removed entries some sink had not delivered.
    pub undelivered: u64,
    /// Segments due for removal but kept because a sink has not delivered
    /// them.
    pub held: u64,
}

impl Removed {
    /// The event that records this pass, if it removed anything.
    pub fn event(&self) -> Option<Event> {
        let (first, last) = self.seqs?;
        Some(
            Event::new(
                catalog::AUDIT_SEGMENTS_REMOVED,
                format!("removing audit entries {first}..={last} by retention"),
            )
            .field("first_seq", first)
            .field("last_seq", last)
            .field("files", self.files)
            .field("bytes", self.bytes)
            .field("undelivered", self.undelivered),
        )
    }
}

/// Segments due for removal, planned but not yet removed: seal
/// [`Removed::event`] first, then [`remove`](Self::remove) them, so that
/// the log always accounts for what it lost, even across a crash.
#[derive(Debug, Default)]
pub(crate) struct Plan {
    /// What removing them removes.
    pub(crate) removed: Removed,
    paths: Vec<std::path::PathBuf>,
}

impl Plan {
    /// Removes the planned segments, front first, and syncs the directory.
    /// A file already gone (removed by another pass) is skipped.
    pub(crate) fn remove(self) -> std::io::Result<Removed> {
        for path in &self.paths {
            match fs::remove_file(path) {
                Ok(()) => {}
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
                Err(e) => return Err(e),
            }
        }
        if !self.paths.is_empty()
            && let Some(dir) = self.paths[0].parent()
            && let Ok(d) = fs::File::open(dir)
        {
            let _ = d.sync_all();
        }
        Ok(self.removed)
    }
}

/// Plans `retention` for the log in `dir`, where every entry up to
/// `delivered` reached every sink.
pub(crate) fn plan(dir: &Path, retention: &Retention, delivered: u64) -> std::io::Result<Plan> {
    let segments = list_segments(dir)?;
    let mut sizes = Vec::with_capacity(segments.len());
    let mut total = 0u64;
    let mut kept = Vec::with_capacity(segments.len());
    for (first, path) in segments {
        // A segment removed meanwhile (by another pass) is simply gone.
        let Ok(meta) = fs::metadata(&path) else {
            continue;
        };
        total += meta.len();
        sizes.push((meta.len(), meta.modified().unwrap_or(SystemTime::now())));
        kept.push((first, path));
    }
    let segments = kept;
    let mut plan = Plan::default();
    let removed = &mut plan.removed;
    // Never the last segment: it is the one being written.
    for i in 0..segments.len().saturating_sub(1) {
        let (first, path) = &segments[i];
        let last = segments[i + 1].0 - 1;
        let (bytes, modified) = sizes[i];
        let too_big = retention.max_bytes.is_some_and(|max| total > max);
        let too_old = retention
            .max_age
            .is_some_and(|age| modified.elapsed().is_ok_and(|e| e > age));
        if !too_big && !too_old {
            break;
        }
        if last > delivered && !retention.undelivered {
            removed.held += 1;
            break;
        }
        plan.paths.push(path.clone());
        total -= bytes;
        removed.files += 1;
        removed.bytes += bytes;
        removed.undelivered += last.saturating_sub(delivered.max(first - 1));
        removed.seqs = Some((removed.seqs.map_or(*first, |(f, _)| f), last));
    }
    Ok(plan)
}

/// Applies `retention` to the log in `dir` at once, sealing nothing: what
/// [`plan`] and [`Plan::remove`] do together.
pub fn apply(dir: &Path, retention: &Retention, delivered: u64) -> std::io::Result<Removed> {
    plan(dir, retention, delivered)?.remove()
}
