//! An open verifier for Acra's HMAC-chained audit logs.
//!
//! [Acra](https://github.com/cossacklabs/acra) (`--audit_log_enable`) signs
//! each log line with a forward-evolving HMAC chain, but its verifier,
//! `acra-log-verifier`, is closed source. [`AcraVerifier`] checks the same logs
//! with the same algorithm, in all three of Acra's formats ([`AcraFormat`]).
//!
//! ```
//! use std::path::Path;
//! use vigil_seal::acra::{AcraFormat, AcraVerifier};
//!
//! let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("testdata/acra");
//! let verifier = AcraVerifier::from_key_file(AcraFormat::Plaintext, &dir.join("key.hex"))?
//!     .strict(true);
//! // Rotated files, oldest first: chain state carries across them.
//! let files = ["log.txt.2", "log.txt.1", "log.txt"].map(|f| dir.join("rotation/plaintext").join(f));
//! let report = verifier.verify(&files)?;
//! assert!(report.is_verified(), "{report}");
//! assert_eq!(report.chains, 4);
//! # Ok::<(), vigil_seal::acra::AcraError>(())
//! ```
//!
//! # Algorithm
//!
//! ```text
//! K      the 32-byte audit key
//! k      = SHA256(K)                 at the start, and on every "chain=new" line
//! prev   = empty                     likewise
//! for each signed line with canonical bytes D:
//!     h    = HMAC-SHA256(key = k, D || prev)
//!     IC   = hex(SHA256(h))          must equal the line's integrity check
//!     prev = h
//!     k    = SHA256(k)
//! ```
//!
//! The canonical bytes D are, per format:
//!
//! - plaintext: the line before ` integrity=<hex>[ chain=new]`;
//! - CEF: the same (the writer dropped the line's trailing space);
//! - JSON: the object parsed as Go does, minus `"integrity"`, and minus
//!   `"chain"` when it is `"new"`; then, for each key in byte order,
//!   `"delimiter" + key + "delimiter" + json.Marshal(value) + "delimiter"`.
//!
//! ` chain=new` is not MACed; `chain=end` is. A line is an end of chain when it
//! carries `chain=end` and the message `End of current audit log chain`.
//!
//! # What it detects
//!
//! Within a chain: any edit of a signed line, and deleting, inserting,
//! duplicating or reordering signed lines. A `chain=new` that does not follow
//! an end ("end of audit log chain is missing"). A removed `chain=new` (except
//! on the log's very first entry, which starts from the same state anyway).
//!
//! Not detected, because every chain restarts from `SHA256(K)` and carries no
//! sequence number: whole chains deleted, replayed or reordered; a truncated
//! tail (only a warning, a failure with [`AcraVerifier::strict`]); unsigned
//! lines (warnings; inside a chain, failures with `strict`); forgery by anyone
//! holding K. Acra's end test is loose: a signed plaintext or CEF line whose
//! text holds both `chain=end` and the end message counts as an end.
//! vigil's own audit log ([`crate::Tree`], checkpoints) does detect these.
//!
//! # Differences from `acra-log-verifier`
//!
//! - Lines of any length are read (up to [`AcraVerifier::max_line_len`], past
//!   which verification fails with [`AcraError::LineTooLong`]). Acra's
//!   `bufio.Scanner` stops at 64 KiB without an error.
//! - A plaintext message containing ` integrity=` verifies: the line is split
//!   at the last separator, where the writer put it. Acra calls the line
//!   unsigned and fails on the next one.
//! - JSON strings with `\b` or `\f` verify whether Go 1.22+ or an older Go
//!   wrote them.
//! - [`AcraVerifier::strict`] turns unsigned lines inside a chain, a missing
//!   final end and an empty log into failures. Unsigned lines outside chains
//!   (before the first entry, or between an end and the next `chain=new`) stay
//!   warnings: Acra writes its first startup lines before it loads the key.
//! - Every warning is reported with its file and line.

mod entry;
mod gojson;

use std::fmt;
use std::fs::File;
use std::io::{self, BufRead, BufReader, Read};
use std::path::{Path, PathBuf};
use std::str::FromStr;

