//! A tool's delivery (fetch, proxy, both) and proxy settings: the upstream base URL (https on
//! a public address, checked when saved and again at every call), where the secret is
//! injected, the allow-list and the default daily budget.

use serde_json::json;
use url::{Host, Url};

use super::{get, load};
use crate::model::{Delivery, ProxySettings, ToolView};
use crate::server::audit::{self, AuditEntry};
use crate::server::events::EventKind;
use crate::server::service::actor::{AdminCtx, Permission};
use crate::server::service::proxy::{inject::Injection, rules};
use crate::server::service::validate::{Check, limits};
use crate::server::store::{
    self, Tx,
    tools::{ProxyColumns, ToolRow},
};
use crate::server::{ServiceError, ServiceResult, Services, clock};

/// Most calls per day a budget may name.
pub const MAX_CALLS_PER_DAY: i64 = 10_000_000;

/// Settings that passed validation, in their stored form.
#[derive(Clone, Debug)]
pub(crate) struct CheckedProxy {
    pub delivery: Delivery,
    pub upstream_url: Option<String>,
    pub inject_rule: Option<String>,
    pub allow_rules: String,
    pub calls_per_day: Option<i64>,
}

impl CheckedProxy {
    pub fn columns(&self) -> ProxyColumns<'_> {
        ProxyColumns {
            delivery: self.delivery,
            upstream_url: self.upstream_url.as_deref(),
            inject_rule: self.inject_rule.as_deref(),
            allow_rules: &self.allow_rules,
            calls_per_day: self.calls_per_day,
        }
    }
}

/// Validates delivery and proxy settings into `check`. `delivery` `None` picks the safer
/// default: proxy when an upstream is given, else fetch. The upstream's name is resolved
/// here (every address must be public), so a bad one is refused when saved, not at the first call.
pub(crate) async fn check_proxy(
    svc: &Services,
    check: &mut Check,
    delivery: Option<Delivery>,
    settings: &ProxySettings,
) -> Option<CheckedProxy> {
    let upstream = settings
        .upstream_url
        .as_deref()
        .map(str::trim)
        .filter(|u| !u.is_empty());
    let delivery = delivery.unwrap_or(if upstream.is_some() {
        Delivery::Proxy
    } else {
        Delivery::Fetch
    });
    let mut ok = true;
    let upstream_url = match upstream {
        None if delivery.proxies() => {
            check.fail(
                "upstream_url",
                "is required for proxy delivery: the https base URL calls are forwarded to (e.g. https://api.github.com)",
            );
            ok = false;
            None
        }
        None => None,
        Some(raw) => match upstream_base(raw, svc.upstreams.allows_loopback()) {
            Ok(url) => match svc.upstreams.check_destination(&url).await {
                Ok(()) => Some(base_text(&url)),
                Err(reason) => {
                    check.fail("upstream_url", format!("is refused: {reason}"));
                    ok = false;
                    None
                }
            },
            Err(message) => {
                check.fail("upstream_url", message);
                ok = false;
                None
            }
        },
    };
    let inject_rule = match settings
        .inject
        .as_deref()
        .map(str::trim)
        .filter(|t| !t.is_empty())
    {
        None => None,
        Some(text) => match Injection::parse(text) {
            Ok(rule) => Some(rule.text()),
            Err(message) => {
                check.fail("inject", message);
                ok = false;
                None
            }
        },
    };
    let allow_rules = match rules::parse_all(&settings.allow) {
        Ok(parsed) => rules::join(&parsed),
        Err(message) => {
            check.fail("allow", message);
            ok = false;
            String::new()
        }
    };
    if let Some(n) = settings.calls_per_day
        && !(1..=MAX_CALLS_PER_DAY).contains(&n)
    {
        check.fail(
            "calls_per_day",
            format!("must be from 1 to {MAX_CALLS_PER_DAY}, or empty for no budget"),
        );
        ok = false;
    }
    ok.then_some(CheckedProxy {
        delivery,
        upstream_url,
        inject_rule,
        allow_rules,
        calls_per_day: settings.calls_per_day,
    })
}

