//! What a fetch or proxied call was planned against, re-checked by the audit writer in the
//! transaction that records it (and, for proxied calls, the budget claimed there).

use super::{AgentCtx, VendPlan, day_of};
use crate::model::{AgentStatus, RequestId};
use crate::server::audit::{CommitGuard, Exposure};
use crate::server::store::{self, StoreResult, Tx, vend::GuardRow};

/// The state a fetch was planned against. The audit writer re-checks it inside the
/// transaction that records the fetch, and the credential is released only when it held there:
/// a revoke, suspension, key rotation, secret rotation or guide change committed before the
/// audit row always wins, even when another process made it.
///
/// A proxied call's guard also claims one call of the grant's daily budget in that
/// transaction (`claim`: the limit), so a budget holds across instances.
#[derive(Clone, Debug)]
pub struct VendGuard {
    request_id: RequestId,
    key_hash: String,
    grant_credential_version: i64,
    tool_credential_version: i64,
    instructions_version: i64,
    proxy_version: i64,
    claim: Option<i64>,
    exposure: Exposure,
}

impl VendGuard {
    /// The guard of a call planned from `plan`; `claim` spends one call of the budget.
    pub(in crate::server::service) fn of(agent: &AgentCtx, plan: &VendPlan, claim: bool) -> Self {
        VendGuard {
            request_id: plan.request_id.clone(),
            key_hash: agent.key_hash.clone(),
            grant_credential_version: plan.grant_credential_version,
            tool_credential_version: plan.tool_credential_version,
            instructions_version: plan.instructions_version,
            proxy_version: plan.proxy_version,
            claim: claim.then(|| plan.calls_per_day.unwrap_or(i64::MAX)),
            exposure: Exposure {
                request_id: plan.request_id.clone(),
                shared: !plan.per_agent,
                version: if plan.per_agent {
                    plan.grant_credential_version
                } else {
                    plan.tool_credential_version
                },
                proxied: claim,
            },
        }
    }

    fn holds(&self, row: &GuardRow, now: i64) -> bool {
        row.request_id == self.request_id
            && store::requests::is_live_grant(row.status, row.expires_at, now)
            && row.agent_status == AgentStatus::Active
            && row.key_hash == self.key_hash
            && row.grant_credential_version == self.grant_credential_version
            && row.tool_credential_version == self.tool_credential_version
            && row.instructions_version == self.instructions_version
            && row.proxy_version == self.proxy_version
    }
}

impl CommitGuard for VendGuard {
    fn exposure(&self) -> Option<Exposure> {
        Some(self.exposure.clone())
    }

    async fn check_all(guards: &[&Self], tx: &mut Tx, now: i64) -> StoreResult<Vec<bool>> {
        let ids: Vec<&RequestId> = guards.iter().map(|g| &g.request_id).collect();
        let rows = store::vend::find_guard_rows(tx, &ids).await?;
        let mut held: Vec<bool> = guards
            .iter()
            .map(|g| rows.iter().any(|row| g.holds(row, now)))
            .collect();
        // Budget claims: one statement per grant of the batch; one per call only for a grant
        // whose calls do not all fit in what is left of its budget.
        let mut groups: Vec<(&RequestId, i64, Vec<usize>)> = Vec::new();
        for (i, g) in guards.iter().enumerate() {
            let Some(limit) = g.claim.filter(|_| held[i]) else {
                continue;
            };
            match groups
                .iter_mut()
                .find(|(id, l, _)| **id == g.request_id && *l == limit)
            {
                Some((_, _, members)) => members.push(i),
                None => groups.push((&g.request_id, limit, vec![i])),
            }
        }
        let day = day_of(now);
        for (id, limit, members) in groups {
            let n = members.len() as i64;
            if store::proxy_use::claim_calls(tx, id, day, n, limit).await? {
                continue;
            }
            for k in 0..members.len() {
                if !store::proxy_use::claim_calls(tx, id, day, 1, limit).await? {
                    for j in &members[k..] {
                        held[*j] = false;
                    }
                    break;
                }
            }
        }
        Ok(held)
    }
}
