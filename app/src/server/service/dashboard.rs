//! Read models of the dashboard pages that combine several aggregates.

use crate::model::{
    AccessCell, AccessPicture, AccessRequestView, AgentContext, AgentId, HeldGrant, InboxView,
    Named, OverviewView, PastDenial, RequestStatus, SuggestionStatus,
};
use crate::server::store::{self, audit::AuditFilter};
use crate::server::{ServiceResult, Services, clock};

use super::actor::{AdminCtx, Permission};

/// Pending requests shown per inbox page; the rest is counted, not rendered.
pub const INBOX_PAGE: i64 = 100;

/// Counts and the latest activity of the caller's organization.
pub async fn overview(svc: &Services, ctx: &AdminCtx) -> ServiceResult<OverviewView> {
    ctx.require(Permission::ReadAll)?;
    let (agents, tools, pending_requests, pending_suggestions, approved_grants) =
        store::orgs::count_org(svc.store.reader(), &ctx.org_id, svc.clock.now_ms()).await?;
    let recent = super::audit::list(svc, ctx, &AuditFilter::default(), 10).await?;
    let reader = svc.store.reader();
    let webhook = store::notify::list_channels(reader, &ctx.org_id)
        .await?
        .iter()
        .any(|c| c.target_blob.is_some());
    let mail = !store::notify::email_recipients(reader, &ctx.org_id)
        .await?
        .is_empty();
    let members = store::members::list_members(reader, &ctx.org_id)
        .await?
        .len() as i64;
    Ok(OverviewView {
        agents,
        tools,
        pending_requests,
        pending_suggestions,
        approved_grants,
        recent,
        notifications_configured: webhook || mail,
        members,
    })
}

/// How many decisions wait: pending requests and pending tool suggestions.
pub async fn pending(svc: &Services, ctx: &AdminCtx) -> ServiceResult<i64> {
    ctx.require(Permission::ReadAll)?;
    let (_, _, requests, suggestions, _) =
        store::orgs::count_org(svc.store.reader(), &ctx.org_id, svc.clock.now_ms()).await?;
    Ok(requests + suggestions)
}

/// Pending access requests (oldest first, one page) and pending suggestions.
pub async fn inbox(svc: &Services, ctx: &AdminCtx) -> ServiceResult<InboxView> {
    ctx.require(Permission::ReadAll)?;
    let (_, _, pending, _, _) =
        store::orgs::count_org(svc.store.reader(), &ctx.org_id, svc.clock.now_ms()).await?;
    let requests = super::grants::list(svc, ctx, Some(RequestStatus::Pending), INBOX_PAGE).await?;
    let tool_suggestions = super::suggestions::list(svc, ctx, SuggestionStatus::Pending).await?;
    let guide_suggestions = super::guides::list(svc, ctx, SuggestionStatus::Pending).await?;
    Ok(InboxView {
        more_requests: (pending - requests.len() as i64).max(0),
        agents: agent_context(svc, ctx, &requests).await?,
        requests,
        tool_suggestions,
        guide_suggestions,
    })
}

/// For each agent with a request in `requests`: who registered it, its last activity, what it
/// holds and what was denied to it before. Two queries, whatever the number of agents.
async fn agent_context(
    svc: &Services,
    ctx: &AdminCtx,
    requests: &[AccessRequestView],
) -> ServiceResult<Vec<AgentContext>> {
    let mut ids: Vec<AgentId> = requests
        .iter()
        .map(|r| AgentId::new(r.agent_id.clone()))
        .collect();
    ids.sort();
    ids.dedup();
    let reader = svc.store.reader();
    let agents = store::agents::list_agents_by_ids(reader, &ctx.org_id, &ids).await?;
    let rows = store::agent_context::list_agent_context(
        reader,
        &ctx.org_id,
        &ids,
        svc.clock.now_ms(),
        AgentContext::SHOWN,
    )
    .await?;
    Ok(agents
        .into_iter()
        .map(|a| {
            let mut c = AgentContext {
                agent_id: a.id.clone().into_string(),
                created_by: a.created_by,
                created_at: clock::iso(a.created_at),
                last_used_at: a.last_used_at.map(clock::iso),
                ..AgentContext::default()
            };
            for r in rows.iter().filter(|r| r.agent_id == a.id) {
                if r.status == RequestStatus::Denied {
                    c.denials_total = r.total;
                    c.denials.push(PastDenial {
                        tool_id: r.tool_id.to_string(),
                        tool_name: r.tool_name.clone(),
                        reason: r.decision_note.clone(),
                        decided_by: r.decided_by.clone(),
                        decided_at: r.decided_at.map(clock::iso),
                    });
                } else {
                    c.holds_total = r.total;
                    c.holds.push(HeldGrant {
                        tool_id: r.tool_id.to_string(),
                        tool_name: r.tool_name.clone(),
                        expires_at: r.expires_at.map(clock::iso),
                    });
                }
            }
            c
        })
        .collect())
}

/// Requests the access picture reads (the newest ones; older pairs show `none`).
pub const ACCESS_REQUESTS: i64 = 1000;

/// Every agent against every tool: the state of each pair's latest request, its expiry and
/// last use, and each pair's history.
pub async fn access(svc: &Services, ctx: &AdminCtx) -> ServiceResult<AccessPicture> {
    ctx.require(Permission::ReadAll)?;
    let reader = svc.store.reader();
    let mut agents: Vec<Named> = store::agents::list_agents(reader, &ctx.org_id)
        .await?
        .into_iter()
        .map(|a| Named {
            id: a.id.into(),
            name: a.name,
        })
        .collect();
    let mut tools: Vec<Named> = store::tools::list_tools(reader, &ctx.org_id)
        .await?
        .into_iter()
        .map(|t| Named {
            id: t.id.into(),
            name: t.name,
        })
        .collect();
    let by_name = |a: &Named, b: &Named| a.name.to_lowercase().cmp(&b.name.to_lowercase());
    agents.sort_by(by_name);
    tools.sort_by(by_name);
    let requests = super::grants::list(svc, ctx, None, ACCESS_REQUESTS).await?;
    let mut uses = store::audit::last_uses(reader, &ctx.org_id).await?;
    // This process's uses the ledger has not caught up with yet.
    for ((agent, tool), at) in svc.audit.last_uses() {
        match uses
            .iter_mut()
            .find(|(a, t, _)| *a == *agent && *t == *tool)
        {
            Some(known) => known.2 = known.2.max(at),
            None => uses.push((agent.to_string(), tool.to_string(), at)),
        }
    }
    let now = svc.clock.now_ms();
    let mut cells: Vec<AccessCell> = Vec::new();
    for r in &requests {
        if cells
            .iter()
            .any(|c| c.agent_id == r.agent_id && c.tool_id == r.tool_id)
        {
            continue;
        }
        let expires = r.expires_at.as_deref().and_then(clock::parse_iso);
        cells.push(AccessCell {
            agent_id: r.agent_id.clone(),
            tool_id: r.tool_id.clone(),
            state: store::requests::access_of(Some(r.status), expires, now),
            request_id: r.id.clone(),
            expires_at: r.expires_at.clone(),
            last_used_at: uses
                .iter()
                .find(|(a, t, _)| *a == r.agent_id && *t == r.tool_id)
                .map(|(_, _, at)| clock::iso(*at)),
        });
    }
    Ok(AccessPicture {
        agents,
        tools,
        cells,
        requests,
    })
}
