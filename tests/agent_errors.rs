//! Every refusal of the agent API contract: authentication, ids, bodies, fields, methods,
//! unknown routes, conflicts, rate limits, CORS, schema discovery and the OpenAPI document.
//! Each error must be JSON `{error, hint?}`, never a 500, and must leave no partial state.

mod common;

use app::model::{AgentStatus, AuthType, CredentialMode};
use app::server::service::agents;
use common::{TestApp, expect_error, expect_invalid_field, json, now_ms, spawn_app_with};
use reqwest::Method;
use serde_json::{Value, json};

/// An app with one agent, one approved shared tool and one tool with no access.
struct Fixture {
    app: TestApp,
    key: String,
    approved: String,
    fresh: String,
}

async fn fixture_with(vars: &[(&str, &str)]) -> Fixture {
    let app = spawn_app_with(vars).await;
    let (_agent, key) = app.create_agent("errors-bot").await;
    let approved = app
        .create_shared_tool("GitHub", Some("github.com"), "ghp_errors_secret")
        .await
        .id;
    let fresh = app
        .create_shared_tool("Linear", Some("linear.app"), "lin_errors_secret")
        .await
        .id;
    app.grant(&key, &approved).await;
    Fixture {
        app,
        key,
        approved,
        fresh,
    }
}

/// Like [`fixture_with`] but without any HTTP call, so every rate window starts untouched.
async fn quiet_fixture(vars: &[(&str, &str)]) -> Fixture {
    let app = spawn_app_with(vars).await;
    let (_agent, key) = app.create_agent("quota-bot").await;
    let approved = app
        .create_shared_tool("GitHub", Some("github.com"), "ghp_quota_secret")
        .await
        .id;
    let fresh = app
        .create_shared_tool("Linear", Some("linear.app"), "lin_quota_secret")
        .await
        .id;
    Fixture {
        app,
        key,
        approved,
        fresh,
    }
}

async fn fixture() -> Fixture {
    fixture_with(&[]).await
}

/// The three POST routes with a valid body each.
fn post_routes(f: &Fixture) -> Vec<(String, Value)> {
    vec![
        (
            format!("/api/tools/{}/request", f.fresh),
            json!({"reason": "Need it for the release"}),
        ),
        (
            "/api/tools/suggest".to_owned(),
            json!({"name": "Notion", "url": "notion.so", "reason": "Team docs live there"}),
        ),
        (
            format!("/api/tools/{}/instructions/suggest", f.approved),
            json!({"learned": "Use fine-grained tokens", "why": "Classic tokens are refused by the org"}),
        ),
    ]
}

/// Every authenticated route with a valid body where it takes one.
fn all_routes(f: &Fixture) -> Vec<(Method, String, Option<Value>)> {
    let mut routes = vec![
        (Method::GET, "/api/tools".to_owned(), None),
        (Method::GET, "/api/me".to_owned(), None),
        (
            Method::GET,
            format!("/api/tools/{}/credentials", f.approved),
            None,
        ),
    ];
    routes.extend(
        post_routes(f)
            .into_iter()
            .map(|(p, b)| (Method::POST, p, Some(b))),
    );
    routes
}

/// Sends `body` as raw bytes with the given content type.
async fn post_raw(
    app: &TestApp,
    path: &str,
    key: &str,
    content_type: Option<&str>,
    body: impl Into<reqwest::Body>,
) -> reqwest::Response {
    let mut req = app.client.post(app.url(path)).bearer_auth(key).body(body);
    if let Some(ct) = content_type {
        req = req.header("content-type", ct);
    }
    req.send().await.expect("request sent")
}

/// Rows that a refused write must not have created.
async fn write_counts(app: &TestApp) -> [i64; 4] {
    [
        app.count("SELECT COUNT(*) FROM access_requests").await,
        app.count("SELECT COUNT(*) FROM tool_suggestions").await,
        app.count("SELECT COUNT(*) FROM tool_suggestion_supporters")
            .await,
        app.count("SELECT COUNT(*) FROM guide_suggestions").await,
    ]
}

// ---- 401 ----------------------------------------------------------------------------------

#[tokio::test]
async fn missing_wrong_and_malformed_keys_get_401_json_on_every_authenticated_route() {
    let f = fixture().await;
    let long_key = format!("ak_{}", "x".repeat(300));
    let headers: Vec<Option<String>> = vec![
        None,
        Some("Bearer ak_definitelyNotARealKey0000000000000000000000".into()),
        Some("Bearer sk_agent_0123456789abcdef0123456789abcdef".into()),
        Some(format!("Bearer {long_key}")),
        Some("Bearer ".into()),
        Some("Bearer    ".into()),
        Some(format!("Basic {}", f.key)),
        Some(f.key.clone()),
        Some(format!("bearer {}", f.key)),
    ];
    let before = write_counts(&f.app).await;

    for (method, path, body) in all_routes(&f) {
        for header in &headers {
            let mut req = f.app.client.request(method.clone(), f.app.url(&path));
            if let Some(h) = header {
                req = req.header("authorization", h.as_str());
            }
            if let Some(b) = &body {
                req = req.json(b);
            }
            let res = req.send().await.expect("sent");
            let body = expect_error(res, 401).await;
            assert!(
                body["hint"].as_str().is_some_and(|h| h.contains("Bearer")),
                "{method} {path} {header:?}: {body}"
            );
            assert!(!body.to_string().contains("ghp_errors_secret"));
        }
    }
    assert_eq!(
        write_counts(&f.app).await,
        before,
        "no write for an unauthenticated call"
    );
}

#[tokio::test]
async fn a_key_in_the_original_sk_agent_form_is_refused_even_with_a_valid_body() {
    let f = fixture().await;

    let res = f
        .app
        .call(
            Method::GET,
            "/api/tools",
            Some("sk_agent_4f9a1c2b3d4e5f60718293a4b5c6d7e8"),
            None,
        )
        .await;

    let body = expect_error(res, 401).await;
    assert_eq!(body["error"], "Invalid API key.");
}

// ---- 403 suspended ------------------------------------------------------------------------

