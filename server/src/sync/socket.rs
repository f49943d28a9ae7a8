//! The sync WebSocket, read and written by this module on the connection itself.
//!
//! After the handshake ([`crate::http::upgrade`]) the connection's stream is handed over whole:
//! actix's HTTP buffers are no longer in the path. With 1,000 phones connected those buffers
//! were about 100 MB of the server's memory (BENCHMARKS.md): actix reads up to 128 kB ahead of
//! the application and keeps its buffers for the connection's life. Here the [`Reader`] reads
//! no more than the frame it is assembling needs (plus [`READ_AHEAD`]), so what a phone sends
//! faster than the server takes stays in the kernel's socket buffers; and the [`Writer`] writes
//! each frame straight to the stream, so a frame's bytes stay counted in the connection's
//! [`super::Outbox`] until they are written. A client that stops reading is closed after
//! `stall` instead of holding its connection task (and its heartbeat) forever.

use std::time::Duration;

use actix_codec::{Decoder as _, Encoder as _};
use actix_http::ws::{self, Codec, Frame, Item, ProtocolError};
pub use actix_http::ws::{CloseCode, CloseReason};
use bytes::{BufMut as _, Bytes, BytesMut};
use tokio::io::{AsyncRead, AsyncReadExt as _, AsyncWrite, AsyncWriteExt as _};

/// Frames longer than this go out as WebSocket fragments of this size, so that one long message
/// (a document sent whole can be megabytes) is written, and encrypted, a piece at a time.
/// Every WebSocket client reassembles fragments.
pub const FRAGMENT: usize = 16 * 1024;

/// How far past the frame being assembled the reader may read: enough for the next few small
/// frames in one read, little enough that a thousand connections hold little.
pub const READ_AHEAD: usize = 4 * 1024;

/// The most the reader's buffer grows by for one read.
const READ_CHUNK: usize = 64 * 1024;

/// The longest frame header a client sends: 2 bytes, an 8-byte length, a 4-byte mask.
const MAX_HEADER: usize = 14;

/// A message from the client, continuations put together.
#[derive(Debug, PartialEq, Eq)]
pub enum Incoming {
    Binary(Bytes),
    Text,
    Ping(Bytes),
    Pong,
    Close,
}

/// Nothing more can be written.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Closed {
    /// The client has gone (or the writer was closed).
    Gone,
    /// The client took no frame for longer than the writer's `stall` time.
    Stalled,
}

/// Splits an upgraded stream into the writer and the reader. `buffered` is what the client
/// sent after its handshake that was read with it. Frames and whole messages longer than
/// `max_message` are refused ([`ProtocolError::Overflow`]); a frame the client does not take
/// within `stall` closes the connection ([`Closed::Stalled`]).
pub fn open<T>(io: T, buffered: BytesMut, max_message: usize, stall: Duration) -> (Writer, Reader)
where
    T: AsyncRead + AsyncWrite + Unpin + 'static,
{
    let (read, write) = tokio::io::split(io);
    (
        Writer {
            io: Some(Box::new(write)),
            stall,
        },
        Reader::new(Box::new(read), buffered, max_message),
    )
}

/// Writes frames to the client. Each call returns once the frame is written (or the
/// connection is gone).
pub struct Writer {
    io: Option<Box<dyn AsyncWrite + Unpin>>,
    stall: Duration,
}

impl std::fmt::Debug for Writer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Writer")
            .field("open", &self.io.is_some())
            .field("stall", &self.stall)
            .finish()
    }
}

impl Writer {
    /// Writes bytes and flushes them. Any failure closes the writer.
    async fn write(&mut self, wire: &[u8]) -> Result<(), Closed> {
        let io = self.io.as_mut().ok_or(Closed::Gone)?;
        let written = tokio::time::timeout(self.stall, async {
            io.write_all(wire).await?;
            io.flush().await
        })
        .await;
        match written {
            Ok(Ok(())) => Ok(()),
            Ok(Err(_)) => {
                self.io = None;
                Err(Closed::Gone)
            }
            Err(_) => {
                self.io = None;
                Err(Closed::Stalled)
            }
        }
    }

    /// One frame, its header and payload in one write: a small frame then goes out as one TLS
    /// record and one TCP segment, not two. A payload is at most [`FRAGMENT`] long, so the
    /// copy is short-lived.
    async fn frame(&mut self, opcode: u8, fin: bool, payload: &[u8]) -> Result<(), Closed> {
        let mut wire = Vec::with_capacity(10 + payload.len());
        header(&mut wire, opcode, fin, payload.len());
        wire.extend_from_slice(payload);
        self.write(&wire).await
    }

