//! Each tool doing what its REST route does, the tool list following grants, shared rate
//! tiers, and subscriptions announcing changes.

use serde_json::{Value, json};

use super::common::json;
use super::common::upstream::Upstream;
use super::*;

#[tokio::test]
async fn initialize_negotiates_the_handshake_revisions_and_announces_tools_and_resources() {
    let app = app_with(&[]).await;
    let (_agent, key) = app.create_agent("mcp-init-bot").await;
    for version in ["2025-11-25", "2025-06-18"] {
        let body = json!({"jsonrpc": "2.0", "id": 1, "method": "initialize", "params": {
            "protocolVersion": version, "capabilities": {},
            "clientInfo": {"name": "test", "version": "1"}}});
        let (status, _, value) = post_raw(&app, Some(&key), None, body.to_string()).await;
        assert_eq!(status, 200, "{value}");
        let result = &value["result"];
        assert_eq!(result["protocolVersion"], version, "{value}");
        assert_eq!(result["serverInfo"]["name"], "agentkey");
        assert_eq!(result["capabilities"]["tools"]["listChanged"], true);
        assert!(result["capabilities"]["resources"].is_object());
        assert!(
            result["instructions"]
                .as_str()
                .is_some_and(|i| i.contains("list_tools"))
        );
    }
}

#[tokio::test]
async fn the_tool_list_follows_the_agents_grants_in_a_fixed_order_with_schemas() {
    let app = app_with(&[]).await;
    let upstream = Upstream::start().await;
    let (_agent, key) = app.create_agent("mcp-list-bot").await;
    assert_eq!(
        tool_names(&app, &key).await,
        ["list_tools", "request_access", "suggest_tool"],
        "without a grant only discovery and asking"
    );
    let fetched = app
        .create_shared_tool("GitHub", Some("github.com"), "ghp_mcp_list")
        .await;
    app.grant(&key, &fetched.id).await;
    assert_eq!(
        tool_names(&app, &key).await,
        [
            "list_tools",
            "request_access",
            "suggest_tool",
            "get_credential",
            "suggest_instructions"
        ]
    );
    let proxy = proxied(&app, &upstream).await;
    app.grant(&key, &proxy.id).await;
    let list = rpc(&app, &key, "tools/list", json!({})).await;
    let tools = list["result"]["tools"].as_array().expect("tools");
    let names: Vec<&str> = tools.iter().filter_map(|t| t["name"].as_str()).collect();
    assert_eq!(
        names,
        [
            "list_tools",
            "request_access",
            "suggest_tool",
            "get_credential",
            "call_tool_api",
            "suggest_instructions"
        ]
    );
    for tool in tools {
        assert_eq!(tool["inputSchema"]["type"], "object", "{tool}");
        assert_eq!(tool["outputSchema"]["type"], "object", "{tool}");
        assert!(tool["outputSchema"].get("$schema").is_none());
        assert!(!tool.to_string().contains("$ref"), "inline schemas: {tool}");
        for schema in ["inputSchema", "outputSchema"] {
            let properties = tool[schema]["properties"].as_object();
            assert!(
                properties.is_none_or(|p| p.values().all(Value::is_object)),
                "every property's schema is an object (clients refuse `true`): {tool}"
            );
        }
        assert!(tool["annotations"]["readOnlyHint"].is_boolean(), "{tool}");
        assert!(
            tool["annotations"]["destructiveHint"].is_boolean(),
            "{tool}"
        );
        assert!(tool["description"].as_str().is_some_and(|d| d.len() > 40));
    }
    let by_name = |n: &str| tools.iter().find(|t| t["name"] == n).expect("tool");
    assert_eq!(by_name("list_tools")["annotations"]["readOnlyHint"], true);
    assert_eq!(
        by_name("call_tool_api")["annotations"]["destructiveHint"],
        true
    );
    assert!(
        by_name("get_credential")["description"]
            .as_str()
            .is_some_and(|d| d.contains("enters this conversation"))
    );
    let input = &by_name("request_access")["inputSchema"];
    assert_eq!(input["required"], json!(["tool_id", "reason"]));
    let catalog = &by_name("list_tools")["outputSchema"]["properties"]["tools"]["items"];
    assert!(
        catalog["properties"]["your_access"]["enum"]
            .as_array()
            .is_some_and(|e| e.contains(&json!("expired"))),
        "{catalog}"
    );
}

