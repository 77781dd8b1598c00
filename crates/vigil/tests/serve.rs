//! `vigil serve` as users run it: the binary in front of a throwaway
//! PostgreSQL, with its configuration file, sinks, sealed audit log, admin
//! listener, schema check and signals; then the secrets canary and
//! `vigil verify` over what it wrote.

#![allow(clippy::unwrap_used)] // tests may panic

use std::fmt::Write as _;
use std::io::{Read, Write};
use std::net::TcpStream;
use std::path::Path;
use std::process::{Child, Command};
use std::time::{Duration, Instant};

use vigil_testkit::postgres::{PgServer, SUPERUSER_PASSWORD};

const MASTER: &str = "dmlnaWwtc2VydmUtdGVzdC1tYXN0ZXIta2V5LTMyYmI="; // 32 bytes

fn vigil() -> Command {
    let mut c = Command::new(env!("CARGO_BIN_EXE_vigil"));
    c.env("VIGIL_MASTER_KEY", MASTER);
    c
}

fn wait_until(what: &str, limit: Duration, mut ok: impl FnMut() -> bool) {
    let deadline = Instant::now() + limit;
    while !ok() {
        assert!(Instant::now() < deadline, "timed out waiting for {what}");
        std::thread::sleep(Duration::from_millis(50));
    }
}

fn signal(child: &Child, name: &str) {
    let ok = Command::new("kill")
        .args([&format!("-{name}"), &child.id().to_string()])
        .status()
        .unwrap()
        .success();
    assert!(ok, "kill -{name}");
}

fn read(path: &Path) -> String {
    std::fs::read_to_string(path).unwrap_or_default()
}

fn http_get(port: u16, path: &str) -> String {
    let mut s = TcpStream::connect(("127.0.0.1", port)).unwrap();
    write!(s, "GET {path} HTTP/1.1\r\nHost: x\r\n\r\n").unwrap();
    let mut out = String::new();
    s.read_to_string(&mut out).unwrap();
    out
}

/// Every file under `dir`, recursively.
fn files(dir: &Path, out: &mut Vec<std::path::PathBuf>) {
    for entry in std::fs::read_dir(dir).unwrap() {
        let p = entry.unwrap().path();
        if p.is_dir() {
            files(&p, out);
        } else {
            out.push(p);
        }
    }
}

fn random_secrets(n: usize) -> Vec<String> {
    let mut bytes = vec![0u8; n * 12];
    std::fs::File::open("/dev/urandom")
        .unwrap()
        .read_exact(&mut bytes)
        .unwrap();
    bytes
        .chunks(12)
        .map(|c| {
            let mut s = String::from("cnry");
            for b in c {
                write!(s, "{b:02x}").unwrap();
            }
            s
        })
        .collect()
}

