//! Pruning per-ticket change history older than the year events are kept for, so the store stays
//! bounded after years of hourly syncs (issue #13: at most 1.5 KB per ticket).
//!
//! Events older than a year are never recorded (`domain::events::backfill_horizon`), so older
//! status and priority changes only matter for the state a ticket was in when the year began. Per
//! ticket and field, the last change before the horizon is kept (its `from`/`to` carry that state)
//! and every earlier one goes; a history that starts mid-life is what detection already handles
//! (`detect_from_history` reconstructs the state before the first kept change).
use redb::{ReadableTable, WriteTransaction};

use super::tables;
use super::zendesk_records::{HistoryChangeRecord, HistoryRecord, CHANGE_FIELD_PRIORITY};
use super::{Store, StoreError};

/// Tickets pruned per write transaction: small enough that admin writes and reads never wait long.
const TICKETS_PER_TRANSACTION: usize = 2_000;

/// How the database file's space is used (redb's own accounting), to tell data from free pages.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SpaceReport {
    /// Bytes of stored keys and values.
    pub stored_bytes: u64,
    /// Bytes of B-tree structure and allocator state.
    pub metadata_bytes: u64,
    /// Bytes of pages allocated but unused (freed by copy-on-write, reusable, not given back).
    pub fragmented_bytes: u64,
}

impl Store {
    /// The database's space accounting (a write transaction that commits nothing).
    pub fn space(&self) -> Result<SpaceReport, StoreError> {
        let txn = self.db().begin_write()?;
        let stats = txn.stats()?;
        drop(txn);
        Ok(SpaceReport {
            stored_bytes: stats.stored_bytes(),
            metadata_bytes: stats.metadata_bytes(),
            fragmented_bytes: stats.fragmented_bytes(),
        })
    }

    /// Deletes change history older than `horizon` (Unix seconds), keeping per ticket and field the
    /// last change before it; returns how many changes went. Commits in chunks of tickets.
    pub fn prune_ticket_history(&self, horizon: i64) -> Result<u64, StoreError> {
        let mut removed = 0;
        let mut next_ticket = 0_u64;
        loop {
            let txn = self.db().begin_write()?;
            let (pruned, resume) = prune_chunk(&txn, next_ticket, horizon)?;
            removed += pruned;
            if pruned > 0 {
                self.commit_keeping_figures(txn)?;
            } else {
                drop(txn);
            }
            match resume {
                Some(ticket) => next_ticket = ticket,
                None => return Ok(removed),
            }
        }
    }
}

/// Prunes the tickets from `first_ticket` on, at most [`TICKETS_PER_TRANSACTION`] of them; returns
/// the changes removed and the ticket to continue from (`None` when the table is done).
fn prune_chunk(
    txn: &WriteTransaction,
    first_ticket: u64,
    horizon: i64,
) -> Result<(u64, Option<u64>), StoreError> {
    let mut table = txn.open_table(tables::TICKET_HISTORY)?;
    let mut pruned: Vec<(u64, HistoryRecord)> = Vec::new();
    let mut removed = 0;
    let mut resume = None;
    {
        for (tickets_seen, row) in table.range(first_ticket..)?.enumerate() {
            crate::background::step_aside();
            let (ticket, value) = row?;
            let ticket = ticket.value();
            if tickets_seen == TICKETS_PER_TRANSACTION {
                resume = Some(ticket);
                break;
            }
            let history = super::history::decode_row(ticket, value.value())?;
            let before = history.changes.len();
            let kept = prune_history(history, horizon);
            if kept.changes.len() < before {
                removed += (before - kept.changes.len()) as u64;
                pruned.push((ticket, kept));
            }
        }
    }
    for (ticket, history) in &pruned {
        table.insert(ticket, history.encode_to_vec().as_slice())?;
    }
    Ok((removed, resume))
}

