//! Plugins of every released contract version run side by side, through the real server: a buyer built against
//! 0.1.0 (wit-bindgen directly, as the 0.1 SDK built them) and one built with the SDK against 0.2.0 bid in one
//! auction, each on its own version's bindings; a 0.1.0 redactor still reduces its publisher's leads; and only the
//! 0.2.0 buyer is told the sale and the floor.

#[path = "common/service.rs"]
mod service_harness;

use serde_json::{Value, json};
use service_harness::{TestService, api_keys, plugin_bytes, plugin_path};

const OPERATOR: &str = "op-key";
const SHARED_PUBLISHER: &str = "shared-key";
const OLD_PUBLISHER: &str = "old-key";

/// Publisher `shared-pub` sells shared to up to two buyers with a floor of 500 through the standard (0.2.0) redactor;
/// `old-pub` sells exclusive through the 0.1.0 redactor. Buyer `today` bids 2000 exclusive, 40 % less shared, and logs
/// what it is given; buyer `legacy` bids 900 on a 0.1.0 plugin.
fn exchange_toml() -> String {
    format!(
        r#"
{keys}

[plugins]
standard = {standard}
config-buyer = {config_buyer}
flat-0-1 = {flat}
plain-0-1 = {plain}

[[publishers]]
id = "shared-pub"
selection = "shared"
shared_max_buyers = 2
floor_cents = 500
ping_deadline_ms = 5000
post_deadline_ms = 5000

[[publishers]]
id = "old-pub"
redactor = "plain-0-1"
ping_deadline_ms = 5000
post_deadline_ms = 5000

[[buyers]]
id = "today"
time_zone = "America/New_York"

[[buyers]]
id = "legacy"
time_zone = "America/New_York"

[[campaigns]]
id = "today-health"
buyer_id = "today"
target = {{ kind = "wasm", plugin = "config-buyer", config = {{ base_price_cents = 2000, echo_input = true, modifiers = {{ shared = {{ percent = -40 }} }} }}, delivery = {{ kind = "pickup" }} }}

[[campaigns]]
id = "legacy-health"
buyer_id = "legacy"
target = {{ kind = "wasm", plugin = "flat-0-1", config = "900", delivery = {{ kind = "pickup" }} }}
"#,
        keys = api_keys(&[
            ("operator", None, OPERATOR),
            ("publisher", Some("shared-pub"), SHARED_PUBLISHER),
            ("publisher", Some("old-pub"), OLD_PUBLISHER),
        ]),
        standard = plugin_path("standard-redactor"),
        config_buyer = plugin_path("config-buyer"),
        flat = plugin_path("flat-buyer-0-1"),
        plain = plugin_path("plain-redactor-0-1"),
    )
}

/// A 58-year-old in Miami (ZIP3 331), from source `fb` and sub id `ad-7`; `n` makes the consumer distinct.
fn lead(n: u32) -> Value {
    json!({
        "vertical": "health-insurance",
        "source_id": "fb",
        "sub_id": "ad-7",
        "consumer": {
            "first_name": "Maria", "last_name": "Lopez",
            "phone": format!("305555{n:04}"), "email": format!("maria{n}@example.com"),
            "street": "1 Ocean Dr", "city": "Miami", "state": "FL", "zip5": "33139",
            "date_of_birth": "1968-04-02"
        },
        "consent": { "trusted_form_url": "https://cert.trustedform.com/abc", "tcpa_text": "I agree" }
    })
}

/// Sends `lead` one-shot with `key`, expects it sold, and returns the operator's trace of it.
async fn sold(service: &TestService, key: &str, lead: &Value) -> Value {
    let answer = service.post(key, "/v1/leads", lead).await;
    assert_eq!((answer.status, answer.body["outcome"].as_str()), (200, Some("sold")), "{}", answer.text);
    let lead_id = answer.body["lead_id"].as_str().expect("a lead id");
    let trace = service.get(OPERATOR, &format!("/v1/leads/{lead_id}/trace")).await;
    assert_eq!(trace.status, 200, "{}", trace.text);
    trace.body
}

