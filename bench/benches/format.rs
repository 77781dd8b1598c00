//! Formatting throughput: one typical statement event, written by every
//! format into a reused buffer. Results are in BENCHMARKS.md.
//!
//! Run with `cargo bench -p vigil-bench --bench format`.
//!
//! With `VIGIL_FORMAT_ITERS=<format>:<n>` the binary instead writes the event
//! `n` times in that format and exits, without criterion: run it under
//! `valgrind --tool=cachegrind` with two values of `n` to count instructions
//! per record, a measure that a busy machine does not disturb. It also prints
//! the time per record; the minimum over repeated runs is the figure least
//! disturbed by other processes.

use std::hint::black_box;
use std::sync::Arc;

use criterion::{Criterion, Throughput, criterion_group};
use vigil_event::{Event, Format, Session, SyslogOptions, Timestamp, catalog};

/// A `statement.executed` event as the proxy emits it: a TLS session, a
/// fingerprint and a redacted query of 114 bytes; about 340 bytes of
/// values in all.
fn statement_event() -> Event {
    let session = Session {
        id: 918_273,
        client: Some("10.20.30.40:51234".parse().expect("address")),
        server: Some("10.20.0.5:5432".parse().expect("address")),
        client_identity: Some("CN=orders-api,O=Shop".into()),
        db_user: Some("orders_app".into()),
        database: Some("shop".into()),
        application: Some("orders-api".into()),
        tls_version: Some("TLSv1.3".into()),
        tls_cipher: Some("TLS_AES_256_GCM_SHA384".into()),
    };
    let mut ev = Event::new(catalog::STATEMENT_EXECUTED, "statement executed")
        .at(Timestamp::from_micros(1_795_691_940_123_456))
        .session(Arc::new(session))
        .fingerprint(0x9f3c_0a51_77e2_b4d8)
        .field(
            "query",
            "SELECT o.id, o.total, o.status FROM orders o WHERE o.customer_id = $1 AND o.created_at > $2 ORDER BY o.id LIMIT $3",
        )
        .field("class", "read")
        .field("protocol", "extended")
        .field("command_tag", "SELECT 20")
        .field("rows", 20u64)
        .field("duration_us", 1834u64);
    ev.origin = Arc::from("vigil-eu-1");
    ev.seq = 7_340_113;
    ev
}

fn syslog() -> SyslogOptions {
    SyslogOptions {
        facility: 13,
        hostname: "db-proxy-1".to_owned(),
        app_name: "vigil".to_owned(),
        procid: Some(4242),
        escape_control: true,
    }
}

fn formats(c: &mut Criterion) {
    let ev = statement_event();
    let mut group = c.benchmark_group("format");
    group.throughput(Throughput::Elements(1));
    for format in [
        Format::Json,
        Format::Text,
        Format::Cef,
        Format::Syslog(syslog()),
        Format::Ocsf,
    ] {
        let mut buf = Vec::with_capacity(4096);
        format.write(&ev, &mut buf);
        eprintln!("{}: {} bytes per record", format.name(), buf.len());
        group.bench_function(format.name(), |b| {
            b.iter(|| {
                buf.clear();
                format.write(black_box(&ev), &mut buf);
                black_box(buf.len())
            })
        });
    }
    group.finish();
}

criterion_group!(benches, formats);

/// `VIGIL_FORMAT_ITERS=<format>:<n>`: write the event `n` times and print the
/// time per record.
fn count_mode(spec: &str) {
    let (name, n) = spec
        .split_once(':')
        .expect("VIGIL_FORMAT_ITERS is <format>:<n>");
    let format = match name {
        "syslog" => Format::Syslog(syslog()),
        other => Format::from_name(other).expect("a format name"),
    };
    let n: u64 = n.parse().expect("a count");
    let ev = statement_event();
    let mut buf = Vec::with_capacity(4096);
    let start = std::time::Instant::now();
    for _ in 0..n {
        buf.clear();
        format.write(black_box(&ev), &mut buf);
        black_box(buf.len());
    }
    if n > 0 {
        let ns = start.elapsed().as_nanos() as f64 / n as f64;
        println!("{name} {ns:.1} ns/record");
    }
}

fn main() {
    if let Ok(spec) = std::env::var("VIGIL_FORMAT_ITERS") {
        count_mode(&spec);
        return;
    }
    benches();
    Criterion::default().configure_from_args().final_summary();
}
