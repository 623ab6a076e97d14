//! The access picture (`/access`): agents against tools, each cell the state of the pair's
//! latest request (approved, pending, denied, revoked, expired, none) with its expiry and
//! last use. A cell opens its grant: approve or revoke it, and read its history. What an
//! access review looks at.

use leptos::prelude::*;

use super::mutation::mutation;
use super::widgets::{dialogs, error_box, live, short_time, shown};
use crate::api::inbox::{approve_request, get_access, revoke_request};
use crate::model::{Access, AccessCell, AccessPicture, Named, RequestStatus};

#[component]
pub fn AccessPage() -> impl IntoView {
    let live = live();
    let data = super::widgets::rpc_resource(move || live.0.get(), |_| get_access());
    let agent_filter = RwSignal::new(String::new());
    let tool_filter = RwSignal::new(String::new());
    // The opened cell: (agent id, tool id).
    let open = RwSignal::new(None::<(String, String)>);
    view! {
        {super::widgets::page_title("Access")}
        <h1>"Access"</h1>
        <form class="inline-form filters" aria-label="Filter the access picture" on:submit=|ev| ev.prevent_default()>
            <label>"Agent " <input id="access-agent" type="search" bind:value=agent_filter/></label>
            <label>"Tool " <input id="access-tool" type="search" bind:value=tool_filter/></label>
        </form>
        <Transition fallback=|| view! { <p class="loading">"Loading…"</p> }>
            {move || data.get().map(|r| match r {
                Ok(picture) => body(picture, agent_filter, tool_filter, open).into_any(),
                Err(err) => error_box(&err),
            })}
        </Transition>
    }
}

fn matches(filter: RwSignal<String>, name: &str) -> bool {
    let f = filter.get().trim().to_lowercase();
    f.is_empty() || name.to_lowercase().contains(&f)
}

fn state_label(state: Access) -> &'static str {
    match state {
        Access::None => "—",
        other => other.as_str(),
    }
}

fn body(
    picture: AccessPicture,
    agent_filter: RwSignal<String>,
    tool_filter: RwSignal<String>,
    open: RwSignal<Option<(String, String)>>,
) -> impl IntoView {
    if picture.agents.is_empty() || picture.tools.is_empty() {
        return view! {
            <p class="empty">"The picture fills in once there are agents and tools: register an agent and add a tool first."</p>
        }
        .into_any();
    }
    let picture = StoredValue::new(picture);
    let cell_of = move |agent: &str, tool: &str| -> Option<AccessCell> {
        picture.with_value(|p| {
            p.cells
                .iter()
                .find(|c| c.agent_id == agent && c.tool_id == tool)
                .cloned()
        })
    };
    let tools = move || {
        picture.with_value(|p| {
            p.tools
                .iter()
                .filter(|t| matches(tool_filter, &t.name))
                .cloned()
                .collect::<Vec<Named>>()
        })
    };
    let agents = move || {
        picture.with_value(|p| {
            p.agents
                .iter()
                .filter(|a| matches(agent_filter, &a.name))
                .cloned()
                .collect::<Vec<Named>>()
        })
    };
    view! {
        <div class="access-scroll" tabindex="0" role="region" aria-label="Access by agent and tool">
            <table class="access" id="access">
                <caption class="muted">"Each cell is the agent's latest request for the tool; open one to decide or read its history."</caption>
                <thead>
                    <tr>
                        <th scope="col">"Agent"</th>
                        {move || tools().into_iter().map(|t| view! { <th scope="col">{shown(&t.name)}</th> }).collect_view()}
                    </tr>
                </thead>
                <tbody>
                    {move || agents().into_iter().map(|a| {
                        let row_tools = tools();
                        view! {
                            <tr data-agent=a.id.clone()>
                                <th scope="row">{shown(&a.name)}</th>
                                {row_tools.into_iter().map(|t| {
                                    let cell = cell_of(&a.id, &t.id);
                                    let state = cell.as_ref().map_or(Access::None, |c| c.state);
                                    let title = cell.as_ref().map(describe).unwrap_or_else(|| "No request".into());
                                    let key = (a.id.clone(), t.id.clone());
                                    let label = format!("{} and {}: {}", a.name, t.name, title);
                                    view! {
                                        <td>
                                            <button type="button" class=format!("cell {}", state.as_str())
                                                data-tool=t.id.clone() title=title.clone() aria-label=label
                                                on:click=move |_| open.set(Some(key.clone()))>
                                                {state_label(state)}
                                            </button>
                                        </td>
                                    }
                                }).collect_view()}
                            </tr>
                        }
                    }).collect_view()}
                </tbody>
            </table>
        </div>
        {move || open.get().map(|(agent, tool)| detail(picture, agent, tool, open))}
    }
    .into_any()
}

