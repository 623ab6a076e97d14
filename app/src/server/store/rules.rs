//! A tool's approval policy: its auto-approval rules, whether it always needs a human, and
//! how long its grants may last.

use sqlx::{AnyExecutor, FromRow};

use super::{StoreResult, Tx};
use crate::model::{GrantDuration, OrgId, ToolId};

#[derive(Clone, Debug, FromRow)]
pub struct RuleRow {
    pub id: String,
    pub organization_id: OrgId,
    pub tool_id: ToolId,
    pub tool_name: String,
    /// Space-separated; every one must be on the agent.
    pub labels: String,
    pub max_duration: GrantDuration,
    pub read_only: i64,
    pub created_by: String,
    pub created_at: i64,
    pub always_human: i64,
    pub approvals_required: i64,
}

const SELECT: &str = "SELECT r.id, r.organization_id, r.tool_id, t.name AS tool_name, r.labels, r.max_duration, r.read_only, \
     r.created_by, r.created_at, t.always_human, t.approvals_required FROM auto_approval_rules r JOIN tools t ON t.id = r.tool_id";

pub async fn insert_rule(tx: &mut Tx, row: &RuleRow) -> StoreResult<()> {
    sqlx::query(
        "INSERT INTO auto_approval_rules (id, organization_id, tool_id, labels, max_duration, read_only, created_by, created_at) \
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8)",
    )
    .bind(&row.id)
    .bind(&row.organization_id)
    .bind(&row.tool_id)
    .bind(&row.labels)
    .bind(row.max_duration)
    .bind(row.read_only)
    .bind(&row.created_by)
    .bind(row.created_at)
    .execute(&mut **tx)
    .await?;
    Ok(())
}

/// The organization's rules, by tool name then age.
pub async fn list_rules(ex: impl AnyExecutor<'_>, org_id: &OrgId) -> StoreResult<Vec<RuleRow>> {
    Ok(sqlx::query_as(&format!(
        "{SELECT} WHERE r.organization_id = $1 ORDER BY t.name, r.created_at, r.id"
    ))
    .bind(org_id)
    .fetch_all(ex)
    .await?)
}

/// A tool's rules, oldest first (the first that matches decides).
pub async fn rules_for_tool(
    ex: impl AnyExecutor<'_>,
    tool_id: &ToolId,
) -> StoreResult<Vec<RuleRow>> {
    Ok(sqlx::query_as(&format!(
        "{SELECT} WHERE r.tool_id = $1 ORDER BY r.created_at, r.id"
    ))
    .bind(tool_id)
    .fetch_all(ex)
    .await?)
}

pub async fn find_rule(
    ex: impl AnyExecutor<'_>,
    org_id: &OrgId,
    id: &str,
) -> StoreResult<Option<RuleRow>> {
    Ok(sqlx::query_as(&format!(
        "{SELECT} WHERE r.organization_id = $1 AND r.id = $2"
    ))
    .bind(org_id)
    .bind(id)
    .fetch_optional(ex)
    .await?)
}

pub async fn delete_rule(tx: &mut Tx, org_id: &OrgId, id: &str) -> StoreResult<bool> {
    let done =
        sqlx::query("DELETE FROM auto_approval_rules WHERE organization_id = $1 AND id = $2")
            .bind(org_id)
            .bind(id)
            .execute(&mut **tx)
            .await?;
    Ok(done.rows_affected() == 1)
}

/// Marks a tool as always needing a human (rules then approve nothing for it).
pub async fn set_always_human(
    tx: &mut Tx,
    org_id: &OrgId,
    tool_id: &ToolId,
    on: bool,
    now: i64,
) -> StoreResult<bool> {
    let done = sqlx::query("UPDATE tools SET always_human = $3, updated_at = $4 WHERE organization_id = $1 AND id = $2")
        .bind(org_id)
        .bind(tool_id)
        .bind(i64::from(on))
        .bind(now)
        .execute(&mut **tx)
        .await?;
    Ok(done.rows_affected() == 1)
}

/// Sets a tool's grant durations (`max`, `default`); false when the tool is not there.
pub async fn set_durations(
    tx: &mut Tx,
    org_id: &OrgId,
    id: &ToolId,
    max: Option<GrantDuration>,
    default: Option<GrantDuration>,
    now: i64,
) -> StoreResult<bool> {
    let done = sqlx::query(
        "UPDATE tools SET max_duration = $3, default_duration = $4, updated_at = $5 WHERE organization_id = $1 AND id = $2",
    )
    .bind(org_id)
    .bind(id)
    .bind(max)
    .bind(default)
    .bind(now)
    .execute(&mut **tx)
    .await?;
    Ok(done.rows_affected() == 1)
}
