//! The postgres transport against a real PostgreSQL: rows carry the right
//! columns and the sealed line byte for byte, a batch sent again adds
//! nothing, the table refuses changes, configuration problems park the sink
//! with their SQLSTATE (never showing the password), and a server that goes
//! away is retried until it is back. Over TLS: delivery with channel
//! binding, a certificate that does not verify and a server without TLS
//! park the sink with the reason; a server that asks for a client
//! certificate gets vigil's.

#![allow(clippy::unwrap_used)]

use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use vigil_event::{Event, Format, Severity, Timestamp, catalog};
use vigil_seal::{LineFormat, Seal, split_sealed, write_sealed};
use vigil_ship::transport::postgres::{PostgresConfig, PostgresTransport};
use vigil_ship::transport::{Record, SendError, Sent, Transport};
use vigil_testkit::pki::Pki;
use vigil_testkit::postgres::{Auth, PgServer, SUPERUSER, SUPERUSER_PASSWORD, ServerTls};

const ORIGIN: &str = "db1";
/// The first event's time: 2025-11-26T11:19:00.123456Z.
const T0: i64 = 1_764_155_940_123_456;

/// An event with its formatted and sealed forms, for borrowing as a
/// [`Record`].
struct Owned {
    event: Event,
    formatted: Vec<u8>,
    sealed: Vec<u8>,
}

/// Events `seqs` of [`ORIGIN`], one second apart, with awkward text: quotes,
/// backslashes, a tab, non-ASCII and a NUL character.
fn owned(seqs: impl IntoIterator<Item = u64>) -> Vec<Owned> {
    seqs.into_iter()
        .map(|seq| {
            let mut event = Event::new(catalog::AUTH_FAILED, "password authentication failed")
                .at(Timestamp::from_micros(T0 + seq as i64 * 1_000_000))
                .field("user", format!("alice{seq}"))
                .field("note", "café \"q\" back\\slash\ttab | pipe \0 nul");
            if seq % 2 == 0 {
                event = event.severity(Severity::Critical);
            }
            event.origin = Arc::from(ORIGIN);
            event.seq = seq;
            let mut formatted = Vec::new();
            Format::Json.write(&event, &mut formatted);
            let seal = Seal {
                seq,
                key_version: 1,
                start: (seq == 1).then(|| ORIGIN.to_owned()),
                mac: [0xab; 32],
                checkpoint: None,
            };
            let mut sealed = Vec::new();
            write_sealed(LineFormat::Json, &formatted, &seal, &mut sealed);
            Owned {
                event,
                formatted,
                sealed,
            }
        })
        .collect()
}

fn records(owned: &[Owned]) -> Vec<Record<'_>> {
    owned
        .iter()
        .map(|o| Record {
            origin: &o.event.origin,
            seq: o.event.seq,
            event: &o.event,
            formatted: &o.formatted,
            sealed: &o.sealed,
        })
        .collect()
}

fn conninfo(pg: &PgServer, user: &str, password: &str) -> String {
    format!(
        "host=127.0.0.1 port={} user={user} password={password} dbname=postgres connect_timeout=5",
        pg.port()
    )
}

fn transport(conninfo: String, table: &str, create_table: bool) -> PostgresTransport {
    let mut config = PostgresConfig::new(conninfo);
    config.table = table.to_owned();
    config.create_table = create_table;
    config.timeout = Duration::from_secs(5);
    PostgresTransport::new(config).unwrap()
}

/// A transport with TLS settings: `conninfo` should hold an `sslmode`.
fn tls_transport(conninfo: String, ca: &Path, server_name: Option<&str>) -> PostgresTransport {
    let mut config = PostgresConfig::new(conninfo);
    config.timeout = Duration::from_secs(5);
    config.tls_ca = Some(ca.to_path_buf());
    config.tls_server_name = server_name.map(str::to_owned);
    PostgresTransport::new(config).unwrap()
}

/// A server with TLS whose certificate, issued by `pki`'s CA, names only
/// `localhost`, and that takes TCP connections only over TLS, with
/// SCRAM-SHA-256.
fn tls_server(pki: &Pki) -> PgServer {
    let cert = pki.server("localhost", &["localhost"]);
    PgServer::builder()
        .tls(&ServerTls::new(&cert.cert, &cert.key))
        .hba([
            "hostssl all all 127.0.0.1/32 scram-sha-256",
            "hostssl all all ::1/128 scram-sha-256",
        ])
        .start()
        .unwrap()
}

