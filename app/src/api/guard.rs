//! Server-side half of every dashboard server function: who is calling, in which
//! organization, and how a service error becomes a response.

use leptos::prelude::*;
use tower_sessions::Session;

use crate::model::{MemberView, RpcError};
use crate::server::auth::session_store::{IP_KEY, USER_AGENT_KEY, USER_KEY, id_hash};
use crate::server::auth::{ORG_KEY, SIGNED_IN_AT_KEY};
use crate::server::service::actor::{AdminCtx, RequestMeta};
use crate::server::{ServiceError, Services, clock};

/// A signed-in member calling a server function.
pub struct Caller {
    pub svc: Services,
    pub ctx: AdminCtx,
    pub member: MemberView,
    pub session: Session,
}

impl Caller {
    /// The hash identifying the current session row.
    pub fn session_hash(&self) -> String {
        self.session.id().map(|id| id_hash(&id)).unwrap_or_default()
    }
}

/// The service error as the browser receives it. The response takes the error's status (see
/// `rpc_status` in the HTTP layer); an internal cause is logged here and never sent.
pub fn fail(err: ServiceError) -> RpcError {
    if let ServiceError::Internal(cause) = &err {
        tracing::error!(error = format!("{cause:#}"), "server function failed");
    }
    RpcError::from_body(err.status().as_u16(), err.body())
}

fn signed_out() -> RpcError {
    RpcError::new(401, "You are signed out.").hint("Sign in again from the sign-in page.")
}

/// The services, provided by the HTTP layer to every route that renders or answers. A route
/// without them answers 500 instead of panicking.
pub fn services() -> Result<Services, RpcError> {
    use_context::<Services>().ok_or_else(|| {
        fail(ServiceError::Internal(anyhow::anyhow!(
            "a server function ran without the services in its context"
        )))
    })
}

/// Transport facts of the current request (set by the HTTP layer).
pub async fn meta() -> RequestMeta {
    leptos_axum::extract::<axum::Extension<RequestMeta>>()
        .await
        .map(|e| e.0)
        .unwrap_or_default()
}

pub async fn session() -> Result<Session, RpcError> {
    leptos_axum::extract::<Session>()
        .await
        .map_err(|_| RpcError::new(500, "Sessions are not available on this route."))
}

/// The signed-in member, or `None` (no session, expired, or no longer a member).
pub async fn optional_caller() -> Result<Option<Caller>, RpcError> {
    let svc = services()?;
    let session = session().await?;
    match crate::server::auth::current(&svc, &session, meta().await).await {
        Ok(Some((ctx, member))) => Ok(Some(Caller {
            svc,
            ctx,
            member,
            session,
        })),
        Ok(None) => Ok(None),
        Err(err) => Err(fail(err)),
    }
}

/// The signed-in member; 401 otherwise.
pub async fn caller() -> Result<Caller, RpcError> {
    optional_caller().await?.ok_or_else(signed_out)
}

/// Starts a fresh session for a user who just proved their address: a new id (no fixation),
/// the sign-in time for the absolute lifetime, and where it came from for the session list.
pub async fn start_session(
    session: &Session,
    user_id: &str,
    org_id: &str,
    meta: &RequestMeta,
) -> Result<(), RpcError> {
    let store_err = |_| RpcError::new(503, "Could not start a session.").hint("Retry.");
    session.cycle_id().await.map_err(store_err)?;
    session.insert(USER_KEY, user_id).await.map_err(store_err)?;
    session.insert(ORG_KEY, org_id).await.map_err(store_err)?;
    session
        .insert(SIGNED_IN_AT_KEY, clock::now_ms())
        .await
        .map_err(store_err)?;
    session
        .insert(IP_KEY, meta.ip.clone())
        .await
        .map_err(store_err)?;
    session
        .insert(USER_AGENT_KEY, meta.user_agent.clone())
        .await
        .map_err(store_err)?;
    Ok(())
}
