//! Fixed-window rate limits per agent and tier, plus one per client IP before authentication.
//!
//! Counters live in this process: with several instances each enforces its own window (the
//! effective limit is N × the configured one). Headers: `X-RateLimit-Limit`, `-Remaining`,
//! `-Reset` (epoch milliseconds, as the original API), `-Policy` (`10;w=3600`) and, on 429,
//! `Retry-After` in seconds.

use std::collections::HashMap;
use std::sync::Mutex;

use axum::http::HeaderValue;
use axum::response::{IntoResponseParts, ResponseParts};

use app::server::clock;

/// A rate-limited kind of call.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Tier {
    Preauth,
    Read,
    Credential,
    Request,
    Suggest,
    Instruction,
    Proxy,
}

impl Tier {
    const ALL: [Tier; 7] = [
        Tier::Preauth,
        Tier::Read,
        Tier::Credential,
        Tier::Request,
        Tier::Suggest,
        Tier::Instruction,
        Tier::Proxy,
    ];

    /// The tier's name in `AGENTKEY_RATE_LIMITS`.
    pub fn parse(text: &str) -> Option<Tier> {
        Tier::ALL.into_iter().find(|t| t.name() == text)
    }

    pub fn name(self) -> &'static str {
        match self {
            Tier::Preauth => "preauth",
            Tier::Read => "read",
            Tier::Credential => "credential",
            Tier::Request => "request",
            Tier::Suggest => "suggest",
            Tier::Instruction => "instruction",
            Tier::Proxy => "proxy",
        }
    }

    fn index(self) -> usize {
        self as usize
    }
}

/// `max` calls per `window_secs`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Limit {
    pub max: u32,
    pub window_secs: u64,
}

/// The configured limit of every tier.
#[derive(Clone, Copy, Debug)]
pub struct Limits([Limit; 7]);

impl Default for Limits {
    fn default() -> Self {
        let per_min = |max| Limit {
            max,
            window_secs: 60,
        };
        let per_hour = |max| Limit {
            max,
            window_secs: 3600,
        };
        Limits([
            per_min(600),
            per_min(120),
            per_min(60),
            per_hour(10),
            per_hour(10),
            per_hour(10),
            per_min(600),
        ])
    }
}

impl Limits {
    pub fn get(&self, tier: Tier) -> Limit {
        self.0[tier.index()]
    }

    pub fn set(&mut self, tier: Tier, limit: Limit) {
        self.0[tier.index()] = limit;
    }
}

/// The state of one window after a hit, for headers.
#[derive(Clone, Copy, Debug)]
pub struct RateInfo {
    pub limit: u32,
    pub remaining: u32,
    pub reset_ms: i64,
    pub window_secs: u64,
    pub now_ms: i64,
}

impl RateInfo {
    /// Whole seconds until the window resets (at least 1).
    pub fn retry_after_secs(&self) -> i64 {
        ((self.reset_ms - self.now_ms + 999) / 1000).max(1)
    }
}

impl IntoResponseParts for RateInfo {
    type Error = std::convert::Infallible;

    fn into_response_parts(self, mut res: ResponseParts) -> Result<ResponseParts, Self::Error> {
        let h = res.headers_mut();
        let num = |n: i64| HeaderValue::from(n);
        h.insert("x-ratelimit-limit", num(i64::from(self.limit)));
        h.insert("x-ratelimit-remaining", num(i64::from(self.remaining)));
        h.insert("x-ratelimit-reset", num(self.reset_ms));
        if let Ok(policy) = HeaderValue::from_str(&format!("{};w={}", self.limit, self.window_secs))
        {
            h.insert("x-ratelimit-policy", policy);
        }
        Ok(res)
    }
}

#[derive(Clone, Copy)]
struct Window {
    start_ms: i64,
    count: u32,
}

/// In-memory fixed windows.
pub struct RateLimiter {
    limits: Limits,
    windows: Mutex<HashMap<(Tier, String), Window>>,
}

