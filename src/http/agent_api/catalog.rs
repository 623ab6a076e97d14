//! `GET /api/tools` and `GET /api/me`.

use std::net::SocketAddr;

use axum::Json;
use axum::extract::{ConnectInfo, State};
use axum::http::HeaderMap;
use axum::response::{IntoResponse, Response};

use app::server::service::catalog;

use super::{authenticate, meta, spend};
use crate::http::AppState;
use crate::http::error::ApiError;
use crate::http::limits::Tier;

pub async fn list(
    State(state): State<AppState>,
    ConnectInfo(peer): ConnectInfo<SocketAddr>,
    headers: HeaderMap,
) -> Result<Response, ApiError> {
    let agent = authenticate(&state, &headers, meta(&state, &headers, peer)).await?;
    let rate = spend(&state, Tier::Read, &agent)?;
    let tools = catalog::list_for_agent(&state.services, &agent).await?;
    Ok((rate, Json(tools)).into_response())
}

pub async fn me(
    State(state): State<AppState>,
    ConnectInfo(peer): ConnectInfo<SocketAddr>,
    headers: HeaderMap,
) -> Result<Response, ApiError> {
    let agent = authenticate(&state, &headers, meta(&state, &headers, peer)).await?;
    let rate = spend(&state, Tier::Read, &agent)?;
    let me = catalog::me(&state.services, &agent).await?;
    Ok((rate, Json(me)).into_response())
}
