//! Redaction, statement classes and fingerprints, example by example.

#![allow(clippy::unwrap_used)]

use vigil_sql::{
    LexError, Lexer, Redacted, Redactor, StatementClass, Token, TokenKind, fingerprint, redact,
    redact_bytes,
};

/// The redacted text of `sql`.
fn text(sql: &str) -> String {
    redact(sql).text
}

/// Asserts that `sql` redacts to `expected` and that none of `secrets`
/// shows in it.
#[track_caller]
fn check(sql: &str, expected: &str, secrets: &[&str]) {
    let r = redact(sql);
    assert_eq!(r.text, expected, "redacting {sql:?}");
    for s in secrets {
        assert!(!r.text.contains(s), "{s:?} shows in {:?}", r.text);
    }
}

// ---------------------------------------------------------------------------
// Literals of every form

#[test]
fn string_constants() {
    check("SELECT 'hunter2'", "SELECT $1", &["hunter2"]);
    check("SELECT 'it''s secret'", "SELECT $1", &["secret", "it"]);
    check("SELECT ''", "SELECT $1", &[]);
    check("SELECT 'a\nb'", "SELECT $1", &[]);
}

#[test]
fn escape_strings() {
    check(r"SELECT E'pa\'ss\\word'", "SELECT $1", &["pa", "word"]);
    check(r"SELECT e'\x41\u00e9\U0001F600'", "SELECT $1", &["x41"]);
}

#[test]
fn unicode_strings() {
    check(r"SELECT U&'s\0065cret'", "SELECT $1", &["cret"]);
    check(
        r"SELECT U&'s!0065cret' UESCAPE '!'",
        "SELECT $1",
        &["cret", "UESCAPE"],
    );
    check(
        "SELECT u&'x' /* c */ uescape\n'#' FROM t",
        "SELECT $1 FROM t",
        &["uescape"],
    );
}

#[test]
fn national_bit_and_hex_strings() {
    check("SELECT N'secret'", "SELECT $1", &["secret"]);
    check("SELECT B'010101'", "SELECT $1", &["010101"]);
    check("SELECT X'DEADBEEF'", "SELECT $1", &["DEADBEEF"]);
    check("SELECT x'ab''cd'", "SELECT $1 $2", &["ab", "cd"]);
}

#[test]
fn dollar_quoted_strings() {
    check("SELECT $$it's secret$$", "SELECT $1", &["secret"]);
    check(
        "SELECT $tag$ $$ nested $$ secret $tag$",
        "SELECT $1",
        &["secret", "nested"],
    );
    check(
        "CREATE FUNCTION f() RETURNS text AS $body$ SELECT 'k3y' $body$ LANGUAGE sql",
        "CREATE FUNCTION f() RETURNS text AS $1 LANGUAGE sql",
        &["k3y", "body"],
    );
    check("DO $$BEGIN PERFORM 1; END$$", "DO $1", &["PERFORM"]);
}

#[test]
fn continued_strings_are_one_constant() {
    check(
        "SELECT 'sec'\n'ret' AS x",
        "SELECT $1 AS x",
        &["sec", "ret"],
    );
    check("SELECT 'a' -- note\n  'b'", "SELECT $1", &["note"]);
    // Without a newline they are two constants (a syntax error to
    // PostgreSQL, but nothing shows either way).
    check("SELECT 'a' 'b'", "SELECT $1 $2", &[]);
}

#[test]
fn numbers() {
    check(
        "SELECT 42, 3.14, .5, 6.02e23, 1E-5, 0x1F, 0o17, 0b101, 1_000_000",
        "SELECT $1, $2, $3, $4, $5, $6, $7, $8, $9",
        &["42", "3.14", "6.02", "0x1F", "1_000"],
    );
    check("SELECT a[1:2] FROM t", "SELECT a[$1:$2] FROM t", &[]);
    check(
        "SELECT * FROM t LIMIT 10 OFFSET 20",
        "SELECT * FROM t LIMIT $1 OFFSET $2",
        &[],
    );
}

#[test]
fn a_sign_belongs_to_its_number_where_an_operand_is_expected() {
    check(
        "UPDATE t SET x = x + -4421",
        "UPDATE t SET x = x + $1",
        &["4421"],
    );
    check(
        "SELECT -1, - 2, (-3), f(-4)",
        "SELECT $1, $2, ($3), f($4)",
        &[],
    );
    check(
        "SELECT a WHERE b = -1 AND c > -2",
        "SELECT a WHERE b = $1 AND c > $2",
        &[],
    );
    // A subtraction stays one.
    check(
        "SELECT a-1, a - 2, f(x)-3",
        "SELECT a-$1, a - $2, f(x)-$3",
        &[],
    );
    // A comment between the sign and the number: the sign stays.
    check("SELECT 1 = -/* c */1", "SELECT $1 = - /**/ $2", &[]);
    // The sign is not folded into a string or a parameter.
    check("SELECT -'5', -$1", "SELECT -$2, -$1", &[]);
}

