//! The scorecard: its weights (from the campaign's config JSON, with defaults) and the score of a ping.

use std::collections::BTreeMap;

use pingpost_sdk::{Ping, UsState};
use serde::Deserialize;

/// A campaign's scorecard. Every field is optional and a field left out takes its default. A list or map that is
/// given replaces the default one as a whole; `consent_points` is the exception, its three fields default one by one.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct Scorecard {
    /// Verticals bought; `None` means every vertical.
    pub verticals: Option<Vec<String>>,
    /// Youngest age bought at all; younger pings are an `age` rejection whatever their score.
    pub min_age: u8,
    /// What one point is worth, in cents.
    pub cents_per_point: u32,
    /// The lowest score worth a bid; below it the ping is a `price` rejection.
    pub min_score: i64,
    /// The most the buyer pays, in cents, whatever the score.
    pub max_price_cents: Option<u32>,
    /// Points by age band; the first band holding the ping's age counts.
    pub age_points: Vec<AgeBand>,
    /// Points for each consent flag present.
    pub consent_points: ConsentPoints,
    /// Points by state tier; the first tier listing the ping's state counts.
    pub state_tiers: Vec<StateTier>,
    /// Points for a state in no tier.
    pub other_state_points: i64,
    /// Points for an extra key/value: `{"coverage_type": {"family": 15}}`.
    pub extra_points: BTreeMap<String, BTreeMap<String, i64>>,
    /// Points per unit of a numeric extra value: `{"household_size": {"points_per_unit": 4, "max_points": 20}}`.
    pub per_unit_points: BTreeMap<String, PerUnit>,
    /// Logs how each ping's score was made, at `debug`, on every call. Off by default: formatting and logging the
    /// line costs more than scoring the ping.
    pub log_score: bool,
}

/// Points for ages `min_age..=max_age`.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AgeBand {
    /// Youngest age in the band, inclusive.
    pub min_age: u8,
    /// Oldest age in the band, inclusive.
    pub max_age: u8,
    /// Points for a ping in the band.
    pub points: i64,
}

/// Points for each piece of consent evidence present.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct ConsentPoints {
    /// For a TrustedForm certificate.
    pub trusted_form: i64,
    /// For a Jornaya LeadiD.
    pub jornaya: i64,
    /// For accepted TCPA language.
    pub tcpa_text: i64,
}

/// Points for the states in a tier.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct StateTier {
    /// Two-letter state codes (any case); a code that is not a US state or DC refuses the config.
    pub states: Vec<UsState>,
    /// Points for a ping from one of them.
    pub points: i64,
}

/// Points that grow with a whole-number extra value, up to a cap.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PerUnit {
    /// Points per unit of the value.
    pub points_per_unit: i64,
    /// The most this key adds.
    pub max_points: i64,
}

impl Default for ConsentPoints {
    fn default() -> Self {
        ConsentPoints { trusted_form: 20, jornaya: 15, tcpa_text: 10 }
    }
}

fn band(min_age: u8, max_age: u8, points: i64) -> AgeBand {
    AgeBand { min_age, max_age, points }
}

fn tier(states: &[UsState], points: i64) -> StateTier {
    StateTier { states: states.to_vec(), points }
}

impl Default for Scorecard {
    fn default() -> Self {
        use UsState::*;
        Scorecard {
            verticals: None,
            min_age: 18,
            cents_per_point: 20,
            min_score: 50,
            max_price_cents: None,
            age_points: vec![band(18, 25, 5), band(26, 44, 25), band(45, 64, 20), band(65, u8::MAX, 10)],
            consent_points: ConsentPoints::default(),
            state_tiers: vec![tier(&[Ca, Fl, Ny, Tx], 20), tier(&[Az, Ga, Il, Nc, Nj, Oh, Pa, Va, Wa], 12)],
            other_state_points: 5,
            extra_points: BTreeMap::from([(
                "coverage_type".to_owned(),
                BTreeMap::from([("family".to_owned(), 15), ("individual".to_owned(), 8)]),
            )]),
            per_unit_points: BTreeMap::from([(
                "household_size".to_owned(),
                PerUnit { points_per_unit: 4, max_points: 20 },
            )]),
            log_score: false,
        }
    }
}

impl Scorecard {
    /// Parses a config; an empty or blank string means every default.
    pub fn parse(config: &str) -> Result<Scorecard, String> {
        if config.trim().is_empty() {
            return Ok(Scorecard::default());
        }
        let card: Scorecard = serde_json::from_str(config).map_err(|e| format!("scorecard-buyer config: {e}"))?;
        if card.cents_per_point == 0 {
            return Err("cents_per_point must be at least 1".to_owned());
        }
        if let Some(b) = card.age_points.iter().find(|b| b.min_age > b.max_age) {
            return Err(format!("age band {}-{} is empty", b.min_age, b.max_age));
        }
        Ok(card)
    }

    /// The ping's score.
    pub fn score(&self, ping: &Ping) -> i64 {
        self.tally(ping, None)
    }

    /// The ping's score, with one line per rule that scored, for the bid's log.
    pub fn explain(&self, ping: &Ping) -> (i64, Vec<String>) {
        let mut parts = Vec::new();
        let score = self.tally(ping, Some(&mut parts));
        (score, parts)
    }

    /// Adds up the points of every rule that scores; with `parts`, also describes each one. The descriptions are
    /// only formatted when asked for, so a plain score allocates nothing.
    fn tally(&self, ping: &Ping, mut parts: Option<&mut Vec<String>>) -> i64 {
        let mut total = 0i64;
        let mut add = |what: &dyn Fn() -> String, points: i64| {
            if points != 0 {
                total = total.saturating_add(points);
                if let Some(parts) = parts.as_deref_mut() {
                    parts.push(format!("{}: {points:+}", what()));
                }
            }
        };
        if let Some(b) = self.age_points.iter().find(|b| (b.min_age..=b.max_age).contains(&ping.age)) {
            add(&|| format!("age {}-{}", b.min_age, b.max_age), b.points);
        }
        let c = &self.consent_points;
        for (present, name, points) in [
            (ping.consent.trusted_form, "trusted_form", c.trusted_form),
            (ping.consent.jornaya, "jornaya", c.jornaya),
            (ping.consent.tcpa_text, "tcpa_text", c.tcpa_text),
        ] {
            if present {
                add(&|| name.to_owned(), points);
            }
        }
        match self.state_tiers.iter().find(|t| t.states.contains(&ping.state)) {
            Some(t) => add(&|| format!("state {}", ping.state), t.points),
            None => add(&|| format!("other state {}", ping.state), self.other_state_points),
        }
        for (key, by_value) in &self.extra_points {
            if let Some(points) = ping.extra(key).and_then(|value| by_value.get(value.trim()).copied()) {
                add(&|| key.clone(), points);
            }
        }
        for (key, rule) in &self.per_unit_points {
            // A value that is not a whole number scores nothing: the rule only rewards what it can read.
            if let Some(units) = ping.extra(key).and_then(|v| v.trim().parse::<u32>().ok()) {
                add(
                    &|| format!("{key} {units}"),
                    (i64::from(units).saturating_mul(rule.points_per_unit)).min(rule.max_points),
                );
            }
        }
        total
    }
}
