//! A throwaway `rsyslogd`: Debian's, listening on free ports of 127.0.0.1
//! for syslog over UDP, TCP and TLS, writing every message it receives to
//! one file, in its own temporary directory, killed on drop.
//!
//! ```no_run
//! use std::time::Duration;
//!
//! let rsyslog = vigil_testkit::rsyslog::Rsyslog::builder().udp().tcp().start()?;
//! let socket = std::net::UdpSocket::bind("127.0.0.1:0")?;
//! socket.send_to(b"<13>1 - - - - - - hello", ("127.0.0.1", rsyslog.udp_port()))?;
//! let lines = rsyslog.wait_for_lines(1, Duration::from_secs(5));
//! assert_eq!(lines, ["<13>1 - - - - - - hello"]);
//! # Ok::<(), std::io::Error>(())
//! ```
//!
//! # What the server does
//!
//! The generated configuration loads only `imudp` and `imtcp`: no
//! `imuxsock`, no `imklog`, so it never touches `/dev/log` nor the
//! system's logs, and it has its own work directory and pid file. Each
//! enabled input listens on its own port of 127.0.0.1:
//!
//! - [`udp`](RsyslogBuilder::udp): `imudp`, one message per datagram;
//! - [`tcp`](RsyslogBuilder::tcp): `imtcp`, octet-counted frames
//!   (`<len> <msg>`, RFC 6587) or lines;
//! - [`tls`](RsyslogBuilder::tls): a second `imtcp` input with the `gtls`
//!   stream driver in TLS-only mode (RFC 5425), authenticating clients by
//!   certificate (`x509/certvalid`) or not at all (`anon`).
//!
//! One process serves any combination of the three (rsyslog 8.2108 and
//! later take the stream driver settings per input). With TLS, starting
//! takes longer, from a tenth of a second to a few seconds: rsyslog's
//! `gtls` driver generates Diffie-Hellman parameters every time it starts.
//!
//! Every message received on them is appended to
//! [`output_path`](Rsyslog::output_path) with the template `%rawmsg%\n`:
//! the message as received, without the octet count of its frame. rsyslog
//! still applies its reception defaults: a trailing LF (or NUL) is dropped
//! and control characters are written as `#` and three octal digits (LF is
//! `#012`), so each message is exactly one line. rsyslog's own messages
//! (errors, such as a failed handshake) go to its standard error, which
//! [`log`](Rsyslog::log) returns.
//!
//! # Readiness
//!
//! [`start`](RsyslogBuilder::start) returns once rsyslog holds every
//! configured port: a listening TCP socket or a bound UDP socket, on the
//! port, whose inode is among rsyslog's open files (from `/proc/net/*` and
//! `/proc/<pid>/fd`). No probe message is sent, so the output file holds
//! only what the test sent. When rsyslog reports that it could not bind a
//! port (another process took it first), it is stopped and started again on
//! new ports.

use std::fs::{self, OpenOptions};
use std::io;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use crate::daemon::{self, POLL, file_len, quoted, read_from};

/// How long rsyslog may take to bind its ports.
const START_TIMEOUT: Duration = Duration::from_secs(15);
/// How long rsyslog may take to exit after SIGTERM before it is killed.
const STOP_TIMEOUT: Duration = Duration::from_secs(10);
/// The largest message rsyslog accepts (its default is 8 KiB).
const MAX_MESSAGE_SIZE: &str = "256k";

/// Settings of the TLS input.
#[derive(Clone, Debug)]
struct TlsInput {
    cert: PathBuf,
    key: PathBuf,
    ca: PathBuf,
    require_client_cert: bool,
}

/// Which inputs a [`Rsyslog`] gets; from [`Rsyslog::builder`].
#[derive(Clone, Debug, Default)]
pub struct RsyslogBuilder {
    udp: bool,
    tcp: bool,
    tls: Option<TlsInput>,
}

impl RsyslogBuilder {
    /// Listen for syslog over UDP (RFC 5426).
    pub fn udp(mut self) -> Self {
        self.udp = true;
        self
    }

