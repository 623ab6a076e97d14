//! Delivery of outbox rows: claim due rows, send each through its channel, and record the
//! outcomes of several sends in one transaction (one fsync for many deliveries, so a burst of
//! alerts does not compete with agents for the single writer).

use std::collections::BTreeMap;
use std::time::Duration;

use aes_gcm::aead::{OsRng, rand_core::RngCore};
use serde_json::json;
use url::Url;

use super::{Alert, render};
use crate::model::{ActorType, ChannelKind, OrgId};
use crate::server::audit::{self, AuditEntry};
use crate::server::crypto::Slot;
use crate::server::outbound::SendError;
use crate::server::service::actor::{Actor, RequestMeta};
use crate::server::store::{self, outbox::DeliveryRow};
use crate::server::{Services, clock};

/// The sealed slot of a channel's webhook URL. Not versioned: a webhook URL written back
/// from an earlier save still opens (it is the organization's own earlier receiver).
pub fn webhook_slot<'a>(org_id: &'a str, channel_id: &'a str) -> Slot<'a> {
    Slot {
        org_id,
        table: "notification_channels",
        row_id: channel_id,
        column: "target_blob",
        version: 0,
    }
}

/// Takes up to `limit` due rows for this process.
pub async fn claim(svc: &Services, limit: usize) -> store::StoreResult<Vec<DeliveryRow>> {
    let now = clock::now_ms();
    let lease = i64::try_from(svc.notifier.policy.lease.as_millis()).unwrap_or(i64::MAX);
    let max = i64::from(svc.notifier.policy.max_attempts);
    let given_up = store::outbox::dead_letter_exhausted(svc.store.writer(), now, max).await?;
    if given_up > 0 {
        tracing::warn!(
            rows = given_up,
            "notifications dead-lettered: their last attempt recorded no outcome"
        );
    }
    store::outbox::claim_due(
        svc.store.writer(),
        svc.store.backend(),
        now,
        now.saturating_add(lease),
        i64::try_from(limit).unwrap_or(1),
        max,
    )
    .await
}

/// When the next row falls due, if any.
pub async fn next_due(svc: &Services) -> store::StoreResult<Option<i64>> {
    store::outbox::next_due(svc.store.reader()).await
}

/// The saved webhook URL of a channel (decrypted) and the channel id, re-validated: a URL
/// that passed at save time must still pass at send time.
pub async fn webhook_url(
    svc: &Services,
    org_id: &OrgId,
    kind: ChannelKind,
) -> Result<Url, SendError> {
    let channel = store::notify::find_channel(svc.store.reader(), org_id, kind)
        .await
        .map_err(|_| SendError::Retry {
            message: "database unavailable".into(),
            after: None,
        })?
        .ok_or_else(|| SendError::Permanent(format!("the {} channel was removed", kind.label())))?;
    let blob = channel
        .target_blob
        .as_deref()
        .ok_or_else(|| SendError::Permanent("no webhook URL is saved".into()))?;
    let url = crate::server::service::keys::open(svc, webhook_slot(org_id, &channel.id), blob)
        .await
        .map_err(|_| SendError::Permanent("the saved webhook URL cannot be decrypted".into()))?;
    let allow_loopback = svc.notifier.outbound.allows_loopback();
    super::webhook::validate_webhook(
        kind,
        secrecy::ExposeSecret::expose_secret(&url),
        allow_loopback,
    )
    .map_err(|e| SendError::Permanent(format!("the saved webhook URL {e}")))
}

/// Sends one alert to a channel (or one mailbox).
pub async fn send(
    svc: &Services,
    org_id: &OrgId,
    kind: ChannelKind,
    recipient: Option<&str>,
    alert: &Alert,
    key: &str,
) -> Result<(), SendError> {
    match kind {
        ChannelKind::Email => {
            let to = recipient.ok_or_else(|| SendError::Permanent("no recipient".into()))?;
            let mail = render::mail(alert, to, &format!("<{key}@agentkey>"));
            svc.mailer.send(mail).await.map_err(|e| SendError::Retry {
                message: format!("{e:#}"),
                after: None,
            })
        }
        ChannelKind::Slack | ChannelKind::Discord => {
            let url = webhook_url(svc, org_id, kind).await?;
            let body = if kind == ChannelKind::Slack {
                render::slack(alert)
            } else {
                render::discord(alert)
            };
            svc.notifier.outbound.post_json(&url, &body, key).await
        }
    }
}

/// One claimed row's attempt.
pub async fn attempt(svc: &Services, row: &DeliveryRow) -> Result<(), SendError> {
    let alert: Alert = serde_json::from_str(&row.payload)
        .map_err(|_| SendError::Permanent("unreadable payload".into()))?;
    let kind = row.channel;
    send(
        svc,
        &row.organization_id,
        kind,
        row.recipient.as_deref(),
        &alert,
        &row.id,
    )
    .await
}

fn system() -> Actor {
    Actor {
        kind: ActorType::System,
        id: "system".into(),
        label: "notifications".into(),
    }
}

/// Records finished attempts in one transaction: delivered rows, the next attempt of failed
/// ones (or the dead letter after the last attempt, audited), and each channel's last status.
pub async fn finish(
    svc: &Services,
    results: Vec<(DeliveryRow, Result<(), SendError>)>,
) -> anyhow::Result<()> {
    if results.is_empty() {
        return Ok(());
    }
    let now = clock::now_ms();
    let policy = svc.notifier.policy;
    let mut channel_status: BTreeMap<(OrgId, ChannelKind), Option<String>> = BTreeMap::new();
    let mut dead = Vec::new();
    let mut tx = svc.store.begin().await?;
    for (row, result) in &results {
        match result {
            Ok(()) => {
                store::outbox::mark_delivered(&mut *tx, &row.id, row.attempts, now).await?;
                channel_status.insert((row.organization_id.clone(), row.channel), None);
            }
            Err(err) => {
                let attempts = u32::try_from(row.attempts).unwrap_or(u32::MAX);
                let retry =
                    match err {
                        SendError::Retry { after, .. } if attempts < policy.max_attempts => {
                            let unit = f64::from(OsRng.next_u32()) / f64::from(u32::MAX);
                            let delay = policy
                                .backoff(attempts, unit)
                                .max(after.unwrap_or(Duration::ZERO));
                            Some(now.saturating_add(
                                i64::try_from(delay.as_millis()).unwrap_or(i64::MAX),
                            ))
                        }
                        _ => None,
                    };
                store::outbox::mark_failed(&mut *tx, &row.id, row.attempts, err.message(), retry)
                    .await?;
                channel_status.insert(
                    (row.organization_id.clone(), row.channel),
                    Some(err.message().to_owned()),
                );
                if retry.is_none() {
                    tracing::warn!(id = %row.id, channel = %row.channel, attempts, error = %err.message(), "notification dead-lettered");
                    dead.push(
                        AuditEntry::new(&row.organization_id, &system(), &RequestMeta::default(), "notification.dead_lettered")
                            .target("notification", &row.id)
                            .meta(json!({ "channel": row.channel, "event": row.event, "attempts": row.attempts, "error": err.message() })),
                    );
                }
            }
        }
    }
    for ((org_id, kind), error) in &channel_status {
        store::notify::record_channel_result(&mut *tx, org_id, *kind, error.as_deref(), now)
            .await?;
    }
    if !dead.is_empty() {
        audit::append(&mut tx, svc.store.heads(), &dead).await?;
    }
    tx.commit().await?;
    Ok(())
}
