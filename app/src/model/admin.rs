//! Shapes returned by admin services to the CLI (`--json`) and, later, the dashboard.
//! None of them carries a stored secret, a key hash or an encrypted blob.

use serde::{Deserialize, Serialize};
use serde_json::Value;

use super::{
    ActorType, AgentStatus, AuthType, CredentialMode, Delivery, GrantDuration, RequestOrigin,
    RequestStatus, SuggestionStatus, ToolHealth,
};

/// An organization.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Organization {
    pub id: String,
    pub name: String,
    pub created_at: String,
}

/// An agent as admins see it. `key_prefix` identifies the key without revealing it.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct AgentView {
    pub id: String,
    pub name: String,
    pub description: String,
    pub status: AgentStatus,
    pub key_prefix: String,
    pub created_by: String,
    pub created_at: String,
    pub last_used_at: Option<String>,
    /// `key:value` labels auto-approval rules match, e.g. `team:payments`.
    #[serde(default)]
    pub labels: Vec<String>,
}

/// Ready-to-paste onboarding blocks for an agent's instruction files.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct OnboardingSnippets {
    pub env: String,
    pub claude_md: String,
    pub agents_md: String,
    pub cursorrules: String,
    pub system_prompt: String,
    pub curl: String,
    /// MCP client configurations, one per client; each reads the key from `AGENTKEY_API_KEY`.
    #[serde(default)]
    pub mcp: Vec<McpSetup>,
}

/// How one MCP client connects to AgentKey's `/mcp` endpoint.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct McpSetup {
    /// The client, e.g. "Claude Code".
    pub client: String,
    /// Where the text goes, e.g. ".mcp.json" or "a terminal".
    pub place: String,
    pub text: String,
}

/// Result of creating an agent or rotating its key: the only time the key is visible.
#[derive(Clone, PartialEq, Serialize, Deserialize)]
pub struct IssuedKey {
    pub agent: AgentView,
    pub api_key: String,
    pub snippets: OnboardingSnippets,
}

impl std::fmt::Debug for IssuedKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("IssuedKey")
            .field("agent", &self.agent)
            .field("api_key", &"[redacted]")
            .finish()
    }
}

/// A catalog tool as admins see it: whether a secret is configured, never the secret.
#[derive(Clone, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct ToolView {
    pub id: String,
    pub config_key: String,
    pub name: String,
    pub description: String,
    pub url: Option<String>,
    pub auth_type: AuthType,
    pub credential_mode: CredentialMode,
    pub credential_configured: bool,
    pub credential_version: i64,
    pub credential_rotated_at: Option<String>,
    pub credential_expires_at: Option<String>,
    pub instructions: String,
    pub instructions_version: i64,
    /// Distinct reviewers who must approve each request (1–3).
    #[serde(default = "one")]
    pub approvals_required: i64,
    pub created_at: String,
    /// What needs attention about the secret (computed by the server at read time).
    #[serde(default)]
    pub health: Vec<ToolHealth>,
    /// How approved agents use the credential.
    #[serde(default)]
    pub delivery: Delivery,
    #[serde(default)]
    pub proxy: ProxySettings,
    /// What the change just made may not achieve (a quorum some requests cannot reach);
    /// only on the answer to that change.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub warning: Option<String>,
    /// The longest grant an approval may give (`None`: no limit) and the length used when the
    /// agent asks for none (`None`: the maximum, else standing).
    #[serde(default)]
    pub max_duration: Option<GrantDuration>,
    #[serde(default)]
    pub default_duration: Option<GrantDuration>,
    /// Never approved by an auto-approval rule.
    #[serde(default)]
    pub always_human: bool,
}

impl AccessRequestView {
    /// Waiting for a reviewer: a pending request, or a renewal asked on a live grant.
    pub fn awaits_decision(&self) -> bool {
        self.status == RequestStatus::Pending
            || (self.status == RequestStatus::Approved && self.renewal.is_some())
    }
}

/// A renewal waiting on a live grant.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct RenewalView {
    pub requested_at: String,
    pub reason: String,
    pub duration: Option<GrantDuration>,
}

/// How a tool is used through the proxy. Holds no secret: `inject` is the rule with its
/// `{secret}` placeholder.
#[derive(Clone, Debug, Default, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct ProxySettings {
    /// Base URL calls are forwarded to.
    #[serde(default)]
    pub upstream_url: Option<String>,
    /// Where the secret goes, e.g. `Authorization: Bearer {secret}` or `?api_key={secret}`.
    #[serde(default)]
    pub inject: Option<String>,
    /// `METHOD /path-pattern` rules; empty allows every call under the base URL.
    #[serde(default)]
    pub allow: Vec<String>,
    /// Default calls-per-day budget of each grant.
    #[serde(default)]
    pub calls_per_day: Option<i64>,
}

/// How an approval narrows a grant's proxied use.
#[derive(Clone, Debug, Default, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct GrantScope {
    /// GET and HEAD only.
    #[serde(default)]
    pub read_only: bool,
    /// A subset of the tool's rules; `None` keeps all of them.
    #[serde(default)]
    pub rules: Option<Vec<String>>,
    /// Calls per day; `None` takes the tool's default.
    #[serde(default)]
    pub calls_per_day: Option<i64>,
}

fn one() -> i64 {
    1
}

/// Result of creating a tool: the tool plus the requests opened for suggestion backers.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct ToolCreated {
    pub tool: ToolView,
    pub resolved_suggestions: Vec<String>,
    pub opened_requests: Vec<String>,
}

/// One saved version of a tool's usage guide.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct GuideVersion {
    pub id: String,
    pub version: i64,
    pub instructions: String,
    pub source: String,
    pub created_by: String,
    pub created_at: String,
}

