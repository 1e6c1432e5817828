//! The codes runs and errors are stored and reported with (the numbers of the contract's enums).

/// Outcome codes of runs (the numbers of the contract's `RunOutcome`).
pub mod outcome {
    /// Still running.
    pub const RUNNING: u32 = 1;
    /// Finished successfully.
    pub const SUCCEEDED: u32 = 2;
    /// Stopped by an error.
    pub const FAILED: u32 = 3;
    /// Stopped by `Pause`.
    pub const PAUSED: u32 = 4;
    /// Stopped by a shutdown, a crash or a delete.
    pub const INTERRUPTED: u32 = 5;
}

/// Error kind codes (the numbers of the contract's `ErrorKind`).
pub mod error_kind {
    /// Credentials refused (401/403, failed refresh).
    pub const AUTHENTICATION: u32 = 1;
    /// Zendesk kept answering 429.
    pub const RATE_LIMITED: u32 = 2;
    /// Connection failures and timeouts.
    pub const TRANSPORT: u32 = 3;
    /// Zendesk answered 5xx.
    pub const SERVER: u32 = 4;
    /// A payload zdsync cannot read.
    pub const MALFORMED: u32 = 5;
    /// Anything else (store, tasks).
    pub const INTERNAL: u32 = 6;
}

/// The text id of a run (`run-7`).
pub fn run_label(id: u64) -> String {
    format!("run-{id}")
}
