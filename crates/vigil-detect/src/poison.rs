//! Poison records (honeytokens): values that look like real data but carry
//! a keyed tag, the registry that lists them, and the scanner that finds
//! them in result rows, COPY data and statements.
//!
//! # Values
//!
//! A [`PoisonKey`] (the keystore's `poison` key) turns random bytes into a
//! value of a [`PoisonKind`]. Each value has a random *body* and a *tag*,
//! HMAC-SHA256 of the body under the key, folded into the value so that the
//! value still looks like its kind:
//!
//! | kind | example | body | tag |
//! |---|---|---|---|
//! | `email` | `sofia.parker271650@silverpost.com` | first and last name, 2 digits | 4 digits and the domain |
//! | `uuid` | `3f0c9a1e-52b7-4c1d-a0e4-7b9d2c6f8e31` | the first 8 bytes (version 4) | the last 8 bytes (variant bits set) |
//! | `text` | `Amber harbor quiet lantern 058213` | four words | the 6-digit number |
//! | `int` | `6120949170339112467` | 30 bits | the low 32 bits |
//! | `bytea` | `\x5e0f…` (24 bytes) | 16 bytes | 8 bytes |
//!
//! Without the key the tag cannot be told from random digits or bytes, so
//! a poison value looks like any other; with it, [`PoisonKey::check`] tells
//! a value made by vigil from any other.
//!
//! # Registry
//!
//! A [`PoisonSet`] is the registry: a JSON file, mode 0600, listing every
//! value with its id and the key version that made it.
//! [`PoisonSet::verify`] checks every tag, so a value slipped into the
//! registry by hand (to make vigil fire on real data) is refused.
//!
//! # Scanning
//!
//! A [`Scanner`] looks for every registered value in every form the wire
//! protocol carries it: the text form (text results, COPY text and CSV,
//! SQL), and the binary forms (an `int` as 8 and, when it fits, 4 big-endian
//! bytes; a `uuid` as its 16 bytes and in upper case; a `bytea` as its raw
//! bytes and its hex digits, which the `\x` and COPY's `\\x` forms contain).
//! A hit names the entry's id, never its value. A [`StreamScanner`] scans a
//! stream that arrives in chunks, finding values split between chunks.

use std::collections::BTreeSet;
use std::fmt;
use std::fs;
use std::io::{self, Write as _};
use std::path::{Path, PathBuf};

use aho_corasick::{AhoCorasick, AhoCorasickKind};
use ring::hmac;
use serde::{Deserialize, Serialize};

/// The kind of data a poison value imitates.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum PoisonKind {
    /// Free text: four words and a number.
    Text,
    /// An e-mail address.
    Email,
    /// A version 4 UUID.
    Uuid,
    /// A large positive 64-bit integer (`bigint`).
    Int,
    /// 24 bytes (`bytea`).
    Bytea,
}

impl PoisonKind {
    /// Every kind.
    pub const ALL: [PoisonKind; 5] = [
        PoisonKind::Text,
        PoisonKind::Email,
        PoisonKind::Uuid,
        PoisonKind::Int,
        PoisonKind::Bytea,
    ];

    /// The kind's name: `text`, `email`, `uuid`, `int` or `bytea`.
    pub const fn as_str(self) -> &'static str {
        match self {
            PoisonKind::Text => "text",
            PoisonKind::Email => "email",
            PoisonKind::Uuid => "uuid",
            PoisonKind::Int => "int",
            PoisonKind::Bytea => "bytea",
        }
    }

    /// The kind named `name`.
    pub fn from_name(name: &str) -> Option<PoisonKind> {
        PoisonKind::ALL.into_iter().find(|k| k.as_str() == name)
    }
}

impl fmt::Display for PoisonKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// What the proxy does when a poison value shows, after sealing the
/// `poison.accessed` or `poison.queried` event, which it always does.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Reaction {
    /// Withhold the message that carries the value, send the client an
    /// error and close the session.
    Block,
    /// Run a script with the event as JSON on its standard input.
    Script,
    /// Shut the service down.
    Shutdown,
}

impl Reaction {
    /// Every reaction.
    pub const ALL: [Reaction; 3] = [Reaction::Block, Reaction::Script, Reaction::Shutdown];

