//! The dashboard's server side over real HTTP: sign-in by emailed link (through a real SMTP
//! server on loopback), sessions, the same-origin rule, organization scoping and the live
//! event stream.

mod common;

use std::time::{Duration, Instant};

use common::rpc::{OWNER, app_with_mail, rpc, rpc_from, sign_in};
use common::smtp::{SmtpSink, token_in};
use common::{TestApp, spawn_app_with};
use serde_json::Value;

/// The sign-in form must not tell who is a member, not even by how long it takes: with a mail
/// server that takes 2 s to answer, a member's answer is as quick as a stranger's, and the
/// link still arrives afterwards.
#[tokio::test]
async fn sign_in_answers_members_and_strangers_in_the_same_time_even_with_a_slow_mail_server() {
    let delay = Duration::from_secs(2);
    let sink = SmtpSink::start_slow(delay).await;
    let app = spawn_app_with(&[("AGENTKEY_SMTP_URL", &sink.url())]).await;
    let answer_time = |email: String| {
        let app = &app;
        async move {
            let started = Instant::now();
            let reply = rpc(app, "auth/request", &[("email", &email)], None).await;
            assert_eq!(reply.status, 200, "{}", reply.body);
            started.elapsed()
        }
    };

    let (mut member, mut stranger) = (Vec::new(), Vec::new());
    for i in 0..5 {
        member.push(answer_time(OWNER.to_owned()).await);
        stranger.push(answer_time(format!("nobody-{i}@example.com")).await);
    }

    let median = |times: &mut Vec<Duration>| {
        times.sort();
        times[times.len() / 2]
    };
    let (member, stranger) = (median(&mut member), median(&mut stranger));
    assert!(
        member < delay / 2,
        "a member's answer waited for the mail server: {member:?}"
    );
    assert!(
        member.abs_diff(stranger) < delay / 4,
        "members {member:?} and strangers {stranger:?} are told apart by the answer's time"
    );
    let mail = sink.wait_for(0).await;
    assert!(mail.contains("/auth/confirm?token="), "{mail}");
    assert!(sink.all_to(OWNER), "only the member gets mail");
}

#[tokio::test]
async fn sign_in_by_emailed_link_starts_a_safe_session_and_the_link_works_once() {
    let (app, sink) = app_with_mail().await;

    assert_eq!(
        rpc(
            &app,
            "auth/request",
            &[("email", "Owner@Example.com ")],
            None
        )
        .await
        .status,
        200
    );
    let mail = sink.wait_for(0).await;
    assert!(
        mail.contains(&format!("{}/auth/confirm?token=", app.services.base_url)),
        "{mail}"
    );
    let token = token_in(&mail);

    // Opening the link (GET) shows a page and does not use the token.
    let page = app
        .client
        .get(app.url(&format!("/auth/confirm?token={token}")))
        .send()
        .await
        .expect("page");
    assert_eq!(page.status(), 200);
    assert_eq!(page.headers()["cache-control"], "no-store");
    let csp = page.headers()["content-security-policy"]
        .to_str()
        .expect("csp")
        .to_owned();
    assert!(
        csp.contains("'nonce-")
            && !csp.contains("unsafe-inline")
            && csp.contains("frame-ancestors 'none'"),
        "{csp}"
    );
    assert_eq!(
        rpc(&app, "auth/check", &[("token", &token)], None)
            .await
            .json()["valid"],
        true
    );

    let reply = rpc(&app, "auth/confirm", &[("token", &token)], None).await;
    assert!(reply.status < 400, "{}", reply.body);
    let cookie = reply.session_cookie().expect("session cookie");
    let lower = cookie.to_lowercase();
    assert!(
        lower.contains("httponly") && lower.contains("samesite=lax") && lower.contains("path=/"),
        "{cookie}"
    );
    assert!(
        !lower.contains("secure"),
        "plain-http localhost must not set Secure: {cookie}"
    );
    let pair = cookie.split(';').next().expect("pair");

    let me = rpc(&app, "auth/me", &[], Some(pair)).await.json();
    assert_eq!(me["email"], OWNER);
    assert_eq!(me["role"], "owner");
    assert_eq!(me["org_id"], app.org_id);

    // The same link again: refused.
    let again = rpc(&app, "auth/confirm", &[("token", &token)], None).await;
    assert_eq!(again.status, 401, "{}", again.body);
    assert!(again.body.contains("invalid, used or expired"));
    assert_eq!(
        app.count("SELECT COUNT(*) FROM audit_log WHERE action = 'member.signed_in'")
            .await,
        1
    );
    // Stored hashed: the token itself is nowhere in the database.
    assert_eq!(
        app.count(&format!(
            "SELECT COUNT(*) FROM sign_in_tokens WHERE token_hash = '{token}'"
        ))
        .await,
        0
    );
}

#[tokio::test]
async fn unknown_addresses_get_the_same_answer_and_no_mail() {
    let (app, sink) = app_with_mail().await;
    let reply = rpc(
        &app,
        "auth/request",
        &[("email", "stranger@example.com")],
        None,
    )
    .await;
    assert_eq!(reply.status, 200);
    let bad = rpc(&app, "auth/request", &[("email", "not-an-address")], None).await;
    assert_eq!(bad.status, 400);
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert_eq!(sink.count(), 0);
}

#[tokio::test]
async fn link_requests_are_rate_limited_per_mailbox() {
    let (app, _sink) = app_with_mail().await;
    for _ in 0..5 {
        assert_eq!(
            rpc(&app, "auth/request", &[("email", OWNER)], None)
                .await
                .status,
            200
        );
    }
    let sixth = rpc(&app, "auth/request", &[("email", OWNER)], None).await;
    assert_eq!(sixth.status, 403);
    assert!(sixth.body.contains("Too many sign-in attempts"));
}

