//! Dashboard benchmark: server-side render of the inbox with 10 000 pending requests, against
//! the status page (an SSR page with a few counts) of the same server in the same run.
//!
//! Seeds a fresh SQLite file through the service functions (100 agents × 100 tools, every pair
//! pending), starts `agentkey serve`, signs in through the real emailed-link flow (without SMTP
//! the link is in the server log), then renders each page sequentially on one keep-alive
//! connection. Usage: `agentkey-bench-dashboard [--rounds 200]`.

#[expect(
    dead_code,
    reason = "the pages only: the load generator of `support` is unused here"
)]
mod support;

use std::net::SocketAddr;
use std::process::{Command, Stdio};
use std::time::Instant;

use anyhow::{Context, bail};

use support::Server;
use support::session::{connect, send, sign_in};

use agentkey::config::Settings;
use app::model::RequestAccessBody;
use app::server::service::actor::{AdminCtx, RequestMeta};
use app::server::service::{agent_auth, agents, grants, orgs, tools};

const AGENTS: usize = 100;
const TOOLS: usize = 100;
const OWNER: &str = "bench@example.com";

async fn seed(settings: &Settings) -> anyhow::Result<()> {
    let svc = agentkey::startup::open(settings).await?;
    let org = orgs::create(&svc, "Bench", Some(OWNER))
        .await
        .map_err(|e| anyhow::anyhow!("{e}"))?;
    let ctx = AdminCtx::operator(&org.id);
    let mut tool_ids = Vec::new();
    for t in 0..TOOLS {
        let input = tools::NewTool {
            instructions: "Benchmark guide.".into(),
            ..tools::NewTool::shared(
                &format!("Tool {t:03}"),
                "benchmark tool",
                &format!("secret-{t}"),
            )
        };

        tool_ids.push(
            tools::create(&svc, &ctx, input)
                .await
                .map_err(|e| anyhow::anyhow!("{e}"))?
                .tool
                .id,
        );
    }
    for a in 0..AGENTS {
        let issued = agents::create(&svc, &ctx, &format!("agent-{a:03}"), "benchmark agent")
            .await
            .map_err(|e| anyhow::anyhow!("{e}"))?;
        let agent = agent_auth::authenticate(&svc, &issued.api_key, RequestMeta::default())
            .await
            .map_err(|e| anyhow::anyhow!("{e}"))?;
        for tool_id in &tool_ids {
            let body = RequestAccessBody {
                reason: format!("agent {a} needs this tool for the benchmark"),
                duration: None,
            };
            grants::request_access(&svc, &agent, tool_id, &body)
                .await
                .map_err(|e| anyhow::anyhow!("{e}"))?;
        }
    }
    svc.shutdown().await;
    svc.store.close().await;
    Ok(())
}

fn pct(sorted: &[f64], p: f64) -> f64 {
    sorted[((sorted.len() as f64 * p) as usize).min(sorted.len() - 1)]
}

#[tokio::main(flavor = "current_thread")]
async fn main() -> anyhow::Result<()> {
    let rounds: usize = match std::env::args().skip(1).collect::<Vec<_>>().as_slice() {
        [flag, n] if flag == "--rounds" => n.parse()?,
        [] => 200,
        _ => bail!("usage: agentkey-bench-dashboard [--rounds 200]"),
    };
    let bin = std::env::current_exe()?.with_file_name("agentkey");
    let dir = std::env::temp_dir().join(format!("agentkey-bench-dash-{}", std::process::id()));
    std::fs::create_dir_all(&dir)?;
    let port = std::net::TcpListener::bind("127.0.0.1:0")?
        .local_addr()?
        .port();
    let addr: SocketAddr = ([127, 0, 0, 1], port).into();
    let vars = [
        (
            "AGENTKEY_DATABASE_URL",
            format!("sqlite://{}", dir.join("bench.db").display()),
        ),
        ("AGENTKEY_BIND", addr.to_string()),
        ("AGENTKEY_LOG", "warn".to_owned()),
    ];
    let settings = Settings::from_sources(None, |k| {
        vars.iter().find(|(n, _)| *n == k).map(|(_, v)| v.clone())
    })?;
    let started = Instant::now();
    seed(&settings).await?;
    println!(
        "seeded {} pending requests in {:.1} s",
        AGENTS * TOOLS,
        started.elapsed().as_secs_f64()
    );

    let log = dir.join("server.log");
    let _server = Server(
        Command::new(&bin)
            .arg("serve")
            .envs(vars.iter().map(|(k, v)| (*k, v)))
            .stdout(Stdio::null())
            .stderr(std::fs::File::create(&log)?)
            .spawn()
            .with_context(|| format!("failed to start {}", bin.display()))?,
    );
    let mut s = connect(addr).await?;
    let cookie = sign_in(&mut s, addr, OWNER, &log).await?;

    println!(
        "{:<38} {:>8} {:>9} {:>9} {:>10}",
        "page (sequential, one connection)", "rounds", "p50 ms", "p99 ms", "bytes"
    );
    let mut results = Vec::new();
    for (name, method, path) in [
        ("GET /status (baseline SSR page)", "GET", "/status"),
        ("GET /inbox (10 000 pending, SSR)", "GET", "/inbox"),
        ("POST /rpc/inbox (server function)", "POST", "/rpc/inbox"),
    ] {
        let mut times = Vec::with_capacity(rounds);
        let mut bytes = 0;
        for i in 0..rounds + rounds / 10 {
            let t = Instant::now();
            let (status, _, body) = send(&mut s, addr, method, path, &cookie, "").await?;
            if status != 200
                || (path == "/inbox" && !String::from_utf8_lossy(&body).contains("agent-0"))
            {
                bail!("{path} answered {status}");
            }
            if i >= rounds / 10 {
                times.push(t.elapsed().as_secs_f64() * 1000.0);
            }
            bytes = body.len();
        }
        times.sort_by(f64::total_cmp);
        println!(
            "{name:<38} {rounds:>8} {:>9.2} {:>9.2} {bytes:>10}",
            pct(&times, 0.5),
            pct(&times, 0.99)
        );
        results.push(times);
    }
    let inbox_p50 = pct(&results[1], 0.5);
    println!();
    println!(
        "inbox render p50 / status page p50: {:.2}",
        inbox_p50 / pct(&results[0], 0.5)
    );
    println!(
        "inbox SSR p50 {inbox_p50:.2} ms (target ≤ 50 ms): {}",
        if inbox_p50 <= 50.0 {
            "PASS"
        } else {
            "OVER TARGET"
        }
    );
    let _ = std::fs::remove_dir_all(&dir);
    Ok(())
}
