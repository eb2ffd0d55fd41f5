//! The buyer API end to end: the real `pingpost serve` on 127.0.0.1 driven with a real HTTP client. A buyer reads
//! only the leads it bought (every read audited), returns them within the window, and uploads its own campaign's
//! plugin — a hot swap of that campaign only.

mod common;
#[path = "common/service.rs"]
mod service_harness;

use serde_json::{Value, json};
use service_harness::{Answer, TestService, api_keys, plugin_bytes, repackaged, standard_plugins};

const OPERATOR: &str = "op-key";
const PUBLISHER: &str = "pub-key";
const ACME: &str = "acme-key";
const ZENITH: &str = "zenith-key";
const DAY_MS: i64 = 86_400_000;

/// One publisher; buyer `acme` with a Wasm campaign bidding 2000 and a paused HTTP campaign; buyer `zenith` with a
/// Wasm campaign bidding 1500 (both on the operator's `config-buyer` plugin). Returns within 7 days.
fn exchange_toml() -> String {
    format!(
        r#"
[server]
return_window_days = 7
# Uploads compile plugins: generous on a busy 2-core machine running debug builds.
request_timeout_ms = 60000

{keys}

{plugins}
[[publishers]]
id = "pub-1"
redactor = "standard"
ping_deadline_ms = 20000
post_deadline_ms = 30000
margin_bps = 1000

[[buyers]]
id = "acme"
time_zone = "America/New_York"

[[buyers]]
id = "zenith"
time_zone = "America/Chicago"

[[campaigns]]
id = "acme-main"
buyer_id = "acme"
[campaigns.target]
kind = "wasm"
plugin = "config-buyer"
config = {{ base_price_cents = 2000 }}
delivery = {{ kind = "pickup" }}

[[campaigns]]
id = "acme-http"
buyer_id = "acme"
status = "paused"
[campaigns.target]
kind = "http"
ping_url = "http://127.0.0.1:9/ping"
post_url = "http://127.0.0.1:9/post"
timeout_ms = 100

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
            ("buyer", Some("acme"), ACME),
            ("buyer", Some("zenith"), ZENITH)
        ]),
        plugins = standard_plugins(),
    )
}

/// The shared test lead, without its publisher id (the publisher key fills it in).
fn lead() -> Value {
    let mut lead = serde_json::to_value(common::lead()).expect("a lead serialises");
    lead.as_object_mut().expect("an object").remove("publisher_id");
    lead["consumer"]["state"] = json!("FL");
    lead
}

/// Sends the test lead, expects it sold, and returns its id and the winning campaign (from the operator's trace).
async fn sell(service: &TestService) -> (String, String) {
    let answer = service.post(PUBLISHER, "/v1/leads", &lead()).await;
    assert_eq!((answer.status, answer.body["outcome"].as_str()), (200, Some("sold")), "{}", answer.text);
    let lead_id = answer.body["lead_id"].as_str().expect("a lead id").to_owned();
    let trace = service.get(OPERATOR, &format!("/v1/leads/{lead_id}/trace")).await;
    let winner = trace.body["sales"][0]["campaign_id"].as_str().expect("a sale").to_owned();
    (lead_id, winner)
}

/// Sells one lead to `zenith` (acme's campaign paused meanwhile).
async fn sell_to_zenith(service: &TestService) -> String {
    assert_eq!(service.post(OPERATOR, "/v1/campaigns/acme-main/pause", &json!({})).await.status, 200);
    let (lead_id, winner) = sell(service).await;
    assert_eq!(winner, "zenith-main");
    assert_eq!(service.post(OPERATOR, "/v1/campaigns/acme-main/resume", &json!({})).await.status, 200);
    lead_id
}

