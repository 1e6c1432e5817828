//! The account timeline: a fact appended to an account's timeline exactly once, and an
//! organization's past year of facts backfilled onto the account it newly matches (DESIGN 1.4).
use std::collections::{BTreeSet, HashMap, HashSet};

use chrono::Duration;
use prost::Message;
use redb::{ReadableTable, Table, WriteTransaction};

use crate::domain::events::BACKFILL_HORIZON_DAYS;

use super::events::{decode_seq, EventRecord};
use super::tables::{self, meta_keys};
use super::StoreError;

/// The timeline tables of one write transaction, and the sequence number they append from.
///
/// The entries and the time index follow the sequence number, so they are written as they come. The rows
/// keyed by account are written at [`TimelineWriter::finish`], in key order: a page's events belong to
/// accounts at random, and written as they come they dirtied leaves all over the tree, more of them than
/// redb's write buffer holds, so leaves went to the file and were read back within one transaction.
pub(crate) struct TimelineWriter<'txn> {
    timeline: Table<'txn, u64, &'static [u8]>,
    by_account: Table<'txn, (i64, &'static [u8], i64, u64), ()>,
    by_time: Table<'txn, (i64, u64), ()>,
    emails: Table<'txn, (&'static str, &'static str), ()>,
    meta: Table<'txn, &'static str, &'static [u8]>,
    seq: u64,
    appended: u64,
    /// (fact key, account id) of the entries [`TimelineWriter::append`] added in this transaction, whose rows
    /// keyed by account are not written yet.
    appended_pairs: HashSet<(String, String)>,
    /// Rows of `ACCOUNT_TIMELINE` appended and not written yet: (period, account id, occurred at, sequence
    /// number), so they sort as the table does.
    new_by_account: Vec<(i64, String, i64, u64)>,
    /// Whether (lower-cased email, account) is a user of the account, as read in this transaction (nothing
    /// writes `ACCOUNT_EMAILS` while entries are appended; a requester comes back entry after entry). By
    /// email, then account, so a lookup borrows both.
    users_of_accounts: HashMap<String, HashMap<String, bool>>,
}

impl<'txn> TimelineWriter<'txn> {
    /// Opens the timeline tables of `txn`.
    pub(crate) fn open(txn: &'txn WriteTransaction) -> Result<Self, StoreError> {
        let meta = txn.open_table(tables::META)?;
        let seq = match meta.get(meta_keys::EVENT_SEQ)? {
            Some(bytes) => decode_seq(bytes.value())?,
            None => 0,
        };
        Ok(Self {
            timeline: txn.open_table(tables::TIMELINE)?,
            by_account: txn.open_table(tables::ACCOUNT_TIMELINE)?,
            by_time: txn.open_table(tables::TIMELINE_TIMES)?,
            emails: txn.open_table(tables::ACCOUNT_EMAILS)?,
            meta,
            seq,
            appended: 0,
            appended_pairs: HashSet::new(),
            new_by_account: Vec::new(),
            users_of_accounts: HashMap::new(),
        })
    }

    /// Appends `fact` to `account`'s timeline unless it is there already; returns whether it was added.
    pub(crate) fn append(
        &mut self,
        fact: EventRecord,
        account: &str,
        backfill: bool,
        now_ms: i64,
    ) -> Result<bool, StoreError> {
        let key = (fact.key.clone(), account.to_owned());
        if self.appended_pairs.contains(&key) || self.holds(&fact, account)? {
            return Ok(false);
        }
        self.push(Some(key), fact, account, backfill, now_ms)?;
        Ok(true)
    }

    /// Whether `account`'s stored timeline holds `fact`: its entries at the fact's occurrence time are the
    /// only ones that can (a fact's time never changes), usually none or one.
    fn holds(&self, fact: &EventRecord, account: &str) -> Result<bool, StoreError> {
        let (account, at) = (account.as_bytes(), fact.occurred_at_ms);
        for row in self.by_account.range(
            tables::account_timeline_key(account, at, 0)
                ..=tables::account_timeline_key(account, at, u64::MAX),
        )? {
            let seq = row?.0.value().3;
            let Some(bytes) = self.timeline.get(seq)? else {
                continue;
            };
            let entry = super::codec::decode::<EventRecord>("timeline", seq, bytes.value())?;
            if entry.key == fact.key {
                return Ok(true);
            }
        }
        Ok(false)
    }

