//! When a tool is added: the suggestions it answers are closed and their backers get pending
//! requests, in the caller's transaction.

use std::collections::HashSet;

use serde_json::json;

use crate::model::{AgentStatus, RequestOrigin, RequestStatus, SuggestionId, SuggestionStatus};
use crate::server::audit::AuditEntry;
use crate::server::service::actor::AdminCtx;
use crate::server::service::new_id;
use crate::server::store::{
    self, Tx, requests::NewRequest, suggestions::SupporterTable, tools::ToolRow,
};
use crate::server::{ServiceError, ServiceResult};

/// What adding a tool resolved.
pub struct Resolution {
    pub resolved: Vec<SuggestionId>,
    pub opened: Vec<String>,
    pub audit: Vec<AuditEntry>,
}

/// Inside the tool-creating transaction: accepts every pending suggestion matching the tool
/// (and the explicit source suggestion), then opens one pending request per backer that is
/// active and has no denied or revoked history for this tool.
pub(crate) async fn resolve_for_tool(
    tx: &mut Tx,
    ctx: &AdminCtx,
    tool: &ToolRow,
    source_id: Option<&str>,
    now: i64,
) -> ServiceResult<Resolution> {
    let mut matched = store::suggestions::find_pending_tool_suggestions_for_tool(
        &mut **tx,
        &ctx.org_id,
        &tool.normalized_name,
        tool.domain.as_deref(),
    )
    .await?;
    if let Some(source_id) = source_id
        && !matched.iter().any(|s| s.id == source_id)
    {
        let source = store::suggestions::find_tool_suggestion(&mut **tx, &ctx.org_id, source_id)
            .await?
            .ok_or_else(|| {
                ServiceError::not_found(
                    "Suggestion not found.",
                    "List suggestions with `agentkey suggestion list`.",
                )
            })?;
        if source.status != SuggestionStatus::Pending {
            return Err(ServiceError::conflict(
                &format!("The suggestion is {}, not pending.", source.status),
                "Create the tool without --from-suggestion, or pick a pending suggestion.",
            ));
        }
        matched.push(source);
    }
    let mut out = Resolution {
        resolved: Vec::new(),
        opened: Vec::new(),
        audit: Vec::new(),
    };
    for s in &matched {
        store::suggestions::close_tool_suggestion(
            tx,
            &s.id,
            SuggestionStatus::Accepted,
            None,
            None,
            Some(&tool.id),
            &ctx.actor.label,
            now,
        )
        .await?;
        let action = if Some(s.id.as_str()) == source_id {
            "tool_suggestion.accepted"
        } else {
            "tool_suggestion.auto_resolved"
        };
        out.audit.push(
            AuditEntry::new(&ctx.org_id, &ctx.actor, &ctx.meta, action)
                .target("tool_suggestion", &s.id)
                .tool(&tool.id)
                .meta(json!({ "name": s.name, "tool_name": tool.name })),
        );
        out.resolved.push(s.id.clone());
    }
    let supporters =
        store::suggestions::list_supporters(&mut **tx, SupporterTable::Tool, &out.resolved).await?;
    let mut seen = HashSet::new();
    for backer in supporters {
        // Newest first, so the first row per agent carries its latest reason.
        if !seen.insert(backer.agent_id.clone()) || backer.agent_status != AgentStatus::Active {
            continue;
        }
        // Any earlier request but an expired one: the agent already had its chance at this tool.
        let history = [
            RequestStatus::Pending,
            RequestStatus::Approved,
            RequestStatus::Denied,
            RequestStatus::Revoked,
        ];
        if store::requests::agent_has_request_in(&mut **tx, &backer.agent_id, &tool.id, &history)
            .await?
        {
            continue;
        }
        let id = new_id();
        let new = NewRequest {
            id: &id,
            org_id: &ctx.org_id,
            agent_id: &backer.agent_id,
            tool_id: &tool.id,
            reason: &backer.reason,
            origin: RequestOrigin::Suggestion,
            suggestion_id: Some(&backer.suggestion_id),
            duration: None,
        };
        store::requests::insert_request(tx, &new, now).await?;
        out.audit.push(
            AuditEntry::new(&ctx.org_id, &ctx.actor, &ctx.meta, "grant.requested_from_suggestion")
                .target("access_request", &id)
                .agent(&backer.agent_id)
                .tool(&tool.id)
                .meta(json!({ "tool_name": tool.name, "suggestion_id": backer.suggestion_id, "reason": backer.reason })),
        );
        out.opened.push(id);
    }
    Ok(out)
}
