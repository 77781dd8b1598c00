//! Bad input: truncations, impossible lengths, unknown types, bad strings,
//! counts that lie. Each gets its own error, and nothing panics.

#![allow(clippy::unwrap_used)] // helpers outside #[test] fns, as in tests

mod fixtures;

use bytes::BytesMut;
use vigil_pg::{
    BackendMessage, Error, Framer, FrontendMessage, Limits, MessageTag, ProtocolVersion,
    StringError,
};

fn tagged(tag: u8, body: &[u8]) -> Vec<u8> {
    let mut m = vec![tag];
    m.extend_from_slice(&(body.len() as i32 + 4).to_be_bytes());
    m.extend_from_slice(body);
    m
}

fn untagged(body: &[u8]) -> Vec<u8> {
    let mut m = (body.len() as i32 + 4).to_be_bytes().to_vec();
    m.extend_from_slice(body);
    m
}

fn client_tagged() -> Framer {
    let mut f = Framer::frontend();
    f.skip_startup();
    f
}

/// Frames and decodes one message from a client after the startup phase.
fn fe(msg: &[u8]) -> Result<(), Error> {
    let mut frames = client_tagged();
    let mut frames = frames.frames(msg);
    frames.next().expect("a message")?.frontend().map(drop)
}

/// Frames and decodes one startup-phase packet.
fn startup(msg: &[u8]) -> Result<(), Error> {
    let mut framer = Framer::frontend();
    let mut frames = framer.frames(msg);
    frames.next().expect("a message")?.frontend().map(drop)
}

/// Frames and decodes one message from a server.
fn be(msg: &[u8]) -> Result<(), Error> {
    let mut framer = Framer::backend();
    let mut frames = framer.frames(msg);
    frames.next().expect("a message")?.backend().map(drop)
}

#[test]
fn every_truncation_of_every_fixture_is_truncated() {
    let mut checked = 0;
    for (name, bytes) in fixtures::FRONTEND.iter().chain(fixtures::BACKEND) {
        let is_fe = fixtures::FRONTEND.iter().any(|(n, _)| n == name);
        let framer = || {
            if !is_fe {
                Framer::backend()
            } else if fixtures::is_startup(name) {
                Framer::frontend()
            } else {
                client_tagged()
            }
        };
        for cut in 1..bytes.len() {
            let prefix = &bytes[..cut];
            let items: Vec<_> = framer().frames(prefix).collect();
            assert_eq!(items, [Err(Error::Truncated)], "{name} cut at {cut}");
            // Streaming: wait for more, and at the end of input, truncated.
            let mut f = framer();
            let mut buf = BytesMut::from(prefix);
            assert_eq!(f.next(&mut buf), Ok(None), "{name} cut at {cut}");
            assert_eq!(buf.len(), cut, "nothing consumed");
            assert_eq!(f.finish(&buf), Err(Error::Truncated), "{name} cut at {cut}");
            checked += 1;
        }
        assert_eq!(framer().finish(&[]), Ok(()));
    }
    assert!(checked > 1000, "{checked}");
}

#[test]
fn every_truncation_of_every_session_is_truncated() {
    for (name, fe_bytes, be_bytes) in fixtures::SESSIONS {
        for (bytes, backend) in [(*fe_bytes, false), (*be_bytes, true)] {
            let framer = || {
                if backend {
                    Framer::backend()
                } else {
                    Framer::frontend()
                }
            };
            let boundaries: Vec<usize> = framer()
                .frames(bytes)
                .scan(0, |end, f| {
                    *end += f.unwrap().len();
                    Some(*end)
                })
                .collect();
            assert_eq!(boundaries.last(), Some(&bytes.len()));
            for cut in 0..bytes.len() {
                let items: Vec<_> = framer().frames(&bytes[..cut]).collect();
                let whole = boundaries.iter().filter(|&&b| b <= cut).count();
                assert_eq!(
                    items.iter().filter(|i| i.is_ok()).count(),
                    whole,
                    "{name} cut at {cut}"
                );
                let on_boundary = cut == 0 || boundaries.contains(&cut);
                let last = items.last().cloned();
                if on_boundary {
                    assert!(last.is_none_or(|l| l.is_ok()), "{name} cut at {cut}");
                } else {
                    assert_eq!(last, Some(Err(Error::Truncated)), "{name} cut at {cut}");
                }
            }
        }
    }
}

