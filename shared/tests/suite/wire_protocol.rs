//! The automerge-repo wire protocol v1: fixed byte vectors derived by hand from the published
//! description (the CDDL in the README of `@automerge/automerge-repo-network-websocket` 2.5.6,
//! and its TypeScript types, which carry metadata under `peerMetadata`), round trips of every
//! message type, and hostile input that must be an error, never a panic.
//!
//! CBOR reminders (RFC 8949): the first byte of an item is its head, major type in the top three
//! bits, argument in the low five. `a0+n` is a map of n pairs, `60+n` a text string of n bytes
//! (`78 nn` when n > 23), `40+n` a byte string, `80+n` an array, `00..17` a small unsigned integer
//! (`18 nn` one byte, `1b` + eight bytes), `f4`/`f5` false/true, `c0+n` a tag.

use proptest::prelude::*;
use saksi_shared::DocumentId;
use saksi_shared::automerge::ActorId;
use saksi_shared::cbor::{Cbor, CborError};
use saksi_shared::protocol::{
    MAX_MESSAGE_BYTES, Message, PeerMetadata, ProtocolError, RemoteHeads,
};
use saksi_testkit::at;

/// The document id used in every vector: the bytes 00 01 .. 0f, whose bs58check form (base58 of
/// the bytes followed by the first four bytes of SHA-256(SHA-256(bytes))) is
/// `1Bhh3pU9gLXZiNDL6PEa1Gs9fh`, 26 characters (computed independently of this crate).
const DOC_ID_TEXT: &str = "1Bhh3pU9gLXZiNDL6PEa1Gs9fh";

fn doc_id() -> DocumentId {
    DocumentId::from_bytes(std::array::from_fn(|i| i as u8))
}

/// Parses hex digits, ignoring whitespace.
fn hex(s: &str) -> Vec<u8> {
    let digits: Vec<u8> = s.bytes().filter(|b| !b.is_ascii_whitespace()).collect();
    assert!(digits.len().is_multiple_of(2), "odd number of hex digits");
    digits
        .chunks(2)
        .map(|pair| {
            u8::from_str_radix(std::str::from_utf8(pair).expect("ascii"), 16).expect("hex digit")
        })
        .collect()
}

/// The text string holding [`DOC_ID_TEXT`]: `78 1a` = text of 26 (0x1a) bytes, then ASCII.
const DOC_ID_CBOR: &str = "781a 3142686833705539674c585a694e444c36504561314773396668";

fn join() -> (Message, Vec<u8>) {
    let message = Message::Join {
        sender_id: "phone-1".into(),
        supported_protocol_versions: vec!["1".into()],
        metadata: Some(PeerMetadata {
            storage_id: Some("store-1".into()),
            is_ephemeral: false,
        }),
    };
    let bytes = hex(concat!(
        "a4",                                                 // map of 4 pairs
        "64 74797065",                                        // text(4) "type"
        "64 6a6f696e",                                        //   text(4) "join"
        "68 73656e6465724964",                                // text(8) "senderId"
        "67 70686f6e652d31",                                  //   text(7) "phone-1"
        "6c 706565724d65746164617461",                        // text(12) "peerMetadata"
        "a2",                                                 //   map of 2 pairs
        "69 73746f726167654964",                              //   text(9) "storageId"
        "67 73746f72652d31",                                  //     text(7) "store-1"
        "6b 6973457068656d6572616c",                          //   text(11) "isEphemeral"
        "f4",                                                 //     false
        "7819", // text(25), length in the next byte (0x19)
        "737570706f7274656450726f746f636f6c56657273696f6e73", // "supportedProtocolVersions"
        "81",   //   array of 1
        "61 31", //     text(1) "1"
    ));
    (message, bytes)
}

