//! Read models of the dashboard pages that combine several aggregates.

use crate::model::{InboxView, OverviewView, RequestStatus, SuggestionStatus};
use crate::server::store::{self, audit::AuditFilter};
use crate::server::{ServiceResult, Services, clock};

use super::actor::{AdminCtx, Permission};

/// Pending requests shown per inbox page; the rest is counted, not rendered.
pub const INBOX_PAGE: i64 = 100;

/// Counts and the latest activity of the caller's organization.
pub async fn overview(svc: &Services, ctx: &AdminCtx) -> ServiceResult<OverviewView> {
    ctx.require(Permission::ReadAll)?;
    let (agents, tools, pending_requests, pending_suggestions, approved_grants) =
        store::orgs::count_org(svc.store.reader(), &ctx.org_id, clock::now_ms()).await?;
    let recent = super::audit::list(svc, ctx, &AuditFilter::default(), 10).await?;
    Ok(OverviewView {
        agents,
        tools,
        pending_requests,
        pending_suggestions,
        approved_grants,
        recent,
    })
}

/// Pending access requests (oldest first, one page) and pending suggestions.
pub async fn inbox(svc: &Services, ctx: &AdminCtx) -> ServiceResult<InboxView> {
    ctx.require(Permission::ReadAll)?;
    let (_, _, pending, _, _) =
        store::orgs::count_org(svc.store.reader(), &ctx.org_id, clock::now_ms()).await?;
    let requests = super::grants::list(svc, ctx, Some(RequestStatus::Pending), INBOX_PAGE).await?;
    let tool_suggestions = super::suggestions::list(svc, ctx, SuggestionStatus::Pending).await?;
    let guide_suggestions = super::guides::list(svc, ctx, SuggestionStatus::Pending).await?;
    Ok(InboxView {
        more_requests: (pending - requests.len() as i64).max(0),
        requests,
        tool_suggestions,
        guide_suggestions,
    })
}
