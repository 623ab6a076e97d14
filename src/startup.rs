//! Start-up: open the store, apply migrations, resolve the master key, build the services,
//! and (for `serve`) bind and run the HTTP server with graceful shutdown.

use std::io::Write;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};

use anyhow::{Context, bail};
use app::server::Services;
use app::server::crypto::MasterKey;
use app::server::service::keys;
use app::server::store::Store;
use secrecy::ExposeSecret;
use tokio::net::TcpListener;

use crate::config::Settings;
use crate::http;

/// Opens the database (migrating it) and the keyring, and starts the services.
pub async fn open(settings: &Settings) -> anyhow::Result<Services> {
    let store = Store::connect(&settings.database_url).await?;
    store.migrate().await?;
    let master = resolve_master_key(settings, &store).await?;
    let ring = match keys::load_keyring(&store, master).await {
        Ok(ring) => ring,
        Err(err) => match recover_interrupted_rotation(settings, &store).await? {
            Some(ring) => ring,
            None => return Err(err),
        },
    };
    let mailer = app::server::mail::Mailer::from_settings(
        settings
            .smtp_url
            .as_ref()
            .map(secrecy::ExposeSecret::expose_secret),
        &settings.smtp_from,
    )?;
    if settings.test_loopback_webhooks {
        tracing::warn!(
            "AGENTKEY_TEST_LOOPBACK_WEBHOOKS is on: webhooks may target plain-http loopback receivers (tests only)"
        );
    }
    let outbound = app::server::outbound::Outbound::new(settings.test_loopback_webhooks)?;
    let notifier = app::server::notify::Notifier::new(outbound, settings.notify_policy);
    if settings.test_loopback_upstreams {
        tracing::warn!(
            "AGENTKEY_TEST_LOOPBACK_UPSTREAMS is on: proxied tools may target plain-http loopback upstreams (tests only)"
        );
    }
    let upstreams =
        app::server::outbound::Upstreams::new(settings.test_loopback_upstreams, settings.proxy)?;
    let ai = match &settings.ai {
        Some(ai) => Some(
            app::server::ai::Drafter::new(ai.clone())
                .context("failed to set up the model client (AGENTKEY_AI_URL)")?,
        ),
        None => None,
    };
    let services = Services::new(
        store,
        ring,
        settings.base_url.clone(),
        mailer,
        notifier,
        upstreams,
        ai,
    );
    // Blobs written before the credential version was bound into their associated data.
    keys::reseal_legacy_blobs(&services)
        .await
        .context("re-sealing stored secrets failed")?;
    Ok(services)
}

/// The master key: `AGENTKEY_MASTER_KEY`, else the key file: on the embedded default generated on
/// first run, on a shared database only when named and already there. Refuses a missing key when encrypted data already exists.
pub async fn resolve_master_key(settings: &Settings, store: &Store) -> anyhow::Result<MasterKey> {
    if let Some(text) = &settings.master_key {
        return MasterKey::from_base64(text.expose_secret())
            .context("AGENTKEY_MASTER_KEY must be base64 of exactly 32 bytes");
    }
    let path = &settings.master_key_file;
    if !settings.is_embedded() {
        // Shared databases never get a generated key: every instance must use the same one.
        if settings.master_key_file_named {
            return read_key_file(path);
        }
        bail!(
            "AGENTKEY_MASTER_KEY (or AGENTKEY_MASTER_KEY_FILE naming an existing key file) is required when the \
             database is not the embedded SQLite default; every instance must use the same key"
        );
    }
    if path.exists() {
        return read_key_file(path);
    }
    if keys::has_data_keys(store).await? {
        bail!(
            "the database holds encrypted secrets but the master key file {} is missing; \
             restore it or set AGENTKEY_MASTER_KEY",
            path.display()
        );
    }
    let key = MasterKey::generate();
    write_key_file(path, &key)?;
    tracing::warn!(
        path = %path.display(),
        key_id = key.id(),
        "generated a new master key; back this file up — without it the stored secrets cannot be decrypted"
    );
    Ok(key)
}

/// Reads a key file, refusing one that others can read.
pub fn read_key_file(path: &Path) -> anyhow::Result<MasterKey> {
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        let mode = std::fs::metadata(path)
            .with_context(|| format!("cannot read master key file {}", path.display()))?
            .permissions()
            .mode();
        if mode & 0o077 != 0 {
            bail!(
                "master key file {} is accessible by other users (mode {:o}); run chmod 600 on it",
                path.display(),
                mode & 0o777
            );
        }
    }
    let text = std::fs::read_to_string(path)
        .with_context(|| format!("failed to read master key file {}", path.display()))?;
    MasterKey::from_base64(&text).with_context(|| {
        format!(
            "master key file {} is not base64 of 32 bytes",
            path.display()
        )
    })
}

/// Writes a key file with mode 0600, refusing to overwrite.
pub fn write_key_file(path: &Path, key: &MasterKey) -> anyhow::Result<()> {
    if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
        std::fs::create_dir_all(dir)
            .with_context(|| format!("failed to create {}", dir.display()))?;
    }
    let mut options = std::fs::OpenOptions::new();
    options.write(true).create_new(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt;
        options.mode(0o600);
    }
    let mut file = options
        .open(path)
        .with_context(|| format!("failed to create master key file {}", path.display()))?;
    file.write_all(key.to_base64().expose_secret().as_bytes())?;
    file.write_all(b"\n")?;
    file.sync_all()?;
    Ok(())
}

/// Path of the next key while a file-based rotation is in progress.
pub fn pending_key_path(path: &Path) -> PathBuf {
    let mut name = path
        .file_name()
        .map(|n| n.to_os_string())
        .unwrap_or_default();
    name.push(".new");
    path.with_file_name(name)
}

