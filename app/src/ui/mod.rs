//! Leptos pages: the dashboard (sign-in, overview, inbox, agents, tools, audit, settings) and
//! the public status page.

mod agents;
mod audit;
mod catalog;
mod inbox;
mod layout;
mod login;
mod members;
mod notifications;
mod overview;
mod quorum;
mod settings;
mod status;
mod tools;
mod widgets;

use leptos::prelude::*;
use leptos_meta::{MetaTags, Stylesheet, Title, provide_meta_context};
use leptos_router::{
    StaticSegment,
    components::{ParentRoute, Route, Router, Routes},
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
    let Some(options) = use_context::<leptos_axum::ResponseOptions>() else { return };
    let nonce = leptos::nonce::use_nonce().map(|n| n.to_string()).unwrap_or_default();
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
    // Marks the document once the WASM has taken over (browser tests wait for it).
    Effect::new(|_| {
        #[cfg(feature = "hydrate")]
        if let Some(body) = web_sys::window().and_then(|w| w.document()).and_then(|d| d.body()) {
            let _ = body.set_attribute("data-hydrated", "true");
        }
    });
    view! {
        <Stylesheet id="agentkey" href="/pkg/agentkey.css"/>
        <Title text="AgentKey"/>
        <Router>
            <Routes fallback=|| view! { <main class="narrow"><p class="empty">"Page not found."</p></main> }>
                <Route path=StaticSegment("login") view=login::LoginPage/>
                <Route path=(StaticSegment("auth"), StaticSegment("confirm")) view=login::ConfirmPage/>
                <Route path=StaticSegment("status") view=status::StatusPage/>
                <Route path=StaticSegment("invite") view=members::InvitePage/>
                <ParentRoute path=StaticSegment("") view=layout::Dashboard>
                    <Route path=StaticSegment("") view=overview::OverviewPage/>
                    <Route path=StaticSegment("inbox") view=inbox::InboxPage/>
                    <Route path=StaticSegment("agents") view=agents::AgentsPage/>
                    <Route path=StaticSegment("tools") view=tools::ToolsPage/>
                    <Route path=StaticSegment("audit") view=audit::AuditPage/>
                    <Route path=StaticSegment("members") view=members::MembersPage/>
                    <Route path=StaticSegment("settings") view=settings::SettingsPage/>
                </ParentRoute>
            </Routes>
        </Router>
    }
}
