//! First sync under Zendesk's request budgets, scaled down (issue #13 item 6).
//!
//! Zendesk allows the incremental exports 10 requests a minute, and every other endpoint a share of the
//! account's plan limit. A first sync of a large instance is bound by the export budget: its floor is
//! the export requests it makes divided by that rate. Here one second stands for Zendesk's minute (the
//! simulator's `rate_window_secs` and the daemon's budget window), so the export budget is 10 requests a
//! second and the other endpoints' 200 (of an account limit of 400, 20 % of it left to other apps); the
//! simulator enforces its limits with 429s. Simulator and daemon run in this process, over loopback.
//!
//! Prints the first sync's wall time (Configure to the run's success) against its floor (export
//! requests the simulator counted / export rate) and the ratio, and the time at which `GetStatus` said
//! the metrics were ready against the floor of the exports before the ticket events backfill. DESIGN §5
//! sets no bar for it: the figures are printed as measured, with no PASS or MISS. The client's bucket
//! starts full (one window's worth), so a ratio a little under 1 is possible.
//!
//! `cargo bench --bench first_sync_budget`; `ZDSYNC_BENCH_TICKETS=50000` picks another size
//! (default 100,000: about 350 export requests, a floor of about 35 s).
use std::time::{Duration, Instant};

use anyhow::{bail, Context};
use tokio::net::TcpListener;
use tonic::transport::Channel;

use zdsync::proto::v1 as pb;
use zdsync::proto::v1::integration_service_client::IntegrationServiceClient;
use zdsync::simulator::{self, Endpoint, SimulatorConfig};

/// The limits both sides count, scaled down: one second stands for Zendesk's minute.
struct Limits {
    /// The window the limits count in (the simulator's `rate_window_secs`, the daemon's budget window).
    window: Duration,
    /// Export requests per window (Zendesk: 10 a minute).
    export: u32,
    /// Requests per window of the other endpoints: the daemon's `other_requests_per_minute` (its default).
    other: u32,
    /// The account's limit per window, for every endpoint and every app together (a Growth plan's 400).
    account: u32,
}

const LIMITS: Limits = Limits {
    window: Duration::from_secs(1),
    export: 10,
    other: 200,
    account: 400,
};
/// Tickets synced unless `ZDSYNC_BENCH_TICKETS` says otherwise.
const DEFAULT_TICKETS: u32 = 100_000;
/// How often `GetStatus` is polled.
const POLL: Duration = Duration::from_millis(20);
/// Give up after this long.
const DEADLINE: Duration = Duration::from_secs(600);
/// The admin token of the bench's daemon.
const TOKEN: &str = "first-sync-budget-bench-token-0123456789";

fn authorized<T>(message: T) -> tonic::Request<T> {
    let mut request = tonic::Request::new(message);
    if let Ok(value) = format!("Bearer {TOKEN}").parse() {
        request.metadata_mut().insert("authorization", value);
    }
    request
}

/// What the bench saw of the first sync.
struct Observed {
    wall: Duration,
    metrics_ready_at: Option<Duration>,
    requests: u64,
}

/// Configures the integration and polls `GetStatus` until the first sync succeeds.
async fn first_sync(channel: Channel) -> anyhow::Result<Observed> {
    let mut client = IntegrationServiceClient::new(channel);
    let started = Instant::now();
    client
        .configure(authorized(pb::ConfigureRequest {
            credentials: Some(pb::configure_request::Credentials::OauthClient(
                pb::OAuthClientCredentials {
                    client_secret: simulator::DEFAULT_CLIENT_SECRET.into(),
                    client_id: simulator::DEFAULT_CLIENT_ID.into(),
                },
            )),
            subdomain: "budget".into(),
            timeframe_days: 30,
            include_satisfaction: true,
            match_key: Some(pb::MatchKey {
                account_attribute: "id".into(),
                zendesk_field: "organization_fields.account_id".into(),
            }),
        }))
        .await
        .context("Configure")?;
    let mut metrics_ready_at = None;
    while started.elapsed() < DEADLINE {
        let status = client
            .get_status(authorized(pb::GetStatusRequest {}))
            .await
            .context("GetStatus")?
            .into_inner();
        if let Some(run) = &status.current_run {
            if metrics_ready_at.is_none() && run.progress.is_some_and(|p| p.metrics_ready) {
                metrics_ready_at = Some(started.elapsed());
            }
        } else if let Some(run) = status.history.first() {
            match run.outcome() {
                pb::RunOutcome::Succeeded => {
                    return Ok(Observed {
                        wall: started.elapsed(),
                        metrics_ready_at,
                        requests: run.requests,
                    })
                }
                pb::RunOutcome::Failed => bail!("the first sync failed: {}", run.error_message),
                _ => {}
            }
        }
        tokio::time::sleep(POLL).await;
    }
    bail!("the first sync did not finish within {DEADLINE:?}")
}

