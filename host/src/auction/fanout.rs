//! Ping fan-out: every eligible campaign is asked at once, under one deadline. Wasm buyers run on tokio's blocking
//! pool (their calls are synchronous, so a slow plugin cannot stall a worker thread), on a few lanes (one per core, at
//! least two) that pull campaigns from one queue, rather than one task per campaign: a warm call takes a couple of
//! microseconds, less than handing a task to the blocking pool, and a plugin that runs to its deadline holds up only
//! its own lane. HTTP buyers are awaited alongside with the remaining budget. Whatever has not answered by the deadline is
//! recorded as a timeout.

use std::sync::Arc;
use std::sync::atomic::{AtomicU32, AtomicUsize, Ordering};
use std::time::Duration;

use futures_util::future::join_all;
use tokio::sync::mpsc;
use tokio::time::Instant;

use super::engine::{CampaignEntry, Runner};
use super::http_buyer::{HttpBuyerClient, HttpBuyerError, PingRequest};
use super::trace::{Answer, micros};
use crate::model::{CapsLeft, Decision, LogLine, Ping};
use crate::plugin::{CallError, CallReport, PreparedPing};

/// One campaign to ping.
pub(super) struct PingJob {
    /// Index of the campaign's entry in the trace.
    pub trace_index: usize,
    pub entry: Arc<CampaignEntry>,
    pub caps_left: CapsLeft,
}

/// One campaign's answer.
pub(super) struct PingResult {
    pub trace_index: usize,
    pub answer: Answer,
    /// Arrival order among the answers (0 = first); timeouts come last.
    pub order: u32,
    pub answer_us: u64,
    pub plugin_wall_us: Option<u64>,
    pub logs: Vec<LogLine>,
}

/// What the fan-out needs besides the jobs.
pub(super) struct FanOut<'a> {
    pub http: &'a HttpBuyerClient,
    pub ping: Arc<Ping>,
    pub ping_id: &'a str,
    pub now_unix_ms: i64,
    /// When buyers must have answered (the auction deadline less the engine's overhead reserve).
    pub answer_by: Instant,
    pub floor_cents: u32,
}

