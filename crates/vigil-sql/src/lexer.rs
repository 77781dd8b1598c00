//! A PostgreSQL-compatible lexer, written from the rules of PostgreSQL's
//! `src/backend/parser/scan.l` (version 16 and later) and of `parser.c` for
//! `UESCAPE`.
//!
//! The lexer works on bytes. Every byte of 0x80 and above is an identifier
//! character, as in PostgreSQL, so token boundaries always fall on ASCII
//! bytes and every token is valid UTF-8 when the input is.

use crate::error::LexError;

/// One token: its kind and its byte range in the input.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct Token {
    /// What the token is.
    pub kind: TokenKind,
    /// Byte offset of the token's first byte.
    pub start: usize,
    /// Byte offset just past the token's last byte.
    pub end: usize,
}

impl Token {
    /// The token's text in `src`, the string it was lexed from.
    pub fn text<'a>(&self, src: &'a str) -> &'a str {
        src.get(self.start..self.end).unwrap_or("")
    }
}

/// What a token is.
///
/// PostgreSQL's lexer does not tell keywords from identifiers (the parser
/// does, and most keywords may be identifiers), so neither does this one:
/// both are a [`Word`](TokenKind::Word). Compare words with
/// [`str::eq_ignore_ascii_case`], as PostgreSQL folds unquoted names.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum TokenKind {
    /// A bit-string constant, `B'0101'`.
    BitString,
    /// A block comment, `/* … */`, nested comments included.
    BlockComment,
    /// A dollar-quoted string constant, `$$…$$` or `$tag$…$tag$`.
    DollarString,
    /// An escape string constant, `E'…'`, with backslash escapes.
    EscapeString,
    /// A hexadecimal bit-string constant, `X'1F'`.
    HexString,
    /// A line comment, from `--` to the end of the line (the newline is not
    /// part of it).
    LineComment,
    /// A national character string constant, `N'…'`.
    NationalString,
    /// A numeric constant: `42`, `1_000`, `3.14`, `.5`, `6.02e23`, `0x1F`,
    /// `0o17`, `0b101`. A sign is a separate operator.
    Number,
    /// An operator: a run of `+ - * / < > = ~ ! @ # % ^ & | ` ?`, cut as
    /// PostgreSQL cuts it (`=-` is two operators, `->>` is one), and `::`,
    /// `:=`.
    Operator,
    /// A character PostgreSQL passes to the parser on its own and no rule
    /// uses: `\`, `{`, `}`, or a `$` that starts neither a parameter nor a
    /// dollar quote.
    Other,
    /// A positional parameter, `$1`.
    Param,
    /// Punctuation: `(`, `)`, `[`, `]`, `,`, `;`, `.`, `..`, `:`.
    Punctuation,
    /// A quoted identifier, `"a""b"`, or a Unicode one, `U&"d\0061t"`,
    /// including an optional `UESCAPE '!'` clause.
    QuotedIdentifier,
    /// A string constant, `'it''s'`. With `standard_conforming_strings` off,
    /// backslash escapes apply too, as in [`EscapeString`](Self::EscapeString).
    String,
    /// A Unicode string constant, `U&'d\0061t'`, including an optional
    /// `UESCAPE '!'` clause.
    UnicodeString,
    /// Spaces, tabs, newlines, carriage returns, form feeds, vertical tabs.
    Whitespace,
    /// An unquoted identifier or keyword.
    Word,
}

impl TokenKind {
    /// Whether the token is a constant: any form of string, a bit string or
    /// a number. These are what redaction replaces.
    pub fn is_literal(self) -> bool {
        matches!(
            self,
            Self::BitString
                | Self::DollarString
                | Self::EscapeString
                | Self::HexString
                | Self::NationalString
                | Self::Number
                | Self::String
                | Self::UnicodeString
        )
    }

    /// Whether the token is a comment.
    pub fn is_comment(self) -> bool {
        matches!(self, Self::BlockComment | Self::LineComment)
    }
}

/// Splits SQL text into [`Token`]s.
///
/// An iterator of `Result<Token, LexError>`: whitespace and comments are
/// tokens too, so the tokens cover the input without gaps. After the first
/// error it yields nothing more: where a string that never ends would have
/// ended is unknowable, so nothing after it can be trusted.
///
/// ```
/// use vigil_sql::{Lexer, TokenKind};
///
/// let sql = "SELECT E'it\\'s' -- note";
/// let kinds: Vec<TokenKind> = Lexer::new(sql).map(|t| t.unwrap().kind).collect();
/// assert_eq!(
///     kinds,
///     [TokenKind::Word, TokenKind::Whitespace, TokenKind::EscapeString,
///      TokenKind::Whitespace, TokenKind::LineComment]
/// );
/// ```
#[derive(Clone, Debug)]
pub struct Lexer<'a> {
    src: &'a str,
    pos: usize,
    standard_strings: bool,
    failed: bool,
}

