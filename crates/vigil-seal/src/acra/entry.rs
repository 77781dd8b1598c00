//! Splitting one Acra audit line into its signed bytes and integrity check.

use std::borrow::Cow;

use super::AcraFormat;
use super::gojson::{Object, Style};

/// What the writer appends to every signed plaintext or CEF line.
const SEPARATOR: &[u8] = b" integrity=";
/// Appended after the integrity check on the first entry of a chain. Not MACed.
const NEW_CHAIN_SUFFIX: &[u8] = b" chain=new";
/// The field Acra adds to the end message. MACed.
const END_MARKER: &[u8] = b"chain=end";
/// Acra's `EndOfAuditLogChainMessage`.
pub(super) const END_MESSAGE: &str = "End of current audit log chain";

/// One non-empty line, classified as Acra's parsers do.
#[derive(Debug)]
pub(super) enum Line<'a> {
    /// No integrity check: Acra warns and skips the line.
    Unsigned,
    /// An integrity check that cannot be read, or JSON that Go rejects:
    /// Acra stops with an error.
    Malformed(String),
    /// A signed entry.
    Signed(Entry<'a>),
}

/// A signed entry.
#[derive(Debug)]
pub(super) struct Entry<'a> {
    /// The canonical bytes the writer MACed.
    pub(super) data: Cow<'a, [u8]>,
    /// The same bytes as Go before 1.22 encoded them; only for JSON lines whose
    /// strings hold `\b` or `\f`.
    pub(super) legacy_data: Option<Vec<u8>>,
    /// The decoded integrity check, of any length (a wrong length is a
    /// mismatch, as in Acra).
    pub(super) integrity: Vec<u8>,
    /// The line starts a new chain (` chain=new` / `"chain":"new"`).
    pub(super) new_chain: bool,
    /// The line ends its chain, by Acra's test.
    pub(super) end: bool,
}

/// Classifies a non-empty line (without its line terminator).
pub(super) fn parse(format: AcraFormat, line: &[u8]) -> Line<'_> {
    match format {
        AcraFormat::Plaintext => parse_text(line, false),
        AcraFormat::Cef => parse_text(line, true),
        AcraFormat::Json => parse_json(line),
    }
}

/// Plaintext and CEF: `<data> integrity=<hex>[ chain=new]`.
///
/// Acra splits on every ` integrity=` and calls a line with more than one
/// unsigned, so a message that contains the text breaks the chain. We split on
/// the last one, which is where the writer puts it; a line whose last tail is
/// not an integrity check keeps Acra's classification (unsigned if the
/// separator occurs more than once, malformed if once).
fn parse_text(line: &[u8], cef: bool) -> Line<'_> {
    let Some(last) = rfind(line, SEPARATOR) else {
        return Line::Unsigned;
    };
    let data = &line[..last];
    let mut tail = &line[last + SEPARATOR.len()..];
    if cef {
        // Acra trims the CEF tail with strings.TrimSpace. A tail that is not
        // UTF-8 cannot be hex whatever is trimmed.
        if let Ok(s) = std::str::from_utf8(tail) {
            tail = s.trim().as_bytes();
        }
    }
    let new_chain = tail.ends_with(NEW_CHAIN_SUFFIX);
    if new_chain {
        tail = &tail[..tail.len() - NEW_CHAIN_SUFFIX.len()];
    }
    let Some(integrity) = decode_hex(tail) else {
        return if find(line, SEPARATOR) == Some(last) {
            Line::Malformed("can't parse integrity: not hexadecimal".into())
        } else {
            Line::Unsigned
        };
    };
    // Acra's test for an end entry: both strings anywhere in the signed data.
    let end = find(data, END_MARKER).is_some() && find(data, END_MESSAGE.as_bytes()).is_some();
    Line::Signed(Entry {
        data: Cow::Borrowed(data),
        legacy_data: None,
        integrity,
        new_chain,
        end,
    })
}

/// JSON: the parsed object minus `integrity` (and `chain` when it is `new`).
fn parse_json(line: &[u8]) -> Line<'_> {
    let mut object = match Object::parse(line) {
        Ok(object) => object,
        Err(e) => return Line::Malformed(e.to_string()),
    };
    let Some(integrity) = object.string("integrity") else {
        return Line::Unsigned;
    };
    let Some(integrity) = decode_hex(integrity.as_bytes()) else {
        return Line::Malformed("can't parse integrity: not hexadecimal".into());
    };
    object.remove("integrity");
    let mut new_chain = false;
    let mut end = false;
    match object.string("chain") {
        Some("new") => {
            new_chain = true;
            object.remove("chain");
        }
        // "chain":"end" stays in the signed data.
        Some("end") => end = object.string("msg") == Some(END_MESSAGE),
        _ => {}
    }
    let (data, version_dependent) = object.canonical(Style::Current);
    let legacy_data = version_dependent.then(|| object.canonical(Style::Legacy).0);
    Line::Signed(Entry {
        data: Cow::Owned(data),
        legacy_data,
        integrity,
        new_chain,
        end,
    })
}

/// Go's `hex.DecodeString`: either case, even length, empty is fine.
pub(super) fn decode_hex(s: &[u8]) -> Option<Vec<u8>> {
    if !s.len().is_multiple_of(2) {
        return None;
    }
    s.chunks_exact(2)
        .map(|pair| {
            let hi = char::from(pair[0]).to_digit(16)?;
            let lo = char::from(pair[1]).to_digit(16)?;
            u8::try_from((hi << 4) | lo).ok()
        })
        .collect()
}

fn find(haystack: &[u8], needle: &[u8]) -> Option<usize> {
    haystack.windows(needle.len()).position(|w| w == needle)
}

