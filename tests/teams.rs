//! Several reviewers per organization: invitations by email, roles, quorum approvals and
//! separation of duties, over the real server and a real SMTP server on loopback.

mod common;

use app::model::{OrgId, RequestStatus, Role, UserId};
use app::server::service::actor::{AdminCtx, RequestMeta};
use app::server::service::{agents, auth, grants, members, tools};
use common::rpc::OWNER;
use common::smtp::SmtpSink;
use common::{TestApp, spawn_app, spawn_app_with};

async fn team_app() -> (TestApp, SmtpSink) {
    let sink = SmtpSink::start().await;
    let app = spawn_app_with(&[("AGENTKEY_SMTP_URL", &sink.url())]).await;
    (app, sink)
}

/// The invitation token in a mail.
fn invite_token(mail: &str) -> String {
    let start = mail
        .find("invite?token=")
        .expect("mail has an invitation link")
        + "invite?token=".len();
    mail[start..start + 64].to_owned()
}

/// Invites `email` as `role` (by the operator), accepts through the mailed link, and returns
/// the new member's context as the dashboard would build it.
async fn join(app: &TestApp, sink: &SmtpSink, email: &str, role: Role) -> AdminCtx {
    let n = sink.count();
    members::invite(&app.services, &app.admin, email, role)
        .await
        .expect("invite");
    let token = invite_token(&sink.wait_for(n).await);
    let joined = members::accept(&app.services, &token, &RequestMeta::default())
        .await
        .expect("accept");
    auth::member(
        &app.services,
        &UserId::new(joined.user_id.clone()),
        Some(&app.org_id),
        RequestMeta::default(),
    )
    .await
    .expect("member")
    .0
}

#[tokio::test]
async fn a_quorum_of_two_needs_two_different_reviewers_and_one_deny_ends_it() {
    let (app, sink) = team_app().await;
    let alice = join(&app, &sink, "alice@example.com", Role::Approver).await;
    let bob = join(&app, &sink, "bob@example.com", Role::Approver).await;
    let tool = app.create_shared_tool("Stripe", None, "sk_live_x").await;
    tools::set_approvals_required(&app.services, &app.admin, &tool.id, 2)
        .await
        .expect("quorum");
    let (_, key) = app.create_agent("billing-bot").await;

    let id = app.request_access(&key, &tool.id).await;
    let first = grants::approve(&app.services, &alice, &id, None, None)
        .await
        .expect("first approval");
    assert_eq!(
        first.status,
        RequestStatus::Pending,
        "one of two approvals leaves it pending"
    );
    assert_eq!(first.approved_by, vec!["alice@example.com".to_owned()]);
    let again = grants::approve(&app.services, &alice, &id, None, None)
        .await
        .expect_err("the same person twice");
    assert_eq!(again.status().as_u16(), 409);
    assert_eq!(
        app.fetch(&key, &tool.id).await.status(),
        403,
        "no credential before the quorum"
    );
    let inbox = grants::list(&app.services, &bob, Some(RequestStatus::Pending), 10)
        .await
        .expect("inbox");
    assert_eq!(
        inbox[0].approved_by,
        vec!["alice@example.com".to_owned()],
        "the inbox shows who approved"
    );
    assert_eq!(inbox[0].approvals_required, 2);

    let done = grants::approve(&app.services, &bob, &id, None, None)
        .await
        .expect("second approval");
    assert_eq!(done.status, RequestStatus::Approved);
    assert_eq!(app.fetch(&key, &tool.id).await.status(), 200);
    assert_eq!(
        app.count("SELECT COUNT(*) FROM audit_log WHERE action = 'grant.approval_recorded'")
            .await,
        1
    );
    let approved = app.count("SELECT COUNT(*) FROM audit_log WHERE action = 'grant.approved' AND metadata LIKE '%alice@example.com%bob@example.com%'").await;
    assert_eq!(approved, 1, "the approval names both reviewers");

    // A second request: one approval, then a deny ends it.
    let other = app.create_shared_tool("Linear", None, "lin_x").await;
    tools::set_approvals_required(&app.services, &app.admin, &other.id, 2)
        .await
        .expect("quorum");
    let id = app.request_access(&key, &other.id).await;
    grants::approve(&app.services, &alice, &id, None, None)
        .await
        .expect("one approval");
    let denied = grants::deny(&app.services, &bob, &id, Some("Not for billing"))
        .await
        .expect("deny");
    assert_eq!(denied.status, RequestStatus::Denied);
    let late = grants::approve(&app.services, &bob, &id, None, None)
        .await
        .expect_err("decided");
    assert_eq!(late.status().as_u16(), 409);
    app.stop().await;
}

