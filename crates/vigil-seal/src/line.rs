//! Sealed lines: an event record in a line format, with the seal fields
//! appended in that format's own syntax.
//!
//! ```text
//! json  {…record…,"seal":{"seq":N,"v":2,"key":V,"mac":"<64 hex>"[,"start":"<b64url>"][,"checkpoint":"<b64url>"]}}
//! text  …record… seal.seq=N seal.v=2 seal.key=V seal.mac=<64 hex>[ seal.start=<b64url>][ seal.checkpoint=<b64url>]
//! cef   …record… vigilSealSeq=N vigilSealV=2 vigilSealKey=V vigilSealMac=<64 hex>[ vigilSealStart=<b64url>][ vigilSealCheckpoint=<b64url>]
//!
//! `v` is the version of the seal format (2); `start` carries the origin
//! (base64url, no padding) on the first entry of a chain; `checkpoint`
//! carries a signed checkpoint note.
//! ```
//!
//! Format 1 had no `v` field. Its lines do not parse here;
//! [`parses_as_v1`] tells them apart from other lines that do not parse, so
//! that the reader can say what to do. No single changed byte turns a line
//! of one version into a line of the other: the `v` field is six bytes or
//! more, in a place where format 1 has nothing.
//!
//! The seal is always the last thing on the line, and event content cannot
//! forge it: JSON escapes every `"` inside strings and keeps free fields in
//! their own object, so `,"seal":{` cannot occur in a record; the text
//! format quotes any value holding a space; CEF escapes `=` in values. The
//! parser takes the last occurrence of the seal's opening token, then
//! demands the exact grammar above up to the end of the line.

use std::borrow::Cow;

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;

use crate::merkle::Hash;
use crate::sha::Sha256;

/// The version of the seal format that this code writes and reads.
pub const SEAL_FORMAT_VERSION: u32 = 2;

/// The line format of an audit log: one of vigil's event formats.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum LineFormat {
    /// ArcSight CEF, seal fields as `vigilSeal*` extension keys.
    Cef,
    /// vigil's JSON, seal fields in a `seal` object.
    Json,
    /// vigil's text, seal fields as `seal.*` keys.
    Text,
}

impl LineFormat {
    /// The name used in configuration.
    pub const fn as_str(self) -> &'static str {
        match self {
            LineFormat::Cef => "cef",
            LineFormat::Json => "json",
            LineFormat::Text => "text",
        }
    }

    /// Looks a format up by name: `json`, `text` or `cef`.
    pub fn from_name(name: &str) -> Option<LineFormat> {
        [LineFormat::Json, LineFormat::Text, LineFormat::Cef]
            .into_iter()
            .find(|f| f.as_str() == name)
    }

    /// The event format that writes the records.
    pub fn event_format(self) -> vigil_event::Format {
        match self {
            LineFormat::Cef => vigil_event::Format::Cef,
            LineFormat::Json => vigil_event::Format::Json,
            LineFormat::Text => vigil_event::Format::Text,
        }
    }

    fn tokens(self) -> &'static Tokens {
        match self {
            LineFormat::Cef => &CEF,
            LineFormat::Json => &JSON,
            LineFormat::Text => &TEXT,
        }
    }
}

/// The seal of one entry.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Seal {
    /// Position in the log, gapless from 1.
    pub seq: u64,
    /// Version of the audit key whose chain MACs this entry.
    pub key_version: u32,
    /// The origin, when this entry starts a chain (service start or key
    /// rotation); the verifier derives the chain key from it.
    pub start: Option<String>,
    /// HMAC-SHA256 of this entry, chained to the previous one.
    pub mac: Hash,
    /// A signed checkpoint note of the tree before this entry, if any.
    pub checkpoint: Option<String>,
}

struct Tokens {
    open: &'static [u8],
    /// The format version's field, after the seq.
    version: &'static [u8],
    key: &'static [u8],
    mac: &'static [u8],
    mac_close: &'static [u8],
    start: &'static [u8],
    start_close: &'static [u8],
    checkpoint: &'static [u8],
    checkpoint_close: &'static [u8],
    close: &'static [u8],
}

