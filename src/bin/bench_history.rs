//! History benchmark: the credential fetch and the dashboard's audit page, inbox and access
//! picture with a small audit log (1 000 rows) and with a long one (`--rows`, 10 million by
//! default), both measured in the same run against the same SQLite file, so the ratios say
//! whether anything grows with the log.
//!
//! Seeds an organization through the CLI (10 agents × 10 tools, one grant approved, the rest
//! pending for the inbox), appends audit rows through SQL with a valid hash chain (so the
//! server's chain checks and exports still hold) with the chain checkpoint a server's
//! maintenance pass would have left, and measures with the server restarted on each size:
//! pages one at a time on one connection, fetches with 64 keep-alive connections.
//! Usage: `agentkey-bench-history [--rows 10000000] [--seconds 5] [--rounds 30]`.

mod support;
// The long log's seeding, apart from the measuring.
#[path = "history/seed.rs"]
mod seed;

use std::net::SocketAddr;
use std::path::Path;
use std::process::{Command, Stdio};
use std::time::Instant;

use anyhow::{Context, bail};
use sqlx::{AnyConnection, Connection};

use seed::append_rows;
use support::session::{connect, send, sign_in};
use support::{
    Server, cli, figures, load, request_and_approve, server_binary, tempfile_dir, wait_healthy,
};

const OWNER: &str = "history@example.com";
const AGENTS: usize = 10;
const TOOLS: usize = 10;
const SMALL: i64 = 1_000;

struct Options {
    rows: i64,
    seconds: u64,
    rounds: usize,
}

fn options() -> anyhow::Result<Options> {
    let mut o = Options {
        rows: 10_000_000,
        seconds: 5,
        rounds: 30,
    };
    let args: Vec<String> = std::env::args().skip(1).collect();
    for pair in args.chunks(2) {
        let value = pair.get(1).context("every option takes a value")?;
        match pair[0].as_str() {
            "--rows" => o.rows = value.parse()?,
            "--seconds" => o.seconds = value.parse()?,
            "--rounds" => o.rounds = value.parse()?,
            other => bail!("unknown option {other}; use --rows, --seconds, --rounds"),
        }
    }
    if o.rows <= SMALL {
        bail!("--rows must be above {SMALL} (the small log it is compared with)");
    }
    Ok(o)
}

