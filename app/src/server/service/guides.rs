//! Guide suggestions: approved agents propose usage-guide facts; reviewers accept them into a
//! new guide version or dismiss them with a reason.

use serde_json::json;

use super::actor::{AdminCtx, AgentCtx, Permission};
use super::suggestions::supporters_of;
use super::validate::{Check, limits};
use super::{is_uuid, new_id, normalize, tools};
use crate::model::{
    AlertEvent, ErrorBody, GuideSuggestionView, SuggestGuideBody, SuggestionCreated, SuggestionId,
    SuggestionStatus, ToolId, ToolView,
};
use crate::server::audit::{self, AuditEntry};
use crate::server::events::EventKind;
use crate::server::notify::{self, Alert};
use crate::server::store::{
    self,
    guide_suggestions::GuideSuggestionRow,
    suggestions::{Backing, SupporterTable},
};
use crate::server::{ServiceError, ServiceResult, Services, clock};

/// Validates a guide suggestion body; run before any quota is spent.
pub fn validate_guide(body: &SuggestGuideBody) -> ServiceResult<(String, String)> {
    let mut check = Check::new();
    let learned = check.text("learned", &body.learned, limits::LEARNED, true);
    let why = check.text("why", &body.why, limits::LEARNED, true);
    // Facts are told apart by their letters and digits: one without any would merge with
    // every other such fact.
    if !learned.is_empty() && normalize::name(&learned).is_empty() {
        check.fail("learned", "must contain letters or digits");
    }
    check.finish("Send {learned, why}, each 5–2000 characters; GET this URL for the schema.")?;
    Ok((learned, why))
}

fn tool_not_found() -> ServiceError {
    ServiceError::not_found("Tool not found.", "Browse the catalog with GET /api/tools.")
}

