//! Agents: list, create (key shown once), rotate, suspend/reactivate, delete.

use leptos::prelude::*;

use crate::model::RpcError;
use crate::model::{AgentView, IssuedKey};

#[cfg(feature = "ssr")]
use super::guard::{caller, fail};
#[cfg(feature = "ssr")]
use crate::server::service::agents;

#[server(prefix = "/rpc", endpoint = "agents")]
pub async fn list_agents() -> Result<Vec<AgentView>, RpcError> {
    let c = caller().await?;
    agents::list(&c.svc, &c.ctx).await.map_err(fail)
}

/// Registers an agent. The response is the only time its key is visible.
#[server(prefix = "/rpc", endpoint = "agents/create")]
pub async fn create_agent(name: String, description: String) -> Result<IssuedKey, RpcError> {
    let c = caller().await?;
    no_store();
    agents::create(&c.svc, &c.ctx, &name, &description)
        .await
        .map_err(fail)
}

/// Issues a new key; the old one stops working at once.
#[server(prefix = "/rpc", endpoint = "agents/rotate")]
pub async fn rotate_agent_key(id: String) -> Result<IssuedKey, RpcError> {
    let c = caller().await?;
    no_store();
    agents::rotate_key(&c.svc, &c.ctx, &id).await.map_err(fail)
}

#[server(prefix = "/rpc", endpoint = "agents/status")]
pub async fn set_agent_active(id: String, active: bool) -> Result<AgentView, RpcError> {
    let c = caller().await?;
    let status = if active {
        crate::model::AgentStatus::Active
    } else {
        crate::model::AgentStatus::Suspended
    };
    agents::set_status(&c.svc, &c.ctx, &id, status, None)
        .await
        .map_err(fail)
}

#[server(prefix = "/rpc", endpoint = "agents/delete")]
pub async fn delete_agent(id: String) -> Result<(), RpcError> {
    let c = caller().await?;
    agents::delete(&c.svc, &c.ctx, &id).await.map_err(fail)
}

/// Responses carrying a key must not be cached anywhere.
#[cfg(feature = "ssr")]
pub(crate) fn no_store() {
    if let Some(options) = use_context::<leptos_axum::ResponseOptions>() {
        options.insert_header(
            axum::http::header::CACHE_CONTROL,
            axum::http::HeaderValue::from_static("no-store"),
        );
    }
}
