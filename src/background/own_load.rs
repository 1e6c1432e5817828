//! Whose load keeps background threads off the CPU: the daemon's own or the host's.
//!
//! Serving gRPC is meant to take the cores from a sync ([`super::priority`]): a `SCHED_IDLE` thread that
//! waits while the process's own threads fill every core is working as designed, and raising it then only
//! slows reads (issue #14: a closed-loop read load kept the sync raised and doubled the read p99). The
//! starvation guard raises background threads only when the process itself left a core's worth of its
//! CPUs unused over the window: then something else on the host took them.
//!
//! The process's CPU time comes from `/proc/self/stat` (`utime` + `stime`, in clock ticks), the CPUs it
//! may use from its affinity mask. Under a cgroup CPU quota the mask overstates what the process may use,
//! so the guard then reads any starvation as the host's, which is how it behaved before this rule.
use std::collections::VecDeque;
use std::time::Duration;

use super::guard::WINDOW_TICKS;

/// The share of one core the process must have left unused over a window for its background threads'
/// starvation to count as the host's doing (the guard's own starved share).
const UNUSED_CORE_SHARE: f64 = 0.75;

/// The process's CPU use over the last [`WINDOW_TICKS`] ticks, and the CPUs it may run on.
#[derive(Debug, Clone)]
pub struct OwnLoadWindow {
    /// Cumulative CPU time of the whole process at the end of each tick, oldest first.
    readings: VecDeque<Duration>,
    /// CPUs the process may run on.
    cpus: u32,
}

impl OwnLoadWindow {
    /// An empty window for a process that may run on `cpus` CPUs.
    pub fn new(cpus: u32) -> Self {
        Self {
            readings: VecDeque::with_capacity(WINDOW_TICKS + 1),
            cpus: cpus.max(1),
        }
    }

    /// Takes the process's cumulative CPU time at the end of a tick of length `tick`. Returns whether
    /// load from outside the process kept the CPUs busy over the window: `None` until a whole window is
    /// read.
    pub fn push(&mut self, cpu_time: Duration, tick: Duration) -> Option<bool> {
        if self.readings.len() > WINDOW_TICKS {
            self.readings.pop_front();
        }
        self.readings.push_back(cpu_time);
        if self.readings.len() <= WINDOW_TICKS {
            return None;
        }
        let oldest = *self.readings.front()?;
        let used = cpu_time.saturating_sub(oldest).as_secs_f64();
        let window = tick.as_secs_f64() * WINDOW_TICKS as f64;
        Some(used <= (f64::from(self.cpus) - UNUSED_CORE_SHARE) * window)
    }
}

/// Parses `/proc/<pid>/stat`: the process's `utime` + `stime` in clock ticks; `None` for another shape.
pub fn parse_cpu_ticks(stat: &str) -> Option<u64> {
    // The command name (field 2) may hold spaces and parentheses: the fields after it start at the last ')'.
    let after_name = &stat[stat.rfind(')')? + 1..];
    let mut fields = after_name.split_ascii_whitespace();
    // Fields 3..=13 come first; utime is field 14 and stime field 15 (proc(5)).
    let utime: u64 = fields.nth(11)?.parse().ok()?;
    let stime: u64 = fields.next()?.parse().ok()?;
    utime.checked_add(stime)
}

/// The whole process's CPU time so far; `None` where it cannot be read.
#[cfg(target_os = "linux")]
pub fn process_cpu_time() -> Option<Duration> {
    // SAFETY: sysconf has no preconditions.
    let ticks_per_second = u64::try_from(unsafe { libc::sysconf(libc::_SC_CLK_TCK) }).ok()?;
    if ticks_per_second == 0 {
        return None;
    }
    let ticks = parse_cpu_ticks(&std::fs::read_to_string("/proc/self/stat").ok()?)?;
    Some(Duration::from_secs_f64(
        ticks as f64 / ticks_per_second as f64,
    ))
}

/// The whole process's CPU time so far (never known off Linux).
#[cfg(not(target_os = "linux"))]
pub fn process_cpu_time() -> Option<Duration> {
    None
}

