//! Zendesk's account-wide rate limit, shared with the customer's other apps, end to end: the
//! in-process simulator sends `x-rate-limit`, `x-rate-limit-remaining` and `ratelimit-reset` over
//! real HTTP, and the daemon's first sync leaves the configured share of each window unspent.
mod common;

use common::inproc::{self, Daemon};
use zdsync::proto::v1 as pb;
use zdsync::simulator::SimulatorConfig;

/// Requests per window the simulator allows.
const LIMIT: u32 = 10;
/// Percent of the limit the daemon leaves to other apps: 5 of every 10.
const RESERVE_PERCENT: u32 = 50;

#[tokio::test(flavor = "multi_thread")]
async fn the_first_sync_leaves_the_reserve_and_waits_for_the_reset_without_a_429() {
    // A 2-second window stands in for Zendesk's minute, so the sync crosses several resets quickly.
    let sim = inproc::simulator(SimulatorConfig {
        tickets: 40,
        organizations: 5,
        users: 20,
        rate_limit_per_minute: Some(LIMIT),
        rate_window_secs: 2,
        ..Default::default()
    })
    .await;
    let dir = tempfile::tempdir().expect("tempdir");
    // Both client-side budgets are off (the harness sets `requests_per_minute = 0`): only the
    // account's headers pace the run.
    let daemon = Daemon::start(
        &dir.path().join("data"),
        sim.base_url(),
        &format!("reserve_for_other_apps = {RESERVE_PERCENT}"),
        zdsync::clock::system(),
    )
    .await;
    let mut client = daemon.integration().await;
    inproc::configure(&mut client).await;

    let waits = std::sync::Arc::new(std::sync::Mutex::new((0.0_f64, 0.0_f64)));
    let finished = common::eventually("the first sync to finish", || {
        let mut client = client.clone();
        let waits = waits.clone();
        async move {
            let status = inproc::status(&mut client).await;
            if let Some(progress) = status.current_run.as_ref().and_then(|run| run.progress) {
                let mut seen = waits.lock().expect("waits");
                seen.0 = seen.0.max(progress.budget_wait_seconds);
                seen.1 = seen.1.max(progress.rate_limit_wait_seconds);
            }
            let done = status.current_run.is_none()
                && status.history.iter().any(|run| {
                    run.outcome() == pb::RunOutcome::Succeeded
                        || run.outcome() == pb::RunOutcome::Failed
                });
            done.then_some(status)
        }
    })
    .await;
    let last = finished.history.first().expect("a run in the history");
    assert_eq!(
        last.outcome(),
        pb::RunOutcome::Succeeded,
        "the run: {last:?}"
    );
    let (budget_wait, rate_limit_wait) = *waits.lock().expect("waits");
    assert!(
        budget_wait > 0.0,
        "the run waited for the window's reset on the budget: {budget_wait} s"
    );
    assert!(
        rate_limit_wait.abs() < f64::EPSILON,
        "no 429 wait: {rate_limit_wait} s"
    );
    let usage = sim.control().rate_limit_usage().expect("the limit is on");
    assert_eq!(usage.refused, 0, "the simulator never answered 429");
    let kept = LIMIT * RESERVE_PERCENT / 100;
    let lowest = usage.lowest_remaining.expect("requests were answered");
    assert!(
        lowest >= kept,
        "the daemon spent into the share left to other apps: {lowest} < {kept} remaining"
    );
    assert_eq!(lowest, kept, "and it spent everything up to that share");
    daemon.stop().await;
    sim.shutdown().await.expect("simulator stops");
}
