//! Catalog tools and usage-guide versions.

use crate::model::{AuthType, CredentialMode, Delivery, GrantDuration, OrgId, ToolId};
use sqlx::{AnyExecutor, FromRow};

use super::{StoreResult, Tx};

/// A `tools` row. `credential_blob` is ciphertext; the row type never leaves the server.
#[derive(Clone, Debug, FromRow)]
pub struct ToolRow {
    pub id: ToolId,
    pub organization_id: OrgId,
    pub config_key: String,
    pub name: String,
    pub normalized_name: String,
    pub description: String,
    pub url: Option<String>,
    pub domain: Option<String>,
    pub auth_type: AuthType,
    pub credential_mode: CredentialMode,
    pub credential_blob: Option<String>,
    pub credential_version: i64,
    pub credential_rotated_at: Option<i64>,
    pub credential_expires_at: Option<i64>,
    pub instructions: String,
    pub instructions_version: i64,
    pub created_by: String,
    pub created_at: i64,
    pub updated_at: i64,
    pub approvals_required: i64,
    pub delivery: Delivery,
    pub upstream_url: Option<String>,
    pub inject_rule: Option<String>,
    /// One `METHOD /path-pattern` per line.
    pub allow_rules: String,
    pub calls_per_day: Option<i64>,
    pub proxy_version: i64,
    /// The longest grant an approval may give, and the length used when the agent asks for
    /// none (see the lifecycle migration).
    pub max_duration: Option<GrantDuration>,
    pub default_duration: Option<GrantDuration>,
    /// Never approved by an auto-approval rule (see the auto-approval migration).
    pub always_human: i64,
}

const COLUMNS: &str = "id, organization_id, config_key, name, normalized_name, description, url, domain, auth_type, \
                       credential_mode, credential_blob, credential_version, credential_rotated_at, \
                       credential_expires_at, instructions, instructions_version, created_by, created_at, updated_at, approvals_required, \
                       delivery, upstream_url, inject_rule, allow_rules, calls_per_day, proxy_version, max_duration, default_duration, always_human";

#[tracing::instrument(skip_all, fields(tool_id = %row.id))]
pub async fn insert_tool(tx: &mut Tx, row: &ToolRow) -> StoreResult<()> {
    sqlx::query(&format!(
        "INSERT INTO tools ({COLUMNS}) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15, $16, $17, $18, $19, $20, $21, $22, $23, $24, $25, $26, $27, $28, $29)"
    ))
    .bind(&row.id)
    .bind(&row.organization_id)
    .bind(&row.config_key)
    .bind(&row.name)
    .bind(&row.normalized_name)
    .bind(&row.description)
    .bind(&row.url)
    .bind(&row.domain)
    .bind(row.auth_type)
    .bind(row.credential_mode)
    .bind(&row.credential_blob)
    .bind(row.credential_version)
    .bind(row.credential_rotated_at)
    .bind(row.credential_expires_at)
    .bind(&row.instructions)
    .bind(row.instructions_version)
    .bind(&row.created_by)
    .bind(row.created_at)
    .bind(row.updated_at)
    .bind(row.approvals_required)
    .bind(row.delivery)
    .bind(&row.upstream_url)
    .bind(&row.inject_rule)
    .bind(&row.allow_rules)
    .bind(row.calls_per_day)
    .bind(row.proxy_version)
    .bind(row.max_duration)
    .bind(row.default_duration)
    .bind(row.always_human)
    .execute(&mut **tx)
    .await
    .map(|_| ())
    .map_err(Into::into)
}

#[tracing::instrument(skip_all, fields(org_id = %org_id, id = %id))]
pub async fn find_tool(
    ex: impl AnyExecutor<'_>,
    org_id: &OrgId,
    id: &ToolId,
) -> StoreResult<Option<ToolRow>> {
    sqlx::query_as(&format!(
        "SELECT {COLUMNS} FROM tools WHERE organization_id = $1 AND id = $2"
    ))
    .bind(org_id)
    .bind(id)
    .fetch_optional(ex)
    .await
    .map_err(Into::into)
}

#[tracing::instrument(skip_all, fields(org_id = %org_id))]
pub async fn list_tools(ex: impl AnyExecutor<'_>, org_id: &OrgId) -> StoreResult<Vec<ToolRow>> {
    sqlx::query_as(&format!(
        "SELECT {COLUMNS} FROM tools WHERE organization_id = $1 ORDER BY created_at DESC, id DESC"
    ))
    .bind(org_id)
    .fetch_all(ex)
    .await
    .map_err(Into::into)
}

