//! Instance status for the status page and `/readyz`.

use crate::model::StatusView;
use crate::server::{ServiceResult, Services, store};

/// Version, backend, uptime and instance-wide counts.
pub async fn instance_status(svc: &Services) -> ServiceResult<StatusView> {
    let (agents, tools, pending_requests, audit_events) =
        store::orgs::count_instance(svc.store.reader()).await?;
    Ok(StatusView {
        version: env!("CARGO_PKG_VERSION").to_owned(),
        backend: svc.store.backend().name().to_owned(),
        uptime_seconds: svc.started.elapsed().as_secs(),
        agents,
        tools,
        pending_requests,
        audit_events,
    })
}
