//! The append-only audit log and its per-organization hash chain.

use sqlx::{FromRow, SqliteExecutor};

use super::Tx;
use crate::server::audit::chain;

/// An `audit_log` row, exactly as stored and hashed.
#[derive(Clone, Debug, FromRow, PartialEq)]
pub struct AuditRow {
    pub id: String,
    pub organization_id: String,
    pub seq: i64,
    pub created_at: i64,
    pub actor_type: String,
    pub actor_id: String,
    pub actor_label: String,
    pub action: String,
    pub target_type: Option<String>,
    pub target_id: Option<String>,
    pub agent_id: Option<String>,
    pub tool_id: Option<String>,
    pub ip: Option<String>,
    pub user_agent: Option<String>,
    pub metadata: String,
    pub prev_hash: String,
    pub hash: String,
}

const COLUMNS: &str = "id, organization_id, seq, created_at, actor_type, actor_id, actor_label, action, target_type, \
                       target_id, agent_id, tool_id, ip, user_agent, metadata, prev_hash, hash";
const COLUMN_COUNT: usize = 17;
/// Rows per INSERT statement, well under SQLite's bound-parameter limit.
const ROWS_PER_INSERT: usize = 40;

/// Starts an organization's chain at seq 0 with its genesis hash.
pub async fn insert_head(tx: &mut Tx, org_id: &str) -> sqlx::Result<()> {
    sqlx::query("INSERT INTO audit_heads (organization_id, seq, hash) VALUES ($1, 0, $2)")
        .bind(org_id)
        .bind(chain::genesis(org_id))
        .execute(&mut **tx)
        .await
        .map(|_| ())
}

/// Reserves `n` sequence numbers for an organization; returns (first seq, previous hash).
/// The UPDATE takes the head's row lock, which serializes appends per organization.
pub async fn reserve_seq(tx: &mut Tx, org_id: &str, n: usize) -> sqlx::Result<(i64, String)> {
    let n = i64::try_from(n).unwrap_or(i64::MAX);
    let (last, prev): (i64, String) =
        sqlx::query_as("UPDATE audit_heads SET seq = seq + $2 WHERE organization_id = $1 RETURNING seq, hash")
            .bind(org_id)
            .bind(n)
            .fetch_one(&mut **tx)
            .await?;
    Ok((last - n + 1, prev))
}

pub async fn set_head_hash(tx: &mut Tx, org_id: &str, hash: &str) -> sqlx::Result<()> {
    sqlx::query("UPDATE audit_heads SET hash = $2 WHERE organization_id = $1")
        .bind(org_id)
        .bind(hash)
        .execute(&mut **tx)
        .await
        .map(|_| ())
}

/// The stored head of an organization's chain: (seq, hash).
pub async fn find_head(ex: impl SqliteExecutor<'_>, org_id: &str) -> sqlx::Result<Option<(i64, String)>> {
    sqlx::query_as("SELECT seq, hash FROM audit_heads WHERE organization_id = $1").bind(org_id).fetch_optional(ex).await
}

/// Inserts already-chained rows, several per statement.
pub async fn insert_rows(tx: &mut Tx, rows: &[AuditRow]) -> sqlx::Result<()> {
    for chunk in rows.chunks(ROWS_PER_INSERT) {
        let values = (0..chunk.len())
            .map(|i| format!("({})", super::placeholders(i * COLUMN_COUNT + 1, COLUMN_COUNT)))
            .collect::<Vec<_>>()
            .join(", ");
        let sql = format!("INSERT INTO audit_log ({COLUMNS}) VALUES {values}");
        let mut query = sqlx::query(&sql);
        for r in chunk {
            query = query
                .bind(&r.id)
                .bind(&r.organization_id)
                .bind(r.seq)
                .bind(r.created_at)
                .bind(&r.actor_type)
                .bind(&r.actor_id)
                .bind(&r.actor_label)
                .bind(&r.action)
                .bind(&r.target_type)
                .bind(&r.target_id)
                .bind(&r.agent_id)
                .bind(&r.tool_id)
                .bind(&r.ip)
                .bind(&r.user_agent)
                .bind(&r.metadata)
                .bind(&r.prev_hash)
                .bind(&r.hash);
        }
        query.execute(&mut **tx).await?;
    }
    Ok(())
}

/// Filters for listing the log. All optional; combined with AND.
#[derive(Clone, Debug, Default)]
pub struct AuditFilter {
    pub action: Option<String>,
    pub agent_id: Option<String>,
    pub tool_id: Option<String>,
    pub actor_id: Option<String>,
    pub from_ms: Option<i64>,
    pub to_ms: Option<i64>,
    /// Only rows with seq below this (cursor for newest-first paging).
    pub before_seq: Option<i64>,
}

/// Rows newest first, filtered, at most `limit`.
pub async fn list_rows(ex: impl SqliteExecutor<'_>, org_id: &str, f: &AuditFilter, limit: i64) -> sqlx::Result<Vec<AuditRow>> {
    let mut sql = format!("SELECT {COLUMNS} FROM audit_log WHERE organization_id = $1");
    let mut n = 1;
    let mut clause = |sql: &mut String, column: &str, op: &str| {
        n += 1;
        sql.push_str(&format!(" AND {column} {op} ${n}"));
    };
    if f.action.is_some() { clause(&mut sql, "action", "="); }
    if f.agent_id.is_some() { clause(&mut sql, "agent_id", "="); }
    if f.tool_id.is_some() { clause(&mut sql, "tool_id", "="); }
    if f.actor_id.is_some() { clause(&mut sql, "actor_id", "="); }
    if f.from_ms.is_some() { clause(&mut sql, "created_at", ">="); }
    if f.to_ms.is_some() { clause(&mut sql, "created_at", "<"); }
    if f.before_seq.is_some() { clause(&mut sql, "seq", "<"); }
    sql.push_str(&format!(" ORDER BY seq DESC LIMIT ${}", n + 1));
    let mut query = sqlx::query_as::<_, AuditRow>(&sql).bind(org_id);
    for text in [&f.action, &f.agent_id, &f.tool_id, &f.actor_id].into_iter().flatten() {
        query = query.bind(text);
    }
    for number in [f.from_ms, f.to_ms, f.before_seq].into_iter().flatten() {
        query = query.bind(number);
    }
    query.bind(limit).fetch_all(ex).await
}

/// Rows of an organization in chain order, starting after `after_seq`, at most `limit`.
pub async fn scan_rows(ex: impl SqliteExecutor<'_>, org_id: &str, after_seq: i64, limit: i64) -> sqlx::Result<Vec<AuditRow>> {
    sqlx::query_as(&format!(
        "SELECT {COLUMNS} FROM audit_log WHERE organization_id = $1 AND seq > $2 ORDER BY seq LIMIT $3"
    ))
    .bind(org_id)
    .bind(after_seq)
    .bind(limit)
    .fetch_all(ex)
    .await
}
