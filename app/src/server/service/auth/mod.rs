//! Dashboard sign-in by one-time link, the bootstrap link of an empty instance, and the member
//! context that every dashboard action runs under.
//!
//! A link's GET only shows a confirmation page; the token is consumed by a same-origin POST,
//! so mail scanners that prefetch links cannot burn or use it.

mod link_mail;

pub use link_mail::{LinkRequest, SignInMailQueue, run_sign_in_mail};

use serde_json::json;

use super::actor::{Actor, AdminCtx, RequestMeta};
use super::new_id;
use super::orgs::{self, is_email, normalize_email};
use crate::model::{ActorType, ConfirmView, MemberView, OrgChoice, OrgId, SessionView, UserId};
use crate::server::audit::{self, AuditEntry};
use crate::server::auth::limiter::Window;
use crate::server::crypto::{hex, token_hash};
use crate::server::store::{self, auth::NewToken};
use crate::server::{ServiceError, ServiceResult, Services, clock};

/// A sign-in link is valid for 15 minutes.
pub const LINK_TTL_MS: i64 = 15 * 60 * 1000;
/// The bootstrap link of an empty instance is valid for a day (or until the next start).
pub const BOOTSTRAP_TTL_MS: i64 = 24 * 60 * 60 * 1000;

/// Link requests per mailbox and per client address in a 15-minute window.
pub const LINKS_PER_MAILBOX: Window = Window {
    max: 5,
    window_ms: 15 * 60 * 1000,
};
pub const LINKS_PER_IP: Window = Window {
    max: 20,
    window_ms: 15 * 60 * 1000,
};
/// Confirmation attempts (right or wrong tokens) per client address.
pub const CONFIRMS_PER_IP: Window = Window {
    max: 30,
    window_ms: 15 * 60 * 1000,
};

pub(crate) fn new_token() -> (String, String) {
    use aes_gcm::aead::{OsRng, rand_core::RngCore};
    let mut bytes = [0_u8; 32];
    OsRng.fill_bytes(&mut bytes);
    let token = hex(&bytes);
    let hash = token_hash(&token);
    (token, hash)
}

fn confirm_url(svc: &Services, token: &str) -> String {
    format!("{}/auth/confirm?token={token}", svc.base_url)
}

fn too_many() -> ServiceError {
    ServiceError::Forbidden(
        crate::model::ErrorBody::new("Too many sign-in attempts.")
            .hint("Wait a few minutes, then try again."),
    )
}

/// Emails a sign-in link when `email` belongs to a member. The answer is the same either way,
/// so the form cannot be used to find out who is a member: not by its text, and not by its
/// timing either, since the link is made and mailed after the answer, by the sign-in mail
/// queue (a slow mail server would otherwise slow down members' answers only).
pub async fn request_link(svc: &Services, email: &str, meta: &RequestMeta) -> ServiceResult<()> {
    let email = normalize_email(email);
    if !is_email(&email) {
        return Err(ServiceError::field(
            "email",
            "must be an email address",
            "Enter the address your invitation was sent to.",
        ));
    }
    let ip = meta.ip.clone().unwrap_or_default();
    if !svc.sign_in_limits.allow(&format!("ip:{ip}"), LINKS_PER_IP)
        || !svc
            .sign_in_limits
            .allow(&format!("mail:{email}"), LINKS_PER_MAILBOX)
    {
        return Err(too_many());
    }
    let Some(_user) = store::auth::find_member_user(svc.store.reader(), &email).await? else {
        tracing::info!("sign-in link requested for an address with no membership");
        return Ok(());
    };
    svc.sign_in_mail.push(LinkRequest {
        email,
        requested_ip: meta.ip.clone(),
    });
    Ok(())
}

/// On an instance without any member, issues the one-time link that creates the first
/// organization and its owner; earlier unused bootstrap links stop working.
pub async fn bootstrap_link(svc: &Services) -> ServiceResult<Option<String>> {
    if store::auth::count_memberships(svc.store.reader()).await? > 0 {
        return Ok(None);
    }
    let now = clock::now_ms();
    store::auth::expire_bootstrap_tokens(svc.store.writer(), now).await?;
    let (token, hash) = new_token();
    let new = NewToken {
        id: &new_id(),
        token_hash: &hash,
        purpose: "bootstrap",
        email: None,
        requested_ip: None,
        expires_at: now + BOOTSTRAP_TTL_MS,
    };
    store::auth::insert_token(svc.store.writer(), &new, now).await?;
    Ok(Some(confirm_url(svc, &token)))
}

