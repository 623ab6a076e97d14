//! The append-only audit log and its per-organization hash chain.

use crate::model::{AgentId, OrgId, ToolId};
use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use sqlx::{AnyExecutor, FromRow};

use super::{StoreResult, Tx};
use crate::server::audit::chain;

mod insert;
pub use insert::{append_at_head, insert_rows};

/// An `audit_log` row, exactly as stored and hashed.
#[derive(Clone, Debug, FromRow, PartialEq)]
pub struct AuditRow {
    pub id: String,
    pub organization_id: OrgId,
    pub seq: i64,
    pub created_at: i64,
    /// As stored, not decoded: the chain hashes the stored text, and a tampered value must
    /// show up as a broken chain, not as a row that cannot be read.
    pub actor_type: String,
    pub actor_id: String,
    pub actor_label: String,
    pub action: String,
    pub target_type: Option<String>,
    pub target_id: Option<String>,
    pub agent_id: Option<AgentId>,
    pub tool_id: Option<ToolId>,
    pub ip: Option<String>,
    pub user_agent: Option<String>,
    pub metadata: String,
    pub prev_hash: String,
    pub hash: String,
}

const COLUMNS: &str = "id, organization_id, seq, created_at, actor_type, actor_id, actor_label, action, target_type, \
                       target_id, agent_id, tool_id, ip, user_agent, metadata, prev_hash, hash";
const COLUMN_COUNT: usize = 17;

/// The last known (seq, hash) per organization. Only a hint: [`advance_head`] checks it against
/// the stored head in the same statement that moves the head, so a stale entry (another
/// process appended, or a transaction rolled back) costs one extra round trip, never a fork.
#[derive(Clone, Debug, Default)]
pub struct HeadCache(Arc<Mutex<HashMap<String, (i64, String)>>>);

impl HeadCache {
    pub fn get(&self, org_id: &str) -> Option<(i64, String)> {
        self.0
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .get(org_id)
            .cloned()
    }

    pub fn set(&self, org_id: &str, seq: i64, hash: &str) {
        self.0
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .insert(org_id.to_owned(), (seq, hash.to_owned()));
    }
}

/// Moves the head from `(from_seq, from_hash)` to `(to_seq, to_hash)` only if it is still
/// there; returns false when the head had moved on.
#[tracing::instrument(skip_all, fields(org_id = %org_id))]
pub async fn advance_head(
    tx: &mut Tx,
    org_id: &OrgId,
    from: (i64, &str),
    to: (i64, &str),
) -> StoreResult<bool> {
    let done = sqlx::query(
        "UPDATE audit_heads SET seq = $4, hash = $5 WHERE organization_id = $1 AND seq = $2 AND hash = $3",
    )
    .bind(org_id)
    .bind(from.0)
    .bind(from.1)
    .bind(to.0)
    .bind(to.1)
    .execute(&mut **tx)
    .await?;
    Ok(done.rows_affected() == 1)
}

/// Starts an organization's chain at seq 0 with its genesis hash.
#[tracing::instrument(skip_all, fields(org_id = %org_id))]
pub async fn insert_head(tx: &mut Tx, org_id: &OrgId) -> StoreResult<()> {
    sqlx::query("INSERT INTO audit_heads (organization_id, seq, hash) VALUES ($1, 0, $2)")
        .bind(org_id)
        .bind(chain::genesis(org_id))
        .execute(&mut **tx)
        .await
        .map(|_| ())
        .map_err(Into::into)
}

/// Reserves `n` sequence numbers for an organization; returns (first seq, previous hash).
/// The UPDATE takes the head's row lock, which serializes appends per organization.
#[tracing::instrument(skip_all, fields(org_id = %org_id))]
pub async fn reserve_seq(tx: &mut Tx, org_id: &OrgId, n: usize) -> StoreResult<(i64, String)> {
    let n = i64::try_from(n).unwrap_or(i64::MAX);
    let (last, prev): (i64, String) = sqlx::query_as(
        "UPDATE audit_heads SET seq = seq + $2 WHERE organization_id = $1 RETURNING seq, hash",
    )
    .bind(org_id)
    .bind(n)
    .fetch_one(&mut **tx)
    .await?;
    Ok((last - n + 1, prev))
}

