//! The organization's lifecycle settings: how long a request may wait, how long a grant may
//! sit unused.

use serde_json::json;

use crate::model::LifecycleSettings;
use crate::server::audit::{self, AuditEntry};
use crate::server::service::actor::{AdminCtx, Permission};
use crate::server::service::validate::Check;
use crate::server::store;
use crate::server::{ServiceError, ServiceResult, Services};

/// Longest a request may wait: 90 days.
const MAX_PENDING_HOURS: i64 = 90 * 24;

fn org_gone() -> ServiceError {
    ServiceError::not_found("Organization not found.", "Sign in again.")
}

pub async fn settings(svc: &Services, ctx: &AdminCtx) -> ServiceResult<LifecycleSettings> {
    ctx.require(Permission::ReadAll)?;
    let (pending_expiry_hours, idle_revoke_days) =
        store::lifecycle::org_settings(svc.store.reader(), &ctx.org_id)
            .await?
            .ok_or_else(org_gone)?;
    Ok(LifecycleSettings {
        pending_expiry_hours,
        idle_revoke_days,
    })
}

/// Saves them (owners and admins); the next maintenance pass applies them.
pub async fn save(
    svc: &Services,
    ctx: &AdminCtx,
    new: LifecycleSettings,
) -> ServiceResult<LifecycleSettings> {
    ctx.require(Permission::ManageTools)?;
    let mut check = Check::new();
    if !(1..=MAX_PENDING_HOURS).contains(&new.pending_expiry_hours) {
        check.fail(
            "pending_expiry_hours",
            format!("must be from 1 to {MAX_PENDING_HOURS} hours (90 days)"),
        );
    }
    if new
        .idle_revoke_days
        .is_some_and(|d| !(1..=365).contains(&d))
    {
        check.fail(
            "idle_revoke_days",
            "must be from 1 to 365 days, or empty for never",
        );
    }
    check.finish("Fix the listed fields and save again.")?;
    let was = settings(svc, ctx).await?;
    let mut tx = svc.store.begin().await?;
    if !store::lifecycle::set_org_settings(
        &mut tx,
        &ctx.org_id,
        new.pending_expiry_hours,
        new.idle_revoke_days,
    )
    .await?
    {
        return Err(org_gone());
    }
    let entry = AuditEntry::new(&ctx.org_id, &ctx.actor, &ctx.meta, "org.lifecycle_changed")
        .target("organization", &ctx.org_id)
        .meta(json!({
            "pending_expiry_hours": new.pending_expiry_hours, "idle_revoke_days": new.idle_revoke_days,
            "was": { "pending_expiry_hours": was.pending_expiry_hours, "idle_revoke_days": was.idle_revoke_days },
        }));
    audit::append(&mut tx, svc.store.heads(), &[entry]).await?;
    tx.commit().await?;
    Ok(new)
}
