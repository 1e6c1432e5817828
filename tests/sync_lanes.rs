//! The order of a first sync under Zendesk's two budgets: account metrics are answerable once the
//! tickets (and the ratings read beside them) are applied, while the ticket events backfill, the
//! events history, is still running; `GetStatus` says so with `metrics_ready`.
mod common;

use std::collections::{BTreeMap, HashMap};

use common::inproc::{
    self, sized, upsert_accounts_named, wait_for_successful_runs, Harness, ADMIN_TOKEN,
};
use common::with_token;
use zdsync::proto::v1 as pb;
use zdsync::proto::v1::metrics_service_client::MetricsServiceClient;
use zdsync::simulator::{Endpoint, FaultKind, FaultSpec, SimulatorControl};

/// Each account's figures as `BatchGetAccountMetrics` answers them, without the time they were computed at.
async fn figures(
    metrics: &mut MetricsServiceClient<tonic::transport::Channel>,
    ids: &[String],
) -> BTreeMap<String, pb::AccountMetrics> {
    metrics
        .batch_get_account_metrics(with_token(
            pb::BatchGetAccountMetricsRequest {
                account_ids: ids.to_vec(),
            },
            ADMIN_TOKEN,
        ))
        .await
        .expect("metrics")
        .into_inner()
        .metrics
        .into_iter()
        .map(|mut figures| {
            figures.computed_at = None;
            (figures.account_id.clone(), figures)
        })
        .collect()
}

/// The organizations of the simulator's data set that carry an account id, by organization.
fn organization_accounts(control: &SimulatorControl) -> HashMap<u64, String> {
    (20_000_001..=20_000_000 + control.stats().organizations as u64)
        .filter_map(|id| {
            let org = control.organization_json(id).expect("organization");
            let account = org["organization_fields"]["account_id"]
                .as_str()?
                .to_owned();
            Some((id, account))
        })
        .collect()
}

/// Open and total tickets per account, straight from the simulator's tickets.
fn ticket_counts(
    control: &SimulatorControl,
    org_accounts: &HashMap<u64, String>,
) -> BTreeMap<String, (u64, u64)> {
    let mut counts: BTreeMap<String, (u64, u64)> = org_accounts
        .values()
        .map(|account| (account.clone(), (0, 0)))
        .collect();
    for id in control.ticket_ids() {
        let ticket = control.ticket_json(id).expect("ticket");
        let status = ticket["status"].as_str().expect("status");
        let Some(account) = ticket["organization_id"]
            .as_u64()
            .and_then(|org| org_accounts.get(&org))
        else {
            continue;
        };
        if status == "deleted" {
            continue;
        }
        let entry = counts.get_mut(account).expect("account");
        entry.0 += u64::from(matches!(status, "new" | "open" | "pending" | "hold"));
        entry.1 += 1;
    }
    counts
}

#[tokio::test(flavor = "multi_thread")]
async fn metrics_answer_the_runs_figures_while_the_events_backfill_is_held() {
    let sim = inproc::simulator(sized(2_500, 12, 150)).await;
    let control = sim.control().clone();
    let org_accounts = organization_accounts(&control);
    assert!(!org_accounts.is_empty());
    // The ticket events export's first request waits until the faults are cleared: the backfill is
    // held in the middle of the run for as long as the test looks.
    control.inject_fault(FaultSpec {
        endpoint: Endpoint::TicketEvents,
        kind: FaultKind::Hold,
        count: 1,
    });
    let (sim, _dir, daemon, mut client) = Harness::with_simulator(sim).await.into_parts();
    let mut ids: Vec<String> = org_accounts.values().cloned().collect();
    ids.sort();
    ids.dedup();
    upsert_accounts_named(&daemon, &ids).await;
    inproc::configure(&mut client).await;

    let held = common::eventually("metrics ready while the events backfill waits", || {
        let mut client = client.clone();
        let control = control.clone();
        async move {
            let status = inproc::status(&mut client).await;
            let run = status.current_run.clone()?;
            let progress = run.progress?;
            let waiting = control.request_count(Endpoint::TicketEvents) >= 1;
            (progress.phase() == pb::SyncPhase::TicketEvents && progress.metrics_ready && waiting)
                .then_some(status)
        }
    })
    .await;
    let progress = held
        .current_run
        .as_ref()
        .and_then(|run| run.progress)
        .expect("progress");
    assert_eq!(
        progress.list_phase(),
        pb::SyncPhase::Unspecified,
        "the ratings beside the export are done: {progress:?}"
    );
    let events_held = held.stored.expect("stored").events;

    let mut metrics = MetricsServiceClient::new(daemon.channel().await);
    let during = figures(&mut metrics, &ids).await;
    let direct = ticket_counts(&control, &org_accounts);
    for (account, (open, total)) in &direct {
        let answered = &during[account];
        assert_eq!(
            (answered.open_tickets, answered.total_tickets),
            (*open, *total),
            "{account}: the figures of every ticket, before the backfill"
        );
    }
    assert!(
        during
            .values()
            .any(|f| f.good_ratings + f.bad_ratings > 0 && f.open_high_urgent_tickets > 0),
        "the data exercises satisfaction and high/urgent figures: {during:?}"
    );

    control.clear_faults();
    let done = wait_for_successful_runs(&mut client, 1).await;
    assert_eq!(
        figures(&mut metrics, &ids).await,
        during,
        "the backfill changes no figure: they were final before it"
    );
    let events_done = done.stored.expect("stored").events;
    assert!(
        events_done > events_held,
        "the backfill recorded the history's events after the figures were ready: {events_held} -> {events_done}"
    );
    daemon.stop().await;
    sim.shutdown().await.expect("simulator stops");
}

