//! The page pipeline's shared types: what one page (or a batch of pages) writes, the context derived
//! state reads, and what applying it did.
use super::zendesk_records::{
    ChangeRecord, GroupRecord, OrganizationRecord, RatingRecord, TicketRecord, ZendeskUserRecord,
};

/// One status or priority change to store.
#[derive(Debug, Clone, PartialEq)]
pub struct TicketChange {
    /// The ticket.
    pub ticket_id: u64,
    /// When it happened (Unix seconds).
    pub at: i64,
    /// The Zendesk event id.
    pub event_id: u64,
    /// Position of the change within the event.
    pub index: u32,
    /// The change.
    pub change: ChangeRecord,
}

/// The current rating a ticket carries in the ticket export (`satisfaction_rating`): how a score given or
/// changed after the rating was listed reaches zdsync (the rating list is by creation time).
#[derive(Debug, Clone, PartialEq)]
pub struct TicketRating {
    /// The rating.
    pub rating_id: u64,
    /// The ticket carrying it.
    pub ticket_id: u64,
    /// The score as Zendesk names it.
    pub score: String,
    /// The comment (empty when none).
    pub comment: String,
    /// The ticket's `updated_at` (Unix seconds): a score is a ticket update, so it was given then at the latest.
    pub seen_at: i64,
}

/// Everything one page writes.
#[derive(Debug, Clone, Default)]
pub struct PageWrite {
    /// Tickets by id.
    pub tickets: Vec<(u64, TicketRecord)>,
    /// Users by id.
    pub users: Vec<(u64, ZendeskUserRecord)>,
    /// Organizations by id.
    pub organizations: Vec<(u64, OrganizationRecord)>,
    /// Groups by id.
    pub groups: Vec<(u64, GroupRecord)>,
    /// Ratings by id.
    pub ratings: Vec<(u64, RatingRecord)>,
    /// The ratings the page's tickets carry.
    pub ticket_ratings: Vec<TicketRating>,
    /// Status and priority changes.
    pub changes: Vec<TicketChange>,
    /// Stream positions to store with the page (the one that follows it, and any other to move along).
    pub cursors: Vec<(String, Vec<u8>)>,
    /// When set, the page belongs to this nightly validation run: tickets are marked seen and drift counted.
    pub validation_run: Option<u64>,
    /// How derived state (rollups, timeline events) treats this page.
    pub context: PageContext,
    /// The run's (pages, tickets) applied including this page, kept with the page so a killed run
    /// resumes with its counts.
    pub run_progress: Option<(u64, u64)>,
    /// The stored bytes of the tickets, users and organizations, when [`PageWrite::encode_ahead`] made them;
    /// the commit encodes what is not.
    pub encoded: EncodedRecords,
}

/// The stored bytes of a write's tickets, users and organizations, each in the order of its records.
#[derive(Debug, Clone, Default)]
pub struct EncodedRecords {
    /// The bytes of each of `PageWrite::tickets`.
    pub tickets: Vec<Vec<u8>>,
    /// The bytes of each of `PageWrite::users`.
    pub users: Vec<Vec<u8>>,
    /// The bytes of each of `PageWrite::organizations`.
    pub organizations: Vec<Vec<u8>>,
}

/// Ticket changes that count as one record against a commit's bound (see [`PageWrite::commit_weight`]).
pub const CHANGES_PER_RECORD: usize = 8;

impl PageWrite {
    /// Records this write holds (tickets, side-loads, ratings and changes).
    pub fn records(&self) -> usize {
        self.tickets.len()
            + self.users.len()
            + self.organizations.len()
            + self.groups.len()
            + self.ratings.len()
            + self.ticket_ratings.len()
            + self.changes.len()
    }

    /// What this write counts against a commit's bound of records: every record once, but ticket changes an
    /// eighth each. A change is a few dozen bytes staged against a ticket's kilobyte, and the facts a page of
    /// changes yields go to tables keyed by organization and account, which a commit's facts hit all over:
    /// the fewer commits the ticket events export takes, the fewer times each of their leaves is rewritten.
    /// At 1,000,000 tickets the ticket-events phase wrote 6.9 GB in 80 s with a change counting whole, and
    /// 3.2 GB in 35 s counting a fifth, with the daemon's peak RSS 89 MiB (issue #13). Counting an eighth
    /// (stop 23, schema 9), a commit of that phase takes the 100 pages `pages_per_commit` allows at most, where a
    /// fifth made it 75: the phase took 10.41 and 10.92 s against 11.34 and 12.41 s, with peak RSS 85 MiB against
    /// 80 (the ticket phase, whose records weigh more, keeps the peak under the same bound either way).
    pub fn commit_weight(&self) -> usize {
        self.records() - self.changes.len() + self.changes.len().div_ceil(CHANGES_PER_RECORD)
    }

    /// Encodes the tickets, users and organizations as they will be stored. A sync does it on its lane's
    /// thread as each page is staged, while the previous commit runs: at 1,000,000 tickets encoding them was
    /// 5 % of the commit thread's samples in the ticket phase (perf), and every commit of a run goes through
    /// that one thread.
    pub fn encode_ahead(&mut self) {
        use prost::Message;
        self.encoded = EncodedRecords {
            tickets: self
                .tickets
                .iter()
                .map(|(_, r)| r.encode_to_vec())
                .collect(),
            users: self.users.iter().map(|(_, r)| r.encode_to_vec()).collect(),
            organizations: self
                .organizations
                .iter()
                .map(|(_, r)| r.encode_to_vec())
                .collect(),
        };
    }

