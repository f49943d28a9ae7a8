//! # saksi-client
//!
//! A native Saksi client on top of [`saksi_shared`]: HTTPS login and API calls, and the
//! automerge-repo sync protocol over a TLS WebSocket, driving a [`saksi_shared::sync::Repo`].
//! The integration tests, the crash tests and the load generator use it; so can scripts.
//!
//! TLS is rustls with the ring provider; the server's certificate is trusted explicitly (the
//! local CA `tls/ca.pem` from the server's data directory, or a CA bundle).
//! [`Client::plain`] speaks plain HTTP and WebSocket instead, for a server on loopback behind a
//! TLS proxy (`tls = "off"`) or another automerge-repo server (the benchmarks' peer server).
//! A [`Meter`] counts the bytes a client's connections send and receive on the wire.

use std::net::SocketAddr;
use std::pin::Pin;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::task::{Context, Poll};
use std::time::Duration;

use futures_util::{SinkExt as _, StreamExt as _};
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, ServerName};
use saksi_shared::record::Editor;
use saksi_shared::sync::{Event, Repo, RepoError};
use saksi_shared::{Role, Timestamp};
use serde::Deserialize;
use serde::de::DeserializeOwned;
use tokio::io::{AsyncRead, AsyncReadExt as _, AsyncWrite, AsyncWriteExt as _, ReadBuf};
use tokio::net::TcpStream;
pub use tokio_rustls;
use tokio_rustls::TlsConnector;
use tokio_rustls::client::TlsStream;
pub use tokio_tungstenite;
use tokio_tungstenite::WebSocketStream;
use tokio_tungstenite::tungstenite::client::IntoClientRequest as _;
use tokio_tungstenite::tungstenite::protocol::WebSocketConfig;
use tokio_tungstenite::tungstenite::{self, Message as WsMessage};

