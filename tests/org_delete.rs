//! A deleted organization's data key leaves every instance's memory without a restart: at once
//! through the deletion's notification (PostgreSQL), and in any case at the next maintenance
//! pass, which finds its rows gone (any backend, even with the notification missed).

mod common;

use std::time::Duration;

use app::server::events::EventKind;
use app::server::service::{keys, orgs};
use common::{TestApp, TestBackend, spawn_app_on};

/// Instance A with a second organization, and instance B started after it (so B holds its key).
async fn doomed_org(backend: TestBackend) -> (TestApp, TestApp, String) {
    let a = spawn_app_on(backend, &[]).await;
    let org = orgs::create(&a.services, "Doomed", Some("doomed@example.com"))
        .await
        .expect("org");
    let b = a.second_instance(&[]).await;
    assert!(
        b.services.keys.current(&org.id).is_some(),
        "B holds the key"
    );
    (a, b, org.id)
}

async fn delete(a: &TestApp, org_id: &str) {
    let ctx = app::server::service::actor::AdminCtx::operator(org_id);
    orgs::delete(&a.services, &ctx, "Doomed")
        .await
        .expect("delete");
    assert!(
        a.services.keys.current(org_id).is_none(),
        "A drops it at once"
    );
}

#[tokio::test]
async fn the_maintenance_pass_drops_a_deleted_organizations_key_from_every_instance() {
    let (a, b, org_id) = doomed_org(TestBackend::current()).await;
    delete(&a, &org_id).await;

    let dropped = keys::forget_deleted_orgs(&b.services).await.expect("pass");

    assert_eq!(dropped, 1);
    assert!(b.services.keys.current(&org_id).is_none());
    assert!(!b.services.keys.organizations().contains(&org_id));
    assert!(
        b.services.keys.current(&a.org_id).is_some(),
        "other organizations keep theirs"
    );
    assert_eq!(
        keys::forget_deleted_orgs(&b.services).await.expect("pass"),
        0
    );
}

/// Waits (bounded) until B hears A's events, so that the notice under test cannot be lost to
/// B's LISTEN connection still starting.
async fn listening(a: &TestApp, b: &TestApp) {
    let mut heard = b.services.events.subscribe();
    for _ in 0..100 {
        a.services.events.publish(&a.org_id, EventKind::ToolChanged);
        if let Ok(Ok(_)) = tokio::time::timeout(Duration::from_millis(100), heard.recv()).await {
            return;
        }
    }
    panic!("B never heard A");
}

#[tokio::test]
async fn the_deletion_notice_drops_the_key_on_the_other_instance_at_once() {
    let (a, b, org_id) = doomed_org(TestBackend::Postgres).await;
    listening(&a, &b).await;
    delete(&a, &org_id).await;

    let mut held = true;
    for _ in 0..250 {
        held = b.services.keys.current(&org_id).is_some();
        if !held {
            break;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }

    assert!(!held, "B dropped the key without a maintenance pass");
    assert!(b.services.keys.current(&a.org_id).is_some());
}
