//! `vigil serve` delivering to real receivers under load: each durable
//! receiver is stopped for 30 seconds and started again, and vigil itself
//! is killed with SIGKILL while delivering; afterwards every sealed event
//! has arrived, duplicates are at most one batch and removable by
//! `(origin, seq)`.

#![allow(clippy::unwrap_used, clippy::string_slice)] // tests may panic

use std::collections::HashMap;
use std::io::{Read, Write};
use std::net::TcpStream;
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use base64::Engine;
use vigil_event::{Event, catalog};
use vigil_seal::{LineFormat, list_segments, split_sealed};
use vigil_ship::transport::nats::{NatsClient, NatsConfig};
use vigil_testkit::nats::NatsServer;
use vigil_testkit::pki::Pki;
use vigil_testkit::postgres::{PgServer, SUPERUSER, SUPERUSER_PASSWORD, ServerTls};

const MASTER: &str = "dmlnaWwtc2hpcC10ZXN0LW1hc3Rlci1rZXktMzJieXQ="; // 32 bytes
const ORIGIN: &str = "ship-test";
/// The sinks' batch: the most duplicates a failure may cause.
const BATCH: usize = 500;
/// How long each receiver is down in the outage tests.
const OUTAGE: Duration = Duration::from_secs(30);

fn wait_until(what: &str, limit: Duration, mut ok: impl FnMut() -> bool) {
    let deadline = Instant::now() + limit;
    while !ok() {
        assert!(Instant::now() < deadline, "timed out waiting for {what}");
        std::thread::sleep(Duration::from_millis(100));
    }
}

fn http_get(port: u16, path: &str) -> String {
    let Ok(mut s) = TcpStream::connect(("127.0.0.1", port)) else {
        return String::new();
    };
    let _ = write!(s, "GET {path} HTTP/1.1\r\nHost: x\r\n\r\n");
    let mut out = String::new();
    let _ = s.read_to_string(&mut out);
    out
}

/// A receiver the test can stop, start again and read back.
trait Receiver {
    /// The `[[sinks]]` table for it, named `sink`.
    fn sink_toml(&self) -> String;
    fn stop(&mut self);
    fn start_again(&mut self);
    /// `(origin, seq)` of every event it holds, duplicates included.
    fn received(&self) -> Vec<(String, u64)>;
}

struct Nats {
    server: NatsServer,
}

impl Nats {
    fn start() -> Nats {
        Nats {
            server: NatsServer::start().unwrap(),
        }
    }
    fn config(&self) -> NatsConfig {
        NatsConfig::new(self.server.url(), "vigil.events")
    }
}

impl Receiver for Nats {
    fn sink_toml(&self) -> String {
        format!(
            "[[sinks]]\nname = \"sink\"\ntype = \"nats\"\naddress = \"{}\"\nsubject = \"vigil.events\"\n\
             stream = \"VIGIL\"\ncreate_stream = true\nbatch = {BATCH}\nretry_max_ms = 1000\ntimeout_ms = 2000\n",
            self.server.url()
        )
    }
    fn stop(&mut self) {
        self.server.stop();
    }
    fn start_again(&mut self) {
        self.server.start_again().unwrap();
    }
    fn received(&self) -> Vec<(String, u64)> {
        let mut client = NatsClient::connect(&self.config()).unwrap();
        let info = client.request("$JS.API.STREAM.INFO.VIGIL", b"").unwrap();
        let info: serde_json::Value = serde_json::from_slice(&info).unwrap();
        let (first, last) = (
            info["state"]["first_seq"].as_u64().unwrap(),
            info["state"]["last_seq"].as_u64().unwrap(),
        );
        let mut out = Vec::new();
        for seq in first..=last {
            let reply = client
                .request(
                    "$JS.API.STREAM.MSG.GET.VIGIL",
                    format!("{{\"seq\":{seq}}}").as_bytes(),
                )
                .unwrap();
            let reply: serde_json::Value = serde_json::from_slice(&reply).unwrap();
            let data = base64::engine::general_purpose::STANDARD
                .decode(reply["message"]["data"].as_str().unwrap())
                .unwrap();
            let ev = Event::from_json(&data).unwrap();
            out.push((ev.origin.to_string(), ev.seq));
        }
        out
    }
}

