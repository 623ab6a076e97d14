//! Reading and verifying the audit log.

use std::collections::HashMap;

use crate::model::{ActorType, AuditEvent, ChainReport, OrgId};
use crate::server::audit::chain;
use crate::server::store::{self, audit::AuditFilter, audit::AuditRow};
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
    let names = Names::of(svc, &ctx.org_id).await?;
    Ok(rows.into_iter().map(|r| names.event(r)).collect())
}

/// The organization's agents' and tools' current names, to name each event's targets.
struct Names {
    agents: HashMap<String, String>,
    tools: HashMap<String, String>,
}

impl Names {
    async fn of(svc: &Services, org_id: &OrgId) -> ServiceResult<Self> {
        let reader = svc.store.reader();
        let agents = store::agents::list_agents(reader, org_id)
            .await?
            .into_iter()
            .map(|a| (a.id.into(), a.name))
            .collect();
        let tools = store::tools::list_tools(reader, org_id)
            .await?
            .into_iter()
            .map(|t| (t.id.into(), t.name))
            .collect();
        Ok(Names { agents, tools })
    }

    fn event(&self, r: AuditRow) -> AuditEvent {
        // The current name, else the one the event recorded (the agent or tool may be gone).
        let name_of = |list: &HashMap<String, String>,
                       id: Option<&str>,
                       meta: &serde_json::Value,
                       key: &str| {
            let id = id?;
            list.get(id)
                .cloned()
                .or_else(|| meta.get(key).and_then(|v| v.as_str()).map(str::to_owned))
        };
        let metadata: serde_json::Value =
            serde_json::from_str(&r.metadata).unwrap_or(serde_json::Value::Null);
        AuditEvent {
            agent_name: name_of(&self.agents, r.agent_id.as_deref(), &metadata, "agent_name"),
            tool_name: name_of(&self.tools, r.tool_id.as_deref(), &metadata, "tool_name"),
            metadata,
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
        }
    }
}

/// Verifies the hash chain of one organization.
pub async fn verify(svc: &Services, ctx: &AdminCtx) -> ServiceResult<ChainReport> {
    ctx.require(Permission::ReadAll)?;
    Ok(chain::verify(&svc.store, &ctx.org_id).await?)
}

/// Most rows one maintenance pass walks per organization (about 5 s here), so a first pass over
/// a long log that was never checked does not hold up the other maintenance for minutes.
const MAINTENANCE_WALK: i64 = 200_000;

/// Walks every organization's rows added since its last checkpoint (the maintenance worker
/// does, every minute), so the chain is checked as it grows and the dashboard's status stays
/// cheap; a broken chain is logged as an error. Returns how many chains are broken.
pub async fn check_chains(svc: &Services) -> anyhow::Result<usize> {
    let mut broken = 0;
    for org in store::orgs::list_all_organization_ids(svc.store.reader()).await? {
        let report =
            chain::verify_since_checkpoint(&svc.store, &org, Some(MAINTENANCE_WALK)).await?;
        if let (Some(seq), Some(problem)) = (report.broken_at_seq, report.problem) {
            tracing::error!(org_id = %org, seq, problem, "the audit chain is broken; run `agentkey audit verify`");
            broken += 1;
        }
    }
    Ok(broken)
}

/// The chain status the dashboard shows: the rows added since the last verification, after
/// checking that the row verified last is unchanged ([`chain::verify_since_checkpoint`]).
pub async fn chain_status(svc: &Services, ctx: &AdminCtx) -> ServiceResult<ChainReport> {
    ctx.require(Permission::ReadAll)?;
    Ok(chain::verify_since_checkpoint(&svc.store, &ctx.org_id, None).await?)
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

/// Rows an export reads at a time: its memory, whatever the number of rows.
const EXPORT_PAGE: i64 = 1000;

/// An export under way: every row matching its filter when it began, newest first, read a
/// page at a time as the download proceeds.
pub struct Export {
    svc: Services,
    org_id: OrgId,
    filter: AuditFilter,
    names: Names,
    done: bool,
}

/// Starts an export of every row matching `filter`: records it in the log (with its filters)
/// before the first row goes out. Rows appended meanwhile, this record included, are not part
/// of it.
pub async fn export(
    svc: &Services,
    ctx: &AdminCtx,
    filter: &AuditFilter,
    format: &str,
) -> ServiceResult<Export> {
    ctx.require(Permission::ReadAll)?;
    let newest = store::audit::newest_seq(svc.store.reader(), &ctx.org_id).await?;
    let mut filter = filter.clone();
    let snapshot = newest.map_or(0, |seq| seq + 1);
    filter.before_seq = Some(filter.before_seq.map_or(snapshot, |b| b.min(snapshot)));
    let entry = crate::server::audit::AuditEntry::new(&ctx.org_id, &ctx.actor, &ctx.meta, "audit.exported").meta(serde_json::json!({
        "format": format,
        "before_seq": filter.before_seq,
        "action": filter.action, "agent_id": filter.agent_id, "tool_id": filter.tool_id, "actor": filter.actor_id,
        "from_ms": filter.from_ms, "to_ms": filter.to_ms,
    }));
    let mut tx = svc.store.begin().await?;
    crate::server::audit::append(&mut tx, svc.store.heads(), &[entry]).await?;
    tx.commit().await?;
    Ok(Export {
        names: Names::of(svc, &ctx.org_id).await?,
        svc: svc.clone(),
        org_id: ctx.org_id.clone(),
        filter,
        done: false,
    })
}

impl Export {
    /// The next page of rows; `None` once all are out (or after a failure).
    pub async fn next_page(&mut self) -> ServiceResult<Option<Vec<AuditEvent>>> {
        if self.done {
            return Ok(None);
        }
        let rows = store::audit::list_rows(
            self.svc.store.reader(),
            &self.org_id,
            &self.filter,
            EXPORT_PAGE,
        )
        .await
        .inspect_err(|_| self.done = true)?;
        self.done = rows.len() < EXPORT_PAGE as usize;
        self.filter.before_seq = rows.last().map(|r| r.seq);
        if rows.is_empty() {
            return Ok(None);
        }
        Ok(Some(
            rows.into_iter().map(|r| self.names.event(r)).collect(),
        ))
    }
}
