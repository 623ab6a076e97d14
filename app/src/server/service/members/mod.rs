//! Members and invitations. Owners and admins invite by email (a 7-day, single-use link bound
//! to the invited address); owners change roles and remove members; anyone may leave. An
//! organization always keeps at least one owner. Every change is audited with IP and agent.

use serde_json::json;

use super::actor::{AdminCtx, Permission};
use crate::model::{InvitationView, MemberEntry, MembersView, OrgId, Role, UserId};
use crate::server::audit::{self, AuditEntry};
use crate::server::store::{self};
use crate::server::{ServiceError, ServiceResult, Services, clock};

mod invitations;

pub use invitations::{INVITATION_TTL_MS, accept, invite, peek, resend, revoke_invitation};

fn member_not_found() -> ServiceError {
    ServiceError::not_found("Member not found.", "Pick a member of this organization.")
}

fn domains(text: Option<String>) -> Vec<String> {
    text.unwrap_or_default()
        .split(',')
        .map(|d| d.trim().to_ascii_lowercase())
        .filter(|d| !d.is_empty())
        .collect()
}

/// The members page: members, open invitations and what the caller may change.
pub async fn list(svc: &Services, ctx: &AdminCtx) -> ServiceResult<MembersView> {
    ctx.require(Permission::ReadAll)?;
    let reader = svc.store.reader();
    let members = store::members::list_members(reader, &ctx.org_id)
        .await?
        .into_iter()
        .map(|m| MemberEntry {
            you: m.user_id == ctx.actor.id,
            role: m.role,
            user_id: m.user_id.into(),
            email: m.email,
            joined_at: clock::iso(m.created_at),
        })
        .collect();
    let invitations = store::members::list_open_invitations(reader, &ctx.org_id, clock::now_ms())
        .await?
        .into_iter()
        .map(|i| InvitationView {
            role: i.role,
            id: i.id,
            email: i.email,
            invited_by: i.invited_by,
            created_at: clock::iso(i.created_at),
            expires_at: clock::iso(i.expires_at),
        })
        .collect();
    Ok(MembersView {
        members,
        invitations,
        allowed_domains: domains(store::members::allowed_domains(reader, &ctx.org_id).await?),
        can_invite: ctx.role.allows(Permission::InviteMembers),
        can_manage: ctx.role.allows(Permission::ManageMembers),
    })
}

/// Refuses a change that would leave the organization without an owner.
async fn keep_an_owner(
    tx: &mut store::Tx,
    org_id: &OrgId,
    losing: &store::members::MembershipRow,
) -> ServiceResult<()> {
    if losing.role == Role::Owner && store::members::count_owners(&mut **tx, org_id).await? <= 1 {
        return Err(ServiceError::conflict(
            "An organization always keeps at least one owner.",
            "Make another member an owner first.",
        ));
    }
    Ok(())
}

/// Changes a member's role (owners only).
pub async fn change_role(
    svc: &Services,
    ctx: &AdminCtx,
    user_id: &str,
    role: Role,
) -> ServiceResult<()> {
    ctx.require(Permission::ManageMembers)?;
    let user_id = &UserId::parse(user_id).ok_or_else(member_not_found)?;
    let mut tx = svc.store.begin().await?;
    let member = store::members::find_member(&mut *tx, &ctx.org_id, user_id)
        .await?
        .ok_or_else(member_not_found)?;
    if member.role == role {
        return Ok(());
    }
    keep_an_owner(&mut tx, &ctx.org_id, &member).await?;
    store::members::set_role(&mut tx, &ctx.org_id, user_id, role).await?;
    if !role.can_decide() {
        store::votes::withdraw_pending_votes(&mut tx, &ctx.org_id, user_id).await?;
    }
    let entry = AuditEntry::new(&ctx.org_id, &ctx.actor, &ctx.meta, "member.role_changed")
        .target("user", user_id)
        .meta(json!({ "email": member.email, "from": member.role, "to": role.as_str() }));
    audit::append(&mut tx, svc.store.heads(), &[entry]).await?;
    tx.commit().await?;
    Ok(())
}

/// Removes a member (owners only); every session of theirs ends at once.
pub async fn remove(svc: &Services, ctx: &AdminCtx, user_id: &str) -> ServiceResult<()> {
    ctx.require(Permission::ManageMembers)?;
    let user_id = UserId::parse(user_id).ok_or_else(member_not_found)?;
    end_membership(svc, ctx, &user_id, "member.removed").await
}

/// The caller leaves the organization.
pub async fn leave(svc: &Services, ctx: &AdminCtx) -> ServiceResult<()> {
    end_membership(svc, ctx, &ctx.user_id(), "member.left").await
}

async fn end_membership(
    svc: &Services,
    ctx: &AdminCtx,
    user_id: &UserId,
    action: &'static str,
) -> ServiceResult<()> {
    let mut tx = svc.store.begin().await?;
    let member = store::members::find_member(&mut *tx, &ctx.org_id, user_id)
        .await?
        .ok_or_else(member_not_found)?;
    keep_an_owner(&mut tx, &ctx.org_id, &member).await?;
    store::members::delete_membership(&mut tx, &ctx.org_id, user_id).await?;
    // What they could do ends with them: sessions, approvals on pending requests, queued mail.
    let ended = store::members::delete_user_sessions(&mut tx, user_id).await?;
    store::votes::withdraw_pending_votes(&mut tx, &ctx.org_id, user_id).await?;
    store::outbox::dead_letter_recipient(&mut tx, &ctx.org_id, &member.email).await?;
    let entry = AuditEntry::new(&ctx.org_id, &ctx.actor, &ctx.meta, action)
        .target("user", user_id)
        .meta(json!({ "email": member.email, "role": member.role, "sessions_ended": ended }));
    audit::append(&mut tx, svc.store.heads(), &[entry]).await?;
    tx.commit().await?;
    Ok(())
}

/// Sets the email domains new members must use (owners only); empty allows any.
pub async fn set_allowed_domains(
    svc: &Services,
    ctx: &AdminCtx,
    text: &str,
) -> ServiceResult<Vec<String>> {
    ctx.require(Permission::ManageMembers)?;
    let list = domains(Some(text.to_owned()));
    if let Some(bad) = list
        .iter()
        .find(|d| !d.contains('.') || d.contains(['@', ' ', '/']) || d.len() > 253)
    {
        return Err(ServiceError::field(
            "domains",
            format!("{bad:?} is not a domain"),
            "List domains like example.com, separated by commas.",
        ));
    }
    let joined = list.join(",");
    let mut tx = svc.store.begin().await?;
    store::members::set_allowed_domains(
        &mut tx,
        &ctx.org_id,
        (!joined.is_empty()).then_some(joined.as_str()),
    )
    .await?;
    let entry = AuditEntry::new(
        &ctx.org_id,
        &ctx.actor,
        &ctx.meta,
        "organization.domains_changed",
    )
    .target("organization", &ctx.org_id)
    .meta(json!({ "allowed_domains": list }));
    audit::append(&mut tx, svc.store.heads(), &[entry]).await?;
    tx.commit().await?;
    Ok(list)
}