/// Every server function error reaches the browser as one typed JSON error whose status is
/// the response's: the UI decides on it (401 goes to sign-in) and marks the fields it names.
#[tokio::test]
async fn server_function_errors_are_typed_with_the_status_of_the_response() {
    use app::model::RpcError;
    let (app, sink) = app_with_mail().await;
    let typed = |reply: &common::rpc::Reply| -> RpcError {
        serde_json::from_str(&reply.body).unwrap_or_else(|e| panic!("{e}: {}", reply.body))
    };

    let anonymous = rpc(&app, "inbox", &[], None).await;
    let err = typed(&anonymous);
    assert_eq!((anonymous.status, err.status), (401, 401));
    assert!(err.is_signed_out());
    assert!(
        err.hint.as_deref().is_some_and(|h| h.contains("Sign in")),
        "{err:?}"
    );

    let bad = rpc(&app, "auth/request", &[("email", "not-an-address")], None).await;
    let err = typed(&bad);
    assert_eq!((bad.status, err.status), (400, 400));
    assert!(err.field("email").is_some(), "the field is named: {err:?}");
    assert!(!err.is_signed_out());

    let cookie = sign_in(&app, &sink).await;
    let unreadable = rpc(
        &app,
        "tools/quorum",
        &[("id", "x"), ("approvals", "many")],
        Some(&cookie),
    )
    .await;
    let err = typed(&unreadable);
    assert_eq!((unreadable.status, err.status), (400, 400));
    assert!(err.message.contains("could not be read"), "{err:?}");

    let unknown = rpc(
        &app,
        "agents/delete",
        &[("id", "0190aaaa-0000-7000-8000-000000000000")],
        Some(&cookie),
    )
    .await;
    let err = typed(&unknown);
    assert_eq!((unknown.status, err.status), (404, 404));
    assert!(err.hint.is_some(), "{err:?}");
}

#[tokio::test]
async fn server_functions_refuse_missing_sessions_and_cross_site_requests() {
    let (app, sink) = app_with_mail().await;
    let anonymous = rpc(&app, "inbox", &[], None).await;
    assert_eq!(anonymous.status, 401);
    assert!(anonymous.body.contains("signed out"));

    let cookie = sign_in(&app, &sink).await;
    assert_eq!(rpc(&app, "inbox", &[], Some(&cookie)).await.status, 200);
    let forged = rpc_from(
        &app,
        "agents/create",
        &[("name", "evil"), ("description", "")],
        Some(&cookie),
        Some("https://evil.example"),
    )
    .await;
    assert_eq!(forged.status, 403);
    assert!(forged.body.contains("Cross-site request refused"));
    let no_origin = rpc_from(
        &app,
        "agents/create",
        &[("name", "evil"), ("description", "")],
        Some(&cookie),
        None,
    )
    .await;
    assert_eq!(no_origin.status, 403);
    assert_eq!(app.count("SELECT COUNT(*) FROM agents").await, 0);
}

#[tokio::test]
async fn ended_and_expired_sessions_are_refused_at_once() {
    let (app, sink) = app_with_mail().await;
    let first = sign_in(&app, &sink).await;
    let second = sign_in(&app, &sink).await;

    let sessions = rpc(&app, "auth/sessions", &[], Some(&first)).await.json();
    let list = sessions.as_array().expect("list");
    assert_eq!(list.len(), 2);
    let other = list
        .iter()
        .find(|s| s["current"] == false)
        .expect("the other session");
    let handle = other["handle"].as_str().expect("handle");
    assert_eq!(
        rpc(
            &app,
            "auth/sessions/end",
            &[("handle", handle)],
            Some(&first)
        )
        .await
        .status,
        200
    );
    assert_eq!(rpc(&app, "inbox", &[], Some(&second)).await.status, 401);
    assert_eq!(rpc(&app, "inbox", &[], Some(&first)).await.status, 200);

    app.exec("UPDATE sessions SET expires_at = 1").await;
    assert_eq!(rpc(&app, "inbox", &[], Some(&first)).await.status, 401);
    assert_eq!(rpc(&app, "auth/me", &[], Some(&first)).await.body, "null");
}

#[tokio::test]
async fn another_organizations_ids_are_not_found_from_the_dashboard() {
    let (app, sink) = app_with_mail().await;
    let cookie = sign_in(&app, &sink).await;
    let other = app.other_org("Elsewhere").await;
    let tool = app
        .create_tool_as(
            &other,
            "Foreign tool",
            None,
            app::model::AuthType::ApiKey,
            app::model::CredentialMode::Shared,
            Some("x-secret"),
        )
        .await;
    let (_, key) = common_agent_in(&app, &other).await;
    let request_id = app.request_access(&key, &tool.id).await;

    let reply = rpc(
        &app,
        "requests/approve",
        &[("id", &request_id)],
        Some(&cookie),
    )
    .await;
    assert_eq!(reply.status, 404, "{}", reply.body);
    assert_eq!(
        app.count(&format!(
            "SELECT COUNT(*) FROM access_requests WHERE id = '{request_id}' AND status = 'pending'"
        ))
        .await,
        1
    );
    let inbox = rpc(&app, "inbox", &[], Some(&cookie)).await.json();
    assert_eq!(inbox["requests"].as_array().expect("requests").len(), 0);
}

async fn common_agent_in(
    app: &TestApp,
    ctx: &app::server::service::actor::AdminCtx,
) -> (app::model::AgentView, String) {
    let issued = app::server::service::agents::create(&app.services, ctx, "foreign-agent", "")
        .await
        .expect("agent");
    (issued.agent.clone(), issued.api_key.clone())
}

#[tokio::test]
async fn the_live_stream_carries_the_organizations_changes() {
    let (app, sink) = app_with_mail().await;
    let refused = app
        .client
        .get(app.url("/events"))
        .send()
        .await
        .expect("events");
    assert_eq!(refused.status(), 401);

    let cookie = sign_in(&app, &sink).await;
    let tool = app.create_shared_tool("Linear", None, "lin_secret").await;
    let (_, key) = app.create_agent("live-agent").await;
    let mut stream = app.get_signed_in("/events", &cookie).await;
    assert_eq!(stream.status(), 200);
    assert_eq!(stream.headers()["content-type"], "text/event-stream");

    let mut seen = String::new();
    while !seen.contains("data: resync") {
        let chunk = tokio::time::timeout(Duration::from_secs(5), stream.chunk())
            .await
            .expect("first event")
            .expect("chunk")
            .expect("open");
        seen.push_str(&String::from_utf8_lossy(&chunk));
    }
    let started = std::time::Instant::now();
    app.request_access(&key, &tool.id).await;
    while !seen.contains("data: request_changed") {
        let chunk = tokio::time::timeout(Duration::from_secs(5), stream.chunk())
            .await
            .expect("change event")
            .expect("chunk")
            .expect("open");
        seen.push_str(&String::from_utf8_lossy(&chunk));
    }
    assert!(started.elapsed() < Duration::from_secs(2));
}

