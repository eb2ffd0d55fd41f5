//! The plugin runtime: loads, validates, sandboxes, hot-swaps and calls buyer and redactor plugins.
//!
//! One concern per file (see docs/ARCHITECTURE.md): [`config`] holds every limit as data, [`component`] and
//! [`validate`] turn uploaded bytes into a checked component, [`cache`] keeps compiled artifacts on disk, [`sandbox`]
//! and [`instance`] run one bounded call, [`pool`] keeps warm instances per campaign, [`slot`] hot-swaps versions,
//! [`breaker`] suspends a plugin that keeps failing, [`plugin`] is one loaded plugin, and [`runtime`] loads them.

pub mod bindings;
pub mod breaker;
pub mod cache;
pub mod component;
pub mod config;
pub mod engine;
pub mod error;
pub mod instance;
pub mod plugin;
pub mod pool;
pub mod runtime;
pub mod sandbox;
pub mod slot;
pub mod validate;

pub use breaker::{BreakerState, BreakerStatus, CircuitBreaker};
pub use config::{Allocator, BreakerConfig, InlinePolicy, InstanceMode, Limits, RuntimeConfig};
pub use error::{CallError, LoadError};
pub use instance::CallReport;
pub use plugin::{LoadReport, Plugin};
pub use pool::{BuyerPlugin, PreparedPing, RedactorPlugin};
pub use runtime::Runtime;
pub use slot::{PluginSlot, SlotError};
pub use validate::World;
