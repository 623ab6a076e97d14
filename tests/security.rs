//! Security properties: the audit hash chain and its completeness, secrets that never leak
//! (logs, admin results, error bodies, the database file), blobs bound to their row, a
//! credential cache that never outlives a change made elsewhere, and the master key check.

mod common;

use std::collections::HashSet;

use app::model::{
    ActorType, AgentStatus, AuditEvent, CredentialMode, RequestStatus, SuggestionStatus,
};
use app::server::service::actor::AdminCtx;
use app::server::service::{agents, audit, grants, suggestions, tools};
use app::server::store::audit::AuditFilter;
use common::{TestApp, captured_logs, expect_error, json, now_ms, spawn_app};
use secrecy::SecretString;
use serde_json::json;

async fn audit_rows(app: &TestApp) -> Vec<AuditEvent> {
    audit::list(&app.services, &app.admin, &AuditFilter::default(), 1000)
        .await
        .expect("audit list")
}

async fn count_action(app: &TestApp, action: &str) -> i64 {
    app.count(&format!(
        "SELECT COUNT(*) FROM audit_log WHERE action = '{action}'"
    ))
    .await
}

/// A flow touching most audited actions; returns (agent key, tool id, request id).
async fn run_flow(app: &TestApp) -> (String, String, String) {
    let (agent, key) = app.create_agent("audited-bot").await;
    let tool = app
        .create_shared_tool("GitHub", Some("github.com"), "ghp_audit_flow_secret")
        .await;
    let other = app
        .create_shared_tool("Sentry", Some("sentry.io"), "sntrys_audit_flow")
        .await;
    let request_id = app.grant(&key, &tool.id).await;
    assert_eq!(app.fetch(&key, &tool.id).await.status(), 200);
    assert_eq!(app.fetch(&key, &tool.id).await.status(), 200);
    let denied = app.request_access(&key, &other.id).await;
    grants::deny(&app.services, &app.admin, &denied, Some("not needed"))
        .await
        .expect("deny");
    let res = app
        .post(
            "/api/tools/suggest",
            &key,
            json!({"name": "Notion", "url": "notion.so", "reason": "Team docs live there"}),
        )
        .await;
    assert_eq!(res.status(), 201);
    let res = app
        .post(
            &format!("/api/tools/{}/instructions/suggest", tool.id),
            &key,
            json!({"learned": "Use fine-grained tokens", "why": "Org policy"}),
        )
        .await;
    assert_eq!(res.status(), 201);
    tools::set_credential(
        &app.services,
        &app.admin,
        &tool.id,
        SecretString::from("ghp_audit_flow_rotated".to_owned()),
        None,
    )
    .await
    .expect("rotate");
    agents::set_status(
        &app.services,
        &app.admin,
        &agent.id,
        AgentStatus::Suspended,
        None,
    )
    .await
    .expect("suspend");
    for _ in 0..8 {
        expect_error(app.fetch(&key, &tool.id).await, 403).await;
        expect_error(app.get("/api/tools", &key).await, 403).await;
    }
    agents::set_status(
        &app.services,
        &app.admin,
        &agent.id,
        AgentStatus::Active,
        None,
    )
    .await
    .expect("reactivate");
    grants::revoke(&app.services, &app.admin, &request_id, Some("done"))
        .await
        .expect("revoke");
    let issued = agents::rotate_key(&app.services, &app.admin, &agent.id)
        .await
        .expect("rotate key");
    (issued.api_key, tool.id, request_id)
}

// ---- audit chain --------------------------------------------------------------------------

#[tokio::test]
async fn every_action_of_a_flow_is_audited_and_the_chain_verifies_intact() {
    let app = spawn_app().await;
    let (_key, tool_id, request_id) = run_flow(&app).await;

    let rows = audit_rows(&app).await;
    let report = audit::verify(&app.services, &app.admin)
        .await
        .expect("verify");

    assert_eq!(report.broken_at_seq, None, "{report:?}");
    assert_eq!(report.rows_checked, rows.len() as i64);
    let actions: HashSet<&str> = rows.iter().map(|r| r.action.as_str()).collect();
    for expected in [
        "organization.created",
        "agent.created",
        "tool.created",
        "grant.requested",
        "grant.approved",
        "credential.vended",
        "grant.denied",
        "tool_suggestion.created",
        "guide_suggestion.created",
        "tool.credential_rotated",
        "agent.suspended",
        "auth.rejected_suspended",
        "agent.reactivated",
        "grant.revoked",
        "agent.key_rotated",
    ] {
        assert!(
            actions.contains(expected),
            "no {expected} row in {actions:?}"
        );
    }
    assert_eq!(
        count_action(&app, "credential.vended").await,
        2,
        "one row per released credential"
    );
    assert_eq!(
        count_action(&app, "auth.rejected_suspended").await,
        1,
        "16 refused calls, audited once a minute"
    );
    let seqs: Vec<i64> = rows.iter().map(|r| r.seq).collect();
    assert_eq!(
        seqs,
        (1..=rows.len() as i64).rev().collect::<Vec<_>>(),
        "gapless, newest first"
    );
    let vended = rows
        .iter()
        .find(|r| r.action == "credential.vended")
        .expect("vended");
    assert_eq!(vended.actor_type, ActorType::Agent);
    assert_eq!(vended.tool_id.as_deref(), Some(tool_id.as_str()));
    assert_eq!(vended.metadata["request_id"], request_id.as_str());
    assert_eq!(vended.ip.as_deref(), Some("127.0.0.1"));
    let approved = rows
        .iter()
        .find(|r| r.action == "grant.approved")
        .expect("approved");
    assert_eq!(approved.actor_type, ActorType::Human);
    assert_eq!(approved.target_id.as_deref(), Some(request_id.as_str()));
}

