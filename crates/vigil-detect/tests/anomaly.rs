#![allow(clippy::unwrap_used)]

use std::net::IpAddr;
use std::sync::Arc;
use std::time::{Duration, Instant};

use vigil_detect::anomaly::{Anomalies, AnomalyConfig, ConnectInfo, CopyDirection, StatementSeen};
use vigil_detect::firewall::{self, TableRef};
use vigil_event::{Event, Kind, Session, Value, catalog};
use vigil_sql::StatementClass;

/// Detectors and a clock that tests move.
struct H {
    a: Anomalies,
    t0: Instant,
}

impl H {
    fn new(config: AnomalyConfig) -> H {
        let t0 = Instant::now();
        H {
            a: Anomalies::new(config, t0).unwrap(),
            t0,
        }
    }

    fn at(&self, secs: f64) -> Instant {
        self.t0 + Duration::from_secs_f64(secs)
    }
}

/// A redacted statement and what the proxy knows of its run.
#[derive(Clone)]
struct Stmt {
    text: String,
    fingerprint: u64,
    class: StatementClass,
    tables: Vec<TableRef>,
}

impl Stmt {
    fn new(sql: &str) -> Stmt {
        let r = vigil_sql::redact(sql);
        let info = r.statements.into_iter().next().unwrap();
        Stmt {
            tables: firewall::tables(&info.text),
            text: info.text,
            fingerprint: info.fingerprint,
            class: info.class,
        }
    }

    fn seen<'a>(
        &'a self,
        session: &'a Arc<Session>,
        user: &'a str,
        app: &'a str,
    ) -> StatementSeen<'a> {
        StatementSeen {
            session: Some(session),
            user,
            application: app,
            fingerprint: self.fingerprint,
            class: self.class,
            text: &self.text,
            rows: None,
            sqlstate: None,
            copy: None,
            tables: &self.tables,
        }
    }
}

fn session(id: u64) -> Arc<Session> {
    Arc::new(Session {
        id,
        ..Session::default()
    })
}

fn ip(s: &str) -> IpAddr {
    s.parse().unwrap()
}

fn kinds(events: &[Event]) -> Vec<Kind> {
    events.iter().map(|e| e.kind).collect()
}

fn only(config: impl FnOnce(&mut AnomalyConfig)) -> AnomalyConfig {
    let mut c = AnomalyConfig::default();
    c.new_fingerprint.enabled = false;
    c.error_burst.enabled = false;
    c.bulk_read.enabled = false;
    c.dump.enabled = false;
    c.auth_probe.enabled = false;
    c.tls_probe.enabled = false;
    c.new_source.enabled = false;
    c.tls_downgrade.enabled = false;
    c.rate.enabled = false;
    config(&mut c);
    c
}

fn int(e: &Event, key: &str) -> i64 {
    match e.field_value(key) {
        Some(Value::Int(i)) => *i,
        other => panic!("{key}: {other:?}"),
    }
}

fn text(e: &Event, key: &str) -> String {
    match e.field_value(key) {
        Some(Value::Str(s)) => s.to_string(),
        other => panic!("{key}: {other:?}"),
    }
}

// ---------------------------------------------------------------------------
// Steady traffic

/// pgbench's TPC-B-like transaction, one statement at a time.
fn pgbench() -> Vec<Stmt> {
    [
        "BEGIN",
        "UPDATE pgbench_accounts SET abalance = abalance + 1 WHERE aid = 2",
        "SELECT abalance FROM pgbench_accounts WHERE aid = 2",
        "UPDATE pgbench_tellers SET tbalance = tbalance + 1 WHERE tid = 3",
        "UPDATE pgbench_branches SET bbalance = bbalance + 1 WHERE bid = 4",
        "INSERT INTO pgbench_history (tid, bid, aid, delta, mtime) VALUES (1, 2, 3, 4, CURRENT_TIMESTAMP)",
        "END",
    ]
    .iter()
    .map(|s| Stmt::new(s))
    .collect()
}

struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0
    }
}

