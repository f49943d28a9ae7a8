//! # saksi-wasm
//!
//! The PWA's window on [`saksi_shared`]: a thin wasm-bindgen layer, built by `cargo xtask wasm`
//! into the ES module `pwa/dist/pkg/saksi_wasm.js` (wasm-bindgen `--target web`). It adds no
//! behaviour of its own; every rule (fields, workflow, validation, sync) lives in `shared`.
//!
//! ```js
//! import init, { Engine, catalogue } from "/pkg/saksi_wasm.js";
//! await init();
//! const random = (n) => crypto.getRandomValues(new Uint8Array(n));
//! const engine = new Engine("tab-" + crypto.randomUUID(), random(16),
//!   JSON.stringify({ user: "dara", device: "phone-1", role: "monitor" }));
//! const id = engine.createRecord("court_observation", caseId, Date.now(), random(16));
//! engine.setField(id, "court", JSON.stringify("សាលាដំបូងខេត្តកណ្ដាល"), Date.now());
//! engine.setText(id, "narrative", textarea.value, Date.now());
//! const view = JSON.parse(engine.view(id));
//! ```
//!
//! Conventions, the same for every method:
//! - **Structured values cross as JSON strings**, in the serde form of the shared types
//!   (`view` is a `RecordView`, `validate` a list of `Problem`s, ...). Field values passed in
//!   are JSON too: `"\"text\""` or `"5"`.
//! - **Time and randomness come from the caller**: `nowMs` is `Date.now()`; actor ids and
//!   document ids are 16 bytes from `crypto.getRandomValues`.
//! - **Document ids** are automerge-repo ids (bs58check); `automerge:<id>` URLs are accepted too.
//! - **Errors are thrown** as JS `Error`s whose message is the Rust error's `Display`. Bad input
//!   (malformed ids, JSON, numbers, unknown fields) is an error, never a panic, and leaves the
//!   engine unchanged.
//! - **Text positions** (`spliceText`) count Unicode code points, while JS strings index UTF-16
//!   code units: Khmer is all in the Basic Multilingual Plane, but emoji and some rare scripts
//!   are not. Convert (`[...s.slice(0, utf16Pos)].length`) or prefer `setText`, which takes the
//!   whole new text and writes only the difference.
//!
//! The sync methods (`connect`, `receive`, `takeOutgoing`, `disconnected`) are the sans-IO
//! [`saksi_shared::sync::Repo`]: the page owns the WebSocket and moves bytes in and out.

mod error;

use saksi_shared::Timestamp;
use saksi_shared::catalogue::RecordKind;
use saksi_shared::record::{Editor, FieldInput, Record};
use saksi_shared::sync::{Event, Repo};
use saksi_shared::validate;
use saksi_shared::workflow::{self, Status};
use saksi_shared::{DocumentId, id::URL_PREFIX};
use serde::Serialize;
use wasm_bindgen::prelude::*;

pub use error::Error;
use error::echo;

/// SHA-256 of bytes given piece by piece: a 100 MB recording is hashed at capture without ever
/// being in memory whole.
#[wasm_bindgen]
#[derive(Debug, Default)]
pub struct Sha256Stream(sha2::Sha256);

#[wasm_bindgen]
impl Sha256Stream {
    #[wasm_bindgen(constructor)]
    pub fn new() -> Sha256Stream {
        Sha256Stream::default()
    }

    pub fn update(&mut self, bytes: &[u8]) {
        sha2::Digest::update(&mut self.0, bytes);
    }

    /// The digest as 64 lower-case hex digits (the hasher starts over).
    pub fn finish(&mut self) -> String {
        let digest = sha2::Digest::finalize_reset(&mut self.0);
        digest.iter().map(|b| format!("{b:02x}")).collect()
    }
}

