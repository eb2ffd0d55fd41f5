//! The books end to end, through the real `pingpost serve` on 127.0.0.1: every sale posts its entries in the sale's
//! own step, a prepaid buyer buys only what its payments cover, a return moves the money back, payouts wait for the
//! return window, every correction is a new event, and each party sees only its own account.

mod common;
#[path = "common/service.rs"]
mod service_harness;

use serde_json::{Value, json};
use service_harness::{Answer, START, TestService, api_keys, standard_plugins};

const OPERATOR: &str = "op-key";
const PUBLISHER: &str = "pub-key";
const ACME: &str = "acme-key";
const ZENITH: &str = "zenith-key";
const DAY_MS: i64 = 86_400_000;

/// Publisher `pub-1` (10 % margin); `acme`, prepaid (credit limit 0), bidding 2000; `zenith`, not limited, bidding
/// 1500. Returns and payouts within 7 days.
fn exchange_toml() -> String {
    format!(
        r#"
[server]
return_window_days = 7
payout_hold_days = 7

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
credit_limit_cents = 0

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

/// Sends the test lead, expects it sold, and returns its id and the operator's trace of it.
async fn sell(service: &TestService) -> (String, Answer) {
    let answer = service.post(PUBLISHER, "/v1/leads", &lead()).await;
    assert_eq!((answer.status, answer.body["outcome"].as_str()), (200, Some("sold")), "{}", answer.text);
    let lead_id = answer.body["lead_id"].as_str().expect("a lead id").to_owned();
    let trace = service.get(OPERATOR, &format!("/v1/leads/{lead_id}/trace")).await;
    (lead_id, trace)
}

/// The trace entry of `campaign_id`.
fn entry<'a>(trace: &'a Answer, campaign_id: &str) -> &'a Value {
    trace.body["outcome"]["trace"]["campaigns"]
        .as_array()
        .expect("campaign entries")
        .iter()
        .find(|c| c["campaign_id"] == campaign_id)
        .unwrap_or_else(|| panic!("no entry for {campaign_id}: {}", trace.text))
}

async fn balance(service: &TestService, account: &str) -> i64 {
    let answer = service.get(OPERATOR, &format!("/v1/ledger/balance?account={account}")).await;
    assert_eq!(answer.status, 200, "{}", answer.text);
    answer.body["balance_cents"].as_i64().expect("a balance")
}

