//! UTC timestamps with microsecond precision, and their RFC 3339 form.

use std::fmt;
use std::time::{SystemTime, UNIX_EPOCH};

/// A point in time: microseconds since the Unix epoch, UTC.
///
/// Formats as RFC 3339 with exactly six fractional digits and `Z`, e.g.
/// `2026-11-26T11:19:00.123456Z`; that is the form every vigil format uses.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Default)]
pub struct Timestamp(i64);

/// The length of [`Timestamp::write_rfc3339`]'s output.
pub(crate) const RFC3339_LEN: usize = 27;

impl Timestamp {
    /// The current time.
    pub fn now() -> Self {
        let micros = match SystemTime::now().duration_since(UNIX_EPOCH) {
            Ok(d) => i64::try_from(d.as_micros()).unwrap_or(i64::MAX),
            Err(e) => -i64::try_from(e.duration().as_micros()).unwrap_or(i64::MAX),
        };
        Timestamp(micros)
    }

    /// A timestamp from microseconds since the Unix epoch.
    pub const fn from_micros(micros: i64) -> Self {
        Timestamp(micros)
    }

    /// Microseconds since the Unix epoch.
    pub const fn as_micros(self) -> i64 {
        self.0
    }

    /// Milliseconds since the Unix epoch, rounded down.
    pub const fn as_millis(self) -> i64 {
        self.0.div_euclid(1000)
    }

    /// Appends `YYYY-MM-DDTHH:MM:SS.ffffffZ` to `out`.
    ///
    /// Years outside 0000..=9999 are clamped to that range, as RFC 3339 has no
    /// other form.
    pub fn write_rfc3339(self, out: &mut Vec<u8>) {
        const MIN: i64 = -62_167_219_200_000_000; // 0000-01-01T00:00:00Z
        const MAX: i64 = 253_402_300_799_999_999; // 9999-12-31T23:59:59.999999Z
        let t = self.0.clamp(MIN, MAX);
        let secs = t.div_euclid(1_000_000);
        let micros = t.rem_euclid(1_000_000) as u32;
        let days = secs.div_euclid(86_400);
        let sod = secs.rem_euclid(86_400) as u32;
        let (y, m, d) = civil_from_days(days);
        let mut buf = [0u8; RFC3339_LEN];
        put_digits(&mut buf[0..4], y as u32);
        buf[4] = b'-';
        put_digits(&mut buf[5..7], m);
        buf[7] = b'-';
        put_digits(&mut buf[8..10], d);
        buf[10] = b'T';
        put_digits(&mut buf[11..13], sod / 3600);
        buf[13] = b':';
        put_digits(&mut buf[14..16], sod / 60 % 60);
        buf[16] = b':';
        put_digits(&mut buf[17..19], sod % 60);
        buf[19] = b'.';
        put_digits(&mut buf[20..26], micros);
        buf[26] = b'Z';
        out.extend_from_slice(&buf);
    }

    /// Parses an RFC 3339 timestamp: `YYYY-MM-DDTHH:MM:SS[.f{1,9}](Z|±HH:MM)`.
    ///
    /// Fractions beyond microseconds are truncated. `t` and `z` are accepted
    /// in lower case, as RFC 3339 allows.
    pub fn parse_rfc3339(s: &str) -> Option<Self> {
        let b = s.as_bytes();
        if b.len() < 20 {
            return None;
        }
        let num = |r: std::ops::Range<usize>| -> Option<i64> {
            let mut v = 0i64;
            for &c in b.get(r)? {
                if !c.is_ascii_digit() {
                    return None;
                }
                v = v * 10 + i64::from(c - b'0');
            }
            Some(v)
        };
        let (y, mo, d) = (num(0..4)?, num(5..7)?, num(8..10)?);
        let (h, mi, se) = (num(11..13)?, num(14..16)?, num(17..19)?);
        if b[4] != b'-' || b[7] != b'-' || !matches!(b[10], b'T' | b't' | b' ') {
            return None;
        }
        if b[13] != b':' || b[16] != b':' {
            return None;
        }
        if !(1..=12).contains(&mo) || d < 1 || d > days_in_month(y, mo) || h > 23 || mi > 59 {
            return None;
        }
        if se > 60 {
            return None;
        }
        let mut i = 19;
        let mut micros = 0i64;
        if b.get(i) == Some(&b'.') {
            i += 1;
            let start = i;
            while i < b.len() && b[i].is_ascii_digit() {
                if i - start < 6 {
                    micros = micros * 10 + i64::from(b[i] - b'0');
                }
                i += 1;
            }
            let n = i - start;
            if n == 0 {
                return None;
            }
            for _ in n..6 {
                micros *= 10;
            }
        }
        let offset_secs = match b.get(i)? {
            b'Z' | b'z' if i + 1 == b.len() => 0,
            sign @ (b'+' | b'-') if i + 6 == b.len() && b[i + 3] == b':' => {
                let oh = num(i + 1..i + 3)?;
                let om = num(i + 4..i + 6)?;
                if oh > 23 || om > 59 {
                    return None;
                }
                let o = oh * 3600 + om * 60;
                if *sign == b'+' { o } else { -o }
            }
            _ => return None,
        };
        let days = days_from_civil(y, mo as u32, d as u32);
        let secs = days * 86_400 + h * 3600 + mi * 60 + se.min(59) - offset_secs;
        Some(Timestamp(secs * 1_000_000 + micros))
    }
}

