//! The admin HTTP endpoint: `GET /metrics` and `GET /healthz`.
//!
//! A minimal HTTP/1.1 server written directly on tokio. It serves only
//! `GET`, answers one request per connection and closes it
//! (`Connection: close`). Each connection runs in its own task, with an
//! 8 KiB limit on the request head and a 5 second deadline to receive it.
//!
//! | Request | Response |
//! |---|---|
//! | `GET /metrics` | 200, Prometheus text format 0.0.4 |
//! | `GET /healthz` | 200 `ok` while the audit trail is written, else 503 |
//! | `GET` other paths | 404 |
//! | other methods | 405 with `Allow: GET` |
//! | head over 8 KiB | 431 |
//! | head not received within 5 s | 408 |
//! | malformed request | 400 |

use std::fmt::Write as _;
use std::sync::Arc;
use std::time::Duration;

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::watch;
use tokio::task::JoinSet;
use tokio::time::timeout;

use crate::metrics::{Gauges, Metrics};

/// Largest request head (request line and headers) accepted, in bytes.
const MAX_HEAD: usize = 8 * 1024;

/// Time a client has to send its whole request head.
const READ_TIMEOUT: Duration = Duration::from_secs(5);

/// Time a client has to take the response.
const WRITE_TIMEOUT: Duration = Duration::from_secs(5);

/// Connections served at once; further ones wait in the listen backlog.
const MAX_CONNECTIONS: usize = 64;

/// After the response, unread request bytes are read and discarded for at
/// most this long, so that closing the socket does not reset the
/// connection before the client has read the response.
const DRAIN_TIMEOUT: Duration = Duration::from_secs(1);

/// At most this many bytes are discarded after the response.
const DRAIN_LIMIT: usize = 64 * 1024;

/// Pause after a failed `accept` (for example when out of file
/// descriptors), so the loop does not spin.
const ACCEPT_BACKOFF: Duration = Duration::from_millis(50);

/// `Content-Type` of `/metrics`.
const METRICS_CONTENT_TYPE: &str = "text/plain; version=0.0.4";

/// `Content-Type` of every other response.
const TEXT_CONTENT_TYPE: &str = "text/plain; charset=utf-8";

/// Serves the admin endpoint on `listener` until `shutdown` becomes
/// `true` or its sender is dropped.
///
/// `gauges` is called once per `/metrics` or `/healthz` request. When
/// `serve` returns, connections still in progress are aborted.
pub async fn serve(
    listener: TcpListener,
    metrics: Arc<Metrics>,
    gauges: Arc<dyn Fn() -> Gauges + Send + Sync>,
    mut shutdown: watch::Receiver<bool>,
) {
    let mut tasks = JoinSet::new();
    loop {
        if *shutdown.borrow_and_update() {
            break;
        }
        tokio::select! {
            changed = shutdown.changed() => {
                if changed.is_err() {
                    // The sender is gone: nobody can ask for shutdown any
                    // more, which is taken as the request itself.
                    break;
                }
            }
            // Reap finished connections; a panicked one is simply gone.
            Some(_) = tasks.join_next(), if !tasks.is_empty() => {}
            accepted = listener.accept(), if tasks.len() < MAX_CONNECTIONS => {
                match accepted {
                    Ok((stream, _peer)) => {
                        tasks.spawn(connection(stream, metrics.clone(), gauges.clone()));
                    }
                    Err(_) => {
                        tokio::select! {
                            _ = tokio::time::sleep(ACCEPT_BACKOFF) => {}
                            _ = shutdown.changed() => {}
                        }
                    }
                }
            }
        }
    }
    tasks.shutdown().await;
}

/// Serves one connection: one request, one response, then close.
async fn connection(
    mut stream: TcpStream,
    metrics: Arc<Metrics>,
    gauges: Arc<dyn Fn() -> Gauges + Send + Sync>,
) {
    let response = match timeout(READ_TIMEOUT, read_head(&mut stream)).await {
        Err(_elapsed) => Response::text(408, "Request Timeout", "request timeout\n"),
        Ok(Head::Complete(head)) => match parse(&head) {
            Some(request) => route(&request, &metrics, &*gauges),
            None => Response::text(400, "Bad Request", "bad request\n"),
        },
        Ok(Head::TooLarge) => Response::text(
            431,
            "Request Header Fields Too Large",
            "request header fields too large\n",
        ),
        Ok(Head::Truncated) => Response::text(400, "Bad Request", "bad request\n"),
        Ok(Head::Empty | Head::Failed) => return,
    };
    let sent = timeout(WRITE_TIMEOUT, async {
        stream.write_all(&response.to_bytes()).await?;
        stream.shutdown().await
    })
    .await;
    if matches!(sent, Ok(Ok(()))) {
        let _ = timeout(DRAIN_TIMEOUT, drain(&mut stream)).await;
    }
}

