//! The books over HTTP: money in and out, balances, and the journal.
//!
//! Operators record payments from buyers (`POST /v1/buyers/{id}/payments`), credit adjustments
//! (`POST /v1/buyers/{id}/adjustments`) and payouts to publishers (`POST /v1/publishers/{id}/payouts`, no more than is
//! payable: what is still within `server.payout_hold_days` of its sale is held), reverse one recorded in error
//! (`POST /v1/ledger/{event_id}/reverse`), and read balances (now or at a past time), a buyer's funds, a publisher's
//! payable balance, the journal and its check. A buyer reads its funds and its own account's lines; a publisher its
//! balance and its own lines: each sees only the postings to its own account (never the other side of a sale, nor
//! the margin).

use axum::Json;
use axum::extract::rejection::QueryRejection;
use axum::extract::{Path, Query, State};
use axum::http::StatusCode;
use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use super::buyer::{DEFAULT_PAGE, MAX_PAGE};
use super::{RawBody, Shared, parse_json};
use crate::auth::{BuyerKey, OperatorKey, PublisherKey};
use crate::error::{ApiError, ErrorBody};
use pingpost_engine::ledger::{Account, EventKind, LedgerEvent, NewEvent, Posting};
use pingpost_sqlite::ledger::{JournalCheck, LedgerError, PublisherBalance};

/// One day in milliseconds.
const DAY_MS: i64 = 86_400_000;

/// The largest amount one event may move: $10 billion, in cents.
pub const MAX_AMOUNT_CENTS: u64 = 1_000_000_000_000;

/// The longest `reference` an event may carry, in bytes.
pub const MAX_REFERENCE_BYTES: usize = 128;

/// The longest `memo` an event may carry, in bytes.
pub const MAX_MEMO_BYTES: usize = 1_000;

/// The routes.
pub fn routes() -> OpenApiRouter<Shared> {
    OpenApiRouter::new()
        .routes(routes!(record_payment))
        .routes(routes!(record_adjustment))
        .routes(routes!(buyer_funds))
        .routes(routes!(record_payout))
        .routes(routes!(publisher_balance))
        .routes(routes!(journal))
        .routes(routes!(balance))
        .routes(routes!(check))
        .routes(routes!(reverse))
        .routes(routes!(own_funds))
        .routes(routes!(own_buyer_lines))
        .routes(routes!(own_balance))
        .routes(routes!(own_publisher_lines))
}

/// Body of a payment or a payout.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
struct MoneyBody {
    /// Cents, 1 to 10^12.
    #[schema(minimum = 1, maximum = 1_000_000_000_000_i64)]
    amount_cents: u64,
    /// Your reference (a bank transfer's id), at most 128 bytes: the same request sent again with it records nothing
    /// twice.
    #[serde(default)]
    reference: Option<String>,
    /// At most 1000 bytes.
    #[serde(default)]
    memo: Option<String>,
}

/// Body of `POST /v1/buyers/{id}/adjustments`.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
struct AdjustmentBody {
    /// Cents credited to the buyer (negative: taken back), not zero, at most 10^12 either way.
    #[schema(minimum = -1_000_000_000_000_i64, maximum = 1_000_000_000_000_i64)]
    amount_cents: i64,
    /// Why (required), at most 1000 bytes.
    memo: String,
    #[serde(default)]
    reference: Option<String>,
}

/// Body of `POST /v1/ledger/{event_id}/reverse`.
#[derive(Debug, Default, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
struct ReverseBody {
    #[serde(default)]
    memo: Option<String>,
}

/// A buyer's funds.
#[derive(Debug, Serialize, ToSchema)]
struct BuyerFunds {
    buyer_id: String,
    /// Payments and credits less purchases (negative: spent on credit).
    balance_cents: i64,
    /// What pending sales and standing quotes hold.
    held_cents: u64,
    /// Absent: the buyer's spending is not limited.
    #[serde(skip_serializing_if = "Option::is_none")]
    credit_limit_cents: Option<u64>,
    /// Balance + credit limit − held: what the buyer may still spend (absent without a limit).
    #[serde(skip_serializing_if = "Option::is_none")]
    available_cents: Option<i64>,
}

/// An account's balance at a time.
#[derive(Debug, Serialize, ToSchema)]
struct Balance {
    account: String,
    balance_cents: i64,
    /// The time it is read at (absent: now).
    #[serde(skip_serializing_if = "Option::is_none")]
    at_unix_ms: Option<i64>,
}

