//! Proxy mode: an approved agent's call is forwarded to the tool's upstream with the
//! credential injected, so the agent never holds the secret. A call is planned like a fetch
//! (`service::vend`: the same cached plan, the same grant) and is fail-closed the same way:
//! its `proxy.called` audit row is committed by the group-commit writer, which re-checks the
//! grant and claims one call of the grant's daily budget in that transaction, before anything
//! is sent. A revoke committed first always wins. Moving the bytes (streaming, header
//! filtering, redacting echoes) is the HTTP layer's job; its outcome comes back to
//! [`CallRecord::record`] (in `outcomes`).

pub mod inject;
pub mod outcomes;
pub mod redact;
pub mod rules;

use std::time::Instant;

use secrecy::ExposeSecret;
use serde_json::json;
use url::Url;

use super::actor::AgentCtx;
use super::vend::{self, VendGuard, VendPlan};
use crate::model::{ErrorBody, ToolId};
use crate::server::audit::{AuditEntry, CommitError};
use crate::server::{ServiceError, ServiceResult, Services};
use inject::{Injection, Target};
use rules::Rule;

pub use outcomes::{CallRecord, Outcome};

/// The agent's call as it arrived: method, path after `/proxy` (still percent-encoded) and
/// raw query.
pub struct CallSpec<'a> {
    pub method: &'a str,
    pub path: &'a str,
    pub query: Option<&'a str>,
}

/// A call cleared to go out: its audit row is committed.
pub struct ProxyCall {
    pub url: Url,
    /// The injected header (lower-case name, value) when the rule targets a header.
    pub header: Option<(String, String)>,
    /// Every form of the secret that must not come back to the agent.
    pub needles: Vec<Vec<u8>>,
    /// The upstream base URL and the proxy route it maps to, for redirects under the base.
    pub upstream_base: String,
    pub proxy_base: String,
    pub record: CallRecord,
    /// When the grant ends (time-bound grants), sent to the agent with the answer.
    pub grant_expires_at: Option<i64>,
}

fn bad_path(tool_id: &ToolId, reason: &str) -> ServiceError {
    ServiceError::Invalid(
        ErrorBody::new(format!("The proxied path is refused: {reason}."))
            .hint(format!("Send the upstream API's path as it is, under /proxy (e.g. /api/tools/{tool_id}/proxy/repos/owner/name); nothing was sent.")),
    )
}

