//! Background threads (sync runs, and a simulator running beside the daemon) and the points where their
//! long CPU-bound loops step aside for the threads that serve gRPC.
//!
//! Background threads run under Linux's `SCHED_BATCH` policy at nice 10, but that alone does not keep
//! reads fast: Linux's EEVDF scheduler picks a low-weight fair thread that is owed time over a runnable
//! serving thread, and it keeps the core until the next scheduler tick (4 ms at `HZ=250`). A background thread therefore yields the core itself every [`STEP_ASIDE_EVERY`] of work;
//! with nothing else runnable the yield returns at once, so an idle machine loses nothing measurable.
use std::cell::Cell;
use std::time::{Duration, Instant};

/// How long a background thread works between two yields of its core.
pub const STEP_ASIDE_EVERY: Duration = Duration::from_micros(200);

thread_local! {
    /// When this thread last yielded; `None` on threads that are not background threads.
    static LAST_STEP_ASIDE: Cell<Option<Instant>> = const { Cell::new(None) };
}

/// Makes the calling thread a background thread: `SCHED_BATCH` at nice 10 where the OS allows it, and its
/// [`step_aside`] points active.
pub fn enter_background() {
    lower_thread_priority();
    LAST_STEP_ASIDE.with(|last| last.set(Some(Instant::now())));
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

/// The nice value of background threads: below every normal thread (a weight of 110 against 1,024),
/// yet a share of the CPU that a busy host cannot take away.
pub const BACKGROUND_NICE: i32 = 10;

/// Moves the calling thread to `SCHED_BATCH` at [`BACKGROUND_NICE`] (Linux applies both per thread).
///
/// `SCHED_IDLE` (weight 3) let any sustained load on the host, one busy loop per core, stall a sync
/// for good, and with it every admin write waiting on the sync's commit (issue #14). A batch thread
/// never preempts a running thread when it wakes, so the gRPC threads keep their core, and at nice 10
/// it still gets about a tenth of a core against a busy loop.
#[cfg(target_os = "linux")]
fn lower_thread_priority() {
    let param = libc::sched_param { sched_priority: 0 };
    // SAFETY: plain syscalls on the calling thread (tid from gettid) with a parameter that lives across them.
    let (policy, nice) = unsafe {
        let policy = libc::sched_setscheduler(0, libc::SCHED_BATCH, &raw const param);
        let tid = libc::id_t::try_from(libc::gettid()).unwrap_or(0);
        let nice = libc::setpriority(libc::PRIO_PROCESS, tid, BACKGROUND_NICE);
        (policy, nice)
    };
    if policy != 0 || nice != 0 {
        tracing::debug!("cannot lower the priority of a background thread");
    }
}

#[cfg(not(target_os = "linux"))]
fn lower_thread_priority() {}

#[cfg(test)]
mod tests {
    use super::*;

    fn is_background() -> bool {
        LAST_STEP_ASIDE.with(|last| last.get().is_some())
    }

    /// Background threads are batch threads at nice 10: lower than serving threads, never starved.
    #[cfg(target_os = "linux")]
    #[test]
    fn background_threads_run_as_batch_threads_at_nice_10() {
        let (policy, nice) = std::thread::spawn(|| {
            enter_background();
            // SAFETY: plain queries of the calling thread.
            unsafe {
                let tid = libc::id_t::try_from(libc::gettid()).expect("tid");
                (
                    libc::sched_getscheduler(0),
                    libc::getpriority(libc::PRIO_PROCESS, tid),
                )
            }
        })
        .join()
        .unwrap();
        assert_eq!((policy, nice), (libc::SCHED_BATCH, BACKGROUND_NICE));
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
