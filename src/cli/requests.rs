//! `agentkey request …`.

use anyhow::Context;
use clap::Subcommand;

use app::model::{GrantScope, RequestStatus};
use app::server::Services;
use app::server::service::{actor::AdminCtx, grants, lifecycle};

use super::output::{Out, or_dash, service_error, table};
use super::secrets::read_stdin;

#[derive(Debug, Subcommand)]
pub enum RequestCmd {
    /// List requests, newest first.
    List {
        /// pending, approved, denied, revoked or expired (default: all).
        #[arg(long)]
        status: Option<String>,
        #[arg(long, default_value_t = 50)]
        limit: i64,
    },
    /// Approve a pending request. Per-agent tools need --credential-stdin.
    Approve {
        /// Request id (see `agentkey request list`).
        id: String,
        /// Read this agent's own secret from stdin (per-agent tools).
        #[arg(long)]
        credential_stdin: bool,
        /// How long the grant lasts: 30m, 8h, 7d or standing (default: what the agent asked
        /// for, else the tool's default), within the tool's maximum.
        #[arg(long, alias = "expires-in")]
        duration: Option<String>,
        /// Proxied calls: GET and HEAD only.
        #[arg(long)]
        read_only: bool,
        /// Proxied calls: only this one of the tool's rules ('METHOD /path'); repeat for several.
        #[arg(long = "rule", value_name = "RULE")]
        rules: Vec<String>,
        /// Proxied calls: at most this many per UTC day (default: the tool's budget).
        #[arg(long)]
        max_calls_per_day: Option<i64>,
    },
    /// Deny a pending request; the reason is shown to the agent.
    Deny {
        /// Request id (see `agentkey request list`).
        id: String,
        #[arg(long)]
        reason: Option<String>,
    },
    /// Revoke an approved grant (or withdraw a pending request). The next fetch gets 403.
    Revoke {
        /// Request id (see `agentkey request list`).
        id: String,
        #[arg(long)]
        reason: Option<String>,
    },
    /// Replace the per-agent secret of an approved grant, read from stdin.
    SetCredential {
        /// Request id (see `agentkey request list`).
        id: String,
    },
}

pub async fn request(
    services: &Services,
    ctx: &AdminCtx,
    out: &Out,
    cmd: RequestCmd,
) -> anyhow::Result<()> {
    let decided = |verb: &'static str| {
        move |r: &app::model::AccessRequestView| {
            format!("{verb}: {} → {} ({})\n", r.agent_name, r.tool_name, r.id)
        }
    };
    match cmd {
        RequestCmd::List { status, limit } => {
            let status = status
                .map(|s| RequestStatus::parse(&s).with_context(|| format!("unknown status {s:?}; use pending, approved, denied, revoked or expired")))
                .transpose()?;
            let list = grants::list(services, ctx, status, limit)
                .await
                .map_err(service_error)?;
            out.show(&list, |l| {
                let rows = l
                    .iter()
                    .map(|r| {
                        vec![
                            r.id.clone(),
                            r.agent_name.clone(),
                            r.tool_name.clone(),
                            r.status.to_string(),
                            r.reason.chars().take(50).collect(),
                            or_dash(r.decision_note.as_deref()),
                            proxy_use(r),
                            r.created_at.clone(),
                        ]
                    })
                    .collect();
                table(
                    &[
                        "id",
                        "agent",
                        "tool",
                        "status",
                        "reason",
                        "note",
                        "proxy use",
                        "requested",
                    ],
                    rows,
                )
            })
        }
        RequestCmd::Approve {
            id,
            credential_stdin,
            duration,
            read_only,
            rules,
            max_calls_per_day,
        } => {
            let secret = if credential_stdin {
                Some(read_stdin("agent's secret")?)
            } else {
                None
            };
            let duration =
                lifecycle::parse_duration_field(duration.as_deref()).map_err(service_error)?;
            let approval = grants::Approval {
                secret,
                expires_at: None,
                duration,
                scope: GrantScope {
                    read_only,
                    rules: (!rules.is_empty()).then_some(rules),
                    calls_per_day: max_calls_per_day,
                },
            };
            let r = grants::approve_with(services, ctx, &id, approval)
                .await
                .map_err(service_error)?;
            out.show(&r, decided("Approved"))
        }
        RequestCmd::Deny { id, reason } => {
            let r = grants::deny(services, ctx, &id, reason.as_deref())
                .await
                .map_err(service_error)?;
            out.show(&r, decided("Denied"))
        }
        RequestCmd::Revoke { id, reason } => {
            let r = grants::revoke(services, ctx, &id, reason.as_deref())
                .await
                .map_err(service_error)?;
            out.show(&r, decided("Revoked"))
        }
        RequestCmd::SetCredential { id } => {
            let secret = read_stdin("agent's secret")?;
            let r = grants::set_grant_credential(services, ctx, &id, secret)
                .await
                .map_err(service_error)?;
            out.show(&r, decided("Secret replaced"))
        }
    }
}

/// How a grant may use the proxy and how much it did today, e.g. `read-only · 3/100 today`.
fn proxy_use(r: &app::model::AccessRequestView) -> String {
    if !r.delivery.proxies() {
        return "-".into();
    }
    let mut parts = Vec::new();
    if r.scope.read_only {
        parts.push("read-only".to_owned());
    }
    if let Some(rules) = &r.scope.rules {
        parts.push(rules.join(", "));
    }
    parts.push(match r.calls_per_day {
        Some(n) => format!("{}/{n} today", r.calls_today),
        None => format!("{} today", r.calls_today),
    });
    parts.join(" · ")
}
