//! Poison records through the proxy, against a real PostgreSQL: pg_dump,
//! `SELECT *`, COPY (also rows streamed in pieces), pagination, the binary
//! format, a value inside a larger text, statements that search for a
//! value, ordinary traffic that must never fire, and the reactions (block,
//! script, shutdown).

#![allow(clippy::unwrap_used)]

mod common;

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::os::unix::fs::PermissionsExt;
use std::process::Command;
use std::sync::Arc;
use std::time::{Duration, Instant};

use common::{Harness, field, int, text};
use vigil_detect::poison::{Entry, PoisonKey, PoisonKind, PoisonSet, Reaction, Scanner};
use vigil_event::{Event, catalog};
use vigil_proxy::ProxyConfig;
use vigil_proxy::config::PoisonConfig;
use vigil_testkit::postgres::{PgServer, SUPERUSER_PASSWORD};

/// The poison values of one test: one of each kind for the poison row, and
/// a second text for the one hidden inside a longer note.
struct Poison {
    set: PoisonSet,
    email: Entry,
    uuid: Entry,
    int: Entry,
    bytea: Entry,
    text: Entry,
    inner: Entry,
    big: Entry,
}

impl Poison {
    fn new() -> Poison {
        let key = PoisonKey::new(1, &[0x5a; 32]);
        let mut set = PoisonSet::new();
        let mut add = |kind| set.add(&key, kind, None).unwrap().clone();
        let email = add(PoisonKind::Email);
        let uuid = add(PoisonKind::Uuid);
        let int = add(PoisonKind::Int);
        let bytea = add(PoisonKind::Bytea);
        let text = add(PoisonKind::Text);
        let inner = add(PoisonKind::Text);
        let big = add(PoisonKind::Text);
        set.verify(&[key]).unwrap();
        Poison {
            set,
            email,
            uuid,
            int,
            bytea,
            text,
            inner,
            big,
        }
    }

    fn scanner(&self) -> Arc<Scanner> {
        Arc::new(Scanner::new(&self.set))
    }

    fn config(&self, pg: &PgServer, reactions: &[Reaction]) -> ProxyConfig {
        let mut cfg =
            ProxyConfig::new(SocketAddr::from(([127, 0, 0, 1], 0)), pg.addr().to_string());
        let mut p = PoisonConfig::new(self.scanner());
        p.reactions = reactions.to_vec();
        cfg.poison = Some(p);
        cfg
    }
}

/// 1,000 ordinary customers (ids 1 to 1000), the poison row (1001), a row
/// whose note holds a poison text inside a sentence (1002), and a table of
/// rows over 64 KiB with a poison text at varying offsets near 64 KiB.
fn setup(pg: &PgServer, p: &Poison) {
    let sql = format!(
        "CREATE TABLE customers (id int PRIMARY KEY, email text, token uuid, account bigint, \
                                 secret bytea, note text);
         INSERT INTO customers
           SELECT i, 'user' || i || '@example.com', gen_random_uuid(),
                  (4611686018427387904 + i * 7919)::bigint, decode(md5(i::text), 'hex'),
                  'customer since ' || (2000 + i % 20)
           FROM generate_series(1, 1000) AS i;
         INSERT INTO customers VALUES (1001, {email}, {uuid}, {int}, {bytea}, {text});
         INSERT INTO customers VALUES (1002, 'carol@example.com', gen_random_uuid(), 17,
                                       '\\x00', 'Call back about ' || {inner} || ' before Friday');
         CREATE TABLE docs (id int PRIMARY KEY, body text);
         INSERT INTO docs
           SELECT i, repeat('x', 65536 - 40 + i * 397) || {big} || repeat('y', 3000)
           FROM generate_series(1, 24) AS i;
         ALTER TABLE docs ALTER COLUMN body SET STORAGE EXTERNAL;",
        email = p.email.sql_literal(),
        uuid = p.uuid.sql_literal(),
        int = p.int.sql_literal(),
        bytea = p.bytea.sql_literal(),
        text = p.text.sql_literal(),
        inner = p.inner.sql_literal(),
        big = p.big.sql_literal(),
    );
    pg.psql(&sql).expect("setup");
}

fn pg() -> PgServer {
    PgServer::start().expect("PostgreSQL starts")
}

/// Runs psql through the proxy; returns its standard output, bytes as is.
fn psql_bytes(h: &Harness, pg: &PgServer, sql: &str) -> Vec<u8> {
    let out = h.psql(pg).args(["-c", sql]).output().unwrap();
    assert!(out.status.success(), "{sql}: {}", text(&out));
    out.stdout
}

