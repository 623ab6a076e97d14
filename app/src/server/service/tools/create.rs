//! Adding a tool: validation and sealing first, then the writes, so that a catalog import can
//! validate everything before its one transaction.

use secrecy::SecretString;
use serde_json::json;

use super::{check_secret, credential_slot, guide_row, view};
use crate::model::{AuthType, CredentialMode, Delivery, OrgId, ProxySettings, ToolCreated, ToolId};
use crate::server::audit::{self, AuditEntry};
use crate::server::events::EventKind;
use crate::server::service::actor::{AdminCtx, Permission};
use crate::server::service::validate::{Check, limits};
use crate::server::service::{is_uuid, normalize, suggestions};
use crate::server::store::{self, StoreError, Tx, tools::ToolRow};
use crate::server::{ServiceResult, Services};

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
    /// `None`: proxy when an upstream is given, else fetch.
    pub delivery: Option<Delivery>,
    pub proxy: ProxySettings,
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
            delivery: None,
            proxy: ProxySettings::default(),
        }
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
    let proxy = super::check_proxy(svc, &mut check, input.delivery, &input.proxy).await;
    check.finish("Fix the listed fields and try again.")?;
    let Some(proxy) = proxy else {
        return Err(crate::server::ServiceError::Internal(anyhow::anyhow!(
            "proxy settings failed without a field error"
        )));
    };

    let now = svc.clock.now_ms();
    let tool_id = ToolId::generate();
    let blob = match &input.credential {
        Some(secret) => Some(
            // The tool's first secret: version 1, as recorded below.
            crate::server::service::keys::seal(
                svc,
                credential_slot(&ctx.org_id, &tool_id, 1),
                secret,
            )
            .await?,
        ),
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
        delivery: proxy.delivery,
        upstream_url: proxy.upstream_url,
        inject_rule: proxy.inject_rule,
        allow_rules: proxy.allow_rules,
        calls_per_day: proxy.calls_per_day,
        proxy_version: 0,
        max_duration: None,
        default_duration: None,
        always_human: 0,
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
    super::refuse_taken_name(tx, &ctx.org_id, &row.normalized_name, None).await?;
    row.config_key = unique_config_key(tx, &ctx.org_id, &row.name).await?;
    match store::tools::insert_tool(tx, &row).await {
        // Another write took the name between the check and the insert.
        Err(StoreError::Unique) => return Err(super::name_raced()),
        inserted => inserted?,
    }
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
                "delivery": row.delivery, "upstream_url": row.upstream_url,
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
