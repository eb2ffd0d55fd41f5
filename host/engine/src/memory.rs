//! [`MemoryStore`]: the engine's [`AuctionStore`] in memory, one mutex making every method atomic. It behaves like the
//! SQLite store on the same calls (the storage tests run one scenario on both); state is lost when it is dropped.

use std::collections::HashMap;
use std::sync::Mutex;

use super::config::Caps;
use super::identity::ConsumerKeys;
use super::ledger::{Account, EventKind, Funds, LedgerEvent, NewEvent, Posting, balanced, sale_postings};
use super::store::{
    AuctionStore, CapWindows, Handover, PingClaim, PingRecord, Purchase, Reservation, ReserveError, SaleRecord,
    StoreError, StoredSale, Usage,
};

/// Counters of one campaign in one window.
#[derive(Debug, Default, Clone, Copy)]
struct Counter {
    leads: u32,
    spend_cents: u64,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
enum Period {
    Hour,
    Day,
    Month,
}

#[derive(Debug, Default)]
struct Inner {
    counters: HashMap<(String, Period, String), Counter>,
    pending: HashMap<u64, Reservation>,
    next_reservation: u64,
    /// (publisher, hash) → last seen.
    seen: HashMap<(String, String), i64>,
    /// (buyer, hash) → last bought.
    bought: HashMap<(String, String), i64>,
    pings: HashMap<String, PingRecord>,
    /// Ping ids no longer open: `None` once posted, `Some(expiry)` once expired.
    closed: HashMap<String, Option<i64>>,
    sales: Vec<StoredSale>,
    handovers: Vec<Handover>,
    journal: Vec<LedgerEvent>,
    balances: HashMap<Account, i64>,
}

impl Inner {
    fn counter(&mut self, campaign_id: &str, period: Period, key: &str) -> &mut Counter {
        self.counters.entry((campaign_id.to_owned(), period, key.to_owned())).or_default()
    }

    fn usage(&self, campaign_id: &str, windows: &CapWindows) -> Usage {
        let get = |period: Period, key: &str| {
            self.counters.get(&(campaign_id.to_owned(), period, key.to_owned())).copied().unwrap_or_default()
        };
        let (hour, day, month) =
            (get(Period::Hour, &windows.hour), get(Period::Day, &windows.day), get(Period::Month, &windows.month));
        Usage {
            leads_hour: hour.leads,
            leads_day: day.leads,
            leads_month: month.leads,
            spend_day_cents: day.spend_cents,
            spend_month_cents: month.spend_cents,
        }
    }

    /// When `buyer_id` last bought this consumer (committed), if at or after `since_unix_ms`.
    fn bought_at(&self, buyer_id: &str, keys: &ConsumerKeys, since_unix_ms: i64) -> Option<i64> {
        [&keys.phone_sha256, &keys.email_sha256]
            .iter()
            .filter_map(|hash| self.bought.get(&(buyer_id.to_owned(), (*hash).clone())).copied())
            .filter(|at| *at >= since_unix_ms)
            .max()
    }

    /// Why `purchase` is suppressed, if it is: a committed purchase first, else a pending reservation.
    fn suppressed(&self, purchase: &Purchase) -> Option<ReserveError> {
        let since = purchase.suppress_since_unix_ms?;
        let keys = purchase.keys.as_ref()?;
        if let Some(at_unix_ms) = self.bought_at(&purchase.buyer_id, keys, since) {
            return Some(ReserveError::Suppressed { at_unix_ms, pending: false });
        }
        self.pending
            .values()
            .filter_map(|r| r.purchase.as_ref())
            .filter(|p| {
                p.buyer_id == purchase.buyer_id
                    && p.keys.as_ref().is_some_and(|k| k.same_consumer(keys))
                    && p.at_unix_ms >= since
            })
            .map(|p| p.at_unix_ms)
            .max()
            .map(|at_unix_ms| ReserveError::Suppressed { at_unix_ms, pending: true })
    }

