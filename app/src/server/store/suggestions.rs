//! Tool suggestions, guide suggestions and their supporters.

use crate::model::{AgentId, AgentStatus, OrgId, SuggestionId, SuggestionStatus, ToolId};
use sqlx::{AnyExecutor, FromRow};

use super::{StoreResult, Tx};

/// A `tool_suggestions` row.
#[derive(Clone, Debug, FromRow)]
pub struct ToolSuggestionRow {
    pub id: SuggestionId,
    pub organization_id: OrgId,
    pub name: String,
    pub normalized_name: String,
    pub url: Option<String>,
    pub domain: Option<String>,
    pub status: SuggestionStatus,
    pub dismissed_until: Option<i64>,
    pub dismissal_reason: Option<String>,
    pub converted_tool_id: Option<ToolId>,
    pub created_at: i64,
    pub updated_at: i64,
}

const TS_COLUMNS: &str = "id, organization_id, name, normalized_name, url, domain, status, dismissed_until, \
                          dismissal_reason, converted_tool_id, created_at, updated_at";

#[tracing::instrument(skip_all)]
pub async fn insert_tool_suggestion(tx: &mut Tx, row: &ToolSuggestionRow) -> StoreResult<()> {
    sqlx::query(&format!("INSERT INTO tool_suggestions ({TS_COLUMNS}) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12)"))
        .bind(&row.id)
        .bind(&row.organization_id)
        .bind(&row.name)
        .bind(&row.normalized_name)
        .bind(&row.url)
        .bind(&row.domain)
        .bind(row.status)
        .bind(row.dismissed_until)
        .bind(&row.dismissal_reason)
        .bind(&row.converted_tool_id)
        .bind(row.created_at)
        .bind(row.updated_at)
        .execute(&mut **tx)
        .await
        .map(|_| ())
        .map_err(Into::into)
}

#[tracing::instrument(skip_all, fields(org_id = %org_id, id = %id))]
pub async fn find_tool_suggestion(
    ex: impl AnyExecutor<'_>,
    org_id: &OrgId,
    id: &str,
) -> StoreResult<Option<ToolSuggestionRow>> {
    sqlx::query_as(&format!(
        "SELECT {TS_COLUMNS} FROM tool_suggestions WHERE organization_id = $1 AND id = $2"
    ))
    .bind(org_id)
    .bind(id)
    .fetch_optional(ex)
    .await
    .map_err(Into::into)
}

/// Open (pending or dismissed) suggestions whose identity matches: same domain when both
/// sides have one, otherwise the same normalized name. Newest activity first.
#[tracing::instrument(skip_all, fields(org_id = %org_id))]
pub async fn find_open_tool_suggestions_matching(
    ex: impl AnyExecutor<'_>,
    org_id: &OrgId,
    normalized_name: &str,
    domain: Option<&str>,
) -> StoreResult<Vec<ToolSuggestionRow>> {
    sqlx::query_as(&format!(
        "SELECT {TS_COLUMNS} FROM tool_suggestions WHERE organization_id = $1 AND status IN ('pending', 'dismissed') \
         AND ((domain IS NOT NULL AND domain = $3) OR ((domain IS NULL OR $3 IS NULL) AND normalized_name = $2)) \
         ORDER BY updated_at DESC, id DESC"
    ))
    .bind(org_id)
    .bind(normalized_name)
    .bind(domain)
    .fetch_all(ex)
    .await
    .map_err(Into::into)
}

