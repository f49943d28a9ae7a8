//! A real server for each test: port 0, a temporary data directory with a real SQLite file, a
//! freshly generated self-signed certificate that the clients trust explicitly, and a clock the
//! test can move.

use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use saksi_client::{Client, Response, Session, SyncClient, SyncSocket};
use saksi_server::Application;
use saksi_server::accounts::random_16;
use saksi_server::app::AppState;
use saksi_server::clock::ManualClock;
use saksi_server::config::Config;
use saksi_shared::Timestamp;
use saksi_shared::protocol::Message;
use saksi_shared::sync::Repo;
use saksi_shared::{DocumentId, Role};
use saksi_testkit::ms;

pub const PASSWORD: &str = "correct horse battery staple";
pub const WAIT: Duration = Duration::from_secs(30);

pub struct TestServer {
    pub data_dir: tempfile::TempDir,
    pub state: Arc<AppState>,
    pub client: Client,
    pub clock: Arc<ManualClock>,
    pub admin_password: Option<String>,
    /// Where it listens.
    pub addr: std::net::SocketAddr,
    handle: saksi_server::app::StopHandle,
    task: tokio::task::JoinHandle<std::io::Result<()>>,
}

pub fn test_config(data_dir: PathBuf) -> Config {
    Config {
        listen: "127.0.0.1:0".parse().expect("address"),
        data_dir,
        ..Config::default()
    }
}

impl TestServer {
    pub async fn start() -> TestServer {
        let dir = tempfile::tempdir().expect("temp dir");
        Self::start_in(dir, |_| {}).await
    }

    /// Starts a server on an existing data directory (restarts), adjusting the configuration.
    pub async fn start_in(dir: tempfile::TempDir, adjust: impl FnOnce(&mut Config)) -> TestServer {
        // SAKSI_LOG=debug shows the server's log in failing tests.
        let _ = tracing_subscriber::fmt()
            .with_env_filter(
                tracing_subscriber::EnvFilter::try_from_env("SAKSI_LOG")
                    .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("off")),
            )
            .with_test_writer()
            .try_init();
        let mut config = test_config(dir.path().to_owned());
        adjust(&mut config);
        let clock = Arc::new(ManualClock::default());
        let app = Application::build_with_clock(config, clock.clone())
            .await
            .expect("server starts");
        let state = app.state();
        let admin_password = app.report().first_admin_password.clone();
        // What a phone trusts: the local CA (the default), or a self-signed certificate.
        let cert = std::fs::read(dir.path().join("tls/ca.pem"))
            .or_else(|_| std::fs::read(dir.path().join("tls-cert.pem")))
            .expect("certificate written");
        let addr = app.addr();
        let client = Client::new(addr, "localhost", &cert).expect("client");
        let handle = app.handle();
        let task = tokio::spawn(app.run_until_stopped());
        TestServer {
            data_dir: dir,
            state,
            client,
            clock,
            admin_password,
            addr,
            handle,
            task,
        }
    }

    /// Stops the server gracefully and returns its data directory.
    pub async fn stop(self) -> tempfile::TempDir {
        self.handle.stop().await;
        let _ = self.task.await;
        // Document tasks write back when idle; the storage closes when the last reference goes.
        self.state.sqlite.close();
        self.data_dir
    }

    pub fn storage(&self) -> &Arc<dyn saksi_server::storage::Storage> {
        self.state.db.storage()
    }

    /// Creates a user with [`PASSWORD`].
    pub fn user(&self, name: &str, role: Role) {
        let hash = self.state.passwords.hash(PASSWORD).expect("hash");
        self.storage()
            .create_user(name, role, &hash, self.clock_now())
            .expect("user created");
    }

    pub fn clock_now(&self) -> Timestamp {
        use saksi_server::clock::Clock;
        self.clock.now()
    }

    /// Creates a case with the given members.
    pub fn case(&self, name: &str, members: &[&str]) -> DocumentId {
        let id =
            saksi_server::admin::create_case(&**self.storage(), name, "admin", self.clock_now())
                .expect("case created");
        for m in members {
            let (user, _) = self
                .storage()
                .user_by_name(m)
                .expect("lookup")
                .expect("member exists");
            self.storage()
                .add_member(&id, user.id)
                .expect("member added");
        }
        id
    }

    pub async fn login(&self, name: &str) -> Session {
        self.client
            .login(name, PASSWORD, &format!("{name}'s phone"))
            .await
            .expect("login")
    }

    /// Logs in and connects a fresh repo.
    pub async fn phone(&self, name: &str) -> (Session, SyncClient) {
        let session = self.login(name).await;
        let repo = Repo::new(
            format!("{name}-tab-{}", hex(&random_16()[..4])).into(),
            random_16(),
        );
        let sync = session.sync(repo).await.expect("sync connects");
        (session, sync)
    }
}