#[tokio::test]
async fn editing_an_audit_row_breaks_the_chain_at_that_row() {
    for column in [
        "metadata = '{\"reason\":\"nothing to see\"}'",
        "actor_label = 'someone-else'",
        "created_at = created_at + 1",
        "action = 'grant.denied'",
        // Not a value the application writes: still reported as a broken chain, not a failure.
        "actor_type = 'root'",
    ] {
        let app = spawn_app().await;
        run_flow(&app).await;
        let seq: i64 =
            sqlx::query_scalar("SELECT seq FROM audit_log WHERE action = 'grant.approved'")
                .fetch_one(&mut app.raw_db().await)
                .await
                .expect("seq");
        app.drop_trigger("audit_log_no_update", "audit_log").await;

        app.exec(&format!(
            "UPDATE audit_log SET {column} WHERE seq = {seq} AND organization_id = '{}'",
            app.org_id
        ))
        .await;

        let report = audit::verify(&app.services, &app.admin)
            .await
            .expect("verify");
        assert_eq!(report.broken_at_seq, Some(seq), "{column}: {report:?}");
        assert!(report.problem.is_some());
        assert!(
            audit_rows(&app).await.len() > 1,
            "{column}: the log still lists"
        );
        app.stop().await;
    }
}

#[tokio::test]
async fn deleting_the_last_audit_row_is_detected() {
    let app = spawn_app().await;
    run_flow(&app).await;
    let last = app
        .count(&format!(
            "SELECT MAX(seq) FROM audit_log WHERE organization_id = '{}'",
            app.org_id
        ))
        .await;
    app.drop_trigger("audit_log_no_delete", "audit_log").await;

    app.exec(&format!(
        "DELETE FROM audit_log WHERE seq = {last} AND organization_id = '{}'",
        app.org_id
    ))
    .await;

    let report = audit::verify(&app.services, &app.admin)
        .await
        .expect("verify");
    assert_eq!(report.broken_at_seq, Some(last), "{report:?}");
}

#[tokio::test]
async fn deleting_a_middle_audit_row_is_detected_at_the_gap() {
    let app = spawn_app().await;
    run_flow(&app).await;
    app.drop_trigger("audit_log_no_delete", "audit_log").await;

    app.exec(&format!(
        "DELETE FROM audit_log WHERE seq = 3 AND organization_id = '{}'",
        app.org_id
    ))
    .await;

    let report = audit::verify(&app.services, &app.admin)
        .await
        .expect("verify");
    assert_eq!(report.broken_at_seq, Some(3), "{report:?}");
}

#[tokio::test]
async fn audit_rows_cannot_be_updated_or_deleted_while_the_triggers_exist() {
    let app = spawn_app().await;
    run_flow(&app).await;
    let before = app.count("SELECT COUNT(*) FROM audit_log").await;
    let mut db = app.raw_db().await;

    let update = sqlx::query("UPDATE audit_log SET actor_label = 'x' WHERE seq = 2")
        .execute(&mut db)
        .await;
    let delete = sqlx::query("DELETE FROM audit_log WHERE seq = 2")
        .execute(&mut db)
        .await;
    let delete_all = sqlx::query("DELETE FROM audit_log").execute(&mut db).await;

    for result in [update, delete, delete_all] {
        let err = result.expect_err("the trigger refuses");
        assert!(err.to_string().contains("append-only"), "{err}");
    }
    assert_eq!(app.count("SELECT COUNT(*) FROM audit_log").await, before);
    assert_eq!(
        audit::verify(&app.services, &app.admin)
            .await
            .expect("verify")
            .broken_at_seq,
        None
    );
}

