//! Real clients through the proxy: pgbench in every query mode, pg_dump and
//! pg_restore, tokio-postgres (prepared statements, pipelining, errors,
//! cancel, LISTEN/NOTIFY, large results), Python's psycopg 3, and psql with
//! each password method. Every test checks what the client got and what the
//! proxy reported.

mod common;

use std::ffi::OsStr;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::time::{Duration, Instant};

use common::{Harness, field, int, text};
use tokio_postgres::error::SqlState;
use tokio_postgres::{AsyncMessage, Client, NoTls, SimpleQueryMessage};
use vigil_event::{Event, Value, catalog};
use vigil_testkit::postgres::{Auth, PgServer, SUPERUSER, SUPERUSER_PASSWORD};

/// Upper bound for any one client exchange in these tests.
const PATIENCE: Duration = Duration::from_secs(20);

fn pg() -> PgServer {
    PgServer::start().expect("PostgreSQL starts")
}

/// The number of events so far: later events start at this index.
fn mark(h: &mut Harness) -> usize {
    h.drain().len()
}

fn is_statement(e: &Event) -> bool {
    e.kind == catalog::STATEMENT_EXECUTED
        || e.kind == catalog::STATEMENT_FAILED
        || e.kind == catalog::STATEMENT_UNPARSED
}

/// The statement events reported since `from`.
fn statements_since(h: &mut Harness, from: usize) -> Vec<Event> {
    h.drain()[from..]
        .iter()
        .filter(|e| is_statement(e))
        .cloned()
        .collect()
}

/// The events whose redacted text is `sql`.
fn with_text<'e>(events: &'e [Event], sql: &str) -> Vec<&'e Event> {
    events.iter().filter(|e| e.message == sql).collect()
}

/// A boolean field of an event.
fn flag(e: &Event, key: &str) -> Option<bool> {
    match e.field_value(key) {
        Some(Value::Bool(b)) => Some(*b),
        _ => None,
    }
}

/// Panics unless `dump` is free of every string in `secrets`.
fn assert_absent(dump: &str, secrets: &[&str]) {
    for secret in secrets {
        assert!(
            !dump.contains(secret),
            "{secret:?} leaked into the events:\n{dump}"
        );
    }
}

/// A PostgreSQL client program: from the server's bindir, else /usr/bin.
fn program(pg: &PgServer, name: &str) -> PathBuf {
    let own = pg.bindir().join(name);
    if own.is_file() {
        own
    } else {
        Path::new("/usr/bin").join(name)
    }
}

/// `name` (pgbench, pg_dump, ...) connecting through the proxy as the
/// superuser to the database `postgres`, with no other `PG*` variable.
fn client(h: &Harness, pg: &PgServer, name: &str) -> Command {
    let mut cmd = Command::new(program(pg, name));
    for (key, _) in std::env::vars_os() {
        if key.to_string_lossy().starts_with("PG") {
            cmd.env_remove(key);
        }
    }
    cmd.env("PGHOST", h.addr.ip().to_string())
        .env("PGPORT", h.addr.port().to_string())
        .env("PGUSER", SUPERUSER)
        .env("PGDATABASE", "postgres")
        .env("PGPASSWORD", SUPERUSER_PASSWORD)
        .env("PGSSLMODE", "disable")
        .env("PGCONNECT_TIMEOUT", "10");
    cmd
}

/// Runs `cmd`; panics with its output unless it succeeds.
fn run(cmd: &mut Command) -> Output {
    let out = cmd.output().expect("the client runs");
    assert!(out.status.success(), "{:?} failed: {}", cmd, text(&out));
    out
}

/// Panics if a digit follows `aid = ` anywhere in `s`: a pgbench account
/// id reached the events.
fn assert_no_aid_literal(s: &str) {
    for after in s.split("aid = ").skip(1) {
        assert!(
            !after.starts_with(|c: char| c.is_ascii_digit()),
            "an aid value leaked: ...aid = {}",
            after.chars().take(20).collect::<String>()
        );
    }
}

