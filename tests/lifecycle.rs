//! Grants that end by themselves: durations asked and approved within a tool's maximum,
//! renewal inside the last part of a grant, pending requests that expire unanswered, idle
//! grants revoked, all driven by the server's clock, which the tests move instead of waiting.
//! The maintenance pass is run directly (the worker runs the same pass once a minute), by two
//! instances at once where it matters.

mod common;

use std::time::Duration;

use app::model::{AlertEvent, ChannelKind, GrantDuration};
use app::server::service::lifecycle::sweep;
use app::server::service::{grants, notifications, tools};
use common::{TestApp, expect_invalid_field, json, spawn_app};
use serde_json::json;

const HOUR: Duration = Duration::from_secs(3600);
const MARGIN: Duration = Duration::from_millis(sweep::SKEW_MARGIN_MS as u64);

async fn ask(app: &TestApp, key: &str, tool: &str, body: serde_json::Value) -> reqwest::Response {
    app.post(&format!("/api/tools/{tool}/request"), key, body)
        .await
}

async fn catalog_entry(app: &TestApp, key: &str, tool: &str) -> serde_json::Value {
    let list = json(app.get("/api/tools", key).await).await;
    list["tools"]
        .as_array()
        .expect("tools")
        .iter()
        .find(|t| t["id"] == tool)
        .cloned()
        .expect("tool in catalog")
}

/// The owner receives alert mail for reminders.
async fn mail_reminders(app: &TestApp) {
    app.exec("UPDATE memberships SET email_alerts = 1").await;
    notifications::set_events(
        &app.services,
        &app.admin,
        ChannelKind::Email,
        &[AlertEvent::Reminder],
    )
    .await
    .expect("email events");
}

async fn reminder_mails(app: &TestApp) -> i64 {
    app.count("SELECT COUNT(*) FROM notification_outbox WHERE event = 'reminder'")
        .await
}

async fn actions(app: &TestApp, action: &str) -> i64 {
    app.count(&format!(
        "SELECT COUNT(*) FROM audit_log WHERE action = '{action}'"
    ))
    .await
}

#[tokio::test]
async fn malformed_or_out_of_range_durations_are_400s_naming_the_accepted_forms() {
    let app = spawn_app().await;
    let tool = app.create_shared_tool("Stripe", None, "sk_live_x").await;
    let (_, key) = app.create_agent("billing-bot").await;
    for bad in ["0h", "-1d", "99999d", "8 h", "８h", "1w", "", "08h"] {
        let res = ask(
            &app,
            &key,
            &tool.id,
            json!({ "reason": "Refund a customer", "duration": bad }),
        )
        .await;
        let body = expect_invalid_field(res, "duration").await;
        assert!(body.to_string().contains("30m, 8h or 7d"), "{bad}: {body}");
    }
    let res = ask(
        &app,
        &key,
        &tool.id,
        json!({ "reason": "Refund a customer", "duration": 8 }),
    )
    .await;
    assert_eq!(res.status(), 400, "a number is not a duration");
    assert_eq!(
        app.count("SELECT COUNT(*) FROM access_requests").await,
        0,
        "nothing was recorded"
    );
}

