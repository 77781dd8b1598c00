//! Signed checkpoints: round trips, a known answer, strict parsing, every
//! single-byte mutation, foreign keys, and no panics on any input.

#![allow(clippy::unwrap_used, clippy::string_slice)] // test helpers outside #[test] fns

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD as BASE64;
use ed25519_dalek::{Signer as _, SigningKey, VerifyingKey};
use proptest::prelude::*;
use sha2::{Digest, Sha256};
use vigil_seal::{
    Checkpoint, CheckpointSigner, CheckpointVerifier, Hash, KeyError, MAX_SIGNATURES, NoteError,
};

// Known answer: seed 00 01 .. 1f, key name "vigil.example/audit", the size-8
// root of the transparency-dev reference tree, one extension line.
const KAT_SEED: [u8; 32] = [
    0x00, 0x01, 0x02, 0x03, 0x04, 0x05, 0x06, 0x07, 0x08, 0x09, 0x0a, 0x0b, 0x0c, 0x0d, 0x0e, 0x0f,
    0x10, 0x11, 0x12, 0x13, 0x14, 0x15, 0x16, 0x17, 0x18, 0x19, 0x1a, 0x1b, 0x1c, 0x1d, 0x1e, 0x1f,
];
const KAT_NAME: &str = "vigil.example/audit";
const KAT_ROOT_HEX: &str = "5dc9da79a70659a9ad559cb701ded9a2ab9d823aad2f4960cfe370eff4604328";
const KAT_EXTENSION: &str = "heartbeat";
const KAT_VKEY: &str = "vigil.example/audit+d47f9cba+AQOhB7/zzhC+HXDdGOdLwJln5NYwm6UNXx3chmQSVTG4";
const KAT_KEY_ID: u32 = 0xd47f9cba;
const KAT_BODY: &str =
    "vigil.example/audit\n8\nXcnaeacGWamtVZy3Ad7ZoqudgjqtL0lgz+Nw7/RgQyg=\nheartbeat\n";
const KAT_NOTE: &str = "vigil.example/audit\n8\nXcnaeacGWamtVZy3Ad7ZoqudgjqtL0lgz+Nw7/RgQyg=\nheartbeat\n\
    \n\
    \u{2014} vigil.example/audit 1H+culqO8/dCvGtbN0kr/mGEQ+HvZsT3tV7dG6kaO62WA2hC5s8wFBuptggJmkIlu8DT0FBHhwizXpPDlqkPbkh0pQU=\n";

const WITNESS_SEED: [u8; 32] = [0x77; 32];
const WITNESS_NAME: &str = "witness.example/w1";

fn hex32(s: &str) -> Hash {
    let bytes: Vec<u8> = (0..s.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(&s[i..i + 2], 16).unwrap())
        .collect();
    bytes.try_into().unwrap()
}

fn kat_checkpoint() -> Checkpoint {
    Checkpoint {
        origin: KAT_NAME.to_owned(),
        size: 8,
        root: hex32(KAT_ROOT_HEX),
        extensions: vec![KAT_EXTENSION.to_owned()],
    }
}

fn kat_signer() -> CheckpointSigner {
    CheckpointSigner::new(KAT_NAME, &KAT_SEED).unwrap()
}

fn kat_verifier() -> CheckpointVerifier {
    CheckpointVerifier::parse(KAT_VKEY).unwrap()
}

/// Independent of the crate: the key id per c2sp.org/signed-note.
fn independent_key_id(name: &str, public: &[u8; 32]) -> [u8; 4] {
    let mut h = Sha256::new();
    h.update(name.as_bytes());
    h.update(b"\n");
    h.update([0x01]);
    h.update(public);
    h.finalize()[..4].try_into().unwrap()
}

