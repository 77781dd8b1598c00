//! Stateful anomaly detectors, shared by every session of a proxy.
//!
//! One [`Anomalies`] holds the state of every detector behind one mutex,
//! held for a few hash lookups per call. The proxy calls it at each
//! connection ([`on_connect`](Anomalies::on_connect)), failed
//! authentication ([`on_auth_failed`](Anomalies::on_auth_failed)), failed
//! TLS handshake ([`on_tls_failed`](Anomalies::on_tls_failed)), completed
//! or failed statement ([`on_statement`](Anomalies::on_statement)) and
//! disconnection ([`on_disconnect`](Anomalies::on_disconnect)), and emits
//! the events each call returns. Every call takes the time as an
//! [`Instant`], so tests drive the clock.
//!
//! | detector | event | key |
//! |---|---|---|
//! | `new_fingerprint` | `anomaly.new_fingerprint` (3101) | user (learning window), user and application (shapes) |
//! | `error_burst` | `anomaly.error_burst` (3102) | session |
//! | `bulk_read` | `anomaly.bulk_read` (3104) | fingerprint |
//! | `dump` | `anomaly.dump` (3105) | session; the pg_dump signature, or COPY TO STDOUT of a monitored table |
//! | `auth_probe` | `anomaly.auth_probe` (3106) | source address |
//! | `tls_probe` | `anomaly.tls_probe` (3107) | source address |
//! | `new_source` | `anomaly.new_source` (3108) | user (learning window), user and source |
//! | `tls_downgrade` | `anomaly.tls_downgrade` (3109) | user |
//! | `rate` | `anomaly.rate` (3110) | fingerprint; user |
//!
//! # Memory
//!
//! Each detector keeps its keys in tables of at most
//! [`max_keys`](AnomalyConfig::max_keys) entries: eleven tables, each entry
//! under 100 bytes with the hash table's overhead, so at most about 50 MB
//! with the default of 50,000, reached only when something floods them.
//! A full table drops its least recently used quarter at once; the cost of
//! that pass, spread over the inserts that filled the quarter, is a few
//! operations per insert. A dropped key starts over: a learned shape or
//! source is new again, a rate or row baseline learns again.
//!
//! Keys are hashed with a per-process random key, so no client can aim
//! statements, application names or addresses at one hash bucket.
//!
//! See `docs/anomaly.md` for each detector's rationale and settings.

use std::collections::HashMap;
use std::collections::hash_map::RandomState;
use std::fmt;
use std::hash::{BuildHasher, BuildHasherDefault, Hasher};
use std::net::IpAddr;
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Instant;

use serde::Deserialize;
use vigil_event::{Event, Kind, Session, catalog};
use vigil_sql::StatementClass;

use crate::firewall::{TablePattern, TableRef};

// ---------------------------------------------------------------------------
// Configuration

/// The settings of every detector, read from a TOML table (keys as the
/// field names, sub-tables such as `[bulk_read]` for each detector). Every
/// field has a default; unknown keys are refused.
#[derive(Clone, Debug, Deserialize, PartialEq)]
#[serde(default, deny_unknown_fields)]
pub struct AnomalyConfig {
    /// The most keys each detector table holds (at least 16; default
    /// 50,000).
    pub max_keys: usize,
    /// After a detector reports a key (a session, a source, a fingerprint,
    /// a user), it stays quiet about that key for this long.
    pub repeat_seconds: u64,
    /// Sources are grouped by this IPv4 prefix length (1–32).
    pub ipv4_prefix: u8,
    /// Sources are grouped by this IPv6 prefix length (1–128): one host
    /// often holds a whole /64.
    pub ipv6_prefix: u8,
    /// A statement shape never seen for its user and application.
    pub new_fingerprint: NewFingerprintConfig,
    /// Syntax and type errors in bursts.
    pub error_burst: ErrorBurstConfig,
    /// Far more rows than the statement's usual.
    pub bulk_read: BulkReadConfig,
    /// pg_dump, and copies of monitored tables.
    pub dump: DumpConfig,
    /// Failed authentications in bursts from one source.
    pub auth_probe: ProbeConfig,
    /// Failed TLS handshakes in bursts from one source.
    pub tls_probe: ProbeConfig,
    /// A source never seen for a user.
    pub new_source: NewSourceConfig,
    /// A user who always used TLS comes without, or with an older version.
    pub tls_downgrade: TlsDowngradeConfig,
    /// Statements far above their usual rate.
    pub rate: RateConfig,
}

impl Default for AnomalyConfig {
    fn default() -> Self {
        AnomalyConfig {
            max_keys: 50_000,
            repeat_seconds: 300,
            ipv4_prefix: 32,
            ipv6_prefix: 64,
            new_fingerprint: NewFingerprintConfig::default(),
            error_burst: ErrorBurstConfig::default(),
            bulk_read: BulkReadConfig::default(),
            dump: DumpConfig::default(),
            auth_probe: ProbeConfig {
                enabled: true,
                failures: 10,
                window_seconds: 60,
            },
            tls_probe: ProbeConfig {
                enabled: true,
                failures: 20,
                window_seconds: 60,
            },
            new_source: NewSourceConfig::default(),
            tls_downgrade: TlsDowngradeConfig::default(),
            rate: RateConfig::default(),
        }
    }
}

/// `[anomaly.new_fingerprint]`.
#[derive(Clone, Debug, Deserialize, PartialEq)]
#[serde(default, deny_unknown_fields)]
pub struct NewFingerprintConfig {
    /// On or off.
    pub enabled: bool,
    /// A user learns until it has run this many statements…
    pub learn_statements: u64,
    /// …and this long has passed since its first statement.
    pub learn_seconds: u64,
    /// Shapes are learned per user and application (true) or per user.
    pub per_application: bool,
}

