//! Syslog messages as received: RFC 5424 and RFC 3164 (BSD), parsed by
//! [`parse`] into a [`Message`] that borrows from the input.
//!
//! ```
//! use vigil_ship::ingest::parse::{Syntax, parse};
//!
//! let m = parse(b"<34>1 2003-10-11T22:14:15.003Z mymachine.example.com su - ID47 - 'su root' failed")?;
//! assert_eq!((m.syntax, m.facility, m.severity), (Syntax::Rfc5424, 4, 2));
//! assert_eq!(m.app_name, Some("su"));
//! assert_eq!(m.msg, "'su root' failed");
//! # Ok::<(), vigil_ship::ingest::parse::ParseError>(())
//! ```
//!
//! # What is accepted
//!
//! Trailing LF, CR and NUL bytes are left over from framing and dropped
//! first. Then every message starts with `<PRI>`: one to three digits
//! without a leading zero, 0 to 191. What follows decides the syntax:
//!
//! - **RFC 5424**, when `1 ` follows: `TIMESTAMP HOSTNAME APP-NAME PROCID
//!   MSGID STRUCTURED-DATA [MSG]`, each header field `-` (absent) or
//!   printable US-ASCII up to its length limit (HOSTNAME 255, APP-NAME 48,
//!   PROCID 128, MSGID 32). TIMESTAMP is RFC 3339 with an upper-case `T`
//!   and `Z`, at most six fractional digits; one that is malformed or
//!   impossible (February 30th) leaves [`Message::timestamp`] empty
//!   rather than refusing the message. STRUCTURED-DATA is `-` or SD-ELEMENTs
//!   `[id name="value" ...]`: names of 1 to 32 printable characters other
//!   than `=`, space, `]` and `"`, values in UTF-8 where `\"`, `\\` and `\]`
//!   stand for `"`, `\` and `]` and any other backslash is itself. MSG
//!   follows one space; a leading UTF-8 BOM is dropped. Any other version
//!   number is refused.
//! - **RFC 3164**, otherwise: `Mmm dd hh:mm:ss HOSTNAME CONTENT`, the day
//!   padded with a space or a zero. When CONTENT starts with a tag, `tag:`
//!   or `tag[pid]:` (the tag up to 48 printable characters), the tag is the
//!   APP-NAME and the pid the PROCID; MSG is the rest after one space. The
//!   timestamp has neither year nor time zone, so it gives no
//!   [`Message::timestamp`]. A message without that timestamp is refused.
//!
//! MSG may hold any bytes: UTF-8 is kept as is, and each byte sequence that
//! is not UTF-8 becomes U+FFFD. Control characters are kept; every vigil
//! format escapes them.
//!
//! Parsing never panics, and allocates at most the structured-data element
//! list, unescaped parameter values and a MSG with replacement characters:
//! a few times the input's length at most.

use std::borrow::Cow;
use std::fmt;

use vigil_event::Timestamp;

/// Which syslog RFC a message follows.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum Syntax {
    /// RFC 3164, the BSD syslog format.
    Rfc3164,
    /// RFC 5424, the syslog protocol, version 1.
    Rfc5424,
}

/// A parsed syslog message, borrowing from the input. Absent fields (the
/// NILVALUE `-` of RFC 5424, or what RFC 3164 has no place for) are `None`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Message<'a> {
    /// The syntax the message follows.
    pub syntax: Syntax,
    /// The facility, 0 (kernel) to 23 (local7).
    pub facility: u8,
    /// The syslog severity, 0 (emergency) to 7 (debug).
    pub severity: u8,
    /// RFC 5424 only: the time the message gives, when it is a valid
    /// RFC 5424 timestamp.
    pub timestamp: Option<Timestamp>,
    /// HOSTNAME.
    pub hostname: Option<&'a str>,
    /// APP-NAME, or the RFC 3164 tag.
    pub app_name: Option<&'a str>,
    /// PROCID, or the pid of an RFC 3164 tag.
    pub procid: Option<&'a str>,
    /// RFC 5424 only: MSGID.
    pub msgid: Option<&'a str>,
    /// RFC 5424 only: STRUCTURED-DATA exactly as received, escapes and all.
    pub structured_data: Option<&'a str>,
    /// The SD-ELEMENTs of `structured_data`, in order, values unescaped.
    pub elements: Vec<SdElement<'a>>,
    /// MSG, without a BOM; empty when there is none.
    pub msg: Cow<'a, str>,
}

