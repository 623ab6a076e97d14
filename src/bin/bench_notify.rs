//! Notification benchmark: do webhooks slow agents down? Two organizations on one server: the
//! quiet one has no channels, the loud one sends every access request to Slack and Discord
//! stand-ins that take 200 ms per call. Rounds alternate: 1 000 access requests in a burst
//! from the quiet organization, then 1 000 from the loud one while the worker is delivering,
//! and so on. Reports request latency of both (same server, same run) and how long the
//! backlog took to drain, and checks that every notification arrived exactly once.
//! Usage: `agentkey-bench-notify [--rounds 3] [--connections 32]`.

use std::collections::HashSet;
use std::net::SocketAddr;
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use anyhow::{Context, bail};
use http_body_util::{BodyExt, Full};
use hyper::body::Bytes;
use hyper::{Request, header};
use hyper_util::rt::TokioIo;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};

use agentkey::config::Settings;
use app::model::{AlertEvent, ChannelKind};
use app::server::service::actor::AdminCtx;
use app::server::service::{agents, notifications, orgs, tools};

const BURST: usize = 1000;
const AGENTS: usize = 40;
const RECEIVER_DELAY: Duration = Duration::from_millis(200);

struct Server(Child);
impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// One organization's (agent key, tool id) pairs, one pair per request.
type Pairs = Vec<(String, String)>;

async fn seed_org(
    svc: &app::server::Services,
    name: &str,
    tools_n: usize,
    receiver: Option<u16>,
) -> anyhow::Result<Pairs> {
    let err = |e: app::server::ServiceError| anyhow::anyhow!("{e}");
    let org = orgs::create(svc, name, None).await.map_err(err)?;
    let ctx = AdminCtx::operator(&org.id);
    let mut tool_ids = Vec::new();
    for t in 0..tools_n {
        let input = tools::NewTool::shared(
            &format!("Tool {t:03}"),
            "benchmark tool",
            &format!("secret-{t}"),
        );

        tool_ids.push(tools::create(svc, &ctx, input).await.map_err(err)?.tool.id);
    }
    let mut pairs = Vec::new();
    for a in 0..AGENTS {
        let key = agents::create(svc, &ctx, &format!("agent-{a:02}"), "benchmark agent")
            .await
            .map_err(err)?
            .api_key;
        pairs.extend(tool_ids.iter().map(|t| (key.clone(), t.clone())));
    }
    if let Some(port) = receiver {
        for (kind, path) in [
            (ChannelKind::Slack, "/services/T/B/bench"),
            (ChannelKind::Discord, "/api/webhooks/1/bench"),
        ] {
            let url = secrecy::SecretString::from(format!("http://127.0.0.1:{port}{path}"));
            notifications::save_webhook(svc, &ctx, kind, url, &[AlertEvent::AccessRequested])
                .await
                .map_err(err)?;
        }
    }
    // Interleave agents so that one burst spreads over all of them.
    pairs.sort_by(|a, b| a.1.cmp(&b.1).then(a.0.cmp(&b.0)));
    Ok(pairs)
}

/// A slow webhook receiver: answers 200 after `RECEIVER_DELAY`, remembers idempotency keys.
struct Receiver {
    keys: Mutex<HashSet<String>>,
    calls: AtomicUsize,
}

async fn serve_receiver(listener: TcpListener, state: Arc<Receiver>) {
    while let Ok((mut socket, _)) = listener.accept().await {
        let state = state.clone();
        tokio::spawn(async move {
            let mut buf = Vec::new();
            let mut chunk = [0_u8; 8192];
            let (end, length) = loop {
                let Ok(n) = socket.read(&mut chunk).await else {
                    return;
                };
                if n == 0 {
                    return;
                }
                buf.extend_from_slice(&chunk[..n]);
                if let Some(pos) = buf.windows(4).position(|w| w == b"\r\n\r\n") {
                    let head = String::from_utf8_lossy(&buf[..pos]).to_ascii_lowercase();
                    let length = head
                        .lines()
                        .find_map(|l| l.strip_prefix("content-length:"))
                        .and_then(|v| v.trim().parse().ok())
                        .unwrap_or(0);
                    break (pos + 4, length);
                }
            };
            while buf.len() < end + length {
                match socket.read(&mut chunk).await {
                    Ok(n) if n > 0 => buf.extend_from_slice(&chunk[..n]),
                    _ => return,
                }
            }
            tokio::time::sleep(RECEIVER_DELAY).await;
            let head = String::from_utf8_lossy(&buf[..end]).into_owned();
            let key = head.lines().find_map(|l| {
                l.strip_prefix("Idempotency-Key:")
                    .or_else(|| l.strip_prefix("idempotency-key:"))
            });
            if socket
                .write_all(b"HTTP/1.1 200 OK\r\ncontent-length: 2\r\nconnection: close\r\n\r\nok")
                .await
                .is_ok()
            {
                state.calls.fetch_add(1, Ordering::SeqCst);
                if let Some(key) = key {
                    state
                        .keys
                        .lock()
                        .unwrap_or_else(std::sync::PoisonError::into_inner)
                        .insert(key.trim().to_owned());
                }
            }
        });
    }
}

