//! Grant lifecycle: a tool's grant durations, the organization's expiry settings, and the
//! exposure ledger (who saw which secret).

use leptos::prelude::*;

use crate::model::{LifecycleSettings, RotationAdvice, RpcError, ToolExposure, ToolView};

#[cfg(feature = "ssr")]
use super::guard::{caller, fail};
#[cfg(feature = "ssr")]
use crate::server::service::{lifecycle, tools};

/// Sets a tool's maximum and default grant durations (`30m`, `8h`, `7d`, `standing`; empty:
/// none).
#[server(prefix = "/rpc", endpoint = "tools/durations")]
pub async fn set_tool_durations(
    id: String,
    max: String,
    default: String,
) -> Result<ToolView, RpcError> {
    let c = caller().await?;
    let max_d = lifecycle::parse_duration_field(Some(&max)).map_err(fail)?;
    let default_d = lifecycle::parse_duration_field(Some(&default)).map_err(fail)?;
    tools::set_durations(&c.svc, &c.ctx, &id, max_d, default_d)
        .await
        .map_err(fail)
}

#[server(prefix = "/rpc", endpoint = "lifecycle")]
pub async fn get_lifecycle_settings() -> Result<LifecycleSettings, RpcError> {
    let c = caller().await?;
    lifecycle::settings::settings(&c.svc, &c.ctx)
        .await
        .map_err(fail)
}

#[server(prefix = "/rpc", endpoint = "lifecycle/save")]
pub async fn save_lifecycle_settings(
    pending_expiry_hours: i64,
    #[server(default)] idle_revoke_days: Option<i64>,
) -> Result<LifecycleSettings, RpcError> {
    let c = caller().await?;
    let new = LifecycleSettings {
        pending_expiry_hours,
        idle_revoke_days,
    };
    lifecycle::settings::save(&c.svc, &c.ctx, new)
        .await
        .map_err(fail)
}

#[server(prefix = "/rpc", endpoint = "tools/exposure")]
pub async fn get_tool_exposure(id: String) -> Result<ToolExposure, RpcError> {
    let c = caller().await?;
    lifecycle::exposure::for_tool(&c.svc, &c.ctx, &id)
        .await
        .map_err(fail)
}

/// After an agent lost access: shared secrets whose current version it had fetched.
#[server(prefix = "/rpc", endpoint = "exposure/advice")]
pub async fn get_rotation_advice(
    agent_id: String,
    #[server(default)] tool_id: Option<String>,
) -> Result<Vec<RotationAdvice>, RpcError> {
    let c = caller().await?;
    lifecycle::exposure::rotation_advice(&c.svc, &c.ctx, &agent_id, tool_id.as_deref())
        .await
        .map_err(fail)
}

#[server(prefix = "/rpc", endpoint = "rules")]
pub async fn list_auto_rules() -> Result<Vec<crate::model::AutoRuleView>, RpcError> {
    let c = caller().await?;
    lifecycle::auto::list_rules(&c.svc, &c.ctx)
        .await
        .map_err(fail)
}

/// Adds an auto-approval rule: agents carrying every label get the tool for at most
/// `max_duration` (read-only when proxied).
#[server(prefix = "/rpc", endpoint = "rules/add")]
pub async fn add_auto_rule(
    tool_id: String,
    labels: String,
    max_duration: String,
) -> Result<crate::model::AutoRuleView, RpcError> {
    let c = caller().await?;
    let max = lifecycle::parse_duration_field(Some(&max_duration)).map_err(fail)?;
    lifecycle::auto::add_rule(&c.svc, &c.ctx, &tool_id, &labels, max)
        .await
        .map_err(fail)
}

#[server(prefix = "/rpc", endpoint = "rules/delete")]
pub async fn delete_auto_rule(id: String) -> Result<(), RpcError> {
    let c = caller().await?;
    lifecycle::auto::delete_rule(&c.svc, &c.ctx, &id)
        .await
        .map_err(fail)
}

#[server(prefix = "/rpc", endpoint = "tools/always-human")]
pub async fn set_tool_always_human(id: String, on: bool) -> Result<ToolView, RpcError> {
    let c = caller().await?;
    lifecycle::auto::set_always_human(&c.svc, &c.ctx, &id, on)
        .await
        .map_err(fail)
}

/// Replaces an agent's labels (space- or comma-separated, e.g. `team:payments env:staging`).
#[server(prefix = "/rpc", endpoint = "agents/labels")]
pub async fn set_agent_labels(
    id: String,
    labels: String,
) -> Result<crate::model::AgentView, RpcError> {
    let c = caller().await?;
    lifecycle::auto::set_agent_labels(&c.svc, &c.ctx, &id, &labels)
        .await
        .map_err(fail)
}

#[server(prefix = "/rpc", endpoint = "reviews")]
pub async fn list_reviews() -> Result<Vec<crate::model::AccessReviewView>, RpcError> {
    let c = caller().await?;
    lifecycle::reviews::list(&c.svc, &c.ctx).await.map_err(fail)
}

#[server(prefix = "/rpc", endpoint = "reviews/get")]
pub async fn get_review(id: String) -> Result<crate::model::AccessReviewView, RpcError> {
    let c = caller().await?;
    lifecycle::reviews::get(&c.svc, &c.ctx, &id)
        .await
        .map_err(fail)
}

/// Starts a review of all live grants (`scope` `all`), or of one tool's or agent's
/// (`tool`/`agent` with `scope_id`).
#[server(prefix = "/rpc", endpoint = "reviews/start")]
pub async fn start_review(
    scope: String,
    #[server(default)] scope_id: String,
    #[server(default)] revoke_unconfirmed: bool,
) -> Result<crate::model::AccessReviewView, RpcError> {
    use lifecycle::reviews::Scope;
    let c = caller().await?;
    let scope = match scope.as_str() {
        "all" => Scope::All,
        "tool" => Scope::Tool(&scope_id),
        "agent" => Scope::Agent(&scope_id),
        _ => {
            return Err(RpcError::new(400, "Unknown review scope.").hint("Use all, tool or agent."));
        }
    };
    lifecycle::reviews::start(&c.svc, &c.ctx, scope, revoke_unconfirmed)
        .await
        .map_err(fail)
}

#[server(prefix = "/rpc", endpoint = "reviews/decide")]
pub async fn decide_review_item(
    id: String,
    keep: bool,
    #[server(default)] note: Option<String>,
) -> Result<crate::model::AccessReviewView, RpcError> {
    let c = caller().await?;
    lifecycle::reviews::decide(&c.svc, &c.ctx, &id, keep, note.as_deref())
        .await
        .map_err(fail)
}

#[server(prefix = "/rpc", endpoint = "reviews/close")]
pub async fn close_review(id: String) -> Result<crate::model::AccessReviewView, RpcError> {
    let c = caller().await?;
    lifecycle::reviews::close(&c.svc, &c.ctx, &id)
        .await
        .map_err(fail)
}

/// The review's evidence as CSV.
#[server(prefix = "/rpc", endpoint = "reviews/export")]
pub async fn export_review(id: String) -> Result<String, RpcError> {
    let c = caller().await?;
    lifecycle::reviews::csv(&c.svc, &c.ctx, &id)
        .await
        .map_err(fail)
}
