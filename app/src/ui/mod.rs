//! Leptos pages: the dashboard (sign-in, overview, inbox, agents, tools, audit, settings) and
//! the public status page.

mod access;
mod agents;
mod audit;
mod catalog;
mod countdown;
mod delivery;
mod draft;
mod fields;
mod guide;
mod inbox;
mod layout;
mod lifecycle;
mod login;
mod members;
mod mutation;
mod narrow;
mod notifications;
mod overview;
mod quorum;
mod reviews;
mod settings;
mod status;
mod toast;
mod tools;
mod usage;
mod widgets;

use leptos::prelude::*;
use leptos_meta::{MetaTags, Stylesheet, Title, provide_meta_context};
use leptos_router::{
    Lazy, LazyRoute, StaticSegment,
    components::{ParentRoute, Route, Router, Routes},
    lazy_route,
};

/// The HTML document around the app, rendered on the server. Sets the page's security
/// headers: a CSP whose only inline scripts are Leptos' own, carrying this response's nonce.
pub fn shell(options: LeptosOptions) -> impl IntoView {
    #[cfg(feature = "ssr")]
    security_headers();
    view! {
        <!DOCTYPE html>
        <html lang="en">
            <head>
                <meta charset="utf-8"/>
                <meta name="viewport" content="width=device-width, initial-scale=1"/>
                <HydrationScripts options/>
                <MetaTags/>
            </head>
            <body>
                <App/>
            </body>
        </html>
    }
}

#[cfg(feature = "ssr")]
fn security_headers() {
    use axum::http::{HeaderValue, header};
    let Some(options) = use_context::<leptos_axum::ResponseOptions>() else {
        return;
    };
    let nonce = leptos::nonce::use_nonce()
        .map(|n| n.to_string())
        .unwrap_or_default();
    let csp = format!(
        "default-src 'self'; script-src 'self' 'nonce-{nonce}' 'wasm-unsafe-eval'; style-src 'self'; \
         img-src 'self' data:; connect-src 'self'; form-action 'self'; frame-ancestors 'none'; \
         base-uri 'self'; object-src 'none'"
    );
    if let Ok(value) = HeaderValue::from_str(&csp) {
        options.insert_header(header::CONTENT_SECURITY_POLICY, value);
    }
    // Pages show organization data and, once, agent keys: never cache them.
    options.insert_header(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
}

/// The root component, mounted by both SSR and hydration.
#[component]
pub fn App() -> impl IntoView {
    provide_meta_context();
    // Pages load their code on first use: a bar at the top shows a navigation under way.
    let (routing, set_routing) = signal(false);
    view! {
        <Stylesheet id="agentkey" href="/pkg/agentkey.css"/>
        <Title text="AgentKey"/>
        <div class="routing" role="progressbar" aria-label="Loading the page" hidden=move || !routing.get()></div>
        <Router set_is_routing=set_routing>
            <Routes fallback=|| { mark_hydrated(); view! { <main class="narrow">{widgets::page_title("Page not found")}<h1>"Page not found"</h1><p class="empty">"There is no page at this address. "<a href="/">"Go to the overview"</a></p></main> } }>
                <Route path=StaticSegment("login") view={Lazy::<LoginRoute>::new()}/>
                <Route path=(StaticSegment("auth"), StaticSegment("confirm")) view={Lazy::<ConfirmRoute>::new()}/>
                <Route path=StaticSegment("status") view={Lazy::<StatusRoute>::new()}/>
                <Route path=StaticSegment("invite") view={Lazy::<InviteRoute>::new()}/>
                <ParentRoute path=StaticSegment("") view=layout::Dashboard>
                    <Route path=StaticSegment("") view={Lazy::<OverviewRoute>::new()}/>
                    <Route path=StaticSegment("inbox") view={Lazy::<InboxRoute>::new()}/>
                    <Route path=StaticSegment("access") view={Lazy::<AccessRoute>::new()}/>
                    <Route path=StaticSegment("reviews") view={Lazy::<ReviewsRoute>::new()}/>
                    <Route path=StaticSegment("agents") view={Lazy::<AgentsRoute>::new()}/>
                    <Route path=StaticSegment("tools") view={Lazy::<ToolsRoute>::new()}/>
                    <Route path=StaticSegment("audit") view={Lazy::<AuditRoute>::new()}/>
                    <Route path=StaticSegment("members") view={Lazy::<MembersRoute>::new()}/>
                    <Route path=StaticSegment("settings") view={Lazy::<SettingsRoute>::new()}/>
                </ParentRoute>
            </Routes>
        </Router>
    }
}

/// Installs the browser's panic hook: logs the panic to the console and tells the person the
/// page stopped working. A panic aborts the WASM module (for example when a page's chunk cannot
/// be loaded because AgentKey was updated meanwhile); without the notice the page would look
/// alive but ignore every click.
#[cfg(feature = "hydrate")]
pub fn install_panic_notice() {
    std::panic::set_hook(Box::new(|info| {
        console_error_panic_hook::hook(info);
        let Some(document) = web_sys::window().and_then(|w| w.document()) else {
            return;
        };
        let (Some(body), None) = (document.body(), document.get_element_by_id("fatal")) else {
            return;
        };
        let Ok(notice) = document.create_element("div") else {
            return;
        };
        notice.set_id("fatal");
        let _ = notice.set_attribute("role", "alert");
        notice.set_inner_html(
            "This page stopped working, perhaps because AgentKey was updated. <a href=\"\">Reload the page</a>",
        );
        let _ = body.append_child(&notice);
    }));
}

/// Marks the document once the WASM has hydrated the page it was loaded with (browser tests
/// wait for it after a full page load; the mark stays set across client-side navigation). Every
/// page is a lazy route, so this runs from the page's own view, after its chunk has loaded:
/// the effect runs once the page's handlers are attached.
fn mark_hydrated() {
    Effect::new(|_| {
        #[cfg(feature = "hydrate")]
        if let Some(body) = web_sys::window()
            .and_then(|w| w.document())
            .and_then(|d| d.body())
        {
            let _ = body.set_attribute("data-hydrated", "true");
        }
    });
}

/// Declares a route whose page is compiled into its own WASM chunk: the browser loads it the
/// first time the route is shown (split by `wasm-split-cli` in `scripts/build-site.sh`).
macro_rules! lazy_page {
    ($($route:ident => $page:path),* $(,)?) => {$(
        struct $route;

        #[lazy_route]
        impl LazyRoute for $route {
            fn data() -> Self {
                $route
            }

            fn view(_this: Self) -> AnyView {
                mark_hydrated();
                view! { <$page/> }.into_any()
            }
        }
    )*};
}

lazy_page! {
    LoginRoute => login::LoginPage,
    ConfirmRoute => login::ConfirmPage,
    StatusRoute => status::StatusPage,
    InviteRoute => members::InvitePage,
    OverviewRoute => overview::OverviewPage,
    InboxRoute => inbox::InboxPage,
    AccessRoute => access::AccessPage,
    ReviewsRoute => reviews::ReviewsPage,
    AgentsRoute => agents::AgentsPage,
    ToolsRoute => tools::ToolsPage,
    AuditRoute => audit::AuditPage,
    MembersRoute => members::MembersPage,
    SettingsRoute => settings::SettingsPage,
}