/// Scenario S2 over this server ([`saksi_testkit::s2`]): `first` creates and fills a court
/// observation in a case of both monitors and syncs it, `second` fetches it, both go offline
/// and make S2's edits, and both reconnect and sync until each sees the conflict.
pub struct S2 {
    pub id: DocumentId,
    pub case: DocumentId,
    /// The two phones, connected, in the order `first`, `second`.
    pub phones: Vec<SyncClient>,
    pub editors: [saksi_shared::Editor; 2],
    /// The changes that wrote the first monitor's "yes" and the second's "no".
    pub yes_change: String,
    pub no_change: String,
}

/// Runs S2 between the monitors `first` and `second` (created here) in a new case `case_name`.
pub async fn s2(server: &TestServer, first: &str, second: &str, case_name: &str) -> S2 {
    use saksi_shared::catalogue::RecordKind;
    use saksi_testkit::s2;
    server.user(first, Role::Monitor);
    server.user(second, Role::Monitor);
    let case = server.case(case_name, &[first, second]);
    let t0 = server.clock_now();
    let (s1, mut p1) = server.phone(first).await;
    let e1 = s1.editor();
    let id = p1
        .repo
        .create(RecordKind::CourtObservation, &case, &e1, t0, random_16());
    p1.repo
        .edit(&id, |r| s2::before_the_hearing(r, &e1, t0 + ms(1_000)))
        .expect("doc")
        .expect("filled");
    p1.sync_all(WAIT).await.expect("synced");

    // The second learns of it from the listing and fetches it.
    let (s2_session, mut p2) = server.phone(second).await;
    let e2 = s2_session.editor();
    let listing = s2_session.records().await.expect("listing");
    assert!(
        listing.records.iter().any(|r| r.id == id),
        "listed for the team"
    );
    p2.repo.request(id);
    p2.sync_until_received(WAIT, &id).await.expect("received");

    let mut r1 = p1.disconnect().await;
    let mut r2 = p2.disconnect().await;
    r1.edit(&id, |r| s2::first_monitor_offline(r, &e1, t0 + ms(2_000)))
        .expect("doc")
        .expect("edits");
    r2.edit(&id, |r| s2::second_monitor_offline(r, &e2, t0 + ms(2_050)))
        .expect("doc")
        .expect("edits");
    let mut p1 = s1.sync(r1).await.expect("reconnect");
    let mut p2 = s2_session.sync(r2).await.expect("reconnect");
    p1.sync_all(WAIT).await.expect("p1 synced");
    p2.sync_all(WAIT).await.expect("p2 synced");
    for p in [&mut p1, &mut p2] {
        p.sync_until(WAIT, |repo, _| {
            repo.record(&id)
                .and_then(|r| r.view().ok())
                .is_some_and(|v| v.conflicts.iter().any(|c| c.field == "counsel_present"))
        })
        .await
        .expect("both phones see the conflict");
    }
    let view = p1.repo.record(&id).expect("doc").view().expect("view");
    let conflict = view
        .conflicts
        .iter()
        .find(|c| c.field == "counsel_present")
        .expect("conflict");
    let change_of = |value: &str| {
        conflict
            .values
            .iter()
            .find(|v| v.value.display() == value)
            .map(|v| v.by.change.clone())
            .expect("value present")
    };
    S2 {
        id,
        case,
        yes_change: change_of("yes"),
        no_change: change_of("no"),
        phones: vec![p1, p2],
        editors: [e1, e2],
    }
}

/// A socket that has completed the handshake by hand. Returns it with its peer id.
pub async fn joined(session: &Session) -> (SyncSocket, String) {
    let mut socket = session.socket().await.expect("socket");
    let peer = format!("raw-{}", hex(&random_16()[..4]));
    let join = Message::Join {
        sender_id: peer.clone().into(),
        supported_protocol_versions: vec!["1".into()],
        metadata: None,
    };
    socket.send(join.encode()).await.expect("join");
    let reply = socket
        .recv_timeout(WAIT)
        .await
        .expect("recv")
        .expect("peer");
    assert!(matches!(Message::decode(&reply), Ok(Message::Peer { .. })));
    (socket, peer)
}