/// A photo without its location and camera data ([`saksi_shared::media`]). Throws for types
/// it cannot clean and for damaged photos.
#[wasm_bindgen(js_name = stripPhotoMetadata)]
pub fn strip_photo_metadata(
    #[wasm_bindgen(js_name = mediaType)] media_type: &str,
    bytes: &[u8],
) -> Result<Vec<u8>, Error> {
    Ok(saksi_shared::media::strip_metadata(media_type, bytes)?)
}

/// The field catalogue (kinds, sections, fields, choices, labels in English and Khmer) as JSON.
#[wasm_bindgen]
pub fn catalogue() -> String {
    saksi_shared::catalogue::catalogue_json()
}

/// Argon2id (version 0x13, one lane) of `secret` with `salt`: 32 bytes. The phone's PIN key
/// (`pwa/web/js/kdf-worker.js` runs it in a worker, so the memory it takes is given back when
/// the worker ends). `memoryKib` is the memory cost in KiB, `passes` the time cost.
#[wasm_bindgen]
pub fn argon2id(
    secret: &[u8],
    salt: &[u8],
    #[wasm_bindgen(js_name = memoryKib)] memory_kib: u32,
    passes: u32,
) -> Result<Vec<u8>, Error> {
    use argon2::{Algorithm, Argon2, Params, Version};
    let params = Params::new(memory_kib, passes, 1, Some(32))
        .map_err(|e| Error::Kdf(format!("parameters: {e}")))?;
    let mut key = vec![0u8; 32];
    Argon2::new(Algorithm::Argon2id, Version::V0x13, params)
        .hash_password_into(secret, salt, &mut key)
        .map_err(|e| Error::Kdf(e.to_string()))?;
    Ok(key)
}

/// The UTC calendar date (`YYYY-MM-DD`) of a time in milliseconds since the epoch.
#[wasm_bindgen(js_name = dateOfMillis)]
pub fn date_of_millis(ms: f64) -> Result<String, Error> {
    Ok(validate::date_of(millis("ms", ms)?))
}

/// A client's documents and their sync with the server, edited as one signed-in user on one
/// device (see the crate docs for the conventions).
#[wasm_bindgen]
#[derive(Debug)]
pub struct Engine {
    repo: Repo,
    editor: Editor,
}

#[wasm_bindgen]
impl Engine {
    /// `peerId` names this tab on the wire; `actor` is 16 random bytes (the automerge actor of
    /// this device's edits); `editorJson` is `{"user","device","role"}` of the signed-in user.
    #[wasm_bindgen(constructor)]
    pub fn new(
        #[wasm_bindgen(js_name = peerId)] peer_id: String,
        actor: &[u8],
        #[wasm_bindgen(js_name = editorJson)] editor_json: &str,
    ) -> Result<Engine, Error> {
        if peer_id.is_empty() {
            return Err(Error::Empty("peerId"));
        }
        let actor = bytes16("actor", actor)?;
        let editor: Editor =
            from_json("editorJson", "{\"user\",\"device\",\"role\"}", editor_json)?;
        if editor.who.user.is_empty() {
            return Err(Error::Empty("editor.user"));
        }
        if editor.who.device.is_empty() {
            return Err(Error::Empty("editor.device"));
        }
        Ok(Engine {
            repo: Repo::new(peer_id.into(), actor),
            editor,
        })
    }

    /// Advertises a storage id in the handshake, so the server keeps sync state across
    /// reconnects. Takes effect on the next `connect`.
    #[wasm_bindgen(js_name = setStorageId)]
    pub fn set_storage_id(&mut self, id: String) {
        self.repo.set_storage_id(id);
    }

