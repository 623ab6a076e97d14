//! Grant lifecycle in the dashboard: a tool's grant durations, the organization's expiry
//! settings, and the offer to rotate a shared secret an agent saw before it lost access.

use leptos::prelude::*;

use super::mutation::mutation;
use super::widgets::{Dialogs, error_box, rpc_resource, short_time, shown};
use crate::api::lifecycle::{
    add_auto_rule, delete_auto_rule, get_lifecycle_settings, get_rotation_advice, list_auto_rules,
    save_lifecycle_settings, set_agent_labels, set_tool_always_human, set_tool_durations,
};
use crate::api::tools::set_tool_credential;
use crate::model::{AccessRequestView, RequestOrigin};
use crate::model::{GrantDuration, ToolView};

/// The longest grant an approval of the tool may give and the default length.
#[component]
pub fn ToolDurations(tool: ToolView) -> impl IntoView {
    let text = |d: Option<GrantDuration>| d.map(|d| d.to_string()).unwrap_or_default();
    let max = RwSignal::new(text(tool.max_duration));
    let default = RwSignal::new(text(tool.default_duration));
    let id = tool.id.clone();
    let save = move |ev: leptos::ev::SubmitEvent| {
        ev.prevent_default();
        mutation().run(
            set_tool_durations(id.clone(), max.get_untracked(), default.get_untracked()),
            |t| {
                format!(
                    "{}: grants last at most {}, by default {}.",
                    t.name,
                    t.max_duration.map_or("without limit".into(), |d| d.label()),
                    t.default_duration
                        .or(t.max_duration)
                        .map_or("standing".into(), |d| d.label())
                )
            },
        );
    };
    view! {
        <form class="inline-form durations" on:submit=save>
            <label>"Longest grant "
                <input name="max_duration" class="max-duration" placeholder="no limit (e.g. 8h)" size="12" bind:value=max/>
            </label>
            <label>"Default "
                <input name="default_duration" class="default-duration" placeholder="the longest, else standing" size="14" bind:value=default/>
            </label>
            <button type="submit">"Save"</button>
            <span class="muted">" 30m, 8h, 7d or standing"</span>
        </form>
    }
}

/// How long a request may wait and a grant may sit unused, for the settings page.
#[component]
pub fn LifecycleSection() -> impl IntoView {
    let settings = rpc_resource(|| (), |_| get_lifecycle_settings());
    let admin = expect_context::<crate::model::MemberView>()
        .role
        .can_administer();
    view! {
        <section class="card lifecycle" id="lifecycle">
            <h2>"Expiry"</h2>
            <Suspense fallback=|| view! { <p class="loading">"Loading…"</p> }>
                {move || settings.get().map(|r| match r {
                    Err(e) => error_box(&e),
                    Ok(s) => {
                        let hours = RwSignal::new(s.pending_expiry_hours.to_string());
                        let idle = RwSignal::new(s.idle_revoke_days.map(|d| d.to_string()).unwrap_or_default());
                        let save = move |ev: leptos::ev::SubmitEvent| {
                            ev.prevent_default();
                            let (h, i) = (hours.get_untracked(), idle.get_untracked());
                            let Ok(h) = h.trim().parse::<i64>() else {
                                super::widgets::toasts().show("Pending expiry must be a whole number of hours.", true);
                                return;
                            };
                            let i = match i.trim() {
                                "" => None,
                                t => match t.parse::<i64>() {
                                    Ok(n) => Some(n),
                                    Err(_) => {
                                        super::widgets::toasts().show("Idle days must be a whole number, or empty for never.", true);
                                        return;
                                    }
                                },
                            };
                            mutation().run(save_lifecycle_settings(h, i), |s| match s.idle_revoke_days {
                                Some(d) => format!("Requests expire after {} h; grants unused for {d} days are revoked.", s.pending_expiry_hours),
                                None => format!("Requests expire after {} h; unused grants stay.", s.pending_expiry_hours),
                            });
                        };
                        view! {
                            <form class="inline-form" on:submit=save>
                                <label>"A request nobody decides expires after "
                                    <input type="number" min="1" max="2160" class="pending-hours" bind:value=hours disabled=!admin/> " hours"
                                </label>
                                <label>"Revoke grants unused for "
                                    <input type="number" min="1" max="365" class="idle-days" placeholder="never" bind:value=idle disabled=!admin/> " days"
                                </label>
                                {admin.then(|| view! { <button type="submit">"Save"</button> })}
                            </form>
                            <p class="muted">"Agents see an expired request and may ask again; reviewers with reminders on hear about grants about to end and requests waiting over a day."</p>
                        }.into_any()
                    }
                })}
            </Suspense>
        </section>
    }
}

