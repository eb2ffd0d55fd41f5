//! Verticals through the real server: every key reads them, operators define them, and a ping's extras follow the
//! vertical's schema — a lead whose schema-named extra is not of its type is 422 naming the field, and a ping
//! carrying an extra the schema does not name reaches no buyer.

#[path = "common/http_buyer_server.rs"]
mod http_buyer_server;
#[path = "common/service.rs"]
mod service_harness;

use http_buyer_server::{BuyerServer, Reply};
use serde_json::{Value, json};
use service_harness::{TestService, api_keys, exchange_head, http_buyer_tables};

const OPERATOR: &str = "op-key";
const PUBLISHER: &str = "pub-key";
const BUYER: &str = "buyer-key";

async fn start(buyer: &BuyerServer) -> TestService {
    let keys = api_keys(&[
        ("operator", None, OPERATOR),
        ("publisher", Some("pub-1"), PUBLISHER),
        ("buyer", Some("acme"), BUYER),
    ]);
    let publisher = r#"post_deadline_ms = 5000
redactor_config = '{"allow_extra": ["utility", "roof", "bill_usd", "note"]}'"#;
    let toml = exchange_head(&keys, publisher)
        + &http_buyer_tables("acme", "acme-http", &buyer.ping_url(), &buyer.post_url(), 2000);
    TestService::start(&toml).await
}

fn lead(n: u32, vertical: &str, extra: Value) -> Value {
    json!({
        "vertical": vertical,
        "consumer": {
            "first_name": "Odalys", "last_name": format!("Brightwater{n}"),
            "phone": format!("786555{n:04}"), "email": format!("odalys{n}@example.org"),
            "street": format!("{n} Mango Way"), "city": "Tampa", "state": "FL", "zip5": "33602",
            "date_of_birth": "1975-04-09"
        },
        "consent": { "tcpa_text": "I agree", "jornaya_leadid": format!("LEADID-{n:08}-ABCDEF") },
        "extra": extra
    })
}

#[tokio::test]
async fn operators_define_verticals_and_a_pings_extras_follow_the_schema() {
    let buyer = BuyerServer::scripted(
        Reply::json(json!({"decision": "bid", "price_cents": 1200})),
        Reply::json(json!({"result": "accepted", "price_cents": 1200})),
    )
    .await;
    let service = start(&buyer).await;

    // Every key reads the verticals; an exchange that defines none has the built-in set.
    let listed = service.get(PUBLISHER, "/v1/verticals").await;
    assert_eq!(listed.status, 200, "{}", listed.text);
    let names: Vec<&str> =
        listed.body.as_array().expect("a list").iter().map(|v| v["name"].as_str().unwrap()).collect();
    assert_eq!(names, ["health-insurance", "medicare", "auto-insurance", "mortgage", "solar"]);
    assert_eq!(service.get(BUYER, "/v1/verticals/solar").await.body["extras"]["homeowner"], json!({"type": "bool"}));

    let solar_lite = json!({
        "requires": ["consent.tcpa_text"],
        "extras": {
            "utility": { "type": "code", "pattern": "[A-Z]{2,5}", "max_len": 5 },
            "bill_usd": { "type": "int", "min": 0, "max": 2000 },
            "note": { "type": "free_text", "max_len": 80 }
        }
    });
    assert_eq!(service.put(PUBLISHER, "/v1/verticals/solar-lite", &solar_lite).await.status, 403);
    let mut bad = solar_lite.clone();
    bad["extras"]["utility"]["pattern"] = json!("[A-Z");
    let refused = service.put(OPERATOR, "/v1/verticals/solar-lite", &bad).await;
    assert_eq!((refused.status, refused.field()), (422, "extras.utility.pattern"), "{}", refused.text);
    let mut typo = solar_lite.clone();
    typo["extras"]["bill_usd"]["maximum"] = json!(5);
    let refused = service.put(OPERATOR, "/v1/verticals/solar-lite", &typo).await;
    assert_eq!(refused.status, 422, "{}", refused.text);
    assert!(refused.field().starts_with("extras"), "{}", refused.text);
    let created = service.put(OPERATOR, "/v1/verticals/solar-lite", &solar_lite).await;
    assert_eq!(created.status, 201, "{}", created.text);
    let listed = service.get(PUBLISHER, "/v1/verticals").await;
    assert_eq!(listed.body.as_array().expect("a list").len(), 6, "the built-in ones are kept: {}", listed.text);

    // A lead's extra that the schema names must be of its type.
    let answer = service.post(PUBLISHER, "/v1/leads", &lead(1, "solar-lite", json!({"utility": "fpl"}))).await;
    assert_eq!(
        (answer.status, &answer.body["field_errors"][0]["field"]),
        (422, &json!("extra.utility")),
        "{}",
        answer.text
    );
    let answer = service.post(PUBLISHER, "/v1/leads", &lead(2, "solar-lite", json!({"bill_usd": "7865550002"}))).await;
    assert_eq!(
        (answer.status, &answer.body["field_errors"][0]["field"]),
        (422, &json!("extra.bill_usd")),
        "{}",
        answer.text
    );

    // An extra the schema does not name never reaches a buyer, whatever it holds.
    let answer = service.post(PUBLISHER, "/v1/leads", &lead(3, "solar-lite", json!({"roof": "south"}))).await;
    assert_eq!((answer.status, &answer.body["outcome"]), (200, &json!("error")), "{}", answer.text);
    assert_eq!(answer.body["pii_leaks"], json!([{"field": "extra[key #1]", "kind": "off_schema"}]), "{}", answer.text);
    assert!(buyer.pings().is_empty(), "nobody was pinged");

    // Free text passes the value guard: the consumer's phone in any spelling is refused.
    let smuggled = lead(4, "solar-lite", json!({"note": "ring seven eight six 555 0004"}));
    let answer = service.post(PUBLISHER, "/v1/leads", &smuggled).await;
    assert_eq!(answer.body["outcome"], "error", "{}", answer.text);
    assert_eq!(answer.body["pii_leaks"][0]["field"], "extra.note", "{}", answer.text);
    assert!(buyer.pings().is_empty(), "nobody was pinged");

    let fine = lead(5, "solar-lite", json!({"utility": "FPL", "bill_usd": "180", "note": "south-facing roof"}));
    let answer = service.post(PUBLISHER, "/v1/leads", &fine).await;
    assert_eq!(answer.body["outcome"], "sold", "{}", answer.text);
    let pings = buyer.pings();
    assert_eq!(pings.len(), 1);
    assert_eq!(pings[0]["ping"]["extra"], json!({"bill_usd": "180", "note": "south-facing roof", "utility": "FPL"}));

    // Deleting a vertical refuses its leads from then on; the last one cannot be deleted.
    assert_eq!(service.delete(OPERATOR, "/v1/verticals/solar-lite").await.status, 204);
    let answer = service.post(PUBLISHER, "/v1/leads", &lead(6, "solar-lite", json!({}))).await;
    assert_eq!((answer.status, &answer.body["field_errors"][0]["field"]), (422, &json!("vertical")), "{}", answer.text);
    assert_eq!(service.delete(OPERATOR, "/v1/verticals/solar-lite").await.status, 404);
    for name in ["health-insurance", "medicare", "auto-insurance", "mortgage"] {
        assert_eq!(service.delete(OPERATOR, &format!("/v1/verticals/{name}")).await.status, 204);
    }
    let last = service.delete(OPERATOR, "/v1/verticals/solar").await;
    assert_eq!((last.status, last.code()), (409, "last_vertical"), "{}", last.text);
    service.shutdown().await;
}
