//! Keeps the plugin built from its config between calls, so a config is parsed once, not once per ping.
//!
//! A Wasm instance serves one campaign, so in practice the config never changes for its lifetime; the cache still
//! rebuilds when it does, so a plugin stays correct however the host reuses instances.

use std::any::Any;
use std::cell::RefCell;

use crate::{BidContext, Buyer, Decision, Lead, Ping, RedactContext, Redactor, RejectCode};

type Built = Result<Box<dyn Any>, String>;

thread_local! {
    static BUILT: RefCell<Option<(String, Built)>> = const { RefCell::new(None) };
}

/// Runs `f` on the `T` built from `config`, building it first when the config (or the type) changed.
fn with_built<T: 'static, R>(
    config: &str,
    new: fn(&str) -> Result<T, String>,
    f: impl FnOnce(&T) -> R,
) -> Result<R, String> {
    BUILT.with(|cell| {
        let fresh = match &*cell.borrow() {
            Some((seen, Ok(built))) => seen != config || !built.is::<T>(),
            Some((seen, Err(_))) => seen != config,
            None => true,
        };
        if fresh {
            let built = new(config).map(|t| Box::new(t) as Box<dyn Any>);
            *cell.borrow_mut() = Some((config.to_owned(), built));
        }
        match &*cell.borrow() {
            Some((_, Ok(built))) => match built.downcast_ref::<T>() {
                Some(t) => Ok(f(t)),
                None => Err("plugin state has an unexpected type".to_owned()),
            },
            Some((_, Err(message))) => Err(message.clone()),
            None => Err("plugin state missing".to_owned()),
        }
    })
}

/// Calls a [`Buyer`] the way the exported `bid` function does.
pub fn call_buyer<B: Buyer>(ping: &Ping, context: &BidContext) -> Decision {
    with_built(&context.config, B::new, |buyer| buyer.bid(ping, context))
        .unwrap_or_else(|message| Decision::reject(RejectCode::Config, message))
}

/// Calls a [`Redactor`] the way the exported `redact` function does.
pub fn call_redactor<R: Redactor>(lead: &Lead, context: &RedactContext) -> Result<Ping, String> {
    with_built(&context.config, R::new, |redactor| redactor.redact(lead, context))
        .map_err(|message| format!("invalid redactor config: {message}"))?
}

#[cfg(test)]
mod tests {
    use super::*;

    struct Fixed(u32);

    impl Buyer for Fixed {
        fn new(config: &str) -> Result<Self, String> {
            config.parse().map(Fixed).map_err(|e| format!("price: {e}"))
        }
        fn bid(&self, _ping: &Ping, _context: &BidContext) -> Decision {
            Decision::bid(self.0)
        }
    }

    fn context(config: &str) -> BidContext {
        BidContext { config: config.to_owned(), ..BidContext::default() }
    }

    #[test]
    fn a_changed_config_rebuilds_the_buyer() {
        let ping = Ping::default();
        assert_eq!(call_buyer::<Fixed>(&ping, &context("100")).price_cents(), Some(100));
        assert_eq!(call_buyer::<Fixed>(&ping, &context("250")).price_cents(), Some(250));
    }

    #[test]
    fn a_bad_config_rejects_with_the_config_code() {
        match call_buyer::<Fixed>(&Ping::default(), &context("ten dollars")) {
            Decision::Reject(r) => {
                assert_eq!(r.code, RejectCode::Config);
                assert!(r.message.starts_with("price:"), "{}", r.message);
            }
            other => panic!("expected a rejection, got {other:?}"),
        }
    }
}
