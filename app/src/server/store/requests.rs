//! Access requests (which become grants when approved). History is kept: one row per request.

use crate::model::{
    Access, AgentId, CredentialMode, Delivery, GrantDuration, OrgId, RequestId, RequestOrigin,
    RequestStatus, SuggestionId, ToolId,
};
use sqlx::{AnyExecutor, FromRow};

use super::{StoreResult, Tx};

/// An `access_requests` row joined with agent and tool names for display.
#[derive(Clone, Debug, FromRow)]
pub struct RequestRow {
    pub id: RequestId,
    pub organization_id: OrgId,
    pub agent_id: AgentId,
    pub agent_name: String,
    pub tool_id: ToolId,
    pub tool_name: String,
    pub credential_mode: CredentialMode,
    pub status: RequestStatus,
    pub reason: String,
    pub origin: RequestOrigin,
    pub suggestion_id: Option<SuggestionId>,
    pub decided_by: Option<String>,
    pub decided_at: Option<i64>,
    pub decision_note: Option<String>,
    pub credential_blob: Option<String>,
    pub credential_version: i64,
    pub expires_at: Option<i64>,
    pub created_at: i64,
    /// Distinct approvals needed: the tool's quorum, or what it was when the request was made
    /// if that was higher.
    pub approvals_required: i64,
    /// Who registered the agent (separation of duties).
    pub agent_created_by: String,
    pub delivery: Delivery,
    /// How the approval narrowed proxied use (see the proxy migration).
    pub proxy_read_only: i64,
    pub proxy_rules: Option<String>,
    pub grant_calls_per_day: Option<i64>,
    pub tool_calls_per_day: Option<i64>,
    /// The tool's allow-list (one rule per line), which an approval may narrow to a subset.
    pub tool_rules: String,
    pub requested_duration: Option<GrantDuration>,
    pub granted_duration: Option<GrantDuration>,
    pub max_duration: Option<GrantDuration>,
    pub default_duration: Option<GrantDuration>,
    /// A renewal waiting on this live grant (see the lifecycle migration).
    pub renewal_requested_at: Option<i64>,
    pub renewal_reason: Option<String>,
    pub renewal_duration: Option<GrantDuration>,
    pub renewals: i64,
    pub renewal_note: Option<String>,
}

pub(super) const SELECT: &str = "SELECT r.id, r.organization_id, r.agent_id, a.name AS agent_name, r.tool_id, t.name AS tool_name, \
     CASE WHEN r.approvals_required > t.approvals_required THEN r.approvals_required ELSE t.approvals_required END AS approvals_required, \
     a.created_by AS agent_created_by, t.credential_mode, r.status, r.reason, r.origin, r.suggestion_id, r.decided_by, r.decided_at, r.decision_note, \
     r.credential_blob, r.credential_version, r.expires_at, r.created_at, t.delivery, r.proxy_read_only, r.proxy_rules, \
     r.calls_per_day AS grant_calls_per_day, t.calls_per_day AS tool_calls_per_day, t.allow_rules AS tool_rules, \
     r.requested_duration, r.granted_duration, t.max_duration, t.default_duration, \
     r.renewal_requested_at, r.renewal_reason, r.renewal_duration, r.renewals, r.renewal_note \
     FROM access_requests r JOIN agents a ON a.id = r.agent_id JOIN tools t ON t.id = r.tool_id";

/// Fields of a new request.
#[derive(Clone, Debug)]
pub struct NewRequest<'a> {
    pub id: &'a str,
    pub org_id: &'a str,
    pub agent_id: &'a AgentId,
    pub tool_id: &'a ToolId,
    pub reason: &'a str,
    pub origin: RequestOrigin,
    pub suggestion_id: Option<&'a SuggestionId>,
    pub duration: Option<GrantDuration>,
}

