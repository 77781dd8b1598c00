//! Poison values, the registry and the scanner.

#![allow(clippy::unwrap_used)]

use std::collections::HashSet;
use std::os::unix::fs::PermissionsExt;

use proptest::prelude::*;
use vigil_detect::poison::{
    Entry, PoisonError, PoisonKey, PoisonKind, PoisonSet, Reaction, Scanner,
};

fn key() -> PoisonKey {
    PoisonKey::new(1, &[7u8; 32])
}

fn set_of_every_kind(n: usize) -> PoisonSet {
    let key = key();
    let mut set = PoisonSet::new();
    for _ in 0..n {
        for kind in PoisonKind::ALL {
            set.add(&key, kind, None).unwrap();
        }
    }
    set
}

#[test]
fn values_verify_and_look_like_their_kind() {
    let key = key();
    for _ in 0..200 {
        for kind in PoisonKind::ALL {
            let v = key.make(kind).unwrap();
            assert!(key.check(kind, &v), "{kind}: {v}");
            match kind {
                PoisonKind::Email => {
                    let (local, domain) = v.split_once('@').unwrap();
                    let (first, rest) = local.split_once('.').unwrap();
                    assert!(first.bytes().all(|b| b.is_ascii_lowercase()), "{v}");
                    let digits = rest.trim_start_matches(|c: char| c.is_ascii_lowercase());
                    assert_eq!(digits.len(), 6, "{v}");
                    assert!(digits.bytes().all(|b| b.is_ascii_digit()), "{v}");
                    let (name, tld) = domain.split_once('.').unwrap();
                    assert!(name.len() >= 5 && ["com", "net", "org", "io"].contains(&tld));
                }
                PoisonKind::Uuid => {
                    assert_eq!(v.len(), 36);
                    let b = v.as_bytes();
                    assert_eq!((b[8], b[13], b[18], b[23]), (b'-', b'-', b'-', b'-'));
                    assert_eq!(b[14], b'4', "version 4: {v}");
                    assert!(b"89ab".contains(&b[19]), "RFC 4122 variant: {v}");
                    assert!(
                        v.bytes()
                            .all(|c| c == b'-' || c.is_ascii_digit() || (b'a'..=b'f').contains(&c))
                    );
                }
                PoisonKind::Int => {
                    let n: i64 = v.parse().unwrap();
                    assert!(n >= 1 << 62, "{v}");
                    assert_eq!(v.len(), 19);
                }
                PoisonKind::Text => {
                    let parts: Vec<&str> = v.split(' ').collect();
                    assert_eq!(parts.len(), 5, "{v}");
                    assert!(parts[0].as_bytes()[0].is_ascii_uppercase());
                    assert!(
                        parts[1..4]
                            .iter()
                            .all(|w| w.bytes().all(|b| b.is_ascii_lowercase()))
                    );
                    assert!(parts[4].len() == 6 && parts[4].bytes().all(|b| b.is_ascii_digit()));
                }
                PoisonKind::Bytea => {
                    assert!(v.starts_with("\\x") && v.len() == 2 + 48, "{v}");
                }
            }
        }
    }
}

#[test]
fn values_differ() {
    let key = key();
    for kind in [
        PoisonKind::Uuid,
        PoisonKind::Int,
        PoisonKind::Text,
        PoisonKind::Bytea,
    ] {
        let all: HashSet<String> = (0..500).map(|_| key.make(kind).unwrap()).collect();
        assert_eq!(all.len(), 500, "{kind}");
    }
    // The registry never holds the same value twice, even for the kind with
    // the smallest body (e-mail: about 400,000 bodies).
    let set = set_of_every_kind(300);
    let values: HashSet<&str> = set.entries().iter().map(|e| e.value.as_str()).collect();
    assert_eq!(values.len(), set.len());
    let ids: HashSet<u32> = set.entries().iter().map(|e| e.id).collect();
    assert_eq!(ids.len(), set.len());
}

