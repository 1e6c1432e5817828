//! The embedded redb database: opening, schema version and migrations; one module per aggregate.
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, PoisonError, RwLock};

use redb::{Database, ReadableDatabase, ReadableTable};

pub mod accounts;
mod backend;
mod codec;
pub mod credentials;
pub mod event_reads;
pub mod event_writes;
pub mod events;
pub mod facts;
pub mod figures;
pub mod health;
mod history;
pub mod matching;
pub mod metric_index;
mod migrate;
pub mod page;
pub mod pages;
pub mod prune;
pub mod records;
mod recovery;
mod requester_tickets;
mod rollup_generation;
pub mod rollups;
mod scan;
pub mod settings_change;
mod side_loads;
pub mod sync_state;
pub mod tables;
mod timeline;
pub mod validation;
pub mod zendesk_records;

pub use backend::StorageFault;
use figures::FigureChange;
pub use health::{FaultKind, WriteFault};
use tables::{meta_keys, META};

/// The schema version this build writes.
pub const SCHEMA_VERSION: u32 = 9;

/// Memory redb may use for its page cache (9/10 reads, 1/10 the write buffer of a transaction).
pub const CACHE_BYTES: usize = 8 * 1024 * 1024;

/// File name of the database inside the data directory.
pub const DATABASE_FILE: &str = "zdsync.redb";

/// Why a store operation failed.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    /// The database file could not be opened or created.
    #[error("cannot open database {path}: {source}")]
    Open {
        /// The database file.
        path: PathBuf,
        /// What redb reported.
        source: redb::DatabaseError,
    },
    /// The file was written by a newer zdsync.
    #[error("database {path} has schema version {found}, but this zdsync supports up to {supported}: upgrade zdsync or restore a backup")]
    NewerSchema {
        /// The database file.
        path: PathBuf,
        /// The version in the file.
        found: u32,
        /// The newest version this build knows.
        supported: u32,
    },
    /// A stored value could not be decoded.
    #[error("corrupt record in table {table} at key {key:?}: {detail}")]
    Corrupt {
        /// The table holding it.
        table: &'static str,
        /// Its key.
        key: String,
        /// What is wrong.
        detail: String,
    },
    /// An attribute would change type across accounts.
    #[error("{0}")]
    AttributeKindConflict(crate::domain::account::FieldError),
    /// redb failed during a transaction.
    #[error("database error: {0}")]
    Database(String),
    /// The store cannot write (full disk, I/O error); the message says so in plain words.
    #[error("{0}")]
    Unwritable(String),
}

impl From<redb::StorageError> for StoreError {
    fn from(err: redb::StorageError) -> Self {
        match err {
            redb::StorageError::Io(io) if matches!(io.raw_os_error(), Some(libc::ENOSPC | libc::EDQUOT)) => {
                StoreError::Unwritable(
                    "the disk holding the store is full: zdsync stopped writing and retries by itself; free some space".into(),
                )
            }
            redb::StorageError::Io(io) => StoreError::Unwritable(format!(
                "the store cannot read or write ({io}): zdsync reopens it and retries by itself; check the disk"
            )),
            redb::StorageError::PreviousIo | redb::StorageError::DatabaseClosed => {
                StoreError::Unwritable(
                    "the store stopped writing after an I/O error: zdsync reopens it and retries by itself".into(),
                )
            }
            other => StoreError::Database(other.to_string()),
        }
    }
}

macro_rules! database_error_from {
    ($($source:ident),*) => {
        $(impl From<redb::$source> for StoreError {
            fn from(err: redb::$source) -> Self {
                match err {
                    redb::$source::Storage(storage) => storage.into(),
                    other => StoreError::Database(other.to_string()),
                }
            }
        })*
    };
}
database_error_from!(TransactionError, TableError, CommitError);

/// The open database, cheap to clone and share between tasks.
#[derive(Clone, Debug)]
pub struct Store {
    /// The snapshot and figures hot-path readers share; declared first so it is dropped before the database.
    reads: Arc<SharedReads>,
    /// The database handle, swapped for a fresh one after an I/O error; one cell for every clone.
    cell: Arc<DbCell>,
    /// The sequence number of the last recorded timeline event, for watchers.
    event_tip: Arc<tokio::sync::watch::Sender<u64>>,
    /// What "now" is for writes that carry no time of their own (a re-match's backfill horizon).
    clock: crate::clock::SharedClock,
    /// Fingerprints of the stored side-loaded users and organizations (see `side_loads`); locked by a page's
    /// apply and a delete of the records before their write transaction begins.
    side_loads: Arc<Mutex<side_loads::SideLoadFingerprints>>,
}

