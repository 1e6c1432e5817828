//! Crash safety of the sync engine (DESIGN 1.5): the real daemon is SIGKILLed at seeded random points of a
//! large first sync and restarted on the same data directory each time; at the end its store equals the
//! store of one uninterrupted sync of the same simulator: records, cursors, the detected events, every
//! account's timeline (the event log) and the rollups.
//!
//! Replay a failure with `ZDSYNC_CRASH_SEED=<seed printed by the failing run>`.
mod common;

use std::os::unix::process::ExitStatusExt;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use base64::Engine as _;
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use tonic::transport::Channel;

use common::http::api_json;
use common::inproc::{self, status, wait_for_successful_runs, ADMIN_TOKEN};
use common::{eventually, signal, Daemon, DaemonOptions};
use zdsync::proto::v1 as pb;
use zdsync::proto::v1::account_directory_service_client::AccountDirectoryServiceClient;
use zdsync::proto::v1::integration_service_client::IntegrationServiceClient;
use zdsync::simulator::{SimulatorConfig, SimulatorHandle};
use zdsync::store::sync_state::{StoredCounts, SyncStateRecord};
use zdsync::store::tables::cursor_keys;
use zdsync::store::Store;
use zdsync::sync::run::RunKind;
use zdsync::sync::status::outcome;
use zdsync::zendesk::ExportPosition;

/// The seed used when `ZDSYNC_CRASH_SEED` is not set.
const DEFAULT_CRASH_SEED: u64 = 0x5EED_C0DE;

/// Environment variable that overrides the kill schedule's seed.
const SEED_VARIABLE: &str = "ZDSYNC_CRASH_SEED";

/// Fewest kills the crashed sync must survive. The daemon's default batching commits up to 20 pages at once,
/// so a life ends after its first commit or so: the kills come to about the commits of the sync (about a
/// dozen for this data set) plus those that land in start-up.
const KILLS: usize = 10;

/// Tickets in the simulator: enough pages for well over `KILLS` kills, few enough for a debug build.
const TICKETS: u32 = 20_000;

/// Tickets per page of the ticket export (zdsync asks for Zendesk's maximum).
const TICKETS_PER_PAGE: u64 = 1_000;

/// Where the kill lands in one life of the daemon.
#[derive(Debug, Clone, Copy)]
enum KillPoint {
    /// This long after the listening line: start-up, token fetch, the first request.
    AfterStart(Duration),
    /// This long after the run applied `pages` more pages than when first seen in this life.
    AfterPages(u64, Duration),
}

impl KillPoint {
    /// Draws a kill point; `max_pages` bounds the pages one life may apply before its kill.
    fn draw(rng: &mut StdRng, max_pages: u64) -> KillPoint {
        if rng.random_bool(0.25) {
            KillPoint::AfterStart(Duration::from_millis(rng.random_range(0..=40)))
        } else {
            KillPoint::AfterPages(
                rng.random_range(1..=max_pages),
                Duration::from_millis(rng.random_range(0..=25)),
            )
        }
    }
}

/// The seed of the kill schedule: `ZDSYNC_CRASH_SEED`, or the fixed default when unset or empty.
fn crash_seed() -> u64 {
    match std::env::var(SEED_VARIABLE) {
        Ok(text) if !text.trim().is_empty() => text.trim().parse().unwrap_or_else(|_| {
            panic!("{SEED_VARIABLE} must be an unsigned integer, got {text:?}")
        }),
        _ => DEFAULT_CRASH_SEED,
    }
}

/// Runs blocking work (process start and stop, store access) off the runtime's workers.
async fn blocking<T: Send + 'static>(work: impl FnOnce() -> T + Send + 'static) -> T {
    tokio::task::spawn_blocking(work)
        .await
        .expect("blocking work")
}

/// Daemon options pointing at the simulator, with the admin token in the environment.
fn daemon_options(base_url: &str) -> DaemonOptions {
    // The nightly validation is kept twelve hours away so no second run changes either store. The commits
    // batch pages as the daemon does (issue #13: the crash test runs what production runs), 5 pages at most
    // rather than the default 100: at the default this data set commits in about five transactions (at 20,
    // about ten), too few lives to kill the run ten times in every phase.
    let validation_at = (chrono::Utc::now() + chrono::TimeDelta::hours(12)).format("%H:%M");
    DaemonOptions {
        config: format!(
            "[zendesk]\nbase_url = {base_url:?}\nrequests_per_minute = 0\ntimeout = \"5s\"\n\
             [schedule]\nfull_validation_at = \"{validation_at}\"\npages_per_commit = 5\n"
        ),
        env: vec![("ZDSYNC_ADMIN_TOKEN".into(), ADMIN_TOKEN.into())],
    }
}