    /// Creates a record of `kind` in case `caseId` and returns its document id. `idBytes` are
    /// 16 random bytes. A new case is its own case: pass `""` as `caseId`.
    #[wasm_bindgen(js_name = createRecord)]
    pub fn create_record(
        &mut self,
        kind: &str,
        #[wasm_bindgen(js_name = caseId)] case_id: &str,
        #[wasm_bindgen(js_name = nowMs)] now_ms: f64,
        #[wasm_bindgen(js_name = idBytes)] id_bytes: &[u8],
    ) -> Result<String, Error> {
        let kind = RecordKind::parse(kind).ok_or_else(|| Error::UnknownKind(echo(kind)))?;
        let now = millis("nowMs", now_ms)?;
        let id_bytes = bytes16("idBytes", id_bytes)?;
        if !self.editor.role.may_create(kind) {
            return Err(Error::MayNotCreate {
                role: self.editor.role,
                kind,
            });
        }
        let id = DocumentId::from_bytes(id_bytes);
        let case = if kind == RecordKind::Case && case_id.is_empty() {
            id
        } else {
            doc_id(case_id)?
        };
        if self.repo.record(&id).is_some() {
            return Err(Error::AlreadyThere(id));
        }
        Ok(self
            .repo
            .create(kind, &case, &self.editor, now, id_bytes)
            .to_string())
    }

    /// Adds a document loaded from local storage (the bytes of `save`), with its persisted
    /// sync state (`syncState`) if there is one. Refused if a non-empty document with this id
    /// is already open: remove it first.
    #[wasm_bindgen(js_name = addDocument)]
    pub fn add_document(
        &mut self,
        id: &str,
        bytes: &[u8],
        #[wasm_bindgen(js_name = syncState)] sync_state: Option<Vec<u8>>,
    ) -> Result<(), Error> {
        let id = doc_id(id)?;
        if self.repo.record(&id).is_some_and(|r| !r.is_empty()) {
            return Err(Error::AlreadyThere(id));
        }
        self.repo.add_document(id, bytes, sync_state.as_deref())?;
        Ok(())
    }

    /// Asks the server for a document this device does not have yet (an empty placeholder
    /// until it arrives; see `isEmpty`). Does nothing if the document is already here.
    pub fn request(&mut self, id: &str) -> Result<(), Error> {
        self.repo.request(doc_id(id)?);
        Ok(())
    }

    /// Forgets a document on this device (it stays on the server). Does nothing if it is not
    /// here.
    pub fn remove(&mut self, id: &str) -> Result<(), Error> {
        self.repo.remove(&doc_id(id)?);
        Ok(())
    }

    /// The ids of every document on this device.
    pub fn documents(&self) -> Vec<String> {
        self.repo.documents().map(DocumentId::to_string).collect()
    }

    /// Whether the document is on this device (possibly still empty).
    pub fn has(&self, id: &str) -> Result<bool, Error> {
        Ok(self.repo.record(&doc_id(id)?).is_some())
    }

    /// Whether the document was requested but nothing of it has arrived yet.
    #[wasm_bindgen(js_name = isEmpty)]
    pub fn is_empty(&self, id: &str) -> Result<bool, Error> {
        Ok(self.record(id)?.is_empty())
    }

    /// The merged record as JSON (`RecordView`: kind, status, title, fields, conflicts, review,
    /// heads, ...). Throws if the document is not (yet) a record.
    pub fn view(&self, id: &str) -> Result<String, Error> {
        to_json(&self.record(id)?.view()?)
    }

    /// Writes a scalar field. `valueJson` is a JSON string (`"\"yes\""`) or integer (`"5"`).
    #[wasm_bindgen(js_name = setField)]
    pub fn set_field(
        &mut self,
        id: &str,
        field: &str,
        #[wasm_bindgen(js_name = valueJson)] value_json: &str,
        #[wasm_bindgen(js_name = nowMs)] now_ms: f64,
    ) -> Result<(), Error> {
        let value = field_input(value_json)?;
        let now = millis("nowMs", now_ms)?;
        self.edit(id, |r, editor| r.set_field(field, value, editor, now))
    }

