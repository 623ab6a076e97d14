//! The grant lifecycle's shapes: expiry settings, the exposure ledger, auto-approval rules and
//! access reviews.

use serde::{Deserialize, Serialize};

use super::GrantDuration;

/// How long things may wait or sit unused in the organization.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct LifecycleSettings {
    /// A pending request nobody decides expires after this many hours (default 168: 7 days).
    pub pending_expiry_hours: i64,
    /// A grant unused for this many days is revoked; `None`: never.
    pub idle_revoke_days: Option<i64>,
}

/// Which agents received (fetched) or used through the proxy which version of a tool's
/// secret.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct ToolExposure {
    pub tool_id: String,
    pub tool_name: String,
    /// The shared secret's current version (0: none stored).
    pub current_version: i64,
    pub entries: Vec<ExposureEntry>,
}

/// One agent and one version of a secret.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct ExposureEntry {
    pub agent_id: String,
    pub agent_name: String,
    /// `shared` (the tool's secret) or `agent` (the grant's own).
    pub secret: String,
    pub version: i64,
    pub fetched_first_at: Option<String>,
    pub fetched_last_at: Option<String>,
    pub proxied_first_at: Option<String>,
    pub proxied_last_at: Option<String>,
    /// The agent still exists, is active, and holds a live grant of the tool.
    pub holds_grant: bool,
}

/// After an agent lost access (revoked, suspended, deleted): a shared secret whose current
/// version it had received, and who else holds it — the case for rotating.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct RotationAdvice {
    pub tool_id: String,
    pub tool_name: String,
    pub version: i64,
    pub agent_name: String,
    /// Other agents holding a live grant of the tool (who get the new secret on their next
    /// fetch).
    pub others_holding: i64,
}

/// A rule that approves a tool's requests without a reviewer: from agents carrying all of
/// `labels`, for at most `max_duration`, read-only on a proxied tool.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct AutoRuleView {
    pub id: String,
    pub tool_id: String,
    pub tool_name: String,
    pub labels: Vec<String>,
    pub max_duration: GrantDuration,
    pub read_only: bool,
    pub created_by: String,
    pub created_at: String,
    /// Why the rule approves nothing now (the tool always needs a human, or several
    /// approvals); `None` while it applies.
    #[serde(default)]
    pub inactive: Option<String>,
}

/// An access review: the live grants in its scope, each with a reviewer's keep or revoke.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct AccessReviewView {
    pub id: String,
    /// `all`, `tool` or `agent`, and the name of the one reviewed.
    pub scope: String,
    pub scope_name: String,
    /// What closing does to grants nobody confirmed: `revoke` or `keep`.
    pub unconfirmed: String,
    pub status: String,
    pub started_by: String,
    pub started_at: String,
    pub closed_by: Option<String>,
    pub closed_at: Option<String>,
    pub total: i64,
    pub decided: i64,
    #[serde(default)]
    pub items: Vec<ReviewItemView>,
}

/// One grant under review.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct ReviewItemView {
    pub id: String,
    pub request_id: String,
    pub agent_id: String,
    pub agent_name: String,
    pub tool_id: String,
    pub tool_name: String,
    pub granted_at: Option<String>,
    pub expires_at: Option<String>,
    pub reviewer: String,
    /// `keep` or `revoke`; `None` until decided.
    pub decision: Option<String>,
    pub note: Option<String>,
    pub decided_by: Option<String>,
    pub decided_at: Option<String>,
    /// After closing: `kept`, `revoked` or `already_ended`.
    pub outcome: Option<String>,
}