impl<'a> Lexer<'a> {
    /// A lexer over `src`, with `standard_conforming_strings` on (the
    /// PostgreSQL default since 9.1).
    pub fn new(src: &'a str) -> Self {
        Self {
            src,
            pos: 0,
            standard_strings: true,
            failed: false,
        }
    }

    /// Lexes as a server with `standard_conforming_strings` set to `on`:
    /// with it off, backslashes are escapes in `'…'` strings too, and
    /// `U&'…'` strings are an error. A proxy must follow the session's
    /// setting (PostgreSQL reports it in a ParameterStatus message): lexing
    /// with the wrong one can end a string where the server does not.
    pub fn standard_conforming_strings(mut self, on: bool) -> Self {
        self.standard_strings = on;
        self
    }

    /// Byte offset of the next token; after an error, of the token that
    /// failed (which [`LexError::offset`] may point inside).
    pub fn offset(&self) -> usize {
        self.pos
    }

    /// Moves past the whitespace at the current offset without yielding it
    /// as a token, and returns whether there was any. For callers that need
    /// only the other tokens: each still says where it starts.
    #[inline]
    pub fn skip_whitespace(&mut self) -> bool {
        // Mostly one space or none: one byte tells.
        let b = self.src.as_bytes();
        if !is_space(at(b, self.pos)) {
            return false;
        }
        self.pos = skip(b, self.pos + 1, SPACE);
        true
    }
}

impl Iterator for Lexer<'_> {
    type Item = Result<Token, LexError>;

    // Inlined into callers in other crates: the detectors call it once per
    // token, and a call per token measured 5% of their cost.
    #[inline(always)]
    fn next(&mut self) -> Option<Self::Item> {
        if self.failed || self.pos >= self.src.len() {
            return None;
        }
        let (kind, end) = match lex_common(self.src.as_bytes(), self.pos) {
            Some(token) => token,
            None => match lex_rest(self.src, self.pos, self.standard_strings) {
                Ok(token) => token,
                Err(e) => {
                    self.failed = true;
                    return Some(Err(e));
                }
            },
        };
        let token = Token {
            kind,
            start: self.pos,
            end,
        };
        self.pos = end;
        Some(Ok(token))
    }
}

// ---------------------------------------------------------------------------
// Character classes

const SPACE: u8 = 1;
const IDENT_START: u8 = 2;
const IDENT_CONT: u8 = 4;
const DOLQ_CONT: u8 = 8;
const OP: u8 = 16;
const DIGIT: u8 = 32;

const fn class_table() -> [u8; 256] {
    let mut t = [0u8; 256];
    let mut i = 0;
    while i < 256 {
        let c = i as u8;
        let mut v = 0;
        if matches!(c, b' ' | b'\t' | b'\n' | b'\r' | 0x0b | 0x0c) {
            v |= SPACE;
        }
        if c.is_ascii_alphabetic() || c == b'_' || c >= 0x80 {
            v |= IDENT_START | IDENT_CONT | DOLQ_CONT;
        }
        if c.is_ascii_digit() {
            v |= IDENT_CONT | DOLQ_CONT | DIGIT;
        }
        if c == b'$' {
            v |= IDENT_CONT;
        }
        if matches!(
            c,
            b'~' | b'!'
                | b'@'
                | b'#'
                | b'^'
                | b'&'
                | b'|'
                | b'`'
                | b'?'
                | b'+'
                | b'-'
                | b'*'
                | b'/'
                | b'%'
                | b'<'
                | b'>'
                | b'='
        ) {
            v |= OP;
        }
        t[i] = v;
        i += 1;
    }
    t
}

static CLASS: [u8; 256] = class_table();

#[inline]
fn has(c: u8, class: u8) -> bool {
    CLASS[c as usize] & class != 0
}

/// The byte at `i`, or 0 past the end. NUL never starts or continues any
/// token, so callers treat both alike.
#[inline]
pub(crate) fn at(b: &[u8], i: usize) -> u8 {
    b.get(i).copied().unwrap_or(0)
}

/// Whether `c` is whitespace to PostgreSQL: space, tab, newline, carriage
/// return, form feed, vertical tab.
#[inline]
pub(crate) fn is_space(c: u8) -> bool {
    has(c, SPACE)
}

