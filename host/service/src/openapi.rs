//! The OpenAPI 3.1 document served at `GET /openapi.json`, generated from the code: every handler carries a
//! `#[utoipa::path]` (method, path, the key it takes, its parameters, body and answers) and every type it reads or
//! answers derives `utoipa::ToSchema` from its serde shape. The router ([`crate::api`]) is built from the same
//! annotated handlers (`utoipa_axum`), so a route is in the document exactly when it is served. This module holds
//! what the handlers share: the document's frame ([`base`]: title, key schemes, tags) and [`finish`], which gives
//! every operation the answers all routes have in common; [`routes`] reads back each route's [`Access`].

use serde_json::{Value, json};
use utoipa::openapi::security::{Http, HttpAuthScheme, SecurityScheme};
use utoipa::{Modify, OpenApi, ToSchema};

use crate::error::ErrorBody;

#[derive(OpenApi)]
#[openapi(
    info(
        title = "pingpost",
        description = "A real-time ping/post lead exchange. Money is integer cents, times unix milliseconds. Every \
            error is `{\"error\": {\"code\", \"message\", \"field\"?}}`; `field` names the offending JSON path, header \
            or query parameter. The guide is docs/API.md."
    ),
    components(schemas(ErrorBody)),
    modifiers(&KeySchemes),
    tags(
        (name = "publisher", description = "Publishers sell leads: a publisher key, for its own publisher only"),
        (name = "buyer", description = "Buyers read what they bought and upload their campaigns' plugins: a buyer key"),
        (name = "operator", description = "Operators run the exchange: an operator key"),
        (name = "books", description = "The ledger, buyers' funds and publishers' payouts: an operator key"),
        (name = "verticals", description = "The products traded, readable with every key"),
        (name = "health", description = "No key"),
    )
)]
struct Base;

/// The three key schemes: the same bearer header, told apart by the key's role.
struct KeySchemes;

impl Modify for KeySchemes {
    fn modify(&self, openapi: &mut utoipa::openapi::OpenApi) {
        let components = openapi.components.get_or_insert_with(Default::default);
        for (role, holder) in [("operator", "an operator"), ("publisher", "a publisher"), ("buyer", "a buyer")] {
            let mut scheme = Http::new(HttpAuthScheme::Bearer);
            scheme.description = Some(format!("An API key of {holder}: `Authorization: Bearer <key>`"));
            components.add_security_scheme(role, SecurityScheme::Http(scheme));
        }
    }
}

/// The document's frame, before the handlers' paths are added.
pub fn base() -> utoipa::openapi::OpenApi {
    let mut base = Base::openapi();
    base.info.version = env!("CARGO_PKG_VERSION").to_owned();
    base
}

/// The body of a plugin upload: the bytes of a `.wasm` component.
#[derive(ToSchema)]
#[schema(value_type = String, format = Binary)]
pub struct WasmComponent(pub Vec<u8>);