#[tokio::test]
async fn a_grant_lasts_what_was_asked_within_the_tools_maximum_and_then_expires() {
    let app = spawn_app().await;
    let tool = app.create_shared_tool("Stripe", None, "sk_live_x").await;
    tools::set_durations(
        &app.services,
        &app.admin,
        &tool.id,
        Some(GrantDuration::parse("8h").expect("as the test set up")),
        None,
    )
    .await
    .expect("durations");
    let (_, key) = app.create_agent("billing-bot").await;

    // Longer than the maximum: refused, saying the maximum.
    let res = ask(
        &app,
        &key,
        &tool.id,
        json!({ "reason": "Refund a customer", "duration": "7d" }),
    )
    .await;
    let body = expect_invalid_field(res, "duration").await;
    assert!(body.to_string().contains("at most 8 hours"), "{body}");

    let res = ask(
        &app,
        &key,
        &tool.id,
        json!({ "reason": "Refund a customer", "duration": "2h" }),
    )
    .await;
    assert_eq!(res.status(), 201);
    let id = json(res).await["request_id"]
        .as_str()
        .expect("as the test set up")
        .to_owned();
    let view = grants::list(&app.services, &app.admin, None, 10)
        .await
        .expect("list");
    assert_eq!(view[0].requested_duration, GrantDuration::parse("2h").ok());
    assert_eq!(view[0].max_duration, GrantDuration::parse("8h").ok());

    // The reviewer may not exceed the maximum, but may give more than asked within it.
    let too_long = grants::Approval {
        duration: Some(GrantDuration::Standing),
        ..Default::default()
    };
    let err = grants::approve_with(&app.services, &app.admin, &id, too_long)
        .await
        .expect_err("standing");
    assert!(
        format!("{err:?}").contains("maximum grant of 8 hours"),
        "{err:?}"
    );
    let four = grants::Approval {
        duration: GrantDuration::parse("4h").ok(),
        ..Default::default()
    };
    let approved = grants::approve_with(&app.services, &app.admin, &id, four)
        .await
        .expect("approve");
    assert_eq!(approved.granted_duration, GrantDuration::parse("4h").ok());

    let entry = catalog_entry(&app, &key, &tool.id).await;
    let left = entry["grant_expires_in_seconds"]
        .as_i64()
        .expect("seconds left");
    assert!((4 * 3600 - 60..=4 * 3600).contains(&left), "{entry}");
    let fetched = json(app.fetch(&key, &tool.id).await).await;
    assert!(
        fetched["grant_expires_in_seconds"]
            .as_i64()
            .expect("as the test set up")
            <= 4 * 3600,
        "{fetched}"
    );

    // Four hours later the grant has run out: the fetch is refused at once, and the
    // maintenance pass records it, once.
    app.services
        .clock
        .advance(4 * HOUR + Duration::from_secs(1));
    assert_eq!(app.fetch(&key, &tool.id).await.status(), 403);
    assert_eq!(
        sweep::run_once(&app.services)
            .await
            .expect("as the test set up")
            .grants_expired,
        0,
        "within the skew margin"
    );
    app.services.clock.advance(MARGIN);
    assert_eq!(
        sweep::run_once(&app.services)
            .await
            .expect("as the test set up")
            .grants_expired,
        1
    );
    assert_eq!(
        sweep::run_once(&app.services)
            .await
            .expect("as the test set up")
            .total(),
        0
    );
    assert_eq!(actions(&app, "grant.expired").await, 1);
    let entry = catalog_entry(&app, &key, &tool.id).await;
    assert_eq!(entry["your_access"], "expired");
    assert!(
        entry["hint"]
            .as_str()
            .expect("as the test set up")
            .contains("ran out"),
        "{entry}"
    );
}

#[tokio::test]
async fn without_an_ask_the_tools_default_applies_and_a_standing_tool_stays_standing() {
    let app = spawn_app().await;
    let capped = app.create_shared_tool("Stripe", None, "sk_live_x").await;
    tools::set_durations(
        &app.services,
        &app.admin,
        &capped.id,
        GrantDuration::parse("8h").ok(),
        GrantDuration::parse("1h").ok(),
    )
    .await
    .expect("durations");
    let err = tools::set_durations(
        &app.services,
        &app.admin,
        &capped.id,
        GrantDuration::parse("1h").ok(),
        GrantDuration::parse("8h").ok(),
    )
    .await
    .expect_err("default over max");
    assert!(format!("{err:?}").contains("default_duration"), "{err:?}");
    let open = app.create_shared_tool("Linear", None, "lin_x").await;
    let (_, key) = app.create_agent("pm-bot").await;
    app.grant(&key, &capped.id).await;
    app.grant(&key, &open.id).await;
    let capped_left =
        catalog_entry(&app, &key, &capped.id).await["grant_expires_in_seconds"].as_i64();
    assert!(
        capped_left.is_some_and(|s| s <= 3600 && s > 3500),
        "{capped_left:?}"
    );
    let entry = catalog_entry(&app, &key, &open.id).await;
    assert!(
        entry.get("grant_expires_at").is_none() && entry.get("grant_expires_in_seconds").is_none(),
        "{entry}"
    );
}

