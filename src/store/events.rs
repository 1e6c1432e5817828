//! Timeline events: detected in the page transaction, stored once by deterministic key, listed and watched.
//!
//! An event is written once under its deterministic key (`EVENTS`), gets the next sequence number
//! (`EVENT_LOG`, the watch cursor) and is indexed by organization and time (`ORG_EVENTS`) and by
//! time alone (`EVENT_TIMES`). The account an event belongs to is resolved when it is read, through
//! the organization's current match, so a re-match re-attributes events without rewriting them.
use std::collections::{BTreeMap, BTreeSet, BinaryHeap};

use chrono::{DateTime, Utc};
use prost::Message;
use redb::{ReadOnlyTable, ReadTransaction, ReadableDatabase, ReadableTable, WriteTransaction};

use crate::domain::events::{
    backfill_horizon, detect_from_history, detect_from_snapshots, detect_rating, finalize_for_sync,
    DetectedEvent, EventKind, FieldChange, HistoryEntry,
};
use crate::domain::metrics::{RatingFacts, TicketFacts};
use crate::domain::ticket::{Priority, Status};

use super::matching::OrgMatchRecord;
use super::pages::{PageContext, TicketChange, Written};
use super::tables::{self, meta_keys};
use super::zendesk_records::{
    ChangeRecord, GroupRecord, RatingRecord, TicketRecord, ZendeskUserRecord,
};
use super::{Store, StoreError};

/// A timeline event as stored: what was detected plus a snapshot of the ticket when it occurred.
#[derive(Clone, PartialEq, Message)]
pub struct EventRecord {
    /// Position in recording order (the watch cursor).
    #[prost(uint64, tag = "1")]
    pub seq: u64,
    /// The kind, as the `TimelineEventKind` number of the contract.
    #[prost(uint32, tag = "2")]
    pub kind: u32,
    /// The ticket.
    #[prost(uint64, tag = "3")]
    pub ticket_id: u64,
    /// The rating, for bad-rating events; 0 otherwise.
    #[prost(uint64, tag = "4")]
    pub rating_id: u64,
    /// The ticket's organization when the event was detected (0: none).
    #[prost(uint64, tag = "5")]
    pub organization_id: u64,
    /// The ticket's requester.
    #[prost(uint64, tag = "6")]
    pub requester_id: u64,
    /// When it happened in Zendesk (Unix ms).
    #[prost(int64, tag = "7")]
    pub occurred_at_ms: i64,
    /// When zdsync recorded it (Unix ms).
    #[prost(int64, tag = "8")]
    pub detected_at_ms: i64,
    /// Recorded by the first sync's backfill.
    #[prost(bool, tag = "9")]
    pub backfill: bool,
    /// A created event of a ticket raised to high/urgent after creation.
    #[prost(bool, tag = "10")]
    pub escalated: bool,
    /// The rating's score (`bad` or `bad_with_comment`); empty for ticket events.
    #[prost(string, tag = "11")]
    pub score: String,
    /// The rating's comment.
    #[prost(string, tag = "12")]
    pub comment: String,
    /// The ticket's subject.
    #[prost(string, tag = "13")]
    pub subject: String,
    /// The ticket's priority name when the event occurred (empty: none).
    #[prost(string, tag = "14")]
    pub priority: String,
    /// The ticket's status name when the event occurred.
    #[prost(string, tag = "15")]
    pub status: String,
    /// The requester's name.
    #[prost(string, tag = "16")]
    pub requester_name: String,
    /// The requester's email.
    #[prost(string, tag = "17")]
    pub requester_email: String,
    /// When the ticket was created (Unix ms).
    #[prost(int64, tag = "18")]
    pub reported_at_ms: i64,
    /// The name of the ticket's group (empty: none).
    #[prost(string, tag = "19")]
    pub group_name: String,
    /// The name of the ticket's assignee (empty: none).
    #[prost(string, tag = "20")]
    pub assignee_name: String,
    /// The deterministic key.
    #[prost(string, tag = "21")]
    pub key: String,
}

/// The `TimelineEventKind` number of a kind (the contract's enum values).
pub fn kind_number(kind: EventKind) -> u32 {
    match kind {
        EventKind::HighUrgentTicketCreated => 1,
        EventKind::HighUrgentTicketSolved => 2,
        EventKind::HighUrgentTicketReopened => 3,
        EventKind::BadSatisfactionRating => 4,
    }
}