/// Why a client call failed.
#[derive(Debug, thiserror::Error)]
pub enum ClientError {
    #[error("network: {0}")]
    Io(#[from] std::io::Error),
    #[error("TLS: {0}")]
    Tls(String),
    #[error("HTTP {status}: {body}")]
    Http { status: u16, body: String },
    #[error("malformed HTTP response: {0}")]
    BadResponse(String),
    #[error("JSON: {0}")]
    Json(#[from] serde_json::Error),
    #[error("WebSocket: {0}")]
    WebSocket(#[from] Box<tungstenite::Error>),
    #[error("sync: {0}")]
    Sync(#[from] RepoError),
    #[error("the server closed the connection")]
    Closed,
    #[error("timed out waiting for {0}")]
    Timeout(&'static str),
}

impl From<tungstenite::Error> for ClientError {
    fn from(e: tungstenite::Error) -> Self {
        ClientError::WebSocket(Box::new(e))
    }
}

/// How to reach and trust a server.
#[derive(Clone)]
pub struct Client {
    addr: SocketAddr,
    host: String,
    /// `None`: plain HTTP and WebSocket.
    tls: Option<Arc<rustls::ClientConfig>>,
    meter: Option<Arc<Meter>>,
}

impl std::fmt::Debug for Client {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Client")
            .field("addr", &self.addr)
            .field("host", &self.host)
            .field("tls", &self.tls.is_some())
            .finish()
    }
}

/// Bytes sent and received on the wire (TCP payload: TLS records, HTTP and WebSocket framing
/// included) by every connection of the clients sharing it.
#[derive(Debug, Default)]
pub struct Meter {
    sent: AtomicU64,
    received: AtomicU64,
}

impl Meter {
    pub fn sent(&self) -> u64 {
        self.sent.load(Ordering::Relaxed)
    }

    pub fn received(&self) -> u64 {
        self.received.load(Ordering::Relaxed)
    }
}

/// A TCP stream counting its bytes into a [`Meter`] (if there is one).
#[derive(Debug)]
pub struct Metered {
    tcp: TcpStream,
    meter: Option<Arc<Meter>>,
}

impl AsyncRead for Metered {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<std::io::Result<()>> {
        let before = buf.filled().len();
        let result = Pin::new(&mut self.tcp).poll_read(cx, buf);
        if let Some(meter) = &self.meter {
            let read = buf.filled().len() - before;
            meter.received.fetch_add(read as u64, Ordering::Relaxed);
        }
        result
    }
}

impl AsyncWrite for Metered {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<std::io::Result<usize>> {
        let result = Pin::new(&mut self.tcp).poll_write(cx, buf);
        if let (Some(meter), Poll::Ready(Ok(n))) = (&self.meter, &result) {
            meter.sent.fetch_add(*n as u64, Ordering::Relaxed);
        }
        result
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        Pin::new(&mut self.tcp).poll_flush(cx)
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        Pin::new(&mut self.tcp).poll_shutdown(cx)
    }
}

/// A connection to the server: TLS or plain, metered either way.
#[derive(Debug)]
pub enum Stream {
    Tls(Box<TlsStream<Metered>>),
    Plain(Metered),
}

impl AsyncRead for Stream {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<std::io::Result<()>> {
        match self.get_mut() {
            Stream::Tls(s) => Pin::new(s.as_mut()).poll_read(cx, buf),
            Stream::Plain(s) => Pin::new(s).poll_read(cx, buf),
        }
    }
}

impl AsyncWrite for Stream {
    fn poll_write(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<std::io::Result<usize>> {
        match self.get_mut() {
            Stream::Tls(s) => Pin::new(s.as_mut()).poll_write(cx, buf),
            Stream::Plain(s) => Pin::new(s).poll_write(cx, buf),
        }
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        match self.get_mut() {
            Stream::Tls(s) => Pin::new(s.as_mut()).poll_flush(cx),
            Stream::Plain(s) => Pin::new(s).poll_flush(cx),
        }
    }

    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        match self.get_mut() {
            Stream::Tls(s) => Pin::new(s.as_mut()).poll_shutdown(cx),
            Stream::Plain(s) => Pin::new(s).poll_shutdown(cx),
        }
    }
}

/// A parsed HTTP response.
#[derive(Debug, Clone)]
pub struct Response {
    pub status: u16,
    pub headers: Vec<(String, String)>,
    pub body: Vec<u8>,
}

impl Response {
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(k, _)| k.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }

    pub fn json<T: DeserializeOwned>(&self) -> Result<T, ClientError> {
        Ok(serde_json::from_slice(&self.body)?)
    }

    pub fn text(&self) -> String {
        String::from_utf8_lossy(&self.body).into_owned()
    }
}

impl Client {
    /// A client for the server at `addr`, presenting itself as `host` (the certificate's name),
    /// trusting the certificates in `ca_pem`.
    pub fn new(addr: SocketAddr, host: &str, ca_pem: &[u8]) -> Result<Client, ClientError> {
        let mut roots = rustls::RootCertStore::empty();
        for cert in CertificateDer::pem_slice_iter(ca_pem) {
            let cert = cert.map_err(|e| ClientError::Tls(e.to_string()))?;
            roots
                .add(cert)
                .map_err(|e| ClientError::Tls(e.to_string()))?;
        }
        let config = rustls::ClientConfig::builder_with_provider(Arc::new(
            rustls::crypto::ring::default_provider(),
        ))
        .with_safe_default_protocol_versions()
        .map_err(|e| ClientError::Tls(e.to_string()))?
        .with_root_certificates(roots)
        .with_no_client_auth();
        Ok(Client {
            addr,
            host: host.to_owned(),
            tls: Some(Arc::new(config)),
            meter: None,
        })
    }

    /// A client speaking plain HTTP and WebSocket (`ws://`) to the server at `addr`.
    pub fn plain(addr: SocketAddr) -> Client {
        Client {
            addr,
            host: addr.ip().to_string(),
            tls: None,
            meter: None,
        }
    }

    /// Counts the bytes of every later connection of this client (and its clones) in `meter`.
    pub fn with_meter(mut self, meter: Arc<Meter>) -> Client {
        self.meter = Some(meter);
        self
    }

    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    pub fn is_tls(&self) -> bool {
        self.tls.is_some()
    }

    /// A raw TLS connection to the server (for tests that write bytes by hand).
    pub async fn raw_tls(&self) -> Result<TlsStream<TcpStream>, ClientError> {
        let tls = self
            .tls
            .clone()
            .ok_or_else(|| ClientError::Tls("this client speaks plain TCP".into()))?;
        let tcp = TcpStream::connect(self.addr).await?;
        tcp.set_nodelay(true)?;
        let name =
            ServerName::try_from(self.host.clone()).map_err(|e| ClientError::Tls(e.to_string()))?;
        Ok(TlsConnector::from(tls).connect(name, tcp).await?)
    }

    /// A new connection to the server, TLS or plain as this client is configured.
    pub async fn connect(&self) -> Result<Stream, ClientError> {
        let tcp = TcpStream::connect(self.addr).await?;
        tcp.set_nodelay(true)?;
        let metered = Metered {
            tcp,
            meter: self.meter.clone(),
        };
        let Some(tls) = &self.tls else {
            return Ok(Stream::Plain(metered));
        };
        let name =
            ServerName::try_from(self.host.clone()).map_err(|e| ClientError::Tls(e.to_string()))?;
        let stream = TlsConnector::from(tls.clone())
            .connect(name, metered)
            .await?;
        Ok(Stream::Tls(Box::new(stream)))
    }

    /// Sends one HTTP/1.1 request (`Connection: close`) and reads the whole response.
    pub async fn request(
        &self,
        method: &str,
        path: &str,
        headers: &[(&str, &str)],
        body: Option<&[u8]>,
    ) -> Result<Response, ClientError> {
        let mut stream = self.connect().await?;
        let mut head = format!(
            "{method} {path} HTTP/1.1\r\nHost: {}:{}\r\nConnection: close\r\n",
            self.host,
            self.addr.port()
        );
        for (k, v) in headers {
            head.push_str(&format!("{k}: {v}\r\n"));
        }
        if let Some(b) = body {
            head.push_str(&format!("Content-Length: {}\r\n", b.len()));
        }
        head.push_str("\r\n");
        stream.write_all(head.as_bytes()).await?;
        if let Some(b) = body {
            stream.write_all(b).await?;
        }
        stream.flush().await?;
        let mut raw = Vec::new();
        match stream.read_to_end(&mut raw).await {
            Ok(_) => {}
            // Servers may close without TLS close_notify after Connection: close.
            Err(e) if e.kind() == std::io::ErrorKind::UnexpectedEof && !raw.is_empty() => {}
            Err(e) => return Err(e.into()),
        }
        parse_response(&raw)
    }

    /// POSTs JSON; returns the response whatever its status.
    pub async fn post_json(
        &self,
        path: &str,
        token: Option<&str>,
        body: &serde_json::Value,
    ) -> Result<Response, ClientError> {
        let auth = token.map(|t| format!("Bearer {t}"));
        let mut headers = vec![("Content-Type", "application/json")];
        if let Some(a) = &auth {
            headers.push(("Authorization", a));
        }
        self.request("POST", path, &headers, Some(body.to_string().as_bytes()))
            .await
    }

    /// GETs a path with an optional bearer token.
    pub async fn get(&self, path: &str, token: Option<&str>) -> Result<Response, ClientError> {
        let auth = token.map(|t| format!("Bearer {t}"));
        let headers: Vec<(&str, &str)> = auth
            .as_deref()
            .map(|a| vec![("Authorization", a)])
            .unwrap_or_default();
        self.request("GET", path, &headers, None).await
    }

    /// Signs in and registers a device.
    pub async fn login(
        &self,
        username: &str,
        password: &str,
        device_name: &str,
    ) -> Result<Session, ClientError> {
        let res = self
            .post_json(
                "/api/login",
                None,
                &serde_json::json!({
                    "username": username,
                    "password": password,
                    "device_name": device_name,
                }),
            )
            .await?;
        if res.status != 200 {
            return Err(ClientError::Http {
                status: res.status,
                body: res.text(),
            });
        }
        let login: LoginResponse = res.json()?;
        Ok(Session {
            client: self.clone(),
            token: login.token,
            device_id: login.device_id,
            username: login.user.username,
            role: login.user.role,
            expires_at: login.expires_at,
        })
    }

    /// Opens a sync WebSocket with the given extra headers and query (for tests of the
    /// authentication variants).
    pub async fn open_socket(
        &self,
        path_and_query: &str,
        headers: &[(&str, &str)],
    ) -> Result<SyncSocket, ClientError> {
        let stream = self.connect().await?;
        let scheme = if self.tls.is_some() { "wss" } else { "ws" };
        let url = format!(
            "{scheme}://{}:{}{path_and_query}",
            self.host,
            self.addr.port()
        );
        let mut request = url.into_client_request()?;
        for (k, v) in headers {
            request.headers_mut().insert(
                http::HeaderName::from_bytes(k.as_bytes())
                    .map_err(|e| ClientError::BadResponse(e.to_string()))?,
                http::HeaderValue::from_str(v)
                    .map_err(|e| ClientError::BadResponse(e.to_string()))?,
            );
        }
        let config = WebSocketConfig::default()
            .max_message_size(Some(64 << 20))
            .max_frame_size(Some(64 << 20));
        let (ws, _) =
            tokio_tungstenite::client_async_with_config(request, stream, Some(config)).await?;
        Ok(SyncSocket { ws })
    }
}

fn parse_response(raw: &[u8]) -> Result<Response, ClientError> {
    let split = raw
        .windows(4)
        .position(|w| w == b"\r\n\r\n")
        .ok_or_else(|| ClientError::BadResponse("no end of headers".into()))?;
    let head = std::str::from_utf8(&raw[..split])
        .map_err(|_| ClientError::BadResponse("headers are not UTF-8".into()))?;
    let mut lines = head.split("\r\n");
    let status_line = lines.next().unwrap_or_default();
    let status: u16 = status_line
        .split(' ')
        .nth(1)
        .and_then(|s| s.parse().ok())
        .ok_or_else(|| ClientError::BadResponse(format!("status line `{status_line}`")))?;
    let headers: Vec<(String, String)> = lines
        .filter_map(|l| l.split_once(':'))
        .map(|(k, v)| (k.trim().to_owned(), v.trim().to_owned()))
        .collect();
    let mut body = raw[split + 4..].to_vec();
    let chunked = headers.iter().any(|(k, v)| {
        k.eq_ignore_ascii_case("transfer-encoding") && v.eq_ignore_ascii_case("chunked")
    });
    if chunked {
        body = dechunk(&body)?;
    }
    Ok(Response {
        status,
        headers,
        body,
    })
}

fn dechunk(mut data: &[u8]) -> Result<Vec<u8>, ClientError> {
    let mut out = Vec::new();
    loop {
        let line_end = data
            .windows(2)
            .position(|w| w == b"\r\n")
            .ok_or_else(|| ClientError::BadResponse("bad chunk".into()))?;
        let size_text = std::str::from_utf8(&data[..line_end])
            .map_err(|_| ClientError::BadResponse("bad chunk size".into()))?;
        let size = usize::from_str_radix(size_text.split(';').next().unwrap_or("").trim(), 16)
            .map_err(|_| ClientError::BadResponse("bad chunk size".into()))?;
        data = &data[line_end + 2..];
        if size == 0 {
            return Ok(out);
        }
        let chunk = data
            .get(..size)
            .ok_or_else(|| ClientError::BadResponse("truncated chunk".into()))?;
        out.extend_from_slice(chunk);
        data = data.get(size + 2..).unwrap_or_default();
    }
}

#[derive(Deserialize)]
struct LoginResponse {
    token: String,
    device_id: String,
    user: LoginUser,
    expires_at: Timestamp,
}

#[derive(Deserialize)]
struct LoginUser {
    username: String,
    role: Role,
}

/// A signed-in device.
#[derive(Clone)]
pub struct Session {
    pub client: Client,
    pub token: String,
    pub device_id: String,
    pub username: String,
    pub role: Role,
    pub expires_at: Timestamp,
}

impl std::fmt::Debug for Session {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Session")
            .field("device_id", &self.device_id)
            .field("username", &self.username)
            .field("role", &self.role)
            .finish()
    }
}

/// A case as listed by `/api/records`.
#[derive(Debug, Clone, Deserialize)]
pub struct CaseInfo {
    pub id: saksi_shared::DocumentId,
    pub name: String,
}

/// A record as listed by `/api/records`.
#[derive(Debug, Clone, Deserialize)]
pub struct RecordInfo {
    pub id: saksi_shared::DocumentId,
    pub kind: String,
    pub case: saksi_shared::DocumentId,
    pub title: String,
    pub status: String,
    pub created_by: String,
    pub has_conflicts: bool,
    pub updated_at: Timestamp,
}

/// What `/api/records` returns.
#[derive(Debug, Clone, Deserialize)]
pub struct Listing {
    pub cases: Vec<CaseInfo>,
    pub records: Vec<RecordInfo>,
    /// Records this user could read that were destroyed: a device holding one deletes it.
    #[serde(default)]
    pub withdrawn: Vec<saksi_shared::DocumentId>,
}

impl Session {
    /// The editor identity for local edits.
    pub fn editor(&self) -> Editor {
        Editor::new(self.username.clone(), self.device_id.clone(), self.role)
    }

    /// The cases and records this device may sync.
    pub async fn records(&self) -> Result<Listing, ClientError> {
        let res = self.client.get("/api/records", Some(&self.token)).await?;
        if res.status != 200 {
            return Err(ClientError::Http {
                status: res.status,
                body: res.text(),
            });
        }
        res.json()
    }

    /// Discards a draft (`POST /api/records/{id}/discard`): the answer's status (204 done, 403
    /// not allowed, 404 unknown or not readable).
    pub async fn discard(&self, id: &saksi_shared::DocumentId) -> Result<Response, ClientError> {
        let auth = format!("Bearer {}", self.token);
        self.client
            .request(
                "POST",
                &format!("/api/records/{id}/discard"),
                &[("Authorization", &auth)],
                None,
            )
            .await
    }

    /// Opens the sync WebSocket with the bearer token.
    pub async fn socket(&self) -> Result<SyncSocket, ClientError> {
        let auth = format!("Bearer {}", self.token);
        self.client
            .open_socket("/sync", &[("Authorization", &auth)])
            .await
    }

    /// Connects `repo` to the server: opens the socket and completes the handshake.
    pub async fn sync(&self, repo: Repo) -> Result<SyncClient, ClientError> {
        self.try_sync(repo).await.map_err(|(e, _)| e)
    }

    /// Like [`Session::sync`], but gives the repo back if the connection fails (a phone keeps
    /// its documents when the server is unreachable).
    pub async fn try_sync(&self, mut repo: Repo) -> Result<SyncClient, (ClientError, Repo)> {
        let socket = match self.socket().await {
            Ok(s) => s,
            Err(e) => return Err((e, repo)),
        };
        let mut socket = socket;
        if let Err(e) = SyncClient::handshake(&mut socket, &mut repo).await {
            repo.disconnected();
            return Err((e, repo));
        }
        Ok(SyncClient {
            repo,
            socket,
            events: Vec::new(),
        })
    }
}

/// Where an upload stands after `POST /api/files`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UploadStart {
    /// The upload's address (or the file's, if the server has it already).
    pub location: String,
    /// Bytes the server has: the file's size if it has the file.
    pub offset: u64,
}

/// What an upload took (for tests and benchmarks).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct UploadReport {
    /// Bytes of the file sent in PATCH bodies (more than its size if a request broke and a
    /// part was sent again).
    pub bytes_sent: u64,
    pub requests: u32,
    /// Requests that failed and were resumed.
    pub resumed: u32,
}