fn peer() -> (Message, Vec<u8>) {
    let message = Message::Peer {
        sender_id: "hub".into(),
        target_id: "phone-1".into(),
        selected_protocol_version: "1".into(),
        metadata: Some(PeerMetadata {
            storage_id: None,
            is_ephemeral: false,
        }),
    };
    let bytes = hex(concat!(
        "a5",                                                // map of 5 pairs
        "64 74797065",                                       // text(4) "type"
        "64 70656572",                                       //   text(4) "peer"
        "68 73656e6465724964",                               // text(8) "senderId"
        "63 687562",                                         //   text(3) "hub"
        "6c 706565724d65746164617461",                       // text(12) "peerMetadata"
        "a1",                                                //   map of 1 pair (no storageId)
        "6b 6973457068656d6572616c",                         //   text(11) "isEphemeral"
        "f4",                                                //     false
        "77 73656c656374656450726f746f636f6c56657273696f6e", // text(23) "selectedProtocolVersion"
        "61 31",                                             //   text(1) "1"
        "68 7461726765744964",                               // text(8) "targetId"
        "67 70686f6e652d31",                                 //   text(7) "phone-1"
    ));
    (message, bytes)
}

/// `request` and `sync` differ only in their type string.
fn request_or_sync(sync: bool) -> (Message, Vec<u8>) {
    let (sender_id, target_id, document_id, data) = (
        "phone-1".to_owned(),
        "hub".to_owned(),
        doc_id(),
        vec![0x42, 0x00, 0xff],
    );
    let (message, type_cbor) = if sync {
        (
            Message::Sync {
                sender_id: sender_id.into(),
                target_id: target_id.into(),
                document_id,
                data,
            },
            "64 73796e63", // text(4) "sync"
        )
    } else {
        (
            Message::Request {
                sender_id: sender_id.into(),
                target_id: target_id.into(),
                document_id,
                data,
            },
            "67 72657175657374", // text(7) "request"
        )
    };
    let bytes = hex(&[
        "a5",                      // map of 5 pairs
        "64 74797065",             // text(4) "type"
        type_cbor,                 //   "sync" or "request"
        "68 73656e6465724964",     // text(8) "senderId"
        "67 70686f6e652d31",       //   text(7) "phone-1"
        "68 7461726765744964",     // text(8) "targetId"
        "63 687562",               //   text(3) "hub"
        "6a 646f63756d656e744964", // text(10) "documentId"
        DOC_ID_CBOR,               //   text(26) "1Bhh3pU9gLXZiNDL6PEa1Gs9fh"
        "64 64617461",             // text(4) "data"
        "43 4200ff",               //   bytes(3) 42 00 ff (an automerge sync message, opaque here)
    ]
    .concat());
    (message, bytes)
}

fn doc_unavailable() -> (Message, Vec<u8>) {
    let message = Message::DocUnavailable {
        sender_id: "hub".into(),
        target_id: "phone-1".into(),
        document_id: doc_id(),
    };
    let bytes = hex(&[
        "a4",                                // map of 4 pairs
        "64 74797065",                       // text(4) "type"
        "6f 646f632d756e617661696c61626c65", //   text(15) "doc-unavailable"
        "68 73656e6465724964",               // text(8) "senderId"
        "63 687562",                         //   text(3) "hub"
        "68 7461726765744964",               // text(8) "targetId"
        "67 70686f6e652d31",                 //   text(7) "phone-1"
        "6a 646f63756d656e744964",           // text(10) "documentId"
        DOC_ID_CBOR,                         //   text(26) the id
    ]
    .concat());
    (message, bytes)
}

fn ephemeral() -> (Message, Vec<u8>) {
    let message = Message::Ephemeral {
        sender_id: "phone-1".into(),
        target_id: "hub".into(),
        count: 24,
        session_id: "s1".into(),
        document_id: doc_id(),
        data: vec![0xa0],
    };
    let bytes = hex(&[
        "a7",                      // map of 7 pairs
        "64 74797065",             // text(4) "type"
        "69 657068656d6572616c",   //   text(9) "ephemeral"
        "68 73656e6465724964",     // text(8) "senderId"
        "67 70686f6e652d31",       //   text(7) "phone-1"
        "68 7461726765744964",     // text(8) "targetId"
        "63 687562",               //   text(3) "hub"
        "65 636f756e74",           // text(5) "count"
        "18 18",                   //   unsigned 24: the first value needing a second byte
        "69 73657373696f6e4964",   // text(9) "sessionId"
        "62 7331",                 //   text(2) "s1"
        "6a 646f63756d656e744964", // text(10) "documentId"
        DOC_ID_CBOR,               //   text(26) the id
        "64 64617461",             // text(4) "data"
        "41 a0",                   //   bytes(1) a0 (arbitrary CBOR inside: an empty map)
    ]
    .concat());
    (message, bytes)
}

