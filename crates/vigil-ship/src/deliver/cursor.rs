//! A sink's cursor: the last sealed entry its receiver acknowledged, kept in
//! a small file replaced atomically after every acknowledged batch.
//!
//! ```text
//! vigil-cursor v1
//! origin <the log's origin>
//! seq <last delivered seq>
//! segment <first seq of the segment holding it>
//! offset <byte offset just past its line>
//! ```
//!
//! The file is written to a temporary name, synced, renamed over the old
//! one, and the directory synced, so a crash leaves either the old cursor
//! or the new one, never a torn one. A cursor that is behind loses nothing
//! (its entries are delivered again: at-least-once); one that were ahead
//! would, which is why it only moves after an acknowledgement.

use std::fs::{self, File, OpenOptions};
use std::io::{self, Write};
use std::path::{Path, PathBuf};

/// Where a sink stands in the audit log.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Cursor {
    /// The origin of the log the cursor belongs to (empty before the first
    /// delivery).
    pub origin: String,
    /// The last seq the receiver acknowledged; 0 before the first.
    pub seq: u64,
    /// The first seq of the segment holding entry `seq` (0 if unknown).
    pub segment: u64,
    /// The byte offset just past entry `seq`'s line in that segment.
    pub offset: u64,
}

impl Cursor {
    /// Reads the cursor at `path`; a missing file is the start of the log.
    pub fn load(path: &Path) -> io::Result<Cursor> {
        let text = match fs::read_to_string(path) {
            Ok(text) => text,
            Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(Cursor::default()),
            Err(e) => return Err(e),
        };
        Cursor::decode(&text).ok_or_else(|| {
            io::Error::new(
                io::ErrorKind::InvalidData,
                format!(
                    "{} is not a vigil cursor file; remove it to deliver from the start of the log",
                    path.display()
                ),
            )
        })
    }

    fn decode(text: &str) -> Option<Cursor> {
        let mut lines = text.lines();
        if lines.next()? != "vigil-cursor v1" {
            return None;
        }
        let mut field = |name: &str| -> Option<String> {
            let line = lines.next()?;
            line.strip_prefix(name)?
                .strip_prefix(' ')
                .map(str::to_owned)
        };
        let origin = field("origin")?;
        let seq = field("seq")?.parse().ok()?;
        let segment = field("segment")?.parse().ok()?;
        let offset = field("offset")?.parse().ok()?;
        Some(Cursor {
            origin,
            seq,
            segment,
            offset,
        })
    }

    fn encode(&self) -> String {
        format!(
            "vigil-cursor v1\norigin {}\nseq {}\nsegment {}\noffset {}\n",
            self.origin.replace(['\n', '\r'], " "),
            self.seq,
            self.segment,
            self.offset
        )
    }

    /// Replaces the cursor file at `path` atomically and durably; the file
    /// has mode 0600.
    pub fn store(&self, path: &Path) -> io::Result<()> {
        let dir = path.parent().unwrap_or(Path::new("."));
        let tmp: PathBuf = path.with_extension("cursor.tmp");
        let mut options = OpenOptions::new();
        options.write(true).create(true).truncate(true);
        #[cfg(unix)]
        {
            use std::os::unix::fs::OpenOptionsExt;
            options.mode(0o600);
        }
        let mut file = options.open(&tmp)?;
        file.write_all(self.encode().as_bytes())?;
        file.sync_data()?;
        drop(file);
        fs::rename(&tmp, path)?;
        File::open(dir)?.sync_all()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trips_and_replaces() {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("siem.cursor");
        assert_eq!(
            Cursor::load(&path).expect("missing is start"),
            Cursor::default()
        );
        let c = Cursor {
            origin: "db1".into(),
            seq: 42,
            segment: 1,
            offset: 9000,
        };
        c.store(&path).expect("store");
        assert_eq!(Cursor::load(&path).expect("load"), c);
        let d = Cursor { seq: 43, ..c };
        d.store(&path).expect("store again");
        assert_eq!(Cursor::load(&path).expect("load"), d);
        assert!(!path.with_extension("cursor.tmp").exists());
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            let mode = fs::metadata(&path).expect("meta").permissions().mode();
            assert_eq!(mode & 0o777, 0o600);
        }
    }

    #[test]
    fn refuses_a_foreign_file() {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("siem.cursor");
        fs::write(&path, "seq 5\n").expect("write");
        let err = Cursor::load(&path).expect_err("not a cursor");
        assert!(err.to_string().contains("not a vigil cursor file"), "{err}");
    }
}
