//! The maintenance pass: pending requests nobody decided expire, grants whose time ran out
//! are marked expired, grants nobody used are revoked. Safe with several instances on one
//! database: each row is changed by a compare-and-set inside the transaction that audits it,
//! so exactly one instance acts on it (and only that one notifies).
//!
//! Time: each instance reads its own clock, and acts only on what was due [`SKEW_MARGIN_MS`]
//! before it, so an instance whose clock runs up to that much fast never ends anything early.
//! (A fetch is refused from the grant's end by the instance's own clock: keep instances on
//! NTP.)

use serde_json::json;

use crate::model::{ActorType, AlertEvent};
use crate::server::audit::{self, AuditEntry};
use crate::server::events::EventKind;
use crate::server::notify::{self, Alert};
use crate::server::service::actor::{Actor, RequestMeta};
use crate::server::store::{self, lifecycle::DueRow};
use crate::server::{ServiceResult, Services, clock};

/// How far another instance's clock may run ahead without ending anything early.
pub const SKEW_MARGIN_MS: i64 = 120_000;

/// A pending request older than this gets one reminder.
const WAITING_MS: i64 = 24 * 3_600_000;

/// Rows of each kind one pass takes; the next pass takes the rest.
const BATCH: i64 = 200;

/// What one pass did.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Swept {
    pub pending_expired: usize,
    pub grants_expired: usize,
    pub idle_revoked: usize,
    /// Reminders sent: grants about to end, requests waiting over a day.
    pub reminders: usize,
}

impl Swept {
    pub fn total(&self) -> usize {
        self.pending_expired + self.grants_expired + self.idle_revoked + self.reminders
    }
}

#[derive(Clone, Copy)]
enum Due {
    Pending,
    Expired,
    Idle,
}

fn maintenance() -> Actor {
    Actor {
        kind: ActorType::System,
        id: "system".into(),
        label: "AgentKey".into(),
    }
}

/// One pass over every organization.
pub async fn run_once(svc: &Services) -> ServiceResult<Swept> {
    let now = svc.clock.now_ms();
    let before = now - SKEW_MARGIN_MS;
    let reader = svc.store.reader();
    let mut swept = Swept::default();
    for row in store::lifecycle::due_pending(reader, before, BATCH).await? {
        swept.pending_expired += usize::from(act(svc, &row, Due::Pending, before, now).await?);
    }
    for row in store::lifecycle::due_expired(reader, before, BATCH).await? {
        swept.grants_expired += usize::from(act(svc, &row, Due::Expired, before, now).await?);
    }
    for row in store::lifecycle::due_idle(reader, before, BATCH).await? {
        swept.idle_revoked += usize::from(act(svc, &row, Due::Idle, before, now).await?);
    }
    for row in store::lifecycle::due_expiry_reminders(reader, now, BATCH).await? {
        swept.reminders += usize::from(remind(svc, &row, true, now).await?);
    }
    for row in store::lifecycle::due_waiting_reminders(reader, now - WAITING_MS, BATCH).await? {
        swept.reminders += usize::from(remind(svc, &row, false, now).await?);
    }
    if swept.total() > 0 {
        svc.vend_cache.clear();
        tracing::info!(
            pending_expired = swept.pending_expired,
            grants_expired = swept.grants_expired,
            idle_revoked = swept.idle_revoked,
            "maintenance pass"
        );
    }
    Ok(swept)
}

/// Acts on one row in its own transaction; false when another instance (or a reviewer) got
/// there first.
async fn act(svc: &Services, row: &DueRow, due: Due, before: i64, now: i64) -> ServiceResult<bool> {
    let mut tx = svc.store.begin().await?;
    let (done, action, text) = match due {
        Due::Pending => {
            let note =
                "Nobody decided within the organization's pending time; the agent may ask again.";
            let done = store::lifecycle::expire_pending(&mut tx, &row.id, note, now).await?;
            (done, "grant.request_expired", note.to_owned())
        }
        Due::Expired => {
            let done = store::lifecycle::expire_grant(&mut tx, &row.id, before, now).await?;
            (
                done,
                "grant.expired",
                format!(
                    "The grant ended at {}.",
                    clock::iso_opt(row.expires_at).unwrap_or_default()
                ),
            )
        }
        Due::Idle => {
            let since = row.last_used_at.unwrap_or(row.created_at);
            let note = format!(
                "Unused since {}: revoked by the organization's idle limit.",
                clock::iso(since)
            );
            let done = store::lifecycle::revoke_idle(&mut tx, &row.id, &note, before, now).await?;
            (done, "grant.revoked_idle", note)
        }
    };
    if !done {
        return Ok(false);
    }
    let entry = AuditEntry::new(
        &row.organization_id,
        &maintenance(),
        &RequestMeta::default(),
        action,
    )
    .target("access_request", &row.id)
    .agent(&row.agent_id)
    .tool(&row.tool_id)
    .meta(json!({
        "agent_name": row.agent_name, "tool_name": row.tool_name, "note": text,
        "requested_at": clock::iso(row.created_at), "expires_at": clock::iso_opt(row.expires_at),
        "last_used_at": clock::iso_opt(row.last_used_at),
    }));
    audit::append(&mut tx, svc.store.heads(), &[entry]).await?;
    let decision = match due {
        Due::Pending => "expired unanswered",
        Due::Expired => "expired",
        Due::Idle => "revoked as idle",
    };
    let alert = Alert {
        decision: Some(decision.into()),
        reviewer: Some("AgentKey".into()),
        ..Alert::new(
            AlertEvent::Decided,
            &row.agent_name,
            &row.tool_name,
            &text,
            svc.link("/audit"),
            now,
        )
    };
    let queued = notify::enqueue(&mut tx, &row.organization_id, alert).await?;
    tx.commit().await?;
    svc.events
        .publish(&row.organization_id, EventKind::RequestChanged);
    if queued > 0 {
        svc.notifier.wake();
    }
    Ok(true)
}

/// Tells reviewers (the channels and mail opted in to reminders) once: a grant enters its
/// renewal window, or a request has waited over a day.
async fn remind(svc: &Services, row: &DueRow, expiry: bool, now: i64) -> ServiceResult<bool> {
    let mut tx = svc.store.begin().await?;
    if !store::lifecycle::mark_reminded(&mut tx, &row.id, expiry, now).await? {
        return Ok(false);
    }
    let (title, text, link) = if expiry {
        (
            "Grant ends soon",
            format!(
                "The grant ends {}; the agent may ask to renew it, or it runs out.",
                clock::iso_opt(row.expires_at).unwrap_or_default()
            ),
            "/access",
        )
    } else {
        (
            "Request waiting over a day",
            format!(
                "Asked {}; nobody has decided yet.",
                clock::iso(row.created_at)
            ),
            "/inbox",
        )
    };
    let alert = Alert {
        decision: Some(title.into()),
        ..Alert::new(
            AlertEvent::Reminder,
            &row.agent_name,
            &row.tool_name,
            &text,
            svc.link(link),
            now,
        )
    };
    let queued = notify::enqueue(&mut tx, &row.organization_id, alert).await?;
    tx.commit().await?;
    if queued > 0 {
        svc.notifier.wake();
    }
    Ok(true)
}