#[test]
fn pgbench_initialises_and_runs_in_every_query_mode() {
    let pg = pg();
    let mut h = Harness::plain(&pg);
    let pgbench = |h: &Harness, args: &[&str]| run(client(h, &pg, "pgbench").args(args));

    pgbench(&h, &["-i", "-s", "1", "-q"]);
    let init = statements_since(&mut h, 0);
    let copy = init
        .iter()
        .find(|e| field(e, "protocol") == Some("copy"))
        .unwrap_or_else(|| panic!("no COPY event:\n{}", h.dump()));
    assert_eq!(copy.kind, catalog::STATEMENT_EXECUTED);
    assert!(
        copy.message
            .to_ascii_lowercase()
            .contains("pgbench_accounts"),
        "{}",
        copy.message
    );
    assert_eq!(int(copy, "rows"), Some(100_000));
    assert_eq!(field(copy, "command"), Some("COPY"));
    assert!(init.iter().all(|e| e.kind == catalog::STATEMENT_EXECUTED));

    let select = "SELECT abalance FROM pgbench_accounts WHERE aid = $1";
    for (mode, protocol) in [
        ("simple", "simple"),
        ("extended", "extended"),
        ("prepared", "extended"),
    ] {
        let from = mark(&mut h);
        let out = pgbench(&h, &["-S", "-t", "50", "-c", "2", "-M", mode]);
        let stdout = String::from_utf8_lossy(&out.stdout);
        assert!(
            stdout.contains("number of transactions actually processed: 100/100"),
            "-M {mode}: {stdout}"
        );
        let events = statements_since(&mut h, from);
        assert!(
            events.iter().all(|e| e.kind == catalog::STATEMENT_EXECUTED),
            "-M {mode}: {events:#?}"
        );
        let selects = with_text(&events, select);
        // One SELECT per transaction: 2 clients × 50.
        assert_eq!(selects.len(), 100, "-M {mode}; events:\n{}", h.dump());
        for e in &selects {
            assert_eq!(field(e, "protocol"), Some(protocol), "-M {mode}");
            assert_eq!(field(e, "class"), Some("read"), "-M {mode}");
            assert_eq!(int(e, "rows"), Some(1), "-M {mode}");
            if mode == "prepared" {
                assert!(
                    field(e, "statement").is_some_and(|n| !n.is_empty()),
                    "-M prepared without a statement name: {e:?}"
                );
            } else {
                assert_eq!(field(e, "statement"), None, "-M {mode}");
            }
        }
        let sessions: std::collections::HashSet<u64> = selects
            .iter()
            .filter_map(|e| e.session.as_ref().map(|s| s.id))
            .collect();
        assert_eq!(sessions.len(), 2, "-M {mode}: two clients");
    }

    let from = mark(&mut h);
    let out = pgbench(&h, &["-t", "20", "-c", "2"]);
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        stdout.contains("number of transactions actually processed: 40/40"),
        "{stdout}"
    );
    let events = statements_since(&mut h, from);
    assert!(events.iter().all(|e| e.kind == catalog::STATEMENT_EXECUTED));
    assert!(events.len() >= 40 * 7, "{} statements", events.len());
    assert!(
        events
            .iter()
            .all(|e| field(e, "protocol") == Some("simple")),
        "{events:#?}"
    );
    let updates: Vec<&Event> = events
        .iter()
        .filter(|e| {
            e.message
                .starts_with("UPDATE pgbench_accounts SET abalance")
        })
        .collect();
    assert_eq!(updates.len(), 40, "{}", h.dump());
    assert!(updates.iter().all(|e| int(e, "rows") == Some(1)));
    assert_eq!(with_text(&events, select).len(), 40);
    assert_eq!(with_text(&events, "BEGIN").len(), 40);
    assert_eq!(with_text(&events, "END").len(), 40);
    let inserts = events
        .iter()
        .filter(|e| e.message.starts_with("INSERT INTO pgbench_history"))
        .count();
    assert_eq!(inserts, 40);

    let dump = h.dump();
    assert_no_aid_literal(&dump);
}

#[test]
fn pg_dump_and_pg_restore_round_trip_through_the_proxy() {
    let pg = pg();
    pg.psql(
        "CREATE TABLE customers (id int PRIMARY KEY, name text NOT NULL, email text UNIQUE);
         INSERT INTO customers
           SELECT g, 'name-' || g, 'dumpsecret' || g || '@example.com'
           FROM generate_series(1, 500) g;
         CREATE TABLE orders (
           id bigserial PRIMARY KEY,
           customer int NOT NULL REFERENCES customers,
           amount numeric(12, 2),
           note text);
         INSERT INTO orders (customer, amount, note)
           SELECT 1 + g % 500, g * 1.25, 'note-dumpsecret-' || g
           FROM generate_series(1, 2000) g;
         CREATE INDEX orders_customer ON orders (customer);
         CREATE VIEW big_orders AS SELECT * FROM orders WHERE amount > 1000;
         CREATE FUNCTION default_note() RETURNS trigger LANGUAGE plpgsql AS $$
           BEGIN
             NEW.note := coalesce(NEW.note, 'dumpsecret-default');
             RETURN NEW;
           END;
         $$;
         CREATE TRIGGER orders_note BEFORE INSERT ON orders
           FOR EACH ROW EXECUTE FUNCTION default_note();
         COMMENT ON TABLE orders IS 'dumpsecret''s comment';",
    )
    .expect("schema and data");
    let mut h = Harness::plain(&pg);
    let dir = tempfile::tempdir().expect("tempdir");
    let archive = dir.path().join("postgres.dump");

    run(client(&h, &pg, "pg_dump")
        .args(["-Fc", "-f"])
        .arg(&archive)
        .arg("postgres"));
    assert!(std::fs::metadata(&archive).is_ok_and(|m| m.len() > 1000));
    let dumped = statements_since(&mut h, 0);
    assert!(
        dumped.iter().all(|e| e.kind == catalog::STATEMENT_EXECUTED),
        "{}",
        h.dump()
    );
    let copies: Vec<&Event> = dumped
        .iter()
        .filter(|e| field(e, "protocol") == Some("copy"))
        .collect();
    let copy_of = |table: &str| {
        copies
            .iter()
            .find(|e| e.message.starts_with(&format!("COPY public.{table} ")))
            .unwrap_or_else(|| panic!("no COPY of {table}:\n{copies:#?}"))
    };
    for (table, rows) in [("customers", 500), ("orders", 2000)] {
        let e = copy_of(table);
        assert!(e.message.ends_with("TO stdout"), "{}", e.message);
        assert_eq!(int(e, "rows"), Some(rows), "{e:?}");
        assert_eq!(field(e, "command"), Some("COPY"));
    }

    pg.psql("CREATE DATABASE restored")
        .expect("create database");
    let from = mark(&mut h);
    run(client(&h, &pg, "pg_restore")
        .args(["-d", "restored", "--exit-on-error"])
        .arg(&archive));
    let restored = statements_since(&mut h, from);
    assert!(
        restored
            .iter()
            .all(|e| e.kind == catalog::STATEMENT_EXECUTED),
        "{}",
        h.dump()
    );
    assert!(
        restored
            .iter()
            .all(|e| e.session.as_ref().and_then(|s| s.database.as_deref()) == Some("restored"))
    );
    let function = restored
        .iter()
        .find(|e| {
            e.message
                .starts_with("CREATE FUNCTION public.default_note()")
        })
        .unwrap_or_else(|| panic!("no CREATE FUNCTION:\n{restored:#?}"));
    assert_eq!(field(function, "command"), Some("CREATE FUNCTION"));
    for (table, rows) in [("customers", 500), ("orders", 2000)] {
        let e = restored
            .iter()
            .find(|e| field(e, "protocol") == Some("copy") && e.message.contains(table))
            .unwrap_or_else(|| panic!("no COPY into {table}:\n{restored:#?}"));
        assert!(e.message.ends_with("FROM stdin"), "{}", e.message);
        assert_eq!(int(e, "rows"), Some(rows), "{e:?}");
    }

    let check = "SELECT (SELECT count(*) FROM customers), (SELECT count(*) FROM orders), \
                 (SELECT count(*) FROM big_orders), \
                 (SELECT md5(string_agg(c::text, ',' ORDER BY id)) FROM customers c), \
                 (SELECT md5(string_agg(o::text, ',' ORDER BY id)) FROM orders o), \
                 nextval('orders_id_seq'), \
                 (SELECT count(*) FROM pg_trigger WHERE tgname = 'orders_note')";
    let original = pg.psql(check).expect("original counts");
    let mut direct = pg.psql_command();
    direct
        .env("PGPASSWORD", SUPERUSER_PASSWORD)
        .env("PGDATABASE", "restored")
        .args(["-c", check]);
    let copy = String::from_utf8_lossy(&run(&mut direct).stdout).into_owned();
    assert!(original.starts_with("500|2000|1200|"), "{original}");
    assert!(original.trim_end().ends_with("|2001|1"), "{original}");
    assert_eq!(copy, original);

    assert_absent(&h.dump(), &["dumpsecret"]);
}

