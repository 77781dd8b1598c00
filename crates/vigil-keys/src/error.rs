//! The keystore's one error type.

use std::path::PathBuf;

use vigil_event::{Kind, catalog};

/// What went wrong in the keystore.
///
/// Each message is one line: what failed, where (a path or a Redis key),
/// and what to do. No message carries key material, the master key or a
/// Redis password.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// The key database could not be reached, refused the connection or the
    /// credentials, or stopped answering.
    #[error(
        "key database {address} is unavailable: {reason}; check that Redis is running there, \
         reachable and that the URL's password and database are right"
    )]
    BackendUnavailable {
        /// The database, as `redis://host:port/db` (never with the password).
        address: String,
        /// Why, e.g. `connection refused`.
        reason: String,
    },
    /// A key file or the key directory may be read or written by group or
    /// others.
    #[error(
        "{} {} has mode {mode:04o}, open to group or others; run `chmod {} {}`",
        if *directory { "key directory" } else { "key file" },
        path.display(),
        if *directory { "700" } else { "600" },
        path.display()
    )]
    BadPermissions {
        /// The file or directory.
        path: PathBuf,
        /// Its permission bits.
        mode: u32,
        /// True for the key directory, false for a key file.
        directory: bool,
    },
    /// A stored key failed to decrypt: the master key is not the one it was
    /// made with, or the stored bytes were altered, truncated, renamed or
    /// swapped with another key's.
    #[error(
        "cannot decrypt key {name} v{version} at {location}: {reason}; check that the master key \
         is the one the keys were made with, or restore the key from a backup"
    )]
    DecryptFailed {
        /// The key name.
        name: String,
        /// The key version.
        version: u32,
        /// Where it is stored: a path or a Redis key.
        location: String,
        /// What did not hold.
        reason: &'static str,
    },
    /// A key that was to be created already exists.
    #[error(
        "key {name} v{version} already exists at {location}; run `vigil keys rotate --key {name}` \
         to add a new version"
    )]
    Exists {
        /// The key name.
        name: String,
        /// The version that exists.
        version: u32,
        /// Where it is stored.
        location: String,
    },
    /// A key name is not 1 to 64 of `a-z`, `0-9` and `-`.
    #[error(
        "invalid key name \"{name}\": use 1 to 64 characters a-z, 0-9 and '-', not starting \
         with '-'"
    )]
    InvalidName {
        /// The name, escaped.
        name: String,
    },
    /// A key database URL is malformed.
    #[error(
        "invalid key database URL: {reason}; expected redis://[[user]:password@]host[:port][/db]"
    )]
    InvalidUrl {
        /// What is wrong with it; never the password.
        reason: String,
    },
    /// A key or the list of keys could not be read: an I/O error, something
    /// that is not a key file, an error reply from Redis.
    #[error("cannot read {location}: {reason}; check that it is a vigil key store vigil may read")]
    LoadFailed {
        /// What could not be read: a path or a Redis key.
        location: String,
        /// Why.
        reason: String,
    },
    /// The master key is not the standard base64 of 32 bytes.
    #[error(
        "invalid master key{}: it {reason}; set it to the standard base64 of 32 random bytes, \
         e.g. from `head -c 32 /dev/urandom | base64`",
        in_variable(variable)
    )]
    MasterInvalid {
        /// The environment variable it came from, if any.
        variable: Option<String>,
        /// What is wrong, without any of the value.
        reason: String,
    },
    /// No master key was given.
    #[error(
        "no master key: environment variable {variable} is not set or empty; set it to the \
         standard base64 of 32 random bytes, e.g. from `head -c 32 /dev/urandom | base64`"
    )]
    MasterMissing {
        /// The environment variable that was read.
        variable: String,
    },
    /// A key, or a version of it, does not exist.
    #[error(
        "key {name}{} not found at {location}; run `vigil keys generate` to create the keys, \
         or check the key directory or database",
        version.map(|v| format!(" v{v}")).unwrap_or_default()
    )]
    NotFound {
        /// The key name.
        name: String,
        /// The version asked for; `None` when any version would do.
        version: Option<u32>,
        /// Where it was looked for.
        location: String,
    },
    /// The operating system's random number generator failed.
    #[error(
        "cannot get random bytes from the operating system: {reason}; check that /dev/urandom \
         or getrandom(2) is available"
    )]
    RandomUnavailable {
        /// The system's error.
        reason: String,
    },
    /// A new key could not be written.
    #[error("cannot write {location}: {reason}; check free space and that vigil may write there")]
    StoreFailed {
        /// What could not be written: a path or a Redis key.
        location: String,
        /// Why.
        reason: String,
    },
}

impl Error {
    /// The catalog event that reports this error when a key is read or
    /// written, if any.
    pub(crate) fn load_event(&self) -> Option<Kind> {
        Some(match self {
            Error::BackendUnavailable { .. } => catalog::KEYS_BACKEND_UNAVAILABLE,
            Error::BadPermissions { .. } => catalog::KEYS_BAD_PERMISSIONS,
            Error::DecryptFailed { .. } => catalog::KEYS_DECRYPT_FAILED,
            Error::LoadFailed { .. } => catalog::KEYS_LOAD_FAILED,
            Error::MasterInvalid { .. } => catalog::KEYS_MASTER_INVALID,
            Error::MasterMissing { .. } => catalog::KEYS_MASTER_MISSING,
            Error::NotFound { .. } => catalog::KEYS_NOT_FOUND,
            Error::StoreFailed { .. } => catalog::KEYS_STORE_FAILED,
            Error::Exists { .. }
            | Error::InvalidName { .. }
            | Error::InvalidUrl { .. }
            | Error::RandomUnavailable { .. } => return None,
        })
    }

    /// Where it happened, for the event's `location` field.
    pub(crate) fn location(&self) -> Option<String> {
        match self {
            Error::BackendUnavailable { address, .. } => Some(address.clone()),
            Error::BadPermissions { path, .. } => Some(path.display().to_string()),
            Error::DecryptFailed { location, .. }
            | Error::Exists { location, .. }
            | Error::LoadFailed { location, .. }
            | Error::NotFound { location, .. }
            | Error::StoreFailed { location, .. } => Some(location.clone()),
            Error::InvalidName { .. }
            | Error::InvalidUrl { .. }
            | Error::MasterInvalid { .. }
            | Error::MasterMissing { .. }
            | Error::RandomUnavailable { .. } => None,
        }
    }

    /// A short reason for the event's `reason` field.
    pub(crate) fn reason(&self) -> String {
        match self {
            Error::BackendUnavailable { reason, .. }
            | Error::LoadFailed { reason, .. }
            | Error::MasterInvalid { reason, .. }
            | Error::RandomUnavailable { reason }
            | Error::StoreFailed { reason, .. }
            | Error::InvalidUrl { reason } => reason.clone(),
            Error::BadPermissions { mode, .. } => format!("mode {mode:04o}"),
            Error::DecryptFailed { reason, .. } => (*reason).to_owned(),
            Error::Exists { .. } => "exists".into(),
            Error::InvalidName { .. } => "invalid name".into(),
            Error::MasterMissing { .. } => "not set".into(),
            Error::NotFound { .. } => "not found".into(),
        }
    }
}

fn in_variable(variable: &Option<String>) -> String {
    match variable {
        Some(v) => format!(" in environment variable {v}"),
        None => String::new(),
    }
}
