//! `Idempotency-Key` on the publisher routes: a retry with the same key and the same body gets the first answer back
//! (without running again); the same key with another body is a 409.
//!
//! A request names its lead when it begins (the lead id the auction will run under, the publisher, the consumer's
//! hashed keys), so a request that never stored its answer — the process was killed, or its task was lost — is
//! resolved from what the store holds instead of answering `409 idempotency_in_progress` forever: every such request
//! on each start ([`resolve_in_progress`]), and one a retry finds older than [`STALE_AFTER_MS`]. Resolved means: the
//! answer made from the lead's recorded outcome if the auction got that far; else, if the lead sold (its sale is
//! committed, its record was not), `sold` with those sales; else released, and the consumer's duplicate record made by
//! that request forgotten, so the publisher's retry runs the auction instead of being refused as a duplicate.

use axum::http::{HeaderMap, HeaderValue, StatusCode};
use axum::response::Response;
use sha2::{Digest, Sha256};

use super::answers::{LeadAnswer, PingAnswer};
use super::{Shared, json_response, to_json};
use crate::auth::Principal;
use crate::error::ApiError;
use pingpost_engine::{MAX_PING_DEADLINE_MS, MAX_POST_DEADLINE_MS};
use pingpost_sqlite::SqliteStore;
use pingpost_sqlite::registry::{Idempotency, IdempotentLead, InProgressRequest};

/// How long after it began a request without an answer is taken for lost: longer than any auction may run (the
/// longest ping and post deadlines) with a margin, so a request still running is never resolved under its feet.
pub const STALE_AFTER_MS: i64 = (MAX_PING_DEADLINE_MS + MAX_POST_DEADLINE_MS) as i64 + 60_000;

/// Runs `work` once per `Idempotency-Key` of `principal` on `route`; `lead` names the lead it runs (see the module
/// docs). Without the header, just runs.
pub async fn idempotent<F>(
    state: &Shared,
    principal: &Principal,
    headers: &HeaderMap,
    route: &str,
    body: &[u8],
    lead: Option<IdempotentLead>,
    work: F,
) -> Result<Response, ApiError>
where
    F: Future<Output = Result<(StatusCode, String), ApiError>>,
{
    let Some(key) = headers.get("idempotency-key") else {
        return work.await.map(json_response);
    };
    let key = key
        .to_str()
        .ok()
        .filter(|k| !k.is_empty() && k.len() <= 255)
        .ok_or_else(|| ApiError::invalid("Idempotency-Key", "must be 1–255 visible ASCII characters"))?
        .to_owned();
    let scoped = format!("{route} {key}");
    let request_sha = hex::encode(Sha256::digest(body));
    let begin = || {
        let (id, key, sha, now, lead) =
            (principal.id.clone(), scoped.clone(), request_sha.clone(), state.now(), lead.clone());
        state.on_store(move |store| store.idempotency_begin(&id, &key, &sha, now, lead.as_ref()))
    };
    let mut decision = begin().await?;
    if let Idempotency::InProgress { started_at_unix_ms } = decision
        && state.now() - started_at_unix_ms > STALE_AFTER_MS
    {
        let (store, id, key, margins) = (state.store.clone(), principal.id.clone(), scoped.clone(), margins(state));
        super::blocking(move || {
            let stale = store.idempotency_in_progress(started_at_unix_ms + 1)?;
            for request in stale.iter().filter(|r| r.principal_id == id && r.key == key) {
                resolve(&store, request, &margins)?;
            }
            Ok(())
        })
        .await?;
        decision = begin().await?;
    }
    match decision {
        Idempotency::Replay { status, body } => {
            let status = StatusCode::from_u16(status).unwrap_or(StatusCode::OK);
            let mut response = json_response((status, body));
            response.headers_mut().insert("idempotent-replay", HeaderValue::from_static("true"));
            Ok(response)
        }
        Idempotency::InProgress { .. } => Err(ApiError::conflict(
            "idempotency_in_progress",
            "a request with this Idempotency-Key is still running; retry later",
        )),
        Idempotency::Mismatch => Err(ApiError::conflict(
            "idempotency_key_reused",
            "this Idempotency-Key was used with a different request body",
        )),
        Idempotency::Run => {
            let result = work.await;
            let id = principal.id.clone();
            match &result {
                // Answers that the exchange gave (including a refused lead) are kept; a failure of the exchange
                // itself is not, so the publisher's retry runs again.
                Ok((status, body)) => {
                    let (status, body) = (status.as_u16(), body.clone());
                    state.on_store(move |store| store.idempotency_finish(&id, &scoped, status, &body)).await?;
                }
                Err(error) if error.status.is_client_error() => {
                    let (status, body) = (error.status.as_u16(), error.body());
                    state.on_store(move |store| store.idempotency_finish(&id, &scoped, status, &body)).await?;
                }
                Err(_) => {
                    state.on_store(move |store| store.idempotency_abandon(&id, &scoped)).await?;
                }
            }
            result.map(json_response)
        }
    }
}

