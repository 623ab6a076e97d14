//! The catalog: tools with a shared or per-agent credential, a usage guide with versions.

use secrecy::{ExposeSecret, SecretString};
use serde_json::json;

use super::actor::{AdminCtx, Permission};
use super::new_id;
use super::validate::{Check, limits};
use crate::model::{CredentialMode, OrgId, ProxySettings, ToolHealth, ToolId, ToolView};
use crate::server::audit::{self, AuditEntry};
use crate::server::crypto::Slot;
use crate::server::events::EventKind;
use crate::server::store::{
    self, Tx,
    tools::{GuideVersionRow, ToolRow},
};
use crate::server::{ServiceError, ServiceResult, Services, clock};

mod create;
mod details;
mod draft;
mod durations;
mod guide;
mod proxy;
mod quorum;

pub use create::{NewTool, create};
pub(crate) use create::{PreparedTool, insert_in, prepare};
pub use details::update_details;
pub(crate) use details::{Details, check_details, details_in};
pub use draft::draft_guide;
pub use durations::set_durations;
pub(crate) use guide::{check_guide, save_guide};
pub use guide::{guide_history, restore_guide, update_guide};
pub(crate) use proxy::{CheckedProxy, check_proxy, proxy_in};
pub use proxy::{MAX_CALLS_PER_DAY, set_proxy};
pub use quorum::set_approvals_required;

/// The slot a tool's shared secret of `version` (its `credential_version`) is sealed into.
pub fn credential_slot<'a>(org_id: &'a str, tool_id: &'a str, version: i64) -> Slot<'a> {
    Slot {
        org_id,
        table: "tools",
        row_id: tool_id,
        column: "credential_blob",
        version,
    }
}

const DAY_MS: i64 = 86_400_000;
const ROTATE_AFTER_MS: i64 = ToolHealth::ROTATE_AFTER_DAYS * DAY_MS;
const EXPIRY_WARNING_MS: i64 = ToolHealth::EXPIRY_WARNING_DAYS * DAY_MS;

/// What needs attention about a tool's secret at `now`: a shared tool without one, one not
/// rotated for 90 days, one expiring within 14 days (or already expired).
pub fn health(row: &ToolRow, now: i64) -> Vec<ToolHealth> {
    let mut found = Vec::new();
    if row.credential_mode == CredentialMode::Shared && row.credential_blob.is_none() {
        found.push(ToolHealth::NoSecret);
    }
    if row
        .credential_rotated_at
        .is_some_and(|at| now - at > ROTATE_AFTER_MS)
    {
        found.push(ToolHealth::RotationDue);
    }
    if row
        .credential_expires_at
        .is_some_and(|at| at - now < EXPIRY_WARNING_MS)
    {
        found.push(ToolHealth::ExpiringSoon);
    }
    found
}

/// 409 when another tool of the organization has this name (names are unique by their
/// normalized form: "GitHub", "github" and "GitHub!" are one name). The message names it.
pub(crate) async fn refuse_taken_name(
    tx: &mut Tx,
    org_id: &OrgId,
    normalized_name: &str,
    except: Option<&ToolId>,
) -> ServiceResult<()> {
    match store::tools::find_tool_by_normalized_name(&mut **tx, org_id, normalized_name).await? {
        Some(existing) if Some(&existing.id) != except => Err(ServiceError::Conflict(
            crate::model::ErrorBody::new(format!(
                "A tool named \"{}\" already exists (id {}).",
                existing.name, existing.id
            ))
            .hint("Tool names are unique in the organization, whatever their case or punctuation: pick another name, or edit that tool.")
            .with("tool_id", existing.id.to_string())
            .with("tool_name", existing.name),
        )),
        _ => Ok(()),
    }
}

/// 409 when the name was taken between the check and the write.
pub(crate) fn name_raced() -> ServiceError {
    ServiceError::conflict(
        "A tool with this name was just added.",
        "Reload the catalog and pick another name.",
    )
}

