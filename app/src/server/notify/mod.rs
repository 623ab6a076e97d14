//! Alerts for reviewers through a transactional outbox. The service that records an event
//! calls [`enqueue`] inside its own transaction, so an alert exists exactly when its event
//! committed; a worker ([`deliver`]) sends it later with retries, so a slow or broken Slack never
//! slows an agent's request and a restart loses nothing.

pub mod deliver;
pub mod neutral;
pub mod render;
pub mod webhook;

use std::time::Duration;

use serde::{Deserialize, Serialize};

use crate::model::{AlertEvent, ChannelKind, OrgId};
use crate::server::service::new_id;
use crate::server::store::{self, Tx, outbox::NewDelivery};

/// What an alert says. Stored as the outbox payload with agent-written text still raw: each
/// channel neutralises it for its own markup when it renders.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct Alert {
    pub event: AlertEvent,
    #[serde(default)]
    pub org_name: String,
    pub agent_name: String,
    pub tool_name: String,
    #[serde(default)]
    pub tool_url: Option<String>,
    /// Reason, learned fact or decision note.
    pub text: String,
    /// `approved`, `denied` or `revoked` for decision notices.
    #[serde(default)]
    pub decision: Option<String>,
    #[serde(default)]
    pub reviewer: Option<String>,
    /// Absolute link into the dashboard.
    pub link: String,
    pub at: i64,
}

impl Alert {
    /// An alert about `agent` and `tool`; `text` is the reason, fact or note.
    pub fn new(
        event: AlertEvent,
        agent: &str,
        tool: &str,
        text: &str,
        link: String,
        at: i64,
    ) -> Self {
        Alert {
            event,
            org_name: String::new(),
            agent_name: agent.to_owned(),
            tool_name: tool.to_owned(),
            tool_url: None,
            text: text.to_owned(),
            decision: None,
            reviewer: None,
            link,
            at,
        }
    }
}

/// Retry schedule of the delivery worker.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Policy {
    /// Delay before the second attempt; doubles per attempt.
    pub base: Duration,
    /// Longest delay between two attempts.
    pub cap: Duration,
    /// Attempts before a notification is dead-lettered.
    pub max_attempts: u32,
    /// How long a worker holds a row it is sending; a crashed worker's rows return after it.
    pub lease: Duration,
}

impl Default for Policy {
    /// About three hours of retries: enough to ride out a provider outage.
    fn default() -> Self {
        Policy {
            base: Duration::from_secs(2),
            cap: Duration::from_secs(30 * 60),
            max_attempts: 15,
            lease: Duration::from_secs(60),
        }
    }
}

impl Policy {
    /// Delay after failed attempt `attempt` (1-based): exponential, capped, with "equal
    /// jitter" (half fixed, half random) so that many failed rows do not retry in lockstep.
    pub fn backoff(&self, attempt: u32, unit_random: f64) -> Duration {
        let exp = self.base.saturating_mul(
            1_u32
                .checked_shl(attempt.saturating_sub(1).min(30))
                .unwrap_or(u32::MAX),
        );
        let capped = exp.min(self.cap);
        capped / 2 + capped.mul_f64(unit_random.clamp(0.0, 1.0) / 2.0)
    }
}

/// The outbox's process-local side: the guarded client, the schedule and a wake-up for the
/// worker after a commit that enqueued something.
pub struct Notifier {
    pub outbound: crate::server::outbound::Outbound,
    pub policy: Policy,
    wake: tokio::sync::Notify,
}

impl Notifier {
    pub fn new(outbound: crate::server::outbound::Outbound, policy: Policy) -> Self {
        Notifier {
            outbound,
            policy,
            wake: tokio::sync::Notify::new(),
        }
    }

    /// Tells the worker that new rows may be due (call after commit).
    pub fn wake(&self) {
        self.wake.notify_one();
    }

    /// Resolves at the next [`Notifier::wake`] (or at once if one is already pending).
    pub async fn woken(&self) {
        self.wake.notified().await;
    }
}

/// Parses a channel's comma-separated event list.
pub fn parse_events(text: &str) -> Vec<AlertEvent> {
    text.split(',')
        .filter_map(|e| AlertEvent::parse(e.trim()))
        .collect()
}

/// The stored form of an event list.
pub fn join_events(events: &[AlertEvent]) -> String {
    AlertEvent::ALL
        .iter()
        .filter(|e| events.contains(e))
        .map(|e| e.as_str())
        .collect::<Vec<_>>()
        .join(",")
}

/// Inside the event's transaction: one outbox row per channel that wants this event (for
/// email, one per member who opted in). Returns how many rows were written. Costs one query
/// when the organization has no channels.
pub async fn enqueue(tx: &mut Tx, org_id: &OrgId, mut alert: Alert) -> store::StoreResult<usize> {
    let channels = store::notify::list_channels(&mut **tx, org_id).await?;
    let wanted: Vec<_> = channels
        .into_iter()
        .filter(|c| parse_events(&c.events).contains(&alert.event))
        .collect();
    if wanted.is_empty() {
        return Ok(0);
    }
    alert.org_name = store::orgs::find_organization(&mut **tx, org_id)
        .await?
        .map(|o| o.name)
        .unwrap_or_default();
    let payload = serde_json::to_string(&alert).map_err(|e| sqlx::Error::Encode(Box::new(e)))?;
    let mut written = 0;
    for channel in wanted {
        let recipients = match channel.kind {
            ChannelKind::Email => store::notify::email_recipients(&mut **tx, org_id)
                .await?
                .into_iter()
                .map(Some)
                .collect(),
            _ if channel.target_blob.is_some() => vec![None],
            _ => Vec::new(),
        };
        for recipient in recipients {
            let id = new_id();
            let row = NewDelivery {
                id: &id,
                org_id,
                channel: channel.kind,
                recipient: recipient.as_deref(),
                event: alert.event,
                payload: &payload,
            };
            store::outbox::insert_delivery(tx, &row, alert.at).await?;
            written += 1;
        }
    }
    Ok(written)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn backoff_doubles_up_to_the_cap_with_bounded_jitter() {
        let p = Policy {
            base: Duration::from_millis(100),
            cap: Duration::from_secs(1),
            max_attempts: 5,
            lease: Duration::from_secs(5),
        };
        assert_eq!(p.backoff(1, 0.0), Duration::from_millis(50));
        assert_eq!(p.backoff(1, 1.0), Duration::from_millis(100));
        assert_eq!(p.backoff(3, 1.0), Duration::from_millis(400));
        assert_eq!(p.backoff(10, 1.0), Duration::from_secs(1));
        assert_eq!(p.backoff(60, 0.0), Duration::from_millis(500));
        let mid = p.backoff(2, 0.5);
        assert!(mid > Duration::from_millis(100) && mid < Duration::from_millis(200));
    }

    #[test]
    fn event_lists_round_trip_in_a_fixed_order() {
        let events = [AlertEvent::Decided, AlertEvent::AccessRequested];
        assert_eq!(join_events(&events), "access_requested,decided");
        assert_eq!(
            parse_events("access_requested, decided,bogus"),
            vec![AlertEvent::AccessRequested, AlertEvent::Decided]
        );
    }
}
