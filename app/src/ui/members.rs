//! Members: who is in the organization with which role, invitations (send, resend, revoke),
//! role changes and removal (owners), leaving, the allowed email domains, and the role matrix.
//! Also the page an invitation link opens.

use leptos::prelude::*;
use leptos_router::hooks::use_query_map;

use super::mutation::mutation;
use super::widgets::{dialogs, error_box, go_to, short_time};
use crate::api::members::{
    accept_invitation, change_member_role, check_invitation, invite_member, leave_organization,
    list_members, remove_member, resend_invitation, revoke_invitation, set_allowed_domains,
};
use crate::model::{InvitationView, MemberEntry, MembersView, Role};

#[component]
pub fn MembersPage() -> impl IntoView {
    let refresh = RwSignal::new(0_u64);
    let data = super::widgets::rpc_resource(move || refresh.get(), |_| list_members());
    view! {
        {super::widgets::page_title("Members")}
        <h1>"Members"</h1>
        <Transition fallback=|| view! { <p class="loading">"Loading…"</p> }>
            {move || data.get().map(|r| match r {
                Ok(v) => members_view(v, refresh).into_any(),
                Err(err) => error_box(&err),
            })}
        </Transition>
        <section class="card">
            <h2>"Roles"</h2>
            <table class="matrix">
                <tbody>
                    {Role::ALL.iter().map(|r| view! { <tr><th>{r.as_str()}</th><td>{r.summary()}</td></tr> }).collect_view()}
                </tbody>
            </table>
        </section>
    }
}

fn members_view(v: MembersView, refresh: RwSignal<u64>) -> impl IntoView {
    let (can_invite, can_manage) = (v.can_invite, v.can_manage);
    let domains = v.allowed_domains.join(", ");
    view! {
        {can_invite.then(|| view! { <InviteForm refresh=refresh owners=can_manage/> })}
        <section class="card">
            <h2>"Members"</h2>
            <ul class="rows" id="members">{v.members.into_iter().map(|m| member_row(m, can_manage, refresh)).collect_view()}</ul>
        </section>
        <section class="card">
            <h2>"Open invitations"</h2>
            {if v.invitations.is_empty() {
                view! { <p class="muted">"None."</p> }.into_any()
            } else {
                view! { <ul class="rows" id="invitations">{v.invitations.into_iter().map(|i| invitation_row(i, can_invite, refresh)).collect_view()}</ul> }.into_any()
            }}
        </section>
        {can_manage.then(|| view! { <Domains current=domains refresh=refresh/> })}
    }
}

#[component]
fn InviteForm(refresh: RwSignal<u64>, owners: bool) -> impl IntoView {
    let email = RwSignal::new(String::new());
    let role = RwSignal::new(String::from("approver"));
    let submit = move |ev: leptos::ev::SubmitEvent| {
        ev.prevent_default();
        let (e, r) = (email.get_untracked(), role.get_untracked());
        email.set(String::new());
        mutation().refetch(refresh).run(invite_member(e, r), |i| {
            format!("Invitation sent to {}.", i.email)
        });
    };
    view! {
        <form class="card" id="invite" on:submit=submit>
            <h2>"Invite someone"</h2>
            <label for="invite-email">"Email"</label>
            <input id="invite-email" type="email" required bind:value=email/>
            <label for="invite-role">"Role"</label>
            <select id="invite-role" bind:value=role>
                {Role::ALL.iter().filter(|r| owners || **r != Role::Owner).map(|r| view! { <option value=r.as_str()>{r.as_str()}</option> }).collect_view()}
            </select>
            <button type="submit" class="primary">"Send invitation"</button>
        </form>
    }
}

fn member_row(m: MemberEntry, can_manage: bool, refresh: RwSignal<u64>) -> impl IntoView {
    let (id, id2) = (m.user_id.clone(), m.user_id.clone());
    let email = m.email.clone();
    let change = move |ev: leptos::ev::Event| {
        let (id, role) = (id.clone(), event_target_value(&ev));
        mutation()
            .refetch(refresh)
            .run(change_member_role(id, role), |()| {
                "Role changed.".to_owned()
            });
    };
    let remove = move |_| {
        let id = id2.clone();
        dialogs().confirm(
            format!("Remove {email}?"),
            "They lose access to this organization at once and all their sessions end.",
            "Remove",
            move || {
                let id = id.clone();
                mutation()
                    .refetch(refresh)
                    .run(remove_member(id), |()| "Member removed.".to_owned());
            },
        );
    };
    let leave = move |_| {
        let m = mutation();
        dialogs().confirm(
            "Leave this organization?",
            "You lose access to it at once.",
            "Leave",
            move || m.then(leave_organization(), |()| go_to("/")),
        );
    };
    let role = m.role;
    view! {
        <li class="row member" data-email=m.email.clone()>
            <div class="main">
                <strong>{m.email.clone()}</strong>
                {m.you.then(|| view! { " " <span class="badge">"you"</span> })}
                <p class="muted">{format!("joined {}", short_time(&m.joined_at))}</p>
            </div>
            <div class="actions">
                {if can_manage {
                    view! {
                        <select aria-label="Role" on:change=change>
                            {Role::ALL.iter().map(|r| view! { <option value=r.as_str() selected=*r == role>{r.as_str()}</option> }).collect_view()}
                        </select>
                    }.into_any()
                } else {
                    view! { <span class="badge">{role.as_str()}</span> }.into_any()
                }}
                {(can_manage && !m.you).then(|| view! { <button type="button" class="danger" on:click=remove>"Remove"</button> })}
                {m.you.then(|| view! { <button type="button" on:click=leave>"Leave"</button> })}
            </div>
        </li>
    }
}

