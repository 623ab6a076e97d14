//! Notification settings as the dashboard shows them. Webhook URLs never appear: only a
//! masked hint.

use serde::{Deserialize, Serialize};

use super::{AlertEvent, ChannelKind};

/// One channel of the organization.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct ChannelView {
    pub kind: ChannelKind,
    /// A webhook is saved (always true for email, which needs no URL).
    pub configured: bool,
    /// Masked webhook, e.g. `hooks.slack.com/services/T0…/…/…x9Qz`.
    pub target_hint: Option<String>,
    pub events: Vec<AlertEvent>,
    /// `delivered` or `failed`, for the latest delivery or test.
    pub last_status: Option<String>,
    pub last_at: Option<String>,
    pub last_error: Option<String>,
}

/// A notification that exhausted its attempts.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct DeadLetterView {
    pub id: String,
    pub channel: ChannelKind,
    pub recipient: Option<String>,
    pub event: AlertEvent,
    pub summary: String,
    pub attempts: i64,
    pub last_error: Option<String>,
    pub created_at: String,
}

/// The notifications section of the settings page.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct NotificationSettingsView {
    pub channels: Vec<ChannelView>,
    /// Whether the signed-in member receives alert mail.
    pub email_opt_in: bool,
    /// How many members receive alert mail.
    pub email_recipients: i64,
    pub pending: i64,
    pub delivered: i64,
    pub dead: Vec<DeadLetterView>,
    /// The member may change channels (admins and owners).
    pub can_manage: bool,
}

/// The result of a "send test" click.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct TestResult {
    pub delivered: bool,
    pub message: String,
}
