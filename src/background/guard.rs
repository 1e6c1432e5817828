//! The starvation guard: a thread at normal priority that notices a background thread kept off the CPU
//! and raises it until the host calms down (issue #14: a busy host must not stall a sync forever, nor an
//! admin write wait behind a preempted commit).
//!
//! Every [`TICK`] it reads each background thread's scheduler statistics
//! (`/proc/self/task/<tid>/schedstat`: time on a CPU, time runnable but waiting for one) and feeds them to
//! a [`ThreadWatch`], the pure rule. The kernel adds a thread's wait to that file only when the thread
//! gets a CPU again, so a starved thread's wait arrives in lumps, a second or more at a time; the rule
//! therefore judges a sliding [`WINDOW_TICKS`] window, not single ticks. A thread that waited for a core at
//! least three quarters of the window is raised ([`Level::Raised`]); one that then waits at most a tenth of the
//! window for [`LOWER_AFTER`] consecutive ticks goes back to `SCHED_IDLE`. On a quiet host a background
//! thread never waits that long, so reads keep their priority.
use std::collections::{BTreeMap, VecDeque};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Mutex, OnceLock};
use std::time::{Duration, Instant};

use super::priority::{self, Level, ThreadId};

/// How often the guard samples the background threads.
pub const TICK: Duration = Duration::from_millis(500);

/// The ticks a judgement spans.
pub const WINDOW_TICKS: usize = 4;

/// Consecutive calm ticks before a raised thread goes back to `SCHED_IDLE`.
pub const LOWER_AFTER: u32 = 10;

/// A window is starved when the thread waited for a core at least this share of it: under a busy loop a
/// `SCHED_IDLE` thread waits 99 % of the time, while serving gRPC at half of what saturates the cores
/// keeps it waiting well under this, so such load never raises it.
const STARVED_SHARE: f64 = 0.75;

/// A window is calm when the thread waited for a core at most this share of it.
const CALM_SHARE: f64 = 0.1;

/// How often, at most, a raise is logged at `info` (later ones in the interval go to `debug`).
const RAISE_LOG_INTERVAL: Duration = Duration::from_secs(60);

/// One reading of a thread's scheduler statistics, in nanoseconds since the thread started.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SchedStat {
    /// Time spent on a CPU.
    pub run_ns: u64,
    /// Time spent runnable, waiting for a CPU.
    pub wait_ns: u64,
}

impl SchedStat {
    /// Parses the first two numbers of a `schedstat` file; `None` for any other shape.
    pub fn parse(text: &str) -> Option<Self> {
        let mut fields = text.split_ascii_whitespace();
        let run_ns = fields.next()?.parse().ok()?;
        let wait_ns = fields.next()?.parse().ok()?;
        Some(Self { run_ns, wait_ns })
    }
}

/// The pure rule for one thread: when to raise it and when to lower it again.
#[derive(Debug, Clone)]
pub struct ThreadWatch {
    level: Level,
    /// The last readings, oldest first: at most [`WINDOW_TICKS`] + 1, one a tick.
    readings: VecDeque<SchedStat>,
    calm_ticks: u32,
}

impl Default for ThreadWatch {
    fn default() -> Self {
        Self::new()
    }
}

impl ThreadWatch {
    /// A thread at [`Level::Idle`] with no reading yet.
    pub fn new() -> Self {
        Self {
            level: Level::Idle,
            readings: VecDeque::with_capacity(WINDOW_TICKS + 1),
            calm_ticks: 0,
        }
    }

    /// The level the rule has the thread at.
    pub fn level(&self) -> Level {
        self.level
    }

    /// Takes the reading at the end of a tick of length `tick`; returns the level to move the thread to
    /// when it changes.
    pub fn observe(&mut self, now: SchedStat, tick: Duration) -> Option<Level> {
        if self.readings.len() > WINDOW_TICKS {
            self.readings.pop_front();
        }
        self.readings.push_back(now);
        let oldest = *self.readings.front()?;
        if self.readings.len() <= WINDOW_TICKS {
            // Not a whole window yet.
            return None;
        }
        let waited = now.wait_ns.saturating_sub(oldest.wait_ns);
        let window_ns = u64::try_from(tick.as_nanos())
            .unwrap_or(u64::MAX)
            .saturating_mul(WINDOW_TICKS as u64);
        let share = waited as f64 / window_ns.max(1) as f64;
        match self.level {
            Level::Idle => (share >= STARVED_SHARE).then(|| self.move_to(Level::Raised)),
            Level::Raised => {
                self.calm_ticks = if share <= CALM_SHARE {
                    self.calm_ticks + 1
                } else {
                    0
                };
                (self.calm_ticks >= LOWER_AFTER).then(|| self.move_to(Level::Idle))
            }
        }
    }

