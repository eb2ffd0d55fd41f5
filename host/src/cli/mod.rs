//! The `pingpost` command line: one enum of subcommands, one module per subcommand group. `main.rs` only parses and
//! dispatches here.

pub mod auction;
pub mod plugin;
pub mod serve;

use std::process::ExitCode;

use clap::{Parser, Subcommand};

/// pingpost: a real-time ping/post lead exchange whose buyer and publisher rules run as sandboxed Wasm plugins.
#[derive(Debug, Parser)]
#[command(name = "pingpost", version, about)]
pub struct Cli {
    #[command(subcommand)]
    pub command: Command,
}

/// Every subcommand of `pingpost`.
#[derive(Debug, Subcommand)]
pub enum Command {
    /// Check or run a plugin locally, before uploading it.
    #[command(subcommand)]
    Plugin(plugin::PluginCommand),
    /// Run one lead through a local exchange (exchange file + lead file) and print the auction's trace.
    Auction(auction::AuctionArgs),
    /// Run the exchange as an HTTP service (API, embedded SQLite store, webhook outbox, metrics).
    Serve(serve::ServeArgs),
}

impl Cli {
    /// Runs the parsed command. Errors carry their context; `main` prints them on one line.
    pub fn run(self) -> anyhow::Result<ExitCode> {
        match self.command {
            Command::Plugin(command) => command.run(),
            Command::Auction(args) => args.run(),
            Command::Serve(args) => args.run(),
        }
    }
}
