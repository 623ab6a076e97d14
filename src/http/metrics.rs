//! `GET /metrics` in the Prometheus text format, where `AGENTKEY_METRICS` puts it: nowhere
//! (`off`, the default), on the main listener behind a bearer token (`on`), or alone on a
//! separate listener without a token (an address, for a network only the scraper reaches).
//! Also the middleware that counts every answered request by route template and status.

use std::net::SocketAddr;
use std::sync::Arc;

use axum::Router;
use axum::body::Body;
use axum::extract::{MatchedPath, State};
use axum::http::{HeaderMap, HeaderValue, Request, StatusCode, header};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use secrecy::{ExposeSecret, SecretString};
use subtle::ConstantTimeEq;

use app::server::Services;

use super::AppState;
use super::error::ApiError;

/// Where the metrics are served.
#[derive(Clone, Debug, Default)]
pub enum MetricsMode {
    #[default]
    Off,
    /// On the main listener; a scrape sends `Authorization: Bearer <token>`.
    On { token: SecretString },
    /// On a listener of its own at this address, without a token.
    Listen(SocketAddr),
}

/// The shortest token `AGENTKEY_METRICS_TOKEN` may be.
pub const MIN_TOKEN: usize = 16;

/// The route on the main listener (nothing unless the mode is `on`).
pub fn router(mode: &MetricsMode) -> Router<AppState> {
    let MetricsMode::On { token } = mode else {
        return Router::new();
    };
    let token = Arc::new(token.clone());
    Router::new().route(
        "/metrics",
        get(
            move |State(state): State<AppState>, headers: HeaderMap| async move {
                if !bearer_matches(&headers, &token) {
                    let mut refused = ApiError::status(
                        StatusCode::UNAUTHORIZED,
                        "Metrics need the scrape token.",
                        "Send Authorization: Bearer <AGENTKEY_METRICS_TOKEN>.",
                    )
                    .into_response();
                    refused.headers_mut().insert(
                        header::WWW_AUTHENTICATE,
                        HeaderValue::from_static("Bearer realm=\"agentkey-metrics\""),
                    );
                    return refused;
                }
                scrape(&state.services).await
            },
        ),
    )
}

/// The router of the separate listener: `/metrics` only, no token.
pub fn listener_router(services: Services) -> Router {
    Router::new()
        .route(
            "/metrics",
            get(|State(services): State<Services>| async move { scrape(&services).await }),
        )
        .with_state(services)
}

fn bearer_matches(headers: &HeaderMap, token: &SecretString) -> bool {
    let sent = headers
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Bearer "))
        .unwrap_or_default();
    sent.as_bytes()
        .ct_eq(token.expose_secret().as_bytes())
        .into()
}

async fn scrape(services: &Services) -> Response {
    match app::server::metrics::scrape(services).await {
        Ok(text) => (
            [(
                header::CONTENT_TYPE,
                HeaderValue::from_static("text/plain; version=0.0.4; charset=utf-8"),
            )],
            text,
        )
            .into_response(),
        Err(err) => {
            tracing::error!(error = %err, "metrics could not be read");
            ApiError::status(
                StatusCode::SERVICE_UNAVAILABLE,
                "Metrics are unavailable: the database did not answer.",
                "Retry on the next scrape; /readyz tells whether the database is up.",
            )
            .into_response()
        }
    }
}

/// Counts the answered request under its route template (`/api/tools/:tool_id/credentials`,
/// never the raw path, so ids cannot multiply the series); what no route matched is `other`.
pub async fn count_requests(
    State(services): State<Services>,
    req: Request<Body>,
    next: Next,
) -> Response {
    let route = req.extensions().get::<MatchedPath>().cloned();
    // Any token is a method to HTTP: the unusual ones share a label, so no caller can grow
    // the series without bound.
    let method: &'static str = match req.method().as_str() {
        "GET" => "GET",
        "POST" => "POST",
        "PUT" => "PUT",
        "PATCH" => "PATCH",
        "DELETE" => "DELETE",
        "HEAD" => "HEAD",
        "OPTIONS" => "OPTIONS",
        _ => "other",
    };
    let response = next.run(req).await;
    services.metrics.request(
        method,
        route.as_ref().map_or("other", MatchedPath::as_str),
        response.status().as_u16(),
    );
    response
}
