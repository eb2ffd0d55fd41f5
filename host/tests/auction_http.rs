//! The HTTP buyer client against real HTTP servers on 127.0.0.1: answers, timeouts, failures, oversized and
//! malformed bodies, and every kind of post answer.

#[path = "common/http_buyer_server.rs"]
mod http_buyer_server;

use std::time::Duration;

use http_buyer_server::{BuyerServer, Reply};
use pingpost::auction::http_buyer::{
    DEFAULT_MAX_BODY_BYTES, HttpBuyerClient, HttpBuyerError, HttpEndpoints, PingRequest, PostAnswer, PostRequest,
};
use pingpost::model::{Bid, Consent, ConsentFlags, Consumer, Decision, Lead, Ping, RejectCode, Rejection, SaleKind};
use serde_json::json;

const BUDGET: Duration = Duration::from_secs(5);

fn client() -> HttpBuyerClient {
    HttpBuyerClient::with_default_client().expect("default HTTP client")
}

fn ping() -> Ping {
    Ping {
        vertical: "health-insurance".into(),
        state: "FL".into(),
        zip3: "331".into(),
        age: 58,
        consent: ConsentFlags { trusted_form: true, jornaya: false, tcpa_text: true },
        publisher_id: "pub-1".into(),
        ..Ping::default()
    }
}

fn lead() -> Lead {
    Lead {
        vertical: "health-insurance".into(),
        publisher_id: "pub-1".into(),
        source_id: "src-9".into(),
        sub_id: String::new(),
        consumer: Consumer {
            first_name: "Maria".into(),
            last_name: "Alvarez".into(),
            phone: "3055550142".into(),
            email: "maria.alvarez@example.com".into(),
            street: "1200 Brickell Ave".into(),
            city: "Miami".into(),
            state: "FL".into(),
            zip5: "33131".into(),
            date_of_birth: "1968-03-14".into(),
            gender: None,
        },
        consent: Consent { tcpa_text: Some("I agree to be contacted.".into()), ..Consent::default() },
        extra: Default::default(),
    }
}

async fn ping_once(server: &BuyerServer, timeout_ms: u64, budget: Duration) -> Result<Decision, HttpBuyerError> {
    let ping = ping();
    let request = PingRequest {
        ping_id: "ping-1",
        campaign_id: "camp-1",
        sale: SaleKind::Exclusive,
        floor_cents: 0,
        ping: &ping,
    };
    client().ping(&server.endpoints(timeout_ms), &request, budget).await
}

async fn post_once(server: &BuyerServer) -> Result<PostAnswer, HttpBuyerError> {
    let lead = lead();
    let request = PostRequest {
        ping_id: "ping-1",
        campaign_id: "camp-1",
        price_cents: 2600,
        buyer_ref: Some("b-7"),
        lead: &lead,
    };
    client().post(&server.post_url(), &request, BUDGET).await
}

fn unused() -> Reply {
    Reply::raw(404, "")
}

#[tokio::test]
async fn a_bid_answer_is_the_buyers_decision_and_the_ping_body_is_the_documented_json() {
    let server = BuyerServer::scripted(
        Reply::json(json!({"decision": "bid", "price_cents": 2600, "buyer_ref": "b-7"})),
        unused(),
    )
    .await;

    let decision = ping_once(&server, 1000, BUDGET).await;

    assert_eq!(decision, Ok(Decision::Bid(Bid { price_cents: 2600, buyer_ref: Some("b-7".into()), ttl_ms: None })));
    let sent = server.pings();
    assert_eq!(sent.len(), 1);
    assert_eq!(sent[0]["ping_id"], "ping-1");
    assert_eq!(sent[0]["campaign_id"], "camp-1");
    assert_eq!(sent[0]["ping"], serde_json::to_value(ping()).unwrap());
}

#[tokio::test]
async fn a_reject_answer_carries_the_buyers_code_and_message() {
    let server = BuyerServer::scripted(
        Reply::json(json!({"decision": "reject", "code": "geography", "message": "FL not bought"})),
        unused(),
    )
    .await;

    let decision = ping_once(&server, 1000, BUDGET).await;

    assert_eq!(
        decision,
        Ok(Decision::Reject(Rejection { code: RejectCode::Geography, message: "FL not bought".into() }))
    );
}

