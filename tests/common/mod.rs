//! Test harness: `spawn_app()` starts the real server on `127.0.0.1:0` with a fresh database
//! (see [`TestDb`]: a SQLite file in a temporary directory, or with
//! `AGENTKEY_TEST_BACKEND=postgres` a new PostgreSQL database dropped afterwards), and returns
//! HTTP helpers plus the admin-side services (the same service functions the CLI calls). Logs of every app in the test binary are captured
//! at debug level so tests can assert that no secret ever reaches them.
#![expect(
    dead_code,
    reason = "each test binary uses its own subset of the helpers"
)]

pub mod model;
pub mod receiver;
pub mod rpc;
pub mod smtp;
pub mod testdb;
pub mod upstream;

use std::collections::HashMap;
use std::io::Write;
use std::net::SocketAddr;
use std::sync::{Mutex, OnceLock};

use app::model::{AgentView, AuthType, CredentialMode, ToolView};
use app::server::Services;
use app::server::service::actor::AdminCtx;
use app::server::service::{agents, orgs, tools};
use reqwest::{Method, Response};
use secrecy::SecretString;
use serde_json::Value;
use tokio::sync::oneshot;
use tokio::task::JoinHandle;

pub use testdb::{TestBackend, TestDb};

static LOGS: Mutex<Vec<u8>> = Mutex::new(Vec::new());

struct LogWriter;