    /// Why a sale of `campaign_id` at `price_cents` may not be reserved now, if it may not.
    fn refusal(
        &self,
        campaign_id: &str,
        caps: &Caps,
        windows: &CapWindows,
        price_cents: u32,
        purchase: Option<&Purchase>,
    ) -> Option<ReserveError> {
        if let Some(refusal) = purchase.and_then(|p| self.suppressed(p)) {
            return Some(refusal);
        }
        if let Some(cap) = self.usage(campaign_id, windows).exceeded_by(caps, price_cents) {
            return Some(ReserveError::CapReached(cap));
        }
        let (purchase, limit) = purchase.and_then(|p| Some((p, p.credit_limit_cents?)))?;
        let funds = self.funds(&purchase.buyer_id);
        (!funds.covers(limit, price_cents))
            .then(|| ReserveError::InsufficientFunds { available_cents: funds.available_cents(limit) })
    }

    /// `buyer_id`'s balance and what its pending reservations hold.
    fn funds(&self, buyer_id: &str) -> Funds {
        let held_cents = self
            .pending
            .values()
            .filter(|r| r.purchase.as_ref().is_some_and(|p| p.buyer_id == buyer_id))
            .map(|r| u64::from(r.price_cents))
            .sum();
        Funds { balance_cents: self.balances.get(&Account::buyer(buyer_id)).copied().unwrap_or(0), held_cents }
    }

    /// Appends an event to the journal and adds its postings to the balances.
    fn post(&mut self, event: NewEvent) -> LedgerEvent {
        let event = event.stored(self.journal.len() as u64 + 1);
        for posting in &event.postings {
            *self.balances.entry(posting.account.clone()).or_default() += posting.amount_cents;
        }
        self.journal.push(event.clone());
        event
    }

    /// Records that the purchase's buyer bought its consumer (keeping the latest time per hash) and the sale itself.
    /// Records that the purchase's buyer bought its consumer (keeping the latest time per hash), the sale itself and
    /// its postings.
    fn record_sale(&mut self, purchase: Option<Purchase>, sale: &SaleRecord, price_cents: u32) -> u64 {
        if let Some(Purchase { buyer_id, keys: Some(keys), at_unix_ms, .. }) = purchase {
            for hash in [keys.phone_sha256, keys.email_sha256] {
                let entry = self.bought.entry((buyer_id.clone(), hash)).or_insert(at_unix_ms);
                *entry = (*entry).max(at_unix_ms);
            }
        }
        let sale_id = self.sales.len() as u64 + 1;
        self.sales.push(StoredSale::new(sale_id, sale, price_cents));
        let postings = sale_postings(&sale.buyer_id, &sale.publisher_id, price_cents, sale.payout_cents);
        if !postings.is_empty() {
            self.post(NewEvent::sale(sale_id, &sale.lead_id, &sale.publisher_id, sale.sold_at_unix_ms, postings));
        }
        sale_id
    }

    /// Takes the hold `id` out for its post, checking `purchase`'s suppression window; a refused hold stays held.
    fn take_hold(&mut self, id: u64, purchase: Option<&Purchase>) -> Result<Reservation, ReserveError> {
        let held = match self.pending.remove(&id) {
            Some(held) if held.expires_at_unix_ms.is_some() => held,
            // Not a hold: put back what was taken.
            Some(other) => {
                self.pending.insert(other.id, other);
                return Err(StoreError::UnknownReservation(id).into());
            }
            None => return Err(StoreError::UnknownReservation(id).into()),
        };
        if let Some(refusal) = purchase.and_then(|p| self.suppressed(p)) {
            self.pending.insert(held.id, held);
            return Err(refusal);
        }
        Ok(held)
    }

