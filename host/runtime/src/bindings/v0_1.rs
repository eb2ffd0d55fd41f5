//! Bindings for contract `pingpost:plugin@0.1.0`, generated from `sdk/wit/since_v0.1.0`, and the conversions between
//! its types and [`pingpost_model`]. The redactor world reuses the buyer world's `types` and `host` modules so every
//! type exists once.
//!
//! A 0.1.0 buyer gets the latest contract's ping without what 0.1.0 lacks (the sub id) and a bid context without the
//! sale and the floor; a 0.1.0 redactor's ping has no sub id, and it cannot redact a PII-free ping request.

use super::{InvalidPing, v0_2};
use pingpost_model::{self as model, US_STATES};

/// The contract version these bindings implement.
pub const VERSION: &str = "0.1.0";

/// The buyer world.
#[allow(missing_docs, clippy::all)]
pub mod buyer {
    wasmtime::component::bindgen!({
        path: "../../sdk/wit/since_v0.1.0",
        world: "pingpost:plugin/buyer",
    });
}

/// The redactor world, sharing the buyer world's types.
#[allow(missing_docs, clippy::all)]
pub mod redactor {
    wasmtime::component::bindgen!({
        path: "../../sdk/wit/since_v0.1.0",
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

super::common_conversions!("../../../../sdk/wit/since_v0.1.0/plugin.wit");

/// The 0.1.0 form of a ping already in the latest form (checked there): the same values without the sub id.
impl From<&v0_2::types::Ping> for types::Ping {
    fn from(p: &v0_2::types::Ping) -> Self {
        types::Ping {
            vertical: p.vertical.clone(),
            // Both versions list the states in the same order (each version's test checks its order against the
            // model's table).
            state: WIT_STATES[p.state as usize],
            zip3: p.zip3,
            age: p.age,
            gender: p.gender.map(|g| model::Gender::from(g).into()),
            consent: types::ConsentFlags {
                trusted_form: p.consent.trusted_form,
                jornaya: p.consent.jornaya,
                tcpa_text: p.consent.tcpa_text,
            },
            publisher_id: p.publisher_id.clone(),
            source_id: p.source_id.clone(),
            extra: p.extra.clone(),
        }
    }
}

/// A ping a 0.1.0 redactor returned, once [`check_ping`] passed: it has no sub id.
impl From<types::Ping> for model::Ping {
    fn from(p: types::Ping) -> Self {
        model::Ping {
            vertical: p.vertical,
            state: state_code(p.state).to_owned(),
            zip3: format!("{:03}", p.zip3),
            age: p.age,
            gender: p.gender.map(Into::into),
            consent: model::ConsentFlags {
                trusted_form: p.consent.trusted_form,
                jornaya: p.consent.jornaya,
                tcpa_text: p.consent.tcpa_text,
            },
            publisher_id: p.publisher_id,
            source_id: p.source_id,
            sub_id: String::new(),
            extra: form_urlencoded::parse(p.extra.as_bytes()).into_owned().collect(),
        }
    }
}

/// The 0.1.0 bid context: the time and the caps left (0.1.0 has no sale or floor).
impl From<&model::BidContext> for types::BidContext {
    fn from(c: &model::BidContext) -> Self {
        types::BidContext { now_unix_ms: c.now_unix_ms, caps_left: (&c.caps_left).into() }
    }
}

/// The 0.1.0 lead: the lead without its sub id.
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

/// Bytes of the strings in a redactor's answer: what the output cap counts.
pub fn redaction_string_bytes(r: &Result<types::Ping, String>) -> usize {
    match r {
        Ok(p) => p.vertical.len() + p.publisher_id.len() + p.source_id.len() + p.extra.len(),
        Err(message) => message.len(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_latest_ping_reaches_a_0_1_buyer_without_its_sub_id() {
        let latest = v0_2::types::Ping::try_from(&v0_2::tests::ping()).expect("a valid ping");
        let old = types::Ping::from(&latest);
        assert_eq!((old.state, old.zip3, old.age), (types::UsState::Fl, 21, 58));
        assert_eq!(old.extra, latest.extra);
        assert_eq!(model::Ping::from(old), model::Ping { sub_id: String::new(), ..v0_2::tests::ping() });
    }

    #[test]
    fn every_state_keeps_its_place_across_versions() {
        for code in US_STATES {
            let latest = v0_2::wit_state(code).expect("a state");
            assert_eq!(WIT_STATES[latest as usize], wit_state(code).expect("a state"));
        }
    }
}
