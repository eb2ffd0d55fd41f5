//! `pingpost serve`: runs the exchange as an HTTP service until Ctrl-C. See [`crate::service`].

use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::{Context, Result};
use clap::Args;

use crate::service::settings::ServeConfig;
use crate::service::{RunningService, ServiceParts};

/// Arguments of `pingpost serve`.
#[derive(Debug, Args)]
pub struct ServeArgs {
    /// The config file (TOML): `[server]` settings, `[[api_keys]]`, and the exchange that seeds an empty database.
    /// Without it: defaults and `PINGPOST_*` environment variables only.
    #[arg(long)]
    pub config: Option<PathBuf>,
    /// Listen here (wins over the file and `PINGPOST_LISTEN`).
    #[arg(long)]
    pub listen: Option<SocketAddr>,
    /// Keep the database and plugin cache here (wins over the file and `PINGPOST_DATA_DIR`).
    #[arg(long)]
    pub data_dir: Option<PathBuf>,
}

impl ServeArgs {
    /// Reads the config, starts the service and serves until a signal.
    pub fn run(self) -> Result<ExitCode> {
        let env = std::env::vars();
        let mut config = match &self.config {
            Some(path) => ServeConfig::read(path, env)?,
            None => ServeConfig::from_env(env)?,
        };
        if let Some(listen) = self.listen {
            config.settings.listen = listen;
        }
        if let Some(dir) = self.data_dir {
            config.settings.data_dir = dir;
        }
        let runtime = tokio::runtime::Runtime::new().context("starting the async runtime")?;
        runtime.block_on(async {
            let service = RunningService::start(config, ServiceParts::default()).await?;
            if let Some(key) = &service.generated_operator_key {
                eprintln!("No operator key was configured; made one (shown only now):\n  {key}");
                eprintln!("Keep it: it is stored hashed. Set PINGPOST_OPERATOR_KEY to choose your own.");
            }
            eprintln!("pingpost serving on http://{} (Ctrl-C stops)", service.addr);
            service.run_until_signal().await
        })?;
        Ok(ExitCode::SUCCESS)
    }
}