/// Checks, plans and audits a proxied call; returns what the transport needs to send it.
pub async fn begin(
    svc: &Services,
    agent: &AgentCtx,
    tool_id: &str,
    call: &CallSpec<'_>,
) -> ServiceResult<ProxyCall> {
    let tool_id = &ToolId::parse(tool_id).ok_or_else(vend::not_found)?;
    if matches!(call.method, "CONNECT" | "TRACE") {
        return Err(ServiceError::Invalid(
            ErrorBody::new(format!("{} is not forwarded.", call.method))
                .hint("Use GET, HEAD, POST, PUT, PATCH, DELETE or OPTIONS."),
        ));
    }
    let segments = rules::check_path(call.path).map_err(|r| bad_path(tool_id, r))?;
    let query = check_query(call.query)?;
    let mut agent = agent.clone();
    for attempt in 0..vend::ATTEMPTS {
        let plan = vend::plan(svc, &agent, tool_id, attempt == 0).await?;
        let now = svc.clock.now_ms();
        // A refusal is never answered from the cache: the settings may have been widened by
        // another process, so the first attempt's refusal is checked against the database.
        let outside = refusal(&plan, call.method, &segments, query);
        let refused = !plan.delivery.proxies() || outside.is_some() || over_budget(&plan, now);
        if refused && attempt == 0 {
            agent = vend::replan(svc, agent, tool_id).await?;
            continue;
        }
        if !plan.delivery.proxies() {
            return Err(ServiceError::Forbidden(
                ErrorBody::new("This tool is not used through the proxy.")
                    .hint(format!(
                        "Fetch the credential with GET /api/tools/{tool_id}/credentials and call the tool yourself."
                    ))
                    .with("delivery", plan.delivery.as_str()),
            ));
        }
        if let Some(reason) = outside {
            refuse(svc, &agent, &plan, call, &reason.0).await;
            return Err(ServiceError::Forbidden(
                ErrorBody::new(format!("This call is outside what your grant allows: {}.", reason.0))
                    .hint(format!(
                        "Allowed: {}. Ask for wider access with POST /api/tools/{tool_id}/request once this grant ends, or tell a human.",
                        reason.1
                    )),
            ));
        }
        if let Some(limit) = plan.calls_per_day.filter(|_| over_budget(&plan, now)) {
            refuse(svc, &agent, &plan, call, "daily budget spent").await;
            let wait = vend::secs_to_next_day(now);
            return Err(ServiceError::Exhausted {
                body: ErrorBody::new(format!(
                    "The grant's budget of {limit} proxied calls per day is spent."
                ))
                .hint(format!(
                    "Wait {wait} seconds (see Retry-After, the next UTC day), or ask a human for a larger budget."
                )),
                retry_after: wait,
            });
        }
        let Some(base) = plan.upstream_url.clone() else {
            return Err(ServiceError::conflict(
                "This tool has no upstream URL configured.",
                "An admin still has to set the tool's upstream; retry later or tell a human.",
            ));
        };
        let rule = match plan.inject_rule.as_deref() {
            Some(text) => Injection::parse(text),
            None => Injection::parse(inject::DEFAULT),
        }
        .map_err(|e| anyhow::anyhow!("stored inject rule of tool {tool_id} does not parse: {e}"))?;
        let secret = vend::open_secret(svc, &agent, &plan).await?;
        let rendered = rule.render(secret.expose_secret()).map_err(|reason| {
            ServiceError::Conflict(
                ErrorBody::new(format!(
                    "The tool's credential cannot be injected: {reason}."
                ))
                .hint("Tell a human: an admin must fix the tool's inject rule or its secret."),
            )
        })?;
        let mut target = format!("{base}{}", call.path);
        let (header, param) = match rendered.target {
            Target::Header(name) => (Some((name, rendered.value)), None),
            Target::Query(name) => (None, Some((name, rendered.value))),
        };
        let query = outgoing_query(query, param.as_ref());
        if let Some(q) = &query {
            target.push('?');
            target.push_str(q);
        }
        let url = Url::parse(&target)
            .ok()
            .filter(|u| u.as_str().starts_with(&base))
            .ok_or_else(|| bad_path(tool_id, "it does not form a URL under the tool's base"))?;
        let call_id = super::new_id();
        let entry = AuditEntry::new(&agent.org_id, &agent.actor(), &agent.meta, "proxy.called")
            .target("tool", &plan.tool_id)
            .agent(&agent.agent_id)
            .tool(&plan.tool_id)
            .meta(json!({
                "call_id": call_id, "tool_name": plan.tool_name, "request_id": plan.request_id,
                "method": call.method, "path": display_path(call.path),
            }));
        match svc
            .audit
            .commit(entry, Some(VendGuard::of(&agent, &plan, true)))
            .await
        {
            Ok(()) => {
                return Ok(ProxyCall {
                    grant_expires_at: plan.expires_at,
                    url,
                    header,
                    needles: rendered.needles,
                    proxy_base: format!("/api/tools/{tool_id}/proxy"),
                    upstream_base: base,
                    record: CallRecord {
                        svc: svc.clone(),
                        org_id: agent.org_id.clone(),
                        actor: agent.actor(),
                        meta: agent.meta.clone(),
                        agent_id: agent.agent_id.clone(),
                        tool_id: plan.tool_id.clone(),
                        tool_name: plan.tool_name.clone(),
                        request_id: plan.request_id.clone(),
                        call_id,
                        method: call.method.to_owned(),
                        path: display_path(call.path),
                        started: Instant::now(),
                    },
                });
            }
            Err(CommitError::Stale) => agent = vend::replan(svc, agent, tool_id).await?,
            Err(CommitError::Failed(reason)) => {
                return Err(ServiceError::Internal(anyhow::anyhow!(
                    "proxied call not made: {reason}"
                )));
            }
        }
    }
    Err(ServiceError::conflict(
        "The grant changed while the call was being prepared.",
        "Retry the call.",
    ))
}

/// Whether the plan shows the grant's budget spent today.
fn over_budget(plan: &VendPlan, now: i64) -> bool {
    plan.calls_per_day
        .is_some_and(|limit| plan.usage_day == vend::day_of(now) && plan.calls_on_day >= limit)
}

fn display_path(path: &str) -> String {
    if path.is_empty() {
        "/".into()
    } else {
        path.to_owned()
    }
}