#[tokio::test]
async fn each_tool_does_what_its_rest_route_does_and_the_secret_stays_out_of_proxied_answers() {
    let app = app_with(&[]).await;
    let upstream = Upstream::start().await;
    let (_agent, key) = app.create_agent("mcp-flow-bot").await;
    let proxy = proxied(&app, &upstream).await;
    let fetched = app
        .create_shared_tool("Linear", Some("linear.app"), "lin_mcp_secret")
        .await;

    let listed = call(&app, &key, "list_tools", json!({})).await;
    let entries = listed["structuredContent"]["tools"]
        .as_array()
        .expect("tools");
    assert_eq!(entries.len(), 2);
    assert!(entries.iter().all(|t| t["your_access"] == "none"));

    let asked = call(
        &app,
        &key,
        "request_access",
        json!({"tool_id": proxy.id, "reason": "Triage the open issues"}),
    )
    .await;
    assert_eq!(asked["isError"], false, "{asked}");
    let created = &asked["structuredContent"];
    assert_eq!(created["status"], "pending");
    let message = created["message"].as_str().expect("message");
    assert!(
        message.contains("list_tools") && message.contains(&proxy.id),
        "{message}"
    );
    assert_eq!(
        app.count("SELECT COUNT(*) FROM audit_log WHERE action = 'grant.requested'")
            .await,
        1
    );
    let again = refusal(
        &call(
            &app,
            &key,
            "request_access",
            json!({"tool_id": proxy.id, "reason": "Triage the open issues"}),
        )
        .await,
    );
    assert_eq!(again["status"], 409);
    assert_eq!(again["request_id"], created["request_id"]);

    app.approve(created["request_id"].as_str().expect("id"))
        .await;
    let answered = call(
        &app,
        &key,
        "call_tool_api",
        json!({"tool_id": proxy.id, "method": "get", "path": "/echo/issues",
               "query": {"state": "open", "page": 2},
               "headers": {"Authorization": "Bearer stolen", "X-Trace": "t-1",
                           "Content-Length": "0", "X-Forwarded-For": "203.0.113.9"}}),
    )
    .await;
    assert_eq!(answered["isError"], false, "{answered}");
    let answer = &answered["structuredContent"];
    assert_eq!(answer["status"], 200);
    let seen = upstream.seen();
    let last = seen.last().expect("the upstream was called");
    assert_eq!(last.method, "GET");
    assert_eq!(last.target, "/echo/issues?page=2&state=open");
    assert_eq!(
        last.header("authorization").as_deref(),
        Some(&*format!("Bearer {SECRET}"))
    );
    assert_eq!(last.header("x-trace").as_deref(), Some("t-1"));
    assert_eq!(
        app.count("SELECT COUNT(*) FROM audit_log WHERE ip = '203.0.113.9'")
            .await,
        0,
        "the model cannot choose the audited client address"
    );
    assert!(
        !last.all_headers().contains(&key),
        "the agent's key never goes upstream"
    );
    assert!(
        !answered.to_string().contains(SECRET),
        "the echo is redacted: {answered}"
    );
    assert!(answered.to_string().contains("[redacted]"));

    let posted = call(
        &app,
        &key,
        "call_tool_api",
        json!({"tool_id": proxy.id, "method": "POST", "path": "/echo", "body": {"title": "Bug"},
               "headers": {"Content-Length": "1"}}),
    )
    .await;
    assert_eq!(posted["structuredContent"]["status"], 200, "{posted}");
    let last = upstream.seen().pop().expect("posted");
    assert_eq!(
        last.body, br#"{"title":"Bug"}"#,
        "a model's Content-Length is ignored"
    );
    assert_eq!(
        last.header("content-type").as_deref(),
        Some("application/json")
    );

    let refused = refusal(&call(&app, &key, "get_credential", json!({"tool_id": proxy.id})).await);
    assert_eq!(refused["status"], 403, "a proxy-only tool is never fetched");
    assert!(
        refused["hint"]
            .as_str()
            .is_some_and(|h| h.contains("call_tool_api") && !h.contains("Authorization")),
        "the hint names the MCP tool, not the REST route: {refused}"
    );

    app.grant(&key, &fetched.id).await;
    let credential = call(&app, &key, "get_credential", json!({"tool_id": fetched.id})).await;
    assert_eq!(
        credential["structuredContent"]["credential"],
        "lin_mcp_secret"
    );
    let logs = super::common::captured_logs();
    assert!(
        !logs.contains("lin_mcp_secret") && !logs.contains(SECRET),
        "no secret in the logs, even at debug (the SDK logs results there)"
    );
    assert_eq!(
        app.count("SELECT COUNT(*) FROM audit_log WHERE action = 'credential.vended'")
            .await,
        1,
        "the fetch is audited as on REST"
    );

    let guides = rpc(&app, &key, "resources/list", json!({})).await;
    let uris: Vec<&str> = guides["result"]["resources"]
        .as_array()
        .expect("resources")
        .iter()
        .filter_map(|r| r["uri"].as_str())
        .collect();
    let linear_guide = format!("agentkey://tools/{}/guide", fetched.id);
    assert!(uris.contains(&linear_guide.as_str()), "{uris:?}");
    let read = rpc(&app, &key, "resources/read", json!({"uri": linear_guide})).await;
    assert_eq!(
        read["result"]["contents"][0]["text"], "Use Linear carefully.",
        "{read}"
    );
    assert!(!read.to_string().contains("lin_mcp_secret"));

    let suggested = call(
        &app,
        &key,
        "suggest_tool",
        json!({"name": "Notion", "url": "notion.so", "reason": "Team docs live there"}),
    )
    .await;
    assert_eq!(
        suggested["structuredContent"]["status"], "pending",
        "{suggested}"
    );
    let learned = call(
        &app,
        &key,
        "suggest_instructions",
        json!({"tool_id": fetched.id, "learned": "Use the GraphQL API", "why": "REST is gone"}),
    )
    .await;
    assert_eq!(learned["isError"], false, "{learned}");

    let request_id = created["request_id"].as_str().expect("id").to_owned();
    grants::revoke(
        &app.services,
        &app.admin,
        &request_id,
        Some("Project ended"),
    )
    .await
    .expect("revoke");
    let after = refusal(
        &call(
            &app,
            &key,
            "call_tool_api",
            json!({"tool_id": proxy.id, "method": "GET", "path": "/echo"}),
        )
        .await,
    );
    assert_eq!(after["status"], 403);
    assert_eq!(after["revocation_reason"], "Project ended");
    let read = rpc(
        &app,
        &key,
        "resources/read",
        json!({"uri": format!("agentkey://tools/{}/guide", proxy.id)}),
    )
    .await;
    assert!(
        read["error"].is_object(),
        "a revoked tool's guide is refused: {read}"
    );
}

