#![allow(clippy::unwrap_used)]

use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};

use vigil_detect::firewall::{
    self, DENIED_SQLSTATE, Decision, Firewall, Mode, TableRef, Verdict, Who, reason,
};
use vigil_event::{Session, Value, catalog};
use vigil_sql::StatementInfo;

const APP: Who<'static> = Who {
    user: "app",
    application: "web",
    database: "shop",
};

/// A statement ready for the firewall: its redaction and its tables.
struct Stmt {
    info: StatementInfo,
    tables: Vec<TableRef>,
}

impl Stmt {
    fn new(sql: &str) -> Stmt {
        let r = vigil_sql::redact(sql);
        let info = r.statements.into_iter().next().unwrap();
        let tables = firewall::tables(&info.text);
        Stmt { info, tables }
    }

    fn get(&self) -> firewall::Statement<'_> {
        firewall::Statement::new(&self.info, &self.tables)
    }
}

fn write(dir: &Path, name: &str, text: &str) -> PathBuf {
    let p = dir.join(name);
    std::fs::write(&p, text).unwrap();
    p
}

fn load(text: &str) -> (tempfile::TempDir, Firewall) {
    let dir = tempfile::tempdir().unwrap();
    let p = write(dir.path(), "firewall.toml", text);
    let fw = Firewall::load(&p).unwrap();
    (dir, fw)
}

fn check(fw: &Firewall, who: &Who<'_>, sql: &str) -> Decision {
    let s = Stmt::new(sql);
    fw.check(who, &s.get())
}

fn verdict(fw: &Firewall, who: &Who<'_>, sql: &str) -> Verdict {
    check(fw, who, sql).verdict
}

fn t(schema: Option<&str>, name: &str) -> TableRef {
    TableRef::new(schema, name)
}

// ---------------------------------------------------------------------------
// Tables

#[test]
fn tables_of_common_statements() {
    let cases: &[(&str, &[TableRef])] = &[
        ("SELECT * FROM users WHERE id = 1", &[t(None, "users")]),
        (
            "SELECT * FROM public.users u JOIN shop.\"Orders\" o ON o.uid = u.id",
            &[t(Some("public"), "users"), t(Some("shop"), "Orders")],
        ),
        (
            "SELECT * FROM a, b AS x, c y WHERE a.id = b.id",
            &[t(None, "a"), t(None, "b"), t(None, "c")],
        ),
        ("INSERT INTO Logs (a, b) VALUES (1, 2)", &[t(None, "logs")]),
        (
            "UPDATE ONLY accounts SET x = 1 FROM rates WHERE accounts.id = rates.id",
            &[t(None, "accounts"), t(None, "rates")],
        ),
        (
            "DELETE FROM s.t USING u WHERE s.t.id = u.id",
            &[t(Some("s"), "t"), t(None, "u")],
        ),
        ("TABLE secrets", &[t(None, "secrets")]),
        (
            "TRUNCATE TABLE ONLY a, b.c",
            &[t(None, "a"), t(Some("b"), "c")],
        ),
        (
            "DROP TABLE IF EXISTS a, b CASCADE",
            &[t(None, "a"), t(None, "b")],
        ),
        ("COPY users (id, email) TO STDOUT", &[t(None, "users")]),
        ("COPY users FROM STDIN", &[t(None, "users")]),
        ("COPY (SELECT * FROM users) TO STDOUT", &[t(None, "users")]),
        (
            "MERGE INTO target t USING source s ON t.id = s.id WHEN MATCHED THEN DELETE",
            &[t(None, "target"), t(None, "source")],
        ),
        (
            "SELECT * FROM a WHERE id IN (SELECT id FROM b) AND EXISTS (SELECT 1 FROM c)",
            &[t(None, "a"), t(None, "b"), t(None, "c")],
        ),
        (
            "SELECT * FROM a, (SELECT * FROM b) s, c",
            &[t(None, "a"), t(None, "b"), t(None, "c")],
        ),
        (
            "SELECT EXTRACT(YEAR FROM created), SUBSTRING(name FROM 2) FROM t",
            &[t(None, "t")],
        ),
        ("SELECT * FROM generate_series(1, 10) g", &[]),
        (
            "WITH recent AS (SELECT * FROM orders) SELECT * FROM recent JOIN users ON true",
            &[t(None, "orders"), t(None, "users")],
        ),
        (
            "SELECT * FROM t FOR UPDATE OF t SKIP LOCKED",
            &[t(None, "t")],
        ),
        (
            "INSERT INTO t VALUES (1) ON CONFLICT (id) DO UPDATE SET x = 1",
            &[t(None, "t")],
        ),
        ("SELECT a IS DISTINCT FROM b FROM t", &[t(None, "t")]),
        (
            "SELECT * FROM \"we\"\"ird\".\"T\"",
            &[t(Some("we\"ird"), "T")],
        ),
        ("SELECT * FROM U&\"d\\0061ta\"", &[t(None, "data")]),
        (
            "SELECT * FROM U&\"d!0061ta\" Uescape '!'",
            &[t(None, "data")],
        ),
        ("SELECT * FROM cat.sch.tab", &[t(Some("sch"), "tab")]),
        ("SELECT 1", &[]),
        ("SELECT * FROM a JOIN a ON true", &[t(None, "a")]),
        ("CREATE TABLE x (a int, b text)", &[t(None, "x")]),
        (
            "ALTER TABLE x ADD COLUMN c int, ADD COLUMN d int",
            &[t(None, "x")],
        ),
        (
            "LOCK TABLE a, b IN SHARE MODE",
            &[t(None, "a"), t(None, "b")],
        ),
        (
            "SELECT * FROM a LEFT JOIN LATERAL f(a.x) ON true",
            &[t(None, "a")],
        ),
        (
            "SELECT * FROM a WHERE x = ANY(ARRAY[b, c])",
            &[t(None, "a")],
        ),
    ];
    for (sql, want) in cases {
        assert_eq!(firewall::tables(sql), *want, "{sql}");
        // The same from the redacted text.
        let r = vigil_sql::redact(sql);
        assert_eq!(firewall::tables(&r.text), *want, "redacted {sql}");
    }
}

