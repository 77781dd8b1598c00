//! vigil's event pipeline: a [`Pipeline`] takes events from an
//! [`Emitter`](vigil_event::Emitter), numbers them, and writes each to the
//! sinks whose [`Filter`](vigil_event::Filter) passes it, in each sink's
//! [`Format`](vigil_event::Format): standard output, standard error, files
//! or any writer.
//!
//! One worker thread owns the queue's receiving end. It gives every event
//! the configured `origin` and a gapless `seq` from 1, formats it once per
//! distinct format, and appends it with a `\n` to each sink's 64 KiB buffer.
//! Buffers are flushed when the queue runs empty, at least every flush
//! interval under load, and at shutdown.
//!
//! Nothing is lost silently. Events the queue could not take are counted
//! and reported in an `events.dropped` event (fields `count` and `total`).
//! A sink whose writes fail is reported to the other sinks as `sink.down`
//! (fields `sink` and `reason`), retried, and reported as `sink.up` (fields
//! `sink` and `lost`) when it delivers again; the other sinks carry on.
//!
//! ```
//! use std::io::Write;
//! use std::sync::{Arc, Mutex};
//!
//! use vigil_event::{Event, Overflow, catalog};
//! use vigil_ship::{Pipeline, SinkSpec, Target};
//!
//! # #[derive(Clone, Default)]
//! # struct Shared(Arc<Mutex<Vec<u8>>>);
//! # impl Write for Shared {
//! #     fn write(&mut self, b: &[u8]) -> std::io::Result<usize> {
//! #         self.0.lock().unwrap().extend_from_slice(b);
//! #         Ok(b.len())
//! #     }
//! #     fn flush(&mut self) -> std::io::Result<()> { Ok(()) }
//! # }
//! let out = Shared::default();
//! let (pipeline, emitter) = Pipeline::builder()
//!     .origin("db1")
//!     .overflow(Overflow::Drop)
//!     .sink(SinkSpec::new("memory", Target::Writer(Box::new(out.clone()))))
//!     .start()?;
//! emitter.emit(Event::new(catalog::CLIENT_CONNECTED, "client connected").field("user", "app"));
//! let stats = pipeline.shutdown()?;
//! assert_eq!((stats.accepted, stats.dropped, stats.sinks[0].written), (1, 0, 1));
//! assert!(out.0.lock().unwrap().ends_with(b"\n"));
//! # Ok::<(), vigil_ship::Error>(())
//! ```

#![forbid(unsafe_code)]
#![deny(missing_docs)]

mod error;
mod pipeline;
mod sink;
mod stats;
mod worker;

pub mod deliver;
pub mod ingest;
pub mod transport;

pub use error::Error;
pub use pipeline::{Pipeline, PipelineBuilder};
pub use sink::{SinkSpec, Target};
pub use stats::{SinkStats, Stats};
