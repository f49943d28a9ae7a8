//! The automerge-repo wire protocol, version 1.
//!
//! Every message is one CBOR map in one binary WebSocket frame, as described (in CDDL) in the
//! README of `@automerge/automerge-repo-network-websocket`. The initiating peer (a phone) sends
//! `join`; the receiving peer (the server) answers `peer`; then either side sends `request`,
//! `sync`, `doc-unavailable`, `ephemeral`, `remote-heads-changed`, `leave` or `error`.
//!
//! Two details follow the TypeScript implementation rather than the CDDL: peer metadata travels
//! under `peerMetadata` (`metadata` is accepted too), and `error` may carry `senderId` and
//! `targetId`. Saksi adds an optional `documentId` to `error` when a change to one document was
//! refused while the connection goes on: stock clients ignore the extra key.

use crate::cbor::{Cbor, CborError};
use crate::id::DocumentId;

/// The only protocol version there is.
pub const PROTOCOL_VERSION: &str = "1";

/// Largest message accepted by [`Message::decode`]. Transports should refuse bigger frames
/// before they reach the decoder.
pub const MAX_MESSAGE_BYTES: usize = 64 * 1024 * 1024;

/// What a peer says about its storage in `join` and `peer`.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct PeerMetadata {
    pub storage_id: Option<String>,
    pub is_ephemeral: bool,
}

/// Heads of one storage id, gossiped in `remote-heads-changed`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RemoteHeads {
    pub storage_id: String,
    pub heads: Vec<String>,
    pub timestamp: u64,
}

crate::id::string_id! {
    /// A peer's id on the sync protocol: chosen by each end at `join` (a phone's tab, the
    /// server), and named as the sender and target of every message.
    PeerId
}

/// One protocol message.
#[derive(Debug, Clone, PartialEq)]
pub enum Message {
    Join {
        sender_id: PeerId,
        supported_protocol_versions: Vec<String>,
        metadata: Option<PeerMetadata>,
    },
    Peer {
        sender_id: PeerId,
        target_id: PeerId,
        selected_protocol_version: String,
        metadata: Option<PeerMetadata>,
    },
    Leave {
        sender_id: PeerId,
    },
    Request {
        sender_id: PeerId,
        target_id: PeerId,
        document_id: DocumentId,
        data: Vec<u8>,
    },
    Sync {
        sender_id: PeerId,
        target_id: PeerId,
        document_id: DocumentId,
        data: Vec<u8>,
    },
    DocUnavailable {
        sender_id: PeerId,
        target_id: PeerId,
        document_id: DocumentId,
    },
    Ephemeral {
        sender_id: PeerId,
        target_id: PeerId,
        count: u64,
        session_id: String,
        document_id: DocumentId,
        data: Vec<u8>,
    },
    Error {
        sender_id: Option<PeerId>,
        target_id: Option<PeerId>,
        message: String,
        document_id: Option<DocumentId>,
    },
    RemoteSubscriptionChange {
        sender_id: PeerId,
        target_id: PeerId,
        add: Vec<String>,
        remove: Vec<String>,
    },
    RemoteHeadsChanged {
        sender_id: PeerId,
        target_id: PeerId,
        document_id: DocumentId,
        new_heads: Vec<RemoteHeads>,
    },
}

