//! The one error type of the bindings. It becomes a JS `Error` whose message is its `Display`.

use saksi_shared::id::IdError;
use saksi_shared::record::RecordError;
use saksi_shared::sync::RepoError;
use saksi_shared::{DocumentId, RecordKind, Role};
use wasm_bindgen::JsValue;

/// Why a call into the engine failed. Nothing was changed.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("`{0}` is not a document id: {1}")]
    BadId(String, IdError),
    #[error("document {0} is not on this device")]
    NoDocument(DocumentId),
    #[error("document {0} is already on this device")]
    AlreadyThere(DocumentId),
    #[error("{what} must be 16 bytes, got {len}")]
    WrongLength { what: &'static str, len: usize },
    #[error("{what} is not valid JSON for {expected}: {source}")]
    Json {
        what: &'static str,
        expected: &'static str,
        source: serde_json::Error,
    },
    #[error("`{0}` is not a record kind (case, court_observation, family_statement)")]
    UnknownKind(String),
    #[error("`{0}` is not a status (draft, submitted, needs_changes, approved, archived)")]
    UnknownStatus(String),
    #[error("{name} must be {expected}, got {value}")]
    BadNumber {
        name: &'static str,
        expected: &'static str,
        value: f64,
    },
    #[error("{0} must not be empty")]
    Empty(&'static str),
    #[error("key derivation failed: {0}")]
    Kdf(String),
    #[error("a {} may not create a {}", .role.as_str(), .kind.as_str())]
    MayNotCreate { role: Role, kind: RecordKind },
    #[error("today must be a date (YYYY-MM-DD), got `{0}`")]
    BadDate(String),
    #[error(transparent)]
    Record(#[from] RecordError),
    #[error(transparent)]
    Media(#[from] saksi_shared::media::MediaError),
    #[error(transparent)]
    Sync(#[from] RepoError),
}

impl From<Error> for JsValue {
    fn from(e: Error) -> JsValue {
        js_sys::Error::new(&e.to_string()).into()
    }
}

/// Caller input echoed in a message, cut short so that a hostile or mistaken megabyte string
/// does not become a megabyte error message.
pub(crate) fn echo(s: &str) -> String {
    const MAX: usize = 48;
    match s.char_indices().nth(MAX) {
        Some((cut, _)) => format!("{}…", &s[..cut]),
        None => s.to_owned(),
    }
}
