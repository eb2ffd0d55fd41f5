//! Ping fan-out: every eligible campaign is asked at once, under one deadline. When a Wasm bid will run inline, the
//! HTTP pings start first, each on its own task, so they are in flight meanwhile; otherwise they are polled on the
//! auction's own task (no task each). A Wasm buyer whose recent calls were all quick successes
//! ([`BuyerPlugin::inline_trusted`]) runs inline on the auction's own task: a warm call costs a couple of microseconds,
//! far less than handing it to another thread and waking the task again. Every other Wasm buyer (new, slow or
//! failing) runs on tokio's blocking pool, so it cannot stall a worker thread, on a few lanes (one per core, at least
//! two) that pull campaigns from one queue, where a plugin that runs to its deadline holds up only its own lane. The
//! inline calls of one auction share a budget (`InlinePolicy::budget_per_auction`); once it is spent the rest go to
//! the lanes, so a trusted plugin that turns slow stalls a worker at most once before it is demoted. Whatever has not
//! answered by the deadline is recorded as a timeout.

use std::panic::{AssertUnwindSafe, catch_unwind};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU32, AtomicUsize, Ordering};
use std::time::Duration;

use futures_util::future::join_all;
use tokio::sync::mpsc;
use tokio::task::JoinSet;
use tokio::time::Instant;

use super::entries::{CampaignEntry, Runner};
use super::http_buyer::{HttpBuyerClient, HttpBuyerError, PingRequest};
use super::store::CapKind;
use super::text::{MAX_STORED_TEXT, MAX_TRACE_LOG_LINE, MAX_TRACE_LOG_LINES, bounded};
use super::trace::{Answer, ErrorKind, PluginSha, micros};
use pingpost_model::{BidContext, CapsLeft, Decision, LogLine, Ping, SaleKind};
use pingpost_runtime::{BuyerPlugin, CallError, CallReport, PreparedPing};

/// One campaign to ping.
pub(crate) struct PingJob {
    /// Index of the campaign's entry in the trace.
    pub trace_index: usize,
    pub entry: Arc<CampaignEntry>,
    pub caps_left: CapsLeft,
    /// What the buyer may still spend, when the exchange manages its funds.
    pub funds_left: Option<i64>,
    /// The highest bid the campaign may make, in cents: a higher one is an error answer, not a sale.
    pub max_bid_cents: u32,
}

impl PingJob {
    /// What bounds this campaign's bid in an auction with floor `floor_cents`.
    fn limits(&self, floor_cents: u32) -> BidLimits {
        BidLimits {
            floor_cents,
            max_bid_cents: self.max_bid_cents,
            spend_left: spend_left(&self.caps_left),
            funds_left: self.funds_left,
        }
    }
}

/// What bounds a usable bid: the publisher's floor, the campaign's maximum, what is left of its spend caps and of its
/// buyer's funds.
#[derive(Debug, Clone, Copy)]
struct BidLimits {
    floor_cents: u32,
    max_bid_cents: u32,
    /// The tightest spend cap and what is left of it, when the campaign has one.
    spend_left: Option<(CapKind, u64)>,
    /// What the buyer may still spend, when the exchange manages its funds.
    funds_left: Option<i64>,
}

/// The tightest of a campaign's spend caps, and what is left of it.
fn spend_left(caps_left: &CapsLeft) -> Option<(CapKind, u64)> {
    let day = caps_left.spend_day_cents.map(|left| (CapKind::SpendPerDay, left));
    let month = caps_left.spend_month_cents.map(|left| (CapKind::SpendPerMonth, left));
    match (day, month) {
        (Some(day), Some(month)) => Some(if month.1 < day.1 { month } else { day }),
        (day, month) => day.or(month),
    }
}

/// One campaign's answer.
pub(crate) struct PingResult {
    pub trace_index: usize,
    pub answer: Answer,
    /// Arrival order among the answers (0 = first); timeouts come last.
    pub order: u32,
    pub answer_us: u64,
    pub plugin_wall_us: Option<u64>,
    /// Fuel the plugin call used, when the runtime meters fuel.
    pub plugin_fuel: Option<u64>,
    pub logs: Vec<LogLine>,
    /// The plugin version that was called (Wasm only).
    pub plugin_sha: Option<PluginSha>,
}

/// What the fan-out needs besides the jobs.
pub(crate) struct FanOut<'a> {
    pub http: &'a HttpBuyerClient,
    pub ping: Arc<Ping>,
    pub ping_id: &'a str,
    pub now_unix_ms: i64,
    /// When buyers must have answered (the auction deadline less the engine's overhead reserve).
    pub answer_by: Instant,
    /// The publisher's floor, in cents (buyers are told it).
    pub floor_cents: u32,
    /// The sale the auction makes (buyers are told it).
    pub sale: SaleKind,
}

