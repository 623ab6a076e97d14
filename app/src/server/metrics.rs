//! Operational metrics in the Prometheus text format: counters and histograms kept in atomics
//! by the code that does the work, gauges read when scraped. Nothing here carries a secret,
//! an agent's or a tool's name, or an organization: labels are route templates, methods,
//! statuses and pool names only, so a scrape reveals load, never who did what.

use std::collections::HashMap;
use std::fmt::Write;
use std::sync::Mutex;
use std::sync::atomic::{AtomicI64, AtomicU64, Ordering::Relaxed};
use std::time::Duration;

/// Bucket bounds of latency histograms, in seconds.
const LATENCY: &[f64] = &[
    0.000_25, 0.000_5, 0.001, 0.002_5, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0,
    10.0,
];
/// Bucket bounds of the audit batch size, in rows.
const ROWS: &[f64] = &[1.0, 2.0, 4.0, 8.0, 16.0, 32.0, 64.0, 128.0, 256.0, 512.0];

/// A histogram with fixed buckets. The sum is kept in millionths (microseconds for latency).
pub struct Histogram {
    bounds: &'static [f64],
    counts: Vec<AtomicU64>,
    sum_millionths: AtomicU64,
}

impl Histogram {
    fn new(bounds: &'static [f64]) -> Self {
        Histogram {
            bounds,
            counts: (0..=bounds.len()).map(|_| AtomicU64::new(0)).collect(),
            sum_millionths: AtomicU64::new(0),
        }
    }

    pub fn observe(&self, value: f64) {
        let slot = self
            .bounds
            .iter()
            .position(|b| value <= *b)
            .unwrap_or(self.bounds.len());
        self.counts[slot].fetch_add(1, Relaxed);
        self.sum_millionths
            .fetch_add((value.max(0.0) * 1e6) as u64, Relaxed);
    }

    pub fn observe_duration(&self, took: Duration) {
        self.observe(took.as_secs_f64());
    }

    fn render(&self, out: &mut String, name: &str, help: &str) {
        let _ = writeln!(out, "# HELP {name} {help}\n# TYPE {name} histogram");
        let mut total = 0;
        for (i, count) in self.counts.iter().enumerate() {
            total += count.load(Relaxed);
            let le = self
                .bounds
                .get(i)
                .map_or_else(|| "+Inf".to_owned(), |b| b.to_string());
            let _ = writeln!(out, "{name}_bucket{{le=\"{le}\"}} {total}");
        }
        let sum = self.sum_millionths.load(Relaxed) as f64 / 1e6;
        let _ = writeln!(out, "{name}_sum {sum}\n{name}_count {total}");
    }
}

/// Answered requests of one route: (method, status, count).
type RequestCount = (String, u16, u64);

/// Everything counted in this process.
pub struct Metrics {
    /// Requests by method, route template (never the raw path: ids would explode the label
    /// set) and status.
    requests: Mutex<HashMap<String, Vec<RequestCount>>>,
    /// A credential fetch, from the handler's start to its answer (audit commit included).
    pub fetch_seconds: Histogram,
    /// A proxied call, from the handler's start to the upstream's response headers.
    pub proxy_seconds: Histogram,
    /// Rows per audit group commit, and how long the commit took.
    pub audit_batch_rows: Histogram,
    pub audit_commit_seconds: Histogram,
    /// Dashboard event streams open now.
    pub live_streams: AtomicI64,
}

impl Default for Metrics {
    fn default() -> Self {
        Metrics {
            requests: Mutex::default(),
            fetch_seconds: Histogram::new(LATENCY),
            proxy_seconds: Histogram::new(LATENCY),
            audit_batch_rows: Histogram::new(ROWS),
            audit_commit_seconds: Histogram::new(LATENCY),
            live_streams: AtomicI64::new(0),
        }
    }
}

/// Counts one open dashboard event stream for as long as it lives.
pub struct OpenStream(std::sync::Arc<Metrics>);

impl OpenStream {
    pub fn new(metrics: &std::sync::Arc<Metrics>) -> Self {
        metrics.live_streams.fetch_add(1, Relaxed);
        OpenStream(metrics.clone())
    }
}

impl Drop for OpenStream {
    fn drop(&mut self) {
        self.0.live_streams.fetch_sub(1, Relaxed);
    }
}

/// Values read when scraped.
#[derive(Debug, Default)]
pub struct Gauges {
    pub outbox_pending: i64,
    pub outbox_dead: i64,
    /// (pool, open connections, idle connections)
    pub pools: Vec<(&'static str, u32, u32)>,
    pub audit_queue: usize,
}

impl Metrics {
    /// Counts one answered request.
    pub fn request(&self, method: &str, route: &str, status: u16) {
        let Ok(mut map) = self.requests.lock() else {
            return;
        };
        // No allocation once a route, method and status has been seen.
        let counts = match map.get_mut(route) {
            Some(counts) => counts,
            None => map.entry(route.to_owned()).or_default(),
        };
        match counts
            .iter_mut()
            .find(|(m, s, _)| m == method && *s == status)
        {
            Some((_, _, n)) => *n += 1,
            None => counts.push((method.to_owned(), status, 1)),
        }
    }

