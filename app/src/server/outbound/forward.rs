//! The client of proxied calls: the same guard as webhooks (public addresses only, the
//! connection pinned to the checked answer, no redirects followed), its own timeouts, a pool
//! of kept-alive connections, and errors that never carry the URL (its query may hold the
//! injected secret).

use std::error::Error as StdError;
use std::sync::Arc;
use std::time::Duration;

use url::{Host, Url};

use super::address::{GuardedResolver, Refused};
use super::{Outbound, literal};

/// Timeouts and size caps of proxied calls (`AGENTKEY_PROXY`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ProxyLimits {
    /// Connecting to the upstream (TCP and TLS).
    pub connect: Duration,
    /// The whole call, from connecting to the last byte of the response.
    pub total: Duration,
    /// Largest request body an agent may send.
    pub request_body: u64,
    /// Largest response body passed back.
    pub response_body: u64,
}

impl Default for ProxyLimits {
    fn default() -> Self {
        ProxyLimits {
            connect: Duration::from_secs(5),
            total: Duration::from_secs(30),
            request_body: 10 * 1024 * 1024,
            response_body: 50 * 1024 * 1024,
        }
    }
}

/// Why a proxied call got no answer.
#[derive(Debug)]
pub enum ForwardError {
    /// The destination is not allowed (a private address, plain http).
    Refused(String),
    /// No answer within the total timeout (or no connection within the connect timeout).
    Timeout,
    /// The upstream could not be reached or broke the connection.
    Unreachable(String),
}

/// The guarded client for upstreams, built once per process.
pub struct Upstreams {
    guard: Outbound,
    pub limits: ProxyLimits,
}

impl Upstreams {
    /// `allow_loopback`: tests only, under the same conditions as for webhooks.
    pub fn new(allow_loopback: bool, limits: ProxyLimits) -> anyhow::Result<Self> {
        let client = reqwest::Client::builder()
            .redirect(reqwest::redirect::Policy::none())
            .timeout(limits.total)
            .connect_timeout(limits.connect)
            .pool_idle_timeout(Duration::from_secs(60))
            .no_proxy()
            .https_only(!allow_loopback)
            .dns_resolver(Arc::new(GuardedResolver { allow_loopback }))
            .build()?;
        Ok(Upstreams {
            guard: Outbound {
                client,
                allow_loopback,
            },
            limits,
        })
    }

    pub fn allows_loopback(&self) -> bool {
        self.guard.allow_loopback
    }

    /// Resolves the URL's host without connecting and refuses non-public answers (save time).
    pub async fn check_destination(&self, url: &Url) -> Result<(), String> {
        self.guard.check_destination(url).await
    }

    /// Sends one call. The resolver refuses non-public answers for names; literal addresses
    /// are checked here.
    pub async fn send(
        &self,
        method: reqwest::Method,
        url: Url,
        headers: reqwest::header::HeaderMap,
        body: Option<reqwest::Body>,
    ) -> Result<reqwest::Response, ForwardError> {
        let allow = self.guard.allow_loopback;
        match url.host() {
            Some(Host::Ipv4(ip)) => literal(ip.into(), allow).map_err(ForwardError::Refused)?,
            Some(Host::Ipv6(ip)) => literal(ip.into(), allow).map_err(ForwardError::Refused)?,
            _ => {}
        }
        if url.scheme() != "https" && !allow {
            return Err(ForwardError::Refused(
                "only https upstreams are allowed".into(),
            ));
        }
        let mut request = self.guard.client.request(method, url).headers(headers);
        if let Some(body) = body {
            request = request.body(body);
        }
        request.send().await.map_err(forward_error)
    }
}

/// A transport error as a reason, never with the URL.
pub fn forward_error(err: reqwest::Error) -> ForwardError {
    let mut source: Option<&(dyn StdError + 'static)> = Some(&err);
    while let Some(e) = source {
        if let Some(refused) = e.downcast_ref::<Refused>() {
            return ForwardError::Refused(refused.to_string());
        }
        source = e.source();
    }
    if err.is_timeout() {
        return ForwardError::Timeout;
    }
    let err = err.without_url();
    let reason = if err.is_connect() {
        "could not connect".to_owned()
    } else if err.is_body() {
        "the request body could not be sent".to_owned()
    } else {
        "the connection failed".to_owned()
    };
    ForwardError::Unreachable(super::with_cause(reason, &err))
}