/// One RFC 5424 SD-ELEMENT: `[id name="value" ...]`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SdElement<'a> {
    /// The SD-ID, e.g. `timeQuality` or `exampleSDID@32473`.
    pub id: &'a str,
    /// The parameters, in order.
    pub params: Vec<SdParam<'a>>,
}

/// One SD-PARAM of an [`SdElement`].
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SdParam<'a> {
    /// PARAM-NAME.
    pub name: &'a str,
    /// PARAM-VALUE with its escapes resolved.
    pub value: Cow<'a, str>,
}

/// Why a message was refused. The text names the rule that was broken and
/// never quotes the message, which may hold secrets.
#[derive(Clone, Copy, Debug, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum ParseError {
    /// Nothing but framing leftovers (LF, CR, NUL), or nothing at all.
    #[error("the message is empty")]
    Empty,
    /// No `<PRI>` of 0 to 191 at the start.
    #[error("the message does not start with a PRI, <0> to <191>")]
    Pri,
    /// A version after PRI other than RFC 5424's `1`.
    #[error("unsupported syslog version: only RFC 5424 version 1 and RFC 3164 are accepted")]
    Version,
    /// An RFC 5424 header field is missing, too long, or holds a byte
    /// outside printable US-ASCII.
    #[error(
        "the RFC 5424 {field} is missing or not 1 to {max} printable US-ASCII characters \
         followed by a space"
    )]
    Header {
        /// The field's name in RFC 5424.
        field: &'static str,
        /// Its length limit.
        max: usize,
    },
    /// The RFC 5424 STRUCTURED-DATA breaks the grammar; `what` says how.
    #[error("the RFC 5424 STRUCTURED-DATA is malformed: {what}")]
    StructuredData {
        /// Which rule was broken.
        what: &'static str,
    },
    /// An RFC 3164 message breaks its form; `what` says how.
    #[error("the RFC 3164 message is malformed: {what}")]
    Bsd {
        /// Which rule was broken.
        what: &'static str,
    },
}

/// The length limits of RFC 5424's header fields.
const MAX_TIMESTAMP: usize = 64;
const MAX_HOSTNAME: usize = 255;
const MAX_APP_NAME: usize = 48;
const MAX_PROCID: usize = 128;
const MAX_MSGID: usize = 32;
const MAX_SD_NAME: usize = 32;
/// The longest RFC 3164 tag taken as an APP-NAME.
const MAX_TAG: usize = 48;
const BOM: &[u8] = b"\xEF\xBB\xBF";

/// Parses one syslog message (see the [module documentation](self)).
pub fn parse(input: &[u8]) -> Result<Message<'_>, ParseError> {
    let end = input
        .iter()
        .rposition(|b| !matches!(b, b'\n' | b'\r' | 0))
        .map_or(0, |i| i + 1);
    let input = &input[..end];
    if input.is_empty() {
        return Err(ParseError::Empty);
    }
    let (pri, rest) = pri(input)?;
    let (facility, severity) = (pri >> 3, pri & 7);
    match version(rest) {
        Some(b"1") => rfc5424(facility, severity, &rest[2..]),
        Some(_) => Err(ParseError::Version),
        None => rfc3164(facility, severity, rest),
    }
}

/// An RFC 5424 VERSION and the space after it (`1 `, `2 `, … `999 `).
fn version(rest: &[u8]) -> Option<&[u8]> {
    let digits = rest
        .iter()
        .take(4)
        .take_while(|b| b.is_ascii_digit())
        .count();
    let ok = (1..=3).contains(&digits) && rest[0] != b'0' && rest.get(digits) == Some(&b' ');
    ok.then(|| &rest[..digits])
}

