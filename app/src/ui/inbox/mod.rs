//! The inbox: access requests and suggestions waiting for a decision. Live (the list follows
//! the organization's event stream), keyboard-driven (j/k to move, a to approve, d to deny),
//! with bulk decisions and optimistic removal that rolls back on error.

use std::collections::{HashMap, HashSet};

use leptos::prelude::*;

mod context;
mod keys;
mod list;

use super::mutation::mutation;
use super::narrow::Narrowing;
use super::widgets::{dialogs, error_box, live, shown, toasts};
use crate::api::inbox::{
    accept_guide_suggestion, approve_request, deny_request, dismiss_guide_suggestion,
    dismiss_tool_suggestion, get_inbox,
};
use crate::model::{AccessRequestView, AgentContext, CredentialMode, InboxView};
use keys::keyboard;
use list::{bulk_bar, toolbar, visible};

#[derive(Clone, Copy)]
struct Ui {
    hidden: RwSignal<HashSet<String>>,
    /// The highlighted request (by id, so it stays put when rows are filtered or regrouped).
    selected: RwSignal<Option<String>>,
    checked: RwSignal<HashSet<String>>,
    order: RwSignal<Vec<AccessRequestView>>,
    /// How the reviewer narrows each proxied grant before approving (kept across refetches).
    narrow: Narrowing,
    /// Text the rows must contain (agent, tool or reason).
    filter: RwSignal<String>,
    /// `agent`, `tool` or empty: rows grouped under a heading per agent or tool.
    group: RwSignal<String>,
    compact: RwSignal<bool>,
    /// The standing of each agent with a request shown.
    agents: RwSignal<Vec<AgentContext>>,
}

#[component]
pub fn InboxPage() -> impl IntoView {
    let live = live();
    let data = super::widgets::rpc_resource(move || live.0.get(), |_| get_inbox());
    let ui = Ui {
        hidden: RwSignal::new(HashSet::new()),
        selected: RwSignal::new(None),
        checked: RwSignal::new(HashSet::new()),
        order: RwSignal::new(Vec::new()),
        narrow: RwSignal::new(HashMap::new()),
        filter: RwSignal::new(String::new()),
        group: RwSignal::new(String::new()),
        compact: RwSignal::new(false),
        agents: RwSignal::new(Vec::new()),
    };
    keyboard(ui);
    // Rows the filter hides are neither highlighted nor part of a bulk decision.
    Effect::new(move |_| {
        let ids: Vec<String> = visible(ui).into_iter().map(|(_, r)| r.id).collect();
        if ui
            .checked
            .with_untracked(|c| c.iter().any(|id| !ids.contains(id)))
        {
            ui.checked.update(|c| c.retain(|id| ids.contains(id)));
        }
        if ui
            .selected
            .with_untracked(|s| s.as_ref().is_none_or(|s| !ids.contains(s)))
        {
            ui.selected.set(ids.first().cloned());
        }
    });
    view! {
        {super::widgets::page_title("Inbox")}
        <h1>"Inbox"</h1>
        <p class="hint">"Keys: " <kbd>"j"</kbd> "/" <kbd>"k"</kbd> " move, " <kbd>"a"</kbd> " approve, " <kbd>"d"</kbd> " deny, " <kbd>"z"</kbd> " undo (for 5 s, before it is sent)."</p>
        <Transition fallback=|| view! { <p class="loading">"Loading…"</p> }>
            {move || data.get().map(|r| match r {
                Ok(inbox) => body(inbox, ui).into_any(),
                Err(err) => error_box(&err),
            })}
        </Transition>
    }
}