#[tokio::test]
async fn suspended_agent_gets_403_before_its_body_is_even_read() {
    let f = fixture().await;
    let agent = agents::list(&f.app.services, &f.app.admin)
        .await
        .expect("agents")
        .remove(0);
    agents::set_status(
        &f.app.services,
        &f.app.admin,
        &agent.id,
        AgentStatus::Suspended,
        None,
    )
    .await
    .expect("suspend");
    let before = write_counts(&f.app).await;

    for (path, _) in post_routes(&f) {
        let res = post_raw(&f.app, &path, &f.key, Some("text/plain"), "not json").await;
        let body = expect_error(res, 403).await;
        assert!(body["hint"].is_string(), "{path}: {body}");
    }
    assert_eq!(write_counts(&f.app).await, before);
}

// ---- 404 ids ------------------------------------------------------------------------------

#[tokio::test]
async fn malformed_tool_ids_get_404_before_authentication() {
    let f = fixture().await;
    let ids = [
        "not-a-uuid",
        "123",
        "00000000-0000-0000-0000-00000000000",
        "00000000-0000-0000-0000-0000000000000",
        "%7B0%7D",
        "zzzzzzzz-zzzz-zzzz-zzzz-zzzzzzzzzzzz",
    ];

    for id in ids {
        for (method, path) in [
            (Method::GET, format!("/api/tools/{id}/credentials")),
            (Method::POST, format!("/api/tools/{id}/request")),
            (
                Method::POST,
                format!("/api/tools/{id}/instructions/suggest"),
            ),
        ] {
            let res = f
                .app
                .call(method.clone(), &path, None, Some(json!({"reason": "x"})))
                .await;
            let body = expect_error(res, 404).await;
            assert_eq!(
                body["error"], "Tool ID is not a valid identifier.",
                "{method} {path}"
            );
        }
    }
}

#[tokio::test]
async fn another_organizations_tool_is_404_like_an_unknown_id_and_leaks_nothing() {
    let f = fixture().await;
    let other = f.app.other_org("Rival Corp").await;
    let foreign = f
        .app
        .create_tool_as(
            &other,
            "Rival Payroll",
            Some("payroll.rival.example"),
            AuthType::ApiKey,
            CredentialMode::Shared,
            Some("rival_payroll_secret"),
        )
        .await;
    let unknown = uuid::Uuid::now_v7().to_string();
    let before = write_counts(&f.app).await;

    for id in [&foreign.id, &unknown] {
        let fetch = expect_error(f.app.fetch(&f.key, id).await, 404).await;
        let request = expect_error(
            f.app
                .post(
                    &format!("/api/tools/{id}/request"),
                    &f.key,
                    json!({"reason": "Need payroll data"}),
                )
                .await,
            404,
        )
        .await;
        let guide = expect_error(
            f.app
                .post(
                    &format!("/api/tools/{id}/instructions/suggest"),
                    &f.key,
                    json!({"learned": "Payroll closes Friday", "why": "I saw it"}),
                )
                .await,
            404,
        )
        .await;
        for body in [&fetch, &request, &guide] {
            let text = body.to_string();
            assert!(
                !text.contains("Rival")
                    && !text.contains("rival_payroll_secret")
                    && !text.contains("payroll."),
                "leak: {text}"
            );
        }
        assert_eq!(fetch["error"], "Tool not found.");
        assert_eq!(request["error"], "Tool not found.");
    }
    assert_eq!(
        write_counts(&f.app).await,
        before,
        "nothing recorded against a foreign tool"
    );
    let catalog = json(f.app.get("/api/tools", &f.key).await).await;
    assert!(!catalog.to_string().contains(&foreign.id));
}

// ---- 413 / 415 / 400 body -----------------------------------------------------------------

#[tokio::test]
async fn oversize_body_is_413_with_the_limit_in_the_hint_on_every_post_route() {
    let f = fixture().await;
    let before = write_counts(&f.app).await;

    for (path, _) in post_routes(&f) {
        let huge = json!({"reason": "r".repeat(9000), "name": "Big", "learned": "l".repeat(9000), "why": "because"});
        let res = f.app.post(&path, &f.key, huge).await;
        let body = expect_error(res, 413).await;
        assert!(
            body["hint"].as_str().expect("hint").contains("8192"),
            "{path}: {body}"
        );
    }
    assert_eq!(write_counts(&f.app).await, before);
}

#[tokio::test]
async fn a_body_of_exactly_the_limit_is_read_and_one_byte_more_is_413() {
    let f = fixture().await;
    let path = format!("/api/tools/{}/request", f.fresh);
    let frame = r#"{"reason":"Need it","pad":""}"#.len();
    let exact = format!(
        r#"{{"reason":"Need it","pad":"{}"}}"#,
        "p".repeat(8192 - frame)
    );
    assert_eq!(exact.len(), 8192);

    let over = post_raw(
        &f.app,
        &path,
        &f.key,
        Some("application/json"),
        format!("{exact} "),
    )
    .await;
    expect_error(over, 413).await;
    let ok = post_raw(&f.app, &path, &f.key, Some("application/json"), exact).await;
    assert_eq!(ok.status(), 201, "8192 bytes is within the limit");
}

