//! SQL injection and dangerous capabilities, read from a statement's
//! structure.
//!
//! [`inspect`] lexes a query string with [`vigil_sql::Lexer`] and looks at
//! its tokens, never at a regular expression over the raw text: what is
//! inside a string constant or a comment is data, and only the shape of the
//! statement around it counts. A proxy calls it once per simple Query and
//! once per Parse; one that redacts the same text first calls
//! [`inspect_tokens`] with the tokens its [`vigil_sql::Redactor`] lexed,
//! so that the text is lexed once. Each [`Finding`] names its [`Rule`],
//! the [`Kind`] of event it belongs to and a byte offset into the query
//! string; it never holds text from the statement.
//!
//! ```
//! use vigil_detect::sqli::{inspect, Context, Kind, Rule};
//!
//! let cx = Context { simple_query: true, application_role: true, standard_conforming_strings: true };
//! let mut out = Vec::new();
//! inspect("SELECT * FROM users WHERE name = '' OR '1'='1' --'", &cx, &mut out);
//! let rules: Vec<Rule> = out.iter().map(|f| f.rule).collect();
//! assert_eq!(rules, [Rule::Tautology, Rule::CommentAfterLiteral]);
//! assert!(out.iter().all(|f| f.kind == Kind::Injection));
//!
//! out.clear();
//! inspect("SELECT * FROM users WHERE name = 'O''Brien -- or 1=1'", &cx, &mut out);
//! assert!(out.is_empty());
//! ```
//!
//! # Rules
//!
//! | rule | kind | fires on | stays quiet on |
//! |---|---|---|---|
//! | `tautology` | injection | an always-true operand after `OR`: `OR 1=1`, `OR 'a'='a'`, `OR 2>1`, `OR '1'`, `OR TRUE`, `OR (1=1)`, `OR x=x`, `OR 'a' LIKE '%'` | `OR` between real predicates; `(1=0 OR …)`, the neutral element builders put first; `('' = '' OR name = '')`, where the constant test comes first; `OR 1` (a number is no boolean: PostgreSQL rejects it) |
//! | `constant_condition` | injection | a comparison of constants appended with `AND`/`OR` that is not a builder's `=`/`<>` between 0, 1 and 2: `AND 8=3`, `AND 'a'='a'`, `AND pi()=pi()`, `AND 1 NOT LIKE 0`; anywhere, two integers of four digits or more compared (sqlmap's `CASE WHEN 4518=5617`, `IIF(2510=9436, …)`); a number or string as a searched `CASE`'s first condition (`CASE WHEN 2 THEN`, which PostgreSQL rejects) | `WHERE 1=1 AND …`, `AND 1=0`, `AND (1 != 1)`; a constant comparison that comes first (`CASE WHEN 'en' = 'en'`) or is followed by `OR`; comparisons with a column, a parameter, a subquery, or a function of state (`now()`, `random()`, `current_setting()`) |
//! | `chained_comparison` | injection | a comparison, a string, and another comparison in one operand: `name = 'a' = 'b'`, `name = 'x' LIKE '0'`, `name = 'X' - 'Y' = '1'`, `name = 'aa' / current_date != '1'`, the mark of a quote closed early (PostgreSQL rejects `a = b = c`); a string whose closing quote is glued to `AND`, `OR`, `IS`, `NOT`, `LIKE`, `XOR`, `UNION`, … (`'aa'or col!='1'`); a string after a comparison that starts arithmetic ending in an operator and another string (`name = '1' * id - '0'`) | comparisons separated by `AND`, `OR`, commas, parentheses or clauses; benign text in a numeric slot (`id = I <3 <3`), where no string comes between; `'a' OR b` spaced; `'4' + X + 4'+WOOD'`, `'a' * '''b'` |
//! | `union_padding` | injection | a `UNION` after a query that reads a table, whose new branch is mostly constants or NULLs (more than half its columns, not aliased) while the first branch has none | `UNION ALL` of real columns (CTEs, recursive CTEs), unions whose first branch has constant columns too (`'a' AS kind`, Hibernate's `NULL::int AS x`), constant-only unions (`SELECT 1 UNION SELECT 2`) |
//! | `union_column_mismatch` | injection | a `UNION` whose branches have different numbers of columns: the column-count probe of UNION-based injection (PostgreSQL rejects it); a query string ending in `UNION`, `UNION ALL` or `UNION SELECT`; `UNION SELECT *` after a first branch that lists its columns and has a `WHERE` | `*` or `t.*` in either branch, where the count is unknown, unless as said; `SELECT * … UNION SELECT * …`; a listed first branch without `WHERE` |
//! | `foreign_syntax` | injection | syntax of another database, which PostgreSQL rejects and an application written for it never sends: MySQL's `/*!…*/`, backquoted names, `@@version`, `LIMIT n, m`, `INTO OUTFILE`, `LOAD DATA INFILE`, `load_file(`, the infix `DIV`, `MOD`, `XOR`, `RLIKE`, `REGEXP`, `SOUNDS LIKE` after a constant or `)`, a double-quoted string closed early (`id = asd"or 1="1`), `@` glued to a server fact (`@version`, `@current_user`), `FROM DUAL` in a subquery, calls of MySQL's and SQL Server's functions (`if(`, `ifnull(`, `isnull(`, `iif(`, `mid(`, `ord(`, `conv(`, `hex(`, `database(`, `charset(`, `find_in_set(`, …), `MATCH … AGAINST (`; SQL Server's `SELECT TOP n`, `xp_cmdshell`, `DECLARE @x`, `EXEC`/`EXECUTE sp_…`, `EXEC(@s)`, `IF`, `WHILE`, `SHUTDOWN` or `GOTO` starting a statement after `;` | `LIMIT n OFFSET m`, text search `@@`; `mod(a, b)`, columns and aliases named `div`, `mod`, `xor`; operator words after a bare word (`60;S MOD DRESSES`); `DECLARE c CURSOR`, `EXECUTE stmt(…)`; `a"b"` in a select list; `SELECT … FROM dual` at the top level (orafce); schema-qualified functions and table names (`s.mid(x)`, `INSERT INTO hex (…)`); `#` between operands (`a # b`, `a\n  # b`) |
//! | `stacked_queries` | injection | several statements in one simple Query from an application role, each after the first starting with a PostgreSQL verb, unless they are a batch: all of one verb besides transaction and session commands (`BEGIN`, `SET`, `COMMIT`, …), and no line comment at the end | any role not marked as an application's (psql scripts, migrations); Parse messages; benign text after a `;` (`60;S MOD DRESSES`: PostgreSQL parses the whole string first and rejects it) |
//! | `comment_after_literal` | injection | a literal (`NULL`, `TRUE` and `FALSE` included) or `)` followed by a line comment that runs to the end of the query string (for any role when the comment is glued to it or holds a quote, the template's swallowed rest; for an application role always); glued to a block comment glued to the next token (`1/**/UNION`), or followed by an empty `/**/`; MySQL's `#` after a string, glued to a number, after `UNION`/`SELECT`/`AND`/`OR`/`WHERE`/`FROM`, or opening a line glued to a word; for an application role, a line comment glued to a relation's name after `FROM`/`JOIN` (`FROM users--`) that runs to the end | a comment followed by more SQL on the next line; sqlcommenter's trailing `/*…*/`; `--` inside strings; `FROM users -- note` spaced; a comment glued to other names (`id = zzh7W--`) |
//! | `time_function` | injection | `pg_sleep`, `pg_sleep_for`, `pg_sleep_until`, `sleep(`, `benchmark(`, `dbms_pipe.receive_message(`, `WAITFOR DELAY`/`TIME` | a column named `sleep` |
//! | `error_cast` | injection | a cast to a number or boolean (`CAST(… AS int)`, `::int`) of a server fact (`version()`, `current_user`, `current_database()`), of `chr()`-built text, or of a concatenation around a subquery; MySQL's `extractvalue(`/`updatexml(`; `convert(int, …)` | `count(*)::int`, `CAST($1 AS int)`, `CAST(price AS int)`, `NULL::int`, `current_setting(…)::int`, a column named `version` |
//! | `bare_subquery` | injection | `SELECT` right after a comparison, `AND`, `OR`, `NOT` or `BY` (`id = SELECT …`, `ORDER BY SELECT …`), or a subquery whose `(` the query string never closes (`id = (SELECT substr(login)`): PostgreSQL rejects both | `INSERT … SELECT`, `AS SELECT`, `FOR SELECT`, `IN (SELECT …)`, `EXISTS (SELECT …)` |
//! | `misplaced_quote` | injection | a `'` glued to a value where the application had no string open (`ORDER BY id'…`, `id = 1'…`): a string glued to a word or number on both sides whose text starts and ends with `AND`, `OR` or `XOR` (`ORDER BY id' AND 1=1 AND 'x'='x`, `id = 1' or '1'='1`); or a quote never closed whose rest, read as SQL, lexes, starts (past `)`) with `AND`/`OR`/`XOR` or `;` and a statement's verb, and ends in a line comment (`ORDER BY id';SELECT pg_sleep(1)--`) | benign text with quotes in a value's slot: `rock'n'roll`, `5' and 6' tall`, `WOMEN';S ART`, `I' IS NOT …`; typed literals (`date'2024-01-01'`); strings after an operator or a keyword |
//! | `catalog_read` | catalog read | an application role naming `information_schema`, or a sensitive catalog where a relation goes (`pg_authid`, `pg_shadow`, `pg_user`, `pg_roles`, `pg_class`, `pg_attribute`, `pg_proc`, `pg_tables`, `pg_settings`, `pg_stat_activity`, `pg_largeobject`, …) | drivers' type loading (`pg_type`, `pg_namespace`, `pg_range`, `pg_enum`); `pg_catalog.` functions; a column of that name; any other role |
//! | `copy_program` | capability | `COPY … FROM PROGRAM` / `TO PROGRAM` | `COPY … FROM STDIN` |
//! | `file_access` | capability | `pg_read_file`, `pg_read_binary_file`, `pg_ls_dir`, `pg_stat_file`, adminpack's writers, `lo_import(`, `COPY … FROM`/`TO '<server file>'`, `CREATE EXTENSION adminpack`/`file_fdw`; MySQL's `load_file(`, `INTO OUTFILE`/`DUMPFILE`, `LOAD DATA INFILE` | `COPY … TO STDOUT` |
//! | `large_object_export` | capability | `lo_export(` | `lo_get(`, `lo_put(` |
//! | `dblink` | capability | `dblink…(` calls, `CREATE EXTENSION dblink`/`postgres_fdw` | |
//! | `alter_system` | capability | `ALTER SYSTEM` | `ALTER TABLE` |
//! | `role_change` | capability | an application role's `GRANT`, `REVOKE`, `CREATE`/`ALTER`/`DROP ROLE`/`USER`/`GROUP`, `ALTER DEFAULT PRIVILEGES` | `CREATE USER MAPPING`; any other role |
//! | `untrusted_language` | capability | `LANGUAGE plpython3u`/`plperlu`/`pltclu`/`plsh`/`c`/`internal`/…, `CREATE LANGUAGE` or `CREATE EXTENSION` of one | `LANGUAGE sql`, `plpgsql` |
//! | `shell_command` | capability | SQL Server's `xp_cmdshell`, `sp_oacreate`, `sp_execute_external_script`: never legitimate against PostgreSQL | |
//!
//! Each rule is reported at most once per query string, at its first
//! occurrence; findings come sorted by offset.
//!
//! # Choices
//!
//! - **Query builders' constants.** `WHERE 1=1 AND …`, `AND 1=0` (an empty
//!   `IN` list), `(1 != 1)` and `(1=0 OR …)` are what builders write; a
//!   constant comparison is a finding only when it is true after `OR`, or
//!   appended with values other than a builder's. `TRUE`/`FALSE` operands
//!   are never one unless it is `OR TRUE`.
//! - **Client-side parameters.** Drivers that interpolate parameters
//!   (psycopg2, PDO's emulation) turn `(%s = '' OR name = %s)` into
//!   `('' = '' OR name = '')`. A constant comparison that comes first in its
//!   group or is followed by `OR` is left alone for that reason, and so is
//!   `NULL IS NULL`. Two shapes of interpolated parameters cannot be told
//!   from injection and are reported: the optional filter written the
//!   other way round, `(name = '' OR '' = '')` (the injection `' OR ''='`),
//!   and a parameter compared with a constant and appended,
//!   `AND 'admin' = 'admin'` (the probe `' AND 'a'='a`).
//! - **Stacked queries** need an application role and a simple Query: psql
//!   scripts, migrations and admin tools send several statements at once,
//!   and so do drivers' batches (`execute_batch`), which repeat one verb.
//!   The injected shape (`'; DROP …; --`) changes verb or ends in a
//!   comment. An application that sends `UPDATE …; INSERT …` in one simple
//!   Query is reported.
//! - **Comments at the end.** ORMs never end a statement with a line
//!   comment; hand-written SQL of an application role that does, after a
//!   value, is reported.
//! - **Rejected statements.** `chained_comparison`,
//!   `union_column_mismatch`, `foreign_syntax`, `bare_subquery` and
//!   `misplaced_quote` fire on statements PostgreSQL rejects: they report
//!   the attempt, an application sending SQL its code never writes, which
//!   is how scanners probe.
//! - **Lexer errors.** PostgreSQL lexes the whole query string before it
//!   runs any of it, so a string that never ends makes it fail. Injection
//!   findings are dropped then: benign text with a quote (`Y'ALL`,
//!   `O'Brien`) breaks a vulnerable template the same way, and what follows
//!   the quote takes any shape. Capability and catalog findings before the
//!   error stay: their words do not come from benign text. One injection
//!   finding is made on such strings, `misplaced_quote`, when the rest
//!   after the quote reads as SQL that continues a condition or starts a
//!   statement and ends in a comment: the quote was meant to close a string.
//! - **Quotes in a value's slot.** Tools do not know whether the value they
//!   inject into is a string, so they try each boundary in turn: `'`, `')`,
//!   none. Sent where the application splices a name or a number (`ORDER
//!   BY <by>`, `id = <id>`), the string forms put the quote after a value,
//!   and the quotes then enclose the injected condition
//!   (`id' AND 1=1 AND 'x'='x` lexes as `id`, `' AND 1=1 AND '`, `x`,
//!   `'='`, `x`). PostgreSQL rejects these, but they are the attempt, and
//!   on the string endpoints of the same application the same probes work.
//!   `misplaced_quote` reads the text of such a string, as
//!   `foreign_syntax` reads a quoted name closed early: the text a value
//!   glued to a quote holds is no value when it starts and ends with a
//!   connective. Benign text with quotes (`rock'n'roll`, `5' and 6'
//!   tall`) does not both start and end so, or is not glued on both sides.
//! - **Role.** Injection rules and capabilities do not depend on the role,
//!   except as said above; `catalog_read` and `role_change` only concern
//!   application roles. Drivers that introspect composite types (Npgsql,
//!   asyncpg) and ORMs that read the schema at start-up (Rails reads
//!   `pg_attribute`) raise `catalog_read` once per pool or process: it is
//!   an event to baseline per application, not an injection.

