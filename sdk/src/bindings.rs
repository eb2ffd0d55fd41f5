//! Bindings generated from the WIT contract, one module per world. The redactor world reuses the buyer world's
//! `types` and `host` modules so every type exists once.

#[allow(missing_docs, clippy::all)]
pub mod buyer {
    wit_bindgen::generate!({
        path: "wit/since_v0.2.0",
        world: "pingpost:plugin/buyer",
        pub_export_macro: true,
        default_bindings_module: "pingpost_sdk::__private::buyer_bindings",
        additional_derives: [PartialEq],
    });
}

#[allow(missing_docs, clippy::all)]
pub mod redactor {
    wit_bindgen::generate!({
        path: "wit/since_v0.2.0",
        world: "pingpost:plugin/redactor",
        pub_export_macro: true,
        default_bindings_module: "pingpost_sdk::__private::redactor_bindings",
        with: {
            "pingpost:plugin/types@0.2.0": crate::bindings::buyer::pingpost::plugin::types,
            "pingpost:plugin/host@0.2.0": crate::bindings::buyer::pingpost::plugin::host,
        },
    });
}

pub use buyer::pingpost::plugin::types;
