//! Catalog export and import (JSON or YAML): move a catalog between instances or keep it in a
//! repository. Exports never contain secrets; an import is planned first (dry run) and applied
//! only when no entry is refused, in one transaction. Tools are matched by normalized name.

use crate::model::{CatalogEntry, CatalogFormat, CatalogPlan, ProxySettings, ToolId};
use crate::server::audit;
use crate::server::events::EventKind;
use crate::server::store;
use crate::server::{ServiceError, ServiceResult, Services};

use super::actor::{AdminCtx, Permission};
use super::normalize;
use super::tools::{self, NewTool};

/// Most entries one import takes.
pub const MAX_ENTRIES: usize = 500;

/// The organization's catalog without secrets.
pub async fn export(svc: &Services, ctx: &AdminCtx) -> ServiceResult<Vec<CatalogEntry>> {
    ctx.require(Permission::ManageTools)?;
    let mut list = tools::list(svc, ctx).await?;
    list.sort_by(|a, b| a.name.cmp(&b.name));
    Ok(list
        .into_iter()
        .map(|t| CatalogEntry {
            name: t.name,
            description: t.description,
            url: t.url,
            auth_type: t.auth_type,
            credential_mode: t.credential_mode,
            instructions: t.instructions,
            delivery: Some(t.delivery),
            upstream_url: t.proxy.upstream_url,
            inject: t.proxy.inject,
            allow: t.proxy.allow,
            calls_per_day: t.proxy.calls_per_day,
        })
        .collect())
}

/// The export as text: pretty JSON or YAML.
pub fn render(entries: &[CatalogEntry], format: CatalogFormat) -> ServiceResult<String> {
    let text = match format {
        CatalogFormat::Json => serde_json::to_string_pretty(entries).map_err(|e| e.to_string()),
        CatalogFormat::Yaml => serde_norway::to_string(entries).map_err(|e| e.to_string()),
    };
    text.map_err(|err| ServiceError::Internal(anyhow::anyhow!("catalog export: {err}")))
}

/// Parses an export, JSON (it starts with `[`) or YAML; a clear 400 when it is not one.
pub fn parse(text: &str) -> ServiceResult<Vec<CatalogEntry>> {
    let parsed = if text.trim_start().starts_with('[') {
        serde_json::from_str::<Vec<CatalogEntry>>(text).map_err(|err| err.to_string())
    } else {
        serde_norway::from_str::<Vec<CatalogEntry>>(text).map_err(|err| err.to_string())
    };
    let entries = parsed.map_err(|err| {
        ServiceError::field("catalog", format!("is not a catalog export: {err}"), "Paste the JSON or YAML produced by the catalog export: a list of tools with name, description, url, auth_type, credential_mode and instructions.",
        )
    })?;
    if entries.len() > MAX_ENTRIES {
        return Err(ServiceError::field(
            "catalog",
            format!("has more than {MAX_ENTRIES} tools"),
            "Split the catalog into smaller files.",
        ));
    }
    Ok(entries)
}

