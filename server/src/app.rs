//! The application: shared state, start-up, and the HTTP server.
//!
//! [`Application::build`] opens storage, prepares TLS, creates the first admin if the database
//! is empty, and binds the listener (port 0 works: tests read [`Application::port`]).
//! [`Application::run_until_stopped`] serves until the process is told to stop.

use std::net::{SocketAddr, TcpListener};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use actix_http::HttpService;
use actix_service::{IntoServiceFactory as _, ServiceFactoryExt as _, map_config};
use actix_web::dev::AppConfig;
use actix_web::{App, web};
use saksi_shared::policy::Principal;
use saksi_shared::{Role, Timestamp};

use crate::accounts::{Passwords, Throttle, Tickets};
use crate::clock::{Clock, SystemClock};
use crate::config::Config;
use crate::db::Db;
use crate::errors::Chain;
use crate::storage::sqlite::SqliteStorage;
use crate::storage::{AuditAction, AuditEvent, Storage, StorageError, User};
use crate::sync::{Bindings, Connections, Documents};

/// Counters for operations (exposed on `/metrics`). Only counts, never contents.
#[derive(Debug, Default)]
pub struct Metrics {
    pub connections_open: AtomicU64,
    pub connections_total: AtomicU64,
    pub messages_received: AtomicU64,
    pub messages_sent: AtomicU64,
    pub bytes_received: AtomicU64,
    pub bytes_sent: AtomicU64,
    pub changes_stored: AtomicU64,
    pub changes_refused: AtomicU64,
    pub logins_failed: AtomicU64,
}

impl Metrics {
    pub fn connection_opened(&self) {
        self.connections_open.fetch_add(1, Ordering::Relaxed);
        self.connections_total.fetch_add(1, Ordering::Relaxed);
    }
    pub fn connection_closed(&self) {
        self.connections_open.fetch_sub(1, Ordering::Relaxed);
    }
    pub fn message_received(&self, bytes: usize) {
        self.messages_received.fetch_add(1, Ordering::Relaxed);
        self.bytes_received
            .fetch_add(bytes as u64, Ordering::Relaxed);
    }
    pub fn message_sent(&self, bytes: usize) {
        self.messages_sent.fetch_add(1, Ordering::Relaxed);
        self.bytes_sent.fetch_add(bytes as u64, Ordering::Relaxed);
    }
    pub fn changes_stored(&self, n: usize) {
        self.changes_stored.fetch_add(n as u64, Ordering::Relaxed);
    }
}

/// Everything request handlers and document tasks share.
#[derive(Debug)]
pub struct AppState {
    pub config: Config,
    pub db: Db,
    pub sqlite: Arc<SqliteStorage>,
    pub clock: Arc<dyn Clock>,
    pub passwords: Passwords,
    pub throttle: Throttle,
    pub tickets: Tickets,
    pub documents: Documents,
    pub connections: Connections,
    pub bindings: Bindings,
    pub metrics: Metrics,
    /// This server's peer id on the sync protocol (stable across restarts).
    pub peer_id: saksi_shared::protocol::PeerId,
    /// The runtime document tasks run on (multi-threaded).
    pub runtime: tokio::runtime::Handle,
    /// With `tls = "local_ca"`: the CA phones install (served at `/ca.pem`, `/ca.crt`).
    pub trust: Option<Arc<crate::tls::local_ca::Trust>>,
    /// The organisation's time zone (`time_zone`), for the console's times.
    pub time_zone: jiff::tz::TimeZone,
    /// The bytes of attached files.
    pub blobs: Arc<dyn crate::files::BlobStore>,
    /// Uploads a request is writing now.
    pub active_uploads: crate::http::files::ActiveUploads,
    /// Records destroyed (tombstoned): refused for ever, to every client.
    pub withdrawn: std::sync::RwLock<std::collections::HashSet<saksi_shared::DocumentId>>,
    /// Held while a record is destroyed, and while interrupted purges are completed: one at a
    /// time, so that neither finishes the other's work (and audits it twice).
    pub purging: tokio::sync::Mutex<()>,
}