    /// Starts the next judgement afresh: the thread's level was changed, or could not be.
    fn move_to(&mut self, level: Level) -> Level {
        self.level = level;
        self.calm_ticks = 0;
        if let Some(&last) = self.readings.back() {
            self.readings.clear();
            self.readings.push_back(last);
        }
        level
    }
}

/// The background threads alive now, by thread id.
fn watched() -> &'static Mutex<BTreeMap<ThreadId, ThreadWatch>> {
    static WATCHED: OnceLock<Mutex<BTreeMap<ThreadId, ThreadWatch>>> = OnceLock::new();
    WATCHED.get_or_init(|| Mutex::new(BTreeMap::new()))
}

/// Starts the guard thread once per process. It takes the caller's scheduling policy and CPU affinity, so
/// call it from a thread at normal priority before any background thread exists.
pub fn start() {
    static STARTED: OnceLock<()> = OnceLock::new();
    STARTED.get_or_init(|| {
        let spawned = std::thread::Builder::new()
            .name("zdsync-guard".into())
            .spawn(run);
        if let Err(error) = spawned {
            tracing::warn!(%error, "cannot start the starvation guard; background threads stay idle-priority");
        }
    });
}

/// Puts thread `tid` under the guard.
pub(super) fn watch(tid: ThreadId) {
    if let Ok(mut threads) = watched().lock() {
        threads.insert(tid, ThreadWatch::new());
    }
}

/// Takes thread `tid` from the guard (it is ending).
pub(super) fn unwatch(tid: ThreadId) {
    if let Ok(mut threads) = watched().lock() {
        threads.remove(&tid);
    }
}

/// The guard's loop: one tick, then every watched thread's reading, for the life of the process.
fn run() {
    let mut last_raise_logged: Option<Instant> = None;
    loop {
        std::thread::sleep(TICK);
        let Ok(mut threads) = watched().lock() else {
            return;
        };
        threads.retain(|&tid, watch| {
            if priority::level_of(tid).is_none() {
                // Not a background thread (any more): a thread id reused by a thread that never was one must
                // not be touched.
                return false;
            }
            let Some(stat) = read_schedstat(tid) else {
                // The thread ended between its last work and its deregistration, or the kernel keeps no
                // scheduler statistics: nothing to guard.
                return false;
            };
            let Some(level) = watch.observe(stat, TICK) else {
                return true;
            };
            match priority::set_level(tid, level) {
                Ok(()) => log_move(tid, level, stat, &mut last_raise_logged),
                // The rule keeps the level it asked for, so a thread that cannot be raised is not retried
                // every tick, only after it has been calm again.
                Err(error) => refused(tid, level, &error),
            }
            true
        });
    }
}

fn log_move(tid: ThreadId, level: Level, stat: SchedStat, last_logged: &mut Option<Instant>) {
    if level == Level::Idle {
        tracing::debug!(tid, "background thread calm again: back to SCHED_IDLE");
        return;
    }
    let now = Instant::now();
    if last_logged.is_none_or(|at| now.duration_since(at) >= RAISE_LOG_INTERVAL) {
        *last_logged = Some(now);
        tracing::info!(
            tid,
            waited_ms = stat.wait_ns / 1_000_000,
            "a background thread was kept off the CPU by other load; running it at SCHED_BATCH nice {} until the host calms down",
            priority::RAISED_NICE
        );
    } else {
        tracing::debug!(tid, "background thread starved: raised");
    }
}

