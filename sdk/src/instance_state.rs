//! The plugin an instance serves, built once by the exported `configure` and used by every later call.
//!
//! The host calls `configure` exactly once on every new instance, before any other call, and an instance serves one
//! campaign (or publisher) for its whole life, so the config is parsed once per instance, never per call.

use std::any::Any;
use std::cell::RefCell;

use crate::{BidContext, Buyer, Decision, Lead, Ping, PingRequest, RedactContext, Redactor, RejectCode};

thread_local! {
    /// The configured plugin; `None` before `configure` and after a `configure` that failed.
    static PLUGIN: RefCell<Option<Box<dyn Any>>> = const { RefCell::new(None) };
}

/// Builds the plugin with `new(config)` into the instance state, replacing what was there. On `Err` the state is
/// left empty, so later calls are refused rather than served by a stale plugin.
fn configure<T: 'static>(config: &str, new: fn(&str) -> Result<T, String>) -> Result<(), String> {
    PLUGIN.with(|cell| {
        let built = new(config);
        let mut state = cell.borrow_mut();
        match built {
            Ok(plugin) => {
                *state = Some(Box::new(plugin));
                Ok(())
            }
            Err(message) => {
                *state = None;
                Err(message)
            }
        }
    })
}

/// Runs `f` on the configured `T`, or says why there is none.
fn with_plugin<T: 'static, R>(f: impl FnOnce(&T) -> R) -> Result<R, String> {
    PLUGIN.with(|cell| match cell.borrow().as_ref().map(|plugin| plugin.downcast_ref::<T>()) {
        Some(Some(plugin)) => Ok(f(plugin)),
        Some(None) => Err("the instance holds a plugin of another type".to_owned()),
        None => Err("the plugin was not configured: the host must call `configure` first".to_owned()),
    })
}

/// Implements the exported `bidder.configure`: builds the [`Buyer`] for this instance.
pub fn configure_buyer<B: Buyer>(config: &str) -> Result<(), String> {
    configure(config, B::new)
}

/// Implements the exported `bidder.bid` on the configured [`Buyer`]; a `config` rejection when there is none.
pub fn call_buyer<B: Buyer>(ping: &Ping, context: &BidContext) -> Decision {
    with_plugin(|buyer: &B| buyer.bid(ping, context))
        .unwrap_or_else(|message| Decision::reject(RejectCode::Config, message))
}

/// Implements the exported `redaction.configure`: builds the [`Redactor`] for this instance.
pub fn configure_redactor<R: Redactor>(config: &str) -> Result<(), String> {
    configure(config, R::new)
}

/// Implements the exported `redaction.redact` on the configured [`Redactor`]; a refusal when there is none.
pub fn call_redactor<R: Redactor>(lead: &Lead, context: &RedactContext) -> Result<Ping, String> {
    with_plugin(|redactor: &R| redactor.redact(lead, context))?
}

/// Implements the exported `redaction.redact-ping` on the configured [`Redactor`]; a refusal when there is none.
pub fn call_redactor_ping<R: Redactor>(request: &PingRequest, context: &RedactContext) -> Result<Ping, String> {
    with_plugin(|redactor: &R| redactor.redact_ping(request, context))?
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

    fn rejection_code(decision: Decision) -> Option<RejectCode> {
        match decision {
            Decision::Reject(r) => Some(r.code),
            Decision::Bid(_) => None,
        }
    }

    // Each #[test] runs on its own thread, so each starts with an unconfigured instance state.

    #[test]
    fn a_configured_buyer_bids_with_the_plugin_built_from_its_config() {
        assert_eq!(configure_buyer::<Fixed>("250"), Ok(()));
        let context = BidContext::default();
        assert_eq!(call_buyer::<Fixed>(&Ping::default(), &context).price_cents(), Some(250));
        assert_eq!(call_buyer::<Fixed>(&Ping::default(), &context).price_cents(), Some(250));
    }

    #[test]
    fn a_bad_config_is_returned_to_the_host_and_leaves_the_instance_unconfigured() {
        configure_buyer::<Fixed>("100").expect("a price is a valid config");
        let error = configure_buyer::<Fixed>("ten dollars").expect_err("not a price");
        assert!(error.starts_with("price:"), "{error}");
        let decision = call_buyer::<Fixed>(&Ping::default(), &BidContext::default());
        assert_eq!(rejection_code(decision), Some(RejectCode::Config));
    }

    #[test]
    fn a_bid_before_configure_is_a_config_rejection() {
        match call_buyer::<Fixed>(&Ping::default(), &BidContext::default()) {
            Decision::Reject(r) => {
                assert_eq!(r.code, RejectCode::Config);
                assert!(r.message.contains("not configured"), "{}", r.message);
            }
            other => panic!("expected a rejection, got {other:?}"),
        }
    }

    struct Refuser;

    impl Redactor for Refuser {
        fn new(config: &str) -> Result<Self, String> {
            if config == "ok" { Ok(Refuser) } else { Err(format!("unknown config {config:?}")) }
        }
        fn redact(&self, _lead: &Lead, _context: &RedactContext) -> Result<Ping, String> {
            Err("refused by the plugin".to_owned())
        }
    }

    #[test]
    fn a_redact_before_configure_is_refused_and_after_it_reaches_the_redactor() {
        let context = RedactContext { now_unix_ms: 0 };
        let before = call_redactor::<Refuser>(&Lead::default(), &context).expect_err("unconfigured");
        assert!(before.contains("not configured"), "{before}");
        assert_eq!(configure_redactor::<Refuser>("nope"), Err("unknown config \"nope\"".to_owned()));
        configure_redactor::<Refuser>("ok").expect("a valid config");
        assert_eq!(call_redactor::<Refuser>(&Lead::default(), &context), Err("refused by the plugin".to_owned()));
        let refused = call_redactor_ping::<Refuser>(&PingRequest::default(), &context).expect_err("by default");
        assert!(refused.contains("full leads only"), "{refused}");
    }
}
