//! Applying one fetched page: its records, the cursor that follows it and derived state, in ONE write transaction.
use std::borrow::Cow;
use std::collections::HashSet;

use prost::Message;
use redb::{ReadableDatabase, ReadableTable, Table, TableHandle, WriteTransaction};

use super::figures::FigureChange;
use super::page::{ApplyOutcome, PageWrite, Written};
use super::side_loads::{fingerprint, SeenSideLoads, SideLoad, SideLoadFingerprints};
use super::tables;
use super::zendesk_records::{RatingRecord, TicketRecord};
use super::{Store, StoreError};

/// What `upsert_newest` did with one record.
enum Upsert<M> {
    /// The stored copy is newer: nothing written.
    Stale,
    /// The stored copy is byte for byte the same: nothing written, nothing derived moves.
    Unchanged,
    /// Written; holds the copy it replaced, if any.
    Written(Option<M>),
}

impl<M> Upsert<M> {
    /// Whether the record was written.
    fn written(&self) -> bool {
        matches!(self, Upsert::Written(_))
    }
}

/// Writes `value` at `key` unless the stored copy is newer by `version` or already the same bytes.
fn upsert_newest<M: Message + Default>(
    table: &mut Table<u64, &[u8]>,
    name: &'static str,
    key: u64,
    value: &M,
    version: impl Fn(&M) -> i64,
) -> Result<Upsert<M>, StoreError> {
    upsert_encoded(
        table,
        (name, key),
        value,
        &value.encode_to_vec(),
        version,
        Lookup::First,
    )
}

/// How [`upsert_encoded`] finds a stored copy.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Lookup {
    /// Reads it first, and writes only when the new copy wins: for records mostly there already.
    First,
    /// Inserts first and puts a displaced copy back when it wins: one B-tree walk where a lookup and an insert
    /// take two, for records a write mostly adds (a first sync's tickets). Putting a copy back still dirties
    /// its leaf, so not for records mostly there.
    InsertFirst,
}

/// [`upsert_newest`] of `value`, whose stored bytes are `encoded`, finding the stored copy as `lookup` says.
fn upsert_encoded<M: Message + Default>(
    table: &mut Table<u64, &[u8]>,
    (name, key): (&'static str, u64),
    value: &M,
    encoded: &[u8],
    version: impl Fn(&M) -> i64,
    lookup: Lookup,
) -> Result<Upsert<M>, StoreError> {
    crate::background::step_aside();
    if lookup == Lookup::InsertFirst {
        let Some(bytes) = table.insert(key, encoded)?.map(|old| old.value().to_vec()) else {
            return Ok(Upsert::Written(None));
        };
        if bytes == encoded {
            return Ok(Upsert::Unchanged);
        }
        let previous = super::codec::decode::<M>(name, key, &bytes)?;
        if version(&previous) > version(value) {
            table.insert(key, bytes.as_slice())?;
            return Ok(Upsert::Stale);
        }
        return Ok(Upsert::Written(Some(previous)));
    }
    let previous: Option<M> = match table.get(key)? {
        // Side-loaded users and organizations come again with every page that mentions them; rewriting an
        // identical copy would dirty a copy-on-write page (and its indexes) for nothing.
        Some(bytes) if bytes.value() == encoded => return Ok(Upsert::Unchanged),
        Some(bytes) => Some(super::codec::decode::<M>(name, key, bytes.value())?),
        None => None,
    };
    if let Some(old) = &previous {
        if version(old) > version(value) {
            return Ok(Upsert::Stale);
        }
    }
    table.insert(key, encoded)?;
    Ok(Upsert::Written(previous))
}

/// A record's stored bytes: those encoded ahead when the page has them, else encoded now.
fn stored_bytes<'a, M: Message>(encoded_ahead: Option<&'a [u8]>, record: &M) -> Cow<'a, [u8]> {
    encoded_ahead.map_or_else(|| Cow::Owned(record.encode_to_vec()), Cow::Borrowed)
}

/// The side-loads of one page against the fingerprints the store is known to hold.
struct SideLoadCheck<'a> {
    /// What committed pages found stored.
    known: &'a SideLoadFingerprints,
    /// What this page finds stored, recorded once it commits.
    seen: SeenSideLoads,
    /// The records this page wrote: their stored copies are no longer what `known` says.
    written: HashSet<(SideLoad, u64)>,
}