impl Store {
    /// Opens (or creates) `<data_dir>/zdsync.redb`, creating every table and migrating or refusing its schema.
    pub fn open(data_dir: &Path) -> Result<Self, StoreError> {
        Self::open_with(data_dir, None)
    }

    /// Like [`Store::open`], on a disk that `fault` can fill or break (for tests of a full disk).
    pub fn open_with_fault(data_dir: &Path, fault: StorageFault) -> Result<Self, StoreError> {
        Self::open_with(data_dir, Some(fault))
    }

    fn open_with(data_dir: &Path, fault: Option<StorageFault>) -> Result<Self, StoreError> {
        let path = data_dir.join(DATABASE_FILE);
        let open_error = |source| StoreError::Open {
            path: path.clone(),
            source,
        };
        // As redb's `Builder::create` opens it; the store keeps this descriptor so that a database reopened
        // after an I/O error shares its lock.
        let file = std::fs::File::options()
            .read(true)
            .write(true)
            .create(true)
            .truncate(false)
            .open(&path)
            .map_err(|err| open_error(redb::DatabaseError::Storage(redb::StorageError::Io(err))))?;
        let health = Arc::new(health::Health::new(data_dir));
        let db = recovery::open_database(&file, &health, fault.clone()).map_err(open_error)?;
        // The database holds customer data: owner-only, like the directory around it.
        std::fs::set_permissions(&path, std::os::unix::fs::PermissionsExt::from_mode(0o600))
            .map_err(|err| {
                StoreError::Database(format!("cannot restrict {} to 0600: {err}", path.display()))
            })?;
        let store = Store {
            reads: Arc::new(SharedReads::default()),
            cell: Arc::new(DbCell {
                db: RwLock::new(Arc::new(db)),
                file,
                path: path.clone(),
                data_dir: data_dir.to_owned(),
                health,
                fault,
                reopening: Mutex::new(()),
            }),
            event_tip: Arc::new(tokio::sync::watch::Sender::new(0)),
            clock: crate::clock::system(),
            side_loads: Arc::default(),
        };
        store.prepare_schema(&path)?;
        store.event_tip.send_replace(store.last_event_seq()?);
        Ok(store)
    }