impl Default for NewFingerprintConfig {
    fn default() -> Self {
        NewFingerprintConfig {
            enabled: true,
            learn_statements: 10_000,
            learn_seconds: 86_400,
            per_application: true,
        }
    }
}

/// `[anomaly.error_burst]`.
#[derive(Clone, Debug, Deserialize, PartialEq)]
#[serde(default, deny_unknown_fields)]
pub struct ErrorBurstConfig {
    /// On or off.
    pub enabled: bool,
    /// Report when one session has this many errors…
    pub errors: u32,
    /// …within this sliding window.
    pub window_seconds: u64,
    /// The SQLSTATEs that count.
    pub sqlstates: Vec<String>,
}

impl Default for ErrorBurstConfig {
    fn default() -> Self {
        ErrorBurstConfig {
            enabled: true,
            errors: 10,
            window_seconds: 60,
            sqlstates: ["42601", "22P02", "42703", "42883"]
                .map(String::from)
                .to_vec(),
        }
    }
}

/// `[anomaly.bulk_read]`.
#[derive(Clone, Debug, Deserialize, PartialEq)]
#[serde(default, deny_unknown_fields)]
pub struct BulkReadConfig {
    /// On or off.
    pub enabled: bool,
    /// Report a read that returns more than this many times its
    /// fingerprint's usual high…
    pub factor: f64,
    /// …and at least this many rows.
    pub min_rows: u64,
    /// A fingerprint is judged after this many reads.
    pub warmup: u32,
}

impl Default for BulkReadConfig {
    fn default() -> Self {
        BulkReadConfig {
            enabled: true,
            factor: 10.0,
            min_rows: 1_000,
            warmup: 20,
        }
    }
}

/// `[anomaly.dump]`.
#[derive(Clone, Debug, Deserialize, PartialEq)]
#[serde(default, deny_unknown_fields)]
pub struct DumpConfig {
    /// On or off.
    pub enabled: bool,
    /// `COPY … TO STDOUT` statements in one session that count as one sign
    /// of a dump.
    pub copy_statements: u32,
    /// Tables whose every `COPY … TO STDOUT` is reported: `name` (any
    /// schema) or `schema.name`, `*` for any run of characters.
    pub monitored_tables: Vec<String>,
    /// The schemas a table named without one may be in, for
    /// `monitored_tables` with a schema.
    pub search_path: Vec<String>,
    /// Users whose dumps are expected (a backup role): not reported.
    pub ignore_users: Vec<String>,
}

impl Default for DumpConfig {
    fn default() -> Self {
        DumpConfig {
            enabled: true,
            copy_statements: 5,
            monitored_tables: Vec::new(),
            search_path: vec!["public".to_owned()],
            ignore_users: Vec::new(),
        }
    }
}

/// `[anomaly.auth_probe]` and `[anomaly.tls_probe]`.
#[derive(Clone, Debug, Deserialize, PartialEq)]
#[serde(default, deny_unknown_fields)]
pub struct ProbeConfig {
    /// On or off.
    pub enabled: bool,
    /// Report when one source fails this many times…
    pub failures: u32,
    /// …within this sliding window.
    pub window_seconds: u64,
}

impl Default for ProbeConfig {
    fn default() -> Self {
        ProbeConfig {
            enabled: true,
            failures: 10,
            window_seconds: 60,
        }
    }
}

/// `[anomaly.new_source]`.
#[derive(Clone, Debug, Deserialize, PartialEq)]
#[serde(default, deny_unknown_fields)]
pub struct NewSourceConfig {
    /// On or off.
    pub enabled: bool,
    /// A user learns its sources until it has connected this many times…
    pub learn_connections: u64,
    /// …and this long has passed since its first connection.
    pub learn_seconds: u64,
}

impl Default for NewSourceConfig {
    fn default() -> Self {
        NewSourceConfig {
            enabled: true,
            learn_connections: 100,
            learn_seconds: 7 * 86_400,
        }
    }
}

/// `[anomaly.tls_downgrade]`.
#[derive(Clone, Debug, Deserialize, PartialEq)]
#[serde(default, deny_unknown_fields)]
pub struct TlsDowngradeConfig {
    /// On or off.
    pub enabled: bool,
    /// A user is judged once it has connected with TLS this many times.
    pub min_connections: u32,
}

impl Default for TlsDowngradeConfig {
    fn default() -> Self {
        TlsDowngradeConfig {
            enabled: true,
            min_connections: 20,
        }
    }
}

/// `[anomaly.rate]`.
#[derive(Clone, Debug, Deserialize, PartialEq)]
#[serde(default, deny_unknown_fields)]
pub struct RateConfig {
    /// On or off.
    pub enabled: bool,
    /// Watch each fingerprint's rate.
    pub per_fingerprint: bool,
    /// Watch each user's rate.
    pub per_user: bool,
    /// Report a second with more than this many times the usual rate…
    pub factor: f64,
    /// …and at least this many statements.
    pub min_per_second: u32,
    /// The usual rate is an average whose weights halve over this time.
    pub half_life_seconds: u64,
    /// A key is judged once it has been seen this long.
    pub warmup_seconds: u64,
}

impl Default for RateConfig {
    fn default() -> Self {
        RateConfig {
            enabled: true,
            per_fingerprint: true,
            per_user: true,
            factor: 10.0,
            min_per_second: 200,
            half_life_seconds: 600,
            warmup_seconds: 300,
        }
    }
}

