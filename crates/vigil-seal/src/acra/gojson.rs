//! Just enough of Go's `encoding/json` to rebuild Acra's canonical bytes.
//!
//! Acra parses each JSON audit line with `json.Unmarshal` into a
//! `map[string]interface{}` and re-encodes every value with `json.Marshal`.
//! The bytes it MACs therefore depend on Go's rules, not on the line's text:
//!
//! - every number becomes a `float64` (`strconv.ParseFloat`; out of range is an
//!   error) and is written back in ES6 style: no exponent for
//!   `1e-6 <= |x| < 1e21`, otherwise `1e+21`, `1.5e-7`;
//! - strings are unquoted the Go way: invalid UTF-8 and lone surrogates become
//!   U+FFFD, one replacement per bad byte;
//! - strings are written with HTML escaping (`<`, `>`, `&` as `\u003c`…),
//!   U+2028/U+2029 escaped, control characters as `\n`, `\r`, `\t`, `\b`, `\f`
//!   (Go 1.22 and later; older Go wrote `\u0008` and `\u000c`, which
//!   [`Style::Legacy`] reproduces) or `\u00XX`;
//! - object keys are sorted bytewise and a repeated key keeps its last value;
//! - nesting deeper than 10000 is a syntax error.
//!
//! Parsing and encoding use explicit stacks, so hostile nesting cannot
//! overflow the thread's stack.

use std::collections::BTreeMap;

/// Go's `maxNestingDepth` in `encoding/json/scanner.go`.
const MAX_DEPTH: usize = 10_000;

/// Why a line is not JSON that Go would unmarshal into a map.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) enum JsonError {
    /// The text is not JSON (Go's `SyntaxError`), at this byte offset.
    Syntax(&'static str, usize),
    /// A number does not fit a `float64`.
    NumberRange,
    /// The top-level value is neither an object nor `null`.
    NotObject,
}

impl std::fmt::Display for JsonError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::Syntax(what, at) => write!(f, "invalid JSON: {what} at byte {at}"),
            Self::NumberRange => f.write_str("invalid JSON: number out of float64 range"),
            Self::NotObject => f.write_str("invalid JSON: top-level value is not an object"),
        }
    }
}

/// How to escape `\b` and `\f` in strings.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Style {
    /// Go 1.22 and later: `\b`, `\f`.
    Current,
    /// Go before 1.22: `\u0008`, `\u000c`.
    Legacy,
}

/// One parsed value. Containers refer to their children by index, so the
/// tree drops without recursion.
#[derive(Debug)]
enum Node {
    Null,
    Bool(bool),
    Number(f64),
    String(String),
    Array(Vec<usize>),
    Object(Vec<(String, usize)>),
}

/// A parsed top-level object, as Go's `map[string]interface{}` holds it.
#[derive(Debug)]
pub(super) struct Object {
    nodes: Vec<Node>,
    /// Sorted bytewise; a repeated key keeps its last value.
    members: BTreeMap<String, usize>,
}

impl Object {
    /// Parses a line the way `json.Unmarshal(line, &map[string]interface{})`
    /// does. A top-level `null` leaves the map empty, as in Go.
    pub(super) fn parse(input: &[u8]) -> Result<Self, JsonError> {
        let mut parser = Parser {
            input,
            pos: 0,
            nodes: Vec::new(),
        };
        let root = parser.document()?;
        let members = match std::mem::replace(&mut parser.nodes[root], Node::Null) {
            Node::Null => BTreeMap::new(),
            Node::Object(members) => {
                let mut map = BTreeMap::new();
                for (key, value) in members {
                    map.insert(key, value); // a repeated key keeps its last value
                }
                map
            }
            _ => return Err(JsonError::NotObject),
        };
        Ok(Self {
            nodes: parser.nodes,
            members,
        })
    }

    /// The member's value if it is a JSON string.
    pub(super) fn string(&self, key: &str) -> Option<&str> {
        match self.members.get(key).map(|&id| &self.nodes[id]) {
            Some(Node::String(s)) => Some(s),
            _ => None,
        }
    }

    /// Removes a member, as Go's `delete(map, key)`.
    pub(super) fn remove(&mut self, key: &str) {
        self.members.remove(key);
    }