#[tokio::test]
async fn the_bootstrap_link_creates_the_first_organization_and_its_owner() {
    let (app, _sink) = app_with_mail().await;
    assert!(
        app::server::service::auth::bootstrap_link(&app.services)
            .await
            .expect("link")
            .is_none(),
        "members exist"
    );
    app.exec("DELETE FROM memberships").await;
    let link = app::server::service::auth::bootstrap_link(&app.services)
        .await
        .expect("link")
        .expect("empty instance");
    let token = link.split("token=").nth(1).expect("token").to_owned();
    assert_eq!(
        rpc(&app, "auth/check", &[("token", &token)], None)
            .await
            .json()["bootstrap"],
        true
    );

    let missing = rpc(&app, "auth/confirm", &[("token", &token)], None).await;
    assert_eq!(missing.status, 400, "{}", missing.body);
    let reply = rpc(
        &app,
        "auth/confirm",
        &[
            ("token", &token),
            ("email", "first@example.com"),
            ("org_name", "Acme"),
        ],
        None,
    )
    .await;
    assert!(reply.status < 400, "{}", reply.body);
    let pair = reply
        .session_cookie()
        .expect("cookie")
        .split(';')
        .next()
        .expect("pair")
        .to_owned();
    let me = rpc(&app, "auth/me", &[], Some(&pair)).await.json();
    assert_eq!(me["org_name"], "Acme");
    assert_eq!(me["role"], "owner");
    // Used once; a second bootstrap is refused even with a fresh link, since members exist now.
    assert_eq!(
        rpc(
            &app,
            "auth/confirm",
            &[
                ("token", &token),
                ("email", "x@example.com"),
                ("org_name", "Other")
            ],
            None
        )
        .await
        .status,
        401
    );
    assert!(
        app::server::service::auth::bootstrap_link(&app.services)
            .await
            .expect("link")
            .is_none()
    );
}

#[tokio::test]
async fn the_audit_export_returns_every_matching_row_and_is_itself_audited() {
    let (app, sink) = app_with_mail().await;
    let cookie = sign_in(&app, &sink).await;
    let tool = app
        .create_shared_tool("GitHub", None, "ghp_export_secret")
        .await;
    let (_, key) = app.create_agent("exporter").await;
    app.grant(&key, &tool.id).await;
    for _ in 0..3 {
        assert_eq!(app.fetch(&key, &tool.id).await.status(), 200);
    }

    let anonymous = app
        .client
        .get(app.url("/audit/export?format=csv"))
        .send()
        .await
        .expect("export");
    assert_eq!(anonymous.status(), 401);
    let get = |q: &str| {
        app.client
            .get(app.url(&format!("/audit/export?{q}")))
            .header("cookie", &cookie)
            .send()
    };
    assert_eq!(get("format=xml").await.expect("export").status(), 400);
    assert_eq!(
        get("format=csv&since=yesterday")
            .await
            .expect("export")
            .status(),
        400
    );

    let res = get("format=jsonl&action=credential.vended")
        .await
        .expect("export");
    assert_eq!(res.status(), 200);
    assert_eq!(res.headers()["cache-control"], "no-store");
    assert!(
        res.headers()["content-disposition"]
            .to_str()
            .expect("disposition")
            .contains("agentkey-audit.jsonl")
    );
    let text = res.text().await.expect("body");
    let lines: Vec<Value> = text
        .lines()
        .map(|l| serde_json::from_str(l).expect("json line"))
        .collect();
    assert_eq!(lines.len(), 3);
    assert!(lines.iter().all(|l| l["action"] == "credential.vended"));
    assert!(!text.contains("ghp_export_secret"));

    let csv = get("format=csv")
        .await
        .expect("export")
        .text()
        .await
        .expect("body");
    assert!(csv.starts_with("seq,created_at,actor_type,"));
    assert!(csv.contains("\"credential.vended\""));
    assert!(!csv.contains("ghp_export_secret"));
    assert_eq!(
        app.count("SELECT COUNT(*) FROM audit_log WHERE action = 'audit.exported'")
            .await,
        2
    );
}

#[tokio::test]
async fn hsts_is_sent_only_when_served_over_tls() {
    let plain = common::spawn_app().await;
    let res = plain
        .client
        .get(plain.url("/healthz"))
        .send()
        .await
        .expect("healthz");
    assert!(res.headers().get("strict-transport-security").is_none());
    let tls = spawn_app_with(&[("AGENTKEY_BASE_URL", "https://agentkey.example.com")]).await;
    let res = tls
        .client
        .get(tls.url("/login"))
        .send()
        .await
        .expect("login");
    assert_eq!(
        res.headers()["strict-transport-security"],
        "max-age=31536000; includeSubDomains"
    );
    let cookie_rule = tls
        .client
        .get(tls.url("/login"))
        .send()
        .await
        .expect("login");
    assert_eq!(cookie_rule.status(), 200);
}

#[tokio::test]
async fn editing_a_tool_changes_what_agents_see_and_is_audited() {
    let (app, sink) = app_with_mail().await;
    let cookie = sign_in(&app, &sink).await;
    let tool = app
        .create_shared_tool("Github", None, "ghp_edit_secret")
        .await;
    let (_, key) = app.create_agent("editor").await;
    app.grant(&key, &tool.id).await;
    assert_eq!(
        common::json(app.fetch(&key, &tool.id).await).await["tool_name"],
        "Github"
    );

    let bad = rpc(
        &app,
        "tools/update",
        &[
            ("id", &tool.id),
            ("name", "x"),
            ("description", ""),
            ("url", ""),
        ],
        Some(&cookie),
    )
    .await;
    assert_eq!(bad.status, 400, "{}", bad.body);
    let ok = rpc(
        &app,
        "tools/update",
        &[
            ("id", &tool.id),
            ("name", "GitHub"),
            ("description", "Code hosting"),
            ("url", "https://github.com"),
        ],
        Some(&cookie),
    )
    .await;
    assert_eq!(ok.status, 200, "{}", ok.body);
    assert_eq!(ok.json()["name"], "GitHub");
    let fetched = common::json(app.fetch(&key, &tool.id).await).await;
    assert_eq!(fetched["tool_name"], "GitHub");
    assert_eq!(fetched["credential"], "ghp_edit_secret");
    assert_eq!(
        app.count("SELECT COUNT(*) FROM audit_log WHERE action = 'tool.updated'")
            .await,
        1
    );
    let unknown = rpc(
        &app,
        "tools/update",
        &[
            ("id", "00000000-0000-7000-8000-000000000000"),
            ("name", "Nope"),
            ("description", ""),
            ("url", ""),
        ],
        Some(&cookie),
    )
    .await;
    assert_eq!(unknown.status, 404);
}

