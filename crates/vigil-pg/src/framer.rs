//! Cutting a byte stream into messages.

use std::fmt;

use bytes::{Bytes, BytesMut};

use crate::backend::BackendMessage;
use crate::error::Error;
use crate::frontend::FrontendMessage;
use crate::startup::{CANCEL_REQUEST_CODE, GSSENC_REQUEST_CODE, SSL_REQUEST_CODE};
use crate::tag::{Direction, MessageTag};

/// The smallest value of a length field: the field itself.
pub const MIN_MESSAGE_LEN: usize = 4;
/// The smallest length of a startup packet: length and code.
pub const MIN_STARTUP_LEN: usize = 8;

/// The longest messages a [`Framer`] accepts, as values of the length field
/// (which counts itself but not the type byte), the way PostgreSQL checks
/// them: the type byte is checked first, then the length against the limit
/// for that type, before any of the body is awaited. A peer cannot make the
/// proxy wait for, or buffer, more than these.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Limits {
    /// Messages that may be long: Query, Parse, Bind, FunctionCall and
    /// CopyData from the client; RowDescription, DataRow, CopyData,
    /// ErrorResponse, NoticeResponse, NotificationResponse,
    /// FunctionCallResponse and ParameterDescription from the server.
    /// PostgreSQL allows 1 GiB less 2 bytes.
    pub max_message_len: usize,
    /// Every other tagged message. PostgreSQL allows 10,000 bytes for the
    /// client's (Sync, Execute, Describe, …); libpq 30,000 for the server's.
    pub max_small_message_len: usize,
    /// The client's `'p'` messages (password, SASL, GSSAPI), read before the
    /// client has authenticated. PostgreSQL allows 65,535 bytes.
    pub max_auth_len: usize,
    /// Untagged startup-phase packets. PostgreSQL allows 10,000 bytes after
    /// the length field.
    pub max_startup_len: usize,
}

impl Limits {
    /// PostgreSQL's limits on what clients send.
    pub const FRONTEND: Self = Self {
        max_message_len: 0x3fff_fffe,
        max_small_message_len: 10_000,
        max_auth_len: 65_535,
        max_startup_len: 10_000 + 4,
    };

    /// libpq's limits on what servers send.
    pub const BACKEND: Self = Self {
        max_message_len: 0x3fff_fffe,
        max_small_message_len: 30_000,
        max_auth_len: 65_535,
        max_startup_len: 10_000 + 4,
    };

    fn validate(&self) -> Result<(), Error> {
        let cap = i32::MAX as usize;
        let tagged = [
            self.max_message_len,
            self.max_small_message_len,
            self.max_auth_len,
        ];
        if tagged
            .iter()
            .any(|&m| !(MIN_MESSAGE_LEN..=cap).contains(&m))
            || !(MIN_STARTUP_LEN..=cap).contains(&self.max_startup_len)
        {
            return Err(Error::Misuse {
                reason: "limits must lie between the minimum message length and 2 GiB",
            });
        }
        Ok(())
    }
}

/// Where the next message ends, from its header alone.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Header {
    /// The type byte; `None` for an untagged startup packet.
    pub tag: Option<MessageTag>,
    /// Bytes in the whole message, type byte and length included.
    pub frame_len: usize,
}

impl Header {
    /// Bytes of the header: 5 with a type byte, 4 without.
    pub fn header_len(&self) -> usize {
        if self.tag.is_some() { 5 } else { 4 }
    }

    /// Bytes of the body.
    pub fn body_len(&self) -> usize {
        self.frame_len - self.header_len()
    }
}

/// Cuts the bytes received from one peer into messages.
///
/// One `Framer` per direction of a connection. A client's framer starts in
/// the startup phase, where packets have no type byte; once it has framed a
/// StartupMessage it expects tagged messages. (SSLRequest and GSSENCRequest
/// leave it in the startup phase: the StartupMessage follows, in clear or
/// inside the encrypted channel.) A server's framer expects tagged messages
/// from the start; the one-byte answer to SSLRequest is read before it (see
/// [`SslResponse`](crate::SslResponse)).
///
/// The framer checks the type byte and the length before any of the body is
/// received: an unknown type, a length below the minimum, or one above the
/// [`Limits`] for its type is an error as soon as its header arrives.
#[derive(Clone, Debug)]
pub struct Framer {
    direction: Direction,
    startup: bool,
    limits: Limits,
}

impl Framer {
    /// A framer for what a client sends, in the startup phase, with
    /// [`Limits::FRONTEND`].
    pub fn frontend() -> Self {
        Self {
            direction: Direction::Frontend,
            startup: true,
            limits: Limits::FRONTEND,
        }
    }