#[test]
fn tables_of_unlexable_text_stop_at_the_error() {
    assert_eq!(
        firewall::tables("SELECT * FROM a WHERE x = 'open"),
        [t(None, "a")]
    );
}

// ---------------------------------------------------------------------------
// Rules

#[test]
fn first_matching_rule_wins() {
    let (_d, fw) = load(
        r#"
mode = "enforce"

[[rules]]
name = "admins"
action = "allow"
users = ["admin"]

[[rules]]
name = "no-drop"
action = "deny"
classes = ["ddl"]

[[rules]]
action = "allow"
classes = ["ddl", "read"]
"#,
    );
    let admin = Who {
        user: "admin",
        ..APP
    };
    let d = check(&fw, &admin, "DROP TABLE users");
    assert_eq!(d.verdict, Verdict::Allow);
    assert_eq!(d.rule.as_deref(), Some("admins"));
    assert_eq!(d.reason, reason::RULE_ALLOWS);

    let d = check(&fw, &APP, "DROP TABLE users");
    assert_eq!(d.verdict, Verdict::Deny);
    assert_eq!(d.rule.as_deref(), Some("no-drop"));
    assert_eq!(d.reason, reason::RULE_DENIES);

    // The unnamed third rule is named by its index.
    let d = check(&fw, &APP, "SELECT 1");
    assert_eq!(d.verdict, Verdict::Allow);
    assert_eq!(d.rule.as_deref(), Some("rules[2]"));

    // No rule, no allowlist: enforce denies.
    let d = check(&fw, &APP, "INSERT INTO t VALUES (1)");
    assert_eq!(d.verdict, Verdict::Deny);
    assert_eq!(d.rule, None);
    assert_eq!(d.reason, reason::UNLISTED);
    assert_eq!(fw.rule_count(), 3);
}

#[test]
fn rules_are_scoped_by_user_application_and_database() {
    let (_d, fw) = load(
        r#"
mode = "enforce"
[[rules]]
action = "allow"
users = ["app", "report_*"]
applications = ["web*"]
databases = ["shop"]
"#,
    );
    assert_eq!(verdict(&fw, &APP, "SELECT 1"), Verdict::Allow);
    let r = Who {
        user: "report_ro",
        application: "webhook",
        ..APP
    };
    assert_eq!(verdict(&fw, &r, "SELECT 1"), Verdict::Allow);
    for who in [
        Who { user: "App", ..APP },
        Who {
            application: "psql",
            ..APP
        },
        Who {
            application: "",
            ..APP
        },
        Who {
            database: "postgres",
            ..APP
        },
    ] {
        assert_eq!(verdict(&fw, &who, "SELECT 1"), Verdict::Deny, "{who:?}");
    }
}

