//! Property: 2–5 replicas edit one court observation offline (fields, narratives, lists,
//! status, comments, resolutions), then sync through the hub in random orders with random
//! disconnects. Afterwards every replica and the hub hold the same document, no edit is lost,
//! the hub refused nothing, and a field is reported in conflict exactly when concurrent writes
//! left it with two or more different values.
//!
//! The model tracks, for each write to a scalar register (a catalogue field, or `status`), which
//! earlier writes to the same register the writer had already seen: a write is *maximal* if no
//! later write saw it. The expected merged state of a register is the set of values of its
//! maximal puts (a concurrent clear does not remove a value it did not see).

use std::collections::{BTreeMap, BTreeSet, HashSet};
use std::time::Duration;

use proptest::prelude::*;
use saksi_shared::Timestamp;
use saksi_shared::automerge::{ChangeHash, ROOT, ReadDoc, ScalarValue, Value};
use saksi_shared::catalogue::RecordKind;
use saksi_shared::record::{FieldInput, FieldValue, RecordError};
use saksi_shared::sync::RESTORED_NOTE;
use saksi_shared::workflow::transitions_from;
use saksi_shared::{DocumentId, Editor, Role};
use saksi_testkit::Hub;
use saksi_testkit::at;

use crate::harness::{Net, Rng, editor, only_head, sorted_heads};

/// The devices taking part, in order; a scenario uses the first 2 to 5. Sokha has two devices.
const ROSTER: [(&str, &str, Role); 5] = [
    ("sokha", "sokha-phone", Role::Monitor),
    ("dara", "dara-phone", Role::Monitor),
    ("chenda", "chenda-laptop", Role::Coordinator),
    ("sokha", "sokha-tablet", Role::Monitor),
    ("vanna", "vanna-laptop", Role::Coordinator),
];

const SCALAR_FIELDS: usize = 6;
const LISTS: [&str; 3] = ["judges", "charges", "adjournments"];
const NARRATIVES: [&str; 2] = ["narrative", "evidence_notes"];

/// A scalar field and one of three valid values for it (few values, so that concurrent writes
/// sometimes agree and must then not be reported as a conflict).
fn scalar(field: usize, value: usize) -> (&'static str, FieldInput) {
    const TEXT: [(&str, [&str; 3]); SCALAR_FIELDS - 1] = [
        ("counsel_present", ["yes", "no", "unknown"]),
        ("verdict", ["convicted", "acquitted", "pending"]),
        (
            "court",
            ["សាលាដំបូងខេត្តកណ្ដាល", "Kandal Provincial Court", "សាលាឧទ្ធរណ៍ភ្នំពេញ"],
        ),
        ("hearing_date", ["2024-03-01", "2024-03-04", "2024-03-05"]),
        ("scheduled_start", ["08:00", "08:30", "14:00"]),
    ];
    let field = field % SCALAR_FIELDS;
    let value = value % 3;
    if field == SCALAR_FIELDS - 1 {
        (
            "pretrial_detention_days",
            FieldInput::Number([30, 45, 120][value]),
        )
    } else {
        let (id, values) = TEXT[field];
        (id, FieldInput::Text(values[value].to_owned()))
    }
}

fn scalar_ids() -> Vec<&'static str> {
    (0..SCALAR_FIELDS).map(|f| scalar(f, 0).0).collect()
}

fn to_value(input: &FieldInput) -> FieldValue {
    match input {
        FieldInput::Number(n) => FieldValue::Number(*n),
        FieldInput::Text(s) => FieldValue::Text(s.clone()),
    }
}

#[derive(Debug, Clone)]
enum Op {
    Set { field: usize, value: usize },
    Clear { field: usize },
    Type { narrative: usize, at: usize },
    ListInsert { list: usize, at: usize },
    ListRemove { list: usize, at: usize },
    ListSet { list: usize, at: usize },
    Status { pick: usize },
    Comment,
    Resolve { field: usize, value: usize },
}

