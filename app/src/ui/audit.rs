//! The audit log: filters, cursor paging, chain status and export of the filtered rows.

use leptos::prelude::*;

use super::widgets::{error_box, live, short_time};
use crate::api::audit::{AUDIT_PAGE, audit_events, chain_status};
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
    let field = |label: &'static str,
                 id: &'static str,
                 get: fn(&AuditQuery) -> String,
                 set: fn(&mut AuditQuery, String)| {
        view! {
            <label>{label} " "
                <input id=id prop:value=move || draft.with(get)
                    on:input=move |ev| draft.update(|q| set(q, event_target_value(&ev)))/>
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
        <form class="card filters grid-form" on:submit=apply aria-label="Filter the audit log">
            {field("Action", "f-action", |q| q.action.clone(), |q, v| q.action = v)}
            {field("Agent id", "f-agent", |q| q.agent_id.clone(), |q, v| q.agent_id = v)}
            {field("Tool id", "f-tool", |q| q.tool_id.clone(), |q, v| q.tool_id = v)}
            {field("Actor (email or id)", "f-actor", |q| q.actor.clone(), |q, v| q.actor = v)}
            {field("From (YYYY-MM-DD)", "f-since", |q| q.since.clone(), |q, v| q.since = v)}
            {field("Until (YYYY-MM-DD)", "f-until", |q| q.until.clone(), |q, v| q.until = v)}
            <button type="submit" class="primary" id="apply-filters">"Apply"</button>
        </form>
        <Transition fallback=|| view! { <p class="loading">"Loading…"</p> }>
            {move || rows.get().map(|r| match r {
                Ok(list) => table(list, pages, applied.get_untracked()).into_any(),
                Err(err) => error_box(&err),
            })}
        </Transition>
    }
}

fn table(
    list: Vec<AuditEvent>,
    pages: RwSignal<Vec<Option<i64>>>,
    filters: AuditQuery,
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
                        {list.into_iter().map(|e| { let target = target_of(&e); view! {
                            <tr>
                                <td>{e.seq}</td>
                                <td><time>{short_time(&e.created_at)}</time></td>
                                <td>{e.actor_label}</td>
                                <td><code>{e.action}</code></td>
                                <td class="target">{target}</td>
                                <td>{e.ip.unwrap_or_default()}</td>
                            </tr>
                        }}).collect_view()}
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
