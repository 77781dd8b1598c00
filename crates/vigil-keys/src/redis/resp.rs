//! A minimal RESP2 client over one blocking TCP connection.
//!
//! Commands are arrays of bulk strings. Replies are read through a bounded
//! reader: lines, bulk strings, arrays and nesting all have limits, so a
//! hostile or broken server cannot make the client allocate without bound.

use std::io::{self, BufRead, BufReader, Read, Write};
use std::net::{TcpStream, ToSocketAddrs};
use std::time::Duration;

use zeroize::Zeroizing;

/// The longest status, error or length line accepted.
const MAX_LINE: u64 = 64 * 1024;
/// The longest bulk string accepted.
const MAX_BULK: usize = 1024 * 1024;
/// The most elements in one array.
const MAX_ARRAY: usize = 100_000;
/// The deepest nesting of arrays.
const MAX_DEPTH: usize = 4;

/// One RESP2 reply.
#[derive(Debug, PartialEq, Eq)]
pub(super) enum Reply {
    /// `+OK`
    Simple(String),
    /// `-ERR message`
    Error(String),
    /// `:42`
    Int(i64),
    /// `$n` bytes, or `$-1` (null).
    Bulk(Option<Vec<u8>>),
    /// `*n` replies, or `*-1` (null).
    Array(Option<Vec<Reply>>),
}

/// How a command failed.
#[derive(Debug)]
pub(super) enum Failure {
    /// The connection failed or timed out.
    Io(io::Error),
    /// The server sent something that is not RESP2, or exceeds a limit.
    Protocol(String),
}

impl From<io::Error> for Failure {
    fn from(e: io::Error) -> Self {
        Failure::Io(e)
    }
}

impl std::fmt::Display for Failure {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Failure::Io(e)
                if matches!(
                    e.kind(),
                    io::ErrorKind::WouldBlock | io::ErrorKind::TimedOut
                ) =>
            {
                f.write_str("no answer within the timeout")
            }
            Failure::Io(e) => write!(f, "{e}"),
            Failure::Protocol(what) => write!(f, "protocol error: {what}"),
        }
    }
}

/// One connection.
#[derive(Debug)]
pub(super) struct Conn {
    stream: BufReader<TcpStream>,
}

impl Conn {
    /// Connects to the first address of `host:port` that answers.
    pub(super) fn connect(
        host: &str,
        port: u16,
        connect_timeout: Duration,
        io_timeout: Duration,
    ) -> io::Result<Conn> {
        let mut last = None;
        for addr in (host, port).to_socket_addrs()? {
            match TcpStream::connect_timeout(&addr, connect_timeout) {
                Ok(stream) => {
                    stream.set_read_timeout(Some(io_timeout))?;
                    stream.set_write_timeout(Some(io_timeout))?;
                    stream.set_nodelay(true)?;
                    return Ok(Conn {
                        stream: BufReader::new(stream),
                    });
                }
                Err(e) => last = Some(e),
            }
        }
        Err(last.unwrap_or_else(|| {
            io::Error::new(io::ErrorKind::NotFound, format!("{host} has no address"))
        }))
    }

    /// Sends one command and reads its reply.
    pub(super) fn call(&mut self, args: &[&[u8]]) -> Result<Reply, Failure> {
        // The buffer may hold a password (AUTH); erase it after sending.
        let cmd = Zeroizing::new(encode(args));
        let out = self.stream.get_mut();
        out.write_all(&cmd)?;
        out.flush()?;
        read_reply(&mut self.stream, 0)
    }
}

/// Encodes a command as an array of bulk strings.
pub(super) fn encode(args: &[&[u8]]) -> Vec<u8> {
    let len = args.iter().map(|a| a.len() + 16).sum::<usize>() + 16;
    let mut out = Vec::with_capacity(len);
    out.extend_from_slice(format!("*{}\r\n", args.len()).as_bytes());
    for arg in args {
        out.extend_from_slice(format!("${}\r\n", arg.len()).as_bytes());
        out.extend_from_slice(arg);
        out.extend_from_slice(b"\r\n");
    }
    out
}