/// The live exchange, for the publishers' margins (the answer of a lead whose sales were recorded but not its
/// outcome).
type Margins = std::sync::Arc<pingpost_engine::Exchange>;

fn margins(state: &Shared) -> Margins {
    state.exchange()
}

/// How many requests left in progress were answered from the store, and how many released.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct Resolved {
    pub answered: usize,
    pub released: usize,
}

/// Resolves every request begun before `started_before_unix_ms` that has no answer (on start: all of them, since
/// none can still be running).
pub async fn resolve_in_progress(state: &Shared, started_before_unix_ms: i64) -> Result<Resolved, ApiError> {
    let (store, margins) = (state.store.clone(), margins(state));
    super::blocking(move || {
        let mut resolved = Resolved::default();
        for request in store.idempotency_in_progress(started_before_unix_ms)? {
            if resolve(&store, &request, &margins)? {
                resolved.answered += 1;
            } else {
                resolved.released += 1;
            }
        }
        Ok(resolved)
    })
    .await
}

/// Resolves one request left in progress; true when it was answered from the store, false when released.
fn resolve(store: &SqliteStore, request: &InProgressRequest, margins: &Margins) -> Result<bool, ApiError> {
    let Some(lead) = &request.lead else {
        store.idempotency_release(request, "")?;
        return Ok(false);
    };
    // The duplicate record is kept under the publisher's dedupe pool (its id, unless it dedupes exchange-wide).
    let pool = margins.publisher(&lead.publisher_id).map_or(lead.publisher_id.as_str(), |p| p.dedupe_pool());
    let route = request.key.split_once(' ').map_or("", |(route, _)| route);
    let recorded = store.auction(&lead.lead_id)?.filter(|record| record.publisher_id == lead.publisher_id);
    let from_record = recorded.and_then(|record| match route {
        "ping" => PingAnswer::from_recorded(&record.outcome_json).map(|a| to_json(a.status(), &a)),
        _ => LeadAnswer::from_recorded(&record.outcome_json).map(|a| to_json(a.status(), &a)),
    });
    let answer = match from_record {
        Some(answer) => Some(answer),
        None if route != "ping" => {
            let sales = store.sales_of_lead(&lead.lead_id)?;
            let margin = margins.publisher(&lead.publisher_id).map_or(0, |p| p.margin_bps);
            (!sales.is_empty()).then(|| {
                let answer = LeadAnswer::sold(&lead.lead_id, &sales, margin);
                to_json(answer.status(), &answer)
            })
        }
        None => None,
    };
    match answer {
        Some(Ok((status, body))) => {
            store.idempotency_finish(&request.principal_id, &request.key, status.as_u16(), &body)?;
            Ok(true)
        }
        Some(Err(error)) => Err(error),
        None => {
            store.idempotency_release(request, pool)?;
            Ok(false)
        }
    }
}
