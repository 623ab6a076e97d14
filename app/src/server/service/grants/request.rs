//! An agent asks for access to a catalog tool: one pending request, never a duplicate of a live
//! one.

use serde_json::json;

use super::tool_not_found;
use crate::model::{
    AlertEvent, ErrorBody, GrantDuration, RequestAccessBody, RequestCreated, RequestId,
    RequestOrigin, RequestStatus, ToolId,
};
use crate::server::audit::{self, AuditEntry};
use crate::server::events::EventKind;
use crate::server::notify::{self, Alert};
use crate::server::service::actor::AgentCtx;
use crate::server::service::validate::{Check, limits};
use crate::server::service::{lifecycle, new_id};
use crate::server::store::{self, StoreError, requests::NewRequest};
use crate::server::{ServiceError, ServiceResult, Services};

/// What a valid request body asks for.
pub struct Asked {
    pub reason: String,
    pub duration: Option<GrantDuration>,
}

/// Validates a request body; run before any quota is spent.
pub fn validate_request(body: &RequestAccessBody) -> ServiceResult<Asked> {
    let mut check = Check::new();
    let reason = check.text("reason", &body.reason, limits::REASON, true);
    let duration = match body.duration.as_deref().map(GrantDuration::parse) {
        Some(Err(message)) => {
            check.fail("duration", message);
            None
        }
        Some(Ok(d)) => Some(d),
        None => None,
    };
    check.finish(
        "Explain in 5–500 characters why you need this tool, and give `duration` as 30m, 8h, 7d or standing (or leave it out for the tool's default); GET this URL for the schema.",
    )?;
    Ok(Asked { reason, duration })
}

/// 400 when the agent asks for longer than the tool allows.
fn too_long(asked: GrantDuration, max: GrantDuration) -> ServiceError {
    let mut check = Check::new();
    check.fail(
        "duration",
        format!(
            "{asked} is longer than this tool allows: its grants last at most {} ({max})",
            max.label()
        ),
    );
    check
        .finish(&format!(
            "Ask for {max} or less, or leave `duration` out for the tool's default."
        ))
        .expect_err("one failure")
}

/// An agent asks for access to a catalog tool.
pub async fn request_access(
    svc: &Services,
    agent: &AgentCtx,
    tool_id: &str,
    body: &RequestAccessBody,
) -> ServiceResult<RequestCreated> {
    let Asked { reason, duration } = validate_request(body)?;
    let tool_id = &ToolId::parse(tool_id).ok_or_else(tool_not_found)?;
    let now = svc.clock.now_ms();
    let mut tx = svc.store.begin().await?;
    let tool = store::tools::find_tool(&mut *tx, &agent.org_id, tool_id)
        .await?
        .ok_or_else(tool_not_found)?;
    if let (Some(asked), Some(max)) = (duration, tool.max_duration)
        && !asked.within(Some(max))
    {
        return Err(too_long(asked, max));
    }
    if let Some(latest) =
        store::requests::latest_request(&mut *tx, &agent.agent_id, tool_id).await?
    {
        match latest.status {
            RequestStatus::Pending => {
                return Err(ServiceError::Conflict(
                    ErrorBody::new("You already have a pending request for this tool.")
                        .hint(format!("Wait for a human to decide: check `your_access` of tool {tool_id} in GET /api/tools every 30 to 60 seconds."))
                        .with("request_id", latest.id),
                ));
            }
            RequestStatus::Approved if latest.is_live_grant(now) => {
                return lifecycle::renew::ask(svc, tx, agent, &tool, latest, &reason, duration)
                    .await;
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
        duration,
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
    .meta(json!({ "tool_name": tool.name, "reason": reason, "duration": duration }));
    audit::append(&mut tx, svc.store.heads(), &[entry]).await?;
    let id = RequestId::new(id);
    if let Some(approved) =
        lifecycle::auto::try_approve(svc, &mut tx, agent, &tool, &id, duration).await?
    {
        // A rule decided: reviewers hear of the decision, not of a request to decide.
        tx.commit().await?;
        svc.vend_cache.clear();
        svc.events.publish(&agent.org_id, EventKind::RequestChanged);
        svc.notifier.wake();
        return Ok(approved);
    }
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
        request_id: id.into(),
        status: RequestStatus::Pending,
        renewal: false,
        grant_expires_at: None,
        message: format!(
            "Access to {} requested. A human will review it; check `your_access` of tool {tool_id} in GET /api/tools every 30 to 60 seconds for the decision.",
            tool.name
        ),
    })
}