    fn prepare_schema(&self, path: &Path) -> Result<(), StoreError> {
        let txn = self.db().begin_write()?;
        {
            let mut meta = txn.open_table(META)?;
            let found = match meta.get(meta_keys::SCHEMA_VERSION)? {
                Some(value) => {
                    Some(
                        decode_u32(value.value()).ok_or_else(|| StoreError::Corrupt {
                            table: "meta",
                            key: meta_keys::SCHEMA_VERSION.into(),
                            detail: "not a 4-byte version".into(),
                        })?,
                    )
                }
                None => None,
            };
            match found {
                Some(found) if found > SCHEMA_VERSION => {
                    return Err(StoreError::NewerSchema {
                        path: path.to_owned(),
                        found,
                        supported: SCHEMA_VERSION,
                    });
                }
                Some(found @ 1..=8) => {
                    if found == 1 {
                        migrate::events_to_timeline(&txn)?;
                    }
                    if found <= 2 {
                        migrate::batch_local_keys(&txn)?;
                    }
                    // Each step writes the newest form of what it writes, so no later step rewrites rows
                    // this transaction wrote (redb must not free pages the transaction allocated).
                    if found <= 3 {
                        migrate::byte_keys(&txn)?;
                    }
                    if found <= 4 {
                        migrate::history_per_ticket(&txn)?;
                    }
                    if (4..=5).contains(&found) {
                        migrate::facts_without_keys(&txn)?;
                    }
                    if found == 5 {
                        migrate::packed_history(&txn)?;
                    }
                    if (4..=6).contains(&found) {
                        migrate::drop_fact_index(&txn)?;
                    }
                    if (4..=7).contains(&found) {
                        migrate::timeline_periods(&txn)?;
                    }
                    migrate::requester_index(&txn)?;
                    meta.insert(
                        meta_keys::SCHEMA_VERSION,
                        SCHEMA_VERSION.to_le_bytes().as_slice(),
                    )?;
                }
                Some(_) => {}
                None => {
                    meta.insert(
                        meta_keys::SCHEMA_VERSION,
                        SCHEMA_VERSION.to_le_bytes().as_slice(),
                    )?;
                }
            }
            // Creating every table up front lets read transactions open them without special cases.
            txn.open_table(tables::ACCOUNTS)?;
            txn.open_table(tables::ATTRIBUTE_KINDS)?;
            txn.open_table(tables::INTEGRATION)?;
            txn.open_table(tables::SYNC_STATE)?;
            txn.open_table(tables::CURSORS)?;
            txn.open_table(tables::TICKETS)?;
            txn.open_table(tables::ORGANIZATIONS)?;
            txn.open_table(tables::USERS)?;
            txn.open_table(tables::GROUPS)?;
            txn.open_table(tables::RATINGS)?;
            txn.open_table(tables::TICKET_HISTORY)?;
            txn.open_table(tables::VALIDATION_SEEN)?;
            txn.open_table(tables::ACCOUNT_KEYS)?;
            txn.open_table(tables::ORG_KEYS)?;
            txn.open_table(tables::ORG_MATCHES)?;
            txn.open_table(tables::ACCOUNT_ORGS)?;
            txn.open_table(tables::ACCOUNT_EMAILS)?;
            txn.open_table(tables::ORG_COUNTERS)?;
            txn.open_table(tables::ORG_TICKET_DAYS)?;
            txn.open_table(tables::ORG_RATING_DAYS)?;
            txn.open_table(tables::REQUESTER_TICKETS)?;
            txn.open_table(tables::FROZEN_USER_COUNTERS)?;
            txn.open_table(tables::FROZEN_USER_TICKET_DAYS)?;
            txn.open_table(tables::FROZEN_USER_RATING_DAYS)?;
            txn.open_table(tables::TICKET_RATINGS)?;
            txn.open_table(tables::USERS_BY_EMAIL)?;
            txn.open_table(tables::EVENTS)?;
            txn.open_table(tables::ORG_FACTS)?;
            txn.open_table(tables::TIMELINE)?;
            txn.open_table(tables::ACCOUNT_TIMELINE)?;
            txn.open_table(tables::TIMELINE_TIMES)?;
            txn.open_table(tables::PENDING_RATING_EVENTS)?;
            txn.open_table(tables::ACCOUNT_OWNERS)?;
            txn.open_table(tables::VALIDATION_PROGRESS)?;
        }
        self.commit(txn)?;
        Ok(())
    }

    /// The schema version recorded in the file.
    pub fn schema_version(&self) -> Result<u32, StoreError> {
        let txn = self.db().begin_read()?;
        let meta = txn.open_table(META)?;
        let value = meta.get(meta_keys::SCHEMA_VERSION)?;
        Ok(value.and_then(|v| decode_u32(v.value())).unwrap_or(0))
    }

    /// The underlying database, for modules of this store: the current handle (transactions begun on it do
    /// not borrow it, so a reopen may replace it meanwhile).
    pub(crate) fn db(&self) -> Arc<Database> {
        self.cell
            .db
            .read()
            .unwrap_or_else(PoisonError::into_inner)
            .clone()
    }

    /// Commits `txn`; every write of the store goes through here (or [`Store::commit_keeping_figures`]) so
    /// that [`Store::snapshot`] readers see it.
    pub(crate) fn commit(&self, txn: redb::WriteTransaction) -> Result<(), StoreError> {
        self.commit_as(txn, FigureChange::Everything)
    }

    /// Commits `txn`, which wrote none of what account figures are computed from (accounts, settings,
    /// matches, organization rollups): the figures computed so far stay valid.
    pub(crate) fn commit_keeping_figures(
        &self,
        txn: redb::WriteTransaction,
    ) -> Result<(), StoreError> {
        self.commit_as(txn, FigureChange::Nothing)
    }

