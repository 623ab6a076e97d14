//! Members and invitations; accepting an invitation starts a session like a sign-in link.

use leptos::prelude::*;

use crate::model::RpcError;
use crate::model::{InvitationPeek, InvitationView, MembersView};

#[cfg(feature = "ssr")]
use super::guard::{self, caller, fail};
#[cfg(feature = "ssr")]
use crate::model::Role;
#[cfg(feature = "ssr")]
use crate::server::{ServiceError, service::members};

#[cfg(feature = "ssr")]
fn role(text: &str) -> Result<Role, RpcError> {
    Role::parse(text).ok_or_else(|| {
        fail(ServiceError::field(
            "role",
            "must be owner, admin, approver or auditor",
            "Pick one of the listed roles.",
        ))
    })
}

#[server(prefix = "/rpc", endpoint = "members")]
pub async fn list_members() -> Result<MembersView, RpcError> {
    let c = caller().await?;
    members::list(&c.svc, &c.ctx).await.map_err(fail)
}

#[server(prefix = "/rpc", endpoint = "members/invite")]
pub async fn invite_member(email: String, role: String) -> Result<InvitationView, RpcError> {
    let c = caller().await?;
    let role = self::role(&role)?;
    members::invite(&c.svc, &c.ctx, &email, role)
        .await
        .map_err(fail)
}

#[server(prefix = "/rpc", endpoint = "members/invite/resend")]
pub async fn resend_invitation(id: String) -> Result<InvitationView, RpcError> {
    let c = caller().await?;
    members::resend(&c.svc, &c.ctx, &id).await.map_err(fail)
}

#[server(prefix = "/rpc", endpoint = "members/invite/revoke")]
pub async fn revoke_invitation(id: String) -> Result<(), RpcError> {
    let c = caller().await?;
    members::revoke_invitation(&c.svc, &c.ctx, &id)
        .await
        .map_err(fail)
}

#[server(prefix = "/rpc", endpoint = "members/role")]
pub async fn change_member_role(user_id: String, role: String) -> Result<(), RpcError> {
    let c = caller().await?;
    let role = self::role(&role)?;
    members::change_role(&c.svc, &c.ctx, &user_id, role)
        .await
        .map_err(fail)
}

#[server(prefix = "/rpc", endpoint = "members/remove")]
pub async fn remove_member(user_id: String) -> Result<(), RpcError> {
    let c = caller().await?;
    members::remove(&c.svc, &c.ctx, &user_id)
        .await
        .map_err(fail)
}

/// The caller leaves the current organization (and lands in another one, or signed out).
#[server(prefix = "/rpc", endpoint = "members/leave")]
pub async fn leave_organization() -> Result<(), RpcError> {
    let c = caller().await?;
    members::leave(&c.svc, &c.ctx).await.map_err(fail)
}

#[server(prefix = "/rpc", endpoint = "members/domains")]
pub async fn set_allowed_domains(domains: String) -> Result<Vec<String>, RpcError> {
    let c = caller().await?;
    members::set_allowed_domains(&c.svc, &c.ctx, &domains)
        .await
        .map_err(fail)
}

/// What the invitation page shows (does not use the link).
#[server(prefix = "/rpc", endpoint = "invite/check")]
pub async fn check_invitation(token: String) -> Result<InvitationPeek, RpcError> {
    let svc = super::guard::services()?;
    members::peek(&svc, &token).await.map_err(fail)
}

/// Accepts an invitation and starts a session in the organization.
#[server(prefix = "/rpc", endpoint = "invite/accept")]
pub async fn accept_invitation(token: String) -> Result<(), RpcError> {
    let svc = super::guard::services()?;
    let meta = guard::meta().await;
    let joined = members::accept(&svc, &token, &meta).await.map_err(fail)?;
    let session = guard::session().await?;
    guard::start_session(&session, &joined.user_id, &joined.org_id, &meta).await?;
    Ok(())
}

/// Deletes the organization (owners; `name` must match). Signs everyone out of it.
#[server(prefix = "/rpc", endpoint = "org/delete")]
pub async fn delete_organization(name: String) -> Result<(), RpcError> {
    let c = caller().await?;
    crate::server::service::orgs::delete(&c.svc, &c.ctx, &name)
        .await
        .map_err(fail)
}
