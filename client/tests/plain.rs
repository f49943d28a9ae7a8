//! The plain (non-TLS) transport and the byte meter, against tiny in-process servers: an HTTP
//! responder and an automerge-repo peer that answers `join` with `peer`.

use std::sync::Arc;

use futures_util::{SinkExt as _, StreamExt as _};
use saksi_client::tokio_tungstenite::tungstenite::Message as WsMessage;
use saksi_client::{Client, Meter, SyncClient, tokio_tungstenite};
use saksi_shared::protocol::{Message, PROTOCOL_VERSION};
use saksi_shared::sync::Repo;
use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};
use tokio::net::TcpListener;

const RESPONSE: &[u8] = b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\nConnection: close\r\n\r\nok";

#[tokio::test]
async fn plain_http_request_and_meter() {
    let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let addr = listener.local_addr().expect("addr");
    let server = tokio::spawn(async move {
        let (mut tcp, _) = listener.accept().await.expect("accept");
        let mut head = Vec::new();
        let mut byte = [0u8; 1];
        while !head.ends_with(b"\r\n\r\n") {
            tcp.read_exact(&mut byte).await.expect("read");
            head.push(byte[0]);
        }
        tcp.write_all(RESPONSE).await.expect("write");
        String::from_utf8(head).expect("ascii")
    });
    let meter = Arc::new(Meter::default());
    let client = Client::plain(addr).with_meter(meter.clone());
    assert!(!client.is_tls());
    let res = client.get("/healthz", None).await.expect("request");
    assert_eq!((res.status, res.text().as_str()), (200, "ok"));
    let head = server.await.expect("server");
    assert!(head.starts_with("GET /healthz HTTP/1.1\r\n"), "{head}");
    assert!(head.contains(&format!("Host: 127.0.0.1:{}\r\n", addr.port())));
    assert_eq!(meter.sent(), head.len() as u64);
    assert_eq!(meter.received(), RESPONSE.len() as u64);
    assert!(client.raw_tls().await.is_err(), "no TLS on a plain client");
}

#[tokio::test]
async fn plain_websocket_handshake_with_a_peer() {
    let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let addr = listener.local_addr().expect("addr");
    let server = tokio::spawn(async move {
        let (tcp, _) = listener.accept().await.expect("accept");
        let mut ws = tokio_tungstenite::accept_async(tcp).await.expect("upgrade");
        let frame = loop {
            match ws.next().await.expect("a frame").expect("readable") {
                WsMessage::Binary(b) => break b.to_vec(),
                _ => continue,
            }
        };
        let Message::Join { sender_id, .. } = Message::decode(&frame).expect("cbor") else {
            panic!("expected join");
        };
        let peer = Message::Peer {
            sender_id: "peer-server".into(),
            target_id: sender_id,
            selected_protocol_version: PROTOCOL_VERSION.into(),
            metadata: None,
        };
        ws.send(WsMessage::Binary(peer.encode().into()))
            .await
            .expect("send");
        // Stay open until the client closes.
        while let Some(Ok(_)) = ws.next().await {}
        frame.len()
    });
    let meter = Arc::new(Meter::default());
    let client = Client::plain(addr).with_meter(meter.clone());
    let socket = client.open_socket("/", &[]).await.expect("ws://");
    let sync = SyncClient::start(socket, Repo::new("phone-ws".into(), [7; 16]))
        .await
        .expect("join, peer");
    assert!(sync.repo.is_connected());
    assert!(matches!(
        sync.events.as_slice(),
        [saksi_shared::sync::Event::Connected { server }] if server == "peer-server"
    ));
    sync.disconnect().await;
    let join_len = server.await.expect("server") as u64;
    // The upgrade request and the masked join frame went out; the upgrade answer and `peer`
    // came back.
    assert!(meter.sent() > join_len + 100, "sent {}", meter.sent());
    assert!(meter.received() > 100, "received {}", meter.received());
}
