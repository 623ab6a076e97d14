//! Proxy benchmark: the same loopback upstream loaded directly and through AgentKey's proxy
//! (`GET /api/tools/{id}/proxy/v1/items`: grant check, budget claim, `proxy.called` audit row
//! committed before the call, credential injected, answer streamed through the redactor) in
//! the same run, so the ratio is meaningful on a noisy machine.
//!
//! Starts a small HTTP upstream on its own thread, then `agentkey serve` (the binary next to
//! this one) on a fresh SQLite file with the loopback-upstream test switch, seeds one agent
//! with an approved proxied tool through the CLI, warms up, and drives each target with 64
//! keep-alive connections for a fixed time. `--upstream-ms N` makes the upstream take N ms per
//! answer, as a real API does (0, the default, measures AgentKey's own cost against a server
//! that answers at once). Usage: `agentkey-bench-proxy [--connections 64] [--seconds 10]
//! [--warmup 3] [--upstream-ms 0]`.

mod support;

use std::convert::Infallible;
use std::net::SocketAddr;
use std::process::{Command, Stdio};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use anyhow::{Context, bail};
use http_body_util::Full;
use hyper::body::Bytes;
use hyper::{Request, Response, header};
use hyper_util::rt::TokioIo;
use sqlx::Connection;

use support::{
    Server, cli, figures, get, load, request_and_approve, server_binary, tempfile_dir, wait_healthy,
};

const SECRET: &str = "bench-upstream-secret";

struct Options {
    connections: usize,
    seconds: u64,
    warmup: u64,
    upstream_ms: u64,
}

fn options() -> anyhow::Result<Options> {
    let mut o = Options {
        connections: 64,
        seconds: 10,
        warmup: 3,
        upstream_ms: 0,
    };
    let args: Vec<String> = std::env::args().skip(1).collect();
    for pair in args.chunks(2) {
        let value = pair.get(1).context("every option takes a value")?;
        match pair[0].as_str() {
            "--connections" => o.connections = value.parse()?,
            "--seconds" => o.seconds = value.parse()?,
            "--warmup" => o.warmup = value.parse()?,
            "--upstream-ms" => o.upstream_ms = value.parse()?,
            other => bail!(
                "unknown option {other}; use --connections, --seconds, --warmup, --upstream-ms"
            ),
        }
    }
    Ok(o)
}

/// Calls the upstream answered, and how many of them carried the injected credential.
#[derive(Default)]
struct Counts {
    calls: AtomicU64,
    injected: AtomicU64,
}

/// The upstream: a small JSON answer on every path, keep-alive, on its own thread and runtime
/// (so it costs the same whether the load comes directly or through the proxy).
fn start_upstream(counts: Arc<Counts>, delay: Duration) -> anyhow::Result<SocketAddr> {
    let listener = std::net::TcpListener::bind("127.0.0.1:0")?;
    listener.set_nonblocking(true)?;
    let addr = listener.local_addr()?;
    std::thread::spawn(move || {
        let Ok(rt) = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
        else {
            return;
        };
        rt.block_on(async move {
            let Ok(listener) = tokio::net::TcpListener::from_std(listener) else {
                return;
            };
            while let Ok((stream, _)) = listener.accept().await {
                let _ = stream.set_nodelay(true);
                let counts = counts.clone();
                tokio::spawn(async move {
                    let service =
                        hyper::service::service_fn(move |req: Request<hyper::body::Incoming>| {
                            let counts = counts.clone();
                            async move {
                                if !delay.is_zero() {
                                    tokio::time::sleep(delay).await;
                                }
                                counts.calls.fetch_add(1, Ordering::Relaxed);
                                let injected =
                                    req.headers().get(header::AUTHORIZATION).is_some_and(|v| {
                                        v.as_bytes() == format!("Bearer {SECRET}").as_bytes()
                                    });
                                if injected {
                                    counts.injected.fetch_add(1, Ordering::Relaxed);
                                }
                                Ok::<_, Infallible>(
                                    Response::builder()
                                        .header(header::CONTENT_TYPE, "application/json")
                                        .body(Full::new(Bytes::from_static(
                                            br#"{"items":[{"id":1},{"id":2}]}"#,
                                        )))
                                        .unwrap_or_default(),
                                )
                            }
                        });
                    let _ = hyper::server::conn::http1::Builder::new()
                        .serve_connection(TokioIo::new(stream), service)
                        .await;
                });
            }
        });
    });
    Ok(addr)
}

#[tokio::main(flavor = "current_thread")]
async fn main() -> anyhow::Result<()> {
    let o = options()?;
    let bin = server_binary()?;
    let dir = tempfile_dir()?;
    let result = run(&o, &bin, &dir).await;
    let _ = std::fs::remove_dir_all(&dir);
    result
}

