//! Recording timeline events in the page transaction: detection from ticket history (or snapshots)
//! and ratings, each event stored once under its deterministic key with the next log sequence number.
use std::borrow::Cow;
use std::collections::{BTreeMap, BTreeSet, HashMap};

use chrono::{DateTime, Utc};
use redb::{ReadableTable, Table, WriteTransaction};

use crate::domain::events::{
    backfill_horizon, detect_from_history, detect_from_snapshots, detect_rating, finalize_for_sync,
    state_at, DetectedEvent, DetectionSource, EventKind, TicketState,
};
use crate::domain::matching::OrgMatch;
use crate::domain::ticket::{Priority, Status};

use super::facts::{stored_rating, stored_ticket};
use super::history::Histories;
use super::matching::OrgMatchRecord;
use super::page::{PageContext, TicketChange, Written};
use super::tables;
use super::timeline::TimelineWriter;
use super::zendesk_records::{
    ChangeRecord, GroupRecord, RatingRecord, TicketRecord, ZendeskUserRecord, CHANGE_FIELD_PRIORITY,
};
use super::StoreError;

use super::codec::get_by_id;
use super::events::{decode, kind_number, EventRecord};

/// Detects and records the events of a page; returns how many new events were recorded.
pub(crate) fn apply(
    txn: &WriteTransaction,
    tickets: &[Written<TicketRecord>],
    ratings: &[Written<RatingRecord>],
    changes: &[TicketChange],
    histories: &Histories,
    context: &PageContext,
) -> Result<u64, StoreError> {
    let now = DateTime::from_timestamp_millis(context.now_ms).unwrap_or_default();
    let mut detected: Vec<(DetectedEvent, Option<TicketState>)> = Vec::new();
    // The stored copies detection read of the tickets that yielded events: recording needs them again.
    let mut read: BTreeMap<u64, TicketRecord> = BTreeMap::new();
    // Tickets the store did not have before this page.
    let arrived: BTreeSet<u64> = tickets
        .iter()
        .filter(|(_, previous, _)| previous.is_none())
        .map(|(id, _, _)| *id)
        .collect();
    if context.snapshot_events {
        for written in tickets {
            let (previous_facts, current_facts) = facts_of(written, stored_ticket)?;
            let events = detect_from_snapshots(previous_facts.as_ref(), &current_facts);
            detected.extend(
                finalize_for_sync(events, context.first_sync, now)
                    .into_iter()
                    .map(|event| (event, None)),
            );
        }
    } else {
        // The whole stored history of every ticket the page touches: the same keys every time. Per ticket:
        // whether the history must be read whatever the ticket's priority is now, and the page's latest change.
        let mut ids: BTreeMap<u64, (bool, i64)> = BTreeMap::new();
        for change in changes {
            crate::background::step_aside();
            let (must_read, latest) = ids.entry(change.ticket_id).or_insert((false, i64::MIN));
            *must_read |= moves_high_urgent(&change.change);
            *latest = (*latest).max(change.at);
        }
        let stored_tickets = txn.open_table(tables::TICKETS)?;
        let stored_history = txn.open_table(tables::TICKET_HISTORY)?;
        // A ticket stored after its changes (created while the run was between phases): its stored history was
        // never read with it, whatever its priority. Most new tickets have none yet (a first sync stores every
        // ticket before any change): one walk over their id range finds those that do.
        for id in super::history::tickets_with_history(&stored_history, &arrived)? {
            ids.insert(id, (true, i64::MIN));
        }
        for (id, (must_read, latest_change)) in ids {
            crate::background::step_aside();
            let Some(bytes) = stored_tickets.get(id)? else {
                continue;
            };
            let record = decode::<TicketRecord>("tickets", id, bytes.value())?;
            let facts = stored_ticket(id, &record)?;
            // Every kind needs the ticket high/urgent when it happened. A ticket whose stored copy is newer than
            // the page's changes and not high/urgent was lowered by a priority change later than any such
            // moment; changes arrive in time order, so the page carrying that lowering reads the whole history,
            // and this page can yield nothing new.
            let snapshot_covers_page = record.updated_at >= latest_change;
            if !must_read && snapshot_covers_page && !facts.priority.is_high_or_urgent() {
                continue;
            }
            // The histories the page just wrote and kept; any other is read.
            let history = match histories.get(&id) {
                Some(history) => Cow::Borrowed(history),
                None => match super::history::read(&stored_history, id)? {
                    Some(history) => Cow::Owned(history),
                    None => continue,
                },
            };
            let entries = super::history::entries(id, &history)?;
            if entries.is_empty() {
                continue;
            }
            let detection = detect_from_history(&facts, None, &entries);
            let before = detected.len();
            for event in finalize_for_sync(detection.events, context.first_sync, now) {
                let state = state_at(&facts, &entries, event.occurred_at);
                detected.push((event, Some(state)));
            }
            if detected.len() > before {
                read.insert(id, record);
            }
        }
    }
    if !ratings.is_empty() {
        let stored_tickets = txn.open_table(tables::TICKETS)?;
        for written in ratings {
            let (previous_facts, current_facts) = facts_of(written, stored_rating)?;
            let current = &written.2;
            let Some(event) = detect_rating(previous_facts.as_ref(), &current_facts) else {
                continue;
            };
            // A rating of a ticket deleted in Zendesk yields nothing, like the ticket's transitions.
            if !ticket_deleted(&stored_tickets, current.ticket_id)? {
                detected.extend(
                    finalize_for_sync(vec![event], context.first_sync, now)
                        .into_iter()
                        .map(|event| (event, None)),
                );
            }
        }
    }
    record_new(txn, detected, &read, &arrived, ratings, context, now)
}

