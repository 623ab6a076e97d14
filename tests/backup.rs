//! `agentkey backup` against a running server: a consistent copy that opens, verifies and
//! still decrypts with the same master key; an existing file is never overwritten.

mod common;

use std::process::Command;

use common::spawn_app;

fn backup(app: &common::TestApp, to: &std::path::Path) -> std::process::Output {
    Command::new(env!("CARGO_BIN_EXE_agentkey"))
        .args(["--json", "backup"])
        .arg(to)
        .env("AGENTKEY_DATABASE_URL", format!("sqlite://{}", app.db_path.display()))
        .env("AGENTKEY_MASTER_KEY_FILE", app.dir.path().join("master.key"))
        .output()
        .expect("agentkey backup runs")
}

#[tokio::test]
async fn a_backup_of_the_live_database_is_complete_verified_and_never_overwrites() {
    let app = spawn_app().await;
    let tool = app.create_shared_tool("GitHub", None, "ghp_backup_secret").await;
    let (_, key) = app.create_agent("bot").await;
    app.grant(&key, &tool.id).await;
    assert_eq!(app.fetch(&key, &tool.id).await.status(), 200);

    let target = app.dir.path().join("copy.db");
    let out = backup(&app, &target);
    assert!(out.status.success(), "backup failed: {}", String::from_utf8_lossy(&out.stderr));
    let report: serde_json::Value = serde_json::from_slice(&out.stdout).expect("json report");
    assert_eq!(report["organizations"], 1);
    assert!(report["audit_rows_verified"].as_i64().expect("rows") >= 5, "{report}");

    // The copy holds what the live database holds, secrets still sealed.
    let copy = app::server::store::Store::connect(&format!("sqlite://{}", target.display())).await.expect("open copy");
    let tools: i64 = sqlx::query_scalar("SELECT COUNT(*) FROM tools WHERE credential_blob IS NOT NULL").fetch_one(copy.reader()).await.expect("count");
    assert_eq!(tools, 1);
    let raw = std::fs::read(&target).expect("read copy");
    assert!(!raw.windows(17).any(|w| w == b"ghp_backup_secret"), "the secret is not in the file in the clear");
    copy.close().await;

    let again = backup(&app, &target);
    assert!(!again.status.success(), "an existing file is refused");
    assert!(String::from_utf8_lossy(&again.stderr).contains("already exists"));
    assert_eq!(app.fetch(&key, &tool.id).await.status(), 200, "the server kept serving");
    app.stop().await;
}
