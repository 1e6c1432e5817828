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

    /// The streams of this kind of run, in the order they finish in a run that waits on no budget: the lists
    /// read beside the export (`list_phases`) sit where their figures are needed, before the ticket events
    /// backfill, which comes last so that account metrics are answerable before it ends.
    pub fn phases(self) -> &'static [Phase] {
        match self {
            RunKind::Incremental | RunKind::Initial => &[
                Phase::Groups,
                Phase::Organizations,
                Phase::Users,
                Phase::Tickets,
                Phase::Ratings,
                Phase::TicketEvents,
            ],
            RunKind::FullValidation => &[Phase::Groups, Phase::ValidationTickets, Phase::Ratings],
        }
    }

    /// The streams of `phases` read beside the others rather than after them: they draw on the budget of
    /// Zendesk's other endpoints, which the incremental exports do not use (DESIGN 1.5, issue #13).
    ///
    /// Zendesk's "Incremental Exports" reference: "You can make up to 10 requests per minute to these
    /// endpoints" (tickets, ticket events, users, organizations;
    /// <https://developer.zendesk.com/api-reference/ticketing/ticket-management/incremental_exports/>).
    /// Every other endpoint (groups, satisfaction ratings, `users/me`) counts against the account's plan
    /// limit, 200 to 2,500 requests a minute for all of its apps together
    /// (<https://developer.zendesk.com/api-reference/introduction/rate-limits/>). Groups stay first: one
    /// request, and the exports' pages never wait for it.
    pub fn list_phases(self) -> &'static [Phase] {
        match self {
            RunKind::Incremental | RunKind::Initial => &[Phase::Ratings],
            // The validation's rollup check reads ratings and tickets together: one stream at a time.
            RunKind::FullValidation => &[],
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

    /// Whether account metrics are computed from what this stream writes: once every such stream of a run
    /// is applied, the run's figures are complete (the group list and the ticket events history feed only
    /// timeline events).
    pub fn feeds_figures(self) -> bool {
        !matches!(self, Phase::Groups | Phase::TicketEvents)
    }

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
    /// Stream being read (the export's lane: the one a resumed run continues from).
    pub phase: u32,
    /// List stream being read beside the export (0: none).
    pub list_phase: u32,
    /// Streams this run has applied to their end (bit `code` of each), or that a resumed run had.
    pub phases_done: u32,
    /// Every stream account metrics are computed from is applied: the figures are this run's.
    pub metrics_ready: bool,
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

impl RunSummary {
    /// Adds what another lane of the same run found.
    pub fn merge(&mut self, other: RunSummary) {
        self.tickets_changed += other.tickets_changed;
        self.tickets_added += other.tickets_added;
        self.tickets_missing += other.tickets_missing;
        self.ticket_events_refused |= other.ticket_events_refused;
        self.derived_differences += other.derived_differences;
    }
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
