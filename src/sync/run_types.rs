//! The vocabulary of a run, shared by the run itself, its progress bookkeeping and the engine: what
//! kind of run, which phase, its live progress, what it found, and why it stopped.
use crate::store::StoreError;
use crate::zendesk::ZendeskError;

/// What a run does.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RunKind {
    /// Everything changed since the last run, from the stored cursors.
    Incremental,
    /// Re-export of the past 365 days, repairing drift.
    FullValidation,
    /// The first full sync after `Configure`.
    Initial,
}

impl RunKind {
    /// Storage code (the same numbers as the `SyncKind` enum of the contract).
    pub fn code(self) -> u32 {
        match self {
            RunKind::Incremental => 1,
            RunKind::FullValidation => 2,
            RunKind::Initial => 3,
        }
    }

    /// The kind stored as `code`.
    pub fn from_code(code: u32) -> Option<Self> {
        match code {
            1 => Some(RunKind::Incremental),
            2 => Some(RunKind::FullValidation),
            3 => Some(RunKind::Initial),
            _ => None,
        }
    }

    /// Name for logs and messages.
    pub fn name(self) -> &'static str {
        match self {
            RunKind::Incremental => "incremental",
            RunKind::FullValidation => "full_validation",
            RunKind::Initial => "initial",
        }
    }

    /// The streams of this kind of run, in order.
    pub fn phases(self) -> &'static [Phase] {
        match self {
            // Every phase but the nightly validation's own ticket export, which is last.
            RunKind::Incremental | RunKind::Initial => &Phase::ALL[..Phase::ALL.len() - 1],
            RunKind::FullValidation => &[Phase::Groups, Phase::ValidationTickets, Phase::Ratings],
        }
    }
}

/// One stream of a run.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Phase {
    /// The group list.
    Groups,
    /// The organization export.
    Organizations,
    /// The user export.
    Users,
    /// The ticket export with side-loads.
    Tickets,
    /// The ticket events export (status and priority history).
    TicketEvents,
    /// Satisfaction ratings.
    Ratings,
    /// The ticket export of the past 365 days (nightly validation).
    ValidationTickets,
}

impl Phase {
    /// Every phase, in the order of their storage codes.
    pub const ALL: [Phase; 7] = [
        Phase::Groups,
        Phase::Organizations,
        Phase::Users,
        Phase::Tickets,
        Phase::TicketEvents,
        Phase::Ratings,
        Phase::ValidationTickets,
    ];

    /// Storage code.
    pub fn code(self) -> u32 {
        match self {
            Phase::Groups => 1,
            Phase::Organizations => 2,
            Phase::Users => 3,
            Phase::Tickets => 4,
            Phase::TicketEvents => 5,
            Phase::Ratings => 6,
            Phase::ValidationTickets => 7,
        }
    }
}

/// Live progress of the run in progress, read by `GetStatus`.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Progress {
    /// Pages applied.
    pub pages: u64,
    /// Tickets applied.
    pub tickets: u64,
    /// Timeline events recorded.
    pub events: u64,
    /// Rollup rows a delta did not fit (drift found while applying, repaired by the nightly rebuild).
    pub rollup_rows_drifted: u64,
    /// Requests made by this run.
    pub requests: u64,
    /// Stream being read.
    pub phase: u32,
    /// The client is waiting out a rate limit.
    pub rate_limited: bool,
    /// Pages fetched in the current phase.
    pub phase_pages: u64,
    /// Pages the current phase takes, once Zendesk said so (the page with `end_of_stream`).
    pub phase_pages_expected: Option<u64>,
    /// Update time (Unix ms) of the oldest record of the phase's first page (time-ordered exports).
    pub phase_first_ms: Option<i64>,
    /// Update time (Unix ms) of the newest record the phase has read (time-ordered exports).
    pub phase_position_ms: Option<i64>,
    /// Milliseconds waited on the client-side request budget.
    pub budget_wait_ms: u64,
    /// Milliseconds waited on Zendesk's 429 answers.
    pub rate_limit_wait_ms: u64,
}

/// What a finished run found.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct RunSummary {
    /// Validation: tickets whose stored copy differed.
    pub tickets_changed: u64,
    /// Validation: tickets Zendesk returned that the store did not have.
    pub tickets_added: u64,
    /// Validation: tickets Zendesk no longer returns.
    pub tickets_missing: u64,
    /// Zendesk refused the ticket events export (403).
    pub ticket_events_refused: bool,
    /// Validation: rollup rows the rebuild from the stored tickets changed.
    pub derived_differences: u64,
}

/// Why a run stopped early.
#[derive(Debug, thiserror::Error)]
pub enum RunError {
    /// Zendesk failed or refused.
    #[error(transparent)]
    Zendesk(#[from] ZendeskError),
    /// The store failed.
    #[error(transparent)]
    Store(#[from] StoreError),
    /// Pause, delete or shutdown asked it to stop at a page boundary.
    #[error("stopped at a page boundary")]
    Stopped,
    /// A blocking task failed.
    #[error("internal task failed: {0}")]
    Task(String),
}
