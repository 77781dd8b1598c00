//! vigil's intrusion detection.
//!
//! - [`poison`]: honeytoken values with a keyed tag, and the scanner that
//!   finds them in result rows, COPY data and statements;
//! - [`sqli`]: SQL injection and dangerous capabilities, read from the
//!   statement's structure;
//! - [`firewall`]: ordered allow and deny rules, learn, detect and enforce;
//! - [`anomaly`]: stateful detectors over sessions, users and sources.
//!
//! Every finding names its rule and never holds a literal from the
//! statement or a value from the data.

#![forbid(unsafe_code)]

pub mod anomaly;
pub mod firewall;
pub mod poison;
pub mod sqli;