/// Whose events to read.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum EventScope {
    /// Events of every account (events of unmatched organizations are left out).
    AllAccounts,
    /// Events of one account.
    Account(String),
    /// Events of every account this owner email owns (compared lower-cased).
    Owner(String),
}

/// Which events a list or watch returns.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EventFilter {
    /// Whose events.
    pub scope: EventScope,
    /// Only events that occurred at or after this Unix ms.
    pub since_ms: Option<i64>,
    /// Only events that occurred before this Unix ms.
    pub until_ms: Option<i64>,
    /// Only these kind numbers; empty means every kind.
    pub kinds: BTreeSet<u32>,
}

/// Where a newest-first list continues: strictly older than this (occurred ms, seq).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub struct EventPosition {
    /// Occurred at (Unix ms).
    pub occurred_ms: i64,
    /// Sequence number.
    pub seq: u64,
}

/// A stored event with its account resolved at read time.
#[derive(Debug, Clone, PartialEq)]
pub struct StoredEvent {
    /// The stored record.
    pub record: EventRecord,
    /// The account the event's organization matches now; `None` when it matches none.
    pub account_id: Option<String>,
    /// The requester's email when it is a user of that account; empty otherwise.
    pub user_email: String,
}

/// One page of a newest-first list.
#[derive(Debug, Clone, PartialEq)]
pub struct EventPage {
    /// The events, newest first.
    pub events: Vec<StoredEvent>,
    /// Where the next page continues; `None` on the last page.
    pub next: Option<EventPosition>,
}

/// What a scan of the log in recording order found.
#[derive(Debug, Clone, PartialEq)]
pub struct LogBatch {
    /// The events in scope, in recording order.
    pub events: Vec<StoredEvent>,
    /// The last sequence number scanned (in scope or not); the given one when nothing was scanned.
    pub scanned_to: u64,
}

/// Detects and records the events of a page; returns how many new events were recorded.
pub(crate) fn apply(
    txn: &WriteTransaction,
    tickets: &[Written<TicketRecord>],
    ratings: &[Written<RatingRecord>],
    changes: &[TicketChange],
    context: &PageContext,
) -> Result<u64, StoreError> {
    let now = DateTime::from_timestamp_millis(context.now_ms).unwrap_or_default();
    let mut detected: Vec<(DetectedEvent, Option<TicketState>)> = Vec::new();
    if context.snapshot_events {
        for (id, previous, current) in tickets {
            let current_facts = ticket_facts(*id, current)?;
            let previous_facts = previous
                .as_ref()
                .map(|previous| ticket_facts(*id, previous))
                .transpose()?;
            let events = detect_from_snapshots(previous_facts.as_ref(), &current_facts);
            detected.extend(
                finalize_for_sync(events, context.first_sync, now)
                    .into_iter()
                    .map(|event| (event, None)),
            );
        }
    } else {
        // The whole stored history of every ticket the page touches: the same keys every time.
        let mut ids: BTreeSet<u64> = changes.iter().map(|change| change.ticket_id).collect();
        // A ticket stored after its changes (created while the run was between phases).
        ids.extend(
            tickets
                .iter()
                .filter(|(_, previous, _)| previous.is_none())
                .map(|(id, _, _)| *id),
        );
        let stored_tickets = txn.open_table(tables::TICKETS)?;
        let stored_changes = txn.open_table(tables::TICKET_CHANGES)?;
        for id in ids {
            let Some(bytes) = stored_tickets.get(id)? else {
                continue;
            };
            let record = decode::<TicketRecord>("tickets", &id.to_string(), bytes.value())?;
            let facts = ticket_facts(id, &record)?;
            let mut entries = Vec::new();
            for row in
                stored_changes.range((id, i64::MIN, 0, 0)..=(id, i64::MAX, u64::MAX, u32::MAX))?
            {
                let (key, value) = row?;
                let (ticket_id, at, event_id, index) = key.value();
                let change = decode::<ChangeRecord>(
                    "ticket_changes",
                    &format!("{ticket_id}/{at}/{event_id}/{index}"),
                    value.value(),
                )?;
                let entry = HistoryEntry::from_record(ticket_id, at, event_id, index, &change)
                    .map_err(|err| StoreError::Corrupt {
                        table: "ticket_changes",
                        key: format!("{ticket_id}/{at}/{event_id}/{index}"),
                        detail: err.to_string(),
                    })?;
                entries.push(entry);
            }
            if entries.is_empty() {
                continue;
            }
            let detection = detect_from_history(&facts, None, &entries);
            for event in finalize_for_sync(detection.events, context.first_sync, now) {
                let state = state_at(&facts, &entries, event.occurred_at);
                detected.push((event, Some(state)));
            }
        }
    }
    for (id, previous, current) in ratings {
        let current_facts = rating_facts(*id, current)?;
        let previous_facts = previous
            .as_ref()
            .map(|previous| rating_facts(*id, previous))
            .transpose()?;
        if let Some(event) = detect_rating(previous_facts.as_ref(), &current_facts) {
            detected.extend(
                finalize_for_sync(vec![event], context.first_sync, now)
                    .into_iter()
                    .map(|event| (event, None)),
            );
        }
    }
    record_new(txn, detected, ratings, context, now)
}

