//! Two-step from the publisher's side without PII, through the real server: `POST /v1/ping` with only what a ping is
//! made of (and optionally the hashes of the phone and email), `POST /v1/post` bringing the lead, which must be the
//! consumer pinged; duplicates checked from the hashes before any buyer is pinged, or on the real lead at the post.

#[path = "common/service.rs"]
mod service_harness;

use pingpost::auction::ConsumerKeys;
use serde_json::{Value, json};
use service_harness::{TestService, api_keys, plugin_path, standard_plugins};

const OPERATOR: &str = "op-key";
const PUBLISHER: &str = "pub-key";
const OLD_REDACTOR_PUBLISHER: &str = "old-key";

/// Publisher `pub-1` (10 % margin, 30-day dedupe) on the standard redactor, `old-pub` on a 0.1.0 redactor; buyer
/// `acme` bids 2000 and logs what it is given, `zenith` bids 1500.
fn exchange_toml() -> String {
    format!(
        r#"
{keys}

{plugins}plain-0-1 = {plain}

[[publishers]]
id = "pub-1"
ping_deadline_ms = 5000
post_deadline_ms = 5000
margin_bps = 1000
dedupe_window_days = 30
redactor_config = '{{"allow_extra": ["household_size"]}}'

[[publishers]]
id = "old-pub"
redactor = "plain-0-1"
ping_deadline_ms = 5000

[[buyers]]
id = "acme"
time_zone = "America/New_York"

[[buyers]]
id = "zenith"
time_zone = "America/New_York"

[[campaigns]]
id = "acme-health"
buyer_id = "acme"
target = {{ kind = "wasm", plugin = "config-buyer", config = {{ base_price_cents = 2000, echo_input = true }}, delivery = {{ kind = "pickup" }} }}

[[campaigns]]
id = "zenith-health"
buyer_id = "zenith"
target = {{ kind = "wasm", plugin = "config-buyer", config = {{ base_price_cents = 1500 }}, delivery = {{ kind = "pickup" }} }}
"#,
        keys = api_keys(&[
            ("operator", None, OPERATOR),
            ("publisher", Some("pub-1"), PUBLISHER),
            ("publisher", Some("old-pub"), OLD_REDACTOR_PUBLISHER),
        ]),
        plugins = standard_plugins(),
        plain = plugin_path("plain-redactor-0-1"),
    )
}

/// The lead of consumer `n`: a 58-year-old in Miami (ZIP 33139).
fn lead(n: u32) -> Value {
    json!({
        "vertical": "health-insurance",
        "source_id": "fb",
        "sub_id": "ad-7",
        "consumer": {
            "first_name": "Maria", "last_name": "Lopez",
            "phone": format!("305555{n:04}"), "email": format!("Maria{n}@Example.com"),
            "street": "1 Ocean Dr", "city": "Miami", "state": "FL", "zip5": "33139",
            "date_of_birth": "1968-04-02"
        },
        "consent": { "trusted_form_url": "https://cert.trustedform.com/abc", "tcpa_text": "I agree" },
        "extra": { "household_size": "2" }
    })
}

/// The PII-free ping of consumer `n`; with the hashes of its normalised phone and email when `hashed`.
fn ping(n: u32, hashed: bool) -> Value {
    let mut ping = json!({
        "vertical": "health-insurance",
        "source_id": "fb",
        "sub_id": "ad-7",
        "state": "FL",
        "zip3": "331",
        "age": 58,
        "consent": { "trusted_form_url": "https://cert.trustedform.com/abc", "tcpa_text": true },
        "extra": { "household_size": "2" }
    });
    if hashed {
        let keys = ConsumerKeys::of(&format!("+1305555{n:04}"), &format!("maria{n}@example.com"));
        ping["phone_sha256"] = json!(keys.phone_sha256);
        ping["email_sha256"] = json!(keys.email_sha256);
    }
    ping
}

