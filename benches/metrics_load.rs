//! `GetAccountMetrics` under load while a sync commits changed data (DESIGN 5: at least half the QPS of an
//! empty tonic RPC, and a p99 at most 1.25x the empty RPC's p99 at the same offered load: 25 %, 50 % of
//! saturation and closed loop, 64 clients; latency timed from each call's scheduled send).
//!
//! The daemon runs in-process against an in-process simulator with 1,000 accounts in the directory and a
//! first sync done. While a background task keeps changing data (it updates 200 random tickets' status and
//! priority in the simulator, moves the simulator's clock past Zendesk's 60-second rule so ticket events
//! flow too, forces an INCREMENTAL run and waits for it, then again), 64 clients, each on its own HTTP/2
//! connection, call `GetAccountMetrics` on random accounts for a fixed time; then the same 64 clients call
//! `grpc.health.v1.Health/Check`, the empty RPC, at the same offered load. First closed loop (each client
//! sends its next call when the last one answered: the QPS ratio), then paced at 25 % and 50 % of the
//! closed-loop `GetAccountMetrics` rate.
//!
//! Paced latency is timed from each call's scheduled send, not from the moment it went out: a client
//! that falls behind (a stalled server, a starved client) sends its late calls at once and they count
//! their wait (no coordinated omission). tokio's timer fires up to 1 ms after the scheduled instant, which
//! both RPCs share; the latency from the actual send is printed beside it for scale. The figure cache's
//! hit rate (`zdsync_figure_cache_lookups_total`) is printed per phase: commits invalidate it, so a
//! high rate means the reads mostly served figures computed since the last commit.
//! `ZDSYNC_BENCH_CLIENT_THREADS` / `ZDSYNC_BENCH_SERVER_THREADS` (default 2 each) size the clients' and
//! the daemon's runtimes. Prints PASS/MISS per bar and never fails on a miss.
use std::collections::BTreeMap;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use rand::Rng;
use tokio::net::TcpListener;
use tonic::transport::Channel;
use tonic_health::pb::health_client::HealthClient;
use tonic_health::pb::HealthCheckRequest;
use zdsync::config::{Config, ProcessEnv};
use zdsync::domain::account::Account;
use zdsync::proto::v1 as pb;
use zdsync::proto::v1::integration_service_client::IntegrationServiceClient;
use zdsync::proto::v1::metrics_service_client::MetricsServiceClient;
use zdsync::simulator::{self, Priority, SimulatorConfig, Status, TicketUpdate};
use zdsync::store::Store;

const ACCOUNTS: u32 = 1_000;
const TICKETS: u32 = 30_000;
const CLIENTS: usize = 64;
const WARM_UP: Duration = Duration::from_secs(1);
const MEASURE: Duration = Duration::from_secs(6);
/// `GetAccountMetrics` p99 / `Health/Check` p99 at the same offered load, at most.
const BAR_P99_RATIO: f64 = 1.25;
/// `GetAccountMetrics` QPS / `Health/Check` QPS in closed loop, at least.
const BAR_QPS_RATIO: f64 = 0.5;
/// The paced phases send these shares of the closed-loop `GetAccountMetrics` rate.
const PACED_SHARES: [f64; 2] = [0.25, 0.5];
/// Tickets the background task changes before each incremental run.
const CHANGED_PER_RUN: usize = 200;
const ADMIN_TOKEN: &str = "bench-admin-token-0123456789abcdef";
const READ_TOKEN: &str = "bench-read-token-0123456789abcdef";

type BoxError = Box<dyn std::error::Error + Send + Sync>;

fn with_token<T>(message: T, token: &str) -> Result<tonic::Request<T>, BoxError> {
    let mut request = tonic::Request::new(message);
    request
        .metadata_mut()
        .insert("authorization", format!("Bearer {token}").parse()?);
    Ok(request)
}

