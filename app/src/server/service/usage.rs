//! Activity for the charts: fetches and proxied calls per day over the last 30 days, per tool
//! and per agent, and each agent's last use of each tool. Read from the daily counts (a few
//! rows per tool and agent, however long the audit log is) plus what this process counted
//! and has not written yet.

use std::collections::HashMap;

use crate::model::{LastUse, UsageSeries, UsageView};
use crate::server::audit::usage::day_of;
use crate::server::service::actor::{AdminCtx, Permission};
use crate::server::store;
use crate::server::{ServiceResult, Services, clock};

/// Days a chart covers, today included.
pub const DAYS: i64 = 30;
const DAY_MS: i64 = 86_400_000;

pub async fn usage(svc: &Services, ctx: &AdminCtx) -> ServiceResult<UsageView> {
    ctx.require(Permission::ReadAll)?;
    let today = day_of(svc.clock.now_ms());
    let first = today - (DAYS - 1);
    let reader = svc.store.reader();
    let tools = store::tools::list_tools(reader, &ctx.org_id).await?;
    let agents = store::agents::list_agents(reader, &ctx.org_id).await?;
    // One pass over the stored and the unwritten counts: each day's uses go to its tool's and
    // its agent's series.
    let mut by_tool: HashMap<String, Vec<i64>> = HashMap::new();
    let mut by_agent: HashMap<String, Vec<i64>> = HashMap::new();
    let stored = store::usage::list_usage(reader, &ctx.org_id, first)
        .await?
        .into_iter()
        .map(|r| (r.tool_id, r.agent_id, r.day, r.fetches + r.proxied));
    let unwritten = svc
        .audit
        .usage()
        .unwritten_of(&ctx.org_id)
        .into_iter()
        .map(|(k, c)| (k.tool_id, k.agent_id, k.day, c.fetches + c.proxied));
    for (tool, agent, day, uses) in stored.chain(unwritten) {
        let Some(i) = usize::try_from(day - first)
            .ok()
            .filter(|i| *i < DAYS as usize)
        else {
            continue;
        };
        for (map, id) in [
            (&mut by_tool, tool.to_string()),
            (&mut by_agent, agent.to_string()),
        ] {
            map.entry(id).or_insert_with(|| vec![0; DAYS as usize])[i] += uses;
        }
    }
    let series = |map: &HashMap<String, Vec<i64>>, id: &str, name: &str| {
        let counts = map
            .get(id)
            .cloned()
            .unwrap_or_else(|| vec![0; DAYS as usize]);
        UsageSeries {
            id: id.to_owned(),
            name: name.to_owned(),
            total: counts.iter().sum(),
            counts,
        }
    };
    let mut tool_series: Vec<UsageSeries> = tools
        .iter()
        .map(|t| series(&by_tool, t.id.as_str(), &t.name))
        .collect();
    let mut agent_series: Vec<UsageSeries> = agents
        .iter()
        .map(|a| series(&by_agent, a.id.as_str(), &a.name))
        .collect();
    for list in [&mut tool_series, &mut agent_series] {
        list.sort_by(|a, b| b.total.cmp(&a.total).then_with(|| a.name.cmp(&b.name)));
    }
    let last_use = store::usage::list_last_use(reader, &ctx.org_id)
        .await?
        .into_iter()
        .filter_map(|r| {
            let proxied = r.proxied_at.unwrap_or(0) > r.fetched_at.unwrap_or(0);
            let at = r.fetched_at.max(r.proxied_at)?;
            Some(LastUse {
                tool_id: r.tool_id.to_string(),
                agent_id: r.agent_id.to_string(),
                at: clock::iso(at),
                proxied,
            })
        })
        .collect();
    Ok(UsageView {
        days: (first..=today)
            .map(|d| clock::iso(d * DAY_MS)[..10].to_owned())
            .collect(),
        tools: tool_series,
        agents: agent_series,
        last_use,
    })
}
