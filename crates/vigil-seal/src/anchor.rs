//! What a verifier needs to start at a segment instead of at seq 1, so that
//! a log whose oldest segments were removed by retention still verifies.
//!
//! The first entry of every segment after the first (`audit.segment_rotated`)
//! carries an **anchor** in its field `anchor`: the chain's origin and start,
//! the MAC of the entry before it and the Merkle tree's frontier before it.
//! None of it is secret and none of it is trusted: a wrong anchor makes the
//! entry's MAC or the next checkpoint fail. What makes a missing head
//! acceptable is a sealed `audit.segments_removed` entry that accounts for it
//! ([`removal`]).

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use vigil_event::catalog;

use crate::line::LineFormat;
use crate::merkle::{Hash, Tree, hash_from_hex, hash_to_hex};

/// The verifier's state at the start of a segment.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct Anchor {
    /// The origin the chain was started for.
    pub origin: String,
    /// The seq the chain of this entry started at.
    pub chain_start: u64,
    /// The MAC of the entry before.
    pub prev_mac: Hash,
    /// The Merkle tree of every entry before.
    pub tree: Tree,
}

/// The anchor's layout version, its value's first token.
const VERSION: &str = "1";

impl Anchor {
    /// The field's value: `1.<origin, base64url>.<chain start>.<previous
    /// MAC, hex>.<tree size>` and one `.<hash, hex>` per frontier hash,
    /// largest subtree first. Only `[A-Za-z0-9._-]`, so every line format
    /// writes it as it is.
    pub(crate) fn encode(&self) -> String {
        let mut s = format!(
            "{VERSION}.{}.{}.{}.{}",
            URL_SAFE_NO_PAD.encode(self.origin.as_bytes()),
            self.chain_start,
            hash_to_hex(&self.prev_mac),
            self.tree.size()
        );
        for h in self.tree.frontier() {
            s.push('.');
            s.push_str(&hash_to_hex(h));
        }
        s
    }

    /// Parses a value [`encode`](Self::encode) wrote.
    pub(crate) fn decode(value: &str) -> Option<Anchor> {
        let mut parts = value.split('.');
        if parts.next()? != VERSION {
            return None;
        }
        let origin = String::from_utf8(URL_SAFE_NO_PAD.decode(parts.next()?).ok()?).ok()?;
        let chain_start = parse_seq(parts.next()?)?;
        let prev_mac = hash_from_hex(parts.next()?)?;
        let size = parse_seq(parts.next()?)?;
        let frontier = parts.map(hash_from_hex).collect::<Option<Vec<_>>>()?;
        let tree = Tree::from_frontier(size, frontier).ok()?;
        Some(Anchor {
            origin,
            chain_start,
            prev_mac,
            tree,
        })
    }

    /// The anchor of a segment's first line, when that line is an
    /// `audit.segment_rotated` entry that has one for seq `seq`: its tree
    /// holds the `seq - 1` entries before, and its chain started at or
    /// before it.
    pub(crate) fn of_line(format: LineFormat, line: &[u8], seq: u64) -> Option<Anchor> {
        if event_code(format, line)? != catalog::AUDIT_SEGMENT_ROTATED.code() {
            return None;
        }
        let anchor = Anchor::decode(own_field(line, "anchor")?)?;
        (anchor.tree.size() == seq - 1 && (1..=seq).contains(&anchor.chain_start)).then_some(anchor)
    }
}

/// The Merkle tree of the entries before a segment whose first line,
/// entry `seq`, carries an anchor (`audit.segment_rotated`): where proofs
/// start in a log whose earlier segments were removed.
pub fn anchor_tree(format: LineFormat, first_line: &[u8], seq: u64) -> Option<Tree> {
    Anchor::of_line(format, first_line, seq).map(|a| a.tree)
}

/// The seq range an `audit.segments_removed` line records, when the line is
/// one.
pub(crate) fn removal(format: LineFormat, line: &[u8]) -> Option<(u64, u64)> {
    if event_code(format, line)? != catalog::AUDIT_SEGMENTS_REMOVED.code() {
        return None;
    }
    let first = parse_seq(own_field(line, "first_seq")?)?;
    let last = parse_seq(own_field(line, "last_seq")?)?;
    (first <= last).then_some((first, last))
}

/// A decimal seq: digits only, no sign, no leading zero.
fn parse_seq(s: &str) -> Option<u64> {
    if s.is_empty() || !s.bytes().all(|b| b.is_ascii_digit()) || (s.len() > 1 && s.starts_with('0'))
    {
        return None;
    }
    s.parse().ok()
}