#[test]
fn selectors_classes_fingerprints_and_patterns() {
    let fp = vigil_sql::fingerprint("SELECT abalance FROM pgbench_accounts WHERE aid = 1");
    let (_d, fw) = load(&format!(
        r#"
mode = "enforce"
[[rules]]
action = "allow"
fingerprints = ["{fp:016x}"]

[[rules]]
action = "report"
classes = ["role"]

[[rules]]
action = "allow"
pattern = "select *   from  users where id = $*"
"#
    ));
    // Fingerprint: any literal, any spelling.
    let d = check(
        &fw,
        &APP,
        "select abalance from pgbench_accounts where aid=77",
    );
    assert_eq!(
        (d.verdict, d.rule.as_deref()),
        (Verdict::Allow, Some("rules[0]"))
    );
    // Class.
    let d = check(&fw, &APP, "GRANT ALL ON users TO mallory");
    assert_eq!(
        (d.verdict, d.reason),
        (Verdict::Report, reason::RULE_REPORTS)
    );
    // Pattern: on the redacted text, case and spacing aside, anchored.
    assert_eq!(
        verdict(&fw, &APP, "SELECT * FROM users WHERE id = 5"),
        Verdict::Allow
    );
    assert_eq!(
        verdict(&fw, &APP, "SELECT * FROM users WHERE id = $1"),
        Verdict::Allow
    );
    assert_eq!(
        verdict(&fw, &APP, "SELECT * FROM users WHERE id = 5 OR 1 = 1"),
        Verdict::Allow,
        "a trailing * matches the rest"
    );
    assert_eq!(
        verdict(&fw, &APP, "SELECT * FROM users WHERE name = 'x'"),
        Verdict::Deny
    );
    assert_eq!(
        verdict(
            &fw,
            &APP,
            "WITH x AS (SELECT 1) SELECT * FROM users WHERE id = 5"
        ),
        Verdict::Deny,
        "patterns are anchored at the start"
    );
}

#[test]
fn pattern_escapes_a_literal_star() {
    let (_d, fw) = load(
        r#"
mode = "enforce"
[[rules]]
action = "allow"
pattern = 'SELECT count(\*) FROM *'
"#,
    );
    assert_eq!(verdict(&fw, &APP, "SELECT count(*) FROM t"), Verdict::Allow);
    assert_eq!(verdict(&fw, &APP, "SELECT count(id) FROM t"), Verdict::Deny);
}

#[test]
fn table_rules_deny_any_and_allow_only_all() {
    let (_d, fw) = load(
        r#"
mode = "enforce"
[[rules]]
name = "secrets"
action = "deny"
tables = ["vault.*", "\"Keys\""]

[[rules]]
name = "catalog"
action = "allow"
tables = ["public.products", "prices"]
"#,
    );
    assert!(fw.needs_tables());
    assert_eq!(verdict(&fw, &APP, "SELECT * FROM products"), Verdict::Allow);
    assert_eq!(
        verdict(
            &fw,
            &APP,
            "SELECT * FROM public.products JOIN prices ON true"
        ),
        Verdict::Allow
    );
    // One table outside the allow list: the allow rule does not match.
    let d = check(&fw, &APP, "SELECT * FROM products JOIN users ON true");
    assert_eq!((d.verdict, d.rule), (Verdict::Deny, None));
    // An allow rule with tables needs a table.
    assert_eq!(verdict(&fw, &APP, "SELECT 1"), Verdict::Deny);
    // Another schema than the search path: not allowed.
    assert_eq!(
        verdict(&fw, &APP, "SELECT * FROM other.products"),
        Verdict::Deny
    );
    // Deny rules match any table named.
    let d = check(&fw, &APP, "SELECT * FROM products, vault.keys");
    assert_eq!(d.rule.as_deref(), Some("secrets"));
    // vault is not on the search path.
    let d = check(&fw, &APP, "SELECT * FROM tokens");
    assert_eq!(d.rule, None);
    let d = check(&fw, &APP, "SELECT * FROM \"Keys\"");
    assert_eq!(d.rule.as_deref(), Some("secrets"));
    // Unquoted names fold to lower case: "Keys" is not keys.
    let d = check(&fw, &APP, "SELECT * FROM Keys");
    assert_eq!(d.rule, None);
}

#[test]
fn table_rules_follow_search_path_for_allow() {
    let (_d, fw) = load(
        r#"
mode = "enforce"
search_path = ["app", "public"]
[[rules]]
action = "allow"
tables = ["app.*"]
"#,
    );
    assert_eq!(verdict(&fw, &APP, "SELECT * FROM items"), Verdict::Allow);
    assert_eq!(
        verdict(&fw, &APP, "SELECT * FROM app.items"),
        Verdict::Allow
    );
    assert_eq!(verdict(&fw, &APP, "SELECT * FROM x.items"), Verdict::Deny);
}