fn op() -> impl Strategy<Value = Op> {
    prop_oneof![
        5 => (0..SCALAR_FIELDS, 0..3usize).prop_map(|(field, value)| Op::Set { field, value }),
        1 => (0..SCALAR_FIELDS).prop_map(|field| Op::Clear { field }),
        3 => (0..NARRATIVES.len(), any::<usize>())
            .prop_map(|(narrative, at)| Op::Type { narrative, at }),
        2 => (0..LISTS.len(), any::<usize>()).prop_map(|(list, at)| Op::ListInsert { list, at }),
        1 => (0..LISTS.len(), any::<usize>()).prop_map(|(list, at)| Op::ListRemove { list, at }),
        1 => (0..LISTS.len(), any::<usize>()).prop_map(|(list, at)| Op::ListSet { list, at }),
        2 => any::<usize>().prop_map(|pick| Op::Status { pick }),
        1 => Just(Op::Comment),
        1 => (0..SCALAR_FIELDS, 0..3usize).prop_map(|(field, value)| Op::Resolve { field, value }),
    ]
}

/// Offline edits, then a partial sync of some replicas (possibly cut short).
#[derive(Debug, Clone)]
struct Round {
    edits: Vec<(usize, Op)>,
    online: Vec<bool>,
    budget: usize,
}

#[derive(Debug, Clone)]
struct Scenario {
    replicas: usize,
    rounds: Vec<Round>,
    seed: u64,
    final_disconnects: usize,
}

fn scenario() -> impl Strategy<Value = Scenario> {
    let round = (
        prop::collection::vec((0..ROSTER.len(), op()), 0..=14),
        prop::collection::vec(any::<bool>(), ROSTER.len()),
        0..400usize,
    )
        .prop_map(|(edits, online, budget)| Round {
            edits,
            online,
            budget,
        });
    (
        2..=ROSTER.len(),
        prop::collection::vec(round, 1..=3),
        any::<u64>(),
        0..=2usize,
    )
        .prop_map(|(replicas, rounds, seed, final_disconnects)| Scenario {
            replicas,
            rounds,
            seed,
            final_disconnects,
        })
}

/// One write to a scalar register.
#[derive(Debug)]
struct Write {
    key: &'static str,
    /// `None` for a clear.
    value: Option<FieldValue>,
    hash: ChangeHash,
    user: String,
    device: String,
    /// A later write to the same register had this one in its history.
    superseded: bool,
}

#[derive(Debug, Default)]
struct Model {
    writes: Vec<Write>,
    /// Every change any replica made.
    changes: Vec<ChangeHash>,
    /// Narrative tokens typed, per narrative.
    tokens: BTreeMap<&'static str, Vec<String>>,
    /// List items inserted with `list_insert`, per list.
    inserted: BTreeMap<&'static str, Vec<String>>,
    /// Items some replica removed or replaced (as it saw them).
    targeted: HashSet<String>,
    /// Items written with `list_set`.
    replacements: HashSet<String>,
    comments: Vec<String>,
    review_entries: usize,
    seq: usize,
    now: Timestamp,
}

struct Run {
    net: Net,
    id: DocumentId,
    model: Model,
}

impl Run {
    fn setup(replicas: usize) -> Run {
        let mut hub = Hub::new();
        let case = hub.create_case([0xca; 16], at(1_000));
        hub.add_member("sokha", case);
        hub.add_member("dara", case);
        let mut net = Net::new(hub);
        for (i, (user, device, role)) in ROSTER.iter().take(replicas).enumerate() {
            net.add_phone(editor(user, device, *role), [i as u8 + 1; 16]);
        }
        let creator = net.phone(0).editor.clone();
        let id = net.phone_mut(0).repo.create(
            RecordKind::CourtObservation,
            &case,
            &creator,
            at(2_000),
            [0x0b; 16],
        );
        let mut model = Model {
            now: at(10_000),
            ..Model::default()
        };
        let created = only_head(net.phone(0).record(&id));
        model.changes.push(created);
        model.writes.push(Write {
            key: "status",
            value: Some(FieldValue::Text("draft".into())),
            hash: created,
            user: creator.who.user.clone(),
            device: creator.who.device.to_string(),
            superseded: false,
        });
        net.sync(0);
        for i in 1..replicas {
            net.phone_mut(i).repo.request(id);
            net.sync(i);
            assert_eq!(
                sorted_heads(net.phone(i).record(&id)),
                vec![created],
                "replica {i} got the new record"
            );
        }
        net.disconnect_all();
        Run { net, id, model }
    }