/// The tus headers of every upload request.
const TUS: (&str, &str) = ("Tus-Resumable", "1.0.0");

impl Session {
    fn bearer(&self) -> String {
        format!("Bearer {}", self.token)
    }

    /// `POST /api/files`: starts or finds the upload of the file with this SHA-256 and size.
    /// A refusal comes back as [`ClientError::Http`] with its JSON body.
    pub async fn upload_start(
        &self,
        sha256: &str,
        length: u64,
    ) -> Result<UploadStart, ClientError> {
        use base64::Engine as _;
        let auth = self.bearer();
        let length_text = length.to_string();
        let metadata = format!(
            "sha256 {}",
            base64::engine::general_purpose::STANDARD.encode(sha256)
        );
        let res = self
            .client
            .request(
                "POST",
                "/api/files",
                &[
                    TUS,
                    ("Authorization", &auth),
                    ("Upload-Length", &length_text),
                    ("Upload-Metadata", &metadata),
                ],
                Some(b""),
            )
            .await?;
        if res.status != 201 {
            return Err(ClientError::Http {
                status: res.status,
                body: res.text(),
            });
        }
        let location = res
            .header("Location")
            .ok_or_else(|| ClientError::BadResponse("no Location".into()))?
            .to_owned();
        let offset = res
            .header("Upload-Offset")
            .and_then(|v| v.parse().ok())
            .ok_or_else(|| ClientError::BadResponse("no Upload-Offset".into()))?;
        Ok(UploadStart { location, offset })
    }

