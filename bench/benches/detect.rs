//! The cost of `vigil_detect::sqli::inspect` per statement: every detector
//! together, with one reused `Inspector`, on one core. The goal in the
//! issue is at most 2 µs per statement. Results are in BENCHMARKS.md.
//!
//! Run with `cargo bench -p vigil-bench --bench detect`.
//!
//! Each benchmark cycles through 1,024 variants of its statement with
//! pseudo-random values. `pgbench_mix` is pgbench's TPC-B statements in
//! turn (the three that carry values), counted as three elements per
//! iteration; `orm_join` is a 200-byte join with quoted identifiers;
//! `orm_filter` a Django-style filter with `OR`, `IN` and `ILIKE`;
//! `cte_window` a CTE with `UNION ALL` and a window function (about 400
//! bytes); `injection` an injected `UNION SELECT` with a comment, which
//! fires two rules.
//!
//! The `detect_all` group adds what the proxy's anomaly detectors do for
//! each statement (`Anomalies::on_statement` with every detector on, the
//! default settings, one session): the cost of every statement-level
//! detector together. The statements' fingerprints and redacted texts,
//! which statement logging computes anyway, are worked out beforehand.
//!
//! With `VIGIL_DETECT_ITERS=<benchmark>:<n>` (or `all/<benchmark>:<n>`)
//! the binary instead inspects `n` statements of that benchmark and prints
//! the time per statement, without criterion.

use std::hint::black_box;

use std::sync::Arc;
use std::time::Instant;

use criterion::{Criterion, Throughput, criterion_group};
use vigil_bench::statements::{BENCHES, statements};
use vigil_detect::anomaly::{Anomalies, AnomalyConfig, StatementSeen};
use vigil_detect::sqli::{Context, Finding, Inspector};
use vigil_event::{Event, Session};
use vigil_sql::{Redactor, StatementClass};

const CX: Context = Context {
    simple_query: true,
    application_role: true,
    standard_conforming_strings: true,
};

fn detect(c: &mut Criterion) {
    let mut group = c.benchmark_group("detect");
    for (name, gens) in BENCHES {
        let stmts = statements(gens);
        let per_iter = gens.len();
        let mut inspector = Inspector::new();
        let mut out = Vec::new();
        inspector.inspect(&stmts[0], &CX, &mut out);
        let rules: Vec<&str> = out.iter().map(|f| f.rule.as_str()).collect();
        eprintln!("{name}: {} bytes, findings {rules:?}", stmts[0].len());
        group.throughput(Throughput::Elements(per_iter as u64));
        let mut i = 0;
        group.bench_function(name, |b| {
            b.iter(|| {
                for _ in 0..per_iter {
                    out.clear();
                    inspector.inspect(black_box(&stmts[i]), &CX, &mut out);
                    i = (i + 1) % stmts.len();
                }
                black_box(out.len())
            })
        });
    }
    group.finish();
}

/// One statement as the proxy has it when the detectors run.
struct Seen {
    sql: String,
    text: String,
    fingerprint: u64,
    class: StatementClass,
}

fn seen(stmts: &[String]) -> Vec<Seen> {
    let mut redactor = Redactor::new();
    stmts
        .iter()
        .map(|sql| {
            let r = redactor.redact(sql);
            let class = r
                .statements
                .first()
                .map_or(StatementClass::Misc, |s| s.class);
            Seen {
                sql: sql.clone(),
                text: r.text,
                fingerprint: r.fingerprint,
                class,
            }
        })
        .collect()
}

/// Every statement-level detector, as the proxy runs them on one
/// statement of one session.
struct All {
    inspector: Inspector,
    anomalies: Anomalies,
    session: Arc<Session>,
    start: Instant,
    out: Vec<Finding>,
}

impl All {
    fn new() -> All {
        let start = Instant::now();
        All {
            inspector: Inspector::new(),
            anomalies: Anomalies::new(AnomalyConfig::default(), start)
                .expect("the default settings are valid"),
            session: Arc::new(Session::default()),
            start,
            out: Vec::new(),
        }
    }

    fn run(&mut self, s: &Seen, n: u64) -> usize {
        self.out.clear();
        self.inspector
            .inspect(black_box(&s.sql), &CX, &mut self.out);
        let seen = StatementSeen {
            session: Some(&self.session),
            user: "app",
            application: "web",
            fingerprint: s.fingerprint,
            class: s.class,
            text: &s.text,
            rows: Some(1),
            sqlstate: None,
            copy: None,
            tables: &[],
        };
        // A clock that moves a microsecond per statement.
        let now = self.start + std::time::Duration::from_micros(n);
        let events: Vec<Event> = self.anomalies.on_statement(&seen, now);
        self.out.len() + events.len()
    }
}

fn detect_all(c: &mut Criterion) {
    let mut group = c.benchmark_group("detect_all");
    for (name, gens) in BENCHES {
        let stmts = seen(&statements(gens));
        let per_iter = gens.len();
        let mut all = All::new();
        group.throughput(Throughput::Elements(per_iter as u64));
        let mut i = 0;
        let mut n = 0u64;
        group.bench_function(name, |b| {
            b.iter(|| {
                let mut found = 0;
                for _ in 0..per_iter {
                    found += all.run(&stmts[i], n);
                    i = (i + 1) % stmts.len();
                    n += 1;
                }
                black_box(found)
            })
        });
    }
    group.finish();
}

criterion_group!(benches, detect, detect_all);

/// `VIGIL_DETECT_ITERS=<benchmark>:<n>`: inspect `n` statements and print
/// the time per statement.
fn count_mode(spec: &str) {
    let (name, n) = spec
        .split_once(':')
        .expect("VIGIL_DETECT_ITERS is [all/]<benchmark>:<n>");
    let (all, name) = match name.strip_prefix("all/") {
        Some(name) => (true, name),
        None => (false, name),
    };
    let gens = BENCHES
        .iter()
        .find(|(b, _)| *b == name)
        .map(|(_, g)| *g)
        .expect("a benchmark name");
    let n: usize = n.parse().expect("a count");
    let stmts = statements(gens);
    let mut inspector = Inspector::new();
    let mut out = Vec::new();
    let mut every = All::new();
    let seen = if all { seen(&stmts) } else { Vec::new() };
    let start = Instant::now();
    for i in 0..n {
        if all {
            black_box(every.run(&seen[i % seen.len()], i as u64));
        } else {
            out.clear();
            inspector.inspect(black_box(&stmts[i % stmts.len()]), &CX, &mut out);
            black_box(out.len());
        }
    }
    if n > 0 {
        let ns = start.elapsed().as_nanos() as f64 / n as f64;
        println!("{name} {ns:.1} ns/statement ({:.0} statements/s)", 1e9 / ns);
    }
}

fn main() {
    if let Ok(spec) = std::env::var("VIGIL_DETECT_ITERS") {
        count_mode(&spec);
        return;
    }
    benches();
    Criterion::default().configure_from_args().final_summary();
}