    /// The text exposition format (version 0.0.4).
    pub fn render(&self, gauges: &Gauges) -> String {
        let mut out = String::with_capacity(4096);
        out.push_str("# HELP agentkey_http_requests_total HTTP requests answered, by method, route and status.\n# TYPE agentkey_http_requests_total counter\n");
        let mut rows: Vec<(String, String, u16, u64)> = self
            .requests
            .lock()
            .map(|m| {
                m.iter()
                    .flat_map(|(route, counts)| {
                        counts
                            .iter()
                            .map(|(method, status, n)| (route.clone(), method.clone(), *status, *n))
                    })
                    .collect()
            })
            .unwrap_or_default();
        rows.sort();
        for (route, method, status, n) in rows {
            let _ = writeln!(
                out,
                "agentkey_http_requests_total{{method=\"{}\",route=\"{}\",status=\"{status}\"}} {n}",
                escape(&method),
                escape(&route_label(&route))
            );
        }
        self.fetch_seconds.render(
            &mut out,
            "agentkey_credential_fetch_seconds",
            "Credential fetches, from the request to the answer (the audit commit included).",
        );
        self.proxy_seconds.render(
            &mut out,
            "agentkey_proxy_call_seconds",
            "Proxied calls, from the request to the upstream's response headers.",
        );
        self.audit_batch_rows.render(
            &mut out,
            "agentkey_audit_batch_rows",
            "Audit rows per group commit.",
        );
        self.audit_commit_seconds.render(
            &mut out,
            "agentkey_audit_commit_seconds",
            "Time to commit one audit batch (guards, rows, fsync).",
        );
        gauge(
            &mut out,
            "agentkey_audit_queue_depth",
            "Audit entries waiting for the writer.",
            gauges.audit_queue as i64,
        );
        gauge(
            &mut out,
            "agentkey_outbox_pending",
            "Notifications waiting to be delivered (all organizations).",
            gauges.outbox_pending,
        );
        gauge(
            &mut out,
            "agentkey_outbox_dead_letters",
            "Notifications given up after their last attempt.",
            gauges.outbox_dead,
        );
        gauge(
            &mut out,
            "agentkey_live_streams",
            "Dashboard event streams open on this instance.",
            self.live_streams.load(Relaxed),
        );
        out.push_str("# HELP agentkey_db_connections Database connections of this instance, by pool and state.\n# TYPE agentkey_db_connections gauge\n");
        for (pool, open, idle) in &gauges.pools {
            let _ = writeln!(
                out,
                "agentkey_db_connections{{pool=\"{pool}\",state=\"in_use\"}} {}\nagentkey_db_connections{{pool=\"{pool}\",state=\"idle\"}} {idle}",
                open.saturating_sub(*idle)
            );
        }
        out
    }
}

/// Everything, with the gauges read now (two cheap counts on the outbox index).
pub async fn scrape(svc: &super::Services) -> super::store::StoreResult<String> {
    let (outbox_pending, outbox_dead) =
        super::store::outbox::count_backlog(svc.store.reader()).await?;
    let gauges = Gauges {
        outbox_pending,
        outbox_dead,
        pools: svc.store.pool_use(),
        audit_queue: svc.audit.queued(),
    };
    Ok(svc.metrics.render(&gauges))
}

fn gauge(out: &mut String, name: &str, help: &str, value: i64) {
    let _ = writeln!(
        out,
        "# HELP {name} {help}\n# TYPE {name} gauge\n{name} {value}"
    );
}

/// A route template as metrics name it: `/api/tools/:tool_id/credentials`, `/rpc/*fn_name`
/// (axum's braces are valid in a label value, but some text parsers stop at them).
fn route_label(template: &str) -> String {
    template
        .replace("{*", "*")
        .replace('{', ":")
        .replace('}', "")
}

/// A label value as the format requires: backslash, double quote and newline escaped.
fn escape(value: &str) -> String {
    value
        .replace('\\', "\\\\")
        .replace('"', "\\\"")
        .replace('\n', "\\n")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_histogram_counts_cumulatively_with_an_infinite_bucket() {
        let h = Histogram::new(ROWS);
        for v in [1.0, 3.0, 3.0, 600.0] {
            h.observe(v);
        }
        let mut out = String::new();
        h.render(&mut out, "x", "help");
        assert!(out.contains("x_bucket{le=\"1\"} 1\n"), "{out}");
        assert!(out.contains("x_bucket{le=\"4\"} 3\n"), "{out}");
        assert!(out.contains("x_bucket{le=\"512\"} 3\n"), "{out}");
        assert!(out.contains("x_bucket{le=\"+Inf\"} 4\n"), "{out}");
        assert!(out.contains("x_sum 607\nx_count 4\n"), "{out}");
    }

    #[test]
    fn route_templates_read_with_colons() {
        assert_eq!(
            route_label("/api/tools/{tool_id}/proxy/{*path}"),
            "/api/tools/:tool_id/proxy/*path"
        );
    }

    #[test]
    fn label_values_are_escaped() {
        assert_eq!(escape("a\"b\\c\nd"), "a\\\"b\\\\c\\nd");
    }
}
