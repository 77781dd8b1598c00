//! The `syslog` format: RFC 5424.
//!
//! ```text
//! <PRI>1 TIMESTAMP HOSTNAME APP-NAME PROCID MSGID [vigil@32473 ...][fields@32473 ...] BOM MSG
//! ```
//!
//! - PRI is facility × 8 + [`Severity::syslog`](crate::Severity::syslog).
//! - TIMESTAMP is RFC 3339 with microseconds and `Z`.
//! - HOSTNAME (≤ 255) and APP-NAME (≤ 48) keep printable US-ASCII; any other
//!   byte becomes `_`, an empty value `-`. PROCID is the process id.
//! - MSGID is the event name (catalog names are ≤ 32 characters of `[a-z0-9._]`).
//! - `vigil@32473` carries `code`, `seq`, `origin`, `category`, `severity`,
//!   `outcome`, then, when known, `session_id`, `client_addr`, `client_port`,
//!   `server_addr`, `server_port`, `client_identity`, `db_user`, `database`,
//!   `application`, `tls_version`, `tls_cipher`, `fingerprint`. 32473 is the
//!   example enterprise number of RFC 5424; vigil has none of its own.
//! - `fields@32473` carries the free fields, in order, when there are any.
//!   A PARAM-NAME is 1–32 bytes of `%d33-126` other than `=`, space, `]` and
//!   `"`: each other byte becomes `_`, longer names are cut at 32 bytes, an
//!   empty name is `_`. This is lossy: keys differing only in those bytes, or
//!   after the 32nd byte, become the same name.
//! - PARAM-VALUEs escape exactly `"`, `\` and `]` with a backslash.
//! - MSG is the UTF-8 BOM and the message.
//!
//! With [`SyslogOptions::escape_control`] (the default) every control
//! character, 0x00–0x1F and 0x7F, in MSG and in PARAM-VALUEs is written as
//! `#` and three octal digits (LF is `#012`, rsyslog's convention), so a
//! record is one line. `#` itself is not escaped, so a reader cannot tell a
//! literal `#012` from an escaped LF. Without it values are written exactly,
//! for transports that frame records by octet counting (RFC 5425, RFC 6587).

use super::SyslogOptions;
use super::json::session_strings;
use super::util::{escape, push_addr, push_hex16, push_i64, push_u64, swar, table};
use crate::event::{Event, Severity, Value};

/// This process's id, asked of the kernel once.
fn pid() -> u32 {
    static PID: std::sync::OnceLock<u32> = std::sync::OnceLock::new();
    *PID.get_or_init(std::process::id)
}

/// RFC 5424 PRI: facility (capped at 23) × 8 + severity.
pub(super) fn pri(facility: u8, severity: Severity) -> u8 {
    facility.min(23) * 8 + severity.syslog()
}

pub(super) fn write(ev: &Event, opts: &SyslogOptions, out: &mut Vec<u8>) {
    out.reserve(256 + ev.message.len());
    out.push(b'<');
    push_u64(out, u64::from(pri(opts.facility, ev.severity)));
    out.extend_from_slice(b">1 ");
    ev.time.write_rfc3339(out);
    out.push(b' ');
    header_field(out, &opts.hostname, 255);
    out.push(b' ');
    header_field(out, &opts.app_name, 48);
    out.push(b' ');
    push_u64(out, u64::from(opts.procid.unwrap_or_else(pid)));
    out.push(b' ');
    debug_assert!(ev.kind.name().len() <= 32);
    out.extend_from_slice(ev.kind.name().as_bytes());

    let esc = opts.escape_control;
    out.extend_from_slice(b" [vigil@32473 code=\"");
    push_u64(out, u64::from(ev.kind.code()));
    out.extend_from_slice(b"\" seq=\"");
    push_u64(out, ev.seq);
    out.extend_from_slice(b"\" origin=\"");
    param_value(out, &ev.origin, esc);
    out.extend_from_slice(b"\" category=\"");
    out.extend_from_slice(ev.kind.category().as_str().as_bytes());
    out.extend_from_slice(b"\" severity=\"");
    out.extend_from_slice(ev.severity.as_str().as_bytes());
    out.extend_from_slice(b"\" outcome=\"");
    out.extend_from_slice(ev.outcome.as_str().as_bytes());
    out.push(b'"');
    if let Some(s) = &ev.session {
        out.extend_from_slice(b" session_id=\"");
        push_u64(out, s.id);
        out.push(b'"');
        for (addr, port, a) in [
            (&b" client_addr=\""[..], &b"\" client_port=\""[..], s.client),
            (b" server_addr=\"", b"\" server_port=\"", s.server),
        ] {
            if let Some(a) = a {
                out.extend_from_slice(addr);
                push_addr(out, a);
                out.extend_from_slice(port);
                push_u64(out, u64::from(a.port()));
                out.push(b'"');
            }
        }
        for (key, v) in session_strings(s) {
            if let Some(v) = v {
                out.push(b' ');
                out.extend_from_slice(key.as_bytes());
                out.extend_from_slice(b"=\"");
                param_value(out, v, esc);
                out.push(b'"');
            }
        }
    }
    if let Some(fp) = ev.fingerprint {
        out.extend_from_slice(b" fingerprint=\"");
        push_hex16(out, fp);
        out.push(b'"');
    }
    out.push(b']');
    if !ev.fields.is_empty() {
        out.extend_from_slice(b"[fields@32473");
        for f in &ev.fields {
            out.push(b' ');
            param_name(out, &f.key);
            out.extend_from_slice(b"=\"");
            match &f.value {
                Value::Bool(true) => out.extend_from_slice(b"true"),
                Value::Bool(false) => out.extend_from_slice(b"false"),
                Value::Int(i) => push_i64(out, *i),
                Value::Str(s) => param_value(out, s, esc),
            }
            out.push(b'"');
        }
        out.push(b']');
    }
    out.extend_from_slice(b" \xEF\xBB\xBF");
    if esc {
        let word = |x: u64| swar::below(x, 0x20) | swar::eq(x, 0x7F);
        escape(
            out,
            ev.message.as_bytes(),
            &MSG_CONTROL,
            word,
            |out, s, i| {
                octal(out, s[i]);
                1
            },
        );
    } else {
        out.extend_from_slice(ev.message.as_bytes());
    }
}

