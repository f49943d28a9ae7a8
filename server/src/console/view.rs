//! What the console's pages share: the page frame, the record filter, labels in the chosen
//! language, times, and who made a change (actor → device → user).

use std::collections::{HashMap, HashSet};
use std::sync::Arc;
use std::time::Duration;

use saksi_shared::automerge::ActorId;
use saksi_shared::catalogue::{FieldDef, FieldType, RecordKind};
use saksi_shared::policy::ActorBindings;
use saksi_shared::record::{Attribution, Edit, FieldValue};
use saksi_shared::time::days;
use saksi_shared::{DeviceId, DocumentId, Lang, Status, Timestamp};
use serde::{Deserialize, Serialize};

use super::ConsoleError;
use crate::app::AppState;
use crate::storage::{Device, DocumentFilter, DocumentSort, User};

/// The frame of every console page.
#[derive(Debug, Clone)]
pub struct Chrome {
    pub username: String,
    pub role: &'static str,
    pub is_admin: bool,
    pub csrf: String,
    /// `en` or `km`.
    pub lang: &'static str,
    /// This page's path and query (the language form comes back here).
    pub here: String,
    /// Which navigation entry is highlighted.
    pub active: &'static str,
    /// The language of the console's own words ([`Chrome::t`]).
    pub words: Lang,
}

impl Chrome {
    /// The console's word for `key` in the chosen language (see `words.rs`).
    pub fn t(&self, key: &str) -> &'static str {
        super::words::word(self.words, key)
    }
}

/// `YYYY-MM-DD HH:MM UTC`, or `-` for nothing.
pub fn time(t: Timestamp) -> String {
    if t <= Timestamp::EPOCH {
        return "-".into();
    }
    format!("{} UTC", crate::admin::format_time(t))
}

/// `YYYY-MM-DD HH:MM` in `zone`, with its abbreviation (`+07` for Asia/Phnom_Penh), or `-`.
/// UTC is written as [`time`] writes it.
pub fn time_in(zone: &jiff::tz::TimeZone, t: Timestamp) -> String {
    if t <= Timestamp::EPOCH {
        return "-".into();
    }
    if zone.iana_name() == Some("UTC") {
        return time(t);
    }
    match jiff::Timestamp::from_millisecond(t.as_millis()) {
        Ok(ts) => ts
            .to_zoned(zone.clone())
            .strftime("%Y-%m-%d %H:%M %Z")
            .to_string(),
        Err(_) => time(t),
    }
}

pub fn time_opt_in(zone: &jiff::tz::TimeZone, t: Option<Timestamp>) -> String {
    t.map_or_else(|| "-".into(), |t| time_in(zone, t))
}

/// The last millisecond of `YYYY-MM-DD` in `zone` (a day is not always 24 hours).
pub fn end_of_day_in(zone: &jiff::tz::TimeZone, s: &str) -> Option<Timestamp> {
    let date = jiff::civil::Date::strptime("%Y-%m-%d", s).ok()?;
    date_millis(s)?;
    let next = date.tomorrow().ok()?;
    match next.to_zoned(zone.clone()) {
        Ok(z) => Some(Timestamp::from_millis(z.timestamp().as_millisecond() - 1)),
        Err(_) => Some(date_millis(s)? + days(1) - Duration::from_millis(1)),
    }
}

/// 00:00 of `YYYY-MM-DD` in `zone` (the console's date filters).
pub fn date_millis_in(zone: &jiff::tz::TimeZone, s: &str) -> Option<Timestamp> {
    let utc = date_millis(s)?;
    let date = jiff::civil::Date::strptime("%Y-%m-%d", s).ok()?;
    match date.to_zoned(zone.clone()) {
        Ok(z) => Some(Timestamp::from_millis(z.timestamp().as_millisecond())),
        Err(_) => Some(utc),
    }
}

/// 00:00 UTC of `YYYY-MM-DD`.
pub fn date_millis(s: &str) -> Option<Timestamp> {
    let d = saksi_shared::validate::parse_date(s)?;
    // Days from civil (Howard Hinnant's algorithm).
    let (y, m) = if d.month <= 2 {
        (i64::from(d.year) - 1, i64::from(d.month) + 9)
    } else {
        (i64::from(d.year), i64::from(d.month) - 3)
    };
    let era = y.div_euclid(400);
    let yoe = y - era * 400;
    let doy = (153 * m + 2) / 5 + i64::from(d.day) - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    Some(Timestamp::from_millis(
        (era * 146_097 + doe - 719_468) * 86_400_000,
    ))
}

