//! Message type bytes, and the direction that gives them their meaning.

use std::fmt;

/// Which peer sends a message.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Direction {
    /// Server to client.
    Backend,
    /// Client to server.
    Frontend,
}

/// The type byte that starts every message after the startup phase.
///
/// The same byte means different things in each direction: `'D'` is
/// Describe from the client but DataRow from the server, and likewise `'S'`
/// (Sync, ParameterStatus), `'E'` (Execute, ErrorResponse), `'C'` (Close,
/// CommandComplete) and `'H'` (Flush, CopyOutResponse). So the constants
/// below name the message, not the byte, and come in two sets:
/// [`MessageTag::FRONTEND`] and [`MessageTag::BACKEND`]. Use
/// [`MessageTag::name`] with a [`Direction`] to print one.
#[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct MessageTag(pub u8);

impl MessageTag {
    // Frontend (client to server).
    /// Frontend `'B'`: Bind.
    pub const BIND: Self = Self(b'B');
    /// Frontend `'C'`: Close.
    pub const CLOSE: Self = Self(b'C');
    /// Frontend `'D'`: Describe.
    pub const DESCRIBE: Self = Self(b'D');
    /// Frontend `'E'`: Execute.
    pub const EXECUTE: Self = Self(b'E');
    /// Frontend `'f'`: CopyFail.
    pub const COPY_FAIL: Self = Self(b'f');
    /// Frontend `'F'`: FunctionCall.
    pub const FUNCTION_CALL: Self = Self(b'F');
    /// Frontend `'H'`: Flush.
    pub const FLUSH: Self = Self(b'H');
    /// Frontend `'P'`: Parse.
    pub const PARSE: Self = Self(b'P');
    /// Frontend `'p'`: PasswordMessage, SASLInitialResponse, SASLResponse or
    /// GSSResponse; which one depends on the authentication request before.
    pub const AUTH_RESPONSE: Self = Self(b'p');
    /// Frontend `'Q'`: Query.
    pub const QUERY: Self = Self(b'Q');
    /// Frontend `'S'`: Sync.
    pub const SYNC: Self = Self(b'S');
    /// Frontend `'X'`: Terminate.
    pub const TERMINATE: Self = Self(b'X');

    // Both directions.
    /// Both directions `'c'`: CopyDone.
    pub const COPY_DONE: Self = Self(b'c');
    /// Both directions `'d'`: CopyData.
    pub const COPY_DATA: Self = Self(b'd');

    // Backend (server to client).
    /// Backend `'1'`: ParseComplete.
    pub const PARSE_COMPLETE: Self = Self(b'1');
    /// Backend `'2'`: BindComplete.
    pub const BIND_COMPLETE: Self = Self(b'2');
    /// Backend `'3'`: CloseComplete.
    pub const CLOSE_COMPLETE: Self = Self(b'3');
    /// Backend `'A'`: NotificationResponse.
    pub const NOTIFICATION_RESPONSE: Self = Self(b'A');
    /// Backend `'C'`: CommandComplete.
    pub const COMMAND_COMPLETE: Self = Self(b'C');
    /// Backend `'D'`: DataRow.
    pub const DATA_ROW: Self = Self(b'D');
    /// Backend `'E'`: ErrorResponse.
    pub const ERROR_RESPONSE: Self = Self(b'E');
    /// Backend `'G'`: CopyInResponse.
    pub const COPY_IN_RESPONSE: Self = Self(b'G');
    /// Backend `'H'`: CopyOutResponse.
    pub const COPY_OUT_RESPONSE: Self = Self(b'H');
    /// Backend `'I'`: EmptyQueryResponse.
    pub const EMPTY_QUERY_RESPONSE: Self = Self(b'I');
    /// Backend `'K'`: BackendKeyData.
    pub const BACKEND_KEY_DATA: Self = Self(b'K');
    /// Backend `'n'`: NoData.
    pub const NO_DATA: Self = Self(b'n');
    /// Backend `'N'`: NoticeResponse.
    pub const NOTICE_RESPONSE: Self = Self(b'N');
    /// Backend `'R'`: Authentication (all kinds).
    pub const AUTHENTICATION: Self = Self(b'R');
    /// Backend `'s'`: PortalSuspended.
    pub const PORTAL_SUSPENDED: Self = Self(b's');
    /// Backend `'S'`: ParameterStatus.
    pub const PARAMETER_STATUS: Self = Self(b'S');
    /// Backend `'t'`: ParameterDescription.
    pub const PARAMETER_DESCRIPTION: Self = Self(b't');
    /// Backend `'T'`: RowDescription.
    pub const ROW_DESCRIPTION: Self = Self(b'T');
    /// Backend `'v'`: NegotiateProtocolVersion.
    pub const NEGOTIATE_PROTOCOL_VERSION: Self = Self(b'v');
    /// Backend `'V'`: FunctionCallResponse.
    pub const FUNCTION_CALL_RESPONSE: Self = Self(b'V');
    /// Backend `'W'`: CopyBothResponse.
    pub const COPY_BOTH_RESPONSE: Self = Self(b'W');
    /// Backend `'Z'`: ReadyForQuery.
    pub const READY_FOR_QUERY: Self = Self(b'Z');

