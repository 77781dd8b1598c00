//! The redactor's one pass over the input: lexes it into items (the
//! normalized token stream that the text, the fingerprint and the class are
//! computed from) and splits them into statements.
//!
//! Whitespace is gone (an item only remembers whether some preceded it),
//! comments are gone (an item remembers whether one preceded it), and every
//! value to hide is marked `lit`.

use crate::error::LexError;
use crate::keywords::{Kw, keyword};
use crate::lexer::{Token, TokenKind, at, is_space, lex};

/// One element of a statement's normalized stream.
#[derive(Clone, Copy, Debug)]
pub(crate) struct Item {
    pub(crate) start: usize,
    pub(crate) end: usize,
    pub(crate) tok: TokenKind,
    /// A value to hide: a constant, a number with its sign, a SET value.
    pub(crate) lit: bool,
    /// Whitespace came before it in the input.
    pub(crate) space: bool,
    /// A comment came before it in the input.
    pub(crate) comment: bool,
    /// The byte of a one-byte punctuation or operator token, else 0.
    pub(crate) sym: u8,
}

impl Item {
    pub(crate) fn text<'a>(&self, sql: &'a str) -> &'a str {
        sql.get(self.start..self.end).unwrap_or("")
    }

    /// A literal or a `$n` parameter.
    pub(crate) fn is_placeholder(&self) -> bool {
        self.lit || self.tok == TokenKind::Param
    }

    /// Whether this is the unquoted word `w` (lower case) in any case.
    pub(crate) fn is_word(&self, sql: &str, w: &[u8]) -> bool {
        self.tok == TokenKind::Word
            && !self.lit
            && self.end - self.start == w.len()
            && sql
                .as_bytes()
                .get(self.start..self.end)
                .is_some_and(|t| t.eq_ignore_ascii_case(w))
    }

    /// The keyword this word is, or `Kw::None`.
    pub(crate) fn kw(&self, sql: &str) -> Kw {
        if self.tok == TokenKind::Word && !self.lit {
            keyword(sql.as_bytes().get(self.start..self.end).unwrap_or_default())
        } else {
            Kw::None
        }
    }
}

/// A statement: a range of items and what surrounds them.
#[derive(Clone, Copy, Debug)]
pub(crate) struct Stmt {
    pub(crate) first: usize,
    pub(crate) end: usize,
    /// The highest `$n` parameter in it (0 for none).
    pub(crate) max_param: u64,
    /// A `;` ended it.
    pub(crate) terminated: bool,
    /// A comment came after its last item.
    pub(crate) trailing_comment: bool,
    /// A lexer error cut it short.
    pub(crate) masked: bool,
    /// The keyword of its first word.
    pub(crate) first_kw: Kw,
    /// It has the word `INTO` outside parentheses (for `SELECT … INTO`).
    pub(crate) into: bool,
    /// Not a statement: only a comment, between two `;` or after the last.
    pub(crate) comment_only: bool,
}

