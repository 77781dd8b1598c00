//! C2SP tlog-checkpoint bodies in C2SP signed notes, signed with Ed25519.
//!
//! A signed checkpoint (c2sp.org/tlog-checkpoint, c2sp.org/signed-note):
//!
//! ```text
//! <origin>\n                      non-empty, no control characters
//! <size>\n                        decimal, no leading zeros
//! <base64(root)>\n                standard base64 of the 32-byte RFC 6962 root
//! [<extension>\n]...              optional, each non-empty
//! \n                              blank line ends the signed text
//! — <key name> <base64(key id (4 bytes) || Ed25519 signature (64 bytes))>\n
//! [more signature lines]
//! ```
//!
//! The dash is U+2014 EM DASH followed by a space. The signature covers the
//! text up to and including its last newline, without the blank line. The key
//! id is the first four bytes of `SHA-256(key name || "\n" || 0x01 || public
//! key)`, and the verifier key ("vkey") is
//! `<key name>+<key id, 8 hex digits>+<base64(0x01 || public key)>`.

use std::fmt;
use std::str::FromStr;

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD as BASE64;
use ed25519_dalek::{Signature, Signer as _, SigningKey, VerifyingKey};
use sha2::{Digest, Sha256};
use zeroize::ZeroizeOnDrop;

use crate::merkle::Hash;

/// Algorithm byte of Ed25519 keys in signed notes.
const ALG_ED25519: u8 = 0x01;

/// Prefix of every signature line: U+2014 EM DASH and a space.
const SIG_PREFIX: &str = "\u{2014} ";

/// Most signature lines a note may carry (the limit of Go's `sumdb/note`).
pub const MAX_SIGNATURES: usize = 100;

/// A tlog checkpoint: the commitment to a log's state at one size.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Checkpoint {
    /// Identifies the log, e.g. `vigil.example.com/audit/db1`. Non-empty,
    /// no control characters.
    pub origin: String,
    /// Number of leaves in the tree.
    pub size: u64,
    /// RFC 6962 root hash of the tree at `size`.
    pub root: Hash,
    /// Optional extension lines, each non-empty, no control characters.
    pub extensions: Vec<String>,
}

impl Checkpoint {
    /// Returns the checkpoint body (the text that is signed), or an error if
    /// a field cannot be represented.
    pub fn body(&self) -> Result<String, NoteError> {
        if self.origin.is_empty() {
            return Err(NoteError::EmptyOrigin);
        }
        if has_control(&self.origin) {
            return Err(NoteError::UnencodableField { field: "origin" });
        }
        let mut body = format!(
            "{}\n{}\n{}\n",
            self.origin,
            self.size,
            BASE64.encode(self.root)
        );
        for (i, ext) in self.extensions.iter().enumerate() {
            if ext.is_empty() {
                return Err(NoteError::EmptyExtension { line: i + 4 });
            }
            if has_control(ext) {
                return Err(NoteError::UnencodableField { field: "extension" });
            }
            body.push_str(ext);
            body.push('\n');
        }
        Ok(body)
    }

    /// Parses a checkpoint body; `text` ends with `\n`.
    fn parse_body(text: &str) -> Result<Self, NoteError> {
        let lines = text.strip_suffix('\n').ok_or(NoteError::MissingLines)?;
        let mut lines = lines.split('\n');
        let (Some(origin), Some(size), Some(root)) = (lines.next(), lines.next(), lines.next())
        else {
            return Err(NoteError::MissingLines);
        };
        if origin.is_empty() {
            return Err(NoteError::EmptyOrigin);
        }
        let size = parse_decimal(size).ok_or(NoteError::BadSize)?;
        let root = BASE64
            .decode(root)
            .ok()
            .and_then(|bytes| Hash::try_from(bytes.as_slice()).ok())
            .ok_or(NoteError::BadRoot)?;
        let mut extensions = Vec::new();
        for (i, ext) in lines.enumerate() {
            if ext.is_empty() {
                return Err(NoteError::EmptyExtension { line: i + 4 });
            }
            extensions.push(ext.to_owned());
        }
        Ok(Self {
            origin: origin.to_owned(),
            size,
            root,
            extensions,
        })
    }
}

/// Parses a canonical decimal `u64`: ASCII digits only, no sign, no leading
/// zero unless the number is 0.
fn parse_decimal(s: &str) -> Option<u64> {
    let canonical =
        !s.is_empty() && s.bytes().all(|b| b.is_ascii_digit()) && (s == "0" || !s.starts_with('0'));
    if canonical { s.parse().ok() } else { None }
}