/// Puts the directory's accounts into the store before the daemon opens it.
fn seed_accounts(data_dir: &std::path::Path) -> Result<(), BoxError> {
    std::fs::create_dir_all(data_dir)?;
    std::fs::set_permissions(
        data_dir,
        std::os::unix::fs::PermissionsExt::from_mode(0o700),
    )?;
    let store = Store::open(data_dir)?;
    let accounts: Vec<Account> = (1..=ACCOUNTS)
        .map(|i| Account {
            id: format!("acct-{i:04}"),
            name: format!("Account {i}"),
            owner: format!("owner{}@example.com", i % 20),
            attributes: BTreeMap::new(),
            users: vec![],
        })
        .collect();
    store.upsert_accounts(&accounts, 0)?;
    Ok(())
}

async fn connect(addr: &str) -> Result<Channel, BoxError> {
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        match Channel::from_shared(format!("http://{addr}"))?
            .connect()
            .await
        {
            Ok(channel) => return Ok(channel),
            Err(err) if Instant::now() > deadline => return Err(err.into()),
            Err(_) => tokio::time::sleep(Duration::from_millis(20)).await,
        }
    }
}

async fn status(
    client: &mut IntegrationServiceClient<Channel>,
) -> Result<pb::IntegrationStatus, BoxError> {
    Ok(client
        .get_status(with_token(pb::GetStatusRequest {}, ADMIN_TOKEN)?)
        .await?
        .into_inner())
}

/// What the background task did, and how much of the time an incremental run was active.
#[derive(Default)]
struct SyncActivity {
    /// Incremental runs that ended.
    runs: AtomicU64,
    /// Tickets changed in the simulator.
    changed: AtomicU64,
    /// Events the runs recorded.
    events: AtomicU64,
    /// Status samples taken, and those that saw a run active.
    samples: AtomicU64,
    active: AtomicU64,
}

impl SyncActivity {
    /// Share of status samples since the last call that saw a run active (%), and starts a new count.
    fn take_active_share(&self) -> f64 {
        let samples = self.samples.swap(0, Ordering::Relaxed);
        let active = self.active.swap(0, Ordering::Relaxed);
        100.0 * active as f64 / samples.max(1) as f64
    }
}

/// Until `stop`: changes `CHANGED_PER_RUN` random tickets in the simulator (status and priority, so rollups
/// move and events are recorded), moves the simulator's clock past the 60-second rule so the ticket events
/// export hands them over, forces an INCREMENTAL run and polls `GetStatus` (as a dashboard would) until it
/// has ended; then again.
async fn keep_changing(
    mut client: IntegrationServiceClient<Channel>,
    simulator: simulator::SimulatorControl,
    stop: Arc<AtomicBool>,
    activity: Arc<SyncActivity>,
) -> Result<(), BoxError> {
    const POLL_EVERY: Duration = Duration::from_millis(20);
    let ticket_ids = simulator.ticket_ids();
    while !stop.load(Ordering::Relaxed) {
        for _ in 0..CHANGED_PER_RUN {
            let id = ticket_ids[rand::rng().random_range(0..ticket_ids.len())];
            let solved = rand::rng().random_bool(0.5);
            let update = TicketUpdate {
                status: Some(if solved { Status::Solved } else { Status::Open }),
                priority: Some(Some(if rand::rng().random_bool(0.5) {
                    Priority::Urgent
                } else {
                    Priority::Normal
                })),
                ..TicketUpdate::default()
            };
            // Closed tickets refuse changes, as in Zendesk: those count as unchanged.
            if simulator.update_ticket(id, update).is_ok() {
                activity.changed.fetch_add(1, Ordering::Relaxed);
            }
        }
        simulator.set_time_offset(simulator.time_offset() + 61);
        let newest =
            |status: &pb::IntegrationStatus| status.history.first().map(|run| run.id.clone());
        let before = newest(&status(&mut client).await?);
        let request = with_token(
            pb::ForceSyncRequest {
                kind: pb::SyncKind::Incremental as i32,
            },
            ADMIN_TOKEN,
        )?;
        if client.force_sync(request).await.is_err() {
            // A run still active (the schedule's): wait for it like for ours.
            tokio::time::sleep(POLL_EVERY).await;
        }
        loop {
            tokio::time::sleep(POLL_EVERY).await;
            let current = status(&mut client).await?;
            activity.samples.fetch_add(1, Ordering::Relaxed);
            let running = current.current_run.is_some();
            activity
                .active
                .fetch_add(u64::from(running), Ordering::Relaxed);
            if !running && newest(&current) != before || stop.load(Ordering::Relaxed) {
                if let Some(last) = current.history.first() {
                    activity.events.fetch_add(last.events, Ordering::Relaxed);
                }
                break;
            }
        }
        activity.runs.fetch_add(1, Ordering::Relaxed);
    }
    Ok(())
}