#[test]
fn typed_literals_keep_their_type() {
    check(
        "SELECT DATE '2024-01-31', INTERVAL '1 day', '{1,2}'::int[]",
        "SELECT DATE $1, INTERVAL $2, $3::int[]",
        &["2024", "day"],
    );
}

#[test]
fn keywords_that_look_like_values_stay() {
    check(
        "SELECT * FROM t WHERE a IS NULL AND b = TRUE OR c = false",
        "SELECT * FROM t WHERE a IS NULL AND b = TRUE OR c = false",
        &[],
    );
}

#[test]
fn set_values_are_data_even_as_bare_words() {
    check(
        "SET app.api_key = s3cr3tk3y",
        "SET app.api_key = $1",
        &["s3cr3tk3y"],
    );
    check(
        "SET LOCAL app.tenant TO 'acme'",
        "SET LOCAL app.tenant TO $1",
        &["acme"],
    );
    check(
        "SET search_path TO myapp, \"$user\"",
        "SET search_path TO $1, $2",
        &["myapp"],
    );
    check("SET session app.x = on", "SET session app.x = $1", &[]);
    check(
        "SET TIME ZONE Europe_Paris",
        "SET TIME ZONE $1",
        &["Europe"],
    );
    check("SET TIME ZONE LOCAL", "SET TIME ZONE LOCAL", &[]);
    check(
        "SET statement_timeout TO DEFAULT",
        "SET statement_timeout TO DEFAULT",
        &[],
    );
    check(
        "ALTER ROLE app IN DATABASE db SET app.secret = t0ps3cret",
        "ALTER ROLE app IN DATABASE db SET app.secret = $1",
        &["t0ps3cret"],
    );
    check(
        "ALTER SYSTEM SET work_mem = '64MB'",
        "ALTER SYSTEM SET work_mem = $1",
        &["64MB"],
    );
    // Other SETs keep their words.
    check("SET ROLE admin", "SET ROLE admin", &[]);
    check(
        "SET SESSION AUTHORIZATION bob",
        "SET SESSION AUTHORIZATION bob",
        &[],
    );
    check(
        "SET TRANSACTION ISOLATION LEVEL SERIALIZABLE",
        "SET TRANSACTION ISOLATION LEVEL SERIALIZABLE",
        &[],
    );
    check(
        "ALTER TABLE t SET SCHEMA s",
        "ALTER TABLE t SET SCHEMA s",
        &[],
    );
    check("UPDATE t SET a = b", "UPDATE t SET a = b", &[]);
}

#[test]
fn passwords_and_options_are_redacted() {
    check(
        "CREATE ROLE app LOGIN PASSWORD 'Tr0ub4dor&3' VALID UNTIL '2030-01-01'",
        "CREATE ROLE app LOGIN PASSWORD $1 VALID UNTIL $2",
        &["Tr0ub4dor", "2030"],
    );
    check(
        "CREATE USER MAPPING FOR app SERVER s OPTIONS (user 'u', password 'p4ssw0rd')",
        "CREATE USER MAPPING FOR app SERVER s OPTIONS (user $1, password $2)",
        &["p4ssw0rd"],
    );
    check(
        "COPY t FROM PROGRAM 'curl http://x/?token=abcd'",
        "COPY t FROM PROGRAM $1",
        &["curl", "abcd"],
    );
}

// ---------------------------------------------------------------------------
// Comments, whitespace, identifiers

#[test]
fn comments_are_masked() {
    check(
        "SELECT 1 -- password is hunter2",
        "SELECT $1 /**/",
        &["hunter2"],
    );
    check(
        "SELECT /* k3y */ a FROM t",
        "SELECT /**/ a FROM t",
        &["k3y"],
    );
    check(
        "SELECT /* a /* nested */ k3y */ 1",
        "SELECT /**/ $1",
        &["k3y", "nested"],
    );
    check("SELECT a/*x*//*y*/FROM t", "SELECT a /**/ FROM t", &[]);
    check(
        "/*controller='users',traceparent='00-abc'*/ SELECT 1",
        "/**/ SELECT $1",
        &["users"],
    );
    check("SELECT 'x' --'", "SELECT $1 /**/", &[]);
}