/// A setting that is out of range: its key path within the table and what
/// to do. `Display`: `<key>: <what is wrong; what to do>`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct InvalidSetting {
    /// The key path, e.g. `bulk_read.factor`.
    pub key: String,
    /// What is wrong and what to do.
    pub message: String,
}

impl fmt::Display for InvalidSetting {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}: {}", self.key, self.message)
    }
}

impl std::error::Error for InvalidSetting {}

impl AnomalyConfig {
    /// Checks every setting's range.
    pub fn validate(&self) -> Result<(), InvalidSetting> {
        self.compile().map(|_| ())
    }

    fn compile(&self) -> Result<Compiled, InvalidSetting> {
        let bad = |key: &str, message: &str| {
            Err(InvalidSetting {
                key: key.to_owned(),
                message: message.to_owned(),
            })
        };
        if self.max_keys < 16 {
            return bad("max_keys", "must be at least 16; the default is 50000");
        }
        if !(1..=32).contains(&self.ipv4_prefix) {
            return bad("ipv4_prefix", "must be 1 to 32; the default is 32");
        }
        if !(1..=128).contains(&self.ipv6_prefix) {
            return bad("ipv6_prefix", "must be 1 to 128; the default is 64");
        }
        let nf = &self.new_fingerprint;
        if nf.enabled && nf.learn_statements == 0 && nf.learn_seconds == 0 {
            return bad(
                "new_fingerprint.learn_statements",
                "a learning window is needed; set learn_statements or learn_seconds above 0",
            );
        }
        let eb = &self.error_burst;
        if eb.errors == 0 {
            return bad("error_burst.errors", "must be at least 1");
        }
        if eb.window_seconds == 0 {
            return bad("error_burst.window_seconds", "must be at least 1");
        }
        let mut sqlstates = Vec::with_capacity(eb.sqlstates.len());
        for (i, s) in eb.sqlstates.iter().enumerate() {
            let code: Option<[u8; 5]> = s.as_bytes().try_into().ok();
            match code.filter(|c| c.iter().all(u8::is_ascii_alphanumeric)) {
                Some(c) => sqlstates.push(c.map(|b| b.to_ascii_uppercase())),
                None => {
                    return bad(
                        &format!("error_burst.sqlstates[{i}]"),
                        "not a SQLSTATE; write its five characters, e.g. \"42601\"",
                    );
                }
            }
        }
        let br = &self.bulk_read;
        if !(br.factor > 1.0 && br.factor.is_finite()) {
            return bad("bulk_read.factor", "must be above 1; the default is 10");
        }
        let dump = &self.dump;
        if dump.copy_statements == 0 {
            return bad("dump.copy_statements", "must be at least 1");
        }
        let mut monitored = Vec::with_capacity(dump.monitored_tables.len());
        for (i, t) in dump.monitored_tables.iter().enumerate() {
            match TablePattern::parse(t) {
                Ok(p) => monitored.push(p),
                Err(m) => return bad(&format!("dump.monitored_tables[{i}]"), &m),
            }
        }
        for (key, p) in [
            ("auth_probe", &self.auth_probe),
            ("tls_probe", &self.tls_probe),
        ] {
            if p.failures == 0 {
                return bad(&format!("{key}.failures"), "must be at least 1");
            }
            if p.window_seconds == 0 {
                return bad(&format!("{key}.window_seconds"), "must be at least 1");
            }
        }
        let ns = &self.new_source;
        if ns.enabled && ns.learn_connections == 0 && ns.learn_seconds == 0 {
            return bad(
                "new_source.learn_connections",
                "a learning window is needed; set learn_connections or learn_seconds above 0",
            );
        }
        if self.tls_downgrade.min_connections == 0 {
            return bad("tls_downgrade.min_connections", "must be at least 1");
        }
        let rate = &self.rate;
        if !(rate.factor > 1.0 && rate.factor.is_finite()) {
            return bad("rate.factor", "must be above 1; the default is 10");
        }
        if rate.half_life_seconds == 0 {
            return bad("rate.half_life_seconds", "must be at least 1");
        }
        Ok(Compiled {
            sqlstates,
            monitored,
            search_path: dump.search_path.iter().map(|s| s.as_str().into()).collect(),
            // The weight of each new second: 1 - 2^(-1/half_life).
            rate_alpha: 1.0 - 0.5f64.powf(1.0 / rate.half_life_seconds as f64),
            ln_bulk_factor: br.factor.ln(),
        })
    }
}

/// What [`AnomalyConfig::compile`] derives once.
#[derive(Debug)]
struct Compiled {
    sqlstates: Vec<[u8; 5]>,
    monitored: Vec<TablePattern>,
    search_path: Vec<Box<str>>,
    rate_alpha: f64,
    ln_bulk_factor: f64,
}

// ---------------------------------------------------------------------------
// Inputs

/// A client connection whose startup is known.
#[derive(Clone, Copy, Debug)]
pub struct ConnectInfo<'a> {
    /// The database user.
    pub user: &'a str,
    /// The `application_name`.
    pub application: &'a str,
    /// The client's address.
    pub source: IpAddr,
    /// The TLS version with the client (`TLSv1.3`, as
    /// [`Session::tls_version`]), `None` without TLS.
    pub tls: Option<&'a str>,
    /// The session, attached to the events.
    pub session: Option<&'a Arc<Session>>,
}

/// The direction of a `COPY`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum CopyDirection {
    /// `COPY … FROM STDIN`: data from the client.
    In,
    /// `COPY … TO STDOUT`: data to the client.
    Out,
}