#[tokio::test]
async fn mcp_and_rest_share_the_agents_rate_tiers() {
    let app = app_with(&[("AGENTKEY_RATE_LIMITS", "request=2/h,credential=1/m")]).await;
    let (_agent, key) = app.create_agent("mcp-rate-bot").await;
    let a = app
        .create_shared_tool("Figma", Some("figma.com"), "fig_rate")
        .await;
    let b = app
        .create_shared_tool("Miro", Some("miro.com"), "miro_rate")
        .await;
    let c = app
        .create_shared_tool("Asana", Some("asana.com"), "asana_rate")
        .await;
    let rest = app
        .post(
            &format!("/api/tools/{}/request", a.id),
            &key,
            json!({"reason": "Design review"}),
        )
        .await;
    assert_eq!(rest.status(), 201);
    let first = json(rest).await["request_id"]
        .as_str()
        .expect("request id")
        .to_owned();
    let ok = call(
        &app,
        &key,
        "request_access",
        json!({"tool_id": b.id, "reason": "Boards"}),
    )
    .await;
    assert_eq!(ok["isError"], false, "{ok}");
    let limited = refusal(
        &call(
            &app,
            &key,
            "request_access",
            json!({"tool_id": c.id, "reason": "Tasks"}),
        )
        .await,
    );
    assert_eq!(limited["status"], 429, "{limited}");
    assert!(
        limited["retry_after_seconds"]
            .as_i64()
            .is_some_and(|s| s > 0)
    );

    app.approve(&first).await;
    let fetched = call(&app, &key, "get_credential", json!({"tool_id": a.id})).await;
    assert_eq!(fetched["isError"], false, "{fetched}");
    let rest = app.fetch(&key, &a.id).await;
    assert_eq!(
        rest.status(),
        429,
        "the MCP fetch spent the credential tier"
    );
}

