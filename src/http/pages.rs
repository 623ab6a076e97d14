//! The Leptos pages (SSR + hydration), their server functions, the live event stream and
//! static files, behind the session layer and the same-origin check.

use axum::Router;
use axum::body::Body;
use axum::extract::State;
use axum::http::{Request, StatusCode};
use axum::middleware::{Next, from_fn_with_state};
use axum::response::IntoResponse;
use axum::routing::post;
use leptos::prelude::provide_context;
use leptos_axum::{LeptosRoutes, generate_route_list, handle_server_fns_with_context};

use app::model::RpcError;
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
        .fallback(fallback)
        .layer(axum::middleware::from_fn(rpc_status))
        .layer(from_fn_with_state(state.clone(), dashboard::same_origin))
        .layer(dashboard::session_layer(state, secure_cookies))
        .layer(from_fn_with_state(state.clone(), dashboard::request_meta))
        // After the layers: the bundle is the same for everyone, so no session is read or
        // saved and no cookie rides on its cacheable answers.
        .nest_service(
            &format!("/{}", state.leptos.site_pkg_dir),
            browser_bundle(&state.leptos),
        )
}

/// Whatever no route matched: `OPTIONS *` and `GET *` get their answer, a page path with a
/// trailing slash goes to the page, and the rest is a static file of the site or the
/// not-found page, rendered with the same context as the routed pages.
async fn fallback(
    State(state): State<AppState>,
    uri: axum::http::Uri,
    req: Request<Body>,
) -> axum::response::Response {
    use axum::http::{Method, header};
    let path = uri.path();
    if path == "*" {
        return if req.method() == Method::OPTIONS {
            (
                StatusCode::NO_CONTENT,
                [(header::ALLOW, "GET, HEAD, POST, OPTIONS")],
            )
                .into_response()
        } else {
            (
                StatusCode::BAD_REQUEST,
                "A request target of * is only meaningful for OPTIONS.\n",
            )
                .into_response()
        };
    }
    if matches!(*req.method(), Method::GET | Method::HEAD)
        && let Some(canonical) = without_trailing_slash(path)
    {
        let location = match uri.query() {
            Some(query) => format!("{canonical}?{query}"),
            None => canonical.to_owned(),
        };
        return axum::response::Redirect::permanent(&location).into_response();
    }
    let services = state.services.clone();
    let handler = leptos_axum::file_and_error_handler_with_context::<AppState, _>(
        move || {
            provide_context(services.clone());
            leptos::nonce::provide_nonce();
        },
        shell,
    );
    handler(uri, State(state), req).await
}

/// `/agents/` → `/agents`. `None` for the root, and for paths whose canonical form would read
/// as another host (`//host/` → `//host`) or carry a backslash.
fn without_trailing_slash(path: &str) -> Option<&str> {
    let trimmed = path.trim_end_matches('/');
    let unsafe_target = trimmed.is_empty() || trimmed.starts_with("//") || trimmed.contains('\\');
    (path.ends_with('/') && !unsafe_target).then_some(trimmed)
}

/// The browser bundle (`target/site/pkg`): gzip copies made by `scripts/build-site.sh` are sent
/// to browsers that accept them (the WASM is about a third of its size), never compressed per
/// request. Chunks whose names carry the build's hash never change, so browsers keep them; the
/// rest (main module, glue, loader, manifest, CSS) keep their names across upgrades, so browsers
/// revalidate them on each use (a 304 when unchanged).
fn browser_bundle(options: &leptos::config::LeptosOptions) -> Router {
    let dir = std::path::Path::new(options.site_root.as_ref()).join(options.site_pkg_dir.as_ref());
    Router::new()
        .fallback_service(tower_http::services::ServeDir::new(dir).precompressed_gzip())
        .layer(axum::middleware::from_fn(bundle_caching))
}

async fn bundle_caching(req: Request<Body>, next: Next) -> axum::response::Response {
    use axum::http::{HeaderValue, header};
    let immutable = is_build_hashed(req.uri().path());
    let mut response = next.run(req).await;
    if response.status().is_success() || response.status() == StatusCode::NOT_MODIFIED {
        let policy = if immutable {
            "public, max-age=31536000, immutable"
        } else {
            "no-cache"
        };
        response
            .headers_mut()
            .insert(header::CACHE_CONTROL, HeaderValue::from_static(policy));
        response
            .headers_mut()
            .insert(header::VARY, HeaderValue::from_static("accept-encoding"));
    }
    response
}

/// A chunk named `<stem>.<16 hex digits of the build>.wasm` by scripts/wasm-split.
fn is_build_hashed(path: &str) -> bool {
    let Some(stem) = path.strip_suffix(".wasm") else {
        return false;
    };
    stem.rsplit_once('.')
        .is_some_and(|(_, hash)| hash.len() == 16 && hash.bytes().all(|b| b.is_ascii_hexdigit()))
}

async fn server_fn(State(state): State<AppState>, req: Request<Body>) -> impl IntoResponse {
    let services = state.services.clone();
    handle_server_fns_with_context(move || provide_context(services.clone()), req).await
}

/// Largest error body inspected when reading a server function error's status.
const ERROR_PEEK: usize = 16 * 1024;

/// Leptos sends every server function error as a 500, with the error (an [`RpcError`]) as
/// the body. The error knows its status (401 signed out, 400 unreadable arguments, 409, …):
/// this gives the response that status, so clients and logs see the same one the UI acts on.
async fn rpc_status(req: Request<Body>, next: Next) -> axum::response::Response {
    let is_rpc = req.uri().path().starts_with("/rpc/");
    let response = next.run(req).await;
    if !is_rpc || response.status() != StatusCode::INTERNAL_SERVER_ERROR {
        return response;
    }
    let (mut parts, body) = response.into_parts();
    let Ok(bytes) = axum::body::to_bytes(body, ERROR_PEEK).await else {
        tracing::error!("a server function error body was unreadable or too large");
        return (
            parts,
            Body::from(r#"{"status":500,"message":"Internal server error."}"#),
        )
            .into_response();
    };
    if let Some(status) = serde_json::from_slice::<RpcError>(&bytes)
        .ok()
        .and_then(|err| StatusCode::from_u16(err.status).ok())
        .filter(|status| status.is_client_error() || status.is_server_error())
    {
        parts.status = status;
    }
    axum::response::Response::from_parts(parts, Body::from(bytes))
}
