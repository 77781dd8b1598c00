//! The event catalog: every event vigil can emit, with its stable code.
//!
//! This table is the single source of truth. `vigil events` prints it,
//! `docs/events.md` is generated from it, and every emitter names its event
//! through one of the [`Kind`] constants below. Codes never change meaning
//! once published; retired codes are never reused.
//!
//! Codes are grouped in ranges, one per [`Category`]:
//!
//! | Range | Category |
//! |---|---|
//! | 1000–1099 | service: start, listeners, configuration, signals, shutdown |
//! | 1100–1199 | connection: clients, sessions, authentication, upstream |
//! | 1200–1299 | tls: handshake failures, client side (12x0–12x9) and database side (122x) |
//! | 1300–1399 | keystore: master key, key files and key database |
//! | 1400–1499 | schema: monitored column checks |
//! | 2000–2099 | statement: redacted SQL statements |
//! | 2100–2199 | firewall: query firewall decisions and rules |
//! | 3000–3099 | poison: honeytoken (poison record) access |
//! | 3100–3199 | anomaly: one code per anomaly detector |
//! | 4000–4099 | audit: the sealed audit trail |
//! | 5000–5099 | export: sinks and the event pipeline |

use std::fmt;

use crate::event::{Outcome, Severity};

/// What area of vigil an event belongs to; each owns one code range.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Category {
    /// 5000–5099: sinks and the event pipeline.
    Export,
    /// 3100–3199: anomaly detectors.
    Anomaly,
    /// 4000–4099: the sealed audit trail.
    Audit,
    /// 1100–1199: clients, sessions, authentication, upstream connections.
    Connection,
    /// 2100–2199: query firewall decisions and rules.
    Firewall,
    /// 1300–1399: master key, key files and key database.
    Keystore,
    /// 3000–3099: poison record access.
    Poison,
    /// 1400–1499: monitored column checks.
    Schema,
    /// 1000–1099: service start, listeners, configuration, signals, shutdown.
    Service,
    /// 2000–2099: SQL statements, redacted.
    Statement,
    /// 1200–1299: TLS handshakes with clients and with the database.
    Tls,
}

impl Category {
    /// Every category, in code-range order.
    pub const ALL: [Category; 11] = [
        Category::Service,
        Category::Connection,
        Category::Tls,
        Category::Keystore,
        Category::Schema,
        Category::Statement,
        Category::Firewall,
        Category::Poison,
        Category::Anomaly,
        Category::Audit,
        Category::Export,
    ];

    /// The lower-case name used in every format and in configuration.
    pub const fn as_str(self) -> &'static str {
        match self {
            Category::Anomaly => "anomaly",
            Category::Audit => "audit",
            Category::Connection => "connection",
            Category::Export => "export",
            Category::Firewall => "firewall",
            Category::Keystore => "keystore",
            Category::Poison => "poison",
            Category::Schema => "schema",
            Category::Service => "service",
            Category::Statement => "statement",
            Category::Tls => "tls",
        }
    }

    /// The inclusive code range this category owns.
    pub const fn codes(self) -> (u16, u16) {
        match self {
            Category::Service => (1000, 1099),
            Category::Connection => (1100, 1199),
            Category::Tls => (1200, 1299),
            Category::Keystore => (1300, 1399),
            Category::Schema => (1400, 1499),
            Category::Statement => (2000, 2099),
            Category::Firewall => (2100, 2199),
            Category::Poison => (3000, 3099),
            Category::Anomaly => (3100, 3199),
            Category::Audit => (4000, 4099),
            Category::Export => (5000, 5099),
        }
    }

    /// Looks a category up by its [`as_str`](Self::as_str) name.
    pub fn from_name(name: &str) -> Option<Category> {
        Category::ALL.into_iter().find(|c| c.as_str() == name)
    }
}

impl fmt::Display for Category {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// The OCSF class and activity an event maps to (see `docs/formats.md`).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct OcsfClass {
    /// `class_uid`, e.g. 3002 Authentication.
    pub class_uid: u32,
    /// `activity_id` within that class.
    pub activity_id: u32,
}

