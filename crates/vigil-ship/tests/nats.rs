//! The NATS JetStream transport against a real nats-server: stored
//! payloads and message ids, de-duplication, parking and retrying, a
//! server restart, credentials, sizes and TLS.
#![allow(clippy::unwrap_used)] // helpers outside #[test] fns, as in tests

use std::io::{ErrorKind, Read, Write};
use std::net::{TcpListener, TcpStream};
use std::sync::Arc;
use std::time::{Duration, Instant};

use serde_json::{Value, json};
use vigil_event::{Event, Format, catalog};
use vigil_ship::transport::nats::{
    NatsClient, NatsConfig, NatsTls, NatsTransport, StreamSpec, create_stream,
};
use vigil_ship::transport::{Record, SendError, Sent, Transport};
use vigil_testkit::nats::NatsServer;

const SUBJECT: &str = "vigil.audit";
const STREAM: &str = "AUDIT";

/// Events `seqs` of `origin`, each with its JSON line.
fn events(origin: &str, seqs: std::ops::RangeInclusive<u64>) -> Vec<(Event, Vec<u8>)> {
    seqs.map(|seq| {
        let mut event =
            Event::new(catalog::CLIENT_CONNECTED, "client connected").field("user", "app");
        event.origin = Arc::from(origin);
        event.seq = seq;
        let mut line = Vec::new();
        Format::Json.write(&event, &mut line);
        (event, line)
    })
    .collect()
}

fn records(events: &[(Event, Vec<u8>)]) -> Vec<Record<'_>> {
    events
        .iter()
        .map(|(event, line)| Record {
            origin: &event.origin,
            seq: event.seq,
            event,
            formatted: line,
            sealed: line,
        })
        .collect()
}

fn config(nats: &NatsServer) -> NatsConfig {
    NatsConfig {
        timeout: Duration::from_secs(3),
        ..NatsConfig::new(nats.url(), SUBJECT)
    }
}

fn with_stream(nats: &NatsServer, create: bool) -> NatsConfig {
    NatsConfig {
        stream: Some(StreamSpec {
            name: STREAM.into(),
            create,
        }),
        ..config(nats)
    }
}

/// A JetStream API request; its JSON answer.
fn js(config: &NatsConfig, subject: &str, body: Value) -> Value {
    let mut client = NatsClient::connect(config).unwrap();
    let body = if body.is_null() {
        Vec::new()
    } else {
        serde_json::to_vec(&body).unwrap()
    };
    let reply = client.request(subject, &body).unwrap();
    client.close();
    serde_json::from_slice(&reply).unwrap()
}

fn stream_info(config: &NatsConfig) -> Value {
    let info = js(
        config,
        &format!("$JS.API.STREAM.INFO.{STREAM}"),
        Value::Null,
    );
    assert!(info.get("error").is_none(), "{info}");
    info
}

fn stored(config: &NatsConfig) -> u64 {
    stream_info(config)["state"]["messages"].as_u64().unwrap()
}

/// Message `seq` of the stream: its headers and payload.
fn message(config: &NatsConfig, seq: u64) -> (String, Vec<u8>) {
    let got = js(
        config,
        &format!("$JS.API.STREAM.MSG.GET.{STREAM}"),
        json!({ "seq": seq }),
    );
    let msg = &got["message"];
    assert_eq!(msg["subject"], SUBJECT, "{got}");
    let headers = base64(msg["hdrs"].as_str().unwrap_or_default());
    let data = base64(msg["data"].as_str().unwrap_or_default());
    (String::from_utf8(headers).unwrap(), data)
}

/// The message ids of every message in the stream, in order.
fn ids(config: &NatsConfig) -> Vec<String> {
    (1..=stored(config))
        .map(|seq| msg_id(&message(config, seq).0))
        .collect()
}

fn msg_id(headers: &str) -> String {
    headers
        .lines()
        .find_map(|l| l.strip_prefix("Nats-Msg-Id: "))
        .unwrap_or_else(|| panic!("no Nats-Msg-Id in {headers:?}"))
        .to_owned()
}

