//! `tls = "acme"` end to end against Pebble, Let's Encrypt's ACME test server (Debian package
//! `pebble`, which `.ci/run` installs), on this machine only.
//!
//! Pebble serves its ACME directory over HTTPS with a certificate from a CA this test makes
//! (`acme_directory_ca` trusts it), resolves `saksi.test` through `pebble-challtestsrv`'s mock
//! DNS (127.0.0.1), and checks the TLS-ALPN-01 challenge on the server's listening port. The test
//! then connects to the server trusting only Pebble's root, by the name `saksi.test`, restarts
//! the server with Pebble gone, and finds the cached certificate in use at once.

use std::net::{SocketAddr, TcpListener, TcpStream, UdpSocket};
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use saksi_client::Client;
use saksi_server::Application;
use saksi_server::config::{Config, TlsMode};

const DOMAIN: &str = "saksi.test";

/// Child processes killed when the test ends, however it ends.
struct Children(Vec<Child>);

impl Drop for Children {
    fn drop(&mut self) {
        for child in &mut self.0 {
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}

fn free_tcp_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .expect("free port")
        .port()
}

fn free_udp_port() -> u16 {
    UdpSocket::bind("127.0.0.1:0")
        .and_then(|s| s.local_addr())
        .expect("free port")
        .port()
}

async fn wait_for_port(port: u16) {
    let deadline = tokio::time::Instant::now() + Duration::from_secs(30);
    while TcpStream::connect(("127.0.0.1", port)).is_err() {
        assert!(tokio::time::Instant::now() < deadline, "port {port} opens");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// A CA, and a certificate for `localhost` / 127.0.0.1 signed by it, as PEM (ca, cert, key).
fn test_ca() -> (String, String, String) {
    use rcgen::{BasicConstraints, CertificateParams, DnType, IsCa, Issuer, KeyPair};
    let mut ca_params = CertificateParams::new(Vec::<String>::new()).expect("params");
    ca_params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    ca_params
        .distinguished_name
        .push(DnType::CommonName, "Saksi test ACME directory CA");
    let ca_key = KeyPair::generate().expect("key");
    let ca_cert = ca_params.self_signed(&ca_key).expect("ca");
    let issuer = Issuer::new(ca_params, ca_key);
    let leaf_key = KeyPair::generate().expect("key");
    let leaf = CertificateParams::new(vec!["localhost".to_string(), "127.0.0.1".to_string()])
        .expect("params")
        .signed_by(&leaf_key, &issuer)
        .expect("leaf");
    (ca_cert.pem(), leaf.pem(), leaf_key.serialize_pem())
}

fn acme_config(data_dir: &Path, listen: u16, directory: u16, ca: &Path) -> Config {
    Config {
        listen: SocketAddr::from(([127, 0, 0, 1], listen)),
        data_dir: data_dir.to_owned(),
        tls: TlsMode::Acme,
        acme_domains: vec![DOMAIN.into()],
        acme_contact: vec!["ops@saksi.test".into()],
        acme_directory: format!("https://127.0.0.1:{directory}/dir"),
        acme_directory_ca: Some(ca.to_owned()),
        ..Config::default()
    }
}

/// Polls `/healthz` by the name `saksi.test`, trusting only `root`, until it answers.
async fn healthz_over_acme(port: u16, root: &[u8]) -> Result<(), String> {
    let client = Client::new(SocketAddr::from(([127, 0, 0, 1], port)), DOMAIN, root)
        .map_err(|e| e.to_string())?;
    let deadline = tokio::time::Instant::now() + Duration::from_secs(90);
    let mut last = String::new();
    while tokio::time::Instant::now() < deadline {
        match client.get("/healthz", None).await {
            Ok(res) if res.status == 200 => return Ok(()),
            Ok(res) => last = format!("status {}", res.status),
            Err(e) => last = e.to_string(),
        }
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
    Err(last)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn acme_certificate_from_pebble_is_obtained_cached_and_served() {
    let pebble = Path::new("/usr/bin/pebble");
    assert!(
        pebble.exists() && Path::new("/usr/bin/pebble-challtestsrv").exists(),
        "this test needs Pebble, Let's Encrypt's ACME test server: apt-get install pebble"
    );
    let work = tempfile::tempdir().expect("dir");
    let (ca, cert, key) = test_ca();
    let ca_path = work.path().join("directory-ca.pem");
    std::fs::write(&ca_path, ca).expect("ca");
    std::fs::write(work.path().join("cert.pem"), cert).expect("cert");
    std::fs::write(work.path().join("key.pem"), key).expect("key");

    let saksi_port = free_tcp_port();
    let (directory_port, management_port) = (free_tcp_port(), free_tcp_port());
    let (dns_port, dns_management_port) = (free_udp_port(), free_tcp_port());
    let pebble_config = serde_json::json!({
        "pebble": {
            "listenAddress": format!("127.0.0.1:{directory_port}"),
            "managementListenAddress": format!("127.0.0.1:{management_port}"),
            "certificate": work.path().join("cert.pem"),
            "privateKey": work.path().join("key.pem"),
            "httpPort": free_tcp_port(),
            "tlsPort": saksi_port,
            "ocspResponderURL": "",
            "externalAccountBindingRequired": false
        }
    });
    let config_path = work.path().join("pebble.json");
    std::fs::write(&config_path, pebble_config.to_string()).expect("pebble config");
    let logs = work.path().join("pebble.log");
    let log = || {
        std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(&logs)
            .expect("log")
    };
    let mut children = Children(Vec::new());
    children.0.push(
        Command::new("/usr/bin/pebble-challtestsrv")
            .args([
                "-dns01",
                &format!("127.0.0.1:{dns_port}"),
                "-management",
                &format!("127.0.0.1:{dns_management_port}"),
                "-http01",
                "",
                "-https01",
                "",
                "-tlsalpn01",
                "",
                "-defaultIPv4",
                "127.0.0.1",
                "-defaultIPv6",
                "",
            ])
            .stdout(log())
            .stderr(log())
            .spawn()
            .expect("pebble-challtestsrv starts"),
    );
    children.0.push(
        Command::new(pebble)
            .arg("-config")
            .arg(&config_path)
            .args(["-dnsserver", &format!("127.0.0.1:{dns_port}")])
            // No random validation delays, and no deliberately refused nonces.
            .env("PEBBLE_VA_NOSLEEP", "1")
            .env("PEBBLE_WFE_NONCEREJECT", "0")
            .stdout(log())
            .stderr(log())
            .stdin(Stdio::null())
            .spawn()
            .expect("pebble starts"),
    );
    wait_for_port(dns_management_port).await;
    wait_for_port(directory_port).await;
    wait_for_port(management_port).await;

    // The server starts with no certificate and asks Pebble for one.
    let data = tempfile::tempdir().expect("data");
    let app = Application::build(acme_config(
        data.path(),
        saksi_port,
        directory_port,
        &ca_path,
    ))
    .await
    .expect("server starts");
    assert_eq!(app.port(), saksi_port);
    assert!(app.report().tls_fingerprint.is_none());
    let handle = app.handle();
    let task = tokio::spawn(app.run_until_stopped());

    // Pebble's root, from its management interface (served with our CA's certificate).
    let management = Client::new(
        SocketAddr::from(([127, 0, 0, 1], management_port)),
        "localhost",
        &std::fs::read(&ca_path).expect("ca"),
    )
    .expect("client");
    let root = management.get("/roots/0", None).await.expect("root");
    assert_eq!(root.status, 200);
    let root = root.body.clone();

    let served = healthz_over_acme(saksi_port, &root).await;
    assert!(
        served.is_ok(),
        "the ACME certificate is served: {served:?}\npebble log:\n{}",
        std::fs::read_to_string(&logs).unwrap_or_default()
    );
    let cached: Vec<String> = std::fs::read_dir(data.path().join("acme"))
        .expect("acme cache")
        .map(|e| e.expect("entry").file_name().to_string_lossy().into_owned())
        .collect();
    assert!(
        cached.iter().any(|f| f.starts_with("cached_cert_"))
            && cached.iter().any(|f| f.starts_with("cached_account_")),
        "{cached:?}"
    );
    handle.stop().await;
    let _ = task.await;

    // Pebble gone: a restart serves the cached certificate at once.
    drop(children);
    let app = Application::build(acme_config(
        data.path(),
        saksi_port,
        directory_port,
        &ca_path,
    ))
    .await
    .expect("server restarts");
    let handle = app.handle();
    let task = tokio::spawn(app.run_until_stopped());
    let served = healthz_over_acme(saksi_port, &root).await;
    assert!(
        served.is_ok(),
        "the cached certificate is served: {served:?}"
    );
    handle.stop().await;
    let _ = task.await;
}
