//! Any method on `/api/tools/{tool_id}/proxy/{*path}`: the agent's call, forwarded to the
//! tool's upstream with the credential injected (planned and audited by
//! `service::proxy::begin` before anything is sent). This file moves the bytes: it drops the
//! agent's credentials and hop-by-hop headers, streams both bodies under their caps, replaces
//! echoes of the secret in the answer, and reports the outcome for the audit log.

use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};

use axum::body::{Body, Bytes};
use axum::extract::{ConnectInfo, Request, State};
use axum::http::{HeaderMap, HeaderName, HeaderValue, StatusCode, header};
use axum::response::Response;
use futures_util::StreamExt;

use app::server::outbound::{ForwardError, reqwest};
use app::server::service::actor::AgentCtx;
use app::server::service::proxy::redact::Redactor;
use app::server::service::proxy::{self, CallRecord, CallSpec, Outcome, ProxyCall};
use app::server::service::{agent_auth, is_uuid, vend};

use super::{authorization, meta, preauth, spend, unknown_tool_id};
use crate::http::AppState;
use crate::http::error::ApiError;
use crate::http::limits::Tier;

/// Request headers never forwarded: the agent's own credentials, what routes or frames the
/// request (set again by the client; a declared length is set again from the checked value),
/// what would let the upstream compress or slice the answer past the redaction, and what
/// would make it act on another method or path than the rules checked.
const DROPPED_REQUEST: &[&str] = &[
    "authorization",
    "cookie",
    "host",
    "content-length",
    "transfer-encoding",
    "range",
    "if-range",
    "x-http-method-override",
    "x-http-method",
    "x-method-override",
    "x-original-url",
    "x-rewrite-url",
    "connection",
    "keep-alive",
    "te",
    "trailer",
    "upgrade",
    "expect",
    "accept-encoding",
    "forwarded",
    "x-real-ip",
    "origin",
];

/// `/api/tools/{id}/proxy…`: the id as sent (a percent-encoded one is no UUID) and the path
/// under the proxy route.
fn route_of(path: &str) -> Result<(&str, &str), ApiError> {
    let rest = path.strip_prefix("/api/tools/").unwrap_or_default();
    let (id, rest) = rest.split_once('/').unwrap_or((rest, ""));
    if !is_uuid(id) {
        return Err(unknown_tool_id());
    }
    Ok((id, rest.strip_prefix("proxy").unwrap_or_default()))
}

pub async fn forward(
    State(state): State<AppState>,
    ConnectInfo(peer): ConnectInfo<SocketAddr>,
    request: Request,
) -> Result<Response, ApiError> {
    route_of(request.uri().path())?;
    let meta = meta(&state, request.headers(), peer);
    preauth(&state, &meta)?;
    let key = agent_auth::bearer(authorization(request.headers()))?;
    let agent = vend::authenticate(&state.services, key, meta).await?;
    forward_as(&state, &agent, request).await
}

/// The proxied call of an authenticated agent (the REST route's, or MCP's `call_tool_api`);
/// a call the upstream answered counts in the proxy latency histogram, up to its headers.
pub(crate) async fn forward_as(
    state: &AppState,
    agent: &AgentCtx,
    request: Request,
) -> Result<Response, ApiError> {
    let started = std::time::Instant::now();
    let answer = forward_planned(state, agent, request).await;
    if answer.is_ok() {
        state
            .services
            .metrics
            .proxy_seconds
            .observe_duration(started.elapsed());
    }
    answer
}

