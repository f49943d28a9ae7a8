//! A document's change graph as plain integers, for a server answering many peers.
//!
//! Building a sync message needs "the changes since these heads" twice (for the Bloom filter of
//! what we have, and for what the peer lacks). Automerge 0.12 answers that from its columnar
//! storage, decoding change metadata on every call; the reconnect-storm benchmark found that
//! decoding taking over half the server's CPU, once per message per peer. Here the graph is
//! mirrored as positions (automerge's own order: every change after its dependencies), and each
//! peer keeps the set of changes it is known to have ([`Ancestors`]) and extends it as its heads
//! advance, so a message costs a scan of a bitset plus work proportional to what is new.

use std::collections::HashMap;
use std::hash::{BuildHasherDefault, Hasher};
use std::sync::Arc;

use automerge::{Automerge, ChangeHash};

/// A set of change positions.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub(crate) struct Bits(Vec<u64>);

impl Bits {
    pub(crate) fn get(&self, i: u32) -> bool {
        let i = i as usize;
        self.0.get(i / 64).is_some_and(|w| w & (1 << (i % 64)) != 0)
    }

    /// Sets the bit; returns whether it was clear.
    pub(crate) fn set(&mut self, i: u32) -> bool {
        let i = i as usize;
        if i / 64 >= self.0.len() {
            self.0.resize(i / 64 + 1, 0);
        }
        let word = &mut self.0[i / 64];
        let was_clear = *word & (1 << (i % 64)) == 0;
        *word |= 1 << (i % 64);
        was_clear
    }

    /// The positions below `len` that are not set, ascending.
    fn clear_below(&self, len: u32) -> Vec<u32> {
        let mut out = Vec::new();
        let words = (len as usize).div_ceil(64);
        for w in 0..words {
            let mut missing = !self.0.get(w).copied().unwrap_or(0);
            while missing != 0 {
                let bit = missing.trailing_zeros();
                let i = (w * 64) as u32 + bit;
                if i >= len {
                    break;
                }
                out.push(i);
                missing &= missing - 1;
            }
        }
        out
    }
}

/// Hashes a [`ChangeHash`] by its first eight bytes: change hashes are SHA-256 digests, already
/// uniform, so running them through SipHash again only costs time (every hash list a peer sends
/// is looked up here, 500 hashes a message in the reconnect storm).
#[derive(Debug, Default, Clone, Copy)]
pub(crate) struct DigestHasher(u64);

impl Hasher for DigestHasher {
    fn finish(&self) -> u64 {
        self.0
    }

    fn write(&mut self, bytes: &[u8]) {
        // `[u8; 32]` hashes as its length, then its bytes: keep the first eight of the longest.
        if let Some(head) = bytes.first_chunk::<8>() {
            self.0 = u64::from_le_bytes(*head);
        } else {
            for &b in bytes {
                self.0 = self.0.rotate_left(8) ^ u64::from(b);
            }
        }
    }
}

type Positions = HashMap<ChangeHash, u32, BuildHasherDefault<DigestHasher>>;

/// The changes of one document: hashes and dependencies by position.
#[derive(Debug, Default)]
pub(crate) struct Graph {
    hashes: Vec<ChangeHash>,
    deps: Vec<Box<[u32]>>,
    positions: Positions,
    /// The document's heads when the graph last caught up with it.
    heads: Vec<ChangeHash>,
    /// The same heads packed, shared by every [`HashList`] equal to them.
    packed_heads: Arc<[u32]>,
}

