//! Access reviews: every live grant in scope gets a reviewer's keep or revoke; closing revokes
//! what was marked revoke and what nobody confirmed (when the review says so), records each
//! outcome, audits every step, and the evidence exports as CSV.

mod common;

use app::server::ServiceError;
use app::server::service::lifecycle::reviews::{self, Scope};
use common::spawn_app;

#[tokio::test]
async fn a_review_keeps_what_was_confirmed_and_revokes_the_rest() {
    let app = spawn_app().await;
    let github = app.create_shared_tool("GitHub", None, "ghp_x").await;
    let linear = app.create_shared_tool("Linear", None, "lin_x").await;
    let (_, keep_key) = app.create_agent("keeper").await;
    let (_, drop_key) = app.create_agent("dropper").await;
    let (_, idle_key) = app.create_agent("forgotten").await;
    app.grant(&keep_key, &github.id).await;
    app.grant(&drop_key, &github.id).await;
    app.grant(&idle_key, &linear.id).await;

    let review = reviews::start(&app.services, &app.admin, Scope::All, true)
        .await
        .expect("start");
    assert_eq!(
        (review.total, review.decided, review.status.as_str()),
        (3, 0, "open")
    );
    assert!(
        review
            .items
            .iter()
            .all(|i| i.reviewer == "owner@example.com"),
        "{:?}",
        review.items
    );
    let item = |name: &str| {
        review
            .items
            .iter()
            .find(|i| i.agent_name == name)
            .expect("item")
            .id
            .clone()
    };

    // Revoking needs a note; keeping does not.
    let err = reviews::decide(&app.services, &app.admin, &item("dropper"), false, None)
        .await
        .expect_err("note");
    assert!(matches!(err, ServiceError::Invalid(_)), "{err:?}");
    reviews::decide(&app.services, &app.admin, &item("keeper"), true, None)
        .await
        .expect("keep");
    let after = reviews::decide(
        &app.services,
        &app.admin,
        &item("dropper"),
        false,
        Some("Project ended"),
    )
    .await
    .expect("revoke");
    assert_eq!(after.decided, 2);
    // Decisions take effect at close.
    assert_eq!(app.fetch(&drop_key, &github.id).await.status(), 200);

    let closed = reviews::close(&app.services, &app.admin, &review.id)
        .await
        .expect("close");
    assert_eq!(closed.status, "closed");
    let outcome = |name: &str| {
        closed
            .items
            .iter()
            .find(|i| i.agent_name == name)
            .and_then(|i| i.outcome.clone())
    };
    assert_eq!(outcome("keeper").as_deref(), Some("kept"));
    assert_eq!(outcome("dropper").as_deref(), Some("revoked"));
    assert_eq!(
        outcome("forgotten").as_deref(),
        Some("revoked"),
        "not confirmed: revoked as the review said"
    );
    assert_eq!(app.fetch(&keep_key, &github.id).await.status(), 200);
    assert_eq!(app.fetch(&drop_key, &github.id).await.status(), 403);
    assert_eq!(app.fetch(&idle_key, &linear.id).await.status(), 403);

    // Closed is final; the evidence is in the log and in the CSV.
    assert!(matches!(
        reviews::decide(&app.services, &app.admin, &item("forgotten"), true, None).await,
        Err(ServiceError::Conflict(_))
    ));
    assert!(matches!(
        reviews::close(&app.services, &app.admin, &review.id).await,
        Err(ServiceError::Conflict(_))
    ));
    for action in ["review.started", "review.item_decided", "review.closed"] {
        let n = app
            .count(&format!(
                "SELECT COUNT(*) FROM audit_log WHERE action = '{action}'"
            ))
            .await;
        assert!(n >= 1, "{action}");
    }
    assert_eq!(
        app.count("SELECT COUNT(*) FROM audit_log WHERE action = 'grant.revoked'")
            .await,
        2
    );
    let csv = reviews::csv(&app.services, &app.admin, &review.id)
        .await
        .expect("csv");
    let lines: Vec<&str> = csv.trim_end().lines().collect();
    assert_eq!(lines.len(), 4, "{csv}");
    assert!(lines[0].starts_with("review_id,scope,"));
    assert!(
        csv.contains("\"dropper\",\"GitHub\"")
            && csv.contains("\"Project ended\"")
            && csv.contains("\"kept\""),
        "{csv}"
    );

    // Another organization sees none of it.
    let other = app.other_org("Other").await;
    assert!(matches!(
        reviews::get(&app.services, &other, &review.id).await,
        Err(ServiceError::NotFound(_))
    ));
    assert!(matches!(
        reviews::csv(&app.services, &other, &review.id).await,
        Err(ServiceError::NotFound(_))
    ));
}

#[tokio::test]
async fn a_review_of_one_tool_takes_only_its_grants_and_can_keep_the_unconfirmed() {
    let app = spawn_app().await;
    let github = app.create_shared_tool("GitHub", None, "ghp_x").await;
    let linear = app.create_shared_tool("Linear", None, "lin_x").await;
    let (_, key) = app.create_agent("bot").await;
    app.grant(&key, &github.id).await;
    app.grant(&key, &linear.id).await;
    let review = reviews::start(&app.services, &app.admin, Scope::Tool(&github.id), false)
        .await
        .expect("start");
    assert_eq!(review.total, 1);
    assert_eq!(review.scope_name, "GitHub");
    let closed = reviews::close(&app.services, &app.admin, &review.id)
        .await
        .expect("close");
    assert_eq!(closed.items[0].outcome.as_deref(), Some("kept"));
    assert_eq!(app.fetch(&key, &github.id).await.status(), 200);
    // Nothing to review: a clear 409, nothing written.
    let empty = app.create_shared_tool("Notion", None, "n").await;
    assert!(matches!(
        reviews::start(&app.services, &app.admin, Scope::Tool(&empty.id), true).await,
        Err(ServiceError::Conflict(_))
    ));
    assert!(matches!(
        reviews::start(&app.services, &app.admin, Scope::Agent("not-an-id"), true).await,
        Err(ServiceError::NotFound(_))
    ));
    assert_eq!(app.count("SELECT COUNT(*) FROM access_reviews").await, 1);
}
