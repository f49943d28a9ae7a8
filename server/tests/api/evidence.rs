//! S10 in the console: each file with its hash and whether the server verified it, served
//! safely; the history naming who added and removed files; exports listing files and hashes;
//! and the case archive (ZIP), streamed, read back with a third-party reader: every entry's
//! SHA-256 in its manifest, and no entry name that leaves its folder, whatever a record holds.

use std::io::Read as _;

use saksi_client::Session;
use saksi_server::accounts::random_16;
use saksi_server::storage::{DocumentRow, DocumentWrite, FileRef};
use saksi_shared::Who;
use saksi_shared::attachment::NewAttachment;
use saksi_shared::automerge::transaction::Transactable as _;
use saksi_shared::automerge::{ActorId, ObjType, ROOT};
use saksi_shared::catalogue::RecordKind;
use saksi_shared::record::Record;
use saksi_shared::{DocumentId, Role, Status};
use saksi_testkit::at;
use sha2::{Digest, Sha256};

use crate::helpers::{Browser, TestServer, WAIT};

fn sha(bytes: &[u8]) -> String {
    hex::encode(Sha256::digest(bytes))
}

/// A court observation of Sophea's naming three files: a photo and a PDF she uploads, and a
/// recording that never reached the server.
struct Evidence {
    server: TestServer,
    case: DocumentId,
    doc: DocumentId,
    photo: (String, Vec<u8>),
    pdf: (String, Vec<u8>),
    audio: (String, Vec<u8>),
    sophea: Session,
}

