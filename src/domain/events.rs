//! Timeline event rules: which high/urgent ticket transitions and bad ratings become events,
//! when they occurred, and the deterministic key that makes each one exactly-once.
//!
//! Two ways to see ticket transitions:
//! - [`detect_from_history`]: from the ticket events export (status/priority `Create` and
//!   `Change` entries with their times). Every transition is seen with its real time, so a ticket
//!   solved and reopened between two syncs yields both events.
//! - [`detect_from_snapshots`]: the fallback when that export is refused. It compares the stored
//!   ticket with the new one plus the metric set (`reopens`, `solved_at`); see its docs for what
//!   it cannot see.
//!
//! Keys depend only on the ticket (or rating) and Zendesk's timestamps, never on when or how
//! often detection runs, so re-detecting the same history yields the same keys and the caller
//! stores events by key, ignoring repeats.

use chrono::{DateTime, Duration, Utc};

use super::metrics::{RatingFacts, TicketFacts};
use super::ticket::{Priority, Status};
use crate::store::zendesk_records::{ChangeRecord, CHANGE_FIELD_PRIORITY, CHANGE_FIELD_STATUS};

/// How far back the first sync backfills events.
pub const BACKFILL_HORIZON_DAYS: i64 = 365;

/// Why a stored change record could not be read.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum EventsError {
    /// The change's field code is neither status nor priority.
    #[error("ticket {ticket_id}: ticket change field code {field} is unknown")]
    UnknownChangeField {
        /// The ticket.
        ticket_id: u64,
        /// The code found.
        field: u32,
    },
    /// A status code in a change is unknown.
    #[error("ticket {ticket_id}: status change field {side}: unknown status code {code}")]
    UnknownStatus {
        /// The ticket.
        ticket_id: u64,
        /// `from` or `to`.
        side: &'static str,
        /// The code found.
        code: u32,
    },
    /// A priority code in a change is unknown.
    #[error("ticket {ticket_id}: priority change field {side}: unknown priority code {code}")]
    UnknownPriority {
        /// The ticket.
        ticket_id: u64,
        /// `from` or `to`.
        side: &'static str,
        /// The code found.
        code: u32,
    },
    /// The change's time is outside what chrono can represent.
    #[error("ticket {ticket_id}: ticket change field at: timestamp {value} out of range")]
    TimestampOutOfRange {
        /// The ticket.
        ticket_id: u64,
        /// The stored value.
        value: i64,
    },
}

/// The kinds of timeline events.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum EventKind {
    /// A ticket is high/urgent when first seen, or is raised to high/urgent later.
    HighUrgentTicketCreated,
    /// A high/urgent ticket enters solved, or closed without passing through solved.
    HighUrgentTicketSolved,
    /// A high/urgent ticket leaves solved for new/open/pending/hold.
    HighUrgentTicketReopened,
    /// A rating with score bad (or bad with comment) is received.
    BadSatisfactionRating,
}

impl EventKind {
    /// The word used for the kind in event keys.
    pub fn key_word(self) -> &'static str {
        match self {
            Self::HighUrgentTicketCreated => "created",
            Self::HighUrgentTicketSolved => "solved",
            Self::HighUrgentTicketReopened => "reopened",
            Self::BadSatisfactionRating => "bad_rating",
        }
    }
}

/// The deterministic key of a ticket event: `t{ticket_id}:{kind}:{unix seconds}[:{extra}]`.
///
/// `zendesk_timestamp` is the Zendesk time of the transition (Unix seconds); `extra`
/// disambiguates events the same timestamp cannot tell apart (fallback reopens use `n{count}`).
pub fn event_key(
    kind: EventKind,
    ticket_id: u64,
    zendesk_timestamp: i64,
    extra: Option<&str>,
) -> String {
    let word = kind.key_word();
    match extra {
        Some(extra) => format!("t{ticket_id}:{word}:{zendesk_timestamp}:{extra}"),
        None => format!("t{ticket_id}:{word}:{zendesk_timestamp}"),
    }
}

