//! The schema check: compares the configured monitored columns with the
//! database catalog and reports, as events, each column whose type differs
//! (`schema.wrong_column_type`), each column or table that does not exist
//! (`schema.column_missing`), a check that could not run
//! (`schema.check_failed`), and a summary (`schema.checked`).
//!
//! One query against `pg_catalog` checks every column at once. Types are
//! compared as `format_type` prints them, case-insensitively, after
//! normalising the usual aliases (`int4` is `integer`, `varchar(64)` is
//! `character varying(64)`, `timestamptz` is `timestamp with time zone`…;
//! see [`normalize_type`]).

use std::fmt;
use std::time::Duration;

use tokio_postgres::NoTls;
use vigil_event::{Event, catalog};

/// The schema a table name without one is looked up in.
const DEFAULT_SCHEMA: &str = "public";
/// How long connecting may take.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(10);
/// How long the whole check (connect and query) may take.
const CHECK_TIMEOUT: Duration = Duration::from_secs(30);
/// The `application_name` the check connects with.
const APPLICATION_NAME: &str = "vigil schema check";

/// The catalog query: one row per monitored column, in the given order,
/// telling whether its table exists and its type (NULL when missing).
const QUERY: &str = "\
SELECT m.ord, c.oid IS NOT NULL, pg_catalog.format_type(a.atttypid, a.atttypmod)
FROM unnest($1::text[], $2::text[], $3::text[]) WITH ORDINALITY AS m(nsp, rel, col, ord)
LEFT JOIN pg_catalog.pg_namespace n ON n.nspname = m.nsp::name
LEFT JOIN pg_catalog.pg_class c
  ON c.relnamespace = n.oid AND c.relname = m.rel::name AND c.relkind IN ('r', 'p', 'v', 'm', 'f')
LEFT JOIN pg_catalog.pg_attribute a
  ON a.attrelid = c.oid AND a.attname = m.col::name AND a.attnum > 0 AND NOT a.attisdropped
ORDER BY m.ord";

/// A column whose type the configuration states.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct MonitoredColumn {
    /// `schema.table`, or `table` for one in `public`; names as stored in
    /// the catalog (unquoted, case-sensitive).
    pub table: String,
    /// The column name, as stored in the catalog.
    pub column: String,
    /// The type as `format_type` prints it (`integer`, `text`,
    /// `character varying(64)`, `numeric(12,2)`, `timestamp with time
    /// zone`…) or a common alias of it (`int4`, `varchar(64)`,
    /// `timestamptz`…).
    pub expected_type: String,
}

impl MonitoredColumn {
    /// A monitored column.
    pub fn new(
        table: impl Into<String>,
        column: impl Into<String>,
        expected_type: impl Into<String>,
    ) -> MonitoredColumn {
        MonitoredColumn {
            table: table.into(),
            column: column.into(),
            expected_type: expected_type.into(),
        }
    }

    /// The schema and table name: `table` split at its first dot, the
    /// schema `public` when it has none.
    pub fn schema_and_table(&self) -> (&str, &str) {
        self.table
            .split_once('.')
            .unwrap_or((DEFAULT_SCHEMA, self.table.as_str()))
    }
}

/// Where and as whom the check connects.
///
/// The connection is plain TCP (no TLS); the check will use the upstream
/// TLS settings once the proxy's upstream connections have them. A `host`
/// starting with `/` is a unix socket directory.
///
/// The password is never logged, put into an event, or shown by `Debug`.
#[derive(Clone, PartialEq, Eq)]
pub struct SchemaConnect {
    /// Host name, IP address or unix socket directory.
    pub host: String,
    /// TCP port.
    pub port: u16,
    /// Database user; it needs to log in and read `pg_catalog`, nothing more.
    pub user: String,
    /// The user's password, if the server asks for one.
    pub password: Option<String>,
    /// Database whose catalog is checked.
    pub database: String,
}

impl fmt::Debug for SchemaConnect {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SchemaConnect")
            .field("host", &self.host)
            .field("port", &self.port)
            .field("user", &self.user)
            .field("password", &self.password.as_ref().map(|_| "<redacted>"))
            .field("database", &self.database)
            .finish()
    }
}

/// What the catalog says about one monitored column.
#[derive(Clone, Debug, PartialEq, Eq)]
enum Found {
    /// The column exists with this type (`format_type`).
    Column(String),
    /// The table exists, the column does not.
    NoColumn,
    /// The table does not exist.
    NoTable,
}