/// Status and priority of a ticket at an instant, as its history tells (the snapshot fills gaps).
type TicketState = (Status, Priority);

fn state_at(ticket: &TicketFacts, entries: &[HistoryEntry], at: DateTime<Utc>) -> TicketState {
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
    (
        status.or(first_status_from).unwrap_or(ticket.status),
        priority.or(first_priority_from).unwrap_or(ticket.priority),
    )
}

/// Writes the events whose keys are not stored yet; returns how many.
fn record_new(
    txn: &WriteTransaction,
    detected: Vec<(DetectedEvent, Option<TicketState>)>,
    ratings: &[Written<RatingRecord>],
    context: &PageContext,
    now: DateTime<Utc>,
) -> Result<u64, StoreError> {
    if detected.is_empty() {
        return Ok(0);
    }
    // An event older than a year is history no sync backfills, also when a later sync re-derives it.
    let horizon = backfill_horizon(now);
    let ratings: BTreeMap<u64, &RatingRecord> = ratings
        .iter()
        .map(|(id, _, rating)| (*id, rating))
        .collect();
    let mut events = txn.open_table(tables::EVENTS)?;
    let mut log = txn.open_table(tables::EVENT_LOG)?;
    let mut by_org = txn.open_table(tables::ORG_EVENTS)?;
    let mut by_time = txn.open_table(tables::EVENT_TIMES)?;
    let mut meta = txn.open_table(tables::META)?;
    let tickets = txn.open_table(tables::TICKETS)?;
    let users = txn.open_table(tables::USERS)?;
    let groups = txn.open_table(tables::GROUPS)?;
    let mut seq = match meta.get(meta_keys::EVENT_SEQ)? {
        Some(bytes) => decode_seq(bytes.value())?,
        None => 0,
    };
    let mut recorded = 0;
    for (event, state) in detected {
        if event.occurred_at < horizon || events.get(event.key.as_str())?.is_some() {
            continue;
        }
        let ticket = match tickets.get(event.ticket_id)? {
            Some(bytes) => Some(decode::<TicketRecord>(
                "tickets",
                &event.ticket_id.to_string(),
                bytes.value(),
            )?),
            None => None,
        };
        let rating = event.rating_id.and_then(|id| ratings.get(&id).copied());
        let ticket = ticket.unwrap_or_default();
        let requester_id = if ticket.requester_id != 0 {
            ticket.requester_id
        } else {
            rating.map_or(0, |rating| rating.requester_id)
        };
        let requester = user(&users, requester_id)?;
        let assignee = user(&users, ticket.assignee_id)?;
        let group = match groups.get(ticket.group_id)? {
            Some(bytes) if ticket.group_id != 0 => Some(decode::<GroupRecord>(
                "groups",
                &ticket.group_id.to_string(),
                bytes.value(),
            )?),
            _ => None,
        };
        let (status, priority) = match state {
            Some((status, priority)) => (status.name().to_owned(), priority.name().to_owned()),
            None => (
                Status::from_code(ticket.status)
                    .map(|status| status.name().to_owned())
                    .unwrap_or_default(),
                Priority::from_code(ticket.priority)
                    .map(|priority| priority.name().to_owned())
                    .unwrap_or_default(),
            ),
        };
        seq += 1;
        let occurred_ms = event.occurred_at.timestamp_millis();
        let record = EventRecord {
            seq,
            kind: kind_number(event.kind),
            ticket_id: event.ticket_id,
            rating_id: event.rating_id.unwrap_or(0),
            organization_id: ticket.organization_id,
            requester_id,
            occurred_at_ms: occurred_ms,
            detected_at_ms: context.now_ms,
            backfill: event.backfill,
            escalated: event.escalated,
            score: rating.map(|r| r.score.clone()).unwrap_or_default(),
            comment: rating.map(|r| r.comment.clone()).unwrap_or_default(),
            subject: ticket.subject.clone(),
            priority,
            status,
            requester_name: requester
                .as_ref()
                .map(|u| u.name.clone())
                .unwrap_or_default(),
            requester_email: requester.map(|u| u.email).unwrap_or_default(),
            reported_at_ms: ticket.created_at.saturating_mul(1000),
            group_name: group.map(|g| g.name).unwrap_or_default(),
            assignee_name: assignee.map(|u| u.name).unwrap_or_default(),
            key: event.key.clone(),
        };
        events.insert(event.key.as_str(), record.encode_to_vec().as_slice())?;
        log.insert(seq, event.key.as_str())?;
        by_org.insert((ticket.organization_id, occurred_ms, seq), ())?;
        by_time.insert((occurred_ms, seq), ticket.organization_id)?;
        recorded += 1;
    }
    meta.insert(meta_keys::EVENT_SEQ, seq.to_le_bytes().as_slice())?;
    Ok(recorded)
}