/// Appends a header field: printable US-ASCII, other bytes as `_`, at most
/// `max` bytes, `-` when empty.
fn header_field(out: &mut Vec<u8>, v: &str, max: usize) {
    if v.is_empty() {
        out.push(b'-');
        return;
    }
    out.extend(
        v.bytes()
            .take(max)
            .map(|b| if (33..=126).contains(&b) { b } else { b'_' }),
    );
}

/// Appends an SD PARAM-NAME (see the module docs for the rule).
fn param_name(out: &mut Vec<u8>, k: &str) {
    if k.is_empty() {
        out.push(b'_');
        return;
    }
    out.extend(
        k.bytes()
            .take(32)
            .map(|b| if NAME_OK[usize::from(b)] { b } else { b'_' }),
    );
}

static NAME_OK: [bool; 256] = table!(|b| b >= 33 && b <= 126 && !matches!(b, b'=' | b']' | b'"'));
static VALUE_SPECIAL: [bool; 256] = table!(|b| matches!(b, b'"' | b'\\' | b']'));
static VALUE_CONTROL: [bool; 256] =
    table!(|b| matches!(b, b'"' | b'\\' | b']') || b < 0x20 || b == 0x7F);
static MSG_CONTROL: [bool; 256] = table!(|b| b < 0x20 || b == 0x7F);

/// Appends a PARAM-VALUE: `"` `\` `]` escaped, control characters as `#ooo`
/// when `esc`.
#[inline]
fn param_value(out: &mut Vec<u8>, v: &str, esc: bool) {
    let special = if esc { &VALUE_CONTROL } else { &VALUE_SPECIAL };
    let word = |x: u64| {
        let w = swar::eq(x, b'"') | swar::eq(x, b'\\') | swar::eq(x, b']');
        if esc {
            w | swar::below(x, 0x20) | swar::eq(x, 0x7F)
        } else {
            w
        }
    };
    escape(out, v.as_bytes(), special, word, |out, s, i| {
        let b = s[i];
        if matches!(b, b'"' | b'\\' | b']') {
            out.push(b'\\');
            out.push(b);
        } else {
            octal(out, b);
        }
        1
    });
}

/// Appends `#` and the three octal digits of `b`.
fn octal(out: &mut Vec<u8>, b: u8) {
    out.extend_from_slice(&[b'#', b'0' + (b >> 6), b'0' + ((b >> 3) & 7), b'0' + (b & 7)]);
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pri_is_facility_times_eight_plus_severity() {
        assert_eq!(pri(13, Severity::Warning), 108);
        assert_eq!(pri(4, Severity::Alert), 33);
        assert_eq!(pri(0, Severity::Alert), 1);
        assert_eq!(pri(23, Severity::Debug), 191);
        assert_eq!(pri(16, Severity::Info), 134);
        assert_eq!(pri(10, Severity::Critical), 82);
        assert_eq!(pri(200, Severity::Debug), 191, "facility capped at 23");
        for sev in Severity::ALL {
            for fac in 0..=23 {
                let p = pri(fac, sev);
                assert_eq!((p >> 3, p & 7), (fac, sev.syslog()));
            }
        }
    }

    #[test]
    fn procid_defaults_to_this_process() {
        let opts = SyslogOptions {
            procid: None,
            ..SyslogOptions::default()
        };
        let mut out = Vec::new();
        write(
            &crate::Event::new(crate::catalog::SERVICE_STARTED, "x"),
            &opts,
            &mut out,
        );
        let line = String::from_utf8(out).unwrap();
        let procid = line.split(' ').nth(4).unwrap();
        assert_eq!(procid, std::process::id().to_string(), "{line}");
    }

    #[test]
    fn names_and_values() {
        let mut out = Vec::new();
        param_name(&mut out, "a b=c]d\"e\u{e9}");
        assert_eq!(out, b"a_b_c_d_e__");
        out.clear();
        param_name(&mut out, &"x".repeat(40));
        assert_eq!(out.len(), 32);
        out.clear();
        param_value(&mut out, "a\"b\\c]d\ne#", true);
        assert_eq!(out, b"a\\\"b\\\\c\\]d#012e#");
        out.clear();
        param_value(&mut out, "a]\n\u{7f}", false);
        assert_eq!(out, b"a\\]\n\x7f");
        out.clear();
        octal(&mut out, 0x7F);
        octal(&mut out, 0);
        assert_eq!(out, b"#177#000");
        out.clear();
        header_field(&mut out, "h\u{e9} st", 255);
        assert_eq!(out, b"h___st");
    }
}
