//! [`AppState`]: what every request handler shares — the live [`Exchange`] behind an `ArcSwap`, the plugin
//! runtime, the store, the keys, the metrics — and the one way the exchange changes: [`AppState::change`].
//!
//! Hot swap: a change (a campaign edited, a plugin version activated) builds a whole new [`Exchange`] from the
//! registry off to the side — plugins loaded and validated, every campaign's instance configured — and only when
//! that succeeded saves the registry and swaps the exchange in. An auction in flight keeps the `Arc` of the exchange
//! it started with and finishes on it; the next request gets the new one. Nothing is restarted and no request fails.
//! Changes are serialised by one async mutex, so two operators' edits never lose each other.

use std::collections::HashMap;
use std::num::NonZeroU32;
use std::sync::{Arc, Mutex};

use arc_swap::ArcSwap;
use governor::{DefaultKeyedRateLimiter, Quota, RateLimiter};

use super::admission::{Admission, AdmissionLimits};
use super::error::ApiError;
use super::keys::KeyRing;
use super::metrics::Metrics;
use super::settings::ServeSettings;
use pingpost_engine::{
    BuildError, EngineSettings, Exchange, ExchangeBuilder, ExchangeConfig, ExchangeParts, HttpBuyerClient, IdSource,
    StoreError,
};
use pingpost_model::clock::SharedClock;
use pingpost_runtime::{LoadError, Plugin, Runtime, World};
use pingpost_sqlite::SqliteStore;
use pingpost_sqlite::recorder::Recorder;
use pingpost_sqlite::registry::{
    DeletedVersion, PluginConflict, PluginQuota, PluginRecord, PluginUpload, Principal, Role, VersionDeleteError,
};

/// Everything the handlers share.
pub struct AppState {
    pub settings: ServeSettings,
    pub store: Arc<SqliteStore>,
    pub runtime: Arc<Runtime>,
    pub clock: SharedClock,
    pub ids: Arc<dyn IdSource>,
    pub http: HttpBuyerClient,
    pub engine: EngineSettings,
    pub keys: KeyRing,
    pub metrics: Arc<Metrics>,
    /// Writes auction records off the request path.
    pub recorder: Recorder,
    /// Leads, pings and posts per publisher.
    pub publisher_limiter: DefaultKeyedRateLimiter<String>,
    /// Plugin uploads per uploading principal.
    upload_limiter: DefaultKeyedRateLimiter<String>,
    /// Which leads the exchange can take now.
    pub admission: Admission,
    /// When the store was last probed with a write while it could not write.
    last_probe: Mutex<Option<std::time::Instant>>,
    exchange: ArcSwap<Exchange>,
    changes: tokio::sync::Mutex<()>,
    /// Loaded plugins by (name, version), so a rebuild does not reload unchanged ones.
    loaded: Mutex<HashMap<(String, u32), Arc<Plugin>>>,
}

impl std::fmt::Debug for AppState {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("AppState").field("settings", &self.settings).finish_non_exhaustive()
    }
}

