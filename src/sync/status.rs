//! What `GetStatus` reports, assembled from the stored sync state and the engine's live view: the
//! run state, due times, warnings in plain words, and the codes runs and errors are stored with.
use chrono::{DateTime, Utc};

use crate::store::matching::MatchCounts;
use crate::store::sync_state::{
    ErrorRecord, IntegrationRecord, RunRecord, StoredCounts, SyncStateRecord,
};
use crate::store::{Store, StoreError};

pub use super::codes::{error_kind, outcome, run_label};
use super::engine::{due_times, CurrentRun, SyncHandle};
use super::login::API_TOKEN_SWITCH_OFF;
use super::run::RunKind;

/// The integration's state as `GetStatus` names it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RunState {
    /// Nothing configured.
    NotConfigured,
    /// Waiting for the next run.
    Idle,
    /// A run is in progress.
    Syncing,
    /// The schedule is paused.
    Paused,
    /// The last run failed, or the credentials are refused.
    Failed,
}

/// Everything `GetStatus` shows of a configured integration.
#[derive(Debug, Clone)]
pub struct StatusReport {
    /// The integration.
    pub integration: IntegrationRecord,
    /// Its state.
    pub state: RunState,
    /// The stored sync state (history, last error, times).
    pub sync: SyncStateRecord,
    /// When the next incremental run and nightly validation are due (none while paused or held).
    pub next_times: Option<(DateTime<Utc>, DateTime<Utc>)>,
    /// Plain-words warnings for the operator.
    pub warnings: Vec<String>,
    /// The run in progress.
    pub current: Option<CurrentRun>,
    /// The last successful nightly validation (its drift).
    pub last_validation: Option<RunRecord>,
    /// Match statistics.
    pub matches: MatchCounts,
    /// Stored record counts.
    pub stored: StoredCounts,
    /// Timeline events stored.
    pub events: u64,
}

/// Whether `run` is a nightly validation that finished (the runs whose drift is reported).
pub fn is_finished_validation(run: &RunRecord) -> bool {
    RunKind::from_code(run.kind) == Some(RunKind::FullValidation)
        && run.outcome == outcome::SUCCEEDED
}

impl SyncHandle {
    /// When the next incremental run and nightly validation are due, from the stored state (none while
    /// paused or held by refused credentials), so the times always match the history shown with them.
    pub fn next_times(
        &self,
        integration: &IntegrationRecord,
        state: &SyncStateRecord,
    ) -> Option<(DateTime<Utc>, DateTime<Utc>)> {
        (!state.paused && !state.auth_failed).then(|| {
            due_times(
                &self.settings().schedule,
                integration,
                state,
                self.clock().now(),
            )
        })
    }

    /// The status report, read from `store` in one go (blocking: call it off the async runtime);
    /// `None` when no integration is configured.
    pub fn status(&self, store: &Store) -> Result<Option<StatusReport>, StoreError> {
        let Some(integration) = store.integration()? else {
            return Ok(None);
        };
        let mut sync = store.sync_state()?;
        let stored = store.stored_counts()?;
        let matches = store.match_counts()?;
        let events = store.event_count()?;
        let live = self.live();
        let fault = store.write_fault_report();
        let state = if sync.paused {
            RunState::Paused
        } else if live.current.is_some() {
            RunState::Syncing
        } else if fault.is_some() || sync.auth_failed || sync.consecutive_failures > 0 {
            RunState::Failed
        } else {
            RunState::Idle
        };
        let next_times = self.next_times(&integration, &sync);
        let mut warnings = Vec::new();
        if let Some((fault, message)) = fault {
            // The store cannot record this error (it cannot write): it is reported from memory while it lasts.
            sync.last_error = Some(ErrorRecord {
                kind: error_kind::INTERNAL,
                message: message.clone(),
                at_ms: fault.since.timestamp_millis(),
                run_id: sync.active_run.as_ref().map_or(0, |run| run.id),
            });
            warnings.push(message);
        }
        if integration.credential_kind == "api_token" {
            warnings.push(format!(
                "this integration uses a legacy Zendesk API token: Zendesk switches every API token off on {API_TOKEN_SWITCH_OFF}; switch to OAuth with ChangeLogin (oauth_client is recommended)"
            ));
        }
        if sync.auth_failed {
            warnings.push(
                "Zendesk refused the credentials: syncing is held until ChangeLogin succeeds"
                    .into(),
            );
        }
        if sync.ticket_events_fallback {
            warnings.push(
                "Zendesk refused the ticket events export (403): timeline events are detected from ticket snapshots, so a ticket solved and reopened between two syncs may miss an event".into(),
            );
        }
        if let Some(hint) = match_hint(&integration, &sync, &matches) {
            warnings.push(hint);
        }
        if let Some(until) = live.rate_limited_until {
            warnings.push(format!(
                "Zendesk rate limit: waiting until {}",
                until.to_rfc3339()
            ));
        }
        let last_validation = sync
            .history
            .iter()
            .find(|run| is_finished_validation(run))
            .cloned();
        Ok(Some(StatusReport {
            integration,
            state,
            sync,
            next_times,
            warnings,
            current: live.current,
            last_validation,
            matches,
            stored,
            events,
        }))
    }
}

/// The plain-words hint for the classic mistake: a sync read organizations and none matched an account.
fn match_hint(
    integration: &IntegrationRecord,
    state: &SyncStateRecord,
    counts: &MatchCounts,
) -> Option<String> {
    if state.last_successful_sync_ms == 0 || counts.organizations_total == 0 || counts.matched > 0 {
        return None;
    }
    Some(format!(
        "none of the {} Zendesk organizations matched an account: this is almost always a wrong match key or a missing permission. The key compares the organizations' `{}` with the accounts' `{}` (exact, case-sensitive); check that the accounts carry that value (ListUnmatched shows what each organization has) and that the Zendesk credentials can read organizations",
        counts.organizations_total, integration.match_zendesk_field, integration.match_account_attribute
    ))
}
