//! `vigil demo`: the tour. A throwaway PostgreSQL, vigil in front of it
//! with TLS and a sealed audit log, a scripted session with real psql
//! (TLS, secrets in literals, a failed login, a unique violation, a wrong
//! column type), the events as they happen, then `vigil verify`.

use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::sync::Arc;
use std::time::Duration;

use anyhow::Context as _;
use base64::Engine as _;
use vigil_event::{Emitter, Filter, Format, Overflow};
use vigil_keys::{AUDIT_HMAC, CHECKPOINT_SIGNING, FileBackend, KeyStore, MasterKey};
use vigil_proxy::schema::{self, MonitoredColumn, SchemaConnect};
use vigil_proxy::{ClientTls, Metrics, Proxy, ProxyConfig, Reporter};
use vigil_seal::{SealConfig, Verifier};
use vigil_ship::{Pipeline, SinkSpec, Target};
use vigil_testkit::pki::Pki;
use vigil_testkit::postgres::{Auth, PgServer, SUPERUSER_PASSWORD};
use zeroize::Zeroizing;

const APP_PASSWORD: &str = "tour-app-password";
/// Values the session writes; none may appear in vigil's output.
const SECRETS: [&str; 3] = [
    "alice@private.example",
    "4111-1111-1111-1111",
    "s3cr3t-api-token-77",
];

/// Whether PostgreSQL's server binaries are here.
pub(crate) fn postgres_available() -> bool {
    Path::new("/usr/lib/postgresql").is_dir()
        && std::fs::read_dir("/usr/lib/postgresql")
            .map(|mut d| d.any(|e| e.is_ok_and(|e| e.path().join("bin/initdb").exists())))
            .unwrap_or(false)
}

fn say(text: &str) {
    eprintln!("\n== {text}");
}

