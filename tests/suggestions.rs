//! Tool suggestions (dedupe, supporters, existing tools, cooldown, reopen, conversion into
//! pending requests, concurrency) and usage-guide suggestions (access rule, dedupe, accept,
//! dismiss).

mod common;

use app::model::{AgentStatus, AuthType, CredentialMode, SuggestionStatus, ToolSuggestionView};
use app::server::service::{agents, grants, guides, suggestions, tools};
use common::{TestApp, expect_error, json, now_ms, spawn_app};
use serde_json::{Value, json};

async fn suggest(
    app: &TestApp,
    key: &str,
    name: &str,
    url: Option<&str>,
    reason: &str,
) -> reqwest::Response {
    let mut body = json!({ "name": name, "reason": reason });
    if let Some(url) = url {
        body["url"] = json!(url);
    }
    app.post("/api/tools/suggest", key, body).await
}

/// Suggests and expects 201; returns the body.
async fn suggest_ok(app: &TestApp, key: &str, name: &str, url: Option<&str>) -> Value {
    let res = suggest(app, key, name, url, "Needed for the quarterly report").await;
    assert_eq!(res.status(), 201, "suggest {name}");
    let body = json(res).await;
    assert_eq!(body["status"], "pending");
    assert!(body["message"].is_string());
    body
}

async fn pending_suggestions(app: &TestApp) -> Vec<ToolSuggestionView> {
    suggestions::list(&app.services, &app.admin, SuggestionStatus::Pending)
        .await
        .expect("list")
}

async fn access(app: &TestApp, key: &str, tool_id: &str) -> String {
    let list = json(app.get("/api/tools", key).await).await;
    let tool = list["tools"]
        .as_array()
        .expect("tools")
        .iter()
        .find(|t| t["id"] == tool_id)
        .cloned()
        .expect("listed");
    tool["your_access"].as_str().expect("access").to_owned()
}

// ---- dedupe and supporters ----------------------------------------------------------------

#[tokio::test]
async fn suggestions_with_the_same_domain_are_one_suggestion_with_two_supporters() {
    let app = spawn_app().await;
    let (_a, key_a) = app.create_agent("agent-a").await;
    let (_b, key_b) = app.create_agent("agent-b").await;

    let first = suggest_ok(&app, &key_a, "Linear", Some("linear.app")).await;
    let second = suggest_ok(
        &app,
        &key_b,
        "Linear Issue Tracker",
        Some("https://www.Linear.app/features"),
    )
    .await;

    assert_eq!(first["existing"], false);
    assert_eq!(second["existing"], true);
    assert_eq!(first["suggestion_id"], second["suggestion_id"]);
    let list = pending_suggestions(&app).await;
    assert_eq!(list.len(), 1);
    assert_eq!(list[0].name, "Linear", "the identity is frozen at creation");
    let names: Vec<&str> = list[0]
        .supporters
        .iter()
        .map(|s| s.agent_name.as_str())
        .collect();
    assert_eq!(names.len(), 2);
    assert!(names.contains(&"agent-a") && names.contains(&"agent-b"));
}

#[tokio::test]
async fn suggestions_without_url_dedupe_by_normalized_name() {
    let app = spawn_app().await;
    let (_a, key_a) = app.create_agent("agent-a").await;
    let (_b, key_b) = app.create_agent("agent-b").await;

    let first = suggest_ok(&app, &key_a, "Linear, Inc.", None).await;
    let second = suggest_ok(&app, &key_b, "  linear   inc ", None).await;
    let different = suggest_ok(&app, &key_b, "Linear", None).await;

    assert_eq!(first["suggestion_id"], second["suggestion_id"]);
    assert_eq!(second["existing"], true);
    assert_ne!(
        different["suggestion_id"], first["suggestion_id"],
        "\"linear\" is another name than \"linear inc\""
    );
    assert_eq!(app.count("SELECT COUNT(*) FROM tool_suggestions").await, 2);
}