/// Independent of the crate: a signature line over `text` by `seed`.
fn independent_sig_line(name: &str, seed: &[u8; 32], text: &str) -> String {
    let key = SigningKey::from_bytes(seed);
    let mut blob = independent_key_id(name, key.verifying_key().as_bytes()).to_vec();
    blob.extend_from_slice(&key.sign(text.as_bytes()).to_bytes());
    format!("\u{2014} {name} {}\n", BASE64.encode(blob))
}

/// A note over arbitrary `text` signed by the KAT key, built without the
/// crate, to test how the verifier parses bodies it would never write.
fn kat_signed(text: &str) -> String {
    format!(
        "{text}\n{}",
        independent_sig_line(KAT_NAME, &KAT_SEED, text)
    )
}

/// The KAT note cosigned by a witness (an unknown signer to the verifier).
fn cosigned_note() -> (String, std::ops::Range<usize>) {
    let witness_line = independent_sig_line(WITNESS_NAME, &WITNESS_SEED, KAT_BODY);
    let note = format!("{KAT_NOTE}{witness_line}");
    let start = KAT_NOTE.len();
    (note.clone(), start..note.len())
}

#[test]
fn known_answer_note_is_byte_exact() {
    let signer = kat_signer();
    assert_eq!(signer.verifier_key(), KAT_VKEY);
    assert_eq!(kat_checkpoint().body().unwrap(), KAT_BODY);
    assert_eq!(signer.sign(&kat_checkpoint()).unwrap(), KAT_NOTE);
    assert_eq!(kat_verifier().verify(KAT_NOTE), Ok(kat_checkpoint()));
    assert_eq!(kat_verifier().key_id(), KAT_KEY_ID);
    assert_eq!(kat_verifier().name(), KAT_NAME);
    assert_eq!(kat_verifier().to_string(), KAT_VKEY);
    assert_eq!(signer.verifier(), kat_verifier());
}

/// Checks the KAT note with code independent of the crate: the key id from
/// SHA-256 of the key name and public key, and the Ed25519 signature over
/// the body.
#[test]
fn known_answer_note_verifies_independently() {
    let public = SigningKey::from_bytes(&KAT_SEED).verifying_key();
    let id = independent_key_id(KAT_NAME, public.as_bytes());
    assert_eq!(u32::from_be_bytes(id), KAT_KEY_ID);

    // The vkey: name, hex id, base64 of 0x01 || public key.
    let mut typed = vec![0x01];
    typed.extend_from_slice(public.as_bytes());
    assert_eq!(
        KAT_VKEY,
        format!("{KAT_NAME}+{:08x}+{}", KAT_KEY_ID, BASE64.encode(&typed))
    );

    let (body, sigs) = KAT_NOTE.split_once("\n\n").unwrap();
    let body = format!("{body}\n");
    assert_eq!(body, KAT_BODY);
    let line = sigs.strip_suffix('\n').unwrap();
    let b64 = line
        .strip_prefix("\u{2014} ")
        .and_then(|l| l.strip_prefix(KAT_NAME))
        .and_then(|l| l.strip_prefix(' '))
        .unwrap();
    let blob = BASE64.decode(b64).unwrap();
    assert_eq!(blob.len(), 68);
    assert_eq!(blob[..4], id);
    let signature = ed25519_dalek::Signature::from_slice(&blob[4..]).unwrap();
    let verifying = VerifyingKey::from_bytes(public.as_bytes()).unwrap();
    verifying
        .verify_strict(body.as_bytes(), &signature)
        .unwrap();
    assert_eq!(
        independent_sig_line(KAT_NAME, &KAT_SEED, KAT_BODY),
        format!("{line}\n")
    );
}

#[test]
fn round_trip_with_and_without_extensions() {
    let signer = CheckpointSigner::new("log.example/a", &[3; 32]).unwrap();
    let verifier = CheckpointVerifier::parse(&signer.verifier_key()).unwrap();
    for (size, extensions) in [
        (0, vec![]),
        (1, vec!["one".to_owned()]),
        (
            u64::MAX,
            vec!["a b c".to_owned(), "ünïcødé — ok".to_owned()],
        ),
    ] {
        let cp = Checkpoint {
            origin: "log.example/a".to_owned(),
            size,
            root: [size as u8; 32],
            extensions,
        };
        let note = signer.sign(&cp).unwrap();
        assert_eq!(verifier.verify(&note), Ok(cp));
    }
}