#[tokio::test]
async fn whoever_registered_the_agent_cannot_approve_it_when_several_approvals_are_needed() {
    let (app, sink) = team_app().await;
    let carol = join(&app, &sink, "carol@example.com", Role::Admin).await;
    let dave = join(&app, &sink, "dave@example.com", Role::Approver).await;
    let issued = agents::create(&app.services, &carol, "carols-bot", "registered by carol")
        .await
        .expect("agent");
    let tool = app.create_shared_tool("GitHub", None, "ghp_x").await;
    tools::set_approvals_required(&app.services, &app.admin, &tool.id, 2)
        .await
        .expect("quorum");
    let id = app.request_access(&issued.api_key, &tool.id).await;

    let err = grants::approve(&app.services, &carol, &id, None, None)
        .await
        .expect_err("separation of duties");
    assert_eq!(err.status().as_u16(), 403);
    assert!(
        err.body().error.contains("registered this agent"),
        "{:?}",
        err.body()
    );
    assert_eq!(
        app.count("SELECT COUNT(*) FROM request_votes").await,
        0,
        "the refused vote left nothing"
    );
    grants::approve(&app.services, &dave, &id, None, None)
        .await
        .expect("dave");
    let done = grants::approve(&app.services, &app.admin, &id, None, None)
        .await
        .expect("the operator");
    assert_eq!(done.status, RequestStatus::Approved);

    // With a quorum of one the registrant may approve.
    let solo = app.create_shared_tool("Notion", None, "secret_x").await;
    let id = app.request_access(&issued.api_key, &solo.id).await;
    assert_eq!(
        grants::approve(&app.services, &carol, &id, None, None)
            .await
            .expect("quorum 1")
            .status,
        RequestStatus::Approved
    );
    app.stop().await;
}

#[tokio::test]
async fn roles_limit_what_each_member_may_do() {
    let (app, sink) = team_app().await;
    let auditor = join(&app, &sink, "audra@example.com", Role::Auditor).await;
    let approver = join(&app, &sink, "abe@example.com", Role::Approver).await;
    let admin = join(&app, &sink, "ada@example.com", Role::Admin).await;
    let tool = app.create_shared_tool("GitHub", None, "ghp_x").await;
    let (_, key) = app.create_agent("bot").await;
    let id = app.request_access(&key, &tool.id).await;

    assert_eq!(
        grants::approve(&app.services, &auditor, &id, None, None)
            .await
            .expect_err("auditor")
            .status()
            .as_u16(),
        403
    );
    assert!(
        grants::list(&app.services, &auditor, None, 10)
            .await
            .is_ok(),
        "auditors read"
    );
    assert!(
        app::server::service::audit::list(&app.services, &auditor, &Default::default(), 10)
            .await
            .is_ok(),
        "auditors read the audit log"
    );
    assert_eq!(
        agents::create(&app.services, &approver, "x-bot", "")
            .await
            .expect_err("approver")
            .status()
            .as_u16(),
        403
    );
    assert_eq!(
        members::invite(&app.services, &approver, "eve@example.com", Role::Auditor)
            .await
            .expect_err("approver")
            .status()
            .as_u16(),
        403
    );
    assert_eq!(
        members::invite(&app.services, &admin, "eve@example.com", Role::Owner)
            .await
            .expect_err("admin → owner")
            .status()
            .as_u16(),
        403
    );
    assert_eq!(
        members::change_role(&app.services, &admin, &approver.actor.id, Role::Admin)
            .await
            .expect_err("admin")
            .status()
            .as_u16(),
        403
    );
    assert_eq!(
        grants::approve(&app.services, &approver, &id, None, None)
            .await
            .expect("approver decides")
            .status,
        RequestStatus::Approved
    );
    app.stop().await;
}