/// `<PRI>`: returns its value and what follows.
fn pri(input: &[u8]) -> Result<(u8, &[u8]), ParseError> {
    let rest = input.strip_prefix(b"<").ok_or(ParseError::Pri)?;
    let digits = rest
        .iter()
        .take(4)
        .take_while(|b| b.is_ascii_digit())
        .count();
    if !(1..=3).contains(&digits) || rest.get(digits) != Some(&b'>') {
        return Err(ParseError::Pri);
    }
    if digits > 1 && rest[0] == b'0' {
        return Err(ParseError::Pri);
    }
    let value = rest[..digits]
        .iter()
        .fold(0u16, |v, d| v * 10 + u16::from(d - b'0'));
    let value = u8::try_from(value)
        .ok()
        .filter(|v| *v <= 191)
        .ok_or(ParseError::Pri)?;
    Ok((value, &rest[digits + 1..]))
}

fn rfc5424(facility: u8, severity: u8, rest: &[u8]) -> Result<Message<'_>, ParseError> {
    let (timestamp, rest) = header(rest, "TIMESTAMP", MAX_TIMESTAMP)?;
    let (hostname, rest) = header(rest, "HOSTNAME", MAX_HOSTNAME)?;
    let (app_name, rest) = header(rest, "APP-NAME", MAX_APP_NAME)?;
    let (procid, rest) = header(rest, "PROCID", MAX_PROCID)?;
    let (msgid, rest) = header(rest, "MSGID", MAX_MSGID)?;
    let (structured_data, elements, rest) = match rest.first() {
        Some(b'-') => (None, Vec::new(), &rest[1..]),
        Some(b'[') => {
            let (elements, len) = structured_data(rest)?;
            // Every byte up to `len` was checked to be ASCII or part of a
            // UTF-8 parameter value.
            let text =
                std::str::from_utf8(&rest[..len]).map_err(|_| ParseError::StructuredData {
                    what: "it is not UTF-8",
                })?;
            (Some(text), elements, &rest[len..])
        }
        _ => {
            return Err(ParseError::StructuredData {
                what: "it is neither - nor [",
            });
        }
    };
    let msg = match rest {
        [] => &[][..],
        [b' ', msg @ ..] => msg,
        _ => {
            return Err(ParseError::StructuredData {
                what: "it is not followed by a space or the end",
            });
        }
    };
    let msg = msg.strip_prefix(BOM).unwrap_or(msg);
    Ok(Message {
        syntax: Syntax::Rfc5424,
        facility,
        severity,
        timestamp: timestamp.and_then(rfc5424_timestamp),
        hostname,
        app_name,
        procid,
        msgid,
        structured_data,
        elements,
        msg: String::from_utf8_lossy(msg),
    })
}

/// One header field and the space after it: `None` for the NILVALUE `-`.
fn header<'a>(
    input: &'a [u8],
    field: &'static str,
    max: usize,
) -> Result<(Option<&'a str>, &'a [u8]), ParseError> {
    let err = ParseError::Header { field, max };
    let len = input.iter().position(|&b| b == b' ').ok_or(err)?;
    let token = &input[..len];
    if token.is_empty() || token.len() > max || !token.iter().all(|b| (33..=126).contains(b)) {
        return Err(err);
    }
    // Printable US-ASCII is UTF-8.
    let text = std::str::from_utf8(token).map_err(|_| err)?;
    let value = (text != "-").then_some(text);
    Ok((value, &input[len + 1..]))
}

/// An RFC 5424 TIMESTAMP: RFC 3339 with `T`, `Z` in upper case and at
/// most six fractional digits.
fn rfc5424_timestamp(text: &str) -> Option<Timestamp> {
    let b = text.as_bytes();
    if b.get(10) != Some(&b'T') || b.last() == Some(&b'z') {
        return None;
    }
    if b.get(19) == Some(&b'.') {
        let digits = b[20..].iter().take_while(|c| c.is_ascii_digit()).count();
        if digits > 6 {
            return None;
        }
    }
    Timestamp::parse_rfc3339(text)
}

