//! The audit log: filters, cursor paging, chain status and export of the filtered rows.

use leptos::prelude::*;

use super::widgets::{error_box, live, short_time};
use crate::api::audit::{AUDIT_PAGE, audit_events, chain_status};
use crate::model::{AuditEvent, AuditQuery};

#[component]
pub fn AuditPage() -> impl IntoView {
    let live = live();
    let draft = RwSignal::new(AuditQuery::default());
    let applied = RwSignal::new(AuditQuery::default());
    let pages = RwSignal::new(Vec::<Option<i64>>::from([None]));
    let query = move || {
        let mut q = applied.get();
        q.before_seq = pages.with(|p| p.last().copied().flatten());
        (q, live.0.get())
    };
    let rows = Resource::new(query, |(q, _)| audit_events(q));
    let chain = Resource::new(move || live.0.get(), |_| chain_status());
    let field = |label: &'static str, id: &'static str, get: fn(&AuditQuery) -> String, set: fn(&mut AuditQuery, String)| {
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
                Ok(list) => table(list, pages).into_any(),
                Err(err) => error_box(&err),
            })}
        </Transition>
    }
}

fn table(list: Vec<AuditEvent>, pages: RwSignal<Vec<Option<i64>>>) -> impl IntoView {
    let last_seq = list.last().map(|e| e.seq);
    let full = list.len() as i64 == AUDIT_PAGE;
    let export_json = list.iter().filter_map(|e| serde_json::to_string(e).ok()).collect::<Vec<_>>().join("\n");
    let export_csv = csv(&list);
    view! {
        <div class="actions">
            <a class="button" download="audit.jsonl" id="export-jsonl"
                href=format!("data:application/x-ndjson;charset=utf-8,{}", encode(&export_json))>"Export JSON Lines"</a>
            <a class="button" download="audit.csv" id="export-csv"
                href=format!("data:text/csv;charset=utf-8,{}", encode(&export_csv))>"Export CSV"</a>
        </div>
        {if list.is_empty() {
            view! { <p class="empty card">"No events match these filters."</p> }.into_any()
        } else {
            view! {
                <table class="audit" id="audit">
                    <thead><tr><th>"#"</th><th>"Time"</th><th>"Actor"</th><th>"Action"</th><th>"Target"</th><th>"IP"</th></tr></thead>
                    <tbody>
                        {list.into_iter().map(|e| view! {
                            <tr>
                                <td>{e.seq}</td>
                                <td><time>{short_time(&e.created_at)}</time></td>
                                <td>{e.actor_label}</td>
                                <td><code>{e.action}</code></td>
                                <td>{e.target_type.unwrap_or_default()}</td>
                                <td>{e.ip.unwrap_or_default()}</td>
                            </tr>
                        }).collect_view()}
                    </tbody>
                </table>
            }.into_any()
        }}
        <div class="pager">
            <button type="button" disabled=move || pages.with(|p| p.len() <= 1) on:click=move |_| pages.update(|p| { p.pop(); })>"Newer"</button>
            <button type="button" disabled=!full on:click=move |_| pages.update(|p| p.push(last_seq))>"Older"</button>
        </div>
    }
}

/// RFC 4180 CSV of the rows on screen.
fn csv(list: &[AuditEvent]) -> String {
    let cell = |s: &str| format!("\"{}\"", s.replace('"', "\"\""));
    let mut out = String::from("seq,created_at,actor_type,actor,action,target_type,target_id,agent_id,tool_id,ip,user_agent,metadata\n");
    for e in list {
        let cells = [
            e.seq.to_string(),
            e.created_at.clone(),
            e.actor_type.as_str().to_owned(),
            e.actor_label.clone(),
            e.action.clone(),
            e.target_type.clone().unwrap_or_default(),
            e.target_id.clone().unwrap_or_default(),
            e.agent_id.clone().unwrap_or_default(),
            e.tool_id.clone().unwrap_or_default(),
            e.ip.clone().unwrap_or_default(),
            e.user_agent.clone().unwrap_or_default(),
            e.metadata.to_string(),
        ];
        out.push_str(&cells.iter().map(|c| cell(c)).collect::<Vec<_>>().join(","));
        out.push('\n');
    }
    out
}

/// Percent-encodes for a data: URL.
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