#[allow(clippy::cast_precision_loss)]
fn seconds_for(requests: u64) -> f64 {
    requests as f64 * LIMITS.window.as_secs_f64() / f64::from(LIMITS.export)
}

#[tokio::main(flavor = "multi_thread", worker_threads = 2)]
async fn main() -> anyhow::Result<()> {
    let tickets = std::env::var("ZDSYNC_BENCH_TICKETS")
        .ok()
        .map(|value| value.parse::<u32>())
        .transpose()
        .context("ZDSYNC_BENCH_TICKETS")?
        .unwrap_or(DEFAULT_TICKETS);
    let window_secs = u32::try_from(LIMITS.window.as_secs()).context("window")?;
    let sim = simulator::start(
        SimulatorConfig {
            tickets,
            organizations: (tickets / 50).max(1),
            users: (tickets / 10).max(1),
            years: 1,
            rate_limit_per_minute: Some(LIMITS.account),
            export_rate_limit: Some(LIMITS.export),
            rate_window_secs: window_secs,
            ..SimulatorConfig::default()
        },
        TcpListener::bind("127.0.0.1:0").await?,
    )
    .await
    .context("start the simulator")?;
    let dir = tempfile::tempdir()?;
    let toml = format!(
        "data_dir = {:?}\n[zendesk]\nbase_url = {:?}\nrequests_per_minute = {}\nother_requests_per_minute = {}\ntimeout = \"30s\"\n",
        dir.path().join("data").display().to_string(),
        sim.base_url(),
        LIMITS.export,
        LIMITS.other,
    );
    let mut config = zdsync::config::Config::from_toml(&toml, &zdsync::config::ProcessEnv)?;
    config.auth.admin_token = Some(TOKEN.into());
    let listener = TcpListener::bind("127.0.0.1:0").await?;
    let addr = listener.local_addr()?;
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let daemon = tokio::spawn(zdsync::daemon::run_with_options(
        config,
        listener,
        async {
            let _ = stopped.await;
        },
        zdsync::clock::system(),
        zdsync::daemon::RunOptions {
            rate_window: Some(LIMITS.window),
            ..Default::default()
        },
    ));
    let mut channel = None;
    for _ in 0..250 {
        if let Ok(connected) = Channel::from_shared(format!("http://{addr}"))?
            .connect()
            .await
        {
            channel = Some(connected);
            break;
        }
        tokio::time::sleep(POLL).await;
    }
    let observed = first_sync(channel.context("the daemon never accepted a connection")?).await?;

    let control = sim.control();
    let counters = control.counters();
    let count = |pick: &dyn Fn(&Endpoint) -> bool| -> u64 {
        counters
            .iter()
            .filter(|(endpoint, _)| pick(endpoint))
            .map(|(_, n)| n)
            .sum()
    };
    let exports = [
        Endpoint::IncrementalOrganizations,
        Endpoint::IncrementalUsers,
        Endpoint::IncrementalTickets,
        Endpoint::TicketEvents,
    ];
    let export_requests = count(&|e| exports.contains(e));
    let before_backfill = count(&|e| exports[..3].contains(e));
    let other_requests = count(&|e| !exports.contains(e));
    let floor = seconds_for(export_requests);
    let wall = observed.wall.as_secs_f64();
    let refused = |usage: Option<simulator::RateLimitUsage>| usage.map_or(0, |u| u.refused);
    println!(
        "first_sync_budget: {tickets} tickets, one simulated minute = {:?}",
        LIMITS.window
    );
    println!(
        "  budgets: exports {}/window, other endpoints {}/window, account {}/window (20 % left to other apps)",
        LIMITS.export, LIMITS.other, LIMITS.account
    );
    println!(
        "  requests: {export_requests} export ({before_backfill} before the ticket events), {other_requests} other; the daemon counted {}",
        observed.requests
    );
    println!(
        "  429s: {} on the exports' limit, {} on the account's",
        refused(control.export_rate_limit_usage()),
        refused(control.rate_limit_usage())
    );
    println!("  first sync wall time: {wall:.1} s");
    println!("  floor (export requests / export rate): {floor:.1} s");
    println!("  wall / floor: {:.3}", wall / floor);
    match observed.metrics_ready_at {
        Some(ready) => {
            let ready_floor = seconds_for(before_backfill);
            println!(
                "  metrics ready after {:.1} s, against a floor of {ready_floor:.1} s for the exports before the backfill ({:.3}); {:.1} s before the run ended",
                ready.as_secs_f64(),
                ready.as_secs_f64() / ready_floor,
                wall - ready.as_secs_f64()
            );
        }
        None => println!("  metrics ready: not seen while the run was in progress"),
    }
    let _ = stop.send(());
    daemon.await??;
    sim.shutdown().await?;
    Ok(())
}