use hmac::{Hmac, KeyInit, Mac};
use sha2::{Digest, Sha256};
use subtle::ConstantTimeEq;
use zeroize::{Zeroize, Zeroizing};

use entry::{Entry, Line};

/// Lines longer than this fail with [`AcraError::LineTooLong`] unless
/// [`AcraVerifier::max_line_len`] says otherwise.
pub const DEFAULT_MAX_LINE_LEN: usize = 64 << 20;

/// Warnings listed in full in an [`AcraReport`]; later ones are only counted.
pub const DEFAULT_MAX_WARNINGS: usize = 10_000;

/// One of Acra's `--logging_format` values.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum AcraFormat {
    /// ArcSight Common Event Format: `CEF:0|cossacklabs|acra-server|…`.
    Cef,
    /// One JSON object per line.
    Json,
    /// logrus text: `time="…" level=info msg="…" key=value…` (Acra's default).
    Plaintext,
}

impl FromStr for AcraFormat {
    type Err = AcraError;

    /// `plaintext`, `json` or `cef`, in any case, as Acra accepts them.
    fn from_str(s: &str) -> Result<Self, AcraError> {
        match s.to_ascii_lowercase().as_str() {
            "cef" => Ok(Self::Cef),
            "json" => Ok(Self::Json),
            "plaintext" => Ok(Self::Plaintext),
            _ => Err(AcraError::UnknownFormat(s.to_owned())),
        }
    }
}

impl fmt::Display for AcraFormat {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Self::Cef => "cef",
            Self::Json => "json",
            Self::Plaintext => "plaintext",
        })
    }
}

/// Usage and I/O errors. Tampering is never an error: it is an
/// [`AcraFailure`] in the [`AcraReport`].
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum AcraError {
    /// A log file could not be opened or read.
    #[error("reading {}: {source}", path.display())]
    Io {
        /// The file.
        path: PathBuf,
        /// The cause.
        source: io::Error,
    },
    /// The key is not 32 bytes. The message never contains the key.
    #[error("invalid Acra audit key: {0}")]
    InvalidKey(&'static str),
    /// The key file could not be read.
    #[error("reading key file {}: {source}", path.display())]
    KeyFile {
        /// The key file.
        path: PathBuf,
        /// The cause.
        source: io::Error,
    },
    /// A line is longer than [`AcraVerifier::max_line_len`]. Verification
    /// stops rather than skip it.
    #[error("{}:{line}: line longer than {limit} bytes", path.display())]
    LineTooLong {
        /// The file.
        path: PathBuf,
        /// The 1-based line number.
        line: u64,
        /// The limit in force.
        limit: usize,
    },
    /// No log files were given.
    #[error("no audit log files given")]
    NoFiles,
    /// A format name other than `plaintext`, `json` or `cef`.
    #[error("unknown Acra log format {0:?} (expected plaintext, json or cef)")]
    UnknownFormat(String),
}

/// Verifies Acra audit logs with one audit key.
///
/// Built with [`AcraVerifier::new`], [`AcraVerifier::from_key_hex`] or
/// [`AcraVerifier::from_key_file`], then configured with
/// [`strict`](AcraVerifier::strict). Its `Debug` output never shows the key.
#[derive(Clone)]
pub struct AcraVerifier {
    format: AcraFormat,
    key: Zeroizing<[u8; 32]>,
    strict: bool,
    max_line_len: usize,
    max_warnings: usize,
}

impl fmt::Debug for AcraVerifier {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("AcraVerifier")
            .field("format", &self.format)
            .field("key", &"<redacted>")
            .field("strict", &self.strict)
            .field("max_line_len", &self.max_line_len)
            .field("max_warnings", &self.max_warnings)
            .finish()
    }
}

impl AcraVerifier {
    /// A verifier for `format` with the raw 32-byte audit key.
    pub fn new(format: AcraFormat, key: [u8; 32]) -> Self {
        let mut key = key;
        let verifier = Self {
            format,
            key: Zeroizing::new(key),
            strict: false,
            max_line_len: DEFAULT_MAX_LINE_LEN,
            max_warnings: DEFAULT_MAX_WARNINGS,
        };
        key.zeroize();
        verifier
    }