#[tokio::test]
async fn the_catalog_exports_without_secrets_and_imports_after_a_dry_run() {
    let (app, sink) = app_with_mail().await;
    let cookie = sign_in(&app, &sink).await;
    app.create_shared_tool("GitHub", Some("https://github.com"), "ghp_catalog_secret")
        .await;

    let exported = rpc(&app, "tools/export", &[], Some(&cookie)).await;
    assert_eq!(exported.status, 200);
    let json: String = serde_json::from_str(&exported.body).expect("a JSON string");
    assert!(!json.contains("ghp_catalog_secret"));
    let mut catalog: Vec<Value> = serde_json::from_str(&json).expect("catalog");
    assert_eq!(catalog.len(), 1);
    catalog[0]["instructions"] = Value::from("Use the GraphQL API.");
    catalog.push(serde_json::json!({ "name": "Linear", "url": "https://linear.app", "instructions": "Issues only." }));
    let text = serde_json::to_string(&catalog).expect("json");

    let dry = rpc(
        &app,
        "tools/import",
        &[("json", &text), ("apply", "false")],
        Some(&cookie),
    )
    .await;
    assert_eq!(dry.status, 200, "{}", dry.body);
    let plan = dry.json();
    assert_eq!(plan["applied"], false);
    assert_eq!(plan["create"], serde_json::json!(["Linear"]));
    assert_eq!(plan["update"][0][1], serde_json::json!(["instructions"]));
    assert_eq!(
        app.count("SELECT COUNT(*) FROM tools").await,
        1,
        "a dry run changes nothing"
    );

    let applied = rpc(
        &app,
        "tools/import",
        &[("json", &text), ("apply", "true")],
        Some(&cookie),
    )
    .await
    .json();
    assert_eq!(applied["applied"], true);
    assert_eq!(app.count("SELECT COUNT(*) FROM tools").await, 2);
    assert_eq!(app.count("SELECT COUNT(*) FROM tools WHERE name = 'GitHub' AND instructions = 'Use the GraphQL API.' AND instructions_version = 2").await, 1);

    // YAML round trip: the export of the imported catalog plans no change.
    let yaml = rpc(&app, "tools/export", &[("format", "yaml")], Some(&cookie)).await;
    assert_eq!(yaml.status, 200, "{}", yaml.body);
    let yaml: String = serde_json::from_str(&yaml.body).expect("a YAML string");
    assert!(
        yaml.contains("- name: GitHub") && yaml.contains("name: Linear"),
        "{yaml}"
    );
    assert!(!yaml.contains("ghp_catalog_secret"));
    let plan = rpc(
        &app,
        "tools/import",
        &[("json", &yaml), ("apply", "false")],
        Some(&cookie),
    )
    .await
    .json();
    assert_eq!(
        plan["unchanged"],
        serde_json::json!(["GitHub", "Linear"]),
        "{plan}"
    );
    assert_eq!(plan["create"], serde_json::json!([]));
    let audit_rows = app.count("SELECT COUNT(*) FROM audit_log").await;
    let plan = rpc(
        &app,
        "tools/import",
        &[("json", &yaml), ("apply", "true")],
        Some(&cookie),
    )
    .await
    .json();
    assert_eq!(plan["applied"], true);
    assert_eq!(
        app.count("SELECT COUNT(*) FROM audit_log").await,
        audit_rows,
        "an import without changes writes nothing"
    );
    let escape = serde_json::json!([{ "name": "Linear", "url": "https://linear.app", "instructions": "Issues \u{1b}[31monly." }]).to_string();
    let refused = rpc(
        &app,
        "tools/import",
        &[("json", &escape), ("apply", "true")],
        Some(&cookie),
    )
    .await;
    assert_eq!(
        refused.status, 400,
        "a control character in an updated guide: {}",
        refused.body
    );
    assert!(refused.body.contains("instructions"), "{}", refused.body);
    assert_eq!(
        app.count("SELECT COUNT(*) FROM tools WHERE instructions = 'Issues only.'")
            .await,
        1
    );
    let edited = yaml.replace("Issues only.", "Issues and projects.");
    let plan = rpc(
        &app,
        "tools/import",
        &[("json", &edited), ("apply", "false")],
        Some(&cookie),
    )
    .await
    .json();
    assert_eq!(
        plan["update"],
        serde_json::json!([["Linear", ["instructions"]]]),
        "{plan}"
    );
    let bad_yaml = rpc(
        &app,
        "tools/import",
        &[("json", "- name: [unclosed"), ("apply", "false")],
        Some(&cookie),
    )
    .await;
    assert_eq!(bad_yaml.status, 400);
    assert!(
        bad_yaml.body.contains("not a catalog export"),
        "{}",
        bad_yaml.body
    );
    let bad_format = rpc(&app, "tools/export", &[("format", "xml")], Some(&cookie)).await;
    assert_eq!(bad_format.status, 400, "{}", bad_format.body);

    let refused = serde_json::to_string(&serde_json::json!([{ "name": "x" }])).expect("json");
    let plan = rpc(
        &app,
        "tools/import",
        &[("json", &refused), ("apply", "true")],
        Some(&cookie),
    )
    .await
    .json();
    assert_eq!(plan["applied"], false);
    assert_eq!(plan["refused"][0][1], "name must be 2–120 characters");
    let garbage = rpc(
        &app,
        "tools/import",
        &[("json", "{not json"), ("apply", "false")],
        Some(&cookie),
    )
    .await;
    assert_eq!(garbage.status, 400);
    assert!(garbage.body.contains("not a catalog export"));
}