/// rsyslog receiving over TCP with octet counting; vigil sends JSON records
/// so the test can read `(origin, seq)` back from each line.
struct Rsyslog {
    server: vigil_testkit::rsyslog::Rsyslog,
}

impl Rsyslog {
    fn start() -> Rsyslog {
        Rsyslog {
            server: vigil_testkit::rsyslog::Rsyslog::builder()
                .tcp()
                .start()
                .unwrap(),
        }
    }
}

impl Receiver for Rsyslog {
    fn sink_toml(&self) -> String {
        format!(
            "[[sinks]]\nname = \"sink\"\ntype = \"syslog\"\nprotocol = \"tcp\"\naddress = \"127.0.0.1:{}\"\n\
             format = \"json\"\nbatch = {BATCH}\nretry_max_ms = 1000\ntimeout_ms = 2000\n\
             resend_window_ms = 1000\n",
            self.server.tcp_port()
        )
    }
    fn stop(&mut self) {
        self.server.stop();
    }
    fn start_again(&mut self) {
        self.server.start_again().unwrap();
    }
    fn received(&self) -> Vec<(String, u64)> {
        self.server
            .lines()
            .iter()
            .map(|l| {
                let ev = Event::from_json(l.as_bytes())
                    .unwrap_or_else(|e| panic!("rsyslog wrote {l:?}: {e}"));
                (ev.origin.to_string(), ev.seq)
            })
            .collect()
    }
}

/// A second PostgreSQL holding the events in a table.
struct Table {
    server: PgServer,
    /// With TLS: the test CA, whose certificate the sink trusts.
    pki: Option<(tempfile::TempDir, Pki)>,
}

impl Table {
    fn start() -> Table {
        let server = PgServer::builder()
            .setting("synchronous_commit", "on")
            .start()
            .unwrap();
        Table { server, pki: None }
    }

    /// A server that takes TCP connections only over TLS, with a
    /// certificate for `localhost`.
    fn start_tls() -> Table {
        let dir = vigil_testkit::tempdir();
        let pki = Pki::new(dir.path());
        let cert = pki.server("localhost", &["localhost"]);
        let server = PgServer::builder()
            .setting("synchronous_commit", "on")
            .tls(&ServerTls::new(&cert.cert, &cert.key))
            .hba([
                "hostssl all all 127.0.0.1/32 scram-sha-256",
                "hostssl all all ::1/128 scram-sha-256",
            ])
            .start()
            .unwrap();
        Table {
            server,
            pki: Some((dir, pki)),
        }
    }

    /// `(seq, line)` of every row, by seq.
    fn lines(&self) -> Vec<(u64, String)> {
        self.server
            .psql("SELECT seq, line FROM vigil_events ORDER BY seq")
            .unwrap()
            .lines()
            .map(|l| {
                let (seq, line) = l.split_once('|').unwrap();
                (seq.parse().unwrap(), line.to_owned())
            })
            .collect()
    }
}

impl Receiver for Table {
    fn sink_toml(&self) -> String {
        let (host, tls) = match &self.pki {
            None => ("127.0.0.1", String::new()),
            Some((_, pki)) => (
                "localhost",
                format!(
                    " sslmode=verify-full\"\ntls_ca = \"{}",
                    pki.ca_cert_path().display()
                ),
            ),
        };
        format!(
            "[[sinks]]\nname = \"sink\"\ntype = \"postgres\"\n\
             conninfo = \"host={host} port={} user={SUPERUSER} dbname=postgres{tls}\"\n\
             password_env = \"VIGIL_TEST_SINK_PASSWORD\"\ncreate_table = true\n\
             batch = {BATCH}\nretry_max_ms = 1000\ntimeout_ms = 2000\n",
            self.server.port()
        )
    }
    fn stop(&mut self) {
        self.server.stop();
    }
    fn start_again(&mut self) {
        self.server.start_again().unwrap();
    }
    fn received(&self) -> Vec<(String, u64)> {
        self.server
            .psql("SELECT origin, seq FROM vigil_events")
            .unwrap()
            .lines()
            .map(|l| {
                let (origin, seq) = l.split_once('|').unwrap();
                (origin.to_owned(), seq.parse().unwrap())
            })
            .collect()
    }
}