/// After `agent_id` lost access (to `tool_id`, or to everything): if it had fetched the
/// current version of a shared secret, offers to rotate it at once (write-only).
pub fn offer_rotation(dialogs: Dialogs, agent_id: String, tool_id: Option<String>) {
    leptos::task::spawn_local(async move {
        let Ok(advice) = get_rotation_advice(agent_id, tool_id).await else {
            return;
        };
        let Some(first) = advice.first().cloned() else {
            return;
        };
        let more: Vec<String> = advice
            .iter()
            .skip(1)
            .map(|a| format!("{} (version {})", a.tool_name, a.version))
            .collect();
        let more = if more.is_empty() {
            String::new()
        } else {
            format!(
                " It also saw {}: rotate those on the Tools page.",
                more.join(", ")
            )
        };
        let holders = match first.others_holding {
            0 => "no other agent holds it".to_owned(),
            1 => "1 other agent holds it and gets the new one on its next fetch".to_owned(),
            n => format!("{n} other agents hold it and get the new one on their next fetch"),
        };
        let message = format!(
            "{} saw version {} of {}'s secret; {holders} — rotate? Paste the new secret from {}.{more}",
            first.agent_name, first.version, first.tool_name, first.tool_name
        );
        dialogs.secret(
            format!("Rotate {}'s secret?", first.tool_name),
            message,
            "Rotate",
            move |secret| {
                mutation().run(set_tool_credential(first.tool_id.clone(), secret), |t| {
                    format!(
                        "{}'s secret is now version {}.",
                        t.name, t.credential_version
                    )
                });
            },
        );
    });
}