#[tokio::test]
async fn same_name_on_different_domains_are_different_suggestions() {
    let app = spawn_app().await;
    let (_a, key) = app.create_agent("agent-a").await;

    let com = suggest_ok(&app, &key, "Acme", Some("acme.com")).await;
    let io = suggest_ok(&app, &key, "Acme", Some("acme.io")).await;

    assert_ne!(com["suggestion_id"], io["suggestion_id"]);
    assert_eq!(io["existing"], false);
}

#[tokio::test]
async fn a_name_only_suggestion_adopts_the_first_backers_domain() {
    let app = spawn_app().await;
    let (_a, key_a) = app.create_agent("agent-a").await;
    let (_b, key_b) = app.create_agent("agent-b").await;
    let (_c, key_c) = app.create_agent("agent-c").await;

    let by_name = suggest_ok(&app, &key_a, "Linear", None).await;
    let with_url = suggest_ok(&app, &key_b, "Linear", Some("linear.app")).await;
    let by_domain = suggest_ok(&app, &key_c, "Linear App", Some("linear.app")).await;

    assert_eq!(by_name["suggestion_id"], with_url["suggestion_id"]);
    assert_eq!(
        with_url["suggestion_id"], by_domain["suggestion_id"],
        "the adopted domain now identifies it"
    );
    let list = pending_suggestions(&app).await;
    assert_eq!(list.len(), 1);
    assert_eq!(list[0].url.as_deref(), Some("https://linear.app/"));
    assert_eq!(list[0].supporters.len(), 3);
}

#[tokio::test]
async fn the_same_agent_backing_twice_keeps_one_supporter_with_its_latest_reason() {
    let app = spawn_app().await;
    let (_a, key) = app.create_agent("agent-a").await;
    suggest_ok(&app, &key, "Notion", Some("notion.so")).await;

    let again = suggest(
        &app,
        &key,
        "Notion",
        Some("notion.so"),
        "Now also for onboarding docs",
    )
    .await;

    assert_eq!(again.status(), 201);
    assert_eq!(json(again).await["existing"], true);
    let list = pending_suggestions(&app).await;
    assert_eq!(list[0].supporters.len(), 1);
    assert_eq!(list[0].supporters[0].reason, "Now also for onboarding docs");
}

// ---- existing tools -----------------------------------------------------------------------

#[tokio::test]
async fn suggesting_a_tool_already_in_the_catalog_is_409_with_its_tool_id() {
    let app = spawn_app().await;
    let (_a, key) = app.create_agent("agent-a").await;
    let by_domain = app
        .create_shared_tool("GitHub", Some("github.com"), "ghp_existing")
        .await;
    let no_url = app
        .create_shared_tool("Internal Wiki", None, "wiki_existing")
        .await;

    let cases = [
        (
            "GitHub Enterprise",
            Some("https://www.github.com/enterprise"),
            &by_domain,
        ),
        ("github", None, &by_domain),
        ("Internal Wiki", None, &no_url),
        ("internal-wiki!", Some("wiki.corp.example"), &no_url),
    ];
    for (name, url, tool) in cases {
        let body = expect_error(
            suggest(&app, &key, name, url, "We need it for the release").await,
            409,
        )
        .await;
        assert_eq!(body["tool_id"], tool.id.as_str(), "{name}");
        assert_eq!(body["tool_name"], tool.name.as_str());
        assert!(
            body["message"]
                .as_str()
                .is_some_and(|m| m.contains(tool.name.as_str())),
            "the original's message field names the tool: {body}"
        );
        assert!(
            body["hint"]
                .as_str()
                .expect("hint")
                .contains(&format!("/api/tools/{}/request", tool.id))
        );
        assert!(
            !body.to_string().contains("_existing"),
            "no secret in the 409"
        );
    }

    assert_eq!(
        app.count("SELECT COUNT(*) FROM tool_suggestions").await,
        0,
        "no suggestion row was created"
    );
    assert_eq!(app.count("SELECT COUNT(*) FROM audit_log WHERE action = 'tool_suggestion.redirected_to_existing_tool'").await, 4);
}

