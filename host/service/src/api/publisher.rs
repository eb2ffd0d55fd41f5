//! Publisher routes: send a lead one-shot (`POST /v1/leads`) or in two steps (`POST /v1/ping`, `POST /v1/post`: the
//! ping carries the full lead, or none of its PII and the post brings the lead), read
//! a lead's result (`GET /v1/leads/{lead_id}`), upload the redactor (`PUT /v1/publisher/redactor`).
//!
//! A publisher key sends leads for its own publisher only: the lead's `publisher_id` may be left out (it is filled
//! in) but may not name another publisher. Answers are in the publisher's terms: `payout_cents` is what the publisher
//! is paid; buyers and their bids are not shown (operators read them in the trace).

use std::time::Instant;

use axum::Json;
use axum::extract::rejection::QueryRejection;
use axum::extract::{Path, Query, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::Response;
use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use super::answers::publisher_view;
pub use super::answers::{LeadAnswer, LeadRefusal, LeadView, PingAnswer, PingRefusal};
use super::idempotency::idempotent;
use super::{RawBody, Shared, blocking, from_value, to_json};
use crate::auth::{PublisherKey, Role};
use crate::error::{ApiError, ErrorBody};
use crate::metrics::Endpoint;
use crate::openapi::WasmComponent;
use crate::state::{Uploaded, check_rate};
use pingpost_engine::validate::consumer_keys;
use pingpost_engine::{ConsumerKeys, LeadOptions, LeadPing, OutcomeStatus, PingStatus, PostError};
use pingpost_model::Lead;
use pingpost_runtime::World;
use pingpost_sqlite::AuctionRecord;
use pingpost_sqlite::registry::IdempotentLead;

/// The JSON routes.
pub fn routes() -> OpenApiRouter<Shared> {
    OpenApiRouter::new()
        .routes(routes!(send_lead))
        .routes(routes!(send_ping))
        .routes(routes!(send_post))
        .routes(routes!(read_lead))
}

/// The upload route (its own body limit).
pub fn upload_routes() -> OpenApiRouter<Shared> {
    OpenApiRouter::new().routes(routes!(upload_redactor))
}

/// The `Idempotency-Key` header of the publisher's sends.
const IDEMPOTENCY: &str = "A key of the publisher's choosing, 1–255 visible ASCII characters. The same key with the \
    same body gets the first answer again (marked `Idempotent-Replay: true`) and the lead is auctioned once; with \
    another body it is `409 idempotency_key_reused`, and while the first request runs `409 idempotency_in_progress`.";

/// Query of `POST /v1/leads` and `POST /v1/ping`.
#[derive(Debug, Default, Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub struct LeadQuery {
    /// In shared mode, sell to at most this many buyers.
    #[param(minimum = 1)]
    pub shared_max_buyers: Option<u32>,
}

/// Body of `POST /v1/post`.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
#[schema(as = PostRequest)]
pub(crate) struct PostBody {
    /// The `ping_id` the ping answered.
    ping_id: String,
    /// The full lead, when the ping was sent without PII (and only then); its `publisher_id` may be left out.
    #[serde(default)]
    lead: Option<Lead>,
}

/// Body of `POST /v1/ping`: the full lead (it has `consumer`), or a PII-free ping (it has none) whose lead comes with
/// the post. `parse_ping` tells the two apart by the `consumer` key, so an error names the field of the one meant
/// (serde's own untagged reading would only say that neither fits).
#[derive(Debug, Deserialize, ToSchema)]
#[serde(untagged)]
pub(crate) enum PingBody {
    /// The full lead, as for `POST /v1/leads`.
    Lead(Lead),
    /// What a ping is made of, without the consumer's identity.
    WithoutPii(LeadPing),
}

impl PingBody {
    /// The consumer's keys, when the body says them: a lead's phone and email, or a PII-free ping's hashes.
    fn keys(&self) -> Option<ConsumerKeys> {
        match self {
            PingBody::Lead(lead) => consumer_keys(lead),
            PingBody::WithoutPii(ping) => match (&ping.phone_sha256, &ping.email_sha256) {
                (Some(phone), Some(email)) => Some(ConsumerKeys {
                    phone_sha256: phone.to_ascii_lowercase(),
                    email_sha256: email.to_ascii_lowercase(),
                }),
                _ => None,
            },
        }
    }
}