/// Checks `columns` against the catalog of the database `connect` names.
///
/// Returns, in the order of `columns`, a `schema.wrong_column_type` event
/// for each column whose type differs and a `schema.column_missing` event
/// for each column (or table) that does not exist, then one
/// `schema.checked` event with the counts. When connecting or querying
/// fails (or takes more than 30 s), returns only a `schema.check_failed`
/// event. With no columns it does not connect and returns only
/// `schema.checked`.
pub async fn check(connect: &SchemaConnect, columns: &[MonitoredColumn]) -> Vec<Event> {
    if columns.is_empty() {
        return vec![summary(0, 0, 0)];
    }
    let found = match tokio::time::timeout(CHECK_TIMEOUT, query(connect, columns)).await {
        Ok(Ok(found)) => found,
        Ok(Err(error)) => return vec![failed(connect, &error)],
        Err(_) => {
            let error = format!("timed out after {} s", CHECK_TIMEOUT.as_secs());
            return vec![failed(connect, &error)];
        }
    };
    let mut events = Vec::new();
    let (mut mismatches, mut missing) = (0usize, 0usize);
    for (col, found) in columns.iter().zip(found) {
        match found {
            Found::Column(actual) => {
                if !types_match(&col.expected_type, &actual) {
                    mismatches += 1;
                    events.push(wrong_type(col, actual));
                }
            }
            Found::NoColumn => {
                missing += 1;
                events.push(column_missing(col, false));
            }
            Found::NoTable => {
                missing += 1;
                events.push(column_missing(col, true));
            }
        }
    }
    events.push(summary(columns.len(), mismatches, missing));
    events
}

/// Connects and runs [`QUERY`]; one [`Found`] per column, in order. The
/// error text never contains the password.
async fn query(connect: &SchemaConnect, columns: &[MonitoredColumn]) -> Result<Vec<Found>, String> {
    let mut config = tokio_postgres::Config::new();
    config
        .host(&connect.host)
        .port(connect.port)
        .user(&connect.user)
        .dbname(&connect.database)
        .application_name(APPLICATION_NAME)
        .connect_timeout(CONNECT_TIMEOUT);
    if let Some(password) = &connect.password {
        config.password(password);
    }
    let redact = |e: tokio_postgres::Error| error_text(&e, connect.password.as_deref());
    let (client, connection) = config.connect(NoTls).await.map_err(redact)?;
    // Ends when `client` is dropped, at the end of this function.
    tokio::spawn(async move {
        let _ = connection.await;
    });

    let schemas: Vec<&str> = columns.iter().map(|c| c.schema_and_table().0).collect();
    let tables: Vec<&str> = columns.iter().map(|c| c.schema_and_table().1).collect();
    let names: Vec<&str> = columns.iter().map(|c| c.column.as_str()).collect();
    let rows = client
        .query(QUERY, &[&schemas, &tables, &names])
        .await
        .map_err(redact)?;

    let mut found = vec![Found::NoTable; columns.len()];
    for row in rows {
        let ord: i64 = row.try_get(0).map_err(redact)?;
        let table_exists: bool = row.try_get(1).map_err(redact)?;
        let actual: Option<String> = row.try_get(2).map_err(redact)?;
        let slot = usize::try_from(ord)
            .ok()
            .and_then(|i| i.checked_sub(1))
            .and_then(|i| found.get_mut(i))
            .ok_or_else(|| format!("the catalog query returned an unknown row number {ord}"))?;
        *slot = match (table_exists, actual) {
            (_, Some(actual)) => Found::Column(actual),
            (true, None) => Found::NoColumn,
            (false, None) => Found::NoTable,
        };
    }
    Ok(found)
}

/// The error and its causes on one line, with `password` (if any) cut out.
fn error_text(error: &tokio_postgres::Error, password: Option<&str>) -> String {
    let mut text = error.to_string();
    let mut source = std::error::Error::source(error);
    while let Some(cause) = source {
        text.push_str(": ");
        text.push_str(&cause.to_string());
        source = cause.source();
    }
    let mut text = text.split_whitespace().collect::<Vec<_>>().join(" ");
    if let Some(password) = password.filter(|p| !p.is_empty()) {
        text = text.replace(password, "<redacted>");
    }
    text
}

fn wrong_type(col: &MonitoredColumn, actual: String) -> Event {
    Event::new(
        catalog::SCHEMA_WRONG_COLUMN_TYPE,
        format!(
            "Column {}.{} has type {actual}, but the configuration expects {}.",
            col.table, col.column, col.expected_type
        ),
    )
    .field("table", col.table.clone())
    .field("column", col.column.clone())
    .field("expected", col.expected_type.clone())
    .field("actual", actual)
}

