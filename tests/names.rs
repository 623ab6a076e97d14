//! Tool and agent names are unique per organization whatever their case, enforced by the
//! database on both backends: a second "GitHub" (or "github") gets a 409 naming the first,
//! from the service, the dashboard's server functions and the CLI alike, renames too; and the
//! migration keeps every duplicate a database already held, under a name of its own.

mod common;

use app::server::ServiceError;
use app::server::service::{agents, tools};
use common::{TestApp, TestBackend, spawn_app};

fn conflict_body(err: ServiceError) -> serde_json::Value {
    match err {
        ServiceError::Conflict(body) => serde_json::to_value(body).expect("json"),
        other => panic!("expected a 409, got {other:?}"),
    }
}

#[tokio::test]
async fn a_second_tool_of_the_same_name_in_any_case_is_a_409_naming_the_first() {
    let app = spawn_app().await;
    let first = app
        .create_shared_tool("GitHub", Some("github.com"), "ghp_first")
        .await;
    for name in ["GitHub", "github", "GITHUB", "GitHub!", "  github  "] {
        let input = tools::NewTool::shared(name, "another one", "ghp_second");
        let err = tools::create(&app.services, &app.admin, input)
            .await
            .expect_err(name);
        let body = conflict_body(err);
        assert_eq!(body["tool_id"], first.id.as_str(), "{name}: {body}");
        assert!(
            body["error"]
                .as_str()
                .is_some_and(|e| e.contains("\"GitHub\"")),
            "the message names the existing tool: {body}"
        );
    }
    assert_eq!(
        app.count("SELECT COUNT(*) FROM tools").await,
        1,
        "nothing half-written"
    );

    // Agents see one GitHub.
    let (_agent, key) = app.create_agent("names-bot").await;
    let list = common::json(app.get("/api/tools", &key).await).await;
    assert_eq!(list["tools"].as_array().expect("tools").len(), 1);

    // A rename onto a taken name is refused; a change of case of its own name is not.
    let other = app
        .create_shared_tool("GitLab", Some("gitlab.com"), "glpat_x")
        .await;
    let err = tools::update_details(&app.services, &app.admin, &other.id, "github", "", "")
        .await
        .expect_err("taken");
    assert_eq!(conflict_body(err)["tool_id"], first.id.as_str());
    let renamed = tools::update_details(
        &app.services,
        &app.admin,
        &first.id,
        "GITHUB",
        "Code hosting",
        "github.com",
    )
    .await
    .expect("its own name in another case");
    assert_eq!(renamed.name, "GITHUB");
}

#[tokio::test]
async fn a_second_agent_of_the_same_name_is_a_409_from_the_service_and_the_cli() {
    let app = spawn_app().await;
    let (first, _key) = app.create_agent("Deploy Bot").await;
    for name in ["Deploy Bot", "deploy bot", "DEPLOY  BOT"] {
        let err = agents::create(&app.services, &app.admin, name, "")
            .await
            .map(|_| ())
            .expect_err(name);
        let body = conflict_body(err);
        assert_eq!(body["agent_id"], first.id.as_str(), "{name}: {body}");
        assert!(
            body["error"]
                .as_str()
                .is_some_and(|e| e.contains("Deploy Bot"))
        );
    }
    assert_eq!(app.count("SELECT COUNT(*) FROM agents").await, 1);
    agents::create(&app.services, &app.admin, "Deploy Bot 2", "")
        .await
        .expect("a different name");

    let out = cli(&app, &["agent", "create", "--name", "deploy bot"]);
    assert!(!out.status.success());
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains("already exists") && stderr.contains(first.id.as_str()),
        "{stderr}"
    );
}

/// Runs the CLI against the test app's database.
fn cli(app: &TestApp, args: &[&str]) -> std::process::Output {
    std::process::Command::new(env!("CARGO_BIN_EXE_agentkey"))
        .args(args)
        .env("AGENTKEY_DATABASE_URL", app.db_url())
        .env(
            "AGENTKEY_MASTER_KEY_FILE",
            app.dir.path().join("master.key"),
        )
        .env("AGENTKEY_BASE_URL", &app.base)
        .output()
        .expect("run the CLI")
}

