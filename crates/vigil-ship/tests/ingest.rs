//! The syslog receiver against real senders: util-linux `logger` over UDP
//! and TCP (RFC 5424 octet-counted, RFC 3164 lines), and rsyslog forwarding
//! over TCP and TLS with a client certificate. Every accepted message is
//! one `ingest.message` event with exactly the expected fields; garbage, a
//! bad octet count, oversized frames and datagrams, and a plain-TCP client
//! on the TLS port are `ingest.rejected` events that never quote the
//! input, and the receiver goes on accepting good messages after each.

#![allow(clippy::unwrap_used)]

use std::fs;
use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream, UdpSocket};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::time::{Duration, Instant};

use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer, ServerName};
use rustls::{ClientConfig, ClientConnection, RootCertStore, StreamOwned};
use vigil_event::{Emitter, Event, Format, Kind, Overflow, Receiver, Severity, Timestamp, catalog};
use vigil_ship::ingest::{Ingest, IngestConfig, IngestTls};
use vigil_testkit::pki::{CertPaths, Pki};

const WAIT: Duration = Duration::from_secs(10);
/// rsyslog's TLS driver makes Diffie-Hellman parameters when it starts.
const RSYSLOG_WAIT: Duration = Duration::from_secs(30);

fn loopback() -> SocketAddr {
    "127.0.0.1:0".parse().unwrap()
}

/// Starts a receiver with `config` and takes its `ingest.started` event.
fn start(config: IngestConfig) -> (Ingest, Receiver) {
    let (emitter, rx) = Emitter::channel(4096, Overflow::Block);
    let ingest = Ingest::start(config, emitter).unwrap();
    let started = next(&rx);
    assert_eq!(started.kind, catalog::INGEST_STARTED);
    (ingest, rx)
}

fn tcp_config() -> IngestConfig {
    let mut config = IngestConfig::default();
    config.tcp = Some(loopback());
    config
}

fn udp_config() -> IngestConfig {
    let mut config = IngestConfig::default();
    config.udp = Some(loopback());
    config
}

/// The next event, within `WAIT`.
fn next(rx: &Receiver) -> Event {
    next_within(rx, WAIT)
}

fn next_within(rx: &Receiver, wait: Duration) -> Event {
    rx.recv_timeout(wait)
        .unwrap_or_else(|| panic!("no event within {wait:?}"))
        .event
}

/// The next event, which must be of `kind`.
fn expect(rx: &Receiver, kind: Kind) -> Event {
    let ev = next(rx);
    assert_eq!(ev.kind, kind, "{ev:?}");
    ev
}

/// No further event arrives within a short while.
fn assert_quiet(rx: &Receiver) {
    if let Some(q) = rx.recv_timeout(Duration::from_millis(300)) {
        panic!("unexpected event {:?}", q.event);
    }
}

/// An event's fields as (key, text) pairs, in order.
fn fields(ev: &Event) -> Vec<(String, String)> {
    ev.fields
        .iter()
        .map(|f| (f.key.to_string(), f.value.to_string()))
        .collect()
}

fn pairs(list: &[(&str, &str)]) -> Vec<(String, String)> {
    list.iter()
        .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
        .collect()
}

fn text(ev: &Event, key: &str) -> String {
    ev.field_value(key)
        .unwrap_or_else(|| panic!("{} has no field {key}", ev.kind))
        .to_string()
}

/// The event's `received_at` field as a time.
fn received_at(ev: &Event) -> Timestamp {
    Timestamp::parse_rfc3339(&text(ev, "received_at")).unwrap()
}

/// Checks a message event: every field but `received_at` and
/// `source_port` as given (`source_port` too when `port` is known), and
/// `received_at` a time between `before` and now.
fn assert_message(ev: &Event, port: Option<u16>, want: &[(&str, &str)], before: Timestamp) {
    assert_eq!(ev.kind, catalog::INGEST_MESSAGE, "{ev:?}");
    let got_port = text(ev, "source_port");
    let port = port.map_or(got_port.clone(), |p| p.to_string());
    assert!(got_port.parse::<u16>().unwrap() > 0);
    let received = text(ev, "received_at");
    let at = received_at(ev);
    assert!(
        before <= at && at <= Timestamp::now(),
        "received_at {received}"
    );
    let mut expected = Vec::new();
    for (k, v) in want {
        expected.push(((*k).to_owned(), (*v).to_owned()));
        if *k == "source_addr" {
            expected.push(("source_port".to_owned(), port.clone()));
        }
        if *k == "client_identity" {
            expected.push(("received_at".to_owned(), received.clone()));
        }
    }
    assert_eq!(fields(ev), expected);
}