/// One line of an account as its holder sees it: an event's posting to that account only.
#[derive(Debug, Serialize, ToSchema)]
struct AccountLine {
    event_id: u64,
    kind: EventKind,
    at_unix_ms: i64,
    /// Credit (positive) or debit (negative) to the account.
    amount_cents: i64,
    #[serde(skip_serializing_if = "Option::is_none")]
    lead_id: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    sale_id: Option<u64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    reference: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    memo: Option<String>,
}

/// A page of an account's lines.
#[derive(Debug, Serialize, ToSchema)]
struct LinesPage {
    lines: Vec<AccountLine>,
    /// Pass as `after` for the next page; absent when this page is empty.
    #[serde(skip_serializing_if = "Option::is_none")]
    next_after: Option<u64>,
}

/// A page of the journal.
#[derive(Debug, Serialize, ToSchema)]
struct JournalPage {
    events: Vec<LedgerEvent>,
    /// Pass as `after` for the next page; absent when this page is empty.
    #[serde(skip_serializing_if = "Option::is_none")]
    next_after: Option<u64>,
}

/// Query of the journal and of an account's lines.
#[derive(Debug, Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
struct JournalQuery {
    /// Only events posting to this account (`buyer:<id>`, `publisher:<id>`, `exchange:margin`, `exchange:cash`,
    /// `exchange:adjustments`); operators only.
    account: Option<String>,
    /// Only events after this event id (the `next_after` of the previous page).
    #[param(maximum = 9_223_372_036_854_775_807_i64)]
    after: Option<u64>,
    /// Events per page, 1–1000 (default 100).
    #[param(minimum = 1, maximum = 1000)]
    limit: Option<u32>,
}

/// Query of `GET /v1/ledger/balance`.
#[derive(Debug, Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
struct BalanceQuery {
    /// The account (as in the journal).
    account: String,
    /// Its balance as it stood at this time (unix ms): every event at or before it. Absent: now.
    at: Option<i64>,
}

/// `POST /v1/buyers/{id}/payments`.
#[utoipa::path(post, path = "/v1/buyers/{id}/payments", tag = "books", security(("operator" = [])),
    summary = "Record money received from a buyer (a prepayment or a paid invoice)",
    params(("id" = String, Path)),
    request_body(content = MoneyBody, example = json!({ "amount_cents": 50000, "reference": "wire-2026-12-04-0042" })),
    responses(
        (status = 201, description = "Recorded: the buyer is credited, `exchange:cash` debited", body = LedgerEvent),
        (status = 200, description = "Already recorded with this reference: the first event", body = LedgerEvent),
        (status = 404, description = "No such buyer", body = ErrorBody),
        (status = 409, description = "`reference_in_use`: the reference names another amount", body = ErrorBody),
        (status = 422, description = "An amount out of range, or a reference or memo too long", body = ErrorBody),
    ))]
async fn record_payment(
    State(state): State<Shared>,
    OperatorKey(principal): OperatorKey,
    Path(id): Path<String>,
    RawBody(body): RawBody,
) -> Result<(StatusCode, Json<LedgerEvent>), ApiError> {
    let MoneyBody { amount_cents, reference, memo } = parse_json(&body)?;
    known_buyer(&state, &id)?;
    let amount = positive_amount(amount_cents)?;
    let postings = vec![
        Posting { account: Account::buyer(&id), amount_cents: amount },
        Posting { account: Account::Cash, amount_cents: -amount },
    ];
    let event = NewEvent {
        reference: bounded_text("reference", reference, MAX_REFERENCE_BYTES)?,
        memo: bounded_text("memo", memo, MAX_MEMO_BYTES)?,
        ..NewEvent::new(EventKind::Payment, &principal.id, state.now(), postings)
    };
    record(&state, move |store| store.record_event(event)).await
}

