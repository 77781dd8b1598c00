//! Messages from server to client.

use std::fmt;

use bytes::BytesMut;

use crate::error::Error;
use crate::reader::{Reader, Writer};
use crate::startup::{check_cancel_key, read_cancel_key};
use crate::tag::MessageTag;
use crate::views::{FormatCodes, Oids, Opaque, Values, write_values};

/// A message from server to client, borrowing from the frame it came in.
///
/// Decode one from a [`Frame`](crate::Frame) with
/// [`Frame::backend`](crate::Frame::backend), or from a body with
/// [`BackendMessage::decode`].
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum BackendMessage<'a> {
    /// `'R'`: an authentication request or result.
    Authentication(Authentication<'a>),
    /// `'K'`: the process id and cancel key of the session.
    BackendKeyData(BackendKeyData<'a>),
    /// `'2'`: Bind succeeded.
    BindComplete,
    /// `'3'`: Close succeeded.
    CloseComplete,
    /// `'C'`: a statement finished; its tag carries the row count.
    CommandComplete(CommandComplete<'a>),
    /// `'W'`: COPY BOTH (replication) begins.
    CopyBothResponse(CopyResponse<'a>),
    /// `'d'`: COPY TO STDOUT data.
    CopyData(Opaque<'a>),
    /// `'c'`: COPY TO STDOUT is complete.
    CopyDone,
    /// `'G'`: the server is ready for COPY FROM STDIN data.
    CopyInResponse(CopyResponse<'a>),
    /// `'H'`: COPY TO STDOUT begins.
    CopyOutResponse(CopyResponse<'a>),
    /// `'D'`: one result row.
    DataRow(DataRow<'a>),
    /// `'I'`: the query string was empty.
    EmptyQueryResponse,
    /// `'E'`: an error.
    ErrorResponse(Diagnostic<'a>),
    /// `'V'`: the result of a FunctionCall.
    FunctionCallResponse(FunctionCallResponse<'a>),
    /// `'v'`: the server speaks an older minor version, or ignored some
    /// protocol options.
    NegotiateProtocolVersion(NegotiateProtocolVersion<'a>),
    /// `'n'`: the statement returns no rows.
    NoData,
    /// `'N'`: a notice or warning.
    NoticeResponse(Diagnostic<'a>),
    /// `'A'`: a NOTIFY on a channel the session listens to.
    NotificationResponse(Notification<'a>),
    /// `'t'`: the parameter types of a prepared statement.
    ParameterDescription(ParameterDescription<'a>),
    /// `'S'`: a run-time parameter's value (server_version, TimeZone, …).
    ParameterStatus(ParameterStatus<'a>),
    /// `'1'`: Parse succeeded.
    ParseComplete,
    /// `'s'`: Execute reached its row limit.
    PortalSuspended,
    /// `'Z'`: the server waits for a new query; the transaction status.
    ReadyForQuery(TransactionStatus),
    /// `'T'`: the columns of the rows to come.
    RowDescription(RowDescription<'a>),
}

impl<'a> BackendMessage<'a> {
    /// Decodes the body of a message (what follows the type byte and the
    /// length).
    pub fn decode(tag: MessageTag, body: &'a [u8]) -> Result<Self, Error> {
        let mut r = Reader::new(body);
        let msg = match tag {
            MessageTag::AUTHENTICATION => Self::Authentication(Authentication::read(&mut r)?),
            MessageTag::BACKEND_KEY_DATA => Self::BackendKeyData(BackendKeyData {
                process_id: r.i32()?,
                secret_key: read_cancel_key(&mut r)?,
            }),
            MessageTag::BIND_COMPLETE => Self::BindComplete,
            MessageTag::CLOSE_COMPLETE => Self::CloseComplete,
            MessageTag::COMMAND_COMPLETE => {
                Self::CommandComplete(CommandComplete { tag: r.cstr()? })
            }
            MessageTag::COPY_BOTH_RESPONSE => Self::CopyBothResponse(CopyResponse::read(&mut r)?),
            MessageTag::COPY_DATA => Self::CopyData(Opaque::new(r.rest())),
            MessageTag::COPY_DONE => Self::CopyDone,
            MessageTag::COPY_IN_RESPONSE => Self::CopyInResponse(CopyResponse::read(&mut r)?),
            MessageTag::COPY_OUT_RESPONSE => Self::CopyOutResponse(CopyResponse::read(&mut r)?),
            MessageTag::DATA_ROW => Self::DataRow(DataRow {
                columns: Values::read(&mut r)?,
            }),
            MessageTag::EMPTY_QUERY_RESPONSE => Self::EmptyQueryResponse,
            MessageTag::ERROR_RESPONSE => Self::ErrorResponse(Diagnostic::read(&mut r)?),
            MessageTag::FUNCTION_CALL_RESPONSE => {
                Self::FunctionCallResponse(FunctionCallResponse {
                    result: r.value()?.map(Opaque::new),
                })
            }
            MessageTag::NEGOTIATE_PROTOCOL_VERSION => {
                Self::NegotiateProtocolVersion(NegotiateProtocolVersion::read(&mut r)?)
            }
            MessageTag::NO_DATA => Self::NoData,
            MessageTag::NOTICE_RESPONSE => Self::NoticeResponse(Diagnostic::read(&mut r)?),
            MessageTag::NOTIFICATION_RESPONSE => Self::NotificationResponse(Notification {
                process_id: r.i32()?,
                channel: r.cstr()?,
                payload: r.cstr()?,
            }),
            MessageTag::PARAMETER_DESCRIPTION => Self::ParameterDescription(ParameterDescription {
                types: Oids::read(&mut r)?,
            }),
            MessageTag::PARAMETER_STATUS => Self::ParameterStatus(ParameterStatus {
                name: r.cstr()?,
                value: r.cstr()?,
            }),
            MessageTag::PARSE_COMPLETE => Self::ParseComplete,
            MessageTag::PORTAL_SUSPENDED => Self::PortalSuspended,
            MessageTag::READY_FOR_QUERY => Self::ReadyForQuery(TransactionStatus::read(&mut r)?),
            MessageTag::ROW_DESCRIPTION => Self::RowDescription(RowDescription::read(&mut r)?),
            other => return Err(Error::UnknownTag(other)),
        };
        r.finish()?;
        Ok(msg)
    }

    /// The type byte.
    pub fn tag(&self) -> MessageTag {
        match self {
            Self::Authentication(_) => MessageTag::AUTHENTICATION,
            Self::BackendKeyData(_) => MessageTag::BACKEND_KEY_DATA,
            Self::BindComplete => MessageTag::BIND_COMPLETE,
            Self::CloseComplete => MessageTag::CLOSE_COMPLETE,
            Self::CommandComplete(_) => MessageTag::COMMAND_COMPLETE,
            Self::CopyBothResponse(_) => MessageTag::COPY_BOTH_RESPONSE,
            Self::CopyData(_) => MessageTag::COPY_DATA,
            Self::CopyDone => MessageTag::COPY_DONE,
            Self::CopyInResponse(_) => MessageTag::COPY_IN_RESPONSE,
            Self::CopyOutResponse(_) => MessageTag::COPY_OUT_RESPONSE,
            Self::DataRow(_) => MessageTag::DATA_ROW,
            Self::EmptyQueryResponse => MessageTag::EMPTY_QUERY_RESPONSE,
            Self::ErrorResponse(_) => MessageTag::ERROR_RESPONSE,
            Self::FunctionCallResponse(_) => MessageTag::FUNCTION_CALL_RESPONSE,
            Self::NegotiateProtocolVersion(_) => MessageTag::NEGOTIATE_PROTOCOL_VERSION,
            Self::NoData => MessageTag::NO_DATA,
            Self::NoticeResponse(_) => MessageTag::NOTICE_RESPONSE,
            Self::NotificationResponse(_) => MessageTag::NOTIFICATION_RESPONSE,
            Self::ParameterDescription(_) => MessageTag::PARAMETER_DESCRIPTION,
            Self::ParameterStatus(_) => MessageTag::PARAMETER_STATUS,
            Self::ParseComplete => MessageTag::PARSE_COMPLETE,
            Self::PortalSuspended => MessageTag::PORTAL_SUSPENDED,
            Self::ReadyForQuery(_) => MessageTag::READY_FOR_QUERY,
            Self::RowDescription(_) => MessageTag::ROW_DESCRIPTION,
        }
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
        let mut w = Writer::new(out, Some(self.tag()));
        match self {
            Self::Authentication(a) => a.write(&mut w)?,
            Self::BackendKeyData(k) => {
                check_cancel_key(k.secret_key.len())?;
                w.i32(k.process_id).bytes(k.secret_key.as_bytes());
            }
            Self::CommandComplete(c) => {
                w.cstr(c.tag)?;
            }
            Self::CopyBothResponse(c) | Self::CopyInResponse(c) | Self::CopyOutResponse(c) => {
                w.u8(c.format as u8);
                c.column_formats.write(&mut w)?;
            }
            Self::CopyData(d) => {
                w.bytes(d.as_bytes());
            }
            Self::DataRow(d) => d.columns.write(&mut w)?,
            Self::ErrorResponse(d) | Self::NoticeResponse(d) => {
                w.bytes(d.raw).u8(0);
            }
            Self::FunctionCallResponse(f) => {
                w.value(f.result.map(|r| r.as_bytes()))?;
            }
            Self::NegotiateProtocolVersion(n) => {
                let count =
                    i32::try_from(n.unrecognized.count).map_err(|_| Error::Unencodable {
                        reason: "too many protocol options",
                    })?;
                w.i32(n.newest_minor).i32(count).bytes(n.unrecognized.raw);
            }
            Self::NotificationResponse(n) => {
                w.i32(n.process_id).cstr(n.channel)?.cstr(n.payload)?;
            }
            Self::ParameterDescription(p) => p.types.write(&mut w)?,
            Self::ParameterStatus(p) => {
                w.cstr(p.name)?.cstr(p.value)?;
            }
            Self::ReadyForQuery(s) => {
                w.u8(s.to_byte());
            }
            Self::RowDescription(r) => {
                w.count(r.count)?.bytes(r.raw);
            }
            Self::BindComplete
            | Self::CloseComplete
            | Self::CopyDone
            | Self::EmptyQueryResponse
            | Self::NoData
            | Self::ParseComplete
            | Self::PortalSuspended => {}
        }
        w.finish()
    }
}

/// `'R'`: what the server asks of the client to authenticate, or that it
/// succeeded.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum Authentication<'a> {
    /// 3: send the password in clear.
    CleartextPassword,
    /// 7: start GSSAPI.
    Gss,
    /// 8: GSSAPI or SSPI data.
    GssContinue(Opaque<'a>),
    /// 2: Kerberos V5 (not supported since PostgreSQL 9.4).
    KerberosV5,
    /// 5: send the MD5 hash of the password with this salt.
    Md5Password {
        /// The salt.
        salt: [u8; 4],
    },
    /// 0: authentication succeeded.
    Ok,
    /// 10: start SASL with one of these mechanisms.
    Sasl(SaslMechanisms<'a>),
    /// 11: a SASL challenge (SCRAM server-first-message).
    SaslContinue(Opaque<'a>),
    /// 12: the SASL outcome (SCRAM server-final-message).
    SaslFinal(Opaque<'a>),
    /// 9: start SSPI.
    Sspi,
}

impl<'a> Authentication<'a> {
    fn read(r: &mut Reader<'a>) -> Result<Self, Error> {
        let code = r.i32()?;
        Ok(match code {
            0 => Self::Ok,
            2 => Self::KerberosV5,
            3 => Self::CleartextPassword,
            5 => Self::Md5Password { salt: r.array()? },
            7 => Self::Gss,
            8 => Self::GssContinue(Opaque::new(r.rest())),
            9 => Self::Sspi,
            10 => Self::Sasl(SaslMechanisms::read(r)?),
            11 => Self::SaslContinue(Opaque::new(r.rest())),
            12 => Self::SaslFinal(Opaque::new(r.rest())),
            other => {
                return Err(Error::BadValue {
                    field: "authentication request",
                    value: i64::from(other),
                });
            }
        })
    }

    /// The request code on the wire.
    pub fn code(&self) -> i32 {
        match self {
            Self::Ok => 0,
            Self::KerberosV5 => 2,
            Self::CleartextPassword => 3,
            Self::Md5Password { .. } => 5,
            Self::Gss => 7,
            Self::GssContinue(_) => 8,
            Self::Sspi => 9,
            Self::Sasl(_) => 10,
            Self::SaslContinue(_) => 11,
            Self::SaslFinal(_) => 12,
        }
    }

    fn write(&self, w: &mut Writer<'_>) -> Result<(), Error> {
        w.i32(self.code());
        match self {
            Self::Md5Password { salt } => {
                w.bytes(salt);
            }
            Self::Sasl(m) => {
                w.bytes(m.raw).u8(0);
            }
            Self::GssContinue(d) | Self::SaslContinue(d) | Self::SaslFinal(d) => {
                w.bytes(d.as_bytes());
            }
            Self::CleartextPassword | Self::Gss | Self::KerberosV5 | Self::Ok | Self::Sspi => {}
        }
        Ok(())
    }

    /// Writes AuthenticationSASL offering these mechanisms, in this order.
    ///
    /// A proxy that terminates TLS passes the server's list through
    /// [`SaslMechanisms::without_channel_binding`]: a client that chose
    /// `SCRAM-SHA-256-PLUS` would bind to the proxy's certificate, which the
    /// server cannot check, and fail.
    pub fn write_sasl<'m>(
        out: &mut BytesMut,
        mechanisms: impl IntoIterator<Item = &'m str>,
    ) -> Result<(), Error> {
        let start = out.len();
        let result = (|| {
            let mut w = Writer::new(out, Some(MessageTag::AUTHENTICATION));
            w.i32(10);
            for m in mechanisms {
                if m.is_empty() {
                    return Err(Error::Unencodable {
                        reason: "an empty SASL mechanism name ends the list",
                    });
                }
                w.cstr(m)?;
            }
            w.u8(0);
            w.finish()
        })();
        if result.is_err() {
            out.truncate(start);
        }
        result
    }
}

/// The SASL mechanisms of AuthenticationSASL, in the server's order of
/// preference.
#[derive(Clone, Copy, PartialEq, Eq, Default)]
pub struct SaslMechanisms<'a> {
    /// The names with their NULs, without the final empty name.
    raw: &'a [u8],
}

impl<'a> SaslMechanisms<'a> {
    fn read(r: &mut Reader<'a>) -> Result<Self, Error> {
        let start = r.clone();
        while !r.cstr()?.is_empty() {}
        let with_terminator = start.prefix(r);
        Ok(Self {
            raw: with_terminator
                .get(..with_terminator.len().saturating_sub(1))
                .unwrap_or_default(),
        })
    }

    /// The mechanism names.
    pub fn iter(&self) -> impl Iterator<Item = &'a str> + 'a {
        let mut r = Reader::new(self.raw);
        std::iter::from_fn(move || if r.is_empty() { None } else { r.cstr().ok() })
    }

    /// Whether `name` is offered.
    pub fn contains(&self, name: &str) -> bool {
        self.iter().any(|m| m == name)
    }

    /// The mechanisms without those that bind to the TLS channel
    /// (`SCRAM-SHA-256-PLUS` and any other `-PLUS`), for a proxy that
    /// terminates TLS. A client configured with `channel_binding=require`
    /// then refuses to authenticate, which is the safe outcome.
    pub fn without_channel_binding(&self) -> impl Iterator<Item = &'a str> + 'a {
        self.iter().filter(|m| !m.ends_with("-PLUS"))
    }
}

impl fmt::Debug for SaslMechanisms<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_list().entries(self.iter()).finish()
    }
}

/// `'K'`: BackendKeyData, what a CancelRequest must quote.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct BackendKeyData<'a> {
    /// The backend's process id.
    pub process_id: i32,
    /// The cancel key: 4 bytes in protocol 3.0, up to 256 in 3.2.
    pub secret_key: Opaque<'a>,
}

/// `'C'`: CommandComplete.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct CommandComplete<'a> {
    /// The command tag: `SELECT 3`, `INSERT 0 5`, `CREATE TABLE`, …
    pub tag: &'a str,
}

impl<'a> CommandComplete<'a> {
    /// The rows the command returned or touched, for the tags that carry a
    /// count: `INSERT oid n`, `SELECT n` (also for CREATE TABLE AS and SELECT
    /// INTO), `UPDATE n`, `DELETE n`, `MERGE n`, `MOVE n`, `FETCH n`,
    /// `COPY n`. `None` for every other tag.
    pub fn rows(&self) -> Option<u64> {
        self.parts().1
    }

    /// The command without its counts: `INSERT` for `INSERT 0 5`, the whole
    /// tag for a tag without counts (`CREATE TABLE`).
    pub fn command(&self) -> &'a str {
        self.parts().0
    }

    /// [`command`](Self::command) and [`rows`](Self::rows) together, from
    /// one look at the tag (the proxy reads both for every statement).
    pub fn parts(&self) -> (&'a str, Option<u64>) {
        let tag = self.tag;
        let Some((command, mut rest)) = tag.split_once(' ') else {
            return (tag, None);
        };
        let numbers = match command {
            "INSERT" => 2,
            "SELECT" | "UPDATE" | "DELETE" | "MERGE" | "MOVE" | "FETCH" | "COPY" => 1,
            _ => return (tag, None),
        };
        // `numbers` words of digits, one space apart, and nothing after;
        // the last is the count.
        for _ in 1..numbers {
            match rest.split_once(' ') {
                Some((word, more)) if is_number(word) => rest = more,
                _ => return (tag, None),
            }
        }
        match is_number(rest).then(|| rest.parse().ok()).flatten() {
            Some(rows) => (command, Some(rows)),
            None => (tag, None),
        }
    }
}

/// A non-empty run of ASCII digits.
fn is_number(word: &str) -> bool {
    !word.is_empty() && word.bytes().all(|b| b.is_ascii_digit())
}

/// CopyInResponse, CopyOutResponse or CopyBothResponse.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct CopyResponse<'a> {
    /// Overall format: 0 for text, 1 for binary.
    pub format: i8,
    /// The format of each column.
    pub column_formats: FormatCodes<'a>,
}

impl<'a> CopyResponse<'a> {
    fn read(r: &mut Reader<'a>) -> Result<Self, Error> {
        Ok(Self {
            format: r.u8()? as i8,
            column_formats: FormatCodes::read(r)?,
        })
    }
}

/// `'D'`: DataRow. The columns are slices of the frame, never copied.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct DataRow<'a> {
    /// Column values, `None` for NULL. `Debug` shows only sizes.
    pub columns: Values<'a>,
}

impl DataRow<'_> {
    /// Writes a DataRow with these column values.
    pub fn write<'v>(
        out: &mut BytesMut,
        columns: impl ExactSizeIterator<Item = Option<&'v [u8]>>,
    ) -> Result<(), Error> {
        let start = out.len();
        let result = (|| {
            let mut w = Writer::new(out, Some(MessageTag::DATA_ROW));
            write_values(&mut w, columns)?;
            w.finish()
        })();
        if result.is_err() {
            out.truncate(start);
        }
        result
    }
}

/// The code of a field in ErrorResponse and NoticeResponse.
#[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct FieldCode(pub u8);

impl FieldCode {
    /// `S`: severity, possibly localized (`ERROR`, `FEHLER`).
    pub const SEVERITY: Self = Self(b'S');
    /// `V`: severity, never localized (PostgreSQL 9.6+).
    pub const SEVERITY_NONLOCALIZED: Self = Self(b'V');
    /// `C`: the SQLSTATE code.
    pub const SQLSTATE: Self = Self(b'C');
    /// `M`: the primary message.
    pub const MESSAGE: Self = Self(b'M');
    /// `D`: detail; may echo data values (a unique violation's key).
    pub const DETAIL: Self = Self(b'D');
    /// `H`: hint.
    pub const HINT: Self = Self(b'H');
    /// `P`: cursor position in the query string, in characters from 1.
    pub const POSITION: Self = Self(b'P');
    /// `p`: position in an internally generated query.
    pub const INTERNAL_POSITION: Self = Self(b'p');
    /// `q`: the internally generated query.
    pub const INTERNAL_QUERY: Self = Self(b'q');
    /// `W`: context (call stack).
    pub const WHERE: Self = Self(b'W');
    /// `s`: schema name.
    pub const SCHEMA: Self = Self(b's');
    /// `t`: table name.
    pub const TABLE: Self = Self(b't');
    /// `c`: column name.
    pub const COLUMN: Self = Self(b'c');
    /// `d`: data type name.
    pub const DATA_TYPE: Self = Self(b'd');
    /// `n`: constraint name.
    pub const CONSTRAINT: Self = Self(b'n');
    /// `F`: source file.
    pub const FILE: Self = Self(b'F');
    /// `L`: source line.
    pub const LINE: Self = Self(b'L');
    /// `R`: source routine.
    pub const ROUTINE: Self = Self(b'R');
}

impl fmt::Debug for FieldCode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.0.is_ascii_graphic() {
            write!(f, "{}", char::from(self.0))
        } else {
            write!(f, "0x{:02x}", self.0)
        }
    }
}

/// The severity of an ErrorResponse or NoticeResponse vigil writes.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Severity {
    /// `DEBUG` (notice).
    Debug,
    /// `ERROR`: the statement failed.
    Error,
    /// `FATAL`: the session ends.
    Fatal,
    /// `INFO` (notice).
    Info,
    /// `LOG` (notice).
    Log,
    /// `NOTICE` (notice).
    Notice,
    /// `PANIC`: every session ends.
    Panic,
    /// `WARNING` (notice).
    Warning,
}

impl Severity {
    /// The word on the wire.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Debug => "DEBUG",
            Self::Error => "ERROR",
            Self::Fatal => "FATAL",
            Self::Info => "INFO",
            Self::Log => "LOG",
            Self::Notice => "NOTICE",
            Self::Panic => "PANIC",
            Self::Warning => "WARNING",
        }
    }
}

/// The fields of an ErrorResponse or NoticeResponse, by code.
///
/// The message, detail and other texts may echo data values; the proxy
/// redacts them before they reach a log.
#[derive(Clone, Copy, PartialEq, Eq, Default)]
pub struct Diagnostic<'a> {
    /// The fields, without the final zero byte.
    raw: &'a [u8],
}

impl<'a> Diagnostic<'a> {
    fn read(r: &mut Reader<'a>) -> Result<Self, Error> {
        let start = r.clone();
        loop {
            if r.u8()? == 0 {
                break;
            }
            r.cstr()?;
        }
        let with_terminator = start.prefix(r);
        Ok(Self {
            raw: with_terminator
                .get(..with_terminator.len().saturating_sub(1))
                .unwrap_or_default(),
        })
    }

    /// The fields in order.
    pub fn iter(&self) -> impl Iterator<Item = (FieldCode, &'a str)> + 'a {
        let mut r = Reader::new(self.raw);
        std::iter::from_fn(move || {
            if r.is_empty() {
                return None;
            }
            Some((FieldCode(r.u8().ok()?), r.cstr().ok()?))
        })
    }

    /// The field with this code, if present.
    pub fn get(&self, code: FieldCode) -> Option<&'a str> {
        self.iter().find(|(c, _)| *c == code).map(|(_, v)| v)
    }

    /// The severity, non-localized (`V`) if sent, else `S`.
    pub fn severity(&self) -> Option<&'a str> {
        self.get(FieldCode::SEVERITY_NONLOCALIZED)
            .or_else(|| self.get(FieldCode::SEVERITY))
    }

    /// The SQLSTATE code (`C`), e.g. `23505`.
    pub fn sqlstate(&self) -> Option<&'a str> {
        self.get(FieldCode::SQLSTATE)
    }

    /// The primary message (`M`).
    pub fn message(&self) -> Option<&'a str> {
        self.get(FieldCode::MESSAGE)
    }

    /// The detail (`D`).
    pub fn detail(&self) -> Option<&'a str> {
        self.get(FieldCode::DETAIL)
    }

    /// The hint (`H`).
    pub fn hint(&self) -> Option<&'a str> {
        self.get(FieldCode::HINT)
    }

    /// The cursor position (`P`), in characters from 1.
    pub fn position(&self) -> Option<u32> {
        self.get(FieldCode::POSITION)?.parse().ok()
    }

    /// Writes an ErrorResponse (`tag` [`MessageTag::ERROR_RESPONSE`]) or a
    /// NoticeResponse ([`MessageTag::NOTICE_RESPONSE`]) with these fields.
    pub fn write(
        out: &mut BytesMut,
        tag: MessageTag,
        fields: &[(FieldCode, &str)],
    ) -> Result<(), Error> {
        if tag != MessageTag::ERROR_RESPONSE && tag != MessageTag::NOTICE_RESPONSE {
            return Err(Error::Misuse {
                reason: "a diagnostic is an ErrorResponse or a NoticeResponse",
            });
        }
        let start = out.len();
        let result = (|| {
            let mut w = Writer::new(out, Some(tag));
            for &(code, value) in fields {
                if code.0 == 0 {
                    return Err(Error::Unencodable {
                        reason: "field code 0 ends the field list",
                    });
                }
                w.u8(code.0).cstr(value)?;
            }
            w.u8(0);
            w.finish()
        })();
        if result.is_err() {
            out.truncate(start);
        }
        result
    }

    /// Writes the ErrorResponse a proxy sends of its own: severity (`S` and
    /// `V`), SQLSTATE (`C`) and message (`M`). The SQLSTATE must be five
    /// digits or upper-case letters.
    pub fn write_error(
        out: &mut BytesMut,
        severity: Severity,
        sqlstate: &str,
        message: &str,
    ) -> Result<(), Error> {
        if sqlstate.len() != 5
            || !sqlstate
                .bytes()
                .all(|b| b.is_ascii_digit() || b.is_ascii_uppercase())
        {
            return Err(Error::Unencodable {
                reason: "a SQLSTATE is five digits or upper-case letters",
            });
        }
        Self::write(
            out,
            MessageTag::ERROR_RESPONSE,
            &[
                (FieldCode::SEVERITY, severity.as_str()),
                (FieldCode::SEVERITY_NONLOCALIZED, severity.as_str()),
                (FieldCode::SQLSTATE, sqlstate),
                (FieldCode::MESSAGE, message),
            ],
        )
    }
}

