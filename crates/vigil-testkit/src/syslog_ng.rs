//! A throwaway `syslog-ng`: Debian's, listening on free ports of 127.0.0.1
//! for syslog over TCP and TLS (RFC 6587 octet counting, RFC 5425), writing
//! every message it parses as one JSON object per line, in its own temporary
//! directory, killed on drop.
//!
//! ```no_run
//! use std::io::Write;
//! use std::time::Duration;
//!
//! let syslog_ng = vigil_testkit::syslog_ng::SyslogNg::builder().tcp().start()?;
//! let mut tcp = std::net::TcpStream::connect(("127.0.0.1", syslog_ng.tcp_port()))?;
//! tcp.write_all(b"32 <13>1 - host app - ID1 - hello")?;
//! let lines = syslog_ng.wait_for_lines(1, Duration::from_secs(5));
//! assert!(lines[0].contains(r#""MSGID":"ID1""#));
//! # Ok::<(), std::io::Error>(())
//! ```
//!
//! # Where syslog-ng comes from
//!
//! Debian's `syslog-ng-core` conflicts with `rsyslog`, which the other
//! tests need, so `scripts/test` unpacks it (and the libraries it needs that
//! are not installed) with `dpkg -x` under `target/syslog-ng` and names that
//! directory in `VIGIL_TEST_SYSLOG_NG`. The server is taken from, in order:
//! `$VIGIL_TEST_SYSLOG_NG`, `target/syslog-ng` of this workspace, an
//! installed `syslog-ng`. An unpacked one runs with its own libraries
//! (`LD_LIBRARY_PATH`) and modules (`--module-path`).
//!
//! # What the server does
//!
//! Each enabled input is a `syslog()` source on its own port of 127.0.0.1,
//! which parses RFC 5424 (and RFC 3164) messages, octet-counted as RFC 6587
//! frames them. Every message is written to
//! [`output_path`](SyslogNg::output_path) as `$(format-json --scope rfc5424
//! --scope sdata --key ISODATE)`: `HOST`, `PROGRAM`, `PID`, `MSGID`,
//! `MESSAGE`, `ISODATE`, and the structured data under `_SDATA`, as
//! syslog-ng parsed them, so a test sees what an independent parser made of
//! what it sent. Control socket, persist file and pid file are in the
//! temporary directory; nothing touches the system's logs.

use std::ffi::OsString;
use std::fs::{self, OpenOptions};
use std::io;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use crate::daemon::{self, POLL, file_len, quoted, read_from};

/// How long syslog-ng may take to bind its ports.
const START_TIMEOUT: Duration = Duration::from_secs(15);
/// How long syslog-ng may take to exit after SIGTERM before it is killed.
const STOP_TIMEOUT: Duration = Duration::from_secs(10);
/// The largest message syslog-ng accepts.
const MAX_MESSAGE_SIZE: u32 = 256 * 1024;

/// The syslog-ng binary and how to run it.
#[derive(Clone, Debug)]
struct Program {
    binary: PathBuf,
    /// `--module-path`, for an unpacked copy.
    modules: Option<PathBuf>,
    /// `LD_LIBRARY_PATH`, for an unpacked copy.
    libraries: Option<OsString>,
}

/// Settings of the TLS input.
#[derive(Clone, Debug)]
struct TlsInput {
    cert: PathBuf,
    key: PathBuf,
    ca: PathBuf,
}

/// Which inputs a [`SyslogNg`] gets; from [`SyslogNg::builder`].
#[derive(Clone, Debug, Default)]
pub struct SyslogNgBuilder {
    tcp: bool,
    tls: Option<TlsInput>,
}

impl SyslogNgBuilder {
    /// Listen for syslog over plain TCP (RFC 6587 octet counting).
    pub fn tcp(mut self) -> Self {
        self.tcp = true;
        self
    }

