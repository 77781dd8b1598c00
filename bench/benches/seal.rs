//! Sealing and verifying the audit log.
//!
//! - `seal/end_to_end`: events from an `Emitter` through the pipeline into
//!   the sealed audit log with `sync = "interval"` (group commit every
//!   10 ms), timed until the last event is durable on disk.
//! - `seal/append`: the same event sealed by a `Sealer` alone (no pipeline,
//!   `sync = "never"`): formatting, MAC, Merkle leaf and buffered writes.
//! - `verify/key` and `verify/public_key`: `vigil verify` of a sealed log
//!   of 200,000 entries, with the audit key and with the public key alone.
//!
//! For instruction counts (`valgrind --tool=callgrind`), which a shared
//! machine's load does not change, `VIGIL_SEAL_COUNT=<case>:<n>` runs one
//! case once over `n` entries instead of the benchmarks: `append`,
//! `end_to_end`, `write` (a log of `n` entries into
//! `VIGIL_SEAL_COUNT_DIR`), `verify_key` or `verify_public_key` (of the log
//! there, which must hold more than `n` entries). The difference between
//! two runs, `n` and `2n` entries, divided by `n`, is the cost per entry
//! without the setup.

use std::hint::black_box;
use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::path::Path;
use std::sync::Arc;
use std::time::{Duration, Instant};

use criterion::{Criterion, Throughput, criterion_group};
use vigil_event::{Emitter, Event, Filter, Session, Severity, catalog};
use vigil_seal::{CheckpointSigner, SealConfig, SealKeys, Sealer, SyncPolicy, Verifier};
use vigil_ship::{Pipeline, SinkSpec, Target};
use zeroize::Zeroizing;

const AUDIT_KEY: [u8; 32] = [7; 32];
const SEED: [u8; 32] = [9; 32];
const LOG_ENTRIES: u64 = 200_000;

fn keys() -> SealKeys {
    SealKeys {
        version: 1,
        audit_key: Zeroizing::new(AUDIT_KEY),
        signer: CheckpointSigner::new("bench", &SEED).expect("signer"),
    }
}

/// A typical statement event of about 300 bytes in JSON.
fn statement() -> Event {
    let session = Arc::new(Session {
        id: 4242,
        client: Some(SocketAddr::new(
            IpAddr::V4(Ipv4Addr::new(10, 1, 2, 3)),
            51515,
        )),
        server: Some(SocketAddr::new(IpAddr::V4(Ipv4Addr::LOCALHOST), 9393)),
        db_user: Some("app".into()),
        database: Some("shop".into()),
        application: Some("billing".into()),
        tls_version: Some("TLSv1.3".into()),
        ..Session::default()
    });
    Event::new(catalog::STATEMENT_EXECUTED, "statement executed")
        .session(session)
        .fingerprint(0x1234_5678_9abc_def0)
        .field(
            "query",
            "SELECT abalance FROM pgbench_accounts WHERE aid = $1",
        )
        .field("class", "read")
        .field("rows", 1)
        .field("duration_us", 87)
}

/// A pipeline sealing into an audit log in `dir` with `sync = "interval"`,
/// as `vigil serve` runs it, and one sink that takes nothing (the pipeline
/// needs a sink).
fn sealing_pipeline(dir: &Path) -> (Pipeline, Emitter) {
    let mut cfg = SealConfig::new(dir, "bench");
    cfg.sync = SyncPolicy::Interval(SyncPolicy::DEFAULT_INTERVAL);
    let (sealer, _) = Sealer::open(cfg, keys()).expect("open");
    let quiet = SinkSpec::new("none", Target::Writer(Box::new(std::io::sink())))
        .filter(Filter::new(Severity::Alert, &[], &[]));
    Pipeline::builder()
        .origin("bench")
        .audit(sealer)
        .sink(quiet)
        .start()
        .expect("pipeline")
}

fn seal_end_to_end(c: &mut Criterion) {
    let mut g = c.benchmark_group("seal");
    g.throughput(Throughput::Elements(1));
    g.sample_size(10);
    g.measurement_time(Duration::from_secs(20));
    g.bench_function("end_to_end", |b| {
        b.iter_custom(|iters| {
            let dir = tempfile::tempdir().expect("tempdir");
            let (pipeline, emitter) = sealing_pipeline(dir.path());
            let ev = statement();
            let start = Instant::now();
            for _ in 1..iters {
                emitter.emit(ev.clone());
            }
            emitter
                .emit_durable(ev.clone(), Duration::from_secs(60))
                .expect("durable");
            let elapsed = start.elapsed();
            pipeline.shutdown().expect("shutdown");
            elapsed
        })
    });
    g.finish();
    // Its own group: at a few µs per entry, a long measurement writes
    // gigabytes of log.
    let mut g = c.benchmark_group("seal");
    g.throughput(Throughput::Elements(1));
    g.warm_up_time(Duration::from_millis(500));
    g.measurement_time(Duration::from_secs(2));
    g.bench_function("append", |b| {
        let dir = tempfile::tempdir().expect("tempdir");
        let mut cfg = SealConfig::new(dir.path(), "bench");
        cfg.sync = SyncPolicy::Never;
        let (mut sealer, _) = Sealer::open(cfg, keys()).expect("open");
        let ev = statement();
        b.iter(|| {
            sealer.append(&mut ev.clone()).expect("append");
            sealer.take_generated();
        });
        sealer.close().expect("close");
    });
    g.finish();
}

