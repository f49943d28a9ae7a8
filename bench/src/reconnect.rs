//! Scenario (b): one device reconnects after 1,000 offline edits on one document. Bytes on the
//! wire against the compressed size of those changes.
//!
//! The server holds the base document (uploaded before). The device, a full [`Repo`] as the
//! PWA uses, makes 1,000 edits with the [`Record`] API (typing into the narrative and the
//! evidence notes, now and then a scalar field; one automerge change each), then connects and
//! syncs until the server has every change. The meter counts the TCP payload each way from
//! the first byte of the connection (Saksi: TLS handshake, HTTP upgrade with the bearer token,
//! WebSocket framing; the peer server: plain WebSocket).
//!
//! "Compressed size of those changes", the yardstick: the 1,000 change chunks concatenated
//! and compressed with DEFLATE (flate2, best). Reported too: their raw size, and how much
//! automerge's own compressed document format grows by them (`save()` of the whole
//! document minus `save()` of the base).

use std::io::Write as _;
use std::time::Duration;

use anyhow::{Context as _, Result};
use saksi_client::{Client, Meter, Session, SyncClient};
use saksi_shared::automerge::ActorId;
use saksi_shared::record::{FieldInput, Record};
use saksi_shared::sync::Repo;
use saksi_shared::{DocumentId, Role};
use saksi_testkit::{at, ms};
use std::sync::Arc;

use crate::Options;
use crate::proc::{Kind, Server, copy_dir, free_port};
use crate::report::{Report, Target};
use crate::setup;
use crate::workload::{Device, Rng, START, base_documents};

/// What one reconnect measured.
#[derive(Debug, Clone, Copy, Default)]
pub struct ReconnectResult {
    pub wire_up: u64,
    pub wire_down: u64,
    pub seconds: f64,
}

/// The offline edits and the yardsticks.
pub struct Edits {
    pub id: DocumentId,
    pub edited: Vec<u8>,
    pub raw: usize,
    pub deflated: usize,
    pub doc_growth: usize,
}

/// `n` offline edits by `device` on the base document `base`.
pub fn offline_edits(id: DocumentId, base: Vec<u8>, device: &Device, n: usize) -> Edits {
    let editor = device.editor();
    let mut record = Record::load(&base, ActorId::from(device.actor)).expect("base loads");
    let base_heads = record.heads();
    let mut rng = Rng::new(23);
    for j in 0..n {
        let now = START + ms(120_000 + j as u64 * 2_000);
        let result = match j % 20 {
            19 => record.set_field(
                "case_number",
                FieldInput::Text(format!("លេខ {}/២០២៦", rng.below(500))),
                &editor,
                now,
            ),
            7 => record.splice_text("evidence_notes", 0, 0, "សាក្សីទី ២ ", &editor, now),
            _ => record.splice_text("narrative", 0, 0, "ចៅក្រមសួរ ", &editor, now),
        };
        result.expect("a valid edit");
    }
    let changes = record.doc().get_changes(&base_heads);
    assert_eq!(changes.len(), n, "one change per edit");
    let mut all = Vec::new();
    for change in &changes {
        all.extend_from_slice(change.raw_bytes());
    }
    let mut encoder = flate2::write::DeflateEncoder::new(Vec::new(), flate2::Compression::best());
    encoder.write_all(&all).expect("in memory");
    let deflated = encoder.finish().expect("in memory").len();
    let edited = record.save();
    Edits {
        id,
        doc_growth: edited.len().saturating_sub(base.len()),
        edited,
        raw: all.len(),
        deflated,
    }
}

async fn reconnect(
    kind: Kind,
    client: &Client,
    device: &Device,
    edits: &Edits,
) -> Result<ReconnectResult> {
    let meter = Arc::new(Meter::default());
    let client = client.clone().with_meter(meter.clone());
    let mut repo = Repo::new(format!("{}-phone", device.peer_id).into(), device.actor);
    repo.add_document(edits.id, &edits.edited, None)
        .map_err(|e| anyhow::anyhow!("{e}"))?;
    let started = std::time::Instant::now();
    let mut sync = match kind {
        Kind::Saksi => {
            let session = Session {
                client,
                token: device.token.clone().context("a token")?,
                device_id: device.device_id.clone(),
                username: device.username.clone(),
                role: Role::Monitor,
                expires_at: at(0),
            };
            session.sync(repo).await?
        }
        Kind::Node => SyncClient::start(client.open_socket("/", &[]).await?, repo).await?,
    };
    sync.sync_all(Duration::from_secs(120)).await?;
    let seconds = started.elapsed().as_secs_f64();
    let result = ReconnectResult {
        wire_up: meter.sent(),
        wire_down: meter.received(),
        seconds,
    };
    sync.disconnect().await;
    Ok(result)
}

