//! The keystore: generate, rotate, load and list keys, and report each
//! outcome as an event.

use vigil_event::{Emitter, Event, Kind, Timestamp, catalog};

use crate::backend::Backend;
use crate::envelope;
use crate::error::Error;
use crate::master::MasterKey;
use crate::name;
use crate::secret::Secret;

/// What [`KeyStore::list`] tells about one key version: no key material.
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub struct KeyInfo {
    /// The key name, e.g. `audit-hmac`.
    pub name: String,
    /// The version, from 1.
    pub version: u32,
    /// When the version was generated, as written in its envelope. It is
    /// authenticated when the key is loaded, not by listing.
    pub created: Timestamp,
    /// The backend's kind: `file` or `redis`.
    pub backend: &'static str,
}

/// Named, versioned keys, encrypted under a [`MasterKey`] in a [`Backend`].
///
/// Versions count from 1; the highest is the current one, and older ones
/// stay loadable. Every load, generation and rotation is reported through the
/// emitter, if one is given: `keys.loaded`, `keys.generated`,
/// `keys.rotated`, or the failure's event (`keys.not_found`,
/// `keys.decrypt_failed`, `keys.bad_permissions`, `keys.load_failed`,
/// `keys.backend_unavailable`). Events carry the fields `key` (the name),
/// `version`, `backend`, `location` and, on failure, `reason`; never key
/// material.
#[derive(Debug)]
pub struct KeyStore {
    backend: Box<dyn Backend>,
    master: MasterKey,
    emitter: Option<Emitter>,
}

impl KeyStore {
    /// A keystore over `backend`, its keys encrypted under `master_key`,
    /// reporting to `emitter`.
    pub fn new(
        backend: impl Backend + 'static,
        master_key: MasterKey,
        emitter: Option<Emitter>,
    ) -> KeyStore {
        KeyStore {
            backend: Box::new(backend),
            master: master_key,
            emitter,
        }
    }

    /// The backend.
    pub fn backend(&self) -> &dyn Backend {
        &*self.backend
    }

    /// Creates version 1 of key `name` from fresh random bytes and returns
    /// 1. Fails with [`Error::Exists`] if any version of it exists.
    pub fn generate(&self, name: &str) -> Result<u32, Error> {
        name::check(name)?;
        if let Some(version) = self.current_version(name)? {
            return Err(Error::Exists {
                name: name.to_owned(),
                version,
                location: self.backend.location(name, version),
            });
        }
        self.create(name, 1)?;
        self.emit(
            self.event(
                catalog::KEYS_GENERATED,
                format!("key {name} v1 generated"),
                name,
                Some(1),
            )
            .field("location", self.backend.location(name, 1)),
        );
        Ok(1)
    }

    /// The current version of key `name`, generating version 1 if it has
    /// none. Does not load the key.
    pub fn ensure(&self, name: &str) -> Result<u32, Error> {
        name::check(name)?;
        match self.current_version(name)? {
            Some(version) => Ok(version),
            None => match self.generate(name) {
                // Another process generated it in the meantime.
                Err(Error::Exists { version, .. }) => Ok(version),
                other => other,
            },
        }
    }

    /// Adds a new version of key `name` and returns its number; the old
    /// versions stay loadable. Reports `keys.rotated` with both versions.
    ///
    /// The current version is decrypted first, so that a wrong master key
    /// fails here instead of starting versions no one else can read.
    pub fn rotate(&self, name: &str) -> Result<u32, Error> {
        name::check(name)?;
        let old = self.current_version(name)?.ok_or_else(|| {
            self.report(
                Error::NotFound {
                    name: name.to_owned(),
                    version: None,
                    location: self.backend.describe(),
                },
                name,
                None,
            )
        })?;
        drop(
            self.open(name, old)
                .map_err(|e| self.report(e, name, Some(old)))?,
        );
        let new = old.checked_add(1).ok_or_else(|| Error::StoreFailed {
            location: self.backend.location(name, old),
            reason: "it is the last possible version".into(),
        })?;
        self.create(name, new)?;
        self.emit(
            self.event(
                catalog::KEYS_ROTATED,
                format!("key {name} rotated from v{old} to v{new}"),
                name,
                None,
            )
            .field("old_version", old)
            .field("new_version", new)
            .field("location", self.backend.location(name, new)),
        );
        Ok(new)
    }