/// `POST /v1/leads`: one-shot ping and post.
#[utoipa::path(post, path = "/v1/leads", tag = "publisher", security(("publisher" = [])),
    summary = "Sell a lead: ping every eligible buyer, post to the winner",
    params(LeadQuery, ("Idempotency-Key" = Option<String>, Header, description = IDEMPOTENCY, min_length = 1, max_length = 255, pattern = "^[ -~]+$")),
    request_body(content = Lead, example = json!(example_lead())),
    responses(
        (status = 200, description = "The auction ran: `sold`, `unsold`, `duplicate`, or `error` (with `pii_leaks` when \
            the publisher's redactor left PII in the ping)", body = LeadAnswer),
        (status = 409, description = "`idempotency_key_reused` or `idempotency_in_progress`", body = ErrorBody),
        (status = 422, description = "`rejected`: the lead is invalid (`field_errors`), or its publisher is paused or \
            unknown; or the body or query does not fit the schema (an error naming the field)", body = LeadRefusal),
        (status = 429, description = "`rate_limited`: over the publisher's request rate (`Retry-After`)", body = ErrorBody),
        (status = 503, description = "Overloaded (`Retry-After`) or the store cannot write: nothing was sold", body = ErrorBody),
    ))]
async fn send_lead(
    State(state): State<Shared>,
    PublisherKey { principal, publisher_id }: PublisherKey,
    headers: HeaderMap,
    query: Result<Query<LeadQuery>, QueryRejection>,
    RawBody(body): RawBody,
) -> Result<Response, ApiError> {
    check_rate(&state.publisher_limiter, &publisher_id)?;
    let _admitted = state.admission.admit()?;
    state.store_writable().await?;
    let mut options = lead_options(query)?;
    let parsed = parse_lead(&body, &publisher_id);
    let keys = parsed.as_ref().ok().and_then(consumer_keys);
    let named = name_lead(&state, &headers, &publisher_id, keys, &mut options);
    idempotent(&state, &principal, &headers, "leads", &body, named, async {
        let lead = parsed?;
        let received = state.now();
        let started = Instant::now();
        let outcome = state.exchange().run_lead_with(lead, options).await;
        unsold_for_the_store(&state, outcome.status)?;
        state.metrics.observe_outcome(Endpoint::Leads, &outcome, started.elapsed());
        record(&state, &publisher_id, &outcome.ping_id, outcome.status, received, &outcome, Write::Queued).await?;
        let answer = LeadAnswer::of(&outcome);
        to_json(answer.status(), &answer)
    })
    .await
}

/// `POST /v1/ping`: the bid phase of a two-step sale.
#[utoipa::path(post, path = "/v1/ping", tag = "publisher", security(("publisher" = [])),
    summary = "Two-step, first half: collect bids without selling",
    description = "The body is the full lead (as for `POST /v1/leads`), or a PII-free ping: what a ping is made of \
        (vertical, state, ZIP or ZIP3, age or year of birth, consent evidence, source, sub id, extras) and optionally \
        the SHA-256 of the normalised phone and email, without the consumer's identity. Its lead then comes with the \
        post, which must match what was pinged.",
    params(LeadQuery, ("Idempotency-Key" = Option<String>, Header, description = IDEMPOTENCY, min_length = 1, max_length = 255, pattern = "^[ -~]+$")),
    request_body(content = PingBody, examples(
        ("pii_free" = (summary = "A PII-free ping (the lead comes with the post)", value = json!(example_lead_ping()))),
        ("lead" = (summary = "The full lead", value = json!(example_lead()))),
    )),
    responses(
        (status = 200, description = "`bid` (post before `expires_at_unix_ms`), `no_bid`, `duplicate`, or `error` (with \
            `pii_leaks` when the redactor left PII in the ping)", body = PingAnswer),
        (status = 409, description = "`idempotency_key_reused` or `idempotency_in_progress`", body = ErrorBody),
        (status = 422, description = "`rejected`, as for `POST /v1/leads`", body = PingRefusal),
        (status = 429, description = "`rate_limited`: over the publisher's request rate (`Retry-After`)", body = ErrorBody),
        (status = 503, description = "Overloaded (`Retry-After`) or the store cannot write", body = ErrorBody),
    ))]