/// `POST /v1/buyers/{id}/adjustments`.
#[utoipa::path(post, path = "/v1/buyers/{id}/adjustments", tag = "books", security(("operator" = [])),
    summary = "Credit (or debit) a buyer, with a memo saying why",
    params(("id" = String, Path)),
    request_body(content = AdjustmentBody, example = json!({ "amount_cents": 2500, "memo": "goodwill credit for a \
        late delivery" })),
    responses(
        (status = 201, description = "Recorded against `exchange:adjustments`", body = LedgerEvent),
        (status = 200, description = "Already recorded with this reference: the first event", body = LedgerEvent),
        (status = 404, description = "No such buyer", body = ErrorBody),
        (status = 409, description = "`reference_in_use`", body = ErrorBody),
        (status = 422, description = "A zero or out-of-range amount, or a missing or too long memo", body = ErrorBody),
    ))]
async fn record_adjustment(
    State(state): State<Shared>,
    OperatorKey(principal): OperatorKey,
    Path(id): Path<String>,
    RawBody(body): RawBody,
) -> Result<(StatusCode, Json<LedgerEvent>), ApiError> {
    let AdjustmentBody { amount_cents, memo, reference } = parse_json(&body)?;
    known_buyer(&state, &id)?;
    if amount_cents == 0 || amount_cents.unsigned_abs() > MAX_AMOUNT_CENTS {
        return Err(ApiError::invalid(
            "amount_cents",
            format!("must be non-zero and at most {MAX_AMOUNT_CENTS} either way"),
        ));
    }
    let memo = bounded_text("memo", Some(memo), MAX_MEMO_BYTES)?
        .ok_or_else(|| ApiError::invalid("memo", "an adjustment needs a memo saying why"))?;
    let postings = vec![
        Posting { account: Account::buyer(&id), amount_cents },
        Posting { account: Account::Adjustments, amount_cents: -amount_cents },
    ];
    let event = NewEvent {
        reference: bounded_text("reference", reference, MAX_REFERENCE_BYTES)?,
        memo: Some(memo),
        ..NewEvent::new(EventKind::Adjustment, &principal.id, state.now(), postings)
    };
    record(&state, move |store| store.record_event(event)).await
}

/// `GET /v1/buyers/{id}/funds`.
#[utoipa::path(get, path = "/v1/buyers/{id}/funds", tag = "books", security(("operator" = [])),
    summary = "A buyer's balance, held funds, credit limit and what it may still spend",
    params(("id" = String, Path)),
    responses((status = 200, body = BuyerFunds), (status = 404, description = "No such buyer", body = ErrorBody)))]
async fn buyer_funds(
    State(state): State<Shared>,
    _: OperatorKey,
    Path(id): Path<String>,
) -> Result<Json<BuyerFunds>, ApiError> {
    funds_of(&state, id).await.map(Json)
}

/// `POST /v1/publishers/{id}/payouts`.
#[utoipa::path(post, path = "/v1/publishers/{id}/payouts", tag = "books", security(("operator" = [])),
    summary = "Record a payout to a publisher (at most what is payable)",
    params(("id" = String, Path)),
    request_body(content = MoneyBody, example = json!({ "amount_cents": 120000, "reference": "ach-77120" })),
    responses(
        (status = 201, description = "Recorded: the publisher is debited, `exchange:cash` credited", body = LedgerEvent),
        (status = 200, description = "Already recorded with this reference: the first event", body = LedgerEvent),
        (status = 404, description = "No such publisher", body = ErrorBody),
        (status = 409, description = "`exceeds_payable` (more than is payable now) or `reference_in_use`",
            body = ErrorBody),
        (status = 422, description = "An amount out of range, or a reference or memo too long", body = ErrorBody),
    ))]
async fn record_payout(
    State(state): State<Shared>,
    OperatorKey(principal): OperatorKey,
    Path(id): Path<String>,
    RawBody(body): RawBody,
) -> Result<(StatusCode, Json<LedgerEvent>), ApiError> {
    let MoneyBody { amount_cents, reference, memo } = parse_json(&body)?;
    known_publisher(&state, &id)?;
    let amount = positive_amount(amount_cents)?;
    let postings = vec![
        Posting { account: Account::publisher(&id), amount_cents: -amount },
        Posting { account: Account::Cash, amount_cents: amount },
    ];
    let event = NewEvent {
        reference: bounded_text("reference", reference, MAX_REFERENCE_BYTES)?,
        memo: bounded_text("memo", memo, MAX_MEMO_BYTES)?,
        ..NewEvent::new(EventKind::Payout, &principal.id, state.now(), postings)
    };
    let hold_ms = payout_hold_ms(&state);
    record(&state, move |store| store.record_payout(&id, event, hold_ms)).await
}