impl Write for LogWriter {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        LOGS.lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .extend_from_slice(buf);
        Ok(buf.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

fn capture_logs() {
    static ONCE: OnceLock<()> = OnceLock::new();
    ONCE.get_or_init(|| {
        agentkey::telemetry::init_with(|| LogWriter, true, Some("debug"));
    });
}

/// Everything logged so far by any app in this test binary.
pub fn captured_logs() -> String {
    String::from_utf8_lossy(
        &LOGS
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner),
    )
    .into_owned()
}

/// A running server with a fresh database and one organization.
pub struct TestApp {
    pub addr: SocketAddr,
    /// The separate metrics listener, when `AGENTKEY_METRICS` names an address.
    pub metrics_addr: Option<SocketAddr>,
    pub base: String,
    pub services: Services,
    pub org_id: String,
    pub admin: AdminCtx,
    pub client: reqwest::Client,
    pub dir: tempfile::TempDir,
    /// The SQLite file (SQLite runs only).
    pub db_path: std::path::PathBuf,
    pub db: TestDb,
    shutdown: Option<oneshot::Sender<()>>,
    handle: Option<JoinHandle<anyhow::Result<()>>>,
}

/// Starts the app with default settings.
pub async fn spawn_app() -> TestApp {
    spawn_app_with(&[]).await
}

/// Starts the app with extra `AGENTKEY_*` variables (e.g. rate limits or CORS origins).
pub async fn spawn_app_with(vars: &[(&str, &str)]) -> TestApp {
    spawn_app_on(TestBackend::current(), vars).await
}

/// Starts the app on a fresh database of `backend`, whatever `AGENTKEY_TEST_BACKEND` says.
pub async fn spawn_app_on(backend: TestBackend, vars: &[(&str, &str)]) -> TestApp {
    let dir = tempfile::tempdir().expect("temp dir");
    let db = TestDb::create(backend, &dir.path().join("agentkey.db")).await;
    if db.backend() == TestBackend::Postgres {
        // A shared database never gets a generated key: the operator provides one.
        agentkey::startup::write_key_file(
            &dir.path().join("master.key"),
            &app::server::crypto::MasterKey::generate(),
        )
        .expect("key file");
    }
    let mut app = start(dir, db, vars).await;
    let org = orgs::create(&app.services, "Test Org", Some("owner@example.com"))
        .await
        .expect("org");
    app.admin = AdminCtx::operator(&org.id);
    app.org_id = org.id;
    app
}

/// Starts a server on `db` with the folder `dir` (key file, site root).
async fn start(dir: tempfile::TempDir, db: TestDb, vars: &[(&str, &str)]) -> TestApp {
    capture_logs();
    let db_path = dir.path().join("agentkey.db");
    let mut env: HashMap<String, String> = HashMap::from([
        ("AGENTKEY_DATABASE_URL".into(), db.url()),
        ("AGENTKEY_BIND".into(), "127.0.0.1:0".into()),
        (
            "AGENTKEY_SITE_ROOT".into(),
            dir.path().join("site").display().to_string(),
        ),
    ]);
    if db.backend() == TestBackend::Postgres {
        env.insert(
            "AGENTKEY_MASTER_KEY_FILE".into(),
            dir.path().join("master.key").display().to_string(),
        );
    }
    for (k, v) in vars {
        env.insert((*k).into(), (*v).into());
    }
    let settings =
        agentkey::config::Settings::from_sources(None, |k| env.get(k).cloned()).expect("settings");
    let app = agentkey::startup::Application::build(&settings)
        .await
        .expect("app starts");
    let addr = app.addr();
    let metrics_addr = app.metrics_addr();
    let services = app.services().clone();
    let (tx, rx) = oneshot::channel();
    let handle = tokio::spawn(app.run_until(async {
        let _ = rx.await;
    }));
    TestApp {
        addr,
        metrics_addr,
        base: format!("http://{addr}"),
        admin: AdminCtx::operator(""),
        org_id: String::new(),
        services,
        client: reqwest::Client::builder().build().expect("client"),
        dir,
        db_path,
        db,
        shutdown: Some(tx),
        handle: Some(handle),
    }
}

/// A server on an existing database `db`, with a copy of the master key file `key_file`.
pub async fn start_on(db: TestDb, key_file: &std::path::Path, vars: &[(&str, &str)]) -> TestApp {
    let dir = tempfile::tempdir().expect("temp dir");
    let own_key = dir.path().join("master.key");
    std::fs::copy(key_file, &own_key).expect("copy the master key");
    let key_file = own_key.display().to_string();
    let mut env: Vec<(&str, &str)> = vars.to_vec();
    env.push(("AGENTKEY_MASTER_KEY_FILE", &key_file));
    start(dir, db, &env).await
}

impl TestApp {
    /// Another server on the same database and master key (its own port, pools, caches,
    /// workers), as a second instance behind a load balancer would be.
    pub async fn second_instance(&self, vars: &[(&str, &str)]) -> TestApp {
        let mut app = start_on(self.db.share(), &self.dir.path().join("master.key"), vars).await;
        app.admin = self.admin.clone();
        app.org_id = self.org_id.clone();
        app
    }
}

impl TestApp {
    /// Stops the server gracefully and waits for it.
    pub async fn stop(self) {
        self.stop_keeping_files().await;
    }

    /// Stops the server and hands over its folder (key file, SQLite file) and database for
    /// another process.
    pub async fn stop_keeping_files(mut self) -> Kept {
        if let Some(tx) = self.shutdown.take() {
            let _ = tx.send(());
        }
        if let Some(handle) = self.handle.take() {
            handle
                .await
                .expect("server task")
                .expect("server stopped cleanly");
        }
        Kept {
            dir: self.dir,
            db: self.db,
        }
    }

    /// The database URL the server uses.
    pub fn db_url(&self) -> String {
        self.db.url()
    }

    pub fn url(&self, path: &str) -> String {
        format!("{}{}", self.base, path)
    }

    /// Registers an agent; returns it and its key.
    pub async fn create_agent(&self, name: &str) -> (AgentView, String) {
        let issued = agents::create(&self.services, &self.admin, name, "test agent")
            .await
            .expect("agent");
        (issued.agent, issued.api_key)
    }

    /// Adds a shared-credential tool with `secret`.
    pub async fn create_shared_tool(
        &self,
        name: &str,
        url: Option<&str>,
        secret: &str,
    ) -> ToolView {
        self.create_tool(name, url, CredentialMode::Shared, Some(secret), None)
            .await
    }

