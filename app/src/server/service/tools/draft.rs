//! A usage guide drafted by the configured model from what AgentKey knows about the tool,
//! an optional documentation page, and why agents asked for it. The draft streams to the
//! admin's editor and is never saved here: saving stays `update_guide`, a human's act.

use super::load;
use crate::model::ErrorBody;
use crate::server::ai::{AgentReason, Draft, DraftError, DraftInput, page_text};
use crate::server::service::actor::{AdminCtx, Permission};
use crate::server::service::normalize;
use crate::server::store;
use crate::server::{ServiceError, ServiceResult, Services};

/// How many agents' reasons go into the prompt.
const REASONS: i64 = 10;

/// Starts a draft for tool `id`; `docs_url` (may be blank or a bare domain) is read first.
pub async fn draft_guide(
    svc: &Services,
    ctx: &AdminCtx,
    id: &str,
    docs_url: &str,
) -> ServiceResult<Draft> {
    ctx.require(Permission::ManageTools)?;
    let row = load(svc, ctx, id).await?;
    let drafter = svc.ai.as_ref().ok_or_else(|| {
        ServiceError::Unavailable(
            ErrorBody::new("AI-drafted guides are not set up on this server.").hint(
                "The operator sets AGENTKEY_AI_URL (an OpenAI-compatible endpoint such as http://127.0.0.1:11434/v1) and AGENTKEY_AI_MODEL, optionally AGENTKEY_AI_KEY, and restarts AgentKey. Until then, write the guide by hand.",
            ),
        )
    })?;
    let docs_url = normalize::url(docs_url).map_err(|e| {
        ServiceError::field(
            "docs_url",
            format!("The docs URL {e}."),
            "Give the address of the tool's API documentation, e.g. docs.github.com/en/rest, or leave it empty.",
        )
    })?;
    let docs = match &docs_url {
        Some(u) => Some(read_docs(svc, &u.url).await?),
        None => None,
    };
    let reasons =
        store::requests::list_recent_reasons(svc.store.reader(), &ctx.org_id, &row.id, REASONS)
            .await?;
    let input = DraftInput {
        tool_name: row.name.clone(),
        tool_url: row.url.clone(),
        description: row.description.clone(),
        delivery: row.delivery.as_str().to_owned(),
        proxy_url: row
            .delivery
            .proxies()
            .then(|| format!("{}/api/tools/{}/proxy", svc.base_url, row.id)),
        docs_url: docs.as_ref().map(|(url, _)| url.clone()),
        docs_text: docs.map(|(_, text)| text),
        agent_reasons: reasons
            .into_iter()
            .map(|(agent, reason)| AgentReason { agent, reason })
            .collect(),
    };
    let messages = crate::server::ai::prompt_for(&input);
    tracing::info!(tool_id = %row.id, model = drafter.model(), "drafting a usage guide");
    drafter.draft(&messages).await.map_err(|e| match e {
        DraftError::Busy => ServiceError::Exhausted {
            body: ErrorBody::new(format!(
                "{} guide drafts are already running on this server.",
                crate::server::ai::MAX_DRAFTS
            ))
            .hint("Wait for one to finish, then try again."),
            retry_after: 10,
        },
        DraftError::Upstream(why) => ServiceError::BadGateway(
            ErrorBody::new(format!("Could not draft the guide: {why}.")).hint(
                "Check that the model server is running and AGENTKEY_AI_URL and AGENTKEY_AI_MODEL name it, then try again; or write the guide by hand.",
            ),
        ),
    })
}

/// The docs page's text, read through the guarded client.
async fn read_docs(svc: &Services, url: &str) -> ServiceResult<(String, String)> {
    let refused = |why: String| {
        ServiceError::field(
            "docs_url",
            format!("Could not read the docs page: {why}."),
            "Use a public https page of the tool's documentation, or leave the field empty.",
        )
    };
    let parsed = url::Url::parse(url).map_err(|_| refused("it is not a URL".into()))?;
    let page = svc
        .notifier
        .outbound
        .get_page(&parsed)
        .await
        .map_err(refused)?;
    let (html, final_url) = (page.is_html(), page.url.to_string());
    // Up to a mebibyte of someone's HTML: read off the async workers.
    let text = tokio::task::spawn_blocking(move || page_text(&page.body, html))
        .await
        .map_err(|e| {
            ServiceError::Internal(anyhow::Error::new(e).context("failed to read the docs page"))
        })?;
    if text.trim().is_empty() {
        return Err(refused("the page has no readable text".into()));
    }
    Ok((final_url, text))
}