#[derive(Clone, Copy)]
enum Call {
    AccountMetrics,
    HealthCheck,
}

/// One call's latency (µs) from its scheduled send, and from its actual send.
type Latency = (u32, u32);

fn micros(duration: Duration) -> u32 {
    u32::try_from(duration.as_micros()).unwrap_or(u32::MAX)
}

/// One client: its own connection, calls back to back (or one per `period`); latencies after the warm-up.
///
/// A paced client's calls are due at fixed instants; one sent late (the client was behind, or its timer
/// fired late) still counts from when it was due, so a stalled server is not hidden by sending less.
async fn client_loop(
    addr: String,
    call: Call,
    period: Option<Duration>,
    start_measuring: Instant,
    end: Instant,
) -> Result<Vec<Latency>, BoxError> {
    let channel = connect(&addr).await?;
    let mut metrics = MetricsServiceClient::new(channel.clone());
    let mut health = HealthClient::new(channel);
    let mut latencies = Vec::with_capacity(100_000);
    let mut due =
        period.map(|period| Instant::now() + period.mul_f64(rand::rng().random_range(0.0..1.0)));
    loop {
        if let Some(due) = due {
            tokio::time::sleep_until(due.into()).await;
        }
        let sent = Instant::now();
        let scheduled = due.unwrap_or(sent);
        if scheduled >= end {
            break;
        }
        match call {
            Call::AccountMetrics => {
                let account = rand::rng().random_range(1..=ACCOUNTS);
                let request = with_token(
                    pb::GetAccountMetricsRequest {
                        account_id: format!("acct-{account:04}"),
                    },
                    READ_TOKEN,
                )?;
                metrics.get_account_metrics(request).await?;
            }
            Call::HealthCheck => {
                health
                    .check(HealthCheckRequest {
                        service: String::new(),
                    })
                    .await?;
            }
        }
        let done = Instant::now();
        if scheduled >= start_measuring {
            latencies.push((micros(done - scheduled), micros(done - sent)));
        }
        if let (Some(next), Some(period)) = (due.as_mut(), period) {
            *next += period;
        }
    }
    Ok(latencies)
}

struct Figures {
    qps: f64,
    /// p99 from the scheduled send (closed loop: from the send).
    p99: Duration,
    /// p99 from the actual send.
    p99_from_send: Duration,
    p50: Duration,
    max: Duration,
    calls: usize,
    /// Figure-cache lookups during the phase that hit, in %.
    cache_hits: f64,
}

/// The figure cache's lookups so far: (hits, misses).
fn cache_lookups() -> (u64, u64) {
    zdsync::telemetry::figure_cache_lookups()
}

async fn measure(
    clients: &tokio::runtime::Handle,
    addr: &str,
    call: Call,
    period: Option<Duration>,
) -> Result<Figures, BoxError> {
    let start_measuring = Instant::now() + WARM_UP;
    let end = start_measuring + MEASURE;
    let tasks: Vec<_> = (0..CLIENTS)
        .map(|_| {
            clients.spawn(client_loop(
                addr.to_owned(),
                call,
                period,
                start_measuring,
                end,
            ))
        })
        .collect();
    let lookups_before = cache_lookups();
    let mut all = Vec::new();
    for task in tasks {
        all.extend(task.await??);
    }
    let lookups_after = cache_lookups();
    let hits = lookups_after.0 - lookups_before.0;
    let misses = lookups_after.1 - lookups_before.1;
    let mut scheduled: Vec<u32> = all.iter().map(|l| l.0).collect();
    let mut sent: Vec<u32> = all.iter().map(|l| l.1).collect();
    scheduled.sort_unstable();
    sent.sort_unstable();
    let at = |sorted: &[u32], q: f64| {
        let index = ((sorted.len() as f64 * q).ceil() as usize).clamp(1, sorted.len().max(1)) - 1;
        Duration::from_micros(sorted.get(index).copied().unwrap_or(0).into())
    };
    Ok(Figures {
        qps: all.len() as f64 / MEASURE.as_secs_f64(),
        p50: at(&scheduled, 0.50),
        p99: at(&scheduled, 0.99),
        p99_from_send: at(&sent, 0.99),
        max: at(&scheduled, 1.0),
        calls: all.len(),
        cache_hits: 100.0 * hits as f64 / (hits + misses).max(1) as f64,
    })
}