#[tokio::test]
async fn oversize_chunked_body_without_content_length_is_413() {
    let f = fixture().await;
    let path = format!("/api/tools/{}/request", f.fresh);
    let chunked = |payload: &str| {
        let mut body = String::new();
        for piece in payload.as_bytes().chunks(1000) {
            body.push_str(&format!(
                "{:x}\r\n{}\r\n",
                piece.len(),
                String::from_utf8_lossy(piece)
            ));
        }
        body.push_str("0\r\n\r\n");
        format!(
            "POST {path} HTTP/1.1\r\nHost: {}\r\nAuthorization: Bearer {}\r\nContent-Type: application/json\r\n\
             Transfer-Encoding: chunked\r\nConnection: close\r\n\r\n{body}",
            f.app.addr, f.key
        )
    };
    let before = write_counts(&f.app).await;

    let big = format!(r#"{{"reason":"{}"}}"#, "y".repeat(9000));
    let (status, text) = f.app.raw_http(chunked(&big).as_bytes()).await;

    assert_eq!(status, 413, "{text}");
    assert!(text.contains("8192"), "{text}");
    assert_eq!(write_counts(&f.app).await, before);
    let (status, text) = f
        .app
        .raw_http(chunked(r#"{"reason":"Chunked but small"}"#).as_bytes())
        .await;
    assert_eq!(status, 201, "a small chunked body is accepted: {text}");
}

#[tokio::test]
async fn non_json_content_types_are_415_and_json_variants_are_accepted() {
    let f = fixture().await;
    let body = r#"{"reason":"Need it for the release"}"#;
    let path = format!("/api/tools/{}/request", f.fresh);
    let before = write_counts(&f.app).await;

    for ct in [
        None,
        Some("text/plain"),
        Some("application/x-www-form-urlencoded"),
        Some("multipart/form-data; boundary=x"),
        Some("application/jsonp"),
        Some("json"),
    ] {
        for (route, _) in post_routes(&f) {
            let res = post_raw(&f.app, &route, &f.key, ct, body).await;
            let err = expect_error(res, 415).await;
            assert!(
                err["hint"]
                    .as_str()
                    .is_some_and(|h| h.contains("application/json")),
                "{ct:?} {route}: {err}"
            );
        }
    }
    assert_eq!(write_counts(&f.app).await, before);

    let res = post_raw(
        &f.app,
        &path,
        &f.key,
        Some("Application/JSON; charset=utf-8"),
        body,
    )
    .await;
    assert_eq!(res.status(), 201, "parameters and case do not matter");
    let res = post_raw(
        &f.app,
        "/api/tools/suggest",
        &f.key,
        Some("application/vnd.agent+json"),
        r#"{"name":"Notion","reason":"Team docs live there"}"#,
    )
    .await;
    assert_eq!(res.status(), 201, "+json types are JSON");
}

#[tokio::test]
async fn malformed_json_is_400_with_a_schema_hint_and_writes_nothing() {
    let f = fixture().await;
    let before = write_counts(&f.app).await;

    for raw in [
        "",
        "{",
        r#"{"reason":"#,
        "{'reason': 'single quotes'}",
        r#"{"reason":"ok"} trailing"#,
        "\u{feff}{}",
        "nul\u{0}",
    ] {
        for (path, _) in post_routes(&f) {
            let res = post_raw(&f.app, &path, &f.key, Some("application/json"), raw).await;
            let body = expect_error(res, 400).await;
            assert_eq!(
                body["error"], "Malformed JSON request body.",
                "{raw:?} {path}"
            );
            assert!(
                body["hint"]
                    .as_str()
                    .is_some_and(|h| h.contains("GET /api/tools")),
                "{body}"
            );
        }
    }
    assert_eq!(write_counts(&f.app).await, before);
}

#[tokio::test]
async fn a_body_that_is_not_an_object_is_400_naming_the_body() {
    let f = fixture().await;
    let before = write_counts(&f.app).await;

    for raw in ["[]", r#"["reason"]"#, r#""reason""#, "42", "null", "true"] {
        for (path, _) in post_routes(&f) {
            let res = post_raw(&f.app, &path, &f.key, Some("application/json"), raw).await;
            expect_invalid_field(res, "body").await;
        }
    }
    assert_eq!(write_counts(&f.app).await, before);
}

// ---- 400 fields ---------------------------------------------------------------------------

#[tokio::test]
async fn request_reason_missing_short_long_blank_or_mistyped_is_400_with_details() {
    let f = fixture().await;
    let path = format!("/api/tools/{}/request", f.fresh);
    let cases = [
        json!({}),
        json!({"reason": null}),
        json!({"reason": ""}),
        json!({"reason": "    "}),
        json!({"reason": "abcd"}),
        json!({"reason": "  abcd  "}),
        json!({"reason": "r".repeat(501)}),
        json!({"reason": 12345}),
        json!({"reason": true}),
        json!({"reason": ["Need it for the release"]}),
        json!({"reason": {"text": "Need it for the release"}}),
        json!({"reason": "bell\u{7}character"}),
        json!({"why": "wrong field name"}),
    ];

    for case in cases {
        let res = f.app.post(&path, &f.key, case.clone()).await;
        let body = expect_invalid_field(res, "reason").await;
        // Plain words that name the field, not a code.
        assert!(
            body["error"]
                .as_str()
                .expect("error")
                .starts_with("Reason "),
            "{case}: {body}"
        );
        assert!(body["hint"].is_string(), "{case}: {body}");
    }
    assert_eq!(
        f.app
            .count(&format!(
                "SELECT COUNT(*) FROM access_requests WHERE tool_id = '{}'",
                f.fresh
            ))
            .await,
        0
    );
}

#[tokio::test]
async fn suggestion_fields_are_validated_one_by_one_and_all_failures_are_listed() {
    let f = fixture().await;
    let cases: Vec<(Value, &[&str])> = vec![
        (json!({"reason": "Team docs live there"}), &["name"]),
        (
            json!({"name": "N", "reason": "Team docs live there"}),
            &["name"],
        ),
        (
            json!({"name": "n".repeat(121), "reason": "Team docs live there"}),
            &["name"],
        ),
        (
            json!({"name": "!!!", "reason": "Team docs live there"}),
            &["name"],
        ),
        (
            json!({"name": "Bad\nName", "reason": "Team docs live there"}),
            &["name"],
        ),
        (
            json!({"name": 7, "reason": "Team docs live there"}),
            &["name"],
        ),
        (json!({"name": "Notion"}), &["reason"]),
        (json!({"name": "Notion", "reason": "shrt"}), &["reason"]),
        (
            json!({"name": "Notion", "url": "ftp://notion.so", "reason": "Team docs live there"}),
            &["url"],
        ),
        (
            json!({"name": "Notion", "url": "https://user:pw@notion.so", "reason": "Team docs live there"}),
            &["url"],
        ),
        (
            json!({"name": "Notion", "url": "http://", "reason": "Team docs live there"}),
            &["url"],
        ),
        (
            json!({"name": "Notion", "url": format!("https://{}.so", "a".repeat(500)), "reason": "Team docs live there"}),
            &["url"],
        ),
        (
            json!({"name": "Notion", "url": 42, "reason": "Team docs live there"}),
            &["url"],
        ),
        (
            json!({"name": "Notion", "url": ["notion.so"], "reason": "Team docs live there"}),
            &["url"],
        ),
        (
            json!({"name": "", "url": "ftp://x", "reason": ""}),
            &["name", "url", "reason"],
        ),
    ];
    let before = write_counts(&f.app).await;

    for (case, fields) in cases {
        let res = f.app.post("/api/tools/suggest", &f.key, case.clone()).await;
        let body = expect_error(res, 400).await;
        let named: Vec<&str> = body["details"]
            .as_array()
            .expect("details")
            .iter()
            .filter_map(|d| d["field"].as_str())
            .collect();
        for field in fields {
            assert!(named.contains(field), "{case}: expected {field} in {body}");
        }
    }
    assert_eq!(write_counts(&f.app).await, before);
    let res = f
        .app
        .post(
            "/api/tools/suggest",
            &f.key,
            json!({"name": "Notion", "url": null, "reason": "Team docs live there"}),
        )
        .await;
    assert_eq!(res.status(), 201, "a null url counts as absent");
}

#[tokio::test]
async fn guide_suggestion_fields_are_validated() {
    let f = fixture().await;
    let path = format!("/api/tools/{}/instructions/suggest", f.approved);
    let cases: Vec<(Value, &str)> = vec![
        (json!({"why": "Because it failed"}), "learned"),
        (
            json!({"learned": "shrt", "why": "Because it failed"}),
            "learned",
        ),
        (
            json!({"learned": "l".repeat(2001), "why": "Because it failed"}),
            "learned",
        ),
        (json!({"learned": 1, "why": "Because it failed"}), "learned"),
        (json!({"learned": "Use the v2 endpoint"}), "why"),
        (
            json!({"learned": "Use the v2 endpoint", "why": "    "}),
            "why",
        ),
        (
            json!({"learned": "Use the v2 endpoint", "why": "w".repeat(2001)}),
            "why",
        ),
    ];

    for (case, field) in cases {
        expect_invalid_field(f.app.post(&path, &f.key, case).await, field).await;
    }
    assert_eq!(
        f.app.count("SELECT COUNT(*) FROM guide_suggestions").await,
        0
    );
    let ok = f
        .app
        .post(
            &path,
            &f.key,
            json!({"learned": "l".repeat(2000), "why": "w".repeat(2000)}),
        )
        .await;
    assert_eq!(
        ok.status(),
        201,
        "2000 characters each is the maximum, inside 8 KiB"
    );
}

#[tokio::test]
async fn unicode_names_and_reasons_are_accepted_and_counted_in_characters() {
    let f = fixture().await;
    let request = format!("/api/tools/{}/request", f.fresh);

    // 4 characters but 12 bytes: too short.
    expect_invalid_field(
        f.app
            .post(&request, &f.key, json!({"reason": "日本語だ"}))
            .await,
        "reason",
    )
    .await;
    // 501 two-byte characters: too long although only ~1 KB.
    expect_invalid_field(
        f.app
            .post(&request, &f.key, json!({"reason": "é".repeat(501)}))
            .await,
        "reason",
    )
    .await;
    let res = f
        .app
        .post(&request, &f.key, json!({"reason": "é".repeat(500)}))
        .await;
    assert_eq!(
        res.status(),
        201,
        "500 characters (1000 bytes) is within the limit"
    );

    expect_invalid_field(
        f.app
            .post(
                "/api/tools/suggest",
                &f.key,
                json!({"name": "語".repeat(121), "reason": "Rust tooling"}),
            )
            .await,
        "name",
    )
    .await;
    let res = f
        .app
        .post(
            "/api/tools/suggest",
            &f.key,
            json!({"name": "語".repeat(120), "reason": "Rust tooling"}),
        )
        .await;
    assert_eq!(
        res.status(),
        201,
        "120 CJK characters (360 bytes) is a valid name"
    );
    // Emoji alone normalize to nothing: the name must carry letters or digits.
    expect_invalid_field(
        f.app
            .post(
                "/api/tools/suggest",
                &f.key,
                json!({"name": "🦀🦀", "reason": "Rust tooling"}),
            )
            .await,
        "name",
    )
    .await;
    let res = f
        .app
        .post(
            "/api/tools/suggest",
            &f.key,
            json!({"name": "日本語ツール", "url": "例え.jp", "reason": "チームの文書"}),
        )
        .await;
    assert_eq!(
        res.status(),
        201,
        "CJK name, IDN domain and a 6-character reason"
    );
    let names: Vec<String> =
        sqlx::query_scalar("SELECT name FROM tool_suggestions ORDER BY created_at")
            .fetch_all(&mut f.app.raw_db().await)
            .await
            .expect("names");
    assert!(
        names.contains(&"日本語ツール".to_owned()),
        "stored as sent: {names:?}"
    );
}

// ---- 405 / unknown routes -----------------------------------------------------------------

#[tokio::test]
async fn wrong_methods_are_405_json() {
    let f = fixture().await;
    let cases = [
        (Method::POST, "/api/tools".to_owned()),
        (Method::DELETE, "/api/tools".to_owned()),
        (Method::PUT, "/api/me".to_owned()),
        (
            Method::POST,
            format!("/api/tools/{}/credentials", f.approved),
        ),
        (
            Method::DELETE,
            format!("/api/tools/{}/credentials", f.approved),
        ),
        (Method::PATCH, format!("/api/tools/{}/request", f.fresh)),
        (
            Method::DELETE,
            format!("/api/tools/{}/instructions/suggest", f.approved),
        ),
        (Method::PUT, "/api/tools/suggest".to_owned()),
        (Method::POST, "/api/openapi.json".to_owned()),
    ];

    for (method, path) in cases {
        let res = f.app.call(method.clone(), &path, Some(&f.key), None).await;
        let body = expect_error(res, 405).await;
        assert!(
            body["hint"].as_str().is_some_and(|h| h.contains("openapi")),
            "{method} {path}: {body}"
        );
    }
}

#[tokio::test]
async fn unknown_api_routes_are_404_json() {
    let f = fixture().await;
    let paths = [
        "/api/nope".to_owned(),
        "/api/v2/tools".to_owned(),
        format!("/api/tools/{}", f.approved),
        format!("/api/tools/{}/secret", f.approved),
        format!("/api/tools/{}/credentials/extra", f.approved),
        "/api/tools/".to_owned(),
    ];

    for path in paths {
        for method in [Method::GET, Method::POST] {
            let body = expect_error(
                f.app.call(method.clone(), &path, Some(&f.key), None).await,
                404,
            )
            .await;
            assert_eq!(body["error"], "No such API route.", "{method} {path}");
        }
    }
}

#[tokio::test]
async fn the_bare_api_prefix_is_a_json_404_too() {
    let f = fixture().await;

    for path in ["/api", "/api/"] {
        let body = expect_error(f.app.call(Method::GET, path, Some(&f.key), None).await, 404).await;
        assert_eq!(body["error"], "No such API route.", "{path}");
    }
}

// ---- 409 ----------------------------------------------------------------------------------

#[tokio::test]
async fn duplicate_pending_request_and_already_approved_are_409_without_a_new_row() {
    let f = fixture().await;
    let pending_id = f.app.request_access(&f.key, &f.fresh).await;
    let before = write_counts(&f.app).await;

    let dup = expect_error(
        f.app
            .post(
                &format!("/api/tools/{}/request", f.fresh),
                &f.key,
                json!({"reason": "Asking again"}),
            )
            .await,
        409,
    )
    .await;
    let approved = expect_error(
        f.app
            .post(
                &format!("/api/tools/{}/request", f.approved),
                &f.key,
                json!({"reason": "Asking again"}),
            )
            .await,
        409,
    )
    .await;

    assert_eq!(dup["request_id"], pending_id.as_str());
    assert!(dup["error"].as_str().expect("error").contains("pending"));
    assert!(
        approved["error"]
            .as_str()
            .expect("error")
            .contains("already have access")
    );
    assert!(
        approved["hint"]
            .as_str()
            .expect("hint")
            .contains("/credentials")
    );
    assert_eq!(write_counts(&f.app).await, before);
}

#[tokio::test]
async fn two_simultaneous_requests_for_one_tool_give_one_201_and_one_409() {
    let f = fixture().await;
    let path = format!("/api/tools/{}/request", f.fresh);

    let (a, b) = tokio::join!(
        f.app
            .post(&path, &f.key, json!({"reason": "First copy of the call"})),
        f.app
            .post(&path, &f.key, json!({"reason": "Second copy of the call"})),
    );

    let mut statuses = [a.status().as_u16(), b.status().as_u16()];
    statuses.sort_unstable();
    assert_eq!(statuses, [201, 409]);
    assert_eq!(
        f.app
            .count(&format!(
                "SELECT COUNT(*) FROM access_requests WHERE tool_id = '{}'",
                f.fresh
            ))
            .await,
        1
    );
}

// ---- 429 ----------------------------------------------------------------------------------

fn header(res: &reqwest::Response, name: &str) -> String {
    res.headers()
        .get(name)
        .unwrap_or_else(|| panic!("missing {name}"))
        .to_str()
        .expect("ascii")
        .to_owned()
}

#[tokio::test]
async fn request_tier_answers_429_with_rate_headers_and_retry_after() {
    let f = quiet_fixture(&[("AGENTKEY_RATE_LIMITS", "request=2/h")]).await;
    let third = f
        .app
        .create_shared_tool("Sentry", Some("sentry.io"), "sntrys_rate")
        .await
        .id;
    let extra = f
        .app
        .create_shared_tool("Figma", Some("figma.com"), "figd_rate")
        .await
        .id;
    let other_tools = [f.fresh.clone(), third, extra];

    let first = f
        .app
        .post(
            &format!("/api/tools/{}/request", other_tools[0]),
            &f.key,
            json!({"reason": "First request"}),
        )
        .await;
    assert_eq!(first.status(), 201);
    assert_eq!(header(&first, "x-ratelimit-limit"), "2");
    assert_eq!(header(&first, "x-ratelimit-remaining"), "1");
    assert_eq!(header(&first, "x-ratelimit-policy"), "2;w=3600");
    let second = f
        .app
        .post(
            &format!("/api/tools/{}/request", other_tools[1]),
            &f.key,
            json!({"reason": "Second request"}),
        )
        .await;
    assert_eq!(second.status(), 201);
    assert_eq!(header(&second, "x-ratelimit-remaining"), "0");

    let limited = f
        .app
        .post(
            &format!("/api/tools/{}/request", other_tools[2]),
            &f.key,
            json!({"reason": "Third request"}),
        )
        .await;

    assert_eq!(header(&limited, "x-ratelimit-limit"), "2");
    assert_eq!(header(&limited, "x-ratelimit-remaining"), "0");
    assert_eq!(header(&limited, "x-ratelimit-policy"), "2;w=3600");
    let reset: i64 = header(&limited, "x-ratelimit-reset")
        .parse()
        .expect("epoch ms");
    let now = now_ms();
    assert!(
        reset > now && reset <= now + 3_600_000 + 1000,
        "reset {reset} is epoch milliseconds within the hour"
    );
    let retry: i64 = header(&limited, "retry-after").parse().expect("seconds");
    assert!((3500..=3600).contains(&retry), "retry-after {retry}");
    let body = expect_error(limited, 429).await;
    assert!(body["hint"].as_str().expect("hint").contains("Retry-After"));
    assert_eq!(
        f.app
            .count(&format!(
                "SELECT COUNT(*) FROM access_requests WHERE tool_id = '{}'",
                other_tools[2]
            ))
            .await,
        0
    );
}

#[tokio::test]
async fn invalid_bodies_do_not_spend_quota() {
    let f = quiet_fixture(&[("AGENTKEY_RATE_LIMITS", "request=2/h,suggest=1/h")]).await;
    let path = format!("/api/tools/{}/request", f.fresh);
    let second_tool = f
        .app
        .create_shared_tool("Sentry", Some("sentry.io"), "sntrys_quota")
        .await
        .id;

    for _ in 0..3 {
        expect_error(
            f.app.post(&path, &f.key, json!({"reason": "no"})).await,
            400,
        )
        .await;
        expect_error(
            post_raw(&f.app, &path, &f.key, Some("application/json"), "{").await,
            400,
        )
        .await;
        expect_error(
            post_raw(&f.app, &path, &f.key, Some("text/plain"), "Need it").await,
            415,
        )
        .await;
        expect_error(
            f.app
                .post(&path, &f.key, json!({"reason": "r".repeat(9000)}))
                .await,
            413,
        )
        .await;
        expect_error(
            f.app
                .post("/api/tools/suggest", &f.key, json!({"name": "X"}))
                .await,
            400,
        )
        .await;
    }

    let ok = f
        .app
        .post(&path, &f.key, json!({"reason": "Now a valid reason"}))
        .await;
    assert_eq!(ok.status(), 201);
    assert_eq!(
        header(&ok, "x-ratelimit-remaining"),
        "1",
        "the refused bodies spent nothing"
    );
    let ok = f
        .app
        .post(
            &format!("/api/tools/{second_tool}/request"),
            &f.key,
            json!({"reason": "Another valid reason"}),
        )
        .await;
    assert_eq!(ok.status(), 201);
    let ok = f
        .app
        .post(
            "/api/tools/suggest",
            &f.key,
            json!({"name": "Notion", "reason": "Team docs live there"}),
        )
        .await;
    assert_eq!(
        ok.status(),
        201,
        "suggest quota is untouched by invalid suggestions"
    );
    let over = f
        .app
        .post(
            "/api/tools/suggest",
            &f.key,
            json!({"name": "Coda", "reason": "Team docs live there"}),
        )
        .await;
    expect_error(over, 429).await;
}

#[tokio::test]
async fn unknown_tools_and_duplicate_requests_do_not_spend_the_request_quota() {
    let f = quiet_fixture(&[("AGENTKEY_RATE_LIMITS", "request=2/h")]).await;
    let path = format!("/api/tools/{}/request", f.fresh);
    let body = json!({"reason": "Need it for the sprint"});
    let first = f.app.post(&path, &f.key, body.clone()).await;
    assert_eq!(first.status(), 201);
    assert_eq!(header(&first, "x-ratelimit-remaining"), "1");
    for _ in 0..8 {
        let unknown = format!("/api/tools/{}/request", uuid::Uuid::now_v7());
        expect_error(f.app.post(&unknown, &f.key, body.clone()).await, 404).await;
        expect_error(f.app.post(&path, &f.key, body.clone()).await, 409).await;
    }
    let second = f
        .app
        .post(
            &format!("/api/tools/{}/request", f.approved),
            &f.key,
            body.clone(),
        )
        .await;
    assert_eq!(
        second.status(),
        201,
        "sixteen unweighed refusals left the second request's quota"
    );
    assert_eq!(header(&second, "x-ratelimit-remaining"), "0");
    let third = f
        .app
        .post(
            &format!("/api/tools/{}/request", uuid::Uuid::now_v7()),
            &f.key,
            body,
        )
        .await;
    expect_error(third, 429).await;
}

#[tokio::test]
async fn rate_tiers_are_separate_per_tier_and_per_agent() {
    let f = fixture_with(&[("AGENTKEY_RATE_LIMITS", "read=2/m")]).await;
    let (_other, other_key) = f.app.create_agent("second-bot").await;

    assert_eq!(f.app.get("/api/tools", &f.key).await.status(), 200);
    assert_eq!(f.app.get("/api/me", &f.key).await.status(), 200);
    let limited = f.app.get("/api/tools", &f.key).await;
    let retry: i64 = header(&limited, "retry-after").parse().expect("seconds");
    assert!((1..=60).contains(&retry));
    expect_error(limited, 429).await;
    expect_error(f.app.get("/api/me", &f.key).await, 429).await;

    assert_eq!(
        f.app.fetch(&f.key, &f.approved).await.status(),
        200,
        "the credential tier is separate"
    );
    assert_eq!(
        f.app.get("/api/tools", &other_key).await.status(),
        200,
        "another agent has its own window"
    );
}

#[tokio::test]
async fn preauth_ip_limit_stops_key_guessing_and_ignores_forwarded_for() {
    // No fixture: its HTTP calls would spend the same IP window.
    let app = spawn_app_with(&[("AGENTKEY_RATE_LIMITS", "preauth=3/m")]).await;
    let (_agent, key) = app.create_agent("real-bot").await;

    for n in 0..3 {
        let res = app
            .client
            .get(app.url("/api/tools"))
            .bearer_auth(format!("ak_guess_{n}"))
            .header("x-forwarded-for", format!("10.0.0.{n}"))
            .send()
            .await
            .expect("sent");
        expect_error(res, 401).await;
    }
    let res = app
        .client
        .get(app.url("/api/tools"))
        .bearer_auth(&key)
        .header("x-forwarded-for", "10.9.9.9")
        .send()
        .await
        .expect("sent");

    assert!(res.headers().contains_key("retry-after"));
    expect_error(res, 429).await;
    let schema = app
        .client
        .get(app.url("/api/tools/suggest"))
        .send()
        .await
        .expect("sent");
    assert_eq!(schema.status(), 200, "schema discovery is not rate limited");
}

// ---- CORS ---------------------------------------------------------------------------------

const ALLOWED: &str = "https://app.example.com";

async fn with_origin(
    app: &TestApp,
    method: Method,
    path: &str,
    origin: &str,
    key: Option<&str>,
) -> reqwest::Response {
    let mut req = app
        .client
        .request(method, app.url(path))
        .header("origin", origin);
    if let Some(key) = key {
        req = req.bearer_auth(key);
    }
    req.header("access-control-request-method", "GET")
        .send()
        .await
        .expect("sent")
}

#[tokio::test]
async fn without_origin_there_are_no_cors_headers() {
    let f = fixture_with(&[("AGENTKEY_CORS_ORIGINS", ALLOWED)]).await;

    let get = f.app.get("/api/tools", &f.key).await;
    let options = f
        .app
        .call(
            Method::OPTIONS,
            &format!("/api/tools/{}/credentials", f.approved),
            None,
            None,
        )
        .await;

    assert_eq!(get.status(), 200);
    assert!(!get.headers().contains_key("access-control-allow-origin"));
    assert_eq!(options.status(), 204, "a plain OPTIONS is answered");
    assert!(
        !options
            .headers()
            .contains_key("access-control-allow-origin")
    );
}

#[tokio::test]
async fn allowed_origin_preflight_is_204_and_echoes_the_origin() {
    let f = fixture_with(&[(
        "AGENTKEY_CORS_ORIGINS",
        &format!("{ALLOWED}, https://other.example.com"),
    )])
    .await;
    let paths = [
        "/api/tools".to_owned(),
        "/api/me".to_owned(),
        "/api/tools/suggest".to_owned(),
        format!("/api/tools/{}/request", f.fresh),
        format!("/api/tools/{}/credentials", f.approved),
        format!("/api/tools/{}/instructions/suggest", f.approved),
        "/api/openapi.json".to_owned(),
    ];

    for path in &paths {
        let res = with_origin(&f.app, Method::OPTIONS, path, ALLOWED, None).await;
        assert_eq!(res.status(), 204, "{path}");
        let h = res.headers();
        assert_eq!(h["access-control-allow-origin"], ALLOWED);
        assert!(
            h["access-control-allow-headers"]
                .to_str()
                .expect("ascii")
                .contains("Authorization")
        );
        assert!(
            h["access-control-allow-methods"]
                .to_str()
                .expect("ascii")
                .contains("GET")
        );
        assert!(
            h.get_all("vary")
                .iter()
                .any(|v| v.to_str().is_ok_and(|v| v.contains("Origin")))
        );
    }
    let get = with_origin(
        &f.app,
        Method::GET,
        &format!("/api/tools/{}/credentials", f.approved),
        ALLOWED,
        Some(&f.key),
    )
    .await;
    assert_eq!(get.status(), 200);
    assert_eq!(get.headers()["access-control-allow-origin"], ALLOWED);
    assert!(
        get.headers()["access-control-expose-headers"]
            .to_str()
            .expect("ascii")
            .contains("X-RateLimit-Remaining")
    );
}

#[tokio::test]
async fn disallowed_origin_gets_403_on_preflight_and_on_the_credentials_get() {
    let f = fixture_with(&[("AGENTKEY_CORS_ORIGINS", ALLOWED)]).await;
    let evil = "https://evil.example.com";
    let vended_before = f
        .app
        .count("SELECT COUNT(*) FROM audit_log WHERE action = 'credential.vended'")
        .await;

    let preflight = with_origin(
        &f.app,
        Method::OPTIONS,
        &format!("/api/tools/{}/credentials", f.approved),
        evil,
        None,
    )
    .await;
    assert!(
        !preflight
            .headers()
            .contains_key("access-control-allow-origin")
    );
    expect_error(preflight, 403).await;
    let fetch = with_origin(
        &f.app,
        Method::GET,
        &format!("/api/tools/{}/credentials", f.approved),
        evil,
        Some(&f.key),
    )
    .await;
    assert!(!fetch.headers().contains_key("access-control-allow-origin"));
    let body = expect_error(fetch, 403).await;
    assert!(!body.to_string().contains("ghp_errors_secret"));
    let near_miss = with_origin(
        &f.app,
        Method::GET,
        &format!("/api/tools/{}/credentials", f.approved),
        "https://app.example.com.evil.io",
        Some(&f.key),
    )
    .await;
    expect_error(near_miss, 403).await;

    let list = with_origin(&f.app, Method::GET, "/api/tools", evil, Some(&f.key)).await;
    assert_eq!(
        list.status(),
        200,
        "non-secret routes answer but without CORS headers"
    );
    assert!(!list.headers().contains_key("access-control-allow-origin"));
    assert_eq!(
        f.app
            .count("SELECT COUNT(*) FROM audit_log WHERE action = 'credential.vended'")
            .await,
        vended_before,
        "nothing was vended to the disallowed origin"
    );
}

#[tokio::test]
async fn disallowed_origin_preflight_is_403_on_every_route() {
    let f = fixture_with(&[("AGENTKEY_CORS_ORIGINS", ALLOWED)]).await;

    for path in [
        "/api/tools".to_owned(),
        "/api/me".to_owned(),
        "/api/tools/suggest".to_owned(),
        format!("/api/tools/{}/request", f.fresh),
    ] {
        let res = with_origin(
            &f.app,
            Method::OPTIONS,
            &path,
            "https://evil.example.com",
            None,
        )
        .await;
        assert!(
            !res.headers().contains_key("access-control-allow-origin"),
            "{path}"
        );
        expect_error(res, 403).await;
    }
}

#[tokio::test]
async fn with_no_configured_origins_any_origin_is_refused_on_credentials() {
    let f = fixture().await;

    let fetch = with_origin(
        &f.app,
        Method::GET,
        &format!("/api/tools/{}/credentials", f.approved),
        "http://localhost:3000",
        Some(&f.key),
    )
    .await;

    expect_error(fetch, 403).await;
}

// ---- schema discovery and OpenAPI ---------------------------------------------------------

#[tokio::test]
async fn schema_discovery_on_the_three_post_routes_needs_no_auth() {
    let f = fixture().await;
    let cases = [
        (format!("/api/tools/{}/request", f.fresh), vec!["reason"]),
        (
            "/api/tools/suggest".to_owned(),
            vec!["name", "url", "reason"],
        ),
        (
            format!("/api/tools/{}/instructions/suggest", f.approved),
            vec!["learned", "why"],
        ),
    ];

    for (path, fields) in cases {
        for key in [None, Some("ak_wrong")] {
            let res = f.app.call(Method::GET, &path, key, None).await;
            assert_eq!(res.status(), 200, "{path}");
            let body = json(res).await;
            let schema = &body["schema"];
            assert_eq!(schema["method"], "POST");
            assert_eq!(schema["max_body_bytes"], 8192);
            for field in &fields {
                assert!(
                    schema["body"][field]["type"] == "string",
                    "{path} lacks {field}: {body}"
                );
                assert!(schema["body"][field]["max_length"].is_u64());
            }
        }
    }
    let schema = json(
        f.app
            .call(Method::GET, "/api/tools/suggest", None, None)
            .await,
    )
    .await;
    assert_eq!(schema["schema"]["body"]["reason"]["min_length"], 5);
    assert_eq!(schema["schema"]["body"]["reason"]["max_length"], 500);
    assert_eq!(schema["schema"]["body"]["url"]["required"], false);
}

#[tokio::test]
async fn openapi_document_is_3_1_json_listing_every_agent_path() {
    let f = fixture().await;

    let res = f
        .app
        .call(Method::GET, "/api/openapi.json", None, None)
        .await;

    assert_eq!(res.status(), 200);
    assert!(
        res.headers()["content-type"]
            .to_str()
            .expect("ascii")
            .starts_with("application/json")
    );
    let doc: Value = serde_json::from_str(&res.text().await.expect("text")).expect("valid JSON");
    assert_eq!(doc["openapi"], "3.1.0");
    let paths = doc["paths"].as_object().expect("paths");
    for path in [
        "/api/tools",
        "/api/me",
        "/api/tools/suggest",
        "/api/tools/{tool_id}/request",
        "/api/tools/{tool_id}/credentials",
        "/api/tools/{tool_id}/instructions/suggest",
        "/api/tools/{tool_id}/proxy/{path}",
    ] {
        assert!(paths.contains_key(path), "missing {path}");
    }
    let proxy = &paths["/api/tools/{tool_id}/proxy/{path}"];
    for method in ["get", "post", "delete"] {
        assert!(proxy[method]["responses"]["502"].is_object(), "{method}");
    }
    assert!(paths["/api/tools/{tool_id}/request"]["post"]["requestBody"].is_object());
    for path in ["/api/instructions.md", "/mcp"] {
        assert!(paths.contains_key(path), "missing {path}");
    }
    // Every success body is described, generated from the Rust types, and every reference
    // resolves inside the document.
    let schemas = doc["components"]["schemas"].as_object().expect("schemas");
    for (path, op, status) in [
        ("/api/tools", "get", "200"),
        ("/api/me", "get", "200"),
        ("/api/tools/{tool_id}/credentials", "get", "200"),
        ("/api/tools/suggest", "post", "201"),
        ("/api/tools/{tool_id}/request", "post", "201"),
        ("/api/tools/{tool_id}/instructions/suggest", "post", "201"),
    ] {
        let schema = &paths[path][op]["responses"][status]["content"]["application/json"]["schema"];
        let name = schema["$ref"]
            .as_str()
            .and_then(|r| r.strip_prefix("#/components/schemas/"))
            .unwrap_or_else(|| panic!("{path} {status} has a generated schema: {schema}"));
        assert!(schemas.contains_key(name), "{name}");
    }
    let text = doc.to_string();
    for reference in text.split("\"$ref\":\"").skip(1) {
        let target = reference.split('"').next().expect("ref");
        let name = target
            .strip_prefix("#/components/schemas/")
            .expect("local ref");
        assert!(schemas.contains_key(name), "dangling {target}");
    }
    let catalog = &schemas["ToolList"]["properties"]["tools"]["items"];
    let entry = &schemas[catalog["$ref"]
        .as_str()
        .and_then(|r| r.strip_prefix("#/components/schemas/"))
        .expect("CatalogTool ref")];
    for field in ["id", "your_access", "delivery"] {
        assert!(
            entry["required"]
                .as_array()
                .is_some_and(|r| r.contains(&json!(field))),
            "{field} is required in {entry}"
        );
    }
    assert!(entry["properties"]["revocation_reason"].is_object());
    assert!(
        doc["components"]["schemas"]["Error"]["required"]
            .as_array()
            .is_some_and(|r| r.contains(&json!("error")))
    );
}

#[tokio::test]
async fn the_guide_is_served_as_markdown_without_a_key() {
    let f = fixture().await;
    let res = f
        .app
        .call(Method::GET, "/api/instructions.md", None, None)
        .await;
    assert_eq!(res.status(), 200);
    assert!(
        res.headers()["content-type"]
            .to_str()
            .expect("ascii")
            .starts_with("text/markdown")
    );
    let text = res.text().await.expect("text");
    assert!(text.starts_with("# Using AgentKey"));
    let base = &f.app.services.base_url;
    assert!(text.contains(&format!("{base}/api/tools")), "{text}");
    assert!(text.contains(&format!("{base}/mcp")));
    assert!(!text.contains(&f.key));
}

#[tokio::test]
async fn every_response_carries_security_headers_and_a_request_id() {
    let f = fixture().await;

    for res in [
        f.app.get("/api/tools", &f.key).await,
        f.app.call(Method::GET, "/api/nope", None, None).await,
        f.app.fetch(&f.key, &f.approved).await,
    ] {
        let h = res.headers();
        assert_eq!(h["x-content-type-options"], "nosniff");
        assert_eq!(h["x-frame-options"], "DENY");
        assert!(h.contains_key("x-request-id"));
    }
}

/// A tool id whose percent-encoding is not UTF-8 is an unknown tool like any other non-UUID:
/// JSON 404 on every route that takes one, before authentication.
#[tokio::test]
async fn tool_ids_that_are_not_text_get_the_json_404_of_unknown_ids() {
    let f = fixture_with(&[]).await;
    for (method, path) in [
        (Method::GET, "/api/tools/%FF/credentials"),
        (Method::POST, "/api/tools/%FF%FE/request"),
        (Method::POST, "/api/tools/%C3%28/instructions/suggest"),
    ] {
        for key in [f.key.as_str(), "ak_not_a_key"] {
            let res = f
                .app
                .client
                .request(method.clone(), f.app.url(path))
                .bearer_auth(key)
                .json(&json!({"reason": "Need it for the release."}))
                .send()
                .await
                .expect("send");
            let body = expect_error(res, 404).await;
            assert!(
                body["hint"]
                    .as_str()
                    .is_some_and(|h| h.contains("GET /api/tools")),
                "{path}: {body}"
            );
        }
    }
}

/// `www.` or dots alone name no domain: such suggestions are refused instead of merging on
/// an empty domain, and a guide fact without letters or digits is refused too.
#[tokio::test]
async fn urls_without_a_domain_and_facts_without_letters_are_refused() {
    let f = fixture_with(&[]).await;
    for url in ["https://www.", "www.", "https://www./pricing", "http://./"] {
        let res = f
            .app
            .post(
                "/api/tools/suggest",
                &f.key,
                json!({"name": format!("Tool at {url}"), "url": url, "reason": "We need this tool."}),
            )
            .await;
        expect_invalid_field(res, "url").await;
    }
    assert_eq!(
        f.app.count("SELECT COUNT(*) FROM tool_suggestions").await,
        0
    );
    let fact = json!({"learned": "!!! ??? ...", "why": "Punctuation only."});
    let res = f
        .app
        .post(
            &format!("/api/tools/{}/instructions/suggest", f.approved),
            &f.key,
            fact,
        )
        .await;
    expect_invalid_field(res, "learned").await;
    assert_eq!(
        f.app.count("SELECT COUNT(*) FROM guide_suggestions").await,
        0
    );
}