/// Why bytes are not a protocol message.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ProtocolError {
    #[error("malformed CBOR: {0}")]
    Cbor(#[from] CborError),
    #[error("a message must be a CBOR map")]
    NotAMap,
    #[error("message has no `type`")]
    NoType,
    #[error("unknown message type `{0}`")]
    UnknownType(String),
    #[error("`{message}` message is missing `{field}` or it has the wrong type")]
    Field {
        message: &'static str,
        field: &'static str,
    },
    #[error("`{message}` message has an invalid document id")]
    BadDocumentId { message: &'static str },
}

impl Message {
    /// The wire name of the message type.
    pub fn type_name(&self) -> &'static str {
        match self {
            Message::Join { .. } => "join",
            Message::Peer { .. } => "peer",
            Message::Leave { .. } => "leave",
            Message::Request { .. } => "request",
            Message::Sync { .. } => "sync",
            Message::DocUnavailable { .. } => "doc-unavailable",
            Message::Ephemeral { .. } => "ephemeral",
            Message::Error { .. } => "error",
            Message::RemoteSubscriptionChange { .. } => "remote-subscription-change",
            Message::RemoteHeadsChanged { .. } => "remote-heads-changed",
        }
    }

    /// The document a message is about, if any.
    pub fn document_id(&self) -> Option<&DocumentId> {
        match self {
            Message::Request { document_id, .. }
            | Message::Sync { document_id, .. }
            | Message::DocUnavailable { document_id, .. }
            | Message::Ephemeral { document_id, .. }
            | Message::RemoteHeadsChanged { document_id, .. } => Some(document_id),
            Message::Error { document_id, .. } => document_id.as_ref(),
            _ => None,
        }
    }

    /// Decodes one message. Unknown extra keys are ignored; missing or mistyped ones are errors.
    pub fn decode(bytes: &[u8]) -> Result<Message, ProtocolError> {
        let map = Cbor::decode(bytes, MAX_MESSAGE_BYTES)?;
        if !matches!(map, Cbor::Map(_)) {
            return Err(ProtocolError::NotAMap);
        }
        let ty = map
            .get("type")
            .and_then(Cbor::as_text)
            .ok_or(ProtocolError::NoType)?;
        let r = Reader { map: &map, ty: "" };
        Ok(match ty {
            "join" => {
                let r = r.of("join");
                Message::Join {
                    sender_id: r.text("senderId")?.into(),
                    supported_protocol_versions: r.text_list("supportedProtocolVersions")?,
                    metadata: r.metadata()?,
                }
            }
            "peer" => {
                let r = r.of("peer");
                Message::Peer {
                    sender_id: r.text("senderId")?.into(),
                    target_id: r.text("targetId")?.into(),
                    selected_protocol_version: r.text("selectedProtocolVersion")?,
                    metadata: r.metadata()?,
                }
            }
            "leave" => Message::Leave {
                sender_id: r.of("leave").text("senderId")?.into(),
            },
            "request" | "sync" => {
                let r = r.of(if ty == "sync" { "sync" } else { "request" });
                let (sender_id, target_id): (PeerId, PeerId) =
                    (r.text("senderId")?.into(), r.text("targetId")?.into());
                let document_id = r.doc_id("documentId")?;
                let data = r.bytes("data")?;
                if ty == "sync" {
                    Message::Sync {
                        sender_id,
                        target_id,
                        document_id,
                        data,
                    }
                } else {
                    Message::Request {
                        sender_id,
                        target_id,
                        document_id,
                        data,
                    }
                }
            }
            "doc-unavailable" => {
                let r = r.of("doc-unavailable");
                Message::DocUnavailable {
                    sender_id: r.text("senderId")?.into(),
                    target_id: r.text("targetId")?.into(),
                    document_id: r.doc_id("documentId")?,
                }
            }
            "ephemeral" => {
                let r = r.of("ephemeral");
                Message::Ephemeral {
                    sender_id: r.text("senderId")?.into(),
                    target_id: r.text("targetId")?.into(),
                    count: r.uint("count")?,
                    session_id: r.text("sessionId")?,
                    document_id: r.doc_id("documentId")?,
                    data: r.bytes("data")?,
                }
            }
            "error" => {
                let r = r.of("error");
                Message::Error {
                    sender_id: r.opt_text("senderId")?.map(PeerId::from),
                    target_id: r.opt_text("targetId")?.map(PeerId::from),
                    message: r.text("message")?,
                    document_id: match map.get("documentId") {
                        None => None,
                        Some(_) => Some(r.doc_id("documentId")?),
                    },
                }
            }
            "remote-subscription-change" => {
                let r = r.of("remote-subscription-change");
                Message::RemoteSubscriptionChange {
                    sender_id: r.text("senderId")?.into(),
                    target_id: r.text("targetId")?.into(),
                    add: r.opt_text_list("add")?,
                    remove: r.opt_text_list("remove")?,
                }
            }
            "remote-heads-changed" => {
                let r = r.of("remote-heads-changed");
                let bad = || ProtocolError::Field {
                    message: "remote-heads-changed",
                    field: "newHeads",
                };
                let mut new_heads = Vec::new();
                match map.get("newHeads") {
                    Some(Cbor::Map(entries)) => {
                        for (k, v) in entries {
                            let storage_id = k.as_text().ok_or_else(bad)?.to_owned();
                            let heads = v
                                .get("heads")
                                .and_then(Cbor::as_array)
                                .ok_or_else(bad)?
                                .iter()
                                .map(|h| h.as_text().map(str::to_owned).ok_or_else(bad))
                                .collect::<Result<_, _>>()?;
                            let timestamp =
                                v.get("timestamp").and_then(Cbor::as_u64).ok_or_else(bad)?;
                            new_heads.push(RemoteHeads {
                                storage_id,
                                heads,
                                timestamp,
                            });
                        }
                    }
                    _ => return Err(bad()),
                }
                Message::RemoteHeadsChanged {
                    sender_id: r.text("senderId")?.into(),
                    target_id: r.text("targetId")?.into(),
                    document_id: r.doc_id("documentId")?,
                    new_heads,
                }
            }
            other => return Err(ProtocolError::UnknownType(other.chars().take(64).collect())),
        })
    }

    /// Encodes the message as the TypeScript implementation would (same keys, same order).
    pub fn encode(&self) -> Vec<u8> {
        fn t(s: &str) -> Cbor {
            Cbor::Text(s.to_owned())
        }
        let mut m: Vec<(Cbor, Cbor)> = vec![(t("type"), t(self.type_name()))];
        let mut put = |k: &str, v: Cbor| m.push((t(k), v));
        match self {
            Message::Join {
                sender_id,
                supported_protocol_versions,
                metadata,
            } => {
                put("senderId", t(sender_id.as_str()));
                if let Some(md) = metadata {
                    put("peerMetadata", metadata_cbor(md));
                }
                put(
                    "supportedProtocolVersions",
                    Cbor::Array(
                        supported_protocol_versions
                            .iter()
                            .map(|v| t(v.as_str()))
                            .collect(),
                    ),
                );
            }
            Message::Peer {
                sender_id,
                target_id,
                selected_protocol_version,
                metadata,
            } => {
                put("senderId", t(sender_id.as_str()));
                if let Some(md) = metadata {
                    put("peerMetadata", metadata_cbor(md));
                }
                put(
                    "selectedProtocolVersion",
                    t(selected_protocol_version.as_str()),
                );
                put("targetId", t(target_id.as_str()));
            }
            Message::Leave { sender_id } => put("senderId", t(sender_id.as_str())),
            Message::Request {
                sender_id,
                target_id,
                document_id,
                data,
            }
            | Message::Sync {
                sender_id,
                target_id,
                document_id,
                data,
            } => {
                put("senderId", t(sender_id.as_str()));
                put("targetId", t(target_id.as_str()));
                put("documentId", t(&document_id.to_string()));
                put("data", Cbor::Bytes(data.clone()));
            }
            Message::DocUnavailable {
                sender_id,
                target_id,
                document_id,
            } => {
                put("senderId", t(sender_id.as_str()));
                put("targetId", t(target_id.as_str()));
                put("documentId", t(&document_id.to_string()));
            }
            Message::Ephemeral {
                sender_id,
                target_id,
                count,
                session_id,
                document_id,
                data,
            } => {
                put("senderId", t(sender_id.as_str()));
                put("targetId", t(target_id.as_str()));
                put("count", Cbor::Uint(*count));
                put("sessionId", t(session_id.as_str()));
                put("documentId", t(&document_id.to_string()));
                put("data", Cbor::Bytes(data.clone()));
            }
            Message::Error {
                sender_id,
                target_id,
                message,
                document_id,
            } => {
                if let Some(s) = sender_id {
                    put("senderId", t(s.as_str()));
                }
                put("message", t(message.as_str()));
                if let Some(s) = target_id {
                    put("targetId", t(s.as_str()));
                }
                if let Some(d) = document_id {
                    put("documentId", t(&d.to_string()));
                }
            }
            Message::RemoteSubscriptionChange {
                sender_id,
                target_id,
                add,
                remove,
            } => {
                put("senderId", t(sender_id.as_str()));
                put("targetId", t(target_id.as_str()));
                put(
                    "add",
                    Cbor::Array(add.iter().map(|s| t(s.as_str())).collect()),
                );
                put(
                    "remove",
                    Cbor::Array(remove.iter().map(|s| t(s.as_str())).collect()),
                );
            }
            Message::RemoteHeadsChanged {
                sender_id,
                target_id,
                document_id,
                new_heads,
            } => {
                put("senderId", t(sender_id.as_str()));
                put("targetId", t(target_id.as_str()));
                put("documentId", t(&document_id.to_string()));
                put(
                    "newHeads",
                    Cbor::Map(
                        new_heads
                            .iter()
                            .map(|h| {
                                (
                                    t(h.storage_id.as_str()),
                                    Cbor::Map(vec![
                                        (
                                            t("heads"),
                                            Cbor::Array(
                                                h.heads.iter().map(|x| t(x.as_str())).collect(),
                                            ),
                                        ),
                                        (t("timestamp"), Cbor::Uint(h.timestamp)),
                                    ]),
                                )
                            })
                            .collect(),
                    ),
                );
            }
        }
        Cbor::Map(m).encode()
    }
}