#[test]
fn steady_pgbench_traffic_is_quiet() {
    let mut c = AnomalyConfig::default();
    c.new_fingerprint.learn_statements = 1_000;
    c.new_fingerprint.learn_seconds = 60;
    c.new_source.learn_connections = 10;
    c.new_source.learn_seconds = 60;
    c.rate.warmup_seconds = 60;
    let h = H::new(c);
    let stmts = pgbench();
    let clients = 10u64;
    let sessions: Vec<_> = (1..=clients).map(session).collect();
    let sources: Vec<_> = (1..=clients).map(|i| ip(&format!("10.0.0.{i}"))).collect();
    let mut rng = Rng(0x9e37_79b9_7f4a_7c15);
    let mut learning = Vec::new();
    let mut steady = Vec::new();
    let mut n = 0u64;
    let mut t = 0.0f64;
    let learn_until = 61.0;
    let total_after = 100_000u64;
    let mut after = 0u64;
    while after < total_after {
        // About 1000 statements a second, give or take 30%.
        t += (0.7 + (rng.next() % 600) as f64 / 1000.0) / 1000.0;
        let client = (n % clients) as usize;
        let now = h.at(t);
        let out = if learning_phase(t, learn_until) {
            &mut learning
        } else {
            &mut steady
        };
        // Every client reconnects every 700 statements, with TLS.
        if n % 700 < clients {
            out.extend(h.a.on_connect(
                &ConnectInfo {
                    user: "bench",
                    application: "pgbench",
                    source: sources[client],
                    tls: Some("TLSv1.3"),
                    session: Some(&sessions[client]),
                },
                now,
            ));
        }
        let stmt = &stmts[(n / clients % 7) as usize];
        let mut seen = stmt.seen(&sessions[client], "bench", "pgbench");
        if stmt.class == StatementClass::Read {
            seen.rows = Some(1);
        }
        // The odd failure: a serialization error, a rare syntax error.
        if n % 5_000 == 17 {
            seen.sqlstate = Some("40001");
        }
        if n % 20_000 == 99 {
            seen.sqlstate = Some("42601");
        }
        out.extend(h.a.on_statement(&seen, now));
        n += 1;
        if !learning_phase(t, learn_until) {
            after += 1;
        }
    }
    assert!(n > total_after);
    assert_eq!(steady.len(), 0, "{:?}", kinds(&steady));
    assert_eq!(learning.len(), 0, "{:?}", kinds(&learning));
}

fn learning_phase(t: f64, until: f64) -> bool {
    t < until
}

// ---------------------------------------------------------------------------
// New fingerprint

#[test]
fn new_fingerprint_after_the_learning_window() {
    let h = H::new(only(|c| {
        c.new_fingerprint.enabled = true;
        c.new_fingerprint.learn_statements = 5;
        c.new_fingerprint.learn_seconds = 10;
    }));
    let s = session(1);
    let known = Stmt::new("SELECT * FROM orders WHERE id = 1");
    let novel = Stmt::new("SELECT * FROM users WHERE email LIKE 'a%'");
    // Many statements, but within 10 s: still learning, even the novel one.
    for i in 0..20 {
        let st = if i == 10 { &novel } else { &known };
        assert!(
            h.a.on_statement(&st.seen(&s, "app", "web"), h.at(f64::from(i) * 0.1))
                .is_empty()
        );
    }
    // Past 10 s and 5 statements: learned shapes are quiet…
    assert!(
        h.a.on_statement(&known.seen(&s, "app", "web"), h.at(11.0))
            .is_empty()
    );
    assert!(
        h.a.on_statement(&novel.seen(&s, "app", "web"), h.at(11.0))
            .is_empty()
    );
    // …a new one is reported once.
    let other = Stmt::new("DELETE FROM users WHERE id = 'x'");
    let ev = h.a.on_statement(&other.seen(&s, "app", "web"), h.at(12.0));
    assert_eq!(kinds(&ev), [catalog::ANOMALY_NEW_FINGERPRINT]);
    let e = &ev[0];
    assert_eq!(e.fingerprint, Some(other.fingerprint));
    assert_eq!(e.session.as_ref().map(|s| s.id), Some(1));
    assert_eq!(text(e, "statement"), "DELETE FROM users WHERE id = $1");
    assert_eq!(text(e, "user"), "app");
    assert_eq!(text(e, "class"), "write");
    assert_eq!(int(e, "learn_statements"), 5);
    assert!(!format!("{e:?}").contains("'x'"));
    assert!(
        h.a.on_statement(&other.seen(&s, "app", "web"), h.at(13.0))
            .is_empty()
    );
    // The same shape from another application of the user is new to it.
    let ev = h.a.on_statement(&other.seen(&s, "app", "psql"), h.at(14.0));
    assert_eq!(kinds(&ev), [catalog::ANOMALY_NEW_FINGERPRINT]);
    // A new user learns first.
    assert!(
        h.a.on_statement(&other.seen(&s, "carol", "web"), h.at(15.0))
            .is_empty()
    );
}

