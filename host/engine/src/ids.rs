//! Injected randomness for ping ids: seeded in tests so a run is reproducible, from the OS in production.
//!
//! An id starts with the time it was made (like a UUIDv7), so ids made later sort later: the store's indexes keyed by
//! lead id (auctions, sales, the PII audit) then grow at their end instead of at a random page each, which is what a
//! lead's share of the disk writes was made of.

use std::sync::Mutex;

use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};

/// Makes unique ids for auctions (ping ids).
pub trait IdSource: Send + Sync + std::fmt::Debug {
    /// A new id made at `now_unix_ms`: `p_` and 24 hex digits, the first 12 the time in unix ms and the last 12
    /// random, so ids sort by the time they were made.
    fn next_id(&self, now_unix_ms: i64) -> String;
}

/// Ids from a seeded generator: the same seed gives the same sequence.
#[derive(Debug)]
pub struct SeededIds(Mutex<StdRng>);

impl SeededIds {
    /// A generator starting from `seed`.
    pub fn new(seed: u64) -> Self {
        SeededIds(Mutex::new(StdRng::seed_from_u64(seed)))
    }
}

impl IdSource for SeededIds {
    fn next_id(&self, now_unix_ms: i64) -> String {
        let mut rng = self.0.lock().unwrap_or_else(|poisoned| poisoned.into_inner());
        format_id(now_unix_ms, rng.random::<u64>())
    }
}

/// Ids from the operating system's entropy.
#[derive(Debug, Default, Clone, Copy)]
pub struct RandomIds;

impl IdSource for RandomIds {
    fn next_id(&self, now_unix_ms: i64) -> String {
        format_id(now_unix_ms, rand::random::<u64>())
    }
}

/// Bits of the time and of randomness in an id (12 hex digits each).
const TIME_BITS: u32 = 48;
const RANDOM_BITS: u32 = 48;

fn format_id(now_unix_ms: i64, random: u64) -> String {
    // A clock before 1970 gives time 0 rather than a malformed id; 48 bits of milliseconds last until the year 10889.
    let time = u64::try_from(now_unix_ms).unwrap_or(0) & ((1 << TIME_BITS) - 1);
    format!("p_{time:012x}{:012x}", random >> (64 - RANDOM_BITS))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_same_seed_gives_the_same_ids() {
        let (a, b) = (SeededIds::new(7), SeededIds::new(7));
        let first: Vec<String> = (0..3).map(|_| a.next_id(1_764_000_000_000)).collect();
        assert_eq!(first, (0..3).map(|_| b.next_id(1_764_000_000_000)).collect::<Vec<_>>());
        assert_ne!(first[0], first[1]);
        assert_eq!(first[0].len(), 26);
    }

    #[test]
    fn ids_start_with_their_time_and_sort_by_it() {
        let ids = RandomIds;
        let (earlier, later) = (ids.next_id(1_764_000_000_000), ids.next_id(1_764_000_000_001));
        assert!(earlier.starts_with("p_019ab697e800"), "{earlier}");
        assert!(earlier < later, "{earlier} !< {later}");
        assert!(earlier.bytes().skip(2).all(|b| b.is_ascii_hexdigit() && !b.is_ascii_uppercase()), "{earlier}");
        // Ids made in the same millisecond differ in their random half.
        assert_ne!(ids.next_id(5), ids.next_id(5));
        assert_eq!(ids.next_id(-1).get(..14), Some("p_000000000000"));
    }
}