/// Why a change to the exchange was refused; nothing was saved.
#[derive(Debug, thiserror::Error)]
pub enum ChangeError {
    #[error("plugin {0:?} does not exist")]
    UnknownPlugin(String),
    #[error("plugin {0:?} has no active version")]
    NoActiveVersion(String),
    #[error("plugin {name:?} has no version {version}")]
    UnknownVersion { name: String, version: u32 },
    #[error("plugin {name:?} version {version} was refused: {source}")]
    Load {
        name: String,
        version: u32,
        #[source]
        source: LoadError,
    },
    #[error(transparent)]
    Build(#[from] BuildError),
    #[error(transparent)]
    Store(#[from] pingpost_engine::store::StoreError),
}

impl From<ChangeError> for ApiError {
    fn from(error: ChangeError) -> Self {
        match error {
            ChangeError::UnknownPlugin(_) | ChangeError::UnknownVersion { .. } => {
                ApiError::not_found(error.to_string())
            }
            ChangeError::Build(BuildError::Field { field, .. }) => {
                ApiError::new(axum::http::StatusCode::UNPROCESSABLE_ENTITY, "invalid_field", error.to_string())
                    .with_field(field)
            }
            ChangeError::NoActiveVersion(_) | ChangeError::Load { .. } | ChangeError::Build(_) => {
                ApiError::new(axum::http::StatusCode::UNPROCESSABLE_ENTITY, "refused", error.to_string())
            }
            ChangeError::Store(e) => ApiError::from(e),
        }
    }
}

/// What [`AppState::new`] is given.
pub struct StateParts {
    pub settings: ServeSettings,
    pub store: Arc<SqliteStore>,
    pub runtime: Arc<Runtime>,
    pub clock: SharedClock,
    pub ids: Arc<dyn IdSource>,
    pub http: HttpBuyerClient,
    pub engine: EngineSettings,
    pub metrics: Arc<Metrics>,
    pub recorder: Recorder,
}

/// A plugin version as uploaded and stored.
#[derive(Debug, Clone, serde::Serialize, utoipa::ToSchema)]
pub struct Uploaded {
    pub name: String,
    pub version: u32,
    pub world: World,
    pub sha256: String,
    pub size_bytes: usize,
    pub contract_version: String,
    /// The compiled artifact came from the cache (the same bytes were loaded before).
    pub from_cache: bool,
    /// False when the same bytes were already this version of the plugin.
    #[serde(skip)]
    pub new_version: bool,
}

impl AppState {
    /// The state with the exchange built from the registry.
    pub fn new(parts: StateParts) -> Result<Self, ChangeError> {
        let keys = KeyRing::load(&parts.store)?;
        let settings = parts.settings;
        let rate = NonZeroU32::new(settings.publisher_requests_per_second.max(1)).expect("max(1) is not zero");
        let burst = NonZeroU32::new(settings.publisher_burst.max(1)).expect("max(1) is not zero");
        let empty = ExchangeBuilder::new(ExchangeConfig::default()).build(
            &parts.runtime,
            ExchangeParts {
                clock: parts.clock.clone(),
                ids: parts.ids.clone(),
                store: parts.store.clone(),
                http: parts.http.clone(),
                settings: parts.engine,
            },
        )?;
        let state = AppState {
            publisher_limiter: RateLimiter::keyed(Quota::per_second(rate).allow_burst(burst)),
            upload_limiter: RateLimiter::keyed(upload_quota(settings.plugin_uploads_per_minute)),
            last_probe: Mutex::new(None),
            admission: Admission::new(AdmissionLimits {
                max_in_flight: settings.max_auctions_in_flight.max(1),
                max_scheduling_delay: std::time::Duration::from_millis(settings.max_scheduling_delay_ms),
            }),
            settings,
            store: parts.store,
            runtime: parts.runtime,
            clock: parts.clock,
            ids: parts.ids,
            http: parts.http,
            engine: parts.engine,
            keys,
            metrics: parts.metrics,
            recorder: parts.recorder,
            exchange: ArcSwap::from_pointee(empty),
            changes: tokio::sync::Mutex::new(()),
            loaded: Mutex::new(HashMap::new()),
        };
        let config = state.store.registry_config()?;
        let exchange = state.build(&config, &HashMap::new())?;
        state.exchange.store(Arc::new(exchange));
        Ok(state)
    }

    /// The live exchange. Hold the `Arc` for the whole auction: a swap meanwhile does not affect it.
    pub fn exchange(&self) -> Arc<Exchange> {
        self.exchange.load_full()
    }

    /// Now, from the injected clock.
    pub fn now(&self) -> i64 {
        self.clock.now_unix_ms()
    }

    /// Edits the exchange's configuration: `edit` changes a copy of the registry's, the exchange is rebuilt from it
    /// (refused with the builder's error if it does not build), then the registry is saved and the exchange swapped.
    pub async fn change<T: Send + 'static>(
        self: &Arc<Self>,
        edit: impl FnOnce(&mut ExchangeConfig) -> Result<T, ApiError> + Send + 'static,
    ) -> Result<T, ApiError> {
        self.change_with(None, edit).await
    }

    /// [`AppState::change`] that also makes `activate.1` the live version of plugin `activate.0` (recorded as done by
    /// `activate.2`): both take effect together, or neither does.
    pub async fn change_with<T: Send + 'static>(
        self: &Arc<Self>,
        activate: Option<(String, u32, String)>,
        edit: impl FnOnce(&mut ExchangeConfig) -> Result<T, ApiError> + Send + 'static,
    ) -> Result<T, ApiError> {
        let activation = activate.map(|(name, version, by)| (name, Some(version), by));
        self.change_activating(activation, edit).await
    }