#[tokio::test]
async fn another_organizations_tool_does_not_block_a_suggestion() {
    let app = spawn_app().await;
    let (_a, key) = app.create_agent("agent-a").await;
    let other = app.other_org("Other Org").await;
    app.create_tool_as(
        &other,
        "Sentry",
        Some("sentry.io"),
        AuthType::ApiKey,
        CredentialMode::Shared,
        Some("sntrys_other"),
    )
    .await;

    let res = suggest(
        &app,
        &key,
        "Sentry",
        Some("sentry.io"),
        "Error tracking for the app",
    )
    .await;

    assert_eq!(res.status(), 201);
    let body = json(res).await;
    assert_eq!(body["existing"], false);
    assert!(body.get("tool_id").is_none());
}

#[tokio::test]
async fn a_catalog_tool_on_another_domain_does_not_block_a_suggestion_with_a_domain() {
    let app = spawn_app().await;
    let (_a, key) = app.create_agent("agent-a").await;
    app.create_shared_tool("Acme", Some("acme.com"), "acme_com_secret")
        .await;

    let res = suggest(
        &app,
        &key,
        "Acme",
        Some("acme.io"),
        "The other Acme, for invoices",
    )
    .await;

    assert_eq!(
        res.status(),
        201,
        "both sides have a domain and they differ: not the same tool"
    );
}

#[tokio::test]
async fn creating_a_tool_does_not_resolve_a_same_name_suggestion_on_another_domain() {
    let app = spawn_app().await;
    let (_a, key) = app.create_agent("agent-a").await;
    suggest_ok(&app, &key, "Acme", Some("acme.io")).await;

    let tool = app
        .create_shared_tool("Acme", Some("acme.com"), "acme_com_secret")
        .await;

    assert_eq!(
        access(&app, &key, &tool.id).await,
        "none",
        "the backer asked for acme.io, not acme.com"
    );
    assert_eq!(
        pending_suggestions(&app).await.len(),
        1,
        "the acme.io suggestion stays open"
    );
}

// ---- dismissal, cooldown, reopen ----------------------------------------------------------

#[tokio::test]
async fn dismissed_suggestion_is_refused_with_retry_after_during_the_cooldown() {
    let app = spawn_app().await;
    let (_a, key_a) = app.create_agent("agent-a").await;
    let (_b, key_b) = app.create_agent("agent-b").await;
    let created = suggest_ok(&app, &key_a, "Airtable", Some("airtable.com")).await;
    let id = created["suggestion_id"].as_str().expect("id");
    let dismissed = suggestions::dismiss(&app.services, &app.admin, id, "We use Postgres for this")
        .await
        .expect("dismiss");
    assert_eq!(dismissed.status, SuggestionStatus::Dismissed);

    for key in [&key_a, &key_b] {
        let body = expect_error(
            suggest(
                &app,
                key,
                "Airtable Bases",
                Some("airtable.com"),
                "We really need it",
            )
            .await,
            409,
        )
        .await;
        assert_eq!(body["suggestion_id"], id);
        assert_eq!(body["dismissal_reason"], "We use Postgres for this");
        let retry =
            app::server::clock::parse_iso(body["retry_after"].as_str().expect("retry_after"))
                .expect("ISO time");
        let day = 24 * 3600 * 1000;
        assert!(
            retry > now_ms() + day - 60_000 && retry <= now_ms() + day,
            "about 24 h ahead: {body}"
        );
    }
    let refused = suggestions::dismiss(&app.services, &app.admin, id, "again")
        .await
        .expect_err("not pending");
    assert_eq!(refused.status(), 409);
    assert_eq!(
        app.count("SELECT COUNT(*) FROM tool_suggestion_supporters")
            .await,
        1,
        "refused calls add no supporter"
    );
}