/// Whether `change` raises a ticket to high/urgent or lowers it from there (an unknown priority counts as such).
///
/// Only such a change can make a ticket high/urgent at a moment its current copy, not high/urgent, does not
/// show: a priority created or changed below high (most tickets' creation) leaves the copy's word standing,
/// and a first sync then reads the history of the tickets that are or were high/urgent, not of every ticket.
pub(crate) fn moves_high_urgent(change: &ChangeRecord) -> bool {
    let high_urgent = |code| Priority::from_code(code).is_none_or(Priority::is_high_or_urgent);
    change.field == CHANGE_FIELD_PRIORITY && (high_urgent(change.from) || high_urgent(change.to))
}

/// The facts of a written record's previous and current copies.
fn facts_of<R, F>(
    (id, previous, current): &Written<R>,
    facts: impl Fn(u64, &R) -> Result<F, StoreError>,
) -> Result<(Option<F>, F), StoreError> {
    crate::background::step_aside();
    let previous = previous
        .as_ref()
        .map(|previous| facts(*id, previous))
        .transpose()?;
    Ok((previous, facts(*id, current)?))
}

/// Whether the stored ticket `id` is deleted or gone in Zendesk (an unknown ticket is not).
fn ticket_deleted(tickets: &redb::Table<u64, &[u8]>, id: u64) -> Result<bool, StoreError> {
    let Some(bytes) = tickets.get(id)? else {
        return Ok(false);
    };
    let record = decode::<TicketRecord>("tickets", id, bytes.value())?;
    Ok(!stored_ticket(id, &record)?.exists())
}

/// The tables a fact is built from and stored in. New facts are written at [`FactTables::finish`], each table
/// in key order (see [`TimelineWriter`]), so each B-tree is walked once from left to right.
struct FactTables<'txn> {
    events: Table<'txn, &'static [u8], &'static [u8]>,
    org_facts: Table<'txn, (i64, u64, i64, &'static str), ()>,
    /// Facts recorded and not written yet: fact key -> encoded `EventRecord`.
    new_events: BTreeMap<String, Vec<u8>>,
    /// Rows of `ORG_FACTS` recorded and not written yet: (day, organization, occurred at, fact key).
    new_org_facts: Vec<(i64, u64, i64, String)>,
    pending: Table<'txn, (u64, &'static str), tables::PendingRating>,
    matches: Table<'txn, u64, &'static [u8]>,
    tickets: Table<'txn, u64, &'static [u8]>,
    users: Table<'txn, u64, &'static [u8]>,
    groups: Table<'txn, u64, &'static [u8]>,
    /// What facts read of the tables nothing writes while they are recorded, read once per transaction: the
    /// same agents, groups and organizations come back fact after fact.
    looked_up: LookedUp,
}

/// Users (name, email), group names and organizations' matched accounts as read in this transaction.
#[derive(Default)]
struct LookedUp {
    users: HashMap<u64, Option<(String, String)>>,
    groups: HashMap<u64, Option<String>>,
    accounts: HashMap<u64, Option<String>>,
}

