//! Group commit for audit rows written outside a service transaction (credential fetches,
//! refused suspended agents). Callers queue an entry and wait; one task drains the queue and
//! commits everything waiting in one transaction, so a burst of fetches shares one fsync.
//!
//! An entry may carry a guard ([`CommitGuard`]): inside the committing transaction the writer
//! asks the guards of the batch whether they still hold, and drops the entries whose guard
//! does not. What a guard checks is its owner's business (the credential fetch defines its
//! own in `service::vend`); the writer only promises that an entry is written, and its caller
//! told to go ahead, in the same transaction that found its guard holding.

use std::collections::HashMap;
use std::time::Duration;

use tokio::sync::{mpsc, oneshot, watch};
use tokio::task::JoinHandle;

use super::usage::{UsageCounts, WRITE_EVERY_MS};
use super::{AuditEntry, append};
use crate::model::{AgentId, RequestId, ToolId};
use crate::server::clock::Clock;
use crate::server::metrics::Metrics;
use crate::server::store::{self, Store, StoreError, StoreResult, Tx};

const QUEUE: usize = 16_384;
const MAX_BATCH: usize = 512;
const TOUCH_EVERY_MS: i64 = 60_000;

/// A condition re-checked inside the transaction that writes the guarded entries.
pub trait CommitGuard: Clone + Send + Sync + 'static {
    /// Whether each of `guards` still holds, in order, read inside `tx` at time `now` (all the
    /// guards of one batch at once, so a batch costs one check).
    fn check_all(
        guards: &[&Self],
        tx: &mut Tx,
        now: i64,
    ) -> impl Future<Output = StoreResult<Vec<bool>>> + Send;

    /// The secret a committed entry of this guard put in an agent's hands (or used for it), for
    /// the exposure ledger.
    fn exposure(&self) -> Option<Exposure> {
        None
    }
}

/// Which version of which secret a fetch handed to an agent, or a proxied call used for it.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct Exposure {
    pub request_id: RequestId,
    /// The tool's shared secret (else the grant's own).
    pub shared: bool,
    pub version: i64,
    pub proxied: bool,
}

/// What this writer last recorded, so that a busy agent costs a write a minute, not one per
/// fetch: agents' last use, and each exposure's last time.
#[derive(Default)]
pub struct Touched {
    /// Each agent's latest committed use of each tool, shared with [`AuditWriter::last_uses`].
    last_uses: LastUses,
    agents: HashMap<AgentId, i64>,
    exposures: HashMap<(AgentId, Exposure), i64>,
    usage: UsageCounts,
    usage_written_at: i64,
}

/// When each agent last used each tool (a committed fetch or proxied call), to the batch.
type LastUses = std::sync::Arc<std::sync::Mutex<HashMap<(AgentId, ToolId), i64>>>;

/// Why an entry was not committed.
#[derive(Debug, thiserror::Error)]
pub enum CommitError {
    /// The guard no longer holds: re-plan from the database.
    #[error("the grant changed before the fetch was recorded")]
    Stale,
    /// The writer is shut down or the transaction failed.
    #[error("audit write failed: {0}")]
    Failed(String),
}

struct Job<G> {
    entry: AuditEntry,
    guard: Option<G>,
    done: oneshot::Sender<Result<(), CommitError>>,
}

/// Handle to the writer task.
#[derive(Clone)]
pub struct AuditWriter<G: CommitGuard> {
    queue: mpsc::Sender<Job<G>>,
    usage: UsageCounts,
    last_uses: LastUses,
    stop: watch::Sender<bool>,
    task: std::sync::Arc<tokio::sync::Mutex<Option<JoinHandle<()>>>>,
}

impl<G: CommitGuard> AuditWriter<G> {
    /// Spawns the writer on the current runtime; it reports its batches to `metrics`.
    pub fn start(store: Store, clock: Clock, metrics: std::sync::Arc<Metrics>) -> Self {
        let (queue, rx) = mpsc::channel(QUEUE);
        let (stop, stop_rx) = watch::channel(false);
        let usage = UsageCounts::default();
        let touched = Touched {
            usage: usage.clone(),
            ..Touched::default()
        };
        let last_uses = touched.last_uses.clone();
        let task = tokio::spawn(run(store, clock, rx, stop_rx, touched, metrics));
        AuditWriter {
            queue,
            usage,
            last_uses,
            stop,
            task: std::sync::Arc::new(tokio::sync::Mutex::new(Some(task))),
        }
    }

