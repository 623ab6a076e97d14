//! The Leptos pages (SSR + hydration), their server functions, and static files.

use axum::Router;
use axum::body::Body;
use axum::extract::State;
use axum::http::Request;
use axum::response::IntoResponse;
use axum::routing::post;
use leptos::prelude::provide_context;
use leptos_axum::{LeptosRoutes, generate_route_list, handle_server_fns_with_context};

use app::ui::{App, shell};

use super::AppState;

pub fn router(state: &AppState) -> Router<AppState> {
    let routes = generate_route_list(App);
    let services = state.services.clone();
    let options = state.leptos.clone();
    Router::new()
        .route("/rpc/{*fn_name}", post(server_fn))
        .leptos_routes_with_context(
            state,
            routes,
            move || provide_context(services.clone()),
            move || shell(options.clone()),
        )
        .fallback(leptos_axum::file_and_error_handler::<AppState, _>(shell))
}

async fn server_fn(State(state): State<AppState>, req: Request<Body>) -> impl IntoResponse {
    let services = state.services.clone();
    handle_server_fns_with_context(move || provide_context(services.clone()), req).await
}
