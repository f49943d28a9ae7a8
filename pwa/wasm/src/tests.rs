//! The bindings driven from Rust (natively): everything but the JS value conversions, which the
//! browser test (`tests/browser/wasm.test.mjs`) covers.

use saksi_testkit::{ConnId, Hub};
use serde_json::{Value, json};

use super::*;

const COURT: &str = "សាលាដំបូងខេត្តកណ្ដាល";
const NARRATIVE: &str = "ការឃុំខ្លួនបណ្ដោះអាសន្ន";

fn editor(user: &str, device: &str, role: &str) -> String {
    json!({"user": user, "device": device, "role": role}).to_string()
}

fn engine(peer: &str, actor: u8, user: &str, role: &str) -> Engine {
    Engine::new(
        peer.into(),
        &[actor; 16],
        &editor(user, &format!("{user}-phone"), role),
    )
    .expect("valid engine arguments")
}

fn parse(json: &str) -> Value {
    serde_json::from_str(json).expect("the engine returns JSON")
}

/// Moves frames both ways until neither side has anything to say; returns the events.
fn pump(hub: &mut Hub, conn: ConnId, engine: &mut Engine) -> Vec<Value> {
    let mut events = Vec::new();
    for _ in 0..100 {
        let to_engine = hub.take_outgoing(conn);
        for frame in &to_engine {
            let received = engine.receive(frame).expect("hub frames are well formed");
            events.extend(parse(&received).as_array().cloned().unwrap_or_default());
        }
        let to_hub = engine.take_outgoing_frames();
        for frame in &to_hub {
            hub.deliver(conn, frame);
        }
        if to_engine.is_empty() && to_hub.is_empty() {
            return events;
        }
    }
    panic!("sync did not settle");
}

fn connect(hub: &mut Hub, engine: &mut Engine, user: &str, role: &str) -> (ConnId, Vec<Value>) {
    let who: Editor = serde_json::from_str(&editor(user, &format!("{user}-phone"), role)).unwrap();
    let conn = hub.connect(&who);
    hub.deliver(conn, &engine.connect());
    let events = pump(hub, conn, engine);
    (conn, events)
}

