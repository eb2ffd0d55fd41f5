//! The auction recorder: writes each auction's record (status, outcome and trace JSON) off the request path, as a
//! write of the store's writer that nobody waits for, committed in the same group commit as the auctions' own
//! writes. A lead's answer does not wait for its trace to be written; what must be durable before the answer — the
//! cap reservation, the sale and its delivery — is written by the engine inside the auction (the lead's duplicate
//! record too, committed no later than its sale). A crash can lose at most the traces still queued (milliseconds of
//! them), never a sale.
//!
//! Readers that need what was just recorded (a lead's result, its trace) call [`Recorder::flush`] first.

use std::sync::Arc;

use tokio::sync::Semaphore;

use crate::AuctionRecord;
use crate::SqliteStore;

/// Records queued and not yet written at most; past that, a request waits for the writer (back-pressure), and no
/// record is ever dropped.
const QUEUE: usize = 8_192;

/// Queues auction records for the store's writer.
#[derive(Debug, Clone)]
pub struct Recorder {
    store: Arc<SqliteStore>,
    room: Arc<Semaphore>,
}

impl Recorder {
    /// A recorder writing to `store`.
    pub fn new(store: Arc<SqliteStore>) -> Self {
        Recorder { store, room: Arc::new(Semaphore::new(QUEUE)) }
    }

    /// Queues one auction's record (waiting first while 8,192 records are still to be written).
    pub async fn record(&self, record: AuctionRecord) {
        match self.room.clone().acquire_owned().await {
            Ok(permit) => self.store.queue_auction(record, permit),
            Err(_) => tracing::error!("the auction recorder has stopped; a record was not written"),
        }
    }

    /// Waits until everything queued before this call is written ([`SqliteStore::flush`]).
    pub async fn flush(&self) {
        if let Err(error) = self.store.flush().await {
            tracing::error!(%error, "could not flush the auction records");
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
        let recorder = Recorder::new(store.clone());

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

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_record_waits_while_the_queue_is_full_and_none_is_dropped() {
        let dir = tempfile::tempdir().expect("a temp dir");
        let store = Arc::new(SqliteStore::open(dir.path().join("r.db")).expect("opens"));
        let recorder = Recorder { store: store.clone(), room: Arc::new(Semaphore::new(2)) };
        // The writer is held inside a write until the test lets it go, so nothing queued after it is written.
        let (release, held) = std::sync::mpsc::channel::<()>();
        store.submit("holding the writer", move |_| {
            let _ = held.recv();
            Ok(())
        });

        recorder.record(record(1)).await;
        recorder.record(record(2)).await;
        let third = tokio::time::timeout(std::time::Duration::from_millis(200), recorder.record(record(3))).await;
        assert!(third.is_err(), "a third record waits while two are still to be written");

        release.send(()).expect("the writer holds the receiver");
        recorder.record(record(3)).await;
        recorder.flush().await;
        for n in 1..=3 {
            assert_eq!(store.auction(&format!("p_{n}")).expect("reads"), Some(record(n)), "record {n}");
        }
    }
}
