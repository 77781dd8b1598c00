//! The stored form of a key: an XChaCha20-Poly1305 envelope.
//!
//! # Format
//!
//! ```text
//! offset  size  field
//!      0     4  magic "VGK1" (56 47 4B 31)
//!      4     8  created: microseconds since 1970-01-01T00:00:00Z, signed, big-endian
//!     12    24  nonce: random, fresh for every envelope
//!     36    32  ciphertext: the 32-byte key, XChaCha20-encrypted
//!     68    16  tag: Poly1305
//!     84        end
//! ```
//!
//! The AEAD key is the master key. Its associated data is
//!
//! ```text
//! bytes 0..12 of the envelope (magic, created)
//! ‖ len(name) as one byte ‖ name (ASCII)
//! ‖ version as 4 bytes, big-endian
//! ```
//!
//! so the creation time cannot be changed, and an envelope stored under
//! another name or version (a renamed file, a swapped Redis value) fails to
//! decrypt.

use chacha20poly1305::aead::{AeadInOut, KeyInit};
use chacha20poly1305::{Tag, XChaCha20Poly1305, XNonce};
use vigil_event::Timestamp;

use crate::error::Error;
use crate::master::MasterKey;
use crate::name::MAX_NAME_LEN;
use crate::secret::{KEY_LEN, Secret};

/// The first four bytes of every key envelope.
pub const MAGIC: [u8; 4] = *b"VGK1";

/// The length of every key envelope, in bytes.
pub const ENVELOPE_LEN: usize = HEADER_LEN + NONCE_LEN + KEY_LEN + TAG_LEN;

const HEADER_LEN: usize = 12;
const NONCE_LEN: usize = 24;
const TAG_LEN: usize = 16;
const CIPHERTEXT: usize = HEADER_LEN + NONCE_LEN;
const TAG: usize = CIPHERTEXT + KEY_LEN;

/// Why an envelope was refused.
pub(crate) const NOT_AN_ENVELOPE: &str = "it is not a vigil key envelope (no VGK1 magic)";
/// Why an envelope was refused.
pub(crate) const WRONG_LENGTH: &str = "it is truncated or has extra bytes (84 expected)";
/// Why an envelope was refused.
pub(crate) const AUTH_FAILED: &str =
    "authentication failed: wrong master key, or the key was altered, renamed or swapped";

/// Fills `out` from the operating system's random number generator.
pub(crate) fn fill_random(out: &mut [u8]) -> Result<(), Error> {
    getrandom::fill(out).map_err(|e| Error::RandomUnavailable {
        reason: e.to_string(),
    })
}

/// Encrypts `secret` as version `version` of key `name`, created at
/// `created`.
pub(crate) fn seal(
    master: &MasterKey,
    name: &str,
    version: u32,
    created: Timestamp,
    secret: &Secret,
) -> Result<[u8; ENVELOPE_LEN], Error> {
    let mut env = [0u8; ENVELOPE_LEN];
    env[..4].copy_from_slice(&MAGIC);
    env[4..HEADER_LEN].copy_from_slice(&created.as_micros().to_be_bytes());
    fill_random(&mut env[HEADER_LEN..CIPHERTEXT])?;
    let nonce = XNonce::try_from(&env[HEADER_LEN..CIPHERTEXT]).map_err(|_| internal())?;
    let ad = associated_data(&env, name, version);
    let (_, rest) = env.split_at_mut(CIPHERTEXT);
    let (body, tag_out) = rest.split_at_mut(KEY_LEN);
    body.copy_from_slice(secret.expose());
    let tag = cipher(master)
        .encrypt_inout_detached(&nonce, &ad, body.into())
        .map_err(|_| internal())?;
    tag_out.copy_from_slice(&tag);
    Ok(env)
}

/// Decrypts an envelope stored as version `version` of key `name`.
pub(crate) fn open(
    master: &MasterKey,
    name: &str,
    version: u32,
    env: &[u8],
) -> Result<Secret, &'static str> {
    created(env)?;
    let nonce = XNonce::try_from(&env[HEADER_LEN..CIPHERTEXT]).map_err(|_| WRONG_LENGTH)?;
    let tag = Tag::try_from(&env[TAG..]).map_err(|_| WRONG_LENGTH)?;
    let ad = associated_data(env, name, version);
    let mut secret = Secret::zeroed();
    let buf = secret.expose_mut();
    buf.copy_from_slice(&env[CIPHERTEXT..TAG]);
    cipher(master)
        .decrypt_inout_detached(&nonce, &ad, (&mut buf[..]).into(), &tag)
        .map_err(|_| AUTH_FAILED)?;
    Ok(secret)
}

