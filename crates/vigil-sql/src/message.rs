//! Redaction of the text fields of PostgreSQL's ErrorResponse and
//! NoticeResponse messages: see [`redact_message`].

use std::borrow::Cow;

use crate::lexer::{Lexer, TokenKind, at};
use crate::redact::{MASK, Redactor};

/// Words after which a double-quoted segment names an object, or a user or
/// client host, and is kept: `relation "users"`, `for user "bob"`.
const OBJECT_WORDS: &[&str] = &[
    "aggregate",
    "attribute",
    "class",
    "collation",
    "column",
    "configuration",
    "constraint",
    "conversion",
    "cursor",
    "database",
    "dictionary",
    "domain",
    "encoding",
    "extension",
    "family",
    "function",
    "host",
    "index",
    "language",
    "method",
    "operator",
    "parameter",
    "parser",
    "policy",
    "portal",
    "procedure",
    "publication",
    "relation",
    "role",
    "routine",
    "rule",
    "savepoint",
    "schema",
    "sequence",
    "server",
    "slot",
    "subscription",
    "table",
    "tablespace",
    "template",
    "trigger",
    "type",
    "user",
    "view",
    "wrapper",
];

/// Context lines that quote SQL text: `SQL statement "…"`.
const SQL_CONTEXTS: &[&[u8]] = &[
    b"sql statement \"",
    b"pl/pgsql expression \"",
    b"pl/pgsql assignment \"",
];

/// What follows a letter and an apostrophe in an English contraction:
/// `function's`, `can't`, `they're`.
const CONTRACTIONS: &[&[u8]] = &[b"s", b"t", b"d", b"m", b"re", b"ll", b"ve"];