fn rfind(haystack: &[u8], needle: &[u8]) -> Option<usize> {
    haystack.windows(needle.len()).rposition(|w| w == needle)
}

#[cfg(test)]
mod tests {
    use super::*;

    const HEX: &str = "00112233445566778899aabbccddeeff00112233445566778899aabbccddeeff";

    fn signed(format: AcraFormat, line: &str) -> Entry<'_> {
        match parse(format, line.as_bytes()) {
            Line::Signed(entry) => entry,
            other => panic!("{line:?} parsed as {other:?}"),
        }
    }

    #[test]
    fn plaintext_data_and_flags() {
        let line = format!(r#"time="t" level=info msg="hi" integrity={HEX} chain=new"#);
        let entry = signed(AcraFormat::Plaintext, &line);
        assert_eq!(&*entry.data, br#"time="t" level=info msg="hi""#);
        assert!(entry.new_chain && !entry.end);
        assert_eq!(entry.integrity.len(), 32);

        let line = format!(
            r#"time="t" level=info msg="End of current audit log chain" chain=end integrity={}"#,
            HEX.to_uppercase()
        );
        let entry = signed(AcraFormat::Plaintext, &line);
        assert!(!entry.new_chain && entry.end);
        assert_eq!(entry.integrity, decode_hex(HEX.as_bytes()).expect("hex"));
    }

    #[test]
    fn fake_integrity_text_in_a_message() {
        // Acra calls this line unsigned; the writer signed everything before
        // the last separator.
        let line = format!(r#"time="t" level=info msg="x integrity=00 y" integrity={HEX}"#);
        let entry = signed(AcraFormat::Plaintext, &line);
        assert_eq!(
            &*entry.data,
            br#"time="t" level=info msg="x integrity=00 y""#
        );
        // Twice with no check at the end: unsigned, as in Acra.
        assert!(matches!(
            parse(
                AcraFormat::Plaintext,
                br#"msg="a integrity=b" integrity=c""#
            ),
            Line::Unsigned
        ));
        // Once with a bad tail: malformed, as in Acra.
        for bad in [
            format!("m integrity={HEX} "),
            "m integrity=abc".into(),
            "m integrity=zz".into(),
        ] {
            assert!(matches!(
                parse(AcraFormat::Plaintext, bad.as_bytes()),
                Line::Malformed(_)
            ));
        }
        assert!(matches!(
            parse(AcraFormat::Plaintext, b"no check"),
            Line::Unsigned
        ));
    }

    #[test]
    fn end_test_is_as_loose_as_acras() {
        // Both strings anywhere in the signed text make an end, as in Acra.
        let line = format!(
            r#"time="t" level=info msg="user typed End of current audit log chain chain=end" integrity={HEX}"#
        );
        assert!(signed(AcraFormat::Plaintext, &line).end);
        let line = format!(r#"time="t" level=info msg="{END_MESSAGE}" integrity={HEX}"#);
        assert!(!signed(AcraFormat::Plaintext, &line).end);
    }

    #[test]
    fn cef_trims_only_the_tail() {
        let line = format!("CEF:0|v|p|1|100|m|1|unixTime=1 integrity={HEX} chain=new \t");
        let entry = signed(AcraFormat::Cef, &line);
        assert_eq!(&*entry.data, b"CEF:0|v|p|1|100|m|1|unixTime=1");
        assert!(entry.new_chain);
        // Plaintext does not trim.
        assert!(matches!(
            parse(AcraFormat::Plaintext, line.as_bytes()),
            Line::Malformed(_)
        ));
    }

    #[test]
    fn json_removes_integrity_and_new_but_keeps_end() {
        let line = format!(r#"{{"chain":"new","integrity":"{HEX}","msg":"a<b"}}"#);
        let entry = signed(AcraFormat::Json, &line);
        assert_eq!(&*entry.data, br#"delimitermsgdelimiter"a\u003cb"delimiter"#);
        assert!(entry.new_chain && !entry.end);

        let line = format!(r#"{{"chain":"end","integrity":"{HEX}","msg":"{END_MESSAGE}"}}"#);
        let entry = signed(AcraFormat::Json, &line);
        assert!(entry.end && !entry.new_chain);
        assert!(
            entry
                .data
                .starts_with(br#"delimiterchaindelimiter"end"delimiter"#)
        );

        // "chain":"end" on another message is signed data, not an end.
        let line = format!(r#"{{"chain":"end","integrity":"{HEX}","msg":"x"}}"#);
        assert!(!signed(AcraFormat::Json, &line).end);

        assert!(matches!(
            parse(AcraFormat::Json, br#"{"msg":"x"}"#),
            Line::Unsigned
        ));
        assert!(matches!(
            parse(AcraFormat::Json, br#"{"integrity":1}"#),
            Line::Unsigned
        ));
        assert!(matches!(parse(AcraFormat::Json, b"null"), Line::Unsigned));
        assert!(matches!(
            parse(AcraFormat::Json, br#"{"integrity":"xy"}"#),
            Line::Malformed(_)
        ));
        assert!(matches!(parse(AcraFormat::Json, b"{"), Line::Malformed(_)));
    }

    #[test]
    fn legacy_encoding_only_when_it_differs() {
        let line = format!(r#"{{"integrity":"{HEX}","msg":"a\bb"}}"#);
        let entry = signed(AcraFormat::Json, &line);
        assert_eq!(&*entry.data, br#"delimitermsgdelimiter"a\bb"delimiter"#);
        assert_eq!(
            entry.legacy_data.as_deref(),
            Some(&br#"delimitermsgdelimiter"a\u0008b"delimiter"#[..])
        );
        let line = format!(r#"{{"integrity":"{HEX}","msg":"ab"}}"#);
        assert!(signed(AcraFormat::Json, &line).legacy_data.is_none());
    }
}
