//! The throwaway PostgreSQL: password authentication, TLS with a test CA,
//! client certificates, and a clean stop.

use std::net::TcpStream;
use std::process::{Command, Output};

use vigil_testkit::pki::Pki;
use vigil_testkit::postgres::{Auth, PgServer, ServerTls};

/// Runs `cmd` with `sql` on its standard input.
fn run(cmd: &mut Command, sql: &str) -> Output {
    vigil_testkit::run_with_stdin(cmd, sql.as_bytes())
}

fn stderr(out: &Output) -> String {
    String::from_utf8_lossy(&out.stderr).into_owned()
}

fn stdout(out: &Output) -> String {
    String::from_utf8_lossy(&out.stdout).trim().to_owned()
}

#[test]
fn scram_needs_the_password() {
    let pg = PgServer::builder().auth(Auth::ScramSha256).start().unwrap();
    pg.create_user("alice", "correct horse").unwrap();
    assert_eq!(
        pg.psql("SELECT rolpassword LIKE 'SCRAM-SHA-256$%' FROM pg_authid WHERE rolname = 'alice'")
            .unwrap()
            .trim(),
        "t"
    );

    let out = run(pg.psql_command().env("PGUSER", "alice"), "SELECT 1");
    assert!(!out.status.success());
    assert!(
        stderr(&out).contains("no password supplied"),
        "{}",
        stderr(&out)
    );

    let out = run(
        pg.psql_command()
            .env("PGUSER", "alice")
            .env("PGPASSWORD", "wrong"),
        "SELECT 1",
    );
    assert!(!out.status.success());
    assert!(
        stderr(&out).contains("password authentication failed"),
        "{}",
        stderr(&out)
    );

    let out = run(
        pg.psql_command()
            .env("PGUSER", "alice")
            .env("PGPASSWORD", "correct horse"),
        "SELECT current_user",
    );
    assert!(out.status.success(), "{}", stderr(&out));
    assert_eq!(stdout(&out), "alice");
    assert!(pg.log().contains("password authentication failed"));
}

#[test]
fn md5_stores_md5_hashes() {
    let pg = PgServer::builder().auth(Auth::Md5).start().unwrap();
    pg.create_user("bob", "pw").unwrap();
    assert_eq!(
        pg.psql("SELECT left(rolpassword, 3) FROM pg_authid WHERE rolname = 'bob'")
            .unwrap()
            .trim(),
        "md5"
    );
    let out = run(
        pg.psql_command()
            .env("PGUSER", "bob")
            .env("PGPASSWORD", "pw"),
        "SELECT 1",
    );
    assert!(out.status.success(), "{}", stderr(&out));
}

#[test]
fn settings_addresses_and_stop() {
    let mut pg = PgServer::builder()
        .max_connections(1100)
        .setting("vigil.note", "it's set")
        .start()
        .unwrap();
    assert_eq!(pg.addr().to_string(), format!("127.0.0.1:{}", pg.port()));
    let out = pg
        .psql("SHOW max_connections; SHOW fsync; SHOW vigil.note; SHOW listen_addresses")
        .unwrap();
    assert_eq!(out, "1100\noff\nit's set\n127.0.0.1\n");
    assert!(
        pg.socket_dir()
            .join(format!(".s.PGSQL.{}", pg.port()))
            .exists()
    );
    assert_eq!(
        pg.psql_socket("SELECT current_user").unwrap().trim(),
        "postgres"
    );

    let err = pg.psql("SELECT 1; SELECT no_such_column").unwrap_err();
    assert!(err.to_string().contains("no_such_column"), "{err}");

    let data = pg.data_dir().to_path_buf();
    pg.stop();
    assert!(TcpStream::connect(pg.addr()).is_err());
    drop(pg);
    assert!(!data.exists(), "the data directory is removed");
}

#[test]
fn tls_verify_full() {
    let dir = vigil_testkit::tempdir();
    let pki = Pki::new(dir.path());
    let cert = pki.server("localhost", &["localhost", "127.0.0.1"]);
    let pg = PgServer::builder()
        .tls(&ServerTls::new(&cert.cert, &cert.key))
        .start()
        .unwrap();
    let conninfo = |root: &std::path::Path| {
        format!(
            "sslmode=verify-full sslrootcert={} host=localhost port={} user=postgres dbname=postgres",
            root.display(),
            pg.port()
        )
    };

    let out = run(
        pg.psql_command().arg(conninfo(pki.ca_cert_path())),
        "SELECT ssl FROM pg_stat_ssl WHERE pid = pg_backend_pid()",
    );
    assert!(out.status.success(), "{}", stderr(&out));
    assert_eq!(stdout(&out), "t");

    let other = pki.other_ca();
    let out = run(
        pg.psql_command().arg(conninfo(other.ca_cert_path())),
        "SELECT 1",
    );
    assert!(!out.status.success(), "an unknown CA must not verify");
    assert!(
        stderr(&out).contains("certificate verify failed"),
        "{}",
        stderr(&out)
    );
}

#[test]
fn tls_client_certificates() {
    let dir = vigil_testkit::tempdir();
    let pki = Pki::new(dir.path());
    let cert = pki.server("localhost", &["localhost", "127.0.0.1"]);
    let pg = PgServer::builder()
        .tls(&ServerTls::new(&cert.cert, &cert.key).with_client_ca(pki.ca_cert_path()))
        .hba(["hostssl all carol 127.0.0.1/32 cert"])
        .start()
        .unwrap();
    pg.psql_socket("CREATE ROLE carol LOGIN").unwrap();
    let client = pki.client("carol");
    let conninfo = format!(
        "sslmode=verify-ca sslrootcert={} sslcert={} sslkey={} user=carol",
        pki.ca_cert_path().display(),
        client.cert.display(),
        client.key.display()
    );
    let out = run(pg.psql_command().arg(&conninfo), "SELECT current_user");
    assert!(out.status.success(), "{}", stderr(&out));
    assert_eq!(stdout(&out), "carol");

    let out = run(
        pg.psql_command()
            .env("PGUSER", "carol")
            .env("PGSSLMODE", "require"),
        "SELECT 1",
    );
    assert!(!out.status.success(), "no client certificate, no entry");

    // Without a host rule for the superuser, only the socket lets it in.
    assert!(pg.psql("SELECT 1").is_err());
}

#[test]
fn a_panicking_test_leaves_nothing_running() {
    let started = std::sync::Mutex::new(None);
    let result = std::panic::catch_unwind(|| {
        let pg = PgServer::start().unwrap();
        *started.lock().unwrap() = Some((pg.addr(), pg.data_dir().to_path_buf()));
        panic!("the test fails while the server runs");
    });
    assert!(result.is_err());
    let (addr, data) = started.lock().unwrap().take().unwrap();
    assert!(TcpStream::connect(addr).is_err(), "the server is stopped");
    assert!(!data.exists(), "its directory is removed");
    let ps = Command::new("ps").args(["-eo", "args"]).output().unwrap();
    assert!(
        !String::from_utf8_lossy(&ps.stdout).contains(&data.display().to_string()),
        "no process of it is left"
    );
}