#[tokio::test]
async fn a_catalog_import_that_fails_midway_leaves_nothing_behind() {
    let (app, sink) = app_with_mail().await;
    let cookie = sign_in(&app, &sink).await;
    app.create_shared_tool("GitHub", Some("https://github.com"), "ghp_import_secret")
        .await;
    // The last new tool of the import is refused by the database, after the update and the
    // first new tool were written.
    app.refuse_inserts("refuse_zeta", "tools", "NEW.name = 'Zeta'")
        .await;
    let catalog = serde_json::json!([
        { "name": "GitHub", "description": "Code", "url": "https://github.com", "instructions": "Use the GraphQL API." },
        { "name": "Alpha", "instructions": "First new tool." },
        { "name": "Zeta", "instructions": "Refused." },
    ])
    .to_string();
    async fn counts(app: &TestApp) -> (i64, i64, i64) {
        (
            app.count("SELECT COUNT(*) FROM tools").await,
            app.count("SELECT COUNT(*) FROM guide_versions").await,
            app.count("SELECT COUNT(*) FROM audit_log").await,
        )
    }
    let before = counts(&app).await;

    let failed = rpc(
        &app,
        "tools/import",
        &[("json", &catalog), ("apply", "true")],
        Some(&cookie),
    )
    .await;
    assert_ne!(failed.status, 200, "{}", failed.body);
    assert_eq!(
        counts(&app).await,
        before,
        "no tool, guide version or audit row of a failed import stays"
    );
    assert_eq!(app.count("SELECT COUNT(*) FROM tools WHERE name = 'GitHub' AND description <> 'Code' AND instructions_version = 1").await, 1);

    app.drop_trigger("refuse_zeta", "tools").await;
    let applied = rpc(
        &app,
        "tools/import",
        &[("json", &catalog), ("apply", "true")],
        Some(&cookie),
    )
    .await;
    assert_eq!(applied.json()["applied"], true, "{}", applied.body);
    assert_eq!(app.count("SELECT COUNT(*) FROM tools").await, 3);
    assert_eq!(app.count("SELECT COUNT(*) FROM tools WHERE name = 'GitHub' AND description = 'Code' AND instructions_version = 2").await, 1);
    let actions = app.count("SELECT COUNT(*) FROM audit_log WHERE action IN ('tool.created', 'tool.updated', 'tool.guide_updated')").await;
    assert_eq!(
        actions, 5,
        "GitHub created earlier, then one import: details, guide, two new tools"
    );
}

#[tokio::test]
async fn graceful_shutdown_ends_open_event_streams() {
    let (app, sink) = app_with_mail().await;
    let cookie = sign_in(&app, &sink).await;
    let mut stream = app.get_signed_in("/events", &cookie).await;
    assert_eq!(stream.status(), 200);
    let _first = stream.chunk().await.expect("first event");
    // `stop()` waits for the server task; it would hang if the stream kept the drain open.
    tokio::time::timeout(Duration::from_secs(10), app.stop())
        .await
        .expect("shutdown finished with a stream open");
    let rest = tokio::time::timeout(Duration::from_secs(5), stream.chunk())
        .await
        .expect("stream ended");
    assert!(
        matches!(rest, Ok(None) | Err(_)),
        "the stream must end at shutdown"
    );
}

#[tokio::test]
async fn an_admin_grant_gives_access_at_once_and_refuses_what_approval_would() {
    let (app, sink) = app_with_mail().await;
    let cookie = sign_in(&app, &sink).await;
    let tool = app
        .create_shared_tool("Stripe", None, "sk_grant_secret")
        .await;
    let (agent, key) = app.create_agent("billing-bot").await;

    let short = rpc(
        &app,
        "requests/grant",
        &[
            ("agent_id", &agent.id),
            ("tool_id", &tool.id),
            ("reason", "x"),
        ],
        Some(&cookie),
    )
    .await;
    assert_eq!(short.status, 400, "{}", short.body);
    let with_secret = rpc(
        &app,
        "requests/grant",
        &[
            ("agent_id", &agent.id),
            ("tool_id", &tool.id),
            ("reason", "Monthly invoices"),
            ("secret", "nope"),
        ],
        Some(&cookie),
    )
    .await;
    assert_eq!(
        with_secret.status, 400,
        "a shared tool takes no per-agent secret: {}",
        with_secret.body
    );
    assert_eq!(
        app.count("SELECT COUNT(*) FROM access_requests").await,
        0,
        "nothing written by refused grants"
    );

    let granted = rpc(
        &app,
        "requests/grant",
        &[
            ("agent_id", &agent.id),
            ("tool_id", &tool.id),
            ("reason", "Monthly invoices"),
        ],
        Some(&cookie),
    )
    .await;
    assert_eq!(granted.status, 200, "{}", granted.body);
    assert_eq!(granted.json()["status"], "approved");
    assert_eq!(granted.json()["origin"], "admin");
    assert_eq!(
        common::json(app.fetch(&key, &tool.id).await).await["credential"],
        "sk_grant_secret"
    );

    let again = rpc(
        &app,
        "requests/grant",
        &[
            ("agent_id", &agent.id),
            ("tool_id", &tool.id),
            ("reason", "Monthly invoices"),
        ],
        Some(&cookie),
    )
    .await;
    assert_eq!(again.status, 409);
    assert_eq!(
        app.count(
            "SELECT COUNT(*) FROM audit_log WHERE action IN ('grant.requested', 'grant.approved')"
        )
        .await,
        2
    );
}

