//! Bindings for contract `pingpost:plugin@0.1.0`, generated from `sdk/wit/since_v0.1.0`, and the conversions between
//! its types and [`pingpost_model`]. The redactor world reuses the buyer world's `types` and `host` modules so every
//! type exists once.

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

/// The contract's states in its order, matching [`US_STATES`]' codes one for one (a test checks both against the WIT).
const WIT_STATES: [types::UsState; 51] = {
    use types::UsState::*;
    [
        Al, Ak, Az, Ar, Ca, Co, Ct, De, Dc, Fl, Ga, Hi, Id, Il, In, Ia, Ks, Ky, La, Me, Md, Ma, Mi, Mn, Ms, Mo, Mt, Ne,
        Nv, Nh, Nj, Nm, Ny, Nc, Nd, Oh, Ok, Or, Pa, Ri, Sc, Sd, Tn, Tx, Ut, Vt, Va, Wa, Wv, Wi, Wy,
    ]
};

/// The USPS code of a contract state: `FL`.
pub fn state_code(state: types::UsState) -> &'static str {
    // The enum is `repr(u8)` in contract order, and `WIT_STATES` / `US_STATES` follow that order.
    US_STATES[state as usize]
}

/// The contract state of an upper-case USPS code, if it is one of the 51.
pub fn wit_state(code: &str) -> Option<types::UsState> {
    US_STATES.iter().position(|c| *c == code).map(|index| WIT_STATES[index])
}

/// Why a ping does not fit the contract's ping record.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("the ping's {field} {reason}")]
pub struct InvalidPing {
    /// The ping field at fault: `state`, `zip3` or `extra`.
    pub field: &'static str,
    /// What is wrong with it (never the value of an extra, which the guard treats as possibly personal).
    pub reason: String,
}

impl TryFrom<&model::Ping> for types::Ping {
    type Error = InvalidPing;

    fn try_from(p: &model::Ping) -> Result<Self, InvalidPing> {
        let state = wit_state(&p.state)
            .ok_or_else(|| InvalidPing { field: "state", reason: format!("{:?} is not a USPS code", p.state) })?;
        let zip3 = match p.zip3.as_bytes() {
            [a, b, c] if [a, b, c].iter().all(|d| d.is_ascii_digit()) => {
                u16::from(a - b'0') * 100 + u16::from(b - b'0') * 10 + u16::from(c - b'0')
            }
            _ => return Err(InvalidPing { field: "zip3", reason: "is not three digits".into() }),
        };
        let extra = if p.extra.is_empty() {
            String::new()
        } else {
            form_urlencoded::Serializer::new(String::new()).extend_pairs(&p.extra).finish()
        };
        Ok(types::Ping {
            vertical: p.vertical.clone(),
            state,
            zip3,
            age: p.age,
            gender: p.gender.map(Into::into),
            consent: types::ConsentFlags {
                trusted_form: p.consent.trusted_form,
                jornaya: p.consent.jornaya,
                tcpa_text: p.consent.tcpa_text,
            },
            publisher_id: p.publisher_id.clone(),
            source_id: p.source_id.clone(),
            extra,
        })
    }
}

/// Checks what the contract's types cannot say about a ping a plugin returned: a ZIP3 up to 999 and extras that are
/// well-formed `application/x-www-form-urlencoded` text naming each key once.
pub fn check_ping(p: &types::Ping) -> Result<(), InvalidPing> {
    if p.zip3 > 999 {
        return Err(InvalidPing { field: "zip3", reason: format!("{} is above 999", p.zip3) });
    }
    let mut keys = std::collections::BTreeSet::new();
    for (key, value) in form_urlencoded::parse(p.extra.as_bytes()) {
        // The decoder replaces bad UTF-8 with U+FFFD instead of failing: refuse that rather than pass on a guess.
        if key.contains('\u{FFFD}') || value.contains('\u{FFFD}') {
            return Err(InvalidPing { field: "extra", reason: "is not UTF-8 once decoded".into() });
        }
        if !keys.insert(key) {
            return Err(InvalidPing { field: "extra", reason: "names a key twice".into() });
        }
    }
    Ok(())
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
            extra: form_urlencoded::parse(p.extra.as_bytes()).into_owned().collect(),
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
        Ok(p) => p.vertical.len() + p.publisher_id.len() + p.source_id.len() + p.extra.len(),
        Err(message) => message.len(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ping() -> model::Ping {
        model::Ping {
            vertical: "health-insurance".into(),
            state: "FL".into(),
            zip3: "021".into(),
            age: 58,
            gender: Some(model::Gender::Female),
            consent: model::ConsentFlags { trusted_form: true, jornaya: false, tcpa_text: true },
            publisher_id: "sunshine-quotes".into(),
            source_id: "fb-ads".into(),
            extra: [("coverage_type", "family plan"), ("note", "a=b&c")]
                .into_iter()
                .map(|(k, v)| (k.to_owned(), v.to_owned()))
                .collect(),
        }
    }

    #[test]
    fn the_state_table_follows_the_contract() {
        let wit = include_str!("../../../../sdk/wit/since_v0.1.0/plugin.wit");
        let body = wit.split("enum us-state {").nth(1).and_then(|rest| rest.split('}').next()).expect("us-state");
        let cases: Vec<&str> = body.split(',').map(str::trim).filter(|case| !case.is_empty()).collect();
        assert_eq!(cases.len(), US_STATES.len());
        for (index, case) in cases.iter().enumerate() {
            assert_eq!(US_STATES[index], case.to_ascii_uppercase());
            assert_eq!(WIT_STATES[index] as usize, index, "{case}");
            assert_eq!(wit_state(US_STATES[index]), Some(WIT_STATES[index]));
            assert_eq!(state_code(WIT_STATES[index]), US_STATES[index]);
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
}
