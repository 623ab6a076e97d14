//! Fewer needless approvals, never for what matters: a tool's rules approve requests from
//! agents carrying given labels, for at most a given length and, on a proxied tool, read-only.
//! A tool marked "always needs a human", a tool needing several approvals, and a tool whose
//! grants carry their own secret are never approved by a rule: saving such a rule is refused,
//! and a rule whose tool became one of them approves nothing.

use serde_json::json;

use super::length_within;
use crate::model::{
    ActorType, AlertEvent, AutoRuleView, CredentialMode, GrantDuration, RequestCreated,
    RequestStatus, ToolId, ToolView,
};
use crate::server::audit::{self, AuditEntry};
use crate::server::events::EventKind;
use crate::server::notify::{self, Alert};
use crate::server::service::actor::{Actor, AdminCtx, AgentCtx, Permission, RequestMeta};
use crate::server::service::validate::Check;
use crate::server::service::{agents, new_id, tools};
use crate::server::store::{self, requests::Decision, rules::RuleRow, tools::ToolRow};
use crate::server::{ServiceError, ServiceResult, Services, clock};

/// At most this many labels per agent or rule.
const MAX_LABELS: usize = 10;

/// Labels as typed (space- or comma-separated): lower-cased ASCII `key:value` or `word`
/// tokens of 1–40 characters, at most ten, duplicates dropped.
pub fn parse_labels(text: &str) -> Result<Vec<String>, String> {
    let mut out: Vec<String> = Vec::new();
    for raw in text
        .split(|c: char| c == ',' || c.is_whitespace())
        .filter(|t| !t.is_empty())
    {
        let label = raw.to_ascii_lowercase();
        let ok = label.len() <= 40
            && label
                .bytes()
                .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b"_.-:".contains(&b))
            && label
                .bytes()
                .next()
                .is_some_and(|b| b.is_ascii_alphanumeric())
            && label.matches(':').count() <= 1
            && !label.ends_with(':');
        if !ok {
            return Err(format!(
                "{raw:?} is not a label: use letters, digits, '-', '_' or '.', optionally as key:value (e.g. team:payments), up to 40 characters"
            ));
        }
        if !out.contains(&label) {
            out.push(label);
        }
    }
    if out.len() > MAX_LABELS {
        return Err(format!("at most {MAX_LABELS} labels"));
    }
    Ok(out)
}

fn labels_field(text: &str) -> ServiceResult<Vec<String>> {
    parse_labels(text).map_err(|message| {
        let mut check = Check::new();
        check.fail("labels", message);
        check
            .finish("Give labels like team:payments env:staging.")
            .expect_err("one failure")
    })
}

/// Replaces an agent's labels.
pub async fn set_agent_labels(
    svc: &Services,
    ctx: &AdminCtx,
    agent_id: &str,
    labels: &str,
) -> ServiceResult<crate::model::AgentView> {
    ctx.require(Permission::ManageAgents)?;
    let labels = labels_field(labels)?;
    let agent = agents::get(svc, ctx, agent_id).await?;
    let id = crate::model::AgentId::parse(&agent.id)
        .ok_or_else(|| ServiceError::not_found("Agent not found.", "Reload the agents page."))?;
    let mut tx = svc.store.begin().await?;
    store::agents::set_labels(
        &mut tx,
        &ctx.org_id,
        &id,
        &labels.join(" "),
        svc.clock.now_ms(),
    )
    .await?;
    let entry = AuditEntry::new(&ctx.org_id, &ctx.actor, &ctx.meta, "agent.labels_changed")
        .target("agent", &agent.id)
        .agent(&id)
        .meta(json!({ "agent_name": agent.name, "labels": labels, "was": agent.labels }));
    audit::append(&mut tx, svc.store.heads(), &[entry]).await?;
    tx.commit().await?;
    agents::get(svc, ctx, agent_id).await
}

/// Why a rule of this tool can approve nothing; `None` when rules apply to it.
fn why_never(always_human: bool, approvals_required: i64, per_agent: bool) -> Option<String> {
    if always_human {
        Some("The tool always needs a human.".into())
    } else if approvals_required > 1 {
        Some(format!(
            "The tool needs {approvals_required} approvals per request."
        ))
    } else if per_agent {
        Some("Each grant of the tool carries its own secret, which a reviewer gives.".into())
    } else {
        None
    }
}

/// [`why_never`] of a tool row.
fn tool_never(tool: &ToolRow) -> Option<String> {
    why_never(
        tool.always_human != 0,
        tool.approvals_required,
        tool.credential_mode == CredentialMode::PerAgent,
    )
}

fn rule_view(r: RuleRow, per_agent: bool) -> AutoRuleView {
    AutoRuleView {
        inactive: why_never(r.always_human != 0, r.approvals_required, per_agent),
        id: r.id,
        tool_id: r.tool_id.to_string(),
        tool_name: r.tool_name,
        labels: r.labels.split_whitespace().map(str::to_owned).collect(),
        max_duration: r.max_duration,
        read_only: r.read_only != 0,
        created_by: r.created_by,
        created_at: clock::iso(r.created_at),
    }
}

