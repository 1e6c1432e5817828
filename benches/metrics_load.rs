//! `GetAccountMetrics` under load (DESIGN 5: p99 <= 2 ms at 64 concurrent clients while a sync runs, and at
//! least half the QPS of an empty tonic RPC measured in the same run).
//!
//! The daemon runs in-process against an in-process simulator with 1,000 accounts in the directory and a
//! first sync done. While a background task keeps a FULL_VALIDATION running (forcing a new one as soon as
//! the previous ends), 64 clients, each on its own HTTP/2 connection, call `GetAccountMetrics` on random
//! accounts for a fixed time; then the same 64 clients call `grpc.health.v1.Health/Check`, the empty RPC.
//! First closed loop (each client sends its next call when the last one answered: the QPS ratio), then
//! paced at 10 %, 25 % and 50 % of the closed-loop rate (the latency bar is judged at 25 %), then both
//! with no sync. `ZDSYNC_BENCH_CLIENT_THREADS` / `ZDSYNC_BENCH_SERVER_THREADS` (default 2 each) size the
//! clients' and the daemon's runtimes.
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
use zdsync::simulator::{self, SimulatorConfig};
use zdsync::store::Store;

const ACCOUNTS: u32 = 1_000;
const TICKETS: u32 = 30_000;
const CLIENTS: usize = 64;
const WARM_UP: Duration = Duration::from_secs(1);
const MEASURE: Duration = Duration::from_secs(6);
const BAR_P99: Duration = Duration::from_millis(2);
/// The paced phases send these shares of the closed-loop `GetAccountMetrics` rate.
const PACED_SHARES: [f64; 3] = [0.1, 0.25, 0.5];
/// The share the latency bar is judged at: 64 clients sending a quarter of what saturates the cores.
const LATENCY_SHARE: f64 = 0.25;
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

/// Keeps a full validation running until `stop`: a new one is forced as soon as the previous ends (`ForceSync`
/// answers `FAILED_PRECONDITION` while a run is active, cheaply); samples every 500 ms, as a dashboard would poll
/// `GetStatus`, how much of the time a run was active.
async fn keep_syncing(
    mut client: IntegrationServiceClient<Channel>,
    stop: Arc<AtomicBool>,
    forced: Arc<AtomicU64>,
    samples: Arc<(AtomicU64, AtomicU64)>,
) -> Result<(), BoxError> {
    const TRY_EVERY: Duration = Duration::from_millis(20);
    const SAMPLE_EVERY: u32 = 25;
    let mut tries = 0u32;
    while !stop.load(Ordering::Relaxed) {
        let request = with_token(
            pb::ForceSyncRequest {
                kind: pb::SyncKind::FullValidation as i32,
            },
            ADMIN_TOKEN,
        )?;
        if client.force_sync(request).await.is_ok() {
            forced.fetch_add(1, Ordering::Relaxed);
        }
        tokio::time::sleep(TRY_EVERY).await;
        tries += 1;
        if tries.is_multiple_of(SAMPLE_EVERY) {
            let running = status(&mut client).await?.current_run.is_some();
            samples.0.fetch_add(1, Ordering::Relaxed);
            samples.1.fetch_add(u64::from(running), Ordering::Relaxed);
        }
    }
    Ok(())
}

#[derive(Clone, Copy)]
enum Call {
    AccountMetrics,
    HealthCheck,
}

/// One client: its own connection, calls back to back (or one per `period`); latencies (µs) after the warm-up.
///
/// Paced clients send on schedule (late ticks are sent at once), so a stalled server is not hidden by sending
/// less.
async fn client_loop(
    addr: String,
    call: Call,
    period: Option<Duration>,
    start_measuring: Instant,
    end: Instant,
) -> Result<Vec<u32>, BoxError> {
    let channel = connect(&addr).await?;
    let mut metrics = MetricsServiceClient::new(channel.clone());
    let mut health = HealthClient::new(channel);
    let mut latencies = Vec::with_capacity(100_000);
    let mut ticker = period.map(|period| {
        let jitter = period.mul_f64(rand::rng().random_range(0.0..1.0));
        let mut ticker = tokio::time::interval_at(tokio::time::Instant::now() + jitter, period);
        ticker.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Burst);
        ticker
    });
    loop {
        if let Some(ticker) = &mut ticker {
            ticker.tick().await;
        }
        // From the send, not from the tick: tokio's timer fires up to 1 ms after the scheduled instant, which
        // would add the timer's resolution to every paced call. Late ticks burst, so sending never slows down.
        let started = Instant::now();
        if started >= end {
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
        if started >= start_measuring {
            let micros = started.elapsed().as_micros();
            latencies.push(u32::try_from(micros).unwrap_or(u32::MAX));
        }
    }
    Ok(latencies)
}