    /// One binary message, in fragments of at most [`FRAGMENT`] bytes.
    pub async fn binary(&mut self, message: &[u8]) -> Result<(), Closed> {
        if message.len() <= FRAGMENT {
            return self.frame(OP_BINARY, true, message).await;
        }
        let mut start = 0;
        while start < message.len() {
            let end = (start + FRAGMENT).min(message.len());
            let opcode = if start == 0 { OP_BINARY } else { OP_CONTINUE };
            self.frame(opcode, end == message.len(), &message[start..end])
                .await?;
            start = end;
        }
        Ok(())
    }

    pub async fn ping(&mut self, payload: &[u8]) -> Result<(), Closed> {
        self.frame(OP_PING, true, &payload[..payload.len().min(MAX_CONTROL)])
            .await
    }

    pub async fn pong(&mut self, payload: &[u8]) -> Result<(), Closed> {
        self.frame(OP_PONG, true, &payload[..payload.len().min(MAX_CONTROL)])
            .await
    }

    /// Sends a close frame and shuts the stream down (for TLS, a close_notify): nothing can be
    /// written afterwards.
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
            .map_err(|_| Closed::Gone)?;
        let sent = self.write(&frame).await;
        if let Some(mut io) = self.io.take() {
            let _ = tokio::time::timeout(self.stall, io.shutdown()).await;
        }
        sent
    }
}

const OP_CONTINUE: u8 = 0x0;
const OP_BINARY: u8 = 0x2;
const OP_PING: u8 = 0x9;
const OP_PONG: u8 = 0xA;
/// Longest payload of a control frame (RFC 6455, 5.5).
const MAX_CONTROL: usize = 125;

/// Appends an unmasked frame header (RFC 6455, 5.2), as a server sends.
fn header(out: &mut Vec<u8>, opcode: u8, fin: bool, len: usize) {
    out.put_u8(if fin { 0x80 } else { 0 } | opcode);
    if len < 126 {
        out.put_u8(len as u8);
    } else if let Ok(short) = u16::try_from(len) {
        out.put_u8(126);
        out.put_u16(short);
    } else {
        out.put_u8(127);
        out.put_u64(len as u64);
    }
}

/// How many bytes the frame at the start of `buf` takes, header included, once enough of its
/// header is there to tell. Saturates for lengths no buffer could hold ([`Reader::next`]
/// refuses those on the header).
fn frame_len(buf: &[u8]) -> Option<usize> {
    let second = *buf.get(1)?;
    let mask = if second & 0x80 != 0 { 4 } else { 0 };
    let (extended, payload) = match second & 0x7f {
        126 => (
            2,
            u64::from(u16::from_be_bytes(buf.get(2..4)?.try_into().ok()?)),
        ),
        127 => (8, u64::from_be_bytes(buf.get(2..10)?.try_into().ok()?)),
        short => (0, u64::from(short)),
    };
    let payload = usize::try_from(payload).unwrap_or(usize::MAX);
    Some(payload.saturating_add(2 + extended + mask))
}

