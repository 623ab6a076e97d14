//! Writing audit rows: the batch insert, alone or together with the head's compare-and-set,
//! in as few statements (round trips to the database) as each backend allows.

use sqlx::AnyConnection;

use super::{AuditRow, COLUMN_COUNT, COLUMNS, advance_head};
use crate::model::OrgId;
use crate::server::store::{self, StoreResult, Tx};

/// Inserts already-chained rows: on SQLite in one prepared statement per 512 rows, on
/// PostgreSQL in one statement whatever their number. On any connection (a transaction is
/// one), so that a benchmark seeding a long log writes rows exactly as the server does.
#[tracing::instrument(skip_all)]
pub async fn insert_rows(conn: &mut AnyConnection, rows: &[AuditRow]) -> StoreResult<()> {
    if rows.is_empty() {
        return Ok(());
    }
    if store::is_postgres(conn) {
        return insert_rows_packed(conn, rows, None).await.map(|_| ());
    }
    for chunk in rows.chunks(SQLITE_ROWS_PER_INSERT) {
        let query = sqlx::query(sqlite_insert(chunk.len().next_power_of_two(), false));
        bind_rows(query, chunk).execute(&mut *conn).await?;
    }
    Ok(())
}

/// Moves an organization's head from `from` to `to` and inserts its `rows` (chained from
/// `from`) in one statement, so the usual append is one round trip. Returns false, having
/// written nothing, when the head was no longer at `from`.
#[tracing::instrument(skip_all, fields(org_id = %org_id))]
pub async fn append_at_head(
    tx: &mut Tx,
    org_id: &OrgId,
    from: (i64, &str),
    to: (i64, &str),
    rows: &[AuditRow],
) -> StoreResult<bool> {
    if rows.is_empty() || rows.len() > SQLITE_ROWS_PER_INSERT {
        return Ok(advance_head(tx, org_id, from, to).await? && {
            insert_rows(tx, rows).await?;
            true
        });
    }
    if store::is_postgres(tx) {
        let written = insert_rows_packed(tx, rows, Some((org_id, from, to))).await?;
        return Ok(written == rows.len() as u64);
    }
    let query = sqlx::query(sqlite_insert(rows.len().next_power_of_two(), true))
        .bind(to.0)
        .bind(to.1)
        .bind(org_id)
        .bind(from.0)
        .bind(from.1);
    let written = bind_rows(query, rows)
        .bind(org_id)
        .bind(to.0)
        .bind(to.1)
        .execute(&mut **tx)
        .await?
        .rows_affected();
    // The head's row and every audit row, or nothing.
    Ok(written == rows.len() as u64 + 1)
}

type Query<'q> = sqlx::query::Query<'q, store::Db, sqlx::any::AnyArguments<'q>>;

/// Binds `rows` to the slots of a [`sqlite_insert`] text, the slots past them NULL.
fn bind_rows<'q>(mut query: Query<'q>, rows: &'q [AuditRow]) -> Query<'q> {
    for r in rows {
        query = query
            .bind(&r.id)
            .bind(&r.organization_id)
            .bind(r.seq)
            .bind(r.created_at)
            .bind(&r.actor_type)
            .bind(&r.actor_id)
            .bind(&r.actor_label)
            .bind(&r.action)
            .bind(r.target_type.as_deref())
            .bind(r.target_id.as_deref())
            .bind(r.agent_id.as_deref())
            .bind(r.tool_id.as_deref())
            .bind(r.ip.as_deref())
            .bind(r.user_agent.as_deref())
            .bind(&r.metadata)
            .bind(&r.prev_hash)
            .bind(&r.hash);
    }
    // The statement skips the rows left NULL.
    for _ in rows.len() * COLUMN_COUNT..rows.len().next_power_of_two() * COLUMN_COUNT {
        query = query.bind(None::<&str>);
    }
    query
}

/// Most rows one SQLite insert takes (17 parameters each, well under SQLite's 32 766).
const SQLITE_ROWS_PER_INSERT: usize = 512;

