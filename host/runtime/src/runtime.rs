//! [`Runtime`]: ties the engine, linker, cache and validation together: it loads uploads into [`Plugin`]s and makes
//! each campaign's buyer and each publisher's redactor from them.

use std::sync::Arc;
use std::time::{Duration, Instant};

use sha2::{Digest, Sha256};
use wasmtime::Engine;
use wasmtime::component::{Component, HasSelf, Linker};

use super::bindings::{VERSIONS, v0_1, v0_2};
use super::cache::ArtifactCache;
use super::component::{BinaryKind, one_line, sniff, to_component};
use super::config::RuntimeConfig;
use super::engine::{EpochTicker, build_engine};
use super::error::LoadError;
use super::plugin::{LoadReport, Plugin, PluginPre, Shared, Versioned};
use super::pool::{BuyerPlugin, RedactorPlugin};
use super::sandbox::StoreState;
use super::validate::{World, validate};
use pingpost_model::clock::{SharedClock, SystemClock};

/// The plugin runtime: loads plugins and makes per-campaign buyers and per-publisher redactors from them.
pub struct Runtime {
    shared: Arc<Shared>,
    linker: Linker<StoreState>,
    cache: Option<ArtifactCache>,
}

/// The store state the generated `add_to_linker`s reach the host implementation through.
fn state(state: &mut StoreState) -> &mut StoreState {
    state
}

impl Runtime {
    /// A runtime on the system clock.
    pub fn new(config: RuntimeConfig) -> Result<Self, LoadError> {
        Runtime::with_clock(config, Arc::new(SystemClock))
    }

    /// A runtime whose breakers read time from `clock`.
    pub fn with_clock(config: RuntimeConfig, clock: SharedClock) -> Result<Self, LoadError> {
        let engine = build_engine(&config)?;
        let mut linker = Linker::new(&engine);
        // Every version's imports in one linker: their names carry the version (`pingpost:plugin/host@0.1.0`).
        v0_1::types::add_to_linker::<_, HasSelf<_>>(&mut linker, state)
            .and_then(|()| v0_1::host::add_to_linker::<_, HasSelf<_>>(&mut linker, state))
            .and_then(|()| v0_2::types::add_to_linker::<_, HasSelf<_>>(&mut linker, state))
            .and_then(|()| v0_2::host::add_to_linker::<_, HasSelf<_>>(&mut linker, state))
            .map_err(|e| LoadError::Engine { reason: one_line(&e) })?;
        let cache = match &config.cache_dir {
            Some(dir) => Some(
                ArtifactCache::open(dir, &engine, config.limits.fuel.is_some())
                    .map_err(|e| LoadError::Engine { reason: format!("cache dir {}: {e}", dir.display()) })?,
            ),
            None => None,
        };
        let ticker = EpochTicker::start(engine.clone())?;
        Ok(Runtime { shared: Arc::new(Shared { engine, config, clock, _ticker: ticker }), linker, cache })
    }

    /// The runtime's configuration.
    pub fn config(&self) -> &RuntimeConfig {
        &self.shared.config
    }

    /// The wasmtime engine (for benchmarks and tools).
    pub fn engine(&self) -> &Engine {
        &self.shared.engine
    }

