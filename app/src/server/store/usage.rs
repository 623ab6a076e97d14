//! Daily use counts (`usage_daily`) and each agent's last use of each tool.

use sqlx::FromRow;

use super::{StoreResult, Tx};
use crate::model::{AgentId, OrgId, ToolId};

/// One day of one agent's use of one tool.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct UsageKey {
    pub org_id: OrgId,
    pub tool_id: ToolId,
    pub agent_id: AgentId,
    /// Days since 1970-01-01, UTC.
    pub day: i64,
}

/// Fetches and proxied calls.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Counts {
    pub fetches: i64,
    pub proxied: i64,
}

/// Adds counts to their days.
#[tracing::instrument(skip_all, fields(rows = rows.len()))]
pub async fn add_usage(tx: &mut Tx, rows: &[(UsageKey, Counts)]) -> StoreResult<()> {
    for (key, counts) in rows {
        sqlx::query(
            "INSERT INTO usage_daily (organization_id, tool_id, agent_id, day, fetches, proxied) \
             VALUES ($1, $2, $3, $4, $5, $6) ON CONFLICT (tool_id, agent_id, day) DO UPDATE SET \
             fetches = usage_daily.fetches + excluded.fetches, proxied = usage_daily.proxied + excluded.proxied",
        )
        .bind(&key.org_id)
        .bind(&key.tool_id)
        .bind(&key.agent_id)
        .bind(key.day)
        .bind(counts.fetches)
        .bind(counts.proxied)
        .execute(&mut **tx)
        .await?;
    }
    Ok(())
}

/// A stored day of use, of a tool and an agent that still exist.
#[derive(Clone, Debug, FromRow)]
pub struct UsageRow {
    pub tool_id: ToolId,
    pub agent_id: AgentId,
    pub day: i64,
    pub fetches: i64,
    pub proxied: i64,
}

/// The organization's use from `since_day` on.
#[tracing::instrument(skip_all, fields(org_id = %org_id))]
pub async fn list_usage(
    ex: impl sqlx::AnyExecutor<'_>,
    org_id: &OrgId,
    since_day: i64,
) -> StoreResult<Vec<UsageRow>> {
    Ok(sqlx::query_as(
        "SELECT u.tool_id, u.agent_id, u.day, u.fetches, u.proxied FROM usage_daily u \
         JOIN tools t ON t.id = u.tool_id JOIN agents a ON a.id = u.agent_id \
         WHERE u.organization_id = $1 AND u.day >= $2",
    )
    .bind(org_id)
    .bind(since_day)
    .fetch_all(ex)
    .await?)
}

/// When an agent last fetched or had a call proxied with a tool (the exposure ledger keeps
/// it to the minute).
#[derive(Clone, Debug, FromRow)]
pub struct LastUseRow {
    pub tool_id: ToolId,
    pub agent_id: AgentId,
    pub fetched_at: Option<i64>,
    pub proxied_at: Option<i64>,
}

#[tracing::instrument(skip_all, fields(org_id = %org_id))]
pub async fn list_last_use(
    ex: impl sqlx::AnyExecutor<'_>,
    org_id: &OrgId,
) -> StoreResult<Vec<LastUseRow>> {
    Ok(sqlx::query_as(
        "SELECT tool_id, agent_id, MAX(fetched_last_at) AS fetched_at, MAX(proxied_last_at) AS proxied_at \
         FROM credential_exposures WHERE organization_id = $1 GROUP BY tool_id, agent_id",
    )
    .bind(org_id)
    .fetch_all(ex)
    .await?)
}
