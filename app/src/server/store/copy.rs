//! Copying every AgentKey table from one database to another, either backend to either backend:
//! `agentkey migrate-data` and the PostgreSQL form of `agentkey backup`. Rows travel unchanged
//! (ids, integer times, sealed secrets, audit hashes), so the copy's audit chains verify and its
//! secrets open with the same master key.

use std::collections::BTreeSet;

use anyhow::{Context, bail};
use futures_util::TryStreamExt;
use sqlx::Row;

use super::{Backend, Store, StoreResult};

/// Every table, parents before children, so that each reference points to a copied row.
pub const TABLES: &[&str] = &[
    "organizations",
    "users",
    "memberships",
    "data_keys",
    "agents",
    "tools",
    "guide_versions",
    "access_requests",
    "tool_suggestions",
    "tool_suggestion_supporters",
    "guide_suggestions",
    "guide_suggestion_supporters",
    "audit_log",
    "audit_heads",
    "audit_checkpoints",
    "sign_in_tokens",
    "sessions",
    "notification_channels",
    "notification_outbox",
    "invitations",
    "request_votes",
    "grant_usage",
    "credential_exposures",
    "usage_daily",
    "auto_approval_rules",
    "access_reviews",
    "access_review_items",
    "maintenance_runs",
];

/// Parameters per INSERT: under SQLite's and PostgreSQL's limits.
const MAX_PARAMS: usize = 30_000;

/// Rows copied per table, in [`TABLES`] order.
#[derive(Debug, Default)]
pub struct CopyReport {
    pub tables: Vec<(String, i64)>,
}

impl CopyReport {
    pub fn rows(&self) -> i64 {
        self.tables.iter().map(|(_, n)| n).sum()
    }
}

/// A column and whether it holds integers (else text).
struct Column {
    name: String,
    integer: bool,
}

/// The tables of the database (AgentKey's and any other), without the migrations table.
#[tracing::instrument(skip_all)]
pub async fn table_names(store: &Store) -> StoreResult<BTreeSet<String>> {
    let sql = match store.backend() {
        Backend::Sqlite => {
            "SELECT name FROM sqlite_master WHERE type = 'table' AND name NOT LIKE 'sqlite\\_%' ESCAPE '\\'"
        }
        Backend::Postgres => {
            "SELECT tablename::text FROM pg_tables WHERE schemaname = current_schema()"
        }
    };
    let names: Vec<String> = sqlx::query_scalar(sql).fetch_all(store.reader()).await?;
    Ok(names
        .into_iter()
        .filter(|n| n != "_sqlx_migrations")
        .collect())
}

/// The versions of the migrations applied, oldest first.
#[tracing::instrument(skip_all)]
pub async fn migration_versions(store: &Store) -> StoreResult<Vec<i64>> {
    sqlx::query_scalar("SELECT version FROM _sqlx_migrations WHERE success = TRUE ORDER BY version")
        .fetch_all(store.reader())
        .await
        .map_err(Into::into)
}

async fn columns(store: &Store, table: &str) -> StoreResult<Vec<Column>> {
    let rows: Vec<(String, String)> = match store.backend() {
        Backend::Sqlite => {
            sqlx::query_as("SELECT name, type FROM pragma_table_info($1) ORDER BY cid").bind(table).fetch_all(store.reader()).await?
        }
        Backend::Postgres => {
            sqlx::query_as(
                "SELECT column_name::text, data_type::text FROM information_schema.columns \
                 WHERE table_schema = current_schema() AND table_name = $1 ORDER BY ordinal_position",
            )
            .bind(table)
            .fetch_all(store.reader())
            .await?
        }
    };
    Ok(rows
        .into_iter()
        .map(|(name, ty)| {
            let ty = ty.to_ascii_lowercase();
            Column {
                name,
                integer: ty.contains("int"),
            }
        })
        .collect())
}

/// How many rows each AgentKey table holds.
#[tracing::instrument(skip_all)]
pub async fn count_rows(conn: &mut sqlx::AnyConnection) -> StoreResult<Vec<(String, i64)>> {
    let mut out = Vec::with_capacity(TABLES.len());
    for table in TABLES {
        let n: i64 = sqlx::query_scalar(&format!("SELECT COUNT(*) FROM {table}"))
            .fetch_one(&mut *conn)
            .await?;
        out.push(((*table).to_owned(), n));
    }
    Ok(out)
}