fn body(inbox: InboxView, ui: Ui) -> impl IntoView {
    ui.order.set(inbox.requests.clone());
    ui.agents.set(inbox.agents.clone());
    // Rows decided elsewhere are gone from the fresh list; forget them.
    ui.hidden
        .update(|h| h.retain(|id| inbox.requests.iter().any(|r| &r.id == id)));
    let empty = inbox.requests.is_empty()
        && inbox.tool_suggestions.is_empty()
        && inbox.guide_suggestions.is_empty();
    let more = inbox.more_requests;
    let requests_section = view! {
        {empty.then(|| view! { <p class="empty card" id="inbox-empty">"All clear: nothing waits for a decision."</p> })}
        <section class="requests" aria-label="Access requests">
            {(!inbox.requests.is_empty()).then(|| toolbar(ui))}
            {move || (!ui.checked.get().is_empty()).then(|| bulk_bar(ui))}
            <ul class="rows" id="requests" class:compact=move || ui.compact.get()>
                <For each=move || visible(ui) key=|(head, r)| (r.id.clone(), head.clone()) let:item>
                    {item.0.clone().map(|head| view! { <li class="group-head" role="presentation"><h3>{shown(&head)}</h3></li> })}
                    {request_row(item.1, ui)}
                </For>
            </ul>
            {(more > 0).then(|| view! { <p class="hint">{format!("{more} more pending requests: decide these first.")}</p> })}
        </section>
    }
    .into_any();
    let tools_section = view! {
        {(!inbox.tool_suggestions.is_empty()).then(|| view! {
            <section aria-label="Tool suggestions">
                <h2>"Tool suggestions"</h2>
                <ul class="rows">
                    {inbox.tool_suggestions.into_iter().map(|s| {
                        let id = s.id.clone();
                        view! {
                            <li class="row suggestion" data-id=s.id.clone()>
                                <div class="main">
                                    <strong>{shown(&s.name)}</strong>
                                    {s.url.clone().map(|u| view! { " " <span class="muted">{shown(&u)}</span> })}
                                    <ul class="backers">
                                        {s.supporters.into_iter().map(|b| view! { <li><strong>{shown(&b.agent_name)}</strong> ": " {shown(&b.reason)}</li> }).collect_view()}
                                    </ul>
                                </div>
                                <div class="actions">
                                    <a class="button" href=format!("/tools?from_suggestion={}", s.id)>"Add tool"</a>
                                    <button type="button" on:click=move |_| dismiss_suggestion(id.clone(), false)>"Dismiss"</button>
                                </div>
                            </li>
                        }
                    }).collect_view()}
                </ul>
            </section>
        })}
    }
    .into_any();
    let guides_section = view! {
        {(!inbox.guide_suggestions.is_empty()).then(|| view! {
            <section aria-label="Guide suggestions">
                <h2>"Usage guide suggestions"</h2>
                <ul class="rows">
                    {inbox.guide_suggestions.into_iter().map(|g| {
                        let accept_id = g.id.clone();
                        let dismiss_id = g.id.clone();
                        view! {
                            <li class="row guide-suggestion" data-id=g.id.clone()>
                                <div class="main">
                                    <span class="muted">{format!("Adds to {}'s usage guide (version {}):", shown(&g.tool_name), g.base_version)}</span>
                                    <p class="learned">{shown(&g.learned)}</p>
                                    {context::guide_preview(&g)}
                                    <ul class="backers">
                                        {g.supporters.into_iter().map(|b| view! {
                                            <li><strong>{shown(&b.agent_name)}</strong> ": " {shown(&b.reason)} " " <span class="muted">{super::countdown::ago_view(&b.last_at)}</span></li>
                                        }).collect_view()}
                                    </ul>
                                </div>
                                <div class="actions">
                                    <button type="button" class="primary" on:click=move |_| accept_guide(accept_id.clone())>"Add to guide"</button>
                                    <button type="button" on:click=move |_| dismiss_suggestion(dismiss_id.clone(), true)>"Dismiss"</button>
                                </div>
                            </li>
                        }
                    }).collect_view()}
                </ul>
            </section>
        })}
    }
    .into_any();
    view! { {requests_section} {tools_section} {guides_section} }
}

fn request_row(r: AccessRequestView, ui: Ui) -> impl IntoView {
    let decides = expect_context::<crate::model::MemberView>()
        .role
        .can_decide();
    // The per-agent secret and a narrowing go with the approval that completes the quorum.
    let completes = r.approved_by.len() as i64 + 1 >= r.approvals_required;
    let per_agent = r.credential_mode == CredentialMode::PerAgent && completes;
    let quorum = (r.approvals_required > 1).then(|| {
        let by = if r.approved_by.is_empty() { String::new() } else { format!(" · approved by {}", r.approved_by.join(", ")) };
        view! { <p class="quorum">{format!("{} of {} approvals{by}", r.approved_by.len(), r.approvals_required)}</p> }
    });
    let secret = RwSignal::new(String::new());
    let blocked = r.cannot_approve.clone();
    let id = r.id.clone();
    let (approve_id, deny_id, check_id, check_id2) =
        (id.clone(), id.clone(), id.clone(), id.clone());
    let selected_id = r.id.clone();
    let is_selected = Memo::new(move |_| {
        ui.selected
            .with(|s| s.as_deref() == Some(selected_id.as_str()))
    });
    view! {
        <li class="row request" class:selected=is_selected data-id=r.id.clone() aria-current=move || is_selected.get().then_some("true")>
            <input type="checkbox" aria-label="Select for bulk decision"
                prop:checked=move || ui.checked.with(|c| c.contains(&check_id))
                on:change=move |_| ui.checked.update(|c| { if !c.remove(&check_id2) { c.insert(check_id2.clone()); } })/>
            <div class="main">
                {super::lifecycle::request_summary(&r)}
                {context::agent_line(&r, ui.agents.with_untracked(|a| a.iter().find(|a| a.agent_id == r.agent_id).cloned()))}
                {quorum}
                {(decides && completes).then(|| super::narrow::duration_choice(&r, ui.narrow))}
                {(r.delivery.proxies() && decides && completes && r.renewal.is_none()).then(|| super::narrow::inputs(&r, ui.narrow))}
                {(per_agent && decides).then(|| view! {
                    <label class="secret">"This agent's own secret (per-agent tool) "
                        <input type="password" autocomplete="off" bind:value=secret/>
                    </label>
                })}
            </div>
            {decides.then(|| view! {
                <div class="actions">
                    {match blocked.clone() {
                        // Approve is not offered to who may not approve; the row says why.
                        Some(why) => view! { <p class="cannot-approve muted">{why}</p> }.into_any(),
                        None => view! {
                            <button type="button" class="primary approve" on:click=move |_| approve(approve_id.clone(), Some(secret.get_untracked()), ui)>"Approve"</button>
                        }.into_any(),
                    }}
                    <button type="button" class="deny" on:click=move |_| deny(deny_id.clone(), ui)>"Deny"</button>
                </div>
            })}
        </li>
    }
}

