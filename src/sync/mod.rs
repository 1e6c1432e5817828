//! The sync engine: schedule (hourly, nightly, force, pause) and runs (page -> apply).

pub mod convert;
pub mod engine;
pub mod progress;
pub mod run;
pub mod runtime;
pub mod schedule;

pub use engine::{spawn, CommandError, EngineSettings, LiveStatus, SyncHandle};
pub use run::RunKind;
