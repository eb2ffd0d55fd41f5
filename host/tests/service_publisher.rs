//! The publisher API end to end: the real `pingpost serve` on 127.0.0.1, a real HTTP client, a real webhook receiver.
//! One-shot and two-step sales, the outbox delivering a Wasm buyer's lead, `Idempotency-Key`, the publisher's own
//! leads only, bad input answered 4xx with the field named, the rate limit, and the redactor upload.

#[path = "common/http_buyer_server.rs"]
mod http_buyer_server;
#[path = "common/service.rs"]
mod service_harness;

use std::time::Duration;

use http_buyer_server::{BuyerServer, Reply};
use pingpost::clock::Clock;
use pingpost::service::api::idempotency::STALE_AFTER_MS;
use pingpost::service::hold_sweep;
use pingpost::storage::registry::{Idempotency, IdempotentLead};
use serde_json::{Value, json};
use service_harness::{
    Answer, TestService, api_keys, exchange_head, http_buyer_tables, plugin_bytes, standard_plugins,
};
use sha2::{Digest, Sha256};

const OPERATOR: &str = "op-key";
const PUBLISHER: &str = "pub-key";
const OTHER_PUBLISHER: &str = "other-pub-key";
const BUYER: &str = "acme-key";

/// Publisher `pub-1` (10 % margin) and `pub-2`; buyer `acme` bids 2000 on a Wasm campaign delivered to `webhook`;
/// buyer `zenith` bids 1500 on a pick-up campaign.
fn exchange_toml(webhook: &str, server: &str) -> String {
    format!(
        r#"
[server]
{server}

{keys}

{plugins}
[[publishers]]
id = "pub-1"
ping_deadline_ms = 5000
post_deadline_ms = 10000
margin_bps = 1000
dedupe_window_days = 30

[[publishers]]
id = "pub-2"
ping_deadline_ms = 5000
post_deadline_ms = 10000

[[buyers]]
id = "acme"
time_zone = "America/New_York"

[[buyers]]
id = "zenith"
time_zone = "America/New_York"

[[campaigns]]
id = "acme-health"
buyer_id = "acme"
target = {{ kind = "wasm", plugin = "config-buyer", config = {{ base_price_cents = 2000 }}, delivery = {{ kind = "webhook", url = "{webhook}" }} }}

[[campaigns]]
id = "zenith-health"
buyer_id = "zenith"
target = {{ kind = "wasm", plugin = "config-buyer", config = {{ base_price_cents = 1500 }}, delivery = {{ kind = "pickup" }} }}
"#,
        keys = api_keys(&[
            ("operator", None, OPERATOR),
            ("publisher", Some("pub-1"), PUBLISHER),
            ("publisher", Some("pub-2"), OTHER_PUBLISHER),
            ("buyer", Some("acme"), BUYER)
        ]),
        plugins = standard_plugins(),
    )
}

/// A lead of a 58-year-old in Florida; `n` makes the consumer distinct.
fn lead(n: u32) -> Value {
    json!({
        "vertical": "health-insurance",
        "consumer": {
            "first_name": "Maria", "last_name": "Lopez",
            "phone": format!("305555{n:04}"), "email": format!("maria{n}@example.com"),
            "street": "1 Ocean Dr", "city": "Miami", "state": "FL", "zip5": "33139",
            "date_of_birth": "1968-04-02"
        },
        "consent": { "trusted_form_url": "https://cert.trustedform.com/abc", "tcpa_text": "I agree" }
    })
}

async fn start(server: &str) -> (TestService, BuyerServer) {
    let webhook = BuyerServer::scripted(Reply::json(json!({})), Reply::json(json!({ "accepted": true }))).await;
    let t = TestService::start(&exchange_toml(&webhook.post_url(), server)).await;
    (t, webhook)
}

