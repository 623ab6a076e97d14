//! CORS for the agent API, opt-in per exact origin. No configured origins means no CORS
//! headers at all. A disallowed origin's preflight gets 403, and so does its attempt to read a
//! credential (a browser page must never be able to pull secrets with a pasted key).

use axum::body::Body;
use axum::extract::State;
use axum::http::{HeaderValue, Method, Request, StatusCode, header};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};

use super::AppState;
use super::error::ApiError;

/// The allowed origins.
#[derive(Debug, Default)]
pub struct CorsPolicy {
    origins: Vec<String>,
}

impl CorsPolicy {
    pub fn new(origins: Vec<String>) -> Self {
        CorsPolicy { origins }
    }

    pub(crate) fn allows(&self, origin: &str) -> bool {
        self.origins.iter().any(|o| o == origin)
    }
}

const EXPOSE: &str = "X-RateLimit-Limit, X-RateLimit-Remaining, X-RateLimit-Reset, X-RateLimit-Policy, Retry-After, X-Request-Id";

/// Middleware on the agent API routes.
pub async fn layer(State(state): State<AppState>, req: Request<Body>, next: Next) -> Response {
    let origin = req
        .headers()
        .get(header::ORIGIN)
        .and_then(|v| v.to_str().ok())
        .map(str::to_owned);
    let Some(origin) = origin else {
        return next.run(req).await;
    };
    let allowed = state.cors.allows(&origin);
    let is_preflight = req.method() == Method::OPTIONS;
    if !allowed {
        if is_preflight || req.uri().path().ends_with("/credentials") {
            return ApiError::status(
                StatusCode::FORBIDDEN,
                "Cross-origin browser requests are not allowed.",
                "Call the agent API from your agent's process, or ask the operator to add this origin to AGENTKEY_CORS_ORIGINS.",
            )
            .into_response();
        }
        return next.run(req).await;
    }
    let mut res = if is_preflight {
        StatusCode::NO_CONTENT.into_response()
    } else {
        next.run(req).await
    };
    let h = res.headers_mut();
    if let Ok(value) = HeaderValue::from_str(&origin) {
        h.insert(header::ACCESS_CONTROL_ALLOW_ORIGIN, value);
    }
    h.append(header::VARY, HeaderValue::from_static("Origin"));
    h.insert(
        header::ACCESS_CONTROL_EXPOSE_HEADERS,
        HeaderValue::from_static(EXPOSE),
    );
    if is_preflight {
        h.insert(
            header::ACCESS_CONTROL_ALLOW_METHODS,
            HeaderValue::from_static("GET, POST, OPTIONS"),
        );
        h.insert(
            header::ACCESS_CONTROL_ALLOW_HEADERS,
            HeaderValue::from_static("Authorization, Content-Type"),
        );
        h.insert(
            header::ACCESS_CONTROL_MAX_AGE,
            HeaderValue::from_static("600"),
        );
    }
    res
}