/// Cutting the body short but fixing the length up: the frame is whole and
/// its contents are short. Decoding fails or yields a message that
/// re-encodes to those very bytes; it never panics.
#[test]
fn every_shortened_body_is_rejected_or_canonical() {
    let mut rejected = 0;
    for (name, bytes) in fixtures::FRONTEND.iter().chain(fixtures::BACKEND) {
        let is_fe = fixtures::FRONTEND.iter().any(|(n, _)| n == name);
        let header = if is_fe && fixtures::is_startup(name) {
            4
        } else {
            5
        };
        for cut in header..bytes.len() {
            let mut m = bytes[..cut].to_vec();
            let len = (cut - header + 4) as i32;
            m[header - 4..header].copy_from_slice(&len.to_be_bytes());
            let mut out = BytesMut::new();
            let result = if !is_fe {
                be(&m).and_then(|()| {
                    let mut framer = Framer::backend();
                    let frame = framer.next_ref(&m)?.expect("whole");
                    frame.backend()?.encode(&mut out)
                })
            } else {
                let mut framer = if header == 4 {
                    Framer::frontend()
                } else {
                    client_tagged()
                };
                let frame = framer.next_ref(&m);
                match frame {
                    Ok(Some(frame)) => frame.frontend().and_then(|msg| msg.encode(&mut out)),
                    Ok(None) => unreachable!("whole"),
                    Err(e) => Err(e),
                }
            };
            match result {
                Ok(()) => assert_eq!(&out[..], &m[..], "{name} cut at {cut}"),
                Err(e) => {
                    assert!(e.is_peer_fault(), "{name} cut at {cut}: {e}");
                    rejected += 1;
                }
            }
        }
    }
    assert!(rejected > 500, "{rejected}");
}

#[test]
fn lengths_below_the_minimum() {
    assert_eq!(fe(b"Q\0\0\0\x03"), Err(Error::BadLength { len: 3 }));
    assert_eq!(fe(b"S\0\0\0\0"), Err(Error::BadLength { len: 0 }));
    assert_eq!(be(b"Z\0\0\0\x01"), Err(Error::BadLength { len: 1 }));
    assert_eq!(
        startup(b"\0\0\0\x07\0\x03\0"),
        Err(Error::BadLength { len: 7 })
    );
    assert_eq!(startup(b"\0\0\0\x04"), Err(Error::BadLength { len: 4 }));
    // Reported as soon as the header is there, with nothing after it.
    let mut framer = client_tagged();
    let mut buf = BytesMut::from(&b"Q\0\0\0\x02"[..]);
    assert_eq!(framer.next(&mut buf), Err(Error::BadLength { len: 2 }));
}

#[test]
fn lengths_that_overflow() {
    assert_eq!(fe(b"Q\xff\xff\xff\xff"), Err(Error::BadLength { len: -1 }));
    assert_eq!(
        be(b"D\x80\0\0\0"),
        Err(Error::BadLength {
            len: i64::from(i32::MIN)
        })
    );
    assert_eq!(
        startup(b"\xff\xff\xff\xf0\0\x03\0\0"),
        Err(Error::BadLength { len: -16 })
    );
    // The largest positive length is over every limit.
    assert_eq!(
        be(b"D\x7f\xff\xff\xff"),
        Err(Error::Oversized {
            len: i32::MAX as usize,
            max: 0x3fff_fffe,
        })
    );
}

