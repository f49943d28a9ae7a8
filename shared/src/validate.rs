//! Checks a record must pass before it is submitted, with messages in English and Khmer.
//!
//! Drafts may be incomplete: people type what they can in a courtroom and finish later. The
//! checks here run when a record is submitted (in the PWA, before it offers the step) and
//! describe each problem next to its field.

use serde::Serialize;

use crate::catalogue::{FieldType, RecordKind};
use crate::record::{FieldValue, RecordView};
use crate::time::Timestamp;

/// One problem with one field.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Problem {
    pub field: String,
    pub code: ProblemCode,
    pub en: String,
    pub km: String,
}

/// What kind of problem.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum ProblemCode {
    Required,
    InvalidDate,
    DateInFuture,
    DateTooOld,
    DateOrder,
    InvalidTime,
    InvalidChoice,
    Negative,
    ConsentMissing,
}

/// A calendar date.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub struct Date {
    pub year: i32,
    pub month: u32,
    pub day: u32,
}

/// Parses `YYYY-MM-DD`, checking the day exists (leap years included).
pub fn parse_date(s: &str) -> Option<Date> {
    let b = s.as_bytes();
    if b.len() != 10 || b[4] != b'-' || b[7] != b'-' {
        return None;
    }
    let digits = |r: std::ops::Range<usize>| -> Option<u32> {
        s.get(r.clone())?.bytes().try_fold(0u32, |acc, c| {
            c.is_ascii_digit().then(|| acc * 10 + u32::from(c - b'0'))
        })
    };
    let year = i32::try_from(digits(0..4)?).ok()?;
    let month = digits(5..7)?;
    let day = digits(8..10)?;
    if !(1..=12).contains(&month) || day == 0 || day > days_in_month(year, month) {
        return None;
    }
    Some(Date { year, month, day })
}

/// Parses `HH:MM` on a 24-hour clock.
pub fn parse_time(s: &str) -> Option<(u32, u32)> {
    let (h, m) = s.split_once(':')?;
    if h.len() != 2 || m.len() != 2 {
        return None;
    }
    let h: u32 = h.parse().ok()?;
    let m: u32 = m.parse().ok()?;
    (h < 24 && m < 60).then_some((h, m))
}

fn days_in_month(year: i32, month: u32) -> u32 {
    match month {
        1 | 3 | 5 | 7 | 8 | 10 | 12 => 31,
        4 | 6 | 9 | 11 => 30,
        2 if (year % 4 == 0 && year % 100 != 0) || year % 400 == 0 => 29,
        2 => 28,
        _ => 0,
    }
}

/// The UTC calendar date of a moment (for callers that have no local date).
pub fn date_of(t: Timestamp) -> String {
    let (year, month, day) = t.utc_date();
    format!("{year:04}-{month:02}-{day:02}")
}

const EARLIEST: Date = Date {
    year: 1900,
    month: 1,
    day: 1,
};

fn problem(field: &str, code: ProblemCode, label_en: &str, label_km: &str) -> Problem {
    let (en, km) = match code {
        ProblemCode::Required => (
            format!("“{label_en}” is required."),
            format!("ត្រូវបំពេញ «{label_km}»។"),
        ),
        ProblemCode::InvalidDate => (
            format!("“{label_en}” is not a valid date (YYYY-MM-DD)."),
            format!("«{label_km}» មិនមែនជាកាលបរិច្ឆេទត្រឹមត្រូវទេ (YYYY-MM-DD)។"),
        ),
        ProblemCode::DateInFuture => (
            format!("“{label_en}” is in the future."),
            format!("«{label_km}» ស្ថិតនៅពេលអនាគត។"),
        ),
        ProblemCode::DateTooOld => (
            format!("“{label_en}” is before 1900."),
            format!("«{label_km}» មុនឆ្នាំ១៩០០។"),
        ),
        ProblemCode::DateOrder => (
            format!("“{label_en}” is after the hearing date."),
            format!("«{label_km}» ក្រោយកាលបរិច្ឆេទសវនាការ។"),
        ),
        ProblemCode::InvalidTime => (
            format!("“{label_en}” is not a valid time (HH:MM)."),
            format!("«{label_km}» មិនមែនជាម៉ោងត្រឹមត្រូវទេ (HH:MM)។"),
        ),
        ProblemCode::InvalidChoice => (
            format!("“{label_en}” has a value that is not one of its choices."),
            format!("«{label_km}» មានតម្លៃដែលមិនស្ថិតក្នុងជម្រើស។"),
        ),
        ProblemCode::Negative => (
            format!("“{label_en}” cannot be negative."),
            format!("«{label_km}» មិនអាចអវិជ្ជមានបានទេ។"),
        ),
        ProblemCode::ConsentMissing => (
            "A family statement can only be submitted with informed consent.".to_owned(),
            "សក្ខីកម្មរបស់ក្រុមគ្រួសារអាចដាក់ស្នើបាន លុះត្រាតែមានការយល់ព្រមដោយបានជូនដំណឹង។".to_owned(),
        ),
    };
    Problem {
        field: field.to_owned(),
        code,
        en,
        km,
    }
}