    /// Keeps a new pending reservation (a hold when it has an expiry) of counts already applied.
    fn insert_reservation(
        &mut self,
        campaign_id: &str,
        windows: &CapWindows,
        price_cents: u32,
        purchase: Option<Purchase>,
        expires_at_unix_ms: Option<i64>,
    ) -> Reservation {
        self.next_reservation += 1;
        let reservation = Reservation {
            id: self.next_reservation,
            campaign_id: campaign_id.to_owned(),
            windows: windows.clone(),
            price_cents,
            purchase,
            expires_at_unix_ms,
        };
        self.pending.insert(reservation.id, reservation.clone());
        reservation
    }

    /// Adds `leads` and `spend` (either may be negative) to each window.
    fn apply(&mut self, campaign_id: &str, windows: &CapWindows, leads: i64, spend: i64) {
        for (period, key) in
            [(Period::Hour, &windows.hour), (Period::Day, &windows.day), (Period::Month, &windows.month)]
        {
            let counter = self.counter(campaign_id, period, key);
            counter.leads = (i64::from(counter.leads) + leads).clamp(0, i64::from(u32::MAX)) as u32;
            counter.spend_cents = (counter.spend_cents as i64 + spend).max(0) as u64;
        }
    }
}

/// A thread-safe in-memory [`AuctionStore`]: one mutex makes every method atomic. State is lost when it is dropped.
#[derive(Debug, Default)]
pub struct MemoryStore {
    inner: Mutex<Inner>,
}

impl MemoryStore {
    /// An empty store.
    pub fn new() -> Self {
        MemoryStore::default()
    }

    fn lock(&self) -> Result<std::sync::MutexGuard<'_, Inner>, StoreError> {
        self.inner
            .lock()
            .map_err(|_| StoreError::Unavailable("a thread panicked while holding the memory store".into()))
    }

    /// Every sale, of every campaign, in sale order (tests and the CLI's report).
    pub fn all_sales(&self) -> Result<Vec<StoredSale>, StoreError> {
        Ok(self.lock()?.sales.clone())
    }

    /// Every audited hand-over of PII, in order.
    pub fn handovers(&self) -> Result<Vec<Handover>, StoreError> {
        Ok(self.lock()?.handovers.clone())
    }

    /// Reservations and holds neither committed nor released (none once every auction has finished and no quote
    /// stands).
    pub fn pending_reservations(&self) -> Result<usize, StoreError> {
        Ok(self.lock()?.pending.len())
    }

    /// Every event of the journal, in order.
    pub fn journal(&self) -> Result<Vec<LedgerEvent>, StoreError> {
        Ok(self.lock()?.journal.clone())
    }

    /// The balance of `account`.
    pub fn balance(&self, account: &Account) -> Result<i64, StoreError> {
        Ok(self.lock()?.balances.get(account).copied().unwrap_or(0))
    }

    /// Appends an event of `kind` caused by `principal_id` at `at_unix_ms` (a payment, an adjustment, a payout):
    /// refused unless `postings` balance.
    pub fn record(
        &self,
        kind: EventKind,
        principal_id: &str,
        postings: Vec<Posting>,
        at_unix_ms: i64,
    ) -> Result<LedgerEvent, StoreError> {
        if !balanced(&postings) {
            return Err(StoreError::corrupt("recording an event", "its postings do not balance"));
        }
        Ok(self.lock()?.post(NewEvent::new(kind, principal_id, at_unix_ms, postings)))
    }
}

#[async_trait::async_trait]
impl AuctionStore for MemoryStore {
    async fn reserve(
        &self,
        campaign_id: &str,
        caps: &Caps,
        windows: &CapWindows,
        price_cents: u32,
        purchase: Option<&Purchase>,
        handover: Option<&Handover>,
    ) -> Result<Reservation, ReserveError> {
        let mut inner = self.lock()?;
        if let Some(refusal) = inner.refusal(campaign_id, caps, windows, price_cents, purchase) {
            return Err(refusal);
        }
        inner.handovers.extend(handover.cloned());
        inner.apply(campaign_id, windows, 1, i64::from(price_cents));
        Ok(inner.insert_reservation(campaign_id, windows, price_cents, purchase.cloned(), None))
    }

