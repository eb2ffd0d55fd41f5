//! The campaign config: its JSON schema, parsed and checked once when the campaign's instance first sees it.

use std::collections::BTreeMap;

use pingpost_sdk::UsState;
use serde::Deserialize;

use crate::schedule::Schedule;

/// A campaign's config as the operator writes it. Unknown fields are refused so a typo cannot silently widen a filter.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Config {
    /// Two-letter state codes bought (any case); absent means every state.
    #[serde(default)]
    pub states: Option<Vec<UsState>>,
    /// Youngest age bought, inclusive.
    #[serde(default)]
    pub min_age: Option<u8>,
    /// Oldest age bought, inclusive.
    #[serde(default)]
    pub max_age: Option<u8>,
    /// Verticals bought; absent means every vertical.
    #[serde(default)]
    pub verticals: Option<Vec<String>>,
    /// Consent evidence a ping must carry.
    #[serde(default)]
    pub require_consent: Vec<ConsentFlag>,
    /// The price before modifiers, in cents.
    pub base_price_cents: u32,
    /// Adjustments to the base price.
    #[serde(default)]
    pub modifiers: Modifiers,
    /// When the campaign buys; absent means always.
    #[serde(default)]
    pub schedule: Option<Schedule>,
    /// The lowest price worth bidding, in cents; a lower final price is a `price` rejection.
    #[serde(default)]
    pub floor_cents: Option<u32>,
    /// Logs the ping and context received, as JSON, before deciding.
    #[serde(default)]
    pub echo_input: bool,
}

/// One piece of consent evidence, named as in the ping's `consent` record.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ConsentFlag {
    /// A TrustedForm certificate URL is present.
    TrustedForm,
    /// A Jornaya LeadiD token is present.
    Jornaya,
    /// TCPA consent language was shown and accepted.
    TcpaText,
}

/// A price adjustment: written `{"add_cents": 150}` or `{"percent": -10}`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "snake_case", deny_unknown_fields)]
pub enum Modifier {
    /// Adds (or, negative, subtracts) cents.
    AddCents(i64),
    /// Adds (or, negative, subtracts) a percentage of the price after the additive modifiers.
    Percent(i64),
}

/// The price modifiers, by what of the ping they apply to.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Modifiers {
    /// By the ping's state code.
    #[serde(default)]
    pub state: BTreeMap<UsState, Modifier>,
    /// By age band; every band that holds the ping's age applies.
    #[serde(default)]
    pub age_bands: Vec<AgeBand>,
    /// By a consent flag being present on the ping.
    #[serde(default)]
    pub consent: BTreeMap<ConsentFlag, Modifier>,
    /// When the auction sells the lead shared (to several buyers) rather than exclusive: a shared lead is worth less.
    #[serde(default)]
    pub shared: Option<Modifier>,
    /// By where the lead comes from: a key `source` (the ping's source id) or `source/sub` (its source and sub id).
    /// Only the most specific key that matches applies: `source/sub`, else `source`.
    #[serde(default)]
    pub source: BTreeMap<String, Modifier>,
}

impl Modifiers {
    /// The source modifier for a lead from `source_id` and `sub_id`, if any.
    pub fn for_source(&self, source_id: &str, sub_id: &str) -> Option<&Modifier> {
        let exact = (!sub_id.is_empty()).then(|| self.source.get(&format!("{source_id}/{sub_id}"))).flatten();
        exact.or_else(|| self.source.get(source_id))
    }
}

/// A modifier for ages `min_age..=max_age`.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AgeBand {
    /// Youngest age in the band, inclusive.
    pub min_age: u8,
    /// Oldest age in the band, inclusive.
    pub max_age: u8,
    /// The adjustment for pings in the band.
    pub modifier: Modifier,
}

/// Whether `key` names a source (`source`) or a source and sub id (`source/sub`), each part non-empty.
fn valid_source_key(key: &str) -> bool {
    let mut parts = key.split('/');
    let count = key.split('/').count();
    (1..=2).contains(&count) && parts.all(|part| !part.is_empty())
}

/// The range of a percent modifier: from −100 % (free) to +1,000 % (eleven times the price).
pub const PERCENT_RANGE: std::ops::RangeInclusive<i64> = -100..=1_000;

/// The range of an additive modifier, in cents: ±$10,000.
pub const ADD_CENTS_RANGE: std::ops::RangeInclusive<i64> = -1_000_000..=1_000_000;

impl Modifier {
    /// Why the modifier is out of its range, if it is.
    fn check(&self) -> Result<(), String> {
        match *self {
            Modifier::Percent(p) if !PERCENT_RANGE.contains(&p) => {
                Err(format!("percent {p} is outside {}..={}", PERCENT_RANGE.start(), PERCENT_RANGE.end()))
            }
            Modifier::AddCents(c) if !ADD_CENTS_RANGE.contains(&c) => {
                Err(format!("add_cents {c} is outside {}..={}", ADD_CENTS_RANGE.start(), ADD_CENTS_RANGE.end()))
            }
            _ => Ok(()),
        }
    }
}

impl Config {
    /// Parses and checks a config; the error says what is wrong, for the operator.
    pub fn parse(text: &str) -> Result<Config, String> {
        let config: Config = serde_json::from_str(text).map_err(|e| format!("config-buyer config: {e}"))?;
        if let (Some(min), Some(max)) = (config.min_age, config.max_age)
            && min > max
        {
            return Err(format!("min_age {min} is above max_age {max}"));
        }
        for band in &config.modifiers.age_bands {
            if band.min_age > band.max_age {
                return Err(format!("age band {}-{} is empty", band.min_age, band.max_age));
            }
        }
        let modifiers = &config.modifiers;
        for modifier in modifiers
            .state
            .values()
            .chain(modifiers.consent.values())
            .chain(modifiers.age_bands.iter().map(|band| &band.modifier))
            .chain(&modifiers.shared)
            .chain(modifiers.source.values())
        {
            modifier.check()?;
        }
        if let Some(key) = modifiers.source.keys().find(|key| !valid_source_key(key)) {
            return Err(format!("source modifier key {key:?}: expected \"source\" or \"source/sub\""));
        }
        if let Some(schedule) = &config.schedule {
            schedule.check()?;
        }
        Ok(config)
    }
}
