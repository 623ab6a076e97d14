//! `agentkey backup` against a running server (SQLite: a file copy; PostgreSQL: a logical
//! export into a SQLite file): a consistent copy that opens, verifies and still decrypts with
//! the same master key; an existing file is never overwritten. `agentkey migrate-data` moves
//! everything between backends and refuses a non-empty target. `agentkey tool list` shows
//! each tool's health as the dashboard does.

mod common;

use std::process::Command;

use app::model::CredentialMode;
use common::{TestBackend, TestDb, spawn_app, spawn_app_on, start_on};

fn backup(app: &common::TestApp, to: &std::path::Path) -> std::process::Output {
    Command::new(env!("CARGO_BIN_EXE_agentkey"))
        .args(["--json", "backup"])
        .arg(to)
        .env("AGENTKEY_DATABASE_URL", app.db_url())
        .env(
            "AGENTKEY_MASTER_KEY_FILE",
            app.dir.path().join("master.key"),
        )
        .output()
        .expect("agentkey backup runs")
}

#[tokio::test]
async fn a_backup_of_the_live_database_is_complete_verified_and_never_overwrites() {
    let app = spawn_app().await;
    let tool = app
        .create_shared_tool("GitHub", None, "ghp_backup_secret")
        .await;
    let (_, key) = app.create_agent("bot").await;
    app.grant(&key, &tool.id).await;
    assert_eq!(app.fetch(&key, &tool.id).await.status(), 200);

    let target = app.dir.path().join("copy.db");
    let out = backup(&app, &target);
    assert!(
        out.status.success(),
        "backup failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let report: serde_json::Value = serde_json::from_slice(&out.stdout).expect("json report");
    assert_eq!(report["organizations"], 1);
    assert!(
        report["audit_rows_verified"].as_i64().expect("rows") >= 5,
        "{report}"
    );

    // The copy holds what the live database holds, secrets still sealed.
    let copy = app::server::store::Store::connect(&format!("sqlite://{}", target.display()))
        .await
        .expect("open copy");
    let tools: i64 =
        sqlx::query_scalar("SELECT COUNT(*) FROM tools WHERE credential_blob IS NOT NULL")
            .fetch_one(copy.reader())
            .await
            .expect("count");
    assert_eq!(tools, 1);
    let raw = std::fs::read(&target).expect("read copy");
    assert!(
        !raw.windows(17).any(|w| w == b"ghp_backup_secret"),
        "the secret is not in the file in the clear"
    );
    copy.close().await;

    let again = backup(&app, &target);
    assert!(!again.status.success(), "an existing file is refused");
    assert!(String::from_utf8_lossy(&again.stderr).contains("already exists"));
    assert_eq!(
        app.fetch(&key, &tool.id).await.status(),
        200,
        "the server kept serving"
    );
    app.stop().await;
}

fn migrate_data(from: &str, to: &str) -> std::process::Output {
    Command::new(env!("CARGO_BIN_EXE_agentkey"))
        .args(["--json", "migrate-data", "--from", from, "--to", to])
        .output()
        .expect("agentkey migrate-data runs")
}

#[tokio::test]
async fn migrate_data_moves_everything_from_sqlite_to_postgres_and_back() {
    let app = spawn_app_on(TestBackend::Sqlite, &[]).await;
    let tool = app
        .create_shared_tool("GitHub", None, "ghp_moving_secret")
        .await;
    let (_, key) = app.create_agent("bot").await;
    let (_, revoked_key) = app.create_agent("revoked-bot").await;
    app.grant(&key, &tool.id).await;
    let revoked = app.grant(&revoked_key, &tool.id).await;
    app::server::service::grants::revoke(&app.services, &app.admin, &revoked, None)
        .await
        .expect("revoke");
    assert_eq!(app.fetch(&key, &tool.id).await.status(), 200);
    let source_url = app.db_url();
    let key_file = app.dir.path().join("master.key");
    let kept = app.stop_keeping_files().await;

    let pg = TestDb::create_postgres().await;
    let out = migrate_data(&source_url, &pg.url());
    assert!(
        out.status.success(),
        "migrate-data failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let report: serde_json::Value = serde_json::from_slice(&out.stdout).expect("json report");
    assert_eq!(report["tables"]["agents"], 2, "{report}");
    assert_eq!(report["tables"]["tools"], 1, "{report}");
    assert_eq!(report["organizations"], 1, "{report}");
    assert!(
        report["audit_rows_verified"].as_i64().expect("rows") >= 8,
        "{report}"
    );
    assert!(!String::from_utf8_lossy(&out.stdout).contains("ghp_moving_secret"));

    // A server on the PostgreSQL copy with the same master key serves what the original did.
    let moved = start_on(pg.share(), &key_file, &[]).await;
    let res = moved.fetch(&key, &tool.id).await;
    assert_eq!(res.status(), 200);
    assert_eq!(common::json(res).await["credential"], "ghp_moving_secret");
    assert_eq!(
        moved.fetch(&revoked_key, &tool.id).await.status(),
        403,
        "a revoked grant stays revoked"
    );
    moved.stop().await;

    // Into a database that is not empty: refused, and nothing in it changes.
    let again = migrate_data(&source_url, &pg.url());
    assert!(!again.status.success());
    let err = String::from_utf8_lossy(&again.stderr);
    assert!(err.contains("not empty"), "{err}");
    let mut conn = pg.connect().await;
    let agents: i64 = sqlx::query_scalar("SELECT COUNT(*) FROM agents")
        .fetch_one(&mut conn)
        .await
        .expect("count");
    assert_eq!(agents, 2);

    // A mistyped source is refused, and no empty file is left behind.
    let typo = kept.path().join("typo.db");
    let refused = migrate_data(&format!("sqlite://{}", typo.display()), &pg.url());
    assert!(!refused.status.success());
    assert!(
        String::from_utf8_lossy(&refused.stderr).contains("does not exist"),
        "{}",
        String::from_utf8_lossy(&refused.stderr)
    );
    assert!(!typo.exists(), "no file was created");

    // And back to a new SQLite file: the same rows, the chain still verifies.
    let back = kept.path().join("back.db");
    let out = migrate_data(&pg.url(), &format!("sqlite://{}", back.display()));
    assert!(
        out.status.success(),
        "back to SQLite failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let round: serde_json::Value = serde_json::from_slice(&out.stdout).expect("json report");
    let audit_rows: i64 = sqlx::query_scalar("SELECT COUNT(*) FROM audit_log")
        .fetch_one(&mut conn)
        .await
        .expect("count");
    assert_eq!(round["tables"]["agents"], 2, "{round}");
    assert_eq!(round["tables"]["audit_log"], audit_rows, "{round}");
    assert_eq!(
        round["audit_rows_verified"], audit_rows,
        "including the rows the PostgreSQL server added"
    );
}

/// Tool health is the service's rule, so the CLI lists it too: a shared tool without a secret,
/// and one whose secret was last set 100 days ago.
#[tokio::test]
async fn the_cli_tool_list_shows_what_needs_attention() {
    let app = spawn_app().await;
    let missing = app
        .create_tool("Linear", None, CredentialMode::Shared, None, None)
        .await;
    let stale = app.create_shared_tool("GitHub", None, "ghp_stale").await;
    let hundred_days_ago = common::now_ms() - 100 * 86_400_000;
    app.exec(&format!(
        "UPDATE tools SET credential_rotated_at = {hundred_days_ago} WHERE id = '{}'",
        stale.id
    ))
    .await;
    let tool_list = |json: bool| {
        let mut cmd = Command::new(env!("CARGO_BIN_EXE_agentkey"));
        if json {
            cmd.arg("--json");
        }
        let out = cmd
            .args(["tool", "list"])
            .env("AGENTKEY_DATABASE_URL", app.db_url())
            .env(
                "AGENTKEY_MASTER_KEY_FILE",
                app.dir.path().join("master.key"),
            )
            .output()
            .expect("agentkey tool list runs");
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8_lossy(&out.stdout).into_owned()
    };

    let listed: serde_json::Value = serde_json::from_str(&tool_list(true)).expect("JSON");
    let health = |id: &str| {
        listed
            .as_array()
            .and_then(|tools| tools.iter().find(|t| t["id"] == id))
            .map(|t| t["health"].clone())
    };
    assert_eq!(health(&missing.id), Some(serde_json::json!(["no_secret"])));
    assert_eq!(health(&stale.id), Some(serde_json::json!(["rotation_due"])));
    let text = tool_list(false);
    assert!(
        text.contains("no secret") && text.contains("rotated over 90 days ago"),
        "{text}"
    );
}

fn restore(
    db_url: &str,
    key_file: &std::path::Path,
    from: &std::path::Path,
) -> std::process::Output {
    Command::new(env!("CARGO_BIN_EXE_agentkey"))
        .args(["--json", "restore"])
        .arg(from)
        .env("AGENTKEY_DATABASE_URL", db_url)
        .env("AGENTKEY_MASTER_KEY_FILE", key_file)
        .output()
        .expect("agentkey restore runs")
}

/// What the live database holds, compared by content: its main file's bytes also change when
/// SQLite folds its write-ahead log in, whenever the last connection of a process closes.
async fn live_content(db_file: &std::path::Path) -> (Vec<String>, i64) {
    let store = app::server::store::Store::connect(&format!("sqlite://{}", db_file.display()))
        .await
        .expect("open");
    let tools = sqlx::query_scalar("SELECT name FROM tools ORDER BY name")
        .fetch_all(store.reader())
        .await
        .expect("tools");
    let audit: i64 = sqlx::query_scalar("SELECT COUNT(*) FROM audit_log")
        .fetch_one(store.reader())
        .await
        .expect("audit");
    store.close().await;
    (tools, audit)
}

async fn agent_names(db_file: &std::path::Path) -> Vec<String> {
    let store = app::server::store::Store::connect(&format!("sqlite://{}", db_file.display()))
        .await
        .expect("open");
    let names = sqlx::query_scalar("SELECT name FROM agents ORDER BY name")
        .fetch_all(store.reader())
        .await
        .expect("names");
    store.close().await;
    names
}

#[tokio::test]
async fn restore_puts_a_backup_back_offline_and_keeps_the_database_it_replaces() {
    let app = spawn_app_on(TestBackend::Sqlite, &[]).await;
    let tool = app.create_shared_tool("GitHub", None, "ghp_restore").await;
    let (_, key) = app.create_agent("before-backup").await;
    app.grant(&key, &tool.id).await;
    let target = app.dir.path().join("copy.db");
    assert!(backup(&app, &target).status.success());
    app.create_agent("after-backup").await;
    let (db_url, db_file) = (app.db_url(), app.db_path.clone());
    let key_file = app.dir.path().join("master.key");

    // Refused while the server runs: the live database stays as it is.
    let refused = restore(&db_url, &key_file, &target);
    assert!(!refused.status.success());
    assert!(String::from_utf8_lossy(&refused.stderr).contains("a server is running"));
    let kept = app.stop_keeping_files().await;
    assert_eq!(
        agent_names(&db_file).await,
        ["after-backup", "before-backup"]
    );

    let out = restore(&db_url, &key_file, &target);

    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let report: serde_json::Value = serde_json::from_slice(&out.stdout).expect("json");
    assert_eq!(report["organizations"], 1);
    assert_eq!(agent_names(&db_file).await, ["before-backup"]);
    let previous = std::path::PathBuf::from(report["previous"].as_str().expect("previous"));
    assert!(
        previous.starts_with(kept.path()),
        "kept beside the database"
    );
    assert_eq!(
        agent_names(&previous).await,
        ["after-backup", "before-backup"]
    );
    // The restored database serves again, and its secret still opens.
    let served = start_on(kept.db, &key_file, &[]).await;
    assert_eq!(served.fetch(&key, &tool.id).await.status(), 200);
}

#[tokio::test]
async fn restore_refuses_a_tampered_backup_or_another_master_key_and_changes_nothing() {
    let app = spawn_app_on(TestBackend::Sqlite, &[]).await;
    app.create_shared_tool("GitHub", None, "ghp_tamper").await;
    let target = app.dir.path().join("copy.db");
    assert!(backup(&app, &target).status.success());
    let (db_url, db_file) = (app.db_url(), app.db_path.clone());
    let key_file = app.dir.path().join("master.key");
    let kept = app.stop_keeping_files().await;
    let before = live_content(&db_file).await;

    // Another master key: the backup's secrets would not open.
    let other_key = kept.path().join("other.key");
    agentkey::startup::write_key_file(&other_key, &app::server::crypto::MasterKey::generate())
        .expect("key");
    let out = restore(&db_url, &other_key, &target);
    assert!(!out.status.success());
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("does not open the data key"),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );

    // A row of the backup's audit log rewritten: its chain breaks.
    let copy = app::server::store::Store::connect(&format!("sqlite://{}", target.display()))
        .await
        .expect("open copy");
    for sql in [
        "DROP TRIGGER audit_log_no_update",
        "UPDATE audit_log SET action = 'nothing.happened' WHERE seq = 1",
    ] {
        sqlx::query(sql)
            .execute(copy.writer())
            .await
            .expect("tamper");
    }
    copy.close().await;
    let out = restore(&db_url, &key_file, &target);
    assert!(!out.status.success());
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("audit chain"),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );

    // A missing file, the live file itself.
    assert!(
        !restore(&db_url, &key_file, &kept.path().join("nope.db"))
            .status
            .success()
    );
    assert!(!restore(&db_url, &key_file, &db_file).status.success());
    assert_eq!(live_content(&db_file).await, before, "nothing changed");
    let leftovers: Vec<String> = std::fs::read_dir(kept.path())
        .expect("dir")
        .filter_map(|e| e.ok()?.file_name().into_string().ok())
        .filter(|n| n.contains("before-restore") || n.contains(".restoring"))
        .collect();
    assert!(leftovers.is_empty(), "{leftovers:?}");
}

#[tokio::test]
async fn restore_is_for_the_embedded_database_only() {
    let dir = tempfile::tempdir().expect("dir");
    let from = dir.path().join("copy.db");
    std::fs::write(&from, b"").expect("file");
    let out = restore(
        "postgres://postgres@127.0.0.1:5432/postgres",
        &dir.path().join("master.key"),
        &from,
    );
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("migrate-data"));
}