/// The event code of a sealed line, read where each format puts it, before
/// anything an event's content can hold: JSON's first `,"code":` (no string
/// holds an unescaped quote), the text format's fourth word (`code=N`, after
/// the time, severity and name, none of which holds a space), CEF's fifth
/// header field (`CEF:0|vigil|vigil|<version>|<code>|`).
pub(crate) fn event_code(format: LineFormat, line: &[u8]) -> Option<u16> {
    let digits = match format {
        LineFormat::Json => {
            let at = find(line, b",\"code\":")? + b",\"code\":".len();
            let rest = line.get(at..)?;
            let end = rest
                .iter()
                .position(|b| !b.is_ascii_digit())
                .unwrap_or(rest.len());
            rest.get(..end)?
        }
        LineFormat::Text => line.split(|&b| b == b' ').nth(3)?.strip_prefix(b"code=")?,
        LineFormat::Cef => {
            let mut fields = line.split(|&b| b == b'|');
            if fields.next()? != b"CEF:0" || fields.next()? != b"vigil" {
                return None;
            }
            fields.nth(2)?
        }
    };
    parse_seq(std::str::from_utf8(digits).ok()?)?
        .try_into()
        .ok()
}

/// The value of field `name` in an entry vigil wrote itself, whose fields
/// hold nothing from outside: the first `"name":` (JSON, and the JSON of
/// CEF's `cs6`) or ` name=` (text), up to the closing quote, comma, brace
/// or space.
fn own_field<'l>(line: &'l [u8], name: &str) -> Option<&'l str> {
    let json = format!("\"{name}\":");
    let text = format!(" {name}=");
    let at = [json.as_bytes(), text.as_bytes()]
        .into_iter()
        .filter_map(|key| find(line, key).map(|i| i + key.len()))
        .min()?;
    let rest = line.get(at..)?;
    let rest = rest.strip_prefix(b"\"").unwrap_or(rest);
    let end = rest
        .iter()
        .position(|b| matches!(b, b'"' | b',' | b'}' | b' '))
        .unwrap_or(rest.len());
    std::str::from_utf8(rest.get(..end)?).ok()
}

fn find(hay: &[u8], needle: &[u8]) -> Option<usize> {
    hay.windows(needle.len()).position(|w| w == needle)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn tree(n: u64) -> Tree {
        let mut t = Tree::new();
        for i in 0..n {
            t.push_data(format!("entry {i}").as_bytes());
        }
        t
    }

    #[test]
    fn an_anchor_reads_back_as_written() {
        for n in [0, 1, 2, 7, 64, 1000] {
            let a = Anchor {
                origin: "db 1/ä".into(),
                chain_start: 3,
                prev_mac: [0xab; 32],
                tree: tree(n),
            };
            let s = a.encode();
            assert!(
                s.bytes()
                    .all(|b| b.is_ascii_alphanumeric() || b"._-".contains(&b)),
                "{s}"
            );
            assert_eq!(Anchor::decode(&s), Some(a));
        }
        assert_eq!(Anchor::decode("2.ZGIx.1.00.0"), None);
        assert_eq!(Anchor::decode("1.ZGIx.01.x.0"), None);
    }

    #[test]
    fn codes_and_fields_are_read_where_each_format_puts_them() {
        let json = br#"{"time":"t","origin":"\",\"code\":4008","seq":9,"code":4004,"name":"audit.segment_rotated","fields":{"anchor":"1.ZGIx"},"seal":{"seq":9}}"#;
        assert_eq!(event_code(LineFormat::Json, json), Some(4004));
        assert_eq!(own_field(json, "anchor"), Some("1.ZGIx"));
        let text = b"2026-11-27T00:00:00Z notice audit.segments_removed code=4008 origin=db1 seq=9 msg=\"removing audit entries 1..=5 by retention\" first_seq=1 last_seq=5 seal.seq=9";
        assert_eq!(event_code(LineFormat::Text, text), Some(4008));
        assert_eq!(removal(LineFormat::Text, text), Some((1, 5)));
        let cef = br#"CEF:0|vigil|vigil|0.1.0|4008|audit.segments_removed|3|rt=1 msg=x cs6={"first_seq":6,"last_seq":9,"files":1} cs6Label=fields vigilSealSeq=12"#;
        assert_eq!(removal(LineFormat::Cef, cef), Some((6, 9)));
        assert_eq!(
            event_code(LineFormat::Cef, b"CEF:0|other|vigil|1|4008|x|"),
            None
        );
    }
}
