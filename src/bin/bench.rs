//! Load benchmark: the credential fetch (`GET /api/tools/{id}/credentials`, audit row durably
//! committed) against a trivial JSON route (`/healthz`) of the same server build, both under
//! the same load in the same run, so the ratio is meaningful on a noisy machine.
//!
//! Starts `agentkey serve` (the binary next to this one) on a fresh SQLite file — or, with
//! `--postgres ADMIN_URL`, on a new PostgreSQL database created there and dropped afterwards,
//! with `--instances N` servers sharing it — seeds one agent with an approved shared tool
//! through the CLI, warms up, then drives each route with 64 keep-alive connections spread over
//! the instances for a fixed time. Prints each route's throughput and latency, and the CPU time
//! per request of the server and of the load generator with the machine's idle share (on
//! Linux), which tell whether a route is bound by the CPU or by waiting. Usage:
//! `agentkey-bench [--connections 64] [--seconds 10]
//! [--warmup 3] [--postgres postgres://postgres@127.0.0.1:5432/postgres] [--instances 1]`.

mod support;
// Only this benchmark reads the CPU counters, so it is not part of `support`.
#[path = "support/cpu.rs"]
mod cpu;

use std::net::SocketAddr;
use std::path::Path;
use std::process::{Command, Stdio};

use anyhow::{Context, bail};
use sqlx::Connection;

use support::{
    Server, cli, figures, get, load, request_and_approve, server_binary, tempfile_dir, wait_healthy,
};

struct Options {
    connections: usize,
    seconds: u64,
    warmup: u64,
    postgres: Option<String>,
    instances: usize,
}

fn options() -> anyhow::Result<Options> {
    let mut o = Options {
        connections: 64,
        seconds: 10,
        warmup: 3,
        postgres: None,
        instances: 1,
    };
    let args: Vec<String> = std::env::args().skip(1).collect();
    for pair in args.chunks(2) {
        let value = pair.get(1).context("every option takes a value")?;
        match pair[0].as_str() {
            "--connections" => o.connections = value.parse()?,
            "--seconds" => o.seconds = value.parse()?,
            "--warmup" => o.warmup = value.parse()?,
            "--postgres" => o.postgres = Some(value.clone()),
            "--instances" => o.instances = value.parse()?,
            other => bail!(
                "unknown option {other}; use --connections, --seconds, --warmup, --postgres, --instances"
            ),
        }
    }
    if o.instances == 0 || (o.instances > 1 && o.postgres.is_none()) {
        bail!("--instances above 1 needs --postgres (instances share one PostgreSQL database)");
    }
    Ok(o)
}

#[tokio::main(flavor = "current_thread")]
async fn main() -> anyhow::Result<()> {
    let o = options()?;
    let bin = server_binary()?;
    let dir = tempfile_dir()?;
    let (database_url, pg_name) = match &o.postgres {
        Some(admin) => {
            let name = format!("agentkey_bench_{}", std::process::id());
            let mut conn = sqlx::PgConnection::connect(admin)
                .await
                .context("cannot connect to --postgres")?;
            sqlx::query(&format!("CREATE DATABASE {name}"))
                .execute(&mut conn)
                .await?;
            // The admin URL names a database (…/postgres); the bench's sits beside it.
            let (server, _) = admin
                .rsplit_once('/')
                .context("--postgres must be postgres://user@host:port/database")?;
            (format!("{server}/{name}"), Some((admin.clone(), name)))
        }
        None => (format!("sqlite://{}", dir.join("bench.db").display()), None),
    };
    let result = run(&o, &bin, &dir, &database_url).await;
    if let Some((admin, name)) = pg_name {
        let mut conn = sqlx::PgConnection::connect(&admin).await?;
        sqlx::query(&format!("DROP DATABASE IF EXISTS {name} WITH (FORCE)"))
            .execute(&mut conn)
            .await?;
    }
    let _ = std::fs::remove_dir_all(&dir);
    result
}

