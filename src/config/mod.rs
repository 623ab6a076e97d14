//! Typed settings, layered: defaults → optional TOML file → `AGENTKEY_*` environment.
//! Validated once at start with messages that name the variable.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};

use anyhow::{Context, bail};

mod spec;
use secrecy::SecretString;
use serde::Deserialize;

use app::server::ai::AiSettings;
use app::server::notify::Policy;
use app::server::outbound::ProxyLimits;
use app::server::store::{Backend, sqlite_path};

use crate::http::limits::Limits;
use crate::http::metrics::{MIN_TOKEN, MetricsMode};
use crate::http::serve::Connections;

/// Everything the server and CLI need to know.
#[derive(Debug, Clone)]
pub struct Settings {
    /// `sqlite://path` (the embedded default is `sqlite://data/agentkey.db`).
    pub database_url: String,
    pub bind: SocketAddr,
    /// Public URL agents use; appears in onboarding snippets.
    pub base_url: String,
    /// Whether the public URL was configured, rather than derived from the listener.
    pub base_url_configured: bool,
    /// Master key from the environment (base64 of 32 bytes).
    pub master_key: Option<SecretString>,
    /// Where the embedded default keeps a generated master key.
    pub master_key_file: PathBuf,
    /// True when the key file was named (`AGENTKEY_MASTER_KEY_FILE` or the config file) rather
    /// than defaulted next to the SQLite database.
    pub master_key_file_named: bool,
    /// Browser origins allowed to call the agent API (exact match).
    pub cors_origins: Vec<String>,
    /// How many reverse proxies in front of us append to `X-Forwarded-For`.
    pub trusted_proxies: usize,
    pub limits: Limits,
    /// Folder with the built site (`pkg/` with WASM, JS, CSS).
    pub site_root: String,
    /// SMTP server for sign-in mail (may hold a password); `None` logs mail instead.
    pub smtp_url: Option<SecretString>,
    /// Sender of AgentKey's mail.
    pub smtp_from: String,
    /// Retry schedule of notification delivery.
    pub notify_policy: Policy,
    /// Connection cap and timeouts of the HTTP server.
    pub connections: Connections,
    /// Tests only: lets webhooks point at a plain-http loopback receiver. Refused unless the
    /// server itself listens on loopback only.
    pub test_loopback_webhooks: bool,
    /// Tests only: lets proxied tools point at a plain-http loopback upstream, under the same
    /// conditions as `test_loopback_webhooks`.
    pub test_loopback_upstreams: bool,
    /// Timeouts and size caps of proxied calls.
    pub proxy: ProxyLimits,
    /// The model that drafts usage guides (`AGENTKEY_AI_*`); `None` hides the feature.
    pub ai: Option<AiSettings>,
    /// Where `GET /metrics` is served (`AGENTKEY_METRICS`, `AGENTKEY_METRICS_TOKEN`).
    pub metrics: MetricsMode,
}

/// The optional TOML file; every key mirrors an `AGENTKEY_*` variable.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct FileSettings {
    database_url: Option<String>,
    bind: Option<String>,
    base_url: Option<String>,
    master_key_file: Option<PathBuf>,
    cors_origins: Option<Vec<String>>,
    trusted_proxies: Option<usize>,
    rate_limits: Option<String>,
    site_root: Option<String>,
    smtp_from: Option<String>,
    notify_retry: Option<String>,
    connections: Option<String>,
    proxy: Option<String>,
    ai_url: Option<String>,
    ai_model: Option<String>,
    ai_timeout: Option<u64>,
    metrics: Option<String>,
}

