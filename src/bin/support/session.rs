//! A dashboard session for the benchmarks that load pages: the owner signs in through the real
//! emailed-link flow (without SMTP the link is in the server's log).

#![allow(
    dead_code,
    reason = "each benchmark binary compiles `support`; only those that load pages use this"
)]

use std::net::SocketAddr;
use std::path::Path;
use std::time::Duration;

use anyhow::{Context, bail};
use http_body_util::{BodyExt, Full};
use hyper::body::Bytes;
use hyper::{Request, header};
use hyper_util::rt::TokioIo;
use tokio::net::TcpStream;

pub type Sender = hyper::client::conn::http1::SendRequest<Full<Bytes>>;

/// A keep-alive connection to `addr`, retried until the server listens (at most 10 s).
pub async fn connect(addr: SocketAddr) -> anyhow::Result<Sender> {
    for _ in 0..200 {
        if let Ok(stream) = TcpStream::connect(addr).await {
            let (sender, conn) =
                hyper::client::conn::http1::handshake(TokioIo::new(stream)).await?;
            tokio::spawn(conn);
            return Ok(sender);
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    bail!("nothing listens on {addr}")
}

/// One request: (status, Set-Cookie values, body). A non-empty `form` is sent URL-encoded.
pub async fn send(
    s: &mut Sender,
    addr: SocketAddr,
    method: &str,
    path: &str,
    cookie: &str,
    form: &str,
) -> anyhow::Result<(u16, Vec<String>, Bytes)> {
    let mut req = Request::builder()
        .method(method)
        .uri(path)
        .header(header::HOST, addr.to_string())
        .header(header::ORIGIN, format!("http://{addr}"));
    if !cookie.is_empty() {
        req = req.header(header::COOKIE, cookie);
    }
    if !form.is_empty() {
        req = req.header(header::CONTENT_TYPE, "application/x-www-form-urlencoded");
    }
    let res = s
        .send_request(req.body(Full::new(Bytes::from(form.to_owned())))?)
        .await?;
    let status = res.status().as_u16();
    let cookies = res
        .headers()
        .get_all(header::SET_COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok().map(str::to_owned))
        .collect();
    Ok((status, cookies, res.into_body().collect().await?.to_bytes()))
}

/// Signs `email` in and returns the session cookie (`agentkey_session=…`). The server must
/// write its log to `log` (the sign-in link is found there).
pub async fn sign_in(
    s: &mut Sender,
    addr: SocketAddr,
    email: &str,
    log: &Path,
) -> anyhow::Result<String> {
    let before = std::fs::read_to_string(log).unwrap_or_default().len();
    let form = format!("email={email}");
    let (status, _, _) = send(s, addr, "POST", "/rpc/auth/request", "", &form).await?;
    if status != 200 {
        bail!("sign-in link request failed with {status}");
    }
    // The link is made and logged after the answer.
    let mut token = None;
    for _ in 0..100 {
        let text = std::fs::read_to_string(log)?;
        if let Some(at) = text.get(before..).and_then(|t| t.find("token=")) {
            let start = before + at + "token=".len();
            token = text.get(start..start + 64).map(str::to_owned);
            break;
        }
        tokio::time::sleep(Duration::from_millis(30)).await;
    }
    let token = token.context("no sign-in link in the server log")?;
    let form = format!("token={token}");
    let (status, cookies, _) = send(s, addr, "POST", "/rpc/auth/confirm", "", &form).await?;
    if status >= 400 {
        bail!("sign-in failed with {status}");
    }
    let cookie = cookies
        .iter()
        .find(|c| c.starts_with("agentkey_session="))
        .context("no session cookie")?;
    Ok(cookie.split(';').next().unwrap_or_default().to_owned())
}