    /// Validates and compiles uploaded bytes (a component, or a core module built with pingpost-sdk), taking the
    /// compiled artifact from the cache when it holds one.
    pub fn load(&self, bytes: &[u8]) -> Result<Arc<Plugin>, LoadError> {
        let started = Instant::now();
        let kind = sniff(bytes)?;
        let digest = Sha256::digest(bytes);
        let id = hex::encode(digest);
        let engine = &self.shared.engine;
        let cache_key = self.cache.as_ref().map(|cache| cache.key(&digest));
        let cached = match (&self.cache, &cache_key) {
            (Some(cache), Some(key)) => cache.get(engine, key),
            _ => None,
        };
        let from_cache = cached.is_some();
        let mut compile_time = Duration::ZERO;
        let component = match cached {
            Some(component) => component,
            None => {
                let compiling = Instant::now();
                let component_bytes = to_component(bytes)?;
                let component = Component::new(engine, &component_bytes)
                    .map_err(|e| LoadError::Compile { reason: one_line(&e) })?;
                compile_time = compiling.elapsed();
                component
            }
        };
        let contract = validate(engine, &component, &VERSIONS)?;
        let host = contract.host_version;
        let mismatch = |e: wasmtime::Error| LoadError::InterfaceMismatch { host: host.into(), reason: one_line(&e) };
        let instance_pre = self.linker.instantiate_pre(&component).map_err(mismatch)?;
        let pre = match (contract.world, host) {
            (World::Buyer, v0_1::VERSION) => {
                PluginPre::Buyer(Versioned::V0_1(v0_1::BuyerPre::new(instance_pre).map_err(mismatch)?))
            }
            (World::Buyer, v0_2::VERSION) => {
                PluginPre::Buyer(Versioned::V0_2(v0_2::BuyerPre::new(instance_pre).map_err(mismatch)?))
            }
            (World::Redactor, v0_1::VERSION) => {
                PluginPre::Redactor(Versioned::V0_1(v0_1::RedactorPre::new(instance_pre).map_err(mismatch)?))
            }
            (World::Redactor, v0_2::VERSION) => {
                PluginPre::Redactor(Versioned::V0_2(v0_2::RedactorPre::new(instance_pre).map_err(mismatch)?))
            }
            // `validate` answers only versions of `VERSIONS`, each with its arm above.
            (_, other) => return Err(LoadError::ContractVersion { plugin: contract.version, host: other.to_owned() }),
        };
        // Only a component that passed validation is worth caching.
        if let (false, Some(cache), Some(key)) = (from_cache, &self.cache, &cache_key) {
            cache.put(key, &component);
        }
        Ok(Arc::new(Plugin {
            id,
            sha256: digest.into(),
            world: contract.world,
            contract_version: contract.version,
            imports: contract.imports,
            size_bytes: bytes.len(),
            core_module: kind == BinaryKind::CoreModule,
            load: LoadReport { from_cache, compile_time, total_time: started.elapsed() },
            pre,
            shared: self.shared.clone(),
        }))
    }

    /// Deletes `plugin`'s compiled artifact from the cache (an upload that was refused keeps nothing on disk); a
    /// later load of the same bytes compiles them again.
    pub fn forget_artifact(&self, plugin: &Plugin) {
        self.forget_artifact_of(&plugin.id);
    }

    /// Removes the cached compiled artifact of the upload whose SHA-256 (hex) is `sha256`, if there is one.
    pub fn forget_artifact_of(&self, sha256: &str) {
        if let (Some(cache), Ok(digest)) = (&self.cache, hex::decode(sha256)) {
            cache.remove(&cache.key(&digest));
        }
    }

    /// Loads many uploads at once, spread over the machine's cores (a restart loading every campaign's plugin).
    /// The results are in the order of `uploads`; one bad upload fails only its own entry.
    pub fn load_all(&self, uploads: &[&[u8]]) -> Vec<Result<Arc<Plugin>, LoadError>> {
        let threads = std::thread::available_parallelism().map_or(1, usize::from).min(uploads.len()).max(1);
        let chunk = uploads.len().div_ceil(threads).max(1);
        std::thread::scope(|scope| {
            let workers: Vec<_> = uploads
                .chunks(chunk)
                .map(|part| scope.spawn(move || part.iter().map(|bytes| self.load(bytes)).collect::<Vec<_>>()))
                .collect();
            workers
                .into_iter()
                .flat_map(|worker| worker.join().unwrap_or_else(|panic| std::panic::resume_unwind(panic)))
                .collect()
        })
    }

    /// A campaign's buyer: `plugin` with the campaign's config, on instances no other campaign uses.
    pub fn buyer(
        &self,
        plugin: Arc<Plugin>,
        campaign_id: impl Into<String>,
        config: impl Into<String>,
    ) -> Result<BuyerPlugin, LoadError> {
        BuyerPlugin::new(plugin, campaign_id.into(), config.into())
    }

    /// A publisher's redactor: `plugin` with the publisher's config, on instances no other publisher uses.
    pub fn redactor(
        &self,
        plugin: Arc<Plugin>,
        publisher_id: impl Into<String>,
        config: impl Into<String>,
    ) -> Result<RedactorPlugin, LoadError> {
        RedactorPlugin::new(plugin, publisher_id.into(), config.into())
    }
}
