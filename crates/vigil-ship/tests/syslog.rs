//! The syslog transport against a real rsyslogd: every record arrives
//! exactly as sent over UDP, TCP and TLS; certificate failures park, an
//! absent receiver is retried, and a receiver restarted in the middle of a
//! stream loses nothing over TCP and TLS. syslog-ng, as a second receiver,
//! parses every record as vigil meant it.

#![allow(clippy::unwrap_used)]

use std::collections::BTreeSet;
use std::sync::Arc;
use std::time::{Duration, Instant};

use vigil_event::{Event, Format, SyslogOptions, catalog};
use vigil_ship::transport::syslog::{Protocol, SyslogConfig, SyslogTransport, TlsClient};
use vigil_ship::transport::{Record, SendError, Sent, Transport};
use vigil_testkit::pki::{CertPaths, Pki};
use vigil_testkit::rsyslog::Rsyslog;

const ORIGIN: &str = "db1";
const WAIT: Duration = Duration::from_secs(10);

/// Events `seqs` of [`ORIGIN`] and their formatted records.
struct Events {
    events: Vec<Event>,
    formatted: Vec<Vec<u8>>,
}

impl Events {
    fn new(seqs: impl IntoIterator<Item = u64>, format: &Format) -> Events {
        let mut events = Vec::new();
        let mut formatted = Vec::new();
        for seq in seqs {
            let mut event = Event::new(catalog::CLIENT_CONNECTED, "client connected")
                .field("user", format!("app{seq}"))
                .field("note", "café ünïcode € \"quoted\" [x] back\\slash");
            event.origin = Arc::from(ORIGIN);
            event.seq = seq;
            let mut buf = Vec::new();
            format.write(&event, &mut buf);
            events.push(event);
            formatted.push(buf);
        }
        Events { events, formatted }
    }

    fn push_raw(&mut self, seq: u64, formatted: Vec<u8>) {
        let mut event = Event::new(catalog::CLIENT_CONNECTED, "client connected");
        event.origin = Arc::from(ORIGIN);
        event.seq = seq;
        self.events.push(event);
        self.formatted.push(formatted);
    }

    fn records(&self) -> Vec<Record<'_>> {
        self.events
            .iter()
            .zip(&self.formatted)
            .map(|(event, formatted)| Record {
                origin: ORIGIN,
                seq: event.seq,
                event,
                formatted,
                sealed: formatted,
            })
            .collect()
    }

    fn lines(&self) -> Vec<String> {
        self.formatted
            .iter()
            .map(|f| String::from_utf8(f.clone()).unwrap())
            .collect()
    }
}

fn syslog_format() -> Format {
    Format::Syslog(SyslogOptions {
        hostname: "vigil-test".to_owned(),
        procid: Some(4242),
        ..SyslogOptions::default()
    })
}

/// Parses `line` as RFC 5424 and returns its `seq`, checking the header.
fn rfc5424_seq(line: &str) -> u64 {
    let msg = syslog_rfc5424::parse_message(line)
        .unwrap_or_else(|e| panic!("not RFC 5424 ({e}): {line}"));
    assert_eq!(msg.hostname.as_deref(), Some("vigil-test"));
    assert_eq!(msg.appname.as_deref(), Some("vigil"));
    assert_eq!(msg.msgid.as_deref(), Some("client.connected"));
    assert_eq!(
        msg.sd
            .find_tuple("vigil@32473", "origin")
            .map(String::as_str),
        Some(ORIGIN)
    );
    let seq: u64 = msg
        .sd
        .find_tuple("vigil@32473", "seq")
        .unwrap()
        .parse()
        .unwrap();
    assert_eq!(
        msg.sd
            .find_tuple("fields@32473", "user")
            .map(String::as_str),
        Some(format!("app{seq}").as_str())
    );
    seq
}