/// The model settings: all or nothing, each problem naming its variable.
fn ai_settings(
    url: Option<String>,
    model: Option<String>,
    key: Option<String>,
    timeout: Option<String>,
) -> anyhow::Result<Option<AiSettings>> {
    let Some(url) = url else {
        if model.is_some() || key.is_some() {
            bail!(
                "AGENTKEY_AI_MODEL and AGENTKEY_AI_KEY need AGENTKEY_AI_URL, the chat-completions base URL (e.g. http://127.0.0.1:11434/v1 for Ollama)"
            );
        }
        return Ok(None);
    };
    let parsed = url::Url::parse(url.trim())
        .ok()
        .filter(|u| matches!(u.scheme(), "http" | "https") && u.host_str().is_some());
    let Some(url) = parsed else {
        // Not echoed: a URL may carry a password.
        bail!(
            "AGENTKEY_AI_URL must be an http(s) URL such as http://127.0.0.1:11434/v1 or https://api.openai.com/v1"
        );
    };
    let Some(model) = model.map(|m| m.trim().to_owned()).filter(|m| !m.is_empty()) else {
        bail!(
            "AGENTKEY_AI_MODEL is required with AGENTKEY_AI_URL: the model name the endpoint serves (e.g. llama3.1 or gpt-4o-mini)"
        );
    };
    let idle = match timeout {
        None => 60,
        Some(t) => match t.trim().parse::<u64>() {
            Ok(s @ 1..=600) => s,
            _ => bail!("AGENTKEY_AI_TIMEOUT must be seconds from 1 to 600 (got {t:?})"),
        },
    };
    Ok(Some(AiSettings {
        url,
        model,
        key: key.map(SecretString::from),
        idle: std::time::Duration::from_secs(idle),
    }))
}

/// `off` (the default), `on` (main listener, with the token) or a listen address.
fn metrics_mode(
    mode: Option<String>,
    token: Option<String>,
    bind: SocketAddr,
) -> anyhow::Result<MetricsMode> {
    let mode = mode.map(|m| m.trim().to_owned()).unwrap_or_default();
    match mode.as_str() {
        "" | "off" => Ok(MetricsMode::Off),
        "on" => match token {
            Some(t) if t.trim().len() >= MIN_TOKEN => Ok(MetricsMode::On {
                token: SecretString::from(t.trim().to_owned()),
            }),
            // The value is never echoed: it is a secret.
            Some(_) => bail!(
                "AGENTKEY_METRICS_TOKEN must be at least {MIN_TOKEN} characters (e.g. the output of openssl rand -hex 32)"
            ),
            None => bail!(
                "AGENTKEY_METRICS=on needs AGENTKEY_METRICS_TOKEN, the bearer token scrapers send (at least {MIN_TOKEN} characters, e.g. openssl rand -hex 32)"
            ),
        },
        addr => match addr.parse::<SocketAddr>() {
            Ok(a) if a == bind && a.port() != 0 => bail!(
                "AGENTKEY_METRICS names the main listener's address {a}; use on, or another port such as 127.0.0.1:9464"
            ),
            Ok(a) => Ok(MetricsMode::Listen(a)),
            Err(_) => bail!(
                "AGENTKEY_METRICS must be off, on, or a listen address such as 127.0.0.1:9464 (got {addr:?})"
            ),
        },
    }
}

const DEFAULT_DATABASE: &str = "sqlite://data/agentkey.db";
const DEFAULT_BIND: &str = "127.0.0.1:3000";

impl Settings {
    /// Loads from `file` (or `AGENTKEY_CONFIG`) and the process environment.
    pub fn load(file: Option<&Path>) -> anyhow::Result<Self> {
        let env = |name: &str| std::env::var(name).ok().filter(|v| !v.trim().is_empty());
        Self::from_sources(file, env)
    }

