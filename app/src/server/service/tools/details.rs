//! A tool's name, description and URL: checked once, written inside the caller's transaction.

use serde_json::json;

use super::{get, load};
use crate::model::ToolView;
use crate::server::audit::{self, AuditEntry};
use crate::server::events::EventKind;
use crate::server::service::actor::{AdminCtx, Permission};
use crate::server::service::normalize;
use crate::server::service::validate::{Check, limits};
use crate::server::store::{self, StoreError, Tx, tools::ToolRow};
use crate::server::{ServiceResult, Services, clock};

/// Renames a tool or changes its description or URL. The secret, mode and guide are untouched.
pub async fn update_details(
    svc: &Services,
    ctx: &AdminCtx,
    id: &str,
    name: &str,
    description: &str,
    url: &str,
) -> ServiceResult<ToolView> {
    ctx.require(Permission::ManageTools)?;
    let mut row = load(svc, ctx, id).await?;
    let details = check_details(name, description, url)?;
    let mut tx = svc.store.begin().await?;
    let mut entries = Vec::new();
    details_in(&mut tx, ctx, &mut row, details, &mut entries).await?;
    audit::append(&mut tx, svc.store.heads(), &entries).await?;
    tx.commit().await?;
    // Fetch plans carry the tool's name: drop them so the next fetch reads the new one.
    svc.vend_cache.clear();
    svc.events.publish(&ctx.org_id, EventKind::ToolChanged);
    get(svc, ctx, &row.id).await
}

/// A tool's name, description and URL after validation.
pub(crate) struct Details {
    name: String,
    description: String,
    url: Option<normalize::NormalUrl>,
}

/// Validates new details for a tool, before any transaction is open.
pub(crate) fn check_details(name: &str, description: &str, url: &str) -> ServiceResult<Details> {
    let mut check = Check::new();
    let name = check.text("name", name, limits::NAME, false);
    let description = check
        .optional("description", Some(description), limits::DESCRIPTION, true)
        .unwrap_or_default();
    let url = Some(url.trim()).filter(|u| !u.is_empty());
    if url.is_some_and(|u| u.chars().count() > limits::URL) {
        check.fail("url", format!("must be at most {} characters", limits::URL));
    }
    let url = match url.map(normalize::url).transpose() {
        Ok(u) => u.flatten(),
        Err(message) => {
            check.fail("url", message);
            None
        }
    };
    check.finish("Fix the listed fields and try again.")?;
    Ok(Details {
        name,
        description,
        url,
    })
}

/// Writes new details of `row` inside `tx` and into `row`; adds the audit entry to `entries`.
pub(crate) async fn details_in(
    tx: &mut Tx,
    ctx: &AdminCtx,
    row: &mut ToolRow,
    details: Details,
    entries: &mut Vec<AuditEntry>,
) -> ServiceResult<()> {
    let Details {
        name,
        description,
        url,
    } = details;
    let normalized = normalize::name(&name);
    let update = store::tools::ToolDetails {
        name: &name,
        normalized_name: &normalized,
        description: &description,
        url: url.as_ref().map(|u| u.url.as_str()),
        domain: url.as_ref().map(|u| u.domain.as_str()),
    };
    super::refuse_taken_name(tx, &ctx.org_id, &normalized, Some(&row.id)).await?;
    match store::tools::update_tool_details(tx, &row.id, &update, clock::now_ms()).await {
        Err(StoreError::Unique) => return Err(super::name_raced()),
        updated => updated?,
    }
    entries.push(
        AuditEntry::new(&ctx.org_id, &ctx.actor, &ctx.meta, "tool.updated")
            .target("tool", &row.id)
            .tool(&row.id)
            .meta(json!({
                "from": { "name": row.name, "description": row.description, "url": row.url },
                "to": { "name": update.name, "description": update.description, "url": update.url },
            })),
    );
    row.normalized_name = normalized;
    row.description = description;
    row.domain = url.as_ref().map(|u| u.domain.clone());
    row.url = url.map(|u| u.url);
    row.name = name;
    Ok(())
}