pub fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// A browser signed in to the console.
pub struct Browser<'a> {
    pub server: &'a TestServer,
    pub cookie: String,
    pub csrf: String,
}

/// The value of the first hidden `csrf` field of a page.
pub fn csrf_of(html: &str) -> String {
    let marker = "name=\"csrf\" value=\"";
    let start = html.find(marker).expect("the page has a CSRF field") + marker.len();
    html[start..start + 64].to_owned()
}

pub fn form(pairs: &[(&str, &str)]) -> Vec<u8> {
    serde_urlencoded::to_string(pairs)
        .expect("form encodes")
        .into_bytes()
}

impl<'a> Browser<'a> {
    /// Signs in through the console's form.
    pub async fn sign_in(server: &'a TestServer, name: &str) -> Browser<'a> {
        let res = server
            .client
            .request(
                "POST",
                "/console/login",
                &[("Content-Type", "application/x-www-form-urlencoded")],
                Some(&form(&[
                    ("username", name),
                    ("password", PASSWORD),
                    ("next", "/console/records"),
                ])),
            )
            .await
            .expect("login answer");
        assert_eq!(res.status, 303, "{}", res.text());
        assert_eq!(res.header("location"), Some("/console/records"));
        let set = res.header("set-cookie").expect("session cookie");
        assert!(set.contains("HttpOnly") && set.contains("SameSite=Strict"));
        let cookie = set.split(';').next().expect("cookie").to_owned();
        let mut browser = Browser {
            server,
            cookie,
            csrf: String::new(),
        };
        let page = browser.get("/console/records").await;
        assert_eq!(page.status, 200, "{}", page.text());
        browser.csrf = csrf_of(&page.text());
        browser
    }

    /// A browser holding a device token from the JSON API (e.g. a monitor's PWA session).
    pub fn with_token(server: &'a TestServer, session: &Session) -> Browser<'a> {
        Browser {
            server,
            cookie: format!("saksi_session={}", session.token),
            csrf: String::new(),
        }
    }

    pub async fn get(&self, path: &str) -> Response {
        self.server
            .client
            .request("GET", path, &[("Cookie", &self.cookie)], None)
            .await
            .expect("answer")
    }

    /// Posts a form with this session's CSRF token and extra headers.
    pub async fn post_with(
        &self,
        path: &str,
        fields: &[(&str, &str)],
        extra: &[(&str, &str)],
    ) -> Response {
        let mut all = vec![("csrf", self.csrf.as_str())];
        all.extend_from_slice(fields);
        let mut headers = vec![
            ("Cookie", self.cookie.as_str()),
            ("Content-Type", "application/x-www-form-urlencoded"),
        ];
        headers.extend_from_slice(extra);
        self.server
            .client
            .request("POST", path, &headers, Some(&form(&all)))
            .await
            .expect("answer")
    }

    /// Posts a form with this session's CSRF token.
    pub async fn post(&self, path: &str, fields: &[(&str, &str)]) -> Response {
        let mut all = vec![("csrf", self.csrf.as_str())];
        all.extend_from_slice(fields);
        self.post_raw(path, &all, None).await
    }

    pub async fn post_raw(
        &self,
        path: &str,
        fields: &[(&str, &str)],
        origin: Option<&str>,
    ) -> Response {
        let mut headers = vec![
            ("Cookie", self.cookie.as_str()),
            ("Content-Type", "application/x-www-form-urlencoded"),
        ];
        if let Some(o) = origin {
            headers.push(("Origin", o));
        }
        self.server
            .client
            .request("POST", path, &headers, Some(&form(fields)))
            .await
            .expect("answer")
    }

    /// GETs a page and checks it is a complete HTML page that the CSP lets render as is.
    pub async fn page(&self, path: &str) -> String {
        let res = self.get(path).await;
        assert_eq!(res.status, 200, "{path}: {}", res.text());
        assert!(
            res.header("content-type")
                .is_some_and(|t| t.starts_with("text/html")),
            "{path}"
        );
        assert!(
            res.header("content-security-policy")
                .is_some_and(|c| c.contains("style-src 'self'")),
            "{path}: CSP"
        );
        assert_eq!(res.header("cache-control"), Some("no-store"), "{path}");
        let html = res.text();
        assert!(html.starts_with("<!doctype html>"), "{path}");
        assert!(!html.contains(" style="), "{path}: inline style");
        assert!(!html.contains("<script"), "{path}: script");
        assert!(!html.contains("<style"), "{path}: style element");
        html
    }
}