/// `history` without its changes older than `horizon` but the last one per field (the state they left).
fn prune_history(history: HistoryRecord, horizon: i64) -> HistoryRecord {
    // Per field (status, priority), the position of the newest change before the horizon.
    let slot = |change: &HistoryChangeRecord| usize::from(change.field == CHANGE_FIELD_PRIORITY);
    let mut newest_old: [Option<(i64, u64, u32)>; 2] = [None, None];
    for change in history.changes.iter().filter(|change| change.at < horizon) {
        newest_old[slot(change)] = newest_old[slot(change)].max(Some(change.position()));
    }
    let changes = history
        .changes
        .into_iter()
        .filter(|change| {
            change.at >= horizon || newest_old[slot(change)] == Some(change.position())
        })
        .collect();
    HistoryRecord { changes }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::page::{PageContext, PageWrite, TicketChange};
    use crate::store::zendesk_records::{
        ChangeRecord, TicketRecord, CHANGE_FIELD_PRIORITY, CHANGE_FIELD_STATUS,
    };

    const DAY: i64 = 86_400;
    const NOW: i64 = 1_800_000_000;

    fn change(ticket_id: u64, at: i64, field: u32, from: u32, to: u32) -> TicketChange {
        TicketChange {
            ticket_id,
            at,
            event_id: u64::try_from(at).expect("positive"),
            index: field,
            change: ChangeRecord { field, from, to },
        }
    }

    fn rows(store: &Store) -> Vec<(u64, i64, u32)> {
        let histories =
            crate::store::tests::rows_of(store, tables::TICKET_HISTORY, |ticket, value| {
                (ticket, HistoryRecord::decode(value).expect("history"))
            });
        histories
            .into_iter()
            .flat_map(|(ticket, history)| {
                history
                    .changes
                    .into_iter()
                    .map(move |change| (ticket, change.at, change.field))
            })
            .collect()
    }

    #[test]
    fn history_older_than_the_horizon_goes_but_the_state_it_left_stays() {
        let dir = tempfile::tempdir().expect("tempdir");
        let store = Store::open(dir.path()).expect("open");
        let old = NOW - 400 * DAY;
        let ticket = |created| TicketRecord {
            status: 2,
            priority: 4,
            created_at: created,
            updated_at: NOW,
            generated_timestamp: NOW,
            ..Default::default()
        };
        let mut page = PageWrite {
            tickets: vec![(1, ticket(old)), (2, ticket(NOW - DAY))],
            context: PageContext {
                now_ms: NOW * 1000,
                ..Default::default()
            },
            ..Default::default()
        };
        // Ticket 1: created two years back and changed often before the horizon, once after it.
        page.changes = vec![
            change(1, old, CHANGE_FIELD_STATUS, 0, 1),
            change(1, old, CHANGE_FIELD_PRIORITY, 0, 2),
            change(1, old + DAY, CHANGE_FIELD_STATUS, 1, 2),
            change(1, old + 2 * DAY, CHANGE_FIELD_PRIORITY, 2, 3),
            change(1, old + 3 * DAY, CHANGE_FIELD_STATUS, 2, 3),
            change(1, old + 4 * DAY, CHANGE_FIELD_PRIORITY, 3, 4),
            change(1, NOW - 10 * DAY, CHANGE_FIELD_STATUS, 3, 2),
            // Ticket 2: all within the year.
            change(2, NOW - DAY, CHANGE_FIELD_STATUS, 0, 2),
            change(2, NOW - DAY, CHANGE_FIELD_PRIORITY, 0, 4),
        ];
        store.apply_page(&page).expect("apply");
        let events_before = store.event_count().expect("events");
        let horizon = NOW - 365 * DAY;
        assert_eq!(store.prune_ticket_history(horizon).expect("prune"), 4);
        assert_eq!(
            rows(&store),
            [
                (1, old + 3 * DAY, CHANGE_FIELD_STATUS),
                (1, old + 4 * DAY, CHANGE_FIELD_PRIORITY),
                (1, NOW - 10 * DAY, CHANGE_FIELD_STATUS),
                (2, NOW - DAY, CHANGE_FIELD_STATUS),
                (2, NOW - DAY, CHANGE_FIELD_PRIORITY),
            ]
        );
        assert_eq!(store.prune_ticket_history(horizon).expect("again"), 0);
        // A later page of ticket 1 reads the pruned history: it records what is new, and nothing again.
        let later = PageWrite {
            changes: vec![change(1, NOW - 5 * DAY, CHANGE_FIELD_STATUS, 2, 5)],
            context: PageContext {
                now_ms: NOW * 1000,
                ..Default::default()
            },
            ..Default::default()
        };
        let recorded = store.apply_page(&later).expect("later").events_recorded;
        assert_eq!(recorded, 1, "solved while urgent");
        assert_eq!(store.event_count().expect("events"), events_before + 1);
    }
}
