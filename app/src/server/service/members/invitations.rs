//! Invitations: an owner or admin invites by email, the link (hashed, 7 days, once) creates the
//! membership when accepted.

use serde_json::json;

use super::domains;
use crate::model::{ActorType, InvitationPeek, InvitationView, Role};
use crate::server::audit::{self, AuditEntry};
use crate::server::crypto::token_hash;
use crate::server::mail::{Mail, escape_html};
use crate::server::service::actor::{Actor, AdminCtx, Permission, RequestMeta};
use crate::server::service::auth::{SignedIn, new_token};
use crate::server::service::new_id;
use crate::server::service::orgs::{is_email, normalize_email};
use crate::server::store::{self, members::NewInvitation};
use crate::server::{ServiceError, ServiceResult, Services, clock};

/// An invitation link is valid for 7 days.
pub const INVITATION_TTL_MS: i64 = 7 * 24 * 60 * 60 * 1000;

fn invitation_not_found() -> ServiceError {
    ServiceError::not_found(
        "Invitation not found.",
        "It may have been used, revoked or expired; reload the members page.",
    )
}

fn invitation_invalid() -> ServiceError {
    ServiceError::Unauthenticated(
        crate::model::ErrorBody::new("This invitation is invalid, used, revoked or expired.")
            .hint("Ask the person who invited you for a new one."),
    )
}

/// Invites `email` as `role` and mails the link. Replaces an open invitation of the same
/// address. Only owners may invite owners; the organization's domain allow-list applies.
pub async fn invite(
    svc: &Services,
    ctx: &AdminCtx,
    email: &str,
    role: Role,
) -> ServiceResult<InvitationView> {
    ctx.require(Permission::InviteMembers)?;
    if role == Role::Owner {
        ctx.require(Permission::ManageMembers)?;
    }
    let email = normalize_email(email);
    if !is_email(&email) {
        return Err(ServiceError::field(
            "email",
            "must be an email address",
            "Enter the address the invitation goes to.",
        ));
    }
    let allowed = domains(store::members::allowed_domains(svc.store.reader(), &ctx.org_id).await?);
    let domain = email.rsplit('@').next().unwrap_or("");
    if !allowed.is_empty() && !allowed.iter().any(|d| d == domain) {
        return Err(ServiceError::field(
            "email",
            format!("must be an address at {}", allowed.join(" or ")),
            "This organization only admits those domains.",
        ));
    }
    let existing = store::members::list_members(svc.store.reader(), &ctx.org_id).await?;
    if existing.iter().any(|m| m.email == email) {
        return Err(ServiceError::conflict(
            "This person is already a member.",
            "Change their role instead.",
        ));
    }
    let now = clock::now_ms();
    let (token, hash) = new_token();
    let id = new_id();
    let mut tx = svc.store.begin().await?;
    store::members::revoke_open_invitations(&mut tx, &ctx.org_id, &email, now).await?;
    let new = NewInvitation {
        id: &id,
        org_id: &ctx.org_id,
        email: &email,
        role,
        token_hash: &hash,
        invited_by: &ctx.actor.label,
        expires_at: now + INVITATION_TTL_MS,
    };
    store::members::insert_invitation(&mut tx, &new, now).await?;
    let entry = AuditEntry::new(&ctx.org_id, &ctx.actor, &ctx.meta, "member.invited")
        .target("invitation", &id)
        .meta(json!({ "email": email, "role": role.as_str() }));
    audit::append(&mut tx, svc.store.heads(), &[entry]).await?;
    tx.commit().await?;
    send_invitation(svc, ctx, &email, role, &token).await?;
    Ok(InvitationView {
        id,
        email,
        role,
        invited_by: ctx.actor.label.clone(),
        created_at: clock::iso(now),
        expires_at: clock::iso(now + INVITATION_TTL_MS),
    })
}

async fn send_invitation(
    svc: &Services,
    ctx: &AdminCtx,
    email: &str,
    role: Role,
    token: &str,
) -> ServiceResult<()> {
    let org = store::orgs::find_organization(svc.store.reader(), &ctx.org_id)
        .await?
        .map(|o| o.name)
        .unwrap_or_default();
    let url = format!("{}/invite?token={token}", svc.base_url);
    let mail = Mail {
        to: email.to_owned(),
        subject: format!("You are invited to {org} on AgentKey"),
        text: format!(
            "{} invited you to {org} on AgentKey as {}.\n\nAccept: {url}\n\nThe link works once and expires in 7 days. \
             If you did not expect it, ignore this message.",
            ctx.actor.label,
            role.as_str()
        ),
        html: format!(
            "<p>{} invited you to <strong>{}</strong> on AgentKey as {}.</p><p><a href=\"{}\">Accept the invitation</a></p>\
             <p>The link works once and expires in 7 days. If you did not expect it, ignore this message.</p>",
            escape_html(&ctx.actor.label),
            escape_html(&org),
            role.as_str(),
            escape_html(&url)
        ),
        message_id: None,
    };
    svc.mailer.send(mail).await.map_err(|e| {
        tracing::warn!(error = format!("{e:#}"), "invitation mail failed");
        ServiceError::conflict(
            "The invitation is saved but the mail could not be sent.",
            "Check the SMTP settings, then use Resend.",
        )
    })
}

