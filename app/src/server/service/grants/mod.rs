//! Access requests and grants: agents ask, humans approve (with the per-agent secret where
//! needed), deny with a reason, or revoke. A re-request is a new row; history is kept.

use secrecy::SecretString;
use serde_json::json;

use super::actor::{AdminCtx, AgentCtx, Permission};
use super::new_id;
use super::validate::{Check, limits};
use crate::model::{
    AccessRequestView, AgentId, AgentStatus, AlertEvent, CredentialMode, ErrorBody,
    RequestAccessBody, RequestCreated, RequestId, RequestOrigin, RequestStatus, ToolId,
};
use crate::server::audit::{self, AuditEntry};
use crate::server::crypto::Slot;
use crate::server::events::EventKind;
use crate::server::notify::{self, Alert};
use crate::server::store::{
    self, StoreError,
    requests::{Decision, NewRequest, RequestRow},
};
use crate::server::{ServiceError, ServiceResult, Services, clock};

mod approve;

pub use approve::approve;
pub(crate) use approve::attach_votes;
use approve::separation_of_duties;

/// The slot a per-agent secret is sealed into.
pub fn credential_slot<'a>(org_id: &'a str, request_id: &'a str) -> Slot<'a> {
    Slot {
        org_id,
        table: "access_requests",
        row_id: request_id,
        column: "credential_blob",
    }
}

pub(crate) fn view(row: RequestRow) -> AccessRequestView {
    AccessRequestView {
        credential_mode: row.credential_mode,
        status: row.status,
        id: row.id.into(),
        agent_id: row.agent_id.into(),
        agent_name: row.agent_name,
        tool_id: row.tool_id.into(),
        tool_name: row.tool_name,
        reason: row.reason,
        origin: row.origin,
        decided_by: row.decided_by,
        decided_at: clock::iso_opt(row.decided_at),
        decision_note: row.decision_note,
        expires_at: clock::iso_opt(row.expires_at),
        created_at: clock::iso(row.created_at),
        approvals_required: row.approvals_required,
        approved_by: Vec::new(),
    }
}

/// Validates a request body; run before any quota is spent.
pub fn validate_request(body: &RequestAccessBody) -> ServiceResult<String> {
    let mut check = Check::new();
    let reason = check.text("reason", &body.reason, limits::REASON, true);
    check.finish(
        "Explain in 5–500 characters why you need this tool; GET this URL for the schema.",
    )?;
    Ok(reason)
}

fn tool_not_found() -> ServiceError {
    ServiceError::not_found(
        "Tool not found.",
        "Browse the catalog with GET /api/tools, or suggest it with POST /api/tools/suggest.",
    )
}

/// An agent asks for access to a catalog tool.
pub async fn request_access(
    svc: &Services,
    agent: &AgentCtx,
    tool_id: &str,
    body: &RequestAccessBody,
) -> ServiceResult<RequestCreated> {
    let reason = validate_request(body)?;
    let tool_id = &ToolId::parse(tool_id).ok_or_else(tool_not_found)?;
    let now = clock::now_ms();
    let mut tx = svc.store.begin().await?;
    let tool = store::tools::find_tool(&mut *tx, &agent.org_id, tool_id)
        .await?
        .ok_or_else(tool_not_found)?;
    if let Some(latest) =
        store::requests::latest_request(&mut *tx, &agent.agent_id, tool_id).await?
    {
        match latest.status {
            RequestStatus::Pending => {
                return Err(ServiceError::Conflict(
                    ErrorBody::new("You already have a pending request for this tool.")
                        .hint("Wait for a human to decide; poll GET /api/tools for your_access.")
                        .with("request_id", latest.id),
                ));
            }
            RequestStatus::Approved if latest.is_live_grant(now) => {
                return Err(ServiceError::Conflict(
                    ErrorBody::new("You already have access to this tool.")
                        .hint(format!(
                            "Fetch it with GET /api/tools/{tool_id}/credentials."
                        ))
                        .with("request_id", latest.id),
                ));
            }
            RequestStatus::Approved => {
                store::requests::expire_request(&mut tx, &latest.id, now).await?
            }
            _ => {}
        }
    }
    let id = new_id();
    let new = NewRequest {
        id: &id,
        org_id: &agent.org_id,
        agent_id: &agent.agent_id,
        tool_id,
        reason: &reason,
        origin: RequestOrigin::Agent,
        suggestion_id: None,
    };
    match store::requests::insert_request(&mut tx, &new, now).await {
        Err(StoreError::Unique) => {
            return Err(ServiceError::conflict(
                "You already have a pending request for this tool.",
                "Wait for a human to decide.",
            ));
        }
        inserted => inserted?,
    }
    let entry = AuditEntry::new(
        &agent.org_id,
        &agent.actor(),
        &agent.meta,
        "grant.requested",
    )
    .target("access_request", &id)
    .agent(&agent.agent_id)
    .tool(tool_id)
    .meta(json!({ "tool_name": tool.name, "reason": reason }));
    audit::append(&mut tx, svc.store.heads(), &[entry]).await?;
    let alert = Alert::new(
        AlertEvent::AccessRequested,
        &agent.agent_name,
        &tool.name,
        &reason,
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
        request_id: id,
        status: RequestStatus::Pending,
        message: format!(
            "Access to {} requested. A human will review it; poll GET /api/tools for the decision.",
            tool.name
        ),
    })
}