/// Every problem that blocks submission of `view`. `today` is `YYYY-MM-DD`.
pub fn validate(view: &RecordView, today: &str) -> Vec<Problem> {
    let def = view.kind.def();
    let today = parse_date(today);
    let mut problems = Vec::new();
    for f in def.fields {
        let value = view.fields.get(f.id);
        let (en, km) = (f.label.en, f.label.km);
        let Some(value) = value else {
            if f.required {
                problems.push(problem(f.id, ProblemCode::Required, en, km));
            }
            continue;
        };
        match (f.field_type, value) {
            (FieldType::Date, FieldValue::Text(s)) => match parse_date(s) {
                None => problems.push(problem(f.id, ProblemCode::InvalidDate, en, km)),
                Some(d) if today.is_some_and(|t| d > t) => {
                    problems.push(problem(f.id, ProblemCode::DateInFuture, en, km))
                }
                Some(d) if d < EARLIEST => {
                    problems.push(problem(f.id, ProblemCode::DateTooOld, en, km))
                }
                Some(_) => {}
            },
            (FieldType::Time, FieldValue::Text(s)) if parse_time(s).is_none() => {
                problems.push(problem(f.id, ProblemCode::InvalidTime, en, km))
            }
            (FieldType::Enum | FieldType::YesNoUnknown, FieldValue::Text(s))
                if !f.has_choice(s) =>
            {
                problems.push(problem(f.id, ProblemCode::InvalidChoice, en, km))
            }
            (FieldType::Number, FieldValue::Number(n)) if *n < 0 => {
                problems.push(problem(f.id, ProblemCode::Negative, en, km))
            }
            (FieldType::Number, FieldValue::Text(_)) => {
                problems.push(problem(f.id, ProblemCode::InvalidChoice, en, km))
            }
            _ => {}
        }
    }
    let date = |id: &str| match view.fields.get(id) {
        Some(FieldValue::Text(s)) => parse_date(s),
        _ => None,
    };
    match view.kind {
        RecordKind::CourtObservation => {
            if let (Some(arrest), Some(hearing)) = (date("arrest_date"), date("hearing_date"))
                && arrest > hearing
            {
                let f = def.field("arrest_date").expect("catalogue field");
                problems.push(problem(
                    f.id,
                    ProblemCode::DateOrder,
                    f.label.en,
                    f.label.km,
                ));
            }
        }
        RecordKind::FamilyStatement => {
            let consent = view.fields.get("consent_given");
            if consent.is_some() && consent != Some(&FieldValue::Text("yes".into())) {
                problems.push(problem(
                    "consent_given",
                    ProblemCode::ConsentMissing,
                    "",
                    "",
                ));
            }
        }
        RecordKind::Case => {}
    }
    problems
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn dates_are_checked_for_real_calendars() {
        assert!(parse_date("2024-02-29").is_some());
        assert!(parse_date("2023-02-29").is_none());
        assert!(parse_date("1900-02-29").is_none());
        assert!(parse_date("2000-02-29").is_some());
        assert!(parse_date("2024-04-31").is_none());
        assert!(parse_date("2024-13-01").is_none());
        assert!(parse_date("2024-1-01").is_none());
        assert!(parse_date("２０２４-01-01").is_none());
        assert!(parse_date("+024-01-01").is_none());
        assert_eq!(parse_time("09:05"), Some((9, 5)));
        assert!(parse_time("24:00").is_none());
        assert!(parse_time("9:05").is_none());
    }

    #[test]
    fn millis_to_civil_date() {
        let date_of_millis = |ms| date_of(Timestamp::from_millis(ms));
        assert_eq!(date_of_millis(0), "1970-01-01");
        assert_eq!(date_of_millis(951_782_400_000), "2000-02-29");
        assert_eq!(date_of_millis(1_795_000_000_000), "2026-11-18");
        assert_eq!(date_of_millis(-86_400_000), "1969-12-31");
    }
}