#[test]
fn whitespace_is_normalized() {
    check(
        "SELECT\n\ta ,\r\n  b\u{b}FROM   t",
        "SELECT a , b FROM t",
        &[],
    );
    check(
        "SELECT a,b FROM t WHERE x=1",
        "SELECT a,b FROM t WHERE x=$1",
        &[],
    );
    check("  SELECT 1  ", "SELECT $1", &[]);
    // Tokens that would run together get a space.
    check("SELECT 'a'FROM t", "SELECT $1 FROM t", &[]);
    check("SELECT a'b'", "SELECT a $1", &[]);
    check("SELECT 0b102", "SELECT $1 $2", &[]);
    check("SELECT $abc", "SELECT $abc", &[]);
    check("SELECT $ 'x'abc", "SELECT $ $1 abc", &[]);
}

#[test]
fn identifiers_are_kept_and_made_safe_for_a_log_line() {
    check(
        "SELECT \"Weird \"\"Name\"\"\" FROM t",
        "SELECT \"Weird \"\"Name\"\"\" FROM t",
        &[],
    );
    check(
        r#"SELECT U&"d\0061t\+000061" FROM t"#,
        r#"SELECT "data" FROM t"#,
        &[],
    );
    check(
        r#"SELECT U&"d!0061t" UESCAPE '!' FROM t"#,
        r#"SELECT "dat" FROM t"#,
        &["UESCAPE"],
    );
    check(r#"SELECT U&"a\\b" FROM t"#, r#"SELECT "a\b" FROM t"#, &[]);
    // A newline or other control character in an identifier is escaped.
    check(
        "SELECT \"a\nb\" FROM t",
        r#"SELECT U&"a\000Ab" FROM t"#,
        &[],
    );
    check(
        "SELECT \"a\\\u{1b}\" FROM t",
        r#"SELECT U&"a\\\001B" FROM t"#,
        &[],
    );
    check(
        "SELECT a\u{2028}B FROM t",
        r#"SELECT U&"a\2028b" FROM t"#,
        &[],
    );
    check(
        "SELECT \u{202e}x FROM t",
        r#"SELECT U&"\202Ex" FROM t"#,
        &[],
    );
    check(
        "SELECT \"\u{1F600}\u{85}\" FROM t",
        r#"SELECT U&"😀\0085" FROM t"#,
        &[],
    );
    check("SELECT café FROM t", "SELECT café FROM t", &[]);
    // Rewritten identifiers never run into their neighbours.
    check("SELECT \u{feff}\"0\"0", r#"SELECT U&"\FEFF" "0"$1"#, &[]);
    check(
        "SELECT \"a\nb\" UESCAPE '!'",
        r#"SELECT U&"a\000Ab" UESCAPE '\' UESCAPE $1"#,
        &[],
    );
}

#[test]
fn the_text_never_holds_a_newline() {
    let r = redact("SELECT \"a\nb\",\n'c\nd'\n-- e\n/* f\ng */ FROM t\r\n");
    assert!(!r.text.contains(['\n', '\r']), "{:?}", r.text);
}

// ---------------------------------------------------------------------------
// Placeholders and parameters

#[test]
fn placeholders_are_numbered_after_parameters() {
    check(
        "SELECT * FROM t WHERE a = $1 AND b = 'x' AND c = $3 LIMIT 10",
        "SELECT * FROM t WHERE a = $1 AND b = $4 AND c = $3 LIMIT $5",
        &[],
    );
    check("SELECT $2, 'a', $1, 'b'", "SELECT $2, $3, $1, $4", &[]);
}

#[test]
fn each_statement_numbers_its_own() {
    let r = redact("SELECT 1, 2; SELECT 3; SELECT $1, 4");
    assert_eq!(r.text, "SELECT $1, $2; SELECT $1; SELECT $1, $2");
    let texts: Vec<_> = r.statements.iter().map(|s| s.text.as_str()).collect();
    assert_eq!(texts, ["SELECT $1, $2", "SELECT $1", "SELECT $1, $2"]);
}

// ---------------------------------------------------------------------------
// Fail closed

/// Asserts that `sql` fails with `error` (a variant name) and redacts to
/// `expected`, with none of `secrets` showing.
#[track_caller]
fn fails(sql: &str, error: &str, expected: &str, secrets: &[&str]) {
    let r = redact(sql);
    let e = r
        .error
        .unwrap_or_else(|| panic!("{sql:?} redacted without error: {:?}", r.text));
    assert_eq!(e.name(), error, "{sql:?}");
    assert_eq!(r.text, expected, "{sql:?}");
    assert!(r.statements.last().unwrap().masked);
    for s in secrets {
        assert!(!r.text.contains(s), "{s:?} shows in {:?}", r.text);
    }
}

#[test]
fn an_unterminated_string_masks_the_rest() {
    fails(
        "UPDATE users SET password = 'hunter2; DROP TABLE users; --",
        "unterminated_string",
        "UPDATE users SET password = $?",
        &["hunter2", "DROP", "users;"],
    );
    fails(
        "SELECT E'sec\\'ret",
        "unterminated_string",
        "SELECT $?",
        &["sec", "ret"],
    );
    fails(
        "SELECT 'a'\n'secret",
        "unterminated_string",
        "SELECT $?",
        &["secret"],
    );
    fails(
        "SELECT B'0101",
        "unterminated_string",
        "SELECT $?",
        &["0101"],
    );
    fails(
        "SELECT X'ABCD",
        "unterminated_string",
        "SELECT $?",
        &["ABCD"],
    );
    fails(
        "SELECT N'secret",
        "unterminated_string",
        "SELECT $?",
        &["secret"],
    );
    fails(
        "SELECT U&'secret",
        "unterminated_string",
        "SELECT $?",
        &["secret"],
    );
}

#[test]
fn other_unterminated_tokens_mask_the_rest() {
    fails(
        "SELECT $x$ secret",
        "unterminated_dollar_string",
        "SELECT $?",
        &["secret"],
    );
    fails(
        "SELECT \"secret",
        "unterminated_identifier",
        "SELECT $?",
        &["secret"],
    );
    fails(
        "SELECT 1 /* secret",
        "unterminated_comment",
        "SELECT $1 $?",
        &["secret"],
    );
    fails(
        "SELECT 1 /* a /* b */ secret",
        "unterminated_comment",
        "SELECT $1 $?",
        &["secret"],
    );
}

#[test]
fn bad_escapes_and_junk_mask_the_rest() {
    fails(
        r"SELECT E'secret\u12' FROM t",
        "bad_escape",
        "SELECT $?",
        &["secret", "FROM"],
    );
    fails(
        r"SELECT U&'secret\zz' FROM t",
        "bad_escape",
        "SELECT $?",
        &["secret"],
    );
    fails(
        "SELECT U&'secret' UESCAPE 'ab'",
        "bad_escape",
        "SELECT $?",
        &["secret"],
    );
    fails(
        "SELECT 123secret FROM t",
        "bad_number",
        "SELECT $?",
        &["secret", "123"],
    );
    fails("SELECT $1secret", "bad_parameter", "SELECT $?", &["secret"]);
    fails(
        "SELECT \"\" FROM t",
        "empty_identifier",
        "SELECT $?",
        &["FROM"],
    );
    fails(
        "SELECT 1 \u{1b}[31m 'x' secret",
        "control_character",
        "SELECT $1 $?",
        &["secret"],
    );
}

#[test]
fn an_error_masks_later_statements_too() {
    let r = redact("SELECT 1; SELECT 'secret; SELECT 2; SELECT 3");
    assert_eq!(r.text, "SELECT $1; SELECT $?");
    assert_eq!(r.statements.len(), 2);
    assert!(!r.statements[0].masked);
    assert!(r.statements[1].masked);
    assert_eq!(r.error, Some(LexError::UnterminatedString { offset: 17 }));

    let r = redact("SELECT 1; 'secret");
    assert_eq!(r.text, "SELECT $1; $?");
    assert_eq!(r.statements[1].class, StatementClass::Misc);
}

#[test]
fn standard_conforming_strings_off_reads_backslashes() {
    let sql = r"SELECT 'it\'s', 'secret'";
    // On (the default), PostgreSQL reads `'it\'`, the word `s`, `', '`, the
    // word `secret` and an unterminated `'`: the redactor reads the same.
    let on = redact(sql);
    assert_eq!(on.text, "SELECT $1 s $2 secret $?");
    assert!(on.error.is_some());
    // Off, `\'` is an escaped quote: two strings.
    let mut r = Redactor::new();
    r.set_standard_conforming_strings(false);
    let off = r.redact(sql);
    assert_eq!(off.text, "SELECT $1, $2");
    assert!(off.error.is_none());
}

#[test]
fn the_redactors_tokens_are_the_lexers_but_whitespace() {
    let sqls = [
        r"SELECT 'it\'s', 'secret'",
        "SELECT a  ,b\t\t-2 -- x\n/* y */ FROM t;SELECT $$a$$, U&'d!0061t' UESCAPE '!'",
        "  ",
        "",
        "SELECT 1 /* never closed",
        "x = - 5;; ;",
    ];
    for on in [true, false] {
        let mut redactor = Redactor::new();
        redactor.set_standard_conforming_strings(on);
        for sql in sqls {
            let out = redactor.redact(sql);
            let mut lexed: Vec<Token> = Vec::new();
            let mut error = None;
            for token in Lexer::new(sql).standard_conforming_strings(on) {
                match token {
                    Ok(t) if t.kind == TokenKind::Whitespace => {}
                    Ok(t) => lexed.push(t),
                    Err(e) => error = Some(e),
                }
            }
            assert_eq!(redactor.tokens(), lexed, "{sql:?}, on: {on}");
            assert_eq!(out.error, error, "{sql:?}, on: {on}");
        }
    }
}

#[test]
fn bytes_that_are_not_utf8() {
    let r = redact_bytes(b"SELECT '\xff\xfe secret' FROM \"t\xe9\"");
    assert_eq!(r.text, "SELECT $1 FROM \"t\u{fffd}\"");
    let r = redact_bytes(b"SELECT 'secret\xff");
    assert_eq!(r.text, "SELECT $?");
}

// ---------------------------------------------------------------------------
// Statements

#[test]
fn statements_are_split_at_semicolons() {
    let r = redact("BEGIN; UPDATE t SET a = 1 WHERE id = 2; COMMIT;");
    assert_eq!(r.text, "BEGIN; UPDATE t SET a = $1 WHERE id = $2; COMMIT;");
    let classes: Vec<_> = r.statements.iter().map(|s| s.class.as_str()).collect();
    assert_eq!(classes, ["misc", "write", "misc"]);
    // Empty statements are left out; a comment outside any statement only
    // leaves its mark in the text.
    let r = redact(";; SELECT 1;; -- done\n;");
    assert_eq!(r.text, "SELECT $1; /**/;");
    assert_eq!(r.statements.len(), 1);
    assert!(redact("").statements.is_empty());
    let r = redact(" -- nothing");
    assert!(r.statements.is_empty());
    assert_eq!(r.text, "/**/");
    assert_eq!(redact("SELECT 1; -- bye").text, "SELECT $1; /**/");
}

#[test]
fn semicolons_in_parentheses_and_routine_bodies_do_not_split() {
    let r = redact(
        "CREATE OR REPLACE FUNCTION f(a int) RETURNS int LANGUAGE sql \
         BEGIN ATOMIC SELECT 1; SELECT CASE WHEN a > 0 THEN 1 END; END; SELECT f(2)",
    );
    assert_eq!(r.statements.len(), 2);
    assert_eq!(r.statements[0].class, StatementClass::Ddl);
    assert_eq!(r.statements[1].text, "SELECT f($1)");
    assert_eq!(redact("SELECT (1; 2); SELECT 3").statements.len(), 2);
}

#[test]
fn classes() {
    use StatementClass::*;
    let cases: &[(&str, StatementClass)] = &[
        ("SELECT abalance FROM pgbench_accounts WHERE aid = 1", Read),
        ("select 1", Read),
        ("(SELECT 1) UNION (SELECT 2)", Read),
        ("VALUES (1), (2)", Read),
        ("TABLE t", Read),
        ("SELECT * INTO new_t FROM t", Ddl),
        ("SELECT * FROM t WHERE a IN (SELECT b INTO x FROM u)", Read),
        ("COPY t TO STDOUT", Read),
        ("COPY (SELECT * FROM t) TO '/tmp/x'", Read),
        ("COPY t (a, b) FROM STDIN", Write),
        ("INSERT INTO t VALUES (1)", Write),
        ("UPDATE t SET a = 1", Write),
        ("DELETE FROM t", Write),
        ("TRUNCATE t", Write),
        (
            "MERGE INTO t USING s ON t.id = s.id WHEN MATCHED THEN DELETE",
            Write,
        ),
        ("WITH x AS (SELECT 1) SELECT * FROM x", Read),
        (
            "WITH RECURSIVE x(n) AS (SELECT 1 UNION SELECT n + 1 FROM x) SELECT n FROM x",
            Read,
        ),
        ("WITH x AS (SELECT 1) INSERT INTO t SELECT * FROM x", Write),
        (
            "WITH d AS (DELETE FROM t RETURNING *) SELECT * FROM d",
            Write,
        ),
        (
            "WITH a AS (WITH b AS (UPDATE t SET x = 1 RETURNING x) SELECT x FROM b) SELECT 1",
            Write,
        ),
        ("WITH x AS MATERIALIZED (SELECT 1) SELECT * FROM x", Read),
        ("EXPLAIN SELECT 1", Misc),
        ("EXPLAIN UPDATE t SET a = 1", Misc),
        ("EXPLAIN ANALYZE UPDATE t SET a = 1", Write),
        ("EXPLAIN ANALYZE VERBOSE DELETE FROM t", Write),
        ("EXPLAIN (ANALYZE, BUFFERS) INSERT INTO t VALUES (1)", Write),
        ("EXPLAIN (ANALYZE true, FORMAT JSON) SELECT 1", Read),
        ("EXPLAIN (ANALYZE off) DELETE FROM t", Misc),
        (
            "EXPLAIN ANALYZE WITH d AS (DELETE FROM t RETURNING 1) SELECT 1",
            Write,
        ),
        ("DO $$BEGIN END$$", Function),
        ("CALL p(1)", Function),
        ("GRANT SELECT ON t TO app", Role),
        ("REVOKE ALL ON t FROM app", Role),
        ("CREATE ROLE app LOGIN", Role),
        ("CREATE USER app", Role),
        ("ALTER USER app PASSWORD 'x'", Role),
        ("ALTER ROLE app SET search_path = a", Role),
        ("DROP ROLE IF EXISTS app", Role),
        ("CREATE GROUP g", Role),
        (
            "ALTER DEFAULT PRIVILEGES GRANT SELECT ON TABLES TO app",
            Role,
        ),
        ("CREATE USER MAPPING FOR app SERVER s", Ddl),
        ("DROP USER MAPPING FOR app SERVER s", Ddl),
        ("CREATE TABLE t (a int)", Ddl),
        ("CREATE TEMP TABLE t AS SELECT 1", Ddl),
        (
            "CREATE OR REPLACE FUNCTION f() RETURNS int AS $$SELECT 1$$ LANGUAGE sql",
            Ddl,
        ),
        ("ALTER TABLE t ADD COLUMN b int", Ddl),
        ("DROP TABLE t", Ddl),
        ("COMMENT ON TABLE t IS 'x'", Ddl),
        ("SECURITY LABEL ON TABLE t IS 'x'", Ddl),
        ("REFRESH MATERIALIZED VIEW v", Ddl),
        ("IMPORT FOREIGN SCHEMA s FROM SERVER x INTO y", Ddl),
        ("PREPARE q (int) AS SELECT $1", Read),
        ("PREPARE q AS UPDATE t SET a = $1", Write),
        ("PREPARE TRANSACTION 'x'", Misc),
        ("DECLARE c CURSOR WITH HOLD FOR SELECT * FROM t", Read),
        ("EXECUTE q(1)", Misc),
        ("SET search_path = a", Misc),
        ("SHOW ALL", Misc),
        ("RESET ALL", Misc),
        ("BEGIN", Misc),
        ("START TRANSACTION", Misc),
        ("COMMIT", Misc),
        ("END", Misc),
        ("ROLLBACK", Misc),
        ("SAVEPOINT s", Misc),
        ("VACUUM ANALYZE t", Misc),
        ("ANALYZE t", Misc),
        ("DISCARD ALL", Misc),
        ("LISTEN ch", Misc),
        ("NOTIFY ch, 'payload'", Misc),
        ("CHECKPOINT", Misc),
        ("LOCK TABLE t", Misc),
        ("FETCH 10 FROM c", Misc),
        ("CLOSE c", Misc),
        ("DEALLOCATE q", Misc),
        ("$1", Misc),
        ("nonsense words", Misc),
    ];
    for (sql, class) in cases {
        let r = redact(sql);
        assert_eq!(r.statements.len(), 1, "{sql}");
        assert_eq!(r.statements[0].class, *class, "{sql}");
    }
}

#[test]
fn class_names() {
    for c in StatementClass::ALL {
        assert_eq!(StatementClass::from_name(c.as_str()), Some(c));
        assert_eq!(
            StatementClass::from_name(&c.as_str().to_uppercase()),
            Some(c)
        );
        assert_eq!(c.to_string(), c.as_str());
    }
    assert_eq!(StatementClass::from_name("mod"), None);
}

// ---------------------------------------------------------------------------
// Fingerprints

#[track_caller]
fn same(a: &str, b: &str) {
    assert_eq!(fingerprint(a), fingerprint(b), "{a:?} and {b:?} differ");
}

#[track_caller]
fn differ(a: &str, b: &str) {
    assert_ne!(fingerprint(a), fingerprint(b), "{a:?} and {b:?} collide");
}

#[test]
fn fingerprints_ignore_values_whitespace_comments_and_case() {
    let base = "SELECT abalance FROM pgbench_accounts WHERE aid = 48213";
    same(base, "SELECT abalance FROM pgbench_accounts WHERE aid = 1");
    same(base, "select ABALANCE from PGBENCH_ACCOUNTS where AID = 7");
    same(
        base,
        "SELECT  abalance\nFROM pgbench_accounts -- x\n WHERE aid=/* y */'7'",
    );
    same(base, "SELECT abalance FROM pgbench_accounts WHERE aid = $1");
    same(
        base,
        "SELECT abalance FROM pgbench_accounts WHERE aid = E'\\x41'",
    );
    same(
        base,
        "SELECT abalance FROM \"pgbench_accounts\" WHERE aid = 1",
    );
    same(
        "UPDATE pgbench_accounts SET abalance = abalance + -4421 WHERE aid = 6012",
        "UPDATE pgbench_accounts SET abalance = abalance + 17 WHERE aid = 1",
    );
    same("SELECT 'a'", "SELECT $$a$$");
    same("SELECT 1", "SELECT 1;");
}

#[test]
fn in_lists_and_arrays_of_any_length_collapse() {
    same(
        "SELECT * FROM t WHERE id IN (1)",
        "SELECT * FROM t WHERE id IN (1, 2, 3, 4, 5)",
    );
    same(
        "SELECT * FROM t WHERE id IN ($1, $2)",
        "SELECT * FROM t WHERE id in ('a','b','c')",
    );
    same("SELECT ARRAY[1, 2, 3]", "SELECT ARRAY[7]");
    same(
        "INSERT INTO t (a, b) VALUES (1, 'x')",
        "INSERT INTO t (a, b) VALUES (1, 'x'), (2, 'y'), ($1, $2)",
    );
    // Only lists of values collapse.
    differ(
        "SELECT * FROM t WHERE id IN (1, 2)",
        "SELECT * FROM t WHERE id IN (1, a)",
    );
    differ(
        "SELECT * FROM t WHERE id IN (1)",
        "SELECT * FROM t WHERE id IN (SELECT 1)",
    );
    differ(
        "SELECT * FROM t WHERE id IN (1)",
        "SELECT * FROM t WHERE id = 1",
    );
    differ(
        "INSERT INTO t VALUES (1, now())",
        "INSERT INTO t VALUES (1, now()), (2, 3)",
    );
    differ("SELECT f(1)", "SELECT f(1, 2)");
}

#[test]
fn fingerprints_tell_structures_apart() {
    let base = "SELECT abalance FROM pgbench_accounts WHERE aid = 1";
    differ(base, "SELECT abalance FROM pgbench_tellers WHERE aid = 1");
    differ(base, "SELECT bbalance FROM pgbench_accounts WHERE aid = 1");
    differ(base, "SELECT abalance FROM pgbench_accounts WHERE aid > 1");
    differ(
        base,
        "SELECT abalance FROM pgbench_accounts WHERE aid = 1 OR 1 = 1",
    );
    differ(base, "SELECT abalance FROM pgbench_accounts");
    differ(
        base,
        "SELECT abalance FROM pgbench_accounts WHERE aid = 1; SELECT 1",
    );
    differ("SELECT a FROM t", "SELECT \"A\" FROM t");
    differ("SELECT ab FROM t", "SELECT a b FROM t");
    differ("SELECT a, b FROM t", "SELECT a. b FROM t");
    differ("SELECT 1", "SELECT 'x' 'y'");
    differ(
        "SELECT * FROM t WHERE a = 1",
        "SELECT * FROM t WHERE a = 1 $?",
    );
    differ("SELECT 1", "SELECT -1 - 1");
}

/// Fingerprints are part of vigil's log format: these values must never
/// change (see the crate documentation, "Fingerprint").
#[test]
fn fingerprints_are_stable_across_versions() {
    let pinned: &[(&str, u64)] = &[
        (
            "SELECT abalance FROM pgbench_accounts WHERE aid = 48213;",
            0xea2f_3a6c_f181_4d83,
        ),
        (
            "UPDATE pgbench_accounts SET abalance = abalance + -4421 WHERE aid = 6012;",
            0xb911_302b_c1a8_f963,
        ),
        (
            "INSERT INTO pgbench_history (tid, bid, aid, delta, mtime) VALUES (7, 1, 6012, -4421, CURRENT_TIMESTAMP);",
            0x4687_6106_6a89_073c,
        ),
        ("SELECT 1; /* unterminated", 0xa1f7_a3cf_dd83_cbe5),
        ("", 0xcbf2_9ce4_8422_2325),
    ];
    for (sql, fp) in pinned {
        assert_eq!(fingerprint(sql), *fp, "{sql:?}: {:#018x}", fingerprint(sql));
    }
}

/// The fingerprint is what the crate documentation says, computed here
/// from the specification with an FNV-1a of its own.
#[test]
fn fingerprints_follow_the_specification() {
    fn fnv1a(data: &[u8]) -> u64 {
        data.iter().fold(0xcbf2_9ce4_8422_2325, |h, &b| {
            (h ^ u64::from(b)).wrapping_mul(0x100_0000_01b3)
        })
    }
    let stream = b"select\xffabalance\xfffrom\xffpgbench_accounts\xffwhere\xffaid\xff=\xfe\xfd";
    let sql = "SELECT abalance FROM pgbench_accounts WHERE aid = 48213;";
    assert_eq!(fingerprint(sql), fnv1a(stream));
    // Quoted names as the names they stand for; IN lists as one value; a
    // mask as its two tokens.
    let stream = b"a\"b\xffin\xff(\xfe\xfd)\xfe$\xfe?\xfe";
    assert_eq!(
        fingerprint(r#"U&"a\0022b" IN (1, $2, 'x') 'unterminated"#),
        fnv1a(stream)
    );
    // Several statements: FNV-1a over their fingerprints.
    let (one, two) = (fingerprint("SELECT 1"), fingerprint("SELECT x"));
    let both = [one.to_le_bytes(), two.to_le_bytes()].concat();
    assert_eq!(fingerprint("SELECT 1; SELECT x"), fnv1a(&both));
}

#[test]
fn a_query_strings_fingerprint_is_its_statements() {
    let one = redact("SELECT 1");
    assert_eq!(one.fingerprint, one.statements[0].fingerprint);
    let two = redact("SELECT 1; SELECT 2");
    assert_eq!(two.statements[0].fingerprint, two.statements[1].fingerprint);
    assert_ne!(two.fingerprint, two.statements[0].fingerprint);
}

// ---------------------------------------------------------------------------
// Reuse and idempotence

#[test]
fn a_reused_redactor_gives_what_a_fresh_one_gives() {
    let inputs = [
        "SELECT 1; SELECT 2; SELECT 3",
        "SELECT 'x",
        "UPDATE t SET a = 'b' WHERE c = $4",
        "",
        "SET x = y; INSERT INTO t VALUES (1)",
        "SELECT \"a\nb\"",
    ];
    let mut redactor = Redactor::new();
    let mut out = Redacted::default();
    for _ in 0..2 {
        for sql in inputs {
            redactor.redact_into(sql, &mut out);
            assert_eq!(out, redact(sql), "{sql:?}");
        }
    }
}

#[test]
fn redacting_the_text_again_changes_nothing() {
    for sql in [
        "SELECT a, 'b', $1 FROM t WHERE c IN (1, 2) -- x",
        "UPDATE t SET a = a + -1",
        "SELECT U&\"d\\0061t\", \"a\nb\" FROM t",
        "SET app.key = abc; SELECT 1",
        "SELECT * FROM t WHERE a = 'unterminated",
        "SELECT x'ab''cd', $abc",
    ] {
        let once = redact(sql);
        let twice = redact(&once.text);
        assert_eq!(twice.text, once.text, "{sql:?}");
        assert_eq!(twice.fingerprint, once.fingerprint, "{sql:?}");
    }
}

#[test]
fn text_helper_is_redact() {
    assert_eq!(text("SELECT 1"), "SELECT $1");
}

#[test]
fn a_name_after_a_standalone_u_and_ampersand_stays_apart() {
    // `U&` then `U&"d\0061t"`: the second is written as `"dat"`, which
    // glued to the first `U&` would read as a new unicode identifier.
    let out = vigil_sql::redact("SELECT U&U&\"d\\0061t\" FROM t");
    assert_eq!(out.text, "SELECT U& \"dat\" FROM t");
    assert_eq!(vigil_sql::redact(&out.text).text, out.text);
    vigil_sql::check_redaction(b"SELECT u&U&\"d\\0061t\", menu&U&\"x\" FROM t");
}

#[test]
fn a_name_after_a_dollar_and_u_and_ampersand_stays_apart() {
    // `$U&` lexes as `$`, `U`, `&`: the `U` starts a token there too.
    let out = vigil_sql::redact("SELECT $U&U&\"d\\0061t\" FROM t");
    assert_eq!(out.text, "SELECT $U& \"dat\" FROM t");
    assert_eq!(vigil_sql::redact(&out.text).text, out.text);
    vigil_sql::check_redaction(b"SELECT $U&U&\"d\\0061t\", a$U&U&\"x\" FROM t");
}

#[test]
fn a_name_written_quoted_splits_statements_as_it_did_unquoted() {
    // `\u{94}` is a name unfit for a log line, written `U&"\0094"`: the
    // statement it starts is no `CREATE FUNCTION`, before and after.
    let sql = "$$$$$$$$\u{94} CREATE FUNCTION CASE'';";
    let out = vigil_sql::redact(sql);
    let again = vigil_sql::redact(&out.text);
    assert_eq!(again.text, out.text);
    assert_eq!(again.fingerprint, out.fingerprint);
    vigil_sql::check_redaction(sql.as_bytes());
}
