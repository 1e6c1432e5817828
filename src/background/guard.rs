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
//! to `SCHED_IDLE` after [`LOWER_AFTER`] ticks in which threads ran and none waited longer than it ran, or
//! in which the process's own threads were what kept them waiting. Ticks in which every thread was blocked
//! (waiting for Zendesk) tell nothing and change nothing. Waits the daemon's own serving causes are by
//! design and never raise ([`super::own_load`]); on a quiet host a background thread never waits that long,
//! so reads keep their priority.
use std::collections::{BTreeMap, VecDeque};
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicU8, Ordering};
use std::sync::{Mutex, OnceLock};
use std::time::{Duration, Instant};

use super::own_load::{self, OwnLoadWindow};
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

    /// Takes every thread's state after a tick, and whether load from outside the process kept the CPUs
    /// busy over the window ([`super::own_load`]); returns the level to move all threads to when it changes.
    /// Waits the process's own serving caused neither raise the threads nor keep them raised.
    pub fn observe(
        &mut self,
        states: impl IntoIterator<Item = ThreadState>,
        host_busy: bool,
    ) -> Option<Level> {
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
            Level::Idle if starved && host_busy => Some(self.move_to(Level::Raised)),
            Level::Idle => None,
            Level::Raised => {
                if host_busy && (starved || contended) {
                    self.calm_ticks = 0;
                } else if calm || !host_busy {
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

/// How many times the guard raised the background threads since the process started.
static RAISES: AtomicU64 = AtomicU64::new(0);

/// How many times the guard raised the background threads since the process started (benches print it).
pub fn raises() -> u64 {
    RAISES.load(Ordering::Relaxed)
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
    let mut own_load = OwnLoadWindow::new(own_load::allowed_cpus());
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
        // Unreadable: every starvation counts as the host's, as before the process's own load was told apart.
        let host_busy = own_load::process_cpu_time()
            .and_then(|cpu_time| own_load.push(cpu_time, TICK))
            .unwrap_or(true);
        let Some(level) = judge.observe(states, host_busy) else {
            continue;
        };
        CURRENT_LEVEL.store(encode(level), Ordering::Relaxed);
        if level == Level::Raised {
            RAISES.fetch_add(1, Ordering::Relaxed);
        }
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

    /// A background thread that shares its one CPU with another process's busy loop is raised, and a background thread
    /// that starts while the host is busy starts raised. (Lowering needs a calm CPU, which a test machine
    /// running other tests cannot promise; [`HostJudge`]'s tests cover it.)
    #[cfg(target_os = "linux")]
    #[test]
    fn the_guard_raises_background_threads_another_process_starves() {
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
        // The load comes from another process, as on a busy host: the process's own load never raises.
        let mut busy = std::thread::spawn(move || {
            pin_to(cpu);
            // A forked child inherits the forking thread's affinity.
            std::process::Command::new("sh")
                .args(["-c", "while :; do :; done"])
                .spawn()
                .expect("spawn a busy loop")
        })
        .join()
        .expect("spawning thread");
        let finish = |threads: Vec<std::thread::JoinHandle<()>>, busy: &mut std::process::Child| {
            stop.store(true, Ordering::Relaxed);
            busy.kill().expect("stop the busy loop");
            busy.wait().expect("reap the busy loop");
            for thread in threads {
                thread.thread().unpark();
                thread.join().expect("test thread");
            }
        };
        if let Err(error) = probe {
            finish(vec![starved], &mut busy);
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
        finish(vec![starved, late], &mut busy);
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
        assert_eq!(judge.observe([Unknown, Quiet, Calm, Contended], true), None);
        assert_eq!(judge.level(), Level::Idle);
        assert_eq!(judge.observe([Quiet, Starved], true), Some(Level::Raised));
        assert_eq!(judge.level(), Level::Raised);
        // Calm ticks count; quiet ones (every thread blocked on Zendesk) neither count nor reset.
        for _ in 0..LOWER_AFTER - 1 {
            assert_eq!(judge.observe([Calm, Quiet], true), None);
            assert_eq!(judge.observe([Quiet, Quiet], true), None);
        }
        // Contention anywhere restarts the count.
        assert_eq!(judge.observe([Calm, Contended], true), None);
        for _ in 0..LOWER_AFTER - 1 {
            assert_eq!(judge.observe([Calm], true), None);
        }
        assert_eq!(judge.observe([Calm], true), Some(Level::Idle));
        assert_eq!(judge.level(), Level::Idle);
        assert_eq!(judge.observe(std::iter::empty(), true), None);
    }

    #[test]
    fn waits_the_process_itself_causes_neither_raise_nor_keep_threads_raised() {
        use ThreadState::{Contended, Quiet, Starved};
        let mut judge = HostJudge::new();
        // Serving fills the cores: a starved sync is working as designed.
        for _ in 0..3 * LOWER_AFTER {
            assert_eq!(judge.observe([Starved], false), None);
        }
        assert_eq!(judge.level(), Level::Idle);
        assert_eq!(judge.observe([Starved], true), Some(Level::Raised));
        // The host's load went, the process's own serving stayed: the threads go back even though they
        // still wait, and quiet ticks count too.
        for tick in 1..LOWER_AFTER {
            let states = if tick % 2 == 0 { [Starved] } else { [Quiet] };
            assert_eq!(judge.observe(states, false), None);
        }
        assert_eq!(judge.observe([Contended], false), Some(Level::Idle));
    }
}
