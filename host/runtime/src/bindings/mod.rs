//! Host bindings, one module per released contract version (`sdk/wit/since_vX.Y.Z/`), each with its conversions
//! to and from [`pingpost_model`]. Today there is one version; a new contract adds a module beside it.

pub mod v0_1;