/// `GET /v1/publishers/{id}/balance`.
#[utoipa::path(get, path = "/v1/publishers/{id}/balance", tag = "books", security(("operator" = [])),
    summary = "What a publisher has earned, what is still held, what may be paid out",
    params(("id" = String, Path)),
    responses((status = 200, body = PublisherBalance), (status = 404, description = "No such publisher", body = ErrorBody)))]
async fn publisher_balance(
    State(state): State<Shared>,
    _: OperatorKey,
    Path(id): Path<String>,
) -> Result<Json<PublisherBalance>, ApiError> {
    known_publisher(&state, &id)?;
    balance_of_publisher(&state, id).await.map(Json)
}

/// `GET /v1/ledger?account=&after=&limit=`.
#[utoipa::path(get, path = "/v1/ledger", tag = "books", security(("operator" = [])),
    summary = "The journal, in order: every event with all its postings",
    params(JournalQuery),
    responses(
        (status = 200, body = JournalPage),
        (status = 422, description = "An unknown account, a `limit` outside 1–1000, or an unknown parameter",
            body = ErrorBody),
    ))]
async fn journal(
    State(state): State<Shared>,
    _: OperatorKey,
    query: Result<Query<JournalQuery>, QueryRejection>,
) -> Result<Json<JournalPage>, ApiError> {
    let (account, after, limit) = page(query)?;
    let account = account.map(|a| parse_account(&a)).transpose()?;
    let events = state.on_store(move |store| store.journal(account.as_ref(), after, limit)).await?;
    let next_after = events.last().map(|e| e.event_id);
    Ok(Json(JournalPage { events, next_after }))
}

/// `GET /v1/ledger/balance?account=&at=`.
#[utoipa::path(get, path = "/v1/ledger/balance", tag = "books", security(("operator" = [])),
    summary = "An account's balance, now or at a past time",
    params(BalanceQuery),
    responses((status = 200, body = Balance), (status = 422, description = "An unknown account", body = ErrorBody)))]
async fn balance(
    State(state): State<Shared>,
    _: OperatorKey,
    query: Result<Query<BalanceQuery>, QueryRejection>,
) -> Result<Json<Balance>, ApiError> {
    let Query(BalanceQuery { account, at }) = query.map_err(|e| ApiError::invalid("(query)", e.body_text()))?;
    let parsed = parse_account(&account)?;
    let balance_cents = state.on_store(move |store| store.balance(&parsed, at)).await?;
    Ok(Json(Balance { account, balance_cents, at_unix_ms: at }))
}

/// `GET /v1/ledger/check`.
#[utoipa::path(get, path = "/v1/ledger/check", tag = "books", security(("operator" = [])),
    summary = "Check the books: the journal sums to zero and every running balance equals its postings",
    responses((status = 200, body = JournalCheck)))]
async fn check(State(state): State<Shared>, _: OperatorKey) -> Result<Json<JournalCheck>, ApiError> {
    state.on_store(|store| store.check_journal()).await.map(Json)
}

/// `POST /v1/ledger/{event_id}/reverse`.
#[utoipa::path(post, path = "/v1/ledger/{event_id}/reverse", tag = "books", security(("operator" = [])),
    summary = "Reverse a payment, adjustment or payout recorded in error",
    params(("event_id" = u64, Path)),
    request_body(content = ReverseBody, example = json!({ "memo": "recorded twice" })),
    responses(
        (status = 201, description = "The reversal: the event's postings, negated", body = LedgerEvent),
        (status = 404, description = "No such event", body = ErrorBody),
        (status = 409, description = "`not_reversible` (a sale is undone by its return) or `already_reversed`",
            body = ErrorBody),
        (status = 422, description = "A memo too long", body = ErrorBody),
    ))]
async fn reverse(
    State(state): State<Shared>,
    OperatorKey(principal): OperatorKey,
    Path(event_id): Path<u64>,
    RawBody(body): RawBody,
) -> Result<(StatusCode, Json<LedgerEvent>), ApiError> {
    let ReverseBody { memo } = if body.is_empty() { ReverseBody::default() } else { parse_json(&body)? };
    let memo = bounded_text("memo", memo, MAX_MEMO_BYTES)?;
    let now = state.now();
    record(&state, move |store| store.reverse_event(event_id, &principal.id, memo, now).map(|e| (e, true))).await
}

