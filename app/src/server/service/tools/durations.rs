//! A tool's grant durations: the longest an approval may give, and the length used when the
//! agent asks for none.

use serde_json::json;

use super::{get, load};
use crate::model::{GrantDuration, ToolView};
use crate::server::audit::{self, AuditEntry};
use crate::server::events::EventKind;
use crate::server::service::actor::{AdminCtx, Permission};
use crate::server::service::validate::Check;
use crate::server::store;
use crate::server::{ServiceResult, Services};

/// Sets the tool's maximum and default grant durations (`None`: no maximum; the maximum, else
/// standing, by default). Live grants keep their end; requests waiting are approved within the
/// new maximum.
pub async fn set_durations(
    svc: &Services,
    ctx: &AdminCtx,
    id: &str,
    max: Option<GrantDuration>,
    default: Option<GrantDuration>,
) -> ServiceResult<ToolView> {
    ctx.require(Permission::ManageTools)?;
    let max = max.filter(|m| *m != GrantDuration::Standing);
    if let Some(d) = default
        && !d.within(max)
    {
        let mut check = Check::new();
        check.fail(
            "default_duration",
            format!(
                "{d} is longer than the maximum of {}",
                max.map(GrantDuration::label).unwrap_or_default()
            ),
        );
        check.finish("Pick a default no longer than the maximum.")?;
    }
    let row = load(svc, ctx, id).await?;
    let mut tx = svc.store.begin().await?;
    store::rules::set_durations(
        &mut tx,
        &ctx.org_id,
        &row.id,
        max,
        default,
        svc.clock.now_ms(),
    )
    .await?;
    let entry = AuditEntry::new(&ctx.org_id, &ctx.actor, &ctx.meta, "tool.durations_changed")
        .target("tool", &row.id)
        .tool(&row.id)
        .meta(json!({
            "tool_name": row.name, "max_duration": max, "default_duration": default,
            "was": { "max_duration": row.max_duration, "default_duration": row.default_duration },
        }));
    audit::append(&mut tx, svc.store.heads(), &[entry]).await?;
    tx.commit().await?;
    svc.vend_cache.clear();
    svc.events.publish(&ctx.org_id, EventKind::ToolChanged);
    get(svc, ctx, id).await
}
