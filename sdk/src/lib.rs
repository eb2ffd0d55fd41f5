#![doc = include_str!("../README.md")]
#![warn(missing_docs)]
// The README shows each example plugin's complete `lib.rs`, its `#[test]` module included, as an author would write it.
#![allow(clippy::test_attr_in_doctest)]

pub mod alloc;
mod bindings;
mod instance_state;
mod log;
pub mod time;
mod types;

pub use bindings::types::{
    Bid, BidContext, CapsLeft, ConsentFlags, Decision, Gender, Lead, LogLevel, Ping, PingRequest, RedactContext,
    RejectCode, Rejection, Sale, UsState,
};
pub use log::{log, take_native_log};

/// The plugin's global allocator in Wasm (see [`alloc`]); the `small-alloc` feature, on by default.
#[cfg(all(feature = "small-alloc", target_arch = "wasm32", not(target_feature = "atomics")))]
#[global_allocator]
static ALLOCATOR: alloc::SmallAlloc = alloc::SmallAlloc::new();

/// The contract version this SDK builds plugins against (the WIT package version).
pub const CONTRACT_VERSION: &str = "0.2.0";

/// A buyer's filter and bid logic.
///
/// A Wasm instance serves one campaign. When the host creates it, it calls the exported `configure` once with the
/// campaign's config, and the SDK builds the buyer with [`Buyer::new`] then; every ping afterwards is one
/// [`Buyer::bid`] call on that buyer, so parsing the config costs nothing per ping.
pub trait Buyer: Sized + 'static {
    /// Builds the buyer from its campaign's config string. An error is returned to the host, which refuses the
    /// campaign's config when the campaign is created.
    fn new(config: &str) -> Result<Self, String>;

    /// Decides on one ping: bid a price in cents or reject with a reason.
    fn bid(&self, ping: &Ping, context: &BidContext) -> Decision;
}

/// A publisher's redaction logic: what of a lead goes into a ping.
///
/// The host has the last word on PII: it refuses to send a ping that still contains any of the lead's personal
/// values, whatever the redactor returns.
///
/// Like a buyer, a redactor is built once per Wasm instance, from the publisher's config, when the host configures it.
pub trait Redactor: Sized + 'static {
    /// Builds the redactor from the publisher's config string. An error is returned to the host, which refuses the
    /// publisher's config.
    fn new(config: &str) -> Result<Self, String>;

    /// Maps a full lead to its ping, or says why it cannot be pinged.
    fn redact(&self, lead: &Lead, context: &RedactContext) -> Result<Ping, String>;

    /// Maps a PII-free ping request (a two-step ping sent before the lead) to its ping, or says why it cannot be
    /// pinged. By default it refuses: a redactor that does not implement it takes full leads only, so nothing a
    /// publisher sends reaches buyers unless the redactor says what of it may.
    fn redact_ping(&self, request: &PingRequest, context: &RedactContext) -> Result<Ping, String> {
        let _ = (request, context);
        Err("this redactor takes full leads only: send the lead with the ping, or in one step".to_owned())
    }
}

/// Exports a [`Buyer`] implementation as the plugin's `bidder` interface.
///
/// Call it once, at the top level of the plugin crate. Outside Wasm it expands to nothing, so the crate's native
/// unit tests build as usual.
///
/// ```
/// use pingpost_sdk::{BidContext, Buyer, Decision, Ping};
///
/// struct FlatBuyer;
///
/// impl Buyer for FlatBuyer {
///     fn new(_config: &str) -> Result<Self, String> {
///         Ok(FlatBuyer)
///     }
///     fn bid(&self, _ping: &Ping, _context: &BidContext) -> Decision {
///         Decision::bid(500)
///     }
/// }
///
/// pingpost_sdk::register_buyer!(FlatBuyer);
/// # fn main() {}
/// ```
#[macro_export]
macro_rules! register_buyer {
    ($buyer:ty) => {
        // Exported only in Wasm: a native build (the plugin's unit tests) has nothing to export, and native
        // linkers refuse the contract's export names.
        #[cfg(target_arch = "wasm32")]
        const _: () = {
            struct __PingpostBuyerExport;

            impl $crate::__private::BidderGuest for __PingpostBuyerExport {
                fn configure(
                    _campaign_id: ::std::string::String,
                    config: ::std::string::String,
                ) -> ::core::result::Result<(), ::std::string::String> {
                    $crate::__private::configure_buyer::<$buyer>(&config)
                }

                fn bid(ping: $crate::Ping, context: $crate::BidContext) -> $crate::Decision {
                    $crate::__private::call_buyer::<$buyer>(&ping, &context)
                }
            }

    $crate::__private::export_buyer!(__PingpostBuyerExport with_types_in $crate::__private::buyer_bindings);
        };
    };
}

/// Exports a [`Redactor`] implementation as the plugin's `redaction` interface.
///
/// Call it once, at the top level of the plugin crate; outside Wasm it expands to nothing.
///
/// ```
/// use pingpost_sdk::{Lead, Ping, RedactContext, Redactor};
///
/// struct RefuseAll;
///
/// impl Redactor for RefuseAll {
///     fn new(_config: &str) -> Result<Self, String> {
///         Ok(RefuseAll)
///     }
///     fn redact(&self, _lead: &Lead, _context: &RedactContext) -> Result<Ping, String> {
///         Err("this publisher sends no pings".to_owned())
///     }
/// }
///
/// pingpost_sdk::register_redactor!(RefuseAll);
/// # fn main() {}
/// ```
#[macro_export]
macro_rules! register_redactor {
    ($redactor:ty) => {
        #[cfg(target_arch = "wasm32")]
        const _: () = {
            struct __PingpostRedactorExport;

            impl $crate::__private::RedactionGuest for __PingpostRedactorExport {
                fn configure(
                    _publisher_id: ::std::string::String,
                    config: ::std::string::String,
                ) -> ::core::result::Result<(), ::std::string::String> {
                    $crate::__private::configure_redactor::<$redactor>(&config)
                }

                fn redact(
                    lead: $crate::Lead,
                    context: $crate::RedactContext,
                ) -> ::core::result::Result<$crate::Ping, ::std::string::String> {
                    $crate::__private::call_redactor::<$redactor>(&lead, &context)
                }

                fn redact_ping(
                    request: $crate::PingRequest,
                    context: $crate::RedactContext,
                ) -> ::core::result::Result<$crate::Ping, ::std::string::String> {
                    $crate::__private::call_redactor_ping::<$redactor>(&request, &context)
                }
            }

            $crate::__private::export_redactor!(__PingpostRedactorExport with_types_in $crate::__private::redactor_bindings);
        };
    };
}

/// Support for the export macros; not part of the public API.
#[doc(hidden)]
pub mod __private {
    pub use crate::bindings::buyer as buyer_bindings;
    pub use crate::bindings::buyer::export as export_buyer;
    pub use crate::bindings::buyer::exports::pingpost::plugin::bidder::Guest as BidderGuest;
    pub use crate::bindings::redactor as redactor_bindings;
    pub use crate::bindings::redactor::export as export_redactor;
    pub use crate::bindings::redactor::exports::pingpost::plugin::redaction::Guest as RedactionGuest;
    pub use crate::instance_state::{
        call_buyer, call_redactor, call_redactor_ping, configure_buyer, configure_redactor,
    };
}
