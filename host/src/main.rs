//! The `pingpost` binary: parses the command line and dispatches to `pingpost::cli`.

use std::process::ExitCode;

use clap::Parser;

/// mimalloc instead of glibc's malloc: the service allocates per request on several threads (HTTP, JSON, the
/// store's writer); under load glibc's malloc and free were ~13% of its samples, the Rust side's share of them now
/// ~7% (SQLite keeps the system allocator) — BENCHMARKS.md, "Service", session 6.
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

fn main() -> ExitCode {
    tracing_subscriber::fmt()
        .with_env_filter(tracing_subscriber::EnvFilter::from_default_env())
        .with_writer(std::io::stderr)
        .init();
    match pingpost::cli::Cli::parse().run() {
        Ok(code) => code,
        Err(e) => {
            eprintln!("error: {e:#}");
            ExitCode::FAILURE
        }
    }
}