pub(crate) fn view(row: ToolRow) -> ToolView {
    ToolView {
        health: health(&row, clock::now_ms()),
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
        delivery: row.delivery,
        proxy: ProxySettings {
            upstream_url: row.upstream_url,
            inject: row.inject_rule,
            allow: super::proxy::rules::lines(&row.allow_rules),
            calls_per_day: row.calls_per_day,
        },
        warning: None,
        max_duration: row.max_duration,
        default_duration: row.default_duration,
        always_human: row.always_human != 0,
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
    let now = svc.clock.now_ms();
    let version = row.credential_version + 1;
    let slot = credential_slot(&ctx.org_id, &row.id, version);
    let blob = super::keys::seal(svc, slot, &secret).await?;
    let mut tx = svc.store.begin().await?;
    if !store::tools::update_tool_credential(&mut tx, &row.id, &blob, version, expires_at, now)
        .await?
    {
        return Err(ServiceError::conflict(
            "The tool's secret changed meanwhile.",
            "Reload the tool and set the secret again.",
        ));
    }
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
    Ok(
        store::requests::count_live_for_tool(svc.store.reader(), &row.id, svc.clock.now_ms())
            .await?,
    )
}

/// Deletes a tool with its grants, requests and guide; every agent loses access at once.
pub async fn delete(svc: &Services, ctx: &AdminCtx, id: &str) -> ServiceResult<(i64, i64)> {
    ctx.require(Permission::ManageTools)?;
    let row = load(svc, ctx, id).await?;
    let mut tx = svc.store.begin().await?;
    let (approved, pending) =
        store::requests::count_live_for_tool(&mut *tx, &row.id, svc.clock.now_ms()).await?;
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::OrgId;

    fn tool(
        mode: CredentialMode,
        secret: bool,
        rotated: Option<i64>,
        expires: Option<i64>,
    ) -> ToolRow {
        ToolRow {
            id: ToolId::new("t"),
            organization_id: OrgId::new("o"),
            config_key: String::new(),
            name: "GitHub".into(),
            normalized_name: "github".into(),
            description: String::new(),
            url: None,
            domain: None,
            auth_type: crate::model::AuthType::ApiKey,
            credential_mode: mode,
            credential_blob: secret.then(|| "v1.k.x".to_owned()),
            credential_version: i64::from(secret),
            credential_rotated_at: rotated,
            credential_expires_at: expires,
            instructions: String::new(),
            instructions_version: 1,
            approvals_required: 1,
            created_by: "test".into(),
            created_at: 0,
            updated_at: 0,
            delivery: crate::model::Delivery::Fetch,
            upstream_url: None,
            inject_rule: None,
            allow_rules: String::new(),
            calls_per_day: None,
            proxy_version: 0,
            max_duration: None,
            default_duration: None,
            always_human: 0,
        }
    }

    #[test]
    fn health_names_a_missing_stale_or_expiring_secret() {
        let now = 1_000 * DAY_MS;
        let healthy = tool(CredentialMode::Shared, true, Some(now - DAY_MS), None);
        assert!(health(&healthy, now).is_empty());
        let missing = tool(CredentialMode::Shared, false, None, None);
        assert_eq!(health(&missing, now), [ToolHealth::NoSecret]);
        let per_agent = tool(CredentialMode::PerAgent, false, None, None);
        assert!(
            health(&per_agent, now).is_empty(),
            "per-agent secrets come with approvals"
        );
        let stale = tool(
            CredentialMode::Shared,
            true,
            Some(now - ROTATE_AFTER_MS - 1),
            None,
        );
        assert_eq!(health(&stale, now), [ToolHealth::RotationDue]);
        let expiring = tool(
            CredentialMode::Shared,
            true,
            Some(now),
            Some(now + 13 * DAY_MS),
        );
        assert_eq!(health(&expiring, now), [ToolHealth::ExpiringSoon]);
        let later = tool(
            CredentialMode::Shared,
            true,
            Some(now),
            Some(now + 15 * DAY_MS),
        );
        assert!(health(&later, now).is_empty());
    }
}
