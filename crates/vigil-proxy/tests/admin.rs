//! The admin HTTP endpoint over real sockets.
#![allow(clippy::unwrap_used)] // helpers outside #[test] fns, as in tests

use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::watch;
use tokio::task::JoinHandle;
use vigil_event::catalog;
use vigil_proxy::admin::serve;
use vigil_proxy::metrics::{Gauges, Metrics};
use vigil_sql::StatementClass;

/// Upper bound for any single exchange in these tests.
const PATIENCE: Duration = Duration::from_secs(20);

/// A running admin server.
struct Server {
    addr: SocketAddr,
    metrics: Arc<Metrics>,
    audit_ok: Arc<AtomicBool>,
    shutdown: watch::Sender<bool>,
    task: JoinHandle<()>,
}

impl Server {
    async fn start() -> Server {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let metrics = Arc::new(Metrics::default());
        let audit_ok = Arc::new(AtomicBool::new(true));
        let ok = audit_ok.clone();
        let gauges = Arc::new(move || Gauges {
            events_dropped: 7,
            audit_queue: 3,
            last_checkpoint_age: Some(Duration::from_secs(12)),
            audit_ok: ok.load(Ordering::SeqCst),
            sinks: Vec::new(),
        });
        let (shutdown, rx) = watch::channel(false);
        let task = tokio::spawn(serve(listener, metrics.clone(), gauges, rx));
        Server {
            addr,
            metrics,
            audit_ok,
            shutdown,
            task,
        }
    }

    /// Sends `request` and returns everything the server answers until it
    /// closes the connection.
    async fn exchange(&self, request: &[u8]) -> String {
        tokio::time::timeout(PATIENCE, exchange(self.addr, request))
            .await
            .expect("the server answers in time")
    }

    async fn stop(self) {
        self.shutdown.send(true).unwrap();
        tokio::time::timeout(PATIENCE, self.task)
            .await
            .expect("serve returns after shutdown")
            .unwrap();
    }
}

async fn exchange(addr: SocketAddr, request: &[u8]) -> String {
    let mut stream = TcpStream::connect(addr).await.unwrap();
    stream.write_all(request).await.unwrap();
    read_all(&mut stream).await
}

async fn read_all(stream: &mut TcpStream) -> String {
    let mut out = Vec::new();
    // A reset after the response has been read still leaves the response.
    let _ = stream.read_to_end(&mut out).await;
    String::from_utf8(out).unwrap()
}

/// Splits a response into status line, header lines and body.
fn split(response: &str) -> (&str, Vec<&str>, &str) {
    let (head, body) = response
        .split_once("\r\n\r\n")
        .unwrap_or_else(|| panic!("no head in {response:?}"));
    let mut lines = head.split("\r\n");
    let status = lines.next().unwrap();
    (status, lines.collect(), body)
}

/// Checks the headers every response carries and returns the body.
fn expect_status<'a>(response: &'a str, status: &str) -> (Vec<&'a str>, &'a str) {
    let (line, headers, body) = split(response);
    assert_eq!(line, status, "{response}");
    assert!(headers.contains(&"Connection: close"), "{response}");
    let length = format!("Content-Length: {}", body.len());
    assert!(headers.contains(&length.as_str()), "{response}");
    (headers, body)
}

fn get(path: &str) -> Vec<u8> {
    format!("GET {path} HTTP/1.1\r\nHost: localhost\r\nUser-Agent: test\r\n\r\n").into_bytes()
}

