//! How a grant is used through the proxy: the approval's narrowing and the daily budget.

use sqlx::AnyExecutor;

use super::{StoreResult, Tx};
use crate::model::{OrgId, RequestId};

/// Records how an approval narrows a grant's proxied use (inside the approving transaction).
#[tracing::instrument(skip_all, fields(id = %id))]
pub async fn set_scope(
    tx: &mut Tx,
    id: &RequestId,
    read_only: bool,
    rules: Option<&str>,
    calls_per_day: Option<i64>,
) -> StoreResult<()> {
    sqlx::query(
        "UPDATE access_requests SET proxy_read_only = $2, proxy_rules = $3, calls_per_day = $4 WHERE id = $1",
    )
    .bind(id)
    .bind(i64::from(read_only))
    .bind(rules)
    .bind(calls_per_day)
    .execute(&mut **tx)
    .await
    .map(|_| ())
    .map_err(Into::into)
}

/// Proxied calls made today (`day`, days since the epoch, UTC) by the organization's grants.
#[tracing::instrument(skip_all, fields(org_id = %org_id))]
pub async fn usage_on(
    ex: impl AnyExecutor<'_>,
    org_id: &OrgId,
    day: i64,
) -> StoreResult<Vec<(RequestId, i64)>> {
    sqlx::query_as(
        "SELECT u.request_id, u.calls FROM grant_usage u JOIN access_requests r ON r.id = u.request_id \
         WHERE r.organization_id = $1 AND u.day = $2",
    )
    .bind(org_id)
    .bind(day)
    .fetch_all(ex)
    .await
    .map_err(Into::into)
}

/// Claims `n` calls of a grant's budget for `day` in the auditing transaction: false (and
/// nothing claimed) when fewer than `n` of `limit` are left that day. The row lock serializes
/// instances.
#[tracing::instrument(skip_all, fields(id = %id))]
pub async fn claim_calls(
    tx: &mut Tx,
    id: &RequestId,
    day: i64,
    n: i64,
    limit: i64,
) -> StoreResult<bool> {
    let done = sqlx::query(
        "INSERT INTO grant_usage (request_id, day, calls) SELECT $1, $2, $3 WHERE $3 <= $4 \
         ON CONFLICT (request_id, day) DO UPDATE SET calls = grant_usage.calls + $3 WHERE grant_usage.calls <= $4 - $3",
    )
    .bind(id)
    .bind(day)
    .bind(n)
    .bind(limit)
    .execute(&mut **tx)
    .await?;
    Ok(done.rows_affected() == 1)
}
