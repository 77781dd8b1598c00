//! The key database: envelopes in Redis, one value per key version.

mod resp;

use std::fmt;
use std::time::Duration;

use zeroize::Zeroizing;

use self::resp::{Conn, Failure, Reply};
use crate::backend::Backend;
use crate::error::Error;
use crate::name;

/// The prefix of every key vigil writes, unless [`RedisBackend::prefix`]
/// says otherwise.
const DEFAULT_PREFIX: &str = "vigil:key:";
const DEFAULT_PORT: u16 = 6379;
/// Keys asked for per `SCAN` call.
const SCAN_COUNT: &[u8] = b"1000";

/// Keys in a Redis database, as `vigil:key:<name>:<version>` → envelope.
///
/// Speaks RESP2 over a plain TCP connection, one per operation: `AUTH` when
/// the URL has a password, `SELECT` for a database other than 0, `GET`,
/// `SET … NX` (a version is never overwritten) and `SCAN … MATCH` to list.
/// A server that cannot be reached, or refuses the password, is
/// [`Error::BackendUnavailable`].
///
/// The URL is `redis://[[user]:password@]host[:port][/db]`, port 6379 and
/// database 0 by default, with `%XX` escapes in the user and password.
/// There is no TLS: reach a remote Redis through a local TLS tunnel.
pub struct RedisBackend {
    host: String,
    port: u16,
    db: u32,
    user: Option<String>,
    password: Option<Zeroizing<String>>,
    prefix: String,
    connect_timeout: Duration,
    io_timeout: Duration,
}

impl RedisBackend {
    /// A key database at `url`; nothing is connected until a key is read or
    /// written. Connecting times out after 3 s, each reply after 5 s.
    pub fn from_url(url: &str) -> Result<RedisBackend, Error> {
        let invalid = |reason: &str| Error::InvalidUrl {
            reason: reason.to_owned(),
        };
        let rest = match url.strip_prefix("redis://") {
            Some(rest) => rest,
            None if url.starts_with("rediss://") => {
                return Err(invalid(
                    "TLS (rediss://) is not supported; use a local TLS tunnel",
                ));
            }
            None => return Err(invalid("it does not start with redis://")),
        };
        if rest.contains(['?', '#']) {
            return Err(invalid("query strings and fragments are not supported"));
        }
        let (authority, path) = match rest.find('/') {
            Some(i) => rest.split_at(i),
            None => (rest, ""),
        };
        let (userinfo, hostport) = match authority.rsplit_once('@') {
            Some((u, h)) => (Some(u), h),
            None => (None, authority),
        };
        let (user, password) = match userinfo {
            None => (None, None),
            Some(u) => {
                let (user, password) = u.split_once(':').ok_or_else(|| {
                    invalid("the part before '@' must be ':password' or 'user:password'")
                })?;
                let user = if user.is_empty() {
                    None
                } else {
                    Some(percent_decode(user).ok_or_else(|| invalid("bad %-escape in the user"))?)
                };
                let password = Zeroizing::new(
                    percent_decode(password)
                        .ok_or_else(|| invalid("bad %-escape in the password"))?,
                );
                (user, Some(password))
            }
        };
        let (host, port) = split_host_port(hostport).ok_or_else(|| {
            invalid("the host is missing, or the port is not a number from 1 to 65535")
        })?;
        let db = match path.strip_prefix('/').unwrap_or(path) {
            "" => 0,
            n if n.bytes().all(|b| b.is_ascii_digit()) => n
                .parse::<u32>()
                .map_err(|_| invalid("the database after '/' is too large"))?,
            _ => return Err(invalid("the database after '/' is not a number")),
        };
        Ok(RedisBackend {
            host,
            port,
            db,
            user,
            password,
            prefix: DEFAULT_PREFIX.to_owned(),
            connect_timeout: Duration::from_secs(3),
            io_timeout: Duration::from_secs(5),
        })
    }