    /// Commits `txn`, which changed what account figures are computed from as `change` says: only the
    /// figures it may have changed are computed again.
    pub(crate) fn commit_as(
        &self,
        mut txn: redb::WriteTransaction,
        change: FigureChange,
    ) -> Result<(), StoreError> {
        // Quick repair: each commit saves the allocator state, so a start after kill -9 or a power cut
        // skips redb's repair walk over the whole file (seconds at a million tickets, issue #13).
        txn.set_quick_repair(true);
        // While the disk refuses data a commit would fail and make redb refuse writes again (and reads that
        // miss its cache): refused here, the transaction is dropped without touching the file.
        if let Some(refused) = self.unwritable() {
            drop(txn);
            return Err(refused);
        }
        txn.commit()?;
        let shared = &self.reads;
        // The snapshot moves on first, then the figures: a reader that sees the new figure count is then sure
        // to read a snapshot holding this commit.
        shared.commits.fetch_add(1, Ordering::AcqRel);
        if change == FigureChange::Everything {
            shared.match_inputs_changed();
        }
        // Dropped here rather than at the next read: a snapshot kept through a long sync with no reads would
        // pin every page the sync frees, and the file would grow.
        let stale = locked(&shared.snapshot).take();
        drop(stale);
        shared.forget_figures(change);
        Ok(())
    }

    /// A read transaction on the newest committed state, shared with other readers until the next commit.
    ///
    /// For the hot read path (`GetAccountMetrics`): beginning and ending a read transaction takes locks redb's
    /// writer also takes, so a reader that begins its own while a sync commits pages waits on a background
    /// thread. Shared, a snapshot is begun once per commit instead of once per call. A commit completes only
    /// after it bumped the count, so a reader never gets a snapshot older than a commit that returned.
    pub(crate) fn snapshot(&self) -> Result<Arc<redb::ReadTransaction>, StoreError> {
        let commits = self.reads.commits.load(Ordering::Acquire);
        if let Some((at, txn)) = locked(&self.reads.snapshot).as_ref() {
            if *at == commits {
                return Ok(txn.clone());
            }
        }
        let txn = Arc::new(self.db().begin_read()?);
        let mut cached = locked(&self.reads.snapshot);
        // Only while no commit came in meanwhile: a snapshot labelled with an older count is refreshed anyway.
        if self.reads.commits.load(Ordering::Acquire) == commits {
            let replaced = cached.replace((commits, txn.clone()));
            drop(cached);
            drop(replaced);
        }
        Ok(txn)
    }

    /// Follows the sequence number of the last recorded timeline event (bumped after each commit that records some).
    pub fn subscribe_events(&self) -> tokio::sync::watch::Receiver<u64> {
        self.event_tip.subscribe()
    }

    /// Tells watchers about events a committed transaction recorded.
    pub(crate) fn publish_event_tip(&self) -> Result<(), StoreError> {
        let tip = self.last_event_seq()?;
        self.event_tip.send_if_modified(|current| {
            let newer = tip > *current;
            if newer {
                *current = tip;
            }
            newer
        });
        Ok(())
    }

    /// This store reading "now" from `clock` (the daemon's, so tests can move time).
    #[must_use]
    pub fn with_clock(mut self, clock: crate::clock::SharedClock) -> Self {
        self.clock = clock;
        self
    }

    /// Now, in Unix milliseconds, by the store's clock.
    pub(crate) fn now_ms(&self) -> i64 {
        self.clock.now().timestamp_millis()
    }

    /// How many handles share this store (the daemon waits for 1 before closing).
    pub fn handle_count(&self) -> usize {
        Arc::strong_count(&self.cell)
    }

    /// Lets go of the shared snapshot and the cached figures (the database handle is being replaced), so
    /// that nothing of the store keeps the old handle alive and the next reads begin on the new one.
    fn forget_reads(&self) {
        let shared = &self.reads;
        shared.commits.fetch_add(1, Ordering::AcqRel);
        let stale = locked(&shared.snapshot).take();
        drop(stale);
        shared.forget_figures(FigureChange::Everything);
        shared.match_inputs_changed();
        shared.metric_index.forget();
    }
}

/// The database handle every clone of a store shares, and what reopening it needs.
#[derive(Debug)]
struct DbCell {
    /// The current handle; replaced, not mutated, so readers clone it and let go of the lock at once.
    db: RwLock<Arc<Database>>,
    /// The database file, open for the store's life: every handle opens a duplicate of it, so they share
    /// its lock (a second process still cannot open the file).
    file: std::fs::File,
    /// The database file's path.
    path: PathBuf,
    /// The data directory (for free space and the write check).
    data_dir: PathBuf,
    /// Whether the store can write.
    health: Arc<health::Health>,
    /// The test switch that fills the disk, if the store was opened with one.
    fault: Option<StorageFault>,
    /// Held while a reopen runs.
    reopening: Mutex<()>,
}

