//! Sign-in: ask for a link, and confirm a link (a GET shows this page; only the button's POST
//! uses the token).

use leptos::prelude::*;
use leptos_router::hooks::use_query_map;

use super::mutation::mutation;
use super::widgets::go_to;
use crate::api::auth::{check_link, confirm_sign_in, request_sign_in};

#[component]
pub fn LoginPage() -> impl IntoView {
    let email = RwSignal::new(String::new());
    let sent = RwSignal::new(false);
    let error = RwSignal::new(None::<String>);
    let busy = RwSignal::new(false);
    let submit = move |ev: leptos::ev::SubmitEvent| {
        ev.prevent_default();
        mutation()
            .busy(busy)
            .inline_error(error)
            .then(request_sign_in(email.get_untracked()), move |()| {
                sent.set(true)
            });
    };
    view! {
        <main class="narrow auth">
            {super::widgets::page_title("Sign in")}<h1>"Sign in to AgentKey"</h1>
            <Show
                when=move || sent.get()
                fallback=move || view! {
                    <form on:submit=submit class="card">
                        <label for="email">"Work email"</label>
                        <input id="email" type="email" required autocomplete="email" bind:value=email/>
                        <button type="submit" class="primary" disabled=move || busy.get()>"Email me a sign-in link"</button>
                        {move || error.get().map(|e| view! { <p class="error" role="alert">{e}</p> })}
                    </form>
                }
            >
                <p class="card" id="link-sent">
                    "If this address belongs to a member, a sign-in link is on its way. It works once, for 15 minutes."
                </p>
            </Show>
        </main>
    }
}

#[component]
pub fn ConfirmPage() -> impl IntoView {
    let query = use_query_map();
    let token = move || query.with(|q| q.get("token").unwrap_or_default());
    let link = super::widgets::rpc_resource(token, check_link);
    let email = RwSignal::new(String::new());
    let org_name = RwSignal::new(String::new());
    let error = RwSignal::new(None::<String>);
    let busy = RwSignal::new(false);
    let confirm = move |bootstrap: bool| {
        let (email, org) = if bootstrap {
            (Some(email.get_untracked()), Some(org_name.get_untracked()))
        } else {
            (None, None)
        };
        mutation()
            .busy(busy)
            .inline_error(error)
            // A new organization starts on Overview, with its getting-started checklist.
            .then(confirm_sign_in(token(), email, org), move |()| {
                go_to(if bootstrap { "/" } else { "/inbox" })
            });
    };
    view! {
        <main class="narrow auth">
            {super::widgets::page_title("Sign in")}<h1>"Sign in to AgentKey"</h1>
            <Suspense fallback=|| view! { <p class="loading">"Checking the link…"</p> }>
                {move || link.get().map(|result| match result {
                    Ok(view) if view.valid && view.bootstrap => view! {
                        <form class="card" on:submit=move |ev| { ev.prevent_default(); confirm(true); }>
                            <p>"Welcome. Create your organization; you will be its owner."</p>
                            <label for="org-name">"Organization name"</label>
                            <input id="org-name" required minlength="2" maxlength="120" bind:value=org_name/>
                            <label for="owner-email">"Your email"</label>
                            <input id="owner-email" type="email" required bind:value=email/>
                            <button type="submit" class="primary" id="confirm" disabled=move || busy.get()>"Create and sign in"</button>
                        </form>
                    }.into_any(),
                    Ok(view) if view.valid => view! {
                        <form class="card" on:submit=move |ev| { ev.prevent_default(); confirm(false); }>
                            <p>"Sign in as " <strong>{view.email.unwrap_or_default()}</strong> "?"</p>
                            <button type="submit" class="primary" id="confirm" disabled=move || busy.get()>"Sign in"</button>
                        </form>
                    }.into_any(),
                    Ok(_) => view! {
                        <p class="card error" role="alert">"This link is invalid, used or expired. " <a href="/login">"Request a new one."</a></p>
                    }.into_any(),
                    Err(err) => view! { <p class="error" role="alert">{err.text()}</p> }.into_any(),
                })}
            </Suspense>
            {move || error.get().map(|e| view! { <p class="error" role="alert">{e}</p> })}
        </main>
    }
}
