//! Getting the store writing again by itself after a full disk or an I/O error: [`Store::recover`] reopens
//! the file (reads work again at once) and, once the disk takes data again, checks that a commit works.
use std::sync::Arc;
use std::time::Duration;

use redb::Database;
use tokio::sync::watch;

use super::backend::{probe_space, WatchedBackend};
use super::health::{Health, WriteFault};
use super::tables::META;
use super::{Store, StoreError, CACHE_BYTES};

/// Key of the meta entry the write check commits.
const WRITE_CHECK_KEY: &str = "write_check";

/// Opens the database file at `path` on `file` (the store's open file, so the lock it holds covers it).
pub(crate) fn open_database(
    file: &std::fs::File,
    health: &Arc<Health>,
    fault: Option<super::StorageFault>,
) -> Result<Database, redb::DatabaseError> {
    let file = file
        .try_clone()
        .map_err(|err| redb::DatabaseError::Storage(redb::StorageError::Io(err)))?;
    let backend = WatchedBackend::new(file, health.clone(), fault)?;
    // redb's default cache is 1 GiB, so the daemon's RSS grew with the store (88-102 MiB
    // after an initial sync of 200,000 tickets, 48 MiB at 50,000). With 8 MiB it is 47 vs
    // 40 MiB and the sync is as fast: the OS page cache serves the reads (benches/initial_sync.rs).
    redb::Builder::new()
        .set_cache_size(CACHE_BYTES)
        .create_with_backend(backend)
}

impl Store {
    /// Why the store cannot write, if it cannot.
    pub fn write_fault(&self) -> Option<WriteFault> {
        self.cell.health.current()
    }

    /// Why the store cannot write, in plain words for the operator (with the free space now).
    pub fn write_fault_message(&self) -> Option<String> {
        self.write_fault_report().map(|(_, message)| message)
    }

    /// The fault and its plain words together (one look at the condition).
    pub fn write_fault_report(&self) -> Option<(WriteFault, String)> {
        self.write_fault().map(|fault| {
            let message = self.cell.health.describe(&fault);
            (fault, message)
        })
    }

    /// Follows whether the store can write: `None` while it can, the fault while it cannot.
    pub fn subscribe_write_fault(&self) -> watch::Receiver<Option<WriteFault>> {
        self.cell.health.subscribe()
    }

    /// Sets how often the daemon retries writing, as the operator is told.
    pub fn set_retry_every(&self, every: Duration) {
        self.cell.health.set_retry_every(every);
    }

    /// The error a write gets while the store cannot write.
    pub(crate) fn unwritable(&self) -> Option<StoreError> {
        self.write_fault_message().map(StoreError::Unwritable)
    }

    /// Tries to get the store writing again (blocking): reopens the database if redb refuses it after an I/O
    /// error (reads work again), then, if the disk takes data, commits a small write. Returns whether the
    /// store can write; a failure leaves it unwritable, to be tried again later.
    pub fn recover(&self) -> Result<bool, StoreError> {
        if self.write_fault().is_none() {
            return Ok(true);
        }
        if let Err(err) = self.reopen_if_refused() {
            // A disk that fails even the header rewrite: the old handle stays for what its cache can serve.
            tracing::debug!(error = %err, "cannot reopen the database yet");
            return Ok(false);
        }
        if let Err(err) = probe_space(&self.cell.data_dir, self.cell.fault.as_ref()) {
            tracing::debug!(error = %err, "the disk does not take data yet");
            return Ok(false);
        }
        if let Err(err) = self.write_check() {
            tracing::debug!(error = %err, "the write check failed");
            // The failed commit made redb refuse writes again: reopen now, so reads keep working.
            if let Err(err) = self.reopen_if_refused() {
                tracing::debug!(error = %err, "cannot reopen the database yet");
            }
            return Ok(false);
        }
        self.cell.health.mark_writable();
        Ok(true)
    }

    /// Commits one small write straight to the database (not through the store's gate, which is closed).
    fn write_check(&self) -> Result<(), StoreError> {
        let txn = self.db().begin_write()?;
        {
            let mut meta = txn.open_table(META)?;
            let now = self.now_ms().to_le_bytes();
            meta.insert(WRITE_CHECK_KEY, now.as_slice())?;
        }
        txn.commit()?;
        Ok(())
    }

