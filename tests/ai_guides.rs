//! AI-drafted usage guides over real HTTP: the dashboard's streaming server function, a real
//! chat-completions server on loopback (good, garbage, silent, failing), documentation pages
//! read through the guarded client, and the untrusted data fenced off in the prompt.

mod common;

use common::model::{DOCS_FACT, DOCS_INJECTION, GOOD_PARTS, Mode, Model};
use common::rpc::{rpc, sign_in};
use common::smtp::SmtpSink;
use common::{TestApp, spawn_app_with};
use serde_json::Value;

const KEY: &str = "sk-model-key-4bd1c0";

/// An app whose model is `model`, docs pages allowed on loopback, and a signed-in owner.
async fn app_with_model(model: &Model, extra: &[(&str, &str)]) -> (TestApp, String) {
    let sink = SmtpSink::start().await;
    let base = model.base();
    let mut vars = vec![
        ("AGENTKEY_SMTP_URL", sink.url()),
        ("AGENTKEY_AI_URL", base),
        ("AGENTKEY_AI_MODEL", "acme-coder".to_owned()),
        ("AGENTKEY_AI_KEY", KEY.to_owned()),
        ("AGENTKEY_TEST_LOOPBACK_WEBHOOKS", "1".to_owned()),
    ];
    vars.extend(extra.iter().map(|(k, v)| (*k, (*v).to_owned())));
    let refs: Vec<(&str, &str)> = vars.iter().map(|(k, v)| (*k, v.as_str())).collect();
    let app = spawn_app_with(&refs).await;
    let cookie = sign_in(&app, &sink).await;
    (app, cookie)
}

/// The frames of a draft's answer body, one JSON value per line.
fn frames(body: &str) -> Vec<Value> {
    body.lines()
        .map(|l| serde_json::from_str(l).unwrap_or_else(|_| panic!("not a frame: {l:?}")))
        .collect()
}

fn text_of(frames: &[Value]) -> String {
    frames.iter().filter_map(|f| f["text"].as_str()).collect()
}

#[tokio::test]
async fn without_a_configured_model_the_status_says_so_and_a_draft_is_a_503_with_a_hint() {
    let sink = SmtpSink::start().await;
    let app = spawn_app_with(&[("AGENTKEY_SMTP_URL", &sink.url())]).await;
    let cookie = sign_in(&app, &sink).await;
    let tool = app.create_shared_tool("Acme", None, "secret-1").await;

    let status = rpc(&app, "tools/ai", &[], Some(&cookie)).await;
    assert_eq!(status.status, 200, "{}", status.body);
    assert_eq!(status.json()["model"], Value::Null);

    let reply = rpc(
        &app,
        "tools/draft-guide",
        &[("id", &tool.id)],
        Some(&cookie),
    )
    .await;
    assert_eq!(reply.status, 503, "{}", reply.body);
    let body = reply.json();
    assert!(
        body["message"]
            .as_str()
            .expect("message")
            .contains("not set up")
    );
    assert!(
        body["hint"]
            .as_str()
            .expect("hint")
            .contains("AGENTKEY_AI_URL")
    );
}

