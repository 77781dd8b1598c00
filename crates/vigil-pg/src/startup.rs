//! The untagged packets a client sends first: StartupMessage, SSLRequest,
//! GSSENCRequest and CancelRequest, and the one-byte answer to SSLRequest.

use std::fmt;

use bytes::{BufMut, BytesMut};

use crate::error::Error;
use crate::reader::{Reader, Writer};
use crate::views::Opaque;

/// The request code of SSLRequest (1234.5679).
pub const SSL_REQUEST_CODE: u32 = 80_877_103;
/// The request code of GSSENCRequest (1234.5680).
pub const GSSENC_REQUEST_CODE: u32 = 80_877_104;
/// The request code of CancelRequest (1234.5678).
pub const CANCEL_REQUEST_CODE: u32 = 80_877_102;
/// The shortest cancel key the protocol allows.
pub const MIN_CANCEL_KEY_LEN: usize = 4;
/// The longest cancel key the protocol allows (protocol 3.2; 3.0 keys are
/// always 4 bytes).
pub const MAX_CANCEL_KEY_LEN: usize = 256;

/// A protocol version: major in the high 16 bits of the code, minor in the
/// low.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct ProtocolVersion {
    /// 3 for every version vigil speaks.
    pub major: u16,
    /// 0, or 2 since PostgreSQL 18 (longer cancel keys).
    pub minor: u16,
}

impl ProtocolVersion {
    /// Protocol 3.0, PostgreSQL 7.4 to 17.
    pub const V3_0: Self = Self { major: 3, minor: 0 };
    /// Protocol 3.2, PostgreSQL 18: cancel keys of up to 256 bytes.
    pub const V3_2: Self = Self { major: 3, minor: 2 };

    /// The version of a 32-bit code as sent on the wire.
    pub fn from_code(code: u32) -> Self {
        Self {
            major: (code >> 16) as u16,
            minor: (code & 0xffff) as u16,
        }
    }

    /// The 32-bit code as sent on the wire.
    pub fn code(self) -> u32 {
        (u32::from(self.major) << 16) | u32::from(self.minor)
    }
}

impl fmt::Display for ProtocolVersion {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}.{}", self.major, self.minor)
    }
}

/// StartupMessage: the protocol version and the session parameters (`user`,
/// `database`, `application_name`, `options`, `replication`, and protocol
/// options named `_pq_.*`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Startup<'a> {
    /// The requested protocol version (major 3).
    pub version: ProtocolVersion,
    /// The parameters, in the order sent.
    pub params: StartupParams<'a>,
}

impl<'a> Startup<'a> {
    /// The value of parameter `name`, if sent.
    pub fn param(&self, name: &str) -> Option<&'a str> {
        self.params.get(name)
    }

    /// The `user` parameter, which PostgreSQL requires.
    pub fn user(&self) -> Option<&'a str> {
        self.param("user")
    }

    /// The `database` parameter, or as PostgreSQL defaults it, the user.
    pub fn database(&self) -> Option<&'a str> {
        self.param("database").or_else(|| self.user())
    }

    /// The `application_name` parameter.
    pub fn application_name(&self) -> Option<&'a str> {
        self.param("application_name")
    }

    /// Writes a StartupMessage with these parameters, for a proxy that
    /// rewrites the client's (for instance to ask an older server for 3.0).
    pub fn write<'p>(
        out: &mut BytesMut,
        version: ProtocolVersion,
        params: impl IntoIterator<Item = (&'p str, &'p str)>,
    ) -> Result<(), Error> {
        let start = out.len();
        let result = (|| {
            let mut w = Writer::new(out, None);
            w.u32(version.code());
            for (name, value) in params {
                if name.is_empty() {
                    return Err(Error::Unencodable {
                        reason: "an empty startup parameter name ends the list",
                    });
                }
                w.cstr(name)?.cstr(value)?;
            }
            w.u8(0);
            w.finish()
        })();
        if result.is_err() {
            out.truncate(start);
        }
        result
    }

    pub(crate) fn read(version: ProtocolVersion, r: &mut Reader<'a>) -> Result<Self, Error> {
        let start = r.clone();
        loop {
            let name = r.cstr()?;
            if name.is_empty() {
                break;
            }
            r.cstr()?;
        }
        let with_terminator = start.prefix(r);
        let raw = with_terminator
            .get(..with_terminator.len().saturating_sub(1))
            .unwrap_or_default();
        Ok(Self {
            version,
            params: StartupParams { raw },
        })
    }

    pub(crate) fn encode(&self, out: &mut BytesMut) -> Result<(), Error> {
        let mut w = Writer::new(out, None);
        w.u32(self.version.code()).bytes(self.params.raw).u8(0);
        w.finish()
    }
}