    /// Listen for syslog over TLS (RFC 5425) with the server certificate
    /// `cert` and its key `key` (PEM files); a client certificate, when
    /// one is presented, must be issued by `ca`.
    pub fn tls(
        mut self,
        cert: impl AsRef<Path>,
        key: impl AsRef<Path>,
        ca: impl AsRef<Path>,
    ) -> Self {
        self.tls = Some(TlsInput {
            cert: cert.as_ref().to_path_buf(),
            key: key.as_ref().to_path_buf(),
            ca: ca.as_ref().to_path_buf(),
        });
        self
    }

    /// Starts syslog-ng and waits until it holds its ports.
    ///
    /// Fails when no input was chosen, when no syslog-ng is found, or when
    /// it exits or does not bind its ports in time; the error carries its
    /// log.
    pub fn start(self) -> io::Result<SyslogNg> {
        if !self.tcp && self.tls.is_none() {
            return Err(io::Error::new(
                io::ErrorKind::InvalidInput,
                "syslog-ng needs at least one input: call tcp() or tls() before start()",
            ));
        }
        let program = program()?;
        let dir = crate::tempdir();
        let mut server = SyslogNg {
            program,
            child: None,
            tcp_port: None,
            tls_port: None,
            conf: dir.path().join("syslog-ng.conf"),
            output: dir.path().join("messages.jsonl"),
            stderr: dir.path().join("syslog-ng.stderr"),
            dir,
        };
        daemon::retry("syslog-ng", Duration::ZERO, || {
            server.tcp_port = self.tcp.then(crate::free_port);
            server.tls_port = self.tls.as_ref().map(|_| crate::free_port());
            fs::write(&server.conf, server.config(self.tls.as_ref()))?;
            Ok(server.launch()?)
        })?;
        Ok(server)
    }
}

/// A running `syslog-ng`, killed when dropped.
#[derive(Debug)]
pub struct SyslogNg {
    program: Program,
    child: Option<Child>,
    tcp_port: Option<u16>,
    tls_port: Option<u16>,
    conf: PathBuf,
    output: PathBuf,
    stderr: PathBuf,
    dir: tempfile::TempDir,
}

impl SyslogNg {
    /// A builder: choose the inputs, then [`start`](SyslogNgBuilder::start).
    pub fn builder() -> SyslogNgBuilder {
        SyslogNgBuilder::default()
    }

    /// The plain TCP port on 127.0.0.1. Panics without
    /// [`tcp`](SyslogNgBuilder::tcp).
    pub fn tcp_port(&self) -> u16 {
        self.tcp_port.expect("syslog-ng was started without tcp()")
    }

    /// The TLS port on 127.0.0.1. Panics without
    /// [`tls`](SyslogNgBuilder::tls).
    pub fn tls_port(&self) -> u16 {
        self.tls_port.expect("syslog-ng was started without tls()")
    }

    /// The file every parsed message is appended to, one JSON object per
    /// line.
    pub fn output_path(&self) -> &Path {
        &self.output
    }

    /// The complete lines of the output so far.
    pub fn lines(&self) -> Vec<String> {
        daemon::lines(&self.output)
    }

    /// The output's lines once there are at least `n`, or whatever there is
    /// after `timeout`.
    pub fn wait_for_lines(&self, n: usize, timeout: Duration) -> Vec<String> {
        daemon::wait_for_lines(&self.output, n, timeout)
    }

    /// syslog-ng's standard error and its configuration, for assertion
    /// messages.
    pub fn log(&self) -> String {
        let stderr = fs::read_to_string(&self.stderr).unwrap_or_default();
        let conf = fs::read_to_string(&self.conf).unwrap_or_default();
        format!("--- syslog-ng standard error ---\n{stderr}--- syslog-ng.conf ---\n{conf}")
    }

    /// Stops syslog-ng (SIGTERM, then SIGKILL after 10 s).
    pub fn stop(&mut self) {
        if let Some(child) = self.child.take() {
            daemon::terminate(child, STOP_TIMEOUT);
        }
    }

    /// Starts syslog-ng again on the same ports after [`stop`](Self::stop).
    pub fn start_again(&mut self) -> io::Result<()> {
        if let Some(child) = &mut self.child
            && matches!(child.try_wait(), Ok(None))
        {
            return Err(io::Error::new(
                io::ErrorKind::AlreadyExists,
                "syslog-ng is running: stop() it before start_again()",
            ));
        }
        self.launch()
    }