pub fn kind_label(kind: &str, lang: Lang) -> String {
    RecordKind::parse(kind)
        .map(|k| k.def().label.get(lang).to_owned())
        .unwrap_or_else(|| kind.to_owned())
}

pub fn status_label(status: &str, lang: Lang) -> String {
    Status::parse(status)
        .map(|s| s.label().get(lang).to_owned())
        .unwrap_or_else(|| status.to_owned())
}

/// A value as shown to people: choices by their label, lists joined with `; `.
pub fn value_label(def: Option<&FieldDef>, value: &FieldValue, lang: Lang) -> String {
    if let (Some(def), FieldValue::Text(id)) = (def, value)
        && matches!(def.field_type, FieldType::Enum | FieldType::YesNoUnknown)
        && let Some(choice) = def.choices.iter().find(|c| c.id == id)
    {
        return choice.label.get(lang).to_owned();
    }
    value.display()
}

/// An edit in words, with labels in `lang`; `files` names the record's files by id (an edit
/// that removes or captions a file says which).
pub fn describe_edit(
    kind: RecordKind,
    edit: &Edit,
    files: &HashMap<String, String>,
    lang: Lang,
) -> String {
    let file = |id: &str| {
        files
            .get(id)
            .map(|name| format!("“{name}”"))
            .unwrap_or_else(|| id.chars().take(8).collect())
    };
    let label = |field: &str| {
        kind.def()
            .field(field)
            .map(|f| f.label.get(lang).to_owned())
            .unwrap_or_else(|| field.to_owned())
    };
    match edit {
        Edit::Created { kind } => format!("created the {}", kind_label(kind, Lang::En)),
        Edit::SetField { field, value } => {
            let shown = value_label(kind.def().field(field), value, lang);
            format!("set “{}” to “{}”", label(field), shown)
        }
        Edit::ClearedField { field } => format!("cleared “{}”", label(field)),
        Edit::EditedText {
            field,
            inserted,
            deleted,
        } => format!(
            "edited “{}”: {inserted} character(s) added, {deleted} removed",
            label(field)
        ),
        Edit::EditedList {
            field,
            inserted,
            replaced,
            removed,
        } => format!(
            "edited the list “{}”: {inserted} added, {replaced} changed, {removed} removed",
            label(field)
        ),
        Edit::Status { to } => format!("status → {}", status_label(to, lang)),
        Edit::Review { action } => format!("review: {}", action.replace('_', " ")),
        Edit::SchemaVersion { to } => format!("upgraded the record format to version {to}"),
        Edit::AttachmentAdded {
            name, sha256, size, ..
        } => format!("attached “{name}” ({}, SHA-256 {sha256})", file_size(*size)),
        Edit::AttachmentRemoved { id } => format!("removed the file {}", file(id)),
        Edit::Caption { id } => format!("captioned the file {}", file(id)),
        Edit::Other => "other changes".into(),
    }
}

/// A file size for people: bytes, kB, MB (powers of 1,000).
pub fn file_size(bytes: u64) -> String {
    match bytes {
        0..1_000 => format!("{bytes} B"),
        1_000..1_000_000 => format!("{:.1} kB", bytes as f64 / 1e3),
        _ => format!("{:.1} MB", bytes as f64 / 1e6),
    }
}

/// Who made a change, as the server knows it (for display: names, time, whether the
/// attribution is confirmed).
#[derive(Debug, Clone, Serialize)]
pub struct ChangeBy {
    /// The account of the device the change's actor is bound to (else the claim).
    pub user: String,
    pub device_name: String,
    pub device_id: String,
    pub at: String,
    /// The actor is bound to a device, and the commit message names that device and its user.
    pub confirmed: bool,
    /// Why the attribution is not confirmed, if it is not.
    pub note: String,
}

/// Devices and users behind the actors of a record's changes.
#[derive(Debug)]
pub struct Directory {
    /// actor hex → device id (the server's bindings).
    actors: HashMap<String, DeviceId>,
    devices: HashMap<DeviceId, (Device, User)>,
    zone: jiff::tz::TimeZone,
}