/// A webhook collector in the test (no Splunk or Elasticsearch here): it
/// answers 200 to every POST of a JSON array and keeps `(origin, seq)` of
/// each document. Stopping it closes the listener and every connection.
struct Webhook {
    port: u16,
    got: std::sync::Arc<std::sync::Mutex<Vec<(String, u64)>>>,
    stop: Option<std::sync::Arc<std::sync::atomic::AtomicBool>>,
}

impl Webhook {
    fn start() -> Webhook {
        let mut w = Webhook {
            port: vigil_testkit::free_port(),
            got: Default::default(),
            stop: None,
        };
        w.start_again();
        w
    }

    fn serve(
        mut stream: TcpStream,
        got: &std::sync::Mutex<Vec<(String, u64)>>,
        stop: &std::sync::atomic::AtomicBool,
    ) {
        use std::sync::atomic::Ordering;
        let _ = stream.set_read_timeout(Some(Duration::from_millis(100)));
        let mut buf: Vec<u8> = Vec::new();
        let mut chunk = vec![0u8; 64 * 1024];
        while !stop.load(Ordering::SeqCst) {
            match stream.read(&mut chunk) {
                Ok(0) => return,
                Ok(n) => buf.extend_from_slice(&chunk[..n]),
                Err(e)
                    if matches!(
                        e.kind(),
                        std::io::ErrorKind::WouldBlock | std::io::ErrorKind::TimedOut
                    ) =>
                {
                    continue;
                }
                Err(_) => return,
            }
            while let Some(end) = buf.windows(4).position(|w| w == b"\r\n\r\n") {
                let head = String::from_utf8_lossy(&buf[..end]).to_ascii_lowercase();
                let len: usize = head
                    .lines()
                    .find_map(|l| {
                        l.strip_prefix("content-length:")
                            .map(|v| v.trim().parse().unwrap())
                    })
                    .unwrap_or(0);
                if buf.len() < end + 4 + len {
                    break;
                }
                let body: Vec<u8> = buf[end + 4..end + 4 + len].to_vec();
                buf.drain(..end + 4 + len);
                let docs: Vec<serde_json::Value> = serde_json::from_slice(&body).unwrap();
                {
                    let mut got = got.lock().unwrap();
                    for d in docs {
                        got.push((
                            d["origin"].as_str().unwrap().to_owned(),
                            d["seq"].as_u64().unwrap(),
                        ));
                    }
                }
                if stream
                    .write_all(b"HTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n")
                    .is_err()
                {
                    return;
                }
            }
        }
    }
}

impl Receiver for Webhook {
    fn sink_toml(&self) -> String {
        format!(
            "[[sinks]]\nname = \"sink\"\ntype = \"http\"\napi = \"webhook\"\n\
             url = \"http://127.0.0.1:{}/events\"\nbatch = {BATCH}\nretry_max_ms = 1000\ntimeout_ms = 2000\n",
            self.port
        )
    }
    fn stop(&mut self) {
        if let Some(stop) = self.stop.take() {
            stop.store(true, std::sync::atomic::Ordering::SeqCst);
            // Wake the accept loop so it sees the flag and drops the listener.
            let _ = TcpStream::connect(("127.0.0.1", self.port));
            std::thread::sleep(Duration::from_millis(300));
        }
    }
    fn start_again(&mut self) {
        use std::sync::atomic::{AtomicBool, Ordering};
        let listener = std::net::TcpListener::bind(("127.0.0.1", self.port)).unwrap();
        let stop = std::sync::Arc::new(AtomicBool::new(false));
        self.stop = Some(stop.clone());
        let got = self.got.clone();
        std::thread::spawn(move || {
            for conn in listener.incoming() {
                if stop.load(Ordering::SeqCst) {
                    return;
                }
                let Ok(conn) = conn else { continue };
                let (got, stop) = (got.clone(), stop.clone());
                std::thread::spawn(move || Webhook::serve(conn, &got, &stop));
            }
        });
    }
    fn received(&self) -> Vec<(String, u64)> {
        self.got.lock().unwrap().clone()
    }
}

