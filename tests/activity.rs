//! The activity charts' data over real HTTP: fetches counted per tool, agent and day as the
//! audit writer commits them, written to the daily counts once a minute and at shutdown,
//! each agent's last use of each tool, and nothing of another organization.

mod common;

use std::time::Duration;

use common::rpc::{rpc, sign_in};
use common::smtp::SmtpSink;
use common::spawn_app_with;
use serde_json::Value;

const DAY: Duration = Duration::from_secs(86_400);

fn series<'a>(list: &'a Value, id: &str) -> &'a Value {
    list.as_array()
        .expect("series")
        .iter()
        .find(|s| s["id"] == id)
        .unwrap_or_else(|| panic!("no series for {id} in {list}"))
}

fn counts(series: &Value) -> Vec<i64> {
    series["counts"]
        .as_array()
        .expect("counts")
        .iter()
        .map(|c| c.as_i64().expect("count"))
        .collect()
}

#[tokio::test]
async fn fetches_are_charted_per_tool_agent_and_day_and_shutdown_writes_what_was_counted() {
    let sink = SmtpSink::start().await;
    let app = spawn_app_with(&[("AGENTKEY_SMTP_URL", &sink.url())]).await;
    let cookie = sign_in(&app, &sink).await;
    let tool = app.create_shared_tool("GitHub", None, "ghp_chart").await;
    let quiet = app.create_shared_tool("Linear", None, "lin_chart").await;
    let (agent, key) = app.create_agent("chart-bot").await;
    app.grant(&key, &tool.id).await;

    for _ in 0..3 {
        assert_eq!(app.fetch(&key, &tool.id).await.status(), 200);
    }
    app.services.clock.advance(DAY);
    for _ in 0..2 {
        assert_eq!(app.fetch(&key, &tool.id).await.status(), 200);
    }

    let view = rpc(&app, "usage", &[], Some(&cookie)).await;
    assert_eq!(view.status, 200, "{}", view.body);
    let view = view.json();
    let days = view["days"].as_array().expect("days");
    assert_eq!(days.len(), 30);
    let gh = counts(series(&view["tools"], &tool.id));
    assert_eq!(gh.len(), 30);
    assert_eq!(
        &gh[28..],
        &[3, 2],
        "yesterday's three fetches and today's two"
    );
    assert_eq!(gh[..28].iter().sum::<i64>(), 0);
    assert_eq!(series(&view["tools"], &tool.id)["total"], 5);
    assert_eq!(
        view["tools"][0]["id"],
        tool.id.as_str(),
        "the busiest first"
    );
    assert_eq!(series(&view["tools"], &quiet.id)["total"], 0);
    assert_eq!(counts(series(&view["agents"], &agent.id))[28..], [3, 2]);
    let last = view["last_use"]
        .as_array()
        .expect("last use")
        .iter()
        .find(|l| l["tool_id"] == tool.id.as_str() && l["agent_id"] == agent.id.as_str())
        .expect("the agent's last fetch of the tool");
    assert_eq!(last["proxied"], false);

    let written_before_stop = app
        .count("SELECT CAST(COALESCE(SUM(fetches), 0) AS BIGINT) FROM usage_daily")
        .await;
    assert!(
        written_before_stop < 5,
        "today's fetches are counted in memory until the minute is up"
    );
    // Shutting down writes the rest: the daily counts hold all five.
    app.services.shutdown().await;
    assert_eq!(
        app.count("SELECT CAST(COALESCE(SUM(fetches), 0) AS BIGINT) FROM usage_daily")
            .await,
        5
    );
}

#[tokio::test]
async fn the_activity_of_one_organization_is_not_shown_to_another() {
    let sink = SmtpSink::start().await;
    let app = spawn_app_with(&[("AGENTKEY_SMTP_URL", &sink.url())]).await;
    let tool = app.create_shared_tool("GitHub", None, "ghp_chart").await;
    let (_, key) = app.create_agent("chart-bot").await;
    app.grant(&key, &tool.id).await;
    assert_eq!(app.fetch(&key, &tool.id).await.status(), 200);
    app::server::service::orgs::create(&app.services, "Other", Some("stranger@example.org"))
        .await
        .expect("other org");
    let stranger = common::rpc::sign_in_as(&app, &sink, "stranger@example.org").await;

    let view = rpc(&app, "usage", &[], Some(&stranger)).await.json();
    assert_eq!(view["tools"], Value::Array(vec![]));
    assert_eq!(view["agents"], Value::Array(vec![]));
    assert_eq!(view["last_use"], Value::Array(vec![]));
}
