//! A full disk during a sync (DESIGN 1.6, issue #14): the store stops writing, health answers NOT_SERVING,
//! `GetStatus` says in plain words that the disk is full and how much space is left, writes answer
//! UNAVAILABLE while reads go on, and once space is freed the daemon recovers by itself and finishes the
//! run from its cursor, storing exactly what an uninterrupted sync stores.
//!
//! The disk is the store's own: the daemon opens its database on a `StorageFault` the test fills and clears
//! (every write that needs a new block fails with ENOSPC, as on a full file system).
mod common;

use std::path::{Path, PathBuf};
use std::time::Duration;

use tonic::transport::Channel;
use tonic_health::pb::health_check_response::ServingStatus;
use tonic_health::pb::health_client::HealthClient;
use tonic_health::pb::HealthCheckRequest;

use common::inproc::{self, configure_request, wait_for_successful_runs, Daemon, ADMIN_TOKEN};
use common::{eventually, with_token};
use zdsync::proto::v1 as pb;
use zdsync::proto::v1::account_directory_service_client::AccountDirectoryServiceClient;
use zdsync::proto::v1::integration_service_client::IntegrationServiceClient;
use zdsync::simulator::{Endpoint, FaultKind, FaultSpec, SimulatorHandle};
use zdsync::store::tables::cursor_keys;
use zdsync::store::{StorageFault, Store};

/// Tickets in the simulator: several ticket pages (1,000 a page), each its own commit.
const TICKETS: u32 = 3_000;

/// How long the first ticket page takes: time for the test to fill the disk while the run waits for it.
const STALL: Duration = Duration::from_millis(1_500);

/// The daemon's longest wait between two tries to write again (30 s in production).
const STORE_RETRY: Duration = Duration::from_millis(200);

async fn start(sim: &SimulatorHandle, data_dir: &Path, fault: Option<StorageFault>) -> Daemon {
    let options = zdsync::daemon::RunOptions {
        storage_fault: fault,
        store_retry: Some(STORE_RETRY),
        ..Default::default()
    };
    Daemon::start_with_options(
        data_dir,
        sim.base_url(),
        "[schedule]\npages_per_commit = 1\n",
        zdsync::clock::system(),
        |_| {},
        options,
    )
    .await
}

async fn health(channel: Channel) -> Option<ServingStatus> {
    let response = HealthClient::new(channel)
        .check(HealthCheckRequest {
            service: String::new(),
        })
        .await
        .ok()?;
    ServingStatus::try_from(response.into_inner().status).ok()
}

async fn wait_for_health(daemon: &Daemon, wanted: ServingStatus) {
    let channel = daemon.channel().await;
    eventually(&format!("health {wanted:?}"), || {
        let channel = channel.clone();
        async move { (health(channel).await? == wanted).then_some(()) }
    })
    .await;
}

/// `GetStatus`, or the error it answered.
async fn try_status(
    client: &mut IntegrationServiceClient<Channel>,
) -> Result<pb::IntegrationStatus, tonic::Status> {
    client
        .get_status(with_token(pb::GetStatusRequest {}, ADMIN_TOKEN))
        .await
        .map(tonic::Response::into_inner)
}

async fn upsert(daemon: &Daemon) -> Result<pb::UpsertAccountsResponse, tonic::Status> {
    AccountDirectoryServiceClient::new(daemon.channel().await)
        .upsert_accounts(with_token(
            pb::UpsertAccountsRequest {
                accounts: vec![pb::Account {
                    id: "acct-full-disk".into(),
                    name: "Written once the disk has room".into(),
                    ..Default::default()
                }],
            },
            ADMIN_TOKEN,
        ))
        .await
        .map(tonic::Response::into_inner)
}

/// The store's digest (the ratings cursor, which holds the run's start time, set to `ratings_since`), counts
/// and timeline event count, read once the daemon has stopped.
async fn contents(data_dir: PathBuf, ratings_since: Option<Vec<u8>>) -> (String, String, u64) {
    tokio::task::spawn_blocking(move || {
        let store = Store::open(&data_dir).expect("open the store");
        if let Some(cursor) = ratings_since {
            store
                .apply_page(&zdsync::store::page::PageWrite {
                    cursors: vec![(cursor_keys::RATINGS_SINCE.into(), cursor)],
                    ..Default::default()
                })
                .expect("normalise ratings_since");
        }
        (
            store.content_digest().expect("digest"),
            format!("{:?}", store.stored_counts().expect("counts")),
            store.event_count().expect("events"),
        )
    })
    .await
    .expect("blocking task")
}

async fn ratings_since(data_dir: PathBuf) -> Option<Vec<u8>> {
    tokio::task::spawn_blocking(move || {
        Store::open(&data_dir)
            .expect("open the store")
            .cursor(cursor_keys::RATINGS_SINCE)
            .expect("cursor")
    })
    .await
    .expect("blocking task")
}

