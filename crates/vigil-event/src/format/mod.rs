//! Output formats: pure functions from an [`Event`] to bytes.
//!
//! Each format writes one record into a caller's `Vec<u8>` by hand, without
//! serde and without a line terminator; the sink adds framing (a newline, an
//! octet count, a datagram). `docs/formats.md` is the specification of every
//! format, with examples; the module of each format sums it up:
//!
//! - [`Format::Json`]: one JSON object, stable field names (module `json`);
//! - [`Format::Text`]: `key=value` for terminals, control characters escaped;
//! - [`Format::Cef`]: ArcSight CEF:0, escaped exactly as the specification says;
//! - [`Format::Syslog`]: RFC 5424 with structured data;
//! - [`Format::Ocsf`]: OCSF 1.3.0 JSON.
//!
//! ```
//! use vigil_event::{catalog, Event, Format, Timestamp};
//!
//! let ev = Event::new(catalog::AUTH_FAILED, "password authentication failed")
//!     .at(Timestamp::from_micros(1_795_000_000_000_000))
//!     .field("sqlstate", "28P01");
//! let mut line = Vec::new();
//! Format::Text.write(&ev, &mut line);
//! assert_eq!(
//!     line,
//!     b"2026-11-18T11:06:40.000000Z warning auth.failed code=1111 seq=0 \
//!       msg=\"password authentication failed\" sqlstate=28P01"
//! );
//! ```

mod cef;
mod json;
mod ocsf;
mod syslog;
mod text;
mod util;

pub use json::JsonError;

use crate::event::Event;

/// An output format.
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum Format {
    /// One JSON object per record.
    Json,
    /// `key=value` pairs for terminals.
    Text,
    /// ArcSight CEF:0.
    Cef,
    /// RFC 5424 syslog.
    Syslog(SyslogOptions),
    /// OCSF 1.3.0 JSON.
    Ocsf,
}

impl Format {
    /// The names [`from_name`](Self::from_name) accepts, as used in configuration.
    pub const NAMES: [&'static str; 5] = ["json", "text", "cef", "syslog", "ocsf"];

    /// Appends exactly one record for `event` to `out`, without a line
    /// terminator.
    pub fn write(&self, event: &Event, out: &mut Vec<u8>) {
        match self {
            Format::Json => json::write(event, out),
            Format::Text => text::write(event, out),
            Format::Cef => cef::write(event, out),
            Format::Syslog(opts) => syslog::write(event, opts, out),
            Format::Ocsf => ocsf::write(event, out),
        }
    }

    /// The format's name, one of [`NAMES`](Self::NAMES).
    pub fn name(&self) -> &'static str {
        match self {
            Format::Json => "json",
            Format::Text => "text",
            Format::Cef => "cef",
            Format::Syslog(_) => "syslog",
            Format::Ocsf => "ocsf",
        }
    }

    /// Looks a format up by name; `syslog` gets [`SyslogOptions::default`].
    pub fn from_name(name: &str) -> Option<Format> {
        Some(match name {
            "json" => Format::Json,
            "text" => Format::Text,
            "cef" => Format::Cef,
            "syslog" => Format::Syslog(SyslogOptions::default()),
            "ocsf" => Format::Ocsf,
            _ => return None,
        })
    }
}

/// Settings of the RFC 5424 format.
///
/// The writer sanitises `hostname` and `app_name` on every record (printable
/// US-ASCII only, at most 255 and 48 characters, `-` when empty), so any value
/// here yields a valid header.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SyslogOptions {
    /// Facility 0..=23; larger values are written as 23. See
    /// [`facility_from_name`].
    pub facility: u8,
    /// HOSTNAME.
    pub hostname: String,
    /// APP-NAME.
    pub app_name: String,
    /// PROCID; `None` writes the current process id.
    pub procid: Option<u32>,
    /// Write control characters (0x00–0x1F, 0x7F) in MSG and PARAM-VALUEs as
    /// `#` and three octal digits (rsyslog's convention, LF is `#012`), so a
    /// record is always one line. Turn it off only on transports that frame
    /// records by octet counting; values are then written exactly.
    pub escape_control: bool,
}

