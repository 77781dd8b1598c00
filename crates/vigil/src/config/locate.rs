//! From byte offsets to key paths and back, over the spanned tree that
//! `toml` parses a document into.
//!
//! Every error toml reports carries a byte span; every validation error
//! carries a key path. The [`Document`] turns either into the
//! `line` and `key path` of a [`ConfigError`](super::ConfigError).

use std::ops::Range;

use serde::Deserialize;
use toml::Spanned;
use toml::de::{DeTable, DeValue};

use super::error::{KeyPath, Seg};

/// A parsed document: its text and its spanned tree.
#[derive(Debug)]
pub(super) struct Document<'i> {
    text: &'i str,
    tree: Spanned<DeTable<'i>>,
}

/// A located problem: 1-based line, key path if one is known, message.
#[derive(Debug)]
pub(super) struct Located {
    pub(super) line: usize,
    pub(super) key: Option<String>,
    pub(super) message: String,
}

impl<'i> Document<'i> {
    /// Parses `text`; a syntax error is located in whatever could be parsed
    /// around it.
    pub(super) fn parse(text: &'i str) -> Result<Document<'i>, Located> {
        let (tree, errors) = DeTable::parse_recoverable(text);
        let doc = Document { text, tree };
        match errors
            .into_iter()
            .min_by_key(|e| e.span().map_or(usize::MAX, |s| s.start))
        {
            None => Ok(doc),
            Some(e) => {
                let offset = e.span().map_or(0, |s| s.start);
                let path = doc.path_at(offset);
                let line = doc.line_at(offset);
                let message = match bracket_hint(text, line) {
                    Some(hint) if e.message().starts_with("duplicate key") => hint,
                    _ => syntax_message(e.message()),
                };
                Err(Located {
                    line,
                    key: path.render(),
                    message,
                })
            }
        }
    }

    /// Parses as much of `text` as can be parsed, ignoring errors.
    pub(super) fn lenient(text: &'i str) -> Document<'i> {
        Document {
            text,
            tree: DeTable::parse_recoverable(text).0,
        }
    }

    /// The key path at byte `offset`, rendered; see [`Document::path_at`].
    pub(super) fn key_at(&self, offset: usize) -> Option<String> {
        self.path_at(offset).render()
    }

    /// Deserializes the document; a type error or unknown key is located at
    /// the span toml gives it.
    pub(super) fn deserialize<T: Deserialize<'i>>(&self) -> Result<T, Located> {
        let de = toml::de::Deserializer::from(self.tree.clone());
        T::deserialize(de).map_err(|e| {
            // toml gives every error a span; without one, blame the document.
            let (line, path) = match e.span() {
                Some(span) => (self.line_at(span.start), self.path_at(span.start)),
                None => (1, KeyPath::root()),
            };
            Located {
                line,
                message: schema_message(e.message(), &path),
                key: path.render(),
            }
        })
    }

    /// Locates a validation error by its key path: the line of the key, or,
    /// for a missing key, of the table that lacks it.
    pub(super) fn locate(&self, path: &KeyPath, message: String) -> Located {
        let offset = self.offset_of(path).unwrap_or(0);
        Located {
            line: self.line_at(offset),
            key: path.render(),
            message,
        }
    }

    /// The 1-based line holding byte `offset`. An offset at the very end of
    /// a file that ends with a newline counts as the last line.
    pub(super) fn line_at(&self, offset: usize) -> usize {
        line_at(self.text, offset)
    }

    /// The deepest key or array element whose span holds `offset`. Failing
    /// that: on a table header line, the table it names; elsewhere, the
    /// table header above the offset followed by the key written at the
    /// start of the offset's line, if any.
    fn path_at(&self, offset: usize) -> KeyPath {
        let mut path = KeyPath::root();
        if find_in_table(self.tree.get_ref(), offset, &mut path) {
            return path;
        }
        let offset = offset.min(self.text.len());
        let line_start = self.text.as_bytes()[..offset]
            .iter()
            .rposition(|&b| b == b'\n')
            .map_or(0, |i| i + 1);
        // Invariant: `line_start` is 0 or follows a '\n', so it is a char boundary.
        let line = self.text.get(line_start..).unwrap_or_default();
        let line = line.split('\n').next().unwrap_or_default();
        if let Some(path) = self.header_path(line, line_start) {
            return path;
        }
        let mut best: Option<(usize, KeyPath)> = None;
        headers(
            self.text,
            self.tree.get_ref(),
            &mut KeyPath::root(),
            &mut |start, p| {
                let better = match &best {
                    None => true,
                    Some((s, bp)) => start > *s || (start == *s && p.0.len() > bp.0.len()),
                };
                if start <= offset && better {
                    best = Some((start, p.clone()));
                }
            },
        );
        let mut path = best.map(|(_, p)| p).unwrap_or_default();
        if let Some((keys, rest)) = dotted_key(line)
            && (rest.is_empty() || rest.starts_with(['=', '#']))
        {
            path.0.extend(keys.into_iter().map(Seg::Key));
        }
        path
    }

    /// The path of the table a header line such as `[a.b]` or `[[sinks]]`
    /// opens, even a malformed one; for an array of tables, the index is
    /// that of the element this header adds.
    fn header_path(&self, line: &str, line_start: usize) -> Option<KeyPath> {
        let trimmed = line.trim_start();
        let (array, inner) = match trimmed.strip_prefix("[[") {
            Some(inner) => (true, inner),
            None => (false, trimmed.strip_prefix('[')?),
        };
        let (keys, _) = dotted_key(inner)?;
        let mut path = KeyPath(keys.into_iter().map(Seg::Key).collect());
        let is_table = self.value_at(&path).is_some_and(|v| v.get_ref().is_table());
        if array && !is_table {
            let header_start = line_start + (line.len() - trimmed.len());
            let mut value = None;
            let mut table = Some(self.tree.get_ref());
            for seg in &path.0 {
                let Seg::Key(k) = seg else { break };
                value = table
                    .and_then(|t| t.iter().find(|(key, _)| key.get_ref() == k))
                    .map(|e| e.1);
                table = value.and_then(|v| match v.get_ref() {
                    DeValue::Table(t) => Some(t),
                    DeValue::Array(a) => a.iter().last().and_then(|e| e.get_ref().as_table()),
                    _ => None,
                });
            }
            let before = value.and_then(|v| v.get_ref().as_array()).map_or(0, |a| {
                a.iter().filter(|e| e.span().start < header_start).count()
            });
            path.0.push(Seg::Index(before));
        }
        Some(path)
    }

    /// The value at a path of keys.
    fn value_at(&self, path: &KeyPath) -> Option<&Spanned<DeValue<'i>>> {
        let mut table = Some(self.tree.get_ref());
        let mut value = None;
        for seg in &path.0 {
            let Seg::Key(k) = seg else { return None };
            value = table?
                .iter()
                .find(|(key, _)| key.get_ref() == k)
                .map(|e| e.1);
            table = value.and_then(|v| v.get_ref().as_table());
        }
        value
    }