#[test]
fn new_fingerprint_per_user_only() {
    let h = H::new(only(|c| {
        c.new_fingerprint.enabled = true;
        c.new_fingerprint.learn_statements = 1;
        c.new_fingerprint.learn_seconds = 0;
        c.new_fingerprint.per_application = false;
    }));
    let s = session(1);
    let a = Stmt::new("SELECT 1");
    for _ in 0..3 {
        h.a.on_statement(&a.seen(&s, "app", "web"), h.at(0.0));
    }
    assert!(
        h.a.on_statement(&a.seen(&s, "app", "other"), h.at(1.0))
            .is_empty()
    );
}

// ---------------------------------------------------------------------------
// Error burst

#[test]
fn error_burst_in_one_session() {
    let h = H::new(only(|c| c.error_burst.enabled = true));
    let s1 = session(1);
    let s2 = session(2);
    let probe = Stmt::new("SELECT * FROM users WHERE id = 1'");
    let mut events = Vec::new();
    // Nine errors spread over two sessions, and other errors: quiet.
    for i in 0..9 {
        let s = if i % 2 == 0 { &s1 } else { &s2 };
        let mut seen = probe.seen(s, "app", "web");
        seen.sqlstate = Some(["42601", "22P02", "42703", "42883"][i % 4]);
        events.extend(h.a.on_statement(&seen, h.at(i as f64)));
        let mut dup = probe.seen(&s1, "app", "web");
        dup.sqlstate = Some("23505");
        events.extend(h.a.on_statement(&dup, h.at(i as f64)));
    }
    assert!(events.is_empty());
    // Ten in one session within a minute.
    for i in 0..10 {
        let mut seen = probe.seen(&s1, "app", "web");
        seen.sqlstate = Some("42601");
        events.extend(h.a.on_statement(&seen, h.at(20.0 + f64::from(i))));
    }
    assert_eq!(kinds(&events), [catalog::ANOMALY_ERROR_BURST]);
    let e = &events[0];
    assert!(int(e, "errors") >= 10);
    assert_eq!(int(e, "threshold"), 10);
    assert_eq!(int(e, "window_seconds"), 60);
    assert_eq!(text(e, "sqlstate"), "42601");
    assert_eq!(e.session.as_ref().map(|s| s.id), Some(1));
    // It goes on: reported again only after repeat_seconds.
    let mut again = Vec::new();
    for i in 0..200 {
        let mut seen = probe.seen(&s1, "app", "web");
        seen.sqlstate = Some("42601");
        again.extend(h.a.on_statement(&seen, h.at(30.0 + f64::from(i) * 2.0)));
    }
    assert_eq!(again.len(), 1, "{:?}", kinds(&again));
}

#[test]
fn errors_spread_out_are_quiet() {
    let h = H::new(only(|c| c.error_burst.enabled = true));
    let s = session(1);
    let bad = Stmt::new("SELEC 1");
    for i in 0..1000 {
        let mut seen = bad.seen(&s, "app", "psql");
        seen.sqlstate = Some("42601");
        // One every 7 s: about 8.6 in any minute.
        assert!(
            h.a.on_statement(&seen, h.at(f64::from(i) * 7.0)).is_empty(),
            "{i}"
        );
    }
}

#[test]
fn a_closed_session_starts_over() {
    let h = H::new(only(|c| c.error_burst.enabled = true));
    let s = session(9);
    let bad = Stmt::new("SELEC 1");
    for i in 0..9 {
        let mut seen = bad.seen(&s, "app", "psql");
        seen.sqlstate = Some("42601");
        assert!(h.a.on_statement(&seen, h.at(f64::from(i))).is_empty());
    }
    h.a.on_disconnect(9);
    let mut seen = bad.seen(&s, "app", "psql");
    seen.sqlstate = Some("42601");
    assert!(h.a.on_statement(&seen, h.at(10.0)).is_empty());
}

// ---------------------------------------------------------------------------
// Bulk read

