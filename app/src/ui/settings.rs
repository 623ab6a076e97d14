//! Settings: the organization, notifications, and the person's sessions (list and end them).

use leptos::prelude::*;

use super::mutation::mutation;
use super::widgets::{dialogs, error_box, go_to, short_time};
use crate::api::auth::{end_session, my_sessions, switch_org};
use crate::api::members::delete_organization;
use crate::model::MemberView;

#[component]
pub fn SettingsPage() -> impl IntoView {
    let member = expect_context::<MemberView>();
    let refresh = RwSignal::new(0_u64);
    let sessions = super::widgets::rpc_resource(move || refresh.get(), |_| my_sessions());
    let end = move |handle: String, current: bool| {
        mutation()
            .refetch(refresh)
            .run_quietly(end_session(handle), move |()| {
                if current {
                    go_to("/login");
                }
                (!current).then(|| "Session ended.".to_owned())
            });
    };
    let switch = move |org_id: String| mutation().then(switch_org(org_id), |()| go_to("/"));
    let org_name = member.org_name.clone();
    let delete_org = move |_| {
        let m = mutation();
        let expected = org_name.clone();
        let message = format!(
            "Type \"{expected}\" to confirm. Its agents stop, its secrets are destroyed and its members lose access; the audit log is kept."
        );
        dialogs().text(
            "Delete this organization?",
            message,
            "Delete",
            move |typed| m.then(delete_organization(typed), |()| go_to("/")),
        );
    };
    view! {
        {super::widgets::page_title("Settings")}
        <h1>"Settings"</h1>
        <section class="card">
            <h2>"Organization"</h2>
            <p>{member.org_name.clone()} " · you are " <strong>{member.role.as_str()}</strong></p>
            {(member.organizations.len() > 1).then(|| view! {
                <ul>
                    {member.organizations.iter().filter(|o| o.id != member.org_id).cloned().map(|o| {
                        let id = o.id.clone();
                        view! { <li>{o.name} " (" {o.role.as_str()} ") " <button type="button" class="link" on:click=move |_| switch(id.clone())>"Switch"</button></li> }
                    }).collect_view()}
                </ul>
            })}
            {(member.role == crate::model::Role::Owner).then(|| view! {
                <button type="button" class="danger" id="delete-org" on:click=delete_org>"Delete organization"</button>
            })}
        </section>
        <super::notifications::NotificationsSection/>
        <super::lifecycle::LifecycleSection/>
        <section class="card">
            <h2>"Your sessions"</h2>
            <Transition fallback=|| view! { <p class="loading">"Loading…"</p> }>
                {move || sessions.get().map(|r| match r {
                    Ok(list) => view! {
                        <ul class="rows" id="sessions">
                            {list.into_iter().map(|s| {
                                let handle = s.handle.clone();
                                let current = s.current;
                                view! {
                                    <li class="row">
                                        <div class="main">
                                            <strong>{s.user_agent.clone().unwrap_or_else(|| "Unknown browser".into())}</strong>
                                            {current.then(|| view! { " " <span class="badge">"this session"</span> })}
                                            <p class="muted">{format!("{} · signed in {} · last seen {}", s.ip.unwrap_or_default(), short_time(&s.created_at), short_time(&s.last_seen_at))}</p>
                                        </div>
                                        <div class="actions">
                                            <button type="button" on:click=move |_| end(handle.clone(), current)>{if current { "Sign out" } else { "End" }}</button>
                                        </div>
                                    </li>
                                }
                            }).collect_view()}
                        </ul>
                    }.into_any(),
                    Err(err) => error_box(&err),
                })}
            </Transition>
        </section>
    }
}
