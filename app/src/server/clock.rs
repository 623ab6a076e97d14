//! Time as integer milliseconds since the epoch (UTC), and its RFC 3339 form.

use time::OffsetDateTime;
use time::format_description::well_known::Rfc3339;

/// Milliseconds since the Unix epoch.
pub fn now_ms() -> i64 {
    let nanos = OffsetDateTime::now_utc().unix_timestamp_nanos();
    i64::try_from(nanos / 1_000_000).unwrap_or(i64::MAX)
}

/// RFC 3339 text in UTC with millisecond precision, e.g. `2026-11-28T14:00:00.123Z`.
pub fn iso(ms: i64) -> String {
    let dt = OffsetDateTime::from_unix_timestamp_nanos(i128::from(ms) * 1_000_000)
        .unwrap_or(OffsetDateTime::UNIX_EPOCH);
    let dt = dt
        .replace_nanosecond((ms.rem_euclid(1000) as u32) * 1_000_000)
        .unwrap_or(dt);
    dt.format(&Rfc3339).unwrap_or_default()
}

/// [`iso`] for optional columns.
pub fn iso_opt(ms: Option<i64>) -> Option<String> {
    ms.map(iso)
}

/// Parses RFC 3339 text into milliseconds.
pub fn parse_iso(text: &str) -> Option<i64> {
    let dt = OffsetDateTime::parse(text.trim(), &Rfc3339).ok()?;
    i64::try_from(dt.unix_timestamp_nanos() / 1_000_000).ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn iso_round_trips_milliseconds() {
        let ms = 1_795_000_000_123;
        let text = iso(ms);
        assert!(text.ends_with(".123Z"), "{text}");
        assert_eq!(parse_iso(&text), Some(ms));
    }
}
