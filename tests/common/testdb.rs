//! The database behind a test app. `AGENTKEY_TEST_BACKEND=postgres` gives every app its own new
//! PostgreSQL database (on `AGENTKEY_TEST_PG_URL`, default the local server as `postgres`),
//! dropped when the app is; anything else gives a SQLite file in the app's temporary folder.

use std::path::{Path, PathBuf};

use sqlx::{Connection, Executor};

/// Prefix of the databases tests create; `scripts/test.sh` drops leftovers of killed runs.
pub const PG_PREFIX: &str = "agentkey_test_";

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum TestBackend {
    Sqlite,
    Postgres,
}

impl TestBackend {
    pub fn current() -> Self {
        match std::env::var("AGENTKEY_TEST_BACKEND").as_deref() {
            Ok("postgres") => TestBackend::Postgres,
            Ok("sqlite") | Err(_) => TestBackend::Sqlite,
            Ok(other) => panic!("AGENTKEY_TEST_BACKEND must be sqlite or postgres, not {other:?}"),
        }
    }
}

fn pg_admin_url() -> String {
    std::env::var("AGENTKEY_TEST_PG_URL")
        .unwrap_or_else(|_| "postgres://postgres@127.0.0.1:5432/postgres".to_owned())
}

/// Owns a test database; a PostgreSQL one is dropped (connections and all) with it.
pub enum TestDb {
    Sqlite(PathBuf),
    Postgres {
        name: String,
        url: String,
    },
    /// Another app's database (a second instance): not dropped by this handle.
    Shared {
        url: String,
    },
}

impl TestDb {
    /// A fresh, empty database of `backend` (`sqlite_path` for SQLite).
    pub async fn create(backend: TestBackend, sqlite_path: &Path) -> Self {
        match backend {
            TestBackend::Sqlite => TestDb::Sqlite(sqlite_path.to_owned()),
            TestBackend::Postgres => Self::create_postgres().await,
        }
    }

    /// A fresh, empty PostgreSQL database whatever the current backend.
    pub async fn create_postgres() -> Self {
        let admin = pg_admin_url();
        let name = format!("{PG_PREFIX}{}", uuid::Uuid::now_v7().simple());
        let mut conn = sqlx::PgConnection::connect(&admin)
            .await
            .unwrap_or_else(|e| panic!("cannot reach the test PostgreSQL at {admin}: {e}"));
        conn.execute(format!("CREATE DATABASE {name}").as_str())
            .await
            .expect("create test database");
        let _ = conn.close().await;
        let mut url = url::Url::parse(&admin).expect("AGENTKEY_TEST_PG_URL is a URL");
        url.set_path(&name);
        TestDb::Postgres {
            name,
            url: url.to_string(),
        }
    }

    pub fn url(&self) -> String {
        match self {
            TestDb::Sqlite(path) => format!("sqlite://{}", path.display()),
            TestDb::Postgres { url, .. } | TestDb::Shared { url } => url.clone(),
        }
    }

    pub fn backend(&self) -> TestBackend {
        match self {
            TestDb::Sqlite(_) => TestBackend::Sqlite,
            TestDb::Postgres { .. } => TestBackend::Postgres,
            TestDb::Shared { url } if url.starts_with("sqlite:") => TestBackend::Sqlite,
            TestDb::Shared { .. } => TestBackend::Postgres,
        }
    }

    /// A handle to the same database that does not own it.
    pub fn share(&self) -> Self {
        TestDb::Shared { url: self.url() }
    }

    /// A raw connection, as another process would open one.
    pub async fn connect(&self) -> sqlx::AnyConnection {
        sqlx::any::install_default_drivers();
        sqlx::AnyConnection::connect(&self.url())
            .await
            .expect("raw connection")
    }
}

impl Drop for TestDb {
    fn drop(&mut self) {
        let TestDb::Postgres { name, .. } = self else {
            return;
        };
        let name = name.clone();
        // Drop runs inside the test's runtime, which cannot be blocked on; a short-lived
        // thread with its own runtime does the DROP and is waited for.
        let done = std::thread::spawn(move || {
            let runtime = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .expect("runtime");
            runtime.block_on(async move {
                if let Ok(mut conn) = sqlx::PgConnection::connect(&pg_admin_url()).await {
                    let _ = conn
                        .execute(format!("DROP DATABASE IF EXISTS {name} WITH (FORCE)").as_str())
                        .await;
                    let _ = conn.close().await;
                }
            });
        });
        let _ = done.join();
    }
}