    async fn hold(
        &self,
        campaign_id: &str,
        caps: &Caps,
        windows: &CapWindows,
        price_cents: u32,
        purchase: Option<&Purchase>,
        expires_at_unix_ms: i64,
    ) -> Result<Reservation, ReserveError> {
        let mut inner = self.lock()?;
        if let Some(refusal) = inner.refusal(campaign_id, caps, windows, price_cents, purchase) {
            return Err(refusal);
        }
        inner.apply(campaign_id, windows, 1, i64::from(price_cents));
        Ok(inner.insert_reservation(campaign_id, windows, price_cents, purchase.cloned(), Some(expires_at_unix_ms)))
    }

    async fn take_hold(
        &self,
        hold: &Reservation,
        purchase: Option<&Purchase>,
        handover: Option<&Handover>,
    ) -> Result<Reservation, ReserveError> {
        let mut inner = self.lock()?;
        let held = inner.take_hold(hold.id, purchase)?;
        inner.handovers.extend(handover.cloned());
        let purchase = purchase.cloned().or(held.purchase);
        Ok(inner.insert_reservation(&held.campaign_id, &held.windows, held.price_cents, purchase, None))
    }

    async fn sell_hold(
        &self,
        hold: &Reservation,
        purchase: Option<&Purchase>,
        sale: &SaleRecord,
    ) -> Result<u64, ReserveError> {
        let mut inner = self.lock()?;
        let held = inner.take_hold(hold.id, purchase)?;
        let correction = i64::from(sale.price_cents) - i64::from(held.price_cents);
        inner.apply(&held.campaign_id, &held.windows, 0, correction);
        let purchase = purchase.cloned().or(held.purchase);
        Ok(inner.record_sale(purchase, sale, sale.price_cents))
    }

    async fn release_expired_holds(&self, now_unix_ms: i64) -> Result<usize, StoreError> {
        let mut inner = self.lock()?;
        let expired: Vec<u64> = inner
            .pending
            .values()
            .filter(|r| r.expires_at_unix_ms.is_some_and(|at| at <= now_unix_ms))
            .map(|r| r.id)
            .collect();
        for id in &expired {
            if let Some(held) = inner.pending.remove(id) {
                inner.apply(&held.campaign_id, &held.windows, -1, -i64::from(held.price_cents));
            }
        }
        Ok(expired.len())
    }

    async fn commit(
        &self,
        reservation: &Reservation,
        final_price_cents: u32,
        sale: &SaleRecord,
    ) -> Result<u64, StoreError> {
        let mut inner = self.lock()?;
        let pending = inner.pending.remove(&reservation.id).ok_or(StoreError::UnknownReservation(reservation.id))?;
        let correction = i64::from(final_price_cents) - i64::from(pending.price_cents);
        inner.apply(&pending.campaign_id, &pending.windows, 0, correction);
        Ok(inner.record_sale(pending.purchase, sale, final_price_cents))
    }

    async fn sell(
        &self,
        campaign_id: &str,
        caps: &Caps,
        windows: &CapWindows,
        purchase: Option<&Purchase>,
        sale: &SaleRecord,
    ) -> Result<u64, ReserveError> {
        let mut inner = self.lock()?;
        if let Some(refusal) = inner.refusal(campaign_id, caps, windows, sale.price_cents, purchase) {
            return Err(refusal);
        }
        inner.apply(campaign_id, windows, 1, i64::from(sale.price_cents));
        Ok(inner.record_sale(purchase.cloned(), sale, sale.price_cents))
    }

    async fn release(&self, reservation: &Reservation) -> Result<(), StoreError> {
        let mut inner = self.lock()?;
        let pending = inner.pending.remove(&reservation.id).ok_or(StoreError::UnknownReservation(reservation.id))?;
        inner.apply(&pending.campaign_id, &pending.windows, -1, -i64::from(pending.price_cents));
        Ok(())
    }

    async fn usage(&self, campaign_id: &str, windows: &CapWindows) -> Result<Usage, StoreError> {
        Ok(self.lock()?.usage(campaign_id, windows))
    }

