//! The audit log: filters picked from lists (agents, tools, people, actions or their start,
//! dates), cursor paging, a detail view of each entry, chain status and export of the
//! filtered rows. A refused filter is said beside its field and the table stays.

use leptos::prelude::*;

use super::fields::{FieldErrors, FieldMessage};
use super::widgets::{error_box, live, short_time, shown, toasts};
use crate::api::agents::list_agents;
use crate::api::audit::{AUDIT_PAGE, audit_events, chain_status};
use crate::api::members::list_members;
use crate::api::tools::list_tools;
use crate::model::{AuditEvent, AuditQuery};

#[component]
pub fn AuditPage() -> impl IntoView {
    let live = live();
    // `/audit?agent_id=…` (from an agent's "Activity" link) opens pre-filtered.
    let query_map = leptos_router::hooks::use_query_map();
    let initial = query_map.with_untracked(|m| AuditQuery {
        agent_id: m.get("agent_id").unwrap_or_default(),
        tool_id: m.get("tool_id").unwrap_or_default(),
        ..AuditQuery::default()
    });
    let draft = RwSignal::new(initial.clone());
    let applied = RwSignal::new(initial);
    let pages = RwSignal::new(Vec::<Option<i64>>::from([None]));
    let query = move || {
        let mut q = applied.get();
        q.before_seq = pages.with(|p| p.last().copied().flatten());
        (q, live.0.get())
    };
    let rows = super::widgets::rpc_resource(query, |(q, _)| audit_events(q));
    let chain = super::widgets::rpc_resource(move || live.0.get(), |_| chain_status());
    // Loaded by the browser once the page is up, into a plain signal: the lists are a
    // convenience and must hold up neither the page nor its hydration.
    let choices = RwSignal::new(None::<Choices>);
    Effect::new(move |_| {
        leptos::task::spawn_local(async move {
            let loaded = async {
                Ok::<_, crate::model::RpcError>(Choices {
                    agents: list_agents()
                        .await?
                        .into_iter()
                        .map(|a| (a.id.to_string(), a.name))
                        .collect(),
                    tools: list_tools()
                        .await?
                        .into_iter()
                        .map(|t| (t.id, t.name))
                        .collect(),
                    actors: list_members()
                        .await?
                        .members
                        .into_iter()
                        .map(|m| m.email)
                        .collect(),
                })
            };
            if let Ok(c) = loaded.await {
                choices.try_set(Some(c));
            }
        });
    });
    let errors = FieldErrors::new(&["action", "since", "until"]);
    // The last rows that loaded: a refused filter keeps them on screen.
    let shown_rows = RwSignal::new(None::<Vec<AuditEvent>>);
    let selected = RwSignal::new(None::<String>);
    Effect::new(move |_| match rows.get() {
        Some(Ok(list)) => {
            errors.clear();
            shown_rows.set(Some(list));
        }
        Some(Err(err)) if !errors.take(&err) => {
            toasts().err(&err);
        }
        _ => {}
    });
    let text = |label: &'static str,
                id: &'static str,
                field: &'static str,
                kind: &'static str,
                get: fn(&AuditQuery) -> String,
                set: fn(&mut AuditQuery, String)| {
        let error_id = format!("{id}-error");
        view! {
            <label>{label} " "
                <input id=id type=kind list=(id == "f-action").then_some("audit-actions").or((id == "f-actor").then_some("audit-actors"))
                    aria-describedby=error_id.clone() prop:value=move || draft.with(get)
                    on:input=move |ev| draft.update(|q| set(q, event_target_value(&ev)))/>
                <FieldMessage errors field id=error_id/>
            </label>
        }
    };
    let pick = |label: &'static str,
                id: &'static str,
                any: &'static str,
                options: fn(&Choices) -> Vec<(String, String)>,
                get: fn(&AuditQuery) -> String,
                set: fn(&mut AuditQuery, String)| {
        view! {
            <label>{label} " "
                <select id=id prop:value=move || draft.with(get)
                    on:change=move |ev| draft.update(|q| set(q, event_target_value(&ev)))>
                    <option value="">{any}</option>
                    {move || choices.get().map(|c| options(&c).into_iter().map(|(value, name)| {
                        let chosen = draft.with_untracked(get) == value;
                        view! { <option value=value selected=chosen>{shown(&name)}</option> }
                    }).collect_view())}
                </select>
            </label>
        }
    };
    let apply = move |ev: leptos::ev::SubmitEvent| {
        ev.prevent_default();
        applied.set(draft.get_untracked());
        pages.set(vec![None]);
    };
    view! {
        {super::widgets::page_title("Audit log")}
        <h1>"Audit log"</h1>
        <Transition fallback=|| ()>
            {move || chain.get().map(|r| match r {
                Ok(report) => match report.broken_at_seq {
                    None => view! { <p class="chain ok" id="chain-status">{format!("Chain verified: {} rows intact.", report.rows_checked)}</p> }.into_any(),
                    Some(seq) => view! { <p class="chain broken" id="chain-status" role="alert">{format!("Chain broken at row {seq}: {}", report.problem.unwrap_or_default())}</p> }.into_any(),
                },
                Err(err) => error_box(&err),
            })}
        </Transition>
        <form class="card filters grid-form" on:submit=apply aria-label="Filter the audit log" novalidate>
            {text("Action (or its start, e.g. credential.*)", "f-action", "action", "text", |q| q.action.clone(), |q, v| q.action = v)}
            {pick("Agent", "f-agent", "Any agent", |c| c.agents.clone(), |q| q.agent_id.clone(), |q, v| q.agent_id = v)}
            {pick("Tool", "f-tool", "Any tool", |c| c.tools.clone(), |q| q.tool_id.clone(), |q, v| q.tool_id = v)}
            {text("Actor (email or id)", "f-actor", "actor", "text", |q| q.actor.clone(), |q, v| q.actor = v)}
            {text("From", "f-since", "since", "date", |q| q.since.clone(), |q, v| q.since = v)}
            {text("Until", "f-until", "until", "date", |q| q.until.clone(), |q, v| q.until = v)}
            <datalist id="audit-actions">
                {ACTIONS.iter().map(|a| view! { <option value=*a></option> }).collect_view()}
            </datalist>
            <datalist id="audit-actors">
                {move || choices.get().map(|c| c.actors.into_iter().map(|a| view! { <option value=a></option> }).collect_view())}
            </datalist>
            <button type="submit" class="primary" id="apply-filters">"Apply"</button>
        </form>
        <Transition fallback=|| view! { <p class="loading">"Loading…"</p> }>
            {move || match rows.get() {
                Some(Ok(list)) => Some(table(list, pages, applied.get_untracked(), selected)),
                // A refused filter keeps the last rows that loaded.
                Some(Err(_)) => shown_rows.get().map(|list| table(list, pages, applied.get_untracked(), selected)),
                None => None,
            }}
        </Transition>
    }
}