#[tokio::test]
async fn after_the_cooldown_a_resuggestion_reopens_it_without_the_old_supporters() {
    let app = spawn_app().await;
    let (_a, key_a) = app.create_agent("agent-a").await;
    let (_b, key_b) = app.create_agent("agent-b").await;
    let (_c, key_c) = app.create_agent("agent-c").await;
    let created = suggest_ok(&app, &key_a, "Airtable", Some("airtable.com")).await;
    suggest_ok(&app, &key_b, "Airtable", Some("airtable.com")).await;
    let id = created["suggestion_id"].as_str().expect("id").to_owned();
    suggestions::dismiss(&app.services, &app.admin, &id, "Not now")
        .await
        .expect("dismiss");
    app.exec(&format!(
        "UPDATE tool_suggestions SET dismissed_until = {} WHERE id = '{id}'",
        now_ms() - 1000
    ))
    .await;

    let reopened = suggest_ok(&app, &key_c, "Airtable", Some("airtable.com")).await;

    assert_eq!(
        reopened["suggestion_id"],
        id.as_str(),
        "the same suggestion is reopened"
    );
    assert_eq!(
        reopened["existing"], false,
        "a reopened suggestion counts as new"
    );
    let list = pending_suggestions(&app).await;
    assert_eq!(list.len(), 1);
    assert_eq!(list[0].id, id);
    assert!(
        list[0].dismissal_reason.is_none() && list[0].dismissed_until.is_none(),
        "{:?}",
        list[0]
    );
    let names: Vec<&str> = list[0]
        .supporters
        .iter()
        .map(|s| s.agent_name.as_str())
        .collect();
    assert_eq!(
        names,
        ["agent-c"],
        "backers of the dismissed round do not carry over"
    );
}

// ---- conversion into pending requests -----------------------------------------------------

#[tokio::test]
async fn creating_a_matching_tool_opens_pending_requests_for_active_backers_only() {
    let app = spawn_app().await;
    let (_a, key_a) = app.create_agent("agent-a").await;
    let (_b, key_b) = app.create_agent("agent-b").await;
    let (c, key_c) = app.create_agent("agent-c").await;
    let (_d, key_d) = app.create_agent("bystander").await;
    let created = suggest_ok(&app, &key_a, "Linear", Some("linear.app")).await;
    suggest_ok(&app, &key_b, "Linear", Some("https://linear.app")).await;
    suggest_ok(&app, &key_c, "Linear", Some("linear.app")).await;
    agents::set_status(
        &app.services,
        &app.admin,
        &c.id,
        AgentStatus::Suspended,
        None,
    )
    .await
    .expect("suspend c");

    let tool = tools::create(
        &app.services,
        &app.admin,
        tools::NewTool {
            name: "Linear (prod)".into(),
            description: "Issue tracker".into(),
            url: Some("https://www.linear.app".into()),
            auth_type: AuthType::ApiKey,
            credential_mode: CredentialMode::Shared,
            credential: Some(secrecy::SecretString::from("lin_api_converted".to_owned())),
            credential_expires_at: None,
            instructions: String::new(),
            source_suggestion_id: None,
            delivery: None,
            proxy: Default::default(),
        },
    )
    .await
    .expect("create");

    assert_eq!(
        tool.resolved_suggestions,
        [created["suggestion_id"].as_str().expect("id").to_owned()]
    );
    assert_eq!(tool.opened_requests.len(), 2);
    assert_eq!(access(&app, &key_a, &tool.tool.id).await, "pending");
    assert_eq!(access(&app, &key_b, &tool.tool.id).await, "pending");
    assert_eq!(
        access(&app, &key_d, &tool.tool.id).await,
        "none",
        "only backers get a request"
    );
    agents::set_status(&app.services, &app.admin, &c.id, AgentStatus::Active, None)
        .await
        .expect("reactivate c");
    assert_eq!(
        access(&app, &key_c, &tool.tool.id).await,
        "none",
        "a suspended backer gets no request"
    );
    let accepted = suggestions::list(&app.services, &app.admin, SuggestionStatus::Accepted)
        .await
        .expect("accepted");
    assert_eq!(accepted.len(), 1);
    assert_eq!(
        accepted[0].converted_tool_id.as_deref(),
        Some(tool.tool.id.as_str())
    );
    assert!(pending_suggestions(&app).await.is_empty());
    assert_eq!(
        app.count(
            "SELECT COUNT(*) FROM audit_log WHERE action = 'grant.requested_from_suggestion'"
        )
        .await,
        2
    );
    let origin: Vec<String> = sqlx::query_scalar("SELECT origin FROM access_requests")
        .fetch_all(&mut app.raw_db().await)
        .await
        .expect("origins");
    assert_eq!(origin, ["suggestion", "suggestion"]);
}

