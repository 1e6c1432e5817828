//! Wires the store and the gRPC server together; readiness, watchdog and a bounded graceful shutdown.
use std::future::Future;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use tokio::net::TcpListener;
use tokio::sync::watch;

use crate::clock::SharedClock;
use crate::config::{Config, LogFormat};
use crate::grpc::{self, auth::Tokens, GrpcError, ServiceDeps};
use crate::secrets::{self, SecretError};
use crate::store::{StorageFault, Store, StoreError};
use crate::sync::EngineSettings;

/// How long in-flight RPCs may run on after a stop signal before they are cut.
pub const SHUTDOWN_GRACE: Duration = Duration::from_secs(10);

/// Why the daemon could not start or stopped with an error.
#[derive(Debug, thiserror::Error)]
pub enum DaemonError {
    /// The data directory or a token file is unusable.
    #[error(transparent)]
    Secret(#[from] SecretError),
    /// The database could not be opened.
    #[error(transparent)]
    Store(#[from] StoreError),
    /// The gRPC server could not be built.
    #[error(transparent)]
    Grpc(#[from] GrpcError),
    /// The gRPC server failed while serving.
    #[error("gRPC server: {0}")]
    Serve(#[from] tonic::transport::Error),
    /// A blocking start-up task failed.
    #[error("start-up task failed: {0}")]
    Task(#[from] tokio::task::JoinError),
    /// The listener's address could not be read.
    #[error("listener: {0}")]
    Listener(#[from] std::io::Error),
    /// The Prometheus endpoint could not start.
    #[error(transparent)]
    Prometheus(#[from] crate::prometheus::PrometheusError),
}

/// Sets up `tracing` for the chosen format; `RUST_LOG` refines the level (default `info`).
pub fn init_logging(format: LogFormat) {
    use std::io::IsTerminal;
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info"));
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .with_ansi(std::io::stderr().is_terminal());
    // A second initialisation (tests, demo) keeps the first subscriber.
    let _ = match format {
        LogFormat::Text => builder.try_init(),
        LogFormat::Json => builder.json().try_init(),
    };
}

/// The admin and read tokens, from the environment, token files, or (admin only) generated in the data directory.
fn resolve_tokens(config: &Config) -> Result<Tokens, SecretError> {
    let admin = match (&config.auth.admin_token, &config.auth.admin_token_file) {
        (Some(token), _) => token.clone(),
        (None, Some(path)) => secrets::read_token_file(path)?,
        (None, None) => {
            let (token, path, created) = secrets::load_or_create_admin_token(&config.data_dir)?;
            if created {
                tracing::info!(path = %path.display(), "generated an admin token; read it from this file");
            } else {
                tracing::info!(path = %path.display(), "using the generated admin token");
            }
            token
        }
    };
    let read = match (&config.auth.read_token, &config.auth.read_token_file) {
        (Some(token), _) => Some(token.clone()),
        (None, Some(path)) => Some(secrets::read_token_file(path)?),
        (None, None) => None,
    };
    if read.as_deref() == Some(admin.as_str()) {
        // One value for both roles would make every reader an admin.
        return Err(SecretError::SameTokens);
    }
    Ok(Tokens::new(&admin, read.as_deref()))
}

/// Path of the admin token file a client should use with this config.
pub fn admin_token_path(config: &Config) -> PathBuf {
    config
        .auth
        .admin_token_file
        .clone()
        .unwrap_or_else(|| secrets::generated_admin_token_path(&config.data_dir))
}

fn notify_systemd(state: &[sd_notify::NotifyState<'_>]) {
    // Outside systemd NOTIFY_SOCKET is unset and this does nothing; a failure is worth a log line, not a stop.
    if let Err(err) = sd_notify::notify(false, state) {
        tracing::warn!(error = %err, "systemd notification failed");
    }
}

/// The watchdog period systemd asks for, read as libsystemd's `sd_watchdog_enabled` does: `WATCHDOG_USEC`, and
/// `WATCHDOG_PID` only when it is set (the `sd-notify` crate insists on it, which a wrapper script would break).
fn watchdog_usec() -> Option<u64> {
    let usec = std::env::var("WATCHDOG_USEC").ok()?.parse::<u64>().ok()?;
    if let Ok(pid) = std::env::var("WATCHDOG_PID") {
        if pid.parse::<u32>().ok() != Some(std::process::id()) {
            return None;
        }
    }
    (usec > 0).then_some(usec)
}

fn spawn_watchdog() -> Option<tokio::task::JoinHandle<()>> {
    let usec = watchdog_usec()?;
    // Ping at half the timeout, but not more often than every millisecond (a tiny WATCHDOG_USEC must
    // not make a zero-length interval).
    let period = Duration::from_micros(usec / 2).max(Duration::from_millis(1));
    tracing::info!(
        period_ms = period.as_millis() as u64,
        "systemd watchdog enabled"
    );
    Some(tokio::spawn(async move {
        let mut ticker = tokio::time::interval(period);
        loop {
            ticker.tick().await;
            notify_systemd(&[sd_notify::NotifyState::Watchdog]);
        }
    }))
}

/// Warns when tokens or Zendesk credentials would cross a network in clear text: gRPC on a
/// non-loopback address without TLS, or a non-loopback `http://` Zendesk base URL.
fn warn_about_clear_text(config: &Config, addr: std::net::SocketAddr, tls: bool) {
    if !tls && !addr.ip().is_loopback() {
        tracing::warn!(%addr, "gRPC listens on a non-loopback address without TLS: bearer tokens cross the network in clear text; set [tls] cert_file and key_file, or listen on 127.0.0.1");
    }
    let clear_zendesk = config.zendesk.base_url.as_deref().and_then(|base| {
        let url = reqwest::Url::parse(base).ok()?;
        let host = url
            .host_str()?
            .trim_start_matches('[')
            .trim_end_matches(']');
        let loopback = host == "localhost"
            || host
                .parse::<std::net::IpAddr>()
                .is_ok_and(|ip| ip.is_loopback());
        (url.scheme() == "http" && !loopback).then_some(base)
    });
    if let Some(base_url) = clear_zendesk {
        tracing::warn!(base_url, "[zendesk] base_url is plain http:// to a non-loopback host: Zendesk credentials cross the network in clear text");
    }
}

/// Runs the daemon on `listener` until `shutdown` completes, then drains and closes the store.
pub async fn run(
    config: Config,
    listener: TcpListener,
    shutdown: impl Future<Output = ()>,
) -> Result<(), DaemonError> {
    run_with_clock(config, listener, shutdown, crate::clock::system()).await
}

/// `run` with an injectable clock (tests move time with a `ManualClock`).
pub async fn run_with_clock(
    config: Config,
    listener: TcpListener,
    shutdown: impl Future<Output = ()>,
    clock: SharedClock,
) -> Result<(), DaemonError> {
    run_with_options(config, listener, shutdown, clock, RunOptions::default()).await
}

/// What tests may change about a daemon beyond its config; the default is the production daemon.
#[derive(Debug, Clone, Default)]
pub struct RunOptions {
    /// Opens the store on a disk this switch can fill or break.
    pub storage_fault: Option<StorageFault>,
    /// Longest wait between two tries to write again while the store cannot write (default 30 s).
    pub store_retry: Option<Duration>,
    /// The window the request budgets count in (default Zendesk's minute): a bench against a simulator
    /// with shorter rate-limit windows scales the budgets down with it.
    pub rate_window: Option<Duration>,
}

/// `run_with_clock` with test hooks (a disk that fills on demand, a shorter retry).
pub async fn run_with_options(
    config: Config,
    listener: TcpListener,
    shutdown: impl Future<Output = ()>,
    clock: SharedClock,
    options: RunOptions,
) -> Result<(), DaemonError> {
    let addr = listener.local_addr()?;
    let data_dir = config.data_dir.clone();
    // TLS files are read before anything is created, so a typo in them leaves no token or database behind.
    let tls = match &config.tls {
        Some(files) => Some(grpc::load_tls(&files.cert_file, &files.key_file)?),
        None => None,
    };
    warn_about_clear_text(&config, addr, tls.is_some());
    let prometheus_listen = config.prometheus_listen;
    let mut engine_settings = EngineSettings::from(&config);
    if let Some(retry) = options.store_retry {
        engine_settings.store_retry = retry;
    }
    if let Some(window) = options.rate_window {
        engine_settings.rate_window = window;
    }
    let store_clock = clock.clone();
    let storage_fault = options.storage_fault;
    let (tokens, store) =
        tokio::task::spawn_blocking(move || -> Result<(Tokens, Store), DaemonError> {
            secrets::ensure_private_dir(&config.data_dir)?;
            let tokens = resolve_tokens(&config)?;
            let store = match storage_fault {
                Some(fault) => Store::open_with_fault(&config.data_dir, fault)?,
                None => Store::open(&config.data_dir)?,
            }
            .with_clock(store_clock);
            Ok((tokens, store))
        })
        .await??;

    let (stop_tx, stop_rx) = watch::channel(false);
    let (engine, engine_task) = crate::sync::spawn(
        store.clone(),
        engine_settings,
        clock.clone(),
        stop_rx.clone(),
    );
    let exporter = match prometheus_listen {
        Some(addr) => Some(
            crate::prometheus::spawn(
                addr,
                crate::prometheus::Source {
                    integration: Arc::new(grpc::integration::Integration::new(
                        store.clone(),
                        engine.clone(),
                        clock.clone(),
                    )),
                    data_dir: data_dir.clone(),
                },
                stop_rx.clone(),
            )
            .await?,
        ),
        None => None,
    };
    let deps = ServiceDeps {
        store: store.clone(),
        tokens: Arc::new(tokens),
        shutdown: stop_rx.clone(),
        engine,
        clock,
    };
    let (router, health) = grpc::router(deps, tls)?;
    grpc::set_serving(&health).await;
    let health_follower = tokio::spawn(follow_store_health(
        store.subscribe_write_fault(),
        health.clone(),
    ));

    let mut drain_rx = stop_rx.clone();
    let server = tokio::spawn(router.serve_with_incoming_shutdown(
        grpc::incoming::incoming(listener),
        async move {
            let _ = drain_rx.wait_for(|stopping| *stopping).await;
        },
    ));
    tracing::info!(%addr, data_dir = %data_dir.display(), "zdsync listening");
    // `_RJEM_MALLOC_CONF` may have overridden the built-in options: the log says what is in effect.
    match crate::background::memory::effective_options() {
        Ok((arenas, background_thread, dirty_decay_ms)) => tracing::debug!(
            arenas,
            background_thread,
            dirty_decay_ms,
            "allocator: jemalloc"
        ),
        Err(error) => tracing::debug!(%error, "cannot read the allocator's options"),
    }
    notify_systemd(&[sd_notify::NotifyState::Ready]);
    let watchdog = spawn_watchdog();

    tokio::pin!(shutdown);
    let mut server = server;
    let early = tokio::select! {
        () = &mut shutdown => None,
        result = &mut server => Some(result),
    };
    if let Some(result) = early {
        health_follower.abort();
        // The server stopped by itself: that is a failure worth reporting.
        result??;
        return Ok(());
    }

    tracing::info!(
        grace_s = SHUTDOWN_GRACE.as_secs(),
        "stopping: draining in-flight RPCs"
    );
    notify_systemd(&[sd_notify::NotifyState::Stopping]);
    // Stopped first, so a store that writes again cannot turn health back to SERVING while draining.
    health_follower.abort();
    grpc::set_not_serving(&health).await;
    let _ = stop_tx.send(true);
    if let Ok(result) = tokio::time::timeout(SHUTDOWN_GRACE, &mut server).await {
        result??;
    } else {
        tracing::warn!("grace period over: cutting the remaining RPCs");
        server.abort();
    }
    if let Some(watchdog) = watchdog {
        watchdog.abort();
    }
    if let Some((_, exporter)) = exporter {
        // It saw the stop signal: it finishes the scrape in flight, if any, and ends.
        let _ = tokio::time::timeout(SHUTDOWN_GRACE, exporter).await;
    }
    // The engine saw the same stop signal: it stops its run at a page boundary.
    if tokio::time::timeout(SHUTDOWN_GRACE, engine_task)
        .await
        .is_err()
    {
        tracing::warn!("sync engine did not stop in time");
    }
    close_store(store).await;
    tracing::info!("stopped");
    Ok(())
}

/// Health answers NOT_SERVING while the store cannot write (a full disk, an I/O error) and SERVING again
/// once it can, so a load balancer or systemd probe sees what `GetStatus` says.
async fn follow_store_health(
    mut faults: watch::Receiver<Option<crate::store::WriteFault>>,
    health: tonic_health::server::HealthReporter,
) {
    loop {
        let unwritable = faults.borrow_and_update().is_some();
        if unwritable {
            grpc::set_not_serving(&health).await;
        } else {
            grpc::set_serving(&health).await;
        }
        if faults.changed().await.is_err() {
            return;
        }
    }
}

/// Waits briefly for blocking store work of cut RPCs to finish. Connections a client kept open past the
/// grace period still hold the store; they end with the runtime when `main` returns, which closes it.
async fn close_store(store: Store) {
    let deadline = tokio::time::Instant::now() + STORE_CLOSE_WAIT;
    while store.handle_count() > 1 && tokio::time::Instant::now() < deadline {
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    if store.handle_count() > 1 {
        tracing::info!(
            "open client connections still hold the store; it closes as the process exits"
        );
    }
    drop(store);
}

/// How long the daemon waits for store work of cut RPCs after the grace period.
const STORE_CLOSE_WAIT: Duration = Duration::from_secs(1);
