//! Recording timeline events in the page transaction: detection from ticket history (or snapshots)
//! and ratings, each event stored once under its deterministic key with the next log sequence number.
use std::collections::BTreeMap;

use chrono::{DateTime, Utc};
use prost::Message;
use redb::{ReadableTable, WriteTransaction};

use crate::domain::events::{
    backfill_horizon, detect_from_history, detect_from_snapshots, detect_rating, finalize_for_sync,
    state_at, DetectedEvent, TicketState,
};
use crate::domain::ticket::{Priority, Status};

use super::facts::{stored_rating, stored_ticket};
use super::page::{PageContext, TicketChange, Written};
use super::tables::{self, meta_keys};
use super::zendesk_records::{
    ChangeRecord, GroupRecord, RatingRecord, TicketRecord, ZendeskUserRecord, CHANGE_FIELD_PRIORITY,
};
use super::StoreError;

use super::events::{decode, decode_seq, kind_number, EventRecord};

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
            crate::background::step_aside();
            let current_facts = stored_ticket(*id, current)?;
            let previous_facts = previous
                .as_ref()
                .map(|previous| stored_ticket(*id, previous))
                .transpose()?;
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
            *must_read |= change.change.field == CHANGE_FIELD_PRIORITY;
            *latest = (*latest).max(change.at);
        }
        // A ticket stored after its changes (created while the run was between phases): its stored history was
        // never read with it, whatever its priority.
        for (id, _, _) in tickets.iter().filter(|(_, previous, _)| previous.is_none()) {
            ids.insert(*id, (true, i64::MIN));
        }
        let stored_tickets = txn.open_table(tables::TICKETS)?;
        let stored_changes = txn.open_table(tables::TICKET_CHANGES)?;
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
            let mut entries = Vec::new();
            for row in
                stored_changes.range((id, i64::MIN, 0, 0)..=(id, i64::MAX, u64::MAX, u32::MAX))?
            {
                let (key, value) = row?;
                let (ticket_id, at, event_id, index) = key.value();
                let change = decode::<ChangeRecord>(
                    "ticket_changes",
                    format_args!("{ticket_id}/{at}/{event_id}/{index}"),
                    value.value(),
                )?;
                let entry = super::facts::stored_change((ticket_id, at, event_id, index), &change)?;
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
    if !ratings.is_empty() {
        let stored_tickets = txn.open_table(tables::TICKETS)?;
        for (id, previous, current) in ratings {
            crate::background::step_aside();
            let current_facts = stored_rating(*id, current)?;
            let previous_facts = previous
                .as_ref()
                .map(|previous| stored_rating(*id, previous))
                .transpose()?;
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
    record_new(txn, detected, ratings, context, now)
}

/// Whether the stored ticket `id` is deleted or gone in Zendesk (an unknown ticket is not).
fn ticket_deleted(tickets: &redb::Table<u64, &[u8]>, id: u64) -> Result<bool, StoreError> {
    let Some(bytes) = tickets.get(id)? else {
        return Ok(false);
    };
    let record = decode::<TicketRecord>("tickets", id, bytes.value())?;
    Ok(!stored_ticket(id, &record)?.exists())
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
                event.ticket_id,
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
                ticket.group_id,
                bytes.value(),
            )?),
            _ => None,
        };
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
        .map(|bytes| decode::<ZendeskUserRecord>("users", id, bytes.value()))
        .transpose()
}