/// tokio-postgres through the proxy, its connection driven on the runtime.
async fn connect(h: &Harness) -> Client {
    let (client, connection) = tokio_postgres::connect(&conninfo(h), NoTls)
        .await
        .expect("tokio-postgres connects through the proxy");
    tokio::spawn(async move {
        let _ = connection.await;
    });
    client
}

fn conninfo(h: &Harness) -> String {
    format!(
        "host=127.0.0.1 port={} user={SUPERUSER} password={SUPERUSER_PASSWORD} dbname=postgres",
        h.addr.port()
    )
}

/// Runs `f` on the harness's runtime with a deadline.
fn block_on<F: Future>(h: &Harness, f: F) -> F::Output {
    h.rt.block_on(async {
        tokio::time::timeout(PATIENCE, f)
            .await
            .expect("the client finished in time")
    })
}

#[test]
fn tokio_postgres_reuses_a_prepared_statement_with_binary_parameters() {
    let pg = pg();
    let mut h = Harness::plain(&pg);
    let sql = "INSERT INTO vault (id, token, amount) VALUES ($1, $2, $3)";
    let values: [(i32, &str, i64); 3] = [
        (1_234_567_891, "tok-secret-alpha", 987_654_321_987),
        (1_234_567_892, "tok-secret-bravo", 987_654_321_988),
        (1_234_567_893, "tok-secret-charlie", 987_654_321_989),
    ];
    block_on(&h, async {
        let client = connect(&h).await;
        client
            .batch_execute("CREATE TABLE vault (id int4 PRIMARY KEY, token text, amount int8)")
            .await
            .expect("create");
        let insert = client.prepare(sql).await.expect("prepare");
        for (id, token, amount) in &values {
            let n = client
                .execute(&insert, &[id, token, amount])
                .await
                .expect("insert");
            assert_eq!(n, 1);
        }
        let rows = client
            .query("SELECT id, token, amount FROM vault ORDER BY id", &[])
            .await
            .expect("select");
        let got: Vec<(i32, String, i64)> = rows
            .iter()
            .map(|r| (r.get(0), r.get(1), r.get(2)))
            .collect();
        let want: Vec<(i32, String, i64)> = values
            .iter()
            .map(|(i, t, a)| (*i, (*t).to_owned(), *a))
            .collect();
        assert_eq!(got, want);
    });
    let events = statements_since(&mut h, 0);
    let inserts = with_text(&events, sql);
    assert_eq!(inserts.len(), 3, "{}", h.dump());
    let name = field(inserts[0], "statement").expect("a named statement");
    for e in &inserts {
        assert_eq!(e.kind, catalog::STATEMENT_EXECUTED);
        assert_eq!(field(e, "protocol"), Some("extended"));
        assert_eq!(field(e, "command"), Some("INSERT"));
        assert_eq!(field(e, "class"), Some("write"));
        assert_eq!(int(e, "rows"), Some(1));
        assert_eq!(field(e, "statement"), Some(name));
    }
    let select = with_text(&events, "SELECT id, token, amount FROM vault ORDER BY id");
    assert_eq!(select.len(), 1);
    assert_eq!(int(select[0], "rows"), Some(3));
    assert_absent(
        &h.dump(),
        &["tok-secret", "1234567891", "987654321987", "987654321989"],
    );
}

