//! pingpost: a real-time ping/post lead exchange whose buyer and publisher rules run as sandboxed Wasm plugins.

pub mod auction;
pub mod cli;
pub mod clock;
pub mod model;
pub mod plugin;
pub mod service;
pub mod storage;