/// The organization's tool with this normalized name (names are unique by it).
#[tracing::instrument(skip_all, fields(org_id = %org_id))]
pub async fn find_tool_by_normalized_name(
    ex: impl AnyExecutor<'_>,
    org_id: &OrgId,
    normalized_name: &str,
) -> StoreResult<Option<ToolRow>> {
    sqlx::query_as(&format!(
        "SELECT {COLUMNS} FROM tools WHERE organization_id = $1 AND normalized_name = $2"
    ))
    .bind(org_id)
    .bind(normalized_name)
    .fetch_optional(ex)
    .await
    .map_err(Into::into)
}

/// Tools whose identity matches a suggestion: the same domain when both have one, otherwise
/// the same normalized name (so a catalog tool without a URL is still found by name).
#[tracing::instrument(skip_all, fields(org_id = %org_id))]
pub async fn find_tools_matching(
    ex: impl AnyExecutor<'_>,
    org_id: &OrgId,
    normalized_name: &str,
    domain: Option<&str>,
) -> StoreResult<Vec<ToolRow>> {
    sqlx::query_as(&format!(
        "SELECT {COLUMNS} FROM tools WHERE organization_id = $1 \
         AND ((domain IS NOT NULL AND domain = $3) OR ((domain IS NULL OR $3 IS NULL) AND normalized_name = $2)) \
         ORDER BY created_at, id"
    ))
    .bind(org_id)
    .bind(normalized_name)
    .bind(domain)
    .fetch_all(ex)
    .await
    .map_err(Into::into)
}

#[tracing::instrument(skip_all, fields(org_id = %org_id))]
pub async fn config_key_taken(
    ex: impl AnyExecutor<'_>,
    org_id: &OrgId,
    key: &str,
) -> StoreResult<bool> {
    let n: i64 = sqlx::query_scalar(
        "SELECT COUNT(*) FROM tools WHERE organization_id = $1 AND config_key = $2",
    )
    .bind(org_id)
    .bind(key)
    .fetch_one(ex)
    .await?;
    Ok(n > 0)
}

#[tracing::instrument(skip_all, fields(id = %id))]
pub async fn update_tool_credential(
    tx: &mut Tx,
    id: &ToolId,
    blob: &str,
    version: i64,
    expires_at: Option<i64>,
    now: i64,
) -> StoreResult<bool> {
    // Only over the version the blob was sealed after: two rotations at once cannot both
    // write the same version with different secrets.
    let done = sqlx::query(
        "UPDATE tools SET credential_blob = $2, credential_version = $3, credential_rotated_at = $4, \
         credential_expires_at = $5, updated_at = $4 WHERE id = $1 AND credential_version = $3 - 1",
    )
    .bind(id)
    .bind(blob)
    .bind(version)
    .bind(now)
    .bind(expires_at)
    .execute(&mut **tx)
    .await?;
    Ok(done.rows_affected() == 1)
}

#[tracing::instrument(skip_all, fields(id = %id))]
pub async fn update_tool_guide(
    tx: &mut Tx,
    id: &ToolId,
    instructions: &str,
    version: i64,
    now: i64,
) -> StoreResult<()> {
    sqlx::query("UPDATE tools SET instructions = $2, instructions_version = $3, updated_at = $4 WHERE id = $1")
        .bind(id)
        .bind(instructions)
        .bind(version)
        .bind(now)
        .execute(&mut **tx)
        .await
        .map(|_| ())
        .map_err(Into::into)
}

/// New name, description and URL (with the identity columns derived from them).
pub struct ToolDetails<'a> {
    pub name: &'a str,
    pub normalized_name: &'a str,
    pub description: &'a str,
    pub url: Option<&'a str>,
    pub domain: Option<&'a str>,
}

#[tracing::instrument(skip_all, fields(id = %id))]
pub async fn update_tool_details(
    tx: &mut Tx,
    id: &ToolId,
    d: &ToolDetails<'_>,
    now: i64,
) -> StoreResult<()> {
    sqlx::query(
        "UPDATE tools SET name = $2, normalized_name = $3, description = $4, url = $5, domain = $6, updated_at = $7 \
         WHERE id = $1",
    )
    .bind(id)
    .bind(d.name)
    .bind(d.normalized_name)
    .bind(d.description)
    .bind(d.url)
    .bind(d.domain)
    .bind(now)
    .execute(&mut **tx)
    .await
    .map(|_| ())
    .map_err(Into::into)
}

