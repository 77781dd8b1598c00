//! Property tests: random bytes and random mutations of the fixtures never
//! make the framer or a decoder panic, framing in pieces agrees with framing
//! whole, whatever decodes re-encodes to the same bytes; and messages built
//! from random parts decode back to those parts.

#![allow(clippy::unwrap_used)] // helpers outside #[test] fns, as in tests

mod fixtures;

use bytes::BytesMut;
use proptest::prelude::*;
use vigil_pg::{
    BackendMessage, Bind, DataRow, Diagnostic, FieldCode, Framer, FrontendMessage, MessageTag,
    ProtocolVersion, Startup, fuzz_wire,
};

/// Every fixture with the control byte of [`fuzz_wire`] that frames it:
/// bit 0 for a server's stream, bit 1 for a client's after startup.
fn corpus() -> Vec<(u8, Vec<u8>)> {
    let mut all = Vec::new();
    for (name, bytes) in fixtures::FRONTEND {
        let control = if fixtures::is_startup(name) { 0 } else { 2 };
        all.push((control, bytes.to_vec()));
    }
    for (_, bytes) in fixtures::BACKEND {
        all.push((1, bytes.to_vec()));
    }
    for (_, fe, be) in fixtures::SESSIONS {
        all.push((0, fe.to_vec()));
        all.push((1, be.to_vec()));
    }
    all
}

#[derive(Clone, Debug)]
enum Mutation {
    Flip {
        at: usize,
        bit: u8,
    },
    Set {
        at: usize,
        byte: u8,
    },
    /// Overwrite four bytes with a big-endian integer, aimed at length and
    /// count fields.
    SetI32 {
        at: usize,
        value: i32,
    },
    Insert {
        at: usize,
        byte: u8,
    },
    Delete {
        at: usize,
    },
    Truncate {
        at: usize,
    },
}

fn mutation() -> impl Strategy<Value = Mutation> {
    let interesting = prop_oneof![
        Just(-2),
        Just(-1),
        Just(0),
        Just(1),
        Just(3),
        Just(4),
        Just(5),
        Just(0xffff),
        Just(0x0001_0000),
        Just(0x3fff_fffe),
        Just(0x3fff_ffff),
        Just(i32::MAX),
        Just(i32::MIN),
        any::<i32>(),
    ];
    prop_oneof![
        (any::<usize>(), 0..8u8).prop_map(|(at, bit)| Mutation::Flip { at, bit }),
        (any::<usize>(), any::<u8>()).prop_map(|(at, byte)| Mutation::Set { at, byte }),
        (any::<usize>(), interesting).prop_map(|(at, value)| Mutation::SetI32 { at, value }),
        (any::<usize>(), any::<u8>()).prop_map(|(at, byte)| Mutation::Insert { at, byte }),
        any::<usize>().prop_map(|at| Mutation::Delete { at }),
        any::<usize>().prop_map(|at| Mutation::Truncate { at }),
    ]
}

fn apply(data: &mut Vec<u8>, m: &Mutation) {
    let n = data.len();
    match *m {
        Mutation::Flip { at, bit } if n > 0 => data[at % n] ^= 1 << bit,
        Mutation::Set { at, byte } if n > 0 => data[at % n] = byte,
        Mutation::SetI32 { at, value } if n >= 4 => {
            let at = at % (n - 3);
            data[at..at + 4].copy_from_slice(&value.to_be_bytes());
        }
        Mutation::Insert { at, byte } => data.insert(at % (n + 1), byte),
        Mutation::Delete { at } if n > 0 => {
            data.remove(at % n);
        }
        Mutation::Truncate { at } => data.truncate(at % (n + 1)),
        _ => {}
    }
}

/// Every decoder on `body` under every tag: no panic, and whatever decodes
/// re-encodes to the body it came from.
fn decode_under_every_tag(body: &[u8]) {
    let mut out = BytesMut::new();
    for b in 0..=255u8 {
        let tag = MessageTag(b);
        if let Ok(m) = FrontendMessage::decode(tag, body) {
            out.clear();
            m.encode(&mut out).unwrap();
            assert_eq!(&out[5..], body);
        }
        if let Ok(m) = BackendMessage::decode(tag, body) {
            out.clear();
            m.encode(&mut out).unwrap();
            assert_eq!(&out[5..], body);
        }
    }
    if let Ok(m) = FrontendMessage::decode_startup(body) {
        out.clear();
        m.encode(&mut out).unwrap();
        assert_eq!(&out[4..], body);
    }
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(2000))]

    #[test]
    fn random_bytes(data in proptest::collection::vec(any::<u8>(), 0..600)) {
        fuzz_wire(&data);
    }

    /// Random bytes after a plausible header, so decoders see bodies.
    #[test]
    fn random_bodies(
        tag in any::<u8>(),
        body in proptest::collection::vec(any::<u8>(), 0..200),
        control in any::<u8>(),
    ) {
        let mut data = vec![control, tag];
        data.extend_from_slice(&(body.len() as i32 + 4).to_be_bytes());
        data.extend_from_slice(&body);
        fuzz_wire(&data);
        decode_under_every_tag(&body);
    }
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(3000))]

    #[test]
    fn mutated_fixtures(
        pick in any::<prop::sample::Index>(),
        chunk in 0..64u8,
        mutations in proptest::collection::vec(mutation(), 1..6),
    ) {
        let corpus = corpus();
        let (control, mut data) = corpus[pick.index(corpus.len())].clone();
        for m in &mutations {
            apply(&mut data, m);
        }
        let mut input = vec![control | (chunk << 2)];
        input.extend_from_slice(&data);
        fuzz_wire(&input);
        // The other direction and phase get the same bytes too.
        input[0] ^= 1;
        fuzz_wire(&input);
        input[0] ^= 3;
        fuzz_wire(&input);
    }
}