    /// The reaction's name: `block`, `script` or `shutdown`.
    pub const fn as_str(self) -> &'static str {
        match self {
            Reaction::Block => "block",
            Reaction::Script => "script",
            Reaction::Shutdown => "shutdown",
        }
    }

    /// The reaction named `name`.
    pub fn from_name(name: &str) -> Option<Reaction> {
        Reaction::ALL.into_iter().find(|r| r.as_str() == name)
    }
}

/// Why a poison operation failed. Messages name files, ids and key
/// versions, never a poison value or key material.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum PoisonError {
    /// The registry could not be read or written.
    #[error("{}: {source}", path.display())]
    Io {
        /// The registry file.
        path: PathBuf,
        /// What the system said.
        source: io::Error,
    },
    /// The registry is not a registry.
    #[error("{}: not a poison registry: {message}", path.display())]
    Format {
        /// The registry file.
        path: PathBuf,
        /// What is wrong.
        message: String,
    },
    /// The registry file is open to other users.
    #[error(
        "{}: mode {mode:04o} lets other users read the poison values; run `chmod 600 {}`",
        path.display(),
        path.display()
    )]
    Permissions {
        /// The registry file.
        path: PathBuf,
        /// Its permission bits.
        mode: u32,
    },
    /// Entries whose tag does not verify: changed, or not made by vigil
    /// with this poison key.
    #[error(
        "poison entries {} do not verify under the poison key: the registry was changed, or \
         they were made with another key",
        join_ids(ids)
    )]
    Tampered {
        /// Their ids.
        ids: Vec<u32>,
    },
    /// Two entries share an id or a value.
    #[error("poison entry {id} appears twice in the registry (same id or same value)")]
    Duplicate {
        /// The id of the second one.
        id: u32,
    },
    /// Entries were made with a poison key version that was not given.
    #[error("poison key version {version} is needed to verify the registry but was not loaded")]
    MissingKey {
        /// The version.
        version: u32,
    },
    /// The operating system's random number generator failed.
    #[error("cannot read random bytes: {0}")]
    Random(String),
    /// No new unique value could be made.
    #[error("cannot make a new {0} value that differs from every registered one")]
    Exhausted(PoisonKind),
}

fn join_ids(ids: &[u32]) -> String {
    ids.iter()
        .map(u32::to_string)
        .collect::<Vec<_>>()
        .join(", ")
}

/// The key that makes and checks poison values, with its keystore version.
pub struct PoisonKey {
    version: u32,
    key: hmac::Key,
}

impl fmt::Debug for PoisonKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("PoisonKey")
            .field("version", &self.version)
            .finish_non_exhaustive()
    }
}

/// Bytes that make one value: the body comes from them.
const SEED_LEN: usize = 16;

/// Domain separation for the tag's HMAC.
const TAG_CONTEXT: &[u8] = b"vigil-poison-v1\0";

impl PoisonKey {
    /// The key `secret` (the keystore's `poison` key), version `version`.
    pub fn new(version: u32, secret: &[u8]) -> PoisonKey {
        PoisonKey {
            version,
            key: hmac::Key::new(hmac::HMAC_SHA256, secret),
        }
    }

    /// The keystore version of the key.
    pub fn version(&self) -> u32 {
        self.version
    }

    /// A new random value of `kind`.
    pub fn make(&self, kind: PoisonKind) -> Result<String, PoisonError> {
        let mut seed = [0u8; SEED_LEN];
        getrandom::fill(&mut seed).map_err(|e| PoisonError::Random(e.to_string()))?;
        Ok(self.make_from(kind, &seed))
    }

    /// The value of `kind` that `seed` (random bytes) makes.
    pub fn make_from(&self, kind: PoisonKind, seed: &[u8; SEED_LEN]) -> String {
        self.render(&Body::from_seed(kind, seed))
    }

    /// Whether `value` is a value of `kind` made with this key.
    pub fn check(&self, kind: PoisonKind, value: &str) -> bool {
        Body::parse(kind, value).is_some_and(|body| self.render(&body) == value)
    }