/// Whether `c` is an ASCII letter, digit, `_`, `$` or non-ASCII: a byte
/// that can continue a word or a parameter.
#[inline]
pub(crate) fn is_word_byte(c: u8) -> bool {
    has(c, IDENT_CONT)
}

#[inline]
fn find(b: &[u8], from: usize, pred: impl Fn(u8) -> bool) -> Option<usize> {
    b.get(from..)?
        .iter()
        .position(|&c| pred(c))
        .map(|p| p + from)
}

// ---------------------------------------------------------------------------
// The lexer proper

/// What a token starting with a given byte can be.
#[derive(Clone, Copy)]
enum Start {
    Colon,
    Control,
    Dash,
    Digit,
    Dollar,
    Dot,
    DoubleQuote,
    Op,
    Other,
    Prefix,
    Punct,
    Quote,
    Slash,
    Space,
    Word,
}

const fn start_table() -> [Start; 256] {
    let mut t = [Start::Other; 256];
    let mut i = 0;
    while i < 256 {
        let c = i as u8;
        t[i] = match c {
            b'b' | b'B' | b'x' | b'X' | b'e' | b'E' | b'n' | b'N' | b'u' | b'U' => Start::Prefix,
            b'-' => Start::Dash,
            b'/' => Start::Slash,
            b'\'' => Start::Quote,
            b'"' => Start::DoubleQuote,
            b'$' => Start::Dollar,
            b'.' => Start::Dot,
            b':' => Start::Colon,
            b'(' | b')' | b'[' | b']' | b',' | b';' => Start::Punct,
            b'0'..=b'9' => Start::Digit,
            b' ' | b'\t' | b'\n' | b'\r' | 0x0b | 0x0c => Start::Space,
            _ if c.is_ascii_alphabetic() || c == b'_' || c >= 0x80 => Start::Word,
            b'~' | b'!' | b'@' | b'#' | b'^' | b'&' | b'|' | b'`' | b'?' | b'+' | b'*' | b'%'
            | b'<' | b'>' | b'=' => Start::Op,
            _ if c < 0x20 || c == 0x7f => Start::Control,
            _ => Start::Other,
        };
        i += 1;
    }
    t
}

static START: [Start; 256] = start_table();

/// The offset of the first byte at or after `i` not in `class`. Four
/// bytes a step while four are there, one bounds check for them; then a
/// byte at a time, the NUL past the end stopping it. (A branch-free scan of
/// eight bytes at a time measured slower.)
#[inline]
fn skip(b: &[u8], i: usize, class: u8) -> usize {
    let mut i = i;
    while let Some(&[c0, c1, c2, c3]) = b.get(i..i.wrapping_add(4)) {
        if !has(c0, class) {
            return i;
        }
        if !has(c1, class) {
            return i + 1;
        }
        if !has(c2, class) {
            return i + 2;
        }
        if !has(c3, class) {
            return i + 3;
        }
        i += 4;
    }
    while has(at(b, i), class) {
        i += 1;
    }
    i
}

/// Lexes the token that starts at `pos` (which is below `src.len()`):
/// its kind and the offset just past it. Always inlined: a call per token,
/// with its result returned through memory, was 3% of the detectors' cost.
/// `Lexer::next` calls its two halves itself.
#[inline(always)]
pub(crate) fn lex(
    src: &str,
    pos: usize,
    standard_strings: bool,
) -> Result<(TokenKind, usize), LexError> {
    match lex_common(src.as_bytes(), pos) {
        Some(token) => Ok(token),
        None => lex_rest(src, pos, standard_strings),
    }
}

