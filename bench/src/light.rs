//! A light automerge sync peer for the load generator: the automerge sync protocol (message
//! format and state machine as in `automerge::sync`) over a change *graph*, without the
//! document's operations.
//!
//! Why: in the storm every device must end up with every change. With 1,000 devices on 10
//! documents of 10,000 changes each, full automerge replicas would need 10,000 documents in the
//! load generator (about 5 MB and 0.5 s of CPU each to apply the changes in one batch, far more
//! one at a time): impossible on the 2-core machine that also runs the server. A light peer only
//! tracks which changes it has. It knows every change of the workload in advance (the
//! [`Table`]), so it recognises an incoming change chunk by the checksum in its header (the first
//! four bytes of its SHA-256 hash) and its length, and falls back to decoding the chunk with
//! automerge for anything else. What it sends is byte for byte what an automerge peer would:
//! its heads, what it needs, a bloom filter of what it has since the last sync, and the changes
//! the server lacks. It advertises no capabilities, so servers answer with individual changes
//! (sync message V1), the format both servers under test share.

use std::sync::Arc;

use saksi_shared::automerge::sync::{
    BloomFilter, Have, Message as SyncMessage, MessageFlags, MessageVersion,
};
use saksi_shared::automerge::{Change, ChangeHash};

use crate::workload::{Known, Table};

/// Where change `i` is, or would go, in `sorted` (change indices sorted by hash).
fn position(changes: &[Known], sorted: &[u32], i: u32) -> Result<usize, usize> {
    let hash = &changes[i as usize].hash;
    sorted.binary_search_by(|&x| changes[x as usize].hash.cmp(hash))
}

/// A set of change indices.
#[derive(Debug, Clone, Default)]
pub struct Bits(Vec<u64>);

impl Bits {
    pub fn with_len(n: usize) -> Bits {
        Bits(vec![0; n.div_ceil(64)])
    }

    pub fn get(&self, i: u32) -> bool {
        let i = i as usize;
        self.0.get(i / 64).is_some_and(|w| w & (1 << (i % 64)) != 0)
    }

    /// Sets the bit; returns whether it was clear.
    pub fn set(&mut self, i: u32) -> bool {
        let i = i as usize;
        if i / 64 >= self.0.len() {
            self.0.resize(i / 64 + 1, 0);
        }
        let was = self.0[i / 64] & (1 << (i % 64)) != 0;
        self.0[i / 64] |= 1 << (i % 64);
        !was
    }
}

/// What one incoming sync message did.
#[derive(Debug, Default)]
pub struct Received {
    /// Indices of the changes that were new.
    pub new: Vec<u32>,
    /// Changes not in the table (the workload does not know them).
    pub unknown: usize,
    pub bytes_of_changes: usize,
}

/// One document on a light peer, and its sync state with one server.
#[derive(Debug)]
pub struct LightDoc {
    table: Arc<Table>,
    have: Bits,
    /// Sorted by hash, like automerge's heads.
    heads: Vec<u32>,
    /// Received before their dependencies.
    waiting: Vec<u32>,
    // The sync state, as in `automerge::sync::State`.
    shared_heads: Vec<u32>,
    last_sent_heads: Vec<u32>,
    their_heads: Option<Vec<ChangeHash>>,
    their_need: Option<Vec<ChangeHash>>,
    their_have: Option<Vec<Have>>,
    sent: Bits,
    in_flight: bool,
    have_responded: bool,
    /// Sent with every message: `Some` advertises the V2 message format (as automerge does).
    flags: Option<MessageFlags>,
}

impl LightDoc {
    /// A peer holding the base document and `own` (its offline changes).
    pub fn new(table: Arc<Table>, own: &[u32]) -> LightDoc {
        let mut doc = LightDoc {
            have: Bits::with_len(table.len()),
            sent: Bits::with_len(table.len()),
            table,
            heads: Vec::new(),
            waiting: Vec::new(),
            shared_heads: Vec::new(),
            last_sent_heads: Vec::new(),
            their_heads: None,
            their_need: None,
            their_have: None,
            in_flight: false,
            have_responded: false,
            flags: None,
        };
        for i in 0..doc.table.base {
            doc.add(i);
        }
        for &i in own {
            doc.add(i);
        }
        doc
    }

