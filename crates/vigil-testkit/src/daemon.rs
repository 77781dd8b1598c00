//! What the throwaway servers share: telling that a process holds its
//! ports, reading the file it writes, stopping it.

use std::fs;
use std::io;
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// How often to look again while waiting.
pub(crate) const POLL: Duration = Duration::from_millis(20);

/// How many times a server is started, on fresh ports, before giving up.
const ATTEMPTS: usize = 5;

/// Why one attempt to start a server failed.
pub(crate) enum Launch {
    /// Another process holds a port the server needs: try another, or wait.
    PortTaken(io::Error),
    /// Anything else.
    Failed(io::Error),
}

impl From<io::Error> for Launch {
    fn from(e: io::Error) -> Launch {
        if e.kind() == io::ErrorKind::AddrInUse {
            Launch::PortTaken(e)
        } else {
            Launch::Failed(e)
        }
    }
}

/// Calls `launch` until it starts `what`, at most [`ATTEMPTS`] times: after
/// a taken port it waits `pause` and tries again (`launch` picks the ports),
/// any other failure ends it.
pub(crate) fn retry(
    what: &str,
    pause: Duration,
    mut launch: impl FnMut() -> Result<(), Launch>,
) -> io::Result<()> {
    let mut last = None;
    for _ in 0..ATTEMPTS {
        match launch() {
            Ok(()) => return Ok(()),
            Err(Launch::PortTaken(e)) => {
                last = Some(e);
                std::thread::sleep(pause);
            }
            Err(Launch::Failed(e)) => return Err(e),
        }
    }
    Err(last.unwrap_or_else(|| io::Error::other(format!("{what} did not start"))))
}

/// `/proc/net/udp` state of a bound, unconnected socket.
pub(crate) const UDP_UNCONNECTED: &str = "07";
/// `/proc/net/tcp` state of a listening socket.
pub(crate) const TCP_LISTEN: &str = "0A";

/// The inodes of the sockets process `pid` holds open.
pub(crate) fn socket_inodes(pid: u32) -> Vec<String> {
    let Ok(entries) = fs::read_dir(format!("/proc/{pid}/fd")) else {
        return Vec::new();
    };
    entries
        .filter_map(|e| fs::read_link(e.ok()?.path()).ok())
        .filter_map(|target| {
            let target = target.to_str()?;
            let inode = target.strip_prefix("socket:[")?.strip_suffix(']')?;
            Some(inode.to_owned())
        })
        .collect()
}

/// Whether one of `inodes` is a socket on local `port` in `state`, in one
/// of the `/proc/net` `tables`.
pub(crate) fn holds(tables: &[&str], port: u16, state: &str, inodes: &[String]) -> bool {
    let port = format!(":{port:04X}");
    tables.iter().any(|table| {
        let text = fs::read_to_string(table).unwrap_or_default();
        text.lines().skip(1).any(|line| {
            let cols: Vec<&str> = line.split_whitespace().collect();
            cols.len() > 9
                && cols[1].ends_with(&port)
                && cols[3] == state
                && inodes.iter().any(|i| i == cols[9])
        })
    })
}

/// Whether process `pid` listens on every TCP port of `tcp` and has a UDP
/// socket bound to every port of `udp`.
pub(crate) fn holds_ports(pid: u32, tcp: &[u16], udp: &[u16]) -> bool {
    let inodes = socket_inodes(pid);
    let udp_tables = ["/proc/net/udp", "/proc/net/udp6"];
    let tcp_tables = ["/proc/net/tcp", "/proc/net/tcp6"];
    udp.iter()
        .all(|&p| holds(&udp_tables, p, UDP_UNCONNECTED, &inodes))
        && tcp
            .iter()
            .all(|&p| holds(&tcp_tables, p, TCP_LISTEN, &inodes))
}

/// `path` as a double-quoted configuration string's contents.
pub(crate) fn quoted(path: &Path) -> String {
    path.display()
        .to_string()
        .replace('\\', "\\\\")
        .replace('"', "\\\"")
}

/// The size of `path`, 0 when it does not exist.
pub(crate) fn file_len(path: &Path) -> u64 {
    fs::metadata(path).map(|m| m.len()).unwrap_or(0)
}

/// What `path` holds from byte `from` on, lossily as text.
pub(crate) fn read_from(path: &Path, from: u64) -> String {
    let data = fs::read(path).unwrap_or_default();
    let from = usize::try_from(from).unwrap_or(usize::MAX).min(data.len());
    String::from_utf8_lossy(&data[from..]).into_owned()
}

/// The complete lines of `path` (a last line still being written is left
/// out), without their LF.
pub(crate) fn lines(path: &Path) -> Vec<String> {
    let data = fs::read(path).unwrap_or_default();
    let complete = match data.iter().rposition(|&b| b == b'\n') {
        Some(end) => &data[..end],
        None => return Vec::new(),
    };
    String::from_utf8_lossy(complete)
        .split('\n')
        .map(str::to_owned)
        .collect()
}

/// [`lines`] once there are at least `n`, or whatever there is after
/// `timeout`.
pub(crate) fn wait_for_lines(path: &Path, n: usize, timeout: Duration) -> Vec<String> {
    let deadline = Instant::now() + timeout;
    loop {
        let lines = lines(path);
        if lines.len() >= n || Instant::now() >= deadline {
            return lines;
        }
        std::thread::sleep(POLL);
    }
}

/// SIGTERM, then SIGKILL when `child` has not exited after `timeout`.
pub(crate) fn terminate(mut child: Child, timeout: Duration) {
    let terminated = Command::new("kill")
        .args(["-TERM", &child.id().to_string()])
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .is_ok_and(|s| s.success());
    if terminated {
        let deadline = Instant::now() + timeout;
        while Instant::now() < deadline {
            if !matches!(child.try_wait(), Ok(None)) {
                return;
            }
            std::thread::sleep(POLL);
        }
    }
    let _ = child.kill();
    let _ = child.wait();
}

/// An error saying `program` exited at start, with its log.
pub(crate) fn exited(program: &str, status: std::process::ExitStatus, log: &str) -> io::Error {
    io::Error::other(format!("{program} exited at start ({status})\n{log}"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_proc_net_tables() {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let tcp = listener.local_addr().unwrap().port();
        let inodes = socket_inodes(std::process::id());
        assert!(holds(&["/proc/net/tcp"], tcp, TCP_LISTEN, &inodes));
        assert!(!holds(&["/proc/net/tcp"], tcp, TCP_LISTEN, &[]));
        let socket = std::net::UdpSocket::bind("127.0.0.1:0").unwrap();
        let udp = socket.local_addr().unwrap().port();
        let inodes = socket_inodes(std::process::id());
        assert!(holds(&["/proc/net/udp"], udp, UDP_UNCONNECTED, &inodes));
        assert!(holds_ports(std::process::id(), &[tcp], &[udp]));
        assert!(!holds_ports(std::process::id(), &[tcp, udp], &[]));
    }
}