    fn tag(&self, kind: PoisonKind, body: &[u8]) -> [u8; 32] {
        let mut ctx = hmac::Context::with_key(&self.key);
        ctx.update(TAG_CONTEXT);
        ctx.update(kind.as_str().as_bytes());
        ctx.update(b"\0");
        ctx.update(body);
        let mut out = [0u8; 32];
        out.copy_from_slice(ctx.sign().as_ref());
        out
    }

    fn render(&self, body: &Body) -> String {
        match *body {
            Body::Text(words) => {
                let t = self.tag(PoisonKind::Text, &words);
                let n = u32::from_be_bytes([t[0], t[1], t[2], t[3]]) % 1_000_000;
                let mut s = String::with_capacity(48);
                for (i, w) in words.iter().enumerate() {
                    let word = WORDS[usize::from(*w)];
                    if i == 0 {
                        let mut c = word.chars();
                        if let Some(first) = c.next() {
                            s.push(first.to_ascii_uppercase());
                            s.push_str(c.as_str());
                        }
                    } else {
                        s.push(' ');
                        s.push_str(word);
                    }
                }
                s.push_str(&format!(" {n:06}"));
                s
            }
            Body::Email {
                first,
                last,
                digits,
            } => {
                let t = self.tag(PoisonKind::Email, &[first, last, digits]);
                let n = u32::from_be_bytes([t[0], t[1], t[2], t[3]]) % 10_000;
                format!(
                    "{}.{}{digits:02}{n:04}@{}{}.{}",
                    FIRST_NAMES[usize::from(first)],
                    LAST_NAMES[usize::from(last)],
                    DOMAIN_HEADS[usize::from(t[4] & 15)],
                    DOMAIN_TAILS[usize::from(t[5] & 15)],
                    TLDS[usize::from(t[6] & 3)],
                )
            }
            Body::Uuid(head) => {
                let t = self.tag(PoisonKind::Uuid, &head);
                let mut b = [0u8; 16];
                b[..8].copy_from_slice(&head);
                b[8..].copy_from_slice(&t[..8]);
                b[8] = (b[8] & 0x3f) | 0x80;
                uuid_text(&b, false)
            }
            Body::Int(high) => {
                let t = self.tag(PoisonKind::Int, &high.to_be_bytes());
                let low = u32::from_be_bytes([t[0], t[1], t[2], t[3]]);
                let v = (1u64 << 62) | (u64::from(high) << 32) | u64::from(low);
                v.to_string()
            }
            Body::Bytea(head) => {
                let t = self.tag(PoisonKind::Bytea, &head);
                let mut s = String::with_capacity(2 + 48);
                s.push_str("\\x");
                hex_into(&head, false, &mut s);
                hex_into(&t[..8], false, &mut s);
                s
            }
        }
    }
}

/// The random part of a value.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Body {
    Text([u8; 4]),
    Email { first: u8, last: u8, digits: u8 },
    Uuid([u8; 8]),
    Int(u32),
    Bytea([u8; 16]),
}

const INT_BODY_MASK: u32 = (1 << 30) - 1;

impl Body {
    fn from_seed(kind: PoisonKind, s: &[u8; SEED_LEN]) -> Body {
        match kind {
            PoisonKind::Text => Body::Text([s[0] & 127, s[1] & 127, s[2] & 127, s[3] & 127]),
            PoisonKind::Email => Body::Email {
                first: s[0] & 63,
                last: s[1] & 63,
                digits: s[2] % 100,
            },
            PoisonKind::Uuid => {
                let mut h = [0u8; 8];
                h.copy_from_slice(&s[..8]);
                h[6] = (h[6] & 0x0f) | 0x40;
                Body::Uuid(h)
            }
            PoisonKind::Int => {
                Body::Int(u32::from_be_bytes([s[0], s[1], s[2], s[3]]) & INT_BODY_MASK)
            }
            PoisonKind::Bytea => Body::Bytea(*s),
        }
    }

