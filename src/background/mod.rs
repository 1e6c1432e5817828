//! Background threads (sync runs, and a simulator running beside the daemon) and the points where their
//! long CPU-bound loops step aside for the threads that serve gRPC; and the allocator, which hands the memory
//! their large writes free back to the OS ([`memory`]).
//!
//! Background threads run under Linux's `SCHED_IDLE` policy ([`priority`]), raised for a while when other
//! load on the host keeps them off the CPU ([`guard`]). `SCHED_IDLE` alone does not keep reads fast:
//! Linux's EEVDF scheduler treats an idle-policy thread as a very light fair one, so when it is owed time
//! it is picked over a runnable serving thread and keeps the core until the next scheduler tick (4 ms at
//! `HZ=250`). A background thread therefore yields the core itself every [`STEP_ASIDE_EVERY`] of work;
//! with nothing else runnable the yield returns at once, so an idle machine loses nothing measurable.
pub mod guard;
pub mod memory;
pub mod own_load;
pub mod priority;

use std::cell::Cell;
use std::time::{Duration, Instant};

/// How long a background thread works between two yields of its core.
pub const STEP_ASIDE_EVERY: Duration = Duration::from_micros(200);

thread_local! {
    /// When this thread last yielded; `None` on threads that are not background threads.
    static LAST_STEP_ASIDE: Cell<Option<Instant>> = const { Cell::new(None) };
}

/// Makes the calling thread a background thread: `SCHED_IDLE` where the OS allows it, watched by the
/// starvation [`guard`], and its [`step_aside`] points active.
pub fn enter_background() {
    // Before this thread lowers itself: the guard thread inherits its creator's policy.
    guard::start();
    match priority::lower_current_thread() {
        Ok(()) => {
            if let Some(tid) = priority::current_thread_id() {
                guard::watch(tid);
            }
        }
        Err(error) => tracing::debug!(%error, "cannot lower the priority of a background thread"),
    }
    LAST_STEP_ASIDE.with(|last| last.set(Some(Instant::now())));
}

/// Takes the calling background thread from the starvation guard; call it as the thread ends.
pub fn leave_background() {
    if let Some(tid) = priority::current_thread_id() {
        guard::unwatch(tid);
    }
    LAST_STEP_ASIDE.with(|last| last.set(None));
}

/// A point in a long loop where a background thread yields its core if it has worked for
/// [`STEP_ASIDE_EVERY`] since it last did; nothing on other threads.
#[inline]
pub fn step_aside() {
    LAST_STEP_ASIDE.with(|last| {
        if let Some(since) = last.get() {
            let now = Instant::now();
            if now.duration_since(since) >= STEP_ASIDE_EVERY {
                std::thread::yield_now();
                last.set(Some(Instant::now()));
            }
        }
    });
}

#[cfg(test)]
mod tests {
    use super::*;

    fn is_background() -> bool {
        LAST_STEP_ASIDE.with(|last| last.get().is_some())
    }

    #[test]
    fn only_background_threads_step_aside() {
        let plain = std::thread::spawn(|| {
            step_aside();
            is_background()
        })
        .join()
        .unwrap();
        assert!(!plain);
        let background = std::thread::spawn(|| {
            enter_background();
            let before = LAST_STEP_ASIDE.with(Cell::get).unwrap();
            let spin_until = Instant::now() + STEP_ASIDE_EVERY * 2;
            while Instant::now() < spin_until {
                std::hint::spin_loop();
            }
            step_aside();
            let after = LAST_STEP_ASIDE.with(Cell::get).unwrap();
            (is_background(), after > before)
        })
        .join()
        .unwrap();
        assert_eq!(background, (true, true));
    }
}
