//! Redaction throughput: pgbench's statements (TPC-B and select-only)
//! through one reused `Redactor`, on one core. The goal in issue #4 is at
//! least 1,000,000 statements per second. Results are in BENCHMARKS.md.
//!
//! Run with `cargo bench -p vigil-bench --bench redact`.
//!
//! Each benchmark cycles through 1,024 variants of its statement with
//! pseudo-random values, as pgbench sends them, so that no single input is
//! learnt by the branch predictor. `pgbench_mix` is the three statements in
//! turn, counted as three elements per iteration. `orm_join` is a
//! 200-byte join with quoted identifiers, as ORMs write them, for scale.
//!
//! With `VIGIL_REDACT_ITERS=<benchmark>:<n>` the binary instead redacts `n`
//! statements of that benchmark and prints the time per statement, without
//! criterion (for `valgrind --tool=cachegrind` and quick runs).

use std::hint::black_box;

use criterion::{Criterion, Throughput, criterion_group};
use vigil_bench::statements::{Gen, insert, orm_join, select, statements, update};
use vigil_sql::{Redacted, Redactor};

/// The statements redaction is measured on.
const BENCHES: [(&str, &[Gen]); 5] = [
    ("select", &[select]),
    ("update", &[update]),
    ("insert", &[insert]),
    ("pgbench_mix", &[update, select, insert]),
    ("orm_join", &[orm_join]),
];

fn redact(c: &mut Criterion) {
    let mut group = c.benchmark_group("redact");
    for (name, gens) in BENCHES {
        let stmts = statements(gens);
        let per_iter = gens.len();
        let mut redactor = Redactor::new();
        let mut out = Redacted::default();
        redactor.redact_into(&stmts[0], &mut out);
        eprintln!("{name}: {:?} -> {:?}", stmts[0], out.text);
        group.throughput(Throughput::Elements(per_iter as u64));
        let mut i = 0;
        group.bench_function(name, |b| {
            b.iter(|| {
                for _ in 0..per_iter {
                    redactor.redact_into(black_box(&stmts[i]), &mut out);
                    i = (i + 1) % stmts.len();
                }
                black_box(out.fingerprint)
            })
        });
    }
    group.finish();
}

criterion_group!(benches, redact);

/// `VIGIL_REDACT_ITERS=<benchmark>:<n>`: redact `n` statements and print the
/// time per statement.
fn count_mode(spec: &str) {
    let (name, n) = spec
        .split_once(':')
        .expect("VIGIL_REDACT_ITERS is <benchmark>:<n>");
    let gens = BENCHES
        .iter()
        .find(|(b, _)| *b == name)
        .map(|(_, g)| *g)
        .expect("a benchmark name: select, update, insert, pgbench_mix, orm_join");
    let n: usize = n.parse().expect("a count");
    let stmts = statements(gens);
    let mut redactor = Redactor::new();
    let mut out = Redacted::default();
    let start = std::time::Instant::now();
    for i in 0..n {
        redactor.redact_into(black_box(&stmts[i % stmts.len()]), &mut out);
        black_box(out.fingerprint);
    }
    if n > 0 {
        let ns = start.elapsed().as_nanos() as f64 / n as f64;
        println!("{name} {ns:.1} ns/statement ({:.0} statements/s)", 1e9 / ns);
    }
}

fn main() {
    if let Ok(spec) = std::env::var("VIGIL_REDACT_ITERS") {
        count_mode(&spec);
        return;
    }
    benches();
    Criterion::default().configure_from_args().final_summary();
}