fn user(users: &redb::Table<u64, &[u8]>, id: u64) -> Result<Option<ZendeskUserRecord>, StoreError> {
    if id == 0 {
        return Ok(None);
    }
    users
        .get(id)?
        .map(|bytes| decode::<ZendeskUserRecord>("users", &id.to_string(), bytes.value()))
        .transpose()
}

fn ticket_facts(id: u64, record: &TicketRecord) -> Result<TicketFacts, StoreError> {
    TicketFacts::from_record(id, record).map_err(|err| StoreError::Corrupt {
        table: "tickets",
        key: id.to_string(),
        detail: err.to_string(),
    })
}

fn rating_facts(id: u64, record: &RatingRecord) -> Result<RatingFacts, StoreError> {
    RatingFacts::from_record(id, record).map_err(|err| StoreError::Corrupt {
        table: "ratings",
        key: id.to_string(),
        detail: err.to_string(),
    })
}

fn decode<M: Message + Default>(
    table: &'static str,
    key: &str,
    bytes: &[u8],
) -> Result<M, StoreError> {
    M::decode(bytes).map_err(|err| StoreError::Corrupt {
        table,
        key: key.to_owned(),
        detail: err.to_string(),
    })
}

fn decode_seq(bytes: &[u8]) -> Result<u64, StoreError> {
    <[u8; 8]>::try_from(bytes)
        .map(u64::from_le_bytes)
        .map_err(|_| StoreError::Corrupt {
            table: "meta",
            key: meta_keys::EVENT_SEQ.into(),
            detail: "not an 8-byte sequence number".into(),
        })
}

/// The read side: tables of one read transaction.
struct Reader {
    events: ReadOnlyTable<&'static str, &'static [u8]>,
    log: ReadOnlyTable<u64, &'static str>,
    matches: ReadOnlyTable<u64, &'static [u8]>,
    emails: ReadOnlyTable<(&'static str, &'static str), ()>,
    owners: ReadOnlyTable<(&'static str, &'static str), ()>,
}

impl Reader {
    fn open(txn: &ReadTransaction) -> Result<Self, StoreError> {
        Ok(Self {
            events: txn.open_table(tables::EVENTS)?,
            log: txn.open_table(tables::EVENT_LOG)?,
            matches: txn.open_table(tables::ORG_MATCHES)?,
            emails: txn.open_table(tables::ACCOUNT_EMAILS)?,
            owners: txn.open_table(tables::ACCOUNT_OWNERS)?,
        })
    }