const JSON: Tokens = Tokens {
    open: b",\"seal\":{\"seq\":",
    version: b",\"v\":2",
    key: b",\"key\":",
    mac: b",\"mac\":\"",
    mac_close: b"\"",
    start: b",\"start\":\"",
    start_close: b"\"",
    checkpoint: b",\"checkpoint\":\"",
    checkpoint_close: b"\"",
    close: b"}}",
};

const TEXT: Tokens = Tokens {
    open: b" seal.seq=",
    version: b" seal.v=2",
    key: b" seal.key=",
    mac: b" seal.mac=",
    mac_close: b"",
    start: b" seal.start=",
    start_close: b"",
    checkpoint: b" seal.checkpoint=",
    checkpoint_close: b"",
    close: b"",
};

const CEF: Tokens = Tokens {
    open: b" vigilSealSeq=",
    version: b" vigilSealV=2",
    key: b" vigilSealKey=",
    mac: b" vigilSealMac=",
    mac_close: b"",
    start: b" vigilSealStart=",
    start_close: b"",
    checkpoint: b" vigilSealCheckpoint=",
    checkpoint_close: b"",
    close: b"",
};

/// Format 1's tokens: no version field.
const JSON_V1: Tokens = Tokens {
    version: b"",
    ..JSON
};
const TEXT_V1: Tokens = Tokens {
    version: b"",
    ..TEXT
};
const CEF_V1: Tokens = Tokens {
    version: b"",
    ..CEF
};

/// Why a line is not a sealed entry.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum LineError {
    /// The line has no seal at its end.
    NoSeal,
    /// The seal is there but does not follow the grammar.
    BadSeal,
    /// The record before the seal is not a record of this format.
    BadRecord,
}

impl std::fmt::Display for LineError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            LineError::NoSeal => "line has no seal",
            LineError::BadSeal => "seal fields are malformed",
            LineError::BadRecord => "record is malformed",
        })
    }
}

/// Appends `record` with `seal` to `out`, as one line without its newline.
pub fn write_sealed(format: LineFormat, record: &[u8], seal: &Seal, out: &mut Vec<u8>) {
    let at = write_unsealed(format, record, seal, out);
    fill_mac(out, at, &seal.mac);
}

/// Appends `record` with `seal` to `out` as [`write_sealed`] does, but with
/// 64 zero bytes in the place of the MAC's hex digits (`seal.mac` is not
/// used), and returns where in `out` they are: the MAC is computed over
/// the line without them ([`EntryHash`]), then [`fill_mac`] writes it.
pub(crate) fn write_unsealed(
    format: LineFormat,
    record: &[u8],
    seal: &Seal,
    out: &mut Vec<u8>,
) -> usize {
    let t = format.tokens();
    match format {
        // Reopen the record's outer object to add the seal as its last member.
        LineFormat::Json => out.extend_from_slice(record.strip_suffix(b"}").unwrap_or(record)),
        LineFormat::Cef | LineFormat::Text => out.extend_from_slice(record),
    }
    out.extend_from_slice(t.open);
    push_u64(out, seal.seq);
    out.extend_from_slice(t.version);
    out.extend_from_slice(t.key);
    push_u64(out, u64::from(seal.key_version));
    out.extend_from_slice(t.mac);
    let mac_at = out.len();
    out.resize(mac_at + 64, 0);
    out.extend_from_slice(t.mac_close);
    if let Some(origin) = &seal.start {
        out.extend_from_slice(t.start);
        push_b64url(out, origin.as_bytes());
        out.extend_from_slice(t.start_close);
    }
    if let Some(note) = &seal.checkpoint {
        out.extend_from_slice(t.checkpoint);
        push_b64url(out, note.as_bytes());
        out.extend_from_slice(t.checkpoint_close);
    }
    out.extend_from_slice(t.close);
    mac_at
}

/// Writes `mac` as lower-case hex at `at` in `out`, where
/// [`write_unsealed`] left room for it.
pub(crate) fn fill_mac(out: &mut [u8], at: usize, mac: &Hash) {
    out[at..at + 64].copy_from_slice(&hex_digits(mac));
}

