//! The deterministic test suite of `saksi-shared`: everything runs in process, with no sockets,
//! no clock and no sleeps. One test binary (faster to build than one per file), one module per
//! area:
//!
//! - `harness`: phones (`sync::Repo`) around a `saksi_testkit::Hub`, frame by frame, seeded schedules.
//! - `convergence`: the property test of offline edits, random sync orders and conflicts.
//! - `scenario_s2`: DESIGN.md's S2, two monitors offline and a coordinator's resolution.
//! - `sync_engine`: two `DocSync` peers on multi-change messages and bloom false positives.
//! - `indexed_sync`: a server's messages built from its change graph equal automerge's, byte
//!   for byte, under random schedules.
//! - `batch_checks`: the write policy gives the same verdicts on batched and one-at-a-time
//!   application.
//! - `wire_protocol`: hand-derived CBOR vectors of every message, round trips, hostile input.
//! - `write_policy`: refusals of crafted changes, and S3's answer for forbidden documents
//!   (`world`: its hub, phones and helpers, shared with `attachments`).
//! - `attachments`: files' entries in a record: who may add, change and remove them.
//! - `khmer`: Khmer text in every kind of field, through save/load and sync.
//! - `schema_versions`: the committed schema version 1 fixture keeps opening.
//! - `history`: edits attributed to user, device and time.
//! - `served`: the served document's effects: stored before answered, failed stores, changes
//!   from elsewhere.
//! - `withdrawn`: consent withdrawn on family statements; records destroyed (dropped by every
//!   phone, offline edits never retried) and records hidden while their purge waits.
//! - `fuzz_regressions`: every fuzz seed and crasher replayed without a panic.

mod attachments;
mod batch_checks;
mod convergence;
mod fuzz_regressions;
mod harness;
mod history;
mod indexed_sync;
mod khmer;
mod old_heads;
mod scenario_s2;
mod schema_versions;
mod served;
mod sync_engine;
mod wire_protocol;
mod withdrawn;
mod world;
mod write_policy;
