use super::*;
use pingpost_engine::Trace;
use pingpost_engine::store::SaleDelivery;

fn outcome(status: OutcomeStatus, sales: Vec<Sale>) -> Outcome {
    Outcome {
        ping_id: "p_1".into(),
        status,
        reason: (status != OutcomeStatus::Sold).then(|| "nobody bid".to_owned()),
        sales,
        field_errors: vec![],
        pii_leaks: vec![],
        trace: Trace::default(),
    }
}

#[test]
fn a_recorded_outcome_gives_the_answer_the_lead_got() {
    let sold = outcome(
        OutcomeStatus::Sold,
        vec![Sale::new("c1", "b1", 2_000, 1_000, None), Sale::new("c2", "b2", 1_500, 1_000, Some("x".into()))],
    );
    for outcome in [sold, outcome(OutcomeStatus::Unsold, vec![])] {
        let json = serde_json::to_string(&outcome).expect("serialises");
        assert_eq!(LeadAnswer::from_recorded(&json), Some(LeadAnswer::of(&outcome)));
    }
}

#[test]
fn a_pings_record_is_not_a_leads_answer_and_a_posts_is_not_a_pings() {
    let ping = PingOutcome {
        ping_id: "p_2".into(),
        status: PingStatus::Bid,
        best_bid_cents: Some(2_000),
        payout_cents: Some(1_800),
        expires_at_unix_ms: Some(9_000),
        reason: None,
        field_errors: vec![],
        pii_leaks: vec![],
        trace: Trace::default(),
    };
    let ping_json = serde_json::to_string(&ping).expect("serialises");
    assert_eq!(LeadAnswer::from_recorded(&ping_json), None);
    assert_eq!(PingAnswer::from_recorded(&ping_json), Some(PingAnswer::of(&ping)));
    let post_json = serde_json::to_string(&outcome(OutcomeStatus::Unsold, vec![])).expect("serialises");
    assert_eq!(PingAnswer::from_recorded(&post_json), None);
}

#[test]
fn sales_without_a_recorded_outcome_answer_sold_at_the_publishers_margin() {
    let sale = |price_cents| StoredSale {
        sale_id: 1,
        lead_id: "p_3".into(),
        campaign_id: "c1".into(),
        buyer_id: "b1".into(),
        publisher_id: "pub-1".into(),
        price_cents,
        sold_at_unix_ms: 1,
        buyer_ref: None,
        delivery: SaleDelivery::Posted,
        lead: None,
        returned: None,
    };
    let answer = LeadAnswer::sold("p_3", &[sale(2_000), sale(1_001)], 1_000);
    assert_eq!((answer.outcome, answer.payout_cents, answer.buyers), (OutcomeStatus::Sold, 1_800 + 901, 2));
}
