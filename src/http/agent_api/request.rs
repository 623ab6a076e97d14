//! `POST /api/tools/{tool_id}/request`.

use std::net::SocketAddr;

use axum::Json;
use axum::body::Body;
use axum::extract::{ConnectInfo, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};

use app::model::RequestAccessBody;
use app::server::service::grants;

use super::{RawToolId, authenticate, meta, refund_unweighed, spend, tool_id};
use crate::http::AppState;
use crate::http::body::read_json;
use crate::http::error::ApiError;
use crate::http::limits::Tier;

const HINT: &str =
    "GET /api/tools/{tool_id}/request for the schema: {\"reason\": \"5–500 characters\"}.";

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
    grants::validate_request(&input)?;
    let rate = spend(&state, Tier::Request, &agent)?;
    let created = grants::request_access(&state.services, &agent, id, &input).await;
    refund_unweighed(&state, Tier::Request, &agent, rate, &created);
    let created = created?;
    Ok((StatusCode::CREATED, rate, Json(created)).into_response())
}
