//! Persistence behind one seam. Runtime `query_as` with explicit columns and `$N`
//! placeholders, portable SQL only, so a PostgreSQL backend can sit behind the same functions.
//!
//! SQLite runs in WAL mode with a pool of readers and a single writer connection: writes queue
//! on that connection instead of failing with `SQLITE_BUSY`, and every write transaction starts
//! with `BEGIN IMMEDIATE` so that a read-then-write inside it cannot lose its snapshot.

pub mod agents;
pub mod audit;
pub mod auth;
pub mod keys;
pub mod members;
pub mod notify;
pub mod orgs;
pub mod requests;
pub mod suggestions;
pub mod tools;

use std::path::Path;
use std::str::FromStr;
use std::time::Duration;

use anyhow::Context;
use sqlx::sqlite::{SqliteConnectOptions, SqliteJournalMode, SqlitePoolOptions, SqliteSynchronous};
use sqlx::{Sqlite, SqlitePool};

/// The database type of this build's store.
pub type Db = Sqlite;
/// A write transaction.
pub type Tx = sqlx::Transaction<'static, Db>;

static SQLITE_MIGRATIONS: sqlx::migrate::Migrator = sqlx::migrate!("../migrations/sqlite");

/// Handle to the database: cheap to clone.
#[derive(Clone, Debug)]
pub struct Store {
    read: SqlitePool,
    write: SqlitePool,
    location: String,
    heads: audit::HeadCache,
}

impl Store {
    /// Opens (creating if missing) the database named by a `sqlite://` URL or a plain path.
    pub async fn connect(url: &str) -> anyhow::Result<Self> {
        let path = url.strip_prefix("sqlite://").or_else(|| url.strip_prefix("sqlite:")).unwrap_or(url);
        if url.starts_with("postgres") {
            anyhow::bail!("AGENTKEY_DATABASE_URL: PostgreSQL is not supported by this build yet; use a sqlite:// URL");
        }
        let path = path.split('?').next().unwrap_or(path);
        if let Some(dir) = Path::new(path).parent().filter(|d| !d.as_os_str().is_empty()) {
            std::fs::create_dir_all(dir).with_context(|| format!("failed to create database directory {}", dir.display()))?;
        }
        let options = SqliteConnectOptions::from_str(&format!("sqlite://{path}"))
            .with_context(|| format!("invalid database path {path}"))?
            .create_if_missing(true)
            .journal_mode(SqliteJournalMode::Wal)
            // FULL: a committed audit row survives power loss, not only a crash.
            .synchronous(SqliteSynchronous::Full)
            .busy_timeout(Duration::from_secs(10))
            .foreign_keys(true)
            .pragma("temp_store", "memory");
        // No ping before each acquire: a broken SQLite connection surfaces on first use anyway,
        // and the ping is a round trip on the hot write path.
        let write = SqlitePoolOptions::new()
            .max_connections(1)
            .min_connections(1)
            .test_before_acquire(false)
            .acquire_timeout(Duration::from_secs(30))
            .connect_with(options.clone().statement_cache_capacity(1024))
            .await
            .with_context(|| format!("failed to open database {path}"))?;
        let read = SqlitePoolOptions::new()
            .max_connections(8)
            .test_before_acquire(false)
            .acquire_timeout(Duration::from_secs(30))
            .connect_with(options)
            .await
            .with_context(|| format!("failed to open database {path}"))?;
        Ok(Store { read, write, location: path.to_owned(), heads: audit::HeadCache::default() })
    }

    /// Applies the embedded migrations that have not run yet.
    pub async fn migrate(&self) -> anyhow::Result<()> {
        SQLITE_MIGRATIONS.run(&self.write).await.context("failed to apply database migrations")
    }

    /// Starts a write transaction.
    pub async fn begin(&self) -> sqlx::Result<Tx> {
        self.write.begin_with("BEGIN IMMEDIATE").await
    }

    /// The single writer connection, for one-statement writes outside a transaction.
    pub fn writer(&self) -> &SqlitePool {
        &self.write
    }

    /// The pool for reads outside a transaction.
    pub fn reader(&self) -> &SqlitePool {
        &self.read
    }

    /// This process's view of each organization's audit chain head.
    pub fn heads(&self) -> &audit::HeadCache {
        &self.heads
    }

    /// Backend name for status output.
    pub fn backend(&self) -> &'static str {
        "sqlite"
    }

    /// Where the data lives (file path), for logs.
    pub fn location(&self) -> &str {
        &self.location
    }

    /// Cheap liveness probe for `/readyz`.
    pub async fn ping(&self) -> sqlx::Result<()> {
        sqlx::query("SELECT 1").execute(&self.read).await.map(|_| ())
    }

    /// Writes a consistent copy of the live database to `target` (SQLite `VACUUM INTO`: one
    /// read transaction, writers keep going). Refuses an existing file.
    pub async fn backup_to(&self, target: &Path) -> anyhow::Result<()> {
        if target.exists() {
            anyhow::bail!("{} already exists; choose a new file name", target.display());
        }
        let text = target.to_str().context("the backup path must be valid UTF-8")?;
        sqlx::query("VACUUM INTO $1").bind(text).execute(&self.read).await.with_context(|| format!("failed to write the backup {text}"))?;
        Ok(())
    }

    /// `PRAGMA integrity_check` of the database: `ok` when sound.
    pub async fn integrity_check(&self) -> sqlx::Result<String> {
        sqlx::query_scalar("PRAGMA integrity_check").fetch_one(&self.read).await
    }

    /// Closes both pools (checkpointing the WAL).
    pub async fn close(&self) {
        self.read.close().await;
        self.write.close().await;
    }
}

/// True when the error is a unique-constraint violation (SQLite reports no constraint name).
pub fn is_unique_violation(err: &sqlx::Error) -> bool {
    matches!(err, sqlx::Error::Database(db) if db.kind() == sqlx::error::ErrorKind::UniqueViolation)
}

/// `$first, $first+1, …` placeholders for an `IN (…)` list of `n` values.
pub fn placeholders(first: usize, n: usize) -> String {
    (first..first + n).map(|i| format!("${i}")).collect::<Vec<_>>().join(", ")
}
