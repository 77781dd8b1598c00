//! The HTTP transport against a test collector in this file: the exact
//! bodies for Splunk HEC, Elasticsearch `_bulk` and webhooks (plain and
//! gzip), headers and credentials, keep-alive and reconnection, how each
//! answer is read (statuses, `_bulk` items, chunked bodies), timeouts, and
//! TLS verification.

#![allow(clippy::unwrap_used)]

use std::collections::VecDeque;
use std::io::{Read, Write};
use std::net::{SocketAddr, TcpListener};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, mpsc};
use std::thread;
use std::time::{Duration, Instant};

use flate2::read::GzDecoder;
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer};
use serde_json::{Value, json};
use vigil_event::{Event, Format, Timestamp, catalog};
use vigil_seal::{LineFormat, Seal, write_sealed};
use vigil_ship::transport::http::{HttpConfig, HttpTransport, Kind};
use vigil_ship::transport::{Record, SendError, Sent, Transport};
use vigil_testkit::pki::Pki;

const ORIGIN: &str = "db1";
/// The first event's time: 2025-11-26T11:19:00.123456Z.
const T0: i64 = 1_764_155_940_123_456;
const WAIT: Duration = Duration::from_secs(10);

// ---------------------------------------------------------------- records

/// An event with its formatted and sealed forms, for borrowing as a
/// [`Record`].
struct Owned {
    event: Event,
    formatted: Vec<u8>,
    sealed: Vec<u8>,
}

