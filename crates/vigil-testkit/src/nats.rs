//! A throwaway `nats-server` with JetStream: Debian's, on a free port of
//! 127.0.0.1, storing streams in its own temporary directory, killed on
//! drop.
//!
//! [`NatsServer::stop`] ends it gracefully (SIGTERM) and keeps the storage
//! directory; [`NatsServer::start_again`] brings it back on the same port
//! with the same storage, so JetStream streams and their messages survive,
//! as they would across a real server restart.
//!
//! ```no_run
//! use vigil_testkit::nats::NatsServer;
//!
//! let mut nats = NatsServer::start().unwrap();
//! assert!(nats.url().starts_with("127.0.0.1:"));
//! nats.stop();
//! nats.start_again().unwrap();
//! ```

use std::ffi::OsString;
use std::fs;
use std::io::{self, BufRead, BufReader};
use std::net::TcpStream;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use crate::daemon::{self, Launch};

/// How long the server may take to greet its first client.
const START_TIMEOUT: Duration = Duration::from_secs(15);
/// How long a SIGTERM may take before the server is killed.
const STOP_TIMEOUT: Duration = Duration::from_secs(10);
/// How many lines of the server log an error shows.
const LOG_TAIL_LINES: usize = 30;

/// Options for a [`NatsServer`]: credentials and TLS.
#[derive(Clone, Default)]
pub struct NatsServerBuilder {
    user: Option<(String, String)>,
    token: Option<String>,
    tls: Option<(PathBuf, PathBuf)>,
}

impl std::fmt::Debug for NatsServerBuilder {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("NatsServerBuilder")
            .field("user", &self.user.as_ref().map(|(u, _)| u))
            .field("token", &self.token.as_ref().map(|_| "<redacted>"))
            .field("tls", &self.tls)
            .finish()
    }
}

impl NatsServerBuilder {
    /// Requires clients to log in as `user` with `password` (`--user`,
    /// `--pass`).
    pub fn user(mut self, user: impl Into<String>, password: impl Into<String>) -> Self {
        self.user = Some((user.into(), password.into()));
        self
    }

    /// Requires clients to present `token` (`--auth`).
    pub fn token(mut self, token: impl Into<String>) -> Self {
        self.token = Some(token.into());
        self
    }

    /// Requires TLS with this certificate and key (PEM files; `--tls
    /// --tlscert --tlskey`). The server still greets in plain text, then
    /// expects the handshake, as NATS clients do it.
    pub fn tls(mut self, cert: impl Into<PathBuf>, key: impl Into<PathBuf>) -> Self {
        self.tls = Some((cert.into(), key.into()));
        self
    }

    /// Starts the server and waits until it greets a client (at most 15 s).
    ///
    /// Fails if `nats-server` is not installed (run `./scripts/test`, which
    /// installs the Debian package `nats-server`) or does not start; the
    /// error then shows the end of the server log.
    pub fn start(self) -> io::Result<NatsServer> {
        let program = program()?;
        let dir = crate::tempdir();
        let store = dir.path().join("js");
        let log = dir.path().join("server.log");
        let mut args: Vec<OsString> = Vec::new();
        if let Some((user, password)) = &self.user {
            args.extend([
                "--user".into(),
                user.into(),
                "--pass".into(),
                password.into(),
            ]);
        }
        if let Some(token) = &self.token {
            args.extend(["--auth".into(), token.into()]);
        }
        if let Some((cert, key)) = &self.tls {
            args.extend([
                "--tls".into(),
                "--tlscert".into(),
                cert.into(),
                "--tlskey".into(),
                key.into(),
            ]);
        }
        let mut server = NatsServer {
            child: None,
            port: 0,
            program,
            args,
            store,
            log,
            dir,
        };
        daemon::retry("nats-server", Duration::ZERO, || {
            server.launch(crate::free_port())
        })?;
        Ok(server)
    }
}

/// A running `nats-server` with JetStream, killed when dropped.
#[derive(Debug)]
pub struct NatsServer {
    child: Option<Child>,
    port: u16,
    program: PathBuf,
    /// Arguments beyond JetStream, address and port (credentials, TLS).
    args: Vec<OsString>,
    store: PathBuf,
    log: PathBuf,
    dir: tempfile::TempDir,
}

impl NatsServer {
    /// Options: credentials, TLS.
    pub fn builder() -> NatsServerBuilder {
        NatsServerBuilder::default()
    }

