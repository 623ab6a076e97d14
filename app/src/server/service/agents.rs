//! Agents: create (key shown once), rotate, suspend, reactivate, delete, list.

use serde_json::json;

use super::actor::{AdminCtx, Permission};
use super::validate::{Check, limits};
use super::{agent_auth, onboarding};
use crate::model::{AgentId, AgentStatus, AgentView, ErrorBody, IssuedKey};
use crate::server::audit::{self, AuditEntry};
use crate::server::events::EventKind;
use crate::server::store::{self, StoreError, agents::AgentRow};
use crate::server::{ServiceError, ServiceResult, Services, clock};

fn view(row: AgentRow) -> AgentView {
    AgentView {
        status: row.status,
        id: row.id.into(),
        name: row.name,
        description: row.description,
        key_prefix: row.key_prefix,
        created_by: row.created_by,
        created_at: clock::iso(row.created_at),
        last_used_at: clock::iso_opt(row.last_used_at),
        labels: row.labels.split_whitespace().map(str::to_owned).collect(),
    }
}

fn not_found() -> ServiceError {
    ServiceError::not_found(
        "Agent not found.",
        "List agents with `agentkey agent list` to find its id.",
    )
}

/// Loads an agent of the caller's organization or 404 (also for malformed ids).
async fn load(svc: &Services, ctx: &AdminCtx, id: &str) -> ServiceResult<AgentRow> {
    let id = &AgentId::parse(id).ok_or_else(not_found)?;
    store::agents::find_agent(svc.store.reader(), &ctx.org_id, id)
        .await?
        .ok_or_else(not_found)
}

/// Registers an agent and returns its key (the only time it is visible) with snippets.
pub async fn create(
    svc: &Services,
    ctx: &AdminCtx,
    name: &str,
    description: &str,
) -> ServiceResult<IssuedKey> {
    ctx.require(Permission::ManageAgents)?;
    let mut check = Check::new();
    let name = check.text("name", name, limits::NAME, false);
    let description = check
        .optional("description", Some(description), limits::DESCRIPTION, true)
        .unwrap_or_default();
    check.finish(
        "Give the agent a name of 2–120 characters and an optional description up to 500.",
    )?;

    let now = svc.clock.now_ms();
    let key = agent_auth::generate();
    let row = AgentRow {
        id: AgentId::generate(),
        organization_id: ctx.org_id.clone(),
        name,
        description,
        key_hash: key.hash.clone(),
        key_prefix: key.prefix.clone(),
        status: AgentStatus::Active,
        created_by: ctx.actor.label.clone(),
        created_at: now,
        updated_at: now,
        last_used_at: None,
        labels: String::new(),
    };
    let mut tx = svc.store.begin().await?;
    // The unique index decides (two registrations at once); the lookup names the holder.
    if let Err(err) = store::agents::insert_agent(&mut tx, &row).await {
        return Err(match err {
            StoreError::Unique => {
                match store::agents::find_agent_by_name(svc.store.reader(), &ctx.org_id, &row.name)
                    .await?
                {
                    Some(existing) => name_taken(&existing),
                    None => ServiceError::conflict(
                        "An agent with this name was just registered.",
                        "Pick another name.",
                    ),
                }
            }
            other => other.into(),
        });
    }
    let entry = AuditEntry::new(&ctx.org_id, &ctx.actor, &ctx.meta, "agent.created")
        .target("agent", &row.id)
        .agent(&row.id)
        .meta(json!({ "name": row.name, "key_prefix": row.key_prefix }));
    audit::append(&mut tx, svc.store.heads(), &[entry]).await?;
    tx.commit().await?;
    svc.events.publish(&ctx.org_id, EventKind::AgentChanged);
    Ok(IssuedKey {
        snippets: onboarding::snippets(
            &svc.base_url,
            &key.key,
            proxy_example(svc, &ctx.org_id).await?.as_ref(),
        ),
        api_key: key.key,
        agent: view(row),
    })
}

/// 409 naming the agent that already has the name (names are unique whatever their case).
fn name_taken(existing: &AgentRow) -> ServiceError {
    ServiceError::Conflict(
        ErrorBody::new(format!(
            "An agent named \"{}\" already exists (id {}).",
            existing.name, existing.id
        ))
        .hint("Agent names are unique in the organization, whatever their case: pick another name, or rotate that agent's key instead.")
        .with("agent_id", existing.id.to_string())
        .with("agent_name", existing.name.clone()),
    )
}

/// A proxied tool of the organization for the onboarding curl example (the oldest one).
async fn proxy_example(
    svc: &Services,
    org_id: &crate::model::OrgId,
) -> ServiceResult<Option<onboarding::ProxyExample>> {
    let tools = store::tools::list_tools(svc.store.reader(), org_id).await?;
    Ok(tools.iter().rev().find(|t| t.delivery.proxies()).map(|t| {
        let rules = super::proxy::rules::lines(&t.allow_rules);
        onboarding::ProxyExample::new(&t.id, &t.name, &rules)
    }))
}

