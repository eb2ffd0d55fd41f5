//! The load generator: distinct Florida leads sent to `POST /v1/leads` open-loop at a fixed rate (latency counted
//! from each request's scheduled send time, so a slow server cannot hide queueing), or closed-loop by a fixed number
//! of workers as fast as the server answers ("max").

use std::collections::BTreeMap;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::{Duration, Instant};

use anyhow::{Context, Result};
use hdrhistogram::Histogram;
use serde::Deserialize;
use tokio::sync::{Semaphore, mpsc};

use super::scenario::{PUBLISHER_KEY, florida_dir};
use super::server::{cpu_time, disk_write_bytes, thread_cpu_time};

/// The name of the server's store writer thread (`storage/writer.rs`).
const WRITER_THREAD: &str = "pingpost-writer";

/// How fast to send.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Rate {
    /// Leads per second, open loop.
    Fixed(u32),
    /// Closed loop: this many workers, each sending its next lead when the last is answered.
    Max { workers: u32 },
}

impl std::fmt::Display for Rate {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Rate::Fixed(rate) => write!(f, "{rate}/s"),
            Rate::Max { workers } => write!(f, "max ({workers} conns)"),
        }
    }
}

/// Distinct leads from the Florida example lead: every one a new consumer (phone, email), ages 25–70, in Florida.
pub struct Leads {
    template: String,
    next: AtomicU64,
    year: i32,
}

impl Leads {
    pub fn florida() -> Result<Self> {
        let path = florida_dir().join("lead.json");
        let text = std::fs::read_to_string(&path).with_context(|| format!("reading {}", path.display()))?;
        let mut lead: serde_json::Value = serde_json::from_str(&text).context("parsing lead.json")?;
        let consumer = lead.get_mut("consumer").and_then(|c| c.as_object_mut()).context("lead.json: no consumer")?;
        consumer.insert("phone".into(), "@PHONE@".into());
        consumer.insert("email".into(), "@EMAIL@".into());
        consumer.insert("date_of_birth".into(), "@DOB@".into());
        consumer.insert("state".into(), "FL".into());
        let year = chrono::Datelike::year(&chrono::Utc::now());
        Ok(Leads { template: serde_json::to_string(&lead)?, next: AtomicU64::new(0), year })
    }

    /// The next lead's JSON body.
    pub fn next(&self) -> String {
        let n = self.next.fetch_add(1, Ordering::Relaxed);
        // Area codes 200–999, seven digits each: distinct for the first 8 billion leads.
        let phone = format!("{}{:07}", 200 + (n / 10_000_000) % 800, n % 10_000_000);
        let age = 25 + (n % 46) as i32;
        self.template
            .replace("@PHONE@", &phone)
            .replace("@EMAIL@", &format!("bench.{n}@example.com"))
            .replace("@DOB@", &format!("{}-01-02", self.year - age))
    }
}

/// What one run measured.
pub struct RunStats {
    pub rate: Rate,
    pub sent: u64,
    /// From the first send to the last answer.
    pub elapsed: Duration,
    /// Answered requests (any status), microseconds.
    pub latency_us: Histogram<u64>,
    /// Outcome of each 2xx answer (`sold`, `unsold`, ...).
    pub outcomes: BTreeMap<String, u64>,
    /// Non-2xx answers by status.
    pub statuses: BTreeMap<u16, u64>,
    /// The first non-2xx answer's body, for the report.
    pub first_error: Option<String>,
    pub transport_errors: u64,
    /// Open loop only: leads not sent because `max_in_flight` requests were already waiting.
    pub shed: u64,
    pub server_cpu: Duration,
    pub bench_cpu: Duration,
    /// CPU time of the server's store writer thread.
    pub writer_cpu: Duration,
    /// Bytes the server caused to be written to storage (WAL frames and checkpoints), from /proc.
    pub server_disk_bytes: u64,
}

impl RunStats {
    pub fn answered(&self) -> u64 {
        self.latency_us.len()
    }

    pub fn per_second(&self) -> f64 {
        self.answered() as f64 / self.elapsed.as_secs_f64().max(1e-9)
    }

    pub fn percentile_ms(&self, q: f64) -> f64 {
        self.latency_us.value_at_quantile(q) as f64 / 1000.0
    }

    pub fn max_ms(&self) -> f64 {
        self.latency_us.max() as f64 / 1000.0
    }

    /// Requests that did not get a 2xx answer with an outcome other than `error`.
    pub fn failures(&self) -> u64 {
        self.statuses.values().sum::<u64>()
            + self.transport_errors
            + self.shed
            + self.outcomes.get("error").copied().unwrap_or(0)
    }

    pub fn outcome(&self, name: &str) -> u64 {
        self.outcomes.get(name).copied().unwrap_or(0)
    }
}

enum Answer {
    Ok(String),
    Status(u16, String),
    Transport,
}

struct Sample {
    latency: Duration,
    answer: Answer,
}

#[derive(Deserialize)]
struct LeadAnswer {
    outcome: String,
}

/// The target: where to send and how.
#[derive(Clone)]
pub struct Target {
    pub client: reqwest::Client,
    pub url: String,
    pub leads: Arc<Leads>,
    pub server_pid: u32,
}

impl Target {
    pub fn new(base: &str, leads: Arc<Leads>, server_pid: u32) -> Result<Self> {
        let client = reqwest::Client::builder()
            .pool_max_idle_per_host(4096)
            .pool_idle_timeout(Duration::from_secs(90))
            .tcp_nodelay(true)
            .timeout(Duration::from_secs(30))
            .build()
            .context("building the load client")?;
        Ok(Target { client, url: format!("{base}/v1/leads"), leads, server_pid })
    }

