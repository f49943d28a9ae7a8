//! Files attached to a record: photos of court notices, recorded statements, documents.
//!
//! The bytes of a file never enter the automerge document. A record holds one entry per file,
//! written once by the device that captured it:
//!
//! ```text
//! attachments: {                              (a map, made with the first file)
//!   "<attachment id>": {
//!     sha256:      "<64 lower-case hex digits>"   SHA-256 of the bytes, taken at capture
//!     size:        <bytes>
//!     type:        "<media type>"                  e.g. "image/jpeg", "audio/webm"
//!     name:        "<file name>"                   no path separators, no control characters
//!     captured_at: <ms since the epoch>
//!     by:          "<username>"                    who captured it (the sender, always)
//!     device:      "<device id>"                   on which device (the sender's, always)
//!     metadata:    "removed" | "kept"              photos: location and camera data (optional)
//!     caption:     "<text>"                        (optional; the only key that may change)
//!   }, ...
//! }
//! ```
//!
//! Two devices that each add the first file of a record offline each make an `attachments` map;
//! automerge keeps both as a conflict on the root key, and readers take the entries of every
//! one of them ([`attachments`]), so no file is hidden. The write policy
//! ([`crate::policy`]) refuses a second map made by someone who saw the first, entries that
//! name another user or device, and any change to an entry but its caption. Removing an entry
//! (its capturer, or a coordinator) is an ordinary change, attributed like any other.

use std::collections::BTreeMap;

use automerge::{ObjId, ObjType, ROOT, ReadDoc, ScalarValue, Value};
use serde::{Deserialize, Serialize};

use crate::time::Timestamp;

/// The root key of the attachments map.
pub(crate) const ATTACHMENTS: &str = "attachments";

/// Largest file an entry may name, whatever the server allows (`max_file_bytes`, lower).
pub const MAX_FILE_BYTES: u64 = 4 * 1024 * 1024 * 1024;
/// Longest file name, in Unicode scalar values.
pub const MAX_NAME_CHARS: usize = 255;
/// Longest caption, in Unicode scalar values.
pub const MAX_CAPTION_CHARS: usize = 1_000;
/// Longest media type.
pub const MAX_TYPE_CHARS: usize = 127;

/// The keys an entry must have.
pub(crate) const REQUIRED_KEYS: [&str; 7] = [
    "sha256",
    "size",
    "type",
    "name",
    "captured_at",
    "by",
    "device",
];

/// What happened to a photo's location and camera data before it was hashed.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Metadata {
    /// Removed (the default): the file shows neither where nor with what it was taken.
    Removed,
    /// Kept, by the user's choice.
    Kept,
}

impl Metadata {
    pub fn as_str(self) -> &'static str {
        match self {
            Metadata::Removed => "removed",
            Metadata::Kept => "kept",
        }
    }

    pub fn parse(s: &str) -> Option<Metadata> {
        match s {
            "removed" => Some(Metadata::Removed),
            "kept" => Some(Metadata::Kept),
            _ => None,
        }
    }
}

/// A file attached to a record, as its entry says.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Attachment {
    pub id: String,
    pub sha256: String,
    pub size: u64,
    #[serde(rename = "type")]
    pub media_type: String,
    pub name: String,
    pub captured_at: Timestamp,
    pub by: String,
    pub device: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub metadata: Option<Metadata>,
    #[serde(default)]
    pub caption: String,
}

/// A file to attach: the entry without its author, which is always the editor.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct NewAttachment {
    pub id: String,
    pub sha256: String,
    pub size: u64,
    #[serde(rename = "type")]
    pub media_type: String,
    pub name: String,
    pub captured_at: Timestamp,
    #[serde(default)]
    pub metadata: Option<Metadata>,
    #[serde(default)]
    pub caption: String,
}

/// Why an entry is not a valid one (the messages name no contents).
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum EntryError {
    #[error("an attachment id is 32 lower-case hex digits")]
    Id,
    #[error("a SHA-256 is 64 lower-case hex digits")]
    Sha256,
    #[error("a file's size is from 1 byte to {MAX_FILE_BYTES} bytes")]
    Size,
    #[error("a media type looks like type/subtype, in lower case")]
    MediaType,
    #[error(
        "a file name is 1 to {MAX_NAME_CHARS} characters, without path separators or control \
         characters"
    )]
    Name,
    #[error("a caption is at most {MAX_CAPTION_CHARS} characters")]
    Caption,
    #[error("a capture time is a number")]
    CapturedAt,
    #[error("metadata is \"removed\" or \"kept\"")]
    Metadata,
}

