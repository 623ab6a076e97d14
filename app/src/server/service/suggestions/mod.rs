//! Tool suggestions: agents propose missing tools. Deduplicated by domain (else normalized
//! name) with a unique index behind the rule; several agents back one suggestion; a dismissal
//! starts a 24 h cooldown; adding a matching tool opens pending requests for the backers.

use serde_json::json;

use super::actor::{AdminCtx, AgentCtx, Permission};
use super::validate::{Check, limits};
use super::{new_id, normalize};
use crate::model::{
    AlertEvent, ErrorBody, SuggestToolBody, SuggestionCreated, SuggestionId, SuggestionStatus,
    Supporter, ToolSuggestionView,
};
use crate::server::audit::{self, AuditEntry};
use crate::server::events::EventKind;
use crate::server::notify::{self, Alert};
use crate::server::store::{
    self, StoreError,
    suggestions::{Backing, SupporterRow, SupporterTable, ToolSuggestionRow},
};
use crate::server::{ServiceError, ServiceResult, Services, clock};

mod resolve;

pub use resolve::Resolution;
pub(crate) use resolve::resolve_for_tool;

/// How long a dismissed suggestion cannot be re-suggested.
pub const COOLDOWN_MS: i64 = 24 * 60 * 60 * 1000;

/// A validated suggestion.
pub struct ValidSuggestion {
    pub name: String,
    pub normalized_name: String,
    pub url: Option<normalize::NormalUrl>,
    pub reason: String,
}

/// Validates a suggestion body; run before any quota is spent.
pub fn validate_suggestion(body: &SuggestToolBody) -> ServiceResult<ValidSuggestion> {
    let mut check = Check::new();
    let name = check.text("name", &body.name, limits::NAME, false);
    let reason = check.text("reason", &body.reason, limits::REASON, true);
    let raw_url = body.url.as_deref().unwrap_or("");
    let url = if raw_url.chars().count() > limits::URL {
        check.fail("url", format!("must be at most {} characters", limits::URL));
        None
    } else {
        normalize::url(raw_url).unwrap_or_else(|message| {
            check.fail("url", message);
            None
        })
    };
    let normalized_name = normalize::name(&name);
    if normalized_name.is_empty() && !name.is_empty() {
        check.fail("name", "must contain letters or digits");
    }
    check.finish("Send {name, url?, reason}: name 2–120 characters, reason 5–500; GET this URL for the schema.")?;
    Ok(ValidSuggestion {
        name,
        normalized_name,
        url,
        reason,
    })
}

/// An agent proposes a tool that is not in the catalog.
pub async fn suggest_tool(
    svc: &Services,
    agent: &AgentCtx,
    body: &SuggestToolBody,
) -> ServiceResult<SuggestionCreated> {
    let input = validate_suggestion(body)?;
    // None: another instance inserted the same identity between our read and our write; the
    // second attempt finds it and becomes a supporter.
    for _ in 0..2 {
        if let Some(created) = try_suggest(svc, agent, &input).await? {
            return Ok(created);
        }
    }
    Err(ServiceError::conflict(
        "The suggestion changed while it was being recorded.",
        "Send it again.",
    ))
}