#[tokio::test]
async fn a_member_turns_on_alert_mail_from_the_dashboard_and_gets_the_next_request() {
    let (app, sink) = app_with_mail().await;
    let cookie = sign_in(&app, &sink).await;
    let before = sink.count();

    let reply = rpc(
        &app,
        "notifications/email",
        &[("on", "true")],
        Some(&cookie),
    )
    .await;
    assert_eq!(reply.status, 200, "{}", reply.body);
    let settings = rpc(&app, "notifications", &[], Some(&cookie)).await.json();
    assert_eq!(settings["email_opt_in"], true);
    assert_eq!(settings["email_recipients"], 1);
    let bogus = rpc(
        &app,
        "notifications/events",
        &[("kind", "pager"), ("events", "access_requested")],
        Some(&cookie),
    )
    .await;
    assert_eq!(
        bogus.status, 400,
        "unknown channel kinds are refused: {}",
        bogus.body
    );
    let bogus = rpc(
        &app,
        "notifications/events",
        &[("kind", "email"), ("events", "everything")],
        Some(&cookie),
    )
    .await;
    assert_eq!(
        bogus.status, 400,
        "unknown events are refused: {}",
        bogus.body
    );

    let tool = app.create_shared_tool("GitHub", None, "s3cret").await;
    let (_, key) = app.create_agent("mail-bot").await;
    app.request_access(&key, &tool.id).await;
    let mail = sink.wait_for(before).await;
    assert!(
        mail.contains("To: owner@example.com")
            && mail.contains("New access request")
            && mail.contains("mail-bot"),
        "{mail}"
    );

    assert_eq!(
        rpc(
            &app,
            "notifications/email",
            &[("on", "false")],
            Some(&cookie)
        )
        .await
        .status,
        200
    );
    let settings = rpc(&app, "notifications", &[], Some(&cookie)).await.json();
    assert_eq!(settings["email_recipients"], 0);
    assert_eq!(
        app.count("SELECT COUNT(*) FROM audit_log WHERE action = 'notification.email_opt_in'")
            .await,
        2
    );
    app.stop().await;
}

#[tokio::test]
async fn bad_input_to_the_new_server_functions_gets_a_clear_4xx_and_changes_nothing() {
    let (app, sink) = app_with_mail().await;
    let cookie = sign_in(&app, &sink).await;
    let tool = app.create_shared_tool("GitHub", None, "ghp_x").await;
    let long_url = format!("https://hooks.slack.com/services/{}", "x".repeat(10_000));
    let cases: Vec<(&str, Vec<(&str, &str)>)> = vec![
        (
            "tools/quorum",
            vec![("id", tool.id.as_str()), ("approvals", "lots")],
        ),
        (
            "tools/quorum",
            vec![("id", tool.id.as_str()), ("approvals", "7")],
        ),
        ("tools/quorum", vec![("id", tool.id.as_str())]),
        ("notifications/email", vec![("on", "maybe")]),
        (
            "agents/status",
            vec![("id", tool.id.as_str()), ("active", "2")],
        ),
        (
            "tools/quorum",
            vec![("id", "not-a-uuid"), ("approvals", "2")],
        ),
        (
            "members/invite",
            vec![("email", "x@example.com"), ("role", "god")],
        ),
        (
            "members/invite",
            vec![("email", "not an address"), ("role", "auditor")],
        ),
        (
            "members/role",
            vec![
                ("user_id", "00000000-0000-7000-8000-000000000000"),
                ("role", "admin"),
            ],
        ),
        ("members/domains", vec![("domains", "exa mple, @bad")]),
        (
            "notifications/webhook",
            vec![
                ("kind", "slack"),
                ("url", "javascript:alert(1)"),
                ("events", ""),
            ],
        ),
        (
            "notifications/webhook",
            vec![
                ("kind", "slack"),
                ("url", long_url.as_str()),
                ("events", ""),
            ],
        ),
        (
            "notifications/webhook",
            vec![
                ("kind", "email"),
                ("url", "https://hooks.slack.com/services/T/B/x"),
                ("events", ""),
            ],
        ),
        ("notifications/retry", vec![("id", "not-a-uuid")]),
        ("invite/accept", vec![("token", "")]),
        ("org/delete", vec![("name", "")]),
        // NUL characters: SQLite stores them, PostgreSQL refuses them; either way a 4xx.
        (
            "requests/deny",
            vec![("id", "0190\u{0}0000"), ("reason", "no")],
        ),
        (
            "members/role",
            vec![("user_id", "user\u{0}id"), ("role", "admin")],
        ),
        (
            "agents/status",
            vec![("id", "agent\u{0}id"), ("active", "false")],
        ),
        (
            "audit",
            vec![
                ("query[action]", "grant.\u{0}approved"),
                ("query[agent_id]", ""),
                ("query[tool_id]", ""),
                ("query[actor]", "someone\u{0}"),
                ("query[since]", ""),
                ("query[until]", ""),
            ],
        ),
    ];
    for (path, form) in cases {
        let reply = rpc(&app, path, &form, Some(&cookie)).await;
        // The audit query with a NUL finds nothing on SQLite (200, empty); anything else is a 4xx.
        let ok = (400..500).contains(&reply.status)
            || (path == "audit" && reply.status == 200 && reply.body == "[]");
        assert!(ok, "{path} {form:?}: {} {}", reply.status, reply.body);
        assert!(
            !reply.body.to_lowercase().contains("sqlx") && !reply.body.contains("panicked"),
            "{path}: {}",
            reply.body
        );
    }
    assert_eq!(
        app.count("SELECT COUNT(*) FROM notification_channels")
            .await,
        0
    );
    assert_eq!(app.count("SELECT COUNT(*) FROM invitations").await, 0);
    assert_eq!(app.count("SELECT approvals_required FROM tools").await, 1);
    assert_eq!(
        app.count("SELECT COUNT(*) FROM organizations WHERE deleted_at IS NULL")
            .await,
        1
    );
    app.stop().await;
}

