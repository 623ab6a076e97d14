//! Server-only half of `app` (feature `ssr`): store, crypto, audit and the service functions
//! that the REST API, server functions, CLI and tests all call.

pub mod ai;
pub mod audit;
pub mod auth;
pub mod clock;
pub mod crypto;
pub mod error;
pub mod events;
pub mod mail;
pub mod metrics;
pub mod notify;
pub mod outbound;
pub mod service;
pub mod store;

use std::sync::Arc;
use std::time::Instant;

pub use error::{ServiceError, ServiceResult};

/// Everything a service function needs, cloned cheaply into handlers and server functions.
#[derive(Clone)]
pub struct Services(Arc<Inner>);

/// The parts behind [`Services`].
pub struct Inner {
    /// What grants, pending requests and reminders are timed by; tests move it.
    pub clock: clock::Clock,
    pub store: store::Store,
    pub keys: crypto::Keyring,
    pub audit: audit::AuditWriter<service::vend::VendGuard>,
    pub events: events::Events,
    /// What this process counts for `GET /metrics`.
    pub metrics: Arc<metrics::Metrics>,
    pub vend_cache: service::vend::VendCache,
    pub reject_throttle: service::agent_auth::RejectThrottle,
    pub mailer: mail::Mailer,
    /// Outbox side of notifications: guarded client, retry schedule, worker wake-up.
    pub notifier: notify::Notifier,
    /// Guarded client and limits of proxied calls.
    pub upstreams: outbound::Upstreams,
    /// The model that drafts usage guides, when one is configured.
    pub ai: Option<ai::Drafter>,
    /// Outcomes of proxied calls waiting for their audit batch.
    pub proxy_outcomes: service::proxy::outcomes::OutcomeLog,
    pub sign_in_limits: auth::limiter::KeyedLimiter,
    /// Sign-in links wait here to be made and mailed after the answer.
    pub sign_in_mail: service::auth::SignInMailQueue,
    /// Public base URL of this instance, used in onboarding snippets and hints.
    pub base_url: String,
    pub started: Instant,
    /// Flips to true when the server starts shutting down; long-lived responses (the live
    /// event stream) end on it so that graceful shutdown does not wait for them forever.
    stopping: tokio::sync::watch::Sender<bool>,
}

impl std::ops::Deref for Services {
    type Target = Inner;
    fn deref(&self) -> &Inner {
        &self.0
    }
}

impl Services {
    /// Wires the parts together and starts the audit group-commit writer and the sign-in mail
    /// task.
    pub fn new(
        store: store::Store,
        keys: crypto::Keyring,
        base_url: String,
        mailer: mail::Mailer,
        notifier: notify::Notifier,
        upstreams: outbound::Upstreams,
        ai: Option<ai::Drafter>,
    ) -> Self {
        let clock = clock::Clock::default();
        let metrics = Arc::new(metrics::Metrics::default());
        let audit = audit::AuditWriter::start(store.clone(), clock.clone(), metrics.clone());
        let (sign_in_mail, sign_in_requests) = service::auth::SignInMailQueue::new();
        let svc = Services(Arc::new(Inner {
            clock,
            store,
            keys,
            audit,
            events: events::Events::new(),
            metrics,
            vend_cache: service::vend::VendCache::default(),
            reject_throttle: Default::default(),
            mailer,
            notifier,
            upstreams,
            ai,
            proxy_outcomes: Default::default(),
            sign_in_limits: Default::default(),
            sign_in_mail,
            base_url: base_url.trim_end_matches('/').to_owned(),
            started: Instant::now(),
            stopping: tokio::sync::watch::channel(false).0,
        }));
        tokio::spawn(service::auth::run_sign_in_mail(
            Arc::downgrade(&svc.0),
            sign_in_requests,
        ));
        tokio::spawn(service::proxy::outcomes::run(Arc::downgrade(&svc.0)));
        svc
    }

    /// Tells long-lived responses to finish: the first step of a graceful shutdown.
    pub fn begin_shutdown(&self) {
        self.stopping.send_replace(true);
    }

    /// Resolves once [`Services::begin_shutdown`] has been called.
    pub fn stopping(&self) -> impl std::future::Future<Output = ()> + Send + 'static {
        let mut rx = self.stopping.subscribe();
        async move {
            let _ = rx.wait_for(|stopping| *stopping).await;
        }
    }

    /// An absolute link into the dashboard.
    pub fn link(&self, path: &str) -> String {
        format!("{}{path}", self.base_url)
    }

    /// Waits for queued audit rows to be committed; call after the HTTP server has drained.
    pub async fn shutdown(&self) {
        service::proxy::outcomes::flush(self).await;
        self.audit.shutdown().await;
    }
}