    fn record(&self, seq: u64) -> Result<Option<EventRecord>, StoreError> {
        let Some(key) = self.log.get(seq)? else {
            return Ok(None);
        };
        let key = key.value().to_owned();
        self.events
            .get(key.as_str())?
            .map(|bytes| decode::<EventRecord>("events", &key, bytes.value()))
            .transpose()
    }

    fn account_of(&self, org: u64) -> Result<Option<String>, StoreError> {
        if org == 0 {
            return Ok(None);
        }
        let Some(bytes) = self.matches.get(org)? else {
            return Ok(None);
        };
        let record = decode::<OrgMatchRecord>("org_matches", &org.to_string(), bytes.value())?;
        Ok(match record.to_match() {
            crate::domain::matching::OrgMatch::Matched { account_id } => Some(account_id),
            _ => None,
        })
    }

    fn resolve(&self, record: EventRecord) -> Result<StoredEvent, StoreError> {
        let account_id = self.account_of(record.organization_id)?;
        let email = record.requester_email.to_lowercase();
        let user_email = match &account_id {
            Some(account) if !email.is_empty() => {
                if self
                    .emails
                    .get((email.as_str(), account.as_str()))?
                    .is_some()
                {
                    email
                } else {
                    String::new()
                }
            }
            _ => String::new(),
        };
        Ok(StoredEvent {
            record,
            account_id,
            user_email,
        })
    }

    fn in_scope(&self, scope: &EventScope, account: Option<&str>) -> Result<bool, StoreError> {
        let Some(account) = account else {
            return Ok(false);
        };
        Ok(match scope {
            EventScope::AllAccounts => true,
            EventScope::Account(id) => id == account,
            EventScope::Owner(owner) => self
                .owners
                .get((owner.to_lowercase().as_str(), account))?
                .is_some(),
        })
    }
}

fn matches_filter(record: &EventRecord, filter: &EventFilter) -> bool {
    (filter.kinds.is_empty() || filter.kinds.contains(&record.kind))
        && filter
            .since_ms
            .is_none_or(|since| record.occurred_at_ms >= since)
        && filter
            .until_ms
            .is_none_or(|until| record.occurred_at_ms < until)
}

impl Store {
    /// The sequence number of the last recorded event (0: none yet).
    pub fn last_event_seq(&self) -> Result<u64, StoreError> {
        let txn = self.db().begin_read()?;
        let meta = txn.open_table(tables::META)?;
        let value = meta.get(meta_keys::EVENT_SEQ)?;
        value.map_or(Ok(0), |bytes| decode_seq(bytes.value()))
    }

    /// How many events are stored.
    pub fn event_count(&self) -> Result<u64, StoreError> {
        let txn = self.db().begin_read()?;
        Ok(redb::ReadableTableMetadata::len(
            &txn.open_table(tables::EVENTS)?,
        )?)
    }

    /// One stored event by its key.
    pub fn event(&self, key: &str) -> Result<Option<EventRecord>, StoreError> {
        let txn = self.db().begin_read()?;
        let table = txn.open_table(tables::EVENTS)?;
        let value = table.get(key)?;
        value
            .map(|bytes| decode::<EventRecord>("events", key, bytes.value()))
            .transpose()
    }

    /// The organizations a scope covers now; `None` for every account (decided per event).
    fn scope_orgs(
        txn: &ReadTransaction,
        scope: &EventScope,
    ) -> Result<Option<BTreeSet<u64>>, StoreError> {
        let account_orgs = txn.open_table(tables::ACCOUNT_ORGS)?;
        let orgs_of = |account: &str, orgs: &mut BTreeSet<u64>| -> Result<(), StoreError> {
            for row in account_orgs.range((account, 0)..=(account, u64::MAX))? {
                orgs.insert(row?.0.value().1);
            }
            Ok(())
        };
        match scope {
            EventScope::AllAccounts => Ok(None),
            EventScope::Account(id) => {
                let mut orgs = BTreeSet::new();
                orgs_of(id, &mut orgs)?;
                Ok(Some(orgs))
            }
            EventScope::Owner(owner) => {
                let owner = owner.to_lowercase();
                let owners = txn.open_table(tables::ACCOUNT_OWNERS)?;
                let mut orgs = BTreeSet::new();
                // Account ids are non-empty, so "" sorts before every one and the range is exact.
                for row in owners.range((owner.as_str(), "")..)? {
                    let (key, _) = row?;
                    let (row_owner, account) = key.value();
                    if row_owner != owner {
                        break;
                    }
                    orgs_of(account, &mut orgs)?;
                }
                Ok(Some(orgs))
            }
        }
    }