/// Pending suggestions that a tool with this identity resolves (same identity rule as
/// [`find_open_tool_suggestions_matching`]).
#[tracing::instrument(skip_all, fields(org_id = %org_id))]
pub async fn find_pending_tool_suggestions_for_tool(
    ex: impl AnyExecutor<'_>,
    org_id: &OrgId,
    normalized_name: &str,
    domain: Option<&str>,
) -> StoreResult<Vec<ToolSuggestionRow>> {
    sqlx::query_as(&format!(
        "SELECT {TS_COLUMNS} FROM tool_suggestions WHERE organization_id = $1 AND status = 'pending' \
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
pub async fn list_tool_suggestions(
    ex: impl AnyExecutor<'_>,
    org_id: &OrgId,
    status: SuggestionStatus,
) -> StoreResult<Vec<ToolSuggestionRow>> {
    sqlx::query_as(&format!(
        "SELECT {TS_COLUMNS} FROM tool_suggestions WHERE organization_id = $1 AND status = $2 ORDER BY updated_at DESC, id DESC"
    ))
    .bind(org_id)
    .bind(status)
    .fetch_all(ex)
    .await
    .map_err(Into::into)
}

/// Reopens or refreshes a suggestion as pending; may adopt a URL when it had none.
#[tracing::instrument(skip_all, fields(id = %id))]
pub async fn reopen_tool_suggestion(
    tx: &mut Tx,
    id: &str,
    url: Option<&str>,
    domain: Option<&str>,
    now: i64,
) -> StoreResult<()> {
    sqlx::query(
        "UPDATE tool_suggestions SET status = 'pending', dismissed_until = NULL, dismissal_reason = NULL, \
         decided_by = NULL, decided_at = NULL, url = COALESCE(url, $2), domain = COALESCE(domain, $3), updated_at = $4 \
         WHERE id = $1",
    )
    .bind(id)
    .bind(url)
    .bind(domain)
    .bind(now)
    .execute(&mut **tx)
    .await
    .map(|_| ())
    .map_err(Into::into)
}

/// Closes a pending suggestion (dismissed with a cooldown, or accepted into a tool).
#[expect(
    clippy::too_many_arguments,
    reason = "one UPDATE of a row's decision columns; a struct would only rename them"
)]
#[tracing::instrument(skip_all, fields(id = %id))]
pub async fn close_tool_suggestion(
    tx: &mut Tx,
    id: &str,
    status: SuggestionStatus,
    dismissed_until: Option<i64>,
    reason: Option<&str>,
    converted_tool_id: Option<&str>,
    decided_by: &str,
    now: i64,
) -> StoreResult<bool> {
    let done = sqlx::query(
        "UPDATE tool_suggestions SET status = $2, dismissed_until = $3, dismissal_reason = $4, converted_tool_id = $5, \
         decided_by = $6, decided_at = $7, updated_at = $7 WHERE id = $1 AND status = 'pending'",
    )
    .bind(id)
    .bind(status)
    .bind(dismissed_until)
    .bind(reason)
    .bind(converted_tool_id)
    .bind(decided_by)
    .bind(now)
    .execute(&mut **tx)
    .await?;
    Ok(done.rows_affected() == 1)
}

/// A supporter row of either suggestion kind, with the agent's name.
#[derive(Clone, Debug, FromRow)]
pub struct SupporterRow {
    pub suggestion_id: SuggestionId,
    pub agent_id: AgentId,
    pub agent_name: String,
    pub agent_status: AgentStatus,
    pub reason: String,
    pub first_at: i64,
    pub last_at: i64,
}

/// Which supporter table: tool suggestions or guide suggestions.
#[derive(Clone, Copy, Debug)]
pub enum SupporterTable {
    Tool,
    Guide,
}

impl SupporterTable {
    fn name(self) -> &'static str {
        match self {
            SupporterTable::Tool => "tool_suggestion_supporters",
            SupporterTable::Guide => "guide_suggestion_supporters",
        }
    }
}

/// One agent backing a suggestion.
#[derive(Clone, Copy, Debug)]
pub struct Backing<'a> {
    pub id: &'a str,
    pub org_id: &'a str,
    pub suggestion_id: &'a SuggestionId,
    pub agent_id: &'a AgentId,
    pub reason: &'a str,
}

/// Adds a supporter or refreshes its reason; returns true when the agent is new to it.
#[tracing::instrument(skip_all)]
pub async fn upsert_supporter(
    tx: &mut Tx,
    table: SupporterTable,
    b: Backing<'_>,
    now: i64,
) -> StoreResult<bool> {
    let table = table.name();
    let existing: Option<String> = sqlx::query_scalar(&format!(
        "SELECT id FROM {table} WHERE suggestion_id = $1 AND agent_id = $2"
    ))
    .bind(b.suggestion_id)
    .bind(b.agent_id)
    .fetch_optional(&mut **tx)
    .await?;
    if let Some(existing) = existing {
        sqlx::query(&format!(
            "UPDATE {table} SET reason = $2, last_at = $3 WHERE id = $1"
        ))
        .bind(existing)
        .bind(b.reason)
        .bind(now)
        .execute(&mut **tx)
        .await?;
        return Ok(false);
    }
    sqlx::query(&format!(
        "INSERT INTO {table} (id, organization_id, suggestion_id, agent_id, reason, first_at, last_at) \
         VALUES ($1, $2, $3, $4, $5, $6, $6)"
    ))
    .bind(b.id)
    .bind(b.org_id)
    .bind(b.suggestion_id)
    .bind(b.agent_id)
    .bind(b.reason)
    .bind(now)
    .execute(&mut **tx)
    .await?;
    Ok(true)
}

#[tracing::instrument(skip_all, fields(suggestion_id = %suggestion_id))]
pub async fn delete_supporters(
    tx: &mut Tx,
    table: SupporterTable,
    suggestion_id: &SuggestionId,
) -> StoreResult<()> {
    sqlx::query(&format!(
        "DELETE FROM {} WHERE suggestion_id = $1",
        table.name()
    ))
    .bind(suggestion_id)
    .execute(&mut **tx)
    .await
    .map(|_| ())
    .map_err(Into::into)
}

/// Supporters of the given suggestions, most recent first.
#[tracing::instrument(skip_all)]
pub async fn list_supporters(
    ex: impl AnyExecutor<'_>,
    table: SupporterTable,
    suggestion_ids: &[SuggestionId],
) -> StoreResult<Vec<SupporterRow>> {
    if suggestion_ids.is_empty() {
        return Ok(Vec::new());
    }
    let list = super::placeholders(1, suggestion_ids.len());
    let sql = format!(
        "SELECT s.suggestion_id, s.agent_id, a.name AS agent_name, a.status AS agent_status, s.reason, s.first_at, s.last_at \
         FROM {} s JOIN agents a ON a.id = s.agent_id WHERE s.suggestion_id IN ({list}) ORDER BY s.last_at DESC, s.id DESC",
        table.name()
    );
    let mut query = sqlx::query_as::<_, SupporterRow>(&sql);
    for id in suggestion_ids {
        query = query.bind(id);
    }
    query.fetch_all(ex).await.map_err(Into::into)
}