impl SideLoadCheck<'_> {
    /// [`upsert_encoded`] of a side-loaded `value` of `kind`, whose stored bytes are `encoded`: a copy whose
    /// fingerprint the store is known to hold is unchanged without a read of its table.
    fn upsert<M: Message + Default>(
        &mut self,
        table: &mut Table<u64, &[u8]>,
        (kind, key): (SideLoad, u64),
        value: &M,
        encoded: &[u8],
        version: impl Fn(&M) -> i64,
    ) -> Result<Upsert<M>, StoreError> {
        let fingerprint = fingerprint(encoded);
        if self.known.holds(kind, key, fingerprint) && !self.written.contains(&(kind, key)) {
            crate::background::step_aside();
            return Ok(Upsert::Unchanged);
        }
        let name = match kind {
            SideLoad::User => "users",
            SideLoad::Organization => "organizations",
        };
        let upsert = upsert_encoded(table, (name, key), value, encoded, version, Lookup::First)?;
        // A stale copy leaves the stored one, whose fingerprint is not this one.
        if !matches!(upsert, Upsert::Stale) {
            self.seen.saw(kind, key, fingerprint);
        }
        if upsert.written() {
            self.written.insert((kind, key));
        }
        Ok(upsert)
    }
}

/// Applies `page` in `txn`; returns what it did, what it changed of the inputs of account figures, and the
/// side-loads it found stored (`known`: those committed pages found).
fn apply_in(
    txn: &WriteTransaction,
    page: &PageWrite,
    known: &SideLoadFingerprints,
) -> Result<(ApplyOutcome, FigureChange, SeenSideLoads), StoreError> {
    let mut outcome = ApplyOutcome::default();
    let mut side_loads = SideLoadCheck {
        known,
        seen: SeenSideLoads::default(),
        written: HashSet::new(),
    };
    let mut orgs_written = false;
    let seq_before = super::event_reads::last_seq_in(txn)?;
    {
        let mut table = txn.open_table(tables::GROUPS)?;
        for (id, group) in &page.groups {
            table.insert(*id, group.encode_to_vec().as_slice())?;
        }
    }
    {
        let key = super::matching::current_key(txn)?;
        let mut table = txn.open_table(tables::ORGANIZATIONS)?;
        for (index, (id, org)) in page.organizations.iter().enumerate() {
            let upsert = side_loads.upsert(
                &mut table,
                (SideLoad::Organization, *id),
                org,
                &stored_bytes(page.encoded_organization(index), org),
                |o| o.updated_at,
            )?;
            outcome.stale_skipped += u64::from(matches!(upsert, Upsert::Stale));
            outcome.figure_inputs_written |= upsert.written();
            orgs_written |= upsert.written();
            outcome.match_inputs_written |= upsert.written();
            if let (true, Some(key)) = (upsert.written(), &key) {
                super::matching::upsert_org(txn, key, *id, org, page.context.now_ms)?;
            }
        }
    }
    {
        let mut table = txn.open_table(tables::USERS)?;
        let mut by_email = txn.open_table(tables::USERS_BY_EMAIL)?;
        for (index, (id, user)) in page.users.iter().enumerate() {
            let upsert = side_loads.upsert(
                &mut table,
                (SideLoad::User, *id),
                user,
                &stored_bytes(page.encoded_user(index), user),
                |u| u.updated_at,
            )?;
            let previous = match upsert {
                Upsert::Written(previous) => previous,
                Upsert::Stale => {
                    outcome.stale_skipped += 1;
                    continue;
                }
                Upsert::Unchanged => continue,
            };
            outcome.match_inputs_written = true;
            let old_email = previous
                .as_ref()
                .map(|p| p.email.to_lowercase())
                .unwrap_or_default();
            let new_email = user.email.to_lowercase();
            if old_email != new_email {
                if !old_email.is_empty() {
                    by_email.remove((old_email.as_str(), *id))?;
                }
                if !new_email.is_empty() {
                    by_email.insert((new_email.as_str(), *id), ())?;
                }
            }
        }
    }
    let mut written_tickets: Vec<Written<TicketRecord>> = Vec::with_capacity(page.tickets.len());
    let mut written_ratings: Vec<Written<RatingRecord>> = Vec::with_capacity(page.ratings.len());
    {
        let mut table = txn.open_table(tables::TICKETS)?;
        let mut seen = txn.open_table(tables::VALIDATION_SEEN)?;
        // In id order (stable, so two copies of one ticket keep their export order): each B-tree is then walked
        // once from left to right instead of at random.
        let lookup = if page.context.first_sync {
            Lookup::InsertFirst
        } else {
            Lookup::First
        };
        let mut in_id_order: Vec<usize> = (0..page.tickets.len()).collect();
        in_id_order.sort_by_key(|&index| page.tickets[index].0);
        for index in in_id_order {
            let (id, ticket) = &page.tickets[index];
            let upsert = upsert_encoded(
                &mut table,
                ("tickets", *id),
                ticket,
                &stored_bytes(page.encoded_ticket(index), ticket),
                |t| t.generated_timestamp,
                lookup,
            )?;
            // (changed a stored copy, added a ticket the store did not have)
            let (differs, added) = match &upsert {
                Upsert::Stale => {
                    outcome.stale_skipped += 1;
                    (false, false)
                }
                Upsert::Unchanged => (false, false),
                Upsert::Written(previous) => {
                    outcome.tickets_written += 1;
                    let drift = match previous {
                        Some(old) => (!same_ticket(old, ticket), false),
                        None => (false, true),
                    };
                    written_tickets.push((*id, previous.clone(), ticket.clone()));
                    drift
                }
            };
            if let Some(run) = page.validation_run {
                outcome.tickets_drifted += u64::from(differs);
                outcome.tickets_drift_added += u64::from(added);
                seen.insert(*id, run)?;
            }
        }
    }
    {
        let mut table = txn.open_table(tables::RATINGS)?;
        // A copy taken from a ticket carries the ticket's time; the list's own copy is exact and replaces it.
        let version = |r: &RatingRecord| {
            if r.from_ticket {
                i64::MIN
            } else {
                r.updated_at
            }
        };
        for (id, rating) in &page.ratings {
            match upsert_newest(&mut table, "ratings", *id, rating, version)? {
                Upsert::Stale => outcome.stale_skipped += 1,
                Upsert::Unchanged => {}
                Upsert::Written(previous) => written_ratings.push((*id, previous, rating.clone())),
            }
        }
        for seen in &page.ticket_ratings {
            let Some(rating) = rating_from_ticket(&table, seen)? else {
                continue;
            };
            if let Upsert::Written(previous) =
                upsert_newest(&mut table, "ratings", seen.rating_id, &rating, |_| 0)?
            {
                written_ratings.push((seen.rating_id, previous, rating));
            }
        }
    }
    // The export is in time order, the table in ticket order: the tickets are written in id order, so the
    // tree is walked once from left to right. Detection reads the history of every ticket a page moves to or
    // from high/urgent: those are kept for it (all of them held 10 MiB more at 1,000,000 tickets).
    let histories = super::history::write_changes(
        &mut txn.open_table(tables::TICKET_HISTORY)?,
        &page.changes,
        |changes| {
            changes
                .iter()
                .any(|change| super::event_writes::moves_high_urgent(&change.change))
        },
    )?;
    outcome.figure_inputs_written |= !written_tickets.is_empty() || !written_ratings.is_empty();
    // Derived state moves in the same transaction as the records it comes from.
    super::requester_tickets::apply(txn, &written_tickets)?;
    let moved = super::rollups::apply(
        txn,
        &written_tickets,
        &written_ratings,
        page.context.first_sync,
    )?;
    outcome.rollup_rows_drifted = moved.drifted;
    // A written organization may change which accounts match what; tickets and ratings move only their
    // organizations' rollups.
    let figure_change = if orgs_written {
        FigureChange::Everything
    } else if outcome.figure_inputs_written {
        FigureChange::Orgs(moved.orgs)
    } else {
        FigureChange::Nothing
    };
    outcome.events_recorded = super::event_writes::apply(
        txn,
        &written_tickets,
        &written_ratings,
        &page.changes,
        &histories,
        &page.context,
    )?;
    // Organizations newly matched backfill timelines too, so the sequence number is what tells.
    outcome.timeline_grew = super::event_reads::last_seq_in(txn)? != seq_before;
    if let Some((pages, tickets)) = page.run_progress {
        let mut table = txn.open_table(tables::SYNC_STATE)?;
        let stored = table
            .get(tables::meta_keys::SYNC_STATE)?
            .map(|bytes| bytes.value().to_vec());
        if let Some(bytes) = stored {
            let mut state =
                super::sync_state::SyncStateRecord::decode(bytes.as_slice()).map_err(|err| {
                    StoreError::Corrupt {
                        table: "sync_state",
                        key: tables::meta_keys::SYNC_STATE.into(),
                        detail: err.to_string(),
                    }
                })?;
            if let Some(active) = state.active_run.as_mut() {
                active.pages = pages;
                active.tickets = tickets;
                active.events += outcome.events_recorded;
                table.insert(
                    tables::meta_keys::SYNC_STATE,
                    state.encode_to_vec().as_slice(),
                )?;
            }
        }
    }
    {
        let mut table = txn.open_table(tables::CURSORS)?;
        for (key, position) in &page.cursors {
            table.insert(key.as_str(), position.as_slice())?;
        }
    }
    Ok((outcome, figure_change, side_loads.seen))
}

