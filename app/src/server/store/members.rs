//! Members of an organization and invitations to join it.

use crate::model::{OrgId, Role, UserId};
use sqlx::{AnyExecutor, FromRow};

use super::{StoreResult, Tx};

/// A member as the members page lists them.
#[derive(Clone, Debug, FromRow)]
pub struct MembershipRow {
    pub user_id: UserId,
    pub email: String,
    pub role: Role,
    pub created_at: i64,
}

#[tracing::instrument(skip_all, fields(org_id = %org_id))]
pub async fn list_members(
    ex: impl AnyExecutor<'_>,
    org_id: &OrgId,
) -> StoreResult<Vec<MembershipRow>> {
    sqlx::query_as(
        "SELECT u.id AS user_id, u.email, m.role, m.created_at FROM memberships m JOIN users u ON u.id = m.user_id \
         WHERE m.organization_id = $1 ORDER BY m.created_at, u.email",
    )
    .bind(org_id)
    .fetch_all(ex)
    .await
    .map_err(Into::into)
}

#[tracing::instrument(skip_all, fields(org_id = %org_id, user_id = %user_id))]
pub async fn find_member(
    ex: impl AnyExecutor<'_>,
    org_id: &OrgId,
    user_id: &UserId,
) -> StoreResult<Option<MembershipRow>> {
    sqlx::query_as(
        "SELECT u.id AS user_id, u.email, m.role, m.created_at FROM memberships m JOIN users u ON u.id = m.user_id \
         WHERE m.organization_id = $1 AND m.user_id = $2",
    )
    .bind(org_id)
    .bind(user_id)
    .fetch_optional(ex)
    .await
    .map_err(Into::into)
}

#[tracing::instrument(skip_all, fields(org_id = %org_id))]
pub async fn count_owners(ex: impl AnyExecutor<'_>, org_id: &OrgId) -> StoreResult<i64> {
    sqlx::query_scalar(
        "SELECT COUNT(*) FROM memberships WHERE organization_id = $1 AND role = 'owner'",
    )
    .bind(org_id)
    .fetch_one(ex)
    .await
    .map_err(Into::into)
}

#[tracing::instrument(skip_all, fields(org_id = %org_id, user_id = %user_id))]
pub async fn set_role(
    tx: &mut Tx,
    org_id: &OrgId,
    user_id: &UserId,
    role: Role,
) -> StoreResult<bool> {
    let done =
        sqlx::query("UPDATE memberships SET role = $3 WHERE organization_id = $1 AND user_id = $2")
            .bind(org_id)
            .bind(user_id)
            .bind(role)
            .execute(&mut **tx)
            .await?;
    Ok(done.rows_affected() == 1)
}

#[tracing::instrument(skip_all, fields(org_id = %org_id, user_id = %user_id))]
pub async fn delete_membership(tx: &mut Tx, org_id: &OrgId, user_id: &UserId) -> StoreResult<bool> {
    let done = sqlx::query("DELETE FROM memberships WHERE organization_id = $1 AND user_id = $2")
        .bind(org_id)
        .bind(user_id)
        .execute(&mut **tx)
        .await?;
    Ok(done.rows_affected() == 1)
}

/// Ends every session of a user (they were removed from an organization).
#[tracing::instrument(skip_all, fields(user_id = %user_id))]
pub async fn delete_user_sessions(tx: &mut Tx, user_id: &UserId) -> StoreResult<u64> {
    Ok(sqlx::query("DELETE FROM sessions WHERE user_id = $1")
        .bind(user_id)
        .execute(&mut **tx)
        .await?
        .rows_affected())
}

/// An `invitations` row.
#[derive(Clone, Debug, FromRow)]
pub struct InvitationRow {
    pub id: String,
    pub organization_id: OrgId,
    pub email: String,
    pub role: Role,
    pub invited_by: String,
    pub created_at: i64,
    pub expires_at: i64,
    pub accepted_at: Option<i64>,
    pub revoked_at: Option<i64>,
}

const INVITATION_COLUMNS: &str =
    "id, organization_id, email, role, invited_by, created_at, expires_at, accepted_at, revoked_at";

/// A new invitation (the token is stored as its hash).
pub struct NewInvitation<'a> {
    pub id: &'a str,
    pub org_id: &'a str,
    pub email: &'a str,
    pub role: Role,
    pub token_hash: &'a str,
    pub invited_by: &'a str,
    pub expires_at: i64,
}

#[tracing::instrument(skip_all)]
pub async fn insert_invitation(tx: &mut Tx, i: &NewInvitation<'_>, now: i64) -> StoreResult<()> {
    sqlx::query(
        "INSERT INTO invitations (id, organization_id, email, role, token_hash, invited_by, created_at, expires_at) \
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8)",
    )
    .bind(i.id)
    .bind(i.org_id)
    .bind(i.email)
    .bind(i.role)
    .bind(i.token_hash)
    .bind(i.invited_by)
    .bind(now)
    .bind(i.expires_at)
    .execute(&mut **tx)
    .await
    .map(|_| ())
    .map_err(Into::into)
}