const PRUNE_AT: usize = 100_000;

impl RateLimiter {
    pub fn new(limits: Limits) -> Self {
        RateLimiter {
            limits,
            windows: Mutex::new(HashMap::new()),
        }
    }

    /// Counts a hit for `subject` in `tier`; `Err` when over the limit.
    pub fn hit(&self, tier: Tier, subject: &str) -> Result<RateInfo, RateInfo> {
        let limit = self.limits.get(tier);
        let now = clock::now_ms();
        let window_ms = i64::try_from(limit.window_secs.saturating_mul(1000)).unwrap_or(i64::MAX);
        let mut windows = self
            .windows
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        if windows.len() > PRUNE_AT {
            windows.retain(|(t, _), w| {
                now - w.start_ms
                    < i64::try_from(self.limits.get(*t).window_secs * 1000).unwrap_or(i64::MAX)
            });
        }
        let w = windows.entry((tier, subject.to_owned())).or_insert(Window {
            start_ms: now,
            count: 0,
        });
        if now - w.start_ms >= window_ms {
            *w = Window {
                start_ms: now,
                count: 0,
            };
        }
        let allowed = w.count < limit.max;
        if allowed {
            w.count += 1;
        }
        let info = RateInfo {
            limit: limit.max,
            remaining: limit.max.saturating_sub(w.count),
            reset_ms: w.start_ms.saturating_add(window_ms),
            window_secs: limit.window_secs,
            now_ms: now,
        };
        if allowed { Ok(info) } else { Err(info) }
    }

    /// Gives back a hit counted by `hit` (the `info` it returned), if its window is still the
    /// current one: a call the service turned away without weighing it does not count.
    pub fn refund(&self, tier: Tier, subject: &str, info: RateInfo) {
        let mut windows = self
            .windows
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        if let Some(w) = windows.get_mut(&(tier, subject.to_owned()))
            && w.start_ms
                .saturating_add(i64::try_from(info.window_secs * 1000).unwrap_or(i64::MAX))
                == info.reset_ms
        {
            w.count = w.count.saturating_sub(1);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn window_allows_max_then_refuses_with_zero_remaining() {
        let mut limits = Limits::default();
        limits.set(
            Tier::Request,
            Limit {
                max: 2,
                window_secs: 3600,
            },
        );
        let rl = RateLimiter::new(limits);
        assert_eq!(
            rl.hit(Tier::Request, "a").map(|i| i.remaining).ok(),
            Some(1)
        );
        assert_eq!(
            rl.hit(Tier::Request, "a").map(|i| i.remaining).ok(),
            Some(0)
        );
        let refused = rl.hit(Tier::Request, "a").expect_err("over the limit");
        assert_eq!(refused.remaining, 0);
        assert!(refused.retry_after_secs() > 3500);
        assert!(
            rl.hit(Tier::Request, "b").is_ok(),
            "subjects are independent"
        );
        assert!(rl.hit(Tier::Suggest, "a").is_ok(), "tiers are independent");
    }

    #[test]
    fn a_refund_gives_back_one_hit_of_the_same_window_only() {
        let mut limits = Limits::default();
        limits.set(
            Tier::Request,
            Limit {
                max: 1,
                window_secs: 3600,
            },
        );
        let rl = RateLimiter::new(limits);
        let first = rl.hit(Tier::Request, "a").expect("first hit");
        assert!(rl.hit(Tier::Request, "a").is_err(), "the limit is spent");
        rl.refund(Tier::Request, "a", first);
        assert!(
            rl.hit(Tier::Request, "a").is_ok(),
            "the refund freed one hit"
        );
        assert!(rl.hit(Tier::Request, "a").is_err());
        let stale = RateInfo {
            reset_ms: first.reset_ms - 1,
            ..first
        };
        rl.refund(Tier::Request, "a", stale);
        assert!(
            rl.hit(Tier::Request, "a").is_err(),
            "a refund from another window gives nothing back"
        );
    }
}