/// The finished document: every operation named from its method and path (`get_leads_lead_id`), and given the
/// error answers every route shares — `401` (no key, or an unknown or revoked one) and `403` (another role's key)
/// where a key is needed; `400` (not JSON) where a JSON body is read, `408` and `413` where any body is, `409` and
/// `429` on uploads; and `503` on every route (it ran past `server.request_timeout_ms`); and each object made
/// of inline parts (a tagged variant holding a struct) written as the one object serde reads.
pub fn finish(document: utoipa::openapi::OpenApi) -> Value {
    let mut document = serde_json::to_value(document).expect("an OpenAPI document serialises to JSON");
    merge_parts(&mut document);
    unsigned_ranges(&mut document);
    let error = |description: &str| {
        json!({ "description": description, "content": { "application/json": {
            "schema": { "$ref": "#/components/schemas/Error" } } } })
    };
    let Some(paths) = document.get_mut("paths").and_then(Value::as_object_mut) else { return document };
    for (path, item) in paths.iter_mut() {
        let Some(item) = item.as_object_mut() else { continue };
        for (method, operation) in item.iter_mut() {
            operation["operationId"] = operation_id(method, path).into();
            let keyed = operation.get("security").is_some_and(|s| s.as_array().is_some_and(|s| !s.is_empty()));
            let body = operation.pointer("/requestBody/content").and_then(Value::as_object);
            let json_body = body.is_some_and(|content| {
                content.keys().any(|media| media == "application/json" || media.ends_with("+json"))
            });
            let has_body = body.is_some();
            let upload = body.is_some_and(|content| content.contains_key("application/wasm"));
            let Some(responses) = operation.get_mut("responses").and_then(Value::as_object_mut) else { continue };
            if json_body {
                responses.entry("400").or_insert_with(|| error("`malformed_json`: the body is not JSON"));
            }
            if upload {
                responses.entry("409").or_insert_with(|| error("`plugin_quota_exceeded` or `plugin_conflict`"));
                responses.entry("429").or_insert_with(|| error("`rate_limited`: over the uploader's upload rate"));
            }
            if has_body {
                responses.entry("408").or_insert_with(|| error("`body_timeout`: the body did not arrive in time"));
                responses.entry("413").or_insert_with(|| error("`body_too_large`: over the route's size limit"));
            }
            if keyed {
                responses.entry("401").or_insert_with(|| error("No key, or an unknown or revoked one"));
                responses.entry("403").or_insert_with(|| error("A key of another role (or of another owner)"));
            }
            responses.entry("503").or_insert_with(|| error("The request ran past `server.request_timeout_ms`"));
        }
    }
    document
}

/// Gives every unsigned integer its own range. utoipa writes a `u32` as `int32` from 0 and a `u64` as `int64` from 0,
/// whose formats end at 2^31 − 1 and 2^63 − 1, while serde reads up to 2^32 − 1 and 2^64 − 1: a client (or a
/// contract test) would take a value the API accepts for one outside the schema. An integer (or nullable integer)
/// from 0 with no maximum of its own is given the maximum of its unsigned type.
fn unsigned_ranges(value: &mut Value) {
    match value {
        Value::Object(map) => {
            let integer = match map.get("type") {
                Some(Value::String(kind)) => kind == "integer",
                Some(Value::Array(kinds)) => kinds.iter().any(|kind| kind == "integer"),
                _ => false,
            };
            let unsigned =
                integer && map.get("minimum").and_then(Value::as_u64) == Some(0) && !map.contains_key("maximum");
            if unsigned {
                match map.get("format").and_then(Value::as_str) {
                    Some("int32") => {
                        map.insert("format".into(), "int64".into());
                        map.insert("maximum".into(), u32::MAX.into());
                    }
                    Some("int64") => {
                        map.remove("format");
                        map.insert("maximum".into(), u64::MAX.into());
                    }
                    _ => {}
                }
            }
            map.values_mut().for_each(unsigned_ranges);
        }
        Value::Array(items) => items.iter_mut().for_each(unsigned_ranges),
        _ => {}
    }
}

/// Rewrites every `allOf` whose parts are all inline objects as one object with their properties and required names.
///
/// utoipa writes an internally tagged variant holding a struct (`CampaignTarget::Http(HttpEndpoints)`) as the struct
/// `allOf` an object with the tag; with `deny_unknown_fields` the struct's part forbids every other property — the
/// tag too — so nothing would match. serde reads one object with all the fields, and denies only the others: so
/// does the merged schema.
fn merge_parts(value: &mut Value) {
    match value {
        Value::Object(map) => {
            map.values_mut().for_each(merge_parts);
            let Some(Value::Array(parts)) = map.get("allOf") else { return };
            let objects: Option<Vec<&serde_json::Map<String, Value>>> = parts.iter().map(inline_object).collect();
            let Some(objects) = objects else { return };
            let (mut properties, mut required, mut closed) = (serde_json::Map::new(), Vec::new(), false);
            for object in objects {
                if let Some(Value::Object(more)) = object.get("properties") {
                    properties.extend(more.clone());
                }
                if let Some(Value::Array(names)) = object.get("required") {
                    required.extend(names.iter().cloned());
                }
                closed |= object.get("additionalProperties") == Some(&Value::Bool(false));
            }
            map.remove("allOf");
            map.insert("type".into(), "object".into());
            map.insert("properties".into(), Value::Object(properties));
            map.insert("required".into(), Value::Array(required));
            if closed {
                map.insert("additionalProperties".into(), false.into());
            }
        }
        Value::Array(items) => items.iter_mut().for_each(merge_parts),
        _ => {}
    }
}

