//! What the dashboard needs around the Leptos routes: sessions, the caller's transport facts,
//! a same-origin check on every state-changing request, and the live event stream.

use std::convert::Infallible;
use std::time::Duration;

use axum::Router;
use axum::body::{Body, Bytes};
use axum::extract::{ConnectInfo, State};
use axum::http::{HeaderMap, Method, Request, StatusCode, header};
use axum::middleware::Next;
use axum::response::sse::{Event, KeepAlive, Sse};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use futures_util::StreamExt;
use tokio_stream::wrappers::BroadcastStream;
use tower_sessions::cookie::SameSite;
use tower_sessions::{Expiry, Session, SessionManagerLayer};

use app::model::ErrorBody;
use app::server::auth::session_store::SqlSessionStore;
use app::server::service::actor::RequestMeta;

use super::AppState;

/// Cookie name of the dashboard session.
pub const SESSION_COOKIE: &str = "agentkey_session";

/// Sessions in the database, ending after [`app::server::auth::IDLE_SECS`] without a request
/// (and at their absolute lifetime); the cookie is HttpOnly, SameSite=Lax, and Secure unless
/// the instance is served over plain http (local use).
pub fn session_layer(state: &AppState, secure: bool) -> SessionManagerLayer<SqlSessionStore> {
    SessionManagerLayer::new(SqlSessionStore::new(state.services.store.clone()))
        .with_name(SESSION_COOKIE)
        .with_http_only(true)
        .with_same_site(SameSite::Lax)
        .with_secure(secure)
        .with_path("/")
        .with_expiry(Expiry::OnInactivity(
            tower_sessions::cookie::time::Duration::seconds(app::server::auth::IDLE_SECS),
        ))
        // Every answer moves the idle expiry on (cookie and row); the store writes the row only
        // when that moves it by more than a minute, so a page view is not a database write.
        .with_always_save(true)
}

/// Puts the caller's address (behind the configured number of proxies) and user agent into
/// the request, for server functions to audit.
pub async fn request_meta(
    State(state): State<AppState>,
    mut req: Request<Body>,
    next: Next,
) -> Response {
    let peer = req
        .extensions()
        .get::<ConnectInfo<std::net::SocketAddr>>()
        .map(|c| c.0);
    let ip = peer.map(|p| super::client_ip::resolve(req.headers(), p, state.trusted_proxies));
    let user_agent = req
        .headers()
        .get(header::USER_AGENT)
        .and_then(|v| v.to_str().ok())
        .map(|ua| ua.chars().take(256).collect());
    req.extensions_mut().insert(RequestMeta { ip, user_agent });
    next.run(req).await
}

/// Refuses a state-changing request from another site: its `Origin` (or, without one,
/// `Sec-Fetch-Site`) must say same origin. Browsers send one of them on every POST; a request
/// with neither comes from a non-browser client, which has no session cookie to abuse, but is
/// refused too so that the rule stays simple.
pub async fn same_origin(
    State(state): State<AppState>,
    req: Request<Body>,
    next: Next,
) -> Response {
    if matches!(*req.method(), Method::GET | Method::HEAD | Method::OPTIONS) {
        return next.run(req).await;
    }
    if is_same_origin(req.headers(), &state.base_origin) {
        return next.run(req).await;
    }
    let body = ErrorBody::new("Cross-site request refused.").hint(
        "Use the AgentKey dashboard itself; requests from other sites cannot change anything.",
    );
    (StatusCode::FORBIDDEN, axum::Json(body)).into_response()
}

fn is_same_origin(headers: &HeaderMap, base_origin: &str) -> bool {
    let host = headers
        .get(header::HOST)
        .and_then(|v| v.to_str().ok())
        .unwrap_or("");
    match headers.get(header::ORIGIN).and_then(|v| v.to_str().ok()) {
        Some(origin) => {
            let origin = origin.trim_end_matches('/');
            origin == base_origin
                || origin
                    .strip_prefix("http://")
                    .or_else(|| origin.strip_prefix("https://"))
                    .is_some_and(|o| !host.is_empty() && o == host)
        }
        None => headers.get("sec-fetch-site").and_then(|v| v.to_str().ok()) == Some("same-origin"),
    }
}

/// The dashboard's plain HTTP endpoints (beside its server functions). `tests/authz.rs` checks
/// every path listed here for every kind of caller.
pub const ROUTES: [&str; 2] = ["/events", "/audit/export"];

/// The live event stream and the audit export.
pub fn router() -> Router<AppState> {
    Router::new()
        .route(ROUTES[0], get(events))
        .route(ROUTES[1], get(export_audit))
}

fn signed_out() -> Response {
    let body = ErrorBody::new("You are signed out.").hint("Sign in again from the sign-in page.");
    (StatusCode::UNAUTHORIZED, axum::Json(body)).into_response()
}

#[derive(serde::Deserialize)]
struct ExportQuery {
    format: String,
    #[serde(flatten)]
    filters: app::model::AuditQuery,
}

