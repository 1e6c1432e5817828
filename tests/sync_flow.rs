//! The integration and its sync engine end to end: simulator + daemon, real gRPC.
mod common;

use common::inproc::{
    self, configure_request, status, wait_for_successful_runs, Daemon, ADMIN_TOKEN,
};
use common::with_token;
use tonic::Code;
use zdsync::proto::v1 as pb;
use zdsync::simulator::SimulatorConfig;

#[tokio::test(flavor = "multi_thread")]
async fn configure_runs_the_first_full_sync_and_status_counts_match_the_simulator() {
    let sim = inproc::simulator(SimulatorConfig {
        tickets: 2_500,
        organizations: 40,
        users: 300,
        ..Default::default()
    })
    .await;
    let dir = tempfile::tempdir().expect("tempdir");
    let daemon = Daemon::start(
        &dir.path().join("data"),
        sim.base_url(),
        "",
        zdsync::clock::system(),
    )
    .await;
    let mut client = daemon.integration().await;

    assert_eq!(
        status(&mut client).await.state,
        pb::SyncState::NotConfigured as i32
    );
    let configured = client
        .configure(with_token(configure_request(), ADMIN_TOKEN))
        .await
        .expect("configure")
        .into_inner();
    assert_eq!(configured.run_id, "run-1");
    let integration = configured.integration.expect("integration");
    let masked = integration.credentials.expect("credentials");
    assert_eq!(masked.client_id, "zdsync-sim");
    assert!(!masked.client_secret_masked.contains("simulator-secret"));

    let again = client
        .configure(with_token(configure_request(), ADMIN_TOKEN))
        .await
        .expect_err("one integration only");
    assert_eq!(again.code(), Code::AlreadyExists);

    let done = wait_for_successful_runs(&mut client, 1).await;
    let stats = sim.control().stats();
    let stored = done.stored.expect("stored counts");
    assert_eq!(stored.tickets, stats.tickets as u64);
    assert_eq!(stored.organizations, stats.organizations as u64);
    assert_eq!(stored.users, stats.users as u64);
    assert_eq!(done.state, pb::SyncState::Idle as i32);
    assert!(done.last_successful_sync_at.is_some());
    assert!(done.next_incremental_at.is_some() && done.next_full_validation_at.is_some());
    let first = &done.history[0];
    assert_eq!(first.kind, pb::SyncKind::InitialSync as i32);
    assert!(first.requests > 0 && first.pages > 0);
    assert_eq!(first.tickets, stats.tickets as u64);

    daemon.stop().await;
    sim.shutdown().await.expect("simulator stops");
}