/// Sends every pair's access request over `connections` keep-alive connections; returns the
/// sorted latencies in milliseconds.
async fn burst(
    addr: SocketAddr,
    pairs: &[(String, String)],
    connections: usize,
) -> anyhow::Result<Vec<f64>> {
    let pairs = Arc::new(pairs.to_vec());
    let next = Arc::new(AtomicUsize::new(0));
    let mut tasks = Vec::new();
    for _ in 0..connections {
        let (pairs, next) = (pairs.clone(), next.clone());
        tasks.push(tokio::spawn(async move {
            let stream = TcpStream::connect(addr).await?;
            stream.set_nodelay(true)?;
            let (mut sender, conn) =
                hyper::client::conn::http1::handshake(TokioIo::new(stream)).await?;
            tokio::spawn(conn);
            let mut lat = Vec::new();
            loop {
                let i = next.fetch_add(1, Ordering::SeqCst);
                let Some((key, tool)) = pairs.get(i) else {
                    break;
                };
                let req = Request::post(format!("/api/tools/{tool}/request"))
                    .header(header::HOST, addr.to_string())
                    .header(header::AUTHORIZATION, format!("Bearer {key}"))
                    .header(header::CONTENT_TYPE, "application/json")
                    .body(Full::new(Bytes::from_static(
                        br#"{"reason":"benchmark the request path"}"#,
                    )))?;
                let started = Instant::now();
                let res = sender.send_request(req).await?;
                let status = res.status().as_u16();
                res.into_body().collect().await?;
                if status != 201 {
                    bail!("access request answered {status}");
                }
                lat.push(started.elapsed().as_secs_f64() * 1000.0);
            }
            anyhow::Ok(lat)
        }));
    }
    let mut all = Vec::new();
    for t in tasks {
        all.extend(t.await??);
    }
    all.sort_by(f64::total_cmp);
    Ok(all)
}

fn pct(sorted: &[f64], p: f64) -> f64 {
    sorted[((sorted.len() as f64 * p) as usize).min(sorted.len() - 1)]
}

async fn pending(db: &std::path::Path) -> anyhow::Result<i64> {
    use sqlx::Connection;
    let mut conn = sqlx::SqliteConnection::connect(&format!("sqlite://{}", db.display())).await?;
    Ok(
        sqlx::query_scalar("SELECT COUNT(*) FROM notification_outbox WHERE status = 'pending'")
            .fetch_one(&mut conn)
            .await?,
    )
}