    /// Replaces the database handle with a freshly opened one if the current one refuses writes.
    ///
    /// The new handle shares the open file (and its lock) of the old one, so it opens while the old handle
    /// still exists: readers never find the store closed. The old handle can no longer write anything, and
    /// the shared read snapshot is let go so it does not keep it alive; a reader in the middle of a request
    /// finishes on it. redb repairs the file as it opens it if the failed commit left it marked dirty, which
    /// rewrites only the header block (a full disk takes that).
    fn reopen_if_refused(&self) -> Result<(), StoreError> {
        let _one_at_a_time = super::locked(&self.cell.reopening);
        let old = self.db();
        match old.begin_write() {
            Ok(txn) => {
                // Still writable: nothing to reopen.
                drop(txn);
                return Ok(());
            }
            Err(redb::TransactionError::Storage(
                redb::StorageError::PreviousIo | redb::StorageError::Io(_),
            )) => {}
            Err(err) => return Err(err.into()),
        }
        let fresh = open_database(&self.cell.file, &self.cell.health, self.cell.fault.clone())
            .map_err(|source| StoreError::Open {
                path: self.cell.path.clone(),
                source,
            })?;
        let replaced = std::mem::replace(
            &mut *self
                .cell
                .db
                .write()
                .unwrap_or_else(std::sync::PoisonError::into_inner),
            Arc::new(fresh),
        );
        self.forget_reads();
        drop(replaced);
        drop(old);
        tracing::info!(path = %self.cell.path.display(), "reopened the database after an I/O error");
        Ok(())
    }
}

#[cfg(test)]
mod tests {

    use super::*;
    use crate::store::health::{human_bytes, FaultKind};
    use crate::store::tests::account;
    use crate::store::StorageFault;

    #[test]
    fn after_a_full_disk_the_store_reopens_reads_on_and_writes_again_once_space_is_freed() {
        let dir = tempfile::tempdir().expect("tempdir");
        let fault = StorageFault::new();
        let store = Store::open_with_fault(dir.path(), fault.clone()).expect("open");
        let mut faults = store.subscribe_write_fault();
        store
            .upsert_accounts(&[account("before")], 0)
            .expect("a write while the disk has room");
        let snapshot = store.snapshot().expect("snapshot");

        fault.fill_disk();
        let refused = store
            .upsert_accounts(&[account("during")], 0)
            .expect_err("the disk is full");
        assert!(
            matches!(&refused, StoreError::Unwritable(message) if message.contains("full")),
            "{refused:?}"
        );
        assert!(
            faults.has_changed().expect("sender alive"),
            "watchers hear of it"
        );
        let fault_now = faults.borrow_and_update().clone().expect("a fault");
        assert_eq!(fault_now.kind, FaultKind::DiskFull);
        let message = store.write_fault_message().expect("a message");
        assert!(
            message.starts_with(&format!(
                "the disk holding {} is full (",
                dir.path().display()
            )) && message.contains(" free): zdsync stopped writing and retries every 30 s"),
            "{message}"
        );
        // redb refuses this handle now ("Previous I/O error"), reads that miss its cache included.
        assert!(store.db().begin_write().is_err());

        // Still full: the database is reopened for reads, writes stay refused without touching the file.
        assert!(!store.recover().expect("recover"), "the disk is still full");
        drop(snapshot);
        assert!(store.db().begin_write().is_ok(), "a fresh handle");
        let before = store.get_account("before").expect("read").expect("stored");
        assert_eq!(before.name, "name of before");
        assert!(
            store.get_account("during").expect("read").is_none(),
            "nothing half-written"
        );
        let refused = store
            .upsert_accounts(&[account("during")], 0)
            .expect_err("still full");
        assert!(matches!(refused, StoreError::Unwritable(_)), "{refused:?}");
        assert!(
            store.db().begin_write().is_ok(),
            "the refusal did not touch the file"
        );
        assert!(store.write_fault().is_some());

        fault.clear();
        assert!(store.recover().expect("recover"), "space was freed");
        assert!(store.write_fault().is_none());
        assert!(faults.has_changed().expect("sender alive"));
        assert!(faults.borrow_and_update().is_none());
        store
            .upsert_accounts(&[account("after")], 0)
            .expect("writes work again");
        drop(store);

        // The file is whole: a later open sees every committed write and nothing else.
        let reopened = Store::open(dir.path()).expect("reopen");
        for (id, stored) in [("before", true), ("during", false), ("after", true)] {
            assert_eq!(
                reopened.get_account(id).expect("read").is_some(),
                stored,
                "{id}"
            );
        }
    }

    #[test]
    fn a_broken_disk_is_reported_as_such_and_the_store_recovers_once_it_works() {
        let dir = tempfile::tempdir().expect("tempdir");
        let fault = StorageFault::new();
        let store = Store::open_with_fault(dir.path(), fault.clone()).expect("open");
        fault.break_disk();
        assert!(store.upsert_accounts(&[account("a")], 0).is_err());
        let message = store.write_fault_message().expect("a message");
        assert!(
            message.contains("cannot write (") && message.contains("check the disk"),
            "{message}"
        );
        assert!(!store.recover().expect("recover"), "the reopen fails too");
        fault.clear();
        assert!(store.recover().expect("recover"));
        store
            .upsert_accounts(&[account("a")], 0)
            .expect("writes work again");
    }

    #[test]
    fn sizes_read_as_people_write_them() {
        assert_eq!(human_bytes(512), "512 bytes");
        assert_eq!(human_bytes(12 * 1024), "12 KiB");
        assert_eq!(human_bytes(3 * 1024 * 1024 + 400 * 1024), "3.4 MiB");
    }
}
