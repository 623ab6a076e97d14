//! The catalog: tools with a shared or per-agent credential, a usage guide with versions.

use secrecy::{ExposeSecret, SecretString};
use serde_json::json;

use super::actor::{AdminCtx, Permission};
use super::validate::{Check, limits};
use super::{is_uuid, new_id, normalize, suggestions};
use crate::model::{AuthType, CredentialMode, OrgId, ToolCreated, ToolId, ToolView};
use crate::server::audit::{self, AuditEntry};
use crate::server::crypto::Slot;
use crate::server::events::EventKind;
use crate::server::store::{
    self, Tx,
    tools::{GuideVersionRow, ToolRow},
};
use crate::server::{ServiceError, ServiceResult, Services, clock};

mod guide;

pub(crate) use guide::{check_guide, save_guide};
pub use guide::{guide_history, restore_guide, update_guide};

/// Input for creating a tool.
pub struct NewTool {
    pub name: String,
    pub description: String,
    pub url: Option<String>,
    pub auth_type: AuthType,
    pub credential_mode: CredentialMode,
    pub credential: Option<SecretString>,
    pub credential_expires_at: Option<i64>,
    pub instructions: String,
    /// The suggestion this tool answers (its backers get pending requests).
    pub source_suggestion_id: Option<String>,
}

impl NewTool {
    /// An API-key tool with one shared secret and an empty guide.
    pub fn shared(name: &str, description: &str, secret: &str) -> Self {
        NewTool {
            name: name.to_owned(),
            description: description.to_owned(),
            url: None,
            auth_type: AuthType::ApiKey,
            credential_mode: CredentialMode::Shared,
            credential: Some(SecretString::from(secret.to_owned())),
            credential_expires_at: None,
            instructions: String::new(),
            source_suggestion_id: None,
        }
    }
}

/// The slot a tool's shared secret is sealed into.
pub fn credential_slot<'a>(org_id: &'a str, tool_id: &'a str) -> Slot<'a> {
    Slot {
        org_id,
        table: "tools",
        row_id: tool_id,
        column: "credential_blob",
    }
}

pub(crate) fn view(row: ToolRow) -> ToolView {
    ToolView {
        auth_type: row.auth_type,
        credential_mode: row.credential_mode,
        credential_configured: row.credential_blob.is_some(),
        id: row.id.into(),
        config_key: row.config_key,
        name: row.name,
        description: row.description,
        url: row.url,
        credential_version: row.credential_version,
        credential_rotated_at: clock::iso_opt(row.credential_rotated_at),
        credential_expires_at: clock::iso_opt(row.credential_expires_at),
        instructions: row.instructions,
        instructions_version: row.instructions_version,
        approvals_required: row.approvals_required,
        created_at: clock::iso(row.created_at),
    }
}

fn not_found() -> ServiceError {
    ServiceError::not_found(
        "Tool not found.",
        "List tools with `agentkey tool list` to find its id.",
    )
}

pub(crate) async fn load(svc: &Services, ctx: &AdminCtx, id: &str) -> ServiceResult<ToolRow> {
    let id = &ToolId::parse(id).ok_or_else(not_found)?;
    store::tools::find_tool(svc.store.reader(), &ctx.org_id, id)
        .await?
        .ok_or_else(not_found)
}

fn check_secret(check: &mut Check, field: &str, secret: &SecretString) {
    let text = secret.expose_secret();
    if text.trim().is_empty() {
        check.fail(field, "is required");
    } else if text.chars().count() > limits::SECRET {
        check.fail(
            field,
            format!("must be at most {} characters", limits::SECRET),
        );
    }
}

/// Creates a tool; pending suggestions with the same identity are resolved and their
/// backers get pending requests, all in one transaction.
pub async fn create(svc: &Services, ctx: &AdminCtx, input: NewTool) -> ServiceResult<ToolCreated> {
    let prepared = prepare(svc, ctx, input).await?;
    let mut tx = svc.store.begin().await?;
    let mut entries = Vec::new();
    let (row, outcome) = insert_in(&mut tx, ctx, prepared, &mut entries).await?;
    audit::append(&mut tx, svc.store.heads(), &entries).await?;
    tx.commit().await?;
    svc.events.publish(&ctx.org_id, EventKind::ToolChanged);
    if !outcome.opened.is_empty() {
        svc.events.publish(&ctx.org_id, EventKind::RequestChanged);
    }
    Ok(ToolCreated {
        tool: view(row),
        resolved_suggestions: outcome.resolved.into_iter().map(Into::into).collect(),
        opened_requests: outcome.opened,
    })
}