/// When an answer arrived: its place in the arrival order and its time.
#[derive(Clone, Copy)]
struct Arrival {
    order: u32,
    at: Instant,
}

impl Arrival {
    fn now(arrivals: &AtomicU32) -> Self {
        Self::at(arrivals, Instant::now())
    }

    /// The next arrival, at an instant the caller already read.
    fn at(arrivals: &AtomicU32, at: Instant) -> Self {
        Arrival { order: arrivals.fetch_add(1, Ordering::SeqCst), at }
    }
}

/// The Wasm bids of one auction, claimed one by one by the blocking lanes (from the front) and the auction's own
/// task (trusted plugins, from the back); each is run exactly once.
struct WasmQueue {
    /// (index into the fan-out's Wasm jobs, buyer, its bid context), untrusted buyers first.
    items: Vec<(usize, Arc<BuyerPlugin>, BidContext)>,
    claimed: Vec<AtomicBool>,
    next: AtomicUsize,
    ping: PreparedPing,
}

impl WasmQueue {
    fn claim(&self, item: usize) -> bool {
        !self.claimed[item].swap(true, Ordering::AcqRel)
    }

    fn unclaimed(&self) -> usize {
        self.claimed.iter().filter(|claimed| !claimed.load(Ordering::Acquire)).count()
    }
}

type LaneAnswer = (usize, Result<CallReport<Decision>, CallError>, Arrival);

