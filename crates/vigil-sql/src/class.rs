//! Statement classes, as pgaudit's.

use std::fmt;

use crate::items::{Item, Stmt};
use crate::keywords::Kw;
use crate::lexer::TokenKind;

/// What a statement does, in pgaudit's classes, for coverage filters
/// (`pgaudit.log = 'ddl, role'`) and statistics.
///
/// | class | statements |
/// |---|---|
/// | `read` | `SELECT`, `VALUES`, `TABLE`, `COPY … TO` |
/// | `write` | `INSERT`, `UPDATE`, `DELETE`, `MERGE`, `TRUNCATE`, `COPY … FROM` |
/// | `function` | `DO`, `CALL` |
/// | `role` | `GRANT`, `REVOKE`, `CREATE`/`ALTER`/`DROP` `ROLE`/`USER`/`GROUP`, `ALTER DEFAULT PRIVILEGES` |
/// | `ddl` | other `CREATE`/`ALTER`/`DROP`, `COMMENT`, `SECURITY LABEL`, `REFRESH`, `IMPORT FOREIGN SCHEMA`, `REASSIGN OWNED`, `SELECT … INTO` |
/// | `misc` | `SET`, `SHOW`, `BEGIN`, `COMMIT`, `VACUUM`, `DISCARD`, `LISTEN`, …, plain `EXPLAIN`, and anything unrecognised |
///
/// The main verb decides: `WITH … SELECT` reads and `WITH … INSERT`
/// writes, and a `WITH` whose common table expression modifies data
/// (`WITH d AS (DELETE …) SELECT …`) writes. `EXPLAIN ANALYZE` runs its
/// statement and takes its class; plain `EXPLAIN` is `misc`, as in
/// PostgreSQL's `log_statement`. `PREPARE name AS stmt` and `DECLARE c
/// CURSOR FOR stmt` take the class of `stmt`. A `SELECT` that only calls a
/// function is `read`: the proxy cannot see what the function does.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
#[non_exhaustive]
pub enum StatementClass {
    /// Data definition other than roles.
    Ddl,
    /// `DO` blocks and `CALL`.
    Function,
    /// Everything else: session, transaction and maintenance commands.
    Misc,
    /// Reads data.
    Read,
    /// Roles and privileges.
    Role,
    /// Modifies data.
    Write,
}

impl StatementClass {
    /// Every class, in alphabetical order.
    pub const ALL: [Self; 6] = [
        Self::Ddl,
        Self::Function,
        Self::Misc,
        Self::Read,
        Self::Role,
        Self::Write,
    ];

    /// The class's name, as pgaudit writes it in lower case: `read`,
    /// `write`, `function`, `role`, `ddl`, `misc`.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Ddl => "ddl",
            Self::Function => "function",
            Self::Misc => "misc",
            Self::Read => "read",
            Self::Role => "role",
            Self::Write => "write",
        }
    }

    /// The class of a name given by [`as_str`](Self::as_str), in any case.
    pub fn from_name(name: &str) -> Option<Self> {
        Self::ALL
            .into_iter()
            .find(|c| c.as_str().eq_ignore_ascii_case(name))
    }
}

impl fmt::Display for StatementClass {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// The class of the statement made of `items`.
pub(crate) fn classify(sql: &str, items: &[Item], stmt: &Stmt) -> StatementClass {
    use StatementClass::*;
    let c = Cursor { sql, items };
    let mut i = 0;
    let mut writes_in_with = false;
    // Each round either returns or moves `i` forward to an inner statement
    // (EXPLAIN ANALYZE, WITH, PREPARE, DECLARE): no recursion, so no input
    // can exhaust the stack.
    loop {
        while c.sym(i) == b'(' {
            i += 1;
        }
        let reads = if writes_in_with { Write } else { Read };
        // The scan noted the first keyword: most statements need no more.
        let first_word = i == 0 && items.first().is_some_and(|it| it.tok == TokenKind::Word);
        let verb = if first_word { stmt.first_kw } else { c.kw(i) };
        match verb {
            Kw::Select if !stmt.into => return reads,
            Kw::Select => {
                return if c.depth0_word(i + 1, b"into").is_some() {
                    Ddl
                } else {
                    reads
                };
            }
            Kw::Values | Kw::Table => return reads,
            Kw::Insert | Kw::Update | Kw::Delete | Kw::Merge | Kw::Truncate => return Write,
            Kw::Copy => return c.copy_class(i + 1),
            Kw::With => {
                writes_in_with |= c.modifying_cte(i + 1);
                match c.main_verb(i + 1) {
                    Some(main) => i = main,
                    None => return if writes_in_with { Write } else { Misc },
                }
            }
            Kw::Explain => {
                let (analyze, next) = c.explain_options(i + 1);
                if !analyze {
                    return Misc;
                }
                i = next;
            }
            Kw::Prepare if c.kw(i + 1) != Kw::Transaction => match c.depth0_word(i + 1, b"as") {
                Some(as_) => i = as_ + 1,
                None => return Misc,
            },
            Kw::Declare => match c.depth0_word(i + 1, b"for") {
                Some(for_) => i = for_ + 1,
                None => return Misc,
            },
            verb @ (Kw::Create | Kw::Alter | Kw::Drop) => {
                return c.object_class(i + 1, verb == Kw::Alter);
            }
            Kw::Grant | Kw::Revoke => return Role,
            Kw::Do | Kw::Call => return Function,
            Kw::Comment | Kw::Security | Kw::Refresh | Kw::Import | Kw::Reassign => return Ddl,
            _ => return Misc,
        }
    }
}

struct Cursor<'a> {
    sql: &'a str,
    items: &'a [Item],
}

