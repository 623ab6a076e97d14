//! What the dashboard reads of a long audit log without walking it: the chain status from the
//! last verified checkpoint, the access picture's last uses, the status page's row count.

mod common;

use std::time::Duration;

use app::server::audit::chain;
use app::server::clock;
use app::server::service::{audit, dashboard, status};
use app::server::store::audit::{AuditFilter, list_sql};
use common::{TestApp, TestBackend, spawn_app};

/// The organization's newest seq.
async fn head(app: &TestApp) -> i64 {
    app.count(&format!(
        "SELECT seq FROM audit_heads WHERE organization_id = '{}'",
        app.org_id
    ))
    .await
}

async fn edit(app: &TestApp, seq: i64) {
    app.exec(&format!(
        "UPDATE audit_log SET actor_label = 'someone-else' WHERE seq = {seq} AND organization_id = '{}'",
        app.org_id
    ))
    .await;
}

#[tokio::test]
async fn the_chain_status_walks_only_new_rows_from_an_unchanged_checkpoint() {
    let app = spawn_app().await;
    for name in ["first", "second", "third"] {
        app.create_agent(name).await;
    }
    let status = audit::chain_status(&app.services, &app.admin)
        .await
        .expect("status");
    let checked = head(&app).await;
    assert_eq!((status.broken_at_seq, status.rows_checked), (None, checked));
    let checkpoint = app
        .count(&format!(
            "SELECT seq FROM audit_checkpoints WHERE organization_id = '{}'",
            app.org_id
        ))
        .await;
    assert_eq!(checkpoint, checked, "the walk is remembered");

    // A row after the checkpoint is walked.
    app.create_agent("fourth").await;
    app.create_agent("fifth").await;
    app.drop_trigger("audit_log_no_update", "audit_log").await;
    let newer = head(&app).await;
    edit(&app, newer).await;
    let status = audit::chain_status(&app.services, &app.admin)
        .await
        .expect("status");
    assert_eq!(status.broken_at_seq, Some(newer), "{status:?}");

    // The checkpoint's own row is checked again.
    let app = spawn_app().await;
    app.create_agent("first").await;
    audit::chain_status(&app.services, &app.admin)
        .await
        .expect("status");
    let checkpoint = head(&app).await;
    app.create_agent("second").await;
    app.drop_trigger("audit_log_no_update", "audit_log").await;
    edit(&app, checkpoint).await;
    let status = audit::chain_status(&app.services, &app.admin)
        .await
        .expect("status");
    assert_eq!(status.broken_at_seq, Some(checkpoint), "{status:?}");
    assert!(status.problem.expect("problem").contains("last verified"));

    // A row before the checkpoint is for the full walk (`agentkey audit verify`).
    let full = audit::verify(&app.services, &app.admin)
        .await
        .expect("verify");
    assert_eq!(full.broken_at_seq, Some(checkpoint));
}

#[tokio::test]
async fn the_maintenance_check_moves_the_checkpoint_and_reports_a_broken_chain() {
    let app = spawn_app().await;
    app.create_agent("first").await;
    assert_eq!(audit::check_chains(&app.services).await.expect("check"), 0);
    let checked = head(&app).await;
    let checkpoint = app
        .count(&format!(
            "SELECT seq FROM audit_checkpoints WHERE organization_id = '{}'",
            app.org_id
        ))
        .await;
    assert_eq!(checkpoint, checked);
    app.create_agent("second").await;
    app.drop_trigger("audit_log_no_update", "audit_log").await;
    edit(&app, head(&app).await).await;
    assert_eq!(audit::check_chains(&app.services).await.expect("check"), 1);
}

#[tokio::test]
async fn a_walk_with_a_budget_stops_there_and_the_next_one_goes_on() {
    let app = spawn_app().await;
    for name in ["first", "second", "third"] {
        app.create_agent(name).await;
    }
    let org = app::model::OrgId::new(app.org_id.as_str());
    let store = &app.services.store;
    let report = chain::verify_since_checkpoint(store, &org, Some(2))
        .await
        .expect("walk");
    assert_eq!((report.rows_checked, report.broken_at_seq), (2, None));
    let report = chain::verify_since_checkpoint(store, &org, Some(2))
        .await
        .expect("walk");
    assert_eq!(report.rows_checked, 4, "from the checkpoint on");
    let report = chain::verify_since_checkpoint(store, &org, None)
        .await
        .expect("walk");
    assert_eq!(report.rows_checked, head(&app).await);
}

