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
use crate::server::store::{self, Conn, Store, StoreError, StoreResult};

const QUEUE: usize = 16_384;
const MAX_BATCH: usize = 512;
const TOUCH_EVERY_MS: i64 = 60_000;

/// A condition re-checked inside the transaction that writes the guarded entries.
pub trait CommitGuard: Clone + Send + Sync + 'static {
    /// Whether each of `guards` still holds, in order, read inside `tx` at time `now` (all the
    /// guards of one batch at once, so a batch costs one check).
    fn check_all(
        guards: &[&Self],
        tx: &mut Conn,
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
    task: std::sync::Arc<tokio::sync::Mutex<Option<Runner>>>,
}

/// Where the writer runs.
enum Runner {
    /// A task of the server's runtime.
    Task(JoinHandle<()>),
    /// A thread of its own, which says when it has ended (SQLite).
    Thread(oneshot::Receiver<()>),
}

impl Runner {
    /// Runs the writer on a thread of its own with a one-thread runtime. Every batch waits
    /// on a few answers from SQLite's worker thread, and each answer wakes the writer from
    /// outside the server's runtime: as a task of that runtime, the writer would wait in its
    /// queue behind the request handlers every time, while every fetch waits on the writer.
    /// A thread of its own is run by the system as soon as it is woken.
    fn on_own_thread(work: impl Future<Output = ()> + Send + 'static) -> Self {
        let (ended, wait) = oneshot::channel();
        let work = std::sync::Arc::new(std::sync::Mutex::new(Some(work)));
        let on_thread = work.clone();
        let spawned = std::thread::Builder::new()
            .name("agentkey-audit".into())
            .spawn(move || {
                let taken = on_thread
                    .lock()
                    .unwrap_or_else(std::sync::PoisonError::into_inner)
                    .take();
                let runtime = tokio::runtime::Builder::new_current_thread()
                    .enable_time()
                    .build();
                match (taken, runtime) {
                    (Some(work), Ok(runtime)) => runtime.block_on(work),
                    (_, Err(err)) => {
                        tracing::error!(error = %err, "the audit writer's runtime did not start")
                    }
                    (None, _) => {}
                }
                let _ = ended.send(());
            });
        match spawned {
            Ok(_) => Runner::Thread(wait),
            Err(err) => {
                tracing::warn!(error = %err, "no thread for the audit writer; it runs as a task");
                let work = work
                    .lock()
                    .unwrap_or_else(std::sync::PoisonError::into_inner)
                    .take();
                Runner::Task(tokio::spawn(async move {
                    if let Some(work) = work {
                        work.await;
                    }
                }))
            }
        }
    }
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
        let sqlite = store.backend() == store::Backend::Sqlite;
        let work = run(store, clock, rx, stop_rx, touched, metrics);
        let task = if sqlite {
            Runner::on_own_thread(work)
        } else {
            Runner::Task(tokio::spawn(work))
        };
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
        match self.task.lock().await.take() {
            Some(Runner::Task(task)) => {
                let _ = task.await;
            }
            Some(Runner::Thread(ended)) => {
                let _ = ended.await;
            }
            None => {}
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
    let mut held = Held::default();
    loop {
        if rx.is_empty() {
            // Nothing waiting: other writes may have the connection.
            held.release();
        }
        let first = tokio::select! {
            job = rx.recv() => job,
            _ = stop.changed() => { rx.close(); rx.recv().await }
            _ = quiet.tick() => {
                if clock.now_ms() - touched.usage_written_at >= WRITE_EVERY_MS {
                    held.release();
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
        commit_batch(&store, &clock, batch, &mut touched, &mut held).await;
        metrics.audit_batch_rows.observe(rows as f64);
        metrics
            .audit_commit_seconds
            .observe_duration(started.elapsed());
    }
    held.release();
    write_usage_now(&store, &touched.usage).await;
}

/// Longest the writer keeps its connection while batches keep coming; then it gives the
/// connection back, and a transaction of the services waiting for it goes first.
const HOLD_FOR: Duration = Duration::from_millis(20);

/// The writer's connection, kept from one batch to the next while the queue is busy: each
/// batch is begun and committed on it as plain statements ([`Store::begin_on`]), and it is not
/// given back to the pool (which pings a connection given back) and taken again per batch.
#[derive(Default)]
struct Held {
    conn: Option<(store::WriteConnection, std::time::Instant)>,
}

impl Held {
    async fn get(&mut self, store: &Store) -> StoreResult<&mut store::WriteConnection> {
        if self
            .conn
            .as_ref()
            .is_some_and(|(_, since)| since.elapsed() >= HOLD_FOR)
        {
            // Given back before asking again: the pool may have this one connection only.
            self.release();
        }
        let conn = match self.conn.take() {
            Some(conn) => conn,
            None => (store.write_connection().await?, std::time::Instant::now()),
        };
        Ok(&mut self.conn.insert(conn).0)
    }

    fn release(&mut self) {
        self.conn = None;
    }

    /// Rolls back what a failed batch began, and gives the connection back.
    async fn abandon(&mut self, store: &Store) {
        if let Some((conn, _)) = self.conn.take() {
            store.abandon(conn).await;
        }
    }
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
    held: &mut Held,
) {
    let started = std::time::Instant::now();
    let mut attempt = 0;
    let outcome = loop {
        let conn = match held.get(store).await {
            Ok(conn) => conn,
            Err(err) if attempt < 2 => {
                attempt += 1;
                tracing::warn!(error = %err, attempt, "no connection for the audit batch; retrying");
                tokio::time::sleep(Duration::from_millis(20 * attempt)).await;
                continue;
            }
            Err(err) => break Err(err),
        };
        let result = try_commit(store, conn, clock.now_ms(), &batch, touched).await;
        if result.is_err() {
            // Rolled back; the connection may be what failed: the next attempt takes one
            // from the pool.
            held.abandon(store).await;
        }
        match result {
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
    conn: &mut store::WriteConnection,
    now: i64,
    batch: &[Job<G>],
    touched: &mut Touched,
) -> store::StoreResult<Vec<bool>> {
    store.begin_on(conn).await?;
    let tx: &mut store::Conn = conn;
    let guards: Vec<&G> = batch.iter().filter_map(|j| j.guard.as_ref()).collect();
    let held = if guards.is_empty() {
        Vec::new()
    } else {
        G::check_all(&guards, tx, now).await?
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
        append(tx, store.heads(), &entries).await?;
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
            store::exposures::record(tx, &seen, now).await?;
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
    store::usage::add_usage(tx, &usage_rows).await?;
    store.commit_on(conn).await?;
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
