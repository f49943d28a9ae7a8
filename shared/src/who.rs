//! Who acts: an account and the device it acts from, the one pair every layer names. An
//! [`crate::Editor`] is a `Who` with a role; a connection's [`crate::policy::Principal`] a `Who`
//! with a role and cases; a commit message carries a `Who` as its attribution note; the server's
//! audit log and console name a `Who`.

use std::collections::BTreeSet;

use serde::{Deserialize, Serialize};

/// An account (its username) and one of its devices.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct Who {
    pub user: String,
    pub device: DeviceId,
}

impl Who {
    pub fn new(user: impl Into<String>, device: impl Into<DeviceId>) -> Who {
        Who {
            user: user.into(),
            device: device.into(),
        }
    }
}

crate::id::string_id! {
    /// A device's id. The server issues one at every sign-in (`dev_` and 20 hex digits); a
    /// change's attribution note carries whatever its client claims, which the server checks
    /// against the device the change's actor is bound to.
    DeviceId
}

// ---- the attribution note in every commit message ----

/// Why a commit message that is (or looks like) an attribution note is not a valid one. The
/// messages name no contents of the note.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum NoteError {
    /// It starts like a JSON object but is not one (or has more after it).
    #[error("the commit message starts like a JSON object but is not one")]
    NotJson,
    /// A key appears twice, at any depth (also when spelt differently, e.g. with `\u` escapes).
    /// JSON readers disagree on which one counts, so a note saying two things is refused.
    #[error("the commit message repeats a key")]
    RepeatedKey,
    /// `user` or `device` is there but is not a string.
    #[error("the commit message's `{0}` is not a string")]
    NotAString(&'static str),
    /// One of `user` and `device` without the other.
    #[error("the commit message names a user or a device but not both")]
    Incomplete,
}

impl Who {
    /// Reads the attribution note in a commit message, telling three cases apart:
    ///
    /// - `Ok(None)`: no note. No message, a message that does not start (after white space)
    ///   with `{`, or a JSON object with neither a `user` nor a `device` key: not ours.
    /// - `Ok(Some(note))`: a JSON object with `user` and `device` strings (other keys are
    ///   allowed, for later versions), no key repeated at any depth, nothing after it.
    /// - `Err(_)`: a malformed note, which must be refused rather than read as no note: it
    ///   starts like a JSON object but is not one, repeats a key (`{"user":"a","device":"d",
    ///   "user":"b"}`: which user it names depends on the reader), has a `user` or `device`
    ///   that is not a string, or only one of them.
    pub fn check_note(message: Option<&str>) -> Result<Option<Who>, NoteError> {
        let Some(message) = message else {
            return Ok(None);
        };
        if !message.trim_start().starts_with('{') {
            return Ok(None);
        }
        let mut json = serde_json::Deserializer::from_str(message);
        let fields = NoteFields::deserialize(&mut json).map_err(|_| NoteError::NotJson)?;
        json.end().map_err(|_| NoteError::NotJson)?;
        if !fields.unique {
            return Err(NoteError::RepeatedKey);
        }
        let text = |value: Option<serde_json::Value>, key: &'static str| match value {
            None => Ok(None),
            Some(serde_json::Value::String(s)) => Ok(Some(s)),
            Some(_) => Err(NoteError::NotAString(key)),
        };
        match (text(fields.user, "user")?, text(fields.device, "device")?) {
            (Some(user), Some(device)) => Ok(Some(Who::new(user, device))),
            (None, None) => Ok(None),
            _ => Err(NoteError::Incomplete),
        }
    }

    /// The note in `message` if it is a valid one ([`Who::check_note`]); `None` for no note
    /// and for a malformed one (for display: the server refuses malformed notes).
    pub fn parse_note(message: &str) -> Option<Who> {
        Self::check_note(Some(message)).ok().flatten()
    }

    /// The attribution note naming this user and device: `{"user":…,"device":…}`.
    pub fn note(&self) -> String {
        serde_json::to_string(self).expect("two strings always serialise")
    }
}

