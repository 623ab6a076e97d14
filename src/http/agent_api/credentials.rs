//! `GET /api/tools/{tool_id}/credentials`: the credential and usage guide, returned only after
//! the `credential.vended` audit row is committed. Never cached by clients or proxies.

use std::net::SocketAddr;

use axum::Json;
use axum::extract::{ConnectInfo, State};
use axum::http::{HeaderMap, HeaderValue, header};
use axum::response::{IntoResponse, Response};

use app::server::service::{agent_auth, vend};

use super::{RawToolId, authorization, meta, preauth, spend, tool_id};
use crate::http::AppState;
use crate::http::error::ApiError;
use crate::http::limits::Tier;

pub async fn fetch(
    State(state): State<AppState>,
    ConnectInfo(peer): ConnectInfo<SocketAddr>,
    RawToolId(raw_id): RawToolId,
    headers: HeaderMap,
) -> Result<Response, ApiError> {
    let id = tool_id(&raw_id)?;
    let meta = meta(&state, &headers, peer);
    preauth(&state, &meta)?;
    let key = agent_auth::bearer(authorization(&headers))?;
    let agent = vend::authenticate(&state.services, key, meta).await?;
    let rate = spend(&state, Tier::Credential, &agent)?;
    let credential = vend::fetch(&state.services, &agent, id).await?;
    let mut res = (rate, Json(credential)).into_response();
    let h = res.headers_mut();
    h.insert(
        header::CACHE_CONTROL,
        HeaderValue::from_static("no-store, private"),
    );
    h.insert(header::PRAGMA, HeaderValue::from_static("no-cache"));
    Ok(res)
}