/// The deterministic key of a bad-rating event: `r{rating_id}:bad`, one per rating ever.
pub fn rating_event_key(rating_id: u64) -> String {
    format!("r{rating_id}:bad")
}

/// Where a detected event came from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DetectionSource {
    /// The ticket events export: real transition times.
    History,
    /// Stored vs new snapshot plus metric set (export refused).
    Snapshot,
    /// A satisfaction rating.
    Rating,
}

/// One detected timeline event, before the caller attaches ticket and account details.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DetectedEvent {
    /// The exactly-once key.
    pub key: String,
    /// The kind.
    pub kind: EventKind,
    /// The ticket.
    pub ticket_id: u64,
    /// The rating, for `BadSatisfactionRating`.
    pub rating_id: Option<u64>,
    /// When it happened in Zendesk.
    pub occurred_at: DateTime<Utc>,
    /// Whether `occurred_at` is the real time (false: a fallback estimate, see [`detect_from_snapshots`]).
    pub exact_time: bool,
    /// For `HighUrgentTicketCreated`: the ticket was raised to high/urgent after it was first seen.
    pub escalated: bool,
    /// Detected by the first sync's backfill (set by [`finalize_for_sync`]).
    pub backfill: bool,
    /// How it was detected.
    pub source: DetectionSource,
}

impl DetectedEvent {
    fn ticket(
        kind: EventKind,
        ticket_id: u64,
        at: DateTime<Utc>,
        source: DetectionSource,
        exact_time: bool,
        extra: Option<&str>,
    ) -> Self {
        Self {
            key: event_key(kind, ticket_id, at.timestamp(), extra),
            kind,
            ticket_id,
            rating_id: None,
            occurred_at: at,
            exact_time,
            escalated: false,
            backfill: false,
            source,
        }
    }

    fn escalated(mut self, escalated: bool) -> Self {
        self.escalated = escalated;
        self
    }
}

/// A ticket's status and priority at one moment.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TicketState {
    /// Status.
    pub status: Status,
    /// Priority.
    pub priority: Priority,
}

impl TicketState {
    /// The state of a ticket snapshot.
    pub fn of(ticket: &TicketFacts) -> Self {
        Self {
            status: ticket.status,
            priority: ticket.priority,
        }
    }
}

/// One status or priority change.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FieldChange {
    /// The status became `to`; `from` is `None` on the ticket's `Create` entry.
    Status {
        /// The status before, as Zendesk recorded it (none when the ticket was created).
        from: Option<Status>,
        /// The status after.
        to: Status,
    },
    /// The priority became `to` (`Priority::None` when cleared).
    Priority {
        /// The priority before, as Zendesk recorded it.
        from: Priority,
        /// The priority after.
        to: Priority,
    },
}

/// One entry of a ticket's history, from the ticket events export.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct HistoryEntry {
    /// When the update happened.
    pub at: DateTime<Utc>,
    /// The Zendesk ticket event (update) it belongs to: changes of one update apply together.
    pub event_id: u64,
    /// Position within the update.
    pub index: u32,
    /// The change.
    pub change: FieldChange,
}