    /// A verifier with the key given as 64 hexadecimal characters (either
    /// case; surrounding whitespace is ignored).
    pub fn from_key_hex(format: AcraFormat, hex: &str) -> Result<Self, AcraError> {
        Ok(Self::new(format, *parse_hex_key(hex.trim().as_bytes())?))
    }

    /// A verifier with the key read from a file holding either 32 raw bytes or
    /// 64 hexadecimal characters (a trailing newline is fine).
    pub fn from_key_file(format: AcraFormat, path: &Path) -> Result<Self, AcraError> {
        let key_file_err = |source| AcraError::KeyFile {
            path: path.to_owned(),
            source,
        };
        let mut bytes = Zeroizing::new(Vec::with_capacity(66));
        File::open(path)
            .and_then(|f| f.take(1024).read_to_end(&mut bytes))
            .map_err(key_file_err)?;
        let key = if bytes.len() == 32 {
            let mut key = Zeroizing::new([0; 32]);
            key.copy_from_slice(&bytes);
            key
        } else {
            parse_hex_key(bytes.trim_ascii_end())?
        };
        Ok(Self::new(format, *key))
    }

    /// With `strict`, an unsigned line inside a chain (after a verified entry
    /// that is not an end), a log whose last chain does not end, and a log
    /// without signed entries are failures; otherwise they are warnings, as in
    /// Acra. Unsigned lines outside chains, such as the startup lines Acra
    /// writes before it loads the audit key, stay warnings. Default: off.
    #[must_use]
    pub fn strict(mut self, strict: bool) -> Self {
        self.strict = strict;
        self
    }

    /// The longest line read, in bytes, without its line terminator. Longer
    /// lines stop verification with [`AcraError::LineTooLong`]. Default:
    /// [`DEFAULT_MAX_LINE_LEN`].
    #[must_use]
    pub fn max_line_len(mut self, bytes: usize) -> Self {
        self.max_line_len = bytes;
        self
    }

    /// How many warnings an [`AcraReport`] lists in full; the rest are counted
    /// in [`AcraReport::warnings_total`]. Default: [`DEFAULT_MAX_WARNINGS`].
    #[must_use]
    pub fn max_warnings(mut self, count: usize) -> Self {
        self.max_warnings = count;
        self
    }

    /// The format this verifier reads.
    pub fn format(&self) -> AcraFormat {
        self.format
    }

    /// Verifies `files` in the given order (oldest first: `log.txt.2`,
    /// `log.txt.1`, `log.txt`), carrying chain state from one file to the
    /// next, and stops at the first failure. Reads line by line: memory is
    /// bounded by the longest line.
    pub fn verify(&self, files: &[PathBuf]) -> Result<AcraReport, AcraError> {
        if files.is_empty() {
            return Err(AcraError::NoFiles);
        }
        let mut session = Session::new(self);
        for path in files {
            let file = File::open(path).map_err(|source| AcraError::Io {
                path: path.clone(),
                source,
            })?;
            if session.read(path, file)?.is_break() {
                break;
            }
        }
        Ok(session.finish())
    }

    /// Like [`verify`](AcraVerifier::verify), over readers named by paths
    /// (used in reports only).
    pub fn verify_readers<I, R>(&self, sources: I) -> Result<AcraReport, AcraError>
    where
        I: IntoIterator<Item = (PathBuf, R)>,
        R: Read,
    {
        let mut session = Session::new(self);
        let mut any = false;
        for (path, reader) in sources {
            any = true;
            if session.read(&path, reader)?.is_break() {
                break;
            }
        }
        if !any {
            return Err(AcraError::NoFiles);
        }
        Ok(session.finish())
    }
}

fn parse_hex_key(hex: &[u8]) -> Result<Zeroizing<[u8; 32]>, AcraError> {
    const BAD: AcraError = AcraError::InvalidKey("expected 32 raw bytes or 64 hex characters");
    if hex.len() != 64 {
        return Err(BAD);
    }
    let bytes = Zeroizing::new(entry::decode_hex(hex).ok_or(BAD)?);
    let mut key = Zeroizing::new([0; 32]);
    key.copy_from_slice(&bytes);
    Ok(key)
}

