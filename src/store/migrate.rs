//! Schema migrations, each in the transaction that records the new version.
use prost::Message;
use redb::{ReadableTable, TableHandle, WriteTransaction};

use crate::domain::matching::OrgMatch;

use super::codec::decode;
use super::events::EventRecord;
use super::matching::OrgMatchRecord;
use super::tables::{self, schema1, schema2, schema3, schema4, schema6, schema7, schema8};
use super::zendesk_records::{
    ChangeRecord, HistoryChangeRecord, HistoryRecord, Schema5HistoryRecord,
};
use super::StoreError;

/// Schema 1 -> 2: events were attributed to accounts when read; now each timeline entry records its
/// account. Every logged event goes on the timeline of the account its organization matches now (what
/// schema 1 showed), under its old sequence number, so watchers' cursors stay valid.
pub(super) fn events_to_timeline(txn: &WriteTransaction) -> Result<(), StoreError> {
    {
        let log = txn.open_table(schema1::EVENT_LOG)?;
        let facts = txn.open_table(schema3::EVENTS)?;
        let matches = txn.open_table(tables::ORG_MATCHES)?;
        let emails = txn.open_table(tables::ACCOUNT_EMAILS)?;
        let mut org_facts = txn.open_table(tables::ORG_FACTS)?;
        let mut timeline = txn.open_table(tables::TIMELINE)?;
        // Straight into the newest timeline tables: redb must not free, later in this transaction, pages it
        // allocated in it (and schema 7 keeps no index by fact).
        let mut by_account = txn.open_table(tables::ACCOUNT_TIMELINE)?;
        let mut by_time = txn.open_table(tables::TIMELINE_TIMES)?;
        for row in log.iter()? {
            let (seq, key) = row?;
            let (seq, key) = (seq.value(), key.value().to_owned());
            let Some(bytes) = facts.get(key.as_str())? else {
                continue;
            };
            let fact = decode::<EventRecord>("events", &key, bytes.value())?;
            org_facts.insert(
                (
                    tables::fact_day(fact.occurred_at_ms),
                    fact.organization_id,
                    fact.occurred_at_ms,
                    key.as_str(),
                ),
                (),
            )?;
            let account = match matches.get(fact.organization_id)? {
                Some(bytes) if fact.organization_id != 0 => {
                    match decode::<OrgMatchRecord>(
                        "org_matches",
                        fact.organization_id,
                        bytes.value(),
                    )?
                    .to_match()
                    {
                        OrgMatch::Matched { account_id } => Some(account_id),
                        _ => None,
                    }
                }
                _ => None,
            };
            let Some(account) = account else { continue };
            let email = fact.requester_email.to_lowercase();
            let user_email =
                if !email.is_empty() && emails.get((email.as_str(), account.as_str()))?.is_some() {
                    email
                } else {
                    String::new()
                };
            let entry = EventRecord {
                seq,
                account_id: account.clone(),
                user_email,
                ..fact
            };
            timeline.insert(seq, entry.encode_to_vec().as_slice())?;
            by_account.insert(
                tables::account_timeline_key(account.as_bytes(), entry.occurred_at_ms, seq),
                (),
            )?;
            by_time.insert((entry.occurred_at_ms, seq), ())?;
        }
    }
    txn.delete_table(schema1::EVENT_LOG)?;
    txn.delete_table(schema1::ORG_EVENTS)?;
    txn.delete_table(schema1::EVENT_TIMES)?;
    Ok(())
}

/// Schema 2 -> 3: the day rollups and the facts per organization are keyed day first, so a batch of tickets
/// created on a few days dirties a few adjacent leaves instead of most of each table. Every row moves as it
/// is; the timeline's index by fact goes (schema 7 keeps none).
pub(super) fn batch_local_keys(txn: &WriteTransaction) -> Result<(), StoreError> {
    txn.delete_table(schema2::TIMELINE_KEYS)?;
    {
        let from = txn.open_table(schema2::ORG_FACTS)?;
        let mut to = txn.open_table(tables::ORG_FACTS)?;
        for row in from.iter()? {
            let (key, _) = row?;
            let (org, at, fact) = key.value();
            to.insert((tables::fact_day(at), org, at, fact), ())?;
        }
    }
    txn.delete_table(schema2::ORG_FACTS)?;
    rekey(
        txn,
        schema2::ORG_TICKET_DAYS,
        tables::ORG_TICKET_DAYS,
        |(org, day)| (day, org),
    )?;
    rekey(
        txn,
        schema2::ORG_RATING_DAYS,
        tables::ORG_RATING_DAYS,
        |(org, day)| (day, org),
    )?;
    // Schema 9 keeps no rollups per requester (see [`requester_index`]): they go rather than move.
    txn.delete_table(schema2::USER_TICKET_DAYS)?;
    txn.delete_table(schema2::USER_RATING_DAYS)?;
    Ok(())
}

