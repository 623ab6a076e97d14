//! Credential vending: the hot path.
//!
//! A fetch is planned from a small in-memory cache (agent by key hash, plan by agent × tool)
//! or from one database read, decrypted, and released only after its `credential.vended` row
//! has been committed by the audit group-commit writer. The writer re-checks, inside that
//! transaction, this module's [`VendGuard`]: the grant is still live and the agent key and
//! versions are still what the plan saw; if not, the plan is discarded and rebuilt from the
//! database. So the cache can never serve a
//! revoked grant, a suspended agent, a rotated key or a stale secret — even when the change was
//! made by another process (the CLI) that cannot clear this process's cache.

use std::sync::Arc;

use secrecy::ExposeSecret;
use serde_json::{Value, json};

use super::actor::{AgentCtx, RequestMeta};
use super::{agent_auth, grants, tools};
use crate::model::{
    Access, AuthType, CredentialMode, CredentialResponse, Delivery, ErrorBody, RequestId, ToolId,
};
use crate::server::audit::{AuditEntry, CommitError};
use crate::server::events::EventKind;
use crate::server::store::{self, vend::VendRow};
use crate::server::{ServiceError, ServiceResult, Services, clock};

mod cache;
mod guard;

pub use cache::VendCache;
pub use guard::VendGuard;

pub(super) const ATTEMPTS: usize = 3;
const DAY_MS: i64 = 86_400_000;

/// Everything needed to answer a fetch or a proxied call, minus the plaintext.
#[derive(Clone, Debug)]
pub struct VendPlan {
    pub(super) tool_id: ToolId,
    pub(super) tool_name: String,
    auth_type: AuthType,
    per_agent: bool,
    pub(super) request_id: RequestId,
    blob: String,
    grant_credential_version: i64,
    tool_credential_version: i64,
    instructions: String,
    instructions_version: i64,
    pub(super) expires_at: Option<i64>,
    pub(super) delivery: Delivery,
    pub(super) upstream_url: Option<String>,
    pub(super) inject_rule: Option<String>,
    pub(super) allow_rules: String,
    pub(super) proxy_version: i64,
    pub(super) read_only: bool,
    pub(super) grant_rules: Option<String>,
    /// The grant's budget, else the tool's default.
    pub(super) calls_per_day: Option<i64>,
    /// The approval narrowed the grant (read-only, rules, own budget): proxied use only,
    /// even when the tool also hands its secret out.
    pub(super) narrowed: bool,
    /// Proxied calls on `usage_day` when planned.
    pub(super) usage_day: i64,
    pub(super) calls_on_day: i64,
}

/// Days since the epoch (UTC) at `ms`: the period of a calls-per-day budget.
pub fn day_of(ms: i64) -> i64 {
    ms.div_euclid(DAY_MS)
}

/// Seconds from `ms` to the next UTC midnight, when a daily budget refills.
pub fn secs_to_next_day(ms: i64) -> u64 {
    (((day_of(ms) + 1) * DAY_MS - ms + 999) / 1000).max(1) as u64
}

/// Authenticates for the credential route, from the cache when possible. A cached agent is
/// only trusted as far as the commit-time guard confirms it.
pub async fn authenticate(svc: &Services, key: &str, meta: RequestMeta) -> ServiceResult<AgentCtx> {
    let hash = agent_auth::hash(key);
    if let Some(agent) = svc.vend_cache.agent(&hash) {
        return Ok(AgentCtx {
            meta,
            ..(*agent).clone()
        });
    }
    let agent = agent_auth::authenticate(svc, key, meta).await?;
    svc.vend_cache.put_agent(agent.clone());
    Ok(agent)
}

pub(super) fn not_found() -> ServiceError {
    ServiceError::not_found("Tool not found.", "Browse the catalog with GET /api/tools.")
}

/// Fetches a credential for an authenticated agent; a fetch that succeeds counts in the fetch
/// latency histogram.
pub async fn fetch(
    svc: &Services,
    agent: &AgentCtx,
    tool_id: &str,
) -> ServiceResult<CredentialResponse> {
    let started = std::time::Instant::now();
    let answer = fetch_planned(svc, agent, tool_id).await;
    if answer.is_ok() {
        svc.metrics
            .fetch_seconds
            .observe_duration(started.elapsed());
    }
    answer
}