/// The rating copy a ticket's `satisfaction_rating` implies, when it shows another score than the stored one.
///
/// Only a rating the list already brought is taken: the ticket's `updated_at` is when the score was given
/// at the latest, close for a score given since the last sync but not for a rating the list never returned
/// (one older than the year the first sync lists, whose ticket changed today). A comment edit alone waits
/// for the list.
fn rating_from_ticket(
    table: &Table<u64, &[u8]>,
    seen: &super::page::TicketRating,
) -> Result<Option<RatingRecord>, StoreError> {
    let Some(stored) = super::codec::get_by_id::<RatingRecord>(table, "ratings", seen.rating_id)?
    else {
        return Ok(None);
    };
    if stored.score == seen.score || stored.updated_at >= seen.seen_at {
        return Ok(None);
    }
    Ok(Some(RatingRecord {
        ticket_id: seen.ticket_id,
        score: seen.score.clone(),
        comment: seen.comment.clone(),
        updated_at: seen.seen_at,
        from_ticket: true,
        ..stored
    }))
}

/// Hashes every row of `table` as its debug text (tuple keys and values alike), with the table's name.
fn hash_rows<K, V>(
    hasher: &mut sha2::Sha256,
    table: &redb::ReadOnlyTable<K, V>,
) -> Result<(), StoreError>
where
    K: redb::Key + 'static,
    V: redb::Value + 'static,
    for<'a> K::SelfType<'a>: std::fmt::Debug,
    for<'a> V::SelfType<'a>: std::fmt::Debug,
{
    use sha2::Digest;
    hasher.update(table.name().as_bytes());
    for entry in table.iter()? {
        let (key, value) = entry?;
        hasher.update(format!("{:?}={:?};", key.value(), value.value()).as_bytes());
    }
    Ok(())
}