    /// Queues an entry and waits until its transaction has committed.
    pub async fn commit(&self, entry: AuditEntry, guard: Option<G>) -> Result<(), CommitError> {
        let (done, wait) = oneshot::channel();
        self.queue
            .send(Job { entry, guard, done })
            .await
            .map_err(|_| CommitError::Failed("audit writer is shut down".into()))?;
        wait.await
            .map_err(|_| CommitError::Failed("audit writer stopped".into()))?
    }

    /// Entries queued and not yet taken by the writer.
    pub fn queued(&self) -> usize {
        self.queue.max_capacity() - self.queue.capacity()
    }

    /// Use counts committed but not yet written to `usage_daily`.
    pub fn usage(&self) -> &UsageCounts {
        &self.usage
    }

    /// Each agent's latest use of each tool committed by this writer (the exposure ledger, which
    /// other processes also read, is updated at most once a minute).
    pub fn last_uses(&self) -> Vec<((AgentId, ToolId), i64)> {
        let map = self
            .last_uses
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        map.iter().map(|(k, v)| (k.clone(), *v)).collect()
    }

    /// Stops accepting work, commits what is queued, and waits for the task to end.
    pub async fn shutdown(&self) {
        let _ = self.stop.send(true);
        if let Some(task) = self.task.lock().await.take() {
            let _ = task.await;
        }
    }
}

async fn run<G: CommitGuard>(
    store: Store,
    clock: Clock,
    mut rx: mpsc::Receiver<Job<G>>,
    mut stop: watch::Receiver<bool>,
    mut touched: Touched,
    metrics: std::sync::Arc<Metrics>,
) {
    // Counts also reach the table when no batch comes along to carry them.
    let mut quiet = tokio::time::interval(Duration::from_millis(WRITE_EVERY_MS as u64));
    quiet.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        let first = tokio::select! {
            job = rx.recv() => job,
            _ = stop.changed() => { rx.close(); rx.recv().await }
            _ = quiet.tick() => {
                if clock.now_ms() - touched.usage_written_at >= WRITE_EVERY_MS {
                    write_usage_now(&store, &touched.usage).await;
                    touched.usage_written_at = clock.now_ms();
                }
                continue;
            }
        };
        let Some(first) = first else { break };
        let mut batch = vec![first];
        while batch.len() < MAX_BATCH {
            match rx.try_recv() {
                Ok(job) => batch.push(job),
                Err(_) => break,
            }
        }
        let (rows, started) = (batch.len(), std::time::Instant::now());
        commit_batch(&store, &clock, batch, &mut touched).await;
        metrics.audit_batch_rows.observe(rows as f64);
        metrics
            .audit_commit_seconds
            .observe_duration(started.elapsed());
    }
    write_usage_now(&store, &touched.usage).await;
}

/// The counts not yet written, in a transaction of their own (when idle, and at shutdown).
async fn write_usage_now(store: &Store, usage: &UsageCounts) {
    let rows = usage.unwritten();
    if rows.is_empty() {
        return;
    }
    let result = async {
        let mut tx = store.begin().await?;
        store::usage::add_usage(&mut tx, &rows).await?;
        tx.commit().await?;
        StoreResult::Ok(())
    }
    .await;
    match result {
        Ok(()) => usage.written(&rows),
        Err(err) => tracing::warn!(error = %err, "the last minute of use counts was not written"),
    }
}

async fn commit_batch<G: CommitGuard>(
    store: &Store,
    clock: &Clock,
    batch: Vec<Job<G>>,
    touched: &mut Touched,
) {
    let started = std::time::Instant::now();
    let mut attempt = 0;
    let outcome = loop {
        match try_commit(store, clock.now_ms(), &batch, touched).await {
            Ok(valid) => break Ok(valid),
            Err(err) if attempt < 2 => {
                attempt += 1;
                tracing::warn!(error = %err, attempt, "audit batch failed; retrying");
                tokio::time::sleep(Duration::from_millis(20 * attempt)).await;
            }
            Err(err) => break Err(err),
        }
    };
    tracing::debug!(
        rows = batch.len(),
        micros = started.elapsed().as_micros() as u64,
        "audit batch committed"
    );
    match outcome {
        Ok(valid) => {
            for (job, ok) in batch.into_iter().zip(valid) {
                let _ = job
                    .done
                    .send(if ok { Ok(()) } else { Err(CommitError::Stale) });
            }
        }
        Err(err) => {
            tracing::error!(error = %err, rows = batch.len(), "audit batch could not be committed");
            for job in batch {
                let _ = job
                    .done
                    .send(Err(CommitError::Failed("audit log unavailable".into())));
            }
        }
    }
}

