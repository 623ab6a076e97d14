//! The notification outbox: one row per alert and destination, written in the event's transaction,
//! claimed and retried by the delivery worker.

use sqlx::{AnyExecutor, FromRow};

use super::{StoreResult, Tx};
use crate::model::{AlertEvent, ChannelKind, DeliveryStatus, OrgId};

/// A new outbox row.
pub struct NewDelivery<'a> {
    pub id: &'a str,
    pub org_id: &'a str,
    pub channel: ChannelKind,
    pub recipient: Option<&'a str>,
    pub event: AlertEvent,
    pub payload: &'a str,
}

#[tracing::instrument(skip_all)]
pub async fn insert_delivery(tx: &mut Tx, d: &NewDelivery<'_>, now: i64) -> StoreResult<()> {
    sqlx::query(
        "INSERT INTO notification_outbox (id, organization_id, channel, recipient, event, payload, status, attempts, next_attempt_at, created_at) \
         VALUES ($1, $2, $3, $4, $5, $6, 'pending', 0, $7, $7)",
    )
    .bind(d.id)
    .bind(d.org_id)
    .bind(d.channel)
    .bind(d.recipient)
    .bind(d.event)
    .bind(d.payload)
    .bind(now)
    .execute(&mut **tx)
    .await
    .map(|_| ())
    .map_err(Into::into)
}

/// An outbox row as the worker and the settings page see it.
#[derive(Clone, Debug, FromRow)]
pub struct DeliveryRow {
    pub id: String,
    pub organization_id: OrgId,
    pub channel: ChannelKind,
    pub recipient: Option<String>,
    /// As stored: an event this version does not know (written by a newer instance) fails
    /// that one delivery, not the whole claim.
    pub event: String,
    pub payload: String,
    pub status: DeliveryStatus,
    pub attempts: i64,
    pub next_attempt_at: i64,
    pub last_error: Option<String>,
    pub created_at: i64,
    pub delivered_at: Option<i64>,
}

const DELIVERY_COLUMNS: &str = "id, organization_id, channel, recipient, event, payload, status, attempts, next_attempt_at, last_error, created_at, delivered_at";

/// Takes up to `limit` due rows for this worker until `locked_until`, counting the attempt
/// now so that a crash mid-delivery still counts. Two workers on the same database never take
/// the same row: SQLite has a single writer, so claims never overlap; on PostgreSQL
/// `FOR UPDATE SKIP LOCKED` makes each skip the rows another is claiming (under READ COMMITTED
/// the outer UPDATE would not re-run the subquery, so without it both could take a row).
#[tracing::instrument(skip_all)]
pub async fn claim_due(
    ex: impl AnyExecutor<'_>,
    backend: super::Backend,
    now: i64,
    locked_until: i64,
    limit: i64,
    max_attempts: i64,
) -> StoreResult<Vec<DeliveryRow>> {
    let lock = if backend == super::Backend::Postgres {
        " FOR UPDATE SKIP LOCKED"
    } else {
        ""
    };
    sqlx::query_as(&format!(
        "UPDATE notification_outbox SET locked_until = $2, attempts = attempts + 1 \
         WHERE id IN (SELECT id FROM notification_outbox \
                      WHERE status = 'pending' AND next_attempt_at <= $1 AND (locked_until IS NULL OR locked_until <= $1) \
                      AND attempts < $4 ORDER BY next_attempt_at, id LIMIT $3{lock}) \
         RETURNING {DELIVERY_COLUMNS}"
    ))
    .bind(now)
    .bind(locked_until)
    .bind(limit)
    .bind(max_attempts)
    .fetch_all(ex)
    .await
    .map_err(Into::into)
}

/// Dead-letters rows whose attempts ran out without a recorded outcome (a send that crashed
/// its worker); returns how many.
#[tracing::instrument(skip_all)]
pub async fn dead_letter_exhausted(
    ex: impl AnyExecutor<'_>,
    now: i64,
    max_attempts: i64,
) -> StoreResult<u64> {
    let done = sqlx::query(
        "UPDATE notification_outbox SET status = 'dead', locked_until = NULL, \
         last_error = COALESCE(last_error, 'no outcome was recorded for the last attempt') \
         WHERE status = 'pending' AND attempts >= $2 AND (locked_until IS NULL OR locked_until <= $1)",
    )
    .bind(now)
    .bind(max_attempts)
    .execute(ex)
    .await?;
    Ok(done.rows_affected())
}

/// When the next pending row falls due (ignoring rows another worker holds), if any.
#[tracing::instrument(skip_all)]
pub async fn next_due(ex: impl AnyExecutor<'_>) -> StoreResult<Option<i64>> {
    sqlx::query_scalar("SELECT MIN(COALESCE(CASE WHEN locked_until > next_attempt_at THEN locked_until END, next_attempt_at)) FROM notification_outbox WHERE status = 'pending'")
        .fetch_one(ex)
        .await
        .map_err(Into::into)
}

/// Records a delivery. `attempt` fences the update to the claim that made it: a worker whose
/// lease ran out cannot overwrite the state of a newer attempt.
#[tracing::instrument(skip_all, fields(id = %id))]
pub async fn mark_delivered(
    ex: impl AnyExecutor<'_>,
    id: &str,
    attempt: i64,
    now: i64,
) -> StoreResult<()> {
    sqlx::query(
        "UPDATE notification_outbox SET status = 'delivered', delivered_at = $2, locked_until = NULL, last_error = NULL \
         WHERE id = $1 AND status = 'pending' AND attempts = $3",
    )
    .bind(id)
    .bind(now)
    .bind(attempt)
    .execute(ex)
    .await
    .map(|_| ())
    .map_err(Into::into)
}

