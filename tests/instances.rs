//! Several instances on one PostgreSQL database: two real servers on different loopback ports
//! share sessions, live events (LISTEN/NOTIFY), grants and the notification outbox. These tests
//! always use PostgreSQL (the local server), whatever `AGENTKEY_TEST_BACKEND` says.

mod common;

use std::collections::HashSet;
use std::time::Duration;

use app::model::{AlertEvent, ChannelKind};
use app::server::service::{grants, notifications};
use app::server::store::Store;
use common::receiver::{Mode, Receiver};
use common::rpc::sign_in;
use common::smtp::SmtpSink;
use common::{TestApp, TestBackend, TestDb};
use secrecy::SecretString;

const SLACK: &str = "/services/T000/B000/instancesSECRET";

/// Instance A (owning a fresh PostgreSQL database, whatever the test backend) and instance B.
async fn two_instances(vars: &[(&str, &str)]) -> (TestApp, TestApp) {
    let a = common::spawn_app_on(TestBackend::Postgres, vars).await;
    let b = a.second_instance(vars).await;
    assert_ne!(a.addr, b.addr);
    (a, b)
}

/// Reads the event stream until `needle` shows up; panics after `secs`.
/// A dashboard event stream on `app` for the session `cookie` (started on the other instance),
/// past its first `resync`; returns the stream and an empty buffer for what it says next.
async fn events_on(app: &TestApp, cookie: &str) -> (reqwest::Response, String) {
    let mut stream = app.get_signed_in("/events", cookie).await;
    assert_eq!(
        stream.status(),
        200,
        "the instance accepts the session the other one started"
    );
    let mut seen = String::new();
    wait_for_event(&mut stream, &mut seen, "data: resync", 5).await;
    seen.clear();
    (stream, seen)
}

async fn wait_for_event(
    stream: &mut reqwest::Response,
    seen: &mut String,
    needle: &str,
    secs: u64,
) {
    let deadline = tokio::time::Instant::now() + Duration::from_secs(secs);
    while !seen.contains(needle) {
        let left = deadline.saturating_duration_since(tokio::time::Instant::now());
        let chunk = tokio::time::timeout(left, stream.chunk())
            .await
            .unwrap_or_else(|_| panic!("no {needle:?} on the stream within {secs} s; got {seen:?}"))
            .expect("chunk")
            .expect("stream open");
        seen.push_str(&String::from_utf8_lossy(&chunk));
    }
}

#[tokio::test]
async fn a_request_on_one_instance_is_live_on_the_other_and_decisions_hold_everywhere() {
    let sink = SmtpSink::start().await;
    let (a, b) = two_instances(&[("AGENTKEY_SMTP_URL", &sink.url())]).await;
    let tool = a
        .create_shared_tool("GitHub", None, "ghp_shared_instances")
        .await;
    let (_, key) = a.create_agent("release-bot").await;

    // Signed in through A, the session works on B (one SQL session store).
    let cookie = sign_in(&a, &sink).await;
    let (mut stream, mut seen) = events_on(&b, &cookie).await;

    // The agent asks A; B's dashboard stream hears of it.
    let started = std::time::Instant::now();
    let request_id = a.request_access(&key, &tool.id).await;
    wait_for_event(&mut stream, &mut seen, "data: request_changed", 5).await;
    let live_after = started.elapsed();
    assert!(
        live_after < Duration::from_secs(2),
        "crossed instances in {live_after:?}"
    );

    // Approved on B, fetched on A; revoked on A, refused on B at the very next fetch.
    assert_eq!(a.fetch(&key, &tool.id).await.status(), 403, "pending");
    grants::approve(&b.services, &b.admin, &request_id, None, None)
        .await
        .expect("approve on B");
    let res = a.fetch(&key, &tool.id).await;
    assert_eq!(res.status(), 200);
    assert_eq!(
        common::json(res).await["credential"],
        "ghp_shared_instances"
    );
    assert_eq!(
        b.fetch(&key, &tool.id).await.status(),
        200,
        "B serves it too (and caches it)"
    );
    grants::revoke(&a.services, &a.admin, &request_id, Some("rotating"))
        .await
        .expect("revoke on A");
    assert_eq!(
        b.fetch(&key, &tool.id).await.status(),
        403,
        "no stale cache on B"
    );
    assert_eq!(a.fetch(&key, &tool.id).await.status(), 403);

    // Both instances wrote to one audit chain, which still verifies.
    let report = app::server::service::audit::verify(&b.services, &b.admin)
        .await
        .expect("verify");
    assert_eq!(report.broken_at_seq, None, "{report:?}");
    assert!(report.rows_checked >= 6, "{report:?}");
    drop(stream);
    b.stop().await;
    a.stop().await;
}