#[test]
fn khmer_round_trips_through_save_and_load() {
    let case = DocumentId::from_bytes([9; 16]).to_string();
    let mut phone = engine("tab-1", 1, "dara", "monitor");
    let id = phone
        .create_record("court_observation", &case, 1_000.0, &[2; 16])
        .unwrap();
    phone
        .set_field(&id, "court", &json!(COURT).to_string(), 2_000.0)
        .unwrap();
    phone
        .set_text(&id, "narrative", NARRATIVE, 3_000.0)
        .unwrap();
    phone
        .set_field(&id, "pretrial_detention_days", "45", 4_000.0)
        .unwrap();
    phone
        .set_list(&id, "charges", r#"["ញុះញង់", "art. 495"]"#, 5_000.0)
        .unwrap();
    let bytes = phone.save(&id).unwrap();

    let mut tablet = engine("tab-2", 3, "dara", "monitor");
    tablet.add_document(&id, &bytes, None).unwrap();
    assert_eq!(tablet.documents(), vec![id.clone()]);
    assert!(tablet.has(&id).unwrap());
    assert!(!tablet.is_empty(&id).unwrap());
    let view = parse(&tablet.view(&id).unwrap());
    assert_eq!(view["kind"], "court_observation");
    assert_eq!(view["status"], "draft");
    assert_eq!(view["case"], case);
    assert_eq!(view["fields"]["court"], COURT);
    assert_eq!(view["fields"]["narrative"], NARRATIVE);
    assert_eq!(view["fields"]["pretrial_detention_days"], 45);
    assert_eq!(view["fields"]["charges"], json!(["ញុះញង់", "art. 495"]));
    assert_eq!(view, parse(&phone.view(&id).unwrap()));

    // Splice positions count code points: "ការ" is 3 of them (9 UTF-8 bytes, 3 UTF-16 units).
    tablet
        .splice_text(&id, "narrative", 3.0, 0.0, " ", 6_000.0)
        .unwrap();
    let narrative = parse(&tablet.view(&id).unwrap())["fields"]["narrative"].clone();
    assert_eq!(narrative, "ការ ឃុំខ្លួនបណ្ដោះអាសន្ន");

    let history = parse(&tablet.history(&id).unwrap());
    assert_eq!(history.as_array().unwrap().len(), 6);
    assert_eq!(history[1]["by"]["user"], "dara");
    assert_eq!(history[1]["by"]["at"], 2_000);
    let court = parse(&tablet.field_history(&id, "court").unwrap());
    assert_eq!(court[0]["edits"][0]["type"], "set_field");
    assert_eq!(court[0]["edits"][0]["value"], COURT);
}

#[test]
fn workflow_and_validation_follow_the_role() {
    let case = DocumentId::from_bytes([9; 16]).to_string();
    let mut phone = engine("tab-1", 1, "dara", "monitor");
    let id = phone
        .create_record("court_observation", &case, 1_000.0, &[2; 16])
        .unwrap();
    assert_eq!(
        parse(&phone.allowed_transitions(&id).unwrap()),
        json!([{"to": "submitted", "action": "submit"}])
    );
    let problems = parse(&phone.validate(&id, "2026-01-02").unwrap());
    let required: Vec<&str> = problems
        .as_array()
        .unwrap()
        .iter()
        .filter(|p| p["code"] == "required")
        .map(|p| p["field"].as_str().unwrap())
        .collect();
    assert!(required.contains(&"court"), "{problems}");
    assert!(problems[0]["km"].as_str().unwrap().contains('«'));
    phone
        .set_field(&id, "hearing_date", "\"2026-02-01\"", 2_000.0)
        .unwrap();
    let problems = parse(&phone.validate(&id, "2026-01-02").unwrap());
    assert!(
        problems
            .as_array()
            .unwrap()
            .iter()
            .any(|p| p["field"] == "hearing_date" && p["code"] == "date_in_future")
    );

    phone
        .transition(&id, "submitted", Some("ready".into()), 3_000.0)
        .unwrap();
    assert_eq!(parse(&phone.allowed_transitions(&id).unwrap()), json!([]));
    let err = phone
        .transition(&id, "approved", None, 4_000.0)
        .unwrap_err();
    assert_eq!(
        err.to_string(),
        "a monitor cannot move a record from submitted to approved"
    );
    phone.comment(&id, "សួស្តី", 5_000.0).unwrap();
    let view = parse(&phone.view(&id).unwrap());
    assert_eq!(view["status"], "submitted");
    assert_eq!(view["review"][0]["action"], "submit");
    assert_eq!(view["review"][0]["text"], "ready");
    assert_eq!(view["review"][1]["text"], "សួស្តី");

    // A coordinator with the same bytes sees the reviewer's steps.
    let mut desk = engine("desk", 7, "sokha", "coordinator");
    desk.add_document(&id, &phone.save(&id).unwrap(), None)
        .unwrap();
    assert_eq!(
        parse(&desk.allowed_transitions(&id).unwrap()),
        json!([
            {"to": "needs_changes", "action": "request_changes"},
            {"to": "approved", "action": "approve"}
        ])
    );
    desk.resolve(&id, "court", &json!(COURT).to_string(), 6_000.0)
        .unwrap();
    assert!(
        phone
            .resolve(&id, "court", "\"x\"", 6_000.0)
            .unwrap_err()
            .to_string()
            .contains("only coordinators")
    );
}

/// The message of an expected error.
fn err<T>(result: Result<T, Error>) -> String {
    match result {
        Ok(_) => panic!("expected an error"),
        Err(e) => e.to_string(),
    }
}

#[test]
fn bad_input_is_an_error_not_a_panic() {
    let case = DocumentId::from_bytes([9; 16]).to_string();
    let ok_editor = editor("dara", "phone", "monitor");
    assert!(err(Engine::new("p".into(), &[1; 15], &ok_editor)).contains("16 bytes"));
    assert!(err(Engine::new("".into(), &[1; 16], &ok_editor)).contains("peerId"));
    assert!(err(Engine::new("p".into(), &[1; 16], "{")).contains("editorJson"));
    assert!(
        err(Engine::new(
            "p".into(),
            &[1; 16],
            &editor("dara", "phone", "king")
        ))
        .contains("editorJson")
    );
    assert!(
        err(Engine::new(
            "p".into(),
            &[1; 16],
            &editor("", "phone", "monitor")
        ))
        .contains("editor.user")
    );

    let mut e = engine("tab", 1, "dara", "monitor");
    assert!(err(e.create_record("memo", &case, 1.0, &[2; 16])).contains("not a record kind"));
    assert!(err(e.create_record("case", "", 1.0, &[2; 16])).contains("may not create"));
    assert!(err(e.create_record("court_observation", "nope", 1.0, &[2; 16])).contains("`nope`"));
    assert!(err(e.create_record("court_observation", &case, f64::NAN, &[2; 16])).contains("nowMs"));
    assert!(err(e.create_record("court_observation", &case, 1.0, &[2; 3])).contains("idBytes"));
    let id = e
        .create_record(
            "court_observation",
            &format!("automerge:{case}"),
            1.0,
            &[2; 16],
        )
        .unwrap();
    assert!(err(e.create_record("court_observation", &case, 1.0, &[2; 16])).contains("already"));

    let long_id = "z".repeat(10_000);
    let message = err(e.view(&long_id));
    assert!(
        message.contains("not a document id") && message.len() < 200,
        "{message}"
    );
    let absent = DocumentId::from_bytes([5; 16]).to_string();
    assert!(err(e.view(&absent)).contains("not on this device"));
    assert!(err(e.set_field(&absent, "court", "\"x\"", 1.0)).contains("not on this device"));
    assert!(err(e.sync_state(&absent)).contains("not on this device"));
    assert!(err(e.is_synced(&absent)).contains("not on this device"));
    assert!(err(e.has("")).contains("not a document id"));
    e.remove(&absent).unwrap();

    assert!(err(e.set_field(&id, "court", "not json", 1.0)).contains("valueJson"));
    assert!(err(e.set_field(&id, "court", "null", 1.0)).contains("valueJson"));
    assert!(err(e.set_field(&id, "court", "1.5", 1.0)).contains("valueJson"));
    assert!(err(e.set_field(&id, "nonsense", "\"x\"", 1.0)).contains("not a field"));
    assert!(err(e.set_field(&id, "court", "5", 1.0)).contains("takes text"));
    assert!(err(e.set_field(&id, "hearing_date", "\"tomorrow\"", 1.0)).contains("date"));
    assert!(err(e.set_field(&id, "court", "\"x\"", f64::INFINITY)).contains("nowMs"));
    assert!(err(e.set_list(&id, "charges", "{}", 1.0)).contains("itemsJson"));
    assert!(err(e.set_list(&id, "court", "[]", 1.0)).contains("a list"));
    assert!(err(e.splice_text(&id, "narrative", 1.0, 0.0, "x", 1.0)).contains("outside"));
    assert!(err(e.splice_text(&id, "narrative", -1.0, 0.0, "x", 1.0)).contains("pos"));
    assert!(err(e.splice_text(&id, "narrative", 0.5, 0.0, "x", 1.0)).contains("pos"));
    assert!(err(e.splice_text(&id, "narrative", 0.0, 1e300, "x", 1.0)).contains("del"));
    assert!(err(e.transition(&id, "done", None, 1.0)).contains("not a status"));
    assert!(err(e.validate(&id, "yesterday")).contains("YYYY-MM-DD"));
    assert!(err(e.add_document(&id, b"garbage", None)).contains("already"));
    let other = DocumentId::from_bytes([6; 16]).to_string();
    assert!(err(e.add_document(&other, b"garbage", None)).contains("could not be read"));
    assert!(!e.has(&other).unwrap());
    assert!(e.receive(b"\xff\x00garbage").is_err());
    assert!(e.receive(&[]).is_err());

    // A requested document is a placeholder, not a record.
    e.request(&other).unwrap();
    assert!(e.is_empty(&other).unwrap());
    assert!(err(e.view(&other)).contains("not a Saksi record"));
    assert!(err(e.allowed_transitions(&other)).contains("not a Saksi record"));
    assert_eq!(e.history(&other).unwrap(), "[]");
    assert!(err(date_of_millis(f64::NAN)).contains("ms"));
    // Nothing above changed the record.
    assert_eq!(parse(&e.history(&id).unwrap()).as_array().unwrap().len(), 1);
}

#[test]
fn syncs_through_a_hub_and_reports_events() {
    let mut hub = Hub::new();
    let case = hub.create_case([9; 16], saksi_testkit::at(1)).to_string();
    hub.add_member("dara", DocumentId::parse(&case).unwrap());

    let mut phone = engine("phone-tab", 1, "dara", "monitor");
    phone.set_storage_id("phone-storage".into());
    let id = phone
        .create_record("court_observation", &case, 1_000.0, &[2; 16])
        .unwrap();
    phone
        .set_text(&id, "narrative", NARRATIVE, 2_000.0)
        .unwrap();
    assert_eq!(phone.unsynced_count(), 1);
    assert!(!phone.is_connected());
    assert!(phone.take_outgoing_frames().is_empty());

    let (_conn, events) = connect(&mut hub, &mut phone, "dara", "monitor");
    assert_eq!(events[0], json!({"type": "connected", "server": "hub"}));
    assert!(phone.is_connected());
    assert!(phone.sync_state(&id).unwrap().is_some());
    let stored = hub
        .record(&DocumentId::parse(&id).unwrap())
        .expect("the hub has the new record");
    assert_eq!(
        stored.field("narrative").unwrap().unwrap().display(),
        NARRATIVE
    );

    // A coordinator asks for it and gets it; an unknown document is unavailable.
    let mut desk = engine("desk-tab", 7, "sokha", "coordinator");
    desk.request(&id).unwrap();
    let unknown = DocumentId::from_bytes([4; 16]).to_string();
    desk.request(&unknown).unwrap();
    let (desk_conn, events) = connect(&mut hub, &mut desk, "sokha", "coordinator");
    assert!(
        events.contains(&json!({"type": "changed", "id": id})),
        "{events:?}"
    );
    assert!(events.contains(&json!({"type": "unavailable", "id": unknown})));
    assert_eq!(
        parse(&desk.view(&id).unwrap())["fields"]["narrative"],
        NARRATIVE
    );

    // A monitor of another team creating a record in this case is refused.
    let mut outsider = engine("outsider-tab", 8, "vibol", "monitor");
    let refused_id = outsider
        .create_record("court_observation", &case, 1_000.0, &[3; 16])
        .unwrap();
    let (_, events) = connect(&mut hub, &mut outsider, "vibol", "monitor");
    let refusal = events
        .iter()
        .find(|e| e["type"] == "refused")
        .expect("a refusal");
    assert_eq!(refusal["id"], refused_id);
    assert!(refusal["message"].as_str().unwrap().contains("refused"));
    assert_eq!(outsider.refused(), vec![refused_id.clone()]);
    assert!(outsider.has(&refused_id).unwrap());

    // Disconnect keeps the sync state; edits wait for the next connection.
    desk.disconnected();
    hub.disconnect(desk_conn);
    assert!(!desk.is_connected());
    desk.comment(&id, "ល្អ", 9_000.0).unwrap();
    assert_eq!(desk.unsynced_count(), 1);
    assert!(desk.sync_state(&id).unwrap().is_some());
    connect(&mut hub, &mut desk, "sokha", "coordinator");
    let on_hub = hub.record(&DocumentId::parse(&id).unwrap()).unwrap();
    assert_eq!(on_hub.view().unwrap().review[0].text, "ល្អ");
}

/// `isSynced` / `unsyncedCount` once the server has applied a device's changes.
#[test]
fn the_server_acknowledges_what_it_applied() {
    let mut hub = Hub::new();
    let case = hub.create_case([9; 16], saksi_testkit::at(1)).to_string();
    hub.add_member("dara", DocumentId::parse(&case).unwrap());
    let mut phone = engine("phone-tab", 1, "dara", "monitor");
    let id = phone
        .create_record("court_observation", &case, 1_000.0, &[2; 16])
        .unwrap();
    assert_eq!(phone.unsynced_count(), 1);
    let (conn, _) = connect(&mut hub, &mut phone, "dara", "monitor");
    assert!(hub.record(&DocumentId::parse(&id).unwrap()).is_some());
    assert!(phone.is_synced(&id).unwrap());
    assert_eq!(phone.unsynced_count(), 0);
    phone.set_field(&id, "court", "\"x\"", 2_000.0).unwrap();
    assert_eq!(phone.unsynced_count(), 1);
    pump(&mut hub, conn, &mut phone);
    assert_eq!(phone.unsynced_count(), 0);
}

#[test]
fn helpers_outside_the_engine() {
    let catalogue = parse(&catalogue());
    assert_eq!(catalogue["kinds"].as_array().unwrap().len(), 3);
    assert_eq!(date_of_millis(951_782_400_000.0).unwrap(), "2000-02-29");
    assert_eq!(date_of_millis(0.9).unwrap(), "1970-01-01");
}

#[test]
fn files_are_attached_captioned_and_removed_through_the_engine() {
    let case = DocumentId::from_bytes([9; 16]).to_string();
    let mut phone = engine("tab-1", 1, "dara", "monitor");
    let id = phone
        .create_record("court_observation", &case, 1_000.0, &[4; 16])
        .expect("created");
    let mut hasher = Sha256Stream::new();
    hasher.update("សេចក្តីជូន".as_bytes());
    hasher.update("ដំណឹង".as_bytes());
    let sha = hasher.finish();
    assert_eq!(sha.len(), 64);
    let file = json!({
        "id": "ab".repeat(16), "sha256": sha, "size": 30, "type": "image/jpeg",
        "name": "សេចក្តីជូនដំណឹង.jpg", "captured_at": 1_100, "metadata": "removed"
    });
    phone
        .add_attachment(&id, &file.to_string(), 1_200.0)
        .expect("attached");
    let view = parse(&phone.view(&id).expect("view"));
    let entry = &view["attachments"][0];
    assert_eq!(entry["by"], "dara");
    assert_eq!(entry["device"], "dara-phone");
    assert_eq!(entry["type"], "image/jpeg");
    phone
        .set_caption(&id, &"ab".repeat(16), "ផ្ទាំងព័ត៌មាន", 1_300.0)
        .expect("captioned");
    assert_eq!(
        parse(&phone.view(&id).expect("view"))["attachments"][0]["caption"],
        "ផ្ទាំងព័ត៌មាន"
    );
    // A name with a path, or a second entry under the same id, is refused and changes nothing.
    let bad = json!({
        "id": "cd".repeat(16), "sha256": sha, "size": 30, "type": "image/jpeg",
        "name": "../x.jpg", "captured_at": 1_100
    });
    assert!(
        phone
            .add_attachment(&id, &bad.to_string(), 1_400.0)
            .is_err()
    );
    assert!(
        phone
            .add_attachment(&id, &file.to_string(), 1_400.0)
            .is_err()
    );
    phone
        .remove_attachment(&id, &"ab".repeat(16), 1_500.0)
        .expect("removed");
    assert_eq!(
        parse(&phone.view(&id).expect("view"))["attachments"],
        json!([])
    );
    // Photos: cleaned where the type allows, refused (not guessed) otherwise.
    assert!(strip_photo_metadata("image/heic", b"....").is_err());
}
