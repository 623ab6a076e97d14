//! `POST /api/tools/{tool_id}/instructions/suggest`.

use std::net::SocketAddr;

use axum::Json;
use axum::body::Body;
use axum::extract::{ConnectInfo, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};

use app::model::SuggestGuideBody;
use app::server::service::guides;

use super::{RawToolId, authenticate, meta, refund_unweighed, spend, tool_id};
use crate::http::AppState;
use crate::http::body::read_json;
use crate::http::error::ApiError;
use crate::http::limits::Tier;

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
    guides::validate_guide(&input)?;
    let rate = spend(&state, Tier::Instruction, &agent)?;
    let created = guides::suggest_guide(&state.services, &agent, id, &input).await;
    refund_unweighed(&state, Tier::Instruction, &agent, rate, &created);
    let created = created?;
    Ok((StatusCode::CREATED, rate, Json(created)).into_response())
}