#[tokio::test]
async fn an_invitation_works_once_for_its_address_and_not_after_revocation_or_expiry() {
    let (app, sink) = team_app().await;
    let n = sink.count();
    let invitation = members::invite(
        &app.services,
        &app.admin,
        " Fay@Example.com ",
        Role::Approver,
    )
    .await
    .expect("invite");
    assert_eq!(invitation.email, "fay@example.com");
    let mail = sink.wait_for(n).await;
    assert!(mail.contains("To: fay@example.com"), "{mail}");
    let token = invite_token(&mail);
    assert_eq!(
        app.count(&format!(
            "SELECT COUNT(*) FROM invitations WHERE token_hash LIKE '%{token}%'"
        ))
        .await,
        0,
        "stored hashed"
    );

    let peek = members::peek(&app.services, &token).await.expect("peek");
    assert!(
        peek.valid
            && peek.email.as_deref() == Some("fay@example.com")
            && peek.role == Some(Role::Approver)
    );
    members::accept(&app.services, &token, &RequestMeta::default())
        .await
        .expect("accept");
    let again = members::accept(&app.services, &token, &RequestMeta::default())
        .await
        .expect_err("used");
    assert_eq!(again.status().as_u16(), 401);
    let dup = members::invite(&app.services, &app.admin, "fay@example.com", Role::Auditor)
        .await
        .expect_err("member");
    assert_eq!(dup.status().as_u16(), 409);

    // Revoked.
    let n = sink.count();
    let inv = members::invite(&app.services, &app.admin, "gus@example.com", Role::Auditor)
        .await
        .expect("invite");
    let token = invite_token(&sink.wait_for(n).await);
    members::revoke_invitation(&app.services, &app.admin, &inv.id)
        .await
        .expect("revoke");
    assert_eq!(
        members::accept(&app.services, &token, &RequestMeta::default())
            .await
            .expect_err("revoked")
            .status()
            .as_u16(),
        401
    );

    // Resent: the old link dies, the new one works.
    let n = sink.count();
    let inv = members::invite(&app.services, &app.admin, "hal@example.com", Role::Auditor)
        .await
        .expect("invite");
    let old = invite_token(&sink.wait_for(n).await);
    members::resend(&app.services, &app.admin, &inv.id)
        .await
        .expect("resend");
    let new = invite_token(&sink.wait_for(n + 1).await);
    assert_ne!(old, new);
    assert_eq!(
        members::accept(&app.services, &old, &RequestMeta::default())
            .await
            .expect_err("replaced")
            .status()
            .as_u16(),
        401
    );

    // Expired.
    app.exec("UPDATE invitations SET expires_at = 0 WHERE email = 'hal@example.com'")
        .await;
    assert_eq!(
        members::accept(&app.services, &new, &RequestMeta::default())
            .await
            .expect_err("expired")
            .status()
            .as_u16(),
        401
    );
    assert!(
        !members::peek(&app.services, &new)
            .await
            .expect("peek")
            .valid
    );

    // Allowed domains.
    members::set_allowed_domains(&app.services, &app.admin, "example.com")
        .await
        .expect("domains");
    let err = members::invite(
        &app.services,
        &app.admin,
        "mallory@evil.test",
        Role::Auditor,
    )
    .await
    .expect_err("domain");
    assert_eq!(err.status().as_u16(), 400);
    assert!(app.count("SELECT COUNT(*) FROM audit_log WHERE action IN ('member.invited', 'member.joined', 'invitation.revoked')").await >= 5);
    app.stop().await;
}