async fn start_daemon(data_dir: &Path, options: &DaemonOptions) -> Daemon {
    let data_dir = data_dir.to_owned();
    let options = options.clone();
    // Daemon::start fails the test unless the listening line appears: the restart was clean.
    blocking(move || Daemon::start(&data_dir, &options)).await
}

async fn integration_client(addr: &str) -> IntegrationServiceClient<Channel> {
    let endpoint = format!("http://{addr}");
    eventually("the daemon to accept gRPC connections", || {
        let endpoint = endpoint.clone();
        async move { IntegrationServiceClient::connect(endpoint).await.ok() }
    })
    .await
}

/// One account per account id the simulator's organizations carry, so the sync records timelines too.
fn directory(sim: &SimulatorHandle) -> Vec<pb::Account> {
    let control = sim.control();
    let mut ids: Vec<String> = (20_000_001..=20_000_000 + control.stats().organizations as u64)
        .filter_map(|id| {
            control.organization_json(id).and_then(|org| {
                org["organization_fields"]["account_id"]
                    .as_str()
                    .map(str::to_owned)
            })
        })
        .collect();
    ids.sort_unstable();
    ids.dedup();
    ids.into_iter()
        .map(|id| pb::Account {
            id,
            ..Default::default()
        })
        .collect()
}

/// Imports `accounts`, then configures (which starts the first sync).
async fn configure(addr: &str, accounts: &[pb::Account]) {
    let channel = tonic::transport::Endpoint::from_shared(format!("http://{addr}"))
        .expect("endpoint")
        .connect()
        .await
        .expect("connect");
    AccountDirectoryServiceClient::new(channel)
        .upsert_accounts(common::with_token(
            pb::UpsertAccountsRequest {
                accounts: accounts.to_vec(),
            },
            ADMIN_TOKEN,
        ))
        .await
        .expect("import the accounts");
    let mut client = integration_client(addr).await;
    assert_eq!(inproc::configure(&mut client).await, "run-1");
}

/// SIGTERM and a clean exit.
async fn stop_daemon(daemon: Daemon) {
    blocking(move || daemon.stop()).await;
}

/// SIGKILL and wait until the process is gone.
async fn kill_daemon(mut daemon: Daemon) {
    blocking(move || {
        signal(&daemon.child, "KILL");
        let status = daemon.wait_exit();
        assert_eq!(
            status.signal(),
            Some(9),
            "the daemon should die by SIGKILL, got {status}"
        );
    })
    .await;
}

/// What a finished sync left in a data directory.
struct Snapshot {
    digest: String,
    counts: StoredCounts,
    state: SyncStateRecord,
    ratings_since: Option<Vec<u8>>,
}

async fn snapshot(data_dir: PathBuf) -> Snapshot {
    blocking(move || {
        let store = Store::open(&data_dir).expect("open the store");
        Snapshot {
            digest: store.content_digest().expect("digest"),
            counts: store.stored_counts().expect("counts"),
            state: store.sync_state().expect("sync state"),
            ratings_since: store
                .cursor(cursor_keys::RATINGS_SINCE)
                .expect("ratings_since cursor"),
        }
    })
    .await
}

/// The ratings cursor a finished run stores: its start (Unix seconds) minus one minute.
fn expected_ratings_since(state: &SyncStateRecord) -> Vec<u8> {
    let run = state.history.first().expect("a finished run");
    let started = run.started_at_ms.div_euclid(1000);
    serde_json::to_vec(&(started - 60)).expect("json")
}

/// Asserts the state of a data directory whose only run, the first sync, succeeded.
fn assert_one_successful_first_sync(state: &SyncStateRecord, which: &str) {
    assert!(state.active_run.is_none(), "{which}: no run left active");
    assert!(state.initial_complete, "{which}: first sync complete");
    assert!(
        state.last_error.is_none(),
        "{which}: {:?}",
        state.last_error
    );
    assert_eq!(
        state.next_run_id, 2,
        "{which}: no run but run-1 was started"
    );
    assert_eq!(state.history.len(), 1, "{which}: {:?}", state.history);
    let run = &state.history[0];
    assert_eq!(run.id, 1, "{which}");
    assert_eq!(run.kind, RunKind::Initial.code(), "{which}");
    assert_eq!(run.outcome, outcome::SUCCEEDED, "{which}: {run:?}");
}

/// The ticket export position `(generated_timestamp, id)` an opaque simulator cursor points after.
fn cursor_ticket(cursor: &str) -> (i64, u64) {
    // The simulator's cursor: base64 of `<generated_timestamp>.0||<id>|` (SIMULATOR_API.md).
    let bytes = base64::engine::general_purpose::STANDARD
        .decode(cursor)
        .expect("base64 cursor");
    let text = String::from_utf8(bytes).expect("utf-8 cursor");
    let (timestamp, rest) = text.split_once(".0||").expect("cursor shape");
    let id = rest.trim_end_matches('|');
    (
        timestamp.parse().expect("cursor timestamp"),
        id.parse().expect("cursor id"),
    )
}