/// [`fetch`], untimed.
async fn fetch_planned(
    svc: &Services,
    agent: &AgentCtx,
    tool_id: &str,
) -> ServiceResult<CredentialResponse> {
    let tool_id = &ToolId::parse(tool_id).ok_or_else(not_found)?;
    let mut agent = agent.clone();
    for attempt in 0..ATTEMPTS {
        let plan = plan(svc, &agent, tool_id, attempt == 0).await?;
        let proxy_only = !plan.delivery.fetches() || plan.narrowed;
        if proxy_only && attempt == 0 {
            // Never refuse from the cache: another process may have changed the delivery.
            agent = replan(svc, agent, tool_id).await?;
            continue;
        }
        if plan.narrowed && plan.delivery.fetches() {
            return Err(ServiceError::Forbidden(
                ErrorBody::new("Your grant for this tool was narrowed to proxied calls; its credential is not handed out to you.")
                    .hint(format!(
                        "Call the tool's API through AgentKey: /api/tools/{tool_id}/proxy/{{path}} with your usual Authorization header."
                    ))
                    .with("delivery", "proxy")
                    .with("proxy_url", format!("{}/api/tools/{tool_id}/proxy", svc.base_url)),
            ));
        }
        if !plan.delivery.fetches() {
            return Err(ServiceError::Forbidden(
                ErrorBody::new("This tool is used through the proxy; its credential is never handed out.")
                    .hint(format!(
                        "Call the tool's API through AgentKey instead: /api/tools/{tool_id}/proxy/{{path}} with your usual Authorization header; AgentKey adds the credential."
                    ))
                    .with("delivery", plan.delivery.as_str())
                    .with("proxy_url", format!("{}/api/tools/{tool_id}/proxy", svc.base_url)),
            ));
        }
        let response = build_response(svc, &agent, &plan).await?;
        let entry = AuditEntry::new(
            &agent.org_id,
            &agent.actor(),
            &agent.meta,
            "credential.vended",
        )
        .target("tool", &plan.tool_id)
        .agent(&agent.agent_id)
        .tool(&plan.tool_id)
        .meta(json!({
            "tool_name": plan.tool_name, "request_id": plan.request_id,
            "credential_version": response.credential_version,
        }));
        let guard = VendGuard::of(&agent, &plan, false);
        match svc.audit.commit(entry, Some(guard)).await {
            Ok(()) => {
                svc.events
                    .publish(&agent.org_id, EventKind::CredentialVended);
                return Ok(response);
            }
            Err(CommitError::Stale) => agent = replan(svc, agent, tool_id).await?,
            Err(CommitError::Failed(reason)) => {
                return Err(ServiceError::Internal(anyhow::anyhow!(
                    "credential not released: {reason}"
                )));
            }
        }
    }
    Err(ServiceError::conflict(
        "The grant changed while the credential was being fetched.",
        "Retry the fetch.",
    ))
}

/// The usage guide of a tool the agent holds a live grant for, without its secret.
pub struct UsageGuide {
    pub tool_id: String,
    pub tool_name: String,
    pub instructions: String,
    pub instructions_version: i64,
}

/// Reads the usage guide of an approved tool (MCP serves it as a resource). Checked against
/// the database, not the cache: a revoked grant's guide is refused at once.
pub async fn guide(svc: &Services, agent: &AgentCtx, tool_id: &str) -> ServiceResult<UsageGuide> {
    let tool_id = &ToolId::parse(tool_id).ok_or_else(not_found)?;
    let plan = plan(svc, agent, tool_id, false).await?;
    Ok(UsageGuide {
        tool_id: plan.tool_id.to_string(),
        tool_name: plan.tool_name.clone(),
        instructions: plan.instructions.clone(),
        instructions_version: plan.instructions_version,
    })
}

/// The plan of a call: the cached one when `cached` allows it, else read from the database
/// (and cached).
pub(super) async fn plan(
    svc: &Services,
    agent: &AgentCtx,
    tool_id: &ToolId,
    cached: bool,
) -> ServiceResult<Arc<VendPlan>> {
    if cached && let Some(plan) = svc.vend_cache.plan(&agent.agent_id, tool_id) {
        return Ok(plan);
    }
    let plan = Arc::new(load_plan(svc, agent, tool_id).await?);
    svc.vend_cache.put_plan(&agent.agent_id, plan.clone());
    Ok(plan)
}

/// After a guard failed: forgets the cached view and re-checks the agent itself (it may be
/// suspended, deleted or rotated) before the caller plans again.
pub(super) async fn replan(
    svc: &Services,
    agent: AgentCtx,
    tool_id: &ToolId,
) -> ServiceResult<AgentCtx> {
    svc.vend_cache
        .forget(&agent.key_hash, &agent.agent_id, tool_id);
    agent_auth::authenticate_hash(svc, &agent.key_hash, agent.meta.clone()).await
}

