//! The file the database lives in, behind a wrapper that tells the store the moment an I/O error happens:
//! redb refuses every later write after one ("Previous I/O error occurred") until the database is reopened,
//! so the store must know at once to stop writing and reopen. Tests put a [`StorageFault`] in the same
//! wrapper to fill the disk on demand.
use std::fs::File;
use std::io;
use std::path::Path;
use std::sync::atomic::{AtomicU8, Ordering};
use std::sync::Arc;

use redb::backends::FileBackend;
use redb::StorageBackend;

use super::health::Health;

/// The first block of the file, where redb keeps its header: it is rewritten in place, so a full disk
/// still takes it (the block is allocated), and reopening the database needs nothing else.
const HEADER_BLOCK: u64 = 4096;

const FAULT_NONE: u8 = 0;
const FAULT_DISK_FULL: u8 = 1;
const FAULT_IO: u8 = 2;

/// A switch that makes the store's disk misbehave, for tests: shared by the test and the store it opened.
#[derive(Debug, Clone, Default)]
pub struct StorageFault {
    mode: Arc<AtomicU8>,
}

impl StorageFault {
    /// A switch that is off: the disk works.
    pub fn new() -> Self {
        Self::default()
    }

    /// The disk is full: anything that needs a new block (growing the file, writing a page) fails with ENOSPC.
    pub fn fill_disk(&self) {
        self.mode.store(FAULT_DISK_FULL, Ordering::SeqCst);
    }

    /// The disk is broken: every write, resize and sync fails with EIO.
    pub fn break_disk(&self) {
        self.mode.store(FAULT_IO, Ordering::SeqCst);
    }

    /// The disk works again (space was freed, the disk was replaced).
    pub fn clear(&self) {
        self.mode.store(FAULT_NONE, Ordering::SeqCst);
    }

    fn mode(&self) -> u8 {
        self.mode.load(Ordering::SeqCst)
    }

    fn check_write(&self, offset: u64, len: usize) -> io::Result<()> {
        match self.mode() {
            FAULT_DISK_FULL if offset.saturating_add(len as u64) > HEADER_BLOCK => {
                Err(io::Error::from_raw_os_error(libc::ENOSPC))
            }
            FAULT_IO => Err(io::Error::from_raw_os_error(libc::EIO)),
            _ => Ok(()),
        }
    }

    fn check_set_len(&self, current: u64, len: u64) -> io::Result<()> {
        match self.mode() {
            FAULT_DISK_FULL if len > current => Err(io::Error::from_raw_os_error(libc::ENOSPC)),
            FAULT_IO => Err(io::Error::from_raw_os_error(libc::EIO)),
            _ => Ok(()),
        }
    }

    fn check_sync(&self) -> io::Result<()> {
        if self.mode() == FAULT_IO {
            return Err(io::Error::from_raw_os_error(libc::EIO));
        }
        Ok(())
    }

    /// What [`probe_space`] finds while the switch is on.
    fn check_probe(&self) -> io::Result<()> {
        match self.mode() {
            FAULT_DISK_FULL => Err(io::Error::from_raw_os_error(libc::ENOSPC)),
            FAULT_IO => Err(io::Error::from_raw_os_error(libc::EIO)),
            _ => Ok(()),
        }
    }
}

/// The database file, reporting every I/O error to the store's [`Health`] before redb sees it.
#[derive(Debug)]
pub(crate) struct WatchedBackend {
    file: FileBackend,
    health: Arc<Health>,
    fault: Option<StorageFault>,
}

impl WatchedBackend {
    /// The database on `file`, watched by `health`; locks the open file as redb's own file backend does.
    pub(crate) fn new(
        file: File,
        health: Arc<Health>,
        fault: Option<StorageFault>,
    ) -> Result<Self, redb::DatabaseError> {
        Ok(Self {
            file: FileBackend::new(file)?,
            health,
            fault,
        })
    }

    fn watched<T>(&self, result: io::Result<T>) -> io::Result<T> {
        if let Err(err) = &result {
            self.health.record_io_error(err);
        }
        result
    }
}

impl StorageBackend for WatchedBackend {
    fn len(&self) -> io::Result<u64> {
        self.watched(self.file.len())
    }

    fn read(&self, offset: u64, out: &mut [u8]) -> io::Result<()> {
        self.watched(self.file.read(offset, out))
    }

    fn set_len(&self, len: u64) -> io::Result<()> {
        let result = match &self.fault {
            Some(fault) => self
                .file
                .len()
                .and_then(|current| fault.check_set_len(current, len)),
            None => Ok(()),
        };
        self.watched(result.and_then(|()| self.file.set_len(len)))
    }

    fn sync_data(&self) -> io::Result<()> {
        let result = self.fault.as_ref().map_or(Ok(()), StorageFault::check_sync);
        self.watched(result.and_then(|()| self.file.sync_data()))
    }

    fn write(&self, offset: u64, data: &[u8]) -> io::Result<()> {
        let result = self
            .fault
            .as_ref()
            .map_or(Ok(()), |fault| fault.check_write(offset, data.len()));
        self.watched(result.and_then(|()| self.file.write(offset, data)))
    }

    fn close(&self) -> io::Result<()> {
        // Not `FileBackend::close`: it unlocks the open file, which a reopened database shares. The lock goes
        // with the last descriptor of the file, when the store is dropped.
        Ok(())
    }
}

/// Bytes the write check reserves: about what a page commit of a sync needs, so a disk that takes them is
/// worth reopening for.
const PROBE_BYTES: i64 = 4 * 1024 * 1024;

/// Name of the scratch file of the write check, in the data directory.
const PROBE_FILE: &str = ".zdsync-write-check";

/// Whether the disk under `data_dir` takes new data again, without touching the database (a failed redb
/// write would need another reopen): reserves [`PROBE_BYTES`] in a scratch file, syncs it and removes it.
pub(crate) fn probe_space(data_dir: &Path, fault: Option<&StorageFault>) -> io::Result<()> {
    if let Some(fault) = fault {
        fault.check_probe()?;
    }
    let path = data_dir.join(PROBE_FILE);
    let result = reserve(&path);
    let _ = std::fs::remove_file(&path);
    result
}

fn reserve(path: &Path) -> io::Result<()> {
    use std::os::fd::AsRawFd;
    let file = File::options()
        .write(true)
        .create(true)
        .truncate(true)
        .open(path)?;
    // SAFETY: the descriptor belongs to `file`, open for writing for the whole call.
    let code = unsafe { libc::posix_fallocate(file.as_raw_fd(), 0, PROBE_BYTES) };
    match code {
        0 => {}
        // A file system without fallocate: write the bytes instead.
        libc::EOPNOTSUPP | libc::EINVAL => {
            use std::io::Write;
            let block = vec![0_u8; 64 * 1024];
            let mut writer = &file;
            for _ in 0..(PROBE_BYTES as usize / block.len()) {
                writer.write_all(&block)?;
            }
        }
        code => return Err(io::Error::from_raw_os_error(code)),
    }
    file.sync_data()
}
