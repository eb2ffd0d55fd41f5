//! The operator API end to end: the real `pingpost serve` on 127.0.0.1 driven with a real HTTP client. Publishers,
//! buyers and campaigns are edited and paused, plugins uploaded, activated, rolled back and disabled, keys made and
//! revoked — and each change is checked by what the next lead does.

mod common;
#[path = "common/service.rs"]
mod service_harness;

use serde_json::{Value, json};
use service_harness::{Answer, TestService, api_keys, plugin_bytes, plugin_path, repackaged, standard_plugins};

const OPERATOR: &str = "op-key";
const PUBLISHER: &str = "pub-key";
const ACME: &str = "acme-key";

/// One publisher (10 % margin), two buyers, two config-buyer campaigns: `acme-main` bids 2000 through plugin
/// `bidder`, `zenith-main` bids 1500 through `config-buyer` (the same module under another name).
fn exchange_toml() -> String {
    format!(
        r#"
[server]
return_window_days = 7
# Uploads compile plugins: generous on a busy 2-core machine running debug builds.
request_timeout_ms = 60000

{keys}

{plugins}bidder = {config_buyer}

[[publishers]]
id = "pub-1"
redactor = "standard"
ping_deadline_ms = 20000
post_deadline_ms = 30000
margin_bps = 1000

[[buyers]]
id = "acme"
name = "Acme Health"
time_zone = "America/New_York"

[[buyers]]
id = "zenith"
time_zone = "America/Chicago"

[[campaigns]]
id = "acme-main"
buyer_id = "acme"
[campaigns.target]
kind = "wasm"
plugin = "bidder"
config = {{ base_price_cents = 2000 }}
delivery = {{ kind = "pickup" }}

[[campaigns]]
id = "zenith-main"
buyer_id = "zenith"
[campaigns.target]
kind = "wasm"
plugin = "config-buyer"
config = {{ base_price_cents = 1500 }}
delivery = {{ kind = "pickup" }}
"#,
        keys = api_keys(&[
            ("operator", None, OPERATOR),
            ("publisher", Some("pub-1"), PUBLISHER),
            ("buyer", Some("acme"), ACME)
        ]),
        plugins = standard_plugins(),
        config_buyer = plugin_path("config-buyer"),
    )
}

/// The shared test lead, without its publisher id (the publisher key fills it in).
fn lead() -> Value {
    let mut lead = serde_json::to_value(common::lead()).expect("a lead serialises");
    lead.as_object_mut().expect("an object").remove("publisher_id");
    lead["consumer"]["state"] = json!("FL");
    lead
}

/// Sends the test lead as the publisher.
async fn send_lead(service: &TestService) -> Answer {
    service.post(PUBLISHER, "/v1/leads", &lead()).await
}

/// Sends a lead, expects it sold, and returns (lead id, the winning campaign, the price) from the operator's trace.
async fn sold_to(service: &TestService) -> (String, String, u64) {
    let answer = send_lead(service).await;
    assert_eq!((answer.status, answer.body["outcome"].as_str()), (200, Some("sold")), "{}", answer.text);
    let lead_id = answer.body["lead_id"].as_str().expect("a lead id").to_owned();
    let trace = service.get(OPERATOR, &format!("/v1/leads/{lead_id}/trace")).await;
    assert_eq!(trace.status, 200, "{}", trace.text);
    let sale = &trace.body["sales"][0];
    (lead_id, sale["campaign_id"].as_str().expect("a campaign").to_owned(), sale["price_cents"].as_u64().unwrap())
}

/// Why `campaign` was not pinged in the recorded trace of `lead_id`.
async fn ineligible(service: &TestService, lead_id: &str, campaign: &str) -> Value {
    answered_by(service, lead_id, campaign).await["ineligible"].clone()
}

/// `campaign`'s entry in the recorded trace of `lead_id`.
async fn answered_by(service: &TestService, lead_id: &str, campaign: &str) -> Value {
    let trace = service.get(OPERATOR, &format!("/v1/leads/{lead_id}/trace")).await;
    let campaigns = trace.body["outcome"]["trace"]["campaigns"].as_array().expect("campaign traces").clone();
    campaigns.into_iter().find(|c| c["campaign_id"] == campaign).expect("the campaign is traced")
}

