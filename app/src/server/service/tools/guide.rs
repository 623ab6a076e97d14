//! A tool's usage guide: every edit is a new version; history, and restoring an old version.

use serde_json::json;

use super::{guide_row, load, view};
use crate::model::{GuideVersion, ToolView};
use crate::server::audit::{self, AuditEntry};
use crate::server::events::EventKind;
use crate::server::service::actor::{AdminCtx, Permission};
use crate::server::service::validate::{Check, limits};
use crate::server::store::{self, Tx, tools::ToolRow};
use crate::server::{ServiceError, ServiceResult, Services, clock};

/// Saves a new usage-guide version. Unchanged text is refused rather than cluttering history.
pub async fn update_guide(
    svc: &Services,
    ctx: &AdminCtx,
    id: &str,
    text: &str,
) -> ServiceResult<ToolView> {
    ctx.require(Permission::ManageTools)?;
    let text = check_guide(text)?;
    let row = load(svc, ctx, id).await?;
    let mut tx = svc.store.begin().await?;
    let entries = save_guide(&mut tx, ctx, &row, &text, "manual", None).await?;
    audit::append(&mut tx, svc.store.heads(), &entries).await?;
    tx.commit().await?;
    after_guide_change(svc, ctx, row, text)
}

/// A usage guide as stored: trimmed, at most 16 000 characters, no control characters but
/// line breaks and tabs.
pub(crate) fn check_guide(text: &str) -> ServiceResult<String> {
    let mut check = Check::new();
    let text = check
        .optional("instructions", Some(text), limits::INSTRUCTIONS, true)
        .unwrap_or_default();
    check
        .finish("The usage guide can be at most 16 000 characters, without control characters.")?;
    Ok(text)
}

/// Restores an earlier guide version as a new version.
pub async fn restore_guide(
    svc: &Services,
    ctx: &AdminCtx,
    id: &str,
    version: i64,
) -> ServiceResult<ToolView> {
    ctx.require(Permission::ManageTools)?;
    let row = load(svc, ctx, id).await?;
    let old = store::tools::find_guide_version(svc.store.reader(), &row.id, version)
        .await?
        .ok_or_else(|| {
            ServiceError::not_found(
                "Guide version not found.",
                "List versions with `agentkey tool guide-history`.",
            )
        })?;
    let mut tx = svc.store.begin().await?;
    let entries = save_guide(
        &mut tx,
        ctx,
        &row,
        &old.instructions,
        "restore",
        Some(version),
    )
    .await?;
    audit::append(&mut tx, svc.store.heads(), &entries).await?;
    tx.commit().await?;
    after_guide_change(svc, ctx, row, old.instructions)
}

fn after_guide_change(
    svc: &Services,
    ctx: &AdminCtx,
    mut row: ToolRow,
    text: String,
) -> ServiceResult<ToolView> {
    svc.vend_cache.clear();
    svc.events.publish(&ctx.org_id, EventKind::ToolChanged);
    row.instructions = text;
    row.instructions_version += 1;
    Ok(view(row))
}

/// Writes the next guide version inside `tx` and returns its audit entries. Used by manual
/// edits, restores and accepted guide suggestions.
pub(crate) async fn save_guide(
    tx: &mut Tx,
    ctx: &AdminCtx,
    row: &ToolRow,
    text: &str,
    source: &str,
    restored_from: Option<i64>,
) -> ServiceResult<Vec<AuditEntry>> {
    if text == row.instructions {
        return Err(ServiceError::conflict(
            "The usage guide is unchanged.",
            "Edit the text before saving; no new version was created.",
        ));
    }
    let now = clock::now_ms();
    let version = row.instructions_version + 1;
    store::tools::insert_guide_version(
        tx,
        &ctx.org_id,
        &guide_row(&row.id, version, text, source, ctx, now),
    )
    .await?;
    store::tools::update_tool_guide(tx, &row.id, text, version, now).await?;
    Ok(vec![
        AuditEntry::new(&ctx.org_id, &ctx.actor, &ctx.meta, "tool.guide_updated")
            .target("tool", &row.id)
            .tool(&row.id)
            .meta(json!({ "name": row.name, "version": version, "source": source, "restored_from": restored_from })),
    ])
}

/// Every guide version, newest first.
pub async fn guide_history(
    svc: &Services,
    ctx: &AdminCtx,
    id: &str,
) -> ServiceResult<Vec<GuideVersion>> {
    ctx.require(Permission::ReadAll)?;
    let row = load(svc, ctx, id).await?;
    let versions = store::tools::list_guide_versions(svc.store.reader(), &row.id).await?;
    Ok(versions
        .into_iter()
        .map(|v| GuideVersion {
            id: v.id,
            version: v.version,
            instructions: v.instructions,
            source: v.source,
            created_by: v.created_by,
            created_at: clock::iso(v.created_at),
        })
        .collect())
}
