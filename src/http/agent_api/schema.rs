//! Schema discovery (`GET` on each POST route, no auth) and the OpenAPI 3.1 document, both
//! built from one description of each body so they cannot drift apart.

use axum::Json;
use serde_json::{Value, json};

/// One body field: name, required, min/max length, description, example.
struct Field(&'static str, bool, usize, usize, &'static str, &'static str);

struct Route {
    path: &'static str,
    summary: &'static str,
    fields: &'static [Field],
    created: &'static str,
    conflicts: &'static str,
}

const REQUEST: Route = Route {
    path: "/api/tools/{tool_id}/request",
    summary: "Ask a human for access to a catalog tool.",
    fields: &[
        Field(
            "reason",
            true,
            5,
            500,
            "Why you need the tool, for the reviewer.",
            "Open pull requests for the v2 release",
        ),
        Field(
            "duration",
            false,
            2,
            8,
            "How long you need access: 30m, 8h, 7d (1 minute to 365 days) or standing; the tool's default when absent. A tool may cap it.",
            "8h",
        ),
    ],
    created: "Request recorded: {request_id, status: \"pending\", renewal, grant_expires_at, message}. Asked again inside the last quarter (at most the last day) of a time-bound grant, it is a renewal of that grant (`renewal: true`, the grant's id): the grant keeps working while a human decides.",
    conflicts: "You already have a pending request, a waiting renewal, or access that is not yet renewable (`grant_expires_at`, `renewal_opens_at` say when).",
};

const SUGGEST: Route = Route {
    path: "/api/tools/suggest",
    summary: "Propose a tool that is not in the catalog; when it is added you get a pending request.",
    fields: &[
        Field("name", true, 2, 120, "The tool's name.", "Linear"),
        Field(
            "url",
            false,
            0,
            500,
            "Product URL or bare domain (identifies the tool).",
            "linear.app",
        ),
        Field(
            "reason",
            true,
            5,
            500,
            "Why you need it.",
            "Triage the release bugs",
        ),
    ],
    created: "Suggestion recorded or backed: {suggestion_id, status, existing, message}.",
    conflicts: "The tool already exists (tool_id given), or it was dismissed recently (retry_after given).",
};

const GUIDE: Route = Route {
    path: "/api/tools/{tool_id}/instructions/suggest",
    summary: "Propose a fact for the tool's usage guide (only with approved access).",
    fields: &[
        Field(
            "learned",
            true,
            5,
            2000,
            "The fact the next agent should know.",
            "Use the v2 endpoint; v1 is rate limited to 10/min",
        ),
        Field(
            "why",
            true,
            5,
            2000,
            "How you learned it.",
            "v1 returned 429 after ten calls",
        ),
    ],
    created: "Suggestion recorded or backed: {suggestion_id, status, existing, message}.",
    conflicts: "This fact was already dismissed or accepted for the current guide.",
};

fn schema_of(route: &Route) -> Value {
    let body: serde_json::Map<String, Value> = route
        .fields
        .iter()
        .map(|Field(name, required, min, max, description, example)| {
            (
                (*name).to_owned(),
                json!({
                    "type": "string", "required": required, "min_length": min, "max_length": max,
                    "description": description, "example": example,
                }),
            )
        })
        .collect();
    json!({
        "schema": {
            "method": "POST",
            "path": route.path,
            "description": route.summary,
            "content_type": "application/json",
            "max_body_bytes": crate::http::body::MAX_BODY,
            "body": body,
            "responses": {
                "201": route.created,
                "400": "Malformed JSON or invalid fields ({error, hint, details: [{field, message}]}).",
                "401": "Missing or unknown bearer key.",
                "403": "Agent suspended (or, for guide facts, no approved access).",
                "404": "Tool id unknown in your organization, or not a valid identifier.",
                "409": route.conflicts,
                "413": "Body larger than 8 KiB.",
                "415": "Content-Type is not application/json.",
                "429": "Rate limit reached; wait Retry-After seconds.",
            },
        }
    })
}

pub async fn request() -> Json<Value> {
    Json(schema_of(&REQUEST))
}

pub async fn suggest() -> Json<Value> {
    Json(schema_of(&SUGGEST))
}

pub async fn guide() -> Json<Value> {
    Json(schema_of(&GUIDE))
}

fn body_schema(route: &Route) -> Value {
    let properties: serde_json::Map<String, Value> = route
        .fields
        .iter()
        .map(|Field(name, _, min, max, description, example)| {
            ((*name).to_owned(), json!({ "type": "string", "minLength": min, "maxLength": max, "description": description, "examples": [example] }))
        })
        .collect();
    let required: Vec<&str> = route.fields.iter().filter(|f| f.1).map(|f| f.0).collect();
    json!({ "type": "object", "properties": properties, "required": required })
}

/// A success answer whose body is `schema` (a `$ref` into the generated components).
fn ok(description: &str, schema: &Value) -> Value {
    json!({ "description": description, "content": { "application/json": { "schema": schema } } })
}

/// The success bodies, generated from the Rust types the handlers return (so the document
/// cannot drift from the answers): a `$ref` for each, and the component schemas.
struct Bodies {
    tools: Value,
    me: Value,
    request: Value,
    suggestion: Value,
    credential: Value,
    components: serde_json::Map<String, Value>,
}

fn bodies() -> Bodies {
    use app::model::{CredentialResponse, Me, RequestCreated, SuggestionCreated, ToolList};
    let mut generator = schemars::generate::SchemaSettings::draft2020_12()
        .with(|s| {
            s.definitions_path = "/components/schemas".into();
            s.meta_schema = None;
        })
        .for_serialize()
        .into_generator();
    let tools = generator.subschema_for::<ToolList>().to_value();
    let me = generator.subschema_for::<Me>().to_value();
    let request = generator.subschema_for::<RequestCreated>().to_value();
    let suggestion = generator.subschema_for::<SuggestionCreated>().to_value();
    let credential = generator.subschema_for::<CredentialResponse>().to_value();
    Bodies {
        tools,
        me,
        request,
        suggestion,
        credential,
        components: generator.take_definitions(true),
    }
}

fn error_ref(description: &str) -> Value {
    json!({ "description": description, "content": { "application/json": { "schema": { "$ref": "#/components/schemas/Error" } } } })
}

fn post_op(route: &Route, created: &Value) -> Value {
    json!({
        "summary": route.summary,
        "security": [{ "bearer": [] }],
        "requestBody": { "required": true, "content": { "application/json": { "schema": body_schema(route) } } },
        "responses": {
            "201": ok(route.created, created),
            "400": error_ref("Malformed JSON or invalid fields."),
            "401": error_ref("Missing or unknown key."),
            "403": error_ref("Suspended or not allowed."),
            "404": error_ref("Unknown tool."),
            "409": error_ref(route.conflicts),
            "413": error_ref("Body too large."),
            "415": error_ref("Not JSON."),
            "429": error_ref("Rate limited; see Retry-After."),
        }
    })
}

/// The proxy route: every method, the upstream's answer passed through.
fn proxy_path() -> Value {
    let op = |method: &str| {
        json!({
            "summary": format!("{method} through the proxy: forwarded to the tool's upstream base URL + path + query, with the tool's credential injected (you never receive it)."),
            "description": "Use for tools whose catalog entry has delivery `proxy` or `both` (see its `proxy_url` and `proxy_rules`). Your Authorization, cookies, Proxy-* and hop-by-hop headers are not forwarded; an injected header cannot be overridden. Paths with `..`, encoded slashes, dots or percent signs, `//`, backslashes or control characters are refused before anything is sent. Redirects are returned, not followed. Echoes of the secret in the answer are replaced by [redacted].",
            "responses": {
                "default": { "description": "The upstream's status, headers (minus hop-by-hop ones and Set-Cookie) and body, streamed." },
                "400": error_ref("The path or query is refused (nothing was sent)."),
                "401": error_ref("Missing or unknown key."),
                "403": error_ref("Not approved, suspended, a fetch-only tool, or a call outside the rules your grant allows (the hint lists them)."),
                "404": error_ref("Unknown tool."),
                "409": error_ref("The tool has no secret or upstream configured yet."),
                "413": error_ref("Request body over the proxy's cap."),
                "429": error_ref("Rate limited, or the grant's calls-per-day budget is spent; see Retry-After."),
                "502": error_ref("The upstream is down, refused (not a public https address), compressed, or its answer is too large."),
                "504": error_ref("The upstream did not answer in time."),
            }
        })
    };
    let mut item = json!({ "parameters": [
        { "name": "tool_id", "in": "path", "required": true, "schema": { "type": "string", "format": "uuid" } },
        { "name": "path", "in": "path", "required": true, "description": "The upstream API's path (several segments).", "schema": { "type": "string" } },
    ] });
    for method in ["get", "head", "post", "put", "patch", "delete", "options"] {
        item[method] = op(&method.to_ascii_uppercase());
    }
    item
}

fn schema_op() -> Value {
    json!({ "summary": "JSON schema of the POST body (no auth).", "security": [], "responses": { "200": { "description": "{schema: {...}}" } } })
}

fn tool_id_param() -> Value {
    json!([{ "name": "tool_id", "in": "path", "required": true, "schema": { "type": "string", "format": "uuid" } }])
}

/// `GET /api/openapi.json`, built once.
pub async fn openapi() -> Json<Value> {
    static DOCUMENT: std::sync::LazyLock<Value> = std::sync::LazyLock::new(document);
    Json(DOCUMENT.clone())
}

fn document() -> Value {
    let Bodies {
        tools,
        me,
        request,
        suggestion,
        credential,
        mut components,
    } = bodies();
    components.insert(
        "Error".into(),
        json!({ "type": "object", "required": ["error"], "properties": {
            "error": { "type": "string" }, "hint": { "type": "string" },
            "details": { "type": "array", "items": { "type": "object", "properties": { "field": { "type": "string" }, "message": { "type": "string" } } } } } }),
    );
    json!({
        "openapi": "3.1.0",
        "info": { "title": "AgentKey agent API", "version": env!("CARGO_PKG_VERSION"),
                  "description": "Agents list the catalog, request access or suggest tools, and fetch approved credentials or call approved tools through the proxy without seeing their secret. The same steps are MCP tools at POST /mcp." },
        "components": {
            "securitySchemes": { "bearer": { "type": "http", "scheme": "bearer", "description": "The agent's ak_ key." } },
            "schemas": components,
        },
        "security": [{ "bearer": [] }],
        "paths": {
            "/api/tools": { "get": { "summary": "The catalog with your access to each tool.", "responses": {
                "200": ok("The catalog; `your_access` is none, pending, approved, denied, revoked or expired.", &tools),
                "401": error_ref("Missing or unknown key."), "403": error_ref("Suspended."), "429": error_ref("Rate limited.") } } },
            "/api/me": { "get": { "summary": "Your identity and access summary.", "responses": {
                "200": ok("Who you are and what you hold.", &me),
                "401": error_ref("Missing or unknown key."), "403": error_ref("Suspended."), "429": error_ref("Rate limited.") } } },
            "/api/tools/suggest": { "get": schema_op(), "post": post_op(&SUGGEST, &suggestion) },
            "/api/tools/{tool_id}/request": { "parameters": tool_id_param(), "get": schema_op(), "post": post_op(&REQUEST, &request) },
            "/api/tools/{tool_id}/credentials": { "parameters": tool_id_param(), "get": {
                "summary": "The credential and usage guide (only with approved access). Sent with Cache-Control: no-store.",
                "responses": {
                    "200": ok("The credential (a string, or a JSON object for multi-part secrets) and the usage guide.", &credential),
                    "401": error_ref("Missing or unknown key."), "403": error_ref("Not approved (your_access says why, with denial_reason or revocation_reason), suspended, a proxy-only tool (the hint names the proxy route), or a disallowed browser origin."),
                    "404": error_ref("Unknown tool."), "409": error_ref("No secret configured yet."), "429": error_ref("Rate limited.") } } },
            "/api/tools/{tool_id}/instructions/suggest": { "parameters": tool_id_param(), "get": schema_op(), "post": post_op(&GUIDE, &suggestion) },
            "/api/tools/{tool_id}/proxy/{path}": proxy_path(),
            "/api/instructions.md": { "get": { "summary": "How to use AgentKey, as the onboarding snippet says it (Markdown, no auth).", "security": [],
                "responses": { "200": { "description": "The guide.", "content": { "text/markdown": { "schema": { "type": "string" } } } } } } },
            "/mcp": { "post": { "summary": "The same steps as MCP tools (streamable HTTP, stateless; revisions 2025-06-18, 2025-11-25 and 2026-07-28). Configure an MCP client with this URL and the bearer header.",
                "responses": { "200": { "description": "A JSON-RPC answer." }, "400": { "description": "Not one JSON-RPC 2.0 message (batches are refused)." },
                    "401": error_ref("Missing or unknown key."), "403": error_ref("Suspended, or a browser origin that is not allowed."), "413": { "description": "Message over 1 MiB." } } } },
            "/api/openapi.json": { "get": { "summary": "This document.", "security": [], "responses": { "200": { "description": "OpenAPI 3.1" } } } },
        }
    })
}