/// Whether `s` holds an ASCII control character, newline included: used for
/// fields that must fit on one note line.
fn has_control(s: &str) -> bool {
    s.bytes().any(|b| b < 0x20)
}

/// Whether `name` is a valid key name: non-empty, no whitespace, no `+`, no
/// control characters.
fn is_valid_key_name(name: &str) -> bool {
    !name.is_empty()
        && !name
            .chars()
            .any(|c| c.is_whitespace() || c == '+' || c.is_control())
}

/// The Ed25519 key id: the first four bytes of
/// `SHA-256(name || "\n" || 0x01 || public key)`.
fn key_id(name: &str, key: &VerifyingKey) -> [u8; 4] {
    let digest = Sha256::new()
        .chain_update(name.as_bytes())
        .chain_update(b"\n")
        .chain_update([ALG_ED25519])
        .chain_update(key.as_bytes())
        .finalize();
    let mut id = [0; 4];
    id.copy_from_slice(&digest[..4]);
    id
}

/// Formats a verifier key string: `<name>+<key id hex>+<base64(0x01 || key)>`.
fn format_vkey(name: &str, id: [u8; 4], key: &VerifyingKey) -> String {
    let mut typed = Vec::with_capacity(33);
    typed.push(ALG_ED25519);
    typed.extend_from_slice(key.as_bytes());
    format!(
        "{name}+{:08x}+{}",
        u32::from_be_bytes(id),
        BASE64.encode(typed)
    )
}

/// Why a verifier key or signer could not be set up (configuration errors,
/// as opposed to [`NoteError`] for notes received).
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum KeyError {
    /// The key bytes are not a usable Ed25519 public key.
    #[error("the verifier key does not hold a valid Ed25519 public key (bad or weak point)")]
    BadPublicKey,
    /// The key name is empty or contains whitespace, `+` or a control
    /// character.
    #[error(
        "key name {name:?} is invalid: it must be non-empty, without whitespace, '+' or control characters"
    )]
    InvalidKeyName {
        /// The rejected name.
        name: String,
    },
    /// The key id in the vkey is not the one computed from its name and key:
    /// the vkey was mistyped or tampered with.
    #[error(
        "verifier key states key id {stated:08x}, but its name and public key give {computed:08x}"
    )]
    KeyIdMismatch {
        /// The key id written in the vkey.
        stated: u32,
        /// The key id computed from the name and the public key.
        computed: u32,
    },
    /// The vkey is not `<name>+<8 hex digits>+<base64 key>`.
    #[error(
        "verifier key is malformed: {reason}; expected <name>+<8 hex digits>+<base64(0x01 || 32-byte key)>"
    )]
    MalformedVerifierKey {
        /// What part is wrong.
        reason: &'static str,
    },
    /// The vkey names a signature algorithm other than Ed25519.
    #[error("verifier key algorithm {0:#04x} is not supported; only Ed25519 (0x01) is")]
    UnsupportedAlgorithm(u8),
}