#[test]
fn tokio_postgres_pipelined_queries_are_attributed_to_their_statements() {
    let pg = pg();
    let mut h = Harness::plain(&pg);
    let texts = [
        "SELECT x FROM pipe_a ORDER BY x",
        "SELECT x / (x - x) FROM pipe_b",
        "SELECT x FROM pipe_b ORDER BY x",
        "SELECT x FROM pipe_c ORDER BY x",
    ];
    let (client, prepared) = block_on(&h, async {
        let client = connect(&h).await;
        client
            .batch_execute(
                "CREATE TABLE pipe_a (x int); INSERT INTO pipe_a SELECT generate_series(1, 1);
                 CREATE TABLE pipe_b (x int); INSERT INTO pipe_b SELECT generate_series(1, 2);
                 CREATE TABLE pipe_c (x int); INSERT INTO pipe_c SELECT generate_series(1, 3);",
            )
            .await
            .expect("setup");
        // The four Parse/Describe/Sync batches go out before any answer.
        let (a, z, b, c) = tokio::join!(
            client.prepare(texts[0]),
            client.prepare(texts[1]),
            client.prepare(texts[2]),
            client.prepare(texts[3]),
        );
        let prepared = [
            a.expect("prepare a"),
            z.expect("prepare z"),
            b.expect("prepare b"),
            c.expect("prepare c"),
        ];
        (client, prepared)
    });
    let from = mark(&mut h);
    block_on(&h, async {
        let [a, z, b, c] = &prepared;
        // So do the four Bind/Execute/Sync batches; the failing one in the
        // middle spoils only its own batch.
        let (ra, rz, rb, rc) = tokio::join!(
            client.query(a, &[]),
            client.query(z, &[]),
            client.query(b, &[]),
            client.query(c, &[]),
        );
        let ints = |rows: Vec<tokio_postgres::Row>| -> Vec<i32> {
            rows.iter().map(|r| r.get(0)).collect()
        };
        assert_eq!(ints(ra.expect("a")), [1]);
        let err = rz.expect_err("division by zero");
        assert_eq!(err.code(), Some(&SqlState::DIVISION_BY_ZERO));
        assert_eq!(ints(rb.expect("b")), [1, 2]);
        assert_eq!(ints(rc.expect("c")), [1, 2, 3]);

        // Simple queries pipelined the same way.
        let (sa, sb) = tokio::join!(
            client.simple_query("SELECT x FROM pipe_a; SELECT x FROM pipe_c"),
            client.simple_query("SELECT x FROM pipe_b"),
        );
        let count = |msgs: Vec<SimpleQueryMessage>| {
            msgs.iter()
                .filter(|m| matches!(m, SimpleQueryMessage::Row(_)))
                .count()
        };
        assert_eq!(count(sa.expect("simple a")), 4);
        assert_eq!(count(sb.expect("simple b")), 2);
    });
    let events = statements_since(&mut h, from);
    let summary: Vec<(&str, &str, Option<i64>, Option<&str>)> = events
        .iter()
        .map(|e| {
            (
                &*e.message,
                field(e, "protocol").unwrap_or(""),
                int(e, "rows"),
                field(e, "sqlstate"),
            )
        })
        .collect();
    assert_eq!(
        summary,
        [
            (texts[0], "extended", Some(1), None),
            (texts[1], "extended", None, Some("22012")),
            (texts[2], "extended", Some(2), None),
            (texts[3], "extended", Some(3), None),
            ("SELECT x FROM pipe_a", "simple", Some(1), None),
            ("SELECT x FROM pipe_c", "simple", Some(3), None),
            ("SELECT x FROM pipe_b", "simple", Some(2), None),
        ],
        "{}",
        h.dump()
    );
    assert_eq!(events[1].kind, catalog::STATEMENT_FAILED);
    assert!(
        events
            .iter()
            .take(4)
            .all(|e| field(e, "statement").is_some())
    );
}

#[test]
fn tokio_postgres_unique_violation_in_a_transaction_is_reported_without_the_value() {
    let pg = pg();
    let mut h = Harness::plain(&pg);
    let secret = "dup-secret@example.org";
    let insert = "INSERT INTO members (email) VALUES ($1)";
    block_on(&h, async {
        let client = connect(&h).await;
        client
            .batch_execute("CREATE TABLE members (email text PRIMARY KEY)")
            .await
            .expect("create");
        client.execute(insert, &[&secret]).await.expect("first");
        client.batch_execute("BEGIN").await.expect("BEGIN");
        client
            .execute(insert, &[&"other@example.org"])
            .await
            .expect("other");
        let err = client
            .execute(insert, &[&secret])
            .await
            .expect_err("a duplicate key");
        assert_eq!(err.code(), Some(&SqlState::UNIQUE_VIOLATION));
        let aborted = client
            .execute("SELECT 1", &[])
            .await
            .expect_err("the transaction is aborted");
        assert_eq!(aborted.code(), Some(&SqlState::IN_FAILED_SQL_TRANSACTION));
        client.batch_execute("ROLLBACK").await.expect("ROLLBACK");
        let n: i64 = client
            .query_one("SELECT count(*) FROM members", &[])
            .await
            .expect("count")
            .get(0);
        assert_eq!(n, 1, "the transaction was rolled back");
    });
    let events = statements_since(&mut h, 0);
    let failed: Vec<&Event> = events
        .iter()
        .filter(|e| e.kind == catalog::STATEMENT_FAILED)
        .collect();
    assert_eq!(failed.len(), 2, "{}", h.dump());
    let f = failed[0];
    assert_eq!(f.message, insert);
    assert_eq!(field(f, "sqlstate"), Some("23505"));
    assert_eq!(field(f, "protocol"), Some("extended"));
    let detail = field(f, "detail").expect("a detail");
    assert!(detail.starts_with("Key (email)=("), "{detail}");
    assert!(!detail.contains("dup-secret"), "{detail}");
    let error = field(f, "error").expect("an error message");
    assert!(error.contains("members_pkey"), "{error}");
    assert_eq!(field(failed[1], "sqlstate"), Some("25P02"));
    let order: Vec<(&str, bool)> = events
        .iter()
        .map(|e| (&*e.message, e.kind == catalog::STATEMENT_EXECUTED))
        .collect();
    assert_eq!(
        order,
        [
            ("CREATE TABLE members (email text PRIMARY KEY)", true),
            (insert, true),
            ("BEGIN", true),
            (insert, true),
            (insert, false),
            ("SELECT $1", false),
            ("ROLLBACK", true),
            ("SELECT count(*) FROM members", true),
        ],
        "{}",
        h.dump()
    );
    assert_absent(&h.dump(), &["dup-secret", "example.org"]);
}

