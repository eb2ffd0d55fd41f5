//! Host bindings, one module per released contract version (`sdk/wit/since_vX.Y.Z/`), each with its conversions
//! to and from [`pingpost_model`], which mirrors the latest version. A plugin runs on the bindings of the version it
//! was built against: the model's ping is converted to the latest contract's form once per auction ([`v0_2`]), and
//! from that to an older form only when a buyer of that version is called.

pub mod v0_1;
pub mod v0_2;

/// The contract versions the host runs, oldest first.
pub const VERSIONS: [&str; 2] = [v0_1::VERSION, v0_2::VERSION];

/// Why a ping does not fit the contract's ping record.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("the ping's {field} {reason}")]
pub struct InvalidPing {
    /// The ping field at fault: `state`, `zip3` or `extra`.
    pub field: &'static str,
    /// What is wrong with it (never the value of an extra, which the guard treats as possibly personal).
    pub reason: String,
}

/// A three-digit ZIP3 as the contract's number (`"021"` is 21).
fn zip3_number(zip3: &str) -> Result<u16, InvalidPing> {
    match zip3.as_bytes() {
        [a, b, c] if [a, b, c].iter().all(|d| d.is_ascii_digit()) => {
            Ok(u16::from(a - b'0') * 100 + u16::from(b - b'0') * 10 + u16::from(c - b'0'))
        }
        _ => Err(InvalidPing { field: "zip3", reason: "is not three digits".into() }),
    }
}

/// Extras as the contract's `application/x-www-form-urlencoded` string (empty when there are none).
fn encode_extra(extra: &std::collections::BTreeMap<String, String>) -> String {
    if extra.is_empty() {
        String::new()
    } else {
        form_urlencoded::Serializer::new(String::new()).extend_pairs(extra).finish()
    }
}

/// Checks what the contract's types cannot say about a ping a plugin returned: a ZIP3 up to 999 and extras that are
/// well-formed `application/x-www-form-urlencoded` text naming each key once.
fn check_zip3_and_extra(zip3: u16, extra: &str) -> Result<(), InvalidPing> {
    if zip3 > 999 {
        return Err(InvalidPing { field: "zip3", reason: format!("{zip3} is above 999") });
    }
    let mut keys = std::collections::BTreeSet::new();
    for (key, value) in form_urlencoded::parse(extra.as_bytes()) {
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

/// The conversions every contract version shares, for a version module's generated `types` (the types of the same
/// name have the same shape in every version so far): gender, states, caps, decisions, log levels and the redact
/// context, the checks of a returned ping, and what the output cap counts of a decision.
macro_rules! common_conversions {
    ($wit:literal) => {
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

        /// The contract's states in its order, matching [`US_STATES`]' codes one for one (a test checks both against
        /// the WIT).
        const WIT_STATES: [types::UsState; 51] = {
            use types::UsState::*;
            [
                Al, Ak, Az, Ar, Ca, Co, Ct, De, Dc, Fl, Ga, Hi, Id, Il, In, Ia, Ks, Ky, La, Me, Md, Ma, Mi, Mn, Ms, Mo,
                Mt, Ne, Nv, Nh, Nj, Nm, Ny, Nc, Nd, Oh, Ok, Or, Pa, Ri, Sc, Sd, Tn, Tx, Ut, Vt, Va, Wa, Wv, Wi, Wy,
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

        /// Checks what the contract's types cannot say about a ping a plugin returned: a ZIP3 up to 999 and extras
        /// that are well-formed `application/x-www-form-urlencoded` text naming each key once.
        pub fn check_ping(p: &types::Ping) -> Result<(), InvalidPing> {
            super::check_zip3_and_extra(p.zip3, &p.extra)
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

        #[cfg(test)]
        #[test]
        fn the_state_table_follows_the_contract() {
            let wit = include_str!($wit);
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
    };
}
use common_conversions;
