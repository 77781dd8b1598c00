//! Byte-writing helpers shared by the formats: integers, hex, addresses and a
//! table-driven escaper that copies runs of safe bytes in one go.

use std::io::Write as _;
use std::net::{IpAddr, SocketAddr};

const DIGITS: &[u8; 200] = b"\
    0001020304050607080910111213141516171819\
    2021222324252627282930313233343536373839\
    4041424344454647484950515253545556575859\
    6061626364656667686970717273747576777879\
    8081828384858687888990919293949596979899";

const HEX: &[u8; 16] = b"0123456789abcdef";

/// Appends `n` in decimal, two digits at a time (the `itoa` technique).
#[inline]
pub(super) fn push_u64(out: &mut Vec<u8>, mut n: u64) {
    if n < 10 {
        out.push(b'0' + n as u8);
        return;
    }
    let mut buf = [0u8; 20];
    let mut i = buf.len();
    while n >= 100 {
        let d = (n % 100) as usize * 2;
        n /= 100;
        i -= 2;
        buf[i..i + 2].copy_from_slice(&DIGITS[d..d + 2]);
    }
    if n >= 10 {
        let d = n as usize * 2;
        i -= 2;
        buf[i..i + 2].copy_from_slice(&DIGITS[d..d + 2]);
    } else {
        i -= 1;
        buf[i] = b'0' + n as u8;
    }
    // A byte loop: cheaper than a memmove call for at most 20 bytes.
    out.extend(buf[i..].iter().copied());
}

/// Appends `n` in decimal with a leading `-` when negative.
#[inline]
pub(super) fn push_i64(out: &mut Vec<u8>, n: i64) {
    if n < 0 {
        out.push(b'-');
    }
    push_u64(out, n.unsigned_abs());
}

/// Appends `v` as exactly 16 lower-case hex digits.
#[inline]
pub(super) fn push_hex16(out: &mut Vec<u8>, v: u64) {
    let mut buf = [0u8; 16];
    for (i, slot) in buf.iter_mut().enumerate() {
        *slot = HEX[(v >> (60 - 4 * i)) as usize & 0xf];
    }
    out.extend_from_slice(&buf);
}

/// Appends `b` as two lower-case hex digits.
#[inline]
pub(super) fn push_hex2(out: &mut Vec<u8>, b: u8) {
    out.extend_from_slice(&[HEX[usize::from(b >> 4)], HEX[usize::from(b & 0xf)]]);
}

/// Appends an IP address in its canonical text form (RFC 5952 for IPv6).
#[inline]
pub(super) fn push_ip(out: &mut Vec<u8>, ip: IpAddr) {
    match ip {
        IpAddr::V4(v4) => {
            let [a, b, c, d] = v4.octets();
            push_u64(out, u64::from(a));
            out.push(b'.');
            push_u64(out, u64::from(b));
            out.push(b'.');
            push_u64(out, u64::from(c));
            out.push(b'.');
            push_u64(out, u64::from(d));
        }
        // Writing to a Vec cannot fail.
        IpAddr::V6(v6) => {
            let _ = write!(out, "{v6}");
        }
    }
}

/// `ip`, with an IPv4-mapped IPv6 address (`::ffff:a.b.c.d`) as IPv4: the
/// form SIEM address fields expect.
#[inline]
pub(super) fn unmap_ip(ip: IpAddr) -> IpAddr {
    match ip {
        IpAddr::V6(v6) => v6.to_ipv4_mapped().map_or(ip, IpAddr::V4),
        v4 => v4,
    }
}

/// Appends the address of `addr`, with `%scope` for a scoped IPv6 address.
/// This is the `client_addr`/`server_addr` form of the json and syslog formats.
#[inline]
pub(super) fn push_addr(out: &mut Vec<u8>, addr: SocketAddr) {
    push_ip(out, addr.ip());
    if let SocketAddr::V6(v6) = addr
        && v6.scope_id() != 0
    {
        out.push(b'%');
        push_u64(out, u64::from(v6.scope_id()));
    }
}

/// Appends `addr` as `ip:port`, or `[ip%scope]:port` for IPv6.
#[inline]
pub(super) fn push_socket_addr(out: &mut Vec<u8>, addr: SocketAddr) {
    match addr {
        SocketAddr::V4(v4) => push_ip(out, IpAddr::V4(*v4.ip())),
        SocketAddr::V6(_) => {
            out.push(b'[');
            push_addr(out, addr);
            out.push(b']');
        }
    }
    out.push(b':');
    push_u64(out, u64::from(addr.port()));
}

