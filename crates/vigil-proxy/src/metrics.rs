//! Process-wide counters and gauges, rendered in the Prometheus text
//! exposition format (version 0.0.4).
//!
//! [`Metrics`] holds only atomics: every update is one relaxed atomic
//! operation, so the relay can count from any task without locks. It is
//! shared as `Arc<Metrics>`. Values that live elsewhere (the event
//! pipeline's drop counter, the audit trail's state) are passed to
//! [`Metrics::render`] as [`Gauges`] at scrape time.

use std::fmt::{self, Write as _};
use std::sync::atomic::{AtomicU64, Ordering::Relaxed};
use std::time::Duration;

use vigil_event::Kind;
use vigil_event::catalog;
use vigil_sql::StatementClass;

/// Number of statement classes, one counter each.
const CLASSES: usize = StatementClass::ALL.len();

/// Number of event kinds in the catalog, one counter each.
const KINDS: usize = catalog::ALL.len();

/// Lock-free counters for the proxy, shared as `Arc<Metrics>`.
///
/// All methods take `&self` and cost one or two relaxed atomic operations.
pub struct Metrics {
    connections_active: AtomicU64,
    connections_total: AtomicU64,
    connections_rejected: AtomicU64,
    auth_failures: AtomicU64,
    tls_failures: AtomicU64,
    upstream_failures: AtomicU64,
    protocol_errors: AtomicU64,
    /// Indexed by the class's position in [`StatementClass::ALL`].
    statements: [AtomicU64; CLASSES],
    statement_errors: AtomicU64,
    bytes_from_clients: AtomicU64,
    bytes_from_server: AtomicU64,
    /// Indexed by the kind's position in [`catalog::ALL`].
    events: [AtomicU64; KINDS],
}

/// Values owned by other parts of vigil, read when metrics are rendered.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Gauges {
    /// Events the pipeline dropped since start (a counter).
    pub events_dropped: u64,
    /// Events emitted but not yet sealed into the audit trail.
    pub audit_queue: u64,
    /// Time since the audit trail's last checkpoint; `None` when there has
    /// been none, and the metric is then omitted.
    pub last_checkpoint_age: Option<Duration>,
    /// Whether the audit trail is being written; drives `/healthz`.
    pub audit_ok: bool,
    /// The sinks that deliver from the audit trail.
    pub sinks: Vec<SinkGauge>,
}

/// One delivering sink, as the metrics show it.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct SinkGauge {
    /// The sink's name (a label).
    pub name: String,
    /// Records the receiver acknowledged.
    pub sent: u64,
    /// Failed send attempts.
    pub failed: u64,
    /// Records sent again after a failure.
    pub retried: u64,
    /// Records the receiver refused for good.
    pub rejected: u64,
    /// Durable events not yet delivered.
    pub lag_events: u64,
    /// Age of the oldest undelivered event, in milliseconds.
    pub lag_ms: u64,
    /// 0 up, 1 down, 2 parked.
    pub state: u8,
}

impl Default for Metrics {
    fn default() -> Self {
        Metrics {
            connections_active: AtomicU64::new(0),
            connections_total: AtomicU64::new(0),
            connections_rejected: AtomicU64::new(0),
            auth_failures: AtomicU64::new(0),
            tls_failures: AtomicU64::new(0),
            upstream_failures: AtomicU64::new(0),
            protocol_errors: AtomicU64::new(0),
            statements: std::array::from_fn(|_| AtomicU64::new(0)),
            statement_errors: AtomicU64::new(0),
            bytes_from_clients: AtomicU64::new(0),
            bytes_from_server: AtomicU64::new(0),
            events: std::array::from_fn(|_| AtomicU64::new(0)),
        }
    }
}

impl fmt::Debug for Metrics {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let load = |a: &AtomicU64| a.load(Relaxed);
        f.debug_struct("Metrics")
            .field("connections_active", &load(&self.connections_active))
            .field("connections_total", &load(&self.connections_total))
            .field("connections_rejected", &load(&self.connections_rejected))
            .field("auth_failures", &load(&self.auth_failures))
            .field("tls_failures", &load(&self.tls_failures))
            .field("upstream_failures", &load(&self.upstream_failures))
            .field("protocol_errors", &load(&self.protocol_errors))
            .field("statements", &self.statements.iter().map(load).sum::<u64>())
            .field("statement_errors", &load(&self.statement_errors))
            .field("bytes_from_clients", &load(&self.bytes_from_clients))
            .field("bytes_from_server", &load(&self.bytes_from_server))
            .field("events", &self.events.iter().map(load).sum::<u64>())
            .finish()
    }
}

