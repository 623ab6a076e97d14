//! The protocol's revisions and refusals: the stateless 2026-07-28 revision, malformed
//! JSON-RPC, batches, unknown methods and tools, oversize messages, keys and origins.

use serde_json::json;

use super::common::json;
use super::*;

#[tokio::test]
async fn the_stateless_2026_07_28_revision_lists_and_calls_without_a_handshake() {
    let app = app_with(&[]).await;
    let (_agent, key) = app.create_agent("mcp-2026-bot").await;
    let tool = app
        .create_shared_tool("Sentry", Some("sentry.io"), "sntrys_2026")
        .await;
    let (status, listed) = stateless(&app, &key, "tools/list", json!({})).await;
    assert_eq!(status, 200, "{listed}");
    let names: Vec<&str> = listed["result"]["tools"]
        .as_array()
        .expect("tools")
        .iter()
        .filter_map(|t| t["name"].as_str())
        .collect();
    assert_eq!(names, ["list_tools", "request_access", "suggest_tool"]);
    assert_eq!(
        listed["result"]["cacheScope"], "private",
        "the list is per agent"
    );
    let (status, asked) = stateless(
        &app,
        &key,
        "tools/call",
        json!({"name": "request_access", "arguments": {"tool_id": tool.id, "reason": "Read the error reports"}}),
    )
    .await;
    assert_eq!(status, 200, "{asked}");
    assert_eq!(
        asked["result"]["structuredContent"]["status"], "pending",
        "{asked}"
    );
}

#[tokio::test]
async fn malformed_json_rpc_batches_unknown_methods_and_tools_get_clear_errors_never_a_500() {
    let app = app_with(&[]).await;
    let (_agent, key) = app.create_agent("mcp-bad-bot").await;
    let cases: Vec<(&str, String, u16, i64)> = vec![
        ("malformed", "{\"jsonrpc\":".into(), 400, -32700),
        (
            "not json-rpc",
            json!({"id": 1, "method": "ping"}).to_string(),
            400,
            -32600,
        ),
        (
            "array batch",
            json!([{"jsonrpc": "2.0", "id": 1, "method": "ping"}]).to_string(),
            400,
            -32600,
        ),
        ("scalar", "42".into(), 400, -32600),
        (
            "object id",
            json!({"jsonrpc": "2.0", "id": {"a": 1}, "method": "ping"}).to_string(),
            400,
            -32600,
        ),
        (
            "params of the wrong type",
            json!({"jsonrpc": "2.0", "id": 3, "method": "tools/call", "params": 5}).to_string(),
            400,
            -32600,
        ),
        (
            "unknown method",
            json!({"jsonrpc": "2.0", "id": 2, "method": "admin/dump"}).to_string(),
            200,
            -32601,
        ),
        (
            "unknown tool",
            json!({"jsonrpc": "2.0", "id": 5, "method": "tools/call", "params": {"name": "rm_rf"}})
                .to_string(),
            200,
            -32602,
        ),
    ];
    for (name, body, status, code) in cases {
        let (got, _, value) = post_raw(&app, Some(&key), Some("2025-11-25"), body).await;
        assert_eq!(got, status, "{name}: {value}");
        assert_eq!(value["jsonrpc"], "2.0", "{name}: {value}");
        assert_eq!(value["error"]["code"], code, "{name}: {value}");
        let message = value["error"]["message"].as_str().expect("message");
        assert!(message.len() > 5, "{name}: {value}");
    }
    let (_, _, value) = post_raw(
        &app,
        Some(&key),
        Some("2025-11-25"),
        json!({"jsonrpc": "2.0", "id": 5, "method": "tools/call", "params": {"name": "rm_rf"}})
            .to_string(),
    )
    .await;
    assert!(
        value["error"]["message"]
            .as_str()
            .is_some_and(|m| m.contains("list_tools")),
        "an unknown tool's error names the real ones: {value}"
    );
    let huge = json!({"jsonrpc": "2.0", "id": 6, "method": "tools/call", "params": {
        "name": "request_access",
        "arguments": {"tool_id": "x", "reason": "r".repeat(2 * 1024 * 1024)}}});
    let (status, _, value) = post_raw(&app, Some(&key), None, huge.to_string()).await;
    assert_eq!(status, 413, "{value}");
    assert_eq!(value["error"]["code"], -32600);

    let res = app
        .client
        .post(app.url("/mcp"))
        .bearer_auth(&key)
        .header("content-type", "application/json")
        .body(json!({"jsonrpc": "2.0", "id": 4, "method": "ping"}).to_string())
        .send()
        .await
        .expect("send");
    assert_eq!(res.status(), 406);
    let body = json(res).await;
    assert!(
        body["error"]["message"]
            .as_str()
            .is_some_and(|m| m.contains("Accept"))
    );
    let res = app
        .client
        .get(app.url("/mcp"))
        .bearer_auth(&key)
        .send()
        .await
        .expect("get");
    assert_eq!(res.status(), 405);
    assert_eq!(res.headers()["allow"], "POST");

    // Tool arguments are checked field by field, as REST bodies are.
    let result = call(&app, &key, "request_access", json!({"reason": 5})).await;
    let body = refusal(&result);
    assert_eq!(body["status"], 400);
    let fields: Vec<&str> = body["details"]
        .as_array()
        .expect("details")
        .iter()
        .filter_map(|d| d["field"].as_str())
        .collect();
    assert_eq!(fields, ["tool_id", "reason"]);
    let unknown = refusal(
        &call(
            &app,
            &key,
            "request_access",
            json!({"tool_id": uuid::Uuid::now_v7().to_string(), "reason": "Need it today"}),
        )
        .await,
    );
    assert_eq!(unknown["status"], 404, "{unknown}");
    let api = refusal(
        &call(
            &app,
            &key,
            "call_tool_api",
            json!({"tool_id": "../../etc", "method": "GET", "path": "/x"}),
        )
        .await,
    );
    assert_eq!(api["status"], 404);
    let bad_path = refusal(
        &call(
            &app,
            &key,
            "call_tool_api",
            json!({"tool_id": uuid::Uuid::now_v7().to_string(), "method": "GET", "path": "x?y=1"}),
        )
        .await,
    );
    assert_eq!(bad_path["status"], 400, "{bad_path}");
    assert_eq!(
        app.count("SELECT COUNT(*) FROM access_requests").await,
        0,
        "nothing was written"
    );
}