/// `GET /v1/buyer/funds`.
#[utoipa::path(get, path = "/v1/buyer/funds", tag = "buyer", security(("buyer" = [])),
    summary = "Your balance, held funds, credit limit and what you may still spend",
    responses((status = 200, body = BuyerFunds)))]
async fn own_funds(
    State(state): State<Shared>,
    BuyerKey { buyer_id, .. }: BuyerKey,
) -> Result<Json<BuyerFunds>, ApiError> {
    funds_of(&state, buyer_id).await.map(Json)
}

/// `GET /v1/buyer/ledger?after=&limit=`.
#[utoipa::path(get, path = "/v1/buyer/ledger", tag = "buyer", security(("buyer" = [])),
    summary = "Your account's lines: purchases, returns, payments, adjustments",
    params(JournalQuery),
    responses((status = 200, body = LinesPage), (status = 422, description = "A bad page or an `account`",
        body = ErrorBody)))]
async fn own_buyer_lines(
    State(state): State<Shared>,
    BuyerKey { buyer_id, .. }: BuyerKey,
    query: Result<Query<JournalQuery>, QueryRejection>,
) -> Result<Json<LinesPage>, ApiError> {
    lines_of(&state, Account::buyer(&buyer_id), query).await.map(Json)
}

/// `GET /v1/publisher/balance`.
#[utoipa::path(get, path = "/v1/publisher/balance", tag = "publisher", security(("publisher" = [])),
    summary = "What you have earned, what is still held in the return window, what may be paid out",
    responses((status = 200, body = PublisherBalance)))]
async fn own_balance(
    State(state): State<Shared>,
    PublisherKey { publisher_id, .. }: PublisherKey,
) -> Result<Json<PublisherBalance>, ApiError> {
    balance_of_publisher(&state, publisher_id).await.map(Json)
}

/// `GET /v1/publisher/ledger?after=&limit=`.
#[utoipa::path(get, path = "/v1/publisher/ledger", tag = "publisher", security(("publisher" = [])),
    summary = "Your account's lines: payouts earned, returns, payouts paid",
    params(JournalQuery),
    responses((status = 200, body = LinesPage), (status = 422, description = "A bad page or an `account`",
        body = ErrorBody)))]
async fn own_publisher_lines(
    State(state): State<Shared>,
    PublisherKey { publisher_id, .. }: PublisherKey,
    query: Result<Query<JournalQuery>, QueryRejection>,
) -> Result<Json<LinesPage>, ApiError> {
    lines_of(&state, Account::publisher(&publisher_id), query).await.map(Json)
}

/// Records an event with `work`: 201 when new, 200 when its reference found it recorded already.
async fn record(
    state: &Shared,
    work: impl FnOnce(&pingpost_sqlite::SqliteStore) -> Result<(LedgerEvent, bool), LedgerError> + Send + 'static,
) -> Result<(StatusCode, Json<LedgerEvent>), ApiError> {
    let store = state.store.clone();
    let (event, new) = super::blocking(move || work(&store).map_err(ledger_error)).await?;
    Ok((if new { StatusCode::CREATED } else { StatusCode::OK }, Json(event)))
}

/// A refused event as the API answers it.
fn ledger_error(error: LedgerError) -> ApiError {
    match &error {
        LedgerError::UnknownEvent(_) => ApiError::not_found(error.to_string()),
        LedgerError::NotReversible(_) => ApiError::conflict("not_reversible", error.to_string()),
        LedgerError::AlreadyReversed { .. } => ApiError::conflict("already_reversed", error.to_string()),
        LedgerError::ReferenceInUse { .. } => ApiError::conflict("reference_in_use", error.to_string()),
        LedgerError::ExceedsPayable { .. } => ApiError::conflict("exceeds_payable", error.to_string()),
        LedgerError::Store(store) => ApiError::from(store.clone()),
    }
}

/// 404 unless buyer `id` is configured.
fn known_buyer(state: &Shared, id: &str) -> Result<(), ApiError> {
    state.exchange().buyer(id).map(drop).ok_or_else(|| ApiError::not_found(format!("no buyer {id:?}")))
}

/// 404 unless publisher `id` is configured.
fn known_publisher(state: &Shared, id: &str) -> Result<(), ApiError> {
    state.exchange().publisher(id).map(drop).ok_or_else(|| ApiError::not_found(format!("no publisher {id:?}")))
}