#[tokio::test]
async fn the_last_owner_stays_and_removed_members_lose_their_sessions_at_once() {
    let (app, sink) = team_app().await;
    let ivy = join(&app, &sink, "ivy@example.com", Role::Approver).await;
    let owner_id: String = {
        let mut db = app.raw_db().await;
        sqlx::query_scalar("SELECT u.id FROM users u WHERE u.email = 'owner@example.com'")
            .fetch_one(&mut db)
            .await
            .expect("owner")
    };
    let owner = auth::member(
        &app.services,
        &UserId::new(owner_id.clone()),
        Some(&app.org_id),
        RequestMeta::default(),
    )
    .await
    .expect("owner")
    .0;
    let err = members::change_role(&app.services, &owner, &owner_id, Role::Admin)
        .await
        .expect_err("last owner");
    assert_eq!(err.status().as_u16(), 409);
    assert_eq!(
        members::leave(&app.services, &owner)
            .await
            .expect_err("last owner leaves")
            .status()
            .as_u16(),
        409
    );

    members::change_role(&app.services, &owner, &ivy.actor.id, Role::Owner)
        .await
        .expect("promote");
    members::change_role(&app.services, &owner, &owner_id, Role::Admin)
        .await
        .expect("now allowed");
    members::change_role(&app.services, &app.admin, &owner_id, Role::Owner)
        .await
        .expect("back");

    app.exec(&format!(
        "INSERT INTO sessions (id_hash, user_id, data, created_at, updated_at, expires_at) VALUES ('h1', '{}', '{{}}', 0, 0, 9999999999999)",
        ivy.actor.id
    ))
    .await;
    members::remove(&app.services, &owner, &ivy.actor.id)
        .await
        .expect("remove");
    assert_eq!(
        app.count(&format!(
            "SELECT COUNT(*) FROM sessions WHERE user_id = '{}'",
            ivy.actor.id
        ))
        .await,
        0
    );
    let gone = auth::member(
        &app.services,
        &ivy.user_id(),
        Some(&app.org_id),
        RequestMeta::default(),
    )
    .await;
    assert!(
        gone.is_err(),
        "a removed member has no context in the organization"
    );
    assert_eq!(app.count("SELECT COUNT(*) FROM audit_log WHERE action IN ('member.role_changed', 'member.removed')").await, 4);
    app.stop().await;
}

