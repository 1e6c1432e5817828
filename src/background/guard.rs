//! The starvation guard: a thread at normal priority that notices background threads kept off the CPU
//! and raises them until the host calms down (issue #14: a busy host must not stall a sync forever, nor an
//! admin write wait behind a preempted commit).
//!
//! Every [`TICK`] it reads each background thread's scheduler statistics
//! (`/proc/self/task/<tid>/schedstat`: time on a CPU, time runnable but waiting for one). The kernel adds a
//! thread's wait to that file only when the thread gets a CPU again, so a starved thread's wait arrives in
//! lumps, a second or more at a time; each thread is therefore judged over a sliding window of
//! [`WINDOW_TICKS`] ticks ([`Window`], [`ThreadState`]).
//!
//! A busy host is a condition of the host, not of one thread, and a sync hands its work from thread to
//! thread (the run's task, then a commit on a blocking-pool thread that may have just started), so the
//! level is one for all background threads ([`HostJudge`]): all are raised ([`Level::Raised`]) as soon as
//! one waited for a core three quarters of a window, new ones start at the current level, and all go back
//! to `SCHED_IDLE` after [`LOWER_AFTER`] ticks in which threads ran and none waited longer than it ran.
//! Ticks in which every thread was blocked (waiting for Zendesk) tell nothing and change nothing. On a
//! quiet host a background thread never waits that long, so reads keep their priority.
use std::collections::{BTreeMap, VecDeque};
use std::sync::atomic::{AtomicBool, AtomicU8, Ordering};
use std::sync::{Mutex, OnceLock};
use std::time::{Duration, Instant};

use super::priority::{self, Level, ThreadId};

/// How often the guard samples the background threads.
pub const TICK: Duration = Duration::from_millis(500);

/// The ticks a thread's judgement spans.
pub const WINDOW_TICKS: usize = 4;

/// Consecutive calm ticks before raised threads go back to `SCHED_IDLE`.
pub const LOWER_AFTER: u32 = 10;

/// A thread is starved when it waited for a core at least this share of a window: under a busy loop a
/// `SCHED_IDLE` thread waits 99 % of the time, while serving gRPC at half of what saturates the cores
/// keeps it waiting well under this.
const STARVED_SHARE: f64 = 0.75;

/// A thread that ran and waited less than this share of a window was blocked: its window tells nothing.
const ACTIVE_SHARE: f64 = 0.01;

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

/// What one thread's last window shows.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ThreadState {
    /// Not a whole window read yet.
    Unknown,
    /// Blocked nearly all the window: nothing to learn.
    Quiet,
    /// Ran, and waited for a core no longer than it ran.
    Calm,
    /// Waited for a core longer than it ran, but under the starved share.
    Contended,
    /// Waited for a core at least [`STARVED_SHARE`] of the window.
    Starved,
}

/// One thread's readings over the last [`WINDOW_TICKS`] ticks.
#[derive(Debug, Clone, Default)]
pub struct Window {
    /// Oldest first: at most [`WINDOW_TICKS`] + 1, one a tick.
    readings: VecDeque<SchedStat>,
}

impl Window {
    /// Takes the reading at the end of a tick of length `tick`; returns what the window now shows.
    pub fn push(&mut self, now: SchedStat, tick: Duration) -> ThreadState {
        if self.readings.len() > WINDOW_TICKS {
            self.readings.pop_front();
        }
        self.readings.push_back(now);
        let Some(oldest) = self.readings.front().copied() else {
            return ThreadState::Unknown;
        };
        if self.readings.len() <= WINDOW_TICKS {
            return ThreadState::Unknown;
        }
        // A counter that goes backwards (a reused thread id) reads as nothing done.
        let waited = now.wait_ns.saturating_sub(oldest.wait_ns);
        let ran = now.run_ns.saturating_sub(oldest.run_ns);
        let window_ns = u64::try_from(tick.as_nanos())
            .unwrap_or(u64::MAX)
            .saturating_mul(WINDOW_TICKS as u64)
            .max(1) as f64;
        if waited as f64 >= STARVED_SHARE * window_ns {
            ThreadState::Starved
        } else if (waited.saturating_add(ran) as f64) < ACTIVE_SHARE * window_ns {
            ThreadState::Quiet
        } else if waited <= ran {
            ThreadState::Calm
        } else {
            ThreadState::Contended
        }
    }
}