#[tokio::test]
async fn inside_the_renewal_window_asking_again_renews_without_a_gap() {
    let app = spawn_app().await;
    let tool = app.create_shared_tool("GitHub", None, "ghp_x").await;
    let (_, key) = app.create_agent("ci-bot").await;
    let res = ask(
        &app,
        &key,
        &tool.id,
        json!({ "reason": "Release the v2 branch", "duration": "8h" }),
    )
    .await;
    let id = json(res).await["request_id"]
        .as_str()
        .expect("as the test set up")
        .to_owned();
    app.approve(&id).await;
    let first_end = grants::list(&app.services, &app.admin, None, 1)
        .await
        .expect("as the test set up")[0]
        .expires_at
        .clone()
        .expect("as the test set up");

    // Too early: a 409 that says when renewal opens (the last quarter: 2 h before the end).
    let early = ask(&app, &key, &tool.id, json!({ "reason": "Still releasing" })).await;
    assert_eq!(early.status(), 409);
    let body = json(early).await;
    assert!(
        body["renewal_opens_at"].is_string() && body["grant_expires_at"] == first_end.as_str(),
        "{body}"
    );

    app.services.clock.advance(7 * HOUR);
    let entry = catalog_entry(&app, &key, &tool.id).await;
    assert!(
        entry["hint"]
            .as_str()
            .expect("as the test set up")
            .contains("renew"),
        "{entry}"
    );
    let res = ask(&app, &key, &tool.id, json!({ "reason": "Still releasing" })).await;
    assert_eq!(res.status(), 201);
    let created = json(res).await;
    assert_eq!(created["renewal"], true, "{created}");
    assert_eq!(created["request_id"], id.as_str());
    // A second renewal while one waits: 409; the grant keeps working meanwhile.
    assert_eq!(
        ask(&app, &key, &tool.id, json!({ "reason": "Still releasing" }))
            .await
            .status(),
        409
    );
    assert_eq!(app.fetch(&key, &tool.id).await.status(), 200);
    assert_eq!(
        catalog_entry(&app, &key, &tool.id).await["renewal"],
        "pending"
    );

    let renewed = grants::approve_with(&app.services, &app.admin, &id, Default::default())
        .await
        .expect("renew");
    let new_end =
        app::server::clock::parse_iso(renewed.expires_at.as_deref().expect("as the test set up"))
            .expect("as the test set up");
    let old_end = app::server::clock::parse_iso(&first_end).expect("as the test set up");
    assert_eq!(
        new_end - old_end,
        8 * 3_600_000,
        "extended from the old end, by the length it had"
    );
    assert_eq!(renewed.renewals, 1);
    assert!(renewed.renewal.is_none());
    assert_eq!(actions(&app, "grant.renewed").await, 1);

    // Past the first end it still works; a denied renewal lets the grant run out.
    app.services.clock.advance(2 * HOUR);
    assert_eq!(app.fetch(&key, &tool.id).await.status(), 200);
    app.services.clock.advance(5 * HOUR);
    assert_eq!(
        ask(&app, &key, &tool.id, json!({ "reason": "One more day" }))
            .await
            .status(),
        201
    );
    grants::deny(&app.services, &app.admin, &id, Some("Release is done"))
        .await
        .expect("deny");
    let entry = catalog_entry(&app, &key, &tool.id).await;
    assert_eq!(entry["renewal"], "denied");
    assert_eq!(entry["renewal_denial_reason"], "Release is done");
    assert_eq!(
        entry["your_access"], "approved",
        "it runs out at its end, not before"
    );
    app.services.clock.advance(2 * HOUR);
    assert_eq!(app.fetch(&key, &tool.id).await.status(), 403);
}

