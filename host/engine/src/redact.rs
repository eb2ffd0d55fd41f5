//! The redaction step: the publisher's redactor plugin turns the full lead (or a PII-free ping request) into the ping
//! buyers see.

use super::pii::PiiGuard;
use super::text;
use super::trace::EarlyEnd;
use pingpost_model::{Lead, Ping, PingRequest};
use pingpost_runtime::{CallError, CallReport, PluginSlot, RedactorPlugin};

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
    run(redactor.current(), lead, guard, move |redactor, lead| redactor.redact(lead, now)).await
}

/// [`redact`] for a PII-free ping `request`. A redactor of a contract without `redact-ping` (0.1.0) is a refusal
/// that says so, before any call.
pub(crate) async fn redact_ping(
    redactor: &PluginSlot<RedactorPlugin>,
    request: &PingRequest,
    now: i64,
    guard: &PiiGuard,
) -> Result<Ping, EarlyEnd> {
    // Read once: a swap to a redactor without `redact-ping` between the check and the call must not get past it.
    let redactor = redactor.current();
    if !redactor.redacts_pings() {
        let reason = "this publisher's redactor reads full leads only (its contract has no redact-ping): send the \
            lead with the ping, or in one step";
        return Err(EarlyEnd::new(super::trace::OutcomeStatus::Rejected, reason));
    }
    run(redactor, request, guard, move |redactor, request| redactor.redact_ping(request, now)).await
}

/// Runs one redactor call on `input` with `call`, inline or on the blocking pool, and reads its answer.
async fn run<I: Clone + Send + 'static>(
    redactor: std::sync::Arc<RedactorPlugin>,
    input: &I,
    guard: &PiiGuard,
    call: impl FnOnce(&RedactorPlugin, &I) -> Result<CallReport<Result<Ping, String>>, CallError> + Send + 'static,
) -> Result<Ping, EarlyEnd> {
    let outcome = if redactor.inline_trusted() {
        std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| call(&redactor, input)))
            .map_err(|_| "the call panicked".to_string())
    } else {
        let input = input.clone();
        tokio::task::spawn_blocking(move || call(&redactor, &input)).await.map_err(|e| e.to_string())
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
