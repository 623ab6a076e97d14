//! Sign-in tokens, dashboard sessions, and the membership lookups that authorize a session.

use crate::model::{OrgId, Role, UserId};
use sqlx::{AnyExecutor, FromRow};

use super::{StoreResult, Tx};

/// A `sign_in_tokens` row.
#[derive(Clone, Debug, FromRow)]
pub struct TokenRow {
    pub id: String,
    pub purpose: String,
    pub email: Option<String>,
    pub expires_at: i64,
    pub consumed_at: Option<i64>,
}

pub struct NewToken<'a> {
    pub id: &'a str,
    pub token_hash: &'a str,
    pub purpose: &'a str,
    pub email: Option<&'a str>,
    pub requested_ip: Option<&'a str>,
    pub expires_at: i64,
}

#[tracing::instrument(skip_all)]
pub async fn insert_token(ex: impl AnyExecutor<'_>, t: &NewToken<'_>, now: i64) -> StoreResult<()> {
    sqlx::query(
        "INSERT INTO sign_in_tokens (id, token_hash, purpose, email, requested_ip, created_at, expires_at) \
         VALUES ($1, $2, $3, $4, $5, $6, $7)",
    )
    .bind(t.id)
    .bind(t.token_hash)
    .bind(t.purpose)
    .bind(t.email)
    .bind(t.requested_ip)
    .bind(now)
    .bind(t.expires_at)
    .execute(ex)
    .await
    .map(|_| ())
    .map_err(Into::into)
}

#[tracing::instrument(skip_all)]
pub async fn find_token(
    ex: impl AnyExecutor<'_>,
    token_hash: &str,
) -> StoreResult<Option<TokenRow>> {
    sqlx::query_as("SELECT id, purpose, email, expires_at, consumed_at FROM sign_in_tokens WHERE token_hash = $1")
        .bind(token_hash)
        .fetch_optional(ex)
        .await
        .map_err(Into::into)
}

/// Marks a token used; false when it was already used (the loser of a double submit).
#[tracing::instrument(skip_all, fields(id = %id))]
pub async fn consume_token(tx: &mut Tx, id: &str, now: i64) -> StoreResult<bool> {
    let done = sqlx::query(
        "UPDATE sign_in_tokens SET consumed_at = $2 WHERE id = $1 AND consumed_at IS NULL",
    )
    .bind(id)
    .bind(now)
    .execute(&mut **tx)
    .await?;
    Ok(done.rows_affected() == 1)
}

/// Ends every unused bootstrap token (a new start prints a new one).
#[tracing::instrument(skip_all)]
pub async fn expire_bootstrap_tokens(ex: impl AnyExecutor<'_>, now: i64) -> StoreResult<()> {
    sqlx::query("UPDATE sign_in_tokens SET expires_at = $1 WHERE purpose = 'bootstrap' AND consumed_at IS NULL AND expires_at > $1")
        .bind(now)
        .execute(ex)
        .await
        .map(|_| ())
        .map_err(Into::into)
}

#[tracing::instrument(skip_all)]
pub async fn count_memberships(ex: impl AnyExecutor<'_>) -> StoreResult<i64> {
    sqlx::query_scalar("SELECT COUNT(*) FROM memberships")
        .fetch_one(ex)
        .await
        .map_err(Into::into)
}

/// A person's membership in one organization.
#[derive(Clone, Debug, FromRow)]
pub struct MemberRow {
    pub user_id: UserId,
    pub email: String,
    pub organization_id: OrgId,
    pub organization_name: String,
    pub role: Role,
}

const MEMBER_SELECT: &str = "SELECT u.id AS user_id, u.email, o.id AS organization_id, o.name AS organization_name, m.role \
                             FROM memberships m JOIN users u ON u.id = m.user_id JOIN organizations o ON o.id = m.organization_id";

/// Every membership of a user, oldest first.
#[tracing::instrument(skip_all, fields(user_id = %user_id))]
pub async fn find_memberships(
    ex: impl AnyExecutor<'_>,
    user_id: &UserId,
) -> StoreResult<Vec<MemberRow>> {
    sqlx::query_as(&format!(
        "{MEMBER_SELECT} WHERE u.id = $1 ORDER BY m.created_at, o.id"
    ))
    .bind(user_id)
    .fetch_all(ex)
    .await
    .map_err(Into::into)
}

/// The user id for an email address that belongs to at least one organization.
#[tracing::instrument(skip_all)]
pub async fn find_member_user(
    ex: impl AnyExecutor<'_>,
    email: &str,
) -> StoreResult<Option<UserId>> {
    sqlx::query_scalar(
        "SELECT u.id FROM users u WHERE u.email = $1 AND EXISTS (SELECT 1 FROM memberships m WHERE m.user_id = u.id)",
    )
    .bind(email)
    .fetch_optional(ex)
    .await
    .map_err(Into::into)
}

/// A `sessions` row.
#[derive(Clone, Debug, FromRow)]
pub struct SessionRow {
    pub id_hash: String,
    pub user_id: Option<UserId>,
    pub data: String,
    pub ip: Option<String>,
    pub user_agent: Option<String>,
    pub created_at: i64,
    pub updated_at: i64,
    pub expires_at: i64,
}

