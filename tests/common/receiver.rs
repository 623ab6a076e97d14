//! A real HTTP server on loopback standing in for Slack and Discord: it records every request
//! (path, idempotency key, JSON body, the status it answered) and can be switched to answer
//! 500, to answer slowly, or to go away entirely (connection refused) and come back on the
//! same port. Every response closes its connection, so "down" really means down.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use serde_json::Value;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::task::AbortHandle;

/// How the receiver answers.
#[derive(Clone, Copy, Debug)]
pub enum Mode {
    Ok,
    Status(u16),
    Slow(Duration),
}

/// One request the receiver answered.
#[derive(Clone, Debug)]
pub struct Hit {
    pub path: String,
    pub key: Option<String>,
    pub body: Value,
    pub status: u16,
}

#[derive(Default)]
struct State {
    mode: Mutex<Option<Mode>>,
    hits: Mutex<Vec<Hit>>,
    connections: AtomicUsize,
    tasks: Mutex<Vec<AbortHandle>>,
}

pub struct Receiver {
    pub port: u16,
    state: Arc<State>,
}

impl Receiver {
    /// Starts on a free loopback port, answering 200.
    pub async fn start() -> Self {
        let listener = TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind receiver");
        let receiver = Receiver {
            port: listener.local_addr().expect("addr").port(),
            state: Arc::default(),
        };
        receiver.set_mode(Mode::Ok);
        receiver.serve(listener);
        receiver
    }

    fn serve(&self, listener: TcpListener) {
        let state = self.state.clone();
        let accept = tokio::spawn(async move {
            while let Ok((socket, _)) = listener.accept().await {
                state.connections.fetch_add(1, Ordering::SeqCst);
                let conn_state = state.clone();
                let task = tokio::spawn(async move { handle(socket, conn_state).await });
                state.tasks.lock().expect("lock").push(task.abort_handle());
            }
        });
        self.state
            .tasks
            .lock()
            .expect("lock")
            .push(accept.abort_handle());
    }

    /// Goes away: the port refuses connections and open exchanges are cut.
    pub fn stop(&self) {
        for task in self.state.tasks.lock().expect("lock").drain(..) {
            task.abort();
        }
    }

    /// Comes back on the same port.
    pub async fn restart(&self) {
        for _ in 0..50 {
            if let Ok(listener) = TcpListener::bind(("127.0.0.1", self.port)).await {
                self.serve(listener);
                return;
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        panic!("port {} could not be bound again", self.port);
    }

    pub fn set_mode(&self, mode: Mode) {
        *self.state.mode.lock().expect("lock") = Some(mode);
    }

    /// `http://127.0.0.1:port{path}`.
    pub fn url(&self, path: &str) -> String {
        format!("http://127.0.0.1:{}{path}", self.port)
    }

    pub fn hits(&self) -> Vec<Hit> {
        self.state.hits.lock().expect("lock").clone()
    }

    /// Requests answered with 2xx on `path`.
    pub fn delivered(&self, path: &str) -> Vec<Hit> {
        self.hits()
            .into_iter()
            .filter(|h| h.path == path && (200..300).contains(&h.status))
            .collect()
    }

    pub fn connections(&self) -> usize {
        self.state.connections.load(Ordering::SeqCst)
    }

    /// Waits until `path` has `n` successful deliveries (at most `secs` seconds).
    pub async fn wait_delivered(&self, path: &str, n: usize, secs: u64) -> Vec<Hit> {
        let deadline = tokio::time::Instant::now() + Duration::from_secs(secs);
        loop {
            let hits = self.delivered(path);
            if hits.len() >= n {
                return hits;
            }
            assert!(
                tokio::time::Instant::now() < deadline,
                "{path}: {} of {n} deliveries after {secs} s",
                hits.len()
            );
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }

    /// Like [`Receiver::wait_hits`], but reports a timeout instead of panicking.
    pub async fn wait_hits_within(&self, n: usize, secs: u64) -> Result<(), usize> {
        let deadline = tokio::time::Instant::now() + Duration::from_secs(secs);
        while self.hits().len() < n {
            if tokio::time::Instant::now() >= deadline {
                return Err(self.hits().len());
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        Ok(())
    }

    /// Waits until at least `n` requests of any outcome arrived.
    pub async fn wait_hits(&self, n: usize, secs: u64) {
        let deadline = tokio::time::Instant::now() + Duration::from_secs(secs);
        while self.hits().len() < n {
            assert!(
                tokio::time::Instant::now() < deadline,
                "{} of {n} requests after {secs} s",
                self.hits().len()
            );
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }
}

async fn handle(mut socket: TcpStream, state: Arc<State>) {
    let mut buf = Vec::new();
    let mut chunk = [0_u8; 4096];
    let header_end = loop {
        if let Some(pos) = buf.windows(4).position(|w| w == b"\r\n\r\n") {
            break pos + 4;
        }
        match socket.read(&mut chunk).await {
            Ok(0) | Err(_) => return,
            Ok(n) => buf.extend_from_slice(&chunk[..n]),
        }
    };
    let head = String::from_utf8_lossy(&buf[..header_end]).into_owned();
    let path = head.split_whitespace().nth(1).unwrap_or("").to_owned();
    let header = |name: &str| {
        head.lines().find_map(|l| {
            let (k, v) = l.split_once(':')?;
            k.trim()
                .eq_ignore_ascii_case(name)
                .then(|| v.trim().to_owned())
        })
    };
    let length: usize = header("content-length")
        .and_then(|v| v.parse().ok())
        .unwrap_or(0);
    while buf.len() < header_end + length {
        match socket.read(&mut chunk).await {
            Ok(0) | Err(_) => return,
            Ok(n) => buf.extend_from_slice(&chunk[..n]),
        }
    }
    let body = serde_json::from_slice(&buf[header_end..header_end + length]).unwrap_or(Value::Null);
    let mode = state.mode.lock().expect("lock").unwrap_or(Mode::Ok);
    let status = match mode {
        Mode::Ok => 200,
        Mode::Status(code) => code,
        Mode::Slow(delay) => {
            tokio::time::sleep(delay).await;
            200
        }
    };
    let text = if status < 300 {
        "ok"
    } else {
        "receiver says no"
    };
    let response = format!(
        "HTTP/1.1 {status} X\r\ncontent-length: {}\r\nconnection: close\r\n\r\n{text}",
        text.len()
    );
    if socket.write_all(response.as_bytes()).await.is_ok() {
        state.hits.lock().expect("lock").push(Hit {
            path,
            key: header("idempotency-key"),
            body,
            status,
        });
    }
    let _ = socket.shutdown().await;
}
