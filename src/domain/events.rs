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

/// How far back the first sync backfills events.
pub const BACKFILL_HORIZON_DAYS: i64 = 365;

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
    // Written piece by piece rather than with `format!`: a key per detected event, and the formatting
    // machinery was 1.8 % of an incremental sync's page apply (callgrind).
    let word = kind.key_word();
    let mut numbers = itoa::Buffer::new();
    let mut key = String::with_capacity(48 + extra.map_or(0, str::len));
    key.push('t');
    key.push_str(numbers.format(ticket_id));
    key.push(':');
    key.push_str(word);
    key.push(':');
    key.push_str(numbers.format(zendesk_timestamp));
    if let Some(extra) = extra {
        key.push(':');
        key.push_str(extra);
    }
    key
}

/// The deterministic key of a bad-rating event: `r{rating_id}:bad:{scored_at}` (Unix seconds of the
/// score), so a rating that turns bad again after a good score is a new event.
pub fn rating_event_key(rating_id: u64, scored_at: DateTime<Utc>) -> String {
    format!("r{rating_id}:bad:{}", scored_at.timestamp())
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

/// Status and priority of a ticket at an instant, as its history tells: the last change of each
/// field at or before `at`, else the value before its first change, else the snapshot's.
pub fn state_at(ticket: &TicketFacts, entries: &[HistoryEntry], at: DateTime<Utc>) -> TicketState {
    let mut sorted: Vec<&HistoryEntry> = entries.iter().collect();
    sorted.sort_by_key(|entry| (entry.at, entry.event_id, entry.index));
    let mut status = None;
    let mut priority = None;
    let mut first_status_from = None;
    let mut first_priority_from = None;
    for entry in sorted {
        match entry.change {
            FieldChange::Status { from, to } => {
                if first_status_from.is_none() {
                    first_status_from = Some(from.unwrap_or(to));
                }
                if entry.at <= at {
                    status = Some(to);
                }
            }
            FieldChange::Priority { from, to } => {
                if first_priority_from.is_none() {
                    first_priority_from = Some(from);
                }
                if entry.at <= at {
                    priority = Some(to);
                }
            }
        }
    }
    TicketState {
        status: status.or(first_status_from).unwrap_or(ticket.status),
        priority: priority.or(first_priority_from).unwrap_or(ticket.priority),
    }
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
/// the score was given (a rating is created when the survey is offered). Each turn to bad is an
/// event (bad -> good -> bad is two); a bad score rewritten as bad (a comment added) is none.
pub fn detect_rating(prior: Option<&RatingFacts>, current: &RatingFacts) -> Option<DetectedEvent> {
    if !current.score.is_bad() || prior.is_some_and(|prior| prior.score.is_bad()) {
        return None;
    }
    Some(DetectedEvent {
        key: rating_event_key(current.id, current.updated_at),
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::metrics::RatingScore;
    use std::collections::BTreeSet;

    const T0: i64 = 1_700_000_000;

    fn time(offset_minutes: i64) -> DateTime<Utc> {
        DateTime::from_timestamp(T0 + offset_minutes * 60, 0).expect("valid time")
    }

    fn snapshot(status: Status, priority: Priority) -> TicketFacts {
        TicketFacts {
            id: 42,
            status,
            priority,
            created_at: time(0),
            updated_at: time(100),
            reopens: 0,
            solved_at: None,
            gone: false,
        }
    }

    fn status(minute: i64, event_id: u64, from: Option<Status>, to: Status) -> HistoryEntry {
        HistoryEntry {
            at: time(minute),
            event_id,
            index: 0,
            change: FieldChange::Status { from, to },
        }
    }

    fn priority(minute: i64, event_id: u64, from: Priority, to: Priority) -> HistoryEntry {
        HistoryEntry {
            at: time(minute),
            event_id,
            index: 1,
            change: FieldChange::Priority { from, to },
        }
    }

    /// A ticket created at minute 0 (event 1) with `status` and `priority`.
    fn created(status: Status, priority: Priority) -> Vec<HistoryEntry> {
        vec![
            self::status(0, 1, None, status),
            self::priority(0, 1, Priority::None, priority),
        ]
    }

    fn state(status: Status, priority: Priority) -> TicketState {
        TicketState { status, priority }
    }

    /// The summary of what `history` shows of the ticket now in `status` and `priority`.
    fn detected(
        (status, priority): (Status, Priority),
        prior: Option<TicketState>,
        history: &[HistoryEntry],
    ) -> Vec<(EventKind, i64, bool)> {
        summary(&detect_from_history(&snapshot(status, priority), prior, history).events)
    }

    fn summary(events: &[DetectedEvent]) -> Vec<(EventKind, i64, bool)> {
        events
            .iter()
            .map(|event| {
                (
                    event.kind,
                    (event.occurred_at.timestamp() - T0) / 60,
                    event.escalated,
                )
            })
            .collect()
    }

    fn keys(events: &[DetectedEvent]) -> BTreeSet<String> {
        events.iter().map(|event| event.key.clone()).collect()
    }

    use EventKind::{
        HighUrgentTicketCreated as Created, HighUrgentTicketReopened as Reopened,
        HighUrgentTicketSolved as Solved,
    };

    #[test]
    fn state_at_reads_the_history_up_to_the_instant() {
        let now = snapshot(Status::Solved, Priority::Low);
        let history = [
            priority(10, 2, Priority::Normal, Priority::Urgent),
            status(5, 1, Some(Status::New), Status::Open),
            status(20, 3, Some(Status::Open), Status::Solved),
        ];
        let state_of = |minute| state_at(&now, &history, time(minute));
        // Before any change: the value each field had before its first change.
        assert_eq!(state_of(0), state(Status::New, Priority::Normal));
        assert_eq!(state_of(10), state(Status::Open, Priority::Urgent));
        assert_eq!(state_of(30).status, Status::Solved);
        // A field the history never mentions comes from the snapshot.
        let only_status = [status(5, 1, Some(Status::New), Status::Open)];
        assert_eq!(
            state_at(&now, &only_status, time(6)).priority,
            Priority::Low
        );
    }

    #[test]
    fn keys_are_deterministic_and_readable() {
        assert_eq!(event_key(Solved, 42, T0, None), format!("t42:solved:{T0}"));
        assert_eq!(
            event_key(Reopened, 42, T0, Some("n3")),
            format!("t42:reopened:{T0}:n3")
        );
        assert_eq!(event_key(Created, 1, 5, None), "t1:created:5");
        assert_eq!(
            rating_event_key(77, time(5)),
            format!("r77:bad:{}", T0 + 5 * 60)
        );
    }

    #[test]
    fn high_urgent_when_created_is_a_created_event_at_creation() {
        let history = created(Status::New, Priority::Urgent);
        let found = detect_from_history(&snapshot(Status::New, Priority::Urgent), None, &history);
        assert_eq!(summary(&found.events), vec![(Created, 0, false)]);
        assert_eq!(found.events[0].key, format!("t42:created:{T0}"));
        assert!(found.events[0].exact_time);
        assert_eq!(found.state, Some(state(Status::New, Priority::Urgent)));
    }

    #[test]
    fn raised_to_high_later_is_an_escalated_created_event() {
        let mut history = created(Status::New, Priority::Normal);
        history.extend([
            status(10, 2, Some(Status::New), Status::Open),
            priority(20, 3, Priority::Normal, Priority::High),
            // Lowered and raised again: a second escalation at its own time.
            priority(30, 4, Priority::High, Priority::Low),
            priority(40, 5, Priority::Low, Priority::Urgent),
            // Urgent -> high stays high/urgent: nothing.
            priority(50, 6, Priority::Urgent, Priority::High),
        ]);
        assert_eq!(
            detected((Status::Open, Priority::High), None, &history),
            vec![(Created, 20, true), (Created, 40, true)]
        );
    }

    #[test]
    fn solved_closed_and_reopened_follow_the_priority_at_the_transition() {
        let mut history = created(Status::New, Priority::High);
        history.extend([
            status(10, 2, Some(Status::New), Status::Solved),
            status(20, 3, Some(Status::Solved), Status::Open),
            // Lowered while open: the next solve and reopen are not high/urgent.
            priority(30, 4, Priority::High, Priority::Normal),
            status(40, 5, Some(Status::Open), Status::Solved),
            status(50, 6, Some(Status::Solved), Status::Pending),
            // Raised and solved in one update: escalated, then solved, same time.
            priority(60, 7, Priority::Normal, Priority::Urgent),
            status(60, 7, Some(Status::Pending), Status::Solved),
            // Solved -> closed is no new solve.
            status(70, 8, Some(Status::Solved), Status::Closed),
        ]);
        assert_eq!(
            detected((Status::Closed, Priority::Urgent), None, &history),
            vec![
                (Created, 0, false),
                (Solved, 10, false),
                (Reopened, 20, false),
                (Created, 60, true),
                (Solved, 60, false),
            ]
        );
    }

    #[test]
    fn closed_without_passing_through_solved_counts_as_solved() {
        let prior = Some(state(Status::Hold, Priority::Urgent));
        let history = [status(5, 9, Some(Status::Hold), Status::Closed)];
        let found =
            detect_from_history(&snapshot(Status::Closed, Priority::Urgent), prior, &history);
        assert_eq!(summary(&found.events), vec![(Solved, 5, false)]);
        assert_eq!(found.events[0].key, format!("t42:solved:{}", T0 + 300));
    }

    #[test]
    fn solved_and_reopened_between_two_syncs_yields_both_at_their_real_times() {
        let prior = Some(state(Status::Open, Priority::High));
        // Both snapshots say "open": only the history shows what happened in between.
        let history = [
            status(61, 20, Some(Status::Open), Status::Solved),
            status(95, 21, Some(Status::Solved), Status::Open),
        ];
        let found = detect_from_history(&snapshot(Status::Open, Priority::High), prior, &history);
        assert_eq!(
            summary(&found.events),
            vec![(Solved, 61, false), (Reopened, 95, false)]
        );
        // Unsorted input gives the same result.
        let reversed: Vec<_> = history.iter().rev().copied().collect();
        assert_eq!(
            detect_from_history(&snapshot(Status::Open, Priority::High), prior, &reversed),
            found
        );
    }

    #[test]
    fn recorded_previous_values_beat_a_stale_prior() {
        // The prior says solved, but Zendesk recorded open -> pending: no reopen.
        let prior = Some(state(Status::Solved, Priority::Urgent));
        let history = [status(5, 9, Some(Status::Open), Status::Pending)];
        assert!(detected((Status::Pending, Priority::Urgent), prior, &history).is_empty());
    }

    #[test]
    fn never_seen_ticket_without_its_create_entry_is_first_seen_at_created_at() {
        // No history at all: first seen high -> created at created_at.
        assert_eq!(
            detected((Status::Open, Priority::Urgent), None, &[]),
            vec![(Created, 0, false)]
        );
        // Not high/urgent: nothing.
        assert!(detected((Status::Open, Priority::Low), None, &[]).is_empty());
        // History starts mid-life with a raise: the recorded `from` says it was normal before.
        let history = [priority(30, 3, Priority::Normal, Priority::High)];
        assert_eq!(
            detected((Status::Open, Priority::High), None, &history),
            vec![(Created, 30, true)]
        );
        // History starts mid-life with a solve of a ticket that was already high.
        let history = [status(30, 3, Some(Status::Open), Status::Solved)];
        assert_eq!(
            detected((Status::Solved, Priority::High), None, &history),
            vec![(Created, 0, false), (Solved, 30, false)]
        );
    }

    #[test]
    fn deleted_tickets_yield_nothing() {
        let creation = created(Status::Open, Priority::Urgent);
        let mut history = creation.clone();
        history.push(status(10, 2, Some(Status::Open), Status::Deleted));
        let deleted = snapshot(Status::Deleted, Priority::Urgent);
        let found = detect_from_history(&deleted, None, &history);
        assert!(found.events.is_empty());
        assert_eq!(found.state.map(|state| state.status), Some(Status::Deleted));
        let mut gone = snapshot(Status::Open, Priority::Urgent);
        gone.gone = true;
        assert!(detect_from_history(&gone, None, &creation)
            .events
            .is_empty());
        assert!(detect_from_snapshots(None, &deleted).is_empty());
        assert!(
            detect_from_snapshots(Some(&snapshot(Status::Open, Priority::Low)), &gone).is_empty()
        );
    }

    #[test]
    fn detection_over_overlapping_histories_yields_the_same_keys() {
        let mut history = created(Status::New, Priority::Normal);
        history.extend([
            priority(10, 2, Priority::Normal, Priority::Urgent),
            status(20, 3, Some(Status::New), Status::Open),
            status(30, 4, Some(Status::Open), Status::Solved),
            status(40, 5, Some(Status::Solved), Status::Open),
            status(50, 6, Some(Status::Open), Status::Solved),
            status(60, 7, Some(Status::Solved), Status::Closed),
        ]);
        let ticket = snapshot(Status::Closed, Priority::Urgent);
        let full = detect_from_history(&ticket, None, &history);
        assert_eq!(
            summary(&full.events),
            vec![
                (Created, 10, true),
                (Solved, 30, false),
                (Reopened, 40, false),
                (Solved, 50, false)
            ]
        );
        // Re-detecting the whole history (crash, re-sync, nightly validation): same keys.
        assert_eq!(
            keys(&detect_from_history(&ticket, None, &history).events),
            keys(&full.events)
        );
        // Two syncs whose pages overlap; the second starts from the first one's end state
        // although it replays entries the first already saw.
        let first = detect_from_history(&ticket, None, &history[..6]);
        let second = detect_from_history(&ticket, first.state, &history[4..]);
        let union: BTreeSet<String> = keys(&first.events)
            .union(&keys(&second.events))
            .cloned()
            .collect();
        assert_eq!(union, keys(&full.events));
        assert_eq!(second.state, full.state);
    }

    #[test]
    fn fallback_sees_first_sight_solves_reopens_and_escalations() {
        let seen = |stored: Option<&TicketFacts>, now: &TicketFacts| {
            summary(&detect_from_snapshots(stored, now))
        };
        // First seen, high and open: created at created_at.
        let open = snapshot(Status::Open, Priority::High);
        assert_eq!(seen(None, &open), vec![(Created, 0, false)]);
        // First seen, already solved: created and solved at solved_at.
        let solved = TicketFacts {
            status: Status::Solved,
            solved_at: Some(time(50)),
            ..open.clone()
        };
        assert_eq!(
            seen(None, &solved),
            vec![(Created, 0, false), (Solved, 50, false)]
        );
        // Stored open -> solved: solved at solved_at, with the key history detection gives.
        let found = detect_from_snapshots(Some(&open), &solved);
        assert_eq!(summary(&found), vec![(Solved, 50, false)]);
        assert_eq!(
            found[0].key,
            event_key(Solved, 42, time(50).timestamp(), None)
        );
        assert!(found[0].exact_time);
        assert_eq!(found[0].source, DetectionSource::Snapshot);
        // Unchanged: nothing (a re-run yields no new events).
        assert!(detect_from_snapshots(Some(&solved), &solved).is_empty());
        // Solved -> open with reopens + 1: reopened at updated_at (estimate).
        let reopened = TicketFacts {
            status: Status::Open,
            reopens: 1,
            ..solved.clone()
        };
        let found = detect_from_snapshots(Some(&solved), &reopened);
        assert_eq!(summary(&found), vec![(Reopened, 100, false)]);
        assert_eq!(
            found[0].key,
            format!("t42:reopened:{}:n1", time(100).timestamp())
        );
        assert!(!found[0].exact_time);
        // Solved -> open although the metric set did not count it yet: still one reopen.
        let uncounted = TicketFacts {
            status: Status::Open,
            ..solved.clone()
        };
        assert_eq!(seen(Some(&solved), &uncounted), [(Reopened, 100, false)]);
        // Open -> open, but solved and reopened in between: solved at solved_at, reopened later.
        let in_between = TicketFacts {
            reopens: 1,
            solved_at: Some(time(60)),
            updated_at: time(90),
            ..open.clone()
        };
        let found = seen(Some(&open), &in_between);
        assert_eq!(found, [(Solved, 60, false), (Reopened, 90, false)]);
        // Solved -> (reopened, solved again): reopen placed no later than the new solve.
        let again = TicketFacts {
            reopens: 1,
            solved_at: Some(time(80)),
            ..solved.clone()
        };
        let found = seen(Some(&solved), &again);
        assert_eq!(found, [(Reopened, 80, false), (Solved, 80, false)]);
        // Two reopens between syncs: two events with distinct keys.
        let twice = TicketFacts {
            reopens: 2,
            ..reopened.clone()
        };
        let found = detect_from_snapshots(Some(&solved), &twice);
        assert_eq!(keys(&found).len(), 2);
        // Open -> closed without solved_at: solved at updated_at (estimate).
        let closed = TicketFacts {
            status: Status::Closed,
            ..open.clone()
        };
        let found = detect_from_snapshots(Some(&open), &closed);
        assert_eq!(summary(&found), vec![(Solved, 100, false)]);
        assert!(!found[0].exact_time);
        // Solved -> closed: nothing.
        let solved_closed = TicketFacts {
            status: Status::Closed,
            ..solved.clone()
        };
        assert!(detect_from_snapshots(Some(&solved), &solved_closed).is_empty());
        // Normal -> urgent: escalated at updated_at.
        let normal = snapshot(Status::Open, Priority::Normal);
        assert_eq!(seen(Some(&normal), &open), [(Created, 100, true)]);
        // Not high/urgent now: nothing, whatever happened.
        let normal_solved = TicketFacts {
            status: Status::Solved,
            solved_at: Some(time(50)),
            ..normal.clone()
        };
        assert!(detect_from_snapshots(Some(&normal), &normal_solved).is_empty());
        assert!(detect_from_snapshots(None, &normal).is_empty());
    }

    fn rating(score: RatingScore) -> RatingFacts {
        RatingFacts {
            id: 9,
            ticket_id: 42,
            score,
            created_at: time(0),
            updated_at: time(30),
        }
    }

    #[test]
    fn bad_ratings_are_events_once_per_rating() {
        let bad = rating(RatingScore::Bad);
        let event = detect_rating(None, &bad).expect("bad rating event");
        assert_eq!(event.kind, EventKind::BadSatisfactionRating);
        assert_eq!(event.key, format!("r9:bad:{}", T0 + 30 * 60));
        assert_eq!((event.ticket_id, event.rating_id), (42, Some(9)));
        assert_eq!(event.occurred_at, time(30));
        assert!(detect_rating(None, &rating(RatingScore::BadWithComment)).is_some());
        for score in [
            RatingScore::Good,
            RatingScore::GoodWithComment,
            RatingScore::Offered,
            RatingScore::Unoffered,
            RatingScore::Other,
        ] {
            assert!(detect_rating(None, &rating(score)).is_none(), "{score:?}");
        }
        // Offered, then answered bad later: the event is at the time it turned bad.
        let offered = rating(RatingScore::Offered);
        let answered = RatingFacts {
            updated_at: time(500),
            ..bad.clone()
        };
        let event = detect_rating(Some(&offered), &answered).expect("turned bad");
        assert_eq!(event.occurred_at, time(500));
        // Still bad: nothing new. Bad -> good -> bad: a new event, keyed by the time of the new score.
        assert!(detect_rating(Some(&bad), &answered).is_none());
        let bad_again = RatingFacts {
            updated_at: time(900),
            ..bad.clone()
        };
        let flipped =
            detect_rating(Some(&rating(RatingScore::Good)), &bad_again).expect("bad again");
        assert_ne!(flipped.key, event.key);
        assert_eq!(flipped.occurred_at, time(900));
    }

    #[test]
    fn first_sync_marks_backfill_and_keeps_the_past_year_only() {
        let now = time(0) + Duration::days(400);
        let event_at = |at: DateTime<Utc>| {
            DetectedEvent::ticket(Solved, 1, at, DetectionSource::History, true, None)
        };
        let events = vec![
            event_at(now - Duration::days(365) - Duration::seconds(1)),
            event_at(now - Duration::days(365)),
            event_at(now - Duration::days(3)),
        ];
        let backfilled = finalize_for_sync(events.clone(), true, now);
        assert_eq!(backfilled.len(), 2);
        assert!(backfilled.iter().all(|event| event.backfill));
        assert_eq!(backfilled[0].occurred_at, now - Duration::days(365));
        let live = finalize_for_sync(events, false, now);
        assert_eq!(live.len(), 3);
        assert!(live.iter().all(|event| !event.backfill));
        assert!(is_backfill(true) && !is_backfill(false));
        assert_eq!(backfill_horizon(now), now - Duration::days(365));
    }
}
