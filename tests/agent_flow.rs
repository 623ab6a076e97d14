//! The agent's life cycle over HTTP: deny and re-request, revoke, suspension, key rotation and
//! deletion, per-agent and rotated secrets, time-bound grants, `GET /api/me`, OAuth JSON.

mod common;

use std::time::Duration;

use app::model::{AgentStatus, AuthType, CredentialMode, RequestStatus};
use app::server::service::{agents, grants, tools};
use common::{expect_error, json, now_ms, spawn_app};
use reqwest::Method;
use secrecy::SecretString;
use serde_json::{Value, json};

fn secret(text: &str) -> SecretString {
    SecretString::from(text.to_owned())
}

/// The catalog entry of `tool_id` as the agent sees it.
async fn catalog_entry(app: &common::TestApp, key: &str, tool_id: &str) -> Value {
    let list = json(app.get("/api/tools", key).await).await;
    list["tools"]
        .as_array()
        .expect("tools")
        .iter()
        .find(|t| t["id"] == tool_id)
        .cloned()
        .expect("tool listed")
}

#[tokio::test]
async fn re_request_after_deny_is_a_new_row_and_the_denial_reason_is_shown() {
    let app = spawn_app().await;
    let (agent, key) = app.create_agent("deploy-bot").await;
    let tool = app
        .create_shared_tool("Stripe", Some("stripe.com"), "sk_live_deny_flow")
        .await;
    let first = app.request_access(&key, &tool.id).await;
    grants::deny(
        &app.services,
        &app.admin,
        &first,
        Some("Use the test-mode key instead"),
    )
    .await
    .expect("deny");

    let entry = catalog_entry(&app, &key, &tool.id).await;
    assert_eq!(entry["your_access"], "denied");
    assert_eq!(entry["denial_reason"], "Use the test-mode key instead");
    let refused = expect_error(app.fetch(&key, &tool.id).await, 403).await;
    assert_eq!(refused["your_access"], "denied");
    assert_eq!(refused["denial_reason"], "Use the test-mode key instead");
    assert!(
        refused["hint"]
            .as_str()
            .expect("hint")
            .contains("Use the test-mode key instead"),
        "{refused}"
    );

    let second = app.request_access(&key, &tool.id).await;

    assert_ne!(first, second, "a re-request is a new row");
    let rows = app
        .count(&format!(
            "SELECT COUNT(*) FROM access_requests WHERE agent_id = '{}' AND tool_id = '{}'",
            agent.id, tool.id
        ))
        .await;
    assert_eq!(rows, 2, "the denied row is kept as history");
    let entry = catalog_entry(&app, &key, &tool.id).await;
    assert_eq!(entry["your_access"], "pending");
    assert!(
        entry.get("denial_reason").is_none(),
        "a pending re-request shows no old denial: {entry}"
    );
    let history = grants::list(&app.services, &app.admin, Some(RequestStatus::Denied), 10)
        .await
        .expect("list");
    assert_eq!(history.len(), 1);
    assert_eq!(
        history[0].decision_note.as_deref(),
        Some("Use the test-mode key instead")
    );
}

#[tokio::test]
async fn fetch_after_revoke_returns_403_and_the_catalog_says_revoked_and_why() {
    let app = spawn_app().await;
    let (_agent, key) = app.create_agent("ci-bot").await;
    let tool = app
        .create_shared_tool("GitHub", Some("github.com"), "ghp_revoke_flow")
        .await;
    let request_id = app.grant(&key, &tool.id).await;
    assert_eq!(
        app.fetch(&key, &tool.id).await.status(),
        200,
        "approved grant fetches (and warms the cache)"
    );

    grants::revoke(&app.services, &app.admin, &request_id, Some("offboarding"))
        .await
        .expect("revoke");

    let body = expect_error(app.fetch(&key, &tool.id).await, 403).await;
    assert_eq!(body["your_access"], "revoked");
    assert_eq!(
        body["revocation_reason"], "offboarding",
        "the agent reads why"
    );
    let hint = body["hint"].as_str().expect("hint");
    assert!(hint.contains(&format!("/api/tools/{}/request", tool.id)));
    assert!(hint.contains("offboarding"), "{hint}");
    assert!(!body.to_string().contains("ghp_revoke_flow"));
    let entry = catalog_entry(&app, &key, &tool.id).await;
    assert_eq!(entry["your_access"], "revoked");
    assert_eq!(entry["revocation_reason"], "offboarding");
    assert!(entry.get("denial_reason").is_none());
    let again = app
        .post(
            &format!("/api/tools/{}/request", tool.id),
            &key,
            json!({"reason": "Back on the project"}),
        )
        .await;
    assert_eq!(again.status(), 201, "a revoked agent may ask again");
}

