//! The threads sync runs execute on: a runtime of their own whose threads are background threads
//! ([`crate::background`]: `SCHED_IDLE`, and their long loops step aside), so reads stay fast while a sync
//! decodes and commits pages; an otherwise idle machine syncs at full speed.
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
        // From this (serving) thread, so the guard runs at normal priority.
        crate::background::guard::start();
        let built = Builder::new_multi_thread()
            .worker_threads(SYNC_WORKERS)
            .max_blocking_threads(SYNC_BLOCKING_THREADS)
            .thread_name("zdsync-sync")
            .on_thread_start(crate::background::enter_background)
            .on_thread_stop(crate::background::leave_background)
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
