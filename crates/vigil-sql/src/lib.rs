//! vigil's view of SQL: a PostgreSQL-compatible [`Lexer`], and the
//! [`Redactor`] that turns a query string into what vigil logs, a
//! [`Redacted`] value: the text with every literal replaced by a `$n`
//! placeholder, a fingerprint stable across literal values, and each
//! statement's [`StatementClass`].
//!
//! ```
//! use vigil_sql::{redact, StatementClass};
//!
//! let r = redact("SELECT * FROM users WHERE email = 'ann@example.com' AND id = 42 -- hi\n");
//! assert_eq!(r.text, "SELECT * FROM users WHERE email = $1 AND id = $2 /**/");
//! assert_eq!(r.statements[0].class, StatementClass::Read);
//! assert!(r.error.is_none());
//!
//! // Other values, case, spacing and comments: the same fingerprint.
//! let again = redact("select *  from users where email='bob@example.org' and id=7");
//! assert_eq!(again.fingerprint, r.fingerprint);
//!
//! // An unterminated string: everything from it on is masked.
//! let bad = redact("UPDATE users SET password = 'hunter2; SELECT 1");
//! assert_eq!(bad.text, "UPDATE users SET password = $?");
//! assert!(bad.error.is_some());
//! ```
//!
//! For many statements, keep one [`Redactor`] and one [`Redacted`] and call
//! [`Redactor::redact_into`]: once its buffers have grown to the largest
//! query string seen, it allocates nothing (but to decode `U&` constants
//! and identifiers, which are rare).
//!
//! # Redaction
//!
//! The redacted text keeps the statement's structure and nothing else:
//!
//! - **Literals** become placeholders: string constants in every form
//!   (`'…'`, `E'…'`, `U&'…'` with its `UESCAPE`, `N'…'`, `$$…$$`,
//!   `$tag$…$tag$`, continued over lines), bit strings (`B'…'`, `X'…'`),
//!   numbers (`42`, `1.5e3`, `0x1F`, `1_000`). A minus sign where an operand
//!   is expected belongs to the number (`x = -5` gives `x = $1`), as in
//!   PostgreSQL's grammar. The values of `SET name = value` and
//!   `ALTER … SET name TO value` are literals even when they are bare words
//!   (`SET app.token = abc123`), except `DEFAULT` and `LOCAL`. `TRUE`,
//!   `FALSE` and `NULL` are keywords and stay; so does a type name before a
//!   string (`DATE $1`).
//! - **Placeholders** are numbered after the highest `$n` parameter already
//!   in the statement, in order of appearance: `WHERE a = $1 AND b = 'x'`
//!   becomes `WHERE a = $1 AND b = $2`, so bind parameters keep their
//!   numbers and no two values share one. pg_stat_statements numbers the
//!   same way. Each statement of a query string numbers its own.
//! - **Comments** become [`COMMENT_MARK`] (`/**/`), a run of them one mark:
//!   a comment may hold a secret, but that there was one (after a literal,
//!   or after an injected `;`) is worth seeing.
//! - **Whitespace** becomes one space where the input had any, and none
//!   elsewhere, unless two tokens would run together.
//! - **Identifiers** and keywords are kept as written. One that holds a
//!   character unfit for a log line (a control character such as a newline,
//!   a line separator, a bidi control) is written as the equivalent
//!   `U&"…"` with escapes. The text never holds a newline.
//! - **Fail closed.** On any lexer error (an unterminated quote, dollar
//!   quote, identifier or comment, a bad escape, a malformed number) the
//!   text keeps the statement up to the faulty token and then ends with
//!   [`MASK`] (`$?`); the rest of the input, later statements included, is
//!   dropped, and [`Redacted::error`] says what went wrong. PostgreSQL lexes
//!   the whole query string before running any of it, so none of it ran.
//!
//! Redaction reads the input as PostgreSQL does with
//! `standard_conforming_strings` on; a proxy must tell the [`Redactor`]
//! when a session turns it off, because the two settings end some strings
//! at different places. Bytes that are not UTF-8 are replaced before lexing
//! ([`redact_bytes`]); ASCII bytes stay where they are, which is exact for
//! UTF-8 and for the server encodings PostgreSQL supports, whose multi-byte
//! characters never hold ASCII bytes.
//!
//! # Fingerprint
//!
//! A statement's fingerprint is 64-bit FNV-1a (offset basis
//! `0xcbf29ce484222325`, prime `0x100000001b3`) over its tokens, where each
//! token contributes:
//!
//! ```text
//! identifier or keyword    name 0xFF   unquoted names ASCII-lower-cased; quoted ones as the
//!                                      name they stand for ("a""b" is a"b, U& escapes decoded)
//! any other token          text 0xFE   operators, punctuation, \ { } $
//! literal or parameter     0xFD        every value alike, $n parameters included
//! ```
//!
//! (0xFD, 0xFE and 0xFF never occur in UTF-8, so the stream is unambiguous.)
//! Whitespace and comments contribute nothing. Three lists collapse, so
//! that their length does not matter:
//!
//! - `IN (P, P, …)`, P a literal or parameter, hashes as `IN (P)`;
//! - `ARRAY[P, P, …]` hashes as `ARRAY[P]`;
//! - after `VALUES`, rows with the first row's shape (the same tokens,
//!   any values) contribute nothing after the first.
//!
//! A masked statement ends with the tokens `$` and `?` of its mask. A query
//! string's fingerprint is its one statement's, or else FNV-1a over each
//! statement's fingerprint as 8 little-endian bytes. So the fingerprint is
//! the same across literal values, parameters versus inline values (the
//! extended and simple protocols), whitespace, comments and keyword case;
//! redacting the redacted text gives the same text and fingerprint. These
//! rules are part of vigil's log format: a change is a breaking change, and
//! the tests pin known values.
//!
//! # Statement classes
//!
//! [`StatementClass`] follows pgaudit's classes; its documentation has the
//! rules. Statements are split at `;` outside parentheses and outside
//! `BEGIN ATOMIC … END` bodies, as psql splits them.