    /// Acra's canonical bytes: for each key in sorted order,
    /// `"delimiter" key "delimiter" json.Marshal(value) "delimiter"`.
    ///
    /// Also says whether any string holds `\b` or `\f`, the only characters
    /// whose encoding changed between Go versions.
    pub(super) fn canonical(&self, style: Style) -> (Vec<u8>, bool) {
        const DELIMITER: &[u8] = b"delimiter";
        let mut out = Vec::new();
        let mut version_dependent = false;
        for (key, &id) in &self.members {
            out.extend_from_slice(DELIMITER);
            out.extend_from_slice(key.as_bytes());
            out.extend_from_slice(DELIMITER);
            self.marshal(id, style, &mut out, &mut version_dependent);
            out.extend_from_slice(DELIMITER);
        }
        (out, version_dependent)
    }

    /// `json.Marshal` of one value, without recursion.
    fn marshal(&self, id: usize, style: Style, out: &mut Vec<u8>, version_dependent: &mut bool) {
        enum Work<'a> {
            Node(usize),
            Byte(u8),
            Key(&'a str),
        }
        let mut stack = vec![Work::Node(id)];
        while let Some(work) = stack.pop() {
            match work {
                Work::Byte(b) => out.push(b),
                Work::Key(key) => {
                    write_string(out, key, style, version_dependent);
                    out.push(b':');
                }
                Work::Node(id) => match &self.nodes[id] {
                    Node::Null => out.extend_from_slice(b"null"),
                    Node::Bool(true) => out.extend_from_slice(b"true"),
                    Node::Bool(false) => out.extend_from_slice(b"false"),
                    Node::Number(x) => write_float(out, *x),
                    Node::String(s) => write_string(out, s, style, version_dependent),
                    Node::Array(items) => {
                        out.push(b'[');
                        stack.push(Work::Byte(b']'));
                        for (i, &item) in items.iter().enumerate().rev() {
                            stack.push(Work::Node(item));
                            if i > 0 {
                                stack.push(Work::Byte(b','));
                            }
                        }
                    }
                    Node::Object(members) => {
                        let mut sorted = BTreeMap::new();
                        for (key, value) in members {
                            sorted.insert(key.as_str(), *value); // the last duplicate wins
                        }
                        out.push(b'{');
                        stack.push(Work::Byte(b'}'));
                        for (i, (key, &value)) in sorted.iter().enumerate().rev() {
                            stack.push(Work::Node(value));
                            stack.push(Work::Key(key));
                            if i > 0 {
                                stack.push(Work::Byte(b','));
                            }
                        }
                    }
                },
            }
        }
    }
}

/// Writes a `float64` as Go's `encoding/json` does (`floatEncoder`).
pub(super) fn write_float(out: &mut Vec<u8>, x: f64) {
    let abs = x.abs();
    if abs != 0.0 && !(1e-6..1e21).contains(&abs) {
        // Rust's `{:e}` gives the same shortest digits as Go's
        // `AppendFloat(x, 'e', -1, 64)`; Go then writes the exponent with a
        // sign ("e+21") and, after its clean-up, without a leading zero
        // ("e-7").
        let s = format!("{x:e}");
        match s.split_once('e') {
            Some((mantissa, exp)) => {
                out.extend_from_slice(mantissa.as_bytes());
                out.push(b'e');
                if !exp.starts_with('-') {
                    out.push(b'+');
                }
                out.extend_from_slice(exp.as_bytes());
            }
            None => out.extend_from_slice(s.as_bytes()),
        }
    } else {
        // Display never uses an exponent and gives the shortest digits that
        // round-trip, like Go's 'f' format with precision -1.
        out.extend_from_slice(format!("{x}").as_bytes());
    }
}