#[tokio::test]
async fn a_draft_streams_the_models_text_from_fenced_untrusted_data_and_saves_nothing() {
    let model = Model::start().await;
    let (app, cookie) = app_with_model(&model, &[]).await;
    let tool = app
        .create_shared_tool("Acme", Some("https://acme.test"), "tool-secret-77")
        .await;
    let (_, key) = app.create_agent("triage-bot").await;
    let reason = "Triage issues for the support team";
    let res = app
        .post(
            &format!("/api/tools/{}/request", tool.id),
            &key,
            serde_json::json!({ "reason": reason }),
        )
        .await;
    assert_eq!(res.status(), 201);

    let status = rpc(&app, "tools/ai", &[], Some(&cookie)).await;
    assert_eq!(status.json()["model"], "acme-coder");
    let docs = model.url("/docs/moved");
    let reply = rpc(
        &app,
        "tools/draft-guide",
        &[("id", &tool.id), ("docs_url", &docs)],
        Some(&cookie),
    )
    .await;

    assert_eq!(reply.status, 200, "{}", reply.body);
    let frames = frames(&reply.body);
    assert_eq!(text_of(&frames), GOOD_PARTS.concat());
    assert_eq!(frames.last(), Some(&Value::from("done")), "{frames:?}");
    // What the model was sent: the configured model, a stream, the key as a bearer token.
    let requests = model.requests();
    assert_eq!(requests.len(), 1);
    let (headers, body) = &requests[0];
    assert_eq!(headers["authorization"], format!("Bearer {KEY}").as_str());
    assert_eq!(body["model"], "acme-coder");
    assert_eq!(body["stream"], true);
    let system = body["messages"][0]["content"].as_str().expect("system");
    let user = body["messages"][1]["content"].as_str().expect("user");
    assert!(
        system.contains("untrusted") && system.contains("do not comply"),
        "{system}"
    );
    // The docs text (after the redirect, without the script), the agent's reason and the
    // tool's name all sit between the two fence lines, which carry one random name.
    let fence_line = user
        .lines()
        .find(|l| l.starts_with("BEGIN UNTRUSTED DATA "))
        .expect("opening fence");
    let name = fence_line.trim_start_matches("BEGIN UNTRUSTED DATA ");
    assert!(
        name.len() >= 16,
        "the fence name is not random enough: {name}"
    );
    let open = user.find(fence_line).expect("open");
    let close = user
        .find(&format!("END UNTRUSTED DATA {name}"))
        .expect("close");
    for inside in [DOCS_FACT, DOCS_INJECTION, reason, "\"Acme\""] {
        let at = user
            .find(inside)
            .unwrap_or_else(|| panic!("{inside} missing: {user}"));
        assert!(open < at && at < close, "{inside} is outside the fence");
    }
    assert!(!user.contains("var secret"), "scripts are not page text");
    assert!(!user.contains("tool-secret-77") && !system.contains("tool-secret-77"));
    // Nothing was saved: the guide is the one the tool was created with.
    let tools = rpc(&app, "tools", &[], Some(&cookie)).await.json();
    let saved = tools
        .as_array()
        .expect("tools")
        .iter()
        .find(|t| t["id"] == tool.id.as_str())
        .expect("tool");
    assert_eq!(saved["instructions"], tool.instructions.as_str());
    assert_eq!(saved["instructions_version"], tool.instructions_version);
}

#[tokio::test]
async fn a_model_that_answers_garbage_or_an_error_ends_the_draft_with_a_sentence_and_no_key() {
    let model = Model::start().await;
    let (app, cookie) = app_with_model(&model, &[]).await;
    let tool = app.create_shared_tool("Acme", None, "s-1").await;
    let form = [("id", tool.id.as_str())];
    let draft = || rpc(&app, "tools/draft-guide", &form, Some(&cookie));

    model.set_mode(Mode::Garbage);
    let reply = draft().await;
    assert_eq!(reply.status, 200, "{}", reply.body);
    let got = frames(&reply.body);
    assert_eq!(got.len(), 1, "{got:?}");
    let error = got[0]["error"].as_str().expect("an error frame");
    assert!(error.contains("not a chat-completions stream"), "{error}");

    model.set_mode(Mode::EchoKey);
    let reply = draft().await;
    assert_eq!(reply.status, 502, "{}", reply.body);
    let message = reply.json()["message"]
        .as_str()
        .expect("message")
        .to_owned();
    assert!(message.contains("HTTP 401"), "{message}");
    assert!(message.contains("[redacted]"), "{message}");
    assert!(!reply.body.contains(KEY), "the key leaked: {}", reply.body);
    assert!(
        !common::captured_logs().contains(KEY),
        "the key is in the log"
    );

    // An error event inside the stream that quotes the key reaches the browser redacted.
    model.set_mode(Mode::StreamEchoKey);
    let reply = draft().await;
    assert_eq!(reply.status, 200, "{}", reply.body);
    let error = frames(&reply.body)[0]["error"]
        .as_str()
        .expect("error frame")
        .to_owned();
    assert!(
        error.contains("the model reported an error: invalid key Bearer [redacted]"),
        "{error}"
    );
    assert!(!reply.body.contains(KEY), "the key leaked: {}", reply.body);

    model.set_mode(Mode::Whole);
    let reply = draft().await;
    assert_eq!(text_of(&frames(&reply.body)), "## Whole answer\n");
}

