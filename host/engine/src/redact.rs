//! The redaction step: the publisher's redactor plugin turns the full lead into the ping buyers see.

use super::pii::PiiGuard;
use super::text;
use super::trace::EarlyEnd;
use pingpost_model::{Lead, Ping};
use pingpost_runtime::{PluginSlot, RedactorPlugin};

/// Runs the publisher's redactor: inline when its record earned it (a warm call costs microseconds, a hand-off tens
/// of them), else on the blocking pool so a new, slow or failing redactor cannot stall a worker thread. A failure
/// ends the auction; what the redactor said is kept only when it holds none of the lead's PII (`guard`), since the
/// redactor saw the whole lead.
pub(crate) async fn redact(
    redactor: &PluginSlot<RedactorPlugin>,
    lead: &Lead,
    now: i64,
    guard: &PiiGuard,
) -> Result<Ping, EarlyEnd> {
    let redactor = redactor.current();
    let outcome = if redactor.inline_trusted() {
        std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| redactor.redact(lead, now)))
            .map_err(|_| "the call panicked".to_string())
    } else {
        let lead = lead.clone();
        tokio::task::spawn_blocking(move || redactor.redact(&lead, now)).await.map_err(|e| e.to_string())
    };
    let refusal = match outcome {
        Err(join_error) => format!("the redactor panicked: {join_error}"),
        Ok(Err(error)) => format!("the redactor failed: {error}"),
        Ok(Ok(report)) => match report.value {
            Ok(ping) => return Ok(ping),
            Err(refusal) => format!("the redactor refused the lead: {refusal}"),
        },
    };
    Err(EarlyEnd::error(text::stored(guard, refusal)))
}
