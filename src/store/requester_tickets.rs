//! The requester -> tickets index ([`tables::REQUESTER_TICKETS`]): kept in the page transaction beside the
//! tickets, read by `GetUserMetrics`, put right by the nightly validation, built by the migration to schema 9.
use std::collections::BTreeSet;

use redb::{ReadableTable, Table, WriteTransaction};

use super::page::Written;
use super::tables::{self, REQUESTER_BLOCK_BITS};
use super::zendesk_records::TicketRecord;
use super::StoreError;

/// A row of the index: (block of ticket ids, requester id, ticket id).
pub(super) type RequesterTicket = (u64, u64, u64);

/// The index key of ticket `ticket` asked by `requester`.
pub(super) fn key(ticket: u64, requester: u64) -> RequesterTicket {
    (ticket >> REQUESTER_BLOCK_BITS, requester, ticket)
}

/// The block of ticket ids `ticket` belongs to.
pub(super) fn block_of(ticket: u64) -> u64 {
    ticket >> REQUESTER_BLOCK_BITS
}

/// The last block: that of ticket id `u64::MAX`.
pub(super) const LAST_BLOCK: u64 = u64::MAX >> REQUESTER_BLOCK_BITS;

/// The ticket ids of `block` (at most [`LAST_BLOCK`]).
pub(super) fn ids_of(block: u64) -> std::ops::RangeInclusive<u64> {
    let first = block << REQUESTER_BLOCK_BITS;
    first..=first | ((1 << REQUESTER_BLOCK_BITS) - 1)
}

/// Moves the rows of the page's written tickets: a new ticket's row goes in, a ticket whose requester
/// changed moves. Requester 0 (none) has no row. Rows are written in key order, so the tree is walked once.
pub(super) fn apply(
    txn: &WriteTransaction,
    tickets: &[Written<TicketRecord>],
) -> Result<(), StoreError> {
    let mut removed = Vec::new();
    let mut added = Vec::new();
    for (id, old, new) in tickets {
        let old_requester = old.as_ref().map(|old| old.requester_id);
        if old_requester == Some(new.requester_id) {
            continue;
        }
        if let Some(requester) = old_requester.filter(|&requester| requester != 0) {
            removed.push(key(*id, requester));
        }
        if new.requester_id != 0 {
            added.push(key(*id, new.requester_id));
        }
    }
    if removed.is_empty() && added.is_empty() {
        return Ok(());
    }
    removed.sort_unstable();
    added.sort_unstable();
    let mut table = txn.open_table(tables::REQUESTER_TICKETS)?;
    for row in &removed {
        table.remove(row)?;
    }
    for row in &added {
        table.insert(row, ())?;
    }
    Ok(())
}

/// The ids of `requester`'s tickets, in id order: a range in each block that holds rows, from the first.
pub(super) fn tickets_of(
    table: &impl ReadableTable<RequesterTicket, ()>,
    requester: u64,
) -> Result<Vec<u64>, StoreError> {
    let mut ids = Vec::new();
    let mut next = table.first()?.map(|(row, _)| row.value().0);
    while let Some(block) = next {
        crate::background::step_aside();
        for row in table.range((block, requester, 0)..=(block, requester, u64::MAX))? {
            ids.push(row?.0.value().2);
        }
        // Ticket ids may leave gaps of many blocks: the next block is the next one holding a row.
        next = match block.checked_add(1) {
            Some(after) => match table.range((after, 0, 0)..)?.next() {
                Some(row) => Some(row?.0.value().0),
                None => None,
            },
            None => None,
        };
    }
    Ok(ids)
}

/// Puts in the rows of every stored ticket (the migration to schema 9 builds the index this way).
pub(super) fn build(txn: &WriteTransaction) -> Result<u64, StoreError> {
    let tickets = txn.open_table(tables::TICKETS)?;
    let mut index = txn.open_table(tables::REQUESTER_TICKETS)?;
    let mut rows = 0;
    for entry in tickets.iter()? {
        let (id, bytes) = entry?;
        let id = id.value();
        let ticket = super::codec::decode::<TicketRecord>("tickets", id, bytes.value())?;
        if ticket.requester_id != 0 {
            index.insert(key(id, ticket.requester_id), ())?;
            rows += 1;
        }
    }
    Ok(rows)
}

/// Makes the rows of blocks `blocks` those of `expected` (the rows the stored tickets of those blocks
/// make): adds the missing ones and removes the rest; returns how many it changed.
pub(super) fn repair_blocks(
    index: &mut Table<RequesterTicket, ()>,
    blocks: std::ops::RangeInclusive<u64>,
    expected: &BTreeSet<RequesterTicket>,
) -> Result<u64, StoreError> {
    let mut stored = BTreeSet::new();
    for row in index.range((*blocks.start(), 0, 0)..=(*blocks.end(), u64::MAX, u64::MAX))? {
        stored.insert(row?.0.value());
    }
    let mut changed = 0;
    for stray in stored.difference(expected) {
        index.remove(stray)?;
        changed += 1;
    }
    for missing in expected.difference(&stored) {
        index.insert(missing, ())?;
        changed += 1;
    }
    Ok(changed)
}

#[cfg(test)]
mod tests {
    use redb::ReadableDatabase;

    use super::*;
    use crate::store::Store;

    /// A requester's tickets come back in id order across blocks far apart, and no one else's.
    #[test]
    fn a_requesters_tickets_are_found_in_every_block_and_only_theirs() {
        let dir = tempfile::tempdir().expect("tempdir");
        let store = Store::open(dir.path()).expect("open");
        let txn = store.db().begin_write().expect("write");
        let far = u64::MAX - 3;
        {
            let mut table = txn.open_table(tables::REQUESTER_TICKETS).expect("t");
            for (ticket, requester) in [
                (1, 7),
                (2, 8),
                (4_095, 7),
                (4_096, 8),
                (4_097, 7),
                (9_000_000_000, 7),
                (9_000_000_001, 6),
                (far, 7),
                (far + 1, 9),
            ] {
                table.insert(key(ticket, requester), ()).expect("row");
            }
        }
        let table = txn.open_table(tables::REQUESTER_TICKETS).expect("t");
        assert_eq!(
            tickets_of(&table, 7).expect("7"),
            [1, 4_095, 4_097, 9_000_000_000, far]
        );
        assert_eq!(tickets_of(&table, 8).expect("8"), [2, 4_096]);
        assert_eq!(tickets_of(&table, 9).expect("9"), [far + 1]);
        assert!(tickets_of(&table, 5).expect("5").is_empty());
        drop(table);
        drop(txn);
        let empty = store.db().begin_read().expect("read");
        let table = empty.open_table(tables::REQUESTER_TICKETS).expect("t");
        assert!(tickets_of(&table, 7).expect("none").is_empty());
    }
}
