//! Crash test: `vigil audit append` killed with SIGKILL at random moments.
//! Each time, the restarted writer recovers, the log verifies, and every
//! entry the killed writer reported durable is still there.

#![allow(clippy::unwrap_used, clippy::string_slice)] // tests may panic

use std::io::{BufRead, BufReader, Write};
use std::path::Path;
use std::process::{Command, Stdio};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use vigil_keys::{AUDIT_HMAC, CHECKPOINT_SIGNING, FileBackend, KeyStore, MasterKey};
use vigil_seal::Verifier;
use zeroize::Zeroizing;

const MASTER: &str = "dmlnaWwtY3Jhc2gtdGVzdC1tYXN0ZXIta2V5LTMyYmI="; // 32 bytes
const ROUNDS: u32 = 50;

struct Rng(u64);
impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0
    }
}

fn vigil() -> Command {
    let mut c = Command::new(env!("CARGO_BIN_EXE_vigil"));
    c.env("VIGIL_MASTER_KEY", MASTER);
    c
}

fn append_args<'a>(audit: &'a Path, keys: &'a Path) -> Vec<&'a std::ffi::OsStr> {
    vec![
        "audit".as_ref(),
        "append".as_ref(),
        "--dir".as_ref(),
        audit.as_os_str(),
        "--key-dir".as_ref(),
        keys.as_os_str(),
        "--origin".as_ref(),
        "crash-test".as_ref(),
        "--ack".as_ref(),
    ]
}

fn verify(audit: &Path, store: &KeyStore) -> vigil_seal::Report {
    let lookup = |v: u32| {
        store
            .load(AUDIT_HMAC, v)
            .ok()
            .map(|s| Zeroizing::new(*s.expose()))
    };
    Verifier::new()
        .keys(&lookup)
        .verify(&[audit.to_path_buf()])
        .expect("verify runs")
}

#[test]
fn sigkill_at_random_moments_never_loses_a_durable_entry() {
    let tmp = tempfile::tempdir().unwrap();
    let keys = tmp.path().join("keys");
    let audit = tmp.path().join("audit");
    let store = KeyStore::new(
        FileBackend::new(&keys),
        MasterKey::from_base64(MASTER).unwrap(),
        None,
    );
    store.ensure(AUDIT_HMAC).unwrap();
    store.ensure(CHECKPOINT_SIGNING).unwrap();
    let seed = std::env::var("VIGIL_CRASH_SEED")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(0x5eed_c0de_u64);
    eprintln!("crash test seed {seed} (set VIGIL_CRASH_SEED to replay)");
    let mut rng = Rng(seed);
    let mut killed_mid_write = 0;
    for round in 0..ROUNDS {
        let mut child = vigil()
            .args(append_args(&audit, &keys))
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .unwrap();
        let mut stdin = child.stdin.take().unwrap();
        let stdout = child.stdout.take().unwrap();
        let durable = Arc::new(AtomicU64::new(0));
        let d = durable.clone();
        let reader = std::thread::spawn(move || {
            for line in BufReader::new(stdout).lines() {
                let Ok(line) = line else { break };
                if let Some(n) = line.strip_prefix("durable ").and_then(|n| n.parse().ok()) {
                    d.fetch_max(n, Ordering::SeqCst);
                }
            }
        });
        let writer = std::thread::spawn(move || {
            let mut i = 0u64;
            loop {
                let mut batch = String::new();
                for _ in 0..50 {
                    i += 1;
                    batch.push_str(&format!(
                        "{{\"code\":2000,\"message\":\"statement executed\",\"fields\":{{\"round\":{round},\"i\":{i},\"query\":\"SELECT * FROM t WHERE id = $1\"}}}}\n"
                    ));
                }
                if stdin.write_all(batch.as_bytes()).is_err() {
                    return i;
                }
                std::thread::sleep(Duration::from_millis(1));
            }
        });
        std::thread::sleep(Duration::from_millis(rng.next() % 150));
        child.kill().unwrap(); // SIGKILL
        let status = child.wait().unwrap();
        let sent = writer.join().unwrap();
        reader.join().unwrap();
        if status.code().is_none() {
            killed_mid_write += 1;
        }
        let acked = durable.load(Ordering::SeqCst);

        // Restart: recovery runs on open; nothing more to seal.
        let out = vigil()
            .args(append_args(&audit, &keys))
            .stdin(Stdio::null())
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "round {round}: restart failed: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        let report = verify(&audit, &store);
        assert!(report.verified(), "round {round}: {:?}", report.failure);
        assert!(
            report.last_seq >= acked,
            "round {round}: entry {acked} was reported durable but the log ends at {}",
            report.last_seq
        );
        eprintln!(
            "round {round}: sent {sent}, durable {acked}, log ends at {}",
            report.last_seq
        );
    }
    assert!(
        killed_mid_write >= ROUNDS / 2,
        "most kills must land while writing"
    );
}