fn campaign(id: &str, buyer: &str, plugin: &str, config: Value) -> Value {
    json!({
        "id": id, "buyer_id": buyer,
        "target": { "kind": "wasm", "plugin": plugin, "config": config, "delivery": { "kind": "pickup" } }
    })
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_operator_route_refuses_other_keys() {
    let service = TestService::start(&exchange_toml()).await;
    let routes: &[(&str, &str)] = &[
        ("GET", "/v1/publishers"),
        ("GET", "/v1/publishers/pub-1"),
        ("PUT", "/v1/publishers/pub-1"),
        ("PATCH", "/v1/publishers/pub-1"),
        ("POST", "/v1/publishers/pub-1/pause"),
        ("POST", "/v1/publishers/pub-1/resume"),
        ("GET", "/v1/buyers"),
        ("PUT", "/v1/buyers/acme"),
        ("PATCH", "/v1/buyers/acme"),
        ("POST", "/v1/buyers/acme/pause"),
        ("GET", "/v1/campaigns"),
        ("GET", "/v1/campaigns/acme-main"),
        ("PUT", "/v1/campaigns/acme-main"),
        ("PATCH", "/v1/campaigns/acme-main"),
        ("POST", "/v1/campaigns/acme-main/pause"),
        ("GET", "/v1/plugins"),
        ("GET", "/v1/plugins/bidder"),
        ("POST", "/v1/plugins/bidder/versions"),
        ("POST", "/v1/plugins/bidder/activate"),
        ("POST", "/v1/plugins/bidder/rollback"),
        ("POST", "/v1/plugins/bidder/disable"),
        ("POST", "/v1/plugins/bidder/enable"),
        ("GET", "/v1/keys"),
        ("POST", "/v1/keys"),
        ("DELETE", "/v1/keys/operator:1"),
        ("GET", "/v1/leads/p_1/trace"),
        ("GET", "/v1/deliveries"),
        ("GET", "/metrics"),
    ];
    for (method, path) in routes {
        for (key, status, code) in [
            ("", 401, "missing_api_key"),
            ("wrong", 401, "invalid_api_key"),
            (PUBLISHER, 403, "forbidden"),
            (ACME, 403, "forbidden"),
        ] {
            let request = service.client.request(method.parse().unwrap(), service.url(path)).body("{}");
            let request = if key.is_empty() { request } else { request.bearer_auth(key) };
            let response = request.send().await.expect("the request reaches the service");
            let got = response.status().as_u16();
            let body: Value = response.json().await.expect("a JSON error");
            assert_eq!((got, body["error"]["code"].as_str()), (status, Some(code)), "{method} {path} with {key:?}");
        }
    }
    // Nothing above changed anything: acme-main still wins.
    assert_eq!(sold_to(&service).await.1, "acme-main");
    service.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn edits_and_pauses_change_what_the_next_auction_does() {
    let service = TestService::start(&exchange_toml()).await;

    let publishers = service.get(OPERATOR, "/v1/publishers").await;
    assert_eq!(publishers.status, 200);
    assert_eq!(publishers.body.as_array().unwrap().len(), 1);
    assert_eq!(publishers.body[0]["id"], "pub-1");
    assert_eq!(publishers.body[0]["status"], "active");
    let acme = service.get(OPERATOR, "/v1/buyers/acme").await;
    assert_eq!((acme.status, acme.body["name"].as_str()), (200, Some("Acme Health")));
    assert_eq!(service.get(OPERATOR, "/v1/campaigns").await.body.as_array().unwrap().len(), 2);
    assert_eq!(service.get(OPERATOR, "/v1/campaigns/nope").await.status, 404);

    let (_, winner, price) = sold_to(&service).await;
    assert_eq!((winner.as_str(), price), ("acme-main", 2000));

    // A paused campaign is not pinged; resumed, it wins again.
    let paused = service.post(OPERATOR, "/v1/campaigns/acme-main/pause", &json!({})).await;
    assert_eq!((paused.status, paused.body["status"].as_str()), (200, Some("paused")), "{}", paused.text);
    let (lead_id, winner, price) = sold_to(&service).await;
    assert_eq!((winner.as_str(), price), ("zenith-main", 1500));
    assert_eq!(ineligible(&service, &lead_id, "acme-main").await, json!({"reason": "paused"}));
    assert_eq!(service.post(OPERATOR, "/v1/campaigns/acme-main/resume", &json!({})).await.status, 200);
    assert_eq!(sold_to(&service).await.1, "acme-main");

    // A paused buyer's campaigns are not pinged, whatever their own status.
    let paused = service.post(OPERATOR, "/v1/buyers/acme/pause", &json!({})).await;
    assert_eq!((paused.status, paused.body["status"].as_str()), (200, Some("paused")));
    let (lead_id, winner, _) = sold_to(&service).await;
    assert_eq!(winner, "zenith-main");
    assert_eq!(ineligible(&service, &lead_id, "acme-main").await, json!({"reason": "buyer_paused"}));
    assert_eq!(service.get(OPERATOR, "/v1/campaigns/acme-main").await.body["status"], "active");
    assert_eq!(service.post(OPERATOR, "/v1/buyers/acme/resume", &json!({})).await.status, 200);
    assert_eq!(sold_to(&service).await.1, "acme-main");

    // A paused publisher's leads are refused before any buyer sees them.
    assert_eq!(service.post(OPERATOR, "/v1/publishers/pub-1/pause", &json!({})).await.status, 200);
    let refused = send_lead(&service).await;
    assert_eq!(refused.status, 422, "{}", refused.text);
    assert_eq!(refused.body["outcome"], "rejected");
    assert_eq!(refused.body["reason"], "publisher paused");
    assert_eq!(service.post(OPERATOR, "/v1/publishers/pub-1/resume", &json!({})).await.status, 200);
    assert_eq!(send_lead(&service).await.body["outcome"], "sold");

    // Replacing a campaign (200) changes its price; a new campaign (201) with a daily cap of 1 wins once.
    let replaced = service
        .put(
            OPERATOR,
            "/v1/campaigns/acme-main",
            &campaign("acme-main", "acme", "bidder", json!({"base_price_cents": 2500})),
        )
        .await;
    assert_eq!(replaced.status, 200, "{}", replaced.text);
    assert_eq!(sold_to(&service).await.2, 2500);
    let mut capped = campaign("zenith-capped", "zenith", "config-buyer", json!({"base_price_cents": 3000}));
    capped["caps"] = json!({"leads_per_day": 1});
    capped["tier"] = json!(2);
    capped.as_object_mut().unwrap().remove("id");
    let created = service.put(OPERATOR, "/v1/campaigns/zenith-capped", &capped).await;
    assert_eq!((created.status, created.body["id"].as_str()), (201, Some("zenith-capped")), "{}", created.text);
    assert_eq!(sold_to(&service).await.1, "zenith-capped");
    let (lead_id, winner, _) = sold_to(&service).await;
    assert_eq!(winner, "acme-main");
    assert_eq!(ineligible(&service, &lead_id, "zenith-capped").await["reason"], "cap_reached");
    let metrics = service.get(OPERATOR, "/metrics").await;
    assert_eq!(metrics.status, 200);
    assert!(metrics.content_type.starts_with("application/openmetrics-text"), "{}", metrics.content_type);
    assert!(
        metrics.text.contains(r#"pingpost_campaign_cap_used{campaign="zenith-capped",cap="leads_per_day"} 1"#),
        "{}",
        metrics.text
    );
    assert!(metrics.text.contains(r#"pingpost_leads_total{endpoint="leads",outcome="sold"}"#));

    // The publisher's floor: every bid under it is dropped.
    let mut publisher = service.get(OPERATOR, "/v1/publishers/pub-1").await.body;
    publisher["floor_cents"] = json!(2600);
    let put = service.put(OPERATOR, "/v1/publishers/pub-1", &publisher).await;
    assert_eq!((put.status, put.body["floor_cents"].as_u64()), (200, Some(2600)), "{}", put.text);
    let unsold = send_lead(&service).await;
    assert_eq!(unsold.body["outcome"], "unsold", "{}", unsold.text);

    // A new buyer.
    let newco = service.put(OPERATOR, "/v1/buyers/newco", &json!({"time_zone": "America/Denver"})).await;
    assert_eq!((newco.status, newco.body["status"].as_str()), (201, Some("active")), "{}", newco.text);
    assert_eq!(service.get(OPERATOR, "/v1/buyers").await.body.as_array().unwrap().len(), 3);
    // Every IANA zone, not only those of the United States.
    for (id, zone) in [("tokyo-co", "Asia/Tokyo"), ("london-co", "Europe/London")] {
        let buyer = service.put(OPERATOR, &format!("/v1/buyers/{id}"), &json!({"time_zone": zone})).await;
        assert_eq!((buyer.status, buyer.body["time_zone"].as_str()), (201, Some(zone)), "{}", buyer.text);
    }
    service.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_patch_changes_only_the_fields_it_names_and_is_checked_like_a_put() {
    let service = TestService::start(&exchange_toml()).await;
    let put = service.put(OPERATOR, "/v1/publishers/pub-1", &json!({"floor_cents": 800, "margin_bps": 500})).await;
    assert_eq!(put.status, 200, "{}", put.text);

    // One field: the floor stays 800 (a PUT of the same body would have reset it to 0).
    let patched = service.patch(OPERATOR, "/v1/publishers/pub-1", &json!({"margin_bps": 1000})).await;
    assert_eq!(patched.status, 200, "{}", patched.text);
    assert_eq!((patched.body["floor_cents"].as_u64(), patched.body["margin_bps"].as_u64()), (Some(800), Some(1000)));
    let read = service.get(OPERATOR, "/v1/publishers/pub-1").await;
    assert_eq!(read.body, patched.body, "saved as answered");

    // Nested objects merge; `null` unsets an optional field and gives a defaulted one its default.
    let caps = json!({"caps": {"leads_per_day": 50, "leads_per_hour": 5}});
    assert_eq!(service.patch(OPERATOR, "/v1/campaigns/acme-main", &caps).await.status, 200);
    let one_cap = service.patch(OPERATOR, "/v1/campaigns/acme-main", &json!({"caps": {"leads_per_hour": null}})).await;
    assert_eq!(one_cap.status, 200, "{}", one_cap.text);
    assert_eq!(one_cap.body["caps"]["leads_per_day"], 50);
    assert!(one_cap.body["caps"]["leads_per_hour"].is_null(), "{}", one_cap.text);
    assert_eq!(one_cap.body["target"]["plugin"], "bidder", "the rest of the campaign is kept");
    let reset = service.patch(OPERATOR, "/v1/publishers/pub-1", &json!({"floor_cents": null})).await;
    assert_eq!((reset.status, reset.body["floor_cents"].as_u64()), (200, Some(0)), "{}", reset.text);

    // Refused as a PUT would be, and nothing saved.
    let before = service.get(OPERATOR, "/v1/publishers/pub-1").await.body;
    for (path, body, status, field) in [
        ("/v1/publishers/pub-1", json!({"margin_bps": "lots"}), 422, "margin_bps"),
        ("/v1/publishers/pub-1", json!({"flor_cents": 1}), 422, ""),
        ("/v1/publishers/pub-1", json!({"id": "pub-2"}), 422, "id"),
        ("/v1/publishers/pub-1", json!([1, 2]), 422, "(body)"),
        ("/v1/publishers/pub-1", json!({"redactor": "nope"}), 422, "redactor"),
        ("/v1/publishers/nobody", json!({"floor_cents": 1}), 404, ""),
        ("/v1/buyers/acme", json!({"time_zone": null}), 422, ""),
    ] {
        let answer = service.patch(OPERATOR, path, &body).await;
        assert_eq!(answer.status, status, "PATCH {path} {body}: {}", answer.text);
        if !field.is_empty() {
            assert_eq!(answer.field(), field, "PATCH {path} {body}: {}", answer.text);
        }
    }
    let refused = service.patch(OPERATOR, "/v1/publishers/pub-1", &json!({"margin_bps": 20000})).await;
    assert_eq!((refused.status, refused.code()), (422, "refused"), "{}", refused.text);
    assert_eq!(service.get(OPERATOR, "/v1/publishers/pub-1").await.body, before, "nothing was saved");
    let malformed =
        service.send(OPERATOR, service.client.patch(service.url("/v1/publishers/pub-1")).body("{not json")).await;
    assert_eq!((malformed.status, malformed.code()), (400, "malformed_json"));
    service.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn refused_edits_name_the_problem_and_save_nothing() {
    let service = TestService::start(&exchange_toml()).await;
    let put = |path: &'static str, body: Value| {
        let service = &service;
        async move { service.put(OPERATOR, path, &body).await }
    };

    let mismatch = put("/v1/publishers/pub-1", json!({"id": "pub-2"})).await;
    assert_eq!((mismatch.status, mismatch.code(), mismatch.field()), (422, "invalid_field", "id"));
    let mut wrong_type = campaign("acme-main", "acme", "bidder", json!({"base_price_cents": 2000}));
    wrong_type["tier"] = json!("first");
    let wrong_type = put("/v1/campaigns/acme-main", wrong_type).await;
    assert_eq!((wrong_type.status, wrong_type.field()), (422, "tier"), "{}", wrong_type.text);
    let typo = put("/v1/buyers/acme", json!({"time_zone": "America/New_York", "nmae": "x"})).await;
    assert_eq!(typo.status, 422);
    assert!(typo.message().contains("nmae"), "{}", typo.text);
    let bad_zone = put("/v1/buyers/acme", json!({"time_zone": "Mars/Olympus"})).await;
    assert_eq!((bad_zone.status, bad_zone.field()), (422, "time_zone"), "{}", bad_zone.text);
    let malformed = service.put_text(OPERATOR, "/v1/buyers/acme", "{not json").await;
    assert_eq!((malformed.status, malformed.code()), (400, "malformed_json"));

    // The builder refuses: an unknown buyer, a config the plugin's `configure` rejects.
    let orphan =
        put("/v1/campaigns/orphan", campaign("orphan", "ghost", "config-buyer", json!({"base_price_cents": 1}))).await;
    assert_eq!((orphan.status, orphan.code()), (422, "refused"), "{}", orphan.text);
    assert!(orphan.message().contains("ghost"), "{}", orphan.text);
    let bad_config =
        put("/v1/campaigns/acme-main", campaign("acme-main", "acme", "bidder", json!({"base_price_cents": "lots"})))
            .await;
    assert_eq!((bad_config.status, bad_config.code()), (422, "refused"), "{}", bad_config.text);
    assert!(bad_config.message().contains("acme-main"), "{}", bad_config.text);
    let no_plugin = put("/v1/campaigns/acme-main", campaign("acme-main", "acme", "nope", json!({}))).await;
    assert_eq!((no_plugin.status, no_plugin.field()), (422, "target.plugin"), "{}", no_plugin.text);
    let bad_margin = put("/v1/publishers/pub-1", json!({"margin_bps": 20000})).await;
    assert_eq!((bad_margin.status, bad_margin.code()), (422, "refused"));
    assert!(bad_margin.message().contains("margin_bps"), "{}", bad_margin.text);

    // Targets and deadlines are checked when they are put, not when a lead first needs them.
    let http = |ping_url: &str, timeout_ms: u64| {
        json!({"id": "acme-http", "buyer_id": "acme",
               "target": {"kind": "http", "ping_url": ping_url, "post_url": "http://127.0.0.1:1/post", "timeout_ms": timeout_ms}})
    };
    for (body, field) in [
        (http("not a url", 100), "target.ping_url"),
        (http("file:///etc/passwd", 100), "target.ping_url"),
        (http("http://127.0.0.1:1/ping", u64::MAX), "target.timeout_ms"),
        (http("http://127.0.0.1:1/ping", 0), "target.timeout_ms"),
    ] {
        let refused = put("/v1/campaigns/acme-http", body).await;
        assert_eq!((refused.status, refused.field()), (422, field), "{}", refused.text);
    }
    let mut webhook = campaign("acme-main", "acme", "bidder", json!({"base_price_cents": 2000}));
    webhook["target"]["delivery"] = json!({"kind": "webhook", "url": "file:///etc/passwd"});
    let refused = put("/v1/campaigns/acme-main", webhook).await;
    assert_eq!((refused.status, refused.field()), (422, "target.delivery.url"), "{}", refused.text);
    let refused = put("/v1/publishers/pub-1", json!({"ping_deadline_ms": u64::MAX})).await;
    assert_eq!((refused.status, refused.field()), (422, "ping_deadline_ms"), "{}", refused.text);

    // Nothing was saved: the registry and the live exchange are as seeded.
    assert_eq!(service.get(OPERATOR, "/v1/campaigns/orphan").await.status, 404);
    let acme_main = service.get(OPERATOR, "/v1/campaigns/acme-main").await;
    assert_eq!(acme_main.body["target"]["config"], json!({"base_price_cents": 2000}));
    assert_eq!(service.get(OPERATOR, "/v1/publishers/pub-1").await.body["margin_bps"], 1000);
    assert_eq!(service.post(OPERATOR, "/v1/campaigns/ghost/pause", &json!({})).await.status, 404);
    let (_, winner, price) = sold_to(&service).await;
    assert_eq!((winner.as_str(), price), ("acme-main", 2000));
    service.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn plugin_uploads_are_validated_and_versions_hot_swap() {
    let service = TestService::start(&exchange_toml()).await;
    let upload = |name: &'static str, bytes: Vec<u8>| {
        let service = &service;
        async move { service.post_bytes(OPERATOR, &format!("/v1/plugins/{name}/versions"), bytes).await }
    };

    // Refused uploads: 422 with the runtime's reason.
    for fixture in ["random-bytes", "empty", "truncated", "core-module", "wrong-world", "wasi-sockets"] {
        let bytes = pingpost_plugins::hostile_fixture(fixture).expect("a hostile fixture");
        let refused = upload("bidder", bytes).await;
        assert_eq!((refused.status, refused.code()), (422, "invalid_plugin"), "{fixture}: {}", refused.text);
        assert!(!refused.message().is_empty(), "{fixture}");
    }
    let redactor = upload("bidder", plugin_bytes("standard-redactor")).await;
    assert_eq!((redactor.status, redactor.code()), (422, "wrong_world"), "{}", redactor.text);
    // Valid, but it cannot start within an instance's memory: refused now, not when activated.
    let huge = upload("bidder", pingpost_plugins::hostile_fixture("huge-memory").expect("a hostile fixture")).await;
    assert_eq!((huge.status, huge.code()), (422, "plugin_cannot_instantiate"), "{}", huge.text);
    assert!(huge.message().contains("memory"), "{}", huge.text);
    let record = service.get(OPERATOR, "/v1/plugins/bidder").await;
    assert_eq!(record.body["versions"].as_array().unwrap().len(), 1, "{}", record.text);

    // A good upload is a new version, not live yet.
    let scorecard = upload("bidder", plugin_bytes("scorecard-buyer")).await;
    assert_eq!(scorecard.status, 201, "{}", scorecard.text);
    assert_eq!((scorecard.body["version"].as_u64(), scorecard.body["world"].as_str()), (Some(2), Some("buyer")));
    let record = service.get(OPERATOR, "/v1/plugins/bidder").await;
    assert_eq!((record.body["active_version"].as_u64(), record.body["disabled"].as_bool()), (Some(1), Some(false)));
    let list = service.get(OPERATOR, "/v1/plugins").await;
    let names: Vec<&str> = list.body.as_array().unwrap().iter().filter_map(|p| p["name"].as_str()).collect();
    assert_eq!(names, ["bidder", "config-buyer", "standard"]);

    // Activating a version the campaign's config does not configure is refused; nothing changes.
    let refused = service.post(OPERATOR, "/v1/plugins/bidder/activate", &json!({"version": 2})).await;
    assert_eq!((refused.status, refused.code()), (422, "refused"), "{}", refused.text);
    assert!(refused.message().contains("acme-main"), "{}", refused.text);
    assert_eq!(service.get(OPERATOR, "/v1/plugins/bidder").await.body["active_version"], 1);
    assert_eq!(sold_to(&service).await.1, "acme-main");
    let missing = service.post(OPERATOR, "/v1/plugins/bidder/activate", &json!({"version": 9})).await;
    assert_eq!(missing.status, 404);
    let bad_body = service.post(OPERATOR, "/v1/plugins/bidder/activate", &json!({"version": "two"})).await;
    assert_eq!((bad_body.status, bad_body.field()), (422, "version"));
    assert_eq!(service.post(OPERATOR, "/v1/plugins/ghost/activate", &json!({"version": 1})).await.status, 404);

    // The same module repackaged: version 3, activated (a hot swap), then rolled back to 1.
    let v3 = upload("bidder", repackaged(&plugin_bytes("config-buyer"), "v3")).await;
    assert_eq!((v3.status, v3.body["version"].as_u64()), (201, Some(3)), "{}", v3.text);
    let again = upload("bidder", repackaged(&plugin_bytes("config-buyer"), "v3")).await;
    assert_eq!(again.body["version"], 3, "the same bytes are the same version");
    let activated = service.post(OPERATOR, "/v1/plugins/bidder/activate", &json!({"version": 3})).await;
    assert_eq!((activated.status, activated.body["active_version"].as_u64()), (200, Some(3)), "{}", activated.text);
    let (on_v3, winner, _) = sold_to(&service).await;
    assert_eq!(winner, "acme-main");
    let rolled = service.post(OPERATOR, "/v1/plugins/bidder/rollback", &json!({})).await;
    assert_eq!((rolled.status, rolled.body["active_version"].as_u64()), (200, Some(1)), "{}", rolled.text);
    // Each trace says which version answered.
    let (on_v1, _, _) = sold_to(&service).await;
    for (lead_id, version) in [(&on_v3, 3), (&on_v1, 1)] {
        let answered = answered_by(&service, lead_id, "acme-main").await;
        assert_eq!((answered["plugin"].as_str(), answered["plugin_version"].as_u64()), (Some("bidder"), Some(version)));
        let sha = answered["plugin_sha"].as_str().unwrap_or_default();
        assert_eq!(sha.len(), 12, "the start of the version's SHA-256: {answered}");
    }
    // A second rollback goes further back (there is nothing before 1), not forward to 3 again.
    let second = service.post(OPERATOR, "/v1/plugins/bidder/rollback", &json!({})).await;
    assert_eq!((second.status, second.code()), (409, "nothing_to_roll_back"), "{}", second.text);
    let fresh = upload("fresh", plugin_bytes("config-buyer")).await;
    assert_eq!(fresh.status, 201);
    let nothing = service.post(OPERATOR, "/v1/plugins/fresh/rollback", &json!({})).await;
    assert_eq!((nothing.status, nothing.code()), (409, "nothing_to_roll_back"));

    // Disabled, the plugin's campaign stops taking part, and its trace says why; enabled, it is back.
    let disabled = service.post(OPERATOR, "/v1/plugins/bidder/disable", &json!({})).await;
    assert_eq!((disabled.status, disabled.body["disabled"].as_bool()), (200, Some(true)));
    let (lead_id, winner, _) = sold_to(&service).await;
    assert_eq!(winner, "zenith-main");
    assert_eq!(
        ineligible(&service, &lead_id, "acme-main").await,
        json!({"reason": "plugin_disabled", "plugin": "bidder"})
    );
    // Its campaigns are still checked against it: a config the plugin refuses is refused while it is disabled too.
    let config = json!({"target": {"config": {"base_price_cents": "lots"}}});
    let refused = service.patch(OPERATOR, "/v1/campaigns/acme-main", &config).await;
    assert_eq!((refused.status, refused.code()), (422, "refused"), "{}", refused.text);
    assert_eq!(service.post(OPERATOR, "/v1/plugins/bidder/enable", &json!({})).await.status, 200);
    assert_eq!(sold_to(&service).await.1, "acme-main");

    // A campaign moved onto another plugin: the next lead is answered by that plugin (a scorecard now prices it).
    let scorer = upload("scorer", plugin_bytes("scorecard-buyer")).await;
    assert_eq!(scorer.status, 201);
    assert_eq!(service.post(OPERATOR, "/v1/plugins/scorer/activate", &json!({"version": 1})).await.status, 200);
    let moved = service
        .put(
            OPERATOR,
            "/v1/campaigns/acme-main",
            &campaign("acme-main", "acme", "scorer", json!({"cents_per_point": 100})),
        )
        .await;
    assert_eq!(moved.status, 200, "{}", moved.text);
    let (lead_id, winner, _) = sold_to(&service).await;
    assert_eq!(winner, "acme-main");
    let trace = service.get(OPERATOR, &format!("/v1/leads/{lead_id}/trace")).await;
    let buyer_ref = trace.body["sales"][0]["buyer_ref"].as_str().unwrap_or_default().to_owned();
    assert!(buyer_ref.starts_with("score-"), "the scorecard answered: {}", trace.text);
    service.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn keys_are_shown_once_listed_as_hashes_and_revoked() {
    let service = TestService::start(&exchange_toml()).await;

    let made = service.post(OPERATOR, "/v1/keys", &json!({"role": "buyer", "owner_id": "zenith"})).await;
    assert_eq!(made.status, 201, "{}", made.text);
    let key = made.body["key"].as_str().expect("the key is shown").to_owned();
    let id = made.body["id"].as_str().expect("an id").to_owned();
    assert_eq!((made.body["role"].as_str(), made.body["owner_id"].as_str()), (Some("buyer"), Some("zenith")));
    let campaigns = service.get(&key, "/v1/buyer/campaigns").await;
    assert_eq!(campaigns.status, 200, "{}", campaigns.text);
    assert_eq!(campaigns.body[0]["id"], "zenith-main");

    let keys = service.get(OPERATOR, "/v1/keys").await;
    assert!(!keys.text.contains(&key), "a listing never shows a key");
    let listed = keys.body.as_array().unwrap().iter().find(|k| k["id"] == id.as_str()).expect("listed").clone();
    assert_eq!(listed["key_sha256"], pingpost::service::keys::hash_key(&key));
    assert!(keys.body.as_array().unwrap().iter().all(|k| k.get("key").is_none()));

    for (body, field) in [
        (json!({"role": "buyer", "owner_id": "ghost"}), "owner_id"),
        (json!({"role": "publisher"}), "owner_id"),
        (json!({"role": "operator", "owner_id": "acme"}), "owner_id"),
        (json!({"role": "admin"}), "role"),
        (json!({"owner_id": "acme"}), ""),
    ] {
        let refused = service.post(OPERATOR, "/v1/keys", &body).await;
        assert_eq!(refused.status, 422, "{body}: {}", refused.text);
        if !field.is_empty() {
            assert_eq!(refused.field(), field, "{body}");
        }
    }
    let named =
        service.post(OPERATOR, "/v1/keys", &json!({"role": "publisher", "owner_id": "pub-1", "id": "pub-1-b"})).await;
    assert_eq!((named.status, named.body["id"].as_str()), (201, Some("pub-1-b")));
    let duplicate =
        service.post(OPERATOR, "/v1/keys", &json!({"role": "publisher", "owner_id": "pub-1", "id": "pub-1-b"})).await;
    assert_eq!((duplicate.status, duplicate.code()), (409, "duplicate_id"));

    // Revoked: the key is refused from the next request on.
    let revoked = service.delete(OPERATOR, &format!("/v1/keys/{id}")).await;
    assert_eq!(revoked.status, 200, "{}", revoked.text);
    assert!(revoked.body["revoked_at_unix_ms"].is_i64());
    let refused = service.get(&key, "/v1/buyer/campaigns").await;
    assert_eq!((refused.status, refused.code()), (401, "invalid_api_key"));
    assert_eq!(service.delete(OPERATOR, &format!("/v1/keys/{id}")).await.status, 404);

    // The last operator key cannot be revoked; with another one made, it can, and the new one still works.
    let last = service.delete(OPERATOR, "/v1/keys/operator:1").await;
    assert_eq!((last.status, last.code()), (409, "last_operator_key"), "{}", last.text);
    let second = service.post(OPERATOR, "/v1/keys", &json!({"role": "operator"})).await;
    let second_key = second.body["key"].as_str().expect("an operator key").to_owned();
    assert_eq!(service.delete(&second_key, "/v1/keys/operator:1").await.status, 200);
    assert_eq!(service.get(OPERATOR, "/v1/keys").await.status, 401);
    assert_eq!(service.get(&second_key, "/v1/keys").await.status, 200);
    service.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn traces_and_deliveries_are_readable_without_pii() {
    let service = TestService::start(&exchange_toml()).await;
    let consumer = common::lead().consumer;

    // A webhook campaign whose buyer does not answer: its sale waits in the outbox.
    let mut hook = campaign("acme-hook", "acme", "config-buyer", json!({"base_price_cents": 4000}));
    hook["target"]["delivery"] = json!({"kind": "webhook", "url": "http://127.0.0.1:9/leads"});
    assert_eq!(service.put(OPERATOR, "/v1/campaigns/acme-hook", &hook).await.status, 201);
    let (lead_id, winner, price) = sold_to(&service).await;
    assert_eq!((winner.as_str(), price), ("acme-hook", 4000));

    let trace = service.get(OPERATOR, &format!("/v1/leads/{lead_id}/trace")).await;
    assert_eq!((trace.body["status"].as_str(), trace.body["publisher_id"].as_str()), (Some("sold"), Some("pub-1")));
    let campaigns = trace.body["outcome"]["trace"]["campaigns"].as_array().unwrap();
    assert_eq!(campaigns.len(), 3);
    assert!(campaigns.iter().all(|c| c["answer"]["answer"] == "bid"), "{}", trace.text);
    for pii in [&consumer.email, &consumer.phone, &consumer.last_name, &consumer.street] {
        assert!(!trace.text.contains(pii.as_str()), "the trace holds no PII ({pii}): {}", trace.text);
    }
    assert_eq!(service.get(OPERATOR, "/v1/leads/p_unknown/trace").await.status, 404);

    let pending = service.get(OPERATOR, "/v1/deliveries?status=pending").await;
    let failed = service.get(OPERATOR, "/v1/deliveries?status=failed").await;
    let all = service.get(OPERATOR, "/v1/deliveries").await;
    assert_eq!(all.status, 200, "{}", all.text);
    let rows = all.body.as_array().unwrap();
    assert_eq!(rows.len(), 1, "{}", all.text);
    assert_eq!(
        (rows[0]["lead_id"].as_str(), rows[0]["campaign_id"].as_str()),
        (Some(lead_id.as_str()), Some("acme-hook"))
    );
    assert_eq!(rows[0]["url"], "http://127.0.0.1:9/leads");
    assert_eq!(
        pending.body.as_array().unwrap().len() + failed.body.as_array().unwrap().len(),
        1,
        "the undeliverable lead is pending or given up"
    );
    assert_eq!(service.get(OPERATOR, "/v1/deliveries?status=delivered").await.body, json!([]));
    for pii in [&consumer.email, &consumer.phone, &consumer.last_name] {
        assert!(!all.text.contains(pii.as_str()), "deliveries hold no PII");
    }
    let bad = service.get(OPERATOR, "/v1/deliveries?status=lost").await;
    assert_eq!((bad.status, bad.field()), (422, "status"));
    let unknown = service.get(OPERATOR, "/v1/deliveries?state=pending").await;
    assert_eq!(unknown.status, 422);
    service.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_plugins_refusal_of_its_config_is_cut_to_a_kilobyte_in_the_answer() {
    let service = TestService::start(&exchange_toml()).await;
    let hostile = service.post_bytes(OPERATOR, "/v1/plugins/hostile/versions", plugin_bytes("hostile-buyer")).await;
    assert_eq!(hostile.status, 201, "{}", hostile.text);
    assert_eq!(service.post(OPERATOR, "/v1/plugins/hostile/activate", &json!({"version": 1})).await.status, 200);
    let mut campaign = service.get(OPERATOR, "/v1/campaigns/acme-main").await.body;
    // The hostile buyer refuses an unknown mode, repeating it: 40 KiB of it.
    campaign["target"]["plugin"] = json!("hostile");
    campaign["target"]["config"] = json!("m".repeat(40 * 1024));
    let refused = service.put(OPERATOR, "/v1/campaigns/acme-main", &campaign).await;
    assert_eq!((refused.status, refused.code()), (422, "refused"), "{}", &refused.text[..200.min(refused.text.len())]);
    assert!(refused.text.len() < 2 * 1024, "the answer is {} bytes", refused.text.len());
    assert!(refused.message().contains("more bytes]"), "{}", refused.text);
    service.shutdown().await;
}

/// Sends the test lead from `source_id`/`sub_id`, expects it sold, and returns (lead id, the winning campaign, the
/// price).
async fn sold_from(service: &TestService, source_id: &str, sub_id: &str) -> (String, String, u64) {
    let mut lead = lead();
    lead["source_id"] = json!(source_id);
    lead["sub_id"] = json!(sub_id);
    let answer = service.post(PUBLISHER, "/v1/leads", &lead).await;
    assert_eq!((answer.status, answer.body["outcome"].as_str()), (200, Some("sold")), "{}", answer.text);
    let lead_id = answer.body["lead_id"].as_str().expect("a lead id").to_owned();
    let trace = service.get(OPERATOR, &format!("/v1/leads/{lead_id}/trace")).await;
    let sale = &trace.body["sales"][0];
    (lead_id, sale["campaign_id"].as_str().expect("a campaign").to_owned(), sale["price_cents"].as_u64().unwrap())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_campaign_buys_only_from_the_publishers_and_sources_it_allows_and_prices_by_source() {
    let running = TestService::start(&exchange_toml()).await;
    let service = &running;
    let patch = |body: Value| async move {
        let answer = service.patch(OPERATOR, "/v1/campaigns/acme-main", &body).await;
        assert_eq!(answer.status, 200, "{}", answer.text);
        answer
    };

    // A deny rule for one source: that source's leads go to the next bidder, the trace says which rule.
    let denied = patch(json!({"sources": {"deny": ["pub-1/search"]}})).await;
    assert_eq!(denied.body["sources"], json!({"deny": ["pub-1/search"]}));
    let (lead_id, winner, _) = sold_from(service, "search", "kw-1").await;
    assert_eq!(winner, "zenith-main");
    assert_eq!(
        ineligible(service, &lead_id, "acme-main").await,
        json!({"reason": "source_refused", "denied_by": "pub-1/search"})
    );
    assert_eq!(sold_from(service, "display", "aff-2").await.1, "acme-main");

    // An allow list down to one sub id; the deny rule unset.
    patch(json!({"sources": {"allow": ["pub-1/display/aff-2"], "deny": null}})).await;
    assert_eq!(sold_from(service, "display", "aff-2").await.1, "acme-main");
    let (lead_id, winner, _) = sold_from(service, "display", "aff-3").await;
    assert_eq!(winner, "zenith-main");
    assert_eq!(ineligible(service, &lead_id, "acme-main").await, json!({"reason": "source_refused"}));

    // The buyer's own plugin prices by source: half as much again from aff-2.
    let config = json!({"base_price_cents": 2000, "modifiers": {"source": {"display/aff-2": {"percent": 50}}}});
    patch(json!({"target": {"config": config}})).await;
    assert_eq!(sold_from(service, "display", "aff-2").await.1, "acme-main");
    let (_, _, price) = sold_from(service, "display", "aff-2").await;
    assert_eq!(price, 3000);

    // Malformed rules are refused, naming the list, and nothing is saved.
    for (sources, field) in [
        (json!({"allow": ["pub-1/"]}), "sources.allow"),
        (json!({"deny": ["a/b/c/d"]}), "sources.deny"),
        (json!({"deny": ["pub 1"]}), "sources.deny"),
    ] {
        let answer = service.patch(OPERATOR, "/v1/campaigns/acme-main", &json!({ "sources": sources })).await;
        assert_eq!((answer.status, answer.field()), (422, field), "{sources}: {}", answer.text);
    }
    let kept = service.get(OPERATOR, "/v1/campaigns/acme-main").await;
    assert_eq!(kept.body["sources"], json!({"allow": ["pub-1/display/aff-2"]}));
    running.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn schedules_have_several_windows_with_minutes_in_any_time_zone() {
    let service = TestService::start(&exchange_toml()).await;
    let ok = |answer: Answer| {
        assert_eq!(answer.status, 200, "{}", answer.text);
        answer
    };
    // The service's clock starts at Wednesday 2026-11-25 15:00 UTC: 15:00 in London, Thursday 00:00 in Tokyo.
    ok(service.patch(OPERATOR, "/v1/buyers/zenith", &json!({"time_zone": "Europe/London"})).await);
    let windows = json!(["mon-fri 08:30-14:45", "sat 10:00-14:00"]);
    let patched =
        ok(service.patch(OPERATOR, "/v1/campaigns/zenith-main", &json!({"schedule": {"windows": windows}})).await);
    assert_eq!(patched.body["schedule"]["windows"], windows);
    let (lead_id, winner, _) = sold_to(&service).await;
    assert_eq!(winner, "acme-main");
    let closed = ineligible(&service, &lead_id, "zenith-main").await;
    assert_eq!(closed, json!({"reason": "out_of_schedule", "local_time": "Wed 2026-11-25 15:00 GMT"}));

    // 14:44 in London: open, to the minute.
    ok(service.post(OPERATOR, "/v1/campaigns/acme-main/pause", &json!({})).await);
    service.clock.set(service_harness::START - 16 * 60_000);
    assert_eq!(sold_to(&service).await.1, "zenith-main");
    service.clock.set(service_harness::START - 15 * 60_000);
    let unsold = send_lead(&service).await;
    assert_eq!(unsold.body["outcome"], "unsold", "14:45 closes the window: {}", unsold.text);

    // A buyer in Tokyo whose window opens at midnight, local time.
    service.clock.set(service_harness::START);
    ok(service.patch(OPERATOR, "/v1/buyers/acme", &json!({"time_zone": "Asia/Tokyo"})).await);
    ok(service
        .patch(OPERATOR, "/v1/campaigns/acme-main", &json!({"schedule": {"windows": ["thu 00:00-00:30"]}}))
        .await);
    ok(service.post(OPERATOR, "/v1/campaigns/acme-main/resume", &json!({})).await);
    assert_eq!(sold_to(&service).await.1, "acme-main");

    // The whole-hour form is still read (and written back as a window); malformed windows are refused.
    let old = json!({"schedule": {"windows": null, "days": ["sat"], "from_hour": 9, "to_hour": 17}});
    let read_back = ok(service.patch(OPERATOR, "/v1/campaigns/acme-main", &old).await);
    assert_eq!(read_back.body["schedule"], json!({"windows": ["sat 09:00-17:00"]}));
    for windows in [json!(["mon-fri 8:30-17:45"]), json!(["someday 10:00-11:00"]), json!(["mon 10:00-10:00"])] {
        let answer =
            service.patch(OPERATOR, "/v1/campaigns/acme-main", &json!({"schedule": {"windows": windows}})).await;
        assert_eq!(answer.status, 422, "{windows}: {}", answer.text);
        assert!(answer.message().contains("window"), "{}", answer.text);
    }
    service.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_deleted_campaign_is_never_pinged_again_and_is_archived_with_its_history_kept() {
    let service = TestService::start(&exchange_toml()).await;
    let (sold_before, winner, _) = sold_to(&service).await;
    assert_eq!(winner, "acme-main");

    // A buyer is not deleted from under its campaigns.
    let in_use = service.delete(OPERATOR, "/v1/buyers/acme").await;
    assert_eq!((in_use.status, in_use.code()), (409, "in_use"), "{}", in_use.text);
    assert!(in_use.message().contains("acme-main"), "{}", in_use.text);

    assert_eq!(service.delete(OPERATOR, "/v1/campaigns/acme-main").await.status, 204);
    let (lead_id, winner, _) = sold_to(&service).await;
    assert_eq!(winner, "zenith-main");
    let trace = service.get(OPERATOR, &format!("/v1/leads/{lead_id}/trace")).await;
    let campaigns = trace.body["outcome"]["trace"]["campaigns"].as_array().cloned().expect("campaign traces");
    assert_eq!(campaigns.len(), 1, "only zenith-main is left: {}", trace.text);
    assert!(campaigns.iter().all(|c| c["campaign_id"] != "acme-main"), "never pinged: {}", trace.text);
    assert_eq!(service.get(OPERATOR, "/v1/campaigns/acme-main").await.status, 404);
    assert_eq!(service.delete(OPERATOR, "/v1/campaigns/acme-main").await.status, 404);

    // Its history stays: the earlier sale still names it; the archive has its config.
    let earlier = service.get(OPERATOR, &format!("/v1/leads/{sold_before}/trace")).await;
    assert_eq!(earlier.body["sales"][0]["campaign_id"], "acme-main");
    assert_eq!(service.delete(OPERATOR, "/v1/buyers/acme").await.status, 204, "no campaign names it now");
    let archive = service.get(OPERATOR, "/v1/archive").await;
    let archived: Vec<(&str, &str)> = archive
        .body
        .as_array()
        .map(|a| a.iter().filter_map(|e| Some((e["kind"].as_str()?, e["id"].as_str()?))).collect())
        .unwrap_or_default();
    assert_eq!(archived, [("campaign", "acme-main"), ("buyer", "acme")], "{}", archive.text);
    let campaigns = service.get(OPERATOR, "/v1/archive?kind=campaign").await;
    assert_eq!(campaigns.body[0]["config"]["target"]["plugin"], "bidder", "{}", campaigns.text);
    assert_eq!(service.get(OPERATOR, "/v1/archive?kind=plugin").await.status, 422);
    assert_eq!(service.delete(PUBLISHER, "/v1/campaigns/zenith-main").await.status, 403);
    service.shutdown().await;
}
