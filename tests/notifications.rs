//! Notifications end to end: agents act over real HTTP, the outbox worker delivers to a real
//! HTTP receiver on loopback (standing in for Slack and Discord) and to a real SMTP server.

mod common;

use std::collections::{HashMap, HashSet};
use std::time::Duration;

use app::model::Role;
use app::model::{AlertEvent, ChannelKind};
use app::server::outbound::{Outbound, SendError};
use app::server::service::actor::AdminCtx;
use app::server::service::notifications;
use common::receiver::{Hit, Mode, Receiver};
use common::smtp::SmtpSink;
use common::{TestApp, spawn_app_with};
use secrecy::SecretString;
use serde_json::{Value, json};

const SLACK: &str = "/services/T000/B000/slackSECRETtoken1";
const DISCORD: &str = "/api/webhooks/42/discordSECRETtoken2";
const ALL: &[AlertEvent] = AlertEvent::ALL;

/// An app allowed to call loopback receivers, retrying fast, mailing through a real sink.
async fn notify_app(retry: &str) -> (TestApp, Receiver, SmtpSink) {
    let receiver = Receiver::start().await;
    let sink = SmtpSink::start().await;
    let app = spawn_app_with(&[
        ("AGENTKEY_TEST_LOOPBACK_WEBHOOKS", "1"),
        ("AGENTKEY_NOTIFY_RETRY", retry),
        ("AGENTKEY_SMTP_URL", &sink.url()),
        ("AGENTKEY_RATE_LIMITS", "request=1000/m"),
    ])
    .await;
    (app, receiver, sink)
}

const FAST: &str = "base=50ms,cap=300ms,attempts=40,lease=2s";

async fn connect(app: &TestApp, receiver: &Receiver, events: &[AlertEvent]) {
    for (kind, path) in [(ChannelKind::Slack, SLACK), (ChannelKind::Discord, DISCORD)] {
        notifications::save_webhook(
            &app.services,
            &app.admin,
            kind,
            SecretString::from(receiver.url(path)),
            events,
        )
        .await
        .expect("webhook saved");
    }
}

/// The owner opts in to alert mail and the email channel gets `events`.
async fn mail_owner(app: &TestApp, events: &[AlertEvent]) {
    app.exec("UPDATE memberships SET email_alerts = 1").await;
    notifications::set_events(&app.services, &app.admin, ChannelKind::Email, events)
        .await
        .expect("email events");
}

/// Waits until no outbox row is pending.
async fn settle(app: &TestApp, secs: u64) {
    let deadline = tokio::time::Instant::now() + Duration::from_secs(secs);
    loop {
        let pending = app
            .count("SELECT COUNT(*) FROM notification_outbox WHERE status = 'pending'")
            .await;
        if pending == 0 {
            return;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "{pending} notifications still pending after {secs} s"
        );
        tokio::time::sleep(Duration::from_millis(25)).await;
    }
}

fn keys(hits: &[Hit]) -> HashSet<String> {
    hits.iter()
        .map(|h| {
            h.key
                .clone()
                .expect("every delivery carries an idempotency key")
        })
        .collect()
}

fn slack_text(hit: &Hit) -> String {
    hit.body["blocks"].to_string()
}

fn by_event(hits: &[Hit], needle: &str) -> usize {
    hits.iter()
        .filter(|h| h.body.to_string().contains(needle))
        .count()
}

