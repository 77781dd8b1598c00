//! A checked cursor over a message body, and the writer used by encoders.
//!
//! Every decoder reads through [`Reader`], whose methods return
//! [`Error::ShortBody`] instead of panicking when the body ends early, and
//! check counts against the bytes left before anything relies on them.

use std::ffi::CStr;

use bytes::{BufMut, BytesMut};

use crate::error::{Error, StringError};
use crate::tag::MessageTag;

/// A cursor over the body of one message.
#[derive(Clone, Debug)]
pub(crate) struct Reader<'a> {
    buf: &'a [u8],
}

impl<'a> Reader<'a> {
    pub(crate) fn new(buf: &'a [u8]) -> Self {
        Self { buf }
    }

    pub(crate) fn remaining(&self) -> usize {
        self.buf.len()
    }

    pub(crate) fn is_empty(&self) -> bool {
        self.buf.is_empty()
    }

    /// The next `n` bytes.
    pub(crate) fn take(&mut self, n: usize) -> Result<&'a [u8], Error> {
        if n > self.buf.len() {
            return Err(Error::ShortBody);
        }
        let (head, tail) = self.buf.split_at(n);
        self.buf = tail;
        Ok(head)
    }

    pub(crate) fn array<const N: usize>(&mut self) -> Result<[u8; N], Error> {
        let bytes = self.take(N)?;
        let mut out = [0; N];
        out.copy_from_slice(bytes);
        Ok(out)
    }

    pub(crate) fn u8(&mut self) -> Result<u8, Error> {
        Ok(self.array::<1>()?[0])
    }

    pub(crate) fn i16(&mut self) -> Result<i16, Error> {
        Ok(i16::from_be_bytes(self.array()?))
    }

    pub(crate) fn u16(&mut self) -> Result<u16, Error> {
        Ok(u16::from_be_bytes(self.array()?))
    }

    pub(crate) fn i32(&mut self) -> Result<i32, Error> {
        Ok(i32::from_be_bytes(self.array()?))
    }

    pub(crate) fn u32(&mut self) -> Result<u32, Error> {
        Ok(u32::from_be_bytes(self.array()?))
    }

    /// A count of items of at least `min_item` bytes each, as PostgreSQL
    /// reads Int16 counts: unsigned. Fails with [`Error::BadCount`] when the
    /// rest of the body cannot hold that many items.
    pub(crate) fn count(&mut self, min_item: usize) -> Result<usize, Error> {
        let count = usize::from(self.u16()?);
        let needed = count.checked_mul(min_item).ok_or(Error::BadCount {
            count,
            remaining: self.remaining(),
        })?;
        if needed > self.remaining() {
            return Err(Error::BadCount {
                count,
                remaining: self.remaining(),
            });
        }
        Ok(count)
    }

    /// A NUL-terminated string, without its NUL, as raw bytes.
    pub(crate) fn cbytes(&mut self) -> Result<&'a [u8], Error> {
        // `CStr` finds the first NUL a word at a time: query strings are
        // long, and a byte at a time was a third of decoding a Query.
        let Ok(s) = CStr::from_bytes_until_nul(self.buf) else {
            return Err(StringError::Unterminated.into());
        };
        let nul = s.to_bytes().len();
        let s = self.take(nul)?;
        self.take(1)?;
        Ok(s)
    }

    /// A NUL-terminated UTF-8 string.
    pub(crate) fn cstr(&mut self) -> Result<&'a str, Error> {
        let bytes = self.cbytes()?;
        std::str::from_utf8(bytes).map_err(|_| StringError::NotUtf8.into())
    }

    /// A value with an Int32 length prefix: `None` for -1 (NULL).
    pub(crate) fn value(&mut self) -> Result<Option<&'a [u8]>, Error> {
        let len = self.i32()?;
        match len {
            -1 => Ok(None),
            len if len < -1 => Err(Error::BadLength {
                len: i64::from(len),
            }),
            len => {
                // Non-negative, so the conversion cannot fail on any target
                // with at least 32-bit pointers.
                let len = usize::try_from(len).map_err(|_| Error::ShortBody)?;
                self.take(len).map(Some)
            }
        }
    }

    /// The bytes read between this reader (a clone taken earlier) and
    /// `later`, the same reader advanced since.
    pub(crate) fn prefix(&self, later: &Reader<'a>) -> &'a [u8] {
        let used = self.buf.len().saturating_sub(later.buf.len());
        self.buf.get(..used).unwrap_or_default()
    }

    /// Everything left.
    pub(crate) fn rest(&mut self) -> &'a [u8] {
        std::mem::take(&mut self.buf)
    }

    /// Fails with [`Error::TrailingBytes`] unless the body is used up.
    pub(crate) fn finish(self) -> Result<(), Error> {
        if self.buf.is_empty() {
            Ok(())
        } else {
            Err(Error::TrailingBytes {
                count: self.buf.len(),
            })
        }
    }
}