/// An approved agent proposes a fact for the tool's usage guide.
pub async fn suggest_guide(
    svc: &Services,
    agent: &AgentCtx,
    tool_id: &str,
    body: &SuggestGuideBody,
) -> ServiceResult<SuggestionCreated> {
    let (learned, why) = validate_guide(body)?;
    let tool_id = &ToolId::parse(tool_id).ok_or_else(tool_not_found)?;
    let now = svc.clock.now_ms();
    let mut tx = svc.store.begin().await?;
    let tool = store::tools::find_tool(&mut *tx, &agent.org_id, tool_id)
        .await?
        .ok_or_else(tool_not_found)?;
    let latest = store::requests::latest_request(&mut *tx, &agent.agent_id, tool_id).await?;
    if !latest.is_some_and(|r| r.is_live_grant(now)) {
        return Err(ServiceError::forbidden(
            "Only agents with approved access to this tool can suggest guide facts.",
            "Request access first; suggest facts after you have used the tool.",
        ));
    }
    let normalized = normalize::name(&learned);
    // A fact already accepted (into this or an earlier version) is in the guide: the version
    // moved on when it was accepted, so the identity lookup below would not see it.
    let accepted =
        store::guide_suggestions::find_accepted_guide_fact(&mut *tx, tool_id, &normalized).await?;
    let found = match accepted {
        Some(s) => Some(s),
        None => {
            store::guide_suggestions::find_guide_suggestion_by_identity(
                &mut *tx,
                tool_id,
                tool.instructions_version,
                &normalized,
            )
            .await?
        }
    };
    let (id, existing, action) = match found {
        Some(s) if s.status == SuggestionStatus::Dismissed => {
            return Err(ServiceError::Conflict(
                ErrorBody::new("This fact was already dismissed for the current guide.")
                    .hint(
                        "Resubmit only after the guide changes, or with genuinely new information.",
                    )
                    .with("suggestion_id", s.id)
                    .with("dismissal_reason", s.dismissal_reason)
                    .with(
                        "message",
                        "A reviewer dismissed this fact for the current guide; it was not stored again.",
                    ),
            ));
        }
        Some(s) if s.status == SuggestionStatus::Accepted => {
            return Err(ServiceError::Conflict(
                ErrorBody::new("This fact is already in the guide.")
                    .hint("Fetch the credential again to read the current instructions.")
                    .with("suggestion_id", s.id),
            ));
        }
        Some(s) => (s.id, true, "guide_suggestion.supported"),
        None => {
            let row = GuideSuggestionRow {
                id: SuggestionId::generate(),
                organization_id: agent.org_id.clone(),
                tool_id: tool_id.to_owned(),
                tool_name: tool.name.clone(),
                base_version: tool.instructions_version,
                learned: learned.clone(),
                normalized_learned: normalized,
                status: SuggestionStatus::Pending,
                dismissal_reason: None,
                created_at: now,
                current_guide: tool.instructions.clone(),
                current_version: tool.instructions_version,
            };
            store::guide_suggestions::insert_guide_suggestion(&mut tx, &row, now).await?;
            (row.id, false, "guide_suggestion.created")
        }
    };
    let backing = Backing {
        id: &new_id(),
        org_id: &agent.org_id,
        suggestion_id: &id,
        agent_id: &agent.agent_id,
        reason: &why,
    };
    store::suggestions::upsert_supporter(&mut tx, SupporterTable::Guide, backing, now).await?;
    let entry = AuditEntry::new(&agent.org_id, &agent.actor(), &agent.meta, action)
        .target("guide_suggestion", &id)
        .agent(&agent.agent_id)
        .tool(tool_id)
        .meta(json!({ "tool_name": tool.name, "learned": learned, "why": why }));
    audit::append(&mut tx, svc.store.heads(), &[entry]).await?;
    let mut queued = 0;
    if !existing {
        let alert = Alert::new(
            AlertEvent::GuideSuggested,
            &agent.agent_name,
            &tool.name,
            &learned,
            svc.link("/inbox"),
            now,
        );
        queued = notify::enqueue(&mut tx, &agent.org_id, alert).await?;
    }
    tx.commit().await?;
    svc.events
        .publish(&agent.org_id, EventKind::SuggestionChanged);
    if queued > 0 {
        svc.notifier.wake();
    }
    Ok(SuggestionCreated {
        suggestion_id: id.into(),
        status: SuggestionStatus::Pending,
        existing,
        message: "Thanks: a reviewer will consider adding this to the usage guide.".into(),
    })
}

fn not_found() -> ServiceError {
    ServiceError::not_found(
        "Guide suggestion not found.",
        "List them with `agentkey suggestion list --guides`.",
    )
}

async fn load_pending(
    svc: &Services,
    ctx: &AdminCtx,
    id: &str,
) -> ServiceResult<GuideSuggestionRow> {
    if !is_uuid(id) {
        return Err(not_found());
    }
    let row = store::guide_suggestions::find_guide_suggestion(svc.store.reader(), &ctx.org_id, id)
        .await?
        .ok_or_else(not_found)?;
    if row.status != SuggestionStatus::Pending {
        return Err(ServiceError::conflict(
            &format!("The suggestion is {}, not pending.", row.status),
            "Nothing to decide.",
        ));
    }
    Ok(row)
}

