//! Classic HTTP buyers: a JSON ping to the campaign's ping URL answered by a [`Decision`], and a JSON post of the
//! full lead to the post URL answered by a [`PostAnswer`]. The wire protocol is documented for buyers in
//! `docs/HTTP_BUYERS.md`.
//!
//! One pooled [`reqwest::Client`] is injected and shared by every campaign, so connections to a buyer are reused
//! across auctions. Every call is bounded twice: by a deadline (the endpoint's own timeout and the auction's budget,
//! whichever is shorter) and by a cap on the response body, so a slow or hostile buyer costs the auction at most its
//! budget and a bounded amount of memory.

use std::time::Duration;

use serde::{Deserialize, Serialize};

use pingpost_model::{Decision, Lead, Ping, SaleKind};

/// The largest response body read from a buyer, in bytes; a longer one is [`HttpBuyerError::Malformed`].
pub const DEFAULT_MAX_BODY_BYTES: usize = 64 * 1024;

/// How to reach an HTTP buyer's campaign.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct HttpEndpoints {
    /// Where pings are POSTed; the buyer answers a [`Decision`].
    pub ping_url: String,
    /// Where the full lead is POSTed once the buyer has won; the buyer answers a [`PostAnswer`].
    pub post_url: String,
    /// The buyer's own ping timeout in milliseconds; the auction's budget may cut it shorter.
    pub timeout_ms: u64,
}

/// The JSON body of a ping: the redacted view of a lead, never any PII.
#[derive(Debug, Clone, Copy, Serialize)]
pub struct PingRequest<'a> {
    /// The exchange's id for this auction; a later post carries the same id.
    pub ping_id: &'a str,
    /// The campaign being asked, so one buyer URL can serve several campaigns.
    pub campaign_id: &'a str,
    /// The sale the auction makes: `exclusive` (the winner is the lead's only buyer) or `shared`.
    pub sale: SaleKind,
    /// The publisher's floor, in US cents: a bid under it cannot win (0 when there is none).
    pub floor_cents: u32,
    pub ping: &'a Ping,
}

/// The JSON body of a post: the full lead, sent only to a buyer that won it.
#[derive(Debug, Clone, Copy, Serialize)]
pub struct PostRequest<'a> {
    /// The id of the ping the buyer bid on.
    pub ping_id: &'a str,
    pub campaign_id: &'a str,
    /// The price the buyer is being sold the lead at, in US cents (its own bid).
    pub price_cents: u32,
    /// The reference the buyer gave with its bid, echoed back.
    pub buyer_ref: Option<&'a str>,
    pub lead: &'a Lead,
}

/// A buyer's answer to a post.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "result", rename_all = "snake_case")]
pub enum PostAnswer {
    /// The buyer took the lead, at the price it confirms (normally its bid).
    Accepted {
        price_cents: u32,
        /// The buyer's own id for the lead, for reconciliation.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        buyer_lead_id: Option<String>,
    },
    /// The buyer refused the lead after seeing it in full.
    Rejected {
        #[serde(default)]
        reason: String,
    },
    /// The buyer already has this consumer.
    Duplicate,
}

/// Why a call to an HTTP buyer produced no usable answer.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum HttpBuyerError {
    /// No complete answer arrived within the effective timeout.
    #[error("no answer within the timeout")]
    Timeout,
    /// The buyer answered with a non-2xx HTTP status.
    #[error("HTTP status {0}")]
    Status(u16),
    /// The answer was too large or was not the expected JSON.
    #[error("malformed answer: {0}")]
    Malformed(String),
    /// The request could not be sent or the answer could not be read (connection refused, reset, TLS, DNS...).
    #[error("transport error: {0}")]
    Transport(String),
}

/// Calls HTTP buyers over one shared, pooled [`reqwest::Client`].
#[derive(Debug, Clone)]
pub struct HttpBuyerClient {
    client: reqwest::Client,
    max_body_bytes: usize,
}

impl HttpBuyerClient {
    /// Wraps an existing client (its connection pool is shared with whoever else holds a clone of it).
    pub fn new(client: reqwest::Client) -> Self {
        HttpBuyerClient { client, max_body_bytes: DEFAULT_MAX_BODY_BYTES }
    }

    /// A client with the exchange's defaults: kept-alive pooled connections, `TCP_NODELAY`, no redirects (a buyer's
    /// answer must come from the URL the operator configured).
    pub fn with_default_client() -> Result<Self, HttpBuyerError> {
        let client = reqwest::Client::builder()
            .pool_idle_timeout(Duration::from_secs(90))
            .pool_max_idle_per_host(64)
            .tcp_nodelay(true)
            .redirect(reqwest::redirect::Policy::none())
            .user_agent(concat!("pingpost/", env!("CARGO_PKG_VERSION")))
            .build()
            .map_err(|e| HttpBuyerError::Transport(error_chain(&e)))?;
        Ok(Self::new(client))
    }

