//! The fetch path's in-memory cache: agents by key hash and plans by agent and tool. It is
//! only ever trusted as far as the commit-time guard confirms it.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use super::VendPlan;
use crate::model::{AgentId, ToolId};
use crate::server::service::actor::AgentCtx;

const CACHE_LIMIT: usize = 50_000;

/// Cached agents (by key hash) and plans (by agent and tool). Cleared on every local change.
#[derive(Default)]
pub struct VendCache {
    agents: Mutex<HashMap<String, Arc<AgentCtx>>>,
    plans: Mutex<HashMap<(AgentId, ToolId), Arc<VendPlan>>>,
}

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
}

impl VendCache {
    /// Drops everything (called after any local write that could affect a fetch).
    pub fn clear(&self) {
        lock(&self.agents).clear();
        lock(&self.plans).clear();
    }

    pub(super) fn agent(&self, key_hash: &str) -> Option<Arc<AgentCtx>> {
        lock(&self.agents).get(key_hash).cloned()
    }

    pub(super) fn put_agent(&self, agent: AgentCtx) {
        let mut agents = lock(&self.agents);
        if agents.len() >= CACHE_LIMIT {
            agents.clear();
        }
        agents.insert(agent.key_hash.clone(), Arc::new(agent));
    }

    pub(super) fn plan(&self, agent_id: &AgentId, tool_id: &ToolId) -> Option<Arc<VendPlan>> {
        lock(&self.plans)
            .get(&(agent_id.to_owned(), tool_id.to_owned()))
            .cloned()
    }

    pub(super) fn put_plan(&self, agent_id: &AgentId, plan: Arc<VendPlan>) {
        let mut plans = lock(&self.plans);
        if plans.len() >= CACHE_LIMIT {
            plans.clear();
        }
        plans.insert((agent_id.to_owned(), plan.tool_id.clone()), plan);
    }

    pub(super) fn forget(&self, key_hash: &str, agent_id: &AgentId, tool_id: &ToolId) {
        lock(&self.agents).remove(key_hash);
        lock(&self.plans).remove(&(agent_id.to_owned(), tool_id.to_owned()));
    }
}
