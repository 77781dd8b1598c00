//! Wire codec throughput: framing and decoding the streams a proxy sees
//! most, on one thread.
//!
//! - `datarow-pgbench-S`: the result rows of `pgbench -S` (one int4 column in
//!   text, e.g. `-4749`), 16 to 21 bytes a message.
//! - `datarow-accounts`: rows of `SELECT * FROM pgbench_accounts` (three
//!   int4 columns and the 84-byte `filler`), about 120 bytes a message.
//! - `bind-execute-sync`: what `pgbench -S -M prepared` sends per
//!   transaction: Bind (statement `P_0`, one text parameter), Describe,
//!   Execute, Sync.
//!
//! Each stream holds 1,000 rows or transactions. `relay` takes every frame
//! off a `BytesMut` receive buffer, as the proxy does before forwarding it;
//! `decode` also decodes each frame and walks its columns or parameters.
//! The `bytes` group reports bytes/s, the `messages` group messages/s.
//!
//! Run with `cargo bench -p vigil-bench --bench wire`.

use std::hint::black_box;
use std::time::Duration;

use bytes::BytesMut;
use criterion::{BatchSize, Criterion, Throughput, criterion_group, criterion_main};
use vigil_pg::{BackendMessage, Bind, DataRow, Direction, Framer, FrontendMessage};

const N: usize = 1_000;

/// A tiny deterministic generator, so every run frames the same bytes.
struct Lcg(u64);

impl Lcg {
    fn next(&mut self) -> u64 {
        self.0 = self
            .0
            .wrapping_mul(6_364_136_223_846_793_005)
            .wrapping_add(1_442_695_040_888_963_407);
        self.0 >> 33
    }
}

fn pgbench_s_rows() -> Vec<u8> {
    let mut rng = Lcg(1);
    let mut out = BytesMut::new();
    for _ in 0..N {
        let abalance = (rng.next() % 10_000) as i64 - 5_000;
        let text = abalance.to_string();
        DataRow::write(&mut out, [Some(text.as_bytes())].into_iter()).expect("row");
    }
    out.to_vec()
}

fn account_rows() -> Vec<u8> {
    let mut rng = Lcg(2);
    let filler = [b' '; 84];
    let mut out = BytesMut::new();
    for _ in 0..N {
        let aid = (rng.next() % 1_000_000 + 1).to_string();
        let bid = (rng.next() % 10 + 1).to_string();
        let abalance = ((rng.next() % 10_000) as i64 - 5_000).to_string();
        DataRow::write(
            &mut out,
            [
                Some(aid.as_bytes()),
                Some(bid.as_bytes()),
                Some(abalance.as_bytes()),
                Some(&filler[..]),
            ]
            .into_iter(),
        )
        .expect("row");
    }
    out.to_vec()
}

fn bind_execute_sync() -> Vec<u8> {
    let mut rng = Lcg(3);
    let mut out = BytesMut::new();
    for _ in 0..N {
        let aid = (rng.next() % 100_000 + 1).to_string();
        Bind::write(
            &mut out,
            "",
            "P_0",
            &[],
            [Some(aid.as_bytes())].into_iter(),
            &[0],
        )
        .expect("bind");
        out.extend_from_slice(b"D\0\0\0\x06P\0");
        out.extend_from_slice(b"E\0\0\0\x09\0\0\0\0\0");
        out.extend_from_slice(b"S\0\0\0\x04");
    }
    out.to_vec()
}

fn framer(direction: Direction) -> Framer {
    match direction {
        Direction::Backend => Framer::backend(),
        Direction::Frontend => {
            let mut f = Framer::frontend();
            f.skip_startup();
            f
        }
    }
}

/// Takes every frame off the buffer; returns the bytes framed.
fn relay(direction: Direction, mut buf: BytesMut) -> usize {
    let mut framer = framer(direction);
    let mut total = 0;
    while let Some(frame) = framer.next(&mut buf).expect("frames") {
        total += black_box(frame).len();
    }
    total
}

/// Frames, decodes and walks every message; returns a checksum.
fn decode(direction: Direction, mut buf: BytesMut) -> usize {
    let mut framer = framer(direction);
    let mut sum = 0;
    while let Some(frame) = framer.next(&mut buf).expect("frames") {
        match direction {
            Direction::Backend => {
                if let BackendMessage::DataRow(row) = frame.backend().expect("decodes") {
                    for col in row.columns {
                        sum += col.map_or(0, <[u8]>::len);
                    }
                }
            }
            Direction::Frontend => match frame.frontend().expect("decodes") {
                FrontendMessage::Bind(b) => {
                    sum += b.statement.len();
                    for p in b.params {
                        sum += p.map_or(0, <[u8]>::len);
                    }
                }
                FrontendMessage::Execute(e) => sum += e.portal.len(),
                _ => sum += 1,
            },
        }
    }
    sum
}

fn count(direction: Direction, stream: &[u8]) -> usize {
    framer(direction).frames(stream).count()
}

fn wire(c: &mut Criterion) {
    let workloads = [
        ("datarow-pgbench-S", Direction::Backend, pgbench_s_rows()),
        ("datarow-accounts", Direction::Backend, account_rows()),
        (
            "bind-execute-sync",
            Direction::Frontend,
            bind_execute_sync(),
        ),
    ];
    for (name, direction, stream) in &workloads {
        let messages = count(*direction, stream);
        eprintln!(
            "{name}: {messages} messages, {} bytes, {:.1} bytes/message",
            stream.len(),
            stream.len() as f64 / messages as f64
        );
    }
    for (group_name, per_message) in [("bytes", false), ("messages", true)] {
        let mut group = c.benchmark_group(format!("wire-{group_name}"));
        group.sample_size(30);
        group.warm_up_time(Duration::from_secs(1));
        group.measurement_time(Duration::from_secs(3));
        for (name, direction, stream) in &workloads {
            let direction = *direction;
            group.throughput(if per_message {
                Throughput::Elements(count(direction, stream) as u64)
            } else {
                Throughput::Bytes(stream.len() as u64)
            });
            group.bench_function(format!("{name}/relay"), |b| {
                b.iter_batched(
                    || BytesMut::from(&stream[..]),
                    |buf| relay(direction, buf),
                    BatchSize::SmallInput,
                )
            });
            group.bench_function(format!("{name}/decode"), |b| {
                b.iter_batched(
                    || BytesMut::from(&stream[..]),
                    |buf| decode(direction, buf),
                    BatchSize::SmallInput,
                )
            });
        }
        group.finish();
    }
}

criterion_group!(benches, wire);
criterion_main!(benches);
