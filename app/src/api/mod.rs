//! Server functions: thin public endpoints that authorize, then call a service function.

use leptos::prelude::*;

use crate::model::StatusView;

/// Instance status and live counts for the status page. Aggregate figures only: no names,
/// no organization data.
#[server(prefix = "/rpc", endpoint = "status")]
pub async fn get_status() -> Result<StatusView, ServerFnError> {
    let services = expect_context::<crate::server::Services>();
    crate::server::service::status::instance_status(&services).await.map_err(|err| {
        tracing::error!(error = %err, "status query failed");
        ServerFnError::new("status is unavailable right now")
    })
}
