//! The HTTP surface: the agent REST API, operational probes, and the Leptos pages and server
//! functions, behind request ids, tracing and security headers.

pub mod agent_api;
pub mod body;
pub mod client_ip;
pub mod cors;
pub mod dashboard;
pub mod error;
pub mod limits;
mod mcp;
pub mod metrics;
mod ops;
mod pages;
pub mod serve;

use std::sync::Arc;

use axum::Router;
use axum::extract::FromRef;
use axum::http::{HeaderName, HeaderValue, Request};
use leptos::config::LeptosOptions;
use tower_http::request_id::{MakeRequestUuid, PropagateRequestIdLayer, SetRequestIdLayer};
use tower_http::set_header::SetResponseHeaderLayer;
use tower_http::trace::{DefaultOnResponse, TraceLayer};

use app::server::Services;

use crate::config::Settings;

/// Shared state of every handler: a handle, since axum clones the state of a route for every
/// request it serves (and every extractor clones it again).
#[derive(Clone)]
pub struct AppState(Arc<StateParts>);

impl std::ops::Deref for AppState {
    type Target = StateParts;
    fn deref(&self) -> &StateParts {
        &self.0
    }
}

/// What [`AppState`] holds.
pub struct StateParts {
    pub services: Services,
    pub leptos: LeptosOptions,
    pub limiter: Arc<limits::RateLimiter>,
    pub cors: Arc<cors::CorsPolicy>,
    pub trusted_proxies: usize,
    /// Scheme, host and port of `base_url`: the origin the dashboard accepts mutations from.
    pub base_origin: String,
}

impl FromRef<AppState> for LeptosOptions {
    fn from_ref(state: &AppState) -> Self {
        state.leptos.clone()
    }
}

const REQUEST_ID: HeaderName = HeaderName::from_static("x-request-id");

/// Builds the whole router.
pub fn router(settings: &Settings, services: Services) -> anyhow::Result<Router> {
    let mut leptos = leptos::config::get_configuration(None)?.leptos_options;
    leptos.site_root = settings.site_root.as_str().into();
    leptos.site_addr = settings.bind;
    let state = AppState(Arc::new(StateParts {
        services,
        leptos,
        limiter: Arc::new(limits::RateLimiter::new(settings.limits)),
        cors: Arc::new(cors::CorsPolicy::new(settings.cors_origins.clone())),
        trusted_proxies: settings.trusted_proxies,
        base_origin: origin_of(&settings.base_url),
    }));
    let body_timeout = settings.connections.body_timeout;
    let trace = TraceLayer::new_for_http().make_span_with(|req: &Request<_>| {
        let id = req.headers().get(&REQUEST_ID).and_then(|v| v.to_str().ok()).unwrap_or("-");
        // The path only: query strings and headers (Authorization!) are never logged.
        tracing::info_span!("http", request_id = %id, method = %req.method(), path = %req.uri().path())
    })
    .on_response(DefaultOnResponse::new().level(tracing::Level::INFO));
    let header = |name: &'static str, value: &'static str| {
        SetResponseHeaderLayer::if_not_present(
            HeaderName::from_static(name),
            HeaderValue::from_static(value),
        )
    };
    // Served over TLS (the public URL is https): browsers must not fall back to plain http.
    let hsts = settings.base_url.starts_with("https://").then(|| {
        header(
            "strict-transport-security",
            "max-age=31536000; includeSubDomains",
        )
    });
    let counted = state.services.clone();
    Ok(Router::new()
        .merge(agent_api::router(state.clone()))
        .merge(mcp::router(state.clone()))
        .merge(ops::router())
        .merge(metrics::router(&settings.metrics))
        .merge(pages::router(&state, settings.secure_cookies()))
        .with_state(state)
        // Per route (axum applies a router's layers to each route): the template is known.
        .layer(axum::middleware::from_fn_with_state(
            counted,
            metrics::count_requests,
        ))
        .layer(header("x-content-type-options", "nosniff"))
        .layer(header("x-frame-options", "DENY"))
        .layer(header("referrer-policy", "no-referrer"))
        .layer(header(
            "content-security-policy",
            "frame-ancestors 'none'; object-src 'none'; base-uri 'self'",
        ))
        .layer(tower::util::option_layer(hsts))
        .layer(tower::util::MapRequestLayer::new(move |req| {
            serve::with_body_deadline(req, body_timeout)
        }))
        .layer(PropagateRequestIdLayer::new(REQUEST_ID))
        .layer(trace)
        .layer(SetRequestIdLayer::new(REQUEST_ID, MakeRequestUuid)))
}

/// `https://host:port` of a URL (no path).
fn origin_of(url: &str) -> String {
    let (scheme, rest) = url.split_once("://").unwrap_or(("http", url));
    let host = rest.split('/').next().unwrap_or(rest);
    format!("{scheme}://{host}")
}
