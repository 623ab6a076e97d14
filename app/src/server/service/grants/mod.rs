//! Access requests and grants: agents ask, humans approve (with the per-agent secret where
//! needed), deny with a reason, or revoke. A re-request is a new row; history is kept.

use super::actor::{AdminCtx, Permission};
use crate::model::{AccessRequestView, GrantScope, OrgId, RenewalView, RequestId, RequestStatus};
use crate::server::crypto::Slot;
use crate::server::store::{self, requests::RequestRow};
use crate::server::{ServiceError, ServiceResult, Services, clock};

mod approve;
mod decide;
mod grant;
mod request;

pub use approve::{Approval, approve, approve_with};
pub(crate) use approve::{attach_votes, separation_of_duties};
pub use decide::{BULK_MAX, decide_many, deny, revoke};
pub use grant::{grant, set_grant_credential};
pub use request::{request_access, validate_request};

/// The slot a per-agent secret of `version` (the grant's `credential_version`) is sealed into.
pub fn credential_slot<'a>(org_id: &'a str, request_id: &'a str, version: i64) -> Slot<'a> {
    Slot {
        org_id,
        table: "access_requests",
        row_id: request_id,
        column: "credential_blob",
        version,
    }
}

pub(crate) fn view(row: RequestRow) -> AccessRequestView {
    let offered_duration = (row.status == RequestStatus::Pending
        || (row.status == RequestStatus::Approved && row.renewal_requested_at.is_some()))
    .then(|| super::lifecycle::offered_length(&row));
    AccessRequestView {
        offered_duration,
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
        delivery: row.delivery,
        scope: GrantScope {
            read_only: row.proxy_read_only != 0,
            rules: row.proxy_rules.as_deref().map(super::proxy::rules::lines),
            calls_per_day: row.grant_calls_per_day,
        },
        calls_per_day: row.grant_calls_per_day.or(row.tool_calls_per_day),
        calls_today: 0,
        tool_rules: super::proxy::rules::lines(&row.tool_rules),
        cannot_approve: None,
        requested_duration: row.requested_duration,
        granted_duration: row.granted_duration,
        max_duration: row.max_duration,
        default_duration: row.default_duration,
        renewal: row.renewal_requested_at.map(|at| RenewalView {
            requested_at: clock::iso(at),
            reason: row.renewal_reason.unwrap_or_default(),
            duration: row.renewal_duration,
        }),
        renewals: row.renewals,
    }
}

/// Why `ctx` may not approve `v` now (after its votes are attached), as the inbox says it.
fn why_not_approve(ctx: &AdminCtx, v: &AccessRequestView, registered_by: &str) -> Option<String> {
    if !v.awaits_decision() {
        return None;
    }
    if !ctx.role.allows(Permission::Decide) {
        return Some("Your role does not decide requests.".into());
    }
    if v.approvals_required > 1 && registered_by == ctx.actor.label {
        return Some(format!(
            "You registered this agent: {} other reviewers must approve (separation of duties).",
            v.approvals_required
        ));
    }
    if v.approved_by.contains(&ctx.actor.label) {
        return Some(format!(
            "You approved already; {} more approval(s) needed from other reviewers.",
            v.approvals_required - v.approved_by.len() as i64
        ));
    }
    None
}

/// Fills in today's proxied calls of the approved grants, in one query.
pub(crate) async fn attach_usage(
    svc: &Services,
    org_id: &OrgId,
    views: &mut [AccessRequestView],
) -> ServiceResult<()> {
    if !views.iter().any(|v| v.status == RequestStatus::Approved) {
        return Ok(());
    }
    let day = super::vend::day_of(svc.clock.now_ms());
    let usage = store::proxy_use::usage_on(svc.store.reader(), org_id, day).await?;
    for v in views.iter_mut() {
        if let Some((_, calls)) = usage.iter().find(|(id, _)| **id == *v.id) {
            v.calls_today = *calls;
        }
    }
    Ok(())
}

fn tool_not_found() -> ServiceError {
    ServiceError::not_found(
        "Tool not found.",
        "Browse the catalog with GET /api/tools, or suggest it with POST /api/tools/suggest.",
    )
}

fn request_not_found() -> ServiceError {
    ServiceError::not_found(
        "Request not found.",
        "List requests with `agentkey request list`.",
    )
}

pub(crate) async fn load(svc: &Services, ctx: &AdminCtx, id: &str) -> ServiceResult<RequestRow> {
    let id = &RequestId::parse(id).ok_or_else(request_not_found)?;
    store::requests::find_request(svc.store.reader(), &ctx.org_id, id)
        .await?
        .ok_or_else(request_not_found)
}

/// One request as the dashboard shows it.
pub(crate) async fn load_view(
    svc: &Services,
    ctx: &AdminCtx,
    id: &RequestId,
) -> ServiceResult<AccessRequestView> {
    let row = store::requests::find_request(svc.store.reader(), &ctx.org_id, id)
        .await?
        .ok_or_else(request_not_found)?;
    Ok(view(row))
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
    let rows = if status == Some(RequestStatus::Pending) {
        // Renewals of live grants wait in the inbox with the new requests, newest ask first.
        let mut rows = rows;
        rows.extend(store::lifecycle::list_renewals(svc.store.reader(), &ctx.org_id).await?);
        rows.sort_by_key(|r| std::cmp::Reverse(r.renewal_requested_at.unwrap_or(r.created_at)));
        rows
    } else {
        rows
    };
    let registered_by: Vec<String> = rows.iter().map(|r| r.agent_created_by.clone()).collect();
    let mut views: Vec<AccessRequestView> = rows.into_iter().map(view).collect();
    attach_votes(svc, &ctx.org_id, &mut views).await?;
    attach_usage(svc, &ctx.org_id, &mut views).await?;
    for (v, by) in views.iter_mut().zip(&registered_by) {
        v.cannot_approve = why_not_approve(ctx, v, by);
    }
    Ok(views)
}