#[tokio::test]
async fn suspended_agent_gets_403_with_hint_on_every_route_and_reactivation_restores_its_grants() {
    let app = spawn_app().await;
    let (agent, key) = app.create_agent("nightly-bot").await;
    let tool = app
        .create_shared_tool("Linear", Some("linear.app"), "lin_api_suspend_flow")
        .await;
    let other = app
        .create_shared_tool("Sentry", Some("sentry.io"), "sntrys_suspend_flow")
        .await;
    app.grant(&key, &tool.id).await;
    assert_eq!(app.fetch(&key, &tool.id).await.status(), 200);
    let requests_before = app.count("SELECT COUNT(*) FROM access_requests").await;

    agents::set_status(
        &app.services,
        &app.admin,
        &agent.id,
        AgentStatus::Suspended,
        Some("investigating"),
    )
    .await
    .expect("suspend");

    let calls: Vec<(Method, String, Option<Value>)> = vec![
        (Method::GET, "/api/tools".into(), None),
        (Method::GET, "/api/me".into(), None),
        (
            Method::GET,
            format!("/api/tools/{}/credentials", tool.id),
            None,
        ),
        (
            Method::POST,
            format!("/api/tools/{}/request", other.id),
            Some(json!({"reason": "Need error reports"})),
        ),
        (
            Method::POST,
            "/api/tools/suggest".into(),
            Some(json!({"name": "Notion", "url": "notion.so", "reason": "Docs for the team"})),
        ),
        (
            Method::POST,
            format!("/api/tools/{}/instructions/suggest", tool.id),
            Some(json!({"learned": "Use the GraphQL API", "why": "REST is deprecated"})),
        ),
    ];
    for (method, path, body) in calls {
        let res = app.call(method.clone(), &path, Some(&key), body).await;
        let body = expect_error(res, 403).await;
        assert!(
            body["error"].as_str().expect("error").contains("suspended"),
            "{method} {path}: {body}"
        );
        assert!(
            body["hint"]
                .as_str()
                .is_some_and(|h| h.contains("reactivat")),
            "{method} {path}: {body}"
        );
    }
    assert_eq!(
        app.count("SELECT COUNT(*) FROM access_requests").await,
        requests_before,
        "nothing was written"
    );
    assert_eq!(app.count("SELECT COUNT(*) FROM tool_suggestions").await, 0);

    agents::set_status(
        &app.services,
        &app.admin,
        &agent.id,
        AgentStatus::Active,
        None,
    )
    .await
    .expect("reactivate");

    let res = app.fetch(&key, &tool.id).await;
    assert_eq!(res.status(), 200, "grants survive a suspension");
    assert_eq!(json(res).await["credential"], "lin_api_suspend_flow");
    assert_eq!(
        catalog_entry(&app, &key, &tool.id).await["your_access"],
        "approved"
    );
}