#[tokio::test]
async fn a_request_nobody_decides_expires_after_seven_days_once() {
    let app = spawn_app().await;
    let tool = app.create_shared_tool("Notion", None, "secret_x").await;
    let (_, key) = app.create_agent("docs-bot").await;
    app.request_access(&key, &tool.id).await;
    app.services.clock.advance(6 * 24 * HOUR);
    assert_eq!(
        sweep::run_once(&app.services)
            .await
            .expect("as the test set up")
            .pending_expired,
        0
    );
    app.services.clock.advance(24 * HOUR + MARGIN);
    assert_eq!(
        sweep::run_once(&app.services)
            .await
            .expect("as the test set up")
            .pending_expired,
        1
    );
    assert_eq!(
        sweep::run_once(&app.services)
            .await
            .expect("as the test set up")
            .total(),
        0,
        "idempotent"
    );
    assert_eq!(actions(&app, "grant.request_expired").await, 1);
    let entry = catalog_entry(&app, &key, &tool.id).await;
    assert_eq!(entry["your_access"], "expired");
    assert!(
        entry["hint"]
            .as_str()
            .expect("as the test set up")
            .contains("Ask again"),
        "{entry}"
    );
    // Asking again works.
    app.request_access(&key, &tool.id).await;
}

#[tokio::test]
async fn an_unused_grant_is_revoked_when_the_organization_sets_an_idle_limit() {
    let app = spawn_app().await;
    let used = app.create_shared_tool("GitHub", None, "ghp_x").await;
    let unused = app.create_shared_tool("Linear", None, "lin_x").await;
    let (_, key) = app.create_agent("ci-bot").await;
    app.grant(&key, &used.id).await;
    app.grant(&key, &unused.id).await;
    // Off by default: nothing is idle.
    app.services.clock.advance(40 * 24 * HOUR);
    assert_eq!(
        sweep::run_once(&app.services)
            .await
            .expect("as the test set up")
            .idle_revoked,
        0
    );
    app.exec(&format!(
        "UPDATE organizations SET idle_revoke_days = 30 WHERE id = '{}'",
        app.org_id
    ))
    .await;
    assert_eq!(app.fetch(&key, &used.id).await.status(), 200);
    app.services.clock.advance(MARGIN);
    let swept = sweep::run_once(&app.services)
        .await
        .expect("as the test set up");
    assert_eq!(
        swept.idle_revoked, 1,
        "only the grant nobody fetched: {swept:?}"
    );
    assert_eq!(actions(&app, "grant.revoked_idle").await, 1);
    assert_eq!(
        catalog_entry(&app, &key, &unused.id).await["your_access"],
        "revoked"
    );
    assert_eq!(
        catalog_entry(&app, &key, &used.id).await["your_access"],
        "approved"
    );
}

#[tokio::test]
async fn two_instances_sweeping_together_act_on_each_row_once_and_a_fast_clock_acts_not_early() {
    let app = spawn_app().await;
    let other = app.second_instance(&[]).await;
    mail_reminders(&app).await;
    let tool = app.create_shared_tool("Notion", None, "secret_x").await;
    let mut keys = Vec::new();
    for i in 0..6 {
        let (_, key) = app.create_agent(&format!("bot-{i}")).await;
        app.request_access(&key, &tool.id).await;
        keys.push(key);
    }
    // The other instance's clock runs a minute fast: at exactly seven days by this one, it
    // must not expire anything yet.
    other.services.clock.advance(Duration::from_secs(60));
    app.services.clock.advance(7 * 24 * HOUR);
    other.services.clock.advance(7 * 24 * HOUR);
    // Both remind at once of the requests waiting over a day: one reminder each, in all.
    let (a, b) = tokio::join!(
        sweep::run_once(&app.services),
        sweep::run_once(&other.services)
    );
    let (a, b) = (a.expect("first"), b.expect("second"));
    assert_eq!(
        a.pending_expired + b.pending_expired,
        0,
        "not due yet by either: {a:?} {b:?}"
    );
    assert_eq!(a.reminders + b.reminders, 6, "{a:?} {b:?}");
    assert_eq!(
        reminder_mails(&app).await,
        6,
        "one mail per waiting request"
    );
    app.services.clock.advance(MARGIN);
    other.services.clock.advance(MARGIN);
    let (a, b) = tokio::join!(
        sweep::run_once(&app.services),
        sweep::run_once(&other.services)
    );
    let (a, b) = (a.expect("first"), b.expect("second"));
    assert_eq!(a.reminders + b.reminders, 0, "reminded once only");
    assert_eq!(a.pending_expired + b.pending_expired, 6, "{a:?} {b:?}");
    assert_eq!(actions(&app, "grant.request_expired").await, 6);
    assert_eq!(
        app.count("SELECT COUNT(*) FROM access_requests WHERE status = 'expired'")
            .await,
        6
    );
    other.stop().await;
}