#[test]
fn lengths_beyond_the_maximum() {
    // PostgreSQL's limits: 10,000 for Sync and friends, 1 GiB for Query.
    let sync = [b'S', 0, 0, 0x27, 0x11]; // 10,001
    assert_eq!(
        fe(&sync),
        Err(Error::Oversized {
            len: 10_001,
            max: 10_000
        })
    );
    assert_eq!(
        fe(b"Q\x3f\xff\xff\xff"),
        Err(Error::Oversized {
            len: 0x3fff_ffff,
            max: 0x3fff_fffe
        })
    );
    // 10,000 bytes after the length of a startup packet, not one more.
    let mut big = untagged(&[0; 10_000]);
    big[4..8].copy_from_slice(&ProtocolVersion::V3_0.code().to_be_bytes());
    let frame = Framer::frontend().next_ref(&big).unwrap().expect("whole");
    assert_eq!(frame.len(), 10_004);
    big.push(0);
    big[..4].copy_from_slice(&10_005i32.to_be_bytes());
    assert_eq!(
        startup(&big),
        Err(Error::Oversized {
            len: 10_005,
            max: 10_004
        })
    );
    // A password message before authentication: 65,535.
    assert_eq!(
        fe(b"p\0\x01\0\0"),
        Err(Error::Oversized {
            len: 65_536,
            max: 65_535
        })
    );
    // Configured limits apply to the long types.
    let limits = Limits {
        max_message_len: 1024,
        ..Limits::BACKEND
    };
    let mut framer = Framer::backend().with_limits(limits).unwrap();
    let mut buf = BytesMut::from(&b"D\0\0\x04\x01"[..]);
    assert_eq!(
        framer.next(&mut buf),
        Err(Error::Oversized {
            len: 1025,
            max: 1024
        })
    );
    let mut buf = BytesMut::from(&b"D\0\0\x04\0\0\0"[..]);
    assert_eq!(framer.next(&mut buf), Ok(None));
}

#[test]
fn unknown_tags() {
    // 'R' is the server's; 'Q' the client's; 0 nobody's.
    assert_eq!(
        fe(b"R\0\0\0\x08\0\0\0\0"),
        Err(Error::UnknownTag(MessageTag(b'R')))
    );
    assert_eq!(
        be(b"Q\0\0\0\x05\0"),
        Err(Error::UnknownTag(MessageTag::QUERY))
    );
    assert_eq!(be(b"\0"), Err(Error::UnknownTag(MessageTag(0))));
    // Decoding a body under a tag of the other direction.
    assert_eq!(
        FrontendMessage::decode(MessageTag::READY_FOR_QUERY, b"I"),
        Err(Error::UnknownTag(MessageTag(b'Z')))
    );
    assert_eq!(
        BackendMessage::decode(MessageTag::SYNC, b""),
        Err(Error::BadString(StringError::Unterminated)),
        "'S' from a server is ParameterStatus"
    );
    assert_eq!(
        BackendMessage::decode(MessageTag::BIND, b""),
        Err(Error::UnknownTag(MessageTag(b'B')))
    );
    // A TLS ClientHello where a startup packet should be.
    assert!(matches!(
        startup(&[0x16, 0x03, 0x01, 0x02, 0x00, 0x01]),
        Err(Error::Oversized { .. })
    ));
}

#[test]
fn bad_strings() {
    let unterminated = Err(Error::BadString(StringError::Unterminated));
    let not_utf8 = Err(Error::BadString(StringError::NotUtf8));
    assert_eq!(fe(&tagged(b'Q', b"SELECT 1")), unterminated);
    assert_eq!(fe(&tagged(b'Q', b"SELECT '\xff'\0")), not_utf8);
    assert_eq!(fe(&tagged(b'P', b"stmt\0SELECT")), unterminated);
    assert_eq!(fe(&tagged(b'P', b"st\xc3\0SELECT 1\0\0\0")), not_utf8);
    assert_eq!(fe(&tagged(b'E', b"portal")), unterminated);
    assert_eq!(fe(&tagged(b'f', b"\xe2\x82\0")), not_utf8);
    assert_eq!(be(&tagged(b'S', b"TimeZone\0UTC")), unterminated);
    assert_eq!(be(&tagged(b'C', b"SELECT \xc0\x80\0")), not_utf8);
    assert_eq!(be(&tagged(b'E', b"SERROR\0Mboom")), unterminated);
    assert_eq!(be(&tagged(b'A', b"\0\0\0\x01chan\0payload")), unterminated);
    assert_eq!(
        be(&tagged(b'R', b"\0\0\0\x0aSCRAM-SHA-256\0")),
        unterminated,
        "a mechanism list without its final empty name"
    );
    let mut body = ProtocolVersion::V3_0.code().to_be_bytes().to_vec();
    body.extend_from_slice(b"user\0al\xffce\0\0");
    assert_eq!(startup(&untagged(&body)), not_utf8);
    let mut body = ProtocolVersion::V3_0.code().to_be_bytes().to_vec();
    body.extend_from_slice(b"user\0alice\0");
    assert_eq!(startup(&untagged(&body)), unterminated, "no final NUL");
}