    /// Adds a tool.
    pub async fn create_tool(
        &self,
        name: &str,
        url: Option<&str>,
        mode: CredentialMode,
        secret: Option<&str>,
        from_suggestion: Option<&str>,
    ) -> ToolView {
        let created = tools::create(
            &self.services,
            &self.admin,
            tools::NewTool {
                name: name.into(),
                description: format!("{name} for tests"),
                url: url.map(Into::into),
                auth_type: AuthType::ApiKey,
                credential_mode: mode,
                credential: secret.map(|s| SecretString::from(s.to_owned())),
                credential_expires_at: None,
                instructions: format!("Use {name} carefully."),
                source_suggestion_id: from_suggestion.map(Into::into),
                delivery: None,
                proxy: Default::default(),
            },
        )
        .await
        .expect("tool");
        created.tool
    }

    /// A request with an optional bearer key.
    pub async fn call(
        &self,
        method: Method,
        path: &str,
        key: Option<&str>,
        body: Option<Value>,
    ) -> Response {
        let mut req = self.client.request(method, self.url(path));
        if let Some(key) = key {
            req = req.bearer_auth(key);
        }
        if let Some(body) = body {
            req = req.json(&body);
        }
        req.send().await.expect("request sent")
    }

    pub async fn get(&self, path: &str, key: &str) -> Response {
        self.call(Method::GET, path, Some(key), None).await
    }

    /// `GET path` as the dashboard's browser sends it, with the session cookie `name=value`.
    pub async fn get_signed_in(&self, path: &str, cookie: &str) -> Response {
        self.client
            .get(self.url(path))
            .header("cookie", cookie)
            .send()
            .await
            .expect("request sent")
    }

    pub async fn post(&self, path: &str, key: &str, body: Value) -> Response {
        self.call(Method::POST, path, Some(key), Some(body)).await
    }

    /// `POST /api/tools/{id}/request` with a reason; returns the request id.
    pub async fn request_access(&self, key: &str, tool_id: &str) -> String {
        let res = self
            .post(
                &format!("/api/tools/{tool_id}/request"),
                key,
                serde_json::json!({ "reason": "Need it for the release" }),
            )
            .await;
        assert_eq!(res.status(), 201, "request access");
        let body: Value = res.json().await.expect("json");
        body["request_id"].as_str().expect("request_id").to_owned()
    }

    /// `GET /api/tools/{id}/credentials`.
    pub async fn fetch(&self, key: &str, tool_id: &str) -> Response {
        self.get(&format!("/api/tools/{tool_id}/credentials"), key)
            .await
    }

    /// A raw connection to the test database (bypassing the app).
    pub async fn raw_db(&self) -> sqlx::AnyConnection {
        self.db.connect().await
    }
}

/// What [`TestApp::stop_keeping_files`] leaves for another process.
pub struct Kept {
    pub dir: tempfile::TempDir,
    pub db: TestDb,
}

impl Kept {
    pub fn path(&self) -> &std::path::Path {
        self.dir.path()
    }
}

/// Reads a JSON body.
pub async fn json(res: Response) -> Value {
    res.json().await.expect("JSON body")
}

// ---- Helpers shared by the area test files (agent_flow, agent_errors, suggestions, security).

/// Milliseconds since the epoch, as the server measures time.
pub fn now_ms() -> i64 {
    app::server::clock::now_ms()
}

/// Asserts `res` is an error with `status` and a JSON `{error, hint?}` body; returns the body.
pub async fn expect_error(res: Response, status: u16) -> Value {
    let got = res.status().as_u16();
    let content_type = res
        .headers()
        .get("content-type")
        .and_then(|v| v.to_str().ok())
        .unwrap_or("")
        .to_owned();
    let text = res.text().await.expect("body text");
    assert_eq!(got, status, "unexpected status; body: {text}");
    assert!(
        content_type.starts_with("application/json"),
        "error content type {content_type:?}; body: {text}"
    );
    let body: Value =
        serde_json::from_str(&text).unwrap_or_else(|_| panic!("error body is not JSON: {text}"));
    assert!(
        body["error"].as_str().is_some_and(|e| !e.is_empty()),
        "error body without `error`: {body}"
    );
    assert!(
        body.get("hint").is_none_or(Value::is_string),
        "`hint` must be a string when present: {body}"
    );
    body
}

/// Asserts a 400 validation error naming `field` in `details`; returns the body.
pub async fn expect_invalid_field(res: Response, field: &str) -> Value {
    let body = expect_error(res, 400).await;
    let details = body["details"]
        .as_array()
        .unwrap_or_else(|| panic!("400 without details: {body}"));
    assert!(
        details
            .iter()
            .any(|d| d["field"] == field && d["message"].as_str().is_some_and(|m| !m.is_empty())),
        "details do not name {field:?}: {body}"
    );
    body
}

impl TestApp {
    /// `SELECT COUNT(*) …` on the raw database.
    pub async fn count(&self, sql: &str) -> i64 {
        let mut db = self.raw_db().await;
        sqlx::query_scalar::<_, i64>(sql)
            .fetch_one(&mut db)
            .await
            .expect("count query")
    }