/// `buyer_id`'s funds with its credit limit (404 for an unknown buyer).
async fn funds_of(state: &Shared, buyer_id: String) -> Result<BuyerFunds, ApiError> {
    let credit_limit_cents = state
        .exchange()
        .buyer(&buyer_id)
        .ok_or_else(|| ApiError::not_found(format!("no buyer {buyer_id:?}")))?
        .credit_limit_cents;
    let id = buyer_id.clone();
    let funds = state.on_store(move |store| store.buyer_funds(&id)).await?;
    Ok(BuyerFunds {
        buyer_id,
        balance_cents: funds.balance_cents,
        held_cents: funds.held_cents,
        credit_limit_cents,
        available_cents: credit_limit_cents.map(|limit| funds.available_cents(limit)),
    })
}

/// `publisher_id`'s balance now.
async fn balance_of_publisher(state: &Shared, publisher_id: String) -> Result<PublisherBalance, ApiError> {
    let (now, hold_ms) = (state.now(), payout_hold_ms(state));
    state.on_store(move |store| store.publisher_balance(&publisher_id, now, hold_ms)).await
}

/// How long a sale's payout is held, in ms.
fn payout_hold_ms(state: &Shared) -> i64 {
    i64::from(state.settings.payout_hold_days) * DAY_MS
}

/// A page of `account`'s lines: each event posting to it, with that posting only.
async fn lines_of(
    state: &Shared,
    account: Account,
    query: Result<Query<JournalQuery>, QueryRejection>,
) -> Result<LinesPage, ApiError> {
    let (asked, after, limit) = page(query)?;
    if asked.is_some() {
        return Err(ApiError::invalid("account", "you read your own account only: leave `account` out"));
    }
    let name = account.clone();
    let events = state.on_store(move |store| store.journal(Some(&name), after, limit)).await?;
    let next_after = events.last().map(|e| e.event_id);
    let lines = events
        .into_iter()
        .filter_map(|event| {
            let amount_cents = event.postings.iter().find(|p| p.account == account)?.amount_cents;
            Some(AccountLine {
                event_id: event.event_id,
                kind: event.kind,
                at_unix_ms: event.at_unix_ms,
                amount_cents,
                lead_id: event.lead_id,
                sale_id: event.sale_id,
                reference: event.reference,
                memo: event.memo,
            })
        })
        .collect();
    Ok(LinesPage { lines, next_after })
}

/// The account, `after` and `limit` of a journal query, checked.
fn page(query: Result<Query<JournalQuery>, QueryRejection>) -> Result<(Option<String>, Option<u64>, u32), ApiError> {
    let Query(JournalQuery { account, after, limit }) =
        query.map_err(|e| ApiError::invalid("(query)", e.body_text()))?;
    if after.is_some_and(|after| after > i64::MAX as u64) {
        return Err(ApiError::invalid("after", format!("must be at most {}", i64::MAX)));
    }
    let limit = limit.unwrap_or(DEFAULT_PAGE);
    if !(1..=MAX_PAGE).contains(&limit) {
        return Err(ApiError::invalid("limit", format!("must be 1–{MAX_PAGE}")));
    }
    Ok((account, after, limit))
}

/// An account name, or 422 naming `account`.
fn parse_account(name: &str) -> Result<Account, ApiError> {
    name.parse().map_err(|e: pingpost_engine::ledger::UnknownAccount| ApiError::invalid("account", e.to_string()))
}

/// A payment's or payout's amount, 1 to [`MAX_AMOUNT_CENTS`].
fn positive_amount(amount_cents: u64) -> Result<i64, ApiError> {
    if !(1..=MAX_AMOUNT_CENTS).contains(&amount_cents) {
        return Err(ApiError::invalid("amount_cents", format!("must be 1–{MAX_AMOUNT_CENTS}")));
    }
    Ok(amount_cents as i64)
}

/// `text` trimmed (empty: none), refused over `max` bytes.
fn bounded_text(field: &str, text: Option<String>, max: usize) -> Result<Option<String>, ApiError> {
    let Some(text) = text.map(|t| t.trim().to_owned()).filter(|t| !t.is_empty()) else {
        return Ok(None);
    };
    if text.len() > max {
        return Err(ApiError::invalid(field, format!("must be at most {max} bytes")));
    }
    Ok(Some(text))
}