fn ms(duration: Duration) -> f64 {
    duration.as_secs_f64() * 1e3
}

fn print(label: &str, figures: &Figures) {
    println!(
        "  {label:<30} {:>8.0} QPS  p50 {:>6.3} ms  p99 {:>6.3} ms (from send {:>6.3})  max {:>7.3} ms  ({} calls, figure cache hits {:.0} %)",
        figures.qps,
        ms(figures.p50),
        ms(figures.p99),
        ms(figures.p99_from_send),
        ms(figures.max),
        figures.calls,
        figures.cache_hits
    );
}

/// The daemon runs on this runtime; the simulator (standing in for Zendesk) and the clients run on their own
/// runtimes, as they would in other processes, so their work never occupies the daemon's worker threads.
async fn run(
    simulator_runtime: tokio::runtime::Handle,
    clients: tokio::runtime::Handle,
) -> Result<(), BoxError> {
    let sim = simulator_runtime
        .spawn(async {
            let listener = TcpListener::bind("127.0.0.1:0").await?;
            let config = SimulatorConfig {
                tickets: TICKETS,
                organizations: ACCOUNTS,
                users: 5_000,
                ..Default::default()
            };
            Ok::<_, BoxError>(simulator::start(config, listener).await?)
        })
        .await??;
    let dir = tempfile::tempdir()?;
    let data_dir = dir.path().join("data");
    seed_accounts(&data_dir)?;
    let toml = format!(
        "data_dir = {:?}\n[zendesk]\nbase_url = {:?}\nrequests_per_minute = 0\ntimeout = \"5s\"\n",
        data_dir.display().to_string(),
        sim.base_url()
    );
    let mut config = Config::from_toml(&toml, &ProcessEnv)?;
    config.auth.admin_token = Some(ADMIN_TOKEN.into());
    config.auth.read_token = Some(READ_TOKEN.into());
    let listener = TcpListener::bind("127.0.0.1:0").await?;
    let addr = listener.local_addr()?.to_string();
    let (stop_daemon, stopped) = tokio::sync::oneshot::channel::<()>();
    let daemon = tokio::spawn(zdsync::daemon::run(config, listener, async {
        let _ = stopped.await;
    }));

    let mut integration = IntegrationServiceClient::new(connect(&addr).await?);
    integration
        .configure(with_token(
            pb::ConfigureRequest {
                subdomain: "acme".into(),
                credentials: Some(pb::configure_request::Credentials::OauthClient(
                    pb::OAuthClientCredentials {
                        client_id: simulator::DEFAULT_CLIENT_ID.into(),
                        client_secret: simulator::DEFAULT_CLIENT_SECRET.into(),
                    },
                )),
                match_key: Some(pb::MatchKey {
                    zendesk_field: "organization_fields.account_id".into(),
                    account_attribute: "id".into(),
                }),
                timeframe_days: 180,
                include_satisfaction: true,
            },
            ADMIN_TOKEN,
        )?)
        .await?;
    let first_sync = Instant::now();
    loop {
        let current = status(&mut integration).await?;
        let succeeded = current
            .history
            .iter()
            .any(|run| run.outcome == pb::RunOutcome::Succeeded as i32);
        if succeeded && current.current_run.is_none() {
            break;
        }
        if first_sync.elapsed() > Duration::from_secs(300) {
            return Err("the first sync did not finish in 5 minutes".into());
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let stored = status(&mut integration).await?.stored.unwrap_or_default();
    println!(
        "metrics load: {CLIENTS} clients, {} s each after {} s warm-up; {ACCOUNTS} accounts, {} tickets, {} organizations stored (first sync {:.1} s); bars: p99 <= {BAR_P99_RATIO}x Health/Check's at the same load, QPS >= {BAR_QPS_RATIO}x Health/Check's in closed loop",
        MEASURE.as_secs(),
        WARM_UP.as_secs(),
        stored.tickets,
        stored.organizations,
        first_sync.elapsed().as_secs_f64(),
    );

    let stop = Arc::new(AtomicBool::new(false));
    let activity = Arc::new(SyncActivity::default());
    let syncing = tokio::spawn(keep_changing(
        integration.clone(),
        sim.control().clone(),
        stop.clone(),
        activity.clone(),
    ));
    // (label, GetAccountMetrics, Health/Check at the same offered load, % of status samples with a run active)
    let mut loads = Vec::new();
    let metrics = measure(&clients, &addr, Call::AccountMetrics, None).await?;
    let metrics_active = activity.take_active_share();
    let health = measure(&clients, &addr, Call::HealthCheck, None).await?;
    let health_active = activity.take_active_share();
    let qps_ratio = metrics.qps / health.qps;
    for share in PACED_SHARES {
        let rate = metrics.qps * share;
        let period = Duration::from_secs_f64(CLIENTS as f64 / rate);
        let call = measure(&clients, &addr, Call::AccountMetrics, Some(period)).await?;
        let active = activity.take_active_share();
        let empty = measure(&clients, &addr, Call::HealthCheck, Some(period)).await?;
        let empty_active = activity.take_active_share();
        loads.push((
            format!("{:.0} % ({rate:.0}/s)", share * 100.0),
            call,
            empty,
            (active, empty_active),
        ));
    }
    loads.push((
        "closed loop".to_owned(),
        metrics,
        health,
        (metrics_active, health_active),
    ));
    stop.store(true, Ordering::Relaxed);
    syncing.await??;
    let verdict = |pass: bool| if pass { "PASS" } else { "MISS" };
    println!(
        "  while measuring: {} incremental runs committed {} changed tickets and {} events; the starvation guard raised the background threads {} times (issue #14: only load from outside the process raises them)",
        activity.runs.load(Ordering::Relaxed),
        activity.changed.load(Ordering::Relaxed),
        activity.events.load(Ordering::Relaxed),
        zdsync::background::guard::raises()
    );
    let mut all_pass = true;
    for (label, call, empty, (active, empty_active)) in &loads {
        print(&format!("GetAccountMetrics, {label}"), call);
        print(&format!("Health/Check, {label}"), empty);
        let ratio = ms(call.p99) / ms(empty.p99).max(f64::MIN_POSITIVE);
        let pass = ratio <= BAR_P99_RATIO;
        all_pass &= pass;
        println!(
            "  p99 ratio at {label}: {ratio:.2} vs {BAR_P99_RATIO}: {} (a sync was active in {active:.0} % / {empty_active:.0} % of the status samples)",
            verdict(pass)
        );
    }
    let qps_pass = qps_ratio >= BAR_QPS_RATIO;
    all_pass &= qps_pass;
    println!(
        "  QPS ratio, closed loop, while syncing: {qps_ratio:.2} vs {BAR_QPS_RATIO}: {}",
        verdict(qps_pass)
    );
    println!("metrics load: {}", verdict(all_pass));

    let _ = stop_daemon.send(());
    daemon.await??;
    sim.shutdown().await?;
    Ok(())
}

fn main() -> Result<(), BoxError> {
    let simulator_runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(1)
        .thread_name("simulator")
        // The simulator stands in for Zendesk, which runs on other machines: it only gets the cores the
        // daemon and its clients leave idle, as the sync threads do.
        .on_thread_start(zdsync::background::enter_background)
        .on_thread_stop(zdsync::background::leave_background)
        .enable_all()
        .build()?;
    let clients = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(
            std::env::var("ZDSYNC_BENCH_CLIENT_THREADS")
                .ok()
                .and_then(|v| v.parse().ok())
                .unwrap_or(2),
        )
        .thread_name("clients")
        .enable_all()
        .build()?;
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(
            std::env::var("ZDSYNC_BENCH_SERVER_THREADS")
                .ok()
                .and_then(|v| v.parse().ok())
                .unwrap_or(2),
        )
        .enable_all()
        .build()?
        .block_on(run(
            simulator_runtime.handle().clone(),
            clients.handle().clone(),
        ))
}