impl FanOut<'_> {
    /// Pings every job concurrently and returns one result per job, in job order.
    pub async fn run(&self, jobs: Vec<PingJob>) -> Vec<PingResult> {
        let started = Instant::now();
        let arrivals = Arc::new(AtomicU32::new(0));
        let (wasm_jobs, http_jobs): (Vec<_>, Vec<_>) =
            jobs.into_iter().enumerate().partition(|(_, job)| matches!(job.entry.runner, Runner::Wasm { .. }));
        let any_trusted = wasm_jobs.iter().any(|(_, job)| match &job.entry.runner {
            Runner::Wasm { slot, .. } => slot.current().inline_trusted(),
            Runner::Http(_) | Runner::Disabled { .. } => false,
        });
        if http_jobs.is_empty() || !any_trusted {
            // Nothing needs to run beside inline Wasm: the HTTP pings are polled on this task, with no task each,
            // and the Wasm bids (if any) run inline only when there is no HTTP ping to keep polling.
            let allow_inline = http_jobs.is_empty();
            let http = join_all(http_jobs.into_iter().map(|(position, job)| {
                let (call, arrivals) = (self.http_call(), &arrivals);
                async move {
                    let answer = call.run(&job).await;
                    (position, result(job.trace_index, answer, None, Vec::new(), started, Arrival::now(arrivals)))
                }
            }));
            let (wasm, http) = tokio::join!(self.run_wasm(wasm_jobs, started, &arrivals, allow_inline), http);
            let mut results: Vec<_> = wasm.into_iter().chain(http).collect();
            results.sort_by_key(|(position, _)| *position);
            return results.into_iter().map(|(_, result)| result).collect();
        }
        // HTTP pings go first, on their own tasks, so they progress while Wasm bids run inline on this one. The set
        // aborts them if the auction is dropped.
        let mut http = JoinSet::new();
        let http_trace: Vec<(usize, usize)> = http_jobs.iter().map(|(p, job)| (*p, job.trace_index)).collect();
        for (position, job) in http_jobs {
            let (call, arrivals) = (self.http_call(), arrivals.clone());
            http.spawn(async move {
                let answer = call.run(&job).await;
                (position, result(job.trace_index, answer, None, Vec::new(), started, Arrival::now(&arrivals)))
            });
        }
        let mut results = self.run_wasm(wasm_jobs, started, &arrivals, true).await;
        let mut http_results: Vec<(usize, PingResult)> = Vec::with_capacity(http_trace.len());
        while let Some(joined) = http.join_next().await {
            // A task that panicked leaves its campaign unanswered; it is recorded as an error below.
            if let Ok(answered) = joined {
                http_results.push(answered);
            }
        }
        for (position, trace_index) in http_trace {
            if !http_results.iter().any(|(p, _)| *p == position) {
                let answer = Answer::Error { kind: ErrorKind::Panic, message: "the HTTP ping panicked".into() };
                let arrival = Arrival::now(&arrivals);
                http_results.push((position, result(trace_index, answer, None, Vec::new(), started, arrival)));
            }
        }
        results.extend(http_results);
        results.sort_by_key(|(position, _)| *position);
        results.into_iter().map(|(_, result)| result).collect()
    }

    /// What one HTTP ping task needs, owned.
    fn http_call(&self) -> HttpCall {
        HttpCall {
            client: self.http.clone(),
            ping: self.ping.clone(),
            ping_id: self.ping_id.to_owned(),
            answer_by: self.answer_by,
            floor_cents: self.floor_cents,
            sale: self.sale,
        }
    }

    /// Runs the Wasm bids, trusted ones inline (when `allow_inline`) and the rest on the blocking lanes, and
    /// collects what arrives before the deadline.
    async fn run_wasm(
        &self,
        jobs: Vec<(usize, PingJob)>,
        started: Instant,
        arrivals: &Arc<AtomicU32>,
        allow_inline: bool,
    ) -> Vec<(usize, PingResult)> {
        let context = |caps_left: CapsLeft| BidContext {
            now_unix_ms: self.now_unix_ms,
            caps_left,
            sale: self.sale,
            floor_cents: self.floor_cents,
        };
        let mut items: Vec<(usize, Arc<BuyerPlugin>, BidContext, bool)> = jobs
            .iter()
            .enumerate()
            .filter_map(|(index, (_, job))| match &job.entry.runner {
                Runner::Wasm { slot, .. } => {
                    let buyer = slot.current();
                    let trusted = allow_inline && buyer.inline_trusted();
                    Some((index, buyer, context(job.caps_left), trusted))
                }
                Runner::Http(_) | Runner::Disabled { .. } => None,
            })
            .collect();
        if items.is_empty() {
            return Vec::new();
        }
        // The ping's contract form is made once for every Wasm buyer of this auction. The engine's pings come from
        // a redactor's checked output, so this fails only on a host bug; every Wasm buyer then answers with it.
        let ping = match PreparedPing::new(&self.ping) {
            Ok(ping) => ping,
            Err(invalid) => {
                let error = CallError::from(invalid);
                return jobs
                    .iter()
                    .map(|(position, job)| {
                        let answer = answer_for_call_error(error.clone());
                        (*position, result(job.trace_index, answer, None, Vec::new(), started, Arrival::now(arrivals)))
                    })
                    .collect();
            }
        };
        let budget = items[0].1.inline_policy().budget_per_auction;
        // Lanes take from the front, this task from the back: untrusted buyers first.
        items.sort_by_key(|(_, _, _, trusted)| *trusted);
        let trusted: Vec<bool> = items.iter().map(|item| item.3).collect();
        let untrusted = trusted.iter().filter(|t| !**t).count();
        let queue = Arc::new(WasmQueue {
            claimed: items.iter().map(|_| AtomicBool::new(false)).collect(),
            items: items.into_iter().map(|(index, buyer, context, _)| (index, buyer, context)).collect(),
            next: AtomicUsize::new(0),
            ping,
        });
        let (sender, mut receiver) = mpsc::unbounded_channel::<LaneAnswer>();
        let mut lanes_started = false;
        if untrusted > 0 {
            spawn_lanes(&queue, &sender, arrivals, untrusted);
            lanes_started = true;
        }
        let mut answered: Vec<Option<PingResult>> = jobs.iter().map(|_| None).collect();
        let mut spent = Duration::ZERO;
        // One clock read per inline call: nothing else runs on this task between calls (no await), so a call that
        // answered ends at its start plus its reported wall time, which is where the next one starts.
        let mut clock = Instant::now();
        for item in (0..queue.items.len()).rev() {
            if !trusted[item] || spent >= budget || clock >= self.answer_by {
                break;
            }
            if !queue.claim(item) {
                continue;
            }
            let (index, buyer, context) = &queue.items[item];
            let call =
                catch_unwind(AssertUnwindSafe(|| buyer.bid_prepared_since(&queue.ping, context, clock.into_std())));
            let ended = match &call {
                Ok(Ok(report)) => clock + report.wall,
                _ => Instant::now(),
            };
            spent += ended - clock;
            clock = ended;
            let trace_index = jobs[*index].1.trace_index;
            let arrival = Arrival::at(arrivals, ended);
            answered[*index] = Some(match call {
                Ok(call) => {
                    self.wasm_result(trace_index, jobs[*index].1.limits(self.floor_cents), call, started, arrival)
                }
                Err(_) => result(trace_index, panicked(), None, Vec::new(), started, arrival),
            });
        }
        // Whatever the inline budget or the deadline left goes to the lanes.
        if !lanes_started && queue.unclaimed() > 0 && Instant::now() < self.answer_by {
            spawn_lanes(&queue, &sender, arrivals, queue.unclaimed());
        }
        drop(sender);
        while let Ok(Some((index, call, arrival))) = tokio::time::timeout_at(self.answer_by, receiver.recv()).await {
            if let Some((_, job)) = jobs.get(index) {
                answered[index] =
                    Some(self.wasm_result(job.trace_index, job.limits(self.floor_cents), call, started, arrival));
            }
        }
        // A lane that panicked drops its sender without answering: its campaigns count as errors, not timeouts.
        let deadline_passed = Instant::now() >= self.answer_by;
        let mut called = vec![None; jobs.len()];
        for (index, buyer, _) in &queue.items {
            called[*index] = Some(PluginSha::of(buyer.plugin_sha256()));
        }
        jobs.iter()
            .zip(answered)
            .zip(called)
            .map(|(((position, job), answered), plugin_sha)| {
                let answered = answered.unwrap_or_else(|| {
                    let answer = if deadline_passed { Answer::Timeout } else { panicked() };
                    result(job.trace_index, answer, None, Vec::new(), started, Arrival::now(arrivals))
                });
                (*position, PingResult { plugin_sha, ..answered })
            })
            .collect()
    }

    /// A Wasm call's result; one that arrived after the deadline is a timeout, as it would be on a lane.
    fn wasm_result(
        &self,
        trace_index: usize,
        limits: BidLimits,
        call: Result<CallReport<Decision>, CallError>,
        started: Instant,
        arrival: Arrival,
    ) -> PingResult {
        if arrival.at > self.answer_by {
            return result(trace_index, Answer::Timeout, None, Vec::new(), started, arrival);
        }
        match call {
            Err(error) => {
                // A call that ran out of fuel used its whole budget; other failures report none.
                let fuel = match &error {
                    CallError::OutOfFuel { budget } => Some(*budget),
                    _ => None,
                };
                let answer = answer_for_call_error(error);
                PingResult { plugin_fuel: fuel, ..result(trace_index, answer, None, Vec::new(), started, arrival) }
            }
            Ok(CallReport { value, wall, fuel_consumed, mut logs, .. }) => {
                let answer = answer_for_decision(value, limits);
                logs.truncate(MAX_TRACE_LOG_LINES);
                for line in &mut logs {
                    line.message = bounded(&line.message, MAX_TRACE_LOG_LINE);
                }
                let ping = result(trace_index, answer, Some(micros(wall)), logs, started, arrival);
                PingResult { plugin_fuel: fuel_consumed, ..ping }
            }
        }
    }
}

