//! PII at rest, checked the way an attacker with the disk would: after leads that end unsold (the buyer saw the lead
//! and refused it, repeating the consumer's phone in its reason), duplicate, rejected as invalid, refused by the PII
//! guard, and pinged in two steps but never posted (expired), none of those consumers' personal data is anywhere in
//! the data directory's files — the database and its write-ahead log included.

#[path = "common/http_buyer_server.rs"]
mod http_buyer_server;
#[path = "common/service.rs"]
mod service_harness;

use std::path::Path;
use std::time::Duration;

use http_buyer_server::{BuyerServer, Reply};
use serde_json::{Value, json};
use service_harness::{TestService, api_keys, http_buyer_tables, standard_plugins};

const OPERATOR: &str = "op-key";
const PUBLISHER: &str = "pub-key";

/// Health insurance with a free-text extra `note`, `pub-1` (standard redactor, passing `note`; 30-day dedupe; bids
/// stand 60 s) and one HTTP buyer.
fn exchange_toml(buyer: &BuyerServer) -> String {
    format!(
        r#"
[server]
expired_ping_sweep_secs = 1

{keys}

{plugins}
[[verticals]]
name = "health-insurance"
requires = ["consent.tcpa_text", "consent.evidence"]
extras.note = {{ type = "free_text", max_len = 120 }}

[[publishers]]
id = "pub-1"
redactor = "standard"
redactor_config = '{{"allow_extra": ["note"]}}'
ping_deadline_ms = 5000
post_deadline_ms = 5000
dedupe_window_days = 30
default_bid_ttl_ms = 60000
{buyer}
"#,
        keys = api_keys(&[("operator", None, OPERATOR), ("publisher", Some("pub-1"), PUBLISHER)]),
        plugins = standard_plugins(),
        buyer = http_buyer_tables("picky", "picky-http", &buyer.ping_url(), &buyer.post_url(), 2000),
    )
}

/// One consumer's lead; `n` makes every identifying value unique.
fn lead(n: u32, date_of_birth: &str) -> Value {
    json!({
        "vertical": "health-insurance",
        "consumer": {
            "first_name": format!("Quintessa{n}"), "last_name": format!("Vanderbrook{n}"),
            "phone": format!("305555{n:04}"), "email": format!("quintessa{n}@example.org"),
            "street": format!("{n} Kumquat Lane"), "city": "Miami", "state": "FL", "zip5": "33139",
            "date_of_birth": date_of_birth
        },
        "consent": { "trusted_form_url": "https://cert.trustedform.com/abc", "tcpa_text": "I agree" }
    })
}

/// The values of `lead` that identify its consumer.
fn pii_of(lead: &Value) -> Vec<String> {
    let consumer = &lead["consumer"];
    let phone = consumer["phone"].as_str().expect("a phone").to_owned();
    ["first_name", "last_name", "email", "street"]
        .iter()
        .map(|key| consumer[*key].as_str().expect("a string").to_owned())
        .chain([phone])
        .collect()
}

/// Every file under `dir`, with its bytes.
fn files(dir: &Path) -> Vec<(String, Vec<u8>)> {
    let mut found = Vec::new();
    for entry in std::fs::read_dir(dir).expect("reads the data dir") {
        let path = entry.expect("an entry").path();
        if path.is_dir() {
            found.extend(files(&path));
        } else if let Ok(bytes) = std::fs::read(&path) {
            found.push((path.display().to_string(), bytes));
        }
    }
    found
}

/// The files under `dir` that hold `value`.
fn holding(dir: &Path, value: &str) -> Vec<String> {
    let needle = value.as_bytes();
    files(dir)
        .into_iter()
        .filter(|(_, bytes)| bytes.windows(needle.len()).any(|w| w == needle))
        .map(|(n, _)| n)
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn no_unsold_duplicate_rejected_refused_or_expired_leads_pii_is_left_in_the_database_files() {
    let buyer = BuyerServer::start(
        |_: &Value| Reply::json(json!({"decision": "bid", "price_cents": 2000})),
        |post: &Value| {
            let phone = post["lead"]["consumer"]["phone"].as_str().unwrap_or_default().to_owned();
            Reply::json(json!({"result": "rejected", "reason": format!("we already called {phone}")}))
        },
    )
    .await;
    let t = TestService::start(&exchange_toml(&buyer)).await;
    let service = &t;
    let send = |path: &'static str, body: Value| async move { service.post(PUBLISHER, path, &body).await };

    let unsold = lead(1, "1968-04-02");
    let answer = send("/v1/leads", unsold.clone()).await;
    assert_eq!(answer.body["outcome"], "unsold", "{}", answer.text);
    assert_eq!(buyer.posts().len(), 1, "the buyer saw the lead before refusing it");
    let answer = send("/v1/leads", unsold.clone()).await;
    assert_eq!(answer.body["outcome"], "duplicate", "{}", answer.text);

    let invalid = lead(2, "2019-04-02");
    let answer = send("/v1/leads", invalid.clone()).await;
    assert_eq!(answer.status, 422, "a child's lead is invalid: {}", answer.text);

    let mut leaky = lead(3, "1968-04-02");
    leaky["extra"] = json!({"note": "call 305 555 0003 after six"});
    let answer = send("/v1/leads", leaky.clone()).await;
    assert_eq!(answer.body["outcome"], "error", "the guard refuses the ping: {}", answer.text);

    let pinged = lead(4, "1968-04-02");
    let answer = send("/v1/ping", pinged.clone()).await;
    assert_eq!((answer.status, &answer.body["outcome"]), (200, &json!("bid")), "{}", answer.text);
    t.clock.advance(61_000);
    // The sweep runs every second (on the test's clock for what has expired).
    tokio::time::sleep(Duration::from_millis(2_500)).await;

    let mut left = Vec::new();
    for lead in [&unsold, &invalid, &leaky, &pinged] {
        for value in pii_of(lead) {
            let files = holding(t.data_dir(), &value);
            if !files.is_empty() {
                left.push(format!("{value:?} in {files:?}"));
            }
        }
    }
    assert!(left.is_empty(), "PII left at rest:\n{}", left.join("\n"));
    let late = t.post(PUBLISHER, "/v1/post", &json!({"ping_id": answer.body["ping_id"]})).await;
    assert_eq!(late.code(), "ping_expired", "the sweep closed the ping: {}", late.text);
    t.shutdown().await;
}
