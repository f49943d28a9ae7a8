//! The sync WebSocket, framed with actix-http's codec and read and written one frame at a time.
//!
//! actix-ws (used before) encoded every message queued for a connection into one buffer, up to
//! 32 at a time, and actix's write buffer grew to hold it and kept up to 128 kB of it afterwards;
//! its reader pulled in everything the socket had. With 1,000 phones connected that was about
//! 100 MB of the server's memory (BENCHMARKS.md). Here a frame's header and its payload are
//! handed to actix separately when it asks for more ([`Writer`]): a frame's bytes stay counted in
//! the connection's [`super::Outbox`] until actix copies them into its write buffer, which then
//! stays small. The [`Reader`] reads the socket only when it holds no whole frame.

use std::pin::Pin;
use std::task::{Context, Poll};

use actix_codec::{Decoder as _, Encoder as _};
use actix_http::ws::{self, Codec, Frame, Item, ProtocolError};
pub use actix_http::ws::{CloseCode, CloseReason};
use actix_web::body::{BodySize, MessageBody};
use actix_web::{HttpRequest, HttpResponse, web};
use bytes::{BufMut as _, Bytes, BytesMut};
use futures_util::StreamExt as _;
use tokio::sync::mpsc;

/// Frames longer than this go out as WebSocket fragments of this size, so that one long message
/// (a document sent whole can be megabytes) does not make actix's write buffer that large.
/// Every WebSocket client reassembles fragments.
pub const FRAGMENT: usize = 16 * 1024;

/// Pieces (frame headers and payloads) waiting for actix to ask for them. Small, so that a
/// frame waits in the sender's queue (where its bytes are counted) rather than here.
const PIECES: usize = 4;

/// A message from the client, continuations put together.
#[derive(Debug, PartialEq, Eq)]
pub enum Incoming {
    Binary(Bytes),
    Text,
    Ping(Bytes),
    Pong,
    Close,
}

/// The connection was closed: nothing more can be written.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Closed;

/// Completes a WebSocket upgrade: the response to return, the writer and the reader. Frames and
/// whole messages longer than `max_message` are refused ([`ProtocolError::Overflow`]).
pub fn upgrade(
    req: &HttpRequest,
    payload: web::Payload,
    max_message: usize,
) -> Result<(HttpResponse, Writer, Reader), ws::HandshakeError> {
    let mut response = ws::handshake(req.head())?;
    let (writer, body) = writer();
    let response = HttpResponse::from(
        response
            .message_body(body.boxed())
            .expect("a WebSocket handshake response has no error to carry"),
    );
    Ok((
        response,
        writer,
        Reader::new(payload.into_inner(), max_message),
    ))
}

fn writer() -> (Writer, Body) {
    let (tx, rx) = mpsc::channel(PIECES);
    (Writer { tx: Some(tx) }, Body { rx })
}

/// The response body: the pieces the writer sends, in order, until it is dropped or closes.
struct Body {
    rx: mpsc::Receiver<Bytes>,
}

impl MessageBody for Body {
    type Error = std::convert::Infallible;

    fn size(&self) -> BodySize {
        BodySize::Stream
    }

    fn poll_next(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Bytes, Self::Error>>> {
        self.get_mut().rx.poll_recv(cx).map(|piece| piece.map(Ok))
    }
}

/// Writes frames to the client. Each call returns once actix has room for the frame (or the
/// connection is gone).
#[derive(Debug)]
pub struct Writer {
    tx: Option<mpsc::Sender<Bytes>>,
}

impl Writer {
    async fn piece(&mut self, piece: Bytes) -> Result<(), Closed> {
        let tx = self.tx.as_ref().ok_or(Closed)?;
        tx.send(piece).await.map_err(|_| Closed)
    }

    async fn frame(&mut self, opcode: u8, fin: bool, payload: Bytes) -> Result<(), Closed> {
        self.piece(header(opcode, fin, payload.len())).await?;
        if !payload.is_empty() {
            self.piece(payload).await?;
        }
        Ok(())
    }

    /// One binary message, in fragments of at most [`FRAGMENT`] bytes.
    pub async fn binary(&mut self, message: Bytes) -> Result<(), Closed> {
        if message.len() <= FRAGMENT {
            return self.frame(OP_BINARY, true, message).await;
        }
        let mut start = 0;
        while start < message.len() {
            let end = (start + FRAGMENT).min(message.len());
            let opcode = if start == 0 { OP_BINARY } else { OP_CONTINUE };
            self.frame(opcode, end == message.len(), message.slice(start..end))
                .await?;
            start = end;
        }
        Ok(())
    }