    /// The start of the deepest existing node along `path`.
    fn offset_of(&self, path: &KeyPath) -> Option<usize> {
        let mut table = Some(self.tree.get_ref());
        let mut value: Option<&Spanned<DeValue<'_>>> = None;
        let mut found = None;
        for seg in &path.0 {
            match seg {
                Seg::Key(k) => {
                    let Some((key, v)) =
                        table.and_then(|t| t.iter().find(|(key, _)| key.get_ref() == k))
                    else {
                        break;
                    };
                    found = Some(key.span().start.min(v.span().start));
                    value = Some(v);
                }
                Seg::Index(i) => {
                    let Some(e) = value
                        .and_then(|v| v.get_ref().as_array())
                        .and_then(|a| a.get(*i))
                    else {
                        break;
                    };
                    found = Some(e.span().start);
                    value = Some(e);
                }
            }
            table = value.and_then(|v| v.get_ref().as_table());
        }
        found
    }
}

/// The 1-based line holding byte `offset` of `text`.
pub(super) fn line_at(text: &str, offset: usize) -> usize {
    let bytes = text.as_bytes();
    let mut offset = offset.min(bytes.len());
    if offset == bytes.len() && offset > 0 && bytes[offset - 1] == b'\n' {
        offset -= 1;
    }
    bytes[..offset].iter().filter(|&&b| b == b'\n').count() + 1
}

/// True when `offset` is in `span`, counting its end (an empty span marks a
/// point, e.g. where a value is missing).
fn holds(span: &Range<usize>, offset: usize) -> bool {
    span.start <= offset && offset <= span.end
}

fn find_in_table(table: &DeTable<'_>, offset: usize, path: &mut KeyPath) -> bool {
    for (key, value) in table.iter() {
        path.0.push(Seg::Key(key.get_ref().to_string()));
        if find_in_value(value, offset, path)
            || holds(&key.span(), offset)
            || holds(&value.span(), offset)
        {
            return true;
        }
        path.0.pop();
    }
    false
}

