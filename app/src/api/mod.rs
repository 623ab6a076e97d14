//! Server functions: public HTTP endpoints under `/rpc`. Each one authorizes on its first line
//! (through [`guard`]) and calls one service function; errors carry the service's message and
//! hint and the matching HTTP status, never internal detail.

pub mod agents;
pub mod audit;
pub mod auth;
pub mod inbox;
pub mod lifecycle;
pub mod members;
pub mod notifications;
pub mod tools;

#[cfg(feature = "ssr")]
pub(crate) mod guard;

use leptos::prelude::*;

use crate::model::{RpcError, StatusView};

/// Instance status and live counts for the status page. Aggregate figures only: no names,
/// no organization data.
#[server(prefix = "/rpc", endpoint = "status")]
pub async fn get_status() -> Result<StatusView, RpcError> {
    let services = guard::services()?;
    crate::server::service::status::instance_status(&services)
        .await
        .map_err(|err| {
            tracing::error!(error = %err, "status query failed");
            RpcError::new(503, "Status is unavailable right now.").hint("Retry in a moment.")
        })
}