impl Directory {
    /// Looks up the actors of `attributions` in the server's bindings, and their devices.
    pub async fn load<'a>(
        state: &Arc<AppState>,
        attributions: impl IntoIterator<Item = &'a Attribution>,
    ) -> Result<Directory, ConsoleError> {
        let batch = state.bindings.batch();
        let mut actors = HashMap::new();
        let mut wanted = HashSet::new();
        for a in attributions {
            if let Some(claimed) = &a.device {
                wanted.insert(claimed.clone());
            }
            if actors.contains_key(&a.actor) {
                continue;
            }
            let Ok(bytes) = hex::decode(&a.actor) else {
                continue;
            };
            if let Some(device) = batch.device_of(&ActorId::from(bytes)) {
                wanted.insert(device.clone());
                actors.insert(a.actor.clone(), device);
            }
        }
        let devices = state
            .db
            .run(move |s| {
                let mut found = HashMap::new();
                for id in wanted {
                    if let Some(pair) = s.device(&id)? {
                        found.insert(id, pair);
                    }
                }
                Ok(found)
            })
            .await?;
        Ok(Directory {
            actors,
            devices,
            zone: state.time_zone.clone(),
        })
    }

    /// Also looks up `devices` (by id), for [`Directory::device_name`].
    pub async fn load_devices(
        &mut self,
        state: &Arc<AppState>,
        devices: impl IntoIterator<Item = DeviceId>,
    ) -> Result<(), ConsoleError> {
        let wanted: HashSet<DeviceId> = devices
            .into_iter()
            .filter(|d| !self.devices.contains_key(d))
            .collect();
        if wanted.is_empty() {
            return Ok(());
        }
        let found = state
            .db
            .run(move |s| {
                let mut found = HashMap::new();
                for id in wanted {
                    if let Some(pair) = s.device(&id)? {
                        found.insert(id, pair);
                    }
                }
                Ok(found)
            })
            .await?;
        self.devices.extend(found);
        Ok(())
    }

    /// A device's name, or its id if the server does not know it.
    pub fn device_name(&self, id: &str) -> String {
        self.devices
            .get(id)
            .map(|(d, _)| d.name.clone())
            .unwrap_or_else(|| or_unknown(id))
    }

    /// A time as this directory's readers see it: the organisation's zone on console pages,
    /// UTC in exports ([`Directory::in_utc`]).
    pub fn time(&self, t: Timestamp) -> String {
        time_in(&self.zone, t)
    }

    /// For exports, which keep UTC.
    pub fn in_utc(mut self) -> Directory {
        self.zone = jiff::tz::TimeZone::UTC;
        self
    }

    pub fn who(&self, a: &Attribution) -> ChangeBy {
        let claimed_user = a.user.clone().unwrap_or_default();
        let claimed_device = a.device.as_deref().unwrap_or_default().to_owned();
        let at = self.time(a.at);
        match self.actors.get(&a.actor) {
            Some(device_id) => {
                let (device_name, user) = match self.devices.get(device_id) {
                    Some((d, u)) => (d.name.clone(), u.username.clone()),
                    None => ("(unknown device)".into(), claimed_user.clone()),
                };
                let confirmed = user == claimed_user && *device_id == claimed_device;
                let note = if confirmed {
                    String::new()
                } else {
                    format!(
                        "the change names {} on {}",
                        or_unknown(&claimed_user),
                        or_unknown(&claimed_device)
                    )
                };
                ChangeBy {
                    user,
                    device_name,
                    device_id: device_id.to_string(),
                    at,
                    confirmed,
                    note,
                }
            }
            None => {
                // Not sent by any device: made on the server (e.g. a case created from the
                // command line), or before bindings existed. Show the claim, unconfirmed.
                let device_name = self
                    .devices
                    .get(claimed_device.as_str())
                    .map(|(d, _)| d.name.clone())
                    .unwrap_or_else(|| or_unknown(&claimed_device));
                ChangeBy {
                    user: or_unknown(&claimed_user),
                    device_name,
                    device_id: claimed_device,
                    at,
                    confirmed: false,
                    note: "no device on record for this change".into(),
                }
            }
        }
    }
}