/// Searches the children of `value` (a header table's children lie outside
/// its span, so every child is tried).
fn find_in_value(value: &Spanned<DeValue<'_>>, offset: usize, path: &mut KeyPath) -> bool {
    match value.get_ref() {
        DeValue::Table(t) => find_in_table(t, offset, path),
        DeValue::Array(a) => {
            for (i, e) in a.iter().enumerate() {
                path.0.push(Seg::Index(i));
                if find_in_value(e, offset, path) || holds(&e.span(), offset) {
                    return true;
                }
                path.0.pop();
            }
            false
        }
        _ => false,
    }
}

/// Calls `f(start, path)` for every table opened by a `[header]` or
/// `[[header]]`.
fn headers(
    text: &str,
    table: &DeTable<'_>,
    path: &mut KeyPath,
    f: &mut dyn FnMut(usize, &KeyPath),
) {
    for (key, value) in table.iter() {
        path.0.push(Seg::Key(key.get_ref().to_string()));
        header_value(text, value, path, f);
        path.0.pop();
    }
}

fn header_value(
    text: &str,
    value: &Spanned<DeValue<'_>>,
    path: &mut KeyPath,
    f: &mut dyn FnMut(usize, &KeyPath),
) {
    match value.get_ref() {
        DeValue::Table(t) => {
            let span = value.span();
            let is_header = text
                .get(span.clone())
                .is_some_and(|h| h.len() >= 2 && h.starts_with('[') && h.ends_with(']'));
            if is_header {
                f(span.start, path);
            }
            headers(text, t, path, f);
        }
        DeValue::Array(a) => {
            for (i, e) in a.iter().enumerate() {
                path.0.push(Seg::Index(i));
                header_value(text, e, path, f);
                path.0.pop();
            }
        }
        _ => {}
    }
}

/// The dotted key at the start of `s` (`a`, `a.b`, `"a b".c`) and the text
/// after it, spaces trimmed.
fn dotted_key(s: &str) -> Option<(Vec<String>, &str)> {
    let mut rest = s.trim_start();
    let mut keys = Vec::new();
    loop {
        let (key, after) = if let Some(r) = rest.strip_prefix('"') {
            let end = r.find('"')?;
            (r.get(..end)?, r.get(end + 1..)?)
        } else if let Some(r) = rest.strip_prefix('\'') {
            let end = r.find('\'')?;
            (r.get(..end)?, r.get(end + 1..)?)
        } else {
            let end = rest
                .find(|c: char| !(c.is_ascii_alphanumeric() || c == '_' || c == '-'))
                .unwrap_or(rest.len());
            if end == 0 {
                return None;
            }
            (rest.get(..end)?, rest.get(end..)?)
        };
        keys.push(key.to_owned());
        let after = after.trim_start();
        match after.strip_prefix('.') {
            Some(r) => rest = r.trim_start(),
            None => return Some((keys, after)),
        }
    }
}

/// Every table header in `text`: 1-based line, whether it is `[[…]]`, keys.
fn header_lines(text: &str) -> impl Iterator<Item = (usize, bool, Vec<String>)> + '_ {
    text.split('\n').enumerate().filter_map(|(i, line)| {
        let line = line.trim_start();
        let (array, inner) = match line.strip_prefix("[[") {
            Some(inner) => (true, inner),
            None => (false, line.strip_prefix('[')?),
        };
        let (keys, rest) = dotted_key(inner)?;
        rest.starts_with(']').then_some((i + 1, array, keys))
    })
}

/// For a duplicate key on a header line: the message when one table is
/// opened both as `[x]` and as `[[x]]`.
fn bracket_hint(text: &str, line: usize) -> Option<String> {
    let (_, array, keys) = header_lines(text).find(|(l, _, _)| *l == line)?;
    let (other, _, _) =
        header_lines(text).find(|(l, a, k)| *l != line && *a != array && *k == keys)?;
    let name = KeyPath(keys.into_iter().map(Seg::Key).collect());
    let (one, two) = if array { (other, line) } else { (line, other) };
    Some(format!(
        "opened as [{name}] on line {one} and as [[{name}]] on line {two}; \
         write [[{name}]], with two brackets, above each element"
    ))
}

