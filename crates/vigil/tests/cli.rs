//! The `vigil` binary end to end: events, config check, demo, convert.

#![allow(clippy::unwrap_used)] // tests may panic

use std::process::{Command, Output};

fn vigil(args: &[&str], stdin: &[u8]) -> Output {
    vigil_testkit::run_with_stdin(Command::new(env!("CARGO_BIN_EXE_vigil")).args(args), stdin)
}

#[test]
fn events_lists_the_catalog_as_a_table_and_as_json() {
    let table = vigil(&["events"], b"");
    assert!(table.status.success());
    let text = String::from_utf8(table.stdout).unwrap();
    assert!(text.starts_with("CODE"));
    assert!(text.contains("1100  client.connected"));
    let json = vigil(&["events", "--json"], b"");
    let all: serde_json::Value = serde_json::from_slice(&json.stdout).unwrap();
    let all = all.as_array().unwrap();
    assert_eq!(all.len(), vigil_event::catalog::ALL.len());
    assert!(
        all.iter()
            .any(|e| e["name"] == "poison.accessed" && e["code"] == 3000)
    );
    let md = vigil(&["events", "--markdown"], b"");
    assert_eq!(
        String::from_utf8(md.stdout).unwrap(),
        vigil_event::catalog::markdown()
    );
}

#[test]
fn config_check_accepts_the_example_and_rejects_errors_in_one_line() {
    let dir = tempfile::tempdir().unwrap();
    let good = dir.path().join("vigil.toml");
    std::fs::write(&good, vigil::config::example()).unwrap();
    let ok = vigil(&["config", "check", good.to_str().unwrap()], b"");
    assert_eq!(
        ok.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&ok.stderr)
    );
    assert!(String::from_utf8_lossy(&ok.stdout).starts_with("ok: "));

    let bad = dir.path().join("bad.toml");
    std::fs::write(
        &bad,
        "[service]\norigin = \"db1\"\n\n[[sinks]]\ntype = \"stdout\"\nformat = \"xml\"\n",
    )
    .unwrap();
    let out = vigil(&["config", "check", bad.to_str().unwrap()], b"");
    assert_eq!(out.status.code(), Some(2));
    let err = String::from_utf8(out.stderr).unwrap();
    assert_eq!(err.lines().count(), 1, "{err}");
    assert!(
        err.contains("bad.toml:6: sinks[0].format: unknown format"),
        "{err}"
    );

    let missing = vigil(
        &[
            "config",
            "check",
            dir.path().join("nope.toml").to_str().unwrap(),
        ],
        b"",
    );
    assert_eq!(missing.status.code(), Some(2));
    assert_eq!(
        String::from_utf8(missing.stderr).unwrap().lines().count(),
        1
    );
}

#[test]
fn demo_writes_every_format_and_convert_re_exports_it() {
    let json = vigil(&["demo", "--format", "json"], b"");
    assert!(json.status.success());
    let lines = json
        .stdout
        .split(|&b| b == b'\n')
        .filter(|l| !l.is_empty())
        .count();
    assert!(lines >= 10, "a representative set of events");
    for fmt in ["text", "cef", "syslog", "ocsf"] {
        let direct = vigil(&["demo", "--format", fmt], b"");
        assert!(direct.status.success());
        let converted = vigil(&["convert", "--to", fmt], &json.stdout);
        assert!(converted.status.success(), "{fmt}");
        let n = converted
            .stdout
            .split(|&b| b == b'\n')
            .filter(|l| !l.is_empty())
            .count();
        assert_eq!(n, lines, "{fmt}: one record per event");
    }
    // convert is lossless for json.
    let again = vigil(&["convert", "--to", "json"], &json.stdout);
    assert_eq!(again.stdout, json.stdout);
    // A bad line is named and skipped, exit 1.
    let mut input = json.stdout.clone();
    input.extend_from_slice(b"{\"code\":99999,\"message\":\"x\"}\n");
    let out = vigil(&["convert", "--to", "cef"], &input);
    assert_eq!(out.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&out.stderr).contains(&format!("stdin:{}:", lines + 1)));
}