/// Why a signed note was rejected.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum NoteError {
    /// The root line is not the standard, padded base64 of 32 bytes.
    #[error("checkpoint root line is not the standard base64 of a 32-byte hash")]
    BadRoot,
    /// The size line is not a canonical decimal `u64`.
    #[error(
        "checkpoint size line is not a decimal number without sign or leading zeros that fits in 64 bits"
    )]
    BadSize,
    /// The note contains an ASCII control character other than newline.
    #[error(
        "note contains control character {byte:#04x} at byte {offset}; only newline is allowed"
    )]
    ControlCharacter {
        /// The offending byte.
        byte: u8,
        /// Its byte offset in the note.
        offset: usize,
    },
    /// An extension line of the checkpoint is empty.
    #[error("checkpoint line {line} is empty; extension lines must be non-empty")]
    EmptyExtension {
        /// 1-based line number in the note.
        line: usize,
    },
    /// The origin line is empty.
    #[error("checkpoint origin line is empty")]
    EmptyOrigin,
    /// A signature line names this verifier's key (name and key id) but its
    /// signature does not verify: the note was altered after signing, or
    /// forged.
    #[error("signature by key {key_name} does not verify: the note was altered or forged")]
    InvalidSignature {
        /// The verifier's key name.
        key_name: String,
    },
    /// A signature line is not `— <key name> <base64 of at least 5 bytes>`.
    #[error(
        "signature line {line} is malformed; expected \"\u{2014} <key name> <base64(key id || signature)>\""
    )]
    MalformedSignature {
        /// 1-based line number in the note.
        line: usize,
    },
    /// The checkpoint body has fewer than three lines (origin, size, root).
    #[error("checkpoint body needs at least an origin, a size and a root line")]
    MissingLines,
    /// The note lacks a blank line followed by newline-terminated signature
    /// lines.
    #[error("note does not end with a blank line followed by newline-terminated signature lines")]
    MissingSignatures,
    /// No signature line is by this verifier's key; signatures by other keys
    /// are ignored.
    #[error("note carries no signature by key {key_name}")]
    NoSignature {
        /// The verifier's key name.
        key_name: String,
    },
    /// The note has more than [`MAX_SIGNATURES`] signature lines.
    #[error("note has more than {MAX_SIGNATURES} signature lines")]
    TooManySignatures,
    /// A checkpoint field to be signed contains a newline or another control
    /// character, so it cannot be written as a single note line.
    #[error(
        "checkpoint {field} contains a newline or another control character and cannot be signed"
    )]
    UnencodableField {
        /// Which field: `origin` or `extension`.
        field: &'static str,
    },
}

/// Signs checkpoints with an Ed25519 key.
///
/// The signing key is erased from memory when the signer is dropped. Its
/// `Debug` output shows the key name and id only.
pub struct CheckpointSigner {
    name: String,
    id: [u8; 4],
    key: SigningKey,
}

impl CheckpointSigner {
    /// Creates a signer from a key name (usually the log origin) and a 32-byte
    /// Ed25519 seed. The caller should erase its copy of the seed.
    pub fn new(name: impl Into<String>, seed: &[u8; 32]) -> Result<Self, KeyError> {
        let name = name.into();
        if !is_valid_key_name(&name) {
            return Err(KeyError::InvalidKeyName { name });
        }
        let key = SigningKey::from_bytes(seed);
        let id = key_id(&name, &key.verifying_key());
        Ok(Self { name, id, key })
    }

    /// Returns the key name.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// Signs a checkpoint and returns the whole signed note.
    ///
    /// Fails only if the checkpoint has an empty or multi-line origin or
    /// extension, which no verifier would accept.
    pub fn sign(&self, checkpoint: &Checkpoint) -> Result<String, NoteError> {
        let body = checkpoint.body()?;
        Ok(self.sign_text(body))
    }

    /// Appends the blank line and this key's signature line to `text`.
    fn sign_text(&self, mut text: String) -> String {
        let signature = self.key.sign(text.as_bytes());
        let mut blob = Vec::with_capacity(4 + 64);
        blob.extend_from_slice(&self.id);
        blob.extend_from_slice(&signature.to_bytes());
        text.push('\n');
        text.push_str(SIG_PREFIX);
        text.push_str(&self.name);
        text.push(' ');
        text.push_str(&BASE64.encode(blob));
        text.push('\n');
        text
    }

    /// Returns the verifier key string (vkey) that auditors use to verify this
    /// signer's checkpoints.
    pub fn verifier_key(&self) -> String {
        format_vkey(&self.name, self.id, &self.key.verifying_key())
    }

    /// Returns the verifier for this signer's checkpoints.
    pub fn verifier(&self) -> CheckpointVerifier {
        CheckpointVerifier {
            name: self.name.clone(),
            id: self.id,
            key: self.key.verifying_key(),
        }
    }
}

impl fmt::Debug for CheckpointSigner {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("CheckpointSigner")
            .field("name", &self.name)
            .field(
                "key_id",
                &format_args!("{:08x}", u32::from_be_bytes(self.id)),
            )
            .finish_non_exhaustive()
    }
}

// `SigningKey` zeroizes itself on drop; the other fields are public.
impl ZeroizeOnDrop for CheckpointSigner {}

/// Verifies signed checkpoints with one Ed25519 public key, given as a
/// verifier key string (vkey).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct CheckpointVerifier {
    name: String,
    id: [u8; 4],
    key: VerifyingKey,
}