async fn send_ping(
    State(state): State<Shared>,
    PublisherKey { principal, publisher_id }: PublisherKey,
    headers: HeaderMap,
    query: Result<Query<LeadQuery>, QueryRejection>,
    RawBody(body): RawBody,
) -> Result<Response, ApiError> {
    check_rate(&state.publisher_limiter, &publisher_id)?;
    let _admitted = state.admission.admit()?;
    state.store_writable().await?;
    let mut options = lead_options(query)?;
    let parsed = parse_ping(&body, &publisher_id);
    let keys = parsed.as_ref().ok().and_then(PingBody::keys);
    let named = name_lead(&state, &headers, &publisher_id, keys, &mut options);
    idempotent(&state, &principal, &headers, "ping", &body, named, async {
        let pinged = parsed?;
        let received = state.now();
        let started = Instant::now();
        let outcome = match pinged {
            PingBody::Lead(lead) => state.exchange().ping_with(lead, options).await,
            PingBody::WithoutPii(ping) => state.exchange().ping_without_pii(ping, options).await,
        };
        if outcome.status != PingStatus::Bid {
            unsold_for_the_store(&state, OutcomeStatus::Unsold)?;
        }
        state.metrics.observe_ping(&outcome, started.elapsed());
        record(&state, &publisher_id, &outcome.ping_id, outcome.status, received, &outcome, Write::Now).await?;
        let answer = PingAnswer::of(&outcome);
        to_json(answer.status(), &answer)
    })
    .await
}

/// `POST /v1/post`: sells a pinged lead to its best bidders (with fallback).
#[utoipa::path(post, path = "/v1/post", tag = "publisher", security(("publisher" = [])),
    summary = "Two-step, second half: sell a pinged lead at its bid",
    params(("Idempotency-Key" = Option<String>, Header, description = IDEMPOTENCY, min_length = 1, max_length = 255, pattern = "^[ -~]+$")),
    request_body(content = PostBody, examples(
        ("ping_with_its_lead" = (summary = "The ping carried the lead", value = json!({ "ping_id": "ld_0190f2c4a1b27d3e8f1a2b3c4d5e6f70" }))),
        ("pii_free_ping" = (summary = "The ping carried no PII: the post brings the lead", value = json!({
            "ping_id": "ld_0190f2c4a1b27d3e8f1a2b3c4d5e6f70", "lead": example_lead() }))),
    )),
    responses(
        (status = 200, description = "The post ran: `sold`, `unsold`, `duplicate` (a PII-free ping's lead seen \
            before) or `error`", body = LeadAnswer),
        (status = 404, description = "No ping of yours has this id", body = ErrorBody),
        (status = 409, description = "`already_posted`, `publisher_removed`, `idempotency_key_reused` or \
            `idempotency_in_progress`", body = ErrorBody),
        (status = 410, description = "`ping_expired`: its bids have expired", body = ErrorBody),
        (status = 422, description = "The body does not fit the schema; `lead_required` (a PII-free ping's post without \
            its lead) or `lead_not_expected`; `lead_mismatch`: the lead is invalid or not the consumer pinged, each \
            field named in the message and the first in `field` (nothing is sold, the ping stays open)", body = ErrorBody),
        (status = 429, description = "`rate_limited`: over the publisher's request rate (`Retry-After`)", body = ErrorBody),
        (status = 503, description = "Overloaded (`Retry-After`) or the store cannot write", body = ErrorBody),
    ))]