#[tokio::test]
async fn a_credential_is_vended_only_with_its_credential_vended_row() {
    let app = spawn_app().await;
    let (agent, key) = app.create_agent("counted-bot").await;
    let tool = app
        .create_shared_tool("Stripe", Some("stripe.com"), "sk_vend_count")
        .await;
    let not_granted = app
        .create_shared_tool("Plaid", Some("plaid.com"), "plaid_vend_count")
        .await;
    app.grant(&key, &tool.id).await;

    let mut released = 0;
    for _ in 0..5 {
        let res = app.fetch(&key, &tool.id).await;
        if res.status() == 200 && json(res).await["credential"] == "sk_vend_count" {
            released += 1;
        }
        expect_error(app.fetch(&key, &not_granted.id).await, 403).await;
    }

    assert_eq!(released, 5);
    let filter = AuditFilter {
        action: Some("credential.vended".into()),
        ..AuditFilter::default()
    };
    let rows = audit::list(&app.services, &app.admin, &filter, 100)
        .await
        .expect("list");
    assert_eq!(
        rows.len(),
        released,
        "exactly one row per released credential, none for refusals"
    );
    assert!(
        rows.iter()
            .all(|r| r.agent_id.as_deref() == Some(agent.id.as_str())
                && r.tool_id.as_deref() == Some(tool.id.as_str()))
    );
    assert!(
        rows.iter()
            .all(|r| !r.metadata.to_string().contains("sk_vend_count")),
        "the secret is never in the log"
    );
}

#[tokio::test]
async fn suspended_calls_are_audited_at_most_once_a_minute_per_agent() {
    let app = spawn_app().await;
    let (a, key_a) = app.create_agent("suspended-a").await;
    let (b, key_b) = app.create_agent("suspended-b").await;
    for agent in [&a, &b] {
        agents::set_status(
            &app.services,
            &app.admin,
            &agent.id,
            AgentStatus::Suspended,
            None,
        )
        .await
        .expect("suspend");
    }

    for _ in 0..20 {
        expect_error(app.get("/api/me", &key_a).await, 403).await;
    }
    expect_error(app.get("/api/me", &key_b).await, 403).await;

    let filter = AuditFilter {
        action: Some("auth.rejected_suspended".into()),
        ..AuditFilter::default()
    };
    let rows = audit::list(&app.services, &app.admin, &filter, 100)
        .await
        .expect("list");
    let agents: HashSet<_> = rows.iter().filter_map(|r| r.agent_id.clone()).collect();
    assert_eq!(rows.len(), 2, "one per agent");
    assert_eq!(agents, HashSet::from([a.id.clone(), b.id.clone()]));
}

// ---- secrets never leak -------------------------------------------------------------------

#[tokio::test]
async fn secrets_never_reach_logs_admin_results_error_bodies_or_the_database_file() {
    let app = spawn_app().await;
    let shared = "sk_live_LEAKCHECK_shared_8f3a91";
    let per_agent = "pw_LEAKCHECK_peragent_19c2b7";
    let rotated = "sk_live_LEAKCHECK_rotated_77d1";
    let (agent, key) = app.create_agent("leak-bot").await;
    let (_other, other_key) = app.create_agent("leak-bot-2").await;
    let tool = app
        .create_shared_tool("LeakShared", Some("leak-shared.example"), shared)
        .await;
    let personal = app
        .create_tool(
            "LeakPersonal",
            Some("leak-personal.example"),
            CredentialMode::PerAgent,
            None,
            None,
        )
        .await;
    let shared_req = app.grant(&key, &tool.id).await;
    let personal_req = app.request_access(&key, &personal.id).await;
    grants::approve(
        &app.services,
        &app.admin,
        &personal_req,
        Some(SecretString::from(per_agent.to_owned())),
        None,
    )
    .await
    .expect("approve");
    assert_eq!(
        json(app.fetch(&key, &tool.id).await).await["credential"],
        shared
    );
    assert_eq!(
        json(app.fetch(&key, &personal.id).await).await["credential"],
        per_agent
    );
    tools::set_credential(
        &app.services,
        &app.admin,
        &tool.id,
        SecretString::from(rotated.to_owned()),
        None,
    )
    .await
    .expect("rotate");
    assert_eq!(
        json(app.fetch(&key, &tool.id).await).await["credential"],
        rotated
    );

    let mut error_bodies = Vec::new();
    error_bodies.push(expect_error(app.fetch(&other_key, &tool.id).await, 403).await);
    error_bodies.push(
        expect_error(
            app.post(
                &format!("/api/tools/{}/request", tool.id),
                &key,
                json!({"reason": "again please"}),
            )
            .await,
            409,
        )
        .await,
    );
    error_bodies.push(
        expect_error(
            app.post(
                "/api/tools/suggest",
                &key,
                json!({"name": "LeakShared", "reason": "duplicate"}),
            )
            .await,
            409,
        )
        .await,
    );
    error_bodies.push(
        expect_error(
            app.post(
                "/api/tools/suggest",
                &key,
                json!({"name": shared, "reason": "x"}),
            )
            .await,
            400,
        )
        .await,
    );
    grants::revoke(&app.services, &app.admin, &shared_req, None)
        .await
        .expect("revoke");
    error_bodies.push(expect_error(app.fetch(&key, &tool.id).await, 403).await);
    agents::set_status(
        &app.services,
        &app.admin,
        &agent.id,
        AgentStatus::Suspended,
        None,
    )
    .await
    .expect("suspend");
    error_bodies.push(expect_error(app.fetch(&key, &personal.id).await, 403).await);
    let secrets = [shared, per_agent, rotated, key.as_str()];

    let admin_results = [
        serde_json::to_string(&tools::list(&app.services, &app.admin).await.expect("tools"))
            .expect("json"),
        serde_json::to_string(
            &tools::get(&app.services, &app.admin, &personal.id)
                .await
                .expect("tool"),
        )
        .expect("json"),
        serde_json::to_string(
            &grants::list(&app.services, &app.admin, None, 100)
                .await
                .expect("grants"),
        )
        .expect("json"),
        serde_json::to_string(
            &grants::list(
                &app.services,
                &app.admin,
                Some(RequestStatus::Approved),
                100,
            )
            .await
            .expect("grants"),
        )
        .expect("json"),
        serde_json::to_string(
            &agents::list(&app.services, &app.admin)
                .await
                .expect("agents"),
        )
        .expect("json"),
        serde_json::to_string(&audit_rows(&app).await).expect("json"),
        serde_json::to_string(
            &suggestions::list(&app.services, &app.admin, SuggestionStatus::Pending)
                .await
                .expect("s"),
        )
        .expect("json"),
        format!(
            "{:?}",
            tools::list(&app.services, &app.admin).await.expect("tools")
        ),
    ];
    let logs = captured_logs();
    let files = app.stored_bytes().await;

    assert!(logs.contains("http"), "logs were captured");
    assert!(
        files.iter().any(|(_, b)| contains(b, b"LeakPersonal")),
        "the file scan sees plaintext columns"
    );
    for secret in secrets {
        assert!(!logs.contains(secret), "{secret} in the logs");
        for result in &admin_results {
            assert!(
                !result.contains(secret),
                "{secret} in an admin result: {result}"
            );
        }
        for body in &error_bodies {
            assert!(
                !body.to_string().contains(secret),
                "{secret} in an error body: {body}"
            );
        }
        for (path, bytes) in &files {
            assert!(
                !contains(bytes, secret.as_bytes()),
                "{secret} in plaintext in {path}"
            );
        }
    }
    let tool_view = tools::get(&app.services, &app.admin, &tool.id)
        .await
        .expect("tool");
    assert!(
        tool_view.credential_configured,
        "the view says a secret exists without showing it"
    );
}

