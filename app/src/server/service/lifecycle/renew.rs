//! Renewal: inside the last part of a time-bound grant, the agent's request for the same tool
//! asks to extend the grant instead of being refused. The grant keeps working while the
//! renewal waits; approving extends it from its current end (no gap), denying lets it run out.

use serde_json::json;

use super::{length_within, renewal_length, renewal_opens_for};
use crate::model::{
    AccessRequestView, AgentStatus, AlertEvent, ErrorBody, GrantDuration, RequestCreated,
    RequestStatus,
};
use crate::server::audit::{self, AuditEntry};
use crate::server::events::EventKind;
use crate::server::notify::{self, Alert};
use crate::server::service::actor::{AdminCtx, AgentCtx};
use crate::server::service::grants::{load_view, separation_of_duties};
use crate::server::service::validate::Check;
use crate::server::store::{self, Tx, lifecycle::Extension, requests::RequestRow, tools::ToolRow};
use crate::server::{ServiceError, ServiceResult, Services, clock};

/// The agent asked again for a tool it holds: a renewal inside the window, else a 409 that
/// says until when it holds access and when it may renew. Takes the request's transaction.
pub async fn ask(
    svc: &Services,
    mut tx: Tx,
    agent: &AgentCtx,
    tool: &ToolRow,
    grant: RequestRow,
    reason: &str,
    duration: Option<GrantDuration>,
) -> ServiceResult<RequestCreated> {
    let now = svc.clock.now_ms();
    let tool_id = &grant.tool_id;
    let held = |message: String, hint: String| {
        ServiceError::Conflict(
            ErrorBody::new(message)
                .hint(hint)
                .with("request_id", grant.id.to_string())
                .with("grant_expires_at", clock::iso_opt(grant.expires_at)),
        )
    };
    let Some(opens) = renewal_opens_for(&grant) else {
        return Err(held(
            "You already have access to this tool (a standing grant, until revoked).".into(),
            format!("Use it: GET /api/tools/{tool_id}/credentials or the proxy."),
        ));
    };
    let until = clock::iso_opt(grant.expires_at).unwrap_or_default();
    if now < opens {
        return Err(ServiceError::Conflict(
            ErrorBody::new(format!(
                "You already have access to this tool until {until}."
            ))
            .hint(format!(
                "Keep using it; ask again from {} to renew it before it ends.",
                clock::iso(opens)
            ))
            .with("request_id", grant.id.to_string())
            .with("grant_expires_at", until)
            .with("renewal_opens_at", clock::iso(opens)),
        ));
    }
    let waiting = || {
        held(
            "A renewal of this grant is already waiting for a human.".into(),
            format!(
                "Keep using the grant until {until}; check `renewal` of tool {tool_id} in GET /api/tools for the decision."
            ),
        )
    };
    if let Some(reason) = grant.renewal_note.as_deref() {
        return Err(held(
            format!("Your renewal of this grant was denied: {reason}"),
            format!("The grant ends {until}; after that you may ask again with a new reason."),
        ));
    }
    if grant.renewal_requested_at.is_some()
        || !store::lifecycle::ask_renewal(&mut tx, &grant.id, reason, duration, now).await?
    {
        return Err(waiting());
    }
    let entry = AuditEntry::new(
        &agent.org_id,
        &agent.actor(),
        &agent.meta,
        "grant.renewal_requested",
    )
    .target("access_request", &grant.id)
    .agent(&agent.agent_id)
    .tool(tool_id)
    .meta(json!({
        "tool_name": tool.name, "reason": reason, "duration": duration,
        "grant_expires_at": clock::iso_opt(grant.expires_at),
    }));
    audit::append(&mut tx, svc.store.heads(), &[entry]).await?;
    let alert = Alert::new(
        AlertEvent::AccessRequested,
        &agent.agent_name,
        &tool.name,
        &format!("Renewal (the grant ends {until}): {reason}"),
        svc.link("/inbox"),
        now,
    );
    let queued = notify::enqueue(&mut tx, &agent.org_id, alert).await?;
    tx.commit().await?;
    svc.events.publish(&agent.org_id, EventKind::RequestChanged);
    if queued > 0 {
        svc.notifier.wake();
    }
    Ok(RequestCreated {
        request_id: grant.id.into(),
        status: RequestStatus::Pending,
        renewal: true,
        grant_expires_at: Some(until.clone()),
        message: format!(
            "Renewal of {} requested. Your access keeps working until {until}; check `renewal` of tool {tool_id} in GET /api/tools every few minutes for the decision.",
            tool.name
        ),
    })
}