/// Redacts the text of one field of a PostgreSQL ErrorResponse or
/// NoticeResponse (the message, detail, hint, context, …) so that no value
/// from the data shows, keeping the names of objects, users and types, and
/// the message's wording. Returns the text borrowed when nothing changes.
///
/// The rules follow the shapes in which PostgreSQL (with English messages)
/// echoes values, scanning the text from left to right; each masked value
/// becomes [`MASK`] (`$?`):
///
/// - **Value lists.** After `)=(` (`Key (email)=(…)`), `) = (` (`Partition
///   key of the failing row contains (region) = (…)`) and `row contains (`
///   (`Failing row contains (…)`), everything up to the last `)` of the text
///   is masked: values are not escaped, so a value's own `)` may not end the
///   list. The one exception: in `Key (…)=(…) conflicts with existing key
///   (…)=(…)` (or `conflicts with key`) with the same column list on both
///   sides, the first list ends at the last such `) conflicts with`. The
///   column list after `Key (` (up to the first `)=(`, on one line, holding
///   no quote mark but pairs of `"`) is kept as it is; any other is scanned
///   by the rules here.
/// - **Double-quoted text** is kept when the word before it, after one
///   space, names an object: `relation`, `column`, `table`, `constraint`,
///   `index`, `type`, `function`, `schema`, `database`, `role`, `user`,
///   `sequence`, `view`, `trigger`, `operator`, `extension`, `parameter`,
///   `policy`, `host` and the like. Such a name ends at the next `"`; if a
///   newline or the end of the text comes first, the rest of the text is
///   masked. Any other double-quoted text (`type integer: "abc"`,
///   `value "123" is out of range`, `at or near "…"`) is a value.
/// - **Single-quoted text** is a value, but for an apostrophe between a
///   letter and an English contraction's ending (`function's`, `can't`).
/// - A masked quoted value runs from its opening quote mark to the **last**
///   quote mark of the text (`"`, `'`, and typographic quotes such as `«`,
///   `»`, `“`, `„`, which localized messages use), and on to the last `)`
///   if it holds a `(`: values are not escaped, so a value's own quote mark
///   may not end it. It is written as the mask between quote marks, `"$?"`.
/// - **Unterminated** quotes and value lists: everything from the opening
///   quote mark or after the opening `(` to the end of the text is masked.
///   A last quote mark or `)` followed by a letter, digit or non-ASCII
///   character ends nothing (`at or near "'abc`): the value is
///   unterminated.
/// - **SQL in a context line** (`SQL statement "…"`, `PL/pgSQL expression
///   "…"`, `PL/pgSQL assignment "…"`) is redacted as a query string, as
///   [`redact`](crate::redact) does: literals become `$n`. The SQL ends at
///   a `"` that starts a token and ends a line. The lexer must find the
///   same end with `standard_conforming_strings` on and off, and both
///   settings must give the same redacted text; otherwise the SQL is
///   masked, and if the end is in doubt (a line comment holding a `"`, an
///   unterminated token), the rest of the text is.
/// - **JSON input** after `JSON data, line N: ` is masked to the end of the
///   line; **bytes** (`0xc3 0x28`) after `byte sequence` on the same line
///   are masked; a line directly above a line holding only a `^` (the
///   input echoed by libxml in XML errors) is masked.
/// - Plain words and numbers outside these shapes are kept: `division by
///   zero`, `permission denied for table t`, `line 3`, `varying(10)`.
///
/// Free text written by functions (`RAISE EXCEPTION 'bad email %', e`)
/// goes through the same rules and is kept where they do not apply. The
/// internal query field (`q`) is a query string: redact it with
/// [`redact`](crate::redact), not this.
///
/// ```
/// use std::borrow::Cow;
/// use vigil_sql::redact_message;
///
/// assert_eq!(
///     redact_message("Key (email)=(ann@example.com) already exists."),
///     "Key (email)=($?) already exists."
/// );
/// assert_eq!(
///     redact_message("Failing row contains (7, ann, (1,2), null)."),
///     "Failing row contains ($?)."
/// );
/// assert_eq!(
///     redact_message("invalid input syntax for type integer: \"12a\""),
///     "invalid input syntax for type integer: \"$?\""
/// );
/// assert_eq!(
///     redact_message("value \"99999999999\" is out of range for type integer"),
///     "value \"$?\" is out of range for type integer"
/// );
/// assert_eq!(
///     redact_message("SQL statement \"INSERT INTO t VALUES ('x', 42)\"\nPL/pgSQL function f() line 3 at SQL statement"),
///     "SQL statement \"INSERT INTO t VALUES ($1, $2)\"\nPL/pgSQL function f() line 3 at SQL statement"
/// );
/// // Unterminated: masked to the end.
/// assert_eq!(redact_message("value \"12345 is out of range"), "value \"$?");
/// assert_eq!(redact_message("Failing row contains (1, secr"), "Failing row contains ($?");
///
/// // Names of objects and users are kept, and the text is not copied.
/// let kept = "null value in column \"email\" of relation \"users\" violates not-null constraint";
/// assert!(matches!(redact_message(kept), Cow::Borrowed(_)));
/// assert_eq!(
///     redact_message("password authentication failed for user \"bob\""),
///     "password authentication failed for user \"bob\""
/// );
/// ```
pub fn redact_message(text: &str) -> Cow<'_, str> {
    let mut scan = Scan::new(text);
    scan.run();
    scan.finish()
}

/// The state of one call to [`redact_message`].
struct Scan<'a> {
    text: &'a str,
    /// The redacted text up to `copied`, once something changed.
    out: String,
    /// Input before this offset is in `out`.
    copied: usize,
    changed: bool,
    /// The offset of the last quote mark of the text, and of its last `)`.
    last_quote: Option<usize>,
    last_paren: Option<usize>,
    /// Where the next `)=(` and `) = (` are (searched once per position).
    key_sep: Finder,
    partition_sep: Finder,
    /// A kept column list, `(start, end)`: the `)=(` at `end` opens values.
    cols: Option<(usize, usize)>,
    /// A `)=(` whose column list was not kept: a later `key (` before it
    /// is not looked at again.
    rejected_sep: Option<usize>,
    /// Whether a `conflicts with existing key` pair was looked for (once:
    /// PostgreSQL writes one).
    conflicts_checked: bool,
    /// The line says `byte sequence`: `0x..` bytes after it are masked.
    hex_bytes: bool,
}

