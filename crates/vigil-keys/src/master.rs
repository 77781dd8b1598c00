//! The master key: 32 bytes from the environment that encrypt every other key.

use std::ffi::OsString;
use std::fmt;

use base64::Engine as _;
use base64::alphabet;
use base64::engine::{DecodePaddingMode, GeneralPurpose, GeneralPurposeConfig};
use vigil_event::{Emitter, Event, catalog};
use zeroize::{Zeroize, ZeroizeOnDrop, Zeroizing};

use crate::error::Error;
use crate::secret::KEY_LEN;

/// The environment variable [`MasterKey::from_env`] reads.
pub const MASTER_KEY_VAR: &str = "VIGIL_MASTER_KEY";

/// Standard base64, with or without padding.
const BASE64: GeneralPurpose = GeneralPurpose::new(
    &alphabet::STANDARD,
    GeneralPurposeConfig::new().with_decode_padding_mode(DecodePaddingMode::Indifferent),
);

/// The key that encrypts every key in the [`KeyStore`](crate::KeyStore).
///
/// 32 bytes, given as standard base64 (make one with
/// `head -c 32 /dev/urandom | base64`). The bytes live in one heap
/// allocation, are erased when the key is dropped, and are never printed:
/// `Debug` shows `MasterKey(<redacted>)` and there is no `Display`.
pub struct MasterKey {
    bytes: Box<[u8; KEY_LEN]>,
}

impl MasterKey {
    /// Reads the master key from the environment variable
    /// [`VIGIL_MASTER_KEY`](MASTER_KEY_VAR), reporting the outcome as a
    /// `keys.master_loaded`, `keys.master_missing` or `keys.master_invalid`
    /// event.
    ///
    /// Whitespace around the value is ignored. An unset or empty variable is
    /// [`Error::MasterMissing`]; anything but the base64 of 32 bytes is
    /// [`Error::MasterInvalid`].
    pub fn from_env(emitter: Option<&Emitter>) -> Result<MasterKey, Error> {
        MasterKey::from_var(MASTER_KEY_VAR, emitter)
    }

    /// Like [`from_env`](Self::from_env), from the environment variable
    /// `variable`.
    pub fn from_var(variable: &str, emitter: Option<&Emitter>) -> Result<MasterKey, Error> {
        MasterKey::from_var_value(variable, std::env::var_os(variable), emitter)
    }

    /// Like [`from_var`](Self::from_var), given the variable's value as the
    /// caller read it (`None` when unset), e.g. from the environment of a
    /// process it is about to start.
    pub fn from_var_value(
        variable: &str,
        value: Option<OsString>,
        emitter: Option<&Emitter>,
    ) -> Result<MasterKey, Error> {
        let result = match value {
            None => Err(Error::MasterMissing {
                variable: variable.to_owned(),
            }),
            Some(value) => match value.into_string() {
                Err(value) => {
                    drop(Zeroizing::new(value.into_encoded_bytes()));
                    Err(Error::MasterInvalid {
                        variable: Some(variable.to_owned()),
                        reason: "is not valid UTF-8 text".into(),
                    })
                }
                Ok(text) => {
                    let text = Zeroizing::new(text);
                    if text.trim().is_empty() {
                        Err(Error::MasterMissing {
                            variable: variable.to_owned(),
                        })
                    } else {
                        decode(&text).map_err(|reason| Error::MasterInvalid {
                            variable: Some(variable.to_owned()),
                            reason,
                        })
                    }
                }
            },
        };
        if let Some(emitter) = emitter {
            emitter.emit(event(variable, &result));
        }
        result
    }

    /// Parses the standard base64 of 32 bytes; surrounding whitespace is
    /// ignored. Reports no event.
    pub fn from_base64(text: &str) -> Result<MasterKey, Error> {
        decode(text).map_err(|reason| Error::MasterInvalid {
            variable: None,
            reason,
        })
    }

    /// The key bytes.
    pub(crate) fn expose(&self) -> &[u8; KEY_LEN] {
        &self.bytes
    }
}

/// Decodes `text` into a key, or says what is wrong with it without
/// repeating any of it.
fn decode(text: &str) -> Result<MasterKey, String> {
    use base64::DecodeError as E;
    let decoded = Zeroizing::new(BASE64.decode(text.trim()).map_err(|e| match e {
        E::InvalidByte(offset, _) => {
            format!(
                "is not standard base64: character {} is outside its alphabet",
                offset + 1
            )
        }
        E::InvalidLastSymbol(offset, _) => {
            format!(
                "is not standard base64: its last character (at {}) is not canonical",
                offset + 1
            )
        }
        E::InvalidLength(_) => {
            "is not standard base64: its length is not that of any encoding".into()
        }
        E::InvalidPadding => "is not standard base64: its padding is wrong".into(),
    })?);
    if decoded.len() != KEY_LEN {
        return Err(format!(
            "decodes to {} bytes, but {KEY_LEN} bytes are needed",
            decoded.len()
        ));
    }
    let mut bytes = Box::new([0; KEY_LEN]);
    bytes.copy_from_slice(&decoded);
    Ok(MasterKey { bytes })
}

/// The event reporting how reading `variable` ended.
fn event(variable: &str, result: &Result<MasterKey, Error>) -> Event {
    let ev = match result {
        Ok(_) => Event::new(
            catalog::KEYS_MASTER_LOADED,
            format!("master key loaded from environment variable {variable}"),
        ),
        Err(e @ Error::MasterMissing { .. }) => {
            Event::new(catalog::KEYS_MASTER_MISSING, e.to_string())
        }
        Err(e @ Error::MasterInvalid { reason, .. }) => {
            Event::new(catalog::KEYS_MASTER_INVALID, e.to_string()).field("reason", reason.clone())
        }
        Err(e) => Event::new(catalog::KEYS_MASTER_INVALID, e.to_string()),
    };
    ev.field("source", "env")
        .field("variable", variable.to_owned())
}

impl fmt::Debug for MasterKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("MasterKey(<redacted>)")
    }
}

impl Drop for MasterKey {
    fn drop(&mut self) {
        self.bytes.zeroize();
    }
}

impl ZeroizeOnDrop for MasterKey {}

#[cfg(test)]
mod tests {
    use super::*;

    const KEY: &str = "AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8=";

    #[test]
    fn parses_padded_unpadded_and_surrounded_by_whitespace() {
        for text in [KEY, KEY.trim_end_matches('='), &format!(" \n{KEY}\n")] {
            let key = MasterKey::from_base64(text).unwrap();
            assert_eq!(key.expose()[31], 31);
        }
    }

    #[test]
    fn bad_characters_are_located_not_repeated() {
        let e = MasterKey::from_base64("AAAA$AAA").unwrap_err().to_string();
        assert!(e.contains("character 5"), "{e}");
        assert!(!e.contains('$'), "{e}");
    }

    #[test]
    fn wrong_length_says_what_was_found_and_needed() {
        let e = MasterKey::from_base64("AAAA").unwrap_err().to_string();
        assert!(e.contains("3 bytes") && e.contains("32 bytes"), "{e}");
        assert!(e.contains("head -c 32 /dev/urandom | base64"), "{e}");
    }

    #[test]
    fn empty_value_is_missing() {
        let e = MasterKey::from_var_value("V", Some("  ".into()), None).unwrap_err();
        assert!(matches!(e, Error::MasterMissing { .. }), "{e:?}");
    }

    #[test]
    fn debug_is_redacted() {
        let key = MasterKey::from_base64(KEY).unwrap();
        assert_eq!(format!("{key:?}"), "MasterKey(<redacted>)");
    }
}