    /// The body of `value` read as `kind`, if it has that shape. The tag is
    /// checked by rendering the body again.
    fn parse(kind: PoisonKind, value: &str) -> Option<Body> {
        match kind {
            PoisonKind::Text => {
                let mut parts = value.split(' ');
                let mut words = [0u8; 4];
                for (i, w) in words.iter_mut().enumerate() {
                    let part = parts.next()?;
                    let lower = if i == 0 {
                        part.to_ascii_lowercase()
                    } else {
                        part.to_owned()
                    };
                    *w = index_of(&WORDS, &lower)?;
                }
                Some(Body::Text(words))
            }
            PoisonKind::Email => {
                let (local, _) = value.split_once('@')?;
                let (first, rest) = local.split_once('.')?;
                let split = rest.len().checked_sub(6)?;
                let (last, digits) = (rest.get(..split)?, rest.get(split..split + 2)?);
                Some(Body::Email {
                    first: index_of(&FIRST_NAMES, first)?,
                    last: index_of(&LAST_NAMES, last)?,
                    digits: digits.parse().ok()?,
                })
            }
            PoisonKind::Uuid => {
                let b = uuid_bytes(value)?;
                let mut h = [0u8; 8];
                h.copy_from_slice(&b[..8]);
                Some(Body::Uuid(h))
            }
            PoisonKind::Int => {
                let v: u64 = value.parse().ok()?;
                let high = u32::try_from((v >> 32) & u64::from(INT_BODY_MASK)).ok()?;
                Some(Body::Int(high))
            }
            PoisonKind::Bytea => {
                let hex = value.strip_prefix("\\x")?;
                let bytes = hex_decode(hex)?;
                let head: [u8; 16] = bytes.get(..16)?.try_into().ok()?;
                Some(Body::Bytea(head))
            }
        }
    }
}

fn index_of<const N: usize>(list: &[&str; N], word: &str) -> Option<u8> {
    list.iter()
        .position(|w| *w == word)
        .and_then(|i| u8::try_from(i).ok())
}

fn hex_into(bytes: &[u8], upper: bool, out: &mut String) {
    let digits: &[u8; 16] = if upper {
        b"0123456789ABCDEF"
    } else {
        b"0123456789abcdef"
    };
    for b in bytes {
        out.push(char::from(digits[usize::from(b >> 4)]));
        out.push(char::from(digits[usize::from(b & 15)]));
    }
}

fn hex_decode(hex: &str) -> Option<Vec<u8>> {
    if !hex.len().is_multiple_of(2) {
        return None;
    }
    let nibble = |c: u8| match c {
        b'0'..=b'9' => Some(c - b'0'),
        b'a'..=b'f' => Some(c - b'a' + 10),
        b'A'..=b'F' => Some(c - b'A' + 10),
        _ => None,
    };
    hex.as_bytes()
        .chunks_exact(2)
        .map(|p| Some(nibble(p[0])? << 4 | nibble(p[1])?))
        .collect()
}

fn uuid_text(b: &[u8; 16], upper: bool) -> String {
    let mut s = String::with_capacity(36);
    for (i, range) in [0..4, 4..6, 6..8, 8..10, 10..16].into_iter().enumerate() {
        if i > 0 {
            s.push('-');
        }
        hex_into(&b[range], upper, &mut s);
    }
    s
}

fn uuid_bytes(text: &str) -> Option<[u8; 16]> {
    let t = text.as_bytes();
    if t.len() != 36 || [8, 13, 18, 23].iter().any(|&i| t[i] != b'-') {
        return None;
    }
    let hex: String = text.chars().filter(|c| *c != '-').collect();
    hex_decode(&hex)?.try_into().ok()
}

/// One registered poison value.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Entry {
    /// Its id, unique in the registry, from 1. Events name it.
    pub id: u32,
    /// What it imitates.
    pub kind: PoisonKind,
    /// The value as text, as it is inserted (`bytea` as `\x` and hex).
    pub value: String,
    /// The version of the poison key that made it.
    pub key_version: u32,
    /// Where it was meant to go, e.g. `customers.email`, if that was said.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub location: Option<String>,
}