    /// Removes a scalar field's value.
    #[wasm_bindgen(js_name = clearField)]
    pub fn clear_field(
        &mut self,
        id: &str,
        field: &str,
        #[wasm_bindgen(js_name = nowMs)] now_ms: f64,
    ) -> Result<(), Error> {
        let now = millis("nowMs", now_ms)?;
        self.edit(id, |r, editor| r.clear_field(field, editor, now))
    }

    /// Makes a narrative hold `text`, writing only the difference (safe for concurrent typing,
    /// and free of offset arithmetic). Nothing is written if the text is unchanged.
    #[wasm_bindgen(js_name = setText)]
    pub fn set_text(
        &mut self,
        id: &str,
        field: &str,
        text: &str,
        #[wasm_bindgen(js_name = nowMs)] now_ms: f64,
    ) -> Result<(), Error> {
        let now = millis("nowMs", now_ms)?;
        self.edit(id, |r, editor| r.set_text(field, text, editor, now))
    }

    /// Deletes `del` characters at `pos` of a narrative and inserts `insert` there. `pos` and
    /// `del` count **Unicode code points**, not UTF-16 code units: JS callers must convert
    /// (e.g. `[...text.slice(0, utf16Pos)].length`), or use `setText`.
    #[wasm_bindgen(js_name = spliceText)]
    pub fn splice_text(
        &mut self,
        id: &str,
        field: &str,
        pos: f64,
        del: f64,
        insert: &str,
        #[wasm_bindgen(js_name = nowMs)] now_ms: f64,
    ) -> Result<(), Error> {
        let pos = count("pos", pos)?;
        let del = count("del", del)?;
        let now = millis("nowMs", now_ms)?;
        self.edit(id, |r, editor| {
            r.splice_text(field, pos, del, insert, editor, now)
        })
    }

    /// Makes a list field hold `itemsJson` (a JSON array of strings), touching only the items
    /// that differ.
    #[wasm_bindgen(js_name = setList)]
    pub fn set_list(
        &mut self,
        id: &str,
        field: &str,
        #[wasm_bindgen(js_name = itemsJson)] items_json: &str,
        #[wasm_bindgen(js_name = nowMs)] now_ms: f64,
    ) -> Result<(), Error> {
        let items: Vec<String> = from_json("itemsJson", "an array of strings", items_json)?;
        let now = millis("nowMs", now_ms)?;
        self.edit(id, |r, editor| r.set_list(field, &items, editor, now))
    }

    /// Attaches a file to a record: `fileJson` is its entry without the author
    /// (`{id, sha256, size, type, name, captured_at, metadata?, caption?}`), the bytes stay
    /// with the caller.
    #[wasm_bindgen(js_name = addAttachment)]
    pub fn add_attachment(
        &mut self,
        id: &str,
        #[wasm_bindgen(js_name = fileJson)] file_json: &str,
        #[wasm_bindgen(js_name = nowMs)] now_ms: f64,
    ) -> Result<(), Error> {
        let file: saksi_shared::attachment::NewAttachment =
            from_json("fileJson", "a file entry", file_json)?;
        let now = millis("nowMs", now_ms)?;
        self.edit(id, |r, editor| r.add_attachment(&file, editor, now))
    }

    /// Removes a file's entry (its author, or a coordinator).
    #[wasm_bindgen(js_name = removeAttachment)]
    pub fn remove_attachment(
        &mut self,
        id: &str,
        #[wasm_bindgen(js_name = attachmentId)] attachment_id: &str,
        #[wasm_bindgen(js_name = nowMs)] now_ms: f64,
    ) -> Result<(), Error> {
        let now = millis("nowMs", now_ms)?;
        self.edit(id, |r, editor| {
            r.remove_attachment(attachment_id, editor, now)
        })
    }

    /// Writes (or, empty, clears) a file's caption.
    #[wasm_bindgen(js_name = setCaption)]
    pub fn set_caption(
        &mut self,
        id: &str,
        #[wasm_bindgen(js_name = attachmentId)] attachment_id: &str,
        caption: &str,
        #[wasm_bindgen(js_name = nowMs)] now_ms: f64,
    ) -> Result<(), Error> {
        let now = millis("nowMs", now_ms)?;
        self.edit(id, |r, editor| {
            r.set_caption(attachment_id, caption, editor, now)
        })
    }