/// toml's description of a syntax error, with a hint where one helps.
fn syntax_message(message: &str) -> String {
    let m = message.trim();
    if m.starts_with("duplicate key") {
        format!("{m}; each key may appear once per table")
    } else if m.starts_with("invalid basic string") || m.starts_with("invalid literal string") {
        format!("{m}; close the string on the same line")
    } else {
        format!("invalid TOML: {m}")
    }
}

/// serde's description of a type error, said in TOML's words.
fn schema_message(message: &str, path: &KeyPath) -> String {
    let m = message.trim();
    if let Some(rest) = m.strip_prefix("unknown field `") {
        let expected = rest
            .split_once("`, ")
            .map_or("", |(_, e)| e)
            .replace('`', "");
        return if expected.is_empty() || expected.starts_with("there are no fields") {
            "unknown key; remove it".to_owned()
        } else {
            format!("unknown key; {expected}")
        };
    }
    if let Some(field) = m.strip_prefix("missing field `") {
        let field = field.trim_end_matches('`');
        return format!("missing key `{field}`; add it");
    }
    let m = m
        .replace(" as i128", "")
        .replace("expected i64", "expected an integer")
        .replace("invalid type: map", "invalid type: table")
        .replace("invalid type: sequence", "invalid type: list")
        .replace("expected a sequence", "expected a list like [\"a\", \"b\"]")
        .replace("expected a map", "expected a table")
        .replace("expected struct ", "expected a table ");
    let is_sinks = path.0.len() == 1 && path.0[0] == Seg::Key("sinks".into());
    if is_sinks && m.contains("invalid type: table") {
        return "a table, not a list of tables; write [[sinks]], with two brackets, above \
                each sink"
            .to_owned();
    }
    m
}

#[cfg(test)]
mod tests {
    use super::*;

    fn at(text: &str, needle: &str) -> (usize, String) {
        let doc = Document::parse(text).unwrap();
        let offset = text.find(needle).unwrap();
        (doc.line_at(offset), doc.path_at(offset).to_string())
    }

    #[test]
    fn offsets_map_to_the_deepest_key() {
        let text = "[service]\norigin = \"x\"\n\n[[sinks]]\ntype = \"stdout\"\n\
                    include = [\n  \"a\",\n  1100,\n]\n[[sinks]]\nsyslog = { facility = 3 }\n";
        assert_eq!(at(text, "origin"), (2, "service.origin".into()));
        assert_eq!(at(text, "\"x\""), (2, "service.origin".into()));
        assert_eq!(at(text, "1100"), (8, "sinks[0].include[1]".into()));
        assert_eq!(at(text, "[[sinks]]\nsyslog"), (10, "sinks[1]".into()));
        assert_eq!(at(text, "3 }"), (11, "sinks[1].syslog.facility".into()));
    }

    #[test]
    fn paths_map_back_to_lines() {
        let text = "[[sinks]]\ntype = \"stdout\"\n[[sinks]]\n\ntype = \"file\"\n";
        let doc = Document::parse(text).unwrap();
        let line = |p: &KeyPath| doc.locate(p, String::new()).line;
        let sinks = KeyPath::root().key("sinks");
        assert_eq!(line(&sinks.index(1).key("type")), 5);
        assert_eq!(
            line(&sinks.index(1).key("path")),
            3,
            "missing key: its table"
        );
        assert_eq!(line(&sinks.index(0)), 1);
    }

    #[test]
    fn dotted_keys() {
        let keys = |s| dotted_key(s).map(|(k, rest)| (k.join("/"), rest.to_owned()));
        assert_eq!(
            keys("  a.\"b c\" . d = 1"),
            Some(("a/b c/d".into(), "= 1".into()))
        );
        assert_eq!(keys("a b = 1"), Some(("a".into(), "b = 1".into())));
        assert_eq!(keys("[x]"), None);
    }

    #[test]
    fn broken_headers_name_their_table() {
        let doc = Document::lenient("[[sinks]]\ntype = \"stdout\"\n[[sinks]\ntype = \"file\"\n");
        assert_eq!(doc.key_at(30).as_deref(), Some("sinks[1]"));
        let doc = Document::lenient("[service\norigin = \"x\"\n");
        assert_eq!(doc.key_at(3).as_deref(), Some("service"));
    }

    #[test]
    fn lines() {
        assert_eq!(line_at("a\nb\n", 4), 2);
        assert_eq!(line_at("a\nb", 3), 2);
        assert_eq!(line_at("", 0), 1);
        assert_eq!(line_at("a\n", 99), 1);
    }
}
