//! The scheduling levels of a background thread and the Linux calls that set and read them.
//!
//! A background thread normally runs under `SCHED_IDLE`: it gets a core only when nothing else wants it,
//! so reads stay fast while a sync runs. On a host kept busy by other work that can mean no core at all,
//! for as long as the load lasts, and a commit preempted there holds the store's write lock against admin
//! writes. The starvation guard ([`super::guard`]) then raises the thread to `SCHED_BATCH` at nice
//! [`RAISED_NICE`]: about a tenth of a core against one busy loop, enough to keep a sync progressing
//! without taking the host from its owner.
//!
//! Linux lets an unprivileged thread leave `SCHED_IDLE` only if `RLIMIT_NICE` allows its nice value
//! (`sched(7)`; the kernel's `user_check_sched_setscheduler`). A background thread therefore sets its nice
//! value to [`RAISED_NICE`] before it enters `SCHED_IDLE`, so a limit of `+10` (`LimitNICE=+10` in the
//! systemd unit) is all a raise needs; no capability.

/// The nice value of every background thread; a raised thread runs `SCHED_BATCH` at this nice value.
pub const RAISED_NICE: i32 = 10;

/// Where a background thread stands with the scheduler.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Level {
    /// `SCHED_IDLE`: runs only on a core nothing else wants.
    Idle,
    /// `SCHED_BATCH` at nice [`RAISED_NICE`]: a small fair share, given while the thread is starved.
    Raised,
}

/// A Linux thread id (what `gettid` returns).
pub type ThreadId = i32;

/// The calling thread's id, where the OS has one the scheduler calls accept.
#[cfg(target_os = "linux")]
pub fn current_thread_id() -> Option<ThreadId> {
    // SAFETY: gettid has no preconditions and cannot fail.
    Some(unsafe { libc::gettid() })
}

/// The calling thread's id, where the OS has one the scheduler calls accept.
#[cfg(not(target_os = "linux"))]
pub fn current_thread_id() -> Option<ThreadId> {
    None
}

/// Makes the calling thread a low-priority one: nice [`RAISED_NICE`] first (so a later raise stays within
/// `RLIMIT_NICE`), then `SCHED_IDLE`. Only the second step's failure is an error: without the first the
/// thread is still idle-priority, it just cannot be raised without a larger limit.
#[cfg(target_os = "linux")]
pub fn lower_current_thread() -> std::io::Result<()> {
    // SAFETY: a plain syscall on the calling thread (0 = this thread on Linux, where nice is per thread).
    if unsafe { libc::setpriority(libc::PRIO_PROCESS, 0, RAISED_NICE) } != 0 {
        let error = std::io::Error::last_os_error();
        tracing::debug!(%error, "cannot set a background thread's nice value");
    }
    set_policy(0, libc::SCHED_IDLE)
}

/// Makes the calling thread a low-priority one (nothing to do off Linux).
#[cfg(not(target_os = "linux"))]
pub fn lower_current_thread() -> std::io::Result<()> {
    Ok(())
}

/// Moves thread `tid` of this process to `level`. Fails with `EPERM` when `RLIMIT_NICE` forbids a raise,
/// and with `ESRCH` when the thread has ended.
#[cfg(target_os = "linux")]
pub fn set_level(tid: ThreadId, level: Level) -> std::io::Result<()> {
    match level {
        Level::Idle => set_policy(tid, libc::SCHED_IDLE),
        Level::Raised => set_policy(tid, libc::SCHED_BATCH),
    }
}

/// Moves thread `tid` to `level` (nothing to do off Linux).
#[cfg(not(target_os = "linux"))]
pub fn set_level(_tid: ThreadId, _level: Level) -> std::io::Result<()> {
    Ok(())
}

/// The level thread `tid` runs at now: `None` for a policy that is neither (a thread that never became a
/// background thread) or when it cannot be read.
#[cfg(target_os = "linux")]
pub fn level_of(tid: ThreadId) -> Option<Level> {
    // SAFETY: a plain syscall that reads a thread's policy.
    match unsafe { libc::sched_getscheduler(tid) } {
        libc::SCHED_IDLE => Some(Level::Idle),
        libc::SCHED_BATCH => Some(Level::Raised),
        _ => None,
    }
}

/// The level thread `tid` runs at now (never known off Linux).
#[cfg(not(target_os = "linux"))]
pub fn level_of(_tid: ThreadId) -> Option<Level> {
    None
}

#[cfg(target_os = "linux")]
fn set_policy(tid: ThreadId, policy: libc::c_int) -> std::io::Result<()> {
    let param = libc::sched_param { sched_priority: 0 };
    // SAFETY: a plain syscall with a parameter that lives across it; Linux applies policies per thread.
    let result = unsafe { libc::sched_setscheduler(tid, policy, &raw const param) };
    if result == 0 {
        Ok(())
    } else {
        Err(std::io::Error::last_os_error())
    }
}
