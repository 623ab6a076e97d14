//! Outcomes of proxied calls, recorded in the audit log in batches: one `proxy.completed` row
//! per agent and tool per flush (every 250 ms) listing each call's
//! outcome by its `call_id`, so a burst of calls costs one audit row per call (its
//! `proxy.called`, written before the call) instead of two. A call whose answer echoed the
//! secret is recorded at once, on its own `proxy.secret_echoed` row.

use std::sync::{Mutex, Weak};
use std::time::{Duration, Instant};

use serde_json::{Value, json};

use crate::model::{AgentId, OrgId, RequestId, ToolId};
use crate::server::Services;
use crate::server::audit::AuditEntry;
use crate::server::events::EventKind;
use crate::server::service::actor::{Actor, RequestMeta};

const FLUSH_EVERY: Duration = Duration::from_millis(250);

/// Records how a call ended, as a second audit row beside its `proxy.called`.
pub struct CallRecord {
    pub(super) svc: Services,
    pub(super) org_id: OrgId,
    pub(super) actor: Actor,
    pub(super) meta: RequestMeta,
    pub(super) agent_id: AgentId,
    pub(super) tool_id: ToolId,
    pub(super) tool_name: String,
    pub(super) request_id: RequestId,
    pub(super) call_id: String,
    pub(super) method: String,
    pub(super) path: String,
    pub(super) started: Instant,
}

/// What the transport saw of a call.
#[derive(Debug, Default)]
pub struct Outcome {
    /// The upstream's status, when it answered.
    pub status: Option<u16>,
    pub request_bytes: u64,
    pub response_bytes: u64,
    /// How many echoes of the secret were replaced.
    pub redacted: usize,
    /// Why the call failed or was cut short (never holds the secret).
    pub error: Option<String>,
}

impl CallRecord {
    /// Records the outcome without waiting: with the next batch of `proxy.completed`, or at
    /// once on its own `proxy.secret_echoed` row when the upstream sent the secret back.
    pub fn record(self, outcome: Outcome) {
        let echoed = outcome.redacted > 0;
        let details = json!({
            "call_id": self.call_id, "request_id": self.request_id,
            "method": self.method, "path": self.path, "status": outcome.status,
            "request_bytes": outcome.request_bytes, "response_bytes": outcome.response_bytes,
            "duration_ms": self.started.elapsed().as_millis() as u64,
            "secret_echoed": echoed, "redactions": outcome.redacted,
            "error": outcome.error,
        });
        if !echoed {
            self.svc.proxy_outcomes.push(Pending {
                org_id: self.org_id,
                actor: self.actor,
                meta: self.meta,
                agent_id: self.agent_id,
                tool_id: self.tool_id,
                tool_name: self.tool_name,
                outcome: details,
            });
            return;
        }
        let mut details = details;
        details["tool_name"] = self.tool_name.into();
        let entry = AuditEntry::new(&self.org_id, &self.actor, &self.meta, "proxy.secret_echoed")
            .target("tool", &self.tool_id)
            .agent(&self.agent_id)
            .tool(&self.tool_id)
            .meta(details);
        let svc = self.svc;
        tokio::spawn(async move {
            if let Err(err) = svc.audit.commit(entry, None).await {
                tracing::error!(error = %err, "proxied call outcome not recorded");
            }
        });
    }
}

/// One finished call waiting for its batch.
struct Pending {
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
    fn push(&self, call: Pending) {
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
