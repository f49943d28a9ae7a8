//! Attached files over the tus endpoints (S10, server side): who may upload and read a file,
//! every malformed or hostile upload, broken and slow connections, a full disk, a revoked
//! device, two phones with the same file, and the clean-up of files no record names.

use std::time::Duration;

use saksi_client::{ClientError, Session, SyncClient};
use saksi_server::accounts::random_16;
use saksi_shared::attachment::{Metadata, NewAttachment};
use saksi_shared::catalogue::RecordKind;
use saksi_shared::time::days;
use saksi_shared::{DocumentId, Role};
use saksi_testkit::at;
use sha2::{Digest, Sha256};
use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};

use crate::helpers::{TestServer, WAIT};

/// Bytes that look like a recording: deterministic, with Khmer text in them.
fn recording(len: usize, seed: u8) -> Vec<u8> {
    let text = "សំឡេងសក្ខីកម្មរបស់ម្តាយ ".as_bytes();
    (0..len)
        .map(|i| text[i % text.len()] ^ (seed.wrapping_mul(31)).wrapping_add((i / 997) as u8))
        .collect()
}

fn sha(bytes: &[u8]) -> String {
    hex::encode(Sha256::digest(bytes))
}

/// A server, a case with Sophea and Vanna (monitors) and Chenda (coordinator), Rith in another
/// case, and a court observation of Sophea's on her phone.
struct World {
    server: TestServer,
    sophea: Session,
    phone: SyncClient,
    doc: DocumentId,
    now: i64,
}

impl World {
    async fn new(adjust: impl FnOnce(&mut saksi_server::config::Config)) -> World {
        let server = TestServer::start_in(tempfile::tempdir().expect("dir"), adjust).await;
        server.user("sophea", Role::Monitor);
        server.user("vanna", Role::Monitor);
        server.user("chenda", Role::Coordinator);
        server.user("rith", Role::Monitor);
        let case = server.case("ករណី ឯកសារ", &["sophea", "vanna"]);
        server.case("ករណី ផ្សេង", &["rith"]);
        let (sophea, mut phone) = server.phone("sophea").await;
        let doc = phone.repo.create(
            RecordKind::CourtObservation,
            &case,
            &sophea.editor(),
            at(1_000),
            random_16(),
        );
        phone.sync_all(WAIT).await.expect("record stored");
        World {
            server,
            sophea,
            phone,
            doc,
            now: 2_000,
        }
    }

    /// Sophea's record names `bytes` as a file; synced. Returns its SHA-256.
    async fn attach(&mut self, bytes: &[u8], name: &str, media_type: &str) -> String {
        self.now += 1_000;
        let file = NewAttachment {
            id: hex::encode(random_16()),
            sha256: sha(bytes),
            size: bytes.len() as u64,
            media_type: media_type.into(),
            name: name.into(),
            captured_at: at(self.now),
            metadata: media_type
                .starts_with("image/")
                .then_some(Metadata::Removed),
            caption: String::new(),
        };
        let (editor, now) = (self.sophea.editor(), self.now);
        self.phone
            .repo
            .edit(&self.doc, |r| r.add_attachment(&file, &editor, at(now)))
            .expect("doc")
            .expect("attached");
        self.phone.sync_all(WAIT).await.expect("synced");
        file.sha256
    }
}