/// Every auto-approval rule of the organization, in one place, with a form to add one.
#[component]
pub fn AutoRules() -> impl IntoView {
    let live = super::widgets::live();
    let rules = rpc_resource(move || live.0.get(), |_| list_auto_rules());
    let tools = rpc_resource(move || live.0.get(), |_| crate::api::tools::list_tools());
    let admin = expect_context::<crate::model::MemberView>()
        .role
        .can_administer();
    // Empty until picked: the first tool of the list.
    let tool = RwSignal::new(String::new());
    let labels = RwSignal::new(String::new());
    let max = RwSignal::new("8h".to_owned());
    let add = move |ev: leptos::ev::SubmitEvent| {
        ev.prevent_default();
        let picked = tool.get_untracked();
        let picked = if picked.is_empty() {
            tools
                .get_untracked()
                .and_then(Result::ok)
                .and_then(|l| l.first().map(|t| t.id.clone()))
                .unwrap_or_default()
        } else {
            picked
        };
        mutation().run(
            add_auto_rule(picked, labels.get_untracked(), max.get_untracked()),
            move |r| {
                labels.set(String::new());
                format!(
                    "{} is now approved for agents labelled {} (at most {}).",
                    r.tool_name,
                    r.labels.join(" "),
                    r.max_duration.label()
                )
            },
        );
    };
    let options = |list: Vec<ToolView>| {
        list.into_iter()
            .map(|t| view! { <option value=t.id.clone()>{t.name}</option> })
            .collect_view()
    };
    view! {
        <section class="card auto-rules" id="auto-rules">
            <h2>"Auto-approval rules"</h2>
            <p class="muted">"A request from an agent carrying all of a rule's labels is approved at once, for at most the rule's time, read-only on a proxied tool. Tools that always need a human, need several approvals or carry a secret per grant are never approved by a rule."</p>
            <Transition fallback=|| view! { <p class="loading">"Loading…"</p> }>
                {move || rules.get().map(|r| match r {
                    Err(e) => error_box(&e),
                    Ok(list) if list.is_empty() => view! { <p class="empty">"No rules: every request waits for a reviewer."</p> }.into_any(),
                    Ok(list) => view! {
                        <ul class="rows">
                            {list.into_iter().map(|r| {
                                let id = r.id.clone();
                                let remove = move |_| { mutation().run(delete_auto_rule(id.clone()), |()| "Rule removed.".to_owned()); };
                                view! {
                                    <li class="row rule" data-id=r.id.clone()>
                                        <div class="main">
                                            <strong>{r.tool_name.clone()}</strong> " for agents labelled "
                                            {r.labels.iter().map(|l| view! { <span class="badge label">{l.clone()}</span> " " }).collect_view()}
                                            <span class="muted">{format!("at most {}{} · by {}", r.max_duration.label(), if r.read_only { ", read-only" } else { "" }, r.created_by)}</span>
                                            {r.inactive.clone().map(|w| view! { <p class="cannot-approve muted">{format!("Approves nothing now: {w}")}</p> })}
                                        </div>
                                        {admin.then(|| view! { <div class="actions"><button type="button" class="link" on:click=remove>"Remove"</button></div> })}
                                    </li>
                                }
                            }).collect_view()}
                        </ul>
                    }.into_any(),
                })}
            </Transition>
            {admin.then(|| view! {
                <Transition fallback=|| ()>
                    {move || tools.get().and_then(Result::ok).filter(|l| !l.is_empty()).map(|list| view! {
                        <form class="inline-form" aria-label="Add an auto-approval rule" on:submit=add>
                            <label>"Tool " <select class="rule-tool" prop:value=move || tool.get() on:change=move |ev| tool.set(event_target_value(&ev))>{options(list)}</select></label>
                            <label>"Labels " <input class="rule-labels" placeholder="team:payments env:staging" bind:value=labels/></label>
                            <label>"At most " <input class="rule-max" size="6" bind:value=max/></label>
                            <button type="submit">"Add rule"</button>
                        </form>
                    })}
                </Transition>
            })}
        </section>
    }
}

/// "Always needs a human": no rule ever approves the tool.
#[component]
pub fn AlwaysHuman(tool: ToolView) -> impl IntoView {
    let id = tool.id.clone();
    view! {
        <label class="always-human">
            <input type="checkbox" prop:checked=tool.always_human on:change=move |ev| {
                let on = event_target_checked(&ev);
                mutation().run(set_tool_always_human(id.clone(), on), |t| {
                    if t.always_human { format!("{} always needs a human now.", t.name) } else { format!("{} may be approved by rules.", t.name) }
                });
            }/>
            " Always needs a human (no auto-approval)"
        </label>
    }
}

/// An agent's labels, which auto-approval rules match; editable by admins.
#[component]
pub fn AgentLabels(agent: crate::model::AgentView) -> impl IntoView {
    let admin = expect_context::<crate::model::MemberView>()
        .role
        .can_administer();
    let text = RwSignal::new(agent.labels.join(" "));
    let id = agent.id.clone();
    let save = move |ev: leptos::ev::SubmitEvent| {
        ev.prevent_default();
        mutation().run(set_agent_labels(id.clone(), text.get_untracked()), |a| {
            if a.labels.is_empty() {
                format!("{} has no labels.", a.name)
            } else {
                format!("{} is labelled {}.", a.name, a.labels.join(" "))
            }
        });
    };
    view! {
        <span class="labels">
            {agent.labels.iter().map(|l| view! { <span class="badge label">{l.clone()}</span> " " }).collect_view()}
        </span>
        {admin.then(|| view! {
            <form class="inline-form agent-labels" on:submit=save>
                <label>"Labels " <input class="labels-input" placeholder="team:payments env:staging" bind:value=text/></label>
                <button type="submit">"Save labels"</button>
            </form>
        })}
    }
}

