//! The relay with psql and raw sockets against a real PostgreSQL: session
//! and statement events, redaction, errors, coverage, hostile input,
//! upstream failures, large results and shutdown.

mod common;

use std::io::{Read, Write};
use std::net::TcpStream;
use std::time::Duration;

use common::{Harness, field, int};
use vigil_event::catalog;
use vigil_proxy::{Coverage, ProxyConfig};
use vigil_testkit::postgres::PgServer;

fn pg() -> PgServer {
    PgServer::start().expect("PostgreSQL starts")
}

#[test]
fn a_psql_session_reports_connect_auth_statements_and_disconnect() {
    let pg = pg();
    let mut h = Harness::plain(&pg);
    let out = h.sql(
        &pg,
        "CREATE TABLE cards (id int primary key, pan text); \
         INSERT INTO cards VALUES (1, '4111-1111-1111-1111'), (2, 'E''scaped'); \
         SELECT pan FROM cards WHERE pan = '4111-1111-1111-1111'",
    );
    assert_eq!(out.trim(), "4111-1111-1111-1111");
    let connected = h.wait_kind(catalog::CLIENT_CONNECTED);
    let s = connected.session.as_ref().expect("session");
    assert_eq!(s.db_user.as_deref(), Some("postgres"));
    assert_eq!(s.database.as_deref(), Some("postgres"));
    assert_eq!(s.application.as_deref(), Some("psql"));
    assert!(s.client.is_some_and(|a| a.ip().is_loopback()));
    assert_eq!(s.tls_version, None);
    let auth = h.wait_kind(catalog::AUTH_SUCCEEDED);
    assert_eq!(field(&auth, "method"), Some("trust"));
    let done = h.wait_kind(catalog::CLIENT_DISCONNECTED);
    assert_eq!(int(&done, "statements"), Some(3));
    assert!(int(&done, "bytes_from_server").unwrap_or(0) > 100);
    let stmts = h.of(catalog::STATEMENT_EXECUTED);
    let texts: Vec<&str> = stmts.iter().map(|e| &*e.message).collect();
    assert_eq!(
        texts,
        [
            "CREATE TABLE cards (id int primary key, pan text)",
            "INSERT INTO cards VALUES ($1, $2), ($3, $4)",
            "SELECT pan FROM cards WHERE pan = $1",
        ]
    );
    assert_eq!(field(&stmts[0], "class"), Some("ddl"));
    assert_eq!(field(&stmts[1], "class"), Some("write"));
    assert_eq!(int(&stmts[1], "rows"), Some(2));
    assert_eq!(field(&stmts[1], "command"), Some("INSERT"));
    assert_eq!(field(&stmts[2], "class"), Some("read"));
    assert_eq!(int(&stmts[2], "rows"), Some(1));
    assert!(stmts.iter().all(|e| field(e, "protocol") == Some("simple")));
    assert!(
        stmts
            .iter()
            .all(|e| e.session.as_ref().map(|s| s.id) == Some(s.id))
    );
    let dump = h.dump();
    assert!(!dump.contains("4111"), "a literal leaked:\n{dump}");
    assert!(!dump.contains("scaped"), "a literal leaked:\n{dump}");
}

#[test]
fn errors_inside_a_transaction_are_reported_redacted() {
    let pg = pg();
    pg.psql("CREATE TABLE users (email text unique)")
        .expect("setup");
    let mut h = Harness::plain(&pg);
    let out = h
        .psql(&pg)
        .args([
            "-c",
            "BEGIN; INSERT INTO users VALUES ('mallory@secret.example'); \
             INSERT INTO users VALUES ('mallory@secret.example'); COMMIT",
        ])
        .output()
        .expect("psql runs");
    assert!(!out.status.success());
    let failed = h.wait_kind(catalog::STATEMENT_FAILED);
    assert_eq!(field(&failed, "sqlstate"), Some("23505"));
    assert_eq!(&*failed.message, "INSERT INTO users VALUES ($1)");
    let detail = field(&failed, "detail").expect("detail");
    assert!(detail.starts_with("Key (email)=("), "{detail}");
    h.wait_kind(catalog::CLIENT_DISCONNECTED);
    let dump = h.dump();
    assert!(!dump.contains("mallory"), "a value leaked:\n{dump}");
    // The statements after the failure were never run: not reported.
    let executed = h.of(catalog::STATEMENT_EXECUTED);
    assert_eq!(executed.len(), 2, "{dump}");
}

