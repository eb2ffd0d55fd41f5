//! A hostile buyer for the sandbox's tests. **Never deploy it.**
//!
//! One module, its behaviour chosen by the campaign config, so each sandbox limit is tested against the same real
//! plugin that, configured `ok`, answers normally. The config is the mode name, bare (`loop`) or as a JSON string
//! (`"loop"`).

use std::hint::black_box;

use pingpost_sdk::{BidContext, Buyer, Decision, LogLevel, Ping, RejectCode};

/// What the hostile buyer does when it is called.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Mode {
    /// Spins forever.
    Loop,
    /// Allocates and touches 1 GiB.
    MemoryBomb,
    /// Recurses without end.
    Recursion,
    /// Panics, which traps in Wasm.
    Panic,
    /// Logs 100,000 lines of 1 KiB.
    LogFlood,
    /// Rejects with a 64 MiB message.
    HugeOutput,
    /// Bids 100 cents, proving the module itself works.
    Ok,
}

/// Every mode, by its config name.
pub const MODES: &[(&str, Mode)] = &[
    ("loop", Mode::Loop),
    ("memory-bomb", Mode::MemoryBomb),
    ("recursion", Mode::Recursion),
    ("panic", Mode::Panic),
    ("log-flood", Mode::LogFlood),
    ("huge-output", Mode::HugeOutput),
    ("ok", Mode::Ok),
];

/// Config that makes `configure` (building the buyer) spin forever.
pub const CONFIGURE_LOOP: &str = "configure-loop";
/// Config that makes `configure` (building the buyer) panic, which traps in Wasm.
pub const CONFIGURE_PANIC: &str = "configure-panic";

/// Lines `log-flood` logs, and the size of each.
pub const FLOOD_LINES: usize = 100_000;
/// Bytes per `log-flood` line.
pub const FLOOD_LINE_BYTES: usize = 1024;
/// Bytes `memory-bomb` allocates.
pub const BOMB_BYTES: usize = 1 << 30;
/// Bytes of the `huge-output` rejection message.
pub const HUGE_OUTPUT_BYTES: usize = 64 << 20;

/// The hostile buyer, in the mode its config chose.
pub struct HostileBuyer {
    mode: Mode,
}

impl Buyer for HostileBuyer {
    fn new(config: &str) -> Result<Self, String> {
        let name = config.trim();
        let name = unquote(name);
        // Hostile while being configured: the host must survive a plugin that never finishes `configure`.
        match name {
            CONFIGURE_LOOP => spin(),
            CONFIGURE_PANIC => panic!("hostile-buyer: panicking in configure as configured"),
            _ => {}
        }
        MODES.iter().find(|(n, _)| *n == name).map(|(_, mode)| HostileBuyer { mode: *mode }).ok_or_else(|| {
            format!("unknown hostile mode {name:?}; one of {:?}", MODES.iter().map(|(n, _)| *n).collect::<Vec<_>>())
        })
    }

    fn bid(&self, _ping: &Ping, _context: &BidContext) -> Decision {
        match self.mode {
            Mode::Loop => spin(),
            Mode::MemoryBomb => {
                let mut bomb = vec![0u8; BOMB_BYTES];
                // Touch every page so the memory is really used, whatever the allocator did.
                for i in (0..BOMB_BYTES).step_by(4096) {
                    bomb[i] = 1;
                }
                Decision::reject(RejectCode::Other, format!("allocated {} bytes", black_box(&bomb).len()))
            }
            Mode::Recursion => Decision::reject(RejectCode::Other, format!("recursed {}", recurse(0))),
            Mode::Panic => panic!("hostile-buyer: panicking as configured"),
            Mode::LogFlood => {
                let line = "x".repeat(FLOOD_LINE_BYTES);
                for _ in 0..FLOOD_LINES {
                    pingpost_sdk::log(LogLevel::Info, &line);
                }
                Decision::reject(RejectCode::Other, format!("logged {FLOOD_LINES} lines"))
            }
            Mode::HugeOutput => Decision::reject(RejectCode::Other, "x".repeat(HUGE_OUTPUT_BYTES)),
            Mode::Ok => Decision::bid(100),
        }
    }
}

/// Accepts the mode as a JSON string too, without a JSON parser for one quoted word.
fn unquote(name: &str) -> &str {
    name.strip_prefix('"').and_then(|n| n.strip_suffix('"')).unwrap_or(name)
}

/// Never returns; `black_box` keeps the optimizer from proving anything about the loop.
fn spin() -> ! {
    let mut n = 0u64;
    loop {
        n = black_box(n.wrapping_add(1));
    }
}

/// Recurses until the stack runs out; the 1 KiB frame also eats the shadow stack in linear memory.
fn recurse(depth: u64) -> u64 {
    let frame = black_box([depth as u8; 1024]);
    if black_box(depth) == u64::MAX {
        return u64::from(frame[0]);
    }
    recurse(depth + 1).wrapping_add(u64::from(black_box(frame)[512]))
}

pingpost_sdk::register_buyer!(HostileBuyer);

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ok_mode_bids_100_cents() {
        for config in ["ok", " ok\n", "\"ok\""] {
            let buyer = HostileBuyer::new(config).expect("ok is a mode");
            assert_eq!(buyer.bid(&Ping::default(), &BidContext::default()), Decision::bid(100), "{config:?}");
        }
    }

    #[test]
    fn every_documented_mode_is_accepted() {
        for name in ["loop", "memory-bomb", "recursion", "panic", "log-flood", "huge-output", "ok"] {
            assert!(HostileBuyer::new(name).is_ok(), "{name}");
        }
    }

    #[test]
    fn an_unknown_mode_is_a_config_error() {
        let err = HostileBuyer::new("explode").err().expect("unknown mode refused");
        assert!(err.contains("unknown hostile mode \"explode\""), "{err}");
    }
}
