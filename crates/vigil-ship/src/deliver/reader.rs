//! Reads sealed entries back from an audit directory, in seq order, across
//! segments, from any position: the delivery threads' view of the log.
//!
//! The reader only returns whole lines (a line still being written has no
//! newline yet) and never an entry past the limit it is given, the last
//! seq the writer reported durable: a receiver never holds an entry that a
//! crash could take back.

use std::fs::File;
use std::io::{self, Read, Seek, SeekFrom};
use std::path::{Path, PathBuf};

use vigil_seal::{LineFormat, list_segments, parse_sealed, record_parts};

/// How much the reader asks the file for at once.
const CHUNK: usize = 256 * 1024;

/// One sealed entry as read from its segment.
#[derive(Clone, Copy, Debug)]
pub struct Entry {
    /// Its seq.
    pub seq: u64,
    /// The first seq of its segment.
    pub segment: u64,
    /// The byte offset just past its line.
    pub end: u64,
    /// Where the seal starts in the line.
    seal_at: usize,
    /// Start and end of the line (without newline) in the reader's buffer.
    start_in_buf: usize,
    end_in_buf: usize,
}

/// Why the reader cannot go on.
#[derive(Debug)]
pub enum ReadError {
    /// The entries wanted are gone: the oldest segment starts after them.
    Behind {
        /// The seq the reader needed.
        wanted: u64,
        /// The first seq still in the log.
        oldest: u64,
    },
    /// A complete line that is not a sealed entry of this log's format.
    Corrupt {
        /// The segment file.
        path: PathBuf,
        /// The byte offset of the line.
        offset: u64,
    },
    /// Reading the directory or a segment failed.
    Io(io::Error),
}

impl std::fmt::Display for ReadError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            ReadError::Behind { wanted, oldest } => write!(
                f,
                "entry {wanted} is no longer in the audit log (its oldest entry is {oldest}): \
                 the segments holding it were removed before the sink delivered them"
            ),
            ReadError::Corrupt { path, offset } => write!(
                f,
                "{} at byte {offset}: a line that is not a sealed entry; run `vigil verify` on the audit directory",
                path.display()
            ),
            ReadError::Io(e) => write!(f, "reading the audit log: {e}"),
        }
    }
}

impl From<io::Error> for ReadError {
    fn from(e: io::Error) -> Self {
        ReadError::Io(e)
    }
}

struct Open {
    first_seq: u64,
    path: PathBuf,
    file: File,
    /// File offset of `buf[0]`.
    base: u64,
}

/// A reader of one audit directory.
pub struct LogReader {
    dir: PathBuf,
    format: LineFormat,
    /// The next seq to return.
    next: u64,
    /// A hint from the cursor: the segment and offset where `next` starts.
    hint: Option<(u64, u64)>,
    open: Option<Open>,
    /// Bytes read from the open segment, from `open.base`.
    buf: Vec<u8>,
    /// Start of unconsumed bytes in `buf`.
    pos: usize,
}

impl std::fmt::Debug for LogReader {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("LogReader")
            .field("dir", &self.dir)
            .field("next", &self.next)
            .finish_non_exhaustive()
    }
}

impl LogReader {
    /// A reader of the log in `dir` that starts at entry `next` (from 1);
    /// `hint` is the segment and byte offset where that entry is believed to
    /// start, as a cursor remembers it. A wrong hint costs a scan, no more.
    pub fn new(dir: &Path, format: LineFormat, next: u64, hint: Option<(u64, u64)>) -> LogReader {
        LogReader {
            dir: dir.to_owned(),
            format,
            next: next.max(1),
            hint,
            open: None,
            buf: Vec::with_capacity(CHUNK),
            pos: 0,
        }
    }

    /// The next seq this reader will return.
    pub fn next_seq(&self) -> u64 {
        self.next
    }

    /// Moves the reader to entry `next` (after records were refused for a
    /// retry, say), dropping what it had read ahead.
    pub fn seek(&mut self, next: u64, hint: Option<(u64, u64)>) {
        *self = LogReader::new(&self.dir, self.format, next, hint);
    }

    /// The record of an entry (the line without its seal), appended to
    /// `out` as the format wrote it.
    pub fn record_into(&self, entry: &Entry, out: &mut Vec<u8>) {
        let (head, tail) = record_parts(self.format, self.line(entry), entry.seal_at);
        out.extend_from_slice(head);
        out.extend_from_slice(tail);
    }

    /// The line of an entry returned by the last [`read`](Self::read).
    pub fn line(&self, entry: &Entry) -> &[u8] {
        &self.buf[entry.start_in_buf..entry.end_in_buf]
    }

