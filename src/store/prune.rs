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
use super::{Store, StoreError};

/// Tickets pruned per write transaction: small enough that admin writes and reads never wait long.
const TICKETS_PER_TRANSACTION: usize = 2_000;

/// A row of `TICKET_CHANGES`: (ticket id, Unix seconds, event id, index in the event).
type ChangeKey = (u64, i64, u64, u32);

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
    /// last change before it; returns how many rows went. Commits in chunks of tickets.
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
/// the rows removed and the ticket to continue from (`None` when the table is done).
fn prune_chunk(
    txn: &WriteTransaction,
    first_ticket: u64,
    horizon: i64,
) -> Result<(u64, Option<u64>), StoreError> {
    let mut table = txn.open_table(tables::TICKET_CHANGES)?;
    let mut doomed: Vec<ChangeKey> = Vec::new();
    let mut resume = None;
    {
        let mut tickets_seen = 0;
        let mut current: Option<u64> = None;
        // Per field, the newest change before the horizon seen so far for the current ticket.
        let mut kept: [Option<ChangeKey>; 2] = [None, None];
        for row in table.range((first_ticket, i64::MIN, 0, 0)..)? {
            crate::background::step_aside();
            let (key, value) = row?;
            let key = key.value();
            if current != Some(key.0) {
                if tickets_seen == TICKETS_PER_TRANSACTION {
                    resume = Some(key.0);
                    break;
                }
                tickets_seen += 1;
                current = Some(key.0);
                kept = [None, None];
            }
            // Rows of a ticket come in time order: a later row past the horizon ends its pruning.
            if key.1 >= horizon {
                continue;
            }
            let change = super::codec::decode::<super::zendesk_records::ChangeRecord>(
                "ticket_changes",
                format_args!("{}/{}/{}/{}", key.0, key.1, key.2, key.3),
                value.value(),
            )?;
            let slot = usize::from(change.field == super::zendesk_records::CHANGE_FIELD_PRIORITY);
            if let Some(older) = kept[slot].replace(key) {
                doomed.push(older);
            }
        }
    }
    for key in &doomed {
        table.remove(key)?;
    }
    Ok((doomed.len() as u64, resume))
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
        crate::store::tests::rows_of(
            store,
            tables::TICKET_CHANGES,
            |(ticket, at, _, _), value| {
                let change = <ChangeRecord as prost::Message>::decode(value).expect("change");
                (ticket, at, change.field)
            },
        )
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