#[tokio::test]
async fn deleting_an_organization_closes_every_way_in_and_destroys_its_secrets_but_keeps_its_audit_log()
 {
    let (app, sink) = team_app().await;
    let admin = join(&app, &sink, "ann@example.com", Role::Admin).await;
    let tool = app.create_shared_tool("GitHub", None, "ghp_doomed").await;
    let (_, key) = app.create_agent("bot").await;
    app.grant(&key, &tool.id).await;
    assert_eq!(app.fetch(&key, &tool.id).await.status(), 200);

    let err = app::server::service::orgs::delete(&app.services, &admin, "Test Org")
        .await
        .expect_err("admins may not");
    assert_eq!(err.status().as_u16(), 403);
    let err = app::server::service::orgs::delete(&app.services, &app.admin, "Wrong Name")
        .await
        .expect_err("name must match");
    assert_eq!(err.status().as_u16(), 400);
    assert_eq!(
        app.fetch(&key, &tool.id).await.status(),
        200,
        "a refused delete changed nothing"
    );

    app::server::service::orgs::delete(&app.services, &app.admin, "Test Org")
        .await
        .expect("deleted");
    assert_eq!(
        app.fetch(&key, &tool.id).await.status(),
        403,
        "the agent's next fetch is refused"
    );
    assert_eq!(
        app.count(&format!(
            "SELECT COUNT(*) FROM data_keys WHERE organization_id = '{}'",
            app.org_id
        ))
        .await,
        0,
        "keys destroyed"
    );
    assert_eq!(
        app.count("SELECT COUNT(*) FROM tools WHERE credential_blob IS NOT NULL")
            .await,
        0
    );
    assert_eq!(
        app.count(&format!(
            "SELECT COUNT(*) FROM memberships WHERE organization_id = '{}'",
            app.org_id
        ))
        .await,
        0
    );
    assert!(
        auth::member(
            &app.services,
            &admin.user_id(),
            Some(&app.org_id),
            RequestMeta::default()
        )
        .await
        .is_err()
    );
    assert!(
        app::server::service::orgs::list(&app.services)
            .await
            .expect("orgs")
            .iter()
            .all(|o| o.id != app.org_id)
    );
    assert_eq!(
        app.count("SELECT COUNT(*) FROM audit_log WHERE action = 'organization.deleted'")
            .await,
        1
    );
    let report =
        app::server::audit::chain::verify(&app.services.store, &OrgId::new(app.org_id.clone()))
            .await
            .expect("verify");
    assert!(
        report.broken_at_seq.is_none() && report.rows_checked > 5,
        "the audit chain still verifies: {report:?}"
    );
    app.stop().await;
}

#[tokio::test]
async fn votes_of_members_who_leave_or_lose_the_right_to_decide_no_longer_count() {
    let (app, sink) = team_app().await;
    let alice = join(&app, &sink, "alice@example.com", Role::Approver).await;
    let bob = join(&app, &sink, "bob@example.com", Role::Approver).await;
    let cleo = join(&app, &sink, "cleo@example.com", Role::Approver).await;
    let tool = app.create_shared_tool("Stripe", None, "sk_x").await;
    tools::set_approvals_required(&app.services, &app.admin, &tool.id, 2)
        .await
        .expect("quorum");
    let (_, key) = app.create_agent("bot").await;
    let id = app.request_access(&key, &tool.id).await;

    grants::approve(&app.services, &alice, &id, None, None)
        .await
        .expect("alice");
    members::remove(&app.services, &app.admin, &alice.actor.id)
        .await
        .expect("alice removed");
    let after = grants::approve(&app.services, &bob, &id, None, None)
        .await
        .expect("bob");
    assert_eq!(
        after.status,
        RequestStatus::Pending,
        "alice's vote left with her"
    );
    assert_eq!(after.approved_by, vec!["bob@example.com".to_owned()]);

    members::change_role(&app.services, &app.admin, &bob.actor.id, Role::Auditor)
        .await
        .expect("bob demoted");
    let after = grants::approve(&app.services, &cleo, &id, None, None)
        .await
        .expect("cleo");
    assert_eq!(
        after.status,
        RequestStatus::Pending,
        "an auditor's earlier vote does not count"
    );
    app.stop().await;
}

#[tokio::test]
async fn lowering_the_quorum_does_not_let_the_agents_registrant_approve_a_pending_request_alone() {
    let (app, sink) = team_app().await;
    let carol = join(&app, &sink, "carol@example.com", Role::Admin).await;
    let issued = agents::create(&app.services, &carol, "carols-bot", "")
        .await
        .expect("agent");
    let tool = app.create_shared_tool("GitHub", None, "ghp_x").await;
    tools::set_approvals_required(&app.services, &carol, &tool.id, 2)
        .await
        .expect("quorum 2");
    let id = app.request_access(&issued.api_key, &tool.id).await;
    tools::set_approvals_required(&app.services, &carol, &tool.id, 1)
        .await
        .expect("quorum 1");
    let err = grants::approve(&app.services, &carol, &id, None, None)
        .await
        .expect_err("still two for this request");
    assert_eq!(err.status().as_u16(), 403);
    assert_eq!(app.fetch(&issued.api_key, &tool.id).await.status(), 403);
    app.stop().await;
}