impl fmt::Display for Timestamp {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut out = Vec::with_capacity(RFC3339_LEN);
        self.write_rfc3339(&mut out);
        // The buffer holds ASCII digits and punctuation only.
        f.write_str(std::str::from_utf8(&out).map_err(|_| fmt::Error)?)
    }
}

fn put_digits(dst: &mut [u8], mut v: u32) {
    for slot in dst.iter_mut().rev() {
        *slot = b'0' + (v % 10) as u8;
        v /= 10;
    }
}

fn is_leap(y: i64) -> bool {
    (y % 4 == 0 && y % 100 != 0) || y % 400 == 0
}

fn days_in_month(y: i64, m: i64) -> i64 {
    match m {
        2 if is_leap(y) => 29,
        2 => 28,
        4 | 6 | 9 | 11 => 30,
        _ => 31,
    }
}

/// Days since 1970-01-01 to (year, month, day), proleptic Gregorian.
fn civil_from_days(z: i64) -> (i64, u32, u32) {
    let z = z + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = (doy - (153 * mp + 2) / 5 + 1) as u32;
    let m = if mp < 10 { mp + 3 } else { mp - 9 } as u32;
    let y = yoe + era * 400 + i64::from(m <= 2);
    (y, m, d)
}

/// (year, month, day) to days since 1970-01-01, proleptic Gregorian.
fn days_from_civil(y: i64, m: u32, d: u32) -> i64 {
    let y = if m <= 2 { y - 1 } else { y };
    let era = y.div_euclid(400);
    let yoe = y.rem_euclid(400);
    let m = i64::from(m);
    let doy = (153 * (if m > 2 { m - 3 } else { m + 9 }) + 2) / 5 + i64::from(d) - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    era * 146_097 + doe - 719_468
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn fmt(t: i64) -> String {
        Timestamp(t).to_string()
    }

    #[test]
    fn formats_known_instants() {
        assert_eq!(fmt(0), "1970-01-01T00:00:00.000000Z");
        assert_eq!(fmt(1_795_000_000_123_456), "2026-11-18T11:06:40.123456Z");
        assert_eq!(fmt(951_782_400_000_000), "2000-02-29T00:00:00.000000Z");
        assert_eq!(fmt(-1), "1969-12-31T23:59:59.999999Z");
    }

    #[test]
    fn parses_offsets_and_short_fractions() {
        let t = Timestamp::parse_rfc3339("2026-11-18T13:06:40.5+02:00").unwrap();
        assert_eq!(t.as_micros(), 1_795_000_000_500_000);
        assert_eq!(
            Timestamp::parse_rfc3339("2026-11-18T11:06:40Z")
                .unwrap()
                .as_micros(),
            1_795_000_000_000_000
        );
        assert!(Timestamp::parse_rfc3339("2026-02-30T00:00:00Z").is_none());
        assert!(Timestamp::parse_rfc3339("2026-11-18T10:26:40").is_none());
        assert!(Timestamp::parse_rfc3339("2026-11-18T10:26:40.Z").is_none());
    }

    proptest! {
        #[test]
        fn round_trips(t in -62_167_219_200_000_000i64..253_402_300_799_999_999) {
            let s = fmt(t);
            prop_assert_eq!(s.len(), RFC3339_LEN);
            prop_assert_eq!(Timestamp::parse_rfc3339(&s), Some(Timestamp(t)));
        }
    }
}
