//! Notification settings: channels (Slack and Discord webhooks, email to members who opt in),
//! the events each channel receives, test sends, and dead letters with retry. Webhook URLs are
//! sealed like credentials and never shown again; the dashboard sees a masked hint.

use secrecy::{ExposeSecret, SecretString};
use serde_json::json;

use super::actor::{AdminCtx, Permission};
use super::{is_uuid, new_id};
use crate::model::{
    AlertEvent, ChannelKind, ChannelView, DeadLetterView, NotificationSettingsView, TestResult,
};
use crate::server::audit::{self, AuditEntry};
use crate::server::notify::{self, Alert, deliver, webhook};
use crate::server::store::{self, notify::ChannelWrite};
use crate::server::{ServiceError, ServiceResult, Services, clock};

const DEAD_LETTERS_SHOWN: i64 = 100;

/// The notifications section of the settings page.
pub async fn settings(svc: &Services, ctx: &AdminCtx) -> ServiceResult<NotificationSettingsView> {
    ctx.require(Permission::ReadAll)?;
    let reader = svc.store.reader();
    let rows = store::notify::list_channels(reader, &ctx.org_id).await?;
    let channels = ChannelKind::ALL
        .iter()
        .map(|&kind| match rows.iter().find(|r| r.kind == kind) {
            Some(r) => ChannelView {
                kind,
                configured: kind == ChannelKind::Email || r.target_blob.is_some(),
                target_hint: r.target_hint.clone(),
                events: notify::parse_events(&r.events),
                last_status: r.last_status.clone(),
                last_at: clock::iso_opt(r.last_at),
                last_error: r.last_error.clone(),
            },
            None => ChannelView {
                kind,
                configured: kind == ChannelKind::Email,
                target_hint: None,
                events: AlertEvent::DEFAULT.to_vec(),
                last_status: None,
                last_at: None,
                last_error: None,
            },
        })
        .collect();
    let (pending, delivered, _) = store::outbox::count_by_status(reader, &ctx.org_id).await?;
    let dead = store::outbox::list_dead(reader, &ctx.org_id, DEAD_LETTERS_SHOWN)
        .await?
        .into_iter()
        .map(|row| {
            let summary = serde_json::from_str::<Alert>(&row.payload)
                .map(|a| {
                    format!(
                        "{}: {} → {}",
                        notify::render::title(&a),
                        a.agent_name,
                        a.tool_name
                    )
                })
                .unwrap_or_default();
            DeadLetterView {
                channel: row.channel,
                event: AlertEvent::parse(&row.event).unwrap_or(AlertEvent::AccessRequested),
                id: row.id,
                recipient: row.recipient,
                summary,
                attempts: row.attempts,
                last_error: row.last_error,
                created_at: clock::iso(row.created_at),
            }
        })
        .collect();
    Ok(NotificationSettingsView {
        channels,
        email_opt_in: store::notify::email_opted_in(reader, &ctx.org_id, &ctx.user_id()).await?,
        email_recipients: store::notify::email_recipients(reader, &ctx.org_id)
            .await?
            .len() as i64,
        pending,
        delivered,
        dead,
        can_manage: ctx.role.allows(Permission::ManageNotifications),
    })
}

fn webhook_kind(kind: ChannelKind) -> ServiceResult<ChannelKind> {
    if kind == ChannelKind::Email {
        return Err(ServiceError::field(
            "kind",
            "email needs no webhook URL",
            "Members turn alert mail on for themselves.",
        ));
    }
    Ok(kind)
}

