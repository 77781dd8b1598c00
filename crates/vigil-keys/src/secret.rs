//! A key in clear: 32 bytes on the heap, erased when dropped.

use std::fmt;

use subtle::{Choice, ConstantTimeEq};
use zeroize::{Zeroize, ZeroizeOnDrop};

use crate::error::Error;

/// The length of every key, in bytes.
pub const KEY_LEN: usize = 32;

/// A 32-byte secret key, as loaded from the [`KeyStore`](crate::KeyStore).
///
/// The bytes live in one heap allocation that is never copied by moves and is
/// overwritten with zeros when the `Secret` is dropped. `Debug` prints
/// `Secret(<redacted>)`; there is no `Display`, `Clone` or `PartialEq`.
/// Compare secrets with [`ConstantTimeEq::ct_eq`].
pub struct Secret {
    bytes: Box<[u8; KEY_LEN]>,
}

impl Secret {
    /// A fresh key from the operating system's random number generator.
    pub(crate) fn random() -> Result<Secret, Error> {
        let mut secret = Secret::zeroed();
        crate::envelope::fill_random(&mut secret.bytes[..])?;
        Ok(secret)
    }

    /// An all-zero secret, to be filled in place.
    pub(crate) fn zeroed() -> Secret {
        Secret {
            bytes: Box::new([0; KEY_LEN]),
        }
    }

    /// The key bytes. Copy them nowhere you do not erase.
    pub fn expose(&self) -> &[u8; KEY_LEN] {
        &self.bytes
    }

    pub(crate) fn expose_mut(&mut self) -> &mut [u8; KEY_LEN] {
        &mut self.bytes
    }
}

impl fmt::Debug for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Secret(<redacted>)")
    }
}

impl ConstantTimeEq for Secret {
    fn ct_eq(&self, other: &Self) -> Choice {
        self.bytes[..].ct_eq(&other.bytes[..])
    }
}

impl Drop for Secret {
    fn drop(&mut self) {
        self.bytes.zeroize();
    }
}

impl ZeroizeOnDrop for Secret {}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn random_secrets_differ_and_debug_is_redacted() {
        let a = Secret::random().unwrap();
        let b = Secret::random().unwrap();
        assert!(!bool::from(a.ct_eq(&b)));
        assert!(bool::from(a.ct_eq(&a)));
        assert_eq!(format!("{a:?}"), "Secret(<redacted>)");
    }
}