/// Schema 3 -> 4: the facts and the timeline's fact and account indexes are keyed by bytes instead of `&str`
/// (redb checks a `&str` key as UTF-8 on every comparison). Every row moves as it is, but the facts, which
/// take schema 6's form; bytes sort as the strings did.
///
/// A file migrated from an older schema in the same transaction has no schema 3 timeline tables (the older
/// migrations write schema 4's), so only the tables the file holds move.
pub(super) fn byte_keys(txn: &WriteTransaction) -> Result<(), StoreError> {
    let held: std::collections::BTreeSet<String> = txn
        .list_tables()?
        .map(|table| table.name().to_owned())
        .collect();
    let holds = |table: &dyn TableHandle| held.contains(table.name());
    if holds(&schema3::EVENTS) {
        {
            let from = txn.open_table(schema3::EVENTS)?;
            let mut to = txn.open_table(tables::EVENTS)?;
            for row in from.iter()? {
                let (key, value) = row?;
                // Straight into schema 6's form: without the key in the value.
                let key = key.value().as_bytes();
                let mut fact = super::events::decode_fact(key, value.value())?;
                to.insert(key, super::events::encode_fact(&mut fact).as_slice())?;
            }
        }
        txn.delete_table(schema3::EVENTS)?;
    }
    if holds(&schema3::TIMELINE_KEYS) {
        txn.delete_table(schema3::TIMELINE_KEYS)?;
    }
    if holds(&schema3::ACCOUNT_TIMELINE) {
        {
            let from = txn.open_table(schema3::ACCOUNT_TIMELINE)?;
            let mut to = txn.open_table(tables::ACCOUNT_TIMELINE)?;
            for row in from.iter()? {
                let (key, _) = row?;
                let (account, at, seq) = key.value();
                to.insert(
                    tables::account_timeline_key(account.as_bytes(), at, seq),
                    (),
                )?;
            }
        }
        txn.delete_table(schema3::ACCOUNT_TIMELINE)?;
    }
    Ok(())
}

/// Schema 4 -> 5: the change history is one row per ticket instead of one per change. The old rows come in
/// key order, so each ticket's changes are already together and in order. The rows take schema 6's packed
/// form straight away.
pub(super) fn history_per_ticket(txn: &WriteTransaction) -> Result<(), StoreError> {
    let holds = txn
        .list_tables()?
        .any(|table| table.name() == schema4::TICKET_CHANGES.name());
    if !holds {
        return Ok(());
    }
    {
        let from = txn.open_table(schema4::TICKET_CHANGES)?;
        let mut to = txn.open_table(tables::TICKET_HISTORY)?;
        let mut current: Option<(u64, HistoryRecord)> = None;
        for row in from.iter()? {
            let (key, value) = row?;
            let (ticket_id, at, event_id, index) = key.value();
            let change = decode::<ChangeRecord>(
                "ticket_changes",
                format_args!("{ticket_id}/{at}/{event_id}/{index}"),
                value.value(),
            )?;
            let change = HistoryChangeRecord::at_position((at, event_id, index), &change);
            match &mut current {
                Some((id, history)) if *id == ticket_id => history.changes.push(change),
                _ => {
                    let next = HistoryRecord {
                        changes: vec![change],
                    };
                    if let Some((id, history)) = current.replace((ticket_id, next)) {
                        to.insert(id, history.encode_to_vec().as_slice())?;
                    }
                }
            }
        }
        if let Some((id, history)) = current {
            to.insert(id, history.encode_to_vec().as_slice())?;
        }
    }
    txn.delete_table(schema4::TICKET_CHANGES)?;
    Ok(())
}

