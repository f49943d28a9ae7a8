//! A sans-IO sync engine: automerge sync per (peer, document), speaking the automerge-repo
//! protocol, with every incoming change passed through a [`ChangeGate`] before it is applied.
//!
//! Two layers:
//! - [`DocSync`]: one document and its sync state with each peer. The server keeps one per
//!   document in use and checks incoming changes with the write policy; clients accept all.
//! - [`Repo`]: a client's whole set of documents over one connection to a server: handshake,
//!   `request` / `sync` / `doc-unavailable` / refusals, and what to send next.
//!
//! Nothing here touches a socket, a clock or a random source: bytes in, bytes out, time and
//! randomness passed in. Two peers sync like this:
//!
//! ```
//! use saksi_shared::sync::{Repo, Event};
//! use saksi_shared::record::Editor;
//! use saksi_shared::catalogue::RecordKind;
//! use saksi_shared::workflow::Role;
//! use saksi_shared::record::FieldInput;
//! use saksi_testkit::{Hub, at};
//!
//! let editor = Editor::new("dara", "phone-1", Role::Monitor);
//! let mut hub = Hub::new();
//! let case = hub.create_case([9; 16], at(1));
//! hub.add_member("dara", case);
//!
//! let mut phone = Repo::new("phone-1-tab".into(), [1; 16]);
//! let id = phone.create(RecordKind::CourtObservation, &case, &editor, at(1_000), [2; 16]);
//! phone.edit(&id, |r| r.set_field("court", FieldInput::Text("សាលាដំបូងខេត្ត".into()), &editor, at(2_000)))
//!     .unwrap()
//!     .unwrap();
//!
//! // Connect and pump messages until neither side has anything to say.
//! let conn = hub.connect(&editor);
//! let join = phone.connect();
//! hub.deliver(conn, &join);
//! loop {
//!     let to_phone = hub.take_outgoing(conn);
//!     for frame in &to_phone {
//!         phone.receive(frame).unwrap();
//!     }
//!     let to_hub = phone.take_outgoing();
//!     for frame in &to_hub {
//!         hub.deliver(conn, frame);
//!     }
//!     if to_phone.is_empty() && to_hub.is_empty() {
//!         break;
//!     }
//! }
//! assert_eq!(hub.record(&id).unwrap().field("court").unwrap().unwrap().display(), "សាលាដំបូងខេត្ត");
//! ```

mod doc;
mod gate;
mod repo;
mod wire;

pub use doc::{
    DocSync, Incoming, MAX_WAITING_BYTES, MAX_WAITING_BYTES_PER_PEER, MAX_WAITING_ROUNDS,
    RESTORED_NOTE,
};
pub use gate::{AcceptAll, ChangeGate, Effects, Pending, Received, Verdict};
pub use repo::{Event, Repo, RepoError};
pub use wire::{MAX_CHANGES_PER_MESSAGE, SyncError, changes_message};