    /// Appends `fact`, recorded in this transaction for the first time, to `account`'s timeline without looking
    /// for it there: a timeline entry is only ever made of a stored fact, and facts are never removed, so no
    /// timeline holds a fact the store did not know.
    pub(crate) fn append_new_fact(
        &mut self,
        fact: EventRecord,
        account: &str,
        backfill: bool,
        now_ms: i64,
    ) -> Result<(), StoreError> {
        debug_assert!(
            !self
                .appended_pairs
                .contains(&(fact.key.clone(), account.to_owned())),
            "a new fact appended twice"
        );
        self.push(None, fact, account, backfill, now_ms)
    }

    /// Writes the timeline entry of `fact` for `account` under the next sequence number; `pair` (fact key,
    /// account) is remembered for [`TimelineWriter::append`]. A new fact's pair is not: no `append` can meet
    /// it in this writer, as the fact was not stored when the writer opened.
    fn push(
        &mut self,
        pair: Option<(String, String)>,
        fact: EventRecord,
        account: &str,
        backfill: bool,
        now_ms: i64,
    ) -> Result<(), StoreError> {
        let email = fact.requester_email.to_lowercase();
        // Whether the requester is a user of the account is a fact of the moment it is recorded, like the rest.
        let user_email = if !email.is_empty() && self.is_user_of(&email, account)? {
            email
        } else {
            String::new()
        };
        self.seq += 1;
        let entry = EventRecord {
            seq: self.seq,
            account_id: account.to_owned(),
            user_email,
            backfill,
            detected_at_ms: now_ms,
            ..fact
        };
        self.timeline
            .insert(self.seq, entry.encode_to_vec().as_slice())?;
        if let Some(pair) = pair {
            self.appended_pairs.insert(pair);
        }
        self.new_by_account.push((
            tables::timeline_period(entry.occurred_at_ms),
            entry.account_id,
            entry.occurred_at_ms,
            self.seq,
        ));
        self.by_time.insert((entry.occurred_at_ms, self.seq), ())?;
        self.appended += 1;
        Ok(())
    }

    /// Whether `email` (lower-cased) is a user of `account`.
    fn is_user_of(&mut self, email: &str, account: &str) -> Result<bool, StoreError> {
        if let Some(&known) = self
            .users_of_accounts
            .get(email)
            .and_then(|accounts| accounts.get(account))
        {
            return Ok(known);
        }
        let user = self.emails.get((email, account))?.is_some();
        self.users_of_accounts
            .entry(email.to_owned())
            .or_default()
            .insert(account.to_owned(), user);
        Ok(user)
    }

    /// Writes the rows keyed by account and the new sequence number; returns how many entries were appended.
    /// Nothing appended is stored until this runs.
    pub(crate) fn finish(mut self) -> Result<u64, StoreError> {
        let mut by_account = std::mem::take(&mut self.new_by_account);
        by_account.sort_unstable();
        for (period, account, occurred_at_ms, seq) in by_account {
            crate::background::step_aside();
            self.by_account
                .insert((period, account.as_bytes(), occurred_at_ms, seq), ())?;
        }
        if self.appended > 0 {
            self.meta
                .insert(meta_keys::EVENT_SEQ, self.seq.to_le_bytes().as_slice())?;
        }
        Ok(self.appended)
    }
}