/// Writes a string as Go's `encodeState.string` with HTML escaping on.
pub(super) fn write_string(out: &mut Vec<u8>, s: &str, style: Style, version_dependent: &mut bool) {
    const HEX: &[u8; 16] = b"0123456789abcdef";
    let bytes = s.as_bytes();
    out.push(b'"');
    let mut start = 0;
    let mut i = 0;
    while i < bytes.len() {
        let b = bytes[i];
        let escape: Option<&[u8]> = match b {
            b'"' => Some(b"\\\""),
            b'\\' => Some(b"\\\\"),
            b'\n' => Some(b"\\n"),
            b'\r' => Some(b"\\r"),
            b'\t' => Some(b"\\t"),
            0x08 | 0x0c => {
                *version_dependent = true;
                match (style, b) {
                    (Style::Current, 0x08) => Some(b"\\b"),
                    (Style::Current, _) => Some(b"\\f"),
                    (Style::Legacy, _) => None,
                }
            }
            _ => None,
        };
        let needs_u = escape.is_none() && (b < 0x20 || b == b'<' || b == b'>' || b == b'&');
        // U+2028 and U+2029 are E2 80 A8 and E2 80 A9 in UTF-8.
        let line_sep = b == 0xe2
            && bytes.get(i + 1) == Some(&0x80)
            && matches!(bytes.get(i + 2), Some(0xa8 | 0xa9));
        if escape.is_none() && !needs_u && !line_sep {
            i += 1;
            continue;
        }
        out.extend_from_slice(&bytes[start..i]);
        if let Some(escape) = escape {
            out.extend_from_slice(escape);
            i += 1;
        } else if needs_u {
            out.extend_from_slice(b"\\u00");
            out.push(HEX[usize::from(b >> 4)]);
            out.push(HEX[usize::from(b & 0xf)]);
            i += 1;
        } else {
            let last = bytes[i + 2];
            out.extend_from_slice(b"\\u202");
            out.push(HEX[usize::from(last & 0xf)]);
            i += 3;
        }
        start = i;
    }
    out.extend_from_slice(&bytes[start..]);
    out.push(b'"');
}

/// An open container while parsing.
struct Frame {
    node: usize,
    /// The key whose value is being parsed, for objects.
    key: Option<String>,
}

struct Parser<'a> {
    input: &'a [u8],
    pos: usize,
    nodes: Vec<Node>,
}

