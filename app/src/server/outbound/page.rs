//! Reading a web page someone named (a tool's documentation) through the guarded client.
//! Redirects are followed by hand, at most three, and every hop is checked exactly like the
//! first: a public page that redirects to a private address is refused before any connection
//! to it. The body is capped and only text comes back.

use std::net::IpAddr;

use url::{Host, Url};

use super::{Outbound, literal, transport_error};

/// How much of a page is read; the rest is dropped (`Page::truncated`).
pub const PAGE_CAP: usize = 1 << 20;
const MAX_HOPS: usize = 3;

/// A text page as received.
pub struct Page {
    /// Where the text came from after redirects.
    pub url: Url,
    pub content_type: String,
    pub body: String,
    pub truncated: bool,
}

impl Page {
    pub fn is_html(&self) -> bool {
        self.content_type.contains("html")
    }
}

impl Outbound {
    /// GETs `url`, following up to three redirects, each re-checked. The error is a sentence
    /// for the person who typed the URL.
    pub async fn get_page(&self, url: &Url) -> Result<Page, String> {
        let mut url = url.clone();
        for _ in 0..=MAX_HOPS {
            self.check_hop(&url)?;
            let response = self
                .client
                .get(url.clone())
                .header(
                    reqwest::header::ACCEPT,
                    "text/html, text/plain, text/markdown, application/json;q=0.9, */*;q=0.1",
                )
                .send()
                .await
                .map_err(|e| transport_error(e).message().to_owned())?;
            let status = response.status();
            if status.is_redirection() {
                let location = response
                    .headers()
                    .get(reqwest::header::LOCATION)
                    .and_then(|v| v.to_str().ok())
                    .ok_or_else(|| format!("HTTP {} without a Location", status.as_u16()))?;
                url = url
                    .join(location)
                    .map_err(|_| "the page redirects to something that is not a URL".to_owned())?;
                continue;
            }
            if !status.is_success() {
                return Err(format!("the page answered HTTP {}", status.as_u16()));
            }
            let content_type = response
                .headers()
                .get(reqwest::header::CONTENT_TYPE)
                .and_then(|v| v.to_str().ok())
                .unwrap_or("text/plain")
                .to_ascii_lowercase();
            if !is_text(&content_type) {
                let kind = content_type.split(';').next().unwrap_or_default().trim();
                return Err(format!("the page is {kind}, not text or HTML"));
            }
            let (bytes, truncated) = read_capped(response).await?;
            return Ok(Page {
                url,
                content_type,
                body: String::from_utf8_lossy(&bytes).into_owned(),
                truncated,
            });
        }
        Err(format!("the page redirects more than {MAX_HOPS} times"))
    }

    /// What the resolver cannot see: the scheme, and a host written as an address.
    fn check_hop(&self, url: &Url) -> Result<(), String> {
        let plain_allowed = self.allow_loopback && url.scheme() == "http";
        if url.scheme() != "https" && !plain_allowed {
            return Err(format!(
                "only https pages can be read ({} is {})",
                url.host_str().unwrap_or("the URL"),
                url.scheme()
            ));
        }
        match url.host() {
            Some(Host::Ipv4(ip)) => literal(IpAddr::V4(ip), self.allow_loopback),
            Some(Host::Ipv6(ip)) => literal(IpAddr::V6(ip), self.allow_loopback),
            Some(Host::Domain(_)) => Ok(()),
            None => Err("the URL has no host".into()),
        }
        .map_err(|e| format!("destination refused: {e}"))
    }
}

fn is_text(content_type: &str) -> bool {
    content_type.starts_with("text/")
        || content_type.starts_with("application/json")
        || content_type.starts_with("application/xhtml")
        || content_type.starts_with("application/xml")
}

async fn read_capped(mut response: reqwest::Response) -> Result<(Vec<u8>, bool), String> {
    let mut bytes = Vec::new();
    loop {
        match response.chunk().await {
            Ok(Some(chunk)) => {
                let room = PAGE_CAP - bytes.len();
                if chunk.len() > room {
                    bytes.extend_from_slice(&chunk[..room]);
                    return Ok((bytes, true));
                }
                bytes.extend_from_slice(&chunk);
            }
            Ok(None) => return Ok((bytes, false)),
            Err(e) => return Err(transport_error(e).message().to_owned()),
        }
    }
}