/// Every event of `kind` so far, then forgets all events.
fn take(h: &mut Harness, kind: vigil_event::Kind) -> Vec<Event> {
    let found = h.of(kind);
    h.events.clear();
    found
}

fn ids(e: &Event) -> Vec<u32> {
    field(e, "poison_ids")
        .unwrap_or_default()
        .split(',')
        .filter(|s| !s.is_empty())
        .map(|s| s.parse().unwrap())
        .collect()
}

fn contains(haystack: &[u8], needle: &[u8]) -> bool {
    haystack.windows(needle.len()).any(|w| w == needle)
}

#[test]
fn reads_of_poison_rows_are_detected_in_every_form() {
    let pg = pg();
    let p = Poison::new();
    setup(&pg, &p);
    let mut h = Harness::start(p.config(&pg, &[]));

    // SELECT *: one event for the statement, at the poison row, without
    // the value; the row itself reaches the client (no block).
    let out = psql_bytes(&h, &pg, "SELECT * FROM customers ORDER BY id");
    assert!(contains(&out, p.email.value.as_bytes()));
    let hits = take(&mut h, catalog::POISON_ACCESSED);
    assert_eq!(hits.len(), 1, "{hits:?}");
    let e = &hits[0];
    let mut got = ids(e);
    got.sort_unstable();
    assert_eq!(
        got,
        [p.email.id, p.uuid.id, p.int.id, p.bytea.id, p.text.id],
        "every value of the poison row"
    );
    assert_eq!(int(e, "rows_seen"), Some(1001));
    assert_eq!(field(e, "source"), Some("data_row"));
    assert_eq!(e.severity, vigil_event::Severity::Critical);
    let s = e.session.as_ref().expect("session");
    assert_eq!(s.db_user.as_deref(), Some("postgres"));
    assert_eq!(
        e.fingerprint,
        Some(vigil_sql::fingerprint(
            "SELECT * FROM customers ORDER BY id"
        ))
    );
    let mut line = Vec::new();
    vigil_event::Format::Json.write(e, &mut line);
    for v in [&p.email, &p.uuid, &p.int, &p.text] {
        assert!(
            !contains(&line, v.value.as_bytes()),
            "the event holds no value"
        );
    }

    // A value inside a larger text.
    psql_bytes(&h, &pg, "SELECT note FROM customers WHERE id = 1002");
    let hits = take(&mut h, catalog::POISON_ACCESSED);
    assert_eq!(hits.len(), 1);
    assert_eq!(ids(&hits[0]), [p.inner.id]);
    assert_eq!(int(&hits[0], "rows_seen"), Some(1));

    // COPY TO STDOUT, text and binary.
    let out = psql_bytes(&h, &pg, "COPY customers TO STDOUT");
    assert!(contains(&out, &p.bytea.value.as_bytes()[2..]));
    let hits = take(&mut h, catalog::POISON_ACCESSED);
    assert_eq!(hits.len(), 1, "{hits:?}");
    assert_eq!(field(&hits[0], "source"), Some("copy_data"));
    assert!(ids(&hits[0]).contains(&p.bytea.id));
    psql_bytes(
        &h,
        &pg,
        "COPY (SELECT account FROM customers ORDER BY id) TO STDOUT (FORMAT binary)",
    );
    let hits = take(&mut h, catalog::POISON_ACCESSED);
    assert_eq!(hits.len(), 1);
    assert_eq!(ids(&hits[0]), [p.int.id]);

    // Rows over 64 KiB are passed on in pieces; the value straddles reads
    // at various offsets.
    let out = psql_bytes(&h, &pg, "COPY docs TO STDOUT");
    assert!(out.len() > 24 * 65536);
    let hits = take(&mut h, catalog::POISON_ACCESSED);
    assert_eq!(hits.len(), 1);
    assert_eq!(ids(&hits[0]), [p.big.id]);
    for id in 1..=24 {
        psql_bytes(&h, &pg, &format!("SELECT body FROM docs WHERE id = {id}"));
        let hits = take(&mut h, catalog::POISON_ACCESSED);
        assert_eq!(hits.len(), 1, "docs row {id}");
        assert_eq!(field(&hits[0], "source"), Some("data_row"));
    }

    // Pagination: only the page holding the poison row fires.
    for page in 0..11 {
        psql_bytes(
            &h,
            &pg,
            &format!(
                "SELECT * FROM customers ORDER BY id LIMIT 100 OFFSET {}",
                page * 100
            ),
        );
        let hits = take(&mut h, catalog::POISON_ACCESSED);
        if page < 10 {
            assert!(hits.is_empty(), "page {page}: {hits:?}");
        } else {
            assert_eq!(hits.len(), 1, "page {page}");
            assert_eq!(int(&hits[0], "rows_seen"), Some(1));
        }
    }

    // pg_dump.
    let dump = Command::new(pg.bindir().join("pg_dump"))
        .env_clear()
        .env("PGPASSWORD", SUPERUSER_PASSWORD)
        .args(["-h", "127.0.0.1", "-p", &h.addr.port().to_string()])
        .args(["-U", "postgres", "-d", "postgres", "-t", "customers"])
        .output()
        .unwrap();
    assert!(dump.status.success(), "{}", text(&dump));
    assert!(contains(&dump.stdout, p.text.value.as_bytes()));
    let hits = take(&mut h, catalog::POISON_ACCESSED);
    assert_eq!(hits.len(), 1, "{hits:?}");
    assert_eq!(field(&hits[0], "source"), Some("copy_data"));
    assert_eq!(
        hits[0].session.as_ref().unwrap().application.as_deref(),
        Some("pg_dump")
    );

    // The binary format: tokio-postgres asks for binary results.
    let url = format!(
        "host=127.0.0.1 port={} user=postgres password={SUPERUSER_PASSWORD} dbname=postgres",
        h.addr.port()
    );
    h.rt.block_on(async {
        let (client, conn) = tokio_postgres::connect(&url, tokio_postgres::NoTls)
            .await
            .unwrap();
        tokio::spawn(conn);
        for column in ["account", "token", "secret"] {
            let sql = format!("SELECT {column} FROM customers WHERE id = $1");
            let rows = client.query(&sql, &[&1001i32]).await.unwrap();
            assert_eq!(rows.len(), 1);
        }
    });
    let hits = take(&mut h, catalog::POISON_ACCESSED);
    let per_query: Vec<Vec<u32>> = hits.iter().map(ids).collect();
    assert_eq!(
        per_query,
        [[p.int.id], [p.uuid.id], [p.bytea.id]],
        "{hits:?}"
    );
    assert!(hits.iter().all(|e| e.fingerprint.is_some()));

    // A statement that searches for a poison value, simple and extended.
    psql_bytes(
        &h,
        &pg,
        &format!(
            "SELECT id FROM customers WHERE email = {}",
            p.email.sql_literal()
        ),
    );
    let queried = h.of(catalog::POISON_QUERIED);
    assert_eq!(queried.len(), 1);
    assert_eq!(ids(&queried[0]), [p.email.id]);
    assert_eq!(field(&queried[0], "source"), Some("query"));
    assert!(
        take(&mut h, catalog::POISON_ACCESSED).is_empty(),
        "only its id came back"
    );
    let uuid = p.uuid.value.clone();
    h.rt.block_on(async {
        let (client, conn) = tokio_postgres::connect(&url, tokio_postgres::NoTls)
            .await
            .unwrap();
        tokio::spawn(conn);
        let rows = client
            .query("SELECT id FROM customers WHERE token::text = $1", &[&uuid])
            .await
            .unwrap();
        assert_eq!(rows.len(), 1);
    });
    let queried = take(&mut h, catalog::POISON_QUERIED);
    assert_eq!(queried.len(), 1);
    assert_eq!(field(&queried[0], "source"), Some("bind"));
    assert_eq!(ids(&queried[0]), [p.uuid.id]);
}

