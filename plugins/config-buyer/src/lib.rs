//! A config-driven buyer: one module serves many campaigns, each described by its JSON config (see the README for
//! the schema). It filters on vertical, state, age, consent evidence and buying hours, then prices the ping from a
//! base price and modifiers.

mod config;
mod echo;
mod schedule;

use pingpost_sdk::{BidContext, Buyer, Decision, LogLevel, Ping, RejectCode, Sale};

use crate::config::{Config, ConsentFlag, Modifier};

/// The buyer for one campaign, built from its config.
pub struct ConfigBuyer {
    config: Config,
}

impl Buyer for ConfigBuyer {
    fn new(config: &str) -> Result<Self, String> {
        Config::parse(config).map(|config| ConfigBuyer { config })
    }

    fn bid(&self, ping: &Ping, context: &BidContext) -> Decision {
        if self.config.echo_input {
            pingpost_sdk::log(LogLevel::Info, &echo::input_json(ping, context).to_string());
        }
        match self.filter(ping, context).and_then(|()| self.price(ping, context)) {
            Ok(price_cents) => Decision::bid(price_cents),
            Err((code, message)) => Decision::reject(code, message),
        }
    }
}

type Refusal = (RejectCode, String);

fn has(ping: &Ping, flag: ConsentFlag) -> bool {
    match flag {
        ConsentFlag::TrustedForm => ping.consent.trusted_form,
        ConsentFlag::Jornaya => ping.consent.jornaya,
        ConsentFlag::TcpaText => ping.consent.tcpa_text,
    }
}

impl ConfigBuyer {
    /// The filters, in the order a human would ask them: product, place, person, paperwork, hour.
    fn filter(&self, ping: &Ping, context: &BidContext) -> Result<(), Refusal> {
        let c = &self.config;
        if let Some(verticals) = &c.verticals
            && !verticals.contains(&ping.vertical)
        {
            return Err((RejectCode::Vertical, format!("vertical {:?} is not bought", ping.vertical)));
        }
        if let Some(states) = &c.states
            && !states.contains(&ping.state)
        {
            return Err((RejectCode::Geography, format!("state {} is not bought", ping.state)));
        }
        if c.min_age.is_some_and(|min| ping.age < min) || c.max_age.is_some_and(|max| ping.age > max) {
            let (min, max) = (c.min_age.unwrap_or(0), c.max_age.unwrap_or(u8::MAX));
            return Err((RejectCode::Age, format!("age {} is outside {min}-{max}", ping.age)));
        }
        if let Some(missing) = c.require_consent.iter().find(|flag| !has(ping, **flag)) {
            return Err((RejectCode::Consent, format!("consent evidence {missing:?} is required")));
        }
        if let Some(schedule) = &c.schedule {
            schedule.admits(context.now_unix_ms).map_err(|why| (RejectCode::Schedule, why))?;
        }
        Ok(())
    }

    /// The base price plus every additive modifier that applies, then scaled by the sum of the percent modifiers
    /// that apply, rounded down to whole cents.
    fn price(&self, ping: &Ping, context: &BidContext) -> Result<u32, Refusal> {
        let m = &self.config.modifiers;
        let applying = m
            .state
            .get(&ping.state)
            .into_iter()
            .chain(m.age_bands.iter().filter(|b| (b.min_age..=b.max_age).contains(&ping.age)).map(|b| &b.modifier))
            .chain(m.consent.iter().filter(|(flag, _)| has(ping, **flag)).map(|(_, modifier)| modifier))
            .chain(m.shared.iter().filter(|_| context.sale == Sale::Shared))
            .chain(m.for_source(&ping.source_id, &ping.sub_id));
        let (mut add_cents, mut percent) = (0i128, 0i128);
        for modifier in applying {
            match *modifier {
                Modifier::AddCents(cents) => add_cents += i128::from(cents),
                Modifier::Percent(p) => percent += i128::from(p),
            }
        }
        let price = (i128::from(self.config.base_price_cents) + add_cents) * (100 + percent) / 100;
        let price = u32::try_from(price.max(0)).unwrap_or(u32::MAX);
        let floor = self.config.floor_cents.unwrap_or(1);
        if price < floor {
            return Err((RejectCode::Price, format!("price {price} cents is under the floor of {floor} cents")));
        }
        Ok(price)
    }
}

pingpost_sdk::register_buyer!(ConfigBuyer);

#[cfg(test)]
mod tests;