/// Schedules another attempt, or dead-letters the row when `next_attempt_at` is `None`.
#[tracing::instrument(skip_all, fields(id = %id))]
pub async fn mark_failed(
    ex: impl AnyExecutor<'_>,
    id: &str,
    attempt: i64,
    error: &str,
    next_attempt_at: Option<i64>,
) -> StoreResult<()> {
    sqlx::query(
        "UPDATE notification_outbox SET status = CASE WHEN $3 IS NULL THEN 'dead' ELSE 'pending' END, \
         next_attempt_at = COALESCE($3, next_attempt_at), locked_until = NULL, last_error = $2 \
         WHERE id = $1 AND status = 'pending' AND attempts = $4",
    )
    .bind(id)
    .bind(error)
    .bind(next_attempt_at)
    .bind(attempt)
    .execute(ex)
    .await
    .map(|_| ())
    .map_err(Into::into)
}

/// Dead-lettered rows of an organization, newest first.
#[tracing::instrument(skip_all, fields(org_id = %org_id))]
pub async fn list_dead(
    ex: impl AnyExecutor<'_>,
    org_id: &OrgId,
    limit: i64,
) -> StoreResult<Vec<DeliveryRow>> {
    sqlx::query_as(&format!(
        "SELECT {DELIVERY_COLUMNS} FROM notification_outbox WHERE organization_id = $1 AND status = 'dead' ORDER BY created_at DESC, id LIMIT $2"
    ))
    .bind(org_id)
    .bind(limit)
    .fetch_all(ex)
    .await
    .map_err(Into::into)
}

/// Puts a dead letter back in the queue with a fresh set of attempts.
#[tracing::instrument(skip_all, fields(org_id = %org_id, id = %id))]
pub async fn requeue_dead(tx: &mut Tx, org_id: &OrgId, id: &str, now: i64) -> StoreResult<bool> {
    let done = sqlx::query(
        "UPDATE notification_outbox SET status = 'pending', attempts = 0, next_attempt_at = $3, locked_until = NULL \
         WHERE organization_id = $1 AND id = $2 AND status = 'dead'",
    )
    .bind(org_id)
    .bind(id)
    .bind(now)
    .execute(&mut **tx)
    .await?;
    Ok(done.rows_affected() > 0)
}

/// Rows per status for an organization: (pending, delivered, dead).
#[tracing::instrument(skip_all, fields(org_id = %org_id))]
pub async fn count_by_status(
    ex: impl AnyExecutor<'_>,
    org_id: &OrgId,
) -> StoreResult<(i64, i64, i64)> {
    sqlx::query_as(
        "SELECT COUNT(CASE WHEN status = 'pending' THEN 1 END), \
                COUNT(CASE WHEN status = 'delivered' THEN 1 END), \
                COUNT(CASE WHEN status = 'dead' THEN 1 END) \
         FROM notification_outbox WHERE organization_id = $1",
    )
    .bind(org_id)
    .fetch_one(ex)
    .await
    .map_err(Into::into)
}

/// Dead-letters every undelivered row of a channel (it was removed); returns how many.
#[tracing::instrument(skip_all, fields(org_id = %org_id))]
pub async fn dead_letter_channel(
    tx: &mut Tx,
    org_id: &OrgId,
    channel: ChannelKind,
    error: &str,
) -> StoreResult<u64> {
    let done = sqlx::query(
        "UPDATE notification_outbox SET status = 'dead', last_error = $3, locked_until = NULL \
         WHERE organization_id = $1 AND channel = $2 AND status = 'pending'",
    )
    .bind(org_id)
    .bind(channel)
    .bind(error)
    .execute(&mut **tx)
    .await?;
    Ok(done.rows_affected())
}

/// Dead-letters undelivered alert mail to one address (the member left the organization).
#[tracing::instrument(skip_all, fields(org_id = %org_id))]
pub async fn dead_letter_recipient(tx: &mut Tx, org_id: &OrgId, email: &str) -> StoreResult<u64> {
    let done = sqlx::query(
        "UPDATE notification_outbox SET status = 'dead', last_error = 'the recipient is no longer a member', locked_until = NULL \
         WHERE organization_id = $1 AND channel = 'email' AND recipient = $2 AND status = 'pending'",
    )
    .bind(org_id)
    .bind(email)
    .execute(&mut **tx)
    .await?;
    Ok(done.rows_affected())
}

/// Notifications waiting for delivery and those given up, across organizations (metrics).
#[tracing::instrument(skip_all)]
pub async fn count_backlog(ex: impl AnyExecutor<'_>) -> StoreResult<(i64, i64)> {
    let (pending, dead): (i64, i64) = sqlx::query_as(
        "SELECT COALESCE(SUM(CASE WHEN status = 'pending' THEN 1 ELSE 0 END), 0), \
         COALESCE(SUM(CASE WHEN status = 'dead' THEN 1 ELSE 0 END), 0) \
         FROM notification_outbox WHERE status IN ('pending', 'dead')",
    )
    .fetch_one(ex)
    .await?;
    Ok((pending, dead))
}