#[tokio::test]
async fn the_access_picture_shows_uses_the_exposure_ledger_has_not_recorded_yet() {
    let app = spawn_app().await;
    let (agent, key) = app.create_agent("busy").await;
    let tool = app
        .create_shared_tool("Busy API", None, "busy-secret-value")
        .await;
    app.grant(&key, &tool.id).await;
    assert_eq!(app.fetch(&key, &tool.id).await.status(), 200);
    let first = app.services.clock.now_ms();
    // Within the ledger's minute: this fetch is not written to the ledger.
    app.services.clock.advance(Duration::from_secs(30));
    assert_eq!(app.fetch(&key, &tool.id).await.status(), 200);
    let ledger = app
        .count("SELECT MAX(fetched_last_at) FROM credential_exposures")
        .await;
    assert!(ledger < first + 30_000, "the ledger lags: {ledger} {first}");

    let picture = dashboard::access(&app.services, &app.admin)
        .await
        .expect("picture");
    let cell = picture
        .cells
        .iter()
        .find(|c| c.agent_id == agent.id && c.tool_id == tool.id)
        .expect("cell");
    let used = clock::parse_iso(cell.last_used_at.as_deref().expect("used")).expect("time");
    assert!(
        used >= first + 30_000,
        "the second fetch shows: {used} {first}"
    );
}

#[tokio::test]
async fn the_status_page_counts_every_audit_row() {
    let app = spawn_app().await;
    let other = app.other_org("Other").await;
    app.create_agent("first").await;
    app::server::service::agents::create(&app.services, &other, "elsewhere", "test agent")
        .await
        .expect("agent");
    let view = status::instance_status(&app.services)
        .await
        .expect("status");
    assert_eq!(
        view.audit_events,
        app.count("SELECT COUNT(*) FROM audit_log").await
    );
}

#[tokio::test]
async fn a_chain_checked_while_rows_are_appended_is_never_reported_broken() {
    use app::server::audit::AuditEntry;
    use app::server::service::actor::{Actor, RequestMeta};
    let app = spawn_app().await;
    let org = app::model::OrgId::new(app.org_id.as_str());
    let store = &app.services.store;
    let actor = Actor {
        kind: app::model::ActorType::System,
        id: "test".into(),
        label: "test".into(),
    };
    let done = std::sync::atomic::AtomicBool::new(false);
    let appending = async {
        let mut appended = 0;
        while !done.load(std::sync::atomic::Ordering::Relaxed) && appended < 20_000 {
            let entry = || AuditEntry::new(&org, &actor, &RequestMeta::default(), "test.appended");
            let (a, b) = tokio::join!(
                app.services.audit.commit(entry(), None),
                app.services.audit.commit(entry(), None)
            );
            a.and(b).expect("appended");
            appended += 2;
        }
        appended
    };
    let checking = async {
        let mut reports = Vec::new();
        for round in 0..150 {
            let budget = (round % 3 == 0).then_some(7);
            reports.push(chain::verify_since_checkpoint(store, &org, budget).await);
            reports.push(chain::verify(store, &org).await);
            tokio::task::yield_now().await;
        }
        done.store(true, std::sync::atomic::Ordering::Relaxed);
        reports
    };
    let (appended, reports) = tokio::join!(appending, checking);
    assert!(appended > 100, "rows were appended meanwhile: {appended}");
    for report in reports {
        let report = report.expect("walk");
        assert_eq!(report.broken_at_seq, None, "{report:?}");
    }
    let full = chain::verify(store, &org).await.expect("walk");
    assert_eq!(
        (full.broken_at_seq, full.rows_checked),
        (None, head(&app).await),
        "{full:?}"
    );
}

#[tokio::test]
async fn a_head_moved_back_behind_the_checkpoint_is_reported() {
    let app = spawn_app().await;
    for name in ["first", "second"] {
        app.create_agent(name).await;
    }
    let status = audit::chain_status(&app.services, &app.admin)
        .await
        .expect("status");
    let checkpoint = head(&app).await;
    assert_eq!(
        (status.broken_at_seq, status.rows_checked),
        (None, checkpoint)
    );
    let org = app.org_id.clone();
    app.exec(&format!(
        "UPDATE audit_heads SET seq = 1, hash = (SELECT hash FROM audit_log WHERE organization_id = '{org}' AND seq = 1) WHERE organization_id = '{org}'"
    ))
    .await;
    let status = audit::chain_status(&app.services, &app.admin)
        .await
        .expect("status");
    assert_eq!(status.broken_at_seq, Some(2), "{status:?}");
    assert!(
        status
            .problem
            .expect("problem")
            .contains("behind a row already verified")
    );
}