    /// [`AppState::change_with`], where a version of `None` is the plugin's rollback target, read under the same
    /// lock as the change so that no other change (an upload, another rollback) comes between.
    async fn change_activating<T: Send + 'static>(
        self: &Arc<Self>,
        activate: Option<(String, Option<u32>, String)>,
        edit: impl FnOnce(&mut ExchangeConfig) -> Result<T, ApiError> + Send + 'static,
    ) -> Result<T, ApiError> {
        let _one_at_a_time = self.changes.lock().await;
        let state = self.clone();
        blocking(move || {
            let activate = match activate {
                Some((name, Some(version), by)) => Some((name, version, by)),
                Some((name, None, by)) => {
                    let target = state.store.rollback_target(&name)?.ok_or_else(|| {
                        ApiError::conflict(
                            "nothing_to_roll_back",
                            format!("plugin {name:?} has no earlier active version"),
                        )
                    })?;
                    Some((name, target, by))
                }
                None => None,
            };
            let mut config = state.store.registry_config()?;
            let value = edit(&mut config)?;
            let overrides: HashMap<String, u32> =
                activate.iter().map(|(name, version, _)| (name.clone(), *version)).collect();
            let exchange = state.build(&config, &overrides)?;
            if let Some((name, version, by)) = &activate {
                state.store.activate_plugin(name, *version, by, state.now())?;
                tracing::info!(plugin = %name, version, by = %by, "plugin version activated");
            }
            state.store.save_registry_config(&config, state.now())?;
            state.exchange.store(Arc::new(exchange));
            Ok(value)
        })
        .await
    }

    /// Validates, compiles and instantiates an upload (once, under the runtime's limits), then stores it as the next
    /// version of plugin `name` (created, owned by `owner`, on its first upload). Does not activate it. Refused — and
    /// nothing kept, neither the version nor its compiled artifact — when it is not a plugin of `expected_world`,
    /// cannot instantiate within the limits, would pass the owner's quota of stored plugin bytes, or comes faster than
    /// the uploader's rate limit.
    pub async fn upload_plugin(
        self: &Arc<Self>,
        name: String,
        owner: (Role, Option<String>),
        expected_world: Option<World>,
        bytes: Vec<u8>,
        by: &Principal,
    ) -> Result<Uploaded, ApiError> {
        check_rate(&self.upload_limiter, &by.id)?;
        let state = self.clone();
        let by = by.id.clone();
        blocking(move || {
            let unprocessable = |code: &'static str, message: String| {
                ApiError::new(axum::http::StatusCode::UNPROCESSABLE_ENTITY, code, message)
            };
            let plugin = state.runtime.load(&bytes).map_err(|e| unprocessable("invalid_plugin", e.to_string()))?;
            // What this upload compiled is cached only if the upload is kept.
            let refuse = |error: ApiError| {
                if !plugin.load_report().from_cache {
                    state.runtime.forget_artifact(&plugin);
                }
                Err(error)
            };
            if let Some(expected) = expected_world.filter(|w| *w != plugin.world()) {
                let found = plugin.world();
                return refuse(unprocessable(
                    "wrong_world",
                    format!("expected a {expected:?} plugin, the upload is a {found:?} plugin"),
                ));
            }
            if let Err(error) = plugin.check_instantiates() {
                return refuse(unprocessable("plugin_cannot_instantiate", error.to_string()));
            }
            let quota = (owner.0 != Role::Operator).then_some(PluginQuota {
                bytes: state.settings.max_plugin_bytes_per_owner,
                versions_kept: state.settings.plugin_versions_kept,
            });
            let upload = PluginUpload {
                name: name.clone(),
                world: plugin.world(),
                owner_role: owner.0,
                owner_id: owner.1.clone(),
                sha256: plugin.id().to_owned(),
                wasm: bytes,
                uploaded_by: by,
                at_unix_ms: state.now(),
            };
            let added = match state.store.add_plugin_version(upload, quota) {
                Ok(Ok(added)) => added,
                Ok(Err(conflict @ PluginConflict::Quota { .. })) => {
                    return refuse(ApiError::conflict("plugin_quota_exceeded", format!("plugin {name:?}: {conflict}")));
                }
                Ok(Err(conflict)) => {
                    return refuse(ApiError::conflict("plugin_conflict", format!("plugin {name:?}: {conflict}")));
                }
                Err(error) => return refuse(error.into()),
            };
            state.remember(&name, added.version, plugin.clone());
            Ok(Uploaded {
                name,
                version: added.version,
                world: plugin.world(),
                sha256: plugin.id().to_owned(),
                size_bytes: plugin.size_bytes(),
                contract_version: plugin.contract_version().to_owned(),
                from_cache: plugin.load_report().from_cache,
                new_version: added.new,
            })
        })
        .await
    }

    /// [`AppState::upload_plugin`], then a hot swap to it with `edit` applied (a buyer's or a publisher's own
    /// upload). When the exchange does not build with it — e.g. the owner's config, which the new version's
    /// `configure` refuses — nothing changes and nothing of the upload is kept.
    pub async fn upload_and_activate(
        self: &Arc<Self>,
        name: String,
        owner: (Role, Option<String>),
        world: World,
        bytes: Vec<u8>,
        by: &Principal,
        edit: impl FnOnce(&mut ExchangeConfig) -> Result<(), ApiError> + Send + 'static,
    ) -> Result<Uploaded, ApiError> {
        let uploaded = self.upload_plugin(name.clone(), owner, Some(world), bytes, by).await?;
        let activate = Some((name.clone(), uploaded.version, by.id.clone()));
        if let Err(error) = self.change_with(activate, edit).await {
            if uploaded.new_version {
                self.discard(&name, uploaded.version).await;
            }
            return Err(error);
        }
        self.prune_versions(&name).await;
        Ok(uploaded)
    }

    /// Deletes plugin `name`'s versions older than its `server.plugin_versions_kept` newest (never the live one),
    /// with what the service holds of them: run after an upload is kept, so stored bytes and quotas stay bounded.
    pub async fn prune_versions(self: &Arc<Self>, name: &str) {
        let state = self.clone();
        let name = name.to_owned();
        let pruned = blocking(move || {
            let deleted = state.store.prune_plugin_versions(&name, state.settings.plugin_versions_kept)?;
            for version in &deleted {
                state.forget_version(&name, version);
            }
            if !deleted.is_empty() {
                let versions: Vec<u32> = deleted.iter().map(|d| d.version).collect();
                tracing::info!(plugin = %name, ?versions, "old plugin versions deleted");
            }
            Ok(())
        })
        .await;
        if let Err(error) = pruned {
            tracing::error!(error = %error.body(), "could not prune old plugin versions");
        }
    }

    /// Deletes version `version` of plugin `name` (refused while it is live) with what the service holds of it.
    pub async fn delete_version(self: &Arc<Self>, name: &str, version: u32) -> Result<(), ApiError> {
        let state = self.clone();
        let name = name.to_owned();
        blocking(move || match state.store.delete_plugin_version(&name, version)? {
            Ok(deleted) => {
                state.forget_version(&name, &deleted);
                tracing::info!(plugin = %name, version, "plugin version deleted");
                Ok(())
            }
            Err(VersionDeleteError::NotFound) => {
                Err(ApiError::not_found(format!("plugin {name:?} has no version {version}")))
            }
            Err(error @ VersionDeleteError::Live) => {
                Err(ApiError::conflict("plugin_version_live", format!("plugin {name:?} version {version}: {error}")))
            }
        })
        .await
    }

    /// Drops a deleted version's loaded plugin, and its compiled artifact when no version keeps those bytes.
    fn forget_version(&self, name: &str, deleted: &DeletedVersion) {
        self.loaded.lock().unwrap_or_else(|p| p.into_inner()).remove(&(name.to_owned(), deleted.version));
        if let Some(sha256) = &deleted.unused_sha256 {
            self.runtime.forget_artifact_of(sha256);
        }
    }

    /// Forgets a version just uploaded and refused: the stored version, the loaded plugin and (when no other version
    /// keeps its bytes) its compiled artifact.
    async fn discard(self: &Arc<Self>, name: &str, version: u32) {
        let state = self.clone();
        let name = name.to_owned();
        let discarded = blocking(move || {
            if let Some(deleted) = state.store.discard_plugin_version(&name, version)? {
                state.forget_version(&name, &deleted);
            }
            Ok(())
        })
        .await;
        if let Err(error) = discarded {
            tracing::error!(error = %error.body(), "could not discard a refused plugin upload");
        }
    }

    /// `Ok` while the store writes. While it cannot (a full disk), a probe write — at most one every 500 ms — says
    /// whether it can again; until it can, `503 store_unavailable` (the probe's success clears the failure).
    pub async fn store_writable(self: &Arc<Self>) -> Result<(), ApiError> {
        if self.store.write_failure().is_none() {
            return Ok(());
        }
        let due = {
            let mut last = self.last_probe.lock().unwrap_or_else(|p| p.into_inner());
            let due = last.is_none_or(|at| at.elapsed() >= std::time::Duration::from_millis(500));
            if due {
                *last = Some(std::time::Instant::now());
            }
            due
        };
        if due {
            let state = self.clone();
            let probed = blocking(move || Ok(state.store.probe_write(state.now())?)).await;
            if probed.is_ok() && self.store.write_failure().is_none() {
                tracing::info!("the store writes again");
                return Ok(());
            }
        }
        if let Some(error) = self.store.write_failure() {
            tracing::warn!(%error, "refusing requests while the store cannot write");
        }
        Err(ApiError::store_unavailable())
    }

    /// Makes `version` the live version of plugin `name`: a hot swap. Refused (and nothing changes) when the
    /// exchange does not build with it — e.g. a campaign's config that the new version's `configure` rejects.
    pub async fn activate_plugin(self: &Arc<Self>, name: String, version: u32, by: &Principal) -> Result<(), ApiError> {
        let record = self.plugin_record(&name)?;
        if !record.versions.iter().any(|v| v.version == version) {
            return Err(ChangeError::UnknownVersion { name, version }.into());
        }
        self.change_with(Some((name, version, by.id.clone())), |_| Ok(())).await
    }

    /// Goes back to the version that was live before the current one; a second rollback goes one further back.
    pub async fn rollback_plugin(self: &Arc<Self>, name: String, by: &Principal) -> Result<(), ApiError> {
        self.change_activating(Some((name, None, by.id.clone())), |_| Ok(())).await
    }

    /// Disables (the campaigns and publishers using it stop taking part) or re-enables a plugin.
    pub async fn set_plugin_disabled(self: &Arc<Self>, name: String, disabled: bool) -> Result<(), ApiError> {
        let _one_at_a_time = self.changes.lock().await;
        let state = self.clone();
        blocking(move || {
            state.plugin_record(&name)?;
            state.store.set_plugin_disabled(&name, disabled)?;
            let config = state.store.registry_config()?;
            match state.build(&config, &HashMap::new()) {
                Ok(exchange) => {
                    state.exchange.store(Arc::new(exchange));
                    Ok(())
                }
                Err(error) => {
                    state.store.set_plugin_disabled(&name, !disabled)?;
                    Err(error.into())
                }
            }
        })
        .await
    }

    /// A plugin's record, or 404.
    pub fn plugin_record(&self, name: &str) -> Result<PluginRecord, ApiError> {
        self.store.plugin(name)?.ok_or_else(|| ApiError::not_found(format!("plugin {name:?} does not exist")))
    }

    /// Builds an exchange from `config` with each plugin's live version (or the version in `overrides`). Publishers
    /// whose redactor is disabled are left out; campaigns whose plugin is disabled are kept but never pinged (their
    /// traces say `plugin_disabled`).
    fn build(&self, config: &ExchangeConfig, overrides: &HashMap<String, u32>) -> Result<Exchange, ChangeError> {
        let mut config = config.clone();
        let mut records = HashMap::new();
        for reference in config.plugin_refs() {
            let record = self.store.plugin(&reference)?.ok_or_else(|| ChangeError::UnknownPlugin(reference.clone()))?;
            records.insert(reference, record);
        }
        let disabled = |name: &str| records.get(name).is_some_and(|r| r.disabled);
        config.publishers.retain(|p| !disabled(&p.redactor));
        let mut builder = ExchangeBuilder::new(config.clone());
        for reference in config.plugin_refs() {
            if disabled(&reference) {
                builder = builder.disabled(reference.clone());
            }
            let record = &records[&reference];
            let version = overrides
                .get(&reference)
                .copied()
                .or(record.active_version)
                .ok_or_else(|| ChangeError::NoActiveVersion(reference.clone()))?;
            builder = builder.plugin(reference.clone(), self.loaded_plugin(&reference, version)?);
        }
        let parts = ExchangeParts {
            clock: self.clock.clone(),
            ids: self.ids.clone(),
            store: self.store.clone(),
            http: self.http.clone(),
            settings: self.engine,
        };
        Ok(builder.build(&self.runtime, parts)?)
    }

    /// Version `version` of plugin `name`, loaded once.
    fn loaded_plugin(&self, name: &str, version: u32) -> Result<Arc<Plugin>, ChangeError> {
        let key = (name.to_owned(), version);
        if let Some(plugin) = self.loaded.lock().unwrap_or_else(|p| p.into_inner()).get(&key) {
            return Ok(plugin.clone());
        }
        let bytes = self
            .store
            .plugin_wasm(name, version)?
            .ok_or_else(|| ChangeError::UnknownVersion { name: name.to_owned(), version })?;
        let plugin =
            self.runtime.load(&bytes).map_err(|source| ChangeError::Load { name: name.to_owned(), version, source })?;
        self.remember(name, version, plugin.clone());
        Ok(plugin)
    }

    fn remember(&self, name: &str, version: u32, plugin: Arc<Plugin>) {
        self.loaded.lock().unwrap_or_else(|p| p.into_inner()).insert((name.to_owned(), version), plugin);
    }
}