#[test]
fn table_rules_without_schema_match_every_schema() {
    let (_d, fw) = load(
        r#"
mode = "detect"
[[rules]]
action = "deny"
tables = ["keys"]
[[rules]]
action = "deny"
tables = ["vault.tokens"]
"#,
    );
    for sql in [
        "SELECT * FROM keys",
        "SELECT * FROM vault.keys",
        "SELECT * FROM public.keys",
    ] {
        assert_eq!(
            check(&fw, &APP, sql).rule.as_deref(),
            Some("rules[0]"),
            "{sql}"
        );
    }
    assert_eq!(
        check(&fw, &APP, "SELECT * FROM vault.tokens")
            .rule
            .as_deref(),
        Some("rules[1]")
    );
    // Named without its schema, vault.tokens is reached only through a
    // search_path that holds vault, which the firewall does not follow.
    assert_eq!(check(&fw, &APP, "SELECT * FROM tokens").rule, None);
}

// ---------------------------------------------------------------------------
// Modes

fn allowlist_line(sql: &str, user: Option<&str>) -> String {
    let fp = vigil_sql::fingerprint(sql);
    match user {
        Some(u) => format!("{{\"fingerprint\":\"{fp:016x}\",\"user\":\"{u}\"}}\n"),
        None => format!("{{\"fingerprint\":\"{fp:016X}\",\"statement\":\"…\"}}\n"),
    }
}

fn with_allowlist(mode: &str, extra: &str) -> (tempfile::TempDir, Firewall) {
    let dir = tempfile::tempdir().unwrap();
    let list = format!(
        "# comment\n\n{}{}",
        allowlist_line("SELECT * FROM users WHERE id = 1", None),
        allowlist_line("DELETE FROM users WHERE id = 1", Some("admin")),
    );
    write(dir.path(), "allow.jsonl", &list);
    let rules = write(
        dir.path(),
        "firewall.toml",
        &format!("mode = \"{mode}\"\nallowlist = \"allow.jsonl\"\n{extra}"),
    );
    let fw = Firewall::load(&rules).unwrap();
    assert_eq!(fw.allowlist_len(), 2);
    (dir, fw)
}

#[test]
fn enforce_denies_what_is_outside_the_allowlist() {
    let (_d, fw) = with_allowlist("enforce", "");
    let d = check(&fw, &APP, "select * from users where id = 99");
    assert_eq!((d.verdict, d.reason), (Verdict::Allow, reason::ALLOWLISTED));
    let d = check(&fw, &APP, "SELECT * FROM users");
    assert_eq!((d.verdict, d.reason), (Verdict::Deny, reason::UNLISTED));
    // An entry with a user is for that user only.
    assert_eq!(
        verdict(&fw, &APP, "DELETE FROM users WHERE id = 5"),
        Verdict::Deny
    );
    let admin = Who {
        user: "admin",
        ..APP
    };
    assert_eq!(
        verdict(&fw, &admin, "DELETE FROM users WHERE id = 5"),
        Verdict::Allow
    );
}

#[test]
fn detect_reports_and_never_denies() {
    let (_d, fw) = with_allowlist(
        "detect",
        "[[rules]]\naction = \"deny\"\nclasses = [\"ddl\"]\n",
    );
    assert_eq!(fw.mode(), Mode::Detect);
    assert_eq!(
        verdict(&fw, &APP, "SELECT * FROM users WHERE id = 2"),
        Verdict::Allow
    );
    let d = check(&fw, &APP, "SELECT * FROM users");
    assert_eq!((d.verdict, d.reason), (Verdict::Report, reason::UNLISTED));
    assert!(!d.learn);
    let d = check(&fw, &APP, "DROP TABLE users");
    assert_eq!(
        (d.verdict, d.reason, d.rule.as_deref()),
        (Verdict::Report, reason::RULE_WOULD_DENY, Some("rules[0]"))
    );
}

#[test]
fn unparsed_policy() {
    let bad = "SELECT * FROM users WHERE name = 'unterminated";
    for (policy, mode, want, why) in [
        ("deny", "enforce", Verdict::Deny, reason::UNPARSED),
        ("report", "enforce", Verdict::Report, reason::UNPARSED),
        ("allow", "enforce", Verdict::Allow, reason::UNPARSED),
        (
            "deny",
            "detect",
            Verdict::Report,
            reason::UNPARSED_WOULD_DENY,
        ),
        (
            "deny",
            "learn",
            Verdict::Report,
            reason::UNPARSED_WOULD_DENY,
        ),
    ] {
        let dir = tempfile::tempdir().unwrap();
        // A rule that would allow everything: the policy comes first.
        let rules = write(
            dir.path(),
            "fw.toml",
            &format!(
                "mode = \"{mode}\"\nunparsed = \"{policy}\"\n{}[[rules]]\naction = \"allow\"\n",
                if mode == "learn" {
                    "allowlist = \"a.jsonl\"\n"
                } else {
                    ""
                }
            ),
        );
        let fw = Firewall::load(&rules).unwrap();
        let s = Stmt::new(bad);
        assert!(s.info.masked);
        let d = fw.check(&APP, &s.get());
        assert_eq!((d.verdict, d.reason), (want, why), "{policy} {mode}");
        assert!(!d.learn);
        assert!(!fw.learn(&APP, &s.get()).unwrap(), "never learned");
    }
    // The default is deny.
    let (_d, fw) = load("mode = \"enforce\"\n");
    assert_eq!(verdict(&fw, &APP, bad), Verdict::Deny);
}