    pub async fn ping(&mut self, payload: &[u8]) -> Result<(), Closed> {
        let payload = Bytes::copy_from_slice(&payload[..payload.len().min(MAX_CONTROL)]);
        self.frame(OP_PING, true, payload).await
    }

    pub async fn pong(&mut self, payload: &[u8]) -> Result<(), Closed> {
        let payload = Bytes::copy_from_slice(&payload[..payload.len().min(MAX_CONTROL)]);
        self.frame(OP_PONG, true, payload).await
    }

    /// Sends a close frame and ends the response: nothing can be written afterwards.
    pub async fn close(&mut self, reason: Option<CloseReason>) -> Result<(), Closed> {
        let mut frame = BytesMut::new();
        let reason = reason.map(|mut r| {
            if let Some(text) = r.description.as_mut() {
                // A control frame carries at most 125 bytes: the code and 123 of reason.
                let mut end = text.len().min(MAX_CONTROL - 2);
                while !text.is_char_boundary(end) {
                    end -= 1;
                }
                text.truncate(end);
            }
            r
        });
        Codec::new()
            .encode(ws::Message::Close(reason), &mut frame)
            .map_err(|_| Closed)?;
        let sent = self.piece(frame.freeze()).await;
        self.tx = None;
        sent
    }
}

const OP_CONTINUE: u8 = 0x0;
const OP_BINARY: u8 = 0x2;
const OP_PING: u8 = 0x9;
const OP_PONG: u8 = 0xA;
/// Longest payload of a control frame (RFC 6455, 5.5).
const MAX_CONTROL: usize = 125;

/// An unmasked frame header (RFC 6455, 5.2), as a server sends.
fn header(opcode: u8, fin: bool, len: usize) -> Bytes {
    let mut h = BytesMut::with_capacity(10);
    h.put_u8(if fin { 0x80 } else { 0 } | opcode);
    if len < 126 {
        h.put_u8(len as u8);
    } else if let Ok(short) = u16::try_from(len) {
        h.put_u8(126);
        h.put_u16(short);
    } else {
        h.put_u8(127);
        h.put_u64(len as u64);
    }
    h.freeze()
}

/// Reads the client's messages.
pub struct Reader {
    payload: actix_http::Payload,
    buf: BytesMut,
    codec: Codec,
    max_message: usize,
    /// A fragmented message being put together: whether it is text, and its parts.
    partial: Option<(bool, Vec<Bytes>, usize)>,
    ended: bool,
}

impl std::fmt::Debug for Reader {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Reader")
            .field("buffered", &self.buf.len())
            .field("in_fragments", &self.partial.is_some())
            .field("ended", &self.ended)
            .finish_non_exhaustive()
    }
}

impl Reader {
    fn new(payload: actix_http::Payload, max_message: usize) -> Self {
        Reader {
            payload,
            buf: BytesMut::new(),
            codec: Codec::new().max_size(max_message),
            max_message,
            partial: None,
            ended: false,
        }
    }

    /// The next message, or `None` once the client is gone. Cancel-safe: what was read stays
    /// buffered for the next call.
    pub async fn next(&mut self) -> Option<Result<Incoming, ProtocolError>> {
        loop {
            match self.codec.decode(&mut self.buf) {
                Ok(Some(frame)) => {
                    if self.buf.is_empty() {
                        // Keep no buffer between messages on a quiet connection.
                        self.buf = BytesMut::new();
                    }
                    match self.assemble(frame) {
                        Ok(Some(message)) => return Some(Ok(message)),
                        Ok(None) => continue,
                        Err(e) => return Some(Err(e)),
                    }
                }
                Ok(None) => {}
                Err(e) => return Some(Err(e)),
            }
            if self.ended {
                return None;
            }
            match self.payload.next().await {
                Some(Ok(chunk)) => self.buf.extend_from_slice(&chunk),
                Some(Err(e)) => {
                    self.ended = true;
                    return Some(Err(ProtocolError::Io(std::io::Error::other(e))));
                }
                None => self.ended = true,
            }
        }
    }