/// Plans an import and, with `apply` and nothing refused, carries it out.
pub async fn import(
    svc: &Services,
    ctx: &AdminCtx,
    entries: Vec<CatalogEntry>,
    apply: bool,
) -> ServiceResult<CatalogPlan> {
    ctx.require(Permission::ManageTools)?;
    let existing = store::tools::list_tools(svc.store.reader(), &ctx.org_id).await?;
    let mut plan = CatalogPlan::default();
    let mut seen = std::collections::HashSet::new();
    let mut work = Vec::new();
    for entry in entries {
        let key = normalize::name(&entry.name);
        if key.is_empty() || !seen.insert(key.clone()) {
            plan.refused
                .push((entry.name.clone(), "missing or repeated name".into()));
            continue;
        }
        if let Some(problem) = invalid(&entry) {
            plan.refused.push((entry.name.clone(), problem.into()));
            continue;
        }
        match existing.iter().find(|t| t.normalized_name == key) {
            None => {
                plan.create.push(entry.name.clone());
                work.push((None, entry));
            }
            Some(tool) => {
                if tool.credential_mode != entry.credential_mode {
                    plan.refused.push((
                        entry.name.clone(),
                        "its credential mode differs from the existing tool's".into(),
                    ));
                    continue;
                }
                let mut fields = Vec::new();
                if tool.description != entry.description.trim() {
                    fields.push("description".to_owned());
                }
                let url = entry
                    .url
                    .as_deref()
                    .map(str::trim)
                    .filter(|u| !u.is_empty());
                let normalized_url = url
                    .map(normalize::url)
                    .transpose()
                    .ok()
                    .flatten()
                    .flatten()
                    .map(|u| u.url);
                if tool.url != normalized_url {
                    fields.push("url".to_owned());
                }
                if tool.instructions != entry.instructions.trim() {
                    fields.push("instructions".to_owned());
                }
                if proxy_differs(tool, &entry) {
                    fields.push("delivery".to_owned());
                }
                if fields.is_empty() {
                    plan.unchanged.push(entry.name.clone());
                } else {
                    plan.update.push((entry.name.clone(), fields.clone()));
                    work.push((Some((tool.id.clone(), fields)), entry));
                }
            }
        }
    }
    if !apply || !plan.refused.is_empty() {
        return Ok(plan);
    }
    // Everything is validated (and prepared) before the one transaction that writes it all:
    // an import is applied completely or not at all.
    let mut prepared = Vec::with_capacity(work.len());
    for (target, entry) in work {
        prepared.push(match target {
            None => {
                let proxy = settings_of(&entry);
                let input = NewTool {
                    name: entry.name,
                    description: entry.description,
                    url: entry.url,
                    auth_type: entry.auth_type,
                    credential_mode: entry.credential_mode,
                    credential: None,
                    credential_expires_at: None,
                    source_suggestion_id: None,
                    delivery: entry.delivery,
                    proxy,
                    instructions: entry.instructions,
                };
                Change::Create(Box::new(tools::prepare(svc, ctx, input).await?))
            }
            Some((id, fields)) => {
                let details = fields
                    .iter()
                    .any(|f| f == "description" || f == "url")
                    .then(|| {
                        tools::check_details(
                            &entry.name,
                            &entry.description,
                            entry.url.as_deref().unwrap_or(""),
                        )
                    })
                    .transpose()?;
                let guide = fields
                    .iter()
                    .any(|f| f == "instructions")
                    .then(|| tools::check_guide(&entry.instructions))
                    .transpose()?;
                let proxy = if fields.iter().any(|f| f == "delivery") {
                    let mut check = super::validate::Check::new();
                    let checked =
                        tools::check_proxy(svc, &mut check, entry.delivery, &settings_of(&entry))
                            .await;
                    check
                        .finish("Fix the tool's delivery settings in the catalog file.")
                        .map_err(|e| e.prefixed(&format!("{}: ", entry.name)))?;
                    checked.map(Box::new)
                } else {
                    None
                };
                Change::Update {
                    id,
                    details,
                    guide,
                    proxy,
                }
            }
        });
    }
    plan.applied = true;
    if prepared.is_empty() {
        return Ok(plan);
    }
    let mut tx = svc.store.begin().await?;
    let mut entries = Vec::new();
    let mut opened_requests = false;
    for change in prepared {
        match change {
            Change::Create(tool) => {
                let (_, outcome) = tools::insert_in(&mut tx, ctx, *tool, &mut entries).await?;
                opened_requests |= !outcome.opened.is_empty();
            }
            Change::Update {
                id,
                details,
                guide,
                proxy,
            } => {
                // Read again inside the transaction: the plan was made from an earlier read.
                let mut row = store::tools::find_tool(&mut *tx, &ctx.org_id, &id)
                    .await?
                    .ok_or_else(|| {
                        ServiceError::conflict(
                            "A tool of this import was deleted meanwhile.",
                            "Run the import again to see the new plan.",
                        )
                    })?;
                if let Some(details) = details {
                    // Also renames `row`: the guide's audit entry names the tool as it is now called.
                    tools::details_in(&mut tx, ctx, &mut row, details, &mut entries).await?;
                }
                if let Some(text) = guide {
                    entries.extend(
                        tools::save_guide(&mut tx, ctx, &row, &text, "manual", None).await?,
                    );
                }
                if let Some(proxy) = proxy {
                    entries.push(tools::proxy_in(&mut tx, ctx, &row, &proxy).await?);
                }
            }
        }
    }
    audit::append(&mut tx, svc.store.heads(), &entries).await?;
    tx.commit().await?;
    svc.vend_cache.clear();
    svc.events.publish(&ctx.org_id, EventKind::ToolChanged);
    if opened_requests {
        svc.events.publish(&ctx.org_id, EventKind::RequestChanged);
    }
    Ok(plan)
}

