//! What the credential path reads: the plan of a fetch in one round trip, and the state its commit-
//! time guard re-checks.

use sqlx::{AnyExecutor, FromRow};

use super::requests::current_first;
use super::{StoreResult, Tx};
use crate::model::{
    AgentId, AgentStatus, AuthType, CredentialMode, Delivery, OrgId, RequestId, RequestStatus,
    ToolId,
};

/// What the credential path needs, read in one round trip: the newest request of the agent
/// for the tool plus the tool's current secret and guide.
#[derive(Clone, Debug, FromRow)]
pub struct VendRow {
    pub tool_id: ToolId,
    pub tool_name: String,
    pub auth_type: AuthType,
    pub credential_mode: CredentialMode,
    pub tool_blob: Option<String>,
    pub tool_credential_version: i64,
    pub instructions: String,
    pub instructions_version: i64,
    pub request_id: Option<RequestId>,
    pub status: Option<RequestStatus>,
    pub decision_note: Option<String>,
    pub grant_blob: Option<String>,
    pub grant_credential_version: Option<i64>,
    pub expires_at: Option<i64>,
    pub delivery: Delivery,
    pub upstream_url: Option<String>,
    pub inject_rule: Option<String>,
    pub allow_rules: String,
    pub tool_calls_per_day: Option<i64>,
    pub proxy_version: i64,
    pub proxy_read_only: Option<i64>,
    pub proxy_rules: Option<String>,
    pub grant_calls_per_day: Option<i64>,
    /// Proxied calls of the grant on the day asked for.
    pub calls_on_day: Option<i64>,
}

#[tracing::instrument(skip_all, fields(org_id = %org_id, agent_id = %agent_id, tool_id = %tool_id))]
pub async fn find_vend_row(
    ex: impl AnyExecutor<'_>,
    org_id: &OrgId,
    agent_id: &AgentId,
    tool_id: &ToolId,
    day: i64,
) -> StoreResult<Option<VendRow>> {
    sqlx::query_as(&format!(
        "SELECT t.id AS tool_id, t.name AS tool_name, t.auth_type, t.credential_mode, t.credential_blob AS tool_blob, \
         t.credential_version AS tool_credential_version, t.instructions, t.instructions_version, \
         r.id AS request_id, r.status, r.decision_note, r.credential_blob AS grant_blob, \
         r.credential_version AS grant_credential_version, r.expires_at, \
         t.delivery, t.upstream_url, t.inject_rule, t.allow_rules, t.calls_per_day AS tool_calls_per_day, t.proxy_version, \
         r.proxy_read_only, r.proxy_rules, r.calls_per_day AS grant_calls_per_day, u.calls AS calls_on_day \
         FROM tools t LEFT JOIN access_requests r ON r.id = (SELECT r.id FROM access_requests r \
         WHERE r.agent_id = $2 AND r.tool_id = t.id ORDER BY {current} LIMIT 1) \
         LEFT JOIN grant_usage u ON u.request_id = r.id AND u.day = $4 \
         WHERE t.organization_id = $1 AND t.id = $3",
        current = current_first(),
    ))
    .bind(org_id)
    .bind(agent_id)
    .bind(tool_id)
    .bind(day)
    .fetch_optional(ex)
    .await
    .map_err(Into::into)
}

/// The state a vend guard re-checks inside the audit transaction.
#[derive(Clone, Debug, FromRow)]
pub struct GuardRow {
    pub request_id: RequestId,
    pub status: RequestStatus,
    pub expires_at: Option<i64>,
    pub grant_credential_version: i64,
    pub agent_status: AgentStatus,
    pub key_hash: String,
    pub tool_credential_version: i64,
    pub instructions_version: i64,
    pub proxy_version: i64,
}

/// Request ids per guard query: fixed, so the statement is prepared once.
const GUARD_IDS_PER_QUERY: usize = 16;

#[tracing::instrument(skip_all)]
pub async fn find_guard_rows(
    tx: &mut Tx,
    request_ids: &[&RequestId],
) -> StoreResult<Vec<GuardRow>> {
    let mut ids: Vec<&RequestId> = request_ids.to_vec();
    ids.sort_unstable();
    ids.dedup();
    let sql = format!(
        "SELECT r.id AS request_id, r.status, r.expires_at, r.credential_version AS grant_credential_version, \
         a.status AS agent_status, a.key_hash, t.credential_version AS tool_credential_version, t.instructions_version, \
         t.proxy_version \
         FROM access_requests r JOIN agents a ON a.id = r.agent_id JOIN tools t ON t.id = r.tool_id WHERE r.id IN ({})",
        super::placeholders(1, GUARD_IDS_PER_QUERY)
    );
    let mut rows = Vec::with_capacity(ids.len());
    for chunk in ids.chunks(GUARD_IDS_PER_QUERY) {
        // Padding with a repeated id keeps one statement text, so it is prepared once and cached.
        let mut query = sqlx::query_as::<_, GuardRow>(&sql);
        for i in 0..GUARD_IDS_PER_QUERY {
            query = query.bind(chunk[i.min(chunk.len() - 1)]);
        }
        rows.extend(query.fetch_all(&mut **tx).await?);
    }
    Ok(rows)
}