#[test]
fn demo_goes_through_configured_sinks() {
    let dir = tempfile::tempdir().unwrap();
    let cfg = dir.path().join("vigil.toml");
    std::fs::write(
        &cfg,
        "[service]\norigin = \"demo-test\"\n[[sinks]]\ntype = \"file\"\npath = \"out.cef\"\nformat = \"cef\"\ninclude = [\"poison\", \"anomaly\"]\n",
    )
    .unwrap();
    let out = vigil(&["demo", "--config", cfg.to_str().unwrap()], b"");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let cef = std::fs::read_to_string(dir.path().join("out.cef")).unwrap();
    assert_eq!(cef.lines().count(), 2, "only the two detections: {cef}");
    assert!(cef.lines().all(|l| l.starts_with("CEF:0|vigil|vigil|")));
    use std::os::unix::fs::PermissionsExt;
    let mode = std::fs::metadata(dir.path().join("out.cef"))
        .unwrap()
        .permissions()
        .mode();
    assert_eq!(mode & 0o777, 0o600);
}

#[test]
fn version_and_help() {
    let v = vigil(&["--version"], b"");
    assert_eq!(
        String::from_utf8(v.stdout).unwrap().trim(),
        format!("vigil {}", env!("CARGO_PKG_VERSION"))
    );
    let h = vigil(&["--help"], b"");
    let help = String::from_utf8(h.stdout).unwrap();
    for cmd in [
        "events", "config", "demo", "convert", "keys", "audit", "verify", "prove",
    ] {
        assert!(help.contains(cmd), "help lists {cmd}");
    }
}

#[test]
fn demo_seals_every_event_when_the_config_has_an_audit_section() {
    let dir = tempfile::tempdir().unwrap();
    let master = "ZGVtby1hdWRpdC10ZXN0LW1hc3Rlci1rZXktMzJieXQ=";
    let run = |args: &[&str]| {
        let mut cmd = Command::new(env!("CARGO_BIN_EXE_vigil"));
        cmd.args(args).env("VIGIL_MASTER_KEY", master);
        vigil_testkit::run_with_stdin(&mut cmd, b"")
    };
    let keys = dir.path().join("keys");
    assert!(
        run(&["keys", "generate", "--key-dir", keys.to_str().unwrap()])
            .status
            .success()
    );
    let cfg = dir.path().join("vigil.toml");
    std::fs::write(
        &cfg,
        "[service]\norigin = \"db1\"\n[[sinks]]\ntype = \"file\"\npath = \"events.json\"\n\
         [audit]\ndir = \"audit\"\nkey_dir = \"keys\"\nformat = \"cef\"\nsync = \"always\"\n",
    )
    .unwrap();
    let out = run(&["demo", "--config", cfg.to_str().unwrap()]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let audit = dir.path().join("audit");
    let sealed: String = std::fs::read_dir(&audit)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|x| x == "log"))
        .map(|p| std::fs::read_to_string(p).unwrap())
        .collect();
    assert!(
        sealed
            .lines()
            .all(|l| l.starts_with("CEF:0|") && l.contains(" vigilSealMac="))
    );
    for name in [
        "keys.loaded",
        "client.connected",
        "poison.accessed",
        "audit.checkpoint",
    ] {
        assert!(sealed.contains(name), "{name} is sealed");
    }
    // The sink sees the same seqs as the log.
    let events = std::fs::read_to_string(dir.path().join("events.json")).unwrap();
    let first: serde_json::Value = serde_json::from_str(events.lines().next().unwrap()).unwrap();
    assert_eq!(first["seq"], 1);
    let v = run(&[
        "verify",
        audit.to_str().unwrap(),
        "--key-dir",
        keys.to_str().unwrap(),
    ]);
    assert_eq!(
        v.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&v.stdout)
    );

    // Without the master key: one error line, exit 2.
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_vigil"));
    cmd.args(["demo", "--config", cfg.to_str().unwrap()])
        .env_remove("VIGIL_MASTER_KEY");
    let out = vigil_testkit::run_with_stdin(&mut cmd, b"");
    assert_eq!(out.status.code(), Some(2));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("keys.master_missing"), "{err}");
    assert_eq!(
        err.lines().filter(|l| l.starts_with("vigil: ")).count(),
        1,
        "{err}"
    );
}