/// Open invitations of an organization (not accepted, not revoked, not expired).
#[tracing::instrument(skip_all, fields(org_id = %org_id))]
pub async fn list_open_invitations(
    ex: impl AnyExecutor<'_>,
    org_id: &OrgId,
    now: i64,
) -> StoreResult<Vec<InvitationRow>> {
    sqlx::query_as(&format!(
        "SELECT {INVITATION_COLUMNS} FROM invitations WHERE organization_id = $1 AND accepted_at IS NULL \
         AND revoked_at IS NULL AND expires_at > $2 ORDER BY created_at DESC"
    ))
    .bind(org_id)
    .bind(now)
    .fetch_all(ex)
    .await
    .map_err(Into::into)
}

#[tracing::instrument(skip_all, fields(org_id = %org_id, id = %id))]
pub async fn find_invitation(
    ex: impl AnyExecutor<'_>,
    org_id: &OrgId,
    id: &str,
) -> StoreResult<Option<InvitationRow>> {
    sqlx::query_as(&format!(
        "SELECT {INVITATION_COLUMNS} FROM invitations WHERE organization_id = $1 AND id = $2"
    ))
    .bind(org_id)
    .bind(id)
    .fetch_optional(ex)
    .await
    .map_err(Into::into)
}

#[tracing::instrument(skip_all)]
pub async fn find_invitation_by_token(
    ex: impl AnyExecutor<'_>,
    token_hash: &str,
) -> StoreResult<Option<InvitationRow>> {
    sqlx::query_as(&format!(
        "SELECT {INVITATION_COLUMNS} FROM invitations WHERE token_hash = $1"
    ))
    .bind(token_hash)
    .fetch_optional(ex)
    .await
    .map_err(Into::into)
}

/// Ends open invitations of `email` in the organization (replaced by a new one, or revoked).
#[tracing::instrument(skip_all, fields(org_id = %org_id))]
pub async fn revoke_open_invitations(
    tx: &mut Tx,
    org_id: &OrgId,
    email: &str,
    now: i64,
) -> StoreResult<u64> {
    let done = sqlx::query(
        "UPDATE invitations SET revoked_at = $3 WHERE organization_id = $1 AND email = $2 AND accepted_at IS NULL AND revoked_at IS NULL",
    )
    .bind(org_id)
    .bind(email)
    .bind(now)
    .execute(&mut **tx)
    .await?;
    Ok(done.rows_affected())
}

/// Revokes one open invitation; false if it was not open.
#[tracing::instrument(skip_all, fields(org_id = %org_id, id = %id))]
pub async fn revoke_invitation(
    tx: &mut Tx,
    org_id: &OrgId,
    id: &str,
    now: i64,
) -> StoreResult<bool> {
    let done = sqlx::query(
        "UPDATE invitations SET revoked_at = $3 WHERE organization_id = $1 AND id = $2 AND accepted_at IS NULL AND revoked_at IS NULL",
    )
    .bind(org_id)
    .bind(id)
    .bind(now)
    .execute(&mut **tx)
    .await?;
    Ok(done.rows_affected() == 1)
}

/// Marks an invitation used; false if it was used, revoked or expired in the meantime.
#[tracing::instrument(skip_all, fields(id = %id))]
pub async fn accept_invitation(tx: &mut Tx, id: &str, now: i64) -> StoreResult<bool> {
    let done = sqlx::query(
        "UPDATE invitations SET accepted_at = $2 WHERE id = $1 AND accepted_at IS NULL AND revoked_at IS NULL AND expires_at > $2",
    )
    .bind(id)
    .bind(now)
    .execute(&mut **tx)
    .await?;
    Ok(done.rows_affected() == 1)
}

#[tracing::instrument(skip_all, fields(org_id = %org_id))]
pub async fn allowed_domains(
    ex: impl AnyExecutor<'_>,
    org_id: &OrgId,
) -> StoreResult<Option<String>> {
    sqlx::query_scalar::<_, Option<String>>(
        "SELECT allowed_domains FROM organizations WHERE id = $1",
    )
    .bind(org_id)
    .fetch_optional(ex)
    .await
    .map(Option::flatten)
    .map_err(Into::into)
}

#[tracing::instrument(skip_all, fields(org_id = %org_id))]
pub async fn set_allowed_domains(
    tx: &mut Tx,
    org_id: &OrgId,
    domains: Option<&str>,
) -> StoreResult<()> {
    sqlx::query("UPDATE organizations SET allowed_domains = $2 WHERE id = $1")
        .bind(org_id)
        .bind(domains)
        .execute(&mut **tx)
        .await
        .map(|_| ())
        .map_err(Into::into)
}
