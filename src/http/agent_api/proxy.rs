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
use axum::http::{HeaderMap, HeaderName, HeaderValue, Method, StatusCode, header};
use axum::response::Response;
use futures_util::StreamExt;

use app::server::outbound::{ForwardError, forward_error, reqwest};
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

/// Response headers never passed back: hop-by-hop ones, the upstream's cookies (a session is
/// a credential too), the length (redaction may change it), and what would act on AgentKey's
/// own origin in a browser (transport security, CORS, site data, alternative services).
const DROPPED_RESPONSE: &[&str] = &[
    "connection",
    "keep-alive",
    "transfer-encoding",
    "te",
    "trailer",
    "upgrade",
    "set-cookie",
    "content-length",
    "strict-transport-security",
    "alt-svc",
    "clear-site-data",
    "content-security-policy",
    "content-security-policy-report-only",
    "x-frame-options",
];

pub async fn forward(
    State(state): State<AppState>,
    ConnectInfo(peer): ConnectInfo<SocketAddr>,
    request: Request,
) -> Result<Response, ApiError> {
    let (parts, body) = request.into_parts();
    let path = parts.uri.path();
    // `/api/tools/{id}/proxy…`: the id as sent (a percent-encoded one is no UUID).
    let rest = path.strip_prefix("/api/tools/").unwrap_or_default();
    let (id, rest) = rest.split_once('/').unwrap_or((rest, ""));
    if !is_uuid(id) {
        return Err(unknown_tool_id());
    }
    let sub_path = rest.strip_prefix("proxy").unwrap_or_default();
    let meta = meta(&state, &parts.headers, peer);
    preauth(&state, &meta)?;
    let key = agent_auth::bearer(authorization(&parts.headers))?;
    let agent = vend::authenticate(&state.services, key, meta).await?;
    spend(&state, Tier::Proxy, &agent)?;
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
        &agent,
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
        // hyper checked that the body matches it; some upstreams refuse chunked uploads.
        headers.insert(header::CONTENT_LENGTH, HeaderValue::from(n));
    }
    let ProxyCall {
        url,
        needles,
        upstream_base,
        proxy_base,
        record,
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
    relay(
        upstream,
        method,
        Relay {
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
    )
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

/// The state of a response being passed back. Dropped before its end (the agent went away,
/// the server stopped), it still records the outcome.
struct Relay {
    redactor: Redactor,
    cap: u64,
    received: u64,
    request_bytes: u64,
    record: Option<CallRecord>,
    status: u16,
    error: Option<String>,
}

impl Relay {
    fn finish(&mut self) {
        if let Some(record) = self.record.take() {
            record.record(Outcome {
                status: Some(self.status),
                request_bytes: self.request_bytes,
                response_bytes: self.received,
                redacted: self.redactor.hits(),
                error: self.error.take(),
            });
        }
    }
}

impl Drop for Relay {
    fn drop(&mut self) {
        if self.record.is_some() && self.error.is_none() {
            self.error = Some("the agent closed the connection before the end".into());
        }
        self.finish();
    }
}

/// Builds the agent's response: the upstream's status, filtered and redacted headers, and
/// the body streamed through the redactor under the size cap.
fn relay(
    upstream: reqwest::Response,
    method: Method,
    mut relay: Relay,
    (upstream_base, proxy_url, proxy_path): (&str, &str, &str),
) -> Result<Response, ApiError> {
    let status = upstream.status();
    relay.status = status.as_u16();
    let encoded = upstream
        .headers()
        .get(header::CONTENT_ENCODING)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| !v.trim().eq_ignore_ascii_case("identity"));
    if encoded {
        relay.error = Some("compressed answer refused".into());
        relay.finish();
        return Err(ApiError::status(
            StatusCode::BAD_GATEWAY,
            "The tool's API sent a compressed answer that AgentKey cannot check for the secret.",
            "Tell a human: the upstream ignores Accept-Encoding: identity.",
        ));
    }
    let length = upstream.content_length();
    if length.is_some_and(|n| n > relay.cap) {
        relay.error = Some("answer over the cap".into());
        relay.finish();
        return Err(ApiError::status(
            StatusCode::BAD_GATEWAY,
            "The tool's answer is larger than AgentKey passes back.",
            &format!(
                "Ask for less (paging, filters); the limit is {} bytes.",
                relay.cap
            ),
        ));
    }
    let mut headers = HeaderMap::new();
    for (name, value) in upstream.headers() {
        let n = name.as_str();
        if DROPPED_RESPONSE.contains(&n) || n.starts_with("proxy-") {
            continue;
        }
        let mut bytes = relay.redactor.whole(value.as_bytes());
        if name == header::LOCATION
            && let Ok(text) = std::str::from_utf8(&bytes)
            && let Some(mapped) = map_location(text, upstream_base, proxy_url, proxy_path)
        {
            bytes = mapped.into_bytes();
        }
        if let Ok(value) = HeaderValue::from_bytes(&bytes) {
            headers.append(name.clone(), value);
        }
    }
    // Proxied answers never act on AgentKey's origin in a browser.
    headers.insert(
        header::CONTENT_SECURITY_POLICY,
        HeaderValue::from_static("sandbox; default-src 'none'"),
    );
    headers.insert(
        header::X_CONTENT_TYPE_OPTIONS,
        HeaderValue::from_static("nosniff"),
    );
    let bodiless = method == Method::HEAD
        || status.is_informational()
        || status == StatusCode::NO_CONTENT
        || status == StatusCode::NOT_MODIFIED;
    if bodiless {
        if method == Method::HEAD
            && let Some(n) = upstream.headers().get(header::CONTENT_LENGTH)
        {
            headers.insert(header::CONTENT_LENGTH, n.clone());
        }
        // Nothing follows: the outcome is known now (hyper never polls such a body).
        relay.finish();
        let mut response = Response::new(Body::empty());
        *response.status_mut() = status;
        *response.headers_mut() = headers;
        return Ok(response);
    }
    let stream = futures_util::stream::unfold(Some((upstream, relay)), |state| async move {
        let (mut upstream, mut relay) = state?;
        loop {
            match upstream.chunk().await {
                Ok(Some(chunk)) => {
                    relay.received += chunk.len() as u64;
                    if relay.received > relay.cap {
                        relay.error = Some("answer cut at the size cap".into());
                        relay.finish();
                        return Some((Err(std::io::Error::other("answer over the cap")), None));
                    }
                    let out = relay.redactor.push(&chunk);
                    if !out.is_empty() {
                        return Some((Ok(Bytes::from(out)), Some((upstream, relay))));
                    }
                }
                Ok(None) => {
                    let rest = relay.redactor.finish();
                    relay.finish();
                    return (!rest.is_empty()).then(|| (Ok(Bytes::from(rest)), None));
                }
                Err(err) => {
                    relay.error = Some(match forward_error(err) {
                        ForwardError::Timeout => "the answer did not finish in time".into(),
                        ForwardError::Refused(r) | ForwardError::Unreachable(r) => r,
                    });
                    relay.finish();
                    return Some((
                        Err(std::io::Error::other("upstream answer broke off")),
                        None,
                    ));
                }
            }
        }
    });
    let mut response = Response::new(Body::from_stream(stream));
    *response.status_mut() = status;
    *response.headers_mut() = headers;
    Ok(response)
}

/// A redirect into the upstream base, as the proxy route: absolute under the base, or
/// relative to the upstream's host and under the base's path. Anything else stays as it is.
fn map_location(location: &str, base: &str, proxy_url: &str, proxy_path: &str) -> Option<String> {
    let under = |rest: &str| (rest.is_empty() || rest.starts_with(['/', '?'])).then_some(());
    if let Some(rest) = location.strip_prefix(base) {
        under(rest)?;
        return Some(format!("{proxy_url}{rest}"));
    }
    if location.starts_with('/') && !location.starts_with("//") {
        let base_path = reqwest::Url::parse(base)
            .ok()?
            .path()
            .trim_end_matches('/')
            .to_owned();
        let rest = location.strip_prefix(&base_path)?;
        under(rest)?;
        return Some(format!("{proxy_path}{rest}"));
    }
    None
}