#[tokio::test]
async fn reviewers_are_reminded_once_when_a_grant_enters_its_last_quarter() {
    let app = spawn_app().await;
    mail_reminders(&app).await;
    let tool = app.create_shared_tool("GitHub", None, "ghp_x").await;
    let (_, key) = app.create_agent("ci-bot").await;
    let body = json!({ "reason": "Release the v2 branch", "duration": "8h" });
    let id = json(ask(&app, &key, &tool.id, body).await).await["request_id"]
        .as_str()
        .expect("id")
        .to_owned();
    app.approve(&id).await;
    app.services.clock.advance(5 * HOUR);
    let pass = sweep::run_once(&app.services).await.expect("pass");
    assert_eq!(pass.reminders, 0, "not yet");
    app.services.clock.advance(HOUR + Duration::from_secs(1));
    assert_eq!(
        sweep::run_once(&app.services)
            .await
            .expect("pass")
            .reminders,
        1
    );
    assert_eq!(
        sweep::run_once(&app.services)
            .await
            .expect("pass")
            .reminders,
        0
    );
    assert_eq!(reminder_mails(&app).await, 1);
    // An approved renewal starts a new window, which reminds again.
    let renew = json!({ "reason": "Still releasing" });
    assert_eq!(ask(&app, &key, &tool.id, renew).await.status(), 201);
    grants::approve_with(&app.services, &app.admin, &id, Default::default())
        .await
        .expect("renew");
    // Renewed at 6 h to end at 16 h: its last quarter starts at 13.5 h.
    app.services.clock.advance(7 * HOUR);
    assert_eq!(
        sweep::run_once(&app.services)
            .await
            .expect("pass")
            .reminders,
        0
    );
    app.services.clock.advance(HOUR);
    assert_eq!(
        sweep::run_once(&app.services)
            .await
            .expect("pass")
            .reminders,
        1
    );
    assert_eq!(reminder_mails(&app).await, 2);
}

#[tokio::test]
async fn the_exposure_ledger_says_who_saw_which_version_and_outlives_the_agent() {
    use app::server::service::lifecycle::exposure;
    let app = spawn_app().await;
    let tool = app.create_shared_tool("GitHub", None, "ghp_first").await;
    let (seer, seer_key) = app.create_agent("seer").await;
    let (_, other_key) = app.create_agent("other").await;
    let seer_grant = app.grant(&seer_key, &tool.id).await;
    app.grant(&other_key, &tool.id).await;
    for _ in 0..3 {
        assert_eq!(app.fetch(&seer_key, &tool.id).await.status(), 200);
    }
    assert_eq!(app.fetch(&other_key, &tool.id).await.status(), 200);

    let ledger = exposure::for_tool(&app.services, &app.admin, &tool.id)
        .await
        .expect("ledger");
    assert_eq!(
        ledger.entries.len(),
        2,
        "one row per agent and version: {ledger:?}"
    );
    assert!(
        ledger
            .entries
            .iter()
            .all(|e| e.version == 1 && e.secret == "shared" && e.fetched_first_at.is_some())
    );

    // Revoked after it fetched the current secret: rotate? One other agent holds it.
    grants::revoke(&app.services, &app.admin, &seer_grant, Some("done"))
        .await
        .expect("revoke");
    let advice = exposure::rotation_advice(&app.services, &app.admin, &seer.id, Some(&tool.id))
        .await
        .expect("advice");
    assert_eq!(advice.len(), 1, "{advice:?}");
    assert_eq!((advice[0].version, advice[0].others_holding), (1, 1));
    assert_eq!(advice[0].agent_name, "seer");

    // Deleted, the agent is still in the ledger; once rotated, nothing current was seen.
    app::server::service::agents::delete(&app.services, &app.admin, &seer.id)
        .await
        .expect("delete");
    let ledger = exposure::for_tool(&app.services, &app.admin, &tool.id)
        .await
        .expect("ledger");
    let seen = ledger
        .entries
        .iter()
        .find(|e| e.agent_name == "seer")
        .expect("kept");
    assert!(!seen.holds_grant);
    tools::set_credential(
        &app.services,
        &app.admin,
        &tool.id,
        "ghp_second".to_owned().into(),
        None,
    )
    .await
    .expect("rotate");
    let advice = exposure::rotation_advice(&app.services, &app.admin, &seer.id, None)
        .await
        .expect("advice");
    assert!(advice.is_empty(), "{advice:?}");
}

