//! Poison record scanning: the cost per result row with and without a
//! poison value, for small and large registries, and of the stream scanner
//! on 8 KiB chunks.

use std::hint::black_box;

use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use vigil_detect::poison::{PoisonKey, PoisonKind, PoisonSet, Scanner};

/// A registry with `per_kind` values of every kind.
fn registry(per_kind: usize) -> PoisonSet {
    let key = PoisonKey::new(1, &[7u8; 32]);
    let mut set = PoisonSet::new();
    for _ in 0..per_kind {
        for kind in PoisonKind::ALL {
            set.add(&key, kind, None).expect("add");
        }
    }
    set
}

/// A DataRow as PostgreSQL frames it, with these text columns.
fn data_row(columns: &[&[u8]]) -> Vec<u8> {
    let mut body = (columns.len() as u16).to_be_bytes().to_vec();
    for c in columns {
        body.extend_from_slice(&(c.len() as u32).to_be_bytes());
        body.extend_from_slice(c);
    }
    let mut row = vec![b'D'];
    row.extend_from_slice(&((body.len() + 4) as u32).to_be_bytes());
    row.extend_from_slice(&body);
    row
}

fn scan(c: &mut Criterion) {
    // About 100 bytes: id, e-mail, name, balance, date.
    let plain = data_row(&[
        b"48213",
        b"maria.keller1987@example.com",
        b"Maria Keller",
        b"Kesselstrasse 14, 8001 Zurich",
        b"-2211.40",
        b"2024-03-17",
    ]);
    // pgbench -S: one int4 column.
    let pgbench = data_row(&[b"-2211"]);
    let mut g = c.benchmark_group("poison");
    for per_kind in [2, 200] {
        let set = registry(per_kind);
        let scanner = Scanner::new(&set);
        let entries = set.len();
        let email = set
            .entries()
            .iter()
            .find(|e| e.kind == PoisonKind::Email)
            .expect("email")
            .value
            .clone();
        let hit = data_row(&[
            b"48213",
            email.as_bytes(),
            b"Maria Keller",
            b"Kesselstrasse 14, 8001 Zurich",
            b"-2211.40",
        ]);
        let mut hits = Vec::new();
        g.throughput(Throughput::Elements(1));
        g.bench_function(format!("row_100b_clean/{entries}_entries"), |b| {
            b.iter(|| scanner.scan(black_box(&plain), &mut hits))
        });
        g.bench_function(format!("row_pgbench_s/{entries}_entries"), |b| {
            b.iter(|| scanner.scan(black_box(&pgbench), &mut hits))
        });
        g.bench_function(format!("row_100b_hit/{entries}_entries"), |b| {
            b.iter(|| {
                hits.clear();
                scanner.scan(black_box(&hit), &mut hits)
            })
        });
        let chunk: Vec<u8> = plain.iter().copied().cycle().take(8192).collect();
        let mut stream = scanner.stream();
        g.throughput(Throughput::Bytes(chunk.len() as u64));
        g.bench_function(format!("stream_8k_chunk/{entries}_entries"), |b| {
            b.iter(|| stream.feed(&scanner, black_box(&chunk), &mut hits))
        });
    }
    g.finish();
}

criterion_group!(benches, scan);
criterion_main!(benches);
