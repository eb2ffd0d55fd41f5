//! The exchange's model types as the guest SDK's and back, for benches that run the buyer and redactor crates
//! natively (the floor a Wasm call is compared with, and the load test's HTTP buyers).

use pingpost::model::{self, Gender};

/// The SDK's gender.
pub fn sdk_gender(gender: Gender) -> pingpost_sdk::Gender {
    match gender {
        Gender::Female => pingpost_sdk::Gender::Female,
        Gender::Male => pingpost_sdk::Gender::Male,
        Gender::NonBinary => pingpost_sdk::Gender::NonBinary,
    }
}

/// The exchange's ping as the SDK's contract type, or which field does not fit it.
pub fn sdk_ping(ping: &model::Ping) -> Result<pingpost_sdk::Ping, String> {
    Ok(pingpost_sdk::Ping {
        vertical: ping.vertical.clone(),
        state: pingpost_sdk::UsState::from_code(&ping.state)
            .ok_or(format!("state {:?} is not a US state", ping.state))?,
        zip3: ping.zip3.parse().map_err(|_| format!("zip3 {:?} is not three digits", ping.zip3))?,
        age: ping.age,
        gender: ping.gender.map(sdk_gender),
        consent: pingpost_sdk::ConsentFlags {
            trusted_form: ping.consent.trusted_form,
            jornaya: ping.consent.jornaya,
            tcpa_text: ping.consent.tcpa_text,
        },
        publisher_id: ping.publisher_id.clone(),
        source_id: ping.source_id.clone(),
        sub_id: String::new(),
        extra: pingpost_sdk::Ping::encode_extra(&ping.extra),
    })
}

/// The exchange's reject code for the SDK's.
pub fn model_reject_code(code: pingpost_sdk::RejectCode) -> model::RejectCode {
    use pingpost_sdk::RejectCode as Sdk;
    match code {
        Sdk::Geography => model::RejectCode::Geography,
        Sdk::Age => model::RejectCode::Age,
        Sdk::Vertical => model::RejectCode::Vertical,
        Sdk::Consent => model::RejectCode::Consent,
        Sdk::Schedule => model::RejectCode::Schedule,
        Sdk::Cap => model::RejectCode::Cap,
        Sdk::Price => model::RejectCode::Price,
        Sdk::Duplicate => model::RejectCode::Duplicate,
        Sdk::Config => model::RejectCode::Config,
        Sdk::Other => model::RejectCode::Other,
    }
}