/// Splits a sealed line (without its newline) into the record, as the
/// format wrote it, and the seal.
pub fn split_sealed(format: LineFormat, line: &[u8]) -> Result<(Cow<'_, [u8]>, Seal), LineError> {
    let (at, seal) = parse_sealed(format, line)?;
    let record = match record_parts(format, line, at) {
        (head, []) => Cow::Borrowed(head),
        (head, tail) => {
            let mut r = Vec::with_capacity(head.len() + tail.len());
            r.extend_from_slice(head);
            r.extend_from_slice(tail);
            Cow::Owned(r)
        }
    };
    Ok((record, seal))
}

/// Parses a sealed line (without its newline): where its seal starts, and
/// the seal. [`record_parts`] gives the record without copying it.
pub fn parse_sealed(format: LineFormat, line: &[u8]) -> Result<(usize, Seal), LineError> {
    parse_entry(format, line).map(|p| (p.at, p.seal))
}

/// A parsed sealed line.
#[derive(Clone, Debug)]
pub(crate) struct Parsed {
    /// Where the seal starts.
    pub(crate) at: usize,
    /// Where the MAC's 64 hex digits start.
    pub(crate) mac_at: usize,
    pub(crate) seal: Seal,
}

/// Parses a sealed line (without its newline), as [`parse_sealed`], and
/// says where its MAC is.
pub(crate) fn parse_entry(format: LineFormat, line: &[u8]) -> Result<Parsed, LineError> {
    // One copy of the parser per format, so that the tokens' lengths are
    // constants and comparing them takes no call.
    match format {
        LineFormat::Cef => parse_with(format, &CEF, line),
        LineFormat::Json => parse_with(format, &JSON, line),
        LineFormat::Text => parse_with(format, &TEXT, line),
    }
}

/// True when `line` is a sealed entry of format 1 in any line format:
/// written by an older vigil, which this one does not verify.
pub(crate) fn parses_as_v1(line: &[u8]) -> bool {
    [
        (LineFormat::Json, &JSON_V1),
        (LineFormat::Cef, &CEF_V1),
        (LineFormat::Text, &TEXT_V1),
    ]
    .into_iter()
    .any(|(format, t)| parse_with(format, t, line).is_ok())
}

impl LineFormat {
    /// The format `line` is a sealed entry of, trying JSON, CEF and text
    /// in that order.
    pub fn detect(line: &[u8]) -> Option<LineFormat> {
        [LineFormat::Json, LineFormat::Cef, LineFormat::Text]
            .into_iter()
            .find(|&f| parse_entry(f, line).is_ok())
    }
}

#[inline(always)]
fn parse_with(format: LineFormat, t: &Tokens, line: &[u8]) -> Result<Parsed, LineError> {
    let at = rfind(line, t.open).ok_or(LineError::NoSeal)?;
    let mut p = Parser {
        s: &line[at + t.open.len()..],
    };
    let seq = p.u64().ok_or(LineError::BadSeal)?;
    p.tag(t.version).ok_or(LineError::BadSeal)?;
    p.tag(t.key).ok_or(LineError::BadSeal)?;
    let key_version =
        u32::try_from(p.u64().ok_or(LineError::BadSeal)?).map_err(|_| LineError::BadSeal)?;
    p.tag(t.mac).ok_or(LineError::BadSeal)?;
    let mac_at = line.len() - p.s.len();
    let mac = p.hex32().ok_or(LineError::BadSeal)?;
    p.tag(t.mac_close).ok_or(LineError::BadSeal)?;
    let start = match p.tag(t.start) {
        Some(()) => Some(p.b64url_string(t.start_close)?),
        None => None,
    };
    let checkpoint = match p.tag(t.checkpoint) {
        Some(()) => Some(p.b64url_string(t.checkpoint_close)?),
        None => None,
    };
    p.tag(t.close).ok_or(LineError::BadSeal)?;
    if !p.s.is_empty() {
        return Err(LineError::BadSeal);
    }
    match format {
        LineFormat::Json if line.first() != Some(&b'{') => return Err(LineError::BadRecord),
        LineFormat::Cef if !line.starts_with(b"CEF:0|") => return Err(LineError::BadRecord),
        _ => {}
    }
    Ok(Parsed {
        at,
        mac_at,
        seal: Seal {
            seq,
            key_version,
            start,
            mac,
            checkpoint,
        },
    })
}