/// Copies every table of `from` into the empty, migrated `to`, in one write transaction on
/// `to` (a failed copy leaves it empty) while reading one consistent snapshot of `from` (writers on
/// `from` keep going). Refuses a non-empty target, tables this version does not know, and
/// databases at different schema versions.
#[tracing::instrument(skip_all)]
pub async fn copy_all(from: &Store, to: &Store) -> anyhow::Result<CopyReport> {
    let (source_versions, target_versions) = (
        migration_versions(from).await?,
        migration_versions(to).await?,
    );
    if source_versions != target_versions {
        bail!(
            "the source is at schema version {:?} and the target at {:?}; run `agentkey migrate` against the source first",
            source_versions.last(),
            target_versions.last()
        );
    }
    let known: BTreeSet<String> = TABLES.iter().map(|t| (*t).to_owned()).collect();
    for (side, store) in [("source", from), ("target", to)] {
        let found = table_names(store).await?;
        if found != known {
            let extra: Vec<_> = found.difference(&known).collect();
            let missing: Vec<_> = known.difference(&found).collect();
            bail!(
                "the {side} database does not have AgentKey's tables (unknown: {extra:?}, missing: {missing:?})"
            );
        }
    }

    let mut source = match from.backend() {
        Backend::Sqlite => from.reader().begin().await?,
        Backend::Postgres => {
            from.reader()
                .begin_with("BEGIN ISOLATION LEVEL REPEATABLE READ READ ONLY")
                .await?
        }
    };
    // Checked inside the write transaction, which holds the target's write lock: nothing can
    // be written to the target between the check and the copy.
    let mut target = to.begin().await?;
    if let Some((table, n)) = count_rows(&mut target)
        .await?
        .into_iter()
        .find(|(_, n)| *n > 0)
    {
        bail!(
            "the target database is not empty ({n} rows in {table}); refusing to overwrite it — use a new, empty database"
        );
    }
    let mut report = CopyReport::default();
    for table in TABLES {
        let columns = columns(to, table).await?;
        let names = columns
            .iter()
            .map(|c| c.name.as_str())
            .collect::<Vec<_>>()
            .join(", ");
        let per_batch = (MAX_PARAMS / columns.len().max(1)).max(1);
        let select = format!("SELECT {names} FROM {table}");
        let mut rows = sqlx::query(&select).fetch(&mut *source);
        let mut batch = Vec::with_capacity(per_batch);
        let mut copied = 0i64;
        while let Some(row) = rows
            .try_next()
            .await
            .with_context(|| format!("reading {table}"))?
        {
            batch.push(row);
            if batch.len() == per_batch {
                copied += insert_batch(&mut target, table, &names, &columns, &batch).await?;
                batch.clear();
            }
        }
        drop(rows);
        copied += insert_batch(&mut target, table, &names, &columns, &batch).await?;
        let expected: i64 = sqlx::query_scalar(&format!("SELECT COUNT(*) FROM {table}"))
            .fetch_one(&mut *source)
            .await?;
        if copied != expected {
            bail!("{table}: copied {copied} rows but the source snapshot holds {expected}");
        }
        report.tables.push(((*table).to_owned(), copied));
    }
    target.commit().await.context("failed to commit the copy")?;
    source.rollback().await.ok();

    // Counted again from the committed target, independently of the copy loop.
    let landed = count_rows(&mut *to.reader().acquire().await?).await?;
    if landed != report.tables {
        bail!(
            "row counts differ after the copy: copied {:?}, target holds {landed:?}",
            report.tables
        );
    }
    Ok(report)
}

async fn insert_batch(
    tx: &mut super::Tx,
    table: &str,
    names: &str,
    columns: &[Column],
    rows: &[sqlx::any::AnyRow],
) -> anyhow::Result<i64> {
    if rows.is_empty() {
        return Ok(0);
    }
    let width = columns.len();
    let values = (0..rows.len())
        .map(|r| format!("({})", super::placeholders(r * width + 1, width)))
        .collect::<Vec<_>>()
        .join(", ");
    let sql = format!("INSERT INTO {table} ({names}) VALUES {values}");
    let mut query = sqlx::query(&sql);
    for row in rows {
        for (i, column) in columns.iter().enumerate() {
            query = if column.integer {
                query.bind(
                    row.try_get::<Option<i64>, _>(i)
                        .with_context(|| format!("{table}.{}", column.name))?,
                )
            } else {
                query.bind(
                    row.try_get::<Option<String>, _>(i)
                        .with_context(|| format!("{table}.{}", column.name))?,
                )
            };
        }
    }
    let done = query
        .execute(&mut **tx)
        .await
        .with_context(|| format!("writing {table}"))?;
    Ok(i64::try_from(done.rows_affected()).unwrap_or(i64::MAX))
}