/// The error a stock automerge-repo server sends (WebSocketServerAdapter.ts): sender, message,
/// target, in that order.
fn error() -> (Message, Vec<u8>) {
    let message = Message::Error {
        sender_id: Some("hub".into()),
        target_id: Some("phone-1".into()),
        message: "unsupported protocol version".into(),
        document_id: None,
    };
    let bytes = hex(concat!(
        "a4",                                                       // map of 4 pairs
        "64 74797065",                                              // text(4) "type"
        "65 6572726f72",                                            //   text(5) "error"
        "68 73656e6465724964",                                      // text(8) "senderId"
        "63 687562",                                                //   text(3) "hub"
        "67 6d657373616765",                                        // text(7) "message"
        "781c", //   text(28), length in the next byte (0x1c)
        "756e737570706f727465642070726f746f636f6c2076657273696f6e", // "unsupported protocol version"
        "68 7461726765744964",                                      // text(8) "targetId"
        "67 70686f6e652d31",                                        //   text(7) "phone-1"
    ));
    (message, bytes)
}

/// The smallest error the CDDL allows: only `type` and `message`.
fn bare_error() -> (Message, Vec<u8>) {
    let message = Message::Error {
        sender_id: None,
        target_id: None,
        message: "change refused".into(),
        document_id: None,
    };
    let bytes = hex(concat!(
        "a2",                              // map of 2 pairs
        "64 74797065",                     // text(4) "type"
        "65 6572726f72",                   //   text(5) "error"
        "67 6d657373616765",               // text(7) "message"
        "6e 6368616e67652072656675736564", //   text(14) "change refused"
    ));
    (message, bytes)
}

/// Saksi's refusal of changes to one document: an error with a `documentId` (stock clients
/// ignore the extra key).
fn document_error() -> (Message, Vec<u8>) {
    let message = Message::Error {
        sender_id: Some("hub".into()),
        target_id: Some("phone-1".into()),
        message: "change refused".into(),
        document_id: Some(doc_id()),
    };
    let bytes = hex(&[
        "a5",                              // map of 5 pairs
        "64 74797065",                     // text(4) "type"
        "65 6572726f72",                   //   text(5) "error"
        "68 73656e6465724964",             // text(8) "senderId"
        "63 687562",                       //   text(3) "hub"
        "67 6d657373616765",               // text(7) "message"
        "6e 6368616e67652072656675736564", //   text(14) "change refused"
        "68 7461726765744964",             // text(8) "targetId"
        "67 70686f6e652d31",               //   text(7) "phone-1"
        "6a 646f63756d656e744964",         // text(10) "documentId"
        DOC_ID_CBOR,                       //   text(26) the id
    ]
    .concat());
    (message, bytes)
}

fn leave() -> (Message, Vec<u8>) {
    let message = Message::Leave {
        sender_id: "phone-1".into(),
    };
    let bytes = hex(concat!(
        "a2",                  // map of 2 pairs
        "64 74797065",         // text(4) "type"
        "65 6c65617665",       //   text(5) "leave"
        "68 73656e6465724964", // text(8) "senderId"
        "67 70686f6e652d31",   //   text(7) "phone-1"
    ));
    (message, bytes)
}

fn remote_heads_changed() -> (Message, Vec<u8>) {
    let message = Message::RemoteHeadsChanged {
        sender_id: "hub".into(),
        target_id: "phone-1".into(),
        document_id: doc_id(),
        new_heads: vec![RemoteHeads {
            storage_id: "store-1".into(),
            heads: vec!["3xT9".into()],
            timestamp: 1_700_000_000_000,
        }],
    };
    let bytes = hex(&[
        "a5",                                          // map of 5 pairs
        "64 74797065",                                 // text(4) "type"
        "74 72656d6f74652d68656164732d6368616e676564", // text(20) "remote-heads-changed"
        "68 73656e6465724964",                         // text(8) "senderId"
        "63 687562",                                   //   text(3) "hub"
        "68 7461726765744964",                         // text(8) "targetId"
        "67 70686f6e652d31",                           //   text(7) "phone-1"
        "6a 646f63756d656e744964",                     // text(10) "documentId"
        DOC_ID_CBOR,                                   //   text(26) the id
        "68 6e65774865616473",                         // text(8) "newHeads"
        "a1",                                          //   map of 1 pair: storage id => heads
        "67 73746f72652d31",                           //   text(7) "store-1"
        "a2",                                          //     map of 2 pairs
        "65 6865616473",                               //     text(5) "heads"
        "81",                                          //       array of 1
        "64 33785439",                                 //         text(4) "3xT9"
        "69 74696d657374616d70",                       //     text(9) "timestamp"
        "1b 0000018bcfe56800",                         //       unsigned, 8 bytes: 1700000000000 ms
    ]
    .concat());
    (message, bytes)
}