fn or_unknown(s: &str) -> String {
    if s.is_empty() {
        "unknown".into()
    } else {
        s.to_owned()
    }
}

/// The records filter of the table and of exports, as it comes in a query string. Empty
/// values mean "any".
#[derive(Debug, Clone, Default, Deserialize, Serialize)]
pub struct RecordQuery {
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub case: String,
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub kind: String,
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub status: String,
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub author: String,
    /// `yes`, `no` or empty.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub conflicts: String,
    /// `yes`: only records whose consent was withdrawn.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub consent: String,
    /// Updated on or after this day (`YYYY-MM-DD`, UTC).
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub from: String,
    /// Updated on or before this day.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub to: String,
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub sort: String,
    #[serde(default, skip_serializing_if = "is_first_page")]
    pub page: u32,
    /// What was just done (a record destroyed): said once, never carried into links.
    #[serde(default, skip_serializing)]
    pub done: String,
}

fn is_first_page(page: &u32) -> bool {
    *page <= 1
}

/// The sort orders offered, as (query value, label).
pub const SORTS: &[(&str, &str)] = &[
    ("updated_desc", "Updated, newest first"),
    ("updated_asc", "Updated, oldest first"),
    ("created_desc", "Created, newest first"),
    ("created_asc", "Created, oldest first"),
    ("title", "Title"),
    ("status", "Status"),
    ("author", "Author"),
    ("kind", "Kind"),
];

impl RecordQuery {
    /// The storage filter (without paging), refusing malformed values; dates are days in
    /// `zone`.
    pub fn filter(&self, zone: &jiff::tz::TimeZone) -> Result<DocumentFilter, ConsoleError> {
        let bad =
            |what: &str| ConsoleError::BadRequest(format!("The filter has an invalid {what}."));
        let some = |s: &str| (!s.trim().is_empty()).then(|| s.trim().to_owned());
        let case = match some(&self.case) {
            Some(c) => Some(DocumentId::parse(&c).map_err(|_| bad("case"))?),
            None => None,
        };
        let kind = some(&self.kind);
        if let Some(k) = &kind
            && RecordKind::parse(k).is_none_or(|k| k == RecordKind::Case)
        {
            return Err(bad("kind"));
        }
        let status = some(&self.status);
        if status
            .as_deref()
            .is_some_and(|s| Status::parse(s).is_none())
        {
            return Err(bad("status"));
        }
        let has_conflicts = match self.conflicts.as_str() {
            "" => None,
            "yes" => Some(true),
            "no" => Some(false),
            _ => return Err(bad("conflict choice")),
        };
        let consent_withdrawn = match self.consent.as_str() {
            "" => None,
            "yes" => Some(true),
            _ => return Err(bad("consent choice")),
        };
        let updated_from = match some(&self.from) {
            Some(d) => Some(date_millis_in(zone, &d).ok_or_else(|| bad("start date"))?),
            None => None,
        };
        let updated_to = match some(&self.to) {
            Some(d) => Some(end_of_day_in(zone, &d).ok_or_else(|| bad("end date"))?),
            None => None,
        };
        let sort = match self.sort.as_str() {
            "" | "updated_desc" => DocumentSort::UpdatedDesc,
            "updated_asc" => DocumentSort::UpdatedAsc,
            "created_desc" => DocumentSort::CreatedDesc,
            "created_asc" => DocumentSort::CreatedAsc,
            "title" => DocumentSort::Title,
            "status" => DocumentSort::Status,
            "author" => DocumentSort::Author,
            "kind" => DocumentSort::Kind,
            _ => return Err(bad("sort order")),
        };
        Ok(DocumentFilter {
            case,
            kind,
            status,
            created_by: some(&self.author),
            has_conflicts,
            consent_withdrawn,
            updated_from,
            updated_to,
            sort,
            ..DocumentFilter::default()
        })
    }

    /// This query as a query string (without `?`), with `page` replaced.
    pub fn to_query(&self, page: u32) -> String {
        let mut q = self.clone();
        q.page = page;
        serde_urlencoded::to_string(&q).unwrap_or_default()
    }

