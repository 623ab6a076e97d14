//! The exposure ledger read back: who saw which version of a tool's secret, and after an
//! agent lost access, which shared secrets it had seen and who else holds them.

use crate::model::{AgentId, ExposureEntry, RotationAdvice, ToolExposure, ToolId};
use crate::server::service::actor::{AdminCtx, Permission};
use crate::server::service::tools;
use crate::server::store;
use crate::server::{ServiceResult, Services, clock};

/// Every agent that received or used each version of the tool's secrets.
pub async fn for_tool(
    svc: &Services,
    ctx: &AdminCtx,
    tool_id: &str,
) -> ServiceResult<ToolExposure> {
    ctx.require(Permission::ReadAll)?;
    let tool = tools::load(svc, ctx, tool_id).await?;
    let rows = store::exposures::for_tool(
        svc.store.reader(),
        &ctx.org_id,
        &tool.id,
        svc.clock.now_ms(),
    )
    .await?;
    Ok(ToolExposure {
        tool_id: tool.id.to_string(),
        tool_name: tool.name,
        current_version: tool.credential_version,
        entries: rows
            .into_iter()
            .map(|r| ExposureEntry {
                agent_id: r.agent_id.to_string(),
                agent_name: r.agent_name,
                secret: r.secret,
                version: r.version,
                fetched_first_at: clock::iso_opt(r.fetched_first_at),
                fetched_last_at: clock::iso_opt(r.fetched_last_at),
                proxied_first_at: clock::iso_opt(r.proxied_first_at),
                proxied_last_at: clock::iso_opt(r.proxied_last_at),
                holds_grant: r.holds_grant != 0,
            })
            .collect(),
    })
}

/// The shared secrets whose current version `agent_id` had fetched (of `tool_id` only, when
/// given): what to consider rotating once that agent lost access.
pub async fn rotation_advice(
    svc: &Services,
    ctx: &AdminCtx,
    agent_id: &str,
    tool_id: Option<&str>,
) -> ServiceResult<Vec<RotationAdvice>> {
    ctx.require(Permission::ReadAll)?;
    let (Some(agent), tool) = (AgentId::parse(agent_id), tool_id.map(ToolId::parse)) else {
        return Ok(Vec::new());
    };
    let tool = match tool {
        Some(None) => return Ok(Vec::new()),
        Some(Some(t)) => Some(t),
        None => None,
    };
    let rows = store::exposures::current_shared_fetched(
        svc.store.reader(),
        &ctx.org_id,
        &agent,
        tool.as_ref(),
        svc.clock.now_ms(),
    )
    .await?;
    Ok(rows
        .into_iter()
        .map(
            |(tool_id, tool_name, version, agent_name, others)| RotationAdvice {
                tool_id: tool_id.to_string(),
                tool_name,
                version,
                agent_name,
                others_holding: others,
            },
        )
        .collect())
}
