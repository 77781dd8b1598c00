//! Detection latency of poison records: from the moment a DataRow carrying
//! a poison value is written to the proxy until its `poison.accessed`
//! event is sealed into the audit log.
//!
//! In one process: a minimal PostgreSQL stand-in (trust authentication,
//! every query answered with one DataRow), the proxy with a poison registry
//! in front of it, and the event pipeline sealing into an audit log with
//! `sync = "interval"` (10 ms group commit), as `vigil serve` runs it. The
//! pipeline's sink sees an event only after it is sealed; a probe sink
//! records when the `poison.accessed` line reaches it.
//!
//! Two runs: `idle`, one poison read every 150 ms (the pipeline's worker
//! has gone back to blocking on its queue), and `busy`, poison reads back
//! to back (each also emits `statement.executed`, so the worker keeps
//! polling). Prints p50, p90, p99 and max per run.
//!
//! The same two runs against a second proxy whose events go to a bare
//! queue, read by a thread blocked on it, separate the proxy's part
//! (detection and emission: `queued`) from the pipeline's (`sealed`).
//!
//! Run: `cargo run --release -p vigil-bench --example poison_latency [N]`
//! (N samples per run, default 200 idle and 2000 busy).

use std::io::Write;
use std::net::SocketAddr;
use std::sync::mpsc;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use vigil_detect::poison::{PoisonKey, PoisonKind, PoisonSet, Scanner};
use vigil_event::{Emitter, Filter, Overflow, Severity, catalog};
use vigil_proxy::config::PoisonConfig;
use vigil_proxy::{Metrics, Proxy, ProxyConfig, Reporter};
use vigil_seal::{CheckpointSigner, SealConfig, SealKeys, Sealer, SyncPolicy};
use vigil_ship::{Pipeline, SinkSpec, Target};
use zeroize::Zeroizing;

/// A sink that notes when a `poison.accessed` record is written to it.
struct Probe(mpsc::Sender<Instant>);

