//! Sign-in, sign-out, the caller's identity and sessions.

use leptos::prelude::*;

use crate::model::RpcError;
use crate::model::{ConfirmView, MemberView, SessionView};

#[cfg(feature = "ssr")]
use super::guard::{self, fail};
#[cfg(feature = "ssr")]
use crate::server::service::auth as service;

/// Emails a sign-in link to a member's address. Same answer for unknown addresses.
#[server(prefix = "/rpc", endpoint = "auth/request")]
pub async fn request_sign_in(email: String) -> Result<(), RpcError> {
    let svc = super::guard::services()?;
    service::request_link(&svc, &email, &guard::meta().await)
        .await
        .map_err(fail)
}

/// What the confirmation page should ask for this link (does not use it).
#[server(prefix = "/rpc", endpoint = "auth/check")]
pub async fn check_link(token: String) -> Result<ConfirmView, RpcError> {
    let svc = super::guard::services()?;
    service::peek(&svc, &token).await.map_err(fail)
}

/// Uses a sign-in link and starts a session. A bootstrap link also needs the owner's address
/// and the organization's name.
#[server(prefix = "/rpc", endpoint = "auth/confirm")]
pub async fn confirm_sign_in(
    token: String,
    email: Option<String>,
    org_name: Option<String>,
) -> Result<(), RpcError> {
    let svc = super::guard::services()?;
    let meta = guard::meta().await;
    let bootstrap = match (&org_name, &email) {
        (Some(org), Some(email)) => Some((org.as_str(), email.as_str())),
        _ => None,
    };
    let signed_in = service::confirm(&svc, &token, bootstrap, &meta)
        .await
        .map_err(fail)?;
    let session = guard::session().await?;
    guard::start_session(&session, &signed_in.user_id, &signed_in.org_id, &meta).await?;
    Ok(())
}

/// Ends the current session.
#[server(prefix = "/rpc", endpoint = "auth/sign-out")]
pub async fn sign_out() -> Result<(), RpcError> {
    if let Some(caller) = guard::optional_caller().await? {
        service::record_sign_out(&caller.svc, &caller.ctx)
            .await
            .map_err(fail)?;
        let _ = caller.session.flush().await;
    }
    Ok(())
}

/// The signed-in member, or `None`.
#[server(prefix = "/rpc", endpoint = "auth/me")]
pub async fn whoami() -> Result<Option<MemberView>, RpcError> {
    Ok(guard::optional_caller().await?.map(|c| c.member))
}

/// The caller's live sessions.
#[server(prefix = "/rpc", endpoint = "auth/sessions")]
pub async fn my_sessions() -> Result<Vec<SessionView>, RpcError> {
    let caller = guard::caller().await?;
    service::list_sessions(&caller.svc, &caller.member.user_id, &caller.session_hash())
        .await
        .map_err(fail)
}

/// Ends one of the caller's sessions (another device, or this one).
#[server(prefix = "/rpc", endpoint = "auth/sessions/end")]
pub async fn end_session(handle: String) -> Result<(), RpcError> {
    let caller = guard::caller().await?;
    service::revoke_session(&caller.svc, &caller.member.user_id, &handle)
        .await
        .map_err(fail)
}

/// Switches the organization the dashboard works in.
#[server(prefix = "/rpc", endpoint = "auth/switch-org")]
pub async fn switch_org(org_id: String) -> Result<(), RpcError> {
    let caller = guard::caller().await?;
    let org_id = service::switch_target(&caller.svc, &caller.member.user_id, &org_id)
        .await
        .map_err(fail)?;
    caller
        .session
        .insert(crate::server::auth::ORG_KEY, org_id.into_string())
        .await
        .map_err(|_| RpcError::new(503, "Could not switch organization.").hint("Retry."))?;
    Ok(())
}