impl<'txn> FactTables<'txn> {
    fn open(txn: &'txn WriteTransaction) -> Result<Self, StoreError> {
        Ok(Self {
            events: txn.open_table(tables::EVENTS)?,
            org_facts: txn.open_table(tables::ORG_FACTS)?,
            new_events: BTreeMap::new(),
            new_org_facts: Vec::new(),
            pending: txn.open_table(tables::PENDING_RATING_EVENTS)?,
            matches: txn.open_table(tables::ORG_MATCHES)?,
            tickets: txn.open_table(tables::TICKETS)?,
            users: txn.open_table(tables::USERS)?,
            groups: txn.open_table(tables::GROUPS)?,
            looked_up: LookedUp::default(),
        })
    }

    fn ticket(&self, id: u64) -> Result<Option<TicketRecord>, StoreError> {
        get_by_id(&self.tickets, "tickets", id)
    }

    /// Whether the fact `key` is recorded already (in this transaction or before).
    fn known(&self, key: &str) -> Result<bool, StoreError> {
        Ok(self.new_events.contains_key(key) || self.events.get(key.as_bytes())?.is_some())
    }

    /// Writes the facts recorded, each table in key order.
    fn finish(mut self) -> Result<(), StoreError> {
        for (key, encoded) in std::mem::take(&mut self.new_events) {
            crate::background::step_aside();
            self.events.insert(key.as_bytes(), encoded.as_slice())?;
        }
        let mut org_facts = std::mem::take(&mut self.new_org_facts);
        org_facts.sort_unstable();
        for (day, org, occurred_at_ms, key) in org_facts {
            crate::background::step_aside();
            self.org_facts
                .insert((day, org, occurred_at_ms, key.as_str()), ())?;
        }
        Ok(())
    }

    /// The account `org` matches now, if any.
    fn account_of(&mut self, org: u64) -> Result<Option<String>, StoreError> {
        if org == 0 {
            return Ok(None);
        }
        if let Some(account) = self.looked_up.accounts.get(&org) {
            return Ok(account.clone());
        }
        let account = match self.matches.get(org)? {
            None => None,
            Some(bytes) => {
                match decode::<OrgMatchRecord>("org_matches", org, bytes.value())?.to_match() {
                    OrgMatch::Matched { account_id } => Some(account_id),
                    _ => None,
                }
            }
        };
        self.looked_up.accounts.insert(org, account.clone());
        Ok(account)
    }

    /// The name and email of user `id`, if stored.
    fn person(&mut self, id: u64) -> Result<Option<(String, String)>, StoreError> {
        if let Some(person) = self.looked_up.users.get(&id) {
            return Ok(person.clone());
        }
        let person = user(&self.users, id)?.map(|user| (user.name, user.email));
        self.looked_up.users.insert(id, person.clone());
        Ok(person)
    }

    /// The name of group `id`, if stored.
    fn group_name(&mut self, id: u64) -> Result<Option<String>, StoreError> {
        if id == 0 {
            return Ok(None);
        }
        if let Some(name) = self.looked_up.groups.get(&id) {
            return Ok(name.clone());
        }
        let name = match self.groups.get(id)? {
            Some(bytes) => Some(decode::<GroupRecord>("groups", id, bytes.value())?.name),
            None => None,
        };
        self.looked_up.groups.insert(id, name.clone());
        Ok(name)
    }

