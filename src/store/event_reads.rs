//! Reading timeline events: by account, owner or everything, in time order with page positions, and
//! the log in recording order for watchers.
use std::collections::{BTreeSet, BinaryHeap};

use redb::{ReadOnlyTable, ReadTransaction, ReadableDatabase};

use super::matching::OrgMatchRecord;
use super::tables::{self, meta_keys};
use super::{Store, StoreError};

use super::events::{
    decode, decode_seq, EventFilter, EventPage, EventPosition, EventRecord, EventScope, LogBatch,
    StoredEvent,
};

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
        let record = decode::<OrgMatchRecord>("org_matches", org, bytes.value())?;
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
                super::scan::for_each_second(&owners, &owner, |account| {
                    orgs_of(account, &mut orgs)
                })?;
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