/// The creation time in an envelope's header, checking its magic and
/// length. Not authenticated until the envelope is [`open`]ed.
pub(crate) fn created(env: &[u8]) -> Result<Timestamp, &'static str> {
    if env.len() < 4 || env[..4] != MAGIC {
        return Err(NOT_AN_ENVELOPE);
    }
    if env.len() != ENVELOPE_LEN {
        return Err(WRONG_LENGTH);
    }
    let mut micros = [0u8; 8];
    micros.copy_from_slice(&env[4..HEADER_LEN]);
    Ok(Timestamp::from_micros(i64::from_be_bytes(micros)))
}

fn associated_data(env: &[u8], name: &str, version: u32) -> Vec<u8> {
    let mut ad = Vec::with_capacity(HEADER_LEN + 1 + MAX_NAME_LEN + 4);
    ad.extend_from_slice(&env[..HEADER_LEN]);
    // Names are checked to be at most 64 bytes before they get here.
    ad.push(u8::try_from(name.len()).unwrap_or(u8::MAX));
    ad.extend_from_slice(name.as_bytes());
    ad.extend_from_slice(&version.to_be_bytes());
    ad
}

fn cipher(master: &MasterKey) -> XChaCha20Poly1305 {
    XChaCha20Poly1305::new(master.expose().into())
}

/// Encryption of a 32-byte message cannot fail; should the library say
/// otherwise, nothing is stored.
fn internal() -> Error {
    Error::StoreFailed {
        location: "the key envelope".into(),
        reason: "XChaCha20-Poly1305 refused to encrypt 32 bytes".into(),
    }
}

#[cfg(test)]
mod tests {
    use subtle::ConstantTimeEq;

    use super::*;

    fn master(b: u8) -> MasterKey {
        use base64::Engine as _;
        MasterKey::from_base64(&base64::engine::general_purpose::STANDARD.encode([b; 32])).unwrap()
    }

    #[test]
    fn round_trip_and_layout() {
        let secret = Secret::random().unwrap();
        let t = Timestamp::from_micros(1_795_000_000_123_456);
        let env = seal(&master(1), "audit-hmac", 3, t, &secret).unwrap();
        assert_eq!(env.len(), 84);
        assert_eq!(&env[..4], b"VGK1");
        assert_eq!(&env[4..12], &1_795_000_000_123_456i64.to_be_bytes());
        assert_eq!(created(&env), Ok(t));
        let back = open(&master(1), "audit-hmac", 3, &env).unwrap();
        assert!(bool::from(back.ct_eq(&secret)));
        assert!(
            env.windows(32).all(|w| w != secret.expose()),
            "key stored in clear"
        );
    }

    #[test]
    fn nonces_are_fresh() {
        let secret = Secret::random().unwrap();
        let t = Timestamp::from_micros(0);
        let a = seal(&master(1), "x", 1, t, &secret).unwrap();
        let b = seal(&master(1), "x", 1, t, &secret).unwrap();
        assert_ne!(&a[12..36], &b[12..36]);
        assert_ne!(&a[36..], &b[36..]);
    }

    #[test]
    fn every_byte_and_binding_is_authenticated() {
        let secret = Secret::random().unwrap();
        let env = seal(&master(1), "poison", 1, Timestamp::from_micros(5), &secret).unwrap();
        for i in 0..env.len() {
            let mut bad = env;
            bad[i] ^= 0x01;
            assert!(open(&master(1), "poison", 1, &bad).is_err(), "byte {i}");
        }
        assert_eq!(open(&master(2), "poison", 1, &env).err(), Some(AUTH_FAILED));
        assert_eq!(open(&master(1), "poison", 2, &env).err(), Some(AUTH_FAILED));
        assert_eq!(
            open(&master(1), "fingerprint", 1, &env).err(),
            Some(AUTH_FAILED)
        );
        // A name of the same length.
        assert_eq!(open(&master(1), "poisom", 1, &env).err(), Some(AUTH_FAILED));
        assert_eq!(
            open(&master(1), "poison", 1, &env[..83]).err(),
            Some(WRONG_LENGTH)
        );
        assert_eq!(
            open(&master(1), "poison", 1, b"VGK").err(),
            Some(NOT_AN_ENVELOPE)
        );
    }
}
