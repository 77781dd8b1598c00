//! Key names: the standard ones, and what a name may look like.

use crate::error::Error;

/// The key of the audit log's HMAC chain.
pub const AUDIT_HMAC: &str = "audit-hmac";
/// The Ed25519 seed that signs audit checkpoints.
pub const CHECKPOINT_SIGNING: &str = "checkpoint-signing";
/// The key that derives poison (honeytoken) records.
pub const POISON: &str = "poison";
/// The key of keyed statement and value fingerprints.
pub const FINGERPRINT: &str = "fingerprint";

/// Every key `vigil keys generate` creates, in that order.
pub const STANDARD_KEYS: [&str; 4] = [AUDIT_HMAC, CHECKPOINT_SIGNING, POISON, FINGERPRINT];

/// The longest key name, in bytes.
pub(crate) const MAX_NAME_LEN: usize = 64;

/// Checks that `name` is 1 to 64 of `a-z`, `0-9` and `-`, not starting with
/// `-`. Such a name is safe in a file name, a Redis key and a Redis `MATCH`
/// pattern, and cannot contain the `.` and `:` that separate it from the
/// version.
pub(crate) fn check(name: &str) -> Result<(), Error> {
    let ok = !name.is_empty()
        && name.len() <= MAX_NAME_LEN
        && !name.starts_with('-')
        && name
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-');
    if ok {
        Ok(())
    } else {
        Err(Error::InvalidName {
            name: name.escape_debug().to_string(),
        })
    }
}

/// Parses a version as written in file names and Redis keys: a decimal
/// number from 1, without sign or leading zeros.
pub(crate) fn parse_version(s: &str) -> Option<u32> {
    if s.is_empty() || s.starts_with('0') || !s.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    s.parse().ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn standard_names_are_valid() {
        for name in STANDARD_KEYS {
            check(name).unwrap();
        }
    }

    #[test]
    fn rejects_names_that_could_escape_a_path_or_pattern() {
        for bad in [
            "",
            "-x",
            "a.b",
            "a:b",
            "../x",
            "A",
            "a*",
            "a b",
            &"x".repeat(65),
        ] {
            assert!(check(bad).is_err(), "{bad:?} accepted");
        }
    }

    #[test]
    fn versions_are_canonical_decimals() {
        assert_eq!(parse_version("1"), Some(1));
        assert_eq!(parse_version("42"), Some(42));
        for bad in ["", "0", "01", "+1", "-1", "1a", "4294967296"] {
            assert_eq!(parse_version(bad), None, "{bad:?}");
        }
    }
}