    /// Sets how long connecting, and then each reply, may take.
    pub fn timeout(mut self, connect: Duration, reply: Duration) -> RedisBackend {
        self.connect_timeout = connect;
        self.io_timeout = reply;
        self
    }

    /// Stores keys under `prefix` instead of `vigil:key:`, e.g. to keep the
    /// keys of several vigil instances apart in one database. The prefix may
    /// not contain the `SCAN` pattern characters `*?[]\`.
    pub fn prefix(mut self, prefix: &str) -> Result<RedisBackend, Error> {
        if prefix.contains(['*', '?', '[', ']', '\\']) || prefix.chars().any(char::is_control) {
            return Err(Error::InvalidUrl {
                reason: "the key prefix may not contain *, ?, [, ], \\ or control characters"
                    .into(),
            });
        }
        self.prefix = prefix.to_owned();
        Ok(self)
    }

    /// The database, as `redis://host:port/db`, without user or password.
    pub fn address(&self) -> String {
        if self.host.contains(':') {
            format!("redis://[{}]:{}/{}", self.host, self.port, self.db)
        } else {
            format!("redis://{}:{}/{}", self.host, self.port, self.db)
        }
    }

    fn redis_key(&self, name: &str, version: u32) -> String {
        format!("{}{name}:{version}", self.prefix)
    }

    fn unavailable(&self, reason: impl fmt::Display) -> Error {
        Error::BackendUnavailable {
            address: self.address(),
            reason: reason.to_string(),
        }
    }

    /// Connects, authenticates and selects the database.
    fn connect(&self) -> Result<Conn, Error> {
        let mut conn = Conn::connect(&self.host, self.port, self.connect_timeout, self.io_timeout)
            .map_err(|e| self.unavailable(e))?;
        if let Some(password) = &self.password {
            let mut args: Vec<&[u8]> = vec![b"AUTH"];
            if let Some(user) = &self.user {
                args.push(user.as_bytes());
            }
            args.push(password.as_bytes());
            match conn.call(&args).map_err(|e| self.unavailable(e))? {
                Reply::Simple(_) => {}
                Reply::Error(e) => {
                    return Err(self.unavailable(format!("authentication refused ({e})")));
                }
                other => return Err(self.unavailable(unexpected(&other))),
            }
        }
        if self.db != 0 {
            let db = self.db.to_string();
            match conn
                .call(&[b"SELECT", db.as_bytes()])
                .map_err(|e| self.unavailable(e))?
            {
                Reply::Simple(_) => {}
                Reply::Error(e) => {
                    return Err(self.unavailable(format!("cannot select database {db} ({e})")));
                }
                other => return Err(self.unavailable(unexpected(&other))),
            }
        }
        Ok(conn)
    }

    /// Sends a command on a fresh connection; maps connection failures and
    /// refusals for want of credentials to [`Error::BackendUnavailable`],
    /// other failures through `fail`.
    fn call(&self, args: &[&[u8]], fail: impl Fn(String) -> Error) -> Result<Reply, Error> {
        let mut conn = self.connect()?;
        match conn.call(args) {
            Ok(Reply::Error(e)) if e.starts_with("NOAUTH") || e.starts_with("WRONGPASS") => {
                Err(self.unavailable(format!("authentication required ({e})")))
            }
            Ok(Reply::Error(e)) => Err(fail(format!("Redis replied {e}"))),
            Ok(reply) => Ok(reply),
            Err(e @ Failure::Io(_)) => Err(self.unavailable(e)),
            Err(e @ Failure::Protocol(_)) => Err(fail(e.to_string())),
        }
    }