async fn run(o: &Options, bin: &std::path::Path, dir: &std::path::Path) -> anyhow::Result<()> {
    let counts = Arc::new(Counts::default());
    let upstream = start_upstream(counts.clone(), Duration::from_millis(o.upstream_ms))?;
    let addr = SocketAddr::from((
        [127, 0, 0, 1],
        std::net::TcpListener::bind("127.0.0.1:0")?
            .local_addr()?
            .port(),
    ));
    let database_url = format!("sqlite://{}", dir.join("bench.db").display());
    let env = vec![
        ("AGENTKEY_DATABASE_URL", database_url.clone()),
        ("AGENTKEY_BIND", addr.to_string()),
        (
            "AGENTKEY_MASTER_KEY_FILE",
            dir.join("master.key").display().to_string(),
        ),
        ("AGENTKEY_TEST_LOOPBACK_UPSTREAMS", "1".to_owned()),
        // The limiter still runs on every call; the limits are just out of reach.
        (
            "AGENTKEY_RATE_LIMITS",
            "preauth=1000000000/s,proxy=1000000000/s".to_owned(),
        ),
        (
            "AGENTKEY_LOG",
            std::env::var("BENCH_SERVER_LOG").unwrap_or_else(|_| "warn".to_owned()),
        ),
    ];
    cli(bin, &env, &["admin", "create-org", "--name", "Bench"], None)?;
    let key = cli(
        bin,
        &env,
        &["agent", "create", "--name", "bench-agent"],
        None,
    )?["api_key"]
        .as_str()
        .context("key")?
        .to_owned();
    let upstream_url = format!("http://{upstream}");
    let tool = cli(
        bin,
        &env,
        &[
            "tool",
            "create",
            "--name",
            "Bench Upstream",
            "--credential-stdin",
            "--delivery",
            "proxy",
            "--upstream",
            &upstream_url,
            "--allow",
            "GET /v1/**",
        ],
        Some(SECRET),
    )?;
    let tool_id = tool["tool"]["id"].as_str().context("tool id")?.to_owned();
    let _server = Server(
        Command::new(bin)
            .arg("serve")
            .envs(env.iter().map(|(k, v)| (*k, v)))
            .stdout(Stdio::null())
            .spawn()?,
    );
    wait_healthy(addr).await;
    request_and_approve(bin, &env, addr, &tool_id, &key).await?;
    let proxied = format!("/api/tools/{tool_id}/proxy/v1/items");
    let (status, body) = get(addr, &proxied, Some(&key)).await?;
    if status != 200 || !String::from_utf8_lossy(&body).contains("items") {
        bail!("proxied call failed with {status}");
    }
    if counts.injected.load(Ordering::Relaxed) != 1 {
        bail!("the upstream did not receive the injected credential");
    }

    println!(
        "SQLite; upstream answers after {} ms; warm-up {} s per target, then {} s per target with {} connections",
        o.upstream_ms, o.warmup, o.seconds, o.connections
    );
    load(&[upstream], "/v1/items", None, o.connections, o.warmup).await?;
    load(&[addr], &proxied, Some(&key), o.connections, o.warmup).await?;
    let (lat, failed) = load(&[upstream], "/v1/items", None, o.connections, o.seconds).await?;
    let direct = figures(&lat, failed, o.seconds);
    let before = (
        audited(&database_url).await?,
        counts.injected.load(Ordering::Relaxed),
    );
    let (lat, failed) = load(&[addr], &proxied, Some(&key), o.connections, o.seconds).await?;
    let through = figures(&lat, failed, o.seconds);
    let audited_calls = audited(&database_url).await? - before.0;
    let injected = counts.injected.load(Ordering::Relaxed) - before.1;

    println!();
    println!(
        "{:<40} {:>10} {:>10} {:>9} {:>9} {:>7}",
        "target", "requests", "req/s", "p50 ms", "p99 ms", "errors"
    );
    for (name, f) in [
        ("GET upstream /v1/items (direct)", &direct),
        ("GET /api/tools/{id}/proxy/v1/items", &through),
    ] {
        println!(
            "{name:<40} {:>10} {:>10.0} {:>9.2} {:>9.2} {:>7}",
            f.ok, f.rps, f.p50_ms, f.p99_ms, f.failed
        );
    }
    let throughput = through.rps / direct.rps;
    let p99 = through.p99_ms / direct.p99_ms.max(0.001);
    println!();
    println!("throughput ratio proxied/direct: {throughput:.2} (target ≥ 0.30)");
    println!("p99 ratio proxied/direct:        {p99:.2} (target ≤ 3.00)");
    println!(
        "proxy.called rows committed: {audited_calls}; calls with the injected credential: {injected} (responses: {})",
        through.ok
    );
    if audited_calls < injected as i64 || (injected as usize) < through.ok {
        bail!("a proxied call went out without its audit row, or without the credential");
    }
    let verdict = throughput >= 0.3 && p99 <= 3.0;
    println!("result: {}", if verdict { "PASS" } else { "BELOW TARGET" });
    Ok(())
}

/// `proxy.called` rows so far.
async fn audited(database_url: &str) -> anyhow::Result<i64> {
    sqlx::any::install_default_drivers();
    let mut conn = sqlx::AnyConnection::connect(database_url).await?;
    Ok(
        sqlx::query_scalar("SELECT COUNT(*) FROM audit_log WHERE action = 'proxy.called'")
            .fetch_one(&mut conn)
            .await?,
    )
}
