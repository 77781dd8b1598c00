//! Messages from client to server.

use bytes::BytesMut;

use crate::error::Error;
use crate::reader::{Reader, Writer};
use crate::startup::{
    CANCEL_REQUEST_CODE, CancelRequest, GSSENC_REQUEST_CODE, ProtocolVersion, SSL_REQUEST_CODE,
    Startup,
};
use crate::tag::MessageTag;
use crate::views::{FormatCodes, Oids, Opaque, Values, write_values};

/// A message from client to server, borrowing from the frame it came in.
///
/// The first four variants are the untagged packets of the startup phase;
/// the rest are tagged. Decode one from a [`Frame`](crate::Frame) with
/// [`Frame::frontend`](crate::Frame::frontend), or from bytes with
/// [`FrontendMessage::decode`] and [`FrontendMessage::decode_startup`].
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum FrontendMessage<'a> {
    /// `'p'`: PasswordMessage, SASLInitialResponse, SASLResponse or
    /// GSSResponse, told apart only by the authentication request that came
    /// before. Opaque: never logged.
    AuthResponse(AuthResponse<'a>),
    /// `'B'`: bind parameter values to a prepared statement, making a portal.
    Bind(Bind<'a>),
    /// Untagged: cancel the running query of another session.
    CancelRequest(CancelRequest<'a>),
    /// `'C'`: close a prepared statement or a portal.
    Close(Close<'a>),
    /// `'d'`: COPY FROM STDIN data.
    CopyData(Opaque<'a>),
    /// `'c'`: COPY FROM STDIN is complete.
    CopyDone,
    /// `'f'`: COPY FROM STDIN failed on the client side.
    CopyFail(CopyFail<'a>),
    /// `'D'`: describe a prepared statement or a portal.
    Describe(Describe<'a>),
    /// `'E'`: execute a portal.
    Execute(Execute<'a>),
    /// `'H'`: ask the server to send what it has buffered.
    Flush,
    /// `'F'`: fast-path function call.
    FunctionCall(FunctionCall<'a>),
    /// Untagged: ask for GSSAPI encryption.
    GssEncRequest,
    /// `'P'`: prepare a statement.
    Parse(Parse<'a>),
    /// `'Q'`: simple query, possibly several statements.
    Query(Query<'a>),
    /// Untagged: ask for TLS.
    SslRequest,
    /// Untagged: start a session.
    Startup(Startup<'a>),
    /// `'S'`: end of an extended-query batch.
    Sync,
    /// `'X'`: the client is closing the connection.
    Terminate,
}

impl<'a> FrontendMessage<'a> {
    /// Decodes the body of a tagged message (what follows the type byte and
    /// the length).
    pub fn decode(tag: MessageTag, body: &'a [u8]) -> Result<Self, Error> {
        let mut r = Reader::new(body);
        let msg = match tag {
            MessageTag::AUTH_RESPONSE => Self::AuthResponse(AuthResponse(Opaque::new(r.rest()))),
            MessageTag::BIND => Self::Bind(Bind::read(&mut r)?),
            MessageTag::CLOSE => Self::Close(Close {
                target: Target::read(&mut r)?,
                name: r.cstr()?,
            }),
            MessageTag::COPY_DATA => Self::CopyData(Opaque::new(r.rest())),
            MessageTag::COPY_DONE => Self::CopyDone,
            MessageTag::COPY_FAIL => Self::CopyFail(CopyFail { message: r.cstr()? }),
            MessageTag::DESCRIBE => Self::Describe(Describe {
                target: Target::read(&mut r)?,
                name: r.cstr()?,
            }),
            MessageTag::EXECUTE => Self::Execute(Execute {
                portal: r.cstr()?,
                max_rows: r.i32()?,
            }),
            MessageTag::FLUSH => Self::Flush,
            MessageTag::FUNCTION_CALL => Self::FunctionCall(FunctionCall::read(&mut r)?),
            MessageTag::PARSE => Self::Parse(Parse {
                name: r.cstr()?,
                sql: r.cstr()?,
                param_types: Oids::read(&mut r)?,
            }),
            MessageTag::QUERY => Self::Query(Query { sql: r.cstr()? }),
            MessageTag::SYNC => Self::Sync,
            MessageTag::TERMINATE => Self::Terminate,
            other => return Err(Error::UnknownTag(other)),
        };
        r.finish()?;
        Ok(msg)
    }

    /// Decodes the body of an untagged startup-phase packet (what follows
    /// the length): StartupMessage, SSLRequest, GSSENCRequest or
    /// CancelRequest.
    pub fn decode_startup(body: &'a [u8]) -> Result<Self, Error> {
        let mut r = Reader::new(body);
        let code = r.u32()?;
        let msg = match code {
            SSL_REQUEST_CODE => Self::SslRequest,
            GSSENC_REQUEST_CODE => Self::GssEncRequest,
            CANCEL_REQUEST_CODE => Self::CancelRequest(CancelRequest::read(&mut r)?),
            code => {
                let version = ProtocolVersion::from_code(code);
                match version.major {
                    3 => Self::Startup(Startup::read(version, &mut r)?),
                    1234 => {
                        return Err(Error::BadValue {
                            field: "startup request code",
                            value: i64::from(code),
                        });
                    }
                    _ => return Err(Error::UnsupportedProtocol(version)),
                }
            }
        };
        r.finish()?;
        Ok(msg)
    }

    /// The type byte, or `None` for an untagged startup packet.
    pub fn tag(&self) -> Option<MessageTag> {
        Some(match self {
            Self::AuthResponse(_) => MessageTag::AUTH_RESPONSE,
            Self::Bind(_) => MessageTag::BIND,
            Self::Close(_) => MessageTag::CLOSE,
            Self::CopyData(_) => MessageTag::COPY_DATA,
            Self::CopyDone => MessageTag::COPY_DONE,
            Self::CopyFail(_) => MessageTag::COPY_FAIL,
            Self::Describe(_) => MessageTag::DESCRIBE,
            Self::Execute(_) => MessageTag::EXECUTE,
            Self::Flush => MessageTag::FLUSH,
            Self::FunctionCall(_) => MessageTag::FUNCTION_CALL,
            Self::Parse(_) => MessageTag::PARSE,
            Self::Query(_) => MessageTag::QUERY,
            Self::Sync => MessageTag::SYNC,
            Self::Terminate => MessageTag::TERMINATE,
            Self::CancelRequest(_) | Self::GssEncRequest | Self::SslRequest | Self::Startup(_) => {
                return None;
            }
        })
    }

    /// Appends the message, header included, to `out`. Decoding what this
    /// writes gives back an equal message, and for a decoded message the
    /// bytes are the ones received. On error `out` is left as it was.
    pub fn encode(&self, out: &mut BytesMut) -> Result<(), Error> {
        let start = out.len();
        let result = self.encode_inner(out);
        if result.is_err() {
            out.truncate(start);
        }
        result
    }

    fn encode_inner(&self, out: &mut BytesMut) -> Result<(), Error> {
        match self {
            Self::CancelRequest(c) => return c.encode(out),
            Self::GssEncRequest => {
                let mut w = Writer::new(out, None);
                w.u32(GSSENC_REQUEST_CODE);
                return w.finish();
            }
            Self::SslRequest => {
                let mut w = Writer::new(out, None);
                w.u32(SSL_REQUEST_CODE);
                return w.finish();
            }
            Self::Startup(s) => return s.encode(out),
            _ => {}
        }
        let mut w = Writer::new(out, self.tag());
        match self {
            Self::AuthResponse(a) => {
                w.bytes(a.0.as_bytes());
            }
            Self::Bind(b) => {
                w.cstr(b.portal)?.cstr(b.statement)?;
                b.param_formats.write(&mut w)?;
                b.params.write(&mut w)?;
                b.result_formats.write(&mut w)?;
            }
            Self::Close(Close { target, name }) | Self::Describe(Describe { target, name }) => {
                w.u8(target.to_byte()).cstr(name)?;
            }
            Self::CopyData(d) => {
                w.bytes(d.as_bytes());
            }
            Self::CopyFail(f) => {
                w.cstr(f.message)?;
            }
            Self::Execute(e) => {
                w.cstr(e.portal)?.i32(e.max_rows);
            }
            Self::FunctionCall(f) => {
                w.u32(f.function_oid);
                f.arg_formats.write(&mut w)?;
                f.args.write(&mut w)?;
                w.i16(f.result_format);
            }
            Self::Parse(p) => {
                w.cstr(p.name)?.cstr(p.sql)?;
                p.param_types.write(&mut w)?;
            }
            Self::Query(q) => {
                w.cstr(q.sql)?;
            }
            Self::CopyDone | Self::Flush | Self::Sync | Self::Terminate => {}
            Self::CancelRequest(_) | Self::GssEncRequest | Self::SslRequest | Self::Startup(_) => {}
        }
        w.finish()
    }
}

/// The body of a `'p'` message: a password, a SASL message or a GSSAPI
/// token. Which one depends on the authentication request before, so it
/// stays opaque; [`AuthResponse::sasl_initial`] reads it as the first SASL
/// message once the caller knows that is what it is.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct AuthResponse<'a>(pub Opaque<'a>);

impl<'a> AuthResponse<'a> {
    /// Reads the body as SASLInitialResponse: the chosen mechanism and the
    /// client's first message. Valid only after AuthenticationSASL.
    pub fn sasl_initial(&self) -> Result<SaslInitialResponse<'a>, Error> {
        let mut r = Reader::new(self.0.as_bytes());
        let mechanism = r.cstr()?;
        let data = r.value()?.map(Opaque::new);
        r.finish()?;
        Ok(SaslInitialResponse { mechanism, data })
    }
}

/// SASLInitialResponse, read from an [`AuthResponse`].
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct SaslInitialResponse<'a> {
    /// The mechanism the client chose, e.g. `SCRAM-SHA-256`. A client that
    /// chose `SCRAM-SHA-256-PLUS` binds to the TLS channel it sees.
    pub mechanism: &'a str,
    /// The client-first-message; `None` if the field was -1.
    pub data: Option<Opaque<'a>>,
}

/// `'Q'`: a simple query.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Query<'a> {
    /// The SQL text, possibly several statements separated by `;`.
    pub sql: &'a str,
}

/// `'P'`: Parse.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Parse<'a> {
    /// The statement name; empty for the unnamed statement.
    pub name: &'a str,
    /// The SQL text, with `$n` placeholders.
    pub sql: &'a str,
    /// Parameter type OIDs the client specified (0 for unspecified).
    pub param_types: Oids<'a>,
}

/// `'B'`: Bind.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Bind<'a> {
    /// The portal to create; empty for the unnamed portal.
    pub portal: &'a str,
    /// The prepared statement; empty for the unnamed statement.
    pub statement: &'a str,
    /// Formats of the parameters.
    pub param_formats: FormatCodes<'a>,
    /// Parameter values: never interpreted, never logged (`Debug` shows
    /// only their sizes).
    pub params: Values<'a>,
    /// Formats asked for the result columns.
    pub result_formats: FormatCodes<'a>,
}

impl<'a> Bind<'a> {
    fn read(r: &mut Reader<'a>) -> Result<Self, Error> {
        Ok(Self {
            portal: r.cstr()?,
            statement: r.cstr()?,
            param_formats: FormatCodes::read(r)?,
            params: Values::read(r)?,
            result_formats: FormatCodes::read(r)?,
        })
    }

    /// Writes a Bind message from parts; formats are given as codes.
    pub fn write<'v>(
        out: &mut BytesMut,
        portal: &str,
        statement: &str,
        param_formats: &[i16],
        params: impl ExactSizeIterator<Item = Option<&'v [u8]>>,
        result_formats: &[i16],
    ) -> Result<(), Error> {
        let start = out.len();
        let result = (|| {
            let mut w = Writer::new(out, Some(MessageTag::BIND));
            w.cstr(portal)?.cstr(statement)?;
            write_codes(&mut w, param_formats)?;
            write_values(&mut w, params)?;
            write_codes(&mut w, result_formats)?;
            w.finish()
        })();
        if result.is_err() {
            out.truncate(start);
        }
        result
    }
}

fn write_codes(w: &mut Writer<'_>, codes: &[i16]) -> Result<(), Error> {
    w.count(codes.len())?;
    for &c in codes {
        w.i16(c);
    }
    Ok(())
}

/// Whether Describe or Close names a statement or a portal.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Target {
    /// `'P'`: a portal.
    Portal,
    /// `'S'`: a prepared statement.
    Statement,
}

impl Target {
    fn read(r: &mut Reader<'_>) -> Result<Self, Error> {
        match r.u8()? {
            b'P' => Ok(Self::Portal),
            b'S' => Ok(Self::Statement),
            other => Err(Error::BadValue {
                field: "Describe or Close target",
                value: i64::from(other),
            }),
        }
    }

    /// The byte on the wire.
    pub fn to_byte(self) -> u8 {
        match self {
            Self::Portal => b'P',
            Self::Statement => b'S',
        }
    }
}

/// `'D'`: Describe.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Describe<'a> {
    /// Statement or portal.
    pub target: Target,
    /// Its name; empty for the unnamed one.
    pub name: &'a str,
}

/// `'C'`: Close.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Close<'a> {
    /// Statement or portal.
    pub target: Target,
    /// Its name; empty for the unnamed one.
    pub name: &'a str,
}

/// `'E'`: Execute.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Execute<'a> {
    /// The portal; empty for the unnamed portal.
    pub portal: &'a str,
    /// The most rows to return; 0 (or less) for no limit.
    pub max_rows: i32,
}

/// `'f'`: CopyFail.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct CopyFail<'a> {
    /// Why the client gave up.
    pub message: &'a str,
}

/// `'F'`: FunctionCall (the fast-path interface).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct FunctionCall<'a> {
    /// The function's OID.
    pub function_oid: u32,
    /// Formats of the arguments.
    pub arg_formats: FormatCodes<'a>,
    /// Argument values: never interpreted, never logged.
    pub args: Values<'a>,
    /// Format asked for the result.
    pub result_format: i16,
}

impl<'a> FunctionCall<'a> {
    fn read(r: &mut Reader<'a>) -> Result<Self, Error> {
        Ok(Self {
            function_oid: r.u32()?,
            arg_formats: FormatCodes::read(r)?,
            args: Values::read(r)?,
            result_format: r.i16()?,
        })
    }
}