/// The traced campaign `id` of an auction.
fn campaign<'a>(trace: &'a Value, id: &str) -> &'a Value {
    let campaigns = trace["outcome"]["trace"]["campaigns"].as_array().expect("campaign traces");
    campaigns.iter().find(|c| c["campaign_id"] == id).unwrap_or_else(|| panic!("{id} is traced: {trace}"))
}

/// The sales of an auction as (campaign, price).
fn sales(trace: &Value) -> Vec<(String, u64)> {
    let mut sales: Vec<(String, u64)> = trace["sales"]
        .as_array()
        .expect("sales")
        .iter()
        .map(|s| (s["campaign_id"].as_str().unwrap_or_default().to_owned(), s["price_cents"].as_u64().unwrap_or(0)))
        .collect();
    sales.sort();
    sales
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_0_1_buyer_and_a_0_2_buyer_bid_in_one_auction_each_told_what_its_contract_says() {
    let service = TestService::start(&exchange_toml()).await;
    let trace = sold(&service, SHARED_PUBLISHER, &lead(1)).await;

    // Both sold: the 0.2.0 buyer priced the shared sale 40 % down, the 0.1.0 buyer bid its flat price.
    assert_eq!(sales(&trace), [("legacy-health".to_owned(), 900), ("today-health".to_owned(), 1200)]);

    // The 0.2.0 buyer was told the sale, the floor and the sub id.
    let today = campaign(&trace, "today-health");
    let echo: Value = serde_json::from_str(today["logs"][0]["message"].as_str().expect("the echo line")).expect("JSON");
    assert_eq!(echo["context"]["sale"], "shared", "{echo}");
    assert_eq!(echo["context"]["floor_cents"], 500, "{echo}");
    assert_eq!((&echo["ping"]["sub_id"], &echo["ping"]["source_id"]), (&json!("ad-7"), &json!("fb")), "{echo}");
    assert_eq!((&echo["ping"]["zip3"], &echo["ping"]["age"]), (&json!("331"), &json!(58)), "{echo}");

    // The 0.1.0 buyer got the same ping in its own form: its buyer_ref names the state, ZIP3 and age it read.
    let legacy = campaign(&trace, "legacy-health");
    assert_eq!(legacy["answer"]["buyer_ref"], "FL-331-58", "{legacy}");
    service.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_exclusive_sale_is_priced_as_exclusive_and_a_0_1_redactor_still_reduces_its_leads() {
    let service = TestService::start(&exchange_toml()).await;
    // The 0.1.0 redactor cannot pass the sub id on: the ping goes out without it, which the PII guard allows.
    let trace = sold(&service, OLD_PUBLISHER, &lead(2)).await;
    assert_eq!(sales(&trace), [("today-health".to_owned(), 2000)]);
    let today = campaign(&trace, "today-health");
    let echo: Value = serde_json::from_str(today["logs"][0]["message"].as_str().expect("the echo line")).expect("JSON");
    assert_eq!((&echo["context"]["sale"], &echo["context"]["floor_cents"]), (&json!("exclusive"), &json!(0)));
    assert_eq!(echo["ping"].get("sub_id"), None, "{echo}");
    assert_eq!(campaign(&trace, "legacy-health")["answer"]["price_cents"], 900);
    service.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_upload_of_either_version_is_stored_with_its_contract_and_an_unknown_one_is_refused() {
    let service = TestService::start(&exchange_toml()).await;
    for (name, package, version) in [("old", "flat-buyer-0-1", "0.1.0"), ("new", "config-buyer", "0.2.0")] {
        let uploaded =
            service.post_bytes(OPERATOR, &format!("/v1/plugins/{name}/versions"), plugin_bytes(package)).await;
        assert_eq!(uploaded.status, 201, "{}", uploaded.text);
        assert_eq!(uploaded.body["contract_version"], version, "{}", uploaded.text);
    }
    let future = pingpost_plugins::hostile_fixture("wrong-version").expect("the fixture");
    let refused = service.post_bytes(OPERATOR, "/v1/plugins/future/versions", future).await;
    assert_eq!(refused.status, 422, "{}", refused.text);
    assert!(refused.message().contains("0.1.0 or 0.2.0"), "{}", refused.text);
    service.shutdown().await;
}