/// [`lex`] for the tokens that cannot fail and need no scan out of line:
/// whitespace, words, punctuation, operators, plain integers, line
/// comments. `None` for the others, which [`lex_rest`] lexes. Kept apart
/// so that its kind and offset stay in registers: merged with the results
/// of the calls that may fail, they went through memory for every token.
#[inline(always)]
fn lex_common(b: &[u8], pos: usize) -> Option<(TokenKind, usize)> {
    let c = at(b, pos);
    let next = || at(b, pos + 1);
    match START[c as usize] {
        Start::Space => Some((TokenKind::Whitespace, skip(b, pos + 1, SPACE))),
        Start::Word => Some((TokenKind::Word, skip(b, pos + 1, IDENT_CONT))),
        Start::Punct => Some((TokenKind::Punctuation, pos + 1)),
        Start::Digit => plain_number(b, pos).map(|end| (TokenKind::Number, end)),
        Start::Op => Some((TokenKind::Operator, operator(b, pos))),
        Start::Dash if next() == b'-' => Some((TokenKind::LineComment, line_end(b, pos + 2))),
        Start::Slash if next() == b'*' => None,
        Start::Dash | Start::Slash => Some((TokenKind::Operator, operator(b, pos))),
        Start::Prefix if !matches!(next(), b'\'' | b'&') => {
            Some((TokenKind::Word, skip(b, pos + 1, IDENT_CONT)))
        }
        Start::Dot if has(next(), DIGIT) => None,
        Start::Dot if next() == b'.' => Some((TokenKind::Punctuation, pos + 2)),
        Start::Colon if matches!(next(), b':' | b'=') => Some((TokenKind::Operator, pos + 2)),
        Start::Dot | Start::Colon => Some((TokenKind::Punctuation, pos + 1)),
        Start::Other => Some((TokenKind::Other, pos + 1)),
        Start::Prefix | Start::Quote | Start::DoubleQuote | Start::Dollar | Start::Control => None,
    }
}

/// [`lex`] for any token.
#[inline(never)]
fn lex_rest(src: &str, pos: usize, standard_strings: bool) -> Result<(TokenKind, usize), LexError> {
    let b = src.as_bytes();
    let c = at(b, pos);
    // Read only where the byte after decides: most tokens need not.
    let next = || at(b, pos + 1);
    match START[c as usize] {
        Start::Space => Ok((TokenKind::Whitespace, skip(b, pos + 1, SPACE))),
        Start::Word => Ok((TokenKind::Word, skip(b, pos + 1, IDENT_CONT))),
        Start::Punct => Ok((TokenKind::Punctuation, pos + 1)),
        Start::Digit => Ok((TokenKind::Number, number(b, pos)?)),
        Start::Op => Ok((TokenKind::Operator, operator(b, pos))),
        Start::Dash if next() == b'-' => Ok((TokenKind::LineComment, line_end(b, pos + 2))),
        Start::Slash if next() == b'*' => Ok((TokenKind::BlockComment, block_comment(b, pos)?)),
        Start::Dash | Start::Slash => Ok((TokenKind::Operator, operator(b, pos))),
        // `B'`, `X'`, `E'`, `N'`, `U&`: only a quote or `&` after the letter
        // can make it anything but a word.
        Start::Prefix if !matches!(next(), b'\'' | b'&') => {
            Ok((TokenKind::Word, skip(b, pos + 1, IDENT_CONT)))
        }
        Start::Prefix => prefixed(src, pos, standard_strings),
        Start::Quote => {
            let mode = if standard_strings {
                Mode::Standard
            } else {
                Mode::Escape
            };
            Ok((TokenKind::String, quoted_string(b, pos, pos + 1, mode)?))
        }
        Start::DoubleQuote => Ok((TokenKind::QuotedIdentifier, quoted_ident(b, pos, pos + 1)?)),
        Start::Dollar => dollar(b, pos),
        Start::Dot if has(next(), DIGIT) => Ok((TokenKind::Number, number(b, pos)?)),
        Start::Dot if next() == b'.' => Ok((TokenKind::Punctuation, pos + 2)),
        Start::Colon if matches!(next(), b':' | b'=') => Ok((TokenKind::Operator, pos + 2)),
        Start::Dot | Start::Colon => Ok((TokenKind::Punctuation, pos + 1)),
        Start::Control => Err(LexError::ControlCharacter { offset: pos }),
        Start::Other => Ok((TokenKind::Other, pos + 1)),
    }
}

/// How backslashes behave in a quoted string.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Mode {
    /// `'…'` with standard_conforming_strings on, `U&'…'`: `''` only.
    Standard,
    /// `E'…'`: `''` and backslash escapes.
    Escape,
    /// `B'…'`, `X'…'`: no escapes at all, not even `''`.
    Bits,
}