/// The pure rule for the process's background threads: when to raise them all, and when to lower them.
#[derive(Debug, Clone)]
pub struct HostJudge {
    level: Level,
    calm_ticks: u32,
}

impl Default for HostJudge {
    fn default() -> Self {
        Self::new()
    }
}

impl HostJudge {
    /// All threads at [`Level::Idle`].
    pub fn new() -> Self {
        Self {
            level: Level::Idle,
            calm_ticks: 0,
        }
    }

    /// The level the rule has the threads at.
    pub fn level(&self) -> Level {
        self.level
    }

    /// Takes every thread's state after a tick; returns the level to move all threads to when it changes.
    pub fn observe(&mut self, states: impl IntoIterator<Item = ThreadState>) -> Option<Level> {
        let (mut starved, mut contended, mut calm) = (false, false, false);
        for state in states {
            match state {
                ThreadState::Starved => starved = true,
                ThreadState::Contended => contended = true,
                ThreadState::Calm => calm = true,
                ThreadState::Quiet | ThreadState::Unknown => {}
            }
        }
        match self.level {
            Level::Idle if starved => Some(self.move_to(Level::Raised)),
            Level::Idle => None,
            Level::Raised => {
                if starved || contended {
                    self.calm_ticks = 0;
                } else if calm {
                    self.calm_ticks += 1;
                }
                (self.calm_ticks >= LOWER_AFTER).then(|| self.move_to(Level::Idle))
            }
        }
    }

    fn move_to(&mut self, level: Level) -> Level {
        self.level = level;
        self.calm_ticks = 0;
        level
    }
}

/// The level every background thread runs at now (a [`Level`] as `u8`: new threads start at it).
static CURRENT_LEVEL: AtomicU8 = AtomicU8::new(0);

fn encode(level: Level) -> u8 {
    match level {
        Level::Idle => 0,
        Level::Raised => 1,
    }
}

/// The level background threads run at now; a new background thread takes it.
pub fn current_level() -> Level {
    if CURRENT_LEVEL.load(Ordering::Relaxed) == encode(Level::Raised) {
        Level::Raised
    } else {
        Level::Idle
    }
}

/// The background threads alive now, by thread id.
fn watched() -> &'static Mutex<BTreeMap<ThreadId, Window>> {
    static WATCHED: OnceLock<Mutex<BTreeMap<ThreadId, Window>>> = OnceLock::new();
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