#[tokio::test]
async fn a_2026_subscription_announces_tool_list_changes_when_a_grant_changes_what_the_agent_can_use()
 {
    let app = app_with(&[]).await;
    let (_agent, key) = app.create_agent("mcp-listen-bot").await;
    let tool = app
        .create_shared_tool("Datadog", Some("datadoghq.com"), "dd_listen")
        .await;
    let mut res = listen(&app, &key).await;
    assert_eq!(res.status(), 200);
    let ack = read_until(&mut res, "notifications/subscriptions/acknowledged", 5).await;
    assert!(ack.contains("toolsListChanged"), "{ack}");

    // Another agent's grant first: it changes nothing this agent can use.
    let (_other, other_key) = app.create_agent("mcp-listen-other").await;
    app.grant(&other_key, &tool.id).await;
    let request_id = app.request_access(&key, &tool.id).await;
    app.approve(&request_id).await;
    let mut seen = read_until(&mut res, "notifications/tools/list_changed", 5).await;
    assert!(seen.contains("notifications/tools/list_changed"), "{seen}");
    if !seen.contains("notifications/resources/list_changed") {
        seen.push_str(&read_until(&mut res, "notifications/resources/list_changed", 5).await);
    }
    assert!(
        seen.contains("notifications/resources/list_changed"),
        "the new grant's guide is a new resource: {seen}"
    );
    assert_eq!(
        seen.matches("notifications/tools/list_changed").count(),
        1,
        "announced once: {seen}"
    );
}

#[tokio::test]
async fn an_agent_holds_at_most_four_subscriptions_at_once() {
    let app = app_with(&[]).await;
    let (_agent, key) = app.create_agent("mcp-streams-bot").await;
    let mut open = Vec::new();
    for _ in 0..4 {
        let mut res = listen(&app, &key).await;
        let ack = read_until(&mut res, "notifications/subscriptions/acknowledged", 5).await;
        assert!(ack.contains("acknowledged"), "{ack}");
        open.push(res);
    }
    let mut fifth = listen(&app, &key).await;
    let refused = read_until(&mut fifth, "At most", 5).await;
    assert!(refused.contains("At most 4 subscriptions"), "{refused}");
    drop(open.pop());
    // The dropped stream's slot is given back once the server sees it closed.
    let mut again = String::new();
    for _ in 0..50 {
        let mut res = listen(&app, &key).await;
        again = read_until_any(&mut res, &["At most", "acknowledged"], 5).await;
        if !again.contains("At most") {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(20)).await;
    }
    assert!(again.contains("acknowledged"), "{again}");
}