/// Standard base64 with padding, as JetStream's API encodes messages.
fn base64(text: &str) -> Vec<u8> {
    let value = |c: u8| match c {
        b'A'..=b'Z' => c - b'A',
        b'a'..=b'z' => c - b'a' + 26,
        b'0'..=b'9' => c - b'0' + 52,
        b'+' => 62,
        b'/' => 63,
        _ => panic!("not base64: {c:?}"),
    };
    let mut out = Vec::new();
    for quad in text.trim_end_matches('=').as_bytes().chunks(4) {
        let mut n = 0u32;
        for (i, c) in quad.iter().enumerate() {
            n |= u32::from(value(*c)) << (18 - 6 * i);
        }
        out.extend_from_slice(&n.to_be_bytes()[1..quad.len()]);
    }
    out
}

fn expect_ids(origin: &str, seqs: std::ops::RangeInclusive<u64>) -> Vec<String> {
    seqs.map(|s| format!("{origin}:{s}")).collect()
}

#[test]
fn base64_decodes() {
    assert_eq!(base64("aGk="), b"hi");
    assert_eq!(base64("aGVsbG8="), b"hello");
    assert_eq!(base64("YWJj"), b"abc");
}

#[test]
fn stores_a_batch_once_with_payloads_and_ids() {
    let nats = NatsServer::start().unwrap();
    let config = with_stream(&nats, false);
    assert!(create_stream(&config, STREAM).unwrap(), "created");
    assert!(!create_stream(&config, STREAM).unwrap(), "already there");

    let batch = events("db1", 1..=200);
    let mut transport = NatsTransport::new(config.clone());
    assert_eq!(transport.send(&records(&batch)).unwrap(), Sent::all());
    assert_eq!(stored(&config), 200);
    for (i, (_, line)) in batch.iter().enumerate() {
        let (headers, data) = message(&config, i as u64 + 1);
        assert!(headers.starts_with("NATS/1.0\r\n"), "{headers:?}");
        assert_eq!(msg_id(&headers), format!("db1:{}", i + 1));
        assert_eq!(&data, line);
    }

    // The same batch again, on the same connection and on a new one:
    // JetStream acknowledges the duplicates and stores nothing.
    assert_eq!(transport.send(&records(&batch)).unwrap(), Sent::all());
    let mut fresh = NatsTransport::new(config.clone());
    assert_eq!(fresh.send(&records(&batch)).unwrap(), Sent::all());
    assert_eq!(stored(&config), 200);

    // Half old, half new: only the new half is stored.
    let overlap = events("db1", 101..=300);
    assert_eq!(transport.send(&records(&overlap)).unwrap(), Sent::all());
    assert_eq!(ids(&config), expect_ids("db1", 1..=300));
    transport.close();
}

#[test]
fn creates_the_stream_when_asked() {
    let nats = NatsServer::start().unwrap();
    let config = with_stream(&nats, true);
    let mut transport = NatsTransport::new(config.clone());
    let batch = events("db2", 1..=3);
    assert_eq!(transport.send(&records(&batch)).unwrap(), Sent::all());
    let info = stream_info(&config);
    assert_eq!(info["config"]["subjects"], json!([SUBJECT]), "{info}");
    assert_eq!(info["config"]["storage"], "file", "{info}");
    assert_eq!(
        info["config"]["duplicate_window"],
        json!(120_000_000_000u64),
        "{info}"
    );
    assert_eq!(ids(&config), expect_ids("db2", 1..=3));
}

#[test]
fn retries_with_the_reason_when_no_stream_captures_the_subject() {
    let nats = NatsServer::start().unwrap();
    let batch = events("db1", 1..=5);
    let mut transport = NatsTransport::new(config(&nats));
    let err = transport.send(&records(&batch)).unwrap_err();
    let SendError::Retry(why) = &err else {
        panic!("{err:?}")
    };
    assert!(
        why.contains("no JetStream stream captures subject vigil.audit"),
        "{why}"
    );
    assert!(why.contains("create = true"), "{why}");

    // A stream that exists but captures something else.
    let mut other = NatsClient::connect(&config(&nats)).unwrap();
    assert!(other.create_stream(STREAM, &["other.subject"]).unwrap());
    let mut transport = NatsTransport::new(with_stream(&nats, true));
    let err = transport.send(&records(&batch)).unwrap_err();
    assert!(
        matches!(&err, SendError::Retry(why) if why.contains("does not capture subject")),
        "{err:?}"
    );
}