    /// Loads with an explicit variable lookup (tests pass their own).
    pub fn from_sources(
        file: Option<&Path>,
        env: impl Fn(&str) -> Option<String>,
    ) -> anyhow::Result<Self> {
        let file_path = file
            .map(Path::to_path_buf)
            .or_else(|| env("AGENTKEY_CONFIG").map(PathBuf::from));
        let file: FileSettings = match &file_path {
            Some(path) => {
                let text = std::fs::read_to_string(path)
                    .with_context(|| format!("failed to read config file {}", path.display()))?;
                toml::from_str(&text)
                    .with_context(|| format!("invalid config file {}", path.display()))?
            }
            None => FileSettings::default(),
        };

        let database_url = env("AGENTKEY_DATABASE_URL")
            .or(file.database_url)
            .unwrap_or_else(|| DEFAULT_DATABASE.into());
        if !(database_url.starts_with("sqlite:")
            || Backend::of_url(&database_url) == Backend::Postgres)
        {
            // Nothing of the value is echoed: it may hold a password.
            bail!("AGENTKEY_DATABASE_URL must be sqlite://PATH or postgres://USER@HOST/DATABASE");
        }
        let bind_text = env("AGENTKEY_BIND")
            .or(file.bind)
            .unwrap_or_else(|| DEFAULT_BIND.into());
        let bind: SocketAddr = bind_text.parse().with_context(|| {
            format!("AGENTKEY_BIND must be host:port, e.g. 127.0.0.1:3000 (got {bind_text:?})")
        })?;
        let configured_base = env("AGENTKEY_BASE_URL").or(file.base_url);
        let base_url_configured = configured_base.is_some();
        // Without a public URL, links name the listener; an unspecified address (0.0.0.0)
        // is no address a client can use, so loopback stands in for it.
        let base_url = configured_base.unwrap_or_else(|| {
            let host = if bind.ip().is_unspecified() {
                std::net::SocketAddr::new(std::net::Ipv4Addr::LOCALHOST.into(), bind.port())
            } else {
                bind
            };
            format!("http://{host}")
        });
        if !(base_url.starts_with("http://") || base_url.starts_with("https://")) {
            bail!("AGENTKEY_BASE_URL must be an http(s) URL (got {base_url:?})");
        }
        let named_key_file = env("AGENTKEY_MASTER_KEY_FILE")
            .map(PathBuf::from)
            .or(file.master_key_file);
        let master_key_file_named = named_key_file.is_some();
        let master_key_file =
            named_key_file.unwrap_or_else(|| database_dir(&database_url).join("master.key"));
        let cors_origins = match env("AGENTKEY_CORS_ORIGINS") {
            Some(list) => list
                .split(',')
                .map(|o| o.trim().trim_end_matches('/').to_owned())
                .filter(|o| !o.is_empty())
                .collect(),
            None => file.cors_origins.unwrap_or_default(),
        };
        for origin in &cors_origins {
            if !(origin.starts_with("http://") || origin.starts_with("https://")) || origin == "*" {
                bail!(
                    "AGENTKEY_CORS_ORIGINS entries must be exact origins like https://app.example.com (got {origin:?})"
                );
            }
        }
        let trusted_proxies = match env("AGENTKEY_TRUSTED_PROXIES") {
            Some(n) => n.parse().with_context(|| {
                format!("AGENTKEY_TRUSTED_PROXIES must be a number (got {n:?})")
            })?,
            None => file.trusted_proxies.unwrap_or(0),
        };
        let mut limits = Limits::default();
        if let Some(spec) = env("AGENTKEY_RATE_LIMITS").or(file.rate_limits) {
            spec::apply_limits(&mut limits, &spec)?;
        }
        let site_root = env("AGENTKEY_SITE_ROOT")
            .or(file.site_root)
            .unwrap_or_else(|| "target/site".into());
        let smtp_url = env("AGENTKEY_SMTP_URL");
        if let Some(url) = &smtp_url
            && !(url.starts_with("smtp://") || url.starts_with("smtps://"))
        {
            bail!(
                "AGENTKEY_SMTP_URL must start with smtp:// or smtps:// (the value is not shown: it may hold a password)"
            );
        }
        let smtp_from = env("AGENTKEY_SMTP_FROM")
            .or(file.smtp_from)
            .unwrap_or_else(|| "AgentKey <agentkey@localhost>".into());
        let mut notify_policy = Policy::default();
        if let Some(spec) = env("AGENTKEY_NOTIFY_RETRY").or(file.notify_retry) {
            spec::apply_retry(&mut notify_policy, &spec)?;
        }
        let mut connections = Connections::default();
        if let Some(spec) = env("AGENTKEY_CONNECTIONS").or(file.connections) {
            spec::apply_connections(&mut connections, &spec)?;
        }
        let mut proxy = ProxyLimits::default();
        if let Some(spec) = env("AGENTKEY_PROXY").or(file.proxy) {
            spec::apply_proxy(&mut proxy, &spec)?;
        }
        let ai = ai_settings(
            env("AGENTKEY_AI_URL").or(file.ai_url),
            env("AGENTKEY_AI_MODEL").or(file.ai_model),
            env("AGENTKEY_AI_KEY"),
            env("AGENTKEY_AI_TIMEOUT").or(file.ai_timeout.map(|t| t.to_string())),
        )?;
        let metrics = metrics_mode(
            env("AGENTKEY_METRICS").or(file.metrics),
            env("AGENTKEY_METRICS_TOKEN"),
            bind,
        )?;
        let switch = |name: &str| matches!(env(name).as_deref(), Some("1" | "true"));
        let test_loopback_webhooks = switch("AGENTKEY_TEST_LOOPBACK_WEBHOOKS");
        let test_loopback_upstreams = switch("AGENTKEY_TEST_LOOPBACK_UPSTREAMS");
        // A production install also listens on loopback behind its proxy, so the public URL
        // must be plain-http loopback too: then the instance cannot be anyone's real service.
        let local_base = ["http://127.0.0.1", "http://localhost", "http://[::1]"]
            .iter()
            .any(|p| {
                base_url
                    .strip_prefix(p)
                    .is_some_and(|rest| rest.is_empty() || rest.starts_with([':', '/']))
            });
        for (on, name) in [
            (test_loopback_webhooks, "AGENTKEY_TEST_LOOPBACK_WEBHOOKS"),
            (test_loopback_upstreams, "AGENTKEY_TEST_LOOPBACK_UPSTREAMS"),
        ] {
            if on && !(bind.ip().is_loopback() && local_base) {
                bail!(
                    "{name} is for tests on one machine: it needs AGENTKEY_BIND on loopback and an http://127.0.0.1 or http://localhost AGENTKEY_BASE_URL (got {bind} and {base_url})"
                );
            }
        }
        Ok(Settings {
            ai,
            metrics,
            notify_policy,
            connections,
            test_loopback_webhooks,
            test_loopback_upstreams,
            proxy,
            smtp_url: smtp_url.map(SecretString::from),
            smtp_from,
            database_url,
            bind,
            base_url,
            base_url_configured,
            master_key: env("AGENTKEY_MASTER_KEY").map(SecretString::from),
            master_key_file,
            master_key_file_named,
            cors_origins,
            trusted_proxies,
            limits,
            site_root,
        })
    }