impl Metrics {
    /// A set of counters, all zero.
    pub fn new() -> Self {
        Self::default()
    }

    /// A client connection was accepted: one more active, one more in total.
    pub fn connection_opened(&self) {
        self.connections_active.fetch_add(1, Relaxed);
        self.connections_total.fetch_add(1, Relaxed);
    }

    /// A client connection ended: one fewer active. The gauge never goes
    /// below zero, even if calls are unbalanced.
    pub fn connection_closed(&self) {
        // `fetch_update` returns Err only when the closure returns None,
        // that is when the gauge is already zero: nothing to do then.
        let _ = self
            .connections_active
            .fetch_update(Relaxed, Relaxed, |n| n.checked_sub(1));
    }

    /// A client connection was refused before a session started.
    pub fn connection_rejected(&self) {
        self.connections_rejected.fetch_add(1, Relaxed);
    }

    /// A client failed authentication.
    pub fn auth_failed(&self) {
        self.auth_failures.fetch_add(1, Relaxed);
    }

    /// A TLS handshake failed, with a client or with the database.
    pub fn tls_failed(&self) {
        self.tls_failures.fetch_add(1, Relaxed);
    }

    /// Connecting to the database failed.
    pub fn upstream_failed(&self) {
        self.upstream_failures.fetch_add(1, Relaxed);
    }

    /// A peer broke the PostgreSQL protocol.
    pub fn protocol_error(&self) {
        self.protocol_errors.fetch_add(1, Relaxed);
    }

    /// A statement of `class` completed; `failed` when the database
    /// returned an error for it. Every statement counts in its class;
    /// failed ones also count as errors.
    pub fn statement(&self, class: StatementClass, failed: bool) {
        if let Some(i) = StatementClass::ALL.iter().position(|c| *c == class) {
            self.statements[i].fetch_add(1, Relaxed);
        }
        if failed {
            self.statement_errors.fetch_add(1, Relaxed);
        }
    }

    /// Bytes relayed: `from_clients` towards the database, `from_server`
    /// towards clients.
    pub fn bytes(&self, from_clients: u64, from_server: u64) {
        if from_clients != 0 {
            self.bytes_from_clients.fetch_add(from_clients, Relaxed);
        }
        if from_server != 0 {
            self.bytes_from_server.fetch_add(from_server, Relaxed);
        }
    }

    /// An event of `kind` was emitted.
    pub fn event(&self, kind: Kind) {
        if let Some(i) = kind_index(kind.code()) {
            self.events[i].fetch_add(1, Relaxed);
        }
    }

    /// The metrics in the Prometheus text exposition format 0.0.4, with
    /// `gauges` read from the rest of vigil.
    ///
    /// Every family has `# HELP` and `# TYPE` lines. All statement classes
    /// are always present; events appear only for codes seen at least once.
    pub fn render(&self, gauges: &Gauges) -> String {
        let mut out = String::with_capacity(4096);
        // Writing into a String cannot fail.
        let _ = self.write_to(&mut out, gauges);
        out
    }

