//! Injected randomness for ping ids: seeded in tests so a run is reproducible, from the OS in production.

use std::sync::Mutex;

use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};

/// Makes unique ids for auctions (ping ids).
pub trait IdSource: Send + Sync + std::fmt::Debug {
    /// A new id, `p_` and 24 hex digits.
    fn next_id(&self) -> String;
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
    fn next_id(&self) -> String {
        let mut rng = self.0.lock().unwrap_or_else(|poisoned| poisoned.into_inner());
        format_id(rng.random::<u128>())
    }
}

/// Ids from the operating system's entropy.
#[derive(Debug, Default, Clone, Copy)]
pub struct RandomIds;

impl IdSource for RandomIds {
    fn next_id(&self) -> String {
        format_id(rand::random::<u128>())
    }
}

fn format_id(bits: u128) -> String {
    format!("p_{:024x}", bits >> 32)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_same_seed_gives_the_same_ids() {
        let (a, b) = (SeededIds::new(7), SeededIds::new(7));
        let first: Vec<String> = (0..3).map(|_| a.next_id()).collect();
        assert_eq!(first, (0..3).map(|_| b.next_id()).collect::<Vec<_>>());
        assert_ne!(first[0], first[1]);
        assert_eq!(first[0].len(), 26);
    }
}