pub async fn scenario(options: &Options, report: &mut Report) -> Result<()> {
    const EDITS: usize = 1_000;
    println!("\n== (b) reconnect after {EDITS} offline edits on one document");
    let template = setup::fresh_dir(&options.work, "b-template")?;
    let (names, case) = setup::accounts_and_case(&template, 1)?;
    let server = Server::saksi(&options.saksi, &template, &[])?;
    let client = setup::saksi_client(&server)?;
    let devices = setup::login_all(&client, &names, 31).await?;
    let device = devices[0].clone();
    let mut rng = Rng::new(29);
    let (docs, base) = base_documents(&mut rng, case, 1, &device);
    let uploads = vec![(docs[0], base[0].clone())];
    setup::upload(&server, &client, &device, &uploads).await?;
    server.stop(Duration::from_secs(30));
    let edits = offline_edits(docs[0], base[0].clone(), &device, EDITS);
    println!(
        "saksi-bench: {EDITS} changes: {} B raw, {} B deflated, automerge document grows by {} B",
        edits.raw, edits.deflated, edits.doc_growth
    );

    let (mut saksi, mut node) = (Vec::new(), Vec::new());
    for r in 0..options.runs {
        crate::quiet_machine(options, report).await;
        let dir = setup::fresh_dir(&options.work, "b-saksi")?;
        copy_dir(&template, &dir)?;
        let server = Server::saksi(&options.saksi, &dir, &[])?;
        let client = setup::saksi_client(&server)?;
        let result = reconnect(Kind::Saksi, &client, &device, &edits).await?;
        println!("saksi-bench: (b) run {} Saksi: {result:?}", r + 1);
        server.stop(Duration::from_secs(30));
        saksi.push(result);
        if let Some(node_dir) = &options.node_dir {
            let dir = setup::fresh_dir(&options.work, "b-node")?;
            let server = Server::node(node_dir, &dir, free_port()?)?;
            let client = Client::plain(server.addr);
            setup::upload(&server, &client, &device, &uploads).await?;
            let result = reconnect(Kind::Node, &client, &device, &edits).await?;
            println!("saksi-bench: (b) run {} Node: {result:?}", r + 1);
            server.stop(Duration::from_secs(10));
            node.push(result);
        }
    }
    let scenario = format!("(b) reconnect after {EDITS} offline edits");
    let kb = |v: &[ReconnectResult], f: fn(&ReconnectResult) -> u64| -> Vec<f64> {
        v.iter().map(|r| f(r) as f64 / 1e3).collect()
    };
    report.note(format!(
        "{scenario}: the {EDITS} changes are {} B raw, {} B compressed with DEFLATE (the \
         yardstick of the target), and grow automerge's compressed document by {} B.",
        edits.raw, edits.deflated, edits.doc_growth
    ));
    report.row(
        &scenario,
        "wire bytes up (device → server)",
        "kB",
        &kb(&saksi, |r| r.wire_up),
        &kb(&node, |r| r.wire_up),
        None,
    );
    report.row(
        &scenario,
        "wire bytes down (server → device)",
        "kB",
        &kb(&saksi, |r| r.wire_down),
        &kb(&node, |r| r.wire_down),
        None,
    );
    let per = |v: &[ReconnectResult]| -> Vec<f64> {
        v.iter()
            .map(|r| (r.wire_up + r.wire_down) as f64 / edits.deflated as f64)
            .collect()
    };
    report.row(
        &scenario,
        "wire bytes (both ways) ÷ DEFLATE size of the changes",
        "×",
        &per(&saksi),
        &per(&node),
        Some(Target::AtMost(1.5)),
    );
    let up = |v: &[ReconnectResult]| -> Vec<f64> {
        v.iter()
            .map(|r| r.wire_up as f64 / edits.deflated as f64)
            .collect()
    };
    report.row(
        &scenario,
        "wire bytes up ÷ DEFLATE size of the changes",
        "×",
        &up(&saksi),
        &up(&node),
        None,
    );
    report.row(
        &scenario,
        "reconnect until the server has every change",
        "ms",
        &saksi.iter().map(|r| r.seconds * 1e3).collect::<Vec<_>>(),
        &node.iter().map(|r| r.seconds * 1e3).collect::<Vec<_>>(),
        None,
    );
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn offline_edits_are_one_change_each_and_compress() {
        let device = Device {
            username: "monitor-0001".into(),
            device_id: "device-1".into(),
            token: None,
            actor: [7; 16],
            peer_id: "peer-1".into(),
        };
        let mut rng = Rng::new(1);
        let (docs, base) = base_documents(&mut rng, DocumentId::from_bytes([3; 16]), 1, &device);
        let edits = offline_edits(docs[0], base[0].clone(), &device, 40);
        assert!(edits.deflated < edits.raw);
        assert!(edits.doc_growth > 0 && edits.edited.len() > base[0].len());
    }
}
