//! The `cef` format: ArcSight Common Event Format, version 0.
//!
//! ```text
//! CEF:0|vigil|vigil|VERSION|CODE|NAME|SEVERITY|EXTENSION
//! ```
//!
//! The header escapes `\` and `|` (and nothing else; it never holds CR or LF:
//! its values come from the catalog). SEVERITY is 0–10
//! ([`Severity::cef`](crate::Severity::cef)). The extension is `key=value`
//! pairs separated by one space, values escaping `\` `=` LF CR as `\\` `\=`
//! `\n` `\r` and nothing else; no trailing space. Keys, in order, each only
//! when known and non-empty:
//!
//! ```text
//! rt                 time, epoch milliseconds
//! outcome            success | failure | unknown
//! cat                category
//! src | c6a2         client IPv4 address (IPv4-mapped IPv6 included) | client
//!                    IPv6 address, with c6a2Label=Source IPv6 Address
//! spt                client port
//! dst | c6a3         server address, as src (c6a3Label=Destination IPv6 Address)
//! dpt                server port
//! suser              client identity
//! duser              database user
//! act                the first free field named `action`
//! msg                message
//! cn1, cn1Label      session id, label sessionId
//! cs1, cs1Label      database, label database
//! cs2, cs2Label      application, label application
//! cs3, cs3Label      TLS version, label tlsVersion
//! cs4, cs4Label      TLS cipher, label tlsCipher
//! cs5, cs5Label      fingerprint (16 hex digits), label fingerprint
//! cs6, cs6Label      the other free fields as a JSON object, label fields
//! deviceExternalId   origin
//! externalId         seq (always last, so a line never ends in a space)
//! ```

use std::net::SocketAddr;

use super::json;
use super::util::{escape, push_hex16, push_i64, push_ip, push_u64, swar, table, unmap_ip};
use crate::event::{Event, Value};

const HEADER: &[u8] = concat!("CEF:0|vigil|vigil|", env!("CARGO_PKG_VERSION"), "|").as_bytes();

pub(super) fn write(ev: &Event, out: &mut Vec<u8>) {
    out.reserve(256 + ev.message.len());
    out.extend_from_slice(HEADER);
    push_u64(out, u64::from(ev.kind.code()));
    out.push(b'|');
    write_header_value(out, ev.kind.name());
    out.push(b'|');
    push_u64(out, u64::from(ev.severity.cef()));
    out.extend_from_slice(b"|rt=");
    push_i64(out, ev.time.as_millis());
    out.extend_from_slice(b" outcome=");
    out.extend_from_slice(ev.outcome.as_str().as_bytes());
    out.extend_from_slice(b" cat=");
    out.extend_from_slice(ev.kind.category().as_str().as_bytes());

    let session = ev.session.as_deref();
    if let Some(a) = session.and_then(|s| s.client) {
        write_addr(
            out,
            a,
            b" src=",
            b" c6a2=",
            b" c6a2Label=Source IPv6 Address",
            b" spt=",
        );
    }
    if let Some(a) = session.and_then(|s| s.server) {
        write_addr(
            out,
            a,
            b" dst=",
            b" c6a3=",
            b" c6a3Label=Destination IPv6 Address",
            b" dpt=",
        );
    }
    if let Some(s) = session {
        pair(out, b" suser=", s.client_identity.as_deref());
        pair(out, b" duser=", s.db_user.as_deref());
    }
    let action = ev.fields.iter().position(|f| f.key == "action");
    if let Some(i) = action {
        match &ev.fields[i].value {
            Value::Str(s) => pair(out, b" act=", Some(s)),
            Value::Int(n) => {
                out.extend_from_slice(b" act=");
                push_i64(out, *n);
            }
            Value::Bool(b) => {
                out.extend_from_slice(if *b { b" act=true" } else { b" act=false" });
            }
        }
    }
    pair(out, b" msg=", Some(&ev.message));
    if let Some(s) = session {
        out.extend_from_slice(b" cn1=");
        push_u64(out, s.id);
        out.extend_from_slice(b" cn1Label=sessionId");
        labelled(out, b" cs1=", s.database.as_deref(), b" cs1Label=database");
        labelled(
            out,
            b" cs2=",
            s.application.as_deref(),
            b" cs2Label=application",
        );
        labelled(
            out,
            b" cs3=",
            s.tls_version.as_deref(),
            b" cs3Label=tlsVersion",
        );
        labelled(
            out,
            b" cs4=",
            s.tls_cipher.as_deref(),
            b" cs4Label=tlsCipher",
        );
    }
    if let Some(fp) = ev.fingerprint {
        out.extend_from_slice(b" cs5=");
        push_hex16(out, fp);
        out.extend_from_slice(b" cs5Label=fingerprint");
    }
    if ev.fields.len() > usize::from(action.is_some()) {
        out.extend_from_slice(b" cs6=");
        let rest = ev
            .fields
            .iter()
            .enumerate()
            .filter(|(i, _)| Some(*i) != action)
            .map(|(_, f)| f);
        json::write_fields::<true>(out, rest);
        out.extend_from_slice(b" cs6Label=fields");
    }
    pair(out, b" deviceExternalId=", Some(&ev.origin));
    out.extend_from_slice(b" externalId=");
    push_u64(out, ev.seq);
}

