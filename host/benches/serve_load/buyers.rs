//! The 18 Florida campaigns as HTTP buyers on 127.0.0.1: one small axum server per campaign, speaking the protocol of
//! `docs/HTTP_BUYERS.md`, deciding with the same buyer logic as the Wasm plugins (the plugin crates, native).

use std::collections::HashMap;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use anyhow::{Context, Result};
use axum::Router;
use axum::body::Bytes;
use axum::extract::State;
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::post;
use pingpost::auction::PostAnswer;
use pingpost::model::{Bid, Decision, Ping, Rejection};
use pingpost_sdk::Buyer as _;
use serde::Deserialize;

use super::scenario::{Campaign, Logic};
use super::sdk_types::{model_reject_code, sdk_ping};

type Decide = Box<dyn Fn(&pingpost_sdk::Ping, &pingpost_sdk::BidContext) -> pingpost_sdk::Decision + Send + Sync>;

struct Shared {
    campaign_id: String,
    decide: Decide,
    sold: AtomicU64,
}

/// The running buyers, on their own runtime (stopped when dropped).
pub struct HttpBuyers {
    /// `http://127.0.0.1:PORT` by campaign id.
    pub bases: HashMap<String, String>,
    runtime: Option<tokio::runtime::Runtime>,
}

impl Drop for HttpBuyers {
    fn drop(&mut self) {
        if let Some(runtime) = self.runtime.take() {
            runtime.shutdown_background();
        }
    }
}

impl HttpBuyers {
    /// Starts one server per campaign on a free loopback port.
    pub fn start(campaigns: &[Campaign]) -> Result<Self> {
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .thread_name("http-buyers")
            .enable_all()
            .build()
            .context("starting the HTTP buyers' runtime")?;
        let mut bases = HashMap::new();
        for campaign in campaigns {
            let decide = native(campaign)?;
            let shared = Arc::new(Shared { campaign_id: campaign.id.clone(), decide, sold: AtomicU64::new(0) });
            let listener = std::net::TcpListener::bind("127.0.0.1:0").context("binding an HTTP buyer's port")?;
            listener.set_nonblocking(true)?;
            let addr = listener.local_addr()?;
            let app = Router::new().route("/ping", post(ping)).route("/post", post(post_lead)).with_state(shared);
            runtime.spawn(async move {
                let served = match tokio::net::TcpListener::from_std(listener) {
                    Ok(listener) => axum::serve(listener, app).await,
                    Err(e) => Err(e),
                };
                if let Err(e) = served {
                    eprintln!("HTTP buyer server stopped: {e}");
                }
            });
            bases.insert(campaign.id.clone(), format!("http://{addr}"));
        }
        Ok(HttpBuyers { bases, runtime: Some(runtime) })
    }
}

/// The campaign's buyer logic, native.
fn native(campaign: &Campaign) -> Result<Decide> {
    let config = &campaign.config;
    Ok(match campaign.logic {
        Logic::ConfigBuyer => {
            let buyer = config_buyer::ConfigBuyer::new(config)
                .map_err(anyhow::Error::msg)
                .with_context(|| format!("{}: config-buyer config", campaign.id))?;
            Box::new(move |ping, context| buyer.bid(ping, context))
        }
        Logic::ScorecardBuyer => {
            let buyer = scorecard_buyer::ScorecardBuyer::new(config)
                .map_err(anyhow::Error::msg)
                .with_context(|| format!("{}: scorecard-buyer config", campaign.id))?;
            Box::new(move |ping, context| buyer.bid(ping, context))
        }
    })
}

#[derive(Deserialize)]
struct PingBody {
    ping_id: String,
    ping: Ping,
}

#[derive(Deserialize)]
struct PostBody {
    price_cents: u32,
}

fn json(status: StatusCode, body: String) -> Response {
    (status, [(header::CONTENT_TYPE, "application/json")], body).into_response()
}

async fn ping(State(shared): State<Arc<Shared>>, body: Bytes) -> Response {
    let request: PingBody = match serde_json::from_slice(&body) {
        Ok(request) => request,
        Err(e) => return json(StatusCode::BAD_REQUEST, serde_json::json!({ "error": e.to_string() }).to_string()),
    };
    let context = pingpost_sdk::BidContext { now_unix_ms: now_unix_ms(), ..Default::default() };
    let ping = match sdk_ping(&request.ping) {
        Ok(ping) => ping,
        Err(e) => return json(StatusCode::BAD_REQUEST, serde_json::json!({ "error": e }).to_string()),
    };
    let decision = match (shared.decide)(&ping, &context) {
        pingpost_sdk::Decision::Bid(bid) => Decision::Bid(Bid {
            price_cents: bid.price_cents,
            buyer_ref: Some(format!("{}-{}", shared.campaign_id, request.ping_id)),
            ttl_ms: bid.ttl_ms,
        }),
        pingpost_sdk::Decision::Reject(rejection) => {
            Decision::Reject(Rejection { code: model_reject_code(rejection.code), message: rejection.message })
        }
    };
    match serde_json::to_string(&decision) {
        Ok(body) => json(StatusCode::OK, body),
        Err(e) => json(StatusCode::INTERNAL_SERVER_ERROR, serde_json::json!({ "error": e.to_string() }).to_string()),
    }
}

async fn post_lead(State(shared): State<Arc<Shared>>, body: Bytes) -> Response {
    let answer = match serde_json::from_slice::<PostBody>(&body) {
        Ok(request) => {
            let n = shared.sold.fetch_add(1, Ordering::Relaxed) + 1;
            PostAnswer::Accepted {
                price_cents: request.price_cents,
                buyer_lead_id: Some(format!("{}-{n}", shared.campaign_id)),
            }
        }
        Err(e) => PostAnswer::Rejected { reason: format!("unreadable lead: {e}") },
    };
    match serde_json::to_string(&answer) {
        Ok(body) => json(StatusCode::OK, body),
        Err(e) => json(StatusCode::INTERNAL_SERVER_ERROR, serde_json::json!({ "error": e.to_string() }).to_string()),
    }
}

fn now_unix_ms() -> i64 {
    std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map(|d| d.as_millis() as i64).unwrap_or_default()
}
