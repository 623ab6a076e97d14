//! The audit log page: filtered, cursor-paged rows and the chain status.

use leptos::prelude::*;

use crate::model::{AuditEvent, AuditQuery, ChainReport};

#[cfg(feature = "ssr")]
use super::guard::{caller, fail};

/// Rows per audit page.
pub const AUDIT_PAGE: i64 = 50;

#[server(prefix = "/rpc", endpoint = "audit")]
pub async fn audit_events(query: AuditQuery) -> Result<Vec<AuditEvent>, ServerFnError> {
    let c = caller().await?;
    let filter = crate::server::service::audit::filter_from(&query).map_err(fail)?;
    crate::server::service::audit::list(&c.svc, &c.ctx, &filter, AUDIT_PAGE).await.map_err(fail)
}

#[server(prefix = "/rpc", endpoint = "audit/verify")]
pub async fn chain_status() -> Result<ChainReport, ServerFnError> {
    let c = caller().await?;
    crate::server::service::audit::verify(&c.svc, &c.ctx).await.map_err(fail)
}