#[test]
fn learn_writes_a_reloadable_allowlist() {
    let dir = tempfile::tempdir().unwrap();
    let list = dir.path().join("learned.jsonl");
    let rules = write(
        dir.path(),
        "fw.toml",
        "mode = \"learn\"\nallowlist = \"learned.jsonl\"\n[[rules]]\naction = \"deny\"\nclasses = [\"role\"]\n",
    );
    let fw = Firewall::load(&rules).unwrap();
    assert_eq!(fw.allowlist_path(), Some(list.as_path()));
    assert!(list.exists(), "created at load");
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt as _;
        let mode = std::fs::metadata(&list).unwrap().permissions().mode();
        assert_eq!(mode & 0o777, 0o600);
    }

    let s = Stmt::new("SELECT * FROM users WHERE email = 'ann@example.com'");
    let d = fw.check(&APP, &s.get());
    assert_eq!(
        (d.verdict, d.reason, d.learn),
        (Verdict::Allow, reason::LEARNING, true)
    );
    assert!(fw.learn(&APP, &s.get()).unwrap());
    assert!(!fw.learn(&APP, &s.get()).unwrap(), "known");
    let other = Stmt::new("SELECT * FROM users WHERE email = 'bob@example.org'");
    assert!(!fw.learn(&APP, &other.get()).unwrap(), "same fingerprint");
    let admin = Who {
        user: "admin",
        ..APP
    };
    assert!(fw.learn(&admin, &s.get()).unwrap(), "another user");
    // A deny rule is reported, not learned.
    let d = check(&fw, &APP, "GRANT admin TO app");
    assert_eq!((d.verdict, d.learn), (Verdict::Report, false));

    // The file holds redacted statements only.
    let text = std::fs::read_to_string(&list).unwrap();
    assert_eq!(text.lines().count(), 2);
    assert!(!text.contains("ann@example.com"));
    assert!(text.contains("SELECT * FROM users WHERE email = $1"));

    // Enforce with what was learned.
    std::fs::write(
        &rules,
        "mode = \"enforce\"\nallowlist = \"learned.jsonl\"\n",
    )
    .unwrap();
    let fw = Firewall::load(&rules).unwrap();
    assert_eq!(fw.allowlist_len(), 2);
    assert_eq!(
        verdict(&fw, &APP, "SELECT * FROM users WHERE email = 'x'"),
        Verdict::Allow
    );
    assert_eq!(verdict(&fw, &APP, "SELECT * FROM users"), Verdict::Deny);
    let carol = Who {
        user: "carol",
        ..APP
    };
    assert_eq!(
        verdict(&fw, &carol, "SELECT * FROM users WHERE email = 'x'"),
        Verdict::Deny,
        "learned per user"
    );
}

#[test]
fn learn_resumes_after_a_torn_line_and_stops_at_its_limit() {
    let dir = tempfile::tempdir().unwrap();
    let list = dir.path().join("a.jsonl");
    let first = allowlist_line("SELECT 1", None);
    std::fs::write(&list, format!("{first}{{\"fingerprint\":\"00")).unwrap();
    let rules = write(
        dir.path(),
        "fw.toml",
        "mode = \"learn\"\nallowlist = \"a.jsonl\"\nlearn_limit = 2\n",
    );
    let fw = Firewall::load(&rules).unwrap();
    assert_eq!(fw.allowlist_len(), 1);
    assert_eq!(verdict(&fw, &APP, "SELECT 2"), Verdict::Allow);
    assert!(
        !check(&fw, &APP, "SELECT 2").learn,
        "SELECT 1 and 2 share a fingerprint"
    );
    for (sql, added) in [
        ("SELECT * FROM a", true),
        ("SELECT * FROM b", true),
        ("SELECT * FROM c", false),
    ] {
        let s = Stmt::new(sql);
        assert_eq!(fw.learn(&APP, &s.get()).unwrap(), added, "{sql}");
    }
    let text = std::fs::read_to_string(&list).unwrap();
    assert_eq!(text.lines().count(), 3, "{text}");
    // A file ending without a newline gets one before the next entry.
    std::fs::write(&list, first.trim_end()).unwrap();
    let fw = Firewall::load(&rules).unwrap();
    assert!(fw.learn(&APP, &Stmt::new("SELECT * FROM d").get()).unwrap());
    std::fs::write(&rules, "mode = \"enforce\"\nallowlist = \"a.jsonl\"\n").unwrap();
    let fw = Firewall::load(&rules).unwrap();
    assert_eq!(fw.allowlist_len(), 2);
}