#[test]
fn retries_when_nothing_listens() {
    let address = format!("127.0.0.1:{}", vigil_testkit::free_port());
    let mut transport = NatsTransport::new(NatsConfig {
        timeout: Duration::from_secs(2),
        ..NatsConfig::new(address.clone(), SUBJECT)
    });
    let batch = events("db1", 1..=2);
    let err = transport.send(&records(&batch)).unwrap_err();
    assert!(
        matches!(&err, SendError::Retry(why) if why.contains(&address)),
        "{err:?}"
    );
}

#[test]
fn retries_while_the_server_is_down_and_reconnects() {
    let mut nats = NatsServer::start().unwrap();
    let config = with_stream(&nats, true);
    let mut transport = NatsTransport::new(config.clone());
    let first = events("db1", 1..=50);
    let second = events("db1", 51..=100);
    let third = events("db1", 101..=150);
    assert_eq!(transport.send(&records(&first)).unwrap(), Sent::all());

    nats.stop();
    let started = Instant::now();
    for _ in 0..3 {
        let err = transport.send(&records(&second)).unwrap_err();
        assert!(
            matches!(&err, SendError::Retry(why) if why.contains(&nats.url())),
            "{err:?}"
        );
    }
    assert!(
        started.elapsed() < Duration::from_secs(5),
        "refused at once"
    );

    nats.start_again().unwrap();
    assert_eq!(transport.send(&records(&second)).unwrap(), Sent::all());

    // A restart between two sends: the transport notices the closed
    // connection before publishing and reconnects without an error.
    nats.stop();
    nats.start_again().unwrap();
    assert_eq!(transport.send(&records(&third)).unwrap(), Sent::all());

    // Everything is there once, across both restarts.
    assert_eq!(ids(&config), expect_ids("db1", 1..=150));
    let everything: Vec<_> = first.iter().chain(&second).chain(&third).cloned().collect();
    assert_eq!(transport.send(&records(&everything)).unwrap(), Sent::all());
    assert_eq!(stored(&config), 150);
    for (seq, (_, line)) in [(1, &first[0]), (150, &third[49])] {
        assert_eq!(&message(&config, seq).1, line);
    }
}

#[test]
fn parks_on_refused_credentials() {
    let nats = NatsServer::builder()
        .user("vigil", "right-password")
        .start()
        .unwrap();
    let batch = events("db1", 1..=3);
    let login = |password: Option<&str>| NatsConfig {
        user: password.map(|_| "vigil".into()),
        password: password.map(str::to_owned),
        ..with_stream(&nats, true)
    };
    for wrong in [Some("wrong-password"), None] {
        let err = NatsTransport::new(login(wrong))
            .send(&records(&batch))
            .unwrap_err();
        let SendError::Park(why) = &err else {
            panic!("{err:?}")
        };
        assert!(why.contains("Authorization Violation"), "{why}");
        assert!(!why.contains("wrong-password"), "{why}");
    }
    let config = login(Some("right-password"));
    let mut transport = NatsTransport::new(config.clone());
    assert_eq!(transport.send(&records(&batch)).unwrap(), Sent::all());
    assert_eq!(ids(&config), expect_ids("db1", 1..=3));
}

#[test]
fn logs_in_with_a_token() {
    let nats = NatsServer::builder()
        .token("t0ken-for-tests")
        .start()
        .unwrap();
    let config = NatsConfig {
        token: Some("t0ken-for-tests".into()),
        ..with_stream(&nats, true)
    };
    let batch = events("db1", 1..=2);
    assert_eq!(
        NatsTransport::new(config).send(&records(&batch)).unwrap(),
        Sent::all()
    );
}

#[test]
fn rejects_records_too_large_for_the_server_or_stream() {
    let nats = NatsServer::start().unwrap();
    let config = with_stream(&nats, false);
    let created = js(
        &config,
        &format!("$JS.API.STREAM.CREATE.{STREAM}"),
        json!({
            "name": STREAM,
            "subjects": [SUBJECT],
            "storage": "file",
            "max_msg_size": 4096,
        }),
    );
    assert!(created.get("error").is_none(), "{created}");
    let mut batch = events("db1", 1..=4);
    // Over the server's max_payload (1 MiB): never sent.
    batch[1].1 = vec![b'x'; 1024 * 1024 + 1];
    // Over the stream's max_msg_size: JetStream refuses it.
    batch[2].1 = vec![b'y'; 8192];
    let sent = NatsTransport::new(config.clone())
        .send(&records(&batch))
        .unwrap();
    assert!(sent.retry.is_empty(), "{sent:?}");
    let rejected: Vec<usize> = sent.rejected.iter().map(|(i, _)| *i).collect();
    assert_eq!(rejected, [1, 2], "{sent:?}");
    assert!(sent.rejected[0].1.contains("max_payload"), "{sent:?}");
    assert_eq!(ids(&config), ["db1:1", "db1:4"]);
}