fn vectors() -> Vec<(&'static str, Message, Vec<u8>)> {
    let named = |name, (m, b): (Message, Vec<u8>)| (name, m, b);
    vec![
        named("join", join()),
        named("peer", peer()),
        named("request", request_or_sync(false)),
        named("sync", request_or_sync(true)),
        named("doc-unavailable", doc_unavailable()),
        named("ephemeral", ephemeral()),
        named("error", error()),
        named("bare error", bare_error()),
        named("document error", document_error()),
        named("leave", leave()),
        named("remote-heads-changed", remote_heads_changed()),
    ]
}

#[test]
fn the_document_id_vector_is_bs58check() {
    assert_eq!(doc_id().to_string(), DOC_ID_TEXT);
    assert_eq!(DocumentId::parse(DOC_ID_TEXT), Ok(doc_id()));
    assert_eq!(hex(DOC_ID_CBOR)[2..], *DOC_ID_TEXT.as_bytes());
}

#[test]
fn fixed_vectors_decode_and_encode_byte_for_byte() {
    for (name, message, bytes) in vectors() {
        assert_eq!(
            Message::decode(&bytes).as_ref(),
            Ok(&message),
            "{name} decodes"
        );
        assert_eq!(message.encode(), bytes, "{name} encodes to the vector");
        assert_eq!(message.type_name(), name.rsplit(' ').next().unwrap_or(name));
    }
}

#[test]
fn every_message_type_round_trips() {
    let khmer = "សាក្សី".to_owned();
    let mut messages: Vec<Message> = vectors().into_iter().map(|(_, m, _)| m).collect();
    messages.extend([
        Message::Join {
            sender_id: khmer.clone().into(),
            supported_protocol_versions: vec!["1".into(), "2".into()],
            metadata: None,
        },
        Message::Peer {
            sender_id: "hub".into(),
            target_id: khmer.clone().into(),
            selected_protocol_version: "1".into(),
            metadata: Some(PeerMetadata {
                storage_id: Some("ឃ្លាំង".into()),
                is_ephemeral: true,
            }),
        },
        Message::Sync {
            sender_id: "a".into(),
            target_id: "b".into(),
            document_id: DocumentId::from_bytes([0xff; 16]),
            data: vec![7; 70_000],
        },
        Message::Request {
            sender_id: "a".into(),
            target_id: "b".into(),
            document_id: DocumentId::from_bytes([0; 16]),
            data: Vec::new(),
        },
        Message::Ephemeral {
            sender_id: "a".into(),
            target_id: "b".into(),
            count: u64::MAX,
            session_id: khmer.clone(),
            document_id: doc_id(),
            data: vec![1, 2, 3],
        },
        Message::Error {
            sender_id: None,
            target_id: Some("b".into()),
            message: khmer.clone(),
            document_id: Some(doc_id()),
        },
        Message::RemoteSubscriptionChange {
            sender_id: "a".into(),
            target_id: "b".into(),
            add: vec!["s1".into(), "s2".into()],
            remove: vec![],
        },
        Message::RemoteHeadsChanged {
            sender_id: "a".into(),
            target_id: "b".into(),
            document_id: doc_id(),
            new_heads: vec![
                RemoteHeads {
                    storage_id: "s1".into(),
                    heads: vec![],
                    timestamp: 0,
                },
                RemoteHeads {
                    storage_id: "s2".into(),
                    heads: vec!["x".into(), "y".into()],
                    timestamp: 5,
                },
            ],
        },
    ]);
    let mut names = std::collections::BTreeSet::new();
    for message in messages {
        names.insert(message.type_name());
        let bytes = message.encode();
        assert_eq!(Message::decode(&bytes), Ok(message));
    }
    assert_eq!(names.len(), 10, "every message type: {names:?}");
}