/// Where something happened: a file and a 1-based line number.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AcraLocation {
    /// The file, as given to [`AcraVerifier::verify`].
    pub file: PathBuf,
    /// The line in that file, counting from 1 (empty lines included).
    pub line: u64,
}

impl fmt::Display for AcraLocation {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}:{}", self.file.display(), self.line)
    }
}

/// Why a log is not verified.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum AcraFailureKind {
    /// A `chain=new` line while the previous chain had not ended: lines were
    /// removed, or a chain start was inserted.
    ChainEndMissing,
    /// With `strict`: the last chain has no `chain=end` (a truncated tail, or
    /// a writer that did not shut down cleanly).
    FinalEndMissing,
    /// The recomputed integrity check differs: the line, or one before it in
    /// its chain, was changed, removed, inserted or moved, or the key is wrong.
    IntegrityMismatch,
    /// The integrity check is not hexadecimal, or a JSON line is not JSON
    /// that Go accepts. Acra also stops on these.
    Malformed,
    /// With `strict`: no signed entry at all.
    NoEntries,
    /// With `strict`: a line without an integrity check inside a chain.
    Unsigned,
}

/// The first failure found; verification stops there.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AcraFailure {
    /// Where: the failing line, or for [`AcraFailureKind::FinalEndMissing`]
    /// the last verified entry. `None` for [`AcraFailureKind::NoEntries`].
    pub location: Option<AcraLocation>,
    /// What.
    pub kind: AcraFailureKind,
    /// Acra's wording where it has one, e.g. "integrity doesn't match".
    pub message: String,
}

impl fmt::Display for AcraFailure {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match &self.location {
            Some(location) => write!(f, "{location}: {}", self.message),
            None => f.write_str(&self.message),
        }
    }
}

/// A warning: Acra logs these and still reports success.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum AcraWarningKind {
    /// The input held no signed entry ("Empty source of audit log").
    Empty,
    /// The last chain has no `chain=end` ("Missing end of final audit log
    /// chain"): the tail may have been cut.
    FinalEndMissing,
    /// A line without an integrity check ("No integrity check for line").
    Unsigned,
}

/// A warning with its location.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AcraWarning {
    /// The unsigned line, or for [`AcraWarningKind::FinalEndMissing`] the last
    /// verified entry. `None` for [`AcraWarningKind::Empty`].
    pub location: Option<AcraLocation>,
    /// What.
    pub kind: AcraWarningKind,
}

impl AcraWarning {
    /// Acra's wording.
    pub fn message(&self) -> &'static str {
        match self.kind {
            AcraWarningKind::Empty => "empty source of audit log",
            AcraWarningKind::FinalEndMissing => "missing end of final audit log chain",
            AcraWarningKind::Unsigned => "no integrity check for line",
        }
    }
}

impl fmt::Display for AcraWarning {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match &self.location {
            Some(location) => write!(f, "{location}: {}", self.message()),
            None => f.write_str(self.message()),
        }
    }
}

/// The outcome of [`AcraVerifier::verify`].
#[derive(Debug, Clone, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct AcraReport {
    /// Files opened.
    pub files: u64,
    /// Lines read, empty and unsigned ones included.
    pub lines: u64,
    /// Signed entries whose integrity check matched.
    pub entries_verified: u64,
    /// Chains those entries belong to.
    pub chains: u64,
    /// Warnings in order, at most [`AcraVerifier::max_warnings`] of them.
    pub warnings: Vec<AcraWarning>,
    /// All warnings, listed or not.
    pub warnings_total: u64,
    /// The first failure; `None` means verified.
    pub failure: Option<AcraFailure>,
}

impl AcraReport {
    /// No failure: every signed entry matched (warnings aside).
    pub fn is_verified(&self) -> bool {
        self.failure.is_none()
    }
}

impl fmt::Display for AcraReport {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for warning in &self.warnings {
            writeln!(f, "warning: {warning}")?;
        }
        let unlisted = self.warnings_total - self.warnings.len() as u64;
        if unlisted > 0 {
            writeln!(f, "warning: {unlisted} more warnings not listed")?;
        }
        write!(
            f,
            "{} entries in {} chains verified ({} lines in {} files, {} warnings)",
            self.entries_verified, self.chains, self.lines, self.files, self.warnings_total
        )?;
        match &self.failure {
            Some(failure) => write!(f, "\nFAILED: {failure}"),
            None => f.write_str("\nintegrity check successful"),
        }
    }
}