/// Inserts a pending request. A unique violation means a live request already exists.
#[tracing::instrument(skip_all)]
pub async fn insert_request(tx: &mut Tx, new: &NewRequest<'_>, now: i64) -> StoreResult<()> {
    sqlx::query(
        "INSERT INTO access_requests (id, organization_id, agent_id, tool_id, status, reason, origin, suggestion_id, \
         credential_version, created_at, updated_at, approvals_required, requested_duration) VALUES ($1, $2, $3, $4, 'pending', $5, $6, $7, 0, $8, $8, \
         (SELECT approvals_required FROM tools WHERE id = $4), $9)",
    )
    .bind(new.id)
    .bind(new.org_id)
    .bind(new.agent_id)
    .bind(new.tool_id)
    .bind(new.reason)
    .bind(new.origin)
    .bind(new.suggestion_id)
    .bind(now)
    .bind(new.duration)
    .execute(&mut **tx)
    .await
    .map(|_| ())
    .map_err(Into::into)
}

#[tracing::instrument(skip_all, fields(org_id = %org_id, id = %id))]
pub async fn find_request(
    ex: impl AnyExecutor<'_>,
    org_id: &OrgId,
    id: &RequestId,
) -> StoreResult<Option<RequestRow>> {
    sqlx::query_as(&format!(
        "{SELECT} WHERE r.organization_id = $1 AND r.id = $2"
    ))
    .bind(org_id)
    .bind(id)
    .fetch_optional(ex)
    .await
    .map_err(Into::into)
}

/// The current request of an agent for each tool it ever asked for (see [`current_first`]).
#[tracing::instrument(skip_all, fields(agent_id = %agent_id))]
pub async fn latest_requests_for_agent(
    ex: impl AnyExecutor<'_>,
    agent_id: &AgentId,
) -> StoreResult<Vec<RequestRow>> {
    sqlx::query_as(&format!(
        "{SELECT} WHERE r.agent_id = $1 AND NOT EXISTS (SELECT 1 FROM access_requests n \
         WHERE n.agent_id = r.agent_id AND n.tool_id = r.tool_id AND ({live_n}, n.id) > ({live_r}, r.id))",
        live_n = live("n"),
        live_r = live("r"),
    ))
    .bind(agent_id)
    .fetch_all(ex)
    .await
    .map_err(Into::into)
}

/// Whether a grant is live: approved, and its time (if it has one) not run out. The one rule,
/// used by the fetch plan, the commit-time guard, guide suggestions and grants;
/// [`live_grant_sql`] selects the same rows.
pub fn is_live_grant(status: RequestStatus, expires_at: Option<i64>, now: i64) -> bool {
    status == RequestStatus::Approved && expires_at.is_none_or(|t| t > now)
}

/// The SQL condition of [`is_live_grant`] on alias `t`, with the current time bound as `$now`.
pub fn live_grant_sql(t: &str, now: usize) -> String {
    format!("({t}.status = 'approved' AND ({t}.expires_at IS NULL OR {t}.expires_at > ${now}))")
}

/// What an agent sees of its current request for a tool (none, pending, approved, expired…):
/// an approved grant whose time ran out is expired even before a write marks it so.
pub fn access_of(status: Option<RequestStatus>, expires_at: Option<i64>, now: i64) -> Access {
    match status {
        None => Access::None,
        Some(s) if s == RequestStatus::Approved && !is_live_grant(s, expires_at, now) => {
            Access::Expired
        }
        Some(s) => s.into(),
    }
}

impl RequestRow {
    /// [`is_live_grant`] for this request.
    pub fn is_live_grant(&self, now: i64) -> bool {
        is_live_grant(self.status, self.expires_at, now)
    }

    /// What the agent sees of this request ([`access_of`]).
    pub fn access(&self, now: i64) -> Access {
        access_of(Some(self.status), self.expires_at, now)
    }

    /// Pending, or a live grant: a new request for the same tool would duplicate it.
    pub fn is_open(&self, now: i64) -> bool {
        self.status == RequestStatus::Pending || self.is_live_grant(now)
    }
}