#[tokio::test]
async fn key_rotation_makes_the_old_key_401_and_the_new_key_work() {
    let app = spawn_app().await;
    let (agent, old_key) = app.create_agent("rotating-bot").await;
    let tool = app
        .create_shared_tool("Vercel", Some("vercel.com"), "vercel_rotation_secret")
        .await;
    app.grant(&old_key, &tool.id).await;
    assert_eq!(
        app.fetch(&old_key, &tool.id).await.status(),
        200,
        "warms the credential cache with the old key"
    );

    let issued = agents::rotate_key(&app.services, &app.admin, &agent.id)
        .await
        .expect("rotate");

    assert_ne!(issued.api_key, old_key);
    assert!(issued.api_key.starts_with("ak_"));
    expect_error(app.fetch(&old_key, &tool.id).await, 401).await;
    expect_error(app.get("/api/tools", &old_key).await, 401).await;
    let res = app.fetch(&issued.api_key, &tool.id).await;
    assert_eq!(
        res.status(),
        200,
        "the grant belongs to the agent, not to the key"
    );
    assert_eq!(json(res).await["credential"], "vercel_rotation_secret");
    assert!(
        issued.snippets.claude_md.contains(&issued.api_key)
            || issued.snippets.env.contains(&issued.api_key)
    );
}

#[tokio::test]
async fn deleted_agent_key_returns_401_everywhere() {
    let app = spawn_app().await;
    let (agent, key) = app.create_agent("temp-bot").await;
    let tool = app
        .create_shared_tool("Slack", Some("slack.com"), "xoxb-delete-flow")
        .await;
    app.grant(&key, &tool.id).await;
    assert_eq!(app.fetch(&key, &tool.id).await.status(), 200);

    agents::delete(&app.services, &app.admin, &agent.id)
        .await
        .expect("delete");

    expect_error(app.fetch(&key, &tool.id).await, 401).await;
    expect_error(app.get("/api/me", &key).await, 401).await;
    expect_error(app.get("/api/tools", &key).await, 401).await;
    assert_eq!(
        app.count(&format!(
            "SELECT COUNT(*) FROM access_requests WHERE agent_id = '{}'",
            agent.id
        ))
        .await,
        0
    );
}

#[tokio::test]
async fn approving_a_request_of_a_suspended_agent_is_refused_with_409() {
    let app = spawn_app().await;
    let (agent, key) = app.create_agent("paused-bot").await;
    let tool = app
        .create_shared_tool("Jira", Some("atlassian.net"), "jira_suspended_secret")
        .await;
    let request_id = app.request_access(&key, &tool.id).await;
    agents::set_status(
        &app.services,
        &app.admin,
        &agent.id,
        AgentStatus::Suspended,
        None,
    )
    .await
    .expect("suspend");

    let err = grants::approve(&app.services, &app.admin, &request_id, None, None)
        .await
        .expect_err("refused");

    assert_eq!(err.status(), 409);
    let pending = grants::list(&app.services, &app.admin, Some(RequestStatus::Pending), 10)
        .await
        .expect("list");
    assert_eq!(pending.len(), 1, "the request stays pending");
    assert_eq!(pending[0].id, request_id);
}

#[tokio::test]
async fn approving_with_an_expiry_in_the_past_is_a_400_and_leaves_the_request_pending() {
    let app = spawn_app().await;
    let (_agent, key) = app.create_agent("late-bot").await;
    let tool = app
        .create_shared_tool("Figma", Some("figma.com"), "figd_past_expiry")
        .await;
    let request_id = app.request_access(&key, &tool.id).await;

    let err = grants::approve(
        &app.services,
        &app.admin,
        &request_id,
        None,
        Some(now_ms() - 1000),
    )
    .await
    .expect_err("refused");

    assert_eq!(err.status(), 400);
    assert_eq!(
        catalog_entry(&app, &key, &tool.id).await["your_access"],
        "pending"
    );
}