impl AppState {
    /// Whether record `id` was destroyed (it is refused for ever).
    pub fn is_withdrawn(&self, id: &saksi_shared::DocumentId) -> bool {
        self.withdrawn.read().expect("withdrawn lock").contains(id)
    }

    /// Appends to the audit log; a failure is logged (the action itself already happened).
    pub async fn audit(&self, event: AuditEvent) {
        let action = event.action.clone();
        if let Err(e) = self.db.run(move |s| s.append_audit(event)).await {
            tracing::error!(action = %action, error = %Chain(&e), "audit entry not written");
        }
    }

    pub fn now(&self) -> Timestamp {
        self.clock.now()
    }
}

/// What a user may access, as the sync policy needs it.
pub async fn principal(
    state: &AppState,
    user: &User,
    device: &str,
) -> Result<Principal, StorageError> {
    let (id, reviews) = (user.id, user.role.reviews());
    let cases = state
        .db
        .run(move |s| {
            if reviews {
                Ok(s.cases()?.into_iter().map(|c| c.id).collect())
            } else {
                s.cases_of(id)
            }
        })
        .await?;
    Ok(Principal {
        who: saksi_shared::Who::new(user.username.clone(), device),
        role: user.role,
        cases: cases.into_iter().collect(),
    })
}

/// Why the server could not start. Each message says what failed; the cause is its `source()`
/// (the binary prints the whole chain once).
#[derive(Debug, thiserror::Error)]
pub enum StartError {
    #[error("cannot create data directory {path}")]
    DataDir {
        path: std::path::PathBuf,
        source: std::io::Error,
    },
    #[error("storage")]
    Storage(#[from] StorageError),
    #[error("TLS")]
    Tls(#[from] crate::tls::TlsError),
    #[error("cannot listen on {addr}")]
    Bind {
        addr: SocketAddr,
        source: std::io::Error,
    },
    #[error("must be started inside a tokio runtime")]
    NoRuntime,
    #[error(transparent)]
    Lock(#[from] crate::datadir::LockError),
    #[error("files")]
    Files(#[from] crate::files::BlobError),
    #[error("tombstones")]
    Purge(#[from] crate::purge::PurgeError),
}

/// What the operator needs to know after start-up.
#[derive(Debug, Clone)]
pub struct StartReport {
    pub url: String,
    pub tls_fingerprint: Option<String>,
    pub certificate_generated: bool,
    /// With `tls = "local_ca"`: the CA, and on first start its key's passphrase (shown once).
    pub trust: Option<crate::tls::local_ca::Trust>,
    pub new_ca_passphrase: Option<String>,
    /// The first admin's one-time password, if the admin was created just now.
    pub first_admin_password: Option<String>,
}

/// A built, bound, not yet running server.
pub struct Application {
    state: Arc<AppState>,
    server: actix_web::dev::Server,
    addr: SocketAddr,
    report: StartReport,
    lock: DirLock,
}

/// The data directory's lock, held until the server has stopped.
type DirLock = Arc<std::sync::Mutex<Option<crate::datadir::DataDirLock>>>;

/// The data directory of a local CA made by a start that has not reported its passphrase yet:
/// dropped while still set (the start failed), the CA is removed, so that no CA stays whose
/// passphrase nobody saw.
struct UnseenCa(Option<std::path::PathBuf>);

impl Drop for UnseenCa {
    fn drop(&mut self) {
        if let Some(data_dir) = self.0.take() {
            tracing::warn!("the start failed: the local CA made by it is removed");
            crate::tls::local_ca::forget_new(&data_dir);
        }
    }
}

/// Opens the storage at the configured path (creating the data directory).
pub fn open_storage(config: &Config) -> Result<Arc<SqliteStorage>, StartError> {
    crate::datadir::create_private_dir(&config.data_dir).map_err(|source| StartError::DataDir {
        path: config.data_dir.clone(),
        source,
    })?;
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        let _ = std::fs::set_permissions(&config.data_dir, std::fs::Permissions::from_mode(0o700));
    }
    Ok(Arc::new(SqliteStorage::open(&config.database_path())?))
}

/// Creates the `admin` account with a random password if there are no users yet.
pub fn ensure_first_admin(
    storage: &dyn Storage,
    passwords: &Passwords,
    now: Timestamp,
) -> Result<Option<String>, StorageError> {
    if storage.count_users()? > 0 {
        return Ok(None);
    }
    let password = crate::accounts::random_password();
    let hash = passwords
        .hash(&password)
        .map_err(|e| StorageError::database("cannot hash the first admin's password", e))?;
    storage.create_user("admin", Role::Admin, &hash, now)?;
    storage.append_audit(AuditEvent {
        at: now,
        username: None,
        device_id: None,
        action: AuditAction::UserCreated,
        target: Some("admin".into()),
        detail: "first admin, role admin".into(),
    })?;
    Ok(Some(password))
}

impl std::fmt::Debug for Application {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Application")
            .field("addr", &self.addr)
            .finish()
    }
}

impl Application {
    pub async fn build(config: Config) -> Result<Application, StartError> {
        Self::build_with_clock(config, Arc::new(SystemClock)).await
    }

    /// Like [`Application::build`] with a given clock (tests move time by hand).
    pub async fn build_with_clock(
        config: Config,
        clock: Arc<dyn Clock>,
    ) -> Result<Application, StartError> {
        let runtime = tokio::runtime::Handle::try_current().map_err(|_| StartError::NoRuntime)?;
        // One server per data directory; `saksi admin restore` takes the same lock.
        let lock = Arc::new(std::sync::Mutex::new(Some(
            crate::datadir::DataDirLock::acquire(&config.data_dir)?,
        )));
        // The port first: a start that cannot listen (the port taken) makes nothing whose
        // secret it would then never show (the first admin's password, the CA's passphrase).
        let listener = TcpListener::bind(config.listen).map_err(|source| StartError::Bind {
            addr: config.listen,
            source,
        })?;
        let sqlite = open_storage(&config)?;
        let storage: Arc<dyn Storage> = sqlite.clone();
        let passwords = Passwords::new(config.argon2_memory_kib, config.argon2_iterations);
        let now = clock.now();
        let first_admin_password = {
            let (storage, passwords) = (storage.clone(), passwords.clone());
            tokio::task::spawn_blocking(move || ensure_first_admin(&*storage, &passwords, now))
                .await
                .map_err(|_| StorageError::Closed)??
        };
        let bindings = {
            let storage = storage.clone();
            tokio::task::spawn_blocking(move || storage.actor_bindings())
                .await
                .map_err(|_| StorageError::Closed)??
        };
        // Tombstones: the file and the database agree (a record a restored backup brought back
        // is destroyed again) before anything is served.
        let withdrawn = {
            let (storage, dir) = (storage.clone(), config.data_dir.clone());
            tokio::task::spawn_blocking(move || -> Result<_, StartError> {
                let (purged, _reapplied) = crate::purge::reconcile(&*storage, &dir, true)?;
                crate::purge::shred_files(&dir, &purged);
                crate::purge::save_pending(&*storage, &dir)?;
                Ok(storage
                    .tombstones()?
                    .into_iter()
                    .map(|t| t.doc_id)
                    .collect::<std::collections::HashSet<_>>())
            })
            .await
            .map_err(|_| StorageError::Closed)??
        };
        let blobs: Arc<dyn crate::files::BlobStore> =
            Arc::new(crate::files::FsBlobStore::open(&config.data_dir)?);
        let mut tls = crate::tls::setup(&config)?;
        // A CA made just now whose passphrase this start fails to report is removed again.
        let mut unseen_ca = UnseenCa(
            tls.as_ref()
                .is_some_and(|t| t.new_ca_passphrase.is_some())
                .then(|| config.data_dir.clone()),
        );
        let peer_id = server_peer_id(&config);
        let state = Arc::new(AppState {
            throttle: Throttle::new(
                config.login_window_seconds,
                config.login_failures_per_account,
                config.login_failures_per_address,
            ),
            config: config.clone(),
            db: Db::new(storage),
            sqlite,
            clock,
            passwords,
            tickets: Tickets::default(),
            documents: Documents::default(),
            connections: Connections::default(),
            bindings: Bindings::load(bindings),
            metrics: Metrics::default(),
            peer_id,
            runtime,
            trust: tls.as_ref().and_then(|t| t.trust.clone()).map(Arc::new),
            time_zone: jiff::tz::TimeZone::get(&config.time_zone)
                .unwrap_or(jiff::tz::TimeZone::UTC),
            blobs,
            active_uploads: Default::default(),
            withdrawn: std::sync::RwLock::new(withdrawn),
            purging: tokio::sync::Mutex::new(()),
        });

        let addr = listener.local_addr().map_err(|source| StartError::Bind {
            addr: config.listen,
            source,
        })?;
        let data = web::Data::from(state.clone());
        let app = move || {
            App::new()
                .app_data(data.clone())
                .app_data(web::JsonConfig::default().limit(64 * 1024))
                .configure(crate::http::routes)
        };
        let server = actix_web::dev::Server::build()
            .shutdown_timeout(10)
            // Signals are handled in `run_until_stopped`, which drains sync connections first.
            .disable_signals();
        // As actix-web's HttpServer builds its service, with WebSocket upgrades taken over by
        // `http::upgrade` (see there).
        macro_rules! http_service {
            () => {
                HttpService::build()
                    .tcp_nodelay(true)
                    .client_request_timeout(Duration::from_secs(5))
                    .client_disconnect_timeout(Duration::from_secs(1))
                    .upgrade(crate::http::upgrade::service(app.clone()))
                    .finish(map_config(
                        app().into_factory().map_err(|e| e.error_response()),
                        |_| AppConfig::default(),
                    ))
            };
        }
        let (server, scheme) = match tls.as_ref().map(|t| t.server_config.clone()) {
            Some(tls_config) => (
                server.listen("saksi", listener, move || {
                    http_service!().rustls_0_23(tls_config.clone())
                }),
                "https",
            ),
            None => (
                server.listen("saksi", listener, move || http_service!().tcp()),
                "http",
            ),
        };
        let server = server
            .map_err(|source| StartError::Bind {
                addr: config.listen,
                source,
            })?
            .run();
        let host = if addr.ip().is_unspecified() {
            "localhost".to_owned()
        } else {
            addr.ip().to_string()
        };
        let report = StartReport {
            url: format!("{scheme}://{host}:{}/", addr.port()),
            tls_fingerprint: tls.as_ref().and_then(|t| t.fingerprint.clone()),
            certificate_generated: tls.as_ref().is_some_and(|t| t.generated),
            trust: tls.as_ref().and_then(|t| t.trust.clone()),
            new_ca_passphrase: tls.as_mut().and_then(|t| t.new_ca_passphrase.take()),
            first_admin_password,
        };
        unseen_ca.0 = None;
        spawn_revocation_watch(state.clone());
        crate::files::spawn_clean_up(state.clone());
        crate::purge::spawn_due_purges(state.clone());
        if let Some(acme) = tls.as_mut().and_then(|t| t.acme.take()) {
            state.runtime.spawn(crate::tls::run_acme(acme));
        }
        Ok(Application {
            state,
            server,
            addr,
            report,
            lock,
        })
    }

    pub fn port(&self) -> u16 {
        self.addr.port()
    }

    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    pub fn report(&self) -> &StartReport {
        &self.report
    }

    pub fn state(&self) -> Arc<AppState> {
        self.state.clone()
    }

    /// A handle that stops the server gracefully.
    pub fn handle(&self) -> StopHandle {
        StopHandle {
            state: self.state.clone(),
            server: self.server.handle(),
            lock: self.lock.clone(),
        }
    }

    /// Serves until stopped by SIGINT, SIGTERM or [`StopHandle::stop`], then shuts down
    /// gracefully (see [`StopHandle::stop`]).
    pub async fn run_until_stopped(self) -> std::io::Result<()> {
        let handle = self.handle();
        let mut server = self.server;
        tokio::select! {
            result = &mut server => return result,
            () = stop_signal() => tracing::info!("stop signal received"),
        }
        // The server future processes the stop command: it must be polled while stopping.
        let ((), result) = tokio::join!(handle.stop(), server);
        result
    }
}

/// Stops a running server gracefully.
#[derive(Clone)]
pub struct StopHandle {
    state: Arc<AppState>,
    server: actix_web::dev::ServerHandle,
    lock: DirLock,
}

impl std::fmt::Debug for StopHandle {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("StopHandle")
    }
}

impl StopHandle {
    /// Tells every sync connection the server is stopping and closes it (clients reconnect
    /// with backoff), writes back every document in memory (sync states, snapshots), stops
    /// accepting requests and waits for the ones in flight. Every change was already on disk
    /// before it was acknowledged; this only makes the next start quicker.
    pub async fn stop(&self) {
        let closed = self.state.connections.close_all("server shutting down");
        let documents = self.state.documents.shutdown().await;
        self.server.stop(true).await;
        // Documents are written back and requests are done: another server (or a restore) may
        // use the data directory once this one's storage is closed.
        if let Ok(mut lock) = self.lock.lock() {
            lock.take();
        }
        tracing::info!(connections = closed, documents, "server stopped");
    }
}

/// SIGINT or SIGTERM.
async fn stop_signal() {
    #[cfg(unix)]
    {
        use tokio::signal::unix::{SignalKind, signal};
        match (
            signal(SignalKind::terminate()),
            signal(SignalKind::interrupt()),
        ) {
            (Ok(mut term), Ok(mut int)) => {
                tokio::select! {
                    _ = term.recv() => {}
                    _ = int.recv() => {}
                }
            }
            _ => std::future::pending().await,
        }
    }
    #[cfg(not(unix))]
    {
        let _ = tokio::signal::ctrl_c().await;
    }
}

/// A stable peer id for this server: derived from its database path, so that clients that
/// persist sync state per storage id can resume after a restart.
fn server_peer_id(config: &Config) -> saksi_shared::protocol::PeerId {
    use sha2::Digest;
    let path = std::fs::canonicalize(&config.data_dir).unwrap_or_else(|_| config.data_dir.clone());
    let digest = sha2::Sha256::digest(path.to_string_lossy().as_bytes());
    format!("saksi-server-{}", hex::encode(&digest[..8])).into()
}

/// Devices revoked from outside this process (the admin CLI) are cut off within seconds.
fn spawn_revocation_watch(state: Arc<AppState>) {
    let runtime = state.runtime.clone();
    runtime.spawn(async move {
        let mut since = state.now();
        // Access changes made before this start concern no open connection.
        let mut access_seen = match state.db.run(|s| s.access_changes_since(i64::MAX)).await {
            Ok((last, _)) => last,
            Err(_) => 0,
        };
        let mut hidden = std::collections::HashSet::new();
        let mut tick = tokio::time::interval(Duration::from_secs(2));
        loop {
            tick.tick().await;
            if Arc::strong_count(&state) == 1 {
                break;
            }
            let from = since;
            let now = state.now();
            match state.db.run(move |s| s.revoked_since(from)).await {
                Ok(devices) => {
                    for (device, _) in devices {
                        state.connections.close_device(&device, "device revoked");
                    }
                    // Overlap windows: a revocation committed late is still seen.
                    since = now - Duration::from_millis(10_000);
                }
                Err(StorageError::Closed) => break,
                Err(e) => {
                    tracing::warn!(error = %Chain(&e), "revocation check failed")
                }
            }
            // Team and role changes, from the console or the command line: the users'
            // connections reload what they may read and close what they may no longer read.
            let seen = access_seen;
            match state.db.run(move |s| s.access_changes_since(seen)).await {
                Ok((last, users)) => {
                    access_seen = last;
                    for user in users {
                        let n = state.connections.refresh_user(&user);
                        tracing::debug!(connections = n, "access changed: connections refreshed");
                    }
                }
                Err(StorageError::Closed) => break,
                Err(e) => {
                    tracing::warn!(error = %Chain(&e), "access change check failed")
                }
            }
            // Purges from the command line.
            match crate::purge::notice_outside_changes(&state, &mut hidden).await {
                Ok(()) => {}
                Err(StorageError::Closed) => break,
                Err(e) => tracing::warn!(error = %Chain(&e), "purge check failed"),
            }
        }
    });
}
