//! Grants that end by themselves: how long an approval gives, when a live grant may be
//! renewed, and the maintenance pass that expires what nobody decided or used.

use crate::model::{Access, GrantDuration};
use crate::server::service::validate::Check;
use crate::server::store::requests::RequestRow;
use crate::server::{ServiceError, clock};

pub mod auto;
pub mod exposure;
pub mod renew;
pub mod reviews;
pub mod settings;
pub mod sweep;

/// The longest renewal window: a grant may be renewed in its last day at the earliest.
const MAX_WINDOW_MS: i64 = 24 * 3_600_000;

/// How long an approval of `row` lasts: the reviewer's `chosen` length, else the agent's ask,
/// else the tool's default, else the tool's maximum, else standing. Never longer than the
/// tool's maximum: a reviewer's longer choice is refused (the message says why); an ask made
/// before the maximum was lowered is shortened to it.
pub fn grant_length(
    row: &RequestRow,
    chosen: Option<GrantDuration>,
) -> Result<GrantDuration, String> {
    length_within(
        row.max_duration,
        row.default_duration,
        row.requested_duration,
        chosen,
    )
}

fn length_within(
    max: Option<GrantDuration>,
    default: Option<GrantDuration>,
    asked: Option<GrantDuration>,
    chosen: Option<GrantDuration>,
) -> Result<GrantDuration, String> {
    let cap = |d: GrantDuration| match max {
        Some(max) if !d.within(Some(max)) => max,
        _ => d,
    };
    match chosen {
        Some(d) if !d.within(max) => Err(format!(
            "{d} is longer than this tool's maximum grant of {}",
            max.map(GrantDuration::label).unwrap_or_default()
        )),
        Some(d) => Ok(d),
        None => Ok(cap(asked
            .or(default)
            .or(max)
            .unwrap_or(GrantDuration::Standing))),
    }
}

/// The length a renewal of `row` gives unless the reviewer picks one: what the agent asked
/// for, else the length the grant had (for a grant given an end without a length, the span it
/// had), within the tool's maximum. Never standing unless asked: renewing a time-bound grant
/// must not make it open-ended by default.
pub fn renewal_length(row: &RequestRow) -> GrantDuration {
    let had = row.granted_duration.or_else(|| {
        let span = row.expires_at? - row.decided_at.unwrap_or(row.created_at);
        let minutes = u32::try_from((span + 59_999) / 60_000).ok()?;
        Some(GrantDuration::Minutes(
            minutes.clamp(1, crate::model::MAX_DURATION_MINUTES),
        ))
    });
    length_within(
        row.max_duration,
        row.default_duration,
        row.renewal_duration.or(had),
        None,
    )
    .unwrap_or(GrantDuration::Minutes(60))
}

/// What approving `row` now gives unless the reviewer picks a length (shown in the inbox).
pub fn offered_length(row: &RequestRow) -> GrantDuration {
    if row.renewal_requested_at.is_some() {
        renewal_length(row)
    } else {
        grant_length(row, None).unwrap_or(GrantDuration::Standing)
    }
}

/// A `duration` field as a reviewer or operator gives it (empty: none), with a field error
/// that names the accepted forms.
pub fn parse_duration_field(text: Option<&str>) -> Result<Option<GrantDuration>, ServiceError> {
    match text.map(str::trim).filter(|t| !t.is_empty()) {
        None => Ok(None),
        Some(t) => GrantDuration::parse(t).map(Some).map_err(|message| {
            let mut check = Check::new();
            check.fail("duration", message);
            check
                .finish("Give the duration as 30m, 8h, 7d or standing.")
                .expect_err("one failure")
        }),
    }
}

/// What an agent should do next about its request `row` (seen as `access` at `now`): renew a
/// grant about to end, or ask again after a request expired unanswered or a grant ran out.
pub fn next_step(row: &RequestRow, access: Access, now: i64) -> Option<String> {
    let tool = &row.tool_id;
    match access {
        Access::Approved if row.renewal_requested_at.is_some() => Some(format!(
            "Your renewal waits for a human; the grant works until {}.",
            clock::iso_opt(row.expires_at).unwrap_or_default()
        )),
        Access::Approved => {
            let opens = renewal_opens_for(row)?;
            (now >= opens && row.renewal_note.is_none()).then(|| {
                format!(
                    "Your grant ends {}: to keep access, renew it now with POST /api/tools/{tool}/request and a reason.",
                    clock::iso_opt(row.expires_at).unwrap_or_default()
                )
            })
        }
        // A grant that ran out has an end; a request that expired unanswered has none.
        Access::Expired if row.expires_at.is_none() => Some(format!(
            "Nobody decided your request in time, so it expired. Ask again with POST /api/tools/{tool}/request if you still need it."
        )),
        Access::Expired => Some(format!(
            "Your grant ran out. Ask again with POST /api/tools/{tool}/request if you still need it."
        )),
        _ => None,
    }
}

/// The renewal window of a grant that runs from `from_ms` to `until_ms`: its last quarter, and
/// at most its last day. Returns when the window opens.
pub fn renewal_opens(from_ms: i64, until_ms: i64) -> i64 {
    let window = ((until_ms - from_ms) / 4).clamp(0, MAX_WINDOW_MS);
    until_ms - window
}

/// When `row`'s renewal window opens; `None` for a standing grant (nothing to renew).
pub fn renewal_opens_for(row: &RequestRow) -> Option<i64> {
    let until = row.expires_at?;
    Some(renewal_opens(
        row.decided_at.unwrap_or(row.created_at),
        until,
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    const H8: GrantDuration = GrantDuration::Minutes(480);
    const H1: GrantDuration = GrantDuration::Minutes(60);

    #[test]
    fn the_length_is_the_choice_else_the_ask_else_the_default_within_the_maximum() {
        assert_eq!(
            length_within(None, None, None, None),
            Ok(GrantDuration::Standing)
        );
        assert_eq!(length_within(Some(H8), None, None, None), Ok(H8));
        assert_eq!(length_within(Some(H8), Some(H1), None, None), Ok(H1));
        assert_eq!(
            length_within(Some(H8), Some(H1), Some(GrantDuration::Minutes(30)), None),
            Ok(GrantDuration::Minutes(30))
        );
        // An ask made before the maximum was lowered is shortened, a reviewer's choice refused.
        assert_eq!(length_within(Some(H1), None, Some(H8), None), Ok(H1));
        assert_eq!(
            length_within(Some(H1), None, Some(GrantDuration::Standing), None),
            Ok(H1)
        );
        let err = length_within(Some(H8), None, Some(H1), Some(GrantDuration::Standing))
            .expect_err("refused");
        assert!(err.contains("maximum grant of 8 hours"), "{err}");
        // A reviewer may give more than asked, within the maximum.
        assert_eq!(length_within(Some(H8), None, Some(H1), Some(H8)), Ok(H8));
    }

    #[test]
    fn the_renewal_window_is_the_last_quarter_and_at_most_a_day() {
        let h = 3_600_000;
        assert_eq!(renewal_opens(0, 8 * h), 6 * h);
        assert_eq!(renewal_opens(0, 30 * 24 * h), 29 * 24 * h);
    }
}
