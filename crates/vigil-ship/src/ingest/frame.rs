//! Splitting a TCP or TLS byte stream into syslog messages (RFC 6587).
//!
//! Each frame is detected on its own: one that starts with a digit is
//! octet-counted, `MSG-LEN SP MSG` with MSG-LEN a decimal number without
//! a leading zero; any other frame runs up to the next LF (non-transparent
//! framing), and an empty line is no frame at all.
//!
//! The buffer never holds more than `max + 11` bytes. A frame longer than
//! `max` is skipped, its bytes read and dropped as they arrive, and
//! reported once as [`Framed::Oversized`]; the stream goes on after it. A
//! malformed octet count (a leading zero, more than ten digits, or a digit
//! run not ended by a space) leaves nothing to resynchronise on: it is a
//! [`BadCount`] and the stream cannot be framed any further.

use std::fmt;

/// The most digits of an octet count: 10 digits reach 9 999 999 999, far
/// above any accepted limit.
const MAX_DIGITS: usize = 10;

/// What the framer found in the stream.
#[derive(Debug, PartialEq, Eq)]
pub(crate) enum Framed<'a> {
    /// A complete message, without its octet count or its LF.
    Message(&'a [u8]),
    /// A frame longer than the limit, being skipped: its length when
    /// octet-counted, `None` for a line without LF within the limit.
    Oversized(Option<u64>),
}

/// The stream holds an octet count that cannot be read; see
/// [`BadCount::what`].
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct BadCount {
    /// What is wrong with it.
    pub(crate) what: &'static str,
}

impl fmt::Display for BadCount {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "bad octet count: {}", self.what)
    }
}

/// What is left when the stream ends.
#[derive(Debug, PartialEq, Eq)]
pub(crate) enum Rest<'a> {
    /// Nothing: the stream ended between frames.
    Nothing,
    /// A last line without its LF, taken as a message.
    Message(&'a [u8]),
    /// Part of an octet-counted frame (or of its count): this many bytes
    /// are missing, `None` when the count itself was cut.
    Truncated(Option<u64>),
}

/// What the framer is in the middle of.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Skip {
    /// Nothing is being skipped.
    Nothing,
    /// This many bytes of an oversized octet-counted frame are still to come.
    Bytes(u64),
    /// An oversized line: drop everything up to and including the next LF.
    Line,
}

/// Splits a byte stream into frames; see the [module documentation](self).
#[derive(Debug)]
pub(crate) struct Framer {
    max: usize,
    /// Unconsumed bytes are `buf[start..]`.
    buf: Vec<u8>,
    start: usize,
    skip: Skip,
    failed: Option<BadCount>,
}

impl Framer {
    /// A framer for messages of at most `max` bytes.
    pub(crate) fn new(max: usize) -> Framer {
        Framer {
            max,
            buf: Vec::new(),
            start: 0,
            skip: Skip::Nothing,
            failed: None,
        }
    }

    /// Feeds the next bytes of the stream, calling `each` for every frame
    /// they complete, in order. After a [`BadCount`] the stream cannot be
    /// framed; every later call returns it again.
    pub(crate) fn feed(
        &mut self,
        mut data: &[u8],
        each: &mut dyn FnMut(Framed<'_>),
    ) -> Result<(), BadCount> {
        if let Some(bad) = self.failed {
            return Err(bad);
        }
        loop {
            match self.skip {
                Skip::Bytes(left) => {
                    let n = usize::try_from(left).unwrap_or(usize::MAX).min(data.len());
                    data = &data[n..];
                    self.skip = match left - n as u64 {
                        0 => Skip::Nothing,
                        left => Skip::Bytes(left),
                    };
                }
                Skip::Line => match data.iter().position(|&b| b == b'\n') {
                    Some(lf) => {
                        data = &data[lf + 1..];
                        self.skip = Skip::Nothing;
                    }
                    None => data = &[],
                },
                Skip::Nothing => {}
            }
            if self.skip != Skip::Nothing {
                return Ok(());
            }
            // Take what fits; a full buffer always completes or rejects its
            // first frame, so the loop makes progress.
            self.compact();
            let room = (self.max + MAX_DIGITS + 1).saturating_sub(self.buf.len());
            let take = room.min(data.len());
            self.buf.extend_from_slice(&data[..take]);
            data = &data[take..];
            while self.skip == Skip::Nothing && self.start < self.buf.len() {
                match self.next_frame() {
                    Ok(Some(found)) => each(found),
                    Ok(None) => break,
                    Err(bad) => {
                        self.failed = Some(bad);
                        self.buf = Vec::new();
                        self.start = 0;
                        return Err(bad);
                    }
                }
            }
            if data.is_empty() {
                return Ok(());
            }
        }
    }

    /// True while part of a frame is buffered or being skipped.
    pub(crate) fn in_frame(&self) -> bool {
        self.start < self.buf.len() || matches!(self.skip, Skip::Bytes(_))
    }

    /// What is left when the stream ends.
    pub(crate) fn finish(&self) -> Rest<'_> {
        let rest = &self.buf[self.start..];
        if let Skip::Bytes(left) = self.skip {
            return Rest::Truncated(Some(left));
        }
        if self.failed.is_some() || rest.iter().all(|&b| b == b'\r') || self.skip == Skip::Line {
            return Rest::Nothing;
        }
        if !rest[0].is_ascii_digit() {
            return Rest::Message(rest);
        }
        match count(rest) {
            Ok(Some((header, len))) => Rest::Truncated(Some(len - (rest.len() - header) as u64)),
            _ => Rest::Truncated(None),
        }
    }

