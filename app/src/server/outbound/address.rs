//! Which addresses the guarded client may reach: public ones only (loopback too when the test
//! switch is on), checked by the resolver the connector dials from.

use std::error::Error as StdError;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};

use reqwest::dns::{Addrs, Name, Resolve, Resolving};

/// A destination the guard refused.
#[derive(Debug)]
pub(super) struct Refused(pub(super) String);

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

pub(super) fn allowed(ip: IpAddr, allow_loopback: bool) -> bool {
    is_public(ip) || (allow_loopback && ip.is_loopback())
}

pub(super) fn check_all(
    host: &str,
    addrs: &[SocketAddr],
    allow_loopback: bool,
) -> Result<(), Refused> {
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
pub(super) struct GuardedResolver {
    pub(super) allow_loopback: bool,
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
    fn the_test_setting_admits_loopback_but_not_private_addresses() {
        assert!(allowed("127.0.0.1".parse().expect("ip"), true));
        assert!(!allowed("10.0.0.1".parse().expect("ip"), true));
        assert!(!allowed("127.0.0.1".parse().expect("ip"), false));
    }
}
