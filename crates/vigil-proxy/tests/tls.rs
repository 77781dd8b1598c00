//! TLS on both sides of the proxy with psql as the client: optional and
//! required client TLS, client certificates and their failures, TLS towards
//! PostgreSQL and its failures, and SCRAM with TLS on both sides.

mod common;

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::time::{Duration, Instant};

use common::{Harness, field, text};
use tempfile::TempDir;
use vigil_event::{Event, Kind, catalog};
use vigil_proxy::{
    ClientCertMode, ClientTls, ClientTlsMode, Gauges, ProxyConfig, UpstreamTls, UpstreamTlsMode,
};
use vigil_testkit::pki::{CertPaths, Pki};
use vigil_testkit::postgres::{Auth, PgServer, ServerTls};

/// What psql prints when vigil cannot reach PostgreSQL.
const UPSTREAM_ERROR: &str = "vigil cannot connect to the database server";

/// A test CA in its own temporary directory.
struct Certs {
    pki: Pki,
    dir: TempDir,
}

impl Certs {
    fn new() -> Certs {
        let dir = vigil_testkit::tempdir();
        let pki = Pki::new(dir.path().join("pki"));
        Certs { pki, dir }
    }

    /// A certificate for `localhost` and `127.0.0.1`, issued by the CA.
    fn localhost(&self) -> CertPaths {
        self.pki.server("localhost", &["localhost", "127.0.0.1"])
    }

    fn ca(&self) -> PathBuf {
        self.pki.ca_cert_path().to_path_buf()
    }

    /// A path in the temporary directory where no file exists.
    fn missing(&self, name: &str) -> PathBuf {
        self.dir.path().join(name)
    }
}

fn pg() -> PgServer {
    PgServer::start().expect("PostgreSQL starts")
}

/// A PostgreSQL with TLS on, serving `cert`.
fn pg_tls(cert: &CertPaths) -> PgServer {
    PgServer::builder()
        .tls(&ServerTls::new(&cert.cert, &cert.key))
        .start()
        .expect("PostgreSQL starts with TLS")
}

/// A proxy configuration in front of `pg`, without TLS.
fn config(pg: &PgServer) -> ProxyConfig {
    ProxyConfig::new(SocketAddr::from(([127, 0, 0, 1], 0)), pg.addr().to_string())
}

/// Client TLS with a certificate for `localhost` from `certs`.
fn client_tls(certs: &Certs) -> ClientTls {
    let cert = certs.localhost();
    ClientTls::new(cert.cert, cert.key)
}

/// Client TLS that requires certificates issued by the CA of `certs`.
fn client_cert_required(certs: &Certs) -> ClientTls {
    let mut tls = client_tls(certs);
    tls.client_ca = Some(certs.ca());
    tls.client_cert = ClientCertMode::Required;
    tls
}

/// Upstream TLS with `mode`, the CA `ca` and the name `server_name`.
fn upstream(mode: UpstreamTlsMode, ca: Option<&Path>, server_name: Option<&str>) -> UpstreamTls {
    let mut tls = UpstreamTls::default();
    tls.mode = mode;
    tls.ca_file = ca.map(Path::to_path_buf);
    tls.server_name = server_name.map(str::to_owned);
    tls
}

/// psql through the proxy with `sslmode` (and more libpq variables in
/// `env`), running `sql`.
fn psql(h: &Harness, pg: &PgServer, sslmode: &str, env: &[(&str, &Path)], sql: &str) -> Output {
    let mut cmd: Command = h.psql(pg);
    cmd.env("PGSSLMODE", sslmode);
    for (key, value) in env {
        cmd.env(key, value);
    }
    cmd.args(["-c", sql]).output().expect("psql runs")
}

/// `out` succeeded; its standard output, trimmed.
fn ok(out: &Output) -> String {
    assert!(out.status.success(), "psql failed:\n{}", text(out));
    String::from_utf8_lossy(&out.stdout).trim().to_owned()
}

/// `out` failed; its standard error.
fn failed(out: &Output) -> String {
    assert!(!out.status.success(), "psql succeeded:\n{}", text(out));
    String::from_utf8_lossy(&out.stderr).into_owned()
}

