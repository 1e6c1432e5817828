//! The integration aggregate: settings, durable sync state, stream cursors, stored counts, and deletion.
use prost::Message;
use redb::{ReadableDatabase, ReadableTable, ReadableTableMetadata};

use super::tables::{self, meta_keys};
use super::{Store, StoreError};

/// The integration's settings (no secrets: those live in the credentials file).
#[derive(Clone, PartialEq, Message)]
pub struct IntegrationRecord {
    /// Zendesk subdomain.
    #[prost(string, tag = "1")]
    pub subdomain: String,
    /// `oauth_client`, `oauth` or `api_token`.
    #[prost(string, tag = "2")]
    pub credential_kind: String,
    /// Zendesk side of the match key.
    #[prost(string, tag = "3")]
    pub match_zendesk_field: String,
    /// Account side of the match key.
    #[prost(string, tag = "4")]
    pub match_account_attribute: String,
    /// Metric window in days.
    #[prost(uint32, tag = "5")]
    pub timeframe_days: u32,
    /// Whether satisfaction scores are computed.
    #[prost(bool, tag = "6")]
    pub include_satisfaction: bool,
    /// When `Configure` stored it (Unix seconds).
    #[prost(int64, tag = "7")]
    pub configured_at: i64,
    /// Who the credentials belong to, as Zendesk said at the last verification.
    #[prost(string, tag = "8")]
    pub authenticated_as: String,
    /// When the credentials were last verified (Unix seconds).
    #[prost(int64, tag = "9")]
    pub credentials_verified_at: i64,
}

/// One finished (or interrupted) run, for the history in `GetStatus`.
#[derive(Clone, PartialEq, Message)]
pub struct RunRecord {
    /// Run id.
    #[prost(uint64, tag = "1")]
    pub id: u64,
    /// `RunKind` code.
    #[prost(uint32, tag = "2")]
    pub kind: u32,
    /// Start (Unix milliseconds).
    #[prost(int64, tag = "3")]
    pub started_at_ms: i64,
    /// End (Unix milliseconds, 0 while running).
    #[prost(int64, tag = "4")]
    pub finished_at_ms: i64,
    /// `RunOutcome` code.
    #[prost(uint32, tag = "5")]
    pub outcome: u32,
    /// Pages applied.
    #[prost(uint64, tag = "6")]
    pub pages: u64,
    /// Tickets applied.
    #[prost(uint64, tag = "7")]
    pub tickets: u64,
    /// HTTP requests made.
    #[prost(uint64, tag = "8")]
    pub requests: u64,
    /// Error message when it failed.
    #[prost(string, tag = "9")]
    pub error: String,
    /// The stream the run was on when it stopped (resume point of an interrupted run).
    #[prost(uint32, tag = "10")]
    pub phase: u32,
    /// For a validation: tickets that differed from Zendesk.
    #[prost(uint64, tag = "11")]
    pub drift_tickets_changed: u64,
    /// For a validation: tickets Zendesk no longer returns.
    #[prost(uint64, tag = "12")]
    pub drift_tickets_missing: u64,
    /// For a validation: derived figures that differed when rebuilt.
    #[prost(uint64, tag = "13")]
    pub drift_derived: u64,
    /// Timeline events the run recorded (kept with each page's commit).
    #[prost(uint64, tag = "14")]
    pub events: u64,
    /// For a validation: tickets Zendesk returned that the store did not have.
    #[prost(uint64, tag = "15")]
    pub drift_tickets_added: u64,
}

/// The last error that stopped a run.
#[derive(Clone, PartialEq, Message)]
pub struct ErrorRecord {
    /// `ErrorKind` code.
    #[prost(uint32, tag = "1")]
    pub kind: u32,
    /// What happened.
    #[prost(string, tag = "2")]
    pub message: String,
    /// When (Unix milliseconds).
    #[prost(int64, tag = "3")]
    pub at_ms: i64,
    /// The run it stopped.
    #[prost(uint64, tag = "4")]
    pub run_id: u64,
}