/// Acra's `LogEntryIntegrityCalculator`.
struct Chain {
    key: Zeroizing<[u8; 32]>,
    prev: Option<[u8; 32]>,
}

impl Chain {
    fn start(audit_key: &[u8; 32]) -> Self {
        Self {
            key: Zeroizing::new(Sha256::digest(audit_key).into()),
            prev: None,
        }
    }

    /// `HMAC-SHA256(k, data || prev)`, the raw value that is chained.
    fn mac(&self, data: &[u8]) -> [u8; 32] {
        // Invariant: HMAC accepts keys of any length.
        let mut mac = <Hmac<Sha256> as KeyInit>::new_from_slice(&*self.key)
            .unwrap_or_else(|_| unreachable!("HMAC takes any key length"));
        mac.update(data);
        if let Some(prev) = &self.prev {
            mac.update(prev);
        }
        mac.finalize().into_bytes().into()
    }

    /// Checks one entry; on a match, advances the chain.
    fn verify(&mut self, entry: &Entry<'_>) -> bool {
        let candidates = std::iter::once(&*entry.data).chain(entry.legacy_data.as_deref());
        for data in candidates {
            let h = self.mac(data);
            let ic: [u8; 32] = Sha256::digest(h).into();
            if bool::from(entry.integrity.as_slice().ct_eq(&ic)) {
                self.prev = Some(h);
                *self.key = Sha256::digest(self.key.as_slice()).into();
                return true;
            }
        }
        false
    }
}

/// The last verified entry.
struct Last {
    end: bool,
    location: AcraLocation,
}

/// One verification run.
struct Session<'v> {
    verifier: &'v AcraVerifier,
    chain: Chain,
    last: Option<Last>,
    report: AcraReport,
}

type Flow = std::ops::ControlFlow<()>;

impl<'v> Session<'v> {
    fn new(verifier: &'v AcraVerifier) -> Self {
        Self {
            verifier,
            chain: Chain::start(&verifier.key),
            last: None,
            report: AcraReport::default(),
        }
    }

    /// Reads one file, line by line.
    fn read(&mut self, path: &Path, reader: impl Read) -> Result<Flow, AcraError> {
        self.report.files += 1;
        let limit = self.verifier.max_line_len;
        let mut reader = BufReader::with_capacity(64 << 10, reader);
        let mut buf = Vec::new();
        let mut line_no = 0u64;
        loop {
            buf.clear();
            let io_err = |source| AcraError::Io {
                path: path.to_owned(),
                source,
            };
            let read = (&mut reader)
                .take(u64::try_from(limit).unwrap_or(u64::MAX).saturating_add(1))
                .read_until(b'\n', &mut buf)
                .map_err(io_err)?;
            if read == 0 {
                return Ok(Flow::Continue(()));
            }
            line_no += 1;
            if buf.last() == Some(&b'\n') {
                buf.pop();
            } else if buf.len() > limit {
                return Err(AcraError::LineTooLong {
                    path: path.to_owned(),
                    line: line_no,
                    limit,
                });
            }
            // bufio.ScanLines drops one trailing CR.
            if buf.last() == Some(&b'\r') {
                buf.pop();
            }
            self.report.lines += 1;
            if buf.is_empty() {
                continue;
            }
            let location = || AcraLocation {
                file: path.to_owned(),
                line: line_no,
            };
            if self.line(&buf, location).is_break() {
                return Ok(Flow::Break(()));
            }
        }
    }

