//! Persistence behind one seam, for SQLite and PostgreSQL. Runtime `query_as` through sqlx's
//! `Any` driver with explicit columns, `$N` placeholders and portable SQL; the few statements
//! that differ branch on [`Backend`] inside the store functions, never in callers.
//!
//! SQLite runs in WAL mode with a pool of readers and a single writer connection: writes queue
//! on that connection instead of failing with `SQLITE_BUSY`, and every write transaction starts
//! with `BEGIN IMMEDIATE` so that a read-then-write inside it cannot lose its snapshot.

mod error;

pub mod agent_context;
pub mod agents;
pub mod audit;
pub mod auth;
pub mod copy;
pub mod exposures;
pub mod guide_suggestions;
pub mod keys;
pub mod lifecycle;
pub mod lock;
pub mod members;
pub mod notify;
pub mod orgs;
pub mod outbox;
pub mod proxy_use;
pub mod requests;
pub mod reviews;
pub mod rules;
pub mod suggestions;
pub mod tools;
pub mod usage;
pub mod vend;
pub mod votes;

pub use error::{StoreError, StoreResult};

use std::path::Path;
use std::time::Duration;

use anyhow::Context;
use sqlx::any::AnyPoolOptions;
use sqlx::{Any, AnyPool, Executor};

/// The database type of the store: `Any`, so one set of functions serves SQLite and PostgreSQL.
pub type Db = Any;
/// A write transaction.
pub type Tx = sqlx::Transaction<'static, Db>;

static SQLITE_MIGRATIONS: sqlx::migrate::Migrator = sqlx::migrate!("../migrations/sqlite");
static POSTGRES_MIGRATIONS: sqlx::migrate::Migrator = sqlx::migrate!("../migrations/postgres");

/// Advisory lock key taken by every PostgreSQL write transaction (see [`Store::begin`]).
const PG_WRITE_LOCK: i64 = 0x4167_656e_744b_6579; // "AgentKey"

/// Which database the store talks to.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Backend {
    Sqlite,
    Postgres,
}

impl Backend {
    /// The backend a database URL names: `postgres://` / `postgresql://`, else SQLite.
    pub fn of_url(url: &str) -> Self {
        if url.starts_with("postgres://") || url.starts_with("postgresql://") {
            Backend::Postgres
        } else {
            Backend::Sqlite
        }
    }

    pub fn name(self) -> &'static str {
        match self {
            Backend::Sqlite => "sqlite",
            Backend::Postgres => "postgres",
        }
    }
}

/// Handle to the database: cheap to clone.
#[derive(Clone, Debug)]
pub struct Store {
    read: AnyPool,
    write: AnyPool,
    backend: Backend,
    location: String,
    /// The PostgreSQL URL, password included, for the `LISTEN` connection. Redacted in `Debug`.
    pg_url: Option<std::sync::Arc<secrecy::SecretString>>,
    heads: audit::HeadCache,
}

impl Store {
    /// Opens the database a URL names: `postgres://…` for PostgreSQL; `sqlite://path`, `sqlite:path`
    /// or a plain path for SQLite (created if missing).
    pub async fn connect(url: &str) -> anyhow::Result<Self> {
        sqlx::any::install_default_drivers();
        match Backend::of_url(url) {
            Backend::Postgres => Self::connect_postgres(url).await,
            Backend::Sqlite => Self::connect_sqlite(url).await,
        }
    }

    async fn connect_postgres(url: &str) -> anyhow::Result<Self> {
        let location = redact_url(url);
        // Separate pools, as on SQLite: write transactions queue for the write lock on their own
        // connections, so a burst of writes never starves reads (sessions, fetches, /readyz),
        // and a transaction that reads through the read pool cannot wait on itself.
        // 12 + 6 + the LISTEN connection: about 19 connections per instance.
        let options = |max: u32| {
            AnyPoolOptions::new()
                .max_connections(max)
                .acquire_timeout(Duration::from_secs(30))
                .after_connect(move |conn, _| {
                    Box::pin(async move {
                        // Stored times are integer milliseconds; UTC keeps operator queries stable.
                        conn.execute("SET TIME ZONE 'UTC'").await?;
                        // A write waits at most this long for the write lock, then fails cleanly.
                        conn.execute("SET lock_timeout = '30s'").await?;
                        Ok(())
                    })
                })
        };
        let connect_failed = || format!("failed to connect to PostgreSQL at {location}");
        let read = options(12)
            .connect(url)
            .await
            .with_context(connect_failed)?;
        let write = options(6).connect(url).await.with_context(connect_failed)?;
        Ok(Store {
            read,
            write,
            backend: Backend::Postgres,
            location,
            pg_url: Some(std::sync::Arc::new(secrecy::SecretString::from(
                url.to_owned(),
            ))),
            heads: audit::HeadCache::default(),
        })
    }

