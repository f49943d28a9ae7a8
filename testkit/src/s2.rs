//! Scenario S2 (docs/SCENARIOS.md), written once: two monitors at the same hearing edit one
//! court observation offline. The first fills the record before the hearing; in the courtroom,
//! with no signal, the first adds the judges and notes and says counsel was present, the second
//! the verdict and notes of her own and says counsel was not. After they reconnect every edit
//! is merged and the one disagreement is a conflict naming both.
//!
//! The crate-level test (over [`crate::Hub`]), the server's sync test and its console tests
//! (over a real server) make these same edits and check the merge with [`check_merged`].

use crate::ms;
use saksi_shared::record::{Editor, FieldInput, Record, RecordError, RecordView};
use saksi_shared::{FieldValue, Timestamp};

pub const COURT: &str = "សាលាដំបូងរាជធានីភ្នំពេញ";
pub const CASE_NUMBER: &str = "០១២/២០២៦";
pub const HEARING_DATE: &str = "2026-03-02";
pub const JUDGE_1: &str = "ចៅក្រម សុខ ចាន់ធា";
pub const JUDGE_2: &str = "ចៅក្រម ម៉ៅ ចន្ទា";
/// The narrative's last paragraph, written once (a page that repeats it shows it twice).
pub const CONCLUSION: &str = "\n\nសេចក្តីសន្និដ្ឋាន៖ គ្មានអ្នកបកប្រែ។";
/// What the first monitor types in the courtroom (Khmer).
pub const FIRST_NOTES: &str = "ជនជាប់ចោទត្រូវបានដាក់ខ្នោះពេលចូលបន្ទប់សវនាការ។ ";
/// What the second monitor types in the courtroom.
pub const SECOND_NOTES: &str =
    "The prosecutor read the charges in Khmer only; no interpreter was offered. ";

/// The narrative before the hearing: a long Khmer text (about 2,000 characters) and
/// [`CONCLUSION`].
pub fn narrative_before() -> String {
    format!(
        "{}{CONCLUSION}",
        "ព្រឹកនេះ សវនាការបានចាប់ផ្តើមយឺតជាងការគ្រោងទុកមួយម៉ោង។ ".repeat(40)
    )
}

fn text(s: &str) -> FieldInput {
    FieldInput::Text(s.to_owned())
}

/// Before the hearing, online: the first monitor fills the record's header and narrative.
pub fn before_the_hearing(r: &mut Record, e: &Editor, t: Timestamp) -> Result<(), RecordError> {
    r.set_field("court", text(COURT), e, t)?;
    r.set_field("case_number", text(CASE_NUMBER), e, t + ms(100))?;
    r.set_field("hearing_date", text(HEARING_DATE), e, t + ms(200))?;
    r.set_field("stage", text("trial"), e, t + ms(300))?;
    r.set_text("narrative", &narrative_before(), e, t + ms(400))
}

/// In the courtroom, offline: the first monitor's edits (counsel present: yes).
pub fn first_monitor_offline(r: &mut Record, e: &Editor, t: Timestamp) -> Result<(), RecordError> {
    r.set_list("judges", &[JUDGE_1.into(), JUDGE_2.into()], e, t)?;
    r.splice_text("narrative", 0, 0, FIRST_NOTES, e, t + ms(100))?;
    r.set_field("counsel_present", text("yes"), e, t + ms(200))
}

/// In the courtroom, offline: the second monitor's edits (counsel present: no).
pub fn second_monitor_offline(r: &mut Record, e: &Editor, t: Timestamp) -> Result<(), RecordError> {
    r.set_field("verdict", text("convicted"), e, t)?;
    r.splice_text("narrative", 0, 0, SECOND_NOTES, e, t + ms(100))?;
    r.set_field("counsel_present", text("no"), e, t + ms(200))
}

/// Checks the merged record: every edit kept, both notes intact beside the earlier narrative,
/// and one conflict on `counsel_present` naming the first monitor ("yes") and the second ("no")
/// by user and device.
pub fn check_merged(view: &RecordView, first: &Editor, second: &Editor) {
    assert_eq!(
        view.fields.get("court"),
        Some(&FieldValue::Text(COURT.into()))
    );
    assert_eq!(
        view.fields.get("judges"),
        Some(&FieldValue::List(vec![JUDGE_1.into(), JUDGE_2.into()]))
    );
    assert_eq!(
        view.fields.get("verdict"),
        Some(&FieldValue::Text("convicted".into()))
    );
    let narrative = view.fields.get("narrative").expect("narrative").display();
    for part in [FIRST_NOTES, SECOND_NOTES, narrative_before().as_str()] {
        assert!(narrative.contains(part), "{part:?} kept in {narrative:?}");
    }
    assert_eq!(
        narrative.chars().count(),
        FIRST_NOTES.chars().count()
            + SECOND_NOTES.chars().count()
            + narrative_before().chars().count(),
        "nothing else in the narrative"
    );
    assert_eq!(view.conflicts.len(), 1, "{:?}", view.conflicts);
    let conflict = &view.conflicts[0];
    assert_eq!(conflict.field, "counsel_present");
    let mut votes: Vec<(String, String, saksi_shared::DeviceId)> = conflict
        .values
        .iter()
        .map(|v| {
            (
                v.value.display(),
                v.by.user.clone().expect("named"),
                v.by.device.clone().expect("named"),
            )
        })
        .collect();
    votes.sort();
    assert_eq!(
        votes,
        [
            (
                "no".into(),
                second.who.user.clone(),
                second.who.device.clone()
            ),
            (
                "yes".into(),
                first.who.user.clone(),
                first.who.device.clone()
            ),
        ]
    );
    assert_eq!(
        view.fields.get("counsel_present"),
        Some(&conflict.values[0].value),
        "the value shown is listed first"
    );
}
