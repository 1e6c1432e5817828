//! `GetStatus.current_run.progress` through a whole first sync: phase, pages, waits and the ETA move forward only.
mod common;

use common::inproc::{self, Daemon};
use zdsync::proto::v1 as pb;
use zdsync::simulator::SimulatorConfig;

#[tokio::test(flavor = "multi_thread")]
async fn progress_moves_monotonically_through_a_run() {
    let sim = inproc::simulator(SimulatorConfig {
        tickets: 3_500,
        organizations: 20,
        users: 150,
        ..Default::default()
    })
    .await;
    // A 429 (1 s) in the middle of the ticket export and at the start of the ticket events: the run
    // waits, which both slows it enough to be sampled and shows in the waits.
    for (endpoint, count) in [("incremental_tickets", 1), ("ticket_events", 1)] {
        sim.control().inject_fault(
            serde_json::from_value(serde_json::json!({
                "endpoint": endpoint, "kind": "rate_limited", "count": count, "retry_after_secs": 1
            }))
            .expect("fault spec"),
        );
    }
    let dir = tempfile::tempdir().expect("tempdir");
    // A budget generous enough never to wait, so the ETA is paced by the budget or the run's own rate.
    let daemon = Daemon::start_adjusted(
        &dir.path().join("data"),
        sim.base_url(),
        "",
        zdsync::clock::system(),
        |config| config.zendesk.requests_per_minute = 6_000,
    )
    .await;
    let mut client = daemon.integration().await;
    inproc::configure(&mut client).await;

    let sampled = std::sync::Arc::new(std::sync::Mutex::new(Vec::<pb::SyncRun>::new()));
    let finished = common::eventually("the first sync to finish", || {
        let mut client = client.clone();
        let samples = sampled.clone();
        async move {
            let status = inproc::status(&mut client).await;
            match status.current_run {
                Some(run) => {
                    samples.lock().expect("samples").push(run);
                    None
                }
                None => status
                    .history
                    .iter()
                    .any(|run| run.outcome() == pb::RunOutcome::Succeeded)
                    .then_some(status),
            }
        }
    })
    .await;
    assert!(finished.current_run.is_none());
    let samples = sampled.lock().expect("samples").clone();
    assert!(
        samples.len() >= 5,
        "sampled the run {} times",
        samples.len()
    );

    let progress: Vec<&pb::RunProgress> = samples
        .iter()
        .map(|run| run.progress.as_ref().expect("current_run carries progress"))
        .collect();
    for pair in samples.windows(2) {
        let (a, b) = (&pair[0], &pair[1]);
        assert_eq!(a.id, b.id, "one run");
        assert!(b.pages >= a.pages && b.tickets >= a.tickets && b.requests >= a.requests);
        assert!(b.events >= a.events);
    }
    for pair in progress.windows(2) {
        let (a, b) = (pair[0], pair[1]);
        assert_eq!(b.phase_count, 6, "an initial sync reads six streams");
        assert!(
            b.phase_number >= a.phase_number,
            "phases go forward: {a:?} -> {b:?}"
        );
        if a.phase_number == b.phase_number {
            assert_eq!(a.phase, b.phase);
            assert!(b.phase_pages >= a.phase_pages, "{a:?} -> {b:?}");
            if let Some(expected) = a.phase_pages_expected {
                assert_eq!(b.phase_pages_expected, Some(expected), "a known size stays");
            }
            if let (Some(a_at), Some(b_at)) = (&a.phase_position_at, &b.phase_position_at) {
                assert!(
                    (b_at.seconds, b_at.nanos) >= (a_at.seconds, a_at.nanos),
                    "the export's position moves forward"
                );
            }
        }
        assert!(b.budget_wait_seconds >= a.budget_wait_seconds);
        assert!(b.rate_limit_wait_seconds >= a.rate_limit_wait_seconds);
    }
    for p in &progress {
        // Phase 0 (unspecified) only before the run enters its first stream.
        assert!(p.phase_number <= p.phase_count, "{p:?}");
        assert_eq!(
            p.phase_number == 0,
            p.phase() == pb::SyncPhase::Unspecified,
            "{p:?}"
        );
        if let Some(expected) = p.phase_pages_expected {
            assert_eq!(expected, p.phase_pages, "known once the last page is read");
        }
        if let Some(eta) = p.eta_seconds {
            assert!(eta >= 0.0 && eta.is_finite(), "{p:?}");
            assert!(p.estimated_finish_at.is_some(), "{p:?}");
        }
    }
    let phases: std::collections::BTreeSet<i32> = progress.iter().map(|p| p.phase).collect();
    assert!(phases.len() >= 2, "sampled several phases: {phases:?}");
    assert!(
        progress
            .iter()
            .any(|p| p.phase() == pb::SyncPhase::Tickets && p.phase_position_at.is_some()),
        "the ticket export reports its time position"
    );
    assert!(
        progress.iter().any(|p| p.eta_seconds.is_some()),
        "an ETA is given once the phase's size is known or estimated"
    );
    let last = progress.last().expect("samples");
    assert!(
        last.rate_limit_wait_seconds >= 1.0,
        "the 429 waits are counted: {last:?}"
    );
    let history_run = finished
        .history
        .iter()
        .find(|run| run.id == samples[0].id)
        .expect("the run in the history");
    assert!(
        history_run.progress.is_none(),
        "finished runs carry no progress"
    );
    daemon.stop().await;
    sim.shutdown().await.expect("simulator stops");
}