#[tokio::test]
async fn a_tool_created_from_a_source_suggestion_opens_requests_even_under_another_name() {
    let app = spawn_app().await;
    let (_a, key_a) = app.create_agent("agent-a").await;
    let (_b, key_b) = app.create_agent("agent-b").await;
    let created = suggest_ok(&app, &key_a, "Our Metrics Thing", None).await;
    suggest_ok(&app, &key_b, "our metrics thing", None).await;
    let id = created["suggestion_id"].as_str().expect("id");

    let tool = app
        .create_tool(
            "Grafana",
            Some("grafana.com"),
            CredentialMode::Shared,
            Some("glsa_from_source"),
            Some(id),
        )
        .await;

    assert_eq!(access(&app, &key_a, &tool.id).await, "pending");
    assert_eq!(access(&app, &key_b, &tool.id).await, "pending");
    let accepted = suggestions::list(&app.services, &app.admin, SuggestionStatus::Accepted)
        .await
        .expect("accepted");
    assert_eq!(accepted[0].id, id);
    let reason: String = sqlx::query_scalar("SELECT reason FROM access_requests LIMIT 1")
        .fetch_one(&mut app.raw_db().await)
        .await
        .expect("reason");
    assert_eq!(
        reason, "Needed for the quarterly report",
        "the backer's reason becomes the request reason"
    );
    assert_eq!(
        app.count("SELECT COUNT(*) FROM audit_log WHERE action = 'tool_suggestion.accepted'")
            .await,
        1
    );
}

#[tokio::test]
async fn creating_a_tool_from_a_dismissed_source_suggestion_is_refused_and_creates_nothing() {
    let app = spawn_app().await;
    let (_a, key) = app.create_agent("agent-a").await;
    let created = suggest_ok(&app, &key, "Metabase", None).await;
    let id = created["suggestion_id"].as_str().expect("id");
    suggestions::dismiss(&app.services, &app.admin, id, "Not now")
        .await
        .expect("dismiss");
    let tools_before = app.count("SELECT COUNT(*) FROM tools").await;

    let err = tools::create(
        &app.services,
        &app.admin,
        tools::NewTool {
            name: "Looker".into(),
            description: String::new(),
            url: None,
            auth_type: AuthType::ApiKey,
            credential_mode: CredentialMode::Shared,
            credential: None,
            credential_expires_at: None,
            instructions: String::new(),
            source_suggestion_id: Some(id.to_owned()),
            delivery: None,
            proxy: Default::default(),
        },
    )
    .await
    .expect_err("refused");

    assert_eq!(err.status(), 409);
    assert_eq!(
        app.count("SELECT COUNT(*) FROM tools").await,
        tools_before,
        "the tool insert was rolled back"
    );
    assert_eq!(app.count("SELECT COUNT(*) FROM access_requests").await, 0);
}