/// A cell's expiry and last use, in words.
fn describe(c: &AccessCell) -> String {
    let mut parts = vec![c.state.as_str().to_owned()];
    if let Some(at) = &c.expires_at {
        parts.push(format!("expires {}", short_time(at)));
    }
    match &c.last_used_at {
        Some(at) => parts.push(format!("last used {}", short_time(at))),
        None if c.state == Access::Approved => parts.push("never used".into()),
        None => {}
    }
    parts.join(" · ")
}

fn detail(
    picture: StoredValue<AccessPicture>,
    agent: String,
    tool: String,
    open: RwSignal<Option<(String, String)>>,
) -> impl IntoView {
    let (agent, tool) = (agent.as_str(), tool.as_str());
    let (agent_name, tool_name, cell, history) = picture.with_value(|p| {
        let name = |list: &[Named], id: &str| {
            list.iter()
                .find(|n| n.id == id)
                .map(|n| n.name.clone())
                .unwrap_or_default()
        };
        (
            name(&p.agents, agent),
            name(&p.tools, tool),
            p.cells
                .iter()
                .find(|c| c.agent_id == agent && c.tool_id == tool)
                .cloned(),
            p.requests
                .iter()
                .filter(|r| r.agent_id == agent && r.tool_id == tool)
                .cloned()
                .collect::<Vec<_>>(),
        )
    });
    let latest = history.first().cloned();
    let actions = latest.map(|r| {
        let id = r.id.clone();
        let approve = (r.status == RequestStatus::Pending && r.cannot_approve.is_none()).then(|| {
            let id = id.clone();
            view! {
                <button type="button" class="primary approve" on:click=move |_| {
                    mutation().run(approve_request(id.clone(), None, false, None, Vec::new(), None), |r| {
                        format!("Approved {} for {}.", r.tool_name, r.agent_name)
                    })
                }>"Approve"</button>
            }
        });
        let why = r.cannot_approve.clone().map(|w| view! { <p class="cannot-approve muted">{w}</p> });
        let revoke = (r.status == RequestStatus::Approved).then(|| {
            let id = id.clone();
            view! {
                <button type="button" class="danger revoke" on:click=move |_| {
                    let id = id.clone();
                    let d = dialogs();
                    d.reason("Revoke this grant? The agent's next call is refused.", move |reason| {
                        mutation().run(revoke_request(id.clone(), reason), move |r| {
                            super::lifecycle::offer_rotation(d, r.agent_id.clone(), Some(r.tool_id.clone()));
                            format!("Revoked {} for {}.", r.tool_name, r.agent_name)
                        })
                    });
                }>"Revoke"</button>
            }
        });
        view! { <div class="actions">{approve}{why}{revoke}</div> }
    });
    view! {
        <section class="card grant-detail" id="grant-detail" aria-label="The opened grant">
            <h2>{format!("{} × {}", shown(&agent_name), shown(&tool_name))}</h2>
            <p class="state">{cell.as_ref().map(describe).unwrap_or_else(|| "No request yet.".into())}
                {cell.as_ref().filter(|c| c.state == Access::Approved).and_then(|c| c.expires_at.clone()).map(|until| view! { " · " <super::countdown::Countdown until/> })}
            </p>
            {actions}
            <h3>"History"</h3>
            {if history.is_empty() {
                view! { <p class="empty">"This agent never asked for this tool."</p> }.into_any()
            } else {
                view! {
                    <ol class="history">
                        {history.into_iter().map(|r| view! {
                            <li>
                                <time>{short_time(&r.created_at)}</time> " "
                                <span class=format!("badge {}", r.status.as_str())>{r.status.as_str()}</span> " "
                                {shown(&r.reason)}
                                {r.decided_by.map(|by| format!(" · decided by {by}"))}
                                {r.decision_note.map(|n| format!(" · “{}”", shown(&n)))}
                            </li>
                        }).collect_view()}
                    </ol>
                }.into_any()
            }}
            <button type="button" class="link" on:click=move |_| open.set(None)>"Close"</button>
        </section>
    }
}