/// Builds, at compile time, a 256-entry table marking the bytes for which
/// the expression is true: `table!(|b| b < 0x20)`.
macro_rules! table {
    (|$b:ident| $e:expr) => {{
        let mut t = [false; 256];
        let mut i = 0;
        while i < 256 {
            let $b = i as u8;
            t[i] = $e;
            i += 1;
        }
        t
    }};
}
pub(super) use table;

/// Word-at-a-time tests (SWAR) over eight bytes in a `u64`. Each returns
/// non-zero when some byte matches; all are exact about "some byte", which is
/// all [`escape`] needs.
pub(super) mod swar {
    const LO: u64 = 0x0101_0101_0101_0101;
    const HI: u64 = 0x8080_8080_8080_8080;

    /// Some byte is below `n` (`n` ≤ 128).
    #[inline(always)]
    pub(in crate::format) const fn below(x: u64, n: u8) -> u64 {
        x.wrapping_sub(LO * n as u64) & !x & HI
    }

    /// Some byte equals `c`.
    #[inline(always)]
    pub(in crate::format) const fn eq(x: u64, c: u8) -> u64 {
        let v = x ^ (LO * c as u64);
        v.wrapping_sub(LO) & !v & HI
    }

    /// Some byte is 0x80 or above (not US-ASCII).
    #[inline(always)]
    pub(in crate::format) const fn high(x: u64) -> u64 {
        x & HI
    }
}

/// Copies `s` to `out`, handing every byte marked in `special` to `esc`.
///
/// `word` must return non-zero for any eight bytes (little-endian) that hold
/// a byte marked in `special` (false alarms only cost speed): runs of safe
/// bytes are skipped eight at a time and copied with one `extend_from_slice`.
/// `esc(out, s, i)` writes the replacement for the byte at `i` (it may look
/// ahead, e.g. at the second byte of a UTF-8 sequence) and returns how many
/// bytes it consumed, at least one.
#[inline(always)]
pub(super) fn escape(
    out: &mut Vec<u8>,
    s: &[u8],
    special: &[bool; 256],
    word: impl Fn(u64) -> u64,
    mut esc: impl FnMut(&mut Vec<u8>, &[u8], usize) -> usize,
) {
    out.reserve(s.len());
    let n = s.len();
    let mut start = 0;
    let mut i = 0;
    while i < n {
        if let Some(chunk) = s.get(i..i + 8) {
            let mut w = [0u8; 8];
            w.copy_from_slice(chunk);
            if word(u64::from_le_bytes(w)) == 0 {
                i += 8;
                continue;
            }
        }
        let end = (i + 8).min(n);
        match s[i..end].iter().position(|&b| special[usize::from(b)]) {
            None => i = end,
            Some(p) => {
                let j = i + p;
                out.extend_from_slice(&s[start..j]);
                i = j + esc(out, s, j).max(1);
                start = i;
            }
        }
    }
    out.extend_from_slice(&s[start..]);
}

/// True when `s[i..]` starts with a C1 control character (U+0080..U+009F),
/// which UTF-8 encodes as `C2 80`..`C2 9F`.
#[inline]
pub(super) fn is_c1_at(s: &[u8], i: usize) -> bool {
    s[i] == 0xC2 && matches!(s.get(i + 1), Some(0x80..=0x9F))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn dec(n: u64) -> String {
        let mut v = Vec::new();
        push_u64(&mut v, n);
        String::from_utf8(v).unwrap()
    }

    #[test]
    fn integers_match_std() {
        for n in [
            0,
            1,
            9,
            10,
            99,
            100,
            101,
            999,
            1000,
            65535,
            1 << 40,
            u64::MAX,
        ] {
            assert_eq!(dec(n), n.to_string());
        }
        let mut v = Vec::new();
        push_i64(&mut v, i64::MIN);
        assert_eq!(v, i64::MIN.to_string().as_bytes());
    }

    #[test]
    fn hex_is_sixteen_digits() {
        let mut v = Vec::new();
        push_hex16(&mut v, 0xab);
        assert_eq!(v, b"00000000000000ab");
    }

    #[test]
    fn addresses() {
        let mut v = Vec::new();
        push_socket_addr(&mut v, "10.0.0.5:51234".parse().unwrap());
        v.push(b' ');
        push_socket_addr(&mut v, "[fe80::1%3]:5432".parse().unwrap());
        assert_eq!(v, b"10.0.0.5:51234 [fe80::1%3]:5432");
    }
}