/// Lexes `sql` into `items` and `stmts`, and its tokens but whitespace
/// into `tokens`; the lexer error that stopped it, if any.
pub(crate) fn scan(
    sql: &str,
    standard_strings: bool,
    items: &mut Vec<Item>,
    stmts: &mut Vec<Stmt>,
    tokens: &mut Vec<Token>,
) -> Option<LexError> {
    items.clear();
    stmts.clear();
    tokens.clear();
    let b = sql.as_bytes();
    let mut pos = 0;
    let mut space = false;
    let mut comment = false;
    let mut open = Open::new(0);
    let mut error = None;
    while pos < b.len() {
        let (tok, end) = match lex(sql, pos, standard_strings) {
            Ok(t) => t,
            Err(e) => {
                error = Some(e);
                break;
            }
        };
        let start = pos;
        pos = end;
        // Most tokens are followed by one space: skip it here.
        if at(b, end) == b' ' && !is_space(at(b, end + 1)) && tok != TokenKind::Whitespace {
            pos = end + 1;
        }
        let space_after = pos != end;
        if tok != TokenKind::Whitespace {
            tokens.push(Token {
                kind: tok,
                start,
                end,
            });
        }
        match tok {
            TokenKind::Whitespace => {
                space = true;
                continue;
            }
            TokenKind::LineComment | TokenKind::BlockComment => {
                comment = true;
                continue;
            }
            _ => {}
        }
        let sym = match (tok, b.get(start..end)) {
            (TokenKind::Punctuation | TokenKind::Operator, Some(&[c])) => c,
            _ => 0,
        };
        if sym == b';' && open.at_top() {
            open.close(sql, items, stmts, true, comment, false);
            open = Open::new(items.len());
            space = space_after;
            comment = false;
            continue;
        }
        match (sym, tok) {
            (b'(', _) => open.parens += 1,
            (b')', _) => open.parens -= 1,
            // A quoted name counts as a word: an unquoted one unfit for a
            // log line is written quoted, and must split statements alike.
            (_, TokenKind::Word | TokenKind::QuotedIdentifier) => {
                open.word(b.get(start..end).unwrap_or_default());
            }
            (_, TokenKind::Param) => {
                let n = param_number(b.get(start..end).unwrap_or_default());
                open.max_param = open.max_param.max(n);
            }
            (_, TokenKind::Number) if !comment => {
                // A minus before a number where an operand is expected is
                // part of the constant, as in PostgreSQL's grammar: `-4421`
                // is one value, so its sign does not change the fingerprint.
                let n = items.len();
                if n > open.first
                    && let Some(minus) = items.get(n - 1)
                    && minus.sym == b'-'
                    && operand_expected(sql, items.get(open.first..n - 1).and_then(<[_]>::last))
                    && let Some(minus) = items.last_mut()
                {
                    minus.lit = true;
                    minus.sym = 0;
                    minus.end = end;
                    space = space_after;
                    continue;
                }
            }
            _ => {}
        }
        items.push(Item {
            start,
            end,
            tok,
            lit: tok.is_literal(),
            space,
            comment,
            sym,
        });
        space = space_after;
        comment = false;
    }
    open.close(sql, items, stmts, false, comment, error.is_some());
    error
}

/// The statement being scanned. It ends at a `;` outside parentheses and
/// outside the `BEGIN ATOMIC … END` body of a `CREATE FUNCTION` or
/// `CREATE PROCEDURE` (psql's rules).
struct Open {
    first: usize,
    max_param: u64,
    parens: i64,
    begins: u32,
    words: u8,
    first_kw: Kw,
    into: bool,
    /// The first words so far match `CREATE [OR REPLACE] FUNCTION|PROCEDURE`
    /// (`Some(true)` once they do).
    routine: Option<bool>,
}

impl Open {
    fn new(first: usize) -> Self {
        Self {
            first,
            max_param: 0,
            parens: 0,
            begins: 0,
            words: 0,
            first_kw: Kw::None,
            into: false,
            routine: None,
        }
    }

    fn at_top(&self) -> bool {
        self.parens <= 0 && self.begins == 0
    }

    fn word(&mut self, text: &[u8]) {
        if self.parens == 0 && text.eq_ignore_ascii_case(b"into") {
            self.into = true;
        }
        if self.words == 0 || self.routine.is_some() {
            let kw = keyword(text);
            if self.words == 0 {
                self.first_kw = kw;
            }
            let routine_word = matches!(kw, Kw::Function | Kw::Procedure);
            match (self.words, self.routine, kw) {
                (0, _, kw) => self.routine = (kw == Kw::Create).then_some(false),
                (1 | 3, Some(false), _) if routine_word => self.routine = Some(true),
                (1, Some(false), Kw::Or) | (2, Some(false), Kw::Replace) => {}
                (_, Some(false), _) => self.routine = None,
                _ => {}
            }
            if self.routine == Some(true) {
                match kw {
                    Kw::Begin | Kw::Case => self.begins += 1,
                    Kw::End => self.begins = self.begins.saturating_sub(1),
                    _ => {}
                }
            }
        }
        self.words = self.words.saturating_add(1);
    }

