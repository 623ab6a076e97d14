//! Auto-approval rules: agents carrying a rule's labels get the tool at once, for at most the
//! rule's length and read-only when it is proxied; everything else still waits for a human,
//! and a tool that always needs a human, needs several approvals or carries a secret per
//! grant is never approved by a rule (saving such a rule is refused).

mod common;

use app::model::{CredentialMode, GrantDuration, RequestStatus};
use app::server::ServiceError;
use app::server::service::grants;
use app::server::service::lifecycle::auto;
use common::{TestApp, json, spawn_app};
use serde_json::json;

fn hours(n: u32) -> Option<GrantDuration> {
    Some(GrantDuration::Minutes(n * 60))
}

async fn ask(app: &TestApp, key: &str, tool: &str, body: serde_json::Value) -> serde_json::Value {
    let res = app
        .post(&format!("/api/tools/{tool}/request"), key, body)
        .await;
    assert_eq!(res.status(), 201);
    json(res).await
}

async fn labelled(app: &TestApp, name: &str, labels: &str) -> String {
    let (agent, key) = app.create_agent(name).await;
    auto::set_agent_labels(&app.services, &app.admin, &agent.id, labels)
        .await
        .expect("labels");
    key
}

#[tokio::test]
async fn a_labelled_agent_is_approved_at_once_for_at_most_the_rules_length() {
    let app = spawn_app().await;
    let tool = app.create_shared_tool("Staging DB", None, "pg_pass").await;
    let rule = auto::add_rule(
        &app.services,
        &app.admin,
        &tool.id,
        "env:staging team:payments",
        hours(8),
    )
    .await
    .expect("rule");
    assert_eq!(rule.labels, ["env:staging", "team:payments"]);
    let key = labelled(&app, "pay-bot", "team:payments env:staging extra").await;
    let half = labelled(&app, "half-bot", "team:payments").await;

    let created = ask(
        &app,
        &key,
        &tool.id,
        json!({ "reason": "Run the migration", "duration": "7d" }),
    )
    .await;
    assert_eq!(created["status"], "approved", "{created}");
    assert_eq!(app.fetch(&key, &tool.id).await.status(), 200);
    let left = json(app.fetch(&key, &tool.id).await).await["grant_expires_in_seconds"]
        .as_i64()
        .expect("timed");
    assert!(
        left <= 8 * 3600 && left > 8 * 3600 - 60,
        "capped to the rule's 8 h: {left}"
    );
    let audited = app
        .count(&format!("SELECT COUNT(*) FROM audit_log WHERE action = 'grant.auto_approved' AND metadata LIKE '%{}%'", rule.id))
        .await;
    assert_eq!(audited, 1, "the audit row names the rule");
    let history = grants::list(&app.services, &app.admin, None, 10)
        .await
        .expect("list");
    let auto_row = history
        .iter()
        .find(|r| r.agent_name == "pay-bot")
        .expect("row");
    assert_eq!(auto_row.decided_by.as_deref(), Some("auto-approval"));
    assert!(
        auto_row
            .decision_note
            .as_deref()
            .is_some_and(|n| n.contains("env:staging"))
    );

    // One label short: a human decides.
    let created = ask(
        &app,
        &half,
        &tool.id,
        json!({ "reason": "Run the migration" }),
    )
    .await;
    assert_eq!(created["status"], "pending");
}

