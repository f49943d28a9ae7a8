//! Identifiers shared with the automerge-repo ecosystem.
//!
//! A [`DocumentId`] is 16 random bytes, written as bs58check (base58 with a four-byte SHA-256d
//! checksum), exactly like `@automerge/automerge-repo` and `samod`. The randomness is passed in:
//! this crate never reads the OS random source itself.
//!
//! Device ids ([`crate::who::DeviceId`]) and peer ids ([`crate::protocol::PeerId`]) are text
//! with a type of its own, declared by one macro (`string_id!`).

use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Deserializer, Serialize, Serializer};

/// The prefix of an automerge URL.
pub const URL_PREFIX: &str = "automerge:";

/// The identifier of one document (one record, or one case).
#[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct DocumentId([u8; 16]);

/// Why a string is not a valid document id or URL.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum IdError {
    #[error("document id is not valid base58check")]
    NotBase58Check,
    #[error("document id must decode to 16 bytes, found {0}")]
    WrongLength(usize),
    #[error("automerge URL must start with `automerge:`")]
    NotAnAutomergeUrl,
    #[error("document id is too long")]
    TooLong,
}

impl DocumentId {
    /// Builds an id from 16 bytes of randomness supplied by the caller.
    pub fn from_bytes(bytes: [u8; 16]) -> Self {
        Self(bytes)
    }

    pub fn as_bytes(&self) -> &[u8; 16] {
        &self.0
    }

    /// Parses the bs58check form (`2Qh5...`).
    pub fn parse(s: &str) -> Result<Self, IdError> {
        // A 16-byte payload plus checksum is at most 28 base58 digits; refuse long input before
        // decoding so hostile strings cost nothing.
        if s.len() > 40 {
            return Err(IdError::TooLong);
        }
        let bytes = bs58::decode(s)
            .with_check(None)
            .into_vec()
            .map_err(|_| IdError::NotBase58Check)?;
        let array: [u8; 16] = bytes
            .as_slice()
            .try_into()
            .map_err(|_| IdError::WrongLength(bytes.len()))?;
        Ok(Self(array))
    }

    /// Parses an `automerge:<id>` URL. A heads section (`#...`) is not accepted: records are
    /// always opened at their newest state.
    pub fn from_url(url: &str) -> Result<Self, IdError> {
        let rest = url
            .strip_prefix(URL_PREFIX)
            .ok_or(IdError::NotAnAutomergeUrl)?;
        Self::parse(rest)
    }

    pub fn to_url(&self) -> String {
        format!("{URL_PREFIX}{self}")
    }
}

impl fmt::Display for DocumentId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&bs58::encode(&self.0).with_check().into_string())
    }
}

impl fmt::Debug for DocumentId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "DocumentId({self})")
    }
}

impl FromStr for DocumentId {
    type Err = IdError;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Self::parse(s)
    }
}

impl Serialize for DocumentId {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.collect_str(self)
    }
}

impl<'de> Deserialize<'de> for DocumentId {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let s = String::deserialize(deserializer)?;
        Self::parse(&s).map_err(serde::de::Error::custom)
    }
}

/// Declares a text identifier with a type of its own: serialised as the plain string, read as
/// a `&str` (it derefs to one) and compared with one, made from a `&str` or a `String`; but a
/// `&str` or another id is never taken where this one is asked for.
macro_rules! string_id {
    ($(#[$doc:meta])* $name:ident) => {
        $(#[$doc])*
        #[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, serde::Serialize, serde::Deserialize)]
        #[serde(transparent)]
        pub struct $name(String);

        impl $name {
            pub fn new(id: impl Into<String>) -> $name {
                $name(id.into())
            }

            pub fn as_str(&self) -> &str {
                &self.0
            }

            pub fn into_string(self) -> String {
                self.0
            }
        }

        impl std::fmt::Display for $name {
            fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                f.write_str(&self.0)
            }
        }

        impl From<&str> for $name {
            fn from(id: &str) -> $name {
                $name(id.to_owned())
            }
        }

        impl From<String> for $name {
            fn from(id: String) -> $name {
                $name(id)
            }
        }

        impl From<&$name> for $name {
            fn from(id: &$name) -> $name {
                id.clone()
            }
        }

        impl std::ops::Deref for $name {
            type Target = str;

            fn deref(&self) -> &str {
                &self.0
            }
        }

        impl AsRef<str> for $name {
            fn as_ref(&self) -> &str {
                &self.0
            }
        }

        /// Maps keyed by this id can be asked with a `&str`.
        impl std::borrow::Borrow<str> for $name {
            fn borrow(&self) -> &str {
                &self.0
            }
        }

        impl PartialEq<str> for $name {
            fn eq(&self, other: &str) -> bool {
                self.0 == other
            }
        }

        impl PartialEq<&str> for $name {
            fn eq(&self, other: &&str) -> bool {
                self.0 == *other
            }
        }

        impl PartialEq<String> for $name {
            fn eq(&self, other: &String) -> bool {
                &self.0 == other
            }
        }
    };
}
pub(crate) use string_id;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trips_through_text_and_url() {
        let id = DocumentId::from_bytes([7; 16]);
        let text = id.to_string();
        assert_eq!(DocumentId::parse(&text), Ok(id));
        assert_eq!(DocumentId::from_url(&id.to_url()), Ok(id));
        assert!(id.to_url().starts_with("automerge:"));
    }

    #[test]
    fn known_vector_matches_automerge_repo() {
        // bs58check of 16 zero bytes, as produced by the `bs58check` npm package that
        // automerge-repo uses: checksum = first 4 bytes of sha256(sha256(payload)).
        let id = DocumentId::from_bytes([0; 16]);
        let text = id.to_string();
        // 16 zero bytes become 16 leading '1's, then the checksum digits.
        assert!(text.starts_with("1111111111111111"), "{text}");
        assert_eq!(DocumentId::parse(&text), Ok(id));
    }

    #[test]
    fn rejects_bad_checksum_wrong_length_and_garbage() {
        let good = DocumentId::from_bytes([42; 16]).to_string();
        // Flip the last digit: the checksum no longer matches.
        let mut bad = good.clone();
        let last = bad.pop().expect("non-empty");
        bad.push(if last == '2' { '3' } else { '2' });
        assert_eq!(DocumentId::parse(&bad), Err(IdError::NotBase58Check));
        let short = bs58::encode([1u8; 8]).with_check().into_string();
        assert_eq!(DocumentId::parse(&short), Err(IdError::WrongLength(8)));
        assert_eq!(DocumentId::parse("0OIl"), Err(IdError::NotBase58Check));
        assert_eq!(DocumentId::parse(""), Err(IdError::NotBase58Check));
        assert_eq!(DocumentId::parse(&"z".repeat(400)), Err(IdError::TooLong));
        assert_eq!(DocumentId::from_url(&good), Err(IdError::NotAnAutomergeUrl));
        assert!(DocumentId::from_url(&format!("automerge:{good}#abc")).is_err());
    }
}