#[test]
fn cosigned_note_verifies_with_either_key() {
    let (note, _) = cosigned_note();
    assert_eq!(kat_verifier().verify(&note), Ok(kat_checkpoint()));
    let witness = CheckpointSigner::new(WITNESS_NAME, &WITNESS_SEED).unwrap();
    assert_eq!(witness.verifier().verify(&note), Ok(kat_checkpoint()));
    // Witness line first works too; so does our line twice.
    let witness_line = independent_sig_line(WITNESS_NAME, &WITNESS_SEED, KAT_BODY);
    let our_line = independent_sig_line(KAT_NAME, &KAT_SEED, KAT_BODY);
    let reordered = format!("{KAT_BODY}\n{witness_line}{our_line}{our_line}");
    assert_eq!(kat_verifier().verify(&reordered), Ok(kat_checkpoint()));
}

#[test]
fn note_signed_by_another_key_is_rejected() {
    let no_sig = Err(NoteError::NoSignature {
        key_name: KAT_NAME.to_owned(),
    });
    // Another key with another name.
    let other = CheckpointSigner::new(WITNESS_NAME, &WITNESS_SEED).unwrap();
    assert_eq!(
        kat_verifier().verify(&other.sign(&kat_checkpoint()).unwrap()),
        no_sig
    );
    // Another key under our name: another key id, so an unknown signer.
    let impostor = CheckpointSigner::new(KAT_NAME, &[0xee; 32]).unwrap();
    assert_ne!(impostor.verifier_key(), KAT_VKEY);
    assert_eq!(
        kat_verifier().verify(&impostor.sign(&kat_checkpoint()).unwrap()),
        no_sig
    );
    // Another key's signature under our name and key id.
    let forged_sig = SigningKey::from_bytes(&[0xee; 32]).sign(KAT_BODY.as_bytes());
    let mut blob = KAT_KEY_ID.to_be_bytes().to_vec();
    blob.extend_from_slice(&forged_sig.to_bytes());
    let forged = format!("{KAT_BODY}\n\u{2014} {KAT_NAME} {}\n", BASE64.encode(blob));
    assert_eq!(
        kat_verifier().verify(&forged),
        Err(NoteError::InvalidSignature {
            key_name: KAT_NAME.to_owned()
        })
    );
    // A valid signature of ours next to a bad one of ours is still rejected.
    let both = format!("{KAT_NOTE}{}", forged.split_once("\n\n").unwrap().1);
    assert!(matches!(
        kat_verifier().verify(&both),
        Err(NoteError::InvalidSignature { .. })
    ));
    // Our signature with a truncated signature.
    let mut blob = KAT_KEY_ID.to_be_bytes().to_vec();
    blob.extend_from_slice(&[1; 63]);
    let short = format!("{KAT_BODY}\n\u{2014} {KAT_NAME} {}\n", BASE64.encode(blob));
    assert!(matches!(
        kat_verifier().verify(&short),
        Err(NoteError::InvalidSignature { .. })
    ));
}

#[test]
fn vkey_with_wrong_key_id_is_rejected() {
    let wrong = KAT_VKEY.replace("d47f9cba", "d47f9cbb");
    assert_eq!(
        CheckpointVerifier::parse(&wrong),
        Err(KeyError::KeyIdMismatch {
            stated: 0xd47f9cbb,
            computed: KAT_KEY_ID
        })
    );
    // The id depends on the name: same key, other name.
    let renamed = KAT_VKEY.replace("vigil.example/audit+", "vigil.example/audi+");
    assert!(matches!(
        CheckpointVerifier::parse(&renamed),
        Err(KeyError::KeyIdMismatch { .. })
    ));
    // Upper-case hex is the same id.
    let upper = KAT_VKEY.replace("d47f9cba", "D47F9CBA");
    assert_eq!(CheckpointVerifier::parse(&upper), Ok(kat_verifier()));
}