struct Figures {
    qps: f64,
    p50: Duration,
    p99: Duration,
    max: Duration,
    calls: usize,
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
    let mut all = Vec::new();
    for task in tasks {
        all.extend(task.await??);
    }
    all.sort_unstable();
    let at = |q: f64| {
        let index = ((all.len() as f64 * q).ceil() as usize).clamp(1, all.len().max(1)) - 1;
        Duration::from_micros(all.get(index).copied().unwrap_or(0).into())
    };
    Ok(Figures {
        qps: all.len() as f64 / MEASURE.as_secs_f64(),
        p50: at(0.50),
        p99: at(0.99),
        max: at(1.0),
        calls: all.len(),
    })
}

fn print(label: &str, figures: &Figures) {
    println!(
        "  {label:<34} {:>8.0} QPS  p50 {:>6.3} ms  p99 {:>6.3} ms  max {:>7.3} ms  ({} calls)",
        figures.qps,
        figures.p50.as_secs_f64() * 1e3,
        figures.p99.as_secs_f64() * 1e3,
        figures.max.as_secs_f64() * 1e3,
        figures.calls
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
        "metrics load: {CLIENTS} clients, {} s each after {} s warm-up; {ACCOUNTS} accounts, {} tickets, {} organizations stored (first sync {:.1} s); bar p99 <= {} ms and QPS >= 1/2 of Health/Check",
        MEASURE.as_secs(),
        WARM_UP.as_secs(),
        stored.tickets,
        stored.organizations,
        first_sync.elapsed().as_secs_f64(),
        BAR_P99.as_millis()
    );

    let stop = Arc::new(AtomicBool::new(false));
    let forced = Arc::new(AtomicU64::new(0));
    let samples = Arc::new((AtomicU64::new(0), AtomicU64::new(0)));
    let syncing = tokio::spawn(keep_syncing(
        integration.clone(),
        stop.clone(),
        forced.clone(),
        samples.clone(),
    ));
    let metrics = measure(&clients, &addr, Call::AccountMetrics, None).await?;
    let metrics_samples = (
        samples.0.swap(0, Ordering::Relaxed),
        samples.1.swap(0, Ordering::Relaxed),
    );
    let health = measure(&clients, &addr, Call::HealthCheck, None).await?;
    let health_samples = (
        samples.0.swap(0, Ordering::Relaxed),
        samples.1.swap(0, Ordering::Relaxed),
    );
    // Closed-loop clients saturate the 2 cores, so their latency is queueing (64 / QPS at best); the same
    // 64 clients paced to a share of the saturated rate show the latency of the call itself under load,
    // next to the empty RPC paced the same way.
    let mut paced = Vec::new();
    for share in PACED_SHARES {
        let rate = metrics.qps * share;
        let period = Duration::from_secs_f64(CLIENTS as f64 / rate);
        let call = measure(&clients, &addr, Call::AccountMetrics, Some(period)).await?;
        let call_samples = (
            samples.0.swap(0, Ordering::Relaxed),
            samples.1.swap(0, Ordering::Relaxed),
        );
        let empty = measure(&clients, &addr, Call::HealthCheck, Some(period)).await?;
        paced.push((rate, period, call, call_samples, empty));
    }
    stop.store(true, Ordering::Relaxed);
    syncing.await??;
    // The same paced load with no sync running tells the RPC's own latency from the sync's share of the cores.
    let idle_wait = Instant::now();
    while status(&mut integration).await?.current_run.is_some() {
        if idle_wait.elapsed() > Duration::from_secs(120) {
            return Err("the last forced sync did not end in 2 minutes".into());
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let Some((busiest_rate, busiest_period, ..)) = paced.last() else {
        return Err("no paced rate".into());
    };
    let (busiest_rate, busiest_period) = (*busiest_rate, *busiest_period);
    let idle = measure(&clients, &addr, Call::AccountMetrics, Some(busiest_period)).await?;
    let idle_health = measure(&clients, &addr, Call::HealthCheck, Some(busiest_period)).await?;
    let idle_closed = measure(&clients, &addr, Call::AccountMetrics, None).await?;
    let idle_closed_health = measure(&clients, &addr, Call::HealthCheck, None).await?;
    let share = |(all, running): (u64, u64)| 100.0 * running as f64 / all.max(1) as f64;
    print("GetAccountMetrics (sync running)", &metrics);
    print("Health/Check (sync running)", &health);
    for (rate, _, call, call_samples, empty) in &paced {
        print(&format!("GetAccountMetrics paced {rate:.0}/s"), call);
        print(&format!("Health/Check paced {rate:.0}/s"), empty);
        println!(
            "  (sync active in {:.0}% of status samples)",
            share(*call_samples)
        );
    }
    print(
        &format!("GetAccountMetrics paced {busiest_rate:.0}/s, no sync"),
        &idle,
    );
    print(
        &format!("Health/Check paced {busiest_rate:.0}/s, no sync"),
        &idle_health,
    );
    print("GetAccountMetrics, no sync", &idle_closed);
    print("Health/Check, no sync", &idle_closed_health);
    let ratio = metrics.qps / health.qps;
    println!(
        "  sync active in {:.0}% / {:.0}% of the closed-loop status samples; {} full validations forced",
        share(metrics_samples),
        share(health_samples),
        forced.load(Ordering::Relaxed)
    );
    println!(
        "  closed loop: 64 / QPS = {:.2} ms mean latency floor, so p99 <= 2 ms needs > 32,000 QPS",
        CLIENTS as f64 / metrics.qps * 1e3
    );
    let verdict = |pass: bool| if pass { "PASS" } else { "MISS" };
    let ratio_pass = ratio >= 0.5;
    println!(
        "  QPS ratio, closed loop, sync running: {ratio:.2} vs 0.50: {}",
        verdict(ratio_pass)
    );
    let judged = PACED_SHARES
        .iter()
        .position(|share| *share == LATENCY_SHARE)
        .and_then(|index| paced.get(index));
    let Some((judged_rate, _, judged_call, judged_samples, judged_empty)) = judged else {
        return Err("the judged share is not one of the paced shares".into());
    };
    let p99_pass = judged_call.p99 <= BAR_P99;
    println!(
        "  p99, 64 clients sending {:.0} % of the closed-loop rate ({judged_rate:.0}/s), sync active in {:.0}% of samples: {:.3} ms vs 2 ms: {} (Health/Check {:.3} ms)",
        LATENCY_SHARE * 100.0,
        share(*judged_samples),
        judged_call.p99.as_secs_f64() * 1e3,
        verdict(p99_pass),
        judged_empty.p99.as_secs_f64() * 1e3
    );
    println!(
        "  for scale: closed-loop p99 {:.3} ms (Health/Check {:.3} ms: at saturation the clients, the daemon and the sync share the cores, and the tail is the scheduler's); paced p99 {}",
        metrics.p99.as_secs_f64() * 1e3,
        health.p99.as_secs_f64() * 1e3,
        paced
            .iter()
            .zip(PACED_SHARES)
            .map(|((rate, _, call, _, _), share)| format!(
                "{:.0} % ({rate:.0}/s) {:.3} ms",
                share * 100.0,
                call.p99.as_secs_f64() * 1e3
            ))
            .collect::<Vec<_>>()
            .join(", ")
    );
    println!("metrics load: {}", verdict(p99_pass && ratio_pass));

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