    async fn connect_sqlite(url: &str) -> anyhow::Result<Self> {
        let path = sqlite_path(url);
        if let Some(dir) = Path::new(path)
            .parent()
            .filter(|d| !d.as_os_str().is_empty())
        {
            std::fs::create_dir_all(dir).with_context(|| {
                format!("failed to create database directory {}", dir.display())
            })?;
        }
        let url = format!("sqlite://{path}?mode=rwc");
        // Per-connection settings. WAL persists in the file; FULL: a committed audit row
        // survives power loss, not only a crash.
        let options = || {
            AnyPoolOptions::new()
                .test_before_acquire(false)
                .acquire_timeout(Duration::from_secs(30))
                .after_connect(|conn, _| {
                    Box::pin(async move {
                        for pragma in [
                            "PRAGMA journal_mode = WAL",
                            "PRAGMA synchronous = FULL",
                            "PRAGMA busy_timeout = 10000",
                            "PRAGMA foreign_keys = ON",
                            "PRAGMA temp_store = MEMORY",
                        ] {
                            conn.execute(pragma).await?;
                        }
                        Ok(())
                    })
                })
        };
        // No ping before each acquire: a broken SQLite connection surfaces on first use anyway,
        // and the ping is a round trip on the hot write path.
        let write = options()
            .max_connections(1)
            .min_connections(1)
            .connect(&url)
            .await
            .with_context(|| format!("failed to open database {path}"))?;
        let read = options()
            .max_connections(8)
            .connect(&url)
            .await
            .with_context(|| format!("failed to open database {path}"))?;
        Ok(Store {
            read,
            write,
            backend: Backend::Sqlite,
            location: path.to_owned(),
            pg_url: None,
            heads: audit::HeadCache::default(),
        })
    }

    /// Applies the embedded migrations that have not run yet. On PostgreSQL the migrator holds
    /// an advisory lock, so instances starting together apply each migration once.
    pub async fn migrate(&self) -> anyhow::Result<()> {
        let migrator = match self.backend {
            Backend::Sqlite => &SQLITE_MIGRATIONS,
            Backend::Postgres => &POSTGRES_MIGRATIONS,
        };
        migrator
            .run(&self.write)
            .await
            .context("failed to apply database migrations")
    }

    /// Starts a write transaction. Write transactions are serialized, so a read-then-write
    /// inside one cannot lose its snapshot: SQLite by `BEGIN IMMEDIATE` (one writer per file),
    /// PostgreSQL by a transaction-scoped advisory lock shared by every instance (released at
    /// commit or rollback). Reads outside transactions run in parallel on both.
    pub async fn begin(&self) -> StoreResult<Tx> {
        match self.backend {
            Backend::Sqlite => Ok(self.write.begin_with("BEGIN IMMEDIATE").await?),
            Backend::Postgres => {
                // One round trip: both statements go as one simple query.
                static BEGIN: std::sync::LazyLock<String> = std::sync::LazyLock::new(|| {
                    format!("BEGIN; SELECT pg_advisory_xact_lock({PG_WRITE_LOCK})")
                });
                Ok(self.write.begin_with(BEGIN.as_str()).await?)
            }
        }
    }

    /// The connection pool for one-statement writes outside a transaction (SQLite: the single
    /// writer connection).
    pub fn writer(&self) -> &AnyPool {
        &self.write
    }

    /// The pool for reads outside a transaction.
    pub fn reader(&self) -> &AnyPool {
        &self.read
    }

    /// This process's view of each organization's audit chain head.
    pub fn heads(&self) -> &audit::HeadCache {
        &self.heads
    }

    pub fn backend(&self) -> Backend {
        self.backend
    }