/// Backfills each (organization, account) pair: the organization's facts of the past year go on the
/// account's timeline with `backfill = true`, each once. Returns how many entries were added.
pub(crate) fn backfill(
    txn: &WriteTransaction,
    pairs: &[(u64, String)],
    now_ms: i64,
) -> Result<u64, StoreError> {
    if pairs.is_empty() {
        return Ok(0);
    }
    let horizon_ms =
        now_ms.saturating_sub(Duration::days(BACKFILL_HORIZON_DAYS).num_milliseconds());
    let orgs: BTreeSet<u64> = pairs.iter().map(|(org, _)| *org).collect();
    let keys_of = facts_since(&txn.open_table(tables::ORG_FACTS)?, &orgs, horizon_ms)?;
    let facts = txn.open_table(tables::EVENTS)?;
    let mut writer = TimelineWriter::open(txn)?;
    for (org, account) in pairs {
        for key in keys_of.get(org).into_iter().flatten() {
            if let Some(fact) = super::events::get_fact(&facts, key)? {
                writer.append(fact, account, true, now_ms)?;
            }
        }
    }
    writer.finish()
}

/// The keys of the facts of each of `orgs` that occurred from `horizon_ms` on, per organization in the order
/// they occurred: a lookup per day that holds facts for each organization, or one read of those days when
/// that reads fewer rows (a backfill of many organizations at once).
fn facts_since(
    table: &impl ReadableTable<(i64, u64, i64, &'static str), ()>,
    orgs: &BTreeSet<u64>,
    horizon_ms: i64,
) -> Result<FactKeys, StoreError> {
    let Some(days) = fact_days(table, horizon_ms)? else {
        return Ok(FactKeys::new());
    };
    let day_count = u64::try_from(days.end() - days.start()).map_or(u64::MAX, |d| d + 1);
    if (orgs.len() as u64).saturating_mul(day_count) <= table.len()? {
        facts_by_lookups(table, orgs, horizon_ms, days)
    } else {
        facts_by_scan(table, orgs, horizon_ms, days)
    }
}

/// Fact keys per organization, in the order the facts occurred.
type FactKeys = HashMap<u64, Vec<String>>;

/// The days from `horizon_ms`'s to the last one that holds a fact; `None` when no fact is that recent.
fn fact_days(
    table: &impl ReadableTable<(i64, u64, i64, &'static str), ()>,
    horizon_ms: i64,
) -> Result<Option<std::ops::RangeInclusive<i64>>, StoreError> {
    let (Some(first), Some(last)) = (table.first()?, table.last()?) else {
        return Ok(None);
    };
    let from = tables::fact_day(horizon_ms).max(first.0.value().0);
    let to = last.0.value().0;
    Ok((from <= to).then_some(from..=to))
}

/// Adds to `keys_of` the fact keys of `rows` that `keep` (given a row's day, organization and time) keeps,
/// until it returns `None`.
fn gather(
    rows: redb::Range<'_, (i64, u64, i64, &'static str), ()>,
    keys_of: &mut FactKeys,
    keep: impl Fn(i64, u64, i64) -> Option<bool>,
) -> Result<(), StoreError> {
    for row in rows {
        crate::background::step_aside();
        let (key, _) = row?;
        let (day, org, at, fact_key) = key.value();
        match keep(day, org, at) {
            None => break,
            Some(true) => keys_of.entry(org).or_default().push(fact_key.to_owned()),
            Some(false) => {}
        }
    }
    Ok(())
}

/// [`facts_since`] by a lookup of each organization on each of `days`.
fn facts_by_lookups(
    table: &impl ReadableTable<(i64, u64, i64, &'static str), ()>,
    orgs: &BTreeSet<u64>,
    horizon_ms: i64,
    days: std::ops::RangeInclusive<i64>,
) -> Result<FactKeys, StoreError> {
    let mut keys_of = FactKeys::new();
    for day in days {
        for &org in orgs {
            let rows = table.range((day, org, horizon_ms, "")..)?;
            gather(rows, &mut keys_of, |row_day, row_org, _| {
                ((row_day, row_org) == (day, org)).then_some(true)
            })?;
        }
    }
    Ok(keys_of)
}

/// [`facts_since`] by one read of `days`, keeping the rows of `orgs`.
fn facts_by_scan(
    table: &impl ReadableTable<(i64, u64, i64, &'static str), ()>,
    orgs: &BTreeSet<u64>,
    horizon_ms: i64,
    days: std::ops::RangeInclusive<i64>,
) -> Result<FactKeys, StoreError> {
    let mut keys_of = FactKeys::new();
    let rows = table.range((*days.start(), 0, i64::MIN, "")..)?;
    gather(rows, &mut keys_of, |_, org, at| {
        Some(at >= horizon_ms && orgs.contains(&org))
    })?;
    Ok(keys_of)
}

/// Hashes the timeline as content, whatever order its events were recorded in: each event under its account
/// and fact key (with its sequence number and detection time left out), and the key and time indexes the same
/// way. Two lanes of a sync commit side by side, so two syncs of the same data may number the same events in
/// another order (a rating recorded before or after its ticket's page); what each timeline holds is the same.
pub(crate) fn hash_timeline_content(
    txn: &redb::ReadTransaction,
    hasher: &mut sha2::Sha256,
) -> Result<(), StoreError> {
    use sha2::Digest;
    use std::collections::{BTreeMap, HashMap};

    let mut events = BTreeMap::new();
    let mut key_of = HashMap::new();
    for entry in txn.open_table(tables::TIMELINE)?.iter()? {
        let (seq, bytes) = entry?;
        let mut event =
            super::codec::decode::<EventRecord>("timeline", seq.value(), bytes.value())?;
        let id = (event.account_id.clone(), event.key.clone());
        event.seq = 0;
        event.detected_at_ms = 0;
        key_of.insert(seq.value(), id.clone());
        events.insert(id, event.encode_to_vec());
    }
    let known = |seq: u64| key_of.get(&seq).cloned().unwrap_or_default();
    hasher.update(b"timeline");
    hasher.update((events.len() as u64).to_le_bytes());
    for ((account, key), event) in &events {
        hasher.update(format!("{account}/{key}={};", event.len()).as_bytes());
        hasher.update(event);
    }
    let mut by_account = Vec::new();
    for entry in txn.open_table(tables::ACCOUNT_TIMELINE)?.iter()? {
        let (key, _) = entry?;
        let (_, account, at, seq) = key.value();
        let account = String::from_utf8_lossy(account);
        by_account.push(format!("{account}@{at}->{:?}", known(seq)));
    }
    let mut by_time = Vec::new();
    for entry in txn.open_table(tables::TIMELINE_TIMES)?.iter()? {
        let (at, seq) = entry?.0.value();
        by_time.push(format!("{at}->{:?}", known(seq)));
    }
    for (name, mut rows) in [
        ("account_timeline", by_account),
        ("timeline_times", by_time),
    ] {
        rows.sort_unstable();
        hasher.update(name.as_bytes());
        for row in rows {
            hasher.update(row.as_bytes());
            hasher.update(b";");
        }
    }
    hasher.update(super::event_reads::last_seq_of(txn)?.to_le_bytes());
    Ok(())
}

#[cfg(test)]
mod tests {
    use std::collections::{BTreeMap, BTreeSet};
    use std::sync::Arc;

    use chrono::DateTime;

    use crate::clock::ManualClock;
    use crate::domain::account::{Account, AttributeValue};
    use crate::store::events::{EventFilter, EventScope};
    use crate::store::page::{PageContext, PageWrite, TicketChange};
    use crate::store::sync_state::IntegrationRecord;
    use crate::store::zendesk_records::{
        ChangeRecord, OrganizationRecord, TicketRecord, CHANGE_FIELD_PRIORITY, CHANGE_FIELD_STATUS,
    };
    use crate::store::Store;

    const NOW: i64 = 1_800_000_000;
    const HOUR: i64 = 3600;
    const DAY: i64 = 24 * HOUR;

    struct World {
        _dir: tempfile::TempDir,
        store: Store,
        clock: Arc<ManualClock>,
        org_version: i64,
    }

    impl World {
        fn new() -> Self {
            let dir = tempfile::tempdir().expect("tempdir");
            let clock = Arc::new(ManualClock::new(
                DateTime::from_timestamp(NOW, 0).expect("time"),
            ));
            let store = Store::open(dir.path())
                .expect("open")
                .with_clock(clock.clone());
            store
                .put_integration(&IntegrationRecord {
                    subdomain: "acme".into(),
                    match_zendesk_field: "organization_fields.crm".into(),
                    match_account_attribute: "attributes.crm".into(),
                    ..Default::default()
                })
                .expect("integration");
            Self {
                _dir: dir,
                store,
                clock,
                org_version: 0,
            }
        }

        fn now(&self) -> i64 {
            crate::clock::Clock::now(self.clock.as_ref()).timestamp()
        }

        fn account(&self, id: &str, crm: &str) {
            let account = Account {
                id: id.into(),
                name: String::new(),
                owner: String::new(),
                attributes: BTreeMap::from([("crm".to_owned(), AttributeValue::Text(crm.into()))]),
                users: Vec::new(),
            };
            self.store.upsert_accounts(&[account], 0).expect("account");
        }

        /// Organization 1 with `crm` as its key value.
        fn org(&mut self, crm: &str) {
            self.org_version += 1;
            let org = OrganizationRecord {
                fields: BTreeMap::from([("crm".to_owned(), crm.to_owned())]),
                updated_at: self.org_version,
                ..Default::default()
            };
            self.apply(PageWrite {
                organizations: vec![(1, org)],
                ..Default::default()
            });
        }

        /// Ticket `id` of organization 1, created urgent an hour ago.
        fn urgent_ticket(&self, id: u64) {
            let at = self.now() - HOUR;
            let change = |index, field, to| TicketChange {
                ticket_id: id,
                at,
                event_id: id * 10,
                index,
                change: ChangeRecord { field, from: 0, to },
            };
            self.apply(PageWrite {
                tickets: vec![(
                    id,
                    TicketRecord {
                        subject: format!("ticket {id}"),
                        status: 2,
                        priority: 4,
                        organization_id: 1,
                        created_at: at,
                        updated_at: at,
                        generated_timestamp: at,
                        ..Default::default()
                    },
                )],
                changes: vec![
                    change(0, CHANGE_FIELD_STATUS, 2),
                    change(1, CHANGE_FIELD_PRIORITY, 4),
                ],
                ..Default::default()
            });
        }

        fn apply(&self, page: PageWrite) {
            let page = PageWrite {
                context: PageContext {
                    first_sync: false,
                    snapshot_events: false,
                    now_ms: self.now() * 1000,
                },
                ..page
            };
            self.store.apply_page(&page).expect("apply");
        }

        /// (ticket, backfill) of an account's timeline, oldest first.
        fn timeline(&self, account: &str) -> Vec<(u64, bool)> {
            let filter = EventFilter {
                scope: EventScope::Account(account.into()),
                since_ms: None,
                until_ms: None,
                kinds: BTreeSet::new(),
            };
            let page = self.store.list_events(&filter, None, 100).expect("list");
            let mut entries: Vec<(u64, bool)> = page
                .events
                .iter()
                .map(|e| (e.record.ticket_id, e.record.backfill))
                .collect();
            entries.reverse();
            entries
        }
    }

    #[test]
    fn a_fact_appended_twice_is_on_a_timeline_once() {
        use prost::Message;
        use redb::{ReadableDatabase, ReadableTable, ReadableTableMetadata};

        use crate::store::events::EventRecord;
        use crate::store::tables;

        let world = World::new();
        let fact = |key: &str, at: i64| EventRecord {
            key: key.into(),
            ticket_id: 7,
            occurred_at_ms: at,
            ..Default::default()
        };
        let txn = world.store.db().begin_write().expect("write");
        let mut writer = super::TimelineWriter::open(&txn).expect("open");
        assert!(writer
            .append(fact("t7:created:1", 2_000), "acct-b", false, 0)
            .expect("append"));
        assert!(writer
            .append(fact("t7:solved:2", 1_000), "acct-a", false, 0)
            .expect("append"));
        // Not written to its table yet, and still known: the second copy is refused.
        assert!(!writer
            .append(fact("t7:created:1", 2_000), "acct-b", false, 0)
            .expect("again"));
        assert!(writer
            .append(fact("t7:created:1", 2_000), "acct-a", false, 0)
            .expect("other account"));
        assert_eq!(writer.finish().expect("finish"), 3);
        world.store.commit(txn).expect("commit");

        let read = world.store.db().begin_read().expect("read");
        let entries: Vec<(String, String, u64)> = read
            .open_table(tables::TIMELINE)
            .expect("timeline")
            .iter()
            .expect("iter")
            .map(|row| {
                let (seq, bytes) = row.expect("row");
                let entry = EventRecord::decode(bytes.value()).expect("entry");
                (entry.key, entry.account_id, seq.value())
            })
            .collect();
        assert_eq!(
            entries,
            [
                ("t7:created:1".to_owned(), "acct-b".to_owned(), 1),
                ("t7:solved:2".to_owned(), "acct-a".to_owned(), 2),
                ("t7:created:1".to_owned(), "acct-a".to_owned(), 3),
            ]
        );
        drop(read);

        // In a later transaction the stored timeline answers: the same pair again is refused; another fact
        // at the same time, or the same fact for another account, goes on.
        let txn = world.store.db().begin_write().expect("write");
        let mut writer = super::TimelineWriter::open(&txn).expect("open");
        assert!(!writer
            .append(fact("t7:created:1", 2_000), "acct-b", false, 0)
            .expect("stored pair"));
        assert!(!writer
            .append(fact("t7:solved:2", 1_000), "acct-a", false, 0)
            .expect("stored pair"));
        assert!(writer
            .append(fact("t8:created:1", 2_000), "acct-b", false, 0)
            .expect("same time, other fact"));
        assert!(writer
            .append(fact("t7:solved:2", 1_000), "acct-c", false, 0)
            .expect("other account"));
        assert_eq!(writer.finish().expect("finish"), 2);
        world.store.commit(txn).expect("commit");
        let read = world.store.db().begin_read().expect("read");
        let by_account = read
            .open_table(tables::ACCOUNT_TIMELINE)
            .expect("by account");
        assert_eq!(by_account.len().expect("len"), 5);
        assert_eq!(
            read.open_table(tables::TIMELINE)
                .expect("timeline")
                .len()
                .expect("len"),
            5
        );
        assert_eq!(world.store.last_event_seq().expect("tip"), 5);
    }

    #[test]
    fn events_stay_with_the_account_they_were_recorded_for_and_new_matches_backfill() {
        let mut world = World::new();
        world.account("acct-a", "a");
        world.account("acct-b", "b");
        world.org("a");
        world.urgent_ticket(1);
        assert_eq!(world.timeline("acct-a"), [(1, false)]);

        // The organization's key moves to acct-b: acct-a keeps its event, acct-b gets it as backfill.
        world.org("b");
        world.urgent_ticket(2);
        assert_eq!(world.timeline("acct-a"), [(1, false)]);
        assert_eq!(world.timeline("acct-b"), [(1, true), (2, false)]);

        // acct-b is deleted: its timeline stays readable; new events wait as facts for a match.
        world
            .store
            .delete_accounts(&["acct-b".to_owned()])
            .expect("delete");
        world.urgent_ticket(3);
        assert_eq!(world.timeline("acct-b"), [(1, true), (2, false)]);
        assert!(world.store.has_timeline("acct-b").expect("kept"));

        // A new account with the key: the past year arrives as backfill, each once.
        world.account("acct-c", "b");
        assert_eq!(world.timeline("acct-c"), [(1, true), (2, true), (3, true)]);
        world.account("acct-c", "b");
        assert_eq!(
            world.timeline("acct-c").len(),
            3,
            "an upsert that changes nothing backfills nothing"
        );

        // Every (event, account) pair is on the log once, in recording order.
        let all = EventFilter {
            scope: EventScope::AllAccounts,
            since_ms: None,
            until_ms: None,
            kinds: BTreeSet::new(),
        };
        let log = world.store.events_after(0, 100, &all).expect("log");
        let pairs: Vec<(String, u64)> = log
            .events
            .iter()
            .map(|e| (e.record.account_id.clone(), e.record.ticket_id))
            .collect();
        let unique: BTreeSet<&(String, u64)> = pairs.iter().collect();
        assert_eq!(unique.len(), pairs.len());
        assert_eq!(pairs.len(), 1 + 2 + 3);
        assert_eq!(world.store.last_event_seq().expect("tip"), 6);
    }

    #[test]
    fn a_new_match_backfills_only_the_past_year_and_a_key_change_keeps_the_timeline() {
        let mut world = World::new();
        world.org("a");
        world.urgent_ticket(1);
        // No account matched: a fact only.
        assert_eq!(world.store.last_event_seq().expect("tip"), 0);
        world.clock.advance(chrono::Duration::seconds(400 * DAY));
        world.urgent_ticket(2);
        world.account("acct-a", "a");
        assert_eq!(
            world.timeline("acct-a"),
            [(2, true)],
            "ticket 1's event is over a year old"
        );

        // A new match key re-matches everything: a pair that is new backfills, one that stays does not.
        world
            .store
            .put_integration(&IntegrationRecord {
                subdomain: "acme".into(),
                match_zendesk_field: "name".into(),
                match_account_attribute: "attributes.crm".into(),
                ..Default::default()
            })
            .expect("key change");
        assert_eq!(
            world.timeline("acct-a"),
            [(2, true)],
            "organization 1 has no name: unmatched, kept"
        );
    }

    /// Both ways of finding an organization's facts since the horizon give the same keys, in the order the
    /// facts occurred, and leave out other organizations and facts before the horizon.
    #[test]
    fn facts_since_the_horizon_are_the_same_by_lookups_and_by_scan() {
        let dir = tempfile::tempdir().expect("tempdir");
        let store = Store::open(dir.path()).expect("open");
        const DAY_MS: i64 = DAY * 1000;
        let horizon_ms = 400 * DAY_MS + 5_000;
        let txn = store.db().begin_write().expect("write");
        {
            let mut table = txn.open_table(super::tables::ORG_FACTS).expect("org facts");
            let rows: [(u64, i64, &str); 8] = [
                (7, 399 * DAY_MS, "old"),
                (7, 400 * DAY_MS + 4_999, "just before the horizon"),
                (7, 400 * DAY_MS + 5_000, "a"),
                (7, 402 * DAY_MS + 1, "c"),
                (7, 401 * DAY_MS + 9, "b"),
                (8, 401 * DAY_MS, "other org"),
                (9, 403 * DAY_MS, "x"),
                (u64::MAX, 401 * DAY_MS, "y"),
            ];
            for (org, at, key) in rows {
                table
                    .insert((super::tables::fact_day(at), org, at, key), ())
                    .expect("row");
            }
        }
        {
            let table = txn.open_table(super::tables::ORG_FACTS).expect("org facts");
            let orgs: BTreeSet<u64> = [7, 9, u64::MAX].into();
            let days = super::fact_days(&table, horizon_ms)
                .expect("days")
                .expect("some");
            assert_eq!(days, 400..=403);
            let lookups =
                super::facts_by_lookups(&table, &orgs, horizon_ms, days.clone()).expect("lookups");
            let scan = super::facts_by_scan(&table, &orgs, horizon_ms, days).expect("scan");
            assert_eq!(lookups, scan);
            let keys = |org: u64| lookups.get(&org).cloned().unwrap_or_default();
            assert_eq!(keys(7), ["a", "b", "c"]);
            assert_eq!(keys(9), ["x"]);
            assert_eq!(keys(u64::MAX), ["y"]);
            assert!(!lookups.contains_key(&8));
            assert_eq!(
                super::facts_since(&table, &orgs, horizon_ms).expect("since"),
                lookups
            );
            assert_eq!(
                super::fact_days(&table, 404 * DAY_MS).expect("days"),
                None,
                "no fact that recent"
            );
        }
    }
}