/// Schema 4, 5 or 6 -> 7: the timeline's index by fact (`schema6::TIMELINE_KEYS`) goes. It cost an insert per
/// timeline entry and only a backfill read it; `ACCOUNT_TIMELINE` answers the backfill as well.
pub(super) fn drop_fact_index(txn: &WriteTransaction) -> Result<(), StoreError> {
    txn.delete_table(schema6::TIMELINE_KEYS)?;
    Ok(())
}

/// Schema 4 to 7 -> 8: the timeline per account is keyed by period first (see [`tables::ACCOUNT_TIMELINE`]).
pub(super) fn timeline_periods(txn: &WriteTransaction) -> Result<(), StoreError> {
    {
        let from = txn.open_table(schema7::ACCOUNT_TIMELINE)?;
        let mut to = txn.open_table(tables::ACCOUNT_TIMELINE)?;
        for row in from.iter()? {
            let (key, _) = row?;
            let (account, at, seq) = key.value();
            to.insert(tables::account_timeline_key(account, at, seq), ())?;
        }
    }
    txn.delete_table(schema7::ACCOUNT_TIMELINE)?;
    Ok(())
}

/// Schema 1 to 8 -> 9: the rollups per (organization, requester) go, and the requester -> tickets index
/// that a user's figures are computed from is built from the stored tickets (see
/// [`tables::REQUESTER_TICKETS`]).
pub(super) fn requester_index(txn: &WriteTransaction) -> Result<(), StoreError> {
    txn.delete_table(schema8::USER_COUNTERS)?;
    txn.delete_table(schema8::USER_TICKET_DAYS)?;
    txn.delete_table(schema8::USER_RATING_DAYS)?;
    let rows = super::requester_tickets::build(txn)?;
    tracing::info!(rows, "migration: requester -> tickets index built");
    Ok(())
}

/// Rows rewritten per step of schema 6's migration: the rows read are held until written back.
const REWRITE_CHUNK: usize = 10_000;

/// Schema 5 -> 6: history rows are packed (`PackedHistory`) instead of a message per change. The values are
/// rewritten in place, a chunk of rows at a time.
pub(super) fn packed_history(txn: &WriteTransaction) -> Result<(), StoreError> {
    let mut table = txn.open_table(tables::TICKET_HISTORY)?;
    let mut next = Some(0_u64);
    while let Some(first) = next {
        let mut rows = Vec::with_capacity(REWRITE_CHUNK);
        for row in table.range(first..)?.take(REWRITE_CHUNK) {
            let (ticket, value) = row?;
            let ticket = ticket.value();
            let old = decode::<Schema5HistoryRecord>("ticket_history", ticket, value.value())?;
            let packed = HistoryRecord {
                changes: old.changes,
            };
            rows.push((ticket, packed.encode_to_vec()));
        }
        next = match rows.last() {
            Some((last, _)) if rows.len() == REWRITE_CHUNK => last.checked_add(1),
            _ => None,
        };
        for (ticket, value) in rows {
            table.insert(ticket, value.as_slice())?;
        }
    }
    Ok(())
}

/// Schema 4 or 5 -> 6: facts are stored without their key, which is the row's key. The values are rewritten
/// in place, a chunk of rows at a time.
pub(super) fn facts_without_keys(txn: &WriteTransaction) -> Result<(), StoreError> {
    let mut table = txn.open_table(tables::EVENTS)?;
    let mut after: Option<Vec<u8>> = None;
    loop {
        let mut rows = Vec::with_capacity(REWRITE_CHUNK);
        let start = match &after {
            Some(key) => std::ops::Bound::Excluded(key.as_slice()),
            None => std::ops::Bound::Unbounded,
        };
        for row in table
            .range::<&[u8]>((start, std::ops::Bound::Unbounded))?
            .take(REWRITE_CHUNK)
        {
            let (key, value) = row?;
            let mut fact = super::events::decode_fact(key.value(), value.value())?;
            rows.push((key.value().to_vec(), super::events::encode_fact(&mut fact)));
        }
        for (key, value) in &rows {
            table.insert(key.as_slice(), value.as_slice())?;
        }
        if rows.len() < REWRITE_CHUNK {
            return Ok(());
        }
        after = rows.pop().map(|(key, _)| key);
    }
}