    /// Lists keys matching `pattern`, following the `SCAN` cursor.
    fn scan(&self, pattern: &str) -> Result<Vec<(String, u32)>, Error> {
        let load_failed = |reason| Error::LoadFailed {
            location: format!("{} keys {pattern}", self.address()),
            reason,
        };
        let mut conn = self.connect()?;
        let mut cursor = b"0".to_vec();
        let mut keys = Vec::new();
        loop {
            let reply = match conn.call(&[
                b"SCAN",
                &cursor,
                b"MATCH",
                pattern.as_bytes(),
                b"COUNT",
                SCAN_COUNT,
            ]) {
                Ok(Reply::Error(e)) if e.starts_with("NOAUTH") || e.starts_with("WRONGPASS") => {
                    return Err(self.unavailable(format!("authentication required ({e})")));
                }
                Ok(Reply::Error(e)) => return Err(load_failed(format!("Redis replied {e}"))),
                Ok(reply) => reply,
                Err(e @ Failure::Io(_)) => return Err(self.unavailable(e)),
                Err(e @ Failure::Protocol(_)) => return Err(load_failed(e.to_string())),
            };
            let Reply::Array(Some(mut parts)) = reply else {
                return Err(load_failed(unexpected(&reply)));
            };
            let (Some(Reply::Array(Some(batch))), Some(Reply::Bulk(Some(next))), None) =
                (parts.pop(), parts.pop(), parts.pop())
            else {
                return Err(load_failed("SCAN reply is not [cursor, [keys]]".into()));
            };
            for key in batch {
                if let Reply::Bulk(Some(key)) = key
                    && let Some(parsed) = self.parse_key(&key)
                {
                    keys.push(parsed);
                }
            }
            if next == b"0" {
                break;
            }
            cursor = next;
        }
        // SCAN may return a key more than once.
        keys.sort();
        keys.dedup();
        Ok(keys)
    }

    /// `vigil:key:audit-hmac:2` → `("audit-hmac", 2)`.
    fn parse_key(&self, key: &[u8]) -> Option<(String, u32)> {
        let rest = std::str::from_utf8(key.strip_prefix(self.prefix.as_bytes())?).ok()?;
        let (name, version) = rest.rsplit_once(':')?;
        name::check(name).ok()?;
        Some((name.to_owned(), name::parse_version(version)?))
    }
}

impl Backend for RedisBackend {
    fn kind(&self) -> &'static str {
        "redis"
    }

    fn describe(&self) -> String {
        format!("key database {}", self.address())
    }

    fn location(&self, name: &str, version: u32) -> String {
        format!("{} key {}", self.address(), self.redis_key(name, version))
    }

    fn read(&self, name: &str, version: u32) -> Result<Option<Vec<u8>>, Error> {
        let key = self.redis_key(name, version);
        let fail = |reason| Error::LoadFailed {
            location: self.location(name, version),
            reason,
        };
        match self.call(&[b"GET", key.as_bytes()], fail)? {
            Reply::Bulk(value) => Ok(value),
            other => Err(fail(unexpected(&other))),
        }
    }

    fn create(&self, name: &str, version: u32, envelope: &[u8]) -> Result<(), Error> {
        let key = self.redis_key(name, version);
        let fail = |reason| Error::StoreFailed {
            location: self.location(name, version),
            reason,
        };
        match self.call(&[b"SET", key.as_bytes(), envelope, b"NX"], fail)? {
            Reply::Simple(ok) if ok == "OK" => Ok(()),
            Reply::Bulk(None) => Err(Error::Exists {
                name: name.to_owned(),
                version,
                location: self.location(name, version),
            }),
            other => Err(fail(unexpected(&other))),
        }
    }

    fn list(&self) -> Result<Vec<(String, u32)>, Error> {
        self.scan(&format!("{}*", self.prefix))
    }

    fn versions(&self, name: &str) -> Result<Vec<u32>, Error> {
        let keys = self.scan(&format!("{}{name}:*", self.prefix))?;
        Ok(keys
            .into_iter()
            .filter(|(n, _)| n == name)
            .map(|(_, v)| v)
            .collect())
    }
}

impl fmt::Debug for RedisBackend {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("RedisBackend")
            .field("address", &self.address())
            .field("user", &self.user)
            .field("password", &self.password.as_ref().map(|_| "<redacted>"))
            .field("prefix", &self.prefix)
            .field("connect_timeout", &self.connect_timeout)
            .field("io_timeout", &self.io_timeout)
            .finish()
    }
}