/// The SQLite insert of `slots` rows (a power of two up to [`SQLITE_ROWS_PER_INSERT`]). A batch
/// fills the first slots and leaves the rest NULL, which the statement skips: so every batch
/// size shares one of ten statement texts, each prepared once and kept in the connection's
/// statement cache, and the values are bound as they are instead of being packed and parsed.
/// `at_head`: the text of [`append_at_head`] instead, the head's compare-and-set followed by
/// an insert that writes only if the head now is where that set would have put it.
fn sqlite_insert(slots: usize, at_head: bool) -> &'static str {
    static TEXTS: std::sync::OnceLock<[Vec<String>; 2]> = std::sync::OnceLock::new();
    let texts = TEXTS.get_or_init(|| {
        [false, true].map(|at_head| {
            (0..=SQLITE_ROWS_PER_INSERT.trailing_zeros())
                .map(|power| {
                    // Anonymous `?`: sqlx looks up each parameter's name, and SQLite finds a
                    // `$N` name by a walk over all of them, quadratic in a statement this long.
                    let row = format!("({})", vec!["?"; COLUMN_COUNT].join(", "));
                    let values = vec![row; 1_usize << power].join(", ");
                    // SQLite names a VALUES list's columns column1, column2, …
                    let value_columns = (1..=COLUMN_COUNT)
                        .map(|i| format!("column{i}"))
                        .collect::<Vec<_>>()
                        .join(", ");
                    let insert = format!(
                        "INSERT INTO audit_log ({COLUMNS}) SELECT {value_columns} FROM (VALUES {values}) WHERE column1 IS NOT NULL"
                    );
                    if at_head {
                        format!(
                            "UPDATE audit_heads SET seq = ?, hash = ? WHERE organization_id = ? AND seq = ? AND hash = ?; \
                             {insert} AND EXISTS (SELECT 1 FROM audit_heads WHERE organization_id = ? AND seq = ? AND hash = ?)"
                        )
                    } else {
                        insert
                    }
                })
                .collect()
        })
    });
    &texts[usize::from(at_head)][slots.trailing_zeros() as usize]
}

/// An organization's head moving from (seq, hash) to (seq, hash).
type HeadMove<'a> = (&'a OrgId, (i64, &'a str), (i64, &'a str));

/// PostgreSQL: every row in one JSON parameter, unpacked by the server. With `at_head`
/// (organization, from, to) the same statement first moves the head from `from` to `to` and
/// inserts only if it did. Returns the rows inserted.
async fn insert_rows_packed(
    conn: &mut AnyConnection,
    rows: &[AuditRow],
    at_head: Option<HeadMove<'_>>,
) -> StoreResult<u64> {
    let packed = serde_json::Value::Array(
        rows.iter()
            .map(|r| {
                serde_json::json!([
                    r.id,
                    r.organization_id,
                    r.seq,
                    r.created_at,
                    r.actor_type,
                    r.actor_id,
                    r.actor_label,
                    r.action,
                    r.target_type,
                    r.target_id,
                    r.agent_id,
                    r.tool_id,
                    r.ip,
                    r.user_agent,
                    r.metadata,
                    r.prev_hash,
                    r.hash
                ])
            })
            .collect(),
    );
    static TEXTS: std::sync::OnceLock<[String; 2]> = std::sync::OnceLock::new();
    let texts = TEXTS.get_or_init(|| {
        // PostgreSQL types the extracted text: seq and created_at (fields 2 and 3) are bigint.
        let fields = (0..COLUMN_COUNT)
            .map(|i| {
                if i == 2 || i == 3 {
                    format!("(value ->> {i})::bigint")
                } else {
                    format!("value ->> {i}")
                }
            })
            .collect::<Vec<_>>()
            .join(", ");
        let insert = format!(
            "INSERT INTO audit_log ({COLUMNS}) SELECT {fields} FROM json_array_elements($1::json) AS rows (value)"
        );
        // A data-modifying CTE always runs: the insert sees whether the head moved.
        let at_head = format!(
            "WITH head AS (UPDATE audit_heads SET seq = $5, hash = $6 WHERE organization_id = $2 AND seq = $3 AND hash = $4 RETURNING 1) \
             {insert} WHERE EXISTS (SELECT 1 FROM head)"
        );
        [insert, at_head]
    });
    let query = sqlx::query(&texts[usize::from(at_head.is_some())]).bind(packed.to_string());
    let query = match at_head {
        Some((org_id, from, to)) => query
            .bind(org_id)
            .bind(from.0)
            .bind(from.1)
            .bind(to.0)
            .bind(to.1),
        None => query,
    };
    Ok(query.execute(conn).await?.rows_affected())
}