#[tokio::test]
async fn the_migration_keeps_every_duplicate_under_a_name_of_its_own() {
    let app = spawn_app().await;
    for (name, domain) in [
        ("Linear", "linear.app"),
        ("Asana", "asana.com"),
        ("Jira", "atlassian.com"),
    ] {
        app.create_shared_tool(name, Some(domain), "secret").await;
    }
    app.create_agent("ci-bot").await;
    app.create_agent("release-bot").await;
    let migration = match app.db.backend() {
        TestBackend::Sqlite => include_str!("../migrations/sqlite/20261203000001_unique_names.sql"),
        TestBackend::Postgres => {
            include_str!("../migrations/postgres/20261203000001_unique_names.sql")
        }
    };
    // Back to the schema before the migration, holding the duplicates an older build allowed.
    for sql in [
        "DROP INDEX tools_org_name_idx",
        "CREATE INDEX tools_org_name_idx ON tools (organization_id, normalized_name)",
        "DROP INDEX agents_org_name_key_idx",
        "ALTER TABLE agents DROP COLUMN name_key",
        "UPDATE tools SET name = 'linear', normalized_name = 'linear' WHERE name = 'Asana'",
        "UPDATE tools SET name = 'LINEAR', normalized_name = 'linear' WHERE name = 'Jira'",
        "UPDATE agents SET name = 'CI-Bot' WHERE name = 'release-bot'",
    ] {
        app.exec(sql).await;
    }

    let code: Vec<&str> = migration
        .lines()
        .filter(|l| !l.trim_start().starts_with("--"))
        .collect();
    for statement in code.join("\n").split(';').filter(|s| !s.trim().is_empty()) {
        app.exec(statement).await;
    }

    assert_eq!(
        app.count("SELECT COUNT(*) FROM tools").await,
        3,
        "nothing lost"
    );
    assert_eq!(
        app.count("SELECT COUNT(DISTINCT normalized_name) FROM tools")
            .await,
        3
    );
    assert_eq!(
        app.count("SELECT COUNT(*) FROM tools WHERE name = 'Linear'")
            .await,
        1,
        "the oldest keeps its name"
    );
    assert_eq!(
        app.count(
            "SELECT COUNT(*) FROM tools WHERE name LIKE 'linear (%)' OR name LIKE 'LINEAR (%)'"
        )
        .await,
        2,
        "the later ones get their id's last group"
    );
    assert_eq!(app.count("SELECT COUNT(*) FROM agents").await, 2);
    assert_eq!(
        app.count("SELECT COUNT(*) FROM agents WHERE name = 'ci-bot'")
            .await,
        1
    );
    assert_eq!(
        app.count("SELECT COUNT(DISTINCT name_key) FROM agents")
            .await,
        2
    );
    // And the database holds the rule from now on, whatever writes to it.
    let mut db = app.raw_db().await;
    for sql in [
        "UPDATE tools SET normalized_name = 'linear' WHERE name <> 'Linear'",
        "UPDATE agents SET name_key = 'ci-bot' WHERE name <> 'ci-bot'",
    ] {
        assert!(
            sqlx::query(sql).execute(&mut db).await.is_err(),
            "the unique index refuses: {sql}"
        );
    }
    let err = tools::create(
        &app.services,
        &app.admin,
        tools::NewTool::shared("LiNeAr", "again", "lin_b"),
    )
    .await
    .expect_err("taken");
    assert!(matches!(err, ServiceError::Conflict(_)));
    let err = agents::create(&app.services, &app.admin, "CI-BOT", "")
        .await
        .map(|_| ())
        .expect_err("taken");
    assert!(matches!(err, ServiceError::Conflict(_)));
}