/// The id of the first ticket the simulator exports after `cursor`, if any.
async fn ticket_after(sim: &SimulatorHandle, cursor: &str) -> Option<u64> {
    let request = reqwest::Client::new()
        .get(format!(
            "{}/api/v2/incremental/tickets/cursor.json",
            sim.base_url()
        ))
        .query(&[("cursor", cursor), ("per_page", "1")]);
    let body = api_json(request, "simulator request").await;
    body["tickets"][0]["id"].as_u64()
}

/// Opens the store of a killed daemon and checks that it holds whole ticket pages with their cursor.
/// Returns its counts, which never go down from one kill to the next.
async fn inspect_after_kill(
    sim: &SimulatorHandle,
    data_dir: PathBuf,
    previous: &StoredCounts,
) -> StoredCounts {
    let store =
        blocking(move || Store::open(&data_dir).expect("the store opens after a SIGKILL")).await;
    let read = store.clone();
    let (counts, position) = blocking(move || {
        let counts = read.stored_counts().expect("counts");
        let position = read
            .cursor(cursor_keys::TICKETS)
            .expect("tickets cursor")
            .map(|bytes| serde_json::from_slice::<ExportPosition>(&bytes).expect("position"));
        (counts, position)
    })
    .await;
    for (name, now, before) in [
        ("tickets", counts.tickets, previous.tickets),
        (
            "organizations",
            counts.organizations,
            previous.organizations,
        ),
        ("users", counts.users, previous.users),
        ("groups", counts.groups, previous.groups),
        ("ratings", counts.ratings, previous.ratings),
        (
            "tickets with history",
            counts.tickets_with_history,
            previous.tickets_with_history,
        ),
    ] {
        assert!(
            now >= before,
            "{name} went down after a kill: {before} -> {now}"
        );
    }
    // Every page of the first ticket export holds new tickets only: whole pages make a multiple of the page size.
    assert!(
        counts.tickets % TICKETS_PER_PAGE == 0 || counts.tickets == u64::from(TICKETS),
        "a partial ticket page was committed: {} tickets",
        counts.tickets
    );
    let Some(ExportPosition::Cursor(cursor)) = position else {
        assert_eq!(counts.tickets, 0, "tickets stored without their cursor");
        return counts;
    };
    // The cursor moved with its page: the ticket it points after is stored, the one following it is not.
    let next = ticket_after(sim, &cursor).await;
    let (last, next_stored) = blocking(move || {
        let (timestamp, id) = cursor_ticket(&cursor);
        let last = store.ticket(id).expect("read ticket");
        let next_stored = next.map(|id| store.ticket(id).expect("read ticket").is_some());
        (
            last.map(|t| t.generated_timestamp == timestamp),
            next_stored,
        )
    })
    .await;
    assert_eq!(
        last,
        Some(true),
        "the ticket the stored cursor points after is stored"
    );
    assert_ne!(
        next_stored,
        Some(true),
        "a ticket past the stored cursor is stored"
    );
    counts
}

/// The uninterrupted first sync on `data_dir`.
async fn reference_sync(
    data_dir: PathBuf,
    options: DaemonOptions,
    accounts: Vec<pb::Account>,
) -> Snapshot {
    let daemon = start_daemon(&data_dir, &options).await;
    let mut client = integration_client(&daemon.addr).await;
    configure(&daemon.addr, &accounts).await;
    wait_for_successful_runs(&mut client, 1).await;
    stop_daemon(daemon).await;
    snapshot(data_dir).await
}

