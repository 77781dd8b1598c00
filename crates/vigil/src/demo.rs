//! `vigil demo`: a representative set of events, as a short story of one
//! proxy instance: start, a TLS client's session with statements, a failed
//! login, a certificate problem, an injection attempt, a poison record read,
//! and shutdown.

use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::sync::Arc;

use vigil_event::{Event, Session, Severity, catalog};

const LISTEN: SocketAddr = SocketAddr::new(IpAddr::V4(Ipv4Addr::LOCALHOST), 9393);

/// The demo's events, in the order they happen.
pub(crate) fn events() -> Vec<Event> {
    let session = Arc::new(Session {
        id: 1,
        client: Some(SocketAddr::new(
            IpAddr::V4(Ipv4Addr::new(10, 0, 4, 17)),
            51234,
        )),
        server: Some(LISTEN),
        client_identity: Some("CN=billing-api,O=Example Corp".into()),
        db_user: Some("billing".into()),
        database: Some("shop".into()),
        application: Some("billing-api".into()),
        tls_version: Some("TLSv1.3".into()),
        tls_cipher: Some("TLS13_AES_256_GCM_SHA384".into()),
    });
    let intruder = Arc::new(Session {
        id: 2,
        client: Some(SocketAddr::new(
            IpAddr::V4(Ipv4Addr::new(203, 0, 113, 9)),
            40022,
        )),
        server: Some(LISTEN),
        db_user: Some("report".into()),
        database: Some("shop".into()),
        application: Some("psql".into()),
        ..Session::default()
    });
    let version = env!("CARGO_PKG_VERSION");
    vec![
        Event::new(catalog::SERVICE_STARTED, format!("vigil {version} started"))
            .field("version", version)
            .field("pid", std::process::id()),
        Event::new(catalog::CONFIG_VALID, "configuration is valid").field("file", "(defaults)"),
        Event::new(
            catalog::KEYS_MASTER_LOADED,
            "master key loaded from the environment",
        )
        .field("source", "env")
        .field("variable", "VIGIL_MASTER_KEY"),
        Event::new(
            catalog::LISTENER_STARTED,
            "listening on 127.0.0.1:9393, TLS required",
        )
        .field("address", "127.0.0.1:9393")
        .field("tls", true),
        Event::new(catalog::CLIENT_CONNECTED, "client connected").session(session.clone()),
        Event::new(catalog::AUTH_SUCCEEDED, "authentication succeeded")
            .session(session.clone())
            .field("method", "scram-sha-256"),
        Event::new(catalog::STATEMENT_EXECUTED, "statement executed")
            .session(session.clone())
            .fingerprint(0x5e1e_c7a1_d0c2_9b3f)
            .field(
                "query",
                "SELECT id, total FROM orders WHERE customer_id = $1 AND status = $2",
            )
            .field("class", "read")
            .field("protocol", "extended")
            .field("command", "SELECT")
            .field("rows", 3)
            .field("duration_us", 412),
        Event::new(
            catalog::STATEMENT_FAILED,
            "statement failed: duplicate key value",
        )
        .session(session.clone())
        .fingerprint(0x0b7d_4410_9ac3_e2f1)
        .field("query", "INSERT INTO customers (email) VALUES ($1)")
        .field("class", "write")
        .field("sqlstate", "23505"),
        Event::new(
            catalog::TLS_CLIENT_CERT_EXPIRED,
            "client certificate expired",
        )
        .field("client_addr", "198.51.100.23:40112")
        .field("not_after", "2026-10-31T23:59:59Z"),
        Event::new(catalog::AUTH_FAILED, "password authentication failed")
            .session(intruder.clone())
            .field("sqlstate", "28P01"),
        Event::new(catalog::ANOMALY_SQL_INJECTION, "tautology in WHERE clause")
            .session(intruder.clone())
            .fingerprint(0x9f3a_0c6e_1d2b_7c44)
            .field("query", "SELECT * FROM users WHERE name = $1 OR $2 = $3")
            .field("detector", "tautology"),
        Event::new(
            catalog::POISON_ACCESSED,
            "poison record returned to a client",
        )
        .session(intruder.clone())
        .fingerprint(0x77c2_55e0_aa19_3b08)
        .field("query", "SELECT * FROM customers")
        .field("rows_seen", 1204)
        .field("action", "block"),
        Event::new(catalog::CLIENT_DISCONNECTED, "client disconnected")
            .session(session)
            .field("duration_us", 1_850_000)
            .field("bytes_in", 2_311)
            .field("bytes_out", 18_204)
            .field("statements", 2),
        Event::new(catalog::SIGNAL_SIGTERM, "SIGTERM received"),
        Event::new(catalog::SHUTDOWN_STARTED, "shutdown started").field("timeout_s", 30),
        Event::new(catalog::SHUTDOWN_COMPLETED, "shutdown completed").severity(Severity::Notice),
    ]
}