#[tokio::test]
async fn each_event_reaches_each_channel_once_with_its_content() {
    let (app, receiver, sink) = notify_app(FAST).await;
    connect(&app, &receiver, ALL).await;
    mail_owner(&app, ALL).await;
    let tool = app
        .create_shared_tool("GitHub", Some("https://github.com"), "ghp_secret")
        .await;
    let (_, key) = app.create_agent("release-bot").await;
    let (_, other_key) = app.create_agent("triage-bot").await;

    // Access request → approval → guide suggestion → tool suggestion (+ a second backer).
    let request_id = app.request_access(&key, &tool.id).await;
    let hits = receiver.wait_delivered(SLACK, 1, 10).await;
    let slack = slack_text(&hits[0]);
    assert!(
        slack.contains("New access request")
            && slack.contains("release-bot")
            && slack.contains("GitHub"),
        "{slack}"
    );
    assert!(
        slack.contains("Need it for the release"),
        "the reason is in the message: {slack}"
    );
    let button = &hits[0].body["blocks"]
        .as_array()
        .expect("blocks")
        .last()
        .expect("actions")["elements"][0];
    assert_eq!(
        button["url"],
        json!(app.services.link("/inbox")),
        "the button opens the inbox"
    );
    let discord = &receiver.wait_delivered(DISCORD, 1, 10).await[0].body;
    assert_eq!(discord["embeds"][0]["title"], "New access request");
    assert_eq!(discord["embeds"][0]["fields"][0]["value"], "release-bot");
    assert_eq!(
        discord["allowed_mentions"],
        json!({ "parse": [] }),
        "Discord may not ping anyone"
    );
    let mail = sink.wait_for(0).await;
    assert!(mail.contains("To: owner@example.com"), "{mail}");
    assert!(
        mail.contains("New access request: release-bot → GitHub")
            || mail.contains("New access request"),
        "{mail}"
    );
    assert!(
        mail.contains("text/plain") && mail.contains("text/html"),
        "plain text and HTML parts: {mail}"
    );
    assert!(mail.contains("Need it for the release"));

    app.approve(&request_id).await;
    let res = app
        .post(&format!("/api/tools/{}/instructions/suggest", tool.id), &key, json!({ "learned": "Use the GraphQL API for bulk reads", "why": "REST paginates slowly" }))
        .await;
    assert_eq!(res.status(), 201);
    let res = app.post("/api/tools/suggest", &key, json!({ "name": "Linear", "url": "https://linear.app", "reason": "Track release issues" })).await;
    assert_eq!(res.status(), 201);
    let res = app
        .post(
            "/api/tools/suggest",
            &other_key,
            json!({ "name": "Linear", "url": "https://linear.app", "reason": "Me too" }),
        )
        .await;
    assert_eq!(res.status(), 201, "a second backer joins the suggestion");
    settle(&app, 15).await;

    for path in [SLACK, DISCORD] {
        let hits = receiver.delivered(path);
        assert_eq!(
            hits.len(),
            4,
            "{path}: request, decision, guide suggestion, tool suggestion — a backer adds none"
        );
        assert_eq!(keys(&hits).len(), 4, "{path}: each notification once");
        assert_eq!(by_event(&hits, "New access request"), 1);
        assert_eq!(by_event(&hits, "Access approved"), 1);
        assert_eq!(by_event(&hits, "New guide suggestion"), 1);
        assert_eq!(by_event(&hits, "New tool suggestion"), 1);
        assert_eq!(
            by_event(&hits, "Me too"),
            0,
            "extra backers are not new work"
        );
    }
    assert_eq!(
        sink.count(),
        4,
        "one mail per event to the one member who opted in"
    );
    let mut ids = HashSet::new();
    for i in 0..4 {
        let mail = sink.wait_for(i).await;
        ids.insert(
            mail.lines()
                .find(|l| l.to_ascii_lowercase().starts_with("message-id:"))
                .expect("Message-ID")
                .to_owned(),
        );
    }
    assert_eq!(
        ids.len(),
        4,
        "each alert mail has its own Message-ID (its idempotency key)"
    );

    let view = notifications::settings(&app.services, &app.admin)
        .await
        .expect("settings");
    assert_eq!(view.delivered, 12);
    for channel in &view.channels {
        assert_eq!(
            channel.last_status.as_deref(),
            Some("delivered"),
            "{:?}",
            channel.kind
        );
    }
    app.stop().await;
}