impl Parser<'_> {
    fn err<T>(&self, what: &'static str) -> Result<T, JsonError> {
        Err(JsonError::Syntax(what, self.pos))
    }

    fn peek(&self) -> Option<u8> {
        self.input.get(self.pos).copied()
    }

    fn skip_ws(&mut self) {
        while let Some(b' ' | b'\t' | b'\n' | b'\r') = self.peek() {
            self.pos += 1;
        }
    }

    fn push(&mut self, node: Node) -> usize {
        self.nodes.push(node);
        self.nodes.len() - 1
    }

    /// Parses one whole JSON text and returns its root node.
    fn document(&mut self) -> Result<usize, JsonError> {
        let mut stack: Vec<Frame> = Vec::new();
        'value: loop {
            self.skip_ws();
            let mut done = match self.peek() {
                None => return self.err("unexpected end of JSON input"),
                Some(open @ (b'{' | b'[')) => {
                    if stack.len() >= MAX_DEPTH {
                        return self.err("exceeded max depth");
                    }
                    self.pos += 1;
                    self.skip_ws();
                    if open == b'{' {
                        let node = self.push(Node::Object(Vec::new()));
                        if self.peek() == Some(b'}') {
                            self.pos += 1;
                            node
                        } else {
                            let key = self.member_key()?;
                            stack.push(Frame {
                                node,
                                key: Some(key),
                            });
                            continue 'value;
                        }
                    } else {
                        let node = self.push(Node::Array(Vec::new()));
                        if self.peek() == Some(b']') {
                            self.pos += 1;
                            node
                        } else {
                            stack.push(Frame { node, key: None });
                            continue 'value;
                        }
                    }
                }
                Some(b'"') => {
                    let s = self.string()?;
                    self.push(Node::String(s))
                }
                Some(b't') => self.literal(b"true", Node::Bool(true))?,
                Some(b'f') => self.literal(b"false", Node::Bool(false))?,
                Some(b'n') => self.literal(b"null", Node::Null)?,
                Some(b'-' | b'0'..=b'9') => {
                    let x = self.number()?;
                    self.push(Node::Number(x))
                }
                Some(_) => return self.err("invalid character looking for beginning of value"),
            };
            // `done` is a complete value: attach it, closing containers.
            loop {
                let Some(frame) = stack.last_mut() else {
                    self.skip_ws();
                    if self.pos != self.input.len() {
                        return self.err("invalid character after top-level value");
                    }
                    return Ok(done);
                };
                let is_object = frame.key.is_some();
                match (&mut self.nodes[frame.node], frame.key.take()) {
                    (Node::Object(members), Some(key)) => members.push((key, done)),
                    (Node::Array(items), None) => items.push(done),
                    _ => return self.err("internal parser state"),
                }
                self.skip_ws();
                match (self.peek(), is_object) {
                    (Some(b','), _) => {
                        self.pos += 1;
                        if is_object {
                            self.skip_ws();
                            let key = self.member_key()?;
                            if let Some(frame) = stack.last_mut() {
                                frame.key = Some(key);
                            }
                        }
                        continue 'value;
                    }
                    (Some(b'}'), true) | (Some(b']'), false) => {
                        self.pos += 1;
                        done = frame_node(&mut stack);
                    }
                    (None, _) => return self.err("unexpected end of JSON input"),
                    _ => return self.err("invalid character after value"),
                }
            }
        }
    }

    /// `"key"` then `:`, positioned at the key's opening quote.
    fn member_key(&mut self) -> Result<String, JsonError> {
        if self.peek() != Some(b'"') {
            return self.err("invalid character looking for beginning of object key string");
        }
        let key = self.string()?;
        self.skip_ws();
        if self.peek() != Some(b':') {
            return self.err("invalid character after object key");
        }
        self.pos += 1;
        Ok(key)
    }

    fn literal(&mut self, text: &'static [u8], node: Node) -> Result<usize, JsonError> {
        if self.input.get(self.pos..self.pos + text.len()) != Some(text) {
            return self.err("invalid literal");
        }
        self.pos += text.len();
        Ok(self.push(node))
    }

    fn digits(&mut self) -> usize {
        let start = self.pos;
        while let Some(b'0'..=b'9') = self.peek() {
            self.pos += 1;
        }
        self.pos - start
    }

    fn number(&mut self) -> Result<f64, JsonError> {
        let start = self.pos;
        if self.peek() == Some(b'-') {
            self.pos += 1;
        }
        match self.peek() {
            Some(b'0') => self.pos += 1,
            Some(b'1'..=b'9') => {
                self.digits();
            }
            _ => return self.err("invalid character in numeric literal"),
        }
        if self.peek() == Some(b'.') {
            self.pos += 1;
            if self.digits() == 0 {
                return self.err("invalid character after decimal point in numeric literal");
            }
        }
        if let Some(b'e' | b'E') = self.peek() {
            self.pos += 1;
            if let Some(b'+' | b'-') = self.peek() {
                self.pos += 1;
            }
            if self.digits() == 0 {
                return self.err("invalid character in exponent of numeric literal");
            }
        }
        let text = std::str::from_utf8(&self.input[start..self.pos])
            .map_err(|_| JsonError::Syntax("invalid number", start))?;
        // Rust's parser rounds correctly, like strconv.ParseFloat; overflow
        // gives infinity where Go reports ErrRange, and underflow gives zero in
        // both.
        match text.parse::<f64>() {
            Ok(x) if x.is_finite() => Ok(x),
            _ => Err(JsonError::NumberRange),
        }
    }

    /// A string literal, unquoted as Go's `unquoteBytes` does.
    fn string(&mut self) -> Result<String, JsonError> {
        self.pos += 1; // opening quote
        let mut out = String::new();
        loop {
            let Some(b) = self.peek() else {
                return self.err("unexpected end of JSON input");
            };
            match b {
                b'"' => {
                    self.pos += 1;
                    return Ok(out);
                }
                b'\\' => {
                    let Some(&esc) = self.input.get(self.pos + 1) else {
                        return self.err("unexpected end of JSON input");
                    };
                    let simple = match esc {
                        b'"' => Some('"'),
                        b'\\' => Some('\\'),
                        b'/' => Some('/'),
                        b'b' => Some('\u{8}'),
                        b'f' => Some('\u{c}'),
                        b'n' => Some('\n'),
                        b'r' => Some('\r'),
                        b't' => Some('\t'),
                        b'u' => None,
                        _ => return self.err("invalid character in string escape code"),
                    };
                    if let Some(c) = simple {
                        out.push(c);
                        self.pos += 2;
                        continue;
                    }
                    let Some(first) = hex4(self.input, self.pos) else {
                        return self.err("invalid character in \\u hexadecimal character escape");
                    };
                    self.pos += 6;
                    if (0xd800..0xe000).contains(&first) {
                        // A high surrogate followed by a low one is a pair;
                        // anything else is U+FFFD and the next escape is left
                        // for the next round.
                        if let Some(second) = hex4(self.input, self.pos)
                            && (0xd800..0xdc00).contains(&first)
                            && (0xdc00..0xe000).contains(&second)
                        {
                            let c = 0x10000 + ((first - 0xd800) << 10) + (second - 0xdc00);
                            out.push(char::from_u32(c).unwrap_or(char::REPLACEMENT_CHARACTER));
                            self.pos += 6;
                        } else {
                            out.push(char::REPLACEMENT_CHARACTER);
                        }
                    } else {
                        out.push(char::from_u32(first).unwrap_or(char::REPLACEMENT_CHARACTER));
                    }
                }
                0..0x20 => return self.err("invalid character in string literal"),
                0x20..0x80 => {
                    out.push(char::from(b));
                    self.pos += 1;
                }
                _ => {
                    // Go's utf8.DecodeRune: a valid sequence is kept, any
                    // other byte becomes one U+FFFD.
                    let width = match b {
                        0xc2..=0xdf => 2,
                        0xe0..=0xef => 3,
                        0xf0..=0xf4 => 4,
                        _ => 0,
                    };
                    let valid = self
                        .input
                        .get(self.pos..self.pos + width)
                        .filter(|_| width > 0)
                        .and_then(|seq| std::str::from_utf8(seq).ok());
                    match valid {
                        Some(s) => {
                            out.push_str(s);
                            self.pos += width;
                        }
                        None => {
                            out.push(char::REPLACEMENT_CHARACTER);
                            self.pos += 1;
                        }
                    }
                }
            }
        }
    }
}