/// Saves (or replaces) a Slack or Discord webhook. The URL must be the provider's official
/// host and path and resolve only to public addresses; nothing is sent while saving.
pub async fn save_webhook(
    svc: &Services,
    ctx: &AdminCtx,
    kind: ChannelKind,
    url: SecretString,
    events: &[AlertEvent],
) -> ServiceResult<ChannelView> {
    ctx.require(Permission::ManageNotifications)?;
    let kind = webhook_kind(kind)?;
    let hint = "Paste the incoming-webhook URL exactly as the provider shows it.";
    let allow_loopback = svc.notifier.outbound.allows_loopback();
    let parsed = webhook::validate_webhook(kind, url.expose_secret(), allow_loopback)
        .map_err(|e| ServiceError::field("url", e, hint))?;
    svc.notifier
        .outbound
        .check_destination(&parsed)
        .await
        .map_err(|e| ServiceError::field("url", format!("is refused: {e}"), hint))?;
    let now = clock::now_ms();
    let masked = webhook::mask(&parsed);
    let events = notify::join_events(events);
    // The id is read under the write lock: the URL is sealed for the row that will hold it.
    let mut tx = svc.store.begin().await?;
    let existing = store::notify::find_channel(&mut *tx, &ctx.org_id, kind).await?;
    let id = existing.map(|c| c.id).unwrap_or_else(new_id);
    let blob = super::keys::seal(
        svc,
        deliver::webhook_slot(&ctx.org_id, &id),
        &SecretString::from(parsed.to_string()),
    )
    .await?;
    let write = ChannelWrite {
        id: &id,
        org_id: &ctx.org_id,
        kind,
        target_blob: Some(&blob),
        target_hint: Some(&masked),
        events: &events,
        updated_by: &ctx.actor.label,
        new_target: true,
    };
    store::notify::upsert_channel(&mut tx, &write, now).await?;
    let entry = AuditEntry::new(
        &ctx.org_id,
        &ctx.actor,
        &ctx.meta,
        "notification.channel_saved",
    )
    .target("notification_channel", &id)
    .meta(json!({ "channel": kind.as_str(), "target": masked, "events": events }));
    audit::append(&mut tx, svc.store.heads(), &[entry]).await?;
    tx.commit().await?;
    channel(svc, ctx, kind).await
}

/// Chooses which events a channel receives (creating the email channel on first use).
pub async fn set_events(
    svc: &Services,
    ctx: &AdminCtx,
    kind: ChannelKind,
    events: &[AlertEvent],
) -> ServiceResult<ChannelView> {
    ctx.require(Permission::ManageNotifications)?;
    let now = clock::now_ms();
    let events = notify::join_events(events);
    let mut tx = svc.store.begin().await?;
    let existing = store::notify::find_channel(&mut *tx, &ctx.org_id, kind).await?;
    if kind != ChannelKind::Email && existing.as_ref().is_none_or(|c| c.target_blob.is_none()) {
        return Err(ServiceError::conflict(
            &format!("No {} webhook is saved yet.", kind.label()),
            "Save the webhook URL first; its events can be chosen with it.",
        ));
    }
    let id = existing
        .as_ref()
        .map(|c| c.id.clone())
        .unwrap_or_else(new_id);
    let write = ChannelWrite {
        id: &id,
        org_id: &ctx.org_id,
        kind,
        target_blob: existing.as_ref().and_then(|c| c.target_blob.as_deref()),
        target_hint: existing.as_ref().and_then(|c| c.target_hint.as_deref()),
        events: &events,
        updated_by: &ctx.actor.label,
        new_target: false,
    };
    store::notify::upsert_channel(&mut tx, &write, now).await?;
    let entry = AuditEntry::new(
        &ctx.org_id,
        &ctx.actor,
        &ctx.meta,
        "notification.events_changed",
    )
    .target("notification_channel", &id)
    .meta(json!({ "channel": kind.as_str(), "events": events }));
    audit::append(&mut tx, svc.store.heads(), &[entry]).await?;
    tx.commit().await?;
    channel(svc, ctx, kind).await
}

/// Removes a channel. Its undelivered notifications become dead letters saying so, rather
/// than vanishing.
pub async fn remove_channel(
    svc: &Services,
    ctx: &AdminCtx,
    kind: ChannelKind,
) -> ServiceResult<()> {
    ctx.require(Permission::ManageNotifications)?;
    let mut tx = svc.store.begin().await?;
    if !store::notify::delete_channel(&mut tx, &ctx.org_id, kind).await? {
        return Err(ServiceError::not_found(
            &format!("No {} channel is configured.", kind.label()),
            "Nothing to remove.",
        ));
    }
    let dropped =
        store::outbox::dead_letter_channel(&mut tx, &ctx.org_id, kind, "the channel was removed")
            .await?;
    let entry = AuditEntry::new(
        &ctx.org_id,
        &ctx.actor,
        &ctx.meta,
        "notification.channel_removed",
    )
    .target("notification_channel", kind.as_str())
    .meta(json!({ "channel": kind.as_str(), "undelivered": dropped }));
    audit::append(&mut tx, svc.store.heads(), &[entry]).await?;
    tx.commit().await?;
    Ok(())
}