/// Waits for the kill point of a life; true when the first sync finished before it.
async fn reach(daemon: &Daemon, point: KillPoint) -> bool {
    let (pages, delay) = match point {
        KillPoint::AfterStart(delay) => (0, delay),
        KillPoint::AfterPages(pages, delay) => (pages, delay),
    };
    if pages > 0 {
        let client = integration_client(&daemon.addr).await;
        let first_seen = Arc::new(Mutex::new(None));
        let finished = eventually(
            &format!("{pages} more pages or the end of the sync"),
            || {
                let mut client = client.clone();
                let first_seen = first_seen.clone();
                async move {
                    let status = status(&mut client).await;
                    if let Some(run) = status.history.first() {
                        assert_eq!(
                            (run.id.as_str(), run.outcome),
                            ("run-1", pb::RunOutcome::Succeeded as i32),
                            "the first sync ended otherwise: {:?}",
                            status.history
                        );
                        return Some(true);
                    }
                    let applied = status.current_run?.pages;
                    let start = *first_seen
                        .lock()
                        .expect("first seen")
                        .get_or_insert(applied);
                    (applied >= start + pages).then_some(false)
                }
            },
        )
        .await;
        if finished {
            return true;
        }
    }
    tokio::time::sleep(delay).await;
    false
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sigkill_at_random_points_of_the_first_sync_loses_and_duplicates_nothing() {
    let seed = crash_seed();
    println!("crash seed {seed} (replay with {SEED_VARIABLE}={seed})");
    let mut rng = StdRng::seed_from_u64(seed);

    // Tickets created over the last day only: the past-year windows of ticket events and ratings then hold
    // everything for both syncs, although they start at different times.
    let sim = inproc::simulator(SimulatorConfig {
        seed: 7,
        tickets: TICKETS,
        organizations: 200,
        users: 2_000,
        years: 0,
        ..Default::default()
    })
    .await;
    let stats = sim.control().stats();
    let dir = tempfile::tempdir().expect("tempdir");
    let options = daemon_options(sim.base_url());
    let began = Instant::now();

    // The reference, one uninterrupted first sync, runs alongside the crashed one (same simulator, same data).
    let accounts = directory(&sim);
    assert!(!accounts.is_empty());
    let reference = tokio::spawn(reference_sync(
        dir.path().join("reference"),
        options.clone(),
        accounts.clone(),
    ));

    // The crashed sync: configured once, then killed and restarted on the same data directory until it is done.
    let crash_dir = dir.path().join("crashed");
    let mut daemon = start_daemon(&crash_dir, &options).await;
    configure(&daemon.addr, &accounts).await;
    // Pages of the first sync (zdsync asks for the largest pages: 1000 records, 100 ratings). A life applies
    // 1..=max_pages pages, or none when the kill lands in start-up, plus the pages that slip in between
    // seeing the target and the kill (a whole batch when a commit carries several pages), so the kills
    // spread over every phase.
    let estimated_pages = (stats.tickets + stats.ticket_events + stats.users) as u64 / 1_000
        + stats.satisfaction_ratings as u64 / 100;
    let max_pages = (estimated_pages / (2 * KILLS as u64)).max(1);
    let mut kills = 0;
    let mut counts = StoredCounts::default();
    loop {
        let point = KillPoint::draw(&mut rng, max_pages);
        if reach(&daemon, point).await {
            break;
        }
        kill_daemon(daemon).await;
        kills += 1;
        println!("kill {kills}: {point:?}");
        if rng.random_bool(0.5) {
            counts = inspect_after_kill(&sim, crash_dir.clone(), &counts).await;
        }
        daemon = start_daemon(&crash_dir, &options).await;
    }
    wait_for_successful_runs(&mut integration_client(&daemon.addr).await, 1).await;
    stop_daemon(daemon).await;
    let crashed = snapshot(crash_dir.clone()).await;
    let reference = reference.await.expect("reference sync");
    println!(
        "{kills} kills (at most {max_pages} pages per life) in {:?}; {:?}",
        began.elapsed(),
        crashed.counts
    );

    assert_one_successful_first_sync(&reference.state, "reference");
    assert_eq!(reference.counts.tickets, stats.tickets as u64);
    assert_eq!(reference.counts.organizations, stats.organizations as u64);
    assert_eq!(reference.counts.users, stats.users as u64);
    assert_one_successful_first_sync(&crashed.state, "crashed");
    assert_eq!(
        crashed.counts, reference.counts,
        "same records, no duplicates"
    );
    // The one time-dependent cursor: where the next run lists ratings from, one minute before the run
    // started. The resumed run kept the start of run-1; the reference started at another second.
    assert_eq!(
        reference.ratings_since,
        Some(expected_ratings_since(&reference.state))
    );
    assert_eq!(
        crashed.ratings_since,
        Some(expected_ratings_since(&crashed.state))
    );
    let normalised = reference.ratings_since.clone().expect("ratings_since");
    let crashed_digest = blocking(move || {
        let store = Store::open(&crash_dir).expect("open");
        store
            .apply_page(&zdsync::store::page::PageWrite {
                cursors: vec![(cursor_keys::RATINGS_SINCE.into(), normalised)],
                ..Default::default()
            })
            .expect("normalise ratings_since");
        store.content_digest().expect("digest")
    })
    .await;
    assert_eq!(
        crashed_digest, reference.digest,
        "the crashed sync stored exactly what the uninterrupted one did (seed {seed})"
    );
    assert!(
        kills >= KILLS,
        "the first sync finished after {kills} kills, fewer than {KILLS}: make the data set larger"
    );
    sim.shutdown().await.expect("simulator stops");
}