/// Every rule of the organization, in one place.
pub async fn list_rules(svc: &Services, ctx: &AdminCtx) -> ServiceResult<Vec<AutoRuleView>> {
    ctx.require(Permission::ReadAll)?;
    let tools = store::tools::list_tools(svc.store.reader(), &ctx.org_id).await?;
    let per_agent = |id: &ToolId| {
        tools
            .iter()
            .any(|t| t.id == *id && t.credential_mode == CredentialMode::PerAgent)
    };
    Ok(store::rules::list_rules(svc.store.reader(), &ctx.org_id)
        .await?
        .into_iter()
        .map(|r| {
            let p = per_agent(&r.tool_id);
            rule_view(r, p)
        })
        .collect())
}

/// Adds a rule to a tool: requests from agents carrying every one of `labels` are approved for
/// at most `max_duration` (read-only when the tool is proxied). Refused (409) for a tool that
/// always needs a human, needs several approvals, or gives each grant its own secret.
pub async fn add_rule(
    svc: &Services,
    ctx: &AdminCtx,
    tool_id: &str,
    labels: &str,
    max_duration: Option<GrantDuration>,
) -> ServiceResult<AutoRuleView> {
    ctx.require(Permission::ManageTools)?;
    let labels = labels_field(labels)?;
    let mut check = Check::new();
    if labels.is_empty() {
        check.fail(
            "labels",
            "a rule needs at least one label (it approves agents carrying all of them)",
        );
    }
    let tool = tools::load(svc, ctx, tool_id).await?;
    match max_duration {
        None | Some(GrantDuration::Standing) => check.fail(
            "max_duration",
            "a rule approves for a limited time: give 30m, 8h, 7d …",
        ),
        Some(d) if !d.within(tool.max_duration) => check.fail(
            "max_duration",
            format!(
                "is longer than the tool's maximum grant of {}",
                tool.max_duration
                    .map(GrantDuration::label)
                    .unwrap_or_default()
            ),
        ),
        Some(_) => {}
    }
    check.finish("Fix the listed fields and save the rule again.")?;
    if let Some(why) = tool_never(&tool) {
        return Err(ServiceError::conflict(
            &format!("{} is never approved automatically: {why}", tool.name),
            "Keep a reviewer for this tool, or change the tool first.",
        ));
    }
    let now = svc.clock.now_ms();
    let row = RuleRow {
        id: new_id(),
        organization_id: ctx.org_id.clone(),
        tool_id: tool.id.clone(),
        tool_name: tool.name.clone(),
        labels: labels.join(" "),
        max_duration: max_duration.unwrap_or(GrantDuration::Standing),
        read_only: i64::from(tool.delivery.proxies()),
        created_by: ctx.actor.label.clone(),
        created_at: now,
        always_human: 0,
        approvals_required: tool.approvals_required,
    };
    let mut tx = svc.store.begin().await?;
    store::rules::insert_rule(&mut tx, &row).await?;
    let entry = AuditEntry::new(&ctx.org_id, &ctx.actor, &ctx.meta, "tool.auto_rule_added")
        .target("tool", &tool.id)
        .tool(&tool.id)
        .meta(json!({
            "tool_name": tool.name, "rule_id": row.id, "labels": labels,
            "max_duration": row.max_duration, "read_only": row.read_only != 0,
        }));
    audit::append(&mut tx, svc.store.heads(), &[entry]).await?;
    tx.commit().await?;
    svc.events.publish(&ctx.org_id, EventKind::ToolChanged);
    Ok(rule_view(row, false))
}

pub async fn delete_rule(svc: &Services, ctx: &AdminCtx, id: &str) -> ServiceResult<()> {
    ctx.require(Permission::ManageTools)?;
    let gone = || ServiceError::not_found("Rule not found.", "Reload the rules.");
    let rule = store::rules::find_rule(svc.store.reader(), &ctx.org_id, id)
        .await?
        .ok_or_else(gone)?;
    let mut tx = svc.store.begin().await?;
    if !store::rules::delete_rule(&mut tx, &ctx.org_id, id).await? {
        return Err(gone());
    }
    let entry = AuditEntry::new(&ctx.org_id, &ctx.actor, &ctx.meta, "tool.auto_rule_removed")
        .target("tool", &rule.tool_id)
        .tool(&rule.tool_id)
        .meta(json!({ "tool_name": rule.tool_name, "rule_id": rule.id, "labels": rule.labels }));
    audit::append(&mut tx, svc.store.heads(), &[entry]).await?;
    tx.commit().await?;
    svc.events.publish(&ctx.org_id, EventKind::ToolChanged);
    Ok(())
}

