//! vigil's PostgreSQL protocol 3 wire codec: the [`Framer`] cuts the bytes
//! from a client or a server into messages without copying them, and
//! [`FrontendMessage`] and [`BackendMessage`] decode them into typed values
//! that borrow from the frame, and encode them back.
//!
//! ```
//! use bytes::BytesMut;
//! use vigil_pg::{BackendMessage, Framer, FrontendMessage};
//!
//! // A client's first bytes: a StartupMessage, then a simple query.
//! let mut from_client = BytesMut::new();
//! vigil_pg::Startup::write(
//!     &mut from_client,
//!     vigil_pg::ProtocolVersion::V3_0,
//!     [("user", "app"), ("database", "shop")],
//! )?;
//! from_client.extend_from_slice(b"Q\0\0\0\x0dSELECT 1\0");
//!
//! let mut framer = Framer::frontend();
//! let startup = framer.next(&mut from_client)?.expect("a whole message");
//! let FrontendMessage::Startup(s) = startup.frontend()? else { panic!() };
//! assert_eq!(s.user(), Some("app"));
//! let query = framer.next(&mut from_client)?.expect("a whole message");
//! assert!(matches!(query.frontend()?, FrontendMessage::Query(q) if q.sql == "SELECT 1"));
//!
//! // The server's answer ends with a CommandComplete that carries the count.
//! let mut from_server = BytesMut::from(&b"C\0\0\0\x0dSELECT 1\0Z\0\0\0\x05I"[..]);
//! let mut framer = Framer::backend();
//! let done = framer.next(&mut from_server)?.expect("a whole message");
//! let BackendMessage::CommandComplete(c) = done.backend()? else { panic!() };
//! assert_eq!(c.rows(), Some(1));
//! # Ok::<(), vigil_pg::Error>(())
//! ```
//!
//! # Hostile input
//!
//! Every decoder reads through a checked cursor and returns an [`Error`]
//! instead of panicking; nothing is allocated from a count or a length the
//! peer sent. The framer checks each message's type and length against
//! [`Limits`] before waiting for its body, as PostgreSQL does, so a peer
//! cannot make the proxy buffer more than the limit for that type.
//! [`Error::is_peer_fault`] separates garbage from the peer from misuse.
//!
//! # Secrets
//!
//! Passwords and SASL messages ([`AuthResponse`]), cancel keys, Bind
//! parameters, function arguments, result rows and COPY data are
//! [`Opaque`] or [`Values`], whose `Debug` shows only sizes. SQL text, error
//! messages and startup parameters print as they are: the proxy redacts
//! them before they reach a log.
//!
//! # What is not here
//!
//! Sockets, TLS and authentication logic: this crate only turns bytes into
//! messages and back. Strings are UTF-8 ([`Error::BadString`] otherwise), so
//! a client whose `client_encoding` is not UTF-8 needs its frames relayed
//! undecoded.

#![forbid(unsafe_code)]
#![deny(missing_docs)]

mod backend;
mod check;
mod error;
mod framer;
mod frontend;
mod reader;
mod startup;
mod tag;
mod views;

pub use backend::{
    Authentication, BackendKeyData, BackendMessage, CommandComplete, CopyResponse, DataRow,
    Diagnostic, FieldCode, FieldDescription, FunctionCallResponse, NegotiateProtocolVersion,
    Notification, ParameterDescription, ParameterStatus, ProtocolOptions, RowDescription,
    SaslMechanisms, Severity, TransactionStatus,
};
pub use check::fuzz_wire;
pub use error::{Error, StringError};
pub use framer::{
    Frame, FrameRef, Framer, Frames, Header, Limits, MIN_MESSAGE_LEN, MIN_STARTUP_LEN,
};
pub use frontend::{
    AuthResponse, Bind, Close, CopyFail, Describe, Execute, FrontendMessage, FunctionCall, Parse,
    Query, SaslInitialResponse, Target,
};
pub use startup::{
    CANCEL_REQUEST_CODE, CancelRequest, GSSENC_REQUEST_CODE, MAX_CANCEL_KEY_LEN,
    MIN_CANCEL_KEY_LEN, ProtocolVersion, SSL_REQUEST_CODE, SslResponse, Startup, StartupParams,
    is_direct_tls,
};
pub use tag::{Direction, MessageTag};
pub use views::{FormatCodes, Oids, Opaque, Values, ValuesIter};