/// Every audit row matching the dashboard's filters, as CSV or JSON Lines, as a download that
/// streams page by page (no cap on rows, flat memory).
async fn export_audit(
    State(state): State<AppState>,
    session: Session,
    meta: Option<axum::Extension<RequestMeta>>,
    query: Result<axum::extract::Query<ExportQuery>, axum::extract::rejection::QueryRejection>,
) -> Response {
    let Ok(axum::extract::Query(query)) = query else {
        let body = ErrorBody::new("Invalid export parameters.")
            .hint("Use format=csv or format=jsonl with the audit page's filters.");
        return (StatusCode::BAD_REQUEST, axum::Json(body)).into_response();
    };
    let ctx = match app::server::auth::current(
        &state.services,
        &session,
        meta.map(|m| m.0).unwrap_or_default(),
    )
    .await
    {
        Ok(Some((ctx, _))) => ctx,
        Ok(None) => return signed_out(),
        Err(err) => return err.into_response(),
    };
    let (content_type, extension) = match query.format.as_str() {
        "csv" => ("text/csv; charset=utf-8", "csv"),
        "jsonl" => ("application/x-ndjson", "jsonl"),
        _ => {
            let body =
                ErrorBody::new("Unknown export format.").hint("Use format=csv or format=jsonl.");
            return (StatusCode::BAD_REQUEST, axum::Json(body)).into_response();
        }
    };
    let filter = match app::server::service::audit::filter_from(&query.filters) {
        Ok(f) => f,
        Err(err) => return err.into_response(),
    };
    let export = match app::server::service::audit::export(
        &state.services,
        &ctx,
        &filter,
        extension,
    )
    .await
    {
        Ok(export) => export,
        Err(err) => return err.into_response(),
    };
    let csv = extension == "csv";
    // One page of rows in memory at a time, however many the export has. A failure midway
    // ends the download early (an error status can no longer be sent) and is logged.
    let header = csv.then(|| Bytes::from_static(app::api::audit::CSV_HEADER.as_bytes()));
    let pages = futures_util::stream::unfold(export, move |mut export| async move {
        match export.next_page().await {
            Ok(Some(rows)) => {
                let text = if csv {
                    app::api::audit::csv_rows(&rows)
                } else {
                    rows.iter()
                        .filter_map(|e| serde_json::to_string(e).ok())
                        .map(|line| line + "\n")
                        .collect()
                };
                Some((Ok(Bytes::from(text)), export))
            }
            Ok(None) => None,
            Err(err) => {
                tracing::error!(error = %err, "the audit export stopped: the log could not be read");
                Some((Err(std::io::Error::other("audit log unavailable")), export))
            }
        }
    });
    let body = Body::from_stream(
        futures_util::stream::iter(header.map(Ok::<_, std::io::Error>)).chain(pages),
    );
    let disposition = format!("attachment; filename=\"agentkey-audit.{extension}\"");
    (
        [
            (header::CONTENT_TYPE, content_type.to_owned()),
            (header::CONTENT_DISPOSITION, disposition),
            (header::CACHE_CONTROL, "no-store".to_owned()),
        ],
        body,
    )
        .into_response()
}

async fn events(
    State(state): State<AppState>,
    session: Session,
    meta: Option<axum::Extension<RequestMeta>>,
) -> Response {
    let meta = meta.map(|m| m.0).unwrap_or_default();
    let org_id = match app::server::auth::current(&state.services, &session, meta).await {
        Ok(Some((ctx, _))) => ctx.org_id,
        Ok(None) => return signed_out(),
        Err(err) => return err.into_response(),
    };
    let changes = BroadcastStream::new(state.services.events.subscribe()).filter_map(move |item| {
        let event = match item {
            Ok(e) if e.concerns(&org_id) => {
                Some(Event::default().event("change").data(e.kind.as_str()))
            }
            Ok(_) => None,
            // Fell behind: tell the page to reload everything.
            Err(_) => Some(Event::default().event("change").data("resync")),
        };
        std::future::ready(event.map(Ok::<_, Infallible>))
    });
    // The first event makes the page resynchronise after a reconnect.
    let hello = futures_util::stream::once(std::future::ready(Ok(Event::default()
        .event("change")
        .data("resync"))));
    let open = app::server::metrics::OpenStream::new(&state.services.metrics);
    let stream = hello
        .chain(changes)
        .take_until(state.services.stopping())
        .map(move |event| {
            // Lives as long as the stream: the open-streams gauge counts it until then.
            let _ = &open;
            event
        });
    let mut response = Sse::new(stream)
        .keep_alive(KeepAlive::new().interval(Duration::from_secs(15)))
        .into_response();
    response.headers_mut().insert(
        header::CACHE_CONTROL,
        axum::http::HeaderValue::from_static("no-store"),
    );
    response
}

#[cfg(test)]
mod tests {
    use super::*;

    fn headers(pairs: &[(&str, &str)]) -> HeaderMap {
        let mut h = HeaderMap::new();
        for (k, v) in pairs {
            h.insert(
                axum::http::HeaderName::from_bytes(k.as_bytes()).expect("name"),
                v.parse().expect("value"),
            );
        }
        h
    }

    #[test]
    fn same_origin_accepts_own_origin_and_refuses_others() {
        let base = "http://127.0.0.1:3000";
        assert!(is_same_origin(
            &headers(&[
                ("host", "127.0.0.1:3000"),
                ("origin", "http://127.0.0.1:3000")
            ]),
            base
        ));
        assert!(is_same_origin(
            &headers(&[
                ("host", "agentkey.local:8080"),
                ("origin", "https://agentkey.local:8080")
            ]),
            base
        ));
        assert!(!is_same_origin(
            &headers(&[
                ("host", "127.0.0.1:3000"),
                ("origin", "https://evil.example")
            ]),
            base
        ));
        assert!(!is_same_origin(
            &headers(&[("host", "127.0.0.1:3000"), ("origin", "null")]),
            base
        ));
        assert!(is_same_origin(
            &headers(&[("sec-fetch-site", "same-origin")]),
            base
        ));
        assert!(!is_same_origin(
            &headers(&[("sec-fetch-site", "cross-site")]),
            base
        ));
        assert!(!is_same_origin(
            &headers(&[("host", "127.0.0.1:3000")]),
            base
        ));
    }
}