#[tokio::main(flavor = "current_thread")]
async fn main() -> anyhow::Result<()> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let (mut rounds, mut connections) = (3_usize, 32_usize);
    for pair in args.chunks(2) {
        let value: usize = pair.get(1).context("every option takes a value")?.parse()?;
        match pair[0].as_str() {
            "--rounds" => rounds = value,
            "--connections" => connections = value,
            other => bail!("unknown option {other}; use --rounds, --connections"),
        }
    }
    let tools_n = (rounds * BURST).div_ceil(AGENTS);
    let bin = std::env::current_exe()?.with_file_name("agentkey");
    let dir = std::env::temp_dir().join(format!("agentkey-bench-notify-{}", std::process::id()));
    std::fs::create_dir_all(&dir)?;
    let db = dir.join("bench.db");
    let port = std::net::TcpListener::bind("127.0.0.1:0")?
        .local_addr()?
        .port();
    let addr: SocketAddr = ([127, 0, 0, 1], port).into();
    let vars = [
        (
            "AGENTKEY_DATABASE_URL",
            format!("sqlite://{}", db.display()),
        ),
        ("AGENTKEY_BIND", addr.to_string()),
        ("AGENTKEY_LOG", "warn".to_owned()),
        ("AGENTKEY_TEST_LOOPBACK_WEBHOOKS", "1".to_owned()),
        (
            "AGENTKEY_RATE_LIMITS",
            "preauth=1000000000/s,request=1000000000/s".to_owned(),
        ),
    ];
    let receiver_listener = TcpListener::bind("127.0.0.1:0").await?;
    let receiver_port = receiver_listener.local_addr()?.port();
    let receiver = Arc::new(Receiver {
        keys: Mutex::default(),
        calls: AtomicUsize::new(0),
    });
    tokio::spawn(serve_receiver(receiver_listener, receiver.clone()));

    let settings = Settings::from_sources(None, |k| {
        vars.iter().find(|(n, _)| *n == k).map(|(_, v)| v.clone())
    })?;
    let svc = agentkey::startup::open(&settings).await?;
    let quiet = seed_org(&svc, "Quiet", tools_n, None).await?;
    let loud = seed_org(&svc, "Loud", tools_n, Some(receiver_port)).await?;
    svc.shutdown().await;
    svc.store.close().await;

    let _server = Server(
        Command::new(&bin)
            .arg("serve")
            .envs(vars.iter().map(|(k, v)| (*k, v)))
            .stdout(Stdio::null())
            .stderr(std::fs::File::create(dir.join("server.log"))?)
            .spawn()
            .with_context(|| {
                format!(
                    "failed to start {}: build it with `cargo build --release --bins`",
                    bin.display()
                )
            })?,
    );
    while TcpStream::connect(addr).await.is_err() {
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    println!(
        "{rounds} rounds of {BURST} access requests per organization, {connections} connections, receiver {} ms per call",
        RECEIVER_DELAY.as_millis()
    );
    println!(
        "{:<44} {:>8} {:>8} {:>8}",
        "burst", "p50 ms", "p99 ms", "max ms"
    );
    let (mut quiet_all, mut loud_all) = (Vec::new(), Vec::new());
    let mut drains = Vec::new();
    for r in 0..rounds {
        let slice = r * BURST..(r + 1) * BURST;
        let q = burst(addr, &quiet[slice.clone()], connections).await?;
        println!(
            "{:<44} {:>8.2} {:>8.2} {:>8.2}",
            format!("round {}: no webhooks", r + 1),
            pct(&q, 0.5),
            pct(&q, 0.99),
            pct(&q, 1.0)
        );
        let started = Instant::now();
        let l = burst(addr, &loud[slice], connections).await?;
        println!(
            "{:<44} {:>8.2} {:>8.2} {:>8.2}",
            format!("round {}: Slack + Discord at 200 ms/call", r + 1),
            pct(&l, 0.5),
            pct(&l, 0.99),
            pct(&l, 1.0)
        );
        // The next quiet round starts only after the backlog is gone, so it runs without it.
        while pending(&db).await? > 0 {
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        drains.push(started.elapsed().as_secs_f64());
        quiet_all.extend(q);
        loud_all.extend(l);
    }
    quiet_all.sort_by(f64::total_cmp);
    loud_all.sort_by(f64::total_cmp);
    let expected = rounds * BURST * 2;
    let unique = receiver
        .keys
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner)
        .len();
    let calls = receiver.calls.load(Ordering::SeqCst);
    println!();
    println!(
        "all rounds, no webhooks:    p50 {:.2} ms, p99 {:.2} ms",
        pct(&quiet_all, 0.5),
        pct(&quiet_all, 0.99)
    );
    println!(
        "all rounds, slow webhooks:  p50 {:.2} ms, p99 {:.2} ms",
        pct(&loud_all, 0.5),
        pct(&loud_all, 0.99)
    );
    let ratio = pct(&loud_all, 0.99) / pct(&quiet_all, 0.99);
    println!("p99 ratio slow-webhook/no-webhook: {ratio:.2} (target ≤ 1.20)");
    println!(
        "backlog drained {:.1} s after each burst began (mean), {:.0} deliveries/s",
        drains.iter().sum::<f64>() / drains.len() as f64,
        expected as f64 / drains.iter().sum::<f64>()
    );
    println!("delivered: {unique} distinct notifications of {expected} expected, {calls} calls");
    if unique != expected {
        bail!("lost notifications: {unique} of {expected}");
    }
    println!(
        "result: {}",
        if ratio <= 1.2 { "PASS" } else { "OVER TARGET" }
    );
    let _ = std::fs::remove_dir_all(&dir);
    Ok(())
}