/// What other encoders produce must decode too: keys in another order, extra keys, the CDDL's
/// `metadata` instead of `peerMetadata`, a byte string wrapped in cbor-x's typed-array tag 64,
/// and a count written as a float by a JavaScript encoder.
#[test]
fn other_encoders_forms_decode() {
    // A sync message with keys in the order automerge-repo builds it (type, targetId, data,
    // documentId, then senderId added by the network subsystem) and an unknown extra key.
    let sync = hex(&[
        "a6",
        "64 74797065",
        "64 73796e63",
        "68 7461726765744964",
        "63 687562",
        "64 64617461",
        "d840 43 4200ff", // tag 64 (Uint8Array) around bytes(3)
        "6a 646f63756d656e744964",
        DOC_ID_CBOR,
        "68 73656e6465724964",
        "67 70686f6e652d31",
        "65 6578747261", // text(5) "extra"
        "f6",            //   null
    ]
    .concat());
    assert_eq!(Message::decode(&sync), Ok(request_or_sync(true).0));

    // The CDDL's `metadata` key for a join.
    let join = hex(concat!(
        "a4",
        "64 74797065 64 6a6f696e",
        "68 73656e6465724964 67 70686f6e652d31",
        "7819 737570706f7274656450726f746f636f6c56657273696f6e73 81 61 31",
        "68 6d65746164617461", // text(8) "metadata"
        "a1 6b 6973457068656d6572616c f5",
    ));
    assert_eq!(
        Message::decode(&join),
        Ok(Message::Join {
            sender_id: "phone-1".into(),
            supported_protocol_versions: vec!["1".into()],
            metadata: Some(PeerMetadata {
                storage_id: None,
                is_ephemeral: true,
            }),
        })
    );

    // An ephemeral count written as a double (fb + 8 bytes: 24.0).
    let (_, mut ephemeral_bytes) = ephemeral();
    let at = ephemeral_bytes
        .windows(3)
        .position(|w| w == [0x74, 0x18, 0x18])
        .expect("count value")
        + 1;
    ephemeral_bytes.splice(at..at + 2, hex("fb 4038000000000000"));
    assert_eq!(Message::decode(&ephemeral_bytes), Ok(ephemeral().0));
}

#[test]
fn truncated_messages_are_errors() {
    for (name, _, bytes) in vectors() {
        for len in 0..bytes.len() {
            assert!(
                Message::decode(&bytes[..len]).is_err(),
                "{name} cut to {len} bytes"
            );
        }
        // And trailing garbage after a complete message.
        let mut longer = bytes.clone();
        longer.push(0x00);
        assert_eq!(
            Message::decode(&longer),
            Err(ProtocolError::Cbor(CborError::TrailingBytes(1))),
            "{name} with a trailing byte"
        );
    }
}

#[test]
fn oversized_input_is_refused_before_decoding() {
    let mut huge = vec![0u8; MAX_MESSAGE_BYTES + 1];
    huge[0] = 0xa0;
    assert_eq!(
        Message::decode(&huge),
        Err(ProtocolError::Cbor(CborError::TooLarge(
            MAX_MESSAGE_BYTES + 1
        )))
    );
    // Declared lengths far beyond the input: a byte string of 2^64-1 bytes as `data`, a map of
    // 2^32-1 pairs, an array of a billion protocol versions.
    let (_, sync) = request_or_sync(true);
    let mut lying = sync[..sync.len() - 4].to_vec();
    lying.extend(hex("5b ffffffffffffffff 4200ff"));
    assert_eq!(
        Message::decode(&lying),
        Err(ProtocolError::Cbor(CborError::Truncated))
    );
    assert_eq!(
        Message::decode(&hex("ba ffffffff 64 74797065")),
        Err(ProtocolError::Cbor(CborError::Truncated))
    );
    let versions = hex(concat!(
        "a3 64 74797065 64 6a6f696e 68 73656e6465724964 61 61",
        "7819 737570706f7274656450726f746f636f6c56657273696f6e73",
        "9a 3b9aca00 61 31",
    ));
    assert_eq!(
        Message::decode(&versions),
        Err(ProtocolError::Cbor(CborError::Truncated))
    );
    // Deep nesting where a sender id should be.
    let mut deep = hex("a2 64 74797065 65 6c65617665 68 73656e6465724964");
    deep.extend(std::iter::repeat_n(0x81, 64));
    deep.push(0x00);
    assert_eq!(
        Message::decode(&deep),
        Err(ProtocolError::Cbor(CborError::TooDeep))
    );
}