#[test]
fn malformed_vkeys_are_rejected_with_reasons() {
    // <name>+<id>+<base64>, and this base64 holds a '+'.
    let key_b64 = KAT_VKEY.splitn(3, '+').nth(2).unwrap();
    let mut typed = BASE64.decode(key_b64).unwrap();
    assert_eq!(typed.len(), 33);
    type Check = fn(&KeyError) -> bool;
    let cases: Vec<(String, Check)> = vec![
        ("".into(), |e| {
            matches!(e, KeyError::MalformedVerifierKey { .. })
        }),
        ("name".into(), |e| {
            matches!(e, KeyError::MalformedVerifierKey { .. })
        }),
        ("name+d47f9cba".into(), |e| {
            matches!(e, KeyError::MalformedVerifierKey { .. })
        }),
        (format!("+d47f9cba+{key_b64}"), |e| {
            matches!(e, KeyError::InvalidKeyName { .. })
        }),
        (format!("a b+d47f9cba+{key_b64}"), |e| {
            matches!(e, KeyError::InvalidKeyName { .. })
        }),
        (format!("{KAT_NAME}+d47f9cb+{key_b64}"), |e| {
            matches!(e, KeyError::MalformedVerifierKey { .. })
        }),
        (format!("{KAT_NAME}+0xd47f9cb+{key_b64}"), |e| {
            matches!(e, KeyError::MalformedVerifierKey { .. })
        }),
        (format!("{KAT_NAME}+d47f9cbaa+{key_b64}"), |e| {
            matches!(e, KeyError::MalformedVerifierKey { .. })
        }),
        (format!("{KAT_NAME}+d47f9cba+{key_b64}="), |e| {
            matches!(e, KeyError::MalformedVerifierKey { .. })
        }),
        (format!("{KAT_NAME}+d47f9cba+"), |e| {
            matches!(e, KeyError::MalformedVerifierKey { .. })
        }),
        (format!("{KAT_NAME}+d47f9cba+!!!!"), |e| {
            matches!(e, KeyError::MalformedVerifierKey { .. })
        }),
    ];
    for (vkey, expected) in &cases {
        let err = CheckpointVerifier::parse(vkey).unwrap_err();
        assert!(expected(&err), "{vkey:?}: {err}");
        assert!(!err.to_string().is_empty());
    }
    // Wrong algorithm byte.
    typed[0] = 0x04;
    let alg = format!("{KAT_NAME}+d47f9cba+{}", BASE64.encode(&typed));
    assert_eq!(
        CheckpointVerifier::parse(&alg),
        Err(KeyError::UnsupportedAlgorithm(4))
    );
    // Wrong key length.
    typed[0] = 0x01;
    let long = format!(
        "{KAT_NAME}+d47f9cba+{}",
        BASE64.encode([&typed[..], &[0]].concat())
    );
    assert!(matches!(
        CheckpointVerifier::parse(&long),
        Err(KeyError::MalformedVerifierKey { .. })
    ));
    // A small-order (weak) point: the identity, encoded as y = 1.
    let mut weak = [0u8; 33];
    weak[0] = 0x01;
    weak[1] = 0x01;
    let id = independent_key_id("w", weak[1..].try_into().unwrap());
    let weak = format!("w+{:08x}+{}", u32::from_be_bytes(id), BASE64.encode(weak));
    assert_eq!(
        CheckpointVerifier::parse(&weak),
        Err(KeyError::BadPublicKey)
    );
    // Invalid signer names.
    for name in ["", "a b", "a+b", "tab\tname", "new\nline"] {
        assert!(matches!(
            CheckpointSigner::new(name, &KAT_SEED),
            Err(KeyError::InvalidKeyName { .. })
        ));
    }
}