/// Marks the tool as always needing a human (its rules then approve nothing), or not.
pub async fn set_always_human(
    svc: &Services,
    ctx: &AdminCtx,
    tool_id: &str,
    on: bool,
) -> ServiceResult<ToolView> {
    ctx.require(Permission::ManageTools)?;
    let tool = tools::load(svc, ctx, tool_id).await?;
    let mut tx = svc.store.begin().await?;
    store::rules::set_always_human(&mut tx, &ctx.org_id, &tool.id, on, svc.clock.now_ms()).await?;
    let entry = AuditEntry::new(
        &ctx.org_id,
        &ctx.actor,
        &ctx.meta,
        "tool.always_human_changed",
    )
    .target("tool", &tool.id)
    .tool(&tool.id)
    .meta(json!({ "tool_name": tool.name, "always_human": on }));
    audit::append(&mut tx, svc.store.heads(), &[entry]).await?;
    tx.commit().await?;
    svc.events.publish(&ctx.org_id, EventKind::ToolChanged);
    tools::get(svc, ctx, tool_id).await
}

fn auto_actor() -> Actor {
    Actor {
        kind: ActorType::System,
        id: "auto-approval".into(),
        label: "auto-approval".into(),
    }
}

/// In the transaction that records an agent's request: approves it when one of the tool's
/// rules matches the agent's labels (audited, reviewers told). `None` leaves it pending for a
/// human. The caller commits, then clears the fetch cache and publishes the change.
pub async fn try_approve(
    svc: &Services,
    tx: &mut store::Tx,
    agent: &AgentCtx,
    tool: &ToolRow,
    request_id: &crate::model::RequestId,
    asked: Option<GrantDuration>,
) -> ServiceResult<Option<RequestCreated>> {
    if tool_never(tool).is_some() {
        return Ok(None);
    }
    let rules = store::rules::rules_for_tool(&mut **tx, &tool.id).await?;
    if rules.is_empty() {
        return Ok(None);
    }
    let Some(row) = store::agents::find_agent(&mut **tx, &agent.org_id, &agent.agent_id).await?
    else {
        return Ok(None);
    };
    if row.status != crate::model::AgentStatus::Active {
        return Ok(None);
    }
    let held: Vec<&str> = row.labels.split_whitespace().collect();
    let Some(rule) = rules
        .iter()
        .find(|r| r.labels.split_whitespace().all(|l| held.contains(&l)))
    else {
        return Ok(None);
    };
    // The ask (else the tool's default), never longer than the rule or the tool allows.
    let wanted = length_within(tool.max_duration, tool.default_duration, asked, None)
        .unwrap_or(rule.max_duration);
    let length = if wanted.within(Some(rule.max_duration)) {
        wanted
    } else {
        rule.max_duration
    };
    let now = svc.clock.now_ms();
    let expires_at = length.ends(now);
    let note = format!("Approved by the rule for agents labelled {}.", rule.labels);
    let decision = Decision {
        id: request_id,
        from: RequestStatus::Pending,
        to: RequestStatus::Approved,
        decided_by: "auto-approval",
        note: Some(&note),
        credential_blob: None,
        credential_version: 0,
        expires_at,
        granted_duration: Some(length),
    };
    if !store::requests::decide_request(tx, &decision, now).await? {
        return Ok(None);
    }
    // Read-only whenever the tool is proxied now, whatever it was when the rule was saved.
    let read_only = rule.read_only != 0 || tool.delivery.proxies();
    store::proxy_use::set_scope(tx, request_id, read_only, None, None).await?;
    let entry = AuditEntry::new(
        &agent.org_id,
        &auto_actor(),
        &RequestMeta::default(),
        "grant.auto_approved",
    )
    .target("access_request", request_id)
    .agent(&agent.agent_id)
    .tool(&tool.id)
    .meta(json!({
        "agent_name": agent.agent_name, "tool_name": tool.name, "rule_id": rule.id,
        "rule_labels": rule.labels, "rule_max_duration": rule.max_duration, "duration": length,
        "expires_at": clock::iso_opt(expires_at), "read_only": read_only,
    }));
    audit::append(tx, svc.store.heads(), &[entry]).await?;
    let alert = Alert {
        decision: Some("auto-approved".into()),
        reviewer: Some("auto-approval".into()),
        ..Alert::new(
            AlertEvent::Decided,
            &agent.agent_name,
            &tool.name,
            &note,
            svc.link("/audit"),
            now,
        )
    };
    notify::enqueue(tx, &agent.org_id, alert).await?;
    let how = if tool.delivery.fetches() && !read_only {
        format!("fetch it with GET /api/tools/{}/credentials", tool.id)
    } else {
        format!("use it read-only through /api/tools/{}/proxy", tool.id)
    };
    Ok(Some(RequestCreated {
        request_id: request_id.to_string(),
        status: RequestStatus::Approved,
        renewal: false,
        grant_expires_at: clock::iso_opt(expires_at),
        message: format!(
            "Access to {} approved by a rule for {}: {how}.",
            tool.name,
            length.label()
        ),
    }))
}