#[tracing::instrument(skip_all, fields(org_id = %org_id))]
pub async fn set_head_hash(tx: &mut Tx, org_id: &OrgId, hash: &str) -> StoreResult<()> {
    sqlx::query("UPDATE audit_heads SET hash = $2 WHERE organization_id = $1")
        .bind(org_id)
        .bind(hash)
        .execute(&mut **tx)
        .await
        .map(|_| ())
        .map_err(Into::into)
}

/// The stored head of an organization's chain: (seq, hash).
#[tracing::instrument(skip_all, fields(org_id = %org_id))]
pub async fn find_head(
    ex: impl AnyExecutor<'_>,
    org_id: &OrgId,
) -> StoreResult<Option<(i64, String)>> {
    sqlx::query_as("SELECT seq, hash FROM audit_heads WHERE organization_id = $1")
        .bind(org_id)
        .fetch_optional(ex)
        .await
        .map_err(Into::into)
}

/// Filters for listing the log. All optional; combined with AND.
#[derive(Clone, Debug, Default)]
pub struct AuditFilter {
    pub action: Option<String>,
    /// `action` is a prefix (`credential.` matches every credential action).
    pub action_prefix: bool,
    // Search text, not identities: an id that names nothing simply matches nothing.
    pub agent_id: Option<String>,
    pub tool_id: Option<String>,
    pub actor_id: Option<String>,
    pub from_ms: Option<i64>,
    pub to_ms: Option<i64>,
    /// Only rows with seq below this (cursor for newest-first paging).
    pub before_seq: Option<i64>,
}

/// The newest `seq` of an organization's log (`None` while it is empty).
#[tracing::instrument(skip_all, fields(org_id = %org_id))]
pub async fn newest_seq(ex: impl AnyExecutor<'_>, org_id: &OrgId) -> StoreResult<Option<i64>> {
    sqlx::query_scalar("SELECT MAX(seq) FROM audit_log WHERE organization_id = $1")
        .bind(org_id)
        .fetch_one(ex)
        .await
        .map_err(Into::into)
}

/// Rows newest first, filtered, at most `limit`.
#[tracing::instrument(skip_all, fields(org_id = %org_id))]
pub async fn list_rows(
    ex: impl AnyExecutor<'_>,
    org_id: &OrgId,
    f: &AuditFilter,
    limit: i64,
) -> StoreResult<Vec<AuditRow>> {
    let sql = list_sql(f);
    let mut query = sqlx::query_as::<_, AuditRow>(&sql).bind(org_id);
    let action = f.action.as_ref().map(|a| {
        if f.action_prefix {
            format!(
                "{}%",
                a.replace('\\', "\\\\")
                    .replace('%', "\\%")
                    .replace('_', "\\_")
            )
        } else {
            a.clone()
        }
    });
    for text in [&action, &f.agent_id, &f.tool_id, &f.actor_id]
        .into_iter()
        .flatten()
    {
        query = query.bind(text);
    }
    for number in [f.from_ms, f.to_ms, f.before_seq].into_iter().flatten() {
        query = query.bind(number);
    }
    query.bind(limit).fetch_all(ex).await.map_err(Into::into)
}