    /// `HEAD` of an upload: the offset to continue from.
    pub async fn upload_offset(&self, location: &str) -> Result<u64, ClientError> {
        let auth = self.bearer();
        let res = self
            .client
            .request("HEAD", location, &[TUS, ("Authorization", &auth)], None)
            .await?;
        if res.status != 200 {
            return Err(ClientError::Http {
                status: res.status,
                body: res.text(),
            });
        }
        res.header("Upload-Offset")
            .and_then(|v| v.parse().ok())
            .ok_or_else(|| ClientError::BadResponse("no Upload-Offset".into()))
    }

    /// One `PATCH` of `bytes` at `offset`; the response whatever its status.
    pub async fn upload_patch(
        &self,
        location: &str,
        offset: u64,
        bytes: &[u8],
    ) -> Result<Response, ClientError> {
        let auth = self.bearer();
        let offset = offset.to_string();
        self.client
            .request(
                "PATCH",
                location,
                &[
                    TUS,
                    ("Authorization", &auth),
                    ("Content-Type", "application/offset+octet-stream"),
                    ("Upload-Offset", &offset),
                ],
                Some(bytes),
            )
            .await
    }

    /// Uploads `bytes` (the file a record names with this SHA-256) in requests of `chunk`
    /// bytes, continuing from what the server has after a failed request (at most `retries`
    /// of them in a row).
    pub async fn upload(
        &self,
        sha256: &str,
        bytes: &[u8],
        chunk: usize,
        retries: u32,
    ) -> Result<UploadReport, ClientError> {
        let mut report = UploadReport::default();
        let start = self.upload_start(sha256, bytes.len() as u64).await?;
        report.requests += 1;
        let mut offset = start.offset;
        let mut failures = 0;
        while offset < bytes.len() as u64 {
            let end = (offset as usize + chunk).min(bytes.len());
            let part = &bytes[offset as usize..end];
            report.requests += 1;
            report.bytes_sent += part.len() as u64;
            match self.upload_patch(&start.location, offset, part).await {
                Ok(res) if res.status == 204 => {
                    failures = 0;
                    offset = res
                        .header("Upload-Offset")
                        .and_then(|v| v.parse().ok())
                        .ok_or_else(|| ClientError::BadResponse("no Upload-Offset".into()))?;
                }
                Ok(res) if !matches!(res.status, 408 | 409 | 500..=599) => {
                    return Err(ClientError::Http {
                        status: res.status,
                        body: res.text(),
                    });
                }
                _ => {
                    failures += 1;
                    report.resumed += 1;
                    if failures > retries {
                        return Err(ClientError::Timeout("an upload that keeps failing"));
                    }
                    offset = self.upload_offset(&start.location).await?;
                }
            }
        }
        Ok(report)
    }