    fn assemble(&mut self, frame: Frame) -> Result<Option<Incoming>, ProtocolError> {
        let item = match frame {
            Frame::Binary(bytes) => return Ok(Some(Incoming::Binary(bytes))),
            Frame::Text(_) => return Ok(Some(Incoming::Text)),
            Frame::Ping(bytes) => return Ok(Some(Incoming::Ping(bytes))),
            Frame::Pong(_) => return Ok(Some(Incoming::Pong)),
            Frame::Close(_) => return Ok(Some(Incoming::Close)),
            Frame::Continuation(item) => item,
        };
        let (first, part, last) = match item {
            Item::FirstBinary(part) => (Some(false), part, false),
            Item::FirstText(part) => (Some(true), part, false),
            Item::Continue(part) => (None, part, false),
            Item::Last(part) => (None, part, true),
        };
        if let Some(text) = first {
            self.partial = Some((text, Vec::new(), 0));
        }
        let Some((_, parts, len)) = self.partial.as_mut() else {
            return Err(ProtocolError::ContinuationNotStarted);
        };
        *len += part.len();
        if *len > self.max_message {
            return Err(ProtocolError::Overflow);
        }
        parts.push(part);
        if !last {
            return Ok(None);
        }
        let (text, parts, len) = self.partial.take().expect("checked above");
        if text {
            return Ok(Some(Incoming::Text));
        }
        let mut whole = BytesMut::with_capacity(len);
        for part in parts {
            whole.extend_from_slice(&part);
        }
        Ok(Some(Incoming::Binary(whole.freeze())))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Everything the writer sent, as one byte string (what actix writes to the socket).
    fn drain(body: &mut Body) -> BytesMut {
        let mut out = BytesMut::new();
        while let Ok(piece) = body.rx.try_recv() {
            out.extend_from_slice(&piece);
        }
        out
    }

    /// Decodes server frames as a client would.
    fn frames(mut wire: BytesMut) -> Vec<Frame> {
        let mut codec = Codec::new().client_mode().max_size(usize::MAX);
        let mut out = Vec::new();
        while let Some(frame) = codec.decode(&mut wire).expect("valid frames") {
            out.push(frame);
        }
        assert!(wire.is_empty(), "{} bytes left undecoded", wire.len());
        out
    }

    #[tokio::test]
    async fn headers_encode_every_length_form() {
        for len in [0, 1, 125, 126, 127, 65_535] {
            let (mut w, mut body) = writer();
            let payload = Bytes::from(vec![7u8; len]);
            let sending = tokio::spawn(async move {
                w.frame(OP_BINARY, true, payload).await.unwrap();
            });
            let mut wire = BytesMut::new();
            while wire.len() < len + 2 {
                wire.extend_from_slice(&body.rx.recv().await.unwrap());
            }
            sending.await.unwrap();
            assert_eq!(
                frames(wire),
                vec![Frame::Binary(Bytes::from(vec![7u8; len]))],
                "{len}"
            );
        }
        // The 64-bit form, without building a megabyte: the header alone.
        let h = header(OP_BINARY, true, 70_000);
        assert_eq!(&h[..2], &[0x82, 127]);
        assert_eq!(u64::from_be_bytes(h[2..10].try_into().unwrap()), 70_000);
    }

    #[tokio::test]
    async fn a_long_message_goes_out_in_fragments_a_client_reassembles() {
        let text = "សាក្សី ".repeat(5_000);
        let message = Bytes::from(text.clone().into_bytes());
        assert!(message.len() > 3 * FRAGMENT);
        let (mut w, mut body) = writer();
        let sending = tokio::spawn(async move { w.binary(message).await });
        let mut wire = BytesMut::new();
        while let Some(piece) = body.rx.recv().await {
            // No piece is longer than a fragment: actix's buffer never has to hold more.
            assert!(piece.len() <= FRAGMENT);
            wire.extend_from_slice(&piece);
        }
        sending.await.unwrap().unwrap();
        let frames = frames(wire);
        assert!(frames.len() >= 4);
        let mut whole = Vec::new();
        for (i, frame) in frames.iter().enumerate() {
            let Frame::Continuation(item) = frame else {
                panic!("frame {i} is not a fragment: {frame:?}");
            };
            let part = match (i, item) {
                (0, Item::FirstBinary(p)) => p,
                (i, Item::Last(p)) if i == frames.len() - 1 => p,
                (i, Item::Continue(p)) if i > 0 && i < frames.len() - 1 => p,
                _ => panic!("fragment {i} out of order: {item:?}"),
            };
            whole.extend_from_slice(part);
        }
        assert_eq!(String::from_utf8(whole).unwrap(), text);
    }

    #[tokio::test]
    async fn a_close_ends_the_body_and_later_writes_fail() {
        let (mut w, mut body) = writer();
        let reason = CloseReason {
            code: CloseCode::Policy,
            description: Some("ការ".repeat(100)),
        };
        w.close(Some(reason)).await.unwrap();
        assert_eq!(w.binary(Bytes::from_static(b"x")).await, Err(Closed));
        let wire = drain(&mut body);
        assert!(
            body.rx.recv().await.is_none(),
            "the body ends after the close"
        );
        let got: [Frame; 1] = frames(wire).try_into().unwrap();
        let [Frame::Close(Some(got))] = got else {
            panic!("not one close frame");
        };
        assert_eq!(got.code, CloseCode::Policy);
        // Cut to a control frame's 123 bytes of reason, on a character boundary.
        let text = got.description.unwrap();
        assert!(text.len() <= 123 && text.len() > 110, "{}", text.len());
        assert!(text.chars().all(|c| "ការ".contains(c)));
    }

    #[tokio::test]
    async fn writes_fail_once_the_connection_is_gone() {
        let (mut w, body) = writer();
        drop(body);
        assert_eq!(w.ping(b"").await, Err(Closed));
    }

    /// A reader over what a client sent, delivered in chunks of `chunk` bytes.
    fn reader(wire: &[u8], chunk: usize, max_message: usize) -> Reader {
        let chunks: Vec<Result<Bytes, actix_http::error::PayloadError>> = wire
            .chunks(chunk)
            .map(|c| Ok(Bytes::copy_from_slice(c)))
            .collect();
        let stream: actix_http::BoxedPayloadStream = Box::pin(futures_util::stream::iter(chunks));
        Reader::new(actix_http::Payload::from(stream), max_message)
    }

    /// Masked client frames.
    fn client(messages: Vec<ws::Message>) -> BytesMut {
        let mut codec = Codec::new().client_mode();
        let mut wire = BytesMut::new();
        for m in messages {
            codec.encode(m, &mut wire).unwrap();
        }
        wire
    }

    #[tokio::test]
    async fn fragments_split_anywhere_come_back_as_one_message() {
        let text = "សាក្សី".repeat(400);
        let bytes = text.as_bytes();
        let third = bytes.len() / 3;
        let wire = client(vec![
            ws::Message::Continuation(Item::FirstBinary(Bytes::copy_from_slice(&bytes[..third]))),
            ws::Message::Ping(Bytes::from_static(b"p")),
            ws::Message::Continuation(Item::Continue(Bytes::copy_from_slice(
                &bytes[third..2 * third],
            ))),
            ws::Message::Continuation(Item::Last(Bytes::copy_from_slice(&bytes[2 * third..]))),
            ws::Message::Binary(Bytes::from_static(b"next")),
            ws::Message::Close(None),
        ]);
        for chunk in [1, 7, 1000, wire.len()] {
            let mut r = reader(&wire, chunk, 64 * 1024);
            assert_eq!(
                r.next().await.unwrap().unwrap(),
                Incoming::Ping(Bytes::from_static(b"p"))
            );
            assert_eq!(
                r.next().await.unwrap().unwrap(),
                Incoming::Binary(Bytes::copy_from_slice(bytes)),
                "chunks of {chunk}"
            );
            assert_eq!(
                r.next().await.unwrap().unwrap(),
                Incoming::Binary(Bytes::from_static(b"next"))
            );
            assert_eq!(r.next().await.unwrap().unwrap(), Incoming::Close);
            assert!(r.next().await.is_none());
        }
    }

    #[tokio::test]
    async fn too_long_frames_and_messages_are_refused() {
        let big = Bytes::from(vec![1u8; 2_000]);
        let mut r = reader(&client(vec![ws::Message::Binary(big.clone())]), 100, 1_000);
        assert!(matches!(r.next().await, Some(Err(ProtocolError::Overflow))));

        // Each fragment within the limit, the whole message not.
        let wire = client(vec![
            ws::Message::Continuation(Item::FirstBinary(big.slice(..800))),
            ws::Message::Continuation(Item::Last(big.slice(800..1_600))),
        ]);
        let mut r = reader(&wire, 100, 1_000);
        assert!(matches!(r.next().await, Some(Err(ProtocolError::Overflow))));
    }

    #[tokio::test]
    async fn unmasked_and_unstarted_frames_are_protocol_errors() {
        // A server-style (unmasked) frame from a client.
        let mut unmasked = BytesMut::new();
        Codec::new()
            .encode(ws::Message::Binary(Bytes::from_static(b"x")), &mut unmasked)
            .unwrap();
        let mut r = reader(&unmasked, 10, 1_000);
        assert!(matches!(
            r.next().await,
            Some(Err(ProtocolError::UnmaskedFrame))
        ));

        // A last fragment with nothing before it (the client codec would not encode one):
        // FIN + continuation, masked, one byte, an all-zero mask.
        let wire = [0x80, 0x81, 0, 0, 0, 0, b'x'];
        let mut r = reader(&wire, 10, 1_000);
        assert!(matches!(
            r.next().await,
            Some(Err(ProtocolError::ContinuationNotStarted))
        ));
    }
}