#[tokio::test]
async fn per_agent_tool_needs_a_secret_at_approval_and_each_agent_fetches_its_own() {
    let app = spawn_app().await;
    let (_a, key_a) = app.create_agent("agent-a").await;
    let (_b, key_b) = app.create_agent("agent-b").await;
    let tool = app
        .create_tool(
            "Postgres",
            Some("db.example.com"),
            CredentialMode::PerAgent,
            None,
            None,
        )
        .await;
    let req_a = app.request_access(&key_a, &tool.id).await;
    let req_b = app.request_access(&key_b, &tool.id).await;

    let err = grants::approve(&app.services, &app.admin, &req_a, None, None)
        .await
        .expect_err("secret required");
    assert_eq!(err.status(), 400);
    let err = grants::approve(&app.services, &app.admin, &req_a, Some(secret("   ")), None)
        .await
        .expect_err("blank secret");
    assert_eq!(err.status(), 400);
    assert_eq!(
        catalog_entry(&app, &key_a, &tool.id).await["your_access"],
        "pending",
        "a refused approval changes nothing"
    );
    grants::approve(
        &app.services,
        &app.admin,
        &req_a,
        Some(secret("postgres://a:pw-a@db/app")),
        None,
    )
    .await
    .expect("approve a");
    grants::approve(
        &app.services,
        &app.admin,
        &req_b,
        Some(secret("postgres://b:pw-b@db/app")),
        None,
    )
    .await
    .expect("approve b");

    let a = json(app.fetch(&key_a, &tool.id).await).await;
    let b = json(app.fetch(&key_b, &tool.id).await).await;

    assert_eq!(a["credential"], "postgres://a:pw-a@db/app");
    assert_eq!(b["credential"], "postgres://b:pw-b@db/app");
    assert_eq!(a["credential_version"], 1);
    grants::set_grant_credential(
        &app.services,
        &app.admin,
        &req_a,
        secret("postgres://a:pw-a2@db/app"),
    )
    .await
    .expect("rotate a");
    let a2 = json(app.fetch(&key_a, &tool.id).await).await;
    assert_eq!(a2["credential"], "postgres://a:pw-a2@db/app");
    assert_eq!(a2["credential_version"], 2);
    assert_eq!(
        json(app.fetch(&key_b, &tool.id).await).await["credential"],
        "postgres://b:pw-b@db/app",
        "b is untouched"
    );
}

#[tokio::test]
async fn shared_tool_refuses_a_secret_at_approval() {
    let app = spawn_app().await;
    let (_agent, key) = app.create_agent("shared-bot").await;
    let tool = app
        .create_shared_tool("Datadog", Some("datadoghq.com"), "dd_shared_secret")
        .await;
    let request_id = app.request_access(&key, &tool.id).await;

    let err = grants::approve(
        &app.services,
        &app.admin,
        &request_id,
        Some(secret("other")),
        None,
    )
    .await
    .expect_err("refused");

    assert_eq!(err.status(), 400);
    assert_eq!(
        catalog_entry(&app, &key, &tool.id).await["your_access"],
        "pending"
    );
}

#[tokio::test]
async fn shared_secret_rotation_is_served_on_the_next_fetch_with_a_new_credential_version() {
    let app = spawn_app().await;
    let (_agent, key) = app.create_agent("rotation-reader").await;
    let tool = app
        .create_shared_tool("OpenAI", Some("openai.com"), "sk-proj-version-one")
        .await;
    app.grant(&key, &tool.id).await;
    let before = json(app.fetch(&key, &tool.id).await).await;
    assert_eq!(before["credential"], "sk-proj-version-one");

    tools::set_credential(
        &app.services,
        &app.admin,
        &tool.id,
        secret("sk-proj-version-two"),
        None,
    )
    .await
    .expect("rotate");

    let after = json(app.fetch(&key, &tool.id).await).await;
    assert_eq!(after["credential"], "sk-proj-version-two");
    let v1 = before["credential_version"].as_i64().expect("version");
    assert_eq!(after["credential_version"].as_i64(), Some(v1 + 1));
}

#[tokio::test]
async fn shared_tool_without_a_secret_answers_409_until_one_is_set() {
    let app = spawn_app().await;
    let (_agent, key) = app.create_agent("early-bot").await;
    let tool = app
        .create_tool(
            "Grafana",
            Some("grafana.com"),
            CredentialMode::Shared,
            None,
            None,
        )
        .await;
    app.grant(&key, &tool.id).await;

    let body = expect_error(app.fetch(&key, &tool.id).await, 409).await;
    assert_eq!(body["tool_id"], tool.id.as_str());

    tools::set_credential(
        &app.services,
        &app.admin,
        &tool.id,
        secret("glsa_now_configured"),
        None,
    )
    .await
    .expect("set");
    let res = app.fetch(&key, &tool.id).await;
    assert_eq!(res.status(), 200);
    assert_eq!(json(res).await["credential"], "glsa_now_configured");
}

