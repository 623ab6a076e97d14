//! Time in words: left on a grant (refreshed while the page is open), and since an event.

use leptos::prelude::*;

/// Milliseconds since the epoch of an AgentKey timestamp (`YYYY-MM-DDTHH:MM:SS.sssZ`, UTC).
pub fn parse_ms(iso: &str) -> Option<i64> {
    let b = iso.as_bytes();
    let num = |from: usize, to: usize| -> Option<i64> { iso.get(from..to)?.parse().ok() };
    if b.len() < 20 || b[4] != b'-' || b[7] != b'-' || b[10] != b'T' || !iso.ends_with('Z') {
        return None;
    }
    let (y, m, d) = (num(0, 4)?, num(5, 7)?, num(8, 10)?);
    let (hh, mm, ss) = (num(11, 13)?, num(14, 16)?, num(17, 19)?);
    let millis = if b.get(19) == Some(&b'.') {
        num(20, 23).unwrap_or(0)
    } else {
        0
    };
    // Days from the civil date (proleptic Gregorian), after Howard Hinnant's algorithm.
    let y = if m <= 2 { y - 1 } else { y };
    let era = y.div_euclid(400);
    let yoe = y - era * 400;
    let mp = (m + 9) % 12;
    let doy = (153 * mp + 2) / 5 + d - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    let days = era * 146_097 + doe - 719_468;
    Some(((days * 24 + hh) * 60 + mm) * 60_000 + ss * 1000 + millis)
}

/// `left` milliseconds in words: "ended", "under a minute left", "12 min left", "7 h 59 min left",
/// "3 d 4 h left".
pub fn left_label(left: i64) -> String {
    if left <= 0 {
        return "ended".into();
    }
    let minutes = left / 60_000;
    let (d, h, m) = (minutes / 1440, minutes / 60 % 24, minutes % 60);
    match (d, h, m) {
        (0, 0, 0) => "under a minute left".into(),
        (0, 0, m) => format!("{m} min left"),
        (0, h, m) => format!("{h} h {m} min left"),
        (d, h, _) => format!("{d} d {h} h left"),
    }
}

pub fn now_ms() -> i64 {
    #[cfg(feature = "hydrate")]
    {
        web_sys::js_sys::Date::now() as i64
    }
    #[cfg(not(feature = "hydrate"))]
    {
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.as_millis() as i64)
    }
}

/// A past span in words: "just now", "4 min ago", "3 h ago", "2 d ago".
pub fn ago(ms: i64) -> String {
    let minutes = ms.max(0) / 60_000;
    match minutes {
        0 => "just now".into(),
        m if m < 60 => format!("{m} min ago"),
        m if m < 48 * 60 => format!("{} h ago", m / 60),
        m => format!("{} d ago", m / 1440),
    }
}

/// "3 min ago", the exact time on hover; the words are those of the render (SSR and the
/// first browser render agree to the minute).
pub fn ago_view(iso: &str) -> impl IntoView {
    let words = super::countdown::parse_ms(iso)
        .map(|at| ago(now_ms() - at))
        .unwrap_or_default();
    view! { <time class="ago" datetime=iso.to_owned() title=super::widgets::short_time(iso)>{words}</time> }
}

/// "7 h 59 min left" until `until`, refreshed every 20 seconds; the end itself on hover.
#[component]
pub fn Countdown(until: String) -> impl IntoView {
    let end = parse_ms(&until);
    let now = RwSignal::new(now_ms());
    Effect::new(move |_| {
        now.set(now_ms());
        if let Ok(handle) = set_interval_with_handle(
            move || now.set(now_ms()),
            std::time::Duration::from_secs(20),
        ) {
            on_cleanup(move || handle.clear());
        }
    });
    let title = format!("ends {}", until.replace('T', " ").trim_end_matches('Z'));
    view! {
        <time class="countdown" datetime=until title=title>
            {move || end.map(|e| left_label(e - now.get())).unwrap_or_default()}
        </time>
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn timestamps_parse_to_the_same_milliseconds_as_the_server_writes() {
        assert_eq!(parse_ms("1970-01-01T00:00:00.000Z"), Some(0));
        assert_eq!(
            parse_ms("2026-11-18T11:06:40.590Z"),
            Some(1_795_000_000_590)
        );
        assert_eq!(
            parse_ms("2024-02-29T00:00:00.000Z"),
            Some(1_709_164_800_000)
        );
        assert_eq!(parse_ms("not a time"), None);
    }

    #[test]
    fn time_left_reads_in_the_largest_units() {
        assert_eq!(left_label(-5), "ended");
        assert_eq!(left_label(30_000), "under a minute left");
        assert_eq!(left_label(12 * 60_000), "12 min left");
        assert_eq!(left_label((7 * 60 + 59) * 60_000 + 10), "7 h 59 min left");
        assert_eq!(left_label((3 * 1440 + 4 * 60 + 5) * 60_000), "3 d 4 h left");
    }

    #[test]
    fn past_spans_read_as_words() {
        assert_eq!(ago(-5), "just now");
        assert_eq!(ago(59_999), "just now");
        assert_eq!(ago(4 * 60_000), "4 min ago");
        assert_eq!(ago(3 * 3_600_000), "3 h ago");
        assert_eq!(ago(3 * 86_400_000), "3 d ago");
    }
}