#[tokio::test]
async fn a_grant_on_a_tool_with_a_quorum_is_one_vote_and_refusals_write_nothing() {
    let (app, sink) = team_app().await;
    let carol = join(&app, &sink, "carol@example.com", Role::Admin).await;
    let dave = join(&app, &sink, "dave@example.com", Role::Approver).await;
    let issued = agents::create(&app.services, &carol, "carols-bot", "")
        .await
        .expect("agent");
    let tool = app.create_shared_tool("GitHub", None, "ghp_x").await;
    tools::set_approvals_required(&app.services, &app.admin, &tool.id, 2)
        .await
        .expect("quorum");

    let err = grants::grant(
        &app.services,
        &carol,
        &issued.agent.id,
        &tool.id,
        "Carol wants it",
        None,
    )
    .await
    .expect_err("registrant");
    assert_eq!(err.status().as_u16(), 403);
    assert_eq!(
        app.count("SELECT COUNT(*) FROM access_requests").await,
        0,
        "the refused grant wrote nothing"
    );

    let granted = grants::grant(
        &app.services,
        &dave,
        &issued.agent.id,
        &tool.id,
        "Needed for the release",
        None,
    )
    .await
    .expect("grant");
    assert_eq!(granted.status, RequestStatus::Pending);
    assert_eq!(granted.approved_by, vec!["dave@example.com".to_owned()]);
    let done = grants::approve(&app.services, &app.admin, &granted.id, None, None)
        .await
        .expect("second");
    assert_eq!(done.status, RequestStatus::Approved);
    app.stop().await;
}

/// A bulk decision is the service's: each request on its own, the first failure stops the
/// batch and says how many were decided before it, and those decisions stand.
#[tokio::test]
async fn a_bulk_approval_stops_at_the_first_refusal_and_keeps_what_it_decided() {
    let app = spawn_app().await;
    let tool = app.create_shared_tool("Linear", None, "lin_bulk").await;
    let (_, first_key) = app.create_agent("first-bot").await;
    let (_, second_key) = app.create_agent("second-bot").await;
    let first = app.request_access(&first_key, &tool.id).await;
    let second = app.request_access(&second_key, &tool.id).await;
    grants::deny(&app.services, &app.admin, &second, Some("not now"))
        .await
        .expect("deny");

    let err = grants::decide_many(
        &app.services,
        &app.admin,
        &[first.clone(), second.clone(), first.clone()],
        true,
        None,
    )
    .await
    .expect_err("the denied request cannot be approved");

    assert_eq!(err.status().as_u16(), 409);
    assert!(
        err.body().error.starts_with("1 decided, then: "),
        "{}",
        err.body().error
    );
    assert_eq!(
        app.fetch(&first_key, &tool.id).await.status(),
        200,
        "the first decision stands"
    );
    let too_many = vec![first; grants::BULK_MAX + 1];
    let err = grants::decide_many(&app.services, &app.admin, &too_many, false, None)
        .await
        .expect_err("over the limit");
    assert_eq!(err.status().as_u16(), 409);
}

/// Switching organization is checked against the memberships in the database: one's own
/// organization is accepted, another existing one is not found.
#[tokio::test]
async fn switching_to_an_organization_one_is_not_a_member_of_is_not_found() {
    let app = spawn_app().await;
    let other = app.other_org("Elsewhere").await;
    let owner = app::server::store::auth::find_member_user(app.services.store.reader(), OWNER)
        .await
        .expect("lookup")
        .expect("the owner is a member");

    let own = auth::switch_target(&app.services, &owner, &app.org_id).await;
    assert_eq!(own.expect("own organization").as_str(), app.org_id);
    let err = auth::switch_target(&app.services, &owner, &other.org_id)
        .await
        .expect_err("not a member");
    assert_eq!(err.status().as_u16(), 404);
    let err = auth::switch_target(&app.services, &owner, "../not-an-id")
        .await
        .expect_err("not an id");
    assert_eq!(err.status().as_u16(), 404);
}

