//! vigil's security events: the [`Event`] model, the [`catalog`] of every
//! event vigil emits, the output [`Format`]s, and the [`Emitter`] handle
//! through which any task reports an event.
//!
//! ```
//! use vigil_event::{catalog, Event, Format};
//!
//! let ev = Event::new(catalog::CLIENT_CONNECTED, "client connected")
//!     .field("user", "app");
//! let mut line = Vec::new();
//! Format::Json.write(&ev, &mut line);
//! assert!(line.starts_with(b"{\"time\":"));
//! ```

#![forbid(unsafe_code)]
#![deny(missing_docs)]

pub mod catalog;
pub mod der;
mod emit;
mod event;
mod filter;
pub mod format;
mod time;

pub use catalog::{Category, Kind};
pub use emit::{Ack, DurabilityWait, Emitter, NotDurable, Overflow, Queued, Receiver};
pub use event::{Event, Field, Outcome, Session, Severity, Value};
pub use filter::{Filter, Selector};
pub use format::{Format, JsonError, SyslogOptions};
pub use time::Timestamp;
