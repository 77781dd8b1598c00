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
    out.extend_from_slice(&buf[i..]);
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
            // At most 15 bytes, built on the stack and appended at once.
            let mut buf = [0u8; 15];
            let mut len = 0;
            for (k, o) in v4.octets().into_iter().enumerate() {
                if k > 0 {
                    buf[len] = b'.';
                    len += 1;
                }
                if o >= 100 {
                    buf[len] = b'0' + o / 100;
                    len += 1;
                }
                if o >= 10 {
                    buf[len] = b'0' + o / 10 % 10;
                    len += 1;
                }
                buf[len] = b'0' + o % 10;
                len += 1;
            }
            out.extend_from_slice(&buf[..len]);
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
/// a byte marked in `special`, with its lowest set bit in the first such byte
/// or an earlier one (false alarms only cost speed): the [`swar`] tests and
/// their `|` do. Runs of safe bytes are skipped eight at a time and copied
/// with one `extend_from_slice`; the last bytes go through `special` alone. `esc(out, s, i)` writes the replacement for the
/// byte at `i` (it may look ahead, e.g. at the second byte of a UTF-8
/// sequence) and returns how many bytes it consumed, at least one.
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
    // Whole words: skip clean ones, jump to the first flagged byte of others.
    while let Some(chunk) = s.get(i..i + 8) {
        let mut w = [0u8; 8];
        w.copy_from_slice(chunk);
        let m = word(u64::from_le_bytes(w));
        if m == 0 {
            i += 8;
            continue;
        }
        let j = i + (m.trailing_zeros() / 8) as usize;
        if special[usize::from(s[j])] {
            out.extend_from_slice(&s[start..j]);
            i = j + esc(out, s, j).max(1);
            start = i;
        } else {
            i = j + 1;
        }
    }
    // The last few bytes, one at a time.
    while i < n {
        if special[usize::from(s[i])] {
            out.extend_from_slice(&s[start..i]);
            i += esc(out, s, i).max(1);
            start = i;
        } else {
            i += 1;
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

    proptest::proptest! {
        /// The word tests agree with byte-by-byte tests, for words made of
        /// interesting bytes.
        #[test]
        fn swar_is_exact(bytes in proptest::array::uniform8(proptest::sample::select(
            vec![0u8, 1, 0x0a, 0x0d, 0x0e, 0x1f, 0x20, 0x21, b'"', b'=', b'\\', b']', b'|', b'a', 0x7e, 0x7f, 0x80, 0xc2, 0xff]
        ))) {
            let x = u64::from_le_bytes(bytes);
            for n in [0x0e, 0x20, 0x21] {
                proptest::prop_assert_eq!(swar::below(x, n) != 0, bytes.iter().any(|&b| b < n));
            }
            for c in [b'"', b'=', b'\\', b']', b'|', 0x7f] {
                proptest::prop_assert_eq!(swar::eq(x, c) != 0, bytes.contains(&c));
            }
            proptest::prop_assert_eq!(swar::high(x) != 0, bytes.iter().any(|&b| b >= 0x80));
        }
    }

    proptest::proptest! {
        /// `escape` gives what a plain byte loop gives, at every length and
        /// alignment, with false alarms (any byte >= 0x80) in the word test.
        #[test]
        fn escape_matches_a_byte_loop(s in proptest::collection::vec(proptest::sample::select(
            vec![0u8, 0x1f, b' ', b'"', b'\\', b'a', b'z', 0x7f, 0x80, 0xc2, 0xff]
        ), 0..40)) {
            static SPECIAL: [bool; 256] = table!(|b| b < 0x20 || b == b'"' || b == 0xc2);
            let word = |x: u64| swar::below(x, 0x20) | swar::eq(x, b'"') | swar::high(x);
            let mut got = Vec::new();
            escape(&mut got, &s, &SPECIAL, word, |out, s, i| {
                out.extend_from_slice(&[b'<', s[i], b'>']);
                1
            });
            let mut want = Vec::new();
            for &b in &s {
                if SPECIAL[usize::from(b)] { want.extend_from_slice(&[b'<', b, b'>']) } else { want.push(b) }
            }
            proptest::prop_assert_eq!(got, want);
        }
    }

    #[test]
    fn escape_copies_runs_and_hands_over_specials() {
        static SPECIAL: [bool; 256] = table!(|b| b == b'!');
        let input = b"0123456789!abcdefghijklmnop!!q";
        let mut out = Vec::new();
        escape(
            &mut out,
            input,
            &SPECIAL,
            |x| swar::eq(x, b'!'),
            |out, _, _| {
                out.extend_from_slice(b"<!>");
                1
            },
        );
        assert_eq!(out, b"0123456789<!>abcdefghijklmnop<!><!>q");
    }

    #[test]
    fn addresses() {
        let mut v = Vec::new();
        push_socket_addr(&mut v, "10.0.0.5:51234".parse().unwrap());
        v.push(b' ');
        push_ip(&mut v, "255.100.9.0".parse().unwrap());
        v.push(b' ');
        push_socket_addr(&mut v, "[fe80::1%3]:5432".parse().unwrap());
        assert_eq!(v, b"10.0.0.5:51234 255.100.9.0 [fe80::1%3]:5432");
    }
}