    /// Starts a server without credentials or TLS.
    pub fn start() -> io::Result<NatsServer> {
        NatsServer::builder().start()
    }

    /// Starts `nats-server` on `port` and waits until it greets a client.
    fn launch(&mut self, port: u16) -> Result<(), Launch> {
        self.port = port;
        let log_start = fs::metadata(&self.log).map(|m| m.len()).unwrap_or(0);
        let log_file = fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(&self.log)
            .map_err(Launch::Failed)?;
        let stderr = log_file.try_clone().map_err(Launch::Failed)?;
        let mut cmd = Command::new(&self.program);
        cmd.arg("-js")
            .arg("-sd")
            .arg(&self.store)
            .args(["-a", "127.0.0.1", "-p"])
            .arg(port.to_string())
            .args(&self.args)
            .current_dir(self.dir.path())
            .stdin(Stdio::null())
            .stdout(log_file)
            .stderr(stderr);
        let child = cmd.spawn().map_err(|e| {
            Launch::Failed(io::Error::new(
                e.kind(),
                format!("spawn {}: {e}", self.program.display()),
            ))
        })?;
        self.child = Some(child);

        let deadline = Instant::now() + START_TIMEOUT;
        loop {
            if let Some(child) = &mut self.child
                && let Ok(Some(status)) = child.try_wait()
            {
                self.child = None;
                let log = self.log_since(log_start);
                let err = io::Error::other(format!(
                    "nats-server exited with {status} while starting; the end of its log:\n{}",
                    tail(&log)
                ));
                return Err(if log.contains("address already in use") {
                    Launch::PortTaken(err)
                } else {
                    Launch::Failed(err)
                });
            }
            // The greeting must come from our child: check it still runs.
            if greeting(port).is_some()
                && let Some(child) = &mut self.child
                && matches!(child.try_wait(), Ok(None))
            {
                return Ok(());
            }
            if Instant::now() >= deadline {
                self.kill();
                return Err(Launch::Failed(io::Error::new(
                    io::ErrorKind::TimedOut,
                    format!(
                        "nats-server did not greet a client within {} s; the end of its log:\n{}",
                        START_TIMEOUT.as_secs(),
                        tail(&self.log_since(log_start))
                    ),
                )));
            }
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    /// The port it listens on, on 127.0.0.1.
    pub fn port(&self) -> u16 {
        self.port
    }

    /// `127.0.0.1:PORT`.
    pub fn url(&self) -> String {
        format!("127.0.0.1:{}", self.port)
    }

    /// The JetStream storage directory (`-sd`), kept across
    /// [`stop`](Self::stop) and [`start_again`](Self::start_again).
    pub fn store_dir(&self) -> &Path {
        &self.store
    }

    /// Whether the server process is running.
    pub fn is_running(&mut self) -> bool {
        match &mut self.child {
            Some(child) => matches!(child.try_wait(), Ok(None)),
            None => false,
        }
    }

    /// The text of the server log so far, across restarts.
    pub fn log(&self) -> String {
        self.log_since(0)
    }

    fn log_since(&self, offset: u64) -> String {
        let bytes = fs::read(&self.log).unwrap_or_default();
        let start = usize::try_from(offset).unwrap_or(0).min(bytes.len());
        String::from_utf8_lossy(&bytes[start..]).into_owned()
    }

    /// Stops the server gracefully (SIGTERM, so JetStream writes out its
    /// streams) and waits for it to exit; kills it if it takes longer than
    /// 10 s. Keeps the storage directory. Does nothing when it is not
    /// running.
    pub fn stop(&mut self) {
        if let Some(child) = self.child.take() {
            daemon::terminate(child, STOP_TIMEOUT);
        }
    }

    /// Starts the server again after [`stop`](Self::stop), on the same port
    /// with the same storage and options, and waits until it greets a
    /// client. Stops it first if it is running.
    pub fn start_again(&mut self) -> io::Result<()> {
        self.stop();
        let port = self.port;
        // The old process's socket may linger for a moment.
        daemon::retry("nats-server", Duration::from_millis(300), || {
            self.launch(port)
        })
    }

    /// Kills the server at once (SIGKILL) and waits for it to exit.
    fn kill(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}

impl Drop for NatsServer {
    fn drop(&mut self) {
        self.kill();
    }
}

/// The `nats-server` binary, or an error saying how to install it.
fn program() -> io::Result<PathBuf> {
    crate::find_program(
        "nats-server",
        &[Path::new("/usr/sbin"), Path::new("/usr/bin")],
    )
    .ok_or_else(|| {
        io::Error::new(
            io::ErrorKind::NotFound,
            "nats-server is not installed (looked in /usr/sbin, /usr/bin and on PATH); run \
             ./scripts/test, which installs the Debian package nats-server",
        )
    })
}

/// The `INFO {…}` line a NATS server on `port` greets with, if it does.
fn greeting(port: u16) -> Option<String> {
    let stream = TcpStream::connect(("127.0.0.1", port)).ok()?;
    stream.set_read_timeout(Some(Duration::from_secs(1))).ok()?;
    let mut line = String::new();
    BufReader::new(stream).read_line(&mut line).ok()?;
    line.starts_with("INFO ").then_some(line)
}

/// The last lines of a log.
fn tail(log: &str) -> String {
    let lines: Vec<&str> = log.lines().collect();
    lines[lines.len().saturating_sub(LOG_TAIL_LINES)..].join("\n")
}

#[cfg(test)]
mod tests {
    use std::io::{Read, Write};

    use super::*;

    /// Sends `input` after the greeting and returns what the server
    /// answered until `until` appears and a line ends (or 5 s pass).
    fn exchange(port: u16, input: &[u8], until: &str) -> String {
        let mut s = TcpStream::connect(("127.0.0.1", port)).unwrap();
        s.set_read_timeout(Some(Duration::from_millis(100)))
            .unwrap();
        s.write_all(input).unwrap();
        let deadline = Instant::now() + Duration::from_secs(5);
        let mut out = Vec::new();
        let mut buf = [0u8; 4096];
        while Instant::now() < deadline
            && !(String::from_utf8_lossy(&out).contains(until) && out.ends_with(b"\r\n"))
        {
            match s.read(&mut buf) {
                Ok(0) => break,
                Ok(n) => out.extend_from_slice(&buf[..n]),
                Err(_) => {}
            }
        }
        String::from_utf8_lossy(&out).into_owned()
    }

    fn request(port: u16, subject: &str, payload: &str) -> String {
        let input = format!(
            "CONNECT {{\"verbose\":false}}\r\nSUB _INBOX.t 1\r\nPUB {subject} _INBOX.t {}\r\n{payload}\r\n",
            payload.len()
        );
        exchange(port, input.as_bytes(), "MSG _INBOX.t")
    }

    #[test]
    fn starts_stops_and_keeps_streams_across_restarts() {
        let mut nats = NatsServer::start().unwrap();
        let port = nats.port();
        assert_eq!(nats.url(), format!("127.0.0.1:{port}"));
        let info = greeting(port).unwrap();
        assert!(info.contains("\"jetstream\":true"), "{info}");

        let created = request(
            port,
            "$JS.API.STREAM.CREATE.KEEP",
            r#"{"name":"KEEP","subjects":["keep.it"],"storage":"file"}"#,
        );
        assert!(created.contains("stream_create_response"), "{created}");
        assert!(!created.contains("\"error\""), "{created}");

        nats.stop();
        assert!(!nats.is_running());
        assert!(TcpStream::connect(("127.0.0.1", port)).is_err());
        assert!(nats.store_dir().exists());

        nats.start_again().unwrap();
        assert_eq!(nats.port(), port);
        let info = request(port, "$JS.API.STREAM.INFO.KEEP", "");
        assert!(info.contains("stream_info_response"), "{info}");
        assert!(!info.contains("\"error\""), "{info}");
        assert!(nats.log().contains("Starting JetStream"));
    }

    #[test]
    fn with_a_user_refuses_strangers() {
        let nats = NatsServer::builder()
            .user("vigil", "s3cret")
            .start()
            .unwrap();
        let refused = exchange(
            nats.port(),
            b"CONNECT {\"verbose\":false}\r\nPING\r\n",
            "Violation",
        );
        assert!(refused.contains("Authorization Violation"), "{refused}");
        let welcome = exchange(
            nats.port(),
            b"CONNECT {\"verbose\":false,\"user\":\"vigil\",\"pass\":\"s3cret\"}\r\nPING\r\n",
            "PONG",
        );
        assert!(welcome.contains("PONG"), "{welcome}");
        assert!(!format!("{:?}", NatsServer::builder().token("t0k3n")).contains("t0k3n"));
    }
}