impl Cursor<'_> {
    /// The keyword at `i`; `Kw::None` for anything else.
    fn kw(&self, i: usize) -> Kw {
        self.items.get(i).map_or(Kw::None, |it| it.kw(self.sql))
    }

    /// The byte of the one-byte punctuation or operator at `i`, else 0.
    fn sym(&self, i: usize) -> u8 {
        self.items.get(i).map_or(0, |it| it.sym)
    }

    /// Calls `f` on each item from `i` on with its parenthesis depth (0 at
    /// the statement's level) until `f` returns something.
    fn scan<T>(&self, i: usize, mut f: impl FnMut(usize, &Item, i32) -> Option<T>) -> Option<T> {
        let mut depth = 0i32;
        for (j, it) in self.items.iter().enumerate().skip(i) {
            match it.sym {
                b'(' | b'[' => depth += 1,
                b')' | b']' => depth -= 1,
                _ => {
                    if let Some(v) = f(j, it, depth) {
                        return Some(v);
                    }
                }
            }
        }
        None
    }

    /// The first word `w` (lower case) at the statement's level from `i`.
    fn depth0_word(&self, i: usize, w: &[u8]) -> Option<usize> {
        self.scan(i, |j, it, d| {
            (d == 0 && it.is_word(self.sql, w)).then_some(j)
        })
    }

    /// `COPY … FROM` writes; `COPY … TO` reads.
    fn copy_class(&self, i: usize) -> StatementClass {
        self.scan(i, |_, it, d| match (d, it.kw(self.sql)) {
            (0, Kw::From) => Some(StatementClass::Write),
            (0, Kw::To) => Some(StatementClass::Read),
            _ => None,
        })
        .unwrap_or(StatementClass::Read)
    }

    /// After `WITH`: the index of the main statement's verb.
    fn main_verb(&self, i: usize) -> Option<usize> {
        self.scan(i, |j, it, d| {
            let verb = matches!(
                it.kw(self.sql),
                Kw::Select
                    | Kw::Insert
                    | Kw::Update
                    | Kw::Delete
                    | Kw::Merge
                    | Kw::Values
                    | Kw::Table
            );
            (d == 0 && verb).then_some(j)
        })
    }

    /// After `WITH`: whether a data-modifying statement opens a
    /// parenthesis, as in `WITH d AS (DELETE … RETURNING *)`.
    fn modifying_cte(&self, i: usize) -> bool {
        (i..self.items.len()).any(|j| {
            self.sym(j) == b'('
                && matches!(
                    self.kw(j + 1),
                    Kw::Insert | Kw::Update | Kw::Delete | Kw::Merge
                )
        })
    }

    /// After `EXPLAIN`: whether ANALYZE is on (the last setting wins), and
    /// where the explained statement starts.
    fn explain_options(&self, i: usize) -> (bool, usize) {
        let is_analyze = |j: usize| matches!(self.kw(j), Kw::Analyze | Kw::Analyse);
        let mut analyze = false;
        if self.sym(i) == b'(' {
            let mut depth = 0i32;
            for j in i..self.items.len() {
                match self.sym(j) {
                    b'(' => depth += 1,
                    b')' => {
                        depth -= 1;
                        if depth == 0 {
                            return (analyze, j + 1);
                        }
                    }
                    _ if depth == 1 && is_analyze(j) => {
                        analyze = !matches!(self.kw(j + 1), Kw::False | Kw::Off);
                    }
                    _ => {}
                }
            }
            return (analyze, self.items.len());
        }
        let mut j = i;
        loop {
            if is_analyze(j) {
                analyze = true;
            } else if self.kw(j) != Kw::Verbose {
                return (analyze, j);
            }
            j += 1;
        }
    }

    /// After `CREATE`, `ALTER` or `DROP`: `role` for roles, users and
    /// groups (not user mappings) and default privileges, else `ddl`.
    fn object_class(&self, mut i: usize, alter: bool) -> StatementClass {
        while matches!(
            self.kw(i),
            Kw::Or
                | Kw::Replace
                | Kw::Temp
                | Kw::Temporary
                | Kw::Unlogged
                | Kw::Global
                | Kw::Local
                | Kw::Trusted
                | Kw::Procedural
        ) {
            i += 1;
        }
        let role = match self.kw(i) {
            Kw::Role | Kw::Group => true,
            Kw::User => self.kw(i + 1) != Kw::Mapping,
            Kw::Default => alter && self.kw(i + 1) == Kw::Privileges,
            _ => false,
        };
        if role {
            StatementClass::Role
        } else {
            StatementClass::Ddl
        }
    }
}