#[tokio::test]
async fn dangerous_tools_are_never_approved_by_a_rule() {
    let app = spawn_app().await;
    let stripe = app.create_shared_tool("Stripe", None, "sk_live").await;
    let key = labelled(&app, "pay-bot", "team:payments").await;
    auto::add_rule(
        &app.services,
        &app.admin,
        &stripe.id,
        "team:payments",
        hours(1),
    )
    .await
    .expect("rule");

    // Marked "always needs a human" after the rule was saved: the rule approves nothing.
    let marked = auto::set_always_human(&app.services, &app.admin, &stripe.id, true)
        .await
        .expect("mark");
    assert!(marked.always_human);
    let created = ask(
        &app,
        &key,
        &stripe.id,
        json!({ "reason": "Refund a customer" }),
    )
    .await;
    assert_eq!(created["status"], "pending");
    let rules = auto::list_rules(&app.services, &app.admin)
        .await
        .expect("rules");
    assert!(
        rules[0]
            .inactive
            .as_deref()
            .is_some_and(|w| w.contains("always needs a human")),
        "{rules:?}"
    );
    let err = auto::add_rule(
        &app.services,
        &app.admin,
        &stripe.id,
        "team:payments",
        hours(1),
    )
    .await
    .expect_err("refused at save");
    assert!(matches!(err, ServiceError::Conflict(_)), "{err:?}");

    // A quorum above one: refused at save, ignored if raised later.
    let github = app.create_shared_tool("GitHub", None, "ghp").await;
    auto::add_rule(
        &app.services,
        &app.admin,
        &github.id,
        "team:payments",
        hours(1),
    )
    .await
    .expect("rule");
    app.exec(&format!(
        "UPDATE tools SET approvals_required = 2 WHERE id = '{}'",
        github.id
    ))
    .await;
    let created = ask(
        &app,
        &key,
        &github.id,
        json!({ "reason": "Open a pull request" }),
    )
    .await;
    assert_eq!(created["status"], "pending");
    assert!(matches!(
        auto::add_rule(
            &app.services,
            &app.admin,
            &github.id,
            "team:payments",
            hours(1)
        )
        .await,
        Err(ServiceError::Conflict(_))
    ));

    // A secret per grant needs a reviewer to give it.
    let per_agent = app
        .create_tool("Vault", None, CredentialMode::PerAgent, None, None)
        .await;
    assert!(matches!(
        auto::add_rule(
            &app.services,
            &app.admin,
            &per_agent.id,
            "team:payments",
            hours(1)
        )
        .await,
        Err(ServiceError::Conflict(_))
    ));
    let pending = grants::list(&app.services, &app.admin, Some(RequestStatus::Pending), 10)
        .await
        .expect("list");
    assert_eq!(pending.len(), 2);
}

#[tokio::test]
async fn rules_and_labels_with_bad_fields_are_refused_without_a_change() {
    let app = spawn_app().await;
    let tool = app.create_shared_tool("Linear", None, "lin").await;
    let (agent, _) = app.create_agent("pm-bot").await;
    for bad in ["Team Payments!", "a:b:c", ":x", "ünicode", &"x".repeat(41)] {
        let err = auto::set_agent_labels(&app.services, &app.admin, &agent.id, bad)
            .await
            .expect_err(bad);
        assert!(format!("{err:?}").contains("labels"), "{bad}: {err:?}");
    }
    let many: Vec<String> = (0..11).map(|i| format!("l{i}")).collect();
    assert!(
        auto::set_agent_labels(&app.services, &app.admin, &agent.id, &many.join(" "))
            .await
            .is_err()
    );
    for (labels, max) in [
        ("", hours(1)),
        ("team:x", None),
        ("team:x", Some(GrantDuration::Standing)),
    ] {
        let err = auto::add_rule(&app.services, &app.admin, &tool.id, labels, max)
            .await
            .expect_err("bad rule");
        assert!(matches!(err, ServiceError::Invalid(_)), "{err:?}");
    }
    assert!(matches!(
        auto::add_rule(
            &app.services,
            &app.admin,
            "00000000-0000-7000-8000-000000000000",
            "team:x",
            hours(1)
        )
        .await,
        Err(ServiceError::NotFound(_))
    ));
    let other = app.other_org("Other").await;
    assert!(
        matches!(
            auto::add_rule(&app.services, &other, &tool.id, "team:x", hours(1)).await,
            Err(ServiceError::NotFound(_))
        ),
        "another organization's tool is not found"
    );
    assert_eq!(
        app.count("SELECT COUNT(*) FROM auto_approval_rules").await,
        0
    );
    assert_eq!(
        app.count("SELECT COUNT(*) FROM agents WHERE labels <> ''")
            .await,
        0
    );
}