/// A tool's delivery and proxy settings.
pub struct ProxyColumns<'a> {
    pub delivery: Delivery,
    pub upstream_url: Option<&'a str>,
    pub inject_rule: Option<&'a str>,
    pub allow_rules: &'a str,
    pub calls_per_day: Option<i64>,
}

/// Writes new proxy settings over `version` (the `proxy_version` they were read at); false
/// when someone else changed them first.
#[tracing::instrument(skip_all, fields(id = %id))]
pub async fn update_tool_proxy(
    tx: &mut Tx,
    id: &ToolId,
    p: &ProxyColumns<'_>,
    version: i64,
    now: i64,
) -> StoreResult<bool> {
    let done = sqlx::query(
        "UPDATE tools SET delivery = $2, upstream_url = $3, inject_rule = $4, allow_rules = $5, calls_per_day = $6, \
         proxy_version = $7 + 1, updated_at = $8 WHERE id = $1 AND proxy_version = $7",
    )
    .bind(id)
    .bind(p.delivery)
    .bind(p.upstream_url)
    .bind(p.inject_rule)
    .bind(p.allow_rules)
    .bind(p.calls_per_day)
    .bind(version)
    .bind(now)
    .execute(&mut **tx)
    .await?;
    Ok(done.rows_affected() == 1)
}

#[tracing::instrument(skip_all, fields(id = %id))]
pub async fn delete_tool(tx: &mut Tx, id: &ToolId) -> StoreResult<()> {
    sqlx::query("DELETE FROM tools WHERE id = $1")
        .bind(id)
        .execute(&mut **tx)
        .await
        .map(|_| ())
        .map_err(Into::into)
}

/// A `guide_versions` row.
#[derive(Clone, Debug, FromRow)]
pub struct GuideVersionRow {
    pub id: String,
    pub tool_id: ToolId,
    pub version: i64,
    pub instructions: String,
    pub source: String,
    pub created_by: String,
    pub created_at: i64,
}

#[tracing::instrument(skip_all, fields(org_id = %org_id))]
pub async fn insert_guide_version(
    tx: &mut Tx,
    org_id: &OrgId,
    row: &GuideVersionRow,
) -> StoreResult<()> {
    sqlx::query(
        "INSERT INTO guide_versions (id, organization_id, tool_id, version, instructions, source, created_by, created_at) \
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8)",
    )
    .bind(&row.id)
    .bind(org_id)
    .bind(&row.tool_id)
    .bind(row.version)
    .bind(&row.instructions)
    .bind(&row.source)
    .bind(&row.created_by)
    .bind(row.created_at)
    .execute(&mut **tx)
    .await
    .map(|_| ())
    .map_err(Into::into)
}

#[tracing::instrument(skip_all, fields(tool_id = %tool_id))]
pub async fn list_guide_versions(
    ex: impl AnyExecutor<'_>,
    tool_id: &ToolId,
) -> StoreResult<Vec<GuideVersionRow>> {
    sqlx::query_as(
        "SELECT id, tool_id, version, instructions, source, created_by, created_at FROM guide_versions \
         WHERE tool_id = $1 ORDER BY version DESC",
    )
    .bind(tool_id)
    .fetch_all(ex)
    .await
    .map_err(Into::into)
}

#[tracing::instrument(skip_all, fields(tool_id = %tool_id))]
pub async fn find_guide_version(
    ex: impl AnyExecutor<'_>,
    tool_id: &ToolId,
    version: i64,
) -> StoreResult<Option<GuideVersionRow>> {
    sqlx::query_as(
        "SELECT id, tool_id, version, instructions, source, created_by, created_at FROM guide_versions \
         WHERE tool_id = $1 AND version = $2",
    )
    .bind(tool_id)
    .bind(version)
    .fetch_optional(ex)
    .await
    .map_err(Into::into)
}

/// Sets how many distinct reviewers must approve requests for a tool.
#[tracing::instrument(skip_all, fields(org_id = %org_id, id = %id))]
pub async fn set_approvals_required(
    tx: &mut Tx,
    org_id: &OrgId,
    id: &ToolId,
    n: i64,
    now: i64,
) -> StoreResult<bool> {
    let done = sqlx::query("UPDATE tools SET approvals_required = $3, updated_at = $4 WHERE organization_id = $1 AND id = $2")
        .bind(org_id)
        .bind(id)
        .bind(n)
        .bind(now)
        .execute(&mut **tx)
        .await?;
    Ok(done.rows_affected() == 1)
}