#[test]
fn counts_that_exceed_the_body() {
    // DataRow announcing 65,535 columns, then nothing.
    assert_eq!(
        be(&tagged(b'D', b"\xff\xff")),
        Err(Error::BadCount {
            count: 65_535,
            remaining: 0
        })
    );
    // Bind with three parameters but the bytes of one.
    let bind = b"\0\0\0\0\0\x03\0\0\0\x01x\0\0";
    assert_eq!(
        fe(&tagged(b'B', bind)),
        Err(Error::BadCount {
            count: 3,
            remaining: 7
        })
    );
    // Bind whose parameter count fits but whose values do not.
    let bind = b"\0\0\0\0\0\x02\0\0\0\x09xy\0\0\0\0\0\0";
    assert_eq!(fe(&tagged(b'B', bind)), Err(Error::ShortBody));
    // Parse with two type OIDs and four bytes.
    assert_eq!(
        fe(&tagged(b'P', b"\0SELECT $1\0\0\x02\0\0\0\x17")),
        Err(Error::BadCount {
            count: 2,
            remaining: 4
        })
    );
    // RowDescription with five fields, one of them there.
    let mut body = vec![0, 5];
    body.extend_from_slice(b"id\0");
    body.extend_from_slice(&[0; 18]);
    assert_eq!(
        be(&tagged(b'T', &body)),
        Err(Error::BadCount {
            count: 5,
            remaining: 21
        })
    );
    // Format codes, ParameterDescription, CopyInResponse.
    assert_eq!(
        fe(&tagged(b'B', b"\0\0\0\x02\0\0")),
        Err(Error::BadCount {
            count: 2,
            remaining: 2
        })
    );
    assert_eq!(
        be(&tagged(b't', b"\0\x03\0\0\0\x17")),
        Err(Error::BadCount {
            count: 3,
            remaining: 4
        })
    );
    assert_eq!(
        be(&tagged(b'G', b"\0\0\x09\0\0")),
        Err(Error::BadCount {
            count: 9,
            remaining: 2
        })
    );
    // NegotiateProtocolVersion: more names than bytes, or a negative count.
    assert_eq!(
        be(&tagged(b'v', b"\0\0\0\0\0\0\0\x0aab\0")),
        Err(Error::BadCount {
            count: 10,
            remaining: 3
        })
    );
    assert_eq!(
        be(&tagged(b'v', b"\0\0\0\0\xff\xff\xff\xff")),
        Err(Error::BadValue {
            field: "unrecognized option count",
            value: -1
        })
    );
}

#[test]
fn value_lengths() {
    // A column longer than what is left.
    assert_eq!(
        be(&tagged(b'D', b"\0\x01\0\0\0\x64abc")),
        Err(Error::ShortBody)
    );
    // -1 is NULL; -2 is nothing.
    assert_eq!(be(&tagged(b'D', b"\0\x01\xff\xff\xff\xff")), Ok(()));
    assert_eq!(
        be(&tagged(b'D', b"\0\x01\xff\xff\xff\xfe")),
        Err(Error::BadLength { len: -2 })
    );
    assert_eq!(
        be(&tagged(b'V', b"\x80\0\0\0")),
        Err(Error::BadLength {
            len: i64::from(i32::MIN)
        })
    );
    // The largest value length on a 32-bit length is still checked.
    assert_eq!(
        be(&tagged(b'D', b"\0\x01\x7f\xff\xff\xff")),
        Err(Error::ShortBody)
    );
}

#[test]
fn fields_past_the_end() {
    assert_eq!(fe(&tagged(b'E', b"\0\0\0")), Err(Error::ShortBody));
    assert_eq!(fe(&tagged(b'D', b"")), Err(Error::ShortBody));
    assert_eq!(
        be(&tagged(b'R', b"\0\0\0\x05\x01\x02\x03")),
        Err(Error::ShortBody)
    );
    assert_eq!(be(&tagged(b'R', b"\0\0")), Err(Error::ShortBody));
    assert_eq!(be(&tagged(b'Z', b"")), Err(Error::ShortBody));
    assert_eq!(be(&tagged(b'K', b"\0\0")), Err(Error::ShortBody));
    assert_eq!(
        fe(&tagged(b'F', b"\0\0\x06\x3e\0\0\0\0")),
        Err(Error::ShortBody)
    );
}

