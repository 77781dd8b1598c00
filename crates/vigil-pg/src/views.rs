//! Zero-copy views of the arrays inside messages.
//!
//! A view borrows the bytes of its array from the frame, after the decoder
//! has checked them once; iterating it again cannot fail (if it ever did, the
//! iterator would end early rather than panic).

use std::fmt;

use crate::error::Error;
use crate::reader::{Reader, Writer};

/// Bytes that vigil relays but never interprets or prints: passwords and
/// SASL messages, cancel keys, COPY data, function results.
///
/// `Debug` shows only the length, so that no log line can carry the
/// contents by accident; [`Opaque::as_bytes`] is the one way to read them.
#[derive(Clone, Copy, PartialEq, Eq, Hash, Default)]
pub struct Opaque<'a>(&'a [u8]);

impl<'a> Opaque<'a> {
    /// Wraps bytes.
    pub fn new(bytes: &'a [u8]) -> Self {
        Self(bytes)
    }

    /// The bytes themselves. Never log them.
    pub fn as_bytes(&self) -> &'a [u8] {
        self.0
    }

    /// How many bytes.
    pub fn len(&self) -> usize {
        self.0.len()
    }

    /// Whether there are none.
    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }
}

impl fmt::Debug for Opaque<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "<{} bytes>", self.0.len())
    }
}

/// A list of format codes (Int16 count, then Int16 each): 0 is text, 1 is
/// binary. An empty list means all text; a list of one applies to every
/// column or parameter ([`FormatCodes::resolve`]).
#[derive(Clone, Copy, PartialEq, Eq, Hash, Default)]
pub struct FormatCodes<'a> {
    raw: &'a [u8],
}

impl<'a> FormatCodes<'a> {
    pub(crate) fn read(r: &mut Reader<'a>) -> Result<Self, Error> {
        let n = r.count(2)?;
        Ok(Self {
            raw: r.take(n * 2)?,
        })
    }

    pub(crate) fn write(&self, w: &mut Writer<'_>) -> Result<(), Error> {
        w.count(self.len())?.bytes(self.raw);
        Ok(())
    }

    /// How many codes.
    pub fn len(&self) -> usize {
        self.raw.len() / 2
    }

    /// Whether the list is empty (everything in text format).
    pub fn is_empty(&self) -> bool {
        self.raw.is_empty()
    }

    /// The `i`th code.
    pub fn get(&self, i: usize) -> Option<i16> {
        let start = i.checked_mul(2)?;
        let b = self.raw.get(start..start.checked_add(2)?)?;
        Some(i16::from_be_bytes([b[0], b[1]]))
    }

    /// The codes in order.
    pub fn iter(&self) -> impl Iterator<Item = i16> + 'a {
        self.raw
            .chunks_exact(2)
            .map(|b| i16::from_be_bytes([b[0], b[1]]))
    }

    /// The format of the `i`th of `n` values by the protocol's rule: no codes
    /// means text (0), one code applies to all, otherwise one per value.
    /// `None` if the list has another length than 0, 1 or `n`, or `i >= n`.
    pub fn resolve(&self, i: usize, n: usize) -> Option<i16> {
        if i >= n {
            return None;
        }
        match self.len() {
            0 => Some(0),
            1 => self.get(0),
            len if len == n => self.get(i),
            _ => None,
        }
    }
}

impl fmt::Debug for FormatCodes<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_list().entries(self.iter()).finish()
    }
}

/// A list of type OIDs (Int16 count, then Int32 each), as in Parse and
/// ParameterDescription. 0 means unspecified.
#[derive(Clone, Copy, PartialEq, Eq, Hash, Default)]
pub struct Oids<'a> {
    raw: &'a [u8],
}

impl<'a> Oids<'a> {
    pub(crate) fn read(r: &mut Reader<'a>) -> Result<Self, Error> {
        let n = r.count(4)?;
        Ok(Self {
            raw: r.take(n * 4)?,
        })
    }

    pub(crate) fn write(&self, w: &mut Writer<'_>) -> Result<(), Error> {
        w.count(self.len())?.bytes(self.raw);
        Ok(())
    }

    /// How many OIDs.
    pub fn len(&self) -> usize {
        self.raw.len() / 4
    }

    /// Whether there are none.
    pub fn is_empty(&self) -> bool {
        self.raw.is_empty()
    }

    /// The `i`th OID.
    pub fn get(&self, i: usize) -> Option<u32> {
        let start = i.checked_mul(4)?;
        let b = self.raw.get(start..start.checked_add(4)?)?;
        Some(u32::from_be_bytes([b[0], b[1], b[2], b[3]]))
    }

    /// The OIDs in order.
    pub fn iter(&self) -> impl Iterator<Item = u32> + 'a {
        self.raw
            .chunks_exact(4)
            .map(|b| u32::from_be_bytes([b[0], b[1], b[2], b[3]]))
    }
}