    fn line(&mut self, line: &[u8], location: impl Fn() -> AcraLocation) -> Flow {
        let entry = match entry::parse(self.verifier.format, line) {
            Line::Signed(entry) => entry,
            // Only inside a chain, that is after a verified entry that is not
            // an end: outside chains are the lines Acra writes before it
            // loads the key.
            Line::Unsigned
                if self.verifier.strict && self.last.as_ref().is_some_and(|l| !l.end) =>
            {
                return self.fail(
                    Some(location()),
                    AcraFailureKind::Unsigned,
                    "no integrity check inside a chain",
                );
            }
            Line::Unsigned => {
                self.warn(Some(location()), AcraWarningKind::Unsigned);
                return Flow::Continue(());
            }
            Line::Malformed(message) => {
                return self.fail(Some(location()), AcraFailureKind::Malformed, &message);
            }
        };
        if entry.new_chain {
            if self.last.as_ref().is_some_and(|last| !last.end) {
                return self.fail(
                    Some(location()),
                    AcraFailureKind::ChainEndMissing,
                    "end of audit log chain is missing",
                );
            }
            self.chain = Chain::start(&self.verifier.key);
        }
        if !self.chain.verify(&entry) {
            return self.fail(
                Some(location()),
                AcraFailureKind::IntegrityMismatch,
                "integrity doesn't match",
            );
        }
        if entry.new_chain || self.last.is_none() {
            self.report.chains += 1;
        }
        self.report.entries_verified += 1;
        self.last = Some(Last {
            end: entry.end,
            location: location(),
        });
        Flow::Continue(())
    }

    fn warn(&mut self, location: Option<AcraLocation>, kind: AcraWarningKind) {
        self.report.warnings_total += 1;
        if self.report.warnings.len() < self.verifier.max_warnings {
            self.report.warnings.push(AcraWarning { location, kind });
        }
    }

    fn fail(
        &mut self,
        location: Option<AcraLocation>,
        kind: AcraFailureKind,
        message: &str,
    ) -> Flow {
        self.report.failure = Some(AcraFailure {
            location,
            kind,
            message: message.to_owned(),
        });
        Flow::Break(())
    }