/// Puts thread `tid` (already at `SCHED_IDLE`) under the guard, at the level the others run at.
pub(super) fn watch(tid: ThreadId) {
    if let Ok(mut threads) = watched().lock() {
        if current_level() == Level::Raised {
            if let Err(error) = priority::set_level(tid, Level::Raised) {
                tracing::debug!(tid, %error, "a new background thread stays at SCHED_IDLE");
            }
        }
        threads.insert(tid, Window::default());
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
    let mut judge = HostJudge::new();
    let mut last_raise_logged: Option<Instant> = None;
    loop {
        std::thread::sleep(TICK);
        let Ok(mut threads) = watched().lock() else {
            return;
        };
        let mut states = Vec::with_capacity(threads.len());
        threads.retain(|&tid, window| {
            if priority::level_of(tid).is_none() {
                // Not a background thread (any more): a thread id reused by a thread that never was one must
                // not be touched.
                return false;
            }
            // None: the thread ended between its last work and its deregistration, or the kernel keeps no
            // scheduler statistics; nothing to guard.
            read_schedstat(tid).is_some_and(|stat| {
                states.push(window.push(stat, TICK));
                true
            })
        });
        let Some(level) = judge.observe(states) else {
            continue;
        };
        CURRENT_LEVEL.store(encode(level), Ordering::Relaxed);
        let mut refused = None;
        for &tid in threads.keys() {
            if let Err(error) = priority::set_level(tid, level) {
                refused = Some(error);
            }
        }
        // The judge keeps the level it asked for, so threads that cannot be raised are not retried every
        // tick, only after the host has been calm again.
        match refused {
            Some(error) => log_refused(level, &error),
            None => log_move(level, threads.len(), &mut last_raise_logged),
        }
    }
}

fn log_move(level: Level, threads: usize, last_logged: &mut Option<Instant>) {
    if level == Level::Idle {
        tracing::debug!(
            threads,
            "the host is calm again: background threads back to SCHED_IDLE"
        );
        return;
    }
    let now = Instant::now();
    if last_logged.is_none_or(|at| now.duration_since(at) >= RAISE_LOG_INTERVAL) {
        *last_logged = Some(now);
        tracing::info!(
            threads,
            "other load on the host kept a background thread off the CPU; running background threads at SCHED_BATCH nice {} until the host calms down",
            priority::RAISED_NICE
        );
    } else {
        tracing::debug!(threads, "background threads starved: raised");
    }
}

fn log_refused(level: Level, error: &std::io::Error) {
    static WARNED: AtomicBool = AtomicBool::new(false);
    if level == Level::Raised && !WARNED.swap(true, Ordering::Relaxed) {
        tracing::warn!(
            %error,
            "a background thread is starved of CPU but cannot be raised: allow nice +{} (systemd: LimitNICE=+{}, as the shipped unit does)",
            priority::RAISED_NICE,
            priority::RAISED_NICE
        );
    } else {
        tracing::debug!(%error, ?level, "cannot move the background threads");
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

    /// A background thread that shares its one CPU with a busy loop is raised, and a background thread
    /// that starts while the host is busy starts raised. (Lowering needs a calm CPU, which a test machine
    /// running other tests cannot promise; [`HostJudge`]'s tests cover it.)
    #[cfg(target_os = "linux")]
    #[test]
    fn the_guard_raises_background_threads_a_busy_loop_starves() {
        use std::sync::atomic::AtomicI32;
        use std::sync::Arc;

        start();
        let cpu = first_allowed_cpu();
        let stop = Arc::new(AtomicBool::new(false));
        let spawn_background = |spin: bool| {
            let stop = stop.clone();
            let tid = Arc::new(AtomicI32::new(0));
            let handle = {
                let tid = tid.clone();
                std::thread::spawn(move || {
                    pin_to(cpu);
                    super::super::enter_background();
                    tid.store(
                        priority::current_thread_id().expect("linux"),
                        Ordering::SeqCst,
                    );
                    let mut spins = 0_u64;
                    while !stop.load(Ordering::Relaxed) {
                        if spin {
                            spins = std::hint::black_box(spins.wrapping_add(1));
                        } else {
                            std::thread::park();
                        }
                    }
                    super::super::leave_background();
                })
            };
            wait_for("a background thread to start", || {
                tid.load(Ordering::SeqCst) != 0
            });
            (handle, tid.load(Ordering::SeqCst))
        };
        let (starved, starved_tid) = spawn_background(true);
        // Raising needs RLIMIT_NICE to allow nice 10, which root always has; say so where it does not.
        let probe = std::thread::spawn(|| {
            priority::lower_current_thread().and_then(|()| {
                priority::set_level(priority::current_thread_id().expect("linux"), Level::Raised)
            })
        })
        .join()
        .expect("probe thread");
        let busy = {
            let stop = stop.clone();
            std::thread::spawn(move || {
                pin_to(cpu);
                let mut spins = 0_u64;
                while !stop.load(Ordering::Relaxed) {
                    spins = std::hint::black_box(spins.wrapping_add(1));
                }
            })
        };
        let finish = |threads: Vec<std::thread::JoinHandle<()>>| {
            stop.store(true, Ordering::Relaxed);
            for thread in threads {
                thread.thread().unpark();
                thread.join().expect("test thread");
            }
        };
        if let Err(error) = probe {
            finish(vec![starved, busy]);
            eprintln!("skipped: this process may not leave SCHED_IDLE ({error}); run as root or with RLIMIT_NICE >= 10");
            return;
        }
        wait_for("the starved thread to be raised", || {
            priority::level_of(starved_tid) == Some(Level::Raised)
        });
        assert_eq!(current_level(), Level::Raised);
        let (late, late_tid) = spawn_background(false);
        assert_eq!(
            priority::level_of(late_tid),
            Some(Level::Raised),
            "a thread that starts on a busy host starts raised"
        );
        finish(vec![starved, busy, late]);
        let threads = watched().lock().expect("registry");
        assert!(
            !threads.contains_key(&starved_tid) && !threads.contains_key(&late_tid),
            "ended threads leave the guard"
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

    /// Pushes readings that grow by (`run`, `wait`) ms each tick; returns the states.
    fn push(window: &mut Window, at: &mut (u64, u64), ticks: &[(u64, u64)]) -> Vec<ThreadState> {
        ticks
            .iter()
            .map(|(run, wait)| {
                at.0 += run;
                at.1 += wait;
                window.push(stat(at.0, at.1), TICK)
            })
            .collect()
    }

    #[test]
    fn a_window_tells_starved_from_contended_calm_and_quiet() {
        use ThreadState::{Calm, Contended, Quiet, Starved, Unknown};
        let mut window = Window::default();
        let mut at = (0, 0);
        // Four ticks make a window (2 s); the first reading is its start.
        assert_eq!(push(&mut window, &mut at, &[(0, 0); 4]), [Unknown; 4]);
        assert_eq!(push(&mut window, &mut at, &[(0, 0)]), [Quiet]);
        // A starved thread's wait arrives in lumps when it gets a core: 1.5 s in 2 s is starved.
        assert_eq!(
            push(
                &mut window,
                &mut at,
                &[(4, 0), (0, 1_500), (0, 0), (0, 0), (0, 0), (0, 0)]
            ),
            [Quiet, Starved, Starved, Starved, Starved, Quiet]
        );
        assert_eq!(
            push(
                &mut window,
                &mut at,
                &[(0, 0), (0, 0), (0, 0), (100, 1_400)]
            ),
            [Quiet, Quiet, Quiet, Contended],
            "1.4 s is under three quarters, but longer than it ran"
        );
        assert_eq!(
            push(
                &mut window,
                &mut at,
                &[(0, 0), (0, 0), (0, 0), (0, 0), (300, 300)]
            ),
            [Contended, Contended, Contended, Quiet, Calm]
        );
        assert_eq!(
            push(&mut window, &mut at, &[(5, 4)]),
            [Calm],
            "ran about as long as it waited"
        );
        // A counter that goes backwards (a reused thread id) reads as nothing done.
        assert_eq!(window.push(stat(0, 0), TICK), Quiet);
    }

    #[test]
    fn one_starved_thread_raises_all_and_only_calm_ticks_lower_them() {
        use ThreadState::{Calm, Contended, Quiet, Starved, Unknown};
        let mut judge = HostJudge::new();
        assert_eq!(judge.observe([Unknown, Quiet, Calm, Contended]), None);
        assert_eq!(judge.level(), Level::Idle);
        assert_eq!(judge.observe([Quiet, Starved]), Some(Level::Raised));
        assert_eq!(judge.level(), Level::Raised);
        // Calm ticks count; quiet ones (every thread blocked on Zendesk) neither count nor reset.
        for _ in 0..LOWER_AFTER - 1 {
            assert_eq!(judge.observe([Calm, Quiet]), None);
            assert_eq!(judge.observe([Quiet, Quiet]), None);
        }
        // Contention anywhere restarts the count.
        assert_eq!(judge.observe([Calm, Contended]), None);
        for _ in 0..LOWER_AFTER - 1 {
            assert_eq!(judge.observe([Calm]), None);
        }
        assert_eq!(judge.observe([Calm]), Some(Level::Idle));
        assert_eq!(judge.level(), Level::Idle);
        assert_eq!(judge.observe(std::iter::empty()), None);
    }
}
