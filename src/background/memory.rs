//! Handing memory that large writes freed back to the operating system.
//!
//! A commit of a sync allocates and frees tens of MiB (the staged pages, redb's dirty pages, encoded
//! rows). glibc keeps freed memory for reuse: the top of its heap is returned only past a threshold that
//! grows with the largest block ever freed (up to 64 MiB), and free pages in the middle of a heap are never
//! returned on their own. Under heaptrack a first sync of 1,000,000 tickets peaked at 35 MiB of live heap
//! against 80-90 MiB of RSS. `malloc_trim` after each commit returns both kinds (`benches/initial_sync.rs`,
//! stop 17): peak RSS 82.4-83.9 -> 67.6-68.6 MiB at 1,000,000 tickets, 59.9-60.2 -> 49.4-51.3 MiB at 50,000,
//! and 77.6-82.4 -> 61.3-62.4 MiB in the nightly validation at 1,000,000, at the same throughput. Trimming at
//! most every 100 ms returned less of it at 50,000 tickets (60.0-62.8 MiB), where commits come faster.
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::OnceLock;
use std::time::{Duration, Instant};

/// The least time between two trims of the process. A trim during a sync takes about 1.5 ms (median; 5.5 ms
/// at the 90th percentile, on the sync's idle-priority thread), and only a burst of tiny commits (admin
/// writes) could come faster than this; `page_apply` committing every page alone measured no cost.
pub const MIN_TRIM_INTERVAL: Duration = Duration::from_millis(10);

/// The process's throttle: every caller of [`release_freed_memory`] shares it.
static PROCESS_THROTTLE: TrimThrottle = TrimThrottle::new(MIN_TRIM_INTERVAL);

/// Returns freed heap memory to the operating system, at most once per [`MIN_TRIM_INTERVAL`] across the
/// process; call it after a large write has dropped its buffers. Returns whether it trimmed.
pub fn release_freed_memory() -> bool {
    PROCESS_THROTTLE.release()
}

/// Lets one trim through per interval, whichever thread asks.
#[derive(Debug)]
pub struct TrimThrottle {
    /// When the last trim began, in ms since [`epoch`]; `u64::MAX` before the first.
    last_ms: AtomicU64,
    /// The least time between two trims, in ms.
    interval_ms: u64,
}

impl TrimThrottle {
    /// A throttle that has not trimmed yet.
    pub const fn new(interval: Duration) -> Self {
        Self {
            last_ms: AtomicU64::new(u64::MAX),
            interval_ms: interval.as_millis() as u64,
        }
    }

    /// Trims unless this throttle trimmed less than its interval ago; returns whether it trimmed.
    pub fn release(&self) -> bool {
        let now_ms = u64::try_from(epoch().elapsed().as_millis()).unwrap_or(u64::MAX - 1);
        let last = self.last_ms.load(Ordering::Relaxed);
        if last != u64::MAX && now_ms.saturating_sub(last) < self.interval_ms {
            return false;
        }
        // One caller trims; another that read the same `last` skips rather than trimming twice.
        if self
            .last_ms
            .compare_exchange(last, now_ms, Ordering::Relaxed, Ordering::Relaxed)
            .is_err()
        {
            return false;
        }
        trim_heap();
        true
    }
}

/// A fixed instant the trim times are counted from.
fn epoch() -> Instant {
    static EPOCH: OnceLock<Instant> = OnceLock::new();
    *EPOCH.get_or_init(Instant::now)
}

#[cfg(all(target_os = "linux", target_env = "gnu"))]
fn trim_heap() {
    // SAFETY: malloc_trim only walks glibc's own free lists under their locks; it touches no memory of ours.
    unsafe {
        libc::malloc_trim(0);
    }
}

/// Other allocators (musl, macOS) have no `malloc_trim`; they return memory by their own rules.
#[cfg(not(all(target_os = "linux", target_env = "gnu")))]
fn trim_heap() {}

#[cfg(all(test, target_os = "linux", target_env = "gnu"))]
mod tests {
    use super::*;

    /// Resident memory of this process, in bytes.
    fn rss_bytes() -> u64 {
        let statm = std::fs::read_to_string("/proc/self/statm").expect("statm");
        let pages: u64 = statm
            .split_whitespace()
            .nth(1)
            .and_then(|field| field.parse().ok())
            .expect("resident pages");
        // SAFETY: sysconf has no preconditions.
        let page = unsafe { libc::sysconf(libc::_SC_PAGESIZE) };
        pages * u64::try_from(page).expect("page size")
    }

    #[test]
    fn freed_holes_in_the_heap_go_back_to_the_os() {
        // Its own thread, so the blocks come from one arena no other test allocates from.
        let released = std::thread::spawn(|| {
            const BLOCK: usize = 4096;
            const BLOCKS: usize = 16 * 1024;
            let mut blocks: Vec<Vec<u8>> = (0..BLOCKS).map(|i| vec![i as u8; BLOCK]).collect();
            // Every 16th block stays, so no freed run reaches the top of the heap and glibc keeps them all
            // (64 MiB allocated, 60 MiB freed in 60 KiB holes).
            let mut kept = Vec::new();
            for (index, block) in blocks.drain(..).enumerate() {
                if index % 16 == 15 {
                    kept.push(block);
                }
            }
            let before = rss_bytes();
            assert!(
                TrimThrottle::new(MIN_TRIM_INTERVAL).release(),
                "a new throttle trims"
            );
            let after = rss_bytes();
            drop(kept);
            before.saturating_sub(after)
        })
        .join()
        .expect("thread");
        assert!(
            released >= 32 * 1024 * 1024,
            "only {released} bytes of about 60 MiB freed went back"
        );
    }

    #[test]
    fn a_second_call_within_the_interval_does_not_trim() {
        let throttle = TrimThrottle::new(Duration::from_secs(3600));
        assert!(throttle.release());
        assert!(!throttle.release());
    }
}
