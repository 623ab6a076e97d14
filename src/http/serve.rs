//! The accept loop: HTTP/1.1 connections with a header-read timeout (which also ends idle
//! keep-alive connections), an inactivity timeout, a deadline for request bodies and a cap on
//! open connections, so that clients that connect and stall cannot exhaust the server.

use std::future::Future;
use std::io;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll, ready};
use std::time::Duration;

use axum::Router;
use axum::body::{Body, Bytes};
use axum::extract::ConnectInfo;
use axum::http::Request;
use hyper::body::{Body as _, Frame, Incoming, SizeHint};
use hyper_util::rt::{TokioIo, TokioTimer};
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::net::TcpListener;
use tokio::sync::{Semaphore, watch};
use tokio::time::{Instant, Sleep, sleep_until};
use tower::ServiceExt;

/// How long a shutdown waits for open connections to finish their responses.
const SHUTDOWN_DRAIN: Duration = Duration::from_secs(20);

/// The largest accepted connection cap.
pub const MAX_CONNECTIONS: usize = 1 << 20;

/// How many connections are served at once and how long each may keep the server waiting.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Connections {
    /// Open connections at most; further clients wait in the listen queue until one closes.
    pub max: usize,
    /// From the moment the server waits for a request (a new connection, or the previous
    /// response sent) to the end of its headers. Idle keep-alive connections close after it.
    pub header_timeout: Duration,
    /// A connection the server cannot write to for this long, with nothing read or written
    /// meanwhile, is closed (a client that stops reading its response).
    pub idle_timeout: Duration,
    /// A request body must have arrived whole within this, counted from its headers.
    pub body_timeout: Duration,
}

impl Default for Connections {
    fn default() -> Self {
        Connections {
            max: 1024,
            header_timeout: Duration::from_secs(10),
            idle_timeout: Duration::from_secs(60),
            body_timeout: Duration::from_secs(30),
        }
    }
}

impl Connections {
    /// The cap this process can keep: below its open-file limit, with room for the database,
    /// the listener, logs and outgoing calls. Logs when it lowers the configured cap.
    pub fn fitted_to(mut self, open_files: Option<u64>) -> Self {
        let Some(limit) = open_files else {
            return self;
        };
        let reserve = (limit / 4).max(32);
        let room = usize::try_from(limit.saturating_sub(reserve))
            .unwrap_or(usize::MAX)
            .max(1);
        if self.max > room {
            tracing::warn!(
                configured = self.max,
                serving = room,
                open_file_limit = limit,
                "the open-file limit is too low for the connection cap: serving fewer connections at once (raise LimitNOFILE / ulimit -n)"
            );
            self.max = room;
        }
        self
    }
}

/// Raises this process's soft open-file limit to its hard limit and returns the soft limit
/// now in force (`None` where it cannot be read).
pub fn raise_open_file_limit() -> Option<u64> {
    use rustix::process::{Resource, getrlimit, setrlimit};
    let mut limit = getrlimit(Resource::Nofile);
    // `None` is unlimited: a soft limit that is already unlimited needs nothing, and an
    // unlimited hard limit cannot be copied into the soft one on every system.
    if let (Some(current), Some(maximum)) = (limit.current, limit.maximum)
        && current < maximum
    {
        let raised = rustix::process::Rlimit {
            current: limit.maximum,
            maximum: limit.maximum,
        };
        if setrlimit(Resource::Nofile, raised).is_ok() {
            limit = getrlimit(Resource::Nofile);
        }
    }
    limit.current
}