#[tokio::test]
async fn a_buyer_slower_than_its_endpoint_timeout_is_a_timeout() {
    let server = BuyerServer::scripted(
        Reply::json(json!({"decision": "bid", "price_cents": 900})).delayed(Duration::from_secs(3)),
        unused(),
    )
    .await;

    assert_eq!(ping_once(&server, 100, BUDGET).await, Err(HttpBuyerError::Timeout));
}

#[tokio::test]
async fn the_auction_budget_cuts_a_longer_endpoint_timeout_short() {
    let server = BuyerServer::scripted(
        Reply::json(json!({"decision": "bid", "price_cents": 900})).delayed(Duration::from_secs(3)),
        unused(),
    )
    .await;

    assert_eq!(ping_once(&server, 10_000, Duration::from_millis(100)).await, Err(HttpBuyerError::Timeout));
}

#[tokio::test]
async fn an_exhausted_budget_sends_nothing() {
    let server = BuyerServer::scripted(Reply::json(json!({"decision": "bid", "price_cents": 900})), unused()).await;

    assert_eq!(ping_once(&server, 1000, Duration::ZERO).await, Err(HttpBuyerError::Timeout));
    assert!(server.recorded().is_empty());
}

#[tokio::test]
async fn a_failing_buyer_is_a_status_error_with_its_code() {
    let server = BuyerServer::scripted(Reply::raw(500, "internal error"), unused()).await;

    assert_eq!(ping_once(&server, 1000, BUDGET).await, Err(HttpBuyerError::Status(500)));
}

#[tokio::test]
async fn a_redirect_is_not_followed_but_reported_as_its_status() {
    let server = BuyerServer::scripted(Reply::raw(307, ""), unused()).await;

    assert_eq!(ping_once(&server, 1000, BUDGET).await, Err(HttpBuyerError::Status(307)));
}