/// Pops the innermost frame and returns its node.
fn frame_node(stack: &mut Vec<Frame>) -> usize {
    // Invariant: only called right after `stack.last_mut()` returned a frame.
    stack.pop().map_or(0, |frame| frame.node)
}

/// The code unit of a `\uXXXX` escape starting at `at`, if there is one.
fn hex4(input: &[u8], at: usize) -> Option<u32> {
    let esc = input.get(at..at + 6)?;
    if esc[0] != b'\\' || esc[1] != b'u' {
        return None;
    }
    esc[2..].iter().try_fold(0u32, |acc, &b| {
        let digit = char::from(b).to_digit(16)?;
        Some((acc << 4) | digit)
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn canon(line: &str) -> String {
        let object = Object::parse(line.as_bytes()).expect("parses");
        String::from_utf8(object.canonical(Style::Current).0).expect("utf-8")
    }

    fn float(x: f64) -> String {
        let mut out = Vec::new();
        write_float(&mut out, x);
        String::from_utf8(out).expect("ascii")
    }

    #[test]
    fn floats_match_go() {
        // Outputs of Go's json.Marshal(float64).
        let cases = [
            (0.0, "0"),
            (-0.0, "-0"),
            (1.0, "1"),
            (563.0, "563"),
            (1625157077.908, "1625157077.908"),
            (1625157077.0, "1625157077"),
            (0.1, "0.1"),
            (1e-6, "0.000001"),
            (1.5e-7, "1.5e-7"),
            (1e-7, "1e-7"),
            (1.2e-10, "1.2e-10"),
            (1e20, "100000000000000000000"),
            (1e21, "1e+21"),
            (123456789e15, "1.23456789e+23"),
            (1.7976931348623157e308, "1.7976931348623157e+308"),
            (5e-324, "5e-324"),
            (-2.5e-300, "-2.5e-300"),
            (12345678901234567890.0, "12345678901234567000"),
        ];
        for (x, want) in cases {
            assert_eq!(float(x), want, "{x:e}");
        }
    }

    #[test]
    fn strings_match_go() {
        assert_eq!(
            canon(r#"{"a":"<b>&amp;"}"#),
            r#"delimiteradelimiter"\u003cb\u003e\u0026amp;"delimiter"#
        );
        assert_eq!(
            canon(r#"{"a":"\u003c\/x\u00e9"}"#),
            "delimiteradelimiter\"\\u003c/xé\"delimiter"
        );
        assert_eq!(
            canon(r#"{"a":"\b\f\n\r\t\u0001\u001f\u007f"}"#),
            "delimiteradelimiter\"\\b\\f\\n\\r\\t\\u0001\\u001f\u{7f}\"delimiter"
        );
        assert_eq!(
            canon("{\"a\":\"\u{2028}\u{2029}\u{2027}\"}"),
            "delimiteradelimiter\"\\u2028\\u2029\u{2027}\"delimiter"
        );
        let object = Object::parse(br#"{"a":"\b\f"}"#).expect("parses");
        let (legacy, dependent) = object.canonical(Style::Legacy);
        assert!(dependent);
        assert_eq!(legacy, br#"delimiteradelimiter"\u0008\u000c"delimiter"#);
    }

    #[test]
    fn bad_utf8_and_surrogates_become_replacement_chars() {
        // Go replaces each invalid byte on its own.
        let object = Object::parse(b"{\"a\":\"x\xe2\x82y\xff\"}").expect("parses");
        assert_eq!(object.string("a"), Some("x\u{fffd}\u{fffd}y\u{fffd}"));
        // Surrogate-encoded UTF-8 is invalid in Go too.
        let object = Object::parse(b"{\"a\":\"\xed\xa0\x80\"}").expect("parses");
        assert_eq!(object.string("a"), Some("\u{fffd}\u{fffd}\u{fffd}"));
        let object = Object::parse(br#"{"a":"\ud83d\ude00 \ud800\u0041 \udc00"}"#).expect("parses");
        assert_eq!(object.string("a"), Some("\u{1f600} \u{fffd}A \u{fffd}"));
    }

    #[test]
    fn objects_sort_and_keep_the_last_duplicate() {
        assert_eq!(
            canon(r#" {"b": [1.0, 1e2, {"z":null,"a":true,"z":false}], "a": -0, "b2":{}} "#),
            "delimiteradelimiter-0delimiter\
             delimiterbdelimiter[1,100,{\"a\":true,\"z\":false}]delimiter\
             delimiterb2delimiter{}delimiter"
        );
        assert_eq!(
            canon(r#"{"k":1,"k":"x"}"#),
            "delimiterkdelimiter\"x\"delimiter"
        );
        assert_eq!(canon("null"), "");
        assert_eq!(canon("{}"), "");
    }

    #[test]
    fn rejects_what_go_rejects() {
        for bad in [
            "",
            " ",
            "{",
            "{]",
            "[1]",
            "\"s\"",
            "1",
            "true",
            r#"{"a":01}"#,
            r#"{"a":1.}"#,
            r#"{"a":.5}"#,
            r#"{"a":1e}"#,
            r#"{"a":+1}"#,
            r#"{"a":"\x"}"#,
            r#"{"a":"\u12"}"#,
            "{\"a\":\"\t\"}",
            r#"{"a":1,}"#,
            r#"{"a":1} x"#,
            r#"{"a":tru}"#,
            r#"{a:1}"#,
            r#"{"a":1e400}"#,
            r#"{"a":[1,]}"#,
            r#"{"a" 1}"#,
            r#"{"a":'x'}"#,
            r#"{"a":"\'"}"#,
        ] {
            assert!(Object::parse(bad.as_bytes()).is_err(), "{bad:?}");
        }
        // Underflow is zero, not an error, as in strconv.ParseFloat.
        assert_eq!(canon(r#"{"a":1e-400}"#), "delimiteradelimiter0delimiter");
    }

    #[test]
    fn nesting_limit_matches_go_without_overflowing_the_stack() {
        let ok = format!(
            "{{\"a\":{}{}}}",
            "[".repeat(MAX_DEPTH - 1),
            "]".repeat(MAX_DEPTH - 1)
        );
        let object = Object::parse(ok.as_bytes()).expect("depth 10000 parses");
        assert_eq!(
            object.canonical(Style::Current).0.len(),
            2 * (MAX_DEPTH - 1) + 28
        );
        let deep = format!(
            "{{\"a\":{}{}}}",
            "[".repeat(MAX_DEPTH),
            "]".repeat(MAX_DEPTH)
        );
        assert!(Object::parse(deep.as_bytes()).is_err());
    }
}