    /// The fact of `event` on `ticket`, with the ticket's people and group as stored now.
    fn fact(
        &mut self,
        event: &DetectedEvent,
        state: Option<TicketState>,
        ticket: &TicketRecord,
        rating: Option<(&str, &str, u64)>,
        now_ms: i64,
    ) -> Result<EventRecord, StoreError> {
        let requester_id = if ticket.requester_id != 0 {
            ticket.requester_id
        } else {
            rating.map_or(0, |(_, _, requester)| requester)
        };
        let requester = self.person(requester_id)?;
        let assignee = self.person(ticket.assignee_id)?;
        let group_name = self.group_name(ticket.group_id)?;
        let (status, priority) = match state {
            Some(TicketState { status, priority }) => {
                (status.name().to_owned(), priority.name().to_owned())
            }
            None => (
                Status::from_code(ticket.status)
                    .map(|status| status.name().to_owned())
                    .unwrap_or_default(),
                Priority::from_code(ticket.priority)
                    .map(|priority| priority.name().to_owned())
                    .unwrap_or_default(),
            ),
        };
        Ok(EventRecord {
            seq: 0,
            kind: kind_number(event.kind),
            ticket_id: event.ticket_id,
            rating_id: event.rating_id.unwrap_or(0),
            organization_id: ticket.organization_id,
            requester_id,
            occurred_at_ms: event.occurred_at.timestamp_millis(),
            detected_at_ms: now_ms,
            backfill: event.backfill,
            escalated: event.escalated,
            score: rating
                .map(|(score, _, _)| score.to_owned())
                .unwrap_or_default(),
            comment: rating
                .map(|(_, comment, _)| comment.to_owned())
                .unwrap_or_default(),
            subject: ticket.subject.clone(),
            priority,
            status,
            requester_name: requester
                .as_ref()
                .map(|(name, _)| name.clone())
                .unwrap_or_default(),
            requester_email: requester.map(|(_, email)| email).unwrap_or_default(),
            reported_at_ms: ticket.created_at.saturating_mul(1000),
            group_name: group_name.unwrap_or_default(),
            assignee_name: assignee.map(|(name, _)| name).unwrap_or_default(),
            key: event.key.clone(),
            account_id: String::new(),
            user_email: String::new(),
        })
    }

    /// Stores `fact`, which the store does not know yet ([`FactTables::known`]), and puts it on the timeline of
    /// the account its organization matches now.
    fn record(
        &mut self,
        mut fact: EventRecord,
        timeline: &mut TimelineWriter<'_>,
    ) -> Result<(), StoreError> {
        self.new_events
            .insert(fact.key.clone(), super::events::encode_fact(&mut fact));
        self.new_org_facts.push((
            tables::fact_day(fact.occurred_at_ms),
            fact.organization_id,
            fact.occurred_at_ms,
            fact.key.clone(),
        ));
        if let Some(account) = self.account_of(fact.organization_id)? {
            let (backfill, detected_at_ms) = (fact.backfill, fact.detected_at_ms);
            timeline.append_new_fact(fact, &account, backfill, detected_at_ms)?;
        }
        Ok(())
    }
}

/// Writes the facts whose keys are not stored yet, and completes the bad ratings held for tickets that
/// arrived; returns how many facts were recorded.
fn record_new(
    txn: &WriteTransaction,
    detected: Vec<(DetectedEvent, Option<TicketState>)>,
    read: &BTreeMap<u64, TicketRecord>,
    arrived: &BTreeSet<u64>,
    ratings: &[Written<RatingRecord>],
    context: &PageContext,
    now: DateTime<Utc>,
) -> Result<u64, StoreError> {
    if detected.is_empty() && arrived.is_empty() {
        return Ok(0);
    }
    // An event older than a year is history no sync backfills, also when a later sync re-derives it.
    let horizon = backfill_horizon(now);
    let ratings: BTreeMap<u64, &RatingRecord> = ratings
        .iter()
        .map(|(id, _, rating)| (*id, rating))
        .collect();
    let mut facts = FactTables::open(txn)?;
    let mut timeline = TimelineWriter::open(txn)?;
    let mut recorded = 0;
    for (event, state) in detected {
        if event.occurred_at < horizon || facts.known(&event.key)? {
            continue;
        }
        let rating = event.rating_id.and_then(|id| ratings.get(&id).copied());
        // The tickets table does not change while facts are recorded: a copy detection read is current.
        let stored;
        let ticket = if let Some(ticket) = read.get(&event.ticket_id) {
            Some(ticket)
        } else {
            stored = facts.ticket(event.ticket_id)?;
            stored.as_ref()
        };
        let Some(ticket) = ticket else {
            // A bad rating of a ticket not stored yet: held until the ticket arrives, so the event carries
            // the ticket's fields and goes to its organization's account.
            if let (Some(rating_id), Some(rating)) = (event.rating_id, rating) {
                facts.pending.insert(
                    (event.ticket_id, event.key.as_str()),
                    (
                        rating_id,
                        event.occurred_at.timestamp(),
                        event.backfill,
                        rating.score.as_str(),
                        rating.comment.as_str(),
                    ),
                )?;
            }
            continue;
        };
        let fact = facts.fact(
            &event,
            state,
            ticket,
            rating.map(|r| (r.score.as_str(), r.comment.as_str(), r.requester_id)),
            context.now_ms,
        )?;
        facts.record(fact, &mut timeline)?;
        recorded += 1;
    }
    for ticket_id in tickets_with_held_ratings(&facts.pending, arrived)? {
        recorded += complete_pending(&mut facts, &mut timeline, ticket_id, horizon, context)?;
    }
    facts.finish()?;
    timeline.finish()?;
    Ok(recorded)
}

