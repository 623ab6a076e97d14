//! Daily use counts on their way to `usage_daily`. The audit writer counts every fetch and
//! proxied call it commits and writes the sums once a minute inside a batch's transaction
//! (and at shutdown), so a busy agent costs one upsert a minute instead of one per call.
//! Readers add what this process has not written yet, so its charts are exact; another
//! instance's last minute shows once that instance writes it. A crash loses at most that
//! minute of counts; the audit log itself keeps every call.

use std::collections::HashMap;
use std::sync::{Arc, Mutex, PoisonError};

use super::AuditEntry;
use crate::model::OrgId;
use crate::server::store::usage::{Counts, UsageKey};

/// How often the counts are written.
pub const WRITE_EVERY_MS: i64 = 60_000;
const DAY_MS: i64 = 86_400_000;

/// Counts committed to the audit log but not yet to `usage_daily`.
#[derive(Clone, Default)]
pub struct UsageCounts(Arc<Mutex<HashMap<UsageKey, Counts>>>);

impl UsageCounts {
    fn with<T>(&self, f: impl FnOnce(&mut HashMap<UsageKey, Counts>) -> T) -> T {
        f(&mut self.0.lock().unwrap_or_else(PoisonError::into_inner))
    }

    /// Counts the committed `entries` that are uses (fetches, proxied calls) at `now`.
    pub fn count(&self, entries: &[AuditEntry], now: i64) {
        self.with(|map| {
            for e in entries {
                let proxied = match e.action {
                    "credential.vended" => false,
                    "proxy.called" => true,
                    _ => continue,
                };
                let (Some(tool_id), Some(agent_id)) = (&e.tool_id, &e.agent_id) else {
                    continue;
                };
                let key = UsageKey {
                    org_id: e.org_id.clone(),
                    tool_id: tool_id.clone(),
                    agent_id: agent_id.clone(),
                    day: day_of(now),
                };
                let counts = map.entry(key).or_default();
                if proxied {
                    counts.proxied += 1;
                } else {
                    counts.fetches += 1;
                }
            }
        });
    }

    /// Everything not yet written.
    pub fn unwritten(&self) -> Vec<(UsageKey, Counts)> {
        self.with(|map| map.iter().map(|(k, c)| (k.clone(), *c)).collect())
    }

    /// Forgets what a committed transaction wrote (counts added since stay).
    pub fn written(&self, rows: &[(UsageKey, Counts)]) {
        self.with(|map| {
            for (key, counts) in rows {
                if let Some(left) = map.get_mut(key) {
                    left.fetches -= counts.fetches;
                    left.proxied -= counts.proxied;
                    if left.fetches <= 0 && left.proxied <= 0 {
                        map.remove(key);
                    }
                }
            }
        });
    }

    /// The organization's unwritten counts, for readers.
    pub fn unwritten_of(&self, org_id: &OrgId) -> Vec<(UsageKey, Counts)> {
        self.with(|map| {
            map.iter()
                .filter(|(k, _)| &k.org_id == org_id)
                .map(|(k, c)| (k.clone(), *c))
                .collect()
        })
    }
}

/// The UTC day of a time in milliseconds.
pub fn day_of(ms: i64) -> i64 {
    ms.div_euclid(DAY_MS)
}