/// One catalog entry. Read it through [`Kind`].
#[derive(Debug)]
pub struct Def {
    /// Stable numeric code.
    pub code: u16,
    /// Stable dotted name, domain first, past tense: `client.connected`.
    pub name: &'static str,
    /// The category, which owns the code's range.
    pub category: Category,
    /// Default severity of the event.
    pub severity: Severity,
    /// Default outcome of the event.
    pub outcome: Outcome,
    /// OCSF class and activity.
    pub ocsf: OcsfClass,
    /// One line for humans.
    pub description: &'static str,
}

/// A kind of event: a reference to its catalog entry.
///
/// Compare kinds by value; two `Kind`s are equal when their codes are.
#[derive(Clone, Copy)]
pub struct Kind(&'static Def);

impl Kind {
    /// The catalog entry.
    pub const fn def(self) -> &'static Def {
        self.0
    }
    /// Stable numeric code.
    pub const fn code(self) -> u16 {
        self.0.code
    }
    /// Stable dotted name.
    pub const fn name(self) -> &'static str {
        self.0.name
    }
    /// Category of the event.
    pub const fn category(self) -> Category {
        self.0.category
    }
    /// Default severity.
    pub const fn severity(self) -> Severity {
        self.0.severity
    }

    /// Looks an event up by its code.
    pub fn from_code(code: u16) -> Option<Kind> {
        ALL.binary_search_by_key(&code, |k| k.code())
            .ok()
            .map(|i| ALL[i])
    }

    /// Looks an event up by its dotted name.
    pub fn from_name(name: &str) -> Option<Kind> {
        ALL.iter().copied().find(|k| k.name() == name)
    }
}

impl PartialEq for Kind {
    fn eq(&self, other: &Self) -> bool {
        self.code() == other.code()
    }
}

impl Eq for Kind {}

impl std::hash::Hash for Kind {
    fn hash<H: std::hash::Hasher>(&self, state: &mut H) {
        self.code().hash(state);
    }
}

impl fmt::Debug for Kind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}({})", self.name(), self.code())
    }
}

impl fmt::Display for Kind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

// OCSF classes used below.
const AUTHENTICATION: u32 = 3002;
const ENTITY_MANAGEMENT: u32 = 3004;
const NETWORK_ACTIVITY: u32 = 4001;
const APPLICATION_LIFECYCLE: u32 = 6002;
const DATASTORE_ACTIVITY: u32 = 6005;
const DETECTION_FINDING: u32 = 2004;
const EVENT_LOG_ACTIVITY: u32 = 1008;

