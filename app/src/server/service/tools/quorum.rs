//! A tool's quorum: how many distinct reviewers must approve each of its requests, checked
//! against the reviewers the organization has.

use serde_json::json;

use super::{get, load};
use crate::model::{OrgId, ToolView};
use crate::server::audit::{self, AuditEntry};
use crate::server::events::EventKind;
use crate::server::service::actor::{AdminCtx, Permission};
use crate::server::service::validate::Check;
use crate::server::store;
use crate::server::{ServiceError, ServiceResult, Services};

/// Whether a quorum of `n` can be reached: 409 when fewer members may decide than `n`; a
/// warning when agents registered by one of them (who may not approve their requests) would
/// have fewer than `n` others to approve them. Both say how many reviewers there are.
async fn reachable_quorum(svc: &Services, org_id: &OrgId, n: i64) -> ServiceResult<Option<String>> {
    let reader = svc.store.reader();
    let deciders: Vec<String> = store::members::list_members(reader, org_id)
        .await?
        .into_iter()
        .filter(|m| m.role.allows(Permission::Decide))
        .map(|m| m.email)
        .collect();
    let count = deciders.len() as i64;
    if count < n {
        return Err(ServiceError::Conflict(
            crate::model::ErrorBody::new(format!(
                "A quorum of {n} cannot be reached: {count} member(s) may approve requests here."
            ))
            .hint(format!(
                "Invite {} more reviewer(s) (owner, admin or approver) first, or keep a smaller quorum.",
                n - count
            ))
            .with("eligible_reviewers", count)
            .with("reviewers_needed", n),
        ));
    }
    if count > n {
        return Ok(None);
    }
    let stuck: Vec<String> = store::agents::list_agents(reader, org_id)
        .await?
        .into_iter()
        .filter(|a| deciders.contains(&a.created_by))
        .map(|a| format!("{} (registered by {})", a.name, a.created_by))
        .collect();
    Ok((!stuck.is_empty()).then(|| {
        format!(
            "{count} member(s) may approve requests, so the requests of {} cannot reach {n} approvals: whoever registered an agent may not approve its requests. Invite another reviewer.",
            stuck.join(", ")
        )
    }))
}

/// Sets the tool's quorum: how many distinct reviewers must approve each request (1–3).
/// Pending requests are judged by the new number at their next approval.
pub async fn set_approvals_required(
    svc: &Services,
    ctx: &AdminCtx,
    id: &str,
    n: i64,
) -> ServiceResult<ToolView> {
    ctx.require(Permission::ManageTools)?;
    if !(1..=3).contains(&n) {
        let mut check = Check::new();
        check.fail("approvals_required", "must be 1, 2 or 3");
        check.finish("Pick how many different reviewers must approve each request.")?;
    }
    let row = load(svc, ctx, id).await?;
    let warning = if n > 1 {
        reachable_quorum(svc, &ctx.org_id, n).await?
    } else {
        None
    };
    let mut tx = svc.store.begin().await?;
    store::tools::set_approvals_required(&mut tx, &ctx.org_id, &row.id, n, svc.clock.now_ms())
        .await?;
    let entry = AuditEntry::new(&ctx.org_id, &ctx.actor, &ctx.meta, "tool.quorum_changed")
        .target("tool", &row.id)
        .tool(&row.id)
        .meta(json!({ "tool_name": row.name, "from": row.approvals_required, "to": n }));
    audit::append(&mut tx, svc.store.heads(), &[entry]).await?;
    tx.commit().await?;
    svc.events.publish(&ctx.org_id, EventKind::ToolChanged);
    let mut view = get(svc, ctx, id).await?;
    view.warning = warning;
    Ok(view)
}
