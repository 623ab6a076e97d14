//! `call_tool_api`: the model's call, made as a proxied call of the authenticated agent (the
//! proxy route's own code, so the same checks, rate tier, injection, redaction and audit as
//! `/api/tools/{id}/proxy/…`), with the answer collected into the tool's result.

use std::collections::BTreeMap;

use axum::body::Body;
use axum::extract::Request;
use axum::http::{HeaderName, HeaderValue, Method, StatusCode, header};
use base64::Engine;
use http_body_util::BodyExt;
use rmcp::model::{CallToolResult, JsonObject};
use serde_json::Value;

use app::model::ErrorBody;
use app::server::outbound::reqwest::Url;
use app::server::service::is_uuid;

use super::Caller;
use super::broker::refusal_of;
use super::tools::ApiAnswer;
use crate::http::AppState;
use crate::http::agent_api::proxy::forward_as;
use crate::http::error::ApiError;

/// Largest answer passed back into the model's context.
pub const MAX_ANSWER: usize = 1024 * 1024;

/// Headers of the model's `headers` argument that are ignored: the framing of the call, and
/// what the proxy route drops anyway (credentials, routing, the client's address).
const SET_BY_AGENTKEY: &[&str] = &[
    "authorization",
    "content-length",
    "transfer-encoding",
    "host",
    "x-forwarded-for",
    "forwarded",
    "x-real-ip",
    "connection",
];

const HINT: &str = "Arguments: {\"tool_id\", \"method\": \"GET\", \"path\": \"/the/api/path\", \"query\"?: {\"name\": \"value\"}, \"headers\"?: {\"Name\": \"value\"}, \"body\"?: JSON or text}.";

fn invalid(field: &str, message: &str) -> ApiError {
    app::server::ServiceError::field(field, message, HINT).into()
}

fn strings(args: &JsonObject, field: &str) -> Result<BTreeMap<String, String>, ApiError> {
    match args.get(field) {
        None | Some(Value::Null) => Ok(BTreeMap::new()),
        Some(Value::Object(map)) => map
            .iter()
            .map(|(k, v)| match v {
                Value::String(s) => Ok((k.clone(), s.clone())),
                Value::Number(n) => Ok((k.clone(), n.to_string())),
                Value::Bool(b) => Ok((k.clone(), b.to_string())),
                _ => Err(invalid(field, &format!("{k} must be a string"))),
            })
            .collect(),
        Some(_) => Err(invalid(field, "must be an object of strings")),
    }
}

fn text(args: &JsonObject, field: &str) -> Result<String, ApiError> {
    match args.get(field) {
        Some(Value::String(s)) => Ok(s.clone()),
        None | Some(Value::Null) => Err(invalid(field, "is required")),
        Some(_) => Err(invalid(field, "must be a string")),
    }
}

