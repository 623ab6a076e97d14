//! `GET /metrics`: off by default; on the main listener only with the scrape token; on a
//! listener of its own without one. Every scrape parses with a Prometheus text parser and
//! counts what the test did, and none carries a secret, a key or an id.

mod common;

use app::model::{Delivery, ProxySettings};
use app::server::service::tools;
use common::rpc::sign_in;
use common::smtp::SmtpSink;
use common::{TestApp, spawn_app, spawn_app_with};
use prometheus_parse::{Sample, Scrape, Value};

const TOKEN: &str = "metrics-token-for-tests-0123456789";
const SECRET: &str = "sk_live_metrics_must_not_show";

async fn scrape_at(app: &TestApp, url: &str, token: Option<&str>) -> reqwest::Response {
    let mut req = app.client.get(url);
    if let Some(t) = token {
        req = req.bearer_auth(t);
    }
    req.send().await.expect("scrape")
}

async fn parsed(res: reqwest::Response) -> (String, Scrape) {
    assert_eq!(res.status(), 200);
    assert_eq!(
        res.headers()["content-type"],
        "text/plain; version=0.0.4; charset=utf-8"
    );
    let text = res.text().await.expect("body");
    let scrape = Scrape::parse(text.lines().map(|l| Ok(l.to_owned()))).expect("Prometheus text");
    (text, scrape)
}

fn samples<'a>(scrape: &'a Scrape, name: &str) -> Vec<&'a Sample> {
    scrape.samples.iter().filter(|s| s.metric == name).collect()
}

fn number(sample: &Sample) -> f64 {
    match &sample.value {
        Value::Counter(v) | Value::Gauge(v) | Value::Untyped(v) => *v,
        other => panic!("{} is not a number: {other:?}", sample.metric),
    }
}

fn one(scrape: &Scrape, name: &str, labels: &[(&str, &str)]) -> f64 {
    let found: Vec<&Sample> = samples(scrape, name)
        .into_iter()
        .filter(|s| labels.iter().all(|(k, v)| s.labels.get(k) == Some(*v)))
        .collect();
    assert_eq!(found.len(), 1, "{name} {labels:?} in {:?}", scrape.samples);
    number(found[0])
}

/// Observations of a histogram: its `+Inf` bucket.
fn observed(scrape: &Scrape, name: &str) -> f64 {
    let sample = samples(scrape, name)
        .into_iter()
        .next()
        .unwrap_or_else(|| panic!("no histogram {name}"));
    let Value::Histogram(buckets) = &sample.value else {
        panic!("{name} is not a histogram");
    };
    buckets
        .iter()
        .find(|b| b.less_than.is_infinite())
        .map(|b| b.count)
        .expect("+Inf bucket")
}

#[tokio::test]
async fn metrics_are_not_served_unless_turned_on() {
    let app = spawn_app().await;
    let res = scrape_at(&app, &app.url("/metrics"), Some(TOKEN)).await;
    assert_eq!(res.status(), 404);
    assert!(!res.text().await.expect("body").contains("agentkey_"));
}

#[tokio::test]
async fn the_main_listener_serves_metrics_only_with_the_token_and_they_count_what_happened() {
    let app = spawn_app_with(&[
        ("AGENTKEY_METRICS", "on"),
        ("AGENTKEY_METRICS_TOKEN", TOKEN),
    ])
    .await;
    let url = app.url("/metrics");
    for wrong in [
        None,
        Some("nope"),
        Some(&TOKEN[..20]),
        Some(&*format!("{TOKEN}x")),
    ] {
        let res = scrape_at(&app, &url, wrong).await;
        assert_eq!(res.status(), 401, "{wrong:?}");
        assert!(res.headers().contains_key("www-authenticate"));
        let body = res.text().await.expect("body");
        assert!(
            body.contains("AGENTKEY_METRICS_TOKEN") && !body.contains("agentkey_"),
            "{body}"
        );
    }
    // An agent fetches once; an unknown tool is a 404; one notification was given up.
    let (_, key) = app.create_agent("metrics-agent").await;
    let tool = app.create_shared_tool("Stripe", None, SECRET).await;
    app.grant(&key, &tool.id).await;
    assert_eq!(app.fetch(&key, &tool.id).await.status(), 200);
    let unknown = "0190a0b0-0000-7000-8000-000000000000";
    assert_eq!(app.fetch(&key, unknown).await.status(), 404);
    app.exec(&format!(
        "INSERT INTO notification_outbox (id, organization_id, channel, event, payload, status, attempts, next_attempt_at, created_at) \
         VALUES ('dead-1', '{}', 'slack', 'new_request', '{{}}', 'dead', 15, 0, 0)",
        app.org_id
    ))
    .await;

    let (text, scrape) = parsed(scrape_at(&app, &url, Some(TOKEN)).await).await;

    let route = "/api/tools/:tool_id/credentials";
    let fetched = [("method", "GET"), ("route", route), ("status", "200")];
    assert_eq!(one(&scrape, "agentkey_http_requests_total", &fetched), 1.0);
    let missing = [("route", route), ("status", "404")];
    assert_eq!(one(&scrape, "agentkey_http_requests_total", &missing), 1.0);
    assert_eq!(
        observed(&scrape, "agentkey_credential_fetch_seconds"),
        1.0,
        "successful fetches only"
    );
    assert!(observed(&scrape, "agentkey_audit_batch_rows") >= 1.0);
    assert!(observed(&scrape, "agentkey_audit_commit_seconds") >= 1.0);
    assert_eq!(observed(&scrape, "agentkey_proxy_call_seconds"), 0.0);
    assert_eq!(one(&scrape, "agentkey_outbox_dead_letters", &[]), 1.0);
    assert_eq!(one(&scrape, "agentkey_live_streams", &[]), 0.0);
    for pool in ["read", "write"] {
        one(
            &scrape,
            "agentkey_db_connections",
            &[("pool", pool), ("state", "idle")],
        );
    }
    assert!(scrape.docs.contains_key("agentkey_http_requests_total"));
    for private in [
        SECRET,
        key.as_str(),
        tool.id.as_str(),
        app.org_id.as_str(),
        TOKEN,
    ] {
        assert!(!text.contains(private), "the scrape shows {private}");
    }
}

