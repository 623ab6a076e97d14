//! `POST /api/tools/{tool_id}/instructions/suggest`.

use std::net::SocketAddr;

use axum::Json;
use axum::body::Body;
use axum::extract::{ConnectInfo, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};

use app::model::{SuggestGuideBody, SuggestionCreated};
use app::server::service::actor::AgentCtx;
use app::server::service::guides;

use super::{RawToolId, authenticate, meta, refund_unweighed, spend, tool_id};
use crate::http::AppState;
use crate::http::body::read_json;
use crate::http::error::ApiError;
use crate::http::limits::{RateInfo, Tier};

const HINT: &str = "GET /api/tools/{tool_id}/instructions/suggest for the schema: {\"learned\", \"why\"}, 5–2000 characters each.";

pub async fn suggest(
    State(state): State<AppState>,
    ConnectInfo(peer): ConnectInfo<SocketAddr>,
    RawToolId(raw_id): RawToolId,
    headers: HeaderMap,
    body: Body,
) -> Result<Response, ApiError> {
    let id = tool_id(&raw_id)?;
    let agent = authenticate(&state, &headers, meta(&state, &headers, peer)).await?;
    let input: SuggestGuideBody = read_json(&headers, body, HINT).await?;
    let (rate, created) = suggest_guide(&state, &agent, id, &input).await?;
    Ok((StatusCode::CREATED, rate, Json(created)).into_response())
}

/// A valid body spends the `instruction` tier; an unknown tool or a dismissed fact gives it
/// back. Shared by the REST route and MCP's `suggest_instructions`.
pub(crate) async fn suggest_guide(
    state: &AppState,
    agent: &AgentCtx,
    tool_id: &str,
    input: &SuggestGuideBody,
) -> Result<(RateInfo, SuggestionCreated), ApiError> {
    guides::validate_guide(input)?;
    let rate = spend(state, Tier::Instruction, agent)?;
    let created = guides::suggest_guide(&state.services, agent, tool_id, input).await;
    refund_unweighed(state, Tier::Instruction, agent, rate, &created);
    Ok((rate, created?))
}
