//! The release binary under clients that connect and stall: it runs with an open-file limit
//! lower than the number of stalled connections, keeps serving new clients, and closes the
//! stalled ones within its timeouts. Loopback only; every loop is bounded in count and time.

mod common;

use std::process::Stdio;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use std::io::BufRead;
use std::process::{Child, Command};

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

/// Open files the server may have: fewer than the stalled connections below.
const FILE_LIMIT: u32 = 64;
/// Stalled connections of each kind (three kinds).
const STALLED_PER_KIND: usize = 40;

struct Server {
    child: Child,
    addr: String,
    log: Arc<Mutex<Vec<String>>>,
    _dir: tempfile::TempDir,
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Starts `agentkey serve` under `ulimit -n FILE_LIMIT` with one-second timeouts.
async fn start_limited_server() -> Server {
    let dir = tempfile::tempdir().expect("tempdir");
    let mut child = Command::new("sh")
        .arg("-c")
        .arg(format!("ulimit -n {FILE_LIMIT} && exec \"$0\" serve"))
        .arg(env!("CARGO_BIN_EXE_agentkey"))
        .env(
            "AGENTKEY_DATABASE_URL",
            format!("sqlite://{}/agentkey.db", dir.path().display()),
        )
        .env("AGENTKEY_BIND", "127.0.0.1:0")
        .env("AGENTKEY_CONNECTIONS", "header=1s,idle=2s,body=1s")
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("start agentkey");
    let log = Arc::new(Mutex::new(Vec::new()));
    let (addr_tx, mut addr_rx) = tokio::sync::mpsc::channel::<String>(2);
    let streams: [Box<dyn std::io::Read + Send>; 2] = [
        Box::new(child.stdout.take().expect("stdout")),
        Box::new(child.stderr.take().expect("stderr")),
    ];
    for stream in streams {
        let (log, addr_tx) = (log.clone(), addr_tx.clone());
        std::thread::spawn(move || {
            for line in std::io::BufReader::new(stream)
                .lines()
                .map_while(Result::ok)
            {
                if let Some(rest) = line.split("listening on http://").nth(1) {
                    let addr = rest
                        .split_whitespace()
                        .next()
                        .unwrap_or_default()
                        .to_owned();
                    let _ = addr_tx.blocking_send(addr);
                }
                log.lock().expect("log").push(line);
            }
        });
    }
    let addr = tokio::time::timeout(Duration::from_secs(30), addr_rx.recv())
        .await
        .expect("the server starts within 30 s")
        .expect("listening line");
    Server {
        child,
        addr,
        log,
        _dir: dir,
    }
}

/// A connection that sends `opening` and then nothing more.
async fn stall(addr: &str, opening: &'static [u8]) -> TcpStream {
    let mut tcp = TcpStream::connect(addr).await.expect("connect");
    if !opening.is_empty() {
        tcp.write_all(opening).await.expect("write");
    }
    tcp
}

/// `GET /healthz` on a fresh connection: the status line.
async fn healthz(addr: &str) -> String {
    let mut tcp = TcpStream::connect(addr).await.expect("connect");
    tcp.write_all(b"GET /healthz HTTP/1.1\r\nHost: test\r\nConnection: close\r\n\r\n")
        .await
        .expect("write");
    let mut reply = Vec::new();
    tcp.read_to_end(&mut reply).await.expect("read");
    String::from_utf8_lossy(&reply)
        .lines()
        .next()
        .unwrap_or_default()
        .to_owned()
}

#[tokio::test]
async fn stalled_connections_beyond_the_file_limit_are_closed_and_new_clients_served() {
    let server = start_limited_server().await;
    let addr = server.addr.clone();
    assert_eq!(healthz(&addr).await, "HTTP/1.1 200 OK");

    let kinds: [&'static [u8]; 3] = [
        b"",
        b"GET /healthz HT",
        b"POST /api/tools/suggest HTTP/1.1\r\nHost: test\r\nContent-Type: application/json\r\nContent-Length: 500\r\n\r\n{\"na",
    ];
    let started = Instant::now();
    let mut stalled = Vec::new();
    for kind in kinds {
        for _ in 0..STALLED_PER_KIND {
            stalled.push(stall(&addr, kind).await);
        }
    }
    assert!(stalled.len() > FILE_LIMIT as usize);

    // A new client behind all of them is served, without waiting for the stalled ones to
    // give up by themselves.
    let status = tokio::time::timeout(Duration::from_secs(20), healthz(&addr))
        .await
        .expect("a new client is served while stalled connections are open");
    assert_eq!(status, "HTTP/1.1 200 OK");

    // Every stalled connection is closed by the server: end of stream or reset.
    let closed = futures_util::future::join_all(stalled.iter_mut().map(|tcp| async move {
        let mut buf = [0_u8; 1024];
        loop {
            match tcp.read(&mut buf).await {
                Ok(0) | Err(_) => return,
                // A refusal (408, 400…) may come first; the close follows.
                Ok(_) => continue,
            }
        }
    }));
    tokio::time::timeout(Duration::from_secs(20), closed)
        .await
        .expect("the server closes every stalled connection within its timeouts");
    let elapsed = started.elapsed();

    let log = server.log.lock().expect("log").join("\n");
    assert!(
        log.contains("connection cap reached"),
        "the cap is logged when reached:\n{log}"
    );
    assert!(
        !log.contains("Too many open files"),
        "the cap keeps the server below its file limit:\n{log}"
    );
    assert!(!log.contains("panicked"), "{log}");
    eprintln!(
        "{} stalled connections closed and a new client served in {elapsed:?}",
        kinds.len() * STALLED_PER_KIND
    );
}

/// A body promised by its headers but not sent whole: 408 in JSON once the body deadline
/// passes, nothing half-done, and the agent's next request is served.
#[tokio::test]
async fn a_request_body_that_stops_arriving_gets_a_408_after_the_body_timeout() {
    let app = common::spawn_app_with(&[("AGENTKEY_CONNECTIONS", "body=1s,header=5s")]).await;
    let (_agent, key) = app.create_agent("slow-sender").await;
    let mut tcp = TcpStream::connect(app.addr).await.expect("connect");
    let head = format!(
        "POST /api/tools/suggest HTTP/1.1\r\nHost: test\r\nAuthorization: Bearer {key}\r\nContent-Type: application/json\r\nContent-Length: 200\r\n\r\n{{\"name\": \"Lin"
    );
    tcp.write_all(head.as_bytes()).await.expect("write");
    let started = Instant::now();
    let mut reply = Vec::new();
    tokio::time::timeout(Duration::from_secs(10), tcp.read_to_end(&mut reply))
        .await
        .expect("answered and closed")
        .expect("read");
    let waited = started.elapsed();
    let reply = String::from_utf8_lossy(&reply);
    assert!(reply.starts_with("HTTP/1.1 408"), "{reply}");
    assert!(reply.contains("application/json"), "{reply}");
    assert!(reply.contains("did not arrive in time"), "{reply}");
    assert!(
        waited >= Duration::from_millis(900),
        "not before the deadline: {waited:?}"
    );
    assert_eq!(app.count("SELECT COUNT(*) FROM tool_suggestions").await, 0);
    let res = app.get("/api/tools", &key).await;
    assert_eq!(res.status(), 200);
}