    /// Every tag a client may send after the startup phase.
    pub const FRONTEND: [Self; 14] = [
        Self::AUTH_RESPONSE,
        Self::BIND,
        Self::CLOSE,
        Self::COPY_DATA,
        Self::COPY_DONE,
        Self::COPY_FAIL,
        Self::DESCRIBE,
        Self::EXECUTE,
        Self::FLUSH,
        Self::FUNCTION_CALL,
        Self::PARSE,
        Self::QUERY,
        Self::SYNC,
        Self::TERMINATE,
    ];

    /// Every tag a server may send.
    pub const BACKEND: [Self; 24] = [
        Self::AUTHENTICATION,
        Self::BACKEND_KEY_DATA,
        Self::BIND_COMPLETE,
        Self::CLOSE_COMPLETE,
        Self::COMMAND_COMPLETE,
        Self::COPY_BOTH_RESPONSE,
        Self::COPY_DATA,
        Self::COPY_DONE,
        Self::COPY_IN_RESPONSE,
        Self::COPY_OUT_RESPONSE,
        Self::DATA_ROW,
        Self::EMPTY_QUERY_RESPONSE,
        Self::ERROR_RESPONSE,
        Self::FUNCTION_CALL_RESPONSE,
        Self::NEGOTIATE_PROTOCOL_VERSION,
        Self::NO_DATA,
        Self::NOTICE_RESPONSE,
        Self::NOTIFICATION_RESPONSE,
        Self::PARAMETER_DESCRIPTION,
        Self::PARAMETER_STATUS,
        Self::PARSE_COMPLETE,
        Self::PORTAL_SUSPENDED,
        Self::READY_FOR_QUERY,
        Self::ROW_DESCRIPTION,
    ];

    /// The message this tag starts when `direction` sends it, or `None` if
    /// that peer never sends it.
    pub fn name(self, direction: Direction) -> Option<&'static str> {
        match direction {
            Direction::Frontend => frontend_name(self),
            Direction::Backend => backend_name(self),
        }
    }

    /// Whether `direction` may send this tag.
    pub fn is_known(self, direction: Direction) -> bool {
        self.name(direction).is_some()
    }
}

fn frontend_name(tag: MessageTag) -> Option<&'static str> {
    Some(match tag {
        MessageTag::AUTH_RESPONSE => "AuthResponse",
        MessageTag::BIND => "Bind",
        MessageTag::CLOSE => "Close",
        MessageTag::COPY_DATA => "CopyData",
        MessageTag::COPY_DONE => "CopyDone",
        MessageTag::COPY_FAIL => "CopyFail",
        MessageTag::DESCRIBE => "Describe",
        MessageTag::EXECUTE => "Execute",
        MessageTag::FLUSH => "Flush",
        MessageTag::FUNCTION_CALL => "FunctionCall",
        MessageTag::PARSE => "Parse",
        MessageTag::QUERY => "Query",
        MessageTag::SYNC => "Sync",
        MessageTag::TERMINATE => "Terminate",
        _ => return None,
    })
}