fn link_invalid() -> ServiceError {
    ServiceError::Unauthenticated(
        crate::model::ErrorBody::new("This sign-in link is invalid, used or expired.")
            .hint("Request a new link from the sign-in page."),
    )
}

/// What the confirmation page should ask, without consuming the token.
pub async fn peek(svc: &Services, token: &str) -> ServiceResult<ConfirmView> {
    let row = store::auth::find_token(svc.store.reader(), &token_hash(token.trim())).await?;
    let now = clock::now_ms();
    Ok(match row {
        Some(r) if r.consumed_at.is_none() && r.expires_at > now => ConfirmView {
            valid: true,
            bootstrap: r.purpose == "bootstrap",
            email: r.email,
        },
        _ => ConfirmView {
            valid: false,
            bootstrap: false,
            email: None,
        },
    })
}

/// Who signed in.
#[derive(Clone, Debug)]
pub struct SignedIn {
    pub user_id: String,
    pub email: String,
    pub org_id: String,
}

/// Consumes a link. A bootstrap link also creates the organization and its owner, in the same
/// transaction, so a failure leaves the link usable.
pub async fn confirm(
    svc: &Services,
    token: &str,
    bootstrap: Option<(&str, &str)>,
    meta: &RequestMeta,
) -> ServiceResult<SignedIn> {
    let ip = meta.ip.clone().unwrap_or_default();
    if !svc
        .sign_in_limits
        .allow(&format!("confirm:{ip}"), CONFIRMS_PER_IP)
    {
        return Err(too_many());
    }
    let now = clock::now_ms();
    let mut tx = svc.store.begin().await?;
    let Some(row) = store::auth::find_token(&mut *tx, &token_hash(token.trim())).await? else {
        return Err(link_invalid());
    };
    if row.consumed_at.is_some()
        || row.expires_at <= now
        || !store::auth::consume_token(&mut tx, &row.id, now).await?
    {
        return Err(link_invalid());
    }
    let signed_in = if row.purpose == "bootstrap" {
        let Some((org_name, email)) = bootstrap else {
            return Err(ServiceError::field(
                "email",
                "is required",
                "Enter your email address and a name for the organization.",
            ));
        };
        if store::auth::count_memberships(&mut *tx).await? > 0 {
            return Err(link_invalid());
        }
        let email = normalize_email(email);
        let actor = Actor {
            kind: ActorType::Human,
            id: "bootstrap".into(),
            label: email.clone(),
        };
        let (org, dek) =
            orgs::create_in(svc, &mut tx, &actor, meta, org_name, Some(&email)).await?;
        let user_id = store::auth::find_member_user(&mut *tx, &email)
            .await?
            .ok_or_else(link_invalid)?;
        let entry = AuditEntry::new(
            &OrgId::new(org.id.clone()),
            &Actor {
                kind: ActorType::Human,
                id: user_id.clone().into(),
                label: email.clone(),
            },
            meta,
            "member.signed_in",
        )
        .target("user", &user_id)
        .meta(json!({ "method": "bootstrap_link" }));
        audit::append(&mut tx, svc.store.heads(), &[entry]).await?;
        tx.commit().await?;
        svc.keys.insert(&org.id, dek);
        SignedIn {
            user_id: user_id.into(),
            email,
            org_id: org.id,
        }
    } else {
        let email = row.email.clone().unwrap_or_default();
        let user_id = store::auth::find_member_user(&mut *tx, &email)
            .await?
            .ok_or_else(link_invalid)?;
        let memberships = store::auth::find_memberships(&mut *tx, &user_id).await?;
        let Some(first) = memberships.first() else {
            return Err(link_invalid());
        };
        let actor = Actor {
            kind: ActorType::Human,
            id: user_id.clone().into(),
            label: email.clone(),
        };
        let entry = AuditEntry::new(&first.organization_id, &actor, meta, "member.signed_in")
            .target("user", &user_id)
            .meta(json!({ "method": "email_link" }));
        audit::append(&mut tx, svc.store.heads(), &[entry]).await?;
        tx.commit().await?;
        SignedIn {
            user_id: user_id.into(),
            email,
            org_id: first.organization_id.clone().into(),
        }
    };
    Ok(signed_in)
}