#[test]
fn ordinary_traffic_never_fires() {
    let pg = pg();
    let p = Poison::new();
    setup(&pg, &p);
    let mut h = Harness::start(p.config(&pg, &[Reaction::Block]));
    let dir = tempfile::tempdir().unwrap();
    let script = dir.path().join("select.sql");
    std::fs::write(
        &script,
        "\\set id random(1, 1000)\nSELECT * FROM customers WHERE id = :id;\n",
    )
    .unwrap();
    for mode in ["simple", "extended", "prepared"] {
        let out = Command::new(pg.bindir().join("pgbench"))
            .env_clear()
            .env("PGPASSWORD", SUPERUSER_PASSWORD)
            .args(["-h", "127.0.0.1", "-p", &h.addr.port().to_string()])
            .args([
                "-U", "postgres", "-n", "-c", "2", "-t", "300", "-M", mode, "-f",
            ])
            .arg(&script)
            .arg("postgres")
            .output()
            .unwrap();
        assert!(out.status.success(), "pgbench -M {mode}: {}", text(&out));
    }
    for sql in [
        "SELECT * FROM customers WHERE id <= 1000 ORDER BY id",
        "COPY (SELECT * FROM customers WHERE id <= 1000) TO STDOUT",
        "SELECT count(*), sum(account) FROM customers",
        "SELECT * FROM customers ORDER BY id LIMIT 100 OFFSET 900",
        "SELECT id, length(body) FROM docs",
    ] {
        psql_bytes(&h, &pg, sql);
    }
    let dump = h.dump();
    for kind in [
        catalog::POISON_ACCESSED,
        catalog::POISON_QUERIED,
        catalog::POISON_BLOCKED,
    ] {
        assert!(h.of(kind).is_empty(), "{kind:?}:\n{dump}");
    }
    assert!(h.of(catalog::STATEMENT_EXECUTED).len() > 1800);
}

