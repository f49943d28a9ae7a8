//! Accounts, devices, tokens, tickets, throttling and revocation.

use std::time::Duration;

use saksi_client::ClientError;
use saksi_shared::Role;
use saksi_shared::protocol::Message;
use saksi_shared::sync::Repo;
use saksi_shared::time::days;
use saksi_testkit::at;
use serde_json::json;

use crate::helpers::{PASSWORD, TestServer, WAIT};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn first_start_creates_an_admin_who_can_sign_in() {
    let server = TestServer::start().await;
    let password = server
        .admin_password
        .clone()
        .expect("first start prints a password");
    assert!(password.len() >= 20);
    let session = server
        .client
        .login("admin", &password, "operator laptop")
        .await
        .expect("admin signs in");
    assert_eq!(session.role, Role::Admin);
    let me = server
        .client
        .get("/api/me", Some(&session.token))
        .await
        .expect("me");
    assert_eq!(me.status, 200);
    assert!(me.text().contains("\"admin\""));
    let dir = server.stop().await;
    // A second start does not create another admin or print a password.
    let again = TestServer::start_in(dir, |_| {}).await;
    assert!(again.admin_password.is_none());
    again.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn login_sets_a_strict_cookie_and_wrong_passwords_are_throttled() {
    let server = TestServer::start().await;
    server.user("dara", Role::Liaison);
    let res = server
        .client
        .post_json(
            "/api/login",
            None,
            &json!({"username": "dara", "password": PASSWORD, "device_name": "ទូរស័ព្ទ"}),
        )
        .await
        .expect("login");
    assert_eq!(res.status, 200);
    let cookie = res.header("set-cookie").expect("cookie set");
    for attr in [
        "saksi_session=",
        "HttpOnly",
        "Secure",
        "SameSite=Strict",
        "Path=/",
    ] {
        assert!(cookie.contains(attr), "{attr} missing in {cookie}");
    }
    assert_eq!(res.header("cache-control"), Some("no-store"));

    // Unknown user and wrong password get the same answer.
    for (user, pw) in [("nobody", PASSWORD), ("dara", "wrong password!")] {
        let res = server
            .client
            .post_json(
                "/api/login",
                None,
                &json!({"username": user, "password": pw, "device_name": "x"}),
            )
            .await
            .expect("answer");
        assert_eq!(res.status, 401);
        assert!(res.text().contains("invalid_credentials"));
    }
    // Four more failures reach the per-account limit of five...
    for _ in 0..4 {
        let res = server
            .client
            .post_json(
                "/api/login",
                None,
                &json!({"username": "dara", "password": "still wrong!", "device_name": "x"}),
            )
            .await
            .expect("answer");
        assert_eq!(res.status, 401);
    }
    // ...after which even the right password is refused until the window passes.
    let res = server
        .client
        .post_json(
            "/api/login",
            None,
            &json!({"username": "dara", "password": PASSWORD, "device_name": "x"}),
        )
        .await
        .expect("answer");
    assert_eq!(res.status, 429);
    assert!(res.header("retry-after").is_some());
    server.clock.advance(Duration::from_secs(16 * 60));
    server.login("dara").await;
    let failures = server
        .storage()
        .audit(&saksi_server::storage::AuditFilter {
            action: Some(saksi_server::storage::AuditAction::LoginFailed),
            ..Default::default()
        })
        .expect("audit");
    assert_eq!(failures.len(), 6);
    assert!(
        failures.iter().all(|e| !e.event.detail.contains(PASSWORD)),
        "no password in the audit log"
    );
    server.stop().await;
}

/// Red-team finding: the throttle was checked before the (slow) password check and counted
/// only after it, so 60 guesses sent at once were all checked (59 answered 401, none 429) and
/// the right password in the same burst signed in. Every password turn is held here while the
/// burst arrives, so no check can finish (and count, or clear, anything) before all 60 have
/// met the throttle: only the per-account limit may reach a password check.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn concurrent_guesses_are_throttled_before_any_password_is_checked() {
    const BURST: usize = 60;
    let server = TestServer::start().await;
    server.user("dara", Role::Liaison);
    let limit = server.state.config.login_failures_per_account as usize;
    assert!(limit < BURST);
    let mut turns = Vec::new();
    while let Some(turn) = futures::FutureExt::now_or_never(server.state.passwords.turn()) {
        turns.push(turn);
    }
    assert!(!turns.is_empty());
    let (sent, mut answers) = tokio::sync::mpsc::unbounded_channel();
    for i in 0..BURST {
        // 59 wrong guesses, then the right password.
        let password = if i == BURST - 1 {
            PASSWORD.to_owned()
        } else {
            format!("wrong guess number {i}")
        };
        let (client, sent) = (server.client.clone(), sent.clone());
        tokio::spawn(async move {
            let res = client
                .post_json(
                    "/api/login",
                    None,
                    &json!({"username": "dara", "password": password, "device_name": "x"}),
                )
                .await
                .expect("answer");
            let _ = sent.send((i, res.status));
        });
    }
    drop(sent);
    let mut statuses = Vec::new();
    // Refusals need no password check: they all come back while the turns are held. (Before
    // the fix none did; after this wait, every guess then reached a password check.)
    let _ = tokio::time::timeout(WAIT, async {
        while statuses.len() < BURST - limit {
            match answers.recv().await {
                Some(answer) => statuses.push(answer),
                None => break,
            }
        }
    })
    .await;
    drop(turns);
    while statuses.len() < BURST {
        let answer = tokio::time::timeout(WAIT, answers.recv())
            .await
            .expect("every guess is answered")
            .expect("every guess is answered");
        statuses.push(answer);
    }
    let count = |status: u16| statuses.iter().filter(|(_, s)| *s == status).count();
    let (signed_in, wrong, throttled) = (count(200), count(401), count(429));
    assert!(signed_in <= 1, "{statuses:?}");
    assert_eq!(
        signed_in + wrong,
        limit,
        "only the per-account limit reaches a password check: {statuses:?}"
    );
    assert_eq!(
        throttled,
        BURST - limit,
        "the rest are throttled: {statuses:?}"
    );
    if signed_in == 1 {
        assert!(
            statuses.contains(&(BURST - 1, 200)),
            "only the right password signs in: {statuses:?}"
        );
    }
    let failures = server
        .storage()
        .audit(&saksi_server::storage::AuditFilter {
            action: Some(saksi_server::storage::AuditAction::LoginFailed),
            ..Default::default()
        })
        .expect("audit");
    assert_eq!(
        failures.len(),
        wrong,
        "every checked wrong guess is audited"
    );
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tickets_are_single_use_and_tokens_expire() {
    let server = TestServer::start().await;
    server.user("sophea", Role::Monitor);
    let session = server.login("sophea").await;
    let res = server
        .client
        .post_json("/api/sync-ticket", Some(&session.token), &json!({}))
        .await
        .expect("ticket");
    assert_eq!(res.status, 200);
    let ticket: serde_json::Value = res.json().expect("json");
    let ticket = ticket["ticket"].as_str().expect("ticket").to_owned();
    let path = format!("/sync?ticket={ticket}");
    let mut socket = server
        .client
        .open_socket(&path, &[])
        .await
        .expect("ticket works once");
    let mut repo = Repo::new("ticket-peer".into(), [3; 16]);
    socket.send(repo.connect()).await.expect("join");
    let frame = socket
        .recv_timeout(WAIT)
        .await
        .expect("answer")
        .expect("frame");
    assert!(matches!(Message::decode(&frame), Ok(Message::Peer { .. })));
    let replay = server.client.open_socket(&path, &[]).await;
    assert!(replay.is_err(), "a replayed ticket is refused");

    // After the session lifetime the token stops working, with a clear code.
    server.clock.advance(days(31));
    let res = server
        .client
        .get("/api/me", Some(&session.token))
        .await
        .expect("answer");
    assert_eq!(res.status, 401);
    assert!(res.text().contains("session_expired"));
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_revoked_device_is_cut_off_at_once() {
    let server = TestServer::start().await;
    server.user("vanna", Role::Monitor);
    let (session, mut phone) = server.phone("vanna").await;
    let other = server.login("vanna").await;

    // Revoke from outside the server process, as `saksi admin revoke-device` does.
    assert!(
        server
            .storage()
            .revoke_device(&session.device_id, server.clock_now())
            .expect("revoked")
    );
    // The open socket is told and closed within seconds.
    let outcome = tokio::time::timeout(Duration::from_secs(10), async {
        loop {
            match phone.socket.recv().await {
                Ok(Some(frame)) => {
                    if let Ok(Message::Error { message, .. }) = Message::decode(&frame) {
                        return Some(message);
                    }
                }
                _ => return None,
            }
        }
    })
    .await
    .expect("closed within 10 s");
    assert_eq!(outcome.as_deref(), Some("device revoked"));
    // The token no longer works for the API, for a new socket, or for a ticket.
    let res = server
        .client
        .get("/api/records", Some(&session.token))
        .await
        .expect("answer");
    assert_eq!(res.status, 401);
    assert!(res.text().contains("device_revoked"));
    assert!(session.socket().await.is_err());
    let res = server
        .client
        .post_json("/api/sync-ticket", Some(&session.token), &json!({}))
        .await
        .expect("answer");
    assert_eq!(res.status, 401);
    // The user's other device is unaffected.
    let res = server
        .client
        .get("/api/records", Some(&other.token))
        .await
        .expect("answer");
    assert_eq!(res.status, 200);
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn cross_site_cookie_requests_are_refused() {
    let server = TestServer::start().await;
    server.user("dara", Role::Liaison);
    let session = server.login("dara").await;
    let cookie = format!("saksi_session={}", session.token);
    let res = server
        .client
        .request(
            "POST",
            "/api/sync-ticket",
            &[
                ("Cookie", &cookie),
                ("Origin", "https://evil.example"),
                ("Content-Type", "application/json"),
            ],
            Some(b"{}"),
        )
        .await
        .expect("answer");
    assert_eq!(res.status, 403);
    let upgrade = server
        .client
        .open_socket(
            "/sync",
            &[("Cookie", &cookie), ("Origin", "https://evil.example")],
        )
        .await;
    assert!(matches!(upgrade, Err(ClientError::WebSocket(_))));
    let same = server
        .client
        .open_socket("/sync", &[("Cookie", &cookie)])
        .await;
    assert!(same.is_ok(), "same-origin cookie works");
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn logout_revokes_only_the_calling_device() {
    let server = TestServer::start().await;
    server.user("sophea", Role::Monitor);
    let phone = server.login("sophea").await;
    let laptop = server.login("sophea").await;
    let res = server
        .client
        .post_json("/api/logout", Some(&phone.token), &json!({}))
        .await
        .expect("logout");
    assert_eq!(res.status, 204);
    let cookie = res.header("set-cookie").expect("cookie cleared");
    assert!(
        cookie.contains("saksi_session=;") || cookie.contains("Max-Age=0"),
        "{cookie}"
    );
    let me = server
        .client
        .get("/api/me", Some(&phone.token))
        .await
        .expect("me");
    assert_eq!(me.status, 401);
    let me = server
        .client
        .get("/api/me", Some(&laptop.token))
        .await
        .expect("me");
    assert_eq!(me.status, 200);
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn certificate_files_are_used_when_configured() {
    // A certificate made elsewhere (here: by another server's first start).
    let other = TestServer::start().await;
    let source = other.stop().await;
    let certs = tempfile::tempdir().expect("dir");
    let (cert, key) = (
        certs.path().join("fullchain.pem"),
        certs.path().join("privkey.pem"),
    );
    std::fs::copy(source.path().join("tls/server.pem"), &cert).expect("copy cert");
    std::fs::copy(source.path().join("tls/server-key.pem"), &key).expect("copy key");
    let ca = std::fs::read(source.path().join("tls/ca.pem")).expect("CA");

    let dir = tempfile::tempdir().expect("dir");
    let mut config = crate::helpers::test_config(dir.path().to_owned());
    config.tls = saksi_server::config::TlsMode::Files;
    config.tls_cert = Some(cert.clone());
    config.tls_key = Some(key.clone());
    let app = saksi_server::Application::build(config.clone())
        .await
        .expect("starts with the files");
    assert!(
        !dir.path().join("tls").exists() && !dir.path().join("tls-cert.pem").exists(),
        "nothing generated"
    );
    assert!(!app.report().certificate_generated);
    let client = saksi_client::Client::new(app.addr(), "localhost", &ca).expect("client");
    let handle = app.handle();
    let task = tokio::spawn(app.run_until_stopped());
    let res = client
        .get("/healthz", None)
        .await
        .expect("TLS with the given certificate");
    assert_eq!(res.status, 200);
    // No local CA to hand out.
    let res = client.get("/ca.crt", None).await.expect("answer");
    assert_eq!(res.status, 404);
    handle.stop().await;
    let _ = task.await;

    // A missing key file is a clear start-up error.
    config.tls_key = Some(certs.path().join("missing.pem"));
    config.data_dir = tempfile::tempdir().expect("dir").path().to_owned();
    let err = saksi_server::Application::build(config)
        .await
        .expect_err("refuses to start");
    // What the binary prints: the error and its causes.
    let printed = saksi_server::errors::Chain(&err).to_string();
    assert!(
        printed.starts_with("TLS: ") && printed.contains("missing.pem"),
        "{printed}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_server_set_up_with_self_signed_keeps_its_certificate() {
    // Servers made before `local_ca` have `tls = "self_signed"` in their configuration.
    let dir = tempfile::tempdir().expect("dir");
    let server = TestServer::start_in(dir, |c| {
        c.tls = saksi_server::config::TlsMode::SelfSigned;
    })
    .await;
    assert!(server.state.trust.is_none());
    let cert = server.data_dir.path().join("tls-cert.pem");
    let first = std::fs::read(&cert).expect("self-signed certificate");
    let dir = server.stop().await;
    let server = TestServer::start_in(dir, |c| {
        c.tls = saksi_server::config::TlsMode::SelfSigned;
    })
    .await;
    assert_eq!(std::fs::read(&cert).expect("kept"), first);
    assert!(!server.data_dir.path().join("tls").exists(), "no CA made");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_expired_session_is_renewed_on_the_same_device() {
    use saksi_shared::catalogue::RecordKind;
    use saksi_shared::record::FieldInput;

    let server = TestServer::start().await;
    server.user("sophea", Role::Monitor);
    server.user("vanna", Role::Monitor);
    let case = server.case("Case X", &["sophea"]);
    let (session, mut phone) = server.phone("sophea").await;
    let editor = session.editor();
    let id = phone.repo.create(
        RecordKind::CourtObservation,
        &case,
        &editor,
        at(1_000),
        saksi_server::accounts::random_16(),
    );
    phone.sync_all(WAIT).await.expect("stored");
    let mut repo = phone.disconnect().await;

    // Offline for over a month: the session expires, edits go on.
    server.clock.advance(days(31));
    repo.edit(&id, |r| {
        r.set_field(
            "court",
            FieldInput::Text("តុលាការ".into()),
            &editor,
            at(2_000),
        )
    })
    .expect("doc")
    .expect("offline edit");
    assert!(session.socket().await.is_err(), "expired");

    // Signing in again with the old token renews the same device.
    let res = server
        .client
        .post_json(
            "/api/login",
            None,
            &json!({"username": "sophea", "password": PASSWORD, "device_name": "phone",
                    "renew_token": session.token}),
        )
        .await
        .expect("answer");
    assert_eq!(res.status, 200, "{}", res.text());
    let renewed: serde_json::Value = res.json().expect("json");
    assert_eq!(
        renewed["device_id"].as_str(),
        Some(session.device_id.as_str())
    );
    let token = renewed["token"].as_str().expect("token").to_owned();
    assert_ne!(token, session.token, "a new token");
    let old = server
        .client
        .get("/api/me", Some(&session.token))
        .await
        .expect("answer");
    assert_eq!(old.status, 401, "the old token is gone");

    // The edit made offline under the old session is accepted: same device, same actor.
    let renewed_session = saksi_client::Session {
        token,
        ..session.clone()
    };
    let mut phone = renewed_session.sync(repo).await.expect("connects");
    phone.sync_all(WAIT).await.expect("offline edit stored");
    assert!(
        !phone
            .events
            .iter()
            .any(|e| matches!(e, saksi_shared::sync::Event::ChangesRefused { .. })),
        "{:?}",
        phone.events
    );

    // Another user cannot renew this device; a revoked device learns it is revoked.
    let res = server
        .client
        .post_json(
            "/api/login",
            None,
            &json!({"username": "vanna", "password": PASSWORD, "device_name": "x",
                    "renew_token": renewed_session.token}),
        )
        .await
        .expect("answer");
    assert_eq!(res.status, 400);
    server
        .storage()
        .revoke_device(&session.device_id, server.clock_now())
        .expect("revoke");
    let res = server
        .client
        .post_json(
            "/api/login",
            None,
            &json!({"username": "sophea", "password": PASSWORD, "device_name": "phone",
                    "renew_token": renewed_session.token}),
        )
        .await
        .expect("answer");
    assert_eq!(res.status, 401);
    assert!(res.text().contains("device_revoked"));
    server.stop().await;
}

/// A phone that keeps its socket open and syncs makes no HTTP request: its device's last-seen
/// time still follows its syncs (it lagged minutes behind them).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn last_seen_follows_syncs_on_an_open_socket() {
    let server = TestServer::start_in(tempfile::tempdir().expect("dir"), |c| {
        // Heartbeats (a third of the idle time) every second.
        c.idle_connection_seconds = 3;
    })
    .await;
    server.user("sophea", Role::Monitor);
    let case = server.case("ករណី ក-១២", &["sophea"]);
    let (session, mut phone) = server.phone("sophea").await;
    let signed_in = server.clock_now();
    server.clock.advance(Duration::from_millis(600_000));
    let now = server.clock_now();
    phone.repo.create(
        saksi_shared::RecordKind::CourtObservation,
        &case,
        &session.editor(),
        now,
        saksi_server::accounts::random_16(),
    );
    phone.sync_all(WAIT).await.expect("stored");
    tokio::time::sleep(Duration::from_millis(2_200)).await;
    let (device, _) = server
        .storage()
        .device(&session.device_id)
        .expect("lookup")
        .expect("the device");
    assert!(signed_in < now);
    assert_eq!(device.last_seen, Some(now), "last seen at the sync");
}

/// A locked phone holds no usable credential; its probe, registered at sign-in, answers one
/// question (is this device revoked?) and can revoke only that device (after a wipe).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_probe_tells_a_locked_phone_it_was_revoked_and_reports_its_wipe() {
    let server = TestServer::start().await;
    server.user("sophea", Role::Monitor);
    server.user("vanna", Role::Monitor);
    let login = |user: &str, probe: &str| json!({"username": user, "password": PASSWORD, "device_name": "សាក្សី phone", "probe": probe});
    let ask = |probe: &str| json!({ "probe": probe });
    let c = &server.client;
    let probe_a = "0123456789abcdef0123456789abcdef";
    let probe_b = "fedcba9876543210fedcba9876543210";
    let a: serde_json::Value = c
        .post_json("/api/login", None, &login("sophea", probe_a))
        .await
        .expect("login")
        .json()
        .expect("json");
    c.post_json("/api/login", None, &login("vanna", probe_b))
        .await
        .expect("login");
    // A bad probe is refused at sign-in; an unknown one is simply not revoked.
    let bad = c
        .post_json("/api/login", None, &login("sophea", "short"))
        .await
        .expect("answer");
    assert_eq!(bad.status, 400);
    assert!(!is_revoked(&server, "00000000000000000000000000000000").await);
    assert!(!is_revoked(&server, probe_a).await);
    let device = a["device_id"].as_str().expect("device id").to_owned();
    saksi_server::admin::revoke_device(
        &**server.storage(),
        saksi_server::admin::Operator::CLI,
        &device,
        server.clock_now(),
    )
    .expect("revoked");
    assert!(is_revoked(&server, probe_a).await);
    assert!(!is_revoked(&server, probe_b).await, "only that device");

    // A phone that wiped itself after too many wrong PINs revokes its own device, no other.
    let wiped = c
        .post_json("/api/probe/wiped", None, &ask(probe_b))
        .await
        .expect("answer");
    assert_eq!(wiped.status, 204);
    assert!(is_revoked(&server, probe_b).await);
    let devices = server.storage().devices(None).expect("devices");
    assert!(devices.iter().all(|(d, _)| d.revoked_at.is_some()));
    assert_eq!(devices.len(), 2);
}

/// What `/api/probe` answers for `probe`.
async fn is_revoked(server: &TestServer, probe: &str) -> bool {
    let res = server
        .client
        .post_json("/api/probe", None, &json!({ "probe": probe }))
        .await
        .expect("answer");
    assert_eq!(res.status, 200, "{}", res.text());
    let body: serde_json::Value = res.json().expect("json");
    body["revoked"].as_bool().expect("a boolean")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sign_in_and_me_tell_the_phone_the_pin_policy() {
    let dir = tempfile::tempdir().expect("dir");
    let server = TestServer::start_in(dir, |c| {
        c.pin_min_length = 12;
        c.pin_letters = true;
    })
    .await;
    server.user("sophea", Role::Monitor);
    let res = server
        .client
        .post_json(
            "/api/login",
            None,
            &json!({"username": "sophea", "password": PASSWORD, "device_name": "phone"}),
        )
        .await
        .expect("answer");
    assert_eq!(res.status, 200, "{}", res.text());
    let login: serde_json::Value = res.json().expect("json");
    assert_eq!(
        login["pin_policy"],
        json!({"min_length": 12, "letters": true})
    );
    let token = login["token"].as_str().expect("token");
    let me: serde_json::Value = server
        .client
        .get("/api/me", Some(token))
        .await
        .expect("me")
        .json()
        .expect("json");
    assert_eq!(me["pin_policy"], login["pin_policy"]);
}