/// The refusal's status and error code.
fn refusal(e: ClientError) -> (u16, String) {
    match e {
        ClientError::Http { status, body } => {
            let json: serde_json::Value = serde_json::from_str(&body).expect("a JSON error");
            (
                status,
                json["error"].as_str().unwrap_or_default().to_owned(),
            )
        }
        other => panic!("not an HTTP refusal: {other}"),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn s10_a_named_file_uploads_in_pieces_and_reads_back_with_its_hash() {
    let mut w = World::new(|_| {}).await;
    let bytes = recording(700_000, 1);
    let hash = w.attach(&bytes, "សំឡេង ម្តាយ.webm", "audio/webm").await;
    let report = w
        .sophea
        .upload(&hash, &bytes, 64 * 1024, 0)
        .await
        .expect("uploaded");
    assert_eq!(report.bytes_sent, bytes.len() as u64, "nothing sent twice");
    // The team and the coordinators read it, with the hash the phone took at capture.
    for reader in ["vanna", "chenda", "sophea"] {
        let session = w.server.login(reader).await;
        let res = session.download(&hash).await.expect("download");
        assert_eq!(res.status, 200, "{reader}");
        assert_eq!(sha(&res.body), hash, "{reader}");
        assert_eq!(res.header("X-Saksi-Sha256"), Some(hash.as_str()));
        assert_eq!(res.header("Content-Type"), Some("audio/webm"));
        assert_eq!(res.header("X-Content-Type-Options"), Some("nosniff"));
        assert!(
            res.header("Content-Security-Policy")
                .is_some_and(|c| c.contains("sandbox"))
        );
    }
    // A range, as an audio player seeks.
    let res = w
        .sophea
        .client
        .request(
            "GET",
            &format!("/api/files/{hash}"),
            &[
                ("Authorization", &format!("Bearer {}", w.sophea.token)),
                ("Range", "bytes=1000-1999"),
            ],
            None,
        )
        .await
        .expect("range");
    assert_eq!(res.status, 206);
    assert_eq!(res.body, bytes[1000..2000]);
    // Anyone else gets exactly what a file that does not exist gets.
    let rith = w.server.login("rith").await;
    let theirs = rith.download(&hash).await.expect("answer");
    let unknown = rith.download(&sha(b"no such file")).await.expect("answer");
    assert_eq!(theirs.status, 404);
    assert_eq!((theirs.status, theirs.body), (unknown.status, unknown.body));
    // Starting it again changes nothing: the server has it.
    let again = w
        .sophea
        .upload_start(&hash, bytes.len() as u64)
        .await
        .expect("start");
    assert_eq!(again.offset, bytes.len() as u64);
    let storage = w.server.storage();
    let blob = storage.blob(&hash).expect("read").expect("held");
    assert_eq!(
        (blob.size, blob.uploaded_by.as_str()),
        (bytes.len() as u64, w.sophea.device_id.as_str())
    );
    assert_eq!(blob.unreferenced_since, None);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_hash_no_record_names_a_record_of_another_case_or_another_size_get_one_refusal() {
    let mut w = World::new(|_| {}).await;
    let bytes = recording(10_000, 2);
    let hash = w.attach(&bytes, "notice.jpg", "image/jpeg").await;
    let unnamed = refusal(
        w.sophea
            .upload_start(&sha(b"other"), 10_000)
            .await
            .expect_err("refused"),
    );
    assert_eq!(unnamed, (403, "not_named".into()));
    // Named only by a record of a case Rith is not in.
    let rith = w.server.login("rith").await;
    let other_case = refusal(rith.upload_start(&hash, 10_000).await.expect_err("refused"));
    assert_eq!(other_case, unnamed);
    // Named with another size.
    let size = refusal(
        w.sophea
            .upload_start(&hash, 10_001)
            .await
            .expect_err("refused"),
    );
    assert_eq!(size, unnamed);
    // Without tus, or without a hash.
    let res = w
        .sophea
        .client
        .request(
            "POST",
            "/api/files",
            &[
                ("Authorization", &format!("Bearer {}", w.sophea.token)),
                ("Upload-Length", "10000"),
            ],
            Some(b""),
        )
        .await
        .expect("answer");
    assert_eq!(res.status, 412);
    assert_eq!(res.header("Tus-Version"), Some("1.0.0"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn oversize_files_and_a_full_quota_are_refused_before_any_byte() {
    let mut w = World::new(|c| {
        c.max_file_bytes = 100_000;
        c.device_quota_bytes = 150_000;
    })
    .await;
    let big = recording(100_001, 3);
    let hash = w.attach(&big, "long.webm", "audio/webm").await;
    let (status, code) = refusal(
        w.sophea
            .upload_start(&hash, big.len() as u64)
            .await
            .expect_err("refused"),
    );
    assert_eq!((status, code.as_str()), (413, "file_too_large"));
    let first = recording(90_000, 4);
    let hash = w.attach(&first, "a.webm", "audio/webm").await;
    w.sophea
        .upload(&hash, &first, 32_768, 0)
        .await
        .expect("within the quota");
    let second = recording(90_000, 5);
    let hash = w.attach(&second, "b.webm", "audio/webm").await;
    let (status, code) = refusal(
        w.sophea
            .upload_start(&hash, second.len() as u64)
            .await
            .expect_err("refused"),
    );
    assert_eq!((status, code.as_str()), (413, "quota_exceeded"));
    assert!(
        w.server
            .storage()
            .upload_for(&w.sophea.device_id, &hash)
            .expect("read")
            .is_none()
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn overlapping_gapped_and_out_of_order_pieces_are_refused_with_the_offset() {
    let mut w = World::new(|_| {}).await;
    let bytes = recording(30_000, 6);
    let hash = w.attach(&bytes, "judgment.pdf", "application/pdf").await;
    let start = w.sophea.upload_start(&hash, 30_000).await.expect("start");
    assert_eq!(start.offset, 0);
    let res = w
        .sophea
        .upload_patch(&start.location, 0, &bytes[..10_000])
        .await
        .expect("patch");
    assert_eq!(
        (res.status, res.header("Upload-Offset")),
        (204, Some("10000"))
    );
    for (offset, what) in [
        (5_000, "overlapping"),
        (20_000, "gapped"),
        (0, "again from the start"),
    ] {
        let end = (offset + 10_000).min(30_000);
        let res = w
            .sophea
            .upload_patch(&start.location, offset as u64, &bytes[offset..end])
            .await
            .expect("answer");
        assert_eq!(
            (res.status, res.header("Upload-Offset")),
            (409, Some("10000")),
            "{what}"
        );
    }
    // Past the declared length: refused, nothing taken.
    let mut longer = bytes[10_000..].to_vec();
    longer.extend_from_slice(b"and more");
    let res = w
        .sophea
        .upload_patch(&start.location, 10_000, &longer)
        .await
        .expect("answer");
    assert_eq!(res.status, 413);
    assert_eq!(
        w.sophea.upload_offset(&start.location).await.expect("head"),
        10_000
    );
    // Continued properly, it completes and is verified.
    let res = w
        .sophea
        .upload_patch(&start.location, 10_000, &bytes[10_000..])
        .await
        .expect("patch");
    assert_eq!(res.status, 204);
    assert_eq!(
        sha(&w.sophea.download(&hash).await.expect("download").body),
        hash
    );
    // The upload is gone once the file is kept.
    let res = w
        .sophea
        .upload_patch(&start.location, 30_000, b"")
        .await
        .expect("answer");
    assert_eq!(res.status, 404);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bytes_that_do_not_match_the_hash_are_dropped_and_the_file_can_be_sent_again() {
    let mut w = World::new(|_| {}).await;
    let bytes = recording(50_000, 7);
    let hash = w.attach(&bytes, "photo.jpg", "image/jpeg").await;
    let mut altered = bytes.clone();
    altered[25_000] ^= 1;
    let start = w.sophea.upload_start(&hash, 50_000).await.expect("start");
    let res = w
        .sophea
        .upload_patch(&start.location, 0, &altered)
        .await
        .expect("answer");
    let json: serde_json::Value = res.json().expect("json");
    assert_eq!(
        (res.status, json["error"].as_str()),
        (422, Some("hash_mismatch"))
    );
    assert!(w.server.storage().blob(&hash).expect("read").is_none());
    let partial = w.server.data_dir.path().join("files/partial");
    assert_eq!(
        std::fs::read_dir(&partial).expect("dir").count(),
        0,
        "partial bytes removed"
    );
    w.sophea
        .upload(&hash, &bytes, 16_384, 0)
        .await
        .expect("the right bytes");
    assert_eq!(
        sha(&w.sophea.download(&hash).await.expect("download").body),
        hash
    );
}

/// Writes a PATCH's head with `Content-Length: length` on a raw connection.
async fn patch_head(
    session: &Session,
    location: &str,
    offset: u64,
    length: usize,
) -> saksi_client::Stream {
    let mut stream = session.client.connect().await.expect("connect");
    let head = format!(
        "PATCH {location} HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\
         Authorization: Bearer {}\r\nTus-Resumable: 1.0.0\r\n\
         Content-Type: application/offset+octet-stream\r\nUpload-Offset: {offset}\r\n\
         Content-Length: {length}\r\n\r\n",
        session.token
    );
    stream.write_all(head.as_bytes()).await.expect("head");
    stream
}

async fn response_status(mut stream: saksi_client::Stream) -> (u16, String) {
    let mut raw = Vec::new();
    let _ = tokio::time::timeout(WAIT, stream.read_to_end(&mut raw)).await;
    let text = String::from_utf8_lossy(&raw).into_owned();
    let status = text
        .split(' ')
        .nth(1)
        .and_then(|s| s.parse().ok())
        .unwrap_or(0);
    (status, text)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_request_that_breaks_off_keeps_what_arrived_and_the_upload_continues() {
    let mut w = World::new(|_| {}).await;
    let bytes = recording(2_000_000, 8);
    let hash = w.attach(&bytes, "statement.webm", "audio/webm").await;
    let start = w
        .sophea
        .upload_start(&hash, bytes.len() as u64)
        .await
        .expect("start");
    {
        let mut stream = patch_head(&w.sophea, &start.location, 0, bytes.len()).await;
        stream.write_all(&bytes[..1_000_000]).await.expect("half");
        stream.flush().await.expect("flush");
        tokio::time::sleep(Duration::from_millis(300)).await;
        // The phone loses its connection.
        drop(stream);
    }
    let mut offset = 0;
    for _ in 0..50 {
        offset = w.sophea.upload_offset(&start.location).await.expect("head");
        if offset > 0 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert!(offset > 500_000 && offset <= 1_000_000, "kept {offset}");
    let res = w
        .sophea
        .upload_patch(&start.location, offset, &bytes[offset as usize..])
        .await
        .expect("rest");
    assert_eq!(res.status, 204);
    assert_eq!(
        sha(&w.sophea.download(&hash).await.expect("download").body),
        hash
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_upload_that_stops_or_drips_is_ended_and_keeps_what_it_sent() {
    let mut w = World::new(|c| {
        c.upload_idle_seconds = 1;
        c.upload_request_seconds = 3;
    })
    .await;
    let bytes = recording(100_000, 9);
    let hash = w.attach(&bytes, "drip.webm", "audio/webm").await;
    let start = w
        .sophea
        .upload_start(&hash, bytes.len() as u64)
        .await
        .expect("start");
    // Stops: sends 10,000 bytes, then nothing.
    let mut stream = patch_head(&w.sophea, &start.location, 0, bytes.len()).await;
    stream.write_all(&bytes[..10_000]).await.expect("some");
    stream.flush().await.expect("flush");
    let (status, text) = response_status(stream).await;
    assert_eq!(status, 408, "{text}");
    assert!(
        text.contains("upload-offset: 10000") || text.contains("Upload-Offset: 10000"),
        "{text}"
    );
    // Drips: a byte every 100 ms, for ever.
    let mut stream = patch_head(&w.sophea, &start.location, 10_000, bytes.len() - 10_000).await;
    let dripped = tokio::spawn(async move {
        let mut sent = 0usize;
        loop {
            if stream
                .write_all(&bytes[10_000 + sent..10_001 + sent])
                .await
                .is_err()
                || stream.flush().await.is_err()
            {
                break;
            }
            sent += 1;
            tokio::time::sleep(Duration::from_millis(100)).await;
            if sent > 200 {
                break;
            }
        }
        (sent, stream)
    });
    let (sent, stream) = dripped.await.expect("drip");
    assert!(
        sent < 100,
        "the server ended the request after its time: {sent} bytes"
    );
    let (status, _) = response_status(stream).await;
    assert!(status == 408 || status == 0, "{status}");
    let kept = w.sophea.upload_offset(&start.location).await.expect("head");
    assert!(
        kept > 10_000 && kept <= 10_000 + sent as u64,
        "kept {kept} of {sent}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_full_disk_ends_the_upload_cleanly_and_a_later_try_works() {
    let mut w = World::new(|_| {}).await;
    let bytes = recording(600_000, 10);
    let hash = w.attach(&bytes, "full.webm", "audio/webm").await;
    let start = w
        .sophea
        .upload_start(&hash, bytes.len() as u64)
        .await
        .expect("start");
    // The disk is full: the upload's partial file is /dev/full, where every write fails with
    // ENOSPC exactly as on a full file system (the server cannot tell the two apart).
    let id = start.location.rsplit('/').next().expect("id").to_owned();
    let partial = w.server.data_dir.path().join("files/partial").join(&id);
    std::os::unix::fs::symlink("/dev/full", &partial).expect("symlink");
    let res = w
        .sophea
        .upload_patch(&start.location, 0, &bytes)
        .await
        .expect("answer");
    let json: serde_json::Value = res.json().expect("json");
    assert_eq!(
        (res.status, json["error"].as_str()),
        (507, Some("disk_full")),
        "{json}"
    );
    assert_eq!(res.header("Upload-Offset"), Some("0"));
    assert!(res.header("Retry-After").is_some());
    // Nothing corrupt: no file kept, the upload still there at 0.
    assert!(w.server.storage().blob(&hash).expect("read").is_none());
    assert_eq!(
        w.sophea.upload_offset(&start.location).await.expect("head"),
        0
    );
    // Room again: the phone tries later and it works.
    std::fs::remove_file(&partial).expect("rm");
    let report = w
        .sophea
        .upload(&hash, &bytes, 200_000, 0)
        .await
        .expect("later");
    assert_eq!(report.bytes_sent, bytes.len() as u64);
    assert_eq!(
        sha(&w.sophea.download(&hash).await.expect("download").body),
        hash
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_phones_uploading_the_same_file_at_once_both_succeed_and_one_copy_is_kept() {
    let mut w = World::new(|_| {}).await;
    let bytes = recording(1_500_000, 11);
    let hash = w.attach(&bytes, "same.jpg", "image/jpeg").await;
    let vanna = w.server.login("vanna").await;
    let (a, b) = (w.sophea.clone(), vanna.clone());
    let (one, two) = (bytes.clone(), bytes.clone());
    let (h1, h2) = (hash.clone(), hash.clone());
    let first = tokio::spawn(async move { a.upload(&h1, &one, 100_000, 0).await });
    let second = tokio::spawn(async move { b.upload(&h2, &two, 100_000, 0).await });
    first.await.expect("join").expect("first phone");
    second.await.expect("join").expect("second phone");
    assert_eq!(
        sha(&vanna.download(&hash).await.expect("download").body),
        hash
    );
    let held: Vec<_> = w.server.storage().blobs().expect("blobs");
    assert_eq!(held.len(), 1);
    let stored = std::fs::read_dir(
        w.server
            .data_dir
            .path()
            .join("files/blobs")
            .join(&hash[..2]),
    )
    .expect("dir")
    .count();
    assert_eq!(stored, 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_device_revoked_mid_upload_is_cut_off() {
    let mut w = World::new(|_| {}).await;
    let bytes = recording(9_000_000, 12);
    let hash = w.attach(&bytes, "long.webm", "audio/webm").await;
    let start = w
        .sophea
        .upload_start(&hash, bytes.len() as u64)
        .await
        .expect("start");
    // One request for everything; the device is revoked while it runs.
    let mut stream = patch_head(&w.sophea, &start.location, 0, bytes.len()).await;
    stream.write_all(&bytes[..2_000_000]).await.expect("part");
    stream.flush().await.expect("flush");
    tokio::time::sleep(Duration::from_millis(300)).await;
    w.server
        .storage()
        .revoke_device(&w.sophea.device_id, w.server.clock_now())
        .expect("revoked");
    let rest = bytes[2_000_000..].to_vec();
    let writer = tokio::spawn(async move {
        let _ = stream.write_all(&rest).await;
        let _ = stream.flush().await;
        stream
    });
    let (status, text) = response_status(writer.await.expect("writer")).await;
    assert!(status == 401 || status == 0, "{status}: {text}");
    let upload = w
        .server
        .storage()
        .upload_for(&w.sophea.device_id, &hash)
        .expect("read")
        .expect("kept for the record");
    assert!(
        upload.received < bytes.len() as u64,
        "cut off at {}",
        upload.received
    );
    assert!(w.server.storage().blob(&hash).expect("read").is_none());
    // And nothing further: not its status, not a new request.
    let (status, code) = refusal(
        w.sophea
            .upload_start(&hash, bytes.len() as u64)
            .await
            .expect_err("refused"),
    );
    assert_eq!((status, code.as_str()), (401, "device_revoked"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_file_no_record_names_is_removed_after_the_grace_period() {
    let mut w = World::new(|c| c.unreferenced_file_days = 7).await;
    let bytes = recording(40_000, 13);
    let hash = w.attach(&bytes, "mistake.jpg", "image/jpeg").await;
    w.sophea
        .upload(&hash, &bytes, 40_000, 0)
        .await
        .expect("uploaded");
    let id = w
        .phone
        .repo
        .record(&w.doc)
        .expect("doc")
        .view()
        .expect("view")
        .attachments[0]
        .id
        .clone();
    let editor = w.sophea.editor();
    w.phone
        .repo
        .edit(&w.doc, |r| r.remove_attachment(&id, &editor, at(9_000)))
        .expect("doc")
        .expect("removed");
    w.phone.sync_all(WAIT).await.expect("synced");
    let blob = w.server.storage().blob(&hash).expect("read").expect("held");
    assert!(blob.unreferenced_since.is_some());
    let state = w.server.state.clone();
    let done = saksi_server::files::clean_up(&state)
        .await
        .expect("clean-up");
    assert_eq!(done.unreferenced_files, 0, "within the grace period");
    w.server.clock.advance(days(8));
    let done = saksi_server::files::clean_up(&state)
        .await
        .expect("clean-up");
    assert_eq!(done.unreferenced_files, 1);
    assert!(w.server.storage().blob(&hash).expect("read").is_none());
    assert_eq!(
        std::fs::read_dir(
            w.server
                .data_dir
                .path()
                .join("files/blobs")
                .join(&hash[..2])
        )
        .map(|d| d.count())
        .unwrap_or(0),
        0,
        "the bytes are gone"
    );
}

/// S6 for files: the real server, killed (SIGKILL) in the middle of a request, resumes the
/// upload after a restart from what it had synced, and the file arrives whole.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_server_killed_mid_upload_resumes_after_restart() {
    let dir = tempfile::tempdir().expect("dir");
    let log = dir.path().join("server.log");
    let case = crate::process::seed(dir.path(), &["sophea"]);
    let server = crate::process::start(dir.path(), &log, &[]);
    let session = server
        .client
        .login("sophea", crate::helpers::PASSWORD, "sophea's phone")
        .await
        .expect("login");
    let bytes = recording(7_000_000, 14);
    let hash = sha(&bytes);
    let repo = saksi_shared::sync::Repo::new("sophea-tab".into(), random_16());
    let mut phone = session.sync(repo).await.expect("sync");
    let editor = session.editor();
    let doc = phone.repo.create(
        RecordKind::CourtObservation,
        &case,
        &editor,
        at(1_000),
        random_16(),
    );
    let file = NewAttachment {
        id: hex::encode(random_16()),
        sha256: hash.clone(),
        size: bytes.len() as u64,
        media_type: "audio/webm".into(),
        name: "សក្ខីកម្ម.webm".into(),
        captured_at: at(1_500),
        metadata: None,
        caption: String::new(),
    };
    phone
        .repo
        .edit(&doc, |r| r.add_attachment(&file, &editor, at(2_000)))
        .expect("doc")
        .expect("attached");
    phone.sync_all(WAIT).await.expect("synced");
    let start = session
        .upload_start(&hash, bytes.len() as u64)
        .await
        .expect("start");
    let mut stream = patch_head(&session, &start.location, 0, bytes.len()).await;
    stream
        .write_all(&bytes[..5_500_000])
        .await
        .expect("most of it");
    stream.flush().await.expect("flush");
    tokio::time::sleep(Duration::from_millis(500)).await;
    let mut server = server;
    server.child.kill().expect("SIGKILL");
    server.child.wait().expect("reaped");
    drop(stream);
    drop(phone);

    let server = crate::process::start(dir.path(), &log, &[]);
    let mut session = session;
    session.client = server.client.clone();
    let offset = session.upload_offset(&start.location).await.expect("head");
    // What the server had synced (every 4 MiB), no more than what was sent.
    assert!(
        (4 * 1024 * 1024..=5_500_000).contains(&offset),
        "resumes at {offset}"
    );
    let id = start.location.rsplit('/').next().expect("id");
    let res = session
        .upload_patch(&start.location, offset, &bytes[offset as usize..])
        .await
        .expect("rest");
    assert_eq!(res.status, 204, "{}", res.text());
    let got = session.download(&hash).await.expect("download");
    assert_eq!(sha(&got.body), hash);
    assert!(!dir.path().join("files/partial").join(id).exists());
    server.terminate();
}
