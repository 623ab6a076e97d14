//! The compact settings written `key=value,…`: rate limits, the notification retry schedule
//! and the connection limits.

use anyhow::bail;

use app::server::notify::Policy;
use app::server::outbound::ProxyLimits;

use crate::http::limits::{Limit, Limits, Tier};
use crate::http::serve::{Connections, MAX_CONNECTIONS};

/// Parses `read=120/m,credential=60/m,request=10/h` (units s, m, h) over the defaults.
pub(super) fn apply_limits(limits: &mut Limits, spec: &str) -> anyhow::Result<()> {
    each_setting(
        spec,
        "AGENTKEY_RATE_LIMITS",
        "use tier=N/unit, e.g. read=120/m (tiers: preauth, read, credential, request, suggest, instruction, proxy; units s, m, h)",
        |tier, rest| {
            let (max, unit) = rest.split_once('/')?;
            let tier = Tier::parse(tier)?;
            let max: u32 = max.trim().parse().ok()?;
            let window_secs = match unit.trim() {
                "s" => 1,
                "m" => 60,
                "h" => 3600,
                _ => return None,
            };
            limits.set(tier, Limit { max, window_secs });
            Some(())
        },
    )
}

/// Parses `base=2s,cap=30m,attempts=15,lease=60s` (units ms, s, m, h) over the defaults.
pub(super) fn apply_retry(policy: &mut Policy, spec: &str) -> anyhow::Result<()> {
    each_setting(
        spec,
        "AGENTKEY_NOTIFY_RETRY",
        "use e.g. base=2s,cap=30m,attempts=15,lease=60s (units ms, s, m, h)",
        |key, value| match key {
            "attempts" => value
                .parse()
                .ok()
                .filter(|n| *n >= 1)
                .map(|n| policy.max_attempts = n),
            key => {
                let duration = parse_duration(value)?;
                match key {
                    "base" => policy.base = duration,
                    "cap" => policy.cap = duration,
                    "lease" => policy.lease = duration,
                    _ => return None,
                }
                Some(())
            }
        },
    )?;
    if policy.cap < policy.base {
        bail!("AGENTKEY_NOTIFY_RETRY: cap must not be shorter than base");
    }
    if policy.lease < std::time::Duration::from_secs(1) {
        bail!(
            "AGENTKEY_NOTIFY_RETRY: lease must be at least 1s (longer than a send takes: webhooks time out after 5s, mail after 10s)"
        );
    }
    Ok(())
}

fn parse_duration(text: &str) -> Option<std::time::Duration> {
    let split = text.find(|c: char| !c.is_ascii_digit())?;
    let (n, unit) = text.split_at(split);
    let n: u64 = n.parse().ok()?;
    let ms = match unit {
        "ms" => n,
        "s" => n.checked_mul(1000)?,
        "m" => n.checked_mul(60_000)?,
        "h" => n.checked_mul(3_600_000)?,
        _ => return None,
    };
    Some(std::time::Duration::from_millis(ms))
}

/// Parses `max=1024,header=10s,idle=60s,body=30s` (units ms, s, m, h) over the defaults.
pub(super) fn apply_connections(conns: &mut Connections, spec: &str) -> anyhow::Result<()> {
    each_setting(
        spec,
        "AGENTKEY_CONNECTIONS",
        "use e.g. max=1024,header=10s,idle=60s,body=30s (max from 1 to 1048576; times above zero in ms, s, m, h)",
        |key, value| match key {
            "max" => value
                .parse()
                .ok()
                .filter(|n| (1..=MAX_CONNECTIONS).contains(n))
                .map(|n| conns.max = n),
            key => {
                let duration = parse_duration(value).filter(|d| !d.is_zero())?;
                match key {
                    "header" => conns.header_timeout = duration,
                    "idle" => conns.idle_timeout = duration,
                    "body" => conns.body_timeout = duration,
                    _ => return None,
                }
                Some(())
            }
        },
    )
}

/// Parses `connect=5s,total=30s,request_body=10MiB,response_body=50MiB` over the defaults
/// (times in ms, s, m, h; sizes in B, KiB, MiB, GiB).
pub(super) fn apply_proxy(limits: &mut ProxyLimits, spec: &str) -> anyhow::Result<()> {
    each_setting(
        spec,
        "AGENTKEY_PROXY",
        "use e.g. connect=5s,total=30s,request_body=10MiB,response_body=50MiB (times above zero in ms, s, m, h; sizes in B, KiB, MiB, GiB)",
        |key, value| {
            match key {
                "connect" | "total" => {
                    let d = parse_duration(value).filter(|d| !d.is_zero())?;
                    if key == "connect" {
                        limits.connect = d;
                    } else {
                        limits.total = d;
                    }
                }
                "request_body" | "response_body" => {
                    let n = parse_size(value).filter(|n| *n > 0)?;
                    if key == "request_body" {
                        limits.request_body = n;
                    } else {
                        limits.response_body = n;
                    }
                }
                _ => return None,
            }
            Some(())
        },
    )?;
    // Connecting is part of the whole call.
    limits.connect = limits.connect.min(limits.total);
    Ok(())
}

fn parse_size(text: &str) -> Option<u64> {
    let split = text
        .find(|c: char| !c.is_ascii_digit())
        .unwrap_or(text.len());
    let (n, unit) = text.split_at(split);
    let n: u64 = n.parse().ok()?;
    let factor = match unit.trim() {
        "" | "B" => 1,
        "KiB" => 1024,
        "MiB" => 1024 * 1024,
        "GiB" => 1024 * 1024 * 1024,
        _ => return None,
    };
    n.checked_mul(factor)
}

/// Applies each `key=value` of a comma-separated setting (both sides trimmed); a part that
/// `apply` cannot read fails with the variable's name and `usage`.
fn each_setting(
    spec: &str,
    variable: &str,
    usage: &str,
    mut apply: impl FnMut(&str, &str) -> Option<()>,
) -> anyhow::Result<()> {
    for part in spec.split(',').map(str::trim).filter(|p| !p.is_empty()) {
        let applied = part
            .split_once('=')
            .and_then(|(key, value)| apply(key.trim(), value.trim()));
        if applied.is_none() {
            bail!("{variable}: cannot read {part:?}; {usage}");
        }
    }
    Ok(())
}
