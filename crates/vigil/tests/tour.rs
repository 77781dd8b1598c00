//! `vigil demo`, the tour: a real PostgreSQL, a real psql over TLS, and an
//! audit log that verifies and holds none of the session's secrets.

#![allow(clippy::unwrap_used)] // tests may panic

use std::process::Command;

#[test]
fn the_tour_runs_the_session_and_verifies_the_log() {
    let out = Command::new(env!("CARGO_BIN_EXE_vigil"))
        .arg("demo")
        .env_remove("VIGIL_MASTER_KEY")
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{stdout}\n{stderr}");
    for name in [
        "listener.started",
        "schema.wrong_column_type",
        "client.connected",
        "tls=TLSv1.3",
        "auth.succeeded",
        "statement.executed",
        "statement.failed",
        "sqlstate=23505",
        "auth.failed",
        "sqlstate=28P01",
        "audit.checkpoint",
    ] {
        assert!(stdout.contains(name), "no {name} in:\n{stdout}");
    }
    assert!(stderr.contains("audit log verified"), "{stderr}");
    assert!(stderr.contains("found in the audit log: none"), "{stderr}");
    for secret in [
        "alice@private.example",
        "4111-1111",
        "s3cr3t-api-token",
        "guess-123456",
    ] {
        assert!(!stdout.contains(secret), "{secret} leaked:\n{stdout}");
    }
}
