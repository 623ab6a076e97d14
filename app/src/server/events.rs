//! Organization-scoped change events, published after commit; the live dashboard streams them.
//! Subscribers of this process get an event at once. On PostgreSQL, [`relay`] also sends every
//! event through `NOTIFY` and rebroadcasts the other instances' events here, so a dashboard
//! connected to one instance sees what happened on any of them.

use std::sync::{Arc, OnceLock};

use serde::{Deserialize, Serialize};
use tokio::sync::{broadcast, mpsc};

/// What changed.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum EventKind {
    AgentChanged,
    ToolChanged,
    RequestChanged,
    SuggestionChanged,
    CredentialVended,
    /// The organization is gone: every instance drops its data keys from memory at once.
    OrganizationDeleted,
    /// Events may have been missed (another instance's, while the `LISTEN` connection was
    /// down): every stream, whatever its organization, tells its page to reload everything.
    Resync,
}

impl EventKind {
    /// The name sent on the live stream.
    pub fn as_str(self) -> &'static str {
        match self {
            EventKind::AgentChanged => "agent_changed",
            EventKind::ToolChanged => "tool_changed",
            EventKind::RequestChanged => "request_changed",
            EventKind::SuggestionChanged => "suggestion_changed",
            EventKind::CredentialVended => "credential_vended",
            EventKind::OrganizationDeleted => "organization_deleted",
            EventKind::Resync => "resync",
        }
    }
}

/// One change in one organization.
#[derive(Clone, Debug, Serialize)]
pub struct OrgEvent {
    pub org_id: String,
    pub kind: EventKind,
}

impl OrgEvent {
    /// Whether a stream of `org_id` passes this event on.
    pub fn concerns(&self, org_id: &str) -> bool {
        self.org_id == org_id || self.kind == EventKind::Resync
    }
}

/// The event bus.
#[derive(Clone)]
pub struct Events {
    tx: broadcast::Sender<OrgEvent>,
    /// This process, so that it skips its own events coming back through `NOTIFY`.
    instance: Arc<str>,
    /// Set once the `NOTIFY` relay runs.
    outbound: Arc<OnceLock<mpsc::UnboundedSender<OrgEvent>>>,
}

/// What travels in a `NOTIFY` payload.
#[derive(Serialize, Deserialize)]
struct Wire<'a> {
    instance: &'a str,
    org_id: &'a str,
    kind: EventKind,
}

/// The `LISTEN`/`NOTIFY` channel.
pub const CHANNEL: &str = "agentkey_events";

impl Events {
    pub fn new() -> Self {
        Events {
            tx: broadcast::channel(1024).0,
            instance: uuid::Uuid::now_v7().to_string().into(),
            outbound: Arc::default(),
        }
    }

    /// Publishes; having no subscriber is fine. Never waits: the `NOTIFY` goes out from the
    /// relay's task.
    pub fn publish(&self, org_id: &str, kind: EventKind) {
        let event = OrgEvent {
            org_id: org_id.to_owned(),
            kind,
        };
        if let Some(outbound) = self.outbound.get() {
            let _ = outbound.send(event.clone());
        }
        let _ = self.tx.send(event);
    }

    /// Hands this process's events to one taker: the [`relay`], or [`flush`] for one-shot
    /// processes (the CLI) that run no relay. None when something already takes them.
    pub fn collect(&self) -> Option<mpsc::UnboundedReceiver<OrgEvent>> {
        let (tx, rx) = mpsc::unbounded_channel();
        self.outbound.set(tx).ok().map(|()| rx)
    }

    /// Tells every open stream, whatever its organization, to reload what it shows.
    fn resync_all(&self) {
        let _ = self.tx.send(OrgEvent {
            org_id: String::new(),
            kind: EventKind::Resync,
        });
    }

    /// A new subscription receiving events published from now on.
    pub fn subscribe(&self) -> broadcast::Receiver<OrgEvent> {
        self.tx.subscribe()
    }
}

impl Default for Events {
    fn default() -> Self {
        Self::new()
    }
}