#[test]
fn strict_body_parsing() {
    let root = "XcnaeacGWamtVZy3Ad7ZoqudgjqtL0lgz+Nw7/RgQyg=";
    let verify = |text: &str| kat_verifier().verify(&kat_signed(text));
    assert_eq!(verify(&format!("o\n0\n{root}\n")).map(|c| c.size), Ok(0));
    for size in [
        "08",
        "+8",
        "-1",
        "",
        " 8",
        "8 ",
        "0x8",
        "18446744073709551616",
        "1_000",
    ] {
        assert_eq!(
            verify(&format!("o\n{size}\n{root}\n")),
            Err(NoteError::BadSize),
            "{size:?}"
        );
    }
    let short = BASE64.encode([1u8; 31]);
    let long = BASE64.encode([1u8; 33]);
    let trailing_bits = root.replace("yg=", "yh=");
    let unpadded = root.trim_end_matches('=');
    let url_safe = BASE64
        .encode([0xfb; 32])
        .replace('+', "-")
        .replace('/', "_");
    for bad in [
        &short,
        &long,
        &trailing_bits,
        unpadded,
        &url_safe,
        "",
        "not base64",
    ] {
        assert_eq!(
            verify(&format!("o\n8\n{bad}\n")),
            Err(NoteError::BadRoot),
            "{bad:?}"
        );
    }
    assert_eq!(
        verify(&format!("\n8\n{root}\n")),
        Err(NoteError::EmptyOrigin)
    );
    assert_eq!(verify("o\n8\n"), Err(NoteError::MissingLines));
    assert_eq!(verify("o\n"), Err(NoteError::MissingLines));
    assert_eq!(
        verify(&format!("o\n8\n{root}\n\next\n")),
        Err(NoteError::EmptyExtension { line: 4 })
    );
    assert_eq!(
        verify(&format!("o\n8\n{root}\nfine\n\n")),
        Err(NoteError::EmptyExtension { line: 5 })
    );
}

#[test]
fn strict_note_parsing() {
    let our_line = independent_sig_line(KAT_NAME, &KAT_SEED, KAT_BODY);
    let verify = |note: &str| kat_verifier().verify(note);
    let malformed = |line| Err(NoteError::MalformedSignature { line });
    // No blank line, no signatures, missing final newline.
    assert_eq!(verify(KAT_BODY), Err(NoteError::MissingSignatures));
    assert_eq!(
        verify(&format!("{KAT_BODY}{our_line}")),
        Err(NoteError::MissingSignatures)
    );
    assert_eq!(
        verify(&format!("{KAT_BODY}\n")),
        Err(NoteError::MissingSignatures)
    );
    assert_eq!(
        verify(KAT_NOTE.strip_suffix('\n').unwrap()),
        Err(NoteError::MissingSignatures)
    );
    assert_eq!(verify(""), Err(NoteError::MissingSignatures));
    // Two blank lines: the signed text runs to the last blank line, so our
    // signature no longer covers it; signed that way, the text ends with an
    // empty line.
    assert_eq!(
        verify(&format!("{KAT_BODY}\n\n{our_line}")),
        Err(NoteError::InvalidSignature {
            key_name: KAT_NAME.to_owned()
        })
    );
    assert_eq!(
        verify(&kat_signed(&format!("{KAT_BODY}\n"))),
        Err(NoteError::EmptyExtension { line: 5 })
    );
    // Control characters anywhere, CRLF line ends included.
    assert_eq!(
        verify(&KAT_NOTE.replace('\n', "\r\n")),
        Err(NoteError::ControlCharacter {
            byte: b'\r',
            offset: KAT_NAME.len()
        })
    );
    assert!(matches!(
        verify(&format!("{KAT_NOTE}\u{2014} x\tAAAAAAAA\n")),
        Err(NoteError::ControlCharacter { byte: b'\t', .. })
    ));
    // Malformed signature lines, even from unknown signers, reject the note.
    let b64 = BASE64.encode([7u8; 68]);
    for bad in [
        format!("- other {b64}"),
        format!("\u{2014}other {b64}"),
        "\u{2014} other".to_owned(),
        "\u{2014} other ".to_owned(),
        format!("\u{2014}  {b64}"),
        format!("\u{2014} ot+her {b64}"),
        format!("\u{2014} other {}", BASE64.encode([7u8; 4])),
        format!("\u{2014} other {}", &b64[1..]),
        format!("\u{2014} other {b64} trailing"),
    ] {
        let note = format!("{KAT_NOTE}{bad}\n");
        assert_eq!(verify(&note), malformed(7), "{bad:?}");
    }
    // A trailing empty line leaves no signature block after the blank line.
    assert_eq!(
        verify(&format!("{KAT_NOTE}\n")),
        Err(NoteError::MissingSignatures)
    );
    // A well-formed unknown signature is fine.
    assert_eq!(
        verify(&format!("{KAT_NOTE}\u{2014} other {b64}\n")),
        Ok(kat_checkpoint())
    );
    // At most MAX_SIGNATURES lines.
    let unknown = format!("\u{2014} other {b64}\n");
    let full = format!("{KAT_NOTE}{}", unknown.repeat(MAX_SIGNATURES - 1));
    assert_eq!(verify(&full), Ok(kat_checkpoint()));
    let over = format!("{full}{unknown}");
    assert_eq!(verify(&over), Err(NoteError::TooManySignatures));
}