    fn write_to(&self, out: &mut String, gauges: &Gauges) -> fmt::Result {
        let load = |a: &AtomicU64| a.load(Relaxed);

        family(
            out,
            "vigil_connections_active",
            "gauge",
            "Client connections open now.",
        )?;
        writeln!(
            out,
            "vigil_connections_active {}",
            load(&self.connections_active)
        )?;

        let counters: [(&str, &str, &AtomicU64); 6] = [
            (
                "vigil_connections_total",
                "Client connections accepted since start.",
                &self.connections_total,
            ),
            (
                "vigil_connections_rejected_total",
                "Client connections refused before a session started.",
                &self.connections_rejected,
            ),
            (
                "vigil_auth_failures_total",
                "Failed client authentications.",
                &self.auth_failures,
            ),
            (
                "vigil_tls_failures_total",
                "Failed TLS handshakes with clients or the database.",
                &self.tls_failures,
            ),
            (
                "vigil_upstream_failures_total",
                "Failed connections to the database.",
                &self.upstream_failures,
            ),
            (
                "vigil_protocol_errors_total",
                "PostgreSQL protocol violations by a peer.",
                &self.protocol_errors,
            ),
        ];
        for (name, help, value) in counters {
            family(out, name, "counter", help)?;
            writeln!(out, "{name} {}", load(value))?;
        }

        family(
            out,
            "vigil_statements_total",
            "counter",
            "Statements completed, by class.",
        )?;
        for (class, value) in StatementClass::ALL.iter().zip(&self.statements) {
            writeln!(
                out,
                "vigil_statements_total{{class=\"{}\"}} {}",
                Escaped(class.as_str()),
                load(value)
            )?;
        }

        family(
            out,
            "vigil_statement_errors_total",
            "counter",
            "Statements the database answered with an error.",
        )?;
        writeln!(
            out,
            "vigil_statement_errors_total {}",
            load(&self.statement_errors)
        )?;

        family(
            out,
            "vigil_bytes_total",
            "counter",
            "Bytes relayed, by direction.",
        )?;
        writeln!(
            out,
            "vigil_bytes_total{{direction=\"from_clients\"}} {}",
            load(&self.bytes_from_clients)
        )?;
        writeln!(
            out,
            "vigil_bytes_total{{direction=\"from_server\"}} {}",
            load(&self.bytes_from_server)
        )?;

        family(
            out,
            "vigil_events_total",
            "counter",
            "Events emitted, by code.",
        )?;
        for (kind, value) in catalog::ALL.iter().zip(&self.events) {
            let n = load(value);
            if n > 0 {
                writeln!(
                    out,
                    "vigil_events_total{{code=\"{}\",name=\"{}\"}} {n}",
                    kind.code(),
                    Escaped(kind.name())
                )?;
            }
        }

        family(
            out,
            "vigil_events_dropped_total",
            "counter",
            "Events dropped by the event pipeline.",
        )?;
        writeln!(out, "vigil_events_dropped_total {}", gauges.events_dropped)?;

        family(
            out,
            "vigil_audit_queue",
            "gauge",
            "Events emitted but not yet sealed into the audit trail.",
        )?;
        writeln!(out, "vigil_audit_queue {}", gauges.audit_queue)?;

        if let Some(age) = gauges.last_checkpoint_age {
            family(
                out,
                "vigil_audit_last_checkpoint_age_seconds",
                "gauge",
                "Seconds since the audit trail's last checkpoint.",
            )?;
            writeln!(
                out,
                "vigil_audit_last_checkpoint_age_seconds {}",
                age.as_secs_f64()
            )?;
        }

        if !gauges.sinks.is_empty() {
            type Field = fn(&SinkGauge) -> String;
            let series: [(&str, &str, &str, Field); 7] = [
                (
                    "vigil_sink_sent_total",
                    "counter",
                    "Events a sink's receiver acknowledged.",
                    |g| g.sent.to_string(),
                ),
                (
                    "vigil_sink_failed_total",
                    "counter",
                    "Failed send attempts of a sink.",
                    |g| g.failed.to_string(),
                ),
                (
                    "vigil_sink_retried_total",
                    "counter",
                    "Events a sink sent again after a failure.",
                    |g| g.retried.to_string(),
                ),
                (
                    "vigil_sink_rejected_total",
                    "counter",
                    "Events a sink's receiver refused for good.",
                    |g| g.rejected.to_string(),
                ),
                (
                    "vigil_sink_lag_events",
                    "gauge",
                    "Sealed events a sink has not delivered yet.",
                    |g| g.lag_events.to_string(),
                ),
                (
                    "vigil_sink_lag_seconds",
                    "gauge",
                    "Age of the oldest event a sink has not delivered.",
                    |g| (g.lag_ms as f64 / 1000.0).to_string(),
                ),
                (
                    "vigil_sink_state",
                    "gauge",
                    "0 delivering, 1 down (retrying), 2 parked (refused for good).",
                    |g| g.state.to_string(),
                ),
            ];
            for (name, kind, help, value) in series {
                family(out, name, kind, help)?;
                for g in &gauges.sinks {
                    writeln!(out, "{name}{{sink=\"{}\"}} {}", g.name, value(g))?;
                }
            }
        }

        family(out, "vigil_up", "gauge", "1 while vigil is running.")?;
        writeln!(out, "vigil_up 1")
    }
}

/// The position of the event with `code` in [`catalog::ALL`], which is
/// sorted by code.
fn kind_index(code: u16) -> Option<usize> {
    catalog::ALL.binary_search_by_key(&code, |k| k.code()).ok()
}

/// Writes the `# HELP` and `# TYPE` lines of a metric family.
fn family(out: &mut String, name: &str, kind: &str, help: &str) -> fmt::Result {
    writeln!(out, "# HELP {name} {help}")?;
    writeln!(out, "# TYPE {name} {kind}")
}

