//! Sign-in links are made and mailed after the answer, by one task: the answer to a member and
//! to a stranger is then the same work, and takes the same time.

use std::sync::Arc;

use tokio::sync::Semaphore;
use tokio::sync::mpsc::error::TrySendError;

use super::{LINK_TTL_MS, confirm_url, new_token};
use crate::server::mail::{Mail, escape_html};
use crate::server::service::new_id;
use crate::server::store::{self, auth::NewToken};
use crate::server::{Services, clock};

/// A member's request for a sign-in link, made and mailed after the answer.
#[derive(Debug)]
pub struct LinkRequest {
    pub(super) email: String,
    pub(super) requested_ip: Option<String>,
}

/// Where sign-in link requests wait for one task that makes and mails each link. Bounded: the
/// per-address and per-mailbox limits keep it short, and a full queue drops the request (the
/// person asks again) rather than holding memory for a mail server that does not answer.
#[derive(Clone, Debug)]
pub struct SignInMailQueue(tokio::sync::mpsc::Sender<LinkRequest>);

impl SignInMailQueue {
    /// The queue and its receiving end, for [`run_sign_in_mail`].
    pub fn new() -> (Self, tokio::sync::mpsc::Receiver<LinkRequest>) {
        let (tx, rx) = tokio::sync::mpsc::channel(SIGN_IN_QUEUE);
        (SignInMailQueue(tx), rx)
    }

    pub(super) fn push(&self, request: LinkRequest) {
        match self.0.try_send(request) {
            Ok(()) => {}
            Err(TrySendError::Full(_)) => {
                tracing::error!("sign-in mail queue is full; a link request was dropped");
            }
            Err(TrySendError::Closed(_)) => {
                tracing::error!("sign-in mail task has stopped; a link request was dropped");
            }
        }
    }
}

const SIGN_IN_QUEUE: usize = 256;
/// Links mailed at once: a slow mail server delays a burst of sign-ins by its answer time, not
/// by that times the queue length.
const SENDS_AT_ONCE: usize = 4;

/// Makes and mails the queued links until the services are gone. Holds them weakly, so that a
/// dropped [`Services`] ends the task.
pub async fn run_sign_in_mail(
    svc: std::sync::Weak<crate::server::Inner>,
    mut rx: tokio::sync::mpsc::Receiver<LinkRequest>,
) {
    let sends = Arc::new(Semaphore::new(SENDS_AT_ONCE));
    while let Some(request) = rx.recv().await {
        let Ok(permit) = sends.clone().acquire_owned().await else {
            break;
        };
        let Some(inner) = svc.upgrade() else { break };
        let svc = Services(inner);
        // Each send is its own task: one that fails or panics loses only its own link.
        tokio::spawn(async move {
            if let Err(err) = send_link(&svc, request).await {
                // The requester saw the neutral answer; the operator sees why no mail arrived.
                tracing::error!(error = %err, "sign-in mail could not be sent");
            }
            drop(permit);
        });
    }
}

async fn send_link(svc: &Services, request: LinkRequest) -> anyhow::Result<()> {
    let now = clock::now_ms();
    let (token, hash) = new_token();
    let new = NewToken {
        id: &new_id(),
        token_hash: &hash,
        purpose: "sign_in",
        email: Some(&request.email),
        requested_ip: request.requested_ip.as_deref(),
        expires_at: now + LINK_TTL_MS,
    };
    store::auth::insert_token(svc.store.writer(), &new, now).await?;
    let url = confirm_url(svc, &token);
    let mail = Mail {
        to: request.email,
        subject: "Your AgentKey sign-in link".into(),
        text: format!(
            "Sign in to AgentKey:\n\n{url}\n\nThe link works once and expires in 15 minutes. \
             If you did not ask for it, ignore this message."
        ),
        html: format!(
            "<p>Sign in to AgentKey:</p><p><a href=\"{0}\">{0}</a></p>\
             <p>The link works once and expires in 15 minutes. If you did not ask for it, ignore this message.</p>",
            escape_html(&url)
        ),
        message_id: None,
    };
    svc.mailer.send(mail).await
}
