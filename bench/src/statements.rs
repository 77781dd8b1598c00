//! The statements the redaction and detection benchmarks cycle through:
//! pgbench's, ORM-like ones, a long CTE and an injection, each with
//! pseudo-random values.

/// How many variants of each statement a benchmark cycles through.
pub const VARIANTS: usize = 1024;

/// A small deterministic generator (64-bit LCG), so every run sees the
/// same statements.
#[derive(Debug)]
pub struct Lcg(pub u64);

impl Lcg {
    /// A number below `bound`.
    pub fn next(&mut self, bound: u64) -> u64 {
        self.0 = self
            .0
            .wrapping_mul(6_364_136_223_846_793_005)
            .wrapping_add(1_442_695_040_888_963_407);
        (self.0 >> 33) % bound
    }
}

/// pgbench's `-S` statement.
pub fn select(r: &mut Lcg) -> String {
    let aid = 1 + r.next(100_000);
    format!("SELECT abalance FROM pgbench_accounts WHERE aid = {aid};")
}

/// pgbench's TPC-B account update.
pub fn update(r: &mut Lcg) -> String {
    let delta = r.next(10_001) as i64 - 5_000;
    let aid = 1 + r.next(100_000);
    format!("UPDATE pgbench_accounts SET abalance = abalance + {delta} WHERE aid = {aid};")
}

/// pgbench's TPC-B history insert.
pub fn insert(r: &mut Lcg) -> String {
    let (tid, bid, aid) = (1 + r.next(10), 1, 1 + r.next(100_000));
    let delta = r.next(10_001) as i64 - 5_000;
    format!(
        "INSERT INTO pgbench_history (tid, bid, aid, delta, mtime) VALUES ({tid}, {bid}, {aid}, {delta}, CURRENT_TIMESTAMP);"
    )
}

/// A 200-byte join with quoted identifiers, as ORMs write them.
pub fn orm_join(r: &mut Lcg) -> String {
    let id = r.next(1_000_000);
    let status = ["paid", "open", "shipped"][r.next(3) as usize];
    format!(
        "SELECT \"orders\".\"id\", \"orders\".\"total\", \"customers\".\"email\" FROM \"orders\" \
         INNER JOIN \"customers\" ON \"customers\".\"id\" = \"orders\".\"customer_id\" \
         WHERE \"orders\".\"customer_id\" = {id} AND \"orders\".\"status\" = '{status}' LIMIT 20"
    )
}

/// A Django-style filter with `OR`, `IN` and `ILIKE`, whose searched text
/// holds a doubled quote, `union select` or `%`.
pub fn orm_filter(r: &mut Lcg) -> String {
    let (a, b, c) = (r.next(1_000_000), r.next(1_000_000), r.next(1_000_000));
    let name = ["O''Brien", "union select", "50% off"][r.next(3) as usize];
    format!(
        "SELECT \"app_user\".\"id\", \"app_user\".\"email\" FROM \"app_user\" WHERE \
         (\"app_user\".\"is_active\" AND (\"app_user\".\"id\" IN ({a}, {b}, {c}) OR \
         \"app_user\".\"username\" ILIKE '%{name}%')) ORDER BY \"app_user\".\"id\" LIMIT 21"
    )
}

/// A CTE with `UNION ALL` and a window function, about 400 bytes.
pub fn cte_window(r: &mut Lcg) -> String {
    let id = r.next(1_000_000);
    format!(
        "WITH recent AS (SELECT id, user_id, total FROM orders WHERE created_at > now() - \
         interval '7 days' UNION ALL SELECT id, user_id, -amount FROM refunds WHERE created_at > \
         now() - interval '7 days') SELECT user_id, sum(total) OVER (PARTITION BY user_id ORDER \
         BY id ROWS BETWEEN 6 PRECEDING AND CURRENT ROW) AS moving, count(*)::int FROM recent \
         WHERE user_id = {id} AND total > 0"
    )
}

/// An injected `UNION SELECT` with a comment.
pub fn injection(r: &mut Lcg) -> String {
    let id = r.next(1_000_000);
    format!(
        "SELECT id, name, email FROM users WHERE id = {id} UNION ALL SELECT NULL, NULL, \
         password FROM users LIMIT 1--"
    )
}

/// A statement generator.
pub type Gen = fn(&mut Lcg) -> String;

/// The statement benchmarks by name; `pgbench_mix` is TPC-B's three
/// statements that carry values, in turn.
pub const BENCHES: [(&str, &[Gen]); 8] = [
    ("select", &[select]),
    ("update", &[update]),
    ("insert", &[insert]),
    ("pgbench_mix", &[update, select, insert]),
    ("orm_join", &[orm_join]),
    ("orm_filter", &[orm_filter]),
    ("cte_window", &[cte_window]),
    ("injection", &[injection]),
];

/// [`VARIANTS`] rounds of `gens`, each with its own values.
pub fn statements(gens: &[Gen]) -> Vec<String> {
    let mut r = Lcg(0x5eed);
    (0..VARIANTS)
        .flat_map(|_| gens.iter().map(|g| g(&mut r)).collect::<Vec<_>>())
        .collect()
}