pub struct SessionWrite<'a> {
    pub id_hash: &'a str,
    // The session layer's own text: it is written from the session record, not by a service.
    pub user_id: Option<&'a str>,
    pub data: &'a str,
    pub ip: Option<&'a str>,
    pub user_agent: Option<&'a str>,
    pub expires_at: i64,
}

/// Rewrites an existing session's data and expiry; false when the row is gone (signed out or
/// ended elsewhere meanwhile: it is never brought back). `created_at` stays.
#[tracing::instrument(skip_all)]
pub async fn update_session(
    ex: impl AnyExecutor<'_>,
    s: &SessionWrite<'_>,
    now: i64,
) -> StoreResult<bool> {
    let sql = "UPDATE sessions SET user_id = $2, data = $3, ip = $4, user_agent = $5, updated_at = $6, expires_at = $7 \
               WHERE id_hash = $1";
    write_session(ex, sql, s, now).await.map(|rows| rows == 1)
}

/// Moves an existing session's idle expiry on, its data untouched.
#[tracing::instrument(skip_all)]
pub async fn touch_session(
    ex: impl AnyExecutor<'_>,
    id_hash: &str,
    expires_at: i64,
    now: i64,
) -> StoreResult<()> {
    sqlx::query("UPDATE sessions SET updated_at = $2, expires_at = $3 WHERE id_hash = $1")
        .bind(id_hash)
        .bind(now)
        .bind(expires_at)
        .execute(ex)
        .await?;
    Ok(())
}

/// Inserts a new session; false when the id is taken (the caller picks another id).
#[tracing::instrument(skip_all)]
pub async fn insert_session(
    ex: impl AnyExecutor<'_>,
    s: &SessionWrite<'_>,
    now: i64,
) -> StoreResult<bool> {
    let sql = "INSERT INTO sessions (id_hash, user_id, data, ip, user_agent, created_at, updated_at, expires_at) \
               VALUES ($1, $2, $3, $4, $5, $6, $6, $7) ON CONFLICT (id_hash) DO NOTHING";
    write_session(ex, sql, s, now).await.map(|rows| rows == 1)
}

/// Runs a session write whose parameters are, in order: id hash, user, data, IP, user agent,
/// now, expiry; returns the rows written.
async fn write_session(
    ex: impl AnyExecutor<'_>,
    sql: &str,
    s: &SessionWrite<'_>,
    now: i64,
) -> StoreResult<u64> {
    let done = sqlx::query(sql)
        .bind(s.id_hash)
        .bind(s.user_id)
        .bind(s.data)
        .bind(s.ip)
        .bind(s.user_agent)
        .bind(now)
        .bind(s.expires_at)
        .execute(ex)
        .await?;
    Ok(done.rows_affected())
}

const SESSION_COLUMNS: &str =
    "id_hash, user_id, data, ip, user_agent, created_at, updated_at, expires_at";

#[tracing::instrument(skip_all)]
pub async fn find_session(
    ex: impl AnyExecutor<'_>,
    id_hash: &str,
    now: i64,
) -> StoreResult<Option<SessionRow>> {
    sqlx::query_as(&format!(
        "SELECT {SESSION_COLUMNS} FROM sessions WHERE id_hash = $1 AND expires_at > $2"
    ))
    .bind(id_hash)
    .bind(now)
    .fetch_optional(ex)
    .await
    .map_err(Into::into)
}

#[tracing::instrument(skip_all, fields(user_id = %user_id))]
pub async fn list_user_sessions(
    ex: impl AnyExecutor<'_>,
    user_id: &UserId,
    now: i64,
) -> StoreResult<Vec<SessionRow>> {
    sqlx::query_as(&format!(
        "SELECT {SESSION_COLUMNS} FROM sessions WHERE user_id = $1 AND expires_at > $2 ORDER BY updated_at DESC"
    ))
    .bind(user_id)
    .bind(now)
    .fetch_all(ex)
    .await
    .map_err(Into::into)
}

#[tracing::instrument(skip_all)]
pub async fn delete_session(ex: impl AnyExecutor<'_>, id_hash: &str) -> StoreResult<()> {
    sqlx::query("DELETE FROM sessions WHERE id_hash = $1")
        .bind(id_hash)
        .execute(ex)
        .await
        .map(|_| ())
        .map_err(Into::into)
}

/// Deletes one of a user's sessions by the public handle shown in the session list.
#[tracing::instrument(skip_all, fields(user_id = %user_id))]
pub async fn delete_user_session(
    ex: impl AnyExecutor<'_>,
    user_id: &UserId,
    id_hash_prefix: &str,
) -> StoreResult<u64> {
    let done =
        sqlx::query("DELETE FROM sessions WHERE user_id = $1 AND substr(id_hash, 1, 16) = $2")
            .bind(user_id)
            .bind(id_hash_prefix)
            .execute(ex)
            .await?;
    Ok(done.rows_affected())
}

#[tracing::instrument(skip_all)]
pub async fn delete_expired_sessions(ex: impl AnyExecutor<'_>, now: i64) -> StoreResult<u64> {
    let done = sqlx::query("DELETE FROM sessions WHERE expires_at <= $1")
        .bind(now)
        .execute(ex)
        .await?;
    Ok(done.rows_affected())
}
