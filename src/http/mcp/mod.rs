//! `POST /mcp`: the agent API over the Model Context Protocol (streamable HTTP, stateless, one
//! JSON answer per message), served by the official Rust SDK (`rmcp`). This file is the gate
//! in front of the SDK: it checks `Origin`, authenticates the agent's bearer key on every
//! message (the same pre-auth IP limit and refusals as the REST routes), refuses what is not
//! one JSON-RPC message with a JSON-RPC error, and hands the caller to the tools
//! ([`broker`]), which call the same service functions as the REST handlers.

mod broker;
mod call_api;
mod listen;
mod tools;

use std::net::SocketAddr;
use std::sync::Arc;

use axum::Router;
use axum::body::{Body, Bytes};
use axum::extract::{ConnectInfo, Request, State};
use axum::http::{HeaderValue, Method, StatusCode, header};
use axum::middleware::{Next, from_fn_with_state};
use axum::response::{IntoResponse, Response};
use http_body_util::BodyExt;
use rmcp::transport::streamable_http_server::session::never::NeverSessionManager;
use rmcp::transport::streamable_http_server::{StreamableHttpServerConfig, StreamableHttpService};
use serde_json::{Value, json};

use app::server::service::actor::AgentCtx;

use super::AppState;
use super::agent_api::{authenticate, meta};
use super::error::ApiError;

/// Largest accepted MCP message (a `call_tool_api` body travels inside it).
pub const MAX_MESSAGE: usize = 1024 * 1024;

/// JSON-RPC error codes the gate answers with.
const PARSE_ERROR: i64 = -32700;
const INVALID_REQUEST: i64 = -32600;

/// Who is calling, as the gate authenticated them; read by the tools.
#[derive(Clone)]
pub(crate) struct Caller {
    pub agent: AgentCtx,
}

pub fn router(state: AppState) -> Router<AppState> {
    let config = StreamableHttpServerConfig::default()
        .with_legacy_session_mode(false)
        .with_json_response(true)
        // Every message carries the agent's key and browsers' origins are checked by the
        // gate, so the Host header (a reverse proxy's public name) is not restricted.
        .disable_allowed_hosts()
        .with_max_request_body_bytes(MAX_MESSAGE);
    let for_tools = state.clone();
    let listeners = Arc::new(listen::Listeners::default());
    let service = StreamableHttpService::new(
        move || Ok(broker::Broker::new(for_tools.clone(), listeners.clone())),
        Arc::new(NeverSessionManager::default()),
        config,
    );
    Router::new()
        .route_service("/mcp", service)
        .layer(from_fn_with_state(state, gate))
}

async fn gate(
    State(state): State<AppState>,
    ConnectInfo(peer): ConnectInfo<SocketAddr>,
    request: Request,
    next: Next,
) -> Response {
    let (mut parts, body) = request.into_parts();
    if parts.method != Method::POST {
        let mut res = (
            StatusCode::METHOD_NOT_ALLOWED,
            axum::Json(json!({
                "error": "The MCP endpoint takes POST only (streamable HTTP, stateless).",
                "hint": "Configure your MCP client with this URL and transport `http` (streamable HTTP); it POSTs each message.",
            })),
        )
            .into_response();
        res.headers_mut()
            .insert(header::ALLOW, HeaderValue::from_static("POST"));
        return res;
    }
    if let Some(origin) = parts.headers.get(header::ORIGIN) {
        let origin = origin.to_str().unwrap_or_default();
        if origin != state.base_origin {
            return ApiError::status(
                StatusCode::FORBIDDEN,
                "This origin may not call the MCP endpoint.",
                "Connect your MCP client from the agent's process (it sends no Origin); browser pages of other sites may not call it.",
            )
            .into_response();
        }
    }
    // The REST routes' own order: the pre-auth IP limit, then the bearer key.
    let request_meta = meta(&state, &parts.headers, peer);
    let agent = match authenticate(&state, &parts.headers, request_meta).await {
        Ok(agent) => agent,
        Err(refusal) => {
            let mut res = refusal.into_response();
            if res.status() == StatusCode::UNAUTHORIZED {
                res.headers_mut().insert(
                    header::WWW_AUTHENTICATE,
                    HeaderValue::from_static("Bearer realm=\"agentkey\""),
                );
            }
            return res;
        }
    };
    let bytes = match read_message(body).await {
        Ok(bytes) => bytes,
        Err(refusal) => return refusal.into_response(),
    };
    let id = match check_message(&bytes) {
        Ok(id) => id,
        Err(refusal) => return refusal.into_response(),
    };
    parts.extensions.insert(Caller { agent });
    let answer = next
        .run(Request::from_parts(parts, Body::from(bytes)))
        .await;
    let mut answer = as_json_rpc(answer, id).await;
    // An answer may hold a credential (get_credential): never stored by a cache.
    answer.headers_mut().insert(
        header::CACHE_CONTROL,
        HeaderValue::from_static("no-store, private"),
    );
    answer
}

/// A JSON-RPC error answer with an HTTP status.
struct RpcError {
    status: StatusCode,
    id: Value,
    code: i64,
    message: String,
}