use std::cell::RefCell;

use vigil_sql::{LexError, Lexer, Token, TokenKind};

/// What the proxy knows about a statement and its session.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct Context {
    /// The statement came in a simple Query message, which may hold several
    /// statements; `false` for a Parse message.
    pub simple_query: bool,
    /// The session's role is an application's (configured), not a person's
    /// or an administration tool's.
    pub application_role: bool,
    /// The session's `standard_conforming_strings`, as the server last
    /// reported it: it decides where some strings end.
    pub standard_conforming_strings: bool,
}

impl Default for Context {
    /// A simple Query, from a role not marked as an application's, with
    /// `standard_conforming_strings` on.
    fn default() -> Self {
        Self {
            simple_query: true,
            application_role: false,
            standard_conforming_strings: true,
        }
    }
}

/// Which event a finding belongs to.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Kind {
    /// `anomaly.sql_injection` (3100).
    Injection,
    /// `anomaly.dangerous_capability` (3103).
    Capability,
    /// `anomaly.catalog_read` (3111).
    CatalogRead,
}

impl Kind {
    /// A stable lower-case name: `injection`, `capability`, `catalog_read`.
    pub const fn as_str(self) -> &'static str {
        match self {
            Self::Injection => "injection",
            Self::Capability => "capability",
            Self::CatalogRead => "catalog_read",
        }
    }

    /// The catalog event to emit for findings of this kind.
    pub fn event(self) -> vigil_event::Kind {
        match self {
            Self::Injection => vigil_event::catalog::ANOMALY_SQL_INJECTION,
            Self::Capability => vigil_event::catalog::ANOMALY_DANGEROUS_CAPABILITY,
            Self::CatalogRead => vigil_event::catalog::ANOMALY_CATALOG_READ,
        }
    }
}

macro_rules! rules {
    ($($(#[$doc:meta])* $rule:ident = $name:literal $kind:ident,)*) => {
        /// A detector; see the [module documentation](self) for what each
        /// one fires on.
        #[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
        #[non_exhaustive]
        pub enum Rule {
            $($(#[$doc])* $rule,)*
        }

        impl Rule {
            /// Every rule, in declaration order.
            pub const ALL: &'static [Rule] = &[$(Rule::$rule,)*];

            /// The rule's stable name, as logged: `tautology`,
            /// `union_padding`, `copy_program`, ...
            pub const fn as_str(self) -> &'static str {
                match self {
                    $(Rule::$rule => $name,)*
                }
            }

            /// The kind of event the rule's findings belong to.
            pub const fn kind(self) -> Kind {
                match self {
                    $(Rule::$rule => Kind::$kind,)*
                }
            }
        }
    };
}

rules! {
    /// An always-true operand after `OR`.
    Tautology = "tautology" Injection,
    /// A comparison of constants appended as a condition.
    ConstantCondition = "constant_condition" Injection,
    /// A second comparison after a string in one operand: a quote closed
    /// early.
    ChainedComparison = "chained_comparison" Injection,
    /// `UNION SELECT` padded with constants or NULLs.
    UnionPadding = "union_padding" Injection,
    /// A `UNION` whose branches have different numbers of columns.
    UnionColumnMismatch = "union_column_mismatch" Injection,
    /// Syntax of another database, which PostgreSQL rejects.
    ForeignSyntax = "foreign_syntax" Injection,
    /// Several statements in one simple Query from an application role,
    /// not a batch.
    StackedQueries = "stacked_queries" Injection,
    /// A comment right after a literal or `)`, swallowing the rest of the
    /// statement or gluing tokens.
    CommentAfterLiteral = "comment_after_literal" Injection,
    /// A function or command that makes the server wait.
    TimeFunction = "time_function" Injection,
    /// A cast meant to fail with a server fact in its error message.
    ErrorCast = "error_cast" Injection,
    /// A `SELECT` where a value or condition goes, without parentheses or
    /// with its `(` left open.
    BareSubquery = "bare_subquery" Injection,
    /// A quote glued to a value where no string was open, whose text reads
    /// as the rest of a condition or another statement.
    MisplacedQuote = "misplaced_quote" Injection,
    /// An application role reading the system catalog.
    CatalogRead = "catalog_read" CatalogRead,
    /// `COPY … PROGRAM`.
    CopyProgram = "copy_program" Capability,
    /// Server-side file reads and writes.
    FileAccess = "file_access" Capability,
    /// `lo_export`.
    LargeObjectExport = "large_object_export" Capability,
    /// Connections to other servers from inside the database.
    Dblink = "dblink" Capability,
    /// `ALTER SYSTEM`.
    AlterSystem = "alter_system" Capability,
    /// Role and privilege changes by an application role.
    RoleChange = "role_change" Capability,
    /// Functions in an untrusted language.
    UntrustedLanguage = "untrusted_language" Capability,
    /// SQL Server's shell procedures.
    ShellCommand = "shell_command" Capability,
}

// Findings are deduplicated with one bit per rule.
const _: () = assert!(Rule::ALL.len() <= 32);

impl Rule {
    /// The rule named `name` (as [`as_str`](Self::as_str) writes it), in
    /// any case.
    pub fn from_name(name: &str) -> Option<Self> {
        Self::ALL
            .iter()
            .copied()
            .find(|r| r.as_str().eq_ignore_ascii_case(name))
    }
}

/// One detector's finding in one query string.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct Finding {
    /// The detector.
    pub rule: Rule,
    /// Its event, `rule.kind()`.
    pub kind: Kind,
    /// Byte offset in the query string of the token that triggered it. To
    /// point into what is logged, map it onto the redacted text; never use
    /// it to quote the raw statement.
    pub offset: usize,
}

/// Inspects one query string and appends what it finds to `out`.
///
/// Uses a per-thread [`Inspector`], so it allocates nothing but `out`'s
/// growth once that inspector's buffers have grown to the longest
/// statement seen.
pub fn inspect(sql: &str, cx: &Context, out: &mut Vec<Finding>) {
    thread_local! {
        static INSPECTOR: RefCell<Inspector> = RefCell::new(Inspector::new());
    }
    INSPECTOR.with(|cell| match cell.try_borrow_mut() {
        Ok(mut inspector) => inspector.inspect(sql, cx, out),
        Err(_) => Inspector::new().inspect(sql, cx, out),
    });
}

/// Inspects one query string already lexed, as [`inspect`] does, and
/// appends what it finds to `out`: for a caller that has the tokens at
/// hand, so that the query string is not lexed again. See
/// [`Inspector::inspect_tokens`].
pub fn inspect_tokens(
    sql: &str,
    tokens: &[Token],
    error: Option<LexError>,
    cx: &Context,
    out: &mut Vec<Finding>,
) {
    thread_local! {
        static INSPECTOR: RefCell<Inspector> = RefCell::new(Inspector::new());
    }
    INSPECTOR.with(|cell| match cell.try_borrow_mut() {
        Ok(mut inspector) => inspector.inspect_tokens(sql, tokens, error, cx, out),
        Err(_) => Inspector::new().inspect_tokens(sql, tokens, error, cx, out),
    });
}

/// Runs the detectors, reusing its buffers from one query string to the
/// next.
#[derive(Debug, Default)]
pub struct Inspector {
    toks: Vec<Tok>,
    /// The indexes in `toks` of the tokens the scan looks at.
    hot: Vec<u32>,
    frames: Vec<Frame>,
}

/// Buffers above this many tokens are released after use, so that one huge
/// statement does not pin memory.
const KEEP_TOKENS: usize = 1 << 16;

/// Parentheses and `CASE` deeper than this are not tracked apart.
const MAX_DEPTH: usize = 32;

/// How far, in tokens, a cast's operand is looked for: no input can make
/// casts cost more than this each.
const MAX_CAST: usize = 1024;

const NONE: usize = usize::MAX;

impl Inspector {
    /// An inspector with empty buffers.
    pub fn new() -> Self {
        Self::default()
    }

    /// Inspects one query string and appends what it finds to `out`.
    pub fn inspect(&mut self, sql: &str, cx: &Context, out: &mut Vec<Finding>) {
        let lexer = Lexer::new(sql).standard_conforming_strings(cx.standard_conforming_strings);
        self.run(sql, lexer, cx, out);
    }

    /// Inspects one query string already lexed and appends what it finds
    /// to `out`, the same findings as [`inspect`](Self::inspect) makes.
    /// `tokens` are the query string's tokens as the [`Lexer`] yields them
    /// under `cx.standard_conforming_strings`, whitespace left out, up to
    /// its `error` if it failed: what
    /// [`Redactor::tokens`](vigil_sql::Redactor::tokens) and
    /// [`Redacted::error`](vigil_sql::Redacted::error) hold after the
    /// redactor read `sql`.
    ///
    /// ```
    /// use vigil_detect::sqli::{Context, Inspector};
    /// use vigil_sql::Redactor;
    ///
    /// let sql = "SELECT * FROM users WHERE id = 1 OR 1=1";
    /// let cx = Context::default();
    /// let mut redactor = Redactor::new();
    /// let redacted = redactor.redact(sql);
    /// let mut inspector = Inspector::new();
    /// let (mut lexed, mut again) = (Vec::new(), Vec::new());
    /// inspector.inspect_tokens(sql, redactor.tokens(), redacted.error, &cx, &mut lexed);
    /// inspector.inspect(sql, &cx, &mut again);
    /// assert_eq!(lexed, again);
    /// assert_eq!(lexed.len(), 1);
    /// ```
    pub fn inspect_tokens(
        &mut self,
        sql: &str,
        tokens: &[Token],
        error: Option<LexError>,
        cx: &Context,
        out: &mut Vec<Finding>,
    ) {
        let lexed = Lexed {
            tokens: tokens.iter(),
            end: 0,
            error,
        };
        self.run(sql, lexed, cx, out);
    }

    // Inlined into both callers, as `collect` into it: each then keeps the
    // lexer's or the token slice's state in registers, as one function.
    #[inline(always)]
    fn run(&mut self, sql: &str, source: impl Source, cx: &Context, out: &mut Vec<Finding>) {
        let base = out.len();
        let mut found = Found { seen: 0, out };
        self.toks.clear();
        self.hot.clear();
        let (trailing_line_comment, lex_error) =
            collect(sql, source, cx, &mut self.toks, &mut self.hot, &mut found);
        // On a lexer error, a quote the query string never closes may
        // still be one the injection misplaced.
        let lex_error = lex_error.map(|error| unclosed_quote(sql, cx, &self.toks, error));
        let mut scan = Scan {
            sql,
            t: &self.toks,
            hot: &self.hot,
            cx,
            frames: &mut self.frames,
            found: &mut found,
            trailing_line_comment,
        };
        scan.run();
        if let Some(misplaced) = lex_error {
            // PostgreSQL rejects the whole query string: nothing ran, and a
            // quote in benign text breaks a vulnerable template just so.
            let mut keep = base;
            for j in base..out.len() {
                if out[j].kind != Kind::Injection {
                    out.swap(keep, j);
                    keep += 1;
                }
            }
            out.truncate(keep);
            if let Some(offset) = misplaced {
                out.push(Finding {
                    rule: Rule::MisplacedQuote,
                    kind: Rule::MisplacedQuote.kind(),
                    offset,
                });
            }
        }
        if let Some(new) = out.get_mut(base..) {
            new.sort_unstable_by_key(|f| f.offset);
        }
        if self.toks.capacity() > KEEP_TOKENS {
            self.toks = Vec::new();
            self.hot = Vec::new();
        }
    }
}

struct Found<'o> {
    seen: u32,
    out: &'o mut Vec<Finding>,
}

impl Found<'_> {
    fn add(&mut self, rule: Rule, offset: usize) {
        let bit = 1u32 << (rule as u32);
        if self.seen & bit == 0 {
            self.seen |= bit;
            self.out.push(Finding {
                rule,
                kind: rule.kind(),
                offset,
            });
        }
    }
}

// ---------------------------------------------------------------------------
// Tokens

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Class {
    Word,
    QIdent,
    Str,
    Bits,
    Num,
    Param,
    Op,
    Punct,
    Other,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Op {
    Eq,
    Ne,
    Lt,
    Gt,
    Le,
    Ge,
    Cast,
    Concat,
    Hash,
    Minus,
    Plus,
    Star,
    Other,
}

/// A significant token (not whitespace, not a comment).
#[derive(Clone, Copy, Debug)]
struct Tok {
    start: usize,
    end: usize,
    class: Class,
    kw: Kw,
    op: Op,
    /// The byte of a punctuation token.
    sym: u8,
    /// A plain `'…'` string, whose text between the quotes can be compared.
    plain: bool,
}

impl Tok {
    /// What [`collect`] takes for the token before the first: a `;` that
    /// ends nothing, so the first token starts a statement.
    const BEFORE: Tok = Tok {
        start: NONE,
        end: NONE,
        class: Class::Punct,
        kw: Kw::None,
        op: Op::Other,
        sym: b';',
        plain: false,
    };

    fn is_literal(&self) -> bool {
        matches!(self.class, Class::Str | Class::Bits | Class::Num)
    }

    /// Whether the scan has anything to do at this token, `prev` being the
    /// one before it: keywords, plain strings, comparison and other
    /// operators that rules look at, `(`, `)`, `,`, `;`, a quoted name that
    /// is a catalog's or glued to a name or number, the first token of a
    /// statement. Names and numbers are only looked at from these.
    fn hot(&self, prev: &Tok) -> bool {
        if prev.class == Class::Punct && prev.sym == b';' {
            return true;
        }
        match self.class {
            Class::Word => self.kw != Kw::None,
            Class::Str => self.plain,
            Class::QIdent => {
                self.kw != Kw::None
                    || (prev.end == self.start
                        && (prev.class == Class::Num
                            || (prev.class == Class::Word && prev.kw == Kw::None)))
            }
            Class::Punct => matches!(self.sym, b'(' | b')' | b',' | b';'),
            Class::Op => !matches!(self.op, Op::Minus | Op::Plus | Op::Star | Op::Concat),
            Class::Num | Class::Bits | Class::Param | Class::Other => false,
        }
    }
}

#[inline]
fn operator(text: &[u8]) -> Op {
    match text {
        b"=" => Op::Eq,
        b"<>" | b"!=" => Op::Ne,
        b"<" => Op::Lt,
        b">" => Op::Gt,
        b"<=" => Op::Le,
        b">=" => Op::Ge,
        b"::" => Op::Cast,
        b"||" => Op::Concat,
        b"#" => Op::Hash,
        b"-" => Op::Minus,
        b"+" => Op::Plus,
        b"*" => Op::Star,
        _ => Op::Other,
    }
}

/// A comment after a literal, waiting for what follows it.
#[derive(Clone, Copy)]
enum Pending {
    None,
    Line {
        at: usize,
        glued: bool,
        quote: bool,
    },
    Block {
        at: usize,
        glued: bool,
        empty: bool,
        spaced: bool,
    },
}

/// Where [`collect`] takes a query string's tokens from: the [`Lexer`], or
/// tokens lexed before ([`Lexed`]).
trait Source {
    /// Moves past the whitespace before the next token; whether there was
    /// any before a token that follows.
    fn skip_whitespace(&mut self) -> bool;

    /// The next token, or the lexer's error, after which there is nothing.
    fn next(&mut self) -> Option<Result<Token, LexError>>;
}

impl Source for Lexer<'_> {
    #[inline(always)]
    fn skip_whitespace(&mut self) -> bool {
        Lexer::skip_whitespace(self)
    }

    #[inline(always)]
    fn next(&mut self) -> Option<Result<Token, LexError>> {
        Iterator::next(self)
    }
}