fn write_log(dir: &Path) {
    let mut cfg = SealConfig::new(dir, "bench");
    cfg.sync = SyncPolicy::Never;
    let (mut sealer, _) = Sealer::open(cfg, keys()).expect("open");
    let ev = statement();
    for _ in 0..LOG_ENTRIES {
        sealer.append(&mut ev.clone()).expect("append");
    }
    sealer.close().expect("close");
}

fn verify(c: &mut Criterion) {
    let dir = tempfile::tempdir().expect("tempdir");
    write_log(dir.path());
    let paths = vec![dir.path().to_path_buf()];
    let lookup = |_: u32| Some(Zeroizing::new(AUDIT_KEY));
    let vkey = CheckpointSigner::new("bench", &SEED)
        .expect("signer")
        .verifier();
    let mut g = c.benchmark_group("verify");
    g.throughput(Throughput::Elements(LOG_ENTRIES));
    g.sample_size(10);
    g.bench_function("key", |b| {
        b.iter(|| {
            let r = Verifier::new()
                .keys(&lookup)
                .verify(black_box(&paths))
                .expect("verify");
            assert!(r.verified());
        })
    });
    g.bench_function("public_key", |b| {
        b.iter(|| {
            let r = Verifier::new()
                .public_key(vkey.clone())
                .verify(black_box(&paths))
                .expect("verify");
            assert!(r.verified());
        })
    });
    g.finish();
}

/// One case of `VIGIL_SEAL_COUNT`, once over `n` entries.
fn count(spec: &str) {
    let (case, n) = spec.split_once(':').expect("VIGIL_SEAL_COUNT=<case>:<n>");
    let n: u64 = n.parse().expect("a number of entries");
    let dir = tempfile::tempdir().expect("tempdir");
    let ev = statement();
    match case {
        "append" => {
            let mut cfg = SealConfig::new(dir.path(), "bench");
            cfg.sync = SyncPolicy::Never;
            let (mut sealer, _) = Sealer::open(cfg, keys()).expect("open");
            for _ in 0..n {
                sealer.append(&mut ev.clone()).expect("append");
                sealer.take_generated();
            }
            sealer.close().expect("close");
        }
        "end_to_end" => {
            let (pipeline, emitter) = sealing_pipeline(dir.path());
            for _ in 1..n {
                emitter.emit(ev.clone());
            }
            emitter
                .emit_durable(ev.clone(), Duration::from_secs(600))
                .expect("durable");
            pipeline.shutdown().expect("shutdown");
        }
        "write" | "verify_key" | "verify_public_key" => {
            let at = std::path::PathBuf::from(
                std::env::var_os("VIGIL_SEAL_COUNT_DIR").expect("VIGIL_SEAL_COUNT_DIR"),
            );
            if case == "write" {
                let mut cfg = SealConfig::new(&at, "bench");
                cfg.sync = SyncPolicy::Never;
                let (mut sealer, _) = Sealer::open(cfg, keys()).expect("open");
                for _ in 0..n {
                    sealer.append(&mut ev.clone()).expect("append");
                }
                sealer.close().expect("close");
                return;
            }
            let lookup = |_: u32| Some(Zeroizing::new(AUDIT_KEY));
            let v = if case == "verify_key" {
                Verifier::new().keys(&lookup)
            } else {
                let vkey = CheckpointSigner::new("bench", &SEED)
                    .expect("signer")
                    .verifier();
                Verifier::new().public_key(vkey)
            };
            let r = v.verify(&[at]).expect("verify");
            assert!(r.verified() && r.entries > n, "{:?}", r.failure);
        }
        other => panic!("unknown case {other}"),
    }
}

criterion_group!(benches, seal_end_to_end, verify);

fn main() {
    if let Ok(spec) = std::env::var("VIGIL_SEAL_COUNT") {
        count(&spec);
        return;
    }
    benches();
    Criterion::default().configure_from_args().final_summary();
}
