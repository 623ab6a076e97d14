//! The signed-in frame: navigation, the organization and person, toasts, and the live event
//! stream that keeps every page current.

use leptos::prelude::*;
use leptos_router::components::{A, Outlet, Redirect};

use super::mutation::mutation;
use super::widgets::{DialogHost, Dialogs, Live, Pending, ToastList, Toasts, go_to};
use crate::api::auth::{sign_out, whoami};
use crate::api::inbox::get_pending;
use crate::model::MemberView;

/// Layout of every dashboard page; sends anonymous visitors to the sign-in page.
#[component]
pub fn Dashboard() -> impl IntoView {
    provide_context(Toasts(RwSignal::new(Vec::new())));
    provide_context(Dialogs(RwSignal::new(None)));
    let live = Live(RwSignal::new(0));
    provide_context(live);
    let pending = Pending(RwSignal::new(0));
    provide_context(pending);
    let me = super::widgets::rpc_resource(|| (), |_| whoami());
    connect_live(live);
    // The count follows every change of the organization.
    let waiting = super::widgets::rpc_resource(move || live.0.get(), |_| get_pending());
    Effect::new(move |_| {
        if let Some(Ok(n)) = waiting.get() {
            pending.0.set(n);
        }
    });

    // A transition, not a suspense: while a page's code or data loads, the frame and the page
    // being left stay on screen under the loading bar instead of blanking.
    view! {
        <Transition fallback=|| view! { <p class="loading page">"Loading…"</p> }>
            {move || me.get().map(|result| match result {
                Ok(Some(member)) => frame(member).into_any(),
                Ok(None) => view! { <Redirect path="/login"/> }.into_any(),
                Err(err) => view! { <main class="narrow">{super::widgets::error_box(&err)}</main> }.into_any(),
            })}
        </Transition>
    }
}

fn frame(member: MemberView) -> impl IntoView {
    provide_context(member.clone());
    // Decisions waiting on an Undo toast go out, and are answered, under this session first.
    let do_sign_out = move |_| {
        let m = mutation();
        expect_context::<Toasts>().send_held();
        super::toast::after_sent(move || m.then(sign_out(), |()| go_to("/login")));
    };
    // On a narrow screen the links fold into a menu; choosing one folds it again.
    let menu = RwSignal::new(false);
    view! {
        <div class="app">
            <nav class="sidebar" aria-label="Main">
                <div class="bar">
                    <div class="brand">"AgentKey"</div>
                    <button type="button" class="menu-toggle" aria-controls="nav-links"
                        aria-expanded=move || menu.get().to_string() on:click=move |_| menu.update(|m| *m = !*m)>
                        {move || if menu.get() { "Close menu" } else { "Menu" }}
                    </button>
                </div>
                <div class="links" id="nav-links" class:open=move || menu.get() on:click=move |_| menu.set(false)>
                <div class="org" title="Organization">{member.org_name.clone()}</div>
                <A href="/" exact=true>"Overview"</A>
                <A href="/inbox">"Inbox" {move || {
                    let n = expect_context::<Pending>().0.get();
                    (n > 0).then(|| view! { " " <span class="count" id="pending-count" aria-label=format!("{n} waiting")>{n}</span> })
                }}</A>
                <A href="/access">"Access"</A>
                <A href="/reviews">"Reviews"</A>
                <A href="/agents">"Agents"</A>
                <A href="/tools">"Tools"</A>
                <A href="/audit">"Audit log"</A>
                <A href="/members">"Members"</A>
                <A href="/settings">"Settings"</A>
                <div class="who">
                    <span class="email">{member.email.clone()}</span>
                    <span class="role">{member.role.as_str()}</span>
                    <button type="button" class="link" id="sign-out" on:click=do_sign_out>"Sign out"</button>
                </div>
                </div>
            </nav>
            <main class="content">
                <Outlet/>
            </main>
            <ToastList/>
            <DialogHost/>
        </div>
    }
}

/// Opens the organization's event stream in the browser. Every change bumps [`Live`]; the
/// browser's EventSource reconnects by itself after a restart, and the server's first event on
/// each connection ("resync") makes the pages reload what they show.
fn connect_live(live: Live) {
    Effect::new(move |_| {
        #[cfg(feature = "hydrate")]
        {
            use wasm_bindgen::JsCast;
            use wasm_bindgen::closure::Closure;
            let Ok(source) = web_sys::EventSource::new("/events") else {
                return;
            };
            let on_change = Closure::<dyn FnMut(web_sys::MessageEvent)>::new(
                move |_event: web_sys::MessageEvent| {
                    live.0.update(|v| *v += 1);
                    // Lets tests (and curious people) see that the stream is up.
                    let body = web_sys::window()
                        .and_then(|w| w.document())
                        .and_then(|d| d.body());
                    if let Some(body) = body {
                        let _ =
                            body.set_attribute("data-live", &live.0.get_untracked().to_string());
                    }
                },
            );
            let _ = source
                .add_event_listener_with_callback("change", on_change.as_ref().unchecked_ref());
            on_change.forget();
            // Closed with the page; the stream is one per tab.
            std::mem::forget(source);
        }
        let _ = live;
    });
}