/// The hashes of a sealed entry, over its line without the MAC's hex
/// digits: `P || Q` where the line is `P || hex(mac) || Q`. The state of
/// `SHA-256(0x00 || P || Q)` gives both
///
/// - the entry digest `SHA-256(0x00 || P || Q || prev_mac)`, which the MAC
///   covers ([`digest`](Self::digest)), and
/// - the Merkle leaf `SHA-256(0x00 || P || Q || mac)`, the RFC 6962 leaf
///   hash of the line with its MAC moved to the end as 32 bytes
///   ([`leaf`](Self::leaf)),
///
/// so the line's bytes are hashed once for both.
#[derive(Clone)]
pub(crate) struct EntryHash(Sha256);

impl EntryHash {
    /// Hashes `0x00 || p || q`.
    pub(crate) fn new(p: &[u8], q: &[u8]) -> EntryHash {
        let mut h = Sha256::new();
        h.update(&[0x00]);
        h.update(p);
        h.update(q);
        EntryHash(h)
    }

    /// The hashes of a sealed line whose MAC's hex digits start at `mac_at`.
    pub(crate) fn of(line: &[u8], mac_at: usize) -> EntryHash {
        EntryHash::new(&line[..mac_at], &line[mac_at + 64..])
    }

    /// The entry digest, which the MAC covers, chained to the previous
    /// entry's MAC `prev`.
    pub(crate) fn digest(&self, prev: &Hash) -> Hash {
        let mut h = self.0.clone();
        h.update(prev);
        h.finish()
    }

    /// The Merkle leaf hash of the entry whose MAC is `mac`.
    pub(crate) fn leaf(mut self, mac: &Hash) -> Hash {
        self.0.update(mac);
        self.0.finish()
    }
}

/// The Merkle leaf hash of a sealed line: `SHA-256(0x00 || P || Q || mac)`
/// where the line is `P || hex(mac) || Q` (see docs/audit.md).
pub fn entry_leaf(format: LineFormat, line: &[u8]) -> Result<Hash, LineError> {
    let p = parse_entry(format, line)?;
    Ok(EntryHash::of(line, p.mac_at).leaf(&p.seal.mac))
}

/// The record of a line whose seal starts at `at` ([`parse_sealed`]), as
/// `head || tail`: for JSON the line up to the seal and the closing brace
/// taken off it, for the other formats the line up to the seal.
pub fn record_parts(format: LineFormat, line: &[u8], at: usize) -> (&[u8], &'static [u8]) {
    match format {
        LineFormat::Json => (&line[..at], b"}"),
        LineFormat::Cef | LineFormat::Text => (&line[..at], b""),
    }
}

struct Parser<'a> {
    s: &'a [u8],
}

