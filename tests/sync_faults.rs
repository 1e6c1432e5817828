//! Simulator faults during sync runs, end to end: simulator + daemon in process, real HTTP and gRPC.
//!
//! Each test lets a first sync finish cleanly, then injects one kind of fault and drives a run
//! through it with `ForceSync` (or `Configure`), watching the outcome through `GetStatus`.
mod common;

use std::path::{Path, PathBuf};
use std::time::Duration;

use common::inproc::{
    configure_and_sync, status, wait_for_successful_runs, Daemon, Harness, ADMIN_TOKEN,
};
use common::{eventually, with_token};
use tonic::transport::Channel;
use tonic::Code;
use zdsync::proto::v1 as pb;
use zdsync::proto::v1::integration_service_client::IntegrationServiceClient;
use zdsync::simulator::{
    self, Endpoint, FaultKind, FaultSpec, NewTicket, SimulatorConfig, SimulatorHandle,
};
use zdsync::store::tables::cursor_keys;
use zdsync::store::Store;

type Client = IntegrationServiceClient<Channel>;

/// The ticket export's path, as errors name it.
const TICKET_EXPORT: &str = "/api/v2/incremental/tickets/cursor.json";

/// A small data set: every run is a handful of requests.
fn small_simulator() -> SimulatorConfig {
    SimulatorConfig {
        tickets: 300,
        organizations: 20,
        users: 100,
        ..Default::default()
    }
}

/// Simulator + daemon + a configured integration whose first sync has finished.
struct Setup {
    sim: SimulatorHandle,
    dir: tempfile::TempDir,
    daemon: Daemon,
    client: Client,
}

impl Setup {
    async fn start() -> Setup {
        Self::start_with(small_simulator(), |_| {}).await
    }

    /// Starts everything; `before_configure` may inject faults the first sync will meet.
    async fn start_with(
        config: SimulatorConfig,
        before_configure: impl FnOnce(&SimulatorHandle),
    ) -> Setup {
        let (sim, dir, daemon, mut client) = Harness::start(config).await.into_parts();
        before_configure(&sim);
        configure_and_sync(&mut client).await;
        Setup {
            sim,
            dir,
            daemon,
            client,
        }
    }

    async fn stop(self) {
        self.daemon.stop().await;
        self.sim.shutdown().await.expect("simulator stops");
    }
}

fn data_dir(dir: &tempfile::TempDir) -> PathBuf {
    dir.path().join("data")
}

fn fault(endpoint: Endpoint, kind: FaultKind, count: u32) -> FaultSpec {
    FaultSpec {
        endpoint,
        kind,
        count,
    }
}

async fn force(client: &mut Client, kind: pb::SyncKind) -> String {
    client
        .force_sync(with_token(
            pb::ForceSyncRequest { kind: kind as i32 },
            ADMIN_TOKEN,
        ))
        .await
        .expect("force sync")
        .into_inner()
        .run_id
}

/// Waits until `runs` runs are in the history and none is running.
async fn wait_for_finished_runs(client: &mut Client, runs: usize) -> pb::IntegrationStatus {
    eventually(&format!("{runs} finished run(s)"), || {
        let mut client = client.clone();
        async move {
            let status = status(&mut client).await;
            (status.history.len() >= runs && status.current_run.is_none()).then_some(status)
        }
    })
    .await
}

/// Waits until the status shows a run waiting out a rate limit.
async fn rate_limit_wait(client: &mut Client) -> pb::IntegrationStatus {
    eventually("a rate-limit warning while the run waits", || {
        let mut client = client.clone();
        async move {
            let status = status(&mut client).await;
            status
                .warnings
                .iter()
                .any(|w| w.contains("rate limit"))
                .then_some(status)
        }
    })
    .await
}

/// Every request the simulator counted, on every endpoint.
fn total_requests(sim: &SimulatorHandle) -> u64 {
    sim.control().counters().values().sum()
}