/// Waits (real time) until `check` holds, for the outbox worker's asynchronous delivery.
async fn eventually(what: &str, mut check: impl FnMut() -> bool) {
    for _ in 0..200 {
        if check() {
            return;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    panic!("timed out waiting for {what}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_lead_sells_to_the_best_bid_and_its_webhook_gets_it_once_through_the_outbox() {
    let (t, webhook) = start("").await;

    let answer = t.post(PUBLISHER, "/v1/leads", &lead(1)).await;

    assert_eq!(answer.status, 200, "{}", answer.text);
    assert_eq!(answer.body["outcome"], "sold");
    assert_eq!(answer.body["payout_cents"], 1800, "2000 minus the 10 % margin");
    assert_eq!(answer.body["buyers"], 1);
    assert!(answer.body.get("trace").is_none() && !answer.text.contains("acme"), "publishers do not see buyers");
    eventually("the webhook delivery", || webhook.posts().len() == 1).await;
    let delivered = &webhook.posts()[0];
    assert_eq!(delivered["campaign_id"], "acme-health");
    assert_eq!(delivered["lead"]["consumer"]["phone"], "+13055550001", "the winner gets the full lead");
    // Read back: the publisher's view of its lead, and nothing is delivered twice.
    let lead_id = answer.body["lead_id"].as_str().expect("a lead id");
    let read = t.get(PUBLISHER, &format!("/v1/leads/{lead_id}")).await;
    assert_eq!((read.status, &read.body["outcome"], &read.body["payout_cents"]), (200, &json!("sold"), &json!(1800)));
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert_eq!(webhook.posts().len(), 1, "delivered exactly once");
    t.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_same_consumer_again_is_a_duplicate_and_an_invalid_lead_names_its_fields() {
    let (t, _webhook) = start("").await;
    assert_eq!(t.post(PUBLISHER, "/v1/leads", &lead(2)).await.body["outcome"], "sold");

    let again = t.post(PUBLISHER, "/v1/leads", &lead(2)).await;
    assert_eq!((again.status, &again.body["outcome"]), (200, &json!("duplicate")));

    let mut bad = lead(3);
    bad["consumer"]["zip5"] = json!("3313");
    bad["consumer"]["state"] = json!("ZZ");
    let refused = t.post(PUBLISHER, "/v1/leads", &bad).await;
    assert_eq!((refused.status, &refused.body["outcome"]), (422, &json!("rejected")), "{}", refused.text);
    let fields: Vec<&str> = refused.body["field_errors"]
        .as_array()
        .expect("field errors")
        .iter()
        .filter_map(|e| e["field"].as_str())
        .collect();
    assert!(fields.contains(&"consumer.zip5") && fields.contains(&"consumer.state"), "{fields:?}");
    t.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_step_ping_then_post_sells_once_and_only_the_publisher_that_pinged_may_post() {
    let (t, _webhook) = start("").await;

    let ping = t.post(PUBLISHER, "/v1/ping", &lead(4)).await;
    assert_eq!((ping.status, &ping.body["outcome"]), (200, &json!("bid")), "{}", ping.text);
    assert_eq!(ping.body["payout_cents"], 1800);
    assert!(ping.body["expires_at_unix_ms"].as_i64().is_some());
    let ping_id = ping.body["ping_id"].as_str().expect("a ping id").to_owned();

    let stranger = t.post(OTHER_PUBLISHER, "/v1/post", &json!({ "ping_id": ping_id })).await;
    assert_eq!((stranger.status, stranger.code()), (404, "not_found"), "another publisher's ping is not found");

    let post = t.post(PUBLISHER, "/v1/post", &json!({ "ping_id": ping_id })).await;
    assert_eq!((post.status, &post.body["outcome"], &post.body["payout_cents"]), (200, &json!("sold"), &json!(1800)));
    let again = t.post(PUBLISHER, "/v1/post", &json!({ "ping_id": ping_id })).await;
    assert_eq!((again.status, again.code(), again.field()), (409, "already_posted", "ping_id"));
    let unknown = t.post(PUBLISHER, "/v1/post", &json!({ "ping_id": "p_nope" })).await;
    assert_eq!((unknown.status, unknown.field()), (404, "ping_id"));
    let typo = t.post(PUBLISHER, "/v1/post", &json!({ "pingid": ping_id })).await;
    assert_eq!(typo.status, 422, "{}", typo.text);
    t.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_ping_expires_with_the_clock() {
    let (t, _webhook) = start("").await;
    let ping = t.post(PUBLISHER, "/v1/ping", &lead(5)).await;
    let expires = ping.body["expires_at_unix_ms"].as_i64().expect("an expiry");

    t.clock.set(expires + 1);
    let post = t.post(PUBLISHER, "/v1/post", &json!({ "ping_id": ping.body["ping_id"] })).await;

    assert_eq!((post.status, post.code()), (410, "ping_expired"), "{}", post.text);
    t.shutdown().await;
}

/// Publisher `pub-1` (no margin); `big` bids 4000 under a 10000 daily spend cap, `small` bids 1500 uncapped.
fn quotes_toml() -> String {
    format!(
        r#"
{head}
[[buyers]]
id = "b1"
time_zone = "America/New_York"

[[buyers]]
id = "b2"
time_zone = "America/New_York"

[[campaigns]]
id = "big"
buyer_id = "b1"
caps = {{ spend_per_day_cents = 10000 }}
target = {{ kind = "wasm", plugin = "config-buyer", config = {{ base_price_cents = 4000 }}, delivery = {{ kind = "pickup" }} }}

[[campaigns]]
id = "small"
buyer_id = "b2"
target = {{ kind = "wasm", plugin = "config-buyer", config = {{ base_price_cents = 1500 }}, delivery = {{ kind = "pickup" }} }}
"#,
        head = exchange_head(
            &api_keys(&[("operator", None, OPERATOR), ("publisher", Some("pub-1"), PUBLISHER)]),
            "post_deadline_ms = 10000"
        ),
    )
}

/// `campaign`'s entry in the trace of the ping or lead `answer`, as the operator reads it.
async fn traced(t: &TestService, answer: &Answer, campaign: &str) -> Value {
    let id = answer.body["ping_id"].as_str().or(answer.body["lead_id"].as_str()).expect("an id");
    let trace = t.get(OPERATOR, &format!("/v1/leads/{id}/trace")).await;
    let campaigns = trace.body["outcome"]["trace"]["campaigns"].as_array().cloned().unwrap_or_default();
    campaigns.into_iter().find(|c| c["campaign_id"] == campaign).unwrap_or_default()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_quote_is_never_more_than_the_campaign_can_pay_and_holds_its_last_unit_until_posted_or_expired() {
    let t = TestService::start(&quotes_toml()).await;
    for n in 0..2 {
        let sold = t.post(PUBLISHER, "/v1/leads", &lead(700 + n)).await;
        assert_eq!((sold.status, &sold.body["payout_cents"]), (200, &json!(4000)), "{}", sold.text);
    }
    // 2000 left of big's 10000: its 4000 bid is not quoted, and the post pays what was quoted.
    let ping = t.post(PUBLISHER, "/v1/ping", &lead(702)).await;
    assert_eq!((ping.status, &ping.body["payout_cents"]), (200, &json!(1500)), "{}", ping.text);
    assert_eq!(
        traced(&t, &ping, "big").await["answer"],
        json!({ "answer": "cap_would_exceed", "price_cents": 4000, "cap": "spend_per_day", "left_cents": 2000 })
    );
    let post = t.post(PUBLISHER, "/v1/post", &json!({ "ping_id": ping.body["ping_id"] })).await;
    assert_eq!((post.status, &post.body["payout_cents"]), (200, &json!(1500)), "{}", post.text);
    t.shutdown().await;

    // Room for exactly one 4000 sale: the first quote holds it, the second cannot promise it.
    let t =
        TestService::start(&quotes_toml().replace("spend_per_day_cents = 10000", "spend_per_day_cents = 4000")).await;
    let first = t.post(PUBLISHER, "/v1/ping", &lead(710)).await;
    let second = t.post(PUBLISHER, "/v1/ping", &lead(711)).await;
    assert_eq!((&first.body["payout_cents"], &second.body["payout_cents"]), (&json!(4000), &json!(1500)));
    let held = traced(&t, &second, "big").await;
    assert_eq!(
        held["ineligible"],
        json!({ "reason": "cap_reached", "cap": "spend_per_day" }),
        "the hold counts: {held}"
    );
    let post = t.post(PUBLISHER, "/v1/post", &json!({ "ping_id": second.body["ping_id"] })).await;
    assert_eq!(&post.body["payout_cents"], &json!(1500), "{}", post.text);

    // The first quote is never posted: once it expired (and a post begun before could have ended, 10 s) the sweep
    // gives its unit back.
    let expires = first.body["expires_at_unix_ms"].as_i64().expect("an expiry");
    t.clock.set(expires + 9_999);
    tokio::time::sleep(hold_sweep::INTERVAL * 2).await;
    assert_eq!(t.service.state.store.pending_reservations(), Ok(1), "held while a post begun in time may run");
    t.clock.set(expires + 10_000);
    let store = t.service.state.store.clone();
    eventually("the expired quote's hold released", || store.pending_reservations() == Ok(0)).await;
    let third = t.post(PUBLISHER, "/v1/ping", &lead(712)).await;
    assert_eq!(&third.body["payout_cents"], &json!(4000), "{}", third.text);
    let post = t.post(PUBLISHER, "/v1/post", &json!({ "ping_id": third.body["ping_id"] })).await;
    assert_eq!((&post.body["outcome"], &post.body["payout_cents"]), (&json!("sold"), &json!(4000)), "{}", post.text);
    t.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_retry_with_the_same_idempotency_key_gets_the_first_answer_and_sells_nothing_more() {
    let (t, webhook) = start("").await;
    let send = |key: &'static str, body: Value| {
        let request = t.client.post(t.url("/v1/leads")).header("Idempotency-Key", key).json(&body);
        t.send(PUBLISHER, request)
    };

    let first = send("order-1", lead(6)).await;
    let retry = send("order-1", lead(6)).await;
    let reused = send("order-1", lead(7)).await;

    assert_eq!(first.body["outcome"], "sold");
    assert_eq!(retry.status, 200);
    assert_eq!(retry.body, first.body, "the retry gets the first answer, not `duplicate`");
    assert_eq!((reused.status, reused.code()), (409, "idempotency_key_reused"));
    eventually("the delivery", || webhook.posts().len() == 1).await;
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert_eq!(webhook.posts().len(), 1, "one sale, one delivery");
    // The same key from another publisher is another request.
    let other = t
        .send(OTHER_PUBLISHER, t.client.post(t.url("/v1/leads")).header("Idempotency-Key", "order-1").json(&lead(8)))
        .await;
    assert_eq!(other.body["outcome"], "sold", "{}", other.text);
    t.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bad_input_is_a_4xx_with_a_json_error_naming_the_field_never_a_500() {
    let (t, _webhook) = start("max_body_bytes = 2048").await;
    let raw =
        |body: &'static str| t.client.post(t.url("/v1/leads")).header("content-type", "application/json").body(body);

    let malformed = t.send(PUBLISHER, raw("{\"vertical\": ")).await;
    assert_eq!((malformed.status, malformed.code()), (400, "malformed_json"));
    let mut wrong_type = lead(9);
    wrong_type["vertical"] = json!(5);
    let wrong_type = t.post(PUBLISHER, "/v1/leads", &wrong_type).await;
    assert_eq!((wrong_type.status, wrong_type.code(), wrong_type.field()), (422, "invalid_field", "vertical"));
    let mut missing = lead(9);
    missing["consumer"].as_object_mut().expect("object").remove("phone");
    let missing = t.post(PUBLISHER, "/v1/leads", &missing).await;
    assert_eq!(missing.status, 422, "{}", missing.text);
    assert!(missing.field().starts_with("consumer"), "{}", missing.text);
    assert!(missing.message().contains("phone"), "{}", missing.text);
    let mut unknown = lead(9);
    unknown["consumer"]["shoe_size"] = json!(42);
    let unknown = t.post(PUBLISHER, "/v1/leads", &unknown).await;
    assert_eq!(unknown.status, 422, "{}", unknown.text);
    assert!(unknown.field().starts_with("consumer"), "{}", unknown.text);
    assert!(unknown.message().contains("shoe_size"), "{}", unknown.text);
    let not_object = t.post(PUBLISHER, "/v1/leads", &json!([1, 2])).await;
    assert_eq!(not_object.status, 422);
    let mut huge = lead(9);
    huge["extra"] = json!({ "note": "x".repeat(4096) });
    let huge = t.post(PUBLISHER, "/v1/leads", &huge).await;
    assert_eq!((huge.status, huge.code()), (413, "body_too_large"));
    let bad_query = t.post(PUBLISHER, "/v1/leads?shared_max_buyers=many", &lead(9)).await;
    assert_eq!(bad_query.status, 422, "{}", bad_query.text);
    let other_publisher = t.post(PUBLISHER, "/v1/leads", &json!({ "publisher_id": "pub-2", "vertical": "x" })).await;
    assert_eq!(
        (other_publisher.status, other_publisher.code(), other_publisher.field()),
        (403, "wrong_publisher", "publisher_id")
    );
    let no_route = t.get(PUBLISHER, "/v1/nothing-here").await;
    assert_eq!((no_route.status, no_route.code()), (404, "not_found"));
    let wrong_method = t.get(PUBLISHER, "/v1/leads").await;
    assert_eq!((wrong_method.status, wrong_method.code()), (405, "method_not_allowed"));
    for answer in [&malformed, &wrong_type, &huge, &no_route, &wrong_method] {
        assert!(answer.content_type.starts_with("application/json"), "{answer:?}");
    }
    // Nothing accepted before is lost: the exchange still sells.
    assert_eq!(t.post(PUBLISHER, "/v1/leads", &lead(10)).await.body["outcome"], "sold");
    t.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_publisher_over_its_rate_gets_429_with_retry_after_and_others_are_not_slowed() {
    let (t, _webhook) = start("publisher_requests_per_second = 1\npublisher_burst = 2").await;

    let mut statuses = Vec::new();
    for n in 0..6 {
        statuses.push(t.post(PUBLISHER, "/v1/leads", &lead(20 + n)).await);
    }
    let other = t.post(OTHER_PUBLISHER, "/v1/leads", &lead(30)).await;

    assert_eq!(statuses.iter().map(|a| a.status).collect::<Vec<_>>()[..2], [200, 200]);
    let limited = statuses.iter().find(|a| a.status == 429).expect("the burst of 2 is used up");
    assert_eq!(limited.code(), "rate_limited");
    assert_eq!(other.status, 200, "the limit is per publisher");
    t.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_publisher_reads_only_its_own_leads() {
    let (t, _webhook) = start("").await;
    let mine = t.post(PUBLISHER, "/v1/leads", &lead(40)).await;
    let lead_id = mine.body["lead_id"].as_str().expect("an id");

    let theirs = t.get(OTHER_PUBLISHER, &format!("/v1/leads/{lead_id}")).await;
    let buyer = t.get(BUYER, &format!("/v1/leads/{lead_id}")).await;
    let nobody = t.get("", &format!("/v1/leads/{lead_id}")).await;
    let forged = t.get("pp_not-a-key", &format!("/v1/leads/{lead_id}")).await;

    assert_eq!(theirs.status, 404, "another publisher's lead id does not even exist for them");
    assert_eq!((buyer.status, buyer.code()), (403, "forbidden"));
    assert_eq!((nobody.status, nobody.code()), (401, "missing_api_key"));
    assert_eq!((forged.status, forged.code()), (401, "invalid_api_key"));
    t.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_publisher_uploads_its_redactor_and_garbage_is_refused_with_the_reason() {
    let (t, _webhook) = start("").await;

    let garbage = t.put_bytes(PUBLISHER, "/v1/publisher/redactor", b"\0asm not really".to_vec()).await;
    let buyer_plugin = t.put_bytes(PUBLISHER, "/v1/publisher/redactor", plugin_bytes("config-buyer")).await;
    let uploaded = t.put_bytes(PUBLISHER, "/v1/publisher/redactor", plugin_bytes("standard-redactor")).await;

    assert_eq!((garbage.status, garbage.code()), (422, "invalid_plugin"), "{}", garbage.text);
    assert_eq!((buyer_plugin.status, buyer_plugin.code()), (422, "wrong_world"), "{}", buyer_plugin.text);
    assert_eq!(uploaded.status, 201, "{}", uploaded.text);
    assert_eq!((&uploaded.body["name"], &uploaded.body["version"]), (&json!("redactor:pub-1"), &json!(1)));
    let plugin = t.get(OPERATOR, "/v1/plugins/redactor:pub-1").await;
    assert_eq!(plugin.body["active_version"], 1, "{}", plugin.text);
    // The new redactor is live: the next lead still sells through it.
    assert_eq!(t.post(PUBLISHER, "/v1/leads", &lead(50)).await.body["outcome"], "sold");
    t.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn health_and_the_openapi_document_need_no_key_and_everything_else_does() {
    let (t, _webhook) = start("").await;

    let health = t.get("", "/healthz").await;
    let openapi = t.get("", "/openapi.json").await;
    let metrics = t.get("", "/metrics").await;

    assert_eq!((health.status, &health.body["status"]), (200, &json!("ok")));
    assert_eq!(openapi.status, 200);
    assert_eq!(openapi.body["openapi"], "3.1.0");
    assert!(openapi.body["paths"]["/v1/leads"]["post"].is_object());
    assert_eq!(metrics.status, 401);
    t.shutdown().await;
}

/// `pub-1` and one HTTP buyer whose post answer comes after `post_delay`, with requests timing out after 300 ms.
fn slow_post_toml(buyer: &BuyerServer) -> String {
    format!(
        r#"
[server]
request_timeout_ms = 300

{keys}

{plugins}
[[publishers]]
id = "pub-1"
ping_deadline_ms = 2000
post_deadline_ms = 5000
{buyer}
"#,
        keys = api_keys(&[("operator", None, OPERATOR), ("publisher", Some("pub-1"), PUBLISHER)]),
        plugins = standard_plugins(),
        buyer = http_buyer_tables("slow", "slow-http", &buyer.ping_url(), &buyer.post_url(), 1000),
    )
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_auction_cut_off_by_the_request_timeout_still_finishes_and_records_its_sale() {
    let buyer = BuyerServer::scripted(
        Reply::json(json!({"decision": "bid", "price_cents": 2500})),
        Reply::json(json!({"result": "accepted", "price_cents": 2500})).delayed(Duration::from_millis(900)),
    )
    .await;
    let t = TestService::start(&slow_post_toml(&buyer)).await;
    let send = || t.send(PUBLISHER, t.client.post(t.url("/v1/leads")).header("Idempotency-Key", "k-1").json(&lead(9)));

    // The buyer holds the post past the request timeout: the publisher gets 503, but the buyer has the lead.
    let first = send().await;
    assert_eq!((first.status, first.code()), (503, "timeout"), "{}", first.text);
    eventually("the buyer to get the post", || buyer.posts().len() == 1).await;
    let lead_id = buyer.posts()[0]["ping_id"].as_str().expect("the post names its ping id").to_owned();

    // The auction finished on its own task: the sale is recorded, nothing stays reserved, and the publisher's retry
    // gets the answer it missed instead of a second auction.
    let mut read = t.get(PUBLISHER, &format!("/v1/leads/{lead_id}")).await;
    for _ in 0..40 {
        if read.status == 200 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
        read = t.get(PUBLISHER, &format!("/v1/leads/{lead_id}")).await;
    }
    assert_eq!((read.status, &read.body["outcome"]), (200, &json!("sold")), "{}", read.text);
    let retry = send().await;
    assert_eq!((retry.status, &retry.body["outcome"], &retry.body["lead_id"]), (200, &json!("sold"), &json!(lead_id)));
    assert_eq!(buyer.posts().len(), 1, "one post, one sale");
    t.shutdown().await;
}

/// `pub-1` and one HTTP campaign per `(id, buyer)`, each on its own buyer of the same name; exclusive, so a refused
/// post falls back to the next bid.
fn http_buyers_toml(buyers: &[(&str, &BuyerServer)], post_deadline_ms: u64) -> String {
    let keys = api_keys(&[("operator", None, OPERATOR), ("publisher", Some("pub-1"), PUBLISHER)]);
    let mut toml = exchange_head(&keys, &format!("post_deadline_ms = {post_deadline_ms}"));
    for (id, server) in buyers {
        toml.push_str(&http_buyer_tables(id, &format!("{id}-http"), &server.ping_url(), &server.post_url(), 2000));
    }
    toml
}

/// An HTTP buyer bidding `price_cents` whose post answer is `post`.
async fn http_buyer(price_cents: u32, post: Reply) -> BuyerServer {
    BuyerServer::scripted(Reply::json(json!({"decision": "bid", "price_cents": price_cents})), post).await
}

/// `(principal, campaign, how)` of each row of a trace's PII audit.
fn audit_rows(trace: &Value) -> Vec<(String, String, String)> {
    let rows = trace["pii_audit"].as_array().expect("the trace lists the PII audit");
    rows.iter()
        .map(|r| {
            let text = |key: &str| r[key].as_str().unwrap_or_default().to_owned();
            (text("principal_id"), text("campaign_id"), text("how"))
        })
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_buyer_posted_the_full_lead_is_in_the_pii_audit_whatever_it_answered() {
    let rejecting = http_buyer(4000, Reply::json(json!({"result": "rejected", "reason": "not today"}))).await;
    let failing = http_buyer(3000, Reply::raw(500, "oops")).await;
    let accepting = http_buyer(2000, Reply::json(json!({"result": "accepted", "price_cents": 2000}))).await;
    let outbid = http_buyer(1000, Reply::json(json!({"result": "accepted", "price_cents": 1000}))).await;
    let buyers = [("rejecting", &rejecting), ("failing", &failing), ("accepting", &accepting), ("outbid", &outbid)];
    let t = TestService::start(&http_buyers_toml(&buyers, 10_000)).await;

    let sold = t.send(PUBLISHER, t.client.post(t.url("/v1/leads")).json(&lead(21))).await;
    assert_eq!((sold.status, &sold.body["outcome"]), (200, &json!("sold")), "{}", sold.text);
    let lead_id = sold.body["lead_id"].as_str().expect("a lead id").to_owned();
    let posted: Vec<usize> = buyers.iter().map(|(_, s)| s.posts().len()).collect();
    assert_eq!(posted, [1, 1, 1, 0], "fell back down the ranking to the accepting buyer");

    let trace = t.get(OPERATOR, &format!("/v1/leads/{lead_id}/trace")).await;
    assert_eq!(trace.status, 200, "{}", trace.text);
    let row = |buyer: &str| (buyer.to_owned(), format!("{buyer}-http"), "post".to_owned());
    assert_eq!(audit_rows(&trace.body), [row("rejecting"), row("failing"), row("accepting")]);
    let posts = trace.body["outcome"]["trace"]["posts"].as_array().map(Vec::len);
    assert_eq!(posts, Some(3), "the trace's posts are the audit's rows: {}", trace.text);
    t.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_buyer_that_never_answers_its_post_is_in_the_pii_audit() {
    let silent = http_buyer(
        2500,
        Reply::json(json!({"result": "accepted", "price_cents": 2500})).delayed(Duration::from_millis(3000)),
    )
    .await;
    let t = TestService::start(&http_buyers_toml(&[("silent", &silent)], 500)).await;

    let unsold = t.send(PUBLISHER, t.client.post(t.url("/v1/leads")).json(&lead(22))).await;
    assert_eq!((unsold.status, &unsold.body["outcome"]), (200, &json!("unsold")), "{}", unsold.text);
    let lead_id = unsold.body["lead_id"].as_str().expect("a lead id").to_owned();
    let trace = t.get(OPERATOR, &format!("/v1/leads/{lead_id}/trace")).await;
    assert_eq!(audit_rows(&trace.body), [("silent".into(), "silent-http".into(), "post".into())], "{}", trace.text);
    t.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_request_whose_task_was_lost_is_resolved_once_older_than_any_auction_can_run() {
    let (t, _webhook) = start("").await;
    let body = serde_json::to_vec(&lead(31)).expect("JSON");
    // What a request whose task died (or whose process was killed, on this start) leaves: begun, never answered.
    let lost = IdempotentLead { lead_id: "p_lost".into(), publisher_id: "pub-1".into(), keys: None };
    let sha = hex::encode(Sha256::digest(&body));
    let began = t.service.state.store.idempotency_begin(
        "publisher:pub-1",
        "leads order-9",
        &sha,
        t.clock.now_unix_ms(),
        Some(&lost),
    );
    assert_eq!(began, Ok(Idempotency::Run));
    let send = || {
        let request = t.client.post(t.url("/v1/leads")).header("Idempotency-Key", "order-9");
        t.send(PUBLISHER, request.header("content-type", "application/json").body(body.clone()))
    };

    let running = send().await;
    assert_eq!((running.status, running.code()), (409, "idempotency_in_progress"), "it may still be running");
    t.clock.advance(STALE_AFTER_MS + 1);
    let resolved = send().await;
    assert_eq!((resolved.status, &resolved.body["outcome"]), (200, &json!("sold")), "{}", resolved.text);
    assert_ne!(resolved.body["lead_id"], "p_lost", "nothing of it was stored: released and run again");
    let replayed = send().await;
    assert_eq!(replayed.body, resolved.body);
    t.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_lead_the_exchange_has_no_room_for_is_refused_503_before_it_is_accepted_and_not_burned() {
    let slow = BuyerServer::scripted(
        Reply::json(json!({"decision": "bid", "price_cents": 2000})).delayed(Duration::from_millis(1500)),
        Reply::json(json!({"result": "accepted", "price_cents": 2000})),
    )
    .await;
    let toml = format!("[server]\nmax_auctions_in_flight = 1\n{}", http_buyers_toml(&[("slow", &slow)], 5_000));
    let t = TestService::start(&toml).await;
    let first = tokio::spawn({
        let (client, url) = (t.client.clone(), t.url("/v1/leads"));
        async move { client.post(url).bearer_auth(PUBLISHER).json(&lead(41)).send().await }
    });
    eventually("the first lead's ping", || !slow.pings().is_empty()).await;

    let refused = t.send(PUBLISHER, t.client.post(t.url("/v1/leads")).json(&lead(42))).await;
    assert_eq!((refused.status, refused.code()), (503, "overloaded"), "{}", refused.text);
    let retry_after = t.client.post(t.url("/v1/leads")).bearer_auth(PUBLISHER).json(&lead(42)).send().await;
    assert_eq!(
        retry_after.expect("answered").headers().get("retry-after").map(|v| v.as_bytes().to_vec()),
        Some(b"1".to_vec())
    );
    let first = first.await.expect("runs").expect("answered").json::<Value>().await.expect("JSON");
    assert_eq!(first["outcome"], "sold", "{first}");

    let later = t.send(PUBLISHER, t.client.post(t.url("/v1/leads")).json(&lead(42))).await;
    assert_eq!((later.status, &later.body["outcome"]), (200, &json!("sold")), "not a duplicate: {}", later.text);
    t.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_request_body_that_stalls_is_a_408_with_the_json_error_not_a_503() {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let (t, _webhook) = start("body_read_timeout_ms = 300").await;
    let mut stream = tokio::net::TcpStream::connect(t.service.addr).await.expect("connects");
    let head = format!(
        "POST /v1/leads HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer {PUBLISHER}\r\nContent-Type: application/json\r\n\
         Content-Length: 400\r\n\r\n{{\"vertical\": "
    );
    stream.write_all(head.as_bytes()).await.expect("sends the start of a body");
    let mut answer = Vec::new();
    let read = tokio::time::timeout(Duration::from_secs(5), stream.read_to_end(&mut answer)).await;
    assert!(read.is_ok(), "answered (and closed) without the rest of the body");
    let answer = String::from_utf8_lossy(&answer);
    assert!(answer.starts_with("HTTP/1.1 408"), "{answer}");
    assert!(answer.contains(r#""code":"body_timeout""#), "{answer}");
    t.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn publishers_that_dedupe_exchange_wide_never_sell_one_consumer_twice_between_them() {
    let publisher = |id: &str, scope: &str| {
        format!(
            "[[publishers]]\nid = \"{id}\"\nping_deadline_ms = 5000\npost_deadline_ms = 10000\ndedupe_window_days = 30\n{scope}\n"
        )
    };
    let toml = format!(
        "{keys}\n{plugins}\n{p1}\n{p2}\n{p3}\n{buyer}",
        keys = api_keys(&[
            ("publisher", Some("pub-1"), PUBLISHER),
            ("publisher", Some("pub-2"), OTHER_PUBLISHER),
            ("publisher", Some("pub-3"), "third-pub-key"),
        ]),
        plugins = standard_plugins(),
        p1 = publisher("pub-1", "dedupe_scope = \"exchange\""),
        p2 = publisher("pub-2", "dedupe_scope = \"exchange\""),
        p3 = publisher("pub-3", ""),
        buyer = service_harness::wasm_buyer_tables("acme", "acme-health", 2000),
    );
    let t = TestService::start(&toml).await;
    let outcome = |answer: &Answer| answer.body["outcome"].as_str().unwrap_or_default().to_owned();

    let first = t.post(PUBLISHER, "/v1/leads", &lead(800)).await;
    assert_eq!(outcome(&first), "sold", "{}", first.text);
    let again = t.post(OTHER_PUBLISHER, "/v1/leads", &lead(800)).await;
    assert_eq!(outcome(&again), "duplicate", "the same consumer from another publisher of the pool: {}", again.text);
    assert!(again.body["reason"].as_str().unwrap_or_default().contains("exchange-wide"), "{}", again.text);
    // A publisher with its own scope neither sees the pool nor feeds it.
    let own = t.post("third-pub-key", "/v1/leads", &lead(800)).await;
    assert_eq!(outcome(&own), "sold", "{}", own.text);
    let third_first = t.post("third-pub-key", "/v1/leads", &lead(801)).await;
    assert_eq!(outcome(&third_first), "sold", "{}", third_first.text);
    let pool_after = t.post(OTHER_PUBLISHER, "/v1/leads", &lead(801)).await;
    assert_eq!(outcome(&pool_after), "sold", "pub-3's lead is not in the pool: {}", pool_after.text);
    let own_again = t.post("third-pub-key", "/v1/leads", &lead(801)).await;
    assert_eq!(outcome(&own_again), "duplicate", "pub-3 still dedupes its own: {}", own_again.text);
    t.shutdown().await;
}
