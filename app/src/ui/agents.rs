//! Agents: search and filter, register (key shown once with ready-to-paste snippets), rotate,
//! suspend / reactivate, delete, and each agent's grants.

use leptos::prelude::*;

use super::mutation::mutation;
use super::widgets::{copy, dialogs, error_box, live, short_time, shown};
use crate::api::agents::{
    create_agent, delete_agent, list_agents, rotate_agent_key, set_agent_active,
};
use crate::api::inbox::{grant_tool, list_requests, revoke_request};
use crate::api::tools::list_tools;
use crate::model::{
    AccessRequestView, AgentStatus, AgentView, CredentialMode, Delivery, IssuedKey, RequestStatus,
    ToolView,
};

#[component]
pub fn AgentsPage() -> impl IntoView {
    let live = live();
    let agents = super::widgets::rpc_resource(move || live.0.get(), |_| list_agents());
    let grants = super::widgets::rpc_resource(move || live.0.get(), |_| list_requests());
    let tools = super::widgets::rpc_resource(move || live.0.get(), |_| list_tools());
    super::usage::provide_usage(live.0);
    let search = RwSignal::new(String::new());
    let status = RwSignal::new(String::from("all"));
    let issued = RwSignal::new(None::<IssuedKey>);
    view! {
        {super::widgets::page_title("Agents")}
        <h1>"Agents"</h1>
        {expect_context::<crate::model::MemberView>().role.can_administer().then(|| view! { <CreateAgent issued/> })}
        {move || issued.get().map(|key| key_panel(key, issued))}
        <div class="filters">
            <input type="search" placeholder="Search agents" aria-label="Search agents" bind:value=search/>
            <select aria-label="Status filter" bind:value=status>
                <option value="all">"All"</option>
                <option value="active">"Active"</option>
                <option value="suspended">"Suspended"</option>
            </select>
        </div>
        <Transition fallback=|| view! { <p class="loading">"Loading…"</p> }>
            {move || agents.get().map(|r| match r {
                Ok(list) if list.is_empty() => view! {
                    <p class="empty card" id="agents-empty">"No agents yet. An agent is an AI assistant or script (Claude Code, Cursor, a CI job…) that asks AgentKey for the tools it needs. Register one above: you get its key and a ready-to-paste setup."</p>
                }.into_any(),
                Ok(list) => {
                    let needle = search.get().to_lowercase();
                    let wanted = status.get();
                    let all_grants = grants.get().and_then(Result::ok).unwrap_or_default();
                    let all_tools = tools.get().and_then(Result::ok).unwrap_or_default();
                    let shown: Vec<AgentView> = list
                        .into_iter()
                        .filter(|a| needle.is_empty() || a.name.to_lowercase().contains(&needle) || a.description.to_lowercase().contains(&needle))
                        .filter(|a| wanted == "all" || a.status.as_str() == wanted)
                        .collect();
                    if shown.is_empty() {
                        view! { <p class="empty card">"No agents match. Register one above."</p> }.into_any()
                    } else {
                        view! {
                            <ul class="rows" id="agents">
                                {shown.into_iter().map(|a| {
                                    let mine: Vec<AccessRequestView> = all_grants.iter().filter(|g| g.agent_id == a.id).cloned().collect();
                                    agent_row(a, mine, all_tools.clone(), issued)
                                }).collect_view()}
                            </ul>
                        }.into_any()
                    }
                }
                Err(err) => error_box(&err),
            })}
        </Transition>
    }
}

#[component]
fn CreateAgent(issued: RwSignal<Option<IssuedKey>>) -> impl IntoView {
    let name = RwSignal::new(String::new());
    let description = RwSignal::new(String::new());
    let busy = RwSignal::new(false);
    let errors = super::fields::FieldErrors::new(&["name", "description"]);
    let submit = move |ev: leptos::ev::SubmitEvent| {
        ev.prevent_default();
        let call = create_agent(name.get_untracked(), description.get_untracked());
        mutation()
            .busy(busy)
            .fields(errors)
            .run_quietly(call, move |key| {
                issued.set(Some(key));
                name.set(String::new());
                description.set(String::new());
                None
            });
    };
    view! {
        <form class="card inline-form" on:submit=submit aria-label="Register an agent" novalidate>
            <label>"Name " <input id="agent-name" required maxlength="120" aria-describedby="agent-name-error" bind:value=name/>
                <super::fields::FieldMessage errors field="name" id="agent-name-error"/></label>
            <label>"What it does " <input id="agent-description" maxlength="500" aria-describedby="agent-description-error" bind:value=description/>
                <super::fields::FieldMessage errors field="description" id="agent-description-error"/></label>
            <button type="submit" class="primary" id="create-agent" disabled=move || busy.get()>"Register agent"</button>
        </form>
    }
}

