//! Proxy mode against a real HTTP upstream on loopback that records what it receives: the
//! credential is injected and never handed out, the agent's own credentials never reach the
//! upstream, paths cannot leave the base, rules, read-only grants and budgets hold, echoes of
//! the secret are redacted, upstream failures are JSON errors, and every call that went out
//! has its audit row committed first.

mod common;

use app::model::{Delivery, GrantScope, ProxySettings, ToolView};
use app::server::service::{agents, grants, tools};
use common::upstream::Upstream;
use common::{TestApp, captured_logs, expect_error, json, spawn_app_with};
use reqwest::Method;

const SECRET: &str = "s3cret-token-0123456789";
const LOOPBACK: (&str, &str) = ("AGENTKEY_TEST_LOOPBACK_UPSTREAMS", "1");

async fn proxy_app(extra: &[(&str, &str)]) -> TestApp {
    let mut vars = vec![LOOPBACK];
    vars.extend_from_slice(extra);
    spawn_app_with(&vars).await
}

/// A shared proxy-only tool in front of `upstream`.
async fn proxied(
    app: &TestApp,
    upstream: &Upstream,
    inject: Option<&str>,
    allow: &[&str],
) -> ToolView {
    proxied_with(app, upstream, inject, allow, None, Delivery::Proxy).await
}

async fn proxied_with(
    app: &TestApp,
    upstream: &Upstream,
    inject: Option<&str>,
    allow: &[&str],
    calls_per_day: Option<i64>,
    delivery: Delivery,
) -> ToolView {
    let input = tools::NewTool {
        delivery: Some(delivery),
        proxy: ProxySettings {
            upstream_url: Some(upstream.base()),
            inject: inject.map(Into::into),
            allow: allow.iter().map(|r| (*r).to_owned()).collect(),
            calls_per_day,
        },
        ..tools::NewTool::shared(
            if delivery == Delivery::Proxy {
                "Upstream API"
            } else {
                "Upstream API (either)"
            },
            "proxied for tests",
            SECRET,
        )
    };
    tools::create(&app.services, &app.admin, input)
        .await
        .expect("proxied tool")
        .tool
}

fn path(tool: &ToolView, rest: &str) -> String {
    format!("/api/tools/{}/proxy{rest}", tool.id)
}

async fn rows(app: &TestApp, action: &str) -> i64 {
    app.count(&format!(
        "SELECT COUNT(*) FROM audit_log WHERE action = '{action}'"
    ))
    .await
}

/// Waits (bounded) until `action` has `n` audit rows: outcome rows are queued after the answer.
async fn wait_rows(app: &TestApp, action: &str, n: i64) {
    for _ in 0..250 {
        if rows(app, action).await >= n {
            return;
        }
        tokio::time::sleep(std::time::Duration::from_millis(20)).await;
    }
    panic!("{action}: fewer than {n} audit rows");
}

/// The outcomes recorded so far in `proxy.completed` batches.
async fn completed_calls(app: &TestApp) -> Vec<serde_json::Value> {
    let mut db = app.raw_db().await;
    let rows: Vec<String> =
        sqlx::query_scalar("SELECT metadata FROM audit_log WHERE action = 'proxy.completed'")
            .fetch_all(&mut db)
            .await
            .expect("outcome rows");
    rows.iter()
        .flat_map(|m| {
            let meta: serde_json::Value = serde_json::from_str(m).expect("JSON metadata");
            meta["calls"].as_array().cloned().unwrap_or_default()
        })
        .collect()
}

/// Waits (bounded) until `n` outcomes are recorded: they are flushed in batches.
async fn wait_calls(app: &TestApp, n: usize) -> Vec<serde_json::Value> {
    for _ in 0..250 {
        let calls = completed_calls(app).await;
        if calls.len() >= n {
            return calls;
        }
        tokio::time::sleep(std::time::Duration::from_millis(20)).await;
    }
    panic!("fewer than {n} proxied call outcomes recorded");
}