#[tokio::test]
async fn two_workers_deliver_each_notification_exactly_once() {
    let receiver = Receiver::start().await;
    receiver.set_mode(Mode::Slow(Duration::from_millis(50)));
    let vars = [
        ("AGENTKEY_TEST_LOOPBACK_WEBHOOKS", "1"),
        (
            "AGENTKEY_NOTIFY_RETRY",
            "base=50ms,cap=300ms,attempts=40,lease=30s",
        ),
        ("AGENTKEY_RATE_LIMITS", "request=1000/m"),
    ];
    let (a, b) = two_instances(&vars).await;
    notifications::save_webhook(
        &a.services,
        &a.admin,
        ChannelKind::Slack,
        SecretString::from(receiver.url(SLACK)),
        &[AlertEvent::AccessRequested],
    )
    .await
    .expect("webhook");
    let (_, key) = a.create_agent("busy-bot").await;
    let total = 60;
    for i in 0..total {
        let tool = a
            .create_shared_tool(&format!("Tool {i}"), None, "s3cret")
            .await;
        // Requests arrive at both instances; both workers wake and claim.
        let app = if i % 2 == 0 { &a } else { &b };
        app.request_access(&key, &tool.id).await;
    }
    receiver.wait_delivered(SLACK, total, 60).await;
    // Give a duplicate, if any, time to arrive before counting.
    tokio::time::sleep(Duration::from_millis(500)).await;
    let hits = receiver.delivered(SLACK);
    let keys: HashSet<String> = hits
        .iter()
        .map(|h| h.key.clone().expect("idempotency key"))
        .collect();
    assert_eq!(keys.len(), total, "every notification delivered");
    assert_eq!(
        hits.len(),
        total,
        "and none twice: {} calls for {} notifications",
        hits.len(),
        keys.len()
    );
    assert_eq!(
        a.count("SELECT COUNT(*) FROM notification_outbox WHERE status = 'delivered'")
            .await,
        total as i64
    );
    b.stop().await;
    a.stop().await;
}

#[tokio::test]
async fn instances_starting_together_apply_each_migration_once() {
    let db = TestDb::create_postgres().await;
    let url = db.url();
    let opened = futures_util::future::join_all((0..4).map(|_| {
        let url = url.clone();
        async move {
            let store = Store::connect(&url).await?;
            store.migrate().await?;
            store.close().await;
            anyhow::Ok(())
        }
    }))
    .await;
    for result in opened {
        result.expect("every instance starts");
    }
    let mut conn = db.connect().await;
    let applied: i64 = sqlx::query_scalar("SELECT COUNT(*) FROM _sqlx_migrations")
        .fetch_one(&mut conn)
        .await
        .expect("count");
    let files = std::fs::read_dir(concat!(env!("CARGO_MANIFEST_DIR"), "/migrations/postgres"))
        .expect("dir")
        .count();
    assert_eq!(applied, files as i64);
    // The append-only rule holds on PostgreSQL too, TRUNCATE included.
    for sql in [
        "INSERT INTO organizations (id, name, created_at, updated_at) VALUES ('org-1', 'Org', 1, 1)",
        "INSERT INTO audit_log (id, organization_id, seq, created_at, actor_type, actor_id, actor_label, action, metadata, prev_hash, hash) \
         VALUES ('row-1', 'org-1', 1, 1, 'system', 'test', 'test', 'test.row', '{}', 'p', 'h')",
    ] {
        sqlx::query(sql).execute(&mut conn).await.expect(sql);
    }
    for sql in [
        "UPDATE audit_log SET action = 'x'",
        "DELETE FROM audit_log",
        "TRUNCATE audit_log",
    ] {
        let err = sqlx::query(sql).execute(&mut conn).await.expect_err(sql);
        assert!(err.to_string().contains("append-only"), "{sql}: {err}");
    }
}

#[tokio::test]
async fn a_lost_listen_connection_resynchronises_dashboards_and_events_keep_crossing() {
    let sink = SmtpSink::start().await;
    let (a, b) = two_instances(&[("AGENTKEY_SMTP_URL", &sink.url())]).await;
    let tool = a.create_shared_tool("Linear", None, "lin_instances").await;
    let (_, key) = a.create_agent("bot").await;
    let cookie = sign_in(&a, &sink).await;
    let (mut stream, mut seen) = events_on(&b, &cookie).await;

    // Cut every LISTEN connection (as a database failover or a network blip would).
    let mut conn = a.raw_db().await;
    let cut: Vec<bool> = sqlx::query_scalar(
        "SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = current_database() AND query LIKE 'LISTEN%'",
    )
    .fetch_all(&mut conn)
    .await
    .expect("terminate");
    assert_eq!(cut.len(), 2, "one LISTEN connection per instance");

    // B's dashboard is told to reload what it shows, and later changes still cross over.
    wait_for_event(&mut stream, &mut seen, "data: resync", 10).await;
    let mut crossed = false;
    for _ in 0..50 {
        a.request_access(&key, &tool.id).await;
        seen.clear();
        if tokio::time::timeout(
            Duration::from_millis(500),
            wait_for_event(&mut stream, &mut seen, "data: request_changed", 1),
        )
        .await
        .is_ok()
        {
            crossed = true;
            break;
        }
        // The listener may still be reconnecting: withdraw and ask again.
        a.exec("DELETE FROM access_requests").await;
    }
    assert!(crossed, "events cross instances again after the reconnect");
    drop(stream);
    b.stop().await;
    a.stop().await;
}

#[tokio::test]
async fn a_decision_made_with_the_cli_is_live_on_the_dashboards() {
    let sink = SmtpSink::start().await;
    let (a, b) = two_instances(&[("AGENTKEY_SMTP_URL", &sink.url())]).await;
    let tool = a.create_shared_tool("Notion", None, "secret_notion").await;
    let (_, key) = a.create_agent("bot").await;
    let request_id = a.request_access(&key, &tool.id).await;
    let cookie = sign_in(&a, &sink).await;
    let (mut stream, mut seen) = events_on(&b, &cookie).await;

    // An operator approves from a shell: a separate process with no relay of its own.
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_agentkey"))
        .args(["--json", "request", "approve", &request_id])
        .env("AGENTKEY_DATABASE_URL", a.db_url())
        .env("AGENTKEY_MASTER_KEY_FILE", a.dir.path().join("master.key"))
        .output()
        .expect("agentkey runs");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    wait_for_event(&mut stream, &mut seen, "data: request_changed", 5).await;
    assert_eq!(a.fetch(&key, &tool.id).await.status(), 200);
    drop(stream);
    b.stop().await;
    a.stop().await;
}
