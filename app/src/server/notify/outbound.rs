//! The one HTTP client that talks to user-supplied URLs (webhooks). A webhook URL is chosen by
//! whoever configures the organization, so it must not become a way into the server's own
//! network: every address a name resolves to must be public, the connection goes to exactly
//! the addresses that were checked (the check is the resolver, so DNS cannot change its answer
//! in between), redirects are not followed, and every call ends within five seconds.

use std::error::Error as StdError;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};
use std::sync::Arc;
use std::time::Duration;

use reqwest::dns::{Addrs, Name, Resolve, Resolving};
use url::{Host, Url};

use crate::model::ChannelKind;

/// Every outbound call ends within this.
pub const TIMEOUT: Duration = Duration::from_secs(5);
const MAX_URL: usize = 500;
const SLACK_HOSTS: &[&str] = &["hooks.slack.com", "hooks.slack-gov.com"];
const DISCORD_HOSTS: &[&str] = &[
    "discord.com",
    "discordapp.com",
    "ptb.discord.com",
    "canary.discord.com",
];

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

/// A destination the guard refused.
#[derive(Debug)]
struct Refused(String);

impl std::fmt::Display for Refused {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

impl StdError for Refused {}

/// True for addresses on the public internet. Everything private, shared, loopback,
/// link-local, documentation, benchmarking, multicast or reserved is refused, including IPv6
/// forms that embed such an IPv4 address.
pub fn is_public(ip: IpAddr) -> bool {
    match ip {
        IpAddr::V4(v4) => is_public_v4(v4),
        IpAddr::V6(v6) => is_public_v6(v6),
    }
}

fn is_public_v4(ip: Ipv4Addr) -> bool {
    let [a, b, c, _] = ip.octets();
    !(a == 0
        || a == 10
        || a == 127
        || (a == 169 && b == 254)
        || (a == 172 && (16..=31).contains(&b))
        || (a == 192 && b == 168)
        || (a == 100 && (64..=127).contains(&b))
        || (a == 192 && b == 0 && (c == 0 || c == 2))
        || (a == 192 && b == 88 && c == 99)
        || (a == 198 && (b == 18 || b == 19))
        || (a == 198 && b == 51 && c == 100)
        || (a == 203 && b == 0 && c == 113)
        || a >= 224)
}

fn is_public_v6(ip: Ipv6Addr) -> bool {
    let seg = ip.segments();
    if let Some(v4) = ip.to_ipv4_mapped() {
        return is_public_v4(v4);
    }
    // NAT64 (64:ff9b::/96) carries an IPv4 address in its last 32 bits.
    if seg[0] == 0x64 && seg[1] == 0xff9b && seg[2..6] == [0, 0, 0, 0] {
        return is_public_v4(Ipv4Addr::new(
            (seg[6] >> 8) as u8,
            seg[6] as u8,
            (seg[7] >> 8) as u8,
            seg[7] as u8,
        ));
    }
    let global_unicast = (seg[0] & 0xe000) == 0x2000;
    global_unicast
        && !(seg[0] == 0x2001 && seg[1] < 0x200) // 2001::/23: Teredo, benchmarking, ORCHID…
        && !(seg[0] == 0x2001 && seg[1] == 0x0db8) // documentation
        && seg[0] != 0x2002 // 6to4 relays to arbitrary IPv4
}

fn allowed(ip: IpAddr, allow_loopback: bool) -> bool {
    is_public(ip) || (allow_loopback && ip.is_loopback())
}

fn check_all(host: &str, addrs: &[SocketAddr], allow_loopback: bool) -> Result<(), Refused> {
    if addrs.is_empty() {
        return Err(Refused(format!("{host} does not resolve to any address")));
    }
    match addrs.iter().find(|a| !allowed(a.ip(), allow_loopback)) {
        Some(bad) => Err(Refused(format!(
            "{host} resolves to {}, which is not a public address",
            bad.ip()
        ))),
        None => Ok(()),
    }
}

/// The resolver is the check: the connector dials only what it returns.
struct GuardedResolver {
    allow_loopback: bool,
}

impl Resolve for GuardedResolver {
    fn resolve(&self, name: Name) -> Resolving {
        let allow_loopback = self.allow_loopback;
        Box::pin(async move {
            let host = name.as_str().to_owned();
            let addrs: Vec<SocketAddr> = tokio::net::lookup_host((host.as_str(), 0))
                .await
                .map_err(|_| {
                    Box::new(Refused(format!("{host} could not be resolved")))
                        as Box<dyn StdError + Send + Sync>
                })?
                .collect();
            check_all(&host, &addrs, allow_loopback)
                .map_err(|e| Box::new(e) as Box<dyn StdError + Send + Sync>)?;
            Ok(Box::new(addrs.into_iter()) as Addrs)
        })
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

    /// Checks the URL's shape for its provider (official hosts and paths only).
    pub fn validate_webhook(&self, kind: ChannelKind, raw: &str) -> Result<Url, String> {
        validate_webhook(kind, raw, self.allow_loopback)
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
    let mut message = kind;
    let mut cause = detail.source();
    // The innermost cause says what happened (connection refused, reset, …).
    while let Some(c) = cause {
        if c.source().is_none() {
            message = format!("{message}: {c}");
        }
        cause = c.source();
    }
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
    super::neutral::flatten(&String::from_utf8_lossy(&bytes), 200)
}

/// Checks a webhook URL against its provider's official hosts and paths. With
/// `allow_loopback` (tests only) a plain-http loopback host may stand in for the provider.
pub fn validate_webhook(kind: ChannelKind, raw: &str, allow_loopback: bool) -> Result<Url, String> {
    let raw = raw.trim();
    if raw.chars().count() > MAX_URL {
        return Err(format!("must be at most {MAX_URL} characters"));
    }
    let url = Url::parse(raw).map_err(|_| "is not a valid URL".to_owned())?;
    if !url.username().is_empty() || url.password().is_some() {
        return Err("must not contain a user name or password".into());
    }
    if url.fragment().is_some() {
        return Err("must not contain a #fragment".into());
    }
    let (hosts, prefix, example) = match kind {
        ChannelKind::Slack => (
            SLACK_HOSTS,
            "/services/",
            "https://hooks.slack.com/services/T…/B…/…",
        ),
        ChannelKind::Discord => (
            DISCORD_HOSTS,
            "/api/webhooks/",
            "https://discord.com/api/webhooks/…/…",
        ),
        ChannelKind::Email => return Err("email needs no URL".into()),
    };
    if !url.path().starts_with(prefix) || url.path().len() <= prefix.len() {
        return Err(format!("must be a {} webhook like {example}", kind.label()));
    }
    let host = url.host_str().unwrap_or("");
    let loopback_host = host == "localhost"
        || matches!(url.host(), Some(Host::Ipv4(ip)) if ip.is_loopback())
        || matches!(url.host(), Some(Host::Ipv6(ip)) if ip.is_loopback());
    let loopback_stand_in = allow_loopback && url.scheme() == "http" && loopback_host;
    let official =
        url.scheme() == "https" && hosts.contains(&host) && url.port().is_none_or(|p| p == 443);
    if !(official || loopback_stand_in) {
        return Err(format!(
            "must be a {} webhook on {} (like {example})",
            kind.label(),
            hosts.join(" or ")
        ));
    }
    Ok(url)
}

/// What the dashboard shows instead of a webhook URL: host, path kind and the last four
/// characters, enough to recognise it, useless to call it.
pub fn mask(url: &Url) -> String {
    let path = url.path();
    let tail: String = path
        .chars()
        .rev()
        .take(4)
        .collect::<Vec<_>>()
        .into_iter()
        .rev()
        .collect();
    let kind = if path.starts_with("/services/") {
        "/services/"
    } else {
        "/api/webhooks/"
    };
    format!("{}{kind}…{tail}", url.host_str().unwrap_or(""))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn private_reserved_and_loopback_addresses_are_not_public() {
        for bad in [
            "0.0.0.0",
            "10.1.2.3",
            "127.0.0.1",
            "169.254.169.254",
            "172.16.0.1",
            "172.31.255.255",
            "192.168.1.1",
            "100.64.0.1",
            "192.0.0.8",
            "192.0.2.1",
            "198.18.0.1",
            "198.51.100.7",
            "203.0.113.9",
            "224.0.0.1",
            "255.255.255.255",
            "::",
            "::1",
            "fe80::1",
            "fc00::1",
            "fd12::1",
            "ff02::1",
            "::ffff:127.0.0.1",
            "::ffff:10.0.0.1",
            "64:ff9b::a00:1",
            "2001:db8::1",
            "2002:a00:1::1",
        ] {
            assert!(
                !is_public(bad.parse().expect("ip")),
                "{bad} must be refused"
            );
        }
        for good in [
            "1.1.1.1",
            "8.8.8.8",
            "172.32.0.1",
            "2606:4700:4700::1111",
            "::ffff:1.1.1.1",
        ] {
            assert!(is_public(good.parse().expect("ip")), "{good} is public");
        }
    }

    #[test]
    fn only_official_webhook_hosts_and_paths_pass() {
        assert!(
            validate_webhook(
                ChannelKind::Slack,
                "https://hooks.slack.com/services/T1/B2/xyz",
                false
            )
            .is_ok()
        );
        assert!(
            validate_webhook(
                ChannelKind::Discord,
                "https://discord.com/api/webhooks/1/abc",
                false
            )
            .is_ok()
        );
        for bad in [
            "http://hooks.slack.com/services/T1/B2/xyz",
            "https://hooks.slack.com.evil.example/services/T1",
            "https://evil.example/services/T1/B2/xyz",
            "https://hooks.slack.com@127.0.0.1/services/T1",
            "https://hooks.slack.com/other/T1",
            "https://hooks.slack.com:8443/services/T1",
            "https://127.0.0.1/services/T1",
            "http://127.0.0.1:9/services/T1",
            "not a url",
        ] {
            assert!(
                validate_webhook(ChannelKind::Slack, bad, false).is_err(),
                "{bad} must be refused"
            );
        }
        assert!(
            validate_webhook(
                ChannelKind::Discord,
                "https://hooks.slack.com/services/T1/B2/x",
                false
            )
            .is_err()
        );
    }

    #[test]
    fn the_test_setting_admits_loopback_but_not_private_hosts() {
        assert!(
            validate_webhook(ChannelKind::Slack, "http://127.0.0.1:9/services/T1", true).is_ok()
        );
        assert!(
            validate_webhook(ChannelKind::Slack, "http://10.0.0.1:9/services/T1", true).is_err()
        );
        assert!(allowed("127.0.0.1".parse().expect("ip"), true));
        assert!(!allowed("10.0.0.1".parse().expect("ip"), true));
        assert!(!allowed("127.0.0.1".parse().expect("ip"), false));
    }

    #[test]
    fn masks_keep_only_host_and_last_characters() {
        let url =
            Url::parse("https://hooks.slack.com/services/T000/B000/abcdefSECRETwxyz").expect("url");
        let masked = mask(&url);
        assert_eq!(masked, "hooks.slack.com/services/…wxyz");
        assert!(!masked.contains("SECRET"));
    }
}
