//! `pingpost serve`: the exchange as an HTTP service — publishers send leads, buyers read what they bought and upload
//! their plugins, operators manage the exchange and hot-load plugin versions. See docs/ARCHITECTURE.md "Service".
//!
//! One file per job: [`settings`] (the config file and `PINGPOST_*` variables), [`state`] (the live exchange and
//! the only way it changes), [`auth`] (who is asking), [`keys`] (API keys), [`error`] (the JSON error body),
//! [`api`] (the routes), [`seed`] (first start: the registry from the config file), [`metrics`] (Prometheus),
//! [`outbox`] (webhook deliveries), [`retention`] (the PII purge), [`hold_sweep`] (expired quote holds), [`listener`]
//! (connections and their limits), [`admission`] (load shedding).

pub mod admission;
pub mod api;
pub mod auth;
pub mod error;
pub mod hold_sweep;
pub mod keys;
pub mod listener;
pub mod metrics;
pub mod openapi;
pub mod outbox;
pub mod retention;
pub mod seed;
pub mod settings;
pub mod state;

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use anyhow::{Context, Result};
use tokio::sync::watch;
use tokio::task::JoinHandle;

use keys::{hash_key, new_key};
use metrics::Metrics;
use outbox::{OutboxHandle, OutboxWorker, RandomJitter};
use pingpost_engine::{EngineSettings, HttpBuyerClient, IdSource, RandomIds};
use pingpost_model::clock::{SharedClock, SystemClock};
use pingpost_runtime::{Runtime, RuntimeConfig};
use pingpost_sqlite::SqliteStore;
use pingpost_sqlite::registry::{Principal, Role};
use settings::ServeConfig;
use state::{AppState, StateParts};

/// What a service is started with besides its config: time and randomness, injected so tests are deterministic.
#[derive(Debug, Clone)]
pub struct ServiceParts {
    pub clock: SharedClock,
    pub ids: Arc<dyn IdSource>,
    pub runtime: RuntimeConfig,
}

impl Default for ServiceParts {
    fn default() -> Self {
        ServiceParts { clock: Arc::new(SystemClock), ids: Arc::new(RandomIds), runtime: RuntimeConfig::default() }
    }
}

/// A running service: the API on [`RunningService::addr`], the outbox worker and the retention job.
pub struct RunningService {
    /// Where the API listens (the real port when the config asked for port 0).
    pub addr: SocketAddr,
    pub state: Arc<AppState>,
    /// The operator key made on this start because the registry had no operator (shown once); `None` otherwise.
    pub generated_operator_key: Option<String>,
    stop: watch::Sender<bool>,
    server: JoinHandle<()>,
    outbox: OutboxHandle,
    retention: JoinHandle<()>,
    holds: JoinHandle<()>,
}

