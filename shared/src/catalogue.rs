//! The field catalogue: every field of every record kind, in one place.
//!
//! The PWA renders its forms from it (as JSON, through wasm), the server validates incoming
//! changes and exports with it, and the coordinator console labels merged values with it.
//! Court observation fields follow fair-trial monitoring practice (public hearing, detention,
//! counsel, presumption of innocence, interpreter, evidence, judgment); family statements carry
//! informed consent explicitly.
//!
//! Labels are given in English and Khmer. The Khmer wording is a working translation to be
//! reviewed by the organisation's Khmer-speaking staff before deployment.

use serde::{Deserialize, Serialize};

/// The kinds of document Saksi stores.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum RecordKind {
    /// A case: the detained person(s), the proceedings, the team that follows it.
    Case,
    /// A monitor's observation of one court hearing.
    CourtObservation,
    /// A liaison's record of a statement by a detainee's family member.
    FamilyStatement,
}

impl RecordKind {
    pub const ALL: [RecordKind; 3] = [
        RecordKind::Case,
        RecordKind::CourtObservation,
        RecordKind::FamilyStatement,
    ];

    /// The name stored in documents (`kind` at the root).
    pub fn as_str(self) -> &'static str {
        match self {
            RecordKind::Case => "case",
            RecordKind::CourtObservation => "court_observation",
            RecordKind::FamilyStatement => "family_statement",
        }
    }

    pub fn parse(s: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|k| k.as_str() == s)
    }

    /// The catalogue entry of this kind.
    pub fn def(self) -> &'static KindDef {
        match self {
            RecordKind::Case => &CASE,
            RecordKind::CourtObservation => &COURT_OBSERVATION,
            RecordKind::FamilyStatement => &FAMILY_STATEMENT,
        }
    }
}

/// The type of one field, which decides how it is stored in the document.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum FieldType {
    /// A short single-line string (a scalar register: concurrent writes become a conflict).
    Text,
    /// A narrative stored as automerge Text: concurrent typing merges character by character.
    LongText,
    /// `YYYY-MM-DD`.
    Date,
    /// `HH:MM`, 24-hour clock.
    Time,
    /// A whole number (e.g. days of pre-trial detention).
    Number,
    /// One of the field's `choices`.
    Enum,
    /// `yes`, `no` or `unknown`.
    YesNoUnknown,
    /// An ordered list of short strings (judges, charges, adjournments).
    List,
}

impl FieldType {
    /// Whether the field is a scalar register (and can therefore be in conflict).
    pub fn is_scalar(self) -> bool {
        !matches!(self, Self::LongText | Self::List)
    }
}

/// A label or help text in the two languages of the app.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub struct Label {
    pub en: &'static str,
    pub km: &'static str,
}

impl Label {
    pub fn get(&self, lang: Lang) -> &'static str {
        match lang {
            Lang::En => self.en,
            Lang::Km => self.km,
        }
    }
}

/// A display language.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Lang {
    #[default]
    En,
    Km,
}

impl Lang {
    pub fn parse(s: &str) -> Option<Self> {
        match s {
            "en" => Some(Lang::En),
            "km" => Some(Lang::Km),
            _ => None,
        }
    }
}

/// One allowed value of an enum field.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub struct Choice {
    pub id: &'static str,
    pub label: Label,
}

/// A group of fields shown together.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub struct Section {
    pub id: &'static str,
    pub label: Label,
}

/// One field of a record kind.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub struct FieldDef {
    pub id: &'static str,
    #[serde(rename = "type")]
    pub field_type: FieldType,
    pub section: &'static str,
    /// Must be filled before the record can be submitted.
    pub required: bool,
    pub label: Label,
    pub help: Label,
    /// Allowed values for [`FieldType::Enum`] and [`FieldType::YesNoUnknown`].
    pub choices: &'static [Choice],
}

impl FieldDef {
    /// Longest accepted value, in Unicode scalar values (per item for lists).
    pub fn max_chars(&self) -> usize {
        match self.field_type {
            LongText => MAX_LONG_TEXT_CHARS,
            _ => MAX_SHORT_TEXT_CHARS,
        }
    }