/// Copies every row of `old` into `new` under the key `key` gives, then deletes `old`.
fn rekey<K, L, V>(
    txn: &WriteTransaction,
    old: redb::TableDefinition<'static, K, V>,
    new: redb::TableDefinition<'static, L, V>,
    key: impl Fn(K) -> L,
) -> Result<(), StoreError>
where
    K: redb::Key + 'static + for<'a> redb::Value<SelfType<'a> = K>,
    L: redb::Key + 'static + for<'a> redb::Value<SelfType<'a> = L> + std::borrow::Borrow<L>,
    V: redb::Value + 'static + for<'a> redb::Value<SelfType<'a> = V> + std::borrow::Borrow<V>,
{
    {
        let from = txn.open_table(old)?;
        let mut to = txn.open_table(new)?;
        for row in from.iter()? {
            let (k, v) = row?;
            to.insert(key(k.value()), v.value())?;
        }
    }
    txn.delete_table(old)?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::{Store, SCHEMA_VERSION};
    use redb::ReadableDatabase;

    /// A store whose file `fill` wrote in one transaction (tables of schema `version`), marked as of that
    /// version and opened again, which migrates it; it has reached this build's schema.
    fn migrated_from(
        version: u32,
        fill: impl FnOnce(&WriteTransaction),
    ) -> (tempfile::TempDir, Store) {
        let dir = tempfile::tempdir().expect("tempdir");
        {
            let store = Store::open(dir.path()).expect("open");
            let txn = store.db().begin_write().expect("write");
            fill(&txn);
            txn.commit().expect("commit");
        }
        crate::store::force_schema_version(dir.path(), version).expect("schema");
        let store = Store::open(dir.path()).expect("migrated");
        assert_eq!(store.schema_version().expect("version"), SCHEMA_VERSION);
        (dir, store)
    }

    /// Asserts that the file `txn` reads holds none of the tables named `gone`.
    fn assert_gone(txn: &redb::ReadTransaction, gone: &[&str]) {
        for name in gone {
            assert!(
                !txn.list_tables()
                    .expect("tables")
                    .any(|table| table.name() == *name),
                "{name}"
            );
        }
    }

    /// A schema 1 file with two logged events, one of an organization matched to `acct`.
    #[test]
    fn logged_events_move_to_the_timeline_of_their_current_account_with_their_numbers() {
        let (_dir, store) = migrated_from(1, |txn| {
            let mut log = txn.open_table(schema1::EVENT_LOG).expect("log");
            let mut facts = txn.open_table(schema3::EVENTS).expect("events");
            for (seq, org) in [(7_u64, 100_u64), (8, 200)] {
                let key = format!("t{seq}:solved:1");
                let fact = EventRecord {
                    seq,
                    ticket_id: seq,
                    organization_id: org,
                    occurred_at_ms: 1_000,
                    requester_email: "Rita@Example.com".into(),
                    key: key.clone(),
                    ..Default::default()
                };
                facts
                    .insert(key.as_str(), fact.encode_to_vec().as_slice())
                    .expect("fact");
                log.insert(seq, key.as_str()).expect("log");
            }
            let matched = OrgMatchRecord {
                state: 1,
                account_id: "acct".into(),
                ..Default::default()
            };
            txn.open_table(tables::ORG_MATCHES)
                .expect("matches")
                .insert(100, matched.encode_to_vec().as_slice())
                .expect("match");
            txn.open_table(tables::ACCOUNT_EMAILS)
                .expect("emails")
                .insert(("rita@example.com", "acct"), ())
                .expect("email");
        });
        let txn = store.db().begin_read().expect("read");
        let timeline = txn.open_table(tables::TIMELINE).expect("timeline");
        let entries: Vec<EventRecord> = timeline
            .iter()
            .expect("iter")
            .map(|row| EventRecord::decode(row.expect("row").1.value()).expect("entry"))
            .collect();
        assert_eq!(
            entries.len(),
            1,
            "the unmatched organization's event stays a fact"
        );
        assert_eq!(
            (
                entries[0].seq,
                entries[0].account_id.as_str(),
                entries[0].user_email.as_str()
            ),
            (7, "acct", "rita@example.com")
        );
        let org_facts = txn.open_table(tables::ORG_FACTS).expect("org facts");
        assert_eq!(
            redb::ReadableTableMetadata::len(&org_facts).expect("len"),
            2
        );
        assert!(
            txn.open_table(schema1::EVENT_LOG).is_err(),
            "schema 1 tables are gone"
        );
    }

    /// A schema 2 file's day rollups per organization and fact index come back keyed day (fact key) first with
    /// the same values.
    #[test]
    fn day_rollups_and_fact_index_are_rekeyed_with_their_values() {
        let (_dir, store) = migrated_from(2, |txn| {
            let mut org_days = txn.open_table(schema2::ORG_TICKET_DAYS).expect("t");
            org_days.insert((100, 20_000), (3, 1)).expect("row");
            org_days.insert((7, 20_001), (1, 0)).expect("row");
            let mut org_ratings = txn.open_table(schema2::ORG_RATING_DAYS).expect("t");
            org_ratings
                .insert((100, 19_999), (1, 2, 0, 1))
                .expect("row");
            let mut user_days = txn.open_table(schema2::USER_TICKET_DAYS).expect("t");
            user_days.insert((100, 5, 20_000), (2, 1)).expect("row");
            let mut user_ratings = txn.open_table(schema2::USER_RATING_DAYS).expect("t");
            user_ratings
                .insert((100, 5, 19_999), (0, 1, 0, 0))
                .expect("row");
            let mut keys = txn.open_table(schema2::TIMELINE_KEYS).expect("t");
            keys.insert(("acct", "t1:solved:9"), 4).expect("row");
            let mut facts = txn.open_table(schema2::ORG_FACTS).expect("t");
            facts
                .insert((100, 2 * 86_400_000 + 5, "t1:solved:9"), ())
                .expect("row");
        });
        let txn = store.db().begin_read().expect("read");
        let rows = |def| -> Vec<((i64, u64), (u64, u64))> {
            let table = txn.open_table(def).expect("table");
            table
                .iter()
                .expect("iter")
                .map(|row| {
                    let (k, v) = row.expect("row");
                    (k.value(), v.value())
                })
                .collect()
        };
        assert_eq!(
            rows(tables::ORG_TICKET_DAYS),
            [((20_000, 100), (3, 1)), ((20_001, 7), (1, 0))]
        );
        let org_ratings = txn.open_table(tables::ORG_RATING_DAYS).expect("t");
        assert_eq!(
            org_ratings
                .get((19_999, 100))
                .expect("get")
                .map(|v| v.value()),
            Some((1, 2, 0, 1))
        );
        // Schema 9 keeps no rollups per requester: they are gone, not moved.
        assert_gone(
            &txn,
            &[
                schema8::USER_TICKET_DAYS.name(),
                schema2::USER_TICKET_DAYS.name(),
            ],
        );
        assert!(
            txn.open_table(schema6::TIMELINE_KEYS).is_err(),
            "schema 7 keeps no index by fact"
        );
        assert!(
            txn.open_table(schema2::ORG_TICKET_DAYS).is_err(),
            "schema 2 tables are gone"
        );
        assert!(txn.open_table(schema2::TIMELINE_KEYS).is_err());
        let facts = txn.open_table(tables::ORG_FACTS).expect("t");
        assert!(facts
            .get((2, 100, 2 * 86_400_000 + 5, "t1:solved:9"))
            .expect("get")
            .is_some());
        assert!(txn.open_table(schema2::ORG_FACTS).is_err());
    }

    /// A schema 3 file's facts and timeline indexes come back keyed by bytes with the same rows, and the
    /// store reads them as before.
    #[test]
    fn facts_and_timeline_indexes_move_to_byte_keys_with_their_rows() {
        let fact = EventRecord {
            key: "t1:solved:9".into(),
            ticket_id: 1,
            organization_id: 100,
            occurred_at_ms: 5,
            ..Default::default()
        };
        let (_dir, store) = migrated_from(3, |txn| {
            let mut facts = txn.open_table(schema3::EVENTS).expect("t");
            facts
                .insert("t1:solved:9", fact.encode_to_vec().as_slice())
                .expect("row");
            facts
                .insert("t2:solved:9", fact.encode_to_vec().as_slice())
                .expect("row");
            let mut keys = txn.open_table(schema3::TIMELINE_KEYS).expect("t");
            keys.insert(("t1:solved:9", "acct"), 4).expect("row");
            keys.insert(("t1:solved:9", "Ärger"), 6).expect("row");
            let mut by_account = txn.open_table(schema3::ACCOUNT_TIMELINE).expect("t");
            by_account.insert(("acct", 5, 4), ()).expect("row");
            by_account.insert(("Ärger", 5, 6), ()).expect("row");
        });
        assert_eq!(
            store
                .event("t1:solved:9")
                .expect("fact")
                .map(|f| f.ticket_id),
            Some(1)
        );
        assert_eq!(
            store.event("t2:solved:9").expect("fact").map(|f| f.key),
            Some("t2:solved:9".to_owned()),
            "a fact's key is its row's"
        );
        assert!(store.has_timeline("Ärger").expect("timeline"));
        assert!(!store.has_timeline("other").expect("timeline"));
        let txn = store.db().begin_read().expect("read");
        let facts = txn.open_table(tables::EVENTS).expect("t");
        assert_eq!(redb::ReadableTableMetadata::len(&facts).expect("len"), 2);
        let stored = facts
            .get("t1:solved:9".as_bytes())
            .expect("get")
            .expect("row");
        assert_eq!(
            EventRecord::decode(stored.value()).expect("fact").key,
            "",
            "straight into schema 6's form"
        );
        assert!(
            txn.open_table(schema6::TIMELINE_KEYS).is_err(),
            "schema 7 keeps no index by fact"
        );
        let by_account = txn.open_table(tables::ACCOUNT_TIMELINE).expect("t");
        assert_eq!(
            redb::ReadableTableMetadata::len(&by_account).expect("len"),
            2
        );
        assert!(
            txn.open_table(schema3::EVENTS).is_err(),
            "schema 3 tables are gone"
        );
        assert!(txn.open_table(schema3::TIMELINE_KEYS).is_err());
        assert!(txn.open_table(schema3::ACCOUNT_TIMELINE).is_err());
    }

    /// A change's position in its ticket's history and the status it changed to.
    type ChangeAt = ((i64, u64, u32), u32);

    /// A schema 4 file's changes, one row each, come back as one history row per ticket, in order.
    #[test]
    fn changes_are_grouped_into_one_history_row_per_ticket() {
        let (_dir, store) = migrated_from(4, |txn| {
            let mut changes = txn.open_table(schema4::TICKET_CHANGES).expect("t");
            for (ticket, at, event, index, to) in [
                (3, 20, 9, 1, 4),
                (3, 10, 8, 0, 1),
                (3, 20, 9, 0, 2),
                (5, 7, 1, 0, 3),
            ] {
                let change = ChangeRecord {
                    field: 1,
                    from: 0,
                    to,
                };
                changes
                    .insert(
                        (ticket, at, event, index),
                        change.encode_to_vec().as_slice(),
                    )
                    .expect("row");
            }
        });
        let txn = store.db().begin_read().expect("read");
        let histories = txn.open_table(tables::TICKET_HISTORY).expect("t");
        let rows: Vec<(u64, Vec<ChangeAt>)> = histories
            .iter()
            .expect("iter")
            .map(|row| {
                let (ticket, value) = row.expect("row");
                let history = HistoryRecord::decode(value.value()).expect("history");
                let changes = history
                    .changes
                    .iter()
                    .map(|change| (change.position(), change.to))
                    .collect();
                (ticket.value(), changes)
            })
            .collect();
        assert_eq!(
            rows,
            [
                (3, vec![((10, 8, 0), 1), ((20, 9, 0), 2), ((20, 9, 1), 4)]),
                (5, vec![((7, 1, 0), 3)]),
            ]
        );
        assert!(
            txn.open_table(schema4::TICKET_CHANGES).is_err(),
            "schema 4's table is gone"
        );
    }

    /// A schema 5 file's history rows (a message per change) come back packed with the same changes, and its
    /// facts without their key in the value, read back with it; more rows than one rewrite step holds.
    #[test]
    fn schema_5_history_rows_are_packed_and_facts_lose_their_stored_key() {
        let rows = REWRITE_CHUNK as u64 + 3;
        let history_of = |ticket: u64| {
            (0..3)
                .map(|step| HistoryChangeRecord {
                    at: 1_700_000_000 + i64::try_from(ticket * 10 + step).expect("small"),
                    event_id: 30_000_000_000 - ticket - step,
                    index: u32::try_from(step).expect("small"),
                    field: 1 + u32::try_from(step % 2).expect("small"),
                    from: 2,
                    to: 3,
                })
                .collect::<Vec<_>>()
        };
        let key_of = |ticket: u64| format!("t{ticket}:created:{}", 1_700_000_000 + ticket);
        let (_dir, store) = migrated_from(5, |txn| {
            let mut histories = txn.open_table(tables::TICKET_HISTORY).expect("t");
            let mut facts = txn.open_table(tables::EVENTS).expect("t");
            for ticket in 1..=rows {
                let old = Schema5HistoryRecord {
                    changes: history_of(ticket),
                };
                histories
                    .insert(ticket, old.encode_to_vec().as_slice())
                    .expect("row");
                let fact = EventRecord {
                    key: key_of(ticket),
                    ticket_id: ticket,
                    subject: "Printer on fire".into(),
                    ..Default::default()
                };
                facts
                    .insert(key_of(ticket).as_bytes(), fact.encode_to_vec().as_slice())
                    .expect("row");
            }
        });
        for ticket in [1, rows / 2, REWRITE_CHUNK as u64, rows] {
            let fact = store.event(&key_of(ticket)).expect("read").expect("fact");
            assert_eq!(
                (fact.key, fact.ticket_id, fact.subject.as_str()),
                (key_of(ticket), ticket, "Printer on fire")
            );
        }
        let txn = store.db().begin_read().expect("read");
        let histories = txn.open_table(tables::TICKET_HISTORY).expect("t");
        let facts = txn.open_table(tables::EVENTS).expect("t");
        let mut seen = 0;
        for row in histories.iter().expect("iter") {
            let (ticket, value) = row.expect("row");
            let history = HistoryRecord::decode(value.value()).expect("packed");
            assert_eq!(history.changes, history_of(ticket.value()));
            seen += 1;
        }
        assert_eq!(seen, rows);
        for row in facts.iter().expect("iter") {
            let (_, value) = row.expect("row");
            let stored = EventRecord::decode(value.value()).expect("fact");
            assert_eq!(stored.key, "", "the key is the row's, not the value's");
        }
        assert_eq!(redb::ReadableTableMetadata::len(&facts).expect("len"), rows);
    }

    /// A schema 6 file's index of the timeline by fact goes (a backfill reads the account's entries instead:
    /// `timeline::tests::a_fact_appended_twice_is_on_a_timeline_once`).
    #[test]
    fn schema_6_fact_index_is_dropped() {
        let (_dir, store) = migrated_from(6, |txn| {
            let mut keys = txn.open_table(schema6::TIMELINE_KEYS).expect("t");
            keys.insert(("t1:solved:9".as_bytes(), "acct".as_bytes()), 4)
                .expect("row");
        });
        let txn = store.db().begin_read().expect("read");
        assert!(txn.open_table(schema6::TIMELINE_KEYS).is_err());
    }

    /// A schema 8 file's rollups per requester go, and the requester -> tickets index is built from its
    /// tickets: a user's figures read the same as the rollups said.
    #[test]
    fn schema_8_rollups_per_requester_give_way_to_an_index_of_the_tickets() {
        let now = 1_800_000_000;
        let (_dir, store) = migrated_from(8, |txn| {
            let mut tickets = txn.open_table(tables::TICKETS).expect("t");
            for (id, requester) in [(1, 7), (2, 0), (70_000, 7), (3, 8)] {
                let ticket = crate::store::zendesk_records::TicketRecord {
                    status: 2,
                    requester_id: requester,
                    organization_id: 10,
                    created_at: now - 86_400,
                    updated_at: now - 86_400,
                    ..Default::default()
                };
                tickets
                    .insert(id, ticket.encode_to_vec().as_slice())
                    .expect("ticket");
            }
            let mut counters = txn.open_table(schema8::USER_COUNTERS).expect("t");
            counters.insert((10, 7), (2, 2, 0)).expect("row");
            let mut days = txn.open_table(schema8::USER_TICKET_DAYS).expect("t");
            days.insert((20_000, 10, 7), (2, 0)).expect("row");
        });
        let rows = crate::store::tests::rows_of(&store, tables::REQUESTER_TICKETS, |k, ()| k);
        let key = crate::store::requester_tickets::key;
        assert_eq!(rows, [key(1, 7), key(3, 8), key(70_000, 7)]);
        let txn = store.db().begin_read().expect("read");
        assert_gone(
            &txn,
            &[
                schema8::USER_COUNTERS.name(),
                schema8::USER_TICKET_DAYS.name(),
                schema8::USER_RATING_DAYS.name(),
            ],
        );
        let figures = store
            .user_figures(
                &[10],
                &[7],
                crate::domain::metrics::Timeframe::from_days(7).expect("7"),
                chrono::DateTime::from_timestamp(now, 0).expect("now"),
            )
            .expect("figures");
        assert_eq!(
            (
                figures.counters.open,
                figures.counters.total,
                figures.created.created
            ),
            (2, 2, 2)
        );
    }

    /// A schema 7 file's timeline per account comes back keyed by period, and reads as before: newest first
    /// across periods (one before 1970 among them), page by page, and per account.
    #[test]
    fn schema_7_account_timeline_is_keyed_by_period_and_reads_the_same() {
        use crate::store::events::{EventFilter, EventPosition, EventScope};
        const DAY_MS: i64 = 24 * 60 * 60 * 1000;
        // (seq, account, occurred at): a's entries span four periods, b's one.
        let entries: [(u64, &str, i64); 6] = [
            (1, "acct-a", -5 * DAY_MS),
            (2, "acct-a", 3 * DAY_MS),
            (3, "acct-b", 3 * DAY_MS),
            (4, "acct-a", 3 * DAY_MS),
            (5, "acct-a", 40 * DAY_MS),
            (6, "acct-a", 100 * DAY_MS),
        ];
        let (_dir, store) = migrated_from(7, |txn| {
            let mut timeline = txn.open_table(tables::TIMELINE).expect("t");
            let mut by_account = txn.open_table(schema7::ACCOUNT_TIMELINE).expect("t");
            for (seq, account, at) in entries {
                let entry = EventRecord {
                    key: format!("t{seq}:solved:1"),
                    seq,
                    account_id: account.into(),
                    occurred_at_ms: at,
                    ..Default::default()
                };
                timeline
                    .insert(seq, entry.encode_to_vec().as_slice())
                    .expect("entry");
                by_account
                    .insert((account.as_bytes(), at, seq), ())
                    .expect("row");
            }
        });
        let filter = |account: &str| EventFilter {
            scope: EventScope::Account(account.into()),
            since_ms: None,
            until_ms: None,
            kinds: std::collections::BTreeSet::new(),
        };
        let seqs = |page: &crate::store::events::EventPage| -> Vec<u64> {
            page.events.iter().map(|e| e.record.seq).collect()
        };
        let all = store
            .list_events(&filter("acct-a"), None, 10)
            .expect("list");
        assert_eq!(seqs(&all), vec![6, 5, 4, 2, 1]);
        assert_eq!(all.next, None);
        let first = store.list_events(&filter("acct-a"), None, 2).expect("list");
        assert_eq!(seqs(&first), vec![6, 5]);
        assert_eq!(
            first.next,
            Some(EventPosition {
                occurred_ms: 40 * DAY_MS,
                seq: 5
            })
        );
        let rest = store
            .list_events(&filter("acct-a"), first.next, 10)
            .expect("list");
        assert_eq!(seqs(&rest), vec![4, 2, 1]);
        let windowed = EventFilter {
            since_ms: Some(0),
            until_ms: Some(50 * DAY_MS),
            ..filter("acct-a")
        };
        let window = store.list_events(&windowed, None, 10).expect("list");
        assert_eq!(seqs(&window), vec![5, 4, 2]);
        let b = store
            .list_events(&filter("acct-b"), None, 10)
            .expect("list");
        assert_eq!(seqs(&b), vec![3]);
        assert!(store.has_timeline("acct-b").expect("timeline"));
        assert!(!store.has_timeline("acct-c").expect("timeline"));
        let txn = store.db().begin_read().expect("read");
        assert!(txn.open_table(schema7::ACCOUNT_TIMELINE).is_err());
        let by_account = txn.open_table(tables::ACCOUNT_TIMELINE).expect("t");
        let periods: Vec<i64> = by_account
            .iter()
            .expect("iter")
            .map(|row| row.expect("row").0.value().0)
            .collect();
        assert_eq!(
            periods,
            vec![-1, 0, 0, 0, 1, 3],
            "a (period, account, time, seq) row per entry"
        );
    }
}