fn metadata_cbor(md: &PeerMetadata) -> Cbor {
    let mut m = Vec::new();
    if let Some(s) = &md.storage_id {
        m.push((Cbor::text("storageId"), Cbor::text(s.as_str())));
    }
    m.push((Cbor::text("isEphemeral"), Cbor::Bool(md.is_ephemeral)));
    Cbor::Map(m)
}

/// Typed access to the fields of one message, with errors naming the message and field.
struct Reader<'a> {
    map: &'a Cbor,
    ty: &'static str,
}

impl<'a> Reader<'a> {
    fn of(&self, ty: &'static str) -> Reader<'a> {
        Reader { map: self.map, ty }
    }

    fn err(&self, field: &'static str) -> ProtocolError {
        ProtocolError::Field {
            message: self.ty,
            field,
        }
    }

    fn text(&self, field: &'static str) -> Result<String, ProtocolError> {
        self.map
            .get(field)
            .and_then(Cbor::as_text)
            .map(str::to_owned)
            .ok_or_else(|| self.err(field))
    }

    fn opt_text(&self, field: &'static str) -> Result<Option<String>, ProtocolError> {
        match self.map.get(field) {
            None | Some(Cbor::Null | Cbor::Undefined) => Ok(None),
            Some(v) => v
                .as_text()
                .map(|s| Some(s.to_owned()))
                .ok_or_else(|| self.err(field)),
        }
    }

    fn bytes(&self, field: &'static str) -> Result<Vec<u8>, ProtocolError> {
        self.map
            .get(field)
            .and_then(Cbor::as_bytes)
            .map(<[u8]>::to_vec)
            .ok_or_else(|| self.err(field))
    }

    fn uint(&self, field: &'static str) -> Result<u64, ProtocolError> {
        self.map
            .get(field)
            .and_then(Cbor::as_u64)
            .ok_or_else(|| self.err(field))
    }

    fn doc_id(&self, field: &'static str) -> Result<DocumentId, ProtocolError> {
        let s = self.text(field)?;
        DocumentId::parse(&s).map_err(|_| ProtocolError::BadDocumentId { message: self.ty })
    }

    fn text_list(&self, field: &'static str) -> Result<Vec<String>, ProtocolError> {
        self.map
            .get(field)
            .and_then(Cbor::as_array)
            .ok_or_else(|| self.err(field))?
            .iter()
            .map(|v| {
                v.as_text()
                    .map(str::to_owned)
                    .ok_or_else(|| self.err(field))
            })
            .collect()
    }

    fn opt_text_list(&self, field: &'static str) -> Result<Vec<String>, ProtocolError> {
        match self.map.get(field) {
            None | Some(Cbor::Null | Cbor::Undefined) => Ok(Vec::new()),
            Some(_) => self.text_list(field),
        }
    }

    fn metadata(&self) -> Result<Option<PeerMetadata>, ProtocolError> {
        let value = self
            .map
            .get("peerMetadata")
            .or_else(|| self.map.get("metadata"));
        match value {
            None | Some(Cbor::Null | Cbor::Undefined) => Ok(None),
            Some(md @ Cbor::Map(_)) => Ok(Some(PeerMetadata {
                storage_id: match md.get("storageId") {
                    None | Some(Cbor::Null | Cbor::Undefined) => None,
                    Some(s) => Some(
                        s.as_text()
                            .ok_or_else(|| self.err("peerMetadata"))?
                            .to_owned(),
                    ),
                },
                is_ephemeral: md
                    .get("isEphemeral")
                    .and_then(Cbor::as_bool)
                    .unwrap_or(false),
            })),
            Some(_) => Err(self.err("peerMetadata")),
        }
    }
}
