//! The run in progress's `RunProgress`: phase, pages, waits and the estimate of the time left.
use chrono::{DateTime, Utc};

use crate::proto::v1 as pb;
use crate::sync::engine::CurrentRun;
use crate::sync::progress::{estimate, phase_from_code};
use crate::sync::run::Phase;

use super::convert::timestamp_to_proto;

fn phase_to_proto(code: u32) -> pb::SyncPhase {
    match phase_from_code(code) {
        Some(Phase::Groups) => pb::SyncPhase::Groups,
        Some(Phase::Organizations) => pb::SyncPhase::Organizations,
        Some(Phase::Users) => pb::SyncPhase::Users,
        Some(Phase::Tickets) => pb::SyncPhase::Tickets,
        Some(Phase::TicketEvents) => pb::SyncPhase::TicketEvents,
        Some(Phase::Ratings) => pb::SyncPhase::Ratings,
        Some(Phase::ValidationTickets) => pb::SyncPhase::ValidationTickets,
        None => pb::SyncPhase::Unspecified,
    }
}

/// The progress of `run` at `now`, its ETA paced by `requests_per_minute` (0: the budget is off).
pub fn run_progress(
    run: &CurrentRun,
    now: DateTime<Utc>,
    requests_per_minute: u32,
) -> pb::RunProgress {
    let progress = &run.progress;
    let elapsed = (now - run.started_at)
        .to_std()
        .unwrap_or_default()
        .as_secs_f64();
    let estimate = estimate(run.kind, progress, now, elapsed, requests_per_minute);
    #[allow(clippy::cast_precision_loss)]
    let ms_to_seconds = |ms: u64| ms as f64 / 1000.0;
    pb::RunProgress {
        phase: phase_to_proto(progress.phase) as i32,
        phase_number: estimate.phase_number,
        phase_count: estimate.phase_count,
        phase_pages: progress.phase_pages,
        phase_pages_expected: progress.phase_pages_expected,
        phase_pages_estimated: estimate.phase_pages_estimated,
        phase_position_at: progress
            .phase_position_ms
            .and_then(DateTime::from_timestamp_millis)
            .map(timestamp_to_proto),
        budget_wait_seconds: ms_to_seconds(progress.budget_wait_ms),
        rate_limit_wait_seconds: ms_to_seconds(progress.rate_limit_wait_ms),
        eta_seconds: estimate.eta_seconds,
        estimated_finish_at: estimate
            .eta_seconds
            .and_then(|eta| chrono::TimeDelta::try_milliseconds((eta * 1000.0) as i64))
            .map(|eta| timestamp_to_proto(now + eta)),
        list_phase: phase_to_proto(progress.list_phase) as i32,
        metrics_ready: progress.metrics_ready,
    }
}