/// The top level of a commit message read as a JSON object: its `user` and `device` values as
/// found, and whether no key repeats, at any depth.
struct NoteFields {
    user: Option<serde_json::Value>,
    device: Option<serde_json::Value>,
    unique: bool,
}

impl<'de> Deserialize<'de> for NoteFields {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct Fields;

        impl<'de> serde::de::Visitor<'de> for Fields {
            type Value = NoteFields;

            fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                f.write_str("a JSON object")
            }

            fn visit_map<A: serde::de::MapAccess<'de>>(
                self,
                mut map: A,
            ) -> Result<NoteFields, A::Error> {
                let mut fields = NoteFields {
                    user: None,
                    device: None,
                    unique: true,
                };
                // Keys as decoded: `"user"` and `"us\u0065r"` are the same key.
                let mut keys = BTreeSet::new();
                while let Some(key) = map.next_key::<String>()? {
                    match key.as_str() {
                        "user" => fields.user = Some(map.next_value()?),
                        "device" => fields.device = Some(map.next_value()?),
                        _ => {
                            let NoRepeats(unique) = map.next_value()?;
                            fields.unique &= unique;
                        }
                    }
                    fields.unique &= keys.insert(key);
                }
                Ok(fields)
            }
        }

        deserializer.deserialize_map(Fields)
    }
}

/// Any JSON value, walked for repeated keys: whether none of its objects repeats a key.
struct NoRepeats(bool);

impl<'de> Deserialize<'de> for NoRepeats {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct Walk;

        impl<'de> serde::de::Visitor<'de> for Walk {
            type Value = NoRepeats;

            fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                f.write_str("a JSON value")
            }

            fn visit_bool<E: serde::de::Error>(self, _: bool) -> Result<NoRepeats, E> {
                Ok(NoRepeats(true))
            }

            fn visit_i64<E: serde::de::Error>(self, _: i64) -> Result<NoRepeats, E> {
                Ok(NoRepeats(true))
            }

            fn visit_u64<E: serde::de::Error>(self, _: u64) -> Result<NoRepeats, E> {
                Ok(NoRepeats(true))
            }

            fn visit_f64<E: serde::de::Error>(self, _: f64) -> Result<NoRepeats, E> {
                Ok(NoRepeats(true))
            }

            fn visit_str<E: serde::de::Error>(self, _: &str) -> Result<NoRepeats, E> {
                Ok(NoRepeats(true))
            }

            fn visit_unit<E: serde::de::Error>(self) -> Result<NoRepeats, E> {
                Ok(NoRepeats(true))
            }