#[tokio::test]
async fn a_backer_previously_denied_for_the_tool_gets_no_new_request() {
    let app = spawn_app().await;
    let (_a, key_a) = app.create_agent("agent-a").await;
    let (denied, key_denied) = app.create_agent("denied-bot").await;
    suggest_ok(&app, &key_a, "PagerDuty", Some("pagerduty.com")).await;
    suggest_ok(&app, &key_denied, "PagerDuty", Some("pagerduty.com")).await;
    // The tool does not exist before it is created, so its denied history is seeded by a
    // trigger in the creating transaction, as an earlier denial would have left it.
    let history_id = uuid::Uuid::now_v7();
    let insert = format!(
        "INSERT INTO access_requests (id, organization_id, agent_id, tool_id, status, reason, origin, decided_by, decided_at, \
         decision_note, credential_version, created_at, updated_at) \
         VALUES ('{history_id}', NEW.organization_id, '{}', NEW.id, 'denied', 'Earlier ask', 'agent', 'cli:test', 1, 'No paging', 0, 1, 1)",
        denied.id
    );
    app.create_trigger("seed_denied", "AFTER INSERT ON tools", &insert)
        .await;

    let tool = app
        .create_shared_tool("PagerDuty", Some("pagerduty.com"), "pd_denied_history")
        .await;
    app.drop_trigger("seed_denied", "tools").await;

    assert_eq!(access(&app, &key_a, &tool.id).await, "pending");
    assert_eq!(
        access(&app, &key_denied, &tool.id).await,
        "denied",
        "the denial is not resurrected as pending"
    );
    let rows = app
        .count(&format!(
            "SELECT COUNT(*) FROM access_requests WHERE agent_id = '{}'",
            denied.id
        ))
        .await;
    assert_eq!(rows, 1, "no new request for the denied backer");
}

#[tokio::test]
async fn two_identical_suggestions_at_the_same_time_make_one_row_with_two_supporters() {
    let app = spawn_app().await;
    let (_a, key_a) = app.create_agent("agent-a").await;
    let (_b, key_b) = app.create_agent("agent-b").await;

    let (a, b) = tokio::join!(
        suggest(
            &app,
            &key_a,
            "Retool",
            Some("retool.com"),
            "Internal dashboards"
        ),
        suggest(
            &app,
            &key_b,
            "Retool",
            Some("retool.com"),
            "Admin panels for support"
        ),
    );

    assert_eq!((a.status().as_u16(), b.status().as_u16()), (201, 201));
    let (a, b) = (json(a).await, json(b).await);
    assert_eq!(a["suggestion_id"], b["suggestion_id"]);
    let mut existing = [
        a["existing"].as_bool().expect("bool"),
        b["existing"].as_bool().expect("bool"),
    ];
    existing.sort_unstable();
    assert_eq!(existing, [false, true], "exactly one call created it");
    assert_eq!(app.count("SELECT COUNT(*) FROM tool_suggestions").await, 1);
    assert_eq!(
        app.count("SELECT COUNT(*) FROM tool_suggestion_supporters")
            .await,
        2
    );
}

#[tokio::test]
async fn many_concurrent_suggestions_by_name_collapse_into_one_row() {
    let app = spawn_app().await;
    let mut keys = Vec::new();
    for n in 0..6 {
        keys.push(app.create_agent(&format!("agent-{n}")).await.1);
    }

    let mut set = tokio::task::JoinSet::new();
    for key in keys {
        let (client, url) = (app.client.clone(), app.url("/api/tools/suggest"));
        set.spawn(async move {
            let body = json!({"name": "Home Grown CRM", "reason": "Customer lookups"});
            client
                .post(url)
                .bearer_auth(key)
                .json(&body)
                .send()
                .await
                .expect("sent")
                .status()
                .as_u16()
        });
    }
    let results = set.join_all().await;

    assert!(results.iter().all(|s| *s == 201), "{results:?}");
    assert_eq!(app.count("SELECT COUNT(*) FROM tool_suggestions").await, 1);
    assert_eq!(
        app.count("SELECT COUNT(*) FROM tool_suggestion_supporters")
            .await,
        6
    );
}