/// 1 for a live (pending or approved) request of alias `t`, else 0.
fn live(t: &str) -> String {
    format!("CASE WHEN {t}.status IN ('pending', 'approved') THEN 1 ELSE 0 END")
}

/// ORDER BY putting the current request of an agent for a tool (alias `r`) first: the live one
/// (there is at most one), else the newest. Not simply the highest id: ids are UUID v7, ordered
/// by the clock of the instance that made them, and instances' clocks may disagree by a little.
pub(super) fn current_first() -> String {
    format!("{} DESC, r.id DESC", live("r"))
}

/// The current request of one agent for one tool (see [`current_first`]).
#[tracing::instrument(skip_all, fields(agent_id = %agent_id, tool_id = %tool_id))]
pub async fn latest_request(
    ex: impl AnyExecutor<'_>,
    agent_id: &AgentId,
    tool_id: &ToolId,
) -> StoreResult<Option<RequestRow>> {
    sqlx::query_as(&format!(
        "{SELECT} WHERE r.agent_id = $1 AND r.tool_id = $2 ORDER BY {} LIMIT 1",
        current_first()
    ))
    .bind(agent_id)
    .bind(tool_id)
    .fetch_optional(ex)
    .await
    .map_err(Into::into)
}

/// Requests of an organization, newest first, optionally filtered by status. Two query texts,
/// so that the status filter walks the (organization, status, id) index newest-first instead of
/// scanning the organization's history (`$2 IS NULL OR …` would defeat the index).
#[tracing::instrument(skip_all, fields(org_id = %org_id))]
pub async fn list_requests(
    ex: impl AnyExecutor<'_>,
    org_id: &OrgId,
    status: Option<RequestStatus>,
    limit: i64,
) -> StoreResult<Vec<RequestRow>> {
    match status {
        Some(status) => sqlx::query_as(&format!(
            "{SELECT} WHERE r.organization_id = $1 AND r.status = $2 ORDER BY r.id DESC LIMIT $3"
        ))
        .bind(org_id)
        .bind(status)
        .bind(limit)
        .fetch_all(ex)
        .await
        .map_err(Into::into),
        None => sqlx::query_as(&format!(
            "{SELECT} WHERE r.organization_id = $1 ORDER BY r.id DESC LIMIT $2"
        ))
        .bind(org_id)
        .bind(limit)
        .fetch_all(ex)
        .await
        .map_err(Into::into),
    }
}

/// A decision: moves a request from `from` to `to` only if it is still in `from`.
#[derive(Clone, Debug)]
pub struct Decision<'a> {
    pub id: &'a RequestId,
    pub from: RequestStatus,
    pub to: RequestStatus,
    pub decided_by: &'a str,
    pub note: Option<&'a str>,
    pub credential_blob: Option<&'a str>,
    pub credential_version: i64,
    pub expires_at: Option<i64>,
    pub granted_duration: Option<GrantDuration>,
}

/// Applies a decision; returns false when the request was no longer in `from` (a race).
/// Leaving a live state wipes the per-agent secret.
#[tracing::instrument(skip_all)]
pub async fn decide_request(tx: &mut Tx, d: &Decision<'_>, now: i64) -> StoreResult<bool> {
    let done = sqlx::query(
        "UPDATE access_requests SET status = $3, decided_by = $4, decided_at = $5, decision_note = $6, \
         credential_blob = $7, credential_version = $8, expires_at = $9, granted_duration = $10, updated_at = $5, \
         renewal_requested_at = NULL, renewal_reason = NULL, renewal_duration = NULL \
         WHERE id = $1 AND status = $2",
    )
    .bind(d.id)
    .bind(d.from)
    .bind(d.to)
    .bind(d.decided_by)
    .bind(now)
    .bind(d.note)
    .bind(d.credential_blob)
    .bind(d.credential_version)
    .bind(d.expires_at)
    .bind(d.granted_duration)
    .execute(&mut **tx)
    .await?;
    Ok(done.rows_affected() == 1)
}

