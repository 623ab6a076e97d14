//! Agents and their key hashes.

use crate::model::{AgentId, AgentStatus, OrgId};
use sqlx::{AnyExecutor, FromRow};

use super::{StoreResult, Tx};

/// An `agents` row. Holds the key hash, so it never leaves the server as-is.
#[derive(Clone, Debug, FromRow)]
pub struct AgentRow {
    pub id: AgentId,
    pub organization_id: OrgId,
    pub name: String,
    pub description: String,
    pub key_hash: String,
    pub key_prefix: String,
    pub status: AgentStatus,
    pub created_by: String,
    pub created_at: i64,
    pub updated_at: i64,
    pub last_used_at: Option<i64>,
    /// Space-separated `key:value` labels that auto-approval rules match (see the
    /// auto-approval migration); written on their own, so a new agent has none.
    #[sqlx(default)]
    pub labels: String,
}

const COLUMNS: &str = "id, organization_id, name, description, key_hash, key_prefix, status, created_by, \
                       created_at, updated_at, last_used_at";

/// The key agent names are unique by within an organization: trimmed, inner whitespace
/// collapsed, lower-case ("Deploy  Bot" and "deploy bot" are one name).
pub fn name_key(name: &str) -> String {
    name.split_whitespace()
        .collect::<Vec<_>>()
        .join(" ")
        .to_lowercase()
}

/// `StoreError::Unique` when the organization has an agent of the same name (any case).
#[tracing::instrument(skip_all, fields(agent_id = %row.id))]
pub async fn insert_agent(tx: &mut Tx, row: &AgentRow) -> StoreResult<()> {
    sqlx::query(&format!(
        "INSERT INTO agents ({COLUMNS}, name_key) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12)"
    ))
    .bind(&row.id)
    .bind(&row.organization_id)
    .bind(&row.name)
    .bind(&row.description)
    .bind(&row.key_hash)
    .bind(&row.key_prefix)
    .bind(row.status)
    .bind(&row.created_by)
    .bind(row.created_at)
    .bind(row.updated_at)
    .bind(row.last_used_at)
    .bind(name_key(&row.name))
    .execute(&mut **tx)
    .await
    .map(|_| ())
    .map_err(Into::into)
}

/// The organization's agent whose name is `name` in any case.
#[tracing::instrument(skip_all, fields(org_id = %org_id))]
pub async fn find_agent_by_name(
    ex: impl AnyExecutor<'_>,
    org_id: &OrgId,
    name: &str,
) -> StoreResult<Option<AgentRow>> {
    sqlx::query_as(&format!(
        "SELECT {COLUMNS}, labels FROM agents WHERE organization_id = $1 AND name_key = $2"
    ))
    .bind(org_id)
    .bind(name_key(name))
    .fetch_optional(ex)
    .await
    .map_err(Into::into)
}

#[tracing::instrument(skip_all, fields(org_id = %org_id, id = %id))]
pub async fn find_agent(
    ex: impl AnyExecutor<'_>,
    org_id: &OrgId,
    id: &AgentId,
) -> StoreResult<Option<AgentRow>> {
    sqlx::query_as(&format!(
        "SELECT {COLUMNS}, labels FROM agents WHERE organization_id = $1 AND id = $2"
    ))
    .bind(org_id)
    .bind(id)
    .fetch_optional(ex)
    .await
    .map_err(Into::into)
}

#[tracing::instrument(skip_all)]
pub async fn find_agent_by_key_hash(
    ex: impl AnyExecutor<'_>,
    key_hash: &str,
) -> StoreResult<Option<AgentRow>> {
    sqlx::query_as(&format!(
        "SELECT {COLUMNS}, labels FROM agents WHERE key_hash = $1"
    ))
    .bind(key_hash)
    .fetch_optional(ex)
    .await
    .map_err(Into::into)
}

#[tracing::instrument(skip_all, fields(org_id = %org_id))]
pub async fn list_agents(ex: impl AnyExecutor<'_>, org_id: &OrgId) -> StoreResult<Vec<AgentRow>> {
    sqlx::query_as(&format!(
        "SELECT {COLUMNS}, labels FROM agents WHERE organization_id = $1 ORDER BY created_at DESC, id DESC"
    ))
    .bind(org_id)
    .fetch_all(ex)
    .await
    .map_err(Into::into)
}

/// The organization's agents among `ids` (unknown ids and other organizations' are skipped).
#[tracing::instrument(skip_all, fields(org_id = %org_id, n = ids.len()))]
pub async fn list_agents_by_ids(
    ex: impl AnyExecutor<'_>,
    org_id: &OrgId,
    ids: &[AgentId],
) -> StoreResult<Vec<AgentRow>> {
    if ids.is_empty() {
        return Ok(Vec::new());
    }
    let sql = format!(
        "SELECT {COLUMNS}, labels FROM agents WHERE organization_id = $1 AND id IN ({})",
        super::placeholders(2, ids.len())
    );
    let mut query = sqlx::query_as::<_, AgentRow>(&sql).bind(org_id);
    for id in ids {
        query = query.bind(id);
    }
    query.fetch_all(ex).await.map_err(Into::into)
}

#[tracing::instrument(skip_all, fields(id = %id))]
pub async fn update_agent_key(
    tx: &mut Tx,
    id: &AgentId,
    key_hash: &str,
    key_prefix: &str,
    now: i64,
) -> StoreResult<()> {
    sqlx::query("UPDATE agents SET key_hash = $2, key_prefix = $3, updated_at = $4 WHERE id = $1")
        .bind(id)
        .bind(key_hash)
        .bind(key_prefix)
        .bind(now)
        .execute(&mut **tx)
        .await
        .map(|_| ())
        .map_err(Into::into)
}

/// Sets the status only if it differs; returns whether a row changed.
#[tracing::instrument(skip_all, fields(id = %id))]
pub async fn update_agent_status(
    tx: &mut Tx,
    id: &AgentId,
    status: AgentStatus,
    now: i64,
) -> StoreResult<bool> {
    let done = sqlx::query(
        "UPDATE agents SET status = $2, updated_at = $3 WHERE id = $1 AND status <> $2",
    )
    .bind(id)
    .bind(status)
    .bind(now)
    .execute(&mut **tx)
    .await?;
    Ok(done.rows_affected() == 1)
}

#[tracing::instrument(skip_all, fields(id = %id))]
pub async fn delete_agent(tx: &mut Tx, id: &AgentId) -> StoreResult<()> {
    sqlx::query("DELETE FROM agents WHERE id = $1")
        .bind(id)
        .execute(&mut **tx)
        .await
        .map(|_| ())
        .map_err(Into::into)
}

#[tracing::instrument(skip_all, fields(id = %id))]
pub async fn touch_agent(ex: impl AnyExecutor<'_>, id: &AgentId, now: i64) -> StoreResult<()> {
    sqlx::query("UPDATE agents SET last_used_at = $2 WHERE id = $1")
        .bind(id)
        .bind(now)
        .execute(ex)
        .await
        .map(|_| ())
        .map_err(Into::into)
}

/// Replaces an agent's labels; false when it is not there.
pub async fn set_labels(
    tx: &mut Tx,
    org_id: &OrgId,
    id: &AgentId,
    labels: &str,
    now: i64,
) -> StoreResult<bool> {
    let done = sqlx::query(
        "UPDATE agents SET labels = $3, updated_at = $4 WHERE organization_id = $1 AND id = $2",
    )
    .bind(org_id)
    .bind(id)
    .bind(labels)
    .bind(now)
    .execute(&mut **tx)
    .await?;
    Ok(done.rows_affected() == 1)
}