/// Whether two copies of a ticket agree on everything zdsync uses (the generated timestamp aside).
fn same_ticket(a: &TicketRecord, b: &TicketRecord) -> bool {
    let mut a = a.clone();
    a.generated_timestamp = b.generated_timestamp;
    a.gone = b.gone;
    &a == b
}

impl Store {
    /// Applies one page in one durable write transaction: records (newest copy wins), changes and cursors.
    pub fn apply_page(&self, page: &PageWrite) -> Result<ApplyOutcome, StoreError> {
        // Held through the commit, before the write transaction begins (as a delete of the records takes it):
        // what the page found stored is recorded only once durable, and nothing deletes it in between.
        let mut known = self.side_load_fingerprints();
        let txn = self.db().begin_write()?;
        let (outcome, figure_change, seen) = apply_in(&txn, page, &known)?;
        self.commit_as(txn, figure_change)?;
        known.record(seen);
        drop(known);
        if outcome.match_inputs_written {
            self.reads.match_inputs_changed();
        }
        if outcome.timeline_grew {
            // The page is durable; a failed read of the tip only delays watchers to the next bump.
            if let Err(error) = self.publish_event_tip() {
                tracing::warn!(%error, "cannot tell timeline watchers about new events");
            }
        }
        Ok(outcome)
    }

    /// A stored ticket.
    pub fn ticket(&self, id: u64) -> Result<Option<TicketRecord>, StoreError> {
        let txn = self.db().begin_read()?;
        super::codec::get_by_id(&txn.open_table(tables::TICKETS)?, "tickets", id)
    }

    /// Overwrites a stored ticket as is; for tests that tamper with the store.
    pub fn put_ticket_raw(&self, id: u64, ticket: &TicketRecord) -> Result<(), StoreError> {
        let txn = self.db().begin_write()?;
        txn.open_table(tables::TICKETS)?
            .insert(id, ticket.encode_to_vec().as_slice())?;
        self.commit(txn)?;
        Ok(())
    }

