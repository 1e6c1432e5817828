//! Progress of the run in progress: phase bookkeeping as pages arrive, and the estimate of the time left.
use std::time::Duration;

use chrono::{DateTime, Utc};

use crate::zendesk::{payload, WaitReason};

use super::codes::outcome;
use super::run_types::{Phase, Progress, RunError, RunKind, RunSummary};

/// Resets the per-phase counters when a run enters the phase stored as `code`.
pub fn enter_phase(progress: &mut Progress, code: u32) {
    progress.phase = code;
    progress.phase_pages = 0;
    progress.phase_pages_expected = None;
    progress.phase_first_ms = None;
    progress.phase_position_ms = None;
}

/// Counts the phase stored as `code` as applied to its end, and says whether the figures of a `kind` run
/// are now complete.
pub fn finish_phase(progress: &mut Progress, kind: RunKind, code: u32) {
    if code < u32::BITS {
        progress.phases_done |= 1 << code;
    }
    progress.metrics_ready = kind
        .phases()
        .iter()
        .filter(|phase| phase.feeds_figures())
        .all(|phase| progress.phases_done & (1 << phase.code()) != 0);
}

/// Pages a listing of `total` records takes at the size of a page that held `page_len` of them (the
/// first pages are full); `None` when the endpoint gives no total.
pub fn pages_for(total: Option<u64>, page_len: usize) -> Option<u64> {
    let page_len = u64::try_from(page_len).ok().filter(|len| *len > 0)?;
    Some(total?.div_ceil(page_len))
}

/// Counts a fetched page of the current phase: `times` are the update times (Unix ms, oldest and newest) its
/// records span in a time-ordered export, `end` whether it carried `end_of_stream`, `expected` the pages
/// the whole listing takes where the endpoint says (a list's `count`).
pub fn page_fetched(
    progress: &mut Progress,
    times: Option<(i64, i64)>,
    end: bool,
    expected: Option<u64>,
) {
    progress.phase_pages += 1;
    if let Some(expected) = expected.filter(|_| progress.phase_pages_expected.is_none()) {
        // From the first page's size; never fewer than the pages already seen.
        progress.phase_pages_expected = Some(expected.max(progress.phase_pages));
    }
    if let Some((oldest, newest)) = times {
        if progress.phase_first_ms.is_none() {
            progress.phase_first_ms = Some(oldest);
        }
        // Exports repeat the records of a boundary second: the position never moves back.
        progress.phase_position_ms =
            Some(progress.phase_position_ms.map_or(newest, |p| p.max(newest)));
    }
    if end {
        progress.phase_pages_expected = Some(progress.phase_pages);
    }
}

/// Adds a wait of the client to the run's totals (budget and 429 waits; retry backoffs are not counted).
pub fn count_wait(progress: &mut Progress, reason: WaitReason, duration: Duration) {
    let ms = u64::try_from(duration.as_millis()).unwrap_or(u64::MAX);
    match reason {
        WaitReason::Budget => progress.budget_wait_ms = progress.budget_wait_ms.saturating_add(ms),
        WaitReason::RateLimited => {
            progress.rate_limit_wait_ms = progress.rate_limit_wait_ms.saturating_add(ms);
        }
        WaitReason::Backoff => {}
    }
}

/// A record of a time-ordered export: its update time places the export's position.
pub trait TimeOrdered {
    /// When the record changed, if the export is ordered by it.
    fn updated_at(&self) -> Option<DateTime<Utc>>;
}

impl TimeOrdered for payload::Organization {
    fn updated_at(&self) -> Option<DateTime<Utc>> {
        Some(self.updated_at)
    }
}

impl TimeOrdered for payload::User {
    fn updated_at(&self) -> Option<DateTime<Utc>> {
        Some(self.updated_at)
    }
}

impl TimeOrdered for payload::TicketEvent {
    fn updated_at(&self) -> Option<DateTime<Utc>> {
        self.occurred_at
    }
}

impl TimeOrdered for payload::Group {
    /// The group list is not time-ordered.
    fn updated_at(&self) -> Option<DateTime<Utc>> {
        None
    }
}

/// The oldest and newest of `times` in Unix ms; `None` for no times.
pub fn time_span(times: impl Iterator<Item = DateTime<Utc>>) -> Option<(i64, i64)> {
    times.fold(None, |span, time| {
        let ms = time.timestamp_millis();
        Some(span.map_or((ms, ms), |(oldest, newest): (i64, i64)| {
            (oldest.min(ms), newest.max(ms))
        }))
    })
}