fn column_missing(col: &MonitoredColumn, table_missing: bool) -> Event {
    let message = if table_missing {
        format!(
            "Table {} does not exist, so its monitored column {} (expected type {}) is missing.",
            col.table, col.column, col.expected_type
        )
    } else {
        format!(
            "Column {}.{} does not exist; the configuration expects it with type {}.",
            col.table, col.column, col.expected_type
        )
    };
    Event::new(catalog::SCHEMA_COLUMN_MISSING, message)
        .field("table", col.table.clone())
        .field("column", col.column.clone())
        .field("expected", col.expected_type.clone())
}

fn failed(connect: &SchemaConnect, error: &str) -> Event {
    Event::new(
        catalog::SCHEMA_CHECK_FAILED,
        format!(
            "The monitored columns could not be checked against database {} on {}:{} as user {}: \
             {error}. Check that the database is reachable from vigil and that this user can log \
             in and read pg_catalog.",
            connect.database, connect.host, connect.port, connect.user
        ),
    )
    .field("error", error.to_owned())
}

fn summary(columns: usize, mismatches: usize, missing: usize) -> Event {
    Event::new(
        catalog::SCHEMA_CHECKED,
        format!(
            "Checked {columns} monitored columns against the catalog: {mismatches} with a wrong \
             type, {missing} missing."
        ),
    )
    .field("columns", columns)
    .field("mismatches", mismatches)
    .field("missing", missing)
}

/// True when `expected` and `actual` name the same type after
/// [`normalize_type`].
pub fn types_match(expected: &str, actual: &str) -> bool {
    normalize_type(expected) == normalize_type(actual)
}

/// A type name as `format_type` prints it: lower case, single spaces, no
/// spaces inside the modifiers, and aliases replaced by the canonical name:
///
/// | alias | canonical |
/// |---|---|
/// | `int`, `int4`, `serial`, `serial4` | `integer` |
/// | `int8`, `bigserial`, `serial8` | `bigint` |
/// | `int2`, `smallserial`, `serial2` | `smallint` |
/// | `varchar(n)`, `char varying(n)` | `character varying(n)` |
/// | `char(n)`, `char` | `character(n)`, `character(1)` |
/// | `bool` | `boolean` |
/// | `float8`, `float`, `float(25..53)` | `double precision` |
/// | `float4`, `float(1..24)` | `real` |
/// | `decimal(p,s)` | `numeric(p,s)` |
/// | `timestamptz(p)` | `timestamp(p) with time zone` |
/// | `timestamp(p)` | `timestamp(p) without time zone` |
/// | `timetz`, `time` | `time with time zone`, `time without time zone` |
/// | `varbit(n)` | `bit varying(n)` |
/// | `bit` | `bit(1)` |
///
/// Array suffixes (`int4[]`) are kept after the element type.
///
/// ```
/// use vigil_proxy::schema::normalize_type;
///
/// assert_eq!(normalize_type("INT4"), "integer");
/// assert_eq!(normalize_type("varchar (64)"), "character varying(64)");
/// assert_eq!(normalize_type("Numeric(12, 2)"), "numeric(12,2)");
/// assert_eq!(normalize_type("timestamptz(3)"), "timestamp(3) with time zone");
/// assert_eq!(normalize_type("int[]"), "integer[]");
/// ```
pub fn normalize_type(name: &str) -> String {
    let mut s = tidy(&name.to_lowercase());

    let mut dims = 0;
    while let Some(rest) = s.strip_suffix("[]") {
        s = rest.trim_end().to_owned();
        dims += 1;
    }

    let mut zone = None;
    if let Some(rest) = s.strip_suffix(" with time zone") {
        zone = Some(true);
        s = rest.to_owned();
    } else if let Some(rest) = s.strip_suffix(" without time zone") {
        zone = Some(false);
        s = rest.to_owned();
    }

    let (base, mut typmod) = match s.split_once('(') {
        Some((base, rest)) if rest.ends_with(')') => (base.to_owned(), format!("({rest}")),
        _ => (s.clone(), String::new()),
    };
    let base = match base.as_str() {
        "int" | "int4" | "serial" | "serial4" => "integer",
        "int8" | "bigserial" | "serial8" => "bigint",
        "int2" | "smallserial" | "serial2" => "smallint",
        "varchar" | "char varying" => "character varying",
        "char" | "character" => {
            if typmod.is_empty() {
                typmod = "(1)".to_owned();
            }
            "character"
        }
        "bool" => "boolean",
        "float8" => "double precision",
        "float4" => "real",
        "float" => {
            let precision = typmod
                .trim_start_matches('(')
                .trim_end_matches(')')
                .parse::<u32>()
                .unwrap_or(53);
            typmod.clear();
            if precision <= 24 {
                "real"
            } else {
                "double precision"
            }
        }
        "decimal" => "numeric",
        "timestamptz" => {
            zone = Some(true);
            "timestamp"
        }
        "timetz" => {
            zone = Some(true);
            "time"
        }
        "varbit" => "bit varying",
        "bit" => {
            if typmod.is_empty() {
                typmod = "(1)".to_owned();
            }
            "bit"
        }
        other => other,
    }
    .to_owned();

    let zone = match (base.as_str(), zone) {
        ("timestamp" | "time", None) => " without time zone",
        (_, Some(true)) => " with time zone",
        (_, Some(false)) => " without time zone",
        (_, None) => "",
    };
    let mut out = format!("{base}{typmod}{zone}");
    for _ in 0..dims {
        out.push_str("[]");
    }
    out
}