fn lower_hex(s: &str, len: usize) -> bool {
    s.len() == len && s.bytes().all(|b| matches!(b, b'0'..=b'9' | b'a'..=b'f'))
}

/// An attachment id: 16 random bytes as lower-case hex.
pub fn check_id(id: &str) -> Result<(), EntryError> {
    lower_hex(id, 32).then_some(()).ok_or(EntryError::Id)
}

pub fn check_sha256(sha: &str) -> Result<(), EntryError> {
    lower_hex(sha, 64).then_some(()).ok_or(EntryError::Sha256)
}

pub fn check_size(size: u64) -> Result<(), EntryError> {
    (1..=MAX_FILE_BYTES)
        .contains(&size)
        .then_some(())
        .ok_or(EntryError::Size)
}

/// `type/subtype` with RFC 6838's restricted name characters, lower case, no parameters.
pub fn check_media_type(media_type: &str) -> Result<(), EntryError> {
    let name = |s: &str| {
        !s.is_empty()
            && s.bytes().next().is_some_and(|b| b.is_ascii_alphanumeric())
            && s.bytes().all(|b| {
                matches!(b, b'a'..=b'z' | b'0'..=b'9' | b'!' | b'#' | b'$' | b'&' | b'-' | b'^' | b'_' | b'.' | b'+')
            })
    };
    match media_type.split_once('/') {
        Some((top, sub)) if media_type.len() <= MAX_TYPE_CHARS && name(top) && name(sub) => Ok(()),
        _ => Err(EntryError::MediaType),
    }
}

/// A file name as a phone gives it: no directory part, nothing a file system or an archive
/// would read as a path or a control sequence.
pub fn check_name(name: &str) -> Result<(), EntryError> {
    let chars = name.chars().count();
    let ok = (1..=MAX_NAME_CHARS).contains(&chars)
        && name != "."
        && name != ".."
        && !name
            .chars()
            .any(|c| c == '/' || c == '\\' || c.is_control());
    ok.then_some(()).ok_or(EntryError::Name)
}

pub fn check_caption(caption: &str) -> Result<(), EntryError> {
    (caption.chars().count() <= MAX_CAPTION_CHARS)
        .then_some(())
        .ok_or(EntryError::Caption)
}

impl NewAttachment {
    /// Checks every value of the entry.
    pub fn check(&self) -> Result<(), EntryError> {
        check_id(&self.id)?;
        check_sha256(&self.sha256)?;
        check_size(self.size)?;
        check_media_type(&self.media_type)?;
        check_name(&self.name)?;
        check_caption(&self.caption)
    }
}

/// A name safe to write as one path component of an archive or a download, whatever the entry
/// holds (entries written before these rules, or by a server that did not check them): path
/// separators, control characters and a leading dot become `_`, and it is at most 120
/// characters, keeping the extension.
pub fn safe_file_name(name: &str) -> String {
    let mut cleaned: String = name
        .chars()
        .map(|c| {
            if c == '/' || c == '\\' || c.is_control() || c == ':' {
                '_'
            } else {
                c
            }
        })
        .collect();
    cleaned = cleaned.trim().to_owned();
    while cleaned.starts_with('.') {
        cleaned.replace_range(..1, "_");
    }
    if cleaned.is_empty() {
        cleaned = "file".into();
    }
    if cleaned.chars().count() > 120 {
        let ext: String = match cleaned.rsplit_once('.') {
            Some((_, ext)) if (1..=10).contains(&ext.chars().count()) => format!(".{ext}"),
            _ => String::new(),
        };
        let keep = 120 - ext.chars().count();
        cleaned = cleaned.chars().take(keep).collect::<String>() + &ext;
    }
    cleaned
}

/// Every `attachments` map of the document: one, or several made concurrently.
pub(crate) fn maps(doc: &impl ReadDoc) -> Vec<ObjId> {
    doc.get_all(ROOT, ATTACHMENTS)
        .unwrap_or_default()
        .into_iter()
        .filter(|(v, _)| matches!(v, Value::Object(ObjType::Map)))
        .map(|(_, id)| id)
        .collect()
}

/// The map new entries go in: the one automerge shows (the others are read too).
pub(crate) fn current_map(doc: &impl ReadDoc) -> Option<ObjId> {
    match doc.get(ROOT, ATTACHMENTS) {
        Ok(Some((Value::Object(ObjType::Map), id))) => Some(id),
        _ => None,
    }
}

