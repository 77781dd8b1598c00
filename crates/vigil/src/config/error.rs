//! [`ConfigError`]: every way a configuration file can be wrong, each
//! rendered as one line `<file>:<line>: <key>: <what is wrong; what to do>`.

use std::fmt::{self, Write as _};
use std::io;
use std::path::{Path, PathBuf};

/// Why a configuration file was rejected.
///
/// Its `Display` is always exactly one line, in the form
/// `<file>:<line>: <key path>: <what is wrong; what to do>`, e.g.
/// `vigil.toml:14: sinks[1].format: unknown format "xml"; expected one of json, text, cef, syslog, ocsf`.
/// A [`Read`](ConfigError::Read) error has neither line nor key, and an error
/// no key can be found for (a syntax error above every key) has no key.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ConfigError {
    /// The file could not be read.
    #[error("{}: cannot read the file: {}; check the path and its permissions", one_line(&.file.display().to_string()), one_line(&.source.to_string()))]
    Read {
        /// The file.
        file: PathBuf,
        /// What the operating system said.
        source: io::Error,
    },
    /// The file is not valid TOML, or not UTF-8.
    #[error("{}", render(.file, *.line, .key.as_deref(), .message))]
    Syntax {
        /// The file.
        file: PathBuf,
        /// 1-based line of the error.
        line: usize,
        /// The nearest enclosing key or table, when one can be told.
        key: Option<String>,
        /// What is wrong and what to do.
        message: String,
    },
    /// A key is unknown, or a value has the wrong type.
    #[error("{}", render(.file, *.line, .key.as_deref(), .message))]
    Schema {
        /// The file.
        file: PathBuf,
        /// 1-based line of the offending key or value.
        line: usize,
        /// The key path, e.g. `sinks[1].format`.
        key: Option<String>,
        /// What is wrong and what to do.
        message: String,
    },
    /// A value is well formed but not allowed: an unknown format, a duplicate
    /// sink name, a missing `path`…
    #[error("{}", render(.file, *.line, .key.as_deref(), .message))]
    Invalid {
        /// The file.
        file: PathBuf,
        /// 1-based line of the offending key, or of the table missing it.
        line: usize,
        /// The key path, e.g. `sinks[1].include[2]`.
        key: Option<String>,
        /// What is wrong and what to do.
        message: String,
    },
}

impl ConfigError {
    /// The configuration file, as it was named to [`load`](super::load) or
    /// [`parse`](super::parse).
    pub fn file(&self) -> &Path {
        match self {
            ConfigError::Read { file, .. }
            | ConfigError::Syntax { file, .. }
            | ConfigError::Schema { file, .. }
            | ConfigError::Invalid { file, .. } => file,
        }
    }

    /// The 1-based line of the error; `None` when the file could not be read.
    pub fn line(&self) -> Option<usize> {
        match self {
            ConfigError::Read { .. } => None,
            ConfigError::Syntax { line, .. }
            | ConfigError::Schema { line, .. }
            | ConfigError::Invalid { line, .. } => Some(*line),
        }
    }

    /// The key path of the error, e.g. `sinks[1].include[2]`.
    pub fn key(&self) -> Option<&str> {
        match self {
            ConfigError::Read { .. } => None,
            ConfigError::Syntax { key, .. }
            | ConfigError::Schema { key, .. }
            | ConfigError::Invalid { key, .. } => key.as_deref(),
        }
    }

    /// What is wrong and what to do, without file, line and key.
    pub fn message(&self) -> String {
        match self {
            ConfigError::Read { source, .. } => {
                format!("cannot read the file: {source}; check the path and its permissions")
            }
            ConfigError::Syntax { message, .. }
            | ConfigError::Schema { message, .. }
            | ConfigError::Invalid { message, .. } => message.clone(),
        }
    }
}

fn render(file: &Path, line: usize, key: Option<&str>, message: &str) -> String {
    let mut s = String::new();
    let _ = write!(s, "{}:{line}: ", one_line(&file.display().to_string()));
    if let Some(key) = key {
        s.push_str(&one_line(key));
        s.push_str(": ");
    }
    s.push_str(&one_line(message));
    s
}

/// Escapes control characters so the text cannot break the line.
fn one_line(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            '\t' => out.push_str("\\t"),
            c if c.is_control() || c == '\u{2028}' || c == '\u{2029}' => {
                let _ = write!(out, "\\u{{{:x}}}", u32::from(c));
            }
            c => out.push(c),
        }
    }
    out
}

/// A path to a key: `sinks[1].include[2]`.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub(super) struct KeyPath(pub(super) Vec<Seg>);

/// One step of a [`KeyPath`].
#[derive(Clone, Debug, PartialEq, Eq)]
pub(super) enum Seg {
    /// A table key.
    Key(String),
    /// An array index, 0-based.
    Index(usize),
}

impl KeyPath {
    /// The empty path, the document itself.
    pub(super) fn root() -> KeyPath {
        KeyPath(Vec::new())
    }

    /// This path followed by a key.
    pub(super) fn key(&self, key: &str) -> KeyPath {
        let mut p = self.clone();
        p.0.push(Seg::Key(key.to_owned()));
        p
    }

    /// This path followed by an array index.
    pub(super) fn index(&self, i: usize) -> KeyPath {
        let mut p = self.clone();
        p.0.push(Seg::Index(i));
        p
    }

    /// The rendered path, `None` for the document itself.
    pub(super) fn render(&self) -> Option<String> {
        (!self.0.is_empty()).then(|| self.to_string())
    }
}

impl fmt::Display for KeyPath {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (i, seg) in self.0.iter().enumerate() {
            match seg {
                Seg::Index(n) => write!(f, "[{n}]")?,
                Seg::Key(k) => {
                    if i > 0 {
                        f.write_str(".")?;
                    }
                    let bare = !k.is_empty()
                        && k.bytes()
                            .all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'-');
                    if bare {
                        f.write_str(k)?
                    } else {
                        write!(f, "{k:?}")?
                    }
                }
            }
        }
        Ok(())
    }
}

/// A validation failure before it is given a file and line.
#[derive(Debug)]
pub(super) struct Invalid {
    pub(super) path: KeyPath,
    pub(super) message: String,
}

impl Invalid {
    pub(super) fn new(path: KeyPath, message: impl Into<String>) -> Invalid {
        Invalid {
            path,
            message: message.into(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn key_paths_use_dots_and_indexes() {
        let p = KeyPath::root()
            .key("sinks")
            .index(1)
            .key("include")
            .index(2);
        assert_eq!(p.to_string(), "sinks[1].include[2]");
        assert_eq!(KeyPath::root().key("a.b").key("c").to_string(), "\"a.b\".c");
        assert_eq!(KeyPath::root().render(), None);
    }

    #[test]
    fn control_characters_never_break_the_line() {
        let e = ConfigError::Invalid {
            file: PathBuf::from("a\nb.toml"),
            line: 3,
            key: Some("x\ny".into()),
            message: "bad\r\nvalue\u{7}".into(),
        };
        assert_eq!(e.to_string(), "a\\nb.toml:3: x\\ny: bad\\r\\nvalue\\u{7}");
    }
}