#[test]
fn learn_is_a_no_op_outside_learn_mode() {
    let (_d, fw) = with_allowlist("detect", "");
    assert!(!fw.learn(&APP, &Stmt::new("SELECT * FROM z").get()).unwrap());
}

// ---------------------------------------------------------------------------
// Events

#[test]
fn every_decision_is_an_event() {
    let (_d, fw) = with_allowlist(
        "enforce",
        "[[rules]]\nname = \"no-role\"\naction = \"deny\"\nclasses = [\"role\"]\n",
    );
    let session = Arc::new(Session {
        id: 7,
        db_user: Some("app".into()),
        ..Session::default()
    });

    let s = Stmt::new("GRANT ALL ON users TO mallory");
    let d = fw.check(&APP, &s.get());
    let ev = firewall::decision_event(&d, &APP, &s.get(), Some(&session));
    assert_eq!(ev.kind, catalog::STATEMENT_DENIED);
    assert_eq!(ev.message, "GRANT ALL ON users TO mallory");
    assert_eq!(ev.fingerprint, Some(s.info.fingerprint));
    assert_eq!(ev.session.as_ref().map(|s| s.id), Some(7));
    assert_eq!(
        ev.field_value("rule"),
        Some(&Value::from("no-role".to_owned()))
    );
    assert_eq!(
        ev.field_value("reason"),
        Some(&Value::from(reason::RULE_DENIES))
    );
    assert_eq!(ev.field_value("mode"), Some(&Value::from("enforce")));
    assert_eq!(ev.field_value("class"), Some(&Value::from("role")));
    assert_eq!(
        ev.field_value("sqlstate"),
        Some(&Value::from(DENIED_SQLSTATE))
    );
    assert_eq!(ev.field_value("user"), None, "in the session");

    let s = Stmt::new("SELECT * FROM users WHERE id = 'secret-id'");
    let d = fw.check(&APP, &s.get());
    let ev = firewall::decision_event(&d, &APP, &s.get(), None);
    assert_eq!(ev.kind, catalog::FIREWALL_ALLOWED);
    assert_eq!(ev.field_value("rule"), None);
    assert_eq!(ev.field_value("user"), Some(&Value::from("app".to_owned())));
    assert!(!format!("{ev:?}").contains("secret-id"), "no literal");

    let (_d2, det) = with_allowlist("detect", "");
    let s = Stmt::new("SELECT * FROM orders");
    let d = det.check(&APP, &s.get());
    let ev = firewall::decision_event(&d, &APP, &s.get(), None);
    assert_eq!(ev.kind, catalog::FIREWALL_UNLISTED);

    let ev = firewall::learned_event(&APP, &s.get(), Some(&session));
    assert_eq!(ev.kind, catalog::FIREWALL_LEARNED);

    let ev = fw.loaded_event();
    assert_eq!(ev.kind, catalog::FIREWALL_RULES_LOADED);
    assert_eq!(ev.field_value("rules"), Some(&Value::Int(1)));
    assert_eq!(ev.field_value("allowlist_entries"), Some(&Value::Int(2)));
}

#[test]
fn firewall_is_shared_between_threads() {
    fn shared<T: Send + Sync>() {}
    shared::<Firewall>();
    let dir = tempfile::tempdir().unwrap();
    let rules = write(
        dir.path(),
        "fw.toml",
        "mode = \"learn\"\nallowlist = \"a.jsonl\"\n",
    );
    let fw = Arc::new(Firewall::load(&rules).unwrap());
    let threads: Vec<_> = (0..4)
        .map(|_| {
            let fw = Arc::clone(&fw);
            std::thread::spawn(move || {
                for k in 0..20 {
                    let s = Stmt::new(&format!("SELECT c{} FROM t", k % 10));
                    fw.learn(&APP, &s.get()).unwrap();
                }
            })
        })
        .collect();
    for t in threads {
        t.join().unwrap();
    }
    let text = std::fs::read_to_string(dir.path().join("a.jsonl")).unwrap();
    assert_eq!(text.lines().count(), 10, "each once, whole lines");
}