/// Fans events out across instances sharing one PostgreSQL database: a task sends this
/// process's events with `pg_notify`, another `LISTEN`s and rebroadcasts the others' events to
/// local subscribers. Runs until the services stop. Events are hints to refresh: when the
/// listener had to reconnect (and may have missed some), every open stream is told to resync.
pub async fn relay(svc: super::Services, database_url: String) -> anyhow::Result<()> {
    let events = svc.events.clone();
    let Some(mut rx) = events.collect() else {
        anyhow::bail!("the event relay is already running");
    };

    // Sending does not depend on the listener: this instance's changes go out from the start.
    let sender = {
        let svc = svc.clone();
        let instance = events.instance.clone();
        tokio::spawn(async move {
            while let Some(event) = rx.recv().await {
                notify(&svc, &instance, &event).await;
            }
        })
    };

    let stopping = svc.stopping();
    tokio::pin!(stopping);
    // The first LISTEN connection is retried until it works (the database may be starting too);
    // if it took more than one try, streams opened meanwhile are told to resync.
    let mut delay = std::time::Duration::from_millis(500);
    let mut tries = 0;
    let mut listener = loop {
        tries += 1;
        let connected = async {
            let mut listener = sqlx::postgres::PgListener::connect(&database_url).await?;
            listener.listen(CHANNEL).await?;
            Ok::<_, sqlx::Error>(listener)
        };
        match connected.await {
            Ok(listener) => break listener,
            Err(err) => {
                tracing::warn!(error = %err, retry_in_ms = delay.as_millis() as u64, "LISTEN connection to PostgreSQL failed; live events from other instances wait");
                tokio::select! {
                    () = &mut stopping => { sender.abort(); return Ok(()); }
                    () = tokio::time::sleep(delay) => {}
                }
                delay = (delay * 2).min(std::time::Duration::from_secs(30));
            }
        }
    };
    if tries > 1 {
        events.resync_all();
    }
    loop {
        let next = tokio::select! {
            () = &mut stopping => break,
            next = listener.try_recv() => next,
        };
        match next {
            Ok(Some(note)) => match serde_json::from_str::<Wire<'_>>(note.payload()) {
                Ok(wire) if *wire.instance != *events.instance => {
                    if wire.kind == EventKind::OrganizationDeleted {
                        svc.keys.forget(wire.org_id);
                        svc.vend_cache.clear();
                    }
                    let _ = events.tx.send(OrgEvent {
                        org_id: wire.org_id.to_owned(),
                        kind: wire.kind,
                    });
                }
                Ok(_) => {}
                Err(err) => tracing::warn!(error = %err, "ignored a malformed event notification"),
            },
            Ok(None) => {
                tracing::warn!(
                    "the LISTEN connection was lost and re-established; dashboards resynchronise"
                );
                events.resync_all();
            }
            Err(err) => {
                tracing::warn!(error = %err, "LISTEN failed; retrying");
                tokio::time::sleep(std::time::Duration::from_secs(1)).await;
            }
        }
    }
    sender.abort();
    Ok(())
}

/// Sends one event to the other instances.
async fn notify(svc: &super::Services, instance: &str, event: &OrgEvent) {
    let payload = serde_json::to_string(&Wire {
        instance,
        org_id: &event.org_id,
        kind: event.kind,
    })
    .unwrap_or_default();
    let sent = sqlx::query("SELECT pg_notify($1, $2)")
        .bind(CHANNEL)
        .bind(payload)
        .execute(svc.store.writer())
        .await;
    if let Err(err) = sent {
        tracing::warn!(error = %err, "could not NOTIFY other instances of a change");
    }
}

/// Sends the events [`Events::collect`] gathered to the instances' dashboards (PostgreSQL;
/// on SQLite there is no one to tell, and they are dropped).
pub async fn flush(svc: &super::Services, collected: &mut mpsc::UnboundedReceiver<OrgEvent>) {
    if svc.store.backend() != super::store::Backend::Postgres {
        return;
    }
    while let Ok(event) = collected.try_recv() {
        notify(svc, &svc.events.instance, &event).await;
    }
}