/// Starts up to one blocking lane per core (at least two, at most `jobs`) on the unclaimed part of `queue`.
fn spawn_lanes(
    queue: &Arc<WasmQueue>,
    sender: &mpsc::UnboundedSender<LaneAnswer>,
    arrivals: &Arc<AtomicU32>,
    jobs: usize,
) {
    let lanes = std::thread::available_parallelism().map_or(1, |n| n.get()).max(2).min(jobs);
    for _ in 0..lanes {
        let (queue, sender, arrivals) = (queue.clone(), sender.clone(), arrivals.clone());
        tokio::task::spawn_blocking(move || {
            loop {
                let item = queue.next.fetch_add(1, Ordering::Relaxed);
                let Some((index, buyer, context)) = queue.items.get(item) else { return };
                if !queue.claim(item) {
                    continue;
                }
                let call = buyer.bid_prepared(&queue.ping, context);
                // The receiver is gone once the deadline passed: the rest is not worth running.
                if sender.send((*index, call, Arrival::now(&arrivals))).is_err() {
                    return;
                }
            }
        });
    }
}

/// What an HTTP ping task owns.
struct HttpCall {
    client: HttpBuyerClient,
    ping: Arc<Ping>,
    ping_id: String,
    answer_by: Instant,
    floor_cents: u32,
    sale: SaleKind,
}