/// Reloading is the caller's: it swaps its Arc on success and keeps the old
/// firewall, with an event, on failure.
#[test]
fn a_failed_reload_keeps_the_old_rules() {
    let dir = tempfile::tempdir().unwrap();
    let rules = write(
        dir.path(),
        "fw.toml",
        "mode = \"enforce\"\n[[rules]]\naction = \"allow\"\nclasses = [\"read\"]\n",
    );
    let current = Mutex::new(Arc::new(Firewall::load(&rules).unwrap()));
    std::fs::write(&rules, "mode = \"enforce\"\n[[rules]]\naction = \"alow\"\n").unwrap();
    let event = match Firewall::load(&rules) {
        Ok(fw) => {
            *current.lock().unwrap() = Arc::new(fw);
            None
        }
        Err(e) => Some(e.event()),
    };
    let ev = event.unwrap();
    assert_eq!(ev.kind, catalog::FIREWALL_RULES_INVALID);
    assert_eq!(ev.field_value("line"), Some(&Value::Int(3)));
    assert_eq!(
        ev.field_value("key"),
        Some(&Value::from("rules[0].action".to_owned()))
    );
    let fw = Arc::clone(&current.lock().unwrap());
    assert_eq!(verdict(&fw, &APP, "SELECT 1"), Verdict::Allow);
}

// ---------------------------------------------------------------------------
// Rules file errors

/// Loads `text` as `fw.toml` and returns the error line without the
/// directory.
fn error(text: &str) -> String {
    let dir = tempfile::tempdir().unwrap();
    let p = write(dir.path(), "fw.toml", text);
    let e = Firewall::load(&p).unwrap_err();
    assert_eq!(e.file(), p);
    let s = e.to_string();
    assert!(!s.contains('\n'), "{s}");
    s.strip_prefix(&format!("{}/", dir.path().display()))
        .unwrap()
        .to_owned()
}

#[test]
fn rules_file_errors_name_file_line_and_key() {
    let cases: &[(&str, &str)] = &[
        // Syntax.
        (
            "mode = \"enforce\"\n[[rules]]\naction = \"deny\nclasses = []\n",
            "fw.toml:3: rules[0].action: invalid TOML: ",
        ),
        ("", "fw.toml:1: mode: missing; add mode"),
        (
            "mode = \"block\"\n",
            "fw.toml:1: mode: unknown mode \"block\"; expected one of learn, detect, enforce",
        ),
        (
            "mode = 3\n",
            "fw.toml:1: mode: expected a string, found integer; quote it",
        ),
        (
            "mode = \"detect\"\nunparsed = \"ignore\"\n",
            "fw.toml:2: unparsed: unknown policy \"ignore\"",
        ),
        (
            "mode = \"detect\"\n\nmodes = \"x\"\n",
            "fw.toml:3: modes: unknown key; expected mode,",
        ),
        (
            "mode = \"learn\"\n",
            "fw.toml:1: allowlist: learn mode needs an allowlist file",
        ),
        (
            "mode = \"detect\"\nlearn_limit = 0\n",
            "fw.toml:2: learn_limit: must be a positive number",
        ),
        (
            "mode = \"detect\"\nrules = \"all\"\n",
            "fw.toml:2: rules: expected [[rules]] tables, found string",
        ),
        (
            "mode = \"enforce\"\n\n[[rules]]\nname = \"a\"\nusers = [\"x\"]\n",
            "fw.toml:3: rules[0].action: missing; add action",
        ),
        (
            "mode = \"enforce\"\n[[rules]]\naction = \"allow\"\n[[rules]]\naction = \"block\"\n",
            "fw.toml:5: rules[1].action: unknown action \"block\"; expected one of allow, report, deny",
        ),
        (
            "mode = \"enforce\"\n[[rules]]\naction = \"allow\"\nclasses = [\"read\",\n  \"select\"]\n",
            "fw.toml:5: rules[0].classes[1]: unknown statement class \"select\"",
        ),
        (
            "mode = \"enforce\"\n[[rules]]\naction = \"deny\"\nfingerprints = [\"abc\"]\n",
            "fw.toml:4: rules[0].fingerprints[0]: \"abc\" is not a fingerprint; write its 16 hex digits",
        ),
        (
            "mode = \"enforce\"\n[[rules]]\naction = \"deny\"\ntables = [\"a.b.c\"]\n",
            "fw.toml:4: rules[0].tables[0]: \"a.b.c\" has more than two parts",
        ),
        (
            "mode = \"enforce\"\n[[rules]]\naction = \"deny\"\ntables = [\"\\\"open\"]\n",
            "fw.toml:4: rules[0].tables[0]: unterminated quoted name",
        ),
        (
            "mode = \"enforce\"\n[[rules]]\naction = \"deny\"\nusers = []\n",
            "fw.toml:4: rules[0].users: empty list; remove the key",
        ),
        (
            "mode = \"enforce\"\n[[rules]]\naction = \"deny\"\nusers = \"app\"\n",
            "fw.toml:4: rules[0].users: expected a list of strings, found string",
        ),
        (
            "mode = \"enforce\"\n[[rules]]\naction = \"deny\"\npattern = \" \"\n",
            "fw.toml:4: rules[0].pattern: empty pattern",
        ),
        (
            "mode = \"enforce\"\n[[rules]]\naction = \"deny\"\nuser = [\"app\"]\n",
            "fw.toml:4: rules[0].user: unknown key; expected name, action, users",
        ),
        (
            "mode = \"enforce\"\n[[rules]]\nname = \"x\"\naction = \"deny\"\n[[rules]]\nname = \"x\"\naction = \"allow\"\n",
            "fw.toml:6: rules[1].name: duplicate rule name \"x\" (also rules[0])",
        ),
        (
            "mode = \"enforce\"\nallowlist = \"missing.jsonl\"\n",
            "fw.toml:2: allowlist: cannot read the allowlist ",
        ),
        (
            "mode = \"enforce\"\nrules = [1]\n",
            "fw.toml:2: rules[0]: expected a table, found integer",
        ),
    ];
    for (text, want) in cases {
        let got = error(text);
        assert!(got.starts_with(want), "{text:?}\n got: {got}\nwant: {want}");
    }
    assert!(cases.len() >= 10);
}