    /// Drops the consumed bytes from the front of the buffer.
    fn compact(&mut self) {
        if self.start > 0 {
            self.buf.drain(..self.start);
            self.start = 0;
        }
    }

    /// The next frame in `buf[start..]`, or `None` until more bytes come.
    fn next_frame(&mut self) -> Result<Option<Framed<'_>>, BadCount> {
        // Empty lines carry nothing: step over them.
        loop {
            match &self.buf[self.start..] {
                [b'\n', ..] => self.start += 1,
                [b'\r', b'\n', ..] => self.start += 2,
                [] | [b'\r'] => return Ok(None),
                _ => break,
            }
        }
        let rest = &self.buf[self.start..];
        if rest[0].is_ascii_digit() {
            let Some((header, len)) = count(rest)? else {
                return Ok(None);
            };
            if len > self.max as u64 {
                let have = (rest.len() - header) as u64;
                let skip = len.min(have);
                self.start += header + skip as usize;
                if len > have {
                    self.skip = Skip::Bytes(len - have);
                }
                return Ok(Some(Framed::Oversized(Some(len))));
            }
            let len = len as usize;
            if rest.len() - header < len {
                return Ok(None);
            }
            let from = self.start + header;
            self.start = from + len;
            return Ok(Some(Framed::Message(&self.buf[from..from + len])));
        }
        match rest.iter().position(|&b| b == b'\n') {
            Some(lf) if lf > self.max => {
                self.start += lf + 1;
                Ok(Some(Framed::Oversized(None)))
            }
            Some(lf) => {
                let from = self.start;
                self.start += lf + 1;
                let line = &self.buf[from..from + lf];
                Ok(Some(Framed::Message(
                    line.strip_suffix(b"\r").unwrap_or(line),
                )))
            }
            None if rest.len() > self.max => {
                self.start = self.buf.len();
                self.skip = Skip::Line;
                Ok(Some(Framed::Oversized(None)))
            }
            None => Ok(None),
        }
    }
}

