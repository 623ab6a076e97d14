//! Denials and revocations, and the one path every decision takes: state change, audit row and
//! decision notice in one transaction.

use serde_json::json;

use super::{load, request_not_found, view};
use crate::model::{AccessRequestView, AlertEvent, RequestStatus};
use crate::server::audit::{self, AuditEntry};
use crate::server::events::EventKind;
use crate::server::notify::{self, Alert};
use crate::server::service::actor::{AdminCtx, Permission};
use crate::server::service::lifecycle;
use crate::server::service::validate::{Check, limits};
use crate::server::store::{self, requests::Decision};
use crate::server::{ServiceError, ServiceResult, Services};

/// Denies a pending request; the reason goes back to the agent.
pub async fn deny(
    svc: &Services,
    ctx: &AdminCtx,
    id: &str,
    reason: Option<&str>,
) -> ServiceResult<AccessRequestView> {
    ctx.require(Permission::Decide)?;
    let mut check = Check::new();
    let reason = check.optional("reason", reason, limits::NOTE, true);
    check.finish("Keep the reason under 500 characters.")?;
    let row = load(svc, ctx, id).await?;
    if row.status == RequestStatus::Approved && row.renewal_requested_at.is_some() {
        return lifecycle::renew::deny(svc, ctx, row, reason.as_deref()).await;
    }
    if row.status != RequestStatus::Pending {
        return Err(ServiceError::conflict(
            &format!(
                "Only pending requests can be denied; this one is {}.",
                row.status
            ),
            "Use revoke to end an approved grant.",
        ));
    }
    let decision = Decision {
        id: &row.id,
        from: RequestStatus::Pending,
        to: RequestStatus::Denied,
        decided_by: &ctx.actor.label,
        note: reason.as_deref(),
        credential_blob: None,
        credential_version: 0,
        expires_at: None,
        granted_duration: None,
    };
    let entry = AuditEntry::new(&ctx.org_id, &ctx.actor, &ctx.meta, "grant.denied")
        .target("access_request", &row.id)
        .agent(&row.agent_id)
        .tool(&row.tool_id)
        .meta(
            json!({ "agent_name": row.agent_name, "tool_name": row.tool_name, "reason": reason }),
        );
    decide(svc, ctx, &decision, entry).await
}

/// Revokes an approved grant (or withdraws a pending request). The next fetch gets 403.
pub async fn revoke(
    svc: &Services,
    ctx: &AdminCtx,
    id: &str,
    reason: Option<&str>,
) -> ServiceResult<AccessRequestView> {
    ctx.require(Permission::Decide)?;
    let mut check = Check::new();
    let reason = check.optional("reason", reason, limits::NOTE, true);
    check.finish("Keep the reason under 500 characters.")?;
    let row = load(svc, ctx, id).await?;
    if !matches!(row.status, RequestStatus::Approved | RequestStatus::Pending) {
        return Err(ServiceError::conflict(
            &format!(
                "Only approved or pending requests can be revoked; this one is {}.",
                row.status
            ),
            "Nothing to revoke.",
        ));
    }
    let decision = Decision {
        id: &row.id,
        from: row.status,
        to: RequestStatus::Revoked,
        decided_by: &ctx.actor.label,
        note: reason.as_deref(),
        credential_blob: None,
        credential_version: row.credential_version,
        expires_at: row.expires_at,
        granted_duration: row.granted_duration,
    };
    let entry = AuditEntry::new(&ctx.org_id, &ctx.actor, &ctx.meta, "grant.revoked")
        .target("access_request", &row.id)
        .agent(&row.agent_id)
        .tool(&row.tool_id)
        .meta(json!({ "agent_name": row.agent_name, "tool_name": row.tool_name, "reason": reason, "was": row.status }));
    decide(svc, ctx, &decision, entry).await
}

async fn decide(
    svc: &Services,
    ctx: &AdminCtx,
    d: &Decision<'_>,
    entry: AuditEntry,
) -> ServiceResult<AccessRequestView> {
    let tx = svc.store.begin().await?;
    decide_in(svc, ctx, tx, d, entry).await
}

/// Applies a decision inside `tx` with its audit row and decision notice, and commits.
pub(super) async fn decide_in(
    svc: &Services,
    ctx: &AdminCtx,
    mut tx: store::Tx,
    d: &Decision<'_>,
    entry: AuditEntry,
) -> ServiceResult<AccessRequestView> {
    let verb = d.to.as_str();
    if !store::requests::decide_request(&mut tx, d, svc.clock.now_ms()).await? {
        return Err(ServiceError::conflict(
            &format!("The request changed before it could be {verb}."),
            "Reload the request list; someone else decided it first.",
        ));
    }
    audit::append(&mut tx, svc.store.heads(), &[entry]).await?;
    let row = store::requests::find_request(&mut *tx, &ctx.org_id, d.id)
        .await?
        .ok_or_else(request_not_found)?;
    let alert = Alert {
        decision: Some(verb.to_owned()),
        reviewer: Some(ctx.actor.label.clone()),
        ..Alert::new(
            AlertEvent::Decided,
            &row.agent_name,
            &row.tool_name,
            d.note.unwrap_or_default(),
            svc.link("/audit"),
            svc.clock.now_ms(),
        )
    };
    let queued = notify::enqueue(&mut tx, &ctx.org_id, alert).await?;
    tx.commit().await?;
    svc.vend_cache.clear();
    svc.events.publish(&ctx.org_id, EventKind::RequestChanged);
    if queued > 0 {
        svc.notifier.wake();
    }
    Ok(view(row))
}

/// Most requests one bulk decision takes.
pub const BULK_MAX: usize = 200;

/// Approves (without per-agent secrets) or denies several requests, each on its own: the
/// first failure stops the batch, and its message says how many were decided before it (those
/// decisions stand).
pub async fn decide_many(
    svc: &Services,
    ctx: &AdminCtx,
    ids: &[String],
    approve: bool,
    reason: Option<&str>,
) -> ServiceResult<usize> {
    ctx.require(Permission::Decide)?;
    if ids.len() > BULK_MAX {
        return Err(ServiceError::conflict(
            "Too many requests at once.",
            &format!("Decide at most {BULK_MAX} at a time."),
        ));
    }
    for (done, id) in ids.iter().enumerate() {
        let decided = if approve {
            super::approve(svc, ctx, id, None, None).await.map(|_| ())
        } else {
            deny(svc, ctx, id, reason).await.map(|_| ())
        };
        if let Err(err) = decided {
            // A 5xx body stays generic, so the count goes to the log as well.
            tracing::warn!(
                decided = done,
                of = ids.len(),
                "bulk decision stopped early"
            );
            return Err(err.prefixed(&format!("{done} decided, then: ")));
        }
    }
    Ok(ids.len())
}