fn backend_name(tag: MessageTag) -> Option<&'static str> {
    Some(match tag {
        MessageTag::AUTHENTICATION => "Authentication",
        MessageTag::BACKEND_KEY_DATA => "BackendKeyData",
        MessageTag::BIND_COMPLETE => "BindComplete",
        MessageTag::CLOSE_COMPLETE => "CloseComplete",
        MessageTag::COMMAND_COMPLETE => "CommandComplete",
        MessageTag::COPY_BOTH_RESPONSE => "CopyBothResponse",
        MessageTag::COPY_DATA => "CopyData",
        MessageTag::COPY_DONE => "CopyDone",
        MessageTag::COPY_IN_RESPONSE => "CopyInResponse",
        MessageTag::COPY_OUT_RESPONSE => "CopyOutResponse",
        MessageTag::DATA_ROW => "DataRow",
        MessageTag::EMPTY_QUERY_RESPONSE => "EmptyQueryResponse",
        MessageTag::ERROR_RESPONSE => "ErrorResponse",
        MessageTag::FUNCTION_CALL_RESPONSE => "FunctionCallResponse",
        MessageTag::NEGOTIATE_PROTOCOL_VERSION => "NegotiateProtocolVersion",
        MessageTag::NO_DATA => "NoData",
        MessageTag::NOTICE_RESPONSE => "NoticeResponse",
        MessageTag::NOTIFICATION_RESPONSE => "NotificationResponse",
        MessageTag::PARAMETER_DESCRIPTION => "ParameterDescription",
        MessageTag::PARAMETER_STATUS => "ParameterStatus",
        MessageTag::PARSE_COMPLETE => "ParseComplete",
        MessageTag::PORTAL_SUSPENDED => "PortalSuspended",
        MessageTag::READY_FOR_QUERY => "ReadyForQuery",
        MessageTag::ROW_DESCRIPTION => "RowDescription",
        _ => return None,
    })
}

/// Prints the byte, as a character when it is printable ASCII: `'Q'`,
/// `0x00`. The meaning depends on the direction; see [`MessageTag::name`].
impl fmt::Debug for MessageTag {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.0.is_ascii_graphic() {
            write!(f, "'{}'", char::from(self.0))
        } else {
            write!(f, "0x{:02x}", self.0)
        }
    }
}

impl fmt::Display for MessageTag {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Debug::fmt(self, f)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tag_sets_are_complete_and_distinct() {
        for tag in MessageTag::FRONTEND {
            assert!(tag.is_known(Direction::Frontend), "{tag:?}");
        }
        for tag in MessageTag::BACKEND {
            assert!(tag.is_known(Direction::Backend), "{tag:?}");
        }
        let known = |d| (0..=255u8).filter(|&b| MessageTag(b).is_known(d)).count();
        assert_eq!(known(Direction::Frontend), MessageTag::FRONTEND.len());
        assert_eq!(known(Direction::Backend), MessageTag::BACKEND.len());
    }

    #[test]
    fn same_byte_different_meaning() {
        assert_eq!(MessageTag::DESCRIBE, MessageTag::DATA_ROW);
        assert_eq!(MessageTag(b'D').name(Direction::Frontend), Some("Describe"));
        assert_eq!(MessageTag(b'D').name(Direction::Backend), Some("DataRow"));
        assert_eq!(MessageTag(b'S').name(Direction::Frontend), Some("Sync"));
        assert_eq!(
            MessageTag(b'S').name(Direction::Backend),
            Some("ParameterStatus")
        );
        assert_eq!(MessageTag(b'R').name(Direction::Frontend), None);
        assert_eq!(MessageTag(b'Q').name(Direction::Backend), None);
    }

    #[test]
    fn debug_prints_the_byte() {
        assert_eq!(format!("{:?}", MessageTag::QUERY), "'Q'");
        assert_eq!(format!("{:?}", MessageTag(0)), "0x00");
    }
}