/// Builds the proxied request the agent would have sent.
fn proxied(args: &JsonObject) -> Result<Request, ApiError> {
    let tool_id = text(args, "tool_id")?;
    if !is_uuid(&tool_id) {
        return Err(app::server::ServiceError::not_found(
            "Tool ID is not a valid identifier.",
            "Use the `id` of a tool from list_tools.",
        )
        .into());
    }
    let method = text(args, "method")?.to_ascii_uppercase();
    let method = Method::from_bytes(method.as_bytes())
        .map_err(|_| invalid("method", "must be an HTTP method such as GET or POST"))?;
    let path = text(args, "path")?;
    if !path.starts_with('/') || path.contains(['?', '#']) || path.chars().any(char::is_whitespace)
    {
        return Err(invalid(
            "path",
            "must start with / and hold no query, fragment or spaces (put parameters in `query`)",
        ));
    }
    let query = strings(args, "query")?;
    let mut uri = format!("/api/tools/{tool_id}/proxy{path}");
    if !query.is_empty() {
        let mut url =
            Url::parse("http://query.invalid/").map_err(|e| invalid("query", &e.to_string()))?;
        url.query_pairs_mut().extend_pairs(&query);
        uri.push('?');
        uri.push_str(url.query().unwrap_or_default());
    }
    let mut builder = Request::builder().method(method).uri(uri.as_str());
    let mut has_type = false;
    for (name, value) in strings(args, "headers")? {
        let name = HeaderName::try_from(name.as_str())
            .map_err(|_| invalid("headers", &format!("{name:?} is not a header name")))?;
        // What frames the call or says who sent it is AgentKey's to set, not the model's.
        if SET_BY_AGENTKEY.contains(&name.as_str()) {
            continue;
        }
        let value = HeaderValue::try_from(value.as_str()).map_err(|_| {
            invalid(
                "headers",
                &format!("the value of {name} is not a header value"),
            )
        })?;
        has_type |= name == header::CONTENT_TYPE;
        builder = builder.header(name, value);
    }
    let body = match args.get("body") {
        None | Some(Value::Null) => Vec::new(),
        Some(Value::String(s)) => {
            if !has_type {
                builder = builder.header(header::CONTENT_TYPE, "text/plain; charset=utf-8");
            }
            s.clone().into_bytes()
        }
        Some(json) => {
            if !has_type {
                builder = builder.header(header::CONTENT_TYPE, "application/json");
            }
            serde_json::to_vec(json).unwrap_or_default()
        }
    };
    let length = body.len();
    let request = builder
        .body(Body::from(body))
        .map_err(|_| invalid("path", "does not form a valid URL path"))?;
    let mut request = request;
    request
        .headers_mut()
        .insert(header::CONTENT_LENGTH, HeaderValue::from(length));
    Ok(request)
}

pub async fn call(
    state: &AppState,
    args: &JsonObject,
    caller: &Caller,
) -> Result<CallToolResult, ApiError> {
    let request = proxied(args)?;
    let response = forward_as(state, &caller.agent, request).await?;
    let status = response.status();
    let mut headers = BTreeMap::new();
    for (name, value) in response.headers() {
        // Set by AgentKey for browsers, not by the tool.
        if name == header::CONTENT_SECURITY_POLICY || name == header::X_CONTENT_TYPE_OPTIONS {
            continue;
        }
        let value = String::from_utf8_lossy(value.as_bytes()).into_owned();
        headers
            .entry(name.as_str().to_owned())
            .and_modify(|v: &mut String| {
                v.push_str(", ");
                v.push_str(&value);
            })
            .or_insert(value);
    }
    let bytes = match http_body_util::Limited::new(response.into_body(), MAX_ANSWER)
        .collect()
        .await
    {
        Ok(body) => body.to_bytes(),
        Err(err)
            if err
                .downcast_ref::<http_body_util::LengthLimitError>()
                .is_some() =>
        {
            return Ok(refusal_of(
                StatusCode::BAD_GATEWAY.as_u16(),
                ErrorBody::new("The tool's answer is larger than an MCP result may carry.")
                    .hint(format!(
                        "Ask for less (paging, filters); at most {MAX_ANSWER} bytes come back through MCP."
                    )),
            ));
        }
        Err(_) => {
            return Ok(refusal_of(
                StatusCode::BAD_GATEWAY.as_u16(),
                ErrorBody::new("The tool's answer broke off before its end.")
                    .hint("Retry later; if it keeps failing, tell a human."),
            ));
        }
    };
    let (body, body_base64) = match String::from_utf8(bytes.to_vec()) {
        Ok(text) => (Some(text), None),
        Err(_) => (
            None,
            Some(base64::engine::general_purpose::STANDARD.encode(&bytes)),
        ),
    };
    let answer = ApiAnswer {
        status: status.as_u16(),
        headers,
        body,
        body_base64,
    };
    Ok(match serde_json::to_value(&answer) {
        Ok(value) => CallToolResult::structured(value),
        Err(_) => refusal_of(500, ErrorBody::new("Internal server error.")),
    })
}