#[test]
fn bulk_read_far_above_the_usual() {
    let h = H::new(only(|c| c.bulk_read.enabled = true));
    let s = session(1);
    let search = Stmt::new("SELECT * FROM customers WHERE name LIKE 'a%'");
    let mut rng = Rng(42);
    // Searches return 0 to 400 rows.
    for i in 0..500 {
        let mut seen = search.seen(&s, "app", "web");
        seen.rows = Some(rng.next() % 401);
        assert!(
            h.a.on_statement(&seen, h.at(f64::from(i))).is_empty(),
            "{i}"
        );
    }
    let mut seen = search.seen(&s, "app", "web");
    seen.rows = Some(250_000);
    let ev = h.a.on_statement(&seen, h.at(600.0));
    assert_eq!(kinds(&ev), [catalog::ANOMALY_BULK_READ]);
    let e = &ev[0];
    assert_eq!(int(e, "rows"), 250_000);
    assert!(int(e, "usual_rows") < 25_000, "{}", int(e, "usual_rows"));
    assert_eq!(int(e, "min_rows"), 1000);
    assert_eq!(text(e, "factor"), "10");
    assert_eq!(e.fingerprint, Some(search.fingerprint));
    // Not again within repeat_seconds; once past it, again: one outlier
    // does not make the next usual.
    assert!(h.a.on_statement(&seen, h.at(601.0)).is_empty());
    let ev = h.a.on_statement(&seen, h.at(1000.0));
    assert_eq!(kinds(&ev), [catalog::ANOMALY_BULK_READ]);
}

#[test]
fn bulk_read_needs_the_floor_and_warmup() {
    let h = H::new(only(|c| c.bulk_read.enabled = true));
    let s = session(1);
    let one = Stmt::new("SELECT * FROM t WHERE id = 1");
    for i in 0..100 {
        let mut seen = one.seen(&s, "app", "web");
        seen.rows = Some(1);
        h.a.on_statement(&seen, h.at(f64::from(i)));
    }
    // 900 rows is 900× usual but under min_rows.
    let mut seen = one.seen(&s, "app", "web");
    seen.rows = Some(900);
    assert!(h.a.on_statement(&seen, h.at(200.0)).is_empty());
    // A fingerprint still in its warmup is not judged.
    let fresh = Stmt::new("SELECT * FROM other");
    let mut seen = fresh.seen(&s, "app", "web");
    seen.rows = Some(1);
    h.a.on_statement(&seen, h.at(0.0));
    seen.rows = Some(1_000_000);
    assert!(h.a.on_statement(&seen, h.at(1.0)).is_empty());
    // Writes are not reads.
    let upd = Stmt::new("UPDATE t SET x = 1");
    for i in 0..50 {
        let mut seen = upd.seen(&s, "app", "web");
        seen.rows = Some(if i < 49 { 1 } else { 1_000_000 });
        assert!(h.a.on_statement(&seen, h.at(f64::from(i))).is_empty());
    }
}

#[test]
fn large_steady_reads_are_quiet() {
    let h = H::new(only(|c| c.bulk_read.enabled = true));
    let s = session(1);
    let report = Stmt::new("SELECT * FROM sales WHERE day = '2024-01-01'");
    let mut rng = Rng(7);
    for i in 0..2000 {
        let mut seen = report.seen(&s, "app", "web");
        seen.rows = Some(3_000 + rng.next() % 20_000);
        assert!(
            h.a.on_statement(&seen, h.at(f64::from(i))).is_empty(),
            "{i}"
        );
    }
}

// ---------------------------------------------------------------------------
// Dump

#[test]
fn pg_dump_signature() {
    let h = H::new(only(|c| c.dump.enabled = true));
    let s = session(3);
    let script = [
        (
            "SET TRANSACTION ISOLATION LEVEL REPEATABLE READ, READ ONLY",
            None,
        ),
        ("SELECT pg_catalog.pg_export_snapshot()", None),
        (
            "COPY public.users (id, email) TO stdout",
            Some(CopyDirection::Out),
        ),
        (
            "COPY public.orders (id, total) TO stdout",
            Some(CopyDirection::Out),
        ),
    ];
    let mut events = Vec::new();
    for (i, (sql, copy)) in script.iter().enumerate() {
        let st = Stmt::new(sql);
        let mut seen = st.seen(&s, "backup", "pg_dump");
        seen.copy = *copy;
        events.extend(h.a.on_statement(&seen, h.at(i as f64)));
    }
    assert_eq!(kinds(&events), [catalog::ANOMALY_DUMP], "reported once");
    let e = &events[0];
    assert_eq!(text(e, "reason"), "pg_dump signature");
    assert_eq!(text(e, "signs"), "application,snapshot_transaction");
    assert_eq!(e.session.as_ref().map(|s| s.id), Some(3));
}