#[tokio::test]
async fn a_receiver_that_is_down_then_failing_then_back_gets_every_notification_exactly_once() {
    let (app, receiver, _sink) = notify_app(FAST).await;
    connect(&app, &receiver, &[AlertEvent::AccessRequested]).await;
    receiver.stop();
    let (_, key) = app.create_agent("bot").await;
    for i in 0..10 {
        let tool = app
            .create_shared_tool(&format!("Tool {i}"), None, "s3cret")
            .await;
        app.request_access(&key, &tool.id).await;
    }
    // Connection refused for a while: every row fails at least twice.
    let deadline = tokio::time::Instant::now() + Duration::from_secs(15);
    while app
        .count("SELECT COUNT(*) FROM notification_outbox WHERE attempts < 2")
        .await
        > 0
    {
        assert!(
            tokio::time::Instant::now() < deadline,
            "rows were not retried while the receiver was down"
        );
        tokio::time::sleep(Duration::from_millis(25)).await;
    }
    let error: String = {
        let mut db = app.raw_db().await;
        sqlx::query_scalar("SELECT last_error FROM notification_outbox LIMIT 1")
            .fetch_one(&mut db)
            .await
            .expect("error")
    };
    assert!(error.contains("could not connect"), "{error}");
    assert_eq!(receiver.delivered(SLACK).len(), 0);

    // Back, but answering 500 for a while.
    receiver.set_mode(Mode::Status(500));
    receiver.restart().await;
    receiver.wait_hits(25, 15).await;
    assert_eq!(receiver.delivered(SLACK).len(), 0);

    receiver.set_mode(Mode::Ok);
    settle(&app, 20).await;
    for path in [SLACK, DISCORD] {
        let hits = receiver.delivered(path);
        assert_eq!(hits.len(), 10, "{path}: every notification delivered");
        assert_eq!(keys(&hits).len(), 10, "{path}: none delivered twice");
    }
    assert_eq!(
        app.count("SELECT COUNT(*) FROM notification_outbox WHERE status = 'delivered'")
            .await,
        20
    );
    assert_eq!(
        app.count("SELECT COUNT(*) FROM notification_outbox WHERE status = 'dead'")
            .await,
        0
    );
    app.stop().await;
}