/// A statement that completed or failed.
#[derive(Clone, Copy, Debug)]
pub struct StatementSeen<'a> {
    /// The session; its `id` keys the per-session detectors (statements
    /// without one share one state), and it is attached to the events.
    pub session: Option<&'a Arc<Session>>,
    /// The database user.
    pub user: &'a str,
    /// The `application_name`.
    pub application: &'a str,
    /// The statement's fingerprint.
    pub fingerprint: u64,
    /// Its class.
    pub class: StatementClass,
    /// Its redacted text.
    pub text: &'a str,
    /// The rows it returned (or copied out), when it completed.
    pub rows: Option<u64>,
    /// The SQLSTATE, when it failed.
    pub sqlstate: Option<&'a str>,
    /// The COPY direction the server answered with. When `None`, a `read`
    /// statement whose text starts with `COPY` counts as `COPY … TO`.
    pub copy: Option<CopyDirection>,
    /// The tables it names ([`crate::firewall::tables`]); needed only
    /// with `dump.monitored_tables`.
    pub tables: &'a [TableRef],
}

// ---------------------------------------------------------------------------
// The detectors

/// Every detector's state. Shared between sessions (`Send + Sync`); each
/// call locks once.
#[derive(Debug)]
pub struct Anomalies {
    config: AnomalyConfig,
    compiled: Compiled,
    start: Instant,
    keys: RandomState,
    state: Mutex<State>,
}

#[derive(Debug)]
struct State {
    fp_windows: Capped<Window>,
    fp_known: Capped<()>,
    sessions: Capped<SessionState>,
    rows: Capped<RowStats>,
    auth: Capped<Burst>,
    tls: Capped<Burst>,
    src_windows: Capped<Window>,
    src_known: Capped<()>,
    tls_users: Capped<TlsHistory>,
    rate_fp: Capped<RateStats>,
    rate_user: Capped<RateStats>,
}

/// A learning window: since when, and how many.
#[derive(Debug)]
struct Window {
    first_ms: u64,
    count: u64,
}

impl Window {
    fn learning(&self, now_ms: u64, count: u64, seconds: u64) -> bool {
        self.count <= count || now_ms.saturating_sub(self.first_ms) < seconds.saturating_mul(1000)
    }
}

#[derive(Debug, Default)]
struct SessionState {
    errors: Sliding,
    errors_quiet_until: u64,
    dump_signs: u8,
    copies: u32,
    dump_reported: bool,
}

const SIGN_APPLICATION: u8 = 1;
const SIGN_SNAPSHOT_TRANSACTION: u8 = 2;
const SIGN_EXPORT_SNAPSHOT: u8 = 4;
const SIGN_COPIES: u8 = 8;

/// An approximate sliding-window counter: the count of the current fixed
/// window plus the previous window's, weighted by how much of it the
/// sliding window still covers.
#[derive(Debug, Default)]
struct Sliding {
    index: u64,
    current: u32,
    previous: u32,
}

impl Sliding {
    /// Counts one event at `now_ms`; returns the estimate over the last
    /// `window_ms`.
    fn add(&mut self, now_ms: u64, window_ms: u64) -> u32 {
        let index = now_ms / window_ms;
        if index == self.index {
            self.current = self.current.saturating_add(1);
        } else {
            self.previous = if index == self.index + 1 {
                self.current
            } else {
                0
            };
            self.current = 1;
            self.index = index;
        }
        let into = now_ms % window_ms;
        let carried = u64::from(self.previous) * (window_ms - into) / window_ms;
        u32::try_from(carried)
            .unwrap_or(u32::MAX)
            .saturating_add(self.current)
    }
}

#[derive(Debug, Default)]
struct Burst {
    count: Sliding,
    quiet_until: u64,
}

/// Running statistics of `ln(1 + rows)`: mean and mean absolute deviation.
#[derive(Debug, Default)]
struct RowStats {
    mean: f64,
    dev: f64,
    n: u32,
    quiet_until: u64,
}

#[derive(Debug)]
struct TlsHistory {
    tls: u32,
    plain: u32,
    /// The lowest TLS version seen (see [`tls_rank`]); `u8::MAX` for none.
    lowest: u8,
}

/// Per-second counts and their exponentially weighted mean.
#[derive(Debug)]
struct RateStats {
    first_sec: u64,
    sec: u64,
    count: u32,
    /// The weighted mean of past seconds' counts, before bias correction.
    mean: f64,
    /// The total weight of past seconds: `mean / weight` is the usual rate.
    weight: f64,
    quiet_until: u64,
}

impl RateStats {
    fn new(sec: u64) -> Self {
        RateStats {
            first_sec: sec,
            sec,
            count: 0,
            mean: 0.0,
            weight: 0.0,
            quiet_until: 0,
        }
    }

    /// Counts one statement in second `sec`; returns this second's count
    /// and the usual rate of the seconds before.
    fn add(&mut self, sec: u64, alpha: f64) -> (u32, f64) {
        if sec > self.sec {
            let keep = 1.0 - alpha;
            self.mean = self.mean * keep + alpha * f64::from(self.count);
            self.weight = self.weight * keep + alpha;
            // The seconds in between counted nothing.
            let gap = sec - self.sec - 1;
            if gap > 0 {
                let d = keep.powi(i32::try_from(gap).unwrap_or(i32::MAX));
                self.mean *= d;
                self.weight = 1.0 - (1.0 - self.weight) * d;
            }
            self.sec = sec;
            self.count = 0;
        }
        self.count = self.count.saturating_add(1);
        let usual = if self.weight > 0.0 {
            self.mean / self.weight
        } else {
            0.0
        };
        (self.count, usual)
    }
}

