//! # saksi-shared
//!
//! The document model of Saksi, shared by the server, the PWA (through wasm) and every test
//! client. It is sans-IO: no sockets, no threads, no clock, no random source of its own. Time
//! (`now`, a [`Timestamp`]; the served document's hold-back, a `Duration` on the driver's
//! monotonic clock) and randomness (ids, actor ids) are passed in, so it builds for
//! `wasm32-unknown-unknown` and its tests are deterministic.
//!
//! - [`id`]: document ids compatible with automerge-repo (`automerge:` URLs).
//! - [`catalogue`]: record kinds and every field, with English and Khmer labels.
//! - [`attachment`]: the files a record names (photos, audio, documents): entries in the
//!   record, bytes outside it; [`media`]: a photo's location and camera data removed.
//! - [`record`]: a typed API over one record's automerge document: fields, narratives, lists,
//!   conflicts, resolution, workflow, review trail, history.
//! - [`time`]: [`Timestamp`], a moment in milliseconds since the epoch; lengths of time are
//!   `Duration`s.
//! - [`workflow`]: roles, statuses and who may move a record along.
//! - [`validate`]: checks before submission, messages in both languages.
//! - [`schema`]: schema versions and forward migrations.
//! - [`changes`] and [`policy`]: what a change touches, and whether its sender may make it
//!   (the server's write authorisation).
//! - [`cbor`] and [`protocol`]: the automerge-repo wire protocol v1.
//! - [`served`]: one document as a server serves it ([`served::ServedDocument`]): read check,
//!   creation, write policy, durability, batching; the server's document task and the test hub
//!   both drive it.
//! - [`sync`]: the sans-IO sync engine ([`sync::DocSync`] per document, [`sync::Repo`] per
//!   client). The test hub that runs many peers in one process, and the fuzz entry points, are
//!   in the dev-only `saksi-testkit` crate: this crate ships no test code.

pub mod attachment;
pub mod catalogue;
pub mod cbor;
mod change_graph;
pub mod changes;
pub mod id;
pub mod integrity;
pub mod media;
pub mod policy;
pub mod protocol;
pub mod record;
pub mod schema;
pub mod served;
pub mod structure;
pub mod sync;
pub mod time;
pub mod validate;
pub mod who;
pub mod workflow;

pub use automerge;
pub use catalogue::{FieldType, Lang, RecordKind};
pub use id::DocumentId;
pub use record::{Editor, FieldInput, FieldValue, Record, RecordView};
pub use time::Timestamp;
pub use who::{DeviceId, Who};
pub use workflow::{Role, Status};
