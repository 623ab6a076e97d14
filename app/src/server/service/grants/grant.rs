//! Admin-side grants: giving an agent a tool without waiting for it to ask, and rotating the secret
//! of a per-agent grant.

use secrecy::SecretString;
use serde_json::json;

use super::approve::separation_of_duties;
use super::{approve, credential_slot, load, request_not_found, tool_not_found, view};
use crate::model::{
    AccessRequestView, AgentId, AgentStatus, AlertEvent, CredentialMode, RequestOrigin,
    RequestStatus, ToolId,
};
use crate::server::audit::{self, AuditEntry};
use crate::server::notify::{self, Alert};
use crate::server::service::actor::{AdminCtx, Permission};
use crate::server::service::new_id;
use crate::server::service::validate::{Check, limits};
use crate::server::store::{self, StoreError, requests::NewRequest};
use crate::server::{ServiceError, ServiceResult, Services};

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
    let version = row.credential_version + 1;
    let slot = credential_slot(&ctx.org_id, &row.id, version);
    let blob = crate::server::service::keys::seal(svc, slot, &secret).await?;
    let mut tx = svc.store.begin().await?;
    if !store::requests::update_grant_credential(
        &mut tx,
        &row.id,
        &blob,
        version,
        svc.clock.now_ms(),
    )
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
    let now = svc.clock.now_ms();
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
        duration: None,
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
