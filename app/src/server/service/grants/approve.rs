//! Approval with a quorum: each reviewer's vote is recorded; the vote that reaches the tool's
//! quorum approves the request.

use secrecy::SecretString;
use serde_json::json;

use super::decide::decide_in;
use super::{credential_slot, load, request_not_found, view};
use crate::model::{
    AccessRequestView, AgentStatus, CredentialMode, GrantDuration, GrantScope, OrgId, RequestStatus,
};
use crate::server::audit::{self, AuditEntry};
use crate::server::events::EventKind;
use crate::server::service::actor::{AdminCtx, Permission};
use crate::server::service::lifecycle;
use crate::server::service::proxy::rules;
use crate::server::service::tools;
use crate::server::service::validate::Check;
use crate::server::store::{self, requests::Decision};
use crate::server::{ServiceError, ServiceResult, Services, clock};

/// Fills in who approved each pending request so far (quorum progress), in one query.
pub(crate) async fn attach_votes(
    svc: &Services,
    org_id: &OrgId,
    views: &mut [AccessRequestView],
) -> ServiceResult<()> {
    if !views
        .iter()
        .any(|v| v.awaits_decision() && v.approvals_required > 1)
    {
        return Ok(());
    }
    let votes = store::votes::pending_votes(svc.store.reader(), org_id).await?;
    for v in views.iter_mut().filter(|v| v.awaits_decision()) {
        v.approved_by = votes
            .iter()
            .filter(|(id, _)| *id == v.id)
            .map(|(_, who)| who.clone())
            .collect();
    }
    Ok(())
}

pub(crate) fn separation_of_duties() -> ServiceError {
    ServiceError::forbidden(
        "You registered this agent, so you cannot approve its requests for a tool that needs several approvals.",
        "Ask other reviewers to approve (separation of duties).",
    )
}

/// Records the caller's approval of a pending request. When the tool's quorum is reached
/// (one approval by default) the request is approved: per-agent tools need the agent's secret
/// with that final approval, shared tools refuse one. With a quorum above one, each reviewer
/// counts once and the person who registered the agent cannot approve its requests
/// (separation of duties). Refused for suspended agents and requests no longer pending.
pub async fn approve(
    svc: &Services,
    ctx: &AdminCtx,
    id: &str,
    secret: Option<SecretString>,
    expires_at: Option<i64>,
) -> ServiceResult<AccessRequestView> {
    approve_with(
        svc,
        ctx,
        id,
        Approval {
            secret,
            expires_at,
            duration: None,
            scope: GrantScope::default(),
        },
    )
    .await
}

/// What a reviewer decides with an approval.
#[derive(Default)]
pub struct Approval {
    /// The agent's own secret (per-agent tools, with the final approval).
    pub secret: Option<SecretString>,
    pub expires_at: Option<i64>,
    /// How long the grant lasts (with the final approval): at most the tool's maximum; the
    /// agent's ask, else the tool's default, when absent.
    pub duration: Option<GrantDuration>,
    /// How the grant's proxied use is narrowed (taken from the final approval).
    pub scope: GrantScope,
}

/// Checks a narrowing against the tool: rules must be the tool's own (when it has any),
/// budgets in range, and only tools used through the proxy take one. Returns the stored rules.
fn check_scope(
    check: &mut Check,
    tool: &store::tools::ToolRow,
    scope: &GrantScope,
) -> Option<String> {
    if *scope != GrantScope::default() && !tool.delivery.proxies() {
        // (On a `both` tool a narrowed grant is proxy-only: its secret is not handed out.)
        check.fail(
            "scope",
            "narrows proxied calls, but this tool hands out its credential (delivery fetch)",
        );
        return None;
    }
    if let Some(n) = scope.calls_per_day
        && !(1..=tools::MAX_CALLS_PER_DAY).contains(&n)
    {
        check.fail(
            "calls_per_day",
            format!("must be from 1 to {}", tools::MAX_CALLS_PER_DAY),
        );
    }
    let lines = scope.rules.as_ref()?;
    let parsed = match rules::parse_all(lines) {
        Ok(parsed) => parsed,
        Err(message) => {
            check.fail("rules", message);
            return None;
        }
    };
    let own = rules::stored(&tool.allow_rules);
    if !own.is_empty()
        && let Some(extra) = parsed.iter().find(|r| !own.contains(r))
    {
        check.fail(
            "rules",
            format!(
                "{} is not one of the tool's rules ({})",
                extra.text(),
                rules::join(&own).replace('\n', ", ")
            ),
        );
        return None;
    }
    if parsed.is_empty() {
        check.fail(
            "rules",
            "must keep at least one rule (revoke or deny to allow nothing)",
        );
        return None;
    }
    Some(rules::join(&parsed))
}