    /// A digest of every stored Zendesk record and cursor, to compare two stores (crash tests).
    pub fn content_digest(&self) -> Result<String, StoreError> {
        use sha2::{Digest, Sha256};
        let txn = self.db().begin_read()?;
        let mut hasher = Sha256::new();
        for def in tables::ZENDESK_RECORDS {
            let table = txn.open_table(def)?;
            hasher.update(def.name().as_bytes());
            for entry in table.iter()? {
                let (key, value) = entry?;
                hasher.update(key.value().to_le_bytes());
                hasher.update(value.value());
            }
        }
        // Change by change, as when each had its own row (digests of both layouts compare).
        let histories = txn.open_table(tables::TICKET_HISTORY)?;
        for entry in histories.iter()? {
            let (ticket, value) = entry?;
            let ticket = ticket.value();
            let history = super::history::decode_row(ticket, value.value())?;
            for change in &history.changes {
                hasher.update(ticket.to_le_bytes());
                hasher.update(change.at.to_le_bytes());
                hasher.update(change.event_id.to_le_bytes());
                hasher.update(change.index.to_le_bytes());
                hasher.update(change.change().encode_to_vec());
            }
        }
        let cursors = txn.open_table(tables::CURSORS)?;
        for entry in cursors.iter()? {
            let (key, value) = entry?;
            hasher.update(key.value().as_bytes());
            hasher.update(value.value());
        }
        // Derived state: the facts and the timelines (but for when they were recorded, which is the
        // wall clock of the run), the event counter and every rollup.
        // Each fact with its key, however it was stored (schema 6 leaves the key out of the value).
        let without_detection_time = |key: &[u8], bytes: &[u8]| -> Result<Vec<u8>, StoreError> {
            let mut event = super::events::decode_fact(key, bytes)?;
            event.detected_at_ms = 0;
            Ok(event.encode_to_vec())
        };
        let facts = txn.open_table(tables::EVENTS)?;
        for entry in facts.iter()? {
            let (key, value) = entry?;
            hasher.update(key.value());
            hasher.update(without_detection_time(key.value(), value.value())?);
        }
        super::timeline::hash_timeline_content(&txn, &mut hasher)?;
        // Tables of different key and value types: one call each, spelled once.
        macro_rules! hash_tables {
            ($($table:ident),+) => {
                $(hash_rows(&mut hasher, &txn.open_table(tables::$table)?)?;)+
            };
        }
        hash_tables!(ORG_FACTS, PENDING_RATING_EVENTS);
        tables::with_rollup_tables!(hash_tables);
        Ok(format!("{:x}", hasher.finalize()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ticket(generated: i64, subject: &str) -> TicketRecord {
        TicketRecord {
            subject: subject.into(),
            status: 2,
            generated_timestamp: generated,
            ..Default::default()
        }
    }

    #[test]
    fn the_newest_copy_wins_and_the_cursor_commits_with_the_page() {
        let dir = tempfile::tempdir().expect("tempdir");
        let store = Store::open(dir.path()).expect("open");
        let page = PageWrite {
            tickets: vec![(1, ticket(100, "new")), (2, ticket(100, "b"))],
            cursors: vec![("tickets".into(), b"c1".to_vec())],
            ..Default::default()
        };
        assert_eq!(store.apply_page(&page).expect("apply").tickets_written, 2);
        let older = PageWrite {
            tickets: vec![(1, ticket(50, "old"))],
            cursors: vec![("tickets".into(), b"c2".to_vec())],
            ..Default::default()
        };
        let outcome = store.apply_page(&older).expect("apply");
        assert_eq!(outcome.stale_skipped, 1);
        assert_eq!(store.ticket(1).expect("get").expect("some").subject, "new");
        assert_eq!(
            store.cursor("tickets").expect("cursor"),
            Some(b"c2".to_vec())
        );
        assert_eq!(store.stored_counts().expect("counts").tickets, 2);
    }

    /// A first sync inserts its tickets before looking: a newer stored copy is put back and counted stale, the
    /// same bytes count as unchanged, an older copy is replaced, as in any other sync.
    #[test]
    fn a_first_sync_keeps_the_newest_copy_when_it_inserts_first() {
        let dir = tempfile::tempdir().expect("tempdir");
        let store = Store::open(dir.path()).expect("open");
        let first_sync = |tickets: Vec<(u64, TicketRecord)>| PageWrite {
            tickets,
            context: crate::store::page::PageContext {
                first_sync: true,
                ..Default::default()
            },
            ..Default::default()
        };
        let added = store
            .apply_page(&first_sync(vec![
                (1, ticket(100, "new")),
                (2, ticket(100, "b")),
            ]))
            .expect("apply");
        assert_eq!(added.tickets_written, 2);
        let again = store
            .apply_page(&first_sync(vec![
                (1, ticket(50, "old")),
                (2, ticket(100, "b")),
                (3, ticket(1, "c")),
            ]))
            .expect("apply");
        assert_eq!((again.stale_skipped, again.tickets_written), (1, 1));
        assert_eq!(store.ticket(1).expect("get").expect("some").subject, "new");
        let later = store
            .apply_page(&first_sync(vec![(2, ticket(200, "b2"))]))
            .expect("apply");
        assert_eq!(later.tickets_written, 1);
        assert_eq!(store.ticket(2).expect("get").expect("some").subject, "b2");
        assert_eq!(store.stored_counts().expect("counts").tickets, 3);
    }

    /// A side-loaded user or organization is stored whenever the store does not hold it, even when an earlier
    /// page brought the same bytes: after a delete of the integration's records, and after a page whose
    /// commit failed.
    #[test]
    fn side_loads_are_stored_again_after_a_delete_and_after_a_failed_commit() {
        use crate::store::zendesk_records::{OrganizationRecord, ZendeskUserRecord};
        let dir = tempfile::tempdir().expect("tempdir");
        let fault = crate::store::StorageFault::new();
        let store = Store::open_with_fault(dir.path(), fault.clone()).expect("open");
        let user = |id: u64| ZendeskUserRecord {
            name: format!("user {id}"),
            email: format!("u{id}@example.com"),
            updated_at: 100,
            ..Default::default()
        };
        let org = |id: u64| OrganizationRecord {
            name: format!("org {id}"),
            updated_at: 100,
            ..Default::default()
        };
        let page = |id: u64| PageWrite {
            users: vec![(id, user(id))],
            organizations: vec![(id, org(id))],
            ..Default::default()
        };
        let counts = |store: &Store| {
            let counts = store.stored_counts().expect("counts");
            (counts.users, counts.organizations)
        };
        store.apply_page(&page(1)).expect("apply");
        store.apply_page(&page(1)).expect("the same again");
        assert_eq!(counts(&store), (1, 1));
        store.delete_integration_data().expect("delete");
        assert_eq!(counts(&store), (0, 0));
        store.apply_page(&page(1)).expect("apply after the delete");
        assert_eq!(counts(&store), (1, 1), "stored again after the delete");

        fault.fill_disk();
        assert!(store.apply_page(&page(2)).is_err(), "the disk is full");
        fault.clear();
        assert!(store.recover().expect("recover"), "space was freed");
        store
            .apply_page(&page(2))
            .expect("apply after the failed commit");
        assert_eq!(counts(&store), (2, 2), "stored after the failed commit");
        drop(store);
        let reopened = Store::open(dir.path()).expect("reopen");
        assert_eq!(counts(&reopened), (2, 2));
    }

    /// Records encoded ahead store exactly what the commit would have encoded, also when a batch mixes pages
    /// encoded ahead with one that is not (whose bytes then line up with nothing and are dropped), and the
    /// stored bytes are the ones handed in.
    #[test]
    fn records_encoded_ahead_store_the_same_as_records_encoded_at_the_commit() {
        use crate::store::zendesk_records::{OrganizationRecord, ZendeskUserRecord};
        let page = |first: u64| PageWrite {
            // Out of id order, so the commit's id order must find each ticket's own bytes.
            tickets: vec![
                (first + 2, ticket(100, "c")),
                (first, ticket(100, "a")),
                (first + 1, ticket(100, "b")),
            ],
            users: vec![(
                first,
                ZendeskUserRecord {
                    name: format!("user {first}"),
                    updated_at: 1,
                    ..Default::default()
                },
            )],
            organizations: vec![(
                first,
                OrganizationRecord {
                    name: format!("org {first}"),
                    updated_at: 1,
                    ..Default::default()
                },
            )],
            ..Default::default()
        };
        let digest_of = |batch: &PageWrite| {
            let dir = tempfile::tempdir().expect("tempdir");
            let store = Store::open(dir.path()).expect("open");
            store.apply_page(batch).expect("apply");
            store.content_digest().expect("digest")
        };
        let mut plain = page(10);
        plain.append(page(20));
        let mut ahead = PageWrite::default();
        for first in [10, 20] {
            let mut staged = page(first);
            staged.encode_ahead();
            ahead.append(staged);
        }
        assert_eq!(
            ahead.encoded_ticket(5).map(<[u8]>::len),
            Some(ticket(100, "b").encode_to_vec().len())
        );
        assert_eq!(digest_of(&ahead), digest_of(&plain));
        let mut mixed = ahead.clone();
        mixed.append(page(30));
        assert_eq!(
            mixed.encoded_ticket(0),
            None,
            "bytes that do not cover every record are dropped"
        );
        let mut plain_three = plain.clone();
        plain_three.append(page(30));
        assert_eq!(digest_of(&mixed), digest_of(&plain_three));
        // The commit stores the bytes it was handed: bytes that differ from the record show in the digest.
        let mut tampered = ahead;
        tampered.encoded.tickets[0] = ticket(100, "other").encode_to_vec();
        assert_ne!(digest_of(&tampered), digest_of(&plain));
    }

    /// Two copies of one user in a page (two pages committed together) end as without fingerprints, the later
    /// of two equal versions winning, also when the later one is the copy stored before the page.
    #[test]
    fn a_side_load_written_by_a_page_is_not_taken_for_its_fingerprint_within_it() {
        use crate::store::zendesk_records::ZendeskUserRecord;
        let dir = tempfile::tempdir().expect("tempdir");
        let store = Store::open(dir.path()).expect("open");
        let copy = |name: &str| ZendeskUserRecord {
            name: name.into(),
            email: "u1@example.com".into(),
            updated_at: 100,
            ..Default::default()
        };
        let stored_name = |store: &Store| {
            let txn = store.db().begin_read().expect("read");
            super::super::codec::get_by_id::<ZendeskUserRecord>(
                &txn.open_table(tables::USERS).expect("users"),
                "users",
                1,
            )
            .expect("get")
            .expect("stored")
            .name
        };
        let page = |names: &[&str]| PageWrite {
            users: names.iter().map(|name| (1, copy(name))).collect(),
            ..Default::default()
        };
        store.apply_page(&page(&["first"])).expect("apply");
        store
            .apply_page(&page(&["first"]))
            .expect("fingerprint known");
        store
            .apply_page(&page(&["second", "first"]))
            .expect("both copies");
        assert_eq!(stored_name(&store), "first", "the later copy wins");
        store.apply_page(&page(&["second"])).expect("apply");
        assert_eq!(stored_name(&store), "second", "the fingerprint followed");
    }

    #[test]
    fn validation_counts_drift_and_marks_unseen_tickets_gone() {
        let dir = tempfile::tempdir().expect("tempdir");
        let store = Store::open(dir.path()).expect("open");
        let seed = PageWrite {
            tickets: vec![
                (1, ticket(100, "a")),
                (2, ticket(100, "b")),
                (3, ticket(10, "old")),
            ],
            ..Default::default()
        };
        store.apply_page(&seed).expect("seed");
        store.reset_validation().expect("reset");
        let validation = PageWrite {
            tickets: vec![
                (1, ticket(100, "a")),
                (2, ticket(100, "b changed")),
                (4, ticket(100, "new")),
            ],
            validation_run: Some(7),
            ..Default::default()
        };
        let outcome = store.apply_page(&validation).expect("apply");
        assert_eq!(
            (outcome.tickets_drifted, outcome.tickets_drift_added),
            (1, 1),
            "one changed, one added"
        );
        assert_eq!(store.mark_unseen_tickets_gone(7, 50).expect("mark"), 0);
        let partial = PageWrite {
            tickets: vec![(1, ticket(100, "a")), (4, ticket(100, "new"))],
            validation_run: Some(8),
            ..Default::default()
        };
        store.reset_validation().expect("reset");
        store.apply_page(&partial).expect("apply");
        assert_eq!(store.mark_unseen_tickets_gone(8, 50).expect("mark"), 1);
        assert!(store.ticket(2).expect("get").expect("some").gone);
        assert!(
            !store.ticket(3).expect("get").expect("some").gone,
            "older than the window"
        );
    }
}