/// Tokens lexed before, whitespace left out: whitespace is wherever one
/// token does not start where the one before ended.
struct Lexed<'t> {
    tokens: std::slice::Iter<'t, Token>,
    /// The end of the token returned last.
    end: usize,
    error: Option<LexError>,
}

impl Source for Lexed<'_> {
    #[inline(always)]
    fn skip_whitespace(&mut self) -> bool {
        self.tokens
            .as_slice()
            .first()
            .is_some_and(|t| t.start != self.end)
    }

    #[inline(always)]
    fn next(&mut self) -> Option<Result<Token, LexError>> {
        match self.tokens.next() {
            Some(&token) => {
                self.end = token.end;
                Some(Ok(token))
            }
            None => self.error.take().map(Err),
        }
    }
}

/// Reads `sql`'s tokens from `lexer` into `toks` (significant tokens only)
/// and runs the comment rule, which needs the whitespace and comments the
/// scan never sees. Returns whether the query string ends in a line
/// comment, and the lexer's error if it failed.
#[inline(always)]
fn collect(
    sql: &str,
    mut lexer: impl Source,
    cx: &Context,
    toks: &mut Vec<Tok>,
    hot: &mut Vec<u32>,
    found: &mut Found<'_>,
) -> (bool, Option<LexError>) {
    let bytes = sql.as_bytes();
    let mut pending = Pending::None;
    // The end of the last significant token, when it is a literal or a
    // closing parenthesis and no comment came after it yet; else `NONE`.
    let mut after_literal = NONE;
    // The end of the last significant token when it is a relation's name
    // (after `FROM` or `JOIN`), and a line comment glued to it, waiting to
    // see whether it runs to the end; else `NONE`.
    let mut after_name = NONE;
    let mut name_comment = NONE;
    let mut last_line_comment = false;
    let mut error = None;
    // The first token starts a statement, as after a `;`.
    let mut after = After {
        semicolon: true,
        from_join: false,
    };
    loop {
        // Whitespace matters only after a block comment; other rules
        // compare offsets.
        if lexer.skip_whitespace()
            && let Pending::Block { spaced, .. } = &mut pending
        {
            *spaced = true;
        }
        let token = match lexer.next() {
            Some(Ok(token)) => token,
            Some(Err(e)) => {
                error = Some(e);
                break;
            }
            None => break,
        };
        if token.kind.is_comment() {
            let text = bytes.get(token.start..token.end).unwrap_or_default();
            let line = token.kind == TokenKind::LineComment;
            if text.starts_with(b"/*!") {
                found.add(Rule::ForeignSyntax, token.start);
            }
            last_line_comment = line;
            if let Pending::Block { spaced, .. } = &mut pending {
                *spaced = true;
            }
            if line {
                if after_name == token.start {
                    name_comment = token.start;
                }
                after_name = NONE;
            }
            if after_literal != NONE {
                let glued = after_literal == token.start;
                after_literal = NONE;
                pending = if line {
                    Pending::Line {
                        at: token.start,
                        glued,
                        quote: text.iter().any(|&c| c == b'\'' || c == b'"'),
                    }
                } else {
                    Pending::Block {
                        at: token.start,
                        glued,
                        empty: text == b"/**/",
                        spaced: false,
                    }
                };
            }
            continue;
        }
        if token.kind == TokenKind::Whitespace {
            if let Pending::Block { spaced, .. } = &mut pending {
                *spaced = true;
            }
            continue;
        }
        last_line_comment = false;
        match pending {
            Pending::None => {}
            Pending::Line { at, glued, .. } => {
                if glued && cx.application_role {
                    found.add(Rule::CommentAfterLiteral, at);
                }
            }
            Pending::Block {
                at,
                glued,
                empty,
                spaced,
            } => {
                if empty || (glued && !spaced) {
                    found.add(Rule::CommentAfterLiteral, at);
                }
            }
        }
        pending = Pending::None;
        let (tok, marks) = classify(bytes, token.start, token.end, token.kind, after, toks);
        after = After {
            semicolon: marks.semicolon,
            from_join: marks.from_join,
        };
        after_literal = if marks.value_end { token.end } else { NONE };
        after_name = if marks.relation { token.end } else { NONE };
        name_comment = NONE;
        if marks.hot {
            hot.push(toks.len() as u32);
        }
        toks.push(tok);
    }
    if let Pending::Line { at, glued, quote } = pending
        && (glued || quote || cx.application_role)
    {
        found.add(Rule::CommentAfterLiteral, at);
    }
    // `FROM users--`: a comment glued to a relation swallows the rest.
    if name_comment != NONE && cx.application_role {
        found.add(Rule::CommentAfterLiteral, name_comment);
    }
    (last_line_comment, error)
}

/// Whether `prev`, the significant token before offset `at`, ends a value
/// glued to it: a name, a number, a quoted name or `)`.
fn value_glued(prev: Option<&Tok>, at: usize) -> bool {
    prev.is_some_and(|p| {
        p.end == at
            && match p.class {
                Class::Word | Class::Num | Class::QIdent => true,
                Class::Punct => p.sym == b')',
                _ => false,
            }
    })
}

/// Whether `word` is `AND`, `OR` or `XOR`, in any case.
fn connective(word: &[u8]) -> bool {
    !word.is_empty() && matches!(keyword(word), Kw::And | Kw::Or | Kw::Xor)
}

/// Whether a string's text, read as SQL, starts and ends with a
/// connective, past spaces and parentheses: ` AND 1=1 AND `, `) OR (`,
/// ` or `.
fn connective_ends(text: &[u8]) -> bool {
    let skip = |c: &u8| c.is_ascii_whitespace() || matches!(c, b'(' | b')');
    let start = text.iter().position(|c| !skip(c)).unwrap_or(text.len());
    let end = text.iter().rposition(|c| !skip(c)).map_or(start, |e| e + 1);
    let inner = text.get(start..end).unwrap_or_default();
    let first = inner.iter().take_while(|c| c.is_ascii_alphabetic()).count();
    let last = inner
        .iter()
        .rev()
        .take_while(|c| c.is_ascii_alphabetic())
        .count();
    connective(inner.get(..first).unwrap_or_default())
        && connective(inner.get(inner.len() - last..).unwrap_or_default())
}

/// On a lexer error: the offset of a `'` that never closes, glued to the
/// value before it, when the rest of the query string, read as SQL, lexes,
/// starts (past `)`) with `AND`, `OR`, `XOR` or `;` and a statement's verb,
/// and ends in a line comment: `ORDER BY id';SELECT pg_sleep(1)--`, `id =
/// 1' OR 1=1 --`. The quote was meant to close a string the application
/// never opened. Benign text with a stray quote (`O'Brien`, `WOMEN';S`)
/// does not read so.
fn unclosed_quote(sql: &str, cx: &Context, toks: &[Tok], error: LexError) -> Option<usize> {
    let LexError::UnterminatedString { offset } = error else {
        return None;
    };
    if sql.as_bytes().get(offset) != Some(&b'\'') || !value_glued(toks.last(), offset) {
        return None;
    }
    let tail = sql.get(offset + 1..)?;
    let bytes = tail.as_bytes();
    let lexer = Lexer::new(tail).standard_conforming_strings(cx.standard_conforming_strings);
    // 0: before the first significant token but `)`; 1: after `;`;
    // 2: the start matched.
    let mut state = 0u8;
    let mut last = TokenKind::Whitespace;
    for token in lexer {
        let token = token.ok()?;
        last = token.kind;
        if matches!(token.kind, TokenKind::Whitespace) || token.kind.is_comment() {
            continue;
        }
        let text = bytes.get(token.start..token.end).unwrap_or_default();
        state = match (state, token.kind) {
            (2, _) => 2,
            (0, TokenKind::Punctuation) if text == b")" => 0,
            (0, TokenKind::Punctuation) if text == b";" => 1,
            (0, TokenKind::Word) if connective(text) => 2,
            (1, TokenKind::Word) if keyword(text).starts_statement() => 2,
            _ => return None,
        };
    }
    (state == 2 && last == TokenKind::LineComment).then_some(offset)
}

/// What the collecting loop needs to know of a token besides the token,
/// worked out where its kind is known: whether the scan visits it (see
/// [`Tok::hot`]), whether it ends a value a comment may follow, whether it
/// names a relation after `FROM` or `JOIN`; and for the token after it,
/// whether this one is `;` or `FROM`/`JOIN`.
#[derive(Clone, Copy, Default)]
struct Marks {
    hot: bool,
    value_end: bool,
    relation: bool,
    semicolon: bool,
    from_join: bool,
}

/// What [`classify`] needs of the token before: its [`Marks`] tell, and
/// carried from one token to the next they cost less than reading the
/// token back. `toks` holds the tokens before, for the rare tokens that
/// need more.
#[derive(Clone, Copy)]
struct After {
    semicolon: bool,
    from_join: bool,
}

/// The token `src[start..end]` of `kind`, after the tokens `toks` (`after`
/// telling of the last), and its marks.
#[inline(always)]
fn classify(
    src: &[u8],
    start: usize,
    end: usize,
    kind: TokenKind,
    after: After,
    toks: &[Tok],
) -> (Tok, Marks) {
    let text = || src.get(start..end).unwrap_or_default();
    let mut tok = Tok {
        start,
        end,
        class: Class::Other,
        kw: Kw::None,
        op: Op::Other,
        sym: 0,
        plain: false,
    };
    let mut marks = Marks::default();
    match kind {
        TokenKind::Word => {
            tok.class = Class::Word;
            tok.kw = keyword_at(src, start, end);
            marks.hot = tok.kw != Kw::None;
            marks.value_end = matches!(tok.kw, Kw::Null | Kw::True | Kw::False);
            marks.relation = after.from_join;
            marks.from_join = matches!(tok.kw, Kw::From | Kw::Join);
        }
        TokenKind::QuotedIdentifier => {
            tok.class = Class::QIdent;
            // Quoted names are exact: only the catalog's own matter.
            if let [b'"', inner @ .., b'"'] = text()
                && (inner.starts_with(b"pg_") || inner == b"information_schema")
            {
                tok.kw = keyword(inner);
            }
            marks.hot = tok.hot(toks.last().unwrap_or(&Tok::BEFORE));
            marks.relation = after.from_join;
        }
        TokenKind::String => {
            tok.class = Class::Str;
            tok.plain = src.get(start) == Some(&b'\'');
            marks.hot = tok.plain;
            marks.value_end = true;
        }
        TokenKind::BitString | TokenKind::HexString => {
            tok.class = Class::Bits;
            marks.value_end = true;
        }
        TokenKind::Number => {
            tok.class = Class::Num;
            marks.value_end = true;
        }
        TokenKind::Param => tok.class = Class::Param,
        TokenKind::Operator => {
            tok.class = Class::Op;
            tok.op = operator(text());
            // After `;` too, as below.
            marks.hot = !matches!(tok.op, Op::Minus | Op::Plus | Op::Star | Op::Concat);
        }
        TokenKind::Punctuation => {
            tok.class = Class::Punct;
            tok.sym = if end - start == 1 {
                src.get(start).copied().unwrap_or(0)
            } else {
                0
            };
            marks.hot = matches!(tok.sym, b'(' | b')' | b',' | b';');
            marks.value_end = tok.sym == b')';
            marks.semicolon = tok.sym == b';';
        }
        k if k.is_literal() => {
            tok.class = Class::Str;
            marks.value_end = true;
        }
        _ => {}
    }
    // The first token of a statement is always visited.
    if after.semicolon {
        marks.hot = true;
    }
    (tok, marks)
}

// ---------------------------------------------------------------------------
// Keywords: each word is recognised once, packed lower-case into a u64
// (a u128 past 8 bytes) and matched against constants.

/// The words the detectors look at. Several words share a variant when
/// the detectors treat them alike (`Sleep` is `pg_sleep`, `sleep`, ...).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Kw {
    None,
    Abort,
    Against,
    All,
    Alter,
    And,
    Any,
    Array,
    As,
    Asc,
    Atomic,
    Begin,
    Between,
    By,
    Case,
    Cast,
    Commit,
    Conflict,
    Copy,
    Create,
    Cross,
    Default,
    Delay,
    Delete,
    Desc,
    Div,
    Discard,
    Distinct,
    Do,
    Drop,
    Dual,
    Else,
    End,
    Escape,
    Except,
    Exec,
    Exists,
    Extension,
    False,
    Fetch,
    For,
    From,
    Full,
    Grant,
    Group,
    Having,
    If,
    Ilike,
    In,
    Infile,
    Inner,
    Insert,
    Intersect,
    Interval,
    Into,
    Is,
    Join,
    Language,
    Lateral,
    Left,
    Like,
    Limit,
    Mapping,
    Merge,
    Natural,
    Not,
    Null,
    Nulls,
    Offset,
    On,
    Or,
    Order,
    Outer,
    Outfile,
    Over,
    Partition,
    Privileges,
    Procedural,
    Program,
    Regexp,
    Release,
    Replace,
    Reset,
    Returning,
    Revoke,
    Right,
    Role,
    Rollback,
    Savepoint,
    Select,
    Set,
    Show,
    Similar,
    Some,
    Sounds,
    Start,
    System,
    Table,
    Temp,
    Then,
    Time,
    To,
    Top,
    True,
    Truncate,
    Trusted,
    Union,
    Unknown,
    Update,
    User,
    Using,
    Values,
    Waitfor,
    When,
    Where,
    Window,
    With,
    Xor,
    // Families.
    /// Other words that start a PostgreSQL statement: `CALL`, `EXPLAIN`,
    /// `VACUUM`, ...
    Verb,
    /// `chr`, `char`.
    Chr,
    /// `extractvalue`, `updatexml`: MySQL's error-based extraction.
    ErrFn,
    /// `convert`, as SQL Server's `CONVERT(INT, …)`.
    Convert,
    /// Catalog relations an attacker maps the database with.
    CatalogRel,
    /// `dblink…` functions.
    DblinkFn,
    /// `adminpack`, `file_fdw`.
    FileExt,
    /// Server-side file functions.
    FileFn,
    /// MySQL's `load_file`.
    LoadFile,
    /// Server facts that need a call: `version()`, `current_database()`.
    InfoFn,
    /// Server facts without parentheses: `current_user`, `session_user`.
    InfoWord,
    /// `information_schema`.
    InformationSchema,
    /// `lo_export`.
    LoExport,
    /// Number and boolean types, the targets of error-based casts.
    NumType,
    /// `postgres_fdw`.
    PostgresFdw,
    /// Functions of their arguments only: `pi`, `cos`, `ascii`, `md5`, ...
    PureFn,
    /// SQL Server's shell procedures.
    ShellFn,
    /// Functions that wait.
    Sleep,
    /// MySQL's and SQL Server's system variables, after `@@`.
    SysVar,
    /// Untrusted procedural languages.
    Untrusted,
    /// MySQL's and SQL Server's functions that PostgreSQL has not:
    /// `ifnull`, `isnull`, `iif`, `charset`, `find_in_set`, ...
    ForeignFn,
    /// SQL Server's statements that PostgreSQL has not: `WHILE`, `GOTO`,
    /// `SHUTDOWN`.
    TsqlVerb,
}