#[tokio::test]
async fn an_open_event_stream_is_counted_until_it_closes() {
    let sink = SmtpSink::start().await;
    let app = spawn_app_with(&[
        ("AGENTKEY_SMTP_URL", &sink.url()),
        ("AGENTKEY_METRICS", "on"),
        ("AGENTKEY_METRICS_TOKEN", TOKEN),
    ])
    .await;
    let cookie = sign_in(&app, &sink).await;
    let url = app.url("/metrics");
    let mut stream = app.get_signed_in("/events", &cookie).await;
    assert_eq!(stream.status(), 200);
    stream.chunk().await.expect("first event").expect("open");
    let (_, open) = parsed(scrape_at(&app, &url, Some(TOKEN)).await).await;
    assert_eq!(one(&open, "agentkey_live_streams", &[]), 1.0);

    drop(stream);
    let mut streams = 1.0;
    for _ in 0..100 {
        let (_, now) = parsed(scrape_at(&app, &url, Some(TOKEN)).await).await;
        streams = one(&now, "agentkey_live_streams", &[]);
        if streams == 0.0 {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(20)).await;
    }
    assert_eq!(streams, 0.0, "the closed stream is no longer counted");
}

#[tokio::test]
async fn an_address_serves_metrics_on_a_listener_of_its_own_without_a_token() {
    let app = spawn_app_with(&[("AGENTKEY_METRICS", "127.0.0.1:0")]).await;
    let addr = app.metrics_addr.expect("a metrics listener");
    assert_ne!(addr, app.addr);
    let unknown = "0190a0b0-0000-7000-8000-000000000000";
    assert_eq!(app.fetch("ak_wrong", unknown).await.status(), 401);

    let (_, scrape) = parsed(scrape_at(&app, &format!("http://{addr}/metrics"), None).await).await;

    assert!(
        samples(&scrape, "agentkey_http_requests_total")
            .iter()
            .any(|s| s.labels.get("status") == Some("401"))
    );
    let main = scrape_at(&app, &app.url("/metrics"), None).await;
    assert_eq!(main.status(), 404, "not on the main listener");
}

#[tokio::test]
async fn a_proxied_call_is_timed_and_counted_under_its_route_template() {
    let upstream = common::upstream::Upstream::start().await;
    let app = spawn_app_with(&[
        ("AGENTKEY_TEST_LOOPBACK_UPSTREAMS", "1"),
        ("AGENTKEY_METRICS", "on"),
        ("AGENTKEY_METRICS_TOKEN", TOKEN),
    ])
    .await;
    let input = tools::NewTool {
        delivery: Some(Delivery::Proxy),
        proxy: ProxySettings {
            upstream_url: Some(upstream.base()),
            ..ProxySettings::default()
        },
        ..tools::NewTool::shared("Upstream API", "proxied", SECRET)
    };
    let tool = tools::create(&app.services, &app.admin, input)
        .await
        .expect("tool")
        .tool;
    let (_, key) = app.create_agent("proxy-agent").await;
    app.grant(&key, &tool.id).await;

    let res = app
        .get(
            &format!("/api/tools/{}/proxy/v1/items?id=42", tool.id),
            &key,
        )
        .await;
    assert_eq!(res.status(), 200);
    let (text, scrape) = parsed(scrape_at(&app, &app.url("/metrics"), Some(TOKEN)).await).await;

    assert_eq!(observed(&scrape, "agentkey_proxy_call_seconds"), 1.0);
    let route = "/api/tools/:tool_id/proxy/*path";
    assert_eq!(
        one(
            &scrape,
            "agentkey_http_requests_total",
            &[("route", route), ("status", "200")]
        ),
        1.0
    );
    for private in [SECRET, "v1/items", "id=42", key.as_str()] {
        assert!(!text.contains(private), "the scrape shows {private}");
    }
}