impl AppState {
    /// Runs `work` on the store on the blocking pool (SQLite calls block), its error as the API's.
    pub async fn on_store<T: Send + 'static>(
        self: &Arc<Self>,
        work: impl FnOnce(&SqliteStore) -> Result<T, StoreError> + Send + 'static,
    ) -> Result<T, ApiError> {
        let store = self.store.clone();
        blocking(move || Ok(work(&store)?)).await
    }
}

/// Runs blocking work (SQLite, compiling, configuring instances) off the async workers.
pub async fn blocking<T: Send + 'static>(
    work: impl FnOnce() -> Result<T, ApiError> + Send + 'static,
) -> Result<T, ApiError> {
    tokio::task::spawn_blocking(work).await.unwrap_or_else(|e| Err(ApiError::internal("a blocking task", e)))
}

/// `per_minute` uploads a minute, all of them at once at most.
fn upload_quota(per_minute: u32) -> Quota {
    let per_minute = NonZeroU32::new(per_minute.max(1)).unwrap_or(NonZeroU32::MIN);
    Quota::per_minute(per_minute).allow_burst(per_minute)
}

/// Takes one request of `key` from `limiter`, or refuses it `429 rate_limited` with the wait until the next one.
pub fn check_rate(limiter: &DefaultKeyedRateLimiter<String>, key: &str) -> Result<(), ApiError> {
    limiter.check_key(&key.to_owned()).map_err(|not_until| {
        let wait = not_until.wait_time_from(governor::clock::Clock::now(&governor::clock::DefaultClock::default()));
        ApiError::rate_limited(wait.as_secs_f64().ceil() as u64)
    })
}