    /// Acra's checks once the input is exhausted.
    fn finish(mut self) -> AcraReport {
        if self.report.failure.is_some() {
            return self.report;
        }
        let strict = self.verifier.strict;
        match self.last.take() {
            None if strict => {
                let _ = self.fail(
                    None,
                    AcraFailureKind::NoEntries,
                    "empty source of audit log",
                );
            }
            None => self.warn(None, AcraWarningKind::Empty),
            Some(last) if !last.end && strict => {
                let _ = self.fail(
                    Some(last.location),
                    AcraFailureKind::FinalEndMissing,
                    "missing end of final audit log chain",
                );
            }
            Some(last) if !last.end => {
                self.warn(Some(last.location), AcraWarningKind::FinalEndMissing);
            }
            Some(_) => {}
        }
        self.report
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn debug_and_errors_never_show_the_key() {
        let hex = "a1b2c3d4e5f60718293a4b5c6d7e8f90a1b2c3d4e5f60718293a4b5c6d7e8f9f";
        let verifier = AcraVerifier::from_key_hex(AcraFormat::Json, hex).expect("key");
        let debug = format!("{verifier:?}");
        assert!(!debug.contains("a1b2") && !debug.contains("161"), "{debug}");
        let err = AcraVerifier::from_key_hex(AcraFormat::Json, hex.get(1..).unwrap_or_default())
            .expect_err("short key");
        assert!(!err.to_string().contains("1b2c"), "{err}");
        let err = AcraVerifier::from_key_hex(AcraFormat::Json, &hex.replace('f', "g"))
            .expect_err("not hex");
        assert!(matches!(err, AcraError::InvalidKey(_)));
    }

    #[test]
    fn formats_parse_case_insensitively() {
        assert_eq!("CEF".parse::<AcraFormat>().expect("cef"), AcraFormat::Cef);
        assert_eq!(
            "Json".parse::<AcraFormat>().expect("json"),
            AcraFormat::Json
        );
        assert_eq!(
            "plaintext".parse::<AcraFormat>().expect("text"),
            AcraFormat::Plaintext
        );
        assert!("syslog".parse::<AcraFormat>().is_err());
    }

    #[test]
    fn chain_follows_the_algorithm() {
        // Recompute two entries by hand with the primitives.
        let key = [7u8; 32];
        let k0: [u8; 32] = Sha256::digest(key).into();
        let h0: [u8; 32] = {
            let mut m = <Hmac<Sha256> as KeyInit>::new_from_slice(&k0).expect("key");
            m.update(b"first");
            m.finalize().into_bytes().into()
        };
        let k1: [u8; 32] = Sha256::digest(k0).into();
        let h1: [u8; 32] = {
            let mut m = <Hmac<Sha256> as KeyInit>::new_from_slice(&k1).expect("key");
            m.update(b"second");
            m.update(&h0);
            m.finalize().into_bytes().into()
        };
        let hexify = |h: [u8; 32]| -> String {
            Sha256::digest(h)
                .iter()
                .map(|b| format!("{b:02x}"))
                .collect()
        };
        let log = format!(
            "first integrity={} chain=new\r\n\nsecond integrity={}\n",
            hexify(h0),
            hexify(h1)
        );
        let verifier = AcraVerifier::new(AcraFormat::Plaintext, key);
        let report = verifier
            .verify_readers([(PathBuf::from("mem"), log.as_bytes())])
            .expect("reads");
        assert!(report.is_verified(), "{report}");
        assert_eq!(
            (report.entries_verified, report.chains, report.lines),
            (2, 1, 3)
        );
        assert_eq!(report.warnings[0].kind, AcraWarningKind::FinalEndMissing);
        assert_eq!(
            report.warnings[0].location.as_ref().map(|l| l.line),
            Some(3)
        );

        let swapped = log.replace("second", "secont");
        let report = verifier
            .verify_readers([(PathBuf::from("mem"), swapped.as_bytes())])
            .expect("reads");
        let failure = report.failure.expect("tampered");
        assert_eq!(failure.kind, AcraFailureKind::IntegrityMismatch);
        assert_eq!(failure.to_string(), "mem:3: integrity doesn't match");
    }

    #[test]
    fn long_lines_are_read_or_refused_loudly() {
        let verifier = AcraVerifier::new(AcraFormat::Plaintext, [0; 32]).max_line_len(100);
        let ok = format!("{}\n{}", "x".repeat(100), "y".repeat(100));
        let report = verifier
            .verify_readers([(PathBuf::from("m"), ok.as_bytes())])
            .expect("ok");
        assert_eq!(report.warnings_total, 3); // two unsigned lines, then an empty log
        let long = format!("a\n{}\n", "x".repeat(101));
        let err = verifier
            .verify_readers([(PathBuf::from("m"), long.as_bytes())])
            .expect_err("too long");
        assert!(
            matches!(
                err,
                AcraError::LineTooLong {
                    line: 2,
                    limit: 100,
                    ..
                }
            ),
            "{err}"
        );
    }

    #[test]
    fn warnings_beyond_the_cap_are_counted() {
        let verifier = AcraVerifier::new(AcraFormat::Plaintext, [0; 32]).max_warnings(2);
        let log = "a\nb\nc\nd\n";
        let report = verifier
            .verify_readers([(PathBuf::from("m"), log.as_bytes())])
            .expect("ok");
        assert_eq!((report.warnings.len(), report.warnings_total), (2, 5));
        assert_eq!(
            report.to_string(),
            "warning: m:1: no integrity check for line\n\
             warning: m:2: no integrity check for line\n\
             warning: 3 more warnings not listed\n\
             0 entries in 0 chains verified (4 lines in 1 files, 5 warnings)\n\
             integrity check successful"
        );
    }

    #[test]
    fn empty_input_warns_or_fails_when_strict() {
        let verifier = AcraVerifier::new(AcraFormat::Json, [0; 32]);
        let report = verifier
            .verify_readers([(PathBuf::from("m"), &b"\n\n"[..])])
            .expect("ok");
        assert!(report.is_verified());
        assert_eq!(report.warnings[0].kind, AcraWarningKind::Empty);
        let report = verifier
            .strict(true)
            .verify_readers([(PathBuf::from("m"), &b""[..])])
            .expect("ok");
        assert_eq!(
            report.failure.map(|f| f.kind),
            Some(AcraFailureKind::NoEntries)
        );
        let none: [(PathBuf, &[u8]); 0] = [];
        let verifier = AcraVerifier::new(AcraFormat::Json, [0; 32]);
        assert!(matches!(
            verifier.verify_readers(none),
            Err(AcraError::NoFiles)
        ));
        assert!(matches!(verifier.verify(&[]), Err(AcraError::NoFiles)));
    }
}
