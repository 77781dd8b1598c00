//! Sinks: where formatted records go, and how a sink's failures are tracked.

use std::fmt;
use std::fs::{File, OpenOptions};
use std::io::{self, BufWriter, Write};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::Instant;

use vigil_event::{Filter, Format};

use crate::error::Error;
use crate::stats::SinkCounters;

/// The size of each sink's write buffer.
pub(crate) const BUFFER_SIZE: usize = 64 * 1024;

/// One output of the pipeline: where its records go, in what format, and
/// which events it receives.
///
/// ```
/// use vigil_event::{Filter, Format, Selector, Severity};
/// use vigil_ship::{SinkSpec, Target};
///
/// let audit = SinkSpec::new("audit", Target::File("/var/log/vigil/audit.jsonl".into()))
///     .format(Format::Json)
///     .filter(Filter::new(Severity::Info, &[Selector::parse("statement").unwrap()], &[]));
/// assert_eq!(audit.name, "audit");
/// ```
#[derive(Debug)]
pub struct SinkSpec {
    /// A name unique within the pipeline; it appears in `sink.down`,
    /// `sink.up` and the [`Stats`](crate::Stats).
    pub name: String,
    /// Where the records go.
    pub target: Target,
    /// How each event is written: one record per line.
    pub format: Format,
    /// Which events the sink receives.
    pub filter: Filter,
}

impl SinkSpec {
    /// A sink of every event, as JSON lines.
    pub fn new(name: impl Into<String>, target: Target) -> SinkSpec {
        SinkSpec {
            name: name.into(),
            target,
            format: Format::Json,
            filter: Filter::all(),
        }
    }

    /// Sets the format.
    pub fn format(mut self, format: Format) -> SinkSpec {
        self.format = format;
        self
    }

    /// Sets the filter.
    pub fn filter(mut self, filter: Filter) -> SinkSpec {
        self.filter = filter;
        self
    }
}

/// Where a sink writes.
#[non_exhaustive]
pub enum Target {
    /// The process's standard output.
    Stdout,
    /// The process's standard error.
    Stderr,
    /// A file, created with mode 0600 if absent and appended to. An existing
    /// file readable or writable by group or others is refused.
    File(PathBuf),
    /// Any writer, for embedding and tests. Writes may block; errors and
    /// panics are reported like those of any sink.
    Writer(Box<dyn Write + Send>),
}

impl fmt::Debug for Target {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Target::Stdout => f.write_str("Stdout"),
            Target::Stderr => f.write_str("Stderr"),
            Target::File(path) => f.debug_tuple("File").field(path).finish(),
            Target::Writer(_) => f.write_str("Writer(..)"),
        }
    }
}

impl Target {
    /// Opens the target; file sinks are created or checked here.
    pub(crate) fn open(self, sink: &str) -> Result<Box<dyn Write + Send>, Error> {
        Ok(match self {
            Target::Stdout => Box::new(io::stdout()),
            Target::Stderr => Box::new(io::stderr()),
            Target::File(path) => Box::new(open_file(sink, &path)?),
            Target::Writer(w) => w,
        })
    }
}

/// Opens `path` for appending, creating it with mode 0600, and refuses a
/// file that group or others may access.
pub(crate) fn open_file(sink: &str, path: &Path) -> Result<File, Error> {
    let open_error = |source| Error::OpenFile {
        sink: sink.to_owned(),
        path: path.to_owned(),
        source,
    };
    let mut options = OpenOptions::new();
    options.create(true).append(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::{OpenOptionsExt, PermissionsExt};
        options.mode(0o600);
        let file = options.open(path).map_err(open_error)?;
        // Checked on the open file, not the path, so a swap in between
        // cannot slip an open file past the check.
        let mode = file.metadata().map_err(open_error)?.permissions().mode();
        if mode & 0o077 != 0 {
            return Err(Error::FileMode {
                sink: sink.to_owned(),
                path: path.to_owned(),
                mode: mode & 0o7777,
            });
        }
        Ok(file)
    }
    #[cfg(not(unix))]
    {
        options.open(path).map_err(open_error)
    }
}

