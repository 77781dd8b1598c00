//! A file receiver: one record per line, synced before the batch counts as
//! delivered, rotated by size, reopened on SIGHUP for logrotate.
//!
//! The file is created with mode 0600; an existing file that group or others
//! may read is refused. With `max_bytes`, a file that reached it is renamed
//! to `<path>.1` (older ones shift to `.2`, … up to `keep`) and a new one is
//! started. Without it, an external logrotate moves the file away and
//! SIGHUP makes vigil reopen the path.

use std::fs::{self, File};
use std::io::Write;
use std::path::{Path, PathBuf};

use super::{Record, SendError, Sent, Transport};

/// Where a file sink writes and how it rotates.
#[derive(Clone, Debug)]
pub struct FileConfig {
    /// The file.
    pub path: PathBuf,
    /// Rotate once the file holds this many bytes (none: never).
    pub max_bytes: Option<u64>,
    /// How many rotated files to keep (default 5).
    pub keep: usize,
}

impl FileConfig {
    /// A file that is never rotated by vigil.
    pub fn new(path: impl Into<PathBuf>) -> FileConfig {
        FileConfig {
            path: path.into(),
            max_bytes: None,
            keep: 5,
        }
    }
}

/// Writes records to a file.
#[derive(Debug)]
pub struct FileTransport {
    config: FileConfig,
    file: Option<(File, u64)>,
    buf: Vec<u8>,
}

impl FileTransport {
    /// A transport for `config`; the file is opened at the first batch.
    pub fn new(config: FileConfig) -> FileTransport {
        FileTransport {
            config,
            file: None,
            buf: Vec::new(),
        }
    }

    fn open(&mut self) -> Result<&mut (File, u64), SendError> {
        if self.file.is_none() {
            let file = crate::sink::open_file("file", &self.config.path).map_err(|e| {
                // A refused mode will not fix itself; an I/O error may.
                match e {
                    crate::Error::FileMode { .. } => SendError::Park(e.to_string()),
                    _ => SendError::Retry(e.to_string()),
                }
            })?;
            let len = file.metadata().map(|m| m.len()).unwrap_or(0);
            self.file = Some((file, len));
        }
        self.file
            .as_mut()
            .ok_or_else(|| SendError::Retry("file not open".into()))
    }

    fn rotate(&mut self) {
        self.file = None;
        let path = &self.config.path;
        let keep = self.config.keep.max(1);
        let numbered = |n: usize| -> PathBuf {
            let mut p = path.as_os_str().to_owned();
            p.push(format!(".{n}"));
            PathBuf::from(p)
        };
        let _ = fs::remove_file(numbered(keep));
        for n in (1..keep).rev() {
            let _ = fs::rename(numbered(n), numbered(n + 1));
        }
        let _ = fs::rename(path, numbered(1));
        sync_parent(path);
    }
}

fn sync_parent(path: &Path) {
    if let Some(dir) = path.parent()
        && let Ok(d) = File::open(if dir.as_os_str().is_empty() {
            Path::new(".")
        } else {
            dir
        })
    {
        let _ = d.sync_all();
    }
}

impl Transport for FileTransport {
    fn send(&mut self, batch: &[Record<'_>]) -> Result<Sent, SendError> {
        self.buf.clear();
        for r in batch {
            self.buf.extend_from_slice(r.formatted);
            self.buf.push(b'\n');
        }
        let path = self.config.path.display().to_string();
        let mut buf = std::mem::take(&mut self.buf);
        let result = (|| {
            let (file, len) = self.open()?;
            file.write_all(&buf)
                .and_then(|()| file.sync_data())
                .map_err(|e| SendError::Retry(format!("writing {path}: {e}")))?;
            *len += buf.len() as u64;
            Ok(*len)
        })();
        buf.clear();
        self.buf = buf;
        match result {
            Ok(len) => {
                if self.config.max_bytes.is_some_and(|max| len >= max) {
                    self.rotate();
                }
                Ok(Sent::all())
            }
            Err(e) => {
                // Reopen at the next attempt: the file may have been moved.
                self.file = None;
                Err(e)
            }
        }
    }

    fn reopen(&mut self) {
        self.file = None;
    }

    fn close(&mut self) {
        self.file = None;
    }
}
