//! The answer of a proxied call, passed back to the agent: the upstream's status, its
//! headers minus hop-by-hop and origin-affecting ones (echoes of the secret redacted,
//! redirects under the base mapped to the proxy route), and the body streamed through the
//! redactor under the size cap. The outcome is recorded when the body ends or is dropped.

use axum::body::{Body, Bytes};
use axum::http::{HeaderMap, HeaderValue, Method, StatusCode, header};
use axum::response::Response;

use app::server::outbound::{ForwardError, forward_error, reqwest};
use app::server::service::proxy::redact::Redactor;
use app::server::service::proxy::{CallRecord, Outcome};

use crate::http::error::ApiError;

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

/// The state of a response being passed back. Dropped before its end (the agent went away,
/// the server stopped), it still records the outcome.
pub(super) struct Relay {
    pub(super) redactor: Redactor,
    pub(super) cap: u64,
    pub(super) received: u64,
    pub(super) request_bytes: u64,
    pub(super) record: Option<CallRecord>,
    pub(super) status: u16,
    pub(super) error: Option<String>,
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
pub(super) fn relay(
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
