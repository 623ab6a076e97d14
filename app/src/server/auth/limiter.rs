//! Sliding-window counters for sign-in attempts, per key (client address, mailbox). In memory,
//! per instance: several instances each allow the window, which the README states.

use std::collections::{HashMap, VecDeque};
use std::sync::Mutex;

use crate::server::clock;

/// At most `max` events per `window_ms`.
#[derive(Clone, Copy, Debug)]
pub struct Window {
    pub max: usize,
    pub window_ms: i64,
}

/// Counters for many keys. Old keys are dropped as the map is touched, so memory stays
/// proportional to recent traffic.
#[derive(Debug, Default)]
pub struct KeyedLimiter {
    hits: Mutex<HashMap<String, VecDeque<i64>>>,
}

const SWEEP_ABOVE: usize = 10_000;

impl KeyedLimiter {
    /// Records an attempt for `key`; false when the window is already full.
    pub fn allow(&self, key: &str, window: Window) -> bool {
        let now = clock::now_ms();
        let mut hits = self
            .hits
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        if hits.len() > SWEEP_ABOVE {
            hits.retain(|_, q| q.back().is_some_and(|t| now - t < window.window_ms));
        }
        let queue = hits.entry(key.to_owned()).or_default();
        while queue.front().is_some_and(|t| now - t >= window.window_ms) {
            queue.pop_front();
        }
        if queue.len() >= window.max {
            return false;
        }
        queue.push_back(now);
        true
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_full_window_refuses_and_other_keys_are_independent() {
        let limiter = KeyedLimiter::default();
        let w = Window {
            max: 2,
            window_ms: 60_000,
        };
        assert!(limiter.allow("a", w));
        assert!(limiter.allow("a", w));
        assert!(!limiter.allow("a", w));
        assert!(limiter.allow("b", w));
    }
}