/// The superuser over TCP to `host`, with `sslmode` and more.
fn tls_conninfo(pg: &PgServer, host: &str, tail: &str) -> String {
    format!(
        "host={host} port={} user={SUPERUSER} password={SUPERUSER_PASSWORD} dbname=postgres \
         connect_timeout=5 {tail}",
        pg.port()
    )
}

fn count(pg: &PgServer, table: &str) -> u64 {
    pg.psql(&format!("SELECT count(*) FROM {table}"))
        .unwrap()
        .trim()
        .parse()
        .unwrap()
}

fn park(result: Result<Sent, SendError>) -> String {
    match result {
        Err(SendError::Park(why)) => why,
        other => panic!("want Park, got {other:?}"),
    }
}

fn retry(result: Result<Sent, SendError>) -> String {
    match result {
        Err(SendError::Retry(why)) => why,
        other => panic!("want Retry, got {other:?}"),
    }
}

#[test]
fn rows_carry_the_columns_and_the_sealed_line_byte_for_byte() {
    let pg = PgServer::start().unwrap();
    let mut t = transport(conninfo(&pg, SUPERUSER, "unused"), "vigil_events", true);
    let owned = owned(1..=3);
    assert_eq!(t.send(&records(&owned)).unwrap(), Sent::all());

    let rows = pg
        .psql(
            "SELECT origin, seq, (extract(epoch FROM time) * 1000000)::bigint, code, name, \
             severity, encode(convert_to(line, 'UTF8'), 'hex'), \
             encode(convert_to(event::text, 'UTF8'), 'hex') \
             FROM vigil_events ORDER BY seq",
        )
        .unwrap();
    let rows: Vec<Vec<&str>> = rows.lines().map(|l| l.split('|').collect()).collect();
    assert_eq!(rows.len(), 3);
    for (row, o) in rows.iter().zip(&owned) {
        let e = &o.event;
        let want_micros = e.time.as_micros().to_string();
        let want_code = e.kind.code().to_string();
        let want_seq = e.seq.to_string();
        assert_eq!(
            row[..6],
            [
                ORIGIN,
                want_seq.as_str(),
                want_micros.as_str(),
                want_code.as_str(),
                "auth.failed",
                e.severity.as_str(),
            ]
        );
        let line = hex(row[6]);
        assert_eq!(line, o.sealed, "line is the sealed line, byte for byte");
        let (record, seal) = split_sealed(LineFormat::Json, &line).unwrap();
        assert_eq!((&*record, seal.seq), (&o.formatted[..], e.seq));

        // The event as jsonb: the record, with the NUL shown as U+FFFD.
        let stored: serde_json::Value = serde_json::from_slice(&hex(row[7])).unwrap();
        let mut want: serde_json::Value = serde_json::from_slice(&o.formatted).unwrap();
        want["fields"]["note"] = "café \"q\" back\\slash\ttab | pipe \u{fffd} nul".into();
        assert_eq!(stored, want);
    }
    assert_eq!(rows[1][5], "critical");
}

#[test]
fn a_batch_sent_again_adds_nothing_and_the_table_refuses_changes() {
    let pg = PgServer::start().unwrap();
    let mut t = transport(conninfo(&pg, SUPERUSER, "unused"), "audit.events", true);
    pg.psql("CREATE SCHEMA audit").unwrap();
    let first = owned(1..=3);
    assert_eq!(t.send(&records(&first)).unwrap(), Sent::all());
    assert_eq!(t.send(&records(&first)).unwrap(), Sent::all());
    assert_eq!(count(&pg, "audit.events"), 3);
    let overlapping = owned(2..=5);
    assert_eq!(t.send(&records(&overlapping)).unwrap(), Sent::all());
    assert_eq!(count(&pg, "audit.events"), 5);

    for sql in [
        "UPDATE audit.events SET severity = 'info'",
        "DELETE FROM audit.events WHERE seq = 1",
        "TRUNCATE audit.events",
    ] {
        let err = pg.psql(sql).unwrap_err().to_string();
        assert!(
            err.contains("table audit.events is append-only"),
            "{sql}: {err}"
        );
    }
    assert_eq!(count(&pg, "audit.events"), 5);

    // A second transport on the same table (as after a restart) finds the
    // table and its trigger and carries on.
    let mut again = transport(conninfo(&pg, SUPERUSER, "unused"), "Audit.Events", true);
    assert_eq!(again.send(&records(&owned(5..=6))).unwrap(), Sent::all());
    assert_eq!(count(&pg, "audit.events"), 6);
    let triggers = pg
        .psql("SELECT count(*) FROM pg_trigger WHERE tgrelid = 'audit.events'::regclass")
        .unwrap();
    assert_eq!(triggers.trim(), "1");
}