// ---- guide suggestions --------------------------------------------------------------------

fn guide_path(tool_id: &str) -> String {
    format!("/api/tools/{tool_id}/instructions/suggest")
}

#[tokio::test]
async fn guide_suggestions_need_approved_access() {
    let app = spawn_app().await;
    let (_a, key) = app.create_agent("agent-a").await;
    let none = app
        .create_shared_tool("Stripe", Some("stripe.com"), "sk_guide_none")
        .await;
    let pending = app
        .create_shared_tool("Plaid", Some("plaid.com"), "plaid_guide_pending")
        .await;
    let revoked = app
        .create_shared_tool("Brex", Some("brex.com"), "brex_guide_revoked")
        .await;
    app.request_access(&key, &pending.id).await;
    let r = app.grant(&key, &revoked.id).await;
    grants::revoke(&app.services, &app.admin, &r, None)
        .await
        .expect("revoke");
    let fact = json!({"learned": "Use idempotency keys on POST", "why": "Retries double-charged"});

    for tool in [&none, &pending, &revoked] {
        let body = expect_error(
            app.post(&guide_path(&tool.id), &key, fact.clone()).await,
            403,
        )
        .await;
        assert!(
            body["hint"]
                .as_str()
                .expect("hint")
                .contains("Request access"),
            "{body}"
        );
    }
    assert_eq!(app.count("SELECT COUNT(*) FROM guide_suggestions").await, 0);
}

#[tokio::test]
async fn guide_suggestions_dedupe_by_normalized_text_and_collect_supporters() {
    let app = spawn_app().await;
    let (_a, key_a) = app.create_agent("agent-a").await;
    let (_b, key_b) = app.create_agent("agent-b").await;
    let tool = app
        .create_shared_tool("Stripe", Some("stripe.com"), "sk_guide_dedupe")
        .await;
    app.grant(&key_a, &tool.id).await;
    app.grant(&key_b, &tool.id).await;

    let first = app
        .post(
            &guide_path(&tool.id),
            &key_a,
            json!({"learned": "Use the v2 endpoint!", "why": "v1 is rate limited"}),
        )
        .await;
    let second = app
        .post(
            &guide_path(&tool.id),
            &key_b,
            json!({"learned": "use the V2 endpoint", "why": "v1 returned 429"}),
        )
        .await;

    assert_eq!(
        (first.status(), second.status()),
        (reqwest::StatusCode::CREATED, reqwest::StatusCode::CREATED)
    );
    let (first, second) = (json(first).await, json(second).await);
    assert_eq!(first["existing"], false);
    assert_eq!(second["existing"], true);
    assert_eq!(first["suggestion_id"], second["suggestion_id"]);
    let list = guides::list(&app.services, &app.admin, SuggestionStatus::Pending)
        .await
        .expect("list");
    assert_eq!(list.len(), 1);
    assert_eq!(list[0].learned, "Use the v2 endpoint!");
    assert_eq!(list[0].base_version, 1);
    assert_eq!(list[0].supporters.len(), 2);
}

