//! The run in progress on the command line: `zdsync status`'s phase, progress and ETA lines, and
//! `zdsync sync --wait`'s progress bar (indicatif, on stderr when it is a terminal) fed by `GetStatus`.
use std::io::Write;
use std::time::Duration;

use indicatif::{ProgressBar, ProgressStyle};
use tonic::transport::Channel;

use crate::proto::v1 as pb;
use crate::proto::v1::integration_service_client::IntegrationServiceClient;

use super::{labelled, CliError, Connection};

/// How often `sync --wait` asks for the status.
pub const POLL_EVERY: Duration = Duration::from_millis(500);

/// A phase's name as shown: `tickets`, `ticket_events`, ...
pub fn phase_name(phase: i32) -> &'static str {
    match pb::SyncPhase::try_from(phase).unwrap_or(pb::SyncPhase::Unspecified) {
        pb::SyncPhase::Unspecified => "starting",
        pb::SyncPhase::Groups => "groups",
        pb::SyncPhase::Organizations => "organizations",
        pb::SyncPhase::Users => "users",
        pb::SyncPhase::Tickets => "tickets",
        pb::SyncPhase::TicketEvents => "ticket_events",
        pb::SyncPhase::Ratings => "ratings",
        pb::SyncPhase::ValidationTickets => "validation_tickets",
    }
}

/// A duration as `1h 2m 3s`, `2m 3s` or `3s`.
pub fn human_seconds(seconds: f64) -> String {
    #[allow(clippy::cast_possible_truncation, clippy::cast_sign_loss)]
    let total = seconds.max(0.0).round() as u64;
    let (h, m, s) = (total / 3600, total % 3600 / 60, total % 60);
    match (h, m) {
        (0, 0) => format!("{s}s"),
        (0, _) => format!("{m}m {s}s"),
        _ => format!("{h}h {m}m {s}s"),
    }
}

/// How far the phase is, as `12 of 40 pages`, `12 of ~40 pages (estimated)` or `12 pages`.
pub fn phase_pages(progress: &pb::RunProgress) -> String {
    match (
        progress.phase_pages_expected,
        progress.phase_pages_estimated,
    ) {
        (Some(expected), _) => format!("{} of {expected} pages", progress.phase_pages),
        (None, Some(estimated)) => {
            format!("{} of ~{estimated} pages (estimated)", progress.phase_pages)
        }
        (None, None) => format!("{} pages", progress.phase_pages),
    }
}

/// The column the values of `zdsync status` start at.
pub(crate) const STATUS_WIDTH: usize = 23;

/// The `phase`, `waited` and `eta` lines of `zdsync status`.
pub fn print_progress(out: &mut impl Write, progress: &pb::RunProgress) -> Result<(), CliError> {
    let phase = format!(
        "{} ({} of {}), {}",
        phase_name(progress.phase),
        progress.phase_number,
        progress.phase_count,
        phase_pages(progress)
    );
    let phase = if progress.list_phase == pb::SyncPhase::Unspecified as i32 {
        phase
    } else {
        format!("{phase}; {} beside it", phase_name(progress.list_phase))
    };
    labelled(out, STATUS_WIDTH, "phase", phase)?;
    let metrics = if progress.metrics_ready {
        "ready (this run's figures; the events backfill goes on)"
    } else {
        "not this run's yet (tickets or ratings still syncing)"
    };
    labelled(out, STATUS_WIDTH, "metrics", metrics)?;
    let waited = format!(
        "{} on the request budget, {} on Zendesk rate limits (429)",
        human_seconds(progress.budget_wait_seconds),
        human_seconds(progress.rate_limit_wait_seconds)
    );
    labelled(out, STATUS_WIDTH, "waited", waited)?;
    let eta = match (progress.eta_seconds, &progress.estimated_finish_at) {
        (Some(eta), Some(at)) => format!(
            "{} (about {})",
            human_seconds(eta),
            crate::grpc::convert::timestamp_from_proto(at)
                .map(|t| t.to_rfc3339_opts(chrono::SecondsFormat::Secs, true))
                .unwrap_or_default()
        ),
        (Some(eta), None) => human_seconds(eta),
        (None, _) => "unknown yet".into(),
    };
    labelled(out, STATUS_WIDTH, "eta", eta)?;
    Ok(())
}

/// The run in progress's progress as `status --json` prints it.
pub fn progress_json(progress: &pb::RunProgress) -> serde_json::Value {
    serde_json::json!({
        "phase": phase_name(progress.phase),
        "phase_number": progress.phase_number,
        "phase_count": progress.phase_count,
        "phase_pages": progress.phase_pages,
        "phase_pages_expected": progress.phase_pages_expected,
        "phase_pages_estimated": progress.phase_pages_estimated,
        "budget_wait_seconds": progress.budget_wait_seconds,
        "rate_limit_wait_seconds": progress.rate_limit_wait_seconds,
        "eta_seconds": progress.eta_seconds,
        "list_phase": (progress.list_phase != pb::SyncPhase::Unspecified as i32)
            .then(|| phase_name(progress.list_phase)),
        "metrics_ready": progress.metrics_ready,
    })
}

