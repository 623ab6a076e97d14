//! Renewals of live grants and the rows the maintenance pass acts on. Every change is a
//! compare-and-set on the row's state, so two instances acting on the same row act once.

use sqlx::{AnyExecutor, FromRow};

use super::requests::{RequestRow, SELECT};
use super::{StoreResult, Tx};
use crate::model::{AgentId, GrantDuration, OrgId, RequestId, ToolId};

/// Records a renewal asked for on a live grant; false when one is already waiting or the grant
/// is no longer approved.
pub async fn ask_renewal(
    tx: &mut Tx,
    id: &RequestId,
    reason: &str,
    duration: Option<GrantDuration>,
    now: i64,
) -> StoreResult<bool> {
    let done = sqlx::query(
        "UPDATE access_requests SET renewal_requested_at = $2, renewal_reason = $3, renewal_duration = $4, \
         renewal_note = NULL, updated_at = $2 WHERE id = $1 AND status = 'approved' AND renewal_requested_at IS NULL",
    )
    .bind(id)
    .bind(now)
    .bind(reason)
    .bind(duration)
    .execute(&mut **tx)
    .await?;
    if done.rows_affected() == 1 {
        // The votes that approved the grant are spent: the renewal gathers its own.
        sqlx::query("DELETE FROM request_votes WHERE request_id = $1")
            .bind(id)
            .execute(&mut **tx)
            .await?;
    }
    Ok(done.rows_affected() == 1)
}

/// Drops a waiting renewal with the reviewer's reason; the grant runs out as it was.
pub async fn deny_renewal(
    tx: &mut Tx,
    id: &RequestId,
    note: Option<&str>,
    now: i64,
) -> StoreResult<bool> {
    let done = sqlx::query(
        "UPDATE access_requests SET renewal_requested_at = NULL, renewal_reason = NULL, renewal_duration = NULL, \
         renewal_note = $2, updated_at = $3 WHERE id = $1 AND status = 'approved' AND renewal_requested_at IS NOT NULL",
    )
    .bind(id)
    .bind(note.unwrap_or("Renewal denied."))
    .bind(now)
    .execute(&mut **tx)
    .await?;
    Ok(done.rows_affected() == 1)
}

/// What approving a renewal sets.
pub struct Extension<'a> {
    pub id: &'a RequestId,
    pub expires_at: Option<i64>,
    pub duration: GrantDuration,
    pub decided_by: &'a str,
}

/// Extends a grant whose renewal was approved: the new end, the length it was given, who
/// decided; the waiting renewal and the sent expiry reminder are cleared.
pub async fn extend_grant(tx: &mut Tx, e: &Extension<'_>, now: i64) -> StoreResult<bool> {
    let done = sqlx::query(
        "UPDATE access_requests SET expires_at = $2, granted_duration = $3, decided_by = $4, decided_at = $5, \
         renewals = renewals + 1, renewal_requested_at = NULL, renewal_reason = NULL, renewal_duration = NULL, \
         renewal_note = NULL, expiry_reminded_at = NULL, updated_at = $5 \
         WHERE id = $1 AND status = 'approved' AND renewal_requested_at IS NOT NULL",
    )
    .bind(e.id)
    .bind(e.expires_at)
    .bind(e.duration)
    .bind(e.decided_by)
    .bind(now)
    .execute(&mut **tx)
    .await?;
    Ok(done.rows_affected() == 1)
}

/// The renewal note of a grant (why its latest renewal was denied).
pub async fn renewal_note(ex: impl AnyExecutor<'_>, id: &RequestId) -> StoreResult<Option<String>> {
    Ok(
        sqlx::query_scalar("SELECT renewal_note FROM access_requests WHERE id = $1")
            .bind(id)
            .fetch_optional(ex)
            .await?
            .flatten(),
    )
}

/// A row the maintenance pass may act on.
#[derive(Clone, Debug, FromRow)]
pub struct DueRow {
    pub id: RequestId,
    pub organization_id: OrgId,
    pub agent_id: AgentId,
    pub agent_name: String,
    pub tool_id: ToolId,
    pub tool_name: String,
    pub created_at: i64,
    pub decided_at: Option<i64>,
    pub expires_at: Option<i64>,
    /// Last fetch or proxied call of this grant (idle candidates only).
    pub last_used_at: Option<i64>,
}

const DUE: &str = "SELECT r.id, r.organization_id, r.agent_id, a.name AS agent_name, r.tool_id, t.name AS tool_name, \
     r.created_at, r.decided_at, r.expires_at";
const FROM: &str =
    "FROM access_requests r JOIN agents a ON a.id = r.agent_id JOIN tools t ON t.id = r.tool_id";

