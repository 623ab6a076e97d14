//! The tool catalog: create, credentials (write-only), usage guides, delete.
#![expect(
    clippy::too_many_arguments,
    reason = "a server function takes its form's fields as arguments (so does the browser stub)"
)]

use leptos::prelude::*;

use crate::model::RpcError;
use crate::model::{
    AiStatus, AuthType, CatalogFormat, CatalogPlan, CredentialMode, Delivery, GuideVersion,
    ProxySettings, ToolCreated, ToolView,
};

#[cfg(feature = "ssr")]
use super::guard::{caller, fail};
#[cfg(feature = "ssr")]
use crate::server::service::tools;

#[server(prefix = "/rpc", endpoint = "tools")]
pub async fn list_tools() -> Result<Vec<ToolView>, RpcError> {
    let c = caller().await?;
    tools::list(&c.svc, &c.ctx).await.map_err(fail)
}

/// Adds a tool; with `suggestion_id`, that suggestion's backers get pending requests.
#[server(prefix = "/rpc", endpoint = "tools/create")]
pub async fn create_tool(
    name: String,
    description: String,
    url: String,
    auth_type: AuthType,
    credential_mode: CredentialMode,
    credential: String,
    instructions: String,
    suggestion_id: Option<String>,
    delivery: Option<Delivery>,
    #[server(default)] proxy: ProxySettings,
) -> Result<ToolCreated, RpcError> {
    let c = caller().await?;
    let input = tools::NewTool {
        name,
        description,
        url: Some(url).filter(|u| !u.trim().is_empty()),
        auth_type,
        credential_mode,
        credential: Some(credential)
            .filter(|s| !s.is_empty())
            .map(secrecy::SecretString::from),
        credential_expires_at: None,
        instructions,
        source_suggestion_id: suggestion_id.filter(|s| !s.is_empty()),
        delivery,
        proxy,
    };
    tools::create(&c.svc, &c.ctx, input).await.map_err(fail)
}

/// Renames a tool or changes its description or URL.
#[server(prefix = "/rpc", endpoint = "tools/update")]
pub async fn update_tool(
    id: String,
    name: String,
    description: String,
    url: String,
) -> Result<ToolView, RpcError> {
    let c = caller().await?;
    tools::update_details(&c.svc, &c.ctx, &id, &name, &description, &url)
        .await
        .map_err(fail)
}

/// Changes how approved agents use the tool: delivery, upstream, injection, rules, budget.
#[server(prefix = "/rpc", endpoint = "tools/proxy")]
pub async fn set_tool_proxy(
    id: String,
    delivery: Delivery,
    #[server(default)] proxy: ProxySettings,
) -> Result<ToolView, RpcError> {
    let c = caller().await?;
    tools::set_proxy(&c.svc, &c.ctx, &id, Some(delivery), &proxy)
        .await
        .map_err(fail)
}

/// Sets how many distinct reviewers must approve each request for the tool (1–3).
#[server(prefix = "/rpc", endpoint = "tools/quorum")]
pub async fn set_tool_quorum(id: String, approvals: i64) -> Result<ToolView, RpcError> {
    let c = caller().await?;
    tools::set_approvals_required(&c.svc, &c.ctx, &id, approvals)
        .await
        .map_err(fail)
}

/// Sets or rotates a shared tool's secret. The secret is never sent back.
#[server(prefix = "/rpc", endpoint = "tools/credential")]
pub async fn set_tool_credential(id: String, secret: String) -> Result<ToolView, RpcError> {
    let c = caller().await?;
    tools::set_credential(
        &c.svc,
        &c.ctx,
        &id,
        secrecy::SecretString::from(secret),
        None,
    )
    .await
    .map_err(fail)
}

#[server(prefix = "/rpc", endpoint = "tools/guide")]
pub async fn update_guide(id: String, text: String) -> Result<ToolView, RpcError> {
    let c = caller().await?;
    tools::update_guide(&c.svc, &c.ctx, &id, &text)
        .await
        .map_err(fail)
}