/// What hot-path readers share: the read transaction [`Store::snapshot`] hands out and the account figures
/// [`Store::cache_figures`] keeps.
#[derive(Default)]
struct SharedReads {
    /// Commits so far.
    commits: AtomicU64,
    /// The shared snapshot and the commit count it saw; emptied by every commit.
    snapshot: Mutex<Option<(u64, Arc<redb::ReadTransaction>)>>,
    /// Commits that may have changed what account figures are computed from.
    figure_changes: AtomicU64,
    /// `GetAccountMetrics` figures by account id, with the day they were computed for; every commit counted
    /// in `figure_changes` removes the entries it may have changed, so an entry is never older than the state
    /// it describes.
    figures: Mutex<std::collections::HashMap<String, (i64, Option<figures::AccountFigures>)>>,
    /// Every account's figures for `ListAccountMetrics`, kept under the same rule as `figures`.
    metric_index: metric_index::IndexCell,
    /// Commits that may have changed what `GetStatus`'s match counts are computed from (organizations, users,
    /// matches, accounts): every `FigureChange::Everything` commit and every page that wrote a user.
    match_inputs: AtomicU64,
    /// The last match counts computed, with the `match_inputs` count read before their transaction began.
    match_counts: Mutex<Option<(u64, matching::MatchCounts)>>,
}

impl SharedReads {
    /// Counts a commit that may have changed the match counts (after it is durable).
    fn match_inputs_changed(&self) {
        self.match_inputs.fetch_add(1, Ordering::AcqRel);
    }

    /// Counts a commit that changed figure inputs as `change` says and drops the figures it may have changed.
    fn forget_figures(&self, change: FigureChange) {
        if change == FigureChange::Nothing {
            return;
        }
        // Counted first: a reader that computed figures from an older snapshot then finds the count moved
        // and does not put them back after they were dropped here.
        self.metric_index
            .changed(change.clone(), &self.figure_changes);
        // The map is taken out and put back, each under the lock for a pointer swap: this runs on an idle-priority
        // sync thread, and a reader must never wait on a lock such a thread holds while it is preempted (at half of
        // the read saturation that wait reached tens of milliseconds). Reads in between miss and compute.
        let mut kept = std::mem::take(&mut *locked(&self.figures));
        if change == FigureChange::Everything {
            drop(kept);
            return;
        }
        // A missing account (None) has no organizations a page could change.
        kept.retain(|_, (_, figures)| {
            !figures
                .as_ref()
                .is_some_and(|figures| change.touches(&figures.orgs))
        });
        let mut cache = locked(&self.figures);
        // Entries readers put in meanwhile were computed after this commit: they win.
        let newer = std::mem::replace(&mut *cache, kept);
        cache.extend(newer);
    }
}

impl Store {
    /// An account's cached figures for `day`, if no commit changed their inputs since they were computed.
    pub(crate) fn cached_figures(
        &self,
        account_id: &str,
        day: i64,
    ) -> Option<Option<figures::AccountFigures>> {
        locked(&self.reads.figures)
            .get(account_id)
            .filter(|(at, _)| *at == day)
            .map(|(_, figures)| figures.clone())
    }

    /// How many commits may have changed figure inputs so far; read before taking the snapshot figures are
    /// computed from, and handed to [`Store::cache_figures`].
    pub(crate) fn figure_changes(&self) -> u64 {
        self.reads.figure_changes.load(Ordering::Acquire)
    }

    /// Keeps figures computed after [`Store::figure_changes`] returned `seen`, unless a commit changed their
    /// inputs since (then they may be older than the store) or the cache is full.
    pub(crate) fn cache_figures(
        &self,
        seen: u64,
        account_id: &str,
        day: i64,
        figures: Option<figures::AccountFigures>,
    ) {
        let mut cache = locked(&self.reads.figures);
        if self.reads.figure_changes.load(Ordering::Acquire) != seen {
            return;
        }
        // Bounded for a directory of many accounts read between two commits that change figures.
        if cache.len() < MAX_CACHED_ACCOUNT_FIGURES || cache.contains_key(account_id) {
            cache.insert(account_id.to_owned(), (day, figures));
        }
    }
}