/// A PostgreSQL for the proxy, with pgbench's tables.
fn database() -> PgServer {
    let pg = PgServer::start().unwrap();
    let out = Command::new(pgbench_program(&pg))
        .args(["-i", "-q", "-s", "1"])
        .envs(pg_env(pg.port()))
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    pg
}

fn pgbench_program(pg: &PgServer) -> PathBuf {
    let own = pg.bindir().join("pgbench");
    if own.is_file() {
        own
    } else {
        PathBuf::from("/usr/bin/pgbench")
    }
}

fn pg_env(port: u16) -> Vec<(&'static str, String)> {
    vec![
        ("PGHOST", "127.0.0.1".into()),
        ("PGPORT", port.to_string()),
        ("PGUSER", SUPERUSER.into()),
        ("PGDATABASE", "postgres".into()),
        ("PGPASSWORD", SUPERUSER_PASSWORD.into()),
        ("PGSSLMODE", "disable".into()),
    ]
}

/// `vigil serve` in a directory of its own.
struct Service {
    dir: tempfile::TempDir,
    config: PathBuf,
    port: u16,
    admin: u16,
    child: Option<Child>,
}

impl Service {
    fn start(pg: &PgServer, sink_toml: &str) -> Service {
        let dir = vigil_testkit::tempdir();
        let port = vigil_testkit::free_port();
        let admin = vigil_testkit::free_port();
        let config = dir.path().join("vigil.toml");
        let text = format!(
            "[service]\norigin = \"{ORIGIN}\"\ndata_dir = \"{data}\"\n\n\
             [proxy]\nlisten = \"127.0.0.1:{port}\"\nupstream = \"{upstream}\"\ncoverage = \"all\"\nshutdown_timeout_s = 2\n\n\
             [admin]\nlisten = \"127.0.0.1:{admin}\"\n\n[audit]\ndir = \"{data}/audit\"\nkey_dir = \"{data}/keys\"\n\
             segment_max_mb = 1\ncheckpoint_interval_s = 5\n\n{sink_toml}",
            data = dir.path().join("data").display(),
            upstream = pg.addr(),
        );
        std::fs::write(&config, text).unwrap();
        let mut s = Service {
            dir,
            config,
            port,
            admin,
            child: None,
        };
        s.spawn();
        s
    }

    fn spawn(&mut self) {
        let log = |name: &str| {
            std::fs::OpenOptions::new()
                .create(true)
                .append(true)
                .open(self.dir.path().join(name))
                .unwrap()
        };
        let child = Command::new(env!("CARGO_BIN_EXE_vigil"))
            .env("VIGIL_MASTER_KEY", MASTER)
            .env("VIGIL_TEST_SINK_PASSWORD", SUPERUSER_PASSWORD)
            .args(["serve", "--config"])
            .arg(&self.config)
            .stdout(log("stdout.txt"))
            .stderr(log("stderr.txt"))
            .spawn()
            .unwrap();
        self.child = Some(child);
        let port = self.port;
        wait_until("the proxy listener", Duration::from_secs(30), || {
            TcpStream::connect(("127.0.0.1", port)).is_ok()
        });
    }

    fn signal(&mut self, name: &str) -> std::process::ExitStatus {
        let mut child = self.child.take().unwrap();
        let ok = Command::new("kill")
            .args([&format!("-{name}"), &child.id().to_string()])
            .status()
            .unwrap()
            .success();
        assert!(ok, "kill -{name}");
        child.wait().unwrap()
    }

    fn stop(&mut self) {
        let status = self.signal("TERM");
        assert!(
            status.success(),
            "vigil exits 0 on SIGTERM; stderr: {}",
            self.stderr()
        );
    }

    fn stderr(&self) -> String {
        std::fs::read_to_string(self.dir.path().join("stderr.txt")).unwrap_or_default()
    }

    fn metric(&self, series: &str) -> Option<f64> {
        let text = http_get(self.admin, "/metrics");
        text.lines()
            .find_map(|l| l.strip_prefix(series)?.trim().parse().ok())
    }

