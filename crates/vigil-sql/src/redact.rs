//! Redaction: the query string as vigil logs it.

use std::borrow::Cow;
use std::fmt::Write as _;

use crate::class::{StatementClass, classify};
use crate::error::LexError;
use crate::fingerprint::{self, Stream};
use crate::items::{self, Item, Stmt};
use crate::lexer::{Token, TokenKind, is_word_byte, logical_content, unicode_unescape};

/// What replaces the rest of a statement after a lexer error.
pub const MASK: &str = "$?";

/// What replaces each comment (a run of comments counts as one).
pub const COMMENT_MARK: &str = "/**/";

/// A redacted query string: the text to log, its fingerprint, its
/// statements, and the lexer error that cut it short, if any.
///
/// Reuse one with [`Redactor::redact_into`] to redact without allocating.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct Redacted {
    /// The whole query string redacted and normalized: each statement's
    /// [`text`](StatementInfo::text), each followed by `;` where the input
    /// had one, separated by a space; a comment outside any statement (as
    /// after an injected `; --`) leaves its [`COMMENT_MARK`]. Never holds a
    /// newline.
    pub text: String,
    /// The fingerprint of the whole query string: the one statement's
    /// fingerprint when there is one, otherwise FNV-1a over the statements'
    /// fingerprints (8 bytes each, little-endian).
    pub fingerprint: u64,
    /// The statements, in order. Empty statements (`;;`, a lone comment)
    /// are left out; a query string of only whitespace has none.
    pub statements: Vec<StatementInfo>,
    /// The lexer error that masked the rest of the input, if any. Its
    /// offset is in the input; its message holds none of the input.
    pub error: Option<LexError>,
}

/// One statement of a redacted query string.
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub struct StatementInfo {
    /// The statement redacted and normalized, without its `;`.
    pub text: String,
    /// Its fingerprint: the same for the same statement with other literal
    /// values, whitespace, comments or keyword case.
    pub fingerprint: u64,
    /// What it does.
    pub class: StatementClass,
    /// A lexer error masked the end of this statement (and everything
    /// after it in the query string).
    pub masked: bool,
}

impl StatementInfo {
    fn empty() -> Self {
        Self {
            text: String::new(),
            fingerprint: 0,
            class: StatementClass::Misc,
            masked: false,
        }
    }
}

/// Redacts query strings, reusing its buffers from one call to the next.
///
/// ```
/// use vigil_sql::{Redacted, Redactor};
///
/// let mut redactor = Redactor::new();
/// let mut out = Redacted::default();
/// for aid in [1, 48213] {
///     redactor.redact_into(&format!("SELECT abalance FROM pgbench_accounts WHERE aid = {aid}"), &mut out);
///     assert_eq!(out.text, "SELECT abalance FROM pgbench_accounts WHERE aid = $1");
/// }
/// ```
#[derive(Clone, Debug)]
pub struct Redactor {
    items: Vec<Item>,
    stmts: Vec<Stmt>,
    tokens: Vec<Token>,
    scratch: String,
    name: String,
    standard_strings: bool,
}

impl Default for Redactor {
    fn default() -> Self {
        Self::new()
    }
}

impl Redactor {
    /// A redactor for sessions with `standard_conforming_strings` on.
    pub fn new() -> Self {
        Self {
            items: Vec::new(),
            stmts: Vec::new(),
            tokens: Vec::new(),
            scratch: String::new(),
            name: String::new(),
            standard_strings: true,
        }
    }

    /// Follows the session's `standard_conforming_strings` (see
    /// [`Lexer::standard_conforming_strings`](crate::Lexer::standard_conforming_strings)).
    /// A proxy should set it from the server's ParameterStatus messages.
    pub fn set_standard_conforming_strings(&mut self, on: bool) {
        self.standard_strings = on;
    }

