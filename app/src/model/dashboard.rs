//! Shapes the dashboard exchanges with its server functions.

use serde::{Deserialize, Serialize};

use super::{AccessRequestView, AuditEvent, GuideSuggestionView, Role, ToolSuggestionView, UserId};

/// What the sign-in confirmation page should show for a link, before it is used.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct ConfirmView {
    pub valid: bool,
    /// The link creates the first organization: ask for its name and the owner's address.
    pub bootstrap: bool,
    pub email: Option<String>,
}

/// One organization the signed-in person belongs to.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct OrgChoice {
    pub id: String,
    pub name: String,
    pub role: Role,
}

/// The signed-in person in the selected organization.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct MemberView {
    pub user_id: UserId,
    pub email: String,
    pub org_id: String,
    pub org_name: String,
    pub role: Role,
    pub organizations: Vec<OrgChoice>,
}

/// One of the signed-in person's sessions. `handle` names it for revocation and is not the
/// session secret.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct SessionView {
    pub handle: String,
    pub current: bool,
    pub ip: Option<String>,
    pub user_agent: Option<String>,
    pub created_at: String,
    pub last_seen_at: String,
    pub expires_at: String,
}

/// The overview page.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct OverviewView {
    pub agents: i64,
    pub tools: i64,
    pub pending_requests: i64,
    pub pending_suggestions: i64,
    pub approved_grants: i64,
    pub recent: Vec<AuditEvent>,
    /// For the getting-started checklist: a webhook or alert mail reaches reviewers, and how
    /// many members the organization has.
    #[serde(default)]
    pub notifications_configured: bool,
    #[serde(default)]
    pub members: i64,
}

/// Everything waiting for a decision.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct InboxView {
    pub requests: Vec<AccessRequestView>,
    /// Pending requests beyond the page shown.
    pub more_requests: i64,
    pub tool_suggestions: Vec<ToolSuggestionView>,
    pub guide_suggestions: Vec<GuideSuggestionView>,
    /// What a reviewer weighs beside each request: one entry per agent with a request shown.
    #[serde(default)]
    pub agents: Vec<AgentContext>,
}

/// An agent as the inbox shows it beside its requests: who registered it, when it last used
/// its key, what it holds now and what was denied to it before.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct AgentContext {
    pub agent_id: String,
    pub created_by: String,
    pub created_at: String,
    pub last_used_at: Option<String>,
    /// Its live grants (at most [`AgentContext::SHOWN`], newest first) and how many in all.
    pub holds: Vec<HeldGrant>,
    pub holds_total: i64,
    /// Its latest denials (at most [`AgentContext::SHOWN`]) and how many in all.
    pub denials: Vec<PastDenial>,
    pub denials_total: i64,
}

impl AgentContext {
    /// Grants and denials listed per agent; the rest are counted.
    pub const SHOWN: i64 = 5;
}

/// A live grant of the agent.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct HeldGrant {
    pub tool_id: String,
    pub tool_name: String,
    pub expires_at: Option<String>,
}

/// A request of the agent that a reviewer denied, with the reason the agent was given.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct PastDenial {
    pub tool_id: String,
    pub tool_name: String,
    pub reason: Option<String>,
    pub decided_by: Option<String>,
    pub decided_at: Option<String>,
}

/// Audit page filters; empty strings (or absent fields) mean "any".
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct AuditQuery {
    pub action: String,
    pub agent_id: String,
    pub tool_id: String,
    pub actor: String,
    /// RFC 3339 or `YYYY-MM-DD`.
    pub since: String,
    pub until: String,
    /// Return rows with `seq` below this (cursor paging, newest first).
    pub before_seq: Option<i64>,
}

/// One tool in a catalog export: everything but secrets and history.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CatalogEntry {
    pub name: String,
    #[serde(default)]
    pub description: String,
    #[serde(default)]
    pub url: Option<String>,
    #[serde(default = "default_auth_type")]
    pub auth_type: super::AuthType,
    #[serde(default = "default_mode")]
    pub credential_mode: super::CredentialMode,
    #[serde(default)]
    pub instructions: String,
    /// Absent (a file written before proxy mode): an import keeps the tool's delivery and
    /// proxy settings as they are.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub delivery: Option<super::Delivery>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub upstream_url: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub inject: Option<String>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub allow: Vec<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub calls_per_day: Option<i64>,
}

fn default_auth_type() -> super::AuthType {
    super::AuthType::ApiKey
}

fn default_mode() -> super::CredentialMode {
    super::CredentialMode::Shared
}

/// What importing a catalog does (or did): tools created, tools changed with the fields that
/// change, tools left alone, and entries refused with why. Nothing is applied while any entry
/// is refused.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct CatalogPlan {
    pub applied: bool,
    pub create: Vec<String>,
    pub update: Vec<(String, Vec<String>)>,
    pub unchanged: Vec<String>,
    pub refused: Vec<(String, String)>,
}

/// The access picture: every agent against every tool, each cell the state of the agent's
/// latest request for the tool (`/access`).
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct AccessPicture {
    pub agents: Vec<Named>,
    pub tools: Vec<Named>,
    /// Only pairs with a request; a missing pair is `none`.
    pub cells: Vec<AccessCell>,
    /// Every request of these pairs, newest first (a cell's history).
    pub requests: Vec<AccessRequestView>,
}

/// An agent or a tool by id and name.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct Named {
    pub id: String,
    pub name: String,
}

/// One agent × tool: its latest request's state, when a grant ends and when it was last used.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct AccessCell {
    pub agent_id: String,
    pub tool_id: String,
    pub state: super::Access,
    pub request_id: String,
    pub expires_at: Option<String>,
    /// The last credential fetch or proxied call.
    pub last_used_at: Option<String>,
}

/// Daily use (fetches plus proxied calls) over the last days, for the activity charts.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct UsageView {
    /// The days charted, oldest first (`YYYY-MM-DD`, UTC); every series has one count per day.
    pub days: Vec<String>,
    /// Every tool, busiest first.
    pub tools: Vec<UsageSeries>,
    /// Every agent, busiest first.
    pub agents: Vec<UsageSeries>,
    /// When each agent last used each tool.
    pub last_use: Vec<LastUse>,
}

/// One tool's or agent's daily counts.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct UsageSeries {
    pub id: String,
    pub name: String,
    pub counts: Vec<i64>,
    pub total: i64,
}

/// An agent's last fetch or proxied call with a tool (to the minute).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct LastUse {
    pub tool_id: String,
    pub agent_id: String,
    /// ISO time.
    pub at: String,
    pub proxied: bool,
}

impl UsageView {
    /// The series of a tool or agent by id.
    pub fn series<'a>(list: &'a [UsageSeries], id: &str) -> Option<&'a UsageSeries> {
        list.iter().find(|s| s.id == id)
    }

    /// When `agent_id` last used `tool_id`.
    pub fn last(&self, tool_id: &str, agent_id: &str) -> Option<&LastUse> {
        self.last_use
            .iter()
            .find(|l| l.tool_id == tool_id && l.agent_id == agent_id)
    }
}