fn contains(haystack: &[u8], needle: &[u8]) -> bool {
    haystack.windows(needle.len()).any(|w| w == needle)
}

// ---- blobs are bound to their row ---------------------------------------------------------

fn assert_generic_500(text: &str, leaks: &[&str]) {
    let body: serde_json::Value =
        serde_json::from_str(text).unwrap_or_else(|_| panic!("not JSON: {text}"));
    assert_eq!(body["error"], "Internal server error.");
    let keys: Vec<&String> = body.as_object().expect("object").keys().collect();
    assert!(
        keys.iter().all(|k| *k == "error" || *k == "hint"),
        "nothing but error and hint: {body}"
    );
    let lower = text.to_lowercase();
    for word in [
        "decrypt",
        "blob",
        "crypto",
        "sqlx",
        "anyhow",
        "cannot open",
        "slot",
        "refused",
        "aes",
    ] {
        assert!(!lower.contains(word), "{word:?} leaked in {text}");
    }
    for leak in leaks {
        assert!(!text.contains(leak), "{leak} leaked in {text}");
    }
}

#[tokio::test]
async fn a_shared_blob_copied_to_another_tool_fails_with_a_generic_500() {
    let app = spawn_app().await;
    let (_agent, key) = app.create_agent("blob-bot").await;
    let a = app
        .create_shared_tool("ToolA", Some("tool-a.example"), "secret_of_tool_a_5d1")
        .await;
    let b = app
        .create_shared_tool("ToolB", Some("tool-b.example"), "secret_of_tool_b_0e7")
        .await;
    app.grant(&key, &a.id).await;
    app.grant(&key, &b.id).await;

    app.exec(&format!("UPDATE tools SET credential_blob = (SELECT credential_blob FROM tools WHERE id = '{}') WHERE id = '{}'", a.id, b.id)).await;

    let res = app.fetch(&key, &b.id).await;
    assert_eq!(res.status(), 500);
    assert_generic_500(
        &res.text().await.expect("text"),
        &["secret_of_tool_a_5d1", "secret_of_tool_b_0e7", &a.id, &b.id],
    );
    let vended_b = app
        .count(&format!(
            "SELECT COUNT(*) FROM audit_log WHERE action = 'credential.vended' AND tool_id = '{}'",
            b.id
        ))
        .await;
    assert_eq!(vended_b, 0, "nothing was released");
    assert_eq!(
        json(app.fetch(&key, &a.id).await).await["credential"],
        "secret_of_tool_a_5d1",
        "the original row still opens"
    );
    assert!(!captured_logs().contains("secret_of_tool_a_5d1"));
}