/// Names to pick filters from.
#[derive(Clone, Debug, PartialEq)]
struct Choices {
    agents: Vec<(String, String)>,
    tools: Vec<(String, String)>,
    actors: Vec<String>,
}

/// Every action the log records, offered in the action filter.
const ACTIONS: [&str; 41] = [
    "credential.",
    "credential.vended",
    "proxy.",
    "proxy.called",
    "proxy.completed",
    "proxy.refused",
    "proxy.secret_echoed",
    "grant.",
    "grant.requested",
    "grant.requested_from_suggestion",
    "grant.approved",
    "grant.denied",
    "grant.revoked",
    "grant.expired",
    "grant.renewal_denied",
    "grant.credential_rotated",
    "agent.",
    "agent.created",
    "agent.deleted",
    "agent.key_rotated",
    "agent.labels_changed",
    "tool.",
    "tool.created",
    "tool.updated",
    "tool.deleted",
    "tool.guide_updated",
    "tool.delivery_changed",
    "tool.quorum_changed",
    "tool.durations_changed",
    "member.",
    "member.invited",
    "member.joined",
    "member.role_changed",
    "member.signed_in",
    "review.",
    "review.started",
    "review.closed",
    "notification.",
    "audit.exported",
    "organization.created",
    "org.lifecycle_changed",
];

fn table(
    list: Vec<AuditEvent>,
    pages: RwSignal<Vec<Option<i64>>>,
    filters: AuditQuery,
    selected: RwSignal<Option<String>>,
) -> impl IntoView {
    let last_seq = list.last().map(|e| e.seq);
    let full = list.len() as i64 == AUDIT_PAGE;
    view! {
        <div class="actions">
            <a class="button" download="audit.jsonl" id="export-jsonl" href=export_url("jsonl", &filters)>"Export JSON Lines"</a>
            <a class="button" download="audit.csv" id="export-csv" href=export_url("csv", &filters)>"Export CSV"</a>
            <span class="muted">"Exports every row matching the filters, not only this page."</span>
        </div>
        {if list.is_empty() {
            view! { <p class="empty card">"No events match these filters."</p> }.into_any()
        } else {
            view! {
                <div class="table-scroll" tabindex="0" role="region" aria-label="Audit entries">
                <table class="audit" id="audit">
                    <thead><tr><th>"#"</th><th>"Time"</th><th>"Actor"</th><th>"Action"</th><th>"Target"</th><th>"IP"</th></tr></thead>
                    <tbody>
                        {list.into_iter().map(|e| audit_row(e, selected)).collect_view()}
                    </tbody>
                </table>
                </div>
            }.into_any()
        }}
        <div class="pager">
            <button type="button" disabled=move || pages.with(|p| p.len() <= 1) on:click=move |_| pages.update(|p| { p.pop(); })>"Newer"</button>
            <button type="button" disabled=!full on:click=move |_| pages.update(|p| p.push(last_seq))>"Older"</button>
        </div>
    }
}