impl fmt::Debug for Diagnostic<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_map().entries(self.iter()).finish()
    }
}

/// `'V'`: FunctionCallResponse.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct FunctionCallResponse<'a> {
    /// The result; `None` for NULL.
    pub result: Option<Opaque<'a>>,
}

/// `'v'`: NegotiateProtocolVersion.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct NegotiateProtocolVersion<'a> {
    /// The newest minor version the server supports for the requested major
    /// version.
    pub newest_minor: i32,
    /// The `_pq_.*` options of the StartupMessage the server did not know.
    pub unrecognized: ProtocolOptions<'a>,
}

impl<'a> NegotiateProtocolVersion<'a> {
    fn read(r: &mut Reader<'a>) -> Result<Self, Error> {
        let newest_minor = r.i32()?;
        let count = r.i32()?;
        let count = usize::try_from(count).map_err(|_| Error::BadValue {
            field: "unrecognized option count",
            value: i64::from(count),
        })?;
        // Every name takes at least its NUL.
        if count > r.remaining() {
            return Err(Error::BadCount {
                count,
                remaining: r.remaining(),
            });
        }
        let start = r.clone();
        for _ in 0..count {
            r.cstr()?;
        }
        Ok(Self {
            newest_minor,
            unrecognized: ProtocolOptions {
                count,
                raw: start.prefix(r),
            },
        })
    }
}