/// Waits until `n` events of `kind` arrived (up to 10 s); returns them all.
fn wait_count(h: &mut Harness, kind: Kind, n: usize) -> Vec<Event> {
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let found = h.of(kind);
        if found.len() >= n {
            return found;
        }
        assert!(
            Instant::now() < deadline,
            "{} of {n} events {} within 10 s; got:\n{}",
            found.len(),
            kind.name(),
            h.dump()
        );
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// The session id of `e`.
fn session_id(e: &Event) -> u64 {
    e.session.as_ref().expect("the event has a session").id
}

#[test]
fn optional_client_tls_serves_tls_and_plain_clients() {
    let certs = Certs::new();
    let pg = pg();
    let mut cfg = config(&pg);
    cfg.client_tls = Some(client_tls(&certs));
    let mut h = Harness::start(cfg);

    let out = psql(&h, &pg, "require", &[], "SELECT 1");
    assert_eq!(ok(&out), "1");
    let connected = wait_count(&mut h, catalog::CLIENT_CONNECTED, 1);
    let s = connected[0].session.as_ref().expect("session");
    assert_eq!(s.tls_version.as_deref(), Some("TLSv1.3"));
    let cipher = s.tls_cipher.as_deref().unwrap_or("");
    assert!(cipher.starts_with("TLS13_"), "cipher {cipher:?}");
    assert_eq!(s.client_identity, None);
    assert!(
        connected[0].message.contains("over TLSv1.3"),
        "{}",
        connected[0].message
    );

    // verify-full: the proxy's certificate chains to the CA and carries the
    // name psql connects to; hostaddr keeps the connection on 127.0.0.1.
    let ca = certs.ca();
    let out = psql(
        &h,
        &pg,
        "verify-full",
        &[
            ("PGSSLROOTCERT", &ca),
            ("PGHOST", Path::new("localhost")),
            ("PGHOSTADDR", Path::new("127.0.0.1")),
        ],
        "SELECT 2",
    );
    assert_eq!(ok(&out), "2");
    let connected = wait_count(&mut h, catalog::CLIENT_CONNECTED, 2);
    let s = connected[1].session.as_ref().expect("session");
    assert_eq!(s.tls_version.as_deref(), Some("TLSv1.3"));

    let out = psql(&h, &pg, "disable", &[], "SELECT 3");
    assert_eq!(ok(&out), "3");
    let connected = wait_count(&mut h, catalog::CLIENT_CONNECTED, 3);
    let s = connected[2].session.as_ref().expect("session");
    assert_eq!(s.tls_version, None);
    assert_eq!(s.tls_cipher, None);
    assert!(
        connected[2].message.contains("without TLS"),
        "{}",
        connected[2].message
    );

    let tls_failures: Vec<Event> = h
        .drain()
        .iter()
        .filter(|e| (1200..=1208).contains(&e.kind.code()))
        .cloned()
        .collect();
    assert!(tls_failures.is_empty(), "{}", h.dump());
    assert_eq!(wait_count(&mut h, catalog::AUTH_SUCCEEDED, 3).len(), 3);
}

#[test]
fn required_client_tls_refuses_plain_clients() {
    let certs = Certs::new();
    let pg = pg();
    let mut tls = client_tls(&certs);
    tls.mode = ClientTlsMode::Require;
    let mut cfg = config(&pg);
    cfg.client_tls = Some(tls);
    let mut h = Harness::start(cfg);

    let err = failed(&psql(&h, &pg, "disable", &[], "SELECT 1"));
    assert!(err.contains("TLS"), "{err}");
    let refused = h.wait_kind(catalog::TLS_CLIENT_REQUIRED);
    let s = refused.session.as_ref().expect("session");
    assert_eq!(s.tls_version, None);
    assert_eq!(s.db_user.as_deref(), Some("postgres"));
    assert!(h.of(catalog::AUTH_SUCCEEDED).is_empty(), "{}", h.dump());

    let out = psql(&h, &pg, "require", &[], "SELECT 1");
    assert_eq!(ok(&out), "1");
    let auth = h.wait_kind(catalog::AUTH_SUCCEEDED);
    let s = auth.session.as_ref().expect("session");
    assert_eq!(s.tls_version.as_deref(), Some("TLSv1.3"));
    assert_eq!(h.of(catalog::TLS_CLIENT_REQUIRED).len(), 1);
}

#[test]
fn client_certificate_identity_is_on_every_event_of_the_session() {
    let certs = Certs::new();
    let pg = pg();
    let mut cfg = config(&pg);
    cfg.client_tls = Some(client_cert_required(&certs));
    let mut h = Harness::start(cfg);

    let app = certs.pki.client("app-7");
    let out = psql(
        &h,
        &pg,
        "require",
        &[("PGSSLCERT", &app.cert), ("PGSSLKEY", &app.key)],
        "CREATE TABLE t (n int); INSERT INTO t VALUES (1); SELECT n FROM t",
    );
    assert_eq!(ok(&out), "1");
    let done = h.wait_kind(catalog::CLIENT_DISCONNECTED);
    let id = session_id(&done);
    let events: Vec<Event> = h
        .drain()
        .iter()
        .filter(|e| e.session.as_ref().is_some_and(|s| s.id == id))
        .cloned()
        .collect();
    for kind in [
        catalog::CLIENT_CONNECTED,
        catalog::AUTH_SUCCEEDED,
        catalog::STATEMENT_EXECUTED,
        catalog::CLIENT_DISCONNECTED,
    ] {
        assert!(
            events.iter().any(|e| e.kind == kind),
            "no {} in the session:\n{}",
            kind.name(),
            h.dump()
        );
    }
    assert_eq!(
        events
            .iter()
            .filter(|e| e.kind == catalog::STATEMENT_EXECUTED)
            .count(),
        3,
        "{}",
        h.dump()
    );
    for e in &events {
        let s = e.session.as_ref().expect("session");
        assert_eq!(
            s.client_identity.as_deref(),
            Some("CN=app-7"),
            "{}: {}",
            e.kind.name(),
            e.message
        );
        assert_eq!(s.tls_version.as_deref(), Some("TLSv1.3"));
    }
}

#[test]
fn client_certificate_failures_each_have_their_event() {
    let certs = Certs::new();
    let pg = pg();
    let mut cfg = config(&pg);
    cfg.client_tls = Some(client_cert_required(&certs));
    let mut h = Harness::start(cfg);

    let expired = certs.pki.expired_client("app-7");
    let stranger = certs.pki.other_ca().client("app-7");
    let cases = [
        (
            "no certificate",
            (certs.missing("none.crt"), certs.missing("none.key")),
            catalog::TLS_CLIENT_CERT_MISSING,
        ),
        (
            "an expired certificate",
            (expired.cert, expired.key),
            catalog::TLS_CLIENT_CERT_EXPIRED,
        ),
        (
            "a certificate from another CA",
            (stranger.cert, stranger.key),
            catalog::TLS_CLIENT_CERT_UNKNOWN_CA,
        ),
    ];
    for (what, (cert, key), kind) in &cases {
        let out = psql(
            &h,
            &pg,
            "require",
            &[("PGSSLCERT", cert), ("PGSSLKEY", key)],
            "SELECT 1",
        );
        assert!(
            !out.status.success(),
            "psql with {what} succeeded:\n{}",
            text(&out)
        );
        // In TLS 1.3 psql sends its startup message before the proxy has
        // checked the certificate: the event comes once the proxy has.
        let e = h.wait_kind(*kind);
        assert!(
            field(&e, "client").is_some_and(|c| c.starts_with("127.0.0.1:")),
            "{what}: {}",
            h.dump()
        );
        assert!(
            field(&e, "reason").is_some_and(|r| !r.is_empty()),
            "{what}: {}",
            h.dump()
        );
    }
    for (what, _, kind) in &cases {
        assert_eq!(h.of(*kind).len(), 1, "{what}: {}", h.dump());
    }
    assert!(
        h.of(catalog::CLIENT_CONNECTED).is_empty(),
        "a session started without a valid certificate:\n{}",
        h.dump()
    );
    let metrics = h.metrics.render(&Gauges {
        events_dropped: 0,
        audit_queue: 0,
        last_checkpoint_age: None,
        audit_ok: true,
        sinks: Vec::new(),
    });
    assert!(
        metrics.lines().any(|l| l == "vigil_tls_failures_total 3"),
        "{metrics}"
    );
}

#[test]
fn upstream_verify_full_carries_queries_over_tls() {
    let certs = Certs::new();
    let pg = pg_tls(&certs.localhost());
    let ca = certs.ca();
    let mut cfg = config(&pg);
    cfg.upstream_tls = upstream(UpstreamTlsMode::VerifyFull, Some(&ca), Some("localhost"));
    let mut h = Harness::start(cfg);

    let out = psql(
        &h,
        &pg,
        "disable",
        &[],
        "SELECT ssl, version FROM pg_stat_ssl WHERE pid = pg_backend_pid()",
    );
    assert_eq!(ok(&out), "t|TLSv1.3");
    let started = h.wait_kind(catalog::LISTENER_STARTED);
    assert_eq!(field(&started, "upstream_tls"), Some("verify-full"));
    let auth = h.wait_kind(catalog::AUTH_SUCCEEDED);
    assert_eq!(auth.session.as_ref().expect("session").tls_version, None);
    let stmt = h.wait_kind(catalog::STATEMENT_EXECUTED);
    assert_eq!(field(&stmt, "class"), Some("read"));
}

/// A proxy with `tls` towards `pg` refuses a psql session: psql gets an
/// error, and the proxy reports `kind` and no authentication.
fn upstream_refused(pg: &PgServer, tls: UpstreamTls, kind: Kind) -> Event {
    let mut cfg = config(pg);
    cfg.upstream_tls = tls;
    let mut h = Harness::start(cfg);
    let err = failed(&psql(&h, pg, "disable", &[], "SELECT 1"));
    assert!(err.contains(UPSTREAM_ERROR), "{err}");
    let e = h.wait_kind(kind);
    assert_eq!(
        field(&e, "upstream"),
        Some(pg.addr().to_string().as_str()),
        "{}",
        h.dump()
    );
    assert!(
        field(&e, "reason").is_some_and(|r| !r.is_empty()),
        "{}",
        h.dump()
    );
    let done = h.wait_kind(catalog::CLIENT_DISCONNECTED);
    assert_eq!(session_id(&done), session_id(&e));
    assert!(h.of(catalog::AUTH_SUCCEEDED).is_empty(), "{}", h.dump());
    let tls_events = h
        .drain()
        .iter()
        .filter(|e| (1220..=1228).contains(&e.kind.code()))
        .count();
    assert_eq!(tls_events, 1, "{}", h.dump());
    e
}

#[test]
fn upstream_expired_certificate_is_refused() {
    let certs = Certs::new();
    let pg = pg_tls(
        &certs
            .pki
            .expired_server("localhost", &["localhost", "127.0.0.1"]),
    );
    let ca = certs.ca();
    upstream_refused(
        &pg,
        upstream(UpstreamTlsMode::VerifyFull, Some(&ca), Some("localhost")),
        catalog::TLS_DATABASE_CERT_EXPIRED,
    );
}

#[test]
fn upstream_not_yet_valid_certificate_is_refused() {
    let certs = Certs::new();
    let pg = pg_tls(
        &certs
            .pki
            .not_yet_valid_server("localhost", &["localhost", "127.0.0.1"]),
    );
    let ca = certs.ca();
    upstream_refused(
        &pg,
        upstream(UpstreamTlsMode::VerifyFull, Some(&ca), Some("localhost")),
        catalog::TLS_DATABASE_CERT_NOT_YET_VALID,
    );
}

#[test]
fn upstream_certificate_for_another_name_is_refused() {
    let certs = Certs::new();
    let pg = pg_tls(&certs.localhost());
    let ca = certs.ca();
    upstream_refused(
        &pg,
        upstream(UpstreamTlsMode::VerifyFull, Some(&ca), Some("db.example")),
        catalog::TLS_DATABASE_NAME_MISMATCH,
    );
}

#[test]
fn upstream_certificate_from_an_unknown_ca_is_refused() {
    let certs = Certs::new();
    let other = certs.pki.other_ca();
    let pg = pg_tls(&other.server("localhost", &["localhost", "127.0.0.1"]));
    let ca = certs.ca();
    upstream_refused(
        &pg,
        upstream(UpstreamTlsMode::VerifyFull, Some(&ca), Some("localhost")),
        catalog::TLS_DATABASE_CERT_UNKNOWN_CA,
    );
}

#[test]
fn upstream_without_tls_is_refused_when_tls_is_required() {
    let pg = pg();
    let e = upstream_refused(
        &pg,
        upstream(UpstreamTlsMode::Require, None, None),
        catalog::TLS_DATABASE_UNSUPPORTED,
    );
    assert_eq!(e.kind.name(), "tls.database_tls_refused");
}

#[test]
fn upstream_without_tls_is_used_in_clear_when_tls_is_preferred() {
    let pg = pg();
    let mut cfg = config(&pg);
    cfg.upstream_tls = upstream(UpstreamTlsMode::Prefer, None, None);
    let mut h = Harness::start(cfg);
    let out = psql(
        &h,
        &pg,
        "disable",
        &[],
        "SELECT ssl FROM pg_stat_ssl WHERE pid = pg_backend_pid()",
    );
    assert_eq!(ok(&out), "f");
    h.wait_kind(catalog::AUTH_SUCCEEDED);
    h.wait_kind(catalog::CLIENT_DISCONNECTED);
    let tls_events = h
        .drain()
        .iter()
        .filter(|e| (1200..=1228).contains(&e.kind.code()))
        .count();
    assert_eq!(tls_events, 0, "{}", h.dump());
}

/// The SCRAM user of [`Scram`].
const SCRAM_USER: &str = "alice";
/// Its password.
const SCRAM_PASSWORD: &str = "correct horse battery staple";

/// PostgreSQL with SCRAM and TLS (so it offers SCRAM-SHA-256-PLUS), and a
/// proxy with client TLS and `verify-full` towards it.
struct Scram {
    h: Harness,
    pg: PgServer,
    _certs: Certs,
}

impl Scram {
    /// PostgreSQL serves `pg_cert`; the proxy serves `proxy_cert` to clients.
    fn start(certs: Certs, pg_cert: &CertPaths, proxy_cert: &CertPaths) -> Scram {
        let pg = PgServer::builder()
            .auth(Auth::ScramSha256)
            .tls(&ServerTls::new(&pg_cert.cert, &pg_cert.key))
            .start()
            .expect("PostgreSQL starts with TLS and SCRAM");
        pg.create_user(SCRAM_USER, SCRAM_PASSWORD)
            .expect("create the user");
        let ca = certs.ca();
        let mut cfg = config(&pg);
        cfg.client_tls = Some(ClientTls::new(&proxy_cert.cert, &proxy_cert.key));
        cfg.upstream_tls = upstream(UpstreamTlsMode::VerifyFull, Some(&ca), Some("localhost"));
        let h = Harness::start(cfg);
        Scram {
            h,
            pg,
            _certs: certs,
        }
    }

    /// psql as the SCRAM user over TLS with `channel_binding`, through the
    /// proxy or (`direct`) straight to PostgreSQL.
    fn psql(&self, channel_binding: &str, direct: bool) -> Output {
        let mut cmd = if direct {
            self.pg.psql_command()
        } else {
            self.h.psql(&self.pg)
        };
        cmd.env("PGUSER", SCRAM_USER)
            .env("PGPASSWORD", SCRAM_PASSWORD)
            .env("PGSSLMODE", "require")
            .env("PGCHANNELBINDING", channel_binding)
            .args(["-c", "SELECT current_user"])
            .output()
            .expect("psql runs")
    }
}

#[test]
fn scram_through_tls_on_both_sides() {
    let certs = Certs::new();
    let pg_cert = certs.localhost();
    let proxy_cert = certs.localhost();
    let mut t = Scram::start(certs, &pg_cert, &proxy_cert);

    // Straight to PostgreSQL, channel binding works: it offers
    // SCRAM-SHA-256-PLUS over TLS.
    assert_eq!(ok(&t.psql("require", true)), SCRAM_USER);

    let out = t.psql("disable", false);
    assert_eq!(ok(&out), SCRAM_USER);
    let auth = t.h.wait_kind(catalog::AUTH_SUCCEEDED);
    assert_eq!(field(&auth, "method"), Some("scram-sha-256"));
    let s = auth.session.as_ref().expect("session");
    assert_eq!(s.db_user.as_deref(), Some(SCRAM_USER));
    assert_eq!(s.tls_version.as_deref(), Some("TLSv1.3"));

    // The client's TLS ends at vigil: channel binding binds to vigil's
    // certificate, which PostgreSQL cannot check against its own, so vigil
    // removes SCRAM-SHA-256-PLUS from the offer. A client that requires
    // channel binding gives up.
    let err = failed(&t.psql("require", false));
    assert!(err.contains("channel binding"), "{err}");

    // A client that would use channel binding over its TLS but finds no
    // -PLUS mechanism says so in its first SCRAM message (gs2 flag "y");
    // PostgreSQL, itself on TLS and offering -PLUS, takes that as a
    // downgrade and refuses the authentication.
    let err = failed(&t.psql("prefer", false));
    assert!(err.contains("channel binding"), "{err}");
    let refused = t.h.wait_kind(catalog::AUTH_FAILED);
    assert_eq!(field(&refused, "method"), Some("scram-sha-256"));

    wait_count(&mut t.h, catalog::CLIENT_DISCONNECTED, 3);
    assert_eq!(t.h.of(catalog::AUTH_SUCCEEDED).len(), 1, "{}", t.h.dump());
}

#[test]
fn scram_channel_binding_through_tls_with_the_same_certificate() {
    // tls-server-end-point binds to the server certificate: when vigil
    // serves clients the certificate PostgreSQL serves vigil, the binding
    // the client computes is the one PostgreSQL checks.
    let certs = Certs::new();
    let shared = certs.localhost();
    let mut t = Scram::start(certs, &shared, &shared);
    for binding in ["prefer", "require"] {
        let out = t.psql(binding, false);
        assert_eq!(ok(&out), SCRAM_USER, "channel_binding={binding}");
    }
    let auths = wait_count(&mut t.h, catalog::AUTH_SUCCEEDED, 2);
    assert!(
        auths
            .iter()
            .all(|e| field(e, "method") == Some("scram-sha-256")),
        "{}",
        t.h.dump()
    );
}

#[test]
fn a_client_offering_only_an_old_tls_version_is_refused_with_its_event() {
    let certs = Certs::new();
    let pg = pg();
    let mut cfg = config(&pg);
    cfg.client_tls = Some(client_tls(&certs));
    let mut h = Harness::start(cfg);
    // openssl's client, asking for TLS 1.1 only (rustls speaks 1.2 and 1.3).
    let out = Command::new("openssl")
        .args([
            "s_client",
            "-connect",
            &h.addr.to_string(),
            "-starttls",
            "postgres",
        ])
        .args(["-tls1_1", "-cipher", "DEFAULT:@SECLEVEL=0"])
        .stdin(std::process::Stdio::null())
        .output()
        .expect("openssl runs");
    assert!(!out.status.success(), "{}", text(&out));
    let e = h.wait_kind(catalog::TLS_CLIENT_PROTOCOL_REJECTED);
    assert!(
        field(&e, "reason").is_some_and(|r| !r.is_empty()),
        "{}",
        h.dump()
    );
    // TLS 1.2 is accepted.
    let out = Command::new("openssl")
        .args([
            "s_client",
            "-connect",
            &h.addr.to_string(),
            "-starttls",
            "postgres",
        ])
        .arg("-tls1_2")
        .stdin(std::process::Stdio::null())
        .output()
        .expect("openssl runs");
    assert!(
        String::from_utf8_lossy(&out.stdout).contains("Protocol  : TLSv1.2")
            || String::from_utf8_lossy(&out.stdout).contains("TLSv1.2"),
        "{}",
        text(&out)
    );
    assert_eq!(
        h.of(catalog::TLS_CLIENT_PROTOCOL_REJECTED).len(),
        1,
        "{}",
        h.dump()
    );
}

#[test]
fn a_database_speaking_only_an_old_tls_version_is_refused_with_its_event() {
    let certs = Certs::new();
    let cert = certs.localhost();
    let pg = PgServer::builder()
        .tls(&ServerTls::new(&cert.cert, &cert.key))
        .setting("ssl_min_protocol_version", "TLSv1")
        .setting("ssl_max_protocol_version", "TLSv1.1")
        .setting("ssl_ciphers", "DEFAULT:@SECLEVEL=0")
        .start()
        .expect("PostgreSQL starts with TLS 1.1 only");
    let e = upstream_refused(
        &pg,
        upstream(UpstreamTlsMode::Require, None, None),
        catalog::TLS_DATABASE_PROTOCOL_REJECTED,
    );
    assert!(
        field(&e, "reason").is_some_and(|r| r.contains("alert")),
        "{e:?}"
    );
}

#[test]
fn direct_tls_without_sslrequest_is_served() {
    use rustls::pki_types::pem::PemObject;
    use tokio::io::{AsyncReadExt, AsyncWriteExt};

    let certs = Certs::new();
    let pg = pg();
    let mut cfg = config(&pg);
    cfg.client_tls = Some(client_tls(&certs));
    let mut h = Harness::start(cfg);
    let mut roots = rustls::RootCertStore::empty();
    for cert in rustls::pki_types::CertificateDer::pem_file_iter(certs.ca()).expect("ca") {
        roots.add(cert.expect("pem")).expect("root");
    }
    let provider = std::sync::Arc::new(rustls::crypto::ring::default_provider());
    let mut tls = rustls::ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .expect("versions")
        .with_root_certificates(roots)
        .with_no_client_auth();
    // PostgreSQL 17's direct TLS: a ClientHello first, ALPN "postgresql".
    tls.alpn_protocols = vec![b"postgresql".to_vec()];
    let addr = h.addr;
    let answer = h.rt.block_on(async move {
        let tcp = tokio::net::TcpStream::connect(addr).await.expect("connect");
        let name = rustls::pki_types::ServerName::try_from("localhost").expect("name");
        let mut s = tokio_rustls::TlsConnector::from(std::sync::Arc::new(tls))
            .connect(name, tcp)
            .await
            .expect("direct TLS handshake");
        assert_eq!(s.get_ref().1.alpn_protocol(), Some(&b"postgresql"[..]));
        let params = b"user\0postgres\0database\0postgres\0\0";
        let mut startup = Vec::new();
        startup.extend_from_slice(&((8 + params.len()) as u32).to_be_bytes());
        startup.extend_from_slice(&196_608u32.to_be_bytes());
        startup.extend_from_slice(params);
        s.write_all(&startup).await.expect("startup");
        let mut seen = Vec::new();
        let mut buf = [0u8; 4096];
        while !seen.windows(6).any(|w| w == b"Z\0\0\0\x05I") {
            let n = s.read(&mut buf).await.expect("read");
            assert!(n > 0, "closed before ReadyForQuery");
            seen.extend_from_slice(&buf[..n]);
        }
        s.write_all(b"X\0\0\0\x04").await.expect("terminate");
        seen
    });
    assert!(
        answer.starts_with(b"R\0\0\0\x08\0\0\0\0"),
        "AuthenticationOk first"
    );
    let connected = h.wait_kind(catalog::CLIENT_CONNECTED);
    let s = connected.session.as_ref().expect("session");
    assert_eq!(s.tls_version.as_deref(), Some("TLSv1.3"));
    h.wait_kind(catalog::AUTH_SUCCEEDED);
}