/// Which of the `arrived` tickets have bad ratings held for them, in one walk over the held ratings of their id
/// range rather than a lookup per ticket: a page brings up to a thousand new tickets, and few have one.
fn tickets_with_held_ratings(
    pending: &Table<'_, (u64, &'static str), tables::PendingRating>,
    arrived: &BTreeSet<u64>,
) -> Result<BTreeSet<u64>, StoreError> {
    let mut held = BTreeSet::new();
    let (Some(&first), Some(&last)) = (arrived.first(), arrived.last()) else {
        return Ok(held);
    };
    for row in pending.range((first, "")..)? {
        let ticket_id = row?.0.value().0;
        if ticket_id > last {
            break;
        }
        if arrived.contains(&ticket_id) {
            held.insert(ticket_id);
        }
    }
    Ok(held)
}

/// Records the bad ratings held for `ticket_id`, now that the ticket is stored; returns how many.
fn complete_pending(
    facts: &mut FactTables<'_>,
    timeline: &mut TimelineWriter<'_>,
    ticket_id: u64,
    horizon: DateTime<Utc>,
    context: &PageContext,
) -> Result<u64, StoreError> {
    let mut held = Vec::new();
    for row in facts.pending.range((ticket_id, "")..)? {
        let (key, value) = row?;
        let (row_ticket, fact_key) = key.value();
        if row_ticket != ticket_id {
            break;
        }
        let (rating_id, at, backfill, score, comment) = value.value();
        held.push((
            fact_key.to_owned(),
            rating_id,
            at,
            backfill,
            score.to_owned(),
            comment.to_owned(),
        ));
    }
    let Some(ticket) = facts.ticket(ticket_id)? else {
        return Ok(0);
    };
    let exists = stored_ticket(ticket_id, &ticket)?.exists();
    let mut recorded = 0;
    for (key, rating_id, at, backfill, score, comment) in held {
        facts.pending.remove((ticket_id, key.as_str()))?;
        let occurred_at = DateTime::from_timestamp(at, 0).unwrap_or_default();
        // A rating of a ticket deleted in Zendesk yields nothing, like the ticket's transitions.
        if !exists || occurred_at < horizon || facts.known(&key)? {
            continue;
        }
        let event = DetectedEvent {
            key,
            kind: EventKind::BadSatisfactionRating,
            ticket_id,
            rating_id: Some(rating_id),
            occurred_at,
            exact_time: true,
            escalated: false,
            backfill,
            source: DetectionSource::Rating,
        };
        let fact = facts.fact(
            &event,
            None,
            &ticket,
            Some((score.as_str(), comment.as_str(), ticket.requester_id)),
            context.now_ms,
        )?;
        facts.record(fact, timeline)?;
        recorded += 1;
    }
    Ok(recorded)
}

fn user(users: &redb::Table<u64, &[u8]>, id: u64) -> Result<Option<ZendeskUserRecord>, StoreError> {
    if id == 0 {
        return Ok(None);
    }
    get_by_id(users, "users", id)
}

#[cfg(test)]
mod tests {
    use redb::{ReadableDatabase, ReadableTableMetadata};

    use super::*;
    use crate::store::page::PageWrite;
    use crate::store::Store;

    const NOW: i64 = 1_800_000_000;

    /// A store of its own in a directory that lives as long as it.
    fn scratch_store() -> (tempfile::TempDir, Store) {
        let dir = tempfile::tempdir().expect("tempdir");
        let store = Store::open(dir.path()).expect("open");
        (dir, store)
    }

    fn ids(list: &[u64]) -> BTreeSet<u64> {
        list.iter().copied().collect()
    }