    /// Advertises the V2 message format, as automerge peers (and the PWA) do: a server may then
    /// answer a peer that has nothing with the whole compressed document.
    pub fn advertise_v2(mut self) -> LightDoc {
        self.flags = Some(MessageFlags::new());
        self
    }

    /// Forgets the sync state (a new connection starts from scratch), keeping the changes.
    pub fn reset_sync(&mut self) {
        self.shared_heads.clear();
        self.last_sent_heads.clear();
        self.their_heads = None;
        self.their_need = None;
        self.their_have = None;
        self.sent = Bits::with_len(self.table.len());
        self.in_flight = false;
        self.have_responded = false;
    }

    pub fn has(&self, i: u32) -> bool {
        self.have.get(i)
    }

    /// Whether the document has every change of the storm.
    pub fn converged(&self) -> bool {
        self.heads == self.table.expected_heads
    }

    fn hash(&self, i: u32) -> ChangeHash {
        self.table.changes[i as usize].hash
    }

    fn hashes(&self, idxs: &[u32]) -> Vec<ChangeHash> {
        idxs.iter().map(|&i| self.hash(i)).collect()
    }

    fn sort_by_hash(&self, idxs: &mut Vec<u32>) {
        let table = &self.table;
        idxs.sort_by_key(|&i| table.changes[i as usize].hash);
        idxs.dedup();
    }

    /// Adds a change whose dependencies are present; then any waiting change now ready.
    /// Returns whether it was new.
    pub fn add(&mut self, i: u32) -> bool {
        if self.have.get(i) {
            return false;
        }
        let deps = &self.table.changes[i as usize].deps;
        if !deps.iter().all(|&d| self.have.get(d)) {
            if !self.waiting.contains(&i) {
                self.waiting.push(i);
            }
            return false;
        }
        self.have.set(i);
        // The heads stay sorted by hash, updated in place: sorting them on every change was
        // 90% of the load generator's CPU with 1,000 devices' branches in the heads.
        let changes = &self.table.changes;
        for d in deps {
            if let Ok(at) = position(changes, &self.heads, *d) {
                self.heads.remove(at);
            }
        }
        if let Err(at) = position(changes, &self.heads, i) {
            self.heads.insert(at, i);
        }
        while !self.waiting.is_empty() {
            let before = self.waiting.len();
            let waiting = std::mem::take(&mut self.waiting);
            for w in waiting {
                self.add(w);
            }
            if self.waiting.len() == before {
                break;
            }
        }
        true
    }

    /// Ancestors of `heads` (inclusive) among the changes present.
    fn ancestors(&self, heads: &[u32]) -> Bits {
        let mut seen = Bits::with_len(self.table.len());
        let mut stack: Vec<u32> = heads.iter().copied().filter(|&h| self.has(h)).collect();
        while let Some(i) = stack.pop() {
            if seen.set(i) {
                stack.extend(self.table.changes[i as usize].deps.iter().copied());
            }
        }
        seen
    }

    /// Present changes that are not ancestors of `heads`, in causal (table) order.
    fn changes_since(&self, heads: &[u32]) -> Vec<u32> {
        if heads == self.heads.as_slice() {
            return Vec::new();
        }
        let known = self.ancestors(heads);
        (0..self.table.len() as u32)
            .filter(|&i| self.has(i) && !known.get(i))
            .collect()
    }

    fn index_of(&self, hash: &ChangeHash) -> Option<u32> {
        self.table.index.get(hash).copied()
    }

