//! The PII guard's step: a ping is sent to buyers only when it holds none of the lead's PII — its extras within the
//! vertical's schema, and no trace of the lead's identity wherever the schema leaves values open.

use super::pii::{PiiGuard, Scan};
use super::trace::EarlyEnd;
use super::vertical::VerticalRules;
use pingpost_model::Ping;

/// Checks the redacted `ping` against the lead's `guard` and its vertical's `rules` (a lead that passed validation
/// has a vertical; without one every extra is scanned key and value). A leak ends the auction, naming each leak.
pub(crate) fn check_ping(guard: &PiiGuard, ping: &Ping, rules: Option<&VerticalRules>) -> Result<(), EarlyEnd> {
    let mut leaks = rules.map(|rules| rules.check_ping_extras(&ping.extra)).unwrap_or_default();
    if leaks.is_empty() {
        leaks = guard.check_where(ping, |key| rules.map_or(Scan::KeyAndValue, |rules| rules.scan(key)));
    }
    if leaks.is_empty() {
        return Ok(());
    }
    let named: Vec<String> = leaks.iter().map(ToString::to_string).collect();
    let reason = format!("PII guard refused to ping: {}", named.join("; "));
    Err(EarlyEnd { pii_leaks: leaks, ..EarlyEnd::error(reason) })
}