/// A client on a raw socket: startup as postgres (trust), one simple query,
/// then every byte the proxy sends until it closes the connection.
fn raw_query(addr: SocketAddr, sql: &str) -> Vec<u8> {
    let mut s = TcpStream::connect(addr).unwrap();
    s.set_read_timeout(Some(Duration::from_secs(20))).unwrap();
    let params = b"user\0postgres\0database\0postgres\0\0";
    let mut startup = ((8 + params.len()) as u32).to_be_bytes().to_vec();
    startup.extend_from_slice(&196_608u32.to_be_bytes());
    startup.extend_from_slice(params);
    s.write_all(&startup).unwrap();
    let mut query = vec![b'Q'];
    query.extend_from_slice(&((4 + sql.len() + 1) as u32).to_be_bytes());
    query.extend_from_slice(sql.as_bytes());
    query.push(0);
    s.write_all(&query).unwrap();
    let mut out = Vec::new();
    let _ = s.read_to_end(&mut out);
    out
}

/// The type bytes of every message in a backend stream.
fn message_tags(stream: &[u8]) -> Vec<u8> {
    let mut tags = Vec::new();
    let mut pos = 0;
    while pos + 5 <= stream.len() {
        tags.push(stream[pos]);
        let len = u32::from_be_bytes(stream[pos + 1..pos + 5].try_into().unwrap()) as usize;
        pos += 1 + len;
    }
    tags
}

#[test]
fn with_block_no_poison_value_reaches_the_client() {
    let pg = pg();
    let p = Poison::new();
    setup(&pg, &p);
    let mut h = Harness::start(p.config(&pg, &[Reaction::Block]));
    let scanner = p.scanner();

    for sql in [
        "SELECT * FROM customers ORDER BY id",
        "COPY customers TO STDOUT",
        "COPY customers TO STDOUT (FORMAT binary)",
        "SELECT note FROM customers WHERE id = 1002",
        "SELECT body FROM docs ORDER BY id",
        "COPY docs TO STDOUT",
    ] {
        let bytes = raw_query(h.addr, sql);
        assert_eq!(
            scanner.find(&bytes),
            None,
            "{sql}: a poison value reached the client"
        );
        let tags = message_tags(&bytes);
        if sql.contains("docs") {
            // Rows over 64 KiB are passed on in pieces: the session ends
            // inside the row, where no error message can follow.
            assert!(!contains(&bytes, b"42501"), "{sql}");
            let start = bytes.len() - 70_000.min(bytes.len());
            assert!(
                contains(&bytes[start..], b"xxxxxxxx"),
                "{sql}: the row began"
            );
        } else {
            assert!(contains(&bytes, b"42501"), "{sql}: no error");
            assert_eq!(tags.last(), Some(&b'E'), "{sql}: ends with the error");
        }
        if sql == "SELECT * FROM customers ORDER BY id" {
            let rows = tags.iter().filter(|t| **t == b'D').count();
            assert_eq!(rows, 1000, "every row before the poison row");
        }
        let accessed = take(&mut h, catalog::POISON_ACCESSED);
        assert_eq!(accessed.len(), 1, "{sql}");
        assert_eq!(field(&accessed[0], "reactions"), Some("block"));
    }
    // The blocked events and the sessions' ends.
    let blocked = h.of(catalog::POISON_BLOCKED);
    assert!(blocked.is_empty(), "taken with the others above");
    let bytes = raw_query(h.addr, "SELECT email FROM customers WHERE id = 1001");
    assert_eq!(scanner.find(&bytes), None);
    h.wait_kind(catalog::POISON_BLOCKED);
    let end = h.wait_kind(catalog::CLIENT_DISCONNECTED);
    assert!(
        field(&end, "reason").unwrap().contains("closed by vigil"),
        "{end:?}"
    );
    h.events.clear();

    // psql sees the error and no row.
    let out = h
        .psql(&pg)
        .args(["-c", "SELECT * FROM customers ORDER BY id"])
        .output()
        .unwrap();
    assert!(!out.status.success());
    assert_eq!(scanner.find(&out.stdout), None);
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("security policy"),
        "{}",
        text(&out)
    );
    assert_eq!(take(&mut h, catalog::POISON_ACCESSED).len(), 1);

    // A statement that names a poison value is refused before PostgreSQL
    // sees it.
    let bytes = raw_query(
        h.addr,
        &format!(
            "SELECT id FROM customers WHERE email = {}",
            p.email.sql_literal()
        ),
    );
    assert!(contains(&bytes, b"42501"));
    assert!(!message_tags(&bytes).contains(&b'D'));
    let queried = h.wait_kind(catalog::POISON_QUERIED);
    assert_eq!(ids(&queried), [p.email.id]);
    assert!(h.of(catalog::POISON_ACCESSED).is_empty());

    // Other statements still work.
    let out = psql_bytes(&h, &pg, "SELECT count(*) FROM customers WHERE id <= 1000");
    assert_eq!(String::from_utf8_lossy(&out).trim(), "1000");
}