#[tokio::test]
async fn a_per_agent_blob_copied_to_another_grant_fails_with_a_generic_500() {
    let app = spawn_app().await;
    let (_a, key_a) = app.create_agent("agent-a").await;
    let (_b, key_b) = app.create_agent("agent-b").await;
    let tool = app
        .create_tool(
            "Database",
            Some("db.example"),
            CredentialMode::PerAgent,
            None,
            None,
        )
        .await;
    let ga = app.request_access(&key_a, &tool.id).await;
    let gb = app.request_access(&key_b, &tool.id).await;
    grants::approve(
        &app.services,
        &app.admin,
        &ga,
        Some(SecretString::from("pw_agent_a_c0ffee".to_owned())),
        None,
    )
    .await
    .expect("a");
    grants::approve(
        &app.services,
        &app.admin,
        &gb,
        Some(SecretString::from("pw_agent_b_beef00".to_owned())),
        None,
    )
    .await
    .expect("b");

    app.exec(&format!(
        "UPDATE access_requests SET credential_blob = (SELECT credential_blob FROM access_requests WHERE id = '{ga}') WHERE id = '{gb}'"
    ))
    .await;

    let res = app.fetch(&key_b, &tool.id).await;
    assert_eq!(
        res.status(),
        500,
        "agent b must never receive agent a's secret"
    );
    assert_generic_500(
        &res.text().await.expect("text"),
        &["pw_agent_a_c0ffee", "pw_agent_b_beef00", &tool.id, &ga, &gb],
    );
    assert_eq!(
        json(app.fetch(&key_a, &tool.id).await).await["credential"],
        "pw_agent_a_c0ffee"
    );
}

#[tokio::test]
async fn a_blob_copied_from_another_organization_fails_with_a_generic_500() {
    let app = spawn_app().await;
    let (_agent, key) = app.create_agent("org-bot").await;
    let other = app.other_org("Other Org").await;
    let foreign = app
        .create_tool_as(
            &other,
            "Foreign",
            Some("foreign.example"),
            app::model::AuthType::ApiKey,
            CredentialMode::Shared,
            Some("foreign_org_secret_42"),
        )
        .await;
    let mine = app
        .create_shared_tool("Mine", Some("mine.example"), "my_org_secret_17")
        .await;
    app.grant(&key, &mine.id).await;

    app.exec(&format!("UPDATE tools SET credential_blob = (SELECT credential_blob FROM tools WHERE id = '{}') WHERE id = '{}'", foreign.id, mine.id)).await;

    let res = app.fetch(&key, &mine.id).await;
    assert_eq!(res.status(), 500);
    assert_generic_500(
        &res.text().await.expect("text"),
        &[
            "foreign_org_secret_42",
            "my_org_secret_17",
            &foreign.id,
            &mine.id,
            &other.org_id,
        ],
    );
}

// ---- the credential cache never outlives a change -----------------------------------------

/// Approves, fetches twice (so the plan and agent are cached), then runs `sql` behind the
/// server's back; the very next fetch must be refused with `status`.
async fn refused_after_raw_change(
    sql: impl Fn(&str, &str) -> String,
    status: u16,
) -> serde_json::Value {
    let app = spawn_app().await;
    let (agent, key) = app.create_agent("cached-bot").await;
    let tool = app
        .create_shared_tool("Cached", Some("cached.example"), "cached_secret_9a")
        .await;
    let request_id = app.grant(&key, &tool.id).await;
    for _ in 0..2 {
        assert_eq!(app.fetch(&key, &tool.id).await.status(), 200);
    }

    app.exec(&sql(&request_id, &agent.id)).await;

    let body = expect_error(app.fetch(&key, &tool.id).await, status).await;
    assert!(!body.to_string().contains("cached_secret_9a"));
    assert_eq!(
        count_action(&app, "credential.vended").await,
        2,
        "nothing released after the change"
    );
    body
}

#[tokio::test]
async fn a_grant_revoked_by_another_process_is_refused_on_the_very_next_fetch() {
    let body = refused_after_raw_change(
        |req, _| format!("UPDATE access_requests SET status = 'revoked' WHERE id = '{req}'"),
        403,
    )
    .await;
    assert_eq!(body["your_access"], "revoked");
}

#[tokio::test]
async fn an_agent_suspended_by_another_process_is_refused_on_the_very_next_fetch() {
    let body = refused_after_raw_change(
        |_, agent| format!("UPDATE agents SET status = 'suspended' WHERE id = '{agent}'"),
        403,
    )
    .await;
    assert!(body["error"].as_str().expect("error").contains("suspended"));
}

#[tokio::test]
async fn a_key_replaced_by_another_process_is_refused_on_the_very_next_fetch() {
    refused_after_raw_change(
        |_, agent| format!("UPDATE agents SET key_hash = 'replaced' WHERE id = '{agent}'"),
        401,
    )
    .await;
}

#[tokio::test]
async fn a_grant_expired_by_another_process_is_refused_on_the_very_next_fetch() {
    let past = now_ms() - 1000;
    let body = refused_after_raw_change(
        move |req, _| format!("UPDATE access_requests SET expires_at = {past} WHERE id = '{req}'"),
        403,
    )
    .await;
    assert_eq!(body["your_access"], "expired");
}

#[tokio::test]
async fn a_grant_deleted_by_another_process_is_refused_on_the_very_next_fetch() {
    let body = refused_after_raw_change(
        |req, _| format!("DELETE FROM access_requests WHERE id = '{req}'"),
        403,
    )
    .await;
    assert_eq!(body["your_access"], "none");
}