/// Writes one message: header, fields, then the length patched in.
#[derive(Debug)]
pub(crate) struct Writer<'o> {
    out: &'o mut BytesMut,
    /// Where the length field starts.
    len_at: usize,
}

impl<'o> Writer<'o> {
    /// Starts a tagged message (or, with `None`, an untagged startup packet).
    pub(crate) fn new(out: &'o mut BytesMut, tag: Option<MessageTag>) -> Self {
        if let Some(tag) = tag {
            out.put_u8(tag.0);
        }
        let len_at = out.len();
        out.put_i32(0);
        Self { out, len_at }
    }

    pub(crate) fn u8(&mut self, v: u8) -> &mut Self {
        self.out.put_u8(v);
        self
    }

    pub(crate) fn i16(&mut self, v: i16) -> &mut Self {
        self.out.put_i16(v);
        self
    }

    pub(crate) fn i32(&mut self, v: i32) -> &mut Self {
        self.out.put_i32(v);
        self
    }

    pub(crate) fn u32(&mut self, v: u32) -> &mut Self {
        self.out.put_u32(v);
        self
    }

    pub(crate) fn bytes(&mut self, v: &[u8]) -> &mut Self {
        self.out.put_slice(v);
        self
    }

    /// An Int16 count, as PostgreSQL reads it: unsigned, at most 65,535.
    pub(crate) fn count(&mut self, n: usize) -> Result<&mut Self, Error> {
        let n = u16::try_from(n).map_err(|_| Error::Unencodable {
            reason: "more than 65,535 items in a count",
        })?;
        self.out.put_u16(n);
        Ok(self)
    }

    /// A NUL-terminated string; fails if it holds a NUL byte.
    pub(crate) fn cstr(&mut self, s: &str) -> Result<&mut Self, Error> {
        self.cbytes(s.as_bytes())
    }

    pub(crate) fn cbytes(&mut self, s: &[u8]) -> Result<&mut Self, Error> {
        if s.contains(&0) {
            return Err(Error::Unencodable {
                reason: "a string holds a NUL byte",
            });
        }
        self.out.put_slice(s);
        self.out.put_u8(0);
        Ok(self)
    }

    /// A value with an Int32 length prefix, -1 for `None`.
    pub(crate) fn value(&mut self, v: Option<&[u8]>) -> Result<&mut Self, Error> {
        match v {
            None => self.out.put_i32(-1),
            Some(v) => {
                let len = i32::try_from(v.len()).map_err(|_| Error::Unencodable {
                    reason: "a value over 2 GiB",
                })?;
                self.out.put_i32(len);
                self.out.put_slice(v);
            }
        }
        Ok(self)
    }

    /// Patches the length field in.
    pub(crate) fn finish(self) -> Result<(), Error> {
        let len = self.out.len() - self.len_at;
        let len = i32::try_from(len).map_err(|_| Error::Unencodable {
            reason: "a message over 2 GiB",
        })?;
        self.out[self.len_at..self.len_at + 4].copy_from_slice(&len.to_be_bytes());
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_c_string_ends_at_its_first_nul() {
        let long = [b"SELECT 1".repeat(40).as_slice(), b"\0tail\0"].concat();
        let mut r = Reader::new(&long);
        assert_eq!(r.cbytes().ok(), Some(&long[..320]));
        assert_eq!(r.cbytes().ok(), Some(&b"tail"[..]));
        assert!(r.cbytes().is_err());

        let mut r = Reader::new(b"\0\0x");
        assert_eq!(r.cbytes().ok(), Some(&b""[..]));
        assert_eq!(r.cbytes().ok(), Some(&b""[..]));
        assert!(matches!(
            r.cbytes(),
            Err(Error::BadString(StringError::Unterminated))
        ));
        assert_eq!(r.remaining(), 1);
    }
}