async fn load_plan(svc: &Services, agent: &AgentCtx, tool_id: &ToolId) -> ServiceResult<VendPlan> {
    let now = svc.clock.now_ms();
    let row = store::vend::find_vend_row(
        svc.store.reader(),
        &agent.org_id,
        &agent.agent_id,
        tool_id,
        day_of(now),
    )
    .await?
    .ok_or_else(not_found)?;
    let access = store::requests::access_of(row.status, row.expires_at, now);
    if access != Access::Approved {
        return Err(not_approved(&row, access, tool_id));
    }
    let per_agent = row.credential_mode == CredentialMode::PerAgent;
    let blob = if per_agent {
        row.grant_blob.clone()
    } else {
        row.tool_blob.clone()
    };
    let Some(blob) = blob else {
        return Err(ServiceError::Conflict(
            ErrorBody::new("The credential for this tool has not been configured yet.")
                .hint("An admin still has to store the secret; retry later or tell a human.")
                .with("tool_id", tool_id),
        ));
    };
    Ok(VendPlan {
        tool_id: row.tool_id,
        tool_name: row.tool_name,
        auth_type: row.auth_type,
        per_agent,
        request_id: row.request_id.ok_or_else(not_found)?,
        blob,
        grant_credential_version: row.grant_credential_version.unwrap_or(0),
        tool_credential_version: row.tool_credential_version,
        instructions: row.instructions,
        instructions_version: row.instructions_version,
        expires_at: row.expires_at,
        delivery: row.delivery,
        upstream_url: row.upstream_url,
        inject_rule: row.inject_rule,
        allow_rules: row.allow_rules,
        proxy_version: row.proxy_version,
        read_only: row.proxy_read_only.unwrap_or(0) != 0,
        narrowed: row.proxy_read_only.unwrap_or(0) != 0
            || row.proxy_rules.is_some()
            || row.grant_calls_per_day.is_some(),
        grant_rules: row.proxy_rules,
        calls_per_day: row.grant_calls_per_day.or(row.tool_calls_per_day),
        usage_day: day_of(now),
        calls_on_day: row.calls_on_day.unwrap_or(0),
    })
}

fn not_approved(row: &VendRow, access: Access, tool_id: &str) -> ServiceError {
    let hint = match access {
        Access::Pending => format!(
            "Your request is pending; wait for a human to approve it. Check `your_access` of tool {tool_id} in GET /api/tools every 30 to 60 seconds."
        ),
        Access::Denied => format!(
            "Your request was denied{}. You may request again with POST /api/tools/{tool_id}/request and a better justification.",
            row.decision_note
                .as_deref()
                .map(|r| format!(": {r}"))
                .unwrap_or_default()
        ),
        Access::Revoked => format!(
            "Your access was revoked{}. Request again with POST /api/tools/{tool_id}/request if you still need it.",
            row.decision_note
                .as_deref()
                .map(|r| format!(": {r}"))
                .unwrap_or_default()
        ),
        Access::Expired => {
            format!("Your access expired. Request again with POST /api/tools/{tool_id}/request.")
        }
        _ => format!("Request access first with POST /api/tools/{tool_id}/request."),
    };
    let mut body = ErrorBody::new("This tool has not been approved for the agent.")
        .hint(hint)
        .with("your_access", access.as_str());
    match access {
        Access::Denied => body = body.with("denial_reason", row.decision_note.clone()),
        Access::Revoked => body = body.with("revocation_reason", row.decision_note.clone()),
        _ => {}
    }
    ServiceError::Forbidden(body)
}

/// The plaintext of the plan's secret (shared or the grant's own).
pub(super) async fn open_secret(
    svc: &Services,
    agent: &AgentCtx,
    plan: &VendPlan,
) -> ServiceResult<secrecy::SecretString> {
    let slot = if plan.per_agent {
        grants::credential_slot(
            &agent.org_id,
            &plan.request_id,
            plan.grant_credential_version,
        )
    } else {
        tools::credential_slot(&agent.org_id, &plan.tool_id, plan.tool_credential_version)
    };
    Ok(super::keys::open(svc, slot, &plan.blob)
        .await
        .map_err(|e| anyhow::anyhow!("cannot open credential of tool {}: {e:#}", plan.tool_id))?)
}

async fn build_response(
    svc: &Services,
    agent: &AgentCtx,
    plan: &VendPlan,
) -> ServiceResult<CredentialResponse> {
    let secret = open_secret(svc, agent, plan).await?;
    let text = secret.expose_secret();
    // OAuth credentials are often JSON documents (token + refresh token); hand them over as
    // JSON when they parse, as the original did.
    let credential = match plan.auth_type {
        AuthType::OauthToken => serde_json::from_str::<Value>(text)
            .ok()
            .filter(Value::is_object)
            .unwrap_or_else(|| Value::String(text.to_owned())),
        _ => Value::String(text.to_owned()),
    };
    Ok(CredentialResponse {
        tool_id: plan.tool_id.clone().into(),
        tool_name: plan.tool_name.clone(),
        auth_type: plan.auth_type,
        credential,
        instructions: plan.instructions.clone(),
        suggest_instructions_endpoint: format!("/api/tools/{}/instructions/suggest", plan.tool_id),
        grant_expires_at: clock::iso_opt(plan.expires_at),
        grant_expires_in_seconds: plan
            .expires_at
            .map(|end| (end - svc.clock.now_ms()).max(0) / 1000),
        credential_version: if plan.per_agent {
            plan.grant_credential_version
        } else {
            plan.tool_credential_version
        },
        instructions_version: plan.instructions_version,
    })
}