    #[test]
    fn only_a_priority_change_to_or_from_high_urgent_forces_a_history_read() {
        use crate::store::zendesk_records::CHANGE_FIELD_STATUS;
        let change = |field, from: Priority, to: Priority| ChangeRecord {
            field,
            from: from.code(),
            to: to.code(),
        };
        let priority = CHANGE_FIELD_PRIORITY;
        // Created below high, lowered or raised below high: the current copy tells.
        assert!(!moves_high_urgent(&change(
            priority,
            Priority::None,
            Priority::Normal
        )));
        assert!(!moves_high_urgent(&change(
            priority,
            Priority::Normal,
            Priority::Low
        )));
        assert!(!moves_high_urgent(&change(
            priority,
            Priority::Low,
            Priority::None
        )));
        // Created or raised to high/urgent, or lowered from there: the history must be read.
        assert!(moves_high_urgent(&change(
            priority,
            Priority::None,
            Priority::Urgent
        )));
        assert!(moves_high_urgent(&change(
            priority,
            Priority::Normal,
            Priority::High
        )));
        assert!(moves_high_urgent(&change(
            priority,
            Priority::Urgent,
            Priority::Normal
        )));
        let unknown = ChangeRecord {
            field: priority,
            from: Priority::Normal.code(),
            to: 99,
        };
        assert!(moves_high_urgent(&unknown), "an unknown priority is read");
        assert!(!moves_high_urgent(&ChangeRecord {
            field: CHANGE_FIELD_STATUS,
            from: 2,
            to: 4,
        }));
    }

    #[test]
    fn held_ratings_are_found_for_the_arrived_tickets_only() {
        let (_dir, store) = scratch_store();
        let txn = store.db().begin_write().expect("write");
        {
            let mut pending = txn
                .open_table(tables::PENDING_RATING_EVENTS)
                .expect("pending");
            for (ticket, key) in [
                (3, "r1:bad:1"),
                (5, "r2:bad:1"),
                (5, "r3:bad:2"),
                (9, "r4:bad:1"),
            ] {
                pending
                    .insert((ticket, key), (1, 1, false, "bad", ""))
                    .expect("insert");
            }
            let held = |arrived: &[u64]| {
                tickets_with_held_ratings(&pending, &ids(arrived))
                    .expect("walk")
                    .into_iter()
                    .collect::<Vec<_>>()
            };
            assert_eq!(held(&[12, 2, 9, 5]), [5, 9]);
            assert_eq!(held(&[4, 6]), Vec::<u64>::new());
            assert_eq!(held(&[3]), [3]);
            assert_eq!(held(&[]), Vec::<u64>::new());
        }
        drop(txn);
    }

    #[test]
    fn a_fact_detected_twice_in_one_transaction_is_recorded_once() {
        let (_dir, store) = scratch_store();
        let ticket = TicketRecord {
            status: 2,
            priority: 4,
            organization_id: 1,
            created_at: NOW - 60,
            updated_at: NOW - 60,
            generated_timestamp: NOW - 60,
            ..Default::default()
        };
        store
            .apply_page(&PageWrite {
                tickets: vec![(5, ticket)],
                context: PageContext {
                    first_sync: false,
                    snapshot_events: false,
                    now_ms: (NOW - 3_600) * 1000,
                },
                ..Default::default()
            })
            .expect("ticket");
        let facts_before = store
            .db()
            .begin_read()
            .expect("read")
            .open_table(tables::EVENTS)
            .expect("events")
            .len()
            .expect("len");
        let event = DetectedEvent {
            key: "t5:solved:1799999970".into(),
            kind: EventKind::HighUrgentTicketSolved,
            ticket_id: 5,
            rating_id: None,
            occurred_at: DateTime::from_timestamp(NOW - 30, 0).expect("time"),
            exact_time: true,
            escalated: false,
            backfill: false,
            source: DetectionSource::History,
        };
        let context = PageContext {
            first_sync: false,
            snapshot_events: false,
            now_ms: NOW * 1000,
        };
        let now = DateTime::from_timestamp(NOW, 0).expect("now");
        let txn = store.db().begin_write().expect("write");
        let detected = vec![(event.clone(), None), (event, None)];
        let recorded = record_new(
            &txn,
            detected,
            &BTreeMap::new(),
            &BTreeSet::new(),
            &[],
            &context,
            now,
        )
        .expect("record");
        assert_eq!(recorded, 1);
        store.commit(txn).expect("commit");
        let read = store.db().begin_read().expect("read");
        let events = read.open_table(tables::EVENTS).expect("events");
        assert_eq!(events.len().expect("len"), facts_before + 1);
        assert!(events
            .get("t5:solved:1799999970".as_bytes())
            .expect("get")
            .is_some());
        let org_facts = read.open_table(tables::ORG_FACTS).expect("org facts");
        assert_eq!(org_facts.len().expect("len"), facts_before + 1);
    }
}
