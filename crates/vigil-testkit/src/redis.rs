//! A throwaway `redis-server`: Debian's, on a free port of 127.0.0.1, with
//! no persistence, in its own temporary directory, killed on drop.
//!
//! ```no_run
//! let redis = vigil_testkit::redis::RedisServer::start();
//! assert!(redis.url().starts_with("redis://127.0.0.1:"));
//! ```

use std::io::{Read, Write};
use std::net::TcpStream;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// How long the server may take to answer its first PING.
const START_TIMEOUT: Duration = Duration::from_secs(15);
/// How many ports to try when another process takes the free one first.
const ATTEMPTS: usize = 5;

/// A running `redis-server`, killed when dropped.
#[derive(Debug)]
pub struct RedisServer {
    child: Option<Child>,
    port: u16,
    password: Option<String>,
    dir: tempfile::TempDir,
}

impl RedisServer {
    /// Starts a server without a password and waits until it answers PING.
    ///
    /// Panics if `redis-server` is not installed (run `./scripts/test`, which
    /// installs it) or does not start.
    pub fn start() -> RedisServer {
        RedisServer::launch(None)
    }

    /// Starts a server that requires `password` (`--requirepass`).
    pub fn start_with_password(password: &str) -> RedisServer {
        RedisServer::launch(Some(password.to_owned()))
    }

    fn launch(password: Option<String>) -> RedisServer {
        let program = program();
        let mut dir = crate::tempdir();
        let mut last_log = String::new();
        for _ in 0..ATTEMPTS {
            let port = crate::free_port();
            let log = dir.path().join(format!("redis-{port}.log"));
            let mut cmd = Command::new(&program);
            cmd.arg("--port")
                .arg(port.to_string())
                .args(["--bind", "127.0.0.1"])
                .args(["--save", ""])
                .args(["--appendonly", "no"])
                .args(["--daemonize", "no"])
                .arg("--dir")
                .arg(dir.path())
                .arg("--logfile")
                .arg(&log)
                .stdin(Stdio::null())
                .stdout(Stdio::null())
                .stderr(Stdio::null());
            if let Some(pw) = &password {
                cmd.arg("--requirepass").arg(pw);
            }
            let child = cmd
                .spawn()
                .unwrap_or_else(|e| panic!("cannot start {program:?}: {e}"));
            let mut server = RedisServer {
                child: Some(child),
                port,
                password: password.clone(),
                dir,
            };
            if server.wait_ready() {
                return server;
            }
            server.stop();
            last_log = std::fs::read_to_string(&log).unwrap_or_default();
            dir = std::mem::replace(&mut server.dir, crate::tempdir());
        }
        panic!("redis-server did not start after {ATTEMPTS} attempts; its last log:\n{last_log}");
    }

    /// Waits until the server answers PING (with PONG, or NOAUTH when it
    /// has a password); false if it exits or the time runs out.
    fn wait_ready(&mut self) -> bool {
        let deadline = Instant::now() + START_TIMEOUT;
        while Instant::now() < deadline {
            if let Some(child) = &mut self.child
                && matches!(child.try_wait(), Ok(Some(_)))
            {
                return false;
            }
            if ping(self.port) {
                return true;
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        false
    }

    /// The port it listens on, on 127.0.0.1.
    pub fn port(&self) -> u16 {
        self.port
    }

    /// `redis://127.0.0.1:PORT/0`, with `:password@` when it has one.
    pub fn url(&self) -> String {
        match &self.password {
            Some(pw) => format!("redis://:{pw}@127.0.0.1:{}/0", self.port),
            None => format!("redis://127.0.0.1:{}/0", self.port),
        }
    }

    /// The server's working directory.
    pub fn dir(&self) -> &Path {
        self.dir.path()
    }

    /// Kills the server and waits for it to exit. Does nothing the second
    /// time.
    pub fn stop(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}

impl Drop for RedisServer {
    fn drop(&mut self) {
        self.stop();
    }
}

/// The `redis-server` binary, or a panic saying how to install it.
fn program() -> PathBuf {
    crate::find_program(
        "redis-server",
        &[Path::new("/usr/bin"), Path::new("/usr/sbin")],
    )
    .unwrap_or_else(|| {
        panic!(
            "redis-server is not installed (looked on PATH and in /usr/bin); run \
                 ./scripts/test, which installs the Debian package redis-server"
        )
    })
}

/// True when something on `port` answers a RESP PING like Redis.
fn ping(port: u16) -> bool {
    let Ok(mut s) = TcpStream::connect(("127.0.0.1", port)) else {
        return false;
    };
    let _ = s.set_read_timeout(Some(Duration::from_secs(1)));
    if s.write_all(b"*1\r\n$4\r\nPING\r\n").is_err() {
        return false;
    }
    let mut buf = [0u8; 64];
    match s.read(&mut buf) {
        Ok(n) => buf[..n].starts_with(b"+PONG") || buf[..n].starts_with(b"-NOAUTH"),
        Err(_) => false,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn starts_answers_and_stops() {
        let mut redis = RedisServer::start();
        assert!(ping(redis.port()));
        redis.stop();
        assert!(!ping(redis.port()));
    }

    #[test]
    fn with_password_refuses_unauthenticated_commands() {
        let redis = RedisServer::start_with_password("s3cret");
        assert!(redis.url().starts_with("redis://:s3cret@127.0.0.1:"));
        let mut s = TcpStream::connect(("127.0.0.1", redis.port())).unwrap();
        s.write_all(b"*2\r\n$3\r\nGET\r\n$1\r\nk\r\n").unwrap();
        let mut buf = [0u8; 64];
        let n = s.read(&mut buf).unwrap();
        assert!(
            buf[..n].starts_with(b"-NOAUTH"),
            "{:?}",
            String::from_utf8_lossy(&buf[..n])
        );
    }
}