#[test]
fn serve_logs_seals_reloads_rotates_stops_and_leaks_nothing() {
    let pg = PgServer::start().unwrap();
    pg.psql("CREATE TABLE vault (id int primary key, secret text, amount numeric(12,2))")
        .unwrap();
    let dir = vigil_testkit::tempdir();
    let data = dir.path().join("data");
    let port = vigil_testkit::free_port();
    let admin = vigil_testkit::free_port();
    let config = dir.path().join("vigil.toml");
    let write_config = |coverage: &str, broken: bool| {
        let text = format!(
            r#"
[service]
origin = "serve-test"
data_dir = "{data}"

[proxy]
listen = "127.0.0.1:{port}"
upstream = "{upstream}"
coverage = "{coverage}"
shutdown_timeout_s = 5

[admin]
listen = "127.0.0.1:{admin}"

[[sinks]]
type = "stdout"
format = "text"

[[sinks]]
type = "file"
path = "events.json"
format = "json"

[schema]
user = "postgres"
password_env = "TEST_SCHEMA_PASSWORD"

[[schema.columns]]
table = "vault"
column = "secret"
type = "text"

[[schema.columns]]
table = "vault"
column = "amount"
type = "integer"
{extra}"#,
            data = data.display(),
            upstream = pg.addr(),
            extra = if broken {
                "\n[proxy.tls]\ncert = \"\"\n"
            } else {
                ""
            },
        );
        std::fs::write(&config, text).unwrap();
    };
    write_config("all", false);
    let stdout = dir.path().join("stdout.txt");
    let stderr = dir.path().join("stderr.txt");
    let mut child = vigil()
        .args(["serve", "--config"])
        .arg(&config)
        .env("TEST_SCHEMA_PASSWORD", SUPERUSER_PASSWORD)
        .stdout(std::fs::File::create(&stdout).unwrap())
        .stderr(std::fs::File::create(&stderr).unwrap())
        .spawn()
        .unwrap();
    wait_until("the listener", Duration::from_secs(30), || {
        TcpStream::connect(("127.0.0.1", port)).is_ok()
    });
    wait_until("the schema check", Duration::from_secs(10), || {
        read(&stdout).contains("schema.checked")
    });
    let out = read(&stdout);
    assert!(out.contains("listener.started"), "{out}");
    assert!(
        out.contains("schema.wrong_column_type") && out.contains("vault.amount"),
        "{out}"
    );

    // 1,000 secrets in, and each selected back by value.
    let secrets = random_secrets(1000);
    let mut sql = String::new();
    for (i, s) in secrets.iter().enumerate() {
        writeln!(sql, "INSERT INTO vault VALUES ({i}, '{s}', {i}.25);").unwrap();
    }
    for s in &secrets {
        writeln!(sql, "SELECT id FROM vault WHERE secret = '{s}';").unwrap();
    }
    let script = dir.path().join("canary.sql");
    std::fs::write(&script, &sql).unwrap();
    let run = pg
        .psql_command()
        .env("PGPORT", port.to_string())
        .env("PGPASSWORD", SUPERUSER_PASSWORD)
        .arg("-f")
        .arg(&script)
        .output()
        .unwrap();
    assert!(
        run.status.success(),
        "{}",
        String::from_utf8_lossy(&run.stderr)
    );
    assert_eq!(String::from_utf8_lossy(&run.stdout).lines().count(), 1000);
    wait_until("the statements on stdout", Duration::from_secs(20), || {
        read(&stdout).matches("statement.executed").count() >= 2000
    });
    let metrics = http_get(admin, "/metrics");
    assert!(
        metrics.contains("vigil_statements_total{class=\"write\"} 1000"),
        "{metrics}"
    );
    assert!(
        metrics.contains("vigil_statements_total{class=\"read\"} 1000"),
        "{metrics}"
    );
    assert!(http_get(admin, "/healthz").starts_with("HTTP/1.1 200"));

    // SIGHUP with a broken file keeps the running configuration.
    write_config("ddl", true);
    signal(&child, "HUP");
    wait_until("config.reload_failed", Duration::from_secs(10), || {
        read(&stdout).contains("config.reload_failed")
    });
    assert!(
        read(&stdout).contains("proxy.tls.cert"),
        "the reason names the key"
    );
    // A valid one is taken: coverage ddl drops reads from now on.
    write_config("ddl", false);
    signal(&child, "HUP");
    wait_until("config.reloaded", Duration::from_secs(10), || {
        read(&stdout).contains("config.reloaded")
    });
    let before = read(&stdout).matches("statement.executed").count();
    let q = pg
        .psql_command()
        .env("PGPORT", port.to_string())
        .env("PGPASSWORD", SUPERUSER_PASSWORD)
        .args([
            "-c",
            "SELECT count(*) FROM vault",
            "-c",
            "CREATE TABLE later (a int)",
        ])
        .output()
        .unwrap();
    assert!(q.status.success());
    wait_until("the DDL statement", Duration::from_secs(10), || {
        read(&stdout).contains("CREATE TABLE later")
    });
    assert_eq!(
        read(&stdout).matches("statement.executed").count(),
        before + 1
    );

    // SIGUSR1 rotates the audit key; SIGTERM stops cleanly.
    signal(&child, "USR1");
    wait_until("audit.key_rotated", Duration::from_secs(10), || {
        read(&stdout).contains("audit.key_rotated")
    });
    signal(&child, "TERM");
    let deadline = Instant::now() + Duration::from_secs(20);
    let status = loop {
        if let Some(s) = child.try_wait().unwrap() {
            break s;
        }
        assert!(Instant::now() < deadline, "vigil did not stop");
        std::thread::sleep(Duration::from_millis(50));
    };
    assert!(status.success(), "exit status {status}; {}", read(&stderr));
    let out = read(&stdout);
    for name in [
        "signal.sigterm_received",
        "service.shutdown_started",
        "service.shutdown_completed",
        "audit.chain_closed",
    ] {
        assert!(out.contains(name), "no {name}:\n{out}");
    }

    // The sealed log verifies, across the rotation.
    let verify = vigil()
        .args(["verify", "--key-dir"])
        .arg(data.join("keys"))
        .arg(data.join("audit"))
        .output()
        .unwrap();
    assert!(
        verify.status.success(),
        "{}{}",
        String::from_utf8_lossy(&verify.stdout),
        String::from_utf8_lossy(&verify.stderr)
    );

    // The canary: no secret in anything vigil wrote.
    let mut written = vec![
        stdout.clone(),
        stderr.clone(),
        dir.path().join("events.json"),
    ];
    files(&data, &mut written);
    let mut scanned = 0usize;
    for path in &written {
        let bytes = std::fs::read(path).unwrap_or_default();
        scanned += bytes.len();
        let text = String::from_utf8_lossy(&bytes);
        for s in &secrets {
            assert!(
                !text.contains(s.as_str()),
                "{s} leaked into {}",
                path.display()
            );
        }
        assert!(
            !text.contains(SUPERUSER_PASSWORD),
            "password in {}",
            path.display()
        );
    }
    assert!(scanned > 500_000, "only {scanned} bytes written?");
    assert!(read(&dir.path().join("events.json")).contains("\"vault\""));
}