    /// Whether every ticket, user and organization has its bytes in [`PageWrite::encoded`].
    fn is_encoded(&self) -> bool {
        self.encoded.tickets.len() == self.tickets.len()
            && self.encoded.users.len() == self.users.len()
            && self.encoded.organizations.len() == self.organizations.len()
    }

    /// The stored bytes of `tickets[index]`, if encoded ahead.
    pub(crate) fn encoded_ticket(&self, index: usize) -> Option<&[u8]> {
        self.encoded_at(&self.encoded.tickets, index)
    }

    /// The stored bytes of `users[index]`, if encoded ahead.
    pub(crate) fn encoded_user(&self, index: usize) -> Option<&[u8]> {
        self.encoded_at(&self.encoded.users, index)
    }

    /// The stored bytes of `organizations[index]`, if encoded ahead.
    pub(crate) fn encoded_organization(&self, index: usize) -> Option<&[u8]> {
        self.encoded_at(&self.encoded.organizations, index)
    }

    fn encoded_at<'a>(&self, encoded: &'a [Vec<u8>], index: usize) -> Option<&'a [u8]> {
        // Bytes that do not cover every record are not trusted for any (a write edited after encoding).
        if self.is_encoded() {
            encoded.get(index).map(Vec::as_slice)
        } else {
            None
        }
    }

    /// Appends a later page, so both commit in one transaction; the later page's cursors win.
    pub fn append(&mut self, page: PageWrite) {
        // The bytes stay only if both writes have all of theirs: they must line up with the records.
        if self.is_encoded() && page.is_encoded() {
            self.encoded.tickets.extend(page.encoded.tickets);
            self.encoded.users.extend(page.encoded.users);
            self.encoded
                .organizations
                .extend(page.encoded.organizations);
        } else {
            self.encoded = EncodedRecords::default();
        }
        self.tickets.extend(page.tickets);
        self.users.extend(page.users);
        self.organizations.extend(page.organizations);
        self.groups.extend(page.groups);
        self.ratings.extend(page.ratings);
        self.ticket_ratings.extend(page.ticket_ratings);
        self.changes.extend(page.changes);
        // Positions are written in order, so the last page's cursor is the one stored.
        self.cursors.extend(page.cursors);
        self.validation_run = self.validation_run.or(page.validation_run);
        self.context = page.context;
        self.run_progress = page.run_progress.or(self.run_progress);
    }
}

/// What derived state needs to know about the run a page belongs to.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct PageContext {
    /// The page belongs to the first full sync: events it yields are backfill (past year only).
    pub first_sync: bool,
    /// Zendesk refused the ticket events export: detect events from ticket snapshots instead.
    pub snapshot_events: bool,
    /// When the page is applied (Unix milliseconds), the events' `detected_at`.
    pub now_ms: i64,
}

/// A record a page wrote: its id, the copy it replaced (if any) and the new copy.
pub type Written<R> = (u64, Option<R>, R);

/// What applying a page did.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct ApplyOutcome {
    /// Tickets written (new or newer than the stored copy).
    pub tickets_written: u64,
    /// Records skipped because the stored copy was newer.
    pub stale_skipped: u64,
    /// For a validation page: stored tickets that differed from what Zendesk returned.
    pub tickets_drifted: u64,
    /// For a validation page: tickets Zendesk returned that the store did not have.
    pub tickets_drift_added: u64,
    /// Rollup rows a delta did not fit (a counter would have gone below zero): drift, logged, kept
    /// clamped until the nightly rebuild repairs it.
    pub rollup_rows_drifted: u64,
    /// Timeline events this page recorded (new facts only).
    pub events_recorded: u64,
    /// Whether any account's timeline grew (a new fact, or a backfill after a new match): watchers are told.
    pub timeline_grew: bool,
    /// Whether the page wrote a ticket, a rating or an organization: what account figures and matches are
    /// computed from (a validation page that finds every record unchanged writes none).
    pub figure_inputs_written: bool,
    /// Whether the page wrote an organization or a user: what `GetStatus`'s match counts are computed from.
    pub match_inputs_written: bool,
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::zendesk_records::TicketRecord;

    #[test]
    fn a_commit_counts_records_whole_and_ticket_changes_an_eighth() {
        let change = |event_id| TicketChange {
            ticket_id: 1,
            at: 0,
            event_id,
            index: 0,
            change: ChangeRecord::default(),
        };
        let changes = |count: u64| (0..count).map(change).collect::<Vec<_>>();
        let only_changes = PageWrite {
            changes: changes(16),
            ..Default::default()
        };
        assert_eq!(only_changes.records(), 16);
        assert_eq!(only_changes.commit_weight(), 2);
        let mixed = PageWrite {
            tickets: vec![(1, TicketRecord::default()), (2, TicketRecord::default())],
            changes: changes(9),
            ..Default::default()
        };
        assert_eq!(
            mixed.commit_weight(),
            2 + 2,
            "nine changes round up to two records"
        );
        assert_eq!(PageWrite::default().commit_weight(), 0);
    }
}