    /// The tokens of the query string redacted last, as the [`Lexer`]
    /// yields them for it (under this redactor's
    /// `standard_conforming_strings`) but without whitespace: comments and
    /// every other token, in order, up to the lexer error if there was
    /// one ([`Redacted::error`]). For a detector that reads the same
    /// query string, so that it is lexed once.
    ///
    /// [`Lexer`]: crate::Lexer
    ///
    /// ```
    /// use vigil_sql::{Lexer, Redactor, TokenKind};
    ///
    /// let sql = "SELECT 1 -- note";
    /// let mut redactor = Redactor::new();
    /// redactor.redact(sql);
    /// let lexed: Vec<_> = Lexer::new(sql)
    ///     .map(Result::unwrap)
    ///     .filter(|t| t.kind != TokenKind::Whitespace)
    ///     .collect();
    /// assert_eq!(redactor.tokens(), lexed);
    /// ```
    pub fn tokens(&self) -> &[Token] {
        &self.tokens
    }

    /// Redacts `sql` into a new [`Redacted`].
    pub fn redact(&mut self, sql: &str) -> Redacted {
        let mut out = Redacted::default();
        self.redact_into(sql, &mut out);
        out
    }

    /// Redacts bytes as received from a client: invalid UTF-8 sequences
    /// become U+FFFD first. ASCII bytes are kept as they are, so quotes,
    /// backslashes and comment marks are seen where PostgreSQL sees them.
    pub fn redact_bytes_into(&mut self, sql: &[u8], out: &mut Redacted) {
        match String::from_utf8_lossy(sql) {
            Cow::Borrowed(s) => self.redact_into(s, out),
            Cow::Owned(s) => self.redact_into(&s, out),
        }
    }

    /// Redacts `sql` into `out`, reusing `out`'s buffers.
    pub fn redact_into(&mut self, sql: &str, out: &mut Redacted) {
        out.text.clear();
        out.error = items::scan(
            sql,
            self.standard_strings,
            &mut self.items,
            &mut self.stmts,
            &mut self.tokens,
        );
        let mut index = 0;
        for stmt in &self.stmts {
            if stmt.comment_only {
                // A comment outside any statement is not one, but that it
                // is there (after an injected `;`, say) is worth seeing.
                push_spaced(&mut out.text, COMMENT_MARK);
                if stmt.terminated {
                    out.text.push(';');
                }
                continue;
            }
            if out.statements.len() <= index {
                out.statements.push(StatementInfo::empty());
            }
            let Some(info) = out.statements.get_mut(index) else {
                break;
            };
            let items = self.items.get(stmt.first..stmt.end).unwrap_or_default();
            info.text.clear();
            write_text(
                sql,
                items,
                stmt,
                &mut info.text,
                &mut self.scratch,
                &mut self.name,
            );
            info.fingerprint = fingerprint_of(sql, items, stmt, &mut self.name);
            info.class = classify(sql, items, stmt);
            info.masked = stmt.masked;
            if !out.text.is_empty() {
                out.text.push(' ');
            }
            out.text.push_str(&info.text);
            if stmt.terminated {
                out.text.push(';');
            }
            index += 1;
        }
        out.statements.truncate(index);
        out.fingerprint = fingerprint::combine(out.statements.iter().map(|s| s.fingerprint));
    }
}