async fn run(o: &Options, bin: &Path, dir: &Path, database_url: &str) -> anyhow::Result<()> {
    let addrs = (0..o.instances)
        .map(|_| {
            Ok(SocketAddr::from((
                [127, 0, 0, 1],
                std::net::TcpListener::bind("127.0.0.1:0")?
                    .local_addr()?
                    .port(),
            )))
        })
        .collect::<anyhow::Result<Vec<_>>>()?;
    let addr = addrs[0];
    let mut env = vec![
        ("AGENTKEY_DATABASE_URL", database_url.to_owned()),
        // The limiter still runs on every call; the limits are just out of reach.
        (
            "AGENTKEY_RATE_LIMITS",
            "preauth=1000000000/s,credential=1000000000/s,read=1000000000/s".to_owned(),
        ),
        (
            "AGENTKEY_LOG",
            std::env::var("BENCH_SERVER_LOG").unwrap_or_else(|_| "warn".to_owned()),
        ),
    ];
    if o.postgres.is_some() {
        use secrecy::ExposeSecret;
        let key = app::server::crypto::MasterKey::generate().to_base64();
        env.push(("AGENTKEY_MASTER_KEY", key.expose_secret().to_owned()));
    } else {
        env.push((
            "AGENTKEY_MASTER_KEY_FILE",
            dir.join("master.key").display().to_string(),
        ));
    }

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
    let tool = cli(
        bin,
        &env,
        &[
            "tool",
            "create",
            "--name",
            "Bench API",
            "--credential-stdin",
            "--instructions",
            "Bench guide.",
        ],
        Some("bench-secret-value"),
    )?;
    let tool_id = tool["tool"]["id"].as_str().context("tool id")?.to_owned();

    let mut servers = Vec::new();
    for a in &addrs {
        let bind = ("AGENTKEY_BIND", a.to_string());
        servers.push(Server(
            Command::new(bin)
                .arg("serve")
                .envs(env.iter().chain([&bind]).map(|(k, v)| (*k, v)))
                .stdout(Stdio::null())
                .spawn()?,
        ));
        wait_healthy(*a).await;
    }
    request_and_approve(bin, &env, addr, &tool_id, &key).await?;
    let cred_path = format!("/api/tools/{tool_id}/credentials");
    let (status, body) = get(addr, &cred_path, Some(&key)).await?;
    if status != 200 || !String::from_utf8_lossy(&body).contains("bench-secret-value") {
        bail!("credential fetch failed with {status}");
    }

    let backend = if o.postgres.is_some() {
        "PostgreSQL"
    } else {
        "SQLite"
    };
    println!(
        "{backend}, {} instance(s); warm-up {} s per route, then {} s per route with {} connections",
        o.instances, o.warmup, o.seconds, o.connections
    );
    load(&addrs, "/healthz", None, o.connections, o.warmup).await?;
    load(&addrs, &cred_path, Some(&key), o.connections, o.warmup).await?;
    let before = vended_rows(database_url).await?;
    let pids: Vec<u32> = servers.iter().map(|s| s.0.id()).collect();
    let start = cpu::mark(&pids);
    let (lat, failed) = load(&addrs, "/healthz", None, o.connections, o.seconds).await?;
    let trivial = figures(&lat, failed, o.seconds);
    let middle = cpu::mark(&pids);
    let (lat, failed) = load(&addrs, &cred_path, Some(&key), o.connections, o.seconds).await?;
    let cred = figures(&lat, failed, o.seconds);
    let end = cpu::mark(&pids);
    let cpu_use = [
        cpu::between(&start, &middle, trivial.ok),
        cpu::between(&middle, &end, cred.ok),
    ];
    let committed = vended_rows(database_url).await? - before;

    println!();
    println!(
        "{:<34} {:>10} {:>10} {:>9} {:>9} {:>7}",
        "route", "requests", "req/s", "p50 ms", "p99 ms", "errors"
    );
    for (name, f) in [
        ("GET /healthz (trivial JSON)", &trivial),
        ("GET /api/tools/{id}/credentials", &cred),
    ] {
        println!(
            "{name:<34} {:>10} {:>10.0} {:>9.2} {:>9.2} {:>7}",
            f.ok, f.rps, f.p50_ms, f.p99_ms, f.failed
        );
    }
    if let [Some(t), Some(c)] = &cpu_use {
        println!();
        println!(
            "{:<34} {:>14} {:>14} {:>9}",
            "CPU per request", "server µs", "generator µs", "idle"
        );
        for (name, u) in [("trivial", t), ("credential", c)] {
            println!(
                "{name:<34} {:>14.1} {:>14.1} {:>8.0}%",
                u.server_us,
                u.generator_us,
                u.idle * 100.0
            );
        }
        println!(
            "server CPU ratio credential/trivial: {:.2}",
            c.server_us / t.server_us.max(0.001)
        );
    }
    let throughput = cred.rps / trivial.rps;
    let p99 = cred.p99_ms / trivial.p99_ms.max(0.001);
    println!();
    // The targets: 0.5 on SQLite; 0.3 with one PostgreSQL instance.
    let target = if o.postgres.is_some() { 0.3 } else { 0.5 };
    println!("throughput ratio credential/trivial: {throughput:.2} (target ≥ {target:.2})");
    println!("p99 ratio credential/trivial:        {p99:.2} (target ≤ 2.00)");
    println!(
        "credential.vended rows committed during the run: {committed} (responses: {})",
        cred.ok
    );
    if committed < cred.ok as i64 {
        bail!("fewer audit rows than credentials vended");
    }
    let verdict = throughput >= target && p99 <= 2.0;
    println!("result: {}", if verdict { "PASS" } else { "BELOW TARGET" });
    drop(servers);
    Ok(())
}

async fn vended_rows(database_url: &str) -> anyhow::Result<i64> {
    sqlx::any::install_default_drivers();
    let mut conn = sqlx::AnyConnection::connect(database_url).await?;
    let n: i64 =
        sqlx::query_scalar("SELECT COUNT(*) FROM audit_log WHERE action = 'credential.vended'")
            .fetch_one(&mut conn)
            .await?;
    Ok(n)
}
