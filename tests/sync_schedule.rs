//! The sync schedule on an injected clock: hourly incremental runs and the nightly validation.
mod common;

use std::time::Duration;

use chrono::{DateTime, TimeDelta, Utc};
use common::inproc::{configure, instant, sized, status, wait_for_successful_runs, Harness, POLL};
use zdsync::clock::{ManualClock, SharedClock};
use zdsync::proto::v1 as pb;
use zdsync::simulator::SimulatorConfig;

fn at(text: &str) -> DateTime<Utc> {
    DateTime::parse_from_rfc3339(text)
        .expect("time")
        .with_timezone(&Utc)
}

/// Checks over several engine ticks (it plans every 250 ms) that no run starts; returns the last status.
async fn no_run_starts(
    client: &mut zdsync::proto::v1::integration_service_client::IntegrationServiceClient<
        tonic::transport::Channel,
    >,
    runs: usize,
) -> pb::IntegrationStatus {
    let until = tokio::time::Instant::now() + Duration::from_millis(1_000);
    loop {
        let now = status(client).await;
        assert!(now.current_run.is_none(), "no run is due: {now:?}");
        assert_eq!(now.history.len(), runs, "no run is due");
        if tokio::time::Instant::now() >= until {
            return now;
        }
        tokio::time::sleep(POLL).await;
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn incremental_runs_follow_the_interval_and_validation_runs_at_the_configured_hour() {
    let start = at("2026-03-10T10:00:00Z");
    let clock = ManualClock::new(start);
    let shared: SharedClock = std::sync::Arc::new(clock.clone());
    let config = SimulatorConfig {
        clock: shared.clone(),
        ..sized(600, 20, 100)
    };
    let schedule = "[schedule]\nincremental_interval = \"1h\"\nfull_validation_at = \"02:00\"\n";
    let (sim, _dir, daemon, mut client) = Harness::start_with(config, schedule, shared)
        .await
        .into_parts();
    assert_eq!(configure(&mut client).await, "run-1");
    let first = wait_for_successful_runs(&mut client, 1).await;
    assert_eq!(first.history[0].kind, pb::SyncKind::InitialSync as i32);
    // The clock stood still during the run: it ended at `start`.
    let next_night = at("2026-03-11T02:00:00Z");
    assert_eq!(
        instant(
            first
                .next_incremental_at
                .as_ref()
                .expect("next incremental")
        ),
        start + TimeDelta::hours(1)
    );
    assert_eq!(
        instant(
            first
                .next_full_validation_at
                .as_ref()
                .expect("next validation")
        ),
        next_night
    );

    clock.advance(TimeDelta::minutes(59));
    let waiting = no_run_starts(&mut client, 1).await;
    assert_eq!(waiting.state, pb::SyncState::Idle as i32);
    assert_eq!(
        instant(
            waiting
                .next_incremental_at
                .as_ref()
                .expect("next incremental")
        ),
        start + TimeDelta::hours(1)
    );

    let hourly_at = start + TimeDelta::hours(1) + TimeDelta::seconds(1);
    clock.set(hourly_at);
    let hourly = wait_for_successful_runs(&mut client, 2).await;
    assert_eq!(hourly.history.len(), 2);
    assert_eq!(hourly.history[0].id, "run-2");
    assert_eq!(hourly.history[0].kind, pb::SyncKind::Incremental as i32);
    assert_eq!(
        instant(
            hourly
                .next_incremental_at
                .as_ref()
                .expect("next incremental")
        ),
        hourly_at + TimeDelta::hours(1)
    );
    assert_eq!(
        instant(
            hourly
                .next_full_validation_at
                .as_ref()
                .expect("next validation")
        ),
        next_night
    );
    no_run_starts(&mut client, 2).await;

    // Past 02:00 both kinds are due; the validation goes first, and re-reading everything makes the
    // incremental run that was due unnecessary until an interval after it.
    let night_at = next_night + TimeDelta::seconds(30);
    clock.set(night_at);
    let nightly = wait_for_successful_runs(&mut client, 3).await;
    assert_eq!(nightly.history[0].id, "run-3");
    assert_eq!(nightly.history[0].kind, pb::SyncKind::FullValidation as i32);
    let drift = nightly.drift.expect("drift of the nightly validation");
    assert_eq!(drift.run_id, "run-3");
    assert_eq!((drift.tickets_updated, drift.tickets_gone), (0, 0));
    assert_eq!(
        instant(
            nightly
                .next_full_validation_at
                .as_ref()
                .expect("next validation")
        ),
        next_night + TimeDelta::days(1)
    );
    assert_eq!(
        instant(
            nightly
                .next_incremental_at
                .as_ref()
                .expect("next incremental")
        ),
        night_at + TimeDelta::hours(1)
    );
    no_run_starts(&mut client, 3).await;

    daemon.stop().await;
    sim.shutdown().await.expect("simulator stops");
}