/// Writes the redacted text of a statement's items to `out`.
fn write_text(
    sql: &str,
    items: &[Item],
    stmt: &Stmt,
    out: &mut String,
    scratch: &mut String,
    name: &mut String,
) {
    let b = sql.as_bytes();
    let ascii = sql.is_ascii();
    let mut next = stmt.max_param.saturating_add(1);
    let mut after_mark = false;
    // A span of the input to copy as it is: tokens written unchanged, each
    // separated from the previous by nothing or by one space. Empty when
    // `run_start == run_end`.
    let (mut run_start, mut run_end) = (0, 0);
    for (i, it) in items.iter().enumerate() {
        let verbatim = !it.lit && (ascii && it.tok == TokenKind::Word || is_verbatim(sql, it));
        // Extend the run when the input between it and this token is
        // already what would be written.
        if verbatim
            && !it.comment
            && run_start != run_end
            && (it.start == run_end
                || (it.space && it.start == run_end + 1 && b.get(run_end) == Some(&b' ')))
        {
            run_end = it.end;
            continue;
        }
        if run_start != run_end {
            out.push_str(sql.get(run_start..run_end).unwrap_or(""));
            run_end = run_start;
        }
        if it.comment {
            push_spaced(out, COMMENT_MARK);
            after_mark = true;
        }
        let first = if verbatim {
            b.get(it.start).copied().unwrap_or(0)
        } else if it.lit {
            b'$'
        } else {
            scratch.clear();
            render(sql, it, scratch, name);
            // A `U&"…"` followed by the word UESCAPE would take it as its
            // escape clause: give it its own.
            if scratch.starts_with('U')
                && items.get(i + 1).is_some_and(|n| n.is_word(sql, b"uescape"))
            {
                scratch.push_str(" UESCAPE '\\'");
            }
            scratch.as_bytes().first().copied().unwrap_or(0)
        };
        // Two tokens that would read as one need a space: word characters
        // (`a` `$1`), or quotes (`"a"` `"b"` would be `a"b`).
        let glued = out.as_bytes().last().is_some_and(|&last| {
            (is_word_byte(last) && is_word_byte(first)) || (last == b'"' && first == b'"')
        }) || (first == b'"' && ends_with_unicode_prefix(out));
        if !out.is_empty() && (it.space || after_mark || glued) {
            out.push(' ');
        }
        after_mark = false;
        if verbatim {
            (run_start, run_end) = (it.start, it.end);
        } else if it.lit {
            out.push('$');
            push_u64(out, next);
            next = next.saturating_add(1);
        } else {
            out.push_str(scratch);
        }
    }
    if run_start != run_end {
        out.push_str(sql.get(run_start..run_end).unwrap_or(""));
    }
    if stmt.trailing_comment {
        push_spaced(out, COMMENT_MARK);
    }
    if stmt.masked {
        push_spaced(out, MASK);
    }
}

/// Whether `out` ends with `U&` (any case): a quoted identifier written
/// right after it could read as `U&"…"`. Whether the `U` starts a token
/// depends on what precedes it (`$U` is `$` then `U`, `a$U` one name), so
/// every `U&` gets the space; a space too many changes nothing.
fn ends_with_unicode_prefix(out: &str) -> bool {
    matches!(out.as_bytes(), [.., b'u' | b'U', b'&'])
}

/// Whether a kept token is written as it is in the input: all but
/// identifiers that hold characters unfit for a log line, and `U&"…"`
/// identifiers (written as the plain `"…"` they stand for).
#[inline]
fn is_verbatim(sql: &str, it: &Item) -> bool {
    match it.tok {
        TokenKind::Word | TokenKind::QuotedIdentifier => {
            let text = sql.as_bytes().get(it.start..it.end).unwrap_or_default();
            if text.is_ascii() {
                it.tok == TokenKind::Word
                    || (text.first() == Some(&b'"') && !text.iter().any(u8::is_ascii_control))
            } else {
                (it.tok == TokenKind::Word || text.first() == Some(&b'"'))
                    && !it.text(sql).chars().any(unsafe_char)
            }
        }
        _ => true,
    }
}

/// Writes an identifier that is not written as it is: as the canonical
/// quoted form of the name it stands for.
fn render(sql: &str, it: &Item, out: &mut String, name: &mut String) {
    let text = it.text(sql);
    name.clear();
    if it.tok == TokenKind::QuotedIdentifier {
        quoted_ident_name(text, name);
    } else {
        // PostgreSQL folds unquoted names to lower case (ASCII only).
        name.push_str(text);
        name.make_ascii_lowercase();
    }
    push_quoted_ident(out, name);
}