/// The words up to 16 bytes long and what they are.
macro_rules! keywords {
    ($($text:literal => $kw:ident,)*) => {
        const SHORT_KEYWORDS: &[(&str, Kw)] = &[$(($text, Kw::$kw),)*];
    };
}

keywords! {
    "abort" => Abort,
    "against" => Against,
    "all" => All,
    "alter" => Alter,
    "and" => And,
    "any" => Any,
    "array" => Array,
    "as" => As,
    "asc" => Asc,
    "atomic" => Atomic,
    "begin" => Begin,
    "between" => Between,
    "by" => By,
    "case" => Case,
    "cast" => Cast,
    "commit" => Commit,
    "conflict" => Conflict,
    "copy" => Copy,
    "create" => Create,
    "cross" => Cross,
    "default" => Default,
    "delay" => Delay,
    "delete" => Delete,
    "desc" => Desc,
    "div" => Div,
    "discard" => Discard,
    "distinct" => Distinct,
    "do" => Do,
    "drop" => Drop,
    "dual" => Dual,
    "else" => Else,
    "end" => End,
    "escape" => Escape,
    "except" => Except,
    "exec" => Exec,
    "exists" => Exists,
    "extension" => Extension,
    "false" => False,
    "fetch" => Fetch,
    "for" => For,
    "from" => From,
    "full" => Full,
    "grant" => Grant,
    "group" => Group,
    "having" => Having,
    "if" => If,
    "ilike" => Ilike,
    "in" => In,
    "infile" => Infile,
    "inner" => Inner,
    "insert" => Insert,
    "intersect" => Intersect,
    "interval" => Interval,
    "into" => Into,
    "is" => Is,
    "join" => Join,
    "language" => Language,
    "lateral" => Lateral,
    "left" => Left,
    "like" => Like,
    "limit" => Limit,
    "mapping" => Mapping,
    "merge" => Merge,
    "natural" => Natural,
    "not" => Not,
    "null" => Null,
    "nulls" => Nulls,
    "offset" => Offset,
    "on" => On,
    "or" => Or,
    "order" => Order,
    "outer" => Outer,
    "over" => Over,
    "partition" => Partition,
    "privileges" => Privileges,
    "procedural" => Procedural,
    "program" => Program,
    "release" => Release,
    "replace" => Replace,
    "reset" => Reset,
    "returning" => Returning,
    "revoke" => Revoke,
    "right" => Right,
    "role" => Role,
    "rollback" => Rollback,
    "savepoint" => Savepoint,
    "select" => Select,
    "set" => Set,
    "show" => Show,
    "similar" => Similar,
    "some" => Some,
    "sounds" => Sounds,
    "start" => Start,
    "system" => System,
    "table" => Table,
    "temp" => Temp,
    "temporary" => Temp,
    "then" => Then,
    "time" => Time,
    "to" => To,
    "top" => Top,
    "true" => True,
    "truncate" => Truncate,
    "trusted" => Trusted,
    "union" => Union,
    "unknown" => Unknown,
    "update" => Update,
    "user" => User,
    "using" => Using,
    "values" => Values,
    "waitfor" => Waitfor,
    "when" => When,
    "where" => Where,
    "window" => Window,
    "with" => With,
    "xor" => Xor,
    "analyse" => Verb,
    "analyze" => Verb,
    "call" => Verb,
    "checkpoint" => Verb,
    "close" => Verb,
    "cluster" => Verb,
    "comment" => Verb,
    "deallocate" => Verb,
    "declare" => Verb,
    "execute" => Verb,
    "explain" => Verb,
    "import" => Verb,
    "listen" => Verb,
    "load" => Verb,
    "lock" => Verb,
    "move" => Verb,
    "notify" => Verb,
    "prepare" => Verb,
    "reassign" => Verb,
    "refresh" => Verb,
    "reindex" => Verb,
    "security" => Verb,
    "unlisten" => Verb,
    "vacuum" => Verb,
    // MySQL's operators, as their PostgreSQL look-alikes.
    "regexp" => Regexp,
    "rlike" => Regexp,
    "outfile" => Outfile,
    "dumpfile" => Outfile,
    // Families.
    "chr" => Chr,
    "char" => Chr,
    "extractvalue" => ErrFn,
    "updatexml" => ErrFn,
    "convert" => Convert,
    "adminpack" => FileExt,
    "file_fdw" => FileExt,
    "postgres_fdw" => PostgresFdw,
    "lo_export" => LoExport,
    "pg_read_file" => FileFn,
    "pg_ls_dir" => FileFn,
    "pg_stat_file" => FileFn,
    "pg_ls_logdir" => FileFn,
    "pg_ls_waldir" => FileFn,
    "pg_ls_tmpdir" => FileFn,
    "pg_file_write" => FileFn,
    "pg_file_rename" => FileFn,
    "pg_file_unlink" => FileFn,
    "pg_logdir_ls" => FileFn,
    "lo_import" => FileFn,
    "load_file" => LoadFile,
    "pg_sleep" => Sleep,
    "pg_sleep_for" => Sleep,
    "pg_sleep_until" => Sleep,
    "sleep" => Sleep,
    "benchmark" => Sleep,
    "receive_message" => Sleep,
    "xp_cmdshell" => ShellFn,
    "global" => SysVar,
    "session" => SysVar,
    "datadir" => SysVar,
    "hostname" => SysVar,
    "basedir" => SysVar,
    "servername" => SysVar,
    "spid" => SysVar,
    "identity" => SysVar,
    "rowcount" => SysVar,
    "tmpdir" => SysVar,
    "sp_oacreate" => ShellFn,
    "version" => InfoFn,
    "database" => InfoFn,
    "current_database" => InfoFn,
    "inet_server_addr" => InfoFn,
    "inet_server_port" => InfoFn,
    "current_user" => InfoWord,
    "session_user" => InfoWord,
    "system_user" => InfoWord,
    "current_role" => InfoWord,
    "current_schema" => InfoWord,
    "current_catalog" => InfoWord,
    "int" => NumType,
    "integer" => NumType,
    "int2" => NumType,
    "int4" => NumType,
    "int8" => NumType,
    "smallint" => NumType,
    "bigint" => NumType,
    "numeric" => NumType,
    "decimal" => NumType,
    "real" => NumType,
    "float" => NumType,
    "float4" => NumType,
    "float8" => NumType,
    "double" => NumType,
    "bool" => NumType,
    "boolean" => NumType,
    "signed" => NumType,
    "unsigned" => NumType,
    "abs" => PureFn,
    "ceil" => PureFn,
    "ceiling" => PureFn,
    "floor" => PureFn,
    "round" => PureFn,
    "trunc" => PureFn,
    "sqrt" => PureFn,
    "power" => PureFn,
    "pow" => PureFn,
    "exp" => PureFn,
    "ln" => PureFn,
    "log" => PureFn,
    "mod" => PureFn,
    "pi" => PureFn,
    "sin" => PureFn,
    "cos" => PureFn,
    "tan" => PureFn,
    "sign" => PureFn,
    "ascii" => PureFn,
    "ord" => PureFn,
    "md5" => PureFn,
    "sha1" => PureFn,
    "length" => PureFn,
    "char_length" => PureFn,
    "concat" => PureFn,
    "lower" => PureFn,
    "upper" => PureFn,
    "substr" => PureFn,
    "substring" => PureFn,
    "mid" => PureFn,
    "reverse" => PureFn,
    "hex" => PureFn,
    "unhex" => PureFn,
    "conv" => PureFn,
    "coalesce" => PureFn,
    "nullif" => PureFn,
    "greatest" => PureFn,
    "least" => PureFn,
    "soundex" => PureFn,
    "pg_authid" => CatalogRel,
    "pg_shadow" => CatalogRel,
    "pg_user" => CatalogRel,
    "pg_roles" => CatalogRel,
    "pg_group" => CatalogRel,
    "pg_auth_members" => CatalogRel,
    "pg_user_mapping" => CatalogRel,
    "pg_user_mappings" => CatalogRel,
    "pg_database" => CatalogRel,
    "pg_tables" => CatalogRel,
    "pg_views" => CatalogRel,
    "pg_matviews" => CatalogRel,
    "pg_class" => CatalogRel,
    "pg_attribute" => CatalogRel,
    "pg_proc" => CatalogRel,
    "pg_settings" => CatalogRel,
    "pg_file_settings" => CatalogRel,
    "pg_stat_activity" => CatalogRel,
    "pg_largeobject" => CatalogRel,
    "pg_tablespace" => CatalogRel,
    "pg_extension" => CatalogRel,
    "pg_config" => CatalogRel,
    "pg_policy" => CatalogRel,
    "pg_policies" => CatalogRel,
    "pg_indexes" => CatalogRel,
    "pg_statistic" => CatalogRel,
    "pg_stats" => CatalogRel,
    "plpythonu" => Untrusted,
    "plpython2u" => Untrusted,
    "plpython3u" => Untrusted,
    "plperlu" => Untrusted,
    "pltclu" => Untrusted,
    "plsh" => Untrusted,
    "pljavau" => Untrusted,
    "plr" => Untrusted,
    "c" => Untrusted,
    "internal" => Untrusted,
    "while" => TsqlVerb,
    "ifnull" => ForeignFn,
    "isnull" => ForeignFn,
    "iif" => ForeignFn,
    "charset" => ForeignFn,
    "coercibility" => ForeignFn,
    "connection_id" => ForeignFn,
    "find_in_set" => ForeignFn,
    "compress" => ForeignFn,
    "uncompress" => ForeignFn,
    "goto" => TsqlVerb,
    "shutdown" => TsqlVerb,
}

/// Words longer than 16 bytes.
const LONG_KEYWORDS: &[(&[u8], Kw)] = &[
    (b"information_schema", Kw::InformationSchema),
    (b"pg_read_binary_file", Kw::FileFn),
    (b"pg_ls_archive_statusdir", Kw::FileFn),
    (b"pg_hba_file_rules", Kw::CatalogRel),
    (b"pg_ident_file_mappings", Kw::CatalogRel),
    (b"pg_largeobject_metadata", Kw::CatalogRel),
    (b"pg_stat_user_tables", Kw::CatalogRel),
    (b"pg_stat_all_tables", Kw::CatalogRel),
    (b"pg_statio_user_tables", Kw::CatalogRel),
    (b"pg_db_role_setting", Kw::CatalogRel),
    (b"pg_foreign_server", Kw::CatalogRel),
    (b"pg_foreign_data_wrapper", Kw::CatalogRel),
    (b"pg_available_extensions", Kw::CatalogRel),
    (b"sp_execute_external_script", Kw::ShellFn),
];

/// Up to 16 bytes, little-endian, each with its 0x20 bit set: that folds
/// ASCII upper case onto lower case, and is exact on the bytes a word can
/// hold (letters, digits, `_`, `$`, bytes of 0x80 and above), which
/// contain no NUL, so different words pack differently.
const fn pack(word: &str) -> u128 {
    let b = word.as_bytes();
    assert!(
        b.len() <= 16,
        "keywords longer than 16 bytes go in LONG_KEYWORDS"
    );
    let mut k = 0u128;
    let mut i = 0;
    while i < b.len() {
        k |= ((b[i] | 0x20) as u128) << (8 * i);
        i += 1;
    }
    k
}

const FOLD: u64 = 0x2020_2020_2020_2020;

/// The low `n` bytes (0 to 8) of a little-endian word.
fn low_bytes(x: u64, n: usize) -> u64 {
    const MASKS: [u64; 9] = [
        0,
        0xff,
        0xffff,
        0xff_ffff,
        0xffff_ffff,
        0xff_ffff_ffff,
        0xffff_ffff_ffff,
        0xff_ffff_ffff_ffff,
        u64::MAX,
    ];
    x & MASKS.get(n).copied().unwrap_or(u64::MAX)
}

/// For each length from 9 to 16 and each first byte (its low five bits,
/// 0x20 set), the last bytes (low five bits) of the keywords of that
/// length and first byte, one bit each. Most long names are no keyword:
/// one look-up here tells, before the word is packed and hashed. Bytes
/// that share their low five bits (`p` and `0`) only make it say "maybe".
static FILTER: [[u32; 32]; 8] = build_filter();

const fn build_filter() -> [[u32; 32]; 8] {
    let mut f = [[0u32; 32]; 8];
    let mut i = 0;
    while i < SHORT_KEYWORDS.len() {
        let b = SHORT_KEYWORDS[i].0.as_bytes();
        if b.len() > 8 {
            let first = ((b[0] | 0x20) & 31) as usize;
            let last = (b[b.len() - 1] | 0x20) & 31;
            f[b.len() - 9][first] |= 1 << last;
        }
        i += 1;
    }
    f
}

/// Whether the word `src[start..end]`, of `n` bytes (9 to 16), may be a
/// keyword or a `dblink…` function.
#[inline]
fn maybe_keyword(src: &[u8], start: usize, end: usize, n: usize) -> bool {
    let first = src.get(start).map_or(0, |&c| c | 0x20);
    let last = src.get(end.wrapping_sub(1)).map_or(0, |&c| c | 0x20);
    let row = FILTER.get(n.wrapping_sub(9)).map_or(&[0u32; 32], |r| r);
    let bits = row.get(usize::from(first & 31)).copied().unwrap_or(0);
    bits >> (last & 31) & 1 != 0 || first == b'd'
}

