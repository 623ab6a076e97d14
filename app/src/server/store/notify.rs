//! Notification channels and the delivery outbox.

use crate::model::{ChannelKind, OrgId, UserId};
use sqlx::{AnyExecutor, FromRow};

use super::{StoreResult, Tx};

/// A `notification_channels` row.
#[derive(Clone, Debug, FromRow)]
pub struct ChannelRow {
    pub id: String,
    pub organization_id: OrgId,
    pub kind: ChannelKind,
    pub target_blob: Option<String>,
    pub target_hint: Option<String>,
    pub events: String,
    pub last_status: Option<String>,
    pub last_at: Option<i64>,
    pub last_error: Option<String>,
    pub updated_by: String,
    pub updated_at: i64,
}

const CHANNEL_COLUMNS: &str = "id, organization_id, kind, target_blob, target_hint, events, last_status, last_at, last_error, updated_by, updated_at";

#[tracing::instrument(skip_all, fields(org_id = %org_id))]
pub async fn list_channels(
    ex: impl AnyExecutor<'_>,
    org_id: &OrgId,
) -> StoreResult<Vec<ChannelRow>> {
    sqlx::query_as(&format!("SELECT {CHANNEL_COLUMNS} FROM notification_channels WHERE organization_id = $1 ORDER BY kind"))
        .bind(org_id)
        .fetch_all(ex)
        .await
        .map_err(Into::into)
}

#[tracing::instrument(skip_all, fields(org_id = %org_id, kind = %kind))]
pub async fn find_channel(
    ex: impl AnyExecutor<'_>,
    org_id: &OrgId,
    kind: ChannelKind,
) -> StoreResult<Option<ChannelRow>> {
    sqlx::query_as(&format!("SELECT {CHANNEL_COLUMNS} FROM notification_channels WHERE organization_id = $1 AND kind = $2"))
        .bind(org_id)
        .bind(kind)
        .fetch_optional(ex)
        .await
        .map_err(Into::into)
}

/// What a settings change writes to a channel.
pub struct ChannelWrite<'a> {
    pub id: &'a str,
    pub org_id: &'a str,
    pub kind: ChannelKind,
    pub target_blob: Option<&'a str>,
    pub target_hint: Option<&'a str>,
    pub events: &'a str,
    pub updated_by: &'a str,
    /// The target changed: the last delivery status belonged to the old one.
    pub new_target: bool,
}

/// Creates or replaces a channel's target and events.
#[tracing::instrument(skip_all, fields(org_id = w.org_id, kind = %w.kind))]
pub async fn upsert_channel(tx: &mut Tx, w: &ChannelWrite<'_>, now: i64) -> StoreResult<()> {
    sqlx::query(
        "INSERT INTO notification_channels (id, organization_id, kind, target_blob, target_hint, events, updated_by, created_at, updated_at) \
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $8) \
         ON CONFLICT (organization_id, kind) DO UPDATE SET \
           last_status = CASE WHEN $9 THEN NULL ELSE notification_channels.last_status END, \
           last_at = CASE WHEN $9 THEN NULL ELSE notification_channels.last_at END, \
           last_error = CASE WHEN $9 THEN NULL ELSE notification_channels.last_error END, \
           target_blob = excluded.target_blob, target_hint = excluded.target_hint, events = excluded.events, \
           updated_by = excluded.updated_by, updated_at = excluded.updated_at",
    )
    .bind(w.id)
    .bind(w.org_id)
    .bind(w.kind)
    .bind(w.target_blob)
    .bind(w.target_hint)
    .bind(w.events)
    .bind(w.updated_by)
    .bind(now)
    .bind(w.new_target)
    .execute(&mut **tx)
    .await
    .map(|_| ())
    .map_err(Into::into)
}

#[tracing::instrument(skip_all, fields(org_id = %org_id, kind = %kind))]
pub async fn delete_channel(tx: &mut Tx, org_id: &OrgId, kind: ChannelKind) -> StoreResult<bool> {
    let done =
        sqlx::query("DELETE FROM notification_channels WHERE organization_id = $1 AND kind = $2")
            .bind(org_id)
            .bind(kind)
            .execute(&mut **tx)
            .await?;
    Ok(done.rows_affected() > 0)
}

/// Records the outcome of the latest delivery (or test) on a channel.
#[tracing::instrument(skip_all, fields(org_id = %org_id, kind = %kind))]
pub async fn record_channel_result(
    ex: impl AnyExecutor<'_>,
    org_id: &OrgId,
    kind: ChannelKind,
    error: Option<&str>,
    now: i64,
) -> StoreResult<()> {
    sqlx::query(
        "UPDATE notification_channels SET last_status = $3, last_at = $4, last_error = $5 WHERE organization_id = $1 AND kind = $2",
    )
    .bind(org_id)
    .bind(kind)
    .bind(if error.is_some() { "failed" } else { "delivered" })
    .bind(now)
    .bind(error)
    .execute(ex)
    .await
    .map(|_| ())
    .map_err(Into::into)
}

/// Addresses of the members of `org_id` who opted in to alert mail.
#[tracing::instrument(skip_all, fields(org_id = %org_id))]
pub async fn email_recipients(
    ex: impl AnyExecutor<'_>,
    org_id: &OrgId,
) -> StoreResult<Vec<String>> {
    sqlx::query_scalar(
        "SELECT u.email FROM memberships m JOIN users u ON u.id = m.user_id \
         WHERE m.organization_id = $1 AND m.email_alerts = 1 ORDER BY u.email",
    )
    .bind(org_id)
    .fetch_all(ex)
    .await
    .map_err(Into::into)
}

#[tracing::instrument(skip_all, fields(org_id = %org_id, user_id = %user_id))]
pub async fn email_opted_in(
    ex: impl AnyExecutor<'_>,
    org_id: &OrgId,
    user_id: &UserId,
) -> StoreResult<bool> {
    let on: Option<i64> = sqlx::query_scalar(
        "SELECT email_alerts FROM memberships WHERE organization_id = $1 AND user_id = $2",
    )
    .bind(org_id)
    .bind(user_id)
    .fetch_optional(ex)
    .await?;
    Ok(on == Some(1))
}

#[tracing::instrument(skip_all, fields(org_id = %org_id, user_id = %user_id))]
pub async fn set_email_opt_in(
    tx: &mut Tx,
    org_id: &OrgId,
    user_id: &UserId,
    on: bool,
) -> StoreResult<bool> {
    let done = sqlx::query(
        "UPDATE memberships SET email_alerts = $3 WHERE organization_id = $1 AND user_id = $2",
    )
    .bind(org_id)
    .bind(user_id)
    .bind(i64::from(on))
    .execute(&mut **tx)
    .await?;
    Ok(done.rows_affected() > 0)
}
