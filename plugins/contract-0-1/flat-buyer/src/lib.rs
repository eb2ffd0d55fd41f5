//! A buyer of contract 0.1.0: bids the price its config names on every ping, with a `buyer_ref` naming the ping's
//! state, ZIP3 and age (`FL-331-58`).

// Exported only in Wasm: native linkers refuse the contract's export names (`pingpost:plugin/bidder@0.1.0#bid`).
#[cfg(target_arch = "wasm32")]
mod plugin {
    use std::sync::atomic::{AtomicU32, Ordering};

    wit_bindgen::generate!({
        path: "../../../sdk/wit/since_v0.1.0",
        world: "pingpost:plugin/buyer",
    });

    use exports::pingpost::plugin::bidder::Guest;
    use pingpost::plugin::types::{Bid, BidContext, Decision, Ping};

    /// The USPS codes of the contract's states, in its order.
    const STATES: [&str; 51] = [
        "AL", "AK", "AZ", "AR", "CA", "CO", "CT", "DE", "DC", "FL", "GA", "HI", "ID", "IL", "IN", "IA", "KS", "KY",
        "LA", "ME", "MD", "MA", "MI", "MN", "MS", "MO", "MT", "NE", "NV", "NH", "NJ", "NM", "NY", "NC", "ND", "OH",
        "OK", "OR", "PA", "RI", "SC", "SD", "TN", "TX", "UT", "VT", "VA", "WA", "WV", "WI", "WY",
    ];

    /// The instance's price in cents, set by `configure` (an instance serves one campaign).
    static PRICE_CENTS: AtomicU32 = AtomicU32::new(0);

    struct FlatBuyer;

    impl Guest for FlatBuyer {
        fn configure(_campaign_id: String, config: String) -> Result<(), String> {
            let price: u32 =
                config.trim().parse().map_err(|e| format!("flat-buyer-0-1 config is a price in cents: {e}"))?;
            PRICE_CENTS.store(price, Ordering::Relaxed);
            Ok(())
        }

        fn bid(ping: Ping, _context: BidContext) -> Decision {
            // The enum's cases are in the contract's order.
            let state = STATES[ping.state as usize];
            Decision::Bid(Bid {
                price_cents: PRICE_CENTS.load(Ordering::Relaxed),
                buyer_ref: Some(format!("{state}-{:03}-{}", ping.zip3, ping.age)),
                ttl_ms: None,
            })
        }
    }

    export!(FlatBuyer);
}