/// The word `src[start..end]`, packed as [`pack`] does: one 8-byte load
/// for words of up to 8 bytes, two for longer ones, when the bytes are
/// there to read; else byte by byte.
#[inline(always)]
fn keyword_at(src: &[u8], start: usize, end: usize) -> Kw {
    let n = end.saturating_sub(start);
    if n == 0 {
        return Kw::None;
    }
    if n <= 8 {
        // Most words: packing and probing cost less than a filter would.
        let key = match src.get(start..start + 8) {
            Some(chunk) => low_bytes(
                u64::from_le_bytes(chunk.try_into().unwrap_or_default()) | FOLD,
                n,
            ),
            None => pack_bytes(src.get(start..end).unwrap_or_default()),
        };
        return match word_keyword(key) {
            Kw::None if n >= 6 && low_bytes(key, 6) == DBLINK => Kw::DblinkFn,
            kw => kw,
        };
    }
    if n > 16 {
        return keyword(src.get(start..end).unwrap_or_default());
    }
    if !maybe_keyword(src, start, end, n) {
        return Kw::None;
    }
    let (lo, hi) = match src.get(start..start + 16) {
        Some(chunk) => {
            let (a, b) = chunk.split_at(8);
            let lo = u64::from_le_bytes(a.try_into().unwrap_or_default());
            let hi = u64::from_le_bytes(b.try_into().unwrap_or_default());
            (lo | FOLD, low_bytes(hi | FOLD, n - 8))
        }
        None => {
            let word = src.get(start..end).unwrap_or_default();
            let (a, b) = word.split_at(8.min(word.len()));
            (pack_bytes(a), pack_bytes(b))
        }
    };
    let kw = long_word_keyword(u128::from(lo) | (u128::from(hi) << 64));
    if kw == Kw::None && low_bytes(lo, 6) == DBLINK {
        return Kw::DblinkFn;
    }
    kw
}

/// Up to 8 bytes, packed as [`pack`] does.
fn pack_bytes(bytes: &[u8]) -> u64 {
    let mut k = 0u64;
    for (i, &c) in bytes.iter().take(8).enumerate() {
        k |= u64::from(c | 0x20) << (8 * i);
    }
    k
}

/// `dblink`, packed.
const DBLINK: u64 = pack("dblink") as u64;

fn dblink(word: &[u8]) -> Kw {
    if word.len() >= 6
        && word
            .get(..6)
            .is_some_and(|p| p.eq_ignore_ascii_case(b"dblink"))
    {
        Kw::DblinkFn
    } else {
        Kw::None
    }
}

// Two open-addressing hash tables of the packed keywords, built at compile
// time: those of up to 8 bytes, whose keys fit a u64 and which most words
// are looked up in, and the longer ones.

const TABLE_BITS: u32 = 10;
const TABLE_SIZE: usize = 1 << TABLE_BITS;
const LONG_TABLE_BITS: u32 = 8;
const LONG_TABLE_SIZE: usize = 1 << LONG_TABLE_BITS;

static TABLE: ([u64; TABLE_SIZE], [Kw; TABLE_SIZE]) = build_table();
static LONG_TABLE: ([u128; LONG_TABLE_SIZE], [Kw; LONG_TABLE_SIZE]) = build_long_table();

const fn slot(key: u64) -> usize {
    (key.wrapping_mul(0x9E37_79B9_7F4A_7C15) >> (64 - TABLE_BITS)) as usize
}

const fn long_slot(key: u128) -> usize {
    let x = (key as u64) ^ ((key >> 64) as u64).rotate_left(29);
    (x.wrapping_mul(0x9E37_79B9_7F4A_7C15) >> (64 - LONG_TABLE_BITS)) as usize
}

const fn build_table() -> ([u64; TABLE_SIZE], [Kw; TABLE_SIZE]) {
    let mut keys = [0u64; TABLE_SIZE];
    let mut kws = [Kw::None; TABLE_SIZE];
    let mut i = 0;
    while i < SHORT_KEYWORDS.len() {
        let (text, kw) = SHORT_KEYWORDS[i];
        i += 1;
        if text.len() > 8 {
            continue;
        }
        let key = pack(text) as u64;
        let mut s = slot(key);
        while keys[s] != 0 {
            assert!(keys[s] != key, "a keyword is listed twice");
            s = (s + 1) & (TABLE_SIZE - 1);
        }
        keys[s] = key;
        kws[s] = kw;
    }
    (keys, kws)
}

const fn build_long_table() -> ([u128; LONG_TABLE_SIZE], [Kw; LONG_TABLE_SIZE]) {
    let mut keys = [0u128; LONG_TABLE_SIZE];
    let mut kws = [Kw::None; LONG_TABLE_SIZE];
    let mut i = 0;
    while i < SHORT_KEYWORDS.len() {
        let (text, kw) = SHORT_KEYWORDS[i];
        i += 1;
        if text.len() <= 8 {
            continue;
        }
        let key = pack(text);
        let mut s = long_slot(key);
        while keys[s] != 0 {
            assert!(keys[s] != key, "a keyword is listed twice");
            s = (s + 1) & (LONG_TABLE_SIZE - 1);
        }
        keys[s] = key;
        kws[s] = kw;
    }
    (keys, kws)
}

fn word_keyword(key: u64) -> Kw {
    let (keys, kws) = &TABLE;
    probe(keys, kws, slot(key), key)
}

#[inline]
fn long_word_keyword(key: u128) -> Kw {
    let (keys, kws) = &LONG_TABLE;
    probe(keys, kws, long_slot(key), key)
}

/// The keyword under `key` in one of the tables (whose size is a power of
/// two), probing from slot `s` up to the first empty slot.
#[inline(always)]
fn probe<K: Copy + Default + PartialEq>(keys: &[K], kws: &[Kw], mut s: usize, key: K) -> Kw {
    let mask = keys.len() - 1;
    loop {
        let k = keys[s];
        if k == key {
            return kws[s];
        }
        if k == K::default() {
            return Kw::None;
        }
        s = (s + 1) & mask;
    }
}

fn keyword(word: &[u8]) -> Kw {
    if word.len() <= 16 {
        return keyword_at(word, 0, word.len());
    }
    match LONG_KEYWORDS
        .iter()
        .find(|(text, _)| text.eq_ignore_ascii_case(word))
    {
        Some(&(_, kw)) => kw,
        None => dblink(word),
    }
}

impl Kw {
    /// Clause words: they end the operand before them.
    fn ends_operand(self) -> bool {
        use Kw::*;
        matches!(
            self,
            As | Asc
                | By
                | Conflict
                | Cross
                | Desc
                | Do
                | Except
                | Fetch
                | For
                | From
                | Full
                | Group
                | Having
                | Inner
                | Intersect
                | Into
                | Join
                | Lateral
                | Left
                | Limit
                | Natural
                | Nulls
                | Offset
                | On
                | Order
                | Outer
                | Over
                | Partition
                | Returning
                | Right
                | Select
                | Set
                | Union
                | Using
                | Values
                | When
                | Then
                | Else
                | Where
                | Window
                | With
        )
    }

    /// Words that end a select list.
    fn ends_select_list(self) -> bool {
        use Kw::*;
        matches!(
            self,
            From | Into
                | Where
                | Group
                | Having
                | Order
                | Limit
                | Offset
                | Fetch
                | Union
                | Intersect
                | Except
                | Window
                | For
        )
    }

    /// Words that start a PostgreSQL statement.
    fn starts_statement(self) -> bool {
        use Kw::*;
        self.session_command()
            || matches!(
                self,
                Verb | Select
                    | Insert
                    | Update
                    | Delete
                    | Merge
                    | Truncate
                    | Values
                    | With
                    | Table
                    | Copy
                    | Create
                    | Alter
                    | Drop
                    | Grant
                    | Revoke
                    | Do
                    | Fetch
            )
    }

    /// Transaction and session commands, which batches wrap around their
    /// statements.
    fn session_command(self) -> bool {
        use Kw::*;
        matches!(
            self,
            Begin
                | Start
                | Commit
                | End
                | Rollback
                | Abort
                | Savepoint
                | Release
                | Set
                | Reset
                | Show
                | Discard
        )
    }
}

// ---------------------------------------------------------------------------
// The scan

/// What joins an operand to the one before it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Conn {
    Start,
    And,
    Or,
}

/// A comparison operator.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Cmp {
    Eq,
    Ne,
    Lt,
    Gt,
    Le,
    Ge,
    Like,
    Between,
    In,
}

/// One level of parentheses or `CASE … END`, and the operand being read
/// at that level (an operand: what lies between `AND`, `OR`, commas and
/// clause words).
#[derive(Clone, Copy, Debug)]
struct Frame {
    case: bool,
    /// First token of the current operand.
    seg: usize,
    prev: Conn,
    /// The first comparison of the operand.
    cmp: usize,
    cmp_op: Cmp,
    /// The last comparison that chains (`=`, `<`, `LIKE`, ...), and a
    /// second one right after a string that followed it.
    last_chain: usize,
    chain_at: usize,
    between: bool,
    /// The last `SELECT` at this level, and whether `FROM` followed it.
    select: usize,
    from_seen: bool,
    /// The last group closed at this level: its `)`, its truth when it
    /// held one constant condition, its `SELECT`.
    group_close: usize,
    group_truth: Option<bool>,
    group_select: usize,
    /// Operands ended at this level, and the truth of the first.
    operands: u32,
    truth: Option<bool>,
    /// The group is an operand right after `OR`: its truth matters.
    wants_truth: bool,
}

impl Frame {
    fn new(seg: usize, case: bool) -> Self {
        Self {
            case,
            seg,
            prev: Conn::Start,
            cmp: NONE,
            cmp_op: Cmp::Eq,
            last_chain: NONE,
            chain_at: NONE,
            between: false,
            select: NONE,
            from_seen: false,
            group_close: NONE,
            group_truth: None,
            group_select: NONE,
            operands: 0,
            truth: None,
            wants_truth: false,
        }
    }
}

/// A constant's value, as far as the detectors compare them.
#[derive(Clone, Copy, Debug)]
enum Val {
    Num(f64),
    /// A plain string: the range of its text between the quotes.
    Str(usize, usize),
    Bool(bool),
    Null,
}

/// Select-list statistics for `UNION` padding.
#[derive(Clone, Copy, Debug, Default)]
struct Items {
    n: u32,
    consts: u32,
    bare_consts: u32,
    /// A `*` or `t.*` item: the number of columns is unknown.
    star: bool,
}

struct Scan<'a, 'f, 'o> {
    sql: &'a str,
    t: &'a [Tok],
    /// The tokens the main loop visits (see [`Tok::hot`]).
    hot: &'a [u32],
    cx: &'a Context,
    frames: &'a mut Vec<Frame>,
    found: &'f mut Found<'o>,
    trailing_line_comment: bool,
}

