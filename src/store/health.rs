//! Whether the store can write: the fault the file reported last, in plain words for the operator.
//!
//! redb refuses every write after one I/O error until the database is reopened, and reads that miss its
//! cache fail too. So the moment the file reports an error the store turns unwritable (watchers hear of it)
//! and refuses commits with a plain message instead of touching the disk; `store::recovery` gets it
//! writing again.
use std::io;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use chrono::{DateTime, Utc};
use tokio::sync::watch;

/// How often the daemon tries to write again, unless told otherwise (the message names it).
pub const DEFAULT_RETRY_EVERY: Duration = Duration::from_secs(30);

/// What kind of failure stopped the store writing.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FaultKind {
    /// The disk is full (ENOSPC, EDQUOT).
    DiskFull,
    /// Any other I/O error.
    Io,
}

/// Why the store stopped writing, and since when.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct WriteFault {
    /// Full disk or another I/O error.
    pub kind: FaultKind,
    /// What the operating system said.
    pub detail: String,
    /// When the first failing write happened.
    pub since: DateTime<Utc>,
}

impl WriteFault {
    fn from_io(error: &io::Error) -> Self {
        let kind = match error.raw_os_error() {
            Some(libc::ENOSPC | libc::EDQUOT) => FaultKind::DiskFull,
            _ => FaultKind::Io,
        };
        Self {
            kind,
            detail: error.to_string(),
            since: Utc::now(),
        }
    }
}

/// The store's condition, shared by its clones and the backends of the databases it opened.
#[derive(Debug)]
pub(crate) struct Health {
    data_dir: PathBuf,
    fault: watch::Sender<Option<WriteFault>>,
    retry_every_ms: AtomicU64,
}

impl Health {
    pub(crate) fn new(data_dir: &Path) -> Self {
        Self {
            data_dir: data_dir.to_owned(),
            fault: watch::Sender::new(None),
            retry_every_ms: AtomicU64::new(DEFAULT_RETRY_EVERY.as_millis() as u64),
        }
    }

    /// The file reported `error`: redb now refuses writes on this database, so the store is unwritable.
    pub(crate) fn record_io_error(&self, error: &io::Error) {
        self.fault.send_if_modified(|fault| {
            if fault.is_some() {
                return false;
            }
            *fault = Some(WriteFault::from_io(error));
            true
        });
    }

    /// Follows the fault: `None` while the store can write.
    pub(super) fn subscribe(&self) -> watch::Receiver<Option<WriteFault>> {
        self.fault.subscribe()
    }

    /// Sets how often the daemon retries writing, as the operator is told.
    pub(super) fn set_retry_every(&self, every: Duration) {
        self.retry_every_ms.store(
            u64::try_from(every.as_millis()).unwrap_or(u64::MAX),
            Ordering::Relaxed,
        );
    }

    pub(super) fn mark_writable(&self) {
        self.fault.send_if_modified(|fault| fault.take().is_some());
    }

    pub(crate) fn current(&self) -> Option<WriteFault> {
        self.fault.borrow().clone()
    }

    fn retry_every(&self) -> Duration {
        Duration::from_millis(self.retry_every_ms.load(Ordering::Relaxed))
    }

    /// `fault` in plain words for the operator: what happened, how much space is left, what zdsync does.
    pub(crate) fn describe(&self, fault: &WriteFault) -> String {
        let dir = self.data_dir.display();
        let free = match free_bytes(&self.data_dir) {
            Some(bytes) => format!("{} free", human_bytes(bytes)),
            None => "free space unknown".to_owned(),
        };
        let retry = human_duration(self.retry_every());
        match fault.kind {
            FaultKind::DiskFull => format!(
                "the disk holding {dir} is full ({free}): zdsync stopped writing and retries every {retry}; free some space"
            ),
            FaultKind::Io => format!(
                "the store in {dir} cannot write ({}; {free}): zdsync stopped writing and retries every {retry}; check the disk",
                fault.detail
            ),
        }
    }
}

/// Free bytes for unprivileged users on the file system holding `dir`.
pub fn free_bytes(dir: &Path) -> Option<u64> {
    use std::os::unix::ffi::OsStrExt;
    let path = std::ffi::CString::new(dir.as_os_str().as_bytes()).ok()?;
    let mut stats = std::mem::MaybeUninit::<libc::statvfs>::uninit();
    // SAFETY: `path` is a NUL-terminated string and `stats` is written by statvfs before it is read.
    let code = unsafe { libc::statvfs(path.as_ptr(), stats.as_mut_ptr()) };
    if code != 0 {
        return None;
    }
    // SAFETY: statvfs returned 0, so it filled `stats`.
    let stats = unsafe { stats.assume_init() };
    Some(stats.f_bavail.saturating_mul(stats.f_frsize))
}

/// `bytes` as people read sizes: `12 KiB`, `3.4 GiB`.
pub fn human_bytes(bytes: u64) -> String {
    const UNITS: [&str; 5] = ["bytes", "KiB", "MiB", "GiB", "TiB"];
    let mut value = bytes as f64;
    let mut unit = 0;
    while value >= 1024.0 && unit + 1 < UNITS.len() {
        value /= 1024.0;
        unit += 1;
    }
    if unit == 0 {
        format!("{bytes} bytes")
    } else if value < 10.0 {
        format!("{value:.1} {}", UNITS[unit])
    } else {
        format!("{value:.0} {}", UNITS[unit])
    }
}

fn human_duration(duration: Duration) -> String {
    if duration >= Duration::from_secs(1) {
        format!("{} s", duration.as_secs())
    } else {
        format!("{} ms", duration.as_millis())
    }
}