/// The object schema `part` is when it is written inline (directly, or as the one choice of a `oneOf`).
fn inline_object(part: &Value) -> Option<&serde_json::Map<String, Value>> {
    let object = part.as_object()?;
    if let Some(Value::Array(choices)) = object.get("oneOf") {
        return match choices.as_slice() {
            [only] => inline_object(only),
            _ => None,
        };
    }
    (object.get("type") == Some(&Value::String("object".into())) && !object.contains_key("$ref")).then_some(object)
}

fn operation_id(method: &str, path: &str) -> String {
    let words: Vec<String> = path
        .split('/')
        .filter(|p| !p.is_empty() && *p != "v1")
        .map(|w| w.trim_matches(|c| c == '{' || c == '}').replace(['-', '.'], "_"))
        .collect();
    format!("{method}_{}", words.join("_"))
}

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

/// One route of the API, as the document names it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Route {
    /// Lower case, as in the document: `get`, `post`, ...
    pub method: String,
    /// With `{parameters}`, as in the document.
    pub path: String,
    pub access: Access,
}

/// Every route of `document` with who may call it, read off each operation's security requirements.
///
/// # Panics
///
/// On an operation whose security names neither one role nor all three: the handlers' annotations are wrong.
pub fn routes(document: &Value) -> Vec<Route> {
    let mut routes = Vec::new();
    let paths = document.get("paths").and_then(Value::as_object).into_iter().flatten();
    for (path, item) in paths {
        for (method, operation) in item.as_object().into_iter().flatten() {
            let schemes: Vec<&str> = operation
                .get("security")
                .and_then(Value::as_array)
                .into_iter()
                .flatten()
                .filter_map(|requirement| requirement.as_object()?.keys().next().map(String::as_str))
                .collect();
            let access = match schemes.as_slice() {
                [] => Access::Public,
                ["operator"] => Access::Operator,
                ["publisher"] => Access::Publisher,
                ["buyer"] => Access::Buyer,
                ["operator", "publisher", "buyer"] => Access::AnyKey,
                other => panic!("{method} {path}: security {other:?} is not one role or every role"),
            };
            routes.push(Route { method: method.clone(), path: path.clone(), access });
        }
    }
    routes
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeSet;

    use super::*;

    /// Every `$ref` under `value`.
    fn refs<'a>(value: &'a Value, found: &mut Vec<&'a str>) {
        match value {
            Value::Object(map) => {
                if let Some(Value::String(target)) = map.get("$ref") {
                    found.push(target);
                }
                map.values().for_each(|v| refs(v, found));
            }
            Value::Array(items) => items.iter().for_each(|v| refs(v, found)),
            _ => {}
        }
    }

    #[test]
    fn every_operation_is_named_once_answers_and_names_only_schemas_that_exist() {
        let document = crate::api::document();
        assert_eq!(document["openapi"], "3.1.0");
        let routes = routes(document);
        assert!(routes.len() >= 45, "{} routes", routes.len());
        let mut ids = BTreeSet::new();
        for route in &routes {
            let operation = &document["paths"][&route.path][&route.method];
            let id = operation["operationId"].as_str().expect("an operationId");
            assert!(ids.insert(id.to_owned()), "{id} twice");
            assert!(operation["summary"].as_str().is_some_and(|s| !s.is_empty()), "{id}: a summary");
            let statuses: Vec<&String> = operation["responses"].as_object().expect("responses").keys().collect();
            assert!(statuses.iter().any(|s| s.starts_with('2')), "{id}: a success answer in {statuses:?}");
            if route.access != Access::Public {
                assert!(statuses.contains(&&"401".to_owned()) && statuses.contains(&&"403".to_owned()), "{id}");
            }
            for name in route.path.split('/').filter_map(|p| p.strip_prefix('{')?.strip_suffix('}')) {
                let declared = operation["parameters"].as_array().into_iter().flatten();
                assert!(declared.into_iter().any(|p| p["name"] == name && p["in"] == "path"), "{id}: {name}");
            }
        }
        let mut found = Vec::new();
        refs(document, &mut found);
        assert!(!found.is_empty());
        for target in found {
            let name = target.strip_prefix("#/components/schemas/").expect("a schema reference");
            assert!(document["components"]["schemas"].get(name).is_some(), "{target} is not defined");
        }
        for scheme in ["operator", "publisher", "buyer"] {
            assert_eq!(document["components"]["securitySchemes"][scheme]["scheme"], "bearer");
        }
    }

    #[test]
    fn the_catalogue_reads_who_may_call_each_route() {
        let routes = routes(crate::api::document());
        let access =
            |method: &str, path: &str| routes.iter().find(|r| r.method == method && r.path == path).map(|r| r.access);
        assert_eq!(access("get", "/healthz"), Some(Access::Public));
        assert_eq!(access("post", "/v1/leads"), Some(Access::Publisher));
        assert_eq!(access("get", "/v1/buyer/leads"), Some(Access::Buyer));
        assert_eq!(access("put", "/v1/campaigns/{id}"), Some(Access::Operator));
        assert_eq!(access("get", "/v1/verticals"), Some(Access::AnyKey));
        assert_eq!(access("put", "/v1/verticals/{name}"), Some(Access::Operator));
        assert_eq!(access("get", "/v1/nothing"), None);
    }

    #[test]
    fn every_route_is_in_the_api_guide() {
        let guide = include_str!(concat!(env!("CARGO_MANIFEST_DIR"), "/../../docs/API.md"));
        for route in routes(crate::api::document()) {
            let line = format!("{} {}", route.method.to_uppercase(), route.path);
            assert!(guide.contains(&line), "docs/API.md does not mention `{line}`");
        }
    }

    #[test]
    fn the_documented_types_keep_their_serde_shape() {
        let document = crate::api::document();
        let schema = |name: &str| document["components"]["schemas"][name].clone();
        // Field names and what is required follow serde: skipped fields are absent, defaults are optional.
        let uploaded = schema("Uploaded");
        assert!(uploaded["properties"].get("new_version").is_none(), "{uploaded}");
        let lead = schema("Lead");
        let required: Vec<&str> =
            lead["required"].as_array().expect("required").iter().filter_map(Value::as_str).collect();
        assert!(required.contains(&"consumer") && !required.contains(&"extra"), "{lead}");
        assert_eq!(lead["additionalProperties"], false, "deny_unknown_fields: {lead}");
        let gender = schema("Gender");
        assert_eq!(gender["enum"], json!(["female", "male", "non_binary"]), "{gender}");
        let http = &schema("CampaignTarget")["oneOf"][1];
        assert_eq!(http["additionalProperties"], false, "{http}");
        for field in ["kind", "ping_url", "post_url", "timeout_ms"] {
            assert!(
                http["properties"].get(field).is_some()
                    && http["required"].as_array().is_some_and(|r| r.contains(&field.into())),
                "{field}: {http}"
            );
        }
        let buyer = schema("Buyer");
        assert_eq!(buyer["properties"]["time_zone"]["type"], "string", "{buyer}");
        // Unsigned integers reach as far as serde reads them.
        let campaign = schema("Campaign");
        assert_eq!(campaign["properties"]["tier"]["maximum"], json!(u32::MAX), "{campaign}");
        let caps = schema("Caps");
        let spend = serde_json::to_string(&caps["properties"]["spend_per_day_cents"]).expect("JSON");
        assert!(spend.contains(&u64::MAX.to_string()), "{caps}");
    }
}
