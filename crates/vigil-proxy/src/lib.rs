//! vigil's PostgreSQL session proxy: listeners and TLS on both sides, a
//! 1:1 relay that decodes what the security log needs and passes the rest
//! through as bytes, statement events with redacted SQL, cancel routing,
//! reload and graceful shutdown, Prometheus metrics, and the schema check.
//!
//! The service builds a [`ProxyConfig`], a [`Reporter`] over its event
//! pipeline, and calls [`Proxy::start`] inside a tokio runtime.

#![forbid(unsafe_code)]

pub mod admin;
pub mod config;
mod detect;
pub mod metrics;
mod race;
mod report;
pub mod schema;
mod server;
mod session;
mod tls;
mod track;

pub use config::{
    ClientCertMode, ClientTls, ClientTlsMode, Coverage, ProxyConfig, UpstreamTls, UpstreamTlsMode,
};
pub use detect::Detection;
pub use metrics::{Gauges, Metrics, SinkGauge};
pub use report::Reporter;
pub use server::{Proxy, StartError};
pub use tls::TlsSetupError;
pub use vigil_event::der::fuzz_subject;
