//! Evaluates `vigil_detect::sqli` on libinjection's payload corpus, its
//! false positives and a generated normal workload. Run it with
//! `bench/detect/evaluate` (see `bench/detect/README.md`).
//!
//! ```text
//! detect_eval [--data DIR] [--normal N] [--seed S] [--show-missed] [--show-fp] [--show-samples]
//!             [--emit FILE]
//! ```
//!
//! - Each payload line (URL-encoded, `+` a space) is decoded and spliced
//!   into five templates by string concatenation, as a vulnerable
//!   application does; `inspect` runs on each statement with an
//!   application role and a simple Query. A payload is detected when any
//!   template raises an injection finding.
//! - A payload *alters the structure* of a template when the statement it
//!   gives lexes without error (PostgreSQL rejects the whole query string
//!   otherwise, and runs nothing) and its tokens differ from the template's
//!   with one value in the hole: for the string templates, one string
//!   constant; for the numeric and `ORDER BY` templates, one token (a
//!   number, a word, a quoted name, a string) or a signed number. A payload
//!   that alters no template is a plain value to every one of them, and no
//!   detector that reads structure can see it.
//! - `false_positives.txt` is spliced the same way; every finding on it
//!   counts.
//! - The normal workload is pgbench's TPC-B and select-only statements with
//!   random values and an ORM-like generator; every finding counts.
//! - `--emit FILE` also writes every payload statement as a JSON line
//!   (`file`, `line`, `template`, `sql`, `alters`, `injection`), for
//!   `bench/detect/corpus/run.sh`, which sends them through the proxy.

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::path::PathBuf;
use std::time::Instant;

use vigil_detect::sqli::{Context, Finding, Inspector, Kind, Rule};
use vigil_sql::{Lexer, TokenKind};

/// A query template: the text before and after the hole, and what the hole
/// holds when the application behaves.
struct Template {
    name: &'static str,
    before: &'static str,
    after: &'static str,
    hole: Hole,
}

#[derive(Clone, Copy, PartialEq, Eq)]
enum Hole {
    /// Inside a string constant.
    InString,
    /// A value or a name, outside any quotes.
    Bare,
}

const TEMPLATES: [Template; 5] = [
    Template {
        name: "string",
        before: "SELECT id, name, email FROM users WHERE name = '",
        after: "'",
        hole: Hole::InString,
    },
    Template {
        name: "numeric",
        before: "SELECT id, name, email FROM users WHERE id = ",
        after: "",
        hole: Hole::Bare,
    },
    Template {
        name: "order_by",
        before: "SELECT id, title, price FROM products ORDER BY ",
        after: "",
        hole: Hole::Bare,
    },
    Template {
        name: "insert",
        before: "INSERT INTO comments (body, author_id) VALUES ('",
        after: "', 42)",
        hole: Hole::InString,
    },
    Template {
        name: "like",
        before: "SELECT id, title FROM products WHERE title LIKE '%",
        after: "%'",
        hole: Hole::InString,
    },
];

const APP: Context = Context {
    simple_query: true,
    application_role: true,
    standard_conforming_strings: true,
};

struct Args {
    data: PathBuf,
    normal: usize,
    seed: u64,
    show_missed: bool,
    show_fp: bool,
    show_samples: bool,
    emit: Option<PathBuf>,
}

fn args() -> Args {
    let mut args = Args {
        data: PathBuf::from(concat!(env!("CARGO_MANIFEST_DIR"), "/detect/data")),
        normal: 1_000_000,
        seed: 0x5eed_1234,
        show_missed: false,
        show_fp: false,
        show_samples: false,
        emit: None,
    };
    let mut it = std::env::args().skip(1);
    while let Some(a) = it.next() {
        match a.as_str() {
            "--data" => args.data = PathBuf::from(it.next().expect("--data DIR")),
            "--normal" => args.normal = it.next().and_then(|n| n.parse().ok()).expect("--normal N"),
            "--seed" => args.seed = it.next().and_then(|n| n.parse().ok()).expect("--seed S"),
            "--show-missed" => args.show_missed = true,
            "--show-fp" => args.show_fp = true,
            "--show-samples" => args.show_samples = true,
            "--emit" => args.emit = Some(PathBuf::from(it.next().expect("--emit FILE"))),
            other => panic!("unknown argument {other:?}"),
        }
    }
    args
}