    /// What the server lacks, as `automerge::sync` computes it: changes since its last sync
    /// missing from all its bloom filters, what depends on those, and what it asked for.
    fn to_send(&self, have: &[Have], need: &[ChangeHash]) -> Vec<u32> {
        let need: Vec<u32> = need
            .iter()
            .filter_map(|h| self.index_of(h))
            .filter(|&i| self.has(i))
            .collect();
        if have.is_empty() {
            return need;
        }
        let last_sync: Vec<u32> = have
            .iter()
            .flat_map(|h| h.last_sync.iter())
            .filter_map(|h| self.index_of(h))
            .collect();
        let since = self.changes_since(&last_sync);
        let mut chosen = Bits::with_len(self.table.len());
        for &i in &since {
            let hash = self.hash(i);
            if have.iter().all(|h| !h.bloom.contains_hash(&hash)) {
                chosen.set(i);
            }
        }
        // Whatever depends on a chosen change goes too (table order is causal).
        for &i in &since {
            if !chosen.get(i)
                && self.table.changes[i as usize]
                    .deps
                    .iter()
                    .any(|&d| chosen.get(d))
            {
                chosen.set(i);
            }
        }
        let mut out: Vec<u32> = need.into_iter().filter(|&i| !chosen.get(i)).collect();
        out.extend(since.into_iter().filter(|&i| chosen.get(i)));
        out
    }

    /// The next sync message for the server, if there is anything to say.
    pub fn generate(&mut self) -> Option<Vec<u8>> {
        let their_heads: Vec<ChangeHash> = self.their_heads.clone().unwrap_or_default();
        let mut need: Vec<ChangeHash> = their_heads
            .iter()
            .filter(|h| self.index_of(h).is_none_or(|i| !self.has(i)))
            .copied()
            .collect();
        need.sort();
        let bloom_of = self.changes_since(&self.shared_heads.clone());
        let have = vec![Have {
            last_sync: self.hashes(&self.shared_heads),
            bloom: BloomFilter::from_hashes(bloom_of.iter().map(|&i| self.hash(i))),
        }];
        let changes: Vec<u32> = match (&self.their_have, &self.their_need) {
            (Some(their_have), Some(their_need)) => self
                .to_send(their_have, their_need)
                .into_iter()
                .filter(|&i| !self.sent.get(i))
                .collect(),
            _ => Vec::new(),
        };
        let heads_unchanged = self.last_sent_heads == self.heads;
        let heads_equal = self.their_heads.as_ref() == Some(&self.hashes(&self.heads));
        if heads_unchanged && self.have_responded {
            if heads_equal && changes.is_empty() {
                return None;
            }
            if self.in_flight {
                return None;
            }
        }
        self.have_responded = true;
        self.last_sent_heads = self.heads.clone();
        for &i in &changes {
            self.sent.set(i);
        }
        self.in_flight = true;
        let message = SyncMessage {
            heads: self.hashes(&self.heads),
            need,
            have,
            changes: changes
                .iter()
                .map(|&i| self.table.changes[i as usize].bytes.clone())
                .collect::<Vec<_>>()
                .into(),
            flags: self.flags,
            version: MessageVersion::V1,
        };
        Some(message.encode())
    }

    /// Handles a sync message from the server.
    pub fn receive(&mut self, data: &[u8]) -> Result<Received, String> {
        let message = parse(data)?;
        self.in_flight = false;
        let before = self.heads.clone();
        let mut received = Received::default();
        for chunk in &message.changes {
            received.bytes_of_changes += chunk.len();
            for i in self.identify(chunk)? {
                match i {
                    Some(i) => {
                        if self.add(i) {
                            received.new.push(i);
                        }
                    }
                    None => received.unknown += 1,
                }
            }
        }
        if !message.changes.is_empty() {
            // automerge's `advance_heads`.
            let changes = &self.table.changes;
            let mut advanced: Vec<u32> = self
                .heads
                .iter()
                .copied()
                .filter(|&h| position(changes, &before, h).is_err())
                .collect();
            advanced.extend(
                self.shared_heads
                    .iter()
                    .copied()
                    .filter(|&h| position(changes, &self.heads, h).is_ok()),
            );
            self.sort_by_hash(&mut advanced);
            self.shared_heads = advanced;
        }
        if message.changes.is_empty() && message.heads == self.hashes(&before) {
            self.last_sent_heads = before;
        }
        let known: Vec<u32> = message
            .heads
            .iter()
            .filter_map(|h| self.index_of(h))
            .filter(|&i| self.has(i))
            .collect();
        if known.len() == message.heads.len() {
            self.shared_heads = known;
            if message.heads.is_empty() {
                self.last_sent_heads = Vec::new();
                self.sent = Bits::with_len(self.table.len());
            }
        } else {
            let mut shared = self.shared_heads.clone();
            shared.extend(known);
            self.sort_by_hash(&mut shared);
            self.shared_heads = shared;
        }
        self.their_have = Some(message.have);
        self.their_heads = Some(message.heads);
        self.their_need = Some(message.need);
        Ok(received)
    }