/// A word starting with `b`, `x`, `e`, `n` or `u`, or one of the prefixed
/// constants that start like one: `B'…'`, `X'…'`, `E'…'`, `N'…'`, `U&'…'`,
/// `U&"…"`.
#[inline(never)]
fn prefixed(src: &str, pos: usize, standard_strings: bool) -> Result<(TokenKind, usize), LexError> {
    let b = src.as_bytes();
    let n1 = at(b, pos + 1);
    let n2 = at(b, pos + 2);
    let string_mode = if standard_strings {
        Mode::Standard
    } else {
        Mode::Escape
    };
    match at(b, pos) {
        b'b' | b'B' if n1 == b'\'' => Ok((
            TokenKind::BitString,
            quoted_string(b, pos, pos + 2, Mode::Bits)?,
        )),
        b'x' | b'X' if n1 == b'\'' => Ok((
            TokenKind::HexString,
            quoted_string(b, pos, pos + 2, Mode::Bits)?,
        )),
        b'e' | b'E' if n1 == b'\'' => Ok((
            TokenKind::EscapeString,
            quoted_string(b, pos, pos + 2, Mode::Escape)?,
        )),
        b'n' | b'N' if n1 == b'\'' => Ok((
            TokenKind::NationalString,
            quoted_string(b, pos, pos + 2, string_mode)?,
        )),
        b'u' | b'U' if n1 == b'&' && n2 == b'\'' => {
            if !standard_strings {
                return Err(LexError::UnicodeStringNotAllowed { offset: pos });
            }
            Ok((TokenKind::UnicodeString, unicode_string(src, pos)?))
        }
        b'u' | b'U' if n1 == b'&' && n2 == b'"' => {
            Ok((TokenKind::QuotedIdentifier, unicode_ident(src, pos)?))
        }
        _ => Ok((TokenKind::Word, skip(b, pos + 1, IDENT_CONT))),
    }
}

/// The offset of the first `\n` or `\r` at or after `i`, or the end.
fn line_end(b: &[u8], i: usize) -> usize {
    find(b, i, |c| c == b'\n' || c == b'\r').unwrap_or(b.len())
}

/// A block comment starting at `pos` (on `/*`), nested comments included:
/// the offset past its final `*/`.
#[inline(never)]
fn block_comment(b: &[u8], pos: usize) -> Result<usize, LexError> {
    let mut depth = 1usize;
    let mut i = pos + 2;
    while i < b.len() {
        match (b[i], at(b, i + 1)) {
            (b'/', b'*') => {
                depth += 1;
                i += 2;
            }
            (b'*', b'/') => {
                depth -= 1;
                i += 2;
                if depth == 0 {
                    return Ok(i);
                }
            }
            _ => i += 1,
        }
    }
    Err(LexError::UnterminatedComment { offset: pos })
}

/// After a closing quote at `i - 1`: if whitespace holding a newline (and
/// perhaps `--` comments) and then a quote follow, the string continues,
/// and this is the offset of that quote. `'a'\n'b'` is the one string `ab`.
fn continuation(b: &[u8], i: usize) -> Option<usize> {
    let mut j = i;
    // Horizontal whitespace and comments, up to and including a newline.
    loop {
        match at(b, j) {
            b' ' | b'\t' | 0x0b | 0x0c => j += 1,
            b'-' if at(b, j + 1) == b'-' => j = line_end(b, j + 2),
            b'\n' | b'\r' => {
                j += 1;
                break;
            }
            _ => return None,
        }
    }
    // Then any whitespace, and comments each followed by a newline.
    loop {
        match at(b, j) {
            c if has(c, SPACE) => j += 1,
            b'-' if at(b, j + 1) == b'-' => {
                j = line_end(b, j + 2);
                if j >= b.len() {
                    return None;
                }
            }
            b'\'' => return Some(j),
            _ => return None,
        }
    }
}

/// A quoted string whose token starts at `start` and whose content starts
/// at `content` (just past the opening quote), continuations included: the
/// offset past the final closing quote.
#[inline(never)]
fn quoted_string(b: &[u8], start: usize, content: usize, mode: Mode) -> Result<usize, LexError> {
    let unterminated = LexError::UnterminatedString { offset: start };
    let mut i = content;
    loop {
        let q = match mode {
            Mode::Escape => find(b, i, |c| c == b'\'' || c == b'\\'),
            Mode::Standard | Mode::Bits => find(b, i, |c| c == b'\''),
        }
        .ok_or(unterminated)?;
        if b[q] == b'\\' {
            i = escape(b, q, start)?;
            continue;
        }
        if mode != Mode::Bits && at(b, q + 1) == b'\'' {
            i = q + 2;
            continue;
        }
        match continuation(b, q + 1) {
            Some(quote) => i = quote + 1,
            None => return Ok(q + 1),
        }
    }
}

