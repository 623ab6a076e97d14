//! The maintenance worker: runs the lifecycle pass (pending expiry, grant expiry, idle revoke)
//! once a minute, drops the data keys of organizations deleted meanwhile, and checks the audit
//! rows appended since the last pass. Several instances may run it on one database; each row
//! is acted on once (see `app::server::service::lifecycle::sweep`).

use std::time::Duration;

use app::server::Services;
use app::server::service::lifecycle::sweep;
use app::server::service::{audit, keys};

/// Time between passes; a pass also follows start-up after [`FIRST`].
const EVERY: Duration = Duration::from_secs(60);
const FIRST: Duration = Duration::from_secs(5);

/// Runs until the services begin shutting down.
pub async fn run(svc: Services) {
    let stopping = svc.stopping();
    tokio::pin!(stopping);
    let mut wait = FIRST;
    loop {
        tokio::select! {
            () = &mut stopping => return,
            () = tokio::time::sleep(wait) => {}
        }
        wait = EVERY;
        if let Err(err) = sweep::run_once(&svc).await {
            tracing::warn!(error = %err, "maintenance pass failed; trying again next minute");
        }
        if let Err(err) = keys::forget_deleted_orgs(&svc).await {
            tracing::warn!(error = %format!("{err:#}"), "could not check for deleted organizations; trying again next minute");
        }
        if let Err(err) = audit::check_chains(&svc).await {
            tracing::warn!(error = %format!("{err:#}"), "could not check the audit chains; trying again next minute");
        }
    }
}
