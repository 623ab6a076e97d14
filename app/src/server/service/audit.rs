//! Reading and verifying the audit log.

use crate::model::{ActorType, AuditEvent, ChainReport};
use crate::server::audit::chain;
use crate::server::store::{self, audit::AuditFilter};
use crate::server::{ServiceResult, Services, clock};

use super::actor::{AdminCtx, Permission};

/// Newest-first events matching `filter`, at most `limit` (1–1000).
pub async fn list(
    svc: &Services,
    ctx: &AdminCtx,
    filter: &AuditFilter,
    limit: i64,
) -> ServiceResult<Vec<AuditEvent>> {
    ctx.require(Permission::ReadAll)?;
    let rows = store::audit::list_rows(
        svc.store.reader(),
        &ctx.org_id,
        filter,
        limit.clamp(1, 1000),
    )
    .await?;
    let reader = svc.store.reader();
    let agents: Vec<(String, String)> = store::agents::list_agents(reader, &ctx.org_id)
        .await?
        .into_iter()
        .map(|a| (a.id.into(), a.name))
        .collect();
    let tools: Vec<(String, String)> = store::tools::list_tools(reader, &ctx.org_id)
        .await?
        .into_iter()
        .map(|t| (t.id.into(), t.name))
        .collect();
    // The current name, else the one the event recorded (the agent or tool may be gone).
    let name_of =
        |list: &[(String, String)], id: Option<&str>, meta: &serde_json::Value, key: &str| {
            let id = id?;
            list.iter()
                .find(|(i, _)| i == id)
                .map(|(_, n)| n.clone())
                .or_else(|| meta.get(key).and_then(|v| v.as_str()).map(str::to_owned))
        };
    Ok(rows
        .into_iter()
        .map(|r| {
            let metadata: serde_json::Value =
                serde_json::from_str(&r.metadata).unwrap_or(serde_json::Value::Null);
            let agent_name = name_of(&agents, r.agent_id.as_deref(), &metadata, "agent_name");
            let tool_name = name_of(&tools, r.tool_id.as_deref(), &metadata, "tool_name");
            (r, metadata, agent_name, tool_name)
        })
        .map(|(r, metadata, agent_name, tool_name)| AuditEvent {
            metadata,
            agent_name,
            tool_name,
            actor_type: ActorType::parse(&r.actor_type).unwrap_or(ActorType::System),
            id: r.id,
            seq: r.seq,
            created_at: clock::iso(r.created_at),
            actor_id: r.actor_id,
            actor_label: r.actor_label,
            action: r.action,
            target_type: r.target_type,
            target_id: r.target_id,
            agent_id: r.agent_id.map(Into::into),
            tool_id: r.tool_id.map(Into::into),
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

/// Reads the dashboard's audit filters; dates are RFC 3339 or `YYYY-MM-DD` (UTC, the whole day).
pub fn filter_from(q: &crate::model::AuditQuery) -> ServiceResult<AuditFilter> {
    let text = |s: &str| Some(s.trim().to_owned()).filter(|s| !s.is_empty());
    let date = |field: &str, s: &str, end_of_day: bool| -> ServiceResult<Option<i64>> {
        let s = s.trim();
        if s.is_empty() {
            return Ok(None);
        }
        let parsed = clock::parse_iso(s).or_else(|| {
            clock::parse_iso(&format!("{s}T00:00:00Z"))
                .map(|ms| if end_of_day { ms + 86_400_000 } else { ms })
        });
        parsed.map(Some).ok_or_else(|| {
            crate::server::ServiceError::field(
                field,
                "must be a date like 2026-11-28",
                "Use YYYY-MM-DD or an RFC 3339 time.",
            )
        })
    };
    // `credential.*` or `credential.` matches every credential action.
    let action = text(&q.action);
    let action_prefix = action
        .as_deref()
        .is_some_and(|a| a.ends_with('*') || a.ends_with('.'));
    let action = action.map(|a| a.trim_end_matches('*').to_owned());
    if let Some(a) = &action
        && (a.is_empty()
            || !a
                .chars()
                .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '.' || c == '_'))
    {
        return Err(crate::server::ServiceError::field(
            "action",
            "must be an action such as credential.vended, or the start of one such as credential.*",
            "Pick an action from the list, or end a prefix with a dot or *.",
        ));
    }
    Ok(AuditFilter {
        action_prefix,
        action,
        agent_id: text(&q.agent_id),
        tool_id: text(&q.tool_id),
        actor_id: text(&q.actor),
        from_ms: date("since", &q.since, false)?,
        to_ms: date("until", &q.until, true)?,
        before_seq: q.before_seq,
    })
}

/// Most rows one export returns.
pub const EXPORT_MAX: usize = 100_000;

/// Every row matching `filter` (newest first, at most [`EXPORT_MAX`]); the export itself is
/// recorded in the log with its filters and row count.
pub async fn export(
    svc: &Services,
    ctx: &AdminCtx,
    filter: &AuditFilter,
    format: &str,
) -> ServiceResult<Vec<AuditEvent>> {
    ctx.require(Permission::ReadAll)?;
    let mut rows = Vec::new();
    let mut page_filter = filter.clone();
    loop {
        let page = list(svc, ctx, &page_filter, 1000).await?;
        let full = page.len() == 1000;
        page_filter.before_seq = page.last().map(|e| e.seq);
        rows.extend(page);
        if !full || rows.len() >= EXPORT_MAX {
            break;
        }
    }
    rows.truncate(EXPORT_MAX);
    let entry = crate::server::audit::AuditEntry::new(&ctx.org_id, &ctx.actor, &ctx.meta, "audit.exported").meta(serde_json::json!({
        "format": format,
        "rows": rows.len(),
        "action": filter.action, "agent_id": filter.agent_id, "tool_id": filter.tool_id, "actor": filter.actor_id,
        "from_ms": filter.from_ms, "to_ms": filter.to_ms,
    }));
    let mut tx = svc.store.begin().await?;
    crate::server::audit::append(&mut tx, svc.store.heads(), &[entry]).await?;
    tx.commit().await?;
    Ok(rows)
}
