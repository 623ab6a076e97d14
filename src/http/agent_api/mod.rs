//! The agent REST API (AGENT_API.md). One file per resource; each handler runs the same
//! order: id check (404) → pre-auth IP limit → authentication (401/403) → body (415/413/400)
//! → the route's own rate tier (429) → service. Invalid bodies never spend quota.

mod catalog;
mod credentials;
pub(crate) mod guide;
pub(crate) mod proxy;
mod relay;
pub(crate) mod request;
pub mod schema;
pub(crate) mod suggest;

use std::net::SocketAddr;

use axum::Router;
use axum::http::{HeaderMap, StatusCode, header};
use axum::middleware::from_fn_with_state;
use axum::routing::{any, get};

use app::server::ServiceError;
use app::server::service::actor::{AgentCtx, RequestMeta};
use app::server::service::{agent_auth, is_uuid};

use super::AppState;
use super::client_ip;
use super::error::ApiError;
use super::limits::{RateInfo, Tier};

pub fn router(state: AppState) -> Router<AppState> {
    Router::new()
        .route(
            "/api/tools",
            get(catalog::list)
                .options(preflight)
                .fallback(method_not_allowed),
        )
        .route(
            "/api/me",
            get(catalog::me)
                .options(preflight)
                .fallback(method_not_allowed),
        )
        .route(
            "/api/tools/suggest",
            get(schema::suggest)
                .post(suggest::suggest)
                .options(preflight)
                .fallback(method_not_allowed),
        )
        .route(
            "/api/tools/{tool_id}/request",
            get(schema::request)
                .post(request::request)
                .options(preflight)
                .fallback(method_not_allowed),
        )
        .route(
            "/api/tools/{tool_id}/credentials",
            get(credentials::fetch)
                .options(preflight)
                .fallback(method_not_allowed),
        )
        .route(
            "/api/tools/{tool_id}/instructions/suggest",
            get(schema::guide)
                .post(guide::suggest)
                .options(preflight)
                .fallback(method_not_allowed),
        )
        .route("/api/tools/{tool_id}/proxy", any(proxy::forward))
        .route("/api/tools/{tool_id}/proxy/", any(proxy::forward))
        .route("/api/tools/{tool_id}/proxy/{*path}", any(proxy::forward))
        .route(
            "/api/instructions.md",
            get(instructions)
                .options(preflight)
                .fallback(method_not_allowed),
        )
        .route(
            "/api/openapi.json",
            get(schema::openapi)
                .options(preflight)
                .fallback(method_not_allowed),
        )
        .route("/api", any(unknown_route))
        .route("/api/", any(unknown_route))
        .route("/api/{*rest}", any(unknown_route))
        .layer(from_fn_with_state(state, super::cors::layer))
}

/// `GET /api/instructions.md`: the agent's guide (the text of its onboarding snippet), with
/// no key, so an agent can re-read how to use AgentKey.
async fn instructions(
    axum::extract::State(state): axum::extract::State<AppState>,
) -> impl axum::response::IntoResponse {
    (
        [
            (header::CONTENT_TYPE, "text/markdown; charset=utf-8"),
            (header::CACHE_CONTROL, "no-cache"),
        ],
        app::server::service::onboarding::instructions_document(&state.services.base_url),
    )
}

/// OPTIONS without an `Origin` (allowed origins are answered by the CORS layer).
async fn preflight() -> StatusCode {
    StatusCode::NO_CONTENT
}

async fn method_not_allowed() -> ApiError {
    ApiError::status(
        StatusCode::METHOD_NOT_ALLOWED,
        "Method not allowed on this route.",
        "See GET /api/openapi.json for the methods of each route.",
    )
}

async fn unknown_route() -> ApiError {
    ApiError::status(
        StatusCode::NOT_FOUND,
        "No such API route.",
        "See GET /api/openapi.json for the routes.",
    )
}

/// Transport facts of the call: client IP and user agent.
pub(crate) fn meta(state: &AppState, headers: &HeaderMap, peer: SocketAddr) -> RequestMeta {
    RequestMeta {
        ip: Some(client_ip::resolve(headers, peer, state.trusted_proxies)),
        user_agent: headers
            .get(header::USER_AGENT)
            .and_then(|v| v.to_str().ok())
            .map(str::to_owned),
    }
}

/// The `{tool_id}` segment as text. Any segment that is not text (invalid UTF-8 in its
/// percent-encoding) is, like any other non-UUID, an unknown tool: a JSON 404, not axum's
/// plain-text rejection.
pub struct RawToolId(pub String);

impl<S: Send + Sync> axum::extract::FromRequestParts<S> for RawToolId {
    type Rejection = ApiError;

    async fn from_request_parts(
        parts: &mut axum::http::request::Parts,
        state: &S,
    ) -> Result<Self, Self::Rejection> {
        use axum::extract::rejection::PathRejection;
        match axum::extract::Path::<String>::from_request_parts(parts, state).await {
            Ok(axum::extract::Path(raw)) => Ok(RawToolId(raw)),
            Err(PathRejection::FailedToDeserializePathParams(_)) => Err(unknown_tool_id()),
            // A route without the segment: a fault of the router, not of the caller.
            Err(err) => Err(app::server::ServiceError::Internal(anyhow::anyhow!(
                "tool id path: {err}"
            ))
            .into()),
        }
    }
}

/// 404 for a path id that is not a UUID, before any authentication.
pub(crate) fn tool_id(raw: &str) -> Result<&str, ApiError> {
    if is_uuid(raw) {
        Ok(raw)
    } else {
        Err(unknown_tool_id())
    }
}

fn unknown_tool_id() -> ApiError {
    ApiError::status(
        StatusCode::NOT_FOUND,
        "Tool ID is not a valid identifier.",
        "Use the `id` of a tool from GET /api/tools.",
    )
}

/// Pre-auth IP limit, then the bearer key.
pub(crate) async fn authenticate(
    state: &AppState,
    headers: &HeaderMap,
    meta: RequestMeta,
) -> Result<AgentCtx, ApiError> {
    preauth(state, &meta)?;
    let key = agent_auth::bearer(authorization(headers))?;
    Ok(agent_auth::authenticate(&state.services, key, meta).await?)
}

pub(crate) fn preauth(state: &AppState, meta: &RequestMeta) -> Result<(), ApiError> {
    state
        .limiter
        .hit(Tier::Preauth, meta.ip.as_deref().unwrap_or("-"))
        .map(|_| ())
        .map_err(ApiError::Limited)
}

pub(crate) fn authorization(headers: &HeaderMap) -> Option<&str> {
    headers
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
}

/// Gives the call back to the agent's `tier` when the service turned it away without
/// weighing its content: an unknown tool (404) or one already asked for (409). Eight guesses
/// at an id must not lock an agent out of asking for an hour.
pub(crate) fn refund_unweighed<T>(
    state: &AppState,
    tier: Tier,
    agent: &AgentCtx,
    rate: RateInfo,
    result: &Result<T, ServiceError>,
) {
    if matches!(
        result,
        Err(ServiceError::NotFound(_) | ServiceError::Conflict(_))
    ) {
        state.limiter.refund(tier, &agent.agent_id, rate);
    }
}

/// Spends one call of the agent's `tier`.
pub(crate) fn spend(state: &AppState, tier: Tier, agent: &AgentCtx) -> Result<RateInfo, ApiError> {
    state
        .limiter
        .hit(tier, &agent.agent_id)
        .map_err(ApiError::Limited)
}
