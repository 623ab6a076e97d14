//! Reviewers' approvals of a request (quorum): one row per reviewer and request.

use sqlx::AnyExecutor;

use super::{StoreResult, Tx};
use crate::model::{OrgId, RequestId, UserId};

/// Records one reviewer's approval; false when this reviewer already approved.
#[tracing::instrument(skip_all, fields(request_id = %request_id, org_id = %org_id, voter_id = %voter_id))]
pub async fn insert_vote(
    tx: &mut Tx,
    request_id: &RequestId,
    org_id: &OrgId,
    voter_id: &UserId,
    voter_label: &str,
    now: i64,
) -> StoreResult<bool> {
    let done = sqlx::query(
        "INSERT INTO request_votes (request_id, organization_id, voter_id, voter_label, created_at) VALUES ($1, $2, $3, $4, $5) \
         ON CONFLICT (request_id, voter_id) DO NOTHING",
    )
    .bind(request_id)
    .bind(org_id)
    .bind(voter_id)
    .bind(voter_label)
    .bind(now)
    .execute(&mut **tx)
    .await?;
    Ok(done.rows_affected() == 1)
}

/// Who approved a request so far, in order.
#[tracing::instrument(skip_all, fields(request_id = %request_id))]
pub async fn list_votes(
    ex: impl AnyExecutor<'_>,
    request_id: &RequestId,
) -> StoreResult<Vec<String>> {
    sqlx::query_scalar("SELECT voter_label FROM request_votes WHERE request_id = $1 ORDER BY created_at, voter_label")
        .bind(request_id)
        .fetch_all(ex)
        .await
        .map_err(Into::into)
}

/// Approvals recorded on the organization's pending requests: (request id, approver).
#[tracing::instrument(skip_all, fields(org_id = %org_id))]
pub async fn pending_votes(
    ex: impl AnyExecutor<'_>,
    org_id: &OrgId,
) -> StoreResult<Vec<(String, String)>> {
    sqlx::query_as(
        "SELECT v.request_id, v.voter_label FROM request_votes v JOIN access_requests r ON r.id = v.request_id \
         WHERE r.organization_id = $1 AND (r.status = 'pending' OR (r.status = 'approved' AND r.renewal_requested_at IS NOT NULL)) ORDER BY v.created_at",
    )
    .bind(org_id)
    .fetch_all(ex)
    .await
    .map_err(Into::into)
}

/// Withdraws a member's approvals from pending requests (they were removed or can no longer
/// decide), so their vote cannot complete a quorum later.
#[tracing::instrument(skip_all, fields(org_id = %org_id, voter_id = %voter_id))]
pub async fn withdraw_pending_votes(
    tx: &mut Tx,
    org_id: &OrgId,
    voter_id: &UserId,
) -> StoreResult<u64> {
    let done = sqlx::query(
        "DELETE FROM request_votes WHERE organization_id = $1 AND voter_id = $2 \
         AND request_id IN (SELECT id FROM access_requests WHERE organization_id = $1 AND status = 'pending')",
    )
    .bind(org_id)
    .bind(voter_id)
    .execute(&mut **tx)
    .await?;
    Ok(done.rows_affected())
}