/// A new tool that passed validation, its secret already sealed: ready to be written.
pub(crate) struct PreparedTool {
    row: ToolRow,
    source_suggestion_id: Option<String>,
}

/// Validates a new tool and seals its secret, before any transaction is open.
pub(crate) async fn prepare(
    svc: &Services,
    ctx: &AdminCtx,
    input: NewTool,
) -> ServiceResult<PreparedTool> {
    ctx.require(Permission::ManageTools)?;
    let mut check = Check::new();
    let name = check.text("name", &input.name, limits::NAME, false);
    let description = check
        .optional(
            "description",
            Some(&input.description),
            limits::DESCRIPTION,
            true,
        )
        .unwrap_or_default();
    let instructions = check
        .optional(
            "instructions",
            Some(&input.instructions),
            limits::INSTRUCTIONS,
            true,
        )
        .unwrap_or_default();
    let url = match input.url.as_deref().map(normalize::url).transpose() {
        Ok(u) => u.flatten(),
        Err(message) => {
            check.fail("url", message);
            None
        }
    };
    if input
        .url
        .as_deref()
        .is_some_and(|u| u.chars().count() > limits::URL)
    {
        check.fail("url", format!("must be at most {} characters", limits::URL));
    }
    if let Some(secret) = &input.credential {
        if input.credential_mode == CredentialMode::PerAgent {
            check.fail(
                "credential",
                "per-agent tools take their secret when each request is approved",
            );
        } else {
            check_secret(&mut check, "credential", secret);
        }
    }
    if let Some(id) = &input.source_suggestion_id
        && !is_uuid(id)
    {
        check.fail("source_suggestion_id", "must be a suggestion id");
    }
    check.finish("Fix the listed fields and try again.")?;

    let now = clock::now_ms();
    let tool_id = ToolId::generate();
    let blob = match &input.credential {
        Some(secret) => {
            Some(super::keys::seal(svc, credential_slot(&ctx.org_id, &tool_id), secret).await?)
        }
        None => None,
    };
    let row = ToolRow {
        id: tool_id,
        organization_id: ctx.org_id.clone(),
        config_key: String::new(),
        normalized_name: normalize::name(&name),
        name,
        description,
        domain: url.as_ref().map(|u| u.domain.clone()),
        url: url.map(|u| u.url),
        auth_type: input.auth_type,
        credential_mode: input.credential_mode,
        credential_version: i64::from(blob.is_some()),
        credential_rotated_at: blob.as_ref().map(|_| now),
        credential_blob: blob,
        credential_expires_at: input.credential_expires_at,
        instructions_version: 1,
        instructions,
        created_by: ctx.actor.label.clone(),
        created_at: now,
        updated_at: now,
        approvals_required: 1,
    };
    Ok(PreparedTool {
        row,
        source_suggestion_id: input.source_suggestion_id,
    })
}

/// Writes a prepared tool inside `tx`: the row, its first guide version, and the suggestions it
/// answers (their backers get pending requests). Adds its audit entries to `entries`.
pub(crate) async fn insert_in(
    tx: &mut Tx,
    ctx: &AdminCtx,
    prepared: PreparedTool,
    entries: &mut Vec<AuditEntry>,
) -> ServiceResult<(ToolRow, suggestions::Resolution)> {
    let PreparedTool {
        mut row,
        source_suggestion_id,
    } = prepared;
    row.config_key = unique_config_key(tx, &ctx.org_id, &row.name).await?;
    store::tools::insert_tool(tx, &row).await?;
    store::tools::insert_guide_version(
        tx,
        &ctx.org_id,
        &guide_row(
            &row.id,
            1,
            &row.instructions,
            "tool_create",
            ctx,
            row.created_at,
        ),
    )
    .await?;
    entries.push(
        AuditEntry::new(&ctx.org_id, &ctx.actor, &ctx.meta, "tool.created")
            .target("tool", &row.id)
            .tool(&row.id)
            .meta(json!({
                "name": row.name, "auth_type": row.auth_type, "credential_mode": row.credential_mode,
                "credential_configured": row.credential_blob.is_some(), "url": row.url,
            })),
    );
    let mut outcome = suggestions::resolve_for_tool(
        tx,
        ctx,
        &row,
        source_suggestion_id.as_deref(),
        row.created_at,
    )
    .await?;
    entries.append(&mut outcome.audit);
    Ok((row, outcome))
}

async fn unique_config_key(tx: &mut Tx, org_id: &OrgId, name: &str) -> ServiceResult<String> {
    let base = normalize::slug(name);
    let mut key = base.clone();
    let mut n = 2;
    while store::tools::config_key_taken(&mut **tx, org_id, &key).await? {
        key = format!("{base}-{n}");
        n += 1;
    }
    Ok(key)
}