#[tokio::test]
async fn time_bound_grant_expires_then_fetch_is_403_and_the_agent_may_ask_again() {
    let app = spawn_app().await;
    let (_agent, key) = app.create_agent("short-lived-bot").await;
    let tool = app
        .create_shared_tool("AWS", Some("aws.amazon.com"), "AKIA_time_bound")
        .await;
    let request_id = app.request_access(&key, &tool.id).await;
    grants::approve(
        &app.services,
        &app.admin,
        &request_id,
        None,
        Some(now_ms() + 800),
    )
    .await
    .expect("approve");
    let live = json(app.fetch(&key, &tool.id).await).await;
    assert_eq!(live["credential"], "AKIA_time_bound");
    assert!(
        live["grant_expires_at"].as_str().is_some(),
        "a time-bound grant says when it ends: {live}"
    );
    assert!(catalog_entry(&app, &key, &tool.id).await["grant_expires_at"].is_string());

    tokio::time::sleep(Duration::from_millis(1000)).await;

    assert_eq!(
        catalog_entry(&app, &key, &tool.id).await["your_access"],
        "expired"
    );
    let body = expect_error(app.fetch(&key, &tool.id).await, 403).await;
    assert_eq!(body["your_access"], "expired");
    assert!(!body.to_string().contains("AKIA_time_bound"));
    let again = app
        .post(
            &format!("/api/tools/{}/request", tool.id),
            &key,
            json!({"reason": "Another deploy window"}),
        )
        .await;
    assert_eq!(
        again.status(),
        201,
        "an expired grant does not block a new request"
    );
}

#[tokio::test]
async fn me_summarises_approved_pending_and_denied_tools() {
    let app = spawn_app().await;
    let (agent, key) = app.create_agent("summary-bot").await;
    let approved = app
        .create_shared_tool("GitLab", Some("gitlab.com"), "glpat_summary")
        .await;
    let pending = app
        .create_shared_tool("Heroku", Some("heroku.com"), "heroku_summary")
        .await;
    let denied = app
        .create_shared_tool("Twilio", Some("twilio.com"), "twilio_summary")
        .await;
    let _untouched = app
        .create_shared_tool("Zoom", Some("zoom.us"), "zoom_summary")
        .await;
    app.grant(&key, &approved.id).await;
    app.request_access(&key, &pending.id).await;
    let d = app.request_access(&key, &denied.id).await;
    grants::deny(
        &app.services,
        &app.admin,
        &d,
        Some("No SMS in this project"),
    )
    .await
    .expect("deny");

    let res = app.get("/api/me", &key).await;

    assert_eq!(res.status(), 200);
    let me = json(res).await;
    assert_eq!(me["agent_id"], agent.id.as_str());
    assert_eq!(me["agent_name"], "summary-bot");
    assert_eq!(me["description"], "test agent");
    assert!(me["created_at"].is_string());
    assert_eq!(me["tools_approved"], json!(["GitLab"]));
    assert_eq!(me["tools_pending"], json!(["Heroku"]));
    assert_eq!(
        me["tools_denied"],
        json!([{"name": "Twilio", "reason": "No SMS in this project"}])
    );
    assert_eq!(me["tools_available"], 4);
    assert!(
        me.get("hint").is_none(),
        "no onboarding hint once something is approved: {me}"
    );
}

#[tokio::test]
async fn me_hints_at_the_next_step_when_the_agent_has_no_access() {
    let app = spawn_app().await;
    let (_agent, key) = app.create_agent("new-bot").await;
    app.create_shared_tool("Notion", Some("notion.so"), "secret_notion_me")
        .await;

    let me = json(app.get("/api/me", &key).await).await;

    assert_eq!(me["tools_available"], 1);
    assert_eq!(me["tools_approved"], json!([]));
    assert!(
        me["hint"]
            .as_str()
            .is_some_and(|h| h.contains("/api/tools")),
        "{me}"
    );
}

