//! The configuration file as written: serde structs that only check shapes
//! and types. Every value is kept loose (strings, wide integers) so that
//! validation, not serde, says what is wrong with it.

use std::fmt;

use serde::Deserialize;
use serde::de::{self, Deserializer, Visitor};

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawConfig {
    #[serde(default)]
    pub(super) service: RawService,
    #[serde(default)]
    pub(super) pipeline: RawPipeline,
    pub(super) sinks: Option<Vec<RawSink>>,
    pub(super) audit: Option<RawAudit>,
    #[serde(default)]
    pub(super) proxy: super::proxy::RawProxy,
    pub(super) admin: Option<super::proxy::RawAdmin>,
    pub(super) schema: Option<super::proxy::RawSchema>,
    pub(super) poison: Option<super::poison::RawPoison>,
    pub(super) detect: Option<super::detect::RawDetect>,
    pub(super) ingest: Option<super::ingest::RawIngest>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawAudit {
    pub(super) dir: Option<String>,
    pub(super) key_dir: Option<String>,
    pub(super) format: Option<String>,
    pub(super) sync: Option<String>,
    pub(super) sync_interval_ms: Option<i64>,
    pub(super) segment_max_mb: Option<i64>,
    pub(super) segment_max_age_s: Option<i64>,
    pub(super) checkpoint_every: Option<i64>,
    pub(super) checkpoint_interval_s: Option<i64>,
    pub(super) retention_max_mb: Option<i64>,
    pub(super) retention_max_age_days: Option<i64>,
    pub(super) retention_undelivered: Option<bool>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawService {
    pub(super) origin: Option<String>,
    pub(super) data_dir: Option<String>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawPipeline {
    pub(super) queue_capacity: Option<i64>,
    pub(super) overflow: Option<String>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawSink {
    pub(super) name: Option<String>,
    #[serde(rename = "type")]
    pub(super) kind: Option<String>,
    pub(super) path: Option<String>,
    pub(super) format: Option<String>,
    pub(super) min_severity: Option<String>,
    pub(super) include: Option<Vec<RawSelector>>,
    pub(super) exclude: Option<Vec<RawSelector>>,
    pub(super) syslog: Option<RawSyslog>,
    // Delivery from the audit log (file and network sinks).
    pub(super) batch: Option<i64>,
    pub(super) timeout_ms: Option<i64>,
    pub(super) retry_max_ms: Option<i64>,
    pub(super) lag_alert: Option<i64>,
    // file
    pub(super) max_mb: Option<i64>,
    pub(super) keep: Option<i64>,
    // syslog, nats
    pub(super) address: Option<String>,
    pub(super) protocol: Option<String>,
    pub(super) tls_ca: Option<String>,
    pub(super) tls_server_name: Option<String>,
    pub(super) tls_cert: Option<String>,
    pub(super) tls_key: Option<String>,
    pub(super) resend_window_ms: Option<i64>,
    // http
    pub(super) url: Option<String>,
    pub(super) api: Option<String>,
    pub(super) index: Option<String>,
    pub(super) token_env: Option<String>,
    pub(super) headers: Option<std::collections::BTreeMap<String, String>>,
    pub(super) gzip: Option<bool>,
    // nats
    pub(super) subject: Option<String>,
    pub(super) stream: Option<String>,
    pub(super) create_stream: Option<bool>,
    pub(super) user: Option<String>,
    pub(super) password_env: Option<String>,
    // postgres
    pub(super) conninfo: Option<String>,
    pub(super) table: Option<String>,
    pub(super) create_table: Option<bool>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawSyslog {
    pub(super) facility: Option<RawFacility>,
    pub(super) hostname: Option<String>,
    pub(super) app_name: Option<String>,
}

/// A string or an integer, as TOML allows both where a name or a number is
/// expected (`include = ["statement", 1100]`, `facility = "local0"` or `16`).
#[derive(Clone, Debug, PartialEq, Eq)]
pub(super) enum NameOrNumber {
    Name(String),
    Number(i64),
}

/// Implements `Deserialize` for a newtype over [`NameOrNumber`], with the
/// given "expected …" text for type errors.
macro_rules! name_or_number {
    ($ty:ident, $expecting:literal) => {
        #[derive(Clone, Debug, PartialEq, Eq)]
        pub(super) struct $ty(pub(super) NameOrNumber);

        impl<'de> Deserialize<'de> for $ty {
            fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
                struct V;
                impl Visitor<'_> for V {
                    type Value = $ty;
                    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                        f.write_str($expecting)
                    }
                    fn visit_str<E: de::Error>(self, v: &str) -> Result<$ty, E> {
                        Ok($ty(NameOrNumber::Name(v.to_owned())))
                    }
                    fn visit_i64<E: de::Error>(self, v: i64) -> Result<$ty, E> {
                        Ok($ty(NameOrNumber::Number(v)))
                    }
                    fn visit_u64<E: de::Error>(self, v: u64) -> Result<$ty, E> {
                        Ok($ty(NameOrNumber::Number(
                            i64::try_from(v).unwrap_or(i64::MAX),
                        )))
                    }
                }
                d.deserialize_any(V)
            }
        }
    };
}

name_or_number!(
    RawSelector,
    "a selector: a category, an event name, a prefix like \"tls.*\", a code or a code range"
);
name_or_number!(
    RawFacility,
    "a facility name like \"authpriv\" or a number 0 to 23"
);
