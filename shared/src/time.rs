//! Points in time. A [`Timestamp`] is a moment on the wall clock, in milliseconds since the
//! Unix epoch (UTC); a length of time is a [`std::time::Duration`]. Keeping the two apart lets
//! the compiler refuse a duration passed where a moment is meant (a grace period stored as a
//! due date, a session length compared with a sign-in time).
//!
//! A timestamp is stored and sent as the plain integer (JSON, SQLite, the record's automerge
//! document, the wasm API), so nothing written before this type existed reads differently. It
//! is parsed into a `Timestamp` at those edges and nowhere else.

use std::fmt;
use std::ops::{Add, Sub};
use std::time::Duration;

use serde::{Deserialize, Serialize};

/// A moment: milliseconds since 1970-01-01T00:00:00Z. Serialised as the integer.
#[derive(
    Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Default, Serialize, Deserialize,
)]
#[serde(transparent)]
pub struct Timestamp(i64);

impl Timestamp {
    /// 1970-01-01T00:00:00Z, also what an unset time reads as.
    pub const EPOCH: Timestamp = Timestamp(0);
    /// The last moment there is (a session that never expires).
    pub const MAX: Timestamp = Timestamp(i64::MAX);

    /// The moment `millis` milliseconds after the epoch (before it, if negative).
    pub const fn from_millis(millis: i64) -> Timestamp {
        Timestamp(millis)
    }

    /// Milliseconds since the epoch, as stored and sent.
    pub const fn as_millis(self) -> i64 {
        self.0
    }

    /// Whole seconds since the epoch (rounded towards the past).
    pub const fn as_secs(self) -> i64 {
        self.0.div_euclid(1000)
    }

    /// The UTC calendar date: year, month (1–12), day (1–31).
    pub const fn utc_date(self) -> (i64, i64, i64) {
        let days = self.0.div_euclid(86_400_000);
        // Civil-from-days (Howard Hinnant's algorithm).
        let z = days + 719_468;
        let era = z.div_euclid(146_097);
        let doe = z.rem_euclid(146_097);
        let yoe = (doe - doe / 1_460 + doe / 36_524 - doe / 146_096) / 365;
        let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
        let mp = (5 * doy + 2) / 153;
        let day = doy - (153 * mp + 2) / 5 + 1;
        let month = if mp < 10 { mp + 3 } else { mp - 9 };
        let year = yoe + era * 400 + if month <= 2 { 1 } else { 0 };
        (year, month, day)
    }

    /// How long after `earlier` this is; zero if it is not after it.
    pub fn since(self, earlier: Timestamp) -> Duration {
        Duration::from_millis(self.0.saturating_sub(earlier.0).max(0) as u64)
    }
}

/// Milliseconds of a duration as an `i64`, saturating (no duration Saksi uses comes near).
fn millis_of(d: Duration) -> i64 {
    i64::try_from(d.as_millis()).unwrap_or(i64::MAX)
}

impl Add<Duration> for Timestamp {
    type Output = Timestamp;
    /// Saturates at the end of time rather than wrapping.
    fn add(self, d: Duration) -> Timestamp {
        Timestamp(self.0.saturating_add(millis_of(d)))
    }
}

impl Sub<Duration> for Timestamp {
    type Output = Timestamp;
    /// Saturates at the start of time rather than wrapping.
    fn sub(self, d: Duration) -> Timestamp {
        Timestamp(self.0.saturating_sub(millis_of(d)))
    }
}

impl fmt::Display for Timestamp {
    /// The integer, as stored (the console formats dates for people itself).
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.0.fmt(f)
    }
}

impl std::str::FromStr for Timestamp {
    type Err = std::num::ParseIntError;
    /// The integer, as [`fmt::Display`] writes it.
    fn from_str(s: &str) -> Result<Timestamp, Self::Err> {
        s.parse().map(Timestamp)
    }
}

/// A column of milliseconds since the epoch, for the server's SQLite store.
#[cfg(feature = "rusqlite")]
mod sql {
    use rusqlite::types::{FromSql, FromSqlResult, ToSql, ToSqlOutput, Value, ValueRef};

    use super::Timestamp;

    impl ToSql for Timestamp {
        fn to_sql(&self) -> rusqlite::Result<ToSqlOutput<'_>> {
            Ok(ToSqlOutput::from(self.0))
        }
    }

    impl FromSql for Timestamp {
        fn column_result(value: ValueRef<'_>) -> FromSqlResult<Timestamp> {
            i64::column_result(value).map(Timestamp)
        }
    }

    impl From<Timestamp> for Value {
        fn from(t: Timestamp) -> Value {
            Value::Integer(t.0)
        }
    }
}

/// Days as a [`Duration`], for the day-long settings (grace periods, session lengths).
pub const fn days(n: u64) -> Duration {
    Duration::from_secs(n.saturating_mul(86_400))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn is_the_plain_integer_on_the_wire() {
        let t = Timestamp::from_millis(1_767_225_600_123);
        assert_eq!(serde_json::to_string(&t).unwrap(), "1767225600123");
        let back: Timestamp = serde_json::from_str("1767225600123").unwrap();
        assert_eq!(back, t);
        assert_eq!(t.as_secs(), 1_767_225_600);
        assert_eq!(Timestamp::from_millis(-1).as_secs(), -1);
    }

    #[test]
    fn adding_and_subtracting_durations_saturate() {
        let t = Timestamp::from_millis(1_000);
        assert_eq!(
            t + Duration::from_millis(500),
            Timestamp::from_millis(1_500)
        );
        assert_eq!(t - Duration::from_secs(2), Timestamp::from_millis(-1_000));
        assert_eq!(
            Timestamp::from_millis(i64::MAX - 1) + days(1),
            Timestamp::from_millis(i64::MAX)
        );
        assert_eq!(
            Timestamp::from_millis(i64::MIN + 1) - days(1),
            Timestamp::from_millis(i64::MIN)
        );
        assert_eq!(t + Duration::MAX, Timestamp::from_millis(i64::MAX));
    }

    #[test]
    fn since_never_goes_negative() {
        let a = Timestamp::from_millis(1_000);
        let b = Timestamp::from_millis(3_500);
        assert_eq!(b.since(a), Duration::from_millis(2_500));
        assert_eq!(a.since(b), Duration::ZERO);
        assert_eq!(days(7), Duration::from_secs(604_800));
    }
}