/// Describes a reply of the wrong type, without its content.
fn unexpected(reply: &Reply) -> String {
    let kind = match reply {
        Reply::Simple(_) => "a status",
        Reply::Error(_) => "an error",
        Reply::Int(_) => "an integer",
        Reply::Bulk(_) => "a string",
        Reply::Array(_) => "an array",
    };
    format!("unexpected reply from Redis: {kind}")
}

/// `host`, `host:port`, `[v6]` or `[v6]:port`.
fn split_host_port(s: &str) -> Option<(String, u16)> {
    let (host, port) = if let Some(rest) = s.strip_prefix('[') {
        let (host, after) = rest.split_once(']')?;
        match after {
            "" => (host, None),
            p => (host, Some(p.strip_prefix(':')?)),
        }
    } else {
        match s.rsplit_once(':') {
            Some((h, p)) => (h, Some(p)),
            None => (s, None),
        }
    };
    if host.is_empty() {
        return None;
    }
    let port = match port {
        None => DEFAULT_PORT,
        Some(p) if p.bytes().all(|b| b.is_ascii_digit()) => p.parse().ok().filter(|&p| p != 0)?,
        Some(_) => return None,
    };
    Some((host.to_owned(), port))
}

/// Decodes `%XX` escapes; `None` on a malformed escape or invalid UTF-8.
fn percent_decode(s: &str) -> Option<String> {
    let bytes = s.as_bytes();
    let mut out = Zeroizing::new(Vec::with_capacity(bytes.len()));
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'%' {
            let hex = bytes.get(i + 1..i + 3)?;
            let hex = std::str::from_utf8(hex).ok()?;
            out.push(u8::from_str_radix(hex, 16).ok()?);
            i += 3;
        } else {
            out.push(bytes[i]);
            i += 1;
        }
    }
    String::from_utf8(out.to_vec()).ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_url_forms() {
        let r = RedisBackend::from_url("redis://127.0.0.1:6380/2").unwrap();
        assert_eq!((r.host.as_str(), r.port, r.db), ("127.0.0.1", 6380, 2));
        assert!(r.password.is_none());
        let r = RedisBackend::from_url("redis://:p%40ss@keys.internal").unwrap();
        assert_eq!((r.host.as_str(), r.port, r.db), ("keys.internal", 6379, 0));
        assert_eq!(r.password.as_deref().map(String::as_str), Some("p@ss"));
        let r = RedisBackend::from_url("redis://vigil:pw@[::1]:7000/").unwrap();
        assert_eq!(
            (r.host.as_str(), r.port, r.user.as_deref()),
            ("::1", 7000, Some("vigil"))
        );
        assert_eq!(r.address(), "redis://[::1]:7000/0");
    }

    #[test]
    fn refuses_bad_urls_without_repeating_the_password() {
        for bad in [
            "http://h:1",
            "rediss://h:1",
            "redis://",
            "redis://h:0",
            "redis://h:x",
            "redis://h:70000",
            "redis://h/x",
            "redis://h/1?x",
            "redis://secretpw@h",
            "redis://:secret%zz@h",
        ] {
            let e = RedisBackend::from_url(bad).unwrap_err().to_string();
            assert!(!e.contains("secret"), "{e}");
        }
    }

    #[test]
    fn debug_hides_the_password() {
        let r = RedisBackend::from_url("redis://:hunter2@h:1").unwrap();
        let d = format!("{r:?}");
        assert!(!d.contains("hunter2") && d.contains("<redacted>"), "{d}");
    }

    #[test]
    fn parses_only_its_own_keys() {
        let r = RedisBackend::from_url("redis://h").unwrap();
        assert_eq!(
            r.parse_key(b"vigil:key:poison:3"),
            Some(("poison".into(), 3))
        );
        for other in [
            &b"vigil:key:poison"[..],
            b"vigil:key:poison:03",
            b"other:poison:1",
            b"vigil:key:a:b:1",
        ] {
            assert_eq!(r.parse_key(other), None);
        }
    }
}