/// The CPUs the calling thread may run on (its affinity mask); at least 1.
#[cfg(target_os = "linux")]
pub fn allowed_cpus() -> u32 {
    // SAFETY: a zeroed cpu_set_t is an empty set; the call writes only into the set given.
    let count = unsafe {
        let mut set: libc::cpu_set_t = std::mem::zeroed();
        if libc::sched_getaffinity(0, std::mem::size_of::<libc::cpu_set_t>(), &raw mut set) == 0 {
            libc::CPU_COUNT(&set)
        } else {
            0
        }
    };
    u32::try_from(count).unwrap_or(0).max(1)
}

/// The CPUs the calling thread may run on (the machine's count off Linux).
#[cfg(not(target_os = "linux"))]
pub fn allowed_cpus() -> u32 {
    std::thread::available_parallelism()
        .ok()
        .and_then(|count| u32::try_from(count.get()).ok())
        .unwrap_or(1)
}

#[cfg(test)]
mod tests {
    use super::*;

    const TICK: Duration = Duration::from_millis(500);

    #[test]
    fn stat_lines_parse_even_with_odd_command_names() {
        let line =
            "4242 (zd sync (x)) S 1 4242 4242 0 -1 4194560 1 0 0 0 150 37 0 0 20 0 9 0 1 1 1";
        assert_eq!(parse_cpu_ticks(line), Some(187));
        assert_eq!(parse_cpu_ticks("4242 zdsync S 1"), None);
        assert_eq!(parse_cpu_ticks("4242 (zdsync) S 1 2 3"), None);
        assert_eq!(parse_cpu_ticks("1 (z) S 1 1 1 0 -1 0 0 0 0 0 x 3 0"), None);
    }

    /// Pushes readings that grow by `used` of CPU time per tick; returns the verdicts.
    fn push(window: &mut OwnLoadWindow, at: &mut Duration, used: &[Duration]) -> Vec<Option<bool>> {
        used.iter()
            .map(|step| {
                *at += *step;
                window.push(*at, TICK)
            })
            .collect()
    }

    #[test]
    fn starvation_is_the_hosts_only_when_the_process_left_a_core_unused() {
        let mut window = OwnLoadWindow::new(2);
        let mut at = Duration::ZERO;
        let ms = Duration::from_millis;
        // A window is four ticks after its first reading.
        assert_eq!(push(&mut window, &mut at, &[ms(0); 4]), [None; 4]);
        // Idle process: whatever keeps its background threads waiting is someone else.
        assert_eq!(push(&mut window, &mut at, &[ms(0)]), [Some(true)]);
        // Serving fills both cores (1 s of CPU per 500 ms tick): the waits are the process's own doing.
        assert_eq!(
            push(&mut window, &mut at, &[ms(1_000); 4]),
            [Some(true), Some(true), Some(false), Some(false)]
        );
        // 1.25 cores used leaves 0.75 of a core to someone else: the host's again.
        assert_eq!(
            push(&mut window, &mut at, &[ms(625); 4]),
            [Some(false), Some(false), Some(false), Some(true)]
        );
        assert_eq!(
            push(&mut window, &mut at, &[ms(626)]),
            [Some(false)],
            "just over 1.25 cores"
        );
        // A clock that goes backwards reads as nothing used.
        assert_eq!(window.push(Duration::ZERO, TICK), Some(true));
    }

    #[test]
    fn a_one_cpu_process_blames_the_host_only_while_it_uses_under_a_quarter_core() {
        let mut window = OwnLoadWindow::new(1);
        let mut at = Duration::ZERO;
        let verdicts = push(&mut window, &mut at, &[Duration::from_millis(130); 5]);
        assert_eq!(verdicts.last(), Some(&Some(false)));
        assert!(OwnLoadWindow::new(0).cpus == 1);
    }

    #[cfg(target_os = "linux")]
    #[test]
    fn this_process_has_a_cpu_time_and_cpus() {
        let before = process_cpu_time().expect("linux has /proc/self/stat");
        let spin_until = std::time::Instant::now() + Duration::from_millis(50);
        while std::time::Instant::now() < spin_until {
            std::hint::spin_loop();
        }
        assert!(process_cpu_time().expect("again") >= before);
        assert!(allowed_cpus() >= 1);
    }
}