impl Anomalies {
    /// The detectors with `config`, whose clock starts at `start`: every
    /// later call passes an `Instant` no earlier.
    pub fn new(config: AnomalyConfig, start: Instant) -> Result<Anomalies, InvalidSetting> {
        let compiled = config.compile()?;
        let cap = config.max_keys;
        Ok(Anomalies {
            state: Mutex::new(State {
                fp_windows: Capped::new(cap),
                fp_known: Capped::new(cap),
                sessions: Capped::new(cap),
                rows: Capped::new(cap),
                auth: Capped::new(cap),
                tls: Capped::new(cap),
                src_windows: Capped::new(cap),
                src_known: Capped::new(cap),
                tls_users: Capped::new(cap),
                rate_fp: Capped::new(cap),
                rate_user: Capped::new(cap),
            }),
            config,
            compiled,
            start,
            keys: RandomState::new(),
        })
    }

    /// The configuration.
    pub fn config(&self) -> &AnomalyConfig {
        &self.config
    }

    /// How many keys each detector table holds, by table name: for metrics
    /// and tests. None exceeds [`AnomalyConfig::max_keys`].
    pub fn tracked(&self) -> Vec<(&'static str, usize)> {
        let s = self.lock();
        vec![
            ("new_fingerprint.users", s.fp_windows.len()),
            ("new_fingerprint.shapes", s.fp_known.len()),
            ("sessions", s.sessions.len()),
            ("bulk_read", s.rows.len()),
            ("auth_probe", s.auth.len()),
            ("tls_probe", s.tls.len()),
            ("new_source.users", s.src_windows.len()),
            ("new_source.sources", s.src_known.len()),
            ("tls_downgrade", s.tls_users.len()),
            ("rate.fingerprints", s.rate_fp.len()),
            ("rate.users", s.rate_user.len()),
        ]
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(PoisonError::into_inner)
    }

    fn ms(&self, now: Instant) -> u64 {
        u64::try_from(now.saturating_duration_since(self.start).as_millis()).unwrap_or(u64::MAX)
    }

    fn key<T: std::hash::Hash>(&self, v: T) -> u64 {
        self.keys.hash_one(v)
    }

    fn repeat_ms(&self) -> u64 {
        self.config.repeat_seconds.saturating_mul(1000)
    }

    /// A client's startup is known: new sources and TLS downgrades.
    pub fn on_connect(&self, c: &ConnectInfo<'_>, now: Instant) -> Vec<Event> {
        let mut out = Vec::new();
        let ns = &self.config.new_source;
        let td = &self.config.tls_downgrade;
        if !ns.enabled && !td.enabled {
            return out;
        }
        let now_ms = self.ms(now);
        let user_key = self.key((0u8, c.user));
        let mut s = self.lock();
        if ns.enabled {
            let (prefix, bits) = self.prefix(c.source);
            let w = s.src_windows.entry(user_key, || Window {
                first_ms: now_ms,
                count: 0,
            });
            w.count += 1;
            let learning = w.learning(now_ms, ns.learn_connections, ns.learn_seconds);
            let (_, new) = s
                .src_known
                .insert(self.key((1u8, c.user, prefix, bits)), || ());
            if new && !learning {
                out.push(
                    event(
                        catalog::ANOMALY_NEW_SOURCE,
                        "a user connected from a new source",
                        c.session,
                    )
                    .field("detector", "new_source")
                    .field("user", c.user.to_owned())
                    .field("source", source_text(prefix, bits))
                    .field("learn_connections", ns.learn_connections)
                    .field("learn_seconds", ns.learn_seconds),
                );
            }
        }
        if td.enabled {
            let h = s.tls_users.entry(user_key, || TlsHistory {
                tls: 0,
                plain: 0,
                lowest: u8::MAX,
            });
            let judged = h.tls >= td.min_connections;
            match c.tls {
                None => {
                    if judged && h.plain == 0 {
                        out.push(self.downgrade(c, "TLS", "none", h.tls));
                    }
                    h.plain = h.plain.saturating_add(1);
                }
                Some(version) => {
                    let rank = tls_rank(version);
                    if judged && rank < h.lowest && h.lowest != u8::MAX {
                        out.push(self.downgrade(c, tls_name(h.lowest), version, h.tls));
                    }
                    if rank != u8::MAX {
                        h.lowest = h.lowest.min(rank);
                    }
                    h.tls = h.tls.saturating_add(1);
                }
            }
        }
        out
    }

    fn downgrade(&self, c: &ConnectInfo<'_>, before: &str, now: &str, tls: u32) -> Event {
        event(
            catalog::ANOMALY_TLS_DOWNGRADE,
            "a user who always used TLS connected without it or with an older version",
            c.session,
        )
        .field("detector", "tls_downgrade")
        .field("user", c.user.to_owned())
        .field("previous_tls", before.to_owned())
        .field("tls", now.to_owned())
        .field("tls_connections", tls)
        .field("min_connections", self.config.tls_downgrade.min_connections)
    }

    /// A client failed to authenticate.
    pub fn on_auth_failed(
        &self,
        source: IpAddr,
        session: Option<&Arc<Session>>,
        now: Instant,
    ) -> Vec<Event> {
        self.probe(source, session, now, false)
    }

    /// A client's TLS handshake failed.
    pub fn on_tls_failed(
        &self,
        source: IpAddr,
        session: Option<&Arc<Session>>,
        now: Instant,
    ) -> Vec<Event> {
        self.probe(source, session, now, true)
    }