macro_rules! catalog {
    ($(
        $(#[$attr:meta])*
        $ident:ident = $code:literal $name:literal $cat:ident $sev:ident $out:ident
            ($class:ident $act:literal) $desc:literal;
    )*) => {
        $(
            $(#[$attr])*
            #[doc = concat!("`", $code, "` `", $name, "`: ", $desc)]
            pub const $ident: Kind = Kind(&Def {
                code: $code,
                name: $name,
                category: Category::$cat,
                severity: Severity::$sev,
                outcome: Outcome::$out,
                ocsf: OcsfClass { class_uid: $class, activity_id: $act },
                description: $desc,
            });
        )*

        /// Every event in the catalog, in code order.
        pub static ALL: &[Kind] = &[$($ident),*];
    };
}

catalog! {
    // 1000–1099 service
    SERVICE_STARTED = 1000 "service.started" Service Info Success (APPLICATION_LIFECYCLE 3)
        "vigil started: version, process id, configuration file.";
    LISTENER_STARTED = 1001 "listener.started" Service Info Success (NETWORK_ACTIVITY 7)
        "A listener accepts connections: address, port and transport encryption (TLS on or off).";
    LISTENER_FAILED = 1002 "listener.failed" Service Critical Failure (NETWORK_ACTIVITY 7)
        "A listener could not bind its address; the reason is given.";
    CONFIG_VALID = 1010 "config.valid" Service Info Success (APPLICATION_LIFECYCLE 8)
        "A configuration file was validated and is in effect.";
    CONFIG_INVALID = 1011 "config.invalid" Service Error Failure (APPLICATION_LIFECYCLE 8)
        "A configuration file was rejected: file, line, key and reason.";
    CONFIG_RELOADED = 1012 "config.reloaded" Service Notice Success (APPLICATION_LIFECYCLE 8)
        "The configuration was reloaded and the new one is in effect.";
    CONFIG_RELOAD_FAILED = 1013 "config.reload_failed" Service Error Failure (APPLICATION_LIFECYCLE 8)
        "A reload was refused because the new configuration is invalid; the old one stays.";
    SIGNAL_SIGTERM = 1020 "signal.sigterm_received" Service Notice Success (APPLICATION_LIFECYCLE 4)
        "SIGTERM received: graceful shutdown begins.";
    SIGNAL_SIGINT = 1021 "signal.sigint_received" Service Notice Success (APPLICATION_LIFECYCLE 4)
        "SIGINT received: graceful shutdown begins.";
    SIGNAL_SIGHUP = 1022 "signal.sighup_received" Service Notice Success (APPLICATION_LIFECYCLE 8)
        "SIGHUP received: the configuration is reloaded and files reopened.";
    SIGNAL_SIGUSR1 = 1023 "signal.sigusr1_received" Service Notice Success (APPLICATION_LIFECYCLE 8)
        "SIGUSR1 received: the audit key is rotated.";
    SHUTDOWN_STARTED = 1030 "service.shutdown_started" Service Notice Success (APPLICATION_LIFECYCLE 4)
        "Shutdown started: listeners closed, sessions given time to finish.";
    SHUTDOWN_COMPLETED = 1031 "service.shutdown_completed" Service Notice Success (APPLICATION_LIFECYCLE 4)
        "Shutdown completed: sessions closed, events flushed and sealed.";
    SERVICE_RESTARTED = 1032 "service.restarted" Service Notice Success (APPLICATION_LIFECYCLE 5)
        "vigil started again over an existing audit trail; the previous run is named.";

    // 1100–1199 connection
    CLIENT_CONNECTED = 1100 "client.connected" Connection Info Success (NETWORK_ACTIVITY 1)
        "A client connected: address, port, user, database, application, TLS version and cipher, client identity.";
    CLIENT_DISCONNECTED = 1101 "client.disconnected" Connection Info Success (NETWORK_ACTIVITY 2)
        "A client session ended: duration, bytes each way, statement count.";
    CLIENT_REJECTED = 1102 "client.rejected" Connection Warning Failure (NETWORK_ACTIVITY 5)
        "A connection was refused before authentication (limit reached, shutting down, TLS required).";
    AUTH_SUCCEEDED = 1110 "auth.succeeded" Connection Info Success (AUTHENTICATION 1)
        "The database accepted the client's credentials; the method is given.";
    AUTH_FAILED = 1111 "auth.failed" Connection Warning Failure (AUTHENTICATION 1)
        "The database rejected the client's credentials; the SQLSTATE is given.";
    UPSTREAM_CONNECT_FAILED = 1120 "upstream.connect_failed" Connection Error Failure (NETWORK_ACTIVITY 4)
        "vigil could not connect to the database for a client; the reason is given.";
    PROTOCOL_VIOLATION = 1130 "protocol.violation" Connection Warning Failure (NETWORK_ACTIVITY 3)
        "A peer sent a malformed or hostile protocol message; that session was closed.";
    CANCEL_REQUESTED = 1131 "session.cancel_requested" Connection Info Success (NETWORK_ACTIVITY 6)
        "A client asked to cancel a running query; whether it matched a session is given.";

    // 1200–1299 tls, client side
    TLS_CLIENT_HANDSHAKE_FAILED = 1200 "tls.client_handshake_failed" Tls Warning Failure (NETWORK_ACTIVITY 4)
        "A TLS handshake with a client failed for a reason not listed below.";
    TLS_CLIENT_CERT_EXPIRED = 1201 "tls.client_cert_expired" Tls Warning Failure (NETWORK_ACTIVITY 4)
        "A client presented an expired certificate.";
    TLS_CLIENT_CERT_NOT_YET_VALID = 1202 "tls.client_cert_not_yet_valid" Tls Warning Failure (NETWORK_ACTIVITY 4)
        "A client presented a certificate that is not valid yet.";
    TLS_CLIENT_CERT_UNKNOWN_CA = 1203 "tls.client_cert_unknown_ca" Tls Warning Failure (NETWORK_ACTIVITY 4)
        "A client presented a certificate not issued by a trusted CA.";
    TLS_CLIENT_CERT_REVOKED = 1204 "tls.client_cert_revoked" Tls Warning Failure (NETWORK_ACTIVITY 4)
        "A client presented a revoked certificate.";
    TLS_CLIENT_CERT_MISSING = 1205 "tls.client_cert_missing" Tls Warning Failure (NETWORK_ACTIVITY 4)
        "A client presented no certificate where one is required.";
    TLS_CLIENT_CERT_INVALID = 1206 "tls.client_cert_invalid" Tls Warning Failure (NETWORK_ACTIVITY 4)
        "A client presented a malformed certificate or one with a bad signature or usage.";
    TLS_CLIENT_PROTOCOL_REJECTED = 1207 "tls.client_protocol_rejected" Tls Warning Failure (NETWORK_ACTIVITY 4)
        "A client offered no acceptable TLS version or cipher suite.";
    TLS_CLIENT_REQUIRED = 1208 "tls.client_tls_required" Tls Warning Failure (NETWORK_ACTIVITY 5)
        "A client tried to connect without TLS where TLS is required.";

    // 1220–1239 tls, database side
    TLS_DATABASE_HANDSHAKE_FAILED = 1220 "tls.database_handshake_failed" Tls Error Failure (NETWORK_ACTIVITY 4)
        "A TLS handshake with the database failed for a reason not listed below.";
    TLS_DATABASE_CERT_EXPIRED = 1221 "tls.database_cert_expired" Tls Error Failure (NETWORK_ACTIVITY 4)
        "The database presented an expired certificate.";
    TLS_DATABASE_CERT_NOT_YET_VALID = 1222 "tls.database_cert_not_yet_valid" Tls Error Failure (NETWORK_ACTIVITY 4)
        "The database presented a certificate that is not valid yet.";
    TLS_DATABASE_CERT_UNKNOWN_CA = 1223 "tls.database_cert_unknown_ca" Tls Error Failure (NETWORK_ACTIVITY 4)
        "The database presented a certificate not issued by a trusted CA.";
    TLS_DATABASE_CERT_REVOKED = 1224 "tls.database_cert_revoked" Tls Error Failure (NETWORK_ACTIVITY 4)
        "The database presented a revoked certificate.";
    TLS_DATABASE_NAME_MISMATCH = 1225 "tls.database_name_mismatch" Tls Error Failure (NETWORK_ACTIVITY 4)
        "The database's certificate does not name the host vigil connected to.";
    TLS_DATABASE_CERT_INVALID = 1226 "tls.database_cert_invalid" Tls Error Failure (NETWORK_ACTIVITY 4)
        "The database presented a malformed certificate or one with a bad signature or usage.";
    TLS_DATABASE_PROTOCOL_REJECTED = 1227 "tls.database_protocol_rejected" Tls Error Failure (NETWORK_ACTIVITY 4)
        "The database offered no acceptable TLS version or cipher suite.";
    TLS_DATABASE_UNSUPPORTED = 1228 "tls.database_tls_refused" Tls Error Failure (NETWORK_ACTIVITY 5)
        "The database refused TLS where vigil requires it.";

    // 1300–1399 keystore
    KEYS_MASTER_LOADED = 1300 "keys.master_loaded" Keystore Info Success (ENTITY_MANAGEMENT 2)
        "The master key was read; its source (environment or KMS) is given, never its value.";
    KEYS_MASTER_MISSING = 1301 "keys.master_missing" Keystore Critical Failure (ENTITY_MANAGEMENT 2)
        "No master key was found where one was expected.";
    KEYS_MASTER_INVALID = 1302 "keys.master_invalid" Keystore Critical Failure (ENTITY_MANAGEMENT 2)
        "The master key is malformed or has the wrong length.";
    KEYS_MASTER_KMS_FAILED = 1303 "keys.master_kms_failed" Keystore Critical Failure (ENTITY_MANAGEMENT 2)
        "The master key could not be fetched from the KMS; the reason is given.";
    KEYS_LOADED = 1310 "keys.loaded" Keystore Info Success (ENTITY_MANAGEMENT 2)
        "A key was loaded; its name, version and backend (file or key database) are given.";
    KEYS_LOAD_FAILED = 1311 "keys.load_failed" Keystore Error Failure (ENTITY_MANAGEMENT 2)
        "A key could not be read from its backend; the reason is given.";
    KEYS_NOT_FOUND = 1312 "keys.not_found" Keystore Error Failure (ENTITY_MANAGEMENT 2)
        "A required key does not exist in the key store.";
    KEYS_DECRYPT_FAILED = 1313 "keys.decrypt_failed" Keystore Critical Failure (ENTITY_MANAGEMENT 2)
        "A key failed to decrypt: wrong master key or a tampered key file.";
    KEYS_BAD_PERMISSIONS = 1314 "keys.bad_permissions" Keystore Error Failure (ENTITY_MANAGEMENT 2)
        "A key file or directory is readable by others; it must be mode 0600 (0700 for directories).";
    KEYS_BACKEND_UNAVAILABLE = 1315 "keys.backend_unavailable" Keystore Error Failure (ENTITY_MANAGEMENT 2)
        "The key database could not be reached; the reason is given.";
    KEYS_STORE_FAILED = 1316 "keys.store_failed" Keystore Error Failure (ENTITY_MANAGEMENT 1)
        "A new key could not be written to its backend (disk full, database error); the reason is given.";
    KEYS_GENERATED = 1320 "keys.generated" Keystore Notice Success (ENTITY_MANAGEMENT 1)
        "A new key was generated and stored.";
    KEYS_ROTATED = 1321 "keys.rotated" Keystore Notice Success (ENTITY_MANAGEMENT 3)
        "A key was rotated; old and new versions are given.";

    // 1400–1499 schema
    SCHEMA_CHECKED = 1400 "schema.checked" Schema Info Success (DATASTORE_ACTIVITY 8)
        "The monitored columns were checked against the database catalog.";
    SCHEMA_WRONG_COLUMN_TYPE = 1401 "schema.wrong_column_type" Schema Warning Failure (DATASTORE_ACTIVITY 8)
        "A monitored column has a different type than configured.";
    SCHEMA_COLUMN_MISSING = 1402 "schema.column_missing" Schema Warning Failure (DATASTORE_ACTIVITY 8)
        "A monitored column does not exist in the database.";
    SCHEMA_CHECK_FAILED = 1403 "schema.check_failed" Schema Error Failure (DATASTORE_ACTIVITY 8)
        "The schema could not be checked; the reason is given.";

    // 2000–2099 statement
    STATEMENT_EXECUTED = 2000 "statement.executed" Statement Info Success (DATASTORE_ACTIVITY 4)
        "A statement completed: redacted SQL, fingerprint, class, protocol, command tag, rows, duration.";
    STATEMENT_FAILED = 2001 "statement.failed" Statement Notice Failure (DATASTORE_ACTIVITY 4)
        "A statement failed in the database; the SQLSTATE and the redacted message are given.";
    STATEMENT_DENIED = 2002 "statement.denied" Statement Warning Failure (DATASTORE_ACTIVITY 4)
        "A statement was refused by vigil and never reached the database.";
    STATEMENT_UNPARSED = 2003 "statement.unparsed" Statement Warning Unknown (DATASTORE_ACTIVITY 4)
        "A statement could not be fully lexed; everything from the error on is masked.";

    // 2100–2199 firewall
    FIREWALL_ALLOWED = 2100 "firewall.allowed" Firewall Debug Success (DATASTORE_ACTIVITY 4)
        "The query firewall allowed a statement; the deciding rule is given.";
    FIREWALL_UNLISTED = 2101 "firewall.unlisted" Firewall Warning Unknown (DETECTION_FINDING 1)
        "A statement outside the allowlist was seen in detect mode.";
    FIREWALL_LEARNED = 2102 "firewall.learned" Firewall Info Success (DATASTORE_ACTIVITY 4)
        "A new statement fingerprint was added to the allowlist in learn mode.";
    FIREWALL_RULES_LOADED = 2103 "firewall.rules_loaded" Firewall Info Success (APPLICATION_LIFECYCLE 8)
        "Firewall rules were loaded: file, rule count, mode.";
    FIREWALL_RULES_INVALID = 2104 "firewall.rules_invalid" Firewall Error Failure (APPLICATION_LIFECYCLE 8)
        "A firewall rules file was rejected: file, line and reason; the old rules stay.";

    // 3000–3099 poison
    POISON_ACCESSED = 3000 "poison.accessed" Poison Critical Failure (DETECTION_FINDING 1)
        "A poison record was returned to a client: session, identity, fingerprint, rows seen.";
    POISON_QUERIED = 3001 "poison.queried" Poison Critical Failure (DETECTION_FINDING 1)
        "A statement mentions a poison value: someone searches for it.";
    POISON_BLOCKED = 3002 "poison.blocked" Poison Critical Success (DETECTION_FINDING 1)
        "A poison record was withheld from the client and the session closed.";
    POISON_SCRIPT_FAILED = 3003 "poison.script_failed" Poison Error Failure (DETECTION_FINDING 1)
        "The poison reaction script failed or timed out.";
    POISON_SHUTDOWN = 3004 "poison.shutdown_triggered" Poison Alert Success (DETECTION_FINDING 1)
        "vigil shuts down in reaction to a poison record access.";

    // 3100–3199 anomaly detectors
    ANOMALY_SQL_INJECTION = 3100 "anomaly.sql_injection" Anomaly Error Failure (DETECTION_FINDING 1)
        "A statement's structure shows SQL injection (tautology, padded UNION, stacked query, ...).";
    ANOMALY_NEW_FINGERPRINT = 3101 "anomaly.new_fingerprint" Anomaly Notice Unknown (DETECTION_FINDING 1)
        "A user and application ran a statement shape never seen after the learning window.";
    ANOMALY_ERROR_BURST = 3102 "anomaly.error_burst" Anomaly Warning Failure (DETECTION_FINDING 1)
        "A burst of syntax and type errors in one session, typical of blind injection.";
    ANOMALY_DANGEROUS_CAPABILITY = 3103 "anomaly.dangerous_capability" Anomaly Error Unknown (DETECTION_FINDING 1)
        "Use of a dangerous capability: COPY PROGRAM, file access, dblink, ALTER SYSTEM, role changes.";
    ANOMALY_BULK_READ = 3104 "anomaly.bulk_read" Anomaly Warning Unknown (DETECTION_FINDING 1)
        "A statement returned far more rows than its fingerprint usually does.";
    ANOMALY_DUMP = 3105 "anomaly.dump" Anomaly Warning Unknown (DETECTION_FINDING 1)
        "A dump: the pg_dump signature, or COPY TO STDOUT of a monitored table.";
    ANOMALY_AUTH_PROBE = 3106 "anomaly.auth_probe" Anomaly Warning Failure (DETECTION_FINDING 1)
        "A burst of failed authentications from one source.";
    ANOMALY_TLS_PROBE = 3107 "anomaly.tls_probe" Anomaly Warning Failure (DETECTION_FINDING 1)
        "A burst of failed TLS handshakes from one source.";
    ANOMALY_NEW_SOURCE = 3108 "anomaly.new_source" Anomaly Notice Unknown (DETECTION_FINDING 1)
        "A database user connected from a source address never seen for it.";
    ANOMALY_TLS_DOWNGRADE = 3109 "anomaly.tls_downgrade" Anomaly Warning Unknown (DETECTION_FINDING 1)
        "A client that used TLS connected without it, or with an older version.";
    ANOMALY_RATE = 3110 "anomaly.rate" Anomaly Warning Unknown (DETECTION_FINDING 1)
        "A statement fingerprint or user ran far above its usual rate.";
    ANOMALY_CATALOG_READ = 3111 "anomaly.catalog_read" Anomaly Warning Unknown (DETECTION_FINDING 1)
        "An application role read the system catalog or information_schema.";

    // 4000–4099 audit
    AUDIT_CHAIN_STARTED = 4000 "audit.chain_started" Audit Notice Success (EVENT_LOG_ACTIVITY 6)
        "A new audit chain started: origin, first seq, key version.";
    AUDIT_KEY_ROTATED = 4001 "audit.key_rotated" Audit Notice Success (EVENT_LOG_ACTIVITY 5)
        "The audit key was rotated; the chain continues under the new key.";
    AUDIT_CHECKPOINT = 4002 "audit.checkpoint" Audit Info Success (EVENT_LOG_ACTIVITY 99)
        "A signed checkpoint: tree size and root hash.";
    AUDIT_RECOVERED = 4003 "audit.recovered" Audit Warning Success (EVENT_LOG_ACTIVITY 8)
        "The audit trail was recovered after a crash; what was cut is given.";
    AUDIT_SEGMENT_ROTATED = 4004 "audit.segment_rotated" Audit Info Success (EVENT_LOG_ACTIVITY 5)
        "A new audit segment file was started; its anchor lets the log be verified from it once the segments before are removed.";
    AUDIT_WRITE_FAILED = 4005 "audit.write_failed" Audit Critical Failure (EVENT_LOG_ACTIVITY 99)
        "The audit trail could not be written (disk full, I/O error); the policy decides what follows.";
    AUDIT_GAP = 4006 "audit.gap" Audit Critical Failure (EVENT_LOG_ACTIVITY 99)
        "Events were served but not sealed while the audit trail was unwritable; the count is given.";
    AUDIT_CHAIN_CLOSED = 4007 "audit.chain_closed" Audit Notice Success (EVENT_LOG_ACTIVITY 7)
        "The audit chain was closed at shutdown with a final checkpoint.";
    AUDIT_SEGMENTS_REMOVED = 4008 "audit.segments_removed" Audit Notice Success (EVENT_LOG_ACTIVITY 2)
        "Old audit segments are removed by the retention settings, sealed before the files go; the seq range, files, bytes and whether undelivered events went too are given.";

    // 5000–5099 export
    SINK_DOWN = 5000 "sink.down" Export Error Failure (EVENT_LOG_ACTIVITY 3)
        "A sink cannot deliver; the reason is given and delivery is retried.";
    SINK_UP = 5001 "sink.up" Export Notice Success (EVENT_LOG_ACTIVITY 3)
        "A sink delivers again after being down.";
    SINK_LAGGING = 5002 "sink.lagging" Export Warning Unknown (EVENT_LOG_ACTIVITY 3)
        "A sink is behind by more than its configured lag.";
    SINK_PARKED = 5003 "sink.parked" Export Error Failure (EVENT_LOG_ACTIVITY 3)
        "A sink's receiver refuses events permanently (e.g. HTTP 4xx); delivery is parked.";
    SINK_BEHIND_RETENTION = 5004 "sink.behind_retention" Export Critical Failure (EVENT_LOG_ACTIVITY 3)
        "A sink fell behind past the retained audit segments; events were never delivered to it.";
    SINK_REJECTED = 5005 "sink.rejected" Export Error Failure (EVENT_LOG_ACTIVITY 3)
        "A sink's receiver refused some events for good (e.g. a mapping error); they were set aside in the sink's rejected file.";
    SINK_CURSOR_RESET = 5006 "sink.cursor_reset" Export Warning Unknown (EVENT_LOG_ACTIVITY 3)
        "A sink's cursor did not fit the audit log (another log, or ahead of it); delivery restarts from the log's first entry.";
    EVENTS_DROPPED = 5010 "events.dropped" Export Error Failure (EVENT_LOG_ACTIVITY 99)
        "Events were dropped because the event queue was full; the count is given.";
    INGEST_STARTED = 5020 "ingest.started" Export Info Success (APPLICATION_LIFECYCLE 3)
        "The syslog receiver is listening; its addresses and transports are given.";
    INGEST_REJECTED = 5021 "ingest.rejected" Export Warning Failure (EVENT_LOG_ACTIVITY 99)
        "A message received for sealing was malformed or too large and was not sealed; the reason is given.";
    INGEST_MESSAGE = 5022 "ingest.message" Export Info Success (EVENT_LOG_ACTIVITY 99)
        "A program sent a security event over syslog; it is sealed with its sender, transport and syslog fields.";
}

/// Renders the catalog as the Markdown of `docs/events.md`.
pub fn markdown() -> String {
    let mut s = String::new();
    s.push_str(
        "# Event catalog\n\n\
         <!-- Generated by `vigil events --markdown`; do not edit by hand. -->\n\n\
         Every event vigil emits has a stable numeric code and a dotted name. \
         Codes never change meaning and are never reused. The severity and \
         outcome shown are the defaults; an event may carry a higher severity. \
         OCSF gives the class and activity of the `ocsf` format.\n\n",
    );
    for cat in Category::ALL {
        let (lo, hi) = cat.codes();
        s.push_str(&format!("## {} ({lo}–{hi})\n\n", cat.as_str()));
        s.push_str("| Code | Name | Severity | Outcome | OCSF | Description |\n");
        s.push_str("|---:|---|---|---|---|---|\n");
        for k in ALL.iter().filter(|k| k.category() == cat) {
            let d = k.def();
            s.push_str(&format!(
                "| {} | `{}` | {} | {} | {}/{} | {} |\n",
                d.code,
                d.name,
                d.severity.as_str(),
                d.outcome.as_str(),
                d.ocsf.class_uid,
                d.ocsf.activity_id,
                d.description
            ));
        }
        s.push('\n');
    }
    s
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashSet;

    #[test]
    fn codes_are_sorted_unique_and_in_their_category_range() {
        for pair in ALL.windows(2) {
            assert!(
                pair[0].code() < pair[1].code(),
                "{:?} before {:?}",
                pair[0],
                pair[1]
            );
        }
        for k in ALL {
            let (lo, hi) = k.category().codes();
            assert!((lo..=hi).contains(&k.code()), "{k:?} outside {lo}..={hi}");
        }
    }

    #[test]
    fn names_are_unique_dotted_and_fit_a_syslog_msgid() {
        let mut seen = HashSet::new();
        for k in ALL {
            let n = k.name();
            assert!(seen.insert(n), "duplicate name {n}");
            assert!(n.len() <= 32, "{n} is longer than an RFC 5424 MSGID");
            assert!(n.contains('.'), "{n} has no domain");
            assert!(
                n.bytes().all(|b| b.is_ascii_lowercase()
                    || b.is_ascii_digit()
                    || b == b'.'
                    || b == b'_'),
                "{n} has characters outside [a-z0-9._]"
            );
        }
    }

    #[test]
    fn lookups_find_every_entry() {
        for &k in ALL {
            assert_eq!(Kind::from_code(k.code()), Some(k));
            assert_eq!(Kind::from_name(k.name()), Some(k));
        }
        assert_eq!(Kind::from_code(1), None);
        assert_eq!(Kind::from_name("no.such_event"), None);
    }

    #[test]
    fn every_category_has_events() {
        for cat in Category::ALL {
            assert!(ALL.iter().any(|k| k.category() == cat), "{cat} is empty");
            assert_eq!(Category::from_name(cat.as_str()), Some(cat));
        }
    }

    /// The seed's list of loggable events, each named by the catalog.
    #[test]
    fn names_every_event_the_seed_lists() {
        let required = [
            "listener.started",
            "client.connected",
            "client.disconnected",
            "tls.client_cert_expired",
            "tls.client_cert_unknown_ca",
            "tls.client_cert_revoked",
            "tls.client_protocol_rejected",
            "tls.database_cert_expired",
            "tls.database_cert_unknown_ca",
            "tls.database_name_mismatch",
            "tls.database_cert_revoked",
            "tls.database_protocol_rejected",
            "keys.master_loaded",
            "keys.master_kms_failed",
            "keys.master_missing",
            "keys.loaded",
            "keys.load_failed",
            "keys.backend_unavailable",
            "schema.wrong_column_type",
            "config.valid",
            "config.invalid",
            "signal.sigterm_received",
            "signal.sigint_received",
            "signal.sighup_received",
            "signal.sigusr1_received",
            "service.shutdown_started",
            "service.shutdown_completed",
            "config.reloaded",
            "service.restarted",
            "statement.executed",
            "statement.denied",
            "poison.accessed",
            "anomaly.sql_injection",
            "anomaly.auth_probe",
            "audit.chain_started",
            "audit.key_rotated",
            "audit.checkpoint",
            "audit.recovered",
            "sink.down",
            "sink.up",
            "events.dropped",
        ];
        for name in required {
            assert!(Kind::from_name(name).is_some(), "catalog lacks {name}");
        }
    }

    #[test]
    fn docs_events_md_matches_the_catalog() {
        let committed = include_str!("../../../docs/events.md");
        assert!(
            committed == markdown(),
            "docs/events.md is out of date: run `cargo run -- events --markdown > docs/events.md`"
        );
    }
}