    /// `GET /api/files/{sha256}`: the file, or the refusal.
    pub async fn download(&self, sha256: &str) -> Result<Response, ClientError> {
        self.client
            .get(&format!("/api/files/{sha256}"), Some(&self.token))
            .await
    }
}

/// One sync WebSocket.
#[derive(Debug)]
pub struct SyncSocket {
    ws: WebSocketStream<Stream>,
}

impl SyncSocket {
    pub async fn send(&mut self, frame: Vec<u8>) -> Result<(), ClientError> {
        self.ws.send(WsMessage::Binary(frame.into())).await?;
        Ok(())
    }

    pub async fn send_text(&mut self, text: &str) -> Result<(), ClientError> {
        self.ws.send(WsMessage::Text(text.into())).await?;
        Ok(())
    }

    /// The next binary frame; `None` once the server has closed.
    pub async fn recv(&mut self) -> Result<Option<Vec<u8>>, ClientError> {
        loop {
            match self.ws.next().await {
                None => return Ok(None),
                Some(Ok(WsMessage::Binary(b))) => return Ok(Some(b.to_vec())),
                Some(Ok(WsMessage::Close(_))) => return Ok(None),
                Some(Ok(_)) => continue,
                Some(Err(tungstenite::Error::ConnectionClosed))
                | Some(Err(tungstenite::Error::AlreadyClosed)) => return Ok(None),
                Some(Err(tungstenite::Error::Protocol(
                    tungstenite::error::ProtocolError::ResetWithoutClosingHandshake,
                ))) => return Ok(None),
                Some(Err(e)) => return Err(e.into()),
            }
        }
    }