fn key_panel(key: IssuedKey, issued: RwSignal<Option<IssuedKey>>) -> impl IntoView {
    let tab = RwSignal::new(0_usize);
    let s = key.snippets.clone();
    // MCP first: a client configured with it needs no instruction file at all.
    let mut tabs: Vec<(String, String)> = s
        .mcp
        .iter()
        .map(|m| (format!("MCP · {} ({})", m.client, m.place), m.text.clone()))
        .collect();
    tabs.extend(
        [
            ("CLAUDE.md", s.claude_md),
            ("AGENTS.md", s.agents_md),
            (".cursorrules", s.cursorrules),
            ("System prompt", s.system_prompt),
            ("curl", s.curl),
            (".env", s.env),
        ]
        .map(|(label, text)| (label.to_owned(), text)),
    );
    let api_key = key.api_key.clone();
    let texts: Vec<String> = tabs.iter().map(|(_, t)| t.clone()).collect();
    view! {
        <section class="card key-panel" aria-label="New agent key">
            <h2>{format!("Key for {}", key.agent.name)}</h2>
            <p class="warn">"Copy it now: AgentKey stores only a hash and will not show it again."</p>
            <div class="key-line">
                <code id="new-key">{api_key.clone()}</code>
                <button type="button" on:click=move |_| copy(api_key.clone())>"Copy key"</button>
            </div>
            <div class="tabs" role="tablist">
                {tabs.iter().enumerate().map(|(i, (label, _))| view! {
                    <button type="button" role="tab" aria-selected=move || (tab.get() == i).to_string() on:click=move |_| tab.set(i)>{label.clone()}</button>
                }).collect_view()}
            </div>
            <pre class="snippet" id="snippet">{move || texts[tab.get()].clone()}</pre>
            <div class="actions">
                <button type="button" on:click={
                    let texts: Vec<String> = tabs.iter().map(|(_, t)| t.clone()).collect();
                    move |_| copy(texts[tab.get_untracked()].clone())
                }>"Copy snippet"</button>
                <button type="button" on:click=move |_| issued.set(None)>"Done"</button>
            </div>
        </section>
    }
}

fn agent_row(
    a: AgentView,
    grants: Vec<AccessRequestView>,
    tools: Vec<ToolView>,
    issued: RwSignal<Option<IssuedKey>>,
) -> impl IntoView {
    let grant_form = grant_form(a.id.clone(), tools);
    let active = a.status == AgentStatus::Active;
    let (id1, id2, id3) = (a.id.clone(), a.id.clone(), a.id.clone());
    let name = a.name.clone();
    let d = dialogs();
    let toggle = move |_| {
        mutation().run(set_agent_active(id1.clone(), !active), move |a| {
            if active {
                super::lifecycle::offer_rotation(d, a.id.clone(), None);
            }
            format!("{} is now {}.", a.name, a.status.as_str())
        });
    };
    let rotate = move |_| {
        let (id, m) = (id2.clone(), mutation());
        dialogs().confirm(
            "Rotate this agent's key?",
            "A new key is issued and the current one stops working at once.",
            "Rotate key",
            move || {
                m.then(rotate_agent_key(id.clone()), move |key| {
                    issued.set(Some(key))
                })
            },
        );
    };
    let delete = move |_| {
        let (id, m) = (id3.clone(), mutation());
        d.confirm(
            format!("Delete {name}?"),
            "Its key stops working and its grants end. The audit log keeps its history.",
            "Delete agent",
            move || {
                let gone = id.clone();
                m.run(delete_agent(id.clone()), move |()| {
                    super::lifecycle::offer_rotation(d, gone, None);
                    "Agent deleted.".to_owned()
                })
            },
        );
    };
    let live_grants: Vec<AccessRequestView> = grants
        .into_iter()
        .filter(|g| matches!(g.status, RequestStatus::Approved | RequestStatus::Pending))
        .collect();
    view! {
        <li class="row agent" data-id=a.id.clone()>
            <div class="main">
                <strong>{shown(&a.name)}</strong>
                <span class=format!("badge {}", a.status.as_str())>{a.status.as_str()}</span>
                <p class="muted">{shown(&a.description)}</p>
                <super::lifecycle::AgentLabels agent=a.clone()/>
                <span class="muted">
                    <code>{a.key_prefix.clone()} "…"</code>
                    {format!(" · created {}", short_time(&a.created_at))}
                    {a.last_used_at.as_deref().map(|t| format!(" · last used {}", short_time(t)))}
                </span>
                <super::usage::RowActivity id=a.id.clone() tool=false/>
                {(!live_grants.is_empty()).then(|| view! {
                    <ul class="grants">
                        {live_grants.into_iter().map(grant_item).collect_view()}
                    </ul>
                })}
                {grant_form}
            </div>
            <div class="actions">
                <a class="button" href=format!("/audit?agent_id={}", a.id)>"Activity"</a>
                {expect_context::<crate::model::MemberView>().role.can_administer().then(|| view! {
                    <button type="button" on:click=toggle>{if active { "Suspend" } else { "Reactivate" }}</button>
                    <button type="button" on:click=rotate>"Rotate key"</button>
                    <button type="button" class="danger" on:click=delete>"Delete"</button>
                })}
            </div>
        </li>
    }
}