#[tokio::test]
async fn a_silent_model_is_given_up_and_a_cancelled_draft_closes_the_models_connection() {
    let model = Model::start().await;
    let (app, cookie) = app_with_model(&model, &[("AGENTKEY_AI_TIMEOUT", "1")]).await;
    let tool = app.create_shared_tool("Acme", None, "s-1").await;
    model.set_mode(Mode::Hang);

    // Left alone, the draft ends after a second of silence with what arrived and a reason.
    let reply = rpc(
        &app,
        "tools/draft-guide",
        &[("id", &tool.id)],
        Some(&cookie),
    )
    .await;
    let got = frames(&reply.body);
    assert_eq!(text_of(&got), "## Authentication\n");
    let error = got
        .last()
        .and_then(|f| f["error"].as_str())
        .expect("error frame");
    assert!(error.contains("sent nothing for 1 s"), "{error}");
    assert!(model.wait_closed(1).await, "the model's stream stayed open");

    // Cancelled (the browser drops the response), the model's connection closes too.
    let mut res = app
        .client
        .post(app.url("/rpc/tools/draft-guide"))
        .header("origin", &app.base)
        .header("cookie", &cookie)
        .form(&[("id", tool.id.as_str())])
        .send()
        .await
        .expect("draft");
    let first = res.chunk().await.expect("first chunk").expect("some text");
    assert!(String::from_utf8_lossy(&first).contains("Authentication"));
    drop(res);
    assert!(
        model.wait_closed(2).await,
        "a cancelled draft kept the model's connection open"
    );
}

#[tokio::test]
async fn a_docs_page_that_redirects_to_a_private_address_is_refused_before_the_model_is_asked() {
    let model = Model::start().await;
    let (app, cookie) = app_with_model(&model, &[]).await;
    let tool = app.create_shared_tool("Acme", None, "s-1").await;
    let draft = |docs: String| {
        let (app, cookie, id) = (&app, cookie.clone(), tool.id.clone());
        async move {
            rpc(
                app,
                "tools/draft-guide",
                &[("id", &id), ("docs_url", &docs)],
                Some(&cookie),
            )
            .await
        }
    };

    let cases = [
        (
            model.url("/docs/private"),
            "169.254.169.254 is not a public address",
        ),
        (
            "http://10.1.2.3/docs".to_owned(),
            "10.1.2.3 is not a public address",
        ),
        (model.url("/docs/binary"), "not text or HTML"),
        ("ftp://acme.test/docs".to_owned(), "must use http or https"),
    ];
    for (docs, expected) in cases {
        let reply = draft(docs.clone()).await;
        assert_eq!(reply.status, 400, "{docs}: {}", reply.body);
        let body = reply.json();
        assert_eq!(body["fields"][0]["field"], "docs_url", "{body}");
        let text = body["fields"][0]["message"].as_str().expect("message");
        assert!(text.contains(expected), "{docs}: {text}");
    }
    assert!(model.docs_hits() >= 1, "the public page was read");
    assert!(model.requests().is_empty(), "the model was asked anyway");
}

#[tokio::test]
async fn drafting_needs_a_tool_of_ones_own_organization() {
    let model = Model::start().await;
    let (app, cookie) = app_with_model(&model, &[]).await;
    let other = app.other_org("Other").await;
    let theirs = app
        .create_tool_as(
            &other,
            "Theirs",
            None,
            app::model::AuthType::ApiKey,
            app::model::CredentialMode::Shared,
            Some("s-2"),
        )
        .await;
    for id in [
        theirs.id.as_str(),
        "00000000-0000-7000-8000-000000000000",
        "../etc",
    ] {
        let reply = rpc(&app, "tools/draft-guide", &[("id", id)], Some(&cookie)).await;
        assert_eq!(reply.status, 404, "{id}: {}", reply.body);
    }
    let reply = rpc(&app, "tools/draft-guide", &[("id", &theirs.id)], None).await;
    assert_eq!(reply.status, 401);
    assert!(model.requests().is_empty());
}
