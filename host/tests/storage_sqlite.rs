//! The SQLite store against real database files in temp dirs: it answers every call exactly as the in-memory store
//! does, never oversells a cap under concurrency (one shared store or several connections to one file), never lets
//! one buyer reserve one consumer twice within its suppression window under concurrency, keeps its data across
//! reopen, claims a ping once, keeps no plain consumer identifiers for look-ups, and migrates its schema once and
//! refuses a newer one. Then the service's queries: sales by buyer and publisher, returns, the PII audit, the
//! retention purge, stale reservations and auction records.

use std::collections::BTreeMap;
use std::path::Path;
use std::sync::Arc;

use tokio::sync::Barrier;

use pingpost::auction::select::Candidate;
use pingpost::auction::store::{
    CapKind, CapWindows, Handover, PingClaim, PingRecord, Purchase, Reservation, ReserveError, SaleReturn, Usage,
};
use pingpost::auction::{
    AuctionStore, Caps, ConsumerKeys, MemoryStore, Pinged, SaleDelivery, SaleRecord, StoreError, StoredSale,
};
use pingpost::model::{Consent, Consumer, Lead};
use pingpost::storage::{
    AuctionRecord, DeliveryStatus, MIGRATIONS, Migration, MigrationError, OpenError, PiiAccess, PiiAuditEntry,
    PurgeCounts, ReturnError, SCHEMA_VERSION, SaleRef, SqliteStore, migrations,
};

fn temp_db() -> (tempfile::TempDir, std::path::PathBuf) {
    let dir = tempfile::tempdir().expect("a temp dir");
    let path = dir.path().join("exchange.db");
    (dir, path)
}

fn windows(hour: &str) -> CapWindows {
    CapWindows { hour: hour.to_owned(), day: hour[..10].to_owned(), month: hour[..7].to_owned() }
}

fn lead(n: u32) -> Lead {
    Lead {
        vertical: "health-insurance".into(),
        publisher_id: "pub-1".into(),
        source_id: format!("src-{n}"),
        sub_id: String::new(),
        consumer: Consumer {
            first_name: "Ana".into(),
            last_name: format!("Lopez{n}"),
            phone: format!("+1305555{n:04}"),
            email: format!("ana{n}@example.com"),
            street: "1 Ocean Dr".into(),
            city: "Miami".into(),
            state: "FL".into(),
            zip5: "33139".into(),
            date_of_birth: "1980-02-29".into(),
            gender: None,
        },
        consent: Consent { tcpa_text: Some("I agree".into()), ..Consent::default() },
        extra: BTreeMap::from([("utm_source".to_owned(), "search".to_owned())]),
    }
}

fn keys_of(lead: &Lead) -> ConsumerKeys {
    ConsumerKeys::of(&lead.consumer.phone, &lead.consumer.email)
}

/// `buyer_id` buying the consumer `keys` at `at_unix_ms`, suppressed when bought at or after `since` (if any).
fn purchase(buyer_id: &str, keys: &ConsumerKeys, at_unix_ms: i64, since: Option<i64>) -> Purchase {
    Purchase {
        buyer_id: buyer_id.to_owned(),
        keys: Some(keys.clone()),
        at_unix_ms,
        suppress_since_unix_ms: since,
        credit_limit_cents: None,
    }
}

fn ping_record(ping_id: &str, n: u32, created_at_unix_ms: i64, expires_at_unix_ms: i64) -> PingRecord {
    let lead = lead(n);
    PingRecord {
        ping_id: ping_id.to_owned(),
        publisher_id: lead.publisher_id.clone(),
        keys: Some(keys_of(&lead)),
        lead: Some(lead),
        age: 46,
        pinged: None,
        holds: vec![],
        ranked: vec![
            Candidate {
                campaign_id: "c1".into(),
                buyer_id: "b1".into(),
                tier: 1,
                price_cents: 1250,
                answer_order: 1,
                buyer_ref: Some("bid-77".into()),
                expires_at_unix_ms,
            },
            Candidate {
                campaign_id: "c2".into(),
                buyer_id: "b2".into(),
                tier: 2,
                price_cents: 900,
                answer_order: 0,
                buyer_ref: None,
                expires_at_unix_ms,
            },
        ],
        max_buyers: 1,
        created_at_unix_ms,
        expires_at_unix_ms,
    }
}

/// The sale of lead `n` to `campaign_id` at `price_cents`, delivered by `delivery`.
fn sale(campaign_id: &str, n: u32, price_cents: u32, delivery: SaleDelivery) -> SaleRecord {
    SaleRecord {
        lead_id: format!("ping-{n}"),
        campaign_id: campaign_id.to_owned(),
        buyer_id: format!("buyer-of-{campaign_id}"),
        publisher_id: "pub-1".into(),
        price_cents,
        payout_cents: price_cents * 9 / 10,
        sold_at_unix_ms: 1_000 + i64::from(n),
        buyer_ref: n.is_multiple_of(2).then(|| format!("ref-{n}")),
        lead: lead(n),
        delivery,
    }
}

/// A pick-up sale of lead `n` to `campaign_id`.
fn pickup(campaign_id: &str, n: u32, price_cents: u32) -> SaleRecord {
    sale(campaign_id, n, price_cents, SaleDelivery::Pickup)
}

/// Records each step's answer so two stores' runs can be compared line by line.
#[derive(Default)]
struct Transcript(Vec<String>);

impl Transcript {
    fn note<T: std::fmt::Debug>(&mut self, step: &str, value: T) -> T {
        self.0.push(format!("{step}: {value:?}"));
        value
    }
}

