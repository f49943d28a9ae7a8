//! The reconnect-storm workload, generated once and replayed identically against each server.
//!
//! One case, `D` court observations created by device 0, and `N` devices (one monitor account
//! each, all members of the case). Every device starts from the same base documents and makes
//! `K` offline edits spread over the `D` documents with the ordinary [`Record`] API: typing into
//! the narrative and the evidence notes, and now and then setting a scalar field (so concurrent
//! values conflict, as they do in the field). Each edit is one automerge change whose commit
//! message names the device, exactly what the write policy expects.
//!
//! For every document the generator keeps a [`Table`] of every change that will exist: the base
//! changes, every device's offline changes, and the live edits made after convergence. The
//! expected heads once everything has merged come from applying all of them to a reference copy.

use std::collections::HashMap;
use std::sync::Arc;

use saksi_shared::automerge::{ActorId, Automerge, Change, ChangeHash};
use saksi_shared::catalogue::RecordKind;
use saksi_shared::record::{Editor, FieldInput, Record};
use saksi_shared::{DocumentId, Role, Timestamp};
use saksi_testkit::{at, ms};

pub use saksi_testkit::Rng;

/// One change that will exist in a document.
#[derive(Debug)]
pub struct Known {
    pub hash: ChangeHash,
    /// Indices (in the same table) of the changes it depends on.
    pub deps: Vec<u32>,
    /// The change chunk as automerge encodes it.
    pub bytes: Vec<u8>,
}

/// Every change of one document, in a causal order (a change comes after its dependencies).
#[derive(Debug, Default)]
pub struct Table {
    pub changes: Vec<Known>,
    pub index: HashMap<ChangeHash, u32>,
    /// The four checksum bytes of each change chunk's header (the start of its hash) → index,
    /// `u32::MAX` where two changes share them.
    pub by_checksum: HashMap<u32, u32>,
    /// How many changes the base document has (indices `0..base`).
    pub base: u32,
    /// The heads once every offline edit has merged (sorted by hash).
    pub expected_heads: Vec<u32>,
}

impl Table {
    fn push(&mut self, change: &Change) -> u32 {
        let hash = change.hash();
        if let Some(&i) = self.index.get(&hash) {
            return i;
        }
        let idx = self.changes.len() as u32;
        let deps = change
            .deps()
            .iter()
            .map(|d| *self.index.get(d).expect("dependencies come first"))
            .collect();
        let bytes = change.raw_bytes().to_vec();
        let checksum = u32::from_be_bytes([hash.0[0], hash.0[1], hash.0[2], hash.0[3]]);
        self.by_checksum
            .entry(checksum)
            .and_modify(|i| *i = u32::MAX)
            .or_insert(idx);
        self.index.insert(hash, idx);
        self.changes.push(Known { hash, deps, bytes });
        idx
    }

    /// Every change of `doc` (none of them base changes: a peer starting from nothing).
    pub fn from_doc(doc: &Automerge) -> Table {
        let mut table = Table::default();
        for change in doc.get_changes(&[]) {
            table.push(&change);
        }
        let mut heads: Vec<u32> = doc.get_heads().iter().map(|h| table.index[h]).collect();
        heads.sort_by_key(|&i| table.changes[i as usize].hash);
        table.expected_heads = heads;
        table
    }

    pub fn len(&self) -> usize {
        self.changes.len()
    }
}

/// A simulated field device.
#[derive(Debug, Clone)]
pub struct Device {
    pub username: String,
    /// The device id the server assigned at login (or a made-up one without a login).
    pub device_id: String,
    /// The bearer token from the login (Saksi only).
    pub token: Option<String>,
    pub actor: [u8; 16],
    pub peer_id: String,
}

impl Device {
    pub fn editor(&self) -> Editor {
        Editor::new(self.username.clone(), self.device_id.clone(), Role::Monitor)
    }
}

/// An edit made after convergence, to measure how fast it reaches the other devices.
#[derive(Debug, Clone, Copy)]
pub struct LiveEdit {
    pub doc: usize,
    pub device: usize,
    pub idx: u32,
}

/// Everything a storm run needs.
#[derive(Debug)]
pub struct Workload {
    pub docs: Vec<DocumentId>,
    pub devices: Vec<Device>,
    pub tables: Vec<Arc<Table>>,
    /// `own[device][doc]`: the indices of the device's offline changes to that document.
    pub own: Vec<Vec<Vec<u32>>>,
    pub live: Vec<LiveEdit>,
}

pub const START: Timestamp = at(1_767_225_600_000);
const SCALARS: [(&str, &[&str]); 6] = [
    ("court", &["សាលាដំបូងរាជធានីភ្នំពេញ", "តុលាការខេត្តសៀមរាប"]),
    ("case_number", &["លេខ ១២៣/២០២៦", "No. 45/2026"]),
    ("prosecutor", &["ព្រះរាជអាជ្ញា ក", "Prosecutor B"]),
    ("closure_reason", &["សន្តិសុខ", "no reason given"]),
    ("public_admitted", &["yes", "no", "unknown"]),
    ("press_admitted", &["yes", "no", "unknown"]),
];

