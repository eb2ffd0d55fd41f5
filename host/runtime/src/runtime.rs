//! [`Runtime`]: the facade that ties the engine, linker, cache, validation and instance pools together.

use std::sync::Arc;
use std::time::{Duration, Instant};

use sha2::{Digest, Sha256};
use wasmtime::Engine;
use wasmtime::component::{Component, HasSelf, Linker};

use super::bindings::v0_1::{self, BuyerPre, RedactorPre};
use super::cache::ArtifactCache;
use super::component::{BinaryKind, one_line, sniff, to_component};
use super::config::RuntimeConfig;
use super::engine::{EpochTicker, build_engine};
use super::error::LoadError;
use super::instance::Instance;
use super::pool::{BuyerPlugin, RedactorPlugin};
use super::sandbox::StoreState;
pub use super::validate::World;
use super::validate::validate;
use pingpost_model::clock::{SharedClock, SystemClock};

/// What the runtime's plugins share: the engine, its epoch ticker, the config and the clock. Plugins hold it, so
/// the ticker keeps enforcing deadlines as long as any plugin is alive.
#[derive(Debug)]
pub(crate) struct Shared {
    pub engine: Engine,
    pub config: RuntimeConfig,
    pub clock: SharedClock,
    _ticker: EpochTicker,
}

/// The plugin runtime: loads plugins and makes per-campaign buyers and per-publisher redactors from them.
pub struct Runtime {
    shared: Arc<Shared>,
    linker: Linker<StoreState>,
    cache: Option<ArtifactCache>,
}

/// How a load went: from the artifact cache or compiled, and how long it took.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
pub struct LoadReport {
    /// The compiled artifact came from the on-disk cache.
    pub from_cache: bool,
    /// Time spent encoding and compiling (zero on a cache hit).
    #[serde(serialize_with = "micros")]
    pub compile_time: Duration,
    /// Time of the whole load.
    #[serde(serialize_with = "micros")]
    pub total_time: Duration,
}

fn micros<S: serde::Serializer>(d: &Duration, s: S) -> Result<S::Ok, S::Error> {
    s.serialize_u64(d.as_micros() as u64)
}

/// A plugin's pre-instance for its world.
#[derive(Clone)]
pub(crate) enum PluginPre {
    Buyer(BuyerPre<StoreState>),
    Redactor(RedactorPre<StoreState>),
}

/// A loaded, validated and compiled plugin module. Campaigns get their own instances of it through
/// [`Runtime::buyer`] / [`Runtime::redactor`].
pub struct Plugin {
    id: String,
    world: World,
    contract_version: String,
    imports: Vec<String>,
    size_bytes: usize,
    core_module: bool,
    load: LoadReport,
    pub(crate) pre: PluginPre,
    pub(crate) shared: Arc<Shared>,
}

impl std::fmt::Debug for Plugin {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Plugin")
            .field("id", &self.id)
            .field("world", &self.world)
            .field("contract_version", &self.contract_version)
            .field("imports", &self.imports)
            .field("size_bytes", &self.size_bytes)
            .finish_non_exhaustive()
    }
}

impl Plugin {
    /// Instantiates the plugin once under the runtime's limits (not configured, then dropped): an upload whose static
    /// memory, data segments, tables or instances do not fit the limits is refused at upload, not at activation.
    pub fn check_instantiates(&self) -> Result<(), LoadError> {
        let (engine, limits) = (&self.shared.engine, &self.shared.config.limits);
        let checked = match &self.pre {
            PluginPre::Buyer(pre) => Instance::<v0_1::Buyer>::check(engine, pre, limits),
            PluginPre::Redactor(pre) => Instance::<v0_1::Redactor>::check(engine, pre, limits),
        };
        checked.map_err(|error| LoadError::FirstInstance { error })
    }

    /// The sha256 of the uploaded bytes, hex.
    pub fn id(&self) -> &str {
        &self.id
    }

    /// The contract world the plugin implements.
    pub fn world(&self) -> World {
        self.world
    }

    /// The contract version the plugin was built against, e.g. `0.1.0`.
    pub fn contract_version(&self) -> &str {
        &self.contract_version
    }

    /// Everything the plugin imports (only contract interfaces, or it would not have loaded).
    pub fn imports(&self) -> &[String] {
        &self.imports
    }

    /// Size of the uploaded bytes.
    pub fn size_bytes(&self) -> usize {
        self.size_bytes
    }

    /// Whether the upload was a core module that the host encoded into a component.
    pub fn was_core_module(&self) -> bool {
        self.core_module
    }

    /// How the load went.
    pub fn load_report(&self) -> LoadReport {
        self.load
    }
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
        v0_1::types::add_to_linker::<_, HasSelf<_>>(&mut linker, |state: &mut StoreState| state)
            .and_then(|()| v0_1::host::add_to_linker::<_, HasSelf<_>>(&mut linker, |state: &mut StoreState| state))
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
        let contract = validate(engine, &component, v0_1::VERSION)?;
        let mismatch =
            |e: wasmtime::Error| LoadError::InterfaceMismatch { host: v0_1::VERSION.into(), reason: one_line(&e) };
        let instance_pre = self.linker.instantiate_pre(&component).map_err(mismatch)?;
        let pre = match contract.world {
            World::Buyer => PluginPre::Buyer(BuyerPre::new(instance_pre).map_err(mismatch)?),
            World::Redactor => PluginPre::Redactor(RedactorPre::new(instance_pre).map_err(mismatch)?),
        };
        // Only a component that passed validation is worth caching.
        if let (false, Some(cache), Some(key)) = (from_cache, &self.cache, &cache_key) {
            cache.put(key, &component);
        }
        Ok(Arc::new(Plugin {
            id,
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
