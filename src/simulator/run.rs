//! Building and running a simulator: its configuration, start-up and handle.
use std::net::SocketAddr;
use std::sync::atomic::AtomicI64;
use std::sync::{Mutex, RwLock};
use std::time::Duration;

use tokio::net::TcpListener;
use tokio::task::JoinHandle;

use super::control::SimulatorControl;
use super::credentials::Credentials;
use super::{faults, generate, server, state, tokens};
use crate::clock::SharedClock;

/// How to build and run a simulator.
#[derive(Debug, Clone)]
pub struct SimulatorConfig {
    /// Seed of the data generator: same seed, counts and start time give the same data.
    pub seed: u64,
    /// Number of tickets generated.
    pub tickets: u32,
    /// Number of organizations generated.
    pub organizations: u32,
    /// Number of end-users generated (the admin and agents come on top).
    pub users: u32,
    /// Number of groups generated (at least 1).
    pub groups: u32,
    /// Tickets are created over this many past years.
    pub years: u32,
    /// Requests per minute on `/api/v2/*` before 429; None = unlimited.
    pub rate_limit_per_minute: Option<u32>,
    /// Requests per window on the incremental exports before 429 (Zendesk allows 10 a minute), on top of the
    /// account's limit; None = unlimited.
    pub export_rate_limit: Option<u32>,
    /// Length of the rate-limit window in seconds: 60 as Zendesk's, shorter so tests need not wait minutes.
    pub rate_window_secs: u32,
    /// Lifetime of minted access tokens.
    pub access_token_ttl: Duration,
    /// Accepted credentials.
    pub credentials: Credentials,
    /// The simulator's source of now (data are generated relative to it at start).
    pub clock: SharedClock,
}

impl Default for SimulatorConfig {
    fn default() -> Self {
        Self {
            seed: 42,
            tickets: 10_000,
            organizations: 200,
            users: 2_000,
            groups: 5,
            years: 2,
            rate_limit_per_minute: None,
            export_rate_limit: None,
            rate_window_secs: 60,
            access_token_ttl: Duration::from_secs(2 * 3600),
            credentials: Credentials::default(),
            clock: crate::clock::system(),
        }
    }
}

/// Why the simulator could not start or run.
#[derive(Debug, thiserror::Error)]
pub enum SimulatorError {
    /// The listen address could not be bound or read.
    #[error("cannot listen on {addr}: {source}")]
    Listen {
        /// The address asked for.
        addr: String,
        /// The OS error.
        source: std::io::Error,
    },
    /// The HTTP server failed.
    #[error("simulator server failed: {0}")]
    Serve(std::io::Error),
    /// The server task panicked or was cancelled.
    #[error("simulator server task ended abnormally: {0}")]
    Task(String),
    /// Signal handlers could not be installed.
    #[error("cannot install signal handler: {0}")]
    Signal(std::io::Error),
    /// Writing the `listening on` line failed.
    #[error("cannot write to stdout: {0}")]
    Stdout(std::io::Error),
    /// The configuration is unusable.
    #[error("invalid simulator configuration: {0}")]
    InvalidConfig(String),
}

/// A running simulator.
#[derive(Debug)]
pub struct SimulatorHandle {
    local_addr: SocketAddr,
    base_url: String,
    control: SimulatorControl,
    task: Option<JoinHandle<std::io::Result<()>>>,
}

impl SimulatorHandle {
    /// `http://HOST:PORT`, no trailing slash.
    pub fn base_url(&self) -> &str {
        &self.base_url
    }

    /// The bound socket address.
    pub fn local_addr(&self) -> SocketAddr {
        self.local_addr
    }

    /// In-process control: mutations, faults, counters, clock offset.
    pub fn control(&self) -> &SimulatorControl {
        &self.control
    }

    /// Stops accepting, finishes in-flight requests, and waits for the server to end.
    pub async fn shutdown(mut self) -> Result<(), SimulatorError> {
        self.control.shared.stopping.send_replace(true);
        match self.task.take() {
            Some(task) => match task.await {
                Ok(result) => result.map_err(SimulatorError::Serve),
                Err(e) => Err(SimulatorError::Task(e.to_string())),
            },
            None => Ok(()),
        }
    }
}

impl Drop for SimulatorHandle {
    fn drop(&mut self) {
        self.control.shared.stopping.send_replace(true);
    }
}

/// Generates the data set and serves it on `listener` until the handle is shut down.
pub async fn start(
    config: SimulatorConfig,
    listener: TcpListener,
) -> Result<SimulatorHandle, SimulatorError> {
    if config.groups == 0 {
        return Err(SimulatorError::InvalidConfig(
            "groups must be at least 1".into(),
        ));
    }
    if config.rate_window_secs == 0 {
        return Err(SimulatorError::InvalidConfig(
            "the rate-limit window must be at least 1 second".into(),
        ));
    }
    if config.rate_limit_per_minute == Some(0) || config.export_rate_limit == Some(0) {
        return Err(SimulatorError::InvalidConfig(
            "rate limit must be at least 1 request per minute".into(),
        ));
    }
    let local_addr = listener
        .local_addr()
        .map_err(|source| SimulatorError::Listen {
            addr: "<bound listener>".into(),
            source,
        })?;
    let base_url = format!("http://{local_addr}");
    let now = config.clock.now().timestamp();
    let params = generate::GenParams {
        seed: config.seed,
        tickets: config.tickets,
        organizations: config.organizations,
        users: config.users,
        groups: config.groups,
        years: config.years,
        admin_email: config.credentials.api_token_email.clone(),
    };
    let dataset = tokio::task::spawn_blocking(move || generate::generate(&params, now))
        .await
        .map_err(|e| SimulatorError::Task(e.to_string()))?;
    let shared = std::sync::Arc::new(state::Shared {
        data: RwLock::new(dataset),
        clock: config.clock,
        offset_seconds: AtomicI64::new(0),
        base_url: base_url.clone(),
        credentials: config.credentials,
        access_token_ttl: config.access_token_ttl,
        tokens: Mutex::new(tokens::TokenStore::default()),
        faults: Mutex::new(faults::FaultQueue::default()),
        counters: faults::Counters::default(),
        rate: config
            .rate_limit_per_minute
            .map(|limit| Mutex::new(faults::RateWindow::new(limit, config.rate_window_secs))),
        export_rate: config
            .export_rate_limit
            .map(|limit| Mutex::new(faults::RateWindow::new(limit, config.rate_window_secs))),
        stopping: tokio::sync::watch::channel(false).0,
        released: tokio::sync::watch::channel(0).0,
    });
    let mut stopping = shared.stopping.subscribe();
    let router = server::router(shared.clone());
    let task = tokio::spawn(async move {
        axum::serve(
            listener,
            router.into_make_service_with_connect_info::<SocketAddr>(),
        )
        .with_graceful_shutdown(async move {
            // An error means the sender is gone, which also means stop.
            let _ = stopping.wait_for(|stop| *stop).await;
        })
        .await
    });
    tracing::info!(%base_url, "zendesk simulator listening");
    Ok(SimulatorHandle {
        local_addr,
        base_url,
        control: SimulatorControl { shared },
        task: Some(task),
    })
}