impl CheckpointVerifier {
    /// Parses a verifier key: `<name>+<8 hex digits>+<base64(0x01 || key)>`.
    pub fn parse(vkey: &str) -> Result<Self, KeyError> {
        let malformed = |reason| KeyError::MalformedVerifierKey { reason };
        // The name has no '+', the hex id none either; the base64 may.
        let (name, rest) = vkey
            .split_once('+')
            .ok_or(malformed("no '+' after the name"))?;
        let (id_hex, key_b64) = rest
            .split_once('+')
            .ok_or(malformed("no '+' after the key id"))?;
        if !is_valid_key_name(name) {
            return Err(KeyError::InvalidKeyName {
                name: name.to_owned(),
            });
        }
        if id_hex.len() != 8 || !id_hex.bytes().all(|b| b.is_ascii_hexdigit()) {
            return Err(malformed("the key id is not 8 hex digits"));
        }
        let stated = u32::from_str_radix(id_hex, 16).map_err(|_| malformed("bad key id"))?;
        let typed = BASE64
            .decode(key_b64)
            .map_err(|_| malformed("the key is not standard base64"))?;
        let (&alg, key) = typed.split_first().ok_or(malformed("the key is empty"))?;
        if alg != ALG_ED25519 {
            return Err(KeyError::UnsupportedAlgorithm(alg));
        }
        let key: &[u8; 32] = key
            .try_into()
            .map_err(|_| malformed("an Ed25519 key is 32 bytes"))?;
        let key = VerifyingKey::from_bytes(key).map_err(|_| KeyError::BadPublicKey)?;
        if key.is_weak() {
            return Err(KeyError::BadPublicKey);
        }
        let id = key_id(name, &key);
        let computed = u32::from_be_bytes(id);
        if stated != computed {
            return Err(KeyError::KeyIdMismatch { stated, computed });
        }
        Ok(Self {
            name: name.to_owned(),
            id,
            key,
        })
    }

    /// Returns the key name.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// Returns the key id (the first four bytes of the key hash, big-endian).
    pub fn key_id(&self) -> u32 {
        u32::from_be_bytes(self.id)
    }

    /// Verifies a signed checkpoint note and returns the checkpoint.
    ///
    /// At least one signature line must be by this key (same name and key
    /// id), and every such line must verify. Lines by other keys must be well
    /// formed but are otherwise ignored. Never panics, whatever the input.
    pub fn verify(&self, note: &str) -> Result<Checkpoint, NoteError> {
        let text = self.open(note)?;
        Checkpoint::parse_body(text)
    }

    /// Checks the note's signatures and returns its signed text (which ends
    /// with a newline).
    fn open<'n>(&self, note: &'n str) -> Result<&'n str, NoteError> {
        if let Some((offset, &byte)) = note
            .as_bytes()
            .iter()
            .enumerate()
            .find(|&(_, &b)| b < 0x20 && b != b'\n')
        {
            return Err(NoteError::ControlCharacter { byte, offset });
        }
        // The signatures follow the last blank line; the text keeps its own
        // final newline.
        let (before, sigs) = note
            .rsplit_once("\n\n")
            .ok_or(NoteError::MissingSignatures)?;
        let (text, _) = note
            .split_at_checked(before.len() + 1)
            .ok_or(NoteError::MissingSignatures)?;
        let sigs = sigs
            .strip_suffix('\n')
            .ok_or(NoteError::MissingSignatures)?;
        if sigs.is_empty() {
            return Err(NoteError::MissingSignatures);
        }
        let first_sig_line = text.matches('\n').count() + 2;
        let mut verified = 0usize;
        for (i, line) in sigs.split('\n').enumerate() {
            if i >= MAX_SIGNATURES {
                return Err(NoteError::TooManySignatures);
            }
            let malformed = NoteError::MalformedSignature {
                line: first_sig_line + i,
            };
            let (name, b64) = line
                .strip_prefix(SIG_PREFIX)
                .and_then(|rest| rest.split_once(' '))
                .ok_or(malformed.clone())?;
            if !is_valid_key_name(name) || b64.is_empty() {
                return Err(malformed);
            }
            let blob = BASE64.decode(b64).map_err(|_| malformed.clone())?;
            if blob.len() < 5 {
                return Err(malformed);
            }
            let (id, signature) = blob.split_at(4);
            if name != self.name || id != self.id {
                // Another signer (a witness, a previous key): not ours to check.
                continue;
            }
            let invalid = || NoteError::InvalidSignature {
                key_name: self.name.clone(),
            };
            let signature = Signature::from_slice(signature).map_err(|_| invalid())?;
            self.key
                .verify_strict(text.as_bytes(), &signature)
                .map_err(|_| invalid())?;
            verified += 1;
        }
        if verified == 0 {
            return Err(NoteError::NoSignature {
                key_name: self.name.clone(),
            });
        }
        Ok(text)
    }
}

