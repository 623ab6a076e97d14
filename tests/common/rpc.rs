//! The dashboard's server functions over real HTTP, called the way the hydrated page calls
//! them (same-origin form POSTs), and sign-in through the emailed link.

use serde_json::Value;

use super::TestApp;
use super::smtp::{SmtpSink, token_in};

/// The owner every test app starts with.
pub const OWNER: &str = "owner@example.com";

pub struct Reply {
    pub status: u16,
    pub body: String,
    pub set_cookie: Vec<String>,
}

impl Reply {
    pub fn json(&self) -> Value {
        serde_json::from_str(&self.body).unwrap_or(Value::Null)
    }
    pub fn session_cookie(&self) -> Option<String> {
        self.set_cookie
            .iter()
            .find(|c| c.starts_with("agentkey_session="))
            .cloned()
    }
}

/// Calls a server function the way the hydrated page does: a same-origin form POST.
pub async fn rpc(app: &TestApp, path: &str, form: &[(&str, &str)], cookie: Option<&str>) -> Reply {
    rpc_from(app, path, form, cookie, Some(&app.base)).await
}

pub async fn rpc_from(
    app: &TestApp,
    path: &str,
    form: &[(&str, &str)],
    cookie: Option<&str>,
    origin: Option<&str>,
) -> Reply {
    let mut req = app.client.post(app.url(&format!("/rpc/{path}"))).form(form);
    if let Some(origin) = origin {
        req = req.header("origin", origin);
    }
    if let Some(cookie) = cookie {
        req = req.header("cookie", cookie);
    }
    let res = req.send().await.expect("rpc");
    let status = res.status().as_u16();
    let set_cookie = res
        .headers()
        .get_all("set-cookie")
        .iter()
        .filter_map(|v| v.to_str().ok().map(str::to_owned))
        .collect();
    Reply {
        status,
        body: res.text().await.unwrap_or_default(),
        set_cookie,
    }
}

pub async fn app_with_mail() -> (TestApp, SmtpSink) {
    let sink = SmtpSink::start().await;
    let app = super::spawn_app_with(&[("AGENTKEY_SMTP_URL", &sink.url())]).await;
    (app, sink)
}

/// Signs the owner in through the emailed link; returns the `name=value` cookie pair.
pub async fn sign_in(app: &TestApp, sink: &SmtpSink) -> String {
    sign_in_as(app, sink, OWNER).await
}

/// Signs `email` in through the emailed link; returns the `name=value` cookie pair.
pub async fn sign_in_as(app: &TestApp, sink: &SmtpSink, email: &str) -> String {
    let n = sink.count();
    assert_eq!(
        rpc(app, "auth/request", &[("email", email)], None)
            .await
            .status,
        200
    );
    let token = token_in(&sink.wait_for(n).await);
    let reply = rpc(app, "auth/confirm", &[("token", &token)], None).await;
    assert!(
        reply.status < 400,
        "confirm failed: {} {}",
        reply.status,
        reply.body
    );
    let cookie = reply.session_cookie().expect("a session cookie");
    cookie.split(';').next().expect("pair").to_owned()
}
