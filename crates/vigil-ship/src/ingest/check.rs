//! The check behind the `syslog_ingest` fuzz target.

use super::frame::{Framed, Framer, Rest};
use super::parse::{self, Syntax};

/// Runs the parser and the TCP frame splitter on arbitrary bytes and
/// panics when either breaks a promise; the `syslog_ingest` fuzz target.
///
/// The first byte picks the message limit (16 to 1036 bytes) and how the
/// rest is cut into reads (1 to 7 bytes at a time). The rest is parsed as
/// one datagram, then framed whole and cut into reads. Promises checked:
/// nothing panics; a message that parses has a facility up to 23, a
/// severity up to 7, fields no longer than the input and a MSG at most
/// three times it; framing gives the same frames however the stream is
/// cut; no frame is longer than the limit, and the frames together are no
/// longer than the stream.
pub fn fuzz_syslog(data: &[u8]) {
    let Some((&knob, stream)) = data.split_first() else {
        return;
    };
    let max = 16 + usize::from(knob) * 4;
    let step = usize::from(knob % 7) + 1;
    check_parse(stream);
    let whole = frames(stream, max, stream.len().max(1));
    let cut = frames(stream, max, step);
    assert_eq!(whole, cut, "framing depends on how the stream is cut");
    let mut total = 0;
    for frame in &whole {
        if let Outcome::Message(m) = frame {
            assert!(
                m.len() <= max,
                "a frame of {} bytes passed a limit of {max}",
                m.len()
            );
            total += m.len();
            check_parse(m);
        }
    }
    assert!(total <= stream.len());
}

/// What the framer gave, owned, for comparison.
#[derive(Debug, PartialEq, Eq)]
enum Outcome {
    Message(Vec<u8>),
    Oversized(Option<u64>),
    BadCount(&'static str),
    Last(Vec<u8>),
    Truncated(Option<u64>),
}

fn frames(stream: &[u8], max: usize, step: usize) -> Vec<Outcome> {
    let mut framer = Framer::new(max);
    let mut out = Vec::new();
    for chunk in stream.chunks(step) {
        let fed = framer.feed(chunk, &mut |framed| {
            out.push(match framed {
                Framed::Message(m) => Outcome::Message(m.to_vec()),
                Framed::Oversized(len) => Outcome::Oversized(len),
            })
        });
        if let Err(bad) = fed {
            out.push(Outcome::BadCount(bad.what));
            break;
        }
    }
    match framer.finish() {
        Rest::Nothing => {}
        Rest::Message(m) => out.push(Outcome::Last(m.to_vec())),
        Rest::Truncated(left) => out.push(Outcome::Truncated(left)),
    }
    out
}

fn check_parse(input: &[u8]) {
    let Ok(m) = parse::parse(input) else {
        return;
    };
    assert!(m.facility <= 23 && m.severity <= 7, "{m:?}");
    for field in [m.hostname, m.app_name, m.procid, m.msgid, m.structured_data]
        .into_iter()
        .flatten()
    {
        assert!(!field.is_empty() && field.len() <= input.len(), "{m:?}");
    }
    assert!(m.msg.len() <= 3 * input.len(), "{m:?}");
    let params: usize = m.elements.iter().map(|e| e.params.len() + 1).sum();
    assert!(params <= input.len(), "{m:?}");
    if m.syntax == Syntax::Rfc3164 {
        assert!(
            m.timestamp.is_none() && m.structured_data.is_none(),
            "{m:?}"
        );
    }
    assert_eq!(m.structured_data.is_some(), !m.elements.is_empty(), "{m:?}");
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_check_passes_on_typical_streams() {
        for knob in [0u8, 1, 6, 100, 255] {
            let mut data = vec![knob];
            data.extend_from_slice(
                b"<165>1 2003-10-11T22:14:15.003Z host app - ID47 [a@1 b=\"\\]\"] msg\n\
                  12 <13>1 - - - -5 hello\n\n<34>Oct 11 22:14:15 mymachine su: x\n05 bad",
            );
            fuzz_syslog(&data);
        }
        fuzz_syslog(&[]);
        fuzz_syslog(&[7]);
    }
}
