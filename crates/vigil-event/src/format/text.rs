//! The `text` format: one `key=value` line for terminals.
//!
//! ```text
//! TIME SEVERITY NAME code=N [origin=O] seq=N [outcome=O] [session=N client=IP:PORT
//!   server=IP:PORT identity=S user=S db=S app=S tls=S cipher=S] [fingerprint=HEX]
//!   msg=S [free fields...]
//! ```
//!
//! `origin` appears when set, `outcome` when it differs from the catalog's,
//! session keys when known. A value is written bare unless it is empty or
//! contains a space, `"`, `=`, `\` or a terminal-unsafe character; then it is
//! quoted, and inside the quotes `"` `\` LF CR tab are written `\"` `\\` `\n`
//! `\r` `\t` and every other terminal-unsafe character as `\xNN` per UTF-8
//! byte. Terminal-unsafe characters are the C0 controls, DEL, the C1 controls
//! (U+0080–U+009F), U+2028/U+2029 and the bidirectional formatting characters
//! (U+061C, U+200E, U+200F, U+202A–U+202E, U+2066–U+2069). So a line never
//! carries a raw control character or escape sequence to a terminal.
//!
//! A free field is written `key=value` when its key is `[a-z0-9_]+` and not
//! one of the keys above (nor `time`, `severity`, `name`); any other key is
//! written `f.KEY=value`, KEY quoted by the value rules. No free field can
//! pass for a top-level key, and a reader strips `f.` to get the key back.

use super::util::{
    escape, push_hex2, push_hex16, push_i64, push_socket_addr, push_u64, swar, table,
};
use crate::event::{Event, Value};

/// Keys of the line itself; a free field with one of these keys gets `f.`.
const RESERVED: [&str; 18] = [
    "time",
    "severity",
    "name",
    "code",
    "origin",
    "seq",
    "outcome",
    "session",
    "client",
    "server",
    "identity",
    "user",
    "db",
    "app",
    "tls",
    "cipher",
    "fingerprint",
    "msg",
];

pub(super) fn write(ev: &Event, out: &mut Vec<u8>) {
    out.reserve(128 + ev.message.len());
    ev.time.write_rfc3339(out);
    out.push(b' ');
    out.extend_from_slice(ev.severity.as_str().as_bytes());
    out.push(b' ');
    out.extend_from_slice(ev.kind.name().as_bytes());
    out.extend_from_slice(b" code=");
    push_u64(out, u64::from(ev.kind.code()));
    if !ev.origin.is_empty() {
        out.extend_from_slice(b" origin=");
        write_str(out, &ev.origin);
    }
    out.extend_from_slice(b" seq=");
    push_u64(out, ev.seq);
    if ev.outcome != ev.kind.def().outcome {
        out.extend_from_slice(b" outcome=");
        out.extend_from_slice(ev.outcome.as_str().as_bytes());
    }
    if let Some(s) = &ev.session {
        out.extend_from_slice(b" session=");
        push_u64(out, s.id);
        if let Some(a) = s.client {
            out.extend_from_slice(b" client=");
            push_socket_addr(out, a);
        }
        if let Some(a) = s.server {
            out.extend_from_slice(b" server=");
            push_socket_addr(out, a);
        }
        for (key, v) in [
            (&b" identity="[..], &s.client_identity),
            (b" user=", &s.db_user),
            (b" db=", &s.database),
            (b" app=", &s.application),
            (b" tls=", &s.tls_version),
            (b" cipher=", &s.tls_cipher),
        ] {
            if let Some(v) = v {
                out.extend_from_slice(key);
                write_str(out, v);
            }
        }
    }
    if let Some(fp) = ev.fingerprint {
        out.extend_from_slice(b" fingerprint=");
        push_hex16(out, fp);
    }
    out.extend_from_slice(b" msg=");
    write_str(out, &ev.message);
    for f in &ev.fields {
        out.push(b' ');
        if is_plain_key(&f.key) {
            out.extend_from_slice(f.key.as_bytes());
        } else {
            out.extend_from_slice(b"f.");
            write_str(out, &f.key);
        }
        out.push(b'=');
        match &f.value {
            Value::Bool(true) => out.extend_from_slice(b"true"),
            Value::Bool(false) => out.extend_from_slice(b"false"),
            Value::Int(i) => push_i64(out, *i),
            Value::Str(s) => write_str(out, s),
        }
    }
}

fn is_plain_key(k: &str) -> bool {
    !k.is_empty()
        && k.bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'_')
        && !RESERVED.contains(&k)
}