/// Pending requests older than their organization's pending expiry at `before` (the pass's
/// time less its skew margin), oldest first.
pub async fn due_pending(
    ex: impl AnyExecutor<'_>,
    before: i64,
    limit: i64,
) -> StoreResult<Vec<DueRow>> {
    Ok(sqlx::query_as(&format!(
        "{DUE}, NULL AS last_used_at {FROM} \
         JOIN organizations o ON o.id = r.organization_id \
         WHERE r.status = 'pending' AND r.created_at + o.pending_expiry_hours * 3600000 <= $1 \
         ORDER BY r.created_at LIMIT $2"
    ))
    .bind(before)
    .bind(limit)
    .fetch_all(ex)
    .await?)
}

/// Approved grants whose time ran out at `before`, soonest first.
pub async fn due_expired(
    ex: impl AnyExecutor<'_>,
    before: i64,
    limit: i64,
) -> StoreResult<Vec<DueRow>> {
    Ok(sqlx::query_as(&format!(
        "{DUE}, NULL AS last_used_at {FROM} \
         WHERE r.status = 'approved' AND r.expires_at IS NOT NULL AND r.expires_at <= $1 \
         ORDER BY r.expires_at LIMIT $2"
    ))
    .bind(before)
    .bind(limit)
    .fetch_all(ex)
    .await?)
}

/// The later of two nullable times, portable (SQLite's two-argument MAX and PostgreSQL's
/// GREATEST treat NULL differently).
fn later(a: &str, b: &str) -> String {
    format!("CASE WHEN COALESCE({a}, 0) > COALESCE({b}, 0) THEN {a} ELSE COALESCE({b}, {a}) END")
}

/// Approved grants of organizations with an idle limit, unused (no fetch, no proxied call,
/// else since the approval) for longer than it at `before`.
pub async fn due_idle(
    ex: impl AnyExecutor<'_>,
    before: i64,
    limit: i64,
) -> StoreResult<Vec<DueRow>> {
    let used = later("e.fetched_last_at", "e.proxied_last_at");
    let since = format!(
        "COALESCE((SELECT MAX({used}) FROM credential_exposures e WHERE e.request_id = r.id), r.decided_at, r.created_at)"
    );
    Ok(sqlx::query_as(&format!(
        "{DUE}, {since} AS last_used_at {FROM} \
         JOIN organizations o ON o.id = r.organization_id \
         WHERE r.status = 'approved' AND o.idle_revoke_days IS NOT NULL \
         AND {since} + o.idle_revoke_days * 86400000 <= $1 ORDER BY r.id LIMIT $2"
    ))
    .bind(before)
    .bind(limit)
    .fetch_all(ex)
    .await?)
}

/// Ends a pending request nobody decided; false when it was decided first.
pub async fn expire_pending(
    tx: &mut Tx,
    id: &RequestId,
    note: &str,
    now: i64,
) -> StoreResult<bool> {
    let done = sqlx::query(
        "UPDATE access_requests SET status = 'expired', decided_by = 'AgentKey', decided_at = $2, decision_note = $3, updated_at = $2 \
         WHERE id = $1 AND status = 'pending'",
    )
    .bind(id)
    .bind(now)
    .bind(note)
    .execute(&mut **tx)
    .await?;
    Ok(done.rows_affected() == 1)
}

/// Marks a grant whose time ran out as expired (wiping a per-agent secret); false when it was
/// renewed or ended first.
pub async fn expire_grant(tx: &mut Tx, id: &RequestId, before: i64, now: i64) -> StoreResult<bool> {
    let done = sqlx::query(
        "UPDATE access_requests SET status = 'expired', credential_blob = NULL, renewal_requested_at = NULL, updated_at = $3 \
         WHERE id = $1 AND status = 'approved' AND expires_at IS NOT NULL AND expires_at <= $2",
    )
    .bind(id)
    .bind(before)
    .bind(now)
    .execute(&mut **tx)
    .await?;
    Ok(done.rows_affected() == 1)
}

/// Revokes a grant still idle at `before` (no use since, no renewal since); false when it was
/// used, renewed or ended first.
pub async fn revoke_idle(
    tx: &mut Tx,
    id: &RequestId,
    note: &str,
    before: i64,
    now: i64,
) -> StoreResult<bool> {
    let used = later("e.fetched_last_at", "e.proxied_last_at");
    let done = sqlx::query(&format!(
        "UPDATE access_requests SET status = 'revoked', credential_blob = NULL, renewal_requested_at = NULL, \
         decided_by = 'AgentKey', decided_at = $2, decision_note = $3, updated_at = $2 WHERE id = $1 AND status = 'approved' \
         AND COALESCE((SELECT MAX({used}) FROM credential_exposures e WHERE e.request_id = access_requests.id), decided_at, created_at) \
           + (SELECT o.idle_revoke_days FROM organizations o WHERE o.id = access_requests.organization_id) * 86400000 <= $4"
    ))
    .bind(id)
    .bind(now)
    .bind(note)
    .bind(before)
    .execute(&mut **tx)
    .await?;
    Ok(done.rows_affected() == 1)
}