#[test]
fn dump_without_the_application_name() {
    let h = H::new(only(|c| c.dump.enabled = true));
    let s = session(4);
    let mut events = Vec::new();
    let txn = Stmt::new("set transaction isolation level serializable, read only, deferrable");
    events.extend(h.a.on_statement(&txn.seen(&s, "app", "etl"), h.at(0.0)));
    for (i, table) in ["a", "b", "c", "d", "e"].iter().enumerate() {
        // Without a copy direction from the server, the text tells.
        let st = Stmt::new(&format!("COPY {table} TO STDOUT"));
        events.extend(h.a.on_statement(&st.seen(&s, "app", "etl"), h.at(1.0 + i as f64)));
    }
    assert_eq!(kinds(&events), [catalog::ANOMALY_DUMP]);
    assert_eq!(text(&events[0], "signs"), "snapshot_transaction,copies");
    assert_eq!(int(&events[0], "copies"), 5);
}

#[test]
fn copies_alone_or_pg_dump_of_an_ignored_user_are_quiet() {
    let h = H::new(only(|c| {
        c.dump.enabled = true;
        c.dump.ignore_users = vec!["backup".into()];
    }));
    let s = session(5);
    for i in 0..50 {
        let st = Stmt::new(&format!("COPY t{i} TO STDOUT"));
        let mut seen = st.seen(&s, "app", "etl");
        seen.copy = Some(CopyDirection::Out);
        assert!(h.a.on_statement(&seen, h.at(f64::from(i))).is_empty());
    }
    let s = session(6);
    for sql in [
        "SET TRANSACTION ISOLATION LEVEL REPEATABLE READ, READ ONLY",
        "SELECT pg_catalog.pg_export_snapshot()",
    ] {
        let st = Stmt::new(sql);
        assert!(
            h.a.on_statement(&st.seen(&s, "backup", "pg_dump"), h.at(60.0))
                .is_empty()
        );
    }
    // COPY FROM STDIN is no dump.
    let s = session(7);
    for i in 0..10 {
        let st = Stmt::new("COPY t FROM STDIN");
        let mut seen = st.seen(&s, "app", "pg_dump");
        seen.copy = Some(CopyDirection::In);
        assert!(h.a.on_statement(&seen, h.at(f64::from(i))).is_empty());
    }
}

#[test]
fn copy_of_a_monitored_table() {
    let h = H::new(only(|c| {
        c.dump.enabled = true;
        c.dump.monitored_tables = vec!["public.customers".into(), "vault.*".into()];
    }));
    let s = session(8);
    let mut events = Vec::new();
    for sql in [
        "COPY customers TO STDOUT",
        "COPY (SELECT * FROM vault.keys WHERE id > 5) TO STDOUT WITH CSV",
        "COPY other.customers TO STDOUT",
        "COPY customers FROM STDIN",
        "SELECT * FROM customers",
    ] {
        let st = Stmt::new(sql);
        let mut seen = st.seen(&s, "app", "psql");
        seen.rows = Some(10);
        events.extend(h.a.on_statement(&seen, h.at(0.0)));
    }
    assert_eq!(
        kinds(&events),
        [catalog::ANOMALY_DUMP, catalog::ANOMALY_DUMP]
    );
    assert_eq!(text(&events[0], "table"), "customers");
    assert_eq!(text(&events[0], "reason"), "copy of a monitored table");
    assert_eq!(text(&events[1], "table"), "vault.keys");
    assert_eq!(int(&events[1], "rows"), 10);
}

// ---------------------------------------------------------------------------
// Probing

#[test]
fn auth_probe_from_one_source() {
    let h = H::new(only(|c| c.auth_probe.enabled = true));
    let mut events = Vec::new();
    // Nine failures a minute from each of many sources: quiet.
    for i in 0..9 {
        for n in 1..50 {
            events.extend(h.a.on_auth_failed(
                ip(&format!("192.0.2.{n}")),
                None,
                h.at(f64::from(i)),
            ));
        }
    }
    assert!(events.is_empty());
    // Ten within a minute from one.
    for i in 0..10 {
        events.extend(h.a.on_auth_failed(ip("203.0.113.9"), None, h.at(f64::from(i) * 5.0)));
    }
    assert_eq!(kinds(&events), [catalog::ANOMALY_AUTH_PROBE]);
    let e = &events[0];
    assert_eq!(text(e, "source"), "203.0.113.9");
    assert_eq!(int(e, "failures"), 10);
    assert_eq!(int(e, "threshold"), 10);
    // Slow guessing, one every ten seconds, stays under.
    for i in 0..100 {
        assert!(
            h.a.on_auth_failed(ip("198.51.100.1"), None, h.at(f64::from(i) * 10.0))
                .is_empty()
        );
    }
}