#[tokio::test]
async fn catalog_lists_only_the_agents_organization_newest_first() {
    let app = spawn_app().await;
    let (_agent, key) = app.create_agent("catalog-bot").await;
    let first = app
        .create_shared_tool("Alpha", Some("alpha.example"), "alpha_secret")
        .await;
    let second = app.create_shared_tool("Beta", None, "beta_secret").await;
    let other = app.other_org("Other Org").await;
    app.create_tool_as(
        &other,
        "Foreign",
        Some("foreign.example"),
        AuthType::ApiKey,
        CredentialMode::Shared,
        Some("foreign_secret"),
    )
    .await;

    let res = app.get("/api/tools", &key).await;

    assert_eq!(res.status(), 200);
    let list = json(res).await;
    let tools = list["tools"].as_array().expect("tools");
    let ids: Vec<&str> = tools
        .iter()
        .map(|t| t["id"].as_str().expect("id"))
        .collect();
    assert_eq!(ids, [second.id.as_str(), first.id.as_str()]);
    assert!(tools.iter().all(|t| t["your_access"] == "none"
        && t["credential_mode"] == "shared"
        && t["auth_type"] == "api_key"));
    assert!(
        !list.to_string().contains("secret"),
        "no secret in the catalog: {list}"
    );
    assert!(!list.to_string().contains("Foreign"));
}

#[tokio::test]
async fn credential_response_carries_every_contract_field_and_no_store_headers() {
    let app = spawn_app().await;
    let (_agent, key) = app.create_agent("fields-bot").await;
    let tool = app
        .create_shared_tool("Cloudflare", Some("cloudflare.com"), "cf_fields_secret")
        .await;
    app.grant(&key, &tool.id).await;

    let res = app.fetch(&key, &tool.id).await;

    assert_eq!(res.status(), 200);
    assert_eq!(res.headers()["cache-control"], "no-store, private");
    assert_eq!(res.headers()["pragma"], "no-cache");
    assert!(res.headers().contains_key("x-ratelimit-remaining"));
    let body = json(res).await;
    assert_eq!(body["tool_id"], tool.id.as_str());
    assert_eq!(body["tool_name"], "Cloudflare");
    assert_eq!(body["auth_type"], "api_key");
    assert_eq!(body["credential"], "cf_fields_secret");
    assert_eq!(body["instructions"], "Use Cloudflare carefully.");
    assert_eq!(
        body["suggest_instructions_endpoint"],
        format!("/api/tools/{}/instructions/suggest", tool.id)
    );
    assert!(body["grant_expires_at"].is_null());
    assert_eq!(body["credential_version"], 1);
    assert_eq!(body["instructions_version"], 1);
}

