//! Scenario (e): attached files. N phones upload a file of M MB each at once through the tus
//! endpoints, in 1 MiB requests as the PWA sends them: throughput, and the server's peak RSS
//! above what it held idle. Then one phone's connection drops in the middle of a request
//! halfway through its file: how many bytes it sends again. Then a coordinator downloads the
//! case archive (every file above in one ZIP, built as it is sent): the server's peak RSS above
//! idle meanwhile, which must not grow with the archive. Then, in headless Chromium
//! (`bench/files.mjs`), the page's extra memory while a 100 MB file is hashed and encrypted
//! into the phone's store.
//!
//! Saksi only: the peer server has no attachments.

use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::{Context as _, Result, bail};
use saksi_client::Session;
use saksi_shared::attachment::NewAttachment;
use saksi_shared::catalogue::RecordKind;
use saksi_shared::sync::Repo;
use saksi_shared::{DocumentId, Role};
use saksi_testkit::ms;
use tokio::io::AsyncWriteExt as _;

use crate::Options;
use crate::proc::{Server, json_list, node_json, reset_peak};
use crate::report::{Report, Target};
use crate::setup::{self, PASSWORD};
use crate::workload::{Rng, START};

/// Bytes per upload request, as the PWA sends them.
const PIECE: usize = 1 << 20;

/// A file of `mb` MB whose bytes (and so SHA-256) are the phone's own.
fn file_of(i: usize, mb: usize) -> Vec<u8> {
    let mut rng = Rng::new(1_000 + i as u64);
    let mut bytes = vec![0u8; mb * 1_000_000];
    for chunk in bytes.chunks_mut(16) {
        let r = rng.bytes16();
        chunk.copy_from_slice(&r[..chunk.len()]);
    }
    bytes
}

