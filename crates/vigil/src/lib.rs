//! vigil: the service, its configuration and its command line.
//!
//! The binary only wires the library crates together: events and formats
//! from `vigil-event`, the pipeline and sinks from `vigil-ship`.

#![forbid(unsafe_code)]

mod audit_cmd;
pub mod cli;
pub mod config;
mod demo;
mod keys_cmd;
mod poison_cmd;
mod serve;
mod ship;
mod tour;