fn signed_out() -> ServiceError {
    ServiceError::Unauthenticated(
        crate::model::ErrorBody::new("You are signed out.")
            .hint("Sign in again from the sign-in page."),
    )
}

/// The member context of a signed-in user in `org_id` (or their first organization).
pub async fn member(
    svc: &Services,
    user_id: &UserId,
    org_id: Option<&str>,
    meta: RequestMeta,
) -> ServiceResult<(AdminCtx, MemberView)> {
    let rows = store::auth::find_memberships(svc.store.reader(), user_id).await?;
    let current = org_id
        .and_then(|id| rows.iter().find(|r| r.organization_id == id))
        .or(rows.first())
        .ok_or_else(signed_out)?;
    let role = current.role;
    let ctx = AdminCtx {
        org_id: current.organization_id.clone(),
        actor: Actor {
            kind: ActorType::Human,
            id: current.user_id.clone().into(),
            label: current.email.clone(),
        },
        role,
        meta,
    };
    let view = MemberView {
        user_id: current.user_id.clone(),
        email: current.email.clone(),
        org_id: current.organization_id.clone().into(),
        org_name: current.organization_name.clone(),
        role,
        organizations: rows
            .iter()
            .map(|r| OrgChoice {
                id: r.organization_id.clone().into(),
                name: r.organization_name.clone(),
                role: r.role,
            })
            .collect(),
    };
    Ok((ctx, view))
}

/// Records a sign-out in the audit log.
pub async fn record_sign_out(svc: &Services, ctx: &AdminCtx) -> ServiceResult<()> {
    let mut tx = svc.store.begin().await?;
    let entry = AuditEntry::new(&ctx.org_id, &ctx.actor, &ctx.meta, "member.signed_out")
        .target("user", &ctx.actor.id);
    audit::append(&mut tx, svc.store.heads(), &[entry]).await?;
    tx.commit().await?;
    Ok(())
}

/// The organization a signed-in person may switch to: one they are a member of, read again
/// from the database rather than taken from the page.
pub async fn switch_target(svc: &Services, user_id: &UserId, org_id: &str) -> ServiceResult<OrgId> {
    let not_found =
        || ServiceError::not_found("Organization not found.", "Pick one of your organizations.");
    let org_id = OrgId::parse(org_id).ok_or_else(not_found)?;
    let memberships = store::auth::find_memberships(svc.store.reader(), user_id).await?;
    if memberships.iter().any(|m| m.organization_id == org_id) {
        Ok(org_id)
    } else {
        Err(not_found())
    }
}

/// The caller's live sessions; `current_hash` marks the one making the request.
pub async fn list_sessions(
    svc: &Services,
    user_id: &UserId,
    current_hash: &str,
) -> ServiceResult<Vec<SessionView>> {
    let rows =
        store::auth::list_user_sessions(svc.store.reader(), user_id, clock::now_ms()).await?;
    Ok(rows
        .into_iter()
        .map(|r| SessionView {
            handle: r.id_hash.chars().take(16).collect(),
            current: r.id_hash == current_hash,
            ip: r.ip,
            user_agent: r.user_agent,
            created_at: clock::iso(r.created_at),
            last_seen_at: clock::iso(r.updated_at),
            expires_at: clock::iso(r.expires_at),
        })
        .collect())
}

/// Ends one of the caller's sessions by its handle.
pub async fn revoke_session(svc: &Services, user_id: &UserId, handle: &str) -> ServiceResult<()> {
    if handle.len() != 16 || !handle.chars().all(|c| c.is_ascii_hexdigit()) {
        return Err(ServiceError::not_found(
            "No such session.",
            "Pick a session from your session list.",
        ));
    }
    match store::auth::delete_user_session(svc.store.writer(), user_id, handle).await? {
        0 => Err(ServiceError::not_found(
            "No such session.",
            "Pick a session from your session list.",
        )),
        _ => Ok(()),
    }
}