    /// A framer for what a server sends, with [`Limits::BACKEND`].
    pub fn backend() -> Self {
        Self {
            direction: Direction::Backend,
            startup: false,
            limits: Limits::BACKEND,
        }
    }

    /// The same framer with other limits. [`Error::Misuse`] if a limit is
    /// below the minimum message length or above 2 GiB.
    pub fn with_limits(mut self, limits: Limits) -> Result<Self, Error> {
        limits.validate()?;
        self.limits = limits;
        Ok(self)
    }

    /// Whose messages this framer reads.
    pub fn direction(&self) -> Direction {
        self.direction
    }

    /// Whether the next message is an untagged startup-phase packet.
    pub fn in_startup(&self) -> bool {
        self.startup
    }

    /// Ends the startup phase by hand, for a client's stream that starts
    /// after it (a capture taken mid-session, a test).
    pub fn skip_startup(&mut self) {
        self.startup = false;
    }

    /// The limits in force.
    pub fn limits(&self) -> &Limits {
        &self.limits
    }

    /// The largest length field accepted for a message with this type byte
    /// (`None`: an untagged startup packet).
    pub fn max_len(&self, tag: Option<MessageTag>) -> usize {
        let Some(tag) = tag else {
            return self.limits.max_startup_len;
        };
        let long = match self.direction {
            Direction::Frontend => {
                if tag == MessageTag::AUTH_RESPONSE {
                    return self.limits.max_auth_len;
                }
                matches!(
                    tag,
                    MessageTag::QUERY
                        | MessageTag::PARSE
                        | MessageTag::BIND
                        | MessageTag::FUNCTION_CALL
                        | MessageTag::COPY_DATA
                )
            }
            Direction::Backend => matches!(
                tag,
                MessageTag::ROW_DESCRIPTION
                    | MessageTag::DATA_ROW
                    | MessageTag::COPY_DATA
                    | MessageTag::ERROR_RESPONSE
                    | MessageTag::NOTICE_RESPONSE
                    | MessageTag::NOTIFICATION_RESPONSE
                    | MessageTag::FUNCTION_CALL_RESPONSE
                    | MessageTag::PARAMETER_DESCRIPTION
            ),
        };
        if long {
            self.limits.max_message_len
        } else {
            self.limits.max_small_message_len
        }
    }

    /// Reads the header of the next message at the start of `buf`: `None`
    /// until enough bytes for it have arrived. Consumes nothing. A proxy that
    /// streams a large message through without buffering it whole uses this
    /// to learn how many bytes belong to it.
    pub fn peek(&self, buf: &[u8]) -> Result<Option<Header>, Error> {
        let (tag, len_at, min) = if self.startup {
            (None, 0, MIN_STARTUP_LEN)
        } else {
            let Some(&byte) = buf.first() else {
                return Ok(None);
            };
            let tag = MessageTag(byte);
            if !tag.is_known(self.direction) {
                return Err(Error::UnknownTag(tag));
            }
            (Some(tag), 1, MIN_MESSAGE_LEN)
        };
        let Some(len) = buf.get(len_at..len_at + 4) else {
            return Ok(None);
        };
        let len = i32::from_be_bytes([len[0], len[1], len[2], len[3]]);
        let Ok(len) = usize::try_from(len) else {
            return Err(Error::BadLength {
                len: i64::from(len),
            });
        };
        if len < min {
            return Err(Error::BadLength { len: len as i64 });
        }
        let max = self.max_len(tag);
        if len > max {
            return Err(Error::Oversized { len, max });
        }
        Ok(Some(Header {
            tag,
            frame_len: len_at + len,
        }))
    }

    /// Takes the next complete message off the front of `buf`, without
    /// copying it: `Ok(None)` until all of it has arrived (then read more
    /// into `buf` and call again). On `Err` the stream cannot be framed any
    /// further; end the session.
    pub fn next(&mut self, buf: &mut BytesMut) -> Result<Option<Frame>, Error> {
        let Some(header) = self.peek(buf)? else {
            return Ok(None);
        };
        if buf.len() < header.frame_len {
            return Ok(None);
        }
        let bytes = buf.split_to(header.frame_len).freeze();
        self.advance(header.tag, &bytes);
        Ok(Some(Frame {
            tag: header.tag,
            bytes,
        }))
    }