#[tokio::test]
async fn oauth_token_credential_that_is_json_is_returned_as_an_object() {
    let app = spawn_app().await;
    let (_agent, key) = app.create_agent("oauth-bot").await;
    let token =
        r#"{"access_token":"ya29.oauth_json","refresh_token":"1//refresh","expires_in":3600}"#;
    let oauth = app
        .create_tool_as(
            &app.admin,
            "Google",
            Some("google.com"),
            AuthType::OauthToken,
            CredentialMode::Shared,
            Some(token),
        )
        .await;
    let plain = app
        .create_tool_as(
            &app.admin,
            "Dropbox",
            Some("dropbox.com"),
            AuthType::OauthToken,
            CredentialMode::Shared,
            Some("sl.plain_token"),
        )
        .await;
    let array = app
        .create_tool_as(
            &app.admin,
            "Box",
            Some("box.com"),
            AuthType::OauthToken,
            CredentialMode::Shared,
            Some("[1,2]"),
        )
        .await;
    let api_json = app
        .create_tool_as(
            &app.admin,
            "Mixpanel",
            Some("mixpanel.com"),
            AuthType::ApiKey,
            CredentialMode::Shared,
            Some(r#"{"k":"v"}"#),
        )
        .await;
    for tool in [&oauth, &plain, &array, &api_json] {
        app.grant(&key, &tool.id).await;
    }

    let object = json(app.fetch(&key, &oauth.id).await).await;
    let string = json(app.fetch(&key, &plain.id).await).await;
    let not_object = json(app.fetch(&key, &array.id).await).await;
    let api_key = json(app.fetch(&key, &api_json.id).await).await;

    assert_eq!(object["auth_type"], "oauth_token");
    assert_eq!(object["credential"]["access_token"], "ya29.oauth_json");
    assert_eq!(object["credential"]["expires_in"], 3600);
    assert_eq!(string["credential"], "sl.plain_token");
    assert_eq!(
        not_object["credential"], "[1,2]",
        "only JSON objects are unwrapped"
    );
    assert_eq!(
        api_key["credential"], r#"{"k":"v"}"#,
        "other auth types always get the text"
    );
}

/// A grant whose time ran out is not live anywhere, even before a write marks it expired: the
/// delete dialog does not count it among the grants a delete would end, nor the overview among
/// the live grants.
#[tokio::test]
async fn an_expired_grant_is_not_counted_as_live_by_the_delete_impact_or_the_overview() {
    let app = spawn_app().await;
    let (_agent, key) = app.create_agent("counted-bot").await;
    let tool = app
        .create_shared_tool("Linear", Some("linear.app"), "lin_counted")
        .await;
    let request_id = app.grant(&key, &tool.id).await;
    let overview = |app: &common::TestApp| {
        let (svc, ctx) = (app.services.clone(), app.admin.clone());
        async move {
            app::server::service::dashboard::overview(&svc, &ctx)
                .await
                .expect("overview")
                .approved_grants
        }
    };
    let impact = tools::delete_impact(&app.services, &app.admin, &tool.id)
        .await
        .expect("impact");
    assert_eq!((impact, overview(&app).await), ((1, 0), 1));

    app.exec(&format!(
        "UPDATE access_requests SET expires_at = {} WHERE id = '{request_id}'",
        now_ms() - 1000
    ))
    .await;

    let impact = tools::delete_impact(&app.services, &app.admin, &tool.id)
        .await
        .expect("impact");
    assert_eq!((impact, overview(&app).await), ((0, 0), 0));
}

/// Every string in `value` that reads as a timestamp.
fn timestamps(value: &Value, out: &mut Vec<String>) {
    match value {
        Value::String(s) if app::server::clock::parse_iso(s).is_some() => out.push(s.clone()),
        Value::Array(items) => items.iter().for_each(|v| timestamps(v, out)),
        Value::Object(map) => map.values().for_each(|v| timestamps(v, out)),
        _ => {}
    }
}

#[tokio::test]
async fn every_timestamp_the_agent_reads_has_exactly_three_fraction_digits() {
    let app = spawn_app().await;
    let (_agent, key) = app.create_agent("clock-bot").await;
    let tool = app
        .create_shared_tool("Vercel", Some("vercel.com"), "vc_clock_secret")
        .await;
    let request_id = app.request_access(&key, &tool.id).await;
    // A whole second: the form that used to lose its zeros (`…:40Z`).
    let expires = (now_ms() / 1000 + 3600) * 1000;
    grants::approve(&app.services, &app.admin, &request_id, None, Some(expires))
        .await
        .expect("approve");
    let mut seen = Vec::new();
    for path in [
        "/api/tools".to_owned(),
        "/api/me".to_owned(),
        format!("/api/tools/{}/credentials", tool.id),
    ] {
        timestamps(&json(app.get(&path, &key).await).await, &mut seen);
    }
    assert!(
        seen.iter().any(|t| t.ends_with(".000Z")),
        "the whole-second expiry is among them: {seen:?}"
    );
    for t in &seen {
        let b = t.as_bytes();
        let shaped = b.len() == 24
            && b[4] == b'-'
            && b[10] == b'T'
            && b[19] == b'.'
            && b[23] == b'Z'
            && t[20..23].bytes().all(|c| c.is_ascii_digit());
        assert!(shaped, "{t} is not YYYY-MM-DDTHH:MM:SS.sssZ");
    }
}