    fn probe(
        &self,
        source: IpAddr,
        session: Option<&Arc<Session>>,
        now: Instant,
        tls: bool,
    ) -> Vec<Event> {
        let (cfg, kind, name, message) = if tls {
            (
                &self.config.tls_probe,
                catalog::ANOMALY_TLS_PROBE,
                "tls_probe",
                "a burst of failed TLS handshakes from one source",
            )
        } else {
            (
                &self.config.auth_probe,
                catalog::ANOMALY_AUTH_PROBE,
                "auth_probe",
                "a burst of failed authentications from one source",
            )
        };
        if !cfg.enabled {
            return Vec::new();
        }
        let now_ms = self.ms(now);
        let (prefix, bits) = self.prefix(source);
        let key = self.key((2u8, prefix, bits));
        let mut s = self.lock();
        let table = if tls { &mut s.tls } else { &mut s.auth };
        let b = table.entry(key, Burst::default);
        let count = b.count.add(now_ms, cfg.window_seconds.saturating_mul(1000));
        if count < cfg.failures || now_ms < b.quiet_until {
            return Vec::new();
        }
        b.quiet_until = now_ms.saturating_add(self.repeat_ms());
        vec![
            event(kind, message, session)
                .field("detector", name)
                .field("source", source_text(prefix, bits))
                .field("failures", count)
                .field("threshold", cfg.failures)
                .field("window_seconds", cfg.window_seconds),
        ]
    }

    /// A session ended: its state goes.
    pub fn on_disconnect(&self, session_id: u64) {
        let key = self.key((3u8, session_id));
        self.lock().sessions.remove(key);
    }

    /// A statement completed or failed.
    pub fn on_statement(&self, st: &StatementSeen<'_>, now: Instant) -> Vec<Event> {
        let mut out = Vec::new();
        let cfg = &self.config;
        let now_ms = self.ms(now);
        let copy_out = st.copy == Some(CopyDirection::Out)
            || (st.copy.is_none()
                && st.class == StatementClass::Read
                && starts_with_ci(st.text, "COPY"));

        // What this statement tells the per-session detectors.
        let error = cfg.error_burst.enabled
            && st.sqlstate.is_some_and(|code| {
                self.compiled
                    .sqlstates
                    .iter()
                    .any(|c| code.as_bytes().eq_ignore_ascii_case(c))
            });
        let dump = cfg.dump.enabled && !cfg.dump.ignore_users.iter().any(|u| u == st.user);
        let signs = if dump { dump_signs(st, copy_out) } else { 0 };
        let monitored = if dump && copy_out && !self.compiled.monitored.is_empty() {
            st.tables.iter().find(|t| {
                self.compiled
                    .monitored
                    .iter()
                    .any(|p| p.matches(t, &self.compiled.search_path))
            })
        } else {
            None
        };

        let nf = &cfg.new_fingerprint;
        let user_key = self.key((0u8, st.user));
        let shape_key = if nf.enabled {
            let app = if nf.per_application {
                st.application
            } else {
                ""
            };
            self.key((4u8, st.user, app, st.fingerprint))
        } else {
            0
        };
        let fp_key = if cfg.bulk_read.enabled || (cfg.rate.enabled && cfg.rate.per_fingerprint) {
            self.key((5u8, st.fingerprint))
        } else {
            0
        };
        let mut s = self.lock();

        if nf.enabled {
            let w = s.fp_windows.entry(user_key, || Window {
                first_ms: now_ms,
                count: 0,
            });
            w.count += 1;
            let learning = w.learning(now_ms, nf.learn_statements, nf.learn_seconds);
            let (_, new) = s.fp_known.insert(shape_key, || ());
            if new && !learning {
                out.push(
                    event(
                        catalog::ANOMALY_NEW_FINGERPRINT,
                        "a user and application ran a statement shape never seen",
                        st.session,
                    )
                    .fingerprint(st.fingerprint)
                    .field("detector", "new_fingerprint")
                    .field("user", st.user.to_owned())
                    .field("application", st.application.to_owned())
                    .field("class", st.class.as_str())
                    .field("statement", st.text.to_owned())
                    .field("learn_statements", nf.learn_statements)
                    .field("learn_seconds", nf.learn_seconds),
                );
            }
        }

        if error || signs != 0 {
            let eb = &cfg.error_burst;
            let repeat = self.repeat_ms();
            let session_key = self.key((3u8, st.session.map_or(0, |s| s.id)));
            let ss = s.sessions.entry(session_key, SessionState::default);
            if error {
                let count = ss
                    .errors
                    .add(now_ms, eb.window_seconds.saturating_mul(1000));
                if count >= eb.errors && now_ms >= ss.errors_quiet_until {
                    ss.errors_quiet_until = now_ms.saturating_add(repeat);
                    out.push(
                        event(
                            catalog::ANOMALY_ERROR_BURST,
                            "a burst of syntax and type errors in one session",
                            st.session,
                        )
                        .fingerprint(st.fingerprint)
                        .field("detector", "error_burst")
                        .field("errors", count)
                        .field("threshold", eb.errors)
                        .field("window_seconds", eb.window_seconds)
                        .field("sqlstate", st.sqlstate.unwrap_or("").to_owned()),
                    );
                }
            }
            if signs != 0 {
                if signs & SIGN_COPIES != 0 {
                    ss.copies = ss.copies.saturating_add(1);
                }
                let mut now_signs = ss.dump_signs | (signs & !SIGN_COPIES);
                if ss.copies >= cfg.dump.copy_statements {
                    now_signs |= SIGN_COPIES;
                }
                ss.dump_signs = now_signs;
                if now_signs.count_ones() >= 2 && !ss.dump_reported {
                    ss.dump_reported = true;
                    out.push(
                        event(
                            catalog::ANOMALY_DUMP,
                            "a session shows the pg_dump signature",
                            st.session,
                        )
                        .field("detector", "dump")
                        .field("reason", "pg_dump signature")
                        .field("signs", sign_names(now_signs))
                        .field("copies", ss.copies)
                        .field("copy_statements", cfg.dump.copy_statements)
                        .field("user", st.user.to_owned())
                        .field("application", st.application.to_owned()),
                    );
                }
            }
        }

        if let Some(table) = monitored {
            let mut ev = event(
                catalog::ANOMALY_DUMP,
                "a monitored table was copied to the client",
                st.session,
            )
            .fingerprint(st.fingerprint)
            .field("detector", "dump")
            .field("reason", "copy of a monitored table")
            .field("table", table.to_string())
            .field("user", st.user.to_owned());
            if let Some(rows) = st.rows {
                ev = ev.field("rows", rows);
            }
            out.push(ev);
        }

        if cfg.bulk_read.enabled
            && st.class == StatementClass::Read
            && let Some(rows) = st.rows
        {
            let br = &cfg.bulk_read;
            let repeat = self.repeat_ms();
            let r = s.rows.entry(fp_key, RowStats::default);
            let x = (rows as f64).ln_1p();
            let judged = r.n >= br.warmup;
            // The usual high: the mean plus twice the mean deviation, in
            // log space.
            let high = r.mean + 2.0 * r.dev;
            let usual = || high.exp_m1().max(1.0);
            if judged
                && rows >= br.min_rows
                && rows as f64 > br.factor * usual()
                && now_ms >= r.quiet_until
            {
                {
                    r.quiet_until = now_ms.saturating_add(repeat);
                    out.push(
                        event(
                            catalog::ANOMALY_BULK_READ,
                            "a read returned far more rows than its statement usually does",
                            st.session,
                        )
                        .fingerprint(st.fingerprint)
                        .field("detector", "bulk_read")
                        .field("rows", rows)
                        .field("usual_rows", usual().round() as u64)
                        .field("factor", br.factor.to_string())
                        .field("min_rows", br.min_rows)
                        .field("samples", r.n)
                        .field("user", st.user.to_owned()),
                    );
                }
            }
            // An outlier moves the baseline no further than the threshold,
            // so a few huge reads do not make the next ones usual.
            let x = if judged {
                x.min(high + self.compiled.ln_bulk_factor)
            } else {
                x
            };
            r.n = r.n.saturating_add(1);
            let alpha = (1.0 / f64::from(r.n)).max(1.0 / 64.0);
            let delta = x - r.mean;
            r.mean += alpha * delta;
            r.dev += alpha * (delta.abs() - r.dev);
        }

        if cfg.rate.enabled {
            let rc = &cfg.rate;
            let sec = now_ms / 1000;
            let alpha = self.compiled.rate_alpha;
            let repeat = self.repeat_ms();
            let threshold = |usual: f64| (rc.factor * usual).max(f64::from(rc.min_per_second));
            if rc.per_fingerprint {
                let r = s.rate_fp.entry(fp_key, || RateStats::new(sec));
                let (count, usual) = r.add(sec, alpha);
                if sec.saturating_sub(r.first_sec) >= rc.warmup_seconds
                    && f64::from(count) > threshold(usual)
                    && now_ms >= r.quiet_until
                {
                    r.quiet_until = now_ms.saturating_add(repeat);
                    out.push(
                        self.rate_event(st, "fingerprint", count, usual)
                            .fingerprint(st.fingerprint),
                    );
                }
            }
            if rc.per_user {
                let r = s.rate_user.entry(user_key, || RateStats::new(sec));
                let (count, usual) = r.add(sec, alpha);
                if sec.saturating_sub(r.first_sec) >= rc.warmup_seconds
                    && f64::from(count) > threshold(usual)
                    && now_ms >= r.quiet_until
                {
                    r.quiet_until = now_ms.saturating_add(repeat);
                    out.push(self.rate_event(st, "user", count, usual));
                }
            }
        }
        out
    }