/// Most accounts whose figures the store keeps (see [`Store::cache_figures`]).
const MAX_CACHED_ACCOUNT_FIGURES: usize = 100_000;

impl Store {
    /// The side-load fingerprints, locked; take it before beginning a write transaction that uses it.
    pub(crate) fn side_load_fingerprints(
        &self,
    ) -> std::sync::MutexGuard<'_, side_loads::SideLoadFingerprints> {
        locked(&self.side_loads)
    }
}

/// Locks `mutex`; its data stays consistent if a holder panicked (every update is a single assignment).
fn locked<T>(mutex: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    mutex.lock().unwrap_or_else(PoisonError::into_inner)
}

impl std::fmt::Debug for SharedReads {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SharedReads")
            .field("commits", &self.commits.load(Ordering::Relaxed))
            .finish_non_exhaustive()
    }
}

/// Empties a table by dropping and re-creating it (cheaper than removing rows one by one).
pub(crate) fn clear_table<K: redb::Key + 'static, V: redb::Value + 'static>(
    txn: &redb::WriteTransaction,
    table: redb::TableDefinition<K, V>,
) -> Result<(), StoreError> {
    txn.delete_table(table)?;
    txn.open_table(table)?;
    Ok(())
}

fn decode_u32(bytes: &[u8]) -> Option<u32> {
    <[u8; 4]>::try_from(bytes).ok().map(u32::from_le_bytes)
}

/// Writes a schema version into an existing database file; for tests of the newer-schema refusal.
pub fn force_schema_version(data_dir: &Path, version: u32) -> Result<(), StoreError> {
    let path = data_dir.join(DATABASE_FILE);
    let db = Database::create(&path).map_err(|source| StoreError::Open { path, source })?;
    let txn = db.begin_write()?;
    {
        let mut meta = txn.open_table(META)?;
        meta.insert(meta_keys::SCHEMA_VERSION, version.to_le_bytes().as_slice())?;
    }
    txn.commit()?;
    Ok(())
}

#[cfg(test)]
pub(crate) mod tests {
    use std::collections::BTreeMap;

    use super::*;
    use crate::domain::account::Account;

    /// The integration matching `organization_fields.crm` to `attributes.crm`, with a 7-day window.
    pub(crate) fn crm_integration() -> crate::store::sync_state::IntegrationRecord {
        crate::store::sync_state::IntegrationRecord {
            subdomain: "acme".into(),
            match_zendesk_field: "organization_fields.crm".into(),
            match_account_attribute: "attributes.crm".into(),
            timeframe_days: 7,
            include_satisfaction: true,
            ..Default::default()
        }
    }

    /// Every row of `table` as `row` maps it.
    pub(crate) fn rows_of<K: redb::Key + 'static, V: redb::Value + 'static, T>(
        store: &Store,
        table: redb::TableDefinition<K, V>,
        row: impl for<'a> Fn(K::SelfType<'a>, V::SelfType<'a>) -> T,
    ) -> Vec<T> {
        let txn = store.db().begin_read().expect("read");
        let table = txn.open_table(table).expect("table");
        redb::ReadableTable::iter(&table)
            .expect("iter")
            .map(|entry| {
                let (key, value) = entry.expect("row");
                row(key.value(), value.value())
            })
            .collect()
    }

    /// A bare account `id` named "name of {id}", for store tests.
    pub(crate) fn account(id: &str) -> Account {
        Account {
            id: id.into(),
            name: format!("name of {id}"),
            owner: String::new(),
            attributes: BTreeMap::new(),
            users: vec![],
        }
    }