fn lead_ids(page: &Answer) -> Vec<String> {
    page.body["leads"]
        .as_array()
        .expect("a page of leads")
        .iter()
        .map(|l| l["lead_id"].as_str().unwrap().to_owned())
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn buyer_routes_need_a_buyer_key() {
    let service = TestService::start(&exchange_toml()).await;
    let routes: &[(&str, &str)] = &[
        ("GET", "/v1/buyer/campaigns"),
        ("GET", "/v1/buyer/leads"),
        ("GET", "/v1/buyer/leads/p_1"),
        ("POST", "/v1/buyer/leads/p_1/return"),
        ("PUT", "/v1/buyer/campaigns/acme-main/plugin"),
        ("POST", "/v1/buyer/campaigns/acme-main/plugin/rollback"),
    ];
    for (method, path) in routes {
        for (key, status) in [("", 401), ("nope", 401), (OPERATOR, 403), (PUBLISHER, 403)] {
            let request = service.client.request(method.parse().unwrap(), service.url(path)).body("{}");
            let request = if key.is_empty() { request } else { request.bearer_auth(key) };
            let response = request.send().await.expect("the request reaches the service");
            assert_eq!(response.status().as_u16(), status, "{method} {path} with {key:?}");
            let body: Value = response.json().await.expect("a JSON error");
            assert!(body["error"]["code"].is_string());
        }
    }
    service.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_buyer_reads_only_its_own_leads_and_every_read_is_audited() {
    let service = TestService::start(&exchange_toml()).await;
    let consumer = common::lead().consumer;
    let (acme_lead, winner) = sell(&service).await;
    assert_eq!(winner, "acme-main");
    let zenith_lead = sell_to_zenith(&service).await;
    let (acme_second, _) = sell(&service).await;

    // Its campaigns, config included; only its own.
    let campaigns = service.get(ACME, "/v1/buyer/campaigns").await;
    let ids: Vec<&str> = campaigns.body.as_array().unwrap().iter().filter_map(|c| c["id"].as_str()).collect();
    assert_eq!(ids, ["acme-main", "acme-http"]);
    assert_eq!(campaigns.body[0]["target"]["config"], json!({"base_price_cents": 2000}));
    let zenith_campaigns = service.get(ZENITH, "/v1/buyer/campaigns").await;
    assert_eq!(zenith_campaigns.body.as_array().unwrap().len(), 1);

    // Its leads, with the consumer's PII; never another buyer's.
    let page = service.get(ACME, "/v1/buyer/leads").await;
    assert_eq!(page.status, 200, "{}", page.text);
    assert_eq!(lead_ids(&page), [acme_lead.as_str(), acme_second.as_str()]);
    assert_eq!(page.body["leads"][0]["lead"]["consumer"]["email"], consumer.email.as_str());
    assert_eq!(page.body["leads"][0]["price_cents"], 2000);
    assert_eq!(lead_ids(&service.get(ZENITH, "/v1/buyer/leads").await), [zenith_lead.as_str()]);
    let one = service.get(ACME, &format!("/v1/buyer/leads/{acme_lead}")).await;
    assert_eq!(one.status, 200, "{}", one.text);
    let phone = one.body["lead"]["consumer"]["phone"].as_str().expect("the phone");
    assert!(phone.ends_with(consumer.phone.as_str()), "{phone}");
    let other = service.get(ACME, &format!("/v1/buyer/leads/{zenith_lead}")).await;
    assert_eq!((other.status, other.code()), (404, "not_found"));
    assert!(!other.text.contains(&consumer.email));
    assert_eq!(service.get(ZENITH, &format!("/v1/buyer/leads/{acme_lead}")).await.status, 404);
    assert_eq!(service.get(ACME, "/v1/buyer/leads/p_unknown").await.status, 404);

    // Pages: `after` the last sale id, `limit`.
    let first = service.get(ACME, "/v1/buyer/leads?limit=1").await;
    assert_eq!(lead_ids(&first), [acme_lead.as_str()]);
    let after = first.body["next_after"].as_u64().expect("a cursor");
    let second = service.get(ACME, &format!("/v1/buyer/leads?after={after}&limit=1")).await;
    assert_eq!(lead_ids(&second), [acme_second.as_str()]);
    let last = second.body["next_after"].as_u64().unwrap();
    let empty = service.get(ACME, &format!("/v1/buyer/leads?after={last}")).await;
    assert!(lead_ids(&empty).is_empty() && empty.body.get("next_after").is_none(), "{}", empty.text);
    for query in ["limit=0", "limit=5000", "limit=many", "after=-1", "sort=desc"] {
        let refused = service.get(ACME, &format!("/v1/buyer/leads?{query}")).await;
        assert_eq!(refused.status, 422, "{query}: {}", refused.text);
    }

    // Every hand-over of PII through the API is in the audit: who, which lead, which campaign, how.
    let trace = service.get(OPERATOR, &format!("/v1/leads/{acme_lead}/trace")).await;
    let audit = trace.body["pii_audit"].as_array().expect("the audit").clone();
    let api_reads: Vec<&Value> = audit.iter().filter(|a| a["how"] == "api").collect();
    // The full list, the single read, and the first page of one.
    assert_eq!(api_reads.len(), 3, "{}", trace.text);
    assert!(api_reads.iter().all(|a| a["principal_id"] == "buyer:acme" && a["campaign_id"] == "acme-main"));
    let zenith_trace = service.get(OPERATOR, &format!("/v1/leads/{zenith_lead}/trace")).await;
    let zenith_audit: Vec<Value> =
        zenith_trace.body["pii_audit"].as_array().unwrap().iter().filter(|a| a["how"] == "api").cloned().collect();
    assert_eq!(zenith_audit.len(), 1, "only zenith's own read: {}", zenith_trace.text);
    assert_eq!(zenith_audit[0]["principal_id"], "buyer:zenith");
    service.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_lead_is_returned_within_its_window_only() {
    let service = TestService::start(&exchange_toml()).await;
    let (early, _) = sell(&service).await;
    let zenith_lead = sell_to_zenith(&service).await;
    let return_of = |lead: String, key: &'static str, body: Value| {
        let service = &service;
        async move { service.post(key, &format!("/v1/buyer/leads/{lead}/return"), &body).await }
    };

    let no_reason = return_of(early.clone(), ACME, json!({"reason": "  "})).await;
    assert_eq!((no_reason.status, no_reason.field()), (422, "reason"), "{}", no_reason.text);
    let missing = return_of(early.clone(), ACME, json!({})).await;
    assert_eq!(missing.status, 422, "{}", missing.text);
    let not_yours = return_of(zenith_lead.clone(), ACME, json!({"reason": "wrong number"})).await;
    assert_eq!((not_yours.status, not_yours.code()), (404, "not_found"));

    service.clock.advance(6 * DAY_MS);
    let (late, _) = sell(&service).await;
    let returned = return_of(early.clone(), ACME, json!({"reason": "wrong number"})).await;
    assert_eq!(returned.status, 200, "{}", returned.text);
    assert_eq!(returned.body["returned"]["reason"], "wrong number");
    assert_eq!(returned.body["lead_id"], early.as_str());
    let twice = return_of(early.clone(), ACME, json!({"reason": "again"})).await;
    assert_eq!((twice.status, twice.code()), (409, "already_returned"));
    let listed = service.get(ACME, &format!("/v1/buyer/leads/{early}")).await;
    assert_eq!(listed.body["returned"]["reason"], "wrong number");

    // Eight days after the first sale its window has closed; the later sale's is still open.
    service.clock.advance(2 * DAY_MS);
    let zenith_late = return_of(zenith_lead, ZENITH, json!({"reason": "duplicate"})).await;
    assert_eq!((zenith_late.status, zenith_late.code()), (409, "return_window_closed"), "{}", zenith_late.text);
    let in_time = return_of(late, ACME, json!({"reason": "disconnected"})).await;
    assert_eq!(in_time.status, 200, "{}", in_time.text);
    service.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_buyers_plugin_upload_hot_swaps_its_own_campaign_only() {
    let service = TestService::start(&exchange_toml()).await;
    let upload = |key: &'static str, campaign: &'static str, bytes: Vec<u8>| {
        let service = &service;
        async move { service.put_bytes(key, &format!("/v1/buyer/campaigns/{campaign}/plugin"), bytes).await }
    };
    let config_buyer = plugin_bytes("config-buyer");

    // Refused uploads change nothing.
    let garbage = upload(ACME, "acme-main", pingpost_plugins::hostile_fixture("random-bytes").unwrap()).await;
    assert_eq!((garbage.status, garbage.code()), (422, "invalid_plugin"), "{}", garbage.text);
    let redactor = upload(ACME, "acme-main", plugin_bytes("standard-redactor")).await;
    assert_eq!((redactor.status, redactor.code()), (422, "wrong_world"), "{}", redactor.text);
    let theirs = upload(ACME, "zenith-main", config_buyer.clone()).await;
    assert_eq!((theirs.status, theirs.code()), (404, "not_found"));
    let http = upload(ACME, "acme-http", config_buyer.clone()).await;
    assert_eq!((http.status, http.code()), (409, "not_a_wasm_campaign"));
    // A module that does not accept the campaign's config, or cannot start within an instance's memory, is refused:
    // nothing of it is kept, neither a version nor its compiled artifact.
    let artifacts = || std::fs::read_dir(service.data_dir().join("cache")).map_or(0, |dir| dir.count());
    let cached_before = artifacts();
    let scorecard = upload(ACME, "acme-main", plugin_bytes("scorecard-buyer")).await;
    assert_eq!((scorecard.status, scorecard.code()), (422, "refused"), "{}", scorecard.text);
    assert!(scorecard.message().contains("acme-main"), "{}", scorecard.text);
    let huge = upload(ACME, "acme-main", pingpost_plugins::hostile_fixture("huge-memory").unwrap()).await;
    assert_eq!((huge.status, huge.code()), (422, "plugin_cannot_instantiate"), "{}", huge.text);
    let plugin = service.get(OPERATOR, "/v1/plugins/campaign:acme-main").await;
    assert_eq!(plugin.status, 404, "no version was kept: {}", plugin.text);
    assert_eq!(artifacts(), cached_before, "no artifact was kept");
    assert_eq!(service.get(OPERATOR, "/v1/campaigns/acme-main").await.body["target"]["plugin"], "config-buyer");
    assert_eq!(sell(&service).await.1, "acme-main");

    // A good upload: plugin `campaign:acme-main`, owned by acme, live for acme-main only, config kept.
    let uploaded = upload(ACME, "acme-main", repackaged(&config_buyer, "acme-1")).await;
    assert_eq!(uploaded.status, 201, "{}", uploaded.text);
    assert_eq!(uploaded.body["name"], "campaign:acme-main");
    let version = uploaded.body["version"].as_u64().unwrap();
    let campaign = service.get(OPERATOR, "/v1/campaigns/acme-main").await;
    assert_eq!(campaign.body["target"]["plugin"], "campaign:acme-main");
    assert_eq!(campaign.body["target"]["config"], json!({"base_price_cents": 2000}));
    assert_eq!(campaign.body["target"]["delivery"], json!({"kind": "pickup"}));
    assert_eq!(service.get(OPERATOR, "/v1/campaigns/zenith-main").await.body["target"]["plugin"], "config-buyer");
    let plugin = service.get(OPERATOR, "/v1/plugins/campaign:acme-main").await;
    assert_eq!((plugin.body["owner_role"].as_str(), plugin.body["owner_id"].as_str()), (Some("buyer"), Some("acme")));
    assert_eq!(plugin.body["active_version"].as_u64(), Some(version));
    let own = service.get(ACME, "/v1/buyer/campaigns").await;
    assert_eq!(own.body[0]["target"]["plugin"], "campaign:acme-main");
    assert_eq!(sell(&service).await.1, "acme-main");

    // acme-main now runs the buyer's plugin: disabling it takes out acme-main and nothing else.
    assert_eq!(service.post(OPERATOR, "/v1/plugins/campaign:acme-main/disable", &json!({})).await.status, 200);
    assert_eq!(sell(&service).await.1, "zenith-main");
    assert_eq!(service.post(OPERATOR, "/v1/plugins/campaign:acme-main/enable", &json!({})).await.status, 200);
    assert_eq!(sell(&service).await.1, "acme-main");

    // A second version, then a rollback to the first; another buyer cannot roll it back.
    let second = upload(ACME, "acme-main", repackaged(&config_buyer, "acme-2")).await;
    assert_eq!(second.body["version"].as_u64(), Some(version + 1), "{}", second.text);
    let plugin = service.get(OPERATOR, "/v1/plugins/campaign:acme-main").await;
    assert_eq!(plugin.body["active_version"].as_u64(), Some(version + 1));
    assert_eq!(service.post(ZENITH, "/v1/buyer/campaigns/acme-main/plugin/rollback", &json!({})).await.status, 404);
    let rolled = service.post(ACME, "/v1/buyer/campaigns/acme-main/plugin/rollback", &json!({})).await;
    assert_eq!((rolled.status, rolled.body["active_version"].as_u64()), (200, Some(version)), "{}", rolled.text);
    assert_eq!(sell(&service).await.1, "acme-main");
    let nothing = service.post(ZENITH, "/v1/buyer/campaigns/zenith-main/plugin/rollback", &json!({})).await;
    assert_eq!((nothing.status, nothing.code()), (409, "nothing_to_roll_back"));
    service.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn old_plugin_versions_are_pruned_and_an_operator_deletes_one_that_is_not_live() {
    async fn upload(service: &TestService, bytes: Vec<u8>) -> Answer {
        service.put_bytes(ACME, "/v1/buyer/campaigns/acme-main/plugin", bytes).await
    }
    async fn versions(service: &TestService) -> Vec<u64> {
        let plugin = service.get(OPERATOR, "/v1/plugins/campaign:acme-main").await;
        plugin.body["versions"].as_array().expect("versions").iter().map(|v| v["version"].as_u64().unwrap()).collect()
    }
    let config_buyer = plugin_bytes("config-buyer");
    // Two versions kept, and a quota of two and a half: the versions pruning will delete do not count against it, so
    // a buyer that keeps uploading is never stopped by its old versions.
    let quota = config_buyer.len() * 5 / 2;
    let settings = format!("[server]\nplugin_versions_kept = 2\nmax_plugin_bytes_per_owner = {quota}\n");
    let service = TestService::start(&exchange_toml().replacen("[server]\n", &settings, 1)).await;
    for n in 1..=5 {
        let stored = upload(&service, repackaged(&config_buyer, &format!("v{n}"))).await;
        assert_eq!(stored.status, 201, "upload {n}: {}", stored.text);
    }
    assert_eq!(versions(&service).await, [4, 5], "the two newest are kept");
    let rolled = service.post(ACME, "/v1/buyer/campaigns/acme-main/plugin/rollback", &json!({})).await;
    assert_eq!((rolled.status, rolled.body["active_version"].as_u64()), (200, Some(4)), "{}", rolled.text);
    // A second rollback goes further back, not forward to 5: the versions before 4 were pruned, so it has nowhere to go.
    let again = service.post(ACME, "/v1/buyer/campaigns/acme-main/plugin/rollback", &json!({})).await;
    assert_eq!((again.status, again.code()), (409, "nothing_to_roll_back"), "{}", again.text);
    let forward = service.post(OPERATOR, "/v1/plugins/campaign:acme-main/activate", &json!({"version": 5})).await;
    assert_eq!((forward.status, forward.body["active_version"].as_u64()), (200, Some(5)), "{}", forward.text);
    assert_eq!(sell(&service).await.1, "acme-main");

    let live = service.delete(OPERATOR, "/v1/plugins/campaign:acme-main/versions/5").await;
    assert_eq!((live.status, live.code()), (409, "plugin_version_live"), "{}", live.text);
    assert_eq!(service.delete(ACME, "/v1/plugins/campaign:acme-main/versions/4").await.status, 403);
    assert_eq!(service.delete(OPERATOR, "/v1/plugins/campaign:acme-main/versions/4").await.status, 204);
    assert_eq!(service.delete(OPERATOR, "/v1/plugins/campaign:acme-main/versions/4").await.status, 404);
    assert_eq!(versions(&service).await, [5]);
    let nothing = service.post(ACME, "/v1/buyer/campaigns/acme-main/plugin/rollback", &json!({})).await;
    assert_eq!((nothing.status, nothing.code()), (409, "nothing_to_roll_back"), "{}", nothing.text);
    assert_eq!(sell(&service).await.1, "acme-main", "the live version still sells");
    service.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_buyers_uploads_are_held_to_a_quota_of_stored_bytes_and_a_rate() {
    async fn upload(service: &TestService, bytes: Vec<u8>) -> Answer {
        service.put_bytes(ACME, "/v1/buyer/campaigns/acme-main/plugin", bytes).await
    }
    let config_buyer = plugin_bytes("config-buyer");
    let with = |settings: String| exchange_toml().replacen("[server]\n", &settings, 1);
    // Room for two versions of config-buyer, not three.
    let quota = config_buyer.len() * 5 / 2;
    let service = TestService::start(&with(format!("[server]\nmax_plugin_bytes_per_owner = {quota}\n"))).await;
    for n in 1..=2 {
        let stored = upload(&service, repackaged(&config_buyer, &format!("v{n}"))).await;
        assert_eq!(stored.status, 201, "{}", stored.text);
    }
    let over = upload(&service, repackaged(&config_buyer, "v3")).await;
    assert_eq!((over.status, over.code()), (409, "plugin_quota_exceeded"), "{}", over.text);
    let plugin = service.get(OPERATOR, "/v1/plugins/campaign:acme-main").await;
    assert_eq!(plugin.body["versions"].as_array().map(Vec::len), Some(2), "{}", plugin.text);
    service.shutdown().await;

    // One upload a minute: the second, right after, is refused before its bytes are even read as Wasm.
    let service = TestService::start(&with("[server]\nplugin_uploads_per_minute = 1\n".into())).await;
    let garbage = || pingpost_plugins::hostile_fixture("random-bytes").unwrap();
    assert_eq!(upload(&service, garbage()).await.code(), "invalid_plugin");
    let fast = upload(&service, garbage()).await;
    assert_eq!((fast.status, fast.code()), (429, "rate_limited"), "{}", fast.text);
    service.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_buyer_manages_when_and_what_its_own_campaigns_buy_and_nothing_the_operator_decides() {
    let service = TestService::start(&exchange_toml()).await;
    let patch = |key: &'static str, id: &'static str, body: Value| {
        let service = &service;
        async move { service.patch(key, &format!("/v1/buyer/campaigns/{id}"), &body).await }
    };

    // Pause and resume: the next lead follows. The buyer's pause is its own: it neither shows as nor undoes the
    // operator's.
    let paused = service.post(ACME, "/v1/buyer/campaigns/acme-main/pause", &json!({})).await;
    assert_eq!(
        (paused.status, &paused.body["paused_by_buyer"], &paused.body["status"]),
        (200, &json!(true), &json!("active")),
        "{}",
        paused.text
    );
    assert_eq!(sell(&service).await.1, "zenith-main");
    assert_eq!(service.post(ACME, "/v1/buyer/campaigns/acme-main/resume", &json!({})).await.status, 200);
    assert_eq!(sell(&service).await.1, "acme-main");
    assert_eq!(service.post(OPERATOR, "/v1/campaigns/acme-main/pause", &json!({})).await.status, 200);
    assert_eq!(service.post(ACME, "/v1/buyer/campaigns/acme-main/resume", &json!({})).await.status, 200);
    assert_eq!(sell(&service).await.1, "zenith-main", "the operator's pause stays");
    let unpause = patch(ACME, "acme-main", json!({"status": "active"})).await;
    assert_eq!((unpause.status, unpause.field()), (403, "status"), "{}", unpause.text);
    assert_eq!(service.post(OPERATOR, "/v1/campaigns/acme-main/resume", &json!({})).await.status, 200);
    assert_eq!(sell(&service).await.1, "acme-main");

    // Caps, schedule and its plugin's config, in one merge patch; the rest of the campaign is kept.
    let edit = json!({
        "caps": {"leads_per_day": 40},
        "schedule": {"windows": ["mon-fri 08:30-17:45"]},
        "target": {"config": {"base_price_cents": 2600}}
    });
    let edited = patch(ACME, "acme-main", edit).await;
    assert_eq!(edited.status, 200, "{}", edited.text);
    assert_eq!(
        (&edited.body["caps"]["leads_per_day"], &edited.body["target"]["plugin"], &edited.body["tier"]),
        (&json!(40), &json!("config-buyer"), &json!(1))
    );
    let (lead_id, winner) = sell(&service).await;
    assert_eq!(winner, "acme-main");
    let trace = service.get(OPERATOR, &format!("/v1/leads/{lead_id}/trace")).await;
    assert_eq!(trace.body["sales"][0]["price_cents"], 2600, "the new bid settings price it");

    // What the operator decides is not the buyer's to change; nothing is saved.
    for (body, field) in [
        (json!({"tier": 0}), "tier"),
        (json!({"max_bid_cents": 1_000_000}), "max_bid_cents"),
        (json!({"buyer_id": "zenith"}), "buyer_id"),
        (json!({"exclusivity": "exclusive_only"}), "exclusivity"),
        (json!({"target": {"plugin": "standard"}}), "target.plugin"),
        (json!({"target": {"delivery": {"kind": "webhook", "url": "http://127.0.0.1:9/"}}}), "target.delivery"),
        (json!({"id": "other"}), "id"),
    ] {
        let refused = patch(ACME, "acme-main", body.clone()).await;
        assert_eq!((refused.status, refused.code(), refused.field()), (403, "not_editable", field), "{body}");
    }
    let http = patch(ACME, "acme-http", json!({"target": {"config": {}}})).await;
    assert_eq!((http.status, http.field()), (403, "target.config"), "an HTTP campaign has no plugin config");
    let invalid = patch(ACME, "acme-main", json!({"caps": {"leads_per_day": "many"}})).await;
    assert_eq!((invalid.status, invalid.field()), (422, "caps.leads_per_day"), "{}", invalid.text);
    let kept = service.get(OPERATOR, "/v1/campaigns/acme-main").await;
    assert_eq!((&kept.body["tier"], &kept.body["caps"]["leads_per_day"]), (&json!(1), &json!(40)));

    // Another buyer's campaign does not exist for it.
    assert_eq!(patch(ZENITH, "acme-main", json!({"caps": {}})).await.status, 404);
    assert_eq!(service.post(ZENITH, "/v1/buyer/campaigns/acme-main/pause", &json!({})).await.status, 404);
    assert_eq!(patch(PUBLISHER, "acme-main", json!({"caps": {}})).await.status, 403);
    service.shutdown().await;
}
