//! `docs/formats.md` stays true: its examples are the golden records, and its
//! OCSF class table is the catalog's.

// A failed unwrap in a test is a test failure with a backtrace; that is enough.
#![allow(clippy::unwrap_used)]

use std::collections::BTreeMap;
use std::path::Path;

use vigil_event::{Event, Format, catalog};

fn read(rel: &str) -> String {
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join(rel);
    std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

#[test]
fn examples_are_golden_records() {
    let docs = read("../../docs/formats.md");
    for golden in [
        "statement.json",
        "auth_failed.txt",
        "statement.cef",
        "statement.syslog",
        "statement.ocsf",
    ] {
        let line = read(&format!("tests/golden/{golden}"));
        assert!(
            docs.lines().any(|l| format!("{l}\n") == line),
            "docs/formats.md does not show tests/golden/{golden} as an example:\n{line}"
        );
    }
}

#[test]
fn ocsf_table_matches_the_catalog() {
    // Group events by (category, class, activity), in catalog order, using
    // the names the OCSF format itself writes.
    let mut rows: Vec<(String, Vec<&str>)> = Vec::new();
    let mut index: BTreeMap<String, usize> = BTreeMap::new();
    for &kind in catalog::ALL {
        let mut line = Vec::new();
        Format::Ocsf.write(&Event::new(kind, "x"), &mut line);
        let o: serde_json::Value = serde_json::from_slice(&line).unwrap();
        let row = format!(
            "| {} | {} {} | {} {} |",
            kind.category(),
            o["class_uid"],
            o["class_name"].as_str().unwrap(),
            o["activity_id"],
            o["activity_name"].as_str().unwrap(),
        );
        let i = *index.entry(row.clone()).or_insert_with(|| {
            rows.push((row, Vec::new()));
            rows.len() - 1
        });
        rows[i].1.push(kind.name());
    }
    let docs = read("../../docs/formats.md");
    for (row, names) in rows {
        let names: Vec<String> = names.iter().map(|n| format!("`{n}`")).collect();
        let want = format!("{row} {} |", names.join(", "));
        assert!(
            docs.lines().any(|l| l == want),
            "docs/formats.md lacks the row\n{want}"
        );
    }
}