#[tokio::test]
async fn a_server_killed_mid_backlog_delivers_everything_after_restart() {
    let (app, receiver, _sink) = notify_app(FAST).await;
    connect(&app, &receiver, &[AlertEvent::AccessRequested]).await;
    receiver.stop();
    let (_, key) = app.create_agent("bot").await;
    for i in 0..20 {
        let tool = app
            .create_shared_tool(&format!("Tool {i}"), None, "s3cret")
            .await;
        app.request_access(&key, &tool.id).await;
    }
    let db_url = app.db_url();
    let folder = app.stop_keeping_files().await;
    let dir = folder.path().to_path_buf();

    // A real server process works through the backlog against a slow receiver and is killed.
    receiver.set_mode(Mode::Slow(Duration::from_millis(300)));
    receiver.restart().await;
    let serve = |dir: &std::path::Path, n: u32| {
        let log = std::fs::File::create(dir.join(format!("serve-{n}.log"))).expect("log file");
        std::process::Command::new(env!("CARGO_BIN_EXE_agentkey"))
            .arg("serve")
            .env("AGENTKEY_DATABASE_URL", &db_url)
            .env("AGENTKEY_MASTER_KEY_FILE", dir.join("master.key"))
            .env("AGENTKEY_BIND", "127.0.0.1:0")
            .env("AGENTKEY_SITE_ROOT", dir.join("site"))
            .env("AGENTKEY_TEST_LOOPBACK_WEBHOOKS", "1")
            .env(
                "AGENTKEY_NOTIFY_RETRY",
                "base=50ms,cap=300ms,attempts=40,lease=1s",
            )
            .stdout(log.try_clone().expect("log"))
            .stderr(log)
            .spawn()
            .expect("agentkey serve starts")
    };
    let mut first = serve(&dir, 1);
    if receiver.wait_hits_within(3, 20).await.is_err() {
        panic!(
            "no deliveries from the server process: {}",
            std::fs::read_to_string(dir.join("serve-1.log")).unwrap_or_default()
        );
    }
    first.kill().expect("SIGKILL");
    first.wait().expect("reaped");
    let before = receiver.delivered(SLACK).len() + receiver.delivered(DISCORD).len();
    assert!(
        before < 40,
        "the kill came mid-backlog ({before} of 40 delivered)"
    );

    receiver.set_mode(Mode::Ok);
    let mut second = serve(&dir, 2);
    let deadline = tokio::time::Instant::now() + Duration::from_secs(30);
    while keys(&receiver.delivered(SLACK)).len() < 20
        || keys(&receiver.delivered(DISCORD)).len() < 20
    {
        assert!(
            tokio::time::Instant::now() < deadline,
            "backlog not delivered after the restart"
        );
        tokio::time::sleep(Duration::from_millis(25)).await;
    }
    second.kill().expect("stop");
    second.wait().expect("reaped");
    // At-least-once: only sends cut off by the kill may repeat, and a repeat carries the key
    // of its first attempt so the receiver can drop it.
    let all = [receiver.delivered(SLACK), receiver.delivered(DISCORD)].concat();
    let repeats = all.len() - keys(&all).len();
    assert!(
        repeats <= 16,
        "{repeats} repeats: more than were in flight at the kill"
    );
}

#[tokio::test]
async fn agent_text_reaches_slack_discord_and_mail_neutralised() {
    let (app, receiver, sink) = notify_app(FAST).await;
    connect(&app, &receiver, &[AlertEvent::AccessRequested]).await;
    mail_owner(&app, &[AlertEvent::AccessRequested]).await;
    let tool = app.create_shared_tool("GitHub", None, "s3cret").await;
    let (_, key) = app.create_agent("bot").await;
    let reason = "Urgent <!channel> @everyone <@U123ABC> see <https://evil.example/x|Open in AgentKey> [Approve](https://evil.example) <script>alert(1)</script>\nSecond line";
    let res = app
        .post(
            &format!("/api/tools/{}/request", tool.id),
            &key,
            json!({ "reason": reason }),
        )
        .await;
    assert_eq!(res.status(), 201);

    let slack = slack_text(&receiver.wait_delivered(SLACK, 1, 10).await[0]);
    for bad in [
        "<!channel>",
        "@everyone",
        "<@U123ABC>",
        "|Open in AgentKey",
        "<script>",
        "\\nSecond",
    ] {
        assert!(!slack.contains(bad), "Slack got {bad:?}: {slack}");
    }
    assert!(
        slack.contains("[channel]")
            && slack.contains("[user]")
            && slack.contains("https://evil.example/x"),
        "{slack}"
    );
    assert!(slack.contains("&lt;script&gt;"), "{slack}");

    let discord = receiver.wait_delivered(DISCORD, 1, 10).await[0]
        .body
        .to_string();
    assert!(
        !discord.contains("@everyone") && !discord.contains("<@U123ABC>"),
        "{discord}"
    );
    assert!(
        !discord.contains("[Approve](https://evil.example)"),
        "no masked link survives: {discord}"
    );

    let mail = sink.wait_for(0).await;
    let html = &mail[mail.find("text/html").expect("HTML part")..];
    assert!(
        !html.contains("<script>") && html.contains("&lt;script&gt;"),
        "the HTML part escapes markup: {html}"
    );
    let text = &mail
        [mail.find("text/plain").expect("text part")..mail.find("text/html").expect("HTML part")];
    assert!(
        text.contains("<script>alert(1)</script> Second line"),
        "plain text stays literal, on one line: {text}"
    );
    let subject = mail
        .lines()
        .find(|l| l.starts_with("Subject:"))
        .expect("subject");
    assert!(
        !subject.contains("Second line"),
        "the subject carries no agent text past the names: {subject}"
    );
    app.stop().await;
}