    fn close(
        &self,
        sql: &str,
        items: &mut [Item],
        stmts: &mut Vec<Stmt>,
        terminated: bool,
        trailing_comment: bool,
        masked: bool,
    ) {
        let end = items.len();
        let comment_only = end == self.first && !masked;
        if comment_only && !trailing_comment {
            return;
        }
        if matches!(self.first_kw, Kw::Set | Kw::Alter)
            && let Some(stmt_items) = items.get_mut(self.first..)
        {
            mark_set_values(sql, stmt_items);
        }
        stmts.push(Stmt {
            first: self.first,
            end,
            max_param: self.max_param,
            terminated,
            trailing_comment,
            masked,
            first_kw: self.first_kw,
            into: self.into,
            comment_only,
        });
    }
}

/// The number of a `$n` parameter, saturating; underscores are separators.
fn param_number(text: &[u8]) -> u64 {
    text.iter()
        .filter(|c| c.is_ascii_digit())
        .fold(0u64, |n, d| {
            n.saturating_mul(10).saturating_add(u64::from(d - b'0'))
        })
}

/// Whether an operand (rather than an operator) is expected after `prev`.
fn operand_expected(sql: &str, prev: Option<&Item>) -> bool {
    let Some(prev) = prev else { return true };
    match prev.tok {
        _ if prev.lit => false,
        TokenKind::Operator => true,
        TokenKind::Punctuation => matches!(prev.sym, b'(' | b',' | b'['),
        TokenKind::Word => prev.kw(sql).expects_operand(),
        _ => false,
    }
}

/// In `SET name {=|TO} value` (and `ALTER … SET name {=|TO} value`), values
/// may be bare words, `SET app.api_key = s3cr3t`, and are data: marks the
/// words and quoted identifiers of the value as literals, except `DEFAULT`
/// and `LOCAL`. `SET TIME ZONE value` too.
fn mark_set_values(sql: &str, items: &mut [Item]) {
    let Some(first) = items.first() else { return };
    let kw = |items: &[Item], i: usize| items.get(i).map_or(Kw::None, |it| it.kw(sql));
    let sym = |items: &[Item], i: usize| items.get(i).map_or(0, |it| it.sym);
    let mut j = match first.kw(sql) {
        Kw::Set if matches!(kw(items, 1), Kw::Session | Kw::Local) => 2,
        Kw::Set => 1,
        Kw::Alter => {
            let mut depth = 0i32;
            let mut set = None;
            for (i, it) in items.iter().enumerate().skip(1) {
                match it.sym {
                    b'(' | b'[' => depth += 1,
                    b')' | b']' => depth -= 1,
                    _ if depth == 0 && it.is_word(sql, b"set") => {
                        set = Some(i);
                        break;
                    }
                    _ => {}
                }
            }
            match set {
                Some(set) => set + 1,
                None => return,
            }
        }
        _ => return,
    };
    let values = if kw(items, j) == Kw::Time {
        if kw(items, j + 1) != Kw::Zone {
            return;
        }
        j + 2
    } else {
        // A name: words or quoted identifiers, dotted; then `=` or `TO`.
        loop {
            let name = items
                .get(j)
                .is_some_and(|it| matches!(it.tok, TokenKind::Word | TokenKind::QuotedIdentifier));
            if !name {
                return;
            }
            if sym(items, j + 1) == b'.' {
                j += 2;
            } else {
                break;
            }
        }
        let assign = items.get(j + 1).is_some_and(|it| {
            (it.tok == TokenKind::Operator && it.sym == b'=') || it.kw(sql) == Kw::To
        });
        if !assign {
            return;
        }
        j + 2
    };
    for it in items.iter_mut().skip(values) {
        if matches!(it.tok, TokenKind::Word | TokenKind::QuotedIdentifier)
            && !matches!(it.kw(sql), Kw::Default | Kw::Local)
        {
            it.lit = true;
        }
    }
}