/// SD-ELEMENTs from the start of `input` (which starts with `[`): returns
/// them and how many bytes they take.
fn structured_data(input: &[u8]) -> Result<(Vec<SdElement<'_>>, usize), ParseError> {
    let err = |what| ParseError::StructuredData { what };
    let mut elements = Vec::new();
    let mut i = 0;
    while input.get(i) == Some(&b'[') {
        i += 1;
        let id = sd_name(input, &mut i).ok_or(err("an SD-ID is empty or too long"))?;
        let mut params = Vec::new();
        loop {
            match input.get(i) {
                Some(b']') => {
                    i += 1;
                    break;
                }
                Some(b' ') => {
                    i += 1;
                    let name =
                        sd_name(input, &mut i).ok_or(err("a PARAM-NAME is empty or too long"))?;
                    if input.get(i..i + 2) != Some(b"=\"") {
                        return Err(err("a PARAM-NAME is not followed by =\""));
                    }
                    i += 2;
                    let value = param_value(input, &mut i)?;
                    params.push(SdParam { name, value });
                }
                Some(_) => return Err(err("an SD-ELEMENT holds something other than SD-PARAMs")),
                None => return Err(err("an SD-ELEMENT is not closed with ]")),
            }
        }
        elements.push(SdElement { id, params });
    }
    Ok((elements, i))
}

/// An SD-NAME (SD-ID or PARAM-NAME) at `input[*i..]`: 1 to 32 printable
/// US-ASCII characters other than `=`, space, `]` and `"`.
fn sd_name<'a>(input: &'a [u8], i: &mut usize) -> Option<&'a str> {
    let rest = input.get(*i..)?;
    let len = rest
        .iter()
        .take(MAX_SD_NAME + 1)
        .take_while(|&&b| (33..=126).contains(&b) && !matches!(b, b'=' | b']' | b'"'))
        .count();
    if len == 0 || len > MAX_SD_NAME {
        return None;
    }
    *i += len;
    std::str::from_utf8(&rest[..len]).ok()
}

/// A PARAM-VALUE after its opening quote, up to and past its closing quote.
fn param_value<'a>(input: &'a [u8], i: &mut usize) -> Result<Cow<'a, str>, ParseError> {
    let err = |what| ParseError::StructuredData { what };
    let start = *i;
    let mut escaped = false;
    let mut j = start;
    loop {
        match input.get(j) {
            None => return Err(err("a PARAM-VALUE is not closed with \"")),
            Some(b'"') => break,
            Some(b'\\') if matches!(input.get(j + 1), Some(b'"' | b'\\' | b']')) => {
                escaped = true;
                j += 2;
            }
            Some(_) => j += 1,
        }
    }
    let raw =
        std::str::from_utf8(&input[start..j]).map_err(|_| err("a PARAM-VALUE is not UTF-8"))?;
    *i = j + 1;
    if !escaped {
        return Ok(Cow::Borrowed(raw));
    }
    let mut value = String::with_capacity(raw.len());
    let mut chars = raw.chars().peekable();
    while let Some(c) = chars.next() {
        if c == '\\'
            && let Some(&next @ ('"' | '\\' | ']')) = chars.peek()
        {
            value.push(next);
            chars.next();
        } else {
            value.push(c);
        }
    }
    Ok(Cow::Owned(value))
}

const MONTHS: [&[u8; 3]; 12] = [
    b"Jan", b"Feb", b"Mar", b"Apr", b"May", b"Jun", b"Jul", b"Aug", b"Sep", b"Oct", b"Nov", b"Dec",
];

fn rfc3164(facility: u8, severity: u8, rest: &[u8]) -> Result<Message<'_>, ParseError> {
    let err = |what| ParseError::Bsd { what };
    if !bsd_timestamp(rest) {
        return Err(err("no TIMESTAMP (Mmm dd hh:mm:ss) after PRI"));
    }
    let rest = &rest[16..];
    let len = rest.iter().position(|&b| b == b' ').unwrap_or(rest.len());
    let host = &rest[..len];
    if host.is_empty() || host.len() > MAX_HOSTNAME || !host.iter().all(|b| (33..=126).contains(b))
    {
        return Err(err(
            "the HOSTNAME is not 1 to 255 printable US-ASCII characters",
        ));
    }
    let hostname = std::str::from_utf8(host).map_err(|_| err("the HOSTNAME is not text"))?;
    let content = rest.get(len + 1..).unwrap_or_default();
    let (app_name, procid, msg) = bsd_tag(content);
    Ok(Message {
        syntax: Syntax::Rfc3164,
        facility,
        severity,
        timestamp: None,
        hostname: Some(hostname),
        app_name,
        procid,
        msgid: None,
        structured_data: None,
        elements: Vec::new(),
        msg: String::from_utf8_lossy(msg),
    })
}