async fn send_post(
    State(state): State<Shared>,
    PublisherKey { principal, publisher_id }: PublisherKey,
    headers: HeaderMap,
    RawBody(body): RawBody,
) -> Result<Response, ApiError> {
    check_rate(&state.publisher_limiter, &publisher_id)?;
    let _admitted = state.admission.admit()?;
    state.store_writable().await?;
    let parsed = parse_post(&body, &publisher_id);
    // The post's lead is the ping's: its duplicate record was made by the ping (or, for a PII-free ping without
    // hashes, is made by the post itself, under keys this record does not know yet).
    let named = parsed.as_ref().ok().map(|post| IdempotentLead {
        lead_id: post.ping_id.clone(),
        publisher_id: publisher_id.clone(),
        keys: None,
    });
    idempotent(&state, &principal, &headers, "post", &body, named, async {
        let PostBody { ping_id, lead } = parsed?;
        let store = state.store.clone();
        let (publisher, id) = (publisher_id.clone(), ping_id.clone());
        let known = blocking(move || Ok(store.auction_for_publisher(&publisher, &id)?.is_some())).await?;
        if !known {
            return Err(ApiError::not_found(format!("unknown ping id {ping_id:?}")).with_field("ping_id"));
        }
        let received = state.now();
        let started = Instant::now();
        let outcome = state.exchange().post_lead(&ping_id, lead).await.map_err(|error| match error {
            PostError::UnknownPingId(_) => ApiError::not_found(error.to_string()).with_field("ping_id"),
            PostError::Expired { .. } => {
                ApiError::new(StatusCode::GONE, "ping_expired", error.to_string()).with_field("ping_id")
            }
            PostError::AlreadyPosted(_) => {
                ApiError::conflict("already_posted", error.to_string()).with_field("ping_id")
            }
            PostError::UnknownPublisher(_) => ApiError::conflict("publisher_removed", error.to_string()),
            PostError::LeadRequired(_) => {
                ApiError::new(StatusCode::UNPROCESSABLE_ENTITY, "lead_required", error.to_string()).with_field("lead")
            }
            PostError::LeadNotExpected(_) => {
                ApiError::new(StatusCode::UNPROCESSABLE_ENTITY, "lead_not_expected", error.to_string())
                    .with_field("lead")
            }
            PostError::LeadRefused(ref errors) => {
                let field = errors.first().map_or_else(|| "lead".to_owned(), |e| e.field.clone());
                ApiError::new(StatusCode::UNPROCESSABLE_ENTITY, "lead_mismatch", error.to_string()).with_field(field)
            }
            PostError::Store(e) => ApiError::from(e),
        })?;
        unsold_for_the_store(&state, outcome.status)?;
        state.metrics.observe_outcome(Endpoint::Post, &outcome, started.elapsed());
        record(&state, &publisher_id, &outcome.ping_id, outcome.status, received, &outcome, Write::Queued).await?;
        let answer = LeadAnswer::of(&outcome);
        to_json(answer.status(), &answer)
    })
    .await
}

/// `GET /v1/leads/{lead_id}`: the result of one of the publisher's leads.
#[utoipa::path(get, path = "/v1/leads/{lead_id}", tag = "publisher", security(("publisher" = [])),
    summary = "The result of one of your leads",
    params(("lead_id" = String, Path, description = "The `lead_id` (or `ping_id`) the exchange answered")),
    responses(
        (status = 200, description = "Its outcome, in the publisher's terms", body = LeadView),
        (status = 404, description = "No lead of yours has this id", body = ErrorBody),
    ))]
async fn read_lead(
    State(state): State<Shared>,
    PublisherKey { publisher_id, .. }: PublisherKey,
    Path(lead_id): Path<String>,
) -> Result<Json<LeadView>, ApiError> {
    state.recorder.flush().await;
    let id = lead_id.clone();
    let record = state.on_store(move |store| store.auction_for_publisher(&publisher_id, &id)).await?;
    let record = record.ok_or_else(|| ApiError::not_found(format!("no lead {lead_id:?} of yours")))?;
    let outcome: serde_json::Value =
        serde_json::from_str(&record.outcome_json).map_err(|e| ApiError::internal("reading a recorded lead", e))?;
    Ok(Json(publisher_view(&lead_id, &outcome)))
}

