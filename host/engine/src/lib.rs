//! The auction engine: a lead in, a sale (or a reasoned refusal) out, over Wasm and HTTP buyers side by side.
//!
//! Flow (one file per job): [`validate`] the lead → redact with the publisher's plugin → [`pii`] guard → reject a
//! duplicate (hashed phone/email, [`identity`]) → [`eligibility`] of every campaign → ping fan-out ([`fanout`]) under
//! one deadline → [`select`] → [`post`] with fallback and cap reservations ([`store`]) → [`trace::Outcome`].
//! [`engine::Exchange`] drives it, one-shot or two-step; [`config`] holds what the exchange file describes. The
//! engine knows neither axum nor SQL: storage is the [`store::AuctionStore`] trait, time the injected clock.

pub mod config;
pub mod eligibility;
pub mod engine;
pub mod exchange_file;
pub mod fanout;
pub mod http_buyer;
pub mod identity;
pub mod ids;
pub mod pii;
pub mod post;
pub mod select;
pub mod store;
pub mod text;
pub mod trace;
pub mod validate;
pub mod vertical;

pub use config::{
    Buyer, Campaign, CampaignStatus, CampaignTarget, Caps, Day, Delivery, ExchangeConfig, Exclusivity, Publisher,
    STANDARD_REDACTOR, Schedule, SelectionMode,
};
pub use engine::{
    BuildError, EngineSettings, Exchange, ExchangeBuilder, ExchangeParts, LeadOptions, PingOutcome, PingStatus,
    PostError,
};
pub use http_buyer::{HttpBuyerClient, HttpBuyerError, HttpEndpoints, PingRequest, PostAnswer, PostRequest};
pub use identity::ConsumerKeys;
pub use ids::{IdSource, RandomIds, SeededIds};
pub use pii::{PiiGuard, PiiKind, PiiLeak, Scan};
pub use store::{AuctionStore, MemoryStore, SaleDelivery, SaleRecord, StoreError, StoredSale};
pub use trace::{Answer, Outcome, OutcomeStatus, PostResult, Sale, Trace};
pub use validate::{FieldError, ValidLead, validate_lead};
pub use vertical::{ExtraField, Vertical, VerticalError, VerticalRules, Verticals};