/// Serves `router` on `listener` until `shutdown` resolves, then lets open requests finish and
/// waits for every connection to close.
pub async fn serve(
    listener: TcpListener,
    router: Router,
    conns: Connections,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> io::Result<()> {
    let slots = Arc::new(Semaphore::new(conns.max));
    let (stop_tx, stop_rx) = watch::channel(false);
    let mut shutdown = std::pin::pin!(shutdown);
    let mut at_cap = false;
    let mut last_accept_error: Option<Instant> = None;
    loop {
        let slot = match slots.clone().try_acquire_owned() {
            Ok(slot) => {
                at_cap = false;
                slot
            }
            Err(_) => {
                if !at_cap {
                    at_cap = true;
                    tracing::warn!(
                        open = conns.max,
                        "connection cap reached: new connections wait until one closes (AGENTKEY_CONNECTIONS max=…)"
                    );
                }
                tokio::select! {
                    slot = slots.clone().acquire_owned() => match slot {
                        Ok(slot) => slot,
                        Err(_) => break,
                    },
                    () = &mut shutdown => break,
                }
            }
        };
        let (tcp, remote) = tokio::select! {
            accepted = listener.accept() => match accepted {
                Ok(pair) => pair,
                Err(err) => {
                    // Out of file descriptors or a connection reset before accept: keep
                    // serving the open connections, retry shortly, log at most once a second.
                    let now = Instant::now();
                    if last_accept_error.is_none_or(|t| now - t >= Duration::from_secs(1)) {
                        last_accept_error = Some(now);
                        tracing::error!(error = %err, open = conns.max - slots.available_permits() - 1, "accepting a connection failed");
                    }
                    drop(slot);
                    tokio::time::sleep(Duration::from_millis(50)).await;
                    continue;
                }
            },
            () = &mut shutdown => break,
        };
        // Streamed pages go out in several small writes: without TCP_NODELAY each one after
        // the first waits for the peer's delayed ACK (40 ms on Linux).
        if let Err(err) = tcp.set_nodelay(true) {
            tracing::debug!(error = %err, "could not set TCP_NODELAY");
        }
        let router = router.clone();
        let mut stop = stop_rx.clone();
        tokio::spawn(async move {
            let _slot = slot;
            let service = hyper::service::service_fn(move |mut req: Request<Incoming>| {
                req.extensions_mut().insert(ConnectInfo(remote));
                let router = router.clone();
                async move { router.oneshot(req.map(Body::new)).await }
            });
            let mut http = hyper::server::conn::http1::Builder::new();
            http.timer(TokioTimer::new())
                .header_read_timeout(conns.header_timeout)
                .keep_alive(true);
            let io = TokioIo::new(IdleIo::new(tcp, conns.idle_timeout));
            let conn = http.serve_connection(io, service);
            let mut conn = std::pin::pin!(conn);
            let result = tokio::select! {
                result = conn.as_mut() => result,
                () = async {
                    let _ = stop.wait_for(|stopping| *stopping).await;
                } => {
                    conn.as_mut().graceful_shutdown();
                    conn.await
                }
            };
            if let Err(err) = result {
                // Timeouts, resets and malformed requests end here: the client's doing.
                tracing::debug!(error = %err, %remote, "connection closed");
            }
        });
    }
    drop(listener);
    let _ = stop_tx.send(true);
    // Every connection holds a slot until it closes; the ones still open after the drain
    // time are left to end with the process.
    let all = u32::try_from(conns.max).unwrap_or(u32::MAX);
    if tokio::time::timeout(SHUTDOWN_DRAIN, slots.acquire_many(all))
        .await
        .is_err()
    {
        tracing::warn!(
            open = conns.max - slots.available_permits(),
            "connections still open after the shutdown drain time; stopping anyway"
        );
    }
    Ok(())
}

/// A connection that fails with `TimedOut` once the server has waited `idle` to write to it
/// (a client that stops reading its response) with nothing read or written meanwhile.
struct IdleIo<T> {
    inner: T,
    idle: Duration,
    last_activity: Instant,
    timer: Option<Pin<Box<Sleep>>>,
}

impl<T> IdleIo<T> {
    fn new(inner: T, idle: Duration) -> Self {
        IdleIo {
            inner,
            idle,
            last_activity: Instant::now(),
            timer: None,
        }
    }

    /// Called when the connection would wait: `Ready` once it has waited too long.
    fn poll_idle(&mut self, cx: &mut Context<'_>) -> Poll<io::Error> {
        let deadline = self.last_activity + self.idle;
        let timer = self
            .timer
            .get_or_insert_with(|| Box::pin(sleep_until(deadline)));
        if timer.deadline() != deadline {
            timer.as_mut().reset(deadline);
        }
        ready!(timer.as_mut().poll(cx));
        Poll::Ready(io::Error::new(
            io::ErrorKind::TimedOut,
            "the connection was idle too long",
        ))
    }

    fn on<R>(&mut self, cx: &mut Context<'_>, poll: Poll<io::Result<R>>) -> Poll<io::Result<R>> {
        match poll {
            Poll::Ready(result) => {
                self.last_activity = Instant::now();
                Poll::Ready(result)
            }
            Poll::Pending => self.poll_idle(cx).map(Err),
        }
    }
}

impl<T: AsyncRead + Unpin> AsyncRead for IdleIo<T> {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        // Waiting to read is not idleness: hyper also reads while a handler runs (to notice a
        // client that leaves), and waits for headers and bodies have their own limits.
        let this = self.get_mut();
        let poll = Pin::new(&mut this.inner).poll_read(cx, buf);
        if poll.is_ready() {
            this.last_activity = Instant::now();
        }
        poll
    }
}