    fn rate_event(
        &self,
        st: &StatementSeen<'_>,
        scope: &'static str,
        count: u32,
        usual: f64,
    ) -> Event {
        let rc = &self.config.rate;
        event(
            catalog::ANOMALY_RATE,
            "statements ran far above their usual rate",
            st.session,
        )
        .field("detector", "rate")
        .field("scope", scope)
        .field("user", st.user.to_owned())
        .field("per_second", count)
        .field("usual_per_second", format!("{usual:.1}"))
        .field("factor", rc.factor.to_string())
        .field("min_per_second", rc.min_per_second)
    }

    /// The source's network: the address masked to the configured prefix.
    fn prefix(&self, ip: IpAddr) -> (IpAddr, u8) {
        let ip = match ip {
            IpAddr::V6(v6) => v6.to_ipv4_mapped().map_or(ip, IpAddr::V4),
            v4 => v4,
        };
        match ip {
            IpAddr::V4(v4) => {
                let bits = self.config.ipv4_prefix.min(32);
                let mask = u32::MAX.checked_shl(32 - u32::from(bits)).unwrap_or(0);
                (IpAddr::V4((u32::from(v4) & mask).into()), bits)
            }
            IpAddr::V6(v6) => {
                let bits = self.config.ipv6_prefix.min(128);
                let mask = u128::MAX.checked_shl(128 - u32::from(bits)).unwrap_or(0);
                (IpAddr::V6((u128::from(v6) & mask).into()), bits)
            }
        }
    }
}

fn event(kind: Kind, message: &'static str, session: Option<&Arc<Session>>) -> Event {
    let ev = Event::new(kind, message);
    match session {
        Some(s) => ev.session(Arc::clone(s)),
        None => ev,
    }
}

fn source_text(prefix: IpAddr, bits: u8) -> String {
    let full = if prefix.is_ipv4() { 32 } else { 128 };
    if bits >= full {
        prefix.to_string()
    } else {
        format!("{prefix}/{bits}")
    }
}