impl Scan<'_, '_, '_> {
    fn add(&mut self, rule: Rule, tok: usize) {
        let offset = self.t.get(tok).map_or(self.sql.len(), |t| t.start);
        self.found.add(rule, offset);
    }

    fn kw(&self, i: usize) -> Kw {
        match self.t.get(i) {
            Some(t) if t.class == Class::Word => t.kw,
            _ => Kw::None,
        }
    }

    fn sym(&self, i: usize) -> u8 {
        match self.t.get(i) {
            Some(t) if t.class == Class::Punct => t.sym,
            _ => 0,
        }
    }

    fn op(&self, i: usize) -> Op {
        match self.t.get(i) {
            Some(t) if t.class == Class::Op => t.op,
            _ => Op::Other,
        }
    }

    fn class(&self, i: usize) -> Option<Class> {
        self.t.get(i).map(|t| t.class)
    }

    fn is_call(&self, i: usize) -> bool {
        self.sym(i + 1) == b'('
    }

    fn bytes(&self, i: usize) -> &[u8] {
        self.t
            .get(i)
            .and_then(|t| self.sql.as_bytes().get(t.start..t.end))
            .unwrap_or_default()
    }

    fn top(&mut self) -> &mut Frame {
        if self.frames.is_empty() {
            self.frames.push(Frame::new(0, false));
        }
        let last = self.frames.len() - 1;
        &mut self.frames[last]
    }

    fn run(&mut self) {
        self.frames.clear();
        self.frames.push(Frame::new(0, false));
        let n = self.t.len();
        let mut overflow = 0usize;
        let mut atomic = 0u32;
        let mut fresh = true;
        let mut verb = Kw::None;
        let mut stmts = 0u32;
        let mut second = NONE;
        let mut main_verb: Option<Kw> = None;
        let mut verbs_differ = false;
        let mut all_verbs = true;
        for &h in self.hot {
            let i = h as usize;
            let Some(&tok) = self.t.get(i) else {
                break;
            };
            if fresh && !(tok.class == Class::Punct && tok.sym == b';') {
                fresh = false;
                let mut v = i;
                while self.sym(v) == b'(' {
                    v += 1;
                }
                verb = self.kw(v);
                stmts += 1;
                if stmts == 2 {
                    second = i;
                }
                if stmts >= 2 && !verb.starts_statement() {
                    // PostgreSQL parses the whole query string first: a
                    // statement that cannot start so fails them all.
                    all_verbs = false;
                }
                if !verb.session_command() {
                    match main_verb {
                        None => main_verb = Some(verb),
                        Some(m) if m != verb => verbs_differ = true,
                        Some(_) => {}
                    }
                }
                self.statement(v, verb);
                if stmts >= 2 && matches!(verb, Kw::If | Kw::TsqlVerb) {
                    // SQL Server's `; IF …`, `; WHILE …`, `; SHUTDOWN`.
                    self.add(Rule::ForeignSyntax, v);
                }
            }
            match tok.class {
                Class::Punct => match tok.sym {
                    b'(' => {
                        if self.frames.len() < MAX_DEPTH {
                            let wants = self
                                .frames
                                .last()
                                .is_some_and(|f| f.prev == Conn::Or && f.seg == i);
                            let mut frame = Frame::new(i + 1, false);
                            frame.wants_truth = wants;
                            self.frames.push(frame);
                        } else {
                            overflow += 1;
                        }
                    }
                    b')' => {
                        if overflow > 0 {
                            overflow -= 1;
                        } else {
                            self.close(i);
                        }
                    }
                    b',' => self.end_operand(i, Conn::Start),
                    b';' => {
                        if self.frames.len() == 1 && atomic == 0 {
                            self.end_operand(i, Conn::Start);
                            self.frames.clear();
                            self.frames.push(Frame::new(i + 1, false));
                            fresh = true;
                        } else {
                            self.end_operand(i, Conn::Start);
                        }
                    }
                    _ => {}
                },
                Class::Op => match tok.op {
                    Op::Eq => self.note_cmp(i, Cmp::Eq, true),
                    Op::Ne => self.note_cmp(i, Cmp::Ne, true),
                    Op::Lt => self.note_cmp(i, Cmp::Lt, true),
                    Op::Gt => self.note_cmp(i, Cmp::Gt, true),
                    Op::Le => self.note_cmp(i, Cmp::Le, true),
                    Op::Ge => self.note_cmp(i, Cmp::Ge, true),
                    Op::Cast => self.colon_cast(i),
                    Op::Hash => {
                        // `#` is PostgreSQL's XOR of integers and bit
                        // strings; right after a string constant, glued
                        // to a number, after a word no operand ends with
                        // (`UNION#`), or opening a line glued to a word
                        // (`\n#asd`), it is MySQL's comment.
                        let glued_num = i > 0
                            && self.class(i - 1) == Some(Class::Num)
                            && self.t[i - 1].end == tok.start;
                        let after_keyword = i > 0
                            && matches!(
                                self.kw(i - 1),
                                Kw::Union | Kw::Select | Kw::And | Kw::Or | Kw::Where | Kw::From
                            );
                        let line_start = i > 0
                            && self.t.get(i + 1).is_some_and(|n| n.start == tok.end)
                            && self
                                .sql
                                .as_bytes()
                                .get(..tok.start)
                                .and_then(|b| b.iter().rev().find(|c| !matches!(c, b' ' | b'\t')))
                                .is_some_and(|&c| c == b'\n');
                        if i > 0
                            && (self.class(i - 1) == Some(Class::Str)
                                || glued_num
                                || after_keyword
                                || line_start)
                        {
                            self.add(Rule::CommentAfterLiteral, i);
                        }
                    }
                    Op::Other => self.foreign_operator(i),
                    _ => {}
                },
                Class::Word => {
                    self.glued_to_string(i);
                    if tok.kw == Kw::Atomic && self.kw(i.wrapping_sub(1)) == Kw::Begin {
                        atomic += 1;
                    } else if tok.kw == Kw::End
                        && atomic > 0
                        && !self.frames.last().is_some_and(|f| f.case)
                    {
                        atomic -= 1;
                    }
                    self.word(i, verb);
                }
                Class::Str if tok.plain => {
                    self.string_arithmetic(i);
                    self.misplaced_quote(i);
                }
                Class::QIdent => {
                    self.glued_quoted_name(i);
                    if tok.kw != Kw::None {
                        self.catalog(i);
                    }
                }
                _ => {}
            }
        }
        // `id = (SELECT substr(login)`: a subquery whose `(` the query
        // string never closes.
        if let Some(open) = self
            .frames
            .iter()
            .skip(1)
            .find(|f| !f.case && f.select != NONE)
        {
            let at = open.select;
            self.add(Rule::BareSubquery, at);
        }
        while self.frames.len() > 1 {
            self.close(n);
        }
        self.dangling_union();
        self.end_operand(n, Conn::Start);
        if self.cx.simple_query
            && self.cx.application_role
            && stmts >= 2
            && all_verbs
            && (verbs_differ || self.trailing_line_comment)
        {
            self.add(Rule::StackedQueries, second);
        }
    }

    /// The statement whose verb is the word at `v`.
    fn statement(&mut self, v: usize, verb: Kw) {
        match verb {
            Kw::Alter => match self.kw(v + 1) {
                Kw::System => self.add(Rule::AlterSystem, v),
                Kw::Role | Kw::User | Kw::Group => self.role_change(v),
                Kw::Default if self.kw(v + 2) == Kw::Privileges => self.role_change(v),
                _ => {}
            },
            Kw::Grant | Kw::Revoke => self.role_change(v),
            Kw::Create | Kw::Drop => {
                let mut j = v + 1;
                while matches!(
                    self.kw(j),
                    Kw::Or | Kw::Replace | Kw::Temp | Kw::Trusted | Kw::Procedural
                ) {
                    j += 1;
                }
                let object = self.kw(j);
                let after = self.kw(j + 1);
                j += 1;
                while matches!(self.kw(j), Kw::If | Kw::Not | Kw::Exists) {
                    j += 1;
                }
                match object {
                    Kw::Role | Kw::Group => self.role_change(v),
                    Kw::User if after != Kw::Mapping => self.role_change(v),
                    Kw::Extension if verb == Kw::Create => match self.kw(j) {
                        Kw::DblinkFn | Kw::PostgresFdw => self.add(Rule::Dblink, v),
                        Kw::FileExt => self.add(Rule::FileAccess, v),
                        _ if self.untrusted(j) => self.add(Rule::UntrustedLanguage, v),
                        _ => {}
                    },
                    _ => {}
                }
            }
            _ => {}
        }
    }

    fn role_change(&mut self, v: usize) {
        if self.cx.application_role {
            self.add(Rule::RoleChange, v);
        }
    }

    /// Whether the token at `j` names an untrusted language, as a word or a
    /// string (`LANGUAGE 'plpython3u'`).
    fn untrusted(&self, j: usize) -> bool {
        match self.t.get(j) {
            Some(t) if t.class == Class::Word || t.class == Class::QIdent => t.kw == Kw::Untrusted,
            Some(t) if t.class == Class::Str && t.plain => match self.bytes(j) {
                [b'\'', inner @ .., b'\''] => keyword(inner) == Kw::Untrusted,
                _ => false,
            },
            _ => false,
        }
    }

    fn word(&mut self, i: usize, verb: Kw) {
        let kw = self.t[i].kw;
        if kw == Kw::None {
            // A name: no rule starts at it.
            return;
        }
        let call = self.is_call(i);
        match kw {
            Kw::And => {
                let top = self.top();
                if top.between {
                    top.between = false;
                } else {
                    self.end_operand(i, Conn::And);
                }
            }
            Kw::Or => self.end_operand(i, Conn::Or),
            Kw::Case if self.frames.len() < MAX_DEPTH => {
                // `CASE WHEN 2 THEN`, `CASE WHEN 's' THEN`: a constant
                // that is no boolean as the condition, which PostgreSQL
                // rejects.
                if self.kw(i + 1) == Kw::When
                    && (self.class(i + 2) == Some(Class::Num)
                        || self
                            .t
                            .get(i + 2)
                            .is_some_and(|t| t.class == Class::Str && t.plain))
                    && self.kw(i + 3) == Kw::Then
                {
                    self.add(Rule::ConstantCondition, i + 2);
                }
                self.frames.push(Frame::new(i + 1, true));
            }
            Kw::End => {
                if self.frames.last().is_some_and(|f| f.case) {
                    self.close(i);
                } else {
                    self.end_operand(i, Conn::Start);
                }
            }
            Kw::Between => {
                self.note_cmp(i, Cmp::Between, true);
                self.top().between = true;
            }
            Kw::Like | Kw::Ilike | Kw::Similar | Kw::Regexp => self.note_cmp(i, Cmp::Like, true),
            Kw::In => self.note_cmp(i, Cmp::In, false),
            Kw::Select => {
                // `id = SELECT …`, `AND SELECT …`, `ORDER BY SELECT …`:
                // PostgreSQL wants a subquery in parentheses there.
                if i > 0
                    && (matches!(
                        self.op(i - 1),
                        Op::Eq | Op::Ne | Op::Lt | Op::Gt | Op::Le | Op::Ge
                    ) || matches!(self.kw(i - 1), Kw::And | Kw::Or | Kw::Not | Kw::By))
                {
                    self.add(Rule::BareSubquery, i);
                }
                self.end_operand(i, Conn::Start);
                let top = self.top();
                top.select = i;
                top.from_seen = false;
            }
            Kw::From => {
                self.end_operand(i, Conn::Start);
                let top = self.top();
                if top.select != NONE {
                    top.from_seen = true;
                }
                self.copy_file(i, verb);
            }
            Kw::To => self.copy_file(i, verb),
            Kw::Union => {
                self.end_operand(i, Conn::Start);
                self.union(i);
                self.top().from_seen = false;
            }
            Kw::Left | Kw::Right if call => {}
            k if k.ends_operand() => self.end_operand(i, Conn::Start),
            _ => {}
        }
        if call {
            match kw {
                Kw::Sleep => self.add(Rule::TimeFunction, i),
                Kw::FileFn => self.add(Rule::FileAccess, i),
                Kw::LoadFile => {
                    self.add(Rule::FileAccess, i);
                    self.add(Rule::ForeignSyntax, i);
                }
                Kw::LoExport => self.add(Rule::LargeObjectExport, i),
                Kw::DblinkFn => self.add(Rule::Dblink, i),
                Kw::ErrFn => self.add(Rule::ErrorCast, i),
                Kw::Convert if self.kw(i + 2) == Kw::NumType && self.sym(i + 3) == b',' => {
                    self.add(Rule::ErrorCast, i);
                }
                Kw::Cast => self.cast_call(i),
                Kw::If | Kw::ForeignFn | Kw::PureFn | Kw::InfoFn if self.foreign_function(i) => {
                    self.add(Rule::ForeignSyntax, i);
                }
                _ => {}
            }
        }
        match kw {
            Kw::ShellFn => {
                self.add(Rule::ShellCommand, i);
                self.add(Rule::ForeignSyntax, i);
            }
            Kw::Waitfor if matches!(self.kw(i + 1), Kw::Delay | Kw::Time) => {
                self.add(Rule::TimeFunction, i);
            }
            // MySQL's file reads and writes.
            Kw::Into if self.kw(i + 1) == Kw::Outfile => {
                self.add(Rule::FileAccess, i);
                self.add(Rule::ForeignSyntax, i);
            }
            Kw::Infile => {
                self.add(Rule::FileAccess, i);
                self.add(Rule::ForeignSyntax, i);
            }
            Kw::Language if self.untrusted(i + 1) => self.add(Rule::UntrustedLanguage, i),
            // MySQL's infix operators: `1 DIV 2`, `'a' XOR 'b'`, `4 MOD 2`,
            // `a SOUNDS LIKE b`, `a RLIKE b`.
            Kw::Xor | Kw::Div | Kw::Regexp if self.infix(i) => self.add(Rule::ForeignSyntax, i),
            Kw::Sounds if self.kw(i + 1) == Kw::Like && self.infix(i) => {
                self.add(Rule::ForeignSyntax, i);
            }
            Kw::PureFn if !call && self.bytes(i).eq_ignore_ascii_case(b"mod") && self.infix(i) => {
                self.add(Rule::ForeignSyntax, i);
            }
            // SQL Server's `DECLARE @x`, `EXEC sp_…`, `EXEC(@s)`.
            Kw::Verb
                if self.bytes(i).eq_ignore_ascii_case(b"declare")
                    && self.bytes(i + 1).starts_with(b"@") =>
            {
                self.add(Rule::ForeignSyntax, i);
            }
            Kw::Verb if self.bytes(i).eq_ignore_ascii_case(b"execute") && self.tsql_exec(i) => {
                self.add(Rule::ForeignSyntax, i);
            }
            // Oracle's and MySQL's `DUAL` in a subquery: `id = (SELECT 1
            // FROM DUAL)`.
            Kw::Dual if self.kw(i.wrapping_sub(1)) == Kw::From && self.frames.len() > 1 => {
                self.add(Rule::ForeignSyntax, i);
            }
            Kw::Exec if self.tsql_exec(i) => self.add(Rule::ForeignSyntax, i),
            // MySQL's full-text search: `MATCH col AGAINST ('…')`.
            Kw::Against
                if call
                    && i > 0
                    && (matches!(self.class(i - 1), Some(Class::Word | Class::QIdent))
                        || self.sym(i - 1) == b')') =>
            {
                self.add(Rule::ForeignSyntax, i);
            }
            Kw::Program if verb == Kw::Copy && self.frames.len() == 1 => {
                self.add(Rule::CopyProgram, i);
            }
            Kw::InformationSchema | Kw::CatalogRel => self.catalog(i),
            // MySQL's `LIMIT offset, count`; SQL Server's `SELECT TOP n`.
            Kw::Limit
                if self.class(i + 1) == Some(Class::Num)
                    && self.sym(i + 2) == b','
                    && self.class(i + 3) == Some(Class::Num) =>
            {
                self.add(Rule::ForeignSyntax, i);
            }
            Kw::Select
                if self.kw(i + 1) == Kw::Top
                    && (self.class(i + 2) == Some(Class::Num) || self.sym(i + 2) == b'(') =>
            {
                self.add(Rule::ForeignSyntax, i + 1);
            }
            _ => {}
        }
    }

    /// Whether the word at `i` stands between two operands, as a binary
    /// operator does: a constant, a server fact (`current_user`,
    /// `current_date`), a name in quotes or `)` before it (not a bare word:
    /// `60;S MOD DRESSES` is text), and no clause word, comma
    /// or end after it (which would make it an alias).
    fn infix(&self, i: usize) -> bool {
        let Some(prev) = i.checked_sub(1).and_then(|p| self.t.get(p)) else {
            return false;
        };
        let value_before = match prev.class {
            Class::Str | Class::Bits | Class::Num | Class::QIdent => true,
            Class::Punct => prev.sym == b')',
            Class::Word => {
                matches!(prev.kw, Kw::True | Kw::False | Kw::Null | Kw::InfoWord)
                    || [
                        &b"current_date"[..],
                        b"current_time",
                        b"current_timestamp",
                        b"localtime",
                        b"localtimestamp",
                    ]
                    .iter()
                    .any(|w| self.bytes(i - 1).eq_ignore_ascii_case(w))
            }
            _ => false,
        };
        let Some(next) = self.t.get(i + 1) else {
            return false;
        };
        let operand_after = match next.class {
            Class::Punct => next.sym == b'(',
            Class::Word => !next.kw.ends_operand() && next.kw != Kw::Select,
            _ => true,
        };
        value_before && operand_after
    }

    /// Whether the call at `i` is of a function only MySQL or SQL Server
    /// has: `IF(`, `IFNULL(`, `ISNULL(`, `IIF(`, `MID(`, `ORD(`, `CONV(`,
    /// `HEX(`, `UNHEX(`, `DATABASE(`, `CHARSET(`, ... A name qualified by a
    /// schema, or where a table's name goes (`INSERT INTO hex (…)`), is
    /// not one.
    fn foreign_function(&self, i: usize) -> bool {
        if i > 0
            && (self.sym(i - 1) == b'.'
                || matches!(
                    self.kw(i - 1),
                    Kw::Into | Kw::Table | Kw::From | Kw::Join | Kw::Update | Kw::Exists
                ))
        {
            return false;
        }
        let name = self.bytes(i);
        match self.t[i].kw {
            Kw::If | Kw::ForeignFn => true,
            Kw::PureFn => [&b"mid"[..], b"ord", b"conv", b"hex", b"unhex"]
                .iter()
                .any(|f| name.eq_ignore_ascii_case(f)),
            Kw::InfoFn => name.eq_ignore_ascii_case(b"database"),
            _ => false,
        }
    }

    /// `EXEC` at `i` followed by a SQL Server procedure (`sp_…`, `xp_…`)
    /// or by `(@variable`.
    fn tsql_exec(&self, i: usize) -> bool {
        let name = self.bytes(i + 1);
        let procedure = self.class(i + 1) == Some(Class::Word)
            && name.len() > 3
            && (name[..3].eq_ignore_ascii_case(b"sp_") || name[..3].eq_ignore_ascii_case(b"xp_"));
        procedure || (self.sym(i + 1) == b'(' && self.bytes(i + 2).starts_with(b"@"))
    }

    /// A plain string whose closing quote is glued to an operator keyword
    /// (`'aa'or …`, `'aa'IS NULL`): a quote closed early, by input that
    /// ran into the SQL after it.
    fn glued_to_string(&mut self, i: usize) {
        let tok = self.t[i];
        if !matches!(
            tok.kw,
            Kw::And
                | Kw::Or
                | Kw::Xor
                | Kw::Is
                | Kw::Not
                | Kw::Like
                | Kw::Ilike
                | Kw::Regexp
                | Kw::Div
                | Kw::Sounds
                | Kw::Union
        ) {
            return;
        }
        if let Some(prev) = i.checked_sub(1).and_then(|p| self.t.get(p))
            && prev.class == Class::Str
            && prev.plain
            && prev.end == tok.start
        {
            self.add(Rule::ChainedComparison, i);
        }
    }

    /// A plain string right after a comparison, as the left operand of
    /// arithmetic, in an operand that ends in an operator and another plain
    /// string, with something else between: `name = '1' * id - '0'`, a
    /// quote closed early and reopened (looked for over 64 tokens at most).
    /// Two strings and one operator (`'a' * '''b'`), or a string glued to a
    /// number (`'4' + X + 4'+WOOD'`), are text with quotes in it.
    fn string_arithmetic(&mut self, k: usize) {
        if k == 0
            || !matches!(
                self.op(k - 1),
                Op::Eq | Op::Ne | Op::Lt | Op::Gt | Op::Le | Op::Ge
            )
        {
            return;
        }
        let arith = self.class(k + 1) == Some(Class::Op)
            && matches!(self.op(k + 1), Op::Star | Op::Minus | Op::Plus | Op::Other)
            && matches!(
                self.bytes(k + 1).first(),
                Some(b'*' | b'/' | b'%' | b'^' | b'|' | b'&' | b'+' | b'-')
            )
            && !self.bytes(k + 1).starts_with(b"->");
        if !arith {
            return;
        }
        let n = self.t.len().min(k + 64);
        let mut depth = 0usize;
        let mut j = k + 2;
        while j < n {
            match self.sym(j) {
                b'(' => depth += 1,
                b')' if depth == 0 => break,
                b')' => depth -= 1,
                b',' | b';' if depth == 0 => break,
                _ => {}
            }
            let kw = self.kw(j);
            if depth == 0 && (matches!(kw, Kw::And | Kw::Or) || kw.ends_operand()) {
                break;
            }
            j += 1;
        }
        if j < k + 64
            && j > k + 3
            && self
                .t
                .get(j - 1)
                .is_some_and(|t| t.class == Class::Str && t.plain)
            && self.class(j - 2) == Some(Class::Op)
        {
            self.add(Rule::ChainedComparison, k);
        }
    }

    /// A plain string glued between a value and a word or number after it,
    /// whose text starts and ends with `AND`, `OR` or `XOR`: `ORDER BY id'
    /// AND 1=1 AND 'x'='x`, `id = 1' or '1'='1`. The quote opened where the
    /// application had no string open: the string holds the injected
    /// condition, and the words around it are what was meant to close and
    /// reopen a string.
    fn misplaced_quote(&mut self, i: usize) {
        let tok = self.t[i];
        if !value_glued(i.checked_sub(1).and_then(|p| self.t.get(p)), tok.start) {
            return;
        }
        let glued_after = self.t.get(i + 1).is_some_and(|n| {
            n.start == tok.end && matches!(n.class, Class::Word | Class::Num | Class::QIdent)
        });
        let text = self
            .sql
            .as_bytes()
            .get(tok.start + 1..tok.end.saturating_sub(1))
            .unwrap_or_default();
        if glued_after && connective_ends(text) {
            self.add(Rule::MisplacedQuote, i);
        }
    }

    /// A quoted name glued to the word or number before it, right after a
    /// comparison, and starting with a condition's operator: `id =
    /// asd"or 1="1`, `id = 1" OR!"a`, MySQL's double-quoted string closed
    /// early (PostgreSQL takes it for an alias, which a condition cannot
    /// have). A name starting otherwise (`q=36"+X+48+"`) is left alone.
    fn glued_quoted_name(&mut self, i: usize) {
        if i < 2 {
            return;
        }
        let prev = self.t[i - 1];
        let value = prev.class == Class::Num || (prev.class == Class::Word && prev.kw == Kw::None);
        if !value
            || prev.end != self.t[i].start
            || !matches!(
                self.op(i - 2),
                Op::Eq | Op::Ne | Op::Lt | Op::Gt | Op::Le | Op::Ge
            )
        {
            return;
        }
        let inner = match self.bytes(i) {
            [b'"', inner @ .., b'"'] => inner.trim_ascii_start(),
            _ => return,
        };
        let word_len = inner.iter().take_while(|c| c.is_ascii_alphabetic()).count();
        let condition = match inner.get(..word_len) {
            Some(w) if !w.is_empty() => {
                matches!(keyword(w), Kw::Or | Kw::And | Kw::Xor | Kw::In | Kw::Is)
            }
            _ => matches!(inner.first(), Some(b'=' | b'<' | b'>' | b'!' | b'|' | b'&')),
        };
        if condition {
            self.add(Rule::ForeignSyntax, i);
        }
    }

    /// A query string that ends in `UNION`, `UNION ALL` or `UNION SELECT`
    /// with nothing after: a second branch of no columns, the start of a
    /// column-count probe.
    fn dangling_union(&mut self) {
        let Some(mut k) = self.t.len().checked_sub(1) else {
            return;
        };
        if self.kw(k) == Kw::Select && k > 0 {
            k -= 1;
        }
        while matches!(self.kw(k), Kw::All | Kw::Distinct) && k > 0 {
            k -= 1;
        }
        if self.kw(k) == Kw::Union {
            self.add(Rule::UnionColumnMismatch, k);
        }
    }

    /// MySQL's `@@version`, `@version` and backquoted names, in PostgreSQL
    /// operators.
    fn foreign_operator(&mut self, i: usize) {
        let text = self.bytes(i);
        let glued = |k: usize| {
            self.t
                .get(k + 1)
                .zip(self.t.get(k))
                .is_some_and(|(next, t)| next.start == t.end)
        };
        let variable = (text.ends_with(b"@@") || text == b"@")
            && glued(i)
            && matches!(
                self.kw(i + 1),
                Kw::InfoFn | Kw::InfoWord | Kw::User | Kw::SysVar
            );
        let backquoted = text == b"`"
            && glued(i)
            && matches!(self.class(i + 1), Some(Class::Word | Class::Num))
            && glued(i + 1)
            && self.bytes(i + 2).starts_with(b"`");
        if variable || backquoted {
            self.add(Rule::ForeignSyntax, i);
        }
    }

    /// `COPY … FROM '<file>'` or `TO '<file>'`: a file on the server.
    fn copy_file(&mut self, i: usize, verb: Kw) {
        if verb == Kw::Copy && self.frames.len() == 1 && self.class(i + 1) == Some(Class::Str) {
            self.add(Rule::FileAccess, i);
        }
    }

    /// A catalog name at `i`: `information_schema` anywhere, a sensitive
    /// catalog where a relation goes.
    fn catalog(&mut self, i: usize) {
        if !self.cx.application_role {
            return;
        }
        let kw = self.t[i].kw;
        let relation = kw == Kw::CatalogRel
            && !self.is_call(i)
            && self.sym(i + 1) != b'.'
            && i > 0
            && (matches!(
                self.kw(i - 1),
                Kw::From | Kw::Join | Kw::Table | Kw::Update | Kw::Into
            ) || matches!(self.sym(i - 1), b',' | b'.'));
        if kw == Kw::InformationSchema || relation {
            self.add(Rule::CatalogRead, i);
        }
    }

    fn note_cmp(&mut self, i: usize, op: Cmp, chain: bool) {
        let last = self.frames.last().map_or(NONE, |f| f.last_chain);
        // `= 'x' =`, `= 'x' - 'y' =`: a string closed early, and what follows
        // compares it again.
        let broken =
            chain && last != NONE && self.class(last + 1) == Some(Class::Str) && i > last + 1;
        // sqlmap's probes compare two random numbers of four digits or
        // more: `CASE WHEN 4518=5617`, `IF((6681=9099), …)`.
        let arith = |k: usize| {
            self.class(k) == Some(Class::Op)
                && !matches!(
                    self.op(k),
                    Op::Eq | Op::Ne | Op::Lt | Op::Gt | Op::Le | Op::Ge
                )
        };
        if matches!(
            op,
            Cmp::Eq | Cmp::Ne | Cmp::Lt | Cmp::Gt | Cmp::Le | Cmp::Ge
        ) && i > 0
            && self.probe_number(i - 1)
            && self.probe_number(i + 1)
            && !(i > 1 && arith(i - 2))
            && !arith(i + 2)
        {
            self.add(Rule::ConstantCondition, i - 1);
        }
        let top = self.top();
        if top.cmp == NONE {
            top.cmp = i;
            top.cmp_op = op;
        }
        if chain {
            if broken {
                top.chain_at = top.chain_at.min(i);
            }
            top.last_chain = i;
        }
    }

    /// An integer constant of four digits or more.
    fn probe_number(&self, k: usize) -> bool {
        self.class(k) == Some(Class::Num) && {
            let b = self.bytes(k);
            b.len() >= 4 && b.iter().all(u8::is_ascii_digit)
        }
    }

    /// The `)` or `END` at `i` closes the innermost frame.
    fn close(&mut self, i: usize) {
        self.end_operand(i, Conn::Start);
        if self.frames.len() <= 1 {
            return;
        }
        let Some(child) = self.frames.pop() else {
            return;
        };
        let parent = self.top();
        parent.group_close = i;
        parent.group_truth = if child.operands == 1 && !child.case {
            child.truth
        } else {
            None
        };
        parent.group_select = child.select;
        parent.from_seen |= child.from_seen;
    }

    /// Ends the operand of the innermost frame at token `end`, which joins
    /// it to the next with `next`, and runs the operand rules on it.
    fn end_operand(&mut self, end: usize, next: Conn) {
        let mut top = self.top();
        if top.seg < end {
            // Most operands are neither appended nor after `OR`, and hold
            // no broken string: nothing to evaluate.
            if top.chain_at != NONE || top.prev != Conn::Start || top.wants_truth {
                let f = *top;
                let truth = self.operand(&f, end, next);
                top = self.top();
                top.operands += 1;
                top.truth = if top.operands == 1 { truth } else { None };
            } else {
                top.operands += 1;
                top.truth = None;
            }
        }
        top.seg = end.saturating_add(1);
        top.prev = next;
        top.cmp = NONE;
        top.last_chain = NONE;
        top.chain_at = NONE;
        top.between = false;
    }

    /// The operand `f.seg..end`: tautology, constant condition, chained
    /// comparison. Returns its truth when it is constant and known.
    // Kept out of line: most operands never get here, and `end_operand`,
    // which runs at every comma and clause word, stays small.
    #[inline(never)]
    fn operand(&mut self, f: &Frame, end: usize, next: Conn) -> Option<bool> {
        let mut a = f.seg;
        let mut neg = false;
        while a < end && self.kw(a) == Kw::Not {
            neg = !neg;
            a += 1;
        }
        if a >= end {
            return None;
        }
        if f.chain_at != NONE {
            self.add(Rule::ChainedComparison, f.chain_at);
        }
        if f.prev == Conn::Start && !f.wants_truth {
            // Neither appended nor after `OR`: nothing more to find.
            return None;
        }
        let appended = f.prev != Conn::Start && next != Conn::Or;
        if f.cmp != NONE && f.cmp > a {
            let c = f.cmp;
            let mut left_end = c;
            if self.kw(c - 1) == Kw::Not {
                left_end = c - 1;
                neg = !neg;
            }
            let mut right = c + 1;
            if self.kw(right) == Kw::To {
                right += 1;
            }
            if left_end <= a || right >= end {
                return None;
            }
            let constant = self.side_const(a, left_end) && self.side_const(right, end);
            let op = f.cmp_op;
            let truth = if constant {
                self.compare(op, a, left_end, right, end)
            } else {
                None
            };
            let reflexive = matches!(op, Cmp::Eq | Cmp::Le | Cmp::Ge | Cmp::Like);
            let tautology = if truth.is_some() {
                truth == Some(!neg)
            } else {
                !neg && reflexive && f.prev == Conn::Or && self.same(a, left_end, right, end)
            };
            if f.prev == Conn::Or && tautology {
                self.add(Rule::Tautology, a);
            } else if constant && appended && !self.canonical(op, a, left_end, right, end) {
                self.add(Rule::ConstantCondition, a);
            }
            return if constant {
                truth.map(|t| t != neg)
            } else {
                None
            };
        }
        if f.cmp != NONE {
            return None;
        }
        // A bare operand: `TRUE`, a string PostgreSQL reads as true, or one
        // parenthesised condition. (A bare number is no boolean to
        // PostgreSQL: `OR 1` fails.)
        let group = self.sym(a) == b'('
            && end - 1 == f.group_close
            && self.matching(a, end) == Some(end - 1);
        let truth = if group {
            f.group_truth
        } else {
            match self.value(a, end) {
                Some(Val::Num(_)) | None => None,
                Some(v) => truthy(self.sql, v),
            }
        };
        let truth = truth.map(|t| t != neg);
        if f.prev == Conn::Or && truth == Some(true) {
            self.add(Rule::Tautology, a);
        }
        truth
    }

    /// Whether every token of `a..b` is constant: literals, operators,
    /// `NULL`, `TRUE`, `FALSE`, pure functions, server facts, casts.
    fn side_const(&self, a: usize, b: usize) -> bool {
        if a >= b {
            return false;
        }
        for k in a..b {
            let t = self.t[k];
            let ok = match t.class {
                Class::Str | Class::Bits | Class::Num => true,
                Class::Param | Class::QIdent | Class::Other => false,
                Class::Punct => matches!(t.sym, b'(' | b')' | b',' | b'[' | b']'),
                Class::Op => match t.op {
                    // `*` alone, after `(` or `.`: a wildcard.
                    Op::Star => k > a && !matches!(self.sym(k - 1), b'(' | b',' | b'.'),
                    _ => true,
                },
                Class::Word => self.const_word(k),
            };
            if !ok {
                return false;
            }
        }
        true
    }

    fn const_word(&self, k: usize) -> bool {
        let call = self.is_call(k);
        match self.t[k].kw {
            Kw::True
            | Kw::False
            | Kw::Null
            | Kw::Unknown
            | Kw::Not
            | Kw::Is
            | Kw::And
            | Kw::Or
            | Kw::In
            | Kw::Like
            | Kw::Ilike
            | Kw::Similar
            | Kw::Regexp
            | Kw::To
            | Kw::Between
            | Kw::Escape
            | Kw::Any
            | Kw::Some
            | Kw::All
            | Kw::Array
            | Kw::Case
            | Kw::When
            | Kw::Then
            | Kw::Else
            | Kw::End
            | Kw::Cast
            | Kw::As
            | Kw::Interval
            | Kw::InfoWord
            | Kw::User => true,
            Kw::PureFn | Kw::Chr | Kw::InfoFn | Kw::Left | Kw::Right if call => true,
            _ => {
                // A type name after `::` or `AS`, or before a string
                // (`DATE '2024-01-01'`).
                k > 0 && (self.op(k - 1) == Op::Cast || self.kw(k - 1) == Kw::As)
                    || self.class(k + 1) == Some(Class::Str)
            }
        }
    }

    /// Strips parentheses around the whole of `a..b` (a few levels).
    fn unwrap(&self, mut a: usize, mut b: usize) -> (usize, usize) {
        for _ in 0..4 {
            if b >= a + 2
                && self.sym(a) == b'('
                && self.sym(b - 1) == b')'
                && self.matching(a, b) == Some(b - 1)
            {
                a += 1;
                b -= 1;
            } else {
                break;
            }
        }
        (a, b)
    }

    /// The `)` that closes the `(` at `open`, before `limit`.
    fn matching(&self, open: usize, limit: usize) -> Option<usize> {
        let mut depth = 0usize;
        for k in open..limit.min(self.t.len()) {
            match self.sym(k) {
                b'(' => depth += 1,
                b')' => {
                    depth = depth.saturating_sub(1);
                    if depth == 0 {
                        return Some(k);
                    }
                }
                _ => {}
            }
        }
        None
    }

    /// The value of `a..b` when it is one literal (signed, in parentheses,
    /// or cast: `'1'::int`).
    fn value(&self, a: usize, b: usize) -> Option<Val> {
        let (mut a, mut b) = self.unwrap(a, b);
        let mut neg = false;
        while matches!(self.op(a), Op::Minus | Op::Plus) {
            neg ^= self.op(a) == Op::Minus;
            a += 1;
        }
        if b == a + 3 && self.op(a + 1) == Op::Cast {
            b = a + 1;
        }
        if b != a + 1 {
            return None;
        }
        let t = self.t.get(a)?;
        match t.class {
            Class::Num => number(self.bytes(a)).map(|v| Val::Num(if neg { -v } else { v })),
            Class::Str if t.plain && !neg => Some(Val::Str(t.start + 1, t.end.saturating_sub(1))),
            Class::Word if !neg => match t.kw {
                Kw::True => Some(Val::Bool(true)),
                Kw::False => Some(Val::Bool(false)),
                Kw::Null => Some(Val::Null),
                _ => None,
            },
            _ => None,
        }
    }

    /// `a..b op c..d`, both sides constant: true, false or unknown.
    fn compare(&self, op: Cmp, a: usize, b: usize, c: usize, d: usize) -> Option<bool> {
        let (l, r) = (self.value(a, b), self.value(c, d));
        if op == Cmp::Like {
            return match (l, r) {
                (Some(Val::Str(..)), Some(Val::Str(ps, pe))) => {
                    let pattern = self.sql.as_bytes().get(ps..pe).unwrap_or_default();
                    let any = !pattern.is_empty() && pattern.iter().all(|&c| c == b'%');
                    (any || self.same(a, b, c, d)).then_some(true)
                }
                (Some(_), Some(_)) if self.same(a, b, c, d) => Some(true),
                _ => None,
            };
        }
        let ordering = match (l?, r?) {
            (Val::Num(x), Val::Num(y)) => x.partial_cmp(&y)?,
            (Val::Num(x), Val::Str(s, e)) => x.partial_cmp(&self.str_number(s, e)?)?,
            (Val::Str(s, e), Val::Num(y)) => self.str_number(s, e)?.partial_cmp(&y)?,
            (Val::Str(s1, e1), Val::Str(s2, e2)) => {
                let bytes = self.sql.as_bytes();
                let equal = bytes.get(s1..e1) == bytes.get(s2..e2);
                return match op {
                    Cmp::Eq => Some(equal),
                    Cmp::Ne => Some(!equal),
                    _ => None,
                };
            }
            (Val::Bool(x), Val::Bool(y)) => x.cmp(&y),
            _ => return None,
        };
        use std::cmp::Ordering::*;
        match op {
            Cmp::Eq => Some(ordering == Equal),
            Cmp::Ne => Some(ordering != Equal),
            Cmp::Lt => Some(ordering == Less),
            Cmp::Gt => Some(ordering == Greater),
            Cmp::Le => Some(ordering != Greater),
            Cmp::Ge => Some(ordering != Less),
            Cmp::Like | Cmp::Between | Cmp::In => None,
        }
    }

    fn str_number(&self, s: usize, e: usize) -> Option<f64> {
        let text = self.sql.get(s..e)?.trim();
        text.parse::<f64>().ok()
    }

    /// Whether `a..b` and `c..d` are the same tokens (words in any case).
    fn same(&self, a: usize, b: usize, c: usize, d: usize) -> bool {
        if b <= a || d <= c || b - a != d - c {
            return false;
        }
        (0..b - a).all(|k| {
            let (x, y) = (self.bytes(a + k), self.bytes(c + k));
            x.eq_ignore_ascii_case(y)
        })
    }

    /// A query builder's constant comparison: both sides one of the numbers
    /// 0, 1 and 2 (`1=1`, `1=0`, `0=1`, `1<>1`, `1=2`).
    fn canonical(&self, op: Cmp, a: usize, b: usize, c: usize, d: usize) -> bool {
        let small = |x: usize, y: usize| {
            let (x, y) = self.unwrap(x, y);
            y == x + 1
                && self.class(x) == Some(Class::Num)
                && matches!(self.bytes(x), b"0" | b"1" | b"2")
        };
        matches!(op, Cmp::Eq | Cmp::Ne) && small(a, b) && small(c, d)
    }

    /// `UNION` at `u`: padding with constants.
    fn union(&mut self, u: usize) {
        let top = *self.top();
        // `(SELECT …) UNION …`: the group is the first branch when this
        // level has no `SELECT` of its own.
        let left = if top.select == NONE && u > 0 && top.group_close == u - 1 {
            top.group_select
        } else {
            top.select
        };
        if left == NONE {
            return;
        }
        let mut r = u + 1;
        while matches!(self.kw(r), Kw::All | Kw::Distinct) || self.sym(r) == b'(' {
            r += 1;
        }
        if self.kw(r) != Kw::Select {
            return;
        }
        // Constants only count for padding, after a `FROM`, and on the
        // left only when the right is padded: counting them means reading
        // every item.
        let right = self.items(r, top.from_seen);
        if right.n == 0 {
            return;
        }
        let padded = top.from_seen && right.bare_consts * 2 > right.n;
        let left_items = self.items(left, padded);
        if left_items.n > 0 && left_items.n != right.n && !left_items.star && !right.star {
            self.add(Rule::UnionColumnMismatch, u);
        }
        // `… WHERE id = 1 UNION SELECT * FROM foo`: a first branch that
        // lists its columns and filters, then a bare `*`.
        if right.star
            && right.n == 1
            && left_items.n > 0
            && !left_items.star
            && (left.max(u.saturating_sub(64))..u).any(|k| self.kw(k) == Kw::Where)
        {
            self.add(Rule::UnionColumnMismatch, u);
        }
        if padded && left_items.consts == 0 {
            self.add(Rule::UnionPadding, u);
        }
    }

    /// The select list after the `SELECT` at `sel`; its constants are
    /// counted only when `consts` is set.
    fn items(&self, sel: usize, consts: bool) -> Items {
        let n = self.t.len();
        let mut j = sel + 1;
        while matches!(self.kw(j), Kw::All | Kw::Distinct) {
            j += 1;
            if self.kw(j) == Kw::On && self.sym(j + 1) == b'(' {
                j = self.matching(j + 1, n).map_or(n, |c| c + 1);
            }
        }
        let mut items = Items::default();
        let mut depth = 0usize;
        let mut start = j;
        while j < n {
            match self.sym(j) {
                b'(' | b'[' => depth += 1,
                b')' | b']' if depth == 0 => break,
                b')' | b']' => depth -= 1,
                b',' if depth == 0 => {
                    self.item(start, j, consts, &mut items);
                    start = j + 1;
                }
                b';' => break,
                _ if depth == 0 && self.kw(j).ends_select_list() => break,
                _ => {}
            }
            j += 1;
        }
        self.item(start, j, consts, &mut items);
        items
    }

    fn item(&self, a: usize, b: usize, consts: bool, items: &mut Items) {
        if a >= b {
            return;
        }
        items.n += 1;
        if self.op(b - 1) == Op::Star && (b == a + 1 || self.sym(b - 2) == b'.') {
            items.star = true;
        }
        if !consts {
            return;
        }
        let (end, aliased) = if b >= a + 3 && self.kw(b - 2) == Kw::As {
            (b - 2, true)
        } else if b >= a + 2
            && matches!(self.class(b - 1), Some(Class::Word | Class::QIdent))
            && !self.const_word(b - 1)
            && (self.t[b - 2].is_literal()
                || self.sym(b - 2) == b')'
                || matches!(self.kw(b - 2), Kw::Null | Kw::True | Kw::False))
        {
            (b - 1, true)
        } else {
            (b, false)
        };
        if self.side_const(a, end) {
            items.consts += 1;
            if !aliased {
                items.bare_consts += 1;
            }
        }
    }

    /// `CAST(` at `i`.
    fn cast_call(&mut self, i: usize) {
        let Some(close) = self.matching(i + 1, i + 1 + MAX_CAST) else {
            return;
        };
        let mut depth = 0usize;
        let mut as_at = NONE;
        for k in i + 2..close {
            match self.sym(k) {
                b'(' => depth += 1,
                b')' => depth = depth.saturating_sub(1),
                _ if depth == 0 && self.kw(k) == Kw::As => as_at = k,
                _ => {}
            }
        }
        if as_at != NONE && self.kw(as_at + 1) == Kw::NumType && self.error_operand(i + 2, as_at) {
            self.add(Rule::ErrorCast, i);
        }
    }

    /// `::` at `i`.
    fn colon_cast(&mut self, i: usize) {
        if i == 0 || self.kw(i + 1) != Kw::NumType {
            return;
        }
        let p = i - 1;
        let a = if self.sym(p) == b')' {
            let mut depth = 0usize;
            let mut open = NONE;
            for k in (p.saturating_sub(MAX_CAST)..=p).rev() {
                match self.sym(k) {
                    b')' => depth += 1,
                    b'(' => {
                        depth = depth.saturating_sub(1);
                        if depth == 0 {
                            open = k;
                            break;
                        }
                    }
                    _ => {}
                }
            }
            if open == NONE {
                return;
            }
            if open > 0 && self.class(open - 1) == Some(Class::Word) {
                open - 1
            } else {
                open
            }
        } else {
            p
        };
        if self.error_operand(a, i) {
            self.add(Rule::ErrorCast, i);
        }
    }

    /// What error-based injection casts: a server fact, `chr()`-built text,
    /// or a concatenation around a subquery.
    fn error_operand(&self, a: usize, b: usize) -> bool {
        let mut concat = false;
        let mut select = false;
        for k in a..b {
            match self.kw(k) {
                Kw::InfoWord | Kw::User => return true,
                Kw::InfoFn | Kw::Chr if self.is_call(k) => return true,
                Kw::Select => select = true,
                _ => concat |= self.op(k) == Op::Concat,
            }
        }
        concat && select
    }
}