impl HttpCall {
    async fn run(&self, job: &PingJob) -> Answer {
        let Runner::Http(endpoints) = &job.entry.runner else {
            return Answer::Error { kind: ErrorKind::Internal, message: "not an HTTP campaign".into() };
        };
        let budget = self.answer_by.saturating_duration_since(Instant::now());
        let request = PingRequest {
            ping_id: &self.ping_id,
            campaign_id: &job.entry.config.id,
            sale: self.sale,
            floor_cents: self.floor_cents,
            ping: &self.ping,
        };
        // The client cuts the call at the budget itself; the outer timeout only guards against a client that
        // overruns it.
        let call = self.client.ping(endpoints, &request, budget);
        match tokio::time::timeout(budget + Duration::from_millis(5), call).await {
            Err(_) | Ok(Err(HttpBuyerError::Timeout)) => Answer::Timeout,
            Ok(Err(error)) => {
                Answer::Error { kind: ErrorKind::from(&error), message: bounded(&error.to_string(), MAX_STORED_TEXT) }
            }
            Ok(Ok(decision)) => answer_for_decision(decision, job.limits(self.floor_cents)),
        }
    }
}

/// Records one answer with its arrival (timeouts come last in the order).
fn result(
    trace_index: usize,
    answer: Answer,
    plugin_wall_us: Option<u64>,
    logs: Vec<LogLine>,
    started: Instant,
    arrival: Arrival,
) -> PingResult {
    let order = if answer == Answer::Timeout { u32::MAX } else { arrival.order };
    PingResult {
        trace_index,
        answer,
        order,
        answer_us: micros(arrival.at.saturating_duration_since(started)),
        plugin_wall_us,
        plugin_fuel: None,
        logs,
        plugin_sha: None,
    }
}

fn panicked() -> Answer {
    Answer::Error { kind: ErrorKind::Panic, message: "the plugin call panicked".into() }
}

/// The longest `buyer_ref` a bid may carry, in bytes: it is stored with the sale and echoed in the post.
pub const MAX_BUYER_REF_BYTES: usize = 256;

/// A buyer's decision as recorded: a zero bid is no bid, a bid under the floor or over what is left of the campaign's
/// spend caps or its buyer's funds is dropped, a bid over the campaign's maximum or with an oversized reference is an error answer; a
/// reject message is bounded.
fn answer_for_decision(decision: Decision, limits: BidLimits) -> Answer {
    let BidLimits { floor_cents, max_bid_cents, spend_left, funds_left } = limits;
    match decision {
        Decision::Reject(rejection) => {
            Answer::Reject { code: rejection.code, message: bounded(&rejection.message, MAX_STORED_TEXT) }
        }
        Decision::Bid(bid) if bid.price_cents > max_bid_cents => Answer::Error {
            kind: ErrorKind::BidTooHigh,
            message: format!("bid of {} cents is above the campaign's maximum of {max_bid_cents}", bid.price_cents),
        },
        Decision::Bid(bid) if bid.buyer_ref.as_ref().is_some_and(|r| r.len() > MAX_BUYER_REF_BYTES) => Answer::Error {
            kind: ErrorKind::InvalidAnswer,
            message: format!("buyer_ref is longer than {MAX_BUYER_REF_BYTES} bytes"),
        },
        Decision::Bid(bid) if bid.price_cents == 0 => Answer::NoBid,
        Decision::Bid(bid) if bid.price_cents < floor_cents => {
            Answer::BelowFloor { price_cents: bid.price_cents, floor_cents }
        }
        Decision::Bid(bid) => match spend_left {
            Some((cap, left_cents)) if u64::from(bid.price_cents) > left_cents => {
                Answer::CapWouldExceed { price_cents: bid.price_cents, cap, left_cents: Some(left_cents) }
            }
            _ => match funds_left {
                Some(available_cents) if i64::from(bid.price_cents) > available_cents => {
                    Answer::FundsWouldExceed { price_cents: bid.price_cents, available_cents }
                }
                _ => Answer::Bid { price_cents: bid.price_cents, buyer_ref: bid.buyer_ref, ttl_ms: bid.ttl_ms },
            },
        },
    }
}

/// An HTTP buyer's failure, as its answer records it.
impl From<&HttpBuyerError> for ErrorKind {
    fn from(error: &HttpBuyerError) -> Self {
        match error {
            HttpBuyerError::Timeout => ErrorKind::Timeout,
            HttpBuyerError::Status(_) => ErrorKind::Status,
            HttpBuyerError::Malformed(_) => ErrorKind::Malformed,
            HttpBuyerError::Transport(_) => ErrorKind::Transport,
        }
    }
}

fn answer_for_call_error(error: CallError) -> Answer {
    match error {
        CallError::Timeout { .. } => Answer::Timeout,
        CallError::Suspended { until_unix_ms, reason } => {
            Answer::Suspended { until_unix_ms, reason: bounded(&reason, MAX_STORED_TEXT) }
        }
        other => Answer::Error { kind: ErrorKind::from(&other), message: bounded(&other.to_string(), MAX_STORED_TEXT) },
    }
}