    /// Applies one operation on replica `r`, offline, and records what it did.
    fn apply(&mut self, r: usize, op: &Op) {
        let id = self.id;
        self.model.seq += 1;
        self.model.now = self.model.now + Duration::from_secs(1);
        let (seq, now) = (self.model.seq, self.model.now);
        let ed: Editor = self.net.phone(r).editor.clone();
        let view = self.net.phone(r).record(&id).view().expect("a record");
        let archived_for_me = !view.status.open_for_field_staff() && !ed.role.reviews();
        let heads_before = sorted_heads(self.net.phone(r).record(&id));
        // The values of the register the op writes, as this replica sees them before it.
        let register_before = match op {
            Op::Set { field, .. } | Op::Clear { field } | Op::Resolve { field, .. } => {
                register_values(self.net.phone(r).record(&id), scalar(*field, 0).0)
            }
            Op::Status { .. } => register_values(self.net.phone(r).record(&id), "status"),
            _ => Vec::new(),
        };
        // The register written, and the value (None = cleared), if the op writes one.
        let mut write: Option<(&'static str, Option<FieldValue>)> = None;
        let mut review = 0;
        let result: Result<(), RecordError> = match op {
            Op::Set { field, value } => {
                let (field, input) = scalar(*field, *value);
                write = Some((field, Some(to_value(&input))));
                self.edit(r, |rec| rec.set_field(field, input, &ed, now))
            }
            Op::Clear { field } => {
                let (field, _) = scalar(*field, 0);
                write = Some((field, None));
                self.edit(r, |rec| rec.clear_field(field, &ed, now))
            }
            Op::Type { narrative, at } => {
                let field = NARRATIVES[*narrative];
                let text = match view.fields.get(field) {
                    Some(FieldValue::Text(s)) => s.clone(),
                    _ => String::new(),
                };
                // Type only between whole tokens, so that every token must stay contiguous.
                let mut bounds = vec![0];
                bounds.extend(
                    text.chars()
                        .enumerate()
                        .filter(|(_, c)| *c == '›')
                        .map(|(i, _)| i + 1),
                );
                let pos = bounds[at % bounds.len()];
                let token = format!("‹{r}.{seq} សាក្សី›");
                let result = self.edit(r, |rec| rec.splice_text(field, pos, 0, &token, &ed, now));
                if result.is_ok() {
                    self.model.tokens.entry(field).or_default().push(token);
                }
                result
            }
            Op::ListInsert { list, at } => {
                let field = LISTS[*list];
                let len = list_of(&view, field).len();
                let item = format!("{r}.{seq} ចៅក្រម");
                let result = self.edit(r, |rec| {
                    rec.list_insert(field, at % (len + 1), &item, &ed, now)
                });
                if result.is_ok() {
                    self.model.inserted.entry(field).or_default().push(item);
                }
                result
            }
            Op::ListRemove { list, at } | Op::ListSet { list, at } => {
                let field = LISTS[*list];
                let items = list_of(&view, field);
                if items.is_empty() {
                    return;
                }
                let index = at % items.len();
                let replacement = format!("{r}.{seq} កែ");
                let result = self.edit(r, |rec| match op {
                    Op::ListSet { .. } => rec.list_set(field, index, &replacement, &ed, now),
                    _ => rec.list_remove(field, index, &ed, now),
                });
                if result.is_ok() {
                    self.model.targeted.insert(items[index].clone());
                    if matches!(op, Op::ListSet { .. }) {
                        self.model.replacements.insert(replacement);
                    }
                }
                result
            }
            Op::Status { pick } => {
                let steps: Vec<_> = transitions_from(view.status, ed.role).collect();
                if steps.is_empty() {
                    return;
                }
                let to = steps[pick % steps.len()].to;
                write = Some(("status", Some(FieldValue::Text(to.as_str().into()))));
                review = 1;
                let note = format!("{r}.{seq} ជំហាន");
                self.edit(r, |rec| rec.transition(to, Some(&note), &ed, now))
            }
            Op::Comment => {
                let text = format!("{r}.{seq} មតិយោបល់");
                review = 1;
                let result = self.edit(r, |rec| rec.comment(&text, &ed, now));
                if result.is_ok() {
                    self.model.comments.push(text);
                }
                result
            }
            Op::Resolve { field, value } => {
                let (field, input) = scalar(*field, *value);
                if !ed.role.reviews() {
                    let result = self.edit(r, |rec| rec.resolve(field, input, &ed, now));
                    assert_eq!(result, Err(RecordError::ReviewersOnly("resolve conflicts")));
                    return;
                }
                write = Some((field, Some(to_value(&input))));
                review = 1;
                self.edit(r, |rec| rec.resolve(field, input, &ed, now))
            }
        };
        match result {
            Ok(()) => {}
            // Field staff cannot edit an archived record: refused locally, nothing committed.
            Err(RecordError::Archived) if archived_for_me => return,
            Err(e) => panic!("replica {r} could not apply {op:?}: {e}"),
        }
        let record = self.net.phone(r).record(&id);
        // Writing the value a field already holds alone is no edit at all.
        if let Some((_, value)) = &write {
            let unchanged = match value {
                Some(v) => register_before == [v.clone()],
                None => register_before.is_empty(),
            };
            if unchanged {
                write = None;
            }
        }
        if sorted_heads(record) == heads_before {
            assert!(write.is_none() && review == 0, "{op:?} committed nothing");
            return;
        }
        let hash = only_head(record);
        self.model.changes.push(hash);
        self.model.review_entries += review;
        if let Some((key, value)) = write {
            for w in self.model.writes.iter_mut().filter(|w| w.key == key) {
                if w.hash != hash && record.doc().get_change_by_hash(&w.hash).is_some() {
                    w.superseded = true;
                }
            }
            self.model.writes.push(Write {
                key,
                value,
                hash,
                user: ed.who.user.clone(),
                device: ed.who.device.to_string(),
                superseded: false,
            });
        }
    }

    fn edit(
        &mut self,
        r: usize,
        f: impl FnOnce(&mut saksi_shared::Record) -> Result<(), RecordError>,
    ) -> Result<(), RecordError> {
        let id = self.id;
        self.net
            .phone_mut(r)
            .repo
            .edit(&id, f)
            .expect("every replica has the record")
    }

    fn check(&self) {
        let net = &self.net;
        let id = self.id;
        assert_eq!(net.hub.refusals(), &[], "the hub refused a legal change");
        for p in &net.phones {
            assert_eq!(
                p.refusals(),
                vec![],
                "{} saw a refusal",
                p.editor.who.device
            );
        }
        let hub_record = net.hub.record(&id).expect("the hub has the record");
        let expected_view = hub_record.view().expect("the hub's copy is a record");
        let hub_heads = sorted_heads(hub_record);
        for p in &net.phones {
            let record = p.record(&id);
            assert_eq!(
                sorted_heads(record),
                hub_heads,
                "{} heads",
                p.editor.who.device
            );
            assert_eq!(
                record.view().expect("a record"),
                expected_view,
                "{} view",
                p.editor.who.device
            );
        }
        // The hub's own changes: a reviewer's status put back after a concurrent step by
        // someone who could not have set it (see `Effects::restore_status`).
        let restored: Vec<String> = hub_record
            .doc()
            .get_changes(&[])
            .iter()
            .filter(|c| c.message() == Some(RESTORED_NOTE))
            .map(|c| c.hash().to_string())
            .collect();
        // No change is lost anywhere.
        let everyone = std::iter::once(hub_record).chain(net.phones.iter().map(|p| p.record(&id)));
        for record in everyone {
            for hash in &self.model.changes {
                assert!(
                    record.doc().get_change_by_hash(hash).is_some(),
                    "change {hash} is missing"
                );
            }
            assert_eq!(
                record.doc().get_changes(&[]).len(),
                self.model.changes.len() + restored.len(),
                "a replica holds changes nobody made"
            );
        }
        let view = &expected_view;

        // Narratives: every token typed, contiguous, exactly once, and nothing else.
        for field in NARRATIVES {
            let text = match view.fields.get(field) {
                Some(FieldValue::Text(s)) => s.clone(),
                None => String::new(),
                Some(other) => panic!("{field} is {other:?}"),
            };
            let tokens = self.model.tokens.get(field).cloned().unwrap_or_default();
            for token in &tokens {
                assert_eq!(text.matches(token.as_str()).count(), 1, "{token} in {text}");
            }
            let typed: usize = tokens.iter().map(|t| t.chars().count()).sum();
            assert_eq!(text.chars().count(), typed, "{field} holds only the tokens");
        }

        // Lists: an inserted item nobody removed or replaced is there exactly once; every item
        // is one somebody wrote.
        for field in LISTS {
            let items = list_of(view, field);
            let inserted = self.model.inserted.get(field).cloned().unwrap_or_default();
            for item in inserted
                .iter()
                .filter(|i| !self.model.targeted.contains(*i))
            {
                assert_eq!(
                    items.iter().filter(|i| *i == item).count(),
                    1,
                    "{item} in {field}: {items:?}"
                );
            }
            for item in &items {
                assert!(
                    inserted.contains(item) || self.model.replacements.contains(item),
                    "{item} in {field} was never written"
                );
            }
        }

        // Review trail: every entry made is there; comments exactly once.
        assert_eq!(view.review.len(), self.model.review_entries);
        for comment in &self.model.comments {
            assert_eq!(
                view.review.iter().filter(|e| &e.text == comment).count(),
                1,
                "{comment}"
            );
        }

        // Scalar registers: value and conflicts exactly as the concurrency model predicts.
        let mut expected_conflicts = BTreeSet::new();
        // Where the hub put a status back, the status register is its write after what it had
        // then, which the model does not follow: it is checked in `old_heads.rs` instead.
        let registers = scalar_ids()
            .into_iter()
            .chain(restored.is_empty().then_some("status"));
        for key in registers {
            let maximal: Vec<&Write> = self
                .model
                .writes
                .iter()
                .filter(|w| w.key == key && !w.superseded)
                .collect();
            let values: BTreeSet<String> = maximal
                .iter()
                .filter_map(|w| w.value.as_ref().map(FieldValue::display))
                .collect();
            let shown = if key == "status" {
                Some(view.status.as_str().to_owned())
            } else {
                view.fields.get(key).map(FieldValue::display)
            };
            let conflict = view.conflicts.iter().find(|c| c.field == key);
            match values.len() {
                0 => assert_eq!(shown, None, "{key} was cleared"),
                1 => {
                    assert_eq!(shown.as_ref(), values.first(), "{key}");
                    assert!(conflict.is_none(), "{key} is not in conflict: {conflict:?}");
                }
                _ => {
                    expected_conflicts.insert(key.to_owned());
                    let conflict = conflict.unwrap_or_else(|| {
                        panic!("{key} must be in conflict: {maximal:?}, view {view:#?}")
                    });
                    let got: BTreeSet<String> =
                        conflict.values.iter().map(|v| v.value.display()).collect();
                    assert_eq!(
                        got, values,
                        "{key}: the conflict lists every concurrent value"
                    );
                    assert_eq!(conflict.values.len(), values.len(), "{key}: no duplicates");
                    assert_eq!(
                        Some(conflict.values[0].value.display()),
                        shown,
                        "{key}: the shown value comes first"
                    );
                    for v in &conflict.values {
                        let author = maximal
                            .iter()
                            .find(|w| w.hash.to_string() == v.by.change)
                            .unwrap_or_else(|| panic!("{key}: {:?} is not a concurrent write", v));
                        assert_eq!(author.value.as_ref(), Some(&v.value));
                        assert_eq!(v.by.user.as_deref(), Some(author.user.as_str()));
                        assert_eq!(v.by.device.as_deref(), Some(author.device.as_str()));
                    }
                }
            }
        }
        let reported: BTreeSet<String> = view
            .conflicts
            .iter()
            .map(|c| c.field.clone())
            .filter(|f| restored.is_empty() || f != "status")
            .collect();
        assert_eq!(reported, expected_conflicts, "conflicts reported");
    }
}

/// Every value a scalar register holds (several when in conflict).
fn register_values(record: &saksi_shared::Record, key: &str) -> Vec<FieldValue> {
    let doc = record.doc();
    let obj = if key == "status" {
        ROOT
    } else {
        match doc.get(ROOT, "fields").expect("readable") {
            Some((_, fields)) => fields,
            None => return Vec::new(),
        }
    };
    doc.get_all(&obj, key)
        .expect("readable")
        .into_iter()
        .filter_map(|(value, _)| match value {
            Value::Scalar(s) => match s.as_ref() {
                ScalarValue::Str(t) => Some(FieldValue::Text(t.to_string())),
                ScalarValue::Int(n) => Some(FieldValue::Number(*n)),
                ScalarValue::Uint(n) => Some(FieldValue::Number(*n as i64)),
                _ => None,
            },
            Value::Object(_) => None,
        })
        .collect()
}

fn list_of(view: &saksi_shared::RecordView, field: &str) -> Vec<String> {
    match view.fields.get(field) {
        Some(FieldValue::List(items)) => items.clone(),
        None => Vec::new(),
        Some(other) => panic!("{field} is {other:?}"),
    }
}

fn run(scenario: &Scenario) -> Run {
    let mut run = Run::setup(scenario.replicas);
    let mut rng = Rng::new(scenario.seed);
    for round in &scenario.rounds {
        for (r, op) in &round.edits {
            run.apply(r % scenario.replicas, op);
        }
        for (i, online) in round.online.iter().take(scenario.replicas).enumerate() {
            if *online {
                run.net.connect(i);
            }
        }
        let drops = usize::from(round.budget % 3 == 0);
        run.net.run_random(&mut rng, round.budget, drops);
        run.net.disconnect_all();
    }
    run.net.settle_random(&mut rng, scenario.final_disconnects);
    run.check();
    run
}

proptest! {
    #![proptest_config(ProptestConfig {
        cases: 64,
        max_shrink_iters: 2_000,
        ..ProptestConfig::default()
    })]

    #[test]
    fn replicas_converge_and_report_exactly_the_concurrent_conflicts(s in scenario()) {
        run(&s);
    }
}