/// The text [`list_rows`] runs for `f`: newest first by seq, which the indexes ending in seq
/// serve without sorting the matches when the filter is an agent, a tool or an exact action.
pub fn list_sql(f: &AuditFilter) -> String {
    let mut sql = format!("SELECT {COLUMNS} FROM audit_log WHERE organization_id = $1");
    let mut n = 1;
    // Each condition takes the next parameter number; `#` in the template stands for it.
    let mut clause = |sql: &mut String, template: &str| {
        n += 1;
        sql.push_str(&template.replace('#', &format!("${n}")));
    };
    match (&f.action, f.action_prefix) {
        (Some(_), true) => clause(&mut sql, " AND action LIKE # ESCAPE '\\'"),
        (Some(_), false) => clause(&mut sql, " AND action = #"),
        (None, _) => {}
    }
    if f.agent_id.is_some() {
        clause(&mut sql, " AND agent_id = #");
    }
    if f.tool_id.is_some() {
        clause(&mut sql, " AND tool_id = #");
    }
    // People filter by the name they see (an email); the CLI passes ids. One parameter.
    if f.actor_id.is_some() {
        clause(&mut sql, " AND (actor_id = # OR actor_label = #)");
    }
    if f.from_ms.is_some() {
        clause(&mut sql, " AND created_at >= #");
    }
    if f.to_ms.is_some() {
        clause(&mut sql, " AND created_at < #");
    }
    if f.before_seq.is_some() {
        clause(&mut sql, " AND seq < #");
    }
    sql.push_str(&format!(" ORDER BY seq DESC LIMIT ${}", n + 1));
    sql
}

/// The newest verified point of an organization's chain: (seq, hash), if any.
pub async fn find_checkpoint(
    ex: impl AnyExecutor<'_>,
    org_id: &OrgId,
) -> StoreResult<Option<(i64, String)>> {
    sqlx::query_as("SELECT seq, hash FROM audit_checkpoints WHERE organization_id = $1")
        .bind(org_id)
        .fetch_optional(ex)
        .await
        .map_err(Into::into)
}

/// Records that the chain verified up to `seq` (whose row hashes to `hash`); never moves the
/// checkpoint back.
pub async fn save_checkpoint(
    tx: &mut Tx,
    org_id: &OrgId,
    seq: i64,
    hash: &str,
    now: i64,
) -> StoreResult<()> {
    sqlx::query(
        "INSERT INTO audit_checkpoints (organization_id, seq, hash, checked_at) VALUES ($1, $2, $3, $4) \
         ON CONFLICT (organization_id) DO UPDATE SET seq = excluded.seq, hash = excluded.hash, \
         checked_at = excluded.checked_at WHERE audit_checkpoints.seq <= excluded.seq",
    )
    .bind(org_id)
    .bind(seq)
    .bind(hash)
    .bind(now)
    .execute(&mut **tx)
    .await?;
    Ok(())
}

/// Rows of an organization in chain order, starting after `after_seq`, at most `limit`.
#[tracing::instrument(skip_all, fields(org_id = %org_id))]
pub async fn scan_rows(
    ex: impl AnyExecutor<'_>,
    org_id: &OrgId,
    after_seq: i64,
    limit: i64,
) -> StoreResult<Vec<AuditRow>> {
    sqlx::query_as(&format!(
        "SELECT {COLUMNS} FROM audit_log WHERE organization_id = $1 AND seq > $2 ORDER BY seq LIMIT $3"
    ))
    .bind(org_id)
    .bind(after_seq)
    .bind(limit)
    .fetch_all(ex)
    .await
    .map_err(Into::into)
}

/// When each agent last used each tool (a credential fetch or a proxied call), as the exposure
/// ledger has it: one row per pair that has been used. The audit writer updates the ledger at
/// most once a minute per agent and secret, so a time may lag by that much; the writer's own
/// view ([`crate::server::audit::AuditWriter::last_uses`]) fills in its process's latest uses.
/// Costs the number of exposures, not the length of the log.
#[tracing::instrument(skip_all, fields(org_id = %org_id))]
pub async fn last_uses(
    ex: impl AnyExecutor<'_>,
    org_id: &OrgId,
) -> StoreResult<Vec<(String, String, i64)>> {
    sqlx::query_as(
        "SELECT agent_id, tool_id, MAX(used) FROM ( \
           SELECT agent_id, tool_id, fetched_last_at AS used FROM credential_exposures \
           WHERE organization_id = $1 AND fetched_last_at IS NOT NULL \
           UNION ALL SELECT agent_id, tool_id, proxied_last_at FROM credential_exposures \
           WHERE organization_id = $1 AND proxied_last_at IS NOT NULL \
         ) uses GROUP BY agent_id, tool_id",
    )
    .bind(org_id)
    .fetch_all(ex)
    .await
    .map_err(Into::into)
}
