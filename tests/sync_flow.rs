//! The integration and its sync engine end to end: simulator + daemon, real gRPC.
mod common;

use std::time::Duration;

use common::inproc::{
    self, configure, configure_request, force, member, open_store, sized, status, wait_for_status,
    wait_for_successful_runs, Daemon, Harness, ADMIN_TOKEN,
};
use common::with_token;
use tonic::Code;
use zdsync::domain::ticket::{Priority as StoredPriority, Status as StoredStatus};
use zdsync::proto::v1 as pb;
use zdsync::proto::v1::account_directory_service_client::AccountDirectoryServiceClient;
use zdsync::simulator::{NewTicket, OrganizationInput, Priority, Status, TicketUpdate};
use zdsync::store::zendesk_records::TicketRecord;

#[tokio::test(flavor = "multi_thread")]
async fn configure_runs_the_first_full_sync_and_status_counts_match_the_simulator() {
    let (sim, _dir, daemon, mut client) = Harness::start(sized(2_500, 40, 300)).await.into_parts();

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

/// Tickets per page of the ticket export (Zendesk's and the simulator's maximum).
const TICKETS_PER_PAGE: u64 = 1_000;

/// A budget of three export requests a minute: organizations, users and the first ticket page go
/// at once, the second ticket page waits until the first request is a minute old. That holds a first
/// sync in progress, with tickets stored, long enough for a test to act on it without racing the run.
fn three_exports_a_minute(config: &mut zdsync::config::Config) {
    config.zendesk.requests_per_minute = 3;
}

/// The id of a ticket the simulator still lets change (not closed, not deleted).
fn open_ticket(control: &zdsync::simulator::SimulatorControl, skip: &[u64]) -> u64 {
    control
        .ticket_ids()
        .into_iter()
        .filter(|id| !skip.contains(id))
        .find(|id| {
            let ticket = control.ticket_json(*id).expect("ticket json");
            matches!(
                ticket["status"].as_str(),
                Some("new" | "open" | "pending" | "hold")
            )
        })
        .expect("an open ticket in the data set")
}

#[tokio::test(flavor = "multi_thread")]
async fn simulator_changes_arrive_with_the_next_incremental_sync() {
    let (sim, dir, daemon, mut client) = Harness::start(sized(1_500, 30, 200)).await.into_parts();
    let data = dir.path().join("data");
    assert_eq!(configure(&mut client).await, "run-1");
    let first = wait_for_successful_runs(&mut client, 1).await;
    let before = first.stored.expect("stored counts");

    let control = sim.control();
    let created = control
        .create_ticket(NewTicket {
            subject: Some("Printer on fire".into()),
            priority: Some(Priority::Urgent),
            ..Default::default()
        })
        .expect("create ticket");
    let changed = open_ticket(control, &[created]);
    control
        .update_ticket(
            changed,
            TicketUpdate {
                status: Some(Status::Solved),
                priority: Some(Some(Priority::High)),
                ..Default::default()
            },
        )
        .expect("update ticket");
    let deleted = open_ticket(control, &[created, changed]);
    control.delete_ticket(deleted).expect("delete ticket");
    let organization = control
        .create_organization(OrganizationInput {
            name: Some("Initech Sync Test".into()),
            domain_names: Some(vec!["initech-sync.example".into()]),
            ..Default::default()
        })
        .expect("create organization");
    member(
        control,
        "Ann Smith",
        "ann@initech-sync.example",
        organization,
    );
    // The organization export hides the latest minute, as Zendesk does.
    control.set_time_offset(120);

    let forced = force(&mut client, pb::SyncKind::Incremental)
        .await
        .expect("force an incremental sync");
    assert_eq!(forced.run_id, "run-2");
    assert_eq!(forced.kind, pb::SyncKind::Incremental as i32);
    let done = wait_for_successful_runs(&mut client, 2).await;
    assert_eq!(done.history[0].id, "run-2");
    assert_eq!(done.history[0].kind, pb::SyncKind::Incremental as i32);
    let stats = control.stats();
    let stored = done.stored.expect("stored counts");
    assert_eq!(stored.tickets, before.tickets + 1);
    assert_eq!(stored.tickets, stats.tickets as u64);
    assert_eq!(stored.organizations, before.organizations + 1);
    assert_eq!(stored.organizations, stats.organizations as u64);
    assert_eq!(stored.users, before.users + 1);
    assert_eq!(stored.users, stats.users as u64);
    daemon.stop().await;

    let store = open_store(&data);
    let generated = |id: u64| {
        control.ticket_json(id).expect("ticket json")["generated_timestamp"]
            .as_i64()
            .expect("generated_timestamp")
    };
    let new_ticket = store
        .ticket(created)
        .expect("read")
        .expect("new ticket stored");
    assert_eq!(new_ticket.subject, "Printer on fire");
    assert_eq!(new_ticket.status, StoredStatus::New.code());
    assert_eq!(new_ticket.priority, StoredPriority::Urgent.code());
    assert_eq!(new_ticket.generated_timestamp, generated(created));
    let updated = store
        .ticket(changed)
        .expect("read")
        .expect("changed ticket");
    assert_eq!(updated.status, StoredStatus::Solved.code());
    assert_eq!(updated.priority, StoredPriority::High.code());
    assert_eq!(updated.generated_timestamp, generated(changed));
    let gone = store
        .ticket(deleted)
        .expect("read")
        .expect("deleted ticket");
    assert_eq!(gone.status, StoredStatus::Deleted.code());
    assert_eq!(gone.generated_timestamp, generated(deleted));
    drop(store);
    sim.shutdown().await.expect("simulator stops");
}

#[tokio::test(flavor = "multi_thread")]
async fn full_validation_finds_no_drift_on_an_unchanged_source_and_repairs_a_tampered_store() {
    let (sim, dir, daemon, mut client) = Harness::start(sized(1_200, 20, 100)).await.into_parts();
    let data = dir.path().join("data");
    configure(&mut client).await;
    wait_for_successful_runs(&mut client, 1).await;

    let forced = force(&mut client, pb::SyncKind::FullValidation)
        .await
        .expect("force a validation");
    assert_eq!(forced.run_id, "run-2");
    assert_eq!(forced.kind, pb::SyncKind::FullValidation as i32);
    let clean = wait_for_successful_runs(&mut client, 2).await;
    assert_eq!(clean.history[0].kind, pb::SyncKind::FullValidation as i32);
    assert!(clean.history[0].tickets > 0, "validation re-read tickets");
    let drift = clean.drift.expect("drift of the validation");
    assert_eq!(drift.run_id, "run-2");
    assert_eq!((drift.tickets_updated, drift.tickets_added), (0, 0));
    assert_eq!(drift.tickets_gone, 0);
    daemon.stop().await;

    // Tamper while the daemon is down: a changed subject behind an unchanged generated timestamp,
    // and a ticket Zendesk does not have.
    let store = open_store(&data);
    let ticket_count = sim.control().stats().tickets as u64;
    let (tampered_id, original) = (1..=ticket_count)
        .map(|id| (id, store.ticket(id).expect("read").expect("stored ticket")))
        .max_by_key(|(_, ticket)| ticket.generated_timestamp)
        .expect("tickets stored");
    store
        .put_ticket_raw(
            tampered_id,
            &TicketRecord {
                subject: "tampered subject".into(),
                ..original.clone()
            },
        )
        .expect("tamper");
    let stray_id = 9_000_000;
    let day_ago = chrono::Utc::now().timestamp() - 86_400;
    let stray = TicketRecord {
        subject: "not in Zendesk".into(),
        status: StoredStatus::Open.code(),
        created_at: day_ago,
        updated_at: day_ago,
        generated_timestamp: day_ago,
        ..Default::default()
    };
    store
        .put_ticket_raw(stray_id, &stray)
        .expect("insert stray");
    drop(store);
    // A ticket Zendesk has and the store never saw (created while the daemon was down).
    sim.control()
        .create_ticket(zdsync::simulator::NewTicket::default())
        .expect("create a ticket");

    let daemon = Daemon::start(&data, sim.base_url(), "", zdsync::clock::system()).await;
    let mut client = daemon.integration().await;
    let forced = force(&mut client, pb::SyncKind::FullValidation)
        .await
        .expect("force a validation after the restart");
    assert_eq!(forced.run_id, "run-3");
    let repaired = wait_for_successful_runs(&mut client, 3).await;
    let drift = repaired.drift.expect("drift of the second validation");
    assert_eq!(drift.run_id, "run-3");
    assert!(drift.tickets_updated >= 1, "drift: {drift:?}");
    assert_eq!(
        drift.tickets_added, 1,
        "the new ticket is added, not updated: {drift:?}"
    );
    assert_eq!(drift.tickets_gone, 1, "drift: {drift:?}");
    daemon.stop().await;

    let store = open_store(&data);
    assert_eq!(
        store.ticket(tampered_id).expect("read").expect("ticket"),
        original,
        "validation restores the ticket as Zendesk exports it"
    );
    let stray_after = store.ticket(stray_id).expect("read").expect("stray kept");
    assert!(
        stray_after.gone,
        "a ticket Zendesk no longer returns is marked gone"
    );
    drop(store);
    sim.shutdown().await.expect("simulator stops");
}

#[tokio::test(flavor = "multi_thread")]
async fn force_sync_is_refused_during_a_run_while_paused_and_for_the_initial_kind() {
    let (sim, _dir, daemon, mut client) =
        Harness::start_adjusted(sized(3_000, 30, 200), three_exports_a_minute)
            .await
            .into_parts();
    assert_eq!(configure(&mut client).await, "run-1");
    wait_for_status(&mut client, "the first ticket page of run-1", |status| {
        status
            .current_run
            .as_ref()
            .is_some_and(|run| run.tickets >= TICKETS_PER_PAGE)
    })
    .await;

    for kind in [pb::SyncKind::Incremental, pb::SyncKind::FullValidation] {
        let busy = force(&mut client, kind)
            .await
            .expect_err("one run at a time");
        assert_eq!(busy.code(), Code::FailedPrecondition, "{busy:?}");
        assert!(busy.message().contains("run-1"), "{}", busy.message());
    }
    let initial = force(&mut client, pb::SyncKind::InitialSync)
        .await
        .expect_err("the first sync cannot be forced");
    assert_eq!(initial.code(), Code::InvalidArgument);
    assert!(
        initial.message().starts_with("kind"),
        "{}",
        initial.message()
    );

    let paused = client
        .pause(with_token(pb::PauseRequest {}, ADMIN_TOKEN))
        .await
        .expect("pause")
        .into_inner();
    assert_eq!(paused.stopping_run_id, "run-1");
    let refused = force(&mut client, pb::SyncKind::Incremental)
        .await
        .expect_err("no force while paused");
    assert_eq!(refused.code(), Code::FailedPrecondition);
    assert!(
        refused.message().contains("paused"),
        "{}",
        refused.message()
    );
    let status = status(&mut client).await;
    assert_eq!(status.state, pb::SyncState::Paused as i32);
    assert!(status.current_run.is_none());

    daemon.stop().await;
    sim.shutdown().await.expect("simulator stops");
}

#[tokio::test(flavor = "multi_thread")]
async fn pause_stops_a_run_at_a_page_boundary_survives_a_restart_and_resume_finishes_it() {
    let (sim, dir, daemon, mut client) =
        Harness::start_adjusted(sized(4_000, 30, 200), three_exports_a_minute)
            .await
            .into_parts();
    let total = sim.control().stats().tickets as u64;
    let data = dir.path().join("data");
    assert_eq!(configure(&mut client).await, "run-1");
    wait_for_status(&mut client, "the first ticket page of run-1", |status| {
        status
            .current_run
            .as_ref()
            .is_some_and(|run| run.tickets >= TICKETS_PER_PAGE)
    })
    .await;
    let paused = client
        .pause(with_token(pb::PauseRequest {}, ADMIN_TOKEN))
        .await
        .expect("pause")
        .into_inner();
    assert!(!paused.was_paused);
    assert_eq!(paused.stopping_run_id, "run-1");
    let stopped = status(&mut client).await;
    assert_eq!(stopped.state, pb::SyncState::Paused as i32);
    assert!(stopped.paused && stopped.current_run.is_none());
    assert!(stopped.next_incremental_at.is_none());
    assert_eq!(stopped.history.len(), 1);
    assert_eq!(stopped.history[0].id, "run-1");
    assert_eq!(stopped.history[0].outcome, pb::RunOutcome::Paused as i32);
    let partial = stopped.stored.expect("stored counts").tickets;
    assert!(
        partial > 0 && partial < total,
        "{partial} of {total} tickets stored"
    );
    assert_eq!(partial % TICKETS_PER_PAGE, 0, "whole pages only: {partial}");
    daemon.stop().await;

    // Restarted without the budget: only the pause holds the run back now.
    let daemon = Daemon::start(&data, sim.base_url(), "", zdsync::clock::system()).await;
    let mut client = daemon.integration().await;
    // The engine plans every 250 ms; several plans must pass without a run starting.
    let watch_until = tokio::time::Instant::now() + Duration::from_millis(1_500);
    while tokio::time::Instant::now() < watch_until {
        let restarted = status(&mut client).await;
        assert_eq!(restarted.state, pb::SyncState::Paused as i32);
        assert!(restarted.paused);
        assert!(restarted.current_run.is_none(), "no run while paused");
        assert!(restarted.next_incremental_at.is_none());
        assert_eq!(restarted.history.len(), 1, "no run while paused");
        assert_eq!(restarted.stored.expect("stored").tickets, partial);
        tokio::time::sleep(inproc::POLL).await;
    }

    let resumed = client
        .resume(with_token(pb::ResumeRequest {}, ADMIN_TOKEN))
        .await
        .expect("resume")
        .into_inner();
    assert!(resumed.was_paused);
    let done = wait_for_successful_runs(&mut client, 1).await;
    assert_eq!(done.history.len(), 2);
    let finished = &done.history[0];
    assert_eq!(finished.id, "run-1", "the interrupted run continues");
    assert_eq!(finished.kind, pb::SyncKind::InitialSync as i32);
    assert_eq!(finished.outcome, pb::RunOutcome::Succeeded as i32);
    let stats = sim.control().stats();
    let stored = done.stored.expect("stored counts");
    assert_eq!(stored.tickets, stats.tickets as u64);
    assert_eq!(stored.organizations, stats.organizations as u64);
    assert_eq!(stored.users, stats.users as u64);
    assert_eq!(done.state, pb::SyncState::Idle as i32);

    daemon.stop().await;
    sim.shutdown().await.expect("simulator stops");
}

#[tokio::test(flavor = "multi_thread")]
async fn delete_integration_checks_the_subdomain_drops_zendesk_data_keeps_accounts_and_allows_a_fresh_configure(
) {
    let (sim, dir, daemon, mut client) = Harness::start(sized(800, 20, 100)).await.into_parts();
    let data = dir.path().join("data");
    let mut accounts = AccountDirectoryServiceClient::new(daemon.channel().await);
    accounts
        .upsert_accounts(with_token(
            pb::UpsertAccountsRequest {
                accounts: (1..=3)
                    .map(|i| pb::Account {
                        id: format!("acct-000{i}"),
                        name: format!("Account {i}"),
                        owner: "manager@example.com".into(),
                        ..Default::default()
                    })
                    .collect(),
            },
            ADMIN_TOKEN,
        ))
        .await
        .expect("upsert accounts");
    configure(&mut client).await;
    wait_for_successful_runs(&mut client, 1).await;
    assert!(zdsync::store::credentials::path(&data).exists());

    let wrong = client
        .delete_integration(with_token(
            pb::DeleteIntegrationRequest {
                confirm_subdomain: "other".into(),
            },
            ADMIN_TOKEN,
        ))
        .await
        .expect_err("wrong subdomain");
    assert_eq!(wrong.code(), Code::InvalidArgument);
    assert!(
        wrong.message().starts_with("confirm_subdomain"),
        "{}",
        wrong.message()
    );
    assert_eq!(status(&mut client).await.state, pb::SyncState::Idle as i32);

    let deleted = client
        .delete_integration(with_token(
            pb::DeleteIntegrationRequest {
                confirm_subdomain: "acme".into(),
            },
            ADMIN_TOKEN,
        ))
        .await
        .expect("delete")
        .into_inner();
    assert_eq!(deleted.subdomain, "acme");
    let gone = status(&mut client).await;
    assert_eq!(gone.state, pb::SyncState::NotConfigured as i32);
    assert!(gone.next_incremental_at.is_none() && gone.history.is_empty());
    assert!(
        !zdsync::store::credentials::path(&data).exists(),
        "the credentials file is removed"
    );
    daemon.stop().await;

    let store = open_store(&data);
    let counts = store.stored_counts().expect("counts");
    assert_eq!(counts.tickets, 0);
    assert_eq!(counts.organizations, 0);
    assert_eq!(counts.users, 0);
    assert!(store.integration().expect("read").is_none());
    assert_eq!(store.account_count().expect("accounts"), 3, "accounts stay");
    drop(store);

    let daemon = Daemon::start(&data, sim.base_url(), "", zdsync::clock::system()).await;
    let mut client = daemon.integration().await;
    assert_eq!(configure(&mut client).await, "run-1", "a fresh start");
    let again = wait_for_successful_runs(&mut client, 1).await;
    assert_eq!(again.history.len(), 1);
    assert_eq!(again.history[0].kind, pb::SyncKind::InitialSync as i32);
    assert_eq!(
        again.stored.expect("stored").tickets,
        sim.control().stats().tickets as u64
    );
    daemon.stop().await;
    sim.shutdown().await.expect("simulator stops");
}