impl Graph {
    /// Adds the document's changes that the graph lacks. Cheap when nothing changed; otherwise
    /// one pass of automerge over the new changes' metadata, once per batch rather than once per
    /// message.
    pub(crate) fn catch_up(&mut self, doc: &Automerge) {
        let heads = doc.get_heads();
        if heads == self.heads {
            return;
        }
        // Documents only grow, so every change since our heads is new, in automerge's order.
        for meta in doc.get_changes_meta(&self.heads) {
            if self.positions.contains_key(&meta.hash) {
                continue;
            }
            let deps: Box<[u32]> = meta
                .deps
                .iter()
                .filter_map(|d| self.positions.get(d).copied())
                .collect();
            debug_assert_eq!(deps.len(), meta.deps.len(), "dependencies come first");
            let position = u32::try_from(self.hashes.len())
                .ok()
                .filter(|p| p & UNKNOWN == 0)
                .expect("fewer than 2^31 changes in one document");
            self.positions.insert(meta.hash, position);
            self.hashes.push(meta.hash);
            self.deps.push(deps);
        }
        self.packed_heads = heads
            .iter()
            .map(|h| self.positions[h])
            .collect::<Vec<_>>()
            .into();
        self.heads = heads;
    }

    pub(crate) fn len(&self) -> usize {
        self.hashes.len()
    }

    pub(crate) fn contains(&self, hash: &ChangeHash) -> bool {
        self.positions.contains_key(hash)
    }

    pub(crate) fn position(&self, hash: &ChangeHash) -> Option<u32> {
        self.positions.get(hash).copied()
    }

    pub(crate) fn hash(&self, position: u32) -> ChangeHash {
        self.hashes[position as usize]
    }

    pub(crate) fn deps(&self, position: u32) -> &[u32] {
        &self.deps[position as usize]
    }

    pub(crate) fn hashes(&self) -> &[ChangeHash] {
        &self.hashes
    }

    /// The positions of the `hashes` the graph has, sorted, without repeats.
    pub(crate) fn known(&self, hashes: &[ChangeHash]) -> Vec<u32> {
        let mut out: Vec<u32> = hashes.iter().filter_map(|h| self.position(h)).collect();
        out.sort_unstable();
        out.dedup();
        out
    }
}

/// Marks a [`HashList`] item that is not a graph position but an index into its `unknown`.
const UNKNOWN: u32 = 1 << 31;

/// A list of change hashes kept as positions in a [`Graph`], in their order: 4 bytes a hash
/// instead of 32, and a list equal to the document's heads (as most of a server's peers' heads
/// are, once in sync) shares the graph's copy. For a server's per-peer sync state, whose lists
/// hold every head of the document: at 1,000 phones on 10 documents of some 500 concurrent heads
/// each, automerge's lists took over a gigabyte (BENCHMARKS.md). Hashes the graph lacks (a peer's
/// heads not received yet) are kept whole, in place.
#[derive(Debug, Clone, Default)]
pub(crate) struct HashList {
    /// Graph positions; `UNKNOWN | i` stands for `unknown[i]`.
    items: Arc<[u32]>,
    unknown: Box<[ChangeHash]>,
}

impl HashList {
    pub(crate) fn pack(graph: &Graph, hashes: &[ChangeHash]) -> Self {
        let mut unknown = Vec::new();
        let items: Vec<u32> = hashes
            .iter()
            .map(|h| match graph.position(h) {
                Some(p) => p,
                None => {
                    unknown.push(*h);
                    UNKNOWN | (unknown.len() - 1) as u32
                }
            })
            .collect();
        let items = if *items == *graph.packed_heads {
            graph.packed_heads.clone()
        } else {
            items.into()
        };
        HashList {
            items,
            unknown: unknown.into(),
        }
    }

    pub(crate) fn unpack(&self, graph: &Graph) -> Vec<ChangeHash> {
        self.items
            .iter()
            .map(|&i| {
                if i & UNKNOWN == 0 {
                    graph.hash(i)
                } else {
                    self.unknown[(i & !UNKNOWN) as usize]
                }
            })
            .collect()
    }
}

/// The ancestors of a set of heads (heads included), kept up to date as the heads move.
#[derive(Debug, Default)]
pub(crate) struct Ancestors {
    heads: Vec<u32>,
    bits: Bits,
}

