//! `POST /api/tools/{tool_id}/request`.

use std::net::SocketAddr;

use axum::Json;
use axum::body::Body;
use axum::extract::{ConnectInfo, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};

use app::model::{RequestAccessBody, RequestCreated};
use app::server::service::actor::AgentCtx;
use app::server::service::grants;

use super::{RawToolId, authenticate, meta, refund_unweighed, spend, tool_id};
use crate::http::AppState;
use crate::http::body::read_json;
use crate::http::error::ApiError;
use crate::http::limits::{RateInfo, Tier};

const HINT: &str = "GET /api/tools/{tool_id}/request for the schema: {\"reason\": \"5–500 characters\", \"duration\": \"30m, 8h, 7d or standing (optional)\"}.";

pub async fn request(
    State(state): State<AppState>,
    ConnectInfo(peer): ConnectInfo<SocketAddr>,
    RawToolId(raw_id): RawToolId,
    headers: HeaderMap,
    body: Body,
) -> Result<Response, ApiError> {
    let id = tool_id(&raw_id)?;
    let agent = authenticate(&state, &headers, meta(&state, &headers, peer)).await?;
    let input: RequestAccessBody = read_json(&headers, body, HINT).await?;
    let (rate, created) = request_access(&state, &agent, id, &input).await?;
    Ok((StatusCode::CREATED, rate, Json(created)).into_response())
}

/// A valid body spends the `request` tier; an unknown tool or a duplicate gives it back.
/// Shared by the REST route and MCP's `request_access`.
pub(crate) async fn request_access(
    state: &AppState,
    agent: &AgentCtx,
    tool_id: &str,
    input: &RequestAccessBody,
) -> Result<(RateInfo, RequestCreated), ApiError> {
    grants::validate_request(input)?;
    let rate = spend(state, Tier::Request, agent)?;
    let created = grants::request_access(&state.services, agent, tool_id, input).await;
    refund_unweighed(state, Tier::Request, agent, rate, &created);
    Ok((rate, created?))
}
