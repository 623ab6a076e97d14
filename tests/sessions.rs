//! A dashboard session ends after 12 idle hours: every request moves its expiry on, but the
//! row is written only when its data changes or the expiry moves by more than a minute
//! (writes counted by a trigger on the sessions table).

mod common;

use common::TestApp;
use common::rpc::{app_with_mail, rpc, sign_in};

/// Counts every UPDATE of a session row into `session_writes`.
async fn count_session_writes(app: &TestApp) {
    app.exec("CREATE TABLE session_writes (n BIGINT NOT NULL)")
        .await;
    let body = "INSERT INTO session_writes (n) VALUES (1)";
    app.create_trigger("count_session_writes", "AFTER UPDATE ON sessions", body)
        .await;
}

#[tokio::test]
async fn page_views_read_the_session_without_rewriting_it() {
    let (app, sink) = app_with_mail().await;
    let cookie = sign_in(&app, &sink).await;
    count_session_writes(&app).await;

    for _ in 0..5 {
        assert_eq!(rpc(&app, "inbox", &[], Some(&cookie)).await.status, 200);
        let page = app.get_signed_in("/inbox", &cookie).await;
        assert_eq!(page.status(), 200);
    }

    assert_eq!(
        app.count("SELECT COUNT(*) FROM session_writes").await,
        0,
        "ten views, no write"
    );
    // The stored expiry lags two minutes behind (as after two idle minutes): the next view
    // moves it on, in one write.
    app.exec("UPDATE sessions SET expires_at = expires_at - 120000")
        .await;
    app.exec("DELETE FROM session_writes").await;
    let lagging: i64 = app.count("SELECT MAX(expires_at) FROM sessions").await;
    assert_eq!(rpc(&app, "inbox", &[], Some(&cookie)).await.status, 200);
    assert_eq!(app.count("SELECT COUNT(*) FROM session_writes").await, 1);
    let moved = app.count("SELECT MAX(expires_at) FROM sessions").await;
    assert!(moved >= lagging + 110_000, "{lagging} → {moved}");
    // Still signed in, and signing out still ends the session.
    assert_eq!(rpc(&app, "inbox", &[], Some(&cookie)).await.status, 200);
    assert_eq!(
        rpc(&app, "auth/sign-out", &[], Some(&cookie)).await.status,
        200
    );
    assert_eq!(rpc(&app, "inbox", &[], Some(&cookie)).await.status, 401);
}

#[tokio::test]
async fn a_session_another_instance_ended_is_not_brought_back_by_a_skipped_write() {
    let (app, sink) = app_with_mail().await;
    let other = app.second_instance(&[]).await;
    let cookie = sign_in(&app, &sink).await;
    assert_eq!(rpc(&app, "inbox", &[], Some(&cookie)).await.status, 200);
    assert_eq!(rpc(&other, "inbox", &[], Some(&cookie)).await.status, 200);

    assert_eq!(
        rpc(&other, "auth/sign-out", &[], Some(&cookie))
            .await
            .status,
        200
    );

    assert_eq!(rpc(&app, "inbox", &[], Some(&cookie)).await.status, 401);
    assert_eq!(app.count("SELECT COUNT(*) FROM sessions").await, 0);
}

#[tokio::test]
async fn a_stale_or_forged_cookie_stores_nothing_and_the_bundle_sets_no_cookie() {
    let (app, sink) = app_with_mail().await;
    let forged = "agentkey_session=AAAAAAAAAAAAAAAAAAAAAA";
    for path in ["/", "/login", "/inbox", "/pkg/agentkey.css", "/favicon.ico"] {
        app.get_signed_in(path, forged).await;
    }
    assert_eq!(rpc(&app, "inbox", &[], Some(forged)).await.status, 401);
    assert_eq!(app.count("SELECT COUNT(*) FROM sessions").await, 0);

    let cookie = sign_in(&app, &sink).await;
    assert_eq!(app.count("SELECT COUNT(*) FROM sessions").await, 1);
    let bundle = app.get_signed_in("/pkg/agentkey.css", &cookie).await;
    assert!(bundle.headers().get("set-cookie").is_none());
}

#[tokio::test]
async fn a_save_after_the_session_ended_does_not_bring_it_back() {
    use tower_sessions::SessionStore;
    let (app, sink) = app_with_mail().await;
    let cookie = sign_in(&app, &sink).await;
    let id: tower_sessions::session::Id = cookie
        .split_once('=')
        .expect("pair")
        .1
        .parse()
        .expect("session id");
    let store = app::server::auth::session_store::SqlSessionStore::new(app.services.store.clone());
    // A request loaded the session, another signed out, then the first one saves, its expiry
    // an hour on (a write, were the row still there).
    let mut loaded = store.load(&id).await.expect("load").expect("record");
    store.delete(&id).await.expect("sign-out");
    loaded.expiry_date += tower_sessions::cookie::time::Duration::hours(1);
    store.save(&loaded).await.expect("save");
    loaded
        .data
        .insert("changed".into(), serde_json::json!(true));
    store.save(&loaded).await.expect("save");

    assert_eq!(app.count("SELECT COUNT(*) FROM sessions").await, 0);
    assert_eq!(rpc(&app, "inbox", &[], Some(&cookie)).await.status, 401);
}
