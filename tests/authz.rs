//! Every dashboard server function, called as every kind of caller: no session, an expired
//! session, a member of another organization, and each role. The table below states the
//! expected outcome of each; the test fails when a server function exists without a row, so a
//! new endpoint cannot ship without deciding who may call it.

mod common;

use std::collections::BTreeSet;

use app::model::Role;
use app::server::service::actor::RequestMeta;
use app::server::service::{grants, members, orgs};
use common::rpc::{Reply, rpc, sign_in_as};
use common::smtp::SmtpSink;
use common::spawn_app_with;

/// Who may call a server function.
#[derive(Clone, Copy, Debug)]
enum Rule {
    /// Anyone, signed in or not, gets this status.
    Public(u16),
    /// Any member of the organization.
    Member,
    /// Any member, and the answer is 200 (reads with nothing that can be missing).
    Reads,
    /// Owners, admins and approvers.
    Decide,
    /// Owners and admins.
    Admin,
    /// Owners only.
    Owner,
}

impl Rule {
    fn allows(self, role: Role) -> bool {
        match self {
            Rule::Public(_) | Rule::Member | Rule::Reads => true,
            Rule::Decide => role != Role::Auditor,
            Rule::Admin => matches!(role, Role::Owner | Role::Admin),
            Rule::Owner => role == Role::Owner,
        }
    }
}

/// One server function: its path under /rpc, arguments, rule, and whether the arguments name
/// objects of the organization (then another organization's member must get 404).
struct Case {
    path: &'static str,
    form: Vec<(&'static str, String)>,
    rule: Rule,
    scoped: bool,
}

fn case(path: &'static str, form: &[(&'static str, &str)], rule: Rule, scoped: bool) -> Case {
    Case {
        path,
        form: form.iter().map(|(k, v)| (*k, (*v).to_owned())).collect(),
        rule,
        scoped,
    }
}