#[test]
fn authentication_and_permission_problems_park_without_the_password() {
    let pg = PgServer::builder().auth(Auth::ScramSha256).start().unwrap();
    pg.create_user("vigil", "right-Passw0rd").unwrap();
    let owned = owned(1..=2);

    let wrong = conninfo(&pg, "vigil", "wrong-Passw0rd");
    let mut config = PostgresConfig::new(wrong.clone());
    config.timeout = Duration::from_secs(5);
    assert!(!format!("{config:?}").contains("wrong-Passw0rd"));
    let mut t = PostgresTransport::new(config).unwrap();
    assert!(!format!("{t:?}").contains("wrong-Passw0rd"));
    let why = park(t.send(&records(&owned)));
    assert!(why.contains("28P01"), "{why}");
    assert!(why.contains("vigil@127.0.0.1"), "{why}");
    assert!(!why.contains("Passw0rd"), "{why}");

    // The right password, but no right to create the table in public
    // (PostgreSQL 15 and later), then no table and create_table off.
    let right = conninfo(&pg, "vigil", "right-Passw0rd");
    let mut t = transport(right.clone(), "vigil_events", true);
    let why = park(t.send(&records(&owned)));
    assert!(why.contains("42501"), "{why}");
    assert!(!why.contains("Passw0rd"), "{why}");

    let mut t = transport(right.clone(), "vigil_events", false);
    let why = park(t.send(&records(&owned)));
    assert!(why.contains("42P01"), "{why}");
    assert!(why.contains("create_table"), "{why}");

    // Once the table exists, an INSERT without the privilege parks too; a
    // grant lets the same transport deliver.
    pg.psql(
        "CREATE TABLE vigil_events (origin text, seq bigint, time timestamptz, code integer, \
         name text, severity text, event jsonb, line text NOT NULL, PRIMARY KEY (origin, seq))",
    )
    .unwrap();
    let why = park(t.send(&records(&owned)));
    assert!(why.contains("42501"), "{why}");
    pg.psql("GRANT SELECT, INSERT ON vigil_events TO vigil")
        .unwrap();
    assert_eq!(t.send(&records(&owned)).unwrap(), Sent::all());
    assert_eq!(count(&pg, "vigil_events"), 2);

    let no_db = right.replace("dbname=postgres", "dbname=nowhere");
    let mut t = transport(no_db, "vigil_events", false);
    let why = park(t.send(&records(&owned)));
    assert!(why.contains("3D000"), "{why}");
}

#[test]
fn a_stopped_server_is_retried_and_the_same_transport_delivers_once_it_is_back() {
    // The test server turns synchronous_commit off, so an immediate stop
    // would lose the last commits; vigil's users keep it on.
    let mut pg = PgServer::builder()
        .setting("synchronous_commit", "on")
        .start()
        .unwrap();
    let mut t = transport(conninfo(&pg, SUPERUSER, "unused"), "vigil_events", true);
    assert_eq!(t.send(&records(&owned(1..=2))).unwrap(), Sent::all());

    pg.stop();
    // The open connection breaks, and connecting again is refused.
    for _ in 0..2 {
        let why = retry(t.send(&records(&owned(3..=4))));
        assert!(why.contains(&format!("127.0.0.1:{}", pg.port())), "{why}");
        assert!(why.contains("connect"), "{why}");
    }

    pg.start_again().unwrap();
    assert_eq!(t.send(&records(&owned(3..=4))).unwrap(), Sent::all());

    // A restart while the transport is idle goes unnoticed: the batch goes
    // out on a new connection at once.
    pg.stop();
    pg.start_again().unwrap();
    assert_eq!(t.send(&records(&owned(5..=6))).unwrap(), Sent::all());
    let seqs = pg.psql("SELECT string_agg(seq::text, ',' ORDER BY seq) FROM vigil_events");
    assert_eq!(seqs.unwrap().trim(), "1,2,3,4,5,6");
    t.close();
}