#[test]
fn tokio_postgres_cancel_reaches_postgresql_through_the_proxy() {
    let pg = pg();
    let mut h = Harness::plain(&pg);
    let elapsed = block_on(&h, async {
        let client = connect(&h).await;
        let watcher = connect(&h).await;
        let pid: i32 = client
            .query_one("SELECT pg_backend_pid()", &[])
            .await
            .expect("pid")
            .get(0);
        let token = client.cancel_token();
        let started = Instant::now();
        let cancel = async {
            // Cancel once the sleep runs, so the request cannot come first.
            loop {
                let waiting: Option<String> = watcher
                    .query_one(
                        "SELECT wait_event FROM pg_stat_activity WHERE pid = $1",
                        &[&pid],
                    )
                    .await
                    .expect("pg_stat_activity")
                    .get(0);
                if waiting.as_deref() == Some("PgSleep") {
                    break;
                }
                tokio::time::sleep(Duration::from_millis(50)).await;
            }
            token.cancel_query(NoTls).await.expect("cancel sent");
        };
        let (slept, ()) = tokio::join!(client.simple_query("SELECT pg_sleep(30)"), cancel);
        let elapsed = started.elapsed();
        let err = slept.expect_err("the sleep is cancelled");
        assert_eq!(err.code(), Some(&SqlState::QUERY_CANCELED));
        let after = client.simple_query("SELECT 1").await.expect("usable after");
        assert_eq!(after.len(), 3, "{after:?}");
        elapsed
    });
    assert!(elapsed < Duration::from_secs(10), "{elapsed:?}");
    let cancel = h.wait_kind(catalog::CANCEL_REQUESTED);
    assert_eq!(flag(&cancel, "forwarded"), Some(true), "{cancel:?}");
    assert_eq!(cancel.outcome, vigil_event::Outcome::Success);
    let failed = h.wait_for("the cancelled sleep", |e| {
        e.kind == catalog::STATEMENT_FAILED
    });
    assert_eq!(field(&failed, "sqlstate"), Some("57014"));
    assert_eq!(failed.message, "SELECT pg_sleep($1)");
    assert_eq!(field(&failed, "protocol"), Some("simple"));
    let session = |e: &Event| e.session.as_ref().map(|s| s.id);
    assert!(session(&cancel).is_some());
    assert_eq!(session(&cancel), session(&failed));
    assert_eq!(h.of(catalog::CANCEL_REQUESTED).len(), 1);
}

#[test]
fn tokio_postgres_listen_notify_passes_notifications_through() {
    let pg = pg();
    let mut h = Harness::plain(&pg);
    let payloads = block_on(&h, async {
        let (listener, mut connection) = tokio_postgres::connect(&conninfo(&h), NoTls)
            .await
            .expect("connect");
        let (tx, mut rx) = tokio::sync::mpsc::unbounded_channel();
        tokio::spawn(async move {
            while let Some(Ok(msg)) = std::future::poll_fn(|cx| connection.poll_message(cx)).await {
                if let AsyncMessage::Notification(n) = msg {
                    let _ = tx.send((n.channel().to_owned(), n.payload().to_owned()));
                }
            }
        });
        listener
            .batch_execute("LISTEN vigil_events")
            .await
            .expect("LISTEN");
        let notifier = connect(&h).await;
        notifier
            .batch_execute("NOTIFY vigil_events, 'payload-secret-simple'")
            .await
            .expect("NOTIFY");
        notifier
            .execute(
                "SELECT pg_notify('vigil_events', $1)",
                &[&"payload-secret-param"],
            )
            .await
            .expect("pg_notify");
        let mut got = Vec::new();
        while got.len() < 2 {
            let (channel, payload) = tokio::time::timeout(Duration::from_secs(10), rx.recv())
                .await
                .expect("a notification in time")
                .expect("the connection is open");
            assert_eq!(channel, "vigil_events");
            got.push(payload);
        }
        // The listener goes on after asynchronous notifications.
        let rows = listener
            .simple_query("UNLISTEN vigil_events; SELECT 42")
            .await
            .expect("after notifications");
        assert!(rows.iter().any(|m| matches!(m, SimpleQueryMessage::Row(_))));
        got
    });
    assert_eq!(payloads, ["payload-secret-simple", "payload-secret-param"]);
    let events = statements_since(&mut h, 0);
    let texts: Vec<&str> = events.iter().map(|e| &*e.message).collect();
    assert!(texts.contains(&"LISTEN vigil_events"), "{texts:?}");
    assert!(texts.contains(&"NOTIFY vigil_events, $1"), "{texts:?}");
    // The parameter keeps its number; the literal gets the next one.
    assert!(texts.contains(&"SELECT pg_notify($2, $1)"), "{texts:?}");
    assert!(texts.contains(&"UNLISTEN vigil_events"), "{texts:?}");
    assert!(
        events.iter().all(|e| e.kind == catalog::STATEMENT_EXECUTED),
        "{}",
        h.dump()
    );
    assert_absent(&h.dump(), &["payload-secret"]);
}

