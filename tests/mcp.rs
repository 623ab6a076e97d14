//! The MCP endpoint at the protocol level, over real HTTP: the handshake revisions, the tool
//! list following the agent's grants, each tool doing what its REST route does (same tiers,
//! audit rows and refusals), the stateless 2026-07-28 revision, and bad input (no key, wrong
//! key, suspended agent, unknown tool, oversize, malformed JSON-RPC, unknown method, batches)
//! answered without a 500 and without a secret. The flow through an official SDK client is
//! in end2end/tests/mcp.test.mjs.

mod common;

use app::model::{AgentStatus, Delivery, ProxySettings, ToolView};
use app::server::service::{agents, grants, tools};
use common::upstream::Upstream;
use common::{TestApp, json, spawn_app_with};
use serde_json::{Value, json};

const SECRET: &str = "mcp-s3cret-0123456789";
const LOOPBACK: (&str, &str) = ("AGENTKEY_TEST_LOOPBACK_UPSTREAMS", "1");

async fn app_with(extra: &[(&str, &str)]) -> TestApp {
    let mut vars = vec![LOOPBACK];
    vars.extend_from_slice(extra);
    spawn_app_with(&vars).await
}

/// POSTs one message to `/mcp` as an MCP client does; returns the status and JSON body.
async fn post_raw(
    app: &TestApp,
    key: Option<&str>,
    version: Option<&str>,
    body: String,
) -> (u16, reqwest::header::HeaderMap, Value) {
    let mut req = app
        .client
        .post(app.url("/mcp"))
        .header("content-type", "application/json")
        .header("accept", "application/json, text/event-stream")
        .body(body);
    if let Some(key) = key {
        req = req.bearer_auth(key);
    }
    if let Some(version) = version {
        req = req.header("mcp-protocol-version", version);
    }
    let res = req.send().await.expect("mcp post");
    let status = res.status().as_u16();
    let headers = res.headers().clone();
    let text = res.text().await.expect("body");
    let value = serde_json::from_str(&text).unwrap_or(Value::String(text));
    (status, headers, value)
}

async fn rpc(app: &TestApp, key: &str, method: &str, params: Value) -> Value {
    let body = json!({"jsonrpc": "2.0", "id": 7, "method": method, "params": params});
    let (status, _, value) = post_raw(app, Some(key), Some("2025-11-25"), body.to_string()).await;
    assert_eq!(status, 200, "{method}: {value}");
    assert_eq!(value["id"], 7, "{value}");
    value
}

/// `tools/call`; returns the result object.
async fn call(app: &TestApp, key: &str, tool: &str, args: Value) -> Value {
    let value = rpc(
        app,
        key,
        "tools/call",
        json!({"name": tool, "arguments": args}),
    )
    .await;
    value["result"].clone()
}

/// The JSON error body of a tool error.
fn refusal(result: &Value) -> Value {
    assert_eq!(result["isError"], true, "a tool error: {result}");
    let text = result["content"][0]["text"].as_str().expect("text");
    serde_json::from_str(text).expect("the REST error body")
}

async fn tool_names(app: &TestApp, key: &str) -> Vec<String> {
    rpc(app, key, "tools/list", json!({})).await["result"]["tools"]
        .as_array()
        .expect("tools")
        .iter()
        .map(|t| t["name"].as_str().expect("name").to_owned())
        .collect()
}

async fn proxied(app: &TestApp, upstream: &Upstream) -> ToolView {
    let input = tools::NewTool {
        delivery: Some(Delivery::Proxy),
        proxy: ProxySettings {
            upstream_url: Some(upstream.base()),
            inject: None,
            allow: Vec::new(),
            calls_per_day: None,
        },
        ..tools::NewTool::shared("Upstream API", "proxied for MCP tests", SECRET)
    };
    tools::create(&app.services, &app.admin, input)
        .await
        .expect("proxied tool")
        .tool
}

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
               "headers": {"Authorization": "Bearer stolen", "X-Trace": "t-1"}}),
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
        json!({"tool_id": proxy.id, "method": "POST", "path": "/echo", "body": {"title": "Bug"}}),
    )
    .await;
    assert_eq!(posted["structuredContent"]["status"], 200, "{posted}");
    let last = upstream.seen().pop().expect("posted");
    assert_eq!(last.body, br#"{"title":"Bug"}"#);
    assert_eq!(
        last.header("content-type").as_deref(),
        Some("application/json")
    );

    let refused = refusal(&call(&app, &key, "get_credential", json!({"tool_id": proxy.id})).await);
    assert_eq!(refused["status"], 403, "a proxy-only tool is never fetched");
    assert!(refused["hint"].as_str().is_some());

    app.grant(&key, &fetched.id).await;
    let credential = call(&app, &key, "get_credential", json!({"tool_id": fetched.id})).await;
    assert_eq!(
        credential["structuredContent"]["credential"],
        "lin_mcp_secret"
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

/// A `tools/list` or `tools/call` of the stateless 2026-07-28 revision: no handshake, the
/// revision in `_meta` and in the headers.
async fn stateless(app: &TestApp, key: &str, method: &str, mut params: Value) -> (u16, Value) {
    params["_meta"] = json!({
        "io.modelcontextprotocol/protocolVersion": "2026-07-28",
        "io.modelcontextprotocol/clientCapabilities": {},
    });
    let mut req = app
        .client
        .post(app.url("/mcp"))
        .bearer_auth(key)
        .header("content-type", "application/json")
        .header("accept", "application/json, text/event-stream")
        .header("mcp-protocol-version", "2026-07-28")
        .header("mcp-method", method);
    if let Some(name) = params["name"].as_str() {
        req = req.header("mcp-name", name);
    }
    let res = req
        .body(json!({"jsonrpc": "2.0", "id": 1, "method": method, "params": params}).to_string())
        .send()
        .await
        .expect("send");
    let status = res.status().as_u16();
    (status, json(res).await)
}

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

/// Reads an event stream until `needle` arrives (bounded by `secs`); returns what was read.
async fn read_until(res: &mut reqwest::Response, needle: &str, secs: u64) -> String {
    let mut seen = String::new();
    let deadline = tokio::time::Instant::now() + std::time::Duration::from_secs(secs);
    while !seen.contains(needle) {
        match tokio::time::timeout_at(deadline, res.chunk()).await {
            Ok(Ok(Some(chunk))) => seen.push_str(&String::from_utf8_lossy(&chunk)),
            _ => break,
        }
    }
    seen
}

#[tokio::test]
async fn a_2026_subscription_announces_tool_list_changes_when_a_grant_changes_what_the_agent_can_use()
 {
    let app = app_with(&[]).await;
    let (_agent, key) = app.create_agent("mcp-listen-bot").await;
    let tool = app
        .create_shared_tool("Datadog", Some("datadoghq.com"), "dd_listen")
        .await;
    let body = json!({"jsonrpc": "2.0", "id": 9, "method": "subscriptions/listen", "params": {
        "_meta": {
            "io.modelcontextprotocol/protocolVersion": "2026-07-28",
            "io.modelcontextprotocol/clientCapabilities": {},
        },
        "notifications": {"toolsListChanged": true, "resourcesListChanged": true},
    }});
    let mut res = app
        .client
        .post(app.url("/mcp"))
        .bearer_auth(&key)
        .header("content-type", "application/json")
        .header("accept", "application/json, text/event-stream")
        .header("mcp-protocol-version", "2026-07-28")
        .header("mcp-method", "subscriptions/listen")
        .body(body.to_string())
        .send()
        .await
        .expect("listen");
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
