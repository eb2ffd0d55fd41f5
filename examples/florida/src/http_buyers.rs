//! The scenario's classic HTTP buyers: small real servers on 127.0.0.1 that speak the protocol of
//! `docs/HTTP_BUYERS.md`, each with its own buying rules, and that record every request body they receive so the demo
//! can show who saw what.

use std::net::SocketAddr;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};

use anyhow::{Context, Result};
use axum::Json;
use axum::Router;
use axum::body::Bytes;
use axum::extract::State;
use axum::http::StatusCode;
use axum::routing::post;
use pingpost::model::{Bid, Decision, Ping, RejectCode, Rejection};
use serde::Deserialize;
use serde_json::{Value, json};

/// One HTTP buyer's rules, as its own server would apply them.
#[derive(Debug, Clone)]
pub struct Rules {
    pub campaign_id: &'static str,
    /// The port it listens on when started on a fixed port (the exchange file names it).
    pub port: u16,
    pub vertical: &'static str,
    /// States bought; empty means all.
    pub states: &'static [&'static str],
    pub min_age: u8,
    pub max_age: u8,
    pub price_cents: u32,
}

/// The scenario's four HTTP buyers (the ports are the ones `exchange.toml` names).
pub const HTTP_BUYERS: [Rules; 4] = [
    Rules {
        campaign_id: "sunshine-health-direct",
        port: 18401,
        vertical: "health-insurance",
        states: &["FL"],
        min_age: 50,
        max_age: 64,
        price_cents: 2600,
    },
    Rules {
        campaign_id: "atlantic-brokers",
        port: 18402,
        vertical: "health-insurance",
        states: &["FL", "GA", "SC", "NC", "VA"],
        min_age: 18,
        max_age: 64,
        price_cents: 2200,
    },
    Rules {
        campaign_id: "everglades-insure",
        port: 18403,
        vertical: "health-insurance",
        states: &[],
        min_age: 21,
        max_age: 70,
        price_cents: 1250,
    },
    Rules {
        campaign_id: "medicare-advantage-now",
        port: 18404,
        vertical: "health-insurance",
        states: &[],
        min_age: 65,
        max_age: 99,
        price_cents: 3100,
    },
];

impl Rules {
    /// The buyer's decision on a ping.
    pub fn decide(&self, ping_id: &str, ping: &Ping) -> Decision {
        let reject = |code, message: String| Decision::Reject(Rejection { code, message });
        if ping.vertical != self.vertical {
            return reject(RejectCode::Vertical, format!("we buy {} only", self.vertical));
        }
        if !self.states.is_empty() && !self.states.contains(&ping.state.as_str()) {
            return reject(RejectCode::Geography, format!("{} is not in our footprint", ping.state));
        }
        if !(self.min_age..=self.max_age).contains(&ping.age) {
            return reject(RejectCode::Age, format!("we buy ages {}-{} only", self.min_age, self.max_age));
        }
        Decision::Bid(Bid {
            price_cents: self.price_cents,
            buyer_ref: Some(format!("{}-{ping_id}", self.campaign_id)),
            ttl_ms: None,
        })
    }
}

/// What a buyer's server received: the raw bodies of its pings and posts.
#[derive(Debug, Default)]
pub struct Received {
    pub pings: Vec<String>,
    pub posts: Vec<String>,
}

struct Shared {
    rules: Rules,
    received: Mutex<Received>,
    sold: AtomicU64,
}

/// A running HTTP buyer; it stops when the process ends or the handle is dropped.
pub struct HttpBuyer {
    pub addr: SocketAddr,
    shared: Arc<Shared>,
    task: tokio::task::JoinHandle<()>,
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

impl HttpBuyer {
    /// Starts the buyer on `127.0.0.1:port` (0 picks a free port).
    pub async fn start(rules: Rules, port: u16) -> Result<Self> {
        let listener = tokio::net::TcpListener::bind(("127.0.0.1", port))
            .await
            .with_context(|| format!("binding 127.0.0.1:{port} for HTTP buyer {}", rules.campaign_id))?;
        let addr = listener.local_addr()?;
        let shared = Arc::new(Shared { rules, received: Mutex::new(Received::default()), sold: AtomicU64::new(0) });
        let app = Router::new().route("/ping", post(ping)).route("/post", post(post_lead)).with_state(shared.clone());
        let task = tokio::spawn(async move {
            if let Err(e) = axum::serve(listener, app).await {
                eprintln!("HTTP buyer server stopped: {e}");
            }
        });
        Ok(HttpBuyer { addr, shared, task })
    }

    pub fn campaign_id(&self) -> &'static str {
        self.shared.rules.campaign_id
    }

    /// The raw bodies received so far.
    pub fn received(&self) -> (Vec<String>, Vec<String>) {
        let received = self.shared.received.lock().unwrap_or_else(|poisoned| poisoned.into_inner());
        (received.pings.clone(), received.posts.clone())
    }
}

impl Drop for HttpBuyer {
    fn drop(&mut self) {
        self.task.abort();
    }
}

fn record(shared: &Shared, body: &Bytes, is_post: bool) {
    let mut received = shared.received.lock().unwrap_or_else(|poisoned| poisoned.into_inner());
    let text = String::from_utf8_lossy(body).into_owned();
    if is_post { received.posts.push(text) } else { received.pings.push(text) }
}

async fn ping(State(shared): State<Arc<Shared>>, body: Bytes) -> (StatusCode, Json<Value>) {
    record(&shared, &body, false);
    match serde_json::from_slice::<PingBody>(&body) {
        Ok(request) => {
            let decision = shared.rules.decide(&request.ping_id, &request.ping);
            (StatusCode::OK, Json(serde_json::to_value(decision).unwrap_or(Value::Null)))
        }
        Err(e) => (StatusCode::BAD_REQUEST, Json(json!({ "error": e.to_string() }))),
    }
}

async fn post_lead(State(shared): State<Arc<Shared>>, body: Bytes) -> (StatusCode, Json<Value>) {
    record(&shared, &body, true);
    match serde_json::from_slice::<PostBody>(&body) {
        Ok(request) => {
            let n = shared.sold.fetch_add(1, Ordering::SeqCst) + 1;
            let lead_id = format!("{}-{n}", shared.rules.campaign_id);
            (
                StatusCode::OK,
                Json(json!({ "result": "accepted", "price_cents": request.price_cents, "buyer_lead_id": lead_id })),
            )
        }
        Err(e) => (StatusCode::OK, Json(json!({ "result": "rejected", "reason": format!("unreadable lead: {e}") }))),
    }
}