/// A row, and below it when opened every field of the entry, its reason and its metadata.
fn audit_row(e: AuditEvent, selected: RwSignal<Option<String>>) -> impl IntoView {
    let target = target_of(&e);
    let id = e.id.clone();
    let is_open = {
        let id = id.clone();
        Memo::new(move |_| selected.with(|s| s.as_deref() == Some(id.as_str())))
    };
    let toggle = move |_| {
        let id = id.clone();
        selected.update(|s| {
            *s = if s.as_deref() == Some(id.as_str()) {
                None
            } else {
                Some(id)
            }
        });
    };
    let detail = e.clone();
    view! {
        <tr class:open=move || is_open.get()>
            <td><button type="button" class="link audit-open" aria-expanded=move || is_open.get().to_string()
                on:click=toggle>{e.seq}</button></td>
            <td><time datetime=e.created_at.clone()>{short_time(&e.created_at)}</time></td>
            <td>{e.actor_label}</td>
            <td><code>{e.action}</code></td>
            <td class="target">{target}</td>
            <td>{e.ip.unwrap_or_default()}</td>
        </tr>
        <Show when=move || is_open.get()>
            <tr class="audit-detail"><td colspan="6">{details(&detail)}</td></tr>
        </Show>
    }
}

fn details(e: &AuditEvent) -> impl IntoView {
    let reason = ["reason", "note", "decision_note", "denial_reason"]
        .iter()
        .find_map(|k| {
            e.metadata
                .get(*k)
                .and_then(|v| v.as_str())
                .map(str::to_owned)
        });
    let metadata = serde_json::to_string_pretty(&e.metadata).unwrap_or_default();
    let item = |term: &'static str, value: Option<String>| {
        value
            .filter(|v| !v.is_empty())
            .map(|v| view! { <dt>{term}</dt><dd>{shown(&v)}</dd> })
    };
    view! {
        <dl class="audit-fields">
            {item("When", Some(e.created_at.clone()))}
            {item("Who", Some(format!("{} ({}, {})", e.actor_label, e.actor_type.as_str(), e.actor_id)))}
            {item("Action", Some(e.action.clone()))}
            {item("Reason", reason)}
            {item("Tool", e.tool_name.clone().map(|n| format!("{n} ({})", e.tool_id.clone().unwrap_or_default())))}
            {item("Agent", e.agent_name.clone().map(|n| format!("{n} ({})", e.agent_id.clone().unwrap_or_default())))}
            {item("Target", e.target_type.clone().map(|t| format!("{t} {}", e.target_id.clone().unwrap_or_default())))}
            {item("From", e.ip.clone())}
            {item("Client", e.user_agent.clone())}
        </dl>
        <pre class="metadata" aria-label="Metadata">{metadata}</pre>
    }
}

/// The server export of every row matching `q` (newest first).
fn export_url(format: &str, q: &AuditQuery) -> String {
    let pairs = [
        ("action", &q.action),
        ("agent_id", &q.agent_id),
        ("tool_id", &q.tool_id),
        ("actor", &q.actor),
        ("since", &q.since),
        ("until", &q.until),
    ];
    let mut url = format!("/audit/export?format={format}");
    for (k, v) in pairs.iter().filter(|(_, v)| !v.trim().is_empty()) {
        url.push_str(&format!("&{k}={}", encode(v.trim())));
    }
    url
}

/// Percent-encodes a query value.
fn encode(text: &str) -> String {
    let mut out = String::with_capacity(text.len() * 3 / 2);
    for b in text.bytes() {
        if b.is_ascii_alphanumeric() || b"-_.~".contains(&b) {
            out.push(b as char);
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

/// What an event concerns, by name: the tool and the agent where it has them, else the kind
/// of target.
fn target_of(e: &crate::model::AuditEvent) -> String {
    let names: Vec<String> = [e.tool_name.as_deref(), e.agent_name.as_deref()]
        .into_iter()
        .flatten()
        .map(super::widgets::shown)
        .collect();
    if names.is_empty() {
        e.target_type.clone().unwrap_or_default()
    } else {
        names.join(" · ")
    }
}