/// The fingerprint of a statement's items (see the crate documentation):
/// writes its normalized stream to `stream` and hashes it.
fn fingerprint_of(sql: &str, items: &[Item], stmt: &Stmt, name: &mut String) -> u64 {
    let b = sql.as_bytes();
    let mut stream = Stream::new();
    // Items in `unhashed` are collapsed VALUES rows.
    let mut unhashed = (0, 0);
    let mut i = 0;
    while let Some(it) = items.get(i) {
        if i == unhashed.0 && unhashed.1 > i {
            i = unhashed.1;
            continue;
        }
        i += 1;
        if it.is_placeholder() {
            stream.placeholder();
            continue;
        }
        let text = b.get(it.start..it.end).unwrap_or_default();
        match it.tok {
            TokenKind::Word => {
                stream.name_lower(text);
                let list = match text.len() {
                    2 if text.eq_ignore_ascii_case(b"in") => Some((b'(', b')')),
                    5 if text.eq_ignore_ascii_case(b"array") => Some((b'[', b']')),
                    6 if text.eq_ignore_ascii_case(b"values") => {
                        if let Some(rows) = fingerprint::repeated_rows(sql, items, i) {
                            unhashed = rows;
                        }
                        None
                    }
                    _ => None,
                };
                if let Some((open, close)) = list
                    && let Some(end) = fingerprint::placeholder_list(items, i, open, close)
                {
                    stream.symbol(&[open]);
                    stream.placeholder();
                    stream.symbol(&[close]);
                    i = end;
                }
            }
            TokenKind::QuotedIdentifier => {
                name.clear();
                quoted_ident_name(it.text(sql), name);
                stream.name(name.as_bytes());
            }
            _ => stream.symbol(text),
        }
    }
    if stmt.masked {
        // The mask counts as the tokens `$` and `?` it is written as, so
        // the redacted text has the same fingerprint as the input.
        stream.symbol(b"$");
        stream.symbol(b"?");
    }
    stream.finish()
}

fn push_spaced(out: &mut String, s: &str) {
    if !out.is_empty() {
        out.push(' ');
    }
    out.push_str(s);
}

fn push_u64(out: &mut String, mut n: u64) {
    let mut buf = [0u8; 20];
    let mut i = buf.len();
    loop {
        i -= 1;
        buf[i] = b'0' + (n % 10) as u8;
        n /= 10;
        if n == 0 {
            break;
        }
    }
    for &d in &buf[i..] {
        out.push(char::from(d));
    }
}

/// The name a quoted identifier token stands for: `"a""b"` is `a"b`,
/// `U&"d\0061t"` is `dat`. Appends it to `out`.
pub(crate) fn quoted_ident_name(token: &str, out: &mut String) {
    if token.starts_with('"') {
        // `"…"`: undouble the quotes.
        let content = token.get(1..token.len().saturating_sub(1)).unwrap_or("");
        for (k, part) in content.split("\"\"").enumerate() {
            if k > 0 {
                out.push('"');
            }
            out.push_str(part);
        }
        return;
    }
    let chars = logical_content(token, 3, b'"');
    // With a UESCAPE clause the token ends in the one-character string
    // `'c'`, the escape character.
    let escape = if token.ends_with('\'') {
        let inner = token.get(..token.len() - 1).unwrap_or("");
        inner.chars().next_back().unwrap_or('\\')
    } else {
        '\\'
    };
    let start = out.len();
    if unicode_unescape(&chars, escape, |c| out.push(c)).is_err() {
        // The lexer validated the escapes; this is unreachable, but stays
        // safe: a placeholder name, not the raw content.
        out.truncate(start);
        out.push('?');
    }
}

/// Characters never written raw into a log line, even in an identifier:
/// controls (newlines among them), line and paragraph separators, bidi
/// and zero-width format characters.
fn unsafe_char(c: char) -> bool {
    c.is_control()
        || matches!(
            c,
            '\u{200b}'..='\u{200f}'
                | '\u{2028}'..='\u{202e}'
                | '\u{2060}'..='\u{2064}'
                | '\u{2066}'..='\u{2069}'
                | '\u{feff}'
        )
}

/// Writes the identifier `name` quoted: `"name"` with `"` doubled, or,
/// when it holds characters unfit for a log line, `U&"…"` with those as
/// `\XXXX` or `\+XXXXXX` escapes. Both read back as `name`.
fn push_quoted_ident(out: &mut String, name: &str) {
    if !name.chars().any(unsafe_char) {
        out.push('"');
        for c in name.chars() {
            if c == '"' {
                out.push('"');
            }
            out.push(c);
        }
        out.push('"');
        return;
    }
    out.push_str("U&\"");
    for c in name.chars() {
        match c {
            '"' => out.push_str("\"\""),
            '\\' => out.push_str("\\\\"),
            c if unsafe_char(c) => {
                let cp = u32::from(c);
                // Writing to a String cannot fail.
                let _ = if cp > 0xffff {
                    write!(out, "\\+{cp:06X}")
                } else {
                    write!(out, "\\{cp:04X}")
                };
            }
            c => out.push(c),
        }
    }
    out.push('"');
}