fn url_decode(line: &str) -> String {
    let b = line.as_bytes();
    let mut out = Vec::with_capacity(b.len());
    let mut i = 0;
    while i < b.len() {
        match b[i] {
            b'+' => out.push(b' '),
            b'%' if i + 2 < b.len() => {
                let hex = std::str::from_utf8(&b[i + 1..i + 3]).ok();
                match hex.and_then(|h| u8::from_str_radix(h, 16).ok()) {
                    Some(v) => {
                        out.push(v);
                        i += 2;
                    }
                    None => out.push(b'%'),
                }
            }
            c => out.push(c),
        }
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

/// The statement's tokens, literals as `L`, words lower-cased; `None` on a
/// lexer error.
fn shape(sql: &str) -> Option<Vec<String>> {
    let mut out = Vec::new();
    for t in Lexer::new(sql) {
        let t = t.ok()?;
        match t.kind {
            TokenKind::Whitespace | TokenKind::LineComment | TokenKind::BlockComment => {}
            k if k.is_literal() => out.push("L".to_owned()),
            _ => out.push(t.text(sql).to_ascii_lowercase()),
        }
    }
    Some(out)
}

/// Whether `payload` in `t` changes the statement's structure (see the
/// module documentation).
fn alters(t: &Template, payload: &str) -> bool {
    let sql = format!("{}{}{}", t.before, payload, t.after);
    let Some(got) = shape(&sql) else {
        return false;
    };
    match t.hole {
        Hole::InString => {
            let benign = shape(&format!("{}x{}", t.before, t.after)).unwrap_or_default();
            got != benign
        }
        Hole::Bare => {
            let pre = shape(t.before).unwrap_or_default();
            let post = shape(t.after).unwrap_or_default();
            if got.len() < pre.len() + post.len() || got[..pre.len()] != pre[..] {
                return true;
            }
            if got[got.len() - post.len()..] != post[..] {
                return true;
            }
            let hole = &got[pre.len()..got.len() - post.len()];
            let one = hole.len() == 1
                && !matches!(hole[0].as_str(), "(" | ")" | "," | ";" | "-" | "+" | "*");
            let signed = hole.len() == 2 && hole[0] == "-" && hole[1] == "L";
            !(one || signed)
        }
    }
}

struct PayloadResult {
    injection: [bool; 5],
    any: [bool; 5],
    alters: [bool; 5],
    rules: u64,
}

fn run_payload(inspector: &mut Inspector, out: &mut Vec<Finding>, p: &str) -> PayloadResult {
    let mut r = PayloadResult {
        injection: [false; 5],
        any: [false; 5],
        alters: [false; 5],
        rules: 0,
    };
    for (k, t) in TEMPLATES.iter().enumerate() {
        let sql = format!("{}{}{}", t.before, p, t.after);
        out.clear();
        inspector.inspect(&sql, &APP, out);
        r.injection[k] = out.iter().any(|f| f.kind == Kind::Injection);
        r.any[k] = !out.is_empty();
        r.alters[k] = alters(t, p);
        for f in out.iter() {
            r.rules |= 1 << rule_index(f.rule);
        }
    }
    r
}

fn rule_index(rule: Rule) -> usize {
    Rule::ALL.iter().position(|&r| r == rule).unwrap_or(63)
}

fn pct(n: usize, d: usize) -> String {
    if d == 0 {
        "-".to_owned()
    } else {
        format!("{:.1}%", 100.0 * n as f64 / d as f64)
    }
}

fn main() {
    let args = args();
    let mut inspector = Inspector::new();
    let mut out = Vec::new();
    let mut report = String::new();

    // ---- payloads
    let mut files: Vec<PathBuf> = std::fs::read_dir(&args.data)
        .unwrap_or_else(|e| panic!("{}: {e}", args.data.display()))
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| {
            p.file_name()
                .and_then(|n| n.to_str())
                .is_some_and(|n| n.starts_with("sqli-") && n.ends_with(".txt"))
        })
        .collect();
    files.sort();
    let _ = writeln!(
        report,
        "## Payloads ({} files in {})\n",
        files.len(),
        args.data.display()
    );
    let _ = writeln!(
        report,
        "| file | lines | alter structure | detected (injection) | recall, all lines | recall, altering lines | detected (any kind) |"
    );
    let _ = writeln!(report, "|---|---:|---:|---:|---:|---:|---:|");
    let mut total = [0usize; 5]; // lines, altering, detected, detected∧altering, any
    let mut per_template = [[0usize; 3]; 5]; // detected, altering, detected∧altering
    let mut rule_payloads = [0usize; 64];
    let mut missed = Vec::new();
    let mut unaltered_hits = Vec::new();
    let mut detected_not_altering = 0usize;
    let mut emit = args.emit.as_ref().map(|path| {
        std::io::BufWriter::new(
            std::fs::File::create(path).unwrap_or_else(|e| panic!("{}: {e}", path.display())),
        )
    });
    for path in &files {
        let text = std::fs::read(path).expect("read payload file");
        let text = String::from_utf8_lossy(&text);
        let name = path.file_name().and_then(|n| n.to_str()).unwrap_or("?");
        let mut row = [0usize; 5];
        for line in text.lines() {
            if line.trim().is_empty() || line.starts_with('#') {
                continue;
            }
            let p = url_decode(line);
            let r = run_payload(&mut inspector, &mut out, &p);
            if let Some(w) = emit.as_mut() {
                for (k, t) in TEMPLATES.iter().enumerate() {
                    let record = serde_json::json!({
                        "file": name,
                        "line": row[0] + 1,
                        "template": t.name,
                        "sql": format!("{}{}{}", t.before, p, t.after),
                        "alters": r.alters[k],
                        "injection": r.injection[k],
                    });
                    std::io::Write::write_fmt(w, format_args!("{record}\n"))
                        .expect("write --emit file");
                }
            }
            let det = r.injection.iter().any(|&d| d);
            let alt = r.alters.iter().any(|&a| a);
            row[0] += 1;
            row[1] += usize::from(alt);
            row[2] += usize::from(det);
            row[3] += usize::from(det && alt);
            row[4] += usize::from(r.any.iter().any(|&a| a));
            detected_not_altering += usize::from(det && !alt);
            if det && !alt {
                unaltered_hits.push((name.to_owned(), p.clone()));
            }
            for (k, t) in per_template.iter_mut().enumerate() {
                t[0] += usize::from(r.injection[k]);
                t[1] += usize::from(r.alters[k]);
                t[2] += usize::from(r.injection[k] && r.alters[k]);
            }
            for (i, n) in rule_payloads.iter_mut().enumerate() {
                *n += usize::from(r.rules & (1 << i) != 0);
            }
            if !det && alt {
                missed.push((name.to_owned(), p));
            }
        }
        let _ = writeln!(
            report,
            "| {} | {} | {} | {} | {} | {} | {} |",
            name.trim_start_matches("sqli-").trim_end_matches(".txt"),
            row[0],
            row[1],
            row[2],
            pct(row[2], row[0]),
            pct(row[3], row[1]),
            row[4]
        );
        for k in 0..5 {
            total[k] += row[k];
        }
    }
    let _ = writeln!(
        report,
        "| **all** | {} | {} | {} | **{}** | **{}** | {} |",
        total[0],
        total[1],
        total[2],
        pct(total[2], total[0]),
        pct(total[3], total[1]),
        total[4]
    );
    let _ = writeln!(
        report,
        "\nNo-op lines (a plain value in every template, or a lexer error): {}. \
         Detected lines among them: {}.\n",
        total[0] - total[1],
        detected_not_altering
    );
    let _ = writeln!(
        report,
        "| template | detected | recall, all lines | altering lines | recall, altering lines |"
    );
    let _ = writeln!(report, "|---|---:|---:|---:|---:|");
    for (k, t) in TEMPLATES.iter().enumerate() {
        let [d, a, da] = per_template[k];
        let _ = writeln!(
            report,
            "| {} | {} | {} | {} | {} |",
            t.name,
            d,
            pct(d, total[0]),
            a,
            pct(da, a)
        );
    }
    let _ = writeln!(report, "\nPayloads raising each rule (any template):\n");
    let _ = writeln!(report, "| rule | payloads |");
    let _ = writeln!(report, "|---|---:|");
    for (i, r) in Rule::ALL.iter().enumerate() {
        if rule_payloads[i] > 0 {
            let _ = writeln!(report, "| {} | {} |", r.as_str(), rule_payloads[i]);
        }
    }

    // ---- false positives
    let fp_path = args.data.join("false_positives.txt");
    let text = std::fs::read(&fp_path).expect("read false_positives.txt");
    let text = String::from_utf8_lossy(&text);
    let mut fp_lines = 0usize;
    let mut fp_stmts = 0usize;
    let mut fp_hits = Vec::new();
    for line in text.lines() {
        if line.trim().is_empty() || line.starts_with('#') {
            continue;
        }
        fp_lines += 1;
        let p = url_decode(line);
        for t in &TEMPLATES {
            let sql = format!("{}{}{}", t.before, p, t.after);
            out.clear();
            inspector.inspect(&sql, &APP, &mut out);
            fp_stmts += 1;
            if !out.is_empty() {
                fp_hits.push((t.name, p.clone(), rules_of(&out)));
            }
        }
    }
    let _ = writeln!(
        report,
        "\n## false_positives.txt\n\n{fp_lines} lines, {fp_stmts} statements: {} with a finding.",
        fp_hits.len()
    );
    for (t, p, rules) in &fp_hits {
        let _ = writeln!(report, "- {t}: {p:?} -> {rules}");
    }

    // ---- normal workload
    let mut g = Gen::new(args.seed);
    let mut counts: BTreeMap<&'static str, (usize, usize)> = BTreeMap::new();
    let mut samples: BTreeMap<&'static str, String> = BTreeMap::new();
    let mut rule_fp: BTreeMap<&'static str, usize> = BTreeMap::new();
    let mut fp_examples = Vec::new();
    let mut bytes = 0usize;
    let mut inspect_time = std::time::Duration::ZERO;
    let mut n = 0usize;
    let mut statements = 0usize;
    while statements < args.normal {
        let (family, sql, cx) = g.next();
        let per = sql.matches(';').count().max(1);
        bytes += sql.len();
        out.clear();
        let start = Instant::now();
        inspector.inspect(&sql, &cx, &mut out);
        inspect_time += start.elapsed();
        n += 1;
        statements += per;
        if args.show_samples {
            samples.entry(family).or_insert_with(|| sql.clone());
        }
        let e = counts.entry(family).or_default();
        e.0 += 1;
        if !out.is_empty() {
            e.1 += 1;
            for f in &out {
                *rule_fp.entry(f.rule.as_str()).or_default() += 1;
            }
            if fp_examples.len() < 20 {
                fp_examples.push((sql.clone(), rules_of(&out)));
            }
        }
    }
    let flagged: usize = counts.values().map(|c| c.1).sum();
    let _ = writeln!(
        report,
        "\n## Normal workload (seed {:#x})\n\n{n} query strings, {statements} statements, \
         {:.1} MB; query strings with a finding: {flagged} ({:.2} per million statements); \
         inspect: {:.0} ns per query string on average.\n",
        args.seed,
        bytes as f64 / 1e6,
        flagged as f64 * 1e6 / statements as f64,
        inspect_time.as_nanos() as f64 / n as f64
    );
    let _ = writeln!(report, "| family | query strings | with a finding |");
    let _ = writeln!(report, "|---|---:|---:|");
    for (family, (count, hits)) in &counts {
        let _ = writeln!(report, "| {family} | {count} | {hits} |");
    }
    for (rule, k) in &rule_fp {
        let _ = writeln!(report, "- {rule}: {k}");
    }
    if args.show_fp {
        for (sql, rules) in &fp_examples {
            let _ = writeln!(report, "- {sql:?} -> {rules}");
        }
    }
    for (family, sql) in &samples {
        let _ = writeln!(report, "- {family}: {sql:?}");
    }
    if args.show_missed {
        let _ = writeln!(report, "\n## Missed payloads that alter structure\n");
        for (file, p) in &missed {
            let _ = writeln!(report, "- {file}: {p:?}");
        }
        let _ = writeln!(report, "\n## Detected payloads that alter no structure\n");
        for (file, p) in &unaltered_hits {
            let _ = writeln!(report, "- {file}: {p:?}");
        }
    }
    print!("{report}");
}

fn rules_of(out: &[Finding]) -> String {
    out.iter()
        .map(|f| f.rule.as_str())
        .collect::<Vec<_>>()
        .join(",")
}

// ---------------------------------------------------------------------------
// The normal workload

/// A small deterministic generator (64-bit LCG).
struct Gen {
    state: u64,
    tpcb: Vec<String>,
}

const WORDS: &[&str] = &[
    "alice",
    "bob",
    "O'Brien",
    "select * from users",
    "union all select",
    "1=1",
    "' OR '1'='1",
    "-- not a comment",
    "/* not a comment */",
    "Robert'); DROP TABLE students;--",
    "admin'--",
    "rock & roll",
    "50% off",
    "C:\\temp\\x",
    "naïve café",
    "x = y",
    "a;b;c",
    "SLEEP(5)",
    "pg_sleep(1)",
    "information_schema",
    "null",
    "true",
    "#hashtag",
    "\"quoted\"",
    "it's",
    "WHERE 1=1 AND",
    "",
    "ünïcödé ✓",
    "order by 1",
    "INSERT INTO",
    "a' || 'b",
    "$$dollar$$",
    "O'Reilly; DELETE",
];

const DOMAINS: &[&str] = &["example.com", "example.org", "mail.test", "corp.example"];

const STATUSES: &[&str] = &["paid", "open", "shipped", "refunded", "cancelled"];

fn q(s: &str) -> String {
    format!("'{}'", s.replace('\'', "''"))
}

impl Gen {
    fn new(seed: u64) -> Self {
        Self {
            state: seed,
            tpcb: Vec::new(),
        }
    }

    fn r(&mut self, bound: u64) -> u64 {
        self.state = self
            .state
            .wrapping_mul(6_364_136_223_846_793_005)
            .wrapping_add(1_442_695_040_888_963_407);
        (self.state >> 33) % bound.max(1)
    }

    fn pick<'a>(&mut self, xs: &[&'a str]) -> &'a str {
        xs[self.r(xs.len() as u64) as usize]
    }

    fn word(&mut self) -> String {
        let w = self.pick(WORDS);
        q(w)
    }

    fn ids(&mut self, n: usize) -> String {
        let mut s = String::new();
        for i in 0..n {
            if i > 0 {
                s.push_str(", ");
            }
            let _ = write!(s, "{}", 1 + self.r(1_000_000));
        }
        s
    }

    fn date(&mut self) -> String {
        format!(
            "'2024-{:02}-{:02} {:02}:{:02}:00+00'",
            1 + self.r(12),
            1 + self.r(28),
            self.r(24),
            self.r(60)
        )
    }

    /// The next query string: its family, text and context.
    fn next(&mut self) -> (&'static str, String, Context) {
        let simple = APP;
        let pick = self.r(100);
        if pick < 40 {
            return ("pgbench", self.pgbench(), simple);
        }
        let shape = self.r(40);
        let (family, sql) = self.orm(shape);
        let cx = if family == "bind_params" {
            Context {
                simple_query: false,
                ..APP
            }
        } else {
            simple
        };
        let sql = if self.r(10) == 0 && !sql.contains(';') {
            format!(
                "{sql} /*action='show',controller='users',framework='rails',traceparent='00-{:016x}{:016x}-{:016x}-01'*/",
                self.r(u64::MAX),
                self.r(u64::MAX),
                self.r(u64::MAX)
            )
        } else {
            sql
        };
        (family, sql, cx)
    }

    fn pgbench(&mut self) -> String {
        if let Some(s) = self.tpcb.pop() {
            return s;
        }
        let aid = 1 + self.r(100_000);
        let bid = 1 + self.r(1);
        let tid = 1 + self.r(10);
        let delta = self.r(10_001) as i64 - 5_000;
        if self.r(2) == 0 {
            return format!("SELECT abalance FROM pgbench_accounts WHERE aid = {aid};");
        }
        let mut t = vec![
            "BEGIN;".to_owned(),
            format!("UPDATE pgbench_accounts SET abalance = abalance + {delta} WHERE aid = {aid};"),
            format!("SELECT abalance FROM pgbench_accounts WHERE aid = {aid};"),
            format!("UPDATE pgbench_tellers SET tbalance = tbalance + {delta} WHERE tid = {tid};"),
            format!("UPDATE pgbench_branches SET bbalance = bbalance + {delta} WHERE bid = {bid};"),
            format!(
                "INSERT INTO pgbench_history (tid, bid, aid, delta, mtime) VALUES ({tid}, {bid}, {aid}, {delta}, CURRENT_TIMESTAMP);"
            ),
            "END;".to_owned(),
        ];
        t.reverse();
        self.tpcb = t;
        self.tpcb.pop().unwrap_or_default()
    }

    fn orm(&mut self, shape: u64) -> (&'static str, String) {
        let id = 1 + self.r(1_000_000);
        let id2 = 1 + self.r(1_000_000);
        let w = self.word();
        let w2 = self.word();
        let status = self.pick(STATUSES);
        match shape {
            0 => ("django_get", format!(
                "SELECT \"app_user\".\"id\", \"app_user\".\"username\", \"app_user\".\"email\", \"app_user\".\"is_active\" FROM \"app_user\" WHERE \"app_user\".\"username\" = {w} LIMIT 21"
            )),
            1 => ("django_or", format!(
                "SELECT \"app_user\".\"id\" FROM \"app_user\" WHERE (\"app_user\".\"is_active\" AND (\"app_user\".\"email\" = {w} OR \"app_user\".\"username\" = {w2} OR \"app_user\".\"id\" = {id})) ORDER BY \"app_user\".\"id\" ASC"
            )),
            2 => {
                let n = 1 + self.r(60) as usize;
                let ids = self.ids(n);
                ("in_list", format!("SELECT \"orders\".\"id\", \"orders\".\"total\" FROM \"orders\" WHERE \"orders\".\"id\" IN ({ids})"))
            }
            3 => ("in_strings", format!(
                "SELECT id, total FROM orders WHERE status IN ('{status}', 'open', {w}) AND customer_id = {id} ORDER BY created_at DESC LIMIT 50 OFFSET {}",
                self.r(10) * 50
            )),
            4 => ("json_ops", format!(
                "SELECT id, payload->>'type' AS kind FROM events WHERE payload->>'type' = {w} AND payload @> '{{\"user\": {id}}}'::jsonb AND tags ? 'beta' AND (payload #>> '{{a,b}}') IS NOT NULL"
            )),
            5 => {
                let s = self.pick(WORDS).replace('\'', "''");
                ("ilike", format!(
                    "SELECT id, title FROM posts WHERE title ILIKE '%{s}%' OR body ILIKE '%{s}%' ORDER BY created_at DESC LIMIT 10"
                ))
            }
            6 => ("cte_union_all", format!(
                "WITH recent AS (SELECT id, user_id, total FROM orders WHERE created_at > now() - interval '7 days' UNION ALL SELECT id, user_id, -amount FROM refunds WHERE created_at > now() - interval '7 days') SELECT user_id, count(*), sum(total) FROM recent WHERE user_id = {id} GROUP BY user_id"
            )),
            7 => ("recursive_cte", format!(
                "WITH RECURSIVE tree AS (SELECT id, parent_id, 0 AS depth FROM categories WHERE id = {id} UNION ALL SELECT c.id, c.parent_id, t.depth + 1 FROM categories c JOIN tree t ON c.parent_id = t.id WHERE t.depth < 10) SELECT * FROM tree ORDER BY depth"
            )),
            8 => ("window", format!(
                "SELECT id, amount, row_number() OVER (PARTITION BY customer_id ORDER BY created_at DESC) AS rn, sum(amount) OVER (ORDER BY created_at ROWS BETWEEN 6 PRECEDING AND CURRENT ROW) AS moving FROM payments WHERE customer_id = {id} AND amount > 0"
            )),
            9 => {
                let lo = self.r(100);
                let hi = lo + 1 + self.r(1000);
                let s = self.pick(WORDS).replace('\'', "''");
                ("where_1_eq_1", format!(
                    "SELECT * FROM products WHERE 1=1 AND category_id = {} AND price BETWEEN {lo} AND {hi} AND name LIKE '{s}%' AND deleted_at IS NULL",
                    self.r(50)
                ))
            }
            10 => match self.r(3) {
                0 => ("empty_in", "SELECT tags.id, tags.name FROM tags WHERE 1=0".to_owned()),
                1 => ("empty_in", format!("SELECT tags.id FROM tags WHERE tags.id IN (NULL) AND (1 != 1) AND tags.owner_id = {id}")),
                _ => ("empty_in", format!("SELECT tags.id FROM tags WHERE (1 = 0 OR tags.owner_id = {id})")),
            },
            11 => ("null_cast_union", format!(
                "SELECT id, name, NULL::int AS extra, 1 AS clazz_ FROM animals_cat WHERE owner_id = {id} UNION ALL SELECT id, name, extra, 2 AS clazz_ FROM animals_dog WHERE owner_id = {id}"
            )),
            12 => ("union_kind", format!(
                "SELECT id, 'order' AS kind, created_at FROM orders WHERE user_id = {id} UNION ALL SELECT id, 'refund', created_at FROM refunds WHERE user_id = {id} ORDER BY created_at DESC LIMIT 50"
            )),
            13 => {
                let d = self.date();
                ("upsert", format!(
                    "INSERT INTO \"sessions\" (\"key\", \"data\", \"expires\") VALUES ({w}, '{{\"cart\": [{id}, {id2}], \"note\": \"it''s -- fine\"}}', {d}) ON CONFLICT (\"key\") DO UPDATE SET \"data\" = EXCLUDED.\"data\", \"expires\" = EXCLUDED.\"expires\" RETURNING \"id\""
                ))
            }
            14 => {
                let d = self.date();
                ("update", format!(
                    "UPDATE \"users\" SET \"last_login\" = {d}, \"login_count\" = \"login_count\" + 1, \"bio\" = {w} WHERE \"users\".\"id\" = {id}"
                ))
            }
            15 => {
                let n = 1 + self.r(8) as usize;
                let ids = self.ids(n);
                ("delete", format!("DELETE FROM \"cart_items\" WHERE \"cart_items\".\"cart_id\" = {id} AND \"cart_items\".\"product_id\" IN ({ids})"))
            }
            16 => ("casts", format!(
                "SELECT count(*)::int AS n, CAST(sum(total) AS bigint) AS s, extract(epoch from max(created_at))::bigint AS t, CAST({w} AS text), '42'::int, CAST(price AS int) FROM orders WHERE status = '{status}' AND customer_id = {id}"
            )),
            17 => {
                let domain = self.pick(DOMAINS);
                ("exists", format!(
                    "SELECT u.id, u.email FROM users u WHERE EXISTS (SELECT 1 FROM orders o WHERE o.user_id = u.id AND o.total > {}) AND u.email ILIKE '%@{domain}' AND NOT EXISTS (SELECT 1 FROM bans b WHERE b.user_id = u.id)",
                    self.r(500)
                ))
            }
            18 => ("case", format!(
                "SELECT id, CASE WHEN status = 'paid' THEN 1 WHEN status = 'refunded' THEN -1 ELSE 0 END AS sign, CASE status WHEN 'open' THEN 'o' ELSE 'x' END FROM orders WHERE id = {id}"
            )),
            19 => {
                let s = if self.r(2) == 0 { String::new() } else { self.pick(WORDS).replace('\'', "''") };
                let cat = if self.r(2) == 0 { "NULL".to_owned() } else { id.to_string() };
                ("optional_filters", format!(
                    "SELECT * FROM items WHERE ('{s}' = '' OR name = '{s}') AND ({cat} IS NULL OR category_id = {cat}) AND (0 = {} OR owner_id = {id2})",
                    self.r(2)
                ))
            }
            20 => match self.r(4) {
                0 => ("batch", format!(
                    "BEGIN; UPDATE accounts SET balance = balance - {id} WHERE id = {id2}; UPDATE accounts SET balance = balance + {id} WHERE id = {}; COMMIT;",
                    1 + self.r(1000)
                )),
                1 => ("batch", "SET LOCAL statement_timeout = '5s'; SELECT id FROM jobs WHERE state = 'queued' ORDER BY id LIMIT 10 FOR UPDATE SKIP LOCKED".to_owned()),
                2 => {
                    let mut s = String::new();
                    for _ in 0..(2 + self.r(20)) {
                        let v = self.word();
                        let _ = write!(s, "INSERT INTO audit (user_id, note) VALUES ({}, {v}); ", 1 + self.r(1000));
                    }
                    ("batch", s)
                }
                _ => ("batch", format!("SELECT set_config('app.user_id', '{id}', false); SELECT * FROM documents WHERE owner_id = current_setting('app.user_id')::int")),
            },
            21 => {
                let d = self.date();
                ("keyset", format!(
                    "SELECT id, created_at FROM posts WHERE (created_at, id) < ({d}, {id}) AND author_id = {id2} ORDER BY created_at DESC, id DESC LIMIT 20"
                ))
            }
            22 => ("lateral", format!(
                "SELECT u.id, j.items FROM users u LEFT JOIN LATERAL (SELECT json_agg(json_build_object('id', i.id, 'name', i.name)) AS items FROM items i WHERE i.user_id = u.id) j ON true WHERE u.id = ANY('{{{id},{id2}}}'::int[])"
            )),
            23 => ("escape_strings", format!(
                "INSERT INTO logs (level, msg, raw) VALUES ('info', E'line1\\nline2 \\'quoted\\' -- x', $tag$it's $$ -- /* $tag$) RETURNING id, {id}"
            )),
            24 => ("dates", format!(
                "SELECT count(*) FROM visits WHERE created_at >= DATE '2024-01-01' AND created_at < DATE '2024-02-01' + interval '{} days' AND site_id = {id}",
                self.r(30)
            )),
            25 => ("arrays", format!(
                "SELECT id FROM docs WHERE tags && ARRAY['a', {w}]::text[] AND NOT (flags @> ARRAY[{}]) AND array_length(tags, 1) > 1",
                self.r(8)
            )),
            26 => ("bind_params", "SELECT id, name FROM users WHERE id = $1 AND (status = $2 OR $2 IS NULL) AND created_at > $3::timestamptz".to_owned()),
            27 => ("or_chain", format!(
                "SELECT id FROM tickets WHERE assignee_id = {id} OR reporter_id = {id} OR (watcher_ids @> ARRAY[{id}] AND status <> 'closed') OR priority >= 3"
            )),
            28 => ("text_search", format!(
                "SELECT id, ts_rank(search, q) AS rank FROM articles, plainto_tsquery('english', {w}) q WHERE search @@ q ORDER BY rank DESC LIMIT 20"
            )),
            29 => match self.r(5) {
                0 => ("driver_startup", "select pg_catalog.version()".to_owned()),
                1 => ("driver_startup", "select current_schema()".to_owned()),
                2 => ("driver_startup", "show standard_conforming_strings".to_owned()),
                3 => ("driver_startup", "SELECT t.oid, typarray FROM pg_type t JOIN pg_namespace ns ON typnamespace = ns.oid WHERE typname = 'hstore'".to_owned()),
                _ => ("driver_startup", "SET application_name = 'web-1'; SET TIME ZONE 'UTC'".to_owned()),
            },
            30 => ("aggregates", format!(
                "SELECT customer_id, count(*) FILTER (WHERE status = 'paid') AS paid, coalesce(sum(total), 0)::numeric(12,2) AS total, string_agg(DISTINCT {w}, ', ') FROM orders GROUP BY customer_id HAVING count(*) > {} ORDER BY 2 DESC",
                self.r(10)
            )),
            31 => ("subquery_in", format!(
                "UPDATE orders SET status = '{status}', updated_at = now() WHERE id IN (SELECT id FROM orders WHERE customer_id = {id} AND status = 'open' ORDER BY id LIMIT 100) RETURNING id"
            )),
            32 => ("null_select", format!(
                "SELECT NULL::int AS parent_id, NULL::text AS path, id, name FROM nodes WHERE id = {id}"
            )),
            34 => ("insert_select", format!(
                "INSERT INTO archive (id, \"user\", \"order\", note) SELECT id, \"user\", \"order\", {w} FROM orders WHERE created_at < {} AND status = '{status}' ON CONFLICT DO NOTHING",
                self.date()
            )),
            35 => {
                let rows: Vec<String> = (0..1 + self.r(5))
                    .map(|_| {
                        let v = self.word();
                        format!("({}, {v}, NULL, true)", 1 + self.r(1000))
                    })
                    .collect();
                ("multi_values", format!(
                    "INSERT INTO tags (post_id, name, parent_id, visible) VALUES {} RETURNING id",
                    rows.join(", ")
                ))
            }
            36 => ("update_from", format!(
                "UPDATE orders o SET total = o.total - r.amount FROM refunds r WHERE r.order_id = o.id AND r.id = {id} AND NOT r.applied"
            )),
            37 => ("for_update", format!(
                "SELECT id, state FROM jobs WHERE state = 'queued' AND run_at <= now() AND queue = {w} ORDER BY priority DESC, id LIMIT 1 FOR UPDATE SKIP LOCKED"
            )),
            38 => ("range_window", format!(
                "SELECT day, sum(n) OVER (ORDER BY day RANGE BETWEEN INTERVAL '6 days' PRECEDING AND CURRENT ROW) FROM generate_series(DATE '2024-01-01', DATE '2024-03-01', INTERVAL '1 day') AS day LEFT JOIN stats s ON s.d = day WHERE s.site = {id}"
            )),
            39 => ("any_array", format!(
                "SELECT id FROM users WHERE id = ANY(ARRAY[{id}, {id2}]) AND role <> ALL('{{admin,root}}'::text[]) AND jsonb_path_exists(prefs, '$.a ? (@ == 1)') AND email NOT ILIKE '%@test.%'"
            )),
            _ => ("comments", format!(
                "SELECT id -- the key\n, name /* display */ FROM users\nWHERE status = '{status}' -- active only\nAND id > {id}"
            )),
        }
    }
}