/// What reading a request head produced.
enum Head {
    /// The head, without the blank line that ends it.
    Complete(Vec<u8>),
    /// [`MAX_HEAD`] bytes arrived without the end of the head.
    TooLarge,
    /// The client closed its side after part of a head.
    Truncated,
    /// The client closed its side without sending anything.
    Empty,
    /// Reading failed.
    Failed,
}

/// Reads until the blank line that ends the request head.
async fn read_head(stream: &mut TcpStream) -> Head {
    let mut buf = vec![0u8; MAX_HEAD];
    let mut len = 0;
    loop {
        let Some(free) = buf.get_mut(len..) else {
            return Head::TooLarge;
        };
        if free.is_empty() {
            return Head::TooLarge;
        }
        let n = match stream.read(free).await {
            Ok(0) if len == 0 => return Head::Empty,
            Ok(0) => return Head::Truncated,
            Ok(n) => n,
            Err(_) => return Head::Failed,
        };
        // The end may straddle the previous read: look back three bytes.
        let from = len.saturating_sub(3);
        len += n;
        if let Some(end) = buf.get(from..len).and_then(head_end) {
            buf.truncate(from + end);
            return Head::Complete(buf);
        }
    }
}

/// Where the blank line ending a head starts in `bytes`: `\r\n\r\n`, or
/// `\n\n` from lenient clients.
fn head_end(bytes: &[u8]) -> Option<usize> {
    bytes.windows(2).enumerate().find_map(|(i, w)| match w {
        b"\n\n" => Some(i),
        b"\n\r" if bytes.get(i + 2) == Some(&b'\n') => Some(i),
        _ => None,
    })
}

/// Reads and discards what the client still sends, up to [`DRAIN_LIMIT`].
async fn drain(stream: &mut TcpStream) {
    let mut scratch = [0u8; 4096];
    let mut total = 0;
    while total < DRAIN_LIMIT {
        match stream.read(&mut scratch).await {
            Ok(0) | Err(_) => return,
            Ok(n) => total += n,
        }
    }
}

/// The parts of a request the server uses.
#[derive(Debug)]
struct Request<'a> {
    method: &'a str,
    /// The path, without any query string.
    path: &'a str,
}

/// Parses a request head; `None` if it is malformed.
///
/// The request line must be `METHOD SP /target SP HTTP/1.x`, and every
/// header line `name: value` with a token name and no control characters
/// in the value.
fn parse(head: &[u8]) -> Option<Request<'_>> {
    let text = std::str::from_utf8(head).ok()?;
    let mut lines = text.split('\n').map(|l| l.strip_suffix('\r').unwrap_or(l));
    // A server should ignore empty lines before the request line.
    let request_line = lines.by_ref().find(|l| !l.is_empty())?;

    let mut parts = request_line.split(' ');
    let method = parts.next()?;
    let target = parts.next()?;
    let version = parts.next()?;
    if parts.next().is_some()
        || !is_token(method)
        || !matches!(version, "HTTP/1.1" | "HTTP/1.0")
        || !target.starts_with('/')
        || !target.bytes().all(|b| b.is_ascii_graphic())
    {
        return None;
    }
    let path = target.split_once('?').map_or(target, |(path, _query)| path);

    for line in lines {
        let (name, value) = line.split_once(':')?;
        // No whitespace before the colon and no obsolete line folding.
        if !is_token(name) || value.chars().any(|c| c.is_control() && c != '\t') {
            return None;
        }
    }
    Some(Request { method, path })
}

/// Whether `s` is a non-empty HTTP token (method or header name).
fn is_token(s: &str) -> bool {
    !s.is_empty()
        && s.bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"!#$%&'*+-.^_`|~".contains(&b))
}

/// The response to a well-formed request.
fn route(request: &Request<'_>, metrics: &Metrics, gauges: &dyn Fn() -> Gauges) -> Response {
    if request.method != "GET" {
        let mut response = Response::text(405, "Method Not Allowed", "method not allowed\n");
        response.allow = true;
        return response;
    }
    match request.path {
        "/metrics" => {
            let body = metrics.render(&gauges());
            Response {
                status: 200,
                reason: "OK",
                content_type: METRICS_CONTENT_TYPE,
                allow: false,
                body,
            }
        }
        "/healthz" => {
            if gauges().audit_ok {
                Response::text(200, "OK", "ok\n")
            } else {
                Response::text(503, "Service Unavailable", "audit log failing\n")
            }
        }
        _ => Response::text(404, "Not Found", "not found\n"),
    }
}

