//! Detection in the proxy against a real PostgreSQL: injection findings,
//! the firewall refusing statements in both protocols with the session
//! still usable, and the anomaly detectors fed from sessions.

#![allow(clippy::unwrap_used)] // tests may panic

mod common;

use std::sync::Arc;
use std::time::Instant;

use common::{Harness, field};
use tokio_postgres::NoTls;
use vigil_detect::anomaly::{Anomalies, AnomalyConfig};
use vigil_detect::firewall::Firewall;
use vigil_event::catalog;
use vigil_proxy::ProxyConfig;
use vigil_testkit::postgres::PgServer;

fn config(pg: &PgServer) -> ProxyConfig {
    ProxyConfig::new("127.0.0.1:0".parse().unwrap(), pg.addr().to_string())
}

fn connect(h: &Harness) -> tokio_postgres::Client {
    let dsn = format!(
        "host=127.0.0.1 port={} user=postgres password={} dbname=postgres",
        h.addr.port(),
        vigil_testkit::postgres::SUPERUSER_PASSWORD
    );
    h.rt.block_on(async {
        let (client, conn) = tokio_postgres::connect(&dsn, NoTls).await.unwrap();
        tokio::spawn(conn);
        client
    })
}

#[test]
fn injection_shapes_are_reported_and_ordinary_queries_are_not() {
    let pg = PgServer::start().unwrap();
    pg.psql("CREATE TABLE users (id int, name text); INSERT INTO users VALUES (1, 'ann')")
        .unwrap();
    let mut cfg = config(&pg);
    cfg.detection.application_roles = vec!["postgres".into()];
    let mut h = Harness::start(cfg);
    h.sql(&pg, "SELECT id FROM users WHERE name = 'ann'");
    h.sql(&pg, "SELECT id FROM users WHERE name = 'x' OR 'a'='a'");
    let found = h.wait_kind(catalog::ANOMALY_SQL_INJECTION);
    assert_eq!(field(&found, "rule"), Some("tautology"), "{}", h.dump());
    assert!(found.message.contains("$1"), "{}", found.message);
    h.wait_for("the second statement", |e| {
        e.kind == catalog::STATEMENT_EXECUTED && e.message.contains("OR")
    });
    assert_eq!(
        h.of(catalog::ANOMALY_SQL_INJECTION).len(),
        1,
        "{}",
        h.dump()
    );
    let _ = h.sql(&pg, "SELECT pg_sleep(0)");
    h.wait_for("pg_sleep", |e| {
        e.kind == catalog::ANOMALY_SQL_INJECTION && field(e, "rule") == Some("time_function")
    });
    assert!(!h.dump().contains("'a'"), "a literal leaked:\n{}", h.dump());
}

#[test]
fn the_firewall_denies_in_both_protocols_and_the_session_goes_on() {
    let pg = PgServer::start().unwrap();
    pg.psql("CREATE TABLE vault (secret text); CREATE TABLE items (id int)")
        .unwrap();
    let dir = vigil_testkit::tempdir();
    let rules = dir.path().join("firewall.toml");
    std::fs::write(
        &rules,
        "mode = \"enforce\"\nunparsed = \"deny\"\n\n\
         [[rules]]\nname = \"no-vault\"\naction = \"deny\"\ntables = [\"vault\"]\n\n\
         [[rules]]\nname = \"rest\"\naction = \"allow\"\npattern = \"*\"\n",
    )
    .unwrap();
    let mut cfg = config(&pg);
    cfg.detection.firewall = Some(Arc::new(Firewall::load(&rules).unwrap()));
    let mut h = Harness::start(cfg);
    let client = connect(&h);
    h.rt.block_on(async {
        // Simple protocol.
        let err = client
            .simple_query("SELECT secret FROM vault")
            .await
            .unwrap_err();
        assert_eq!(err.code().unwrap().code(), "42501", "{err}");
        let ok = client.simple_query("SELECT count(*) FROM items").await;
        assert!(ok.is_ok(), "{ok:?}");
        // Extended protocol: the Parse is refused, the batch skipped to Sync.
        let err = client
            .query("SELECT secret FROM vault WHERE secret = $1", &[&"x"])
            .await
            .unwrap_err();
        assert_eq!(err.code().unwrap().code(), "42501", "{err}");
        let rows = client
            .query("SELECT count(*) FROM items WHERE id > $1", &[&0i32])
            .await
            .unwrap();
        assert_eq!(rows.len(), 1);
        // Pipelined: a denied statement between two allowed ones.
        let (a, b, c) = tokio::join!(
            client.query("SELECT 1::int", &[]),
            client.query("SELECT secret FROM vault", &[]),
            client.query("SELECT 2::int", &[]),
        );
        assert_eq!(a.unwrap()[0].get::<_, i32>(0), 1);
        assert_eq!(b.unwrap_err().code().unwrap().code(), "42501");
        assert_eq!(c.unwrap()[0].get::<_, i32>(0), 2);
    });
    let denied = h.of(catalog::STATEMENT_DENIED);
    assert_eq!(denied.len(), 3, "{}", h.dump());
    assert!(denied.iter().all(|e| field(e, "rule") == Some("no-vault")));
    // PostgreSQL never saw the denied statements.
    let seen = pg
        .psql("SELECT count(*) FROM pg_stat_user_tables WHERE relname = 'vault' AND seq_scan > 0")
        .unwrap();
    assert_eq!(seen.trim(), "0");
}

#[test]
fn anomaly_detectors_see_sessions_errors_and_failed_logins() {
    let pg = PgServer::builder()
        .auth(vigil_testkit::postgres::Auth::ScramSha256)
        .start()
        .unwrap();
    let mut settings = AnomalyConfig::default();
    settings.error_burst.errors = 3;
    settings.auth_probe.failures = 3;
    let anomalies = Arc::new(Anomalies::new(settings, Instant::now()).unwrap());
    let mut cfg = config(&pg);
    cfg.detection.anomalies = Some(anomalies);
    let mut h = Harness::start(cfg);
    let client = connect(&h);
    h.rt.block_on(async {
        for _ in 0..4 {
            let _ = client.simple_query("SELEC 1").await;
        }
    });
    h.wait_kind(catalog::ANOMALY_ERROR_BURST);
    // Wrong passwords, from one source.
    for _ in 0..4 {
        let out = h
            .psql(&pg)
            .env("PGPASSWORD", "guess")
            .args(["-c", "SELECT 1"])
            .output()
            .unwrap();
        assert!(!out.status.success());
    }
    h.wait_kind(catalog::ANOMALY_AUTH_PROBE);
}