/// A backslash escape in an `E'…'` string, the backslash at `i`: the offset
/// past it. Checks `\u` and `\U` as PostgreSQL does: the right number of hex
/// digits, a valid code point, surrogates only in high-low pairs.
fn escape(b: &[u8], i: usize, start: usize) -> Result<usize, LexError> {
    if i + 1 >= b.len() {
        return Err(LexError::UnterminatedString { offset: start });
    }
    let bad = LexError::BadEscape { offset: i };
    let digits = match at(b, i + 1) {
        b'u' => 4,
        b'U' => 8,
        // Any other escaped byte is taken as is. A multi-byte character's
        // other bytes are all >= 0x80, never a quote or a backslash.
        _ => return Ok(i + 2),
    };
    let cp = hex_bytes(b, i + 2, digits).ok_or(bad)?;
    let mut next = i + 2 + digits;
    if is_high_surrogate(cp) {
        let digits = match (at(b, next), at(b, next + 1)) {
            (b'\\', b'u') => 4,
            (b'\\', b'U') => 8,
            _ => return Err(bad),
        };
        let low = hex_bytes(b, next + 2, digits).ok_or(bad)?;
        if !is_low_surrogate(low) {
            return Err(bad);
        }
        next += 2 + digits;
    } else if is_low_surrogate(cp) || char::from_u32(cp).is_none_or(|c| c == '\0') {
        return Err(bad);
    }
    Ok(next)
}

fn hex_bytes(b: &[u8], from: usize, n: usize) -> Option<u32> {
    let digits = b.get(from..from + n)?;
    let mut v = 0u32;
    for &d in digits {
        v = v.checked_mul(16)? + char::from(d).to_digit(16)?;
    }
    Some(v)
}

fn is_high_surrogate(cp: u32) -> bool {
    (0xD800..=0xDBFF).contains(&cp)
}

fn is_low_surrogate(cp: u32) -> bool {
    (0xDC00..=0xDFFF).contains(&cp)
}

/// A quoted identifier whose token starts at `start`, its content at
/// `content`: the offset past the closing quote.
#[inline(never)]
fn quoted_ident(b: &[u8], start: usize, content: usize) -> Result<usize, LexError> {
    let mut i = content;
    loop {
        let q =
            find(b, i, |c| c == b'"').ok_or(LexError::UnterminatedIdentifier { offset: start })?;
        if at(b, q + 1) == b'"' {
            i = q + 2;
            continue;
        }
        if q == content {
            return Err(LexError::EmptyIdentifier { offset: start });
        }
        // No identifier can hold NUL (nor can any query string PostgreSQL
        // receives), and no escape can write one: fail closed.
        if let Some(nul) = b
            .get(content..q)
            .and_then(|c| c.iter().position(|&c| c == 0))
        {
            return Err(LexError::ControlCharacter {
                offset: content + nul,
            });
        }
        return Ok(q + 1);
    }
}

/// `U&'…'` at `pos`, with an optional `UESCAPE '…'`: the offset past it.
#[inline(never)]
fn unicode_string(src: &str, pos: usize) -> Result<usize, LexError> {
    let end = quoted_string(src.as_bytes(), pos, pos + 3, Mode::Standard)?;
    let (escape_char, end) = uescape(src, end)?.unwrap_or(('\\', end));
    let chars = logical_content(src, pos + 3, b'\'');
    unicode_unescape(&chars, escape_char, |_| {})
        .map_err(|()| LexError::BadEscape { offset: pos })?;
    Ok(end)
}

/// `U&"…"` at `pos`, with an optional `UESCAPE '…'`: the offset past it.
#[inline(never)]
fn unicode_ident(src: &str, pos: usize) -> Result<usize, LexError> {
    let end = quoted_ident(src.as_bytes(), pos, pos + 3)?;
    let (escape_char, end) = uescape(src, end)?.unwrap_or(('\\', end));
    let chars = logical_content(src, pos + 3, b'"');
    unicode_unescape(&chars, escape_char, |_| {})
        .map_err(|()| LexError::BadEscape { offset: pos })?;
    Ok(end)
}

/// After a `U&` constant or identifier ending at `end`: a `UESCAPE 'c'`
/// clause, if there is one, gives the escape character and the offset past
/// the clause. As in PostgreSQL, `UESCAPE` there must be followed by a
/// one-character string that is not a hex digit, `+`, a quote or
/// whitespace.
fn uescape(src: &str, end: usize) -> Result<Option<(char, usize)>, LexError> {
    let b = src.as_bytes();
    let j = skip_trivia(b, end);
    let word_end = j + 7;
    let is_uescape = b
        .get(j..word_end)
        .is_some_and(|w| w.eq_ignore_ascii_case(b"uescape"))
        && !has(at(b, word_end), IDENT_CONT);
    if !is_uescape {
        return Ok(None);
    }
    let bad = LexError::BadEscape { offset: j };
    let k = skip_trivia(b, word_end);
    if at(b, k) != b'\'' {
        return Err(bad);
    }
    let close = quoted_string(b, k, k + 1, Mode::Standard)?;
    let inner = src.get(k + 1..close - 1).unwrap_or("");
    let mut chars = inner.chars();
    let (Some(c), None) = (chars.next(), chars.next()) else {
        return Err(bad);
    };
    if c.is_ascii_hexdigit()
        || matches!(c, '+' | '\'' | '"')
        || c.is_ascii_whitespace()
        || c == '\x0b'
    {
        return Err(bad);
    }
    Ok(Some((c, close)))
}

