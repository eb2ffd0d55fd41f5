//! The plugin runtime: loads, validates, sandboxes, hot-swaps and calls buyer and redactor plugins.
//!
//! One concern per file (see docs/ARCHITECTURE.md): [`config`] holds every limit as data, [`component`] and
//! [`validate`] turn uploaded bytes into a checked component, [`cache`] keeps compiled artifacts on disk, [`sandbox`]
//! and [`instance`] run one bounded call, [`pool`] keeps warm instances per campaign, [`slot`] hot-swaps versions,
//! [`breaker`] suspends a plugin that keeps failing, and [`runtime`] ties them together.

pub mod bindings;
pub mod breaker;
pub mod cache;
pub mod component;
pub mod config;
pub mod engine;
pub mod error;
pub mod instance;
pub mod pool;
pub mod runtime;
pub mod sandbox;
pub mod slot;
pub mod validate;

pub use breaker::{BreakerState, BreakerStatus, CircuitBreaker};
pub use config::{Allocator, BreakerConfig, InlinePolicy, InstanceMode, Limits, RuntimeConfig};
pub use error::{CallError, LoadError};
pub use instance::CallReport;
pub use pool::{BuyerPlugin, PreparedPing, RedactorPlugin};
pub use runtime::{LoadReport, Plugin, Runtime, World};
pub use slot::{PluginSlot, SlotError};