/// A number's value: decimal, or `0x`, `0o`, `0b` integers.
fn number(text: &[u8]) -> Option<f64> {
    let text = std::str::from_utf8(text).ok()?;
    if text.contains('_') {
        return None;
    }
    let radix = |prefix: &[&str], radix: u32| {
        prefix
            .iter()
            .find_map(|p| text.strip_prefix(p))
            .map(|digits| u64::from_str_radix(digits, radix).ok().map(|v| v as f64))
    };
    if let Some(v) = radix(&["0x", "0X"], 16) {
        return v;
    }
    if let Some(v) = radix(&["0o", "0O"], 8) {
        return v;
    }
    if let Some(v) = radix(&["0b", "0B"], 2) {
        return v;
    }
    text.parse().ok()
}

/// Whether a constant counts as true where a condition belongs: a non-zero
/// number, `TRUE`, or a string PostgreSQL reads as true (`'1'`, `'t'`,
/// `'yes'`, ...). `None` for `NULL` and strings that are no boolean.
fn truthy(sql: &str, v: Val) -> Option<bool> {
    match v {
        Val::Num(x) => Some(x != 0.0),
        Val::Bool(b) => Some(b),
        Val::Null => None,
        Val::Str(s, e) => {
            let text = sql.get(s..e)?.trim();
            let is = |words: &[&str]| words.iter().any(|w| w.eq_ignore_ascii_case(text));
            if is(&["1", "t", "true", "y", "yes", "on"]) {
                Some(true)
            } else if is(&["0", "f", "false", "n", "no", "off"]) {
                Some(false)
            } else {
                None
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_keyword_resolves_in_any_case_and_position() {
        let long = LONG_KEYWORDS
            .iter()
            .map(|&(t, kw)| (std::str::from_utf8(t).unwrap_or_default(), kw));
        for (text, kw) in SHORT_KEYWORDS.iter().copied().chain(long) {
            assert_eq!(keyword(text.as_bytes()), kw, "{text}");
            let upper = text.to_ascii_uppercase();
            assert_eq!(keyword(upper.as_bytes()), kw, "{upper}");
            // Inside a longer query string, where 16 bytes can be read at
            // once, and at its very end, where they cannot.
            let sql = format!("x {upper} yyyyyyyyyyyyyyyyyy");
            assert_eq!(keyword_at(sql.as_bytes(), 2, 2 + text.len()), kw, "{sql}");
            let sql = format!("x {text}");
            assert_eq!(keyword_at(sql.as_bytes(), 2, sql.len()), kw, "{sql}");
        }
        for word in [
            "selects",
            "selec",
            "",
            "a_very_long_identifier_name",
            "sélect",
            "pg_sleep_",
        ] {
            assert_eq!(keyword(word.as_bytes()), Kw::None, "{word}");
        }
        assert_eq!(keyword(b"dblink_connect_u"), Kw::DblinkFn);
        assert_eq!(keyword(b"DBLINK_GET_RESULT_SET_X"), Kw::DblinkFn);
    }

    #[test]
    fn numbers() {
        assert_eq!(number(b"42"), Some(42.0));
        assert_eq!(number(b"1.5e3"), Some(1500.0));
        assert_eq!(number(b".5"), Some(0.5));
        assert_eq!(number(b"0x1F"), Some(31.0));
        assert_eq!(number(b"0o17"), Some(15.0));
        assert_eq!(number(b"0b101"), Some(5.0));
        assert_eq!(number(b"1_000"), None);
    }
}