    /// Reads up to `max` entries with seqs from the next one up to `limit`,
    /// into `out` (cleared first). Returns an empty batch when nothing new is
    /// durable yet. The lines stay valid until the next call.
    pub fn read(&mut self, limit: u64, max: usize, out: &mut Vec<Entry>) -> Result<(), ReadError> {
        out.clear();
        if self.next > limit {
            return Ok(());
        }
        if self.open.is_none() {
            self.open_segment()?;
        }
        // Keep the unconsumed tail, drop what the last batch handed out.
        if self.pos > 0 {
            let base = self.open.as_ref().map_or(0, |o| o.base);
            self.buf.drain(..self.pos);
            if let Some(o) = self.open.as_mut() {
                o.base = base + self.pos as u64;
            }
            self.pos = 0;
        }
        let mut scan = 0;
        loop {
            // Hand out whole lines from the buffer.
            while out.len() < max && self.next <= limit {
                let Some(nl) = memchr::memchr(b'\n', &self.buf[scan..]) else {
                    break;
                };
                let (start, end) = (scan, scan + nl);
                scan = end + 1;
                let Some(o) = self.open.as_ref() else { break };
                let line = &self.buf[start..end];
                let (seal_at, seq) = match parse_sealed(self.format, line) {
                    Ok((at, seal)) => (at, seal.seq),
                    Err(_) => {
                        return Err(ReadError::Corrupt {
                            path: o.path.clone(),
                            offset: o.base + start as u64,
                        });
                    }
                };
                if seq < self.next {
                    // Before the wanted entry (a scan from a segment start).
                    self.pos = scan;
                    continue;
                }
                // A seq past the wanted one is a gap the writer's recovery
                // cut; follow the log as it is.
                self.next = seq + 1;
                self.pos = scan;
                out.push(Entry {
                    seq,
                    segment: o.first_seq,
                    end: o.base + scan as u64,
                    seal_at,
                    start_in_buf: start,
                    end_in_buf: end,
                });
            }
            if out.len() >= max || self.next > limit {
                return Ok(());
            }
            // Need more bytes: from this segment, or the next one. While
            // skipping to the wanted entry, drop what was skipped.
            if out.is_empty() && self.pos > 0 {
                self.buf.drain(..self.pos);
                if let Some(o) = self.open.as_mut() {
                    o.base += self.pos as u64;
                }
                scan -= self.pos;
                self.pos = 0;
            }
            if self.fill()? == 0 {
                if self.buf.len() > self.pos || !out.is_empty() || !self.advance_segment()? {
                    // A partial line is being written, or the batch has
                    // something already, or no newer segment: come back later.
                    return Ok(());
                }
                scan = 0;
            }
        }
    }

    /// Appends up to CHUNK bytes of the open segment; returns how many.
    fn fill(&mut self) -> io::Result<usize> {
        let Some(o) = self.open.as_mut() else {
            return Ok(0);
        };
        // Into the spare capacity, which `read_to_end` does not zero first
        // (a caught-up sink polls here, so the cost counts).
        self.buf.reserve(CHUNK);
        (&mut o.file).take(CHUNK as u64).read_to_end(&mut self.buf)
    }

    /// Opens the segment that should hold entry `next`.
    fn open_segment(&mut self) -> Result<(), ReadError> {
        let segments = list_segments(&self.dir)?;
        let Some(&(oldest, _)) = segments.first() else {
            return Ok(());
        };
        if self.next < oldest {
            return Err(ReadError::Behind {
                wanted: self.next,
                oldest,
            });
        }
        let Some((first_seq, path)) = segments.into_iter().rev().find(|(s, _)| *s <= self.next)
        else {
            return Ok(());
        };
        let mut file = File::open(&path)?;
        let mut base = 0;
        if let Some((segment, offset)) = self.hint.take()
            && segment == first_seq
            && offset <= file.metadata()?.len()
        {
            file.seek(SeekFrom::Start(offset))?;
            base = offset;
        }
        self.buf.clear();
        self.pos = 0;
        self.open = Some(Open {
            first_seq,
            path,
            file,
            base,
        });
        // A wrong hint is caught on the first line: its seq is not `next`.
        if base > 0 && !self.hint_holds()? {
            let o = self
                .open
                .as_mut()
                .ok_or_else(|| io::Error::other("no segment"))?;
            o.file.seek(SeekFrom::Start(0))?;
            o.base = 0;
            self.buf.clear();
        }
        Ok(())
    }

    /// Whether the line at the hinted offset is entry `next` (or the file
    /// ends there, as it does when `next` is yet to be written).
    fn hint_holds(&mut self) -> io::Result<bool> {
        self.fill()?;
        let Some(nl) = memchr::memchr(b'\n', &self.buf) else {
            return Ok(self.buf.is_empty());
        };
        Ok(parse_sealed(self.format, &self.buf[..nl]).is_ok_and(|(_, s)| s.seq == self.next))
    }

    /// At the end of the open segment: moves to the segment starting at
    /// `next`, if the writer has started it. Returns whether it moved.
    fn advance_segment(&mut self) -> Result<bool, ReadError> {
        let current = self.open.as_ref().map_or(0, |o| o.first_seq);
        let segments = list_segments(&self.dir)?;
        if !segments
            .iter()
            .any(|(s, _)| *s > current && *s <= self.next)
        {
            // A newer segment that starts past the wanted entry: the ones
            // between were removed (retention) while this one was open.
            if let Some(&(oldest, _)) = segments.iter().find(|(s, _)| *s > current) {
                return Err(ReadError::Behind {
                    wanted: self.next,
                    oldest,
                });
            }
            return Ok(false);
        }
        self.open = None;
        self.open_segment()?;
        Ok(self.open.as_ref().is_some_and(|o| o.first_seq != current))
    }
}