/// Bytes that force quoting (lead bytes 0xC2, 0xD8, 0xE2 only when they
/// start a terminal-unsafe character).
static QUOTE: [bool; 256] = table!(|b| {
    b <= b' '
        || b == b'"'
        || b == b'='
        || b == b'\\'
        || b == 0x7F
        || b == 0xC2
        || b == 0xD8
        || b == 0xE2
});
/// Bytes escaped inside quotes (same caveat).
static ESCAPE: [bool; 256] = table!(|b| b < b' '
    || b == b'"'
    || b == b'\\'
    || b == 0x7F
    || b == 0xC2
    || b == 0xD8
    || b == 0xE2);

/// The length of the terminal-unsafe non-ASCII character at `s[i]`, or 0.
#[inline]
fn unsafe_len(s: &[u8], i: usize) -> usize {
    match (s[i], s.get(i + 1), s.get(i + 2)) {
        // C1 controls U+0080..U+009F.
        (0xC2, Some(0x80..=0x9F), _) => 2,
        // U+061C ARABIC LETTER MARK.
        (0xD8, Some(0x9C), _) => 2,
        // U+200E, U+200F, U+2028..U+202E.
        (0xE2, Some(0x80), Some(0x8E | 0x8F | 0xA8..=0xAE)) => 3,
        // U+2066..U+2069.
        (0xE2, Some(0x81), Some(0xA6..=0xA9)) => 3,
        _ => 0,
    }
}

/// Some byte of the eight may need quoting or escaping (a superset).
#[inline(always)]
fn word(x: u64) -> u64 {
    swar::below(x, 0x21)
        | swar::eq(x, b'"')
        | swar::eq(x, b'=')
        | swar::eq(x, b'\\')
        | swar::eq(x, 0x7F)
        | swar::high(x)
}

fn needs_quotes(s: &[u8]) -> bool {
    if s.is_empty() {
        return true;
    }
    let mut base = 0;
    for c in s.chunks_exact(8) {
        let mut w = [0u8; 8];
        w.copy_from_slice(c);
        if word(u64::from_le_bytes(w)) != 0 && quote_in(s, base, base + 8) {
            return true;
        }
        base += 8;
    }
    quote_in(s, base, s.len())
}

/// True when a byte in `s[from..to]` forces quoting.
fn quote_in(s: &[u8], from: usize, to: usize) -> bool {
    (from..to).any(|i| QUOTE[usize::from(s[i])] && (s[i] < 0x80 || unsafe_len(s, i) > 0))
}

/// Appends `s` bare, or quoted and escaped when it needs to be.
fn write_str(out: &mut Vec<u8>, s: &str) {
    let s = s.as_bytes();
    if !needs_quotes(s) {
        out.extend_from_slice(s);
        return;
    }
    out.push(b'"');
    escape(out, s, &ESCAPE, word, |out, s, i| {
        let b = s[i];
        match b {
            b'"' => out.extend_from_slice(b"\\\""),
            b'\\' => out.extend_from_slice(b"\\\\"),
            b'\n' => out.extend_from_slice(b"\\n"),
            b'\r' => out.extend_from_slice(b"\\r"),
            b'\t' => out.extend_from_slice(b"\\t"),
            0x80.. => {
                let n = unsafe_len(s, i);
                if n == 0 {
                    out.push(b);
                    return 1;
                }
                for &x in &s[i..i + n] {
                    out.extend_from_slice(b"\\x");
                    push_hex2(out, x);
                }
                return n;
            }
            _ => {
                out.extend_from_slice(b"\\x");
                push_hex2(out, b);
            }
        }
        1
    });
    out.push(b'"');
}

#[cfg(test)]
mod tests {
    use super::*;

    fn w(s: &str) -> String {
        let mut out = Vec::new();
        write_str(&mut out, s);
        String::from_utf8(out).unwrap()
    }

    #[test]
    fn quoting() {
        assert_eq!(w("app"), "app");
        assert_eq!(w("é"), "é");
        assert_eq!(w(""), "\"\"");
        assert_eq!(w("a b"), "\"a b\"");
        assert_eq!(w("a=b"), "\"a=b\"");
        assert_eq!(w("\u{1b}[31m"), "\"\\x1b[31m\"");
        assert_eq!(
            w("x\u{7f}\u{9b}\u{202e}\u{a0}"),
            "\"x\\x7f\\xc2\\x9b\\xe2\\x80\\xae\u{a0}\""
        );
        assert_eq!(w("\"\\\n\r\t"), r#""\"\\\n\r\t""#);
    }

    #[test]
    fn keys() {
        assert!(is_plain_key("sqlstate"));
        assert!(!is_plain_key("msg"));
        assert!(!is_plain_key("Msg"));
        assert!(!is_plain_key(""));
        assert!(!is_plain_key("a.b"));
    }
}
