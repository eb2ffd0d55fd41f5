//! A redactor of contract 0.1.0: keeps the vertical, state, ZIP3, age on the day, gender, consent presence and the
//! publisher and source ids of a lead; drops everything else, extras included.

// Exported only in Wasm: native linkers refuse the contract's export names.
#[cfg(target_arch = "wasm32")]
mod plugin {
    wit_bindgen::generate!({
        path: "../../../sdk/wit/since_v0.1.0",
        world: "pingpost:plugin/redactor",
    });

    use super::age_on;
    use exports::pingpost::plugin::redaction::Guest;
    use pingpost::plugin::types::{ConsentFlags, Lead, Ping, RedactContext, UsState};

    /// The contract's states in its order, by USPS code.
    const STATES: [(&str, UsState); 51] = {
        use UsState::*;
        [
            ("AL", Al),
            ("AK", Ak),
            ("AZ", Az),
            ("AR", Ar),
            ("CA", Ca),
            ("CO", Co),
            ("CT", Ct),
            ("DE", De),
            ("DC", Dc),
            ("FL", Fl),
            ("GA", Ga),
            ("HI", Hi),
            ("ID", Id),
            ("IL", Il),
            ("IN", In),
            ("IA", Ia),
            ("KS", Ks),
            ("KY", Ky),
            ("LA", La),
            ("ME", Me),
            ("MD", Md),
            ("MA", Ma),
            ("MI", Mi),
            ("MN", Mn),
            ("MS", Ms),
            ("MO", Mo),
            ("MT", Mt),
            ("NE", Ne),
            ("NV", Nv),
            ("NH", Nh),
            ("NJ", Nj),
            ("NM", Nm),
            ("NY", Ny),
            ("NC", Nc),
            ("ND", Nd),
            ("OH", Oh),
            ("OK", Ok),
            ("OR", Or),
            ("PA", Pa),
            ("RI", Ri),
            ("SC", Sc),
            ("SD", Sd),
            ("TN", Tn),
            ("TX", Tx),
            ("UT", Ut),
            ("VT", Vt),
            ("VA", Va),
            ("WA", Wa),
            ("WV", Wv),
            ("WI", Wi),
            ("WY", Wy),
        ]
    };

    struct PlainRedactor;

    impl Guest for PlainRedactor {
        fn configure(_publisher_id: String, _config: String) -> Result<(), String> {
            Ok(())
        }

        fn redact(lead: Lead, context: RedactContext) -> Result<Ping, String> {
            let code = lead.state.trim().to_ascii_uppercase();
            let state = STATES.iter().find(|(known, _)| *known == code).map(|(_, state)| *state);
            let zip3 = lead.zip5.get(..3).and_then(|digits| digits.parse().ok());
            let present = |value: &Option<String>| value.as_deref().is_some_and(|v| !v.trim().is_empty());
            Ok(Ping {
                vertical: lead.vertical.clone(),
                state: state.ok_or("state is not a USPS code")?,
                zip3: zip3.ok_or("zip5 is not five digits")?,
                age: age_on(&lead.date_of_birth, context.now_unix_ms).ok_or("date_of_birth is not YYYY-MM-DD")?,
                gender: lead.gender,
                consent: ConsentFlags {
                    trusted_form: present(&lead.trusted_form_url),
                    jornaya: present(&lead.jornaya_leadid),
                    tcpa_text: present(&lead.tcpa_text),
                },
                publisher_id: lead.publisher_id,
                source_id: lead.source_id,
                extra: String::new(),
            })
        }
    }

    export!(PlainRedactor);
}

/// Age in whole years at `now_unix_ms` (UTC) of someone born on `date` (`YYYY-MM-DD`).
pub fn age_on(date: &str, now_unix_ms: i64) -> Option<u8> {
    let mut parts = date.splitn(3, '-').map(str::parse::<i64>);
    let (year, month, day) = (parts.next()?.ok()?, parts.next()?.ok()?, parts.next()?.ok()?);
    let (now_year, now_month, now_day) = civil(now_unix_ms.div_euclid(86_400_000));
    let age = now_year - year - i64::from((now_month, now_day) < (month, day));
    u8::try_from(age).ok()
}

/// The civil date of a day count since 1970-01-01 (Howard Hinnant's algorithm).
fn civil(days: i64) -> (i64, i64, i64) {
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = doy - (153 * mp + 2) / 5 + 1;
    let month = if mp < 10 { mp + 3 } else { mp - 9 };
    (yoe + era * 400 + i64::from(month <= 2), month, day)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_age_turns_on_the_birthday() {
        // 2024-03-10T12:00:00Z.
        let noon = 19_792 * 86_400_000 + 12 * 3_600_000;
        assert_eq!(age_on("1984-03-10", noon), Some(40));
        assert_eq!(age_on("1984-03-11", noon), Some(39));
        assert_eq!(age_on("1984-3", noon), None);
    }
}