/// The last record on a line of the receiver's file. A receiver killed in
/// the middle of writing a record leaves it cut short, and after its
/// restart the next record goes on the same line: the cut one, which the
/// sender delivers again, is dropped.
fn last_record(line: &str) -> &str {
    let b = line.as_bytes();
    let mut starts = (1..b.len()).filter(|&i| {
        // `<PRI>1 `: one to three digits.
        let rest = &b[i..];
        let digits = rest
            .iter()
            .skip(1)
            .take_while(|c| c.is_ascii_digit())
            .count();
        rest.first() == Some(&b'<')
            && (1..=3).contains(&digits)
            && rest.get(1 + digits..3 + digits) == Some(&b">1"[..])
            && rest.get(3 + digits) == Some(&b' ')
    });
    match starts.next_back() {
        Some(i) => line.get(i..).unwrap_or(line),
        None => line,
    }
}

/// The `seq` of a line in either format.
fn seq_of(line: &str) -> u64 {
    if line.starts_with('{') {
        let v: serde_json::Value = serde_json::from_str(line).unwrap();
        assert_eq!(v["origin"], ORIGIN, "{line}");
        v["seq"].as_u64().unwrap()
    } else {
        rfc5424_seq(line)
    }
}

fn tls_config(address: String, ca: &std::path::Path, client: Option<&CertPaths>) -> SyslogConfig {
    let mut config = SyslogConfig::new(Protocol::Tls, address);
    let mut tls = TlsClient::new(ca);
    if let Some(client) = client {
        tls.client_cert = Some(client.cert.clone());
        tls.client_key = Some(client.key.clone());
    }
    config.tls = Some(tls);
    config.timeout = Duration::from_secs(3);
    config
}

fn send_in_batches(transport: &mut SyslogTransport, events: &Events, size: usize) -> Vec<Sent> {
    let records = events.records();
    records
        .chunks(size)
        .map(|batch| {
            transport
                .send(batch)
                .unwrap_or_else(|e| panic!("send failed: {e:?}"))
        })
        .collect()
}

/// Asserts rsyslog received exactly `expected`, in order, as sent.
fn assert_received(rsyslog: &Rsyslog, expected: &[String]) {
    let lines = rsyslog.wait_for_lines(expected.len(), WAIT);
    // Give a stray extra line a moment to show up.
    std::thread::sleep(Duration::from_millis(100));
    let lines = if lines.len() == expected.len() {
        rsyslog.lines()
    } else {
        lines
    };
    assert_eq!(lines.len(), expected.len(), "{}", rsyslog.log());
    for (got, want) in lines.iter().zip(expected) {
        assert_eq!(got, want, "{}", rsyslog.log());
    }
}

#[test]
fn udp_delivers_each_record_as_one_datagram() {
    let rsyslog = Rsyslog::builder().udp().start().unwrap();
    let mut config = SyslogConfig::new(Protocol::Udp, format!("127.0.0.1:{}", rsyslog.udp_port()));
    config.max_datagram = 2_000;
    let mut transport = SyslogTransport::new(config).unwrap();
    assert!(!transport.acknowledged());

    let mut events = Events::new(1..=40, &syslog_format());
    let mut big = Events::new([41], &syslog_format()).formatted.remove(0);
    big.extend(std::iter::repeat_n(b'x', 2_500));
    events.push_raw(41, big);
    events.push_raw(42, Vec::new());
    let json = Events::new(43..=50, &Format::Json);
    for (e, f) in json.events.into_iter().zip(json.formatted) {
        events.formatted.push(f);
        events.events.push(e);
    }

    let records = events.records();
    let first = transport.send(&records[..30]).unwrap();
    assert_eq!(first, Sent::all());
    let second = transport.send(&records[30..]).unwrap();
    assert_eq!(second.retry, Vec::<usize>::new());
    let rejected: Vec<usize> = second.rejected.iter().map(|(i, _)| *i).collect();
    assert_eq!(rejected, [10, 11], "{second:?}");
    assert!(second.rejected[0].1.contains("max_datagram"), "{second:?}");
    assert!(second.rejected[1].1.contains("empty"), "{second:?}");

    let mut expected = events.lines();
    expected.drain(40..42);
    assert_received(&rsyslog, &expected);
    let seqs: Vec<u64> = rsyslog.lines().iter().map(|l| seq_of(l)).collect();
    let want: Vec<u64> = (1..=40).chain(43..=50).collect();
    assert_eq!(seqs, want);
}