    /// The same as [`Framer::next`] for a borrowed buffer: the next complete
    /// message at the start of `buf`, or `Ok(None)` until all of it is there.
    /// The caller drops [`FrameRef::len`] bytes before the next call.
    pub fn next_ref<'b>(&mut self, buf: &'b [u8]) -> Result<Option<FrameRef<'b>>, Error> {
        let Some(header) = self.peek(buf)? else {
            return Ok(None);
        };
        let Some(bytes) = buf.get(..header.frame_len) else {
            return Ok(None);
        };
        self.advance(header.tag, bytes);
        Ok(Some(FrameRef {
            tag: header.tag,
            bytes,
        }))
    }

    /// The messages of `input`, a buffer that holds all the bytes there will
    /// be (a capture, a fuzz input): the last item is [`Error::Truncated`] if
    /// the input ends inside a message. Nothing follows an error.
    pub fn frames<'f, 'b>(&'f mut self, input: &'b [u8]) -> Frames<'f, 'b> {
        Frames {
            framer: self,
            rest: input,
            failed: false,
        }
    }

    /// Checks what is left when the peer closes the connection: an empty
    /// buffer is a clean end, anything else a message cut short
    /// ([`Error::Truncated`]), or garbage already visible in its header.
    pub fn finish(&self, buf: &[u8]) -> Result<(), Error> {
        if buf.is_empty() {
            return Ok(());
        }
        self.peek(buf)?;
        Err(Error::Truncated)
    }

    /// After a startup packet: a StartupMessage ends the startup phase.
    fn advance(&mut self, tag: Option<MessageTag>, bytes: &[u8]) {
        if tag.is_none() {
            let code = bytes
                .get(4..8)
                .map(|c| u32::from_be_bytes([c[0], c[1], c[2], c[3]]));
            if !matches!(
                code,
                Some(SSL_REQUEST_CODE | GSSENC_REQUEST_CODE | CANCEL_REQUEST_CODE)
            ) {
                self.startup = false;
            }
        }
    }
}

/// Iterator of [`Framer::frames`].
#[derive(Debug)]
pub struct Frames<'f, 'b> {
    framer: &'f mut Framer,
    rest: &'b [u8],
    failed: bool,
}

impl<'b> Iterator for Frames<'_, 'b> {
    type Item = Result<FrameRef<'b>, Error>;

    fn next(&mut self) -> Option<Self::Item> {
        if self.failed || self.rest.is_empty() {
            return None;
        }
        match self.framer.next_ref(self.rest) {
            Ok(Some(frame)) => {
                self.rest = self.rest.get(frame.len()..).unwrap_or_default();
                Some(Ok(frame))
            }
            Ok(None) => {
                self.failed = true;
                Some(Err(Error::Truncated))
            }
            Err(e) => {
                self.failed = true;
                Some(Err(e))
            }
        }
    }
}

/// One whole message, header included, taken off the receive buffer without
/// copying: relay it with [`Frame::as_bytes`], decode it with
/// [`Frame::frontend`] or [`Frame::backend`].
///
/// `Debug` shows the type and length only: a frame may hold a password.
#[derive(Clone, PartialEq, Eq)]
pub struct Frame {
    tag: Option<MessageTag>,
    bytes: Bytes,
}

impl Frame {
    /// A borrowed view of this frame.
    pub fn view(&self) -> FrameRef<'_> {
        FrameRef {
            tag: self.tag,
            bytes: &self.bytes,
        }
    }

    /// The type byte; `None` for an untagged startup packet.
    pub fn tag(&self) -> Option<MessageTag> {
        self.tag
    }

    /// The whole message as received, header included.
    pub fn as_bytes(&self) -> &[u8] {
        &self.bytes
    }

    /// The whole message, for relaying without a copy.
    pub fn into_bytes(self) -> Bytes {
        self.bytes
    }

    /// The body: what follows the type byte and the length.
    pub fn body(&self) -> &[u8] {
        self.view().body()
    }

    /// Bytes in the whole message.
    pub fn len(&self) -> usize {
        self.bytes.len()
    }

    /// Always false: a message has at least its length field.
    pub fn is_empty(&self) -> bool {
        self.bytes.is_empty()
    }

    /// Decodes the frame as a message from a client.
    pub fn frontend(&self) -> Result<FrontendMessage<'_>, Error> {
        self.view().frontend()
    }

    /// Decodes the frame as a message from a server.
    pub fn backend(&self) -> Result<BackendMessage<'_>, Error> {
        self.view().backend()
    }
}

impl fmt::Debug for Frame {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Debug::fmt(&self.view(), f)
    }
}