impl Entry {
    /// Every byte string the wire can carry this value as (see the
    /// [module documentation](self)).
    pub fn encodings(&self) -> Vec<Vec<u8>> {
        let text = self.value.as_bytes().to_vec();
        match self.kind {
            PoisonKind::Text | PoisonKind::Email => vec![text],
            PoisonKind::Uuid => match uuid_bytes(&self.value) {
                Some(b) => {
                    let mut bare = String::with_capacity(32);
                    hex_into(&b, false, &mut bare);
                    vec![
                        text,
                        uuid_text(&b, true).into_bytes(),
                        bare.into_bytes(),
                        b.to_vec(),
                    ]
                }
                None => vec![text],
            },
            PoisonKind::Int => match self.value.parse::<i64>() {
                Ok(v) => {
                    let mut all = vec![text, v.to_be_bytes().to_vec()];
                    if let Ok(small) = i32::try_from(v) {
                        all.push(small.to_be_bytes().to_vec());
                    }
                    all
                }
                Err(_) => vec![text],
            },
            PoisonKind::Bytea => match self.value.strip_prefix("\\x").and_then(hex_decode) {
                Some(raw) => {
                    let mut lower = String::with_capacity(raw.len() * 2);
                    hex_into(&raw, false, &mut lower);
                    let mut upper = String::with_capacity(raw.len() * 2);
                    hex_into(&raw, true, &mut upper);
                    vec![raw, lower.into_bytes(), upper.into_bytes()]
                }
                None => vec![text],
            },
        }
    }

    /// The value as an SQL literal for an INSERT.
    pub fn sql_literal(&self) -> String {
        match self.kind {
            PoisonKind::Int => self.value.clone(),
            _ => format!("'{}'", self.value.replace('\'', "''")),
        }
    }
}

/// The registry file's shape.
#[derive(Debug, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct RegistryFile {
    format: String,
    entries: Vec<Entry>,
}

const REGISTRY_FORMAT: &str = "vigil-poison-registry-v1";

/// The registry: every poison value, with its id.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct PoisonSet {
    entries: Vec<Entry>,
}

impl PoisonSet {
    /// An empty registry.
    pub fn new() -> PoisonSet {
        PoisonSet::default()
    }