/// Sync state that must survive a restart.
#[derive(Clone, PartialEq, Message)]
pub struct SyncStateRecord {
    /// Schedule paused by an admin.
    #[prost(bool, tag = "1")]
    pub paused: bool,
    /// The first full sync has finished.
    #[prost(bool, tag = "2")]
    pub initial_complete: bool,
    /// End of the last successful run (Unix milliseconds, 0 when none).
    #[prost(int64, tag = "3")]
    pub last_successful_sync_ms: i64,
    /// Start of the last attempt (Unix milliseconds, 0 when none).
    #[prost(int64, tag = "4")]
    pub last_attempt_ms: i64,
    /// End of the last successful nightly validation (Unix milliseconds).
    #[prost(int64, tag = "5")]
    pub last_validation_ms: i64,
    /// The error of the last failed run, cleared by a success.
    #[prost(message, optional, tag = "6")]
    pub last_error: Option<ErrorRecord>,
    /// Newest runs first, at most `HISTORY_LEN`.
    #[prost(message, repeated, tag = "7")]
    pub history: Vec<RunRecord>,
    /// The run in progress (or interrupted by a crash or pause), to resume.
    #[prost(message, optional, tag = "8")]
    pub active_run: Option<RunRecord>,
    /// Id the next run gets.
    #[prost(uint64, tag = "9")]
    pub next_run_id: u64,
    /// Zendesk refused the ticket events export: events come from snapshots.
    #[prost(bool, tag = "10")]
    pub ticket_events_fallback: bool,
    /// Failed runs in a row, for the retry backoff.
    #[prost(uint32, tag = "11")]
    pub consecutive_failures: u32,
    /// Credentials were refused: the schedule holds until `ChangeLogin`.
    #[prost(bool, tag = "12")]
    pub auth_failed: bool,
}

/// How many past runs `GetStatus` shows.
pub const HISTORY_LEN: usize = 20;

/// Counts of stored Zendesk records.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct StoredCounts {
    /// Tickets (including deleted ones Zendesk exported).
    pub tickets: u64,
    /// Organizations.
    pub organizations: u64,
    /// Users.
    pub users: u64,
    /// Groups.
    pub groups: u64,
    /// Satisfaction ratings.
    pub ratings: u64,
    /// Tickets with stored status and priority changes.
    pub tickets_with_history: u64,
}

use super::codec::decode;

impl Store {
    /// The integration's settings, if one is configured.
    pub fn integration(&self) -> Result<Option<IntegrationRecord>, StoreError> {
        let txn = self.db().begin_read()?;
        let table = txn.open_table(tables::INTEGRATION)?;
        let value = table.get(meta_keys::INTEGRATION)?;
        value
            .map(|bytes| decode("integration", meta_keys::INTEGRATION, bytes.value()))
            .transpose()
    }

    /// The durable sync state (default when none is stored).
    pub fn sync_state(&self) -> Result<SyncStateRecord, StoreError> {
        let txn = self.db().begin_read()?;
        let table = txn.open_table(tables::SYNC_STATE)?;
        let value = table.get(meta_keys::SYNC_STATE)?;
        Ok(value
            .map(|bytes| decode("sync_state", meta_keys::SYNC_STATE, bytes.value()))
            .transpose()?
            .unwrap_or_default())
    }

    /// Changes the durable sync state in one transaction and returns the new state.
    pub fn update_sync_state(
        &self,
        change: impl FnOnce(&mut SyncStateRecord),
    ) -> Result<SyncStateRecord, StoreError> {
        let txn = self.db().begin_write()?;
        let state = {
            let mut table = txn.open_table(tables::SYNC_STATE)?;
            let mut state: SyncStateRecord = match table.get(meta_keys::SYNC_STATE)? {
                Some(bytes) => decode("sync_state", meta_keys::SYNC_STATE, bytes.value())?,
                None => SyncStateRecord::default(),
            };
            change(&mut state);
            state.history.truncate(HISTORY_LEN);
            table.insert(meta_keys::SYNC_STATE, state.encode_to_vec().as_slice())?;
            state
        };
        // The run's state is no input of account figures: a run's start and end keep them cached.
        self.commit_keeping_figures(txn)?;
        Ok(state)
    }