/// A rotation that re-wrapped the data keys but stopped before renaming the new key file
/// leaves `master.key.new` as the valid key: finish the rename and use it.
async fn recover_interrupted_rotation(
    settings: &Settings,
    store: &Store,
) -> anyhow::Result<Option<app::server::crypto::Keyring>> {
    if settings.master_key.is_some() {
        return Ok(None);
    }
    let pending = pending_key_path(&settings.master_key_file);
    if !pending.exists() {
        return Ok(None);
    }
    let key = read_key_file(&pending)?;
    let ring = keys::load_keyring(store, key).await?;
    std::fs::rename(&pending, &settings.master_key_file)
        .context("failed to finish the interrupted master key rotation")?;
    tracing::warn!(path = %settings.master_key_file.display(), "finished an interrupted master key rotation");
    Ok(Some(ring))
}

/// A bound, ready-to-run server.
pub struct Application {
    listener: TcpListener,
    /// Held shared while the server runs on an embedded database: `agentkey restore` waits
    /// for no server.
    _database_lock: Option<std::fs::File>,
    /// `AGENTKEY_METRICS` as an address: the scrape listener, bound with the main one.
    metrics_listener: Option<TcpListener>,
    services: Services,
    router: axum::Router,
    connections: http::serve::Connections,
}

impl Application {
    /// Opens everything and binds `settings.bind` (port 0 picks a free port).
    pub async fn build(settings: &Settings) -> anyhow::Result<Self> {
        let database_lock = if settings.is_embedded() {
            let path = Path::new(app::server::store::sqlite_path(&settings.database_url));
            Some(app::server::store::lock::hold_shared(path)?)
        } else {
            None
        };
        let services = open(settings).await?;
        let router = http::router(settings, services.clone())?;
        let listener = TcpListener::bind(settings.bind)
            .await
            .with_context(|| format!("failed to bind {}", settings.bind))?;
        let metrics_listener = match settings.metrics {
            http::metrics::MetricsMode::Listen(addr) => Some(
                TcpListener::bind(addr)
                    .await
                    .with_context(|| format!("failed to bind AGENTKEY_METRICS {addr}"))?,
            ),
            _ => None,
        };
        Ok(Application {
            listener,
            _database_lock: database_lock,
            metrics_listener,
            services,
            router,
            connections: settings.connections,
        })
    }

    /// The bound address.
    pub fn addr(&self) -> SocketAddr {
        self.listener
            .local_addr()
            .unwrap_or_else(|_| SocketAddr::from(([127, 0, 0, 1], 0)))
    }

    /// The bound address of the separate metrics listener, if there is one.
    pub fn metrics_addr(&self) -> Option<SocketAddr> {
        self.metrics_listener
            .as_ref()
            .and_then(|l| l.local_addr().ok())
    }

    /// The services behind the server (tests use them as the admin side).
    pub fn services(&self) -> &Services {
        &self.services
    }

    /// Serves until `shutdown` resolves, then lets in-flight requests finish, commits pending
    /// audit rows and closes the database.
    pub async fn run_until(
        self,
        shutdown: impl std::future::Future<Output = ()> + Send + 'static,
    ) -> anyhow::Result<()> {
        let worker = tokio::spawn(crate::workers::notify::run(self.services.clone()));
        let maintenance = tokio::spawn(crate::workers::maintenance::run(self.services.clone()));
        // Several instances on one PostgreSQL: live events cross instances through NOTIFY.
        let relay = self.services.store.postgres_url().map(|url| {
            let (services, url) = (self.services.clone(), url.to_owned());
            tokio::spawn(async move {
                if let Err(err) = app::server::events::relay(services, url).await {
                    tracing::error!(error = %format!("{err:#}"), "live events from other instances are off");
                }
            })
        });
        let scrapes = self.metrics_listener.map(|listener| {
            let (router, services) = (
                http::metrics::listener_router(self.services.clone()),
                self.services.clone(),
            );
            tracing::info!(addr = ?listener.local_addr().ok(), "metrics listener up");
            tokio::spawn(async move {
                let stopped = services.stopping();
                if let Err(err) = axum::serve(listener, router)
                    .with_graceful_shutdown(stopped)
                    .await
                {
                    tracing::error!(error = %err, "metrics listener failed");
                }
            })
        });
        let services = self.services.clone();
        let shutdown = async move {
            shutdown.await;
            // Open event streams end now; without this the drain would wait for them forever.
            services.begin_shutdown();
        };
        let connections = self
            .connections
            .fitted_to(http::serve::raise_open_file_limit());
        http::serve::serve(self.listener, self.router, connections, shutdown)
            .await
            .context("HTTP server failed")?;
        // The worker stops taking rows at shutdown and records the sends already under way.
        if let Err(err) = maintenance.await {
            tracing::error!(error = %err, "maintenance worker failed");
        }
        if let Err(err) = worker.await {
            tracing::error!(error = %err, "notification worker failed");
        }
        if let Some(relay) = relay {
            let _ = relay.await;
        }
        if let Some(scrapes) = scrapes {
            let _ = scrapes.await;
        }
        self.services.shutdown().await;
        self.services.store.close().await;
        tracing::info!("stopped cleanly");
        Ok(())
    }
}

/// Resolves on SIGTERM or Ctrl-C.
pub async fn shutdown_signal() {
    let ctrl_c = async {
        let _ = tokio::signal::ctrl_c().await;
    };
    #[cfg(unix)]
    let term = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut s) => {
                s.recv().await;
            }
            Err(_) => std::future::pending::<()>().await,
        }
    };
    #[cfg(not(unix))]
    let term = std::future::pending::<()>();
    tokio::select! { _ = ctrl_c => {}, _ = term => {} }
    tracing::info!("shutdown requested; finishing in-flight requests");
}
