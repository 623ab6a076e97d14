//! Bodies of the agent REST API (see AGENT_API.md). Field names are the contract.

use serde::{Deserialize, Serialize};
use serde_json::Value;

use super::{Access, AuthType, CredentialMode, Delivery, RequestStatus, SuggestionStatus};

/// `GET /api/tools`.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "ssr", derive(schemars::JsonSchema))]
pub struct ToolList {
    pub tools: Vec<CatalogTool>,
}

/// One catalog entry as an agent sees it, with its own access state.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "ssr", derive(schemars::JsonSchema))]
pub struct CatalogTool {
    pub id: String,
    pub name: String,
    pub description: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub url: Option<String>,
    pub auth_type: AuthType,
    pub credential_mode: CredentialMode,
    pub your_access: Access,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub denial_reason: Option<String>,
    /// Why a reviewer revoked the agent's grant (`your_access` revoked).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub revocation_reason: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub request_id: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub grant_expires_at: Option<String>,
    /// Seconds left of a time-bound grant (so an agent need not trust its own clock).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub grant_expires_in_seconds: Option<i64>,
    /// From when asking again renews the grant (its last quarter, at most its last day).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub renewal_opens_at: Option<String>,
    /// `pending` while a renewal waits, `denied` when the latest was denied (the grant then
    /// runs out; `renewal_denial_reason` says why).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub renewal: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub renewal_denial_reason: Option<String>,
    /// What to do next about this tool's access, when there is something to do.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub hint: Option<String>,
    /// `fetch`: GET the credentials route; `proxy`: call the tool through `proxy_url`, the
    /// secret is never handed out; `both`.
    pub delivery: Delivery,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub proxy_url: Option<String>,
    /// The calls the agent's grant allows through the proxy (`METHOD /path-pattern`), when
    /// it is narrowed; absent when every call under the tool's base URL is allowed.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub proxy_rules: Option<Vec<String>>,
    /// True when the agent's grant allows only GET and HEAD through the proxy.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub proxy_read_only: bool,
}

/// `GET /api/me`.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "ssr", derive(schemars::JsonSchema))]
pub struct Me {
    pub agent_id: String,
    pub agent_name: String,
    pub description: String,
    pub created_at: String,
    pub tools_approved: Vec<String>,
    pub tools_pending: Vec<String>,
    pub tools_denied: Vec<DeniedTool>,
    pub tools_available: i64,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub hint: Option<String>,
}

/// A denied tool in `GET /api/me`.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "ssr", derive(schemars::JsonSchema))]
pub struct DeniedTool {
    pub name: String,
    pub reason: Option<String>,
}

/// Body of `POST /api/tools/{id}/request`.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct RequestAccessBody {
    pub reason: String,
    /// How long the agent needs access: `30m`, `8h`, `7d` or `standing`; the tool's default
    /// when absent. Kept as text so that a malformed value gets a field error, not a parse error.
    #[serde(default)]
    pub duration: Option<String>,
}

/// 201 of `POST /api/tools/{id}/request`.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "ssr", derive(schemars::JsonSchema))]
pub struct RequestCreated {
    pub request_id: String,
    pub status: RequestStatus,
    /// True when this asks to extend a live grant (the id is the grant's); the grant keeps
    /// working meanwhile, until `grant_expires_at`.
    #[serde(default)]
    pub renewal: bool,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub grant_expires_at: Option<String>,
    pub message: String,
}

/// Body of `POST /api/tools/suggest`.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct SuggestToolBody {
    pub name: String,
    #[serde(default)]
    pub url: Option<String>,
    pub reason: String,
}

/// Body of `POST /api/tools/{id}/instructions/suggest`.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct SuggestGuideBody {
    pub learned: String,
    pub why: String,
}

/// 201 of both suggestion routes.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "ssr", derive(schemars::JsonSchema))]
pub struct SuggestionCreated {
    pub suggestion_id: String,
    pub status: SuggestionStatus,
    pub existing: bool,
    pub message: String,
}

/// `GET /api/tools/{id}/credentials`. Holds a plaintext secret: `Debug` is redacted and the
/// value lives only as long as the response being written.
#[derive(Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "ssr", derive(schemars::JsonSchema))]
pub struct CredentialResponse {
    pub tool_id: String,
    pub tool_name: String,
    pub auth_type: AuthType,
    pub credential: Value,
    pub instructions: String,
    pub suggest_instructions_endpoint: String,
    pub grant_expires_at: Option<String>,
    /// Seconds left of a time-bound grant; ask again (a renewal) before they run out.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub grant_expires_in_seconds: Option<i64>,
    pub credential_version: i64,
    pub instructions_version: i64,
}

impl std::fmt::Debug for CredentialResponse {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("CredentialResponse")
            .field("tool_id", &self.tool_id)
            .field("credential", &"[redacted]")
            .field("credential_version", &self.credential_version)
            .finish_non_exhaustive()
    }
}
