//! What the load benchmarks share: the server process under test, the CLI, a keep-alive load
//! generator with latency figures.

pub mod session;

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use anyhow::{Context, bail};
use http_body_util::{BodyExt, Empty};
use hyper::body::Bytes;
use hyper::{Request, header};
use hyper_util::rt::TokioIo;
use tokio::net::TcpStream;

/// The server under test; killed on drop.
pub struct Server(pub Child);

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

pub fn cli(
    bin: &Path,
    env: &[(&str, String)],
    args: &[&str],
    stdin: Option<&str>,
) -> anyhow::Result<serde_json::Value> {
    use std::io::Write;
    let mut cmd = Command::new(bin);
    cmd.arg("--json")
        .args(args)
        .envs(env.iter().map(|(k, v)| (*k, v)))
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit());
    cmd.stdin(if stdin.is_some() {
        Stdio::piped()
    } else {
        Stdio::null()
    });
    let mut child = cmd.spawn().context("failed to run agentkey")?;
    if let (Some(text), Some(mut pipe)) = (stdin, child.stdin.take()) {
        pipe.write_all(text.as_bytes())?;
    }
    let out = child.wait_with_output()?;
    if !out.status.success() {
        bail!("agentkey {args:?} failed");
    }
    Ok(serde_json::from_slice(&out.stdout)?)
}

pub async fn get(addr: SocketAddr, path: &str, key: Option<&str>) -> anyhow::Result<(u16, Bytes)> {
    let stream = TcpStream::connect(addr).await?;
    let (mut sender, conn) = hyper::client::conn::http1::handshake(TokioIo::new(stream)).await?;
    tokio::spawn(conn);
    let res = sender.send_request(request(addr, path, key)?).await?;
    let status = res.status().as_u16();
    Ok((status, res.into_body().collect().await?.to_bytes()))
}

pub fn request(
    addr: SocketAddr,
    path: &str,
    key: Option<&str>,
) -> anyhow::Result<Request<Empty<Bytes>>> {
    let mut req = Request::get(path).header(header::HOST, addr.to_string());
    if let Some(key) = key {
        req = req.header(header::AUTHORIZATION, format!("Bearer {key}"));
    }
    Ok(req.body(Empty::new())?)
}

/// Latencies (µs) of successful calls and the count of failures, over `seconds`; connections
/// are spread round-robin over `addrs`.
pub async fn load(
    addrs: &[SocketAddr],
    path: &str,
    key: Option<&str>,
    connections: usize,
    seconds: u64,
) -> anyhow::Result<(Vec<u32>, usize)> {
    let deadline = Instant::now() + Duration::from_secs(seconds);
    let mut tasks = Vec::new();
    for i in 0..connections {
        let addr = addrs[i % addrs.len()];
        let path = path.to_owned();
        let key = key.map(str::to_owned);
        tasks.push(tokio::spawn(async move {
            let stream = TcpStream::connect(addr).await?;
            stream.set_nodelay(true)?;
            let (mut sender, conn) =
                hyper::client::conn::http1::handshake(TokioIo::new(stream)).await?;
            tokio::spawn(conn);
            let (mut lat, mut failed) = (Vec::with_capacity(100_000), 0_usize);
            while Instant::now() < deadline {
                let started = Instant::now();
                let res = sender
                    .send_request(request(addr, &path, key.as_deref())?)
                    .await?;
                let ok = res.status().is_success();
                res.into_body().collect().await?;
                if ok {
                    lat.push(u32::try_from(started.elapsed().as_micros()).unwrap_or(u32::MAX));
                } else {
                    failed += 1;
                }
            }
            anyhow::Ok((lat, failed))
        }));
    }
    let (mut all, mut failed) = (Vec::new(), 0);
    for t in tasks {
        let (lat, f) = t.await??;
        all.extend(lat);
        failed += f;
    }
    all.sort_unstable();
    Ok((all, failed))
}

pub struct Figures {
    pub rps: f64,
    pub p50_ms: f64,
    pub p99_ms: f64,
    pub ok: usize,
    pub failed: usize,
}

pub fn figures(lat: &[u32], failed: usize, seconds: u64) -> Figures {
    let pct = |p: f64| {
        lat.get(((lat.len() as f64 - 1.0) * p).round() as usize)
            .copied()
            .unwrap_or(0) as f64
            / 1000.0
    };
    Figures {
        rps: lat.len() as f64 / seconds as f64,
        p50_ms: pct(0.50),
        p99_ms: pct(0.99),
        ok: lat.len(),
        failed,
    }
}

pub fn server_binary() -> anyhow::Result<PathBuf> {
    let me = std::env::current_exe()?;
    let bin = me.with_file_name("agentkey");
    if !bin.exists() {
        bail!(
            "{} not found: build it with `cargo build --release --bins`",
            bin.display()
        );
    }
    Ok(bin)
}

pub fn tempfile_dir() -> anyhow::Result<PathBuf> {
    let dir = std::env::temp_dir().join(format!("agentkey-bench-{}", std::process::id()));
    std::fs::create_dir_all(&dir)?;
    Ok(dir)
}

/// Waits (at most 10 s) until the server at `addr` answers `/healthz`.
pub async fn wait_healthy(addr: SocketAddr) {
    for _ in 0..200 {
        if get(addr, "/healthz", None).await.is_ok() {
            return;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// The agent asks for `tool_id` over HTTP, and the operator approves it with the CLI.
pub async fn request_and_approve(
    bin: &Path,
    env: &[(&str, String)],
    addr: SocketAddr,
    tool_id: &str,
    key: &str,
) -> anyhow::Result<()> {
    let stream = TcpStream::connect(addr).await?;
    let (mut sender, conn) = hyper::client::conn::http1::handshake(TokioIo::new(stream)).await?;
    tokio::spawn(conn);
    let req = Request::post(format!("/api/tools/{tool_id}/request"))
        .header(header::HOST, addr.to_string())
        .header(header::AUTHORIZATION, format!("Bearer {key}"))
        .header(header::CONTENT_TYPE, "application/json")
        .body(http_body_util::Full::new(Bytes::from_static(
            br#"{"reason":"benchmark the hot path"}"#,
        )))?;
    let status = sender.send_request(req).await?.status().as_u16();
    if status != 201 {
        bail!("request for access failed with {status}");
    }
    let pending = cli(bin, env, &["request", "list", "--status", "pending"], None)?;
    let request_id = pending[0]["id"].as_str().context("request id")?.to_owned();
    cli(bin, env, &["request", "approve", &request_id], None)?;
    Ok(())
}
