//! What the inbox shows of an agent beside its requests: its live grants and its denials.

use crate::model::{AgentId, OrgId, RequestStatus, ToolId};
use sqlx::{AnyExecutor, FromRow};

use super::StoreResult;
use super::requests::live_grant_sql;

/// A live grant or a denied request of an agent, with how many of its kind the agent has.
#[derive(Clone, Debug, FromRow)]
pub struct ContextRow {
    pub agent_id: AgentId,
    pub tool_id: ToolId,
    pub tool_name: String,
    pub status: RequestStatus,
    pub expires_at: Option<i64>,
    pub decision_note: Option<String>,
    pub decided_by: Option<String>,
    pub decided_at: Option<i64>,
    pub total: i64,
}

/// For each agent of `agent_ids`: its `per_kind` newest live grants and its `per_kind` newest
/// denials (those of a tool it asks for now first), each row counting all of its kind. One query whatever the number of agents, and
/// bounded by `per_kind` however long an agent's history is.
#[tracing::instrument(skip_all, fields(org_id = %org_id, agents = agent_ids.len()))]
pub async fn list_agent_context(
    ex: impl AnyExecutor<'_>,
    org_id: &OrgId,
    agent_ids: &[AgentId],
    now: i64,
    per_kind: i64,
) -> StoreResult<Vec<ContextRow>> {
    if agent_ids.is_empty() {
        return Ok(Vec::new());
    }
    let sql = format!(
        "SELECT agent_id, tool_id, tool_name, status, expires_at, decision_note, decided_by, decided_at, total FROM (\
         SELECT r.agent_id, r.tool_id, t.name AS tool_name, r.status, r.expires_at, r.decision_note, r.decided_by, r.decided_at, \
         ROW_NUMBER() OVER (PARTITION BY r.agent_id, r.status ORDER BY {asked_first}, r.id DESC) AS n, \
         COUNT(*) OVER (PARTITION BY r.agent_id, r.status) AS total \
         FROM access_requests r JOIN tools t ON t.id = r.tool_id \
         WHERE r.organization_id = $1 AND r.agent_id IN ({ids}) AND ({live} OR r.status = 'denied')\
         ) x WHERE n <= $3 ORDER BY agent_id, n",
        ids = super::placeholders(4, agent_ids.len()),
        live = live_grant_sql("r", 2),
        asked_first = "CASE WHEN EXISTS (SELECT 1 FROM access_requests p WHERE p.agent_id = r.agent_id \
                       AND p.tool_id = r.tool_id AND p.status = 'pending') THEN 0 ELSE 1 END",
    );
    let mut query = sqlx::query_as::<_, ContextRow>(&sql)
        .bind(org_id)
        .bind(now)
        .bind(per_kind);
    for id in agent_ids {
        query = query.bind(id);
    }
    query.fetch_all(ex).await.map_err(Into::into)
}
