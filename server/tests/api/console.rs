//! The coordinator console (`/console`): pages with realistic data, conflict resolution that
//! reaches synced phones, the review round trip (S4), roles, CSRF, exports and admin pages.
//!
//! A browser is played by [`Browser`]: the session cookie, the CSRF token read from the page,
//! forms posted as `application/x-www-form-urlencoded`.

use std::time::Duration;

use saksi_server::accounts::random_16;
use saksi_server::storage::{
    AuditFilter, DocumentFilter, DocumentRow, DocumentSort, DocumentWrite,
};
use saksi_shared::automerge::ActorId;
use saksi_shared::catalogue::RecordKind;
use saksi_shared::protocol::Message;
use saksi_shared::record::{Editor, FieldInput, Record};
use saksi_shared::sync::Event;
use saksi_shared::{DocumentId, FieldValue, Role, Status};
use saksi_testkit::{at, ms};

use saksi_testkit::s2;

use crate::helpers::{self, Browser, PASSWORD, S2, TestServer, WAIT, form};

const COURT: &str = s2::COURT;
const NARRATIVE_KM: &str = "ព្រឹកនេះ សវនាការបានចាប់ផ្តើមយឺតជាងការគ្រោងទុកមួយម៉ោង។ ";

fn text(s: &str) -> FieldInput {
    FieldInput::Text(s.to_owned())
}

/// S2 as a console sees it: two monitors edit the same observation offline (the record, both
/// phones, and the changes of the "yes" (Sophea) and "no" (Vanna) values).
async fn observation_with_conflict(server: &TestServer) -> S2 {
    helpers::s2(server, "sophea", "vanna", "ករណី ក-១២ (test)").await
}