impl<'a> Scan<'a> {
    fn new(text: &'a str) -> Self {
        Self {
            text,
            out: String::new(),
            copied: 0,
            changed: false,
            last_quote: text.rfind(is_quote),
            last_paren: text.rfind(')'),
            key_sep: Finder::new(b")=("),
            partition_sep: Finder::new(b") = ("),
            cols: None,
            rejected_sep: None,
            conflicts_checked: false,
            hex_bytes: false,
        }
    }

    fn bytes(&self) -> &'a [u8] {
        self.text.as_bytes()
    }

    fn finish(mut self) -> Cow<'a, str> {
        if !self.changed {
            return Cow::Borrowed(self.text);
        }
        self.out
            .push_str(self.text.get(self.copied..).unwrap_or_default());
        Cow::Owned(self.out)
    }

    /// Replaces the input `start..end` with `parts` (nothing happens when
    /// they are what is there).
    fn replace(&mut self, start: usize, end: usize, parts: &[&str]) {
        let old = self.text.get(start..end);
        debug_assert!(old.is_some(), "{start}..{end} is not a char range");
        if old.is_some_and(|old| same(old, parts)) {
            return;
        }
        if !self.changed {
            self.changed = true;
            self.out.reserve(self.text.len() + 8);
        }
        self.out
            .push_str(self.text.get(self.copied..start).unwrap_or_default());
        for part in parts {
            self.out.push_str(part);
        }
        self.copied = end;
    }

    /// Masks from `start` to the end of the text; returns its length.
    fn mask_rest(&mut self, start: usize, prefix: &str) -> usize {
        let len = self.text.len();
        self.replace(start, len, &[prefix, MASK]);
        len
    }

    fn run(&mut self) {
        let len = self.text.len();
        let mut i = 0;
        while i < len {
            if (i == 0 || at(self.bytes(), i - 1) == b'\n')
                && let Some(end) = self.echoed_line(i)
            {
                i = end;
                continue;
            }
            i = self.step(i);
        }
    }

    /// Handles what starts at `i`; returns where to go on (always past
    /// `i`).
    fn step(&mut self, i: usize) -> usize {
        let b = self.bytes();
        match at(b, i) {
            b'\n' => {
                self.hex_bytes = false;
                i + 1
            }
            b'"' if object_word_before(b, i) => self.object_name(i),
            b'\'' if is_apostrophe(b, i) => i + 1,
            b'"' | b'\'' => self.quoted(i),
            b')' => self.list_after(i),
            b'0' if self.hex_bytes && matches!(at(b, i + 1), b'x' | b'X') => self.hex(i),
            // The first letters of the phrases `phrase` looks for.
            b'b' | b'B' | b'j' | b'J' | b'k' | b'K' | b'p' | b'P' | b'r' | b'R' | b's' | b'S' => {
                self.phrase(i)
            }
            c if c >= 0x80 => match self.text.get(i..).and_then(|s| s.chars().next()) {
                Some(c) if is_quote(c) => self.quoted(i),
                Some(c) => i + c.len_utf8(),
                None => i + 1,
            },
            _ => i + 1,
        }
    }

    /// The phrases that start value lists, SQL, JSON input and bytes.
    fn phrase(&mut self, i: usize) -> usize {
        let b = self.bytes();
        for p in SQL_CONTEXTS {
            if starts_ci(b, i, p) {
                return self.sql(i + p.len());
            }
        }
        const PARTITION: &[u8] = b"partition key of the failing row contains (";
        if starts_ci(b, i, PARTITION) {
            let cols = i + PARTITION.len();
            if let Some(end) = self.partition_sep.next(b, cols)
                && self.keep_cols(cols, end)
            {
                return end;
            }
            return self.values(cols);
        }
        if starts_ci(b, i, b"key (") {
            let cols = i + 5;
            if let Some(end) = self.key_sep.next(b, cols)
                && self.rejected_sep != Some(end)
            {
                if self.keep_cols(cols, end) {
                    return end;
                }
                self.rejected_sep = Some(end);
            }
            return i + 1;
        }
        if starts_ci(b, i, b"row contains (") {
            return self.values(i + 14);
        }
        if starts_ci(b, i, b"json data, line ") {
            let mut j = i + 16;
            while at(b, j).is_ascii_digit() {
                j += 1;
            }
            if starts_ci(b, j, b": ") {
                let start = j + 2;
                let end = line_end(b, start);
                if end > start {
                    self.replace(start, end, &[MASK]);
                }
                return end;
            }
            return i + 1;
        }
        if starts_ci(b, i, b"byte sequence") {
            self.hex_bytes = true;
            return i + 13;
        }
        i + 1
    }

    /// Whether the column list `start..end` of a key is kept as it is: on
    /// one line, with no quote mark but pairs of `"`. If so, records it.
    fn keep_cols(&mut self, start: usize, end: usize) -> bool {
        let Some(cols) = self.text.get(start..end) else {
            return false;
        };
        let plain = !cols.contains('\n')
            && cols.chars().all(|c| c == '"' || !is_quote(c))
            && cols.matches('"').count().is_multiple_of(2);
        if plain {
            self.cols = Some((start, end));
        }
        plain
    }

    /// At a `)`: if `)=(` or `) = (` follows, masks the value list.
    fn list_after(&mut self, i: usize) -> usize {
        let b = self.bytes();
        let start = if starts_ci(b, i, b")=(") {
            i + 3
        } else if starts_ci(b, i, b") = (") {
            i + 5
        } else {
            return i + 1;
        };
        if !self.conflicts_checked
            && let Some((cols_start, cols_end)) = self.cols
            && cols_end == i
        {
            self.conflicts_checked = true;
            if let Some(end) = conflicts(b, start, b.get(cols_start..cols_end).unwrap_or_default())
            {
                self.replace(start, end, &[MASK]);
                return end + 1;
            }
        }
        self.values(start)
    }

    /// Masks a value list that starts at `start`, after its `(`: to the last
    /// `)` of the text, or to its end.
    fn values(&mut self, start: usize) -> usize {
        let b = self.bytes();
        match self
            .last_paren
            .filter(|&p| p >= start && !is_word(at(b, p + 1)))
        {
            Some(end) => {
                self.replace(start, end, &[MASK]);
                end + 1
            }
            None => self.mask_rest(start, ""),
        }
    }

    /// A double-quoted object name at `i`: kept up to the next `"`.
    fn object_name(&mut self, i: usize) -> usize {
        let b = self.bytes();
        match b
            .get(i + 1..)
            .and_then(|r| r.iter().position(|&c| c == b'"' || c == b'\n'))
        {
            Some(p) if at(b, i + 1 + p) == b'"' => i + p + 2,
            _ => self.mask_rest(i, "\""),
        }
    }

    /// A quoted value opening at `i`: masked to the last quote mark of the
    /// text (and to the last `)` if it holds a `(`).
    fn quoted(&mut self, i: usize) -> usize {
        let Some(open) = self.text.get(i..).and_then(|s| s.chars().next()) else {
            return i + 1;
        };
        let after = i + open.len_utf8();
        let mut end = self
            .last_quote
            .filter(|&q| q > i)
            .map(|q| {
                q + self
                    .text
                    .get(q..)
                    .and_then(|s| s.chars().next())
                    .map_or(1, char::len_utf8)
            })
            .filter(|&e| !is_word(at(self.bytes(), e)));
        if let Some(e) = end
            && let Some(p) = self.last_paren
            && p >= e
            && self
                .bytes()
                .get(after..e)
                .is_some_and(|r| r.contains(&b'('))
        {
            end = Some(p + 1);
        }
        let mut open_buf = [0; 4];
        let open_str = open.encode_utf8(&mut open_buf);
        match end {
            Some(end) => {
                let mut close_buf = [0; 4];
                let close = closing_quote(open).encode_utf8(&mut close_buf);
                self.replace(i, end, &[open_str, MASK, close]);
                end
            }
            None => {
                let len = self.text.len();
                self.replace(i, len, &[open_str, MASK]);
                len
            }
        }
    }

    /// SQL quoted in a context line, starting at `start` (after its `"`).
    fn sql(&mut self, start: usize) -> usize {
        let rest = self.text.get(start..).unwrap_or_default();
        let end = match (sql_end(rest, true), sql_end(rest, false)) {
            (Some(on), Some(off)) if on == off => on,
            _ => return self.mask_rest(start, ""),
        };
        let sql = rest.get(..end).unwrap_or_default();
        let mut redactor = Redactor::new();
        let on = redactor.redact(sql);
        redactor.set_standard_conforming_strings(false);
        let off = redactor.redact(sql);
        if on.error.is_none() && off.error.is_none() && on.text == off.text {
            self.replace(start, start + end, &[&on.text]);
        } else {
            self.replace(start, start + end, &[MASK]);
        }
        // Past the closing `"`.
        start + end + 1
    }

    /// A run of `0x..` bytes at `i`, separated by spaces: masked.
    fn hex(&mut self, i: usize) -> usize {
        let b = self.bytes();
        let (mut j, mut end) = (i, i);
        while at(b, j) == b'0'
            && matches!(at(b, j + 1), b'x' | b'X')
            && at(b, j + 2).is_ascii_hexdigit()
        {
            j += 2;
            while at(b, j).is_ascii_hexdigit() {
                j += 1;
            }
            end = j;
            if at(b, j) != b' ' {
                break;
            }
            j += 1;
        }
        if end == i {
            return i + 1;
        }
        self.replace(i, end, &[MASK]);
        end
    }

    /// At the start of a line: if the next line holds only a `^` (with
    /// spaces), this line echoes input: masks it and returns its end.
    fn echoed_line(&mut self, i: usize) -> Option<usize> {
        let b = self.bytes();
        let end = line_end(b, i);
        if end == i || end >= b.len() {
            return None;
        }
        let next = b.get(end + 1..line_end(b, end + 1))?;
        let mut marks = next.iter().filter(|&&c| !matches!(c, b' ' | b'\t' | b'\r'));
        if marks.next() != Some(&b'^') || marks.next().is_some() {
            return None;
        }
        self.replace(i, end, &[MASK]);
        Some(end)
    }
}