#[test]
fn tokio_postgres_portal_fetches_in_chunks() {
    let pg = pg();
    let mut h = Harness::plain(&pg);
    let sql = "SELECT x FROM chunks ORDER BY x";
    block_on(&h, async {
        let mut client = connect(&h).await;
        client
            .batch_execute(
                "CREATE TABLE chunks (x int); INSERT INTO chunks SELECT generate_series(1, 5)",
            )
            .await
            .expect("setup");
        let tx = client.transaction().await.expect("begin");
        let stmt = tx.prepare(sql).await.expect("prepare");
        let portal = tx.bind(&stmt, &[]).await.expect("bind");
        let mut got = Vec::new();
        for want in [2, 2, 1, 0] {
            let rows = tx.query_portal(&portal, 2).await.expect("execute");
            assert_eq!(rows.len(), want);
            got.extend(rows.iter().map(|r| r.get::<_, i32>(0)));
        }
        assert_eq!(got, [1, 2, 3, 4, 5]);
        tx.commit().await.expect("commit");
    });
    let events = statements_since(&mut h, 0);
    let chunks: Vec<(Option<&str>, Option<i64>)> = with_text(&events, sql)
        .iter()
        .map(|e| (field(e, "protocol"), int(e, "rows")))
        .collect();
    let ext = Some("extended");
    assert_eq!(
        chunks,
        [
            (ext, Some(2)),
            (ext, Some(2)),
            (ext, Some(1)),
            (ext, Some(0))
        ],
        "{}",
        h.dump()
    );
    assert_eq!(events.last().map(|e| &*e.message), Some("COMMIT"));
    assert!(events.iter().all(|e| e.kind == catalog::STATEMENT_EXECUTED));
}

#[test]
fn tokio_postgres_large_rows_arrive_intact() {
    let pg = pg();
    let mut h = Harness::plain(&pg);
    let sql = "SELECT repeat('x', 300000) FROM generate_series(1, 40)";
    block_on(&h, async {
        let client = connect(&h).await;
        let rows = client.query(sql, &[]).await.expect("extended");
        assert_eq!(rows.len(), 40);
        for row in &rows {
            let s: &str = row.get(0);
            assert_eq!(s.len(), 300_000);
            assert!(s.bytes().all(|b| b == b'x'));
        }
        let msgs = client.simple_query(sql).await.expect("simple");
        let mut n = 0;
        for m in &msgs {
            if let SimpleQueryMessage::Row(r) = m {
                let s = r.get(0).expect("a value");
                assert_eq!(s.len(), 300_000);
                assert!(s.bytes().all(|b| b == b'x'));
                n += 1;
            }
        }
        assert_eq!(n, 40);
    });
    let events = statements_since(&mut h, 0);
    let redacted = "SELECT repeat($1, $2) FROM generate_series($3, $4)";
    let summary: Vec<(&str, Option<&str>, Option<i64>)> = events
        .iter()
        .map(|e| (&*e.message, field(e, "protocol"), int(e, "rows")))
        .collect();
    assert_eq!(
        summary,
        [
            (redacted, Some("extended"), Some(40)),
            (redacted, Some("simple"), Some(40)),
        ],
        "{}",
        h.dump()
    );
    let done = h.wait_kind(catalog::CLIENT_DISCONNECTED);
    assert!(int(&done, "bytes_from_server").unwrap_or(0) > 2 * 40 * 300_000);
}

/// The workspace root.
fn workspace() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../..")
}

/// A Python with psycopg: `$VIGIL_TEST_PYTHON`, else the workspace's
/// `target/pyenv`, created (and psycopg installed) when missing.
fn python() -> PathBuf {
    if let Some(python) = std::env::var_os("VIGIL_TEST_PYTHON") {
        return PathBuf::from(python);
    }
    let venv = workspace().join("target/pyenv");
    let python = venv.join("bin/python");
    let has_psycopg = |python: &Path| {
        Command::new(python)
            .args(["-c", "import psycopg"])
            .output()
            .is_ok_and(|o| o.status.success())
    };
    if !python.is_file() {
        run(Command::new("python3")
            .args([OsStr::new("-m"), OsStr::new("venv")])
            .arg(&venv));
    }
    if !has_psycopg(&python) {
        run(Command::new(venv.join("bin/pip")).args([
            "install",
            "-q",
            "--disable-pip-version-check",
            "psycopg[binary]",
        ]));
    }
    python
}

/// Exercises psycopg 3 through the proxy; prints `ok NAME VALUE` per check.
const PSYCOPG_SCRIPT: &str = r#"
import sys
import threading
import time

import psycopg
from psycopg import errors

dsn = sys.argv[1]


def ok(name, value):
    print(f"ok {name} {value}", flush=True)


with psycopg.connect(dsn, autocommit=True) as conn:
    conn.execute("CREATE TABLE py_items (id int PRIMARY KEY, label text)")
    conn.execute("CREATE TABLE py_copy (id int, label text)")

    cur = conn.cursor()
    for i in range(1, 4):
        cur.execute(
            "INSERT INTO py_items (id, label) VALUES (%s, %s)",
            (i, f"py-secret-{i}"),
            prepare=True,
        )
    (n,) = conn.execute("SELECT count(*) FROM py_items").fetchone()
    assert n == 3, n
    ok("prepared", n)

    with cur.copy("COPY py_copy (id, label) FROM STDIN") as copy:
        for i in range(1000):
            copy.write_row((i, f"copy-secret-{i}"))
    (n,) = conn.execute("SELECT count(*) FROM py_copy").fetchone()
    assert n == 1000, n
    ok("copy-in", n)

    with cur.copy("COPY py_copy TO STDOUT") as copy:
        rows = list(copy.rows())
    assert len(rows) == 1000, len(rows)
    assert sorted(int(r[0]) for r in rows) == list(range(1000))
    assert all(r[1] == f"copy-secret-{r[0]}" for r in rows)
    ok("copy-out", len(rows))

    cur.execute("SELECT repeat('y', 300000) FROM generate_series(1, 40)")
    big = cur.fetchall()
    assert len(big) == 40, len(big)
    assert all(r[0] == "y" * 300000 for r in big)
    ok("large", len(big))