    /// Reads the registry at `path`. A missing file is an error; see
    /// [`load_or_empty`](Self::load_or_empty). The file must not be open
    /// to group or others.
    pub fn load(path: &Path) -> Result<PoisonSet, PoisonError> {
        let io = |source| PoisonError::Io {
            path: path.to_owned(),
            source,
        };
        let meta = fs::metadata(path).map_err(io)?;
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            let mode = meta.permissions().mode() & 0o7777;
            if mode & 0o077 != 0 {
                return Err(PoisonError::Permissions {
                    path: path.to_owned(),
                    mode,
                });
            }
        }
        let _ = meta;
        let bytes = fs::read(path).map_err(io)?;
        PoisonSet::from_json(&bytes).map_err(|message| PoisonError::Format {
            path: path.to_owned(),
            message,
        })
    }

    /// Like [`load`](Self::load), but a missing file is an empty registry.
    pub fn load_or_empty(path: &Path) -> Result<PoisonSet, PoisonError> {
        match fs::symlink_metadata(path) {
            Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(PoisonSet::new()),
            _ => PoisonSet::load(path),
        }
    }

    /// Parses the registry's JSON.
    pub fn from_json(bytes: &[u8]) -> Result<PoisonSet, String> {
        let file: RegistryFile = serde_json::from_slice(bytes).map_err(|e| e.to_string())?;
        if file.format != REGISTRY_FORMAT {
            return Err(format!(
                "format {:?}, expected {REGISTRY_FORMAT:?}",
                file.format
            ));
        }
        let set = PoisonSet {
            entries: file.entries,
        };
        set.check_unique().map_err(|e| e.to_string())?;
        Ok(set)
    }

    /// The registry as JSON.
    pub fn to_json(&self) -> String {
        let file = RegistryFile {
            format: REGISTRY_FORMAT.to_owned(),
            entries: self.entries.clone(),
        };
        let mut s = serde_json::to_string_pretty(&file).unwrap_or_default();
        s.push('\n');
        s
    }

    /// Writes the registry to `path` with mode 0600, replacing the file
    /// whole (a temporary file, synced, then renamed over it).
    pub fn save(&self, path: &Path) -> Result<(), PoisonError> {
        let io = |source| PoisonError::Io {
            path: path.to_owned(),
            source,
        };
        let name = path
            .file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_else(|| "registry".to_owned());
        let tmp = path.with_file_name(format!(".{name}.tmp{}", std::process::id()));
        let mut options = fs::OpenOptions::new();
        options.write(true).create(true).truncate(true);
        #[cfg(unix)]
        {
            use std::os::unix::fs::OpenOptionsExt;
            options.mode(0o600);
        }
        let write = || -> io::Result<()> {
            let mut f = options.open(&tmp)?;
            f.write_all(self.to_json().as_bytes())?;
            f.sync_all()?;
            fs::rename(&tmp, path)
        };
        write().map_err(|e| {
            let _ = fs::remove_file(&tmp);
            io(e)
        })
    }

    /// The entries, in id order.
    pub fn entries(&self) -> &[Entry] {
        &self.entries
    }

    /// The number of entries.
    pub fn len(&self) -> usize {
        self.entries.len()
    }

    /// Whether there is no entry.
    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }

    /// The entry with id `id`.
    pub fn get(&self, id: u32) -> Option<&Entry> {
        self.entries.iter().find(|e| e.id == id)
    }

    /// The key versions the entries were made with.
    pub fn key_versions(&self) -> BTreeSet<u32> {
        self.entries.iter().map(|e| e.key_version).collect()
    }

    /// Makes a new value of `kind` with `key`, different from every
    /// registered one, and registers it under the next id.
    pub fn add(
        &mut self,
        key: &PoisonKey,
        kind: PoisonKind,
        location: Option<&str>,
    ) -> Result<&Entry, PoisonError> {
        let mut value = None;
        for _ in 0..1000 {
            let v = key.make(kind)?;
            if !self.entries.iter().any(|e| e.value == v) {
                value = Some(v);
                break;
            }
        }
        let value = value.ok_or(PoisonError::Exhausted(kind))?;
        let id = self.entries.iter().map(|e| e.id).max().unwrap_or(0) + 1;
        self.entries.push(Entry {
            id,
            kind,
            value,
            key_version: key.version(),
            location: location.map(str::to_owned),
        });
        let last = self.entries.len() - 1;
        Ok(&self.entries[last])
    }

    /// Checks every entry's tag with the key of its version among `keys`.
    pub fn verify(&self, keys: &[PoisonKey]) -> Result<(), PoisonError> {
        self.check_unique()?;
        let mut bad = Vec::new();
        for e in &self.entries {
            let Some(key) = keys.iter().find(|k| k.version == e.key_version) else {
                return Err(PoisonError::MissingKey {
                    version: e.key_version,
                });
            };
            if !key.check(e.kind, &e.value) {
                bad.push(e.id);
            }
        }
        if bad.is_empty() {
            Ok(())
        } else {
            Err(PoisonError::Tampered { ids: bad })
        }
    }

    fn check_unique(&self) -> Result<(), PoisonError> {
        let mut ids = BTreeSet::new();
        let mut values = BTreeSet::new();
        for e in &self.entries {
            if !ids.insert(e.id) || !values.insert(e.value.as_str()) {
                return Err(PoisonError::Duplicate { id: e.id });
            }
        }
        Ok(())
    }
}

/// Registries up to this many pattern bytes are scanned with a DFA.
const DFA_MAX_PATTERN_BYTES: usize = 16 * 1024;

/// Finds registered poison values in bytes: result rows, COPY data,
/// statements and parameters.
///
/// Scanning bytes that hold no poison value allocates nothing.
#[derive(Clone)]
pub struct Scanner {
    automaton: Option<AhoCorasick>,
    /// The entry id of each pattern.
    ids: Vec<u32>,
    max_len: usize,
    entries: usize,
}

impl fmt::Debug for Scanner {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Scanner")
            .field("entries", &self.entries)
            .field("patterns", &self.ids.len())
            .field("max_len", &self.max_len)
            .finish()
    }
}