    /// Moves the record to `toStatus` (`submitted`, `needs_changes`, `approved`, `archived`),
    /// with an optional comment, if the editor's role may take that step.
    pub fn transition(
        &mut self,
        id: &str,
        #[wasm_bindgen(js_name = toStatus)] to_status: &str,
        comment: Option<String>,
        #[wasm_bindgen(js_name = nowMs)] now_ms: f64,
    ) -> Result<(), Error> {
        let to = Status::parse(to_status).ok_or_else(|| Error::UnknownStatus(echo(to_status)))?;
        let now = millis("nowMs", now_ms)?;
        self.edit(id, |r, editor| {
            r.transition(to, comment.as_deref(), editor, now)
        })
    }

    /// Adds a comment to the review trail.
    pub fn comment(
        &mut self,
        id: &str,
        text: &str,
        #[wasm_bindgen(js_name = nowMs)] now_ms: f64,
    ) -> Result<(), Error> {
        let now = millis("nowMs", now_ms)?;
        self.edit(id, |r, editor| r.comment(text, editor, now))
    }

    /// Records that the family withdrew consent to a family statement (liaisons and
    /// coordinators): it asks a coordinator to purge the record.
    #[wasm_bindgen(js_name = withdrawConsent)]
    pub fn withdraw_consent(
        &mut self,
        id: &str,
        note: &str,
        #[wasm_bindgen(js_name = nowMs)] now_ms: f64,
    ) -> Result<(), Error> {
        let now = millis("nowMs", now_ms)?;
        self.edit(id, |r, editor| r.withdraw_consent(note, editor, now))
    }

    /// Resolves a conflict on `field` with the chosen value (JSON, as for `setField`).
    /// Coordinators only.
    pub fn resolve(
        &mut self,
        id: &str,
        field: &str,
        #[wasm_bindgen(js_name = valueJson)] value_json: &str,
        #[wasm_bindgen(js_name = nowMs)] now_ms: f64,
    ) -> Result<(), Error> {
        let value = field_input(value_json)?;
        let now = millis("nowMs", now_ms)?;
        self.edit(id, |r, editor| r.resolve(field, value, editor, now))
    }

    /// The workflow steps the editor's role may take from the record's current status, as JSON
    /// `[{"to":"submitted","action":"submit"}, ...]`.
    #[wasm_bindgen(js_name = allowedTransitions)]
    pub fn allowed_transitions(&self, id: &str) -> Result<String, Error> {
        #[derive(Serialize)]
        struct Step {
            to: &'static str,
            action: &'static str,
        }
        let record = self.record(id)?;
        let status = match record.meta() {
            Some(meta) => meta.status,
            // Not a record: let the view say what is missing.
            None => record.view()?.status,
        };
        let steps: Vec<Step> = workflow::transitions_from(status, self.editor.role)
            .map(|t| Step {
                to: t.to.as_str(),
                action: t.action.as_str(),
            })
            .collect();
        to_json(&steps)
    }

    /// The problems that block submission, as a JSON array of `Problem`
    /// (`{"field","code","en","km"}`). `todayYmd` is the user's local date, `YYYY-MM-DD`.
    pub fn validate(
        &self,
        id: &str,
        #[wasm_bindgen(js_name = todayYmd)] today_ymd: &str,
    ) -> Result<String, Error> {
        if validate::parse_date(today_ymd).is_none() {
            return Err(Error::BadDate(echo(today_ymd)));
        }
        to_json(&self.record(id)?.validate_for_submit(today_ymd)?)
    }

