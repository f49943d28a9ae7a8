//! Scenario (c): 100,000 stored documents with 100 in use. Server RSS, and the time to open a
//! cold 1,000-change document.
//!
//! Seeding 100,000 documents through the sync protocol would take longer than the benchmark
//! itself, so they are written through the server's own storage layer (`saksi_server::storage`,
//! the code the server uses), as the server leaves them after a sync: one compacted snapshot per
//! document. Every document is a court observation in one case whose only member is the
//! signed-in monitor. Most are a small record (its first two changes); `cold` of them (200, or
//! 50 with `--quick`) hold 1,000 more changes (the edits of scenario (b)). Then the real
//! `saksi` binary serves that data directory.
//!
//! Measured on one connection of that monitor's device: open 100 small documents and keep them
//! in use (RSS afterwards), then open the cold 1,000-change documents one after another: the
//! time from the `request` until the device holds every change (its heads equal the document's
//! heads). The device advertises the V2 sync message format, as automerge and the PWA do, so
//! the server may answer with the whole compressed document; the device's time to decode that
//! (automerge `load`) is included, as on a phone. "Cold" means not in the server's memory; the SQLite file may be in the operating
//! system's page cache, as it is on a server that has been running. Then the server's peak RSS
//! over the whole scenario (`VmHWM`, from start).
//!
//! The peer server is not run here: it keeps documents as files in its own storage-adapter
//! layout, with nothing to seed them with short of the protocol.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::{Context as _, Result, bail};
use saksi_client::SyncSocket;
use saksi_server::storage::prelude::*;
use saksi_server::storage::{DocumentRow, DocumentWrite};
use saksi_shared::DocumentId;
use saksi_shared::automerge::{ActorId, Automerge};
use saksi_shared::protocol::{Message, PROTOCOL_VERSION, PeerMetadata};
use saksi_shared::record::Record;
use saksi_testkit::ms;

use crate::Options;
use crate::light::LightDoc;
use crate::proc::{Kind, Server};
use crate::reconnect::offline_edits;
use crate::report::{Report, Target};
use crate::setup;
use crate::storm::Target as Reach;
use crate::workload::{Device, Rng, START, Table, base_documents};

/// Writes `small` copies of `small_doc` and `big` copies of `big_doc` under fresh ids; returns
/// the ids (small first). Many writer threads, so that the storage's writer commits them in
/// batches.
fn seed(
    dir: &std::path::Path,
    small_doc: &[u8],
    big_doc: &[u8],
    small: usize,
    big: usize,
) -> Result<(Vec<DocumentId>, Vec<DocumentId>)> {
    let storage = setup::open_storage(dir)?;
    let meta = Record::load(small_doc, ActorId::random())
        .map_err(|e| anyhow::anyhow!("{e}"))?
        .meta()
        .context("record meta")?;
    let mut rng = Rng::new(41);
    let small_ids: Vec<DocumentId> = (0..small)
        .map(|_| DocumentId::from_bytes(rng.uuid16()))
        .collect();
    let big_ids: Vec<DocumentId> = (0..big)
        .map(|_| DocumentId::from_bytes(rng.uuid16()))
        .collect();
    let jobs: Vec<(DocumentId, &[u8])> = small_ids
        .iter()
        .map(|id| (*id, small_doc))
        .chain(big_ids.iter().map(|id| (*id, big_doc)))
        .collect();
    let threads = 32;
    let chunk = jobs.len().div_ceil(threads).max(1);
    std::thread::scope(|scope| -> Result<()> {
        let mut handles = Vec::new();
        for part in jobs.chunks(chunk) {
            let (storage, meta) = (storage.clone(), meta.clone());
            handles.push(scope.spawn(move || -> Result<()> {
                for (i, (id, bytes)) in part.iter().enumerate() {
                    let row = DocumentRow {
                        id: *id,
                        kind: meta.kind.as_str().to_owned(),
                        case_id: meta.case,
                        created_by: meta.created_by.clone(),
                        title: String::new(),
                        status: meta.status.as_str().to_owned(),
                        has_conflicts: false,
                        created_at: START + ms(i as u64),
                        updated_at: START + ms(i as u64),
                        consent_withdrawn: false,
                    };
                    storage.append_changes(DocumentWrite {
                        row,
                        changes: Vec::new(),
                        new_actors: Vec::new(),
                        files: None,
                    })?;
                    storage.compact(id, bytes)?;
                }
                Ok(())
            }));
        }
        for handle in handles {
            handle.join().expect("seeding thread")?;
        }
        Ok(())
    })?;
    storage.close();
    Ok((small_ids, big_ids))
}