impl RunningService {
    /// Opens the database in the data directory (migrating it), releases reservations a crash left pending, seeds
    /// an empty registry from the config, builds the exchange, and starts the API, the outbox and the retention job.
    pub async fn start(config: ServeConfig, parts: ServiceParts) -> Result<Self> {
        let settings = config.settings.clone();
        std::fs::create_dir_all(&settings.data_dir)
            .with_context(|| format!("creating the data directory {}", settings.data_dir.display()))?;
        let db = settings.database_path();
        let store = Arc::new(
            SqliteStore::open_with(&db, settings.store_options())
                .with_context(|| format!("opening {}", db.display()))?,
        );
        let now = parts.clock.now_unix_ms();
        // One exchange process owns the database: whatever is still pending at start was left by a crash.
        let released = store.release_stale_reservations(now + 1).context("releasing stale reservations")?;
        if released > 0 {
            tracing::warn!(released, "released cap reservations left pending by an earlier run");
        }
        let reopened = store.reopen_interrupted_posts().context("reopening interrupted posts")?;
        if reopened > 0 {
            tracing::warn!(reopened, "two-step posts cut short by an earlier run are open again for their retry");
        }
        let runtime_config = RuntimeConfig { cache_dir: Some(settings.cache_dir()), ..parts.runtime };
        let runtime =
            Arc::new(Runtime::with_clock(runtime_config, parts.clock.clone()).context("starting the plugin runtime")?);
        let seeded = {
            let (store, runtime, config) = (store.clone(), runtime.clone(), config.clone());
            tokio::task::spawn_blocking(move || seed::seed(&store, &runtime, &config, now))
                .await
                .context("seeding the registry")??
        };
        if seeded != seed::Seeded::default() {
            tracing::info!(?seeded, "registry seeded from the config file");
        }
        let generated_operator_key = ensure_operator(&store, now)?;
        let http = HttpBuyerClient::with_default_client().context("building the HTTP client")?;
        let metrics = Arc::new(Metrics::new());
        let recorder = pingpost_sqlite::recorder::Recorder::new(store.clone());
        let state_parts = StateParts {
            settings: settings.clone(),
            store: store.clone(),
            runtime,
            clock: parts.clock.clone(),
            ids: parts.ids,
            http: http.clone(),
            engine: EngineSettings { max_bid_cents: settings.max_bid_cents, ..EngineSettings::default() },
            metrics: metrics.clone(),
            recorder,
        };
        let state = Arc::new(
            tokio::task::spawn_blocking(move || AppState::new(state_parts))
                .await
                .context("building the exchange")?
                .context("building the exchange from the registry")?,
        );
        // Requests the earlier run was still running are answered from what it stored, or released for a retry.
        let resolved = api::idempotency::resolve_in_progress(&state, i64::MAX)
            .await
            .map_err(|e| anyhow::anyhow!("resolving requests left in progress: {}", e.body()))?;
        if resolved != api::idempotency::Resolved::default() {
            tracing::warn!(?resolved, "resolved idempotent requests left in progress by an earlier run");
        }

        let listener = tokio::net::TcpListener::bind(settings.listen)
            .await
            .with_context(|| format!("listening on {}", settings.listen))?;
        let addr = listener.local_addr().context("reading the listening address")?;
        let (stop, stopped) = watch::channel(false);
        let app = api::router(state.clone());
        let limits = listener::ConnectionLimits {
            max_connections: listener::fitting_connection_cap(settings.max_connections),
            header_read_timeout: (settings.header_read_timeout_ms > 0)
                .then(|| Duration::from_millis(settings.header_read_timeout_ms)),
        };
        if limits.max_connections < settings.max_connections {
            tracing::warn!(
                wanted = settings.max_connections,
                cap = limits.max_connections,
                "the file-descriptor limit (ulimit -n) lowers the connection cap"
            );
        }
        let server = tokio::spawn(listener::serve(listener, app, limits, stopped.clone()));
        let outbox = OutboxWorker::new(store.clone(), http, parts.clock.clone(), settings.outbox.worker_settings())
            .with_jitter(Arc::new(RandomJitter::from_os_rng()))
            .with_metrics(metrics)
            .spawn();
        let schedule = retention::RetentionSchedule {
            retention_days: settings.pii_retention_days,
            purge_interval: Duration::from_secs(settings.purge_interval_secs),
            ping_sweep_interval: Duration::from_secs(settings.expired_ping_sweep_secs),
        };
        let holds = hold_sweep::spawn(store.clone(), parts.clock.clone(), stopped.clone());
        let retention = retention::spawn(store, parts.clock, schedule, stopped);
        let _probe = state.admission.spawn_probe(stop.subscribe());
        tracing::info!(%addr, "pingpost is serving");
        Ok(RunningService { addr, state, generated_operator_key, stop, server, outbox, retention, holds })
    }

    /// Stops taking requests, lets those in flight finish, and stops the workers.
    pub async fn shutdown(self) -> Result<()> {
        let _ = self.stop.send(true);
        self.state.recorder.flush().await;
        self.outbox.shutdown().await;
        let _ = self.retention.await;
        let _ = self.holds.await;
        self.server.await.context("the server task")?;
        Ok(())
    }

    /// Serves until Ctrl-C (or SIGTERM), then shuts down gracefully.
    pub async fn run_until_signal(self) -> Result<()> {
        shutdown_signal().await;
        tracing::info!("shutting down");
        self.shutdown().await
    }
}

/// Makes an operator key when the registry has none, so a fresh exchange is reachable (and nothing is without a
/// key). Returned once, to be shown once.
fn ensure_operator(store: &SqliteStore, now_unix_ms: i64) -> Result<Option<String>> {
    let keys = store.keys()?;
    if keys.iter().any(|k| k.principal.role == Role::Operator && k.revoked_at_unix_ms.is_none()) {
        return Ok(None);
    }
    let key = new_key();
    let principal = Principal { id: format!("operator:generated-{now_unix_ms}"), role: Role::Operator, owner_id: None };
    store.insert_principal(&principal, &hash_key(&key), now_unix_ms)?;
    Ok(Some(key))
}

async fn shutdown_signal() {
    let ctrl_c = async {
        let _ = tokio::signal::ctrl_c().await;
    };
    #[cfg(unix)]
    let terminate = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut signal) => {
                signal.recv().await;
            }
            Err(_) => std::future::pending::<()>().await,
        }
    };
    #[cfg(not(unix))]
    let terminate = std::future::pending::<()>();
    tokio::select! {
        _ = ctrl_c => {}
        _ = terminate => {}
    }
}