    /// Waits until the sink has delivered everything durable and is up.
    fn wait_delivered(&self) {
        wait_until("the sink to catch up", Duration::from_secs(60), || {
            self.metric("vigil_sink_lag_events{sink=\"sink\"}") == Some(0.0)
                && self.metric("vigil_sink_state{sink=\"sink\"}") == Some(0.0)
        });
    }

    /// Every sealed line with its seq, in seq order.
    fn sealed_lines(&self) -> Vec<(u64, String)> {
        let audit = self.dir.path().join("data/audit");
        let mut out = Vec::new();
        for (_, path) in list_segments(&audit).unwrap() {
            for line in std::fs::read_to_string(&path).unwrap().lines() {
                let (_, seal) = split_sealed(LineFormat::Json, line.as_bytes()).unwrap();
                out.push((seal.seq, line.to_owned()));
            }
        }
        out
    }

    /// Every sealed event, in seq order.
    fn sealed(&self) -> Vec<Event> {
        let audit = self.dir.path().join("data/audit");
        let mut out = Vec::new();
        for (_, path) in list_segments(&audit).unwrap() {
            for line in std::fs::read(&path).unwrap().split(|b| *b == b'\n') {
                if line.is_empty() {
                    continue;
                }
                let (record, _) = split_sealed(LineFormat::Json, line).unwrap();
                out.push(Event::from_json(&record).unwrap());
            }
        }
        out
    }
}

impl Drop for Service {
    fn drop(&mut self) {
        if let Some(mut c) = self.child.take() {
            let _ = c.kill();
            let _ = c.wait();
        }
    }
}

/// pgbench -S through the proxy at a steady rate, for `secs` seconds.
fn load(pg: &PgServer, port: u16, secs: u64) -> Child {
    Command::new(pgbench_program(pg))
        .args([
            "-n",
            "-S",
            "-c",
            "2",
            "-j",
            "1",
            "-R",
            "300",
            "-T",
            &secs.to_string(),
        ])
        .envs(pg_env(port))
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap()
}

/// Every sealed event arrived; duplicates are at most one batch. (Syslog
/// over TCP has no acknowledgements: there the bound is the resend window,
/// one second of this load, about 300 events, which stays under one batch.)
fn assert_complete(sealed: &[Event], received: &[(String, u64)]) {
    let mut counts: HashMap<u64, usize> = HashMap::new();
    for (origin, seq) in received {
        assert_eq!(origin, ORIGIN);
        *counts.entry(*seq).or_default() += 1;
    }
    let missing: Vec<u64> = sealed
        .iter()
        .map(|e| e.seq)
        .filter(|s| !counts.contains_key(s))
        .collect();
    assert!(
        missing.is_empty(),
        "{} of {} sealed events never arrived, e.g. {:?}",
        missing.len(),
        sealed.len(),
        &missing[..missing.len().min(10)]
    );
    let duplicates: usize = counts.values().map(|c| c - 1).sum();
    assert!(
        duplicates <= BATCH,
        "{duplicates} duplicates, more than one batch ({BATCH})"
    );
    eprintln!(
        "{} sealed, {} received, {duplicates} duplicates",
        sealed.len(),
        received.len()
    );
}

fn reported(sealed: &[Event], kind: vigil_event::Kind) -> Vec<&Event> {
    sealed
        .iter()
        .filter(|e| {
            e.kind == kind
                && e.field_value("sink")
                    .is_some_and(|v| v.to_string().contains("sink"))
        })
        .collect()
}

/// Stops the receiver for [`OUTAGE`] under load, then checks that nothing
/// was lost.
fn outage(mut rx: impl Receiver) {
    let pg = database();
    let mut svc = Service::start(&pg, &rx.sink_toml());
    let mut bench = load(&pg, svc.port, OUTAGE.as_secs() + 12);
    std::thread::sleep(Duration::from_secs(5));
    rx.stop();
    std::thread::sleep(OUTAGE / 2);
    assert_eq!(
        svc.metric("vigil_sink_state{sink=\"sink\"}"),
        Some(1.0),
        "the sink is down while the receiver is"
    );
    let lag = svc.metric("vigil_sink_lag_events{sink=\"sink\"}").unwrap();
    assert!(lag > 100.0, "events wait for the receiver: lag {lag}");
    std::thread::sleep(OUTAGE / 2);
    rx.start_again();
    let status = bench.wait().unwrap();
    assert!(status.success(), "pgbench through vigil: {status}");
    svc.wait_delivered();
    svc.stop();
    let sealed = svc.sealed();
    assert!(
        sealed
            .iter()
            .filter(|e| e.kind == catalog::STATEMENT_EXECUTED)
            .count()
            > 5000,
        "the load ran"
    );
    assert_complete(&sealed, &rx.received());
    let down = reported(&sealed, catalog::SINK_DOWN);
    assert_eq!(down.len(), 1, "one sink.down per outage");
    assert!(
        !down[0]
            .field_value("reason")
            .unwrap()
            .to_string()
            .is_empty()
    );
    assert_eq!(reported(&sealed, catalog::SINK_UP).len(), 1);
}