#[test]
fn the_tag_depends_on_the_key_and_the_kind() {
    let key = key();
    let other = PoisonKey::new(1, &[8u8; 32]);
    let seed = [3u8; 16];
    for kind in PoisonKind::ALL {
        let v = key.make_from(kind, &seed);
        assert_eq!(v, key.make_from(kind, &seed), "deterministic");
        assert_ne!(v, other.make_from(kind, &seed), "{kind}");
        assert!(!other.check(kind, &v), "{kind}: another key");
        for k in PoisonKind::ALL.into_iter().filter(|k| *k != kind) {
            assert!(!key.check(k, &v), "{kind} read as {k}");
        }
    }
    // Real-looking values without the tag.
    for (kind, v) in [
        (PoisonKind::Email, "anna.smith271650@bluemail.com"),
        (PoisonKind::Uuid, "3f0c9a1e-52b7-4c1d-a0e4-7b9d2c6f8e31"),
        (PoisonKind::Int, "6120949170339112467"),
        (PoisonKind::Text, "Amber harbor quiet lantern 058213"),
        (PoisonKind::Bytea, "\\x00"),
        (PoisonKind::Email, "not an address"),
    ] {
        assert!(!key.check(kind, v), "{v}");
    }
    // One changed character breaks it.
    for kind in PoisonKind::ALL {
        let v = key.make(kind).unwrap();
        let mut b = v.clone().into_bytes();
        let last = b.len() - 1;
        b[last] = if b[last] == b'1' { b'2' } else { b'1' };
        assert!(!key.check(kind, &String::from_utf8(b).unwrap()), "{kind}");
    }
}

#[test]
fn kinds_and_reactions_have_names() {
    for k in PoisonKind::ALL {
        assert_eq!(PoisonKind::from_name(k.as_str()), Some(k));
    }
    for r in Reaction::ALL {
        assert_eq!(Reaction::from_name(r.as_str()), Some(r));
    }
    assert_eq!(PoisonKind::from_name("date"), None);
    assert_eq!(Reaction::from_name("kill"), None);
}

#[test]
fn registry_round_trips_with_mode_0600() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("poison.json");
    assert!(PoisonSet::load_or_empty(&path).unwrap().is_empty());
    let mut set = set_of_every_kind(2);
    set.add(&key(), PoisonKind::Email, Some("customers.email"))
        .unwrap();
    set.save(&path).unwrap();
    let mode = std::fs::metadata(&path).unwrap().permissions().mode() & 0o777;
    assert_eq!(mode, 0o600);
    let back = PoisonSet::load(&path).unwrap();
    assert_eq!(back, set);
    back.verify(&[key()]).unwrap();
    assert_eq!(
        back.get(11).unwrap().location.as_deref(),
        Some("customers.email")
    );
    assert_eq!(back.key_versions().into_iter().collect::<Vec<_>>(), vec![1]);

    std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o644)).unwrap();
    let e = PoisonSet::load(&path).unwrap_err();
    assert!(
        matches!(e, PoisonError::Permissions { mode: 0o644, .. }),
        "{e}"
    );
    assert!(e.to_string().contains("chmod 600"), "{e}");
}