#[test]
fn speaks_tls() {
    let dir = vigil_testkit::tempdir();
    let pki = vigil_testkit::pki::Pki::new(dir.path());
    let cert = pki.server("localhost", &["localhost", "127.0.0.1"]);
    let nats = NatsServer::builder()
        .tls(&cert.cert, &cert.key)
        .start()
        .unwrap();
    let batch = events("db1", 1..=20);
    let tls = |ca: &std::path::Path| NatsConfig {
        tls: Some(NatsTls {
            ca_file: ca.to_path_buf(),
            server_name: None,
        }),
        ..with_stream(&nats, true)
    };

    let config = tls(pki.ca_cert_path());
    let mut transport = NatsTransport::new(config.clone());
    assert_eq!(transport.send(&records(&batch)).unwrap(), Sent::all());
    assert_eq!(transport.send(&records(&batch)).unwrap(), Sent::all());
    assert_eq!(ids(&config), expect_ids("db1", 1..=20));

    let err = NatsTransport::new(with_stream(&nats, true))
        .send(&records(&batch))
        .unwrap_err();
    assert!(
        matches!(&err, SendError::Park(why) if why.contains("requires TLS")),
        "{err:?}"
    );
    let other = pki.other_ca();
    let err = NatsTransport::new(tls(other.ca_cert_path()))
        .send(&records(&batch))
        .unwrap_err();
    assert!(
        matches!(&err, SendError::Park(why) if why.contains("TLS handshake")),
        "{err:?}"
    );
}

/// The greeting of the fake servers below.
const FAKE_INFO: &[u8] = b"INFO {\"server_id\":\"FAKE\",\"version\":\"2.9.10\",\"proto\":1,\
    \"headers\":true,\"max_payload\":1048576,\"jetstream\":true} \r\n";

/// A fake NATS server for one connection: it sends `greeting`, answers
/// the login `PING` when `pong` is set, reads the client's publishes and
/// calls `respond` with their reply subjects. Its address.
fn fake<F>(greeting: &[u8], pong: bool, respond: F) -> String
where
    F: FnOnce(&[String], &mut TcpStream) + Send + 'static,
{
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let address = listener.local_addr().unwrap().to_string();
    let greeting = greeting.to_vec();
    std::thread::spawn(move || {
        let (mut s, _) = listener.accept().unwrap();
        s.set_read_timeout(Some(Duration::from_millis(100)))
            .unwrap();
        if s.write_all(&greeting).is_err() {
            return;
        }
        let login = read_until(&mut s, |seen| seen.contains("PING\r\n"));
        if pong && login.contains("PING\r\n") {
            s.write_all(b"PONG\r\n").unwrap();
            let publishes = read_until(&mut s, |seen| seen.ends_with("\r\n"));
            let replies: Vec<String> = publishes
                .lines()
                .filter_map(|l| l.strip_prefix("HPUB "))
                .filter_map(|l| l.split(' ').nth(1))
                .map(str::to_owned)
                .collect();
            respond(&replies, &mut s);
        }
        // Hold the connection until the client leaves.
        read_until(&mut s, |_| false);
    });
    address
}

/// Reads until `done` says so, the peer closes, or 5 s pass.
fn read_until(s: &mut TcpStream, done: impl Fn(&str) -> bool) -> String {
    let deadline = Instant::now() + Duration::from_secs(5);
    let mut seen = Vec::new();
    let mut buf = [0u8; 4096];
    while Instant::now() < deadline {
        match s.read(&mut buf) {
            Ok(0) => break,
            Ok(n) => seen.extend_from_slice(&buf[..n]),
            Err(e) if matches!(e.kind(), ErrorKind::WouldBlock | ErrorKind::TimedOut) => {}
            Err(_) => break,
        }
        if done(&String::from_utf8_lossy(&seen)) {
            break;
        }
    }
    String::from_utf8_lossy(&seen).into_owned()
}

fn ack(reply: &str, body: &str) -> Vec<u8> {
    format!("MSG {reply} 1  {}\r\n{body}\r\n", body.len()).into_bytes()
}

