//! Access reviews: start one, mark each grant keep or revoke, close it, export the evidence.

use leptos::prelude::*;

use super::mutation::mutation;
use super::widgets::{dialogs, error_box, live, rpc_resource, short_time, shown};
use crate::api::agents::list_agents;
use crate::api::lifecycle::{
    close_review, decide_review_item, export_review, get_review, list_reviews, start_review,
};
use crate::api::tools::list_tools;
use crate::model::{AccessReviewView, ReviewItemView};

#[component]
pub fn ReviewsPage() -> impl IntoView {
    let live = live();
    let reviews = rpc_resource(move || live.0.get(), |_| list_reviews());
    let open = RwSignal::new(None::<String>);
    let admin = expect_context::<crate::model::MemberView>()
        .role
        .can_administer();
    view! {
        {super::widgets::page_title("Access reviews")}
        <h1>"Access reviews"</h1>
        <p class="muted">"Every live grant in the review goes to a reviewer, who keeps or revokes it with a note. Closing the review revokes what was marked revoke and, if the review says so, what nobody confirmed. The evidence is in the audit log and exports as CSV."</p>
        {admin.then(|| view! { <StartReview open/> })}
        <Transition fallback=|| view! { <p class="loading">"Loading…"</p> }>
            {move || reviews.get().map(|r| match r {
                Err(e) => error_box(&e),
                Ok(list) if list.is_empty() => view! { <p class="empty card">"No access review yet."</p> }.into_any(),
                Ok(list) => view! {
                    <ul class="rows" id="reviews">
                        {list.into_iter().map(|r| {
                            let id = r.id.clone();
                            view! {
                                <li class="row review" data-id=r.id.clone()>
                                    <div class="main">
                                        <strong>{shown(&r.scope_name)}</strong> " "
                                        <span class=format!("badge {}", r.status)>{r.status.clone()}</span>
                                        <p class="muted">{format!("{} of {} decided · started by {} {} · unconfirmed grants are {}", r.decided, r.total, r.started_by, short_time(&r.started_at), if r.unconfirmed == "revoke" { "revoked" } else { "kept" })}</p>
                                    </div>
                                    <div class="actions"><button type="button" class="open-review" on:click=move |_| open.set(Some(id.clone()))>"Open"</button></div>
                                </li>
                            }
                        }).collect_view()}
                    </ul>
                }.into_any(),
            })}
        </Transition>
        {move || open.get().map(|id| view! { <ReviewDetail id/> })}
    }
}

#[component]
fn StartReview(open: RwSignal<Option<String>>) -> impl IntoView {
    let tools = rpc_resource(|| (), |_| list_tools());
    let agents = rpc_resource(|| (), |_| list_agents());
    let scope = RwSignal::new("all".to_owned());
    let target = RwSignal::new(String::new());
    let revoke_unconfirmed = RwSignal::new(true);
    let start = move |ev: leptos::ev::SubmitEvent| {
        ev.prevent_default();
        mutation().run(
            start_review(
                scope.get_untracked(),
                target.get_untracked(),
                revoke_unconfirmed.get_untracked(),
            ),
            move |r| {
                open.set(Some(r.id.clone()));
                format!(
                    "Review of {} started: {} grant(s) to decide.",
                    r.scope_name, r.total
                )
            },
        );
    };
    let choices = move || {
        let kind = scope.get();
        let list: Vec<(String, String)> = match kind.as_str() {
            "tool" => tools
                .get()
                .and_then(Result::ok)
                .unwrap_or_default()
                .into_iter()
                .map(|t| (t.id, t.name))
                .collect(),
            "agent" => agents
                .get()
                .and_then(Result::ok)
                .unwrap_or_default()
                .into_iter()
                .map(|a| (a.id, a.name))
                .collect(),
            _ => Vec::new(),
        };
        (!list.is_empty()).then(|| {
            if target.get_untracked().is_empty() || !list.iter().any(|(id, _)| *id == target.get_untracked()) {
                target.set(list[0].0.clone());
            }
            view! {
                <label>"Which " <select class="review-target" prop:value=move || target.get() on:change=move |ev| target.set(event_target_value(&ev))>
                    {list.into_iter().map(|(id, name)| view! { <option value=id>{name}</option> }).collect_view()}
                </select></label>
            }
        })
    };
    view! {
        <form class="card inline-form" aria-label="Start an access review" on:submit=start>
            <label>"Review " <select class="review-scope" prop:value=move || scope.get() on:change=move |ev| scope.set(event_target_value(&ev))>
                <option value="all">"all live grants"</option>
                <option value="tool">"one tool's grants"</option>
                <option value="agent">"one agent's grants"</option>
            </select></label>
            <Transition fallback=|| ()>{choices}</Transition>
            <label><input type="checkbox" class="revoke-unconfirmed" prop:checked=move || revoke_unconfirmed.get() on:change=move |ev| revoke_unconfirmed.set(event_target_checked(&ev))/> " Revoke grants nobody confirmed"</label>
            <button type="submit" class="primary" id="start-review">"Start review"</button>
        </form>
    }
}