/// [`approve`] with a narrowing of the grant's proxied use.
pub async fn approve_with(
    svc: &Services,
    ctx: &AdminCtx,
    id: &str,
    approval: Approval,
) -> ServiceResult<AccessRequestView> {
    let Approval {
        secret,
        expires_at,
        duration,
        scope,
    } = approval;
    ctx.require(Permission::Decide)?;
    let row = load(svc, ctx, id).await?;
    if row.status == RequestStatus::Approved && row.renewal_requested_at.is_some() {
        return lifecycle::renew::approve(svc, ctx, row, duration).await;
    }
    let tool = store::tools::find_tool(svc.store.reader(), &ctx.org_id, &row.tool_id)
        .await?
        .ok_or_else(request_not_found)?;
    let per_agent = row.credential_mode == CredentialMode::PerAgent;
    let now = svc.clock.now_ms();
    let required = row.approvals_required.max(1);
    let earlier = store::votes::list_votes(svc.store.reader(), &row.id).await?;
    if earlier.contains(&ctx.actor.label) {
        return Err(ServiceError::conflict(
            &format!(
                "You already approved this request ({} of {required} approvals).",
                earlier.len()
            ),
            "Another reviewer must approve it; the same person counts once.",
        ));
    }
    if required > 1 && row.agent_created_by == ctx.actor.label {
        return Err(separation_of_duties());
    }
    let completes = earlier.len() as i64 + 1 >= required;
    let mut check = Check::new();
    let has_secret = secret
        .as_ref()
        .is_some_and(|s| !secrecy::ExposeSecret::expose_secret(s).trim().is_empty());
    match (has_secret, per_agent, completes) {
        (false, true, true) => check.fail(
            "credential",
            "is required: this tool gives each agent its own secret",
        ),
        (true, false, _) => check.fail(
            "credential",
            "must be empty: this tool uses one shared secret",
        ),
        (true, true, false) => check.fail(
            "credential",
            "is given with the final approval, not this one",
        ),
        _ => {}
    }
    if expires_at.is_some_and(|t| t <= now) {
        check.fail("expires_at", "must be in the future");
    }
    if expires_at.is_some() && duration.is_some() {
        check.fail(
            "duration",
            "cannot be given with expires_at: give one of them",
        );
    }
    let length = match lifecycle::grant_length(&row, duration) {
        Ok(length) => length,
        Err(message) => {
            check.fail("duration", message);
            GrantDuration::Standing
        }
    };
    if duration.is_some() && !completes {
        check.fail(
            "duration",
            "is given with the final approval, not this one (this approval is one vote of the quorum)",
        );
    }
    let scope_rules = check_scope(&mut check, &tool, &scope);
    if scope != GrantScope::default() && !completes {
        // One reviewer's narrowing must not be dropped by the next vote: it goes with the
        // approval that decides, as a per-agent secret does.
        check.fail(
            "scope",
            "is given with the final approval, not this one (this approval is one vote of the quorum)",
        );
    }
    check.finish("Fix the listed fields and approve again.")?;
    if has_secret {
        ctx.require(Permission::ManageCredentials)?;
    }
    if row.status != RequestStatus::Pending {
        return Err(ServiceError::conflict(
            &format!(
                "Only pending requests can be approved; this one is {}.",
                row.status
            ),
            "The agent can request again if it still needs access.",
        ));
    }
    let agent = store::agents::find_agent(svc.store.reader(), &ctx.org_id, &row.agent_id).await?;
    if agent
        .as_ref()
        .is_none_or(|a| a.status != AgentStatus::Active)
    {
        return Err(ServiceError::conflict(
            "The agent is suspended.",
            "Reactivate the agent before approving its requests, or deny the request.",
        ));
    }
    let blob = match (&secret, completes) {
        (Some(s), true) if has_secret => Some(
            // The grant's first secret: version 1, as recorded below.
            crate::server::service::keys::seal(svc, credential_slot(&ctx.org_id, &row.id, 1), s)
                .await?,
        ),
        _ => None,
    };
    let mut tx = svc.store.begin().await?;
    if !store::votes::insert_vote(
        &mut tx,
        &row.id,
        &ctx.org_id,
        &ctx.user_id(),
        &ctx.actor.label,
        now,
    )
    .await?
    {
        return Err(ServiceError::conflict(
            "You already approved this request.",
            "Another reviewer must approve it.",
        ));
    }
    // The quorum as of now, read under the write lock: a concurrent change cannot slip between.
    let now_row = store::requests::find_request(&mut *tx, &ctx.org_id, &row.id)
        .await?
        .ok_or_else(request_not_found)?;
    let required = now_row.approvals_required.max(1);
    if required > 1 && now_row.agent_created_by == ctx.actor.label {
        return Err(separation_of_duties());
    }
    let approvers = store::votes::list_votes(&mut *tx, &row.id).await?;
    let base = |action| {
        AuditEntry::new(&ctx.org_id, &ctx.actor, &ctx.meta, action)
            .target("access_request", &row.id)
            .agent(&row.agent_id)
            .tool(&row.tool_id)
    };
    if (approvers.len() as i64) < required {
        // One more vote, not yet the decision: the request stays pending.
        let entry = base("grant.approval_recorded").meta(json!({
            "agent_name": row.agent_name, "tool_name": row.tool_name,
            "approvals": approvers.len(), "required": required, "approved_by": approvers,
        }));
        audit::append(&mut tx, svc.store.heads(), &[entry]).await?;
        let fresh = store::requests::find_request(&mut *tx, &ctx.org_id, &row.id)
            .await?
            .ok_or_else(request_not_found)?;
        tx.commit().await?;
        svc.events.publish(&ctx.org_id, EventKind::RequestChanged);
        let mut out = view(fresh);
        out.approved_by = approvers;
        return Ok(out);
    }
    if per_agent && blob.is_none() {
        // Another reviewer's vote landed first and made this one the final approval.
        return Err(ServiceError::conflict(
            "This is now the final approval, and it must carry the agent's secret.",
            "Approve again with the agent's secret.",
        ));
    }
    // The grant's time starts when it is approved (an explicit end from the CLI wins).
    let (expires_at, granted) = match expires_at {
        Some(at) => (Some(at), None),
        None => (length.ends(now), Some(length)),
    };
    let decision = Decision {
        id: &row.id,
        from: RequestStatus::Pending,
        to: RequestStatus::Approved,
        decided_by: &approvers.join(", "),
        note: None,
        credential_blob: blob.as_deref(),
        credential_version: i64::from(blob.is_some()),
        expires_at,
        granted_duration: granted,
    };
    store::proxy_use::set_scope(
        &mut tx,
        &row.id,
        scope.read_only,
        scope_rules.as_deref(),
        scope.calls_per_day,
    )
    .await?;
    let entry = base("grant.approved").meta(json!({
        "agent_name": row.agent_name, "tool_name": row.tool_name,
        "credential_mode": row.credential_mode, "expires_at": clock::iso_opt(expires_at),
        "duration": granted, "requested_duration": row.requested_duration,
        "approvals": approvers.len(), "required": required, "approved_by": approvers,
        "read_only": scope.read_only, "rules": scope_rules.as_deref().map(rules::lines),
        "calls_per_day": scope.calls_per_day,
    }));
    let mut out = decide_in(svc, ctx, tx, &decision, entry).await?;
    out.approved_by = approvers;
    Ok(out)
}