#[tokio::test]
async fn missing_wrong_and_suspended_keys_and_foreign_origins_are_refused_before_any_tool() {
    let app = app_with(&[]).await;
    let (agent, key) = app.create_agent("mcp-auth-bot").await;
    let tool = app
        .create_shared_tool("Stripe", Some("stripe.com"), "sk_live_mcp_auth")
        .await;
    app.grant(&key, &tool.id).await;
    let fetch = json!({"jsonrpc": "2.0", "id": 1, "method": "tools/call",
        "params": {"name": "get_credential", "arguments": {"tool_id": tool.id}}})
    .to_string();
    let (status, headers, body) = post_raw(&app, None, None, fetch.clone()).await;
    assert_eq!(status, 401, "{body}");
    assert!(
        headers["www-authenticate"]
            .to_str()
            .expect("ascii")
            .starts_with("Bearer")
    );
    assert!(
        body["hint"]
            .as_str()
            .is_some_and(|h| h.contains("AGENTKEY_API_KEY"))
    );
    let wrong = format!("ak_{}", "0".repeat(40));
    let (status, _, body) = post_raw(&app, Some(&wrong), None, fetch.clone()).await;
    assert_eq!(status, 401, "{body}");

    let res = app
        .client
        .post(app.url("/mcp"))
        .bearer_auth(&key)
        .header("content-type", "application/json")
        .header("accept", "application/json, text/event-stream")
        .header("origin", "https://evil.example")
        .body(fetch.clone())
        .send()
        .await
        .expect("send");
    assert_eq!(res.status(), 403);
    assert!(!res.text().await.expect("body").contains("sk_live_mcp_auth"));

    agents::set_status(
        &app.services,
        &app.admin,
        &agent.id,
        AgentStatus::Suspended,
        None,
    )
    .await
    .expect("suspend");
    let (status, _, body) = post_raw(&app, Some(&key), None, fetch).await;
    assert_eq!(status, 403, "{body}");
    assert!(!body.to_string().contains("sk_live_mcp_auth"));
    assert_eq!(
        app.count("SELECT COUNT(*) FROM audit_log WHERE action = 'credential.vended'")
            .await,
        0,
        "no refused call vended anything"
    );
    let logs = common::captured_logs();
    assert!(
        !logs.contains("sk_live_mcp_auth"),
        "the secret is in no log"
    );
    assert!(!logs.contains(&key), "the key is in no log");
}

#[tokio::test]
async fn the_protocols_list_methods_spend_the_read_tier_like_the_catalog_route() {
    let app = app_with(&[("AGENTKEY_RATE_LIMITS", "read=2/m")]).await;
    let (_agent, key) = app.create_agent("mcp-read-bot").await;
    let _ = rpc(&app, &key, "tools/list", json!({})).await;
    let rest = app.get("/api/tools", &key).await;
    assert_eq!(rest.status(), 200);
    let limited = rpc(&app, &key, "resources/list", json!({})).await;
    let error = &limited["error"];
    assert_eq!(error["data"]["status"], 429, "{limited}");
    assert!(
        error["data"]["retry_after_seconds"]
            .as_i64()
            .is_some_and(|s| s > 0)
    );
    assert!(
        error["message"]
            .as_str()
            .is_some_and(|m| m.contains("Rate limit"))
    );
}