#[tokio::test]
async fn an_accepted_guide_suggestion_is_a_new_guide_version_in_the_credential_response() {
    let app = spawn_app().await;
    let (_a, key) = app.create_agent("agent-a").await;
    let tool = app
        .create_shared_tool("Stripe", Some("stripe.com"), "sk_guide_accept")
        .await;
    app.grant(&key, &tool.id).await;
    let before = json(app.fetch(&key, &tool.id).await).await;
    assert_eq!(before["instructions_version"], 1);
    let created = json(
        app.post(
            &guide_path(&tool.id),
            &key,
            json!({"learned": "Amounts are in cents", "why": "I charged 100x once"}),
        )
        .await,
    )
    .await;

    let updated = guides::accept(
        &app.services,
        &app.admin,
        created["suggestion_id"].as_str().expect("id"),
        None,
    )
    .await
    .expect("accept");

    assert_eq!(updated.instructions_version, 2);
    let after = json(app.fetch(&key, &tool.id).await).await;
    assert_eq!(after["instructions_version"], 2);
    let text = after["instructions"].as_str().expect("instructions");
    assert!(
        text.starts_with("Use Stripe carefully.") && text.contains("Amounts are in cents"),
        "{text}"
    );
    assert_eq!(after["credential"], "sk_guide_accept");
    let history = tools::guide_history(&app.services, &app.admin, &tool.id)
        .await
        .expect("history");
    assert_eq!(history.len(), 2);
    assert_eq!(history[0].source, "suggestion_accept");
}

#[tokio::test]
async fn a_dismissed_guide_fact_resubmitted_gets_409_with_the_dismissal_reason() {
    let app = spawn_app().await;
    let (_a, key_a) = app.create_agent("agent-a").await;
    let (_b, key_b) = app.create_agent("agent-b").await;
    let tool = app
        .create_shared_tool("Stripe", Some("stripe.com"), "sk_guide_dismiss")
        .await;
    app.grant(&key_a, &tool.id).await;
    app.grant(&key_b, &tool.id).await;
    let fact = json!({"learned": "Disable webhooks in tests", "why": "They spam the channel"});
    let created = json(app.post(&guide_path(&tool.id), &key_a, fact.clone()).await).await;
    let id = created["suggestion_id"].as_str().expect("id");

    guides::dismiss(
        &app.services,
        &app.admin,
        id,
        "Webhooks are needed for the e2e suite",
    )
    .await
    .expect("dismiss");

    for key in [&key_a, &key_b] {
        let body = expect_error(
            app.post(
                &guide_path(&tool.id),
                key,
                json!({"learned": "disable WEBHOOKS in tests.", "why": "Noise"}),
            )
            .await,
            409,
        )
        .await;
        assert_eq!(body["suggestion_id"], id);
        assert_eq!(
            body["dismissal_reason"],
            "Webhooks are needed for the e2e suite"
        );
        assert!(
            body["message"].is_string(),
            "the original's message: {body}"
        );
    }
    assert_eq!(
        app.count("SELECT COUNT(*) FROM guide_suggestion_supporters")
            .await,
        1
    );
    tools::update_guide(
        &app.services,
        &app.admin,
        &tool.id,
        "Use Stripe carefully. Test mode only.",
    )
    .await
    .expect("edit guide");
    let res = app.post(&guide_path(&tool.id), &key_b, fact).await;
    assert_eq!(
        res.status(),
        201,
        "after the guide changes the fact may be proposed again"
    );
}

#[tokio::test]
async fn a_fact_just_accepted_into_the_guide_is_not_accepted_again_as_a_new_suggestion() {
    let app = spawn_app().await;
    let (_a, key) = app.create_agent("agent-a").await;
    let tool = app
        .create_shared_tool("Stripe", Some("stripe.com"), "sk_guide_twice")
        .await;
    app.grant(&key, &tool.id).await;
    let fact = json!({"learned": "Amounts are in cents", "why": "I charged 100x once"});
    let created = json(app.post(&guide_path(&tool.id), &key, fact.clone()).await).await;
    guides::accept(
        &app.services,
        &app.admin,
        created["suggestion_id"].as_str().expect("id"),
        None,
    )
    .await
    .expect("accept");

    let again = app.post(&guide_path(&tool.id), &key, fact).await;

    expect_error(again, 409).await;
    assert!(
        guides::list(&app.services, &app.admin, SuggestionStatus::Pending)
            .await
            .expect("list")
            .is_empty()
    );
}