/// The entry `id` and the map it is in.
pub(crate) fn find(doc: &impl ReadDoc, id: &str) -> Option<(ObjId, ObjId)> {
    maps(doc)
        .into_iter()
        .find_map(|map| match doc.get(&map, id) {
            Ok(Some((Value::Object(ObjType::Map), entry))) => Some((map, entry)),
            _ => None,
        })
}

fn scalar(doc: &impl ReadDoc, obj: &ObjId, key: &str) -> Option<ScalarValue> {
    match doc.get(obj, key) {
        Ok(Some((Value::Scalar(s), _))) => Some(s.into_owned()),
        _ => None,
    }
}

/// Reads one entry; `None` if it lacks a required key or holds a value of the wrong type.
pub(crate) fn read_entry(doc: &impl ReadDoc, id: &str, entry: &ObjId) -> Option<Attachment> {
    let text = |key| scalar(doc, entry, key).and_then(|s| s.as_str().map(str::to_owned));
    let int = |key| scalar(doc, entry, key).and_then(|s| s.as_i64());
    Some(Attachment {
        id: id.to_owned(),
        sha256: text("sha256")?,
        size: u64::try_from(int("size")?).ok()?,
        media_type: text("type")?,
        name: text("name")?,
        captured_at: Timestamp::from_millis(int("captured_at")?),
        by: text("by")?,
        device: text("device")?,
        metadata: text("metadata").and_then(|m| Metadata::parse(&m)),
        caption: text("caption").unwrap_or_default(),
    })
}

/// Every file the record names, oldest capture first.
pub fn attachments(doc: &impl ReadDoc) -> Vec<Attachment> {
    let mut found = BTreeMap::new();
    for map in maps(doc) {
        for key in doc.keys(&map) {
            if let Ok(Some((Value::Object(ObjType::Map), entry))) = doc.get(&map, &key)
                && let Some(attachment) = read_entry(doc, &key, &entry)
            {
                found.insert(key, attachment);
            }
        }
    }
    let mut list: Vec<Attachment> = found.into_values().collect();
    list.sort_by(|a, b| (a.captured_at, &a.id).cmp(&(b.captured_at, &b.id)));
    list
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn entry_values_are_checked() {
        assert!(check_id("0123456789abcdef0123456789abcdef").is_ok());
        assert!(check_id("0123456789ABCDEF0123456789abcdef").is_err());
        assert!(check_sha256(&"a".repeat(64)).is_ok());
        assert!(check_sha256(&"a".repeat(63)).is_err());
        for ok in [
            "image/jpeg",
            "audio/webm",
            "application/vnd.oasis.opendocument.text",
        ] {
            assert!(check_media_type(ok).is_ok(), "{ok}");
        }
        for bad in [
            "image",
            "image/",
            "/jpeg",
            "Image/JPEG",
            "audio/webm; codecs=opus",
            "a/b c",
        ] {
            assert!(check_media_type(bad).is_err(), "{bad}");
        }
        for ok in ["សាក្សី.jpg", "notice 12.pdf", "a"] {
            assert!(check_name(ok).is_ok(), "{ok}");
        }
        for bad in [
            "",
            ".",
            "..",
            "../etc/passwd",
            "a/b.jpg",
            "a\\b.jpg",
            "bell\u{7}.mp3",
            "x\u{85}",
        ] {
            assert!(check_name(bad).is_err(), "{bad:?}");
        }
        assert!(check_name(&"ក".repeat(MAX_NAME_CHARS)).is_ok());
        assert!(check_name(&"ក".repeat(MAX_NAME_CHARS + 1)).is_err());
        assert!(check_size(0).is_err() && check_size(1).is_ok());
        assert!(check_size(MAX_FILE_BYTES + 1).is_err());
    }

    #[test]
    fn safe_file_names_are_one_harmless_component() {
        assert_eq!(safe_file_name("../../etc/passwd"), "_._.._etc_passwd");
        assert_eq!(safe_file_name("..\\..\\boot.ini"), "_._.._boot.ini");
        assert_eq!(safe_file_name("C:evil.exe"), "C_evil.exe");
        assert_eq!(safe_file_name("bell\u{7}.mp3"), "bell_.mp3");
        assert_eq!(safe_file_name("  "), "file");
        assert_eq!(safe_file_name(".hidden"), "_hidden");
        assert_eq!(safe_file_name("សាក្សី.jpg"), "សាក្សី.jpg");
        let long = format!("{}.jpeg", "ក".repeat(300));
        let safe = safe_file_name(&long);
        assert_eq!(safe.chars().count(), 120);
        assert!(safe.ends_with(".jpeg"));
    }
}
