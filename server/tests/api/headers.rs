//! Security headers on every kind of response.

use saksi_shared::Role;

use crate::helpers::TestServer;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_response_carries_the_security_headers() {
    let server = TestServer::start().await;
    server.user("sophea", Role::Monitor);
    let session = server.login("sophea").await;
    let responses = [
        ("/", None),
        ("/healthz", None),
        ("/api/me", Some(session.token.as_str())),
        ("/api/records", None),
        ("/no/such/file", None),
    ];
    for (path, token) in responses {
        let res = server.client.get(path, token).await.expect("answer");
        let h = |name| res.header(name).unwrap_or_default().to_owned();
        assert!(
            h("strict-transport-security").contains("max-age=31536000"),
            "{path}"
        );
        let csp = h("content-security-policy");
        assert!(
            csp.contains("script-src 'self' 'wasm-unsafe-eval'"),
            "{path}: {csp}"
        );
        assert!(csp.contains("frame-ancestors 'none'"), "{path}: {csp}");
        assert!(csp.contains("default-src 'self'"), "{path}: {csp}");
        assert!(!csp.contains("unsafe-inline"), "{path}: {csp}");
        // The only eval allowed is WebAssembly's: no other source names `unsafe-eval`.
        assert!(
            csp.split([' ', ';'])
                .filter(|source| source.contains("unsafe-eval"))
                .all(|source| source == "'wasm-unsafe-eval'"),
            "{path}: {csp}"
        );
        assert_eq!(h("x-content-type-options"), "nosniff", "{path}");
        assert_eq!(h("referrer-policy"), "no-referrer", "{path}");
        assert_eq!(h("x-frame-options"), "DENY", "{path}");
        if path.starts_with("/api") {
            assert_eq!(h("cache-control"), "no-store", "{path}");
        }
    }
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn app_files_have_etags_and_the_service_worker_names_the_wasm() {
    let server = TestServer::start().await;
    let res = server
        .client
        .get("/index.html", None)
        .await
        .expect("answer");
    assert_eq!(res.status, 200);
    let etag = res.header("etag").expect("an ETag").to_owned();
    let again = server
        .client
        .request("GET", "/index.html", &[("If-None-Match", &etag)], None)
        .await
        .expect("answer");
    assert_eq!(again.status, 304);
    assert!(again.body.is_empty());
    let stale = server
        .client
        .request(
            "GET",
            "/index.html",
            &[("If-None-Match", "\"stale\"")],
            None,
        )
        .await
        .expect("answer");
    assert_eq!(stale.status, 200);
    // The served service worker's VERSION carries the wasm's hash after the shell's.
    let sw = server
        .client
        .get("/sw.js", None)
        .await
        .expect("answer")
        .text();
    let version = sw
        .lines()
        .find_map(|l| l.strip_prefix("const VERSION = \""))
        .and_then(|rest| rest.split('"').next())
        .expect("VERSION line");
    let (shell, wasm) = version.split_once('-').expect("shell-wasm");
    assert_eq!(shell.len(), 16, "{version}");
    assert!(!wasm.is_empty(), "{version}");
    server.stop().await;
}
