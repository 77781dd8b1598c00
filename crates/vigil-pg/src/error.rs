//! The one error type of the codec.

use crate::startup::ProtocolVersion;
use crate::tag::MessageTag;

/// Why bytes could not be framed, decoded or encoded.
///
/// Most variants say the peer sent garbage ([`Error::is_peer_fault`] is true):
/// the proxy ends that session with an event and an ErrorResponse whose
/// SQLSTATE is [`Error::sqlstate`]. The others say the caller misused the API
/// and are bugs in vigil, not in the peer.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// The input ended before the message did: fewer bytes than the length
    /// field declares, or not even a whole header. A streaming reader waits
    /// for more bytes instead; this error means no more will come.
    #[error("message truncated: the input ends before the message does")]
    Truncated,
    /// A length field holds an impossible value: a message length below the
    /// minimum (4, or 8 for a startup packet) or negative, or a value length
    /// below -1.
    #[error("invalid length {len}")]
    BadLength {
        /// The length as sent, sign-extended.
        len: i64,
    },
    /// A message is longer than the configured maximum for its type.
    #[error("message of {len} bytes exceeds the maximum of {max}")]
    Oversized {
        /// The declared length of the message, header included.
        len: usize,
        /// The maximum in force for this message type.
        max: usize,
    },
    /// A message type byte that this direction does not know.
    #[error("unknown message type {0:?}")]
    UnknownTag(MessageTag),
    /// A string is not NUL-terminated within its message, or not UTF-8.
    #[error("invalid string: {0}")]
    BadString(StringError),
    /// A count announces more items than the rest of the message could hold.
    #[error("count {count} does not fit in the {remaining} bytes left in the message")]
    BadCount {
        /// The count as sent.
        count: usize,
        /// Bytes left in the message body after the count.
        remaining: usize,
    },
    /// A field runs past the end of its message body (PostgreSQL: "insufficient
    /// data left in message").
    #[error("a field runs past the end of the message")]
    ShortBody,
    /// Bytes are left after the last field of a message.
    #[error("{count} unexpected bytes after the end of the message")]
    TrailingBytes {
        /// How many bytes are left.
        count: usize,
    },
    /// A field holds a value outside its set: an unknown authentication
    /// request, transaction status, Describe or Close target, request code or
    /// cancel key length.
    #[error("invalid {field}: {value}")]
    BadValue {
        /// Which field.
        field: &'static str,
        /// The value as sent.
        value: i64,
    },
    /// A startup packet asks for a protocol other than 3.x.
    #[error("unsupported frontend protocol {0}")]
    UnsupportedProtocol(ProtocolVersion),
    /// Misuse: a value cannot be put on the wire (a string with a NUL byte,
    /// more than 65,535 items in a count, a message over 2 GiB, a malformed
    /// SQLSTATE).
    #[error("cannot encode: {reason}")]
    Unencodable {
        /// What is wrong with the value.
        reason: &'static str,
    },
    /// Misuse: the API was called in a way that cannot work (inconsistent
    /// limits, a startup frame decoded as a backend message).
    #[error("API misuse: {reason}")]
    Misuse {
        /// What was wrong.
        reason: &'static str,
    },
}

impl Error {
    /// True when the peer sent garbage, false when the caller misused the API.
    pub fn is_peer_fault(&self) -> bool {
        !matches!(self, Self::Unencodable { .. } | Self::Misuse { .. })
    }

    /// The SQLSTATE PostgreSQL reports for such input: `08P01`
    /// (protocol_violation) for garbage from the peer, `0A000`
    /// (feature_not_supported) for an unsupported protocol version, `XX000`
    /// (internal_error) for misuse.
    pub fn sqlstate(&self) -> &'static str {
        match self {
            Self::UnsupportedProtocol(_) => "0A000",
            Self::Unencodable { .. } | Self::Misuse { .. } => "XX000",
            _ => "08P01",
        }
    }
}

/// What is wrong with a string.
#[derive(Clone, Copy, Debug, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum StringError {
    /// Its bytes are not UTF-8.
    #[error("not UTF-8")]
    NotUtf8,
    /// No NUL byte ends it before the end of the message.
    #[error("no terminating NUL byte")]
    Unterminated,
}

impl From<StringError> for Error {
    fn from(e: StringError) -> Self {
        Self::BadString(e)
    }
}