impl HistoryEntry {
    /// Reads a stored change (key `(ticket, at, event id, index)` of `TICKET_CHANGES`).
    ///
    /// A status change with `from` code 0 is the ticket's `Create` entry.
    pub fn from_record(
        ticket_id: u64,
        at: i64,
        event_id: u64,
        index: u32,
        record: &ChangeRecord,
    ) -> Result<Self, EventsError> {
        let at = DateTime::from_timestamp(at, 0).ok_or(EventsError::TimestampOutOfRange {
            ticket_id,
            value: at,
        })?;
        let status = |side: &'static str, code: u32| {
            Status::from_code(code).ok_or(EventsError::UnknownStatus {
                ticket_id,
                side,
                code,
            })
        };
        let priority = |side: &'static str, code: u32| {
            Priority::from_code(code).ok_or(EventsError::UnknownPriority {
                ticket_id,
                side,
                code,
            })
        };
        let change = match record.field {
            CHANGE_FIELD_STATUS => FieldChange::Status {
                from: match record.from {
                    0 => None,
                    code => Some(status("from", code)?),
                },
                to: status("to", record.to)?,
            },
            CHANGE_FIELD_PRIORITY => FieldChange::Priority {
                from: priority("from", record.from)?,
                to: priority("to", record.to)?,
            },
            field => return Err(EventsError::UnknownChangeField { ticket_id, field }),
        };
        Ok(Self {
            at,
            event_id,
            index,
            change,
        })
    }

    fn creates_ticket(&self) -> bool {
        matches!(self.change, FieldChange::Status { from: None, .. })
    }
}

/// What history detection found.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HistoryDetection {
    /// The events, in the order they happened.
    pub events: Vec<DetectedEvent>,
    /// The ticket's state after the last entry (the `prior` of the next detection).
    pub state: Option<TicketState>,
}

/// Detects a ticket's events from its history.
///
/// - `ticket`: the current snapshot (for its id, `created_at`, and the values of fields the
///   history never mentions).
/// - `prior`: its state just before the first entry, `None` when the ticket was never seen.
/// - `entries`: its status/priority changes; sorted here by (time, update, index).
///
/// Changes of one Zendesk update apply together, and the priority after the update is "the
/// priority at the moment of the transition". Where an entry records the value before it
/// (`from`), that value is trusted over `prior`, so a stale `prior` cannot invent transitions.
///
/// A never-seen ticket whose history begins with its `Create` entry is "first seen" at that
/// entry. One whose history starts later (created before the export window) or is empty is
/// "first seen" at `created_at`, with the state the first entries' `from` values (or the
/// snapshot) give. A never-seen ticket is created-and-high/urgent → `HighUrgentTicketCreated`
/// (not escalated); raised later → escalated. A ticket deleted in Zendesk (in the history, or
/// deleted/gone in the snapshot) yields nothing.
pub fn detect_from_history(
    ticket: &TicketFacts,
    prior: Option<TicketState>,
    entries: &[HistoryEntry],
) -> HistoryDetection {
    let mut entries = entries.to_vec();
    entries.sort_by_key(|entry| (entry.at, entry.event_id, entry.index));
    let mut events = Vec::new();
    let mut state = prior;
    let starts_with_create = entries.first().is_some_and(HistoryEntry::creates_ticket);
    if state.is_none() && !starts_with_create {
        let initial = reconstruct_initial(ticket, &entries);
        if initial.status != Status::Deleted && initial.priority.is_high_or_urgent() {
            events.push(DetectedEvent::ticket(
                EventKind::HighUrgentTicketCreated,
                ticket.id,
                ticket.created_at,
                DetectionSource::History,
                true,
                None,
            ));
        }
        state = Some(initial);
    }
    for update in entries.chunk_by(|a, b| (a.at, a.event_id) == (b.at, b.event_id)) {
        let (before, after) = apply_update(state, update);
        transition_events(ticket.id, before, after, update[0].at, &mut events);
        state = Some(after);
    }
    if !ticket.exists() {
        // Deleted (or gone) tickets count nowhere, their past transitions included.
        events.clear();
    }
    HistoryDetection { events, state }
}

/// The state of a never-seen ticket before its first known entry.
fn reconstruct_initial(ticket: &TicketFacts, entries: &[HistoryEntry]) -> TicketState {
    let status = entries.iter().find_map(|entry| match entry.change {
        FieldChange::Status { from, .. } => Some(from),
        FieldChange::Priority { .. } => None,
    });
    let priority = entries.iter().find_map(|entry| match entry.change {
        FieldChange::Priority { from, .. } => Some(from),
        FieldChange::Status { .. } => None,
    });
    TicketState {
        status: status.flatten().unwrap_or(ticket.status),
        priority: priority.unwrap_or(ticket.priority),
    }
}

