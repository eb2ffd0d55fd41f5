//! The `echo_input` log line: the ping and context exactly as received, as JSON.
//!
//! The shape is the host's model JSON (`{"ping": Ping, "context": BidContext}`, snake_case, `extra` as an object,
//! `gender` left out when absent), so a test can parse the line straight back into the host's types and compare.

use pingpost_sdk::{BidContext, Gender, Ping, Sale};
use serde_json::{Map, Value, json};

/// The JSON of what the buyer was given.
pub fn input_json(ping: &Ping, context: &BidContext) -> Value {
    let mut ping_json = json!({
        "vertical": ping.vertical,
        "state": ping.state.code(),
        "zip3": ping.zip3_digits(),
        "age": ping.age,
        "consent": {
            "trusted_form": ping.consent.trusted_form,
            "jornaya": ping.consent.jornaya,
            "tcpa_text": ping.consent.tcpa_text,
        },
        "publisher_id": ping.publisher_id,
        "source_id": ping.source_id,
        "extra": ping.extras().map(|(k, v)| (k.into_owned(), Value::from(v.into_owned()))).collect::<Map<_, _>>(),
    });
    if let (false, Some(fields)) = (ping.sub_id.is_empty(), ping_json.as_object_mut()) {
        fields.insert("sub_id".to_owned(), Value::from(ping.sub_id.as_str()));
    }
    if let (Some(gender), Some(fields)) = (ping.gender, ping_json.as_object_mut()) {
        let name = match gender {
            Gender::Female => "female",
            Gender::Male => "male",
            Gender::NonBinary => "non_binary",
        };
        fields.insert("gender".to_owned(), Value::from(name));
    }
    let caps = &context.caps_left;
    json!({
        "ping": ping_json,
        "context": {
            "now_unix_ms": context.now_unix_ms,
            "caps_left": {
                "leads_hour": caps.leads_hour,
                "leads_day": caps.leads_day,
                "leads_month": caps.leads_month,
                "spend_day_cents": caps.spend_day_cents,
                "spend_month_cents": caps.spend_month_cents,
            },
            "sale": match context.sale {
                Sale::Exclusive => "exclusive",
                Sale::Shared => "shared",
            },
            "floor_cents": context.floor_cents,
        },
    })
}