            fn visit_seq<A: serde::de::SeqAccess<'de>>(
                self,
                mut seq: A,
            ) -> Result<NoRepeats, A::Error> {
                let mut unique = true;
                while let Some(NoRepeats(item)) = seq.next_element()? {
                    unique &= item;
                }
                Ok(NoRepeats(unique))
            }

            fn visit_map<A: serde::de::MapAccess<'de>>(
                self,
                mut map: A,
            ) -> Result<NoRepeats, A::Error> {
                let mut keys = BTreeSet::new();
                let mut unique = true;
                while let Some(key) = map.next_key::<String>()? {
                    let NoRepeats(value) = map.next_value()?;
                    unique &= value;
                    unique &= keys.insert(key);
                }
                Ok(NoRepeats(unique))
            }
        }

        deserializer.deserialize_any(Walk)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::record::Editor;
    use crate::time::Timestamp;
    use crate::workflow::Role;

    #[test]
    fn a_device_id_is_a_string_on_the_wire_and_a_type_in_the_code() {
        let who = Who::new("សុខា", "dev_0123456789abcdef0123");
        let json = serde_json::to_string(&who).expect("serialises");
        assert_eq!(
            json,
            r#"{"user":"សុខា","device":"dev_0123456789abcdef0123"}"#
        );
        assert_eq!(serde_json::from_str::<Who>(&json).expect("parses"), who);
        let editor = Editor::new("សុខា", "dev_0123456789abcdef0123", Role::Monitor);
        assert_eq!(
            serde_json::to_string(&editor).expect("serialises"),
            r#"{"user":"សុខា","device":"dev_0123456789abcdef0123","role":"monitor"}"#,
            "the phone's editor JSON is unchanged"
        );
        // A map keyed by device id is asked with a &str.
        let map = std::collections::HashMap::from([(who.device.clone(), 1)]);
        assert_eq!(map.get("dev_0123456789abcdef0123"), Some(&1));
        assert_eq!(who.device, "dev_0123456789abcdef0123");
        assert_eq!(who.device.to_string(), "dev_0123456789abcdef0123");
    }

    fn note(user: &str, device: &str) -> Option<Who> {
        Some(Who {
            user: user.into(),
            device: device.into(),
        })
    }

    #[test]
    fn a_note_as_written_is_read_back_with_khmer_intact() {
        // Usernames are plain; the note names the device by its id. Any strings are read back
        // as they were written, Khmer included.
        for (user, device) in [("sophea", "dev_0123456789abcdef0123"), ("សាក្សី", "ទូរស័ព្ទ សុភា")]
        {
            let editor = Editor::new(user, device, Role::Monitor);
            let message = editor
                .commit_options(Timestamp::from_millis(1))
                .message
                .expect("a message");
            assert_eq!(
                Who::check_note(Some(message.as_str())),
                Ok(note(user, device))
            );
            assert_eq!(Who::parse_note(&message), note(user, device));
        }
        // Escaped as JSON allows, the same note.
        assert_eq!(
            Who::check_note(Some(
                r#" {"device":"\u1791\u17bc","user":"sophea","app":{"v":[1,2.5,null,true]}} "#
            )),
            Ok(note("sophea", "ទូ"))
        );
    }

    #[test]
    fn no_note_is_not_a_malformed_note() {
        for message in [
            None,
            Some(""),
            Some("edited on the laptop"),
            Some("[\"user\",\"device\"]"),
            Some("\"{\""),
            Some("{}"),
            Some(r#"{"note":"from another tool"}"#),
        ] {
            assert_eq!(Who::check_note(message), Ok(None), "{message:?}");
        }
    }

    #[test]
    fn malformed_notes_are_errors_not_missing_notes() {
        for (message, error) in [
            (
                r#"{"user":"a","device":"d","user":"b"}"#,
                NoteError::RepeatedKey,
            ),
            (
                r#"{"user":"a","device":"d","device":"d"}"#,
                NoteError::RepeatedKey,
            ),
            // The same key spelt with an escape.
            (
                r#"{"user":"a","device":"d","us\u0065r":"b"}"#,
                NoteError::RepeatedKey,
            ),
            (
                r#"{"user":"a","device":"d","x":{"k":1,"k":2}}"#,
                NoteError::RepeatedKey,
            ),
            (
                r#"{"user":"a","device":"d","x":[{"k":1},{"k":1,"k":1}]}"#,
                NoteError::RepeatedKey,
            ),
            (r#"{"user":"a","x":1,"x":2}"#, NoteError::RepeatedKey),
            (r#"{"user":1,"device":"d"}"#, NoteError::NotAString("user")),
            (
                r#"{"user":"a","device":null}"#,
                NoteError::NotAString("device"),
            ),
            (
                r#"{"user":["a"],"device":"d"}"#,
                NoteError::NotAString("user"),
            ),
            (r#"{"user":"a"}"#, NoteError::Incomplete),
            (r#"{"device":"d","other":true}"#, NoteError::Incomplete),
            (r#"{"user":"a","device":"d""#, NoteError::NotJson),
            (r#"{"user":"a","device":"d"} trailing"#, NoteError::NotJson),
            (
                r#"{"user":"a","device":"d"}{"user":"b"}"#,
                NoteError::NotJson,
            ),
            ("{user: a, device: d}", NoteError::NotJson),
        ] {
            assert_eq!(Who::check_note(Some(message)), Err(error), "{message}");
            assert_eq!(Who::parse_note(message), None, "{message}");
        }
    }
}
