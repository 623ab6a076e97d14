//! What the inbox shows beside each decision, over the real server function: the requesting
//! agent's standing (who registered it, its last activity, the grants it holds now, what was
//! denied to it before) and a guide suggestion's preview of the guide after accepting it.

mod common;

use std::time::Duration;

use app::model::guide_after;
use app::server::service::{grants, guides, tools};
use common::rpc::{app_with_mail, rpc, sign_in};
use common::{TestApp, json};
use serde_json::{Value, json};

async fn read_inbox(app: &TestApp, cookie: &str) -> Value {
    let reply = rpc(app, "inbox", &[], Some(cookie)).await;
    assert_eq!(reply.status, 200, "{}", reply.body);
    reply.json()
}

fn context_of<'a>(inbox: &'a Value, agent_id: &str) -> &'a Value {
    inbox["agents"]
        .as_array()
        .expect("agents")
        .iter()
        .find(|a| a["agent_id"] == agent_id)
        .unwrap_or_else(|| panic!("no context for {agent_id} in {inbox}"))
}

fn names(list: &Value) -> Vec<&str> {
    list.as_array()
        .expect("list")
        .iter()
        .map(|g| g["tool_name"].as_str().expect("tool_name"))
        .collect()
}

async fn deny(app: &TestApp, key: &str, tool_id: &str, reason: &str) {
    let id = app.request_access(key, tool_id).await;
    grants::deny(&app.services, &app.admin, &id, Some(reason))
        .await
        .expect("deny");
}

#[tokio::test]
async fn each_request_comes_with_its_agents_grants_denials_registrant_and_last_activity() {
    // Arrange: a holds Linear (standing) and held Notion for an hour, which has run out; GitHub
    // was denied to it once and Stripe six times since (ten requests: the hourly limit); it asks for GitHub now. b has nothing and asks too.
    let (app, sink) = app_with_mail().await;
    let cookie = sign_in(&app, &sink).await;
    let (a, key_a) = app.create_agent("agent-a").await;
    let (b, key_b) = app.create_agent("agent-b").await;
    let github = app.create_shared_tool("GitHub", None, "ghp_ctx").await;
    let linear = app.create_shared_tool("Linear", None, "lin_ctx").await;
    let stripe = app.create_shared_tool("Stripe", None, "sk_ctx").await;
    let notion = app.create_shared_tool("Notion", None, "ntn_ctx").await;
    let linear_grant = app.grant(&key_a, &linear.id).await;
    let hour = app.request_access(&key_a, &notion.id).await;
    let in_an_hour = app.services.clock.now_ms() + 3_600_000;
    grants::approve(&app.services, &app.admin, &hour, None, Some(in_an_hour))
        .await
        .expect("approve for an hour");
    deny(&app, &key_a, &github.id, "Not yet").await;
    for n in 1..=6 {
        deny(
            &app,
            &key_a,
            &stripe.id,
            &format!("Not for this project ({n})"),
        )
        .await;
    }
    app.services.clock.advance(Duration::from_secs(2 * 3600));
    app.request_access(&key_a, &github.id).await;
    app.request_access(&key_b, &github.id).await;
    // Another organization's agent with a denial of its own never shows here.
    let other = app.other_org("Elsewhere").await;
    let foreign = app::server::service::agents::create(&app.services, &other, "agent-a", "")
        .await
        .expect("foreign agent");

    // Act
    let inbox = read_inbox(&app, &cookie).await;

    // Assert
    assert_eq!(inbox["agents"].as_array().expect("agents").len(), 2);
    assert!(!inbox.to_string().contains(foreign.agent.id.as_str()));
    let ca = context_of(&inbox, &a.id);
    assert_eq!(ca["created_by"], a.created_by);
    assert!(ca["last_used_at"].is_string(), "a asked with its key: {ca}");
    assert_eq!(
        names(&ca["holds"]),
        ["Linear"],
        "the expired hour is not held"
    );
    assert_eq!(ca["holds_total"], 1);
    assert_eq!(ca["denials"].as_array().expect("denials").len(), 5);
    assert_eq!(ca["denials_total"], 7, "{ca}");
    assert_eq!(
        ca["denials"][0]["tool_id"], github.id,
        "the tool asked for first"
    );
    assert_eq!(ca["denials"][0]["reason"], "Not yet");
    assert_eq!(
        ca["denials"][1]["reason"], "Not for this project (6)",
        "then newest first"
    );
    let cb = context_of(&inbox, &b.id);
    assert_eq!(cb["holds"], json!([]));
    assert_eq!(cb["denials"], json!([]));
    assert_eq!(
        (cb["holds_total"].as_i64(), cb["denials_total"].as_i64()),
        (Some(0), Some(0))
    );

    // A revoke ends the holding at once.
    grants::revoke(
        &app.services,
        &app.admin,
        &linear_grant,
        Some("Project over"),
    )
    .await
    .expect("revoke");
    let after = read_inbox(&app, &cookie).await;
    assert_eq!(context_of(&after, &a.id)["holds"], json!([]));
}

#[tokio::test]
async fn a_guide_suggestion_previews_exactly_the_guide_that_accepting_it_saves() {
    let (app, sink) = app_with_mail().await;
    let cookie = sign_in(&app, &sink).await;
    let (_, key) = app.create_agent("agent-a").await;
    let tool = app.create_shared_tool("Stripe", None, "sk_preview").await;
    app.grant(&key, &tool.id).await;
    let path = format!("/api/tools/{}/instructions/suggest", tool.id);
    let learned = "Amounts are in cents.";
    let made = app
        .post(
            &path,
            &key,
            json!({"learned": learned, "why": "I charged 100x once"}),
        )
        .await;
    assert_eq!(made.status(), 201);
    // The guide moves on after the agent read version 1: the preview builds on the new text.
    tools::update_guide(&app.services, &app.admin, &tool.id, "Use test keys first.")
        .await
        .expect("guide v2");

    let listed = read_inbox(&app, &cookie).await["guide_suggestions"][0].clone();
    assert_eq!(listed["base_version"], 1);
    assert_eq!(listed["current_version"], 2);
    assert_eq!(listed["current_guide"], "Use test keys first.");
    let preview = guide_after(
        listed["current_guide"].as_str().expect("guide"),
        listed["learned"].as_str().expect("learned"),
    );
    assert_eq!(preview, "Use test keys first.\n\nAmounts are in cents.");

    guides::accept(
        &app.services,
        &app.admin,
        listed["id"].as_str().expect("id"),
        None,
    )
    .await
    .expect("accept");
    let fetched = json(app.fetch(&key, &tool.id).await).await;
    assert_eq!(fetched["instructions"], preview.as_str());
    assert_eq!(fetched["instructions_version"], 3);
}