/// Option names in NegotiateProtocolVersion.
#[derive(Clone, Copy, PartialEq, Eq, Default)]
pub struct ProtocolOptions<'a> {
    count: usize,
    raw: &'a [u8],
}

impl<'a> ProtocolOptions<'a> {
    /// The names.
    pub fn iter(&self) -> impl Iterator<Item = &'a str> + 'a {
        let mut r = Reader::new(self.raw);
        let mut left = self.count;
        std::iter::from_fn(move || {
            left = left.checked_sub(1)?;
            r.cstr().ok()
        })
    }

    /// How many names.
    pub fn len(&self) -> usize {
        self.count
    }

    /// Whether there are none.
    pub fn is_empty(&self) -> bool {
        self.count == 0
    }
}

impl fmt::Debug for ProtocolOptions<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_list().entries(self.iter()).finish()
    }
}

/// `'A'`: NotificationResponse.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Notification<'a> {
    /// The process id of the notifying backend.
    pub process_id: i32,
    /// The channel.
    pub channel: &'a str,
    /// The payload.
    pub payload: &'a str,
}

/// `'t'`: ParameterDescription.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ParameterDescription<'a> {
    /// The type OID of each parameter.
    pub types: Oids<'a>,
}

/// `'S'`: ParameterStatus.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ParameterStatus<'a> {
    /// The parameter, e.g. `server_version`.
    pub name: &'a str,
    /// Its value.
    pub value: &'a str,
}