    fn launch(&mut self) -> io::Result<()> {
        let stderr_before = file_len(&self.stderr);
        let stderr = OpenOptions::new()
            .create(true)
            .append(true)
            .open(&self.stderr)?;
        let dir = self.dir.path();
        let mut command = Command::new(&self.program.binary);
        command
            .arg("-F")
            .arg("--no-caps")
            .arg("-f")
            .arg(&self.conf)
            .arg("-R")
            .arg(dir.join("syslog-ng.persist"))
            .arg("-p")
            .arg(dir.join("syslog-ng.pid"))
            .arg("-c")
            .arg(dir.join("syslog-ng.ctl"));
        if let Some(modules) = &self.program.modules {
            command.arg("--module-path").arg(modules);
        }
        if let Some(libraries) = &self.program.libraries {
            command.env("LD_LIBRARY_PATH", libraries);
        }
        let child = command
            .current_dir(dir)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(stderr)
            .spawn()
            .map_err(|e| {
                io::Error::new(
                    e.kind(),
                    format!("cannot start {}: {e}", self.program.binary.display()),
                )
            })?;
        let pid = child.id();
        self.child = Some(child);
        let ports: Vec<u16> = [self.tcp_port, self.tls_port]
            .into_iter()
            .flatten()
            .collect();
        let deadline = Instant::now() + START_TIMEOUT;
        loop {
            if let Some(child) = &mut self.child
                && let Ok(Some(status)) = child.try_wait()
            {
                self.child = None;
                let errors = read_from(&self.stderr, stderr_before);
                let kind = if errors.contains("Address already in use") {
                    io::ErrorKind::AddrInUse
                } else {
                    io::ErrorKind::Other
                };
                return Err(io::Error::new(
                    kind,
                    daemon::exited("syslog-ng", status, &self.log()).to_string(),
                ));
            }
            if daemon::holds_ports(pid, &ports, &[]) {
                return Ok(());
            }
            if Instant::now() >= deadline {
                self.stop();
                return Err(io::Error::new(
                    io::ErrorKind::TimedOut,
                    format!(
                        "syslog-ng did not bind its ports within {START_TIMEOUT:?}\n{}",
                        self.log()
                    ),
                ));
            }
            std::thread::sleep(POLL);
        }
    }

    fn config(&self, tls: Option<&TlsInput>) -> String {
        let mut conf = format!(
            "@version: 3.38\n\
             # Generated by vigil-testkit: a throwaway syslog-ng for tests.\n\
             options {{ stats_freq(0); keep_hostname(yes); log_msg_size({MAX_MESSAGE_SIZE}); }};\n\
             destination d_vigil {{ file(\"{output}\" template(\"$(format-json --scope rfc5424 \
             --scope sdata --key ISODATE)\\n\")); }};\n",
            output = quoted(&self.output),
        );
        if let Some(port) = self.tcp_port {
            conf.push_str(&format!(
                "source s_tcp {{ syslog(ip(\"127.0.0.1\") port({port}) transport(\"tcp\")); }};\n\
                 log {{ source(s_tcp); destination(d_vigil); }};\n"
            ));
        }
        if let (Some(port), Some(tls)) = (self.tls_port, tls) {
            conf.push_str(&format!(
                "source s_tls {{ syslog(ip(\"127.0.0.1\") port({port}) transport(\"tls\")\n  \
                 tls(key-file(\"{key}\") cert-file(\"{cert}\") ca-file(\"{ca}\") \
                 peer-verify(optional-trusted))); }};\n\
                 log {{ source(s_tls); destination(d_vigil); }};\n",
                key = quoted(&tls.key),
                cert = quoted(&tls.cert),
                ca = quoted(&tls.ca),
            ));
        }
        conf
    }
}