impl FanOut<'_> {
    /// Pings every job concurrently and returns one result per job, in job order.
    pub async fn run(&self, jobs: Vec<PingJob>) -> Vec<PingResult> {
        let started = Instant::now();
        let arrivals = AtomicU32::new(0);
        let (wasm_jobs, http_jobs): (Vec<_>, Vec<_>) =
            jobs.into_iter().enumerate().partition(|(_, job)| matches!(job.entry.runner, Runner::Wasm { .. }));
        let http = join_all(http_jobs.into_iter().map(|(position, job)| {
            let arrivals = &arrivals;
            async move {
                let answer = self.call_http(&job).await;
                (position, self.result(&job, answer, None, Vec::new(), started, arrivals))
            }
        }));
        let (wasm, http) = tokio::join!(self.run_wasm(wasm_jobs, started, &arrivals), http);
        let mut results: Vec<_> = wasm.into_iter().chain(http).collect();
        results.sort_by_key(|(position, _)| *position);
        results.into_iter().map(|(_, result)| result).collect()
    }

    /// Runs the Wasm bids on the blocking lanes and collects what arrives before the deadline.
    async fn run_wasm(
        &self,
        jobs: Vec<(usize, PingJob)>,
        started: Instant,
        arrivals: &AtomicU32,
    ) -> Vec<(usize, PingResult)> {
        if jobs.is_empty() {
            return Vec::new();
        }
        // Lanes pull the next job from one shared queue, so a plugin that runs to its deadline holds up only its
        // own lane while the others carry on with the rest.
        let lanes = std::thread::available_parallelism().map_or(1, |n| n.get()).max(2).min(jobs.len());
        let queue: Arc<Vec<(usize, Arc<CampaignEntry>, CapsLeft)>> =
            Arc::new(jobs.iter().map(|(position, job)| (*position, job.entry.clone(), job.caps_left)).collect());
        let next = Arc::new(AtomicUsize::new(0));
        // The ping's contract form is made once for every Wasm buyer of this auction.
        let prepared = Arc::new(PreparedPing::new(&self.ping));
        let (sender, mut receiver) = mpsc::unbounded_channel();
        for _ in 0..lanes {
            let (sender, queue, next, ping, now) =
                (sender.clone(), queue.clone(), next.clone(), prepared.clone(), self.now_unix_ms);
            tokio::task::spawn_blocking(move || {
                while let Some((position, entry, caps_left)) = queue.get(next.fetch_add(1, Ordering::Relaxed)) {
                    let Runner::Wasm { slot, .. } = &entry.runner else { continue };
                    // The receiver is gone once the deadline passed: the rest is not worth running.
                    if sender.send((*position, slot.current().bid_prepared(&ping, now, *caps_left))).is_err() {
                        return;
                    }
                }
            });
        }
        drop(sender);
        let mut answered: Vec<Option<PingResult>> = jobs.iter().map(|_| None).collect();
        let index_of = |position: usize| jobs.iter().position(|(p, _)| *p == position);
        while let Ok(Some((position, call))) = tokio::time::timeout_at(self.answer_by, receiver.recv()).await {
            let Some(index) = index_of(position) else { continue };
            let job = &jobs[index].1;
            let result = match call {
                Err(error) => self.result(job, answer_for_call_error(error), None, Vec::new(), started, arrivals),
                Ok(CallReport { value, wall, logs, .. }) => {
                    let answer = self.answer_for_decision(value);
                    self.result(job, answer, Some(micros(wall)), logs, started, arrivals)
                }
            };
            answered[index] = Some(result);
        }
        // A batch that panicked drops its sender without answering: its campaigns count as errors, not timeouts.
        let deadline_passed = Instant::now() >= self.answer_by;
        jobs.iter()
            .zip(answered)
            .map(|((position, job), result)| {
                let result = result.unwrap_or_else(|| {
                    let answer = if deadline_passed {
                        Answer::Timeout
                    } else {
                        Answer::Error { kind: "panic".into(), message: "the plugin call panicked".into() }
                    };
                    self.result(job, answer, None, Vec::new(), started, arrivals)
                });
                (*position, result)
            })
            .collect()
    }

    async fn call_http(&self, job: &PingJob) -> Answer {
        let Runner::Http(endpoints) = &job.entry.runner else {
            return Answer::Error { kind: "internal".into(), message: "not an HTTP campaign".into() };
        };
        let budget = self.answer_by.saturating_duration_since(Instant::now());
        let request = PingRequest { ping_id: self.ping_id, campaign_id: &job.entry.config.id, ping: &self.ping };
        // The client cuts the call at the budget itself; the outer timeout only guards against a client that
        // overruns it.
        let call = self.http.ping(endpoints, &request, budget);
        match tokio::time::timeout(budget + Duration::from_millis(5), call).await {
            Err(_) | Ok(Err(HttpBuyerError::Timeout)) => Answer::Timeout,
            Ok(Err(error)) => Answer::Error { kind: http_error_kind(&error).into(), message: error.to_string() },
            Ok(Ok(decision)) => self.answer_for_decision(decision),
        }
    }

    /// Records one answer with its arrival order (timeouts come last).
    fn result(
        &self,
        job: &PingJob,
        answer: Answer,
        plugin_wall_us: Option<u64>,
        logs: Vec<LogLine>,
        started: Instant,
        arrivals: &AtomicU32,
    ) -> PingResult {
        let order = if answer == Answer::Timeout { u32::MAX } else { arrivals.fetch_add(1, Ordering::SeqCst) };
        PingResult {
            trace_index: job.trace_index,
            answer,
            order,
            answer_us: micros(started.elapsed()),
            plugin_wall_us,
            logs,
        }
    }

    /// A buyer's decision as recorded: a zero bid is no bid, a bid under the floor is dropped.
    fn answer_for_decision(&self, decision: Decision) -> Answer {
        match decision {
            Decision::Reject(rejection) => Answer::Reject { code: rejection.code, message: rejection.message },
            Decision::Bid(bid) if bid.price_cents == 0 => Answer::NoBid,
            Decision::Bid(bid) if bid.price_cents < self.floor_cents => {
                Answer::BelowFloor { price_cents: bid.price_cents, floor_cents: self.floor_cents }
            }
            Decision::Bid(bid) => {
                Answer::Bid { price_cents: bid.price_cents, buyer_ref: bid.buyer_ref, ttl_ms: bid.ttl_ms }
            }
        }
    }
}

fn answer_for_call_error(error: CallError) -> Answer {
    match error {
        CallError::Timeout { .. } => Answer::Timeout,
        CallError::Suspended { until_unix_ms, reason } => Answer::Suspended { until_unix_ms, reason },
        other => Answer::Error { kind: other.kind().into(), message: other.to_string() },
    }
}

/// A short name of an HTTP buyer error's kind.
pub(super) fn http_error_kind(error: &HttpBuyerError) -> &'static str {
    match error {
        HttpBuyerError::Timeout => "timeout",
        HttpBuyerError::Status(_) => "status",
        HttpBuyerError::Malformed(_) => "malformed",
        HttpBuyerError::Transport(_) => "transport",
    }
}