/// Checks a rejection event: its reason, transport and source exactly;
/// and that neither its message nor any of its formatted records holds
/// `secret`.
fn assert_rejected(ev: &Event, reason: &str, transport: &str, source: SocketAddr, secret: &str) {
    assert_eq!(ev.kind, catalog::INGEST_REJECTED, "{ev:?}");
    assert_eq!(
        fields(ev),
        pairs(&[
            ("reason", reason),
            ("transport", transport),
            ("source_addr", &source.ip().to_string()),
            ("source_port", &source.port().to_string()),
            ("suppressed", "0"),
        ])
    );
    assert_no_secret(ev, secret);
}

fn assert_no_secret(ev: &Event, secret: &str) {
    for format in [Format::Json, Format::Text, Format::Cef] {
        let mut line = Vec::new();
        format.write(ev, &mut line);
        let line = String::from_utf8_lossy(&line);
        assert!(
            !line.contains(secret),
            "{} quotes the input: {line}",
            format.name()
        );
    }
}

/// This host's name, as `logger` puts it in RFC 5424 messages (RFC 3164
/// ones get it up to the first dot).
fn hostname() -> String {
    fs::read_to_string("/proc/sys/kernel/hostname")
        .unwrap()
        .trim()
        .to_owned()
}

/// Runs util-linux `logger` with `args` and checks that it succeeded.
fn logger(args: &[&str]) {
    let out = Command::new("logger").args(args).output().unwrap();
    assert!(
        out.status.success(),
        "logger {args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
}

#[test]
fn started_event_names_every_address() {
    let dir = vigil_testkit::tempdir();
    let pki = Pki::new(dir.path());
    let server = pki.server("localhost", &["localhost", "127.0.0.1"]);
    let mut config = tcp_config();
    config.udp = Some(loopback());
    let mut tls = IngestTls::new(loopback(), &server.cert, &server.key);
    tls.client_ca = Some(pki.ca_cert_path().to_path_buf());
    config.tls = Some(tls);
    let (emitter, rx) = Emitter::channel(16, Overflow::Block);
    let ingest = Ingest::start(config, emitter).unwrap();
    let addrs = ingest.local_addrs();
    let (udp, tcp, tls) = (
        addrs.udp.unwrap().to_string(),
        addrs.tcp.unwrap().to_string(),
        addrs.tls.unwrap().to_string(),
    );
    let ev = expect(&rx, catalog::INGEST_STARTED);
    assert_eq!(
        ev.message,
        format!(
            "syslog receiver listening on udp {udp}, tcp {tcp}, tls {tls} (TLS client \
             certificates required)"
        )
    );
    assert_eq!(
        fields(&ev),
        pairs(&[
            ("transports", "udp,tcp,tls"),
            ("udp_address", &udp),
            ("tcp_address", &tcp),
            ("tls_address", &tls),
            ("client_certificates", "required"),
            ("max_message", "65536"),
            ("max_connections", "256"),
        ])
    );
    let stats = ingest.shutdown();
    assert_eq!((stats.received, stats.rejected), (0, 0));
    assert_quiet(&rx);
}

#[test]
fn logger_rfc5424_over_tcp_with_octet_counting() {
    let (ingest, rx) = start(tcp_config());
    let port = ingest.local_addrs().tcp.unwrap().port().to_string();
    let before = Timestamp::now();
    logger(&[
        "--rfc5424=notq",
        "--tcp",
        "--octet-count",
        "-n",
        "127.0.0.1",
        "-P",
        &port,
        "-t",
        "myapp",
        "--id=4242",
        "-p",
        "local3.warning",
        "--msgid",
        "ID47",
        "--sd-id",
        "exampleSDID@32473",
        "--sd-param",
        "iut=\"3\"",
        "--sd-param",
        "eventSource=\"App \\] x\"",
        "hello from logger",
    ]);
    let ev = next(&rx);
    let host = hostname();
    assert_message(
        &ev,
        None,
        &[
            ("source_addr", "127.0.0.1"),
            ("transport", "tcp"),
            ("client_identity", ""),
            ("facility", "19"),
            ("syslog_severity", "4"),
            ("hostname", &host),
            ("app_name", "myapp"),
            ("procid", "4242"),
            ("msgid", "ID47"),
            (
                "structured_data",
                "[exampleSDID@32473 iut=\"3\" eventSource=\"App \\] x\"]",
            ),
            ("message", "hello from logger"),
        ],
        before,
    );
    assert_eq!(ev.severity, Severity::Warning);
    // The time is logger's timestamp, taken before vigil received it.
    assert!(before.as_micros() / 1_000_000 <= ev.time.as_micros() / 1_000_000);
    assert!(ev.time <= received_at(&ev));
    let stats = ingest.shutdown();
    assert_eq!((stats.received, stats.rejected), (1, 0));
    assert_quiet(&rx);
}

#[test]
fn logger_rfc5424_over_udp_without_a_timestamp() {
    let (ingest, rx) = start(udp_config());
    let port = ingest.local_addrs().udp.unwrap().port().to_string();
    let before = Timestamp::now();
    logger(&[
        "--rfc5424=notime,notq",
        "--udp",
        "-n",
        "127.0.0.1",
        "-P",
        &port,
        "-t",
        "backup-job",
        "--id=17",
        "-p",
        "daemon.debug",
        "udp message",
    ]);
    let ev = next(&rx);
    let host = hostname();
    assert_message(
        &ev,
        None,
        &[
            ("source_addr", "127.0.0.1"),
            ("transport", "udp"),
            ("client_identity", ""),
            ("facility", "3"),
            ("syslog_severity", "7"),
            ("hostname", &host),
            ("app_name", "backup-job"),
            ("procid", "17"),
            ("msgid", ""),
            ("structured_data", ""),
            ("message", "udp message"),
        ],
        before,
    );
    assert_eq!(ev.severity, Severity::Debug);
    // No timestamp: the event happened when it was received.
    assert_eq!(ev.time, received_at(&ev));
    assert_eq!(ingest.shutdown().received, 1);
}

#[test]
fn logger_rfc3164_over_tcp_lines_and_udp() {
    let mut config = tcp_config();
    config.udp = Some(loopback());
    let (ingest, rx) = start(config);
    let addrs = ingest.local_addrs();
    let host = hostname();
    let short = host.split('.').next().unwrap().to_owned();
    for (transport, port, flag, priority, facility, severity, want_severity) in [
        (
            "tcp",
            addrs.tcp.unwrap().port(),
            "--tcp",
            "auth.err",
            "4",
            "3",
            Severity::Error,
        ),
        (
            "udp",
            addrs.udp.unwrap().port(),
            "--udp",
            "local7.emerg",
            "23",
            "0",
            Severity::Critical,
        ),
    ] {
        let before = Timestamp::now();
        logger(&[
            "--rfc3164",
            flag,
            "-n",
            "127.0.0.1",
            "-P",
            &port.to_string(),
            "-t",
            "sshd",
            "--id=31255",
            "-p",
            priority,
            "Failed password for root from 192.0.2.9",
        ]);
        let ev = next(&rx);
        assert_message(
            &ev,
            None,
            &[
                ("source_addr", "127.0.0.1"),
                ("transport", transport),
                ("client_identity", ""),
                ("facility", facility),
                ("syslog_severity", severity),
                ("hostname", &short),
                ("app_name", "sshd"),
                ("procid", "31255"),
                ("msgid", ""),
                ("structured_data", ""),
                ("message", "Failed password for root from 192.0.2.9"),
            ],
            before,
        );
        assert_eq!(ev.severity, want_severity);
        // RFC 3164 timestamps have no year nor zone: reception time.
        assert_eq!(ev.time, received_at(&ev));
    }
    assert_eq!(ingest.shutdown().received, 2);
}

/// Frames of both kinds on one connection, cut anywhere by the writes, and
/// the RFC 5424 examples kept exactly.
#[test]
fn mixed_framing_on_one_connection() {
    let (ingest, rx) = start(tcp_config());
    let mut stream = TcpStream::connect(ingest.local_addrs().tcp.unwrap()).unwrap();
    let local = stream.local_addr().unwrap();
    let first = "<165>1 2003-10-11T22:14:15.003Z mymachine.example.com evntslog - ID47 \
                 [exampleSDID@32473 iut=\"3\" eventSource=\"Application\" eventID=\"1011\"]\
                 [examplePriority@32473 class=\"high\"]";
    let second = "<34>1 2003-10-11T22:14:15.003Z mymachine.example.com su - ID47 - \
                  \u{feff}'su root' failed for lonvick on /dev/pts/8\nsecond line";
    let mut bytes = format!("{} {first}", first.len()).into_bytes();
    bytes.extend_from_slice(format!("{} {second}", second.len()).as_bytes());
    bytes.extend_from_slice(b"\n<13>1 - host app - - - as a line\r\n\n");
    for chunk in bytes.chunks(7) {
        stream.write_all(chunk).unwrap();
        stream.flush().unwrap();
    }
    let before = Timestamp::from_micros(0);
    let port = Some(local.port());
    let ev = next(&rx);
    assert_message(
        &ev,
        port,
        &[
            ("source_addr", "127.0.0.1"),
            ("transport", "tcp"),
            ("client_identity", ""),
            ("facility", "20"),
            ("syslog_severity", "5"),
            ("hostname", "mymachine.example.com"),
            ("app_name", "evntslog"),
            ("procid", ""),
            ("msgid", "ID47"),
            (
                "structured_data",
                "[exampleSDID@32473 iut=\"3\" eventSource=\"Application\" eventID=\"1011\"]\
                 [examplePriority@32473 class=\"high\"]",
            ),
            ("message", ""),
        ],
        before,
    );
    assert_eq!(
        ev.time,
        Timestamp::parse_rfc3339("2003-10-11T22:14:15.003Z").unwrap()
    );
    assert_eq!(ev.severity, Severity::Notice);
    let ev = next(&rx);
    assert_message(
        &ev,
        port,
        &[
            ("source_addr", "127.0.0.1"),
            ("transport", "tcp"),
            ("client_identity", ""),
            ("facility", "4"),
            ("syslog_severity", "2"),
            ("hostname", "mymachine.example.com"),
            ("app_name", "su"),
            ("procid", ""),
            ("msgid", "ID47"),
            ("structured_data", ""),
            (
                "message",
                "'su root' failed for lonvick on /dev/pts/8\nsecond line",
            ),
        ],
        before,
    );
    assert_eq!(ev.severity, Severity::Error);
    let ev = next(&rx);
    assert_eq!(text(&ev, "message"), "as a line");
    assert_eq!(text(&ev, "hostname"), "host");
    drop(stream);
    assert_quiet(&rx);
    assert_eq!(ingest.shutdown().received, 3);
}

/// Sends `bytes` on a new connection to `addr`, then a good message on a
/// second one, and returns the local address of the first.
fn send_then_good(addr: SocketAddr, bytes: &[u8]) -> (SocketAddr, TcpStream) {
    let mut bad = TcpStream::connect(addr).unwrap();
    let local = bad.local_addr().unwrap();
    bad.write_all(bytes).unwrap();
    (local, bad)
}

fn send_good_tcp(addr: SocketAddr, text: &str) {
    let mut good = TcpStream::connect(addr).unwrap();
    let line = format!("<13>1 - host app - - - {text}");
    good.write_all(format!("{} {line}", line.len()).as_bytes())
        .unwrap();
}

/// Reads (a TLS alert, say) until the server closes the connection, or
/// fails after `WAIT`.
fn assert_closed_by_server(stream: &mut TcpStream) {
    stream.set_read_timeout(Some(WAIT)).unwrap();
    let mut buf = [0u8; 64];
    loop {
        match stream.read(&mut buf) {
            Ok(0) => return,
            Ok(_) => {}
            Err(e) if e.kind() == std::io::ErrorKind::ConnectionReset => return,
            Err(e) => panic!("the connection is still open: {e}"),
        }
    }
}

#[test]
fn garbage_is_rejected_without_its_content_and_the_connection_goes_on() {
    let (ingest, rx) = start(tcp_config());
    let addr = ingest.local_addrs().tcp.unwrap();
    let (local, mut stream) = send_then_good(addr, b"password=hunter2 is not syslog\n");
    let ev = expect(&rx, catalog::INGEST_REJECTED);
    assert_rejected(
        &ev,
        "malformed message: the message does not start with a PRI, <0> to <191>",
        "tcp",
        local,
        "hunter2",
    );
    // The same connection still carries good messages.
    stream
        .write_all(b"<13>1 - host app - - - after garbage\n")
        .unwrap();
    let ev = expect(&rx, catalog::INGEST_MESSAGE);
    assert_eq!(text(&ev, "message"), "after garbage");
    assert_eq!(text(&ev, "source_port"), local.port().to_string());
    let stats = ingest.shutdown();
    assert_eq!((stats.received, stats.rejected), (1, 1));
}

#[test]
fn a_bad_octet_count_closes_the_connection_only() {
    let (ingest, rx) = start(tcp_config());
    let addr = ingest.local_addrs().tcp.unwrap();
    let (local, mut stream) = send_then_good(addr, b"12x <13>1 - - - - - - password=hunter2");
    let ev = expect(&rx, catalog::INGEST_REJECTED);
    assert_rejected(
        &ev,
        "bad octet count: its digits are not followed by a space; the connection was closed",
        "tcp",
        local,
        "hunter2",
    );
    assert_closed_by_server(&mut stream);
    send_good_tcp(addr, "after a bad count");
    let ev = expect(&rx, catalog::INGEST_MESSAGE);
    assert_eq!(text(&ev, "message"), "after a bad count");
    assert_eq!(ingest.shutdown().rejected, 1);
}

/// A count that is too small leaves the rest of the message as the next
/// frame; a count too large waits for bytes that never come, until the
/// client closes.
#[test]
fn wrong_octet_counts_are_rejected() {
    let (ingest, rx) = start(tcp_config());
    let addr = ingest.local_addrs().tcp.unwrap();
    let (local, stream) = send_then_good(addr, b"24 <13>1 - - - - - - secret password=hunter2\n");
    let ev = expect(&rx, catalog::INGEST_MESSAGE);
    assert_eq!(text(&ev, "message"), "secret");
    let ev = expect(&rx, catalog::INGEST_REJECTED);
    assert_rejected(
        &ev,
        "malformed message: the message does not start with a PRI, <0> to <191>",
        "tcp",
        local,
        "hunter2",
    );
    drop(stream);

    // Another receiver, so the rate limit of this source starts afresh.
    let (ingest2, rx2) = start(tcp_config());
    let addr2 = ingest2.local_addrs().tcp.unwrap();
    let (local, stream) = send_then_good(addr2, b"500 <13>1 - - - - - - password=hunter2");
    drop(stream);
    let ev = expect(&rx2, catalog::INGEST_REJECTED);
    assert_rejected(
        &ev,
        "the connection closed inside a frame",
        "tcp",
        local,
        "hunter2",
    );
    send_good_tcp(addr2, "after a short frame");
    assert_eq!(
        text(&expect(&rx2, catalog::INGEST_MESSAGE), "message"),
        "after a short frame"
    );
    assert_eq!(ingest.shutdown().rejected, 1);
    assert_eq!(ingest2.shutdown().rejected, 1);
}

#[test]
fn oversized_frames_are_skipped_and_the_connection_goes_on() {
    let mut config = tcp_config();
    config.max_message = 1024;
    let (ingest, rx) = start(config);
    let addr = ingest.local_addrs().tcp.unwrap();
    let big = format!("<13>1 - - - - - - password=hunter2 {}", "x".repeat(2000));
    let mut bytes = format!("{} {big}", big.len()).into_bytes();
    let good = "<13>1 - host app - - - after the big one";
    bytes.extend_from_slice(format!("{} {good}", good.len()).as_bytes());
    let (local, mut stream) = send_then_good(addr, &bytes);
    let ev = expect(&rx, catalog::INGEST_REJECTED);
    assert_rejected(
        &ev,
        &format!(
            "a frame of {} bytes is longer than max_message (1024 bytes)",
            big.len()
        ),
        "tcp",
        local,
        "hunter2",
    );
    let ev = expect(&rx, catalog::INGEST_MESSAGE);
    assert_eq!(text(&ev, "message"), "after the big one");
    // An oversized line is skipped up to its LF, a second later (the rate
    // limit), and the connection goes on again.
    std::thread::sleep(Duration::from_millis(1100));
    stream
        .write_all(format!("{big}\n<13>1 - host app - - - after the long line\n").as_bytes())
        .unwrap();
    let ev = expect(&rx, catalog::INGEST_REJECTED);
    assert_rejected(
        &ev,
        "a line is longer than max_message (1024 bytes)",
        "tcp",
        local,
        "hunter2",
    );
    let ev = expect(&rx, catalog::INGEST_MESSAGE);
    assert_eq!(text(&ev, "message"), "after the long line");
    let stats = ingest.shutdown();
    assert_eq!((stats.received, stats.rejected), (2, 2));
}

#[test]
fn udp_garbage_and_oversized_datagrams_are_rejected() {
    let mut config = udp_config();
    config.max_message = 1024;
    let (ingest, rx) = start(config);
    let addr = ingest.local_addrs().udp.unwrap();
    let socket = UdpSocket::bind("127.0.0.1:0").unwrap();
    let local = socket.local_addr().unwrap();
    let big = format!("<13>1 - - - - - - password=hunter2 {}", "x".repeat(2000));
    socket.send_to(big.as_bytes(), addr).unwrap();
    let ev = expect(&rx, catalog::INGEST_REJECTED);
    assert_rejected(
        &ev,
        "a datagram is longer than max_message (1024 bytes)",
        "udp",
        local,
        "hunter2",
    );
    socket
        .send_to(b"<13>1 - host app - - - a datagram that fits", addr)
        .unwrap();
    let ev = expect(&rx, catalog::INGEST_MESSAGE);
    assert_eq!(text(&ev, "message"), "a datagram that fits");
    assert_eq!(text(&ev, "source_port"), local.port().to_string());
    // From another source, garbage is reported at once.
    let other = UdpSocket::bind("127.0.0.2:0").unwrap();
    other.send_to(b"<999>password=hunter2", addr).unwrap();
    let ev = expect(&rx, catalog::INGEST_REJECTED);
    assert_rejected(
        &ev,
        "malformed message: the message does not start with a PRI, <0> to <191>",
        "udp",
        other.local_addr().unwrap(),
        "hunter2",
    );
    let stats = ingest.shutdown();
    assert_eq!((stats.received, stats.rejected), (1, 2));
}

#[test]
fn rejection_reports_are_rate_limited_per_source() {
    let (ingest, rx) = start(udp_config());
    let addr = ingest.local_addrs().udp.unwrap();
    let socket = UdpSocket::bind("127.0.0.1:0").unwrap();
    let local = socket.local_addr().unwrap();
    for i in 0..5 {
        socket
            .send_to(format!("garbage {i} password=hunter2").as_bytes(), addr)
            .unwrap();
    }
    socket.send_to(b"<13>1 - - - - - - fine", addr).unwrap();
    let first = expect(&rx, catalog::INGEST_REJECTED);
    assert_rejected(
        &first,
        "malformed message: the message does not start with a PRI, <0> to <191>",
        "udp",
        local,
        "hunter2",
    );
    assert_eq!(
        text(&expect(&rx, catalog::INGEST_MESSAGE), "message"),
        "fine"
    );
    // The other four come as one report about a second later: the last of
    // them, with the three before it counted.
    let started = Instant::now();
    let second = expect(&rx, catalog::INGEST_REJECTED);
    assert!(started.elapsed() >= Duration::from_millis(500));
    assert_eq!(text(&second, "suppressed"), "3");
    assert_eq!(text(&second, "source_port"), local.port().to_string());
    assert_no_secret(&second, "hunter2");
    assert_quiet(&rx);
    let stats = ingest.shutdown();
    assert_eq!((stats.received, stats.rejected), (1, 5));
}

/// A receiver with TLS (and plain TCP), client certificates required.
struct TlsSetup {
    _dir: tempfile::TempDir,
    pki: Pki,
    ingest: Ingest,
    rx: Receiver,
}

fn tls_setup() -> TlsSetup {
    let dir = vigil_testkit::tempdir();
    let pki = Pki::new(dir.path());
    let server = pki.server("localhost", &["localhost", "127.0.0.1"]);
    let mut config = tcp_config();
    let mut tls = IngestTls::new(loopback(), &server.cert, &server.key);
    tls.client_ca = Some(pki.ca_cert_path().to_path_buf());
    config.tls = Some(tls);
    let (ingest, rx) = start(config);
    TlsSetup {
        _dir: dir,
        pki,
        ingest,
        rx,
    }
}

/// A TLS client trusting the test CA, presenting `client` if given.
fn tls_client(
    pki: &Pki,
    client: Option<&CertPaths>,
    addr: SocketAddr,
) -> StreamOwned<ClientConnection, TcpStream> {
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let mut roots = RootCertStore::empty();
    roots
        .add(CertificateDer::from_pem_file(pki.ca_cert_path()).unwrap())
        .unwrap();
    let builder = ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .unwrap()
        .with_root_certificates(roots);
    let config = match client {
        Some(c) => builder
            .with_client_auth_cert(
                vec![CertificateDer::from_pem_file(&c.cert).unwrap()],
                PrivateKeyDer::from_pem_file(&c.key).unwrap(),
            )
            .unwrap(),
        None => builder.with_no_client_auth(),
    };
    let conn = ClientConnection::new(Arc::new(config), ServerName::try_from("localhost").unwrap())
        .unwrap();
    let sock = TcpStream::connect(addr).unwrap();
    sock.set_read_timeout(Some(WAIT)).unwrap();
    StreamOwned::new(conn, sock)
}

#[test]
fn tls_clients_are_identified_and_bad_ones_rejected() {
    let TlsSetup {
        _dir,
        pki,
        ingest,
        rx,
    } = tls_setup();
    let tls_addr = ingest.local_addrs().tls.unwrap();

    // A plain-TCP client on the TLS port.
    let (local, mut plain) = send_then_good(tls_addr, b"<13>1 - host app - - - password=hunter2\n");
    let ev = expect(&rx, catalog::INGEST_REJECTED);
    let reason = text(&ev, "reason");
    assert!(reason.starts_with("TLS handshake failed: "), "{reason}");
    assert_eq!(text(&ev, "transport"), "tls");
    assert_eq!(text(&ev, "source_port"), local.port().to_string());
    assert_no_secret(&ev, "hunter2");
    assert_closed_by_server(&mut plain);

    // A good client right after it, with its certificate's identity.
    let client = pki.client("app-server-7");
    let mut good = tls_client(&pki, Some(&client), tls_addr);
    let line = "<86>1 2026-11-26T10:00:00.5+01:00 app7 vault 991 AUTH [a@1 user=\"ops\"] unsealed";
    good.write_all(format!("{} {line}", line.len()).as_bytes())
        .unwrap();
    good.flush().unwrap();
    let local = good.sock.local_addr().unwrap();
    let ev = next(&rx);
    assert_message(
        &ev,
        Some(local.port()),
        &[
            ("source_addr", "127.0.0.1"),
            ("transport", "tls"),
            ("client_identity", "CN=app-server-7"),
            ("facility", "10"),
            ("syslog_severity", "6"),
            ("hostname", "app7"),
            ("app_name", "vault"),
            ("procid", "991"),
            ("msgid", "AUTH"),
            ("structured_data", "[a@1 user=\"ops\"]"),
            ("message", "unsealed"),
        ],
        Timestamp::from_micros(0),
    );
    assert_eq!(
        ev.time,
        Timestamp::parse_rfc3339("2026-11-26T09:00:00.5Z").unwrap()
    );
    assert_eq!(ev.severity, Severity::Info);
    drop(good);

    // The plain TCP listener of the same receiver carries no identity.
    send_good_tcp(ingest.local_addrs().tcp.unwrap(), "plain");
    let ev = expect(&rx, catalog::INGEST_MESSAGE);
    assert_eq!(
        (text(&ev, "transport"), text(&ev, "client_identity")),
        ("tcp".to_owned(), String::new())
    );

    let stats = ingest.shutdown();
    assert_eq!((stats.received, stats.rejected), (2, 1));
}

#[test]
fn tls_clients_without_a_certificate_are_rejected() {
    let TlsSetup {
        _dir,
        pki,
        ingest,
        rx,
    } = tls_setup();
    let tls_addr = ingest.local_addrs().tls.unwrap();
    let mut anonymous = tls_client(&pki, None, tls_addr);
    // TLS 1.3 lets the client write before the server has checked it.
    let _ = anonymous.write_all(b"<13>1 - - - - - - password=hunter2\n");
    let _ = anonymous.flush();
    let local = anonymous.sock.local_addr().unwrap();
    let ev = expect(&rx, catalog::INGEST_REJECTED);
    assert_eq!(
        text(&ev, "reason"),
        "TLS handshake failed: peer sent no certificates"
    );
    assert_eq!(text(&ev, "source_port"), local.port().to_string());
    assert_no_secret(&ev, "hunter2");
    let mut buf = [0u8; 16];
    assert!(
        anonymous.read(&mut buf).is_err(),
        "the server sent an alert"
    );

    // A stranger's certificate is refused too.
    let other = pki.other_ca().client("mallory");
    let mut stranger = tls_client(&pki, Some(&other), tls_addr);
    let _ = stranger.write_all(b"<13>1 - - - - - - x\n");
    let _ = stranger.flush();
    let ev = expect(&rx, catalog::INGEST_REJECTED);
    let reason = text(&ev, "reason");
    assert!(
        reason.starts_with("TLS handshake failed: invalid peer certificate"),
        "{reason}"
    );
    assert_quiet(&rx);
    let stats = ingest.shutdown();
    assert_eq!((stats.received, stats.rejected), (0, 2));
}

/// A throwaway rsyslogd that forwards what it receives on a TCP port to
/// vigil, with the RFC 5424 template and octet counting; killed on drop.
struct Forwarder {
    child: Child,
    dir: tempfile::TempDir,
    input: u16,
}

impl Forwarder {
    /// Forwards to `target`; over TLS (gtls) with `tls`: (CA file, client
    /// certificate), checking that the server's certificate names
    /// `localhost`.
    fn start(target: SocketAddr, tls: Option<(&Path, &CertPaths)>) -> Forwarder {
        let dir = vigil_testkit::tempdir();
        let work = dir.path().join("work");
        fs::create_dir_all(&work).unwrap();
        let input = vigil_testkit::free_port();
        let q = |p: &Path| p.display().to_string();
        let mut global = format!("workDirectory=\"{}\"", q(&work));
        let mut driver = String::new();
        if let Some((ca, client)) = tls {
            global.push_str(&format!(
                " defaultNetstreamDriverCAFile=\"{}\" defaultNetstreamDriverCertFile=\"{}\" \
                 defaultNetstreamDriverKeyFile=\"{}\"",
                q(ca),
                q(&client.cert),
                q(&client.key)
            ));
            driver = " StreamDriver=\"gtls\" StreamDriverMode=\"1\" \
                      StreamDriverAuthMode=\"x509/name\" StreamDriverPermittedPeers=\"localhost\""
                .to_owned();
        }
        let conf = format!(
            "global({global})\n\
             module(load=\"imtcp\")\n\
             input(type=\"imtcp\" address=\"127.0.0.1\" port=\"{input}\" ruleset=\"forward\")\n\
             ruleset(name=\"forward\") {{\n  \
               action(type=\"omfwd\" target=\"{ip}\" port=\"{port}\" protocol=\"tcp\" \
               TCP_Framing=\"octet-counted\" template=\"RSYSLOG_SyslogProtocol23Format\"{driver})\n\
             }}\n",
            ip = target.ip(),
            port = target.port(),
        );
        let conf_path = dir.path().join("rsyslog.conf");
        fs::write(&conf_path, conf).unwrap();
        let stderr = fs::File::create(dir.path().join("stderr")).unwrap();
        let child = Command::new("/usr/sbin/rsyslogd")
            .arg("-n")
            .arg("-f")
            .arg(&conf_path)
            .arg("-i")
            .arg(dir.path().join("rsyslogd.pid"))
            .current_dir(dir.path())
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(stderr)
            .spawn()
            .unwrap();
        Forwarder { child, dir, input }
    }

    /// Sends `messages` to rsyslog's input, each as a line, once it listens.
    fn send(&mut self, messages: &[&[u8]]) {
        let deadline = Instant::now() + RSYSLOG_WAIT;
        let mut stream = loop {
            match TcpStream::connect(("127.0.0.1", self.input)) {
                Ok(s) => break s,
                Err(e) if Instant::now() < deadline => {
                    assert!(
                        matches!(self.child.try_wait(), Ok(None)),
                        "rsyslogd exited: {e}\n{}",
                        self.log()
                    );
                    std::thread::sleep(Duration::from_millis(50));
                }
                Err(e) => panic!("rsyslogd does not listen: {e}\n{}", self.log()),
            }
        };
        for m in messages {
            stream.write_all(m).unwrap();
            stream.write_all(b"\n").unwrap();
        }
    }

    fn log(&self) -> String {
        let stderr = fs::read_to_string(self.dir.path().join("stderr")).unwrap_or_default();
        let conf = fs::read_to_string(self.dir.path().join("rsyslog.conf")).unwrap_or_default();
        format!("--- rsyslogd standard error ---\n{stderr}--- rsyslog.conf ---\n{conf}")
    }
}

impl Drop for Forwarder {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

const RFC5424_EXAMPLE: &[u8] = b"<165>1 2003-10-11T22:14:15.003Z mymachine.example.com evntslog - \
    ID47 [exampleSDID@32473 iut=\"3\" eventSource=\"Application\" eventID=\"1011\"] \
    \xEF\xBB\xBFAn application event log entry...";

/// What the forwarded RFC 5424 example must become, but for the source
/// and transport fields.
fn example_fields<'a>(transport: &'a str, identity: &'a str) -> Vec<(&'a str, &'a str)> {
    vec![
        ("source_addr", "127.0.0.1"),
        ("transport", transport),
        ("client_identity", identity),
        ("facility", "20"),
        ("syslog_severity", "5"),
        ("hostname", "mymachine.example.com"),
        ("app_name", "evntslog"),
        ("procid", ""),
        ("msgid", "ID47"),
        (
            "structured_data",
            "[exampleSDID@32473 iut=\"3\" eventSource=\"Application\" eventID=\"1011\"]",
        ),
        ("message", "An application event log entry..."),
    ]
}

fn next_from_rsyslog(rx: &Receiver, forwarder: &Forwarder) -> Event {
    match rx.recv_timeout(RSYSLOG_WAIT) {
        Some(q) => q.event,
        None => panic!("nothing forwarded\n{}", forwarder.log()),
    }
}

#[test]
fn rsyslog_forwards_over_tcp() {
    let (ingest, rx) = start(tcp_config());
    let mut forwarder = Forwarder::start(ingest.local_addrs().tcp.unwrap(), None);
    let before = Timestamp::now();
    forwarder.send(&[
        RFC5424_EXAMPLE,
        b"<38>Oct 11 22:14:15 mymachine sshd[77]: Accepted publickey for deploy",
    ]);
    let ev = next_from_rsyslog(&rx, &forwarder);
    assert_message(&ev, None, &example_fields("tcp", ""), before);
    assert_eq!(
        ev.time,
        Timestamp::parse_rfc3339("2003-10-11T22:14:15.003Z").unwrap()
    );
    // rsyslog turns RFC 3164 into RFC 5424 with its own guess of the year.
    let ev = next_from_rsyslog(&rx, &forwarder);
    assert_message(
        &ev,
        None,
        &[
            ("source_addr", "127.0.0.1"),
            ("transport", "tcp"),
            ("client_identity", ""),
            ("facility", "4"),
            ("syslog_severity", "6"),
            ("hostname", "mymachine"),
            ("app_name", "sshd"),
            ("procid", "77"),
            ("msgid", ""),
            ("structured_data", ""),
            // rsyslog keeps the space after the tag's colon.
            ("message", " Accepted publickey for deploy"),
        ],
        before,
    );
    drop(forwarder);
    let stats = ingest.shutdown();
    assert_eq!((stats.received, stats.rejected), (2, 0));
}

#[test]
fn rsyslog_forwards_over_tls_with_a_client_certificate() {
    let TlsSetup {
        _dir,
        pki,
        ingest,
        rx,
    } = tls_setup();
    let client = pki.client("rsyslog-forwarder");
    let ca: PathBuf = pki.ca_cert_path().to_path_buf();
    let mut forwarder = Forwarder::start(ingest.local_addrs().tls.unwrap(), Some((&ca, &client)));
    let before = Timestamp::now();
    forwarder.send(&[RFC5424_EXAMPLE]);
    let ev = next_from_rsyslog(&rx, &forwarder);
    assert_message(
        &ev,
        None,
        &example_fields("tls", "CN=rsyslog-forwarder"),
        before,
    );
    drop(forwarder);
    let stats = ingest.shutdown();
    assert_eq!((stats.received, stats.rejected), (1, 0));
}