fn request_not_found() -> ServiceError {
    ServiceError::not_found(
        "Request not found.",
        "List requests with `agentkey request list`.",
    )
}

async fn load(svc: &Services, ctx: &AdminCtx, id: &str) -> ServiceResult<RequestRow> {
    let id = &RequestId::parse(id).ok_or_else(request_not_found)?;
    store::requests::find_request(svc.store.reader(), &ctx.org_id, id)
        .await?
        .ok_or_else(request_not_found)
}

/// Requests of the organization, newest first, optionally only one status.
pub async fn list(
    svc: &Services,
    ctx: &AdminCtx,
    status: Option<RequestStatus>,
    limit: i64,
) -> ServiceResult<Vec<AccessRequestView>> {
    ctx.require(Permission::ReadAll)?;
    let rows = store::requests::list_requests(
        svc.store.reader(),
        &ctx.org_id,
        status,
        limit.clamp(1, 1000),
    )
    .await?;
    let mut views: Vec<AccessRequestView> = rows.into_iter().map(view).collect();
    attach_votes(svc, &ctx.org_id, &mut views).await?;
    Ok(views)
}

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
async fn decide_in(
    svc: &Services,
    ctx: &AdminCtx,
    mut tx: store::Tx,
    d: &Decision<'_>,
    entry: AuditEntry,
) -> ServiceResult<AccessRequestView> {
    let verb = d.to.as_str();
    if !store::requests::decide_request(&mut tx, d, clock::now_ms()).await? {
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
            clock::now_ms(),
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

/// Replaces the per-agent secret of an approved grant (rotation without re-approval).
pub async fn set_grant_credential(
    svc: &Services,
    ctx: &AdminCtx,
    id: &str,
    secret: SecretString,
) -> ServiceResult<AccessRequestView> {
    ctx.require(Permission::ManageCredentials)?;
    let row = load(svc, ctx, id).await?;
    if row.credential_mode != CredentialMode::PerAgent || row.status != RequestStatus::Approved {
        return Err(ServiceError::conflict(
            "Only approved grants of per-agent tools carry their own secret.",
            "For shared tools use `agentkey tool set-credential`.",
        ));
    }
    if secrecy::ExposeSecret::expose_secret(&secret)
        .trim()
        .is_empty()
    {
        return Err(ServiceError::field(
            "credential",
            "is required",
            "Provide the new secret.",
        ));
    }
    let blob = super::keys::seal(svc, credential_slot(&ctx.org_id, &row.id), &secret).await?;
    let version = row.credential_version + 1;
    let mut tx = svc.store.begin().await?;
    if !store::requests::update_grant_credential(&mut tx, &row.id, &blob, version, clock::now_ms())
        .await?
    {
        return Err(ServiceError::conflict(
            "The grant changed meanwhile.",
            "Reload and try again.",
        ));
    }
    let entry = AuditEntry::new(&ctx.org_id, &ctx.actor, &ctx.meta, "grant.credential_rotated")
        .target("access_request", &row.id)
        .agent(&row.agent_id)
        .tool(&row.tool_id)
        .meta(json!({ "agent_name": row.agent_name, "tool_name": row.tool_name, "credential_version": version }));
    audit::append(&mut tx, svc.store.heads(), &[entry]).await?;
    let updated = store::requests::find_request(&mut *tx, &ctx.org_id, &row.id)
        .await?
        .ok_or_else(request_not_found)?;
    tx.commit().await?;
    svc.vend_cache.clear();
    Ok(view(updated))
}

/// Gives an agent access to a tool without waiting for it to ask: the request is recorded
/// (origin `admin`, the admin's reason) and approved at once. Everything approval would refuse
/// is checked before anything is written.
pub async fn grant(
    svc: &Services,
    ctx: &AdminCtx,
    agent_id: &str,
    tool_id: &str,
    reason: &str,
    secret: Option<SecretString>,
) -> ServiceResult<AccessRequestView> {
    ctx.require(Permission::Decide)?;
    let mut check = Check::new();
    let reason = check.text("reason", reason, limits::REASON, true);
    check.finish("Say why this agent gets the tool (5–500 characters); the agent sees it.")?;
    let agent_id = &AgentId::parse(agent_id).ok_or_else(|| {
        ServiceError::not_found("Agent not found.", "Pick an agent of this organization.")
    })?;
    let tool_id = &ToolId::parse(tool_id).ok_or_else(tool_not_found)?;
    let agent = store::agents::find_agent(svc.store.reader(), &ctx.org_id, agent_id)
        .await?
        .ok_or_else(|| {
            ServiceError::not_found("Agent not found.", "Pick an agent of this organization.")
        })?;
    let tool = store::tools::find_tool(svc.store.reader(), &ctx.org_id, tool_id)
        .await?
        .ok_or_else(tool_not_found)?;
    if agent.status != AgentStatus::Active {
        return Err(ServiceError::conflict(
            "The agent is suspended.",
            "Reactivate the agent first.",
        ));
    }
    let per_agent = tool.credential_mode == CredentialMode::PerAgent;
    // Everything approval would refuse is refused here, before the request is written.
    let quorum = tool.approvals_required > 1;
    if quorum && agent.created_by == ctx.actor.label {
        return Err(separation_of_duties());
    }
    let mut check = Check::new();
    match (per_agent, secret.is_some(), quorum) {
        (true, false, false) => check.fail(
            "credential",
            "is required: this tool gives each agent its own secret",
        ),
        (false, true, _) => check.fail(
            "credential",
            "must be empty: this tool uses one shared secret",
        ),
        (true, true, true) => check.fail(
            "credential",
            "is given with the final approval; this tool needs several",
        ),
        _ => {}
    }
    check.finish("Fix the listed fields and grant again.")?;
    if secret.is_some() {
        ctx.require(Permission::ManageCredentials)?;
    }
    let now = clock::now_ms();
    let id = new_id();
    let mut tx = svc.store.begin().await?;
    if let Some(latest) = store::requests::latest_request(&mut *tx, agent_id, tool_id).await?
        && latest.is_open(now)
    {
        return Err(ServiceError::conflict(
            &format!(
                "This agent already has a {} request for this tool.",
                latest.status
            ),
            "Decide the pending request in the inbox instead.",
        ));
    }
    let new = NewRequest {
        id: &id,
        org_id: &ctx.org_id,
        agent_id,
        tool_id,
        reason: &reason,
        origin: RequestOrigin::Admin,
        suggestion_id: None,
    };
    match store::requests::insert_request(&mut tx, &new, now).await {
        Err(StoreError::Unique) => {
            return Err(ServiceError::conflict(
                "This agent already has a live request for this tool.",
                "Decide it in the inbox.",
            ));
        }
        inserted => inserted?,
    }
    let entry = AuditEntry::new(&ctx.org_id, &ctx.actor, &ctx.meta, "grant.requested")
        .target("access_request", &id)
        .agent(agent_id)
        .tool(tool_id)
        .meta(json!({ "tool_name": tool.name, "reason": reason, "origin": "admin" }));
    audit::append(&mut tx, svc.store.heads(), &[entry]).await?;
    // With a quorum the grant is this reviewer's vote; the others must hear about it.
    let queued = if quorum {
        let alert = Alert::new(
            AlertEvent::AccessRequested,
            &agent.name,
            &tool.name,
            &reason,
            svc.link("/inbox"),
            now,
        );
        notify::enqueue(&mut tx, &ctx.org_id, alert).await?
    } else {
        0
    };
    tx.commit().await?;
    if queued > 0 {
        svc.notifier.wake();
    }
    approve(svc, ctx, &id, secret, None).await
}