/// One access request (and, once approved, grant).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct AccessRequestView {
    pub id: String,
    pub agent_id: String,
    pub agent_name: String,
    pub tool_id: String,
    pub tool_name: String,
    pub credential_mode: CredentialMode,
    pub status: RequestStatus,
    pub reason: String,
    pub origin: RequestOrigin,
    pub decided_by: Option<String>,
    pub decided_at: Option<String>,
    pub decision_note: Option<String>,
    pub expires_at: Option<String>,
    pub created_at: String,
    /// The tool's quorum and who approved so far (pending requests).
    #[serde(default = "one")]
    pub approvals_required: i64,
    #[serde(default)]
    pub approved_by: Vec<String>,
    /// How the tool is used and how the approval narrowed the proxied use.
    #[serde(default)]
    pub delivery: Delivery,
    #[serde(default)]
    pub scope: GrantScope,
    /// The budget in force (the grant's own or the tool's default) and today's proxied calls.
    #[serde(default)]
    pub calls_per_day: Option<i64>,
    #[serde(default)]
    pub calls_today: i64,
    /// The tool's proxy rules, which an approval may narrow to a subset.
    #[serde(default)]
    pub tool_rules: Vec<String>,
    /// Why the member reading the list may not approve this pending request (they registered
    /// the agent and the tool needs several approvals, they already approved, or their role
    /// does not decide); `None` when they may.
    #[serde(default)]
    pub cannot_approve: Option<String>,
    /// What the agent asked for, what the deciding approval gave, and the tool's limits that
    /// bound a reviewer's choice.
    #[serde(default)]
    pub requested_duration: Option<GrantDuration>,
    #[serde(default)]
    pub granted_duration: Option<GrantDuration>,
    #[serde(default)]
    pub max_duration: Option<GrantDuration>,
    #[serde(default)]
    pub default_duration: Option<GrantDuration>,
    /// A renewal the agent asked for on this live grant, waiting for a decision.
    #[serde(default)]
    pub renewal: Option<RenewalView>,
    /// How many times the grant was renewed.
    #[serde(default)]
    pub renewals: i64,
    /// What approving now gives unless the reviewer picks a length (pending requests and
    /// waiting renewals).
    #[serde(default)]
    pub offered_duration: Option<GrantDuration>,
}

/// An agent backing a suggestion, with its latest reason.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Supporter {
    pub agent_id: String,
    pub agent_name: String,
    pub reason: String,
    pub first_at: String,
    pub last_at: String,
}

/// A proposed catalog addition with its backers.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct ToolSuggestionView {
    pub id: String,
    pub name: String,
    pub url: Option<String>,
    pub status: SuggestionStatus,
    pub dismissed_until: Option<String>,
    pub dismissal_reason: Option<String>,
    pub converted_tool_id: Option<String>,
    pub supporters: Vec<Supporter>,
    pub created_at: String,
}

/// A proposed usage-guide fact with its backers.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct GuideSuggestionView {
    pub id: String,
    pub tool_id: String,
    pub tool_name: String,
    pub base_version: i64,
    pub learned: String,
    pub status: SuggestionStatus,
    pub dismissal_reason: Option<String>,
    pub supporters: Vec<Supporter>,
    pub created_at: String,
    /// The tool's guide as it is now (its version may be past `base_version`): accepting the
    /// suggestion as suggested saves [`guide_after`] of it.
    #[serde(default)]
    pub current_guide: String,
    #[serde(default)]
    pub current_version: i64,
}

/// The guide that accepting a learned fact as suggested saves: the current text, a blank line,
/// the fact (or the fact alone when there is no guide yet).
pub fn guide_after(current: &str, learned: &str) -> String {
    if current.is_empty() {
        learned.to_owned()
    } else {
        format!("{current}\n\n{learned}")
    }
}

/// One audit log row.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct AuditEvent {
    pub id: String,
    pub seq: i64,
    pub created_at: String,
    pub actor_type: ActorType,
    pub actor_id: String,
    pub actor_label: String,
    pub action: String,
    pub target_type: Option<String>,
    pub target_id: Option<String>,
    pub agent_id: Option<String>,
    pub tool_id: Option<String>,
    pub ip: Option<String>,
    pub user_agent: Option<String>,
    pub metadata: Value,
    /// The names of the agent and tool it concerns, for people reading the log (a deleted
    /// one's name as the event recorded it).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub agent_name: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tool_name: Option<String>,
}

/// Outcome of `agentkey audit verify` for one organization.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct ChainReport {
    pub organization_id: String,
    pub rows_checked: i64,
    /// `None` when the chain is intact; otherwise the first broken row.
    pub broken_at_seq: Option<i64>,
    pub problem: Option<String>,
}

/// Instance-wide figures for the status page.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct StatusView {
    pub version: String,
    pub backend: String,
    pub uptime_seconds: u64,
    pub agents: i64,
    pub tools: i64,
    pub pending_requests: i64,
    pub audit_events: i64,
}

/// Whether this server drafts usage guides with a model, and which.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct AiStatus {
    /// The model's name; `None` when no model is configured (the draft button is hidden).
    pub model: Option<String>,
}

/// One line of a streamed guide draft (JSON, one per line): more text, the sentence saying
/// why the draft stopped early, or the end.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum DraftFrame {
    Text(String),
    Error(String),
    Done,
}

impl DraftFrame {
    /// The frame as it goes on the wire: JSON and a line break (JSON escapes its own).
    pub fn line(&self) -> String {
        let mut line = serde_json::to_string(self).unwrap_or_else(|_| "\"done\"".into());
        line.push('\n');
        line
    }
}
