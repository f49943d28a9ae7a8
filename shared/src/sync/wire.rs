//! Automerge sync messages: pushing changes ([`changes_message`]), and the checks an incoming
//! message passes before automerge sees it (Bloom filters, change chunks).

use automerge::sync::{Message as SyncMessage, MessageVersion};
use automerge::{Automerge, Change, ChangeHash};

/// Most changes accepted in one sync message.
pub const MAX_CHANGES_PER_MESSAGE: usize = 100_000;

/// Why a sync message could not be handled. None of its changes were applied.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SyncError {
    #[error("malformed automerge sync message: {0}")]
    Malformed(String),
    #[error("malformed change in sync message: {0}")]
    MalformedChange(String),
    #[error("sync message carries more than {0} changes")]
    TooManyChanges(usize),
    #[error("automerge refused the change: {0}")]
    Apply(String),
    /// The changes are malformed in a way automerge does not refuse, but would leave the
    /// document unloadable (see [`crate::integrity`]).
    #[error("the changes are malformed: the document would no longer load")]
    WouldBreak,
    /// Changes waiting for their dependencies would hold more than the limit.
    #[error("changes waiting for their dependencies exceed {0} bytes")]
    TooMuchWaiting(usize),
    /// Changes waited for their dependencies through more messages than the limit.
    #[error("changes waited for their dependencies through more than {0} messages")]
    WaitedTooLong(u32),
}

/// An automerge sync message that carries `changes` and announces `heads`, with no request and
/// no summary of what the sender has: how a peer pushes changes it knows the other lacks.
pub fn changes_message(changes: &[Change], heads: Vec<ChangeHash>) -> Vec<u8> {
    SyncMessage {
        heads,
        need: Vec::new(),
        have: Vec::new(),
        changes: changes
            .iter()
            .map(|c| c.raw_bytes().to_vec())
            .collect::<Vec<_>>()
            .into(),
        flags: None,
        version: MessageVersion::V1,
    }
    .encode()
}

/// Most probes a peer's Bloom filter may ask for (automerge uses 7).
const MAX_BLOOM_PROBES: u64 = 64;

/// Refuses Bloom filters that automerge would choke on later, when answering: a filter with
/// entries but zero bits per entry makes it divide by zero, and a huge probe count makes it
/// allocate gigabytes (both found by fuzzing `sync_receive`).
pub(super) fn check_blooms(message: &SyncMessage) -> Result<(), SyncError> {
    for have in &message.have {
        let bytes = have.bloom.to_bytes();
        let mut fields = [0u64; 3];
        let mut rest = bytes.as_slice();
        if rest.is_empty() {
            continue; // an empty filter
        }
        for field in &mut fields {
            let mut value = 0u64;
            let mut shift = 0;
            loop {
                let Some((&byte, tail)) = rest.split_first() else {
                    return Err(SyncError::Malformed("truncated Bloom filter".into()));
                };
                rest = tail;
                value |= u64::from(byte & 0x7f) << shift.min(63);
                shift += 7;
                if byte & 0x80 == 0 {
                    break;
                }
            }
            *field = value;
        }
        let [entries, bits_per_entry, probes] = fields;
        if entries > 0 && (bits_per_entry == 0 || probes == 0 || probes > MAX_BLOOM_PROBES) {
            return Err(SyncError::Malformed(format!(
                "unusable Bloom filter ({bits_per_entry} bits per entry, {probes} probes)"
            )));
        }
    }
    Ok(())
}

/// The individual changes carried by a sync message: change chunks, or a whole document (the
/// V2 format sends a saved document when that is smaller). A V2 message carries all its
/// changes as one byte string of concatenated chunks, so every entry is split first.
pub(super) fn extract_changes(message: &SyncMessage) -> Result<Vec<Change>, SyncError> {
    let mut changes = Vec::new();
    for entry in message.changes.iter() {
        for chunk in split_chunks(entry)? {
            match Change::from_bytes(chunk.to_vec()) {
                Ok(change) => changes.push(change),
                Err(change_err) => {
                    let doc = Automerge::load(chunk).map_err(|doc_err| {
                        SyncError::MalformedChange(format!(
                            "neither a change ({change_err}) nor a document ({doc_err})"
                        ))
                    })?;
                    changes.extend(doc.get_changes(&[]));
                }
            }
            if changes.len() > MAX_CHANGES_PER_MESSAGE {
                return Err(SyncError::TooManyChanges(MAX_CHANGES_PER_MESSAGE));
            }
        }
    }
    Ok(changes)
}

/// Splits concatenated automerge chunks. Each chunk is: magic bytes (4), checksum (4), chunk
/// type (1), data length (unsigned LEB128), data. Contents are checked later, by automerge.
fn split_chunks(mut bytes: &[u8]) -> Result<Vec<&[u8]>, SyncError> {
    const MAGIC: [u8; 4] = [0x85, 0x6f, 0x4a, 0x83];
    const FIXED_HEADER: usize = 9;
    let malformed = |what: &str| SyncError::MalformedChange(format!("chunk {what}"));
    let mut chunks = Vec::new();
    while !bytes.is_empty() {
        if bytes.len() < FIXED_HEADER || bytes[..4] != MAGIC {
            return Err(malformed("header is invalid"));
        }
        let mut len: u64 = 0;
        let mut pos = FIXED_HEADER;
        let mut shift = 0u32;
        loop {
            let byte = *bytes
                .get(pos)
                .ok_or_else(|| malformed("length is truncated"))?;
            pos += 1;
            // Nine LEB128 bytes (63 bits) are far more than any chunk can be.
            if shift > 56 {
                return Err(malformed("length is too large"));
            }
            len |= u64::from(byte & 0x7f) << shift;
            if byte & 0x80 == 0 {
                break;
            }
            shift += 7;
        }
        let end = usize::try_from(len)
            .ok()
            .and_then(|len| pos.checked_add(len))
            .filter(|&end| end <= bytes.len())
            .ok_or_else(|| malformed("is truncated"))?;
        chunks.push(&bytes[..end]);
        bytes = &bytes[end..];
    }
    Ok(chunks)
}