/// An HTTP response, always sent with `Connection: close`.
#[derive(Debug)]
struct Response {
    status: u16,
    reason: &'static str,
    content_type: &'static str,
    /// Whether to send `Allow: GET`.
    allow: bool,
    body: String,
}

impl Response {
    /// A plain-text response.
    fn text(status: u16, reason: &'static str, body: &str) -> Response {
        Response {
            status,
            reason,
            content_type: TEXT_CONTENT_TYPE,
            allow: false,
            body: body.to_owned(),
        }
    }

    /// The status line, headers and body, ready to send.
    fn to_bytes(&self) -> Vec<u8> {
        let mut head = String::with_capacity(160);
        // Writing into a String cannot fail.
        let _ = write!(
            head,
            "HTTP/1.1 {} {}\r\nContent-Type: {}\r\nContent-Length: {}\r\nConnection: close\r\n",
            self.status,
            self.reason,
            self.content_type,
            self.body.len()
        );
        if self.allow {
            head.push_str("Allow: GET\r\n");
        }
        head.push_str("\r\n");
        let mut bytes = head.into_bytes();
        bytes.extend_from_slice(self.body.as_bytes());
        bytes
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn gauges(ok: bool) -> Gauges {
        Gauges {
            events_dropped: 0,
            audit_queue: 0,
            last_checkpoint_age: None,
            audit_ok: ok,
            sinks: Vec::new(),
        }
    }

    #[test]
    fn head_end_finds_crlf_and_lf_blank_lines() {
        assert_eq!(head_end(b"GET / HTTP/1.1\r\n\r\n"), Some(15));
        assert_eq!(head_end(b"GET / HTTP/1.1\n\n"), Some(14));
        assert_eq!(head_end(b"GET / HTTP/1.1\r\nHost: x\r\n"), None);
        assert_eq!(head_end(b"\n\r"), None);
        assert_eq!(head_end(b""), None);
    }

    #[test]
    fn parse_accepts_well_formed_requests() {
        let r = parse(b"GET /metrics?x=1 HTTP/1.1\r\nHost: a:9\r\nAccept: */*").unwrap();
        assert_eq!((r.method, r.path), ("GET", "/metrics"));
        let r = parse(b"\r\nPOST /healthz HTTP/1.0").unwrap();
        assert_eq!((r.method, r.path), ("POST", "/healthz"));
        let r = parse(b"GET / HTTP/1.1\nUser-Agent: x\ty").unwrap();
        assert_eq!(r.path, "/");
    }

    #[test]
    fn parse_rejects_malformed_requests() {
        for head in [
            &b""[..],
            b"GET",
            b"GET /metrics",
            b"GET /metrics HTTP/2.0",
            b"GET /metrics HTTP/1.1 extra",
            b"GET  /metrics HTTP/1.1",
            b"GET metrics HTTP/1.1",
            b"GET http://x/metrics HTTP/1.1",
            b"G(T /metrics HTTP/1.1",
            b"GET /m\x7fetrics HTTP/1.1",
            b"GET /metrics HTTP/1.1\r\nHost",
            b"GET /metrics HTTP/1.1\r\nHost : x",
            b"GET /metrics HTTP/1.1\r\n folded: x",
            b"GET /metrics HTTP/1.1\r\nX: a\rb",
            b"GET /metrics HTTP/1.1\r\nX: \xff",
            b"\xff\xfe\x00\x01",
        ] {
            assert!(parse(head).is_none(), "{:?}", String::from_utf8_lossy(head));
        }
    }

    #[test]
    fn routes() {
        let m = Metrics::default();
        let ok = || gauges(true);
        let failing = || gauges(false);
        let req = |method, path| Request { method, path };

        let r = route(&req("GET", "/metrics"), &m, &ok);
        assert_eq!(r.status, 200);
        assert_eq!(r.content_type, METRICS_CONTENT_TYPE);
        assert!(r.body.contains("vigil_up 1\n"));

        assert_eq!(route(&req("GET", "/healthz"), &m, &ok).body, "ok\n");
        let r = route(&req("GET", "/healthz"), &m, &failing);
        assert_eq!((r.status, r.body.as_str()), (503, "audit log failing\n"));
        assert_eq!(route(&req("GET", "/"), &m, &ok).status, 404);
        let r = route(&req("HEAD", "/metrics"), &m, &ok);
        assert_eq!((r.status, r.allow), (405, true));
    }

    #[test]
    fn response_bytes() {
        let mut r = Response::text(405, "Method Not Allowed", "no\n");
        r.allow = true;
        assert_eq!(
            String::from_utf8(r.to_bytes()).unwrap(),
            "HTTP/1.1 405 Method Not Allowed\r\nContent-Type: text/plain; charset=utf-8\r\n\
             Content-Length: 3\r\nConnection: close\r\nAllow: GET\r\n\r\nno\n"
        );
    }
}
