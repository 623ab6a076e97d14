//! Organizations, users and memberships.

use sqlx::{AnyExecutor, FromRow};

use super::{StoreResult, Tx};
use crate::model::{OrgId, Role, UserId};

/// An `organizations` row.
#[derive(Clone, Debug, FromRow)]
pub struct OrgRow {
    pub id: OrgId,
    pub name: String,
    pub created_at: i64,
}

#[tracing::instrument(skip_all, fields(org_id = id))]
pub async fn insert_organization(tx: &mut Tx, id: &str, name: &str, now: i64) -> StoreResult<()> {
    sqlx::query(
        "INSERT INTO organizations (id, name, created_at, updated_at) VALUES ($1, $2, $3, $3)",
    )
    .bind(id)
    .bind(name)
    .bind(now)
    .execute(&mut **tx)
    .await
    .map(|_| ())
    .map_err(Into::into)
}

#[tracing::instrument(skip_all, fields(id = %id))]
pub async fn find_organization(ex: impl AnyExecutor<'_>, id: &str) -> StoreResult<Option<OrgRow>> {
    sqlx::query_as("SELECT id, name, created_at FROM organizations WHERE id = $1")
        .bind(id)
        .fetch_optional(ex)
        .await
        .map_err(Into::into)
}

#[tracing::instrument(skip_all)]
pub async fn list_organizations(ex: impl AnyExecutor<'_>) -> StoreResult<Vec<OrgRow>> {
    sqlx::query_as("SELECT id, name, created_at FROM organizations WHERE deleted_at IS NULL ORDER BY created_at, id").fetch_all(ex).await.map_err(Into::into)
}

/// Ids of every organization, deleted ones included (their audit logs remain).
#[tracing::instrument(skip_all)]
pub async fn list_all_organization_ids(ex: impl AnyExecutor<'_>) -> StoreResult<Vec<OrgId>> {
    sqlx::query_scalar("SELECT id FROM organizations ORDER BY created_at, id")
        .fetch_all(ex)
        .await
        .map_err(Into::into)
}

/// Finds a user by normalized email, creating it if absent; returns the id.
#[tracing::instrument(skip_all, fields(id = %id))]
pub async fn upsert_user(tx: &mut Tx, id: &str, email: &str, now: i64) -> StoreResult<UserId> {
    sqlx::query("INSERT INTO users (id, email, created_at) VALUES ($1, $2, $3) ON CONFLICT (email) DO NOTHING")
        .bind(id)
        .bind(email)
        .bind(now)
        .execute(&mut **tx)
        .await?;
    sqlx::query_scalar("SELECT id FROM users WHERE email = $1")
        .bind(email)
        .fetch_one(&mut **tx)
        .await
        .map_err(Into::into)
}

#[tracing::instrument(skip_all, fields(id = %id, org_id = %org_id, user_id = %user_id))]
pub async fn insert_membership(
    tx: &mut Tx,
    id: &str,
    org_id: &OrgId,
    user_id: &UserId,
    role: Role,
    now: i64,
) -> StoreResult<()> {
    sqlx::query(
        "INSERT INTO memberships (id, organization_id, user_id, role, created_at) VALUES ($1, $2, $3, $4, $5)",
    )
    .bind(id)
    .bind(org_id)
    .bind(user_id)
    .bind(role)
    .bind(now)
    .execute(&mut **tx)
    .await
    .map(|_| ())
    .map_err(Into::into)
}

/// Instance-wide counts for the status page: agents, tools, pending requests, audit rows. The
/// audit rows are counted from the chain heads (each chain numbers its rows from 1 without a
/// gap), so the count costs the same with ten rows or ten million.
#[tracing::instrument(skip_all)]
pub async fn count_instance(ex: impl AnyExecutor<'_>) -> StoreResult<(i64, i64, i64, i64)> {
    sqlx::query_as(
        "SELECT (SELECT COUNT(*) FROM agents), (SELECT COUNT(*) FROM tools), \
         (SELECT COUNT(*) FROM access_requests WHERE status = 'pending'), \
         (SELECT CAST(COALESCE(SUM(seq), 0) AS BIGINT) FROM audit_heads)",
    )
    .fetch_one(ex)
    .await
    .map_err(Into::into)
}

/// One organization's figures for the overview: agents, tools, pending requests, pending
/// tool and guide suggestions, live grants.
#[tracing::instrument(skip_all, fields(org_id = %org_id))]
pub async fn count_org(
    ex: impl AnyExecutor<'_>,
    org_id: &OrgId,
    now: i64,
) -> StoreResult<(i64, i64, i64, i64, i64)> {
    sqlx::query_as(&format!(
        "SELECT (SELECT COUNT(*) FROM agents WHERE organization_id = $1), \
         (SELECT COUNT(*) FROM tools WHERE organization_id = $1), \
         (SELECT COUNT(*) FROM access_requests WHERE organization_id = $1 AND (status = 'pending' \
           OR (status = 'approved' AND renewal_requested_at IS NOT NULL))), \
         (SELECT COUNT(*) FROM tool_suggestions WHERE organization_id = $1 AND status = 'pending') \
           + (SELECT COUNT(*) FROM guide_suggestions WHERE organization_id = $1 AND status = 'pending'), \
         (SELECT COUNT(*) FROM access_requests r WHERE r.organization_id = $1 AND {live})",
        live = super::requests::live_grant_sql("r", 2),
    ))
    .bind(org_id)
    .bind(now)
    .fetch_one(ex)
    .await
    .map_err(Into::into)
}

/// Deletes an organization the way a credential broker must: every way in is closed and every
/// secret becomes unreadable (its data keys are destroyed), while the audit log stays. Agents
/// are suspended, live grants revoked, secrets and webhooks dropped, undelivered alerts
/// dead-lettered, invitations revoked, members removed and their sessions ended.
#[tracing::instrument(skip_all, fields(org_id))]
pub async fn delete_organization(tx: &mut Tx, org_id: &OrgId, now: i64) -> StoreResult<()> {
    for sql in [
        "UPDATE organizations SET deleted_at = $2, updated_at = $2 WHERE id = $1",
        "UPDATE agents SET status = 'suspended', updated_at = $2 WHERE organization_id = $1",
        "UPDATE tools SET credential_blob = NULL, updated_at = $2 WHERE organization_id = $1",
        "UPDATE access_requests SET credential_blob = NULL, updated_at = $2, \
           status = CASE WHEN status IN ('pending', 'approved') THEN 'revoked' ELSE status END WHERE organization_id = $1",
        "UPDATE invitations SET revoked_at = $2 WHERE organization_id = $1 AND accepted_at IS NULL AND revoked_at IS NULL",
    ] {
        sqlx::query(sql)
            .bind(org_id)
            .bind(now)
            .execute(&mut **tx)
            .await?;
    }
    for sql in [
        "UPDATE notification_outbox SET status = 'dead', last_error = 'the organization was deleted' \
           WHERE organization_id = $1 AND status = 'pending'",
        "DELETE FROM sessions WHERE user_id IN (SELECT user_id FROM memberships WHERE organization_id = $1)",
        "DELETE FROM notification_channels WHERE organization_id = $1",
        "DELETE FROM memberships WHERE organization_id = $1",
        "DELETE FROM data_keys WHERE organization_id = $1",
    ] {
        sqlx::query(sql).bind(org_id).execute(&mut **tx).await?;
    }
    Ok(())
}
