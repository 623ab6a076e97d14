//! `agentkey tool durations` and `agentkey tool exposure`: a tool's grant lifecycle.

use app::server::Services;
use app::server::service::{actor::AdminCtx, lifecycle, tools};

use super::output::{Out, or_dash, service_error, table};

/// Sets the tool's longest and default grant.
pub async fn durations(
    services: &Services,
    ctx: &AdminCtx,
    out: &Out,
    id: &str,
    max: Option<String>,
    default: Option<String>,
) -> anyhow::Result<()> {
    let max = lifecycle::parse_duration_field(max.as_deref()).map_err(service_error)?;
    let default = lifecycle::parse_duration_field(default.as_deref()).map_err(service_error)?;
    let t = tools::set_durations(services, ctx, id, max, default)
        .await
        .map_err(service_error)?;
    out.show(&t, |t| {
        format!(
            "{}: grants last at most {}, by default {}.\n",
            t.name,
            t.max_duration.map_or("no limit".into(), |d| d.label()),
            t.default_duration
                .or(t.max_duration)
                .map_or("standing".into(), |d| d.label())
        )
    })
}

/// Who received or used which version of the tool's secret.
pub async fn exposure(
    services: &Services,
    ctx: &AdminCtx,
    out: &Out,
    id: &str,
) -> anyhow::Result<()> {
    let e = lifecycle::exposure::for_tool(services, ctx, id)
        .await
        .map_err(service_error)?;
    out.show(&e, |e| {
        let rows = e
            .entries
            .iter()
            .map(|x| {
                let current = x.secret == "shared" && x.version == e.current_version;
                vec![
                    x.agent_name.clone(),
                    format!(
                        "{} v{}{}",
                        x.secret,
                        x.version,
                        if current { " (current)" } else { "" }
                    ),
                    or_dash(x.fetched_first_at.as_deref()),
                    or_dash(x.fetched_last_at.as_deref()),
                    or_dash(x.proxied_last_at.as_deref()),
                    if x.holds_grant { "yes" } else { "no" }.into(),
                ]
            })
            .collect();
        table(
            &[
                "agent",
                "secret",
                "first fetched",
                "last fetched",
                "last proxied",
                "holds a grant",
            ],
            rows,
        )
    })
}
