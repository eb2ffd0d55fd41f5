//! Bindings for contract `pingpost:plugin@0.2.0`, generated from `sdk/wit/since_v0.2.0`, and the conversions between
//! its types and [`pingpost_model`] (which mirrors this version). The redactor world reuses the buyer world's `types`
//! and `host` modules so every type exists once.

use super::{InvalidPing, encode_extra, zip3_number};
use pingpost_model::{self as model, US_STATES};

/// The contract version these bindings implement.
pub const VERSION: &str = "0.2.0";

/// The buyer world.
#[allow(missing_docs, clippy::all)]
pub mod buyer {
    wasmtime::component::bindgen!({
        path: "../../sdk/wit/since_v0.2.0",
        world: "pingpost:plugin/buyer",
    });
}

/// The redactor world, sharing the buyer world's types.
#[allow(missing_docs, clippy::all)]
pub mod redactor {
    wasmtime::component::bindgen!({
        path: "../../sdk/wit/since_v0.2.0",
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

super::common_conversions!("../../../../sdk/wit/since_v0.2.0/plugin.wit");

impl TryFrom<&model::Ping> for types::Ping {
    type Error = InvalidPing;

    fn try_from(p: &model::Ping) -> Result<Self, InvalidPing> {
        let state = wit_state(&p.state)
            .ok_or_else(|| InvalidPing { field: "state", reason: format!("{:?} is not a USPS code", p.state) })?;
        Ok(types::Ping {
            vertical: p.vertical.clone(),
            state,
            zip3: zip3_number(&p.zip3)?,
            age: p.age,
            gender: p.gender.map(Into::into),
            consent: types::ConsentFlags {
                trusted_form: p.consent.trusted_form,
                jornaya: p.consent.jornaya,
                tcpa_text: p.consent.tcpa_text,
            },
            publisher_id: p.publisher_id.clone(),
            source_id: p.source_id.clone(),
            sub_id: p.sub_id.clone(),
            extra: encode_extra(&p.extra),
        })
    }
}

/// A ping a plugin returned, once [`check_ping`] passed (a repeated extra key would keep its last value).
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
            sub_id: p.sub_id,
            extra: form_urlencoded::parse(p.extra.as_bytes()).into_owned().collect(),
        }
    }
}

impl From<model::SaleKind> for types::Sale {
    fn from(s: model::SaleKind) -> Self {
        match s {
            model::SaleKind::Exclusive => types::Sale::Exclusive,
            model::SaleKind::Shared => types::Sale::Shared,
        }
    }
}

impl From<&model::BidContext> for types::BidContext {
    fn from(c: &model::BidContext) -> Self {
        types::BidContext {
            now_unix_ms: c.now_unix_ms,
            caps_left: (&c.caps_left).into(),
            sale: c.sale.into(),
            floor_cents: c.floor_cents,
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
            sub_id: l.sub_id.clone(),
            extra: l.extra.iter().map(|(k, v)| (k.clone(), v.clone())).collect(),
        }
    }
}

impl From<&model::PingRequest> for types::PingRequest {
    fn from(r: &model::PingRequest) -> Self {
        types::PingRequest {
            vertical: r.vertical.clone(),
            state: r.state.clone(),
            zip: r.zip.clone(),
            age: r.age,
            gender: r.gender.map(Into::into),
            trusted_form_url: r.trusted_form_url.clone(),
            jornaya_leadid: r.jornaya_leadid.clone(),
            tcpa_text: r.tcpa_text,
            publisher_id: r.publisher_id.clone(),
            source_id: r.source_id.clone(),
            sub_id: r.sub_id.clone(),
            extra: r.extra.iter().map(|(k, v)| (k.clone(), v.clone())).collect(),
        }
    }
}

/// Bytes of the strings in a redactor's answer: what the output cap counts.
pub fn redaction_string_bytes(r: &Result<types::Ping, String>) -> usize {
    match r {
        Ok(p) => p.vertical.len() + p.publisher_id.len() + p.source_id.len() + p.sub_id.len() + p.extra.len(),
        Err(message) => message.len(),
    }
}

#[cfg(test)]
pub(super) mod tests {
    use super::*;

    pub(in crate::bindings) fn ping() -> model::Ping {
        model::Ping {
            vertical: "health-insurance".into(),
            state: "FL".into(),
            zip3: "021".into(),
            age: 58,
            gender: Some(model::Gender::Female),
            consent: model::ConsentFlags { trusted_form: true, jornaya: false, tcpa_text: true },
            publisher_id: "sunshine-quotes".into(),
            source_id: "fb-ads".into(),
            sub_id: "placement-7".into(),
            extra: [("coverage_type", "family plan"), ("note", "a=b&c")]
                .into_iter()
                .map(|(k, v)| (k.to_owned(), v.to_owned()))
                .collect(),
        }
    }

    #[test]
    fn a_ping_crosses_the_contract_and_back_unchanged() {
        let wit = types::Ping::try_from(&ping()).expect("a valid ping");
        assert_eq!((wit.state, wit.zip3), (types::UsState::Fl, 21));
        assert_eq!(wit.extra, "coverage_type=family+plan&note=a%3Db%26c");
        check_ping(&wit).expect("what the host makes passes its own check");
        assert_eq!(model::Ping::from(wit), ping());
        let bare = model::Ping { extra: Default::default(), ..ping() };
        assert_eq!(types::Ping::try_from(&bare).expect("valid").extra, "");
    }

    #[test]
    fn a_ping_outside_the_contract_is_refused_naming_the_field() {
        let field = |p: model::Ping| types::Ping::try_from(&p).expect_err("invalid").field;
        assert_eq!(field(model::Ping { state: "PR".into(), ..ping() }), "state");
        assert_eq!(field(model::Ping { state: "fl".into(), ..ping() }), "state");
        assert_eq!(field(model::Ping { zip3: "33131".into(), ..ping() }), "zip3");
        assert_eq!(field(model::Ping { zip3: "3a1".into(), ..ping() }), "zip3");
        assert_eq!(field(model::Ping { zip3: "".into(), ..ping() }), "zip3");
    }

    #[test]
    fn a_plugins_ping_is_checked_where_the_types_cannot() {
        let good = types::Ping::try_from(&ping()).expect("valid");
        let check = |p: types::Ping| check_ping(&p).map_err(|e| e.field);
        assert_eq!(check(types::Ping { zip3: 999, ..good.clone() }), Ok(()));
        assert_eq!(check(types::Ping { zip3: 1000, ..good.clone() }), Err("zip3"));
        assert_eq!(check(types::Ping { extra: "a=1&b=2&a=3".into(), ..good.clone() }), Err("extra"));
        assert_eq!(check(types::Ping { extra: "a=%FF".into(), ..good.clone() }), Err("extra"));
        assert_eq!(check(types::Ping { extra: "a=%E2%9C%93".into(), ..good }), Ok(()));
    }

    #[test]
    fn the_bid_context_says_the_sale_and_the_floor() {
        let context = model::BidContext { sale: model::SaleKind::Shared, floor_cents: 800, ..model::BidContext::at(7) };
        let wit = types::BidContext::from(&context);
        assert_eq!((wit.now_unix_ms, wit.sale, wit.floor_cents), (7, types::Sale::Shared, 800));
    }
}