#[tokio::test]
async fn private_and_loopback_webhooks_are_refused_at_save_without_any_connection() {
    let receiver = Receiver::start().await;
    let app = spawn_app_with(&[]).await; // the test setting is off
    let port = receiver.port;
    let attempts = [
        (
            ChannelKind::Slack,
            format!("http://127.0.0.1:{port}/services/T/B/x"),
        ),
        (
            ChannelKind::Slack,
            format!("https://127.0.0.1:{port}/services/T/B/x"),
        ),
        (
            ChannelKind::Slack,
            format!("https://localhost:{port}/services/T/B/x"),
        ),
        (
            ChannelKind::Slack,
            format!("https://[::1]:{port}/services/T/B/x"),
        ),
        (
            ChannelKind::Slack,
            format!("https://hooks.slack.com@127.0.0.1:{port}/services/T/B/x"),
        ),
        (
            ChannelKind::Slack,
            "https://10.0.0.8/services/T/B/x".to_owned(),
        ),
        (
            ChannelKind::Slack,
            "https://169.254.169.254/services/T/B/x".to_owned(),
        ),
        (
            ChannelKind::Discord,
            format!("http://localhost:{port}/api/webhooks/1/x"),
        ),
        (
            ChannelKind::Discord,
            "https://192.168.1.10/api/webhooks/1/x".to_owned(),
        ),
    ];
    for (kind, url) in attempts {
        let err = notifications::save_webhook(
            &app.services,
            &app.admin,
            kind,
            SecretString::from(url.clone()),
            ALL,
        )
        .await
        .expect_err("refused");
        assert_eq!(err.status().as_u16(), 400, "{url}");
        let body = serde_json::to_string(&err.body()).expect("json");
        assert!(
            body.contains("\"url\""),
            "the error names the field: {body}"
        );
    }
    assert_eq!(
        app.count("SELECT COUNT(*) FROM notification_channels")
            .await,
        0
    );

    // The guarded client itself, asked directly: a name resolving to loopback and literal
    // loopback/private addresses are refused before any connection.
    let guarded = Outbound::new(false).expect("client");
    for url in [
        format!("https://localhost:{port}/services/x"),
        format!("http://127.0.0.1:{port}/x"),
        "https://10.1.2.3/x".to_owned(),
    ] {
        let url = url::Url::parse(&url).expect("url");
        match guarded.post_json(&url, &json!({}), "k").await {
            Err(SendError::Permanent(message)) => assert!(
                message.contains("not a public address") || message.contains("refused"),
                "{message}"
            ),
            other => panic!("{url} was not refused: {other:?}"),
        }
    }
    assert_eq!(
        receiver.connections(),
        0,
        "nothing connected to the receiver"
    );
    app.stop().await;
}

