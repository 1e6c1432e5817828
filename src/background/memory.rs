//! The process's memory allocator: jemalloc, set up to hand the memory large writes free back to the OS on
//! its own.
//!
//! A commit of a sync allocates and frees tens of MiB (the staged pages, redb's dirty pages and the pages
//! its cache reads in, encoded rows). With glibc's allocator that churn cost about a sixth of the sync's
//! CPU at 1,000,000 tickets (`_int_malloc`, `unlink_chunk`, `malloc_consolidate` and the rest: perf), and
//! glibc kept the freed memory, so the daemon called `malloc_trim` after each commit to stay under the
//! memory bar (issue #13, stops 16-23). jemalloc's size-class slabs make that churn cheap, and its
//! background thread returns pages freed longer than [`DIRTY_DECAY_MS`] ago without a call from us.
//!
//! Measured (`benches/initial_sync.rs`, the 1,000,000 sync alone, stop 24): 30.1-34.7 s with glibc and the
//! trim, 24.4-26.0 s with these options (the daemon's CPU 37.0-42.5 s -> 29.5-31.1 s), at a peak RSS of
//! 76.2-82.9 MiB against 84.4-85.5. jemalloc's defaults (four arenas a core, pages kept 10 s)
//! were as fast but peaked at 109 MiB; keeping pages 1 s, 87 MiB.
use std::ffi::{c_char, CStr};

#[global_allocator]
static ALLOCATOR: tikv_jemallocator::Jemalloc = tikv_jemallocator::Jemalloc;

/// How long jemalloc keeps pages freed for reuse before its background thread returns them to the OS.
pub const DIRTY_DECAY_MS: u32 = 500;

/// jemalloc's options, as `MALLOC_CONF` spells them: two arenas (a sync keeps two threads busy, its fetch
/// lane and its commit thread, and each arena keeps its own free pages; four were no faster and peaked 3 MiB
/// higher), a background thread that returns freed pages, and pages returned at once rather than kept
/// "muzzy" (`MADV_FREE`: counted in RSS until the kernel needs the memory). `_RJEM_MALLOC_CONF` in the
/// environment overrides them for a run.
const OPTIONS: &CStr = c"narenas:2,background_thread:true,dirty_decay_ms:500,muzzy_decay_ms:0";

/// A C string pointer that may live in a `static`: jemalloc reads it once, before `main`.
#[repr(transparent)]
struct ConfPointer(*const c_char);

// SAFETY: the pointer is to a string literal, never written.
unsafe impl Sync for ConfPointer {}

/// The options jemalloc reads at start-up, under the name its prefixed build (`_rjem_`) looks for; it
/// overrides jemalloc's weak default.
#[unsafe(export_name = "_rjem_malloc_conf")]
static MALLOC_CONF: ConfPointer = ConfPointer(OPTIONS.as_ptr());

/// The options jemalloc runs with, read back from it: (arenas, background thread, dirty decay in ms).
/// They differ from the options set here where `_RJEM_MALLOC_CONF` overrides them.
pub fn effective_options() -> Result<(u32, bool, isize), tikv_jemalloc_ctl::Error> {
    let arenas = tikv_jemalloc_ctl::opt::narenas::read()?;
    let background = tikv_jemalloc_ctl::opt::background_thread::read()?;
    // SAFETY: `opt.dirty_decay_ms` is an `ssize_t` (jemalloc's mallctl namespace).
    let decay = unsafe { tikv_jemalloc_ctl::raw::read::<isize>(b"opt.dirty_decay_ms\0")? };
    Ok((arenas, background, decay))
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::{Duration, Instant};

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

    /// The options above are the ones jemalloc runs with: the exported string reached it.
    #[test]
    fn jemalloc_runs_with_the_options_set_here() {
        assert_eq!(
            effective_options().expect("mallctl"),
            (2, true, isize::try_from(DIRTY_DECAY_MS).expect("decay"))
        );
    }

    #[test]
    fn freed_holes_in_the_heap_go_back_to_the_os_without_a_call() {
        const BLOCK: usize = 4096;
        const BLOCKS: usize = 16 * 1024;
        let mut blocks: Vec<Vec<u8>> = (0..BLOCKS).map(|i| vec![i as u8; BLOCK]).collect();
        let peak = rss_bytes();
        // Every 16th block stays, so the freed memory is holes between live blocks (64 MiB allocated, 60 MiB
        // freed), which no allocator returns by shrinking the heap from its top.
        let mut kept = Vec::new();
        for (index, block) in blocks.drain(..).enumerate() {
            if index % 16 == 15 {
                kept.push(block);
            }
        }
        drop(blocks);
        let deadline = Instant::now() + Duration::from_secs(30);
        let released = loop {
            let released = peak.saturating_sub(rss_bytes());
            if released >= 32 * 1024 * 1024 || Instant::now() > deadline {
                break released;
            }
            std::thread::sleep(Duration::from_millis(50));
        };
        drop(kept);
        assert!(
            released >= 32 * 1024 * 1024,
            "only {released} bytes of about 60 MiB freed went back within 30 s"
        );
    }
}