#[test]
fn sign_refuses_unencodable_checkpoints() {
    let signer = kat_signer();
    let with = |f: fn(&mut Checkpoint)| {
        let mut cp = kat_checkpoint();
        f(&mut cp);
        signer.sign(&cp)
    };
    assert_eq!(with(|c| c.origin.clear()), Err(NoteError::EmptyOrigin));
    assert_eq!(
        with(|c| c.origin.push('\n')),
        Err(NoteError::UnencodableField { field: "origin" })
    );
    assert_eq!(
        with(|c| c.origin.push('\r')),
        Err(NoteError::UnencodableField { field: "origin" })
    );
    assert_eq!(
        with(|c| c.extensions.push(String::new())),
        Err(NoteError::EmptyExtension { line: 5 })
    );
    assert_eq!(
        with(|c| c.extensions.push("two\nlines".into())),
        Err(NoteError::UnencodableField { field: "extension" })
    );
}

/// Whether `line` (without its newline) is a well-formed signature line:
/// the only condition under which the verifier ignores an unknown signer.
fn well_formed_unknown_line(line: &[u8]) -> bool {
    let Ok(line) = std::str::from_utf8(line) else {
        return false;
    };
    let Some((name, b64)) = line
        .strip_prefix("\u{2014} ")
        .and_then(|l| l.split_once(' '))
    else {
        return false;
    };
    let name_ok = !name.is_empty()
        && !name
            .chars()
            .any(|c| c.is_whitespace() || c == '+' || c.is_control());
    let sig_ok = BASE64.decode(b64).is_ok_and(|b| b.len() >= 5);
    name_ok && sig_ok && !line.starts_with(&format!("\u{2014} {KAT_NAME} "))
}

/// Changes tried at every byte: each of the eight single-bit flips (which
/// covers neighbouring characters, case, space versus NUL, and broken UTF-8
/// or em dash).
const BYTE_FLIPS: [u8; 8] = [0x01, 0x02, 0x04, 0x08, 0x10, 0x20, 0x40, 0x80];