/// One sequence of calls covering every trait method, with the answers the specification requires asserted; returns
/// every answer in order.
async fn scenario(store: &dyn AuctionStore) -> Vec<String> {
    let mut t = Transcript::default();
    let caps = Caps {
        leads_per_hour: Some(3),
        leads_per_day: Some(4),
        leads_per_month: Some(10),
        spend_per_day_cents: Some(2_000),
        spend_per_month_cents: Some(2_500),
    };
    let h9 = windows("2026-03-14T09");
    let h10 = windows("2026-03-14T10");
    let next_day = windows("2026-03-15T09");

    // Caps: reserve, commit at the confirmed price, release, refuse naming the cap.
    assert_eq!(t.note("usage before", store.usage("c1", &h9).await), Ok(Usage::default()));
    let r1 = t.note("reserve r1", store.reserve("c1", &caps, &h9, 400, None, None).await).expect("r1");
    let r1_sale = pickup("c1", 1, 350);
    assert_eq!(t.note("commit r1 at 350", store.commit(&r1, 350, &r1_sale).await), Ok(1));
    let r2 = t.note("reserve r2", store.reserve("c1", &caps, &h9, 400, None, None).await).expect("r2");
    assert_eq!(t.note("release r2", store.release(&r2).await), Ok(()));
    assert_eq!(
        t.note("commit released r2", store.commit(&r2, 400, &pickup("c1", 2, 400)).await),
        Err(StoreError::UnknownReservation(r2.id))
    );
    assert_eq!(t.note("release committed r1", store.release(&r1).await), Err(StoreError::UnknownReservation(r1.id)));
    let mut ghost = r1.clone();
    ghost.id = 9_999;
    assert_eq!(
        t.note("commit never made", store.commit(&ghost, 1, &pickup("c1", 2, 1)).await),
        Err(StoreError::UnknownReservation(9_999))
    );
    assert_eq!(
        t.note("usage after r1, r2", store.usage("c1", &h9).await),
        Ok(Usage { leads_hour: 1, leads_day: 1, leads_month: 1, spend_day_cents: 350, spend_month_cents: 350 })
    );
    let r3 = t.note("reserve r3", store.reserve("c1", &caps, &h9, 400, None, None).await).expect("r3");
    t.note("reserve r4", store.reserve("c1", &caps, &h9, 400, None, None).await).expect("r4");
    assert_eq!(
        t.note("reserve over hour cap", store.reserve("c1", &caps, &h9, 400, None, None).await),
        Err(ReserveError::CapReached(CapKind::LeadsPerHour))
    );
    t.note("reserve next hour", store.reserve("c1", &caps, &h10, 100, None, None).await).expect("next hour");
    assert_eq!(
        t.note("reserve over day cap", store.reserve("c1", &caps, &h10, 100, None, None).await),
        Err(ReserveError::CapReached(CapKind::LeadsPerDay))
    );
    assert_eq!(
        t.note("reserve over month spend", store.reserve("c1", &caps, &next_day, 1_300, None, None).await),
        Err(ReserveError::CapReached(CapKind::SpendPerMonth))
    );
    t.note("reserve up to month spend", store.reserve("c1", &caps, &next_day, 1_200, None, None).await)
        .expect("month spend fits");
    // The sale is recorded at the committed price, whatever the record says.
    let r3_sale = sale("c1", 3, 400, SaleDelivery::Posted);
    assert_eq!(t.note("commit r3 above reserved price", store.commit(&r3, 650, &r3_sale).await), Ok(2));
    assert_eq!(
        t.note("usage of next day", store.usage("c1", &next_day).await),
        Ok(Usage { leads_hour: 1, leads_day: 1, leads_month: 5, spend_day_cents: 1_200, spend_month_cents: 2_700 })
    );
    assert_eq!(
        t.note("reserve with month spend over cap", store.reserve("c1", &caps, &next_day, 0, None, None).await),
        Err(ReserveError::CapReached(CapKind::SpendPerMonth))
    );

    let day_spend = Caps { spend_per_day_cents: Some(1_000), ..Caps::default() };
    let c2 = t.note("c2 reserve 600", store.reserve("c2", &day_spend, &h9, 600, None, None).await).expect("600 fits");
    assert_eq!(
        t.note("c2 reserve 500", store.reserve("c2", &day_spend, &h9, 500, None, None).await),
        Err(ReserveError::CapReached(CapKind::SpendPerDay))
    );
    t.note("c2 reserve exactly to the cap", store.reserve("c2", &day_spend, &h9, 400, None, None).await)
        .expect("400 fits");
    t.note("c2 reserve free lead at the cap", store.reserve("c2", &day_spend, &h9, 0, None, None).await)
        .expect("0 fits");
    let c2_sale = sale("c2", 2, 0, SaleDelivery::Webhook { url: "http://127.0.0.1:9/hook".into() });
    assert_eq!(t.note("c2 commit at 0", store.commit(&c2, 0, &c2_sale).await), Ok(3));
    t.note("c2 usage", store.usage("c2", &h9).await).expect("usage");
    for _ in 0..5 {
        t.note("unlimited reserve", store.reserve("c3", &Caps::default(), &h9, 1_000_000, None, None).await)
            .expect("no cap");
    }
    t.note("unlimited usage", store.usage("c3", &h9).await).expect("usage");
    t.note("other campaign untouched", store.usage("c4", &h9).await).expect("usage");

    // Duplicates per publisher, by phone or email, within the window.
    let (a, a_phone, a_email) = (keys_of(&lead(1)), keys_of(&lead(1)), keys_of(&lead(1)));
    let a_phone = ConsumerKeys { email_sha256: keys_of(&lead(2)).email_sha256, ..a_phone };
    let a_email = ConsumerKeys { phone_sha256: keys_of(&lead(3)).phone_sha256, ..a_email };
    assert_eq!(t.note("first lead", store.check_and_record_lead("p1", &a, 0, 1_000).await), Ok(None));
    assert_eq!(t.note("same lead again", store.check_and_record_lead("p1", &a, 0, 2_000).await), Ok(Some(1_000)));
    assert_eq!(t.note("same lead other publisher", store.check_and_record_lead("p2", &a, 0, 2_000).await), Ok(None));
    assert_eq!(t.note("same phone", store.check_and_record_lead("p1", &a_phone, 0, 2_500).await), Ok(Some(1_000)));
    assert_eq!(t.note("outside the window", store.check_and_record_lead("p1", &a, 1_500, 3_000).await), Ok(None));
    assert_eq!(t.note("seen again at 3000", store.check_and_record_lead("p1", &a, 0, 4_000).await), Ok(Some(3_000)));
    assert_eq!(t.note("same email", store.check_and_record_lead("p1", &a_email, 3_000, 4_000).await), Ok(Some(3_000)));
    // A lead the exchange could not auction is forgotten: only the record it made.
    t.note("forget another record", store.forget_lead("p1", &a, 2_999).await).expect("forgets nothing");
    assert_eq!(t.note("still seen", store.check_and_record_lead("p1", &a, 0, 5_000).await), Ok(Some(3_000)));
    t.note("forget the lead seen at 3000", store.forget_lead("p1", &a, 3_000).await).expect("forgets");
    assert_eq!(t.note("new again", store.check_and_record_lead("p1", &a, 0, 6_000).await), Ok(None));

    // Suppression per buyer, checked by the reservation itself: a pending sale counts as a purchase until released,
    // a committed one is recorded; suppression is checked before the caps.
    let free = Caps::default();
    let sell = |buyer: &str, keys: &ConsumerKeys, at: i64, since: Option<i64>| {
        let (sale, h9) = (purchase(buyer, keys, at, since), &h9);
        async move { store.reserve("c5", &free, h9, 100, Some(&sale), None).await }
    };
    assert_eq!(t.note("not bought", store.bought_since("b1", &a, 0).await), Ok(false));
    let s1 = t.note("reserve b1 buying a", sell("b1", &a, 5_000, Some(0)).await).expect("s1");
    assert_eq!(t.note("a pending sale is not yet bought", store.bought_since("b1", &a, 0).await), Ok(false));
    assert_eq!(
        t.note("same consumer by email while pending", sell("b1", &a_email, 5_100, Some(0)).await),
        Err(ReserveError::Suppressed { at_unix_ms: 5_000, pending: true })
    );
    assert_eq!(
        t.note(
            "suppression before caps",
            store
                .reserve(
                    "c6",
                    &Caps { leads_per_day: Some(0), ..free },
                    &h9,
                    1,
                    Some(&purchase("b1", &a_phone, 5_100, Some(0))),
                    None
                )
                .await
        ),
        Err(ReserveError::Suppressed { at_unix_ms: 5_000, pending: true })
    );
    let outside = t.note("pending sale before the window", sell("b1", &a, 5_100, Some(5_001)).await).expect("outside");
    assert_eq!(t.note("release outside", store.release(&outside).await), Ok(()));
    let other = t.note("other buyer while pending", sell("b2", &a, 5_100, Some(0)).await).expect("other buyer");
    assert_eq!(t.note("release other buyer", store.release(&other).await), Ok(()));
    let unchecked = t.note("no window is not checked", sell("b1", &a, 5_100, None).await).expect("no window");
    assert_eq!(t.note("release no window", store.release(&unchecked).await), Ok(()));
    assert_eq!(t.note("commit s1", store.commit(&s1, 90, &pickup("c5", 4, 90)).await), Ok(4));
    assert_eq!(t.note("bought since 5000", store.bought_since("b1", &a, 5_000).await), Ok(true));
    assert_eq!(t.note("bought since 5001", store.bought_since("b1", &a, 5_001).await), Ok(false));
    assert_eq!(t.note("released sales record nothing", store.bought_since("b2", &a, 0).await), Ok(false));
    assert_eq!(
        t.note("same consumer by phone after commit", sell("b1", &a_phone, 6_000, Some(0)).await),
        Err(ReserveError::Suppressed { at_unix_ms: 5_000, pending: false })
    );
    let older = t.note("older purchase, no window", sell("b1", &a, 4_000, None).await).expect("older");
    assert_eq!(t.note("commit older", store.commit(&older, 100, &pickup("c5", 5, 100)).await), Ok(5));
    assert_eq!(t.note("still bought since 5000", store.bought_since("b1", &a, 5_000).await), Ok(true));
    assert_eq!(
        t.note("latest purchase is named", sell("b1", &a, 6_000, Some(0)).await),
        Err(ReserveError::Suppressed { at_unix_ms: 5_000, pending: false })
    );
    assert_eq!(t.note("bought by same email", store.bought_since("b1", &a_email, 0).await), Ok(true));
    assert_eq!(t.note("other buyer", store.bought_since("b2", &a, 0).await), Ok(false));
    assert_eq!(
        t.note("refusals count nothing", store.usage("c5", &h9).await),
        Ok(Usage { leads_hour: 2, leads_day: 2, leads_month: 2, spend_day_cents: 190, spend_month_cents: 190 })
    );
    assert_eq!(t.note("refused by suppression, not cap", store.usage("c6", &h9).await), Ok(Usage::default()));

    // One-step sales (a Wasm buyer's): reserved and committed at once, refused exactly as a reservation is.
    let one_an_hour = Caps { leads_per_hour: Some(1), ..free };
    let s6 = pickup("c7", 6, 250);
    let b3 = |at: i64| purchase("b3", &a, at, Some(0));
    assert_eq!(t.note("sell s6", store.sell("c7", &one_an_hour, &h9, Some(&b3(7_000)), &s6).await), Ok(6));
    assert_eq!(t.note("bought at once", store.bought_since("b3", &a_phone, 7_000).await), Ok(true));
    let after_s6 = Usage { leads_hour: 1, leads_day: 1, leads_month: 1, spend_day_cents: 250, spend_month_cents: 250 };
    assert_eq!(t.note("a sale counts on the caps", store.usage("c7", &h9).await), Ok(after_s6));
    assert_eq!(
        t.note("sell the consumer again", store.sell("c7", &free, &h9, Some(&b3(7_100)), &pickup("c7", 7, 1)).await),
        Err(ReserveError::Suppressed { at_unix_ms: 7_000, pending: false })
    );
    assert_eq!(
        t.note("sell over the hour cap", store.sell("c7", &one_an_hour, &h9, None, &pickup("c7", 7, 1)).await),
        Err(ReserveError::CapReached(CapKind::LeadsPerHour))
    );
    let b4 = |keys: &ConsumerKeys, at: i64| purchase("b4", keys, at, Some(0));
    let held =
        t.note("b4 reserves a", store.reserve("c8", &free, &h9, 100, Some(&b4(&a, 7_200)), None).await).expect("b4");
    assert_eq!(
        t.note(
            "sell while a sale is pending",
            store.sell("c8", &free, &h9, Some(&b4(&a_email, 7_300)), &pickup("c8", 8, 100)).await
        ),
        Err(ReserveError::Suppressed { at_unix_ms: 7_200, pending: true })
    );
    assert_eq!(t.note("release b4", store.release(&held).await), Ok(()));
    let s9 = sale("c8", 9, 0, SaleDelivery::Webhook { url: "http://127.0.0.1:9/hook".into() });
    assert_eq!(t.note("sell s9 for its webhook", store.sell("c8", &free, &h9, None, &s9).await), Ok(7));
    assert_eq!(t.note("refused sales count nothing", store.usage("c7", &h9).await), Ok(after_s6));

    // Two-step pings: saved once, claimed once, expired at their expiry.
    let ping_a = ping_record("ping-a", 1, 1_000, 10_000);
    assert_eq!(t.note("save a", store.save_ping(ping_a.clone()).await), Ok(()));
    assert_eq!(
        t.note("save a twice", store.save_ping(ping_a.clone()).await),
        Err(StoreError::DuplicatePingId("ping-a".into()))
    );
    assert_eq!(t.note("claim unknown", store.claim_ping("ping-z", 2_000).await), Ok(PingClaim::Unknown));
    assert_eq!(t.note("open a", store.open_ping("ping-a").await), Ok(Some(ping_a.clone())));
    assert_eq!(t.note("open unknown", store.open_ping("ping-z").await), Ok(None));
    assert_eq!(
        t.note("claim a just before expiry", store.claim_ping("ping-a", 9_999).await),
        Ok(PingClaim::Claimed(Box::new(ping_a.clone())))
    );
    assert_eq!(t.note("open a once claimed", store.open_ping("ping-a").await), Ok(None));
    // A PII-free ping keeps no lead, only what was pinged.
    let pinged = Pinged {
        vertical: "health-insurance".into(),
        state: "FL".into(),
        zip3: "331".into(),
        age: 58,
        birth_year: None,
        trusted_form: true,
        jornaya: false,
        tcpa_text: true,
        keys: None,
        gender: None,
        source_id: "src-1".into(),
        sub_id: String::new(),
        trusted_form_url: Some("https://cert.trustedform.com/abc".into()),
        jornaya_leadid: None,
        extra: Default::default(),
    };
    let ping_c = PingRecord { lead: None, keys: None, pinged: Some(pinged), ..ping_record("ping-c", 3, 1_000, 10_000) };
    assert_eq!(t.note("save c", store.save_ping(ping_c.clone()).await), Ok(()));
    assert_eq!(t.note("open c", store.open_ping("ping-c").await), Ok(Some(ping_c.clone())));
    assert_eq!(t.note("claim c", store.claim_ping("ping-c", 2_000).await), Ok(PingClaim::Claimed(Box::new(ping_c))));
    assert_eq!(t.note("claim a again", store.claim_ping("ping-a", 9_999).await), Ok(PingClaim::AlreadyPosted));
    assert_eq!(
        t.note("save a after post", store.save_ping(ping_a).await),
        Err(StoreError::DuplicatePingId("ping-a".into()))
    );
    let ping_b = ping_record("ping-b", 2, 1_000, 10_000);
    assert_eq!(t.note("save b", store.save_ping(ping_b.clone()).await), Ok(()));
    let expired = Ok(PingClaim::Expired { expired_at_unix_ms: 10_000 });
    assert_eq!(t.note("claim b at expiry", store.claim_ping("ping-b", 10_000).await), expired);
    assert_eq!(t.note("claim b before expiry after expiring", store.claim_ping("ping-b", 5_000).await), expired);
    assert_eq!(
        t.note("save b after expiry", store.save_ping(ping_b).await),
        Err(StoreError::DuplicatePingId("ping-b".into()))
    );

    // Holds: a standing quote counts against the caps and the buyer's suppression window until its post takes it
    // (suppression checked again, caps not) or it expires; a hold the store refuses to take stays held.
    let hold_caps = Caps { leads_per_day: Some(2), spend_per_day_cents: Some(1_000), ..Caps::default() };
    let bob = keys_of(&lead(40));
    let bob_to_hb = |at: i64| purchase("hb", &bob, at, Some(0));
    let q1 = t.note("hold q1", store.hold("h1", &hold_caps, &h9, 600, Some(&bob_to_hb(1_000)), 5_000).await);
    let q1 = q1.expect("q1");
    assert_eq!(q1.expires_at_unix_ms, Some(5_000));
    assert_eq!(
        t.note("hold over the spend left", store.hold("h1", &hold_caps, &h9, 500, None, 5_000).await),
        Err(ReserveError::CapReached(CapKind::SpendPerDay))
    );
    assert!(matches!(
        t.note(
            "reserve a held consumer",
            store.reserve("h9", &Caps::default(), &h9, 1, Some(&bob_to_hb(1_100)), None).await
        ),
        Err(ReserveError::Suppressed { at_unix_ms: 1_000, pending: true })
    ));
    let q2 = t.note("hold q2", store.hold("h1", &hold_caps, &h9, 400, None, 3_000).await).expect("q2");
    let spent = |u: Result<Usage, StoreError>| u.map(|u| (u.leads_day, u.spend_day_cents));
    assert_eq!(t.note("usage with two holds", spent(store.usage("h1", &h9).await)), Ok((2, 1_000)));
    assert_eq!(t.note("release expired before q2's expiry", store.release_expired_holds(2_999).await), Ok(0));
    assert_eq!(t.note("release expired at q2's expiry", store.release_expired_holds(3_000).await), Ok(1));
    assert_eq!(t.note("usage after q2 expired", spent(store.usage("h1", &h9).await)), Ok((1, 600)));
    assert_eq!(
        t.note("take expired q2", store.take_hold(&q2, None, None).await),
        Err(ReserveError::Store(StoreError::UnknownReservation(q2.id)))
    );
    let handover =
        Handover { lead_id: "ping-41".into(), buyer_id: "hb".into(), campaign_id: "h1".into(), at_unix_ms: 2_000 };
    let taken = t.note("take q1", store.take_hold(&q1, Some(&bob_to_hb(2_000)), Some(&handover)).await);
    let taken = taken.expect("taken");
    assert_eq!((taken.expires_at_unix_ms, taken.price_cents), (None, 600));
    assert_eq!(
        t.note("take q1 again", store.take_hold(&q1, None, None).await),
        Err(ReserveError::Store(StoreError::UnknownReservation(q1.id)))
    );
    assert_eq!(t.note("release expired after the take", store.release_expired_holds(10_000).await), Ok(0));
    let q1_sale = pickup("h1", 41, 600);
    assert!(t.note("commit taken q1", store.commit(&taken, 600, &q1_sale).await).is_ok());
    assert_eq!(t.note("usage after the sale", spent(store.usage("h1", &h9).await)), Ok((1, 600)));
    let q3 = t.note("hold q3", store.hold("h2", &Caps::default(), &h9, 100, None, 9_000).await).expect("q3");
    assert_eq!(
        t.note("take q3 for a consumer hb bought", store.take_hold(&q3, Some(&bob_to_hb(2_500)), None).await),
        Err(ReserveError::Suppressed { at_unix_ms: 2_000, pending: false })
    );
    assert_eq!(t.note("release q3, still held", store.release(&q3).await), Ok(()));
    let plain = t.note("reserve plain", store.reserve("h2", &Caps::default(), &h9, 100, None, None).await);
    let plain = plain.expect("plain");
    assert_eq!(
        t.note("take a plain reservation", store.take_hold(&plain, None, None).await),
        Err(ReserveError::Store(StoreError::UnknownReservation(plain.id)))
    );
    assert_eq!(t.note("release plain", store.release(&plain).await), Ok(()));
    let q4 = t.note("hold q4", store.hold("h2", &Caps::default(), &h9, 300, None, 9_000).await).expect("q4");
    let q4_sale = pickup("h2", 42, 250);
    assert!(
        t.note(
            "sell q4 on its hold",
            store.sell_hold(&q4, Some(&purchase("hc", &bob, 3_000, Some(0))), &q4_sale).await
        )
        .is_ok()
    );
    assert_eq!(t.note("usage after selling q4", spent(store.usage("h2", &h9).await)), Ok((1, 250)));
    assert_eq!(
        t.note("sell q4 again", store.sell_hold(&q4, None, &q4_sale).await),
        Err(ReserveError::Store(StoreError::UnknownReservation(q4.id)))
    );

    // Sales per campaign, in sale order, each with its lead and delivery; only committed reservations are sales.
    assert_eq!(t.note("no sales", store.sales_of_campaign("c3").await), Ok(vec![]));
    assert_eq!(
        t.note("sales of c1", store.sales_of_campaign("c1").await),
        Ok(vec![StoredSale::new(1, &r1_sale, 350), StoredSale::new(2, &r3_sale, 650)])
    );
    assert_eq!(t.note("sales of c2", store.sales_of_campaign("c2").await), Ok(vec![StoredSale::new(3, &c2_sale, 0)]));
    assert_eq!(
        t.note(
            "sales of c5",
            store.sales_of_campaign("c5").await.map(|s| s.iter().map(|s| s.sale_id).collect::<Vec<_>>())
        ),
        Ok(vec![4, 5])
    );
    assert_eq!(t.note("sales of c7", store.sales_of_campaign("c7").await), Ok(vec![StoredSale::new(6, &s6, 250)]));
    assert_eq!(t.note("sales of c8", store.sales_of_campaign("c8").await), Ok(vec![StoredSale::new(7, &s9, 0)]));
    t.0
}