#[test]
fn delivery_over_tls_verifies_the_server_and_rows_arrive_byte_for_byte() {
    let dir = vigil_testkit::tempdir();
    let pki = Pki::new(dir.path());
    let pg = tls_server(&pki);
    // verify-full against the certificate's name; channel_binding=require
    // fails unless SCRAM binds to the certificate the connector saw.
    let conninfo = tls_conninfo(
        &pg,
        "localhost",
        "sslmode=verify-full channel_binding=require",
    );
    let mut t = tls_transport(conninfo, pki.ca_cert_path(), None);
    let first = owned(1..=3);
    assert_eq!(t.send(&records(&first)).unwrap(), Sent::all());

    let ssl = pg
        .psql(
            "SELECT s.ssl, s.version FROM pg_stat_ssl s JOIN pg_stat_activity a USING (pid) \
             WHERE a.application_name = 'vigil'",
        )
        .unwrap();
    assert!(ssl.trim().starts_with("t|TLSv1.3"), "{ssl}");
    let lines = pg
        .psql("SELECT encode(convert_to(line, 'UTF8'), 'hex') FROM vigil_events ORDER BY seq")
        .unwrap();
    let lines: Vec<Vec<u8>> = lines.lines().map(hex).collect();
    let sealed: Vec<&[u8]> = first.iter().map(|o| &o.sealed[..]).collect();
    assert_eq!(lines, sealed, "the lines arrive byte for byte");
    t.close();

    // By address: require checks the chain but not the name; verify-full
    // checks the name given as tls_server_name.
    let by_address = |mode: &str| tls_conninfo(&pg, "127.0.0.1", &format!("sslmode={mode}"));
    let mut t = tls_transport(by_address("require"), pki.ca_cert_path(), None);
    assert_eq!(t.send(&records(&owned(4..=5))).unwrap(), Sent::all());
    let mut t = tls_transport(by_address("verify-ca"), pki.ca_cert_path(), None);
    assert_eq!(t.send(&records(&owned(6..=7))).unwrap(), Sent::all());
    let mut t = tls_transport(
        by_address("verify-full"),
        pki.ca_cert_path(),
        Some("localhost"),
    );
    assert_eq!(t.send(&records(&owned(8..=9))).unwrap(), Sent::all());
    assert_eq!(count(&pg, "vigil_events"), 9);
}

#[test]
fn a_server_that_asks_for_a_client_certificate_gets_vigils() {
    let dir = vigil_testkit::tempdir();
    let pki = Pki::new(dir.path());
    let cert = pki.server("localhost", &["localhost"]);
    // `cert` authentication for vigil's user: the certificate's common
    // name is the user; the test's own psql signs in as before.
    let pg = PgServer::builder()
        .tls(&ServerTls::new(&cert.cert, &cert.key).with_client_ca(pki.ca_cert_path()))
        .hba([
            "hostssl all vigil_writer 127.0.0.1/32 cert",
            "hostssl all vigil_writer ::1/128 cert",
            "hostssl all all 127.0.0.1/32 scram-sha-256",
            "hostssl all all ::1/128 scram-sha-256",
        ])
        .start()
        .unwrap();
    pg.psql("CREATE ROLE vigil_writer LOGIN SUPERUSER").unwrap();
    let conninfo = format!(
        "host=localhost port={} user=vigil_writer dbname=postgres connect_timeout=5 \
         sslmode=verify-full",
        pg.port()
    );
    let with_client = |cn: &str| {
        let client = pki.client(cn);
        let mut config = PostgresConfig::new(conninfo.clone());
        config.timeout = Duration::from_secs(5);
        config.tls_ca = Some(pki.ca_cert_path().to_path_buf());
        config.tls_client_cert = Some(client.cert);
        config.tls_client_key = Some(client.key);
        PostgresTransport::new(config).unwrap()
    };
    let mut t = with_client("vigil_writer");
    assert_eq!(t.send(&records(&owned(1..=3))).unwrap(), Sent::all());
    let dn = pg
        .psql(
            "SELECT s.client_dn FROM pg_stat_ssl s JOIN pg_stat_activity a USING (pid) \
             WHERE a.application_name = 'vigil'",
        )
        .unwrap();
    assert!(dn.contains("CN=vigil_writer"), "{dn}");
    t.close();
    assert_eq!(count(&pg, "vigil_events"), 3);

    // Without a certificate, or with another user's, the server refuses:
    // the sink parks with PostgreSQL's reason.
    let mut t = tls_transport(conninfo.clone(), pki.ca_cert_path(), None);
    let why = park(t.send(&records(&owned(4..=4))));
    assert!(why.contains("certificate"), "{why}");
    let mut t = with_client("somebody-else");
    let why = park(t.send(&records(&owned(4..=4))));
    assert!(why.contains("28000"), "{why}");
    assert_eq!(count(&pg, "vigil_events"), 3);

    // A certificate without its key, or over no TLS, is a configuration
    // error that says what to set.
    let mut config = PostgresConfig::new(conninfo.clone());
    config.tls_ca = Some(pki.ca_cert_path().to_path_buf());
    config.tls_client_cert = Some(pki.client("vigil_writer").cert);
    let err = PostgresTransport::new(config).unwrap_err().to_string();
    assert!(err.contains("set tls_key too"), "{err}");
    let plain = conninfo.replace("sslmode=verify-full", "sslmode=disable");
    let mut config = PostgresConfig::new(plain);
    let client = pki.client("vigil_writer");
    config.tls_client_cert = Some(client.cert);
    config.tls_client_key = Some(client.key);
    let err = PostgresTransport::new(config).unwrap_err().to_string();
    assert!(err.contains("asks for no TLS"), "{err}");
}