/// The state before and after one Zendesk update (all its entries).
fn apply_update(
    state: Option<TicketState>,
    update: &[HistoryEntry],
) -> (Option<TicketState>, TicketState) {
    let creates = update.iter().any(HistoryEntry::creates_ticket);
    let mut before = if creates { None } else { state };
    if let Some(before) = before.as_mut() {
        // Zendesk's own record of the previous value beats whatever `prior` said.
        for entry in update {
            match entry.change {
                FieldChange::Status {
                    from: Some(from), ..
                } => before.status = from,
                FieldChange::Priority { from, .. } => before.priority = from,
                FieldChange::Status { from: None, .. } => {}
            }
        }
    }
    let mut after = before.unwrap_or(TicketState {
        status: Status::New,
        priority: Priority::None,
    });
    for entry in update {
        match entry.change {
            FieldChange::Status { to, .. } => after.status = to,
            FieldChange::Priority { to, .. } => after.priority = to,
        }
    }
    (before, after)
}

/// The events of one transition `before -> after` (before `None`: the ticket's creation).
fn transition_events(
    ticket_id: u64,
    before: Option<TicketState>,
    after: TicketState,
    at: DateTime<Utc>,
    events: &mut Vec<DetectedEvent>,
) {
    if after.status == Status::Deleted || !after.priority.is_high_or_urgent() {
        return;
    }
    let event =
        |kind| DetectedEvent::ticket(kind, ticket_id, at, DetectionSource::History, true, None);
    match before {
        None => events.push(event(EventKind::HighUrgentTicketCreated)),
        Some(before) if !before.priority.is_high_or_urgent() => {
            events.push(event(EventKind::HighUrgentTicketCreated).escalated(true));
        }
        Some(_) => {}
    }
    let before_status = before.map(|before| before.status);
    if enters_solved(before_status, after.status) {
        events.push(event(EventKind::HighUrgentTicketSolved));
    }
    if before_status == Some(Status::Solved) && after.status.is_unsolved() {
        events.push(event(EventKind::HighUrgentTicketReopened));
    }
}

/// Solved from an unsolved status (or at creation), or closed without passing through solved.
fn enters_solved(before: Option<Status>, after: Status) -> bool {
    after.is_solved() && before.is_none_or(Status::is_unsolved)
}