/// The transaction status in ReadyForQuery.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum TransactionStatus {
    /// `'E'`: in a failed transaction; statements fail until it ends.
    Failed,
    /// `'I'`: idle, not in a transaction.
    Idle,
    /// `'T'`: in a transaction block.
    InTransaction,
}

impl TransactionStatus {
    fn read(r: &mut Reader<'_>) -> Result<Self, Error> {
        match r.u8()? {
            b'E' => Ok(Self::Failed),
            b'I' => Ok(Self::Idle),
            b'T' => Ok(Self::InTransaction),
            other => Err(Error::BadValue {
                field: "transaction status",
                value: i64::from(other),
            }),
        }
    }

    /// The byte on the wire.
    pub fn to_byte(self) -> u8 {
        match self {
            Self::Failed => b'E',
            Self::Idle => b'I',
            Self::InTransaction => b'T',
        }
    }
}

/// The size of a field description after its name.
const FIELD_FIXED: usize = 18;

/// `'T'`: RowDescription.
#[derive(Clone, Copy, PartialEq, Eq, Default)]
pub struct RowDescription<'a> {
    count: usize,
    raw: &'a [u8],
}

impl<'a> RowDescription<'a> {
    fn read(r: &mut Reader<'a>) -> Result<Self, Error> {
        // Every field takes at least its name's NUL and 18 fixed bytes.
        let count = r.count(1 + FIELD_FIXED)?;
        let start = r.clone();
        for _ in 0..count {
            r.cstr()?;
            r.take(FIELD_FIXED)?;
        }
        Ok(Self {
            count,
            raw: start.prefix(r),
        })
    }