#[component]
fn ReviewDetail(id: String) -> impl IntoView {
    let live = live();
    let key = id.clone();
    let review = rpc_resource(
        move || (key.clone(), live.0.get()),
        |(id, _)| get_review(id),
    );
    let csv = RwSignal::new(None::<String>);
    view! {
        <section class="card review-detail" id="review-detail" aria-label="The opened review">
            <Transition fallback=|| view! { <p class="loading">"Loading…"</p> }>
                {move || review.get().map(|r| match r {
                    Err(e) => error_box(&e),
                    Ok(r) => detail(r, csv).into_any(),
                })}
            </Transition>
        </section>
    }
}

fn detail(r: AccessReviewView, csv: RwSignal<Option<String>>) -> impl IntoView {
    let is_open = r.status == "open";
    let admin = expect_context::<crate::model::MemberView>()
        .role
        .can_administer();
    let id = r.id.clone();
    let close = move |_| {
        let id = id.clone();
        dialogs().confirm(
            "Close this review?",
            "Grants marked revoke are revoked now, and so, if the review says so, are those nobody confirmed.",
            "Close review",
            move || {
                mutation().run(close_review(id.clone()), |r| {
                    let revoked = r.items.iter().filter(|i| i.outcome.as_deref() == Some("revoked")).count();
                    format!("Review closed: {revoked} grant(s) revoked.")
                })
            },
        );
    };
    let export_id = r.id.clone();
    let export = move |_| {
        mutation().then(export_review(export_id.clone()), move |text| {
            csv.set(Some(text))
        });
    };
    view! {
        <h2>{format!("Review of {}", r.scope_name)}</h2>
        <p class="muted">{format!("{} of {} decided · {}", r.decided, r.total, r.status)}
            {r.closed_at.clone().map(|at| format!(" · closed by {} {}", r.closed_by.clone().unwrap_or_default(), short_time(&at)))}</p>
        <table class="review-items">
            <thead><tr><th scope="col">"Agent"</th><th scope="col">"Tool"</th><th scope="col">"Reviewer"</th><th scope="col">"Decision"</th><th scope="col">"Note"</th><th scope="col"><span class="visually-hidden">"Actions"</span></th></tr></thead>
            <tbody>
                {r.items.into_iter().map(|i| item_row(i, is_open)).collect_view()}
            </tbody>
        </table>
        <div class="actions">
            {(is_open && admin).then(|| view! { <button type="button" class="danger" id="close-review" on:click=close>"Close review"</button> })}
            <button type="button" id="export-review" on:click=export>"Export CSV"</button>
            {move || csv.get().map(|text| {
                let href = format!("data:text/csv;charset=utf-8,{}", percent(&text));
                view! { <a class="button" id="review-csv" download="access-review.csv" href=href>"Download the CSV"</a> }
            })}
        </div>
    }
}

fn item_row(i: ReviewItemView, open: bool) -> impl IntoView {
    let (keep_id, revoke_id) = (i.id.clone(), i.id.clone());
    let keep = move |_| {
        mutation().run(decide_review_item(keep_id.clone(), true, None), |_| {
            "Kept.".to_owned()
        });
    };
    let revoke = move |_| {
        let id = revoke_id.clone();
        dialogs().text(
            "Revoke this grant when the review closes?",
            "Say why the agent no longer needs it; the note is the review's evidence.",
            "Mark revoke",
            move |note| {
                mutation().run(decide_review_item(id.clone(), false, Some(note)), |_| {
                    "Marked revoke.".to_owned()
                });
            },
        );
    };
    let state = match (&i.outcome, &i.decision) {
        (Some(o), _) => o.replace('_', " "),
        (None, Some(d)) => d.clone(),
        (None, None) => "undecided".into(),
    };
    view! {
        <tr class="review-item" data-agent=i.agent_name.clone()>
            <td>{shown(&i.agent_name)}</td>
            <td>{shown(&i.tool_name)}</td>
            <td>{i.reviewer.clone()}</td>
            <td><span class=format!("badge {}", state.replace(' ', "-"))>{state.clone()}</span></td>
            <td>{i.note.clone().map(|n| shown(&n))}</td>
            <td>{open.then(|| view! {
                <button type="button" class="link keep" on:click=keep>"Keep"</button> " "
                <button type="button" class="link revoke" on:click=revoke>"Revoke"</button>
            })}</td>
        </tr>
    }
}

/// Percent-encodes text for a `data:` URL.
fn percent(text: &str) -> String {
    let mut out = String::with_capacity(text.len() * 3);
    for b in text.bytes() {
        if b.is_ascii_alphanumeric() || b"-_.~,".contains(&b) {
            out.push(b as char);
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}