fn send_to(address: &str) -> Result<Sent, SendError> {
    let batch = events("db1", 1..=2);
    NatsTransport::new(NatsConfig {
        timeout: Duration::from_millis(500),
        ..NatsConfig::new(address, SUBJECT)
    })
    .send(&records(&batch))
}

#[test]
fn answers_pings_and_counts_duplicates_as_stored() {
    let address = fake(FAKE_INFO, true, |replies, s| {
        assert_eq!(replies.len(), 2, "{replies:?}");
        s.write_all(b"PING\r\n").unwrap();
        let pong = read_until(s, |seen| seen.contains("PONG\r\n"));
        assert!(pong.contains("PONG\r\n"), "{pong:?}");
        s.write_all(&ack(
            &replies[1],
            r#"{"stream":"S", "seq":7,"duplicate": true}"#,
        ))
        .unwrap();
        s.write_all(&ack(&replies[0], r#"{"stream":"S", "seq":8}"#))
            .unwrap();
    });
    assert_eq!(send_to(&address), Ok(Sent::all()));
}

#[test]
fn classifies_what_a_server_says() {
    let retry = |r: Result<Sent, SendError>, needle: &str| match r {
        Err(SendError::Retry(why)) => assert!(why.contains(needle), "{why}"),
        other => panic!("{other:?}"),
    };
    let address = fake(b"HTTP/1.1 400 Bad Request\r\n\r\n", true, |_, _| {});
    retry(send_to(&address), "did not greet like a NATS server");
    let address = fake(FAKE_INFO, false, |_, _| {});
    retry(send_to(&address), "logging in");
    let address = fake(FAKE_INFO, true, |_, _| {});
    retry(send_to(&address), "acknowledged 0 of 2 messages");
    let address = fake(FAKE_INFO, true, |_, s| {
        s.write_all(b"MSG x\r\n").unwrap();
    });
    retry(send_to(&address), "broke the protocol");
    let address = fake(FAKE_INFO, true, |replies, s| {
        s.write_all(&ack(&replies[0], "not json")).unwrap();
    });
    retry(send_to(&address), "not a JetStream acknowledgement");
    let address = fake(FAKE_INFO, true, |replies, s| {
        let body =
            r#"{"error":{"code":503,"description":"JetStream system temporarily unavailable"}}"#;
        s.write_all(&ack(&replies[0], body)).unwrap();
    });
    retry(send_to(&address), "temporarily unavailable");
    let address = fake(FAKE_INFO, true, |_, s| {
        let _ = s.shutdown(std::net::Shutdown::Both);
    });
    retry(send_to(&address), "closed the connection");

    let address = fake(FAKE_INFO, true, |replies, s| {
        let body = r#"{"error":{"code":400,"err_code":10060,"description":"expected stream does not match"}}"#;
        s.write_all(&ack(&replies[0], body)).unwrap();
    });
    let err = send_to(&address).unwrap_err();
    assert!(
        matches!(&err, SendError::Park(why) if why.contains("expected stream")),
        "{err:?}"
    );
    let address = fake(FAKE_INFO, true, |_, s| {
        s.write_all(b"-ERR 'Permissions Violation for Publish to \"vigil.audit\"'\r\n")
            .unwrap();
    });
    let err = send_to(&address).unwrap_err();
    assert!(
        matches!(&err, SendError::Park(why) if why.contains("Permissions Violation")),
        "{err:?}"
    );
}

#[test]
fn arbitrary_bytes_from_a_server_are_a_retry() {
    let mut state = 0x2545_f491_4f6c_dd1d_u64;
    for round in 0..24 {
        let mut garbage = Vec::new();
        for _ in 0..(64 + round * 37) {
            // xorshift64: cheap, reproducible noise.
            state ^= state << 13;
            state ^= state >> 7;
            state ^= state << 17;
            garbage.push(state as u8);
        }
        // Every other round, noise that looks a little like the protocol.
        if round % 2 == 1 {
            garbage.splice(0..0, b"MSG _INBOX.x.1 1 ".iter().copied());
        }
        let greeting = if round % 3 == 0 {
            garbage.clone()
        } else {
            FAKE_INFO.to_vec()
        };
        let address = fake(&greeting, true, move |_, s| {
            let _ = s.write_all(&garbage);
        });
        let result = send_to(&address);
        assert!(
            matches!(result, Err(SendError::Retry(_))),
            "round {round}: {result:?}"
        );
    }
}