/// Marks an approved grant whose time ran out as expired, so a new request can be made.
#[tracing::instrument(skip_all, fields(id = %id))]
pub async fn expire_request(tx: &mut Tx, id: &RequestId, now: i64) -> StoreResult<()> {
    sqlx::query(
        "UPDATE access_requests SET status = 'expired', credential_blob = NULL, updated_at = $2 \
         WHERE id = $1 AND status = 'approved'",
    )
    .bind(id)
    .bind(now)
    .execute(&mut **tx)
    .await
    .map(|_| ())
    .map_err(Into::into)
}

/// Counts what deleting a tool would end: (live grants, pending requests).
#[tracing::instrument(skip_all, fields(tool_id = %tool_id))]
pub async fn count_live_for_tool(
    ex: impl AnyExecutor<'_>,
    tool_id: &ToolId,
    now: i64,
) -> StoreResult<(i64, i64)> {
    sqlx::query_as(&format!(
        "SELECT COUNT(CASE WHEN {live} THEN 1 END), \
         COUNT(CASE WHEN r.status = 'pending' THEN 1 END) FROM access_requests r WHERE r.tool_id = $1",
        live = live_grant_sql("r", 2),
    ))
    .bind(tool_id)
    .bind(now)
    .fetch_one(ex)
    .await
    .map_err(Into::into)
}

/// Whether the agent has any request for the tool in one of `statuses`.
#[tracing::instrument(skip_all, fields(agent_id = %agent_id, tool_id = %tool_id))]
pub async fn agent_has_request_in(
    ex: impl AnyExecutor<'_>,
    agent_id: &AgentId,
    tool_id: &ToolId,
    statuses: &[RequestStatus],
) -> StoreResult<bool> {
    let list = super::placeholders(3, statuses.len());
    let sql = format!(
        "SELECT COUNT(*) FROM access_requests WHERE agent_id = $1 AND tool_id = $2 AND status IN ({list})"
    );
    let mut query = sqlx::query_scalar::<_, i64>(&sql)
        .bind(agent_id)
        .bind(tool_id);
    for s in statuses {
        query = query.bind(*s);
    }
    Ok(query.fetch_one(ex).await? > 0)
}

/// Replaces the per-agent secret of an approved grant; false when it is no longer approved.
#[tracing::instrument(skip_all, fields(id = %id))]
pub async fn update_grant_credential(
    tx: &mut Tx,
    id: &RequestId,
    blob: &str,
    version: i64,
    now: i64,
) -> StoreResult<bool> {
    let done = sqlx::query(
        "UPDATE access_requests SET credential_blob = $2, credential_version = $3, updated_at = $4 \
         WHERE id = $1 AND status = 'approved' AND credential_version = $3 - 1",
    )
    .bind(id)
    .bind(blob)
    .bind(version)
    .bind(now)
    .execute(&mut **tx)
    .await?;
    Ok(done.rows_affected() == 1)
}

/// Why agents asked for a tool: `(agent name, reason)` of its newest requests, at most `limit`.
#[tracing::instrument(skip_all, fields(tool_id = %tool_id))]
pub async fn list_recent_reasons(
    ex: impl AnyExecutor<'_>,
    org_id: &OrgId,
    tool_id: &ToolId,
    limit: i64,
) -> StoreResult<Vec<(String, String)>> {
    sqlx::query_as(
        "SELECT a.name, r.reason FROM access_requests r JOIN agents a ON a.id = r.agent_id \
         WHERE r.organization_id = $1 AND r.tool_id = $2 ORDER BY r.created_at DESC, r.id DESC LIMIT $3",
    )
    .bind(org_id)
    .bind(tool_id)
    .bind(limit)
    .fetch_all(ex)
    .await
    .map_err(Into::into)
}
