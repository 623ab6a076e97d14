//! Access reviews (ISO 27001 5.18 and similar controls): an owner or admin snapshots the live
//! grants (all, one tool's or one agent's); each is assigned to a reviewer, who marks keep or
//! revoke with a note; closing revokes what was marked revoke and, as the review says, what
//! nobody confirmed. Every step is in the audit log, and the evidence exports as CSV.

use serde_json::json;

use crate::model::{AccessReviewView, AgentId, RequestId, RequestStatus, ReviewItemView, ToolId};
use crate::server::audit::{self, AuditEntry};
use crate::server::events::EventKind;
use crate::server::service::actor::{AdminCtx, Permission};
use crate::server::service::validate::{Check, limits};
use crate::server::service::{agents, new_id, tools};
use crate::server::store::{
    self,
    reviews::{ItemRow, ReviewRow},
};
use crate::server::{ServiceError, ServiceResult, Services, clock};

/// Most grants one review takes.
const MAX_ITEMS: i64 = 5000;

/// What a review covers.
pub enum Scope<'a> {
    All,
    Tool(&'a str),
    Agent(&'a str),
}

fn not_found() -> ServiceError {
    ServiceError::not_found(
        "Access review not found.",
        "Open the reviews page for the list.",
    )
}

fn item_view(i: ItemRow) -> ReviewItemView {
    ReviewItemView {
        id: i.id,
        request_id: i.request_id,
        agent_id: i.agent_id,
        agent_name: i.agent_name,
        tool_id: i.tool_id,
        tool_name: i.tool_name,
        granted_at: clock::iso_opt(i.granted_at),
        expires_at: clock::iso_opt(i.expires_at),
        reviewer: i.reviewer,
        decision: i.decision,
        note: i.note,
        decided_by: i.decided_by,
        decided_at: clock::iso_opt(i.decided_at),
        outcome: i.outcome,
    }
}

fn review_view(r: ReviewRow, items: Vec<ItemRow>) -> AccessReviewView {
    AccessReviewView {
        id: r.id,
        scope: r.scope,
        scope_name: r.scope_name,
        unconfirmed: r.unconfirmed,
        status: r.status,
        started_by: r.started_by,
        started_at: clock::iso(r.started_at),
        closed_by: r.closed_by,
        closed_at: clock::iso_opt(r.closed_at),
        total: r.total,
        decided: r.decided,
        items: items.into_iter().map(item_view).collect(),
    }
}

/// Starts a review of the live grants in `scope`. Each grant goes to a member who may decide,
/// in turn, preferring someone other than whoever registered the agent.
pub async fn start(
    svc: &Services,
    ctx: &AdminCtx,
    scope: Scope<'_>,
    revoke_unconfirmed: bool,
) -> ServiceResult<AccessReviewView> {
    ctx.require(Permission::ManageTools)?;
    let reader = svc.store.reader();
    let (scope_kind, scope_id, scope_name) = match scope {
        Scope::All => ("all", None, "all live grants".to_owned()),
        Scope::Tool(id) => {
            let t = tools::load(svc, ctx, id).await?;
            ("tool", Some(t.id.to_string()), t.name)
        }
        Scope::Agent(id) => {
            let a = agents::get(svc, ctx, id).await?;
            ("agent", Some(a.id), a.name)
        }
    };
    let now = svc.clock.now_ms();
    let grants: Vec<_> = store::requests::list_requests(
        reader,
        &ctx.org_id,
        Some(RequestStatus::Approved),
        MAX_ITEMS,
    )
    .await?
    .into_iter()
    .filter(|g| g.is_live_grant(now))
    .filter(|g| match scope_kind {
        "tool" => scope_id.as_deref() == Some(g.tool_id.as_str()),
        "agent" => scope_id.as_deref() == Some(g.agent_id.as_str()),
        _ => true,
    })
    .collect();
    if grants.is_empty() {
        return Err(ServiceError::conflict(
            "There are no live grants to review here.",
            "Pick another scope, or review again once agents hold grants.",
        ));
    }
    let reviewers: Vec<String> = store::members::list_members(reader, &ctx.org_id)
        .await?
        .into_iter()
        .filter(|m| m.role.allows(Permission::Decide))
        .map(|m| m.email)
        .collect();
    let review = ReviewRow {
        id: new_id(),
        organization_id: ctx.org_id.clone(),
        scope: scope_kind.into(),
        scope_id,
        scope_name,
        unconfirmed: if revoke_unconfirmed { "revoke" } else { "keep" }.into(),
        status: "open".into(),
        started_by: ctx.actor.label.clone(),
        started_at: now,
        closed_by: None,
        closed_at: None,
        total: 0,
        decided: 0,
    };
    let mut tx = svc.store.begin().await?;
    store::reviews::insert_review(&mut tx, &review).await?;
    for (n, g) in grants.iter().enumerate() {
        let reviewer = if reviewers.is_empty() {
            ctx.actor.label.clone()
        } else {
            // In turn, skipping whoever registered the agent when someone else can decide.
            let pick = |k: usize| reviewers[(n + k) % reviewers.len()].clone();
            (0..reviewers.len())
                .map(pick)
                .find(|r| *r != g.agent_created_by)
                .unwrap_or_else(|| pick(0))
        };
        let item = ItemRow {
            id: new_id(),
            review_id: review.id.clone(),
            organization_id: ctx.org_id.clone(),
            request_id: g.id.to_string(),
            agent_id: g.agent_id.to_string(),
            agent_name: g.agent_name.clone(),
            tool_id: g.tool_id.to_string(),
            tool_name: g.tool_name.clone(),
            granted_at: g.decided_at,
            expires_at: g.expires_at,
            reviewer,
            decision: None,
            note: None,
            decided_by: None,
            decided_at: None,
            outcome: None,
        };
        store::reviews::insert_item(&mut tx, &item).await?;
    }
    let entry = AuditEntry::new(&ctx.org_id, &ctx.actor, &ctx.meta, "review.started")
        .target("access_review", &review.id)
        .meta(json!({
            "scope": review.scope, "scope_name": review.scope_name, "grants": grants.len(),
            "unconfirmed": review.unconfirmed, "reviewers": reviewers,
        }));
    audit::append(&mut tx, svc.store.heads(), &[entry]).await?;
    tx.commit().await?;
    svc.events.publish(&ctx.org_id, EventKind::RequestChanged);
    get(svc, ctx, &review.id).await
}

pub async fn list(svc: &Services, ctx: &AdminCtx) -> ServiceResult<Vec<AccessReviewView>> {
    ctx.require(Permission::ReadAll)?;
    Ok(
        store::reviews::list_reviews(svc.store.reader(), &ctx.org_id)
            .await?
            .into_iter()
            .map(|r| review_view(r, Vec::new()))
            .collect(),
    )
}

pub async fn get(svc: &Services, ctx: &AdminCtx, id: &str) -> ServiceResult<AccessReviewView> {
    ctx.require(Permission::ReadAll)?;
    let review = store::reviews::find_review(svc.store.reader(), &ctx.org_id, id)
        .await?
        .ok_or_else(not_found)?;
    let items = store::reviews::items(svc.store.reader(), &review.id).await?;
    Ok(review_view(review, items))
}

/// Marks an item keep or revoke, with a note (required to revoke). The assigned reviewer
/// decides; owners and admins may decide any item.
pub async fn decide(
    svc: &Services,
    ctx: &AdminCtx,
    item_id: &str,
    keep: bool,
    note: Option<&str>,
) -> ServiceResult<AccessReviewView> {
    ctx.require(Permission::Decide)?;
    let mut check = Check::new();
    let note = check.optional("note", note, limits::NOTE, true);
    if !keep && note.as_deref().is_none_or(|n| n.trim().is_empty()) {
        check.fail(
            "note",
            "is required to revoke: say why the agent no longer needs it",
        );
    }
    check.finish("Add a note of up to 500 characters.")?;
    let item = store::reviews::find_item(svc.store.reader(), &ctx.org_id, item_id)
        .await?
        .ok_or_else(|| ServiceError::not_found("Review item not found.", "Reload the review."))?;
    if item.reviewer != ctx.actor.label && !ctx.role.allows(Permission::ManageTools) {
        return Err(ServiceError::forbidden(
            &format!("This grant is assigned to {} for review.", item.reviewer),
            "Decide the grants assigned to you; an owner or admin can decide any.",
        ));
    }
    let decision = if keep { "keep" } else { "revoke" };
    let mut tx = svc.store.begin().await?;
    if !store::reviews::decide_item(
        &mut tx,
        &item.id,
        decision,
        note.as_deref(),
        &ctx.actor.label,
        svc.clock.now_ms(),
    )
    .await?
    {
        return Err(ServiceError::conflict(
            "This review is closed.",
            "Start a new review to change a decision.",
        ));
    }
    let entry = AuditEntry::new(&ctx.org_id, &ctx.actor, &ctx.meta, "review.item_decided")
        .target("access_review", &item.review_id)
        .meta(json!({
            "item_id": item.id, "request_id": item.request_id, "agent_name": item.agent_name,
            "tool_name": item.tool_name, "decision": decision, "note": note,
        }));
    audit::append(&mut tx, svc.store.heads(), &[entry]).await?;
    tx.commit().await?;
    get(svc, ctx, &item.review_id).await
}

/// Closes a review: grants marked revoke, and (when the review says so) grants nobody
/// confirmed, are revoked; the rest are kept. Each outcome is recorded on its item and audited.
pub async fn close(svc: &Services, ctx: &AdminCtx, id: &str) -> ServiceResult<AccessReviewView> {
    ctx.require(Permission::ManageTools)?;
    let review = store::reviews::find_review(svc.store.reader(), &ctx.org_id, id)
        .await?
        .ok_or_else(not_found)?;
    let now = svc.clock.now_ms();
    let by = format!("access review ({})", ctx.actor.label);
    let mut tx = svc.store.begin().await?;
    if !store::reviews::close_review(&mut tx, &review.id, &ctx.actor.label, now).await? {
        return Err(ServiceError::conflict(
            "This review is closed already.",
            "Start a new review.",
        ));
    }
    // Read under the review's row lock: a decision made while closing is either in or refused.
    let items = store::reviews::items(&mut *tx, &review.id).await?;
    let mut entries = Vec::new();
    let (mut revoked, mut kept, mut ended) = (0, 0, 0);
    for item in &items {
        let revoke = match item.decision.as_deref() {
            Some("revoke") => true,
            Some(_) => false,
            None => review.unconfirmed == "revoke",
        };
        let outcome = if revoke {
            let note = item
                .note
                .clone()
                .unwrap_or_else(|| "Not confirmed in the access review.".into());
            let request = RequestId::new(item.request_id.clone());
            if store::lifecycle::revoke_grant(&mut tx, &request, &by, &note, now).await? {
                revoked += 1;
                entries.push(
                    AuditEntry::new(&ctx.org_id, &ctx.actor, &ctx.meta, "grant.revoked")
                        .target("access_request", &item.request_id)
                        .agent(&AgentId::new(item.agent_id.clone()))
                        .tool(&ToolId::new(item.tool_id.clone()))
                        .meta(json!({
                            "agent_name": item.agent_name, "tool_name": item.tool_name, "reason": note,
                            "review_id": review.id, "confirmed": item.decision.is_some(),
                        })),
                );
                "revoked"
            } else {
                ended += 1;
                "already_ended"
            }
        } else {
            kept += 1;
            "kept"
        };
        store::reviews::set_outcome(&mut tx, &item.id, outcome).await?;
    }
    entries.push(
        AuditEntry::new(&ctx.org_id, &ctx.actor, &ctx.meta, "review.closed")
            .target("access_review", &review.id)
            .meta(json!({
                "scope_name": review.scope_name, "revoked": revoked, "kept": kept, "already_ended": ended,
                "unconfirmed": review.unconfirmed,
                "undecided": items.iter().filter(|i| i.decision.is_none()).count(),
            })),
    );
    audit::append(&mut tx, svc.store.heads(), &entries).await?;
    tx.commit().await?;
    svc.vend_cache.clear();
    svc.events.publish(&ctx.org_id, EventKind::RequestChanged);
    get(svc, ctx, &review.id).await
}

/// A CSV field: quoted, quotes doubled, and a leading formula character neutralised.
fn field(text: &str) -> String {
    let text = if text.starts_with(['=', '+', '-', '@', '\t', '\r']) {
        format!("'{text}")
    } else {
        text.to_owned()
    };
    format!("\"{}\"", text.replace('"', "\"\""))
}

/// The review's evidence: who decided what about which grant, when, why, and what came of it.
pub async fn csv(svc: &Services, ctx: &AdminCtx, id: &str) -> ServiceResult<String> {
    let review = get(svc, ctx, id).await?;
    let mut out = String::from(
        "review_id,scope,started_by,started_at,closed_by,closed_at,agent,tool,granted_at,expires_at,reviewer,decision,note,decided_by,decided_at,outcome\n",
    );
    for i in &review.items {
        let row = [
            review.id.as_str(),
            &review.scope_name,
            &review.started_by,
            &review.started_at,
            review.closed_by.as_deref().unwrap_or(""),
            review.closed_at.as_deref().unwrap_or(""),
            &i.agent_name,
            &i.tool_name,
            i.granted_at.as_deref().unwrap_or(""),
            i.expires_at.as_deref().unwrap_or(""),
            &i.reviewer,
            i.decision.as_deref().unwrap_or(""),
            i.note.as_deref().unwrap_or(""),
            i.decided_by.as_deref().unwrap_or(""),
            i.decided_at.as_deref().unwrap_or(""),
            i.outcome.as_deref().unwrap_or(""),
        ];
        out.push_str(&row.iter().map(|f| field(f)).collect::<Vec<_>>().join(","));
        out.push('\n');
    }
    Ok(out)
}