fn guide_row(
    tool_id: &ToolId,
    version: i64,
    text: &str,
    source: &str,
    ctx: &AdminCtx,
    now: i64,
) -> GuideVersionRow {
    GuideVersionRow {
        id: new_id(),
        tool_id: tool_id.clone(),
        version,
        instructions: text.to_owned(),
        source: source.to_owned(),
        created_by: ctx.actor.label.clone(),
        created_at: now,
    }
}

/// Renames a tool or changes its description or URL. The secret, mode and guide are untouched.
pub async fn update_details(
    svc: &Services,
    ctx: &AdminCtx,
    id: &str,
    name: &str,
    description: &str,
    url: &str,
) -> ServiceResult<ToolView> {
    ctx.require(Permission::ManageTools)?;
    let mut row = load(svc, ctx, id).await?;
    let details = check_details(name, description, url)?;
    let mut tx = svc.store.begin().await?;
    let mut entries = Vec::new();
    details_in(&mut tx, ctx, &mut row, details, &mut entries).await?;
    audit::append(&mut tx, svc.store.heads(), &entries).await?;
    tx.commit().await?;
    // Fetch plans carry the tool's name: drop them so the next fetch reads the new one.
    svc.vend_cache.clear();
    svc.events.publish(&ctx.org_id, EventKind::ToolChanged);
    get(svc, ctx, &row.id).await
}

/// A tool's name, description and URL after validation.
pub(crate) struct Details {
    name: String,
    description: String,
    url: Option<normalize::NormalUrl>,
}

/// Validates new details for a tool, before any transaction is open.
pub(crate) fn check_details(name: &str, description: &str, url: &str) -> ServiceResult<Details> {
    let mut check = Check::new();
    let name = check.text("name", name, limits::NAME, false);
    let description = check
        .optional("description", Some(description), limits::DESCRIPTION, true)
        .unwrap_or_default();
    let url = Some(url.trim()).filter(|u| !u.is_empty());
    if url.is_some_and(|u| u.chars().count() > limits::URL) {
        check.fail("url", format!("must be at most {} characters", limits::URL));
    }
    let url = match url.map(normalize::url).transpose() {
        Ok(u) => u.flatten(),
        Err(message) => {
            check.fail("url", message);
            None
        }
    };
    check.finish("Fix the listed fields and try again.")?;
    Ok(Details {
        name,
        description,
        url,
    })
}

/// Writes new details of `row` inside `tx` and into `row`; adds the audit entry to `entries`.
pub(crate) async fn details_in(
    tx: &mut Tx,
    ctx: &AdminCtx,
    row: &mut ToolRow,
    details: Details,
    entries: &mut Vec<AuditEntry>,
) -> ServiceResult<()> {
    let Details {
        name,
        description,
        url,
    } = details;
    let normalized = normalize::name(&name);
    let update = store::tools::ToolDetails {
        name: &name,
        normalized_name: &normalized,
        description: &description,
        url: url.as_ref().map(|u| u.url.as_str()),
        domain: url.as_ref().map(|u| u.domain.as_str()),
    };
    store::tools::update_tool_details(tx, &row.id, &update, clock::now_ms()).await?;
    entries.push(
        AuditEntry::new(&ctx.org_id, &ctx.actor, &ctx.meta, "tool.updated")
            .target("tool", &row.id)
            .tool(&row.id)
            .meta(json!({
                "from": { "name": row.name, "description": row.description, "url": row.url },
                "to": { "name": update.name, "description": update.description, "url": update.url },
            })),
    );
    row.normalized_name = normalized;
    row.description = description;
    row.domain = url.as_ref().map(|u| u.domain.clone());
    row.url = url.map(|u| u.url);
    row.name = name;
    Ok(())
}

/// Every tool of the organization, newest first. Never includes a secret.
pub async fn list(svc: &Services, ctx: &AdminCtx) -> ServiceResult<Vec<ToolView>> {
    ctx.require(Permission::ReadAll)?;
    Ok(store::tools::list_tools(svc.store.reader(), &ctx.org_id)
        .await?
        .into_iter()
        .map(view)
        .collect())
}

/// One tool.
pub async fn get(svc: &Services, ctx: &AdminCtx, id: &str) -> ServiceResult<ToolView> {
    ctx.require(Permission::ReadAll)?;
    load(svc, ctx, id).await.map(view)
}