/// One whole message borrowed from a buffer; see [`Frame`].
#[derive(Clone, Copy, PartialEq, Eq)]
pub struct FrameRef<'b> {
    tag: Option<MessageTag>,
    bytes: &'b [u8],
}

impl<'b> FrameRef<'b> {
    /// The type byte; `None` for an untagged startup packet.
    pub fn tag(&self) -> Option<MessageTag> {
        self.tag
    }

    /// The whole message, header included.
    pub fn as_bytes(&self) -> &'b [u8] {
        self.bytes
    }

    /// The body: what follows the type byte and the length.
    pub fn body(&self) -> &'b [u8] {
        let header = if self.tag.is_some() { 5 } else { 4 };
        self.bytes.get(header..).unwrap_or_default()
    }

    /// Bytes in the whole message.
    pub fn len(&self) -> usize {
        self.bytes.len()
    }

    /// Always false: a message has at least its length field.
    pub fn is_empty(&self) -> bool {
        self.bytes.is_empty()
    }

    /// Decodes the frame as a message from a client.
    pub fn frontend(&self) -> Result<FrontendMessage<'b>, Error> {
        match self.tag {
            Some(tag) => FrontendMessage::decode(tag, self.body()),
            None => FrontendMessage::decode_startup(self.body()),
        }
    }

    /// Decodes the frame as a message from a server. [`Error::Misuse`] for
    /// an untagged frame, which only a client's framer makes.
    pub fn backend(&self) -> Result<BackendMessage<'b>, Error> {
        match self.tag {
            Some(tag) => BackendMessage::decode(tag, self.body()),
            None => Err(Error::Misuse {
                reason: "an untagged startup packet is not a backend message",
            }),
        }
    }
}

impl fmt::Debug for FrameRef<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Frame")
            .field("tag", &self.tag)
            .field("len", &self.bytes.len())
            .finish()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn waits_for_the_whole_message() {
        let msg = b"Q\0\0\0\x0dSELECT 1\0";
        let mut framer = Framer::frontend();
        framer.startup = false;
        let mut buf = BytesMut::new();
        for (i, &b) in msg.iter().enumerate() {
            buf.extend_from_slice(&[b]);
            let got = framer.next(&mut buf).unwrap();
            if i + 1 < msg.len() {
                assert!(got.is_none(), "framed after {} bytes", i + 1);
            } else {
                let frame = got.unwrap();
                assert_eq!(frame.as_bytes(), msg);
                assert_eq!(frame.body(), b"SELECT 1\0");
                assert!(buf.is_empty());
            }
        }
    }

    #[test]
    fn unknown_tag_is_reported_before_the_length() {
        let mut framer = Framer::backend();
        let mut buf = BytesMut::from(&b"Q"[..]);
        assert_eq!(
            framer.next(&mut buf),
            Err(Error::UnknownTag(MessageTag(b'Q')))
        );
    }

    #[test]
    fn small_types_have_small_limits() {
        let framer = Framer::frontend().with_limits(Limits::FRONTEND).unwrap();
        assert_eq!(framer.max_len(Some(MessageTag::SYNC)), 10_000);
        assert_eq!(framer.max_len(Some(MessageTag::QUERY)), 0x3fff_fffe);
        assert_eq!(framer.max_len(Some(MessageTag::AUTH_RESPONSE)), 65_535);
        assert_eq!(framer.max_len(None), 10_004);
        let backend = Framer::backend();
        assert_eq!(backend.max_len(Some(MessageTag::DATA_ROW)), 0x3fff_fffe);
        assert_eq!(backend.max_len(Some(MessageTag::PARAMETER_STATUS)), 30_000);
    }

    #[test]
    fn limits_are_validated() {
        let mut limits = Limits::FRONTEND;
        limits.max_startup_len = 7;
        assert!(matches!(
            Framer::frontend().with_limits(limits),
            Err(Error::Misuse { .. })
        ));
        limits.max_startup_len = 8;
        limits.max_message_len = usize::MAX;
        assert!(Framer::frontend().with_limits(limits).is_err());
    }

    #[test]
    fn startup_phase_ends_with_the_startup_message() {
        let mut framer = Framer::frontend();
        let ssl = [0, 0, 0, 8, 0x04, 0xd2, 0x16, 0x2f];
        let frame = framer.next_ref(&ssl).unwrap().unwrap();
        assert_eq!(frame.tag(), None);
        assert!(framer.in_startup());
        let startup = b"\0\0\0\x09\0\x03\0\0\0";
        framer.next_ref(startup).unwrap().unwrap();
        assert!(!framer.in_startup());
    }
}