#[test]
fn a_certificate_that_does_not_verify_parks_with_the_reason() {
    let dir = vigil_testkit::tempdir();
    let pki = Pki::new(dir.path());
    let pg = tls_server(&pki);
    let batch = owned(1..=2);

    // Another CA.
    let other = pki.other_ca();
    let conninfo = tls_conninfo(&pg, "localhost", "sslmode=verify-full");
    let mut t = tls_transport(conninfo.clone(), other.ca_cert_path(), None);
    for _ in 0..2 {
        let why = park(t.send(&records(&batch)));
        assert!(
            why.contains("invalid peer certificate: UnknownIssuer"),
            "{why}"
        );
        assert!(why.contains("check tls_ca"), "{why}");
        assert!(why.contains("postgres://postgres@localhost"), "{why}");
        assert!(!why.contains(SUPERUSER_PASSWORD), "{why}");
    }
    let mut t = tls_transport(
        tls_conninfo(&pg, "localhost", "sslmode=require"),
        other.ca_cert_path(),
        None,
    );
    let why = park(t.send(&records(&batch)));
    assert!(
        why.contains("UnknownIssuer"),
        "require checks the chain too: {why}"
    );

    // The right CA, but not the name the certificate carries.
    let conninfo = tls_conninfo(&pg, "127.0.0.1", "sslmode=verify-full");
    let mut t = tls_transport(conninfo.clone(), pki.ca_cert_path(), None);
    let why = park(t.send(&records(&batch)));
    assert!(why.contains("not valid for name"), "{why}");
    assert!(why.contains("localhost"), "{why}");
    let mut t = tls_transport(conninfo, pki.ca_cert_path(), Some("db.example"));
    let why = park(t.send(&records(&batch)));
    assert!(why.contains("not valid for name \"db.example\""), "{why}");

    // An expired certificate, issued by the right CA.
    let expired = pki.expired_server("localhost", &["localhost"]);
    let old = PgServer::builder()
        .tls(&ServerTls::new(&expired.cert, &expired.key))
        .start()
        .unwrap();
    let conninfo = format!(
        "host=localhost port={} user={SUPERUSER} dbname=postgres sslmode=verify-full",
        old.port()
    );
    let mut t = tls_transport(conninfo, pki.ca_cert_path(), None);
    let why = park(t.send(&records(&batch)));
    assert!(
        why.contains("invalid peer certificate: certificate expired"),
        "{why}"
    );
    // No session ever started: the table was never created.
    let table = pg
        .psql("SELECT to_regclass('vigil_events') IS NULL")
        .unwrap();
    assert_eq!(table.trim(), "t");
}

#[test]
fn a_server_without_tls_parks_when_sslmode_asks_for_tls() {
    let dir = vigil_testkit::tempdir();
    let pki = Pki::new(dir.path());
    let pg = PgServer::start().unwrap();
    let with_mode = |mode: &str| format!("{} sslmode={mode}", conninfo(&pg, SUPERUSER, "unused"));
    for mode in ["require", "verify-ca", "verify-full"] {
        let mut t = tls_transport(with_mode(mode), pki.ca_cert_path(), Some("localhost"));
        let why = park(t.send(&records(&owned(1..=2))));
        assert!(why.contains("server does not support TLS"), "{why}");
        assert!(why.contains("turn ssl on in the server"), "{why}");
    }
    // Without TLS the same server takes the batch.
    let mut t = transport(with_mode("disable"), "vigil_events", true);
    assert_eq!(t.send(&records(&owned(1..=2))).unwrap(), Sent::all());
}

/// Decodes lower-case hex.
fn hex(s: &str) -> Vec<u8> {
    (0..s.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(s.get(i..i + 2).unwrap(), 16).unwrap())
        .collect()
}