/// The octet count at the start of `frame` (which starts with a digit):
/// the length of `MSG-LEN SP` and MSG-LEN, or `None` until the space comes.
fn count(frame: &[u8]) -> Result<Option<(usize, u64)>, BadCount> {
    let digits = frame.iter().take_while(|b| b.is_ascii_digit()).count();
    if frame[0] == b'0' {
        return Err(BadCount {
            what: "it starts with 0",
        });
    }
    if digits > MAX_DIGITS {
        return Err(BadCount {
            what: "it has more than ten digits",
        });
    }
    match frame.get(digits) {
        None => Ok(None),
        Some(b' ') => {
            let len = frame[..digits]
                .iter()
                .fold(0u64, |n, d| n * 10 + u64::from(d - b'0'));
            Ok(Some((digits + 1, len)))
        }
        Some(_) => Err(BadCount {
            what: "its digits are not followed by a space",
        }),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// What `feed` reports, owned: messages as text, oversized frames as
    /// `<oversized N>`, a bad count as `<bad: …>`.
    fn frames(max: usize, chunks: &[&[u8]]) -> Vec<String> {
        let mut framer = Framer::new(max);
        let mut out = Vec::new();
        for chunk in chunks {
            let mut each = |f: Framed<'_>| {
                out.push(match f {
                    Framed::Message(m) => String::from_utf8_lossy(m).into_owned(),
                    Framed::Oversized(n) => format!("<oversized {n:?}>"),
                })
            };
            if let Err(bad) = framer.feed(chunk, &mut each) {
                out.push(format!("<{bad}>"));
                break;
            }
        }
        out
    }

    /// Every way of cutting `stream` in two gives the same frames.
    fn frames_any_cut(max: usize, stream: &[u8]) -> Vec<String> {
        let whole = frames(max, &[stream]);
        for cut in 0..=stream.len() {
            let (a, b) = stream.split_at(cut);
            assert_eq!(frames(max, &[a, b]), whole, "cut at {cut}");
        }
        let bytes: Vec<&[u8]> = stream.chunks(1).collect();
        assert_eq!(frames(max, &bytes), whole, "byte by byte");
        whole
    }

    #[test]
    fn octet_counting_and_lines_mix() {
        let got = frames_any_cut(
            100,
            b"5 hello3 a\nbline one\nline two\r\n\n\r\n12 with\nnewline<13>1 - - - - - - x\n",
        );
        assert_eq!(
            got,
            [
                "hello",
                "a\nb",
                "line one",
                "line two",
                "with\nnewline",
                "<13>1 - - - - - - x"
            ]
        );
        // Thousands of empty lines are stepped over, not recursed into.
        assert_eq!(
            frames_any_cut(100_000, &[b'\n'; 2000]),
            Vec::<String>::new()
        );
    }

    #[test]
    fn oversized_frames_are_skipped_and_the_stream_goes_on() {
        let mut stream = b"12 0123456789ab3 one".to_vec();
        stream.extend_from_slice(b"this line is far too long\nshort\n4 two!");
        assert_eq!(
            frames_any_cut(10, &stream),
            [
                "<oversized Some(12)>",
                "one",
                "<oversized None>",
                "short",
                "two!"
            ]
        );
        // Exactly the limit passes.
        assert_eq!(
            frames_any_cut(4, b"4 abcd5 abcde1 x"),
            ["abcd", "<oversized Some(5)>", "x"]
        );
        assert_eq!(
            frames_any_cut(4, b"abcd\nabcde\nx\n"),
            ["abcd", "<oversized None>", "x"]
        );
    }

    #[test]
    fn bad_counts_stop_the_stream() {
        assert_eq!(
            frames(100, &[b"1 a", b"12x hello", b"3 abc"]),
            [
                "a",
                "<bad octet count: its digits are not followed by a space>"
            ]
        );
        assert_eq!(
            frames(100, &[b"05 hello"]),
            ["<bad octet count: it starts with 0>"]
        );
        assert_eq!(
            frames(100, &[b"12345678901 x"]),
            ["<bad octet count: it has more than ten digits>"]
        );
        let mut framer = Framer::new(100);
        assert!(framer.feed(b"0 ", &mut |_| {}).is_err());
        assert!(framer.feed(b"1 a", &mut |_| panic!("no frame")).is_err());
        assert_eq!(framer.finish(), Rest::Nothing);
    }

    #[test]
    fn the_end_of_the_stream() {
        let mut framer = Framer::new(100);
        framer.feed(b"last line", &mut |_| {}).unwrap();
        assert!(framer.in_frame());
        assert_eq!(framer.finish(), Rest::Message(b"last line"));

        let mut framer = Framer::new(100);
        framer.feed(b"10 abc", &mut |_| {}).unwrap();
        assert_eq!(framer.finish(), Rest::Truncated(Some(7)));

        let mut framer = Framer::new(100);
        framer.feed(b"10", &mut |_| {}).unwrap();
        assert_eq!(framer.finish(), Rest::Truncated(None));

        let mut framer = Framer::new(4);
        framer.feed(b"10 abc", &mut |_| {}).unwrap();
        assert_eq!(framer.finish(), Rest::Truncated(Some(7)));

        let mut framer = Framer::new(4);
        framer.feed(b"abcdefgh", &mut |_| {}).unwrap();
        assert_eq!(framer.finish(), Rest::Nothing);

        let mut framer = Framer::new(100);
        framer.feed(b"3 abc\n", &mut |_| {}).unwrap();
        assert!(!framer.in_frame());
        assert_eq!(framer.finish(), Rest::Nothing);
    }

    #[test]
    fn the_buffer_stays_bounded() {
        let mut framer = Framer::new(16);
        let mut n = 0;
        for _ in 0..1000 {
            framer
                .feed(&[b'x'; 100], &mut |f| {
                    assert_eq!(f, Framed::Oversized(None));
                    n += 1;
                })
                .unwrap();
            assert!(framer.buf.len() <= 16 + MAX_DIGITS + 1);
        }
        assert_eq!(n, 1);
        framer
            .feed(b"\n9999999999 ", &mut |f| {
                assert_eq!(f, Framed::Oversized(Some(9_999_999_999)))
            })
            .unwrap();
        assert_eq!(framer.finish(), Rest::Truncated(Some(9_999_999_999)));
    }
}
