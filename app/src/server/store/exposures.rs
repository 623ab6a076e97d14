//! The exposure ledger: which agent received (fetch) or had used for it (proxy) which version
//! of which secret, first and last.

use super::{StoreResult, Tx};
use crate::model::{AgentId, OrgId, RequestId, ToolId};

/// One use of a secret, as the audit writer records it with the entry that audits it.
pub struct Seen<'a> {
    pub org_id: &'a OrgId,
    pub tool_id: &'a ToolId,
    pub agent_id: &'a AgentId,
    pub agent_name: &'a str,
    pub request_id: &'a RequestId,
    pub shared: bool,
    pub version: i64,
    pub proxied: bool,
}

/// Records a use at `now`: the first time stays, the last moves.
pub async fn record(tx: &mut Tx, seen: &Seen<'_>, now: i64) -> StoreResult<()> {
    let (fetched, proxied) = if seen.proxied {
        (None, Some(now))
    } else {
        (Some(now), None)
    };
    sqlx::query(
        "INSERT INTO credential_exposures (organization_id, tool_id, agent_id, agent_name, request_id, secret, version, \
         fetched_first_at, fetched_last_at, proxied_first_at, proxied_last_at) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $8, $9, $9) \
         ON CONFLICT (tool_id, agent_id, request_id, secret, version) DO UPDATE SET agent_name = excluded.agent_name, \
         fetched_first_at = COALESCE(credential_exposures.fetched_first_at, excluded.fetched_first_at), \
         fetched_last_at = COALESCE(excluded.fetched_last_at, credential_exposures.fetched_last_at), \
         proxied_first_at = COALESCE(credential_exposures.proxied_first_at, excluded.proxied_first_at), \
         proxied_last_at = COALESCE(excluded.proxied_last_at, credential_exposures.proxied_last_at)",
    )
    .bind(seen.org_id)
    .bind(seen.tool_id)
    .bind(seen.agent_id)
    .bind(seen.agent_name)
    .bind(seen.request_id)
    .bind(if seen.shared { "shared" } else { "agent" })
    .bind(seen.version)
    .bind(fetched)
    .bind(proxied)
    .execute(&mut **tx)
    .await?;
    Ok(())
}

/// An exposure row with whether its agent still holds a live grant of the tool.
#[derive(Clone, Debug, sqlx::FromRow)]
pub struct ExposureRow {
    pub agent_id: AgentId,
    pub agent_name: String,
    pub secret: String,
    pub version: i64,
    pub fetched_first_at: Option<i64>,
    pub fetched_last_at: Option<i64>,
    pub proxied_first_at: Option<i64>,
    pub proxied_last_at: Option<i64>,
    pub holds_grant: i64,
}

/// Every exposure of a tool's secrets, newest version first, with whether each agent holds a
/// live grant now (at `now`).
pub async fn for_tool(
    ex: impl sqlx::AnyExecutor<'_>,
    org_id: &OrgId,
    tool_id: &ToolId,
    now: i64,
) -> StoreResult<Vec<ExposureRow>> {
    Ok(sqlx::query_as(&format!(
        "SELECT e.agent_id, COALESCE(a.name, e.agent_name) AS agent_name, e.secret, e.version, e.fetched_first_at, \
         e.fetched_last_at, e.proxied_first_at, e.proxied_last_at, \
         CASE WHEN a.status = 'active' AND EXISTS (SELECT 1 FROM access_requests r WHERE r.agent_id = e.agent_id \
           AND r.tool_id = e.tool_id AND {live}) THEN 1 ELSE 0 END AS holds_grant \
         FROM credential_exposures e LEFT JOIN agents a ON a.id = e.agent_id \
         WHERE e.organization_id = $1 AND e.tool_id = $2 ORDER BY e.version DESC, agent_name",
        live = super::requests::live_grant_sql("r", 3),
    ))
    .bind(org_id)
    .bind(tool_id)
    .bind(now)
    .fetch_all(ex)
    .await?)
}

/// Shared secrets whose current version `agent_id` fetched (optionally of one tool), with how
/// many other agents hold a live grant of each tool at `now`.
pub async fn current_shared_fetched(
    ex: impl sqlx::AnyExecutor<'_>,
    org_id: &OrgId,
    agent_id: &AgentId,
    tool_id: Option<&ToolId>,
    now: i64,
) -> StoreResult<Vec<(ToolId, String, i64, String, i64)>> {
    Ok(sqlx::query_as(&format!(
        "SELECT t.id, t.name, t.credential_version, MAX(e.agent_name), \
         (SELECT COUNT(DISTINCT r.agent_id) FROM access_requests r JOIN agents o ON o.id = r.agent_id \
           WHERE r.tool_id = t.id AND r.agent_id <> $2 AND o.status = 'active' AND {live}) \
         FROM credential_exposures e JOIN tools t ON t.id = e.tool_id \
         WHERE e.organization_id = $1 AND e.agent_id = $2 AND e.secret = 'shared' AND e.version = t.credential_version \
         AND e.fetched_first_at IS NOT NULL AND ($4 IS NULL OR t.id = $4) \
         GROUP BY t.id, t.name, t.credential_version ORDER BY t.name",
        live = super::requests::live_grant_sql("r", 3),
    ))
    .bind(org_id)
    .bind(agent_id)
    .bind(now)
    .bind(tool_id)
    .fetch_all(ex)
    .await?)
}