/// Trims `s`, collapses whitespace to single spaces, and removes the spaces
/// next to `(`, `,`, `)` and `[` (keeping the one after `)`, which
/// separates `timestamp(3)` from `with time zone`).
fn tidy(s: &str) -> String {
    let words: Vec<&str> = s.split_whitespace().collect();
    let spaced = words.join(" ");
    let chars: Vec<char> = spaced.chars().collect();
    let mut out = String::with_capacity(spaced.len());
    for (i, &c) in chars.iter().enumerate() {
        if c == ' ' {
            let prev = out.chars().last();
            let next = chars.get(i + 1).copied();
            if matches!(prev, Some('(' | ',')) || matches!(next, Some('(' | ')' | ',' | '[')) {
                continue;
            }
        }
        out.push(c);
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn canonical_names_stay() {
        for t in [
            "integer",
            "bigint",
            "smallint",
            "text",
            "boolean",
            "real",
            "double precision",
            "character varying(64)",
            "character varying",
            "character(10)",
            "numeric(12,2)",
            "numeric",
            "timestamp with time zone",
            "timestamp without time zone",
            "timestamp(3) with time zone",
            "time without time zone",
            "bit varying(5)",
            "integer[]",
            "text[][]",
            "jsonb",
            "uuid",
            "bytea",
            "\"char\"",
            "public.my_enum",
        ] {
            assert_eq!(normalize_type(t), t, "{t}");
        }
    }

    #[test]
    fn aliases_normalise() {
        for (alias, canonical) in [
            ("int", "integer"),
            ("INT4", "integer"),
            ("Integer", "integer"),
            ("serial", "integer"),
            ("int8", "bigint"),
            ("bigserial", "bigint"),
            ("int2", "smallint"),
            ("varchar(64)", "character varying(64)"),
            ("VARCHAR ( 64 )", "character varying(64)"),
            ("varchar", "character varying"),
            ("character  varying(64)", "character varying(64)"),
            ("char(3)", "character(3)"),
            ("char", "character(1)"),
            ("bool", "boolean"),
            ("float8", "double precision"),
            ("float", "double precision"),
            ("float(10)", "real"),
            ("float(30)", "double precision"),
            ("float4", "real"),
            ("decimal(12, 2)", "numeric(12,2)"),
            ("numeric (12,2)", "numeric(12,2)"),
            ("timestamptz", "timestamp with time zone"),
            ("timestamptz(3)", "timestamp(3) with time zone"),
            ("timestamp", "timestamp without time zone"),
            ("timestamp(6)", "timestamp(6) without time zone"),
            (
                "timestamp (6) with time zone",
                "timestamp(6) with time zone",
            ),
            ("timetz", "time with time zone"),
            ("time", "time without time zone"),
            ("varbit(4)", "bit varying(4)"),
            ("bit", "bit(1)"),
            ("int4[]", "integer[]"),
            ("varchar(10) []", "character varying(10)[]"),
            ("  text  ", "text"),
        ] {
            assert_eq!(normalize_type(alias), canonical, "{alias}");
        }
    }

    #[test]
    fn different_types_differ() {
        assert!(!types_match("integer", "bigint"));
        assert!(!types_match("numeric(12,2)", "numeric(10,2)"));
        assert!(!types_match("varchar(64)", "character varying(32)"));
        assert!(!types_match("timestamptz", "timestamp without time zone"));
        assert!(!types_match("text", "text[]"));
        assert!(types_match("TEXT", "text"));
    }

    #[test]
    fn splits_table_names() {
        let c = MonitoredColumn::new("accounts", "id", "integer");
        assert_eq!(c.schema_and_table(), ("public", "accounts"));
        let c = MonitoredColumn::new("billing.invoices", "id", "integer");
        assert_eq!(c.schema_and_table(), ("billing", "invoices"));
    }

    #[test]
    fn debug_hides_the_password() {
        let c = SchemaConnect {
            host: "db".into(),
            port: 5432,
            user: "vigil".into(),
            password: Some("hunter2".into()),
            database: "app".into(),
        };
        let text = format!("{c:?}");
        assert!(!text.contains("hunter2"), "{text}");
        assert!(text.contains("<redacted>"), "{text}");
    }
}