/// Every agent of the organization, newest first.
pub async fn list(svc: &Services, ctx: &AdminCtx) -> ServiceResult<Vec<AgentView>> {
    ctx.require(Permission::ReadAll)?;
    Ok(store::agents::list_agents(svc.store.reader(), &ctx.org_id)
        .await?
        .into_iter()
        .map(view)
        .collect())
}

/// One agent.
pub async fn get(svc: &Services, ctx: &AdminCtx, id: &str) -> ServiceResult<AgentView> {
    ctx.require(Permission::ReadAll)?;
    load(svc, ctx, id).await.map(view)
}

/// Replaces the agent's key; the old key stops working at once. Refused while suspended.
pub async fn rotate_key(svc: &Services, ctx: &AdminCtx, id: &str) -> ServiceResult<IssuedKey> {
    ctx.require(Permission::ManageAgents)?;
    let mut row = load(svc, ctx, id).await?;
    if row.status != AgentStatus::Active {
        return Err(ServiceError::conflict(
            "This agent is suspended.",
            "Reactivate the agent first, then rotate its key.",
        ));
    }
    let now = svc.clock.now_ms();
    let key = agent_auth::generate();
    let mut tx = svc.store.begin().await?;
    store::agents::update_agent_key(&mut tx, &row.id, &key.hash, &key.prefix, now).await?;
    let entry = AuditEntry::new(&ctx.org_id, &ctx.actor, &ctx.meta, "agent.key_rotated")
        .target("agent", &row.id)
        .agent(&row.id)
        .meta(
            json!({ "name": row.name, "old_key_prefix": row.key_prefix, "key_prefix": key.prefix }),
        );
    audit::append(&mut tx, svc.store.heads(), &[entry]).await?;
    tx.commit().await?;
    svc.vend_cache.clear();
    svc.events.publish(&ctx.org_id, EventKind::AgentChanged);
    row.key_prefix = key.prefix.clone();
    row.updated_at = now;
    Ok(IssuedKey {
        snippets: onboarding::snippets(
            &svc.base_url,
            &key.key,
            proxy_example(svc, &ctx.org_id).await?.as_ref(),
        ),
        api_key: key.key,
        agent: view(row),
    })
}

/// Suspends or reactivates. Grants are kept: a suspended agent gets 403 on every call, and
/// reactivation restores exactly the access it had.
pub async fn set_status(
    svc: &Services,
    ctx: &AdminCtx,
    id: &str,
    status: AgentStatus,
    note: Option<&str>,
) -> ServiceResult<AgentView> {
    ctx.require(Permission::ManageAgents)?;
    let mut check = Check::new();
    let note = check.optional("reason", note, limits::NOTE, true);
    check.finish("Keep the reason under 500 characters.")?;
    let mut row = load(svc, ctx, id).await?;
    let now = svc.clock.now_ms();
    let mut tx = svc.store.begin().await?;
    if !store::agents::update_agent_status(&mut tx, &row.id, status, now).await? {
        return Err(ServiceError::conflict(
            &format!("This agent is already {status}."),
            "Nothing to change; check the agent's status with `agentkey agent list`.",
        ));
    }
    let action = match status {
        AgentStatus::Suspended => "agent.suspended",
        AgentStatus::Active => "agent.reactivated",
    };
    let entry = AuditEntry::new(&ctx.org_id, &ctx.actor, &ctx.meta, action)
        .target("agent", &row.id)
        .agent(&row.id)
        .meta(json!({ "name": row.name, "reason": note }));
    audit::append(&mut tx, svc.store.heads(), &[entry]).await?;
    tx.commit().await?;
    svc.vend_cache.clear();
    svc.events.publish(&ctx.org_id, EventKind::AgentChanged);
    row.status = status;
    row.updated_at = now;
    Ok(view(row))
}

/// Deletes an agent, its requests and grants; its key stops working at once. The audit log
/// keeps its history.
pub async fn delete(svc: &Services, ctx: &AdminCtx, id: &str) -> ServiceResult<()> {
    ctx.require(Permission::ManageAgents)?;
    let row = load(svc, ctx, id).await?;
    let mut tx = svc.store.begin().await?;
    store::agents::delete_agent(&mut tx, &row.id).await?;
    let entry = AuditEntry::new(&ctx.org_id, &ctx.actor, &ctx.meta, "agent.deleted")
        .target("agent", &row.id)
        .agent(&row.id)
        .meta(json!({ "name": row.name }));
    audit::append(&mut tx, svc.store.heads(), &[entry]).await?;
    tx.commit().await?;
    svc.vend_cache.clear();
    svc.events.publish(&ctx.org_id, EventKind::AgentChanged);
    Ok(())
}
