//! Outcomes of proxied calls, recorded in the audit log in batches: one `proxy.completed` row
//! per agent and tool per flush (every 250 ms) listing each call's
//! outcome by its `call_id`, so a burst of calls costs one audit row per call (its
//! `proxy.called`, written before the call) instead of two. A call whose answer echoed the
//! secret is recorded at once, on its own `proxy.secret_echoed` row.

use std::sync::{Mutex, Weak};
use std::time::Duration;

use serde_json::{Value, json};

use crate::model::{AgentId, OrgId, ToolId};
use crate::server::Services;
use crate::server::audit::AuditEntry;
use crate::server::events::EventKind;
use crate::server::service::actor::{Actor, RequestMeta};

const FLUSH_EVERY: Duration = Duration::from_millis(250);

/// One finished call waiting for its batch.
pub(super) struct Pending {
    pub org_id: OrgId,
    pub actor: Actor,
    pub meta: RequestMeta,
    pub agent_id: AgentId,
    pub tool_id: ToolId,
    pub tool_name: String,
    pub outcome: Value,
}

/// Finished calls not yet in the audit log.
#[derive(Default)]
pub struct OutcomeLog {
    pending: Mutex<Vec<Pending>>,
}

impl OutcomeLog {
    pub(super) fn push(&self, call: Pending) {
        self.pending
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .push(call);
    }

    fn take(&self) -> Vec<Pending> {
        std::mem::take(&mut *self.pending.lock().unwrap_or_else(|e| e.into_inner()))
    }
}

/// Writes every waiting outcome: one row per agent and tool, through the audit writer.
pub async fn flush(svc: &Services) {
    let calls = svc.proxy_outcomes.take();
    if calls.is_empty() {
        return;
    }
    let mut groups: Vec<(Pending, Vec<Value>)> = Vec::new();
    for call in calls {
        match groups
            .iter_mut()
            .find(|(first, _)| first.agent_id == call.agent_id && first.tool_id == call.tool_id)
        {
            Some((_, outcomes)) => outcomes.push(call.outcome),
            None => {
                let outcome = call.outcome.clone();
                groups.push((call, vec![outcome]));
            }
        }
    }
    let mut orgs: Vec<OrgId> = groups
        .iter()
        .map(|(first, _)| first.org_id.clone())
        .collect();
    orgs.sort_unstable();
    orgs.dedup();
    let commits = groups.into_iter().map(|(first, outcomes)| {
        let entry = AuditEntry::new(&first.org_id, &first.actor, &first.meta, "proxy.completed")
            .target("tool", &first.tool_id)
            .agent(&first.agent_id)
            .tool(&first.tool_id)
            .meta(
                json!({ "tool_name": first.tool_name, "count": outcomes.len(), "calls": outcomes }),
            );
        svc.audit.commit(entry, None)
    });
    for result in futures_util::future::join_all(commits).await {
        if let Err(err) = result {
            tracing::error!(error = %err, "proxied call outcomes not recorded");
        }
    }
    // Open dashboards refresh the use they show: once per batch, not once per call.
    for org in orgs {
        svc.events.publish(&org, EventKind::CredentialVended);
    }
}

/// Flushes on a timer until the services are dropped (shutdown flushes the rest).
pub async fn run(svc: Weak<crate::server::Inner>) {
    loop {
        tokio::time::sleep(FLUSH_EVERY).await;
        let Some(inner) = svc.upgrade() else { return };
        flush(&Services(inner)).await;
    }
}