    /// Runs one raw SQL statement (as another process would), panicking on failure.
    pub async fn exec(&self, sql: &str) {
        let mut db = self.raw_db().await;
        sqlx::query(sql)
            .execute(&mut db)
            .await
            .unwrap_or_else(|e| panic!("raw SQL failed: {sql}: {e}"));
    }

    /// Creates a row trigger running `body` (one statement; `NEW` is the row) `when`
    /// (e.g. `AFTER INSERT ON tools`), in the current backend's dialect.
    pub async fn create_trigger(&self, name: &str, when: &str, body: &str) {
        match self.db.backend() {
            TestBackend::Sqlite => {
                self.exec(&format!("CREATE TRIGGER {name} {when} BEGIN {body}; END"))
                    .await
            }
            TestBackend::Postgres => {
                self.exec(&format!("CREATE FUNCTION {name}() RETURNS trigger LANGUAGE plpgsql AS $$ BEGIN {body}; RETURN NEW; END $$"))
                    .await;
                self.exec(&format!(
                    "CREATE TRIGGER {name} {when} FOR EACH ROW EXECUTE FUNCTION {name}()"
                ))
                .await;
            }
        }
    }

    /// A trigger that makes the database refuse inserts into `table` whose row matches
    /// `condition` (an expression over `NEW` that reads the same in both dialects).
    pub async fn refuse_inserts(&self, name: &str, table: &str, condition: &str) {
        let (when, body) = match self.db.backend() {
            TestBackend::Sqlite => (
                format!("BEFORE INSERT ON {table} WHEN {condition}"),
                "SELECT RAISE(ABORT, 'refused by the test')".to_owned(),
            ),
            TestBackend::Postgres => (
                format!("BEFORE INSERT ON {table}"),
                format!("IF {condition} THEN RAISE EXCEPTION 'refused by the test'; END IF"),
            ),
        };
        self.create_trigger(name, &when, &body).await;
    }

    /// Drops a trigger of `table` (as someone with access to the database could).
    pub async fn drop_trigger(&self, name: &str, table: &str) {
        match self.db.backend() {
            TestBackend::Sqlite => self.exec(&format!("DROP TRIGGER {name}")).await,
            TestBackend::Postgres => self.exec(&format!("DROP TRIGGER {name} ON {table}")).await,
        }
    }

    /// Every stored byte an attacker with the database would see: the SQLite files, or on
    /// PostgreSQL every row of every AgentKey table as text. (name, bytes) pairs.
    pub async fn stored_bytes(&self) -> Vec<(String, Vec<u8>)> {
        match self.db.backend() {
            TestBackend::Sqlite => ["", "-wal", "-shm"]
                .iter()
                .filter_map(|suffix| {
                    let path = format!("{}{suffix}", self.db_path.display());
                    std::fs::read(&path).ok().map(|bytes| (path, bytes))
                })
                .collect(),
            TestBackend::Postgres => {
                let mut db = self.raw_db().await;
                let tables: Vec<String> = sqlx::query_scalar(
                    "SELECT tablename::text FROM pg_tables WHERE schemaname = 'public'",
                )
                .fetch_all(&mut db)
                .await
                .expect("tables");
                let mut out = Vec::new();
                for table in tables {
                    let rows: Vec<String> =
                        sqlx::query_scalar(&format!("SELECT row_to_json(t)::text FROM {table} t"))
                            .fetch_all(&mut db)
                            .await
                            .expect("rows");
                    out.push((table, rows.join("\n").into_bytes()));
                }
                out
            }
        }
    }

