//! The MCP endpoint at the protocol level, over real HTTP: the handshake revisions, the tool
//! list following the agent's grants, each tool doing what its REST route does (same tiers,
//! audit rows and refusals), the stateless 2026-07-28 revision, and bad input (no key, wrong
//! key, suspended agent, unknown tool, oversize, malformed JSON-RPC, unknown method, batches)
//! answered without a 500 and without a secret. The flow through an official SDK client is
//! in end2end/tests/mcp.test.mjs. Helpers here; the tools' flow in `flow.rs`, the protocol's
//! revisions and refusals in `protocol.rs`.

#[path = "../common/mod.rs"]
mod common;
mod flow;
mod protocol;

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

/// Reads an event stream until `needle` arrives (bounded by `secs`); returns what was read.
async fn read_until(res: &mut reqwest::Response, needle: &str, secs: u64) -> String {
    read_until_any(res, &[needle], secs).await
}

/// Reads an event stream until one of `needles` arrives (bounded by `secs`).
async fn read_until_any(res: &mut reqwest::Response, needles: &[&str], secs: u64) -> String {
    let mut seen = String::new();
    let deadline = tokio::time::Instant::now() + std::time::Duration::from_secs(secs);
    while !needles.iter().any(|n| seen.contains(n)) {
        match tokio::time::timeout_at(deadline, res.chunk()).await {
            Ok(Ok(Some(chunk))) => seen.push_str(&String::from_utf8_lossy(&chunk)),
            _ => break,
        }
    }
    seen
}

/// Opens a 2026-07-28 `subscriptions/listen` stream for tool and resource list changes.
async fn listen(app: &TestApp, key: &str) -> reqwest::Response {
    let body = json!({"jsonrpc": "2.0", "id": 9, "method": "subscriptions/listen", "params": {
        "_meta": {
            "io.modelcontextprotocol/protocolVersion": "2026-07-28",
            "io.modelcontextprotocol/clientCapabilities": {},
        },
        "notifications": {"toolsListChanged": true, "resourcesListChanged": true},
    }});
    app.client
        .post(app.url("/mcp"))
        .bearer_auth(key)
        .header("content-type", "application/json")
        .header("accept", "application/json, text/event-stream")
        .header("mcp-protocol-version", "2026-07-28")
        .header("mcp-method", "subscriptions/listen")
        .body(body.to_string())
        .send()
        .await
        .expect("listen")
}