#[test]
fn scripts_run_in_the_background_and_shutdown_is_requested() {
    let pg = pg();
    let p = Poison::new();
    setup(&pg, &p);
    let dir = tempfile::tempdir().unwrap();
    let write_script = |name: &str, body: &str| {
        let path = dir.path().join(name);
        std::fs::write(&path, format!("#!/bin/sh\n{body}\n")).unwrap();
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o755)).unwrap();
        path
    };
    let got = dir.path().join("event.json");
    let ok = write_script("ok.sh", &format!("sleep 1; cat > {}", got.display()));

    let mut cfg = p.config(&pg, &[Reaction::Script, Reaction::Shutdown]);
    if let Some(poison) = cfg.poison.as_mut() {
        poison.script = Some(ok);
    }
    let mut h = Harness::start(cfg.clone());
    // The script sleeps; the session does not wait for it.
    let started = Instant::now();
    psql_bytes(&h, &pg, "SELECT * FROM customers WHERE id = 1001");
    assert!(
        started.elapsed() < Duration::from_millis(900),
        "{:?}",
        started.elapsed()
    );
    let accessed = h.wait_kind(catalog::POISON_ACCESSED);
    assert_eq!(field(&accessed, "reactions"), Some("script,shutdown"));
    h.wait_kind(catalog::POISON_SHUTDOWN);
    let stopped = h.rt.block_on(async {
        tokio::time::timeout(
            Duration::from_secs(5),
            h.proxy.as_ref().unwrap().stop_requested(),
        )
        .await
    });
    assert!(stopped.is_ok(), "the service was asked to stop");
    let deadline = Instant::now() + Duration::from_secs(10);
    let json = loop {
        let json = std::fs::read_to_string(&got).unwrap_or_default();
        if json.ends_with('\n') {
            break json;
        }
        assert!(
            Instant::now() < deadline,
            "the script did not write the event"
        );
        std::thread::sleep(Duration::from_millis(50));
    };
    let event = Event::from_json(json.trim_end().as_bytes()).unwrap();
    assert_eq!(event.kind, catalog::POISON_ACCESSED);
    assert_eq!(ids(&event), ids(&accessed));
    assert!(!json.contains(&p.email.value));

    // A failing script and one that runs too long.
    for (body, reason) in [("exit 3", "exit status: 3"), ("sleep 30", "was killed")] {
        if let Some(poison) = cfg.poison.as_mut() {
            poison.script = Some(write_script("bad.sh", body));
            poison.script_timeout = Duration::from_secs(1);
            poison.reactions = vec![Reaction::Script];
        }
        h.proxy.as_ref().unwrap().reload(cfg.clone()).unwrap();
        h.events.clear();
        let started = Instant::now();
        psql_bytes(&h, &pg, "SELECT email FROM customers WHERE id = 1001");
        assert!(started.elapsed() < Duration::from_millis(900));
        let failed = h.wait_kind(catalog::POISON_SCRIPT_FAILED);
        assert!(
            field(&failed, "reason").unwrap().contains(reason),
            "{failed:?}"
        );
        assert!(failed.session.is_some());
    }
}