#[test]
fn a_tampered_registry_is_refused() {
    let set = set_of_every_kind(2);
    let json = set.to_json();
    let victim = &set.entries()[3];
    // A value changed in place, and a plain value slipped in (to make vigil
    // fire on real data).
    let other = PoisonKey::new(1, &[9u8; 32]).make(victim.kind).unwrap();
    let changed = PoisonSet::from_json(json.replace(&victim.value, &other).as_bytes()).unwrap();
    let e = changed.verify(&[key()]).unwrap_err();
    assert!(
        matches!(&e, PoisonError::Tampered { ids } if ids == &[victim.id]),
        "{e}"
    );
    assert!(
        !e.to_string().contains(&other),
        "the message names ids, not values"
    );

    let mut entries: Vec<Entry> = set.entries().to_vec();
    entries.push(Entry {
        id: 99,
        kind: PoisonKind::Email,
        value: "admin@example.com".to_owned(),
        key_version: 1,
        location: None,
    });
    let text = format!(
        "{{\"format\":\"vigil-poison-registry-v1\",\"entries\":{}}}",
        serde_json_entries(&entries)
    );
    let forged = PoisonSet::from_json(text.as_bytes()).unwrap();
    assert!(matches!(
        forged.verify(&[key()]),
        Err(PoisonError::Tampered { ids }) if ids == [99]
    ));
    // Verified with another key, nothing verifies.
    let e = set.verify(&[PoisonKey::new(1, &[9u8; 32])]).unwrap_err();
    assert!(matches!(e, PoisonError::Tampered { ids } if ids.len() == set.len()));
    // A version that was not loaded.
    assert!(matches!(
        set.verify(&[PoisonKey::new(2, &[7u8; 32])]),
        Err(PoisonError::MissingKey { version: 1 })
    ));
    // Duplicates and foreign files.
    let dup = json.replacen("\"id\": 2,", "\"id\": 1,", 1);
    assert!(PoisonSet::from_json(dup.as_bytes()).is_err());
    assert!(PoisonSet::from_json(b"{\"format\":\"x\",\"entries\":[]}").is_err());
    assert!(PoisonSet::from_json(b"[]").is_err());
}

fn serde_json_entries(entries: &[Entry]) -> String {
    let parts: Vec<String> = entries
        .iter()
        .map(|e| {
            format!(
                "{{\"id\":{},\"kind\":\"{}\",\"value\":{:?},\"key_version\":{}}}",
                e.id, e.kind, e.value, e.key_version
            )
        })
        .collect();
    format!("[{}]", parts.join(","))
}

#[test]
fn the_scanner_finds_every_encoding() {
    let set = set_of_every_kind(3);
    let scanner = Scanner::new(&set);
    assert_eq!(scanner.entries(), set.len());
    let mut hits = Vec::new();
    for e in set.entries() {
        let encodings = e.encodings();
        match e.kind {
            PoisonKind::Text | PoisonKind::Email => assert_eq!(encodings.len(), 1),
            PoisonKind::Uuid => {
                assert_eq!(encodings[3].len(), 16);
                assert!(encodings.contains(&e.value.to_uppercase().into_bytes()));
            }
            PoisonKind::Int => {
                let v: i64 = e.value.parse().unwrap();
                assert_eq!(encodings[1], v.to_be_bytes());
            }
            PoisonKind::Bytea => {
                assert_eq!(encodings[0].len(), 24);
                assert_eq!(encodings[1], e.value.as_bytes()[2..]);
            }
        }
        for enc in encodings {
            // Inside a DataRow-like frame with other columns around it.
            let mut row = b"D\0\0\0\x40\0\x03\0\0\0\x05hello".to_vec();
            row.extend_from_slice(&(enc.len() as u32).to_be_bytes());
            row.extend_from_slice(&enc);
            row.extend_from_slice(b"\0\0\0\x02ok");
            hits.clear();
            assert!(scanner.scan(&row, &mut hits), "{} {:?}", e.kind, enc);
            assert_eq!(hits, [e.id]);
            assert_eq!(scanner.find(&row), Some(e.id));
        }
    }
    // COPY text escapes bytea's backslash; the hex digits still match.
    let b = set
        .entries()
        .iter()
        .find(|e| e.kind == PoisonKind::Bytea)
        .unwrap();
    let copy_line = format!("1\t\\{}\tx\n", b.value);
    assert_eq!(scanner.find(copy_line.as_bytes()), Some(b.id));
    // A value inside a larger text, and several in one row.
    let t = set
        .entries()
        .iter()
        .find(|e| e.kind == PoisonKind::Text)
        .unwrap();
    let m = set
        .entries()
        .iter()
        .find(|e| e.kind == PoisonKind::Email)
        .unwrap();
    let big = format!(
        "Dear customer, re: {} -- contact {}, thanks",
        t.value, m.value
    );
    hits.clear();
    assert!(scanner.scan(big.as_bytes(), &mut hits));
    hits.sort_unstable();
    let mut want = vec![t.id, m.id];
    want.sort_unstable();
    assert_eq!(hits, want);
}