impl Scanner {
    /// A scanner for every entry of `set`, in every encoding.
    pub fn new(set: &PoisonSet) -> Scanner {
        let mut patterns: Vec<Vec<u8>> = Vec::new();
        let mut ids = Vec::new();
        let mut seen = std::collections::HashSet::new();
        for e in set.entries() {
            for p in e.encodings() {
                if !p.is_empty() && seen.insert(p.clone()) {
                    patterns.push(p);
                    ids.push(e.id);
                }
            }
        }
        let max_len = patterns.iter().map(Vec::len).max().unwrap_or(0);
        let automaton = if patterns.is_empty() {
            None
        } else {
            let bytes: usize = patterns.iter().map(Vec::len).sum();
            // A DFA costs one table lookup per byte, and random values make
            // a prefilter useless there; its memory grows with the
            // patterns' total length, so large registries let the crate
            // choose (a contiguous NFA with a prefilter).
            if bytes <= DFA_MAX_PATTERN_BYTES {
                AhoCorasick::builder()
                    .kind(Some(AhoCorasickKind::DFA))
                    .prefilter(false)
                    .build(&patterns)
                    .ok()
            } else {
                AhoCorasick::new(&patterns).ok()
            }
        };
        Scanner {
            automaton,
            ids,
            max_len,
            entries: set.len(),
        }
    }

    /// Whether there is nothing to look for.
    pub fn is_empty(&self) -> bool {
        self.automaton.is_none()
    }

    /// The number of entries looked for.
    pub fn entries(&self) -> usize {
        self.entries
    }

    /// The longest encoding, in bytes.
    pub fn max_len(&self) -> usize {
        self.max_len
    }

    /// The id of the first poison value in `data`, if any.
    pub fn find(&self, data: &[u8]) -> Option<u32> {
        let m = self.automaton.as_ref()?.find(data)?;
        Some(self.ids[m.pattern().as_usize()])
    }

    /// Adds the id of every poison value in `data` to `hits` (each id once);
    /// returns whether `data` holds any.
    pub fn scan(&self, data: &[u8], hits: &mut Vec<u32>) -> bool {
        let Some(ac) = &self.automaton else {
            return false;
        };
        let Some(first) = ac.find(data) else {
            return false;
        };
        // Rare: collect them all, overlapping ones included.
        for m in ac.find_overlapping_iter(&data[first.start()..]) {
            push_unique(hits, self.ids[m.pattern().as_usize()]);
        }
        true
    }

    /// A [`StreamScanner`] for this scanner's values.
    pub fn stream(&self) -> StreamScanner {
        StreamScanner {
            tail: Vec::with_capacity(self.max_len.saturating_sub(1)),
            joint: Vec::new(),
            keep: self.max_len.saturating_sub(1),
        }
    }
}

fn push_unique(hits: &mut Vec<u32>, id: u32) {
    if !hits.contains(&id) {
        hits.push(id);
    }
}

/// Scans a byte stream that arrives in chunks, finding also the values
/// that straddle two chunks: it keeps the last `max_len - 1` bytes.
#[derive(Clone, Debug, Default)]
pub struct StreamScanner {
    tail: Vec<u8>,
    joint: Vec<u8>,
    keep: usize,
}

impl StreamScanner {
    /// Forgets the stream so far: the next chunk starts a new one.
    pub fn reset(&mut self) {
        self.tail.clear();
    }

    /// Bytes of the stream kept to find a value that starts in them.
    pub fn overlap(&self) -> usize {
        self.keep
    }

    /// Scans the next `chunk` of the stream with `scanner` (the one this
    /// stream scanner was made from); adds the ids found to `hits` and
    /// returns whether any value ends in this chunk.
    pub fn feed(&mut self, scanner: &Scanner, chunk: &[u8], hits: &mut Vec<u32>) -> bool {
        let Some(ac) = &scanner.automaton else {
            return false;
        };
        if chunk.is_empty() {
            return false;
        }
        let mut found = false;
        if !self.tail.is_empty() {
            let boundary = self.tail.len();
            self.joint.clear();
            self.joint.extend_from_slice(&self.tail);
            self.joint
                .extend_from_slice(&chunk[..chunk.len().min(self.keep)]);
            if ac.is_match(&self.joint[..]) {
                for m in ac.find_overlapping_iter(&self.joint[..]) {
                    if m.start() < boundary && m.end() > boundary {
                        push_unique(hits, scanner.ids[m.pattern().as_usize()]);
                        found = true;
                    }
                }
            }
        }
        found |= scanner.scan(chunk, hits);
        if chunk.len() >= self.keep {
            self.tail.clear();
            self.tail
                .extend_from_slice(&chunk[chunk.len() - self.keep..]);
        } else {
            self.tail.extend_from_slice(chunk);
            let excess = self.tail.len().saturating_sub(self.keep);
            self.tail.drain(..excess);
        }
        found
    }
}