/// A family statement with a long Khmer statement, by a liaison, synced.
async fn family_statement(server: &TestServer, case: &DocumentId) -> DocumentId {
    server.user("dara", Role::Liaison);
    let (user, _) = server
        .storage()
        .user_by_name("dara")
        .expect("lookup")
        .expect("dara");
    server.storage().add_member(case, user.id).expect("member");
    let t0 = server.clock_now();
    let (s, mut phone) = server.phone("dara").await;
    let e = s.editor();
    let id = phone
        .repo
        .create(RecordKind::FamilyStatement, case, &e, t0, random_16());
    phone
        .repo
        .edit(&id, |r| {
            r.set_field("interviewee", text("ម្តាយ (កូដ M-7)"), &e, t0 + ms(100))?;
            r.set_field("detainee", text("D-12"), &e, t0 + ms(200))?;
            r.set_field("interview_date", text("2026-03-03"), &e, t0 + ms(300))?;
            r.set_field("consent_given", text("yes"), &e, t0 + ms(400))?;
            r.set_text(
                "statement",
                &"កូនប្រុសខ្ញុំត្រូវបានចាប់ខ្លួននៅថ្ងៃច័ន្ទ ហើយយើងមិនទាន់បានជួបគាត់ទេ។ ".repeat(30),
                &e,
                t0 + ms(500),
            )
        })
        .expect("doc")
        .expect("edits");
    phone.sync_all(WAIT).await.expect("stored");
    id
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_console_page_renders_realistic_data() {
    let server = TestServer::start().await;
    server.user("chenda", Role::Admin);
    let c = observation_with_conflict(&server).await;
    let statement = family_statement(&server, &c.case).await;
    let admin = Browser::sign_in(&server, "chenda").await;

    // Records table: both records, the conflict flagged, counts shown.
    let html = admin.page("/console/records").await;
    assert!(html.contains(&format!("/console/records/{}", c.id)));
    assert!(html.contains(&format!("/console/records/{statement}")));
    assert!(html.contains(COURT), "the title holds the Khmer court name");
    assert!(html.contains("ករណី ក-១២"), "case name");
    assert!(
        html.contains("<strong class=\"total\">2</strong>"),
        "{html}"
    );
    assert!(html.contains("<strong class=\"conflict-count\">1</strong>"));
    assert!(html.contains("class=\"flag\">conflict"));

    // Record page: merged values, the narrative with both texts, the list, the conflict with
    // both authors, their devices and one resolve button per value.
    let html = admin.page(&format!("/console/records/{}", c.id)).await;
    for needle in [
        COURT,
        s2::JUDGE_1,
        s2::JUDGE_2,
        s2::SECOND_NOTES.trim(),
        "គ្មានអ្នកបកប្រែ",
        "Conflicts to resolve (1)",
        "Defence lawyer",
        "sophea on “sophea&#39;s phone”",
        "vanna on “vanna&#39;s phone”",
        &c.yes_change,
        &c.no_change,
        "Convicted",
        "Comment only",
    ] {
        assert!(html.contains(needle), "record page lacks {needle:?}");
    }
    assert_eq!(html.matches("Use this value").count(), 2);
    assert!(
        !html.contains("unconfirmed"),
        "every change is bound to its device"
    );
    // The narrative is shown once in full (about 2,400 characters of Khmer).
    assert_eq!(html.matches("សេចក្តីសន្និដ្ឋាន៖").count(), 1);

    // History of the record and of one field: who, when, which device.
    let html = admin
        .page(&format!("/console/records/{}/history", c.id))
        .await;
    assert!(html.contains("sophea&#39;s phone") && html.contains("vanna&#39;s phone"));
    assert!(html.contains("created the Court observation"));
    assert!(
        html.matches("class=\"confirmed\"").count() >= 8 && !html.contains("unconfirmed<"),
        "every change's note agrees with the device it came from"
    );
    let html = admin
        .page(&format!(
            "/console/records/{}/history?field=counsel_present",
            c.id
        ))
        .await;
    assert!(
        html.contains("set “Defence lawyer present” to “Yes”"),
        "{html}"
    );
    assert!(html.contains("set “Defence lawyer present” to “No”"));
    assert!(!html.contains(s2::JUDGE_2), "only the field's changes");

    // The family statement page.
    let html = admin.page(&format!("/console/records/{statement}")).await;
    assert!(html.contains("ម្តាយ (កូដ M-7)") && html.contains("កូនប្រុសខ្ញុំត្រូវបានចាប់ខ្លួន"));

    // Khmer labels once the language is switched; the choice is remembered in a cookie.
    let res = admin
        .post(
            "/console/lang",
            &[
                ("lang", "km"),
                ("back", &format!("/console/records/{}", c.id)),
            ],
        )
        .await;
    assert_eq!(res.status, 303);
    assert_eq!(
        res.header("location"),
        Some(format!("/console/records/{}", c.id).as_str())
    );
    let lang = res.header("set-cookie").expect("lang cookie");
    assert!(lang.starts_with("saksi_lang=km"));
    let km = Browser {
        server: &server,
        cookie: format!("{}; saksi_lang=km", admin.cookie),
        csrf: admin.csrf.clone(),
    };
    let html = km.page(&format!("/console/records/{}", c.id)).await;
    assert!(html.contains("<html lang=\"km\">"));
    assert!(html.contains("មេធាវីការពារក្តី"), "Khmer section label");
    assert!(html.contains("ផ្តន្ទាទោស"), "Khmer choice label");

    // Printable report with the edit history.
    let html = admin
        .page(&format!("/console/report?case={}", c.case))
        .await;
    assert!(html.contains("Edit history") && html.contains("sophea&#39;s phone"));
    assert!(html.contains("Unresolved conflicts"));
    assert!(html.contains("កូនប្រុសខ្ញុំត្រូវបានចាប់ខ្លួន"));

    // Audit log and the admin pages.
    let html = admin.page("/console/audit").await;
    assert!(
        html.contains("data-action=\"login\">Signed in<")
            && html.contains("data-action=\"export\">Export<")
    );
    // Every action can be picked, including those the filter once missed.
    for action in [
        "sessions_ended",
        "certificate_renewed",
        "add-member",
        "change_refused",
    ] {
        assert!(
            html.contains(&format!("<option value=\"{action}\"")),
            "{action}"
        );
    }
    let html = admin.page("/console/audit?action=login&user=sophea").await;
    assert!(html.contains("<td>sophea</td>") && html.contains("data-action=\"login\""));
    assert!(!html.contains("data-action=\"export\"") && !html.contains("<td>vanna</td>"));
    let html = admin.page("/console/admin/users").await;
    for name in ["sophea", "vanna", "dara", "chenda</a> (you)"] {
        assert!(html.contains(name), "users page lacks {name}");
    }
    let html = admin.page("/console/admin/devices").await;
    assert!(
        html.contains("sophea&#39;s phone") && html.contains("console (browser) (this browser)")
    );
    let html = admin.page("/console/admin/devices?user=vanna").await;
    assert!(html.contains("vanna&#39;s phone") && !html.contains("sophea&#39;s phone"));
    let html = admin.page("/console/admin/cases").await;
    assert!(html.contains("ករណី ក-១២") && html.contains("2 record(s)"));

    // Unknown records and pages are plain 404 pages.
    let res = admin.get("/console/records/not-a-record").await;
    assert_eq!(res.status, 404);
    let res = admin
        .get(&format!(
            "/console/records/{}",
            DocumentId::from_bytes(random_16())
        ))
        .await;
    assert_eq!(res.status, 404);
    assert_eq!(admin.get("/console/nowhere").await.status, 404);
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_resolution_in_the_console_reaches_synced_phones() {
    let server = TestServer::start().await;
    server.user("kosal", Role::Coordinator);
    let mut c = observation_with_conflict(&server).await;
    let desk = Browser::sign_in(&server, "kosal").await;

    let res = desk
        .post(
            &format!("/console/records/{}/resolve", c.id),
            &[("field", "counsel_present"), ("change", &c.no_change)],
        )
        .await;
    assert_eq!(res.status, 303, "{}", res.text());
    assert_eq!(
        res.header("location"),
        Some(format!("/console/records/{}?done=resolved", c.id).as_str())
    );

    // Both phones, still connected, receive the resolution.
    for phone in &mut c.phones {
        phone
            .sync_until(WAIT, |repo, _| {
                repo.record(&c.id)
                    .and_then(|r| r.view().ok())
                    .is_some_and(|v| v.conflicts.is_empty())
            })
            .await
            .expect("the resolution reached the phone");
        let view = phone.repo.record(&c.id).expect("doc").view().expect("view");
        assert_eq!(
            view.fields.get("counsel_present"),
            Some(&FieldValue::Text("no".into()))
        );
        assert!(
            view.review.iter().any(|e| e.action == "resolve"
                && e.author == "kosal"
                && e.text == "counsel_present")
        );
        assert!(
            !phone
                .events
                .iter()
                .any(|e| matches!(e, Event::ChangesRefused { .. }))
        );
    }
    // The index knows, the page says so, and the history names the console's device.
    let row = server
        .storage()
        .document(&c.id)
        .expect("read")
        .expect("row");
    assert!(!row.has_conflicts);
    let html = desk
        .page(&format!("/console/records/{}?done=resolved", c.id))
        .await;
    assert!(html.contains("The chosen value is saved"));
    assert!(!html.contains("Conflicts to resolve"));
    assert!(html.contains("kosal</strong> (coordinator) resolved a conflict"));
    let html = desk
        .page(&format!(
            "/console/records/{}/history?field=counsel_present",
            c.id
        ))
        .await;
    assert!(html.contains("console (browser)"));

    // Choosing again, from a page that is now stale, changes nothing.
    let res = desk
        .post(
            &format!("/console/records/{}/resolve", c.id),
            &[("field", "counsel_present"), ("change", &c.yes_change)],
        )
        .await;
    assert_eq!(res.status, 409);
    assert!(res.text().contains("no longer in conflict"));
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn s4_review_round_trip_with_the_authors_phone() {
    let server = TestServer::start().await;
    server.user("sophea", Role::Monitor);
    server.user("kosal", Role::Coordinator);
    let case = server.case("ករណី ខ-៣", &["sophea"]);
    let t0 = server.clock_now();
    let (session, mut phone) = server.phone("sophea").await;
    let me = session.editor();
    let id = phone
        .repo
        .create(RecordKind::CourtObservation, &case, &me, t0, random_16());
    phone
        .repo
        .edit(&id, |r| {
            r.set_field("court", text(COURT), &me, t0 + ms(100))?;
            r.set_text("narrative", NARRATIVE_KM, &me, t0 + ms(200))?;
            r.transition(Status::Submitted, None, &me, t0 + ms(300))
        })
        .expect("doc")
        .expect("submitted");
    phone.sync_all(WAIT).await.expect("stored");

    let desk = Browser::sign_in(&server, "kosal").await;
    let html = desk.page(&format!("/console/records/{id}")).await;
    assert!(html.contains("value=\"request_changes\"") && html.contains("value=\"approve\""));

    // Requesting changes needs a comment.
    let res = desk
        .post(
            &format!("/console/records/{id}/review"),
            &[("action", "request_changes"), ("comment", "  ")],
        )
        .await;
    assert_eq!(res.status, 400);
    let comment = "សូមបញ្ជាក់ម៉ោងចាប់ផ្តើមពិតប្រាកដ និងឈ្មោះមេធាវី។";
    let res = desk
        .post(
            &format!("/console/records/{id}/review"),
            &[("action", "request_changes"), ("comment", comment)],
        )
        .await;
    assert_eq!(res.status, 303, "{}", res.text());

    // The author's phone gets the status and the comment.
    phone
        .sync_until(WAIT, |repo, _| {
            repo.record(&id)
                .and_then(|r| r.view().ok())
                .is_some_and(|v| v.status == Status::NeedsChanges)
        })
        .await
        .expect("needs_changes reached the phone");
    let view = phone.repo.record(&id).expect("doc").view().expect("view");
    let entry = view.review.last().expect("review entry");
    assert_eq!(
        (
            entry.author.as_str(),
            entry.action.as_str(),
            entry.text.as_str()
        ),
        ("kosal", "request_changes", comment)
    );

    // The author edits and resubmits.
    phone
        .repo
        .edit(&id, |r| {
            r.set_field("actual_start", text("09:40"), &me, t0 + ms(10_000))?;
            r.set_list("defence_counsel", &["មេធាវី ក".into()], &me, t0 + ms(10_100))?;
            r.transition(Status::Submitted, Some("បានបន្ថែមហើយ។"), &me, t0 + ms(10_200))
        })
        .expect("doc")
        .expect("resubmitted");
    phone.sync_all(WAIT).await.expect("resubmission stored");
    let row = server.storage().document(&id).expect("read").expect("row");
    assert_eq!(row.status, "submitted");

    // The coordinator sees the new values and approves; the phone follows.
    let html = desk.page(&format!("/console/records/{id}")).await;
    assert!(html.contains("09:40") && html.contains("មេធាវី ក") && html.contains("បានបន្ថែមហើយ។"));
    let res = desk
        .post(
            &format!("/console/records/{id}/review"),
            &[("action", "approve"), ("comment", "")],
        )
        .await;
    assert_eq!(res.status, 303, "{}", res.text());
    phone
        .sync_until(WAIT, |repo, _| {
            repo.record(&id)
                .and_then(|r| r.view().ok())
                .is_some_and(|v| v.status == Status::Approved)
        })
        .await
        .expect("approval reached the phone");

    // Archive and unarchive from the console; an impossible step is refused.
    let review = |action: &'static str| {
        let desk = &desk;
        async move {
            desk.post(
                &format!("/console/records/{id}/review"),
                &[("action", action), ("comment", "")],
            )
            .await
        }
    };
    assert_eq!(review("archive").await.status, 303);
    assert_eq!(
        review("approve").await.status,
        409,
        "archived records are not approved"
    );
    assert_eq!(review("unarchive").await.status, 303);
    assert_eq!(review("fly").await.status, 400);
    let row = server.storage().document(&id).expect("read").expect("row");
    assert_eq!(row.status, "approved");
    phone
        .sync_until(WAIT, |repo, _| {
            repo.record(&id)
                .and_then(|r| r.view().ok())
                .is_some_and(|v| {
                    v.status == Status::Approved
                        && v.review.iter().filter(|e| e.action == "unarchive").count() == 1
                })
        })
        .await
        .expect("the phone follows");
    assert!(
        !phone
            .events
            .iter()
            .any(|e| matches!(e, Event::ChangesRefused { .. }))
    );
    server.stop().await;
}

/// Every console GET page and every form, with sample paths.
fn console_routes(record: &DocumentId, case: &DocumentId) -> (Vec<String>, Vec<String>) {
    let gets = vec![
        "/console".into(),
        "/console/records".into(),
        format!("/console/records/{record}"),
        format!("/console/records/{record}/history"),
        format!("/console/export.csv?kind=court_observation&case={case}"),
        "/console/export.json".into(),
        "/console/report".into(),
        "/console/audit".into(),
        "/console/certificate".into(),
        "/console/admin/users".into(),
        "/console/admin/devices".into(),
        "/console/admin/cases".into(),
    ];
    let posts = vec![
        "/console/logout".into(),
        "/console/lang".into(),
        format!("/console/records/{record}/resolve"),
        format!("/console/records/{record}/review"),
        "/console/admin/users".into(),
        "/console/admin/users/1/role".into(),
        "/console/admin/users/1/password".into(),
        "/console/admin/users/1/disable".into(),
        "/console/admin/devices/dev_00/revoke".into(),
        "/console/admin/cases".into(),
        format!("/console/admin/cases/{case}/members"),
        format!("/console/admin/cases/{case}/members/remove"),
    ];
    (gets, posts)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn monitors_and_liaisons_are_refused_on_every_console_page() {
    let server = TestServer::start().await;
    server.user("sophea", Role::Monitor);
    server.user("dara", Role::Liaison);
    server.user("kosal", Role::Coordinator);
    let case = server.case("Case A", &["sophea", "dara"]);
    let record = DocumentId::from_bytes(random_16());
    let (gets, posts) = console_routes(&record, &case);

    for name in ["sophea", "dara"] {
        let session = server.login(name).await;
        let browser = Browser::with_token(&server, &session);
        for path in &gets {
            let res = browser.get(path).await;
            assert_eq!(res.status, 403, "{name} GET {path}");
            assert!(res.text().contains("coordinators and admins"));
        }
        for path in &posts {
            let res = browser
                .post_raw(path, &[("csrf", "x"), ("action", "approve")], None)
                .await;
            assert_eq!(res.status, 403, "{name} POST {path}");
        }
        // The sign-in form refuses them too, and leaves no device behind.
        let res = server
            .client
            .request(
                "POST",
                "/console/login",
                &[("Content-Type", "application/x-www-form-urlencoded")],
                Some(&form(&[("username", name), ("password", PASSWORD)])),
            )
            .await
            .expect("answer");
        assert_eq!(res.status, 403);
        assert!(res.header("set-cookie").is_none());
        let (user, _) = server
            .storage()
            .user_by_name(name)
            .expect("lookup")
            .expect("user");
        let devices = server.storage().devices(Some(user.id)).expect("devices");
        assert!(
            devices
                .iter()
                .filter(|(d, _)| d.name == "console (browser)")
                .all(|(d, _)| d.revoked_at.is_some())
        );
    }

    // A coordinator may use the console but not its admin pages.
    let desk = Browser::sign_in(&server, "kosal").await;
    for path in [
        "/console/admin/users",
        "/console/admin/devices",
        "/console/admin/cases",
    ] {
        assert_eq!(desk.get(path).await.status, 403, "{path}");
    }
    let res = desk
        .post(
            "/console/admin/users",
            &[("username", "x"), ("role", "admin"), ("password", PASSWORD)],
        )
        .await;
    assert_eq!(res.status, 403);
    assert!(
        server
            .storage()
            .user_by_name("x")
            .expect("lookup")
            .is_none()
    );

    // Without a session, pages lead to the sign-in form; it names no secret.
    let anonymous = Browser {
        server: &server,
        cookie: "saksi_session=forged".into(),
        csrf: String::new(),
    };
    let res = anonymous.get("/console/records?case=x").await;
    assert_eq!(res.status, 303);
    assert_eq!(
        res.header("location"),
        Some("/console/login?next=%2Fconsole%2Frecords%3Fcase%3Dx")
    );
    let res = server
        .client
        .get("/console/login", None)
        .await
        .expect("form");
    assert_eq!(res.status, 200);
    assert!(res.text().contains("type=\"password\""));
    let res = server
        .client
        .get("/console/console.css", None)
        .await
        .expect("css");
    assert_eq!(res.status, 200);
    assert!(
        res.header("content-type")
            .is_some_and(|t| t.starts_with("text/css"))
    );
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn console_forms_without_the_right_token_are_refused() {
    let server = TestServer::start().await;
    server.user("chenda", Role::Admin);
    server.user("sophea", Role::Monitor);
    let case = server.case("Case A", &[]);
    let admin = Browser::sign_in(&server, "chenda").await;
    let record = DocumentId::from_bytes(random_16());
    let (_, posts) = console_routes(&record, &case);
    let fields = [
        ("username", "sophea"),
        ("role", "admin"),
        ("password", "a new password 1"),
        ("name", "Forged case"),
        ("lang", "km"),
        ("action", "approve"),
    ];
    for path in &posts {
        // No token.
        let res = admin.post_raw(path, &fields, None).await;
        assert_eq!(res.status, 403, "POST {path} without a token");
        // Someone else's token.
        let mut forged = vec![("csrf", "0".repeat(64))];
        forged.extend(fields.iter().map(|(k, v)| (*k, (*v).to_owned())));
        let forged: Vec<(&str, &str)> = forged.iter().map(|(k, v)| (*k, v.as_str())).collect();
        let res = admin.post_raw(path, &forged, None).await;
        assert_eq!(res.status, 403, "POST {path} with a wrong token");
        assert!(res.text().contains("did not come from this console"));
    }
    // What a browser sends for a console form (`Origin: null` under the no-referrer policy)
    // passes; a form posted from another site does not, even with the right token.
    let res = admin
        .post_with(
            "/console/lang",
            &[("lang", "km"), ("back", "/console/records")],
            &[("Origin", "null"), ("Sec-Fetch-Site", "same-origin")],
        )
        .await;
    assert_eq!(res.status, 303);
    let res = admin
        .post_with(
            "/console/lang",
            &[("lang", "km"), ("back", "/console/records")],
            &[("Origin", "null"), ("Sec-Fetch-Site", "cross-site")],
        )
        .await;
    assert_eq!(res.status, 403);
    // The right token from a foreign origin is refused as well.
    let mut all = vec![("csrf", admin.csrf.as_str())];
    all.extend_from_slice(&fields);
    let res = admin
        .post_raw("/console/admin/users", &all, Some("https://evil.example"))
        .await;
    assert_eq!(res.status, 403);
    // Nothing happened: no role change, no case, still signed in.
    let (sophea, _) = server
        .storage()
        .user_by_name("sophea")
        .expect("lookup")
        .expect("user");
    assert_eq!(sophea.role, Role::Monitor);
    assert_eq!(server.storage().cases().expect("cases").len(), 1);
    assert_eq!(admin.get("/console/records").await.status, 200);
    // The sign-in form itself refuses a cross-site post.
    let res = server
        .client
        .request(
            "POST",
            "/console/login",
            &[
                ("Content-Type", "application/x-www-form-urlencoded"),
                ("Origin", "https://evil.example"),
            ],
            Some(&form(&[("username", "chenda"), ("password", PASSWORD)])),
        )
        .await
        .expect("answer");
    assert_eq!(res.status, 403);
    // With the token, the same form works, and signing out ends the session.
    let res = admin.post("/console/logout", &[]).await;
    assert_eq!(res.status, 303);
    assert_eq!(res.header("location"), Some("/console/login"));
    assert_eq!(admin.get("/console/records").await.status, 303);
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn exports_keep_khmer_flag_conflicts_and_are_audited() {
    let server = TestServer::start().await;
    server.user("kosal", Role::Coordinator);
    let c = observation_with_conflict(&server).await;
    let statement = family_statement(&server, &c.case).await;
    let desk = Browser::sign_in(&server, "kosal").await;

    // CSV of the case's court observations.
    let res = desk
        .get(&format!(
            "/console/export.csv?case={}&kind=court_observation",
            c.case
        ))
        .await;
    assert_eq!(res.status, 200, "{}", res.text());
    assert_eq!(res.header("content-type"), Some("text/csv; charset=utf-8"));
    assert!(
        res.header("content-disposition")
            .is_some_and(|d| d.starts_with("attachment; filename=\"saksi-court_observation-"))
    );
    assert_eq!(&res.body[..3], b"\xEF\xBB\xBF", "UTF-8 byte-order mark");
    let csv = String::from_utf8(res.body[3..].to_vec()).expect("UTF-8");
    let mut lines = csv.split("\r\n");
    let header: Vec<&str> = lines.next().expect("header").split(',').collect();
    let expected = vec![
        "id",
        "case_id",
        "case",
        "kind",
        "status",
        "created_by",
        "created_at",
        "updated_at",
        "conflicts",
        "files",
    ];
    let mut expected: Vec<String> = expected.into_iter().map(String::from).collect();
    for f in RecordKind::CourtObservation.def().fields {
        expected.push(f.id.to_owned());
        if !f.choices.is_empty() {
            expected.push(format!("{}_label", f.id));
        }
    }
    assert_eq!(header, expected);
    let rows: Vec<&str> = lines.filter(|l| !l.is_empty()).collect();
    assert_eq!(
        rows.len(),
        1,
        "one row per record (the statement is another kind)"
    );
    let row = rows[0];
    assert!(row.starts_with(&format!("{},{},", c.id, c.case)));
    assert!(row.contains(COURT), "Khmer survives");
    assert!(
        row.contains(&format!("{}; {}", s2::JUDGE_1, s2::JUDGE_2)),
        "lists joined with '; '"
    );
    assert!(row.contains("[conflict] no | yes") || row.contains("[conflict] yes | no"));
    // Choices also by their labels, in the console's language.
    assert!(
        row.contains("[conflict] No | Yes") || row.contains("[conflict] Yes | No"),
        "{row}"
    );
    assert!(
        row.contains(",counsel_present,"),
        "the conflicts column names the field"
    );
    assert!(
        [s2::FIRST_NOTES, s2::SECOND_NOTES]
            .iter()
            .any(|notes| row.contains(&format!("\"{notes}"))),
        "narrative quoted"
    );

    // A CSV needs a kind.
    let res = desk.get("/console/export.csv").await;
    assert_eq!(res.status, 400);

    // JSON: merged records with their conflicts.
    let res = desk
        .get(&format!("/console/export.json?case={}", c.case))
        .await;
    assert_eq!(res.status, 200);
    let json: serde_json::Value = res.json().expect("JSON");
    assert_eq!(json["count"], 2);
    let records = json["records"].as_array().expect("records");
    let obs = records
        .iter()
        .find(|r| r["id"] == c.id.to_string())
        .expect("observation");
    assert_eq!(obs["fields"]["court"], COURT);
    assert_eq!(obs["conflicts"][0]["field"], "counsel_present");
    assert_eq!(
        obs["conflicts"][0]["values"].as_array().map(Vec::len),
        Some(2)
    );
    assert!(obs["conflicts"][0]["values"][0]["by"]["user"].is_string());
    let fs = records
        .iter()
        .find(|r| r["id"] == statement.to_string())
        .expect("statement");
    assert_eq!(fs["fields"]["interviewee"], "ម្តាយ (កូដ M-7)");

    // The printable report.
    let res = desk.get(&format!("/console/report?case={}", c.case)).await;
    assert_eq!(res.status, 200);
    assert!(res.text().contains("Saksi report"));

    // Each export is in the audit log: who, what filter, how many; never contents.
    let entries = server
        .storage()
        .audit(&AuditFilter {
            action: Some(saksi_server::storage::AuditAction::Export),
            ..Default::default()
        })
        .expect("audit");
    assert_eq!(entries.len(), 3, "{entries:?}");
    let details: Vec<&str> = entries.iter().map(|e| e.event.detail.as_str()).collect();
    assert!(
        details.contains(
            &format!("csv: case={} kind=court_observation; 1 record(s)", c.case).as_str()
        ),
        "{details:?}"
    );
    assert!(details.contains(&format!("json: case={}; 2 record(s)", c.case).as_str()));
    assert!(details.contains(&format!("report: case={}; 2 record(s)", c.case).as_str()));
    for e in &entries {
        assert_eq!(e.event.username.as_deref(), Some("kosal"));
        assert_eq!(e.event.target, Some(c.case.to_string()));
        assert!(!e.event.detail.contains(COURT) && !e.event.detail.contains("ម្តាយ"));
    }
    server.stop().await;
}

/// Stores a record directly (no sync): for listing tests that need many records.
fn seed(
    server: &TestServer,
    case: &DocumentId,
    kind: RecordKind,
    author: &str,
    title: &str,
    status: Status,
    updated_at: i64,
) -> DocumentId {
    let updated_at = at(updated_at);
    let id = DocumentId::from_bytes(random_16());
    let role = if kind == RecordKind::CourtObservation {
        Role::Monitor
    } else {
        Role::Liaison
    };
    let editor = Editor::new(author, "seed", role);
    let mut record = Record::create(kind, case, ActorId::from(random_16()), &editor, updated_at);
    let field = if kind == RecordKind::CourtObservation {
        "court"
    } else {
        "detainee"
    };
    record
        .set_field(field, text(title), &editor, updated_at)
        .expect("field");
    if status != Status::Draft {
        let reviewer = Editor {
            role: Role::Coordinator,
            ..editor.clone()
        };
        record
            .transition(Status::Submitted, None, &editor, updated_at)
            .expect("submit");
        if status != Status::Submitted {
            record
                .transition(status, None, &reviewer, updated_at)
                .expect("review step");
        }
    }
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
                kind: kind.as_str().into(),
                case_id: *case,
                created_by: author.into(),
                title: title.into(),
                status: status.as_str().into(),
                has_conflicts: false,
                created_at: updated_at,
                updated_at,
                consent_withdrawn: false,
            },
            changes,
            new_actors: Vec::new(),
            files: None,
        })
        .expect("stored");
    id
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_records_table_filters_sorts_pages_and_counts() {
    let server = TestServer::start().await;
    server.user("kosal", Role::Coordinator);
    let case_a = server.case("ករណី ក", &[]);
    let case_b = server.case("ករណី ខ", &[]);
    let day = 86_400_000;
    // 2026-03-01 00:00 UTC.
    let base: i64 = 1_772_323_200_000;
    // 60 observations in case A over 60 days, alternating authors and statuses; 5 statements
    // in case B.
    let mut seeded = Vec::new();
    for i in 0..60 {
        let (author, status) = match i % 3 {
            0 => ("sophea", Status::Submitted),
            1 => ("vanna", Status::Approved),
            _ => ("sophea", Status::Draft),
        };
        seeded.push(seed(
            &server,
            &case_a,
            RecordKind::CourtObservation,
            author,
            &format!("សវនាការ {i:02}"),
            status,
            base + i * day,
        ));
    }
    for i in 0..5 {
        seed(
            &server,
            &case_b,
            RecordKind::FamilyStatement,
            "dara",
            &format!("D-{i}"),
            Status::NeedsChanges,
            base + i * day,
        );
    }
    // Storage: paging, sorting and counts.
    let filter = DocumentFilter {
        case: Some(case_a),
        sort: DocumentSort::UpdatedAsc,
        limit: Some(10),
        offset: 50,
        ..DocumentFilter::default()
    };
    let page = server.storage().documents(&filter).expect("page");
    assert_eq!(page.len(), 10);
    assert_eq!(page[0].title, "សវនាការ 50");
    let counts = server.storage().count_documents(&filter).expect("counts");
    assert_eq!(counts.total, 60, "counts ignore paging");
    assert_eq!(counts.with_conflicts, 0);
    let mut by_status = counts.by_status.clone();
    by_status.sort();
    assert_eq!(
        by_status,
        vec![
            ("approved".to_string(), 20),
            ("draft".to_string(), 20),
            ("submitted".to_string(), 20)
        ]
    );

    let desk = Browser::sign_in(&server, "kosal").await;
    let html = desk.page("/console/records").await;
    assert!(html.contains("<strong class=\"total\">65</strong>"));
    assert!(html.contains("Records 1–50 of 65 · page 1 of 2"));
    assert!(html.contains("សវនាការ 59"), "newest first");
    assert!(html.contains("សវនាការ 10<"), "fifty on page 1");
    assert!(!html.contains("សវនាការ 09<"), "older ones on page 2");
    let html = desk.page("/console/records?page=2").await;
    assert!(html.contains("Records 51–65 of 65 · page 2 of 2"));
    assert!(html.contains("សវនាការ 00"));

    let html = desk
        .page(&format!(
            "/console/records?case={case_a}&author=vanna&status=approved&sort=title"
        ))
        .await;
    assert!(html.contains("<strong class=\"total\">20</strong>"));
    let first = html.find("សវនាការ 01").expect("first by title");
    let second = html.find("សវនាការ 04").expect("second by title");
    assert!(first < second, "sorted by title");
    assert!(!html.contains("សវនាការ 00"), "sophea's are filtered out");

    let html = desk
        .page("/console/records?from=2026-03-02&to=2026-03-04&kind=family_statement")
        .await;
    assert!(
        html.contains("<strong class=\"total\">3</strong>"),
        "{html}"
    );
    assert!(html.contains("D-1") && html.contains("D-3") && !html.contains("D-4"));
    // These records came from no device: their history says so.
    let html = desk
        .page(&format!("/console/records/{}/history", seeded[0]))
        .await;
    assert!(html.contains("unconfirmed") && html.contains("no device on record"));
    assert!(!html.contains("class=\"confirmed\""));
    let html = desk.page("/console/records?conflicts=yes").await;
    assert!(html.contains("No records match this filter."));

    for bad in [
        "kind=case",
        "status=lost",
        "from=2026-02-30",
        "sort=random",
        "case=nope",
    ] {
        let res = desk.get(&format!("/console/records?{bad}")).await;
        assert_eq!(res.status, 400, "{bad}");
    }
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn admins_manage_users_devices_and_teams_from_the_console() {
    let server = TestServer::start().await;
    server.user("chenda", Role::Admin);
    let admin = Browser::sign_in(&server, "chenda").await;

    // A new account.
    let res = admin
        .post(
            "/console/admin/users",
            &[
                ("username", "bopha"),
                ("role", "monitor"),
                ("password", "bopha's first pw"),
            ],
        )
        .await;
    assert_eq!(res.status, 303, "{}", res.text());
    let session = server
        .client
        .login("bopha", "bopha's first pw", "ទូរស័ព្ទ")
        .await
        .expect("the new account signs in");
    assert_eq!(session.role, Role::Monitor);
    let res = admin
        .post(
            "/console/admin/users",
            &[
                ("username", "bopha"),
                ("role", "monitor"),
                ("password", "another password"),
            ],
        )
        .await;
    assert_eq!(res.status, 400, "taken");
    let res = admin
        .post(
            "/console/admin/users",
            &[
                ("username", "short"),
                ("role", "monitor"),
                ("password", "short"),
            ],
        )
        .await;
    assert_eq!(res.status, 400);
    assert!(res.text().contains("at least 10 characters"));
    let (bopha, _) = server
        .storage()
        .user_by_name("bopha")
        .expect("lookup")
        .expect("bopha");
    let user_path = |action: &str| format!("/console/admin/users/{}/{action}", bopha.id);

    // Role and password.
    let res = admin.post(&user_path("role"), &[("role", "liaison")]).await;
    assert_eq!(res.status, 303);
    let res = admin
        .post(
            &user_path("password"),
            &[("password", "a brand new password")],
        )
        .await;
    assert_eq!(res.status, 303);
    assert!(
        server
            .client
            .login("bopha", "bopha's first pw", "x")
            .await
            .is_err()
    );
    let again = server
        .client
        .login("bopha", "a brand new password", "x")
        .await
        .expect("new password works");
    assert_eq!(again.role, Role::Liaison);
    // An admin cannot lock themselves out.
    let me = server
        .storage()
        .user_by_name("chenda")
        .expect("lookup")
        .expect("me")
        .0;
    let res = admin
        .post(&format!("/console/admin/users/{}/disable", me.id), &[])
        .await;
    assert_eq!(res.status, 400);

    // Revoking a device closes its open socket at once.
    let (phone_session, mut phone) = {
        let repo = saksi_shared::sync::Repo::new("bopha-tab".into(), random_16());
        let sync = again.sync(repo).await.expect("sync connects");
        (again.clone(), sync)
    };
    // One click is not enough: the confirmation box must be ticked.
    let revoke = format!("/console/admin/devices/{}/revoke", phone_session.device_id);
    let res = admin.post(&revoke, &[]).await;
    assert_eq!(res.status, 400, "{}", res.text());
    assert!(res.text().contains("Tick the box"), "{}", res.text());
    let (device, _) = server
        .storage()
        .device(&phone_session.device_id)
        .expect("lookup")
        .expect("device");
    assert!(device.revoked_at.is_none(), "not revoked without the box");
    let res = admin.post(&revoke, &[("confirm", "yes")]).await;
    assert_eq!(res.status, 303, "{}", res.text());
    let closed = tokio::time::timeout(Duration::from_secs(1), async {
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
    .expect("closed at once, not at the next revocation sweep");
    assert_eq!(closed.as_deref(), Some("device revoked"));
    let html = admin
        .page("/console/admin/devices?user=bopha&done=revoked")
        .await;
    assert!(html.contains("Device revoked") && html.contains(">revoked<"));
    assert_eq!(
        admin.post(&revoke, &[("confirm", "yes")]).await.status,
        400,
        "already revoked"
    );

    // Disabling revokes the remaining devices; enabling lets the user sign in again.
    assert_eq!(admin.post(&user_path("disable"), &[]).await.status, 303);
    assert_eq!(
        server
            .client
            .get("/api/me", Some(&session.token))
            .await
            .expect("answer")
            .status,
        401
    );
    assert!(
        server
            .client
            .login("bopha", "a brand new password", "x")
            .await
            .is_err()
    );
    assert_eq!(admin.post(&user_path("enable"), &[]).await.status, 303);
    server
        .client
        .login("bopha", "a brand new password", "x")
        .await
        .expect("enabled again");

    // Cases and teams.
    let res = admin
        .post("/console/admin/cases", &[("name", "ករណី គ-៧")])
        .await;
    assert_eq!(res.status, 303);
    let case = server
        .storage()
        .cases()
        .expect("cases")
        .into_iter()
        .find(|c| c.name == "ករណី គ-៧")
        .expect("case created");
    let members = format!("/console/admin/cases/{}/members", case.id);
    assert_eq!(
        admin.post(&members, &[("username", "bopha")]).await.status,
        303
    );
    assert_eq!(
        server.storage().members(&case.id).expect("members")[0].username,
        "bopha"
    );
    let html = admin.page("/console/admin/cases").await;
    assert!(html.contains("ករណី គ-៧") && html.contains("bopha <span class=\"role\">liaison"));
    assert_eq!(
        admin
            .post(&format!("{members}/remove"), &[("username", "bopha")])
            .await
            .status,
        303
    );
    assert!(
        server
            .storage()
            .members(&case.id)
            .expect("members")
            .is_empty()
    );
    assert_eq!(
        admin.post(&members, &[("username", "nobody")]).await.status,
        400
    );

    // Every action is in the audit log under the admin's name and console device.
    let entries = server
        .storage()
        .audit(&AuditFilter {
            username: Some("chenda".into()),
            ..Default::default()
        })
        .expect("audit");
    let actions: Vec<&str> = entries.iter().map(|e| e.event.action.as_str()).collect();
    for action in [
        "user_created",
        "role_changed",
        "password_reset",
        "device_revoked",
        "disable",
        "enable",
        "case_created",
        "add-member",
        "remove-member",
    ] {
        assert!(actions.contains(&action), "{action} missing in {actions:?}");
    }
    assert!(
        entries
            .iter()
            .filter(|e| e.event.action.as_str() != "login")
            .all(|e| e
                .event
                .device_id
                .as_deref()
                .is_some_and(|d| d.starts_with("dev_")))
    );
    assert!(
        entries
            .iter()
            .all(|e| !e.event.detail.contains("password "))
    );
    server.stop().await;
}

/// A stored record that no longer loads (here: a change into an object that does not exist,
/// on which automerge panics, written straight into storage as a server before this round's
/// checks could have stored it) is skipped by every export, which names it, instead of failing
/// the case.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn exports_skip_a_record_that_cannot_be_read_and_name_it() {
    use saksi_shared::automerge::legacy::{Key, ObjectId, Op, OpId, OpType};
    use saksi_shared::automerge::{Automerge, Change, ExpandedChange, ScalarValue};

    let server = TestServer::start().await;
    server.user("kosal", Role::Coordinator);
    let c = observation_with_conflict(&server).await;
    let broken = family_statement(&server, &c.case).await;
    let chunks = server.storage().chunks(&broken).expect("chunks");
    let doc = Automerge::load(&chunks.concat()).expect("loads before");
    let max_op = doc.get_changes(&[]).iter().map(|c| c.max_op()).max();
    let change = Change::from(ExpandedChange {
        operations: vec![Op {
            action: OpType::Put(ScalarValue::Str("សាក្សី".into())),
            obj: ObjectId::Id(OpId::new(9_999, &ActorId::from([7; 16]))),
            key: Key::Map("court".into()),
            pred: Vec::new().into(),
            insert: false,
        }],
        actor_id: ActorId::from(random_16()),
        hash: None,
        seq: 1,
        start_op: std::num::NonZeroU64::new(max_op.unwrap_or(0) + 1).expect("non-zero"),
        time: 5_000,
        message: None,
        deps: doc.get_heads(),
        extra_bytes: Vec::new(),
        author: None,
    });
    let row = server
        .storage()
        .document(&broken)
        .expect("lookup")
        .expect("row");
    server
        .storage()
        .append_changes(DocumentWrite {
            row,
            changes: vec![change.raw_bytes().to_vec()],
            new_actors: Vec::new(),
            files: None,
        })
        .expect("written");
    assert!(
        Record::load(
            &server.storage().chunks(&broken).expect("chunks").concat(),
            ActorId::from([1; 16])
        )
        .is_err(),
        "the stored record no longer loads"
    );

    let desk = Browser::sign_in(&server, "kosal").await;
    let res = desk
        .get(&format!("/console/export.json?case={}", c.case))
        .await;
    assert_eq!(res.status, 200, "{}", res.text());
    let json: serde_json::Value = res.json().expect("JSON");
    assert_eq!(json["count"], 1, "the readable record is exported");
    assert_eq!(
        json["skipped_unreadable"],
        serde_json::json!([broken.to_string()])
    );

    let res = desk
        .get(&format!(
            "/console/export.csv?case={}&kind=family_statement",
            c.case
        ))
        .await;
    assert_eq!(res.status, 200, "{}", res.text());
    assert_eq!(
        res.header("x-saksi-skipped"),
        Some(broken.to_string().as_str())
    );

    let res = desk.get(&format!("/console/report?case={}", c.case)).await;
    assert_eq!(res.status, 200, "{}", res.text());
    let html = res.text();
    assert!(html.contains("could not be read") && html.contains(&broken.to_string()));
    assert!(html.contains(COURT), "the readable record is in the report");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_local_ca_is_downloadable_and_the_console_shows_how_to_trust_it() {
    use base64::Engine as _;
    use sha2::Digest as _;
    let server = TestServer::start().await;
    server.user("kosal", Role::Coordinator);
    let pem = std::fs::read_to_string(server.data_dir.path().join("tls/ca.pem")).expect("CA");
    let trust = server.state.trust.clone().expect("local CA is the default");

    // Both forms without an account: a phone fetches the CA before anyone signs it in.
    let res = server.client.get("/ca.crt", None).await.expect("answer");
    assert_eq!(res.status, 200);
    assert_eq!(
        res.header("content-type"),
        Some("application/x-x509-ca-cert")
    );
    assert!(
        res.header("content-disposition")
            .is_some_and(|d| d.starts_with("attachment"))
    );
    assert_eq!(res.body, trust.ca_der, "the DER of ca.pem");
    let fingerprint = sha2::Sha256::digest(&res.body)
        .iter()
        .map(|b| format!("{b:02X}"))
        .collect::<Vec<_>>()
        .join(":");
    assert_eq!(fingerprint, trust.ca_fingerprint);
    let res = server.client.get("/ca.pem", None).await.expect("answer");
    assert_eq!(res.status, 200);
    assert_eq!(res.text(), pem);

    // The console page: the fingerprint to compare, a QR code of the download address for
    // each name, the steps per platform.
    let coordinator = Browser::sign_in(&server, "kosal").await;
    let html = coordinator.page("/console/certificate").await;
    assert!(html.contains(&trust.ca_fingerprint), "{html}");
    let port = server.addr.port();
    for name in ["localhost", "127.0.0.1"] {
        assert!(
            html.contains(&format!("https://{name}:{port}/ca.crt")),
            "download address for {name}"
        );
    }
    let qr = html
        .split("src=\"data:image/svg+xml;base64,")
        .nth(1)
        .and_then(|rest| rest.split('"').next())
        .expect("a QR code image");
    let svg = base64::engine::general_purpose::STANDARD
        .decode(qr)
        .expect("base64");
    assert!(String::from_utf8_lossy(&svg).contains("<svg"));
    for step in [
        "Android",
        "iPhone",
        "Firefox",
        "certutil",
        "renew-certificate",
    ] {
        assert!(html.contains(step), "{step}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn console_times_are_in_the_organisations_zone_and_the_report_keeps_utc() {
    // The default zone, Asia/Phnom_Penh (UTC+7, "+07").
    let server = TestServer::start().await;
    server.user("kosal", Role::Coordinator);
    let desk = Browser::sign_in(&server, "kosal").await;
    let audit = desk.page("/console/audit").await;
    let times: Vec<&str> = audit
        .split("<td class=\"time\">")
        .skip(1)
        .filter_map(|rest| rest.split('<').next())
        .collect();
    assert!(!times.is_empty(), "{audit}");
    assert!(times.iter().all(|t| t.ends_with(" +07")), "{times:?}");
    let report = desk.page("/console/report").await;
    assert!(report.contains(" UTC"), "the report is an export: UTC");
    assert!(!report.contains(" +07"));

    // An organisation that keeps UTC.
    let dir = tempfile::tempdir().expect("dir");
    let utc = TestServer::start_in(dir, |c| c.time_zone = "UTC".into()).await;
    utc.user("kosal", Role::Coordinator);
    let desk = Browser::sign_in(&utc, "kosal").await;
    let audit = desk.page("/console/audit").await;
    assert!(audit.contains(" UTC</td>"), "{audit}");
    assert!(!audit.contains(" +07"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_console_speaks_khmer_in_its_own_words_too() {
    let server = TestServer::start().await;
    server.user("kosal", Role::Coordinator);
    let c = observation_with_conflict(&server).await;
    let mut desk = Browser::sign_in(&server, "kosal").await;
    desk.cookie = format!("{}; saksi_lang=km", desk.cookie);
    let list = desk.page("/console/records").await;
    for khmer in [
        "កំណត់ត្រា",
        "គ្រប់សំណុំរឿង",
        "ត្រង",
        "ចំណងជើង",
        "ចាកចេញ",
        "ធ្វើបច្ចុប្បន្នភាព ថ្មីបំផុតមុន",
    ] {
        assert!(list.contains(khmer), "records page lacks {khmer}");
    }
    for english in [
        ">Any case<",
        ">Filter<",
        ">Title<",
        ">Sign out<",
        "record(s) match",
    ] {
        assert!(!list.contains(english), "records page still says {english}");
    }
    let record = desk.page(&format!("/console/records/{}", c.id)).await;
    for khmer in [
        "ទិន្នន័យផ្ទុយគ្នាត្រូវដោះស្រាយ",
        "ប្រើតម្លៃនេះ",
        "ការពិនិត្យ",
        "ផ្ដល់មតិតែប៉ុណ្ណោះ",
        "ដំណើរការពិនិត្យ",
    ] {
        assert!(record.contains(khmer), "record page lacks {khmer}");
    }
    for english in [
        "Conflicts to resolve",
        "Use this value",
        ">Comment only<",
        "Review trail",
    ] {
        assert!(
            !record.contains(english),
            "record page still says {english}"
        );
    }
    let history = desk
        .page(&format!("/console/records/{}/history", c.id))
        .await;
    assert!(history.contains("ពេលណា") && !history.contains(">When<"));
    let audit = desk.page("/console/audit").await;
    assert!(audit.contains("គ្រប់សកម្មភាព") && !audit.contains("Any action"));
    // And back in English.
    desk.cookie = desk.cookie.replace("saksi_lang=km", "saksi_lang=en");
    assert!(desk.page("/console/records").await.contains(">Any case<"));

    // The admin pages too.
    server.user("chenda", Role::Admin);
    let mut admin = Browser::sign_in(&server, "chenda").await;
    admin.cookie = format!("{}; saksi_lang=km", admin.cookie);
    for (path, khmer, english) in [
        ("/console/admin/users", "គណនីថ្មី", "New account"),
        ("/console/admin/devices", "ដកសិទ្ធិទូរស័ព្ទដែលបាត់", "Revoke a lost"),
        ("/console/admin/cases", "សំណុំរឿង និងក្រុម", "Cases and teams"),
    ] {
        let html = admin.page(path).await;
        assert!(html.contains(khmer) && !html.contains(english), "{path}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_coordinator_puts_a_mistaken_draft_away_and_can_give_it_back() {
    let server = TestServer::start().await;
    server.user("sophea", Role::Monitor);
    server.user("kosal", Role::Coordinator);
    let case = server.case("ករណី គ-៧", &["sophea"]);
    let t0 = server.clock_now();
    let (session, mut phone) = server.phone("sophea").await;
    let me = session.editor();
    // New record → Create, and nothing more: an "(untitled)" draft that syncs.
    let id = phone
        .repo
        .create(RecordKind::CourtObservation, &case, &me, t0, random_16());
    phone.sync_all(WAIT).await.expect("stored");

    let desk = Browser::sign_in(&server, "kosal").await;
    let html = desk.page(&format!("/console/records/{id}")).await;
    assert!(html.contains("value=\"archive\""), "a draft offers Archive");
    let res = desk
        .post(
            &format!("/console/records/{id}/review"),
            &[("action", "archive")],
        )
        .await;
    assert_eq!(res.status, 303, "{}", res.text());
    let archived = |repo: &saksi_shared::sync::Repo| {
        repo.record(&id)
            .and_then(|r| r.view().ok())
            .map(|v| v.status)
    };
    phone
        .sync_until(WAIT, |repo, _| archived(repo) == Some(Status::Archived))
        .await
        .expect("the phone learns it is archived");
    // The author can no longer change it; the server refuses a change made after seeing it.
    let edit = phone.repo.edit(&id, |r| {
        r.set_field("court", text(COURT), &me, t0 + ms(500))
    });
    assert!(matches!(edit, Some(Err(_))), "{edit:?}");
    let list = desk.page("/console/records?status=archived").await;
    assert!(list.contains(&format!("/console/records/{id}")));

    // Given back to its author (with a comment): open for changes again.
    let res = desk
        .post(
            &format!("/console/records/{id}/review"),
            &[("action", "reopen"), ("comment", "សូមបញ្ចប់កំណត់ត្រានេះ។")],
        )
        .await;
    assert_eq!(res.status, 303, "{}", res.text());
    phone
        .sync_until(WAIT, |repo, _| archived(repo) == Some(Status::NeedsChanges))
        .await
        .expect("the phone may edit it again");
    phone
        .repo
        .edit(&id, |r| {
            r.set_field("court", text(COURT), &me, t0 + ms(1_000))
        })
        .expect("doc")
        .expect("editable again");
    phone.sync_all(WAIT).await.expect("stored");
}
