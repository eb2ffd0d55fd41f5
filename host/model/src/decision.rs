use serde::{Deserialize, Serialize};

/// Why a buyer declined a ping (the contract's fixed set).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum RejectCode {
    Geography,
    Age,
    Vertical,
    Consent,
    Schedule,
    Cap,
    Price,
    Duplicate,
    Config,
    Other,
}

/// A buyer's reasoned refusal.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Rejection {
    pub code: RejectCode,
    #[serde(default)]
    pub message: String,
}

/// A buyer's offer for a lead.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Bid {
    /// The price offered, in US cents.
    pub price_cents: u32,
    /// The buyer's own reference for this bid.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub buyer_ref: Option<String>,
    /// How long the bid stands, in milliseconds.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ttl_ms: Option<u32>,
}

/// A buyer's answer to a ping.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "decision", rename_all = "snake_case")]
pub enum Decision {
    Bid(Bid),
    Reject(Rejection),
}

impl Decision {
    /// The bid price, or `None` for a rejection.
    pub fn price_cents(&self) -> Option<u32> {
        match self {
            Decision::Bid(bid) => Some(bid.price_cents),
            Decision::Reject(_) => None,
        }
    }
}

/// What is left of a campaign's caps; `None` means no cap is set.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct CapsLeft {
    pub leads_hour: Option<u32>,
    pub leads_day: Option<u32>,
    pub leads_month: Option<u32>,
    pub spend_day_cents: Option<u64>,
    pub spend_month_cents: Option<u64>,
}

/// Which sale a bid is for: buyers pay more for a lead no one else gets.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum SaleKind {
    /// The winner is the lead's only buyer.
    #[default]
    Exclusive,
    /// The lead is sold to several buyers, each paying its own bid.
    Shared,
}

/// What the host tells a buyer besides the ping (the campaign and its config are given once per instance).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct BidContext {
    /// Milliseconds since the Unix epoch, UTC, from the injected clock.
    pub now_unix_ms: i64,
    #[serde(default)]
    pub caps_left: CapsLeft,
    /// The sale the auction makes (a 0.1.0 plugin is not told).
    #[serde(default)]
    pub sale: SaleKind,
    /// The publisher's floor, in cents: a bid under it cannot win (0 when there is none; a 0.1.0 plugin is not told).
    #[serde(default)]
    pub floor_cents: u32,
}

impl BidContext {
    /// The context of an exclusive sale at `now_unix_ms` with no floor and no caps.
    pub fn at(now_unix_ms: i64) -> Self {
        BidContext { now_unix_ms, ..BidContext::default() }
    }
}