impl Ancestors {
    /// Moves to `heads` (positions, sorted, no repeats). When the new heads descend from the
    /// old ones, as a peer's do, only the changes in between are visited; otherwise the set is
    /// rebuilt.
    pub(crate) fn move_to(&mut self, graph: &Graph, heads: &[u32]) {
        if heads == self.heads.as_slice() {
            return;
        }
        // Walk back from the new heads, stopping at changes already in the set. Every path from
        // a new head to an old head meets the set first at an old head (old heads have no
        // descendants in the set, unless they are not an antichain), so the old set is inside
        // the new one exactly when every old head is a stopping point.
        let mut bits = std::mem::take(&mut self.bits);
        let mut stopped_at = walk_back(graph, heads, &mut bits);
        stopped_at.sort_unstable();
        let descends = self
            .heads
            .iter()
            .all(|h| stopped_at.binary_search(h).is_ok());
        if !descends {
            bits = Bits::default();
            walk_back(graph, heads, &mut bits);
        }
        self.bits = bits;
        self.heads = heads.to_vec();
    }

    /// The changes of `graph` outside the set, in the graph's (causal) order: what a peer
    /// holding these heads lacks.
    pub(crate) fn missing(&self, graph: &Graph) -> Vec<u32> {
        self.bits.clear_below(graph.len() as u32)
    }
}

/// Adds `heads` and their ancestors to `bits`, not walking past changes already in it; returns
/// those changes where the walk stopped.
fn walk_back(graph: &Graph, heads: &[u32], bits: &mut Bits) -> Vec<u32> {
    let mut stopped_at = Vec::new();
    let mut stack: Vec<u32> = heads.to_vec();
    while let Some(i) = stack.pop() {
        if bits.set(i) {
            stack.extend_from_slice(graph.deps(i));
        } else {
            stopped_at.push(i);
        }
    }
    stopped_at
}

#[cfg(test)]
mod tests {
    use super::*;
    use automerge::transaction::Transactable;
    use automerge::{ActorId, ROOT};

    fn commit(doc: &mut Automerge, key: &str) -> ChangeHash {
        let mut tx = doc.transaction();
        tx.put(ROOT, key, key).unwrap();
        tx.commit().0.unwrap()
    }

    /// Two actors fork and merge: `missing` must be exactly what automerge reports as the
    /// changes since the heads, from every starting point, whichever way the heads move.
    #[test]
    fn missing_matches_automerge_as_heads_move_forward_and_back() {
        let mut a = Automerge::new().with_actor(ActorId::from([1; 16]));
        let mut b = Automerge::new().with_actor(ActorId::from([2; 16]));
        let mut points: Vec<Vec<ChangeHash>> = vec![Vec::new()];
        for round in 0..6 {
            for k in 0..3 {
                commit(&mut a, &format!("a{round}{k}"));
                commit(&mut b, &format!("b{round}{k}"));
                points.push(a.get_heads());
                points.push(b.get_heads());
            }
            if round % 2 == 0 {
                a.merge(&mut b).unwrap();
                points.push(a.get_heads());
            } else {
                b.merge(&mut a).unwrap();
            }
        }
        a.merge(&mut b).unwrap();
        let mut graph = Graph::default();
        graph.catch_up(&a);
        assert_eq!(graph.len(), a.get_changes_meta(&[]).len());
        let mut ancestors = Ancestors::default();
        // Forward through history, then backwards (forcing rebuilds), then jumping about.
        let order: Vec<usize> = (0..points.len())
            .chain((0..points.len()).rev())
            .chain((0..points.len()).map(|i| (i * 7) % points.len()))
            .collect();
        for i in order {
            let heads = &points[i];
            ancestors.move_to(&graph, &graph.known(heads));
            let ours: Vec<ChangeHash> = ancestors
                .missing(&graph)
                .into_iter()
                .map(|p| graph.hash(p))
                .collect();
            let theirs: Vec<ChangeHash> =
                a.get_changes_meta(heads).iter().map(|m| m.hash).collect();
            assert_eq!(ours, theirs, "changes since point {i}");
        }
    }

