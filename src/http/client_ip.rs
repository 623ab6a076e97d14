//! The client's IP: the socket peer, or — behind `trusted_proxies` reverse proxies — the
//! `X-Forwarded-For` entry that many places from the right (never the forgeable leftmost).

use std::net::{IpAddr, SocketAddr};

use axum::http::HeaderMap;

/// Resolves the client IP as text.
pub fn resolve(headers: &HeaderMap, peer: SocketAddr, trusted_proxies: usize) -> String {
    if trusted_proxies > 0 {
        let entries: Vec<&str> = headers
            .get_all("x-forwarded-for")
            .iter()
            .filter_map(|v| v.to_str().ok())
            .flat_map(|v| v.split(','))
            .map(str::trim)
            .filter(|e| !e.is_empty())
            .collect();
        if entries.len() >= trusted_proxies
            && let Ok(ip) = entries[entries.len() - trusted_proxies].parse::<IpAddr>()
        {
            return ip.to_string();
        }
    }
    peer.ip().to_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn headers(xff: &str) -> HeaderMap {
        let mut h = HeaderMap::new();
        h.insert("x-forwarded-for", xff.parse().expect("header"));
        h
    }

    #[test]
    fn without_trusted_proxies_the_peer_wins() {
        let peer: SocketAddr = "10.0.0.9:5000".parse().expect("addr");
        assert_eq!(resolve(&headers("1.2.3.4"), peer, 0), "10.0.0.9");
    }

    #[test]
    fn forged_left_entries_do_not_change_the_result() {
        let peer: SocketAddr = "10.0.0.9:5000".parse().expect("addr");
        assert_eq!(
            resolve(&headers("6.6.6.6, 203.0.113.7"), peer, 1),
            "203.0.113.7"
        );
        assert_eq!(
            resolve(&headers("9.9.9.9, 6.6.6.6, 203.0.113.7"), peer, 1),
            "203.0.113.7"
        );
        assert_eq!(
            resolve(&headers("203.0.113.7, 10.0.0.2"), peer, 2),
            "203.0.113.7"
        );
    }
}