#[tokio::test]
async fn metrics_are_served() {
    let server = Server::start().await;
    server.metrics.connection_opened();
    server.metrics.statement(StatementClass::Write, true);
    server.metrics.bytes(10, 20);
    server.metrics.event(catalog::CLIENT_CONNECTED);

    let response = server.exchange(&get("/metrics")).await;
    let (headers, body) = expect_status(&response, "HTTP/1.1 200 OK");
    assert!(
        headers.contains(&"Content-Type: text/plain; version=0.0.4"),
        "{response}"
    );
    for line in [
        "vigil_connections_active 1",
        "vigil_connections_total 1",
        "vigil_statements_total{class=\"write\"} 1",
        "vigil_statements_total{class=\"read\"} 0",
        "vigil_statement_errors_total 1",
        "vigil_bytes_total{direction=\"from_clients\"} 10",
        "vigil_bytes_total{direction=\"from_server\"} 20",
        "vigil_events_total{code=\"1100\",name=\"client.connected\"} 1",
        "vigil_events_dropped_total 7",
        "vigil_audit_queue 3",
        "vigil_audit_last_checkpoint_age_seconds 12",
        "vigil_up 1",
    ] {
        assert!(
            body.lines().any(|l| l == line),
            "missing {line:?} in\n{body}"
        );
    }

    // A query string and HTTP/1.0 are fine too; the values are read afresh.
    server.metrics.connection_closed();
    let response = server
        .exchange(b"GET /metrics?name[]=x HTTP/1.0\r\n\r\n")
        .await;
    let (_, body) = expect_status(&response, "HTTP/1.1 200 OK");
    assert!(
        body.lines().any(|l| l == "vigil_connections_active 0"),
        "{body}"
    );
    server.stop().await;
}

#[tokio::test]
async fn healthz_follows_the_audit_state() {
    let server = Server::start().await;
    let response = server.exchange(&get("/healthz")).await;
    let (headers, body) = expect_status(&response, "HTTP/1.1 200 OK");
    assert_eq!(body, "ok\n");
    assert!(headers.contains(&"Content-Type: text/plain; charset=utf-8"));

    server.audit_ok.store(false, Ordering::SeqCst);
    let response = server.exchange(&get("/healthz")).await;
    let (_, body) = expect_status(&response, "HTTP/1.1 503 Service Unavailable");
    assert_eq!(body, "audit log failing\n");

    server.audit_ok.store(true, Ordering::SeqCst);
    let response = server.exchange(&get("/healthz")).await;
    assert_eq!(expect_status(&response, "HTTP/1.1 200 OK").1, "ok\n");
    server.stop().await;
}

#[tokio::test]
async fn unknown_paths_are_404() {
    let server = Server::start().await;
    for path in [
        "/",
        "/metricsx",
        "/healthz/",
        "/Metrics",
        "/%2e%2e/etc/passwd",
    ] {
        let response = server.exchange(&get(path)).await;
        expect_status(&response, "HTTP/1.1 404 Not Found");
    }
    server.stop().await;
}

#[tokio::test]
async fn other_methods_are_405() {
    let server = Server::start().await;
    for method in ["POST", "PUT", "DELETE", "HEAD", "OPTIONS", "get"] {
        let request = format!("{method} /metrics HTTP/1.1\r\nHost: x\r\n\r\n");
        let response = server.exchange(request.as_bytes()).await;
        let (headers, _) = expect_status(&response, "HTTP/1.1 405 Method Not Allowed");
        assert!(headers.contains(&"Allow: GET"), "{response}");
    }
    // A body after the head is ignored, and the response still arrives.
    let response = server
        .exchange(b"POST /metrics HTTP/1.1\r\nContent-Length: 5\r\n\r\nhello")
        .await;
    expect_status(&response, "HTTP/1.1 405 Method Not Allowed");
    server.stop().await;
}