#[tokio::test]
async fn the_credential_is_injected_and_the_agents_own_headers_never_reach_the_upstream() {
    let app = proxy_app(&[]).await;
    let upstream = Upstream::start().await;
    let tool = proxied(&app, &upstream, None, &[]).await;
    let (_, key) = app.create_agent("proxy-agent").await;
    app.grant(&key, &tool.id).await;

    let res = app
        .client
        .post(app.url(&path(&tool, "/repos/acme/app/issues?state=open&page=2")))
        .bearer_auth(&key)
        .header("cookie", "session=agent-cookie")
        .header("proxy-authorization", "Basic agent")
        .header("x-forwarded-for", "10.1.2.3")
        .header("x-custom", "kept")
        .header("content-type", "application/json")
        .body(r#"{"title":"bug"}"#)
        .send()
        .await
        .expect("test step");
    assert_eq!(res.status(), 200);
    let text = res.text().await.expect("test step");
    assert!(
        !text.contains(SECRET),
        "the echoed credential is redacted: {text}"
    );
    assert!(text.contains("[redacted]"), "{text}");

    let seen = upstream.seen();
    assert_eq!(seen.len(), 1);
    let call = &seen[0];
    assert_eq!(call.method, "POST");
    assert_eq!(call.target, "/repos/acme/app/issues?state=open&page=2");
    assert_eq!(
        call.header("authorization").as_deref(),
        Some(&*format!("Bearer {SECRET}"))
    );
    assert_eq!(call.header("x-custom").as_deref(), Some("kept"));
    assert_eq!(call.body, br#"{"title":"bug"}"#);
    let headers = call.all_headers();
    assert!(
        !headers.contains(&key),
        "the agent's key never reaches the upstream: {headers}"
    );
    for gone in ["cookie:", "proxy-authorization:", "x-forwarded-for:"] {
        assert!(!headers.contains(gone), "{gone} must be dropped: {headers}");
    }
    assert_eq!(
        call.header("host"),
        Some(format!("127.0.0.1:{}", upstream.port))
    );

    // Audited before, and the outcome after, with the echo flagged; no query values.
    assert_eq!(rows(&app, "proxy.called").await, 1);
    wait_rows(&app, "proxy.secret_echoed", 1).await;
    let mut db = app.raw_db().await;
    let meta: String =
        sqlx::query_scalar("SELECT metadata FROM audit_log WHERE action = 'proxy.called'")
            .fetch_one(&mut db)
            .await
            .expect("test step");
    assert!(
        meta.contains("/repos/acme/app/issues") && !meta.contains("state=open"),
        "{meta}"
    );
    assert!(
        !captured_logs().contains(SECRET),
        "the secret never reaches the logs"
    );
}

#[tokio::test]
async fn injection_rules_query_basic_and_json_fields_cannot_be_overridden() {
    let app = proxy_app(&[]).await;
    let upstream = Upstream::start().await;
    let (_, key) = app.create_agent("inject-agent").await;

    let query = proxied(&app, &upstream, Some("?api_key={secret}"), &[]).await;
    app.grant(&key, &query.id).await;
    let res = app
        .get(&path(&query, "/items?api_key=mine&q=a%20b"), &key)
        .await;
    assert_eq!(res.status(), 200);
    let echoed = res.text().await.expect("body");
    assert!(
        !echoed.contains(SECRET) && echoed.contains("[redacted]"),
        "{echoed}"
    );
    let target = upstream.seen().last().expect("test step").target.clone();
    assert!(target.contains(&format!("api_key={SECRET}")), "{target}");
    assert!(
        !target.contains("mine") && target.contains("q=a%20b"),
        "{target}"
    );

    // An agent header named like the injected one is replaced, not kept beside it.
    tools::set_proxy(
        &app.services,
        &app.admin,
        &query.id,
        Some(Delivery::Proxy),
        &ProxySettings {
            upstream_url: Some(upstream.base()),
            inject: Some("X-API-Key: {secret}".into()),
            ..Default::default()
        },
    )
    .await
    .expect("test step");
    let res = app
        .client
        .get(app.url(&path(&query, "/x")))
        .bearer_auth(&key)
        .header("x-api-key", "agent-chosen")
        .send()
        .await
        .expect("test step");
    assert_eq!(res.status(), 200);
    let last = upstream.seen().last().expect("test step").clone();
    assert_eq!(last.headers.get_all("x-api-key").iter().count(), 1);
    assert_eq!(last.header("x-api-key").as_deref(), Some(SECRET));
    assert!(
        last.header("authorization").is_none(),
        "the agent's bearer is dropped"
    );

    // Basic: the user:pass secret is base64-encoded.
    let basic = tools::create(
        &app.services,
        &app.admin,
        tools::NewTool {
            delivery: Some(Delivery::Proxy),
            proxy: ProxySettings {
                upstream_url: Some(upstream.base()),
                inject: Some("Authorization: Basic {secret}".into()),
                ..Default::default()
            },
            ..tools::NewTool::shared("Basic API", "basic auth", "user:pass")
        },
    )
    .await
    .expect("test step")
    .tool;
    app.grant(&key, &basic.id).await;
    let echoed = app
        .get(&path(&basic, "/b"), &key)
        .await
        .text()
        .await
        .expect("body");
    assert!(
        !echoed.contains("dXNlcjpwYXNz"),
        "the encoded form is redacted too: {echoed}"
    );
    assert_eq!(
        upstream
            .seen()
            .last()
            .expect("test step")
            .header("authorization")
            .as_deref(),
        Some("Basic dXNlcjpwYXNz")
    );

    // A JSON (OAuth) secret addressed by field.
    let oauth = tools::create(
        &app.services,
        &app.admin,
        tools::NewTool {
            delivery: Some(Delivery::Proxy),
            proxy: ProxySettings {
                upstream_url: Some(upstream.base()),
                inject: Some("Authorization: Bearer {secret.access_token}".into()),
                ..Default::default()
            },
            ..tools::NewTool::shared(
                "OAuth API",
                "oauth",
                r#"{"access_token":"at-abcdefgh","refresh_token":"rt-ijklmnop"}"#,
            )
        },
    )
    .await
    .expect("test step")
    .tool;
    app.grant(&key, &oauth.id).await;
    let res = app.get(&path(&oauth, "/o"), &key).await;
    let text = res.text().await.expect("test step");
    assert_eq!(
        upstream
            .seen()
            .last()
            .expect("test step")
            .header("authorization")
            .as_deref(),
        Some("Bearer at-abcdefgh")
    );
    assert!(
        !text.contains("at-abcdefgh") && !text.contains("rt-ijklmnop"),
        "{text}"
    );
}

#[tokio::test]
async fn delivery_decides_which_route_answers_and_the_catalog_says_how() {
    let app = proxy_app(&[]).await;
    let upstream = Upstream::start().await;
    let proxy_only = proxied(&app, &upstream, None, &["GET /repos/**"]).await;
    let fetch_only = app
        .create_shared_tool("Fetch API", None, "fetch-secret")
        .await;
    let both = proxied_with(&app, &upstream, None, &[], None, Delivery::Both).await;
    let (_, key) = app.create_agent("routes-agent").await;
    for t in [&proxy_only, &fetch_only, &both] {
        app.grant(&key, &t.id).await;
    }

    let body = expect_error(app.fetch(&key, &proxy_only.id).await, 403).await;
    let hint = body["hint"].as_str().expect("test step");
    assert!(
        hint.contains(&format!("/api/tools/{}/proxy/", proxy_only.id)),
        "{hint}"
    );
    assert!(!body.to_string().contains(SECRET));
    assert_eq!(body["delivery"], "proxy");

    let body = expect_error(app.get(&path(&fetch_only, "/x"), &key).await, 403).await;
    assert!(
        body["hint"]
            .as_str()
            .expect("test step")
            .contains("/credentials"),
        "{body}"
    );
    assert!(upstream.seen().is_empty());

    assert_eq!(app.fetch(&key, &both.id).await.status(), 200);
    assert_eq!(app.get(&path(&both, "/y"), &key).await.status(), 200);

    let catalog = json(app.get("/api/tools", &key).await).await;
    let entry = |id: &str| {
        catalog["tools"]
            .as_array()
            .expect("test step")
            .iter()
            .find(|t| t["id"] == id)
            .expect("test step")
            .clone()
    };
    let p = entry(&proxy_only.id);
    assert_eq!(p["delivery"], "proxy");
    let proxy_url = p["proxy_url"].as_str().expect("test step");
    assert!(
        proxy_url.starts_with("http") && proxy_url.ends_with(&path(&proxy_only, "")),
        "{proxy_url}"
    );
    assert_eq!(p["proxy_rules"], serde_json::json!(["GET /repos/**"]));
    let f = entry(&fetch_only.id);
    assert_eq!(f["delivery"], "fetch");
    assert!(f.get("proxy_url").is_none());

    // The catalog export carries delivery settings and an import applies them.
    let exported = app::server::service::catalog_io::export(&app.services, &app.admin)
        .await
        .expect("test step");
    let e = exported
        .iter()
        .find(|e| e.name == "Upstream API")
        .expect("test step");
    assert_eq!(e.delivery, Some(Delivery::Proxy));
    assert_eq!(e.upstream_url.as_deref(), Some(&*upstream.base()));
    assert_eq!(e.allow, ["GET /repos/**"]);
    let mut changed = exported.clone();
    for e in &mut changed {
        if e.name == "Upstream API" {
            e.allow = vec!["GET /repos/*".into(), "POST /repos/*/issues".into()];
        }
    }
    let plan = app::server::service::catalog_io::import(&app.services, &app.admin, changed, true)
        .await
        .expect("test step");
    assert!(plan.applied, "{plan:?}");
    let now = tools::get(&app.services, &app.admin, &proxy_only.id)
        .await
        .expect("test step");
    assert_eq!(now.proxy.allow, ["GET /repos/*", "POST /repos/*/issues"]);
}

#[tokio::test]
async fn paths_that_could_leave_the_base_are_refused_before_anything_is_sent() {
    let app = proxy_app(&[]).await;
    let upstream = Upstream::start().await;
    let tool = proxied(&app, &upstream, None, &[]).await;
    let (_, key) = app.create_agent("path-agent").await;
    app.grant(&key, &tool.id).await;
    for trick in [
        "/../../admin",
        "/a/%2e%2e/b",
        "/a%2Fb",
        "/a%5Cb",
        "//evil.example/x",
        "/a\\b",
        "/a%0d%0aX-Injected:%20yes",
        "/http://evil.example/",
        "/a%252e%252e",
        "/./x",
        "/public/..;/admin",
    ] {
        let request = format!(
            "GET {} HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer {key}\r\nConnection: close\r\n\r\n",
            path(&tool, trick)
        );
        let (status, text) = app.raw_http(request.as_bytes()).await;
        assert_eq!(status, 400, "{trick}: {text}");
        assert!(text.contains("\"hint\""), "{trick}: {text}");
    }
    assert!(
        upstream.seen().is_empty(),
        "nothing was sent: {:?}",
        upstream.seen()
    );
    assert_eq!(rows(&app, "proxy.called").await, 0);
}

#[tokio::test]
async fn rules_and_read_only_grants_refuse_with_the_rules_in_the_hint_and_are_audited() {
    let app = proxy_app(&[]).await;
    let upstream = Upstream::start().await;
    let tool = proxied(
        &app,
        &upstream,
        None,
        &["GET /repos/**", "POST /repos/*/issues"],
    )
    .await;
    let (_, key) = app.create_agent("rules-agent").await;
    app.grant(&key, &tool.id).await;

    assert_eq!(
        app.get(&path(&tool, "/repos/a/b"), &key).await.status(),
        200
    );
    assert_eq!(
        app.call(
            Method::POST,
            &path(&tool, "/repos/a/issues"),
            Some(&key),
            Some(serde_json::json!({}))
        )
        .await
        .status(),
        200
    );
    let body = expect_error(
        app.call(Method::DELETE, &path(&tool, "/repos/a"), Some(&key), None)
            .await,
        403,
    )
    .await;
    let hint = body["hint"].as_str().expect("test step");
    assert!(
        hint.contains("GET /repos/**") && hint.contains("POST /repos/*/issues"),
        "{hint}"
    );
    assert_eq!(upstream.seen().len(), 2);
    assert_eq!(rows(&app, "proxy.refused").await, 1);

    // A second agent narrowed at approval: read-only, one rule, shown on the grant.
    let (_, narrow_key) = app.create_agent("narrow-agent").await;
    let id = app.request_access(&narrow_key, &tool.id).await;
    let bad = grants::approve_with(
        &app.services,
        &app.admin,
        &id,
        grants::Approval {
            scope: GrantScope {
                rules: Some(vec!["DELETE /repos/**".into()]),
                ..Default::default()
            },
            ..Default::default()
        },
    )
    .await
    .expect_err("refused");
    assert_eq!(
        bad.status(),
        400,
        "a rule the tool does not have is refused: {bad}"
    );
    let view = grants::approve_with(
        &app.services,
        &app.admin,
        &id,
        grants::Approval {
            scope: GrantScope {
                read_only: true,
                rules: Some(vec!["POST /repos/*/issues".into(), "GET /repos/**".into()]),
                calls_per_day: None,
            },
            ..Default::default()
        },
    )
    .await
    .expect("test step");
    assert!(view.scope.read_only);
    let body = expect_error(
        app.call(
            Method::POST,
            &path(&tool, "/repos/a/issues"),
            Some(&narrow_key),
            Some(serde_json::json!({})),
        )
        .await,
        403,
    )
    .await;
    assert!(
        body["hint"]
            .as_str()
            .expect("test step")
            .contains("GET and HEAD only"),
        "{body}"
    );
    assert_eq!(
        app.get(&path(&tool, "/repos/x"), &narrow_key)
            .await
            .status(),
        200
    );
    let catalog = json(app.get("/api/tools", &narrow_key).await).await;
    assert_eq!(catalog["tools"][0]["proxy_read_only"], true);
    assert_eq!(rows(&app, "proxy.refused").await, 2);
}

#[tokio::test]
async fn a_daily_budget_is_enforced_with_retry_after_and_the_grant_shows_its_use() {
    let app = proxy_app(&[]).await;
    let upstream = Upstream::start().await;
    let tool = proxied_with(&app, &upstream, None, &[], Some(5), Delivery::Proxy).await;
    let (_, key) = app.create_agent("budget-agent").await;
    let id = app.request_access(&key, &tool.id).await;
    grants::approve_with(
        &app.services,
        &app.admin,
        &id,
        grants::Approval {
            scope: GrantScope {
                calls_per_day: Some(2),
                ..Default::default()
            },
            ..Default::default()
        },
    )
    .await
    .expect("test step");
    for _ in 0..2 {
        assert_eq!(app.get(&path(&tool, "/b"), &key).await.status(), 200);
    }
    let res = app.get(&path(&tool, "/b"), &key).await;
    let retry: u64 = res.headers()["retry-after"]
        .to_str()
        .expect("test step")
        .parse()
        .expect("test step");
    assert!((1..=86_400).contains(&retry), "{retry}");
    expect_error(res, 429).await;
    assert_eq!(upstream.seen().len(), 2, "the refused call was not sent");
    let list = grants::list(&app.services, &app.admin, None, 10)
        .await
        .expect("test step");
    let grant = list.iter().find(|g| g.id == id).expect("test step");
    assert_eq!((grant.calls_today, grant.calls_per_day), (2, Some(2)));
}

#[tokio::test]
async fn upstream_failures_are_json_errors_without_the_secret_and_redirects_are_returned() {
    let app = proxy_app(&[("AGENTKEY_PROXY", "total=400ms,response_body=2KiB")]).await;
    let upstream = Upstream::start().await;
    let tool = proxied(&app, &upstream, Some("?key={secret}"), &[]).await;
    let (_, key) = app.create_agent("failure-agent").await;
    app.grant(&key, &tool.id).await;

    let body = expect_error(app.get(&path(&tool, "/slow"), &key).await, 504).await;
    assert!(!body.to_string().contains(SECRET));

    // This client does not follow redirects either: only loopback is ever contacted.
    let no_follow = reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .expect("test step");
    let get = |p: String| no_follow.get(app.url(&p)).bearer_auth(&key).send();
    let res = get(path(&tool, "/redirect-private"))
        .await
        .expect("test step");
    assert_eq!(res.status(), 302, "redirects are returned, not followed");
    assert_eq!(res.headers()["location"], "http://10.0.0.1/admin");
    let res = get(path(&tool, "/redirect-inside"))
        .await
        .expect("test step");
    assert_eq!(res.status(), 302);
    let location = res.headers()["location"].to_str().expect("test step");
    assert!(
        location.ends_with(&path(&tool, "/moved/here?x=1")),
        "{location}"
    );

    let body = expect_error(app.get(&path(&tool, "/big"), &key).await, 502).await;
    assert!(
        body["hint"].as_str().expect("test step").contains("2048"),
        "{body}"
    );
    let cut = app.get(&path(&tool, "/big-stream"), &key).await;
    assert!(
        cut.bytes().await.is_err(),
        "a streamed answer over the cap is cut off"
    );
    expect_error(app.get(&path(&tool, "/gzip"), &key).await, 502).await;

    let echoed = app.get(&path(&tool, "/echo-header"), &key).await;
    assert_eq!(echoed.status(), 200);
    assert!(!format!("{:?}", echoed.headers()).contains(SECRET));

    upstream.stop();
    let body = expect_error(app.get(&path(&tool, "/gone"), &key).await, 502).await;
    assert!(!body.to_string().contains(SECRET), "{body}");
    assert!(!captured_logs().contains(SECRET));
    // Every call that went out has its outcome row, none holds the secret.
    let outcomes = wait_calls(&app, 5).await;
    assert!(
        outcomes.iter().any(|c| c["status"] == 302)
            && outcomes.iter().any(|c| c["error"].is_string()),
        "{outcomes:?}"
    );
    let mut db = app.raw_db().await;
    let all: Vec<String> = sqlx::query_scalar("SELECT metadata FROM audit_log")
        .fetch_all(&mut db)
        .await
        .expect("test step");
    assert!(all.iter().all(|m| !m.contains(SECRET)));
}

#[tokio::test]
async fn an_echo_split_across_chunks_is_still_redacted() {
    let app = proxy_app(&[]).await;
    let upstream = Upstream::start().await;
    upstream.set_secret(SECRET);
    let tool = proxied(&app, &upstream, None, &[]).await;
    let (_, key) = app.create_agent("chunk-agent").await;
    app.grant(&key, &tool.id).await;
    let text = app
        .get(&path(&tool, "/chunks"), &key)
        .await
        .text()
        .await
        .expect("test step");
    assert_eq!(text, "start [redacted] end");
    wait_rows(&app, "proxy.secret_echoed", 1).await;
}

#[tokio::test]
async fn oversize_requests_are_refused_before_sending() {
    let app = proxy_app(&[("AGENTKEY_PROXY", "request_body=1KiB")]).await;
    let upstream = Upstream::start().await;
    let tool = proxied(&app, &upstream, None, &[]).await;
    let (_, key) = app.create_agent("big-agent").await;
    app.grant(&key, &tool.id).await;
    let res = app
        .client
        .post(app.url(&path(&tool, "/upload")))
        .bearer_auth(&key)
        .body(vec![b'z'; 2048])
        .send()
        .await
        .expect("test step");
    expect_error(res, 413).await;
    assert!(upstream.seen().is_empty());
    // Within the cap it goes through.
    let res = app
        .client
        .post(app.url(&path(&tool, "/upload")))
        .bearer_auth(&key)
        .body(vec![b'z'; 1000])
        .send()
        .await
        .expect("test step");
    assert_eq!(res.status(), 200);
    assert_eq!(upstream.seen()[0].body.len(), 1000);
}

#[tokio::test]
async fn a_revoke_mid_burst_stops_every_later_call() {
    let app = proxy_app(&[("AGENTKEY_RATE_LIMITS", "preauth=100000/m,proxy=100000/m")]).await;
    let upstream = Upstream::start().await;
    let tool = proxied(&app, &upstream, None, &[]).await;
    let (_, key) = app.create_agent("burst-agent").await;
    let grant = app.grant(&key, &tool.id).await;
    let mut burst = Vec::new();
    for i in 0..60 {
        let (client, url, key) = (
            app.client.clone(),
            app.url(&path(&tool, &format!("/n/{i}"))),
            key.clone(),
        );
        burst.push(tokio::spawn(async move {
            client
                .get(url)
                .bearer_auth(key)
                .send()
                .await
                .map(|r| r.status().as_u16())
        }));
        if i == 20 {
            grants::revoke(&app.services, &app.admin, &grant, Some("burst test"))
                .await
                .expect("test step");
        }
    }
    let mut ok = 0;
    for task in burst {
        match task.await.expect("test step").expect("test step") {
            200 => ok += 1,
            403 => {}
            other => panic!("unexpected status {other}"),
        }
    }
    // Each call the upstream saw was audited, and every audit row came before the revoke.
    let called = rows(&app, "proxy.called").await;
    assert_eq!(upstream.seen().len() as i64, called);
    assert_eq!(ok, called);
    let after = app
        .count(
            "SELECT COUNT(*) FROM audit_log c WHERE c.action = 'proxy.called' AND c.seq > \
             (SELECT r.seq FROM audit_log r WHERE r.action = 'grant.revoked')",
        )
        .await;
    assert_eq!(
        after, 0,
        "no call is audited (or sent) after the revoke commits"
    );
    let body = expect_error(app.get(&path(&tool, "/late"), &key).await, 403).await;
    assert_eq!(
        body["revocation_reason"], "burst test",
        "the agent reads why"
    );
    assert_eq!(upstream.seen().len() as i64, called);
}

#[tokio::test]
async fn refusals_suspended_agents_unknown_and_foreign_tools_never_reach_the_upstream() {
    let app = proxy_app(&[]).await;
    let upstream = Upstream::start().await;
    let tool = proxied(&app, &upstream, None, &[]).await;
    let (agent, key) = app.create_agent("edge-agent").await;
    app.grant(&key, &tool.id).await;

    expect_error(
        app.call(Method::GET, &path(&tool, "/x"), None, None).await,
        401,
    )
    .await;
    expect_error(app.get(&path(&tool, "/x"), "ak_wrong").await, 401).await;
    expect_error(app.get("/api/tools/not-a-uuid/proxy/x", &key).await, 404).await;
    expect_error(
        app.get(
            "/api/tools/00000000-0000-7000-8000-000000000000/proxy/x",
            &key,
        )
        .await,
        404,
    )
    .await;
    let other = app.other_org("Other").await;
    let foreign = tools::create(
        &app.services,
        &other,
        tools::NewTool {
            delivery: Some(Delivery::Proxy),
            proxy: ProxySettings {
                upstream_url: Some(upstream.base()),
                ..Default::default()
            },
            ..tools::NewTool::shared("Foreign", "other org", "foreign-secret")
        },
    )
    .await
    .expect("test step")
    .tool;
    expect_error(app.get(&path(&foreign, "/x"), &key).await, 404).await;
    expect_error(
        app.call(Method::TRACE, &path(&tool, "/x"), Some(&key), None)
            .await,
        400,
    )
    .await;
    agents::set_status(
        &app.services,
        &app.admin,
        &agent.id,
        app::model::AgentStatus::Suspended,
        None,
    )
    .await
    .expect("test step");
    expect_error(app.get(&path(&tool, "/x"), &key).await, 403).await;
    assert!(upstream.seen().is_empty());
}

#[tokio::test]
async fn upstreams_must_be_https_on_public_addresses_at_save_and_at_every_call() {
    // Without the test switch, loopback (a name resolving to it, or a literal) is refused.
    let app = spawn_app_with(&[]).await;
    for bad in [
        "https://localhost:9443",
        "https://127.0.0.1:9443",
        "http://example.com",
    ] {
        let err = tools::create(
            &app.services,
            &app.admin,
            tools::NewTool {
                proxy: ProxySettings {
                    upstream_url: Some(bad.into()),
                    ..Default::default()
                },
                ..tools::NewTool::shared("Private", "refused", SECRET)
            },
        )
        .await
        .expect_err("refused");
        assert_eq!(err.status(), 400, "{bad}: {err}");
        assert!(
            err.body()
                .details
                .unwrap_or_default()
                .iter()
                .any(|d| d.field == "upstream_url"),
            "{bad}"
        );
    }
    // A stored upstream that now resolves to a private address is refused at call time.
    let tool = app.create_shared_tool("Later private", None, SECRET).await;
    app.exec(&format!(
        "UPDATE tools SET delivery = 'proxy', upstream_url = 'https://localhost:9', proxy_version = 1 WHERE id = '{}'",
        tool.id
    ))
    .await;
    app.services.vend_cache.clear();
    let (_, key) = app.create_agent("private-agent").await;
    app.grant(&key, &tool.id).await;
    let body = expect_error(
        app.get(&format!("/api/tools/{}/proxy/x", tool.id), &key)
            .await,
        502,
    )
    .await;
    assert!(
        body["error"]
            .as_str()
            .expect("test step")
            .contains("refused"),
        "{body}"
    );

    // Bad settings are field errors.
    let res = tools::set_proxy(
        &app.services,
        &app.admin,
        &tool.id,
        Some(Delivery::Proxy),
        &ProxySettings {
            upstream_url: None,
            inject: Some("Host: {secret}".into()),
            allow: vec!["FETCH".into()],
            calls_per_day: Some(0),
        },
    )
    .await
    .expect_err("refused");
    let fields: Vec<String> = res
        .body()
        .details
        .unwrap_or_default()
        .iter()
        .map(|d| d.field.clone())
        .collect();
    for f in ["upstream_url", "inject", "allow", "calls_per_day"] {
        assert!(fields.iter().any(|x| x == f), "{f} in {fields:?}");
    }
}

/// `agentkey` as an operator runs it, on the server's database.
fn cli(app: &TestApp, args: &[&str], stdin: Option<&str>) -> serde_json::Value {
    use std::io::Write;
    let mut child = std::process::Command::new(env!("CARGO_BIN_EXE_agentkey"))
        .arg("--json")
        .args(args)
        .env("AGENTKEY_DATABASE_URL", app.db_url())
        .env(
            "AGENTKEY_MASTER_KEY_FILE",
            app.dir.path().join("master.key"),
        )
        .env(LOOPBACK.0, LOOPBACK.1)
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .expect("agentkey runs");
    let mut input = child.stdin.take().expect("stdin");
    if let Some(text) = stdin {
        input.write_all(text.as_bytes()).expect("write stdin");
    }
    drop(input);
    let out = child.wait_with_output().expect("agentkey finishes");
    assert!(
        out.status.success(),
        "agentkey {args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    serde_json::from_slice(&out.stdout).expect("JSON output")
}

#[tokio::test]
async fn the_cli_creates_updates_and_approves_proxied_tools() {
    let app = proxy_app(&[]).await;
    let upstream = Upstream::start().await;
    let base = upstream.base();
    let created = cli(
        &app,
        &[
            "tool",
            "create",
            "--name",
            "GitHub",
            "--credential-stdin",
            "--delivery",
            "proxy",
            "--upstream",
            &base,
            "--inject",
            "Authorization: Bearer {secret}",
            "--allow",
            "GET /repos/**",
            "--allow",
            "POST /repos/*/issues",
        ],
        Some(SECRET),
    );
    let id = created["tool"]["id"].as_str().expect("id").to_owned();
    assert_eq!(created["tool"]["delivery"], "proxy");
    assert_eq!(
        created["tool"]["proxy"]["allow"],
        serde_json::json!(["GET /repos/**", "POST /repos/*/issues"])
    );
    assert!(!created.to_string().contains(SECRET));

    let updated = cli(
        &app,
        &[
            "tool",
            "update",
            &id,
            "--calls-per-day",
            "100",
            "--delivery",
            "both",
        ],
        None,
    );
    assert_eq!(updated["delivery"], "both");
    assert_eq!(updated["proxy"]["calls_per_day"], 100);
    assert_eq!(
        updated["proxy"]["upstream_url"],
        base.as_str(),
        "unnamed settings are kept"
    );

    let (_, key) = app.create_agent("cli-agent").await;
    let request = app.request_access(&key, &id).await;
    let approved = cli(
        &app,
        &[
            "request",
            "approve",
            &request,
            "--read-only",
            "--max-calls-per-day",
            "3",
        ],
        None,
    );
    assert_eq!(approved["scope"]["read_only"], true);
    assert_eq!(approved["calls_per_day"], 3);
    app.services.vend_cache.clear();
    let body = expect_error(
        app.call(
            Method::POST,
            &format!("/api/tools/{id}/proxy/repos/a/issues"),
            Some(&key),
            Some(serde_json::json!({})),
        )
        .await,
        403,
    )
    .await;
    assert!(
        body["hint"]
            .as_str()
            .expect("hint")
            .contains("GET and HEAD only")
    );
    assert_eq!(
        app.get(&format!("/api/tools/{id}/proxy/repos/a"), &key)
            .await
            .status(),
        200
    );
}

#[tokio::test]
async fn a_budget_holds_exactly_under_a_concurrent_burst_over_two_instances() {
    let vars = [
        LOOPBACK,
        ("AGENTKEY_RATE_LIMITS", "preauth=100000/m,proxy=100000/m"),
    ];
    let app = spawn_app_with(&vars).await;
    let upstream = Upstream::start().await;
    let tool = proxied_with(&app, &upstream, None, &[], Some(10), Delivery::Proxy).await;
    let (_, key) = app.create_agent("burst-budget").await;
    app.grant(&key, &tool.id).await;
    let other = app.second_instance(&vars).await;
    let mut burst = Vec::new();
    for i in 0..30 {
        let base = if i % 2 == 0 {
            app.base.clone()
        } else {
            other.base.clone()
        };
        let (client, url, key) = (
            app.client.clone(),
            format!("{base}{}", path(&tool, "/b")),
            key.clone(),
        );
        burst.push(tokio::spawn(async move {
            client
                .get(url)
                .bearer_auth(key)
                .send()
                .await
                .map(|r| r.status().as_u16())
        }));
    }
    let mut statuses = Vec::new();
    for task in burst {
        statuses.push(task.await.expect("task").expect("answer"));
    }
    assert_eq!(
        statuses.iter().filter(|s| **s == 200).count(),
        10,
        "{statuses:?}"
    );
    assert_eq!(
        statuses.iter().filter(|s| **s == 429).count(),
        20,
        "{statuses:?}"
    );
    assert_eq!(upstream.seen().len(), 10, "refused calls were never sent");
    assert_eq!(
        app.count("SELECT CAST(COALESCE(SUM(calls), 0) AS BIGINT) FROM grant_usage")
            .await,
        10
    );
    assert_eq!(rows(&app, "proxy.called").await, 10);
    other.stop().await;
}

#[tokio::test]
async fn headers_that_change_the_method_or_slice_the_answer_never_reach_the_upstream() {
    let app = proxy_app(&[("AGENTKEY_PROXY", "request_body=1KiB")]).await;
    let upstream = Upstream::start().await;
    let tool = proxied(&app, &upstream, None, &["GET /v1/**", "POST /v1/items"]).await;
    let (_, key) = app.create_agent("override-agent").await;
    app.grant(&key, &tool.id).await;
    let res = app
        .client
        .post(app.url(&path(&tool, "/v1/items")))
        .bearer_auth(&key)
        .header("x-http-method-override", "DELETE")
        .header("x-original-url", "/admin")
        .header("range", "bytes=0-3")
        .body("{}")
        .send()
        .await
        .expect("sent");
    assert_eq!(res.status(), 200);
    assert!(
        res.headers()["content-security-policy"]
            .to_str()
            .expect("csp")
            .contains("sandbox")
    );
    let seen = upstream.seen();
    let headers = seen[0].all_headers();
    for gone in ["x-http-method-override", "x-original-url", "range"] {
        assert!(!headers.contains(gone), "{gone}: {headers}");
    }
    assert_eq!(
        seen[0].header("content-length").as_deref(),
        Some("2"),
        "a declared length is kept"
    );
    let body = expect_error(
        app.get(&path(&tool, "/v1/items?_method=DELETE"), &key)
            .await,
        403,
    )
    .await;
    assert!(
        body["error"].as_str().expect("error").contains("_method"),
        "{body}"
    );
    assert_eq!(upstream.seen().len(), 1);

    // HEAD keeps the upstream's length, and its outcome is recorded as complete.
    let head = app
        .call(Method::HEAD, &path(&tool, "/v1/big"), Some(&key), None)
        .await;
    assert_eq!(head.status(), 200);
    assert_eq!(head.headers()["content-length"], "4096");
    let outcomes = wait_calls(&app, 1).await;
    assert_eq!(outcomes[0]["method"], "HEAD");
    let mut db = app.raw_db().await;
    let errors: i64 = sqlx::query_scalar(
        "SELECT COUNT(*) FROM audit_log WHERE action IN ('proxy.completed', 'proxy.secret_echoed') \
         AND metadata LIKE '%\"error\":\"%'",
    )
    .fetch_one(&mut db)
    .await
    .expect("count");
    assert_eq!(errors, 0, "complete calls carry no error");

    // A chunked upload over the cap is cut off with a 413, whatever it declared.
    let chunk = "x".repeat(600);
    let request = format!(
        "POST {} HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer {key}\r\nTransfer-Encoding: chunked\r\nConnection: close\r\n\r\n258\r\n{chunk}\r\n258\r\n{chunk}\r\n0\r\n\r\n",
        path(&tool, "/v1/items")
    );
    let (status, text) = app.raw_http(request.as_bytes()).await;
    assert_eq!(status, 413, "{text}");
    assert!(
        upstream.seen().iter().all(|s| s.body.len() <= 1024),
        "never more than the cap"
    );
}

#[tokio::test]
async fn a_narrowed_grant_on_a_tool_of_both_deliveries_is_proxy_only() {
    let app = proxy_app(&[]).await;
    let upstream = Upstream::start().await;
    let tool = proxied_with(&app, &upstream, None, &[], None, Delivery::Both).await;
    let (_, key) = app.create_agent("both-agent").await;
    let id = app.request_access(&key, &tool.id).await;
    grants::approve_with(
        &app.services,
        &app.admin,
        &id,
        grants::Approval {
            scope: GrantScope {
                read_only: true,
                ..Default::default()
            },
            ..Default::default()
        },
    )
    .await
    .expect("approve");
    let body = expect_error(app.fetch(&key, &tool.id).await, 403).await;
    assert!(!body.to_string().contains(SECRET));
    assert!(
        body["hint"].as_str().expect("hint").contains("/proxy/"),
        "{body}"
    );
    assert_eq!(app.get(&path(&tool, "/x"), &key).await.status(), 200);
    expect_error(
        app.call(Method::DELETE, &path(&tool, "/x"), Some(&key), None)
            .await,
        403,
    )
    .await;
}

#[tokio::test]
async fn a_catalog_file_without_delivery_keeps_the_tools_proxy_settings() {
    let app = proxy_app(&[]).await;
    let upstream = Upstream::start().await;
    let tool = proxied(&app, &upstream, None, &["GET /repos/**"]).await;
    let mut exported = app::server::service::catalog_io::export(&app.services, &app.admin)
        .await
        .expect("export");
    for e in &mut exported {
        e.delivery = None;
        e.upstream_url = None;
        e.allow = Vec::new();
    }
    let plan = app::server::service::catalog_io::import(&app.services, &app.admin, exported, true)
        .await
        .expect("import");
    assert_eq!(plan.unchanged, ["Upstream API"], "{plan:?}");
    let now = tools::get(&app.services, &app.admin, &tool.id)
        .await
        .expect("tool");
    assert_eq!(now.delivery, Delivery::Proxy);
    assert_eq!(now.proxy.allow, ["GET /repos/**"]);
}

#[tokio::test]
async fn open_dashboards_hear_of_proxied_use_once_per_batch() {
    let app = proxy_app(&[]).await;
    let upstream = Upstream::start().await;
    let tool = proxied(&app, &upstream, None, &[]).await;
    let (_, key) = app.create_agent("live-agent").await;
    app.grant(&key, &tool.id).await;
    let mut events = app.services.events.subscribe();
    for _ in 0..3 {
        // An answer without an echo of the secret: its outcome goes to the batch.
        assert_eq!(app.get(&path(&tool, "/big"), &key).await.status(), 200);
    }
    let heard = tokio::time::timeout(std::time::Duration::from_secs(5), async {
        loop {
            match events.recv().await {
                Ok(e) if e.kind == app::server::events::EventKind::CredentialVended => return e,
                Ok(_) => continue,
                Err(err) => panic!("event stream: {err}"),
            }
        }
    })
    .await
    .expect("a use event within the flush period");
    assert_eq!(heard.org_id, app.org_id);
    assert_eq!(wait_calls(&app, 3).await.len(), 3);
}