/// Kills vigil with SIGKILL while it delivers, starts it again, and checks
/// that nothing was lost.
fn killed_while_delivering(rx: impl Receiver) {
    let pg = database();
    let mut svc = Service::start(&pg, &rx.sink_toml());
    let mut bench = load(&pg, svc.port, 30);
    std::thread::sleep(Duration::from_secs(6));
    let sent_before = svc
        .metric("vigil_sink_sent_total{sink=\"sink\"}")
        .unwrap_or(0.0);
    assert!(sent_before > 0.0, "delivering when killed");
    let status = svc.signal("KILL");
    assert!(!status.success());
    let _ = bench.kill();
    let _ = bench.wait();
    svc.spawn();
    let mut bench = load(&pg, svc.port, 4);
    assert!(bench.wait().unwrap().success());
    svc.wait_delivered();
    svc.stop();
    let sealed = svc.sealed();
    assert!(
        sealed.iter().any(|e| e.kind == catalog::AUDIT_RECOVERED)
            || sealed
                .iter()
                .filter(|e| e.kind == catalog::SERVICE_STARTED)
                .count()
                == 2,
        "the second start opened the same log"
    );
    assert_complete(&sealed, &rx.received());
}

#[test]
fn nats_outage_loses_nothing() {
    outage(Nats::start());
}

#[test]
fn nats_restart_after_sigkill_loses_nothing() {
    killed_while_delivering(Nats::start());
}

#[test]
fn syslog_tcp_outage_loses_nothing() {
    outage(Rsyslog::start());
}

#[test]
fn syslog_tcp_restart_after_sigkill_loses_nothing() {
    killed_while_delivering(Rsyslog::start());
}

#[test]
fn http_webhook_outage_loses_nothing() {
    outage(Webhook::start());
}

#[test]
fn postgres_outage_loses_nothing() {
    outage(Table::start());
}

#[test]
fn postgres_restart_after_sigkill_loses_nothing() {
    killed_while_delivering(Table::start());
}

/// The database copy holds each sealed line byte for byte, so it verifies
/// like the log; over TLS (verify-full) as without.
#[test]
fn the_postgres_table_holds_the_sealed_lines() {
    table_holds_the_sealed_lines(Table::start());
}

#[test]
fn the_postgres_table_holds_the_sealed_lines_over_tls() {
    table_holds_the_sealed_lines(Table::start_tls());
}

fn table_holds_the_sealed_lines(table: Table) {
    let pg = database();
    let mut svc = Service::start(&pg, &table.sink_toml());
    let mut bench = load(&pg, svc.port, 3);
    assert!(bench.wait().unwrap().success());
    svc.wait_delivered();
    svc.stop();
    let sealed = svc.sealed_lines();
    let rows = table.lines();
    assert_eq!(rows.len(), sealed.len());
    for ((seq, line), (sealed_seq, sealed_line)) in rows.iter().zip(&sealed) {
        assert_eq!((seq, line), (sealed_seq, sealed_line));
    }
}