/// A reviewer approves a waiting renewal (a vote of the quorum, or the deciding one): the grant
/// is extended from its current end by the chosen length (else the one asked for, else the one
/// it had), within the tool's maximum.
pub async fn approve(
    svc: &Services,
    ctx: &AdminCtx,
    grant: RequestRow,
    chosen: Option<GrantDuration>,
) -> ServiceResult<AccessRequestView> {
    let now = svc.clock.now_ms();
    let length = match chosen {
        None => renewal_length(&grant),
        Some(_) => length_within(grant.max_duration, grant.default_duration, None, chosen)
            .map_err(|message| {
                let mut check = Check::new();
                check.fail("duration", message);
                check
                    .finish("Pick a shorter duration.")
                    .expect_err("one failure")
            })?,
    };
    let agent = store::agents::find_agent(svc.store.reader(), &ctx.org_id, &grant.agent_id).await?;
    if agent.is_none_or(|a| a.status != AgentStatus::Active) {
        return Err(ServiceError::conflict(
            "The agent is suspended.",
            "Reactivate the agent before renewing its grants, or deny the renewal.",
        ));
    }
    let required = grant.approvals_required.max(1);
    if required > 1 && grant.agent_created_by == ctx.actor.label {
        return Err(separation_of_duties());
    }
    let mut tx = svc.store.begin().await?;
    if !store::votes::insert_vote(
        &mut tx,
        &grant.id,
        &ctx.org_id,
        &ctx.user_id(),
        &ctx.actor.label,
        now,
    )
    .await?
    {
        return Err(ServiceError::conflict(
            "You already approved this renewal.",
            "Another reviewer must approve it; the same person counts once.",
        ));
    }
    let approvers = store::votes::list_votes(&mut *tx, &grant.id).await?;
    let base = |action| {
        AuditEntry::new(&ctx.org_id, &ctx.actor, &ctx.meta, action)
            .target("access_request", &grant.id)
            .agent(&grant.agent_id)
            .tool(&grant.tool_id)
    };
    if (approvers.len() as i64) < required {
        if chosen.is_some() {
            return Err(ServiceError::conflict(
                "A duration goes with the final approval of a renewal, not this one.",
                "Approve without a duration; the reviewer whose approval completes the quorum picks it.",
            ));
        }
        let entry = base("grant.renewal_approval_recorded").meta(json!({
            "agent_name": grant.agent_name, "tool_name": grant.tool_name,
            "approvals": approvers.len(), "required": required, "approved_by": approvers,
        }));
        audit::append(&mut tx, svc.store.heads(), &[entry]).await?;
        tx.commit().await?;
        svc.events.publish(&ctx.org_id, EventKind::RequestChanged);
        return load_view(svc, ctx, &grant.id).await;
    }
    // From the grant's current end, so nothing of the time it still had is lost; from now if
    // it already ran out (and the maintenance pass has not ended it yet).
    let from = grant.expires_at.map_or(now, |end| end.max(now));
    // Never more than the tool's maximum from now, however much time the grant still had.
    let cap = grant.max_duration.and_then(|m| m.ends(now));
    let expires_at = match (length.ends(from), cap) {
        (Some(end), Some(cap)) => Some(end.min(cap)),
        (end, _) => end,
    };
    let extension = Extension {
        id: &grant.id,
        expires_at,
        duration: length,
        decided_by: &approvers.join(", "),
    };
    if !store::lifecycle::extend_grant(&mut tx, &extension, now).await? {
        return Err(ServiceError::conflict(
            "The grant changed before it could be renewed.",
            "Reload the inbox; it was revoked, expired or decided by someone else.",
        ));
    }
    let entry = base("grant.renewed").meta(json!({
        "agent_name": grant.agent_name, "tool_name": grant.tool_name, "duration": length,
        "expires_at": clock::iso_opt(expires_at), "previous_expires_at": clock::iso_opt(grant.expires_at),
        "approved_by": approvers, "renewals": grant.renewals + 1,
    }));
    audit::append(&mut tx, svc.store.heads(), &[entry]).await?;
    let alert = Alert {
        decision: Some("renewed".into()),
        reviewer: Some(ctx.actor.label.clone()),
        ..Alert::new(
            AlertEvent::Decided,
            &grant.agent_name,
            &grant.tool_name,
            "",
            svc.link("/audit"),
            now,
        )
    };
    let queued = notify::enqueue(&mut tx, &ctx.org_id, alert).await?;
    tx.commit().await?;
    svc.vend_cache.clear();
    svc.events.publish(&ctx.org_id, EventKind::RequestChanged);
    if queued > 0 {
        svc.notifier.wake();
    }
    load_view(svc, ctx, &grant.id).await
}

/// A reviewer denies a waiting renewal: the grant runs out at its end, and the agent reads
/// the reason as `renewal_denial_reason`.
pub async fn deny(
    svc: &Services,
    ctx: &AdminCtx,
    grant: RequestRow,
    reason: Option<&str>,
) -> ServiceResult<AccessRequestView> {
    let now = svc.clock.now_ms();
    let mut tx = svc.store.begin().await?;
    if !store::lifecycle::deny_renewal(&mut tx, &grant.id, reason, now).await? {
        return Err(ServiceError::conflict(
            "The renewal was decided before it could be denied.",
            "Reload the inbox.",
        ));
    }
    let entry = AuditEntry::new(&ctx.org_id, &ctx.actor, &ctx.meta, "grant.renewal_denied")
        .target("access_request", &grant.id)
        .agent(&grant.agent_id)
        .tool(&grant.tool_id)
        .meta(json!({
            "agent_name": grant.agent_name, "tool_name": grant.tool_name, "reason": reason,
            "grant_expires_at": clock::iso_opt(grant.expires_at),
        }));
    audit::append(&mut tx, svc.store.heads(), &[entry]).await?;
    let alert = Alert {
        decision: Some("renewal denied".into()),
        reviewer: Some(ctx.actor.label.clone()),
        ..Alert::new(
            AlertEvent::Decided,
            &grant.agent_name,
            &grant.tool_name,
            reason.unwrap_or_default(),
            svc.link("/audit"),
            now,
        )
    };
    let queued = notify::enqueue(&mut tx, &ctx.org_id, alert).await?;
    tx.commit().await?;
    svc.events.publish(&ctx.org_id, EventKind::RequestChanged);
    if queued > 0 {
        svc.notifier.wake();
    }
    load_view(svc, ctx, &grant.id).await
}
