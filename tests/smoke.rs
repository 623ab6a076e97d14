//! The full agent flow end to end over HTTP: register → discover → request → approve →
//! fetch → revoke → 403.

mod common;

use app::server::service::grants;
use common::{json, spawn_app};

#[tokio::test]
async fn full_flow_request_approve_fetch_revoke() {
    let app = spawn_app().await;
    let (_agent, key) = app.create_agent("release-bot").await;
    let tool = app
        .create_shared_tool("GitHub", Some("github.com"), "ghp_flow_secret_123")
        .await;

    let catalog = json(app.get("/api/tools", &key).await).await;
    assert_eq!(catalog["tools"][0]["your_access"], "none");

    let request_id = app.request_access(&key, &tool.id).await;
    let before = app.fetch(&key, &tool.id).await;
    assert_eq!(before.status(), 403);
    assert_eq!(json(before).await["your_access"], "pending");

    grants::approve(&app.services, &app.admin, &request_id, None, None)
        .await
        .expect("approve");
    let res = app.fetch(&key, &tool.id).await;
    assert_eq!(res.status(), 200);
    assert_eq!(res.headers()["cache-control"], "no-store, private");
    let body = json(res).await;
    assert_eq!(body["credential"], "ghp_flow_secret_123");
    assert_eq!(body["instructions"], "Use GitHub carefully.");

    grants::revoke(
        &app.services,
        &app.admin,
        &request_id,
        Some("rotation drill"),
    )
    .await
    .expect("revoke");
    let after = app.fetch(&key, &tool.id).await;
    assert_eq!(after.status(), 403);
    assert_eq!(json(after).await["your_access"], "revoked");
    app.stop().await;
}

/// A first start creates the embedded database's folder, with the lock file beside it.
#[tokio::test]
async fn the_first_start_creates_the_database_folder() {
    let dir = tempfile::tempdir().expect("dir");
    let db = dir.path().join("data/sub/agentkey.db");
    let url = format!("sqlite://{}", db.display());
    let app = common::spawn_app_on(
        common::TestBackend::Sqlite,
        &[("AGENTKEY_DATABASE_URL", &url)],
    )
    .await;
    let res = app
        .client
        .get(app.url("/readyz"))
        .send()
        .await
        .expect("readyz");
    assert_eq!(res.status(), 200);
    assert!(db.exists() && dir.path().join("data/sub/agentkey.db.lock").exists());
}
