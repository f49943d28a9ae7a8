//! Preparing the servers: accounts, the case, logins, and the base documents.

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use anyhow::{Context as _, Result};
use saksi_client::{Client, Session, SyncClient};
use saksi_server::accounts::Passwords;
use saksi_server::storage::prelude::*;
use saksi_shared::sync::Repo;
use saksi_shared::{DocumentId, Role};
use saksi_testkit::at;
use tokio::sync::Semaphore;

use crate::proc::Server;
use crate::workload::{Device, Rng, START};

/// The password of every simulated account (fictional).
pub const PASSWORD: &str = "bench password ពាក្យសម្ងាត់ 7";

/// Opens the SQLite storage of a Saksi data directory.
pub fn open_storage(dir: &Path) -> Result<Arc<saksi_server::storage::sqlite::SqliteStorage>> {
    let config = saksi_server::config::Config {
        data_dir: dir.to_owned(),
        ..Default::default()
    };
    Ok(saksi_server::app::open_storage(&config)?)
}

/// Creates `n` monitor accounts (`monitor-0001`, ...) and a case they all belong to. Password
/// hashes are made once (Argon2 with the server's default cost) and reused.
pub fn accounts_and_case(dir: &Path, n: usize) -> Result<(Vec<String>, DocumentId)> {
    let storage = open_storage(dir)?;
    let hash = Passwords::new(19_456, 2)
        .hash(PASSWORD)
        .map_err(|e| anyhow::anyhow!("hash: {e}"))?;
    let case = saksi_server::admin::create_case(&*storage, "ករណី ក-៧ (bench)", "admin", START)
        .map_err(|e| anyhow::anyhow!("case: {e}"))?;
    let mut names = Vec::with_capacity(n);
    for i in 0..n {
        let name = format!("monitor-{i:04}");
        let user = storage.create_user(&name, Role::Monitor, &hash, START)?;
        storage.add_member(&case, user.id)?;
        names.push(name);
    }
    storage.close();
    Ok((names, case))
}

/// The TLS client for a Saksi server (trusting its local CA).
pub fn saksi_client(server: &Server) -> Result<Client> {
    let cert = std::fs::read(server.data_dir.join("tls/ca.pem")).context("certificate")?;
    Ok(Client::new(server.addr, "localhost", &cert)?)
}

/// Signs every account in (one device each), a few at a time: Argon2 is deliberately slow.
pub async fn login_all(client: &Client, names: &[String], seed: u64) -> Result<Vec<Device>> {
    let permits = Arc::new(Semaphore::new(4));
    let mut tasks = Vec::with_capacity(names.len());
    for name in names {
        let (client, name, permits) = (client.clone(), name.clone(), permits.clone());
        tasks.push(tokio::spawn(async move {
            let _permit = permits.acquire_owned().await.expect("semaphore");
            client.login(&name, PASSWORD, "bench phone").await
        }));
    }
    let mut rng = Rng::new(seed);
    let mut devices = Vec::with_capacity(names.len());
    for (i, task) in tasks.into_iter().enumerate() {
        let session = task
            .await?
            .with_context(|| format!("login of {}", names[i]))?;
        devices.push(Device {
            username: session.username.clone(),
            device_id: session.device_id.clone(),
            token: Some(session.token.clone()),
            actor: rng.bytes16(),
            peer_id: format!("bench-{i:04}"),
        });
    }
    Ok(devices)
}

/// Uploads documents through an ordinary client (Saksi: signed in as `device`).
pub async fn upload(
    server: &Server,
    client: &Client,
    device: &Device,
    docs: &[(DocumentId, Vec<u8>)],
) -> Result<()> {
    let mut repo = Repo::new(format!("{}-upload", device.peer_id).into(), device.actor);
    for (id, bytes) in docs {
        repo.add_document(*id, bytes, None)
            .map_err(|e| anyhow::anyhow!("{e}"))?;
    }
    let mut sync = match server.kind {
        crate::proc::Kind::Saksi => {
            let session = Session {
                client: client.clone(),
                token: device.token.clone().context("a token")?,
                device_id: device.device_id.clone(),
                username: device.username.clone(),
                role: Role::Monitor,
                expires_at: at(0),
            };
            session.sync(repo).await?
        }
        crate::proc::Kind::Node => {
            let socket = client.open_socket("/", &[]).await?;
            SyncClient::start(socket, repo).await?
        }
    };
    sync.sync_all(Duration::from_secs(120)).await?;
    // The peer server saves with a delay (automerge-repo debounces storage writes).
    tokio::time::sleep(Duration::from_millis(300)).await;
    sync.disconnect().await;
    Ok(())
}

/// A scratch directory under `root`, emptied first.
pub fn fresh_dir(root: &Path, name: &str) -> Result<PathBuf> {
    let dir = root.join(name);
    if dir.exists() {
        std::fs::remove_dir_all(&dir)?;
    }
    std::fs::create_dir_all(&dir)?;
    Ok(dir)
}
