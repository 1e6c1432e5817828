//! Per-ticket change history (`TICKET_HISTORY`): a page's changes merged into their tickets' rows, and a row
//! read back as the entries detection takes.
use std::collections::{BTreeMap, BTreeSet};

use redb::{ReadableTable, Table};

use crate::domain::events::HistoryEntry;

use super::page::TicketChange;
use super::zendesk_records::{HistoryChangeRecord, HistoryRecord};
use super::StoreError;

/// The name errors give the history table.
const TABLE_NAME: &str = "ticket_history";

impl From<&TicketChange> for HistoryChangeRecord {
    fn from(change: &TicketChange) -> Self {
        Self::at_position((change.at, change.event_id, change.index), &change.change)
    }
}

/// Histories of tickets a page changed, as written: event detection reads them next.
pub(crate) type Histories = BTreeMap<u64, HistoryRecord>;

/// Writes `changes` (a page's, in any order) into their tickets' rows, one read and one write per ticket;
/// returns the histories written of the tickets whose page changes `keep` keeps (kept in memory until the
/// page is recorded, so only those detection is sure to read).
pub(crate) fn write_changes(
    table: &mut Table<'_, u64, &'static [u8]>,
    changes: &[TicketChange],
    keep: impl Fn(&[&TicketChange]) -> bool,
) -> Result<Histories, StoreError> {
    let mut by_ticket: BTreeMap<u64, Vec<&TicketChange>> = BTreeMap::new();
    for change in changes {
        by_ticket.entry(change.ticket_id).or_default().push(change);
    }
    let mut written = Histories::new();
    for (ticket_id, page_changes) in by_ticket {
        crate::background::step_aside();
        let stored = read(table, ticket_id)?;
        let merged = merge(stored, &page_changes);
        table.insert(ticket_id, merged.encode_to_vec().as_slice())?;
        if keep(&page_changes) {
            written.insert(ticket_id, merged);
        }
    }
    Ok(written)
}

/// `stored` with `page_changes` added, in position order and each position once: a page's change replaces a
/// stored one at the same (time, event id, index), and a later change of the page an earlier one.
pub(crate) fn merge(
    stored: Option<HistoryRecord>,
    page_changes: &[&TicketChange],
) -> HistoryRecord {
    let mut all = stored.map(|record| record.changes).unwrap_or_default();
    all.extend(
        page_changes
            .iter()
            .map(|change| HistoryChangeRecord::from(*change)),
    );
    // Stable: of the changes at one position, the last added comes last.
    all.sort_by_key(HistoryChangeRecord::position);
    let mut changes: Vec<HistoryChangeRecord> = Vec::with_capacity(all.len());
    for change in all {
        match changes.last_mut() {
            Some(last) if last.position() == change.position() => *last = change,
            _ => changes.push(change),
        }
    }
    HistoryRecord { changes }
}

/// The stored history of `ticket_id`, if it has one.
pub(crate) fn read(
    table: &impl ReadableTable<u64, &'static [u8]>,
    ticket_id: u64,
) -> Result<Option<HistoryRecord>, StoreError> {
    table
        .get(ticket_id)?
        .map(|bytes| decode_row(ticket_id, bytes.value()))
        .transpose()
}

/// The stored row of `ticket_id` decoded; an unreadable one is corrupt.
pub(crate) fn decode_row(ticket_id: u64, bytes: &[u8]) -> Result<HistoryRecord, StoreError> {
    HistoryRecord::decode(bytes).map_err(|err| StoreError::Corrupt {
        table: TABLE_NAME,
        key: ticket_id.to_string(),
        detail: err.to_string(),
    })
}

/// `record` (the history of `ticket_id`) as the entries detection reads; an unreadable change is corrupt.
pub(crate) fn entries(
    ticket_id: u64,
    record: &HistoryRecord,
) -> Result<Vec<HistoryEntry>, StoreError> {
    record
        .changes
        .iter()
        .map(|change| {
            super::facts::stored_change(
                (ticket_id, change.at, change.event_id, change.index),
                &change.change(),
            )
        })
        .collect()
}