/// Whether `input` starts with `Mmm dd hh:mm:ss ` (the day padded with a
/// space or a zero) naming a possible month, day and time of day.
fn bsd_timestamp(input: &[u8]) -> bool {
    let Some(t) = input.get(..16) else {
        return false;
    };
    let digit = |i: usize| t[i].is_ascii_digit().then(|| t[i] - b'0');
    let two = |i: usize| Some(digit(i)? * 10 + digit(i + 1)?);
    let day = match t[4] {
        b' ' => digit(5),
        _ => two(4),
    };
    MONTHS.iter().any(|m| t[..3] == m[..])
        && t[3] == b' '
        && day.is_some_and(|d| (1..=31).contains(&d))
        && t[6] == b' '
        && two(7).is_some_and(|h| h < 24)
        && t[9] == b':'
        && two(10).is_some_and(|m| m < 60)
        && t[12] == b':'
        && two(13).is_some_and(|s| s <= 60)
        && t[15] == b' '
}

/// Splits RFC 3164 CONTENT into tag, pid and message: `tag: msg`,
/// `tag[pid]: msg` (the colon optional after `]`), or no tag at all.
fn bsd_tag(content: &[u8]) -> (Option<&str>, Option<&str>, &[u8]) {
    let none = (None, None, content);
    let len = content
        .iter()
        .take(MAX_TAG + 1)
        .take_while(|&&b| (33..=126).contains(&b) && !matches!(b, b':' | b'['))
        .count();
    if len == 0 || len > MAX_TAG {
        return none;
    }
    let Ok(tag) = std::str::from_utf8(&content[..len]) else {
        return none;
    };
    let rest = &content[len..];
    let (procid, rest) = match rest.first() {
        Some(b':') => (None, &rest[1..]),
        Some(b'[') => {
            let Some(close) = rest.iter().take(MAX_PROCID + 2).position(|&b| b == b']') else {
                return none;
            };
            let pid = &rest[1..close];
            if pid.is_empty() || !pid.iter().all(|b| (33..=126).contains(b)) {
                return none;
            }
            let Ok(pid) = std::str::from_utf8(pid) else {
                return none;
            };
            let rest = &rest[close + 1..];
            (Some(pid), rest.strip_prefix(b":").unwrap_or(rest))
        }
        _ => return none,
    };
    (Some(tag), procid, rest.strip_prefix(b" ").unwrap_or(rest))
}

impl fmt::Display for Syntax {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Syntax::Rfc3164 => "rfc3164",
            Syntax::Rfc5424 => "rfc5424",
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ts(s: &str) -> Option<Timestamp> {
        Some(Timestamp::parse_rfc3339(s).unwrap())
    }

    /// RFC 5424 section 6.5, example 1: no structured data.
    #[test]
    fn rfc5424_example_1() {
        let m = parse(
            b"<34>1 2003-10-11T22:14:15.003Z mymachine.example.com su - ID47 - \
              \xEF\xBB\xBF'su root' failed for lonvick on /dev/pts/8",
        )
        .unwrap();
        assert_eq!(
            m,
            Message {
                syntax: Syntax::Rfc5424,
                facility: 4,
                severity: 2,
                timestamp: ts("2003-10-11T22:14:15.003Z"),
                hostname: Some("mymachine.example.com"),
                app_name: Some("su"),
                procid: None,
                msgid: Some("ID47"),
                structured_data: None,
                elements: vec![],
                msg: Cow::Borrowed("'su root' failed for lonvick on /dev/pts/8"),
            }
        );
    }