/// One device's sync connection.
struct Peer {
    socket: SyncSocket,
    me: String,
    server: String,
}

impl Peer {
    async fn connect(target: &Reach, device: &Device) -> Result<Peer> {
        let mut socket = target.open(device.token.as_deref()).await?;
        let me = format!("{}-cold", device.peer_id);
        socket
            .send(
                Message::Join {
                    sender_id: me.clone().into(),
                    supported_protocol_versions: vec![PROTOCOL_VERSION.to_owned()],
                    metadata: Some(PeerMetadata {
                        storage_id: Some(format!("{me}-storage")),
                        is_ephemeral: false,
                    }),
                }
                .encode(),
            )
            .await?;
        let frame = socket
            .recv_timeout(Duration::from_secs(30))
            .await?
            .context("closed before `peer`")?;
        match Message::decode(&frame)? {
            Message::Peer { sender_id, .. } => Ok(Peer {
                socket,
                me,
                server: sender_id.to_string(),
            }),
            other => bail!("expected `peer`, got `{}`", other.type_name()),
        }
    }

    /// Requests `ids` (all at once) and syncs until each is complete; returns the time each
    /// took from the request.
    async fn open(&mut self, ids: &[DocumentId], table: &Arc<Table>) -> Result<Vec<Duration>> {
        let mut docs: HashMap<DocumentId, (LightDoc, Instant, Option<Duration>)> = HashMap::new();
        for id in ids {
            let mut doc = LightDoc::new(table.clone(), &[]).advertise_v2();
            let data = doc.generate().context("a first message")?;
            let frame = Message::Request {
                sender_id: self.me.clone().into(),
                target_id: self.server.clone().into(),
                document_id: *id,
                data,
            }
            .encode();
            let at = Instant::now();
            self.socket.send(frame).await?;
            docs.insert(*id, (doc, at, None));
        }
        let mut left = ids.len();
        while left > 0 {
            let frame = self
                .socket
                .recv_timeout(Duration::from_secs(60))
                .await?
                .context("the server closed the connection")?;
            let (document_id, data) = match Message::decode(&frame)? {
                Message::Sync {
                    document_id, data, ..
                } => (document_id, data),
                Message::DocUnavailable { document_id, .. } => {
                    bail!("document {document_id} unavailable")
                }
                Message::Error { message, .. } => bail!("server error: {message}"),
                _ => continue,
            };
            let Some((doc, at, done)) = docs.get_mut(&document_id) else {
                continue;
            };
            let received = doc.receive(&data).map_err(|e| anyhow::anyhow!(e))?;
            if received.unknown > 0 {
                bail!("changes the document does not have");
            }
            if done.is_none() && doc.converged() {
                *done = Some(at.elapsed());
                left -= 1;
            }
            if let Some(reply) = doc.generate() {
                let frame = Message::Sync {
                    sender_id: self.me.clone().into(),
                    target_id: self.server.clone().into(),
                    document_id,
                    data: reply,
                }
                .encode();
                self.socket.send(frame).await?;
            }
        }
        Ok(ids
            .iter()
            .map(|id| docs[id].2.expect("every document done"))
            .collect())
    }
}

#[derive(Debug, Clone, Copy)]
struct ColdResult {
    rss_in_use: u64,
    peak_rss: u64,
    p50_ms: f64,
    p99_ms: f64,
    /// Server CPU (user + system) per cold open.
    cpu_ms: f64,
}

fn percentile_ms(sorted: &[Duration], p: f64) -> f64 {
    if sorted.is_empty() {
        return f64::NAN;
    }
    let rank = ((p / 100.0) * sorted.len() as f64).ceil() as usize;
    sorted[rank.clamp(1, sorted.len()) - 1].as_secs_f64() * 1000.0
}