fn invitation_row(i: InvitationView, can_invite: bool, refresh: RwSignal<u64>) -> impl IntoView {
    let (id, id2) = (i.id.clone(), i.id.clone());
    let resend = move |_| {
        let id = id.clone();
        mutation().refetch(refresh).run(resend_invitation(id), |i| {
            format!("Sent again to {}.", i.email)
        });
    };
    let revoke = move |_| {
        let id = id2.clone();
        mutation()
            .refetch(refresh)
            .run(revoke_invitation(id), |()| "Invitation revoked.".to_owned());
    };
    let email = i.email.clone();
    view! {
        <li class="row invitation" data-email=email>
            <div class="main">
                <strong>{i.email}</strong> " " <span class="badge">{i.role.as_str()}</span>
                <p class="muted">{format!("invited by {} · expires {}", i.invited_by, short_time(&i.expires_at))}</p>
            </div>
            {can_invite.then(|| view! {
                <div class="actions">
                    <button type="button" on:click=resend>"Resend"</button>
                    <button type="button" class="danger" on:click=revoke>"Revoke"</button>
                </div>
            })}
        </li>
    }
}

#[component]
fn Domains(current: String, refresh: RwSignal<u64>) -> impl IntoView {
    let value = RwSignal::new(current);
    let save = move |ev: leptos::ev::SubmitEvent| {
        ev.prevent_default();
        let text = value.get_untracked();
        mutation()
            .refetch(refresh)
            .run(set_allowed_domains(text), |_| {
                "Allowed domains saved.".to_owned()
            });
    };
    view! {
        <form class="card" on:submit=save>
            <h2>"Allowed email domains"</h2>
            <p class="muted">"Invitations only go to these domains. Leave empty to allow any."</p>
            <label for="domains">"Domains (comma-separated)"</label>
            <input id="domains" placeholder="example.com" bind:value=value/>
            <button type="submit">"Save"</button>
        </form>
    }
}

/// The page an invitation link opens: its GET only shows who invites whom; the button's POST
/// uses the link and signs the person in.
#[component]
pub fn InvitePage() -> impl IntoView {
    let query = use_query_map();
    let token = move || query.with(|q| q.get("token").unwrap_or_default());
    let invitation = super::widgets::rpc_resource(token, check_invitation);
    let error = RwSignal::new(None::<String>);
    let busy = RwSignal::new(false);
    let accept = move |ev: leptos::ev::SubmitEvent| {
        ev.prevent_default();
        mutation()
            .busy(busy)
            .inline_error(error)
            .then(accept_invitation(token()), |()| go_to("/inbox"));
    };
    view! {
        <main class="narrow auth">
            {super::widgets::page_title("Join an organization")}<h1>"Join an organization"</h1>
            <Suspense fallback=|| view! { <p class="loading">"Checking the invitation…"</p> }>
                {move || invitation.get().map(|r| match r {
                    Ok(v) if v.valid => view! {
                        <form class="card" on:submit=accept>
                            <p>"Join " <strong>{v.org_name.unwrap_or_default()}</strong> " as " <strong>{v.role.map(Role::as_str).unwrap_or_default()}</strong>
                               " with " <strong>{v.email.unwrap_or_default()}</strong> "?"</p>
                            <button type="submit" class="primary" id="accept" disabled=move || busy.get()>"Accept and sign in"</button>
                        </form>
                    }.into_any(),
                    Ok(_) => view! { <p class="card error" role="alert">"This invitation is invalid, used, revoked or expired. Ask for a new one."</p> }.into_any(),
                    Err(err) => view! { <p class="error" role="alert">{err.text()}</p> }.into_any(),
                })}
            </Suspense>
            {move || error.get().map(|e| view! { <p class="error" role="alert">{e}</p> })}
        </main>
    }
}