/// The upstream base URL, canonical: https (plain http only to loopback with the test
/// switch), a host, no user, query or fragment, no trailing slash.
fn upstream_base(raw: &str, allow_loopback: bool) -> Result<Url, String> {
    if raw.chars().count() > limits::URL {
        return Err(format!("must be at most {} characters", limits::URL));
    }
    let url = Url::parse(raw)
        .map_err(|_| "must be an absolute https URL, e.g. https://api.github.com".to_owned())?;
    let loopback = match url.host() {
        Some(Host::Domain(d)) => d.eq_ignore_ascii_case("localhost"),
        Some(Host::Ipv4(ip)) => ip.is_loopback(),
        Some(Host::Ipv6(ip)) => ip.is_loopback(),
        None => return Err("must name a host".into()),
    };
    match url.scheme() {
        "https" => {}
        "http" if allow_loopback && loopback => {}
        _ => return Err("must be an https URL (the secret never travels in the clear)".into()),
    }
    if !url.username().is_empty() || url.password().is_some() {
        return Err(
            "may not contain a user name or password (the credential is injected by the rule)"
                .into(),
        );
    }
    if url.query().is_some() || url.fragment().is_some() {
        return Err(
            "may not contain a query or fragment (put a query credential in the inject rule)"
                .into(),
        );
    }
    if raw.contains('\\') || url.path().contains("//") {
        return Err("has an unusual path (backslashes or //)".into());
    }
    Ok(url)
}

fn base_text(url: &Url) -> String {
    url.as_str().trim_end_matches('/').to_owned()
}

/// Changes a tool's delivery and proxy settings. Live grants keep their narrowing; calls
/// planned against the old settings are planned again (the guard compares `proxy_version`).
pub async fn set_proxy(
    svc: &Services,
    ctx: &AdminCtx,
    id: &str,
    delivery: Option<Delivery>,
    settings: &ProxySettings,
) -> ServiceResult<ToolView> {
    ctx.require(Permission::ManageTools)?;
    let row = load(svc, ctx, id).await?;
    let mut check = Check::new();
    let checked = check_proxy(svc, &mut check, delivery, settings).await;
    check.finish("Fix the listed fields and save again.")?;
    let Some(checked) = checked else {
        return Err(ServiceError::Internal(anyhow::anyhow!(
            "proxy settings failed without a field error"
        )));
    };
    let mut tx = svc.store.begin().await?;
    let entry = proxy_in(&mut tx, ctx, &row, &checked).await?;
    audit::append(&mut tx, svc.store.heads(), &[entry]).await?;
    tx.commit().await?;
    svc.vend_cache.clear();
    svc.events.publish(&ctx.org_id, EventKind::ToolChanged);
    get(svc, ctx, &row.id).await
}

/// Writes checked settings over `row`'s (compare-and-swap on its `proxy_version`) inside
/// `tx`; returns the audit entry.
pub(crate) async fn proxy_in(
    tx: &mut Tx,
    ctx: &AdminCtx,
    row: &ToolRow,
    checked: &CheckedProxy,
) -> ServiceResult<AuditEntry> {
    if !store::tools::update_tool_proxy(
        tx,
        &row.id,
        &checked.columns(),
        row.proxy_version,
        clock::now_ms(),
    )
    .await?
    {
        return Err(ServiceError::conflict(
            "The tool's proxy settings changed meanwhile.",
            "Reload the tool and save again.",
        ));
    }
    Ok(
        AuditEntry::new(&ctx.org_id, &ctx.actor, &ctx.meta, "tool.delivery_changed")
            .target("tool", &row.id)
            .tool(&row.id)
            .meta(json!({
                "tool_name": row.name,
                "from": { "delivery": row.delivery, "upstream_url": row.upstream_url, "inject": row.inject_rule,
                          "allow": rules::lines(&row.allow_rules), "calls_per_day": row.calls_per_day },
                "to": { "delivery": checked.delivery, "upstream_url": checked.upstream_url, "inject": checked.inject_rule,
                        "allow": rules::lines(&checked.allow_rules), "calls_per_day": checked.calls_per_day },
            })),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn upstream_bases_are_https_and_plain() {
        let ok = upstream_base("https://api.github.com/", false).expect("test step");
        assert_eq!(base_text(&ok), "https://api.github.com");
        let path = upstream_base("https://example.com/v1/", false).expect("test step");
        assert_eq!(base_text(&path), "https://example.com/v1");
        for bad in [
            "http://api.github.com",
            "ftp://example.com",
            "https://user:pw@example.com",
            "https://example.com/?key=1",
            "https://example.com/#x",
            "api.github.com",
            "http://127.0.0.1:9",
        ] {
            assert!(
                upstream_base(bad, false).is_err(),
                "{bad} should be refused"
            );
        }
        assert!(upstream_base("http://127.0.0.1:9", true).is_ok());
        assert!(
            upstream_base("http://example.com", true).is_err(),
            "the test switch admits plain http to loopback only"
        );
    }
}
