//! Bindings for contract `pingpost:plugin@0.1.0`, generated from `sdk/wit/since_v0.1.0`, and the conversions between
//! its types and [`crate::model`]. The redactor world reuses the buyer world's `types` and `host` modules so every
//! type exists once.

use crate::model;

/// The contract version these bindings implement.
pub const VERSION: &str = "0.1.0";

/// The buyer world.
#[allow(missing_docs, clippy::all)]
pub mod buyer {
    wasmtime::component::bindgen!({
        path: "../sdk/wit/since_v0.1.0",
        world: "pingpost:plugin/buyer",
    });
}

/// The redactor world, sharing the buyer world's types.
#[allow(missing_docs, clippy::all)]
pub mod redactor {
    wasmtime::component::bindgen!({
        path: "../sdk/wit/since_v0.1.0",
        world: "pingpost:plugin/redactor",
        with: {
            "pingpost:plugin/types": super::buyer::pingpost::plugin::types,
            "pingpost:plugin/host": super::buyer::pingpost::plugin::host,
        },
    });
}

pub use buyer::pingpost::plugin::host;
pub use buyer::pingpost::plugin::types;
pub use buyer::{Buyer, BuyerPre};
pub use redactor::{Redactor, RedactorPre};

impl From<types::Gender> for model::Gender {
    fn from(g: types::Gender) -> Self {
        match g {
            types::Gender::Female => model::Gender::Female,
            types::Gender::Male => model::Gender::Male,
            types::Gender::NonBinary => model::Gender::NonBinary,
        }
    }
}

impl From<model::Gender> for types::Gender {
    fn from(g: model::Gender) -> Self {
        match g {
            model::Gender::Female => types::Gender::Female,
            model::Gender::Male => types::Gender::Male,
            model::Gender::NonBinary => types::Gender::NonBinary,
        }
    }
}

impl From<&model::Ping> for types::Ping {
    fn from(p: &model::Ping) -> Self {
        types::Ping {
            vertical: p.vertical.clone(),
            state: p.state.clone(),
            zip3: p.zip3.clone(),
            age: p.age,
            gender: p.gender.map(Into::into),
            consent: types::ConsentFlags {
                trusted_form: p.consent.trusted_form,
                jornaya: p.consent.jornaya,
                tcpa_text: p.consent.tcpa_text,
            },
            publisher_id: p.publisher_id.clone(),
            source_id: p.source_id.clone(),
            extra: p.extra.iter().map(|(k, v)| (k.clone(), v.clone())).collect(),
        }
    }
}

impl From<types::Ping> for model::Ping {
    fn from(p: types::Ping) -> Self {
        model::Ping {
            vertical: p.vertical,
            state: p.state,
            zip3: p.zip3,
            age: p.age,
            gender: p.gender.map(Into::into),
            consent: model::ConsentFlags {
                trusted_form: p.consent.trusted_form,
                jornaya: p.consent.jornaya,
                tcpa_text: p.consent.tcpa_text,
            },
            publisher_id: p.publisher_id,
            source_id: p.source_id,
            extra: p.extra.into_iter().collect(),
        }
    }
}

impl From<&model::CapsLeft> for types::CapsLeft {
    fn from(c: &model::CapsLeft) -> Self {
        types::CapsLeft {
            leads_hour: c.leads_hour,
            leads_day: c.leads_day,
            leads_month: c.leads_month,
            spend_day_cents: c.spend_day_cents,
            spend_month_cents: c.spend_month_cents,
        }
    }
}

impl From<&model::BidContext> for types::BidContext {
    fn from(c: &model::BidContext) -> Self {
        types::BidContext { now_unix_ms: c.now_unix_ms, caps_left: (&c.caps_left).into() }
    }
}

impl From<types::RejectCode> for model::RejectCode {
    fn from(c: types::RejectCode) -> Self {
        match c {
            types::RejectCode::Geography => model::RejectCode::Geography,
            types::RejectCode::Age => model::RejectCode::Age,
            types::RejectCode::Vertical => model::RejectCode::Vertical,
            types::RejectCode::Consent => model::RejectCode::Consent,
            types::RejectCode::Schedule => model::RejectCode::Schedule,
            types::RejectCode::Cap => model::RejectCode::Cap,
            types::RejectCode::Price => model::RejectCode::Price,
            types::RejectCode::Duplicate => model::RejectCode::Duplicate,
            types::RejectCode::Config => model::RejectCode::Config,
            types::RejectCode::Other => model::RejectCode::Other,
        }
    }
}

impl From<types::Decision> for model::Decision {
    fn from(d: types::Decision) -> Self {
        match d {
            types::Decision::Bid(b) => model::Decision::Bid(model::Bid {
                price_cents: b.price_cents,
                buyer_ref: b.buyer_ref,
                ttl_ms: b.ttl_ms,
            }),
            types::Decision::Reject(r) => {
                model::Decision::Reject(model::Rejection { code: r.code.into(), message: r.message })
            }
        }
    }
}

impl From<types::LogLevel> for model::LogLevel {
    fn from(l: types::LogLevel) -> Self {
        match l {
            types::LogLevel::Trace => model::LogLevel::Trace,
            types::LogLevel::Debug => model::LogLevel::Debug,
            types::LogLevel::Info => model::LogLevel::Info,
            types::LogLevel::Warn => model::LogLevel::Warn,
            types::LogLevel::Error => model::LogLevel::Error,
        }
    }
}

impl From<&model::Lead> for types::Lead {
    fn from(l: &model::Lead) -> Self {
        let c = &l.consumer;
        types::Lead {
            vertical: l.vertical.clone(),
            first_name: c.first_name.clone(),
            last_name: c.last_name.clone(),
            phone: c.phone.clone(),
            email: c.email.clone(),
            street: c.street.clone(),
            city: c.city.clone(),
            state: c.state.clone(),
            zip5: c.zip5.clone(),
            date_of_birth: c.date_of_birth.clone(),
            gender: c.gender.map(Into::into),
            trusted_form_url: l.consent.trusted_form_url.clone(),
            jornaya_leadid: l.consent.jornaya_leadid.clone(),
            tcpa_text: l.consent.tcpa_text.clone(),
            ip: l.consent.ip.clone(),
            user_agent: l.consent.user_agent.clone(),
            publisher_id: l.publisher_id.clone(),
            source_id: l.source_id.clone(),
            extra: l.extra.iter().map(|(k, v)| (k.clone(), v.clone())).collect(),
        }
    }
}

impl From<&model::RedactContext> for types::RedactContext {
    fn from(c: &model::RedactContext) -> Self {
        types::RedactContext { now_unix_ms: c.now_unix_ms }
    }
}

/// Bytes of the strings in a decision: what the output cap counts.
pub fn decision_string_bytes(d: &types::Decision) -> usize {
    match d {
        types::Decision::Bid(b) => b.buyer_ref.as_ref().map_or(0, String::len),
        types::Decision::Reject(r) => r.message.len(),
    }
}

/// Bytes of the strings in a redactor's answer: what the output cap counts.
pub fn redaction_string_bytes(r: &Result<types::Ping, String>) -> usize {
    match r {
        Ok(p) => {
            p.vertical.len()
                + p.state.len()
                + p.zip3.len()
                + p.publisher_id.len()
                + p.source_id.len()
                + p.extra.iter().map(|(k, v)| k.len() + v.len()).sum::<usize>()
        }
        Err(message) => message.len(),
    }
}