    async fn send(&self) -> Answer {
        let body = self.leads.next();
        let response = self
            .client
            .post(&self.url)
            .bearer_auth(PUBLISHER_KEY)
            .header("content-type", "application/json")
            .body(body)
            .send()
            .await;
        let response = match response {
            Ok(response) => response,
            Err(_) => return Answer::Transport,
        };
        let status = response.status().as_u16();
        let Ok(bytes) = response.bytes().await else { return Answer::Transport };
        if !(200..300).contains(&status) {
            return Answer::Status(status, String::from_utf8_lossy(&bytes).into_owned());
        }
        match serde_json::from_slice::<LeadAnswer>(&bytes) {
            Ok(answer) => Answer::Ok(answer.outcome),
            Err(_) => Answer::Status(status, format!("unreadable answer: {}", String::from_utf8_lossy(&bytes))),
        }
    }

    /// Sends at `rate` for `duration` (or until `stop` is set), then waits for every answer.
    pub async fn run(&self, rate: Rate, duration: Duration, stop: Arc<AtomicBool>, max_in_flight: usize) -> RunStats {
        let (tx, mut rx) = mpsc::unbounded_channel::<Sample>();
        let server_cpu0 = cpu_time(Some(self.server_pid));
        let bench_cpu0 = cpu_time(None);
        let disk0 = disk_write_bytes(self.server_pid);
        let writer_cpu0 = thread_cpu_time(self.server_pid, WRITER_THREAD);
        let started = Instant::now();
        let deadline = started + duration;
        let collector = tokio::spawn(async move {
            let mut stats = Collected::default();
            while let Some(sample) = rx.recv().await {
                stats.add(sample);
            }
            stats
        });
        let mut sent = 0u64;
        let mut shed = 0u64;
        match rate {
            Rate::Fixed(per_second) => {
                let period = Duration::from_secs_f64(1.0 / f64::from(per_second.max(1)));
                let permits = Arc::new(Semaphore::new(max_in_flight));
                'send: loop {
                    let now = Instant::now();
                    if now >= deadline || stop.load(Ordering::Relaxed) {
                        break;
                    }
                    // Every lead due by now goes out, each timed from its own scheduled instant.
                    let due = (now - started).as_secs_f64() * f64::from(per_second);
                    while (sent + shed) as f64 <= due {
                        let scheduled = started + period.mul_f64((sent + shed) as f64);
                        if scheduled >= deadline {
                            break 'send;
                        }
                        match permits.clone().try_acquire_owned() {
                            Ok(permit) => {
                                let (target, tx) = (self.clone(), tx.clone());
                                tokio::spawn(async move {
                                    let answer = target.send().await;
                                    let _ = tx.send(Sample { latency: scheduled.elapsed(), answer });
                                    drop(permit);
                                });
                                sent += 1;
                            }
                            Err(_) => shed += 1,
                        }
                    }
                    let next = started + period.mul_f64((sent + shed) as f64);
                    tokio::time::sleep_until(next.max(Instant::now() + Duration::from_micros(200)).into()).await;
                }
            }
            Rate::Max { workers } => {
                let count = Arc::new(AtomicU64::new(0));
                let mut handles = Vec::new();
                for _ in 0..workers {
                    let (target, tx, stop, count) = (self.clone(), tx.clone(), stop.clone(), count.clone());
                    handles.push(tokio::spawn(async move {
                        while Instant::now() < deadline && !stop.load(Ordering::Relaxed) {
                            let begun = Instant::now();
                            let answer = target.send().await;
                            count.fetch_add(1, Ordering::Relaxed);
                            let _ = tx.send(Sample { latency: begun.elapsed(), answer });
                        }
                    }));
                }
                for handle in handles {
                    let _ = handle.await;
                }
                sent = count.load(Ordering::Relaxed);
            }
        }
        drop(tx);
        let collected = collector.await.unwrap_or_default();
        let elapsed = collected.last.map(|last| last - started).unwrap_or_else(|| started.elapsed());
        RunStats {
            rate,
            sent,
            elapsed,
            latency_us: collected.latency_us,
            outcomes: collected.outcomes,
            statuses: collected.statuses,
            first_error: collected.first_error,
            transport_errors: collected.transport_errors,
            shed,
            server_cpu: cpu_time(Some(self.server_pid)).saturating_sub(server_cpu0),
            bench_cpu: cpu_time(None).saturating_sub(bench_cpu0),
            writer_cpu: thread_cpu_time(self.server_pid, WRITER_THREAD).saturating_sub(writer_cpu0),
            server_disk_bytes: disk_write_bytes(self.server_pid).saturating_sub(disk0),
        }
    }
}

struct Collected {
    latency_us: Histogram<u64>,
    outcomes: BTreeMap<String, u64>,
    statuses: BTreeMap<u16, u64>,
    first_error: Option<String>,
    transport_errors: u64,
    last: Option<Instant>,
}

impl Default for Collected {
    fn default() -> Self {
        Collected {
            latency_us: Histogram::new_with_bounds(1, 600_000_000, 3).expect("valid histogram bounds"),
            outcomes: BTreeMap::new(),
            statuses: BTreeMap::new(),
            first_error: None,
            transport_errors: 0,
            last: None,
        }
    }
}

impl Collected {
    fn add(&mut self, sample: Sample) {
        self.last = Some(Instant::now());
        match sample.answer {
            Answer::Transport => {
                self.transport_errors += 1;
                return;
            }
            Answer::Ok(outcome) => *self.outcomes.entry(outcome).or_default() += 1,
            Answer::Status(status, body) => {
                *self.statuses.entry(status).or_default() += 1;
                self.first_error.get_or_insert(format!("{status} {body}"));
            }
        }
        self.latency_us.saturating_record(sample.latency.as_micros().min(u128::from(u64::MAX)) as u64);
    }
}
