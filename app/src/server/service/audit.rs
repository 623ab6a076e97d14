//! Reading and verifying the audit log.

use crate::model::{ActorType, AuditEvent, ChainReport};
use crate::server::audit::chain;
use crate::server::store::{self, audit::AuditFilter};
use crate::server::{Services, ServiceResult, clock};

use super::actor::{AdminCtx, Permission};

/// Newest-first events matching `filter`, at most `limit` (1–1000).
pub async fn list(svc: &Services, ctx: &AdminCtx, filter: &AuditFilter, limit: i64) -> ServiceResult<Vec<AuditEvent>> {
    ctx.require(Permission::ReadAll)?;
    let rows = store::audit::list_rows(svc.store.reader(), &ctx.org_id, filter, limit.clamp(1, 1000)).await?;
    Ok(rows
        .into_iter()
        .map(|r| AuditEvent {
            metadata: serde_json::from_str(&r.metadata).unwrap_or(serde_json::Value::Null),
            actor_type: ActorType::parse(&r.actor_type).unwrap_or(ActorType::System),
            id: r.id,
            seq: r.seq,
            created_at: clock::iso(r.created_at),
            actor_id: r.actor_id,
            actor_label: r.actor_label,
            action: r.action,
            target_type: r.target_type,
            target_id: r.target_id,
            agent_id: r.agent_id,
            tool_id: r.tool_id,
            ip: r.ip,
            user_agent: r.user_agent,
        })
        .collect())
}

/// Verifies the hash chain of one organization.
pub async fn verify(svc: &Services, ctx: &AdminCtx) -> ServiceResult<ChainReport> {
    ctx.require(Permission::ReadAll)?;
    Ok(chain::verify(&svc.store, &ctx.org_id).await?)
}