/// Whether guides can be drafted by a model on this server.
#[server(prefix = "/rpc", endpoint = "tools/ai")]
pub async fn guide_ai() -> Result<AiStatus, RpcError> {
    let c = caller().await?;
    Ok(AiStatus {
        model: c.svc.ai.as_ref().map(|d| d.model().to_owned()),
    })
}

/// Streams a draft of the tool's usage guide as [`DraftFrame`] lines; nothing is saved.
#[server(
    prefix = "/rpc",
    endpoint = "tools/draft-guide",
    output = leptos::server_fn::codec::StreamingText
)]
pub async fn draft_guide(
    id: String,
    #[server(default)] docs_url: String,
) -> Result<leptos::server_fn::codec::TextStream<RpcError>, RpcError> {
    use crate::model::DraftFrame;
    use futures_util::StreamExt;
    let c = caller().await?;
    let draft = tools::draft_guide(&c.svc, &c.ctx, &id, &docs_url)
        .await
        .map_err(fail)?;
    let ended_early = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
    let seen = ended_early.clone();
    let frames = draft.map(move |item| {
        let frame = match item {
            Ok(text) => DraftFrame::Text(text),
            Err(why) => {
                seen.store(true, std::sync::atomic::Ordering::Relaxed);
                DraftFrame::Error(why)
            }
        };
        Ok(frame.line())
    });
    let end = futures_util::stream::once(async move {
        (!ended_early.load(std::sync::atomic::Ordering::Relaxed))
            .then(|| Ok(DraftFrame::Done.line()))
    })
    .filter_map(std::future::ready);
    Ok(leptos::server_fn::codec::TextStream::new(frames.chain(end)))
}

#[server(prefix = "/rpc", endpoint = "tools/guide-history")]
pub async fn guide_history(id: String) -> Result<Vec<GuideVersion>, RpcError> {
    let c = caller().await?;
    tools::guide_history(&c.svc, &c.ctx, &id)
        .await
        .map_err(fail)
}

#[server(prefix = "/rpc", endpoint = "tools/guide-restore")]
pub async fn restore_guide(id: String, version: i64) -> Result<ToolView, RpcError> {
    let c = caller().await?;
    tools::restore_guide(&c.svc, &c.ctx, &id, version)
        .await
        .map_err(fail)
}

/// How many live grants and pending requests a delete would end.
#[server(prefix = "/rpc", endpoint = "tools/delete-impact")]
pub async fn tool_delete_impact(id: String) -> Result<(i64, i64), RpcError> {
    let c = caller().await?;
    tools::delete_impact(&c.svc, &c.ctx, &id)
        .await
        .map_err(fail)
}

#[server(prefix = "/rpc", endpoint = "tools/delete")]
pub async fn delete_tool(id: String) -> Result<(), RpcError> {
    let c = caller().await?;
    tools::delete(&c.svc, &c.ctx, &id)
        .await
        .map(|_| ())
        .map_err(fail)
}

/// The catalog as pretty JSON (the default) or YAML, without secrets.
#[server(prefix = "/rpc", endpoint = "tools/export")]
pub async fn export_catalog(format: Option<CatalogFormat>) -> Result<String, RpcError> {
    let c = caller().await?;
    let entries = crate::server::service::catalog_io::export(&c.svc, &c.ctx)
        .await
        .map_err(fail)?;
    crate::server::service::catalog_io::render(&entries, format.unwrap_or(CatalogFormat::Json))
        .map_err(fail)
}

/// Plans (dry run) or applies a catalog import.
#[server(prefix = "/rpc", endpoint = "tools/import")]
pub async fn import_catalog(json: String, apply: bool) -> Result<CatalogPlan, RpcError> {
    let c = caller().await?;
    let entries = crate::server::service::catalog_io::parse(&json).map_err(fail)?;
    crate::server::service::catalog_io::import(&c.svc, &c.ctx, entries, apply)
        .await
        .map_err(fail)
}