impl Parser<'_> {
    fn tag(&mut self, tag: &[u8]) -> Option<()> {
        self.s = self.s.strip_prefix(tag)?;
        Some(())
    }

    fn u64(&mut self) -> Option<u64> {
        let n = self.s.iter().take_while(|b| b.is_ascii_digit()).count();
        if n == 0 || n > 20 || (n > 1 && self.s[0] == b'0') {
            return None;
        }
        let mut v: u64 = 0;
        for &b in &self.s[..n] {
            v = v.checked_mul(10)?.checked_add(u64::from(b - b'0'))?;
        }
        self.s = &self.s[n..];
        Some(v)
    }

    fn hex32(&mut self) -> Option<Hash> {
        let (digits, rest) = self.s.split_first_chunk::<64>()?;
        // Arithmetic rather than a table, without branches, so that the
        // compiler vectorises it; one check for all digits at the end.
        let mut values = [0u8; 64];
        let mut valid = true;
        for (v, &c) in values.iter_mut().zip(digits) {
            let digit = c.wrapping_sub(b'0');
            let letter = c.wrapping_sub(b'a');
            valid &= (digit < 10) | (letter < 6);
            *v = if digit < 10 {
                digit
            } else {
                letter.wrapping_add(10)
            };
        }
        if !valid {
            return None;
        }
        let mut out = [0u8; 32];
        for (o, pair) in out.iter_mut().zip(values.as_chunks::<2>().0) {
            *o = (pair[0] << 4) | pair[1];
        }
        self.s = rest;
        Some(out)
    }

    fn b64url_string(&mut self, close: &[u8]) -> Result<String, LineError> {
        let bytes = URL_SAFE_NO_PAD
            .decode(self.b64url())
            .map_err(|_| LineError::BadSeal)?;
        self.tag(close).ok_or(LineError::BadSeal)?;
        String::from_utf8(bytes).map_err(|_| LineError::BadSeal)
    }

    fn b64url(&mut self) -> &[u8] {
        let n = self
            .s
            .iter()
            .take_while(|b| b.is_ascii_alphanumeric() || **b == b'-' || **b == b'_')
            .count();
        let (head, tail) = self.s.split_at(n);
        self.s = tail;
        head
    }
}

/// The last occurrence of `needle` (not empty) in `hay`.
fn rfind(hay: &[u8], needle: &[u8]) -> Option<usize> {
    let (&first, rest) = needle.split_first()?;
    // Candidates start before `end`. Look for the first byte, then compare
    // the rest: a call to compare at every position costs more.
    let mut end = hay.len().checked_sub(needle.len())? + 1;
    while let Some(i) = memchr::memrchr(first, &hay[..end]) {
        if hay[i + 1..].starts_with(rest) {
            return Some(i);
        }
        end = i;
    }
    None
}

fn push_b64url(out: &mut Vec<u8>, data: &[u8]) {
    let at = out.len();
    out.resize(at + base64::encoded_len(data.len(), false).unwrap_or(0), 0);
    let n = URL_SAFE_NO_PAD
        .encode_slice(data, &mut out[at..])
        .unwrap_or(0);
    out.truncate(at + n);
}

fn push_u64(out: &mut Vec<u8>, mut v: u64) {
    let mut buf = [0u8; 20];
    let mut i = buf.len();
    loop {
        i -= 1;
        buf[i] = b'0' + (v % 10) as u8;
        v /= 10;
        if v == 0 {
            break;
        }
    }
    out.extend_from_slice(&buf[i..]);
}

/// A hash as lower-case hex digits.
fn hex_digits(hash: &Hash) -> [u8; 64] {
    const HEX: &[u8; 16] = b"0123456789abcdef";
    let mut digits = [0u8; 64];
    for (pair, &b) in digits.as_chunks_mut::<2>().0.iter_mut().zip(hash) {
        *pair = [HEX[usize::from(b >> 4)], HEX[usize::from(b & 15)]];
    }
    digits
}

#[cfg(test)]
mod tests {
    use super::*;
    use vigil_event::{Event, catalog};

    fn seal(checkpoint: Option<&str>, start: Option<&str>) -> Seal {
        Seal {
            seq: 42,
            key_version: 3,
            start: start.map(str::to_owned),
            mac: [0xab; 32],
            checkpoint: checkpoint.map(str::to_owned),
        }
    }

    fn hostile_event() -> Event {
        Event::new(
            catalog::STATEMENT_EXECUTED,
            "x\" seal.seq=1 seal.key=1 ,\"seal\":{\"seq\":1",
        )
        .field("q", " vigilSealSeq=9 vigilSealKey=1 vigilSealMac=00")
        .field("seal", "{\"seq\":1}")
    }

    #[test]
    fn round_trips_in_every_format() {
        for format in [LineFormat::Json, LineFormat::Text, LineFormat::Cef] {
            for (cp, start) in [
                (None, None),
                (Some("origin\n5\nroot=\n\n— k sig\n"), Some("db \"1\"")),
            ] {
                let mut record = Vec::new();
                format.event_format().write(&hostile_event(), &mut record);
                let s = seal(cp, start);
                let mut line = Vec::new();
                write_sealed(format, &record, &s, &mut line);
                let (r, parsed) = split_sealed(format, &line).unwrap();
                assert_eq!(&*r, &record[..], "{format:?}");
                assert_eq!(parsed, s, "{format:?}");
            }
        }
    }

