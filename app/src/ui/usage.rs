//! Activity pictures: a bar per day of fetches and proxied calls over the last 30 days, drawn
//! as SVG on the server (the page is readable before the WASM arrives), on Overview, on each
//! tool and each agent; and when an agent last used a tool.

use leptos::prelude::*;

use super::widgets::{RpcJson, shown};
use crate::model::{RpcError, UsageSeries, UsageView};

/// The page's usage, fetched once and read by every row.
#[derive(Clone, Copy)]
pub struct Usage(pub Resource<Result<UsageView, RpcError>, RpcJson>);

/// Provides [`Usage`] to the page, refetched with its live resources.
pub fn provide_usage(live: RwSignal<u64>) {
    provide_context(Usage(super::widgets::rpc_resource(
        move || live.get(),
        |_| crate::api::audit::usage(),
    )));
}

const BAR: f64 = 4.0;
const GAP: f64 = 1.0;
const HEIGHT: f64 = 24.0;

/// A bar per day; each bar tells its day and count on hover, the picture its total.
#[component]
pub fn Sparkline(series: UsageSeries, days: Vec<String>) -> impl IntoView {
    let max = series.counts.iter().copied().max().unwrap_or(0).max(1) as f64;
    let width = series.counts.len() as f64 * (BAR + GAP);
    let busiest = series
        .counts
        .iter()
        .zip(&days)
        .filter(|(c, _)| **c > 0)
        .max_by_key(|(c, _)| **c)
        .map(|(c, d)| format!(", most on {d} ({c})"))
        .unwrap_or_default();
    let label = format!(
        "{}: {} in the last {} days{busiest}",
        shown(&series.name),
        uses(series.total),
        series.counts.len()
    );
    let title = label.clone();
    view! {
        <svg class="sparkline" role="img" aria-label=label viewBox=format!("0 0 {width} {HEIGHT}")
            width=width height=HEIGHT preserveAspectRatio="none">
            <title>{title}</title>
            {series.counts.iter().zip(days).enumerate().map(|(i, (count, day))| {
                // An idle day is a thin baseline, so the span of the chart stays visible.
                let h = if *count == 0 { 1.0 } else { (*count as f64 / max * (HEIGHT - 2.0)).max(2.0) };
                let class = if *count == 0 { "idle" } else { "used" };
                view! {
                    <rect class=class x=i as f64 * (BAR + GAP) y=HEIGHT - h width=BAR height=h>
                        <title>{format!("{day}: {}", uses(*count))}</title>
                    </rect>
                }
            }).collect_view()}
        </svg>
    }
}

fn uses(n: i64) -> String {
    match n {
        1 => "1 use".into(),
        n => format!("{n} uses"),
    }
}

/// The sparkline of one tool or agent on its row (`tool` picks the list).
#[component]
pub fn RowActivity(id: String, tool: bool) -> impl IntoView {
    let Some(Usage(usage)) = use_context::<Usage>() else {
        return ().into_any();
    };
    view! {
        <Transition fallback=|| ()>
            {move || usage.get().and_then(Result::ok).and_then(|u| {
                let list = if tool { &u.tools } else { &u.agents };
                let series = UsageView::series(list, &id)?.clone();
                let total = series.total;
                Some(view! {
                    <span class="row-activity">
                        <Sparkline series days=u.days.clone()/>
                        <span class="muted">{format!(" {} in 30 days", uses(total))}</span>
                    </span>
                })
            })}
        </Transition>
    }
    .into_any()
}

/// "last used 3 min ago" for an agent and a tool, when it ever did.
pub fn last_use_label(
    usage: &UsageView,
    tool_id: &str,
    agent_id: &str,
    now_ms: i64,
) -> Option<String> {
    let last = usage.last(tool_id, agent_id)?;
    let at = super::countdown::parse_ms(&last.at)?;
    let verb = if last.proxied { "proxied" } else { "fetched" };
    Some(format!("{verb} {}", super::countdown::ago(now_ms - at)))
}

/// Overview's card: the busiest tools and agents of the last 30 days.
#[component]
pub fn ActivityCard() -> impl IntoView {
    let Some(Usage(usage)) = use_context::<Usage>() else {
        return ().into_any();
    };
    let list = |title: &'static str, items: Vec<UsageSeries>, days: Vec<String>| {
        view! {
            <div>
                <h3>{title}</h3>
                <ul class="activity-chart">
                    {items.into_iter().take(6).map(|s| view! {
                        <li><span class="name">{shown(&s.name)}</span>
                            <Sparkline series=s.clone() days=days.clone()/>
                            <span class="muted">{s.total}</span></li>
                    }).collect_view()}
                </ul>
            </div>
        }
    };
    view! {
        <section class="card" id="activity">
            <h2>"Fetches and proxied calls, last 30 days"</h2>
            <Transition fallback=|| view! { <p class="loading">"Loading…"</p> }>
                {move || usage.get().map(|r| match r {
                    Ok(u) if u.tools.iter().all(|s| s.total == 0) => view! {
                        <p class="empty">"No agent has used a tool in the last 30 days."</p>
                    }.into_any(),
                    Ok(u) => {
                        let tools: Vec<_> = u.tools.iter().filter(|s| s.total > 0).cloned().collect();
                        let agents: Vec<_> = u.agents.iter().filter(|s| s.total > 0).cloned().collect();
                        view! {
                            <div class="activity-columns">
                                {list("By tool", tools, u.days.clone())}
                                {list("By agent", agents, u.days.clone())}
                            </div>
                        }.into_any()
                    }
                    Err(err) => super::widgets::error_box(&err),
                })}
            </Transition>
        </section>
    }
    .into_any()
}