#[tokio::test]
async fn sqlite_store_answers_every_call_exactly_like_the_memory_store() {
    let (_dir, path) = temp_db();
    let sqlite = SqliteStore::open(&path).expect("opens");
    assert_eq!(scenario(&sqlite).await, scenario(&MemoryStore::new()).await);
}

/// `threads` tasks each try `per_thread` reservations on a campaign capped at `cap` leads a day, through the store
/// `store_for(thread)` gives them; returns how many succeeded and the campaign's usage afterwards.
async fn race_reservations(
    threads: usize,
    per_thread: usize,
    cap: u32,
    store_for: impl Fn(usize) -> Arc<dyn AuctionStore>,
) -> (usize, usize, Usage) {
    let caps = Caps { leads_per_day: Some(cap), ..Caps::default() };
    let window = windows("2026-03-14T09");
    let start = Arc::new(Barrier::new(threads));
    let handles: Vec<_> = (0..threads)
        .map(|thread| {
            let (store, caps, window, start) = (store_for(thread), caps, window.clone(), start.clone());
            tokio::spawn(async move {
                start.wait().await;
                let (mut ok, mut full) = (0, 0);
                for _ in 0..per_thread {
                    match store.reserve("capped", &caps, &window, 150, None, None).await {
                        Ok(_) => ok += 1,
                        Err(ReserveError::CapReached(CapKind::LeadsPerDay)) => full += 1,
                        Err(other) => panic!("reservation failed: {other}"),
                    }
                }
                (ok, full)
            })
        })
        .collect();
    let (mut ok, mut full) = (0, 0);
    for handle in handles {
        let (o, f) = handle.await.expect("a reserving task");
        (ok, full) = (ok + o, full + f);
    }
    let usage = store_for(0).usage("capped", &window).await.expect("usage");
    (ok, full, usage)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn concurrent_reservations_on_one_store_never_exceed_the_daily_cap() {
    let (_dir, path) = temp_db();
    let store: Arc<dyn AuctionStore> = Arc::new(SqliteStore::open(&path).expect("opens"));
    let (ok, full, usage) = race_reservations(8, 50, 25, |_| store.clone()).await;
    assert_eq!((ok, full), (25, 375));
    assert_eq!((usage.leads_day, usage.spend_day_cents), (25, 25 * 150));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn concurrent_reservations_over_separate_connections_to_one_file_never_exceed_the_daily_cap() {
    let (_dir, path) = temp_db();
    let stores: Vec<Arc<dyn AuctionStore>> =
        (0..8).map(|_| Arc::new(SqliteStore::open(&path).expect("opens")) as Arc<dyn AuctionStore>).collect();
    let (ok, full, usage) = race_reservations(8, 50, 25, |thread| stores[thread].clone()).await;
    assert_eq!((ok, full), (25, 375));
    assert_eq!((usage.leads_day, usage.spend_day_cents), (25, 25 * 150));
}

/// `threads` tasks, each through the store `store_for(thread)` gives it, race to reserve the same consumer for buyer
/// `b1` (half of them with another email: the same consumer by phone) under a 30-day suppression window, each trying
/// `per_thread` times without releasing; returns the reservations made and the refusals.
async fn race_suppressed_reservations(
    threads: usize,
    per_thread: usize,
    store_for: impl Fn(usize) -> Arc<dyn AuctionStore>,
) -> (Vec<Reservation>, Vec<ReserveError>) {
    let consumer = keys_of(&lead(42));
    let window = windows("2026-03-14T09");
    let start = Arc::new(Barrier::new(threads));
    let handles: Vec<_> = (0..threads)
        .map(|thread| {
            let (store, window, start) = (store_for(thread), window.clone(), start.clone());
            let keys = if thread % 2 == 0 {
                consumer.clone()
            } else {
                ConsumerKeys { email_sha256: keys_of(&lead(1_000 + thread as u32)).email_sha256, ..consumer.clone() }
            };
            tokio::spawn(async move {
                let sale = purchase("b1", &keys, 10_000 + thread as i64, Some(10_000 - 30 * 86_400_000));
                let campaign = format!("campaign-{}", thread % 3);
                start.wait().await;
                let mut results = Vec::new();
                for _ in 0..per_thread {
                    results.push(store.reserve(&campaign, &Caps::default(), &window, 900, Some(&sale), None).await);
                }
                results
            })
        })
        .collect();
    let (mut won, mut refused) = (Vec::new(), Vec::new());
    for handle in handles {
        for result in handle.await.expect("a reserving task") {
            match result {
                Ok(reservation) => won.push(reservation),
                Err(refusal) => refused.push(refusal),
            }
        }
    }
    (won, refused)
}

/// Exactly one of the racing reservations won, every other one was refused for its pending sale, and once the winner
/// is committed the consumer is bought and a new reservation is refused for that purchase.
async fn assert_one_sale_to_the_buyer(
    store: &dyn AuctionStore,
    won: Vec<Reservation>,
    refused: Vec<ReserveError>,
    tries: usize,
) {
    assert_eq!(won.len(), 1, "one consumer, one buyer, one reservation: {won:?}");
    assert_eq!(refused.len(), tries - 1);
    let at = won[0].purchase.as_ref().map(|p| p.at_unix_ms).expect("the reservation names its purchase");
    assert!(refused.iter().all(|r| *r == ReserveError::Suppressed { at_unix_ms: at, pending: true }), "{refused:?}");
    store.commit(&won[0], 900, &pickup("campaign-0", 42, 900)).await.expect("commits");
    let consumer = keys_of(&lead(42));
    assert_eq!(store.bought_since("b1", &consumer, 0).await, Ok(true));
    assert_eq!(
        store
            .reserve(
                "campaign-0",
                &Caps::default(),
                &windows("2026-03-14T09"),
                900,
                Some(&purchase("b1", &consumer, 20_000, Some(0))),
                None
            )
            .await,
        Err(ReserveError::Suppressed { at_unix_ms: at, pending: false })
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn concurrent_reservations_of_one_consumer_over_separate_connections_let_one_buyer_have_it_once() {
    let (_dir, path) = temp_db();
    let stores: Vec<Arc<dyn AuctionStore>> =
        (0..8).map(|_| Arc::new(SqliteStore::open(&path).expect("opens")) as Arc<dyn AuctionStore>).collect();
    let (won, refused) = race_suppressed_reservations(8, 5, |thread| stores[thread].clone()).await;
    assert_one_sale_to_the_buyer(stores[0].as_ref(), won, refused, 40).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn concurrent_reservations_of_one_consumer_on_one_store_let_one_buyer_have_it_once() {
    let (_dir, path) = temp_db();
    let sqlite: Arc<dyn AuctionStore> = Arc::new(SqliteStore::open(&path).expect("opens"));
    let (won, refused) = race_suppressed_reservations(8, 5, |_| sqlite.clone()).await;
    assert_one_sale_to_the_buyer(sqlite.as_ref(), won, refused, 40).await;
    let memory: Arc<dyn AuctionStore> = Arc::new(MemoryStore::new());
    let (won, refused) = race_suppressed_reservations(8, 5, |_| memory.clone()).await;
    assert_one_sale_to_the_buyer(memory.as_ref(), won, refused, 40).await;
}

#[tokio::test]
async fn a_reservation_pending_in_a_version_1_database_still_commits_after_the_upgrade() {
    let (_dir, path) = temp_db();
    let mut conn = rusqlite::Connection::open(&path).expect("a raw connection");
    assert_eq!(migrations::apply(&mut conn, &MIGRATIONS[..1]).expect("migrates to 1"), vec![1]);
    conn.execute(
        "INSERT INTO reservation (campaign_id, hour_window, day_window, month_window, price_cents)
         VALUES ('c1', '2026-03-14T09', '2026-03-14', '2026-03', 500)",
        [],
    )
    .expect("a version-1 reservation");
    drop(conn);
    let store = SqliteStore::open(&path).expect("upgrades");
    assert_eq!(store.schema_version(), Ok(SCHEMA_VERSION));
    let old = Reservation {
        id: 1,
        campaign_id: "c1".into(),
        windows: windows("2026-03-14T09"),
        price_cents: 500,
        purchase: None,
        expires_at_unix_ms: None,
    };
    assert_eq!(store.commit(&old, 450, &pickup("c1", 1, 450)).await, Ok(1));
    assert_eq!(store.pending_reservations(), Ok(0));
}

#[tokio::test]
async fn everything_recorded_survives_closing_and_reopening_the_file() {
    let (_dir, path) = temp_db();
    let caps = Caps { leads_per_day: Some(2), ..Caps::default() };
    let h9 = windows("2026-03-14T09");
    let keys = keys_of(&lead(1));
    let pending = {
        let store = SqliteStore::open(&path).expect("opens");
        let sold = store.reserve("c1", &caps, &h9, 500, None, None).await.expect("reserves");
        store.commit(&sold, 450, &pickup("c1", 1, 450)).await.expect("commits");
        let pending = store.reserve("c1", &caps, &h9, 500, None, None).await.expect("reserves");
        assert_eq!(store.check_and_record_lead("p1", &keys, 0, 1_000).await, Ok(None));
        let bought =
            store.reserve("c9", &Caps::default(), &h9, 100, Some(&purchase("b1", &keys, 1_000, Some(0))), None).await;
        store
            .commit(&bought.expect("reserves"), 100, &sale("c9", 2, 100, SaleDelivery::Posted))
            .await
            .expect("commits");
        store
            .reserve("c9", &Caps::default(), &h9, 100, Some(&purchase("b2", &keys, 1_500, Some(0))), None)
            .await
            .expect("reserves");
        store.save_ping(ping_record("ping-a", 1, 1_000, 10_000)).await.expect("saves");
        pending
    };

    let store = SqliteStore::open(&path).expect("reopens");
    let usage = store.usage("c1", &h9).await.expect("usage");
    assert_eq!((usage.leads_day, usage.spend_day_cents), (2, 950));
    assert_eq!(store.pending_reservations(), Ok(2), "c1's and b2's pending sales");
    assert_eq!(
        store.reserve("c1", &caps, &h9, 500, None, None).await,
        Err(ReserveError::CapReached(CapKind::LeadsPerDay))
    );
    assert_eq!(store.release(&pending).await, Ok(()));
    assert_eq!(store.usage("c1", &h9).await.map(|u| (u.leads_day, u.spend_day_cents)), Ok((1, 450)));
    assert_eq!(store.check_and_record_lead("p1", &keys, 0, 2_000).await, Ok(Some(1_000)));
    assert_eq!(store.bought_since("b1", &keys, 1_000).await, Ok(true));
    assert_eq!(
        store.reserve("c9", &Caps::default(), &h9, 100, Some(&purchase("b2", &keys, 2_000, Some(0))), None).await,
        Err(ReserveError::Suppressed { at_unix_ms: 1_500, pending: true }),
        "a pending sale still suppresses after a restart"
    );
    assert_eq!(
        store.claim_ping("ping-a", 2_000).await,
        Ok(PingClaim::Claimed(Box::new(ping_record("ping-a", 1, 1_000, 10_000))))
    );
    assert_eq!(store.sales_of_campaign("c1").await, Ok(vec![StoredSale::new(1, &pickup("c1", 1, 450), 450)]));
    assert_eq!(store.sales_of_campaign("c9").await.map(|s| s.len()), Ok(1));
}

#[tokio::test]
async fn reservation_ids_are_not_reused_after_reopen() {
    let (_dir, path) = temp_db();
    let h9 = windows("2026-03-14T09");
    let first = {
        let store = SqliteStore::open(&path).expect("opens");
        let first = store.reserve("c1", &Caps::default(), &h9, 100, None, None).await.expect("reserves");
        store.release(&first).await.expect("releases");
        first
    };
    let store = SqliteStore::open(&path).expect("reopens");
    let second = store.reserve("c1", &Caps::default(), &h9, 100, None, None).await.expect("reserves");
    assert_ne!(second.id, first.id);
    assert_eq!(store.release(&first).await, Err(StoreError::UnknownReservation(first.id)));
}

#[tokio::test]
async fn a_claimed_ping_cannot_be_claimed_again_even_after_reopen() {
    let (_dir, path) = temp_db();
    {
        let store = SqliteStore::open(&path).expect("opens");
        store.save_ping(ping_record("ping-a", 1, 1_000, 10_000)).await.expect("saves");
        assert!(matches!(store.claim_ping("ping-a", 2_000).await, Ok(PingClaim::Claimed(_))));
    }
    let store = SqliteStore::open(&path).expect("reopens");
    assert_eq!(store.claim_ping("ping-a", 2_000).await, Ok(PingClaim::AlreadyPosted));
}

#[tokio::test]
async fn a_post_a_crash_cut_short_is_open_again_and_a_finished_one_keeps_no_lead() {
    let (_dir, path) = temp_db();
    let lead_of = |path: &std::path::Path, id: &str| -> Option<String> {
        let conn = rusqlite::Connection::open(path).expect("opens");
        conn.query_row("SELECT record_json FROM ping WHERE ping_id = ?1", [id], |row| row.get(0)).expect("a ping row")
    };
    {
        let store = SqliteStore::open(&path).expect("opens");
        for id in ["ping-a", "ping-b"] {
            store.save_ping(ping_record(id, 1, 1_000, 10_000)).await.expect("saves");
            assert!(matches!(store.claim_ping(id, 2_000).await, Ok(PingClaim::Claimed(_))));
        }
        store.finish_post("ping-b").await.expect("finishes");
        assert_eq!(store.claim_ping("ping-a", 2_000).await, Ok(PingClaim::AlreadyPosted), "while its post runs");
    }
    assert!(lead_of(&path, "ping-b").is_none(), "a finished post keeps no lead");
    // The process died while ping-a was posting, with no sale: the next start opens it for the retry.
    let store = SqliteStore::open(&path).expect("reopens");
    assert_eq!(store.reopen_interrupted_posts(), Ok(1));
    assert!(matches!(store.claim_ping("ping-a", 3_000).await, Ok(PingClaim::Claimed(_))), "claimed again");
    assert_eq!(store.claim_ping("ping-b", 3_000).await, Ok(PingClaim::AlreadyPosted));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn only_one_of_many_concurrent_claims_of_a_ping_wins() {
    let (_dir, path) = temp_db();
    SqliteStore::open(&path).expect("opens").save_ping(ping_record("ping-a", 1, 1_000, 10_000)).await.expect("saves");
    let start = Arc::new(Barrier::new(4));
    let handles: Vec<_> = (0..4)
        .map(|_| {
            let (path, start) = (path.clone(), start.clone());
            tokio::spawn(async move {
                let store = SqliteStore::open(&path).expect("opens");
                start.wait().await;
                store.claim_ping("ping-a", 2_000).await.expect("claims")
            })
        })
        .collect();
    let mut claims: Vec<PingClaim> = Vec::new();
    for handle in handles {
        claims.push(handle.await.expect("a claiming task"));
    }
    assert_eq!(claims.iter().filter(|c| matches!(c, PingClaim::Claimed(_))).count(), 1);
    assert_eq!(claims.iter().filter(|c| **c == PingClaim::AlreadyPosted).count(), 3);
}

#[tokio::test]
async fn an_expired_ping_reports_expired_even_after_reopen() {
    let (_dir, path) = temp_db();
    {
        let store = SqliteStore::open(&path).expect("opens");
        store.save_ping(ping_record("ping-a", 1, 1_000, 10_000)).await.expect("saves");
        assert_eq!(store.claim_ping("ping-a", 10_001).await, Ok(PingClaim::Expired { expired_at_unix_ms: 10_000 }));
    }
    let store = SqliteStore::open(&path).expect("reopens");
    assert_eq!(store.claim_ping("ping-a", 3_000).await, Ok(PingClaim::Expired { expired_at_unix_ms: 10_000 }));
}

/// Every byte SQLite has written for the database at `path` (main file and write-ahead log).
fn database_bytes(path: &Path) -> Vec<u8> {
    let mut bytes = std::fs::read(path).expect("the database file");
    let wal = path.with_extension("db-wal");
    if wal.exists() {
        bytes.extend(std::fs::read(wal).expect("the wal file"));
    }
    bytes
}

fn contains(haystack: &[u8], needle: &str) -> bool {
    haystack.windows(needle.len()).any(|w| w == needle.as_bytes())
}

#[tokio::test]
async fn duplicate_and_suppression_records_keep_only_hashes_of_the_consumer() {
    let (_dir, path) = temp_db();
    let consumer = lead(7);
    let store = SqliteStore::open(&path).expect("opens");
    store.check_and_record_lead("p1", &keys_of(&consumer), 0, 1_000).await.expect("records");
    let bought = Some(purchase("b1", &keys_of(&consumer), 1_000, Some(0)));
    // The sale row holds its own lead (PII until the retention purge); here another consumer's, so that only the
    // look-up records of this one are in the file.
    store
        .commit(
            &store
                .reserve("c1", &Caps::default(), &windows("2026-03-14T09"), 100, bought.as_ref(), None)
                .await
                .expect("reserves"),
            100,
            &pickup("c1", 8, 100),
        )
        .await
        .expect("commits");
    let pending = Some(purchase("b2", &keys_of(&consumer), 1_000, Some(0)));
    store
        .reserve("c2", &Caps::default(), &windows("2026-03-14T09"), 100, pending.as_ref(), None)
        .await
        .expect("stays pending");
    drop(store);
    let bytes = database_bytes(&path);
    assert!(contains(&bytes, &keys_of(&consumer).phone_sha256), "the hash is stored");
    assert!(!contains(&bytes, &consumer.consumer.phone), "the phone is not");
    assert!(!contains(&bytes, &consumer.consumer.email), "the email is not");
}

#[tokio::test]
async fn a_ping_drops_its_lead_once_posted_or_expired() {
    let (_dir, path) = temp_db();
    let store = SqliteStore::open(&path).expect("opens");
    store.save_ping(ping_record("ping-a", 1, 1_000, 10_000)).await.expect("saves");
    store.save_ping(ping_record("ping-b", 2, 1_000, 10_000)).await.expect("saves");
    store.save_ping(ping_record("ping-c", 3, 1_000, 10_000)).await.expect("saves");
    store.claim_ping("ping-a", 2_000).await.expect("claims");
    store.finish_post("ping-a").await.expect("its post ends");
    store.claim_ping("ping-b", 10_000).await.expect("expires");
    let conn = rusqlite::Connection::open(&path).expect("a raw connection");
    let held: Vec<(String, bool)> = conn
        .prepare("SELECT ping_id, record_json IS NOT NULL FROM ping ORDER BY ping_id")
        .and_then(|mut stmt| stmt.query_map([], |row| Ok((row.get(0)?, row.get(1)?)))?.collect())
        .expect("reads pings");
    assert_eq!(held, vec![("ping-a".into(), false), ("ping-b".into(), false), ("ping-c".into(), true)]);
}

#[test]
fn opening_creates_the_parent_directories_in_wal_mode_at_the_current_schema() {
    let dir = tempfile::tempdir().expect("a temp dir");
    let path = dir.path().join("data").join("nested").join("exchange.db");
    let store = SqliteStore::open(&path).expect("opens");
    assert!(path.exists());
    assert_eq!(store.schema_version(), Ok(SCHEMA_VERSION));
    let conn = rusqlite::Connection::open(&path).expect("a raw connection");
    let mode: String = conn.pragma_query_value(None, "journal_mode", |row| row.get(0)).expect("journal mode");
    assert_eq!(mode, "wal");
}

#[test]
fn migrating_an_up_to_date_database_applies_nothing() {
    let (_dir, path) = temp_db();
    let mut conn = rusqlite::Connection::open(&path).expect("a raw connection");
    let all: Vec<u32> = MIGRATIONS.iter().map(|m| m.version).collect();
    assert_eq!(migrations::migrate(&mut conn).expect("migrates"), all);
    assert_eq!(migrations::migrate(&mut conn).expect("migrates"), Vec::<u32>::new());
    drop(conn);
    SqliteStore::open(&path).expect("opens");
    SqliteStore::open(&path).expect("opens again");
    let mut conn = rusqlite::Connection::open(&path).expect("a raw connection");
    assert_eq!(migrations::migrate(&mut conn).expect("migrates"), Vec::<u32>::new());
    assert_eq!(migrations::user_version(&conn).expect("version"), SCHEMA_VERSION);
}

#[test]
fn a_database_from_a_newer_pingpost_is_refused() {
    let (_dir, path) = temp_db();
    drop(SqliteStore::open(&path).expect("opens"));
    let conn = rusqlite::Connection::open(&path).expect("a raw connection");
    conn.pragma_update(None, "user_version", SCHEMA_VERSION + 1).expect("sets the version");
    drop(conn);
    let err = SqliteStore::open(&path).expect_err("a newer schema is refused");
    assert!(
        matches!(
            &err,
            OpenError::Migrate { source: MigrationError::NewerThanKnown { found, known }, .. }
                if *found == SCHEMA_VERSION + 1 && *known == SCHEMA_VERSION
        ),
        "{err:?}"
    );
    assert!(err.to_string().contains("newer than"), "{err}");
}

#[test]
fn a_failing_migration_is_rolled_back_and_leaves_the_previous_version() {
    let (_dir, path) = temp_db();
    let mut conn = rusqlite::Connection::open(&path).expect("a raw connection");
    let steps = [
        Migration { version: 1, name: "first", sql: "CREATE TABLE first (id INTEGER);" },
        Migration { version: 2, name: "broken", sql: "CREATE TABLE second (id INTEGER); THIS IS NOT SQL;" },
    ];
    let err = migrations::apply(&mut conn, &steps).expect_err("the broken step fails");
    assert!(matches!(err, MigrationError::Failed { version: 2, name: "broken", .. }), "{err:?}");
    assert_eq!(migrations::user_version(&conn).expect("version"), 1);
    let tables: Vec<String> = conn
        .prepare("SELECT name FROM sqlite_schema WHERE type = 'table' ORDER BY name")
        .and_then(|mut stmt| stmt.query_map([], |row| row.get(0))?.collect())
        .expect("lists tables");
    assert_eq!(tables, vec!["first".to_owned()]);
}

#[test]
fn a_migration_list_out_of_order_is_refused() {
    let (_dir, path) = temp_db();
    let mut conn = rusqlite::Connection::open(&path).expect("a raw connection");
    let steps = [Migration { version: 2, name: "skips one", sql: "CREATE TABLE t (id INTEGER);" }];
    let err = migrations::apply(&mut conn, &steps).expect_err("out of order");
    assert!(matches!(err, MigrationError::OutOfOrder { position: 0, version: 2 }), "{err:?}");
    assert_eq!(migrations::user_version(&conn).expect("version"), 0);
}

#[test]
fn a_path_that_cannot_hold_a_database_is_an_error_not_a_panic() {
    let dir = tempfile::tempdir().expect("a temp dir");
    let err = SqliteStore::open(dir.path()).expect_err("a directory is not a database");
    assert!(matches!(err, OpenError::Open { .. } | OpenError::Configure { .. }), "{err:?}");
}

/// Commits a sale of lead `n` to `campaign_id` (bought by `buyer-of-{campaign_id}`) at `sold_at_unix_ms`.
async fn sell(store: &SqliteStore, campaign_id: &str, n: u32, sold_at_unix_ms: i64, delivery: SaleDelivery) -> u64 {
    let reservation = store
        .reserve(campaign_id, &Caps::default(), &windows("2026-03-14T09"), 1_000, None, None)
        .await
        .expect("reserves");
    let record = SaleRecord { sold_at_unix_ms, ..sale(campaign_id, n, 1_000, delivery) };
    store.commit(&reservation, 1_000, &record).await.expect("commits")
}

/// The lead ids of `sales`.
fn lead_ids(sales: &[StoredSale]) -> Vec<&str> {
    sales.iter().map(|s| s.lead_id.as_str()).collect()
}

#[tokio::test]
async fn pick_ups_of_a_version_3_database_become_pickup_sales_after_the_upgrade() {
    let (_dir, path) = temp_db();
    let mut conn = rusqlite::Connection::open(&path).expect("a raw connection");
    assert_eq!(migrations::apply(&mut conn, &MIGRATIONS[..3]).expect("migrates to 3"), vec![1, 2, 3]);
    let lead_json = serde_json::to_string(&lead(1)).expect("json");
    conn.execute(
        "INSERT INTO ping (ping_id, publisher_id, state, created_at_unix_ms, expires_at_unix_ms, record_json)
         VALUES ('ping-1', 'pub-two-step', 'posted', 1, 2, NULL)",
        [],
    )
    .expect("a posted ping");
    for ping_id in ["ping-1", "ping-one-shot"] {
        conn.execute(
            "INSERT INTO pickup (campaign_id, buyer_id, ping_id, price_cents, sold_at_unix_ms, lead_json)
             VALUES ('c1', 'b1', ?1, 700, 5, ?2)",
            rusqlite::params![ping_id, lead_json],
        )
        .expect("a version-3 pick-up");
    }
    drop(conn);
    let store = SqliteStore::open(&path).expect("upgrades");
    let sales = store.sales_of_campaign("c1").await.expect("sales");
    assert_eq!(lead_ids(&sales), ["ping-1", "ping-one-shot"]);
    assert_eq!(
        sales.iter().map(|s| (s.publisher_id.as_str(), &s.delivery, s.price_cents)).collect::<Vec<_>>(),
        [("pub-two-step", &SaleDelivery::Pickup, 700), ("", &SaleDelivery::Pickup, 700)]
    );
    assert_eq!(sales[0].lead, Some(lead(1)));
}

#[tokio::test]
async fn a_buyer_reads_only_its_own_sales_with_the_lead_and_a_publisher_reads_them_without() {
    let (_dir, path) = temp_db();
    let store = SqliteStore::open(&path).expect("opens");
    let mut ids: Vec<u64> = Vec::new();
    for n in 1..=5 {
        ids.push(sell(&store, if n == 3 { "c2" } else { "c1" }, n, 1_000, SaleDelivery::Pickup).await);
    }
    let first_page = store.sales_for_buyer("buyer-of-c1", None, 2).expect("page 1");
    assert_eq!(lead_ids(&first_page), ["ping-1", "ping-2"]);
    assert_eq!(first_page[0].lead, Some(lead(1)), "a buyer reads the full lead it bought");
    let next_page = store.sales_for_buyer("buyer-of-c1", Some(first_page[1].sale_id), 10).expect("page 2");
    assert_eq!(lead_ids(&next_page), ["ping-4", "ping-5"]);
    assert_eq!(store.sale_for_buyer("buyer-of-c1", "ping-4").expect("reads").map(|s| s.sale_id), Some(ids[3]));
    assert_eq!(store.sale_for_buyer("buyer-of-c1", "ping-3"), Ok(None), "ping-3 was sold to someone else");
    assert_eq!(store.sale_for_buyer("buyer-of-c1", "ping-404"), Ok(None));
    let published = store.sales_for_publisher("pub-1", None, 100).expect("publisher");
    assert_eq!(published.len(), 5);
    assert!(published.iter().all(|s| s.lead.is_none()), "a publisher is not handed the PII again");
    assert_eq!(store.sales_for_publisher("pub-other", None, 100), Ok(vec![]));
}

#[tokio::test]
async fn a_buyer_returns_its_lead_within_the_window_once_and_never_after_it_or_someone_elses() {
    let (_dir, path) = temp_db();
    let store = SqliteStore::open(&path).expect("opens");
    const WINDOW: i64 = 72 * 3_600_000;
    let mine = sell(&store, "c1", 1, 10_000, SaleDelivery::Pickup).await;
    sell(&store, "c1", 2, 10_000, SaleDelivery::Pickup).await;
    sell(&store, "c2", 3, 10_000, SaleDelivery::Pickup).await;

    let returned = store.return_sale("buyer-of-c1", SaleRef::Id(mine), "wrong number", 10_000 + WINDOW, WINDOW);
    let returned = returned.expect("within the window (its last millisecond)");
    assert_eq!(
        returned.returned,
        Some(SaleReturn { reason: "wrong number".into(), returned_at_unix_ms: 10_000 + WINDOW })
    );
    assert_eq!(
        store.return_sale("buyer-of-c1", SaleRef::Lead("ping-1"), "again", 10_001, WINDOW),
        Err(ReturnError::AlreadyReturned { returned_at_unix_ms: 10_000 + WINDOW })
    );
    assert_eq!(
        store.return_sale("buyer-of-c1", SaleRef::Lead("ping-2"), "late", 10_001 + WINDOW, WINDOW),
        Err(ReturnError::WindowPassed { window_closed_at_unix_ms: 10_000 + WINDOW })
    );
    assert_eq!(
        store.return_sale("buyer-of-c1", SaleRef::Lead("ping-3"), "not mine", 10_001, WINDOW),
        Err(ReturnError::NotYours)
    );
    assert_eq!(store.return_sale("buyer-of-c1", SaleRef::Id(999), "x", 10_001, WINDOW), Err(ReturnError::UnknownSale));
    assert_eq!(
        store.return_sale("buyer-of-c1", SaleRef::Lead("ping-2"), "  ", 10_001, WINDOW),
        Err(ReturnError::MissingReason)
    );
    let stored = store.sale_for_buyer("buyer-of-c1", "ping-1").expect("reads").expect("still there");
    assert_eq!(stored.returned.map(|r| r.reason), Some("wrong number".to_owned()));
    assert_eq!(store.sale_for_buyer("buyer-of-c1", "ping-2").expect("reads").and_then(|s| s.returned), None);
}

#[tokio::test]
async fn every_hand_over_of_pii_is_audited_posts_with_their_reservation_and_api_reads_when_recorded() {
    let (_dir, path) = temp_db();
    let store = SqliteStore::open(&path).expect("opens");
    let handover = |campaign: &str, at_unix_ms| Handover {
        lead_id: "ping-1".into(),
        buyer_id: format!("buyer-of-{campaign}"),
        campaign_id: campaign.into(),
        at_unix_ms,
    };
    let h9 = windows("2026-03-14T09");
    // A post the buyer refused: released, and still audited (it saw the lead).
    let (first, second, third) = (handover("http-1", 4_000), handover("http-3", 4_500), handover("http-2", 5_000));
    let free = Caps::default();
    let refused = store.reserve("http-1", &free, &h9, 1_000, None, Some(&first));
    store.release(&refused.await.expect("reserves")).await.expect("releases");
    // A reservation the caps refuse posts nothing: no row.
    let full = Caps { leads_per_day: Some(0), ..Caps::default() };
    let capped = store.reserve("http-3", &full, &h9, 1_000, None, Some(&second)).await;
    assert!(matches!(capped, Err(ReserveError::CapReached(_))), "{capped:?}");
    let accepted = store.reserve("http-2", &free, &h9, 1_000, None, Some(&third));
    let record = SaleRecord { sold_at_unix_ms: 5_000, ..sale("http-2", 1, 1_000, SaleDelivery::Posted) };
    store.commit(&accepted.await.expect("reserves"), 1_000, &record).await.expect("commits");
    sell(&store, "wasm-1", 2, 5_000, SaleDelivery::Pickup).await;
    store.record_pii_access("buyer-of-wasm-1", "ping-2", Some("wasm-1"), PiiAccess::Api, 6_000).expect("audits");
    let entry = |campaign: &str, at_unix_ms| PiiAuditEntry {
        principal_id: format!("buyer-of-{campaign}"),
        lead_id: "ping-1".into(),
        campaign_id: Some(campaign.into()),
        how: PiiAccess::Post,
        at_unix_ms,
    };
    assert_eq!(
        store.pii_audit("ping-1"),
        Ok(vec![entry("http-1", 4_000), entry("http-2", 5_000)]),
        "one row per post, none for the commit"
    );
    let picked_up = store.pii_audit("ping-2").expect("audit");
    assert_eq!(
        picked_up.iter().map(|e| (e.principal_id.as_str(), e.how, e.at_unix_ms)).collect::<Vec<_>>(),
        [("buyer-of-wasm-1", PiiAccess::Api, 6_000)],
        "a pick-up is handed over when read, not when sold"
    );
    assert_eq!(store.pii_audit("ping-404"), Ok(vec![]));
}

#[tokio::test]
async fn the_retention_purge_clears_old_leads_and_pings_but_keeps_the_sales() {
    let (_dir, path) = temp_db();
    let store = SqliteStore::open(&path).expect("opens");
    let old = sell(&store, "c1", 1, 1_000, SaleDelivery::Pickup).await;
    let queued = sell(&store, "c1", 2, 1_500, SaleDelivery::Webhook { url: "http://127.0.0.1:9/hook".into() }).await;
    sell(&store, "c1", 3, 9_000, SaleDelivery::Pickup).await;
    store.save_ping(ping_record("ping-old", 4, 1_000, 1_500)).await.expect("saves");
    store.save_ping(ping_record("ping-new", 5, 9_000, 9_500)).await.expect("saves");

    let counts = store.purge_pii(5_000).expect("purges");
    assert_eq!(counts, PurgeCounts { sales: 2, pings: 1, deliveries_abandoned: 1 });
    let sales = store.sales_of_campaign("c1").await.expect("sales");
    assert_eq!(
        sales.iter().map(|s| (s.sale_id, s.price_cents, s.lead.is_some())).collect::<Vec<_>>(),
        [(old, 1_000, false), (queued, 1_000, false), (sales[2].sale_id, 1_000, true)]
    );
    assert_eq!(store.claim_ping("ping-old", 1_200).await, Ok(PingClaim::Expired { expired_at_unix_ms: 1_500 }));
    assert!(matches!(store.claim_ping("ping-new", 9_100).await, Ok(PingClaim::Claimed(_))));
    let failed = store.deliveries(Some(DeliveryStatus::Failed)).expect("deliveries");
    assert_eq!(failed.iter().map(|d| d.sale_id).collect::<Vec<_>>(), [queued], "nothing is left to deliver");
    assert_eq!(store.purge_pii(5_000), Ok(PurgeCounts::default()), "a second purge finds nothing");

    drop(store);
    let bytes = database_bytes(&path);
    for n in [1, 2, 4] {
        assert!(!contains(&bytes, &lead(n).consumer.email), "lead {n}'s email is gone from the file");
    }
    assert!(contains(&bytes, &lead(3).consumer.email), "a recent lead is kept");
}

#[tokio::test]
async fn stale_reservations_left_by_a_crash_are_released_at_start_and_recent_ones_are_not() {
    let (_dir, path) = temp_db();
    let caps = Caps { leads_per_day: Some(2), ..Caps::default() };
    let h9 = windows("2026-03-14T09");
    let keys = keys_of(&lead(1));
    {
        let store = SqliteStore::open(&path).expect("opens");
        store
            .reserve("c1", &caps, &h9, 500, Some(&purchase("b1", &keys, 1_000, Some(0))), None)
            .await
            .expect("crashed sale");
        store.reserve("c1", &caps, &h9, 300, Some(&purchase("b2", &keys, 9_000, Some(0))), None).await.expect("recent");
    }
    let store = SqliteStore::open(&path).expect("reopens after the crash");
    assert_eq!(store.release_stale_reservations(5_000), Ok(1));
    assert_eq!(store.pending_reservations(), Ok(1));
    assert_eq!(store.usage("c1", &h9).await.map(|u| (u.leads_day, u.spend_day_cents)), Ok((1, 300)));
    assert!(
        store.reserve("c2", &Caps::default(), &h9, 1, Some(&purchase("b1", &keys, 9_500, Some(0))), None).await.is_ok(),
        "the crashed sale no longer suppresses its consumer"
    );
    assert_eq!(store.release_stale_reservations(5_000), Ok(0));
}

#[tokio::test]
async fn a_standing_quotes_hold_survives_a_restart_and_an_expired_one_is_released_at_start() {
    let (_dir, path) = temp_db();
    let caps = Caps { spend_per_day_cents: Some(1_000), ..Caps::default() };
    let h9 = windows("2026-03-14T09");
    let standing = {
        let store = SqliteStore::open(&path).expect("opens");
        store.hold("c1", &caps, &h9, 300, None, 4_000).await.expect("expires before the restart");
        store.hold("c1", &caps, &h9, 500, None, 60_000).await.expect("stands past the restart")
    };
    let store = SqliteStore::open(&path).expect("reopens after the crash");
    assert_eq!(store.release_stale_reservations(5_000), Ok(1), "only the expired hold");
    assert_eq!(store.usage("c1", &h9).await.map(|u| u.spend_day_cents), Ok(500));
    assert!(store.take_hold(&standing, None, None).await.is_ok(), "the standing quote's post can still take it");
}

#[test]
fn an_auction_is_recorded_replaced_by_its_post_and_shown_only_to_its_publisher() {
    let (_dir, path) = temp_db();
    let store = SqliteStore::open(&path).expect("opens");
    let record = |status: &str, at: i64, json: &str| AuctionRecord {
        lead_id: "ping-1".into(),
        publisher_id: "pub-1".into(),
        status: status.into(),
        received_at_unix_ms: at,
        outcome_json: json.into(),
    };
    store.record_auctions(vec![record("unsold", 1_000, r#"{"step":"ping"}"#)]).expect("records");
    store.record_auctions(vec![record("sold", 2_000, r#"{"step":"post"}"#)]).expect("replaces");
    let record = store.auction("ping-1").expect("reads").expect("recorded");
    assert_eq!(
        (record.status.as_str(), record.received_at_unix_ms, record.outcome_json.as_str()),
        ("sold", 2_000, r#"{"step":"post"}"#)
    );
    assert_eq!(store.auction_for_publisher("pub-1", "ping-1").expect("reads"), Some(record));
    assert_eq!(store.auction_for_publisher("pub-2", "ping-1"), Ok(None));
    assert_eq!(store.auction("ping-404"), Ok(None));
}