/// Why the plan's rules refuse the call, and the rules as text for the hint.
fn refusal(
    plan: &VendPlan,
    method: &str,
    segments: &[&str],
    query: Option<&str>,
) -> Option<(String, String)> {
    let tool: Vec<Rule> = rules::stored(&plan.allow_rules);
    let subset: Option<Vec<Rule>> = plan.grant_rules.as_deref().map(rules::stored);
    let narrowed = plan.read_only || subset.is_some() || !tool.is_empty();
    // `_method=DELETE` turns a checked method into another one on many frameworks.
    if narrowed && query.is_some_and(overrides_method) {
        let rules: Vec<&str> = subset
            .as_ref()
            .unwrap_or(&tool)
            .iter()
            .map(Rule::text)
            .collect();
        return Some((
            "a _method query parameter would change the method the rules checked".to_owned(),
            if rules.is_empty() {
                "GET and HEAD only".to_owned()
            } else {
                rules.join(", ")
            },
        ));
    }
    let read_only_ok = !plan.read_only || matches!(method, "GET" | "HEAD");
    let tool_ok =
        plan.allow_rules.trim().is_empty() || tool.iter().any(|r| r.allows(method, segments));
    let subset_ok = subset
        .as_ref()
        .is_none_or(|s| s.iter().any(|r| r.allows(method, segments)));
    if read_only_ok && tool_ok && subset_ok {
        return None;
    }
    let shown: Vec<&str> = match &subset {
        Some(s) => s.iter().map(Rule::text).collect(),
        None => tool.iter().map(Rule::text).collect(),
    };
    let mut allowed = if shown.is_empty() {
        "every call under the tool's base URL".to_owned()
    } else {
        shown.join(", ")
    };
    if plan.read_only {
        allowed = format!("GET and HEAD only ({allowed})");
    }
    let reason = if read_only_ok {
        format!("{method} on this path matches none of the rules")
    } else {
        "the grant is read-only".to_owned()
    };
    Some((reason, allowed))
}

fn overrides_method(query: &str) -> bool {
    url::form_urlencoded::parse(query.as_bytes()).any(|(k, _)| k.eq_ignore_ascii_case("_method"))
}

/// Audits a refused call (not waiting on the grant: the refusal itself is the record).
async fn refuse(
    svc: &Services,
    agent: &AgentCtx,
    plan: &VendPlan,
    call: &CallSpec<'_>,
    reason: &str,
) {
    let entry = AuditEntry::new(&agent.org_id, &agent.actor(), &agent.meta, "proxy.refused")
        .target("tool", &plan.tool_id)
        .agent(&agent.agent_id)
        .tool(&plan.tool_id)
        .meta(json!({
            "tool_name": plan.tool_name, "request_id": plan.request_id,
            "method": call.method, "path": display_path(call.path), "reason": reason,
        }));
    if let Err(err) = svc.audit.commit(entry, None).await {
        tracing::error!(error = %err, "refused proxied call not recorded");
    }
}

/// The raw query, refused when it holds what no URL should (raw controls, spaces, `#`).
fn check_query(query: Option<&str>) -> ServiceResult<Option<&str>> {
    match query {
        Some(q) if q.bytes().any(|b| b <= 0x20 || b == 0x7f || b == b'#') => Err(ServiceError::Invalid(
            ErrorBody::new("The query string holds characters that must be percent-encoded.")
                .hint("Percent-encode spaces and control characters in query values; nothing was sent."),
        )),
        other => Ok(other.filter(|q| !q.is_empty())),
    }
}

/// The agent's query without any parameter named like the injected one, plus the injected
/// parameter: the agent cannot override the credential.
fn outgoing_query(query: Option<&str>, param: Option<&(String, String)>) -> Option<String> {
    let mut parts: Vec<String> = query
        .into_iter()
        .flat_map(|q| q.split('&'))
        .filter(|p| !p.is_empty())
        .filter(|p| {
            let key = p.split('=').next().unwrap_or_default();
            let decoded: String = url::form_urlencoded::parse(key.as_bytes())
                .next()
                .map(|(k, _)| k.into_owned())
                .unwrap_or_default();
            param.is_none_or(|(name, _)| decoded != *name)
        })
        .map(str::to_owned)
        .collect();
    if let Some((name, value)) = param {
        let pair: String = url::form_urlencoded::Serializer::new(String::new())
            .append_pair(name, value)
            .finish();
        parts.push(pair);
    }
    (!parts.is_empty()).then(|| parts.join("&"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_injected_parameter_cannot_be_overridden() {
        let param = ("api_key".to_owned(), "s3cret".to_owned());
        assert_eq!(
            outgoing_query(Some("a=1&api_key=mine&api%5Fkey=also&b=2"), Some(&param))
                .expect("test step"),
            "a=1&b=2&api_key=s3cret"
        );
        assert_eq!(outgoing_query(Some("a=1"), None).expect("test step"), "a=1");
        assert_eq!(outgoing_query(None, None), None);
        assert!(check_query(Some("a=1%0D%0AX: y")).is_err());
        assert!(check_query(Some("a=%0D%0A")).expect("test step").is_some());
    }
}