/// Remembers where the next occurrence of a pattern is, so that looking
/// for it from each of many increasing offsets costs one pass.
#[derive(Clone, Copy)]
struct Finder {
    pat: &'static [u8],
    /// The offset last searched from (`usize::MAX`: never), and the result.
    from: usize,
    found: Option<usize>,
}

impl Finder {
    fn new(pat: &'static [u8]) -> Self {
        Self {
            pat,
            from: usize::MAX,
            found: None,
        }
    }

    fn next(&mut self, b: &[u8], from: usize) -> Option<usize> {
        if self.from <= from && self.found.is_none_or(|f| f >= from) {
            return self.found;
        }
        self.from = from;
        self.found = b
            .get(from..)
            .and_then(|r| r.windows(self.pat.len()).position(|w| w == self.pat))
            .map(|p| p + from);
        self.found
    }
}

/// In `Key (cols)=(…) conflicts with existing key (cols)=(…)`, where the
/// first value list, starting at `start`, ends: the last `)` followed by
/// either wording and the same column list.
fn conflicts(b: &[u8], start: usize, cols: &[u8]) -> Option<usize> {
    let rest = b.get(start..)?;
    let mut best = None;
    for head in [
        &b") conflicts with existing key ("[..],
        b") conflicts with key (",
    ] {
        let mut pat = Vec::with_capacity(head.len() + cols.len() + 3);
        pat.extend_from_slice(head);
        pat.extend_from_slice(cols);
        pat.extend_from_slice(b")=(");
        let found = rest
            .windows(pat.len())
            .rposition(|w| w == pat.as_slice())
            .map(|p| p + start);
        best = best.max(found);
    }
    best
}

