//! The state shared by every request handler.

use crate::auth::LoginLimiter;
use crate::bus::Bus;
use crate::clock::Clock;
use crate::config::Config;
use crate::engine::{Command, Engine};
use crate::error::ApiError;
use metrics_exporter_prometheus::PrometheusHandle;
use std::collections::HashMap;
use std::ops::Deref;
use std::sync::{Arc, Mutex};
use switchboard_model::TenantId;
use switchboard_store::Store;
use tokio::sync::{RwLock, mpsc};

/// Shared state (cheap to clone).
#[derive(Clone)]
pub struct AppState(Arc<Inner>);

/// What the state holds.
pub struct Inner {
    /// Persistence.
    pub store: Store,
    /// The clock.
    pub clock: Clock,
    /// Configuration.
    pub config: Config,
    /// The event bus.
    pub bus: Bus,
    /// Login limits.
    pub limiter: Mutex<LoginLimiter>,
    /// Prometheus rendering.
    pub metrics: PrometheusHandle,
    /// An argon2 hash of a random password, checked for unknown usernames so that timing does
    /// not reveal which usernames exist.
    pub decoy_hash: String,
    /// Token hashes of sessions just ended (logout), so open event streams close at once.
    pub revoked: tokio::sync::broadcast::Sender<String>,
    /// Open chat sockets per client address.
    pub chat_sockets: Arc<crate::chat::SocketCounter>,
    /// Open sockets per chat session.
    pub chat_sessions: crate::chat::SessionSockets,
    /// Reloads the SIP listener's accounts (set once the listener runs).
    pub sip_accounts: std::sync::OnceLock<crate::voice::CredentialReloader>,
    /// Records live calls (set once the listener runs): the hook for the recordings module.
    pub call_recorder: std::sync::OnceLock<crate::voice::CallRecorder>,
    /// Group commit of conversation messages.
    pub messages: crate::chat::MessageWriter,
    /// SMS and messaging apps: outbox wake-up, intake lock, provider client, media.
    pub messaging: crate::messaging::Messaging,
    /// Email: intake locks and the relay transport.
    pub email: crate::email::Email,
    /// The chat flows running in this process.
    pub flow_runs: crate::chat_flow::Runs,
    /// Call recordings: files, metadata, live controls, retention.
    pub recordings: crate::recordings::Recordings,
    engines: RwLock<HashMap<TenantId, mpsc::Sender<Command>>>,
    tasks: Mutex<Vec<tokio::task::JoinHandle<()>>>,
}

impl Deref for AppState {
    type Target = Inner;
    fn deref(&self) -> &Inner {
        &self.0
    }
}

impl AppState {
    /// Builds the state.
    pub fn new(
        store: Store,
        clock: Clock,
        config: Config,
        metrics: PrometheusHandle,
        decoy_hash: String,
    ) -> Self {
        let limiter = LoginLimiter::new(
            config.login_window,
            config.login_failures_per_user,
            config.login_failures_per_ip,
        );
        let messages = crate::chat::MessageWriter::start(store.clone());
        let messaging = crate::messaging::Messaging::new(&config, store.clone());
        let email = crate::email::Email::new(&config);
        let bus = Bus::new();
        let recordings = crate::recordings::Recordings::new(
            store.clone(),
            clock.clone(),
            bus.clone(),
            config.data_dir.clone(),
        );
        AppState(Arc::new(Inner {
            store,
            clock,
            config,
            bus,
            limiter: Mutex::new(limiter),
            metrics,
            decoy_hash,
            revoked: tokio::sync::broadcast::channel(256).0,
            chat_sockets: Arc::default(),
            chat_sessions: Default::default(),
            sip_accounts: std::sync::OnceLock::new(),
            call_recorder: std::sync::OnceLock::new(),
            messages,
            messaging,
            email,
            flow_runs: Default::default(),
            recordings,
            engines: RwLock::new(HashMap::new()),
            tasks: Mutex::new(Vec::new()),
        }))
    }

    /// Starts the engine of every tenant in the store.
    pub async fn start_engines(&self) -> anyhow::Result<()> {
        for t in self.store.tenants().await? {
            self.engine(t.id)
                .await
                .map_err(|e| anyhow::anyhow!(e.message))?;
        }
        Ok(())
    }

    /// The command channel of a tenant's engine, starting it on first use.
    pub async fn engine(&self, tenant: TenantId) -> Result<mpsc::Sender<Command>, ApiError> {
        if let Some(tx) = self.engines.read().await.get(&tenant) {
            return Ok(tx.clone());
        }
        let mut engines = self.engines.write().await;
        if let Some(tx) = engines.get(&tenant) {
            return Ok(tx.clone());
        }
        let (tx, handle) = Engine::start(
            tenant,
            self.store.clone(),
            self.clock.clone(),
            self.bus.clone(),
        )
        .await
        .map_err(ApiError::internal)?;
        engines.insert(tenant, tx.clone());
        self.tasks.lock().map_err(ApiError::internal)?.push(handle);
        Ok(tx)
    }

    /// Sends a command and waits for its reply.
    pub async fn ask<T>(
        &self,
        tenant: TenantId,
        make: impl FnOnce(tokio::sync::oneshot::Sender<T>) -> Command,
    ) -> Result<T, ApiError> {
        let tx = self.engine(tenant).await?;
        let (reply, rx) = tokio::sync::oneshot::channel();
        tx.send(make(reply))
            .await
            .map_err(|_| ApiError::unavailable("the routing engine is shutting down"))?;
        rx.await
            .map_err(|_| ApiError::unavailable("the routing engine stopped"))
    }

    /// Sends a command that needs no reply.
    pub async fn tell(&self, tenant: TenantId, cmd: Command) -> Result<(), ApiError> {
        let tx = self.engine(tenant).await?;
        tx.send(cmd)
            .await
            .map_err(|_| ApiError::unavailable("the routing engine is shutting down"))
    }

    /// Stops every engine after it has finished the commands already sent (graceful drain).
    pub async fn stop_engines(&self) {
        self.engines.write().await.clear();
        let tasks = self
            .tasks
            .lock()
            .map(|mut t| std::mem::take(&mut *t))
            .unwrap_or_default();
        for t in tasks {
            let _ = t.await;
        }
    }
}
