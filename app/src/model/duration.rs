//! How long a grant lasts: a number of minutes, hours or days, or standing (until revoked).

use serde::{Deserialize, Serialize};

/// The longest grant a duration can name.
pub const MAX_DURATION_MINUTES: u32 = 365 * 24 * 60;

/// The forms a duration is written in, for error messages and hints.
pub const DURATION_FORMS: &str = "a whole number of minutes, hours or days such as 30m, 8h or 7d (1 minute to 365 days), or standing (until revoked)";

/// A grant's length. Written `30m`, `8h`, `7d` or `standing`; stored and sent in the shortest
/// exact form (`480m` is `8h`).
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub enum GrantDuration {
    /// A number of minutes, from 1 to [`MAX_DURATION_MINUTES`].
    Minutes(u32),
    /// Until someone revokes it.
    Standing,
}

impl GrantDuration {
    /// Parses `30m`, `8h`, `7d` or `standing`: ASCII digits without sign, space or leading zero,
    /// one unit letter, from 1 minute to 365 days. The error says what is accepted.
    pub fn parse(text: &str) -> Result<Self, String> {
        if text == "standing" {
            return Ok(GrantDuration::Standing);
        }
        let refuse = || format!("{text:?} is not a duration: use {DURATION_FORMS}");
        if !text.is_ascii() {
            return Err(refuse());
        }
        let (digits, unit) = text.split_at(text.len().saturating_sub(1));
        let per = match unit {
            "m" => 1,
            "h" => 60,
            "d" => 24 * 60,
            _ => return Err(refuse()),
        };
        if digits.is_empty()
            || digits.len() > 6
            || digits.starts_with('0')
            || !digits.bytes().all(|b| b.is_ascii_digit())
        {
            return Err(refuse());
        }
        let n: u32 = digits.parse().map_err(|_| refuse())?;
        match n.checked_mul(per) {
            Some(minutes) if minutes <= MAX_DURATION_MINUTES => Ok(GrantDuration::Minutes(minutes)),
            _ => Err(format!(
                "{text:?} is longer than 365 days: use {DURATION_FORMS}"
            )),
        }
    }

    /// The length in minutes; `None` when standing.
    pub fn minutes(self) -> Option<u32> {
        match self {
            GrantDuration::Minutes(m) => Some(m),
            GrantDuration::Standing => None,
        }
    }

    /// The length in milliseconds; `None` when standing.
    pub fn millis(self) -> Option<i64> {
        self.minutes().map(|m| i64::from(m) * 60_000)
    }

    /// When a grant of this length that starts at `from_ms` ends; `None` when standing.
    pub fn ends(self, from_ms: i64) -> Option<i64> {
        self.millis().map(|ms| from_ms.saturating_add(ms))
    }

    /// Whether this is at most `limit` (anything is within no limit; standing only within
    /// standing).
    pub fn within(self, limit: Option<GrantDuration>) -> bool {
        match limit {
            None | Some(GrantDuration::Standing) => true,
            Some(limit) => self <= limit,
        }
    }

    /// For people: "30 minutes", "8 hours", "7 days", "standing".
    pub fn label(self) -> String {
        let plural = |n: u32, unit: &str| {
            if n == 1 {
                format!("1 {unit}")
            } else {
                format!("{n} {unit}s")
            }
        };
        match self {
            GrantDuration::Standing => "standing".into(),
            GrantDuration::Minutes(m) if m % (24 * 60) == 0 => plural(m / (24 * 60), "day"),
            GrantDuration::Minutes(m) if m % 60 == 0 => plural(m / 60, "hour"),
            GrantDuration::Minutes(m) => plural(m, "minute"),
        }
    }
}

impl std::fmt::Display for GrantDuration {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match *self {
            GrantDuration::Standing => f.write_str("standing"),
            GrantDuration::Minutes(m) if m % (24 * 60) == 0 => write!(f, "{}d", m / (24 * 60)),
            GrantDuration::Minutes(m) if m % 60 == 0 => write!(f, "{}h", m / 60),
            GrantDuration::Minutes(m) => write!(f, "{m}m"),
        }
    }
}

impl TryFrom<String> for GrantDuration {
    type Error = String;
    fn try_from(text: String) -> Result<Self, String> {
        GrantDuration::parse(&text)
    }
}