    /// Lists events newest first (by occurred time, then sequence), strictly older than `after`.
    pub fn list_events(
        &self,
        filter: &EventFilter,
        after: Option<EventPosition>,
        limit: usize,
    ) -> Result<EventPage, StoreError> {
        let txn = self.db().begin_read()?;
        let reader = Reader::open(&txn)?;
        let low = (filter.since_ms.unwrap_or(i64::MIN), 0u64);
        let mut high = (filter.until_ms.unwrap_or(i64::MAX), 0u64);
        if let Some(after) = after {
            high = high.min((after.occurred_ms, after.seq));
        }
        let mut events = Vec::new();
        let push = |reader: &Reader,
                    seq: u64,
                    events: &mut Vec<StoredEvent>|
         -> Result<bool, StoreError> {
            let Some(record) = reader.record(seq)? else {
                return Ok(false);
            };
            if !matches_filter(&record, filter) {
                return Ok(false);
            }
            let event = reader.resolve(record)?;
            if !reader.in_scope(&filter.scope, event.account_id.as_deref())? {
                return Ok(false);
            }
            events.push(event);
            Ok(true)
        };
        let mut last = None;
        let mut more = false;
        match Self::scope_orgs(&txn, &filter.scope)? {
            None => {
                let by_time = txn.open_table(tables::EVENT_TIMES)?;
                for row in by_time.range(low..high)?.rev() {
                    let (key, _) = row?;
                    let (occurred_ms, seq) = key.value();
                    if events.len() == limit {
                        more = true;
                        break;
                    }
                    if push(&reader, seq, &mut events)? {
                        last = Some(EventPosition { occurred_ms, seq });
                    }
                }
            }
            Some(orgs) => {
                let by_org = txn.open_table(tables::ORG_EVENTS)?;
                let mut ranges = Vec::with_capacity(orgs.len());
                // A max-heap of each organization's next entry: the newest pops first.
                let mut heap = BinaryHeap::new();
                for org in orgs {
                    let mut range = by_org
                        .range((org, low.0, low.1)..(org, high.0, high.1))?
                        .rev();
                    if let Some(row) = range.next() {
                        let (_, occurred_ms, seq) = row?.0.value();
                        heap.push(((occurred_ms, seq), ranges.len()));
                    }
                    ranges.push(range);
                }
                while let Some(((occurred_ms, seq), index)) = heap.pop() {
                    if events.len() == limit {
                        more = true;
                        break;
                    }
                    if push(&reader, seq, &mut events)? {
                        last = Some(EventPosition { occurred_ms, seq });
                    }
                    if let Some(range) = ranges.get_mut(index) {
                        if let Some(row) = range.next() {
                            let (_, occurred_ms, seq) = row?.0.value();
                            heap.push(((occurred_ms, seq), index));
                        }
                    }
                }
            }
        }
        Ok(EventPage {
            events,
            next: if more { last } else { None },
        })
    }

    /// Events recorded after `after_seq`, in recording order, scanning at most `limit` log entries.
    pub fn events_after(
        &self,
        after_seq: u64,
        limit: usize,
        filter: &EventFilter,
    ) -> Result<LogBatch, StoreError> {
        let txn = self.db().begin_read()?;
        let reader = Reader::open(&txn)?;
        let mut events = Vec::new();
        let mut scanned_to = after_seq;
        let start = after_seq.saturating_add(1);
        for row in reader.log.range(start..)?.take(limit) {
            let (seq, _) = row?;
            scanned_to = seq.value();
            let Some(record) = reader.record(scanned_to)? else {
                continue;
            };
            if !matches_filter(&record, filter) {
                continue;
            }
            let event = reader.resolve(record)?;
            if reader.in_scope(&filter.scope, event.account_id.as_deref())? {
                events.push(event);
            }
        }
        Ok(LogBatch { events, scanned_to })
    }
}