#[tokio::test]
async fn dead_letters_show_their_error_and_retry_delivers_them() {
    let (app, receiver, _sink) = notify_app("base=20ms,cap=50ms,attempts=3,lease=2s").await;
    connect(&app, &receiver, &[AlertEvent::AccessRequested]).await;
    receiver.set_mode(Mode::Status(503));
    let tool = app.create_shared_tool("GitHub", None, "s3cret").await;
    let (_, key) = app.create_agent("bot").await;
    app.request_access(&key, &tool.id).await;
    settle(&app, 10).await;

    let view = notifications::settings(&app.services, &app.admin)
        .await
        .expect("settings");
    assert_eq!(
        view.dead.len(),
        2,
        "both webhooks dead-lettered after 3 attempts"
    );
    let dead = &view.dead[0];
    assert_eq!(dead.attempts, 3);
    assert!(
        dead.last_error
            .as_deref()
            .is_some_and(|e| e.contains("HTTP 503")),
        "{dead:?}"
    );
    assert!(dead.summary.contains("New access request"));
    let slack = view
        .channels
        .iter()
        .find(|c| c.kind == ChannelKind::Slack)
        .expect("slack");
    assert_eq!(slack.last_status.as_deref(), Some("failed"));
    assert_eq!(
        app.count("SELECT COUNT(*) FROM audit_log WHERE action = 'notification.dead_lettered'")
            .await,
        2
    );
    assert_eq!(receiver.hits().len(), 6);

    receiver.set_mode(Mode::Ok);
    for d in &view.dead {
        notifications::retry(&app.services, &app.admin, &d.id)
            .await
            .expect("retry");
    }
    receiver.wait_delivered(SLACK, 1, 10).await;
    receiver.wait_delivered(DISCORD, 1, 10).await;
    settle(&app, 10).await;
    let view = notifications::settings(&app.services, &app.admin)
        .await
        .expect("settings");
    assert!(view.dead.is_empty());
    assert!(
        view.channels
            .iter()
            .filter(|c| c.kind != ChannelKind::Email)
            .all(|c| c.last_status.as_deref() == Some("delivered"))
    );
    let unknown = notifications::retry(
        &app.services,
        &app.admin,
        "00000000-0000-7000-8000-000000000000",
    )
    .await;
    assert_eq!(unknown.expect_err("unknown id").status().as_u16(), 404);

    // A 4xx other than 408/429 cannot get better by retrying: dead at the first attempt.
    receiver.set_mode(Mode::Status(404));
    let other = app.create_shared_tool("Linear", None, "s3cret").await;
    app.request_access(&key, &other.id).await;
    settle(&app, 10).await;
    let view = notifications::settings(&app.services, &app.admin)
        .await
        .expect("settings");
    assert_eq!(view.dead.len(), 2);
    assert!(view.dead.iter().all(|d| d.attempts == 1), "{:?}", view.dead);
    app.stop().await;
}

#[tokio::test]
async fn send_test_reports_the_outcome_at_once() {
    let (app, receiver, _sink) = notify_app(FAST).await;
    connect(&app, &receiver, ALL).await;
    let ok = notifications::send_test(&app.services, &app.admin, ChannelKind::Slack)
        .await
        .expect("test");
    assert!(ok.delivered, "{ok:?}");
    assert_eq!(receiver.delivered(SLACK).len(), 1);
    assert!(slack_text(&receiver.delivered(SLACK)[0]).contains("AgentKey test"));

    receiver.set_mode(Mode::Status(500));
    let failed = notifications::send_test(&app.services, &app.admin, ChannelKind::Discord)
        .await
        .expect("test");
    assert!(
        !failed.delivered && failed.message.contains("HTTP 500"),
        "{failed:?}"
    );
    let view = notifications::settings(&app.services, &app.admin)
        .await
        .expect("settings");
    let discord = view
        .channels
        .iter()
        .find(|c| c.kind == ChannelKind::Discord)
        .expect("discord");
    assert_eq!(discord.last_status.as_deref(), Some("failed"));
    assert!(
        discord
            .last_error
            .as_deref()
            .is_some_and(|e| e.contains("HTTP 500"))
    );
    app.stop().await;
}

