//! The audit export streams every matching row, a page at a time: a million rows arrive whole
//! and in order while the process's peak memory barely moves. Alone in its test binary, so
//! that the peak it reads is this export's.

mod common;

use common::rpc::{app_with_mail, sign_in};
use common::{TestApp, TestBackend};

const ROWS: i64 = 1_000_000;

/// Where the seeded rows' seqs start: far above the chain's own, so appends go on as usual
/// (they follow the chain head, not the highest seq).
const BASE: i64 = 1_000_000_000;

/// Seeds `ROWS` rows with seqs `BASE + 1 ..= BASE + ROWS`.
async fn seed(app: &TestApp) {
    let values = "'seed-' || i, '{org}', {base} + i, 1700000000000 + i, 'system', 'system', 'seed', \
                  'seed.row', '{\"n\": 1}', 'x', 'x'";
    let columns = "id, organization_id, seq, created_at, actor_type, actor_id, actor_label, action, \
                   metadata, prev_hash, hash";
    let source = match app.db.backend() {
        TestBackend::Sqlite => format!(
            "WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n WHERE i < {ROWS}) \
             INSERT INTO audit_log ({columns}) SELECT {values} FROM n"
        ),
        TestBackend::Postgres => format!(
            "INSERT INTO audit_log ({columns}) SELECT {values} FROM generate_series(1, {ROWS}) AS i"
        ),
    };
    app.exec(
        &source
            .replace("{org}", &app.org_id)
            .replace("{base}", &BASE.to_string()),
    )
    .await;
    if app.db.backend() == TestBackend::Postgres {
        // As autovacuum would after a bulk load: without statistics the planner sorts the
        // whole filtered set for every page instead of walking (organization, seq).
        app.exec("ANALYZE audit_log").await;
    }
}

/// The process's peak resident memory so far, in KiB (Linux).
fn peak_kib() -> u64 {
    let status = std::fs::read_to_string("/proc/self/status").expect("/proc/self/status");
    status
        .lines()
        .find_map(|l| l.strip_prefix("VmHWM:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
        .expect("VmHWM")
}

#[tokio::test]
async fn a_million_rows_export_whole_in_order_in_flat_memory() {
    let (app, sink) = app_with_mail().await;
    let cookie = sign_in(&app, &sink).await;
    seed(&app).await;
    let before = peak_kib();

    let mut res = app
        .get_signed_in("/audit/export?format=csv&action=seed.row", &cookie)
        .await;
    assert_eq!(res.status(), 200);
    // Read as it arrives, keeping only counts and the edges.
    let (mut lines, mut first, mut last, mut tail) = (0_i64, None, String::new(), String::new());
    while let Some(chunk) = res.chunk().await.expect("body") {
        tail.push_str(std::str::from_utf8(&chunk).expect("utf-8"));
        while let Some(end) = tail.find('\n') {
            let line: String = tail.drain(..=end).collect();
            lines += 1;
            if lines == 2 {
                first = Some(line.clone());
            }
            last = line;
        }
    }

    assert_eq!(lines, ROWS + 1, "the header and every row");
    let first = first.expect("rows");
    assert!(
        first.starts_with(&format!("\"{}\",", BASE + ROWS)),
        "newest first: {first}"
    );
    assert!(last.starts_with(&format!("\"{}\",", BASE + 1)), "{last}");
    let grew_mib = peak_kib().saturating_sub(before) / 1024;
    assert!(
        grew_mib < 64,
        "the export raised peak memory by {grew_mib} MiB"
    );
}