/// Skips whitespace and complete comments from `i`.
fn skip_trivia(b: &[u8], mut i: usize) -> usize {
    loop {
        match (at(b, i), at(b, i + 1)) {
            (c, _) if has(c, SPACE) => i += 1,
            (b'-', b'-') => i = line_end(b, i + 2),
            (b'/', b'*') => match block_comment(b, i) {
                Ok(end) => i = end,
                Err(_) => return i,
            },
            _ => return i,
        }
    }
}

/// The characters of a well-formed quoted string or identifier whose content
/// starts at `content`: doubled quotes undoubled, continuations of strings
/// joined.
pub(crate) fn logical_content(src: &str, content: usize, quote: u8) -> Vec<char> {
    let b = src.as_bytes();
    let mut out = Vec::new();
    let mut i = content;
    while let Some(q) = find(b, i, |c| c == quote) {
        out.extend(src.get(i..q).unwrap_or("").chars());
        if at(b, q + 1) == quote {
            out.push(char::from(quote));
            i = q + 2;
            continue;
        }
        match continuation(b, q + 1) {
            Some(next) if quote == b'\'' => i = next + 1,
            _ => break,
        }
    }
    out
}

/// Decodes the escapes of a `U&` constant or identifier's content, as
/// PostgreSQL's `str_udeescape`: `<esc><esc>` is the escape character,
/// `<esc>XXXX` and `<esc>+XXXXXX` are code points, UTF-16 surrogates must
/// come in pairs. Each decoded character goes to `out`.
pub(crate) fn unicode_unescape(
    chars: &[char],
    esc: char,
    mut out: impl FnMut(char),
) -> Result<(), ()> {
    let mut i = 0;
    let mut high: Option<u32> = None;
    while let Some(&c) = chars.get(i) {
        if c != esc {
            if high.is_some() {
                return Err(());
            }
            out(c);
            i += 1;
            continue;
        }
        let next = chars.get(i + 1).copied();
        if next == Some(esc) {
            if high.is_some() {
                return Err(());
            }
            out(esc);
            i += 2;
            continue;
        }
        let (cp, len) = if let Some(v) = hex_chars(chars.get(i + 1..i + 5)) {
            (v, 5)
        } else if next == Some('+') {
            (hex_chars(chars.get(i + 2..i + 8)).ok_or(())?, 8)
        } else {
            return Err(());
        };
        i += len;
        match high.take() {
            Some(h) if is_low_surrogate(cp) => {
                let combined = 0x10000 + ((h - 0xD800) << 10) + (cp - 0xDC00);
                out(char::from_u32(combined).ok_or(())?);
            }
            Some(_) => return Err(()),
            None if is_high_surrogate(cp) => high = Some(cp),
            None => match char::from_u32(cp) {
                Some(c) if c != '\0' => out(c),
                _ => return Err(()),
            },
        }
    }
    if high.is_some() { Err(()) } else { Ok(()) }
}

fn hex_chars(digits: Option<&[char]>) -> Option<u32> {
    let mut v = 0u32;
    for d in digits? {
        v = v * 16 + d.to_digit(16)?;
    }
    Some(v)
}

/// `$` at `pos`: a parameter `$1`, a dollar-quoted string, or a lone `$`.
#[inline(never)]
fn dollar(b: &[u8], pos: usize) -> Result<(TokenKind, usize), LexError> {
    let n = at(b, pos + 1);
    if has(n, DIGIT) {
        let end = decimal_digits(b, pos + 1);
        if has(at(b, end), IDENT_START) {
            return Err(LexError::BadParameter { offset: pos });
        }
        return Ok((TokenKind::Param, end));
    }
    let mut i = pos + 1;
    if has(n, IDENT_START) {
        i += 1;
        while has(at(b, i), DOLQ_CONT) {
            i += 1;
        }
    }
    if at(b, i) != b'$' {
        // Not a delimiter: PostgreSQL returns the `$` alone and lexes on.
        return Ok((TokenKind::Other, pos + 1));
    }
    let delim = &b[pos..=i];
    let body = i + 1;
    let mut from = body;
    while let Some(d) = find(b, from, |c| c == b'$') {
        if b.get(d..d + delim.len()) == Some(delim) {
            return Ok((TokenKind::DollarString, d + delim.len()));
        }
        from = d + 1;
    }
    Err(LexError::UnterminatedDollarString { offset: pos })
}