/// One transaction: check guards, append the entries whose guard holds, and record agents'
/// last use (at most once a minute per agent, to keep the batch to a few statements).
async fn try_commit<G: CommitGuard>(
    store: &Store,
    now: i64,
    batch: &[Job<G>],
    touched: &mut Touched,
) -> store::StoreResult<Vec<bool>> {
    let mut tx = store.begin().await?;
    let guards: Vec<&G> = batch.iter().filter_map(|j| j.guard.as_ref()).collect();
    let held = if guards.is_empty() {
        Vec::new()
    } else {
        G::check_all(&guards, &mut tx, now).await?
    };
    if held.len() != guards.len() {
        // A guard that answers for the wrong number of entries cannot be matched to them:
        // nothing of this batch is written, so nothing is released.
        return Err(StoreError::Other(sqlx::Error::Protocol(
            "a commit guard answered for the wrong number of entries".into(),
        )));
    }
    let mut held = held.into_iter();
    // `held` answers the guarded jobs in order; an unguarded job is always written.
    let valid: Vec<bool> = batch
        .iter()
        .map(|job| job.guard.is_none() || held.next().unwrap_or(false))
        .collect();
    let entries: Vec<AuditEntry> = batch
        .iter()
        .zip(&valid)
        .filter(|(_, ok)| **ok)
        .map(|(job, _)| job.entry.clone())
        .collect();
    let mut agents_done = Vec::new();
    let mut exposures_done: Vec<(AgentId, Exposure)> = Vec::new();
    if !entries.is_empty() {
        append(&mut tx, store.heads(), &entries).await?;
        let mut agents: Vec<&AgentId> = entries
            .iter()
            .filter(|e| is_use(e.action))
            .filter_map(|e| e.agent_id.as_ref())
            .collect();
        agents.sort_unstable();
        agents.dedup();
        for agent in agents {
            if touched
                .agents
                .get(agent)
                .is_none_or(|t| now - t > TOUCH_EVERY_MS)
            {
                store::agents::touch_agent(&mut *tx, agent, now).await?;
                agents_done.push(agent.clone());
            }
        }
        for (job, _) in batch.iter().zip(&valid).filter(|(_, ok)| **ok) {
            let (Some(exposure), Some(agent), Some(tool)) = (
                job.guard.as_ref().and_then(CommitGuard::exposure),
                job.entry.agent_id.as_ref(),
                job.entry.tool_id.as_ref(),
            ) else {
                continue;
            };
            let key = (agent.clone(), exposure);
            if exposures_done.contains(&key)
                || touched
                    .exposures
                    .get(&key)
                    .is_some_and(|t| now - t <= TOUCH_EVERY_MS)
            {
                continue;
            }
            let seen = store::exposures::Seen {
                org_id: &job.entry.org_id,
                tool_id: tool,
                agent_id: agent,
                agent_name: &job.entry.actor_label,
                request_id: &key.1.request_id,
                shared: key.1.shared,
                version: key.1.version,
                proxied: key.1.proxied,
            };
            store::exposures::record(&mut tx, &seen, now).await?;
            exposures_done.push(key);
        }
    }
    // The minute's use counts ride along with this batch.
    let usage_due = now - touched.usage_written_at >= WRITE_EVERY_MS;
    let usage_rows = if usage_due {
        touched.usage.unwritten()
    } else {
        Vec::new()
    };
    store::usage::add_usage(&mut tx, &usage_rows).await?;
    tx.commit().await?;
    if usage_due {
        touched.usage.written(&usage_rows);
        touched.usage_written_at = now;
    }
    touched.usage.count(&entries, now);
    {
        let mut last = touched
            .last_uses
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        for e in entries.iter().filter(|e| is_use(e.action)) {
            if let (Some(agent), Some(tool)) = (&e.agent_id, &e.tool_id) {
                last.insert((agent.clone(), tool.clone()), now);
            }
        }
    }
    // Remembered only once committed: a batch that is retried records its exposures again.
    for agent in agents_done {
        touched.agents.insert(agent, now);
    }
    for key in exposures_done {
        touched.exposures.insert(key, now);
    }
    Ok(valid)
}

/// Whether an entry records a use of a credential (a fetch or a proxied call).
fn is_use(action: &str) -> bool {
    action == "credential.vended" || action == "proxy.called"
}