#[tokio::test]
async fn every_server_function_admits_exactly_the_callers_its_rule_names() {
    let sink = SmtpSink::start().await;
    // A model on loopback, so that drafting a guide answers whoever may draft.
    let model = common::model::Model::start().await;
    let app = spawn_app_with(&[
        ("AGENTKEY_SMTP_URL", &sink.url()),
        ("AGENTKEY_AI_URL", &model.base()),
        ("AGENTKEY_AI_MODEL", "authz-model"),
    ])
    .await;

    // The organization's people, each signed in through the real link flow.
    let mut callers: Vec<(String, Option<Role>, Option<String>)> = Vec::new();
    let mut victim_id = String::new();
    for (email, role) in [
        ("audra@example.com", Role::Auditor),
        ("abe@example.com", Role::Approver),
        ("ada@example.com", Role::Admin),
        ("victim@example.com", Role::Auditor),
    ] {
        let n = sink.count();
        members::invite(&app.services, &app.admin, email, role)
            .await
            .expect("invite");
        let mail = sink.wait_for(n).await;
        let start = mail.find("invite?token=").expect("link") + "invite?token=".len();
        let joined = members::accept(
            &app.services,
            &mail[start..start + 64],
            &RequestMeta::default(),
        )
        .await
        .expect("accept");
        if email.starts_with("victim") {
            victim_id = joined.user_id;
        } else {
            callers.push((
                email.into(),
                Some(role),
                Some(sign_in_as(&app, &sink, email).await),
            ));
        }
    }
    callers.push((
        "owner@example.com".into(),
        Some(Role::Owner),
        Some(sign_in_as(&app, &sink, "owner@example.com").await),
    ));
    // Another organization's owner, and an expired session.
    orgs::create(&app.services, "Other Org", Some("stranger@example.org"))
        .await
        .expect("other org");
    let stranger = sign_in_as(&app, &sink, "stranger@example.org").await;
    let expired = sign_in_as(&app, &sink, "abe@example.com").await;
    // The session just created is the newest row: end its lifetime in the database.
    app.exec("UPDATE sessions SET expires_at = 0 WHERE id_hash = (SELECT id_hash FROM sessions ORDER BY created_at DESC LIMIT 1)").await;

    // Objects of the organization that the arguments name.
    let tool = app.create_shared_tool("GitHub", None, "ghp_x").await;
    let (agent, key) = app.create_agent("bot").await;
    let request = app.request_access(&key, &tool.id).await;
    let pending = grants::list(&app.services, &app.admin, None, 10)
        .await
        .expect("requests");
    assert_eq!(pending.len(), 1);
    let nobody = "00000000-0000-7000-8000-000000000000";
    let org = app.org_id.clone();
    let (tool_id, agent_id, victim) = (tool.id.as_str(), agent.id.as_str(), victim_id.as_str());

    use Rule::*;
    let table = vec![
        case("status", &[], Public(200), false),
        case(
            "auth/request",
            &[("email", "nobody-{who}@example.com")],
            Public(200),
            false,
        ),
        case("auth/check", &[("token", "bogus")], Public(200), false),
        case("auth/confirm", &[("token", "bogus")], Public(401), false),
        case("auth/me", &[], Public(200), false),
        case("invite/check", &[("token", "bogus")], Public(200), false),
        case("invite/accept", &[("token", "bogus")], Public(401), false),
        case("auth/sessions", &[], Reads, false),
        case(
            "auth/sessions/end",
            &[("handle", "0000000000000000")],
            Member,
            false,
        ),
        case("auth/switch-org", &[("org_id", &org)], Member, true),
        case("overview", &[], Reads, false),
        case("inbox", &[], Reads, false),
        case("access", &[], Reads, false),
        case("pending", &[], Reads, false),
        case("requests", &[], Reads, false),
        case("agents", &[], Reads, false),
        case("tools", &[], Reads, false),
        case("tools/guide-history", &[("id", tool_id)], Reads, true),
        case("tools/ai", &[], Reads, false),
        case("usage", &[], Reads, false),
        case("tools/exposure", &[("id", tool_id)], Reads, true),
        case("exposure/advice", &[("agent_id", agent_id)], Reads, false),
        case("lifecycle", &[], Reads, false),
        case("rules", &[], Reads, false),
        case("reviews", &[], Reads, false),
        case("reviews/get", &[("id", nobody)], Member, false),
        case("reviews/export", &[("id", nobody)], Member, false),
        case(
            "reviews/start",
            &[("scope", "tool"), ("scope_id", tool_id)],
            Admin,
            true,
        ),
        case(
            "reviews/decide",
            &[("id", nobody), ("keep", "true")],
            Decide,
            false,
        ),
        case("reviews/close", &[("id", nobody)], Admin, false),
        case(
            "rules/add",
            &[
                ("tool_id", tool_id),
                ("labels", "team:e2e"),
                ("max_duration", "8h"),
            ],
            Admin,
            true,
        ),
        case("rules/delete", &[("id", nobody)], Admin, false),
        case(
            "tools/always-human",
            &[("id", tool_id), ("on", "false")],
            Admin,
            true,
        ),
        case(
            "agents/labels",
            &[("id", agent_id), ("labels", "team:e2e")],
            Admin,
            true,
        ),
        case(
            "lifecycle/save",
            &[("pending_expiry_hours", "168")],
            Admin,
            false,
        ),
        case(
            "tools/durations",
            &[("id", tool_id), ("max", ""), ("default", "")],
            Admin,
            true,
        ),
        case("tools/delete-impact", &[("id", tool_id)], Reads, true),
        case(
            "audit",
            &[
                ("query[action]", ""),
                ("query[agent_id]", ""),
                ("query[tool_id]", ""),
                ("query[actor]", ""),
                ("query[since]", ""),
                ("query[until]", ""),
            ],
            Reads,
            false,
        ),
        case("audit/verify", &[], Reads, false),
        case("members", &[], Reads, false),
        case("notifications", &[], Reads, false),
        case("notifications/email", &[("on", "false")], Reads, false),
        case(
            "requests/deny",
            &[("id", nobody), ("reason", "no")],
            Decide,
            false,
        ),
        case(
            "requests/revoke",
            &[("id", nobody), ("reason", "no")],
            Decide,
            false,
        ),
        case(
            "requests/bulk",
            &[("ids[0]", nobody), ("approve", "false"), ("reason", "no")],
            Decide,
            false,
        ),
        case(
            "requests/grant",
            &[
                ("agent_id", agent_id),
                ("tool_id", tool_id),
                ("reason", "granted in the test"),
            ],
            Decide,
            true,
        ),
        case("requests/approve", &[("id", &request)], Decide, true),
        case(
            "suggestions/dismiss",
            &[("id", nobody), ("reason", "no")],
            Decide,
            false,
        ),
        case("guide-suggestions/accept", &[("id", nobody)], Decide, false),
        case(
            "guide-suggestions/dismiss",
            &[("id", nobody), ("reason", "no")],
            Decide,
            false,
        ),
        case(
            "agents/create",
            &[("name", "new-bot"), ("description", "x")],
            Admin,
            false,
        ),
        case("agents/rotate", &[("id", agent_id)], Admin, true),
        case(
            "agents/status",
            &[("id", agent_id), ("active", "true")],
            Admin,
            true,
        ),
        case(
            "tools/create",
            &[
                ("name", "Linear"),
                ("description", ""),
                ("url", ""),
                ("auth_type", "api_key"),
                ("credential_mode", "shared"),
                ("credential", "lin_x"),
                ("instructions", ""),
            ],
            Admin,
            false,
        ),
        case(
            "tools/update",
            &[
                ("id", tool_id),
                ("name", "GitHub"),
                ("description", "code"),
                ("url", ""),
            ],
            Admin,
            true,
        ),
        case(
            "tools/proxy",
            &[("id", tool_id), ("delivery", "fetch")],
            Admin,
            true,
        ),
        case(
            "tools/quorum",
            &[("id", tool_id), ("approvals", "1")],
            Admin,
            true,
        ),
        case(
            "tools/credential",
            &[("id", tool_id), ("secret", "ghp_new")],
            Admin,
            true,
        ),
        case(
            "tools/guide",
            &[("id", tool_id), ("text", "Use the API.")],
            Admin,
            true,
        ),
        case("tools/draft-guide", &[("id", tool_id)], Admin, true),
        case(
            "tools/guide-restore",
            &[("id", tool_id), ("version", "1")],
            Admin,
            true,
        ),
        case("tools/export", &[("format", "json")], Admin, false),
        case(
            "tools/import",
            &[("json", "[]"), ("apply", "false")],
            Admin,
            false,
        ),
        case(
            "members/invite",
            &[("email", "newbie@example.com"), ("role", "auditor")],
            Admin,
            false,
        ),
        case("members/invite/resend", &[("id", nobody)], Admin, false),
        case("members/invite/revoke", &[("id", nobody)], Admin, false),
        case(
            "notifications/webhook",
            &[
                ("kind", "slack"),
                ("url", "https://hooks.slack.com/services/T/B/x"),
                ("events", ""),
            ],
            Admin,
            false,
        ),
        case(
            "notifications/events",
            &[("kind", "email"), ("events", "access_requested")],
            Admin,
            false,
        ),
        case("notifications/remove", &[("kind", "discord")], Admin, false),
        case("notifications/test", &[("kind", "slack")], Admin, false),
        case("notifications/retry", &[("id", nobody)], Admin, false),
        case(
            "members/role",
            &[("user_id", victim), ("role", "approver")],
            Owner,
            true,
        ),
        case("members/domains", &[("domains", "")], Owner, false),
        case("members/remove", &[("user_id", victim)], Owner, true),
        case("org/delete", &[("name", "not the name")], Owner, false),
        // Last: these end the caller's access.
        case("tools/delete", &[("id", tool_id)], Admin, true),
        case("agents/delete", &[("id", agent_id)], Admin, true),
        case("members/leave", &[], Member, false),
        case("auth/sign-out", &[], Public(200), false),
    ];

    // Every registered server function has a row, and every row is a server function.
    let registered: BTreeSet<String> = leptos::server_fn::axum::server_fn_paths()
        .map(|(path, _)| path.trim_start_matches("/rpc/").to_owned())
        .collect();
    let listed: BTreeSet<String> = table.iter().map(|c| c.path.to_owned()).collect();
    let missing: Vec<_> = registered.difference(&listed).collect();
    assert!(
        missing.is_empty(),
        "server functions without an authorization rule: {missing:?}"
    );
    let extra: Vec<_> = listed.difference(&registered).collect();
    assert!(
        extra.is_empty(),
        "rules for server functions that do not exist: {extra:?}"
    );

    let mut failures = Vec::new();
    // The dashboard's plain HTTP routes: readable by every member, nobody else.
    let rest = [
        ("/events", "/events"),
        ("/audit/export", "/audit/export?format=jsonl"),
    ];
    let rest_paths: Vec<&str> = rest.iter().map(|(p, _)| *p).collect();
    assert_eq!(
        rest_paths,
        agentkey::http::dashboard::ROUTES.to_vec(),
        "every dashboard route needs a row"
    );
    for (path, url) in rest {
        let mut who: Vec<(&str, Option<&str>, u16)> = vec![
            ("no session", None, 401),
            ("expired session", Some(expired.as_str()), 401),
        ];
        who.push(("another organization's owner", Some(stranger.as_str()), 200));
        for (email, _, cookie) in &callers {
            who.push((email.as_str(), cookie.as_deref(), 200));
        }
        for (name, cookie, expected) in who {
            let mut req = app.client.get(app.url(url));
            if let Some(cookie) = cookie {
                req = req.header("cookie", cookie);
            }
            let res = req.send().await.expect("request");
            let status = res.status().as_u16();
            if status != expected {
                failures.push(format!(
                    "{path} as {name}: got {status} (expected {expected})"
                ));
            }
            if name.starts_with("another")
                && path == "/audit/export"
                && res.text().await.unwrap_or_default().contains("GitHub")
            {
                failures.push(format!(
                    "{path} as {name}: the export shows this organization's data"
                ));
            }
        }
    }
    for c in &table {
        // `{who}` in a value becomes a per-caller tag (per-mailbox limits would otherwise bite).
        let forms: Vec<Vec<(&str, String)>> = (0..8)
            .map(|i| {
                c.form
                    .iter()
                    .map(|(k, v)| (*k, v.replace("{who}", &i.to_string())))
                    .collect()
            })
            .collect();
        let form_of = |i: usize| -> Vec<(&str, &str)> {
            forms[i].iter().map(|(k, v)| (*k, v.as_str())).collect()
        };
        let mut check = |who: &str, reply: Reply, expected: &str, ok: bool| {
            if !ok {
                failures.push(format!(
                    "{} as {who}: got {} (expected {expected}): {}",
                    c.path,
                    reply.status,
                    reply.body.chars().take(160).collect::<String>()
                ));
            }
        };
        let not_denied = |s: u16| s < 500 && s != 401 && s != 403;
        for (i, (who, cookie)) in [
            ("no session", None),
            ("expired session", Some(expired.as_str())),
        ]
        .into_iter()
        .enumerate()
        {
            let reply = rpc(&app, c.path, &form_of(i), cookie).await;
            let (expected, ok) = match c.rule {
                Public(status) => (status.to_string(), reply.status == status),
                _ => ("401".into(), reply.status == 401),
            };
            check(who, reply, &expected, ok);
        }
        let reply = rpc(&app, c.path, &form_of(2), Some(&stranger)).await;
        let (expected, ok) = match c.rule {
            Public(status) => (status.to_string(), reply.status == status),
            _ if c.scoped => (
                "404".into(),
                reply.status == 404
                    && !reply.body.contains("GitHub")
                    && !reply.body.contains("victim@"),
            ),
            _ => ("allowed".into(), not_denied(reply.status)),
        };
        check("another organization's owner", reply, &expected, ok);
        for (i, (who, role, cookie)) in callers.iter().enumerate() {
            let (role, cookie) = (role.expect("role"), cookie.as_deref());
            let reply = rpc(&app, c.path, &form_of(3 + i), cookie).await;
            let (expected, ok) = match c.rule {
                Public(status) => (status.to_string(), reply.status == status),
                Reads => ("200".into(), reply.status == 200),
                rule if rule.allows(role) => ("allowed".into(), not_denied(reply.status)),
                _ => (
                    "403".into(),
                    reply.status == 403 && !reply.body.contains("ghp_"),
                ),
            };
            check(who, reply, &expected, ok);
        }
    }
    assert!(
        failures.is_empty(),
        "{} authorization mismatches:\n{}",
        failures.len(),
        failures.join("\n")
    );
    app.stop().await;
}