    /// Every change of the record, oldest first, as a JSON array of `HistoryEntry`
    /// (`{"by":{user,device,actor,at,change},"edits":[...]}`).
    pub fn history(&self, id: &str) -> Result<String, Error> {
        to_json(&self.record(id)?.history())
    }

    /// The changes that edited `field`, oldest first (JSON, as `history`).
    #[wasm_bindgen(js_name = fieldHistory)]
    pub fn field_history(&self, id: &str, field: &str) -> Result<String, Error> {
        to_json(&self.record(id)?.field_history(field))
    }

    /// The whole document, compacted, for local storage (load it back with `addDocument`).
    pub fn save(&self, id: &str) -> Result<Vec<u8>, Error> {
        Ok(self.record(id)?.save())
    }

    /// The persistable sync state of the document with the server (store it beside the
    /// document), or `undefined` if there is none yet.
    #[wasm_bindgen(js_name = syncState)]
    pub fn sync_state(&self, id: &str) -> Result<Option<Vec<u8>>, Error> {
        let id = self.known(id)?;
        Ok(self.repo.sync_state(&id))
    }

    /// Whether the connected server is known to have every local change of the document.
    #[wasm_bindgen(js_name = isSynced)]
    pub fn is_synced(&self, id: &str) -> Result<bool, Error> {
        let id = self.known(id)?;
        Ok(self.repo.is_synced(&id))
    }

    /// How many documents have changes the server is not known to have.
    #[wasm_bindgen(js_name = unsyncedCount)]
    pub fn unsynced_count(&self) -> u32 {
        u32::try_from(self.repo.unsynced_count()).unwrap_or(u32::MAX)
    }

    /// The documents whose changes the server refused on this connection (they stay here).
    pub fn refused(&self) -> Vec<String> {
        self.repo.refused().map(DocumentId::to_string).collect()
    }

    /// Starts a connection: returns the `join` frame to send first on the fresh WebSocket.
    pub fn connect(&mut self) -> Vec<u8> {
        self.repo.connect()
    }

    /// Handles one binary frame from the server and returns what happened, as a JSON array:
    /// `{"type":"connected","server"}`, `{"type":"changed","id"}`, `{"type":"unavailable","id"}`,
    /// `{"type":"refused","id","message"}`, `{"type":"server_error","message"}`.
    /// Throws on a malformed or unexpected frame: close the connection then.
    pub fn receive(&mut self, frame: &[u8]) -> Result<String, Error> {
        let events: Vec<JsEvent> = self
            .repo
            .receive(frame)?
            .into_iter()
            .map(JsEvent::from)
            .collect();
        to_json(&events)
    }

    /// The frames to send now (each one binary WebSocket message). Call after `connect`'s
    /// handshake, after every `receive` and after every local edit.
    #[wasm_bindgen(js_name = takeOutgoing)]
    pub fn take_outgoing(&mut self) -> Vec<js_sys::Uint8Array> {
        self.repo
            .take_outgoing()
            .iter()
            .map(|frame| js_sys::Uint8Array::from(frame.as_slice()))
            .collect()
    }

    /// The connection went away. Sync states are kept, so the next connection resumes.
    pub fn disconnected(&mut self) {
        self.repo.disconnected();
    }

    /// Whether the handshake with the server is done and the connection is up.
    #[wasm_bindgen(js_name = isConnected)]
    pub fn is_connected(&self) -> bool {
        self.repo.is_connected()
    }
}

impl Engine {
    fn known(&self, id: &str) -> Result<DocumentId, Error> {
        let id = doc_id(id)?;
        match self.repo.record(&id) {
            Some(_) => Ok(id),
            None => Err(Error::NoDocument(id)),
        }
    }

    fn record(&self, id: &str) -> Result<&Record, Error> {
        let id = doc_id(id)?;
        self.repo.record(&id).ok_or(Error::NoDocument(id))
    }

