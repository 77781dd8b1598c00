//! The lexer's one error type.

use std::fmt;

/// Why the lexer stopped: the input is not a query PostgreSQL would accept.
///
/// Each variant carries the byte offset in the input where the problem
/// starts. The message never quotes the input, so it is safe to log: the
/// text after an error may be a secret the lexer could not delimit.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum LexError {
    /// An invalid escape: `\u` or `\U` with too few hex digits, an invalid
    /// code point or a lone UTF-16 surrogate in `E'…'`, `U&'…'` or `U&"…"`,
    /// or a `UESCAPE` not followed by a valid one-character string.
    BadEscape {
        /// Byte offset of the escape.
        offset: usize,
    },
    /// A numeric constant with trailing junk (`123abc`, `1e`, `1_`) or a
    /// radix prefix without digits (`0x`).
    BadNumber {
        /// Byte offset of the number.
        offset: usize,
    },
    /// A positional parameter with trailing junk, such as `$1abc`.
    BadParameter {
        /// Byte offset of the `$`.
        offset: usize,
    },
    /// A control character (other than whitespace) outside any constant,
    /// identifier or comment, or a NUL in a quoted identifier. PostgreSQL
    /// rejects the query.
    ControlCharacter {
        /// Byte offset of the character.
        offset: usize,
    },
    /// A zero-length quoted identifier, `""`.
    EmptyIdentifier {
        /// Byte offset of the opening quote.
        offset: usize,
    },
    /// A `U&'…'` string while `standard_conforming_strings` is off.
    UnicodeStringNotAllowed {
        /// Byte offset of the `U&`.
        offset: usize,
    },
    /// A `/*` comment without its closing `*/` (nesting counts).
    UnterminatedComment {
        /// Byte offset of the opening `/*`.
        offset: usize,
    },
    /// A `$tag$` string without its closing `$tag$`.
    UnterminatedDollarString {
        /// Byte offset of the opening delimiter.
        offset: usize,
    },
    /// A `"…"` identifier without its closing quote.
    UnterminatedIdentifier {
        /// Byte offset of the opening quote.
        offset: usize,
    },
    /// A string constant of any form (`'…'`, `E'…'`, `U&'…'`, `N'…'`,
    /// `B'…'`, `X'…'`) without its closing quote.
    UnterminatedString {
        /// Byte offset of the constant.
        offset: usize,
    },
}

impl LexError {
    /// Byte offset in the input where the problem starts.
    pub fn offset(&self) -> usize {
        match *self {
            Self::BadEscape { offset }
            | Self::BadNumber { offset }
            | Self::BadParameter { offset }
            | Self::ControlCharacter { offset }
            | Self::EmptyIdentifier { offset }
            | Self::UnicodeStringNotAllowed { offset }
            | Self::UnterminatedComment { offset }
            | Self::UnterminatedDollarString { offset }
            | Self::UnterminatedIdentifier { offset }
            | Self::UnterminatedString { offset } => offset,
        }
    }

    /// A short, stable name for the kind of error, for event fields and
    /// metrics labels: `bad_escape`, `unterminated_string`, …
    pub fn name(&self) -> &'static str {
        match self {
            Self::BadEscape { .. } => "bad_escape",
            Self::BadNumber { .. } => "bad_number",
            Self::BadParameter { .. } => "bad_parameter",
            Self::ControlCharacter { .. } => "control_character",
            Self::EmptyIdentifier { .. } => "empty_identifier",
            Self::UnicodeStringNotAllowed { .. } => "unicode_string_not_allowed",
            Self::UnterminatedComment { .. } => "unterminated_comment",
            Self::UnterminatedDollarString { .. } => "unterminated_dollar_string",
            Self::UnterminatedIdentifier { .. } => "unterminated_identifier",
            Self::UnterminatedString { .. } => "unterminated_string",
        }
    }
}

impl fmt::Display for LexError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let what = match self {
            Self::BadEscape { .. } => "invalid escape in a string or identifier",
            Self::BadNumber { .. } => "trailing junk after numeric literal",
            Self::BadParameter { .. } => "trailing junk after parameter",
            Self::ControlCharacter { .. } => "unexpected control character",
            Self::EmptyIdentifier { .. } => "zero-length delimited identifier",
            Self::UnicodeStringNotAllowed { .. } => {
                "U&'…' string while standard_conforming_strings is off"
            }
            Self::UnterminatedComment { .. } => "unterminated /* comment",
            Self::UnterminatedDollarString { .. } => "unterminated dollar-quoted string",
            Self::UnterminatedIdentifier { .. } => "unterminated quoted identifier",
            Self::UnterminatedString { .. } => "unterminated quoted string",
        };
        write!(f, "{what} at byte {}", self.offset())
    }
}

impl std::error::Error for LexError {}