#[tokio::test]
async fn a_quorum_the_team_cannot_reach_is_refused_or_warned_with_the_number_of_reviewers_it_has() {
    let (app, sink) = team_app().await;
    // The owner and carol: a two-person team, and carol registers the agent.
    let carol = join(&app, &sink, "carol@example.com", Role::Admin).await;
    agents::create(&app.services, &carol, "carols-bot", "")
        .await
        .expect("agent");
    let tool = app.create_shared_tool("Stripe", None, "sk_live_q").await;

    let err = tools::set_approvals_required(&app.services, &carol, &tool.id, 3)
        .await
        .expect_err("two reviewers never make three approvals");
    assert_eq!(err.status().as_u16(), 409);
    let body = err.body();
    assert_eq!(body.extra["eligible_reviewers"], 2);
    assert_eq!(body.extra["reviewers_needed"], 3);
    assert!(
        body.hint
            .as_deref()
            .is_some_and(|h| h.contains("Invite 1 more"))
    );
    assert_eq!(
        tools::get(&app.services, &app.admin, &tool.id)
            .await
            .expect("tool")
            .approvals_required,
        1,
        "nothing changed"
    );

    let two = tools::set_approvals_required(&app.services, &carol, &tool.id, 2)
        .await
        .expect("reachable for agents the others registered");
    let warning = two.warning.expect("a clear warning");
    assert!(
        warning.contains("carols-bot")
            && warning.contains("carol@example.com")
            && warning.contains("2 member(s)"),
        "it says whose requests cannot reach the quorum: {warning}"
    );

    let dave = join(&app, &sink, "dave@example.com", Role::Approver).await;
    let two = tools::set_approvals_required(&app.services, &carol, &tool.id, 2)
        .await
        .expect("three reviewers");
    assert_eq!(two.warning, None);
    let three = tools::set_approvals_required(&app.services, &carol, &tool.id, 3)
        .await
        .expect("three reviewers, one of them the registrant");
    assert!(three.warning.is_some_and(|w| w.contains("carols-bot")));
    tools::set_approvals_required(&app.services, &carol, &tool.id, 2)
        .await
        .expect("back to two");

    // The inbox tells each reviewer whether they may approve, and why not.
    let bot_key = agents::list(&app.services, &app.admin)
        .await
        .expect("agents");
    assert_eq!(bot_key.len(), 1);
    let issued = agents::rotate_key(&app.services, &carol, &bot_key[0].id)
        .await
        .expect("key");
    let id = app.request_access(&issued.api_key, &tool.id).await;
    let row = |list: Vec<app::model::AccessRequestView>| {
        list.into_iter().find(|r| r.id == id).expect("the request")
    };
    let for_carol = row(grants::list(&app.services, &carol, None, 50)
        .await
        .expect("list"));
    assert!(
        for_carol
            .cannot_approve
            .as_deref()
            .is_some_and(|w| w.contains("You registered this agent")),
        "{:?}",
        for_carol.cannot_approve
    );
    let for_dave = row(grants::list(&app.services, &dave, None, 50)
        .await
        .expect("list"));
    assert_eq!(for_dave.cannot_approve, None);
    grants::approve(&app.services, &dave, &id, None, None)
        .await
        .expect("first vote");
    let for_dave = row(grants::list(&app.services, &dave, None, 50)
        .await
        .expect("list"));
    assert!(
        for_dave
            .cannot_approve
            .as_deref()
            .is_some_and(|w| w.contains("approved already")),
        "{:?}",
        for_dave.cannot_approve
    );
}