/// Reads the client's messages.
pub struct Reader {
    io: Box<dyn AsyncRead + Unpin>,
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
    fn new(io: Box<dyn AsyncRead + Unpin>, buffered: BytesMut, max_message: usize) -> Self {
        // A copy of what is left, not actix's read buffer itself, whose capacity (8 kB or
        // more) would stay with the connection.
        let buf = if buffered.is_empty() {
            BytesMut::new()
        } else {
            BytesMut::from(&buffered[..])
        };
        Reader {
            io,
            buf,
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
            // Read what the frame being assembled still lacks, and at most READ_AHEAD more.
            let wanted = match frame_len(&self.buf) {
                // The codec refuses an overlong frame only once all of it has arrived: refuse
                // it on its header instead, before buffering a length the client only claims.
                Some(len) if len > self.max_message.saturating_add(MAX_HEADER) => {
                    self.ended = true;
                    return Some(Err(ProtocolError::Overflow));
                }
                Some(len) => len.saturating_sub(self.buf.len()),
                None => MAX_HEADER.saturating_sub(self.buf.len()),
            };
            let limit = wanted.max(READ_AHEAD);
            // Grown as bytes arrive. (The codec itself reserves what a header claims, up to
            // `max_message`: address space, not memory, until bytes fill it.)
            self.buf.reserve(limit.min(READ_CHUNK));
            match (&mut self.io)
                .take(limit as u64)
                .read_buf(&mut self.buf)
                .await
            {
                Ok(0) => self.ended = true,
                Ok(_) => {}
                Err(e) => {
                    self.ended = true;
                    return Some(Err(ProtocolError::Io(e)));
                }
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
    use tokio::io::DuplexStream;

    /// A writer to a client end that can hold `room` unread bytes.
    fn writer(room: usize, stall: Duration) -> (Writer, DuplexStream) {
        let (server, client) = tokio::io::duplex(room);
        let (w, _) = open(server, BytesMut::new(), 1 << 20, stall);
        (w, client)
    }

    /// Everything the client end has received until the server's side is shut down.
    async fn received(mut client: DuplexStream) -> BytesMut {
        let mut wire = BytesMut::new();
        while client.read_buf(&mut wire).await.expect("readable") > 0 {}
        wire
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

    const A_WHILE: Duration = Duration::from_secs(5);

    #[tokio::test]
    async fn headers_encode_every_length_form() {
        for len in [0, 1, 125, 126, 127, 65_535] {
            let (mut w, client) = writer(1 << 20, A_WHILE);
            let payload = vec![7u8; len];
            w.frame(OP_BINARY, true, &payload).await.unwrap();
            drop(w);
            assert_eq!(
                frames(received(client).await),
                vec![Frame::Binary(Bytes::from(payload))],
                "{len}"
            );
        }
        // The 64-bit form, without building a megabyte: the header alone.
        let mut h = Vec::new();
        header(&mut h, OP_BINARY, true, 70_000);
        assert_eq!(&h[..2], &[0x82, 127]);
        assert_eq!(u64::from_be_bytes(h[2..10].try_into().unwrap()), 70_000);
        assert_eq!(frame_len(&h), Some(10 + 70_000));
    }

    #[test]
    fn a_frame_length_is_known_once_its_header_is_there() {
        // Masked client frames: 2 bytes, the extended length, 4 bytes of mask.
        assert_eq!(frame_len(&[0x82]), None);
        assert_eq!(frame_len(&[0x82, 0x80 | 5]), Some(2 + 4 + 5));
        assert_eq!(frame_len(&[0x82, 0x80 | 126, 0x01]), None);
        assert_eq!(
            frame_len(&[0x82, 0x80 | 126, 0x01, 0x00]),
            Some(4 + 4 + 256)
        );
        assert_eq!(frame_len(&[0x82, 0x80 | 127, 0, 0, 0, 0, 0]), None);
        let mut huge = vec![0x82, 0x80 | 127];
        huge.extend_from_slice(&u64::MAX.to_be_bytes());
        assert_eq!(frame_len(&huge), Some(usize::MAX), "saturates");
    }

    #[tokio::test]
    async fn a_long_message_goes_out_in_fragments_a_client_reassembles() {
        let text = "សាក្សី ".repeat(5_000);
        assert!(text.len() > 3 * FRAGMENT);
        let (mut w, client) = writer(1 << 20, A_WHILE);
        w.binary(text.as_bytes()).await.unwrap();
        drop(w);
        let frames = frames(received(client).await);
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
            assert!(part.len() <= FRAGMENT);
            whole.extend_from_slice(part);
        }
        assert_eq!(String::from_utf8(whole).unwrap(), text);
    }

    #[tokio::test]
    async fn a_close_shuts_the_stream_and_later_writes_fail() {
        let (mut w, client) = writer(1 << 20, A_WHILE);
        let reason = CloseReason {
            code: CloseCode::Policy,
            description: Some("ការ".repeat(100)),
        };
        w.close(Some(reason)).await.unwrap();
        assert_eq!(w.binary(b"x").await, Err(Closed::Gone));
        // `received` ends only when the stream is shut down; the writer is still alive.
        let got: [Frame; 1] = frames(received(client).await).try_into().unwrap();
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
    async fn writes_fail_once_the_client_is_gone() {
        let (mut w, client) = writer(1 << 20, A_WHILE);
        drop(client);
        assert_eq!(w.ping(b"").await, Err(Closed::Gone));
        assert_eq!(w.ping(b"").await, Err(Closed::Gone));
    }

    /// A client that connects and then reads nothing must not hold the connection's task: the
    /// write that cannot finish gives up after the stall time, and the writer stays closed.
    #[tokio::test(start_paused = true)]
    async fn a_client_that_stops_reading_is_given_up_after_the_stall_time() {
        let stall = Duration::from_secs(60);
        let (mut w, client) = writer(4 * 1024, stall);
        let started = tokio::time::Instant::now();
        // Fits in what the client end holds: written at once.
        w.binary(&[1u8; 1_000]).await.unwrap();
        assert_eq!(started.elapsed(), Duration::ZERO);
        // Does not fit, and nobody reads it.
        assert_eq!(w.binary(&[2u8; 20_000]).await, Err(Closed::Stalled));
        assert_eq!(started.elapsed(), stall);
        assert_eq!(w.binary(b"x").await, Err(Closed::Gone));
        drop(client);
    }

    /// A frame that goes out slowly is not a stall, as long as it goes out within the time.
    #[tokio::test(start_paused = true)]
    async fn a_slow_reader_gets_its_frames() {
        let (mut w, mut client) = writer(1_024, Duration::from_secs(60));
        let reading = tokio::spawn(async move {
            let mut wire = BytesMut::new();
            loop {
                tokio::time::sleep(Duration::from_secs(1)).await;
                let mut chunk = [0u8; 1_024];
                match client.read(&mut chunk).await.unwrap() {
                    0 => return wire,
                    n => wire.extend_from_slice(&chunk[..n]),
                }
            }
        });
        let message = "សាក្សី".repeat(1_000);
        w.binary(message.as_bytes()).await.unwrap();
        w.close(None).await.unwrap();
        let frames = frames(reading.await.unwrap());
        let Some(Frame::Continuation(Item::FirstBinary(first))) = frames.first() else {
            panic!("the message comes first, in fragments");
        };
        assert_eq!(first.len(), FRAGMENT);
        assert!(matches!(frames.last(), Some(Frame::Close(None))));
    }

    /// A reader over what a client sent, delivered in chunks of `chunk` bytes (each read
    /// returns at most one chunk).
    fn reader(wire: &[u8], chunk: usize, max_message: usize) -> Reader {
        let chunks: Vec<std::io::Result<Bytes>> = wire
            .chunks(chunk)
            .map(|c| Ok(Bytes::copy_from_slice(c)))
            .collect();
        let stream = tokio_util::io::StreamReader::new(futures_util::stream::iter(chunks));
        Reader::new(Box::new(stream), BytesMut::new(), max_message)
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

    /// What a client sends faster than the server takes stays with the stream (the kernel's
    /// socket buffers), not in the reader: it holds at most the frame it is assembling and
    /// READ_AHEAD more.
    #[tokio::test]
    async fn the_reader_reads_little_ahead_of_the_frame_it_assembles() {
        let small = Bytes::from(vec![3u8; 1_000]);
        let large = Bytes::from("សាក្សី".repeat(3_000).into_bytes());
        let mut messages = vec![ws::Message::Binary(large.clone())];
        messages.extend((0..200).map(|_| ws::Message::Binary(small.clone())));
        let wire = client(messages);
        let (server, mut phone) = tokio::io::duplex(wire.len());
        phone.write_all(&wire).await.unwrap();
        drop(phone);
        let (_, mut r) = open(server, BytesMut::new(), 1 << 20, A_WHILE);
        assert_eq!(r.next().await.unwrap().unwrap(), Incoming::Binary(large));
        assert!(r.buf.len() <= READ_AHEAD, "{} bytes buffered", r.buf.len());
        for i in 0..200 {
            assert_eq!(
                r.next().await.unwrap().unwrap(),
                Incoming::Binary(small.clone()),
                "{i}"
            );
            assert!(r.buf.len() <= READ_AHEAD, "{} bytes buffered", r.buf.len());
        }
        assert!(r.next().await.is_none());
    }

    /// Bytes the client sent with its handshake come first.
    #[tokio::test]
    async fn bytes_read_with_the_handshake_come_first() {
        let wire = client(vec![
            ws::Message::Binary(Bytes::from_static("សាក្សី".as_bytes())),
            ws::Message::Binary(Bytes::from_static(b"second")),
        ]);
        let (server, mut phone) = tokio::io::duplex(1_024);
        phone.write_all(&wire[5..]).await.unwrap();
        drop(phone);
        let (_, mut r) = open(server, BytesMut::from(&wire[..5]), 1_024, A_WHILE);
        assert_eq!(
            r.next().await.unwrap().unwrap(),
            Incoming::Binary(Bytes::from_static("សាក្សី".as_bytes()))
        );
        assert_eq!(
            r.next().await.unwrap().unwrap(),
            Incoming::Binary(Bytes::from_static(b"second"))
        );
        assert!(r.next().await.is_none());
    }

    #[tokio::test]
    async fn too_long_frames_and_messages_are_refused() {
        let big = Bytes::from(vec![1u8; 2_000]);
        let mut r = reader(&client(vec![ws::Message::Binary(big.clone())]), 100, 1_000);
        assert!(matches!(r.next().await, Some(Err(ProtocolError::Overflow))));

        // A header claiming far more than the limit is refused before anything is buffered
        // for it.
        let mut claim = vec![0x82, 0x80 | 127];
        claim.extend_from_slice(&(1u64 << 40).to_be_bytes());
        claim.extend_from_slice(&[0; 4]);
        let mut r = reader(&claim, 100, 1_000);
        assert!(matches!(r.next().await, Some(Err(ProtocolError::Overflow))));
        assert!(r.buf.capacity() <= READ_CHUNK);

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