fn hide(ui: Ui, id: &str, on: bool) {
    // `try_`: an undone or refused decision may come back after the page was left.
    ui.hidden.try_update(|h| {
        if on {
            h.insert(id.to_owned());
        } else {
            h.remove(id);
        }
    });
}

fn approve(id: String, secret: Option<String>, ui: Ui) {
    let narrow = ui
        .narrow
        .with_untracked(|n| n.get(&id).cloned())
        .unwrap_or_default();
    let calls = narrow.calls_per_day.trim();
    let calls_per_day = match calls.parse::<i64>() {
        Ok(n) => Some(n),
        Err(_) if calls.is_empty() => None,
        Err(_) => {
            toasts().show(
                "Calls per day must be a whole number, or empty for the tool's default.",
                true,
            );
            return;
        }
    };
    hide(ui, &id, true);
    let (undo_id, what) = (id.clone(), names(ui, &id));
    let send = move |m: crate::ui::mutation::Mutation| {
        let call = approve_request(
            id.clone(),
            secret.filter(|s| !s.is_empty()),
            narrow.read_only,
            calls_per_day,
            narrow.rules.clone(),
            Some(narrow.duration.clone()).filter(|d| !d.is_empty()),
        );
        let shown_again = id.clone();
        m.undo(move || hide(ui, &shown_again, false))
            .run(call, move |r| {
                if r.status == crate::model::RequestStatus::Pending || r.renewal.is_some() {
                    // A vote towards the quorum: the request stays in the inbox.
                    hide(ui, &id, false);
                    format!(
                        "Approval recorded: {} of {}.",
                        r.approved_by.len(),
                        r.approvals_required
                    )
                } else {
                    format!("Approved {} for {}.", r.tool_name, r.agent_name)
                }
            });
    };
    toasts().hold(
        format!("Approving {what}…"),
        mutation(),
        send,
        move || hide(ui, &undo_id, false),
    );
}

/// "GitHub for e2e-coder", for the request `id` of the list.
fn names(ui: Ui, id: &str) -> String {
    ui.order
        .with_untracked(|o| {
            o.iter()
                .find(|r| r.id == id)
                .map(|r| format!("{} for {}", r.tool_name, r.agent_name))
        })
        .unwrap_or_else(|| "the request".to_owned())
}

fn deny(id: String, ui: Ui) {
    let m = mutation();
    let toasts = toasts();
    dialogs().reason("Deny this request?", move |reason| {
        hide(ui, &id, true);
        let (id, undo_id, m) = (id.clone(), id.clone(), m.clone());
        let send = move |m: crate::ui::mutation::Mutation| {
            let shown_again = id.clone();
            m.undo(move || hide(ui, &shown_again, false))
                .run(deny_request(id, reason), |r| {
                    format!("Denied {} for {}.", r.tool_name, r.agent_name)
                });
        };
        toasts.hold(
            format!("Denying {}…", names(ui, &undo_id)),
            m,
            send,
            move || hide(ui, &undo_id, false),
        );
    });
}

fn dismiss_suggestion(id: String, guide: bool) {
    let m = mutation();
    dialogs().reason("Dismiss this suggestion?", move |reason| {
        let (id, done) = (id.clone(), |()| "Suggestion dismissed.".to_owned());
        if guide {
            m.run(dismiss_guide_suggestion(id, reason), done);
        } else {
            m.run(dismiss_tool_suggestion(id, reason), done);
        }
    });
}

fn accept_guide(id: String) {
    mutation().run(accept_guide_suggestion(id), |()| {
        "Added to the usage guide as a new version.".to_owned()
    });
}