fn rpc_error(status: StatusCode, id: Value, code: i64, message: &str) -> RpcError {
    RpcError {
        status,
        id,
        code,
        message: message.to_owned(),
    }
}

impl IntoResponse for RpcError {
    fn into_response(self) -> Response {
        (
            self.status,
            axum::Json(json!({
                "jsonrpc": "2.0",
                "id": self.id,
                "error": {"code": self.code, "message": self.message},
            })),
        )
            .into_response()
    }
}

async fn read_message(body: Body) -> Result<Bytes, RpcError> {
    match http_body_util::Limited::new(body, MAX_MESSAGE)
        .collect()
        .await
    {
        Ok(collected) => Ok(collected.to_bytes()),
        Err(err)
            if err
                .downcast_ref::<http_body_util::LengthLimitError>()
                .is_some() =>
        {
            Err(rpc_error(
                StatusCode::PAYLOAD_TOO_LARGE,
                Value::Null,
                INVALID_REQUEST,
                &format!(
                    "The message is larger than {MAX_MESSAGE} bytes; send less (a smaller body for call_tool_api)."
                ),
            ))
        }
        Err(_) => Err(rpc_error(
            StatusCode::BAD_REQUEST,
            Value::Null,
            INVALID_REQUEST,
            "The message could not be read; send the whole body and retry.",
        )),
    }
}

/// One JSON-RPC message (request, notification or response), not a batch; returns its id.
fn check_message(bytes: &[u8]) -> Result<Value, RpcError> {
    let Ok(value) = serde_json::from_slice::<Value>(bytes) else {
        return Err(rpc_error(
            StatusCode::BAD_REQUEST,
            Value::Null,
            PARSE_ERROR,
            "The message is not valid JSON.",
        ));
    };
    let Value::Object(message) = value else {
        let what = if value.is_array() {
            "Batches are not supported: send one JSON-RPC message per POST."
        } else {
            "A message must be a JSON-RPC 2.0 object."
        };
        return Err(rpc_error(
            StatusCode::BAD_REQUEST,
            Value::Null,
            INVALID_REQUEST,
            what,
        ));
    };
    let id = message.get("id").cloned().unwrap_or(Value::Null);
    let valid_id = matches!(id, Value::Null | Value::String(_) | Value::Number(_));
    if message.get("jsonrpc") != Some(&Value::from("2.0")) || !valid_id {
        return Err(rpc_error(
            StatusCode::BAD_REQUEST,
            if valid_id { id } else { Value::Null },
            INVALID_REQUEST,
            "A message must be a JSON-RPC 2.0 object with \"jsonrpc\": \"2.0\" and a string or number id.",
        ));
    }
    if let Some(method) = message.get("method")
        && !method.is_string()
    {
        return Err(rpc_error(
            StatusCode::BAD_REQUEST,
            id,
            INVALID_REQUEST,
            "\"method\" must be a string.",
        ));
    }
    Ok(id)
}

/// The SDK answers transport refusals (a missing `Accept`, a message it cannot type) in plain
/// text; the agent gets them as JSON-RPC errors with the same status.
async fn as_json_rpc(answer: Response, id: Value) -> Response {
    let is_json = answer
        .headers()
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.starts_with("application/json") || v.starts_with("text/event-stream"));
    let status = answer.status();
    if is_json || !(status.is_client_error() || status.is_server_error()) {
        return answer;
    }
    let text = match http_body_util::Limited::new(answer.into_body(), 4096)
        .collect()
        .await
    {
        Ok(body) => String::from_utf8_lossy(&body.to_bytes()).trim().to_owned(),
        Err(_) => String::new(),
    };
    if status.is_server_error() {
        tracing::error!(status = status.as_u16(), answer = %text, "MCP transport failed");
    }
    // The SDK says 415 for a JSON message it cannot type (the media type itself is checked
    // before): for the agent that is a bad request.
    let untyped = status == StatusCode::UNSUPPORTED_MEDIA_TYPE && text.contains("deserialize");
    let message = match status {
        StatusCode::NOT_ACCEPTABLE => {
            "Send `Accept: application/json, text/event-stream` (what MCP clients send).".to_owned()
        }
        _ if untyped => {
            tracing::debug!(detail = %text, "MCP message not understood");
            "The message is not a JSON-RPC request, notification or response this server can read (check the method's params against the MCP schema).".to_owned()
        }
        StatusCode::UNSUPPORTED_MEDIA_TYPE => {
            "Send the message with `Content-Type: application/json`.".to_owned()
        }
        _ if status.is_server_error() => "Internal server error.".to_owned(),
        _ => {
            tracing::debug!(status = status.as_u16(), detail = %text, "MCP transport refusal");
            format!(
                "The MCP transport refused the message (HTTP {}).",
                status.as_u16()
            )
        }
    };
    let status = if untyped {
        StatusCode::BAD_REQUEST
    } else {
        status
    };
    rpc_error(status, id, INVALID_REQUEST, &message).into_response()
}
