//! The delivery flags of `agentkey tool create` and `tool update`: how approved agents use
//! the credential (fetch, proxy, both) and, for the proxy, where calls go and what they may do.

use clap::{Args, ValueEnum};

use app::model::{Delivery, ProxySettings, ToolView};

#[derive(Debug, Clone, Copy, ValueEnum)]
pub enum DeliveryArg {
    /// Agents receive the secret from the credentials route.
    Fetch,
    /// Agents call the tool through AgentKey; the secret is never handed out.
    Proxy,
    /// Either.
    Both,
}

#[derive(Debug, Default, Args)]
pub struct DeliveryFlags {
    /// fetch, proxy or both (default on create: proxy when --upstream is given, else fetch).
    #[arg(long, value_enum)]
    delivery: Option<DeliveryArg>,
    /// Base URL proxied calls are forwarded to (https on a public address).
    #[arg(long)]
    upstream: Option<String>,
    /// Where the secret goes, e.g. 'Authorization: Bearer {secret}', 'X-API-Key: {secret}',
    /// 'Authorization: Basic {secret}' (secret user:pass), '?api_key={secret}',
    /// 'Authorization: Bearer {secret.access_token}' (JSON secret).
    #[arg(long)]
    inject: Option<String>,
    /// An allowed call, 'METHOD /path-pattern' (* one segment, ** any); repeat for several.
    /// None: every call under the upstream.
    #[arg(long = "allow", value_name = "RULE")]
    allow: Vec<String>,
    /// On update: remove every allow rule (every call under the upstream is allowed).
    #[arg(long, conflicts_with = "allow")]
    clear_allow: bool,
    /// Default calls-per-day budget of each grant.
    #[arg(long)]
    calls_per_day: Option<i64>,
    /// On update: remove the default budget.
    #[arg(long, conflicts_with = "calls_per_day")]
    no_budget: bool,
}

impl DeliveryFlags {
    /// True when no flag was given (an update then leaves delivery alone).
    pub fn is_empty(&self) -> bool {
        self.delivery.is_none()
            && self.upstream.is_none()
            && self.inject.is_none()
            && self.allow.is_empty()
            && !self.clear_allow
            && self.calls_per_day.is_none()
            && !self.no_budget
    }

    pub fn delivery(&self) -> Option<Delivery> {
        self.delivery.map(|d| match d {
            DeliveryArg::Fetch => Delivery::Fetch,
            DeliveryArg::Proxy => Delivery::Proxy,
            DeliveryArg::Both => Delivery::Both,
        })
    }

    /// The settings these flags give over `current` (an update keeps what is not named).
    pub fn over(&self, current: &ProxySettings) -> ProxySettings {
        ProxySettings {
            upstream_url: self
                .upstream
                .clone()
                .or_else(|| current.upstream_url.clone()),
            inject: self.inject.clone().or_else(|| current.inject.clone()),
            allow: if self.clear_allow {
                Vec::new()
            } else if self.allow.is_empty() {
                current.allow.clone()
            } else {
                self.allow.clone()
            },
            calls_per_day: if self.no_budget {
                None
            } else {
                self.calls_per_day.or(current.calls_per_day)
            },
        }
    }
}

/// One line about how agents use the tool.
pub fn describe(t: &ToolView) -> String {
    match t.delivery {
        Delivery::Fetch => "Delivery: fetch (agents receive the secret).\n".to_owned(),
        d => {
            let rules = if t.proxy.allow.is_empty() {
                "every call".to_owned()
            } else {
                t.proxy.allow.join(", ")
            };
            format!(
                "Delivery: {d}; proxied to {} with {}; allowed: {rules}{}.\n",
                t.proxy.upstream_url.as_deref().unwrap_or("-"),
                t.proxy
                    .inject
                    .as_deref()
                    .unwrap_or(app::server::service::proxy::inject::DEFAULT),
                t.proxy
                    .calls_per_day
                    .map(|n| format!("; {n} calls per day per grant"))
                    .unwrap_or_default(),
            )
        }
    }
}