#[test]
fn the_scanner_ignores_ordinary_data() {
    let set = set_of_every_kind(20);
    let scanner = Scanner::new(&set);
    let other = PoisonKey::new(1, &[42u8; 32]);
    let mut hits = Vec::new();
    for i in 0..2000u64 {
        // Values of the same shapes made with another key, and plain rows.
        for kind in PoisonKind::ALL {
            let v = other.make(kind).unwrap();
            assert_eq!(scanner.find(v.as_bytes()), None);
        }
        let row = format!("{i}\tuser{i}@example.com\t{}\t2024-01-01", i * 7919);
        assert!(!scanner.scan(row.as_bytes(), &mut hits));
        assert!(!scanner.scan(&i.to_be_bytes(), &mut hits));
    }
    assert!(hits.is_empty());
    let empty = Scanner::new(&PoisonSet::new());
    assert!(empty.is_empty());
    assert!(!empty.scan(b"anything", &mut hits));
    assert!(!empty.stream().feed(&empty, b"anything", &mut hits));
}

#[test]
fn the_stream_scanner_finds_values_split_between_chunks() {
    let set = set_of_every_kind(1);
    let scanner = Scanner::new(&set);
    let mut stream = scanner.stream();
    assert_eq!(stream.overlap(), scanner.max_len() - 1);
    let t = set
        .entries()
        .iter()
        .find(|e| e.kind == PoisonKind::Text)
        .unwrap();
    let mut data = vec![b'x'; 100];
    data.extend_from_slice(t.value.as_bytes());
    data.extend_from_slice(&[b'y'; 100]);
    for cut in 95..(105 + t.value.len()) {
        stream.reset();
        let mut hits = Vec::new();
        let a = stream.feed(&scanner, &data[..cut], &mut hits);
        let b = stream.feed(&scanner, &data[cut..], &mut hits);
        assert!(a || b, "cut at {cut}");
        assert_eq!(hits, [t.id], "cut at {cut}");
        // Found once, in the chunk where it ends.
        assert!(!(a && b), "cut at {cut}");
    }
    // One byte at a time.
    stream.reset();
    let mut hits = Vec::new();
    let found: usize = data
        .iter()
        .map(|b| usize::from(stream.feed(&scanner, std::slice::from_ref(b), &mut hits)))
        .sum();
    assert_eq!((found, hits), (1, vec![t.id]));
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 64, .. ProptestConfig::default() })]

    /// However a stream is cut, the stream scanner finds what a scan of the
    /// whole finds.
    #[test]
    fn chunking_does_not_change_the_hits(
        noise in proptest::collection::vec(any::<u8>(), 0..600),
        inserts in proptest::collection::vec((0usize..10, 0usize..600, 0usize..8), 0..4),
        cuts in proptest::collection::vec(0usize..1200, 0..12),
    ) {
        let set = set_of_every_kind(2);
        let scanner = Scanner::new(&set);
        let mut data = noise;
        for (entry, at, encoding) in inserts {
            let e = &set.entries()[entry];
            let encodings = e.encodings();
            let enc = &encodings[encoding % encodings.len()];
            let at = at.min(data.len());
            data.splice(at..at, enc.iter().copied());
        }
        let mut whole = Vec::new();
        scanner.scan(&data, &mut whole);
        whole.sort_unstable();

        let mut cuts: Vec<usize> = cuts.into_iter().map(|c| c.min(data.len())).collect();
        cuts.push(0);
        cuts.push(data.len());
        cuts.sort_unstable();
        let mut stream = scanner.stream();
        let mut streamed = Vec::new();
        for w in cuts.windows(2) {
            stream.feed(&scanner, &data[w[0]..w[1]], &mut streamed);
        }
        streamed.sort_unstable();
        prop_assert_eq!(streamed, whole);
    }
}