#[tokio::test(flavor = "multi_thread")]
async fn a_disk_that_fills_during_a_sync_is_reported_and_the_daemon_recovers_by_itself() {
    let sim = inproc::simulator(inproc::sized(TICKETS, 40, 300)).await;
    let dir = tempfile::tempdir().expect("tempdir");
    let data_dir = dir.path().join("data");
    let fault = StorageFault::new();
    let daemon = start(&sim, &data_dir, Some(fault.clone())).await;
    let mut client = daemon.integration().await;
    wait_for_health(&daemon, ServingStatus::Serving).await;

    // The first ticket page is slow to come: the disk fills while the run waits for it, after the groups,
    // organizations and users were committed.
    sim.control().inject_fault(FaultSpec {
        endpoint: Endpoint::IncrementalTickets,
        kind: FaultKind::Stall {
            stall_ms: STALL.as_millis() as u64,
        },
        count: 1,
    });
    client
        .configure(with_token(configure_request(), ADMIN_TOKEN))
        .await
        .expect("configure");
    eventually("the run to ask for the first ticket page", || async {
        (sim.control().request_count(Endpoint::IncrementalTickets) > 0).then_some(())
    })
    .await;
    fault.fill_disk();

    wait_for_health(&daemon, ServingStatus::NotServing).await;
    // Reads keep working from the store (once it is reopened, a moment after the failed commit); the run
    // drains to a page boundary meanwhile, so the status is read once it has stopped.
    let status = eventually(
        "GetStatus to answer during the outage, the run stopped",
        || {
            let mut client = client.clone();
            async move {
                try_status(&mut client)
                    .await
                    .ok()
                    .filter(|status| status.current_run.is_none() && status.last_error.is_some())
            }
        },
    )
    .await;
    let error = status.last_error.expect("last_error says why");
    let expected_start = format!("the disk holding {} is full (", data_dir.display());
    assert!(
        error.message.starts_with(&expected_start)
            && error
                .message
                .contains(" free): zdsync stopped writing and retries every 200 ms")
            && error.message.ends_with("free some space"),
        "{}",
        error.message
    );
    assert_eq!(error.kind, pb::ErrorKind::Internal as i32);
    assert_eq!(status.state, pb::SyncState::Failed as i32);
    assert!(status.current_run.is_none(), "the run stopped");
    assert!(
        status
            .stored
            .as_ref()
            .is_some_and(|stored| stored.users > 0),
        "the pages committed before the disk filled are read: {:?}",
        status.stored
    );

    // A write answers UNAVAILABLE in the same plain words, not INTERNAL; so does a run asked for.
    let refused = upsert(&daemon).await.expect_err("the disk is full");
    assert_eq!(refused.code(), tonic::Code::Unavailable, "{refused:?}");
    assert!(
        refused.message().starts_with(&expected_start),
        "{}",
        refused.message()
    );
    let refused = inproc::force(&mut client, pb::SyncKind::Incremental)
        .await
        .expect_err("no run while the disk is full");
    assert_eq!(refused.code(), tonic::Code::Unavailable, "{refused:?}");
    // Still full after several retries: still reported, reads still served.
    tokio::time::sleep(STORE_RETRY * 3).await;
    let status = try_status(&mut client).await.expect("status while full");
    assert!(status
        .last_error
        .is_some_and(|e| e.message.starts_with(&expected_start)));

    // Space is freed: the daemon notices by itself, serves again and finishes the run from its cursor.
    fault.clear();
    wait_for_health(&daemon, ServingStatus::Serving).await;
    let status = wait_for_successful_runs(&mut client, 1).await;
    assert!(status.last_error.is_none(), "{:?}", status.last_error);
    assert_eq!(
        status.history.len(),
        1,
        "one run, resumed rather than started over: {:?}",
        status.history
    );
    assert_eq!(status.history[0].id, "run-1");
    upsert(&daemon).await.expect("writes work again");
    daemon.stop().await;

    // The same simulator synced without a fault: the store holds the same records, cursors, events and
    // rollups, no event twice.
    let reference_dir = dir.path().join("reference");
    let reference = start(&sim, &reference_dir, None).await;
    let mut reference_client = reference.integration().await;
    reference_client
        .configure(with_token(configure_request(), ADMIN_TOKEN))
        .await
        .expect("configure the reference");
    wait_for_successful_runs(&mut reference_client, 1).await;
    upsert(&reference).await.expect("the same account");
    reference.stop().await;
    let reference = contents(reference_dir.clone(), None).await;
    let recovered = contents(data_dir, ratings_since(reference_dir).await).await;
    assert_eq!(recovered.1, reference.1, "stored counts");
    assert_eq!(recovered.2, reference.2, "timeline events");
    assert_eq!(recovered.0, reference.0, "the stores' contents");
    sim.shutdown().await.expect("simulator stops");
}

#[tokio::test(flavor = "multi_thread")]
async fn a_brief_full_disk_during_upsert_accounts_heals_without_a_restart() {
    let sim = inproc::simulator(inproc::sized(10, 2, 5)).await;
    let dir = tempfile::tempdir().expect("tempdir");
    let data_dir = dir.path().join("data");
    let fault = StorageFault::new();
    let daemon = start(&sim, &data_dir, Some(fault.clone())).await;
    wait_for_health(&daemon, ServingStatus::Serving).await;

    fault.fill_disk();
    let refused = upsert(&daemon).await.expect_err("the disk is full");
    assert_eq!(refused.code(), tonic::Code::Unavailable, "{refused:?}");
    assert!(
        refused.message().contains("is full (") && refused.message().contains("free some space"),
        "{}",
        refused.message()
    );
    wait_for_health(&daemon, ServingStatus::NotServing).await;
    fault.clear();
    wait_for_health(&daemon, ServingStatus::Serving).await;
    let created = upsert(&daemon)
        .await
        .expect("writes work again, no restart");
    assert_eq!(created.created, 1, "the refused upsert stored nothing");
    daemon.stop().await;
    sim.shutdown().await.expect("simulator stops");
}