/// Bar units per phase.
const PHASE_UNITS: u64 = 1000;

/// Where the bar stands: whole phases done, plus the fraction of the current one that is known.
fn bar_position(progress: &pb::RunProgress) -> u64 {
    let done = u64::from(progress.phase_number.saturating_sub(1)) * PHASE_UNITS;
    let total = progress
        .phase_pages_expected
        .or(progress.phase_pages_estimated)
        .filter(|total| *total > 0);
    let within = total.map_or(0, |total| {
        progress.phase_pages.min(total) * PHASE_UNITS / total
    });
    done + within
}

fn outcome_name(outcome: i32) -> &'static str {
    match pb::RunOutcome::try_from(outcome).unwrap_or(pb::RunOutcome::Unspecified) {
        pb::RunOutcome::Succeeded => "succeeded",
        pb::RunOutcome::Failed => "failed",
        pb::RunOutcome::Paused => "paused",
        pb::RunOutcome::Interrupted => "interrupted",
        pb::RunOutcome::Running => "running",
        pb::RunOutcome::Unspecified => "unknown",
    }
}

/// Follows `run_id` until it ends, drawing a progress bar on stderr (unless `json`); prints how it ended and
/// fails unless it succeeded.
pub async fn wait_for_run(
    client: &mut IntegrationServiceClient<Channel>,
    connection: &Connection,
    run_id: &str,
    json: bool,
    out: &mut impl Write,
) -> Result<(), CliError> {
    let bar = if json {
        ProgressBar::hidden()
    } else {
        ProgressBar::new(PHASE_UNITS)
    };
    bar.set_style(
        ProgressStyle::with_template("{prefix} [{bar:30}] {msg}")
            .unwrap_or_else(|_| ProgressStyle::default_bar())
            .progress_chars("=> "),
    );
    bar.set_prefix(run_id.to_owned());
    let finished = loop {
        let status = client
            .get_status(connection.request(pb::GetStatusRequest {}))
            .await?
            .into_inner();
        match status.current_run.as_ref().filter(|run| run.id == run_id) {
            Some(run) => {
                if let Some(progress) = &run.progress {
                    bar.set_length(u64::from(progress.phase_count.max(1)) * PHASE_UNITS);
                    bar.set_position(bar_position(progress));
                    let eta = progress
                        .eta_seconds
                        .map(|eta| format!(", ETA {}", human_seconds(eta)))
                        .unwrap_or_default();
                    bar.set_message(format!(
                        "{} ({}/{}): {}; {} tickets, {} requests{eta}",
                        phase_name(progress.phase),
                        progress.phase_number,
                        progress.phase_count,
                        phase_pages(progress),
                        run.tickets,
                        run.requests
                    ));
                }
            }
            None => {
                if let Some(run) = status.history.iter().find(|run| run.id == run_id) {
                    break run.clone();
                }
            }
        }
        tokio::time::sleep(POLL_EVERY).await;
    };
    bar.finish_and_clear();
    let outcome = outcome_name(finished.outcome);
    let seconds = match (&finished.started_at, &finished.finished_at) {
        (Some(start), Some(end)) => {
            #[allow(clippy::cast_precision_loss)]
            let ms = (end.seconds - start.seconds) as f64 * 1000.0
                + f64::from(end.nanos - start.nanos) / 1e6;
            ms / 1000.0
        }
        _ => 0.0,
    };
    if json {
        writeln!(
            out,
            "{}",
            serde_json::json!({
                "run_id": finished.id,
                "outcome": outcome,
                "pages": finished.pages,
                "tickets": finished.tickets,
                "requests": finished.requests,
                "events": finished.events,
                "seconds": seconds,
                "error": finished.error_message,
            })
        )?;
    } else {
        writeln!(
            out,
            "{} {outcome}: {} pages, {} tickets, {} requests, {} events in {seconds:.1} s",
            finished.id, finished.pages, finished.tickets, finished.requests, finished.events
        )?;
    }
    if finished.outcome == pb::RunOutcome::Succeeded as i32 {
        Ok(())
    } else {
        Err(CliError::RunEnded {
            run_id: finished.id,
            outcome,
            message: finished.error_message,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durations_and_positions() {
        assert_eq!(human_seconds(3.4), "3s");
        assert_eq!(human_seconds(125.0), "2m 5s");
        assert_eq!(human_seconds(3_725.0), "1h 2m 5s");
        let progress = pb::RunProgress {
            phase_number: 4,
            phase_count: 6,
            phase_pages: 5,
            phase_pages_estimated: Some(20),
            ..Default::default()
        };
        assert_eq!(bar_position(&progress), 3 * PHASE_UNITS + PHASE_UNITS / 4);
        assert_eq!(phase_pages(&progress), "5 of ~20 pages (estimated)");
    }
}