/// TLS versions in order; `u8::MAX` for an unknown name.
fn tls_rank(version: &str) -> u8 {
    match version {
        "SSLv3" => 3,
        "TLSv1" | "TLSv1.0" => 10,
        "TLSv1.1" => 11,
        "TLSv1.2" => 12,
        "TLSv1.3" => 13,
        _ => u8::MAX,
    }
}

fn tls_name(rank: u8) -> &'static str {
    match rank {
        3 => "SSLv3",
        10 => "TLSv1",
        11 => "TLSv1.1",
        12 => "TLSv1.2",
        13 => "TLSv1.3",
        _ => "TLS",
    }
}

/// The pg_dump signs a statement shows.
fn dump_signs(st: &StatementSeen<'_>, copy_out: bool) -> u8 {
    let mut signs = 0;
    if st.application.eq_ignore_ascii_case("pg_dump")
        || st.application.eq_ignore_ascii_case("pg_dumpall")
    {
        signs |= SIGN_APPLICATION;
    }
    if copy_out {
        signs |= SIGN_COPIES;
    }
    let text = st.text;
    match st.class {
        // pg_dump: SET TRANSACTION ISOLATION LEVEL REPEATABLE READ, READ ONLY
        // (or SERIALIZABLE, READ ONLY, DEFERRABLE).
        StatementClass::Misc
            if text.len() <= 96
                && (starts_with_ci(text, "SET TRANSACTION ISOLATION LEVEL")
                    || starts_with_ci(text, "START TRANSACTION ISOLATION LEVEL")
                    || starts_with_ci(text, "BEGIN ISOLATION LEVEL"))
                && (contains_ci(text, "REPEATABLE READ") || contains_ci(text, "SERIALIZABLE"))
                && contains_ci(text, "READ ONLY") =>
        {
            signs |= SIGN_SNAPSHOT_TRANSACTION;
        }
        // pg_dump: SELECT pg_catalog.pg_export_snapshot()
        StatementClass::Read if text.len() <= 96 && contains_ci(text, "pg_export_snapshot") => {
            signs |= SIGN_EXPORT_SNAPSHOT;
        }
        _ => {}
    }
    signs
}

fn sign_names(signs: u8) -> String {
    let mut names = Vec::new();
    for (bit, name) in [
        (SIGN_APPLICATION, "application"),
        (SIGN_SNAPSHOT_TRANSACTION, "snapshot_transaction"),
        (SIGN_EXPORT_SNAPSHOT, "export_snapshot"),
        (SIGN_COPIES, "copies"),
    ] {
        if signs & bit != 0 {
            names.push(name);
        }
    }
    names.join(",")
}

fn starts_with_ci(text: &str, prefix: &str) -> bool {
    text.as_bytes()
        .get(..prefix.len())
        .is_some_and(|h| h.eq_ignore_ascii_case(prefix.as_bytes()))
}

/// Whether `needle` (ASCII) occurs in `text`, ignoring ASCII case. Only
/// the positions holding the needle's first byte are compared in full.
fn contains_ci(text: &str, needle: &str) -> bool {
    let (h, n) = (text.as_bytes(), needle.as_bytes());
    let Some((&first, rest)) = n.split_first() else {
        return true;
    };
    let (lower, upper) = (first.to_ascii_lowercase(), first.to_ascii_uppercase());
    h.windows(n.len()).any(|w| {
        (w[0] == lower || w[0] == upper) && w.get(1..).is_some_and(|t| t.eq_ignore_ascii_case(rest))
    })
}

// ---------------------------------------------------------------------------
// Bounded tables

/// A hasher for keys that are already keyed hashes: it passes them on.
#[derive(Debug, Default)]
struct PassThrough(u64);

impl Hasher for PassThrough {
    fn finish(&self) -> u64 {
        self.0
    }

    fn write(&mut self, bytes: &[u8]) {
        for &b in bytes {
            self.0 = (self.0 ^ u64::from(b)).wrapping_mul(0x100_0000_01b3);
        }
    }

    fn write_u64(&mut self, n: u64) {
        self.0 = n;
    }
}

/// A table of at most `cap` entries; when full, the least recently used
/// quarter goes.
#[derive(Debug)]
struct Capped<V> {
    map: HashMap<u64, (u64, V), BuildHasherDefault<PassThrough>>,
    cap: usize,
    tick: u64,
}

impl<V> Capped<V> {
    fn new(cap: usize) -> Self {
        Capped {
            map: HashMap::default(),
            cap,
            tick: 0,
        }
    }

    fn len(&self) -> usize {
        self.map.len()
    }

    /// The entry for `key`, made with `make` when absent; whether it was.
    fn insert(&mut self, key: u64, make: impl FnOnce() -> V) -> (&mut V, bool) {
        self.tick += 1;
        let tick = self.tick;
        let new = !self.map.contains_key(&key);
        if new && self.map.len() >= self.cap {
            self.prune();
        }
        let slot = self.map.entry(key).or_insert_with(|| (tick, make()));
        slot.0 = tick;
        (&mut slot.1, new)
    }

    fn entry(&mut self, key: u64, make: impl FnOnce() -> V) -> &mut V {
        self.insert(key, make).0
    }

    fn remove(&mut self, key: u64) {
        self.map.remove(&key);
    }

    /// Drops the least recently used quarter.
    fn prune(&mut self) {
        let mut ticks: Vec<u64> = self.map.values().map(|(t, _)| *t).collect();
        if ticks.is_empty() {
            return;
        }
        let k = ticks.len() / 4;
        let cutoff = *ticks.select_nth_unstable(k).1;
        self.map.retain(|_, (t, _)| *t > cutoff);
    }
}