    /// The table indices of the changes in a `changes` entry (one chunk in V1, concatenated
    /// chunks or a whole document in V2). `None` for a change the workload does not know.
    fn identify(&self, entry: &[u8]) -> Result<Vec<Option<u32>>, String> {
        let mut out = Vec::new();
        for chunk in split_chunks(entry)? {
            let checksum = u32::from_be_bytes([chunk[4], chunk[5], chunk[6], chunk[7]]);
            let fast = self
                .table
                .by_checksum
                .get(&checksum)
                .copied()
                .filter(|&i| i != u32::MAX)
                .filter(|&i| self.table.changes[i as usize].bytes.len() == chunk.len());
            if let Some(i) = fast {
                out.push(Some(i));
                continue;
            }
            // Slow path: let automerge decode it (a document chunk, or an unknown change).
            match Change::from_bytes(chunk.to_vec()) {
                Ok(change) => out.push(self.index_of(&change.hash())),
                Err(_) => {
                    let doc = saksi_shared::automerge::Automerge::load(chunk)
                        .map_err(|e| format!("neither a change nor a document: {e}"))?;
                    for change in doc.get_changes(&[]) {
                        out.push(self.index_of(&change.hash()));
                    }
                }
            }
        }
        Ok(out)
    }
}

/// A sync message, its change chunks borrowed from the input.
#[derive(Debug)]
pub struct Parsed<'a> {
    pub heads: Vec<ChangeHash>,
    pub need: Vec<ChangeHash>,
    pub have: Vec<Have>,
    pub changes: Vec<&'a [u8]>,
}

struct Reader<'a>(&'a [u8]);

impl<'a> Reader<'a> {
    fn uleb(&mut self) -> Result<u64, String> {
        let mut value = 0u64;
        let mut shift = 0;
        loop {
            let (&byte, rest) = self.0.split_first().ok_or("truncated number")?;
            self.0 = rest;
            if shift > 63 {
                return Err("number too large".into());
            }
            value |= u64::from(byte & 0x7f) << shift;
            if byte & 0x80 == 0 {
                return Ok(value);
            }
            shift += 7;
        }
    }

    fn take(&mut self, n: usize) -> Result<&'a [u8], String> {
        if self.0.len() < n {
            return Err("truncated".into());
        }
        let (head, rest) = self.0.split_at(n);
        self.0 = rest;
        Ok(head)
    }

    fn hashes(&mut self) -> Result<Vec<ChangeHash>, String> {
        let n = self.uleb()? as usize;
        let mut out = Vec::with_capacity(n.min(1024));
        for _ in 0..n {
            let bytes: [u8; 32] = self.take(32)?.try_into().expect("32 bytes");
            out.push(ChangeHash(bytes));
        }
        Ok(out)
    }
}