#[tokio::test]
async fn a_renewal_keeps_a_time_bound_grant_time_bound_and_a_denied_one_is_not_asked_again() {
    let app = spawn_app().await;
    let tool = app.create_shared_tool("GitHub", None, "ghp_x").await;
    let (_, key) = app.create_agent("ci-bot").await;
    // A grant given an end without a length (as the CLI's --expires-at did): renewing it
    // gives the span it had, never standing.
    let id = app.request_access(&key, &tool.id).await;
    grants::approve(
        &app.services,
        &app.admin,
        &id,
        None,
        Some(common::now_ms() + 4 * 3_600_000),
    )
    .await
    .expect("approve");
    app.services
        .clock
        .advance(3 * HOUR + Duration::from_secs(30));
    assert_eq!(
        ask(&app, &key, &tool.id, json!({ "reason": "Still needed" }))
            .await
            .status(),
        201
    );
    let pending = grants::list(
        &app.services,
        &app.admin,
        Some(app::model::RequestStatus::Pending),
        10,
    )
    .await
    .expect("inbox");
    assert_eq!(pending.len(), 1, "the renewal waits in the inbox");
    assert_eq!(pending[0].offered_duration, GrantDuration::parse("4h").ok());
    let renewed = grants::approve_with(&app.services, &app.admin, &id, Default::default())
        .await
        .expect("renew");
    assert!(
        renewed.expires_at.is_some(),
        "still time-bound: {renewed:?}"
    );
    // Denied, the renewal is not asked again (reviewers are not pestered). Renewed at 3.5 h
    // to end at 8 h, its window opens at 6.9 h.
    app.services.clock.advance(4 * HOUR);
    assert_eq!(
        ask(&app, &key, &tool.id, json!({ "reason": "Once more" }))
            .await
            .status(),
        201
    );
    grants::deny(&app.services, &app.admin, &id, Some("Enough"))
        .await
        .expect("deny");
    let again = ask(&app, &key, &tool.id, json!({ "reason": "Please" })).await;
    assert_eq!(again.status(), 409);
    assert!(
        json(again).await["error"]
            .as_str()
            .expect("error")
            .contains("Enough")
    );
    // A suspended agent's grant is not renewed.
    let (_, other_key) = app.create_agent("other-bot").await;
    let body = json!({ "reason": "Nightly sync", "duration": "8h" });
    let other = json(ask(&app, &other_key, &tool.id, body).await).await["request_id"]
        .as_str()
        .expect("id")
        .to_owned();
    app.approve(&other).await;
    app.services.clock.advance(7 * HOUR);
    assert_eq!(
        ask(
            &app,
            &other_key,
            &tool.id,
            json!({ "reason": "More time please" })
        )
        .await
        .status(),
        201
    );
    let other_agent = grants::list(&app.services, &app.admin, None, 20)
        .await
        .expect("list")
        .into_iter()
        .find(|r| r.id == other)
        .expect("row")
        .agent_id;
    app::server::service::agents::set_status(
        &app.services,
        &app.admin,
        &other_agent,
        app::model::AgentStatus::Suspended,
        None,
    )
    .await
    .expect("suspend");
    let err = grants::approve_with(&app.services, &app.admin, &other, Default::default())
        .await
        .expect_err("suspended");
    assert!(format!("{err:?}").contains("suspended"), "{err:?}");
}
