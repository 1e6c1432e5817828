//! Reading timeline events: by account, owner or everything, in time order with page positions, and
//! the log in recording order for watchers.
use std::collections::{BTreeSet, BinaryHeap};

use redb::{ReadOnlyTable, ReadTransaction, ReadableDatabase, ReadableTable};

use super::tables::{self, meta_keys};
use super::{Store, StoreError};

use super::events::{
    decode, decode_seq, EventFilter, EventPage, EventPosition, EventRecord, EventScope, LogBatch,
    StoredEvent,
};

/// The read side: tables of one read transaction.
struct Reader {
    timeline: ReadOnlyTable<u64, &'static [u8]>,
    owners: ReadOnlyTable<(&'static str, &'static str), ()>,
}

impl Reader {
    fn open(txn: &ReadTransaction) -> Result<Self, StoreError> {
        Ok(Self {
            timeline: txn.open_table(tables::TIMELINE)?,
            owners: txn.open_table(tables::ACCOUNT_OWNERS)?,
        })
    }

    fn record(&self, seq: u64) -> Result<Option<EventRecord>, StoreError> {
        super::codec::get_by_id(&self.timeline, "timeline", seq)
    }

    /// Whether an entry on `account`'s timeline is in `scope` (an owner's accounts are those it owns now).
    fn in_scope(&self, scope: &EventScope, account: &str) -> Result<bool, StoreError> {
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

/// A key of the timeline per account: (period, account id, occurred at, sequence number).
type ByAccountKey = (i64, &'static [u8], i64, u64);

/// The timeline per account as a read transaction sees it.
type ByAccount = ReadOnlyTable<ByAccountKey, ()>;

/// The first and last period `table` holds rows of; `None` when it is empty.
fn stored_periods(table: &ByAccount) -> Result<Option<(i64, i64)>, StoreError> {
    let (Some(first), Some(last)) = (table.first()?, table.last()?) else {
        return Ok(None);
    };
    Ok(Some((first.0.value().0, last.0.value().0)))
}

/// One account's timeline rows from `low` to before `high` (occurred at, sequence number), newest first: a
/// range of each period from the newest that can hold one to the oldest.
struct AccountRows<'t> {
    table: &'t ByAccount,
    account: &'t [u8],
    low: (i64, u64),
    high: (i64, u64),
    /// The period `rows` reads (or the next to read when it is `None`).
    period: i64,
    /// The oldest period to read.
    oldest: i64,
    rows: Option<std::iter::Rev<redb::Range<'static, ByAccountKey, ()>>>,
}

impl<'t> AccountRows<'t> {
    /// The rows of `account` in `table`, whose rows span `periods` (first, last).
    fn new(
        table: &'t ByAccount,
        account: &'t [u8],
        low: (i64, u64),
        high: (i64, u64),
        periods: Option<(i64, i64)>,
    ) -> Self {
        // No period at all when the table is empty: the newest to read is then older than the oldest.
        let (period, oldest) = periods.map_or((0, 1), |(first, last)| {
            (
                tables::timeline_period(high.0).min(last),
                tables::timeline_period(low.0).max(first),
            )
        });
        Self {
            table,
            account,
            low,
            high,
            period,
            oldest,
            rows: None,
        }
    }

    /// The next older row's (occurred at, sequence number), if any.
    fn next(&mut self) -> Result<Option<(i64, u64)>, StoreError> {
        loop {
            if let Some(rows) = self.rows.as_mut() {
                if let Some(row) = rows.next() {
                    let (_, _, occurred_ms, seq) = row?.0.value();
                    return Ok(Some((occurred_ms, seq)));
                }
                self.rows = None;
                self.period -= 1;
            }
            if self.period < self.oldest {
                return Ok(None);
            }
            let (period, account) = (self.period, self.account);
            let rows = self.table.range(
                (period, account, self.low.0, self.low.1)
                    ..(period, account, self.high.0, self.high.1),
            )?;
            self.rows = Some(rows.rev());
        }
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

/// The sequence number of the last timeline entry as `txn` sees it (0: none yet).
pub(crate) fn last_seq_in(txn: &redb::WriteTransaction) -> Result<u64, StoreError> {
    let meta = txn.open_table(tables::META)?;
    let value = meta.get(meta_keys::EVENT_SEQ)?;
    value.map_or(Ok(0), |bytes| decode_seq(bytes.value()))
}

/// The sequence number of the last timeline entry in a read transaction (0: none yet).
pub(crate) fn last_seq_of(txn: &ReadTransaction) -> Result<u64, StoreError> {
    let meta = txn.open_table(tables::META)?;
    let value = meta.get(meta_keys::EVENT_SEQ)?;
    value.map_or(Ok(0), |bytes| decode_seq(bytes.value()))
}

impl Store {
    /// The sequence number of the last recorded event (0: none yet).
    pub fn last_event_seq(&self) -> Result<u64, StoreError> {
        last_seq_of(&self.db().begin_read()?)
    }

    /// How many events were detected (facts: unmatched organizations' included, each counted once
    /// however many accounts' timelines hold it).
    pub fn event_count(&self) -> Result<u64, StoreError> {
        let txn = self.db().begin_read()?;
        Ok(redb::ReadableTableMetadata::len(
            &txn.open_table(tables::EVENTS)?,
        )?)
    }

    /// Whether `account` has anything on its timeline (it stays readable after the account is deleted).
    pub fn has_timeline(&self, account: &str) -> Result<bool, StoreError> {
        let txn = self.db().begin_read()?;
        let table = txn.open_table(tables::ACCOUNT_TIMELINE)?;
        let periods = stored_periods(&table)?;
        let mut rows = AccountRows::new(
            &table,
            account.as_bytes(),
            (i64::MIN, 0),
            (i64::MAX, u64::MAX),
            periods,
        );
        Ok(rows.next()?.is_some())
    }

    /// One stored fact (an event as detected, before any account) by its key.
    pub fn event(&self, key: &str) -> Result<Option<EventRecord>, StoreError> {
        let txn = self.db().begin_read()?;
        super::events::get_fact(&txn.open_table(tables::EVENTS)?, key)
    }

    /// The accounts a scope covers; `None` for every account.
    fn scope_accounts(
        txn: &ReadTransaction,
        scope: &EventScope,
    ) -> Result<Option<BTreeSet<String>>, StoreError> {
        match scope {
            EventScope::AllAccounts => Ok(None),
            EventScope::Account(id) => Ok(Some(BTreeSet::from([id.clone()]))),
            EventScope::Owner(owner) => {
                let owner = owner.to_lowercase();
                let owners = txn.open_table(tables::ACCOUNT_OWNERS)?;
                let mut accounts = BTreeSet::new();
                super::scan::for_each_second(&owners, &owner, |account| {
                    accounts.insert(account.to_owned());
                    Ok(())
                })?;
                Ok(Some(accounts))
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
            events.push(StoredEvent { record });
            Ok(true)
        };
        let mut last = None;
        let mut more = false;
        match Self::scope_accounts(&txn, &filter.scope)? {
            None => {
                let by_time = txn.open_table(tables::TIMELINE_TIMES)?;
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
            Some(accounts) => {
                let by_account = txn.open_table(tables::ACCOUNT_TIMELINE)?;
                let periods = stored_periods(&by_account)?;
                let mut ranges = Vec::with_capacity(accounts.len());
                // A max-heap of each account's next entry: the newest pops first.
                let mut heap = BinaryHeap::new();
                for account in &accounts {
                    let mut range =
                        AccountRows::new(&by_account, account.as_bytes(), low, high, periods);
                    if let Some(next) = range.next()? {
                        heap.push((next, ranges.len()));
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
                        if let Some(next) = range.next()? {
                            heap.push((next, index));
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
        for row in reader.timeline.range(start..)?.take(limit) {
            let (seq, bytes) = row?;
            scanned_to = seq.value();
            let record = decode::<EventRecord>("timeline", scanned_to, bytes.value())?;
            if !matches_filter(&record, filter) {
                continue;
            }
            if reader.in_scope(&filter.scope, &record.account_id)? {
                events.push(StoredEvent { record });
            }
        }
        Ok(LogBatch { events, scanned_to })
    }
}
