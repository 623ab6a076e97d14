//! Time as integer milliseconds since the epoch (UTC), and its RFC 3339 form.
//!
//! Everything that decides by time whether access holds (grant expiry, pending expiry, idle
//! revoke, reminders) reads [`Clock`], which tests move forward instead of waiting. Sign-in
//! links, sessions and rate limits read the system time ([`now_ms`]).

use std::sync::Arc;
use std::sync::atomic::{AtomicI64, Ordering};
use std::time::Duration;

use time::OffsetDateTime;
use time::format_description::well_known::Rfc3339;

/// The server's clock: the system time plus an offset that only tests move.
#[derive(Clone, Debug, Default)]
pub struct Clock(Arc<AtomicI64>);

impl Clock {
    /// Milliseconds since the Unix epoch, as this clock tells it.
    pub fn now_ms(&self) -> i64 {
        now_ms().saturating_add(self.0.load(Ordering::Relaxed))
    }

    /// Moves this clock (and every clone of it) forward; for tests, which control time instead
    /// of waiting for it.
    pub fn advance(&self, by: Duration) {
        let ms = i64::try_from(by.as_millis()).unwrap_or(i64::MAX);
        self.0.fetch_add(ms, Ordering::Relaxed);
    }
}

/// Milliseconds since the Unix epoch, from the system clock.
pub fn now_ms() -> i64 {
    let nanos = OffsetDateTime::now_utc().unix_timestamp_nanos();
    i64::try_from(nanos / 1_000_000).unwrap_or(i64::MAX)
}

/// RFC 3339 text in UTC with exactly three fraction digits, e.g. `2026-11-28T14:00:00.120Z`
/// (the original's `Date.toISOString` form; agents parse it with fixed-width patterns).
pub fn iso(ms: i64) -> String {
    let dt = OffsetDateTime::from_unix_timestamp_nanos(i128::from(ms) * 1_000_000)
        .unwrap_or(OffsetDateTime::UNIX_EPOCH);
    format!(
        "{:04}-{:02}-{:02}T{:02}:{:02}:{:02}.{:03}Z",
        dt.year(),
        u8::from(dt.month()),
        dt.day(),
        dt.hour(),
        dt.minute(),
        dt.second(),
        dt.millisecond()
    )
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
    fn an_advanced_clock_runs_ahead_in_every_clone() {
        let clock = Clock::default();
        let copy = clock.clone();
        let before = now_ms();
        clock.advance(Duration::from_secs(8 * 86_400));
        assert!(copy.now_ms() - before >= 8 * 86_400_000);
        assert!(copy.now_ms() - now_ms() <= 8 * 86_400_000);
    }

    #[test]
    fn iso_round_trips_milliseconds() {
        let ms = 1_795_000_000_123;
        let text = iso(ms);
        assert!(text.ends_with(".123Z"), "{text}");
        assert_eq!(parse_iso(&text), Some(ms));
    }

    #[test]
    fn iso_always_has_three_fraction_digits() {
        assert_eq!(iso(1_795_000_000_590), "2026-11-18T11:06:40.590Z");
        assert_eq!(iso(1_795_000_000_000), "2026-11-18T11:06:40.000Z");
        assert_eq!(iso(0), "1970-01-01T00:00:00.000Z");
        for ms in [1_795_000_000_590, 1_795_000_000_000, 5] {
            assert_eq!(parse_iso(&iso(ms)), Some(ms));
        }
    }
}