    fn edit<F>(&mut self, id: &str, f: F) -> Result<(), Error>
    where
        F: FnOnce(&mut Record, &Editor) -> Result<(), saksi_shared::record::RecordError>,
    {
        let id = doc_id(id)?;
        let editor = &self.editor;
        self.repo
            .edit(&id, |r| f(r, editor))
            .ok_or(Error::NoDocument(id))??;
        Ok(())
    }

    /// `takeOutgoing` for Rust callers (tests): the frames as bytes.
    pub fn take_outgoing_frames(&mut self) -> Vec<Vec<u8>> {
        self.repo.take_outgoing()
    }
}

/// An [`Event`] in the JSON form `receive` returns.
#[derive(Debug, Serialize)]
#[serde(tag = "type", rename_all = "snake_case")]
enum JsEvent {
    Connected { server: String },
    Changed { id: String },
    Unavailable { id: String },
    Withdrawn { id: String },
    Refused { id: String, message: String },
    ServerError { message: String },
}

impl From<Event> for JsEvent {
    fn from(event: Event) -> Self {
        match event {
            Event::Connected { server } => JsEvent::Connected {
                server: server.into_string(),
            },
            Event::DocumentChanged(id) => JsEvent::Changed { id: id.to_string() },
            Event::DocumentUnavailable(id) => JsEvent::Unavailable { id: id.to_string() },
            Event::DocumentWithdrawn(id) => JsEvent::Withdrawn { id: id.to_string() },
            Event::ChangesRefused { document, message } => JsEvent::Refused {
                id: document.to_string(),
                message,
            },
            Event::ServerError(message) => JsEvent::ServerError { message },
        }
    }
}

/// A document id, bare or as an `automerge:` URL.
fn doc_id(s: &str) -> Result<DocumentId, Error> {
    let bare = s.strip_prefix(URL_PREFIX).unwrap_or(s);
    DocumentId::parse(bare).map_err(|e| Error::BadId(echo(s), e))
}

fn bytes16(what: &'static str, bytes: &[u8]) -> Result<[u8; 16], Error> {
    bytes.try_into().map_err(|_| Error::WrongLength {
        what,
        len: bytes.len(),
    })
}

/// The largest integer a JS number holds exactly.
const MAX_SAFE_INTEGER: f64 = 9_007_199_254_740_991.0;

/// A moment from JavaScript: milliseconds since the epoch (fractions are dropped).
fn millis(name: &'static str, value: f64) -> Result<Timestamp, Error> {
    if value.is_finite() && value.abs() <= MAX_SAFE_INTEGER {
        // In range, so the cast is exact after truncation.
        Ok(Timestamp::from_millis(value.trunc() as i64))
    } else {
        Err(Error::BadNumber {
            name,
            expected: "a time in milliseconds",
            value,
        })
    }
}

/// A position or length: a whole number, not negative.
fn count(name: &'static str, value: f64) -> Result<usize, Error> {
    if value.is_finite() && value >= 0.0 && value.fract() == 0.0 && value <= MAX_SAFE_INTEGER {
        usize::try_from(value as u64).map_err(|_| Error::BadNumber {
            name,
            expected: "a whole number that is not negative",
            value,
        })
    } else {
        Err(Error::BadNumber {
            name,
            expected: "a whole number that is not negative",
            value,
        })
    }
}

fn field_input(value_json: &str) -> Result<FieldInput, Error> {
    from_json(
        "valueJson",
        "a field value (a JSON string or whole number)",
        value_json,
    )
}

fn from_json<T: serde::de::DeserializeOwned>(
    what: &'static str,
    expected: &'static str,
    json: &str,
) -> Result<T, Error> {
    serde_json::from_str(json).map_err(|source| Error::Json {
        what,
        expected,
        source,
    })
}

fn to_json<T: Serialize>(value: &T) -> Result<String, Error> {
    serde_json::to_string(value).map_err(|source| Error::Json {
        what: "the result",
        expected: "serialisation",
        source,
    })
}

#[cfg(test)]
mod tests;