#[test]
fn tcp_delivers_octet_counted_records_as_sent() {
    let rsyslog = Rsyslog::builder().tcp().start().unwrap();
    let address = format!("127.0.0.1:{}", rsyslog.tcp_port());
    let mut transport = SyslogTransport::new(SyslogConfig::new(Protocol::Tcp, address)).unwrap();
    assert!(!transport.acknowledged());

    let mut events = Events::new(1..=300, &syslog_format());
    // A record far larger than a TCP segment, a JSON one, an empty one.
    let mut big = Events::new([301], &syslog_format()).formatted.remove(0);
    big.extend(std::iter::repeat_n(b'y', 100_000));
    events.push_raw(301, big);
    let json = Events::new([302], &Format::Json);
    events.push_raw(302, json.formatted[0].clone());
    events.push_raw(303, Vec::new());

    let sent = send_in_batches(&mut transport, &events, 50);
    let last = sent.last().unwrap();
    assert_eq!(last.rejected.len(), 1);
    assert_eq!(last.rejected[0].0, 2, "{last:?}");
    assert!(sent[..sent.len() - 1].iter().all(|s| *s == Sent::all()));

    let mut expected = events.lines();
    expected.pop();
    assert_received(&rsyslog, &expected);
    for line in &rsyslog.lines()[..300] {
        rfc5424_seq(line);
    }
}

#[test]
fn tls_with_client_certificate_delivers_records_as_sent() {
    let pki_dir = vigil_testkit::tempdir();
    let pki = Pki::new(pki_dir.path());
    let server = pki.server("localhost", &["localhost", "127.0.0.1"]);
    let client = pki.client("vigil");
    let rsyslog = Rsyslog::builder()
        .tls(&server.cert, &server.key, pki.ca_cert_path(), true)
        .start()
        .unwrap();

    // The server name defaults to the address's host, an IP address here.
    let address = format!("127.0.0.1:{}", rsyslog.tls_port());
    let config = tls_config(address.clone(), pki.ca_cert_path(), Some(&client));
    let mut transport = SyslogTransport::new(config).unwrap();
    let syslog = Events::new(1..=100, &syslog_format());
    let sent = send_in_batches(&mut transport, &syslog, 25);
    assert!(sent.iter().all(|s| *s == Sent::all()));

    // A DNS name, given explicitly, and JSON records.
    let mut config = tls_config(address, pki.ca_cert_path(), Some(&client));
    config.tls.as_mut().unwrap().server_name = Some("localhost".to_owned());
    let mut transport2 = SyslogTransport::new(config).unwrap();
    let json = Events::new(101..=150, &Format::Json);
    send_in_batches(&mut transport2, &json, 50);

    let lines = rsyslog.wait_for_lines(150, WAIT);
    assert_eq!(lines.len(), 150, "{}", rsyslog.log());
    // The two connections' records may interleave; each keeps its order.
    let (from_json, from_syslog): (Vec<String>, Vec<String>) =
        lines.into_iter().partition(|l| l.starts_with('{'));
    assert_eq!(from_syslog, syslog.lines(), "{}", rsyslog.log());
    assert_eq!(from_json, json.lines(), "{}", rsyslog.log());
    transport.close();
    transport2.close();
}