async fn evidence() -> Evidence {
    let server = TestServer::start().await;
    server.user("sophea", Role::Monitor);
    server.user("chenda", Role::Coordinator);
    let case = server.case("ករណី ភស្តុតាង", &["sophea"]);
    let (sophea, mut phone) = server.phone("sophea").await;
    let editor = sophea.editor();
    let doc = phone.repo.create(
        RecordKind::CourtObservation,
        &case,
        &editor,
        at(1_000),
        random_16(),
    );
    let photo: Vec<u8> = [
        &[0xFF, 0xD8, 0xFF, 0xDB][..],
        &"រូបថត".repeat(3_000).into_bytes(),
        &[0xFF, 0xD9],
    ]
    .concat();
    let pdf = b"%PDF-1.4 <script>alert(1)</script> ".repeat(500);
    let audio = "សំឡេង".repeat(2_000).into_bytes();
    let mut names = Vec::new();
    for (bytes, name, media_type) in [
        (&photo, "សេចក្តីជូនដំណឹង.jpg", "image/jpeg"),
        (&pdf, "សាលក្រម.pdf", "application/pdf"),
        (&audio, "សក្ខីកម្ម.webm", "audio/webm"),
    ] {
        let file = NewAttachment {
            id: hex::encode(random_16()),
            sha256: sha(bytes),
            size: bytes.len() as u64,
            media_type: media_type.into(),
            name: name.into(),
            captured_at: at(1_700_000_000_000),
            metadata: None,
            caption: "ភ្ជាប់ដោយ សុភា".into(),
        };
        phone
            .repo
            .edit(&doc, |r| r.add_attachment(&file, &editor, at(2_000)))
            .expect("doc")
            .expect("attached");
        names.push(file.id);
    }
    phone.sync_all(WAIT).await.expect("synced");
    sophea
        .upload(&sha(&photo), &photo, 1 << 20, 0)
        .await
        .expect("photo");
    sophea
        .upload(&sha(&pdf), &pdf, 1 << 20, 0)
        .await
        .expect("pdf");
    Evidence {
        server,
        case,
        doc,
        photo: (names[0].clone(), photo),
        pdf: (names[1].clone(), pdf),
        audio: (names[2].clone(), audio),
        sophea,
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn s10_the_console_shows_each_file_with_its_hash_and_whether_the_server_verified_it() {
    let e = evidence().await;
    let desk = Browser::sign_in(&e.server, "chenda").await;
    let html = desk.page(&format!("/console/records/{}", e.doc)).await;
    for (_, bytes) in [&e.photo, &e.pdf, &e.audio] {
        assert!(html.contains(&format!("data-file-sha=\"{}\"", sha(bytes))));
    }
    let item = |bytes: &[u8]| {
        let at = html
            .find(&format!("data-file-sha=\"{}\"", sha(bytes)))
            .expect("item");
        html[at..at + html[at..].find("</li>").expect("end")].to_owned()
    };
    assert!(item(&e.photo.1).contains("class=\"file-thumb\""));
    assert!(item(&e.photo.1).contains("verified"));
    assert!(item(&e.pdf.1).contains("data-action=\"download\""));
    assert!(item(&e.audio.1).contains("Not uploaded yet"));
    assert!(!item(&e.audio.1).contains("<audio"), "nothing to play yet");
    assert!(html.contains("ភ្ជាប់ដោយ សុភា"), "captions");

    // Served through the console's session: an image inline, anything else as a download of
    // opaque bytes; both sandboxed, never sniffed.
    let img = desk
        .get(&format!("/api/files/{}?name=x.jpg", sha(&e.photo.1)))
        .await;
    assert_eq!(img.status, 200);
    assert_eq!(img.header("content-type"), Some("image/jpeg"));
    assert!(
        img.header("content-disposition")
            .is_some_and(|d| d.starts_with("inline"))
    );
    let doc = desk
        .get(&format!("/api/files/{}?name=%E1%9E%9F.pdf", sha(&e.pdf.1)))
        .await;
    assert_eq!(doc.header("content-type"), Some("application/octet-stream"));
    let disposition = doc.header("content-disposition").expect("disposition");
    assert!(
        disposition.starts_with("attachment")
            && disposition.contains("filename*=UTF-8''%E1%9E%9F.pdf"),
        "{disposition}"
    );
    for res in [&img, &doc] {
        assert_eq!(res.header("x-content-type-options"), Some("nosniff"));
        assert!(
            res.header("content-security-policy")
                .is_some_and(|c| c.contains("sandbox") && c.contains("default-src 'none'"))
        );
    }
    assert_eq!(doc.body, e.pdf.1);

    // The history says who added the files, and who removed one.
    let editor = e.sophea.editor();
    let mut repo = saksi_shared::sync::Repo::new("again".into(), random_16());
    repo.request(e.doc);
    let mut phone = e.sophea.sync(repo).await.expect("sync");
    phone.sync_until_received(WAIT, &e.doc).await.expect("doc");
    phone
        .repo
        .edit(&e.doc, |r| {
            r.remove_attachment(&e.pdf.0, &editor, at(3_000))
        })
        .expect("doc")
        .expect("removed");
    phone.sync_all(WAIT).await.expect("synced");
    let history = desk
        .page(&format!("/console/records/{}/history", e.doc))
        .await;
    assert!(history.contains("attached “សេចក្តីជូនដំណឹង.jpg”"), "{history}");
    assert!(history.contains(&sha(&e.photo.1)));
    assert!(
        history.contains("removed the file “សាលក្រម.pdf”"),
        "{history}"
    );
    // Each row names who did it, on which device, confirmed by the server's bindings.
    let row_of = |what: &str| {
        history
            .split("<tr>")
            .find(|row| row.contains(what))
            .unwrap_or_else(|| panic!("no row for {what}: {history}"))
            .to_owned()
    };
    for what in ["attached “សេចក្តីជូនដំណឹង.jpg”", "removed the file “សាលក្រម.pdf”"]
    {
        let row = row_of(what);
        assert!(
            row.contains("<td>sophea <span class=\"confirmed\"")
                && row.contains(e.sophea.device_id.as_str()),
            "{what}: {row}"
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn exports_list_the_files_and_their_hashes() {
    let e = evidence().await;
    let desk = Browser::sign_in(&e.server, "chenda").await;
    let json: serde_json::Value = serde_json::from_slice(
        &desk
            .get(&format!("/console/export.json?case={}", e.case))
            .await
            .body,
    )
    .expect("json");
    let record = &json["records"][0];
    assert_eq!(record["attachments"].as_array().map(Vec::len), Some(3));
    let on_server = record["files_on_server"].as_object().expect("map");
    assert!(on_server.contains_key(&sha(&e.photo.1)) && on_server.contains_key(&sha(&e.pdf.1)));
    assert!(!on_server.contains_key(&sha(&e.audio.1)));
    let csv = desk
        .get(&format!(
            "/console/export.csv?case={}&kind=court_observation",
            e.case
        ))
        .await
        .text();
    assert!(
        csv.lines().next().expect("header").contains(",files,"),
        "{csv}"
    );
    assert!(csv.contains(&format!("សេចក្តីជូនដំណឹង.jpg ({})", sha(&e.photo.1))));
    let report = desk.page(&format!("/console/report?case={}", e.case)).await;
    for (_, bytes) in [&e.photo, &e.pdf, &e.audio] {
        assert!(report.contains(&sha(bytes)), "the report lists every hash");
    }
}

/// Stores, bypassing the write policy (as a record written before these rules, or by a
/// tampered database, could be), a record whose files have hostile names.
fn hostile_record(server: &TestServer, case: &DocumentId, bytes: &[u8]) -> DocumentId {
    let id = DocumentId::from_bytes(random_16());
    let editor = saksi_shared::Editor::new("sophea", "old-phone", Role::Monitor);
    let mut record = Record::create(
        RecordKind::CourtObservation,
        case,
        ActorId::from(random_16()),
        &editor,
        at(1_000),
    );
    let names = [
        "../../../../etc/cron.d/saksi",
        "..\\..\\boot.ini",
        "\u{1b}[2Jclear.jpg",
        "C:evil.exe",
        "ok.jpg",
        "ok.jpg",
    ];
    let mut files = Vec::new();
    record
        .doc_mut()
        .transact_with(
            |_| {
                saksi_shared::automerge::transaction::CommitOptions::default()
                    .with_message(
                        serde_json::to_string(&Who {
                            user: editor.who.user.clone(),
                            device: editor.who.device.clone(),
                        })
                        .expect("note"),
                    )
                    .with_time(2_000)
            },
            |tx| -> Result<(), saksi_shared::automerge::AutomergeError> {
                let map = tx.put_object(ROOT, "attachments", ObjType::Map)?;
                for (i, name) in names.iter().enumerate() {
                    let att = format!("{i:032x}");
                    let entry = tx.put_object(&map, att.as_str(), ObjType::Map)?;
                    tx.put(&entry, "sha256", sha(bytes))?;
                    tx.put(&entry, "size", bytes.len() as i64)?;
                    tx.put(&entry, "type", "image/jpeg")?;
                    tx.put(&entry, "name", *name)?;
                    tx.put(&entry, "captured_at", 1_500i64)?;
                    tx.put(&entry, "by", "sophea")?;
                    tx.put(&entry, "device", "old-phone")?;
                    files.push(FileRef {
                        doc_id: id,
                        attachment_id: att,
                        sha256: sha(bytes),
                        size: bytes.len() as u64,
                        media_type: "image/jpeg".into(),
                        device_id: "old-phone".into(),
                    });
                }
                Ok(())
            },
        )
        .expect("written");
    let changes = record
        .doc()
        .get_changes(&[])
        .iter()
        .map(|c| c.raw_bytes().to_vec())
        .collect();
    server
        .storage()
        .append_changes(DocumentWrite {
            row: DocumentRow {
                id,
                kind: "court_observation".into(),
                case_id: *case,
                created_by: "sophea".into(),
                title: String::new(),
                status: Status::Draft.as_str().into(),
                has_conflicts: false,
                created_at: at(1_000),
                updated_at: at(2_000),
                consent_withdrawn: false,
            },
            changes,
            new_actors: Vec::new(),
            files: Some(files),
        })
        .expect("stored");
    id
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_case_archive_streams_records_files_and_a_manifest_and_no_name_escapes_it() {
    let e = evidence().await;
    let hostile = b"JPEG of a hostile name".repeat(100);
    let bad = hostile_record(&e.server, &e.case, &hostile);
    let chenda = e.server.login("chenda").await;
    chenda
        .upload(&sha(&hostile), &hostile, 1 << 20, 0)
        .await
        .expect("uploaded");
    let desk = Browser::sign_in(&e.server, "chenda").await;
    let res = desk
        .get(&format!("/console/export/archive.zip?case={}", e.case))
        .await;
    assert_eq!(res.status, 200, "{}", res.text());
    assert_eq!(res.header("content-type"), Some("application/zip"));
    assert!(
        res.header("content-length").is_none(),
        "streamed, not built first"
    );
    let mut archive =
        zip::ZipArchive::new(std::io::Cursor::new(res.body)).expect("a ZIP a reader opens");
    let mut entries = std::collections::BTreeMap::new();
    for i in 0..archive.len() {
        let mut file = archive.by_index(i).expect("entry");
        let name = file.name().to_owned();
        // The reader's own check that the name stays inside the folder.
        assert!(file.enclosed_name().is_some(), "{name:?} escapes");
        assert!(
            !name.split('/').any(|c| c == ".." || c.is_empty())
                && !name.contains('\\')
                && !name.contains(':')
                && !name.chars().any(char::is_control),
            "{name:?}"
        );
        let mut bytes = Vec::new();
        file.read_to_end(&mut bytes)
            .expect("CRC and length check out");
        entries.insert(name, bytes);
    }
    // Every file the server holds, under its record, with the bytes the phone captured.
    let photo_path = format!("files/{}/សេចក្តីជូនដំណឹង.jpg", e.doc);
    assert_eq!(entries.get(&photo_path), Some(&e.photo.1));
    assert_eq!(
        entries.get(&format!("files/{}/សាលក្រម.pdf", e.doc)),
        Some(&e.pdf.1)
    );
    assert!(
        !entries.keys().any(|k| k.ends_with("សក្ខីកម្ម.webm")),
        "not uploaded: not in it"
    );
    let hostile_entries: Vec<&String> = entries
        .keys()
        .filter(|k| k.starts_with(&format!("files/{bad}/")))
        .collect();
    assert_eq!(hostile_entries.len(), 6, "{hostile_entries:?}");
    assert!(
        entries.contains_key(&format!("files/{bad}/ok.jpg"))
            && entries.contains_key(&format!("files/{bad}/ok-2.jpg"))
    );
    // Whatever its name, each entry is one file in its record's folder, and the planted names
    // carry the bytes that were uploaded for them.
    for name in entries.keys().filter(|k| k.starts_with("files/")) {
        assert!(name.split('/').count() == 3, "{name}");
    }
    for name in &hostile_entries {
        assert_eq!(sha(&entries[*name]), sha(&hostile), "{name}");
    }
    // The manifest: `sha256sum -c` lines for every entry but itself, all true.
    let manifest = String::from_utf8(entries["MANIFEST-SHA256.txt"].clone()).expect("utf-8");
    let mut listed = 0;
    for line in manifest.lines() {
        let (hash, path) = line.split_once("  ").expect("sha256sum format");
        assert_eq!(sha(&entries[path]), hash, "{path}");
        listed += 1;
    }
    assert_eq!(listed, entries.len() - 1);
    let readme = String::from_utf8(entries["README.txt"].clone()).expect("utf-8");
    assert!(
        readme.contains(&sha(&e.audio.1)),
        "names the file not uploaded yet: {readme}"
    );
    assert!(readme.contains("ករណី ភស្តុតាង"));
    assert!(entries.contains_key("court_observation.csv") && entries.contains_key("records.json"));
    // Audited, counted, no contents.
    let audit = e
        .server
        .storage()
        .audit(&Default::default())
        .expect("audit");
    let last = audit
        .iter()
        .find(|a| a.event.detail.starts_with("archive:"))
        .expect("audited");
    assert!(
        last.event.detail.contains("2 record(s)"),
        "{}",
        last.event.detail
    );
}
