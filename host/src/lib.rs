//! pingpost: a real-time ping/post lead exchange whose buyer and publisher rules run as sandboxed Wasm plugins.
//!
//! The exchange is layered crates, each naming only those below it: [`model`] (domain types and the injected
//! clock) < [`plugin`] (the Wasm runtime) < [`auction`] (the engine and its store trait) < [`storage`] (the SQLite
//! store) < [`service`] (`pingpost serve`) < [`cli`] (this crate's binary). This crate re-exports each under its
//! layer's name, so a test, benchmark or embedder names one dependency.

pub use pingpost_engine as auction;
pub use pingpost_model as model;
pub use pingpost_model::clock;
pub use pingpost_runtime as plugin;
pub use pingpost_service as service;
pub use pingpost_sqlite as storage;

pub mod cli;