fn write_addr(
    out: &mut Vec<u8>,
    a: SocketAddr,
    v4: &[u8],
    v6: &[u8],
    v6_label: &[u8],
    port: &[u8],
) {
    let ip = unmap_ip(a.ip());
    out.extend_from_slice(if ip.is_ipv4() { v4 } else { v6 });
    push_ip(out, ip);
    if ip.is_ipv6() {
        out.extend_from_slice(v6_label);
    }
    out.extend_from_slice(port);
    push_u64(out, u64::from(a.port()));
}

/// Appends ` key=value` when the value is known and non-empty.
#[inline]
fn pair(out: &mut Vec<u8>, key: &[u8], v: Option<&str>) {
    if let Some(v) = v.filter(|v| !v.is_empty()) {
        out.extend_from_slice(key);
        write_ext_value(out, v);
    }
}

/// Appends ` csN=value csNLabel=label` when the value is known and non-empty.
#[inline]
fn labelled(out: &mut Vec<u8>, key: &[u8], v: Option<&str>, label: &[u8]) {
    if v.is_some_and(|v| !v.is_empty()) {
        pair(out, key, v);
        out.extend_from_slice(label);
    }
}

static HEADER_SPECIAL: [bool; 256] = table!(|b| b == b'\\' || b == b'|');
static EXT_SPECIAL: [bool; 256] = table!(|b| b == b'\\' || b == b'=' || b == b'\n' || b == b'\r');

/// Appends a header value: `\` and `|` escaped, nothing else.
fn write_header_value(out: &mut Vec<u8>, s: &str) {
    debug_assert!(
        !s.contains(['\r', '\n']),
        "CEF header value with a line break"
    );
    let word = |x: u64| swar::eq(x, b'\\') | swar::eq(x, b'|');
    escape(out, s.as_bytes(), &HEADER_SPECIAL, word, |out, s, i| {
        out.push(b'\\');
        out.push(s[i]);
        1
    });
}

/// Appends an extension value: `\` `=` LF CR escaped, nothing else.
#[inline]
fn write_ext_value(out: &mut Vec<u8>, s: &str) {
    let word = |x: u64| swar::eq(x, b'\\') | swar::eq(x, b'=') | swar::below(x, 0x0E);
    escape(out, s.as_bytes(), &EXT_SPECIAL, word, |out, s, i| {
        out.extend_from_slice(match s[i] {
            b'\\' => b"\\\\",
            b'=' => b"\\=",
            b'\n' => b"\\n",
            _ => b"\\r",
        });
        1
    });
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn escapes_exactly_what_the_spec_says() {
        let mut out = Vec::new();
        write_header_value(&mut out, "a|b\\c=d");
        assert_eq!(out, b"a\\|b\\\\c=d");
        out.clear();
        write_ext_value(&mut out, "a|b\\c=d\ne\rf\tg");
        assert_eq!(out, b"a|b\\\\c\\=d\\ne\\rf\tg");
    }
}
