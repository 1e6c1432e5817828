//! The `zdsync` binary: parses the command line and calls the library.
use clap::{Parser, Subcommand};

/// zdsync: keeps a Zendesk Support instance in sync with a customer-success account directory.
#[derive(Debug, Parser)]
#[command(name = "zdsync", version, about)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Run the Zendesk Support API simulator alone (for tests, benchmarks and demos).
    Simulate(zdsync::simulator::cli::SimulateArgs),
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env()
                .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("warn")),
        )
        .with_writer(std::io::stderr)
        .init();
    match Cli::parse().command {
        Command::Simulate(args) => zdsync::simulator::cli::run(args).await?,
    }
    Ok(())
}