/// The phase stored as `code`.
pub fn phase_from_code(code: u32) -> Option<Phase> {
    Phase::ALL.into_iter().find(|phase| phase.code() == code)
}

/// The phase stored as `code`, as named in metrics (`unknown` for none).
pub fn phase_name(code: u32) -> &'static str {
    match phase_from_code(code) {
        Some(Phase::Groups) => "groups",
        Some(Phase::Organizations) => "organizations",
        Some(Phase::Users) => "users",
        Some(Phase::Tickets) => "tickets",
        Some(Phase::TicketEvents) => "ticket_events",
        Some(Phase::Ratings) => "ratings",
        Some(Phase::ValidationTickets) => "validation_tickets",
        None => "unknown",
    }
}

/// Records a finished run in the metrics: its kind, how it ended (a stop ends as `stop_outcome`, paused or
/// interrupted) and how long it took from its first start.
pub fn record_finished(
    kind: RunKind,
    result: &Result<RunSummary, RunError>,
    stop_outcome: u32,
    started_at: DateTime<Utc>,
    now: DateTime<Utc>,
) {
    let outcome = match result {
        Ok(_) => "succeeded",
        Err(RunError::Stopped) if stop_outcome == outcome::PAUSED => "paused",
        Err(RunError::Stopped) => "interrupted",
        Err(_) => "failed",
    };
    let duration = (now - started_at).to_std().unwrap_or_default();
    crate::telemetry::run_finished(kind.name(), outcome, duration);
}

/// What `GetStatus` derives from a run's live progress.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Estimate {
    /// 1-based position of the phase among the run's phases; 0 before the first phase.
    pub phase_number: u32,
    /// Number of phases of the run's kind.
    pub phase_count: u32,
    /// Pages the phase is estimated to take, from the export's time position.
    pub phase_pages_estimated: Option<u64>,
    /// Estimated seconds left.
    pub eta_seconds: Option<f64>,
}

