//! Helpers for vigil's tests: free ports, temporary directories, test
//! certificates ([`pki`]), and the Debian-packaged servers the tests start
//! ([`postgres`], [`redis`], [`rsyslog`], [`nats`]), each on a free
//! port in its own directory.
//!
//! ```
//! let port = vigil_testkit::free_port();
//! assert!(port > 0);
//! ```

#![forbid(unsafe_code)]

mod daemon;
pub mod nats;
pub mod pki;
pub mod postgres;
pub mod redis;
pub mod rsyslog;
pub mod syslog_ng;

use std::io::Write;
use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};

/// A TCP port on 127.0.0.1 that was free a moment ago.
///
/// The port is released before returning, so another process could take it;
/// servers started on it retry with a new port when binding fails.
pub fn free_port() -> u16 {
    let l = TcpListener::bind("127.0.0.1:0").expect("bind 127.0.0.1:0");
    l.local_addr().expect("local_addr").port()
}

/// A fresh temporary directory, removed when dropped.
pub fn tempdir() -> tempfile::TempDir {
    tempfile::Builder::new()
        .prefix("vigil-test-")
        .tempdir()
        .expect("create a temporary directory")
}

/// The first directory among `candidates` holding an executable `name`,
/// then `$PATH`.
pub fn find_program(name: &str, candidates: &[&Path]) -> Option<PathBuf> {
    let path = std::env::var_os("PATH").unwrap_or_default();
    candidates
        .iter()
        .map(|d| d.to_path_buf())
        .chain(std::env::split_paths(&path))
        .map(|d| d.join(name))
        .find(|p| p.is_file())
}

/// Runs `cmd` with `stdin` as its standard input and returns its output.
pub fn run_with_stdin(cmd: &mut Command, stdin: &[u8]) -> Output {
    let mut child = cmd
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap_or_else(|e| panic!("spawn {cmd:?}: {e}"));
    let mut input = child.stdin.take().expect("piped stdin");
    let data = stdin.to_vec();
    let writer = std::thread::spawn(move || {
        // The child may exit early and close its end; that is its answer.
        let _ = input.write_all(&data);
    });
    let out = child.wait_with_output().expect("wait for child");
    writer.join().expect("stdin writer");
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn free_port_is_bindable() {
        let p = free_port();
        TcpListener::bind(("127.0.0.1", p)).expect("the port is free");
    }

    #[test]
    fn finds_programs_on_path() {
        assert!(find_program("sh", &[]).is_some());
        assert!(find_program("no-such-program-vigil", &[]).is_none());
    }

    #[test]
    fn feeds_stdin() {
        let out = run_with_stdin(&mut Command::new("cat"), b"hello");
        assert_eq!(out.stdout, b"hello");
    }
}
