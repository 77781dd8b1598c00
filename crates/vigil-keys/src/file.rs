//! The key directory: one file per key version.

use std::fs::{self, DirBuilder, File, OpenOptions};
use std::io::{self, Read, Write};
use std::os::unix::fs::{DirBuilderExt, MetadataExt, OpenOptionsExt, PermissionsExt};
use std::path::{Path, PathBuf};

use crate::backend::Backend;
use crate::envelope::{ENVELOPE_LEN, fill_random};
use crate::error::Error;
use crate::name;

/// Permission bits that must be clear on key files and the key directory.
const GROUP_OTHER: u32 = 0o077;
/// Files larger than this are not key files; they are not read further.
const MAX_FILE_LEN: u64 = 4096;

/// Keys in a directory: `<name>.<version>.key`, one file per version.
///
/// The directory is created with mode 0700 when the first key is written.
/// Key files are written with mode 0600, atomically: a temporary file is
/// written and fsynced, linked to its final name (which fails if that
/// exists, so a version is never overwritten), and the directory fsynced.
/// Reads refuse a key file or directory that group or others may read or
/// write ([`Error::BadPermissions`]), checked on the opened file.
#[derive(Clone, Debug)]
pub struct FileBackend {
    dir: PathBuf,
}

impl FileBackend {
    /// A key directory at `dir`; nothing is touched until a key is read or
    /// written.
    pub fn new(dir: impl Into<PathBuf>) -> FileBackend {
        FileBackend { dir: dir.into() }
    }

    /// The key directory.
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// The file of version `version` of key `name`.
    pub fn path(&self, name: &str, version: u32) -> PathBuf {
        self.dir.join(format!("{name}.{version}.key"))
    }

    /// Checks the directory's mode; `Ok(false)` when it does not exist.
    fn check_dir(&self) -> Result<bool, Error> {
        let meta = match fs::metadata(&self.dir) {
            Ok(meta) => meta,
            Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(false),
            Err(e) => return Err(self.load_failed(&self.dir, &e)),
        };
        if !meta.is_dir() {
            return Err(Error::LoadFailed {
                location: self.dir.display().to_string(),
                reason: "it is not a directory".into(),
            });
        }
        check_mode(&self.dir, meta.mode(), true)?;
        Ok(true)
    }

    fn load_failed(&self, path: &Path, e: &io::Error) -> Error {
        Error::LoadFailed {
            location: path.display().to_string(),
            reason: e.to_string(),
        }
    }

    /// Creates the directory with mode 0700 unless it exists, then checks it.
    fn ensure_dir(&self) -> Result<(), Error> {
        if !self.check_dir()? {
            DirBuilder::new()
                .recursive(true)
                .mode(0o700)
                .create(&self.dir)
                .map_err(|e| Error::StoreFailed {
                    location: self.dir.display().to_string(),
                    reason: e.to_string(),
                })?;
            self.check_dir()?;
        }
        Ok(())
    }
}

/// Refuses `mode` when group or others have any access.
fn check_mode(path: &Path, mode: u32, directory: bool) -> Result<(), Error> {
    if mode & GROUP_OTHER != 0 {
        return Err(Error::BadPermissions {
            path: path.to_owned(),
            mode: mode & 0o7777,
            directory,
        });
    }
    Ok(())
}

impl Backend for FileBackend {
    fn kind(&self) -> &'static str {
        "file"
    }

    fn describe(&self) -> String {
        format!("key directory {}", self.dir.display())
    }

    fn location(&self, name: &str, version: u32) -> String {
        self.path(name, version).display().to_string()
    }

    fn read(&self, name: &str, version: u32) -> Result<Option<Vec<u8>>, Error> {
        if !self.check_dir()? {
            return Ok(None);
        }
        let path = self.path(name, version);
        let file = match File::open(&path) {
            Ok(file) => file,
            Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(None),
            Err(e) => return Err(self.load_failed(&path, &e)),
        };
        // Check what was opened, not what the path names a moment later.
        let meta = file.metadata().map_err(|e| self.load_failed(&path, &e))?;
        if !meta.is_file() {
            return Err(Error::LoadFailed {
                location: path.display().to_string(),
                reason: "it is not a regular file".into(),
            });
        }
        check_mode(&path, meta.mode(), false)?;
        let mut bytes = Vec::with_capacity(ENVELOPE_LEN);
        file.take(MAX_FILE_LEN + 1)
            .read_to_end(&mut bytes)
            .map_err(|e| self.load_failed(&path, &e))?;
        Ok(Some(bytes))
    }

    fn create(&self, name: &str, version: u32, envelope: &[u8]) -> Result<(), Error> {
        self.ensure_dir()?;
        let path = self.path(name, version);
        let store_failed = |p: &Path, e: io::Error| Error::StoreFailed {
            location: p.display().to_string(),
            reason: e.to_string(),
        };
        let mut tag = [0u8; 6];
        fill_random(&mut tag)?;
        let tmp = self.dir.join(format!(
            ".{name}.{version}.key.tmp-{}-{}",
            std::process::id(),
            tag.iter().map(|b| format!("{b:02x}")).collect::<String>()
        ));
        let written = (|| {
            let mut file = OpenOptions::new()
                .write(true)
                .create_new(true)
                .mode(0o600)
                .open(&tmp)?;
            // The umask can only clear bits; make the mode exact anyway.
            file.set_permissions(fs::Permissions::from_mode(0o600))?;
            file.write_all(envelope)?;
            file.sync_all()
        })();
        if let Err(e) = written {
            let _ = fs::remove_file(&tmp);
            return Err(store_failed(&tmp, e));
        }
        // A hard link, unlike rename, never replaces an existing file.
        let linked = fs::hard_link(&tmp, &path);
        let _ = fs::remove_file(&tmp);
        match linked {
            Ok(()) => {}
            Err(e) if e.kind() == io::ErrorKind::AlreadyExists => {
                return Err(Error::Exists {
                    name: name.to_owned(),
                    version,
                    location: path.display().to_string(),
                });
            }
            Err(e) => return Err(store_failed(&path, e)),
        }
        File::open(&self.dir)
            .and_then(|d| d.sync_all())
            .map_err(|e| store_failed(&self.dir, e))
    }

    fn list(&self) -> Result<Vec<(String, u32)>, Error> {
        if !self.check_dir()? {
            return Ok(Vec::new());
        }
        let mut keys = Vec::new();
        let entries = fs::read_dir(&self.dir).map_err(|e| self.load_failed(&self.dir, &e))?;
        for entry in entries {
            let entry = entry.map_err(|e| self.load_failed(&self.dir, &e))?;
            if let Some(key) = entry.file_name().to_str().and_then(parse_file_name) {
                keys.push(key);
            }
        }
        Ok(keys)
    }
}

/// `audit-hmac.2.key` → `("audit-hmac", 2)`; anything else → `None`.
fn parse_file_name(file: &str) -> Option<(String, u32)> {
    let stem = file.strip_suffix(".key")?;
    let (name, version) = stem.rsplit_once('.')?;
    name::check(name).ok()?;
    Some((name.to_owned(), name::parse_version(version)?))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_only_key_file_names() {
        assert_eq!(
            parse_file_name("audit-hmac.2.key"),
            Some(("audit-hmac".into(), 2))
        );
        for other in [
            ".audit-hmac.2.key.tmp-1-00",
            "audit-hmac.key",
            "audit-hmac.02.key",
            "Audit.1.key",
            "a.b.1.key",
            "x.1.key.bak",
        ] {
            assert_eq!(parse_file_name(other), None, "{other}");
        }
    }
}