#[tokio::test]
async fn an_agent_deleted_by_another_process_is_refused_on_the_very_next_fetch() {
    refused_after_raw_change(
        |_, agent| format!("DELETE FROM agents WHERE id = '{agent}'"),
        401,
    )
    .await;
}

#[tokio::test]
async fn changes_made_by_a_second_process_are_served_at_once_and_keep_the_chain_intact() {
    let app = spawn_app().await;
    let (_agent, key) = app.create_agent("two-process-bot").await;
    let tool = app
        .create_shared_tool("Shared", Some("shared.example"), "first_process_secret")
        .await;
    let request_id = app.grant(&key, &tool.id).await;
    let before = json(app.fetch(&key, &tool.id).await).await;
    let cli = app
        .second_process(&[])
        .await
        .expect("a second process opens the database");
    let cli_admin = AdminCtx::operator(&app.org_id);

    tools::set_credential(
        &cli,
        &cli_admin,
        &tool.id,
        SecretString::from("rotated_by_cli".to_owned()),
        None,
    )
    .await
    .expect("rotate");
    let after = json(app.fetch(&key, &tool.id).await).await;
    assert_eq!(
        after["credential"], "rotated_by_cli",
        "the cached plan was not served"
    );
    assert_eq!(
        after["credential_version"].as_i64(),
        before["credential_version"].as_i64().map(|v| v + 1)
    );

    grants::revoke(&cli, &cli_admin, &request_id, Some("from the CLI"))
        .await
        .expect("revoke");
    let body = expect_error(app.fetch(&key, &tool.id).await, 403).await;
    assert_eq!(body["your_access"], "revoked");

    cli.shutdown().await;
    cli.store.close().await;
    let report = audit::verify(&app.services, &app.admin)
        .await
        .expect("verify");
    assert_eq!(
        report.broken_at_seq, None,
        "both processes appended to one chain: {report:?}"
    );
    assert_eq!(count_action(&app, "grant.revoked").await, 1);
}

// ---- master key ---------------------------------------------------------------------------

#[tokio::test]
async fn a_second_app_with_another_master_key_refuses_to_open_the_database() {
    let app = spawn_app().await;
    let (_agent, key) = app.create_agent("mk-bot").await;
    let tool = app
        .create_shared_tool("Vault", Some("vault.example"), "vault_secret_mk")
        .await;
    app.grant(&key, &tool.id).await;
    let other_key = format!("{}=", "A".repeat(43));

    let err = app
        .second_process(&[("AGENTKEY_MASTER_KEY", &other_key)])
        .await
        .err()
        .expect("refused with another master key");

    let text = format!("{err:#}");
    assert!(text.to_lowercase().contains("master key"), "{text}");
    assert!(!text.contains(&other_key));
    let err = app
        .second_process(&[("AGENTKEY_MASTER_KEY", "not base64 at all")])
        .await
        .err()
        .expect("malformed key");
    assert!(
        format!("{err:#}").contains("AGENTKEY_MASTER_KEY"),
        "{err:#}"
    );
    let same = app
        .second_process(&[])
        .await
        .expect("the right key (the key file) opens it");
    same.shutdown().await;
    same.store.close().await;
    assert_eq!(
        json(app.fetch(&key, &tool.id).await).await["credential"],
        "vault_secret_mk",
        "the running app is unaffected"
    );
}

#[cfg(unix)]
#[tokio::test]
async fn a_master_key_file_readable_by_others_is_refused() {
    use std::os::unix::fs::PermissionsExt;
    let app = spawn_app().await;
    let path = app.dir.path().join("master.key");
    assert_eq!(
        std::fs::metadata(&path)
            .expect("key file")
            .permissions()
            .mode()
            & 0o777,
        0o600,
        "created private"
    );

    std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o644)).expect("chmod");

    let err = app.second_process(&[]).await.err().expect("refused");
    assert!(format!("{err:#}").contains("chmod 600"), "{err:#}");
}

// ---- several instances ---------------------------------------------------------------------

#[tokio::test]
async fn an_instance_whose_master_key_was_rotated_elsewhere_refuses_to_create_organizations() {
    let app = spawn_app().await;
    let old =
        agentkey::startup::read_key_file(&app.dir.path().join("master.key")).expect("key file");
    let new = app::server::crypto::MasterKey::generate();
    // Another process rotates; this one still holds the old key in memory.
    app::server::service::keys::rotate_master(&app.services.store, &old, &new)
        .await
        .expect("rotate");

    let err = app::server::service::orgs::create(&app.services, "Late Org", None)
        .await
        .expect_err("refused");
    assert_eq!(err.status(), 409, "{err:?}");
    assert!(
        err.body().hint.unwrap_or_default().contains(new.id()),
        "the hint names the new key id"
    );
    assert_eq!(
        app.count("SELECT COUNT(*) FROM organizations").await,
        1,
        "nothing written"
    );
    assert_eq!(app.count("SELECT COUNT(*) FROM data_keys").await, 1);
}

