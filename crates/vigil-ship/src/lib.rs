//! vigil's event pipeline: sinks, filters and delivery.
#![forbid(unsafe_code)]
#![deny(missing_docs)]