#[test]
fn trailing_bytes() {
    assert_eq!(
        fe(&tagged(b'S', b"x")),
        Err(Error::TrailingBytes { count: 1 })
    );
    assert_eq!(
        fe(&tagged(b'Q', b"SELECT 1\0extra")),
        Err(Error::TrailingBytes { count: 5 })
    );
    assert_eq!(
        be(&tagged(b'Z', b"II")),
        Err(Error::TrailingBytes { count: 1 })
    );
    assert_eq!(
        be(&tagged(b'E', b"SERROR\0\0junk")),
        Err(Error::TrailingBytes { count: 4 })
    );
    assert_eq!(
        be(&tagged(b'R', b"\0\0\0\0\0")),
        Err(Error::TrailingBytes { count: 1 })
    );
    let mut ssl = fixtures::frontend("ssl-request").to_vec();
    ssl.push(0);
    ssl[3] = 9;
    assert_eq!(startup(&ssl), Err(Error::TrailingBytes { count: 1 }));
}

#[test]
fn values_outside_their_set() {
    assert_eq!(
        be(&tagged(b'Z', b"X")),
        Err(Error::BadValue {
            field: "transaction status",
            value: i64::from(b'X')
        })
    );
    assert_eq!(
        fe(&tagged(b'D', b"Xname\0")),
        Err(Error::BadValue {
            field: "Describe or Close target",
            value: i64::from(b'X')
        })
    );
    assert_eq!(
        be(&tagged(b'R', b"\0\0\0\x63")),
        Err(Error::BadValue {
            field: "authentication request",
            value: 99
        })
    );
    // Cancel keys: 4 to 256 bytes.
    let cancel = |key_len: usize| {
        let mut body = vigil_pg::CANCEL_REQUEST_CODE.to_be_bytes().to_vec();
        body.extend_from_slice(&7i32.to_be_bytes());
        body.extend(std::iter::repeat_n(0xab, key_len));
        startup(&untagged(&body))
    };
    for ok in [4, 32, 256] {
        assert_eq!(cancel(ok), Ok(()), "{ok}");
    }
    for bad in [0, 3, 257] {
        assert_eq!(
            cancel(bad),
            Err(Error::BadValue {
                field: "cancel key length",
                value: bad as i64
            }),
            "{bad}"
        );
    }
    let mut key_data = 7i32.to_be_bytes().to_vec();
    key_data.extend_from_slice(&[1, 2]);
    assert_eq!(
        be(&tagged(b'K', &key_data)),
        Err(Error::BadValue {
            field: "cancel key length",
            value: 2
        })
    );
    // An unknown request code, and a protocol other than 3.
    assert_eq!(
        startup(&untagged(&0x04d2_1631u32.to_be_bytes())),
        Err(Error::BadValue {
            field: "startup request code",
            value: 0x04d2_1631
        })
    );
    let v2 = ProtocolVersion { major: 2, minor: 0 };
    let err = startup(&untagged(&v2.code().to_be_bytes())).unwrap_err();
    assert_eq!(err, Error::UnsupportedProtocol(v2));
    assert_eq!(err.to_string(), "unsupported frontend protocol 2.0");
    assert_eq!(err.sqlstate(), "0A000");
}

#[test]
fn misuse_is_not_the_peers_fault() {
    let ssl = fixtures::frontend("ssl-request");
    let mut framer = Framer::frontend();
    let frame = framer.next_ref(ssl).unwrap().unwrap();
    let err = frame.backend().unwrap_err();
    assert!(matches!(err, Error::Misuse { .. }));
    assert!(!err.is_peer_fault());
    assert_eq!(err.sqlstate(), "XX000");
    let peer = Error::Truncated;
    assert!(peer.is_peer_fault());
    assert_eq!(peer.sqlstate(), "08P01");
}

#[test]
fn a_framer_stops_at_the_first_bad_header() {
    // Good Sync, then garbage: the Sync is framed, then the error, then
    // nothing, however much follows.
    let mut stream = fixtures::frontend("sync").to_vec();
    stream.extend_from_slice(b"\x01\0\0\0\x04");
    stream.extend_from_slice(fixtures::frontend("sync"));
    let mut framer = client_tagged();
    let items: Vec<_> = framer.frames(&stream).collect();
    assert_eq!(items.len(), 2);
    assert!(items[0].is_ok());
    assert_eq!(items[1], Err(Error::UnknownTag(MessageTag(1))));
}
