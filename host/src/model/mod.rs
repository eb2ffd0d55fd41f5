//! The exchange's domain types that cross the plugin boundary: the lead, its ping, a buyer's decision and the
//! contexts the host passes in. They mirror the latest plugin contract (`sdk/wit/`); `plugin::bindings` converts
//! them to and from each contract version's generated types. JSON is snake_case throughout.

mod decision;
mod lead;
mod ping;

pub use decision::{Bid, BidContext, CapsLeft, Decision, RejectCode, Rejection};
pub use lead::{Consent, Consumer, Lead, RedactContext};
pub use ping::{ConsentFlags, Gender, Ping};

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