    /// Listen for syslog over plain TCP (RFC 6587: octet counting or lines).
    pub fn tcp(mut self) -> Self {
        self.tcp = true;
        self
    }

    /// Listen for syslog over TLS (RFC 5425) with the server certificate
    /// `cert` and its key `key` (PEM files), trusting client certificates
    /// issued by `ca`. With `require_client_cert`, a client must present a
    /// certificate issued by `ca` (rsyslog's `x509/certvalid`; rsyslog checks
    /// it after the handshake and closes the connection when it is missing
    /// or invalid); without it, clients are not authenticated (`anon`).
    pub fn tls(
        mut self,
        cert: impl AsRef<Path>,
        key: impl AsRef<Path>,
        ca: impl AsRef<Path>,
        require_client_cert: bool,
    ) -> Self {
        self.tls = Some(TlsInput {
            cert: cert.as_ref().to_path_buf(),
            key: key.as_ref().to_path_buf(),
            ca: ca.as_ref().to_path_buf(),
            require_client_cert,
        });
        self
    }

    /// Starts rsyslog and waits until it holds its ports.
    ///
    /// Fails when no input was chosen, when `rsyslogd` is not installed,
    /// exits, or does not bind its ports in time; the error carries its log.
    pub fn start(self) -> io::Result<Rsyslog> {
        if !self.udp && !self.tcp && self.tls.is_none() {
            return Err(io::Error::new(
                io::ErrorKind::InvalidInput,
                "rsyslog needs at least one input: call udp(), tcp() or tls() before start()",
            ));
        }
        let program = program()?;
        let dir = crate::tempdir();
        let work = dir.path().join("work");
        fs::create_dir_all(&work)?;
        let mut server = Rsyslog {
            program,
            child: None,
            udp_port: None,
            tcp_port: None,
            tls_port: None,
            conf: dir.path().join("rsyslog.conf"),
            pid_file: dir.path().join("rsyslogd.pid"),
            output: dir.path().join("messages.log"),
            stderr: dir.path().join("rsyslogd.stderr"),
            work,
            dir,
        };
        daemon::retry("rsyslog", Duration::ZERO, || {
            server.udp_port = self.udp.then(crate::free_port);
            server.tcp_port = self.tcp.then(crate::free_port);
            server.tls_port = self.tls.as_ref().map(|_| crate::free_port());
            fs::write(&server.conf, server.config(self.tls.as_ref()))?;
            Ok(server.launch()?)
        })?;
        Ok(server)
    }
}

/// A running `rsyslogd`, killed when dropped.
#[derive(Debug)]
pub struct Rsyslog {
    program: PathBuf,
    child: Option<Child>,
    udp_port: Option<u16>,
    tcp_port: Option<u16>,
    tls_port: Option<u16>,
    conf: PathBuf,
    pid_file: PathBuf,
    output: PathBuf,
    stderr: PathBuf,
    work: PathBuf,
    dir: tempfile::TempDir,
}

impl Rsyslog {
    /// A builder: choose the inputs, then [`start`](RsyslogBuilder::start).
    pub fn builder() -> RsyslogBuilder {
        RsyslogBuilder::default()
    }

    /// The UDP port on 127.0.0.1. Panics without [`udp`](RsyslogBuilder::udp).
    pub fn udp_port(&self) -> u16 {
        self.udp_port.expect("rsyslog was started without udp()")
    }

    /// The plain TCP port on 127.0.0.1. Panics without
    /// [`tcp`](RsyslogBuilder::tcp).
    pub fn tcp_port(&self) -> u16 {
        self.tcp_port.expect("rsyslog was started without tcp()")
    }

    /// The TLS port on 127.0.0.1. Panics without
    /// [`tls`](RsyslogBuilder::tls).
    pub fn tls_port(&self) -> u16 {
        self.tls_port.expect("rsyslog was started without tls()")
    }

    /// The file every received message is appended to, one per line.
    pub fn output_path(&self) -> &Path {
        &self.output
    }

