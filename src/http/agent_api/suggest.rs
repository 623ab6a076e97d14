//! `POST /api/tools/suggest`.

use std::net::SocketAddr;

use axum::Json;
use axum::body::Body;
use axum::extract::{ConnectInfo, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};

use app::model::{SuggestToolBody, SuggestionCreated};
use app::server::service::actor::AgentCtx;
use app::server::service::suggestions;

use super::{authenticate, meta, spend};
use crate::http::AppState;
use crate::http::body::read_json;
use crate::http::error::ApiError;
use crate::http::limits::{RateInfo, Tier};

const HINT: &str = "GET /api/tools/suggest for the schema: {\"name\", \"url\"?, \"reason\"}.";

pub async fn suggest(
    State(state): State<AppState>,
    ConnectInfo(peer): ConnectInfo<SocketAddr>,
    headers: HeaderMap,
    body: Body,
) -> Result<Response, ApiError> {
    let agent = authenticate(&state, &headers, meta(&state, &headers, peer)).await?;
    let input: SuggestToolBody = read_json(&headers, body, HINT).await?;
    let (rate, created) = suggest_tool(&state, &agent, &input).await?;
    Ok((StatusCode::CREATED, rate, Json(created)).into_response())
}

/// A valid body spends the `suggest` tier. Shared by the REST route and MCP's `suggest_tool`.
pub(crate) async fn suggest_tool(
    state: &AppState,
    agent: &AgentCtx,
    input: &SuggestToolBody,
) -> Result<(RateInfo, SuggestionCreated), ApiError> {
    suggestions::validate_suggestion(input)?;
    let rate = spend(state, Tier::Suggest, agent)?;
    Ok((
        rate,
        suggestions::suggest_tool(&state.services, agent, input).await?,
    ))
}