#[test]
fn server_certificate_from_another_ca_parks() {
    let pki_dir = vigil_testkit::tempdir();
    let pki = Pki::new(pki_dir.path());
    let other = pki.other_ca();
    let stranger = other.server("localhost", &["localhost", "127.0.0.1"]);
    let rsyslog = Rsyslog::builder()
        .tls(&stranger.cert, &stranger.key, other.ca_cert_path(), false)
        .start()
        .unwrap();
    let address = format!("127.0.0.1:{}", rsyslog.tls_port());
    let mut transport =
        SyslogTransport::new(tls_config(address.clone(), pki.ca_cert_path(), None)).unwrap();
    let events = Events::new(1..=3, &syslog_format());
    let err = transport.send(&events.records()).unwrap_err();
    let SendError::Park(why) = &err else {
        panic!("expected Park, got {err:?}");
    };
    assert!(why.contains("certificate"), "{why}");
    assert!(why.contains(&address), "{why}");
    assert!(rsyslog.lines().is_empty());
}

#[test]
fn server_name_mismatch_parks() {
    let pki_dir = vigil_testkit::tempdir();
    let pki = Pki::new(pki_dir.path());
    let server = pki.server("localhost", &["localhost", "127.0.0.1"]);
    let rsyslog = Rsyslog::builder()
        .tls(&server.cert, &server.key, pki.ca_cert_path(), false)
        .start()
        .unwrap();
    let address = format!("127.0.0.1:{}", rsyslog.tls_port());
    let mut config = tls_config(address, pki.ca_cert_path(), None);
    config.tls.as_mut().unwrap().server_name = Some("logs.example.net".to_owned());
    let mut transport = SyslogTransport::new(config).unwrap();
    let events = Events::new(1..=1, &syslog_format());
    match transport.send(&events.records()) {
        Err(SendError::Park(why)) => assert!(why.contains("certificate"), "{why}"),
        other => panic!("expected Park, got {other:?}"),
    }

    // Without a client certificate, a receiver that does not ask for one
    // takes the records.
    let mut config = tls_config(
        format!("127.0.0.1:{}", rsyslog.tls_port()),
        pki.ca_cert_path(),
        None,
    );
    config.tls.as_mut().unwrap().server_name = Some("localhost".to_owned());
    let mut transport = SyslogTransport::new(config).unwrap();
    assert_eq!(transport.send(&events.records()).unwrap(), Sent::all());
    assert_received(&rsyslog, &events.lines());
}