#[tokio::test]
async fn oversized_heads_are_431() {
    let server = Server::start().await;
    // One huge header, complete.
    let big = "a".repeat(9000);
    let request = format!("GET /metrics HTTP/1.1\r\nX-Big: {big}\r\n\r\n");
    let response = server.exchange(request.as_bytes()).await;
    expect_status(&response, "HTTP/1.1 431 Request Header Fields Too Large");

    // Many headers, never ending, from a client that keeps writing.
    let mut stream = TcpStream::connect(server.addr).await.unwrap();
    let line = b"X-Filler: 0123456789012345678901234567890123456789\r\n";
    stream
        .write_all(b"GET /metrics HTTP/1.1\r\n")
        .await
        .unwrap();
    for _ in 0..200 {
        if stream.write_all(line).await.is_err() {
            break;
        }
    }
    let response = tokio::time::timeout(PATIENCE, read_all(&mut stream))
        .await
        .unwrap();
    expect_status(&response, "HTTP/1.1 431 Request Header Fields Too Large");

    // A head of exactly the limit without its end is too large too, but
    // one just under the limit is served.
    let mut request = b"GET /metrics HTTP/1.1\r\nX: ".to_vec();
    request.resize(8 * 1024 - 4, b'x');
    request.extend_from_slice(b"\r\n\r\n");
    let response = server.exchange(&request).await;
    expect_status(&response, "HTTP/1.1 200 OK");
    let mut request = b"GET /metrics HTTP/1.1\r\nX: ".to_vec();
    request.resize(8 * 1024, b'x');
    request.extend_from_slice(b"\r\n\r\n");
    let response = server.exchange(&request).await;
    expect_status(&response, "HTTP/1.1 431 Request Header Fields Too Large");
    server.stop().await;
}

#[tokio::test]
async fn garbage_is_400_and_never_stops_the_server() {
    let server = Server::start().await;
    let mut noise: Vec<u8> = Vec::new();
    let mut x: u32 = 0x1234_5678;
    for _ in 0..3000 {
        // xorshift: reproducible pseudo-random bytes.
        x ^= x << 13;
        x ^= x >> 17;
        x ^= x << 5;
        noise.push(x.to_le_bytes()[0]);
    }
    let cases: Vec<Vec<u8>> = vec![
        b"\x16\x03\x01\x02\x00\x01\x00\x01\xfc\x03\x03\r\n\r\n".to_vec(),
        b"hello\r\n\r\n".to_vec(),
        b"GET\r\n\r\n".to_vec(),
        b"GET /metrics\r\n\r\n".to_vec(),
        b"GET /metrics HTTP/9.9\r\n\r\n".to_vec(),
        b"GET metrics HTTP/1.1\r\n\r\n".to_vec(),
        b"GET /metrics HTTP/1.1\r\nno colon\r\n\r\n".to_vec(),
        b"GET /metrics HTTP/1.1\r\nX: \xc3\x28\r\n\r\n".to_vec(),
        b"GET /metrics HTTP/1.1\r\nX: a\x00b\r\n\r\n".to_vec(),
        [&noise[..], b"\r\n\r\n"].concat(),
        // The PostgreSQL SSLRequest, as a misdirected client sends it.
        [&[0u8, 0, 0, 8, 4, 210, 22, 47][..], b"\n\n"].concat(),
    ];
    for case in &cases {
        let response = server.exchange(case).await;
        expect_status(&response, "HTTP/1.1 400 Bad Request");
    }

    // A partial head followed by a half-close is 400 as well.
    let mut stream = TcpStream::connect(server.addr).await.unwrap();
    stream.write_all(b"GET /metr").await.unwrap();
    stream.shutdown().await.unwrap();
    let response = tokio::time::timeout(PATIENCE, read_all(&mut stream))
        .await
        .unwrap();
    expect_status(&response, "HTTP/1.1 400 Bad Request");

    // Clients that connect and vanish, or send noise and vanish.
    for chunk in noise.chunks(700) {
        let mut stream = TcpStream::connect(server.addr).await.unwrap();
        let _ = stream.write_all(chunk).await;
        drop(stream);
        drop(TcpStream::connect(server.addr).await.unwrap());
    }

    // Still serving.
    let response = server.exchange(&get("/healthz")).await;
    expect_status(&response, "HTTP/1.1 200 OK");
    server.stop().await;
}

#[tokio::test]
async fn silent_clients_get_408_after_the_read_timeout() {
    let server = Server::start().await;
    let started = Instant::now();
    let mut stream = TcpStream::connect(server.addr).await.unwrap();
    stream
        .write_all(b"GET /metrics HTTP/1.1\r\n")
        .await
        .unwrap();
    // Meanwhile, others are served.
    let response = server.exchange(&get("/healthz")).await;
    expect_status(&response, "HTTP/1.1 200 OK");
    let response = tokio::time::timeout(PATIENCE, read_all(&mut stream))
        .await
        .unwrap();
    expect_status(&response, "HTTP/1.1 408 Request Timeout");
    assert!(started.elapsed() >= Duration::from_secs(5));
    server.stop().await;
}

