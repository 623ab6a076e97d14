//! Decisions: the inbox and the overview.

use leptos::prelude::*;

use crate::model::RpcError;
use crate::model::{AccessPicture, AccessRequestView, InboxView, OverviewView};

#[cfg(feature = "ssr")]
use super::guard::{caller, fail};
#[cfg(feature = "ssr")]
use crate::server::service::{dashboard, grants, guides, suggestions};

#[server(prefix = "/rpc", endpoint = "overview")]
pub async fn get_overview() -> Result<OverviewView, RpcError> {
    let c = caller().await?;
    dashboard::overview(&c.svc, &c.ctx).await.map_err(fail)
}

/// How many decisions wait: pending requests and suggestions (sidebar and tab titles).
#[server(prefix = "/rpc", endpoint = "pending")]
pub async fn get_pending() -> Result<i64, RpcError> {
    let c = caller().await?;
    dashboard::pending(&c.svc, &c.ctx).await.map_err(fail)
}

/// Every agent against every tool (`/access`).
#[server(prefix = "/rpc", endpoint = "access")]
pub async fn get_access() -> Result<AccessPicture, RpcError> {
    let c = caller().await?;
    dashboard::access(&c.svc, &c.ctx).await.map_err(fail)
}

#[server(prefix = "/rpc", endpoint = "inbox")]
pub async fn get_inbox() -> Result<InboxView, RpcError> {
    let c = caller().await?;
    dashboard::inbox(&c.svc, &c.ctx).await.map_err(fail)
}

/// Every request of the organization (newest first), for grant lists.
#[server(prefix = "/rpc", endpoint = "requests")]
pub async fn list_requests() -> Result<Vec<AccessRequestView>, RpcError> {
    let c = caller().await?;
    grants::list(&c.svc, &c.ctx, None, 1000).await.map_err(fail)
}

/// Approves a request; `secret` is the agent's own credential for per-agent tools; a
/// proxied tool's grant may be narrowed to GET/HEAD and a daily budget.
#[server(prefix = "/rpc", endpoint = "requests/approve")]
pub async fn approve_request(
    id: String,
    secret: Option<String>,
    #[server(default)] read_only: bool,
    calls_per_day: Option<i64>,
    #[server(default)] rules: Vec<String>,
    #[server(default)] duration: Option<String>,
) -> Result<AccessRequestView, RpcError> {
    let c = caller().await?;
    let duration = crate::server::service::lifecycle::parse_duration_field(duration.as_deref())
        .map_err(fail)?;
    let approval = grants::Approval {
        secret: secret
            .filter(|s| !s.is_empty())
            .map(secrecy::SecretString::from),
        expires_at: None,
        duration,
        scope: crate::model::GrantScope {
            read_only,
            rules: (!rules.is_empty()).then_some(rules),
            calls_per_day,
        },
    };
    grants::approve_with(&c.svc, &c.ctx, &id, approval)
        .await
        .map_err(fail)
}

/// Gives an agent a tool directly (recorded as an admin request, approved at once).
#[server(prefix = "/rpc", endpoint = "requests/grant")]
pub async fn grant_tool(
    agent_id: String,
    tool_id: String,
    reason: String,
    secret: Option<String>,
) -> Result<AccessRequestView, RpcError> {
    let c = caller().await?;
    let secret = secret
        .filter(|s| !s.is_empty())
        .map(secrecy::SecretString::from);
    grants::grant(&c.svc, &c.ctx, &agent_id, &tool_id, &reason, secret)
        .await
        .map_err(fail)
}

#[server(prefix = "/rpc", endpoint = "requests/deny")]
pub async fn deny_request(id: String, reason: String) -> Result<AccessRequestView, RpcError> {
    let c = caller().await?;
    grants::deny(&c.svc, &c.ctx, &id, Some(&reason))
        .await
        .map_err(fail)
}

#[server(prefix = "/rpc", endpoint = "requests/revoke")]
pub async fn revoke_request(id: String, reason: String) -> Result<AccessRequestView, RpcError> {
    let c = caller().await?;
    grants::revoke(&c.svc, &c.ctx, &id, Some(&reason))
        .await
        .map_err(fail)
}

/// Approves or denies several requests; each is decided on its own and the first failure
/// stops the batch with its message (earlier decisions stand).
#[server(prefix = "/rpc", endpoint = "requests/bulk")]
pub async fn bulk_decide(
    ids: Vec<String>,
    approve: bool,
    reason: String,
) -> Result<usize, RpcError> {
    let c = caller().await?;
    grants::decide_many(&c.svc, &c.ctx, &ids, approve, Some(&reason))
        .await
        .map_err(fail)
}

#[server(prefix = "/rpc", endpoint = "suggestions/dismiss")]
pub async fn dismiss_tool_suggestion(id: String, reason: String) -> Result<(), RpcError> {
    let c = caller().await?;
    suggestions::dismiss(&c.svc, &c.ctx, &id, &reason)
        .await
        .map(|_| ())
        .map_err(fail)
}

#[server(prefix = "/rpc", endpoint = "guide-suggestions/accept")]
pub async fn accept_guide_suggestion(id: String) -> Result<(), RpcError> {
    let c = caller().await?;
    guides::accept(&c.svc, &c.ctx, &id, None)
        .await
        .map(|_| ())
        .map_err(fail)
}

#[server(prefix = "/rpc", endpoint = "guide-suggestions/dismiss")]
pub async fn dismiss_guide_suggestion(id: String, reason: String) -> Result<(), RpcError> {
    let c = caller().await?;
    guides::dismiss(&c.svc, &c.ctx, &id, &reason)
        .await
        .map_err(fail)
}