#[tokio::test]
async fn the_browser_bundle_goes_out_precompressed_and_only_build_hashed_chunks_are_cached_for_good()
 {
    let app = spawn_app_with(&[]).await;
    let pkg = app.dir.path().join("site/pkg");
    std::fs::create_dir_all(&pkg).expect("pkg dir");
    // Stand-ins: what matters is which file is sent, with which headers.
    std::fs::write(pkg.join("agentkey.wasm"), b"\0asm plain").expect("write");
    std::fs::write(pkg.join("agentkey.wasm.gz"), b"gzip copy").expect("write");
    std::fs::write(pkg.join("chunk_7.0123456789abcdef.wasm"), b"\0asm chunk").expect("write");

    let get = |path: &str, encoding: Option<&str>| {
        let mut req = app.client.get(app.url(path));
        if let Some(encoding) = encoding {
            req = req.header("accept-encoding", encoding);
        }
        req.send()
    };
    let res = get("/pkg/agentkey.wasm", Some("gzip, deflate, br"))
        .await
        .expect("main module");
    assert_eq!(res.status(), 200);
    assert_eq!(res.headers()["content-encoding"], "gzip");
    assert_eq!(res.headers()["content-type"], "application/wasm");
    assert_eq!(res.headers()["cache-control"], "no-cache");
    assert_eq!(res.headers()["vary"], "accept-encoding");
    let last_modified = res.headers()["last-modified"].clone();
    assert_eq!(&res.bytes().await.expect("body")[..], b"gzip copy");

    let res = get("/pkg/agentkey.wasm", None).await.expect("plain");
    assert!(res.headers().get("content-encoding").is_none());
    assert_eq!(&res.bytes().await.expect("body")[..], b"\0asm plain");

    // Revalidation costs a 304, and the policy stays on it.
    let res = app
        .client
        .get(app.url("/pkg/agentkey.wasm"))
        .header("if-modified-since", last_modified)
        .send()
        .await
        .expect("revalidate");
    assert_eq!(res.status(), 304);
    assert_eq!(res.headers()["cache-control"], "no-cache");

    let res = get("/pkg/chunk_7.0123456789abcdef.wasm", Some("gzip"))
        .await
        .expect("chunk");
    assert_eq!(res.status(), 200);
    assert_eq!(
        res.headers()["cache-control"],
        "public, max-age=31536000, immutable"
    );
    assert!(
        res.headers().get("content-encoding").is_none(),
        "no gzip copy of this one: sent as is"
    );

    // A chunk of another build is gone, and no error page is cached.
    let res = get("/pkg/chunk_7.fedcba9876543210.wasm", Some("gzip"))
        .await
        .expect("old chunk");
    assert_eq!(res.status(), 404);
    assert!(res.headers().get("cache-control").is_none());
}

/// Raw request bytes to the app: the status line and the `Location`, if any.
async fn raw_request(app: &TestApp, request: &str) -> (String, Option<String>) {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let mut tcp = tokio::net::TcpStream::connect(app.addr)
        .await
        .expect("connect");
    tcp.write_all(request.as_bytes()).await.expect("write");
    let mut reply = Vec::new();
    tokio::time::timeout(Duration::from_secs(10), tcp.read_to_end(&mut reply))
        .await
        .expect("answered")
        .expect("read");
    let reply = String::from_utf8_lossy(&reply).into_owned();
    let status = reply.lines().next().unwrap_or_default().to_owned();
    let location = reply
        .lines()
        .find_map(|l| l.strip_prefix("location: ").map(str::to_owned));
    (status, location)
}

/// Paths no route matches get an answer rendered with the pages' context (the not-found
/// page), a redirect to the canonical page path, or the answer to `*`; never an empty reply
/// from a panicked task.
#[tokio::test]
async fn trailing_slashes_dot_segments_and_asterisk_targets_get_proper_answers() {
    let app = spawn_app_with(&[]).await;
    let get =
        |path: &str| format!("GET {path} HTTP/1.1\r\nHost: test\r\nConnection: close\r\n\r\n");
    for (path, location) in [
        ("/agents/", "/agents"),
        ("/status/", "/status"),
        ("/invite/?token=abc", "/invite?token=abc"),
        ("/auth/confirm/", "/auth/confirm"),
        ("/x/%2e%2e/", "/x/%2e%2e"),
        ("/tools//", "/tools"),
    ] {
        let (status, to) = raw_request(&app, &get(path)).await;
        assert_eq!(status, "HTTP/1.1 308 Permanent Redirect", "{path}");
        assert_eq!(to.as_deref(), Some(location), "{path}");
    }
    for path in [
        "//evil.example/",
        "/no-such-page",
        "/x/%2e%2e",
        "/\\evil.example/",
    ] {
        let (status, to) = raw_request(&app, &get(path)).await;
        assert_eq!(status, "HTTP/1.1 404 Not Found", "{path}");
        assert!(
            to.as_deref()
                .is_none_or(|l| l.starts_with('/') && !l.starts_with("//") && !l.contains('\\')),
            "{path}: never a redirect to another host ({to:?})"
        );
    }
    let post = format!(
        "POST /agents/ HTTP/1.1\r\nHost: {}\r\nOrigin: {}\r\nContent-Length: 0\r\nConnection: close\r\n\r\n",
        app.addr, app.base
    );
    assert_eq!(raw_request(&app, &post).await.0, "HTTP/1.1 404 Not Found");
    let (status, _) = raw_request(
        &app,
        "OPTIONS * HTTP/1.1\r\nHost: test\r\nConnection: close\r\n\r\n",
    )
    .await;
    assert_eq!(status, "HTTP/1.1 204 No Content");
    assert_eq!(
        raw_request(&app, &get("*")).await.0,
        "HTTP/1.1 400 Bad Request"
    );
    // Still serving.
    assert_eq!(
        raw_request(&app, &get("/healthz")).await.0,
        "HTTP/1.1 200 OK"
    );
}

/// An agent cannot make its reason read differently from what is stored: the inbox shows
/// bidirectional overrides and zero-width characters as marks.
#[tokio::test]
async fn the_inbox_shows_reordering_and_invisible_characters_in_agent_text_marked() {
    let (app, sink) = app_with_mail().await;
    let cookie = sign_in(&app, &sink).await;
    let (_agent, key) = app.create_agent("tricky-bot").await;
    let tool = app
        .create_shared_tool("GitHub", Some("github.com"), "ghp_bidi_secret")
        .await;
    let reason = "Read-only access \u{202E}etirw lluf\u{202C} for the\u{200B} audit";
    let res = app
        .post(
            &format!("/api/tools/{}/request", tool.id),
            &key,
            serde_json::json!({ "reason": reason }),
        )
        .await;
    assert_eq!(res.status(), 201);
    let page = app.get_signed_in("/inbox", &cookie).await;
    assert_eq!(page.status(), 200);
    let html = page.text().await.expect("html");
    assert!(
        html.contains("Read-only access ⟨U+202E⟩etirw lluf⟨U+202C⟩ for the⟨U+200B⟩ audit"),
        "the reason is shown with its hidden characters marked"
    );
}