#[tokio::test]
async fn the_live_grant_wins_over_a_newer_id_from_a_clock_ahead() {
    let app = spawn_app().await;
    let tool = app
        .create_shared_tool("GitHub", None, "ghp_skewed_clock")
        .await;
    let (agent, key) = app.create_agent("bot").await;
    let old = app.grant(&key, &tool.id).await;
    grants::revoke(&app.services, &app.admin, &old, None)
        .await
        .expect("revoke");
    assert_eq!(app.fetch(&key, &tool.id).await.status(), 403);

    // Another instance whose clock is behind approves a re-request: its id sorts before the
    // revoked one. The live grant is the current state all the same.
    app.exec(&format!(
        "INSERT INTO access_requests (id, organization_id, agent_id, tool_id, status, reason, origin, decided_by, decided_at, \
         credential_version, approvals_required, created_at, updated_at) VALUES ('00000000-0000-7000-8000-000000000001', '{}', '{}', '{}', \
         'approved', 'Need it again', 'agent', 'cli:test', 1, 0, 1, 1, 1)",
        app.org_id, agent.id, tool.id
    ))
    .await;
    let res = app.fetch(&key, &tool.id).await;
    assert_eq!(res.status(), 200);
    assert_eq!(json(res).await["credential"], "ghp_skewed_clock");
    let list = json(app.get("/api/tools", &key).await).await;
    let listed = list["tools"]
        .as_array()
        .expect("tools")
        .iter()
        .find(|t| t["id"] == tool.id.as_str())
        .cloned()
        .expect("listed");
    assert_eq!(
        listed["your_access"], "approved",
        "the catalog agrees: {listed}"
    );
}

/// The headline guarantee: a credential leaves only after its `credential.vended` row is
/// committed. While the database refuses that row, every fetch is a generic 5xx JSON error
/// without the secret, and no such row exists; once the row can be written, fetches work again
/// and the audit chain still verifies.
#[tokio::test]
async fn fetches_are_refused_while_their_audit_row_cannot_be_written() {
    let app = spawn_app().await;
    let (_, key) = app.create_agent("fail-closed-bot").await;
    let secret = "ghp_fail_closed_secret_8c1";
    let tool = app
        .create_shared_tool("GitHub", Some("https://github.com"), secret)
        .await;
    app.grant(&key, &tool.id).await;
    let res = app.fetch(&key, &tool.id).await;
    assert_eq!(res.status(), 200, "the grant works before the fault");
    assert_eq!(json(res).await["credential"], secret);
    assert_eq!(count_action(&app, "credential.vended").await, 1);

    app.refuse_inserts(
        "refuse_vended",
        "audit_log",
        "NEW.action = 'credential.vended'",
    )
    .await;
    for _ in 0..3 {
        let res = app.fetch(&key, &tool.id).await;
        let status = res.status().as_u16();
        let content_type = res.headers()["content-type"]
            .to_str()
            .unwrap_or("")
            .to_owned();
        let text = res.text().await.expect("body");
        assert!((500..600).contains(&status), "{status}: {text}");
        assert!(
            content_type.starts_with("application/json"),
            "{content_type}"
        );
        let body: serde_json::Value = serde_json::from_str(&text).expect("a JSON error");
        assert!(
            body["error"].is_string() && body["hint"].is_string(),
            "{body}"
        );
        assert!(
            !text.contains(secret),
            "the secret left without its audit row: {text}"
        );
        assert!(
            !text.contains("refused by the test"),
            "database detail leaked: {text}"
        );
    }
    assert_eq!(
        count_action(&app, "credential.vended").await,
        1,
        "no row for the refused fetches"
    );

    app.drop_trigger("refuse_vended", "audit_log").await;
    let res = app.fetch(&key, &tool.id).await;
    assert_eq!(
        res.status(),
        200,
        "fetches work again once the row can be written"
    );
    assert_eq!(json(res).await["credential"], secret);
    assert_eq!(count_action(&app, "credential.vended").await, 2);
    let report = audit::verify(&app.services, &app.admin)
        .await
        .expect("verify");
    assert_eq!(report.broken_at_seq, None, "{:?}", report.problem);
}

async fn tool_blob(app: &TestApp, tool_id: &str) -> String {
    let mut db = app.raw_db().await;
    sqlx::query_scalar::<_, String>("SELECT credential_blob FROM tools WHERE id = $1")
        .bind(tool_id)
        .fetch_one(&mut db)
        .await
        .expect("blob")
}