/// Revokes a grant on behalf of `by` (the maintenance pass, an access review); false when it
/// ended first.
pub async fn revoke_grant(
    tx: &mut Tx,
    id: &RequestId,
    by: &str,
    note: &str,
    now: i64,
) -> StoreResult<bool> {
    let done = sqlx::query(
        "UPDATE access_requests SET status = 'revoked', credential_blob = NULL, renewal_requested_at = NULL, \
         decided_by = $4, decided_at = $2, decision_note = $3, updated_at = $2 WHERE id = $1 AND status = 'approved'",
    )
    .bind(id)
    .bind(now)
    .bind(note)
    .bind(by)
    .execute(&mut **tx)
    .await?;
    Ok(done.rows_affected() == 1)
}

/// The organization's lifecycle settings: pending expiry in hours, idle revoke in days.
pub async fn org_settings(
    ex: impl AnyExecutor<'_>,
    org: &OrgId,
) -> StoreResult<Option<(i64, Option<i64>)>> {
    Ok(sqlx::query_as(
        "SELECT pending_expiry_hours, idle_revoke_days FROM organizations WHERE id = $1",
    )
    .bind(org)
    .fetch_optional(ex)
    .await?)
}

/// Sets the organization's lifecycle settings.
pub async fn set_org_settings(
    tx: &mut Tx,
    org: &OrgId,
    pending_hours: i64,
    idle_days: Option<i64>,
) -> StoreResult<bool> {
    let done = sqlx::query(
        "UPDATE organizations SET pending_expiry_hours = $2, idle_revoke_days = $3 WHERE id = $1",
    )
    .bind(org)
    .bind(pending_hours)
    .bind(idle_days)
    .execute(&mut **tx)
    .await?;
    Ok(done.rows_affected() == 1)
}

/// Live time-bound grants inside their renewal window (see `lifecycle::renewal_opens`) at
/// `now`, not yet reminded of, with no renewal waiting.
pub async fn due_expiry_reminders(
    ex: impl AnyExecutor<'_>,
    now: i64,
    limit: i64,
) -> StoreResult<Vec<DueRow>> {
    let span = "(r.expires_at - COALESCE(r.decided_at, r.created_at))";
    Ok(sqlx::query_as(&format!(
        "{DUE}, NULL AS last_used_at {FROM} \
         WHERE r.status = 'approved' AND r.expires_at IS NOT NULL AND r.expires_at > $1 AND r.expiry_reminded_at IS NULL \
         AND r.renewal_requested_at IS NULL \
         AND r.expires_at - CASE WHEN {span} / 4 > 86400000 THEN 86400000 ELSE {span} / 4 END <= $1 \
         ORDER BY r.expires_at LIMIT $2"
    ))
    .bind(now)
    .bind(limit)
    .fetch_all(ex)
    .await?)
}

/// Pending requests asked before `before` (a day ago), not yet reminded of.
pub async fn due_waiting_reminders(
    ex: impl AnyExecutor<'_>,
    before: i64,
    limit: i64,
) -> StoreResult<Vec<DueRow>> {
    Ok(sqlx::query_as(&format!(
        "{DUE}, NULL AS last_used_at {FROM} \
         WHERE r.status = 'pending' AND r.waiting_reminded_at IS NULL AND r.created_at <= $1 ORDER BY r.created_at LIMIT $2"
    ))
    .bind(before)
    .bind(limit)
    .fetch_all(ex)
    .await?)
}

/// Marks a reminder sent (of the grant's end when `expiry`, else of a request waiting);
/// false when another instance sent it first.
pub async fn mark_reminded(
    tx: &mut Tx,
    id: &RequestId,
    expiry: bool,
    now: i64,
) -> StoreResult<bool> {
    // Still the state it was picked in: a request decided, or a grant revoked or being renewed
    // meanwhile, is not reminded of.
    let (column, state) = if expiry {
        (
            "expiry_reminded_at",
            "status = 'approved' AND renewal_requested_at IS NULL",
        )
    } else {
        ("waiting_reminded_at", "status = 'pending'")
    };
    let done = sqlx::query(&format!(
        "UPDATE access_requests SET {column} = $2 WHERE id = $1 AND {column} IS NULL AND {state}"
    ))
    .bind(id)
    .bind(now)
    .execute(&mut **tx)
    .await?;
    Ok(done.rows_affected() == 1)
}

/// Live grants of an organization with a renewal waiting (at most 1000), for the inbox.
#[tracing::instrument(skip_all, fields(org_id = %org_id))]
pub async fn list_renewals(
    ex: impl AnyExecutor<'_>,
    org_id: &OrgId,
) -> StoreResult<Vec<RequestRow>> {
    Ok(sqlx::query_as(&format!(
        "{SELECT} WHERE r.organization_id = $1 AND r.renewal_requested_at IS NOT NULL AND r.status = 'approved' \
         ORDER BY r.renewal_requested_at DESC LIMIT 1000"
    ))
    .bind(org_id)
    .fetch_all(ex)
    .await?)
}