impl Default for SyslogOptions {
    /// Facility 13 (log audit), this host's name, APP-NAME `vigil`, the
    /// current process id, control characters escaped.
    fn default() -> Self {
        SyslogOptions {
            facility: 13,
            hostname: local_hostname(),
            app_name: "vigil".to_owned(),
            procid: None,
            escape_control: true,
        }
    }
}

/// This host's name from `/proc/sys/kernel/hostname`, reduced to printable
/// US-ASCII and 255 characters; `-` (the RFC 5424 NILVALUE) when unknown.
fn local_hostname() -> String {
    let raw = std::fs::read("/proc/sys/kernel/hostname").unwrap_or_default();
    let name: String = raw
        .iter()
        .filter(|b| (33..=126).contains(*b))
        .take(255)
        .map(|&b| char::from(b))
        .collect();
    if name.is_empty() {
        "-".to_owned()
    } else {
        name
    }
}

/// The syslog facility number for a name, as in `syslog.conf` and RFC 5424.
///
/// Accepts `kern` 0, `user` 1, `mail` 2, `daemon` 3, `auth` 4, `syslog` 5,
/// `lpr` 6, `news` 7, `uucp` 8, `cron` 9, `authpriv` 10, `ftp` 11, `ntp` 12,
/// `audit` 13 (log audit), `alert` 14 (log alert), `clock` 15, `local0`..
/// `local7` 16..23, and the numbers 0..=23. Case is ignored and a `log_`
/// prefix is allowed (`LOG_AUDIT`, `log_local3`).
///
/// ```
/// use vigil_event::format::facility_from_name;
/// assert_eq!(facility_from_name("authpriv"), Some(10));
/// assert_eq!(facility_from_name("LOG_LOCAL7"), Some(23));
/// assert_eq!(facility_from_name("13"), Some(13));
/// assert_eq!(facility_from_name("24"), None);
/// ```
pub fn facility_from_name(name: &str) -> Option<u8> {
    let lower = name.trim().to_ascii_lowercase();
    let n = lower.strip_prefix("log_").unwrap_or(&lower);
    if !n.is_empty() && n.bytes().all(|b| b.is_ascii_digit()) {
        return n.parse::<u8>().ok().filter(|f| *f <= 23);
    }
    const NAMES: [&str; 16] = [
        "kern", "user", "mail", "daemon", "auth", "syslog", "lpr", "news", "uucp", "cron",
        "authpriv", "ftp", "ntp", "audit", "alert", "clock",
    ];
    if let Some(i) = NAMES.iter().position(|&x| x == n) {
        return u8::try_from(i).ok();
    }
    match n.strip_prefix("local")?.as_bytes() {
        &[d @ b'0'..=b'7'] => Some(16 + (d - b'0')),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_round_trip() {
        for name in Format::NAMES {
            let f = Format::from_name(name).unwrap();
            assert_eq!(f.name(), name);
        }
        assert_eq!(Format::from_name("JSON"), None);
        assert_eq!(Format::from_name("leef"), None);
    }

    #[test]
    fn syslog_defaults() {
        let Some(Format::Syslog(o)) = Format::from_name("syslog") else {
            panic!("syslog is not a syslog format");
        };
        assert_eq!(o.facility, 13);
        assert_eq!(o.app_name, "vigil");
        assert!(o.escape_control);
        assert_eq!(o.procid, None);
        assert!(!o.hostname.is_empty() && o.hostname.len() <= 255);
        assert!(
            o.hostname.bytes().all(|b| (33..=126).contains(&b)),
            "{:?}",
            o.hostname
        );
    }

    #[test]
    fn facility_names() {
        let cases = [
            ("kern", 0),
            ("user", 1),
            ("daemon", 3),
            ("auth", 4),
            ("authpriv", 10),
            ("audit", 13),
            ("log_audit", 13),
            ("LOG_AUDIT", 13),
            ("alert", 14),
            ("local0", 16),
            ("local7", 23),
            (" Local4 ", 20),
            ("0", 0),
            ("23", 23),
        ];
        for (name, want) in cases {
            assert_eq!(facility_from_name(name), Some(want), "{name}");
        }
        for bad in [
            "", "local8", "local", "local10", "24", "255", "256", "-1", "security", "log_",
        ] {
            assert_eq!(facility_from_name(bad), None, "{bad}");
        }
    }
}