/// Detects a ticket's events without history, from the stored and the new snapshot.
///
/// What it sees: a never-seen high/urgent ticket (created, at `created_at`; solved, at
/// `solved_at`, when it is already solved); a raise to high/urgent (escalated, at `updated_at`:
/// the real time is unknown); the last solve since the stored copy (at `solved_at`, so its key
/// matches the one history detection gives; at `updated_at` when the metric set has none);
/// reopens, counted by the increase of `reopens` (or implied by solved → unsolved), each at an
/// upper bound of its time (`updated_at`, or the new `solved_at` when solved again since).
///
/// What it cannot see: the real times of escalations and reopens; solves before the last one
/// when several happened between two syncs; the priority at the moment of a transition (the
/// new priority stands in for it); transitions of a ticket whose priority was raised and
/// lowered again in between. Reopen keys carry the reopen's ordinal (`n{k}`).
pub fn detect_from_snapshots(
    stored: Option<&TicketFacts>,
    current: &TicketFacts,
) -> Vec<DetectedEvent> {
    let mut events = Vec::new();
    if !current.exists() || !current.priority.is_high_or_urgent() {
        return events;
    }
    let id = current.id;
    let snapshot = |kind, at, exact, extra: Option<&str>| {
        DetectedEvent::ticket(kind, id, at, DetectionSource::Snapshot, exact, extra)
    };
    let Some(stored) = stored else {
        events.push(snapshot(
            EventKind::HighUrgentTicketCreated,
            current.created_at,
            true,
            None,
        ));
        if current.status.is_solved() {
            let (at, exact) = current
                .solved_at
                .map_or((current.updated_at, false), |at| (at, true));
            events.push(snapshot(EventKind::HighUrgentTicketSolved, at, exact, None));
        }
        return events;
    };
    if !stored.priority.is_high_or_urgent() {
        events.push(
            snapshot(
                EventKind::HighUrgentTicketCreated,
                current.updated_at,
                false,
                None,
            )
            .escalated(true),
        );
    }
    let solved_at_advanced = match (stored.solved_at, current.solved_at) {
        (_, None) => false,
        (None, Some(_)) => true,
        (Some(old), Some(new)) => new > old,
    };
    let mut reopens = current.reopens.saturating_sub(stored.reopens);
    let solve_seen = (stored.status.is_unsolved() && current.status.is_solved())
        || (solved_at_advanced && (stored.status.is_unsolved() || reopens > 0));
    let left_solved = stored.status == Status::Solved || solve_seen;
    if left_solved && current.status.is_unsolved() {
        reopens = reopens.max(1);
    }
    let reopen_at = match current.solved_at {
        Some(solved_at) if current.status.is_solved() && solved_at_advanced => solved_at,
        _ => current.updated_at,
    };
    for ordinal in 1..=reopens {
        let extra = format!("n{}", stored.reopens.saturating_add(ordinal));
        events.push(snapshot(
            EventKind::HighUrgentTicketReopened,
            reopen_at,
            false,
            Some(&extra),
        ));
    }
    if solve_seen {
        let (at, exact) = match current.solved_at {
            Some(at) if solved_at_advanced => (at, true),
            _ => (current.updated_at, false),
        };
        events.push(snapshot(EventKind::HighUrgentTicketSolved, at, exact, None));
    }
    events.sort_by_key(|event| event.occurred_at);
    events
}

/// Detects a bad-rating event: the rating is bad now and was not known to be bad before.
///
/// `prior` is the stored copy (`None` when never seen). The event occurs at `updated_at`, when
/// the score was given (a rating is created when the survey is offered). The key is the rating
/// id, so a rating yields at most one such event however often its score flips.
pub fn detect_rating(prior: Option<&RatingFacts>, current: &RatingFacts) -> Option<DetectedEvent> {
    if !current.score.is_bad() || prior.is_some_and(|prior| prior.score.is_bad()) {
        return None;
    }
    Some(DetectedEvent {
        key: rating_event_key(current.id),
        kind: EventKind::BadSatisfactionRating,
        ticket_id: current.ticket_id,
        rating_id: Some(current.id),
        occurred_at: current.updated_at,
        exact_time: true,
        escalated: false,
        backfill: false,
        source: DetectionSource::Rating,
    })
}

/// The oldest time the first sync backfills events from.
pub fn backfill_horizon(now: DateTime<Utc>) -> DateTime<Utc> {
    now - Duration::days(BACKFILL_HORIZON_DAYS)
}

/// Whether an event detected during a sync is backfill: exactly the first sync's events.
pub fn is_backfill(first_sync: bool) -> bool {
    first_sync
}

/// Prepares detected events for storage: during the first sync they are marked backfill and
/// only those of the past year (`occurred_at >= now - 365 days`) are kept; later syncs keep all.
pub fn finalize_for_sync(
    events: Vec<DetectedEvent>,
    first_sync: bool,
    now: DateTime<Utc>,
) -> Vec<DetectedEvent> {
    let backfill = is_backfill(first_sync);
    let horizon = backfill_horizon(now);
    events
        .into_iter()
        .filter(|event| !backfill || event.occurred_at >= horizon)
        .map(|mut event| {
            event.backfill = backfill;
            event
        })
        .collect()
}