    /// The server's directory: configuration, pid file, work directory,
    /// output and standard error.
    pub fn dir(&self) -> &Path {
        self.dir.path()
    }

    /// The messages received so far, in order, without their newlines; a
    /// line rsyslog is still writing is left out.
    pub fn lines(&self) -> Vec<String> {
        daemon::lines(&self.output)
    }

    /// Waits until at least `n` messages were received or `timeout` passed,
    /// and returns the messages received by then (possibly fewer than `n`).
    pub fn wait_for_lines(&self, n: usize, timeout: Duration) -> Vec<String> {
        daemon::wait_for_lines(&self.output, n, timeout)
    }

    /// rsyslog's standard error over all its runs (its own errors and
    /// warnings), then its configuration, for panic messages.
    pub fn log(&self) -> String {
        let stderr = fs::read_to_string(&self.stderr).unwrap_or_default();
        let conf = fs::read_to_string(&self.conf).unwrap_or_default();
        format!("--- rsyslogd standard error ---\n{stderr}--- rsyslog.conf ---\n{conf}")
    }

    /// Whether the process is running.
    pub fn is_running(&mut self) -> bool {
        match &mut self.child {
            Some(child) => matches!(child.try_wait(), Ok(None)),
            None => false,
        }
    }

    /// Sends SIGTERM and waits for rsyslog to exit (killing it after
    /// 10 s). Keeps the directory and the output file. Does nothing when it
    /// is not running.
    pub fn stop(&mut self) {
        if let Some(child) = self.child.take() {
            daemon::terminate(child, STOP_TIMEOUT);
        }
    }