/// A member turns alert mail on or off for themselves.
pub async fn set_email_opt_in(svc: &Services, ctx: &AdminCtx, on: bool) -> ServiceResult<()> {
    ctx.require(Permission::ReadAll)?;
    let mut tx = svc.store.begin().await?;
    if !store::notify::set_email_opt_in(&mut tx, &ctx.org_id, &ctx.user_id(), on).await? {
        return Err(ServiceError::forbidden(
            "Only members of the organization receive alert mail.",
            "Sign in as a member.",
        ));
    }
    // The first member to opt in starts the email channel with the default events.
    if on
        && store::notify::find_channel(&mut *tx, &ctx.org_id, ChannelKind::Email)
            .await?
            .is_none()
    {
        let write = ChannelWrite {
            id: &new_id(),
            org_id: &ctx.org_id,
            kind: ChannelKind::Email,
            target_blob: None,
            target_hint: None,
            events: &notify::join_events(AlertEvent::DEFAULT),
            updated_by: &ctx.actor.label,
            new_target: false,
        };
        store::notify::upsert_channel(&mut tx, &write, clock::now_ms()).await?;
    }
    let entry = AuditEntry::new(
        &ctx.org_id,
        &ctx.actor,
        &ctx.meta,
        "notification.email_opt_in",
    )
    .target("member", &ctx.actor.id)
    .meta(json!({ "on": on }));
    audit::append(&mut tx, svc.store.heads(), &[entry]).await?;
    tx.commit().await?;
    Ok(())
}

/// Sends a test alert to a channel now (email: to the caller) and reports the outcome.
pub async fn send_test(
    svc: &Services,
    ctx: &AdminCtx,
    kind: ChannelKind,
) -> ServiceResult<TestResult> {
    if kind == ChannelKind::Email {
        ctx.require(Permission::ReadAll)?;
    } else {
        ctx.require(Permission::ManageNotifications)?;
    }
    let org = store::orgs::find_organization(svc.store.reader(), &ctx.org_id)
        .await?
        .map(|o| o.name)
        .unwrap_or_default();
    let note = format!("{} sent this test from the settings page.", ctx.actor.label);
    let alert = Alert {
        org_name: org,
        ..Alert::new(
            AlertEvent::AccessRequested,
            "AgentKey test",
            "Test notification",
            &note,
            svc.link("/settings"),
            clock::now_ms(),
        )
    };
    let recipient = (kind == ChannelKind::Email).then(|| ctx.actor.label.clone());
    let key = new_id();
    let result = deliver::send(svc, &ctx.org_id, kind, recipient.as_deref(), &alert, &key).await;
    let now = clock::now_ms();
    let error = result.as_ref().err().map(|e| e.message().to_owned());
    let mut tx = svc.store.begin().await?;
    store::notify::record_channel_result(&mut *tx, &ctx.org_id, kind, error.as_deref(), now)
        .await?;
    let entry = AuditEntry::new(&ctx.org_id, &ctx.actor, &ctx.meta, "notification.tested")
        .target("notification_channel", kind.as_str())
        .meta(json!({ "channel": kind.as_str(), "delivered": error.is_none(), "error": error }));
    audit::append(&mut tx, svc.store.heads(), &[entry]).await?;
    tx.commit().await?;
    Ok(match error {
        None => TestResult {
            delivered: true,
            message: format!("Test sent to {}.", kind.label()),
        },
        Some(e) => TestResult {
            delivered: false,
            message: format!("{} did not accept the test: {e}", kind.label()),
        },
    })
}

/// Puts a dead letter back in the queue with a fresh set of attempts.
pub async fn retry(svc: &Services, ctx: &AdminCtx, id: &str) -> ServiceResult<()> {
    ctx.require(Permission::ManageNotifications)?;
    let not_found = || {
        ServiceError::not_found(
            "No such dead letter.",
            "Reload the settings page; it may have been retried already.",
        )
    };
    if !is_uuid(id) {
        return Err(not_found());
    }
    let mut tx = svc.store.begin().await?;
    if !store::outbox::requeue_dead(&mut tx, &ctx.org_id, id, clock::now_ms()).await? {
        return Err(not_found());
    }
    let entry = AuditEntry::new(&ctx.org_id, &ctx.actor, &ctx.meta, "notification.retried")
        .target("notification", id);
    audit::append(&mut tx, svc.store.heads(), &[entry]).await?;
    tx.commit().await?;
    svc.notifier.wake();
    Ok(())
}

async fn channel(svc: &Services, ctx: &AdminCtx, kind: ChannelKind) -> ServiceResult<ChannelView> {
    let view = settings(svc, ctx).await?;
    view.channels
        .into_iter()
        .find(|c| c.kind == kind)
        .ok_or_else(|| ServiceError::Internal(anyhow::anyhow!("channel vanished")))
}