const FIRST_NAMES: [&str; 64] = [
    "anna", "ben", "carla", "david", "elena", "felix", "grace", "henry", "irene", "jacob", "karen",
    "lucas", "maria", "nathan", "olivia", "peter", "rachel", "samuel", "sofia", "thomas", "ursula",
    "victor", "wendy", "xavier", "yvonne", "zach", "alice", "brian", "chloe", "daniel", "emma",
    "frank", "hannah", "ivan", "julia", "kevin", "laura", "martin", "nina", "oscar", "paula",
    "robert", "sarah", "tobias", "vera", "walter", "adam", "bella", "chris", "diana", "eric",
    "fiona", "george", "helen", "isaac", "jenny", "kyle", "lena", "mark", "nora", "owen", "paul",
    "rosa", "simon",
];

const LAST_NAMES: [&str; 64] = [
    "smith",
    "jones",
    "miller",
    "davis",
    "garcia",
    "wilson",
    "moore",
    "taylor",
    "anderson",
    "thomas",
    "jackson",
    "white",
    "harris",
    "martin",
    "thompson",
    "clark",
    "lewis",
    "walker",
    "hall",
    "allen",
    "young",
    "king",
    "wright",
    "scott",
    "green",
    "baker",
    "adams",
    "nelson",
    "hill",
    "campbell",
    "mitchell",
    "roberts",
    "carter",
    "phillips",
    "evans",
    "turner",
    "parker",
    "collins",
    "edwards",
    "stewart",
    "morris",
    "murphy",
    "cook",
    "rogers",
    "morgan",
    "cooper",
    "peterson",
    "reed",
    "bailey",
    "bell",
    "kelly",
    "howard",
    "ward",
    "cox",
    "richardson",
    "wood",
    "watson",
    "brooks",
    "bennett",
    "gray",
    "hughes",
    "price",
    "sanders",
    "myers",
];

const DOMAIN_HEADS: [&str; 16] = [
    "north", "blue", "bright", "silver", "green", "red", "clear", "swift", "sun", "star", "cloud",
    "river", "stone", "oak", "pine", "lake",
];

const DOMAIN_TAILS: [&str; 16] = [
    "mail", "post", "net", "link", "wave", "box", "web", "line", "hub", "point", "field", "side",
    "view", "gate", "port", "bay",
];

const TLDS: [&str; 4] = ["com", "net", "org", "io"];

const WORDS: [&str; 128] = [
    "amber", "anchor", "apple", "arrow", "autumn", "basket", "beacon", "birch", "bitter",
    "blossom", "bridge", "bright", "bronze", "candle", "canyon", "cedar", "chalk", "cherry",
    "cider", "clover", "cobalt", "copper", "coral", "cotton", "crane", "crimson", "crystal",
    "dawn", "desert", "dove", "dusk", "eagle", "ember", "fern", "field", "flint", "forest", "fox",
    "frost", "garden", "garnet", "glacier", "golden", "granite", "harbor", "hazel", "heron",
    "hollow", "honey", "indigo", "iron", "ivory", "jade", "jasper", "juniper", "kettle", "lantern",
    "lavender", "lemon", "linen", "maple", "marble", "meadow", "mellow", "mint", "misty",
    "morning", "moss", "nickel", "north", "oak", "ocean", "olive", "orchard", "pebble", "pepper",
    "pine", "plum", "prairie", "quartz", "quiet", "rain", "raven", "ridge", "river", "robin",
    "rose", "ruby", "rustic", "saffron", "sage", "sand", "scarlet", "shadow", "silver", "slate",
    "snow", "spring", "spruce", "stone", "storm", "summer", "sunny", "thistle", "thunder",
    "timber", "topaz", "tulip", "twilight", "valley", "velvet", "violet", "walnut", "willow",
    "winter", "wren", "yellow", "zephyr", "aspen", "bay", "brook", "calm", "delta", "echo",
    "falcon", "grove", "lunar", "harvest",
];