async fn try_suggest(
    svc: &Services,
    agent: &AgentCtx,
    input: &ValidSuggestion,
) -> ServiceResult<Option<SuggestionCreated>> {
    let now = svc.clock.now_ms();
    let domain = input.url.as_ref().map(|u| u.domain.as_str());
    let actor = agent.actor();
    let entry =
        |action| AuditEntry::new(&agent.org_id, &actor, &agent.meta, action).agent(&agent.agent_id);
    let mut tx = svc.store.begin().await?;

    let tools =
        store::tools::find_tools_matching(&mut *tx, &agent.org_id, &input.normalized_name, domain)
            .await?;
    if let Some(tool) = tools.first() {
        let e = entry("tool_suggestion.redirected_to_existing_tool")
            .target("tool", &tool.id)
            .tool(&tool.id)
            .meta(json!({ "submitted_name": input.name, "tool_name": tool.name }));
        audit::append(&mut tx, svc.store.heads(), &[e]).await?;
        tx.commit().await?;
        return Err(ServiceError::Conflict(
            ErrorBody::new("This tool already exists in the catalog.")
                .hint(format!(
                    "Request access with POST /api/tools/{}/request.",
                    tool.id
                ))
                .with("tool_id", tool.id.clone())
                .with("tool_name", tool.name.clone())
                .with(
                    "message",
                    format!(
                        "{} is already in the catalog; request access to it instead of suggesting it.",
                        tool.name
                    ),
                ),
        ));
    }

    let mut matches = store::suggestions::find_open_tool_suggestions_matching(
        &mut *tx,
        &agent.org_id,
        &input.normalized_name,
        domain,
    )
    .await?;
    // A domain match is a stronger identity than a name match.
    matches.sort_by_key(|s| s.domain.is_none() || s.domain.as_deref() != domain);
    let (suggestion_id, existing, action) = match matches.into_iter().next() {
        Some(best)
            if best.status == SuggestionStatus::Dismissed
                && best.dismissed_until.is_some_and(|t| t > now) =>
        {
            let retry_after = clock::iso(best.dismissed_until.unwrap_or(now));
            let e = entry("tool_suggestion.cooldown_rejected")
                .target("tool_suggestion", &best.id)
                .meta(json!({ "retry_after": retry_after, "name": best.name }));
            audit::append(&mut tx, svc.store.heads(), &[e]).await?;
            tx.commit().await?;
            return Err(ServiceError::Conflict(
                ErrorBody::new("This tool was recently dismissed by a reviewer.")
                    .hint(
                        "Do not re-suggest it before retry_after; work without it or ask a human.",
                    )
                    .with("suggestion_id", best.id)
                    .with("retry_after", retry_after)
                    .with("dismissal_reason", best.dismissal_reason),
            ));
        }
        Some(best) => {
            let reopened = best.status == SuggestionStatus::Dismissed;
            let (url, dom) = match (&best.domain, &input.url) {
                (None, Some(u)) => (Some(u.url.as_str()), Some(u.domain.as_str())),
                _ => (None, None),
            };
            store::suggestions::reopen_tool_suggestion(&mut tx, &best.id, url, dom, now).await?;
            if reopened {
                // Backers of the dismissed round do not carry over into the new one.
                store::suggestions::delete_supporters(&mut tx, SupporterTable::Tool, &best.id)
                    .await?;
            }
            (
                best.id,
                !reopened,
                if reopened {
                    "tool_suggestion.reopened"
                } else {
                    "tool_suggestion.supported"
                },
            )
        }
        None => {
            let row = ToolSuggestionRow {
                id: SuggestionId::generate(),
                organization_id: agent.org_id.clone(),
                name: input.name.clone(),
                normalized_name: input.normalized_name.clone(),
                url: input.url.as_ref().map(|u| u.url.clone()),
                domain: input.url.as_ref().map(|u| u.domain.clone()),
                status: SuggestionStatus::Pending,
                dismissed_until: None,
                dismissal_reason: None,
                converted_tool_id: None,
                created_at: now,
                updated_at: now,
            };
            match store::suggestions::insert_tool_suggestion(&mut tx, &row).await {
                Err(StoreError::Unique) => return Ok(None),
                inserted => inserted?,
            }
            (row.id, false, "tool_suggestion.created")
        }
    };
    let backing = Backing {
        id: &new_id(),
        org_id: &agent.org_id,
        suggestion_id: &suggestion_id,
        agent_id: &agent.agent_id,
        reason: &input.reason,
    };
    store::suggestions::upsert_supporter(&mut tx, SupporterTable::Tool, backing, now).await?;
    let e = entry(action)
        .target("tool_suggestion", &suggestion_id)
        .meta(json!({ "name": input.name, "url": input.url.as_ref().map(|u| &u.url), "reason": input.reason }));
    audit::append(&mut tx, svc.store.heads(), &[e]).await?;
    // New or reopened suggestions are new work; one more backer of an open one is not.
    let mut queued = 0;
    if !existing {
        let alert = Alert {
            tool_url: input.url.as_ref().map(|u| u.url.clone()),
            ..Alert::new(
                AlertEvent::ToolSuggested,
                &agent.agent_name,
                &input.name,
                &input.reason,
                svc.link("/inbox"),
                now,
            )
        };
        queued = notify::enqueue(&mut tx, &agent.org_id, alert).await?;
    }
    tx.commit().await?;
    svc.events
        .publish(&agent.org_id, EventKind::SuggestionChanged);
    if queued > 0 {
        svc.notifier.wake();
    }
    Ok(Some(SuggestionCreated {
        suggestion_id: suggestion_id.into(),
        status: SuggestionStatus::Pending,
        existing,
        message: if existing {
            "You now back an existing suggestion for this tool. When it is added you get a pending request.".into()
        } else {
            "Suggestion recorded. When a human adds the tool you get a pending request automatically.".into()
        },
    }))
}