#[tokio::test]
async fn a_budgeted_walk_that_ends_at_the_head_checks_the_head() {
    let app = spawn_app().await;
    app.create_agent("first").await;
    let org = app::model::OrgId::new(app.org_id.as_str());
    let last = head(&app).await;
    // The head's hash no longer matches the last row, and the budget ends right at it.
    app.exec(&format!(
        "UPDATE audit_heads SET hash = 'edited' WHERE organization_id = '{}'",
        app.org_id
    ))
    .await;
    let report = chain::verify_since_checkpoint(&app.services.store, &org, Some(last))
        .await
        .expect("walk");
    assert_eq!(report.broken_at_seq, Some(last + 1), "{report:?}");
}

#[tokio::test]
async fn a_head_moved_back_over_rows_is_reported() {
    let app = spawn_app().await;
    for name in ["first", "second"] {
        app.create_agent(name).await;
    }
    let last = head(&app).await;
    let org = app.org_id.clone();
    app.exec(&format!(
        "UPDATE audit_heads SET seq = {back}, hash = (SELECT hash FROM audit_log WHERE organization_id = '{org}' AND seq = {back}) WHERE organization_id = '{org}'",
        back = last - 2
    ))
    .await;
    let report = audit::verify(&app.services, &app.admin)
        .await
        .expect("verify");
    assert_eq!(report.broken_at_seq, Some(last - 1), "{report:?}");
    assert!(
        report
            .problem
            .expect("problem")
            .contains("after the chain head")
    );
}

/// The plan the database picks for a filtered audit list matching `value`, with the value
/// written in.
async fn list_plan(app: &TestApp, filter: &AuditFilter, value: &str) -> String {
    let sql = list_sql(filter)
        .replace("$3", "50")
        .replace("$1", &format!("'{}'", app.org_id))
        .replace("$2", &format!("'{value}'"));
    assert!(!sql.contains('$'), "one filter at a time: {sql}");
    let mut db = app.raw_db().await;
    match app.db.backend() {
        TestBackend::Sqlite => {
            use sqlx::Row;
            sqlx::query(&format!("EXPLAIN QUERY PLAN {sql}"))
                .fetch_all(&mut db)
                .await
                .expect("plan")
                .iter()
                .map(|row| row.get::<String, _>("detail"))
                .collect()
        }
        TestBackend::Postgres => sqlx::query_scalar::<_, String>(&format!("EXPLAIN {sql}"))
            .fetch_all(&mut db)
            .await
            .expect("plan"),
    }
    .join("\n")
}

/// Appends `n` rows spread over 40 agents, 40 tools and 8 actions (not chained: only the plans
/// are read), then has the database gather its statistics, so that each plan is chosen on the
/// data's costs, as on a long log, and not on a tie between indexes.
async fn seed_spread_rows(app: &TestApp, n: i64) {
    let select = format!(
        "SELECT 'seed-' || i, '{org}', 1000000 + i, i, 'agent', 'agent-' || (i % 40), 'agent-' || (i % 40), \
         'action.' || (i % 8), NULL, NULL, 'agent-' || (i % 40), 'tool-' || (i % 40), NULL, NULL, '{{}}', '', ''",
        org = app.org_id
    );
    let insert = "INSERT INTO audit_log (id, organization_id, seq, created_at, actor_type, actor_id, \
                  actor_label, action, target_type, target_id, agent_id, tool_id, ip, user_agent, metadata, prev_hash, hash)";
    app.exec(&match app.db.backend() {
        TestBackend::Sqlite => format!(
            "WITH RECURSIVE s(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM s WHERE i < {n}) {insert} {select} FROM s"
        ),
        TestBackend::Postgres => format!("{insert} {select} FROM generate_series(1, {n}) AS s (i)"),
    })
    .await;
    app.exec("ANALYZE").await;
}

#[tokio::test]
async fn filtered_audit_lists_read_an_index_in_order_instead_of_sorting_every_match() {
    let app = spawn_app().await;
    seed_spread_rows(&app, 40_000).await;
    let filters = [
        (
            AuditFilter {
                agent_id: Some("agent-7".into()),
                ..AuditFilter::default()
            },
            "agent-7",
            "audit_log_agent_seq_idx",
        ),
        (
            AuditFilter {
                tool_id: Some("tool-7".into()),
                ..AuditFilter::default()
            },
            "tool-7",
            "audit_log_tool_seq_idx",
        ),
        (
            AuditFilter {
                action: Some("action.3".into()),
                ..AuditFilter::default()
            },
            "action.3",
            "audit_log_action_seq_idx",
        ),
    ];
    for (filter, value, index) in &filters {
        let plan = list_plan(&app, filter, value).await;
        assert!(
            plan.contains(index),
            "{filter:?} does not use {index}: {plan}"
        );
        assert!(
            !plan.contains("TEMP B-TREE") && !plan.contains("Sort"),
            "{filter:?} sorts its matches: {plan}"
        );
    }
}