impl Drop for SyslogNg {
    fn drop(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}

/// Finds syslog-ng: unpacked under `$VIGIL_TEST_SYSLOG_NG` or this
/// workspace's `target/syslog-ng`, or installed.
fn program() -> io::Result<Program> {
    let unpacked = std::env::var_os("VIGIL_TEST_SYSLOG_NG")
        .map(PathBuf::from)
        .into_iter()
        .chain([Path::new(env!("CARGO_MANIFEST_DIR")).join("../../target/syslog-ng")]);
    for root in unpacked {
        let binary = root.join("usr/sbin/syslog-ng");
        if binary.is_file() {
            return Ok(unpacked_program(&root, binary));
        }
    }
    if let Some(binary) =
        crate::find_program("syslog-ng", &[Path::new("/usr/sbin"), Path::new("/sbin")])
    {
        return Ok(Program {
            binary,
            modules: None,
            libraries: None,
        });
    }
    Err(io::Error::new(
        io::ErrorKind::NotFound,
        "syslog-ng not found: scripts/test unpacks Debian's syslog-ng-core under \
         target/syslog-ng (the package conflicts with rsyslog); or set VIGIL_TEST_SYSLOG_NG \
         to a directory holding usr/sbin/syslog-ng",
    ))
}

/// How to run the copy unpacked under `root`: its modules directory and
/// every directory of shared libraries it brought.
fn unpacked_program(root: &Path, binary: PathBuf) -> Program {
    let lib = root.join("usr/lib/syslog-ng");
    let modules = fs::read_dir(&lib).ok().and_then(|entries| {
        entries
            .filter_map(Result::ok)
            .map(|e| e.path())
            .find(|p| p.join("libafsocket.so").is_file())
    });
    let mut dirs = vec![lib];
    for base in ["usr/lib", "lib"] {
        if let Ok(entries) = fs::read_dir(root.join(base)) {
            dirs.extend(
                entries
                    .filter_map(Result::ok)
                    .map(|e| e.path())
                    .filter(|p| p.is_dir() && p.to_string_lossy().ends_with("-linux-gnu")),
            );
        }
    }
    let libraries = std::env::join_paths(dirs).ok();
    Program {
        binary,
        modules,
        libraries,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Write;
    use std::net::TcpStream;

    const WAIT: Duration = Duration::from_secs(10);

    #[test]
    fn parses_octet_counted_rfc5424_over_tcp() {
        let mut syslog_ng = SyslogNg::builder().tcp().start().unwrap();
        let message =
            br#"<13>1 2026-11-26T21:00:00Z host app 42 ID1 [x@32473 k="a \"q\" \] b"] hi"#;
        let mut tcp = TcpStream::connect(("127.0.0.1", syslog_ng.tcp_port())).unwrap();
        write!(tcp, "{} ", message.len()).unwrap();
        tcp.write_all(message).unwrap();
        drop(tcp);
        let lines = syslog_ng.wait_for_lines(1, WAIT);
        assert_eq!(lines.len(), 1, "{}", syslog_ng.log());
        let got: serde_json::Value = serde_json::from_str(&lines[0]).unwrap();
        assert_eq!(got["HOST"], "host");
        assert_eq!(got["PROGRAM"], "app");
        assert_eq!(got["PID"], "42");
        assert_eq!(got["MSGID"], "ID1");
        assert_eq!(got["MESSAGE"], "hi");
        assert_eq!(got["_SDATA"]["x@32473"]["k"], r#"a "q" ] b"#);

        syslog_ng.stop();
        assert!(TcpStream::connect(("127.0.0.1", syslog_ng.tcp_port())).is_err());
        syslog_ng.start_again().unwrap();
        let mut tcp = TcpStream::connect(("127.0.0.1", syslog_ng.tcp_port())).unwrap();
        tcp.write_all(b"30 <13>1 - host app - ID2 - again").unwrap();
        drop(tcp);
        let lines = syslog_ng.wait_for_lines(2, WAIT);
        assert_eq!(lines.len(), 2, "{}", syslog_ng.log());
        assert!(lines[1].contains(r#""MSGID":"ID2""#), "{}", lines[1]);
    }

    #[test]
    fn needs_an_input() {
        let err = SyslogNg::builder().start().unwrap_err();
        assert_eq!(err.kind(), io::ErrorKind::InvalidInput);
    }
}