impl FromStr for CheckpointVerifier {
    type Err = KeyError;

    fn from_str(vkey: &str) -> Result<Self, KeyError> {
        Self::parse(vkey)
    }
}

/// Formats the verifier key string (vkey).
impl fmt::Display for CheckpointVerifier {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&format_vkey(&self.name, self.id, &self.key))
    }
}

/// Parses a note's checkpoint without checking any signature (for
/// verification without the public key, which still checks sizes and roots,
/// and to find the size a proof must be built for).
pub fn parse_unverified(note: &str) -> Option<Checkpoint> {
    let (before, _) = note.rsplit_once("\n\n")?;
    let text = note.get(..before.len() + 1)?;
    Checkpoint::parse_body(text).ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    // The example of golang.org/x/mod/sumdb/note (note.go, example_test.go):
    // an independent implementation's key, text and signed note.
    const GO_SKEY: &str =
        "PRIVATE+KEY+PeterNeumann+c74f20a3+AYEKFALVFGyNhPJEMzD1QIDr+Y7hfZx09iUvxdXHKDFz";
    const GO_VKEY: &str = "PeterNeumann+c74f20a3+ARpc2QcUPDhMQegwxbzhKqiBfsVkmqq/LDE4izWy10TW";
    const GO_TEXT: &str = "If you think cryptography is the answer to your problem,\n\
                           then you don't know what your problem is.\n";
    const GO_NOTE: &str = "If you think cryptography is the answer to your problem,\n\
                           then you don't know what your problem is.\n\
                           \n\
                           \u{2014} PeterNeumann x08go/ZJkuBS9UG/SffcvIAQxVBtiFupLLr8pAcElZInNIuGUgYN1FFYC2pZSNXgKvqfqdngotpRZb6KE6RyyBwJnAM=\n";

    fn go_signer() -> CheckpointSigner {
        // PRIVATE+KEY+<name>+<id>+<base64>, and the base64 may hold a '+'.
        let b64 = GO_SKEY.splitn(5, '+').nth(4).unwrap();
        let typed = BASE64.decode(b64).unwrap();
        assert_eq!(typed[0], ALG_ED25519);
        let seed: [u8; 32] = typed[1..].try_into().unwrap();
        CheckpointSigner::new("PeterNeumann", &seed).unwrap()
    }

    #[test]
    fn go_sumdb_note_example_signs_byte_for_byte() {
        let signer = go_signer();
        assert_eq!(signer.verifier_key(), GO_VKEY);
        assert_eq!(signer.sign_text(GO_TEXT.to_owned()), GO_NOTE);
    }

    #[test]
    fn go_sumdb_note_example_opens() {
        let verifier = CheckpointVerifier::parse(GO_VKEY).unwrap();
        assert_eq!(verifier.key_id(), 0xc74f20a3);
        assert_eq!(verifier.open(GO_NOTE), Ok(GO_TEXT));
        // Its text is not a checkpoint: two lines, no root.
        assert_eq!(verifier.verify(GO_NOTE), Err(NoteError::MissingLines));
        let altered = GO_NOTE.replace("cryptography", "cryptographY");
        assert!(matches!(
            verifier.open(&altered),
            Err(NoteError::InvalidSignature { .. })
        ));
    }

    #[test]
    fn decimal_is_canonical() {
        assert_eq!(parse_decimal("0"), Some(0));
        assert_eq!(parse_decimal("10"), Some(10));
        assert_eq!(parse_decimal("18446744073709551615"), Some(u64::MAX));
        for bad in [
            "",
            "00",
            "01",
            "+1",
            "-1",
            " 1",
            "1 ",
            "18446744073709551616",
            "1e3",
        ] {
            assert_eq!(parse_decimal(bad), None, "{bad:?}");
        }
    }

    #[test]
    fn signer_debug_hides_the_key() {
        let signer = go_signer();
        let debug = format!("{signer:?}");
        assert_eq!(
            debug,
            "CheckpointSigner { name: \"PeterNeumann\", key_id: c74f20a3, .. }"
        );
    }
}