    /// Example 2: an offset, microseconds, and a MSG without a BOM.
    #[test]
    fn rfc5424_example_2() {
        let m = parse(
            b"<165>1 2003-08-24T05:14:15.000003-07:00 192.0.2.1 myproc 8710 - - \
              %% It's time to make the do-nuts.",
        )
        .unwrap();
        assert_eq!((m.facility, m.severity), (20, 5));
        assert_eq!(m.timestamp, ts("2003-08-24T12:14:15.000003Z"));
        assert_eq!(m.hostname, Some("192.0.2.1"));
        assert_eq!(m.app_name, Some("myproc"));
        assert_eq!(m.procid, Some("8710"));
        assert_eq!((m.msgid, m.structured_data), (None, None));
        assert_eq!(m.msg, "%% It's time to make the do-nuts.");
    }

    /// The same with nanoseconds: RFC 5424 calls that TIMESTAMP invalid.
    #[test]
    fn rfc5424_nanoseconds_are_not_a_timestamp() {
        let m = parse(
            b"<165>1 2003-08-24T05:14:15.000000003-07:00 192.0.2.1 myproc 8710 - - \
              %% It's time to make the do-nuts.",
        )
        .unwrap();
        assert_eq!(m.timestamp, None);
        assert_eq!(m.msg, "%% It's time to make the do-nuts.");
        for bad in [
            "2003-08-24t05:14:15Z",
            "2003-08-24T05:14:15z",
            "2003-02-30T05:14:15Z",
            "yesterday",
        ] {
            let line = format!("<13>1 {bad} h a p m - x");
            assert_eq!(parse(line.as_bytes()).unwrap().timestamp, None, "{bad}");
        }
    }

    /// Example 3: structured data and a message with a BOM.
    #[test]
    fn rfc5424_example_3() {
        let m = parse(
            b"<165>1 2003-10-11T22:14:15.003Z mymachine.example.com evntslog - ID47 \
              [exampleSDID@32473 iut=\"3\" eventSource=\"Application\" eventID=\"1011\"] \
              \xEF\xBB\xBFAn application event log entry...",
        )
        .unwrap();
        assert_eq!(m.app_name, Some("evntslog"));
        assert_eq!(
            m.structured_data,
            Some("[exampleSDID@32473 iut=\"3\" eventSource=\"Application\" eventID=\"1011\"]")
        );
        assert_eq!(m.elements.len(), 1);
        assert_eq!(m.elements[0].id, "exampleSDID@32473");
        let params: Vec<(&str, &str)> = m.elements[0]
            .params
            .iter()
            .map(|p| (p.name, &*p.value))
            .collect();
        assert_eq!(
            params,
            [
                ("iut", "3"),
                ("eventSource", "Application"),
                ("eventID", "1011")
            ]
        );
        assert_eq!(m.msg, "An application event log entry...");
    }

    /// Example 4: two SD-ELEMENTs and no MSG.
    #[test]
    fn rfc5424_example_4() {
        let sd = "[exampleSDID@32473 iut=\"3\" eventSource=\"Application\" eventID=\"1011\"]\
                  [examplePriority@32473 class=\"high\"]";
        let line =
            format!("<165>1 2003-10-11T22:14:15.003Z mymachine.example.com evntslog - ID47 {sd}");
        let m = parse(line.as_bytes()).unwrap();
        assert_eq!(m.structured_data, Some(sd));
        assert_eq!(m.elements.len(), 2);
        assert_eq!(m.elements[1].id, "examplePriority@32473");
        assert_eq!(m.elements[1].params[0].name, "class");
        assert_eq!(m.elements[1].params[0].value, "high");
        assert_eq!(m.msg, "");
    }