/// Where the SQL text of a context line ends in `sql`: at a `"` that
/// starts a token and is followed by the end of a line. `None` when it is
/// in doubt.
fn sql_end(sql: &str, standard_strings: bool) -> Option<usize> {
    let b = sql.as_bytes();
    let mut lexer = Lexer::new(sql).standard_conforming_strings(standard_strings);
    loop {
        let i = lexer.offset();
        if at(b, i) == b'"' && matches!(b.get(i + 1), None | Some(b'\n' | b'\r')) {
            return Some(i);
        }
        let token = lexer.next()?.ok()?;
        // A line comment would hold the closing `"` of a statement that
        // ends with it.
        if token.kind == TokenKind::LineComment && token.text(sql).contains('"') {
            return None;
        }
    }
}

/// Whether the word before the `"` at `i`, after one space, names an
/// object.
fn object_word_before(b: &[u8], i: usize) -> bool {
    if i < 2 || at(b, i - 1) != b' ' {
        return false;
    }
    let end = i - 1;
    let mut start = end;
    while start > 0 && is_word(at(b, start - 1)) {
        start -= 1;
    }
    let word = b.get(start..end).unwrap_or_default();
    OBJECT_WORDS
        .iter()
        .any(|w| w.as_bytes().eq_ignore_ascii_case(word))
}