/// A label value with `\`, `"` and newlines escaped as the format requires.
struct Escaped<'a>(&'a str);

impl fmt::Display for Escaped<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for c in self.0.chars() {
            match c {
                '\\' => f.write_str("\\\\")?,
                '"' => f.write_str("\\\"")?,
                '\n' => f.write_str("\\n")?,
                c => f.write_char(c)?,
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn gauges() -> Gauges {
        Gauges {
            events_dropped: 4,
            audit_queue: 17,
            last_checkpoint_age: Some(Duration::from_millis(2500)),
            audit_ok: true,
            sinks: Vec::new(),
        }
    }

    fn lines(text: &str) -> Vec<&str> {
        text.lines().collect()
    }

    #[test]
    fn render_contains_the_expected_lines() {
        let m = Metrics::default();
        m.connection_opened();
        m.connection_opened();
        m.connection_opened();
        m.connection_closed();
        m.connection_rejected();
        m.auth_failed();
        m.auth_failed();
        m.tls_failed();
        m.upstream_failed();
        m.protocol_error();
        m.protocol_error();
        m.protocol_error();
        m.statement(StatementClass::Read, false);
        m.statement(StatementClass::Read, false);
        m.statement(StatementClass::Write, true);
        m.statement(StatementClass::Ddl, false);
        m.bytes(100, 2000);
        m.bytes(5, 0);
        m.event(catalog::CLIENT_CONNECTED);
        m.event(catalog::CLIENT_CONNECTED);
        m.event(catalog::SERVICE_STARTED);

        let text = m.render(&gauges());
        let got = lines(&text);
        let expected = [
            "# HELP vigil_connections_active Client connections open now.",
            "# TYPE vigil_connections_active gauge",
            "vigil_connections_active 2",
            "# TYPE vigil_connections_total counter",
            "vigil_connections_total 3",
            "vigil_connections_rejected_total 1",
            "vigil_auth_failures_total 2",
            "vigil_tls_failures_total 1",
            "vigil_upstream_failures_total 1",
            "vigil_protocol_errors_total 3",
            "# TYPE vigil_statements_total counter",
            "vigil_statements_total{class=\"ddl\"} 1",
            "vigil_statements_total{class=\"function\"} 0",
            "vigil_statements_total{class=\"misc\"} 0",
            "vigil_statements_total{class=\"read\"} 2",
            "vigil_statements_total{class=\"role\"} 0",
            "vigil_statements_total{class=\"write\"} 1",
            "vigil_statement_errors_total 1",
            "vigil_bytes_total{direction=\"from_clients\"} 105",
            "vigil_bytes_total{direction=\"from_server\"} 2000",
            "# TYPE vigil_events_total counter",
            "vigil_events_total{code=\"1000\",name=\"service.started\"} 1",
            "vigil_events_total{code=\"1100\",name=\"client.connected\"} 2",
            "vigil_events_dropped_total 4",
            "# TYPE vigil_audit_queue gauge",
            "vigil_audit_queue 17",
            "# TYPE vigil_audit_last_checkpoint_age_seconds gauge",
            "vigil_audit_last_checkpoint_age_seconds 2.5",
            "# TYPE vigil_up gauge",
            "vigil_up 1",
        ];
        for line in expected {
            assert!(got.contains(&line), "missing {line:?} in\n{text}");
        }
        // Only the kinds seen have an events line.
        let events = got
            .iter()
            .filter(|l| l.starts_with("vigil_events_total{"))
            .count();
        assert_eq!(events, 2, "{text}");
        assert!(text.ends_with("vigil_up 1\n"));
    }

    #[test]
    fn fresh_metrics_render_zeroes_and_no_events() {
        let m = Metrics::new();
        let g = Gauges {
            last_checkpoint_age: None,
            ..gauges()
        };
        let text = m.render(&g);
        let got = lines(&text);
        assert!(got.contains(&"vigil_connections_active 0"));
        for class in StatementClass::ALL {
            let line = format!("vigil_statements_total{{class=\"{}\"}} 0", class.as_str());
            assert!(got.contains(&line.as_str()), "missing {line}");
        }
        assert!(!text.contains("vigil_events_total{"));
        assert!(!text.contains("vigil_audit_last_checkpoint_age_seconds"));
        assert!(got.contains(&"vigil_up 1"));
    }

    #[test]
    fn active_gauge_does_not_go_below_zero() {
        let m = Metrics::default();
        m.connection_closed();
        m.connection_opened();
        m.connection_closed();
        m.connection_closed();
        let text = m.render(&gauges());
        assert!(lines(&text).contains(&"vigil_connections_active 0"));
        assert!(lines(&text).contains(&"vigil_connections_total 1"));
    }

    #[test]
    fn every_kind_in_the_catalog_has_a_counter() {
        let m = Metrics::default();
        for kind in catalog::ALL {
            assert!(kind_index(kind.code()).is_some(), "{kind:?}");
            m.event(*kind);
        }
        let text = m.render(&gauges());
        for kind in catalog::ALL {
            let line = format!(
                "vigil_events_total{{code=\"{}\",name=\"{}\"}} 1",
                kind.code(),
                kind.name()
            );
            assert!(text.lines().any(|l| l == line), "missing {line}");
        }
    }

    /// A metric or label name: `[a-zA-Z_:][a-zA-Z0-9_:]*` (labels without `:`).
    fn is_name(s: &str, colon: bool) -> bool {
        let mut chars = s.chars();
        let ok = |c: char| c.is_ascii_alphabetic() || c == '_' || (colon && c == ':');
        match chars.next() {
            Some(c) if ok(c) => chars.all(|c| ok(c) || c.is_ascii_digit()),
            _ => false,
        }
    }

    /// Parses `k="v",k="v"` (the text between the braces).
    fn labels_ok(mut s: &str) -> bool {
        while !s.is_empty() {
            let Some((name, rest)) = s.split_once("=\"") else {
                return false;
            };
            if !is_name(name, false) {
                return false;
            }
            // Find the closing quote, skipping escapes.
            let mut end = None;
            let mut escaped = false;
            for (i, c) in rest.char_indices() {
                match c {
                    _ if escaped => escaped = false,
                    '\\' => escaped = true,
                    '"' => {
                        end = Some(i);
                        break;
                    }
                    '\n' => return false,
                    _ => {}
                }
            }
            let Some(end) = end else { return false };
            let Some(after) = rest.get(end + 1..) else {
                return false;
            };
            s = match after.strip_prefix(',') {
                Some(more) if !more.is_empty() => more,
                Some(_) => return false,
                None if after.is_empty() => after,
                None => return false,
            };
        }
        true
    }

    /// Checks one sample line; returns its metric name.
    fn sample_name(line: &str) -> Option<&str> {
        let (series, value) = line.rsplit_once(' ')?;
        value.parse::<f64>().ok()?;
        let name = match series.split_once('{') {
            Some((name, rest)) => {
                let labels = rest.strip_suffix('}')?;
                if !labels_ok(labels) {
                    return None;
                }
                name
            }
            None => series,
        };
        is_name(name, true).then_some(name)
    }

    #[test]
    fn every_line_is_a_sample_or_a_comment() {
        let m = Metrics::default();
        m.connection_opened();
        m.statement(StatementClass::Role, true);
        m.bytes(1, 2);
        for kind in catalog::ALL {
            m.event(*kind);
        }
        let text = m.render(&gauges());
        assert!(text.ends_with('\n'));
        let mut typed: Vec<&str> = Vec::new();
        for line in text.lines() {
            if let Some(rest) = line.strip_prefix("# HELP ") {
                let (name, help) = rest.split_once(' ').unwrap_or((rest, ""));
                assert!(is_name(name, true), "{line}");
                assert!(!help.is_empty(), "{line}");
            } else if let Some(rest) = line.strip_prefix("# TYPE ") {
                let (name, kind) = rest.split_once(' ').unwrap_or((rest, ""));
                assert!(is_name(name, true), "{line}");
                assert!(matches!(kind, "counter" | "gauge"), "{line}");
                assert!(!typed.contains(&name), "TYPE twice: {line}");
                typed.push(name);
            } else {
                let name = sample_name(line);
                assert!(name.is_some(), "bad line {line:?}");
                // Every sample follows the TYPE line of its family.
                assert_eq!(typed.last().copied(), name, "{line}");
            }
        }
        assert!(typed.len() >= 15, "{typed:?}");
    }

    #[test]
    fn label_values_are_escaped() {
        assert_eq!(Escaped("a\\b\"c\nd").to_string(), "a\\\\b\\\"c\\nd");
        assert!(labels_ok("a=\"x\\\"y\",b=\"z\""));
        assert!(!labels_ok("a=\"x\",")); // trailing comma
        assert!(!labels_ok("1a=\"x\""));
    }

    #[test]
    fn debug_shows_counters() {
        let m = Metrics::default();
        m.connection_opened();
        let s = format!("{m:?}");
        assert!(s.contains("connections_total: 1"), "{s}");
    }
}
