//! The OpenAPI 3.1 document served at `GET /openapi.json`, built from [`ROUTES`] — the catalogue of every route with
//! who may call it. The tests keep it in sync with the code: every catalogued route is answered by the router (and
//! refuses the wrong keys as the catalogue says), and the answer types serialise to exactly the properties their
//! schema lists.

use serde_json::{Value, json};

/// Who may call a route.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Access {
    /// No key needed.
    Public,
    /// Any valid key, of whatever role.
    AnyKey,
    Operator,
    Publisher,
    Buyer,
}

/// One route of the API.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Route {
    pub method: &'static str,
    pub path: &'static str,
    pub access: Access,
    pub summary: &'static str,
    /// The request body: a schema name, `wasm` for a plugin upload, or `None`.
    pub request: Option<&'static str>,
    /// The success status and its body's schema name (`None`: free-form JSON or text).
    pub response: (u16, Option<&'static str>),
}

const fn route(
    method: &'static str,
    path: &'static str,
    access: Access,
    summary: &'static str,
    request: Option<&'static str>,
    response: (u16, Option<&'static str>),
) -> Route {
    Route { method, path, access, summary, request, response }
}

use Access::{AnyKey, Buyer, Operator, Public, Publisher};

/// Every route of the API.
pub const ROUTES: &[Route] = &[
    route("get", "/healthz", Public, "Liveness: the process is up and its database answers", None, (200, None)),
    route("get", "/openapi.json", Public, "This document", None, (200, None)),
    route("get", "/metrics", Operator, "Prometheus metrics (text format)", None, (200, None)),
    // Publishers.
    route(
        "post",
        "/v1/leads",
        Publisher,
        "Sell a lead: ping every eligible buyer, post to the winner",
        Some("Lead"),
        (200, Some("LeadAnswer")),
    ),
    route(
        "post",
        "/v1/ping",
        Publisher,
        "Two-step, first half: collect bids without selling",
        Some("Lead"),
        (200, Some("PingAnswer")),
    ),
    route(
        "post",
        "/v1/post",
        Publisher,
        "Two-step, second half: sell a pinged lead at its bid",
        Some("PostRequest"),
        (200, Some("LeadAnswer")),
    ),
    route("get", "/v1/leads/{lead_id}", Publisher, "The result of one of your leads", None, (200, Some("LeadAnswer"))),
    route(
        "put",
        "/v1/publisher/redactor",
        Publisher,
        "Upload your redactor plugin and make it live",
        Some("wasm"),
        (201, Some("Uploaded")),
    ),
    // Buyers.
    route("get", "/v1/buyer/campaigns", Buyer, "Your campaigns", None, (200, None)),
    route("get", "/v1/buyer/leads", Buyer, "The leads you bought, with the consumer's data", None, (200, None)),
    route("get", "/v1/buyer/leads/{lead_id}", Buyer, "One lead you bought", None, (200, None)),
    route(
        "post",
        "/v1/buyer/leads/{lead_id}/return",
        Buyer,
        "Return a lead within the return window",
        Some("ReturnRequest"),
        (200, None),
    ),
    route(
        "put",
        "/v1/buyer/campaigns/{campaign_id}/plugin",
        Buyer,
        "Upload your campaign's bid plugin and make it live",
        Some("wasm"),
        (201, Some("Uploaded")),
    ),
    route(
        "post",
        "/v1/buyer/campaigns/{campaign_id}/plugin/rollback",
        Buyer,
        "Go back to your campaign's previous plugin version",
        None,
        (200, None),
    ),
    // Operators: the exchange.
    route("get", "/v1/publishers", Operator, "List publishers", None, (200, None)),
    route("get", "/v1/publishers/{id}", Operator, "One publisher", None, (200, None)),
    route("put", "/v1/publishers/{id}", Operator, "Create or replace a publisher", Some("Publisher"), (200, None)),
    route("post", "/v1/publishers/{id}/pause", Operator, "Pause a publisher", None, (200, None)),
    route("post", "/v1/publishers/{id}/resume", Operator, "Resume a publisher", None, (200, None)),
    route("get", "/v1/buyers", Operator, "List buyers", None, (200, None)),
    route("get", "/v1/buyers/{id}", Operator, "One buyer", None, (200, None)),
    route("put", "/v1/buyers/{id}", Operator, "Create or replace a buyer", Some("Buyer"), (200, None)),
    route("post", "/v1/buyers/{id}/pause", Operator, "Pause a buyer (all its campaigns)", None, (200, None)),
    route("post", "/v1/buyers/{id}/resume", Operator, "Resume a buyer", None, (200, None)),
    route("get", "/v1/campaigns", Operator, "List campaigns", None, (200, None)),
    route("get", "/v1/campaigns/{id}", Operator, "One campaign", None, (200, None)),
    route("put", "/v1/campaigns/{id}", Operator, "Create or replace a campaign", Some("Campaign"), (200, None)),
    route("post", "/v1/campaigns/{id}/pause", Operator, "Pause a campaign", None, (200, None)),
    route("post", "/v1/campaigns/{id}/resume", Operator, "Resume a campaign", None, (200, None)),
    // Operators: plugins.
    route("get", "/v1/plugins", Operator, "List plugins with their versions", None, (200, None)),
    route("get", "/v1/plugins/{name}", Operator, "One plugin with its versions", None, (200, None)),
    route(
        "post",
        "/v1/plugins/{name}/versions",
        Operator,
        "Upload a plugin version (validated and compiled first)",
        Some("wasm"),
        (201, Some("Uploaded")),
    ),
    route(
        "delete",
        "/v1/plugins/{name}/versions/{version}",
        Operator,
        "Delete a version that is not live",
        None,
        (204, None),
    ),
    route(
        "post",
        "/v1/plugins/{name}/activate",
        Operator,
        "Make a version live (hot swap)",
        Some("ActivateRequest"),
        (200, None),
    ),
    route("post", "/v1/plugins/{name}/rollback", Operator, "Go back to the previously live version", None, (200, None)),
    route("post", "/v1/plugins/{name}/disable", Operator, "Stop running a plugin", None, (200, None)),
    route("post", "/v1/plugins/{name}/enable", Operator, "Run a disabled plugin again", None, (200, None)),
    // Operators: keys and reads.
    route("get", "/v1/keys", Operator, "List API keys (hashes only)", None, (200, None)),
    route("post", "/v1/keys", Operator, "Make an API key (shown once)", Some("KeyRequest"), (201, None)),
    route("delete", "/v1/keys/{id}", Operator, "Revoke an API key", None, (200, None)),
    route(
        "get",
        "/v1/leads/{lead_id}/trace",
        Operator,
        "A lead's auction: every buyer's answer, the sales, who received its PII",
        None,
        (200, None),
    ),
    route("get", "/v1/deliveries", Operator, "Webhook deliveries of sold leads (outbox)", None, (200, None)),
    // Every key: verticals.
    route(
        "get",
        "/v1/verticals",
        AnyKey,
        "The verticals, each with what a lead needs and its extras schema",
        None,
        (200, None),
    ),
    route("get", "/v1/verticals/{name}", AnyKey, "One vertical", None, (200, Some("Vertical"))),
    route(
        "put",
        "/v1/verticals/{name}",
        Operator,
        "Create or replace a vertical",
        Some("Vertical"),
        (200, Some("Vertical")),
    ),
    route(
        "delete",
        "/v1/verticals/{name}",
        Operator,
        "Delete a vertical (its leads are refused from then on)",
        None,
        (204, None),
    ),
];

/// The schemas the routes name, as JSON Schema (OpenAPI 3.1 dialect).
pub fn schemas() -> Value {
    let string = json!({ "type": "string" });
    let cents = json!({ "type": "integer", "minimum": 0, "description": "US cents" });
    let field_errors = json!({ "type": "array", "items": { "type": "object", "properties": {
        "field": { "type": "string" }, "reason": { "type": "string" } }, "required": ["field", "reason"] } });
    let pii_leaks = json!({ "type": "array", "description": "Ping fields the publisher's redactor left PII in (names, never values)",
        "items": { "type": "object", "properties": { "field": { "type": "string" }, "kind": { "type": "string" } } } });
    json!({
        "Error": {
            "type": "object", "required": ["error"],
            "properties": { "error": { "type": "object", "required": ["code", "message"], "properties": {
                "code": { "type": "string", "description": "Stable snake_case code" },
                "message": { "type": "string" },
                "field": { "type": "string", "description": "JSON path of the offending field" } } } }
        },
        "Vertical": {
            "type": "object", "required": ["name"],
            "description": "A product the exchange trades: what its leads need beyond the common fields, and every key \
                its pings' extras may hold, with the key's type. A ping with an extra outside the schema reaches no buyer.",
            "properties": {
                "name": { "type": "string", "pattern": "^[a-z0-9-]{1,64}$", "examples": ["solar"] },
                "requires": { "type": "array", "items": { "type": "string" },
                    "examples": [["consumer.street", "consent.tcpa_text", "consent.evidence", "extra.homeowner"]] },
                "min_age": { "type": "integer", "minimum": 18, "maximum": 120, "default": 18 },
                "extras": { "type": "object", "additionalProperties": { "oneOf": [
                    { "type": "object", "required": ["type", "values"], "properties": {
                        "type": { "const": "enum" }, "values": { "type": "array", "items": string } } },
                    { "type": "object", "required": ["type", "min", "max"], "properties": {
                        "type": { "const": "int" }, "min": { "type": "integer" }, "max": { "type": "integer" } } },
                    { "type": "object", "required": ["type"], "properties": { "type": { "const": "bool" } } },
                    { "type": "object", "required": ["type", "pattern"], "properties": {
                        "type": { "const": "code" }, "pattern": { "type": "string", "description": "Regular expression, matched whole" },
                        "max_len": { "type": "integer", "minimum": 1, "maximum": 64, "default": 16 } } },
                    { "type": "object", "required": ["type", "max_len"], "properties": {
                        "type": { "const": "free_text" }, "max_len": { "type": "integer", "minimum": 1, "maximum": 256 } } }
                ] } }
            }
        },
        "Lead": {
            "type": "object", "required": ["vertical", "consumer"],
            "description": "A full lead, PII included. `publisher_id` may be left out: it is the key's publisher.",
            "properties": {
                "vertical": { "type": "string", "examples": ["health-insurance"] },
                "publisher_id": string, "source_id": string,
                "consumer": { "type": "object",
                    "required": ["first_name", "last_name", "phone", "email", "state", "zip5", "date_of_birth"],
                    "properties": {
                        "first_name": string, "last_name": string,
                        "phone": { "type": "string", "description": "Ten digits or E.164" },
                        "email": string, "street": string, "city": string,
                        "state": { "type": "string", "description": "USPS code" },
                        "zip5": string, "date_of_birth": { "type": "string", "format": "date" },
                        "gender": { "type": "string", "enum": ["female", "male", "other"] } } },
                "consent": { "type": "object", "properties": {
                    "trusted_form_url": string, "jornaya_leadid": string, "tcpa_text": string, "ip": string, "user_agent": string } },
                "extra": { "type": "object", "additionalProperties": { "type": "string" } }
            }
        },
        "LeadAnswer": {
            "type": "object", "required": ["lead_id", "outcome", "payout_cents", "buyers"],
            "properties": {
                "lead_id": string,
                "outcome": { "type": "string", "enum": ["sold", "unsold", "duplicate", "rejected", "error"] },
                "reason": string,
                "payout_cents": cents,
                "buyers": { "type": "integer", "minimum": 0, "description": "How many buyers bought it" },
                "field_errors": field_errors,
                "pii_leaks": pii_leaks
            }
        },
        "PingAnswer": {
            "type": "object", "required": ["ping_id", "outcome"],
            "properties": {
                "ping_id": string,
                "outcome": { "type": "string", "enum": ["bid", "no_bid", "duplicate", "rejected", "error"] },
                "payout_cents": cents,
                "expires_at_unix_ms": { "type": "integer" },
                "reason": string,
                "field_errors": field_errors,
                "pii_leaks": pii_leaks
            }
        },
        "PostRequest": { "type": "object", "required": ["ping_id"], "properties": { "ping_id": string } },
        "ReturnRequest": { "type": "object", "required": ["reason"], "properties": { "reason": string } },
        "ActivateRequest": { "type": "object", "required": ["version"], "properties": { "version": { "type": "integer", "minimum": 1 } } },
        "KeyRequest": { "type": "object", "required": ["role"], "properties": {
            "role": { "type": "string", "enum": ["operator", "publisher", "buyer"] }, "owner_id": string } },
        "Uploaded": {
            "type": "object",
            "required": ["name", "version", "world", "sha256", "size_bytes", "contract_version", "from_cache"],
            "properties": {
                "name": string, "version": { "type": "integer" },
                "world": { "type": "string", "enum": ["buyer", "redactor"] },
                "sha256": string, "size_bytes": { "type": "integer" }, "contract_version": string,
                "from_cache": { "type": "boolean" }
            }
        },
        "Publisher": { "type": "object", "description": "The exchange file's publisher (docs/ARCHITECTURE.md, examples/florida/exchange.toml)" },
        "Buyer": { "type": "object", "description": "The exchange file's buyer" },
        "Campaign": { "type": "object", "description": "The exchange file's campaign: caps, schedule, tier, exclusivity, target (wasm plugin or HTTP endpoints)" }
    })
}

/// The whole document.
pub fn document() -> Value {
    let mut paths = serde_json::Map::new();
    for route in ROUTES {
        let mut operation = json!({
            "summary": route.summary,
            "operationId": operation_id(route),
            "responses": responses(route),
        });
        if route.access != Access::Public {
            operation["security"] = json!([{ "apiKey": [] }]);
            let tag = if route.access == AnyKey { "verticals".to_owned() } else { format!("{:?}", route.access) };
            operation["tags"] = json!([tag.to_lowercase()]);
        }
        let parameters: Vec<Value> = route
            .path
            .split('/')
            .filter_map(|part| part.strip_prefix('{')?.strip_suffix('}'))
            .map(|name| json!({ "name": name, "in": "path", "required": true, "schema": { "type": "string" } }))
            .collect();
        if !parameters.is_empty() {
            operation["parameters"] = Value::Array(parameters);
        }
        match route.request {
            Some("wasm") => {
                operation["requestBody"] = json!({ "required": true, "content": { "application/wasm": {
                    "schema": { "type": "string", "format": "binary" } } } });
            }
            Some(schema) => {
                operation["requestBody"] = json!({ "required": true, "content": { "application/json": {
                    "schema": { "$ref": format!("#/components/schemas/{schema}") } } } });
            }
            None => {}
        }
        let item = paths.entry(route.path.to_owned()).or_insert_with(|| json!({}));
        item[route.method] = operation;
    }
    json!({
        "openapi": "3.1.0",
        "info": {
            "title": "pingpost",
            "version": env!("CARGO_PKG_VERSION"),
            "description": "A real-time ping/post lead exchange. Money is integer cents, times unix milliseconds. \
                Every error is `{\"error\": {\"code\", \"message\", \"field\"?}}`."
        },
        "paths": paths,
        "components": {
            "schemas": schemas(),
            "securitySchemes": { "apiKey": { "type": "http", "scheme": "bearer",
                "description": "An API key: `Authorization: Bearer <key>`" } }
        }
    })
}

fn operation_id(route: &Route) -> String {
    let words: Vec<&str> = route.path.split('/').filter(|p| !p.is_empty() && *p != "v1").collect();
    let words: Vec<String> =
        words.iter().map(|w| w.trim_matches(|c| c == '{' || c == '}').replace(['-', '.'], "_")).collect();
    format!("{}_{}", route.method, words.join("_"))
}

fn responses(route: &Route) -> Value {
    let error = json!({ "description": "Error", "content": { "application/json": {
        "schema": { "$ref": "#/components/schemas/Error" } } } });
    let (status, schema) = route.response;
    let ok = match schema {
        Some(schema) => json!({ "description": "OK", "content": { "application/json": {
            "schema": { "$ref": format!("#/components/schemas/{schema}") } } } }),
        None => json!({ "description": "OK" }),
    };
    let mut responses = json!({ status.to_string(): ok, "4XX": error });
    if route.access != Access::Public {
        responses["401"] = json!({ "description": "No key, or an unknown or revoked key", "content": { "application/json": {
            "schema": { "$ref": "#/components/schemas/Error" } } } });
    }
    responses
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeSet;

    use super::*;

    #[test]
    fn every_route_is_listed_once_and_every_named_schema_exists() {
        let schemas = schemas();
        let mut seen = BTreeSet::new();
        for route in ROUTES {
            assert!(seen.insert((route.method, route.path)), "{} {} listed twice", route.method, route.path);
            for name in route.request.iter().chain(route.response.1.iter()) {
                assert!(
                    *name == "wasm" || schemas.get(*name).is_some(),
                    "{} {} names missing schema {name}",
                    route.method,
                    route.path
                );
            }
        }
        let document = document();
        assert_eq!(
            document["paths"]["/v1/leads"]["post"]["requestBody"]["content"]["application/json"]["schema"]["$ref"],
            "#/components/schemas/Lead"
        );
        assert_eq!(document["paths"]["/v1/leads/{lead_id}"]["get"]["parameters"][0]["name"], "lead_id");
        assert!(document["paths"]["/healthz"]["get"].get("security").is_none());
    }

    #[test]
    fn every_route_is_in_the_api_guide() {
        let guide = include_str!(concat!(env!("CARGO_MANIFEST_DIR"), "/../../docs/API.md"));
        for route in ROUTES {
            let line = format!("{} {}", route.method.to_uppercase(), route.path);
            assert!(guide.contains(&line), "docs/API.md does not mention `{line}`");
        }
    }

    /// The properties `value` serialises to are the schema's, and every required one is there.
    fn matches_schema(name: &str, value: impl serde::Serialize) {
        let schemas = schemas();
        let schema = &schemas[name];
        let value = serde_json::to_value(value).expect("serialises");
        let keys: BTreeSet<&str> = value.as_object().expect("an object").keys().map(String::as_str).collect();
        let listed: BTreeSet<&str> =
            schema["properties"].as_object().expect("properties").keys().map(String::as_str).collect();
        assert_eq!(keys, listed, "{name}: the type and its schema disagree");
        for required in schema["required"].as_array().expect("required") {
            assert!(keys.contains(required.as_str().expect("a name")), "{name}: {required} is required");
        }
    }

    #[test]
    fn answer_types_serialise_to_their_schemas() {
        use crate::api::publisher::{LeadAnswer, PingAnswer};
        use pingpost_engine::{FieldError, OutcomeStatus, PiiKind, PiiLeak, PingStatus};
        let field_errors = vec![FieldError { field: "consumer.zip5".into(), reason: "five digits".into() }];
        let pii_leaks = vec![PiiLeak { field: "extra.note".into(), kind: PiiKind::Phone }];
        matches_schema(
            "LeadAnswer",
            LeadAnswer {
                lead_id: "p_1".into(),
                outcome: OutcomeStatus::Sold,
                reason: Some("r".into()),
                payout_cents: 1,
                buyers: 1,
                field_errors: field_errors.clone(),
                pii_leaks: pii_leaks.clone(),
            },
        );
        matches_schema(
            "PingAnswer",
            PingAnswer {
                ping_id: "p_1".into(),
                outcome: PingStatus::Bid,
                payout_cents: Some(1),
                expires_at_unix_ms: Some(2),
                reason: Some("r".into()),
                field_errors,
                pii_leaks,
            },
        );
        for vertical in pingpost_engine::Vertical::builtin() {
            matches_schema("Vertical", vertical);
        }
        matches_schema(
            "Uploaded",
            crate::state::Uploaded {
                name: "n".into(),
                version: 1,
                world: pingpost_runtime::World::Buyer,
                sha256: "ab".into(),
                size_bytes: 1,
                contract_version: "0.1.0".into(),
                from_cache: false,
                new_version: true,
            },
        );
        let error: serde_json::Value =
            serde_json::from_str(&crate::error::ApiError::invalid("consumer.zip5", "five digits").body())
                .expect("json");
        matches_schema("Error", error);
    }
}