    /// Kills rsyslog with SIGKILL, as a crash would: what it had read but
    /// not yet written, and what sat unread in its sockets, is lost. Keeps
    /// the directory and the output file. Does nothing when it is not
    /// running.
    pub fn kill(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
            let _ = fs::remove_file(&self.pid_file);
        }
    }

    /// Starts rsyslog again after [`stop`](Self::stop) or
    /// [`kill`](Self::kill), on the same ports,
    /// appending to the same output file, and waits until it holds them.
    /// Fails if another process took a port meanwhile.
    pub fn start_again(&mut self) -> io::Result<()> {
        if self.is_running() {
            return Err(io::Error::new(
                io::ErrorKind::AlreadyExists,
                "rsyslog is running: stop() it before start_again()",
            ));
        }
        self.launch()
    }

    /// Spawns rsyslogd on the current configuration and waits until it
    /// holds every port. A port another process holds is `AddrInUse`.
    fn launch(&mut self) -> io::Result<()> {
        let stderr_before = file_len(&self.stderr);
        let stderr = OpenOptions::new()
            .create(true)
            .append(true)
            .open(&self.stderr)?;
        let child = Command::new(&self.program)
            .arg("-n")
            .arg("-f")
            .arg(&self.conf)
            .arg("-i")
            .arg(&self.pid_file)
            .current_dir(self.dir.path())
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(stderr)
            .spawn()
            .map_err(|e| {
                io::Error::new(
                    e.kind(),
                    format!("cannot start {}: {e}", self.program.display()),
                )
            })?;
        let pid = child.id();
        self.child = Some(child);
        let deadline = Instant::now() + START_TIMEOUT;
        loop {
            if let Some(child) = &mut self.child
                && let Ok(Some(status)) = child.try_wait()
            {
                self.child = None;
                return Err(daemon::exited("rsyslogd", status, &self.log()));
            }
            let new_errors = read_from(&self.stderr, stderr_before);
            if new_errors.contains("Could not create")
                || new_errors.contains("Address already in use")
            {
                self.stop();
                return Err(io::Error::new(
                    io::ErrorKind::AddrInUse,
                    format!("rsyslogd could not bind a port\n{}", self.log()),
                ));
            }
            if self.holds_ports(pid) {
                return Ok(());
            }
            if Instant::now() >= deadline {
                self.stop();
                return Err(io::Error::new(
                    io::ErrorKind::TimedOut,
                    format!(
                        "rsyslogd did not bind its ports within {START_TIMEOUT:?}\n{}",
                        self.log()
                    ),
                ));
            }
            std::thread::sleep(POLL);
        }
    }

    /// True when process `pid` has a bound UDP socket on the UDP port and a
    /// listening socket on each TCP port.
    fn holds_ports(&self, pid: u32) -> bool {
        let tcp: Vec<u16> = [self.tcp_port, self.tls_port]
            .into_iter()
            .flatten()
            .collect();
        let udp: Vec<u16> = self.udp_port.into_iter().collect();
        daemon::holds_ports(pid, &tcp, &udp)
    }

    /// The rsyslog configuration for the chosen inputs.
    fn config(&self, tls: Option<&TlsInput>) -> String {
        let mut conf = format!(
            "# Generated by vigil-testkit: a throwaway rsyslogd for tests.\n\
             global(workDirectory=\"{work}\" maxMessageSize=\"{MAX_MESSAGE_SIZE}\")\n\
             template(name=\"vigil_raw\" type=\"string\" string=\"%rawmsg%\\n\")\n\
             ruleset(name=\"vigil_in\") {{\n  \
               action(type=\"omfile\" file=\"{output}\" template=\"vigil_raw\")\n\
             }}\n",
            work = quoted(&self.work),
            output = quoted(&self.output),
        );
        if let Some(port) = self.udp_port {
            conf.push_str("module(load=\"imudp\")\n");
            conf.push_str(&format!(
                "input(type=\"imudp\" address=\"127.0.0.1\" port=\"{port}\" ruleset=\"vigil_in\")\n"
            ));
        }
        if self.tcp_port.is_some() || self.tls_port.is_some() {
            conf.push_str("module(load=\"imtcp\")\n");
        }
        if let Some(port) = self.tcp_port {
            conf.push_str(&format!(
                "input(type=\"imtcp\" address=\"127.0.0.1\" port=\"{port}\" ruleset=\"vigil_in\")\n"
            ));
        }
        if let (Some(port), Some(tls)) = (self.tls_port, tls) {
            let auth = if tls.require_client_cert {
                "x509/certvalid"
            } else {
                "anon"
            };
            conf.push_str(&format!(
                "input(type=\"imtcp\" address=\"127.0.0.1\" port=\"{port}\" ruleset=\"vigil_in\"\n  \
                 streamDriver.name=\"gtls\" streamDriver.mode=\"1\" \
                 streamDriver.authMode=\"{auth}\"\n  \
                 streamDriver.caFile=\"{ca}\"\n  \
                 streamDriver.certFile=\"{cert}\"\n  \
                 streamDriver.keyFile=\"{key}\")\n",
                ca = quoted(&tls.ca),
                cert = quoted(&tls.cert),
                key = quoted(&tls.key),
            ));
        }
        conf
    }
}

impl Drop for Rsyslog {
    fn drop(&mut self) {
        self.kill();
    }
}