/// An HTTP collector that answers every request with `status`.
fn refusing_collector(status: &'static str) -> u16 {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    std::thread::spawn(move || {
        for stream in listener.incoming() {
            let Ok(mut stream) = stream else { continue };
            std::thread::spawn(move || {
                let mut buf = vec![0u8; 1 << 20];
                let mut have = 0;
                loop {
                    let Ok(n) = stream.read(&mut buf[have..]) else {
                        return;
                    };
                    if n == 0 {
                        return;
                    }
                    have += n;
                    let text = String::from_utf8_lossy(&buf[..have]).into_owned();
                    let Some(end) = text.find("\r\n\r\n") else {
                        continue;
                    };
                    let len: usize = text[..end]
                        .lines()
                        .find_map(|l| {
                            let (k, v) = l.split_once(':')?;
                            k.eq_ignore_ascii_case("content-length")
                                .then(|| v.trim().parse().ok())?
                        })
                        .unwrap_or(0);
                    if have < end + 4 + len {
                        continue;
                    }
                    let body = "{\"text\":\"Invalid token\",\"code\":4}";
                    let _ = write!(
                        stream,
                        "HTTP/1.1 {status}\r\nContent-Type: application/json\r\nContent-Length: {}\r\n\r\n{body}",
                        body.len()
                    );
                    have = 0;
                }
            });
        }
    });
    port
}

/// Receivers that refuse, fail or cannot be reached are reported with the
/// reason, parked or retried, and never stop the service or the other
/// sinks.
#[test]
fn broken_sinks_are_reported_and_never_stop_the_service_or_the_others() {
    let pg = database();
    let dir = vigil_testkit::tempdir();
    let pki = vigil_testkit::pki::Pki::new(dir.path().join("pki"));
    let other = pki.other_ca();
    let server = other.server("localhost", &["127.0.0.1", "localhost"]);
    let tls_receiver = vigil_testkit::rsyslog::Rsyslog::builder()
        .tls(&server.cert, &server.key, other.ca_cert_path(), false)
        .start()
        .unwrap();
    let collector = refusing_collector("401 Unauthorized");
    let nowhere = vigil_testkit::free_port();
    let events = dir.path().join("events.json");
    let sinks = format!(
        "[[sinks]]\nname = \"file\"\ntype = \"file\"\npath = \"{events}\"\n\n\
         [[sinks]]\nname = \"hec\"\ntype = \"http\"\napi = \"splunk_hec\"\nurl = \"http://127.0.0.1:{collector}/services/collector/event\"\n\
         token_env = \"VIGIL_TEST_SINK_PASSWORD\"\n\n\
         [[sinks]]\nname = \"siem\"\ntype = \"syslog\"\nprotocol = \"tls\"\naddress = \"127.0.0.1:{tls}\"\ntls_ca = \"{ca}\"\n\n\
         [[sinks]]\nname = \"gone\"\ntype = \"syslog\"\naddress = \"127.0.0.1:{nowhere}\"\nretry_max_ms = 500\n",
        events = events.display(),
        tls = tls_receiver.tls_port(),
        ca = pki.ca_cert_path().display(),
    );
    let mut svc = Service::start(&pg, &sinks);
    let mut bench = load(&pg, svc.port, 3);
    assert!(bench.wait().unwrap().success(), "the proxy keeps serving");
    wait_until("the states", Duration::from_secs(30), || {
        svc.metric("vigil_sink_state{sink=\"hec\"}") == Some(2.0)
            && svc.metric("vigil_sink_state{sink=\"siem\"}") == Some(2.0)
            && svc.metric("vigil_sink_state{sink=\"gone\"}") == Some(1.0)
            && svc.metric("vigil_sink_lag_events{sink=\"file\"}") == Some(0.0)
    });
    svc.stop();
    let sealed = svc.sealed();
    let reason = |kind, sink: &str| -> String {
        sealed
            .iter()
            .find(|e| {
                e.kind == kind
                    && e.field_value("sink")
                        .is_some_and(|v| v.to_string().contains(sink))
            })
            .and_then(|e| e.field_value("reason"))
            .map(|v| v.to_string())
            .unwrap_or_else(|| panic!("no report for {sink}"))
    };
    let hec = reason(catalog::SINK_PARKED, "hec");
    assert!(hec.contains("401"), "{hec}");
    assert!(!hec.contains(SUPERUSER_PASSWORD), "the token leaked: {hec}");
    let siem = reason(catalog::SINK_PARKED, "siem");
    assert!(siem.to_lowercase().contains("certificate"), "{siem}");
    let gone = reason(catalog::SINK_DOWN, "gone");
    assert!(gone.contains(&nowhere.to_string()), "{gone}");
    // The file sink has every sealed event but the last few sealed at
    // shutdown after its final look.
    let written: Vec<u64> = std::fs::read_to_string(&events)
        .unwrap()
        .lines()
        .map(|l| Event::from_json(l.as_bytes()).unwrap().seq)
        .collect();
    assert_eq!(written, (1..=written.len() as u64).collect::<Vec<_>>());
    assert!(
        written.len() + 10 >= sealed.len(),
        "{} of {}",
        written.len(),
        sealed.len()
    );
    assert!(tls_receiver.lines().is_empty());
}

