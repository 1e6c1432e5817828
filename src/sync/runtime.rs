//! The threads sync runs execute on: a runtime of their own under Linux's `SCHED_IDLE` policy, so a thread
//! serving gRPC takes the CPU from them the moment it wakes and reads stay fast while a sync decodes and
//! commits pages; an otherwise idle machine syncs at full speed.
use std::future::Future;

use tokio::runtime::{Builder, Handle, Runtime};
use tokio::task::JoinHandle;

/// Worker threads of the sync runtime: a run is one task, and its page commits go to the blocking pool.
const SYNC_WORKERS: usize = 1;

/// Blocking threads of the sync runtime (page commits, store reads of a run).
const SYNC_BLOCKING_THREADS: usize = 4;

/// Where sync runs are spawned: a dedicated runtime when one could be built, else the caller's.
#[derive(Debug)]
pub struct SyncRuntime {
    handle: Handle,
    /// Owned so it lives as long as the engine; shut down without waiting when dropped.
    runtime: Option<Runtime>,
}

impl SyncRuntime {
    /// Builds the dedicated runtime; falls back to the current runtime (with a warning) if it cannot.
    pub fn start() -> Self {
        let built = Builder::new_multi_thread()
            .worker_threads(SYNC_WORKERS)
            .max_blocking_threads(SYNC_BLOCKING_THREADS)
            .thread_name("zdsync-sync")
            .on_thread_start(lower_thread_priority)
            .enable_all()
            .build();
        match built {
            Ok(runtime) => Self {
                handle: runtime.handle().clone(),
                runtime: Some(runtime),
            },
            Err(error) => {
                tracing::warn!(%error, "cannot start the sync threads; syncing on the serving threads");
                Self {
                    handle: Handle::current(),
                    runtime: None,
                }
            }
        }
    }

    /// Spawns a run on the sync threads.
    pub fn spawn<F>(&self, future: F) -> JoinHandle<F::Output>
    where
        F: Future + Send + 'static,
        F::Output: Send + 'static,
    {
        self.handle.spawn(future)
    }
}

impl Drop for SyncRuntime {
    fn drop(&mut self) {
        // The engine is dropped inside the serving runtime, where a blocking shutdown is not allowed; runs
        // were stopped at a page boundary before, and a commit still running finishes on its own thread.
        if let Some(runtime) = self.runtime.take() {
            runtime.shutdown_background();
        }
    }
}

/// Moves the calling thread to `SCHED_IDLE` (Linux applies scheduling policies per thread).
#[cfg(target_os = "linux")]
fn lower_thread_priority() {
    let param = libc::sched_param { sched_priority: 0 };
    // SAFETY: a plain syscall on the calling thread with a parameter that lives across it.
    let result = unsafe { libc::sched_setscheduler(0, libc::SCHED_IDLE, &param) };
    if result != 0 {
        tracing::debug!("cannot lower the priority of a sync thread");
    }
}

#[cfg(not(target_os = "linux"))]
fn lower_thread_priority() {}

#[cfg(test)]
mod tests {
    use super::*;

    #[cfg(target_os = "linux")]
    fn policy() -> i32 {
        // SAFETY: queries the calling thread's scheduling policy.
        unsafe { libc::sched_getscheduler(0) }
    }

    #[cfg(target_os = "linux")]
    #[tokio::test]
    async fn runs_and_their_commits_execute_on_idle_priority_threads() {
        assert_ne!(policy(), libc::SCHED_IDLE, "serving threads stay normal");
        let runtime = SyncRuntime::start();
        let (name, run_policy) = runtime
            .spawn(async {
                let name = std::thread::current().name().map(str::to_owned);
                (name, policy())
            })
            .await
            .expect("run task");
        assert_eq!(name.as_deref(), Some("zdsync-sync"));
        assert_eq!(run_policy, libc::SCHED_IDLE);
        let commit_policy = runtime
            .spawn(async {
                tokio::task::spawn_blocking(policy)
                    .await
                    .expect("blocking task")
            })
            .await
            .expect("run task");
        assert_eq!(commit_policy, libc::SCHED_IDLE, "commits run idle too");
        assert_ne!(policy(), libc::SCHED_IDLE);
    }
}
