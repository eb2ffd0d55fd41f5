//! A real HTTP buyer for tests: an axum server on 127.0.0.1 (an ephemeral port) whose answers are scripted per route,
//! optionally delayed, and which records every request body it was sent, so a test can assert exactly what a buyer
//! was given.

#![allow(dead_code)] // Each test binary uses a different part of this helper.

use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::Router;
use axum::body::{Body, Bytes};
use axum::extract::State;
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::post;
use pingpost::auction::http_buyer::HttpEndpoints;
use serde_json::Value;

/// One scripted answer.
#[derive(Debug, Clone)]
pub struct Reply {
    pub status: u16,
    pub body: Vec<u8>,
    /// How long the server waits before answering.
    pub delay: Duration,
    /// Send the body in 1 KiB chunks without a `Content-Length`, as a streaming server would.
    pub chunked: bool,
}

impl Reply {
    /// A 200 answer with `value` as its JSON body.
    pub fn json(value: Value) -> Self {
        Reply { status: 200, body: value.to_string().into_bytes(), delay: Duration::ZERO, chunked: false }
    }

    /// An answer with this status and raw body.
    pub fn raw(status: u16, body: impl Into<Vec<u8>>) -> Self {
        Reply { status, body: body.into(), delay: Duration::ZERO, chunked: false }
    }

    /// The same answer, streamed in chunks without a `Content-Length`.
    pub fn chunked(mut self) -> Self {
        self.chunked = true;
        self
    }

    /// The same answer, sent after `delay`.
    pub fn delayed(mut self, delay: Duration) -> Self {
        self.delay = delay;
        self
    }
}

/// Decides the answer to one request from its JSON body (`Value::Null` when the body was not JSON).
pub type Responder = Arc<dyn Fn(&Value) -> Reply + Send + Sync>;

/// Which of the two buyer endpoints a request hit.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Route {
    Ping,
    Post,
}

/// One request as the server received it.
#[derive(Debug, Clone)]
pub struct Recorded {
    pub route: Route,
    /// The body exactly as sent.
    pub raw: String,
    /// The body parsed as JSON (`Value::Null` when it was not JSON).
    pub json: Value,
}

struct Shared {
    ping: Responder,
    post: Responder,
    recorded: Mutex<Vec<Recorded>>,
}

/// A running buyer; the server stops when this is dropped.
pub struct BuyerServer {
    addr: SocketAddr,
    shared: Arc<Shared>,
    task: tokio::task::JoinHandle<()>,
}

impl BuyerServer {
    /// Starts a buyer that always gives the same two answers.
    pub async fn scripted(on_ping: Reply, on_post: Reply) -> Self {
        Self::start(move |_: &Value| on_ping.clone(), move |_: &Value| on_post.clone()).await
    }

    /// Starts a buyer whose answers are computed from each request's body.
    pub async fn start(
        on_ping: impl Fn(&Value) -> Reply + Send + Sync + 'static,
        on_post: impl Fn(&Value) -> Reply + Send + Sync + 'static,
    ) -> Self {
        let shared =
            Arc::new(Shared { ping: Arc::new(on_ping), post: Arc::new(on_post), recorded: Mutex::new(Vec::new()) });
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.expect("bind 127.0.0.1:0");
        let addr = listener.local_addr().expect("local address of the test server");
        let app = Router::new()
            .route("/ping", post(|state: State<Arc<Shared>>, body: Bytes| answer(state, Route::Ping, body)))
            .route("/post", post(|state: State<Arc<Shared>>, body: Bytes| answer(state, Route::Post, body)))
            .with_state(shared.clone());
        let task = tokio::spawn(async move {
            axum::serve(listener, app).await.expect("test buyer server");
        });
        BuyerServer { addr, shared, task }
    }

    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    pub fn ping_url(&self) -> String {
        format!("http://{}/ping", self.addr)
    }

    pub fn post_url(&self) -> String {
        format!("http://{}/post", self.addr)
    }

    /// The endpoints of this buyer with the given ping timeout.
    pub fn endpoints(&self, timeout_ms: u64) -> HttpEndpoints {
        HttpEndpoints { ping_url: self.ping_url(), post_url: self.post_url(), timeout_ms }
    }

    /// Every request received so far, in order.
    pub fn recorded(&self) -> Vec<Recorded> {
        self.shared.recorded.lock().expect("recorded requests").clone()
    }

    /// The JSON bodies of the pings received so far.
    pub fn pings(&self) -> Vec<Value> {
        self.recorded().into_iter().filter(|r| r.route == Route::Ping).map(|r| r.json).collect()
    }

    /// The JSON bodies of the posts received so far.
    pub fn posts(&self) -> Vec<Value> {
        self.recorded().into_iter().filter(|r| r.route == Route::Post).map(|r| r.json).collect()
    }
}

impl Drop for BuyerServer {
    fn drop(&mut self) {
        self.task.abort();
    }
}

async fn answer(State(shared): State<Arc<Shared>>, route: Route, body: Bytes) -> Response {
    let raw = String::from_utf8_lossy(&body).into_owned();
    let json: Value = serde_json::from_slice(&body).unwrap_or(Value::Null);
    let reply = match route {
        Route::Ping => (shared.ping)(&json),
        Route::Post => (shared.post)(&json),
    };
    shared.recorded.lock().expect("recorded requests").push(Recorded { route, raw, json });
    if !reply.delay.is_zero() {
        tokio::time::sleep(reply.delay).await;
    }
    let status = StatusCode::from_u16(reply.status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
    let body = if reply.chunked {
        let chunks: Vec<Result<Vec<u8>, std::convert::Infallible>> =
            reply.body.chunks(1024).map(|chunk| Ok(chunk.to_vec())).collect();
        Body::from_stream(futures_util::stream::iter(chunks))
    } else {
        Body::from(reply.body)
    };
    (status, [(header::CONTENT_TYPE, "application/json")], body).into_response()
}
