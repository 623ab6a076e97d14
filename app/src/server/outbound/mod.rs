//! The HTTP clients that talk to user-supplied URLs: webhooks here, proxied calls in
//! [`forward`]. Such a URL is chosen by whoever configures the organization, so it must not
//! become a way into the server's own network: every address a name resolves to must be
//! public, the connection goes to exactly the addresses that were checked (the check is the
//! resolver, so DNS cannot change its answer in between), redirects are not followed (the page
//! reader in [`page`] follows a few, checking each hop like the first), and every call ends
//! within its timeout (five seconds for webhooks and pages).

mod address;
mod forward;
mod page;

use std::error::Error as StdError;
use std::net::{IpAddr, SocketAddr};
use std::sync::Arc;
use std::time::Duration;

use url::{Host, Url};

pub use address::is_public;
use address::{GuardedResolver, Refused, allowed, check_all};
pub use forward::{ForwardError, ProxyLimits, Upstreams, forward_error};
pub use page::{PAGE_CAP, Page};
/// The HTTP client crate, for callers that hand bodies to [`Upstreams::send`].
pub use reqwest;

/// Every outbound call ends within this.
pub const TIMEOUT: Duration = Duration::from_secs(5);

/// How a delivery attempt failed.
#[derive(Debug)]
pub enum SendError {
    /// Worth retrying: connection trouble, a timeout, 5xx, 408 or 429 (with its Retry-After).
    Retry {
        message: String,
        after: Option<Duration>,
    },
    /// Retrying cannot help: refused destination, 4xx, a redirect.
    Permanent(String),
}

impl SendError {
    pub fn message(&self) -> &str {
        match self {
            SendError::Retry { message, .. } | SendError::Permanent(message) => message,
        }
    }
}

/// The guarded client, built once per process.
#[derive(Clone)]
pub struct Outbound {
    client: reqwest::Client,
    allow_loopback: bool,
}

impl Outbound {
    /// `allow_loopback` exists for tests on one machine; the server only enables it when it is
    /// itself bound to loopback (see the settings).
    pub fn new(allow_loopback: bool) -> anyhow::Result<Self> {
        let client = reqwest::Client::builder()
            .redirect(reqwest::redirect::Policy::none())
            .timeout(TIMEOUT)
            .connect_timeout(TIMEOUT)
            .no_proxy()
            .https_only(!allow_loopback)
            .dns_resolver(Arc::new(GuardedResolver { allow_loopback }))
            .user_agent(concat!("AgentKey/", env!("CARGO_PKG_VERSION")))
            .build()?;
        Ok(Outbound {
            client,
            allow_loopback,
        })
    }

    pub fn allows_loopback(&self) -> bool {
        self.allow_loopback
    }

    /// Resolves the URL's host without connecting and refuses non-public answers.
    pub async fn check_destination(&self, url: &Url) -> Result<(), String> {
        match url.host() {
            Some(Host::Ipv4(ip)) => literal(IpAddr::V4(ip), self.allow_loopback),
            Some(Host::Ipv6(ip)) => literal(IpAddr::V6(ip), self.allow_loopback),
            Some(Host::Domain(host)) => {
                let addrs: Vec<SocketAddr> = tokio::net::lookup_host((host, 0))
                    .await
                    .map_err(|_| format!("{host} could not be resolved"))?
                    .collect();
                check_all(host, &addrs, self.allow_loopback).map_err(|e| e.0)
            }
            None => Err("the URL has no host".into()),
        }
    }

    /// POSTs a JSON body. `idempotency_key` goes out as `Idempotency-Key` so that a receiver
    /// can drop a repeat of a delivery that succeeded but was not acknowledged in time.
    pub async fn post_json(
        &self,
        url: &Url,
        body: &serde_json::Value,
        idempotency_key: &str,
    ) -> Result<(), SendError> {
        match url.host() {
            Some(Host::Ipv4(ip)) => {
                literal(IpAddr::V4(ip), self.allow_loopback).map_err(SendError::Permanent)?
            }
            Some(Host::Ipv6(ip)) => {
                literal(IpAddr::V6(ip), self.allow_loopback).map_err(SendError::Permanent)?
            }
            _ => {}
        }
        if url.scheme() != "https" && !self.allow_loopback {
            return Err(SendError::Permanent(
                "only https destinations are allowed".into(),
            ));
        }
        let body = serde_json::to_vec(body)
            .map_err(|e| SendError::Permanent(format!("could not encode the message: {e}")))?;
        let response = self
            .client
            .post(url.clone())
            .header(reqwest::header::CONTENT_TYPE, "application/json")
            .header("Idempotency-Key", idempotency_key)
            .body(body)
            .send()
            .await
            .map_err(transport_error)?;
        let status = response.status();
        if status.is_success() {
            return Ok(());
        }
        let retry_after = response
            .headers()
            .get(reqwest::header::RETRY_AFTER)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.trim().parse::<u64>().ok())
            .map(|s| Duration::from_secs(s.min(3600)));
        let excerpt = read_excerpt(response).await;
        let message = format!("HTTP {}: {excerpt}", status.as_u16());
        if status.is_server_error() || status.as_u16() == 408 || status.as_u16() == 429 {
            Err(SendError::Retry {
                message,
                after: retry_after,
            })
        } else if status.is_redirection() {
            Err(SendError::Permanent(format!(
                "HTTP {}: redirects are not followed",
                status.as_u16()
            )))
        } else {
            Err(SendError::Permanent(message))
        }
    }
}

/// `what` followed by the innermost cause of `err`, which says what happened (connection
/// refused, reset, …): "could not connect: Connection refused (os error 111)".
pub fn with_cause(what: String, err: &(dyn StdError + 'static)) -> String {
    let mut cause = err.source();
    let mut innermost = None;
    while let Some(c) = cause {
        innermost = Some(c);
        cause = c.source();
    }
    match innermost {
        Some(c) => format!("{what}: {c}"),
        None => what,
    }
}

fn literal(ip: IpAddr, allow_loopback: bool) -> Result<(), String> {
    if allowed(ip, allow_loopback) {
        Ok(())
    } else {
        Err(format!("{ip} is not a public address"))
    }
}

/// A transport error as text, never with the URL (a webhook URL is a credential).
fn transport_error(err: reqwest::Error) -> SendError {
    let mut source: Option<&(dyn StdError + 'static)> = Some(&err);
    while let Some(e) = source {
        if let Some(refused) = e.downcast_ref::<Refused>() {
            return SendError::Permanent(format!("destination refused: {refused}"));
        }
        source = e.source();
    }
    let kind = if err.is_timeout() {
        "timed out after 5 s".to_owned()
    } else if err.is_connect() {
        "could not connect".to_owned()
    } else {
        "request failed".to_owned()
    };
    let detail = err.without_url();
    let message = with_cause(kind, &detail);
    SendError::Retry {
        message,
        after: None,
    }
}

/// The first 200 characters of an error response, on one line.
async fn read_excerpt(mut response: reqwest::Response) -> String {
    let mut bytes = Vec::new();
    while bytes.len() < 1024 {
        match response.chunk().await {
            Ok(Some(chunk)) => bytes.extend_from_slice(&chunk),
            _ => break,
        }
    }
    crate::server::notify::neutral::flatten(&String::from_utf8_lossy(&bytes), 200)
}