/// `PUT /v1/publisher/redactor`: uploads a new redactor version and makes it the publisher's live redactor (a hot
/// swap). Refused, and nothing changes, if the publisher's redactor config does not configure it.
#[utoipa::path(put, path = "/v1/publisher/redactor", tag = "publisher", security(("publisher" = [])),
    summary = "Upload your redactor plugin and make it live",
    request_body(description = "A redactor component (`.wasm`)", content((WasmComponent = "application/wasm"), (WasmComponent = "application/octet-stream"))),
    responses(
        (status = 201, description = "Stored, compiled and live", body = Uploaded),
        (status = 404, description = "The key's publisher is not configured", body = ErrorBody),
        (status = 422, description = "Not a valid redactor component, or it fails with the publisher's config", body = ErrorBody),
    ))]
async fn upload_redactor(
    State(state): State<Shared>,
    PublisherKey { principal, publisher_id }: PublisherKey,
    RawBody(body): RawBody,
) -> Result<(StatusCode, Json<Uploaded>), ApiError> {
    let name = format!("redactor:{publisher_id}");
    let owner = (Role::Publisher, Some(publisher_id.clone()));
    let live_name = name.clone();
    let uploaded = state
        .upload_and_activate(name, owner, World::Redactor, body.to_vec(), &principal, move |config| {
            let publisher = config
                .publishers
                .iter_mut()
                .find(|p| p.id == publisher_id)
                .ok_or_else(|| ApiError::not_found(format!("publisher {publisher_id:?} is not configured")))?;
            publisher.redactor = live_name;
            Ok(())
        })
        .await?;
    Ok((StatusCode::CREATED, Json(uploaded)))
}

/// A lead that did not sell (or a ping that kept no bid) while the store could not write (its sale, its ping or its
/// record failed) is `503 store_unavailable`, not an answer: the publisher's retry runs it again once the store
/// writes.
fn unsold_for_the_store(state: &Shared, status: OutcomeStatus) -> Result<(), ApiError> {
    match state.store.write_failure() {
        Some(error) if status != OutcomeStatus::Sold => {
            tracing::warn!(%error, "a lead went unsold while the store could not write");
            Err(ApiError::store_unavailable())
        }
        _ => Ok(()),
    }
}

fn lead_options(query: Result<Query<LeadQuery>, QueryRejection>) -> Result<LeadOptions, ApiError> {
    let Query(query) = query.map_err(|e| ApiError::invalid("(query)", e.body_text()))?;
    if query.shared_max_buyers == Some(0) {
        return Err(ApiError::invalid("shared_max_buyers", "must be at least 1"));
    }
    Ok(LeadOptions { shared_max_buyers: query.shared_max_buyers, lead_id: None })
}

/// With an `Idempotency-Key`, names the lead before it runs: its id, fixed now (in `options`), and its consumer's
/// keys, so a request left in progress by a crash can be resolved (see [`super::idempotency`]).
fn name_lead(
    state: &Shared,
    headers: &HeaderMap,
    publisher_id: &str,
    keys: Option<ConsumerKeys>,
    options: &mut LeadOptions,
) -> Option<IdempotentLead> {
    if !headers.contains_key("idempotency-key") {
        return None;
    }
    let lead_id = state.exchange().new_lead_id();
    options.lead_id = Some(lead_id.clone());
    Some(IdempotentLead { lead_id, publisher_id: publisher_id.to_owned(), keys })
}

/// Parses a lead for `publisher_id`: fills in a missing `publisher_id`, refuses another publisher's.
fn parse_lead(body: &[u8], publisher_id: &str) -> Result<Lead, ApiError> {
    let mut value: serde_json::Value = serde_json::from_slice(body).map_err(|e| ApiError::malformed(e.to_string()))?;
    let object = value.as_object_mut().ok_or_else(|| ApiError::invalid("(body)", "a lead is a JSON object"))?;
    fill_publisher(object, publisher_id, "publisher_id")?;
    from_value(value)
}

/// Parses a `POST /v1/ping` body for `publisher_id`: a full lead when it has `consumer`, else a PII-free ping.
fn parse_ping(body: &[u8], publisher_id: &str) -> Result<PingBody, ApiError> {
    let mut value: serde_json::Value = serde_json::from_slice(body).map_err(|e| ApiError::malformed(e.to_string()))?;
    let object = value.as_object_mut().ok_or_else(|| ApiError::invalid("(body)", "a ping is a JSON object"))?;
    fill_publisher(object, publisher_id, "publisher_id")?;
    if object.contains_key("consumer") {
        from_value(value).map(PingBody::Lead)
    } else {
        from_value(value).map(PingBody::WithoutPii)
    }
}