/// Sets or rotates a shared tool's secret; agents get the new one on their next fetch.
pub async fn set_credential(
    svc: &Services,
    ctx: &AdminCtx,
    id: &str,
    secret: SecretString,
    expires_at: Option<i64>,
) -> ServiceResult<ToolView> {
    ctx.require(Permission::ManageCredentials)?;
    let mut check = Check::new();
    check_secret(&mut check, "credential", &secret);
    check.finish("Provide the new secret (at most 16 384 characters).")?;
    let mut row = load(svc, ctx, id).await?;
    if row.credential_mode != CredentialMode::Shared {
        return Err(ServiceError::conflict(
            "This tool uses per-agent credentials.",
            "Set each agent's secret when approving its request, or replace it with `agentkey request set-credential`.",
        ));
    }
    let now = clock::now_ms();
    let blob = super::keys::seal(svc, credential_slot(&ctx.org_id, &row.id), &secret).await?;
    let version = row.credential_version + 1;
    let mut tx = svc.store.begin().await?;
    store::tools::update_tool_credential(&mut tx, &row.id, &blob, version, expires_at, now).await?;
    let action = if row.credential_blob.is_some() {
        "tool.credential_rotated"
    } else {
        "tool.credential_set"
    };
    let entry = AuditEntry::new(&ctx.org_id, &ctx.actor, &ctx.meta, action)
        .target("tool", &row.id)
        .tool(&row.id)
        .meta(json!({ "name": row.name, "credential_version": version, "expires_at": clock::iso_opt(expires_at) }));
    audit::append(&mut tx, svc.store.heads(), &[entry]).await?;
    tx.commit().await?;
    svc.vend_cache.clear();
    svc.events.publish(&ctx.org_id, EventKind::ToolChanged);
    row.credential_blob = Some(blob);
    row.credential_version = version;
    row.credential_rotated_at = Some(now);
    row.credential_expires_at = expires_at;
    Ok(view(row))
}

/// Counts of what a delete affects: (live grants, pending requests).
pub async fn delete_impact(svc: &Services, ctx: &AdminCtx, id: &str) -> ServiceResult<(i64, i64)> {
    ctx.require(Permission::ReadAll)?;
    let row = load(svc, ctx, id).await?;
    Ok(store::requests::count_live_for_tool(svc.store.reader(), &row.id, clock::now_ms()).await?)
}

/// Deletes a tool with its grants, requests and guide; every agent loses access at once.
pub async fn delete(svc: &Services, ctx: &AdminCtx, id: &str) -> ServiceResult<(i64, i64)> {
    ctx.require(Permission::ManageTools)?;
    let row = load(svc, ctx, id).await?;
    let mut tx = svc.store.begin().await?;
    let (approved, pending) =
        store::requests::count_live_for_tool(&mut *tx, &row.id, clock::now_ms()).await?;
    store::tools::delete_tool(&mut tx, &row.id).await?;
    let entry = AuditEntry::new(&ctx.org_id, &ctx.actor, &ctx.meta, "tool.deleted")
        .target("tool", &row.id)
        .tool(&row.id)
        .meta(json!({ "name": row.name, "approved_revoked": approved, "pending_closed": pending }));
    audit::append(&mut tx, svc.store.heads(), &[entry]).await?;
    tx.commit().await?;
    svc.vend_cache.clear();
    svc.events.publish(&ctx.org_id, EventKind::ToolChanged);
    Ok((approved, pending))
}

/// Sets the tool's quorum: how many distinct reviewers must approve each request (1–3).
/// Pending requests are judged by the new number at their next approval.
pub async fn set_approvals_required(
    svc: &Services,
    ctx: &AdminCtx,
    id: &str,
    n: i64,
) -> ServiceResult<ToolView> {
    ctx.require(Permission::ManageTools)?;
    if !(1..=3).contains(&n) {
        let mut check = Check::new();
        check.fail("approvals_required", "must be 1, 2 or 3");
        check.finish("Pick how many different reviewers must approve each request.")?;
    }
    let row = load(svc, ctx, id).await?;
    let mut tx = svc.store.begin().await?;
    store::tools::set_approvals_required(&mut tx, &ctx.org_id, &row.id, n, clock::now_ms()).await?;
    let entry = AuditEntry::new(&ctx.org_id, &ctx.actor, &ctx.meta, "tool.quorum_changed")
        .target("tool", &row.id)
        .tool(&row.id)
        .meta(json!({ "tool_name": row.name, "from": row.approvals_required, "to": n }));
    audit::append(&mut tx, svc.store.heads(), &[entry]).await?;
    tx.commit().await?;
    svc.events.publish(&ctx.org_id, EventKind::ToolChanged);
    get(svc, ctx, id).await
}