/// A secret named by `password_env` that is not set stops the start with
/// one clear line, before anything listens.
#[test]
fn a_missing_sink_secret_is_a_clear_start_error() {
    let dir = vigil_testkit::tempdir();
    let config = dir.path().join("vigil.toml");
    std::fs::write(
        &config,
        format!(
            "[service]\ndata_dir = \"{}\"\n\n[[sinks]]\ntype = \"postgres\"\nconninfo = \"host=db\"\npassword_env = \"VIGIL_TEST_UNSET_SECRET\"\n",
            dir.path().join("data").display()
        ),
    )
    .unwrap();
    let out = Command::new(env!("CARGO_BIN_EXE_vigil"))
        .env("VIGIL_MASTER_KEY", MASTER)
        .env_remove("VIGIL_TEST_UNSET_SECRET")
        .args(["serve", "--listen", "127.0.0.1:0", "--config"])
        .arg(&config)
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("VIGIL_TEST_UNSET_SECRET") && err.contains("not set"),
        "{err}"
    );
    // The refusal is a sealed config.invalid event too.
    let audit = dir.path().join("data/audit");
    let sealed: Vec<Event> = list_segments(&audit)
        .unwrap()
        .iter()
        .flat_map(|(_, p)| {
            std::fs::read_to_string(p)
                .unwrap()
                .lines()
                .map(str::to_owned)
                .collect::<Vec<_>>()
        })
        .map(|l| {
            Event::from_json(&split_sealed(LineFormat::Json, l.as_bytes()).unwrap().0).unwrap()
        })
        .collect();
    assert!(
        sealed
            .iter()
            .any(|e| e.kind == catalog::CONFIG_INVALID
                && e.message.contains("VIGIL_TEST_UNSET_SECRET")),
        "{sealed:?}"
    );
}

/// Programs next to the database send their own events over syslog; vigil
/// seals them and ships them like its own.
#[test]
fn syslog_ingest_seals_and_ships_what_applications_send() {
    let pg = database();
    let dir = vigil_testkit::tempdir();
    let events = dir.path().join("events.json");
    let ingest_port = vigil_testkit::free_port();
    let extra = format!(
        "[[sinks]]\nname = \"file\"\ntype = \"file\"\npath = \"{}\"\ninclude = [\"ingest.message\"]\n\n\
         [ingest]\nsyslog_tcp = \"127.0.0.1:{ingest_port}\"\n",
        events.display()
    );
    let mut svc = Service::start(&pg, &extra);
    let out = Command::new("logger")
        .args([
            "--rfc5424",
            "--tcp",
            "--octet-count",
            "-n",
            "127.0.0.1",
            "-P",
        ])
        .arg(ingest_port.to_string())
        .args([
            "-t",
            "billing",
            "-p",
            "authpriv.warning",
            "payment refused for account 17",
        ])
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    wait_until(
        "the message in the file sink",
        Duration::from_secs(20),
        || std::fs::read_to_string(&events).is_ok_and(|t| t.contains("payment refused")),
    );
    svc.stop();
    let sealed = svc.sealed();
    let msg = sealed
        .iter()
        .find(|e| e.kind == catalog::INGEST_MESSAGE)
        .expect("sealed");
    assert_eq!(msg.field_value("app_name").unwrap().to_string(), "billing");
    assert!(
        msg.field_value("message")
            .unwrap()
            .to_string()
            .contains("payment refused for account 17")
    );
    assert_eq!(msg.severity, vigil_event::Severity::Warning);
    assert!(sealed.iter().any(|e| e.kind == catalog::INGEST_STARTED));
}