impl fmt::Debug for Oids<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_list().entries(self.iter()).finish()
    }
}

/// A list of values, each with an Int32 length, -1 meaning NULL: the
/// parameters of Bind, the arguments of FunctionCall, the columns of DataRow.
///
/// The values are slices of the frame, never copied. `Debug` shows only
/// their sizes: parameter values and result data are never printed.
#[derive(Clone, Copy, PartialEq, Eq, Hash, Default)]
pub struct Values<'a> {
    count: usize,
    raw: &'a [u8],
}

impl<'a> Values<'a> {
    pub(crate) fn read(r: &mut Reader<'a>) -> Result<Self, Error> {
        // Every value takes at least its 4-byte length.
        let count = r.count(4)?;
        let start = r.clone();
        for _ in 0..count {
            r.value()?;
        }
        let raw = start.prefix(r);
        Ok(Self { count, raw })
    }

    pub(crate) fn write(&self, w: &mut Writer<'_>) -> Result<(), Error> {
        w.count(self.count)?.bytes(self.raw);
        Ok(())
    }

    /// How many values.
    pub fn len(&self) -> usize {
        self.count
    }

    /// Whether there are none.
    pub fn is_empty(&self) -> bool {
        self.count == 0
    }

    /// The values in order, `None` for NULL.
    pub fn iter(&self) -> ValuesIter<'a> {
        ValuesIter {
            reader: Reader::new(self.raw),
            left: self.count,
        }
    }

    /// The `i`th value: `Some(None)` for NULL, `None` past the end.
    pub fn get(&self, i: usize) -> Option<Option<&'a [u8]>> {
        self.iter().nth(i)
    }

    /// The bytes of all values with their lengths, as on the wire (without
    /// the count): what a scanner of result data reads in one pass.
    pub fn as_wire_bytes(&self) -> &'a [u8] {
        self.raw
    }
}

impl<'a> IntoIterator for Values<'a> {
    type Item = Option<&'a [u8]>;
    type IntoIter = ValuesIter<'a>;

    fn into_iter(self) -> ValuesIter<'a> {
        self.iter()
    }
}

impl fmt::Debug for Values<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        struct Size(Option<usize>);
        impl fmt::Debug for Size {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                match self.0 {
                    Some(n) => write!(f, "<{n} bytes>"),
                    None => f.write_str("NULL"),
                }
            }
        }
        f.debug_list()
            .entries(self.iter().map(|v| Size(v.map(<[u8]>::len))))
            .finish()
    }
}

/// Iterator over [`Values`].
#[derive(Clone, Debug)]
pub struct ValuesIter<'a> {
    reader: Reader<'a>,
    left: usize,
}

impl<'a> Iterator for ValuesIter<'a> {
    type Item = Option<&'a [u8]>;

    fn next(&mut self) -> Option<Self::Item> {
        if self.left == 0 {
            return None;
        }
        self.left -= 1;
        // Checked when the message was decoded; end early rather than panic.
        match self.reader.value() {
            Ok(v) => Some(v),
            Err(_) => {
                self.left = 0;
                None
            }
        }
    }

    fn size_hint(&self) -> (usize, Option<usize>) {
        (0, Some(self.left))
    }
}

/// Encodes values into the wire form that [`Values`] views, for building
/// messages (a DataRow, a Bind) from parts.
pub(crate) fn write_values<'v>(
    w: &mut Writer<'_>,
    values: impl ExactSizeIterator<Item = Option<&'v [u8]>>,
) -> Result<(), Error> {
    w.count(values.len())?;
    for v in values {
        w.value(v)?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn values_debug_hides_contents() {
        let raw = [
            0, 0, 0, 6, b's', b'e', b'c', b'r', b'e', b't', 0xff, 0xff, 0xff, 0xff,
        ];
        let mut body = vec![0, 2];
        body.extend_from_slice(&raw);
        let mut r = Reader::new(&body);
        let v = Values::read(&mut r).unwrap();
        assert!(r.is_empty());
        let shown = format!("{v:?}");
        assert_eq!(shown, "[<6 bytes>, NULL]");
        assert_eq!(v.get(0), Some(Some(&b"secret"[..])));
        assert_eq!(v.get(1), Some(None));
        assert_eq!(v.get(2), None);
    }

    #[test]
    fn opaque_debug_hides_contents() {
        assert_eq!(format!("{:?}", Opaque::new(b"hunter2")), "<7 bytes>");
    }

    #[test]
    fn format_resolution() {
        let one = FormatCodes { raw: &[0, 1] };
        assert_eq!(one.resolve(2, 3), Some(1));
        let none = FormatCodes { raw: &[] };
        assert_eq!(none.resolve(0, 1), Some(0));
        let two = FormatCodes { raw: &[0, 1, 0, 0] };
        assert_eq!(two.resolve(0, 2), Some(1));
        assert_eq!(two.resolve(0, 3), None);
        assert_eq!(two.resolve(2, 2), None);
    }
}