    /// Approves a pending request (shared tool, open-ended).
    pub async fn approve(&self, request_id: &str) {
        app::server::service::grants::approve(&self.services, &self.admin, request_id, None, None)
            .await
            .expect("approve");
    }

    /// Requests and approves access to a shared tool; returns the request id.
    pub async fn grant(&self, key: &str, tool_id: &str) -> String {
        let id = self.request_access(key, tool_id).await;
        self.approve(&id).await;
        id
    }

    /// A second organization with its operator context.
    pub async fn other_org(&self, name: &str) -> AdminCtx {
        let org = orgs::create(&self.services, name, None)
            .await
            .expect("second org");
        AdminCtx::operator(&org.id)
    }

    /// Adds a tool for `ctx` with every field chosen by the caller.
    pub async fn create_tool_as(
        &self,
        ctx: &AdminCtx,
        name: &str,
        url: Option<&str>,
        auth_type: AuthType,
        mode: CredentialMode,
        secret: Option<&str>,
    ) -> ToolView {
        tools::create(
            &self.services,
            ctx,
            tools::NewTool {
                name: name.into(),
                description: format!("{name} for tests"),
                url: url.map(Into::into),
                auth_type,
                credential_mode: mode,
                credential: secret.map(|s| SecretString::from(s.to_owned())),
                credential_expires_at: None,
                instructions: format!("Use {name} carefully."),
                source_suggestion_id: None,
                delivery: None,
                proxy: Default::default(),
            },
        )
        .await
        .expect("tool")
        .tool
    }

    /// Sends raw bytes over a fresh TCP connection and returns (status, headers+body text).
    /// For requests reqwest cannot shape, such as a chunked body without `Content-Length`.
    pub async fn raw_http(&self, request: &[u8]) -> (u16, String) {
        use tokio::io::{AsyncReadExt, AsyncWriteExt};
        let mut stream = tokio::net::TcpStream::connect(self.addr)
            .await
            .expect("connect");
        stream.write_all(request).await.expect("write request");
        let mut buf = Vec::new();
        // The server may answer before reading the whole body; read until it closes.
        // Requests must carry `Connection: close`; the timeout only guards against a hang.
        let _ = tokio::time::timeout(
            std::time::Duration::from_secs(10),
            stream.read_to_end(&mut buf),
        )
        .await;
        let text = String::from_utf8_lossy(&buf).into_owned();
        let status = text
            .split(' ')
            .nth(1)
            .and_then(|s| s.parse().ok())
            .unwrap_or(0);
        (status, text)
    }
}

impl TestApp {
    /// Opens the same database as another process would (the CLI next to the server): its own
    /// pool, keyring, caches and audit writer. `extra` overrides variables, e.g. the master key.
    pub async fn second_process(&self, extra: &[(&str, &str)]) -> anyhow::Result<Services> {
        let mut env: HashMap<String, String> = HashMap::from([
            ("AGENTKEY_DATABASE_URL".into(), self.db_url()),
            ("AGENTKEY_BIND".into(), "127.0.0.1:0".into()),
            (
                "AGENTKEY_MASTER_KEY_FILE".into(),
                self.dir.path().join("master.key").display().to_string(),
            ),
        ]);
        for (k, v) in extra {
            env.insert((*k).into(), (*v).into());
        }
        let settings = agentkey::config::Settings::from_sources(None, |k| env.get(k).cloned())?;
        agentkey::startup::open(&settings).await
    }
}