/// Whether a sink is delivering.
#[derive(Debug)]
pub(crate) enum Health {
    Up,
    /// Failing. `lost_before` is the sink's `lost` count when it went down,
    /// so `sink.up` can say how many records the outage cost.
    Down {
        lost_before: u64,
        last_attempt: Instant,
    },
}

/// A started sink, owned by the worker.
pub(crate) struct Sink {
    pub(crate) name: Arc<str>,
    pub(crate) filter: Filter,
    /// Index of the sink's format in the worker's list of distinct formats.
    pub(crate) format: usize,
    pub(crate) health: Health,
    pub(crate) counters: Arc<SinkCounters>,
    out: BufWriter<Box<dyn Write + Send>>,
    /// Records in `out`'s buffer, or written by it, since the last
    /// successful flush: not yet known to be delivered.
    pending: u64,
}

impl fmt::Debug for Sink {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Sink")
            .field("name", &self.name)
            .field("format", &self.format)
            .field("health", &self.health)
            .field("pending", &self.pending)
            .field("buffered", &self.out.buffer().len())
            .finish_non_exhaustive()
    }
}

impl Sink {
    pub(crate) fn new(
        name: Arc<str>,
        filter: Filter,
        format: usize,
        out: Box<dyn Write + Send>,
        counters: Arc<SinkCounters>,
    ) -> Sink {
        Sink {
            name,
            filter,
            format,
            health: Health::Up,
            counters,
            out: BufWriter::with_capacity(BUFFER_SIZE, out),
            pending: 0,
        }
    }

    /// True when records wait in the buffer, or were written since the last
    /// flush.
    pub(crate) fn is_dirty(&self) -> bool {
        self.pending > 0 || !self.out.buffer().is_empty()
    }

    /// Appends one record (with its line terminator). Only touches the
    /// writer when the buffer is full, or the record is larger than it;
    /// returns whether it did, and so whether the writer is known to work.
    ///
    /// On error the record was not taken; a partially written buffer keeps
    /// its unwritten bytes for the next attempt.
    pub(crate) fn write(&mut self, record: &[u8]) -> io::Result<bool> {
        let mut wrote_through = false;
        if self.out.buffer().len() + record.len() > self.out.capacity()
            && !self.out.buffer().is_empty()
        {
            // Flush ourselves rather than let `BufWriter` do it, so every
            // successful write to the writer is counted as delivered.
            self.flush()?;
            wrote_through = true;
        }
        // Fits in the buffer now, or goes straight to the writer. (A record
        // of 64 KiB or more that fails half-way leaves a partial line: rare,
        // as messages and fields are short, and the error is reported.)
        wrote_through |= record.len() >= self.out.capacity();
        self.out.write_all(record)?;
        self.pending += 1;
        Ok(wrote_through)
    }

    /// Writes the buffer out and flushes the writer; on success every
    /// pending record counts as written.
    pub(crate) fn flush(&mut self) -> io::Result<()> {
        self.out.flush()?;
        self.counters
            .written
            .fetch_add(self.pending, Ordering::Relaxed);
        self.pending = 0;
        Ok(())
    }

    /// Flushes one last time and closes the writer. Records that still
    /// cannot be delivered count as lost, and are not retried when the
    /// writer is dropped.
    pub(crate) fn close(mut self) -> io::Result<()> {
        let result = self.flush();
        if result.is_err() {
            self.counters.errors.fetch_add(1, Ordering::Relaxed);
            self.counters
                .lost
                .fetch_add(self.pending, Ordering::Relaxed);
            // Discard the buffer without the flush `BufWriter::drop` would try.
            drop(self.out.into_parts());
        }
        result
    }
}