/// What one size of the log measured.
struct Sample {
    pages: Vec<(&'static str, f64)>,
    fetch: support::Figures,
}

const PAGES: [(&str, &str); 3] = [
    ("GET /audit", "/audit"),
    ("GET /inbox", "/inbox"),
    ("GET /access", "/access"),
];

#[tokio::main(flavor = "current_thread")]
async fn main() -> anyhow::Result<()> {
    let o = options()?;
    sqlx::any::install_default_drivers();
    let bin = server_binary()?;
    let dir = tempfile_dir()?;
    let result = run(&o, &bin, &dir).await;
    if std::env::var_os("BENCH_KEEP").is_some() {
        println!("kept {}", dir.display());
    } else {
        let _ = std::fs::remove_dir_all(&dir);
    }
    result
}

async fn run(o: &Options, bin: &Path, dir: &Path) -> anyhow::Result<()> {
    let port = std::net::TcpListener::bind("127.0.0.1:0")?
        .local_addr()?
        .port();
    let addr = SocketAddr::from(([127, 0, 0, 1], port));
    let database_url = format!("sqlite://{}", dir.join("history.db").display());
    let env = vec![
        ("AGENTKEY_DATABASE_URL", database_url.clone()),
        (
            "AGENTKEY_MASTER_KEY_FILE",
            dir.join("master.key").display().to_string(),
        ),
        (
            "AGENTKEY_RATE_LIMITS",
            "preauth=1000000000/s,credential=1000000000/s,read=1000000000/s".to_owned(),
        ),
        ("AGENTKEY_BIND", addr.to_string()),
        ("AGENTKEY_LOG", "warn".to_owned()),
        ("AGENTKEY_BASE_URL", format!("http://{addr}")),
    ];
    cli(
        bin,
        &env,
        &[
            "admin",
            "create-org",
            "--name",
            "History",
            "--owner-email",
            OWNER,
        ],
        None,
    )?;
    let (key, tool_id, pending) = {
        let _server = start(bin, &env, dir, addr).await?;
        seed_catalog(bin, &env, addr).await?
    };
    let mut db = AnyConnection::connect(&database_url).await?;
    let rows = append_rows(&mut db, SMALL).await?;
    println!("{pending} pending requests, one approved grant; audit log at {rows} rows");
    let small = sample(o, bin, &env, dir, addr, &key, &tool_id).await?;

    let started = Instant::now();
    let rows = append_rows(&mut db, o.rows).await?;
    println!(
        "appended through SQL up to {rows} rows in {:.0} s",
        started.elapsed().as_secs_f64()
    );
    db.close().await?;
    std::fs::File::open(dir.join("history.db"))?.sync_all()?;
    let large = sample(o, bin, &env, dir, addr, &key, &tool_id).await?;

    println!();
    println!(
        "{:<30} {:>12} {:>14} {:>7} {:>8}",
        "p50 (ms)",
        format!("{SMALL} rows"),
        format!("{rows} rows"),
        "ratio",
        "target"
    );
    let mut pass = true;
    let mut line = |name: &str, a: f64, b: f64, target: f64| {
        let ratio = b / a.max(0.001);
        pass &= ratio <= target;
        println!(
            "{name:<30} {a:>12.2} {b:>14.2} {ratio:>7.2} {:>8}",
            format!("≤ {target}")
        );
    };
    line(
        "credential fetch (64 conns)",
        small.fetch.p50_ms,
        large.fetch.p50_ms,
        1.2,
    );
    for ((name, a), (_, b)) in small.pages.iter().zip(&large.pages) {
        line(name, *a, *b, 1.5);
    }
    for (size, f) in [(SMALL, &small.fetch), (rows, &large.fetch)] {
        println!(
            "fetches with {size} rows: {} in {} s ({:.0} req/s), p99 {:.2} ms, {} failed",
            f.ok, o.seconds, f.rps, f.p99_ms, f.failed
        );
    }
    println!("result: {}", if pass { "PASS" } else { "ABOVE TARGET" });
    Ok(())
}

/// Starts the server, its log in `dir/server.log`, and waits until it answers.
async fn start(
    bin: &Path,
    env: &[(&str, String)],
    dir: &Path,
    addr: SocketAddr,
) -> anyhow::Result<Server> {
    let server = Server(
        Command::new(bin)
            .arg("serve")
            .envs(env.iter().map(|(k, v)| (*k, v)))
            .stdout(Stdio::null())
            .stderr(std::fs::File::create(dir.join("server.log"))?)
            .spawn()
            .with_context(|| format!("failed to start {}", bin.display()))?,
    );
    wait_healthy(addr).await;
    Ok(server)
}

/// Agents and tools through the CLI, every agent asking for every tool over HTTP; the first
/// agent's first request approved. Returns (that agent's key, that tool's id, pending count).
async fn seed_catalog(
    bin: &Path,
    env: &[(&str, String)],
    addr: SocketAddr,
) -> anyhow::Result<(String, String, usize)> {
    let mut tools = Vec::new();
    for t in 0..TOOLS {
        let name = format!("Tool {t:02}");
        let args = [
            "tool",
            "create",
            "--name",
            &name,
            "--credential-stdin",
            "--instructions",
            "History guide.",
        ];
        let tool = cli(bin, env, &args, Some(&format!("secret-{t}")))?;
        tools.push(tool["tool"]["id"].as_str().context("tool id")?.to_owned());
    }
    let mut s = connect(addr).await?;
    let mut first_key = None;
    let mut pending = 0;
    for a in 0..AGENTS {
        let name = format!("agent-{a:02}");
        let issued = cli(bin, env, &["agent", "create", "--name", &name], None)?;
        let key = issued["api_key"].as_str().context("key")?.to_owned();
        if a == 0 {
            request_and_approve(bin, env, addr, &tools[0], &key).await?;
            first_key = Some(key.clone());
        }
        for tool in tools.iter().skip(usize::from(a == 0)) {
            let status = request_access(&mut s, addr, tool, &key).await?;
            if status != 201 {
                bail!("request for access failed with {status}");
            }
            pending += 1;
        }
    }
    Ok((first_key.context("no agent")?, tools[0].clone(), pending))
}

async fn request_access(
    s: &mut support::session::Sender,
    addr: SocketAddr,
    tool: &str,
    key: &str,
) -> anyhow::Result<u16> {
    use http_body_util::Full;
    use hyper::body::Bytes;
    let req = hyper::Request::post(format!("/api/tools/{tool}/request"))
        .header(hyper::header::HOST, addr.to_string())
        .header(hyper::header::AUTHORIZATION, format!("Bearer {key}"))
        .header(hyper::header::CONTENT_TYPE, "application/json")
        .body(Full::new(Bytes::from_static(
            br#"{"reason":"needs it to test the long history"}"#,
        )))?;
    Ok(s.send_request(req).await?.status().as_u16())
}

/// Starts the server, signs in, loads each page `rounds` times and drives fetches.
async fn sample(
    o: &Options,
    bin: &Path,
    env: &[(&str, String)],
    dir: &Path,
    addr: SocketAddr,
    key: &str,
    tool_id: &str,
) -> anyhow::Result<Sample> {
    let _server = start(bin, env, dir, addr).await?;
    let mut s = connect(addr).await?;
    let cookie = sign_in(&mut s, addr, OWNER, &dir.join("server.log")).await?;
    let mut pages = Vec::new();
    for (name, path) in PAGES {
        let mut times = Vec::with_capacity(o.rounds);
        // The first load warms the caches; it is not counted.
        for round in 0..=o.rounds {
            let t = Instant::now();
            let (status, _, _) = send(&mut s, addr, "GET", path, &cookie, "").await?;
            if status != 200 {
                bail!("{path} answered {status}");
            }
            if round > 0 {
                times.push(t.elapsed().as_secs_f64() * 1000.0);
            }
        }
        times.sort_by(f64::total_cmp);
        pages.push((name, times[times.len() / 2]));
    }
    let cred_path = format!("/api/tools/{tool_id}/credentials");
    let addrs = [addr];
    load(&addrs, &cred_path, Some(key), 64, 1).await?;
    let (lat, failed) = load(&addrs, &cred_path, Some(key), 64, o.seconds).await?;
    if failed > 0 || lat.is_empty() {
        bail!("{failed} fetches failed");
    }
    Ok(Sample {
        pages,
        fetch: figures(&lat, failed, o.seconds),
    })
}
