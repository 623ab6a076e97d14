//! Status page: live instance counts, refreshed by the hydrated page every few seconds.

use leptos::prelude::*;

use crate::api::get_status;
use crate::model::StatusView;

const REFRESH_MS: u64 = 3_000;

/// Shows version, backend, uptime and live counts. `data-hydrated` flips to `true` once the
/// WASM has taken over, which the browser test waits for.
#[component]
pub fn StatusPage() -> impl IntoView {
    let (tick, set_tick) = signal(0_u64);
    let status = super::widgets::rpc_resource(move || tick.get(), |_| get_status());
    let hydrated = RwSignal::new(false);

    Effect::new(move |_| {
        hydrated.set(true);
        set_interval(
            move || set_tick.update(|t| *t += 1),
            std::time::Duration::from_millis(REFRESH_MS),
        );
    });

    view! {
        <main class="status" id="status" data-hydrated=move || hydrated.get().to_string()>
            <header>
                {super::widgets::page_title("Status")}
                <h1>"AgentKey"</h1>
                <p class="tagline">"Credentials for AI agents, on request, with approval and a record."</p>
            </header>
            <Suspense fallback=|| view! { <p class="loading">"Loading status…"</p> }>
                {move || status.get().map(|result| match result {
                    Ok(view) => counts(view).into_any(),
                    Err(_) => view! { <p class="error" role="alert">"Status is unavailable right now."</p> }.into_any(),
                })}
            </Suspense>
            <button id="refresh" type="button" on:click=move |_| set_tick.update(|t| *t += 1)>
                "Refresh"
            </button>
        </main>
    }
}

fn counts(view: StatusView) -> impl IntoView {
    view! {
        <dl class="counts">
            <div><dt>"Agents"</dt><dd id="count-agents">{view.agents}</dd></div>
            <div><dt>"Tools"</dt><dd id="count-tools">{view.tools}</dd></div>
            <div><dt>"Pending requests"</dt><dd id="count-pending">{view.pending_requests}</dd></div>
            <div><dt>"Audit events"</dt><dd id="count-audit">{view.audit_events}</dd></div>
        </dl>
        <p class="meta">
            "Version " {view.version} " · " {view.backend} " · up " {view.uptime_seconds} " s"
        </p>
    }
}
