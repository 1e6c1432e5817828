//! The sync engine: schedule (hourly, nightly, force, pause) and runs (page -> apply).

pub mod codes;
pub mod convert;
pub mod credentials;
pub mod engine;
pub mod login;
pub mod progress;
pub mod run;
pub mod run_types;
pub mod runtime;
pub mod schedule;
pub mod settings;
pub mod status;

pub use engine::{spawn, CommandError, EngineSettings, LiveStatus, SyncHandle};
pub use run::RunKind;