fn refused(tid: ThreadId, level: Level, error: &std::io::Error) {
    static WARNED: AtomicBool = AtomicBool::new(false);
    if level == Level::Raised && !WARNED.swap(true, Ordering::Relaxed) {
        tracing::warn!(
            tid,
            %error,
            "a background thread is starved of CPU but cannot be raised: allow nice +{} (systemd: LimitNICE=+{}, as the shipped unit does)",
            priority::RAISED_NICE,
            priority::RAISED_NICE
        );
    } else {
        tracing::debug!(tid, %error, ?level, "cannot move a background thread");
    }
}

#[cfg(target_os = "linux")]
fn read_schedstat(tid: ThreadId) -> Option<SchedStat> {
    let text = std::fs::read_to_string(format!("/proc/self/task/{tid}/schedstat")).ok()?;
    SchedStat::parse(&text)
}

#[cfg(not(target_os = "linux"))]
fn read_schedstat(_tid: ThreadId) -> Option<SchedStat> {
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    const MS: u64 = 1_000_000;

    fn stat(run_ms: u64, wait_ms: u64) -> SchedStat {
        SchedStat {
            run_ns: run_ms * MS,
            wait_ns: wait_ms * MS,
        }
    }

    /// Feeds readings whose wait grows by `waits[i]` ms each tick; returns the moves.
    fn feed(watch: &mut ThreadWatch, start: &mut u64, waits: &[u64]) -> Vec<Option<Level>> {
        waits
            .iter()
            .map(|w| {
                *start += w;
                watch.observe(stat(0, *start), TICK)
            })
            .collect()
    }

    /// Pins the calling thread to `cpu`.
    #[cfg(target_os = "linux")]
    fn pin_to(cpu: usize) {
        // SAFETY: a zeroed cpu_set_t is an empty set; the calls read and write only the set given.
        unsafe {
            let mut set: libc::cpu_set_t = std::mem::zeroed();
            libc::CPU_SET(cpu, &mut set);
            assert_eq!(
                libc::sched_setaffinity(0, std::mem::size_of::<libc::cpu_set_t>(), &raw const set),
                0,
                "pin to cpu {cpu}"
            );
        }
    }

    /// The first CPU this process may run on.
    #[cfg(target_os = "linux")]
    fn first_allowed_cpu() -> usize {
        // SAFETY: as in `pin_to`.
        unsafe {
            let mut set: libc::cpu_set_t = std::mem::zeroed();
            assert_eq!(
                libc::sched_getaffinity(0, std::mem::size_of::<libc::cpu_set_t>(), &raw mut set),
                0
            );
            (0..libc::CPU_SETSIZE as usize)
                .find(|&cpu| libc::CPU_ISSET(cpu, &set))
                .expect("some cpu is allowed")
        }
    }

    /// Polls `check` until it holds or `what` times out after a generous deadline.
    #[cfg(target_os = "linux")]
    fn wait_for(what: &str, check: impl Fn() -> bool) {
        let deadline = Instant::now() + Duration::from_secs(60);
        while !check() {
            assert!(Instant::now() < deadline, "timed out waiting for {what}");
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    /// A background thread that shares its one CPU with a busy loop is raised, and goes back to
    /// `SCHED_IDLE` once it no longer waits for a CPU.
    #[cfg(target_os = "linux")]
    #[test]
    fn the_guard_raises_a_background_thread_a_busy_loop_starves_and_lowers_it_after() {
        use std::sync::atomic::AtomicI32;
        use std::sync::Arc;

        start();
        let cpu = first_allowed_cpu();
        let stop_all = Arc::new(AtomicBool::new(false));
        let stop_busy = Arc::new(AtomicBool::new(false));
        let tid = Arc::new(AtomicI32::new(0));
        let spinning = Arc::new(AtomicBool::new(true));
        let background = {
            let (stop_all, tid, spinning) = (stop_all.clone(), tid.clone(), spinning.clone());
            std::thread::spawn(move || {
                pin_to(cpu);
                super::super::enter_background();
                tid.store(
                    priority::current_thread_id().expect("linux"),
                    Ordering::SeqCst,
                );
                let mut spins = 0_u64;
                while spinning.load(Ordering::Relaxed) {
                    spins = std::hint::black_box(spins.wrapping_add(1));
                }
                // Blocked, as a sync thread waiting for Zendesk: it wants no CPU, so it is calm.
                while !stop_all.load(Ordering::Relaxed) {
                    std::thread::park();
                }
                super::super::leave_background();
            })
        };
        wait_for("the background thread", || tid.load(Ordering::SeqCst) != 0);
        let tid = tid.load(Ordering::SeqCst);
        assert_eq!(priority::level_of(tid), Some(Level::Idle));
        // Raising needs RLIMIT_NICE to allow nice 10, which root always has; say so where it does not.
        let probe = std::thread::spawn(|| {
            priority::lower_current_thread().and_then(|()| {
                priority::set_level(priority::current_thread_id().expect("linux"), Level::Raised)
            })
        })
        .join()
        .expect("probe thread");
        if let Err(error) = probe {
            spinning.store(false, Ordering::Relaxed);
            stop_all.store(true, Ordering::Relaxed);
            background.thread().unpark();
            background.join().expect("background thread");
            eprintln!("skipped: this process may not leave SCHED_IDLE ({error}); run as root or with RLIMIT_NICE >= 10");
            return;
        }
        let busy = {
            let stop_busy = stop_busy.clone();
            std::thread::spawn(move || {
                pin_to(cpu);
                let mut spins = 0_u64;
                while !stop_busy.load(Ordering::Relaxed) {
                    spins = std::hint::black_box(spins.wrapping_add(1));
                }
            })
        };
        wait_for("the starved thread to be raised", || {
            priority::level_of(tid) == Some(Level::Raised)
        });
        stop_busy.store(true, Ordering::Relaxed);
        busy.join().expect("busy thread");
        spinning.store(false, Ordering::Relaxed);
        wait_for("the thread to go back to SCHED_IDLE", || {
            priority::level_of(tid) == Some(Level::Idle)
        });
        stop_all.store(true, Ordering::Relaxed);
        background.thread().unpark();
        background.join().expect("background thread");
        assert!(
            !watched().lock().expect("registry").contains_key(&tid),
            "an ended thread leaves the guard"
        );
    }

    #[test]
    fn schedstat_lines_parse_and_odd_ones_do_not() {
        assert_eq!(
            SchedStat::parse("123 456 7\n"),
            Some(SchedStat {
                run_ns: 123,
                wait_ns: 456
            })
        );
        assert_eq!(SchedStat::parse(""), None);
        assert_eq!(SchedStat::parse("12"), None);
        assert_eq!(SchedStat::parse("x 1 2"), None);
        assert_eq!(SchedStat::parse("-1 2 3"), None);
    }

    #[test]
    fn a_thread_starved_over_a_window_is_raised_and_lowered_once_calm() {
        let mut watch = ThreadWatch::new();
        let mut wait = 0;
        // The window fills first; a lump of 1.4 s in 2 s is under three quarters.
        assert_eq!(
            feed(&mut watch, &mut wait, &[0, 0, 1_400, 0, 0, 0]),
            [None; 6]
        );
        assert_eq!(watch.level(), Level::Idle);
        // A starved thread's wait arrives in lumps when it gets a core (here 1.5 s every third tick).
        assert_eq!(
            feed(&mut watch, &mut wait, &[0, 1_500]),
            [None, Some(Level::Raised)],
            "1.5 s of waiting within 2 s"
        );
        // The window starts again; any window that is not calm restarts the calm streak.
        let mut moves = feed(&mut watch, &mut wait, &[0; 12]);
        moves.extend(feed(&mut watch, &mut wait, &[300]));
        assert_eq!(moves, [None; 13]);
        let moves = feed(&mut watch, &mut wait, &[0; 13]);
        assert_eq!(
            moves[..12],
            [None; 12],
            "the 300 ms stays in the window 4 ticks"
        );
        assert_eq!(moves[12], Some(Level::Idle));
        assert_eq!(watch.level(), Level::Idle);
    }

    #[test]
    fn a_thread_that_waits_less_than_three_quarters_of_each_tick_stays_idle() {
        let mut watch = ThreadWatch::new();
        let mut wait = 0;
        assert!(feed(&mut watch, &mut wait, &[374; 50])
            .iter()
            .all(Option::is_none));
        // A counter that goes backwards (a reused thread id) is a calm tick, not an overflow.
        assert_eq!(watch.observe(stat(0, 0), TICK), None);
    }
}
