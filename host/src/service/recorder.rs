//! The auction recorder: writes each auction's record (status, outcome and trace JSON) off the request path, many
//! per write (one job of the store's writer, committed in the same group commit as the auctions' own writes). A
//! lead's answer does not wait for its trace to be written; what must be durable before the answer — the duplicate
//! record, the cap reservation, the sale and its delivery — is written by the engine inside the auction. A crash can
//! lose at most the traces still queued (milliseconds of them), never a sale.
//!
//! Readers that need what was just recorded (a lead's result, its trace) call [`Recorder::flush`] first.

use std::sync::Arc;

use tokio::sync::{mpsc, oneshot};

use crate::storage::AuctionRecord;
use crate::storage::SqliteStore;

/// Records queued at most; a full queue makes requests wait for the writer (back-pressure), never drops a record.
const QUEUE: usize = 8_192;
/// Records written per transaction at most.
const BATCH: usize = 512;

enum Job {
    Record(AuctionRecord),
    Flush(oneshot::Sender<()>),
}

/// Queues auction records for the writer thread.
#[derive(Debug, Clone)]
pub struct Recorder {
    queue: mpsc::Sender<Job>,
}

impl std::fmt::Debug for Job {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Job::Record(record) => f.debug_tuple("Record").field(&record.lead_id).finish(),
            Job::Flush(_) => f.write_str("Flush"),
        }
    }
}

impl Recorder {
    /// Starts the writer thread; it ends when every `Recorder` clone is dropped, after writing what is queued.
    pub fn start(store: Arc<SqliteStore>) -> (Self, std::thread::JoinHandle<()>) {
        let (queue, mut jobs) = mpsc::channel::<Job>(QUEUE);
        let writer = std::thread::Builder::new()
            .name("pingpost-recorder".into())
            .spawn(move || {
                let mut batch = Vec::with_capacity(BATCH);
                let mut waiting = Vec::new();
                while let Some(job) = jobs.blocking_recv() {
                    let mut next = Some(job);
                    while let Some(job) = next.take() {
                        match job {
                            Job::Record(record) => batch.push(record),
                            Job::Flush(done) => waiting.push(done),
                        }
                        if batch.len() < BATCH {
                            next = jobs.try_recv().ok();
                        }
                    }
                    if !batch.is_empty() {
                        let records = batch.len();
                        if let Err(error) = store.record_auctions(std::mem::take(&mut batch)) {
                            tracing::error!(%error, records, "could not record auctions");
                        }
                    }
                    for done in waiting.drain(..) {
                        let _ = done.send(());
                    }
                }
            })
            .expect("spawning the recorder thread");
        (Recorder { queue }, writer)
    }

    /// Queues one auction's record.
    pub async fn record(&self, record: AuctionRecord) {
        if self.queue.send(Job::Record(record)).await.is_err() {
            tracing::error!("the auction recorder has stopped; a record was not written");
        }
    }

    /// Waits until everything queued before this call is written.
    pub async fn flush(&self) {
        let (done, written) = oneshot::channel();
        if self.queue.send(Job::Flush(done)).await.is_ok() {
            let _ = written.await;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn record(n: usize) -> AuctionRecord {
        AuctionRecord {
            lead_id: format!("p_{n}"),
            publisher_id: "pub-1".into(),
            status: "sold".into(),
            received_at_unix_ms: n as i64,
            outcome_json: format!(r#"{{"n":{n}}}"#),
        }
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn everything_queued_before_a_flush_is_written_and_a_later_record_of_a_lead_replaces_it() {
        let dir = tempfile::tempdir().expect("a temp dir");
        let store = Arc::new(SqliteStore::open(dir.path().join("r.db")).expect("opens"));
        let (recorder, _writer) = Recorder::start(store.clone());

        for n in 0..2_000 {
            recorder.record(record(n)).await;
        }
        recorder.record(AuctionRecord { status: "unsold".into(), ..record(7) }).await;
        recorder.flush().await;

        for n in [0, 1_024, 1_999] {
            assert_eq!(store.auction(&format!("p_{n}")).expect("reads"), Some(record(n)), "record {n}");
        }
        assert_eq!(store.auction("p_7").expect("reads").map(|r| r.status), Some("unsold".into()));
    }
}