/// The base documents: `docs` court observations in `case`, created by `creator`.
pub fn base_documents(
    rng: &mut Rng,
    case: DocumentId,
    docs: usize,
    creator: &Device,
) -> (Vec<DocumentId>, Vec<Vec<u8>>) {
    let editor = creator.editor();
    let mut ids = Vec::new();
    let mut saved = Vec::new();
    for i in 0..docs {
        let id = DocumentId::from_bytes(rng.uuid16());
        let mut record = Record::create(
            RecordKind::CourtObservation,
            &case,
            ActorId::from(creator.actor),
            &editor,
            START + ms(i as u64),
        );
        record
            .set_field(
                "hearing_date",
                FieldInput::Text("2026-01-15".into()),
                &editor,
                START + ms(1),
            )
            .expect("a valid field");
        ids.push(id);
        saved.push(record.save());
    }
    (ids, saved)
}

/// Generates every device's offline edits, the tables and the live edits.
pub fn generate(
    docs: Vec<DocumentId>,
    base: Vec<Vec<u8>>,
    devices: Vec<Device>,
    edits_per_device: usize,
    live_edits: usize,
    seed: u64,
) -> Workload {
    let mut rng = Rng::new(seed);
    let d = docs.len();
    let mut tables: Vec<Table> = Vec::with_capacity(d);
    let mut base_heads = Vec::with_capacity(d);
    for bytes in &base {
        let doc = Automerge::load(bytes).expect("base loads");
        let mut table = Table::default();
        for change in doc.get_changes(&[]) {
            table.push(&change);
        }
        table.base = table.len() as u32;
        base_heads.push(doc.get_heads());
        tables.push(table);
    }
    let mut own = Vec::with_capacity(devices.len());
    for (n, device) in devices.iter().enumerate() {
        let editor = device.editor();
        let mut records: Vec<Record> = base
            .iter()
            .map(|b| Record::load(b, ActorId::from(device.actor)).expect("base loads"))
            .collect();
        for j in 0..edits_per_device {
            let x = (n + j) % d;
            let now = START + ms(60_000 + j as u64 * 1_000 + n as u64);
            let record = &mut records[x];
            let result = match j % 10 {
                9 => {
                    let (field, values) = SCALARS[(n + j / 10) % SCALARS.len()];
                    let value = values[rng.below(values.len())];
                    record.set_field(field, FieldInput::Text(value.into()), &editor, now)
                }
                4 => record.splice_text(
                    "evidence_notes",
                    0,
                    0,
                    &format!("សាក្សី {n}/{j}. "),
                    &editor,
                    now,
                ),
                _ => {
                    record.splice_text("narrative", 0, 0, &format!("ចៅក្រម {n}.{j} "), &editor, now)
                }
            };
            result.expect("a valid edit");
        }
        let mut mine = Vec::with_capacity(d);
        for (x, record) in records.iter().enumerate() {
            let changes = record.doc().get_changes(&base_heads[x]);
            mine.push(changes.iter().map(|c| tables[x].push(c)).collect());
        }
        own.push(mine);
    }

    // Everything merged: the expected heads, then the live edits on top.
    let mut live = Vec::with_capacity(live_edits);
    let mut references = Vec::with_capacity(d);
    for (x, table) in tables.iter_mut().enumerate() {
        let mut doc = Automerge::load(&base[x]).expect("base loads");
        let changes: Vec<Change> = table.changes[table.base as usize..]
            .iter()
            .map(|k| Change::from_bytes(k.bytes.clone()).expect("a change"))
            .collect();
        doc.apply_changes(changes).expect("changes apply");
        let mut heads: Vec<u32> = doc.get_heads().iter().map(|h| table.index[h]).collect();
        heads.sort_by_key(|&i| table.changes[i as usize].hash);
        table.expected_heads = heads;
        references.push(Record::from_automerge(doc));
    }
    for e in 0..live_edits {
        let x = e % d;
        let device = if devices.len() > 1 {
            rng.below(devices.len())
        } else {
            0
        };
        let record = &mut references[x];
        let heads = record.heads();
        record.set_actor(ActorId::from(devices[device].actor));
        record
            .splice_text(
                "narrative",
                0,
                0,
                &format!("ផ្ទាល់ {e} "),
                &devices[device].editor(),
                START + ms(3_600_000 + e as u64),
            )
            .expect("a valid edit");
        let change = record.doc().get_changes(&heads)[0].clone();
        let idx = tables[x].push(&change);
        live.push(LiveEdit {
            doc: x,
            device,
            idx,
        });
    }

    Workload {
        docs,
        devices,
        tables: tables.into_iter().map(Arc::new).collect(),
        own,
        live,
    }
}