#[test]
fn the_first_error_in_the_file_is_reported() {
    let got = error("mode = \"nope\"\n[[rules]]\naction = \"x\"\n[[rules]]\nclasses = [\"y\"]\n");
    assert!(got.starts_with("fw.toml:1: mode:"), "{got}");
}

#[test]
fn allowlist_errors_name_the_allowlist_line() {
    let dir = tempfile::tempdir().unwrap();
    write(
        dir.path(),
        "a.jsonl",
        "{\"fingerprint\":\"0011223344556677\"}\nnot json\n{\"fingerprint\":\"00\"}\n",
    );
    let rules = write(
        dir.path(),
        "fw.toml",
        "mode = \"enforce\"\nallowlist = \"a.jsonl\"\n",
    );
    let e = Firewall::load(&rules).unwrap_err();
    assert_eq!(e.file(), dir.path().join("a.jsonl"));
    assert_eq!((e.line(), e.key()), (Some(2), Some("entry")));
    assert!(e.message().contains("one JSON object per line"), "{e}");

    write(
        dir.path(),
        "a.jsonl",
        "{\"fingerprint\":\"00\"}\n{\"fingerprint\":\"0011223344556677\"}\n",
    );
    let e = Firewall::load(&rules).unwrap_err();
    assert_eq!((e.line(), e.key()), (Some(1), Some("fingerprint")));
}

#[test]
fn an_unreadable_rules_file_has_no_line() {
    let dir = tempfile::tempdir().unwrap();
    let p = dir.path().join("absent.toml");
    let e = Firewall::load(&p).unwrap_err();
    assert_eq!(e.line(), None);
    assert!(
        e.to_string().contains("absent.toml: cannot read the file"),
        "{e}"
    );
}

#[test]
fn the_capture_file_holds_every_redacted_statement_and_its_decision() {
    let (dir, fw) = load(
        "mode = \"detect\"\ncapture = \"capture.jsonl\"\nlog_allowed = true\n\n\
         [[rules]]\naction = \"allow\"\nclasses = [\"read\"]\n",
    );
    assert!(fw.captures() && fw.log_allowed());
    let who = APP;
    for sql in [
        "SELECT * FROM cards WHERE pan = '4111111111111111'",
        "UPDATE cards SET cvv = '123' WHERE id = 987654321",
    ] {
        let s = Stmt::new(sql);
        let decision = fw.check(&who, &s.get());
        fw.capture(&who, &s.get(), &decision).unwrap();
    }
    let path = dir.path().join("capture.jsonl");
    let text = std::fs::read_to_string(&path).unwrap();
    // The literals, long enough that no timestamp or fingerprint holds them.
    assert!(
        !text.contains("4111111111111111")
            && !text.contains("'123'")
            && !text.contains("987654321")
    );
    let lines: Vec<serde_json::Value> = text
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    assert_eq!(lines.len(), 2);
    assert_eq!(lines[0]["verdict"], "allow");
    assert_eq!(lines[0]["statement"], "SELECT * FROM cards WHERE pan = $1");
    assert_eq!(lines[0]["user"], "app");
    assert_eq!(lines[0]["class"], "read");
    assert_eq!(lines[1]["verdict"], "report");
    assert_eq!(lines[1]["fingerprint"].as_str().unwrap().len(), 16);
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        assert_eq!(
            std::fs::metadata(&path).unwrap().permissions().mode() & 0o777,
            0o600
        );
    }
    let e = error("mode = \"detect\"\nlog_allowed = \"yes\"\n");
    assert!(e.contains(":2:") && e.contains("log_allowed"), "{e}");
    let e = error("mode = \"detect\"\ncapture = \"\"\n");
    assert!(e.contains("capture") && e.contains("empty path"), "{e}");
}
