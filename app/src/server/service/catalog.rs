//! What an agent sees: the catalog with its own access, and its identity summary.

use super::actor::AgentCtx;
use super::lifecycle;
use crate::model::{Access, CatalogTool, DeniedTool, Me, ToolList};
use crate::server::store;
use crate::server::{ServiceResult, Services, clock};

/// `GET /api/tools`: every tool of the organization, newest first, with `your_access`.
pub async fn list_for_agent(svc: &Services, agent: &AgentCtx) -> ServiceResult<ToolList> {
    let tools = store::tools::list_tools(svc.store.reader(), &agent.org_id).await?;
    let requests =
        store::requests::latest_requests_for_agent(svc.store.reader(), &agent.agent_id).await?;
    let now = svc.clock.now_ms();
    let tools = tools
        .into_iter()
        .map(|t| {
            let latest = requests.iter().find(|r| r.tool_id == t.id);
            let access = latest.map_or(Access::None, |r| r.access(now));
            let live = latest.filter(|_| access == Access::Approved);
            CatalogTool {
                denial_reason: latest
                    .filter(|_| access == Access::Denied)
                    .and_then(|r| r.decision_note.clone()),
                revocation_reason: latest
                    .filter(|_| access == Access::Revoked)
                    .and_then(|r| r.decision_note.clone()),
                request_id: latest.map(|r| r.id.to_string()),
                grant_expires_at: latest
                    .filter(|_| access == Access::Approved)
                    .and_then(|r| clock::iso_opt(r.expires_at)),
                grant_expires_in_seconds: live
                    .and_then(|r| r.expires_at)
                    .map(|end| (end - now).max(0) / 1000),
                renewal_opens_at: live.and_then(lifecycle::renewal_opens_for).map(clock::iso),
                renewal: live.and_then(|r| {
                    if r.renewal_requested_at.is_some() {
                        Some("pending".to_owned())
                    } else {
                        r.renewal_note.as_ref().map(|_| "denied".to_owned())
                    }
                }),
                renewal_denial_reason: live
                    .filter(|r| r.renewal_requested_at.is_none())
                    .and_then(|r| r.renewal_note.clone()),
                hint: latest.and_then(|r| lifecycle::next_step(r, access, now)),
                delivery: t.delivery,
                proxy_url: t
                    .delivery
                    .proxies()
                    .then(|| format!("{}/api/tools/{}/proxy", svc.base_url, t.id)),
                proxy_rules: t
                    .delivery
                    .proxies()
                    .then(|| {
                        let grant = latest
                            .filter(|_| access == Access::Approved)
                            .and_then(|r| r.proxy_rules.as_deref());
                        super::proxy::rules::lines(grant.unwrap_or(&t.allow_rules))
                    })
                    .filter(|rules| !rules.is_empty()),
                proxy_read_only: latest
                    .is_some_and(|r| access == Access::Approved && r.proxy_read_only != 0),
                your_access: access,
                auth_type: t.auth_type,
                credential_mode: t.credential_mode,
                id: t.id.into(),
                name: t.name,
                description: t.description,
                url: t.url,
            }
        })
        .collect();
    Ok(ToolList { tools })
}

/// `GET /api/me`: identity plus approved, pending and denied tools.
pub async fn me(svc: &Services, agent: &AgentCtx) -> ServiceResult<Me> {
    let list = list_for_agent(svc, agent).await?;
    let names = |access: Access| {
        list.tools
            .iter()
            .filter(|t| t.your_access == access)
            .map(|t| t.name.clone())
            .collect::<Vec<_>>()
    };
    let tools_approved = names(Access::Approved);
    let tools_pending = names(Access::Pending);
    let tools_denied = list
        .tools
        .iter()
        .filter(|t| t.your_access == Access::Denied)
        .map(|t| DeniedTool {
            name: t.name.clone(),
            reason: t.denial_reason.clone(),
        })
        .collect();
    let hint = (tools_approved.is_empty() && tools_pending.is_empty()).then(|| {
        "You have no access yet: list tools with GET /api/tools, then POST /api/tools/{tool_id}/request, \
         or POST /api/tools/suggest for a missing tool."
            .to_owned()
    });
    Ok(Me {
        agent_id: agent.agent_id.clone().into(),
        agent_name: agent.agent_name.clone(),
        description: agent.description.clone(),
        created_at: clock::iso(agent.created_at),
        tools_approved,
        tools_pending,
        tools_denied,
        tools_available: list.tools.len() as i64,
        hint,
    })
}