/// The ping id of a ping that got a bid.
fn bid(answer: &service_harness::Answer) -> String {
    assert_eq!((answer.status, &answer.body["outcome"]), (200, &json!("bid")), "{}", answer.text);
    answer.body["ping_id"].as_str().expect("a ping id").to_owned()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_ping_without_pii_gets_bids_and_its_post_with_the_matching_lead_sells_at_the_quote() {
    let t = TestService::start(&exchange_toml()).await;
    let pinged = t.post(PUBLISHER, "/v1/ping", &ping(1, true)).await;
    let ping_id = bid(&pinged);
    assert_eq!(pinged.body["payout_cents"], 1800, "2000 less the 10 % margin");

    // The buyer got the ping the redactor made of it: no PII anywhere, the allowed extra, the sub id.
    let trace = t.get(OPERATOR, &format!("/v1/leads/{ping_id}/trace")).await;
    let campaigns = trace.body["outcome"]["trace"]["campaigns"].as_array().expect("campaign traces").clone();
    let acme = campaigns.iter().find(|c| c["campaign_id"] == "acme-health").expect("acme is traced");
    let echo: Value = serde_json::from_str(acme["logs"][0]["message"].as_str().expect("an echo")).expect("JSON");
    assert_eq!(echo["ping"]["zip3"], "331");
    assert_eq!((&echo["ping"]["age"], &echo["ping"]["sub_id"]), (&json!(58), &json!("ad-7")));
    assert_eq!(echo["ping"]["extra"], json!({ "household_size": "2" }));
    assert_eq!(echo["ping"]["consent"], json!({ "trusted_form": true, "jornaya": false, "tcpa_text": true }));

    // Without its lead the post is refused; a lead of another consumer or place is refused naming the field; the ping
    // stays open through every refusal.
    let bare = t.post(PUBLISHER, "/v1/post", &json!({ "ping_id": ping_id })).await;
    assert_eq!((bare.status, bare.code(), bare.field()), (422, "lead_required", "lead"), "{}", bare.text);
    let mut moved = lead(1);
    moved["consumer"]["state"] = json!("GA");
    let refused = t.post(PUBLISHER, "/v1/post", &json!({ "ping_id": ping_id, "lead": moved })).await;
    assert_eq!((refused.status, refused.code(), refused.field()), (422, "lead_mismatch", "lead.consumer.state"));
    let other = t.post(PUBLISHER, "/v1/post", &json!({ "ping_id": ping_id, "lead": lead(2) })).await;
    assert_eq!((other.status, other.field()), (422, "lead.consumer.phone"), "{}", other.text);
    assert!(other.message().contains("lead.consumer.email"), "{}", other.text);
    let mut invalid = lead(1);
    invalid["consumer"]["zip5"] = json!("3313");
    let refused = t.post(PUBLISHER, "/v1/post", &json!({ "ping_id": ping_id, "lead": invalid })).await;
    assert_eq!((refused.status, refused.field()), (422, "lead.consumer.zip5"), "{}", refused.text);

    let sold = t.post(PUBLISHER, "/v1/post", &json!({ "ping_id": ping_id, "lead": lead(1) })).await;
    assert_eq!((sold.status, &sold.body["outcome"]), (200, &json!("sold")), "{}", sold.text);
    assert_eq!(sold.body["payout_cents"], 1800, "the post pays what the ping quoted");
    let again = t.post(PUBLISHER, "/v1/post", &json!({ "ping_id": ping_id, "lead": lead(1) })).await;
    assert_eq!((again.status, again.code()), (409, "already_posted"), "{}", again.text);

    // The sale holds the full lead, which only the winner is handed.
    let trace = t.get(OPERATOR, &format!("/v1/leads/{ping_id}/trace")).await;
    assert_eq!(trace.body["sales"][0]["campaign_id"], "acme-health", "{}", trace.text);
    t.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_consumer_seen_before_is_a_duplicate_at_the_ping_from_its_hashes_or_at_the_post_from_its_lead() {
    let t = TestService::start(&exchange_toml()).await;
    let first = t.post(PUBLISHER, "/v1/leads", &lead(3)).await;
    assert_eq!(first.body["outcome"], "sold", "{}", first.text);

    // With the hashes, before any buyer is pinged.
    let hashed = t.post(PUBLISHER, "/v1/ping", &ping(3, true)).await;
    assert_eq!((hashed.status, &hashed.body["outcome"]), (200, &json!("duplicate")), "{}", hashed.text);
    let ping_id = hashed.body["ping_id"].as_str().expect("a ping id");
    let trace = t.get(OPERATOR, &format!("/v1/leads/{ping_id}/trace")).await;
    let campaigns = trace.body["outcome"]["trace"]["campaigns"].as_array().map_or(0, Vec::len);
    assert_eq!(campaigns, 0, "no buyer was pinged: {}", trace.text);

    // Without them, the ping gets its bids and the post finds the duplicate on the real phone and email.
    let ping_id = bid(&t.post(PUBLISHER, "/v1/ping", &ping(3, false)).await);
    let post = t.post(PUBLISHER, "/v1/post", &json!({ "ping_id": ping_id, "lead": lead(3) })).await;
    assert_eq!((post.status, &post.body["outcome"]), (200, &json!("duplicate")), "{}", post.text);
    let trace = t.get(OPERATOR, &format!("/v1/leads/{ping_id}/trace")).await;
    assert_eq!(trace.body["sales"], json!([]), "nothing sold: {}", trace.text);
    t.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn what_a_pii_free_ping_cannot_carry_or_cannot_be_is_refused_naming_the_field() {
    let t = TestService::start(&exchange_toml()).await;
    // A name slipped into a PII-free ping is not a field it has.
    let mut smuggled = ping(4, false);
    smuggled["first_name"] = json!("Maria");
    let refused = t.post(PUBLISHER, "/v1/ping", &smuggled).await;
    assert_eq!(refused.status, 422, "{}", refused.text);
    assert!(refused.message().contains("unknown field `first_name`"), "{}", refused.text);
    // Every problem at once, each named.
    let bad = json!({ "vertical": "health-insurance", "state": "Florida", "age": 12, "phone_sha256": "abc" });
    let refused = t.post(PUBLISHER, "/v1/ping", &bad).await;
    assert_eq!(refused.status, 422, "{}", refused.text);
    let fields: Vec<&str> = refused.body["field_errors"]
        .as_array()
        .expect("field errors")
        .iter()
        .filter_map(|e| e["field"].as_str())
        .collect();
    for field in ["state", "zip5", "age", "phone_sha256", "email_sha256"] {
        assert!(fields.contains(&field), "{field} in {fields:?}");
    }
    // A full-lead ping's post brings no lead.
    let ping_id = bid(&t.post(PUBLISHER, "/v1/ping", &lead(5)).await);
    let post = t.post(PUBLISHER, "/v1/post", &json!({ "ping_id": ping_id, "lead": lead(5) })).await;
    assert_eq!((post.status, post.code(), post.field()), (422, "lead_not_expected", "lead"), "{}", post.text);
    // A publisher whose redactor reads only full leads (contract 0.1.0) is told so.
    let old = t.post(OLD_REDACTOR_PUBLISHER, "/v1/ping", &ping(6, false)).await;
    assert_eq!(old.status, 422, "{}", old.text);
    assert!(old.text.contains("full leads only"), "{}", old.text);
    t.shutdown().await;
}