    #[test]
    fn cached_account_figures_roll_forward_with_the_day_and_follow_every_commit() {
        use crate::domain::account::AttributeValue;
        use crate::store::page::PageWrite;
        use crate::store::sync_state::IntegrationRecord;
        use crate::store::zendesk_records::{OrganizationRecord, TicketRecord};
        use chrono::{Duration, TimeZone, Utc};

        let dir = tempfile::tempdir().expect("tempdir");
        let store = Store::open(dir.path()).expect("open");
        store
            .put_integration(&crm_integration())
            .expect("integration");
        let mut acct = account("acct-1");
        acct.attributes
            .insert("crm".into(), AttributeValue::Text("c-1".into()));
        store.upsert_accounts(&[acct], 0).expect("account");
        let created = Utc.with_ymd_and_hms(2026, 3, 1, 12, 0, 0).unwrap();
        let ticket = |id: u64| {
            (
                id,
                TicketRecord {
                    organization_id: 5,
                    status: 1,
                    created_at: created.timestamp(),
                    updated_at: created.timestamp(),
                    generated_timestamp: created.timestamp(),
                    ..Default::default()
                },
            )
        };
        store
            .apply_page(&PageWrite {
                organizations: vec![(
                    5,
                    OrganizationRecord {
                        fields: [("crm".to_owned(), "c-1".to_owned())].into_iter().collect(),
                        ..Default::default()
                    },
                )],
                tickets: vec![ticket(1)],
                ..Default::default()
            })
            .expect("page");
        let created_in_window = |now| {
            store
                .account_figures("acct-1", now)
                .expect("figures")
                .expect("account")
                .figures
                .created
                .created
        };
        let inside = created + Duration::days(6);
        let outside = created + Duration::days(7);
        assert_eq!(created_in_window(inside), 1);
        assert_eq!(created_in_window(inside), 1, "the cached answer");
        assert_eq!(
            created_in_window(outside),
            0,
            "a new day, no commit: the window moved"
        );
        assert_eq!(created_in_window(inside), 1);
        store
            .apply_page(&PageWrite {
                tickets: vec![ticket(2)],
                ..Default::default()
            })
            .expect("page");
        assert_eq!(created_in_window(inside), 2, "a commit is seen at once");
        let day = crate::domain::metrics::Day::of(inside).number();
        // A page that writes none of their inputs (a cursor, an unchanged ticket) keeps the figures.
        store
            .apply_page(&PageWrite {
                tickets: vec![ticket(2)],
                cursors: vec![("tickets".into(), b"after".to_vec())],
                ..Default::default()
            })
            .expect("quiet page");
        assert!(store.cached_figures("acct-1", day).is_some());
        assert_eq!(created_in_window(inside), 2);
        // Figures computed before a commit that changed their inputs are not kept.
        let seen = store.figure_changes();
        let before = store.account_figures("acct-1", inside).expect("figures");
        store
            .apply_page(&PageWrite {
                tickets: vec![ticket(3)],
                ..Default::default()
            })
            .expect("page");
        assert!(store.cached_figures("acct-1", day).is_none());
        store.cache_figures(seen, "acct-1", day, before);
        assert!(store.cached_figures("acct-1", day).is_none());
        assert_eq!(created_in_window(inside), 3);
        store
            .put_integration(&IntegrationRecord {
                subdomain: "acme".into(),
                match_zendesk_field: "organization_fields.crm".into(),
                match_account_attribute: "attributes.crm".into(),
                timeframe_days: 30,
                ..Default::default()
            })
            .expect("settings");
        assert_eq!(
            created_in_window(outside),
            3,
            "a settings change is seen at once"
        );
        assert!(store
            .account_figures("acct-2", inside)
            .expect("figures")
            .is_none());
    }

    #[test]
    fn a_snapshot_is_shared_until_a_commit_and_the_commit_is_visible_to_the_next() {
        let dir = tempfile::tempdir().expect("tempdir");
        let store = Store::open(dir.path()).expect("open");
        let first = store.snapshot().expect("snapshot");
        let again = store.snapshot().expect("snapshot");
        assert!(
            Arc::ptr_eq(&first, &again),
            "no commit in between: one snapshot"
        );
        drop(again);

        store
            .upsert_accounts(&[account("acct-1")], 0)
            .expect("upsert");
        // The commit let go of the shared snapshot, so it pins no pages beyond its last reader.
        assert_eq!(Arc::strong_count(&first), 1);
        let old_view = first.open_table(tables::ACCOUNTS).expect("table");
        assert!(old_view.get("acct-1").expect("get").is_none());

        let after = store.snapshot().expect("snapshot");
        assert!(!Arc::ptr_eq(&first, &after));
        let new_view = after.open_table(tables::ACCOUNTS).expect("table");
        assert!(new_view.get("acct-1").expect("get").is_some());
        let figures = store
            .account_figures("acct-1", chrono::Utc::now())
            .expect("figures");
        assert!(figures.is_some(), "the hot read path sees the commit");
    }
}