#[test]
fn probes_from_one_ipv6_network_add_up() {
    let h = H::new(only(|c| c.tls_probe.enabled = true));
    let mut events = Vec::new();
    for i in 0..20 {
        let addr = ip(&format!("2001:db8:1:2::{:x}", i + 1));
        events.extend(h.a.on_tls_failed(addr, None, h.at(f64::from(i))));
    }
    assert_eq!(kinds(&events), [catalog::ANOMALY_TLS_PROBE]);
    assert_eq!(text(&events[0], "source"), "2001:db8:1:2::/64");
    assert_eq!(int(&events[0], "threshold"), 20);
    // Auth failures are counted apart.
    assert!(
        h.a.on_auth_failed(ip("2001:db8:1:2::1"), None, h.at(21.0))
            .is_empty()
    );
}

#[test]
fn new_source_after_the_learning_window() {
    let h = H::new(only(|c| {
        c.new_source.enabled = true;
        c.new_source.learn_connections = 3;
        c.new_source.learn_seconds = 100;
    }));
    let s = session(1);
    let connect = |addr: &str, t: f64| {
        h.a.on_connect(
            &ConnectInfo {
                user: "app",
                application: "web",
                source: ip(addr),
                tls: None,
                session: Some(&s),
            },
            h.at(t),
        )
    };
    assert!(connect("10.1.0.1", 0.0).is_empty());
    assert!(connect("10.1.0.2", 50.0).is_empty());
    for i in 0..10 {
        assert!(connect("10.1.0.1", 101.0 + f64::from(i)).is_empty());
    }
    assert!(connect("10.1.0.2", 200.0).is_empty());
    assert!(connect("::ffff:10.1.0.2", 201.0).is_empty(), "IPv4-mapped");
    let ev = connect("198.51.100.7", 300.0);
    assert_eq!(kinds(&ev), [catalog::ANOMALY_NEW_SOURCE]);
    assert_eq!(text(&ev[0], "source"), "198.51.100.7");
    assert_eq!(text(&ev[0], "user"), "app");
    assert!(connect("198.51.100.7", 301.0).is_empty(), "known now");
}

#[test]
fn tls_downgrade() {
    let h = H::new(only(|c| c.tls_downgrade.enabled = true));
    let connect = |user: &str, tls: Option<&str>, t: f64| {
        h.a.on_connect(
            &ConnectInfo {
                user,
                application: "web",
                source: ip("10.0.0.1"),
                tls,
                session: None,
            },
            h.at(t),
        )
    };
    for i in 0..20 {
        assert!(connect("app", Some("TLSv1.3"), f64::from(i)).is_empty());
        // A user who mixes is never judged on plain connections.
        assert!(
            connect(
                "mixed",
                if i % 2 == 0 { Some("TLSv1.3") } else { None },
                f64::from(i)
            )
            .is_empty()
        );
    }
    let ev = connect("app", None, 30.0);
    assert_eq!(kinds(&ev), [catalog::ANOMALY_TLS_DOWNGRADE]);
    assert_eq!(text(&ev[0], "previous_tls"), "TLS");
    assert_eq!(text(&ev[0], "tls"), "none");
    assert_eq!(int(&ev[0], "tls_connections"), 20);
    assert!(connect("app", None, 31.0).is_empty(), "reported once");
    let ev = connect("app", Some("TLSv1.2"), 32.0);
    assert_eq!(kinds(&ev), [catalog::ANOMALY_TLS_DOWNGRADE]);
    assert_eq!(text(&ev[0], "previous_tls"), "TLSv1.3");
    assert_eq!(text(&ev[0], "tls"), "TLSv1.2");
    assert!(connect("app", Some("TLSv1.2"), 33.0).is_empty());
    assert!(connect("app", Some("TLSv1.3"), 34.0).is_empty());
    // Too few connections to judge.
    for i in 0..5 {
        connect("new", Some("TLSv1.3"), f64::from(i));
    }
    assert!(connect("new", None, 10.0).is_empty());
}

// ---------------------------------------------------------------------------
// Rate

