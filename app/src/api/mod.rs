//! Server functions: public HTTP endpoints under `/rpc`. Each one authorizes on its first line
//! (through [`guard`]) and calls one service function; errors carry the service's message and
//! hint and the matching HTTP status, never internal detail.

pub mod agents;
pub mod audit;
pub mod auth;
pub mod inbox;
pub mod members;
pub mod notifications;
pub mod tools;

#[cfg(feature = "ssr")]
pub(crate) mod guard;

use leptos::prelude::*;

use crate::model::StatusView;

/// Instance status and live counts for the status page. Aggregate figures only: no names,
/// no organization data.
#[server(prefix = "/rpc", endpoint = "status")]
pub async fn get_status() -> Result<StatusView, ServerFnError> {
    let services = expect_context::<crate::server::Services>();
    crate::server::service::status::instance_status(&services)
        .await
        .map_err(|err| {
            tracing::error!(error = %err, "status query failed");
            ServerFnError::new("status is unavailable right now")
        })
}

/// The text of a server function error, for toasts and inline messages.
pub fn error_text(err: &ServerFnError) -> String {
    match err {
        ServerFnError::ServerError(message) => message.clone(),
        ServerFnError::Request(_) => {
            "The server could not be reached. Check your connection and retry.".into()
        }
        other => other.to_string(),
    }
}

/// True when the error means the session is gone (the page then goes to sign-in).
pub fn is_signed_out(err: &ServerFnError) -> bool {
    matches!(err, ServerFnError::ServerError(m) if m.starts_with(guard_text::SIGNED_OUT))
}

/// Message prefixes shared by server and browser.
pub mod guard_text {
    pub const SIGNED_OUT: &str = "You are signed out.";
}