    /// Like [`SyncSocket::recv`] with a deadline.
    pub async fn recv_timeout(
        &mut self,
        timeout: Duration,
    ) -> Result<Option<Vec<u8>>, ClientError> {
        tokio::time::timeout(timeout, self.recv())
            .await
            .map_err(|_| ClientError::Timeout("a frame"))?
    }

    pub async fn close(mut self) {
        let _ = self.ws.close(None).await;
    }

    /// The WebSocket itself, for driving it with another automerge-repo implementation.
    pub fn into_inner(self) -> WebSocketStream<Stream> {
        self.ws
    }
}

/// A [`Repo`] synced over a [`SyncSocket`].
#[derive(Debug)]
pub struct SyncClient {
    pub repo: Repo,
    pub socket: SyncSocket,
    /// Every event seen so far.
    pub events: Vec<Event>,
}

impl SyncClient {
    /// Sends `join` and waits for `peer`.
    pub async fn start(mut socket: SyncSocket, mut repo: Repo) -> Result<SyncClient, ClientError> {
        let events = Self::handshake(&mut socket, &mut repo).await?;
        Ok(SyncClient {
            repo,
            socket,
            events,
        })
    }

    async fn handshake(
        socket: &mut SyncSocket,
        repo: &mut Repo,
    ) -> Result<Vec<Event>, ClientError> {
        socket.send(repo.connect()).await?;
        let mut events = Vec::new();
        while !repo.is_connected() {
            let frame = socket
                .recv_timeout(Duration::from_secs(30))
                .await?
                .ok_or(ClientError::Closed)?;
            events.extend(repo.receive(&frame)?);
        }
        Ok(events)
    }

