//! Guide suggestions: facts agents learned about a tool, proposed for its usage guide; their
//! backers live in the shared supporter tables.

use sqlx::{AnyExecutor, FromRow};

use super::{StoreResult, Tx};
use crate::model::{OrgId, SuggestionId, SuggestionStatus, ToolId};

/// A `guide_suggestions` row with its tool's name.
#[derive(Clone, Debug, FromRow)]
pub struct GuideSuggestionRow {
    pub id: SuggestionId,
    pub organization_id: OrgId,
    pub tool_id: ToolId,
    pub tool_name: String,
    pub base_version: i64,
    pub learned: String,
    pub normalized_learned: String,
    pub status: SuggestionStatus,
    pub dismissal_reason: Option<String>,
    pub created_at: i64,
    /// The tool's guide now and its version.
    pub current_guide: String,
    pub current_version: i64,
}

const GS_SELECT: &str = "SELECT g.id, g.organization_id, g.tool_id, t.name AS tool_name, g.base_version, g.learned, \
     g.normalized_learned, g.status, g.dismissal_reason, g.created_at, t.instructions AS current_guide, \
     t.instructions_version AS current_version FROM guide_suggestions g JOIN tools t ON t.id = g.tool_id";

#[tracing::instrument(skip_all)]
pub async fn insert_guide_suggestion(
    tx: &mut Tx,
    row: &GuideSuggestionRow,
    now: i64,
) -> StoreResult<()> {
    sqlx::query(
        "INSERT INTO guide_suggestions (id, organization_id, tool_id, base_version, learned, normalized_learned, status, \
         created_at, updated_at) VALUES ($1, $2, $3, $4, $5, $6, 'pending', $7, $7)",
    )
    .bind(&row.id)
    .bind(&row.organization_id)
    .bind(&row.tool_id)
    .bind(row.base_version)
    .bind(&row.learned)
    .bind(&row.normalized_learned)
    .bind(now)
    .execute(&mut **tx)
    .await
    .map(|_| ())
    .map_err(Into::into)
}

#[tracing::instrument(skip_all, fields(org_id = %org_id, id = %id))]
pub async fn find_guide_suggestion(
    ex: impl AnyExecutor<'_>,
    org_id: &OrgId,
    id: &str,
) -> StoreResult<Option<GuideSuggestionRow>> {
    sqlx::query_as(&format!(
        "{GS_SELECT} WHERE g.organization_id = $1 AND g.id = $2"
    ))
    .bind(org_id)
    .bind(id)
    .fetch_optional(ex)
    .await
    .map_err(Into::into)
}

#[tracing::instrument(skip_all, fields(tool_id = %tool_id))]
pub async fn find_guide_suggestion_by_identity(
    ex: impl AnyExecutor<'_>,
    tool_id: &ToolId,
    base_version: i64,
    normalized_learned: &str,
) -> StoreResult<Option<GuideSuggestionRow>> {
    sqlx::query_as(&format!(
        "{GS_SELECT} WHERE g.tool_id = $1 AND g.base_version = $2 AND g.normalized_learned = $3"
    ))
    .bind(tool_id)
    .bind(base_version)
    .bind(normalized_learned)
    .fetch_optional(ex)
    .await
    .map_err(Into::into)
}

/// An accepted suggestion of the same fact for the tool, whatever guide version it was for.
#[tracing::instrument(skip_all, fields(tool_id = %tool_id))]
pub async fn find_accepted_guide_fact(
    ex: impl AnyExecutor<'_>,
    tool_id: &ToolId,
    normalized_learned: &str,
) -> StoreResult<Option<GuideSuggestionRow>> {
    sqlx::query_as(&format!(
        "{GS_SELECT} WHERE g.tool_id = $1 AND g.normalized_learned = $2 AND g.status = 'accepted' ORDER BY g.id DESC LIMIT 1"
    ))
    .bind(tool_id)
    .bind(normalized_learned)
    .fetch_optional(ex)
    .await
    .map_err(Into::into)
}

#[tracing::instrument(skip_all, fields(org_id = %org_id))]
pub async fn list_guide_suggestions(
    ex: impl AnyExecutor<'_>,
    org_id: &OrgId,
    status: SuggestionStatus,
) -> StoreResult<Vec<GuideSuggestionRow>> {
    sqlx::query_as(&format!(
        "{GS_SELECT} WHERE g.organization_id = $1 AND g.status = $2 ORDER BY g.id DESC"
    ))
    .bind(org_id)
    .bind(status)
    .fetch_all(ex)
    .await
    .map_err(Into::into)
}

/// Closes a pending guide suggestion; returns false if it was no longer pending.
#[tracing::instrument(skip_all, fields(id = %id))]
pub async fn close_guide_suggestion(
    tx: &mut Tx,
    id: &str,
    status: SuggestionStatus,
    reason: Option<&str>,
    accepted_version: Option<i64>,
    decided_by: &str,
    now: i64,
) -> StoreResult<bool> {
    let done = sqlx::query(
        "UPDATE guide_suggestions SET status = $2, dismissal_reason = $3, accepted_version = $4, decided_by = $5, \
         decided_at = $6, updated_at = $6 WHERE id = $1 AND status = 'pending'",
    )
    .bind(id)
    .bind(status)
    .bind(reason)
    .bind(accepted_version)
    .bind(decided_by)
    .bind(now)
    .execute(&mut **tx)
    .await?;
    Ok(done.rows_affected() == 1)
}