#[tokio::test]
async fn malformed_json_is_malformed() {
    let server = BuyerServer::scripted(Reply::raw(200, r#"{"decision": "bid", "price_cents": "#), unused()).await;

    assert!(matches!(ping_once(&server, 1000, BUDGET).await, Err(HttpBuyerError::Malformed(_))));
}

#[tokio::test]
async fn json_that_is_not_a_decision_is_malformed() {
    let server = BuyerServer::scripted(Reply::json(json!({"decision": "maybe", "price_cents": 100})), unused()).await;

    assert!(matches!(ping_once(&server, 1000, BUDGET).await, Err(HttpBuyerError::Malformed(_))));
}

#[tokio::test]
async fn a_body_over_the_cap_is_malformed_even_when_it_is_valid_json() {
    let padding = "x".repeat(DEFAULT_MAX_BODY_BYTES + 1);
    let server = BuyerServer::scripted(
        Reply::json(json!({"decision": "bid", "price_cents": 900, "buyer_ref": padding})),
        unused(),
    )
    .await;

    let answer = ping_once(&server, 2000, BUDGET).await;

    assert!(
        matches!(&answer, Err(HttpBuyerError::Malformed(m)) if m.contains("exceeds")),
        "expected a body-size refusal, got {answer:?}"
    );
}

#[tokio::test]
async fn a_streamed_body_is_cut_off_once_it_passes_the_cap() {
    let padding = "x".repeat(DEFAULT_MAX_BODY_BYTES + 1);
    let server = BuyerServer::scripted(
        Reply::json(json!({"decision": "bid", "price_cents": 900, "buyer_ref": padding})).chunked(),
        unused(),
    )
    .await;

    let answer = ping_once(&server, 2000, BUDGET).await;

    assert!(matches!(&answer, Err(HttpBuyerError::Malformed(m)) if m.contains("exceeds")), "got {answer:?}");
}

#[tokio::test]
async fn a_streamed_body_under_the_cap_is_read_whole() {
    let padding = "x".repeat(DEFAULT_MAX_BODY_BYTES / 2);
    let server = BuyerServer::scripted(
        Reply::json(json!({"decision": "bid", "price_cents": 900, "buyer_ref": padding})).chunked(),
        unused(),
    )
    .await;

    let answer = ping_once(&server, 2000, BUDGET).await;

    assert_eq!(answer.map(|d| d.price_cents()), Ok(Some(900)));
}

#[tokio::test]
async fn the_body_cap_is_configurable() {
    let server = BuyerServer::scripted(Reply::json(json!({"decision": "bid", "price_cents": 900})), unused()).await;
    let ping = ping();
    let request =
        PingRequest { ping_id: "p", campaign_id: "c", sale: SaleKind::Exclusive, floor_cents: 0, ping: &ping };

    let answer = client().with_max_body_bytes(8).ping(&server.endpoints(1000), &request, BUDGET).await;

    assert!(matches!(answer, Err(HttpBuyerError::Malformed(_))));
}

#[tokio::test]
async fn an_unreachable_buyer_is_a_transport_error() {
    // Bind a port, then close it: nothing listens there any more.
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = listener.local_addr().unwrap();
    drop(listener);
    let endpoints = HttpEndpoints {
        ping_url: format!("http://{addr}/ping"),
        post_url: format!("http://{addr}/post"),
        timeout_ms: 1000,
    };
    let ping = ping();
    let request =
        PingRequest { ping_id: "p", campaign_id: "c", sale: SaleKind::Exclusive, floor_cents: 0, ping: &ping };

    let answer = client().ping(&endpoints, &request, BUDGET).await;

    assert!(matches!(answer, Err(HttpBuyerError::Transport(_))), "got {answer:?}");
}

#[tokio::test]
async fn an_accepted_post_returns_the_price_the_buyer_confirms() {
    let server = BuyerServer::scripted(
        unused(),
        Reply::json(json!({"result": "accepted", "price_cents": 2400, "buyer_lead_id": "crm-77"})),
    )
    .await;

    let answer = post_once(&server).await;

    assert_eq!(answer, Ok(PostAnswer::Accepted { price_cents: 2400, buyer_lead_id: Some("crm-77".into()) }));
}

#[tokio::test]
async fn the_post_body_carries_the_full_lead_the_price_and_the_buyers_reference() {
    let server = BuyerServer::scripted(unused(), Reply::json(json!({"result": "accepted", "price_cents": 2600}))).await;

    post_once(&server).await.expect("accepted");

    let posts = server.posts();
    assert_eq!(posts.len(), 1);
    assert_eq!(posts[0]["lead"], serde_json::to_value(lead()).unwrap());
    assert_eq!(posts[0]["price_cents"], 2600);
    assert_eq!(posts[0]["buyer_ref"], "b-7");
    assert_eq!(posts[0]["ping_id"], "ping-1");
}

#[tokio::test]
async fn a_rejecting_post_returns_the_buyers_reason() {
    let server =
        BuyerServer::scripted(unused(), Reply::json(json!({"result": "rejected", "reason": "phone disconnected"})))
            .await;

    assert_eq!(post_once(&server).await, Ok(PostAnswer::Rejected { reason: "phone disconnected".into() }));
}

#[tokio::test]
async fn a_duplicate_post_is_reported_as_duplicate() {
    let server = BuyerServer::scripted(unused(), Reply::json(json!({"result": "duplicate"}))).await;

    assert_eq!(post_once(&server).await, Ok(PostAnswer::Duplicate));
}

#[tokio::test]
async fn a_post_answer_without_a_known_result_is_malformed() {
    let server = BuyerServer::scripted(unused(), Reply::json(json!({"result": "thanks"}))).await;

    assert!(matches!(post_once(&server).await, Err(HttpBuyerError::Malformed(_))));
}

#[tokio::test]
async fn a_slow_post_is_cut_off_by_its_budget() {
    let server = BuyerServer::scripted(
        unused(),
        Reply::json(json!({"result": "accepted", "price_cents": 2600})).delayed(Duration::from_secs(3)),
    )
    .await;
    let lead = lead();
    let request = PostRequest { ping_id: "p", campaign_id: "c", price_cents: 2600, buyer_ref: None, lead: &lead };

    let answer = client().post(&server.post_url(), &request, Duration::from_millis(100)).await;

    assert_eq!(answer, Err(HttpBuyerError::Timeout));
}