async fn forward_planned(
    state: &AppState,
    agent: &AgentCtx,
    request: Request,
) -> Result<Response, ApiError> {
    let (parts, body) = request.into_parts();
    let (id, sub_path) = route_of(parts.uri.path())?;
    spend(state, Tier::Proxy, agent)?;
    let limits = state.services.upstreams.limits;
    let declared = parts
        .headers
        .get(header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<u64>().ok());
    if declared.is_some_and(|n| n > limits.request_body) {
        return Err(too_large(limits.request_body));
    }
    let call = proxy::begin(
        &state.services,
        agent,
        id,
        &CallSpec {
            method: parts.method.as_str(),
            path: sub_path,
            query: parts.uri.query(),
        },
    )
    .await?;
    let has_body =
        declared.is_some_and(|n| n > 0) || parts.headers.contains_key(header::TRANSFER_ENCODING);
    let sent = Arc::new(AtomicU64::new(0));
    let over = Arc::new(AtomicBool::new(false));
    let outgoing = has_body.then(|| capped(body, limits.request_body, &sent, &over));
    let mut headers = outgoing_headers(&parts.headers, &call);
    if let Some(n) = declared.filter(|_| has_body) {
        // It matches the body (hyper checked it on the wire; MCP's `call_tool_api` sets it
        // from the body it built); some upstreams refuse chunked uploads.
        headers.insert(header::CONTENT_LENGTH, HeaderValue::from(n));
    }
    let ProxyCall {
        url,
        needles,
        upstream_base,
        proxy_base,
        record,
        grant_expires_at,
        ..
    } = call;
    let method = parts.method.clone();
    let answer = state
        .services
        .upstreams
        .send(method.clone(), url, headers, outgoing)
        .await;
    let request_bytes = sent.load(Ordering::Relaxed);
    let upstream = match answer {
        Ok(upstream) => upstream,
        Err(err) => {
            if over.load(Ordering::Relaxed) {
                let refusal = too_large(limits.request_body);
                return Err(fail(
                    record,
                    request_bytes,
                    "request body over the cap",
                    refusal,
                ));
            }
            let (status, error, hint) = match &err {
                ForwardError::Timeout => (
                    StatusCode::GATEWAY_TIMEOUT,
                    "The tool's API did not answer in time.".to_owned(),
                    "Retry later; if it keeps timing out, tell a human.",
                ),
                // The reason (which address a name resolves to) is for the audit log, not the agent.
                ForwardError::Refused(_) => (
                    StatusCode::BAD_GATEWAY,
                    "The tool's upstream address is refused: it is not a public https address."
                        .to_owned(),
                    "Tell a human: the tool's upstream must be an https address on the public internet.",
                ),
                ForwardError::Unreachable(reason) => (
                    StatusCode::BAD_GATEWAY,
                    format!("The tool's API could not be reached ({reason})."),
                    "Retry later; if it stays down, tell a human.",
                ),
            };
            let reason = match &err {
                ForwardError::Refused(r) => format!("upstream refused: {r}"),
                _ => error.clone(),
            };
            let refusal = ApiError::status(status, &error, hint);
            return Err(fail(record, request_bytes, &reason, refusal));
        }
    };
    let mut answer = super::relay::relay(
        upstream,
        method,
        super::relay::Relay {
            redactor: Redactor::new(needles),
            cap: limits.response_body,
            received: 0,
            request_bytes,
            record: Some(record),
            status: 0,
            error: None,
        },
        (
            &upstream_base,
            &format!("{}{proxy_base}", state.services.base_url),
            &proxy_base,
        ),
    )?;
    if let Some(end) = grant_expires_at
        && let Ok(value) = HeaderValue::from_str(&app::server::clock::iso(end))
    {
        // A time-bound grant says when it ends on every answer, as the credential route does.
        answer
            .headers_mut()
            .insert(HeaderName::from_static("agentkey-grant-expires-at"), value);
    }
    Ok(answer)
}

fn too_large(cap: u64) -> ApiError {
    ApiError::status(
        StatusCode::PAYLOAD_TOO_LARGE,
        "The request body is too large to proxy.",
        &format!("Send at most {cap} bytes per call."),
    )
}

/// Records a call that got no answer and returns its refusal.
fn fail(record: CallRecord, request_bytes: u64, reason: &str, err: ApiError) -> ApiError {
    record.record(Outcome {
        request_bytes,
        error: Some(reason.to_owned()),
        ..Outcome::default()
    });
    err
}

/// The agent's body as a stream that fails once it passes `cap` bytes (the upstream then
/// sees an aborted request, and the agent a 413).
fn capped(body: Body, cap: u64, sent: &Arc<AtomicU64>, over: &Arc<AtomicBool>) -> reqwest::Body {
    let (sent, over) = (sent.clone(), over.clone());
    let stream = body.into_data_stream().map(move |chunk| {
        let chunk = chunk.map_err(std::io::Error::other)?;
        let total = sent.fetch_add(chunk.len() as u64, Ordering::Relaxed) + chunk.len() as u64;
        if total > cap {
            over.store(true, Ordering::Relaxed);
            return Err(std::io::Error::other("request body over the cap"));
        }
        Ok::<Bytes, std::io::Error>(chunk)
    });
    reqwest::Body::wrap_stream(stream)
}

/// The headers sent upstream: the agent's, minus the dropped ones, plus the credential.
fn outgoing_headers(incoming: &HeaderMap, call: &ProxyCall) -> HeaderMap {
    let named_by_connection: Vec<String> = incoming
        .get_all(header::CONNECTION)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(','))
        .map(|v| v.trim().to_ascii_lowercase())
        .collect();
    let injected = call.header.as_ref().map(|(name, _)| name.as_str());
    let mut out = HeaderMap::new();
    for (name, value) in incoming {
        let n = name.as_str();
        let dropped = DROPPED_REQUEST.contains(&n)
            || n.starts_with("proxy-")
            || n.starts_with("x-forwarded-")
            || injected == Some(n)
            || named_by_connection.iter().any(|c| c == n);
        if !dropped {
            out.append(name.clone(), value.clone());
        }
    }
    out.insert(
        header::ACCEPT_ENCODING,
        HeaderValue::from_static("identity"),
    );
    if let Some((name, value)) = &call.header
        && let (Ok(name), Ok(value)) = (
            HeaderName::try_from(name.as_str()),
            HeaderValue::try_from(value.as_str()),
        )
    {
        let mut value = value;
        value.set_sensitive(true);
        out.insert(name, value);
    }
    out
}