/// The parameters of a StartupMessage: name and value pairs.
#[derive(Clone, Copy, PartialEq, Eq, Default)]
pub struct StartupParams<'a> {
    /// The pairs, without the final empty name.
    raw: &'a [u8],
}

impl<'a> StartupParams<'a> {
    /// The pairs in order.
    pub fn iter(&self) -> impl Iterator<Item = (&'a str, &'a str)> + 'a {
        let mut r = Reader::new(self.raw);
        std::iter::from_fn(move || {
            if r.is_empty() {
                return None;
            }
            Some((r.cstr().ok()?, r.cstr().ok()?))
        })
    }

    /// The value of `name`: the last one if it was sent twice.
    pub fn get(&self, name: &str) -> Option<&'a str> {
        self.iter()
            .filter(|(n, _)| *n == name)
            .map(|(_, v)| v)
            .last()
    }

    /// How many pairs.
    pub fn len(&self) -> usize {
        self.iter().count()
    }

    /// Whether there are none.
    pub fn is_empty(&self) -> bool {
        self.raw.is_empty()
    }
}

impl fmt::Debug for StartupParams<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_map().entries(self.iter()).finish()
    }
}

/// CancelRequest: the process id and secret key from the BackendKeyData of
/// the session to cancel. Sent on a new connection, which then closes.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct CancelRequest<'a> {
    /// The backend's process id.
    pub process_id: i32,
    /// The secret key: 4 bytes in protocol 3.0, up to 256 in 3.2.
    pub secret_key: Opaque<'a>,
}

impl<'a> CancelRequest<'a> {
    pub(crate) fn read(r: &mut Reader<'a>) -> Result<Self, Error> {
        let process_id = r.i32()?;
        let secret_key = read_cancel_key(r)?;
        Ok(Self {
            process_id,
            secret_key,
        })
    }

    pub(crate) fn encode(&self, out: &mut BytesMut) -> Result<(), Error> {
        check_cancel_key(self.secret_key.len())?;
        let mut w = Writer::new(out, None);
        w.u32(CANCEL_REQUEST_CODE)
            .i32(self.process_id)
            .bytes(self.secret_key.as_bytes());
        w.finish()
    }
}

/// Reads a cancel key that extends to the end of the body.
pub(crate) fn read_cancel_key<'a>(r: &mut Reader<'a>) -> Result<Opaque<'a>, Error> {
    let key = r.rest();
    if !(MIN_CANCEL_KEY_LEN..=MAX_CANCEL_KEY_LEN).contains(&key.len()) {
        return Err(Error::BadValue {
            field: "cancel key length",
            value: key.len() as i64,
        });
    }
    Ok(Opaque::new(key))
}

pub(crate) fn check_cancel_key(len: usize) -> Result<(), Error> {
    if (MIN_CANCEL_KEY_LEN..=MAX_CANCEL_KEY_LEN).contains(&len) {
        Ok(())
    } else {
        Err(Error::Unencodable {
            reason: "a cancel key must have 4 to 256 bytes",
        })
    }
}

/// The one byte a server sends back for SSLRequest (and, with
/// [`SslResponse::Reject`], for GSSENCRequest): not a framed message.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum SslResponse {
    /// `'S'`: the server goes on with a TLS handshake.
    Accept,
    /// `'N'`: no encryption; the client may send a StartupMessage in clear.
    Reject,
}

impl SslResponse {
    /// The byte on the wire.
    pub fn to_byte(self) -> u8 {
        match self {
            Self::Accept => b'S',
            Self::Reject => b'N',
        }
    }

    /// Reads the server's answer. Any other byte is [`Error::BadValue`]: an
    /// old server may answer with an ErrorResponse (`'E'`) instead, which the
    /// caller then frames as a backend message.
    pub fn from_byte(b: u8) -> Result<Self, Error> {
        match b {
            b'S' => Ok(Self::Accept),
            b'N' => Ok(Self::Reject),
            other => Err(Error::BadValue {
                field: "SSLRequest response",
                value: i64::from(other),
            }),
        }
    }

    /// Appends the byte.
    pub fn encode(self, out: &mut BytesMut) {
        out.put_u8(self.to_byte());
    }
}

/// Whether the first bytes of a connection are a TLS handshake record rather
/// than a startup packet: PostgreSQL 17's direct SSL (`sslnegotiation=direct`)
/// starts with a ClientHello (record type 0x16) and no SSLRequest. A startup
/// packet cannot start with 0x16: its length would be over 300 MiB.
pub fn is_direct_tls(first_bytes: &[u8]) -> bool {
    first_bytes.first() == Some(&0x16)
}