    /// Loads version `version` of key `name`.
    pub fn load(&self, name: &str, version: u32) -> Result<Secret, Error> {
        name::check(name)?;
        let secret = self
            .open(name, version)
            .map_err(|e| self.report(e, name, Some(version)))?;
        self.emit(
            self.event(
                catalog::KEYS_LOADED,
                format!(
                    "key {name} v{version} loaded from {}",
                    self.backend.location(name, version)
                ),
                name,
                Some(version),
            )
            .field("location", self.backend.location(name, version)),
        );
        Ok(secret)
    }

    /// Loads the current (highest) version of key `name`.
    pub fn load_current(&self, name: &str) -> Result<(u32, Secret), Error> {
        name::check(name)?;
        let Some(version) = self.current_version(name)? else {
            return Err(self.report(
                Error::NotFound {
                    name: name.to_owned(),
                    version: None,
                    location: self.backend.describe(),
                },
                name,
                None,
            ));
        };
        Ok((version, self.load(name, version)?))
    }

    /// The current version of key `name`, `None` if it has none.
    pub fn current_version(&self, name: &str) -> Result<Option<u32>, Error> {
        name::check(name)?;
        let versions = self
            .backend
            .versions(name)
            .map_err(|e| self.report(e, name, None))?;
        Ok(versions.into_iter().max())
    }

    /// Every key version stored, by name then version. Reads each
    /// envelope's header for its creation time; decrypts nothing.
    pub fn list(&self) -> Result<Vec<KeyInfo>, Error> {
        let mut keys = self.backend.list().map_err(|e| self.report_store(e))?;
        keys.sort();
        let mut infos = Vec::with_capacity(keys.len());
        for (name, version) in keys {
            let read = self
                .backend
                .read(&name, version)
                .map_err(|e| self.report(e, &name, Some(version)))?;
            // Removed since it was listed.
            let Some(bytes) = read else { continue };
            let created = envelope::created(&bytes).map_err(|reason| {
                self.report(
                    self.decrypt_failed(&name, version, reason),
                    &name,
                    Some(version),
                )
            })?;
            infos.push(KeyInfo {
                name,
                version,
                created,
                backend: self.backend.kind(),
            });
        }
        Ok(infos)
    }

    /// Reads and decrypts a key; reports nothing.
    fn open(&self, name: &str, version: u32) -> Result<Secret, Error> {
        let bytes = self
            .backend
            .read(name, version)?
            .ok_or_else(|| Error::NotFound {
                name: name.to_owned(),
                version: Some(version),
                location: self.backend.location(name, version),
            })?;
        envelope::open(&self.master, name, version, &bytes)
            .map_err(|reason| self.decrypt_failed(name, version, reason))
    }

    fn decrypt_failed(&self, name: &str, version: u32, reason: &'static str) -> Error {
        Error::DecryptFailed {
            name: name.to_owned(),
            version,
            location: self.backend.location(name, version),
            reason,
        }
    }

    /// Generates, seals and stores version `version` of key `name`.
    fn create(&self, name: &str, version: u32) -> Result<(), Error> {
        let secret = Secret::random()?;
        let sealed = envelope::seal(&self.master, name, version, Timestamp::now(), &secret)?;
        drop(secret);
        self.backend
            .create(name, version, &sealed)
            .map_err(|e| self.report(e, name, Some(version)))
    }

    /// Reports `err` about key `name` as its event, if it has one.
    fn report(&self, err: Error, name: &str, version: Option<u32>) -> Error {
        if let Some(kind) = err.load_event() {
            let ev = self.event(kind, err.to_string(), name, version);
            self.emit(with_details(ev, &err));
        }
        err
    }

    /// Reports `err` about the whole store as its event, if it has one.
    fn report_store(&self, err: Error) -> Error {
        if let Some(kind) = err.load_event() {
            let ev = Event::new(kind, err.to_string()).field("backend", self.backend.kind());
            self.emit(with_details(ev, &err));
        }
        err
    }

    /// A key event about `name`, with its version when given.
    fn event(&self, kind: Kind, message: String, name: &str, version: Option<u32>) -> Event {
        let mut ev = Event::new(kind, message).field("key", name.to_owned());
        if let Some(v) = version {
            ev = ev.field("version", v);
        }
        ev.field("backend", self.backend.kind())
    }

    fn emit(&self, event: Event) {
        if let Some(emitter) = &self.emitter {
            emitter.emit(event);
        }
    }
}

/// Adds the failure's location and reason to its event.
fn with_details(mut ev: Event, err: &Error) -> Event {
    if let Some(location) = err.location() {
        ev = ev.field("location", location);
    }
    ev.field("reason", err.reason())
}
