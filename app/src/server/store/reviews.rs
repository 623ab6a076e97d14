//! Access reviews and their items.

use sqlx::{AnyExecutor, FromRow};

use super::{StoreResult, Tx};
use crate::model::OrgId;

#[derive(Clone, Debug, FromRow)]
pub struct ReviewRow {
    pub id: String,
    pub organization_id: OrgId,
    pub scope: String,
    pub scope_id: Option<String>,
    pub scope_name: String,
    pub unconfirmed: String,
    pub status: String,
    pub started_by: String,
    pub started_at: i64,
    pub closed_by: Option<String>,
    pub closed_at: Option<i64>,
    pub total: i64,
    pub decided: i64,
}

#[derive(Clone, Debug, FromRow)]
pub struct ItemRow {
    pub id: String,
    pub review_id: String,
    pub organization_id: OrgId,
    pub request_id: String,
    pub agent_id: String,
    pub agent_name: String,
    pub tool_id: String,
    pub tool_name: String,
    pub granted_at: Option<i64>,
    pub expires_at: Option<i64>,
    pub reviewer: String,
    pub decision: Option<String>,
    pub note: Option<String>,
    pub decided_by: Option<String>,
    pub decided_at: Option<i64>,
    pub outcome: Option<String>,
}

const REVIEW: &str = "SELECT v.id, v.organization_id, v.scope, v.scope_id, v.scope_name, v.unconfirmed, v.status, \
     v.started_by, v.started_at, v.closed_by, v.closed_at, \
     (SELECT COUNT(*) FROM access_review_items i WHERE i.review_id = v.id) AS total, \
     (SELECT COUNT(*) FROM access_review_items i WHERE i.review_id = v.id AND i.decision IS NOT NULL) AS decided \
     FROM access_reviews v";

const ITEM: &str = "SELECT id, review_id, organization_id, request_id, agent_id, agent_name, tool_id, tool_name, granted_at, \
     expires_at, reviewer, decision, note, decided_by, decided_at, outcome FROM access_review_items";

pub async fn insert_review(tx: &mut Tx, r: &ReviewRow) -> StoreResult<()> {
    sqlx::query(
        "INSERT INTO access_reviews (id, organization_id, scope, scope_id, scope_name, unconfirmed, status, started_by, started_at) \
         VALUES ($1, $2, $3, $4, $5, $6, 'open', $7, $8)",
    )
    .bind(&r.id)
    .bind(&r.organization_id)
    .bind(&r.scope)
    .bind(&r.scope_id)
    .bind(&r.scope_name)
    .bind(&r.unconfirmed)
    .bind(&r.started_by)
    .bind(r.started_at)
    .execute(&mut **tx)
    .await?;
    Ok(())
}

pub async fn insert_item(tx: &mut Tx, i: &ItemRow) -> StoreResult<()> {
    sqlx::query(
        "INSERT INTO access_review_items (id, review_id, organization_id, request_id, agent_id, agent_name, tool_id, tool_name, \
         granted_at, expires_at, reviewer) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11)",
    )
    .bind(&i.id)
    .bind(&i.review_id)
    .bind(&i.organization_id)
    .bind(&i.request_id)
    .bind(&i.agent_id)
    .bind(&i.agent_name)
    .bind(&i.tool_id)
    .bind(&i.tool_name)
    .bind(i.granted_at)
    .bind(i.expires_at)
    .bind(&i.reviewer)
    .execute(&mut **tx)
    .await?;
    Ok(())
}

/// The organization's reviews, newest first (at most 200).
pub async fn list_reviews(ex: impl AnyExecutor<'_>, org_id: &OrgId) -> StoreResult<Vec<ReviewRow>> {
    Ok(sqlx::query_as(&format!(
        "{REVIEW} WHERE v.organization_id = $1 ORDER BY v.started_at DESC, v.id DESC LIMIT 200"
    ))
    .bind(org_id)
    .fetch_all(ex)
    .await?)
}

pub async fn find_review(
    ex: impl AnyExecutor<'_>,
    org_id: &OrgId,
    id: &str,
) -> StoreResult<Option<ReviewRow>> {
    Ok(sqlx::query_as(&format!(
        "{REVIEW} WHERE v.organization_id = $1 AND v.id = $2"
    ))
    .bind(org_id)
    .bind(id)
    .fetch_optional(ex)
    .await?)
}

pub async fn items(ex: impl AnyExecutor<'_>, review_id: &str) -> StoreResult<Vec<ItemRow>> {
    Ok(sqlx::query_as(&format!(
        "{ITEM} WHERE review_id = $1 ORDER BY tool_name, agent_name, id"
    ))
    .bind(review_id)
    .fetch_all(ex)
    .await?)
}

pub async fn find_item(
    ex: impl AnyExecutor<'_>,
    org_id: &OrgId,
    id: &str,
) -> StoreResult<Option<ItemRow>> {
    Ok(
        sqlx::query_as(&format!("{ITEM} WHERE organization_id = $1 AND id = $2"))
            .bind(org_id)
            .bind(id)
            .fetch_optional(ex)
            .await?,
    )
}

/// Records a keep or revoke on an item of an open review; false when the review closed first.
pub async fn decide_item(
    tx: &mut Tx,
    id: &str,
    decision: &str,
    note: Option<&str>,
    by: &str,
    now: i64,
) -> StoreResult<bool> {
    // Takes the review's row lock first, so a concurrent close waits for this decision (or
    // this one sees the review closed).
    let open = sqlx::query(
        "UPDATE access_reviews SET status = status WHERE status = 'open' AND id = (SELECT review_id FROM access_review_items WHERE id = $1)",
    )
    .bind(id)
    .execute(&mut **tx)
    .await?;
    if open.rows_affected() != 1 {
        return Ok(false);
    }
    let done = sqlx::query(
        "UPDATE access_review_items SET decision = $2, note = $3, decided_by = $4, decided_at = $5 WHERE id = $1 \
         AND EXISTS (SELECT 1 FROM access_reviews v WHERE v.id = review_id AND v.status = 'open')",
    )
    .bind(id)
    .bind(decision)
    .bind(note)
    .bind(by)
    .bind(now)
    .execute(&mut **tx)
    .await?;
    Ok(done.rows_affected() == 1)
}

pub async fn set_outcome(tx: &mut Tx, id: &str, outcome: &str) -> StoreResult<()> {
    sqlx::query("UPDATE access_review_items SET outcome = $2 WHERE id = $1")
        .bind(id)
        .bind(outcome)
        .execute(&mut **tx)
        .await?;
    Ok(())
}

/// Closes an open review; false when it was closed already.
pub async fn close_review(tx: &mut Tx, id: &str, by: &str, now: i64) -> StoreResult<bool> {
    let done = sqlx::query(
        "UPDATE access_reviews SET status = 'closed', closed_by = $2, closed_at = $3 WHERE id = $1 AND status = 'open'",
    )
    .bind(id)
    .bind(by)
    .bind(now)
    .execute(&mut **tx)
    .await?;
    Ok(done.rows_affected() == 1)
}
