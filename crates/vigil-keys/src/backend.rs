//! Where encrypted keys are kept.

use std::fmt;

use crate::error::Error;

/// A store of key envelopes: a key directory ([`FileBackend`](crate::FileBackend))
/// or a key database ([`RedisBackend`](crate::RedisBackend)).
///
/// A backend keeps opaque, already encrypted envelopes under a key name and
/// version; it never sees a key in clear nor the master key. Calls are
/// blocking: keys are read at start and at rotation, never on the data path.
/// Names reaching a backend have been checked: 1 to 64 of `a-z`, `0-9`, `-`.
pub trait Backend: fmt::Debug + Send + Sync {
    /// The backend's kind, the `backend` field of key events: `file` or
    /// `redis`.
    fn kind(&self) -> &'static str;

    /// The whole store, for messages: `key directory /etc/vigil/keys`.
    fn describe(&self) -> String;

    /// Where version `version` of key `name` is kept, for messages: a path
    /// or a Redis key.
    fn location(&self, name: &str, version: u32) -> String;

    /// Reads the envelope of version `version` of key `name`; `Ok(None)`
    /// when it does not exist.
    fn read(&self, name: &str, version: u32) -> Result<Option<Vec<u8>>, Error>;

    /// Stores the envelope of a new version. Never replaces: fails with
    /// [`Error::Exists`] when that version is already there, even when
    /// another process wrote it a moment ago.
    fn create(&self, name: &str, version: u32, envelope: &[u8]) -> Result<(), Error>;

    /// Every key name and version stored, in any order.
    fn list(&self) -> Result<Vec<(String, u32)>, Error>;

    /// Every version of key `name`, in any order.
    fn versions(&self, name: &str) -> Result<Vec<u32>, Error> {
        Ok(self
            .list()?
            .into_iter()
            .filter(|(n, _)| n == name)
            .map(|(_, v)| v)
            .collect())
    }
}