/// A fixed scenario that always has a conflict, a concurrent status step and interleaved
/// typing, so the interesting paths run even if the random cases happen to miss them.
#[test]
fn three_replicas_with_concurrent_writes_to_every_kind_of_field() {
    let scenario = Scenario {
        replicas: 3,
        rounds: vec![
            Round {
                edits: vec![
                    (0, Op::Set { field: 0, value: 0 }),
                    (1, Op::Set { field: 0, value: 1 }),
                    (2, Op::Set { field: 0, value: 1 }),
                    (
                        0,
                        Op::Type {
                            narrative: 0,
                            at: 0,
                        },
                    ),
                    (
                        1,
                        Op::Type {
                            narrative: 0,
                            at: 0,
                        },
                    ),
                    (2, Op::ListInsert { list: 0, at: 0 }),
                    (0, Op::ListInsert { list: 0, at: 0 }),
                    (0, Op::Status { pick: 0 }),
                    (1, Op::Status { pick: 0 }),
                    (1, Op::Set { field: 5, value: 2 }),
                    (2, Op::Set { field: 5, value: 1 }),
                ],
                online: vec![true, true, true, false, false],
                budget: 300,
            },
            Round {
                edits: vec![
                    (2, Op::Resolve { field: 5, value: 0 }),
                    (0, Op::Set { field: 5, value: 2 }),
                    (1, Op::ListSet { list: 0, at: 1 }),
                    (2, Op::Comment),
                ],
                online: vec![false; 5],
                budget: 0,
            },
        ],
        seed: 7,
        final_disconnects: 1,
    };
    let run = run(&scenario);
    let view = run
        .net
        .hub
        .record(&run.id)
        .expect("record")
        .view()
        .expect("view");
    let conflicted: Vec<&str> = view.conflicts.iter().map(|c| c.field.as_str()).collect();
    assert!(conflicted.contains(&"counsel_present"), "{conflicted:?}");
    assert!(
        !view
            .fields
            .get("narrative")
            .expect("typed")
            .display()
            .is_empty()
    );
}
