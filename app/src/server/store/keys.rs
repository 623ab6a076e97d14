//! Wrapped data keys.

use crate::model::OrgId;
use sqlx::{AnyExecutor, FromRow};

use super::{StoreResult, Tx};

/// A `data_keys` row: one organization's data key, wrapped by the master key `kek_id`.
#[derive(Clone, Debug, FromRow)]
pub struct DataKeyRow {
    pub id: String,
    pub organization_id: OrgId,
    pub kek_id: String,
    pub wrapped_key: String,
}

#[tracing::instrument(skip_all)]
pub async fn insert_data_key(tx: &mut Tx, row: &DataKeyRow, now: i64) -> StoreResult<()> {
    sqlx::query(
        "INSERT INTO data_keys (id, organization_id, kek_id, wrapped_key, created_at) VALUES ($1, $2, $3, $4, $5)",
    )
    .bind(&row.id)
    .bind(&row.organization_id)
    .bind(&row.kek_id)
    .bind(&row.wrapped_key)
    .bind(now)
    .execute(&mut **tx)
    .await
    .map(|_| ())
    .map_err(Into::into)
}

/// The id of a master key other than `kek_id` that wraps some data key, if any.
#[tracing::instrument(skip_all)]
pub async fn other_kek_id(ex: impl AnyExecutor<'_>, kek_id: &str) -> StoreResult<Option<String>> {
    sqlx::query_scalar("SELECT kek_id FROM data_keys WHERE kek_id <> $1 LIMIT 1")
        .bind(kek_id)
        .fetch_optional(ex)
        .await
        .map_err(Into::into)
}

/// Every data key, oldest first (so the newest per organization is loaded last).
#[tracing::instrument(skip_all)]
pub async fn list_data_keys(ex: impl AnyExecutor<'_>) -> StoreResult<Vec<DataKeyRow>> {
    sqlx::query_as(
        "SELECT id, organization_id, kek_id, wrapped_key FROM data_keys ORDER BY created_at, id",
    )
    .fetch_all(ex)
    .await
    .map_err(Into::into)
}

#[tracing::instrument(skip_all, fields(id = %id))]
pub async fn update_data_key_wrapping(
    tx: &mut Tx,
    id: &str,
    kek_id: &str,
    wrapped: &str,
    now: i64,
) -> StoreResult<()> {
    sqlx::query(
        "UPDATE data_keys SET kek_id = $2, wrapped_key = $3, rewrapped_at = $4 WHERE id = $1",
    )
    .bind(id)
    .bind(kek_id)
    .bind(wrapped)
    .bind(now)
    .execute(&mut **tx)
    .await
    .map(|_| ())
    .map_err(Into::into)
}

/// The data keys of one organization, oldest first.
#[tracing::instrument(skip_all, fields(org_id = %org_id))]
pub async fn list_data_keys_for_org(
    ex: impl AnyExecutor<'_>,
    org_id: &OrgId,
) -> StoreResult<Vec<DataKeyRow>> {
    sqlx::query_as(
        "SELECT id, organization_id, kek_id, wrapped_key FROM data_keys WHERE organization_id = $1 ORDER BY created_at, id",
    )
    .bind(org_id)
    .fetch_all(ex)
    .await
    .map_err(Into::into)
}

/// Every sealed column: its table, the column, and the expression of the version its blob is
/// bound to (a column of the row, or a constant for values that are not versioned).
pub const SEALED_COLUMNS: &[(&str, &str, &str)] = &[
    ("tools", "credential_blob", "credential_version"),
    ("access_requests", "credential_blob", "credential_version"),
    ("notification_channels", "target_blob", "CAST(0 AS BIGINT)"),
];

/// A blob of the legacy format (`v1.`), with what its slot needs.
#[derive(Clone, Debug, FromRow)]
pub struct LegacyBlobRow {
    pub organization_id: String,
    pub id: String,
    pub version: i64,
    pub blob: String,
}

/// The legacy blobs of one of [`SEALED_COLUMNS`].
#[tracing::instrument(skip_all, fields(table = %table))]
pub async fn legacy_blobs(
    ex: impl AnyExecutor<'_>,
    (table, column, version): (&str, &str, &str),
) -> StoreResult<Vec<LegacyBlobRow>> {
    // Only the constant names above reach this text.
    let sql = format!(
        "SELECT organization_id, id, {version} AS version, {column} AS blob FROM {table} \
         WHERE {column} LIKE 'v1.%'"
    );
    sqlx::query_as(&sql).fetch_all(ex).await.map_err(Into::into)
}

/// Replaces a blob if it is still `old` at `version` (another instance may have re-sealed
/// or rotated it meanwhile).
#[tracing::instrument(skip_all, fields(table = %table, id = %id))]
pub async fn replace_blob(
    tx: &mut Tx,
    (table, column, version_expr): (&str, &str, &str),
    id: &str,
    old: &str,
    version: i64,
    new: &str,
) -> StoreResult<bool> {
    let sql = format!(
        "UPDATE {table} SET {column} = $1 WHERE id = $2 AND {column} = $3 AND {version_expr} = $4"
    );
    sqlx::query(&sql)
        .bind(new)
        .bind(id)
        .bind(old)
        .bind(version)
        .execute(&mut **tx)
        .await
        .map(|done| done.rows_affected() == 1)
        .map_err(Into::into)
}

/// True when the one-time maintenance step `name` has finished on this database.
#[tracing::instrument(skip_all, fields(name = %name))]
pub async fn maintenance_done(ex: impl AnyExecutor<'_>, name: &str) -> StoreResult<bool> {
    sqlx::query_scalar::<_, i64>("SELECT COUNT(*) FROM maintenance_runs WHERE name = $1")
        .bind(name)
        .fetch_one(ex)
        .await
        .map(|n| n > 0)
        .map_err(Into::into)
}

/// Records that `name` has finished (a second record of the same step is ignored).
#[tracing::instrument(skip_all, fields(name = %name))]
pub async fn record_maintenance(tx: &mut Tx, name: &str, now: i64) -> StoreResult<()> {
    sqlx::query(
        "INSERT INTO maintenance_runs (name, finished_at) VALUES ($1, $2) ON CONFLICT (name) DO NOTHING",
    )
    .bind(name)
    .bind(now)
    .execute(&mut **tx)
    .await
    .map(|_| ())
    .map_err(Into::into)
}