fn sha256(bytes: &[u8]) -> String {
    use sha2::Digest as _;
    sha2::Sha256::digest(bytes)
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

/// Creates a court observation naming `bytes` as a file, synced to the server.
async fn record_naming(session: &Session, case: DocumentId, bytes: &[u8], seed: u64) -> Result<()> {
    let mut rng = Rng::new(seed);
    let editor = session.editor();
    let mut repo = Repo::new(format!("bench-files-{seed}").into(), rng.bytes16());
    let doc = repo.create(
        RecordKind::CourtObservation,
        &case,
        &editor,
        START,
        rng.bytes16(),
    );
    let file = NewAttachment {
        id: rng.bytes16().iter().map(|b| format!("{b:02x}")).collect(),
        sha256: sha256(bytes),
        size: bytes.len() as u64,
        media_type: "audio/webm".into(),
        name: "សក្ខីកម្ម.webm".into(),
        captured_at: START,
        metadata: None,
        caption: String::new(),
    };
    repo.edit(&doc, |r| r.add_attachment(&file, &editor, START + ms(1)))
        .context("the record")?
        .map_err(|e| anyhow::anyhow!("attach: {e}"))?;
    let mut sync = session.sync(repo).await?;
    sync.sync_all(Duration::from_secs(60)).await?;
    sync.disconnect().await;
    Ok(())
}

pub async fn scenario(options: &Options, report: &mut Report) -> Result<()> {
    let (phones, mb) = if options.quick { (5, 10) } else { (20, 50) };
    println!("\n== (e) files: {phones} phones upload {mb} MB each at once; a drop at 50 %");
    let dir = setup::fresh_dir(&options.work, "e-data")?;
    let (names, case) = setup::accounts_and_case(&dir, phones + 1)?;
    let server = Server::saksi(&options.saksi, &dir, &[])?;
    let client = setup::saksi_client(&server)?;
    let mut sessions = Vec::new();
    for name in &names {
        sessions.push(client.login(name, PASSWORD, "bench phone").await?);
    }
    let mut seconds = Vec::new();
    let mut rss_above_idle = Vec::new();
    let mut cpu = Vec::new();
    // The server's resident memory before any upload: each run's peak is measured against it,
    // so memory a run keeps (the allocator's caches) counts in the runs after it.
    let mut base_rss = None;
    for run in 0..options.runs {
        // Files of their own each run (the server keeps what it has), named by records first.
        let files: Vec<Arc<Vec<u8>>> = (0..phones)
            .map(|i| Arc::new(file_of(run * 100 + i, mb)))
            .collect();
        for (i, (session, bytes)) in sessions.iter().zip(&files).enumerate() {
            record_naming(session, case, bytes, (run * 100 + i) as u64).await?;
        }
        crate::quiet_machine(options, report).await;
        let idle = server.usage()?;
        let base = *base_rss.get_or_insert(idle.rss);
        reset_peak(server.pid());
        let started = Instant::now();
        let mut tasks = Vec::new();
        for (session, bytes) in sessions.iter().zip(&files) {
            let (session, bytes) = (session.clone(), bytes.clone());
            tasks.push(tokio::spawn(async move {
                session.upload(&sha256(&bytes), &bytes, PIECE, 3).await
            }));
        }
        for task in tasks {
            task.await?.context("an upload")?;
        }
        let took = started.elapsed().as_secs_f64();
        let after = server.usage()?;
        let peak_above = after.peak_rss.saturating_sub(base) as f64 / 1e6;
        println!(
            "saksi-bench: (e) run {}: {phones} × {mb} MB in {took:.1} s, peak RSS {:.1} MB above \
             the first idle {:.1} MB (idle before this run {:.1} MB)",
            run + 1,
            peak_above,
            base as f64 / 1e6,
            idle.rss as f64 / 1e6
        );
        seconds.push(took);
        rss_above_idle.push(peak_above);
        cpu.push(after.cpu_seconds - idle.cpu_seconds);
    }
    let scenario = format!("(e) {phones} phones × {mb} MB uploads at once");
    let total_mb = (phones * mb) as f64;
    let throughput: Vec<f64> = seconds.iter().map(|s| total_mb / s).collect();
    report.row(
        &scenario,
        "time until every file is stored and verified",
        "s",
        &seconds,
        &[],
        None,
    );
    report.row(&scenario, "throughput", "MB/s", &throughput, &[], None);
    report.row(&scenario, "server CPU", "s", &cpu, &[], None);
    report.row(
        &scenario,
        "server peak RSS above idle (before the first upload)",
        "MB",
        &rss_above_idle,
        &[],
        Some(Target::Below(100.0)),
    );

    // A drop at 50 %: the last phone sends half its file in 1 MiB requests, then a request
    // that breaks off in its middle, then continues from what the server has.
    let session = &sessions[phones];
    let bytes = &file_of(999, mb);
    record_naming(session, case, bytes, 999).await?;
    let sha = sha256(bytes);
    let start = session.upload_start(&sha, bytes.len() as u64).await?;
    let half = bytes.len() / 2;
    let mut sent = 0usize;
    let mut offset = 0usize;
    while offset + PIECE <= half {
        let res = session
            .upload_patch(
                &start.location,
                offset as u64,
                &bytes[offset..offset + PIECE],
            )
            .await?;
        if res.status != 204 {
            bail!("upload refused: {} {}", res.status, res.text());
        }
        sent += PIECE;
        offset += PIECE;
    }
    {
        let mut stream = session.client.connect().await?;
        let head = format!(
            "PATCH {} HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\nAuthorization: Bearer {}\r\n\
             Tus-Resumable: 1.0.0\r\nContent-Type: application/offset+octet-stream\r\n\
             Upload-Offset: {offset}\r\nContent-Length: {PIECE}\r\n\r\n",
            start.location, session.token
        );
        stream.write_all(head.as_bytes()).await?;
        stream.write_all(&bytes[offset..offset + PIECE / 2]).await?;
        stream.flush().await?;
        tokio::time::sleep(Duration::from_millis(300)).await;
        sent += PIECE / 2;
        // The connection drops.
    }
    tokio::time::sleep(Duration::from_millis(300)).await;
    let resume = session.upload_offset(&start.location).await? as usize;
    let mut offset = resume;
    while offset < bytes.len() {
        let end = (offset + PIECE).min(bytes.len());
        let res = session
            .upload_patch(&start.location, offset as u64, &bytes[offset..end])
            .await?;
        if res.status != 204 {
            bail!("upload refused: {} {}", res.status, res.text());
        }
        sent += end - offset;
        offset = end;
    }
    let again = sent.saturating_sub(bytes.len()) as f64;
    println!(
        "saksi-bench: (e) drop at 50 %: resumed at {resume} of {} B; {sent} B sent for {} B",
        bytes.len(),
        bytes.len()
    );
    report.row(
        &format!("(e) one {mb} MB upload, the connection drops at 50 %"),
        "bytes sent again",
        "MiB",
        &[again / PIECE as f64],
        &[],
        Some(Target::AtMost(1.0)),
    );
    report.note(format!(
        "(e) a drop at 50 %: the broken request had sent {} KiB of its 1 MiB; the server kept \
         what arrived and the phone resumed at byte {resume}.",
        PIECE / 2 / 1024
    ));

    // The case archive: a coordinator downloads every file above as one ZIP.
    let storage = setup::open_storage(&dir)?;
    let hash = saksi_server::accounts::Passwords::new(19_456, 2)
        .hash(PASSWORD)
        .map_err(|e| anyhow::anyhow!("hash: {e}"))?;
    {
        use saksi_server::storage::prelude::*;
        for (name, role) in [
            ("coordinator-desk", Role::Coordinator),
            ("liaison-web", Role::Liaison),
        ] {
            let user = storage.create_user(name, role, &hash, START)?;
            storage.add_member(&case, user.id)?;
        }
    }
    storage.close();
    let desk = client
        .login("coordinator-desk", PASSWORD, "bench desk")
        .await?;
    archive(options, report, &server, &desk, case).await?;

    // The phone's memory while a 100 MB file is hashed and encrypted into its store.
    if let Some(script) = &options.files_script {
        let url = format!("https://127.0.0.1:{}", server.addr.port());
        let runs = options.runs.max(1).to_string();
        let args = [
            "--url",
            &url,
            "--user",
            "liaison-web",
            "--password",
            PASSWORD,
            "--mb",
            "100",
            "--runs",
            &runs,
        ];
        let v = node_json(script, &dir, args.map(str::to_owned).to_vec()).await?;
        println!("saksi-bench: (e) {v}");
        let list = |k: &str| json_list(&v, k);
        let scenario = "(e) PWA, headless Chromium, a 100 MB file";
        report.row(
            scenario,
            "renderer memory above the open record while it is hashed and encrypted",
            "MB",
            &list("extra_mb"),
            &[],
            Some(Target::Below(64.0)),
        );
        report.row(
            scenario,
            "time to hash, encrypt and store it",
            "s",
            &list("seconds"),
            &[],
            None,
        );
    } else {
        report.note("(e) PWA memory: not run (no --files-script; `cargo xtask bench` passes bench/files.mjs).");
    }
    server.stop(Duration::from_secs(30));
    Ok(())
}

/// A coordinator downloads the case archive (a ZIP of every file the case holds, built as it
/// is sent): its size, how long it takes, and the server's peak RSS above idle meanwhile. The
/// body is read to its end and counted, never kept.
async fn archive(
    options: &Options,
    report: &mut Report,
    server: &Server,
    desk: &Session,
    case: DocumentId,
) -> Result<()> {
    use tokio::io::AsyncReadExt as _;
    let mut peaks = Vec::new();
    let mut seconds = Vec::new();
    let mut size = 0u64;
    for run in 0..options.runs {
        crate::quiet_machine(options, report).await;
        let idle = server.usage()?;
        reset_peak(server.pid());
        let started = Instant::now();
        let mut stream = desk.client.connect().await?;
        let head = format!(
            "GET /console/export/archive.zip?case={case} HTTP/1.1\r\nHost: localhost\r\n\
             Connection: close\r\nCookie: saksi_session={}\r\n\r\n",
            desk.token
        );
        stream.write_all(head.as_bytes()).await?;
        stream.flush().await?;
        let mut buf = vec![0u8; 1 << 16];
        let mut first = Vec::new();
        let mut received = 0u64;
        loop {
            let n = match stream.read(&mut buf).await {
                Ok(0) => break,
                Ok(n) => n,
                // The server may close without TLS close_notify after `Connection: close`.
                Err(e) if e.kind() == std::io::ErrorKind::UnexpectedEof && received > 0 => break,
                Err(e) => return Err(e.into()),
            };
            if first.len() < 64 {
                first.extend_from_slice(&buf[..n.min(64)]);
            }
            received += n as u64;
        }
        let took = started.elapsed().as_secs_f64();
        if !first.starts_with(b"HTTP/1.1 200") {
            bail!(
                "the archive was refused: {}",
                String::from_utf8_lossy(&first)
            );
        }
        let after = server.usage()?;
        let peak = after.peak_rss.saturating_sub(idle.rss) as f64 / 1e6;
        println!(
            "saksi-bench: (e) archive run {}: {:.1} MB in {took:.1} s, peak RSS {peak:.1} MB \
             above idle {:.1} MB",
            run + 1,
            received as f64 / 1e6,
            idle.rss as f64 / 1e6
        );
        size = received;
        peaks.push(peak);
        seconds.push(took);
    }
    let scenario = format!(
        "(e) case archive of {:.0} MB to a coordinator",
        size as f64 / 1e6
    );
    report.row(&scenario, "time to download it", "s", &seconds, &[], None);
    report.row(
        &scenario,
        "server peak RSS above idle while it is sent",
        "MB",
        &peaks,
        &[],
        Some(Target::Below(64.0)),
    );
    Ok(())
}