with psycopg.connect(dsn) as tconn:
    tconn.execute("INSERT INTO py_items (id, label) VALUES (%s, %s)", (100, "py-secret-tx"))
    try:
        tconn.execute("INSERT INTO py_items (id, label) VALUES (%s, %s)", (1, "py-secret-dup"))
        raise AssertionError("no unique violation")
    except errors.UniqueViolation as e:
        state = e.sqlstate
    tconn.rollback()
    (n,) = tconn.execute("SELECT count(*) FROM py_items WHERE id = 100").fetchone()
    assert n == 0, n
    tconn.rollback()
    ok("error", state)

with psycopg.connect(dsn, autocommit=True) as lconn, psycopg.connect(
    dsn, autocommit=True
) as nconn:
    lconn.execute("LISTEN py_chan")
    nconn.execute("NOTIFY py_chan, 'py-payload-secret'")
    got = [n for n in lconn.notifies(timeout=10, stop_after=1)]
    assert len(got) == 1, got
    assert got[0].channel == "py_chan" and got[0].payload == "py-payload-secret", got
    ok("notify", len(got))

with psycopg.connect(dsn, autocommit=True) as cconn, psycopg.connect(
    dsn, autocommit=True
) as watcher:
    pid = cconn.info.backend_pid

    def cancel_when_sleeping():
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:
            row = watcher.execute(
                "SELECT wait_event FROM pg_stat_activity WHERE pid = %s", (pid,)
            ).fetchone()
            if row and row[0] == "PgSleep":
                break
            time.sleep(0.05)
        cconn.cancel()

    t = threading.Thread(target=cancel_when_sleeping)
    start = time.monotonic()
    t.start()
    try:
        cconn.execute("SELECT pg_sleep(30)")
        raise AssertionError("the sleep was not cancelled")
    except errors.QueryCanceled as e:
        state = e.sqlstate
    t.join()
    elapsed = time.monotonic() - start
    assert elapsed < 10, elapsed
    (one,) = cconn.execute("SELECT 1").fetchone()
    assert one == 1
    ok("cancel", state)

with psycopg.connect(dsn, autocommit=True) as pconn:
    with pconn.pipeline():
        a = pconn.execute("SELECT id FROM py_items WHERE id = %s", (2,))
        b = pconn.execute("SELECT count(*) FROM py_copy WHERE id < %s", (10,))
    assert a.fetchall() == [(2,)]
    assert b.fetchall() == [(10,)]
    try:
        with pconn.pipeline():
            pconn.execute("INSERT INTO py_items (id, label) VALUES (%s, %s)", (200, "py-secret-p"))
            pconn.execute("INSERT INTO py_items (id, label) VALUES (%s, %s)", (3, "py-secret-p"))
            pconn.execute("DELETE FROM py_items WHERE id = %s", (1,))
        raise AssertionError("no unique violation in the pipeline")
    except errors.UniqueViolation as e:
        state = e.sqlstate
    ids = [r[0] for r in pconn.execute("SELECT id FROM py_items ORDER BY id")]
    assert ids == [1, 2, 3], ids
    ok("pipeline", state)
"#;