impl<T: AsyncWrite + Unpin> AsyncWrite for IdleIo<T> {
    fn poll_write(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        let this = self.get_mut();
        let poll = Pin::new(&mut this.inner).poll_write(cx, buf);
        this.on(cx, poll)
    }

    fn poll_write_vectored(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        let this = self.get_mut();
        let poll = Pin::new(&mut this.inner).poll_write_vectored(cx, bufs);
        this.on(cx, poll)
    }

    fn is_write_vectored(&self) -> bool {
        self.inner.is_write_vectored()
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        let this = self.get_mut();
        let poll = Pin::new(&mut this.inner).poll_flush(cx);
        this.on(cx, poll)
    }

    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.get_mut().inner).poll_shutdown(cx)
    }
}

/// The error a request body yields when it has not arrived whole in time.
#[derive(Debug)]
pub struct BodyTimeout(pub Duration);

impl std::fmt::Display for BodyTimeout {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "the request body did not arrive within {} s",
            self.0.as_secs()
        )
    }
}

impl std::error::Error for BodyTimeout {}

/// True when `err` (or what caused it) is a [`BodyTimeout`].
pub fn is_body_timeout(err: &(dyn std::error::Error + 'static)) -> bool {
    let mut cause = Some(err);
    while let Some(err) = cause {
        if err.is::<BodyTimeout>() {
            return true;
        }
        cause = err.source();
    }
    false
}

/// Gives every request body a deadline (a body-less request is left as it is).
pub fn with_body_deadline(req: Request<Body>, timeout: Duration) -> Request<Body> {
    if req.body().is_end_stream() {
        return req;
    }
    let deadline = Instant::now() + timeout;
    req.map(|inner| {
        Body::new(DeadlineBody {
            inner,
            timeout,
            deadline,
            timer: None,
        })
    })
}

struct DeadlineBody {
    inner: Body,
    timeout: Duration,
    deadline: Instant,
    timer: Option<Pin<Box<Sleep>>>,
}

impl hyper::body::Body for DeadlineBody {
    type Data = Bytes;
    type Error = axum::BoxError;

    fn poll_frame(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, Self::Error>>> {
        let this = self.get_mut();
        if let Poll::Ready(frame) = Pin::new(&mut this.inner).poll_frame(cx) {
            return Poll::Ready(frame.map(|f| f.map_err(Into::into)));
        }
        let deadline = this.deadline;
        let timer = this
            .timer
            .get_or_insert_with(|| Box::pin(sleep_until(deadline)));
        ready!(timer.as_mut().poll(cx));
        Poll::Ready(Some(Err(BodyTimeout(this.timeout).into())))
    }

    fn is_end_stream(&self) -> bool {
        self.inner.is_end_stream()
    }

    fn size_hint(&self) -> SizeHint {
        self.inner.size_hint()
    }
}