#[test]
fn wrong_types_and_missing_fields_are_errors() {
    let field = |message, field| Err::<Message, _>(ProtocolError::Field { message, field });
    // Not a map at all: an array, a text string, a number.
    assert_eq!(
        Message::decode(&hex("81 61 31")),
        Err(ProtocolError::NotAMap)
    );
    assert_eq!(
        Message::decode(&hex("64 6a6f696e")),
        Err(ProtocolError::NotAMap)
    );
    // No type, or a type that is not text, or an unknown one.
    assert_eq!(
        Message::decode(&hex("a1 68 73656e6465724964 61 61")),
        Err(ProtocolError::NoType)
    );
    assert_eq!(
        Message::decode(&hex("a1 64 74797065 01")),
        Err(ProtocolError::NoType)
    );
    assert_eq!(
        Message::decode(&hex("a1 64 74797065 63 666f6f")),
        Err(ProtocolError::UnknownType("foo".into()))
    );
    // senderId as a number.
    assert_eq!(
        Message::decode(&hex("a2 64 74797065 65 6c65617665 68 73656e6465724964 07")),
        field("leave", "senderId")
    );
    // leave without senderId.
    assert_eq!(
        Message::decode(&hex("a1 64 74797065 65 6c65617665")),
        field("leave", "senderId")
    );
    // sync whose data is text instead of bytes.
    let (_, sync) = request_or_sync(true);
    let mut text_data = sync.clone();
    let n = text_data.len();
    text_data[n - 4] = 0x63; // text(3) instead of bytes(3); "42 00 ff" is not UTF-8 either
    text_data[n - 1] = 0x21;
    assert_eq!(Message::decode(&text_data), field("sync", "data"));
    // join whose supportedProtocolVersions is a string, or holds a number.
    let join_with = |versions: &str| {
        hex(&[
            "a3 64 74797065 64 6a6f696e 68 73656e6465724964 61 61",
            "7819 737570706f7274656450726f746f636f6c56657273696f6e73",
            versions,
        ]
        .concat())
    };
    assert_eq!(
        Message::decode(&join_with("61 31")),
        field("join", "supportedProtocolVersions")
    );
    assert_eq!(
        Message::decode(&join_with("81 01")),
        field("join", "supportedProtocolVersions")
    );
    // peerMetadata that is not a map.
    let (_, join) = join();
    let mut bad_metadata = join.clone();
    let at = bad_metadata
        .iter()
        .position(|&b| b == 0xa2)
        .expect("metadata map");
    bad_metadata.splice(at..at + 32, [0xf5]); // the whole 32-byte map becomes `true`
    assert_eq!(
        Message::decode(&bad_metadata),
        field("join", "peerMetadata")
    );
    // ephemeral count as text, or negative.
    let (_, ephemeral) = ephemeral();
    let at = ephemeral
        .windows(3)
        .position(|w| w == [0x74, 0x18, 0x18])
        .expect("count")
        + 1;
    for replacement in [hex("62 3234"), hex("37")] {
        let mut bad = ephemeral.clone();
        bad.splice(at..at + 2, replacement);
        assert_eq!(Message::decode(&bad), field("ephemeral", "count"));
    }
    // remote-heads-changed with a list where the map of heads should be.
    let (_, rhc) = remote_heads_changed();
    let at = rhc
        .windows(9)
        .position(|w| w == hex("68 6e65774865616473").as_slice())
        .expect("newHeads")
        + 9;
    let mut bad = rhc[..at].to_vec();
    bad.extend(hex("80"));
    bad[0] = 0xa5;
    assert_eq!(
        Message::decode(&bad),
        field("remote-heads-changed", "newHeads")
    );
    // Invalid UTF-8 in a key.
    assert_eq!(
        Message::decode(&hex("a1 62 c328 01")),
        Err(ProtocolError::Cbor(CborError::InvalidUtf8))
    );
}