#[test]
fn psycopg_runs_prepared_copy_errors_large_results_notify_and_cancel() {
    let python = python();
    let pg = pg();
    let mut h = Harness::plain(&pg);
    let dir = tempfile::tempdir().expect("tempdir");
    let script = dir.path().join("psycopg_checks.py");
    std::fs::write(&script, PSYCOPG_SCRIPT).expect("write the script");
    let mut cmd = Command::new(&python);
    for (key, _) in std::env::vars_os() {
        if key.to_string_lossy().starts_with("PG") {
            cmd.env_remove(key);
        }
    }
    let out = run(cmd.arg(&script).arg(format!(
        "host=127.0.0.1 port={} user={SUPERUSER} password={SUPERUSER_PASSWORD} \
         dbname=postgres sslmode=disable connect_timeout=10 application_name=psycopg-test",
        h.addr.port()
    )));
    let stdout = String::from_utf8_lossy(&out.stdout);
    let lines: Vec<&str> = stdout.lines().collect();
    assert_eq!(
        lines,
        [
            "ok prepared 3",
            "ok copy-in 1000",
            "ok copy-out 1000",
            "ok large 40",
            "ok error 23505",
            "ok notify 1",
            "ok cancel 57014",
            "ok pipeline 23505",
        ],
        "{}",
        text(&out)
    );

    let cancel = h.wait_kind(catalog::CANCEL_REQUESTED);
    assert_eq!(flag(&cancel, "forwarded"), Some(true), "{cancel:?}");
    let events = statements_since(&mut h, 0);
    let dump = h.dump();

    // Server-side prepared: one name for the three executions.
    let inserts: Vec<&Event> =
        with_text(&events, "INSERT INTO py_items (id, label) VALUES ($1, $2)")
            .into_iter()
            .filter(|e| e.kind == catalog::STATEMENT_EXECUTED)
            .collect();
    assert!(inserts.len() >= 3, "{dump}");
    let prepared: Vec<&&Event> = inserts
        .iter()
        .filter(|e| field(e, "statement").is_some())
        .collect();
    assert_eq!(prepared.len(), 3, "{dump}");
    let name = field(prepared[0], "statement");
    assert!(name.is_some_and(|n| n.starts_with("_pg3_")), "{name:?}");
    for e in &prepared {
        assert_eq!(field(e, "statement"), name);
        assert_eq!(field(e, "protocol"), Some("extended"));
        assert_eq!(int(e, "rows"), Some(1));
    }

    let copy = |sql: &str| {
        let found = with_text(&events, sql);
        assert_eq!(found.len(), 1, "{sql}: {dump}");
        found[0].clone()
    };
    let copy_in = copy("COPY py_copy (id, label) FROM STDIN");
    let copy_out = copy("COPY py_copy TO STDOUT");
    for e in [&copy_in, &copy_out] {
        assert_eq!(e.kind, catalog::STATEMENT_EXECUTED);
        assert_eq!(field(e, "protocol"), Some("copy"));
        assert_eq!(int(e, "rows"), Some(1000));
    }

    let large = copy("SELECT repeat($1, $2) FROM generate_series($3, $4)");
    assert_eq!(int(&large, "rows"), Some(40));

    let failed: Vec<&Event> = events
        .iter()
        .filter(|e| e.kind == catalog::STATEMENT_FAILED)
        .collect();
    let states: Vec<Option<&str>> = failed.iter().map(|e| field(e, "sqlstate")).collect();
    assert_eq!(
        states,
        [Some("23505"), Some("57014"), Some("23505")],
        "{dump}"
    );
    assert_eq!(
        failed[0].message,
        "INSERT INTO py_items (id, label) VALUES ($1, $2)"
    );
    assert_eq!(failed[1].message, "SELECT pg_sleep($1)");
    assert_eq!(
        failed[1].session.as_ref().map(|s| s.id),
        cancel.session.as_ref().map(|s| s.id)
    );
    let tx_session = failed[0].session.as_ref().map(|s| s.id);
    let tx: Vec<&str> = events
        .iter()
        .filter(|e| e.session.as_ref().map(|s| s.id) == tx_session)
        .map(|e| &*e.message)
        .collect();
    assert_eq!(
        tx.first().copied(),
        Some("BEGIN"),
        "the transaction's statements: {tx:?}"
    );
    assert!(tx.contains(&"ROLLBACK"), "{tx:?}");

    // The pipeline: two reads, then an insert, the failing insert, and
    // the DELETE the server skipped, which has no event.
    let pipeline_session = failed[2].session.as_ref().map(|s| s.id);
    let pipeline: Vec<(&str, bool)> = events
        .iter()
        .filter(|e| e.session.as_ref().map(|s| s.id) == pipeline_session)
        .map(|e| (&*e.message, e.kind == catalog::STATEMENT_EXECUTED))
        .collect();
    let insert = "INSERT INTO py_items (id, label) VALUES ($1, $2)";
    assert_eq!(
        pipeline,
        [
            ("SELECT id FROM py_items WHERE id = $1", true),
            ("SELECT count(*) FROM py_copy WHERE id < $1", true),
            (insert, true),
            (insert, false),
            ("SELECT id FROM py_items ORDER BY id", true),
        ],
        "{dump}"
    );

    let texts: Vec<&str> = events.iter().map(|e| &*e.message).collect();
    assert!(texts.contains(&"LISTEN py_chan"), "{texts:?}");
    assert!(texts.contains(&"NOTIFY py_chan, $1"), "{texts:?}");
    assert!(h.of(catalog::CLIENT_CONNECTED).iter().any(|e| {
        e.session
            .as_ref()
            .is_some_and(|s| s.application.as_deref() == Some("psycopg-test"))
    }));
    assert_absent(&dump, &["py-secret", "copy-secret", "py-payload-secret"]);
}

/// psql through the proxy to a server with `auth`: the right password
/// logs in, a wrong one is refused, and neither reaches the events.
fn password_login(auth: Auth, method: &str) {
    let pg = PgServer::builder()
        .auth(auth)
        .start()
        .expect("PostgreSQL starts");
    let right = "right-horse-battery-7Q";
    let wrong = "wrong-staple-9Z";
    pg.create_user("alice", right).expect("create alice");
    let mut h = Harness::plain(&pg);

    let out = run(h
        .psql(&pg)
        .env("PGUSER", "alice")
        .env("PGPASSWORD", right)
        .args(["-c", "SELECT current_user"]));
    assert_eq!(String::from_utf8_lossy(&out.stdout).trim(), "alice");
    let ok = h.wait_kind(catalog::AUTH_SUCCEEDED);
    assert_eq!(field(&ok, "method"), Some(method), "{ok:?}");
    assert_eq!(
        ok.session.as_ref().and_then(|s| s.db_user.as_deref()),
        Some("alice")
    );
    let done = h.wait_kind(catalog::CLIENT_DISCONNECTED);
    assert_eq!(int(&done, "statements"), Some(1));

    let out = h
        .psql(&pg)
        .env("PGUSER", "alice")
        .env("PGPASSWORD", wrong)
        .args(["-c", "SELECT current_user"])
        .output()
        .expect("psql runs");
    assert!(!out.status.success(), "{}", text(&out));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains("password authentication failed for user \"alice\""),
        "{stderr}"
    );
    let failed = h.wait_kind(catalog::AUTH_FAILED);
    assert_eq!(field(&failed, "sqlstate"), Some("28P01"), "{failed:?}");
    assert_eq!(field(&failed, "method"), Some(method));
    assert_eq!(failed.outcome, vigil_event::Outcome::Failure);
    assert_eq!(h.of(catalog::AUTH_SUCCEEDED).len(), 1);
    assert!(h.of(catalog::STATEMENT_EXECUTED).len() == 1);
    h.wait_for("the refused session's end", |e| {
        e.kind == catalog::CLIENT_DISCONNECTED
            && e.session.as_ref().map(|s| s.id) == failed.session.as_ref().map(|s| s.id)
    });
    assert_absent(&h.dump(), &[wrong, right]);
}

#[test]
fn scram_sha_256_login_through_the_proxy() {
    password_login(Auth::ScramSha256, "scram-sha-256");
}

#[test]
fn md5_login_through_the_proxy() {
    password_login(Auth::Md5, "md5");
}

#[test]
fn cleartext_password_login_through_the_proxy() {
    password_login(Auth::Password, "password");
}