#[test]
fn rate_far_above_the_usual() {
    let h = H::new(only(|c| {
        c.rate.enabled = true;
        c.rate.warmup_seconds = 60;
    }));
    let s = session(1);
    let get = Stmt::new("SELECT * FROM items WHERE id = 1");
    let other = Stmt::new("SELECT * FROM carts WHERE id = 1");
    let mut events = Vec::new();
    // 20 a second of each for five minutes.
    for sec in 0..300 {
        for k in 0..20 {
            let t = f64::from(sec) + f64::from(k) / 20.0;
            events.extend(h.a.on_statement(&get.seen(&s, "app", "web"), h.at(t)));
            events.extend(h.a.on_statement(&other.seen(&s, "app", "web"), h.at(t)));
        }
    }
    assert!(events.is_empty(), "{:?}", kinds(&events));
    // Then 500 in one second: 25× the fingerprint's usual, 12.5× the user's.
    for k in 0..500 {
        let t = 300.0 + f64::from(k) / 500.0;
        events.extend(h.a.on_statement(&get.seen(&s, "app", "web"), h.at(t)));
    }
    assert_eq!(
        kinds(&events),
        [catalog::ANOMALY_RATE, catalog::ANOMALY_RATE]
    );
    let fp = &events[0];
    assert_eq!(text(fp, "scope"), "fingerprint");
    assert_eq!(fp.fingerprint, Some(get.fingerprint));
    assert!(int(fp, "per_second") > 200);
    assert_eq!(text(fp, "usual_per_second"), "20.0");
    let user = &events[1];
    assert_eq!(text(user, "scope"), "user");
    assert_eq!(text(user, "user"), "app");
    assert_eq!(user.fingerprint, None);
}

#[test]
fn rate_under_the_floor_is_quiet() {
    let h = H::new(only(|c| {
        c.rate.enabled = true;
        c.rate.warmup_seconds = 10;
    }));
    let s = session(1);
    let get = Stmt::new("SELECT 1");
    for sec in 0..100 {
        h.a.on_statement(&get.seen(&s, "app", "web"), h.at(f64::from(sec)));
    }
    // 150 in a second is 150× the usual, but under 200 a second.
    for k in 0..150 {
        let t = 100.0 + f64::from(k) / 150.0;
        assert!(
            h.a.on_statement(&get.seen(&s, "app", "web"), h.at(t))
                .is_empty()
        );
    }
}

#[test]
fn instants_out_of_order_are_safe() {
    // Threads take their Instant before they lock: a later call may carry
    // an earlier time.
    let h = H::new(AnomalyConfig::default());
    let s = session(1);
    let st = Stmt::new("SELECT * FROM t WHERE id = 1");
    for t in [10.0, 5.0, 0.0, 7.0, 3.0] {
        let mut seen = st.seen(&s, "app", "web");
        seen.rows = Some(1);
        seen.sqlstate = Some("42601");
        assert!(h.a.on_statement(&seen, h.at(t)).is_empty());
        assert!(h.a.on_auth_failed(ip("10.0.0.1"), None, h.at(t)).is_empty());
    }
    // Before the start, too.
    let early = h.t0.checked_sub(Duration::from_secs(1)).unwrap_or(h.t0);
    h.a.on_statement(&st.seen(&s, "app", "web"), early);
}

// ---------------------------------------------------------------------------
// Memory

#[test]
fn tables_are_capped() {
    let mut c = AnomalyConfig {
        max_keys: 64,
        ..AnomalyConfig::default()
    };
    c.new_fingerprint.learn_statements = 0;
    c.new_fingerprint.learn_seconds = 1;
    let h = H::new(c);
    for i in 0..5_000u32 {
        let t = h.at(f64::from(i) * 0.01);
        let addr = IpAddr::from((0x0a00_0000u32 + i).to_be_bytes());
        h.a.on_auth_failed(addr, None, t);
        h.a.on_tls_failed(addr, None, t);
        let s = session(u64::from(i));
        h.a.on_connect(
            &ConnectInfo {
                user: &format!("u{i}"),
                application: "x",
                source: addr,
                tls: Some("TLSv1.3"),
                session: Some(&s),
            },
            t,
        );
        let st = Stmt::new(&format!("SELECT c{i} FROM t"));
        let mut seen = st.seen(&s, "app", "x");
        seen.rows = Some(1);
        seen.sqlstate = Some("42601");
        h.a.on_statement(&seen, t);
    }
    let tracked = h.a.tracked();
    assert_eq!(tracked.len(), 11);
    for (name, n) in tracked {
        assert!(n <= 64, "{name}: {n}");
        // One user ran every statement; every other table saw 5000 keys.
        if !["new_fingerprint.users", "rate.users"].contains(&name) {
            assert!(n >= 16, "{name}: {n}: pruning keeps most");
        }
    }
}

