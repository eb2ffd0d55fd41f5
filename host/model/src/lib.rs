//! The exchange's domain types that cross the plugin boundary: the lead, its ping, a buyer's decision and the
//! contexts the host passes in. They mirror the latest plugin contract (`sdk/wit/`); `pingpost_runtime::bindings` converts
//! them to and from each contract version's generated types. JSON is snake_case throughout.

pub mod clock;
mod decision;
mod lead;
mod ping;

pub use decision::{Bid, BidContext, CapsLeft, Decision, RejectCode, Rejection, SaleKind};
pub use lead::{Consent, Consumer, Lead, LeadPing, PingConsent, PingRequest, RedactContext};
pub use ping::{ConsentFlags, Gender, Ping};

/// The 50 US states and DC, by USPS code, in the order of the plugin contract's `us-state` enum (a test of the
/// bindings checks it against the WIT).
pub const US_STATES: [&str; 51] = [
    "AL", "AK", "AZ", "AR", "CA", "CO", "CT", "DE", "DC", "FL", "GA", "HI", "ID", "IL", "IN", "IA", "KS", "KY", "LA",
    "ME", "MD", "MA", "MI", "MN", "MS", "MO", "MT", "NE", "NV", "NH", "NJ", "NM", "NY", "NC", "ND", "OH", "OK", "OR",
    "PA", "RI", "SC", "SD", "TN", "TX", "UT", "VT", "VA", "WA", "WV", "WI", "WY",
];

/// Severity of a plugin's log line.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum LogLevel {
    Trace,
    Debug,
    Info,
    Warn,
    Error,
}

/// One line a plugin logged during a call.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct LogLine {
    pub level: LogLevel,
    pub message: String,
}