impl From<GrantDuration> for String {
    fn from(d: GrantDuration) -> String {
        d.to_string()
    }
}

#[cfg(feature = "ssr")]
impl schemars::JsonSchema for GrantDuration {
    fn schema_name() -> std::borrow::Cow<'static, str> {
        "GrantDuration".into()
    }

    fn json_schema(_: &mut schemars::SchemaGenerator) -> schemars::Schema {
        schemars::json_schema!({
            "type": "string",
            "pattern": "^([1-9][0-9]{0,5}[mhd]|standing)$",
            "description": "30m, 8h, 7d (1 minute to 365 days) or standing (until revoked)",
            "examples": ["8h", "7d", "standing"]
        })
    }
}

// Stored as its text: a value that does not parse is a corrupt row, never a silent default.
#[cfg(feature = "ssr")]
impl sqlx::Type<sqlx::Any> for GrantDuration {
    fn type_info() -> sqlx::any::AnyTypeInfo {
        <String as sqlx::Type<sqlx::Any>>::type_info()
    }

    fn compatible(ty: &sqlx::any::AnyTypeInfo) -> bool {
        <String as sqlx::Type<sqlx::Any>>::compatible(ty)
    }
}

#[cfg(feature = "ssr")]
impl<'r> sqlx::Decode<'r, sqlx::Any> for GrantDuration {
    fn decode(value: sqlx::any::AnyValueRef<'r>) -> Result<Self, sqlx::error::BoxDynError> {
        let text = <String as sqlx::Decode<sqlx::Any>>::decode(value)?;
        GrantDuration::parse(&text).map_err(Into::into)
    }
}

#[cfg(feature = "ssr")]
impl<'q> sqlx::Encode<'q, sqlx::Any> for GrantDuration {
    fn encode_by_ref(
        &self,
        buf: &mut <sqlx::Any as sqlx::Database>::ArgumentBuffer<'q>,
    ) -> Result<sqlx::encode::IsNull, sqlx::error::BoxDynError> {
        <String as sqlx::Encode<sqlx::Any>>::encode(self.to_string(), buf)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_written_forms_parse_and_print_shortest() {
        assert_eq!(GrantDuration::parse("30m"), Ok(GrantDuration::Minutes(30)));
        assert_eq!(GrantDuration::parse("8h"), Ok(GrantDuration::Minutes(480)));
        assert_eq!(
            GrantDuration::parse("7d"),
            Ok(GrantDuration::Minutes(7 * 1440))
        );
        assert_eq!(
            GrantDuration::parse("standing"),
            Ok(GrantDuration::Standing)
        );
        assert_eq!(
            GrantDuration::parse("480m")
                .expect("as the test set up")
                .to_string(),
            "8h"
        );
        assert_eq!(
            GrantDuration::parse("48h")
                .expect("as the test set up")
                .to_string(),
            "2d"
        );
        assert_eq!(
            GrantDuration::parse("90m")
                .expect("as the test set up")
                .to_string(),
            "90m"
        );
        assert_eq!(
            GrantDuration::parse("365d")
                .expect("as the test set up")
                .label(),
            "365 days"
        );
        assert_eq!(
            GrantDuration::parse("1h")
                .expect("as the test set up")
                .label(),
            "1 hour"
        );
    }

    #[test]
    fn malformed_and_out_of_range_durations_name_the_accepted_forms() {
        for bad in [
            "0h", "-1d", "99999d", "8 h", " 8h", "8H", "８h", "٨h", "8", "h", "", "08h", "1w",
            "+8h", "366d", "1.5h", "Standing", "9999999m", "1é", "é", "8ｈ",
        ] {
            let err = GrantDuration::parse(bad).expect_err(bad);
            assert!(err.contains("30m, 8h or 7d"), "{bad}: {err}");
        }
    }

    #[test]
    fn within_compares_against_a_tool_maximum() {
        let h8 = GrantDuration::Minutes(480);
        assert!(GrantDuration::Minutes(30).within(Some(h8)));
        assert!(h8.within(Some(h8)));
        assert!(!GrantDuration::Minutes(481).within(Some(h8)));
        assert!(!GrantDuration::Standing.within(Some(h8)));
        assert!(GrantDuration::Standing.within(None));
    }
}