#[test]
fn bad_document_ids_are_errors() {
    let (_, sync) = request_or_sync(true);
    let text_at = sync
        .windows(DOC_ID_TEXT.len())
        .position(|w| w == DOC_ID_TEXT.as_bytes())
        .expect("the id");
    // The last character changed: the checksum no longer matches.
    let mut bad_checksum = sync.clone();
    let last = text_at + DOC_ID_TEXT.len() - 1;
    bad_checksum[last] = if bad_checksum[last] == b'h' {
        b'g'
    } else {
        b'h'
    };
    assert_eq!(
        Message::decode(&bad_checksum),
        Err(ProtocolError::BadDocumentId { message: "sync" })
    );
    // A character outside the base58 alphabet (0, O, I and l are not in it).
    let mut not_base58 = sync.clone();
    not_base58[text_at] = b'0';
    assert_eq!(
        Message::decode(&not_base58),
        Err(ProtocolError::BadDocumentId { message: "sync" })
    );
    // A valid bs58check string of the wrong length (8 bytes), in every message with an id.
    // bs58check of eight 0x01 bytes (computed independently of this crate).
    let short = "26jNV7kaXhGd2gaU";
    for (name, message, _) in vectors() {
        let Some(id) = message.document_id() else {
            continue;
        };
        let good = message.encode();
        let needle = id.to_string();
        let at = good
            .windows(needle.len())
            .position(|w| w == needle.as_bytes())
            .expect("the id is in the message");
        let mut wrong = good[..at - 2].to_vec();
        wrong.push(0x60 + short.len() as u8);
        wrong.extend(short.as_bytes());
        wrong.extend(&good[at + needle.len()..]);
        let result = Message::decode(&wrong);
        assert!(
            matches!(result, Err(ProtocolError::BadDocumentId { .. })),
            "{name}: {result:?}"
        );
    }
    // A document id that is a number.
    let mut numeric = sync[..text_at - 2].to_vec();
    numeric.push(0x01);
    numeric.extend(&sync[text_at + DOC_ID_TEXT.len()..]);
    assert_eq!(Message::decode(&numeric), field_err("sync", "documentId"));
}

fn field_err(message: &'static str, field: &'static str) -> Result<Message, ProtocolError> {
    Err(ProtocolError::Field { message, field })
}

#[test]
fn a_stock_cbor_reader_agrees_on_the_vectors() {
    // Our generic CBOR decoder sees each vector as a map whose `type` is the message name.
    for (name, message, bytes) in vectors() {
        let item = Cbor::decode(&bytes, 1 << 20).expect("well-formed CBOR");
        assert_eq!(
            item.get("type").and_then(Cbor::as_text),
            Some(message.type_name()),
            "{name}"
        );
    }
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 512, ..ProptestConfig::default() })]

    /// Arbitrary bytes never panic the decoder.
    #[test]
    fn arbitrary_bytes_never_panic(bytes in prop::collection::vec(any::<u8>(), 0..256)) {
        let _ = Message::decode(&bytes);
    }

    /// Valid messages with bytes flipped, cut or inserted never panic the decoder, and whatever
    /// still decodes re-encodes to something that decodes to the same message.
    #[test]
    fn mutated_vectors_never_panic(
        which in 0..11usize,
        edits in prop::collection::vec((any::<usize>(), any::<u8>(), 0..3u8), 1..6),
    ) {
        let (_, _, mut bytes) = vectors().swap_remove(which);
        for (at, byte, kind) in edits {
            let at = at % (bytes.len() + 1);
            match kind {
                0 if at < bytes.len() => bytes[at] = byte,
                1 => bytes.insert(at, byte),
                _ => bytes.truncate(at),
            }
        }
        if let Ok(message) = Message::decode(&bytes) {
            prop_assert_eq!(Message::decode(&message.encode()), Ok(message));
        }
    }
}