/// Events `seqs` of [`ORIGIN`], one microsecond apart.
fn owned(seqs: impl IntoIterator<Item = u64>) -> Vec<Owned> {
    seqs.into_iter()
        .map(|seq| {
            let mut event = Event::new(catalog::AUTH_FAILED, "password authentication failed")
                .at(Timestamp::from_micros(T0 + seq as i64))
                .field("user", format!("alice{seq}"))
                .field("note", "café \"quoted\" back\\slash\ttab");
            event.origin = Arc::from(ORIGIN);
            event.seq = seq;
            let mut formatted = Vec::new();
            Format::Json.write(&event, &mut formatted);
            let seal = Seal {
                seq,
                key_version: 1,
                start: None,
                mac: [7; 32],
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

fn parse(bytes: &[u8]) -> Value {
    serde_json::from_slice(bytes)
        .unwrap_or_else(|e| panic!("not JSON ({e}): {}", String::from_utf8_lossy(bytes)))
}

// -------------------------------------------------------------- collector

/// A request as the collector read it.
#[derive(Clone, Debug)]
struct Request {
    /// Which connection (0, 1, …, in accept order) carried it.
    conn: usize,
    method: String,
    target: String,
    headers: Vec<(String, String)>,
    /// The body as sent (compressed when the request says so).
    body: Vec<u8>,
}

impl Request {
    fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(n, _)| n.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }

    /// The body, decompressed when it is gzip.
    fn plain_body(&self) -> Vec<u8> {
        if self.header("content-encoding") == Some("gzip") {
            let mut out = Vec::new();
            GzDecoder::new(&self.body[..])
                .read_to_end(&mut out)
                .unwrap();
            out
        } else {
            self.body.clone()
        }
    }
}

/// What the collector does with the next request.
enum Reply {
    /// An answer with `Content-Length`.
    Full(u16, String),
    /// An answer with `Content-Length` and `Connection: close`, then closes.
    FullAndClose(u16, String),
    /// An answer without `Connection: close`, then closes anyway.
    FullThenDrop(u16, String),
    /// A chunked answer with these chunks (with an extension on the first,
    /// and a trailer).
    Chunked(u16, Vec<String>),
    /// Reads the request and never answers.
    Silent,
}

impl Reply {
    fn ok() -> Reply {
        Reply::Full(200, r#"{"text":"Success","code":0}"#.to_owned())
    }
}

/// A test collector on 127.0.0.1: one thread per connection, answering
/// requests with scripted replies (200 `{}` once they run out).
struct Collector {
    addr: SocketAddr,
    requests: mpsc::Receiver<Request>,
    tls: bool,
}

type Replies = Arc<Mutex<VecDeque<Reply>>>;

impl Collector {
    fn start(replies: Vec<Reply>) -> Collector {
        Collector::spawn(replies, None)
    }

    fn start_tls(replies: Vec<Reply>, tls: Arc<rustls::ServerConfig>) -> Collector {
        Collector::spawn(replies, Some(tls))
    }

    fn spawn(replies: Vec<Reply>, tls: Option<Arc<rustls::ServerConfig>>) -> Collector {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let addr = listener.local_addr().unwrap();
        let (tx, requests) = mpsc::channel();
        let replies: Replies = Arc::new(Mutex::new(replies.into()));
        let is_tls = tls.is_some();
        thread::spawn(move || {
            let next = AtomicUsize::new(0);
            for stream in listener.incoming() {
                let Ok(stream) = stream else { return };
                let conn = next.fetch_add(1, Ordering::SeqCst);
                let (tx, replies, tls) = (tx.clone(), Arc::clone(&replies), tls.clone());
                thread::spawn(move || match tls {
                    None => serve(stream, conn, &replies, &tx),
                    Some(config) => {
                        let session = rustls::ServerConnection::new(config).unwrap();
                        serve(
                            rustls::StreamOwned::new(session, stream),
                            conn,
                            &replies,
                            &tx,
                        );
                    }
                });
            }
        });
        Collector {
            addr,
            requests,
            tls: is_tls,
        }
    }

    fn url(&self, path: &str) -> String {
        let scheme = if self.tls { "https" } else { "http" };
        format!("{scheme}://{}{path}", self.addr)
    }

    /// The next request it read.
    fn next(&self) -> Request {
        self.requests
            .recv_timeout(WAIT)
            .expect("the collector got no request")
    }
}

/// Answers requests on one connection until the client closes it.
fn serve<S: Read + Write>(mut s: S, conn: usize, replies: &Replies, tx: &mpsc::Sender<Request>) {
    let mut buf = Vec::new();
    while let Some(request) = read_request(&mut s, &mut buf, conn) {
        let _ = tx.send(request);
        let reply = replies.lock().unwrap().pop_front();
        let reply = reply.unwrap_or_else(|| Reply::Full(200, "{}".to_owned()));
        let status_line = |status: u16| format!("HTTP/1.1 {status} {}\r\n", reason(status));
        let result = match reply {
            Reply::Full(status, body) => write!(
                s,
                "{}Content-Type: application/json\r\nContent-Length: {}\r\n\r\n{body}",
                status_line(status),
                body.len()
            ),
            Reply::FullAndClose(status, body) => {
                let _ = write!(
                    s,
                    "{}Connection: close\r\nContent-Length: {}\r\n\r\n{body}",
                    status_line(status),
                    body.len()
                );
                let _ = s.flush();
                return;
            }
            Reply::FullThenDrop(status, body) => {
                let _ = write!(
                    s,
                    "{}Content-Length: {}\r\n\r\n{body}",
                    status_line(status),
                    body.len()
                );
                let _ = s.flush();
                return;
            }
            Reply::Chunked(status, chunks) => {
                let mut out = status_line(status);
                out.push_str("Transfer-Encoding: chunked\r\n\r\n");
                for (i, chunk) in chunks.iter().enumerate() {
                    let ext = if i == 0 { ";name=value" } else { "" };
                    out.push_str(&format!("{:X}{ext}\r\n{chunk}\r\n", chunk.len()));
                }
                out.push_str("0\r\nX-Trailer: yes\r\n\r\n");
                s.write_all(out.as_bytes())
            }
            Reply::Silent => {
                thread::sleep(Duration::from_secs(20));
                return;
            }
        };
        if result.and_then(|()| s.flush()).is_err() {
            return;
        }
    }
}

fn reason(status: u16) -> &'static str {
    match status {
        200 => "OK",
        400 => "Bad Request",
        401 => "Unauthorized",
        403 => "Forbidden",
        404 => "Not Found",
        413 => "Content Too Large",
        429 => "Too Many Requests",
        503 => "Service Unavailable",
        _ => "Whatever",
    }
}

/// Reads one request; `None` at the end of the connection.
fn read_request<S: Read>(s: &mut S, buf: &mut Vec<u8>, conn: usize) -> Option<Request> {
    let end = loop {
        if let Some(at) = buf.windows(4).position(|w| w == b"\r\n\r\n") {
            break at;
        }
        if !fill(s, buf) {
            return None;
        }
    };
    let head = String::from_utf8(buf[..end].to_vec()).unwrap();
    buf.drain(..end + 4);
    let mut lines = head.split("\r\n");
    let mut start = lines.next().unwrap().split(' ');
    let (method, target) = (start.next().unwrap(), start.next().unwrap());
    assert_eq!(start.next(), Some("HTTP/1.1"));
    let headers: Vec<(String, String)> = lines
        .map(|l| {
            let (n, v) = l.split_once(':').unwrap();
            (n.to_owned(), v.trim().to_owned())
        })
        .collect();
    let length: usize = headers
        .iter()
        .find(|(n, _)| n.eq_ignore_ascii_case("content-length"))
        .map_or(0, |(_, v)| v.parse().unwrap());
    while buf.len() < length {
        if !fill(s, buf) {
            return None;
        }
    }
    let body = buf.drain(..length).collect();
    Some(Request {
        conn,
        method: method.to_owned(),
        target: target.to_owned(),
        headers,
        body,
    })
}

fn fill<S: Read>(s: &mut S, buf: &mut Vec<u8>) -> bool {
    let mut chunk = [0u8; 8192];
    match s.read(&mut chunk) {
        Ok(0) | Err(_) => false,
        Ok(n) => {
            buf.extend_from_slice(&chunk[..n]);
            true
        }
    }
}

fn transport(url: &str, kind: Kind) -> HttpTransport {
    HttpTransport::new(HttpConfig::new(url, kind)).unwrap()
}

fn bulk() -> Kind {
    Kind::ElasticBulk {
        index: "vigil-events".to_owned(),
    }
}

// ------------------------------------------------------------------ tests

#[test]
fn splunk_hec_gets_one_event_object_per_record_with_its_token() {
    let c = Collector::start(vec![Reply::ok()]);
    let mut config = HttpConfig::new(c.url("/services/collector/event"), Kind::SplunkHec);
    config.token = Some("hec-token-6f1e".to_owned());
    config.headers = vec![("X-Tenant".to_owned(), "blue".to_owned())];
    assert!(!format!("{config:?}").contains("hec-token-6f1e"));
    let mut t = HttpTransport::new(config).unwrap();
    assert!(!format!("{t:?}").contains("hec-token-6f1e"));

    let owned = owned(1..=3);
    assert_eq!(t.send(&records(&owned)).unwrap(), Sent::all());

    let r = c.next();
    assert_eq!(
        (r.method.as_str(), r.target.as_str()),
        ("POST", "/services/collector/event")
    );
    assert_eq!(r.header("authorization"), Some("Splunk hec-token-6f1e"));
    assert_eq!(r.header("content-type"), Some("application/json"));
    assert_eq!(r.header("x-tenant"), Some("blue"));
    assert_eq!(r.header("host"), Some(c.addr.to_string().as_str()));
    assert_eq!(
        r.header("content-length"),
        Some(r.body.len().to_string().as_str())
    );
    assert_eq!(r.header("content-encoding"), None);

    // The first object, byte for byte up to the event.
    let want_start = format!(
        "{{\"time\":1764155940.123457,\"host\":\"db1\",\"source\":\"vigil\",\
         \"sourcetype\":\"vigil\",\"event\":{}}}",
        String::from_utf8_lossy(&owned[0].formatted)
    );
    assert!(
        r.body.starts_with(want_start.as_bytes()),
        "{}",
        String::from_utf8_lossy(&r.body)
    );
    let objects: Vec<Value> = serde_json::Deserializer::from_slice(&r.body)
        .into_iter()
        .collect::<Result<_, _>>()
        .unwrap();
    assert_eq!(objects.len(), 3);
    for (object, o) in objects.iter().zip(&owned) {
        let time = o.event.time.as_micros() as f64 / 1e6;
        assert_eq!(
            object,
            &json!({
                "time": time,
                "host": "db1",
                "source": "vigil",
                "sourcetype": "vigil",
                "event": parse(&o.formatted),
            })
        );
    }
}

#[test]
fn elastic_bulk_gets_create_actions_with_ids_gzipped() {
    let items: Vec<Value> = (1..=3)
        .map(|i| json!({"create": {"_index": "vigil-events", "_id": format!("db1:{i}"), "status": 201}}))
        .collect();
    let answer = json!({"took": 3, "errors": false, "items": items}).to_string();
    let c = Collector::start(vec![Reply::Full(200, answer)]);
    // No path: the transport adds /_bulk.
    let mut config = HttpConfig::new(c.url(""), bulk());
    config.token = Some("es-api-key".to_owned());
    config.gzip = true;
    let mut t = HttpTransport::new(config).unwrap();

    let owned = owned(1..=3);
    assert_eq!(t.send(&records(&owned)).unwrap(), Sent::all());

    let r = c.next();
    assert_eq!(r.target, "/_bulk");
    assert_eq!(r.header("authorization"), Some("Bearer es-api-key"));
    assert_eq!(r.header("content-type"), Some("application/x-ndjson"));
    assert_eq!(r.header("content-encoding"), Some("gzip"));
    assert_eq!(
        r.header("content-length"),
        Some(r.body.len().to_string().as_str())
    );
    let body = r.plain_body();
    assert!(body.ends_with(b"\n"));
    let lines: Vec<&[u8]> = body[..body.len() - 1].split(|b| *b == b'\n').collect();
    assert_eq!(lines.len(), 6);
    for (pair, o) in lines.chunks(2).zip(&owned) {
        assert_eq!(
            parse(pair[0]),
            json!({"create": {"_index": "vigil-events", "_id": format!("db1:{}", o.event.seq)}})
        );
        assert_eq!(
            pair[1],
            &o.formatted[..],
            "the document is the record as it is"
        );
    }
}

#[test]
fn webhook_gets_a_json_array_with_basic_credentials() {
    let c = Collector::start(vec![Reply::ok()]);
    let url = format!(
        "http://vigil:p%40ss-w0rd@{}/hooks/vigil?channel=sec",
        c.addr
    );
    let mut t = transport(&url, Kind::Webhook);
    assert!(!format!("{t:?}").contains("ss-w0rd"));

    let owned = owned(1..=2);
    assert_eq!(t.send(&records(&owned)).unwrap(), Sent::all());

    let r = c.next();
    assert_eq!(r.target, "/hooks/vigil?channel=sec");
    // base64("vigil:p@ss-w0rd")
    assert_eq!(
        r.header("authorization"),
        Some("Basic dmlnaWw6cEBzcy13MHJk")
    );
    assert_eq!(r.header("content-type"), Some("application/json"));
    let want: Vec<Value> = owned.iter().map(|o| parse(&o.formatted)).collect();
    assert_eq!(parse(&r.body), Value::Array(want));
    let mut raw = b"[".to_vec();
    raw.extend_from_slice(&owned[0].formatted);
    raw.push(b',');
    raw.extend_from_slice(&owned[1].formatted);
    raw.push(b']');
    assert_eq!(r.body, raw);
}

#[test]
fn keeps_the_connection_alive_and_reconnects_when_the_collector_closes_it() {
    let c = Collector::start(vec![
        Reply::ok(),
        Reply::ok(),
        Reply::FullThenDrop(200, "{}".to_owned()),
        Reply::FullAndClose(200, "{}".to_owned()),
        Reply::ok(),
    ]);
    let mut t = transport(&c.url("/"), Kind::Webhook);
    let owned = owned(1..=1);
    for _ in 0..5 {
        assert_eq!(t.send(&records(&owned)).unwrap(), Sent::all());
    }
    let conns: Vec<usize> = (0..5).map(|_| c.next().conn).collect();
    // Three on the first connection (the third one's answer closes it
    // silently), one on the second (closed with Connection: close), one on
    // the third.
    assert_eq!(conns, [0, 0, 0, 1, 2]);
}

#[test]
fn retries_a_503_then_delivers_the_same_body() {
    let c = Collector::start(vec![
        Reply::Full(503, "server is busy".to_owned()),
        Reply::ok(),
    ]);
    let url = format!("http://vigil:hunter2-secret@{}/hook?token=q-secret", c.addr);
    let mut t = transport(&url, Kind::Webhook);
    let owned = owned(1..=2);

    let err = t.send(&records(&owned)).unwrap_err();
    let SendError::Retry(why) = &err else {
        panic!("want Retry, got {err:?}")
    };
    assert!(why.contains("503"), "{why}");
    assert!(why.contains("server is busy"), "{why}");
    assert!(why.contains(&format!("http://{}/hook", c.addr)), "{why}");
    assert!(!why.contains("secret"), "{why}");

    assert_eq!(t.send(&records(&owned)).unwrap(), Sent::all());
    let (first, second) = (c.next(), c.next());
    assert_eq!(first.body, second.body);
    assert_eq!(first.conn, second.conn, "a 503 keeps the connection");
}

#[test]
fn statuses_map_to_park_or_retry() {
    let long_body = format!("\x1b[31m{}\r\n", "x".repeat(10_000));
    let cases: Vec<(u16, String, bool)> = vec![
        (400, r#"{"error":"bad request"}"#.to_owned(), true),
        (401, r#"{"text":"Invalid token","code":4}"#.to_owned(), true),
        (403, "forbidden".to_owned(), true),
        (404, "no such path".to_owned(), true),
        (413, long_body, true),
        (301, String::new(), true),
        (429, "slow down".to_owned(), false),
        (500, "oops".to_owned(), false),
        (502, "bad gateway".to_owned(), false),
        (503, "busy".to_owned(), false),
    ];
    let c = Collector::start(
        cases
            .iter()
            .map(|(status, body, _)| Reply::Full(*status, body.clone()))
            .collect(),
    );
    let mut config = HttpConfig::new(c.url("/services/collector/event"), Kind::SplunkHec);
    config.token = Some("tok-5ecret".to_owned());
    let mut t = HttpTransport::new(config).unwrap();
    let owned = owned(1..=1);
    for (status, body, park) in &cases {
        let err = t.send(&records(&owned)).unwrap_err();
        let why = match (&err, park) {
            (SendError::Park(why), true) | (SendError::Retry(why), false) => why,
            _ => panic!("{status}: got {err:?}"),
        };
        assert!(why.contains(&status.to_string()), "{why}");
        assert!(!why.contains("tok-5ecret"), "{why}");
        assert!(why.len() < 700, "{status}: the excerpt is bounded: {why}");
        assert!(!why.chars().any(char::is_control), "{why:?}");
        if *status == 401 {
            assert!(why.contains("Invalid token"), "{why}");
        }
        if body.starts_with('x') || body.starts_with('{') {
            let start: String = body.chars().take(10).collect();
            assert!(why.contains(&start), "{why}");
        }
    }
}

#[test]
fn bulk_items_are_delivered_retried_or_rejected_one_by_one() {
    let answer = json!({
        "took": 5,
        "errors": true,
        "items": [
            {"create": {"_index": "vigil-events", "_id": "db1:1", "status": 201}},
            {"create": {"_index": "vigil-events", "_id": "db1:2", "status": 400, "error": {
                "type": "mapper_parsing_exception",
                "reason": "failed to parse field [fields.user] of type [long]",
                "caused_by": {"type": "illegal_argument_exception", "reason": "For input string: \"alice2\""}
            }}},
            {"create": {"_index": "vigil-events", "_id": "db1:3", "status": 429, "error": {
                "type": "es_rejected_execution_exception", "reason": "rejected execution"
            }}},
            {"create": {"_index": "vigil-events", "_id": "db1:4", "status": 409, "error": {
                "type": "version_conflict_engine_exception", "reason": "[db1:4]: document already exists"
            }}},
        ]
    })
    .to_string();
    let c = Collector::start(vec![Reply::Full(200, answer)]);
    let mut t = transport(&c.url("/_bulk"), bulk());
    let owned = owned(1..=4);
    let sent = t.send(&records(&owned)).unwrap();
    assert_eq!(sent.retry, [2]);
    assert_eq!(sent.rejected.len(), 1);
    let (index, reason) = &sent.rejected[0];
    assert_eq!(*index, 1);
    assert!(reason.contains("400"), "{reason}");
    assert!(reason.contains("mapper_parsing_exception"), "{reason}");
    assert!(
        reason.contains("failed to parse field [fields.user]"),
        "{reason}"
    );
    assert!(reason.contains("For input string"), "{reason}");
}

#[test]
fn bulk_item_refused_for_permissions_parks() {
    let answer = json!({"errors": true, "items": [
        {"create": {"status": 403, "error": {"type": "security_exception", "reason": "action [indices:data/write/bulk[s]] is unauthorized"}}},
    ]})
    .to_string();
    let c = Collector::start(vec![Reply::Full(200, answer)]);
    let mut t = transport(&c.url("/_bulk"), bulk());
    let owned = owned(1..=1);
    let err = t.send(&records(&owned)).unwrap_err();
    assert!(
        matches!(&err, SendError::Park(why) if why.contains("security_exception")),
        "{err:?}"
    );
}

#[test]
fn reads_chunked_answers_and_keeps_the_connection() {
    let answer = json!({"errors": true, "items": [
        {"create": {"status": 201}},
        {"create": {"status": 400, "error": {"type": "document_parsing_exception", "reason": "bad"}}},
    ]})
    .to_string();
    // Split anywhere, even inside a string.
    let chunks = answer
        .as_bytes()
        .chunks(7)
        .map(|c| String::from_utf8(c.to_vec()).unwrap())
        .collect();
    let c = Collector::start(vec![
        Reply::Chunked(200, chunks),
        Reply::Chunked(
            200,
            vec![r#"{"errors":"#.to_owned(), "false,\"items\":[]}".to_owned()],
        ),
    ]);
    let mut t = transport(&c.url("/_bulk"), bulk());
    let owned = owned(1..=2);
    let sent = t.send(&records(&owned)).unwrap();
    assert_eq!(sent.retry, Vec::<usize>::new());
    assert_eq!(sent.rejected.len(), 1);
    assert!(sent.rejected[0].1.contains("document_parsing_exception"));
    assert_eq!(t.send(&records(&owned)).unwrap(), Sent::all());
    assert_eq!(c.next().conn, c.next().conn);
}

#[test]
fn a_collector_that_never_answers_is_retried_within_the_timeout() {
    let c = Collector::start(vec![Reply::Silent]);
    let mut config = HttpConfig::new(c.url("/"), Kind::Webhook);
    config.timeout = Duration::from_millis(500);
    let mut t = HttpTransport::new(config).unwrap();
    let owned = owned(1..=1);
    let start = Instant::now();
    let err = t.send(&records(&owned)).unwrap_err();
    let took = start.elapsed();
    assert!(
        matches!(&err, SendError::Retry(why) if why.contains("within 500 ms")),
        "{err:?}"
    );
    assert!(took >= Duration::from_millis(450), "{took:?}");
    assert!(took < Duration::from_secs(2), "{took:?}");
}

#[test]
fn an_absent_collector_is_retried() {
    let port = {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        listener.local_addr().unwrap().port()
    };
    let mut t = transport(&format!("http://127.0.0.1:{port}/x"), Kind::Webhook);
    let owned = owned(1..=1);
    let err = t.send(&records(&owned)).unwrap_err();
    assert!(
        matches!(&err, SendError::Retry(why) if why.contains("cannot connect")
            && why.contains(&format!("127.0.0.1:{port}/x"))),
        "{err:?}"
    );
}

#[test]
fn https_delivers_to_a_collector_the_ca_vouches_for_and_parks_otherwise() {
    let dir = vigil_testkit::tempdir();
    let pki = Pki::new(dir.path());
    let good = pki.server("collector", &["127.0.0.1", "localhost"]);
    let stranger = pki.other_ca().server("collector", &["127.0.0.1"]);
    let server_config = |paths: &vigil_testkit::pki::CertPaths| {
        let certs = CertificateDer::pem_file_iter(&paths.cert)
            .unwrap()
            .collect::<Result<Vec<_>, _>>()
            .unwrap();
        let key = PrivateKeyDer::from_pem_file(&paths.key).unwrap();
        let provider = Arc::new(rustls::crypto::ring::default_provider());
        Arc::new(
            rustls::ServerConfig::builder_with_provider(provider)
                .with_safe_default_protocol_versions()
                .unwrap()
                .with_no_client_auth()
                .with_single_cert(certs, key)
                .unwrap(),
        )
    };

    let c = Collector::start_tls(vec![Reply::ok(), Reply::ok()], server_config(&good));
    let mut config = HttpConfig::new(c.url("/services/collector/event"), Kind::SplunkHec);
    config.tls_ca = Some(pki.ca_cert_path().to_path_buf());
    config.token = Some("tls-token".to_owned());
    let mut t = HttpTransport::new(config.clone()).unwrap();
    let owned = owned(1..=2);
    assert_eq!(t.send(&records(&owned)).unwrap(), Sent::all());
    assert_eq!(t.send(&records(&owned)).unwrap(), Sent::all());
    let (first, second) = (c.next(), c.next());
    assert_eq!(first.header("authorization"), Some("Splunk tls-token"));
    assert_eq!(
        first.conn, second.conn,
        "TLS connections are kept alive too"
    );

    let impostor = Collector::start_tls(vec![], server_config(&stranger));
    config.url = impostor.url("/services/collector/event");
    let mut t = HttpTransport::new(config).unwrap();
    let err = t.send(&records(&owned)).unwrap_err();
    assert!(
        matches!(&err, SendError::Park(why) if why.contains("TLS") && why.contains("certificate")),
        "{err:?}"
    );
}

#[test]
fn refuses_bad_configurations_clearly() {
    type Change = dyn Fn(&mut HttpConfig);
    let refusal = |change: &Change| {
        let mut config = HttpConfig::new("http://127.0.0.1:9/x", Kind::Webhook);
        change(&mut config);
        HttpTransport::new(config).unwrap_err().to_string()
    };
    let cases: Vec<(&Change, &str)> = vec![
        (&|c| c.url = "ftp://h/".to_owned(), "http:// or https://"),
        (&|c| c.url = "http://:80/".to_owned(), "no host"),
        (&|c| c.url = "http://h:70000/".to_owned(), "port"),
        (
            &|c| c.token = Some("s3cret\r\nX-Evil: 1".to_owned()),
            "token",
        ),
        (
            &|c| c.headers = vec![("X-A".to_owned(), "1\r\nX-Evil: 1".to_owned())],
            "control characters",
        ),
        (
            &|c| c.headers = vec![("Content-Length".to_owned(), "1".to_owned())],
            "written by vigil",
        ),
        (
            &|c| {
                c.token = Some("t0ken".to_owned());
                c.headers = vec![("Authorization".to_owned(), "Bearer x".to_owned())];
            },
            "keep one",
        ),
        (
            &|c| {
                c.kind = Kind::ElasticBulk {
                    index: "Vigil".to_owned(),
                }
            },
            "lower case",
        ),
        (&|c| c.timeout = Duration::ZERO, "timeout"),
        (
            &|c| c.tls_ca = Some("/nonexistent/ca.pem".into()),
            "https://",
        ),
        (
            &|c| {
                c.url = "https://127.0.0.1/".to_owned();
                c.tls_ca = Some("/nonexistent/ca.pem".into());
            },
            "/nonexistent/ca.pem",
        ),
    ];
    for (change, want) in cases {
        let why = refusal(change);
        assert!(why.contains(want), "want {want:?} in {why:?}");
        assert!(!why.contains("s3cret"), "{why}");
    }
}
