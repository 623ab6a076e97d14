//! A real HTTP server on loopback standing in for a tool's API behind the proxy. It records
//! every request it receives (method, path with query, headers, body) and offers routes that
//! misbehave on purpose: echo what it got (the injected credential included), answer slowly,
//! redirect, send a large or compressed body, or send the secret split across chunks.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::Router;
use axum::body::{Body, Bytes};
use axum::extract::{Request, State};
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::any;

/// One request the upstream received.
#[derive(Clone, Debug)]
pub struct Seen {
    pub method: String,
    /// Path and query as sent on the wire.
    pub target: String,
    pub headers: HeaderMap,
    pub body: Vec<u8>,
}

impl Seen {
    pub fn header(&self, name: &str) -> Option<String> {
        self.headers
            .get(name)
            .map(|v| String::from_utf8_lossy(v.as_bytes()).into_owned())
    }

    /// Every header as `name: value` lines, to search for what must not be there.
    pub fn all_headers(&self) -> String {
        self.headers
            .iter()
            .map(|(k, v)| format!("{k}: {}\n", String::from_utf8_lossy(v.as_bytes())))
            .collect()
    }
}

#[derive(Clone, Default)]
struct Shared {
    seen: Arc<Mutex<Vec<Seen>>>,
    /// The secret the `/chunks` route sends back split in two.
    secret: Arc<Mutex<String>>,
    port: Arc<Mutex<u16>>,
}

pub struct Upstream {
    pub port: u16,
    shared: Shared,
    task: tokio::task::JoinHandle<()>,
}

impl Upstream {
    pub async fn start() -> Self {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind upstream");
        let port = listener.local_addr().expect("addr").port();
        let shared = Shared::default();
        *shared.port.lock().expect("lock") = port;
        let app = Router::new()
            .route("/", any(echo))
            .route("/{*rest}", any(route))
            .with_state(shared.clone());
        let task = tokio::spawn(async move {
            let _ = axum::serve(listener, app).await;
        });
        Upstream { port, shared, task }
    }

    /// `http://127.0.0.1:port`.
    pub fn base(&self) -> String {
        format!("http://127.0.0.1:{}", self.port)
    }

    pub fn seen(&self) -> Vec<Seen> {
        self.shared.seen.lock().expect("lock").clone()
    }

    pub fn set_secret(&self, secret: &str) {
        *self.shared.secret.lock().expect("lock") = secret.to_owned();
    }

    /// Goes away: the port refuses connections.
    pub fn stop(&self) {
        self.task.abort();
    }
}

async fn record(shared: &Shared, request: Request) -> Seen {
    let (parts, body) = request.into_parts();
    let body = axum::body::to_bytes(body, 64 * 1024 * 1024)
        .await
        .unwrap_or_default();
    let seen = Seen {
        method: parts.method.to_string(),
        target: parts
            .uri
            .path_and_query()
            .map(|p| p.as_str().to_owned())
            .unwrap_or_default(),
        headers: parts.headers,
        body: body.to_vec(),
    };
    shared.seen.lock().expect("lock").push(seen.clone());
    seen
}

async fn echo(State(shared): State<Shared>, request: Request) -> Response {
    let seen = record(&shared, request).await;
    echo_body(&seen)
}

fn echo_body(seen: &Seen) -> Response {
    let headers: serde_json::Map<String, serde_json::Value> = seen
        .headers
        .iter()
        .map(|(k, v)| {
            (
                k.to_string(),
                String::from_utf8_lossy(v.as_bytes()).into_owned().into(),
            )
        })
        .collect();
    let body = serde_json::json!({
        "method": seen.method, "target": seen.target, "headers": headers,
        "body": String::from_utf8_lossy(&seen.body),
    });
    (
        [(header::CONTENT_TYPE, "application/json")],
        body.to_string(),
    )
        .into_response()
}

async fn route(State(shared): State<Shared>, request: Request) -> Response {
    let seen = record(&shared, request).await;
    let path = seen.target.split('?').next().unwrap_or_default().to_owned();
    let port = *shared.port.lock().expect("lock");
    match path.as_str() {
        "/slow" => {
            tokio::time::sleep(Duration::from_secs(30)).await;
            "late".into_response()
        }
        "/echo-header" => {
            let auth = seen.header("authorization").unwrap_or_default();
            ([("x-echo", auth)], "header echoed").into_response()
        }
        "/redirect-private" => (
            StatusCode::FOUND,
            [(header::LOCATION, "http://10.0.0.1/admin")],
        )
            .into_response(),
        "/redirect-inside" => (
            StatusCode::FOUND,
            [(
                header::LOCATION,
                format!("http://127.0.0.1:{port}/moved/here?x=1"),
            )],
        )
            .into_response(),
        "/big" | "/v1/big" => vec![b'x'; 4096].into_response(),
        "/big-stream" => {
            let chunks = (0..8).map(|_| Ok::<Bytes, std::io::Error>(Bytes::from(vec![b'y'; 1024])));
            Body::from_stream(futures_util::stream::iter(chunks)).into_response()
        }
        "/gzip" => ([(header::CONTENT_ENCODING, "gzip")], "not really gzip").into_response(),
        "/chunks" => {
            let secret = shared.secret.lock().expect("lock").clone();
            let (a, b) = secret.split_at(secret.len() / 2);
            let parts = vec![format!("start {a}"), format!("{b} end")];
            let stream = futures_util::stream::unfold(parts.into_iter(), |mut it| async move {
                let next = it.next()?;
                // Separate writes, so the two halves arrive as separate chunks.
                tokio::time::sleep(Duration::from_millis(30)).await;
                Some((Ok::<Bytes, std::io::Error>(Bytes::from(next)), it))
            });
            Body::from_stream(stream).into_response()
        }
        _ => echo_body(&seen),
    }
}