    /// The stored position of a stream.
    pub fn cursor(&self, key: &str) -> Result<Option<Vec<u8>>, StoreError> {
        let txn = self.db().begin_read()?;
        let table = txn.open_table(tables::CURSORS)?;
        let value = table.get(key)?;
        Ok(value.map(|bytes| bytes.value().to_vec()))
    }

    /// Removes stream positions (e.g. the validation cursor when a validation starts afresh).
    pub fn clear_cursors(&self, keys: &[&str]) -> Result<(), StoreError> {
        let txn = self.db().begin_write()?;
        {
            let mut table = txn.open_table(tables::CURSORS)?;
            for key in keys {
                table.remove(*key)?;
            }
        }
        self.commit_keeping_figures(txn)?;
        Ok(())
    }

    /// The metric window and whether satisfaction is computed, as last configured (kept after a delete).
    pub fn metrics_settings(&self) -> Result<(u32, bool), StoreError> {
        read_metrics_settings(&self.db().begin_read()?)
    }

    /// Counts of stored Zendesk records (O(1) per table).
    pub fn stored_counts(&self) -> Result<StoredCounts, StoreError> {
        let txn = self.db().begin_read()?;
        Ok(StoredCounts {
            tickets: txn.open_table(tables::TICKETS)?.len()?,
            organizations: txn.open_table(tables::ORGANIZATIONS)?.len()?,
            users: txn.open_table(tables::USERS)?.len()?,
            groups: txn.open_table(tables::GROUPS)?.len()?,
            ratings: txn.open_table(tables::RATINGS)?.len()?,
            tickets_with_history: txn.open_table(tables::TICKET_HISTORY)?.len()?,
        })
    }

    /// Removes the integration: settings, sync state, cursors and every Zendesk record, in one transaction.
    /// Accounts, the last matches, rollups and timeline events stay readable.
    pub fn delete_integration_data(&self) -> Result<(), StoreError> {
        // Before the transaction, as a page's apply takes it: no page records a fingerprint of a record this
        // deletes.
        let mut side_loads = self.side_load_fingerprints();
        let txn = self.db().begin_write()?;
        use super::clear_table;
        for def in [tables::INTEGRATION, tables::SYNC_STATE, tables::CURSORS] {
            clear_table(&txn, def)?;
        }
        // A user's figures are computed from the tickets, which go: those of matched users are kept frozen.
        super::rollups::freeze_user_figures(&txn)?;
        clear_table(&txn, tables::REQUESTER_TICKETS)?;
        for def in tables::ZENDESK_RECORDS {
            clear_table(&txn, def)?;
        }
        clear_table(&txn, tables::TICKET_HISTORY)?;
        clear_table(&txn, tables::VALIDATION_SEEN)?;
        clear_table(&txn, tables::VALIDATION_PROGRESS)?;
        // Matches stay frozen (and rollups and events stay) so metrics and events remain readable after a delete.
        clear_table(&txn, tables::ACCOUNT_KEYS)?;
        clear_table(&txn, tables::ORG_KEYS)?;
        self.commit(txn)?;
        side_loads.clear();
        Ok(())
    }
}

/// The metric window (days) and whether satisfaction is computed, read inside `txn`.
pub(crate) fn read_metrics_settings(
    txn: &redb::ReadTransaction,
) -> Result<(u32, bool), StoreError> {
    let meta = txn.open_table(tables::META)?;
    let timeframe = meta
        .get(meta_keys::METRICS_TIMEFRAME)?
        .and_then(|v| <[u8; 4]>::try_from(v.value()).ok())
        .map_or(30, u32::from_le_bytes);
    let satisfaction = meta
        .get(meta_keys::METRICS_SATISFACTION)?
        .is_some_and(|v| v.value().first() == Some(&1));
    Ok((timeframe, satisfaction))
}