pub async fn scenario(options: &Options, report: &mut Report) -> Result<()> {
    let stored = options.stored;
    let big = if options.quick { 50 } else { 200 }.min(stored);
    let in_use = 100.min(stored - big);
    println!(
        "\n== (c) {stored} stored documents, {in_use} in use, cold opens of {big} 1,000-change documents"
    );
    let dir = setup::fresh_dir(&options.work, "c-data")?;
    let (names, case) = setup::accounts_and_case(&dir, 1)?;
    let server = Server::saksi(&options.saksi, &dir, &[])?;
    let client = setup::saksi_client(&server)?;
    let device = setup::login_all(&client, &names, 43).await?.remove(0);
    server.stop(Duration::from_secs(30));

    let mut rng = Rng::new(47);
    let (ids, base) = base_documents(&mut rng, case, 1, &device);
    let small_doc = base[0].clone();
    let big_doc = offline_edits(ids[0], base[0].clone(), &device, 1_000).edited;
    let small_table = Arc::new(Table::from_doc(&Automerge::load(&small_doc)?));
    let big_table = Arc::new(Table::from_doc(&Automerge::load(&big_doc)?));
    let t = Instant::now();
    let seed_dir = dir.clone();
    let (small_ids, big_ids) = tokio::task::spawn_blocking(move || {
        seed(&seed_dir, &small_doc, &big_doc, stored - big, big)
    })
    .await??;
    let db_bytes: u64 = std::fs::read_dir(&dir)?
        .filter_map(|e| e.ok()?.metadata().ok())
        .map(|m| m.len())
        .sum();
    println!(
        "saksi-bench: seeded {stored} documents ({} changes each in {big}) in {:.1} s; data directory {:.0} MB",
        big_table.len(),
        t.elapsed().as_secs_f64(),
        db_bytes as f64 / 1e6
    );

    let mut results = Vec::new();
    for r in 0..options.runs {
        crate::quiet_machine(options, report).await;
        let server = Server::saksi(&options.saksi, &dir, &[])?;
        let target = Reach {
            kind: Kind::Saksi,
            client: setup::saksi_client(&server)?,
        };
        let mut peer = Peer::connect(&target, &device).await?;
        peer.open(&small_ids[..in_use], &small_table).await?;
        let rss_in_use = server.usage()?.rss;
        let mut times = Vec::with_capacity(big_ids.len());
        let cpu_before = server.usage()?.cpu_seconds;
        for id in &big_ids {
            times.extend(peer.open(std::slice::from_ref(id), &big_table).await?);
        }
        let cpu_ms = (server.usage()?.cpu_seconds - cpu_before) * 1e3 / big_ids.len() as f64;
        times.sort();
        let result = ColdResult {
            cpu_ms,
            rss_in_use,
            peak_rss: server.usage()?.peak_rss,
            p50_ms: percentile_ms(&times, 50.0),
            p99_ms: percentile_ms(&times, 99.0),
        };
        println!("saksi-bench: (c) run {} Saksi: {result:?}", r + 1);
        peer.socket.close().await;
        server.stop(Duration::from_secs(60));
        results.push(result);
    }
    let scenario = format!("(c) {stored} stored docs, {in_use} in use");
    let get = |f: fn(&ColdResult) -> f64| -> Vec<f64> { results.iter().map(f).collect() };
    report.row(
        &scenario,
        "server RSS with the documents in use",
        "MB",
        &get(|r| r.rss_in_use as f64 / 1e6),
        &[],
        None,
    );
    report.row(
        &scenario,
        "server peak RSS (start to end, cold opens included)",
        "MB",
        &get(|r| r.peak_rss as f64 / 1e6),
        &[],
        Some(Target::Below(256.0)),
    );
    report.row(
        &scenario,
        &format!("cold open of a {}-change document, p50", big_table.len()),
        "ms",
        &get(|r| r.p50_ms),
        &[],
        None,
    );
    report.row(
        &scenario,
        &format!("cold open of a {}-change document, p99", big_table.len()),
        "ms",
        &get(|r| r.p99_ms),
        &[],
        Some(Target::Below(50.0)),
    );
    report.row(
        &scenario,
        "server CPU per cold open",
        "ms",
        &get(|r| r.cpu_ms),
        &[],
        None,
    );
    report.note(format!(
        "{scenario}: Saksi only (the peer server's file storage cannot be seeded except through \
         the protocol). Cold opens: {big} documents of {} changes, one after another; p50/p99 \
         per run, medians over runs.",
        big_table.len()
    ));
    Ok(())
}
