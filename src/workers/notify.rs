//! The notification delivery worker: keeps up to [`IN_FLIGHT`] sends going, claims due outbox
//! rows as slots free up, records finished sends in batches, and sleeps until the next row
//! falls due, a commit wakes it, or [`POLL`] passes (rows written by another process).

use std::time::Duration;

use app::server::notify::deliver;
use app::server::outbound::SendError;
use app::server::store::outbox::DeliveryRow;
use app::server::{Services, clock};
use tokio::task::JoinSet;

/// Concurrent sends per process.
pub const IN_FLIGHT: usize = 16;
/// Longest sleep without a wake-up: bounds the delay for rows another process enqueued.
const POLL: Duration = Duration::from_secs(2);
/// Pause after a database error before trying again.
const BACKOFF_ON_ERROR: Duration = Duration::from_secs(1);

type Finished = (DeliveryRow, Result<(), SendError>);

/// Runs until the services begin shutting down; then waits for the sends under way (each ends
/// within the client's timeout) and records them, so a clean stop never causes a resend.
pub async fn run(svc: Services) {
    let stopping = svc.stopping();
    tokio::pin!(stopping);
    let mut in_flight: JoinSet<Finished> = JoinSet::new();
    let mut finished: Vec<Finished> = Vec::new();
    loop {
        while let Some(done) = in_flight.try_join_next() {
            collect(done, &mut finished);
        }
        record(&svc, &mut finished).await;

        let free = IN_FLIGHT - in_flight.len();
        let mut saturated = false;
        if free > 0 {
            match deliver::claim(&svc, free).await {
                Ok(rows) => {
                    saturated = rows.len() == free;
                    for row in rows {
                        let svc = svc.clone();
                        in_flight.spawn(async move {
                            let result = deliver::attempt(&svc, &row).await;
                            (row, result)
                        });
                    }
                }
                Err(err) => {
                    tracing::error!(error = %err, "could not claim notifications");
                    tokio::time::sleep(BACKOFF_ON_ERROR).await;
                }
            }
        }
        let full = in_flight.len() >= IN_FLIGHT || saturated;
        let sleep = if full {
            POLL
        } else {
            until_next_due(&svc).await
        };
        tokio::select! {
            Some(done) = in_flight.join_next(), if !in_flight.is_empty() => collect(done, &mut finished),
            () = svc.notifier.woken(), if !full => {}
            () = tokio::time::sleep(sleep), if !full => {}
            () = &mut stopping => break,
        }
    }
    while let Some(done) = in_flight.join_next().await {
        collect(done, &mut finished);
    }
    record(&svc, &mut finished).await;
}

fn collect(done: Result<Finished, tokio::task::JoinError>, finished: &mut Vec<Finished>) {
    match done {
        Ok(item) => finished.push(item),
        // The row stays claimed until its lease runs out, then another attempt follows.
        Err(err) => tracing::error!(error = %err, "a notification send panicked"),
    }
}

async fn record(svc: &Services, finished: &mut Vec<Finished>) {
    if finished.is_empty() {
        return;
    }
    let batch = std::mem::take(finished);
    let n = batch.len();
    if let Err(err) = deliver::finish(svc, batch).await {
        // The rows stay claimed; after the lease they are sent again (at-least-once).
        tracing::error!(
            error = format!("{err:#}"),
            rows = n,
            "could not record notification results"
        );
    }
}

async fn until_next_due(svc: &Services) -> Duration {
    match deliver::next_due(svc).await {
        Ok(Some(at)) => Duration::from_millis(u64::try_from(at - clock::now_ms()).unwrap_or(0))
            .clamp(Duration::from_millis(5), POLL),
        Ok(None) => POLL,
        Err(err) => {
            tracing::error!(error = %err, "could not read the notification queue");
            POLL
        }
    }
}