fn millis(ts: &Option<prost_types::Timestamp>) -> i64 {
    let ts = ts.as_ref().expect("timestamp");
    ts.seconds * 1000 + i64::from(ts.nanos) / 1_000_000
}

fn digest_and_ticket_cursor(data_dir: &Path) -> (String, Option<Vec<u8>>) {
    let store = Store::open(data_dir).expect("open store");
    (
        store.content_digest().expect("digest"),
        store.cursor(cursor_keys::TICKETS).expect("cursor"),
    )
}

#[tokio::test(flavor = "multi_thread")]
async fn rate_limit_waits_retry_after_then_the_run_succeeds() {
    let setup = Setup::start().await;
    let sim = &setup.sim;
    let mut client = setup.client.clone();
    sim.control().reset_counters();
    // Two 429s in a row: the client waits Retry-After (1 s) twice, a window GetStatus can see.
    sim.control().inject_fault(fault(
        Endpoint::IncrementalTickets,
        FaultKind::RateLimited {
            retry_after_secs: 1,
        },
        2,
    ));
    let run_id = force(&mut client, pb::SyncKind::Incremental).await;
    assert_eq!(run_id, "run-2");

    let waiting = rate_limit_wait(&mut client).await;
    assert_eq!(waiting.state, pb::SyncState::Syncing as i32);
    assert_eq!(waiting.current_run.expect("current run").id, "run-2");

    let done = wait_for_successful_runs(&mut client, 2).await;
    assert_eq!(done.state, pb::SyncState::Idle as i32);
    assert!(done.last_error.is_none());
    assert!(
        !done.warnings.iter().any(|w| w.contains("rate limit")),
        "the warning goes once the wait is over: {:?}",
        done.warnings
    );
    let run = &done.history[0];
    assert_eq!(run.outcome, pb::RunOutcome::Succeeded as i32);
    assert_eq!(
        sim.control().request_count(Endpoint::IncrementalTickets),
        3,
        "two refused requests and the one that got through"
    );
    assert_eq!(
        run.requests,
        total_requests(sim),
        "the run counts every request it sent, the refused ones included"
    );
    assert!(
        millis(&run.finished_at) - millis(&run.started_at) >= 2_000,
        "the run waited Retry-After twice"
    );
    setup.stop().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn pause_during_a_rate_limit_wait_stops_the_run_at_once_and_resume_finishes_it() {
    let setup = Setup::start().await;
    let sim = &setup.sim;
    let mut client = setup.client.clone();
    // Zendesk asks for a ten-minute wait: a pause must not sit it out, nor be cut after the stop grace.
    sim.control().inject_fault(fault(
        Endpoint::IncrementalTickets,
        FaultKind::RateLimited {
            retry_after_secs: 600,
        },
        1,
    ));
    let run_id = force(&mut client, pb::SyncKind::Incremental).await;
    rate_limit_wait(&mut client).await;

    let asked = std::time::Instant::now();
    let paused = client
        .pause(with_token(pb::PauseRequest {}, ADMIN_TOKEN))
        .await
        .expect("pause")
        .into_inner();
    assert_eq!(paused.stopping_run_id, run_id);
    assert!(
        asked.elapsed() < zdsync::sync::engine::STOP_GRACE,
        "the waiting fetch stops when asked, not after the {:?} grace ({:?})",
        zdsync::sync::engine::STOP_GRACE,
        asked.elapsed()
    );
    let stopped = wait_for_finished_runs(&mut client, 2).await;
    assert_eq!(stopped.history[0].id, run_id);
    assert_eq!(stopped.history[0].outcome, pb::RunOutcome::Paused as i32);
    assert!(
        !stopped.warnings.iter().any(|w| w.contains("rate limit")),
        "no wait is shown once paused: {:?}",
        stopped.warnings
    );

    client
        .resume(with_token(pb::ResumeRequest {}, ADMIN_TOKEN))
        .await
        .expect("resume");
    // Resume re-arms the schedule, and the interrupted run continues where it stopped.
    let done = wait_for_successful_runs(&mut client, 2).await;
    assert_eq!(done.history[0].id, run_id, "the paused run continues");
    assert_eq!(done.history[0].outcome, pb::RunOutcome::Succeeded as i32);
    setup.stop().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn two_server_errors_are_retried_and_the_run_succeeds() {
    let mut setup = Setup::start().await;
    setup.sim.control().reset_counters();
    setup
        .sim
        .control()
        .create_ticket(NewTicket {
            subject: Some("after the first sync".into()),
            ..Default::default()
        })
        .expect("create ticket");
    setup.sim.control().inject_fault(fault(
        Endpoint::IncrementalTickets,
        FaultKind::ServerError,
        2,
    ));
    force(&mut setup.client, pb::SyncKind::Incremental).await;

    let done = wait_for_successful_runs(&mut setup.client, 2).await;
    assert_eq!(done.state, pb::SyncState::Idle as i32);
    assert!(done.last_error.is_none());
    assert_eq!(
        setup
            .sim
            .control()
            .request_count(Endpoint::IncrementalTickets),
        3
    );
    assert_eq!(done.history[0].requests, total_requests(&setup.sim));
    assert_eq!(
        done.stored.expect("stored").tickets,
        setup.sim.control().stats().tickets as u64
    );
    setup.stop().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn persistent_server_errors_fail_the_run_and_a_later_force_recovers() {
    let mut setup = Setup::start().await;
    setup.sim.control().reset_counters();
    setup.sim.control().inject_fault(fault(
        Endpoint::IncrementalTickets,
        FaultKind::ServerError,
        u32::MAX,
    ));
    force(&mut setup.client, pb::SyncKind::Incremental).await;

    let failed = wait_for_finished_runs(&mut setup.client, 2).await;
    assert_eq!(failed.history[0].outcome, pb::RunOutcome::Failed as i32);
    assert_eq!(failed.state, pb::SyncState::Failed as i32);
    let error = failed.last_error.clone().expect("last_error");
    assert_eq!(error.kind, pb::ErrorKind::Server as i32);
    assert!(error.message.contains(TICKET_EXPORT), "{}", error.message);
    assert!(error.message.contains("500"), "{}", error.message);
    assert_eq!(error.run_id, "run-2");
    assert_eq!(
        setup
            .sim
            .control()
            .request_count(Endpoint::IncrementalTickets),
        5,
        "the client tries 5 times before giving up"
    );
    // The schedule retries the failed run after the first backoff step, one minute.
    assert_eq!(
        millis(&failed.next_incremental_at) - millis(&failed.history[0].finished_at),
        60_000
    );

    setup.sim.control().clear_faults();
    let run_id = force(&mut setup.client, pb::SyncKind::Incremental).await;
    assert_eq!(
        run_id, "run-2",
        "the failed run is continued, not started over"
    );
    let done = wait_for_successful_runs(&mut setup.client, 2).await;
    assert_eq!(done.history[0].outcome, pb::RunOutcome::Succeeded as i32);
    assert_eq!(done.state, pb::SyncState::Idle as i32);
    assert!(done.last_error.is_none(), "{:?}", done.last_error);
    assert_eq!(
        millis(&done.next_incremental_at) - millis(&done.history[0].finished_at),
        3_600_000,
        "back on the hourly schedule"
    );
    setup.stop().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn a_full_validation_forced_after_a_failed_incremental_runs_as_asked() {
    let mut setup = Setup::start().await;
    setup.sim.control().inject_fault(fault(
        Endpoint::IncrementalTickets,
        FaultKind::ServerError,
        u32::MAX,
    ));
    force(&mut setup.client, pb::SyncKind::Incremental).await;
    let failed = wait_for_finished_runs(&mut setup.client, 2).await;
    assert_eq!(failed.history[0].outcome, pb::RunOutcome::Failed as i32);
    assert_eq!(failed.history[0].kind, pb::SyncKind::Incremental as i32);

    setup.sim.control().clear_faults();
    let forced = setup
        .client
        .force_sync(with_token(
            pb::ForceSyncRequest {
                kind: pb::SyncKind::FullValidation as i32,
            },
            ADMIN_TOKEN,
        ))
        .await
        .expect("force a validation")
        .into_inner();
    assert_eq!(forced.kind, pb::SyncKind::FullValidation as i32);
    assert_eq!(
        forced.run_id, "run-3",
        "a new run, not the failed incremental"
    );
    let done = wait_for_successful_runs(&mut setup.client, 2).await;
    assert_eq!(done.history[0].id, "run-3");
    assert_eq!(done.history[0].kind, pb::SyncKind::FullValidation as i32);
    setup.stop().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn a_stall_past_the_timeout_is_retried_and_a_persistent_one_fails_without_half_writes() {
    // A one-second request timeout.
    let (sim, _dir, daemon, mut client) = Harness::start_adjusted(small_simulator(), |config| {
        config.zendesk.timeout = Duration::from_secs(1);
    })
    .await
    .into_parts();
    configure_and_sync(&mut client).await;

    // One stalled answer: the request times out after 1 s and the retry gets the page.
    sim.control().reset_counters();
    sim.control()
        .create_ticket(NewTicket {
            subject: Some("first".into()),
            ..Default::default()
        })
        .expect("create ticket");
    sim.control().inject_fault(fault(
        Endpoint::IncrementalTickets,
        FaultKind::Stall { stall_ms: 3_000 },
        1,
    ));
    force(&mut client, pb::SyncKind::Incremental).await;
    let done = wait_for_successful_runs(&mut client, 2).await;
    assert!(done.last_error.is_none());
    assert_eq!(sim.control().request_count(Endpoint::IncrementalTickets), 2);
    let stored_before = done.stored.expect("stored").tickets;
    assert_eq!(stored_before, sim.control().stats().tickets as u64);

    // Every answer stalls: the run fails as a transport error and stores nothing of the page.
    sim.control().reset_counters();
    sim.control()
        .create_ticket(NewTicket {
            subject: Some("second".into()),
            ..Default::default()
        })
        .expect("create ticket");
    sim.control().inject_fault(fault(
        Endpoint::IncrementalTickets,
        FaultKind::Stall { stall_ms: 2_000 },
        u32::MAX,
    ));
    force(&mut client, pb::SyncKind::Incremental).await;
    let failed = wait_for_finished_runs(&mut client, 3).await;
    assert_eq!(failed.history[0].outcome, pb::RunOutcome::Failed as i32);
    assert_eq!(failed.state, pb::SyncState::Failed as i32);
    let error = failed.last_error.clone().expect("last_error");
    assert_eq!(error.kind, pb::ErrorKind::Transport as i32);
    assert!(error.message.contains(TICKET_EXPORT), "{}", error.message);
    assert_eq!(sim.control().request_count(Endpoint::IncrementalTickets), 5);
    assert_eq!(
        failed.stored.expect("stored").tickets,
        stored_before,
        "the new ticket is not stored: nothing of the page was written"
    );

    sim.control().clear_faults();
    force(&mut client, pb::SyncKind::Incremental).await;
    let recovered = wait_for_successful_runs(&mut client, 3).await;
    assert!(recovered.last_error.is_none());
    assert_eq!(
        recovered.stored.expect("stored").tickets,
        sim.control().stats().tickets as u64
    );
    daemon.stop().await;
    sim.shutdown().await.expect("simulator stops");
}

#[tokio::test(flavor = "multi_thread")]
async fn a_malformed_ticket_page_fails_the_run_and_commits_nothing_of_it() {
    let Setup {
        sim,
        dir,
        daemon,
        client: _,
    } = Setup::start().await;
    daemon.stop().await;
    let data = data_dir(&dir);
    let (digest_before, cursor_before) = digest_and_ticket_cursor(&data);
    assert!(
        cursor_before.is_some(),
        "the first sync stored a ticket cursor"
    );

    let control = sim.control();
    let created = control
        .create_ticket(NewTicket {
            subject: Some("never half-written".into()),
            ..Default::default()
        })
        .expect("create ticket");
    control
        .create_ticket(NewTicket::default())
        .expect("create ticket");

    let daemon = Daemon::start(&data, sim.base_url(), "", zdsync::clock::system()).await;
    let mut client = daemon.integration().await;
    control.inject_fault(fault(
        Endpoint::IncrementalTickets,
        FaultKind::MalformedBody,
        1,
    ));
    // The ratings list runs beside the exports and commits on its own: held, so that the digest
    // shows only what the ticket export did. The failure stops it without a commit.
    control.inject_fault(fault(Endpoint::SatisfactionRatings, FaultKind::Hold, 1));
    force(&mut client, pb::SyncKind::Incremental).await;
    let failed = wait_for_finished_runs(&mut client, 2).await;
    assert_eq!(failed.history[0].outcome, pb::RunOutcome::Failed as i32);
    assert_eq!(failed.state, pb::SyncState::Failed as i32);
    let error = failed.last_error.clone().expect("last_error");
    assert_eq!(error.kind, pb::ErrorKind::Malformed as i32);
    assert!(error.message.contains(TICKET_EXPORT), "{}", error.message);
    daemon.stop().await;

    let (digest_after, cursor_after) = digest_and_ticket_cursor(&data);
    assert_eq!(
        cursor_after, cursor_before,
        "the ticket cursor still points before the bad page"
    );
    assert_eq!(
        digest_after, digest_before,
        "nothing of the bad page was committed"
    );
    control.clear_faults();

    let daemon = Daemon::start(&data, sim.base_url(), "", zdsync::clock::system()).await;
    let mut client = daemon.integration().await;
    force(&mut client, pb::SyncKind::Incremental).await;
    let done = wait_for_successful_runs(&mut client, 2).await;
    assert!(done.last_error.is_none());
    assert_eq!(done.state, pb::SyncState::Idle as i32);
    let stats = control.stats();
    let stored = done.stored.expect("stored");
    assert_eq!(stored.tickets, stats.tickets as u64);
    assert_eq!(stored.users, stats.users as u64);
    assert_eq!(stored.organizations, stats.organizations as u64);
    daemon.stop().await;

    let store = Store::open(&data).expect("open store");
    assert!(store.ticket(created).expect("read ticket").is_some());
    assert_ne!(
        store.cursor(cursor_keys::TICKETS).expect("cursor"),
        cursor_before
    );
    drop(store);
    sim.shutdown().await.expect("simulator stops");
}

#[tokio::test(flavor = "multi_thread")]
async fn unauthorized_holds_the_schedule_until_change_login_succeeds() {
    let mut setup = Setup::start().await;
    setup.sim.control().reset_counters();
    setup
        .sim
        .control()
        .inject_fault(fault(Endpoint::Groups, FaultKind::Unauthorized, u32::MAX));
    force(&mut setup.client, pb::SyncKind::Incremental).await;

    let failed = wait_for_finished_runs(&mut setup.client, 2).await;
    assert_eq!(failed.history[0].outcome, pb::RunOutcome::Failed as i32);
    assert_eq!(failed.state, pb::SyncState::Failed as i32);
    let error = failed.last_error.clone().expect("last_error");
    assert_eq!(error.kind, pb::ErrorKind::Authentication as i32);
    assert!(
        error.message.contains("Couldn't authenticate you"),
        "{}",
        error.message
    );
    assert!(failed.next_incremental_at.is_none(), "the schedule is held");
    assert!(
        failed.next_full_validation_at.is_none(),
        "the schedule is held"
    );
    assert!(
        failed.warnings.iter().any(|w| w.contains("ChangeLogin")),
        "{:?}",
        failed.warnings
    );
    assert_eq!(
        setup.sim.control().request_count(Endpoint::Groups),
        2,
        "one token renewal after the 401, then the run stops"
    );

    // The engine lets an admin force a run while the schedule is held; it fails the same way.
    let again = force(&mut setup.client, pb::SyncKind::Incremental).await;
    assert_eq!(again, "run-2", "the failed run is continued");
    let failed_again = wait_for_finished_runs(&mut setup.client, 3).await;
    assert_eq!(
        failed_again.history[0].outcome,
        pb::RunOutcome::Failed as i32
    );
    assert_eq!(failed_again.state, pb::SyncState::Failed as i32);
    assert!(failed_again.next_incremental_at.is_none());

    // Wrong credentials do not lift the hold.
    let refused = setup
        .client
        .change_login(with_token(
            pb::ChangeLoginRequest {
                credentials: Some(pb::change_login_request::Credentials::ApiToken(
                    pb::ApiTokenCredentials {
                        email: simulator::DEFAULT_API_TOKEN_EMAIL.into(),
                        token: "wrong-token".into(),
                    },
                )),
            },
            ADMIN_TOKEN,
        ))
        .await
        .expect_err("wrong token");
    assert_eq!(refused.code(), Code::Unauthenticated);
    let still = status(&mut setup.client).await;
    assert_eq!(still.state, pb::SyncState::Failed as i32);
    assert!(still.next_incremental_at.is_none());

    setup.sim.control().clear_faults();
    setup
        .client
        .change_login(with_token(
            pb::ChangeLoginRequest {
                credentials: Some(pb::change_login_request::Credentials::ApiToken(
                    pb::ApiTokenCredentials {
                        email: simulator::DEFAULT_API_TOKEN_EMAIL.into(),
                        token: simulator::DEFAULT_API_TOKEN.into(),
                    },
                )),
            },
            ADMIN_TOKEN,
        ))
        .await
        .expect("change login");
    // The held run resumes on its own once the login works.
    let done = wait_for_successful_runs(&mut setup.client, 2).await;
    assert_eq!(done.history[0].id, "run-2");
    assert_eq!(done.state, pb::SyncState::Idle as i32);
    assert!(done.last_error.is_none());
    assert!(done.next_incremental_at.is_some());
    assert!(
        !done
            .warnings
            .iter()
            .any(|w| w.contains("ChangeLogin succeeds")),
        "{:?}",
        done.warnings
    );
    setup.stop().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn a_forbidden_ticket_events_export_falls_back_and_the_run_succeeds() {
    let setup = Setup::start_with(small_simulator(), |sim| {
        sim.control().inject_fault(fault(
            Endpoint::TicketEvents,
            FaultKind::Forbidden,
            u32::MAX,
        ));
    })
    .await;
    let mut client = setup.client.clone();
    let done = status(&mut client).await;
    let run = &done.history[0];
    assert_eq!(run.outcome, pb::RunOutcome::Succeeded as i32);
    assert_eq!(done.state, pb::SyncState::Idle as i32);
    assert!(done.last_error.is_none());
    assert!(done.ticket_events_fallback);
    assert!(
        done.warnings
            .iter()
            .any(|w| w.contains("ticket events") && w.contains("403") && w.contains("snapshots")),
        "{:?}",
        done.warnings
    );
    assert_eq!(
        setup.sim.control().request_count(Endpoint::TicketEvents),
        1,
        "a 403 is not retried"
    );
    let stats = setup.sim.control().stats();
    assert_eq!(done.stored.expect("stored").tickets, stats.tickets as u64);

    // Once Zendesk allows the export again, the next run drops the fallback.
    setup.sim.control().clear_faults();
    force(&mut client, pb::SyncKind::Incremental).await;
    let after = wait_for_successful_runs(&mut client, 2).await;
    assert!(!after.ticket_events_fallback);
    assert!(!after.warnings.iter().any(|w| w.contains("ticket events")));
    setup.stop().await;
}