#[test]
fn missing_client_certificate_is_retried_not_lost() {
    let pki_dir = vigil_testkit::tempdir();
    let pki = Pki::new(pki_dir.path());
    let server = pki.server("localhost", &["localhost", "127.0.0.1"]);
    let rsyslog = Rsyslog::builder()
        .tls(&server.cert, &server.key, pki.ca_cert_path(), true)
        .start()
        .unwrap();
    let address = format!("127.0.0.1:{}", rsyslog.tls_port());
    let mut transport =
        SyslogTransport::new(tls_config(address, pki.ca_cert_path(), None)).unwrap();
    let events = Events::new(1..=2, &syslog_format());
    let records = events.records();
    // rsyslog checks the client certificate after the handshake and
    // disconnects: the first write looks fine, a later send must not.
    let mut outcomes = Vec::new();
    for _ in 0..4 {
        let outcome = transport.send(&records);
        let failed = outcome.is_err();
        outcomes.push(outcome);
        if failed {
            break;
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    let Some(Err(SendError::Retry(why))) = outcomes.last() else {
        panic!("expected a Retry, got {outcomes:?}");
    };
    assert!(why.contains("right after it was opened"), "{why}");
    assert!(why.contains("client_cert"), "{why}");
    assert!(rsyslog.lines().is_empty(), "{:?}", rsyslog.lines());
}

#[test]
fn nothing_listening_is_retried() {
    let port = vigil_testkit::free_port();
    let address = format!("127.0.0.1:{port}");
    let events = Events::new(1..=1, &syslog_format());

    let mut tcp = SyslogTransport::new(SyslogConfig::new(Protocol::Tcp, address.clone())).unwrap();
    match tcp.send(&events.records()) {
        Err(SendError::Retry(why)) => assert!(why.contains(&address), "{why}"),
        other => panic!("expected Retry, got {other:?}"),
    }

    let pki_dir = vigil_testkit::tempdir();
    let pki = Pki::new(pki_dir.path());
    let mut tls =
        SyslogTransport::new(tls_config(address.clone(), pki.ca_cert_path(), None)).unwrap();
    match tls.send(&events.records()) {
        Err(SendError::Retry(why)) => assert!(why.contains(&address), "{why}"),
        other => panic!("expected Retry, got {other:?}"),
    }

    // UDP learns of it from the ICMP answer to an earlier datagram.
    let mut udp = SyslogTransport::new(SyslogConfig::new(Protocol::Udp, address.clone())).unwrap();
    let many = Events::new(1..=3, &syslog_format());
    let outcomes: Vec<_> = (0..3).map(|_| udp.send(&many.records())).collect();
    let retried = outcomes.iter().find_map(|o| match o {
        Err(SendError::Retry(why)) => Some(why),
        _ => None,
    });
    let why = retried.unwrap_or_else(|| panic!("no Retry over UDP: {outcomes:?}"));
    assert!(why.contains(&address), "{why}");
}

/// How rsyslog goes away in the middle of a stream.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Outage {
    /// SIGKILL right after a batch was written: what it had not yet read
    /// or written out is lost.
    Crash,
    /// SIGTERM: it shuts down cleanly.
    Stop,
}

/// Sends 30 batches of 20 records, the test driving `send` like the
/// delivery loop (a `Retry` is tried again after 50 ms). After the batches
/// in `outages` rsyslog is stopped or killed, and it is started again after
/// the third retry. Checks every seq arrived at least once.
fn restart_loses_nothing(
    rsyslog: &mut Rsyslog,
    mut transport: SyslogTransport,
    outages: &[(u64, Outage)],
) {
    let (batches, size) = (30u64, 20u64);
    let start = Instant::now();
    let (mut retries, mut restarts) = (0, 0);
    for b in 0..batches {
        let events = Events::new(b * size + 1..=(b + 1) * size, &syslog_format());
        let records = events.records();
        let mut down_retries = 0;
        loop {
            match transport.send(&records) {
                Ok(sent) => {
                    assert_eq!(sent, Sent::all());
                    break;
                }
                Err(SendError::Retry(_)) => {
                    retries += 1;
                    down_retries += 1;
                    if down_retries == 3 {
                        rsyslog.start_again().unwrap();
                    }
                    assert!(
                        down_retries < 50,
                        "still failing after {down_retries} tries"
                    );
                    std::thread::sleep(Duration::from_millis(50));
                }
                Err(e @ SendError::Park(_)) => panic!("parked: {e:?}\n{}", rsyslog.log()),
            }
        }
        if let Some((_, outage)) = outages.iter().find(|(after, _)| *after == b) {
            match outage {
                Outage::Crash => rsyslog.kill(),
                Outage::Stop => rsyslog.stop(),
            }
            restarts += 1;
        }
    }
    let total = batches * size;
    let deadline = Instant::now() + WAIT;
    let mut seqs = BTreeSet::new();
    let mut lines = Vec::new();
    while Instant::now() < deadline {
        lines = rsyslog.lines();
        seqs = lines.iter().map(|l| seq_of(last_record(l))).collect();
        if seqs.len() as u64 == total {
            break;
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    let missing: Vec<u64> = (1..=total).filter(|s| !seqs.contains(s)).collect();
    assert!(
        missing.is_empty(),
        "missing seqs {missing:?}\n{}",
        rsyslog.log()
    );
    for line in &lines {
        assert!(line.starts_with("<"), "{line}");
        // Only a receiver's crash may cut a record short.
        assert!(
            line.len() == last_record(line).len()
                || outages.iter().any(|(_, o)| matches!(o, Outage::Crash)),
            "{line}"
        );
    }
    eprintln!(
        "{total} records in {:?}: {} lines ({} duplicates), {restarts} restarts, {retries} retries",
        start.elapsed(),
        lines.len(),
        lines.len() as u64 - total
    );
}

#[test]
fn a_record_cut_by_a_receivers_crash_is_dropped() {
    let whole = "<110>1 2026-11-27T04:29:02.363314Z h vigil 1 m - x";
    assert_eq!(last_record(whole), whole);
    let torn = format!("<110>1 2026-11-27T04:29:03.760318Z h vigil 1 m [vigil@32473 seve{whole}");
    assert_eq!(last_record(&torn), whole);
    // A `<` in a message that does not start a header stays.
    let quoted = "<110>1 - h vigil 1 m - a <b>1 c <12>2 d";
    assert_eq!(last_record(quoted), quoted);
}

#[test]
fn tcp_receiver_restarts_lose_nothing() {
    let mut rsyslog = Rsyslog::builder().tcp().start().unwrap();
    let address = format!("127.0.0.1:{}", rsyslog.tcp_port());
    let transport = SyslogTransport::new(SyslogConfig::new(Protocol::Tcp, address)).unwrap();
    let outages = [
        (5, Outage::Stop),
        (9, Outage::Crash),
        (12, Outage::Crash),
        (13, Outage::Stop),
        (22, Outage::Crash),
    ];
    restart_loses_nothing(&mut rsyslog, transport, &outages);
}

#[test]
fn tls_receiver_restarts_lose_nothing() {
    let pki_dir = vigil_testkit::tempdir();
    let pki = Pki::new(pki_dir.path());
    let server = pki.server("localhost", &["localhost", "127.0.0.1"]);
    let client = pki.client("vigil");
    let mut rsyslog = Rsyslog::builder()
        .tls(&server.cert, &server.key, pki.ca_cert_path(), true)
        .start()
        .unwrap();
    let address = format!("127.0.0.1:{}", rsyslog.tls_port());
    let transport =
        SyslogTransport::new(tls_config(address, pki.ca_cert_path(), Some(&client))).unwrap();
    // rsyslog generates Diffie-Hellman parameters whenever it starts its
    // TLS listener, which takes up to a few seconds: two outages only.
    let outages = [(5, Outage::Crash), (13, Outage::Stop)];
    restart_loses_nothing(&mut rsyslog, transport, &outages);
}

#[test]
fn bad_pem_files_are_named() {
    let dir = vigil_testkit::tempdir();
    let junk = dir.path().join("junk.pem");
    std::fs::write(&junk, "not a certificate\n").unwrap();
    let err = SyslogTransport::new(tls_config("127.0.0.1:6514".into(), &junk, None)).unwrap_err();
    let text = err.to_string();
    assert!(text.contains(&junk.display().to_string()), "{text}");
    assert!(text.contains("no PEM certificate"), "{text}");

    let pki = Pki::new(dir.path());
    let client = pki.client("vigil");
    let mut config = tls_config("127.0.0.1:6514".into(), pki.ca_cert_path(), Some(&client));
    config.tls.as_mut().unwrap().client_key = Some(junk.clone());
    let text = SyslogTransport::new(config).unwrap_err().to_string();
    assert!(
        text.contains("tls.client_key") && text.contains("junk.pem"),
        "{text}"
    );

    let mut config = tls_config("127.0.0.1:6514".into(), pki.ca_cert_path(), Some(&client));
    config.tls.as_mut().unwrap().client_key = Some(pki.server("x", &[]).key);
    let text = SyslogTransport::new(config).unwrap_err().to_string();
    assert!(text.contains("belong together"), "{text}");
}

/// Checks one record as syslog-ng parsed it (its JSON output line) against
/// the event vigil sent, and returns the event's seq.
fn syslog_ng_seq(line: &str) -> u64 {
    let got: serde_json::Value =
        serde_json::from_str(line).unwrap_or_else(|e| panic!("not JSON ({e}): {line}"));
    assert_eq!(got["HOST"], "vigil-test", "{line}");
    assert_eq!(got["PROGRAM"], "vigil", "{line}");
    assert_eq!(got["PID"], "4242", "{line}");
    assert_eq!(got["MSGID"], "client.connected", "{line}");
    assert_eq!(got["MESSAGE"], "client connected", "{line}");
    let sd = &got["_SDATA"];
    assert_eq!(sd["vigil@32473"]["origin"], ORIGIN, "{line}");
    let seq: u64 = sd["vigil@32473"]["seq"].as_str().unwrap().parse().unwrap();
    assert_eq!(sd["fields@32473"]["user"], format!("app{seq}"), "{line}");
    assert_eq!(
        sd["fields@32473"]["note"], "café ünïcode € \"quoted\" [x] back\\slash",
        "{line}"
    );
    seq
}

/// syslog-ng, a second receiver with its own RFC 5424 parser, reads every
/// header field and structured-data value as vigil meant it, over TCP and
/// TLS, and a restart of the receiver in the middle loses nothing.
#[test]
fn syslog_ng_parses_every_record_over_tcp_and_tls() {
    use vigil_testkit::syslog_ng::SyslogNg;

    let pki_dir = vigil_testkit::tempdir();
    let pki = Pki::new(pki_dir.path());
    let server = pki.server("localhost", &["localhost", "127.0.0.1"]);
    let mut syslog_ng = SyslogNg::builder()
        .tcp()
        .tls(&server.cert, &server.key, pki.ca_cert_path())
        .start()
        .unwrap();

    let address = format!("127.0.0.1:{}", syslog_ng.tcp_port());
    let mut tcp = SyslogTransport::new(SyslogConfig::new(Protocol::Tcp, address)).unwrap();
    let first = Events::new(1..=200, &syslog_format());
    assert!(
        send_in_batches(&mut tcp, &first, 50)
            .iter()
            .all(|s| *s == Sent::all())
    );

    let address = format!("127.0.0.1:{}", syslog_ng.tls_port());
    let mut tls = SyslogTransport::new(tls_config(address, pki.ca_cert_path(), None)).unwrap();
    let second = Events::new(201..=400, &syslog_format());
    assert!(
        send_in_batches(&mut tls, &second, 50)
            .iter()
            .all(|s| *s == Sent::all())
    );

    let lines = syslog_ng.wait_for_lines(400, WAIT);
    let seqs: BTreeSet<u64> = lines.iter().map(|l| syslog_ng_seq(l)).collect();
    assert_eq!(seqs, (1..=400).collect(), "{}", syslog_ng.log());

    // Stopped and started again between two batches: the TCP transport
    // notices the closed connection and sends what the receiver may have
    // missed again.
    syslog_ng.stop();
    let third = Events::new(401..=500, &syslog_format());
    let records = third.records();
    let mut tries = 0;
    for batch in records.chunks(25) {
        loop {
            match tcp.send(batch) {
                Ok(sent) => {
                    assert_eq!(sent, Sent::all());
                    break;
                }
                Err(SendError::Retry(_)) => {
                    tries += 1;
                    assert!(tries < 50, "still failing after {tries} tries");
                    if tries == 2 {
                        syslog_ng.start_again().unwrap();
                    }
                    std::thread::sleep(Duration::from_millis(50));
                }
                Err(e @ SendError::Park(_)) => panic!("parked: {e:?}\n{}", syslog_ng.log()),
            }
        }
    }
    let deadline = Instant::now() + WAIT;
    let mut seqs = BTreeSet::new();
    while Instant::now() < deadline && seqs.len() < 500 {
        seqs = syslog_ng.lines().iter().map(|l| syslog_ng_seq(l)).collect();
        std::thread::sleep(Duration::from_millis(50));
    }
    assert_eq!(seqs, (1..=500).collect(), "{}", syslog_ng.log());
    assert!(tries >= 2, "the stopped receiver was never noticed");
}