/// The books balance: the journal sums to zero and every running balance is the sum of its postings.
async fn assert_books_balance(service: &TestService) {
    let check = service.get(OPERATOR, "/v1/ledger/check").await;
    assert_eq!(check.status, 200, "{}", check.text);
    assert_eq!(check.body["sum_cents"], 0, "{}", check.text);
    assert_eq!(check.body["accounts_off"], json!([]), "{}", check.text);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_prepaid_buyer_buys_only_what_its_payments_cover_and_every_sale_posts_its_entries() {
    let service = TestService::start(&exchange_toml()).await;

    // Nothing paid in: acme is not pinged, and zenith buys at 1500.
    let (first, trace) = sell(&service).await;
    assert_eq!(entry(&trace, "acme-main")["ineligible"], json!({"reason": "insufficient_funds", "available_cents": 0}));
    assert_eq!(trace.body["sales"][0]["campaign_id"], "zenith-main");
    assert_eq!(balance(&service, "buyer:zenith").await, -1_500);
    assert_eq!(balance(&service, "publisher:pub-1").await, 1_350);
    assert_eq!(balance(&service, "exchange:margin").await, 150);
    let journal = service.get(OPERATOR, "/v1/ledger").await;
    let sale = &journal.body["events"][0];
    assert_eq!((sale["kind"].as_str(), sale["lead_id"].as_str()), (Some("sale"), Some(first.as_str())));
    assert_eq!(sale["principal_id"], "pub-1");
    assert_eq!(
        sale["postings"],
        json!([
            {"account": "buyer:zenith", "amount_cents": -1500},
            {"account": "exchange:margin", "amount_cents": 150},
            {"account": "publisher:pub-1", "amount_cents": 1350},
        ])
    );

    // A payment of 3000: recorded once, however often it is sent with its reference.
    let before_payment = START;
    service.clock.advance(60_000);
    let payment = json!({"amount_cents": 3000, "reference": "wire-1", "memo": "prepayment"});
    let paid = service.post(OPERATOR, "/v1/buyers/acme/payments", &payment).await;
    assert_eq!(paid.status, 201, "{}", paid.text);
    assert_eq!(paid.body["principal_id"], "operator:1");
    let again = service.post(OPERATOR, "/v1/buyers/acme/payments", &payment).await;
    assert_eq!((again.status, &again.body["event_id"]), (200, &paid.body["event_id"]), "{}", again.text);
    let other =
        service.post(OPERATOR, "/v1/buyers/acme/payments", &json!({"amount_cents": 30, "reference": "wire-1"})).await;
    assert_eq!((other.status, other.code()), (409, "reference_in_use"), "{}", other.text);
    let funds = service.get(OPERATOR, "/v1/buyers/acme/funds").await;
    assert_eq!(
        funds.body,
        json!({"buyer_id": "acme", "balance_cents": 3000, "held_cents": 0, "credit_limit_cents": 0, "available_cents": 3000})
    );

    // Now acme wins at 2000; 1000 is left, so its next bid of 2000 is dropped and zenith buys.
    let (second, trace) = sell(&service).await;
    assert_eq!(trace.body["sales"][0]["campaign_id"], "acme-main", "{}", trace.text);
    assert_eq!(service.get(ACME, "/v1/buyer/funds").await.body["available_cents"], 1_000);
    let (_, trace) = sell(&service).await;
    assert_eq!(
        entry(&trace, "acme-main")["answer"],
        json!({"answer": "funds_would_exceed", "price_cents": 2000, "available_cents": 1000})
    );
    assert_eq!(trace.body["sales"][0]["campaign_id"], "zenith-main");
    assert_books_balance(&service).await;

    // Balances at a past time: before the payment, acme had nothing.
    let then = service.get(OPERATOR, &format!("/v1/ledger/balance?account=buyer:acme&at={before_payment}")).await;
    assert_eq!(then.body["balance_cents"], 0, "{}", then.text);
    assert_eq!(balance(&service, "buyer:acme").await, 1_000);

    // Each party sees its own account's postings only: never the other side of a sale, nor the margin.
    let acme_lines = service.get(ACME, "/v1/buyer/ledger").await;
    assert_eq!(acme_lines.status, 200, "{}", acme_lines.text);
    let amounts: Vec<(String, i64)> = acme_lines.body["lines"]
        .as_array()
        .unwrap()
        .iter()
        .map(|l| (l["kind"].as_str().unwrap().to_owned(), l["amount_cents"].as_i64().unwrap()))
        .collect();
    assert_eq!(amounts, [("payment".to_owned(), 3_000), ("sale".to_owned(), -2_000)]);
    assert!(!acme_lines.text.contains("publisher") && !acme_lines.text.contains("margin"), "{}", acme_lines.text);
    let publisher_lines = service.get(PUBLISHER, "/v1/publisher/ledger").await;
    assert_eq!(publisher_lines.body["lines"].as_array().unwrap().len(), 3, "{}", publisher_lines.text);
    assert!(
        !publisher_lines.text.contains("buyer") && !publisher_lines.text.contains("acme"),
        "{}",
        publisher_lines.text
    );
    let asked = service.get(ACME, "/v1/buyer/ledger?account=buyer:zenith").await;
    assert_eq!((asked.status, asked.field()), (422, "account"));

    // A return credits the buyer and takes back payout and margin, in the return's own step.
    let returned =
        service.post(ACME, &format!("/v1/buyer/leads/{second}/return"), &json!({"reason": "bad phone"})).await;
    assert_eq!(returned.status, 200, "{}", returned.text);
    assert_eq!(balance(&service, "buyer:acme").await, 3_000);
    assert_eq!(balance(&service, "publisher:pub-1").await, 1_350 * 2);
    assert_eq!(balance(&service, "exchange:margin").await, 150 * 2);
    let journal = service.get(OPERATOR, "/v1/ledger?account=buyer:acme").await;
    let kinds: Vec<&str> =
        journal.body["events"].as_array().unwrap().iter().map(|e| e["kind"].as_str().unwrap()).collect();
    assert_eq!(kinds, ["payment", "sale", "return"]);
    let reversal = &journal.body["events"][2];
    assert_eq!(reversal["reverses_event_id"], journal.body["events"][1]["event_id"]);
    assert_eq!(reversal["principal_id"], "acme");
    assert_books_balance(&service).await;

    // Payouts wait for the hold: nothing is payable within 7 days of the sales, all of it after.
    let held = service.get(PUBLISHER, "/v1/publisher/balance").await;
    assert_eq!(held.body, json!({"balance_cents": 2700, "held_cents": 2700, "payable_cents": 0}), "{}", held.text);
    let early = service.post(OPERATOR, "/v1/publishers/pub-1/payouts", &json!({"amount_cents": 100})).await;
    assert_eq!((early.status, early.code()), (409, "exceeds_payable"), "{}", early.text);
    service.clock.advance(8 * DAY_MS);
    let later = service.get(OPERATOR, "/v1/publishers/pub-1/balance").await;
    assert_eq!(later.body["payable_cents"], 2_700, "{}", later.text);
    let payout = service
        .post(OPERATOR, "/v1/publishers/pub-1/payouts", &json!({"amount_cents": 2700, "reference": "ach-1"}))
        .await;
    assert_eq!(payout.status, 201, "{}", payout.text);
    let more = service.post(OPERATOR, "/v1/publishers/pub-1/payouts", &json!({"amount_cents": 1})).await;
    assert_eq!(more.code(), "exceeds_payable", "{}", more.text);
    assert_eq!(balance(&service, "publisher:pub-1").await, 0);
    assert_eq!(balance(&service, "exchange:cash").await, -3_000 + 2_700);
    assert_books_balance(&service).await;
    service.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn corrections_are_new_events_and_bad_money_is_refused_naming_the_field() {
    let service = TestService::start(&exchange_toml()).await;

    // An adjustment needs a memo; a reversal negates it, once; a sale is undone by its return, not reversed.
    let no_memo =
        service.post(OPERATOR, "/v1/buyers/acme/adjustments", &json!({"amount_cents": 500, "memo": " "})).await;
    assert_eq!((no_memo.status, no_memo.field()), (422, "memo"), "{}", no_memo.text);
    let credit = json!({"amount_cents": 500, "memo": "goodwill"});
    let adjusted = service.post(OPERATOR, "/v1/buyers/acme/adjustments", &credit).await;
    assert_eq!(adjusted.status, 201, "{}", adjusted.text);
    assert_eq!(balance(&service, "buyer:acme").await, 500);
    assert_eq!(balance(&service, "exchange:adjustments").await, -500);
    let id = adjusted.body["event_id"].as_u64().unwrap();
    let reversed = service.post(OPERATOR, &format!("/v1/ledger/{id}/reverse"), &json!({"memo": "entered twice"})).await;
    assert_eq!(reversed.status, 201, "{}", reversed.text);
    assert_eq!(reversed.body["kind"], "reversal");
    assert_eq!(reversed.body["reverses_event_id"], id);
    assert_eq!(balance(&service, "buyer:acme").await, 0);
    let twice = service.post(OPERATOR, &format!("/v1/ledger/{id}/reverse"), &json!({})).await;
    assert_eq!((twice.status, twice.code()), (409, "already_reversed"), "{}", twice.text);
    let (_, trace) = sell(&service).await;
    assert_eq!(trace.body["sales"][0]["campaign_id"], "zenith-main");
    let journal = service.get(OPERATOR, "/v1/ledger?account=buyer:zenith").await;
    let sale_id = journal.body["events"][0]["event_id"].as_u64().unwrap();
    let sale = service.post(OPERATOR, &format!("/v1/ledger/{sale_id}/reverse"), &json!({})).await;
    assert_eq!((sale.status, sale.code()), (409, "not_reversible"), "{}", sale.text);
    assert_eq!(service.post(OPERATOR, "/v1/ledger/999999/reverse", &json!({})).await.status, 404);
    // The journal is append-only: the adjustment is still there, beside its reversal.
    let all = service.get(OPERATOR, "/v1/ledger").await;
    let kinds: Vec<&str> = all.body["events"].as_array().unwrap().iter().map(|e| e["kind"].as_str().unwrap()).collect();
    assert_eq!(kinds, ["adjustment", "reversal", "sale"]);
    let page = service.get(OPERATOR, "/v1/ledger?limit=1").await;
    let after = page.body["next_after"].as_u64().unwrap();
    let next = service.get(OPERATOR, &format!("/v1/ledger?after={after}&limit=5")).await;
    assert_eq!(next.body["events"].as_array().unwrap().len(), 2);
    assert_books_balance(&service).await;

    // Bad money: a 4xx naming the field, nothing recorded.
    let refusals: &[(&str, Value, u16, &str)] = &[
        ("/v1/buyers/acme/payments", json!({"amount_cents": 0}), 422, "amount_cents"),
        ("/v1/buyers/acme/payments", json!({"amount_cents": -5}), 422, "amount_cents"),
        ("/v1/buyers/acme/payments", json!({"amount_cents": 1_000_000_000_001_u64}), 422, "amount_cents"),
        ("/v1/buyers/acme/payments", json!({"amount_cents": 5, "reference": "r".repeat(129)}), 422, "reference"),
        ("/v1/buyers/acme/payments", json!({"amount_cents": 5, "memo": "m".repeat(1001)}), 422, "memo"),
        ("/v1/buyers/acme/payments", json!({"amount_cents": 5, "currency": "USD"}), 422, "currency"),
        ("/v1/buyers/acme/adjustments", json!({"amount_cents": 0, "memo": "x"}), 422, "amount_cents"),
        ("/v1/buyers/nobody/payments", json!({"amount_cents": 5}), 404, ""),
        ("/v1/publishers/nobody/payouts", json!({"amount_cents": 5}), 404, ""),
    ];
    for (path, body, status, field) in refusals {
        let answer = service.post(OPERATOR, path, body).await;
        assert_eq!((answer.status, answer.field()), (*status, *field), "{path} {body}: {}", answer.text);
    }
    for query in ["account=bank", "account=buyer:", "limit=0", "after=-1"] {
        let answer = service.get(OPERATOR, &format!("/v1/ledger?{query}")).await;
        assert_eq!(answer.status, 422, "{query}: {}", answer.text);
    }
    assert_eq!(service.get(OPERATOR, "/v1/ledger/balance?account=nope").await.field(), "account");
    assert_eq!(service.get(OPERATOR, "/v1/buyers/nobody/funds").await.status, 404);
    assert_eq!(balance(&service, "buyer:acme").await, 0);
    assert_books_balance(&service).await;

    // The books are the operator's: other keys are refused.
    for (method, path) in [
        ("POST", "/v1/buyers/acme/payments"),
        ("POST", "/v1/buyers/acme/adjustments"),
        ("GET", "/v1/buyers/acme/funds"),
        ("POST", "/v1/publishers/pub-1/payouts"),
        ("GET", "/v1/publishers/pub-1/balance"),
        ("GET", "/v1/ledger"),
        ("GET", "/v1/ledger/balance?account=exchange:cash"),
        ("GET", "/v1/ledger/check"),
        ("POST", "/v1/ledger/1/reverse"),
    ] {
        for key in [PUBLISHER, ACME] {
            let request =
                service.client.request(method.parse().unwrap(), service.url(path)).bearer_auth(key).body("{}");
            let answer = service.send(key, request).await;
            assert_eq!(answer.status, 403, "{method} {path} with {key}");
        }
    }
    assert_eq!(service.get(PUBLISHER, "/v1/buyer/funds").await.status, 403);
    assert_eq!(service.get(ZENITH, "/v1/publisher/balance").await.status, 403);
    // Zenith's spending is not limited: no limit, nothing "available" to show.
    let zenith = service.get(ZENITH, "/v1/buyer/funds").await;
    assert_eq!(zenith.body, json!({"buyer_id": "zenith", "balance_cents": -1500, "held_cents": 0}), "{}", zenith.text);
    service.shutdown().await;
}