/// A secret rotated away cannot be put back: the blob of version 1 written over version 2's
/// does not open (generic 500, nothing released), and the current blob still does.
#[tokio::test]
async fn a_rotated_away_blob_written_back_over_the_new_one_is_refused() {
    let app = spawn_app().await;
    let (_agent, key) = app.create_agent("rollback-bot").await;
    let tool = app
        .create_shared_tool("Stripe", Some("stripe.com"), "sk_old_secret_71c")
        .await;
    app.grant(&key, &tool.id).await;
    let old_blob = tool_blob(&app, &tool.id).await;
    tools::set_credential(
        &app.services,
        &app.admin,
        &tool.id,
        SecretString::from("sk_new_secret_93a"),
        None,
    )
    .await
    .expect("rotate");
    let new_blob = tool_blob(&app, &tool.id).await;
    assert!(new_blob.starts_with("v2."), "{new_blob}");

    app.exec(&format!(
        "UPDATE tools SET credential_blob = '{old_blob}' WHERE id = '{}'",
        tool.id
    ))
    .await;
    let res = app.fetch(&key, &tool.id).await;
    assert_eq!(res.status(), 500);
    assert_generic_500(
        &res.text().await.expect("text"),
        &["sk_old_secret_71c", "sk_new_secret_93a"],
    );
    let vended = app
        .count("SELECT COUNT(*) FROM audit_log WHERE action = 'credential.vended'")
        .await;
    assert_eq!(vended, 0, "nothing was released");

    app.exec(&format!(
        "UPDATE tools SET credential_blob = '{new_blob}' WHERE id = '{}'",
        tool.id
    ))
    .await;
    // A direct write bypasses the invalidation every service write does.
    app.services.vend_cache.clear();
    let body = json(app.fetch(&key, &tool.id).await).await;
    assert_eq!(body["credential"], "sk_new_secret_93a", "{body}");
    assert_eq!(body["credential_version"], 2);
}

/// Blobs of the format before the version binding are re-sealed at start, once per database:
/// they open again, bound to their row's version; after that pass, a legacy blob written in
/// is refused rather than adopted.
#[tokio::test]
async fn legacy_blobs_are_resealed_bound_to_their_version() {
    use app::server::crypto::Slot;
    use app::server::service::keys;
    let app = spawn_app().await;
    let (_agent, key) = app.create_agent("legacy-bot").await;
    let tool = app
        .create_shared_tool("Linear", Some("linear.app"), "lin_legacy_secret_4f2")
        .await;
    app.grant(&key, &tool.id).await;
    let slot = Slot {
        org_id: &app.admin.org_id,
        table: "tools",
        row_id: &tool.id,
        column: "credential_blob",
        version: 1,
    };
    let legacy = app
        .services
        .keys
        .seal_legacy(slot, &SecretString::from("lin_legacy_secret_4f2"))
        .expect("legacy blob");
    app.exec(&format!(
        "UPDATE tools SET credential_blob = '{legacy}' WHERE id = '{}'",
        tool.id
    ))
    .await;
    assert_eq!(
        app.fetch(&key, &tool.id).await.status(),
        500,
        "a legacy blob is not opened as a current one"
    );

    // This database has been re-sealed already (at start): a legacy blob written in now is a
    // replay, and is not adopted.
    assert_eq!(
        keys::reseal_legacy_blobs(&app.services)
            .await
            .expect("done"),
        0
    );
    assert_eq!(app.fetch(&key, &tool.id).await.status(), 500);

    // A database from before the upgrade: its legacy blobs are re-sealed once.
    app.exec("DELETE FROM maintenance_runs").await;
    assert_eq!(
        keys::reseal_legacy_blobs(&app.services)
            .await
            .expect("reseal"),
        1
    );
    let blob = tool_blob(&app, &tool.id).await;
    assert!(blob.starts_with("v2.") && blob != legacy, "{blob}");
    app.services.vend_cache.clear();
    let body = json(app.fetch(&key, &tool.id).await).await;
    assert_eq!(body["credential"], "lin_legacy_secret_4f2", "{body}");
    assert_eq!(
        keys::reseal_legacy_blobs(&app.services)
            .await
            .expect("again"),
        0
    );
    assert_eq!(
        app.count("SELECT COUNT(*) FROM maintenance_runs WHERE name = 'reseal_blobs_v2'")
            .await,
        1
    );
}

/// Rotations at the same moment cannot both write the same version with different secrets:
/// each one that succeeds has its own version, the others are told to reload (409).
#[tokio::test]
async fn concurrent_rotations_never_share_a_version() {
    let app = spawn_app().await;
    let tool = app
        .create_shared_tool("Race", Some("race.example"), "first_secret")
        .await;
    let mut versions = Vec::new();
    for round in 0..5 {
        let rotate = |n: usize| {
            tools::set_credential(
                &app.services,
                &app.admin,
                &tool.id,
                SecretString::from(format!("secret_{round}_{n}")),
                None,
            )
        };
        let results = futures_util::future::join_all((0..4).map(rotate)).await;
        for result in results {
            match result {
                Ok(view) => versions.push(view.credential_version),
                Err(err) => assert_eq!(err.status().as_u16(), 409, "{err}"),
            }
        }
    }
    let distinct: HashSet<i64> = versions.iter().copied().collect();
    assert_eq!(
        distinct.len(),
        versions.len(),
        "a version was written twice: {versions:?}"
    );
    let stored = app
        .count(&format!(
            "SELECT credential_version FROM tools WHERE id = '{}'",
            tool.id
        ))
        .await;
    assert_eq!(stored, 1 + versions.len() as i64);
}
