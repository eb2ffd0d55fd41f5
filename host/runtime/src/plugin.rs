//! A loaded plugin: its validated, compiled component pre-instantiated for its world, with what its load reported.
//! Every campaign (or publisher) that runs it gets its own instances of it (`pool.rs`).

use std::sync::Arc;
use std::time::Duration;

use wasmtime::Engine;

use super::bindings::{v0_1, v0_2};
use super::config::RuntimeConfig;
use super::engine::EpochTicker;
use super::error::LoadError;
use super::instance::Instance;
use super::sandbox::StoreState;
use super::validate::World;
use pingpost_model::clock::SharedClock;

/// What the runtime's plugins share: the engine, its epoch ticker, the config and the clock. Plugins hold it, so
/// the ticker keeps enforcing deadlines as long as any plugin is alive.
#[derive(Debug)]
pub(crate) struct Shared {
    pub engine: Engine,
    pub config: RuntimeConfig,
    pub clock: SharedClock,
    /// Held, never read: deadlines are enforced while any plugin lives.
    pub _ticker: EpochTicker,
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

/// One value per contract version the host runs: a plugin's pre-instance or pool in the bindings of its version.
#[derive(Clone)]
pub(crate) enum Versioned<A, B> {
    V0_1(A),
    V0_2(B),
}

/// Evaluates `$body` with `$bound` bound to whichever version `$value` holds (the versions' types differ, so the
/// body is compiled once per version).
macro_rules! each_version {
    ($value:expr, $bound:ident => $body:expr) => {
        match $value {
            $crate::plugin::Versioned::V0_1($bound) => $body,
            $crate::plugin::Versioned::V0_2($bound) => $body,
        }
    };
}
pub(crate) use each_version;

/// A buyer's pre-instance, in the bindings of its contract version.
pub(crate) type BuyerPre = Versioned<v0_1::BuyerPre<StoreState>, v0_2::BuyerPre<StoreState>>;
/// A redactor's pre-instance, in the bindings of its contract version.
pub(crate) type RedactorPre = Versioned<v0_1::RedactorPre<StoreState>, v0_2::RedactorPre<StoreState>>;

/// A plugin's pre-instance for its world.
#[derive(Clone)]
pub(crate) enum PluginPre {
    Buyer(BuyerPre),
    Redactor(RedactorPre),
}

/// A loaded, validated and compiled plugin module. Campaigns get their own instances of it through
/// [`Runtime::buyer`](super::Runtime::buyer) / [`Runtime::redactor`](super::Runtime::redactor).
pub struct Plugin {
    pub(crate) id: String,
    pub(crate) sha256: [u8; 32],
    pub(crate) world: World,
    pub(crate) contract_version: String,
    pub(crate) imports: Vec<String>,
    pub(crate) size_bytes: usize,
    pub(crate) core_module: bool,
    pub(crate) load: LoadReport,
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
            PluginPre::Buyer(Versioned::V0_1(pre)) => Instance::<v0_1::Buyer>::check(engine, pre, limits),
            PluginPre::Buyer(Versioned::V0_2(pre)) => Instance::<v0_2::Buyer>::check(engine, pre, limits),
            PluginPre::Redactor(Versioned::V0_1(pre)) => Instance::<v0_1::Redactor>::check(engine, pre, limits),
            PluginPre::Redactor(Versioned::V0_2(pre)) => Instance::<v0_2::Redactor>::check(engine, pre, limits),
        };
        checked.map_err(|error| LoadError::FirstInstance { error })
    }

    /// The sha256 of the uploaded bytes, hex.
    pub fn id(&self) -> &str {
        &self.id
    }

    /// The sha256 of the uploaded bytes.
    pub fn sha256(&self) -> &[u8; 32] {
        &self.sha256
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
