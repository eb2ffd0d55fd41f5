//! Hot swap: the active version of a campaign's plugin behind an atomic pointer. A caller takes the current version
//! (an `Arc`) and finishes its call on it even if another version is activated meanwhile; new calls see the new one.
//! Previous versions are kept, newest last, for [`PluginSlot::rollback`].

use std::sync::{Arc, Mutex};

use arc_swap::ArcSwap;
use thiserror::Error;

/// How many previous versions a slot keeps for rollback.
pub const HISTORY: usize = 8;

/// Why a slot operation did nothing.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum SlotError {
    #[error("no previous version to roll back to")]
    NoPreviousVersion,
}

/// The active version of one plugin (a `BuyerPlugin` or a `RedactorPlugin`) and its predecessors.
#[derive(Debug)]
pub struct PluginSlot<P> {
    current: ArcSwap<P>,
    history: Mutex<Vec<Arc<P>>>,
}

impl<P> PluginSlot<P> {
    /// A slot whose active version is `plugin`.
    pub fn new(plugin: P) -> Self {
        PluginSlot { current: ArcSwap::from_pointee(plugin), history: Mutex::new(Vec::new()) }
    }

    /// The active version; lock-free, and the caller keeps it alive for the whole call.
    pub fn current(&self) -> Arc<P> {
        self.current.load_full()
    }

    /// Makes `plugin` the active version atomically and returns the previous one (also kept for rollback).
    pub fn activate(&self, plugin: P) -> Arc<P> {
        let mut history = self.history.lock().unwrap_or_else(|poisoned| poisoned.into_inner());
        let previous = self.current.swap(Arc::new(plugin));
        history.push(previous.clone());
        if history.len() > HISTORY {
            history.remove(0);
        }
        previous
    }

    /// Makes the previous version active again and returns the version it replaced (which is discarded).
    pub fn rollback(&self) -> Result<Arc<P>, SlotError> {
        let mut history = self.history.lock().unwrap_or_else(|poisoned| poisoned.into_inner());
        let previous = history.pop().ok_or(SlotError::NoPreviousVersion)?;
        Ok(self.current.swap(previous))
    }
}