/// The `rsyslogd` binary, or an error saying how to install it.
fn program() -> io::Result<PathBuf> {
    crate::find_program("rsyslogd", &[Path::new("/usr/sbin"), Path::new("/sbin")]).ok_or_else(
        || {
            io::Error::new(
                io::ErrorKind::NotFound,
                "rsyslogd is not installed (looked in /usr/sbin, /sbin and on PATH); install the \
                 Debian packages rsyslog and rsyslog-gnutls",
            )
        },
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Write;
    use std::net::{TcpStream, UdpSocket};

    const WAIT: Duration = Duration::from_secs(10);

    /// Opens `path` for appending, to add lines by hand.
    fn append(path: &Path) -> io::Result<fs::File> {
        OpenOptions::new().create(true).append(true).open(path)
    }

    #[test]
    fn udp_and_tcp_keep_messages_as_received() {
        let rsyslog = Rsyslog::builder().udp().tcp().start().unwrap();
        let udp = UdpSocket::bind("127.0.0.1:0").unwrap();
        udp.send_to(
            b"<13>1 - host app - - - over udp",
            ("127.0.0.1", rsyslog.udp_port()),
        )
        .unwrap();
        let lines = rsyslog.wait_for_lines(1, WAIT);
        assert_eq!(
            lines,
            ["<13>1 - host app - - - over udp"],
            "{}",
            rsyslog.log()
        );

        let mut tcp = TcpStream::connect(("127.0.0.1", rsyslog.tcp_port())).unwrap();
        tcp.write_all(b"5 hello18 two words, \xc3\xa9 \xe2\x82\xac!")
            .unwrap();
        drop(tcp);
        let lines = rsyslog.wait_for_lines(3, WAIT);
        assert_eq!(
            lines,
            [
                "<13>1 - host app - - - over udp",
                "hello",
                "two words, é €!"
            ],
            "{}",
            rsyslog.log()
        );
    }

    #[test]
    fn control_characters_are_escaped_and_one_line_each() {
        let rsyslog = Rsyslog::builder().tcp().start().unwrap();
        let mut tcp = TcpStream::connect(("127.0.0.1", rsyslog.tcp_port())).unwrap();
        tcp.write_all(b"7 a\nb\tc\x1bd").unwrap();
        drop(tcp);
        let lines = rsyslog.wait_for_lines(1, WAIT);
        assert_eq!(lines, ["a#012b#011c#033d"], "{}", rsyslog.log());
    }

    #[test]
    fn stops_and_starts_again_on_the_same_port() {
        let mut rsyslog = Rsyslog::builder().tcp().start().unwrap();
        let port = rsyslog.tcp_port();
        let mut tcp = TcpStream::connect(("127.0.0.1", port)).unwrap();
        tcp.write_all(b"5 first").unwrap();
        drop(tcp);
        assert_eq!(rsyslog.wait_for_lines(1, WAIT), ["first"]);

        rsyslog.stop();
        assert!(!rsyslog.is_running());
        assert!(TcpStream::connect(("127.0.0.1", port)).is_err());
        rsyslog.stop();

        rsyslog.start_again().unwrap();
        assert!(rsyslog.is_running());
        assert_eq!(rsyslog.tcp_port(), port);
        let mut tcp = TcpStream::connect(("127.0.0.1", port)).unwrap();
        tcp.write_all(b"6 second").unwrap();
        drop(tcp);
        assert_eq!(rsyslog.wait_for_lines(2, WAIT), ["first", "second"]);
        assert!(rsyslog.start_again().is_err(), "it is running");
    }

    #[test]
    fn tls_input_listens_next_to_plain_tcp() {
        let dir = crate::tempdir();
        let pki = crate::pki::Pki::new(dir.path());
        let server = pki.server("localhost", &["localhost", "127.0.0.1"]);
        let rsyslog = Rsyslog::builder()
            .tcp()
            .tls(&server.cert, &server.key, pki.ca_cert_path(), true)
            .start()
            .unwrap();
        assert_ne!(rsyslog.tcp_port(), rsyslog.tls_port());
        let conf = fs::read_to_string(rsyslog.dir().join("rsyslog.conf")).unwrap();
        assert!(
            conf.contains("streamDriver.authMode=\"x509/certvalid\""),
            "{conf}"
        );
        assert!(
            !conf.contains("imuxsock") && !conf.contains("imklog"),
            "{conf}"
        );
        TcpStream::connect(("127.0.0.1", rsyslog.tcp_port())).unwrap();
    }

    #[test]
    fn lines_leave_out_a_partial_line() {
        let rsyslog = Rsyslog::builder().udp().start().unwrap();
        assert!(rsyslog.lines().is_empty());
        let mut f = append(rsyslog.output_path()).unwrap();
        f.write_all(b"one\ntwo\nthr").unwrap();
        assert_eq!(rsyslog.lines(), ["one", "two"]);
        assert_eq!(
            rsyslog.wait_for_lines(3, Duration::from_millis(50)),
            ["one", "two"]
        );
    }

    #[test]
    fn needs_an_input() {
        let err = Rsyslog::builder().start().unwrap_err();
        assert_eq!(err.kind(), io::ErrorKind::InvalidInput);
    }
}