#[tokio::test]
async fn webhook_urls_never_leak_into_responses_logs_or_the_audit_log() {
    let (app, receiver, _sink) = notify_app("base=20ms,cap=50ms,attempts=2,lease=2s").await;
    connect(&app, &receiver, ALL).await;
    receiver.stop(); // failures produce error text: it must not quote the URL either
    let tool = app.create_shared_tool("GitHub", None, "s3cret").await;
    let (_, key) = app.create_agent("bot").await;
    app.request_access(&key, &tool.id).await;
    settle(&app, 10).await;

    let view = notifications::settings(&app.services, &app.admin)
        .await
        .expect("settings");
    let shown = serde_json::to_string(&view).expect("json");
    let slack = view
        .channels
        .iter()
        .find(|c| c.kind == ChannelKind::Slack)
        .expect("slack");
    assert_eq!(
        slack.target_hint.as_deref(),
        Some("127.0.0.1/services/…ken1")
    );
    let audit: Vec<String> = {
        let mut db = app.raw_db().await;
        sqlx::query_scalar("SELECT action || ' ' || metadata FROM audit_log")
            .fetch_all(&mut db)
            .await
            .expect("audit")
    };
    let stored: Vec<String> = {
        let mut db = app.raw_db().await;
        sqlx::query_scalar("SELECT COALESCE(target_blob, '') || COALESCE(target_hint, '') || COALESCE(last_error, '') FROM notification_channels")
            .fetch_all(&mut db)
            .await
            .expect("channels")
    };
    for secret in ["slackSECRETtoken1", "discordSECRETtoken2"] {
        assert!(!shown.contains(secret), "settings view");
        assert!(!audit.iter().any(|row| row.contains(secret)), "audit log");
        assert!(
            !stored.iter().any(|row| row.contains(secret)),
            "stored in the clear"
        );
        assert!(!common::captured_logs().contains(secret), "logs");
    }
    app.stop().await;
}

#[tokio::test]
async fn only_owners_and_admins_change_channels() {
    let (app, receiver, _sink) = notify_app(FAST).await;
    for role in [Role::Approver, Role::Auditor] {
        let ctx = AdminCtx {
            role,
            ..app.admin.clone()
        };
        let err = notifications::save_webhook(
            &app.services,
            &ctx,
            ChannelKind::Slack,
            SecretString::from(receiver.url(SLACK)),
            ALL,
        )
        .await
        .expect_err("refused");
        assert_eq!(err.status().as_u16(), 403, "{role:?}");
        let err = notifications::send_test(&app.services, &ctx, ChannelKind::Slack)
            .await
            .expect_err("refused");
        assert_eq!(err.status().as_u16(), 403);
        assert!(
            notifications::settings(&app.services, &ctx)
                .await
                .is_ok_and(|v| !v.can_manage),
            "{role:?} reads but cannot manage"
        );
    }
    assert_eq!(
        app.count("SELECT COUNT(*) FROM notification_channels")
            .await,
        0
    );
    assert_eq!(receiver.connections(), 0);
    app.stop().await;
}

#[tokio::test]
async fn alerts_queue_even_when_nothing_can_be_delivered_and_requests_still_succeed() {
    // Delivery runs outside the agent's request: a dead receiver changes nothing for agents.
    let (app, receiver, _sink) = notify_app("base=10s,cap=10s,attempts=5,lease=2s").await;
    connect(&app, &receiver, &[AlertEvent::AccessRequested]).await;
    receiver.stop();
    let (_, key) = app.create_agent("bot").await;
    let mut created = HashMap::new();
    for i in 0..5 {
        let tool = app
            .create_shared_tool(&format!("Tool {i}"), None, "s3cret")
            .await;
        created.insert(app.request_access(&key, &tool.id).await, tool.id);
    }
    assert_eq!(created.len(), 5);
    assert_eq!(
        app.count("SELECT COUNT(*) FROM notification_outbox").await,
        10,
        "one row per channel per request, written with it"
    );
    let payload: Value = {
        let mut db = app.raw_db().await;
        let text: String = sqlx::query_scalar("SELECT payload FROM notification_outbox LIMIT 1")
            .fetch_one(&mut db)
            .await
            .expect("payload");
        serde_json::from_str(&text).expect("json payload")
    };
    assert_eq!(payload["org_name"], "Test Org");
    app.stop().await;
}