    /// This query for an export of one kind.
    pub fn export_query(&self, kind: &str) -> String {
        let mut q = self.clone();
        q.page = 0;
        q.sort.clear();
        if !kind.is_empty() {
            q.kind = kind.to_owned();
        }
        serde_urlencoded::to_string(&q).unwrap_or_default()
    }

    /// The filter for the audit log: ids and names, never contents.
    pub fn describe(&self) -> String {
        let parts: Vec<String> = [
            ("case", &self.case),
            ("kind", &self.kind),
            ("status", &self.status),
            ("author", &self.author),
            ("conflicts", &self.conflicts),
            ("consent", &self.consent),
            ("from", &self.from),
            ("to", &self.to),
        ]
        .iter()
        .filter(|(_, v)| !v.trim().is_empty())
        .map(|(k, v)| format!("{k}={}", v.trim().chars().take(64).collect::<String>()))
        .collect();
        if parts.is_empty() {
            "all records".into()
        } else {
            parts.join(" ")
        }
    }
}

/// An option of a `<select>`.
#[derive(Debug, Clone)]
pub struct Choice {
    pub value: String,
    pub label: String,
    pub selected: bool,
}

pub fn choices(options: impl IntoIterator<Item = (String, String)>, selected: &str) -> Vec<Choice> {
    options
        .into_iter()
        .map(|(value, label)| Choice {
            selected: value == selected,
            value,
            label,
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use saksi_testkit::at;

    #[test]
    fn dates_become_utc_midnight() {
        assert_eq!(date_millis("1970-01-01"), Some(Timestamp::EPOCH));
        assert_eq!(date_millis("2000-02-29"), Some(at(951_782_400_000)));
        assert_eq!(date_millis("2000-02-30"), None);
        for ms in [0, 951_782_400_000, 1_795_000_000_000] {
            let day = saksi_shared::validate::date_of(at(ms));
            assert_eq!(date_millis(&day), Some(at(ms - ms.rem_euclid(86_400_000))));
        }
    }

    #[test]
    fn a_query_round_trips_and_rejects_bad_values() {
        let q = RecordQuery {
            kind: "court_observation".into(),
            conflicts: "yes".into(),
            from: "2026-01-01".into(),
            to: "2026-01-31".into(),
            ..RecordQuery::default()
        };
        let f = q.filter(&jiff::tz::TimeZone::UTC).expect("valid");
        assert_eq!(f.has_conflicts, Some(true));
        assert_eq!(
            f.updated_to,
            Some(date_millis("2026-02-01").expect("date") - Duration::from_millis(1))
        );
        // In Phnom Penh (UTC+7) the same days start and end seven hours earlier.
        let zone = jiff::tz::TimeZone::get("Asia/Phnom_Penh").expect("zone");
        let local = q.filter(&zone).expect("valid");
        let seven_hours = Duration::from_secs(7 * 3_600);
        assert_eq!(
            local.updated_from,
            Some(date_millis("2026-01-01").expect("date") - seven_hours)
        );
        assert_eq!(
            local.updated_to,
            Some(date_millis("2026-02-01").expect("date") - seven_hours - Duration::from_millis(1))
        );
        assert_eq!(time_in(&zone, at(0)), "-");
        assert_eq!(
            time_in(&zone, at(1_795_000_000_000)),
            "2026-11-18 18:06 +07"
        );
        assert_eq!(
            time_in(&jiff::tz::TimeZone::UTC, at(1_795_000_000_000)),
            "2026-11-18 11:06 UTC"
        );
        assert_eq!(
            q.to_query(2),
            "kind=court_observation&conflicts=yes&from=2026-01-01&to=2026-01-31&page=2"
        );
        assert_eq!(
            q.describe(),
            "kind=court_observation conflicts=yes from=2026-01-01 to=2026-01-31"
        );
        for bad in [
            RecordQuery {
                kind: "case".into(),
                ..RecordQuery::default()
            },
            RecordQuery {
                status: "lost".into(),
                ..RecordQuery::default()
            },
            RecordQuery {
                case: "not-an-id".into(),
                ..RecordQuery::default()
            },
            RecordQuery {
                from: "2026-13-01".into(),
                ..RecordQuery::default()
            },
        ] {
            assert!(bad.filter(&jiff::tz::TimeZone::UTC).is_err(), "{bad:?}");
        }
    }
}