/// Digits with single underscores between them (`1_000`), from `i`, which
/// is a digit: the offset past them.
fn decimal_digits(b: &[u8], mut i: usize) -> usize {
    i += 1;
    loop {
        match at(b, i) {
            c if has(c, DIGIT) => i += 1,
            b'_' if has(at(b, i + 1), DIGIT) => i += 2,
            _ => return i,
        }
    }
}

/// A number at `pos` (a digit, or a `.` before a digit): the offset past it.
#[inline]
fn number(b: &[u8], pos: usize) -> Result<usize, LexError> {
    match plain_number(b, pos) {
        Some(end) => Ok(end),
        None => number_slow(b, pos),
    }
}

/// The common case of [`number`]: plain digits at `pos`, then something
/// that ends a number. `None` for anything else.
#[inline]
fn plain_number(b: &[u8], pos: usize) -> Option<usize> {
    let end = skip(b, pos, DIGIT);
    (end > pos
        && !matches!(
            at(b, end),
            b'.' | b'_' | b'e' | b'E' | b'x' | b'X' | b'o' | b'O' | b'b' | b'B'
        )
        && !has(at(b, end), IDENT_START))
    .then_some(end)
}

#[inline(never)]
fn number_slow(b: &[u8], pos: usize) -> Result<usize, LexError> {
    let bad = LexError::BadNumber { offset: pos };
    let radix_digit: Option<fn(u8) -> bool> = match (at(b, pos), at(b, pos + 1)) {
        (b'0', b'x' | b'X') => Some(|c| c.is_ascii_hexdigit()),
        (b'0', b'o' | b'O') => Some(|c| matches!(c, b'0'..=b'7')),
        (b'0', b'b' | b'B') => Some(|c| matches!(c, b'0' | b'1')),
        _ => None,
    };
    if let Some(ok) = radix_digit {
        let mut i = pos + 2;
        let mut digits = 0;
        loop {
            let c = at(b, i);
            if ok(c) {
                i += 1;
            } else if c == b'_' && ok(at(b, i + 1)) {
                i += 2;
            } else {
                break;
            }
            digits += 1;
        }
        if digits == 0 || has(at(b, i), IDENT_START) {
            return Err(bad);
        }
        return Ok(i);
    }
    let mut i = pos;
    if at(b, i) != b'.' {
        i = decimal_digits(b, i);
    }
    if at(b, i) == b'.' {
        if at(b, i + 1) == b'.' {
            // `1..2`: the integer, then `..`.
            return Ok(i);
        }
        i += 1;
        if has(at(b, i), DIGIT) {
            i = decimal_digits(b, i);
        }
    }
    if matches!(at(b, i), b'e' | b'E') {
        let mut j = i + 1;
        if matches!(at(b, j), b'+' | b'-') {
            j += 1;
        }
        if !has(at(b, j), DIGIT) {
            return Err(bad);
        }
        i = decimal_digits(b, j);
    }
    if has(at(b, i), IDENT_START) {
        return Err(bad);
    }
    Ok(i)
}

/// An operator at `pos`: the offset past it, cut as PostgreSQL cuts it.
fn operator(b: &[u8], pos: usize) -> usize {
    let mut end = pos + 1;
    while has(at(b, end), OP) {
        // `/*` and `--` start comments, even inside an operator.
        if matches!((b[end - 1], b[end]), (b'/', b'*') | (b'-', b'-')) {
            // Never empty: a comment start at `pos` was lexed as a comment.
            end = (end - 1).max(pos + 1);
            break;
        }
        end += 1;
    }
    // A multi-character operator may end in `+` or `-` only if it holds one
    // of these, so that `=-1` is `=` and `-1` but `?-` stays one operator.
    let op = &b[pos..end];
    if op.len() > 1
        && matches!(op.last(), Some(b'+' | b'-'))
        && !op.iter().any(|c| b"~!@#^&|`?%".contains(c))
    {
        while end > pos + 1 && matches!(b[end - 1], b'+' | b'-') {
            end -= 1;
        }
    }
    end
}

#[cfg(test)]
mod tests;