/// A real automerge sync message carrying changes (the third message of a first sync), to
/// mutate.
fn sync_data_with_changes() -> Vec<u8> {
    use saksi_shared::sync::{AcceptAll, DocSync};
    let monitor = saksi_shared::Editor::new("sokha", "sokha-phone", saksi_shared::Role::Monitor);
    let case = DocumentId::from_bytes([0x70; 16]);
    let mut record = saksi_shared::Record::create(
        saksi_shared::RecordKind::CourtObservation,
        &case,
        ActorId::from([1; 16]),
        &monitor,
        at(1_000),
    );
    record
        .splice_text("narrative", 0, 0, "សាក្សី", &monitor, at(2_000))
        .expect("types");
    let mut a = DocSync::new(record);
    let mut b = DocSync::new(saksi_shared::Record::empty(ActorId::from([2; 16])));
    let first = a.generate("b").expect("opening");
    b.receive("a", &first, &mut AcceptAll).expect("receives");
    let reply = b.generate("a").expect("reply");
    a.receive("b", &reply, &mut AcceptAll).expect("receives");
    let data = a.generate("b").expect("changes");
    // Sanity: it does carry the changes.
    let received = b.receive("a", &data, &mut AcceptAll).expect("receives");
    assert_eq!(received.applied.len(), 2);
    data
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 96, ..ProptestConfig::default() })]

    /// Hostile frames (random bytes, or real sync messages with bytes changed, cut or
    /// inserted) never panic the hub or a phone, and the hub keeps serving honest clients.
    #[test]
    fn the_hub_and_a_phone_survive_hostile_frames(
        base in prop::sample::select(vec![0usize, 1, 2]),
        edits in prop::collection::vec((any::<usize>(), any::<u8>(), 0..3u8), 0..6),
        noise in prop::collection::vec(any::<u8>(), 0..64),
    ) {
        use crate::harness::{Net, editor};
        use saksi_testkit::Hub;
        let mut hub = Hub::new();
        let case = hub.create_case([0x71; 16], at(1));
        hub.add_member("sokha", case);
        let mut net = Net::new(hub);
        let phone = net.add_phone(editor("sokha", "sokha-phone", saksi_shared::Role::Monitor), [1; 16]);
        net.connect(phone);
        net.settle();
        // A phone that has finished its handshake with some server.
        let mut victim = saksi_shared::sync::Repo::new("victim".into(), [3; 16]);
        let _join = victim.connect();
        victim
            .receive(&peer().1)
            .expect("the handshake completes");
        let mut data = match base {
            0 => sync_data_with_changes(),
            1 => noise.clone(),
            _ => request_or_sync(true).1,
        };
        for (at, byte, kind) in edits {
            let at = at % (data.len() + 1);
            match kind {
                0 if at < data.len() => data[at] = byte,
                1 => data.insert(at, byte),
                _ => data.truncate(at),
            }
        }
        // As the `data` of a sync for a new document and for the case document, and raw.
        for frame in [
            Message::Sync {
                sender_id: "sokha-phone-peer".into(),
                target_id: "hub".into(),
                document_id: DocumentId::from_bytes([0x72; 16]),
                data: data.clone(),
            }
            .encode(),
            Message::Request {
                sender_id: "sokha-phone-peer".into(),
                target_id: "hub".into(),
                document_id: case,
                data: data.clone(),
            }
            .encode(),
            data.clone(),
        ] {
            net.inject_up(phone, frame.clone());
            // A phone gets the same bytes from "the server": an error at worst.
            let _ = victim.receive(&frame);
        }
        net.settle();
        let answers = net.hub_frames[phone].len();
        prop_assert!(answers >= 1, "the hub answered the handshake");
        for frame in &net.hub_frames[phone] {
            prop_assert!(Message::decode(frame).is_ok(), "the hub only sends valid frames");
        }
        net.disconnect(phone);
        // An honest phone still syncs a new record.
        let honest = net.add_phone(editor("sokha", "sokha-laptop", saksi_shared::Role::Monitor), [2; 16]);
        let ed = net.phone(honest).editor.clone();
        let id = net.phone_mut(honest).repo.create(
            saksi_shared::RecordKind::CourtObservation,
            &case,
            &ed,
            at(5_000),
            [0x73; 16],
        );
        net.sync(honest);
        prop_assert!(net.hub.record(&id).is_some());
    }
}