/// Reads one reply; `depth` is the array nesting so far.
pub(super) fn read_reply(r: &mut impl BufRead, depth: usize) -> Result<Reply, Failure> {
    let line = read_line(r)?;
    let (kind, rest) = match line.split_first() {
        Some((k, rest)) => (*k, rest),
        None => return Err(Failure::Protocol("empty reply line".into())),
    };
    let text = || String::from_utf8_lossy(rest).into_owned();
    match kind {
        b'+' => Ok(Reply::Simple(text())),
        b'-' => Ok(Reply::Error(text())),
        b':' => Ok(Reply::Int(parse_int(rest)?)),
        b'$' => {
            let Some(len) = parse_len(rest, MAX_BULK)? else {
                return Ok(Reply::Bulk(None));
            };
            let mut data = vec![0; len + 2];
            r.read_exact(&mut data)?;
            if !data.ends_with(b"\r\n") {
                return Err(Failure::Protocol("bulk string not followed by CRLF".into()));
            }
            data.truncate(len);
            Ok(Reply::Bulk(Some(data)))
        }
        b'*' => {
            let Some(len) = parse_len(rest, MAX_ARRAY)? else {
                return Ok(Reply::Array(None));
            };
            if depth >= MAX_DEPTH {
                return Err(Failure::Protocol("arrays nested too deep".into()));
            }
            let mut items = Vec::with_capacity(len.min(1024));
            for _ in 0..len {
                items.push(read_reply(r, depth + 1)?);
            }
            Ok(Reply::Array(Some(items)))
        }
        other => Err(Failure::Protocol(format!(
            "unknown reply type byte {other:#04x}"
        ))),
    }
}

/// Reads a line up to CRLF, without it.
fn read_line(r: &mut impl BufRead) -> Result<Vec<u8>, Failure> {
    let mut line = Vec::new();
    r.take(MAX_LINE).read_until(b'\n', &mut line)?;
    if line.is_empty() {
        return Err(Failure::Io(io::Error::new(
            io::ErrorKind::UnexpectedEof,
            "the server closed the connection",
        )));
    }
    match line.strip_suffix(b"\r\n") {
        Some(body) => Ok(body.to_vec()),
        None => Err(Failure::Protocol(
            "reply line too long or not ended by CRLF".into(),
        )),
    }
}

fn parse_int(digits: &[u8]) -> Result<i64, Failure> {
    std::str::from_utf8(digits)
        .ok()
        .and_then(|s| s.parse().ok())
        .ok_or_else(|| Failure::Protocol("malformed integer".into()))
}

/// A length from `$n` or `*n`: `None` for -1, an error beyond `max`.
fn parse_len(digits: &[u8], max: usize) -> Result<Option<usize>, Failure> {
    match parse_int(digits)? {
        -1 => Ok(None),
        n if n >= 0 && usize::try_from(n).is_ok_and(|n| n <= max) => Ok(usize::try_from(n).ok()),
        n => Err(Failure::Protocol(format!("length {n} out of range"))),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(bytes: &[u8]) -> Result<Reply, Failure> {
        read_reply(&mut &bytes[..], 0)
    }

    #[test]
    fn encodes_commands_as_bulk_arrays() {
        assert_eq!(encode(&[b"GET", b"k"]), b"*2\r\n$3\r\nGET\r\n$1\r\nk\r\n");
        assert_eq!(
            encode(&[b"SET", b"k", b"a\r\nb"]),
            b"*3\r\n$3\r\nSET\r\n$1\r\nk\r\n$4\r\na\r\nb\r\n"
        );
    }

    #[test]
    fn parses_every_reply_type() {
        assert_eq!(parse(b"+OK\r\n").unwrap(), Reply::Simple("OK".into()));
        assert_eq!(
            parse(b"-ERR no\r\n").unwrap(),
            Reply::Error("ERR no".into())
        );
        assert_eq!(parse(b":-7\r\n").unwrap(), Reply::Int(-7));
        assert_eq!(parse(b"$-1\r\n").unwrap(), Reply::Bulk(None));
        assert_eq!(
            parse(b"$4\r\na\r\nb\r\n").unwrap(),
            Reply::Bulk(Some(b"a\r\nb".to_vec()))
        );
        assert_eq!(
            parse(b"*2\r\n$1\r\n0\r\n*1\r\n$1\r\nk\r\n").unwrap(),
            Reply::Array(Some(vec![
                Reply::Bulk(Some(b"0".to_vec())),
                Reply::Array(Some(vec![Reply::Bulk(Some(b"k".to_vec()))])),
            ]))
        );
    }

    #[test]
    fn refuses_malformed_and_oversized_replies() {
        for bad in [
            &b""[..],
            b"\r\n",
            b"?x\r\n",
            b"+OK\n",
            b"$3\r\nab\r\n",
            b"$2\r\nabcd",
            b"$99999999\r\n",
            b"$-2\r\n",
            b":x\r\n",
            b"*1\r\n*1\r\n*1\r\n*1\r\n*1\r\n:1\r\n",
            b"*200000\r\n",
        ] {
            assert!(
                parse(bad).is_err(),
                "{:?} accepted",
                String::from_utf8_lossy(bad)
            );
        }
    }
}