fn text() -> impl Strategy<Value = String> {
    // Any characters but NUL, which no protocol string can hold.
    proptest::string::string_regex("[^\u{0}]{0,40}").unwrap()
}

fn value() -> impl Strategy<Value = Option<Vec<u8>>> {
    proptest::option::weighted(0.8, proptest::collection::vec(any::<u8>(), 0..64))
}

proptest! {
    #[test]
    fn data_rows_built_from_parts(columns in proptest::collection::vec(value(), 0..40)) {
        let mut out = BytesMut::new();
        DataRow::write(&mut out, columns.iter().map(|c| c.as_deref())).unwrap();
        let frame = Framer::backend().next_ref(&out).unwrap().unwrap();
        prop_assert_eq!(frame.len(), out.len());
        let BackendMessage::DataRow(row) = frame.backend().unwrap() else {
            panic!("not a DataRow")
        };
        prop_assert_eq!(row.columns.len(), columns.len());
        let got: Vec<Option<Vec<u8>>> = row.columns.iter().map(|c| c.map(<[u8]>::to_vec)).collect();
        prop_assert_eq!(got, columns);
    }

    #[test]
    fn binds_built_from_parts(
        portal in text(),
        statement in text(),
        params in proptest::collection::vec(value(), 0..20),
        formats in proptest::collection::vec(0..2i16, 0..20),
        results in proptest::collection::vec(0..2i16, 0..5),
    ) {
        let mut out = BytesMut::new();
        Bind::write(&mut out, &portal, &statement, &formats, params.iter().map(|p| p.as_deref()), &results).unwrap();
        let mut framer = Framer::frontend();
        framer.skip_startup();
        let frame = framer.next_ref(&out).unwrap().unwrap();
        let FrontendMessage::Bind(b) = frame.frontend().unwrap() else {
            panic!("not a Bind")
        };
        prop_assert_eq!(b.portal, portal.as_str());
        prop_assert_eq!(b.statement, statement.as_str());
        prop_assert_eq!(b.param_formats.iter().collect::<Vec<_>>(), formats);
        prop_assert_eq!(b.result_formats.iter().collect::<Vec<_>>(), results);
        let got: Vec<Option<Vec<u8>>> = b.params.iter().map(|c| c.map(<[u8]>::to_vec)).collect();
        prop_assert_eq!(got, params);
    }

    #[test]
    fn startups_built_from_parts(
        params in proptest::collection::vec((text().prop_filter("a name", |n| !n.is_empty()), text()), 0..8),
        minor in 0..3u16,
    ) {
        let mut out = BytesMut::new();
        let version = ProtocolVersion { major: 3, minor };
        Startup::write(&mut out, version, params.iter().map(|(n, v)| (n.as_str(), v.as_str()))).unwrap();
        let frame = Framer::frontend().next_ref(&out);
        // Past the startup limit the framer refuses; otherwise every pair comes back.
        if out.len() > 10_004 {
            prop_assert!(frame.is_err());
        } else {
            let FrontendMessage::Startup(s) = frame.unwrap().unwrap().frontend().unwrap() else {
                panic!("not a StartupMessage")
            };
            prop_assert_eq!(s.version, version);
            let got: Vec<(String, String)> = s.params.iter().map(|(n, v)| (n.to_owned(), v.to_owned())).collect();
            prop_assert_eq!(got, params);
        }
    }

    #[test]
    fn diagnostics_built_from_parts(
        fields in proptest::collection::vec((1..=255u8, text()), 0..12),
        notice in any::<bool>(),
    ) {
        let tag = if notice { MessageTag::NOTICE_RESPONSE } else { MessageTag::ERROR_RESPONSE };
        let parts: Vec<(FieldCode, &str)> = fields.iter().map(|(c, v)| (FieldCode(*c), v.as_str())).collect();
        let mut out = BytesMut::new();
        Diagnostic::write(&mut out, tag, &parts).unwrap();
        let frame = Framer::backend().next_ref(&out).unwrap().unwrap();
        let d = match frame.backend().unwrap() {
            BackendMessage::ErrorResponse(d) if !notice => d,
            BackendMessage::NoticeResponse(d) if notice => d,
            other => panic!("{other:?}"),
        };
        prop_assert_eq!(d.iter().collect::<Vec<_>>(), parts);
    }
}