/// Which of the `arrived` tickets have a stored history: one walk over the rows of their id range, or a look
/// per ticket when the ids are far apart (a validation that finds old tickets missing).
pub(crate) fn tickets_with_history(
    table: &impl ReadableTable<u64, &'static [u8]>,
    arrived: &BTreeSet<u64>,
) -> Result<BTreeSet<u64>, StoreError> {
    let mut with_history = BTreeSet::new();
    let (Some(&first), Some(&last)) = (arrived.first(), arrived.last()) else {
        return Ok(with_history);
    };
    if (last - first) / 8 > arrived.len() as u64 {
        for &id in arrived {
            if table.get(id)?.is_some() {
                with_history.insert(id);
            }
        }
        return Ok(with_history);
    }
    for row in table.range(first..=last)? {
        crate::background::step_aside();
        let ticket_id = row?.0.value();
        if arrived.contains(&ticket_id) {
            with_history.insert(ticket_id);
        }
    }
    Ok(with_history)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::zendesk_records::{ChangeRecord, PackedHistory, Schema5HistoryRecord};
    use prost::Message;

    fn change(ticket_id: u64, at: i64, event_id: u64, index: u32, to: u32) -> TicketChange {
        TicketChange {
            ticket_id,
            at,
            event_id,
            index,
            change: ChangeRecord {
                field: 1,
                from: 1,
                to,
            },
        }
    }

    fn positions_and_values(record: &HistoryRecord) -> Vec<((i64, u64, u32), u32)> {
        record
            .changes
            .iter()
            .map(|change| (change.position(), change.to))
            .collect()
    }

    /// A history as stored and read back: the same changes, whatever their times and ids (steps back
    /// included), in under 60 % of the bytes of a message per change.
    #[test]
    fn a_packed_history_reads_back_as_written_in_fewer_bytes() {
        let change = |at, event_id, index, field, to| HistoryChangeRecord {
            at,
            event_id,
            index,
            field,
            from: 2,
            to,
        };
        let history = HistoryRecord {
            changes: vec![
                change(-5, u64::MAX, 0, 1, 3),
                change(1_700_000_000, 40_123_456_789, 0, 1, 2),
                change(1_700_000_000, 40_123_456_789, 1, 2, 4),
                change(1_700_003_600, 40_123_999_001, 0, 1, 6),
                change(1_700_003_600, 7, 3, 2, 1),
                change(i64::MAX, 0, u32::MAX, 2, 0),
            ],
        };
        let packed = history.encode_to_vec();
        assert_eq!(HistoryRecord::decode(&packed).expect("decode"), history);
        assert_eq!(
            HistoryRecord::decode(&HistoryRecord::default().encode_to_vec()).expect("empty"),
            HistoryRecord::default()
        );
        let typical = HistoryRecord {
            changes: (0..8)
                .map(|step| {
                    change(
                        1_700_000_000 + step * 5_000,
                        40_000_000_000 + step as u64 * 9_000,
                        0,
                        1,
                        2,
                    )
                })
                .collect(),
        };
        let as_messages = Schema5HistoryRecord {
            changes: typical.changes.clone(),
        };
        assert!(
            typical.encode_to_vec().len() * 5 < as_messages.encode_to_vec().len() * 3,
            "{} packed against {} as messages",
            typical.encode_to_vec().len(),
            as_messages.encode_to_vec().len()
        );
    }

    /// The row codec writes exactly the bytes prost writes for the same `PackedHistory` (rows written
    /// before it read the same), and reads any shape prost reads: the values unpacked, one field each, or
    /// the column in two pieces.
    #[test]
    fn a_row_is_the_packed_history_prost_writes_and_reads() {
        let mut seed = 0x9e37_79b9_7f4a_7c15_u64;
        let mut next = move || {
            seed ^= seed << 13;
            seed ^= seed >> 7;
            seed ^= seed << 17;
            seed
        };
        for length in [0, 1, 2, 7, 40] {
            let history = HistoryRecord {
                changes: (0..length)
                    .map(|_| HistoryChangeRecord {
                        at: next() as i64,
                        event_id: next(),
                        index: next() as u32,
                        field: next() as u32 % 3,
                        from: next() as u32,
                        to: next() as u32 % 9,
                    })
                    .collect(),
            };
            let row = history.encode_to_vec();
            let mut values = Vec::new();
            let (mut at, mut event_id) = (0_i64, 0_u64);
            for change in &history.changes {
                values.extend([
                    change.at.wrapping_sub(at),
                    change.event_id.wrapping_sub(event_id) as i64,
                    i64::from(change.index),
                    i64::from(change.field),
                    i64::from(change.from),
                    i64::from(change.to),
                ]);
                (at, event_id) = (change.at, change.event_id);
            }
            assert_eq!(
                row,
                PackedHistory {
                    values: values.clone()
                }
                .encode_to_vec()
            );
            assert_eq!(HistoryRecord::decode(&row).expect("packed"), history);
            let mut unpacked = Vec::new();
            for value in &values {
                prost::encoding::sint64::encode(1, value, &mut unpacked);
            }
            assert_eq!(HistoryRecord::decode(&unpacked).expect("unpacked"), history);
            let half = values.len() / 2;
            let mut pieces = PackedHistory {
                values: values[..half].to_vec(),
            }
            .encode_to_vec();
            pieces.extend(
                PackedHistory {
                    values: values[half..].to_vec(),
                }
                .encode_to_vec(),
            );
            assert_eq!(HistoryRecord::decode(&pieces).expect("pieces"), history);
        }
    }

    /// A row whose values are not six per change, or whose codes do not fit, is corrupt, named by table
    /// and ticket.
    #[test]
    fn a_row_of_the_wrong_shape_is_corrupt() {
        let short = PackedHistory {
            values: vec![1, 2, 0, 1, 0],
        };
        let too_big = PackedHistory {
            values: vec![1, 2, 0, 1, 0, i64::from(u32::MAX) + 1],
        };
        for (bad, says) in [(short, "six per change"), (too_big, "out of range")] {
            match decode_row(42, &bad.encode_to_vec()) {
                Err(StoreError::Corrupt { table, key, detail }) => {
                    assert_eq!((table, key.as_str()), ("ticket_history", "42"));
                    assert!(detail.contains(says), "{detail}");
                }
                other => panic!("expected a corrupt row, got {other:?}"),
            }
        }
        assert!(decode_row(42, &[0xff, 0xff, 0xff]).is_err());
    }

    #[test]
    fn a_page_merges_into_the_stored_history_in_order_and_replaces_a_change_at_the_same_position() {
        let stored = merge(None, &[&change(7, 20, 2, 0, 2), &change(7, 10, 1, 0, 1)]);
        assert_eq!(
            positions_and_values(&stored),
            [((10, 1, 0), 1), ((20, 2, 0), 2)]
        );
        let merged = merge(
            Some(stored),
            &[
                &change(7, 15, 5, 1, 4),
                &change(7, 20, 2, 0, 3),
                &change(7, 15, 5, 0, 5),
                &change(7, 20, 2, 0, 6),
            ],
        );
        assert_eq!(
            positions_and_values(&merged),
            [
                ((10, 1, 0), 1),
                ((15, 5, 0), 5),
                ((15, 5, 1), 4),
                ((20, 2, 0), 6)
            ],
            "a re-fetched change replaces the stored one; of two in one page the later wins"
        );
    }

    #[test]
    fn stored_history_is_found_for_the_arrived_tickets_only() {
        let dir = tempfile::tempdir().expect("tempdir");
        let store = crate::store::Store::open(dir.path()).expect("open");
        let txn = store.db().begin_write().expect("write");
        {
            let mut table = txn
                .open_table(crate::store::tables::TICKET_HISTORY)
                .expect("history");
            let changes: Vec<TicketChange> = [3, 5, 7, u64::MAX]
                .into_iter()
                .map(|ticket| change(ticket, 10, 1, 0, 2))
                .collect();
            let kept = write_changes(&mut table, &changes, |changes| changes[0].ticket_id == 5)
                .expect("write");
            assert_eq!(kept.keys().copied().collect::<Vec<_>>(), [5]);
            let found = |arrived: &[u64]| {
                tickets_with_history(&table, &arrived.iter().copied().collect())
                    .expect("walk")
                    .into_iter()
                    .collect::<Vec<_>>()
            };
            assert_eq!(found(&[2, 3, 4, 7]), [3, 7]);
            assert_eq!(found(&[4, 6]), Vec::<u64>::new());
            assert_eq!(found(&[5]), [5]);
            assert_eq!(found(&[8, u64::MAX]), [u64::MAX]);
            assert_eq!(found(&[]), Vec::<u64>::new());
            let history = read(&table, 7).expect("read").expect("row");
            assert_eq!(positions_and_values(&history), [((10, 1, 0), 2)]);
            assert_eq!(read(&table, 4).expect("read"), None);
        }
        drop(txn);
    }
}