/// Dismisses a pending suggestion with a reason; it cannot be re-suggested for 24 hours.
pub async fn dismiss(
    svc: &Services,
    ctx: &AdminCtx,
    id: &str,
    reason: &str,
) -> ServiceResult<ToolSuggestionView> {
    ctx.require(Permission::Decide)?;
    let mut check = Check::new();
    let reason = check.text("reason", reason, (1, limits::NOTE), true);
    check.finish("Say briefly why (up to 500 characters); agents see it.")?;
    let not_found = || {
        ServiceError::not_found(
            "Suggestion not found.",
            "List suggestions with `agentkey suggestion list`.",
        )
    };
    let id = &SuggestionId::parse(id).ok_or_else(not_found)?;
    let now = svc.clock.now_ms();
    let until = now + COOLDOWN_MS;
    let mut tx = svc.store.begin().await?;
    let row = store::suggestions::find_tool_suggestion(&mut *tx, &ctx.org_id, id)
        .await?
        .ok_or_else(not_found)?;
    if !store::suggestions::close_tool_suggestion(
        &mut tx,
        id,
        SuggestionStatus::Dismissed,
        Some(until),
        Some(&reason),
        None,
        &ctx.actor.label,
        now,
    )
    .await?
    {
        return Err(ServiceError::conflict(
            &format!("The suggestion is {}, not pending.", row.status),
            "Nothing to dismiss.",
        ));
    }
    let entry = AuditEntry::new(
        &ctx.org_id,
        &ctx.actor,
        &ctx.meta,
        "tool_suggestion.dismissed",
    )
    .target("tool_suggestion", id)
    .meta(json!({ "name": row.name, "reason": reason, "dismissed_until": clock::iso(until) }));
    audit::append(&mut tx, svc.store.heads(), &[entry]).await?;
    tx.commit().await?;
    svc.events
        .publish(&ctx.org_id, EventKind::SuggestionChanged);
    let mut views = views(
        svc,
        vec![ToolSuggestionRow {
            status: SuggestionStatus::Dismissed,
            dismissed_until: Some(until),
            dismissal_reason: Some(reason),
            ..row
        }],
    )
    .await?;
    Ok(views.remove(0))
}

/// Suggestions in one status, with their backers.
pub async fn list(
    svc: &Services,
    ctx: &AdminCtx,
    status: SuggestionStatus,
) -> ServiceResult<Vec<ToolSuggestionView>> {
    ctx.require(Permission::ReadAll)?;
    let rows =
        store::suggestions::list_tool_suggestions(svc.store.reader(), &ctx.org_id, status).await?;
    views(svc, rows).await
}

async fn views(
    svc: &Services,
    rows: Vec<ToolSuggestionRow>,
) -> ServiceResult<Vec<ToolSuggestionView>> {
    let ids: Vec<SuggestionId> = rows.iter().map(|r| r.id.clone()).collect();
    let supporters =
        store::suggestions::list_supporters(svc.store.reader(), SupporterTable::Tool, &ids).await?;
    Ok(rows
        .into_iter()
        .map(|r| ToolSuggestionView {
            supporters: supporters_of(&supporters, &r.id),
            status: r.status,
            id: r.id.into(),
            name: r.name,
            url: r.url,
            dismissed_until: clock::iso_opt(r.dismissed_until),
            dismissal_reason: r.dismissal_reason,
            converted_tool_id: r.converted_tool_id.map(Into::into),
            created_at: clock::iso(r.created_at),
        })
        .collect())
}

/// The backers of one suggestion, as shown to reviewers.
pub(crate) fn supporters_of(rows: &[SupporterRow], suggestion_id: &str) -> Vec<Supporter> {
    rows.iter()
        .filter(|s| s.suggestion_id == suggestion_id)
        .map(|s| Supporter {
            agent_id: s.agent_id.clone().into(),
            agent_name: s.agent_name.clone(),
            reason: s.reason.clone(),
            first_at: clock::iso(s.first_at),
            last_at: clock::iso(s.last_at),
        })
        .collect()
}