fn grant_item(g: AccessRequestView) -> impl IntoView {
    let approved = g.status == RequestStatus::Approved;
    let id = g.id.clone();
    let d = dialogs();
    let revoke = move |_| {
        let (id, m) = (id.clone(), mutation());
        d.reason(
            "Revoke this grant? The agent's next fetch is refused.",
            move |reason| {
                m.run(revoke_request(id.clone(), reason), move |r| {
                    super::lifecycle::offer_rotation(
                        d,
                        r.agent_id.clone(),
                        Some(r.tool_id.clone()),
                    );
                    format!("Revoked {} for {}.", r.tool_name, r.agent_name)
                })
            },
        );
    };
    view! {
        <li class="grant" data-id=g.id.clone()>
            {g.tool_name.clone()} " · " <span class=format!("badge {}", g.status.as_str())>{g.status.as_str()}</span>
            {approved.then(|| view! { " " <span class="muted grant-use">{grant_use(&g)}</span> })}
            {g.expires_at.clone().filter(|_| approved).map(|until| view! { " · " <super::countdown::Countdown until/> })}
            {approved.then(|| view! { " " <button type="button" class="link revoke" on:click=revoke.clone()>"Revoke"</button> })}
        </li>
    }
}

/// How the grant exposes the secret and, through the proxy, what it may do and did today:
/// a fetched secret is seen by the agent, a proxied one only used.
fn grant_use(g: &AccessRequestView) -> String {
    let exposure = match g.delivery {
        Delivery::Fetch => return "sees the secret (fetch)".to_owned(),
        Delivery::Proxy => "uses the secret through the proxy, never sees it",
        Delivery::Both => "may fetch the secret or use it through the proxy",
    };
    let mut parts = vec![exposure.to_owned()];
    if g.scope.read_only {
        parts.push("read-only".to_owned());
    }
    if let Some(rules) = &g.scope.rules {
        parts.push(rules.join(", "));
    }
    parts.push(match g.calls_per_day {
        Some(n) => format!("{} of {n} calls today", g.calls_today),
        None => format!("{} calls today", g.calls_today),
    });
    parts.join(" · ")
}

/// Grants a tool to the agent directly (an admin request approved at once).
fn grant_form(agent_id: String, tools: Vec<ToolView>) -> AnyView {
    let tool = RwSignal::new(String::new());
    let reason = RwSignal::new(String::new());
    let secret = RwSignal::new(String::new());
    let per_agent: Vec<String> = tools
        .iter()
        .filter(|t| t.credential_mode == CredentialMode::PerAgent)
        .map(|t| t.id.clone())
        .collect();
    let needs_secret = move || per_agent.contains(&tool.get());
    let submit = move |ev: leptos::ev::SubmitEvent| {
        ev.prevent_default();
        let call = grant_tool(
            agent_id.clone(),
            tool.get_untracked(),
            reason.get_untracked(),
            Some(secret.get_untracked()),
        );
        mutation().run(call, move |r| {
            reason.set(String::new());
            secret.set(String::new());
            format!("{} can now use {}.", r.agent_name, r.tool_name)
        });
    };
    view! {
        <details class="grant-form">
            <summary>"Grant a tool"</summary>
            <form class="inline-form" on:submit=submit>
                <label>"Tool "
                    <select required bind:value=tool>
                        <option value="">"Choose…"</option>
                        {tools.into_iter().map(|t| view! { <option value=t.id.clone()>{t.name}</option> }).collect_view()}
                    </select>
                </label>
                <label>"Reason (the agent sees it) " <input required minlength="5" maxlength="500" bind:value=reason/></label>
                <Show when=needs_secret.clone()>
                    <label>"This agent's secret " <input type="password" autocomplete="off" bind:value=secret/></label>
                </Show>
                <button type="submit">"Grant"</button>
            </form>
        </details>
    }
    .into_any()
}