/// Every single-byte change (see [`BYTE_FLIPS`], and deletion) of a
/// cosigned note. Bytes of the text, the blank line and our signature line
/// are covered by our signature or by the format, so every change is
/// rejected. In the witness's line a change is ignored exactly when the line
/// stays a well-formed signature line (another unknown signer: a different
/// name, or different signature bytes); any other change is rejected.
#[test]
fn every_single_byte_mutation_is_rejected_or_ignored() {
    let (note, witness) = cosigned_note();
    let verifier = kat_verifier();
    let original = kat_checkpoint();
    let (mut rejected, mut ignored) = (0, 0);
    for pos in 0..note.len() {
        let mut variants: Vec<Vec<u8>> = BYTE_FLIPS
            .iter()
            .map(|flip| {
                let mut b = note.as_bytes().to_vec();
                b[pos] ^= flip;
                b
            })
            .collect();
        let mut deleted = note.as_bytes().to_vec();
        deleted.remove(pos);
        variants.push(deleted);
        for mutated in variants {
            let result = std::str::from_utf8(&mutated)
                .map_err(|_| ())
                .and_then(|s| verifier.verify(s).map_err(|_| ()));
            let in_witness = witness.contains(&pos) && pos + 1 < note.len();
            let expect_ignored = in_witness && {
                // The witness line of the mutated note, without its newline.
                let line_end = mutated.len() - 1;
                well_formed_unknown_line(&mutated[witness.start..line_end])
            };
            if expect_ignored {
                assert_eq!(result, Ok(original.clone()), "byte {pos} should be ignored");
                ignored += 1;
            } else {
                assert_eq!(result, Err(()), "byte {pos} mutation accepted: {mutated:?}");
                rejected += 1;
            }
        }
    }
    // Both outcomes really occur.
    assert!(
        ignored > 500 && rejected > 2000,
        "ignored {ignored}, rejected {rejected}"
    );
}

fn arb_checkpoint() -> impl Strategy<Value = Checkpoint> {
    (
        "[a-z0-9./-]{1,40}",
        any::<u64>(),
        any::<[u8; 32]>(),
        prop::collection::vec("[^\\x00-\\x1f]{1,30}", 0..4),
    )
        .prop_map(|(origin, size, root, extensions)| Checkpoint {
            origin,
            size,
            root,
            extensions,
        })
}

/// A random edit: replace, insert or delete a byte at a position.
fn arb_edit() -> impl Strategy<Value = (u8, prop::sample::Index, u8)> {
    (0u8..3, any::<prop::sample::Index>(), any::<u8>())
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(256))]

    #[test]
    fn any_checkpoint_round_trips(cp in arb_checkpoint()) {
        let signer = kat_signer();
        let note = signer.sign(&cp).unwrap();
        prop_assert_eq!(kat_verifier().verify(&note), Ok(cp));
    }

    #[test]
    fn random_input_never_panics(bytes in prop::collection::vec(any::<u8>(), 0..400)) {
        let verifier = kat_verifier();
        let text = String::from_utf8_lossy(&bytes);
        prop_assert!(verifier.verify(&text).is_err());
        // The same bytes behind a valid-looking body and blank line.
        let note = format!("{KAT_BODY}\n{text}");
        let _ = verifier.verify(&note);
        let _ = CheckpointVerifier::parse(&text);
    }

    /// Random edits of a real cosigned note never panic and never yield a
    /// checkpoint other than the signed one.
    #[test]
    fn mutated_notes_never_panic_or_forge(edits in prop::collection::vec(arb_edit(), 1..6)) {
        let (note, _) = cosigned_note();
        let mut bytes = note.into_bytes();
        for (kind, at, byte) in edits {
            match kind {
                0 if !bytes.is_empty() => {
                    let i = at.index(bytes.len());
                    bytes[i] = byte;
                }
                1 => bytes.insert(at.index(bytes.len() + 1), byte),
                _ if !bytes.is_empty() => {
                    bytes.remove(at.index(bytes.len()));
                }
                _ => {}
            }
        }
        let text = String::from_utf8_lossy(&bytes);
        if let Ok(cp) = kat_verifier().verify(&text) {
            prop_assert_eq!(cp, kat_checkpoint());
        }
    }
}