    /// The PostgreSQL URL (with its password: never log it), for connections outside the pool.
    pub fn postgres_url(&self) -> Option<&str> {
        use secrecy::ExposeSecret;
        self.pg_url.as_deref().map(ExposeSecret::expose_secret)
    }

    /// Where the data lives (file path, or the URL without its password), for logs.
    pub fn location(&self) -> &str {
        &self.location
    }

    /// Each pool's open and idle connections, for the metrics.
    pub fn pool_use(&self) -> Vec<(&'static str, u32, u32)> {
        [("read", &self.read), ("write", &self.write)]
            .into_iter()
            .map(|(name, pool)| (name, pool.size(), pool.num_idle() as u32))
            .collect()
    }

    /// Cheap liveness probe for `/readyz`.
    pub async fn ping(&self) -> StoreResult<()> {
        sqlx::query("SELECT 1")
            .execute(&self.read)
            .await
            .map(|_| ())
            .map_err(Into::into)
    }

    /// Writes a consistent copy of the live SQLite database to `target` (`VACUUM INTO`: one
    /// read transaction, writers keep going). Refuses an existing file.
    pub async fn backup_to(&self, target: &Path) -> anyhow::Result<()> {
        if self.backend != Backend::Sqlite {
            anyhow::bail!(
                "VACUUM INTO copies SQLite only; on PostgreSQL `agentkey backup` exports the tables instead"
            );
        }
        if target.exists() {
            anyhow::bail!(
                "{} already exists; choose a new file name",
                target.display()
            );
        }
        let text = target
            .to_str()
            .context("the backup path must be valid UTF-8")?;
        sqlx::query("VACUUM INTO $1")
            .bind(text)
            .execute(&self.read)
            .await
            .with_context(|| format!("failed to write the backup {text}"))?;
        Ok(())
    }

    /// Integrity check of the database: `ok` when sound. SQLite runs `PRAGMA integrity_check`;
    /// PostgreSQL checks its own pages, so a successful query is the answer there.
    pub async fn integrity_check(&self) -> StoreResult<String> {
        match self.backend {
            Backend::Sqlite => sqlx::query_scalar("PRAGMA integrity_check")
                .fetch_one(&self.read)
                .await
                .map_err(Into::into),
            Backend::Postgres => sqlx::query("SELECT 1")
                .execute(&self.read)
                .await
                .map(|_| "ok".to_owned())
                .map_err(Into::into),
        }
    }

    /// Closes the pools (SQLite: checkpointing the WAL).
    pub async fn close(&self) {
        self.read.close().await;
        self.write.close().await;
    }
}

/// The file a SQLite URL (`sqlite://path`, `sqlite:path` or a plain path) names.
pub fn sqlite_path(url: &str) -> &str {
    let path = url
        .strip_prefix("sqlite://")
        .or_else(|| url.strip_prefix("sqlite:"))
        .unwrap_or(url);
    path.split('?').next().unwrap_or(path)
}

/// A database URL fit for logs: scheme, user, host, port and database only. Passwords (in the
/// authority or as a `password=` parameter) and every other parameter are left out.
pub fn redact_url(url: &str) -> String {
    match url::Url::parse(url) {
        Ok(parsed) => {
            let user = if parsed.username().is_empty() {
                String::new()
            } else {
                format!("{}@", parsed.username())
            };
            let port = parsed.port().map(|p| format!(":{p}")).unwrap_or_default();
            format!(
                "{}://{user}{}{port}{}",
                parsed.scheme(),
                parsed.host_str().unwrap_or(""),
                parsed.path()
            )
        }
        Err(_) => "(unparseable URL)".to_owned(),
    }
}

/// True when the connection (or the transaction on it) talks to PostgreSQL: for the few
/// statements whose SQL differs between the backends.
pub fn is_postgres(conn: &sqlx::AnyConnection) -> bool {
    conn.backend_name() == "PostgreSQL"
}

/// `$first, $first+1, …` placeholders for an `IN (…)` list of `n` values.
pub fn placeholders(first: usize, n: usize) -> String {
    (first..first + n)
        .map(|i| format!("${i}"))
        .collect::<Vec<_>>()
        .join(", ")
}

#[cfg(test)]
mod tests;