#![forbid(unsafe_code)]
#![deny(missing_docs)]

mod class;
mod error;
mod fingerprint;
mod items;
mod keywords;
mod lexer;
mod message;
mod redact;

pub use class::StatementClass;
pub use error::LexError;
pub use lexer::{Lexer, Token, TokenKind};
pub use message::redact_message;
pub use redact::{COMMENT_MARK, MASK, Redacted, Redactor, StatementInfo};

/// Redacts one query string. See the [crate documentation](crate) for the
/// rules; use a [`Redactor`] to redact many without allocating.
pub fn redact(sql: &str) -> Redacted {
    Redactor::new().redact(sql)
}

/// Redacts a query string received as bytes: invalid UTF-8 becomes U+FFFD,
/// ASCII stays where it is.
pub fn redact_bytes(sql: &[u8]) -> Redacted {
    let mut out = Redacted::default();
    Redactor::new().redact_bytes_into(sql, &mut out);
    out
}

/// The fingerprint of a query string, as [`Redacted::fingerprint`].
pub fn fingerprint(sql: &str) -> u64 {
    redact(sql).fingerprint
}

/// Redacts `data` and panics if any of redaction's promises is broken: for
/// the fuzz target `sql_lexer` and the property tests.
///
/// Checks that the text holds no newline; that redacting the text again
/// gives the same text and fingerprint; that after a lexer error the output
/// is the redaction of the input before the error plus the mask, so nothing
/// after the error shows; that no literal of four bytes or more shows
/// unless it also shows once that literal is replaced by `0`; and that
/// [`Redactor::tokens`] are the lexer's tokens but whitespace, up to the
/// same error.
#[doc(hidden)]
pub fn check_redaction(data: &[u8]) {
    let sql = String::from_utf8_lossy(data);
    let mut redactor = Redactor::new();
    let out = redactor.redact(&sql);
    let mut lexed = Vec::new();
    let mut lex_error = None;
    for token in Lexer::new(&sql) {
        match token {
            Ok(t) if t.kind == TokenKind::Whitespace => {}
            Ok(t) => lexed.push(t),
            Err(e) => lex_error = Some(e),
        }
    }
    assert_eq!(redactor.tokens(), lexed, "the redactor's tokens differ");
    assert_eq!(out.error, lex_error, "the redactor's lexer error differs");
    assert!(
        !out.text.contains(['\n', '\r']),
        "newline in {:?}",
        out.text
    );

    let again = redactor.redact(&out.text);
    assert_eq!(again.text, out.text, "redacting the text changed it");
    assert_eq!(
        again.fingerprint, out.fingerprint,
        "redacting the text changed its fingerprint"
    );
    for (a, b) in again.statements.iter().zip(&out.statements) {
        assert_eq!(
            a.fingerprint, b.fingerprint,
            "statement fingerprint changed: {:?}",
            a.text
        );
        assert_eq!(a.class, b.class, "statement class changed: {:?}", a.text);
    }

    let mut literals = 0;
    let mut lexer = Lexer::new(&sql);
    while let Some(token) = lexer.next() {
        let Ok(token) = token else {
            // Fail closed: nothing from the faulty token on shows. (After an
            // error the lexer's offset is the faulty token's start.)
            let before = sql.get(..lexer.offset()).unwrap_or("");
            let head = redactor.redact(before);
            let expected = out.text.strip_suffix(MASK).map(str::trim_end);
            assert_eq!(
                expected,
                Some(head.text.trim_end()),
                "text after the error shows"
            );
            break;
        };
        let text = token.text(&sql);
        if !token.kind.is_literal() || text.len() < 4 || literals >= 8 {
            continue;
        }
        literals += 1;
        if out.text.contains(text) {
            let mut other = String::with_capacity(sql.len() + 3);
            other.push_str(sql.get(..token.start).unwrap_or(""));
            other.push_str(" 0 ");
            other.push_str(sql.get(token.end..).unwrap_or(""));
            assert!(
                redactor.redact(&other).text.contains(text),
                "literal {text:?} shows in {:?}",
                out.text
            );
        }
    }
}
