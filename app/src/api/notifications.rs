//! Notification settings: channels, events, test sends, personal alert mail, dead letters.
//! Channel kinds and event lists travel as text (`slack`, `access_requested,decided`) and are
//! checked on the server.

use leptos::prelude::*;

use crate::model::RpcError;
use crate::model::{ChannelView, NotificationSettingsView, TestResult};

#[cfg(feature = "ssr")]
use super::guard::{caller, fail};
#[cfg(feature = "ssr")]
use crate::model::{AlertEvent, ChannelKind};
#[cfg(feature = "ssr")]
use crate::server::{ServiceError, service::notifications};

#[cfg(feature = "ssr")]
fn kind(text: &str) -> Result<ChannelKind, RpcError> {
    ChannelKind::parse(text).ok_or_else(|| {
        fail(ServiceError::field(
            "kind",
            "must be slack, discord or email",
            "Pick one of the listed channels.",
        ))
    })
}

#[cfg(feature = "ssr")]
fn events(text: &str) -> Result<Vec<AlertEvent>, RpcError> {
    let parts: Vec<&str> = text
        .split(',')
        .map(str::trim)
        .filter(|p| !p.is_empty())
        .collect();
    let parsed: Vec<AlertEvent> = parts.iter().filter_map(|p| AlertEvent::parse(p)).collect();
    if parsed.len() != parts.len() {
        return Err(fail(ServiceError::field(
            "events",
            "contains an unknown event",
            "Use access_requested, tool_suggested, guide_suggested and decided.",
        )));
    }
    Ok(parsed)
}

#[server(prefix = "/rpc", endpoint = "notifications")]
pub async fn notification_settings() -> Result<NotificationSettingsView, RpcError> {
    let c = caller().await?;
    notifications::settings(&c.svc, &c.ctx).await.map_err(fail)
}

/// Saves a webhook URL; it is sealed at once and never returned.
#[server(prefix = "/rpc", endpoint = "notifications/webhook")]
pub async fn save_webhook(
    kind: String,
    url: String,
    events: String,
) -> Result<ChannelView, RpcError> {
    let c = caller().await?;
    let (kind, events) = (self::kind(&kind)?, self::events(&events)?);
    notifications::save_webhook(
        &c.svc,
        &c.ctx,
        kind,
        secrecy::SecretString::from(url),
        &events,
    )
    .await
    .map_err(fail)
}

#[server(prefix = "/rpc", endpoint = "notifications/events")]
pub async fn set_channel_events(kind: String, events: String) -> Result<ChannelView, RpcError> {
    let c = caller().await?;
    let (kind, events) = (self::kind(&kind)?, self::events(&events)?);
    notifications::set_events(&c.svc, &c.ctx, kind, &events)
        .await
        .map_err(fail)
}

#[server(prefix = "/rpc", endpoint = "notifications/remove")]
pub async fn remove_channel(kind: String) -> Result<(), RpcError> {
    let c = caller().await?;
    let kind = self::kind(&kind)?;
    notifications::remove_channel(&c.svc, &c.ctx, kind)
        .await
        .map_err(fail)
}

#[server(prefix = "/rpc", endpoint = "notifications/test")]
pub async fn send_test(kind: String) -> Result<TestResult, RpcError> {
    let c = caller().await?;
    let kind = self::kind(&kind)?;
    notifications::send_test(&c.svc, &c.ctx, kind)
        .await
        .map_err(fail)
}

/// Turns alert mail on or off for the signed-in member.
#[server(prefix = "/rpc", endpoint = "notifications/email")]
pub async fn set_email_alerts(on: bool) -> Result<(), RpcError> {
    let c = caller().await?;
    notifications::set_email_opt_in(&c.svc, &c.ctx, on)
        .await
        .map_err(fail)
}

#[server(prefix = "/rpc", endpoint = "notifications/retry")]
pub async fn retry_notification(id: String) -> Result<(), RpcError> {
    let c = caller().await?;
    notifications::retry(&c.svc, &c.ctx, &id)
        .await
        .map_err(fail)
}
