//! Overview: counts, the getting-started checklist, the month's activity by tool and agent,
//! and the latest audit entries.

use leptos::prelude::*;
use leptos_router::components::A;

use super::widgets::{error_box, live, short_time};
use crate::api::inbox::get_overview;
use crate::model::OverviewView;

#[component]
pub fn OverviewPage() -> impl IntoView {
    let live = live();
    let data = super::widgets::rpc_resource(move || live.0.get(), |_| get_overview());
    super::usage::provide_usage(live.0);
    view! {
        {super::widgets::page_title("Overview")}
        <h1>"Overview"</h1>
        <Transition fallback=|| view! { <p class="loading">"Loading…"</p> }>
            {move || data.get().map(|r| match r {
                Ok(o) => body(o).into_any(),
                Err(err) => error_box(&err),
            })}
        </Transition>
    }
}

fn body(o: OverviewView) -> impl IntoView {
    let step = |done: bool, text: &'static str, href: &'static str| {
        view! {
            <li class=if done { "done" } else { "" }>
                <span aria-hidden="true">{if done { "✓ " } else { "○ " }}</span>
                <A href=href>{text}</A>
            </li>
        }
    };
    view! {
        <dl class="counts">
            <div><dt>"Agents"</dt><dd id="count-agents">{o.agents}</dd></div>
            <div><dt>"Tools"</dt><dd id="count-tools">{o.tools}</dd></div>
            <div><dt>"Waiting for you"</dt><dd id="count-pending">{o.pending_requests + o.pending_suggestions}</dd></div>
            <div><dt>"Active grants"</dt><dd id="count-grants">{o.approved_grants}</dd></div>
        </dl>
        {(o.agents == 0 || o.tools == 0 || !o.notifications_configured || o.members < 2).then(|| view! {
            <section class="card" id="getting-started">
                <h2>"Getting started"</h2>
                <p class="muted">"An agent is an AI assistant or script that asks for credentials; a tool is a service it uses (GitHub, Linear, Stripe…) whose secret AgentKey keeps."</p>
                <ul class="checklist">
                    {step(o.agents > 0, "Register your first agent", "/agents")}
                    {step(o.tools > 0, "Add a tool to the catalog", "/tools")}
                    {step(o.notifications_configured, "Connect Slack or Discord, or turn on alert mail", "/settings")}
                    {step(o.members > 1, "Invite a reviewer", "/members")}
                </ul>
            </section>
        })}
        <super::usage::ActivityCard/>
        <section class="card">
            <h2>"Recent activity"</h2>
            {if o.recent.is_empty() {
                view! { <p class="empty">"Nothing yet."</p> }.into_any()
            } else {
                view! {
                    <ul class="activity">
                        {o.recent.into_iter().map(|e| view! {
                            <li><time>{short_time(&e.created_at)}</time> " " <strong>{e.actor_label}</strong> " " <code>{e.action}</code>
                                {e.tool_name.map(|t| view! { " · " <span class="tool">{super::widgets::shown(&t)}</span> })}</li>
                        }).collect_view()}
                    </ul>
                }.into_any()
            }}
        </section>
    }
}
