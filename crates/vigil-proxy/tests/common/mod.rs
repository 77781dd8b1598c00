//! A proxy in front of a throwaway PostgreSQL, with its events collected.

#![allow(dead_code, unreachable_pub)]

use std::net::SocketAddr;
use std::process::{Command, Output};
use std::sync::Arc;
use std::time::{Duration, Instant};

use vigil_event::{Emitter, Event, Kind, Overflow, Receiver};
use vigil_proxy::{Metrics, Proxy, ProxyConfig, Reporter};
use vigil_testkit::postgres::PgServer;

/// A running proxy and the events it reported.
pub struct Harness {
    pub rt: tokio::runtime::Runtime,
    pub proxy: Option<Proxy>,
    pub addr: SocketAddr,
    pub metrics: Arc<Metrics>,
    rx: Receiver,
    pub events: Vec<Event>,
}

impl Harness {
    /// Starts a proxy with `config` (its listen address is replaced by a
    /// free port on 127.0.0.1).
    pub fn start(mut config: ProxyConfig) -> Harness {
        let rt = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .enable_all()
            .build()
            .expect("runtime");
        config.listen = vec![SocketAddr::from(([127, 0, 0, 1], 0))];
        let (emitter, rx) = Emitter::channel(1 << 20, Overflow::Drop);
        let metrics = Arc::new(Metrics::new());
        let reporter = Reporter::new(emitter, Arc::clone(&metrics));
        let proxy = rt
            .block_on(Proxy::start(config, reporter))
            .expect("proxy starts");
        let addr = proxy.local_addrs()[0];
        Harness {
            rt,
            proxy: Some(proxy),
            addr,
            metrics,
            rx,
            events: Vec::new(),
        }
    }

    /// A proxy in front of `pg` without TLS.
    pub fn plain(pg: &PgServer) -> Harness {
        Harness::start(ProxyConfig::new(
            SocketAddr::from(([127, 0, 0, 1], 0)),
            pg.addr().to_string(),
        ))
    }

    /// Takes the events reported so far.
    pub fn drain(&mut self) -> &[Event] {
        while let Some(q) = self.rx.try_recv() {
            self.events.push(q.event);
        }
        &self.events
    }

    /// Waits until `pred` holds for some event (up to 10 s); returns it.
    pub fn wait_for(&mut self, what: &str, pred: impl Fn(&Event) -> bool) -> Event {
        let deadline = Instant::now() + Duration::from_secs(10);
        loop {
            if let Some(e) = self.drain().iter().find(|e| pred(e)) {
                return e.clone();
            }
            assert!(
                Instant::now() < deadline,
                "no event {what} within 10 s; got:\n{}",
                self.dump()
            );
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    /// Waits for an event of `kind`.
    pub fn wait_kind(&mut self, kind: Kind) -> Event {
        self.wait_for(kind.name(), |e| e.kind == kind)
    }

    /// Events of `kind` so far.
    pub fn of(&mut self, kind: Kind) -> Vec<Event> {
        self.drain()
            .iter()
            .filter(|e| e.kind == kind)
            .cloned()
            .collect()
    }

    /// Every event so far, one per line, as text.
    pub fn dump(&self) -> String {
        let mut out = Vec::new();
        for e in &self.events {
            vigil_event::Format::Json.write(e, &mut out);
            out.push(b'\n');
        }
        String::from_utf8_lossy(&out).into_owned()
    }

    /// A psql command through the proxy as the superuser.
    pub fn psql(&self, pg: &PgServer) -> Command {
        let mut cmd = pg.psql_command();
        cmd.env("PGHOST", self.addr.ip().to_string())
            .env("PGPORT", self.addr.port().to_string())
            .env("PGPASSWORD", vigil_testkit::postgres::SUPERUSER_PASSWORD)
            .env("PGSSLMODE", "disable");
        cmd
    }

    /// Runs `sql` through the proxy with psql; panics on failure.
    pub fn sql(&self, pg: &PgServer, sql: &str) -> String {
        let out = self.psql(pg).args(["-c", sql]).output().expect("psql runs");
        assert!(
            out.status.success(),
            "psql failed: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8_lossy(&out.stdout).into_owned()
    }

    /// Stops the proxy (sessions get `timeout`).
    pub fn shutdown(&mut self, timeout: Duration) -> usize {
        let proxy = self.proxy.take().expect("running");
        self.rt.block_on(proxy.shutdown(timeout))
    }
}

/// A string field of an event.
pub fn field<'e>(e: &'e Event, key: &str) -> Option<&'e str> {
    match e.field_value(key) {
        Some(vigil_event::Value::Str(s)) => Some(s),
        _ => None,
    }
}

/// An integer field of an event.
pub fn int(e: &Event, key: &str) -> Option<i64> {
    match e.field_value(key) {
        Some(vigil_event::Value::Int(n)) => Some(*n),
        _ => None,
    }
}

/// Output as text, for assertion messages.
pub fn text(out: &Output) -> String {
    format!(
        "status {:?}\nstdout:\n{}\nstderr:\n{}",
        out.status,
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    )
}