/// Accepts a suggestion into a new guide version: the current guide plus the fact, or the
/// reviewer's edited text. Works even if the guide moved on since the suggestion was made.
pub async fn accept(
    svc: &Services,
    ctx: &AdminCtx,
    id: &str,
    edited: Option<&str>,
) -> ServiceResult<ToolView> {
    // Accepting a suggestion as suggested is a decision (approvers may); rewriting the guide
    // while at it is editing the tool.
    ctx.require(if edited.is_some() {
        Permission::ManageTools
    } else {
        Permission::Decide
    })?;
    let mut check = Check::new();
    let edited = check.optional("instructions", edited, limits::INSTRUCTIONS, true);
    check.finish("The usage guide can be at most 16 000 characters.")?;
    let suggestion = load_pending(svc, ctx, id).await?;
    let tool = tools::load(svc, ctx, &suggestion.tool_id).await?;
    let text = edited
        .unwrap_or_else(|| crate::model::guide_after(&tool.instructions, &suggestion.learned));
    let mut tx = svc.store.begin().await?;
    let mut entries =
        tools::save_guide(&mut tx, ctx, &tool, &text, "suggestion_accept", None).await?;
    let version = tool.instructions_version + 1;
    if !store::guide_suggestions::close_guide_suggestion(
        &mut tx,
        id,
        SuggestionStatus::Accepted,
        None,
        Some(version),
        &ctx.actor.label,
        svc.clock.now_ms(),
    )
    .await?
    {
        return Err(ServiceError::conflict(
            "The suggestion changed meanwhile.",
            "Reload and try again.",
        ));
    }
    entries.push(
        AuditEntry::new(
            &ctx.org_id,
            &ctx.actor,
            &ctx.meta,
            "guide_suggestion.accepted",
        )
        .target("guide_suggestion", id)
        .tool(&tool.id)
        .meta(json!({ "tool_name": tool.name, "version": version })),
    );
    audit::append(&mut tx, svc.store.heads(), &entries).await?;
    tx.commit().await?;
    svc.vend_cache.clear();
    svc.events
        .publish(&ctx.org_id, EventKind::SuggestionChanged);
    tools::get(svc, ctx, &tool.id).await
}

/// Dismisses a suggestion; the reason is returned to agents that submit it again.
pub async fn dismiss(svc: &Services, ctx: &AdminCtx, id: &str, reason: &str) -> ServiceResult<()> {
    ctx.require(Permission::Decide)?;
    let mut check = Check::new();
    let reason = check.text("reason", reason, (5, limits::NOTE), true);
    check.finish("Say why in 5–500 characters; agents see it.")?;
    let suggestion = load_pending(svc, ctx, id).await?;
    let mut tx = svc.store.begin().await?;
    if !store::guide_suggestions::close_guide_suggestion(
        &mut tx,
        id,
        SuggestionStatus::Dismissed,
        Some(&reason),
        None,
        &ctx.actor.label,
        svc.clock.now_ms(),
    )
    .await?
    {
        return Err(ServiceError::conflict(
            "The suggestion changed meanwhile.",
            "Reload and try again.",
        ));
    }
    let entry = AuditEntry::new(
        &ctx.org_id,
        &ctx.actor,
        &ctx.meta,
        "guide_suggestion.dismissed",
    )
    .target("guide_suggestion", id)
    .tool(&suggestion.tool_id)
    .meta(json!({ "tool_name": suggestion.tool_name, "reason": reason }));
    audit::append(&mut tx, svc.store.heads(), &[entry]).await?;
    tx.commit().await?;
    svc.events
        .publish(&ctx.org_id, EventKind::SuggestionChanged);
    Ok(())
}

/// Guide suggestions in one status, with backers.
pub async fn list(
    svc: &Services,
    ctx: &AdminCtx,
    status: SuggestionStatus,
) -> ServiceResult<Vec<GuideSuggestionView>> {
    ctx.require(Permission::ReadAll)?;
    let rows =
        store::guide_suggestions::list_guide_suggestions(svc.store.reader(), &ctx.org_id, status)
            .await?;
    let ids: Vec<SuggestionId> = rows.iter().map(|r| r.id.clone()).collect();
    let supporters =
        store::suggestions::list_supporters(svc.store.reader(), SupporterTable::Guide, &ids)
            .await?;
    Ok(rows
        .into_iter()
        .map(|r| GuideSuggestionView {
            supporters: supporters_of(&supporters, &r.id),
            status: r.status,
            id: r.id.into(),
            tool_id: r.tool_id.into(),
            tool_name: r.tool_name,
            base_version: r.base_version,
            learned: r.learned,
            dismissal_reason: r.dismissal_reason,
            created_at: clock::iso(r.created_at),
            current_guide: r.current_guide,
            current_version: r.current_version,
        })
        .collect())
}