/// One tool an import creates or changes, validated before the transaction.
enum Change {
    Create(Box<tools::PreparedTool>),
    Update {
        id: ToolId,
        details: Option<tools::Details>,
        guide: Option<String>,
        proxy: Option<Box<tools::CheckedProxy>>,
    },
}

/// An entry's proxy settings as the tools service takes them.
fn settings_of(entry: &CatalogEntry) -> ProxySettings {
    ProxySettings {
        upstream_url: entry.upstream_url.clone(),
        inject: entry.inject.clone(),
        allow: entry.allow.clone(),
        calls_per_day: entry.calls_per_day,
    }
}

/// Whether an entry's delivery or proxy settings differ from the tool's (compared in their
/// stored form where the entry's parse; an entry that does not parse differs, and its import
/// then says why).
fn proxy_differs(tool: &store::tools::ToolRow, entry: &CatalogEntry) -> bool {
    let Some(delivery) = entry.delivery else {
        return false;
    };
    let upstream = entry
        .upstream_url
        .as_deref()
        .map(|u| u.trim())
        .filter(|u| !u.is_empty())
        .map(|u| {
            url::Url::parse(u)
                .map(|p| p.as_str().trim_end_matches('/').to_owned())
                .unwrap_or_else(|_| u.to_owned())
        });
    let inject = entry
        .inject
        .as_deref()
        .filter(|t| !t.trim().is_empty())
        .map(|t| super::proxy::inject::Injection::parse(t).map(|r| r.text()));
    let allow = super::proxy::rules::parse_all(&entry.allow).map(|r| super::proxy::rules::join(&r));
    tool.delivery != delivery
        || tool.upstream_url != upstream
        || match inject {
            None => tool.inject_rule.is_some(),
            Some(Ok(text)) => tool.inject_rule.as_deref() != Some(text.as_str()),
            Some(Err(_)) => true,
        }
        || allow.as_deref().is_ok_and(|a| a != tool.allow_rules)
        || allow.is_err()
        || tool.calls_per_day != entry.calls_per_day
}

/// The first field rule an entry breaks (the same limits as creating a tool by hand).
fn invalid(entry: &CatalogEntry) -> Option<&'static str> {
    use super::validate::limits;
    let chars = |s: &str| s.trim().chars().count();
    if !(limits::NAME.0..=limits::NAME.1).contains(&chars(&entry.name)) {
        return Some("name must be 2–120 characters");
    }
    if chars(&entry.description) > limits::DESCRIPTION {
        return Some("description is longer than 500 characters");
    }
    if chars(&entry.instructions) > limits::INSTRUCTIONS {
        return Some("instructions are longer than 16 000 characters");
    }
    match entry
        .url
        .as_deref()
        .map(str::trim)
        .filter(|u| !u.is_empty())
    {
        Some(url) if url.chars().count() > limits::URL || normalize::url(url).is_err() => {
            Some("url is not a valid http(s) URL")
        }
        _ => None,
    }
}