impl Write for Probe {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        let now = Instant::now();
        let needle = b"poison.accessed";
        let n = buf.windows(needle.len()).filter(|w| *w == needle).count();
        for _ in 0..n {
            let _ = self.0.send(now);
        }
        Ok(buf.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

fn message(tag: u8, body: &[u8]) -> Vec<u8> {
    let mut m = vec![tag];
    m.extend_from_slice(&((body.len() + 4) as u32).to_be_bytes());
    m.extend_from_slice(body);
    m
}

/// The PostgreSQL stand-in: trust, then every Query answered with one
/// DataRow holding `value`, CommandComplete and ReadyForQuery. Notes when
/// it writes each DataRow in `sent`.
async fn fake_postgres(listener: TcpListener, value: Vec<u8>, sent: Arc<Mutex<Option<Instant>>>) {
    while let Ok((mut s, _)) = listener.accept().await {
        let value = value.clone();
        let sent = Arc::clone(&sent);
        tokio::spawn(async move {
            let _ = s.set_nodelay(true);
            let mut len = [0u8; 4];
            if s.read_exact(&mut len).await.is_err() {
                return;
            }
            let mut startup = vec![0u8; u32::from_be_bytes(len) as usize - 4];
            if s.read_exact(&mut startup).await.is_err() {
                return;
            }
            let mut hello = message(b'R', &0u32.to_be_bytes());
            hello.extend(message(b'K', &[0, 0, 0, 42, 1, 2, 3, 4]));
            hello.extend(message(b'Z', b"I"));
            if s.write_all(&hello).await.is_err() {
                return;
            }
            let mut row = 1u16.to_be_bytes().to_vec();
            row.extend_from_slice(&(value.len() as u32).to_be_bytes());
            row.extend_from_slice(&value);
            let mut answer = message(b'D', &row);
            answer.extend(message(b'C', b"SELECT 1\0"));
            answer.extend(message(b'Z', b"I"));
            loop {
                let mut head = [0u8; 5];
                if s.read_exact(&mut head).await.is_err() {
                    return;
                }
                let len = u32::from_be_bytes([head[1], head[2], head[3], head[4]]) as usize;
                let mut body = vec![0u8; len - 4];
                if s.read_exact(&mut body).await.is_err() || head[0] == b'X' {
                    return;
                }
                *sent.lock().unwrap_or_else(|e| e.into_inner()) = Some(Instant::now());
                if s.write_all(&answer).await.is_err() {
                    return;
                }
            }
        });
    }
}

async fn read_until_ready(s: &mut TcpStream, buf: &mut Vec<u8>) {
    loop {
        let mut pos = 0;
        while pos + 5 <= buf.len() {
            let len = u32::from_be_bytes([buf[pos + 1], buf[pos + 2], buf[pos + 3], buf[pos + 4]])
                as usize;
            if pos + 1 + len > buf.len() {
                break;
            }
            let tag = buf[pos];
            pos += 1 + len;
            if tag == b'Z' {
                buf.drain(..pos);
                return;
            }
        }
        let mut chunk = [0u8; 8192];
        let n = s.read(&mut chunk).await.expect("read");
        assert!(n > 0, "the proxy closed the connection");
        buf.extend_from_slice(&chunk[..n]);
    }
}

fn percentile(sorted: &[Duration], p: f64) -> Duration {
    let i = ((sorted.len() as f64 - 1.0) * p).round() as usize;
    sorted[i]
}

fn main() {
    let samples: usize = std::env::args()
        .nth(1)
        .and_then(|a| a.parse().ok())
        .unwrap_or(0);
    let dir = tempfile::tempdir().expect("tempdir");
    let mut seal = SealConfig::new(dir.path(), "bench");
    seal.sync = SyncPolicy::Interval(SyncPolicy::DEFAULT_INTERVAL);
    let keys = SealKeys {
        version: 1,
        audit_key: Zeroizing::new([7u8; 32]),
        signer: CheckpointSigner::new("bench", &[9u8; 32]).expect("signer"),
    };
    let (sealer, _) = Sealer::open(seal, keys).expect("audit log");
    let (probe_tx, probe_rx) = mpsc::channel();
    let (pipeline, emitter) =
        Pipeline::builder()
            .origin("bench")
            .audit(sealer)
            .sink(
                SinkSpec::new("probe", Target::Writer(Box::new(Probe(probe_tx))))
                    .filter(Filter::new(Severity::Critical, &[], &[])),
            )
            .start()
            .expect("pipeline");

    let key = PoisonKey::new(1, &[5u8; 32]);
    let mut set = PoisonSet::new();
    for _ in 0..20 {
        for kind in PoisonKind::ALL {
            set.add(&key, kind, None).expect("add");
        }
    }
    let value = set.entries()[1].value.clone().into_bytes();

    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("runtime");
    rt.block_on(async move {
        let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
        let upstream = listener.local_addr().expect("addr");
        let sent = Arc::new(Mutex::new(None));
        tokio::spawn(fake_postgres(listener, value, Arc::clone(&sent)));
        let mut cfg = ProxyConfig::new(SocketAddr::from(([127, 0, 0, 1], 0)), upstream.to_string());
        cfg.poison = Some(PoisonConfig::new(Arc::new(Scanner::new(&set))));
        let reporter = Reporter::new(emitter, Arc::new(Metrics::new()));
        let sealed_proxy = Proxy::start(cfg.clone(), reporter).await.expect("proxy");
        // The second proxy's events go to a bare queue.
        let (queue, queue_rx) = Emitter::channel(1 << 16, Overflow::Drop);
        let (queued_tx, queued_rx) = mpsc::channel();
        std::thread::spawn(move || {
            while let Some(q) = queue_rx.recv_timeout(Duration::from_secs(3600)) {
                if q.event.kind == catalog::POISON_ACCESSED {
                    let _ = queued_tx.send(Instant::now());
                }
            }
        });
        let reporter = Reporter::new(queue, Arc::new(Metrics::new()));
        let queued_proxy = Proxy::start(cfg, reporter).await.expect("proxy");
        for (what, proxy, probe) in [
            ("queued", &queued_proxy, &queued_rx),
            ("sealed", &sealed_proxy, &probe_rx),
        ] {
            let addr = proxy.local_addrs()[0];
            let mut s = TcpStream::connect(addr).await.expect("connect");
            s.set_nodelay(true).expect("nodelay");
            let params = b"user\0bench\0database\0bench\0\0";
            let mut startup = ((8 + params.len()) as u32).to_be_bytes().to_vec();
            startup.extend_from_slice(&196_608u32.to_be_bytes());
            startup.extend_from_slice(params);
            s.write_all(&startup).await.expect("startup");
            let mut buf = Vec::new();
            read_until_ready(&mut s, &mut buf).await;
            let query = message(b'Q', b"SELECT secret FROM customers WHERE id = 1001\0");

            for (run, n, pause) in [
                (
                    "idle",
                    if samples > 0 { samples } else { 200 },
                    Duration::from_millis(150),
                ),
                (
                    "busy",
                    if samples > 0 { samples } else { 2000 },
                    Duration::ZERO,
                ),
            ] {
                let mut latencies = Vec::with_capacity(n);
                for i in 0..n + 10 {
                    s.write_all(&query).await.expect("query");
                    read_until_ready(&mut s, &mut buf).await;
                    // The event was queued before the row was passed on; the
                    // pipeline seals it on its own thread.
                    let sealed = probe
                        .recv_timeout(Duration::from_secs(5))
                        .expect("poison.accessed seen");
                    let t0 = sent
                        .lock()
                        .unwrap_or_else(|e| e.into_inner())
                        .take()
                        .expect("sent");
                    if i >= 10 {
                        latencies.push(sealed.saturating_duration_since(t0));
                    }
                    if !pause.is_zero() {
                        tokio::time::sleep(pause).await;
                    }
                }
                latencies.sort_unstable();
                println!(
                    "{what} {run}: {n} samples, DataRow written -> poison.accessed {what}: \
                 p50 {:?}, p90 {:?}, p99 {:?}, max {:?}",
                    percentile(&latencies, 0.50),
                    percentile(&latencies, 0.90),
                    percentile(&latencies, 0.99),
                    latencies[latencies.len() - 1],
                );
            }
        }
        let _ = sealed_proxy.shutdown(Duration::from_secs(1)).await;
        let _ = queued_proxy.shutdown(Duration::from_secs(1)).await;
    });
    pipeline.shutdown().expect("pipeline shutdown");
}