#[test]
fn coverage_limits_successful_statements_but_never_failures() {
    let pg = pg();
    let mut cfg = ProxyConfig::new("127.0.0.1:0".parse().expect("addr"), pg.addr().to_string());
    cfg.coverage = Coverage::parse("ddl").expect("coverage");
    let mut h = Harness::start(cfg);
    h.sql(
        &pg,
        "CREATE TABLE t (a int); INSERT INTO t VALUES (1); SELECT a FROM t",
    );
    let _ = h.psql(&pg).args(["-c", "SELECT nope FROM t"]).output();
    h.wait_kind(catalog::STATEMENT_FAILED);
    let executed = h.of(catalog::STATEMENT_EXECUTED);
    let texts: Vec<&str> = executed.iter().map(|e| &*e.message).collect();
    assert_eq!(texts, ["CREATE TABLE t (a int)"]);
}

/// Connects, sends a StartupMessage, reads up to ReadyForQuery.
fn raw_session(h: &Harness) -> TcpStream {
    let mut s = TcpStream::connect(h.addr).expect("connect");
    s.set_read_timeout(Some(Duration::from_secs(10)))
        .expect("timeout");
    let mut startup = Vec::new();
    let params = b"user\0postgres\0database\0postgres\0\0";
    startup.extend_from_slice(&((8 + params.len()) as u32).to_be_bytes());
    startup.extend_from_slice(&196_608u32.to_be_bytes());
    startup.extend_from_slice(params);
    s.write_all(&startup).expect("startup");
    let mut seen = Vec::new();
    let mut buf = [0u8; 4096];
    while !seen.windows(6).any(|w| w == b"Z\0\0\0\x05I") {
        let n = s.read(&mut buf).expect("read");
        assert!(n > 0, "server closed during startup");
        seen.extend_from_slice(&buf[..n]);
    }
    s
}

/// Reads until the peer closes; returns what came.
fn read_to_close(s: &mut TcpStream) -> Vec<u8> {
    let mut all = Vec::new();
    let _ = s.read_to_end(&mut all);
    all
}

#[test]
fn hostile_messages_end_the_session_not_the_proxy() {
    let pg = pg();
    let mut h = Harness::plain(&pg);
    let cases: [(&str, &[u8]); 4] = [
        ("unknown type", b"\x01\0\0\0\x04"),
        ("length below minimum", b"Q\0\0\0\x02"),
        ("oversized Sync", b"S\x7f\0\0\0"),
        ("query without terminator", b"Q\0\0\0\x09SELECT"),
    ];
    for (what, bytes) in cases {
        let before = h.of(catalog::PROTOCOL_VIOLATION).len();
        let mut s = raw_session(&h);
        s.write_all(bytes).expect("write");
        if what == "query without terminator" {
            // A message that declares more than it holds waits for the
            // rest: the client giving up mid-message is the violation.
            s.shutdown(std::net::Shutdown::Write).expect("shutdown");
        }
        let answer = read_to_close(&mut s);
        if what != "query without terminator" {
            assert!(
                answer.windows(5).any(|w| w == b"08P01"),
                "{what}: no protocol error sent: {answer:?}"
            );
        }
        let deadline = std::time::Instant::now() + Duration::from_secs(10);
        while h.of(catalog::PROTOCOL_VIOLATION).len() == before {
            assert!(std::time::Instant::now() < deadline, "{what}: no event");
            std::thread::sleep(Duration::from_millis(20));
        }
        assert_eq!(
            h.of(catalog::PROTOCOL_VIOLATION).len(),
            before + 1,
            "{what}"
        );
    }
    // The proxy still serves.
    assert_eq!(h.sql(&pg, "SELECT 40 + 2").trim(), "42");
    assert!(
        h.metrics
            .render(&vigil_proxy::Gauges {
                events_dropped: 0,
                audit_queue: 0,
                last_checkpoint_age: None,
                audit_ok: true,
                sinks: Vec::new(),
            })
            .contains("vigil_protocol_errors_total 4")
    );
}