    /// Sends whatever the repo has to send.
    pub async fn flush(&mut self) -> Result<(), ClientError> {
        for frame in self.repo.take_outgoing() {
            self.socket.send(frame).await?;
        }
        Ok(())
    }

    /// Syncs until the record `id` has arrived here with something in it (see
    /// [`SyncClient::sync_until`]).
    pub async fn sync_until_received(
        &mut self,
        timeout: Duration,
        id: &saksi_shared::DocumentId,
    ) -> Result<(), ClientError> {
        self.sync_until(timeout, |repo, _| {
            repo.record(id).is_some_and(|r| !r.is_empty())
        })
        .await
    }

    /// Exchanges messages until `done(repo, events)` holds, or fails after `timeout`.
    pub async fn sync_until(
        &mut self,
        timeout: Duration,
        mut done: impl FnMut(&Repo, &[Event]) -> bool,
    ) -> Result<(), ClientError> {
        let deadline = tokio::time::Instant::now() + timeout;
        loop {
            self.flush().await?;
            if done(&self.repo, &self.events) {
                return Ok(());
            }
            let left = deadline.saturating_duration_since(tokio::time::Instant::now());
            if left.is_zero() {
                return Err(ClientError::Timeout("the sync condition"));
            }
            match tokio::time::timeout(left, self.socket.recv()).await {
                Err(_) => return Err(ClientError::Timeout("the sync condition")),
                Ok(Ok(Some(frame))) => {
                    let events = self.repo.receive(&frame)?;
                    self.events.extend(events);
                }
                Ok(Ok(None)) => {
                    self.repo.disconnected();
                    return Err(ClientError::Closed);
                }
                Ok(Err(e)) => return Err(e),
            }
        }
    }

    /// Syncs until the server is known to hold every local change of every document.
    pub async fn sync_all(&mut self, timeout: Duration) -> Result<(), ClientError> {
        self.sync_until(timeout, |repo, _| {
            repo.documents()
                .all(|id| repo.is_synced(id) || repo.record(id).is_none_or(|r| r.is_empty()))
        })
        .await
    }

    /// Closes the socket; the repo keeps its documents for the next connection.
    pub async fn disconnect(mut self) -> Repo {
        self.repo.disconnected();
        self.socket.close().await;
        self.repo
    }
}
