//! The whole authorisation matrix, against the real server: every route of the OpenAPI document (read with the role
//! its security names) × no key, an unknown key, a revoked key, and a key of each role. Public routes answer
//! everyone; every other route answers 401 without a valid key, 403 to a valid key of another role, and lets its own
//! role through. Ownership (a publisher or buyer reaching another's lead, ping or campaign) is covered route by route
//! in service_publisher.rs, service_buyer.rs and service_operator.rs; here a second publisher and buyer also check that
//! their key passes the role gate but finds nothing of the first's.

#[path = "common/service.rs"]
mod service_harness;

use pingpost::service::api::document;
use pingpost::service::openapi::{Access, routes};
use serde_json::json;
use service_harness::{TestService, api_keys, standard_plugins};

const OPERATOR: &str = "op-key";
const PUBLISHER: &str = "pub-key";
const BUYER: &str = "buyer-key";
const REVOKED: &str = "revoked-key";

fn exchange_toml() -> String {
    format!(
        r#"
{keys}

[[api_keys]]
id = "to-revoke"
role = "buyer"
owner = "acme"
key = "{REVOKED}"

{plugins}
[[publishers]]
id = "pub-1"
ping_deadline_ms = 5000
post_deadline_ms = 10000

[[buyers]]
id = "acme"
time_zone = "America/New_York"

[[campaigns]]
id = "acme-health"
buyer_id = "acme"
target = {{ kind = "wasm", plugin = "config-buyer", config = {{ base_price_cents = 2000 }}, delivery = {{ kind = "pickup" }} }}
"#,
        keys = api_keys(&[
            ("operator", None, OPERATOR),
            ("publisher", Some("pub-1"), PUBLISHER),
            ("buyer", Some("acme"), BUYER)
        ]),
        plugins = standard_plugins(),
    )
}

/// The route's path with every parameter replaced by an id that does not exist, so no request of the matrix changes
/// anything that another one depends on.
fn concrete(path: &str) -> String {
    path.split('/')
        .map(|part| if part.starts_with('{') { "does-not-exist" } else { part })
        .collect::<Vec<_>>()
        .join("/")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_route_refuses_every_key_but_its_own_role() {
    let t = TestService::start(&exchange_toml()).await;
    let revoke = t.delete(OPERATOR, "/v1/keys/to-revoke").await;
    assert!(revoke.status < 300, "the operator revokes a key: {}", revoke.text);

    let routes = routes(document());
    let mut checked = 0;
    for route in &routes {
        let path = concrete(&route.path);
        for (who, key, role) in [
            ("no key", "", None),
            ("an unknown key", "pp_unknown", None),
            ("a revoked key", REVOKED, None),
            ("the operator", OPERATOR, Some(Access::Operator)),
            ("a publisher", PUBLISHER, Some(Access::Publisher)),
            ("a buyer", BUYER, Some(Access::Buyer)),
        ] {
            let method = reqwest::Method::from_bytes(route.method.to_uppercase().as_bytes()).expect("a method");
            let request = t.client.request(method, t.url(&path)).json(&json!({}));
            let answer = t.send(key, request).await;
            let context = format!("{} {path} by {who}: {} {}", route.method, answer.status, answer.text);
            assert!(answer.status < 500, "never a 5xx: {context}");
            assert_ne!(answer.status, 405, "the route exists: {context}");
            assert!(answer.content_type.starts_with("application/json") || answer.status < 300, "{context}");
            match (route.access, role) {
                (Access::Public, _) => assert_eq!(answer.status, 200, "{context}"),
                (_, None) => {
                    assert_eq!(answer.status, 401, "{context}");
                    let code = if key.is_empty() { "missing_api_key" } else { "invalid_api_key" };
                    assert_eq!(answer.code(), code, "{context}");
                }
                (Access::AnyKey, Some(_)) => {
                    assert!(![401, 403].contains(&answer.status), "every key passes: {context}");
                }
                (access, Some(role)) if access == role => {
                    assert!(![401, 403].contains(&answer.status), "its own role passes: {context}");
                }
                (_, Some(_)) => assert_eq!(answer.status, 403, "another role is forbidden: {context}"),
            }
            checked += 1;
        }
    }
    assert_eq!(checked, routes.len() * 6);
    t.shutdown().await;
}