    /// Section 6.3.5: escapes in PARAM-VALUE; the raw text is kept.
    #[test]
    fn rfc5424_escapes() {
        let sd = r#"[exampleSDID@32473 a="x\"y\]z\\w" b="back\slash" c="" d="]"]"#;
        let line = format!("<13>1 - - - - - {sd} hi");
        let m = parse(line.as_bytes()).unwrap();
        assert_eq!(m.structured_data, Some(sd));
        let values: Vec<&str> = m.elements[0].params.iter().map(|p| &*p.value).collect();
        assert_eq!(values, [r#"x"y]z\w"#, r"back\slash", "", "]"]);
        assert!(matches!(m.elements[0].params[0].value, Cow::Owned(_)));
        assert!(matches!(m.elements[0].params[1].value, Cow::Borrowed(_)));
        assert_eq!(m.msg, "hi");
    }

    #[test]
    fn rfc5424_all_nil_and_framing_leftovers() {
        let m = parse(b"<0>1 - - - - - -\r\n\0").unwrap();
        assert_eq!((m.facility, m.severity, m.timestamp), (0, 0, None));
        assert_eq!(
            (m.hostname, m.app_name, m.procid, m.msgid),
            (None, None, None, None)
        );
        assert_eq!((m.structured_data, &*m.msg), (None, ""));
        // A space and an empty MSG, and a MSG that is only a BOM.
        assert_eq!(parse(b"<191>1 - - - - - - ").unwrap().msg, "");
        assert_eq!(parse(b"<191>1 - - - - - - \xEF\xBB\xBF").unwrap().msg, "");
        // Inner newlines stay.
        assert_eq!(parse(b"<13>1 - - - - - - a\nb\n").unwrap().msg, "a\nb");
    }

    #[test]
    fn rfc5424_msg_that_is_not_utf8_is_replaced() {
        let m = parse(b"<13>1 - - - - - - caf\xE9 \xFF").unwrap();
        assert_eq!(m.msg, "caf\u{FFFD} \u{FFFD}");
    }

    #[test]
    fn refusals_name_the_rule() {
        let cases: &[(&[u8], ParseError)] = &[
            (b"", ParseError::Empty),
            (b"\n\r\0", ParseError::Empty),
            (b"hello", ParseError::Pri),
            (b"<>1 - - - - - -", ParseError::Pri),
            (b"<192>1 - - - - - -", ParseError::Pri),
            (b"<013>1 - - - - - -", ParseError::Pri),
            (b"<1234>1 - - - - - -", ParseError::Pri),
            (b"<13", ParseError::Pri),
            (b"<13>2 - - - - - -", ParseError::Version),
            (b"<13>10 - - - - - -", ParseError::Version),
            (
                b"<13>1",
                ParseError::Bsd {
                    what: "no TIMESTAMP (Mmm dd hh:mm:ss) after PRI",
                },
            ),
            (
                b"<0>1990 Oct 22 10:52:01 TZ-6 scapegoat.dmz.example.org sched[0]: x",
                ParseError::Bsd {
                    what: "no TIMESTAMP (Mmm dd hh:mm:ss) after PRI",
                },
            ),
            (
                b"<13>1 -",
                ParseError::Header {
                    field: "TIMESTAMP",
                    max: 64,
                },
            ),
            (
                b"<13>1 - h\xC3\xA9 - - - -",
                ParseError::Header {
                    field: "HOSTNAME",
                    max: 255,
                },
            ),
            (
                b"<13>1 - h  - - - -",
                ParseError::Header {
                    field: "APP-NAME",
                    max: 48,
                },
            ),
            (
                b"<13>1 - - - - 123456789012345678901234567890123 -",
                ParseError::Header {
                    field: "MSGID",
                    max: 32,
                },
            ),
            (
                b"<13>1 - - - - -",
                ParseError::Header {
                    field: "MSGID",
                    max: 32,
                },
            ),
            (
                b"<13>1 - - - - - ",
                ParseError::StructuredData {
                    what: "it is neither - nor [",
                },
            ),
            (
                b"<13>1 - - - - - -x",
                ParseError::StructuredData {
                    what: "it is not followed by a space or the end",
                },
            ),
            (
                b"<13>1 - - - - - [id a=\"1\"",
                ParseError::StructuredData {
                    what: "an SD-ELEMENT is not closed with ]",
                },
            ),
            (
                b"<13>1 - - - - - [id a=\"1]",
                ParseError::StructuredData {
                    what: "a PARAM-VALUE is not closed with \"",
                },
            ),
            (
                b"<13>1 - - - - - [id a=1]",
                ParseError::StructuredData {
                    what: "a PARAM-NAME is not followed by =\"",
                },
            ),
            (
                b"<13>1 - - - - - [ a=\"1\"]",
                ParseError::StructuredData {
                    what: "an SD-ID is empty or too long",
                },
            ),
            (
                b"<13>1 - - - - - [id a=\"\xFF\"]",
                ParseError::StructuredData {
                    what: "a PARAM-VALUE is not UTF-8",
                },
            ),
            (
                b"<13>hello",
                ParseError::Bsd {
                    what: "no TIMESTAMP (Mmm dd hh:mm:ss) after PRI",
                },
            ),
            (
                b"<13>Feb 30 25:00:00 host x",
                ParseError::Bsd {
                    what: "no TIMESTAMP (Mmm dd hh:mm:ss) after PRI",
                },
            ),
            (
                b"<13>Oct 11 22:14:15  x",
                ParseError::Bsd {
                    what: "the HOSTNAME is not 1 to 255 printable US-ASCII characters",
                },
            ),
        ];
        for (input, want) in cases {
            assert_eq!(
                parse(input),
                Err(*want),
                "{:?}",
                String::from_utf8_lossy(input)
            );
        }
        // The texts never quote the input.
        let e = parse(b"<13>1 - - - - - [secret=\"hunter2\"").unwrap_err();
        assert!(!e.to_string().contains("hunter2"), "{e}");
    }

    /// RFC 3164 section 5.4 examples 1 and 4, section 4.3.2's example, and
    /// what util-linux `logger --rfc3164` sends.
    #[test]
    fn rfc3164_examples() {
        let m =
            parse(b"<34>Oct 11 22:14:15 mymachine su: 'su root' failed for lonvick on /dev/pts/8")
                .unwrap();
        assert_eq!(
            m,
            Message {
                syntax: Syntax::Rfc3164,
                facility: 4,
                severity: 2,
                timestamp: None,
                hostname: Some("mymachine"),
                app_name: Some("su"),
                procid: None,
                msgid: None,
                structured_data: None,
                elements: vec![],
                msg: Cow::Borrowed("'su root' failed for lonvick on /dev/pts/8"),
            }
        );
        let m = parse(b"<13>Feb  5 17:32:18 10.0.0.99 Use the BFG!\n").unwrap();
        assert_eq!(m.hostname, Some("10.0.0.99"));
        // "Use" is followed by neither ':' nor '[': no tag.
        assert_eq!((m.app_name, m.procid), (None, None));
        assert_eq!(m.msg, "Use the BFG!");

        let m = parse(b"<13>Nov 26 18:13:09 vm myapp[31255]: bsd msg").unwrap();
        assert_eq!((m.facility, m.severity), (1, 5));
        assert_eq!(m.hostname, Some("vm"));
        assert_eq!((m.app_name, m.procid), (Some("myapp"), Some("31255")));
        assert_eq!(m.msg, "bsd msg");

        let m = parse(
            b"<0>Oct 22 10:52:12 scapegoat 1990 Oct 22 10:52:01 TZ-6 \
              scapegoat.dmz.example.org 10.1.2.3 sched[0]: That's All Folks!",
        )
        .unwrap();
        assert_eq!((m.hostname, m.app_name), (Some("scapegoat"), None));
        assert!(m.msg.starts_with("1990 Oct 22") && m.msg.ends_with("All Folks!"));

        let m = parse(b"<13>Nov 06 18:13:09 vm sshd[7]x").unwrap();
        assert_eq!(
            (m.app_name, m.procid, &*m.msg),
            (Some("sshd"), Some("7"), "x")
        );
        let m = parse(b"<13>Nov 26 18:13:09 vm").unwrap();
        assert_eq!((m.app_name, &*m.msg), (None, ""));
        let m = parse(b"<13>Nov 26 18:13:09 vm tag[]: x").unwrap();
        assert_eq!((m.app_name, &*m.msg), (None, "tag[]: x"));
    }

    #[test]
    fn never_panics_on_prefixes_of_valid_messages() {
        let lines: [&[u8]; 3] = [
            b"<165>1 2003-10-11T22:14:15.003Z mymachine.example.com evntslog - ID47 \
              [exampleSDID@32473 iut=\"3\" a=\"\\\"\\]\"][x@1] \xEF\xBB\xBFAn entry",
            b"<34>Oct 11 22:14:15 mymachine su[12]: 'su root' failed",
            b"<13>1 - - - - - [id a=\"\xC3\xA9\"] \xC3\xA9",
        ];
        for line in lines {
            for n in 0..=line.len() {
                let _ = parse(&line[..n]);
            }
        }
    }
}
