//! The auction engine: a lead in, a sale (or a reasoned refusal) out, over Wasm and HTTP buyers side by side.
//!
//! Flow, one file per step, each taking what it needs and returning what the next needs or how the auction ended:
//! [`validate`] the lead (or a PII-free ping, [`lead_ping`]) → `redact.rs` with the publisher's plugin → `guard.rs` ([`pii`]) → `dedupe.rs` (hashed
//! phone and email, [`identity`]) → `pingable.rs` ([`eligibility`] of every campaign) → `fanout.rs` under one
//! deadline → `answers.rs` → [`select`] → (two-step: `quote.rs` holds the quoted bids' caps) → `post.rs` with fallback
//! and cap reservations ([`store`]) → [`trace::Outcome`].
//! [`engine::Exchange`] calls the steps in order, one-shot or two-step, and keeps the trace; [`build`] checks a
//! config and sets up its plugins; [`config`] holds what the exchange file describes. The engine knows neither axum
//! nor SQL: storage is the [`store::AuctionStore`] trait, time the injected clock.

pub mod age;
mod answers;
pub mod build;
pub mod config;
mod dedupe;
pub mod eligibility;
pub mod engine;
mod entries;
pub mod exchange_file;
mod fanout;
pub mod field_error;
mod guard;
pub mod http_buyer;
pub mod identity;
pub mod ids;
pub mod lead_ping;
pub mod ledger;
pub mod memory;
pub mod pii;
mod pingable;
mod post;
mod quote;
mod redact;
pub mod schedule;
pub mod select;
pub mod store;
pub mod text;
pub mod trace;
pub mod validate;
pub mod vertical;

pub use build::{BuildError, ExchangeBuilder, MAX_PING_DEADLINE_MS, MAX_POST_DEADLINE_MS};
pub use config::{
    Buyer, Campaign, CampaignStatus, CampaignTarget, Caps, Day, Delivery, ExchangeConfig, Exclusivity, Publisher,
    STANDARD_REDACTOR, Schedule, SelectionMode,
};
pub use engine::{
    DEFAULT_MAX_BID_CENTS, EngineSettings, Exchange, ExchangeParts, LeadOptions, PingOutcome, PingStatus, PostError,
};
pub use field_error::FieldError;
pub use http_buyer::{HttpBuyerClient, HttpBuyerError, HttpEndpoints, PingRequest, PostAnswer, PostRequest};
pub use identity::ConsumerKeys;
pub use ids::{IdSource, RandomIds, SeededIds};
pub use lead_ping::{LeadPing, PingConsent, Pinged, ValidLeadPing, validate_lead_ping};
pub use memory::MemoryStore;
pub use pii::{PiiGuard, PiiKind, PiiLeak, Scan};
pub use store::{AuctionStore, SaleDelivery, SaleRecord, StoreError, StoredSale};
pub use trace::{Answer, ErrorKind, Outcome, OutcomeStatus, PostResult, Sale, Trace};
pub use validate::{ValidLead, validate_lead};
pub use vertical::{ExtraField, Vertical, VerticalError, VerticalRules, Verticals};