/// The organization's requests, loaded once for the Tools page's holder lists.
#[derive(Clone, Copy)]
pub struct Holders(
    pub  Resource<
        Result<Vec<crate::model::AccessRequestView>, crate::model::RpcError>,
        super::widgets::RpcJson,
    >,
);

/// Who holds a live grant of the tool, each with the time it has left.
#[component]
pub fn ToolHolders(tool_id: String) -> impl IntoView {
    let Holders(grants) = expect_context::<Holders>();
    let usage = use_context::<super::usage::Usage>();
    view! {
        <Transition fallback=|| ()>
            {move || grants.get().and_then(Result::ok).map(|list| {
                let mine: Vec<_> = list
                    .into_iter()
                    .filter(|g| g.tool_id == tool_id && g.status == crate::model::RequestStatus::Approved)
                    .collect();
                (!mine.is_empty()).then(|| view! {
                    <p class="muted holders">"Held by "
                        {mine.into_iter().map(|g| view! {
                            <span class="holder">{super::widgets::shown(&g.agent_name)}
                                {g.expires_at.clone().map(|until| view! { " (" <super::countdown::Countdown until/> ")" })}
                                {g.expires_at.is_none().then_some(" (standing)")}
                                {move || usage.and_then(|u| u.0.get()).and_then(Result::ok).map(|u| {
                                    super::usage::last_use_label(&u, &g.tool_id, &g.agent_id, super::countdown::now_ms())
                                        .map_or_else(|| ", never used".to_owned(), |l| format!(", {l}"))
                                })}
                            </span>
                            " "
                        }).collect_view()}
                    </p>
                })
            })}
        </Transition>
    }
}

/// Who asks for what and why: a new request, or a renewal with the grant's history and use.
pub fn request_summary(r: &AccessRequestView) -> AnyView {
    match r.renewal.clone() {
        Some(renewal) => view! {
            <div><span class="badge renewal">"renewal"</span> " " <strong class="agent">{shown(&r.agent_name)}</strong> " wants to keep " <strong class="tool">{shown(&r.tool_name)}</strong></div>
            <p class="reason">{shown(&renewal.reason)}</p>
            <span class="muted">{format!("asked {}", short_time(&renewal.requested_at))}
                {r.expires_at.clone().map(|until| view! { " · the grant has " <super::countdown::Countdown until/> })}
                {format!(" · approved {} by {}", r.decided_at.as_deref().map(short_time).unwrap_or_default(), r.decided_by.clone().unwrap_or_default())}
                {(r.renewals > 0).then(|| format!(" · renewed {} time(s) before", r.renewals))}
                {r.granted_duration.map(|d| format!(" · last given {}", d.label()))}
                {r.delivery.proxies().then(|| format!(" · {} proxied call(s) today", r.calls_today))}
                " · " <a href=format!("/audit?agent_id={}", r.agent_id)>"its history"</a>
            </span>
        }.into_any(),
        None => view! {
            <div><strong class="agent">{shown(&r.agent_name)}</strong> " wants " <strong class="tool">{shown(&r.tool_name)}</strong></div>
            <p class="reason">{shown(&r.reason)}</p>
            <span class="muted">{super::countdown::ago_view(&r.created_at)} {(r.origin != RequestOrigin::Agent).then(|| format!(" · {}", r.origin))}
                {r.requested_duration.map(|d| format!(" · asks for {}", d.label()))}</span>
        }.into_any(),
    }
}