    #[test]
    fn event_content_cannot_forge_a_seal() {
        for format in [LineFormat::Json, LineFormat::Text, LineFormat::Cef] {
            let mut record = Vec::new();
            format.event_format().write(&hostile_event(), &mut record);
            assert!(split_sealed(format, &record).is_err(), "{format:?}");
        }
    }

    #[test]
    fn rejects_trailing_bytes_and_bad_hex() {
        let mut record = Vec::new();
        LineFormat::Text
            .event_format()
            .write(&hostile_event(), &mut record);
        let mut line = Vec::new();
        write_sealed(LineFormat::Text, &record, &seal(None, None), &mut line);
        let mut extra = line.clone();
        extra.push(b'x');
        assert_eq!(
            split_sealed(LineFormat::Text, &extra).err(),
            Some(LineError::BadSeal)
        );
        let mut upper = line.clone();
        let n = upper.len();
        upper[n - 1] = b'A';
        assert_eq!(
            split_sealed(LineFormat::Text, &upper).err(),
            Some(LineError::BadSeal)
        );
    }

    #[test]
    fn format_1_is_told_apart_and_no_byte_flip_reaches_it() {
        for format in [LineFormat::Json, LineFormat::Text, LineFormat::Cef] {
            let mut record = Vec::new();
            format.event_format().write(&hostile_event(), &mut record);
            let mut line = Vec::new();
            write_sealed(format, &record, &seal(Some("cp"), Some("db1")), &mut line);
            assert!(!parses_as_v1(&line), "{format:?}");
            // The same line without its version field is format 1.
            let t = format.tokens();
            let at = line
                .windows(t.version.len())
                .rposition(|w| w == t.version)
                .unwrap();
            let mut old = line.clone();
            old.drain(at..at + t.version.len());
            assert!(parses_as_v1(&old), "{format:?}");
            assert!(parse_sealed(format, &old).is_err(), "{format:?}");
            for i in 0..line.len() {
                for x in [1u8, 0x20, 0x80, 0xff] {
                    let mut flipped = line.clone();
                    flipped[i] ^= x;
                    assert!(!parses_as_v1(&flipped), "{format:?} byte {i} ^ {x}");
                }
            }
        }
    }

    #[test]
    fn the_leaf_is_the_line_without_its_mac_then_the_mac() {
        for format in [LineFormat::Json, LineFormat::Text, LineFormat::Cef] {
            let mut record = Vec::new();
            format.event_format().write(&hostile_event(), &mut record);
            let s = seal(None, Some("db1"));
            let mut line = Vec::new();
            write_sealed(format, &record, &s, &mut line);
            let hex = hex_digits(&s.mac);
            let at = line.windows(64).position(|w| w == hex).unwrap();
            let mut data = line[..at].to_vec();
            data.extend_from_slice(&line[at + 64..]);
            let mut chained = data.clone();
            chained.extend_from_slice(&[7; 32]);
            let digest = crate::merkle::leaf_hash(&chained);
            data.extend_from_slice(&s.mac);
            let leaf = crate::merkle::leaf_hash(&data);
            assert_eq!(entry_leaf(format, &line), Ok(leaf), "{format:?}");
            let p = parse_entry(format, &line).unwrap();
            assert_eq!(p.mac_at, at, "{format:?}");
            assert_eq!(
                EntryHash::of(&line, at).digest(&[7; 32]),
                digest,
                "{format:?}"
            );
            // Written without the MAC, the line has zeros in its place.
            let mut unsealed = Vec::new();
            let mac_at = write_unsealed(format, &record, &s, &mut unsealed);
            assert_eq!(mac_at, at);
            assert_eq!(&unsealed[..at], &line[..at]);
            assert_eq!(&unsealed[at + 64..], &line[at + 64..]);
        }
    }
}
