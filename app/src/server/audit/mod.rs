//! The audit log: entries, the hash chain, and the group-commit writer.

pub mod chain;
pub mod usage;
mod writer;

use serde_json::Value;

pub use writer::{AuditWriter, CommitError, CommitGuard, Exposure};

use crate::model::{ActorType, AgentId, OrgId, ToolId};
use crate::server::clock;
use crate::server::service::actor::{Actor, RequestMeta};
use crate::server::store::{
    self, Tx,
    audit::{AuditRow, HeadCache},
};

/// Longest user agent kept in an audit row.
const MAX_USER_AGENT: usize = 256;

/// One action to record. Built with [`AuditEntry::new`] and the chained setters.
#[derive(Clone, Debug)]
pub struct AuditEntry {
    pub org_id: OrgId,
    pub actor_type: ActorType,
    pub actor_id: String,
    pub actor_label: String,
    pub action: &'static str,
    pub target_type: Option<&'static str>,
    pub target_id: Option<String>,
    pub agent_id: Option<AgentId>,
    pub tool_id: Option<ToolId>,
    pub ip: Option<String>,
    pub user_agent: Option<String>,
    pub metadata: Value,
}

impl AuditEntry {
    /// An entry for `action` by `actor` in `org_id`.
    pub fn new(org_id: &OrgId, actor: &Actor, meta: &RequestMeta, action: &'static str) -> Self {
        AuditEntry {
            org_id: org_id.clone(),
            actor_type: actor.kind,
            actor_id: actor.id.clone(),
            actor_label: actor.label.clone(),
            action,
            target_type: None,
            target_id: None,
            agent_id: None,
            tool_id: None,
            ip: meta.ip.clone(),
            user_agent: meta
                .user_agent
                .as_deref()
                .map(|ua| ua.chars().take(MAX_USER_AGENT).collect()),
            metadata: Value::Object(Default::default()),
        }
    }

    /// The object acted on.
    pub fn target(mut self, kind: &'static str, id: &str) -> Self {
        self.target_type = Some(kind);
        self.target_id = Some(id.to_owned());
        self
    }

    /// The agent concerned (indexed, for the agent filter).
    pub fn agent(mut self, id: &AgentId) -> Self {
        self.agent_id = Some(id.clone());
        self
    }

    /// The tool concerned (indexed, for the tool filter).
    pub fn tool(mut self, id: &ToolId) -> Self {
        self.tool_id = Some(id.clone());
        self
    }

    /// Free-form details. Never put a secret here.
    pub fn meta(mut self, metadata: Value) -> Self {
        self.metadata = metadata;
        self
    }
}

/// Appends entries inside the caller's transaction, chaining each organization's rows.
///
/// The usual case costs one statement per organization: the rows are chained from the cached
/// head, and the head's compare-and-set and the insert go together. If another writer moved
/// the head since, nothing was written: the head is re-read (row-locked) and the rows are
/// re-chained.
pub async fn append(
    tx: &mut Tx,
    heads: &HeadCache,
    entries: &[AuditEntry],
) -> store::StoreResult<()> {
    let now = clock::now_ms();
    let mut orgs: Vec<&OrgId> = entries.iter().map(|e| &e.org_id).collect();
    orgs.sort_unstable();
    orgs.dedup();
    for org in orgs {
        let batch: Vec<&AuditEntry> = entries.iter().filter(|e| &e.org_id == org).collect();
        let n = batch.len() as i64;
        if let Some((seq, hash)) = heads.get(org) {
            let rows = chain_rows(&batch, seq + 1, hash.clone(), now);
            let last = rows.last().map(|r| r.hash.clone()).unwrap_or_default();
            if store::audit::append_at_head(tx, org, (seq, &hash), (seq + n, &last), &rows).await? {
                heads.set(org, seq + n, &last);
                continue;
            }
        }
        let (first_seq, prev) = store::audit::reserve_seq(tx, org, batch.len()).await?;
        let rows = chain_rows(&batch, first_seq, prev, now);
        let last = rows.last().map(|r| r.hash.clone()).unwrap_or_default();
        store::audit::set_head_hash(tx, org, &last).await?;
        store::audit::insert_rows(tx, &rows).await?;
        heads.set(org, first_seq + n - 1, &last);
    }
    Ok(())
}

fn chain_rows(batch: &[&AuditEntry], first_seq: i64, mut prev: String, now: i64) -> Vec<AuditRow> {
    batch
        .iter()
        .enumerate()
        .map(|(offset, entry)| {
            let mut row = AuditRow {
                id: uuid::Uuid::now_v7().to_string(),
                organization_id: entry.org_id.clone(),
                seq: first_seq + offset as i64,
                created_at: now,
                actor_type: entry.actor_type.as_str().to_owned(),
                actor_id: entry.actor_id.clone(),
                actor_label: entry.actor_label.clone(),
                action: entry.action.to_owned(),
                target_type: entry.target_type.map(str::to_owned),
                target_id: entry.target_id.clone(),
                agent_id: entry.agent_id.clone(),
                tool_id: entry.tool_id.clone(),
                ip: entry.ip.clone(),
                user_agent: entry.user_agent.clone(),
                metadata: entry.metadata.to_string(),
                prev_hash: std::mem::take(&mut prev),
                hash: String::new(),
            };
            row.hash = chain::row_hash(&row);
            prev = row.hash.clone();
            row
        })
        .collect()
}