/// Parses a `POST /v1/post` body for `publisher_id` (its lead's `publisher_id` filled in or checked).
fn parse_post(body: &[u8], publisher_id: &str) -> Result<PostBody, ApiError> {
    let mut value: serde_json::Value = serde_json::from_slice(body).map_err(|e| ApiError::malformed(e.to_string()))?;
    if let Some(lead) = value.get_mut("lead").and_then(serde_json::Value::as_object_mut) {
        fill_publisher(lead, publisher_id, "lead.publisher_id")?;
    }
    from_value(value)
}

/// Fills in a missing `publisher_id` of `object` with the key's, and refuses another publisher's (`field` names it).
fn fill_publisher(
    object: &mut serde_json::Map<String, serde_json::Value>,
    publisher_id: &str,
    field: &str,
) -> Result<(), ApiError> {
    match object.get("publisher_id") {
        None | Some(serde_json::Value::Null) => {
            object.insert("publisher_id".into(), publisher_id.into());
        }
        Some(serde_json::Value::String(id)) if id == publisher_id => {}
        Some(_) => {
            return Err(ApiError::new(
                StatusCode::FORBIDDEN,
                "wrong_publisher",
                format!("this key sends leads for publisher {publisher_id:?} only"),
            )
            .with_field(field));
        }
    }
    Ok(())
}

/// How an auction's record is written.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Write {
    /// Before answering: a two-step ping's record is what its post is checked against.
    Now,
    /// Through the recorder, off the request path.
    Queued,
}

/// Records the auction (outcome and trace) for the publisher's and the operator's reads.
async fn record<S: Serialize, T: Serialize>(
    state: &Shared,
    publisher_id: &str,
    lead_id: &str,
    status: S,
    received_at: i64,
    outcome: &T,
    write: Write,
) -> Result<(), ApiError> {
    let outcome_json = serde_json::to_string(outcome).map_err(|e| ApiError::internal("recording the auction", e))?;
    let status = match serde_json::to_value(status) {
        Ok(serde_json::Value::String(name)) => name,
        _ => return Err(ApiError::internal("recording the auction", "an outcome status without a name")),
    };
    let record = AuctionRecord {
        lead_id: lead_id.to_owned(),
        publisher_id: publisher_id.to_owned(),
        status,
        received_at_unix_ms: received_at,
        outcome_json,
    };
    match write {
        Write::Queued => {
            state.recorder.record(record).await;
            Ok(())
        }
        Write::Now => state.on_store(move |store| store.record_auctions(vec![record])).await,
    }
}

/// The PII-free ping the document shows: the Florida scenario's lead (`examples/florida/lead.json`) as a ping, with
/// the hashes of its phone and email.
fn example_lead_ping() -> serde_json::Value {
    let keys = ConsumerKeys::of("+13055550142", "maria.alvarez@example.com");
    serde_json::json!({
        "vertical": "health-insurance",
        "source_id": "google-search-fl",
        "sub_id": "ad-group-12",
        "state": "FL",
        "zip5": "33131",
        "age": 58,
        "gender": "female",
        "consent": {
            "trusted_form_url": "https://cert.trustedform.com/2f9c1e7ab04d4e1b9c0f6a1d3e5b7c9d",
            "tcpa_text": true
        },
        "phone_sha256": keys.phone_sha256,
        "email_sha256": keys.email_sha256,
        "extra": { "household_size": "2", "currently_insured": "false" }
    })
}

/// The lead the document shows: the Florida scenario's (`examples/florida/lead.json`), without its `publisher_id`
/// (a publisher key's lead may leave it out).
fn example_lead() -> serde_json::Value {
    let text = include_str!(concat!(env!("CARGO_MANIFEST_DIR"), "/../../examples/florida/lead.json"));
    let mut lead: serde_json::Value = serde_json::from_str(text).unwrap_or_default();
    if let Some(lead) = lead.as_object_mut() {
        lead.remove("publisher_id");
    }
    lead
}