#[test]
fn serve_refuses_an_invalid_configuration_with_file_line_and_key() {
    let dir = vigil_testkit::tempdir();
    let config = dir.path().join("bad.toml");
    std::fs::write(
        &config,
        "[proxy]\nlisten = \"127.0.0.1:9393\"\ncoverage = \"reads\"\n",
    )
    .unwrap();
    let out = vigil()
        .args(["serve", "--config"])
        .arg(&config)
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("config.invalid"), "{err}");
    assert!(
        err.contains("bad.toml:3: proxy.coverage: unknown statement class \"reads\""),
        "{err}"
    );
}

#[test]
fn serve_without_a_master_key_says_what_to_do() {
    let dir = vigil_testkit::tempdir();
    let out = Command::new(env!("CARGO_BIN_EXE_vigil"))
        .args(["serve", "--listen", "127.0.0.1:0", "--data-dir"])
        .arg(dir.path().join("data"))
        .env_remove("VIGIL_MASTER_KEY")
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("keys.master_missing"), "{err}");
    assert!(err.contains("VIGIL_MASTER_KEY"), "{err}");
}

fn serve_with_firewall(
    dir: &Path,
    pg: &PgServer,
    rules: &str,
) -> (Child, u16, std::path::PathBuf, std::path::PathBuf) {
    let port = vigil_testkit::free_port();
    let rules_path = dir.join("firewall.toml");
    std::fs::write(&rules_path, rules).unwrap();
    let config = dir.join("vigil.toml");
    std::fs::write(
        &config,
        format!(
            "[service]\norigin = \"fw\"\ndata_dir = \"{}\"\n\n[proxy]\nlisten = \"127.0.0.1:{port}\"\n\
             upstream = \"{}\"\n\n[detect]\nfirewall = \"firewall.toml\"\n",
            dir.join("data").display(),
            pg.addr()
        ),
    )
    .unwrap();
    let stdout = dir.join("stdout.txt");
    let child = vigil()
        .args(["serve", "--config"])
        .arg(&config)
        .stdout(std::fs::File::create(&stdout).unwrap())
        .stderr(std::fs::File::create(dir.join("stderr.txt")).unwrap())
        .spawn()
        .unwrap();
    (child, port, stdout, rules_path)
}

const DENY_VAULT: &str = "mode = \"enforce\"\n\n[[rules]]\nname = \"no-vault\"\naction = \"deny\"\n\
                          tables = [\"vault\"]\n\n[[rules]]\naction = \"allow\"\npattern = \"*\"\n";

#[test]
fn a_bad_firewall_file_stops_the_start_with_file_and_line() {
    let pg = PgServer::start().unwrap();
    let dir = vigil_testkit::tempdir();
    let (mut child, _, _, _) = serve_with_firewall(
        dir.path(),
        &pg,
        "mode = \"enforce\"\n\n[[rules]]\naction = \"maybe\"\n",
    );
    let status = child.wait().unwrap();
    assert_eq!(status.code(), Some(2));
    let err = read(&dir.path().join("stderr.txt"));
    assert!(err.contains("firewall.rules_invalid"), "{err}");
    assert!(err.contains("firewall.toml:4:"), "{err}");
}

#[test]
fn a_bad_firewall_file_on_reload_keeps_the_old_rules() {
    let pg = PgServer::start().unwrap();
    pg.psql("CREATE TABLE vault (secret text)").unwrap();
    let dir = vigil_testkit::tempdir();
    let (mut child, port, stdout, rules) = serve_with_firewall(dir.path(), &pg, DENY_VAULT);
    wait_until("the listener", Duration::from_secs(30), || {
        TcpStream::connect(("127.0.0.1", port)).is_ok()
    });
    let query = |sql: &str| {
        pg.psql_command()
            .env("PGPORT", port.to_string())
            .env("PGPASSWORD", SUPERUSER_PASSWORD)
            .args(["-c", sql])
            .output()
            .unwrap()
    };
    let denied = query("SELECT secret FROM vault");
    assert!(!denied.status.success());
    assert!(String::from_utf8_lossy(&denied.stderr).contains("denied by the vigil query firewall"));
    std::fs::write(
        &rules,
        "mode = \"enforce\"\n[[rules]]\naction = \"allow\"\nusers = 7\n",
    )
    .unwrap();
    signal(&child, "HUP");
    wait_until("firewall.rules_invalid", Duration::from_secs(10), || {
        read(&stdout).contains("firewall.rules_invalid")
    });
    assert!(read(&stdout).contains("config.reload_failed"));
    assert!(
        !query("SELECT secret FROM vault").status.success(),
        "old rules still deny"
    );
    assert!(query("SELECT 1").status.success());
    signal(&child, "TERM");
    assert!(child.wait().unwrap().success());
}