#[test]
fn garbage_before_startup_is_refused() {
    let pg = pg();
    let mut h = Harness::plain(&pg);
    let mut s = TcpStream::connect(h.addr).expect("connect");
    s.write_all(b"GET / HTTP/1.1\r\nHost: x\r\n\r\n")
        .expect("write");
    let _ = read_to_close(&mut s);
    h.wait_kind(catalog::PROTOCOL_VIOLATION);
    assert_eq!(h.sql(&pg, "SELECT 1").trim(), "1");
}

#[test]
fn an_unreachable_database_is_an_event_and_an_error_for_the_client() {
    let port = vigil_testkit::free_port();
    let mut h = Harness::start(ProxyConfig::new(
        "127.0.0.1:0".parse().expect("addr"),
        format!("127.0.0.1:{port}"),
    ));
    let pg = pg();
    let out = h.psql(&pg).args(["-c", "SELECT 1"]).output().expect("psql");
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("vigil cannot connect to the database server"),
        "{err}"
    );
    let ev = h.wait_kind(catalog::UPSTREAM_CONNECT_FAILED);
    assert_eq!(
        field(&ev, "upstream"),
        Some(format!("127.0.0.1:{port}").as_str())
    );
}

#[test]
fn large_rows_stream_through_intact() {
    let pg = pg();
    let mut h = Harness::plain(&pg);
    // 30 rows of 1 MB: each DataRow is bigger than the relay buffers.
    let out = h.sql(
        &pg,
        "SELECT length(repeat('x', 1000000) || g) FROM generate_series(1, 30) g",
    );
    let lens: Vec<&str> = out.lines().collect();
    assert_eq!(lens.len(), 30);
    assert!(lens.iter().take(9).all(|l| *l == "1000001"));
    let out = h
        .psql(&pg)
        .args([
            "-c",
            "SELECT repeat(md5(g::text), 40000) FROM generate_series(1, 10) g",
        ])
        .output()
        .expect("psql");
    assert!(out.status.success());
    assert_eq!(out.stdout.len(), 10 * (32 * 40_000 + 1));
    let stmt = h.wait_for("the 10-row select", |e| {
        e.kind == catalog::STATEMENT_EXECUTED && e.message.starts_with("SELECT repeat(md5")
    });
    assert_eq!(int(&stmt, "rows"), Some(10));
}

#[test]
fn shutdown_waits_for_sessions_then_closes_them() {
    let pg = pg();
    let mut h = Harness::plain(&pg);
    let mut child = h
        .psql(&pg)
        .args(["-c", "SELECT pg_sleep(30)"])
        .stderr(std::process::Stdio::piped())
        .spawn()
        .expect("psql");
    h.wait_kind(catalog::AUTH_SUCCEEDED);
    let started = std::time::Instant::now();
    let closed = h.shutdown(Duration::from_millis(500));
    assert_eq!(closed, 1);
    assert!(started.elapsed() < Duration::from_secs(10));
    let status = child.wait().expect("psql ends");
    assert!(!status.success());
    let mut err = String::new();
    child
        .stderr
        .take()
        .expect("stderr")
        .read_to_string(&mut err)
        .expect("read");
    assert!(err.contains("vigil is shutting down"), "{err}");
    let done = h.wait_kind(catalog::CLIENT_DISCONNECTED);
    assert_eq!(field(&done, "reason"), Some("vigil is shutting down"));
}

#[test]
fn a_session_refused_after_authentication_is_a_failed_login() {
    let pg = pg();
    let mut h = Harness::plain(&pg);
    let out = h
        .psql(&pg)
        .env("PGDATABASE", "no_such_database")
        .args(["-c", "SELECT 1"])
        .output()
        .expect("psql runs");
    assert!(!out.status.success());
    let failed = h.wait_kind(catalog::AUTH_FAILED);
    assert_eq!(field(&failed, "sqlstate"), Some("3D000"));
    assert_eq!(field(&failed, "stage"), Some("startup"));
    // Authenticated first: both events are there, in order.
    let events = h.drain().to_vec();
    let ok = events
        .iter()
        .position(|e| e.kind == catalog::AUTH_SUCCEEDED);
    let refused = events.iter().position(|e| e.kind == catalog::AUTH_FAILED);
    assert!(ok < refused, "{}", h.dump());
}