/// Sends an open invitation again with a fresh link and a fresh 7 days.
pub async fn resend(svc: &Services, ctx: &AdminCtx, id: &str) -> ServiceResult<InvitationView> {
    ctx.require(Permission::InviteMembers)?;
    if !crate::server::service::is_uuid(id) {
        return Err(invitation_not_found());
    }
    let row = store::members::find_invitation(svc.store.reader(), &ctx.org_id, id)
        .await?
        .ok_or_else(invitation_not_found)?;
    if row.accepted_at.is_some() || row.revoked_at.is_some() {
        return Err(invitation_not_found());
    }
    invite(svc, ctx, &row.email, row.role).await
}

/// Withdraws an open invitation; its link stops working at once.
pub async fn revoke_invitation(svc: &Services, ctx: &AdminCtx, id: &str) -> ServiceResult<()> {
    ctx.require(Permission::InviteMembers)?;
    if !crate::server::service::is_uuid(id) {
        return Err(invitation_not_found());
    }
    let row = store::members::find_invitation(svc.store.reader(), &ctx.org_id, id)
        .await?
        .ok_or_else(invitation_not_found)?;
    let mut tx = svc.store.begin().await?;
    if !store::members::revoke_invitation(&mut tx, &ctx.org_id, &row.id, clock::now_ms()).await? {
        return Err(invitation_not_found());
    }
    let entry = AuditEntry::new(&ctx.org_id, &ctx.actor, &ctx.meta, "invitation.revoked")
        .target("invitation", &row.id)
        .meta(json!({ "email": row.email }));
    audit::append(&mut tx, svc.store.heads(), &[entry]).await?;
    tx.commit().await?;
    Ok(())
}

/// What the invitation page shows (does not use the link).
pub async fn peek(svc: &Services, token: &str) -> ServiceResult<InvitationPeek> {
    let row =
        store::members::find_invitation_by_token(svc.store.reader(), &token_hash(token.trim()))
            .await?;
    let now = clock::now_ms();
    Ok(match row {
        Some(r) if r.accepted_at.is_none() && r.revoked_at.is_none() && r.expires_at > now => {
            let org = store::orgs::find_organization(svc.store.reader(), &r.organization_id)
                .await?
                .map(|o| o.name);
            InvitationPeek {
                valid: true,
                org_name: org,
                email: Some(r.email),
                role: Some(r.role),
            }
        }
        _ => InvitationPeek {
            valid: false,
            org_name: None,
            email: None,
            role: None,
        },
    })
}

/// Uses an invitation: creates the user if new and the membership, in one transaction with the
/// audit row. The link was mailed to the invited address, so holding it proves the address.
pub async fn accept(svc: &Services, token: &str, meta: &RequestMeta) -> ServiceResult<SignedIn> {
    let now = clock::now_ms();
    let mut tx = svc.store.begin().await?;
    let row = store::members::find_invitation_by_token(&mut *tx, &token_hash(token.trim()))
        .await?
        .ok_or_else(invitation_invalid)?;
    if !store::members::accept_invitation(&mut tx, &row.id, now).await? {
        return Err(invitation_invalid());
    }
    // The allowed domains may have narrowed since the invitation was sent.
    let allowed = domains(store::members::allowed_domains(&mut *tx, &row.organization_id).await?);
    if !allowed.is_empty()
        && !allowed
            .iter()
            .any(|d| row.email.rsplit('@').next() == Some(d.as_str()))
    {
        return Err(invitation_invalid());
    }
    let user_id = store::orgs::upsert_user(&mut tx, &new_id(), &row.email, now).await?;
    if store::members::find_member(&mut *tx, &row.organization_id, &user_id)
        .await?
        .is_some()
    {
        return Err(ServiceError::conflict(
            "You are already a member of this organization.",
            "Sign in instead.",
        ));
    }
    store::orgs::insert_membership(
        &mut tx,
        &new_id(),
        &row.organization_id,
        &user_id,
        row.role,
        now,
    )
    .await?;
    let actor = Actor {
        kind: ActorType::Human,
        id: user_id.clone().into(),
        label: row.email.clone(),
    };
    let entry = AuditEntry::new(&row.organization_id, &actor, meta, "member.joined")
        .target("user", &user_id)
        .meta(json!({ "role": row.role, "invitation_id": row.id, "invited_by": row.invited_by }));
    audit::append(&mut tx, svc.store.heads(), &[entry]).await?;
    tx.commit().await?;
    Ok(SignedIn {
        user_id: user_id.into(),
        email: row.email,
        org_id: row.organization_id.into(),
    })
}