/// Whether the `'` at `i` is an apostrophe in an English contraction.
fn is_apostrophe(b: &[u8], i: usize) -> bool {
    i > 0
        && at(b, i - 1).is_ascii_alphabetic()
        && CONTRACTIONS
            .iter()
            .any(|s| starts_ci(b, i + 1, s) && !is_word(at(b, i + 1 + s.len())))
}

fn is_word(c: u8) -> bool {
    c.is_ascii_alphanumeric() || c == b'_' || c >= 0x80
}

/// Quote marks: ASCII, typographic, guillemets, CJK corner brackets and
/// fullwidth forms.
fn is_quote(c: char) -> bool {
    matches!(
        c,
        '"' | '\''
            | '\u{ab}'
            | '\u{bb}'
            | '\u{2018}'..='\u{201f}'
            | '\u{2039}'
            | '\u{203a}'
            | '\u{300c}'..='\u{300f}'
            | '\u{ff02}'
            | '\u{ff07}'
    )
}

/// The quote mark that closes one opened by `c`, for the mask's output.
fn closing_quote(c: char) -> char {
    match c {
        '\u{ab}' => '\u{bb}',
        '\u{bb}' => '\u{ab}',
        '\u{2039}' => '\u{203a}',
        '\u{203a}' => '\u{2039}',
        '\u{2018}' | '\u{201a}' | '\u{201b}' => '\u{2019}',
        '\u{201c}' | '\u{201e}' | '\u{201f}' => '\u{201d}',
        '\u{300c}' => '\u{300d}',
        '\u{300e}' => '\u{300f}',
        c => c,
    }
}

/// Whether `b` holds `pat` at `i`, ASCII case aside.
fn starts_ci(b: &[u8], i: usize, pat: &[u8]) -> bool {
    b.get(i..i.saturating_add(pat.len()))
        .is_some_and(|s| s.eq_ignore_ascii_case(pat))
}

/// The offset of the `\n` ending the line at `i`, or the text's length.
fn line_end(b: &[u8], i: usize) -> usize {
    b.get(i..)
        .and_then(|r| r.iter().position(|&c| c == b'\n'))
        .map_or(b.len(), |p| p + i)
}

/// Whether `parts`, joined, are `s`.
fn same(s: &str, parts: &[&str]) -> bool {
    let mut rest = s;
    for part in parts {
        match rest.strip_prefix(part) {
            Some(r) => rest = r,
            None => return false,
        }
    }
    rest.is_empty()
}