/// Estimates the phase's size and the run's time left at `now`. `elapsed_seconds` is how long the run has been
/// going in this process, `requests_per_minute` the export budget (0 = off).
pub fn estimate(
    kind: RunKind,
    progress: &Progress,
    now: DateTime<Utc>,
    elapsed_seconds: f64,
    requests_per_minute: u32,
) -> Estimate {
    let phases = kind.phases();
    let phase_count = u32::try_from(phases.len()).unwrap_or(u32::MAX);
    let phase_number = phases
        .iter()
        .position(|phase| phase.code() == progress.phase)
        .map_or(0, |index| u32::try_from(index + 1).unwrap_or(u32::MAX));
    let phase_pages_estimated = match (progress.phase_first_ms, progress.phase_position_ms) {
        (Some(first), Some(position)) if progress.phase_pages_expected.is_none() => {
            let span = now.timestamp_millis() - first;
            let covered = position - first;
            (span > 0 && covered > 0).then(|| {
                #[allow(clippy::cast_precision_loss)]
                let fraction = (covered as f64 / span as f64).min(1.0);
                #[allow(
                    clippy::cast_precision_loss,
                    clippy::cast_possible_truncation,
                    clippy::cast_sign_loss
                )]
                let pages = (progress.phase_pages as f64 / fraction).ceil() as u64;
                // The stream has not ended, so at least one more page comes.
                pages.max(progress.phase_pages + 1)
            })
        }
        _ => None,
    };
    let remaining_in_phase = progress
        .phase_pages_expected
        .or(phase_pages_estimated)
        .map(|total| total.saturating_sub(progress.phase_pages));
    let later_phases = u64::from(phase_count.saturating_sub(phase_number));
    #[allow(clippy::cast_precision_loss)]
    let observed = (progress.requests > 0).then(|| elapsed_seconds / progress.requests as f64);
    let budgeted = (requests_per_minute > 0).then(|| 60.0 / f64::from(requests_per_minute));
    let seconds_per_request = match (budgeted, observed) {
        (Some(budget), Some(observed)) => Some(budget.max(observed)),
        (budget, observed) => budget.or(observed),
    };
    #[allow(clippy::cast_precision_loss)]
    let eta_seconds = match (phase_number, remaining_in_phase, seconds_per_request) {
        (1.., Some(remaining), Some(pace)) => Some((remaining + later_phases) as f64 * pace),
        _ => None,
    };
    Estimate {
        phase_number,
        phase_count,
        phase_pages_estimated,
        eta_seconds,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn at(ms: i64) -> DateTime<Utc> {
        DateTime::from_timestamp_millis(ms).expect("valid time")
    }

    #[test]
    fn a_phase_counts_its_pages_and_learns_its_size_at_end_of_stream() {
        let mut progress = Progress::default();
        enter_phase(&mut progress, Phase::Tickets.code());
        page_fetched(&mut progress, Some((1_000, 2_000)), false, None);
        page_fetched(&mut progress, Some((1_500, 3_000)), false, None);
        page_fetched(&mut progress, Some((2_500, 2_900)), true, None);
        assert_eq!(progress.phase_pages, 3);
        assert_eq!(progress.phase_pages_expected, Some(3));
        assert_eq!(progress.phase_first_ms, Some(1_000));
        assert_eq!(progress.phase_position_ms, Some(3_000), "never moves back");
        enter_phase(&mut progress, Phase::TicketEvents.code());
        assert_eq!(progress.phase_pages, 0);
        assert_eq!(progress.phase_pages_expected, None);
    }

    #[test]
    fn the_eta_follows_the_budget_and_the_time_position() {
        let mut progress = Progress::default();
        enter_phase(&mut progress, Phase::Tickets.code());
        // Half of the time from the first record to now is read, in 10 pages.
        for _ in 0..10 {
            page_fetched(&mut progress, Some((0, 50_000)), false, None);
        }
        progress.requests = 10;
        let estimate = estimate(RunKind::Initial, &progress, at(100_000), 1.0, 10);
        assert_eq!(estimate.phase_number, 4);
        assert_eq!(estimate.phase_count, 6);
        assert_eq!(estimate.phase_pages_estimated, Some(20));
        // 10 pages left and 2 later phases, at 6 s a request (10 a minute).
        assert_eq!(estimate.eta_seconds, Some(72.0));
    }

    #[test]
    fn with_the_budget_off_the_run_paces_itself_and_lists_are_unknown_until_they_end() {
        let mut progress = Progress::default();
        enter_phase(&mut progress, Phase::Groups.code());
        page_fetched(&mut progress, None, false, None);
        progress.requests = 4;
        let unknown = estimate(RunKind::Incremental, &progress, at(0), 2.0, 0);
        assert_eq!(unknown.eta_seconds, None);
        page_fetched(&mut progress, None, true, None);
        let known = estimate(RunKind::Incremental, &progress, at(0), 2.0, 0);
        assert_eq!(known.phase_number, 1);
        // 5 later phases at the observed 0.5 s a request.
        assert_eq!(known.eta_seconds, Some(2.5));
    }

    #[test]
    fn metrics_are_ready_once_every_stream_they_come_from_is_applied() {
        let mut progress = Progress::default();
        for phase in [
            Phase::Groups,
            Phase::Organizations,
            Phase::Users,
            Phase::Tickets,
        ] {
            finish_phase(&mut progress, RunKind::Initial, phase.code());
            assert!(!progress.metrics_ready, "ratings are still missing");
        }
        finish_phase(&mut progress, RunKind::Initial, Phase::Ratings.code());
        assert!(
            progress.metrics_ready,
            "the ticket events backfill is not needed"
        );
        let mut validation = Progress::default();
        finish_phase(
            &mut validation,
            RunKind::FullValidation,
            Phase::Ratings.code(),
        );
        assert!(!validation.metrics_ready);
        finish_phase(
            &mut validation,
            RunKind::FullValidation,
            Phase::ValidationTickets.code(),
        );
        assert!(validation.metrics_ready);
    }

    #[test]
    fn time_span_is_oldest_and_newest() {
        assert_eq!(time_span(std::iter::empty()), None);
        assert_eq!(time_span([at(5), at(1), at(3)].into_iter()), Some((1, 5)));
    }

    #[test]
    fn a_list_that_says_its_count_is_expected_from_its_first_page() {
        let mut progress = Progress::default();
        enter_phase(&mut progress, 1);
        assert_eq!(pages_for(Some(250), 100), Some(3));
        assert_eq!(pages_for(Some(250), 0), None);
        assert_eq!(pages_for(None, 100), None);
        page_fetched(&mut progress, None, false, pages_for(Some(250), 100));
        assert_eq!(progress.phase_pages_expected, Some(3));
        page_fetched(&mut progress, None, false, pages_for(Some(250), 100));
        assert_eq!(progress.phase_pages_expected, Some(3));
        page_fetched(&mut progress, None, true, pages_for(Some(250), 50));
        assert_eq!(progress.phase_pages_expected, Some(3));
    }
}