    #[test]
    fn catching_up_adds_only_new_changes_in_order() {
        let mut doc = Automerge::new();
        commit(&mut doc, "one");
        let mut graph = Graph::default();
        graph.catch_up(&doc);
        assert_eq!(graph.len(), 1);
        let second = commit(&mut doc, "two");
        let third = commit(&mut doc, "three");
        graph.catch_up(&doc);
        graph.catch_up(&doc);
        assert_eq!(graph.len(), 3);
        assert_eq!(graph.position(&second), Some(1));
        assert_eq!(graph.deps(2), &[1]);
        assert_eq!(graph.hash(2), third);
        assert_eq!(graph.known(&[third, second, third]), vec![1, 2]);
    }

    /// Packing keeps order, repeats and hashes the graph lacks, and shares the graph's copy of
    /// a list equal to the document's heads.
    #[test]
    fn hash_lists_round_trip_and_share_the_heads() {
        let mut a = Automerge::new().with_actor(ActorId::from([1; 16]));
        let mut b = Automerge::new().with_actor(ActorId::from([2; 16]));
        let first = commit(&mut a, "សាក្សី");
        commit(&mut b, "b");
        a.merge(&mut b).unwrap();
        let heads = a.get_heads();
        assert_eq!(heads.len(), 2);
        let mut graph = Graph::default();
        graph.catch_up(&a);
        let foreign = commit(&mut Automerge::new(), "not here");
        assert!(!graph.contains(&foreign));

        let mixed = vec![heads[1], foreign, first, heads[1], heads[0]];
        let packed = HashList::pack(&graph, &mixed);
        assert_eq!(packed.unpack(&graph), mixed);
        assert_eq!(
            HashList::pack(&graph, &[]).unpack(&graph),
            Vec::<ChangeHash>::new()
        );

        let at_heads = HashList::pack(&graph, &heads);
        assert_eq!(at_heads.unpack(&graph), heads);
        assert!(Arc::ptr_eq(&at_heads.items, &graph.packed_heads));
        // The same hashes in another order are another list.
        let reversed: Vec<ChangeHash> = heads.iter().rev().copied().collect();
        let packed = HashList::pack(&graph, &reversed);
        assert!(!Arc::ptr_eq(&packed.items, &graph.packed_heads));
        assert_eq!(packed.unpack(&graph), reversed);

        // Positions stay valid as the graph grows; the shared copy follows the new heads.
        let later = commit(&mut a, "later");
        graph.catch_up(&a);
        assert_eq!(at_heads.unpack(&graph), heads);
        assert_eq!(HashList::pack(&graph, &[later]).unpack(&graph), vec![later]);
        assert!(Arc::ptr_eq(
            &HashList::pack(&graph, &[later]).items,
            &graph.packed_heads
        ));
    }

    #[test]
    fn digest_hasher_finds_every_change() {
        let mut doc = Automerge::new();
        let hashes: Vec<ChangeHash> = (0..200).map(|i| commit(&mut doc, &i.to_string())).collect();
        let mut graph = Graph::default();
        graph.catch_up(&doc);
        for (i, hash) in hashes.iter().enumerate() {
            assert_eq!(graph.position(hash), Some(i as u32));
        }
    }

    #[test]
    fn clear_below_lists_unset_positions_across_words() {
        let mut bits = Bits::default();
        for i in [0, 3, 63, 64, 100] {
            assert!(bits.set(i));
        }
        assert!(!bits.set(3));
        let clear = bits.clear_below(130);
        assert_eq!(clear.len(), 130 - 5);
        assert!(!clear.contains(&64) && clear.contains(&65) && clear.contains(&129));
        assert_eq!(clear.first(), Some(&1));
    }
}