    pub fn has_choice(&self, value: &str) -> bool {
        self.choices.iter().any(|c| c.id == value)
    }
}

/// Upper bound for a short field value or list item.
pub const MAX_SHORT_TEXT_CHARS: usize = 2_000;
/// Upper bound for a narrative.
pub const MAX_LONG_TEXT_CHARS: usize = 200_000;
/// Upper bound for the number of items in a list field.
pub const MAX_LIST_ITEMS: usize = 500;

/// The catalogue entry of a record kind.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub struct KindDef {
    pub kind: RecordKind,
    pub label: Label,
    pub sections: &'static [Section],
    pub fields: &'static [FieldDef],
    /// Fields whose values, joined, make the record's title in lists.
    pub title_fields: &'static [&'static str],
    /// The record's files (photos, audio, documents; see [`crate::attachment`]).
    pub attachments: AttachmentsDef,
}

/// How a record kind presents its files.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub struct AttachmentsDef {
    pub label: Label,
    pub help: Label,
}

impl KindDef {
    pub fn field(&self, id: &str) -> Option<&'static FieldDef> {
        self.fields.iter().find(|f| f.id == id)
    }
}

/// The whole catalogue as JSON, for the PWA and exports.
pub fn catalogue_json() -> String {
    #[derive(Serialize)]
    struct Catalogue {
        schema_version: u64,
        kinds: [&'static KindDef; 3],
        statuses: Vec<StatusLabel>,
        yes_no_unknown: &'static [Choice],
    }
    #[derive(Serialize)]
    struct StatusLabel {
        id: &'static str,
        label: Label,
    }
    let catalogue = Catalogue {
        schema_version: crate::schema::CURRENT_SCHEMA_VERSION,
        kinds: [&CASE, &COURT_OBSERVATION, &FAMILY_STATEMENT],
        statuses: crate::workflow::Status::ALL
            .iter()
            .map(|s| StatusLabel {
                id: s.as_str(),
                label: s.label(),
            })
            .collect(),
        yes_no_unknown: YES_NO_UNKNOWN,
    };
    serde_json::to_string(&catalogue).expect("the catalogue is plain data and always serialises")
}

const fn l(en: &'static str, km: &'static str) -> Label {
    Label { en, km }
}

const fn c(id: &'static str, en: &'static str, km: &'static str) -> Choice {
    Choice {
        id,
        label: l(en, km),
    }
}

const NO_HELP: Label = l("", "");

/// The choices of every yes/no/unknown field.
pub const YES_NO_UNKNOWN: &[Choice] = &[
    c("yes", "Yes", "បាទ/ចាស"),
    c("no", "No", "ទេ"),
    c("unknown", "Unknown", "មិនដឹង"),
];

const fn field(
    id: &'static str,
    field_type: FieldType,
    section: &'static str,
    required: bool,
    label: Label,
    help: Label,
) -> FieldDef {
    FieldDef {
        id,
        field_type,
        section,
        required,
        label,
        help,
        choices: match field_type {
            FieldType::YesNoUnknown => YES_NO_UNKNOWN,
            _ => &[],
        },
    }
}

const fn choice_field(
    id: &'static str,
    section: &'static str,
    required: bool,
    label: Label,
    help: Label,
    choices: &'static [Choice],
) -> FieldDef {
    FieldDef {
        id,
        field_type: FieldType::Enum,
        section,
        required,
        label,
        help,
        choices,
    }
}

use FieldType::{Date, List, LongText, Number, Text, Time, YesNoUnknown as Ynu};

/// A case: who is detained, which proceedings, which team.
pub static CASE: KindDef = KindDef {
    kind: RecordKind::Case,
    label: l("Case", "សំណុំរឿង"),
    sections: &[Section {
        id: "case",
        label: l("Case", "សំណុំរឿង"),
    }],
    fields: &[
        field(
            "name",
            Text,
            "case",
            true,
            l("Case name", "ឈ្មោះសំណុំរឿង"),
            l(
                "A short name the team uses; avoid full names of people at risk.",
                "ឈ្មោះខ្លីដែលក្រុមប្រើ ជៀសវាងឈ្មោះពេញរបស់អ្នកដែលប្រឈមនឹងហានិភ័យ។",
            ),
        ),
        field(
            "reference",
            Text,
            "case",
            false,
            l("Court file reference", "លេខសំណុំរឿងតុលាការ"),
            NO_HELP,
        ),
        field("court", Text, "case", false, l("Court", "តុលាការ"), NO_HELP),
        field(
            "detainees",
            List,
            "case",
            false,
            l("Detained persons", "អ្នកជាប់ឃុំ"),
            NO_HELP,
        ),
        field(
            "summary",
            LongText,
            "case",
            false,
            l("Summary", "សេចក្តីសង្ខេប"),
            NO_HELP,
        ),
    ],
    title_fields: &["name"],
    attachments: AttachmentsDef {
        label: l("Files", "ឯកសារភ្ជាប់"),
        help: l(
            "Documents of the case: court papers, letters, photographs.",
            "ឯកសាររបស់សំណុំរឿង៖ ឯកសារតុលាការ លិខិត រូបថត។",
        ),
    },
};

/// The choices of the hearing stage.
pub const STAGES: &[Choice] = &[
    c("investigation", "Investigation", "ការស៊ើបសួរ"),
    c("pre_trial", "Pre-trial hearing", "សវនាការមុនជំនុំជម្រះ"),
    c("trial", "Trial", "ការជំនុំជម្រះ"),
    c("verdict", "Verdict announcement", "ការប្រកាសសាលក្រម"),
    c("appeal", "Appeal", "បណ្តឹងឧទ្ធរណ៍"),
    c("supreme_court", "Supreme Court", "តុលាការកំពូល"),
    c("other", "Other", "ផ្សេងៗ"),
];

/// How defence counsel came to act.
pub const COUNSEL_TYPES: &[Choice] = &[
    c("chosen", "Chosen by the accused", "ជ្រើសរើសដោយជនជាប់ចោទ"),
    c("appointed", "Appointed by the court", "តែងតាំងដោយតុលាការ"),
    c("none", "No counsel", "គ្មានមេធាវី"),
    c("unknown", "Unknown", "មិនដឹង"),
];

/// The outcome of a hearing.
pub const VERDICTS: &[Choice] = &[
    c("convicted", "Convicted", "ផ្តន្ទាទោស"),
    c("partially_convicted", "Partly convicted", "ផ្តន្ទាទោសមួយផ្នែក"),
    c("acquitted", "Acquitted", "រួចខ្លួន"),
    c("dismissed", "Charges dismissed", "ទម្លាក់ការចោទប្រកាន់"),
    c("adjourned", "Adjourned, no verdict", "ពន្យារពេល គ្មានសាលក្រម"),
    c("pending", "Verdict pending", "រង់ចាំសាលក្រម"),
];

/// A court observation, grouped the way fair-trial monitoring forms usually are.
pub static COURT_OBSERVATION: KindDef = KindDef {
    kind: RecordKind::CourtObservation,
    label: l("Court observation", "ការសង្កេតសវនាការ"),
    sections: &[
        Section {
            id: "hearing",
            label: l("Hearing", "សវនាការ"),
        },
        Section {
            id: "public",
            label: l("Public hearing", "សវនាការជាសាធារណៈ"),
        },
        Section {
            id: "detention",
            label: l("Detention", "ការឃុំខ្លួន"),
        },
        Section {
            id: "counsel",
            label: l("Defence counsel", "មេធាវីការពារក្តី"),
        },
        Section {
            id: "accused",
            label: l("The accused", "ជនជាប់ចោទ"),
        },
        Section {
            id: "presumption",
            label: l("Presumption of innocence", "គោលការណ៍សន្មតថាគ្មានទោស"),
        },
        Section {
            id: "interpreter",
            label: l("Interpreter", "អ្នកបកប្រែ"),
        },
        Section {
            id: "evidence",
            label: l("Evidence and witnesses", "ភស្តុតាង និងសាក្សី"),
        },
        Section {
            id: "judgment",
            label: l("Judgment", "សាលក្រម"),
        },
        Section {
            id: "narrative",
            label: l("Narrative", "កំណត់ហេតុ"),
        },
    ],
    fields: &[
        // Hearing
        field(
            "court",
            Text,
            "hearing",
            true,
            l("Court", "តុលាការ"),
            NO_HELP,
        ),
        field(
            "case_number",
            Text,
            "hearing",
            true,
            l("Case number", "លេខសំណុំរឿង"),
            NO_HELP,
        ),
        field(
            "hearing_date",
            Date,
            "hearing",
            true,
            l("Hearing date", "កាលបរិច្ឆេទសវនាការ"),
            NO_HELP,
        ),
        choice_field(
            "stage",
            "hearing",
            true,
            l("Stage of proceedings", "ដំណាក់កាលនីតិវិធី"),
            NO_HELP,
            STAGES,
        ),
        field(
            "scheduled_start",
            Time,
            "hearing",
            false,
            l("Scheduled start", "ម៉ោងចាប់ផ្តើមតាមកាលវិភាគ"),
            NO_HELP,
        ),
        field(
            "actual_start",
            Time,
            "hearing",
            false,
            l("Actual start", "ម៉ោងចាប់ផ្តើមពិតប្រាកដ"),
            NO_HELP,
        ),
        field(
            "judges",
            List,
            "hearing",
            false,
            l("Judges", "ចៅក្រម"),
            l("Presiding judge first.", "ចៅក្រមជាប្រធានក្រុមប្រឹក្សាជំនុំជម្រះមុនគេ។"),
        ),
        field(
            "prosecutor",
            Text,
            "hearing",
            false,
            l("Prosecutor", "ព្រះរាជអាជ្ញា"),
            NO_HELP,
        ),
        field(
            "defence_counsel",
            List,
            "hearing",
            false,
            l("Defence lawyers", "មេធាវីការពារក្តី"),
            NO_HELP,
        ),
        field(
            "charges",
            List,
            "hearing",
            true,
            l("Charges and articles", "បទចោទ និងមាត្រា"),
            l(
                "One charge per line, with the article of the law.",
                "បទចោទមួយក្នុងមួយបន្ទាត់ ជាមួយមាត្រានៃច្បាប់។",
            ),
        ),
        field(
            "accused",
            List,
            "hearing",
            true,
            l("Accused", "ជនជាប់ចោទ"),
            l(
                "Use the name or code agreed in the case file.",
                "ប្រើឈ្មោះ ឬលេខកូដដែលបានព្រមព្រៀងក្នុងសំណុំរឿង។",
            ),
        ),
        // Public hearing
        field(
            "public_admitted",
            Ynu,
            "public",
            true,
            l("Public admitted", "សាធារណជនត្រូវបានអនុញ្ញាតឱ្យចូល"),
            NO_HELP,
        ),
        field(
            "family_admitted",
            Ynu,
            "public",
            false,
            l("Family admitted", "ក្រុមគ្រួសារត្រូវបានអនុញ្ញាតឱ្យចូល"),
            NO_HELP,
        ),
        field(
            "press_admitted",
            Ynu,
            "public",
            false,
            l("Press admitted", "អ្នកសារព័ត៌មានត្រូវបានអនុញ្ញាតឱ្យចូល"),
            NO_HELP,
        ),
        field(
            "monitors_admitted",
            Ynu,
            "public",
            true,
            l("Monitors admitted", "អ្នកសង្កេតការណ៍ត្រូវបានអនុញ្ញាតឱ្យចូល"),
            NO_HELP,
        ),
        field(
            "hearing_closed",
            Ynu,
            "public",
            false,
            l("Hearing closed to the public", "សវនាការបិទទ្វារ"),
            NO_HELP,
        ),
        field(
            "closure_reason",
            Text,
            "public",
            false,
            l("Stated reason for closure", "មូលហេតុនៃការបិទទ្វារ"),
            NO_HELP,
        ),
        // Detention
        field(
            "arrest_date",
            Date,
            "detention",
            false,
            l("Date of arrest", "កាលបរិច្ឆេទចាប់ខ្លួន"),
            NO_HELP,
        ),
        field(
            "pretrial_detention_days",
            Number,
            "detention",
            false,
            l("Pre-trial detention (days)", "រយៈពេលឃុំខ្លួនបណ្ដោះអាសន្ន (ថ្ងៃ)"),
            NO_HELP,
        ),
        // Counsel
        field(
            "counsel_present",
            Ynu,
            "counsel",
            true,
            l("Defence lawyer present", "មេធាវីការពារក្តីមានវត្តមាន"),
            NO_HELP,
        ),
        choice_field(
            "counsel_type",
            "counsel",
            false,
            l("Counsel chosen or appointed", "មេធាវីជ្រើសរើស ឬតែងតាំង"),
            NO_HELP,
            COUNSEL_TYPES,
        ),
        field(
            "counsel_adequate_time",
            Ynu,
            "counsel",
            false,
            l(
                "Adequate time to prepare the defence",
                "មានពេលគ្រប់គ្រាន់ដើម្បីរៀបចំការការពារក្តី",
            ),
            NO_HELP,
        ),
        field(
            "counsel_file_access",
            Ynu,
            "counsel",
            false,
            l("Counsel had access to the case file", "មេធាវីបានចូលមើលសំណុំរឿង"),
            NO_HELP,
        ),
        // The accused
        field(
            "accused_present",
            Ynu,
            "accused",
            true,
            l("Accused present in court", "ជនជាប់ចោទមានវត្តមាននៅតុលាការ"),
            NO_HELP,
        ),
        // Presumption of innocence
        field(
            "prison_uniform",
            Ynu,
            "presumption",
            false,
            l("Accused in prison uniform", "ជនជាប់ចោទស្លៀកឯកសណ្ឋានពន្ធនាគារ"),
            NO_HELP,
        ),
        field(
            "handcuffed",
            Ynu,
            "presumption",
            false,
            l("Accused handcuffed in court", "ជនជាប់ចោទជាប់ខ្នោះដៃក្នុងតុលាការ"),
            NO_HELP,
        ),
        field(
            "prejudicial_statements",
            Ynu,
            "presumption",
            false,
            l(
                "Prejudicial statements by officials",
                "សេចក្តីថ្លែងការណ៍ប៉ះពាល់ដោយមន្ត្រី",
            ),
            NO_HELP,
        ),
        // Interpreter
        field(
            "interpreter_needed",
            Ynu,
            "interpreter",
            false,
            l("Interpreter needed", "ត្រូវការអ្នកបកប្រែ"),
            NO_HELP,
        ),
        field(
            "interpreter_provided",
            Ynu,
            "interpreter",
            false,
            l("Interpreter provided", "មានអ្នកបកប្រែ"),
            NO_HELP,
        ),
        // Evidence and witnesses
        field(
            "defence_witnesses_called",
            Ynu,
            "evidence",
            false,
            l("Defence could call witnesses", "មេធាវីការពារក្តីអាចកោះហៅសាក្សី"),
            NO_HELP,
        ),
        field(
            "defence_witnesses_examined",
            Ynu,
            "evidence",
            false,
            l(
                "Defence could examine prosecution witnesses",
                "មេធាវីការពារក្តីអាចសួរសាក្សីរបស់អយ្យការ",
            ),
            NO_HELP,
        ),
        field(
            "coerced_confession_alleged",
            Ynu,
            "evidence",
            false,
            l(
                "Coerced confession alleged",
                "មានការចោទថាចម្លើយសារភាពដោយបង្ខិតបង្ខំ",
            ),
            NO_HELP,
        ),
        field(
            "evidence_notes",
            LongText,
            "evidence",
            false,
            l("Evidence and witnesses: notes", "កំណត់ចំណាំអំពីភស្តុតាង និងសាក្សី"),
            NO_HELP,
        ),
        // Judgment
        choice_field(
            "verdict",
            "judgment",
            false,
            l("Verdict", "សាលក្រម"),
            NO_HELP,
            VERDICTS,
        ),
        field(
            "sentence",
            Text,
            "judgment",
            false,
            l("Sentence", "ទោស"),
            NO_HELP,
        ),
        field(
            "judgment_reasoned",
            Ynu,
            "judgment",
            false,
            l("Judgment reasoned in public", "សាលក្រមមានហេតុផលជាសាធារណៈ"),
            NO_HELP,
        ),
        field(
            "appeal_rights_explained",
            Ynu,
            "judgment",
            false,
            l("Right of appeal explained", "សិទ្ធិប្តឹងឧទ្ធរណ៍ត្រូវបានពន្យល់"),
            NO_HELP,
        ),
        field(
            "adjournments",
            List,
            "judgment",
            false,
            l("Adjournments", "ការពន្យារពេល"),
            l(
                "One line per adjournment: date and stated reason.",
                "មួយបន្ទាត់សម្រាប់ការពន្យារពេលនីមួយៗ៖ កាលបរិច្ឆេទ និងមូលហេតុ។",
            ),
        ),
        // Narrative
        field(
            "narrative",
            LongText,
            "narrative",
            true,
            l("Monitor's narrative", "កំណត់ហេតុរបស់អ្នកសង្កេតការណ៍"),
            l(
                "What happened, in order. Several monitors may write here at once.",
                "អ្វីដែលបានកើតឡើង តាមលំដាប់។ អ្នកសង្កេតការណ៍ច្រើននាក់អាចសរសេរនៅទីនេះក្នុងពេលតែមួយ។",
            ),
        ),
    ],
    title_fields: &["court", "case_number", "hearing_date"],
    attachments: AttachmentsDef {
        label: l("Photographs and documents", "រូបថត និងឯកសារ"),
        help: l(
            "Photograph court notices, hearing lists and judgments, or attach a document. \
             Location and camera details are removed from photos unless you keep them.",
            "ថតរូបសេចក្តីជូនដំណឹងរបស់តុលាការ បញ្ជីសវនាការ និងសាលក្រម ឬភ្ជាប់ឯកសារ។ \
             ទីតាំង និងព័ត៌មានកាមេរ៉ាត្រូវបានលុបចេញពីរូបថត លុះត្រាតែអ្នករក្សាទុកវា។",
        ),
    },
};

/// How the interviewee is related to the detainee.
pub const RELATIONS: &[Choice] = &[
    c("parent", "Parent", "ឪពុក ឬម្តាយ"),
    c("spouse", "Spouse or partner", "ប្តី ឬប្រពន្ធ"),
    c("child", "Child", "កូន"),
    c("sibling", "Brother or sister", "បងប្អូន"),
    c("other_relative", "Other relative", "សាច់ញាតិផ្សេងទៀត"),
    c("other", "Other", "ផ្សេងៗ"),
];

/// A family member's statement, with informed consent.
pub static FAMILY_STATEMENT: KindDef = KindDef {
    kind: RecordKind::FamilyStatement,
    label: l("Family statement", "សក្ខីកម្មរបស់ក្រុមគ្រួសារ"),
    sections: &[
        Section {
            id: "interview",
            label: l("Interview", "បទសម្ភាសន៍"),
        },
        Section {
            id: "consent",
            label: l("Informed consent", "ការយល់ព្រមដោយបានជូនដំណឹង"),
        },
        Section {
            id: "detention",
            label: l("Detention", "ការឃុំខ្លួន"),
        },
        Section {
            id: "needs",
            label: l("Needs and follow-up", "តម្រូវការ និងការតាមដាន"),
        },
        Section {
            id: "statement",
            label: l("Statement", "សក្ខីកម្ម"),
        },
    ],
    fields: &[
        field(
            "interviewee",
            Text,
            "interview",
            true,
            l("Interviewee", "អ្នកផ្តល់បទសម្ភាសន៍"),
            l(
                "Name or agreed code. If anonymity was requested, use the code only.",
                "ឈ្មោះ ឬលេខកូដដែលបានព្រមព្រៀង។ ប្រសិនបើស្នើសុំអនាមិក សូមប្រើតែលេខកូដ។",
            ),
        ),
        choice_field(
            "relation",
            "interview",
            true,
            l("Relation to the detainee", "ទំនាក់ទំនងជាមួយអ្នកជាប់ឃុំ"),
            NO_HELP,
            RELATIONS,
        ),
        field(
            "detainee",
            Text,
            "interview",
            true,
            l("Detainee", "អ្នកជាប់ឃុំ"),
            NO_HELP,
        ),
        field(
            "place",
            Text,
            "interview",
            true,
            l("Place of interview", "ទីកន្លែងសម្ភាសន៍"),
            NO_HELP,
        ),
        field(
            "interview_date",
            Date,
            "interview",
            true,
            l("Date of interview", "កាលបរិច្ឆេទសម្ភាសន៍"),
            NO_HELP,
        ),
        field(
            "consent_given",
            Ynu,
            "consent",
            true,
            l("Informed consent given", "បានផ្តល់ការយល់ព្រមដោយបានជូនដំណឹង"),
            l(
                "Explain the purpose and the risks before asking. No consent, no submission.",
                "ពន្យល់អំពីគោលបំណង និងហានិភ័យមុននឹងសួរ។ គ្មានការយល់ព្រម គ្មានការដាក់ស្នើ។",
            ),
        ),
        field(
            "may_quote",
            Ynu,
            "consent",
            true,
            l("May be quoted", "អាចដកស្រង់សម្តីបាន"),
            NO_HELP,
        ),
        field(
            "anonymise",
            Ynu,
            "consent",
            true,
            l("Must be anonymised", "ត្រូវលាក់អត្តសញ្ញាណ"),
            NO_HELP,
        ),
        field(
            "detention_place",
            Text,
            "detention",
            false,
            l("Place of detention", "ទីកន្លែងឃុំខ្លួន"),
            NO_HELP,
        ),
        field(
            "detention_conditions",
            LongText,
            "detention",
            false,
            l("Detention conditions", "លក្ខខណ្ឌនៃការឃុំខ្លួន"),
            NO_HELP,
        ),
        field(
            "visits_allowed",
            Ynu,
            "detention",
            false,
            l("Family visits allowed", "ក្រុមគ្រួសារត្រូវបានអនុញ្ញាតឱ្យសួរសុខទុក្ខ"),
            NO_HELP,
        ),
        field(
            "health",
            LongText,
            "detention",
            false,
            l("Health", "សុខភាព"),
            NO_HELP,
        ),
        field(
            "ill_treatment_alleged",
            Ynu,
            "detention",
            false,
            l("Ill-treatment alleged", "មានការចោទប្រកាន់ពីការធ្វើបាប"),
            NO_HELP,
        ),
        field(
            "ill_treatment_details",
            LongText,
            "detention",
            false,
            l("Ill-treatment: details", "ការធ្វើបាប៖ ព័ត៌មានលម្អិត"),
            NO_HELP,
        ),
        field(
            "needs_legal_aid",
            Ynu,
            "needs",
            false,
            l("Needs legal aid", "ត្រូវការជំនួយផ្លូវច្បាប់"),
            NO_HELP,
        ),
        field(
            "needs_visit_support",
            Ynu,
            "needs",
            false,
            l("Needs support to visit", "ត្រូវការជំនួយដើម្បីសួរសុខទុក្ខ"),
            NO_HELP,
        ),
        field(
            "needs_medical",
            Ynu,
            "needs",
            false,
            l("Needs medical care", "ត្រូវការការថែទាំសុខភាព"),
            NO_HELP,
        ),
        field(
            "follow_up",
            LongText,
            "needs",
            false,
            l("Follow-up agreed", "ការតាមដានដែលបានព្រមព្រៀង"),
            NO_HELP,
        ),
        field(
            "statement",
            LongText,
            "statement",
            true,
            l("Statement", "សក្ខីកម្ម"),
            l(
                "In the interviewee's words where possible.",
                "តាមពាក្យសម្តីរបស់អ្នកផ្តល់បទសម្ភាសន៍ តាមដែលអាចធ្វើបាន។",
            ),
        ),
    ],
    title_fields: &["detainee", "interview_date"],
    attachments: AttachmentsDef {
        label: l("Recordings and photographs", "ការថតសំឡេង និងរូបថត"),
        help: l(
            "Record the statement as audio only with the family's consent. A recording stays \
             encrypted on this phone until it reaches the server.",
            "ថតសំឡេងសក្ខីកម្ម តែនៅពេលគ្រួសារយល់ព្រមប៉ុណ្ណោះ។ ការថតនៅតែត្រូវបានអ៊ិនគ្រីបនៅលើទូរស័ព្ទនេះ \
             រហូតដល់វាទៅដល់ម៉ាស៊ីនមេ។",
        ),
    },
};

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashSet;

    #[test]
    fn every_kind_is_well_formed() {
        for kind in RecordKind::ALL {
            let def = kind.def();
            assert_eq!(def.kind, kind);
            assert_eq!(RecordKind::parse(kind.as_str()), Some(kind));
            let sections: HashSet<_> = def.sections.iter().map(|s| s.id).collect();
            let mut ids = HashSet::new();
            for f in def.fields {
                assert!(ids.insert(f.id), "duplicate field {}", f.id);
                assert!(sections.contains(f.section), "{} has unknown section", f.id);
                assert!(!f.label.en.is_empty() && !f.label.km.is_empty(), "{}", f.id);
                assert!(
                    f.id.bytes()
                        .all(|b| b.is_ascii_lowercase() || b == b'_' || b.is_ascii_digit()),
                    "{}",
                    f.id
                );
                match f.field_type {
                    FieldType::Enum | FieldType::YesNoUnknown => assert!(!f.choices.is_empty()),
                    _ => assert!(f.choices.is_empty()),
                }
            }
            for t in def.title_fields {
                assert!(def.field(t).is_some(), "title field {t}");
            }
        }
    }

    /// Every kind has its files, labelled and explained in English and Khmer, and the
    /// catalogue the phone and the console read carries them.
    #[test]
    fn every_kind_has_files_labelled_in_english_and_khmer() {
        let khmer = |s: &str| s.chars().any(|c| ('\u{1780}'..='\u{17FF}').contains(&c));
        let json: serde_json::Value = serde_json::from_str(&catalogue_json()).expect("valid JSON");
        for (i, kind) in RecordKind::ALL.into_iter().enumerate() {
            let files = kind.def().attachments;
            for label in [files.label, files.help] {
                assert!(
                    !label.en.is_empty() && !khmer(label.en),
                    "{kind:?}: {label:?}"
                );
                assert!(khmer(label.km), "{kind:?}: {label:?}");
            }
            assert_eq!(
                json["kinds"][i]["attachments"]["label"]["km"],
                files.label.km
            );
        }
    }

    #[test]
    fn court_observation_covers_fair_trial_indicators() {
        let def = RecordKind::CourtObservation.def();
        for id in [
            "public_admitted",
            "counsel_present",
            "accused_present",
            "prison_uniform",
            "handcuffed",
            "interpreter_provided",
            "coerced_confession_alleged",
            "judgment_reasoned",
            "verdict",
            "narrative",
        ] {
            assert!(def.field(id).is_some(), "missing {id}");
        }
        assert_eq!(def.field("narrative").map(|f| f.field_type), Some(LongText));
    }

    #[test]
    fn catalogue_json_has_khmer_labels() {
        let json: serde_json::Value = serde_json::from_str(&catalogue_json()).expect("valid JSON");
        let kinds = json["kinds"].as_array().expect("kinds");
        assert_eq!(kinds.len(), 3);
        let fs = &kinds[2];
        assert_eq!(fs["kind"], "family_statement");
        let consent = fs["fields"]
            .as_array()
            .expect("fields")
            .iter()
            .find(|f| f["id"] == "consent_given")
            .expect("consent field");
        assert_eq!(consent["type"], "yes_no_unknown");
        assert_eq!(consent["required"], true);
        assert!(
            consent["label"]["km"]
                .as_str()
                .expect("km")
                .contains("យល់ព្រម")
        );
        assert_eq!(json["statuses"][0]["id"], "draft");
    }
}