pub(crate) fn run(format: Format) -> anyhow::Result<ExitCode> {
    let dir = vigil_testkit::tempdir();
    say("starting a throwaway PostgreSQL (SCRAM-SHA-256 passwords)");
    let pg = PgServer::builder()
        .auth(Auth::ScramSha256)
        .start()
        .context("cannot start PostgreSQL")?;
    pg.create_user("app", APP_PASSWORD)?;
    pg.psql(
        "CREATE TABLE customers (id int primary key, email text unique, card text, \
         balance numeric(12,2)); GRANT ALL ON customers TO app;",
    )?;

    // Keys under a master key made for this run.
    let mut raw = [0u8; 32];
    std::io::Read::read_exact(&mut std::fs::File::open("/dev/urandom")?, &mut raw)?;
    let master_b64 = Zeroizing::new(base64::engine::general_purpose::STANDARD.encode(raw));
    zeroize::Zeroize::zeroize(&mut raw);
    let key_dir = dir.path().join("keys");
    let audit_dir = dir.path().join("audit");
    let pki = Pki::new(dir.path().join("pki"));
    let cert = pki.server("localhost", &["localhost", "127.0.0.1"]);

    let (key_events, key_rx) = Emitter::channel(1024, Overflow::Drop);
    let master = MasterKey::from_base64(&master_b64).map_err(|e| anyhow::anyhow!("{e}"))?;
    let store = KeyStore::new(FileBackend::new(&key_dir), master, Some(key_events.clone()));
    for name in [AUDIT_HMAC, CHECKPOINT_SIGNING] {
        store.ensure(name)?;
    }
    let mut seal = SealConfig::new(&audit_dir, "demo");
    seal.checkpoint_interval = Duration::from_secs(2);
    let sealer = crate::audit_cmd::seal_with(&store, seal, &key_events)?;
    let (pipeline, emitter) = Pipeline::builder()
        .origin("demo")
        .flush_interval(Duration::from_millis(20))
        .audit(sealer)
        .sink(SinkSpec {
            name: "stdout".into(),
            target: Target::Stdout,
            format,
            filter: Filter::all(),
        })
        .start()?;
    while let Some(q) = key_rx.try_recv() {
        emitter.emit(q.event);
    }

    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()?;
    let reporter = Reporter::new(emitter.clone(), Arc::new(Metrics::new()));
    let mut config = ProxyConfig::new("127.0.0.1:0".parse()?, pg.addr().to_string());
    config.client_tls = Some(ClientTls::new(&cert.cert, &cert.key));
    say("starting vigil in front of it (TLS to clients, every statement sealed)");
    let proxy = runtime.block_on(Proxy::start(config, reporter.clone()))?;
    let port = proxy.local_addrs()[0].port();
    pause();

    say("the schema check: customers.balance is expected to be an integer");
    let connect = SchemaConnect {
        host: "127.0.0.1".into(),
        port: pg.port(),
        user: "postgres".into(),
        password: Some(SUPERUSER_PASSWORD.into()),
        database: "postgres".into(),
    };
    let columns = [
        MonitoredColumn::new("customers", "email", "text"),
        MonitoredColumn::new("customers", "balance", "integer"),
    ];
    for event in runtime.block_on(schema::check(&connect, &columns)) {
        reporter.emit(event);
    }
    pause();

    let psql = |password: &str, sql: &str| -> anyhow::Result<std::process::Output> {
        let mut cmd = pg.psql_command();
        cmd.env("PGPORT", port.to_string())
            .env("PGHOST", "localhost")
            .env("PGUSER", "app")
            .env("PGPASSWORD", password)
            .env("PGSSLMODE", "verify-full")
            .env("PGSSLROOTCERT", pki.ca_cert_path())
            .env("PGAPPNAME", "billing-api")
            .args(["-c", sql]);
        Ok(cmd.output()?)
    };
    say("app connects over TLS and writes customers: the literals never reach the log");
    let out = psql(
        APP_PASSWORD,
        &format!(
            "INSERT INTO customers VALUES (1, '{}', '{}', 120.50); \
             SELECT id, balance FROM customers WHERE email = '{}'; \
             UPDATE customers SET card = '{}' WHERE id = 1",
            SECRETS[0], SECRETS[1], SECRETS[0], SECRETS[2]
        ),
    )?;
    anyhow::ensure!(
        out.status.success(),
        "psql failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    pause();

    say("a duplicate e-mail: the error's DETAIL echoes the value, vigil redacts it");
    let _ = psql(
        APP_PASSWORD,
        &format!(
            "INSERT INTO customers VALUES (2, '{}', null, 0)",
            SECRETS[0]
        ),
    )?;
    pause();

    say("someone tries a wrong password");
    let _ = psql("guess-123456", "SELECT 1")?;
    pause();

    say("shutting down; the audit log gets its final checkpoint");
    let _ = runtime.block_on(proxy.shutdown(Duration::from_secs(5)));
    drop(reporter);
    drop(emitter);
    runtime.shutdown_timeout(Duration::from_secs(1));
    pipeline.shutdown()?;

    say("vigil verify: every MAC, the chain, the Merkle tree and the signed checkpoints");
    let lookup = |v: u32| {
        store
            .load(AUDIT_HMAC, v)
            .ok()
            .map(|s| Zeroizing::new(*s.expose()))
    };
    let report = Verifier::new()
        .keys(&lookup)
        .verify(std::slice::from_ref(&audit_dir))
        .map_err(|e| anyhow::anyhow!("{e}"))?;
    let leaked = leaked_secrets(&audit_dir)?;
    if let Some(f) = &report.failure {
        eprintln!("audit log NOT verified: {f}");
    }
    eprintln!(
        "audit log verified: {} entries in {} segment(s), {} MACs and {} checkpoints checked",
        report.entries, report.segments, report.macs_checked, report.checkpoints_checked
    );
    eprintln!(
        "secrets from the session found in the audit log: {}",
        if leaked.is_empty() {
            "none".to_owned()
        } else {
            leaked.join(", ")
        }
    );
    eprintln!(
        "\nNext: `vigil serve --upstream HOST:PORT` in front of your own PostgreSQL \
         (see README.md)."
    );
    Ok(if report.verified() && leaked.is_empty() {
        ExitCode::SUCCESS
    } else {
        ExitCode::from(crate::cli::EXIT_BAD_INPUT)
    })
}

/// Lets the pipeline print what happened before the next step's title.
fn pause() {
    std::thread::sleep(Duration::from_millis(150));
}

fn leaked_secrets(audit_dir: &Path) -> anyhow::Result<Vec<String>> {
    let mut text = String::new();
    let entries: Vec<PathBuf> = std::fs::read_dir(audit_dir)?
        .filter_map(|e| e.ok().map(|e| e.path()))
        .collect();
    for path in entries {
        text.push_str(&String::from_utf8_lossy(&std::fs::read(path)?));
    }
    Ok(SECRETS
        .iter()
        .filter(|s| text.contains(**s))
        .map(|s| (*s).to_owned())
        .collect())
}