#[tokio::test]
async fn the_access_picture_shows_each_pairs_latest_state_expiry_and_last_use() {
    use app::model::Access;
    use app::server::service::{dashboard, grants};
    let app = spawn_app_with(&[]).await;
    let (a, key_a) = app.create_agent("picture-a").await;
    let (b, key_b) = app.create_agent("picture-b").await;
    let github = app
        .create_shared_tool("GitHub", Some("github.com"), "ghp_picture")
        .await;
    let linear = app
        .create_shared_tool("Linear", Some("linear.app"), "lin_picture")
        .await;
    app.grant(&key_a, &github.id).await;
    assert_eq!(app.fetch(&key_a, &github.id).await.status(), 200);
    let denied = app.request_access(&key_a, &linear.id).await;
    grants::deny(
        &app.services,
        &app.admin,
        &denied,
        Some("Not for this project"),
    )
    .await
    .expect("deny");
    let pending = app.request_access(&key_b, &github.id).await;
    let expiring = app.request_access(&key_b, &linear.id).await;
    grants::approve(
        &app.services,
        &app.admin,
        &expiring,
        None,
        Some(common::now_ms() + 100),
    )
    .await
    .expect("approve briefly");
    tokio::time::sleep(Duration::from_millis(150)).await;
    // Another organization's agents are not in the picture.
    let elsewhere = app.other_org("Elsewhere").await;
    app::server::service::agents::create(&app.services, &elsewhere, "outsider", "")
        .await
        .expect("outsider");

    let picture = dashboard::access(&app.services, &app.admin)
        .await
        .expect("picture");
    let names: Vec<&str> = picture.agents.iter().map(|n| n.name.as_str()).collect();
    assert_eq!(names, ["picture-a", "picture-b"]);
    assert_eq!(picture.tools.len(), 2);
    let cell = |agent: &str, tool: &str| {
        picture
            .cells
            .iter()
            .find(|c| c.agent_id == agent && c.tool_id == tool)
            .cloned()
    };
    let used = cell(&a.id, &github.id).expect("a × GitHub");
    assert_eq!(used.state, Access::Approved);
    assert!(used.last_used_at.is_some(), "the fetch is its last use");
    assert_eq!(
        cell(&a.id, &linear.id).expect("denied").state,
        Access::Denied
    );
    let waiting = cell(&b.id, &github.id).expect("pending");
    assert_eq!(
        (waiting.state, waiting.request_id),
        (Access::Pending, pending)
    );
    let ended = cell(&b.id, &linear.id).expect("expired");
    assert_eq!(ended.state, Access::Expired);
    assert!(ended.expires_at.is_some() && ended.last_used_at.is_none());
    assert_eq!(picture.cells.len(), 4);
    assert!(
        picture
            .requests
            .iter()
            .all(|r| r.agent_id == a.id || r.agent_id == b.id),
        "only this organization's history"
    );

    // The log and the overview's feed name what each event concerns.
    let overview = dashboard::overview(&app.services, &app.admin)
        .await
        .expect("overview");
    let vended = overview
        .recent
        .iter()
        .find(|e| e.action == "grant.requested" && e.agent_id.as_deref() == Some(b.id.as_str()))
        .expect("b's request in the feed");
    assert_eq!(vended.agent_name.as_deref(), Some("picture-b"));
    assert!(matches!(
        vended.tool_name.as_deref(),
        Some("GitHub" | "Linear")
    ));
}

#[tokio::test]
async fn the_getting_started_checklist_knows_notifications_and_reviewers() {
    use app::server::service::dashboard;
    let app = spawn_app_with(&[]).await;
    let first = dashboard::overview(&app.services, &app.admin)
        .await
        .expect("overview");
    assert!(!first.notifications_configured);
    assert_eq!(first.members, 1, "the owner alone");
    app.exec("UPDATE memberships SET email_alerts = 1").await;
    let later = dashboard::overview(&app.services, &app.admin)
        .await
        .expect("overview");
    assert!(
        later.notifications_configured,
        "alert mail counts as connected"
    );
}

/// A refused field is named in plain words (the dashboard shows it beside the field), and a
/// URL field takes a bare domain as the CLI does.
#[tokio::test]
async fn refused_fields_read_as_plain_words_and_a_bare_domain_is_a_url() {
    let (app, sink) = app_with_mail().await;
    let cookie = sign_in(&app, &sink).await;
    let create = |name: &'static str, url: &'static str| {
        let (app, cookie) = (&app, cookie.clone());
        async move {
            rpc(
                app,
                "tools/create",
                &[
                    ("name", name),
                    ("description", ""),
                    ("url", url),
                    ("auth_type", "api_key"),
                    ("credential_mode", "shared"),
                    ("credential", "lin_x"),
                    ("instructions", ""),
                ],
                Some(&cookie),
            )
            .await
        }
    };

    let short = create("L", "").await;
    assert_eq!(short.status, 400, "{}", short.body);
    let body = short.json();
    assert_eq!(
        body["message"],
        "Name must be at least 2 characters (got 1)."
    );
    assert_eq!(body["fields"][0]["field"], "name");
    let both = create("L", "ftp://x").await.json();
    assert_eq!(
        both["message"],
        "Name must be at least 2 characters (got 1); 1 more field to fix."
    );

    let bare = create("Linear", "linear.app").await;
    assert_eq!(bare.status, 200, "{}", bare.body);
    assert_eq!(bare.json()["tool"]["url"], "https://linear.app/");

    let webhook = rpc(
        &app,
        "notifications/webhook",
        &[
            ("kind", "slack"),
            ("url", "https://example.com/not-slack"),
            ("events", "access_requested"),
        ],
        Some(&cookie),
    )
    .await;
    assert_eq!(webhook.status, 400, "{}", webhook.body);
    let body = webhook.json();
    assert_eq!(body["fields"][0]["field"], "url");
    assert!(
        body["message"]
            .as_str()
            .expect("message")
            .starts_with("URL "),
        "{body}"
    );
}