#[tokio::test]
async fn concurrent_requests_are_all_answered() {
    let server = Server::start().await;
    let mut clients = Vec::new();
    for i in 0..100 {
        let addr = server.addr;
        let path = if i % 2 == 0 { "/metrics" } else { "/healthz" };
        clients.push(tokio::spawn(
            async move { exchange(addr, &get(path)).await },
        ));
    }
    for client in clients {
        let response = tokio::time::timeout(PATIENCE, client)
            .await
            .unwrap()
            .unwrap();
        expect_status(&response, "HTTP/1.1 200 OK");
    }
    server.stop().await;
}

#[tokio::test]
async fn shutdown_ends_serve_even_with_open_connections() {
    let server = Server::start().await;
    let response = server.exchange(&get("/healthz")).await;
    expect_status(&response, "HTTP/1.1 200 OK");

    // A connection in the middle of its head does not hold shutdown up.
    let mut idle = TcpStream::connect(server.addr).await.unwrap();
    idle.write_all(b"GET /").await.unwrap();
    tokio::time::sleep(Duration::from_millis(50)).await;
    let addr = server.addr;
    let started = Instant::now();
    server.stop().await;
    assert!(started.elapsed() < Duration::from_secs(4));

    // The aborted connection is closed, and the port no longer serves.
    let mut rest = Vec::new();
    let _ = tokio::time::timeout(PATIENCE, idle.read_to_end(&mut rest))
        .await
        .unwrap();
    assert!(rest.is_empty());
    assert!(TcpStream::connect(addr).await.is_err());
}

#[tokio::test]
async fn serve_ends_when_the_shutdown_sender_is_dropped() {
    let server = Server::start().await;
    let Server { shutdown, task, .. } = server;
    drop(shutdown);
    tokio::time::timeout(PATIENCE, task).await.unwrap().unwrap();
}

#[tokio::test]
async fn serve_returns_at_once_if_shutdown_is_already_requested() {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let (_tx, rx) = watch::channel(true);
    let gauges = Arc::new(|| Gauges {
        events_dropped: 0,
        audit_queue: 0,
        last_checkpoint_age: None,
        audit_ok: true,
        sinks: Vec::new(),
    });
    tokio::time::timeout(
        PATIENCE,
        serve(listener, Arc::new(Metrics::default()), gauges, rx),
    )
    .await
    .unwrap();
}

#[tokio::test]
async fn curl_can_scrape_metrics() {
    let found = std::process::Command::new("which")
        .arg("curl")
        .output()
        .is_ok_and(|o| o.status.success());
    if !found {
        eprintln!("curl not found; skipping");
        return;
    }
    let server = Server::start().await;
    server.metrics.auth_failed();
    let url = format!("http://{}/metrics", server.addr);
    let output = tokio::task::spawn_blocking(move || {
        std::process::Command::new("curl")
            .args(["--silent", "--show-error", "--include", "--max-time", "10"])
            .arg(&url)
            .output()
    })
    .await
    .unwrap()
    .unwrap();
    assert!(output.status.success(), "{output:?}");
    let text = String::from_utf8(output.stdout).unwrap();
    assert!(text.starts_with("HTTP/1.1 200 OK\r\n"), "{text}");
    assert!(
        text.contains("Content-Type: text/plain; version=0.0.4\r\n"),
        "{text}"
    );
    assert!(text.contains("\nvigil_auth_failures_total 1\n"), "{text}");

    let url = format!("http://{}/healthz", server.addr);
    let output = tokio::task::spawn_blocking(move || {
        std::process::Command::new("curl")
            .args(["--silent", "--max-time", "10", "-X", "POST"])
            .args(["--write-out", "%{http_code}", "--output", "/dev/null"])
            .arg(&url)
            .output()
    })
    .await
    .unwrap()
    .unwrap();
    assert_eq!(String::from_utf8_lossy(&output.stdout), "405");
    server.stop().await;
}
