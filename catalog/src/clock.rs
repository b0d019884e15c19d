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

#[cfg(test)]
mod tests {
    use super::*;

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
