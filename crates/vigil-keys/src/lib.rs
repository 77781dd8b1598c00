//! vigil's keystore: the [`KeyStore`] keeps vigil's secret keys (the audit
//! chain key, the checkpoint signing seed, …) encrypted under one
//! [`MasterKey`], in a key directory ([`FileBackend`]) or a Redis key
//! database ([`RedisBackend`]).
//!
//! - The master key comes from the environment variable `VIGIL_MASTER_KEY`
//!   ([`MasterKey::from_env`]): the standard base64 of 32 random bytes. It is
//!   never stored, printed or logged.
//! - Each key is a named, versioned 32-byte [`Secret`], stored as an
//!   84-byte envelope sealed with XChaCha20-Poly1305 whose associated data
//!   binds the key's name and version (see `docs/keys.md`, "File format").
//! - [`KeyStore::rotate`] adds a version and keeps the old ones loadable, so
//!   data sealed under an old key can still be verified.
//! - Every outcome is reported as a `keys.*` event through an optional
//!   [`Emitter`](vigil_event::Emitter); events and errors name keys, versions
//!   and places, never key material.
//!
//! ```
//! use vigil_keys::{AUDIT_HMAC, FileBackend, KeyStore, MasterKey};
//!
//! let dir = std::env::temp_dir().join(format!("vigil-keys-doc-{}", std::process::id()));
//! // In production: MasterKey::from_env(Some(&emitter))?
//! let master = MasterKey::from_base64("AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8=")?;
//! let store = KeyStore::new(FileBackend::new(&dir), master, None);
//!
//! let v1 = store.ensure(AUDIT_HMAC)?;
//! let v2 = store.rotate(AUDIT_HMAC)?;
//! assert_eq!((v1, v2), (1, 2));
//!
//! let (current, key) = store.load_current(AUDIT_HMAC)?;
//! assert_eq!(current, 2);
//! assert_eq!(key.expose().len(), 32);
//! assert_eq!(format!("{key:?}"), "Secret(<redacted>)");
//! assert_eq!(store.list()?.len(), 2);
//! # std::fs::remove_dir_all(&dir).ok();
//! # Ok::<(), vigil_keys::Error>(())
//! ```

#![forbid(unsafe_code)]
#![deny(missing_docs)]

mod backend;
mod envelope;
mod error;
mod file;
mod master;
mod name;
mod redis;
mod secret;
mod store;

pub use backend::Backend;
pub use envelope::{ENVELOPE_LEN, MAGIC};
pub use error::Error;
pub use file::FileBackend;
pub use master::{MASTER_KEY_VAR, MasterKey};
pub use name::{AUDIT_HMAC, CHECKPOINT_SIGNING, FINGERPRINT, POISON, STANDARD_KEYS};
pub use redis::RedisBackend;
pub use secret::{KEY_LEN, Secret};
pub use store::{KeyInfo, KeyStore};