    /// Sets the largest response body read from a buyer.
    pub fn with_max_body_bytes(mut self, max_body_bytes: usize) -> Self {
        self.max_body_bytes = max_body_bytes;
        self
    }

    /// Pings a campaign and returns its decision. The call is cut off after the shorter of the endpoint's timeout
    /// and `budget` (what is left of the auction's deadline).
    pub async fn ping(
        &self,
        endpoints: &HttpEndpoints,
        request: &PingRequest<'_>,
        budget: Duration,
    ) -> Result<Decision, HttpBuyerError> {
        let timeout = budget.min(Duration::from_millis(endpoints.timeout_ms));
        let body = self.exchange(&endpoints.ping_url, request, timeout).await?;
        serde_json::from_slice(&body).map_err(|e| HttpBuyerError::Malformed(format!("ping answer: {e}")))
    }

    /// Posts the full lead to a winning HTTP buyer and returns its answer, within
    /// `budget`.
    pub async fn post(
        &self,
        url: &str,
        request: &PostRequest<'_>,
        budget: Duration,
    ) -> Result<PostAnswer, HttpBuyerError> {
        let body = self.exchange(url, request, budget).await?;
        serde_json::from_slice(&body).map_err(|e| HttpBuyerError::Malformed(format!("post answer: {e}")))
    }

    /// POSTs the full lead to a Wasm campaign's webhook (the outbox's delivery): any 2xx answer, whatever its body,
    /// means delivered.
    pub async fn deliver(&self, url: &str, request: &PostRequest<'_>, timeout: Duration) -> Result<(), HttpBuyerError> {
        self.exchange(url, request, timeout).await.map(drop)
    }

    /// POSTs `payload` as JSON and returns the 2xx answer's body, all within `timeout`.
    async fn exchange<T: Serialize + ?Sized>(
        &self,
        url: &str,
        payload: &T,
        timeout: Duration,
    ) -> Result<Vec<u8>, HttpBuyerError> {
        if timeout.is_zero() {
            return Err(HttpBuyerError::Timeout);
        }
        let call = async {
            let response = self
                .client
                .post(url)
                .header(reqwest::header::ACCEPT, "application/json")
                .json(payload)
                .send()
                .await
                .map_err(from_reqwest)?;
            let status = response.status();
            if !status.is_success() {
                return Err(HttpBuyerError::Status(status.as_u16()));
            }
            read_capped(response, self.max_body_bytes).await
        };
        // The tokio timeout covers connecting, sending and reading the whole body, so a buyer that trickles its
        // answer is cut off too.
        tokio::time::timeout(timeout, call).await.unwrap_or(Err(HttpBuyerError::Timeout))
    }
}

/// Reads a response body, refusing it as soon as it grows past `cap` bytes.
async fn read_capped(mut response: reqwest::Response, cap: usize) -> Result<Vec<u8>, HttpBuyerError> {
    let too_large = || HttpBuyerError::Malformed(format!("answer body exceeds {cap} bytes"));
    if response.content_length().is_some_and(|len| len > cap as u64) {
        return Err(too_large());
    }
    let mut body = Vec::new();
    while let Some(chunk) = response.chunk().await.map_err(from_reqwest)? {
        if body.len() + chunk.len() > cap {
            return Err(too_large());
        }
        body.extend_from_slice(&chunk);
    }
    Ok(body)
}

fn from_reqwest(error: reqwest::Error) -> HttpBuyerError {
    if error.is_timeout() { HttpBuyerError::Timeout } else { HttpBuyerError::Transport(error_chain(&error)) }
}

/// An error and its sources on one line: reqwest's own message alone rarely says what went wrong.
fn error_chain(error: &dyn std::error::Error) -> String {
    let mut text = error.to_string();
    let mut source = error.source();
    while let Some(cause) = source {
        text.push_str(": ");
        text.push_str(&cause.to_string());
        source = cause.source();
    }
    text
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn post_answers_parse_from_the_documented_wire_forms() {
        let accepted: PostAnswer =
            serde_json::from_str(r#"{"result":"accepted","price_cents":2600,"buyer_lead_id":"x"}"#).unwrap();
        assert_eq!(accepted, PostAnswer::Accepted { price_cents: 2600, buyer_lead_id: Some("x".into()) });
        let rejected: PostAnswer = serde_json::from_str(r#"{"result":"rejected","reason":"bad phone"}"#).unwrap();
        assert_eq!(rejected, PostAnswer::Rejected { reason: "bad phone".into() });
        let duplicate: PostAnswer = serde_json::from_str(r#"{"result":"duplicate"}"#).unwrap();
        assert_eq!(duplicate, PostAnswer::Duplicate);
    }

    #[test]
    fn an_accepted_post_without_a_price_is_malformed() {
        assert!(serde_json::from_str::<PostAnswer>(r#"{"result":"accepted"}"#).is_err());
    }
}
