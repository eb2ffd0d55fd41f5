//! What the demo prints: the recorded auction (the outcome JSON the exchange keeps for operators) as a short table,
//! and what each HTTP buyer's server actually received.

use anyhow::Result;
use pingpost::auction::Exchange;
use pingpost::auction::ledger::Account;
use pingpost::model::Lead;
use pingpost::service::state::AppState;
use serde_json::Value;

use crate::http_buyers::HttpBuyer;

fn dollars(cents: &Value) -> String {
    let cents = cents.as_u64().unwrap_or(0);
    format!("${}.{:02}", cents / 100, cents % 100)
}

/// Signed cents as dollars: `-$26.00`.
fn signed_dollars(cents: i64) -> String {
    let sign = if cents < 0 { "-" } else { "" };
    let cents = cents.unsigned_abs();
    format!("{sign}${}.{:02}", cents / 100, cents % 100)
}

fn text(value: &Value) -> &str {
    value.as_str().unwrap_or("")
}

/// The headline (who bought, at what price) and one row per campaign: how it answered and what it bid.
pub fn render(outcome: &Value, exchange: &Exchange) -> String {
    let mut out = format!("auction {} · {}\n", text(&outcome["ping_id"]), text(&outcome["status"]).to_uppercase());
    let sales = outcome["sales"].as_array().cloned().unwrap_or_default();
    if sales.is_empty() {
        out.push_str(&format!("not sold: {}\n", text(&outcome["reason"])));
    }
    for sale in &sales {
        let buyer_id = text(&sale["buyer_id"]);
        let name = exchange.buyer(buyer_id).map(|b| b.name.as_str()).filter(|n| !n.is_empty()).unwrap_or(buyer_id);
        out.push_str(&format!(
            "SOLD to {} ({name}) at {} — margin {}, publisher paid {}\n",
            text(&sale["campaign_id"]),
            dollars(&sale["price_cents"]),
            dollars(&sale["margin_cents"]),
            dollars(&sale["payout_cents"]),
        ));
    }
    out.push_str(&format!("\n  {:<26} {:<5} {:<12} {:>8}  detail\n", "campaign", "kind", "answer", "bid"));
    for campaign in outcome["trace"]["campaigns"].as_array().into_iter().flatten() {
        let answer = &campaign["answer"];
        let (kind, price, detail) = match (campaign.get("ineligible"), text(&answer["answer"])) {
            (Some(reason), _) => ("not pinged".to_owned(), String::new(), reason.to_string()),
            (None, "bid") => ("bid".into(), dollars(&answer["price_cents"]), String::new()),
            (None, "") => ("-".into(), String::new(), String::new()),
            (None, other) => {
                let detail = [&answer["code"], &answer["message"], &answer["kind"]]
                    .iter()
                    .filter_map(|v| v.as_str())
                    .collect::<Vec<_>>()
                    .join(": ");
                (other.replace('_', " "), String::new(), detail)
            }
        };
        let mut detail = detail;
        detail.truncate(60);
        out.push_str(&format!(
            "  {:<26} {:<5} {:<12} {:>8}  {detail}\n",
            text(&campaign["campaign_id"]),
            text(&campaign["kind"]),
            kind,
            price
        ));
    }
    out
}

/// The books after the sale, read back from the ledger: what the publisher earned and may be paid, and each winner's
/// balance.
pub fn books(state: &AppState, outcome: &Value) -> Result<String> {
    let mut out = String::from("the books after the sale (GET /v1/publisher/balance, GET /v1/buyer/funds):\n");
    let publisher_id = text(&outcome["trace"]["publisher_id"]);
    let hold_days = state.settings.payout_hold_days;
    let hold_ms = i64::from(hold_days) * 86_400_000;
    let publisher = state.store.publisher_balance(publisher_id, state.now(), hold_ms)?;
    out.push_str(&format!(
        "  publisher {publisher_id}: balance {}, payable {} (each sale's payout is held {hold_days} days for returns)\n",
        signed_dollars(publisher.balance_cents),
        signed_dollars(publisher.payable_cents),
    ));
    for sale in outcome["sales"].as_array().into_iter().flatten() {
        let buyer_id = text(&sale["buyer_id"]);
        let balance = state.store.balance(&Account::buyer(buyer_id), None)?;
        let limit = state.exchange().buyer(buyer_id).and_then(|b| b.credit_limit_cents);
        let terms = match limit {
            Some(limit) => format!("credit limit {}", signed_dollars(limit as i64)),
            None => "no credit limit: invoiced for what it buys".to_owned(),
        };
        out.push_str(&format!("  buyer {buyer_id}: balance {} ({terms})\n", signed_dollars(balance)));
    }
    Ok(out)
}

/// One line per HTTP buyer: how many pings and posts its server received, and whether any ping held PII.
pub fn received(buyer: &HttpBuyer, lead: &Lead) -> String {
    let (pings, posts) = buyer.received();
    format!(
        "{:<24} {} ping(s), PII in pings: {:<5} {} post(s){}",
        buyer.campaign_id(),
        pings.len(),
        pings.iter().any(|body| holds_pii(body, lead)),
        posts.len(),
        if posts.iter().any(|body| body.contains(&lead.consumer.phone)) { " with the full lead" } else { "" },
    )
}

/// Whether a request body holds any of the lead's personal values.
fn holds_pii(body: &str, lead: &Lead) -> bool {
    let c = &lead.consumer;
    let values = [&c.first_name, &c.last_name, &c.phone, &c.email, &c.street, &c.zip5, &c.date_of_birth];
    values.iter().any(|v| !v.is_empty() && body.contains(v.as_str()))
        || lead.consent.ip.as_deref().is_some_and(|ip| body.contains(ip))
}
