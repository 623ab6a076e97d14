//! The Leptos pages (SSR + hydration), their server functions, the live event stream and
//! static files, behind the session layer and the same-origin check.

use axum::Router;
use axum::body::Body;
use axum::extract::State;
use axum::http::Request;
use axum::middleware::from_fn_with_state;
use axum::response::IntoResponse;
use axum::routing::post;
use leptos::prelude::provide_context;
use leptos_axum::{LeptosRoutes, generate_route_list, handle_server_fns_with_context};

use app::ui::{App, shell};

use super::{AppState, dashboard};

pub fn router(state: &AppState, secure_cookies: bool) -> Router<AppState> {
    let routes = generate_route_list(App);
    let services = state.services.clone();
    let options = state.leptos.clone();
    Router::new()
        .route("/rpc/{*fn_name}", post(server_fn))
        .leptos_routes_with_context(
            state,
            routes,
            move || {
                provide_context(services.clone());
                leptos::nonce::provide_nonce();
            },
            move || shell(options.clone()),
        )
        .merge(dashboard::router())
        .fallback(leptos_axum::file_and_error_handler::<AppState, _>(shell))
        .layer(from_fn_with_state(state.clone(), dashboard::same_origin))
        .layer(dashboard::session_layer(state, secure_cookies))
        .layer(from_fn_with_state(state.clone(), dashboard::request_meta))
}

async fn server_fn(State(state): State<AppState>, req: Request<Body>) -> impl IntoResponse {
    let services = state.services.clone();
    handle_server_fns_with_context(move || provide_context(services.clone()), req).await
}
