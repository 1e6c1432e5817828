//! The `zdsync` command: the daemon, and admin subcommands that talk to it over gRPC.
use std::path::PathBuf;

use anyhow::Context;
use clap::{Parser, Subcommand};

use zdsync::cli;
use zdsync::config::{Config, ProcessEnv};

/// zdsync keeps a Zendesk Support instance in sync with your customer-success account directory.
#[derive(Debug, Parser)]
#[command(name = "zdsync", version, about)]
struct Cli {
    #[command(subcommand)]
    command: Command,
    /// How admin subcommands reach the daemon (ignored by serve and simulate).
    #[command(flatten)]
    connect: zdsync::cli::ConnectArgs,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Run the daemon (systemd Type=notify; SIGTERM drains and exits 0).
    Serve {
        /// TOML config file; every key is optional and `ZDSYNC_*` variables override it.
        #[arg(long, value_name = "PATH")]
        config: Option<PathBuf>,
        /// Address to listen on (overrides `listen` and `ZDSYNC_LISTEN`); port 0 picks a free port.
        #[arg(long, value_name = "ADDR")]
        listen: Option<std::net::SocketAddr>,
    },
    /// Run the daemon against a seeded Zendesk simulator, configured and synced, ready to query.
    Demo {
        /// gRPC address of the demo daemon; port 0 picks a free port (the ready line shows the one bound).
        #[arg(long, value_name = "ADDR", default_value = zdsync::config::DEFAULT_LISTEN)]
        listen: std::net::SocketAddr,
    },
    /// Run the Zendesk Support API simulator alone (for tests, benchmarks and demos).
    Simulate(zdsync::simulator::cli::SimulateArgs),
    /// Manage the account directory of a running daemon.
    Accounts(zdsync::cli::accounts::AccountsArgs),
    #[command(flatten)]
    Integration(zdsync::cli::integration::IntegrationCommand),
    /// Show an account's support metrics, or the top accounts by a metric (--top N --by METRIC).
    Metrics(zdsync::cli::metrics::MetricsArgs),
    /// Show an account user's support metrics.
    UserMetrics(zdsync::cli::metrics::UserMetricsArgs),
    /// List timeline events, newest first, as a table, CSV (--csv) or JSON (--json).
    Events(zdsync::cli::events::EventsArgs),
    /// Follow timeline events as they are recorded, one line each; reconnects and resumes from the last cursor.
    Watch(zdsync::cli::events::WatchArgs),
    /// Log in with OAuth (authorization code): prints the authorize URL and receives the redirect on a loopback port.
    Login(zdsync::cli::login::LoginArgs),
}

/// Runs the command; a failure is one plain line on stderr and exit code 1 (an operator's mistake is
/// not a crash, so no backtrace even with `RUST_BACKTRACE` set).
fn main() -> std::process::ExitCode {
    match run() {
        Ok(()) => std::process::ExitCode::SUCCESS,
        Err(err) => {
            eprintln!("zdsync: {err:#}");
            std::process::ExitCode::FAILURE
        }
    }
}

fn run() -> anyhow::Result<()> {
    let cli = Cli::parse();
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .context("cannot start the async runtime")?;
    match cli.command {
        Command::Serve { config, listen } => runtime.block_on(serve(config, listen)),
        Command::Demo { listen } => runtime.block_on(async {
            zdsync::daemon::init_logging(zdsync::config::LogFormat::Text);
            zdsync::demo::run(zdsync::demo::DemoOptions { listen }, stop_signal())
                .await
                .map_err(anyhow::Error::from)
        }),
        Command::Simulate(args) => runtime.block_on(async {
            zdsync::daemon::init_logging(zdsync::config::LogFormat::Text);
            zdsync::simulator::cli::run(args)
                .await
                .map_err(anyhow::Error::from)
        }),
        Command::Accounts(args) => admin(&runtime, cli::accounts::run(args, &cli.connect)),
        Command::Integration(command) => {
            admin(&runtime, cli::integration::run(command, &cli.connect))
        }
        Command::Metrics(args) => admin(&runtime, cli::metrics::run(args, &cli.connect)),
        Command::UserMetrics(args) => admin(&runtime, cli::metrics::run_user(args, &cli.connect)),
        Command::Events(args) => admin(&runtime, cli::events::run(args, &cli.connect)),
        Command::Watch(args) => admin(&runtime, cli::events::watch(args, &cli.connect)),
        Command::Login(args) => admin(&runtime, cli::login::run(args, &cli.connect)),
    }
}

/// Runs an admin command to its end.
fn admin(
    runtime: &tokio::runtime::Runtime,
    command: impl std::future::Future<Output = Result<(), cli::CliError>>,
) -> anyhow::Result<()> {
    Ok(runtime.block_on(command)?)
}

async fn serve(
    config_path: Option<PathBuf>,
    listen: Option<std::net::SocketAddr>,
) -> anyhow::Result<()> {
    let mut config = Config::load(config_path.as_deref(), &ProcessEnv)?;
    if let Some(listen) = listen {
        config.listen = listen;
    }
    zdsync::daemon::init_logging(config.log_format);
    let listener = tokio::net::TcpListener::bind(config.listen)
        .await
        .with_context(|| format!("cannot listen on {}", config.listen))?;
    zdsync::daemon::run(config, listener, stop_signal()).await?;
    Ok(())
}

/// Completes on SIGTERM or SIGINT; the handlers are installed at the call, not at the first poll, so a signal
/// that arrives while start-up work runs is not lost to the default action.
fn stop_signal() -> impl std::future::Future<Output = ()> {
    use tokio::signal::unix::{signal, SignalKind};
    let handlers = (
        signal(SignalKind::terminate()),
        signal(SignalKind::interrupt()),
    );
    async move {
        let (Ok(mut term), Ok(mut int)) = handlers else {
            tracing::error!("cannot install signal handlers; stop with SIGKILL");
            return std::future::pending().await;
        };
        tokio::select! {
            _ = term.recv() => tracing::info!("SIGTERM received"),
            _ = int.recv() => tracing::info!("SIGINT received"),
        }
    }
}
