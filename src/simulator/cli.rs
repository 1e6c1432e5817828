//! `zdsync simulate`: the simulator as a command-line program.
use std::io::Write;
use std::time::Duration;

use clap::Args;

use super::run::{start, SimulatorConfig, SimulatorError};

/// Flags of `zdsync simulate`.
#[derive(Debug, Clone, Args)]
pub struct SimulateArgs {
    /// Address to listen on; port 0 picks a free port. The first line on stdout is
    /// `listening on http://HOST:PORT`.
    #[arg(long, default_value = "127.0.0.1:0")]
    pub listen: String,
    /// Seed of the data generator (same seed, same data).
    #[arg(long, default_value_t = 42)]
    pub seed: u64,
    /// Number of tickets to generate.
    #[arg(long, default_value_t = 10_000)]
    pub tickets: u32,
    /// Number of organizations to generate.
    #[arg(long, default_value_t = 200)]
    pub organizations: u32,
    /// Number of end-users to generate (agents and the admin come on top).
    #[arg(long, default_value_t = 2_000)]
    pub users: u32,
    /// Number of agent groups to generate.
    #[arg(long, default_value_t = 5, value_parser = clap::value_parser!(u32).range(1..))]
    pub groups: u32,
    /// Tickets are created over this many past years.
    #[arg(long, default_value_t = 2)]
    pub years: u32,
    /// Requests per minute on /api/v2 before answering 429 with Retry-After (off when absent).
    #[arg(long, value_parser = clap::value_parser!(u32).range(1..))]
    pub rate_limit: Option<u32>,
    /// Requests per window on the incremental exports before 429, on top of --rate-limit (Zendesk: 10).
    #[arg(long, value_parser = clap::value_parser!(u32).range(1..))]
    pub export_rate_limit: Option<u32>,
    /// Seconds per rate-limit window (Zendesk's is a minute; shorter for quick tests and benches).
    #[arg(long, default_value_t = 60, value_parser = clap::value_parser!(u32).range(1..=3600))]
    pub rate_window_secs: u32,
    /// Lifetime of OAuth access tokens, e.g. `2h`, `90s`.
    #[arg(long, default_value = "2h", value_parser = humantime::parse_duration)]
    pub token_ttl: Duration,
}

impl SimulateArgs {
    /// The simulator configuration these flags describe (system clock, default credentials).
    pub fn config(&self) -> SimulatorConfig {
        SimulatorConfig {
            seed: self.seed,
            tickets: self.tickets,
            organizations: self.organizations,
            users: self.users,
            groups: self.groups,
            years: self.years,
            rate_limit_per_minute: self.rate_limit,
            export_rate_limit: self.export_rate_limit,
            rate_window_secs: self.rate_window_secs,
            access_token_ttl: self.token_ttl,
            ..SimulatorConfig::default()
        }
    }
}

/// Runs the simulator until SIGINT or SIGTERM, printing `listening on http://HOST:PORT` first.
pub async fn run(args: SimulateArgs) -> Result<(), SimulatorError> {
    let listener = tokio::net::TcpListener::bind(&args.listen)
        .await
        .map_err(|source| SimulatorError::Listen {
            addr: args.listen.clone(),
            source,
        })?;
    let handle = start(args.config(), listener).await?;
    {
        let mut stdout = std::io::stdout().lock();
        writeln!(stdout, "listening on {}", handle.base_url()).map_err(SimulatorError::Stdout)?;
        stdout.flush().map_err(SimulatorError::Stdout)?;
    }
    wait_for_stop_signal().await?;
    tracing::info!("stopping the zendesk simulator");
    handle.shutdown().await
}

#[cfg(unix)]
async fn wait_for_stop_signal() -> Result<(), SimulatorError> {
    use tokio::signal::unix::{signal, SignalKind};
    let mut terminate = signal(SignalKind::terminate()).map_err(SimulatorError::Signal)?;
    tokio::select! {
        result = tokio::signal::ctrl_c() => result.map_err(SimulatorError::Signal),
        _ = terminate.recv() => Ok(()),
    }
}

#[cfg(not(unix))]
async fn wait_for_stop_signal() -> Result<(), SimulatorError> {
    tokio::signal::ctrl_c()
        .await
        .map_err(SimulatorError::Signal)
}