    /// How many columns.
    pub fn len(&self) -> usize {
        self.count
    }

    /// Whether there are none.
    pub fn is_empty(&self) -> bool {
        self.count == 0
    }

    /// The column descriptions in order.
    pub fn fields(&self) -> impl Iterator<Item = FieldDescription<'a>> + 'a {
        let mut r = Reader::new(self.raw);
        let mut left = self.count;
        std::iter::from_fn(move || {
            left = left.checked_sub(1)?;
            Some(FieldDescription {
                name: r.cstr().ok()?,
                table_oid: r.u32().ok()?,
                column_id: r.i16().ok()?,
                type_oid: r.u32().ok()?,
                type_size: r.i16().ok()?,
                type_modifier: r.i32().ok()?,
                format: r.i16().ok()?,
            })
        })
    }

    /// Writes a RowDescription with these fields.
    pub fn write(out: &mut BytesMut, fields: &[FieldDescription<'_>]) -> Result<(), Error> {
        let start = out.len();
        let result = (|| {
            let mut w = Writer::new(out, Some(MessageTag::ROW_DESCRIPTION));
            w.count(fields.len())?;
            for f in fields {
                w.cstr(f.name)?
                    .u32(f.table_oid)
                    .i16(f.column_id)
                    .u32(f.type_oid)
                    .i16(f.type_size)
                    .i32(f.type_modifier)
                    .i16(f.format);
            }
            w.finish()
        })();
        if result.is_err() {
            out.truncate(start);
        }
        result
    }
}

impl fmt::Debug for RowDescription<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_list().entries(self.fields()).finish()
    }
}

/// One column of a RowDescription.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct FieldDescription<'a> {
    /// The column name.
    pub name: &'a str,
    /// The table's OID, or 0 if the column is not a table column.
    pub table_oid: u32,
    /// The column's attribute number, or 0.
    pub column_id: i16,
    /// The data type's OID.
    pub type_oid: u32,
    /// The type size (`pg_type.typlen`); negative for variable width.
    pub type_size: i16,
    /// The type modifier (`pg_attribute.atttypmod`).
    pub type_modifier: i32,
    /// 0 for text, 1 for binary; 0 in a Describe reply (not yet known).
    pub format: i16,
}
