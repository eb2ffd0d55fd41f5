//! The `pingpost` binary: parses the command line and dispatches to `pingpost::cli`.

use std::process::ExitCode;

use clap::Parser;

/// mimalloc instead of glibc's malloc: the service allocates per request on several threads (HTTP, JSON, the
/// store's writer); under load glibc's malloc and free were ~13% of its samples, the Rust side's share of them now
/// ~7% (SQLite keeps the system allocator) — BENCHMARKS.md, "Allocator".
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

fn main() -> ExitCode {
    // `RUST_LOG` chooses what is logged; without it the service's own events (start, seeding, plugin activations,
    // delivery retries) are, at `info`. Each crate is its own target (`RUST_LOG=pingpost_sqlite=debug`, …).
    // `RUST_LOG_FORMAT=json` writes one JSON object per event.
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info"));
    let logs = tracing_subscriber::fmt().with_env_filter(filter).with_writer(std::io::stderr);
    if std::env::var("RUST_LOG_FORMAT").is_ok_and(|format| format.eq_ignore_ascii_case("json")) {
        logs.json().init();
    } else {
        logs.init();
    }
    match pingpost::cli::Cli::parse().run() {
        Ok(code) => code,
        Err(e) => {
            eprintln!("error: {e:#}");
            ExitCode::FAILURE
        }
    }
}