#[tokio::test(flavor = "multi_thread")]
async fn a_failing_list_stops_the_waiting_export_and_the_run_fails_with_the_lists_error() {
    let sim = inproc::simulator(sized(2_500, 12, 150)).await;
    let control = sim.control().clone();
    // The ticket export's first request is held for as long as the faults stand, and the first
    // page of ratings is malformed: the run ends only if the failing list stops the export lane.
    for (endpoint, kind) in [
        (Endpoint::IncrementalTickets, FaultKind::Hold),
        (Endpoint::SatisfactionRatings, FaultKind::MalformedBody),
    ] {
        control.inject_fault(FaultSpec {
            endpoint,
            kind,
            count: 1,
        });
    }
    let (sim, _dir, daemon, mut client) = Harness::with_simulator(sim).await.into_parts();
    inproc::configure(&mut client).await;
    let failed = common::eventually("the first sync to fail", || {
        let mut client = client.clone();
        async move {
            let status = inproc::status(&mut client).await;
            (status.current_run.is_none() && !status.history.is_empty()).then_some(status)
        }
    })
    .await;
    assert_eq!(failed.history[0].outcome(), pb::RunOutcome::Failed);
    let error = failed.last_error.expect("last_error");
    assert_eq!(error.kind(), pb::ErrorKind::Malformed, "{error:?}");
    assert!(
        error.message.contains("satisfaction_ratings"),
        "the list's error, not the stopped export's: {}",
        error.message
    );
    assert_eq!(
        failed.stored.expect("stored").tickets,
        0,
        "no ticket page came"
    );
    assert!(control.request_count(Endpoint::IncrementalTickets) <= 1);

    control.clear_faults();
    // The failed first sync continues from its cursors.
    inproc::force(&mut client, pb::SyncKind::Incremental)
        .await
        .expect("force");
    let done = wait_for_successful_runs(&mut client, 1).await;
    assert_eq!(done.history[0].id, failed.history[0].id, "the same run");
    // Everything a first sync that never failed stores (ratings: the past year's only).
    let fresh_dir = tempfile::tempdir().expect("tempdir");
    let fresh = inproc::Daemon::start(
        &fresh_dir.path().join("data"),
        sim.base_url(),
        "",
        zdsync::clock::system(),
    )
    .await;
    let mut fresh_client = fresh.integration().await;
    inproc::configure(&mut fresh_client).await;
    let clean = wait_for_successful_runs(&mut fresh_client, 1).await;
    fresh.stop().await;
    let counts = |status: &pb::IntegrationStatus| {
        let stored = status.stored.expect("stored");
        (
            stored.tickets,
            stored.organizations,
            stored.users,
            stored.ratings,
            stored.events,
        )
    };
    assert_eq!(counts(&done), counts(&clean), "nothing lost, nothing twice");
    assert_eq!(counts(&done).0, control.stats().tickets as u64);
    daemon.stop().await;
    sim.shutdown().await.expect("simulator stops");
}