#[test]
fn the_least_recently_used_keys_go_first() {
    let mut c = only(|c| c.auth_probe.enabled = true);
    c.max_keys = 32;
    let h = H::new(c);
    let attacker = ip("203.0.113.50");
    let mut events = Vec::new();
    for i in 0..9u32 {
        events.extend(h.a.on_auth_failed(attacker, None, h.at(f64::from(i))));
        // A flood of other sources between each of its attempts.
        for n in 0..100u32 {
            let other = IpAddr::from((0xc000_0200u32 + i * 100 + n + 1).to_be_bytes());
            events.extend(h.a.on_auth_failed(other, None, h.at(f64::from(i))));
            if n % 10 == 0 {
                events.extend(h.a.on_auth_failed(attacker, None, h.at(f64::from(i))));
            }
        }
    }
    assert_eq!(kinds(&events), [catalog::ANOMALY_AUTH_PROBE]);
    assert_eq!(text(&events[0], "source"), "203.0.113.50");
}

// ---------------------------------------------------------------------------
// Configuration

#[test]
fn config_from_toml_with_defaults() {
    let c: AnomalyConfig = toml::from_str(
        r#"
max_keys = 5000
[bulk_read]
factor = 20.0
[dump]
monitored_tables = ["public.customers"]
[rate]
enabled = false
"#,
    )
    .unwrap();
    assert_eq!(c.max_keys, 5000);
    assert_eq!(c.bulk_read.factor, 20.0);
    assert_eq!(c.bulk_read.min_rows, 1000);
    assert!(!c.rate.enabled);
    assert!(c.auth_probe.enabled);
    assert_eq!(c.auth_probe.failures, 10);
    assert_eq!(c.tls_probe.failures, 20);
    assert_eq!(
        c.error_burst.sqlstates,
        ["42601", "22P02", "42703", "42883"]
    );
    c.validate().unwrap();
    assert_eq!(
        toml::from_str::<AnomalyConfig>("").unwrap(),
        AnomalyConfig::default()
    );
    let e = toml::from_str::<AnomalyConfig>("[rate]\nfactr = 3\n").unwrap_err();
    assert!(e.to_string().contains("factr"), "{e}");
}

#[test]
fn invalid_settings_name_their_key() {
    type Change = fn(&mut AnomalyConfig);
    let cases: Vec<(Change, &str)> = vec![
        (|c| c.max_keys = 3, "max_keys"),
        (|c| c.ipv4_prefix = 33, "ipv4_prefix"),
        (|c| c.ipv6_prefix = 0, "ipv6_prefix"),
        (
            |c| {
                c.new_fingerprint.learn_statements = 0;
                c.new_fingerprint.learn_seconds = 0;
            },
            "new_fingerprint.learn_statements",
        ),
        (|c| c.error_burst.errors = 0, "error_burst.errors"),
        (
            |c| c.error_burst.sqlstates.push("4260".into()),
            "error_burst.sqlstates[4]",
        ),
        (|c| c.bulk_read.factor = 1.0, "bulk_read.factor"),
        (|c| c.bulk_read.factor = f64::NAN, "bulk_read.factor"),
        (
            |c| c.dump.monitored_tables = vec!["a.b.c".into()],
            "dump.monitored_tables[0]",
        ),
        (
            |c| c.tls_probe.window_seconds = 0,
            "tls_probe.window_seconds",
        ),
        (|c| c.rate.half_life_seconds = 0, "rate.half_life_seconds"),
        (
            |c| c.tls_downgrade.min_connections = 0,
            "tls_downgrade.min_connections",
        ),
    ];
    for (change, key) in cases {
        let mut c = AnomalyConfig::default();
        change(&mut c);
        let e = c.validate().unwrap_err();
        assert_eq!(e.key, key);
        assert!(e.to_string().starts_with(&format!("{key}: ")), "{e}");
        assert!(Anomalies::new(c, Instant::now()).is_err());
    }
}

#[test]
fn disabled_detectors_say_nothing() {
    let h = H::new(only(|_| {}));
    let s = session(1);
    for i in 0..100 {
        let t = h.at(f64::from(i) * 0.001);
        assert!(h.a.on_auth_failed(ip("10.0.0.1"), None, t).is_empty());
        assert!(h.a.on_tls_failed(ip("10.0.0.1"), None, t).is_empty());
        let st = Stmt::new("SELECT pg_catalog.pg_export_snapshot()");
        let mut seen = st.seen(&s, "app", "pg_dump");
        seen.sqlstate = Some("42601");
        seen.rows = Some(1 << 40);
        assert!(h.a.on_statement(&seen, t).is_empty());
    }
    assert!(h.a.tracked().iter().all(|(_, n)| *n == 0));
}

#[test]
fn anomalies_are_shared_between_threads() {
    fn shared<T: Send + Sync>() {}
    shared::<Anomalies>();
}