    /// Why the links and snippets AgentKey hands out may not work for agents elsewhere: no
    /// public URL is configured, or it names no reachable host.
    pub fn base_url_problem(&self) -> Option<String> {
        let host = self
            .base_url
            .split_once("://")
            .map(|(_, rest)| rest.split(['/', '?']).next().unwrap_or(rest))
            .unwrap_or_default();
        if host.starts_with("0.0.0.0") || host.starts_with("[::]") {
            return Some(format!(
                "AGENTKEY_BASE_URL is {}, which no agent can connect to; set it to the address agents use (e.g. https://agentkey.example.com).",
                self.base_url
            ));
        }
        (!self.base_url_configured).then(|| {
            format!(
                "no public URL is configured (AGENTKEY_BASE_URL), so the snippets name {}; agents on other machines cannot reach it. Set AGENTKEY_BASE_URL to the address agents use.",
                self.base_url
            )
        })
    }

    /// Session cookies carry `Secure` unless the dashboard is served over plain http (a local
    /// install on 127.0.0.1, where browsers would otherwise drop the cookie).
    pub fn secure_cookies(&self) -> bool {
        let Some(rest) = self.base_url.strip_prefix("http://") else {
            return true;
        };
        let host = rest.split(['/', ':']).next().unwrap_or("");
        !(host == "127.0.0.1" || host == "localhost" || rest.starts_with("[::1]"))
    }

    /// True for the embedded default backend, the only one allowed a generated key file.
    pub fn is_embedded(&self) -> bool {
        self.database_url.starts_with("sqlite:")
    }
}

/// Folder of a SQLite database URL (where the key file goes by default); `.` for any other URL,
/// which must never end up in a path (it may hold a password).
fn database_dir(url: &str) -> PathBuf {
    if !url.starts_with("sqlite:") {
        return PathBuf::from(".");
    }
    Path::new(sqlite_path(url))
        .parent()
        .map(Path::to_path_buf)
        .filter(|p| !p.as_os_str().is_empty())
        .unwrap_or_else(|| PathBuf::from("."))
}

#[cfg(test)]
mod tests;