/// Parses an automerge sync message (V1 or V2) without copying its changes.
pub fn parse(data: &[u8]) -> Result<Parsed<'_>, String> {
    let mut r = Reader(data);
    match r.take(1)?[0] {
        0x42 | 0x43 => {}
        other => return Err(format!("not a sync message (0x{other:02x})")),
    }
    let heads = r.hashes()?;
    let need = r.hashes()?;
    let haves = r.uleb()? as usize;
    let mut have = Vec::with_capacity(haves.min(16));
    for _ in 0..haves {
        let last_sync = r.hashes()?;
        let len = r.uleb()? as usize;
        let bloom = BloomFilter::try_from(r.take(len)?).map_err(|e| format!("bloom: {e:?}"))?;
        have.push(Have { last_sync, bloom });
    }
    let count = r.uleb()? as usize;
    let mut changes = Vec::with_capacity(count.min(1 << 16));
    for _ in 0..count {
        let len = r.uleb()? as usize;
        changes.push(r.take(len)?);
    }
    Ok(Parsed {
        heads,
        need,
        have,
        changes,
    })
}

/// Splits concatenated automerge chunks (magic, checksum, type, LEB128 length, data).
fn split_chunks(mut bytes: &[u8]) -> Result<Vec<&[u8]>, String> {
    let mut chunks = Vec::new();
    while !bytes.is_empty() {
        if bytes.len() < 9 || bytes[..4] != [0x85, 0x6f, 0x4a, 0x83] {
            return Err("bad chunk header".into());
        }
        let mut r = Reader(&bytes[9..]);
        let len = r.uleb()? as usize;
        let header = bytes.len() - r.0.len();
        let end = header
            .checked_add(len)
            .filter(|&e| e <= bytes.len())
            .ok_or("truncated chunk")?;
        chunks.push(&bytes[..end]);
        bytes = &bytes[end..];
    }
    Ok(chunks)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::workload::{Device, Rng, base_documents, generate};
    use saksi_shared::DocumentId;
    use saksi_shared::automerge::sync::{State, SyncDoc as _};
    use saksi_shared::automerge::{Automerge, ReadDoc as _};

    fn devices(n: usize) -> Vec<Device> {
        let mut rng = Rng::new(1);
        (0..n)
            .map(|i| Device {
                username: format!("monitor-{i}"),
                device_id: format!("device-{i}"),
                token: None,
                actor: rng.bytes16(),
                peer_id: format!("peer-{i}"),
            })
            .collect()
    }

    /// Light peers converge with a real automerge peer (playing the server), and the server ends
    /// up with every change.
    #[test]
    #[allow(clippy::needless_range_loop)]
    fn light_peers_converge_with_an_automerge_peer() {
        let mut rng = Rng::new(7);
        let devices = devices(5);
        let case = DocumentId::from_bytes([3; 16]);
        let (docs, base) = base_documents(&mut rng, case, 2, &devices[0]);
        let w = generate(docs, base.clone(), devices, 12, 2, 9);
        for x in 0..2 {
            let mut server = Automerge::load(&base[x]).expect("base");
            let mut states: Vec<State> = (0..5).map(|_| State::new()).collect();
            let mut peers: Vec<LightDoc> = (0..5)
                .map(|d| LightDoc::new(w.tables[x].clone(), &w.own[d][x]))
                .collect();
            for _round in 0..20 {
                for (d, peer) in peers.iter_mut().enumerate() {
                    if let Some(m) = peer.generate() {
                        let message = SyncMessage::decode(&m).expect("valid message");
                        server
                            .receive_sync_message(&mut states[d], message)
                            .expect("server accepts");
                    }
                    if let Some(m) = server.generate_sync_message(&mut states[d]) {
                        let r = peer.receive(&m.encode()).expect("parses");
                        assert_eq!(r.unknown, 0);
                    }
                }
            }
            for peer in &peers {
                assert!(peer.converged(), "doc {x}: a light peer has every change");
            }
            let mut heads: Vec<u32> = server
                .get_heads()
                .iter()
                .map(|h| w.tables[x].index[h])
                .collect();
            heads.sort_by_key(|&i| w.tables[x].changes[i as usize].hash);
            assert_eq!(heads, w.tables[x].expected_heads);
            assert!(
                server.length(
                    &server
                        .get(saksi_shared::automerge::ROOT, "fields")
                        .unwrap()
                        .unwrap()
                        .1
                ) > 0
            );
        }
    }
}