    async fn funds(&self, buyer_id: &str) -> Result<Funds, StoreError> {
        Ok(self.lock()?.funds(buyer_id))
    }

    async fn check_and_record_lead(
        &self,
        publisher_id: &str,
        keys: &ConsumerKeys,
        since_unix_ms: i64,
        now_unix_ms: i64,
    ) -> Result<Option<i64>, StoreError> {
        let mut inner = self.lock()?;
        let hashes = [&keys.phone_sha256, &keys.email_sha256];
        let seen = hashes
            .iter()
            .filter_map(|hash| inner.seen.get(&(publisher_id.to_owned(), (*hash).clone())).copied())
            .filter(|at| *at >= since_unix_ms)
            .max();
        if seen.is_none() {
            for hash in hashes {
                inner.seen.insert((publisher_id.to_owned(), hash.clone()), now_unix_ms);
            }
        }
        Ok(seen)
    }

    async fn forget_lead(&self, publisher_id: &str, keys: &ConsumerKeys, seen_at: i64) -> Result<(), StoreError> {
        let mut inner = self.lock()?;
        for hash in [&keys.phone_sha256, &keys.email_sha256] {
            let key = (publisher_id.to_owned(), hash.clone());
            if inner.seen.get(&key) == Some(&seen_at) {
                inner.seen.remove(&key);
            }
        }
        Ok(())
    }

    async fn bought_since(&self, buyer_id: &str, keys: &ConsumerKeys, since_unix_ms: i64) -> Result<bool, StoreError> {
        Ok(self.lock()?.bought_at(buyer_id, keys, since_unix_ms).is_some())
    }

    async fn save_ping(&self, record: PingRecord) -> Result<(), StoreError> {
        let mut inner = self.lock()?;
        if inner.pings.contains_key(&record.ping_id) || inner.closed.contains_key(&record.ping_id) {
            return Err(StoreError::DuplicatePingId(record.ping_id));
        }
        inner.pings.insert(record.ping_id.clone(), record);
        Ok(())
    }

    async fn open_ping(&self, ping_id: &str) -> Result<Option<PingRecord>, StoreError> {
        Ok(self.lock()?.pings.get(ping_id).cloned())
    }

    async fn claim_ping(&self, ping_id: &str, now_unix_ms: i64) -> Result<PingClaim, StoreError> {
        let mut inner = self.lock()?;
        match inner.closed.get(ping_id) {
            Some(None) => return Ok(PingClaim::AlreadyPosted),
            Some(Some(expired_at_unix_ms)) => {
                return Ok(PingClaim::Expired { expired_at_unix_ms: *expired_at_unix_ms });
            }
            None => {}
        }
        let Some(record) = inner.pings.get(ping_id) else {
            return Ok(PingClaim::Unknown);
        };
        if now_unix_ms >= record.expires_at_unix_ms {
            let expired_at_unix_ms = record.expires_at_unix_ms;
            // The lead is kept no longer than its expiry.
            inner.pings.remove(ping_id);
            inner.closed.insert(ping_id.to_owned(), Some(expired_at_unix_ms));
            return Ok(PingClaim::Expired { expired_at_unix_ms });
        }
        let record =
            inner.pings.remove(ping_id).ok_or(StoreError::corrupt("claiming a ping", "it vanished under the lock"))?;
        inner.closed.insert(ping_id.to_owned(), None);
        Ok(PingClaim::Claimed(Box::new(record)))
    }

    /// Nothing to clear: a claimed ping's record leaves this store when it is claimed (nothing outlives the process).
    async fn finish_post(&self, _ping_id: &str) -> Result<(), StoreError> {
        Ok(())
    }

    async fn sales_of_campaign(&self, campaign_id: &str) -> Result<Vec<StoredSale>, StoreError> {
        Ok(self.lock()?.sales.iter().filter(|s| s.campaign_id == campaign_id).cloned().collect())
    }
}
