//! Timestamps as the catalog stores them: RFC 3339, UTC, millisecond precision, fixed
//! width (`2026-11-28T01:09:03.123Z`), so that string order is time order.
//!
//! The state machine never reads the clock: the node that proposes a command stamps it,
//! which keeps `apply` deterministic on every replica.

use time::{Duration, OffsetDateTime, format_description::well_known::Rfc3339};

/// Formats a UTC instant in the catalog's fixed-width form.
pub fn format(t: OffsetDateTime) -> String {
    let t = t.to_offset(time::UtcOffset::UTC);
    format!(
        "{:04}-{:02}-{:02}T{:02}:{:02}:{:02}.{:03}Z",
        t.year(),
        u8::from(t.month()),
        t.day(),
        t.hour(),
        t.minute(),
        t.second(),
        t.millisecond()
    )
}

/// The current time in the catalog's form.
pub fn now() -> String {
    format(OffsetDateTime::now_utc())
}

/// Parses any RFC 3339 timestamp (or a bare `YYYY-MM-DD`, taken as midnight UTC).
pub fn parse(s: &str) -> Option<OffsetDateTime> {
    if let Ok(t) = OffsetDateTime::parse(s, &Rfc3339) {
        return Some(t);
    }
    let date =
        time::Date::parse(s, time::macros::format_description!("[year]-[month]-[day]")).ok()?;
    Some(date.midnight().assume_utc())
}

/// Normalises an RFC 3339 timestamp to the catalog's form.
pub fn normalize(s: &str) -> Option<String> {
    parse(s).map(format)
}

/// `at` plus a number of days, in the catalog's form. `at` must be in the catalog's form.
pub fn plus_days(at: &str, days: u32) -> String {
    let base = parse(at).unwrap_or_else(OffsetDateTime::now_utc);
    format(base + Duration::days(i64::from(days)))
}

/// The national rule for deciding a request for shared data: 10 working days.
pub const DECISION_WORKING_DAYS: u32 = 10;

/// `at` plus `days` working days (Monday to Friday), at the same time of day, in the
/// catalog's form. Public holidays and the weekend days worked in exchange for them are
/// set each year by the State Council and are not known here. `at` must be in the
/// catalog's form.
pub fn plus_working_days(at: &str, days: u32) -> String {
    let mut t = parse(at).unwrap_or_else(OffsetDateTime::now_utc);
    let mut left = days;
    while left > 0 {
        t += Duration::days(1);
        if !matches!(t.weekday(), time::Weekday::Saturday | time::Weekday::Sunday) {
            left -= 1;
        }
    }
    format(t)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn working_days_skip_weekends() {
        // Monday 2026-11-30 + 10 working days = Monday 2026-12-14.
        assert_eq!(
            plus_working_days("2026-11-30T09:00:00.000Z", 10),
            "2026-12-14T09:00:00.000Z"
        );
        // Saturday + 1 working day = Monday.
        assert_eq!(
            plus_working_days("2026-12-05T09:00:00.000Z", 1),
            "2026-12-07T09:00:00.000Z"
        );
        assert_eq!(
            plus_working_days("2026-12-04T09:00:00.000Z", 0),
            "2026-12-04T09:00:00.000Z"
        );
    }

    #[test]
    fn fixed_width_orders_like_time() {
        let a = normalize("2026-01-02T03:04:05Z").unwrap();
        let b = normalize("2026-01-02T03:04:05.5+00:00").unwrap();
        assert_eq!(a, "2026-01-02T03:04:05.000Z");
        assert_eq!(b, "2026-01-02T03:04:05.500Z");
        assert!(a < b);
        assert_eq!(plus_days(&a, 30), "2026-02-01T03:04:05.000Z");
        assert_eq!(normalize("2026-03-01").unwrap(), "2026-03-01T00:00:00.000Z");
        assert!(parse("yesterday").is_none());
    }
}
