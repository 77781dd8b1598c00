//! The statement fingerprint: 64-bit FNV-1a over the normalized token
//! stream. The exact bytes are specified in the crate documentation
//! ("Fingerprint"); changing them changes every fingerprint vigil has ever
//! logged, so the tests pin known values. The redactor feeds the stream
//! token by token (`redact.rs`); it is never stored.

use crate::items::Item;
use crate::lexer::TokenKind;

const OFFSET_BASIS: u64 = 0xcbf2_9ce4_8422_2325;
const PRIME: u64 = 0x0000_0100_0000_01b3;

/// Each token in the stream ends with a byte that says what it was. These
/// bytes never occur in UTF-8, so token boundaries are unambiguous.
const END_NAME: u8 = 0xff;
const END_SYMBOL: u8 = 0xfe;
const PLACEHOLDER: u8 = 0xfd;

/// ASCII lower case, by table: one load per byte.
static LOWER: [u8; 256] = {
    let mut t = [0u8; 256];
    let mut i = 0;
    while i < 256 {
        t[i] = (i as u8).to_ascii_lowercase();
        i += 1;
    }
    t
};

/// 64-bit FNV-1a (Fowler, Noll, Vo) of a statement's normalized token
/// stream, fed token by token.
#[derive(Clone, Copy, Debug)]
pub(crate) struct Stream(u64);

impl Stream {
    pub(crate) fn new() -> Self {
        Self(OFFSET_BASIS)
    }

    #[inline(always)]
    fn byte(&mut self, b: u8) {
        self.0 = (self.0 ^ u64::from(b)).wrapping_mul(PRIME);
    }

    #[inline]
    fn bytes(&mut self, bytes: &[u8]) {
        for &b in bytes {
            self.byte(b);
        }
    }

    /// An identifier or keyword: its name.
    pub(crate) fn name(&mut self, name: &[u8]) {
        self.bytes(name);
        self.byte(END_NAME);
    }

    /// An unquoted identifier or keyword: its name, ASCII-lower-cased.
    pub(crate) fn name_lower(&mut self, name: &[u8]) {
        for &b in name {
            self.byte(LOWER[usize::from(b)]);
        }
        self.byte(END_NAME);
    }

    /// Any other token: its text.
    pub(crate) fn symbol(&mut self, text: &[u8]) {
        self.bytes(text);
        self.byte(END_SYMBOL);
    }

    /// A literal or a parameter.
    pub(crate) fn placeholder(&mut self) {
        self.byte(PLACEHOLDER);
    }

    pub(crate) fn finish(self) -> u64 {
        self.0
    }
}

/// The fingerprint of a whole query string from its statements'.
pub(crate) fn combine(fingerprints: impl ExactSizeIterator<Item = u64>) -> u64 {
    let mut fingerprints = fingerprints;
    if fingerprints.len() == 1 {
        return fingerprints.next().unwrap_or(OFFSET_BASIS);
    }
    let mut h = Stream::new();
    for f in fingerprints {
        h.bytes(&f.to_le_bytes());
    }
    h.finish()
}

/// `open P (, P)* close` at `i`, P a placeholder: the index past `close`.
pub(crate) fn placeholder_list(items: &[Item], i: usize, open: u8, close: u8) -> Option<usize> {
    if items.get(i)?.sym != open {
        return None;
    }
    let mut j = i + 1;
    loop {
        if !items.get(j)?.is_placeholder() {
            return None;
        }
        match items.get(j + 1)?.sym {
            c if c == close => return Some(j + 2),
            b',' => j += 2,
            _ => return None,
        }
    }
}

/// After `VALUES`, at `i`: when the first row is followed by rows of the
/// same shape (`VALUES ($1, $2), ($3, $4)`), the range of items not to hash
/// so that any number of such rows hashes as one.
pub(crate) fn repeated_rows(sql: &str, items: &[Item], i: usize) -> Option<(usize, usize)> {
    let first_end = row_end(items, i)?;
    let first = items.get(i..first_end)?;
    let mut last = first_end;
    while items.get(last).is_some_and(|c| c.sym == b',') {
        let end = row_end(items, last + 1)?;
        let row = items.get(last + 1..end)?;
        if !same_shape(sql, first, row) {
            break;
        }
        last = end;
    }
    (last > first_end).then_some((first_end, last))
}

/// A parenthesized row at `i`: the index past its closing parenthesis.
fn row_end(items: &[Item], i: usize) -> Option<usize> {
    if items.get(i)?.sym != b'(' {
        return None;
    }
    let mut depth = 0usize;
    for (j, it) in items.iter().enumerate().skip(i) {
        match it.sym {
            b'(' => depth += 1,
            b')' => {
                depth -= 1;
                if depth == 0 {
                    return Some(j + 1);
                }
            }
            _ => {}
        }
    }
    None
}

fn same_shape(sql: &str, a: &[Item], b: &[Item]) -> bool {
    a.len() == b.len()
        && a.iter().zip(b).all(|(x, y)| {
            if x.is_placeholder() || y.is_placeholder() {
                x.is_placeholder() && y.is_placeholder()
            } else if x.tok == TokenKind::Word && y.tok == TokenKind::Word {
                x.text(sql).eq_ignore_ascii_case(y.text(sql))
            } else {
                x.tok == y.tok && x.text(sql) == y.text(sql)
            }
        })
}

#[cfg(test)]
mod tests {
    use super::*;

    /// FNV-1a's published test vectors (Fowler, Noll, Vo, and
    /// draft-eastlake-fnv), so that the function never changes unnoticed.
    #[test]
    fn fnv1a_64_test_vectors() {
        let fnv = |data: &[u8]| {
            let mut s = Stream::new();
            s.bytes(data);
            s.finish()
        };
        assert_eq!(fnv(b""), 0xcbf2_9ce4_8422_2325);
        assert_eq!(fnv(b"a"), 0xaf63_dc4c_8601_ec8c);
        assert_eq!(fnv(b"foobar"), 0x8594_4171_f739_67e8);
    }

    #[test]
    fn tokens_end_with_their_kind() {
        let mut a = Stream::new();
        a.name_lower(b"SeLeCt");
        a.symbol(b"*");
        a.placeholder();
        let mut b = Stream::new();
        b.bytes(b"select\xff*\xfe\xfd");
        assert_eq!(a.finish(), b.finish());
    }
}
