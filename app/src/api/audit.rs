//! The audit log page: filtered, cursor-paged rows and the chain status.

use leptos::prelude::*;

use crate::model::RpcError;
use crate::model::{AuditEvent, AuditQuery, ChainReport, UsageView};

#[cfg(feature = "ssr")]
use super::guard::{caller, fail};

/// Rows per audit page.
pub const AUDIT_PAGE: i64 = 50;

#[server(prefix = "/rpc", endpoint = "audit")]
pub async fn audit_events(query: AuditQuery) -> Result<Vec<AuditEvent>, RpcError> {
    let c = caller().await?;
    let filter = crate::server::service::audit::filter_from(&query).map_err(fail)?;
    crate::server::service::audit::list(&c.svc, &c.ctx, &filter, AUDIT_PAGE)
        .await
        .map_err(fail)
}

#[server(prefix = "/rpc", endpoint = "audit/verify")]
pub async fn chain_status() -> Result<ChainReport, RpcError> {
    let c = caller().await?;
    crate::server::service::audit::chain_status(&c.svc, &c.ctx)
        .await
        .map_err(fail)
}

/// The header line of the CSV export.
pub const CSV_HEADER: &str = "seq,created_at,actor_type,actor,action,target_type,target_id,agent_id,tool_id,ip,user_agent,metadata\n";

/// RFC 4180 CSV of audit rows, the export format shared by the dashboard and the CLI.
pub fn to_csv(list: &[AuditEvent]) -> String {
    let mut out = String::from(CSV_HEADER);
    out.push_str(&csv_rows(list));
    out
}

/// The CSV lines of `list`, without the header (an export streams them a page at a time).
pub fn csv_rows(list: &[AuditEvent]) -> String {
    let cell = |s: &str| {
        // A leading = + - @ would be a formula in a spreadsheet: neutralised with a quote.
        let guarded = if s.starts_with(['=', '+', '-', '@']) {
            format!("'{s}")
        } else {
            s.to_owned()
        };
        format!("\"{}\"", guarded.replace('"', "\"\""))
    };
    let mut out = String::new();
    for e in list {
        let cells = [
            e.seq.to_string(),
            e.created_at.clone(),
            e.actor_type.as_str().to_owned(),
            e.actor_label.clone(),
            e.action.clone(),
            e.target_type.clone().unwrap_or_default(),
            e.target_id.clone().unwrap_or_default(),
            e.agent_id.clone().unwrap_or_default(),
            e.tool_id.clone().unwrap_or_default(),
            e.ip.clone().unwrap_or_default(),
            e.user_agent.clone().unwrap_or_default(),
            e.metadata.to_string(),
        ];
        out.push_str(&cells.iter().map(|c| cell(c)).collect::<Vec<_>>().join(","));
        out.push('\n');
    }
    out
}

/// Fetches and proxied calls per day over the last 30 days, per tool and agent.
#[server(prefix = "/rpc", endpoint = "usage")]
pub async fn usage() -> Result<UsageView, RpcError> {
    let c = caller().await?;
    crate::server::service::usage::usage(&c.svc, &c.ctx)
        .await
        .map_err(fail)
}
