//! The nightly validation's steps after its export, in bounded memory: marking the tickets Zendesk no
//! longer returns as gone, and checking every rollup against the stored tickets and ratings.
//!
//! Each step works in chunks, each committed in its own short write transaction together with the
//! position it reached (`VALIDATION_PROGRESS`): admin writes and reads interleave, memory is bounded by
//! the chunk, and a restart resumes where the last chunk committed (a fresh validation resets it all).
//!
//! There is no organization -> tickets index, so the rollup check goes one range of organizations at a
//! time: a read transaction scans the tickets and ratings and sums the rows of the organizations from
//! the next unchecked one on, as many as fit in `rows_per_pass` (the range shrinks as the sums fill);
//! a write transaction then compares those organizations' stored rows with the sums, counts the rows
//! that differ (the validation's drift, as one rebuild of everything would count it) and repairs them.
//! A page applied between the two moves the rollups by deltas and bumps `ROLLUP_GENERATION`: the pass
//! is done again (ranges already repaired stay right, as the deltas keep them). A reset of every rollup
//! (a fresh integration) starts the check over.
use std::ops::{ControlFlow, RangeInclusive};

use prost::Message;
use redb::{ReadTransaction, ReadableDatabase, ReadableTable, TableDefinition, WriteTransaction};

use super::rollup_generation::generation;
use super::rollups::{self, Deltas};
use super::tables::{self, validation_keys as keys};
use super::zendesk_records::TicketRecord;
use super::{Store, StoreError};

/// Rollup rows one pass of the check sums in memory at most (some 60 bytes each); an organization
/// with more rows than this alone is still summed whole.
pub const ROLLUP_ROWS_PER_PASS: usize = 200_000;

/// Tickets (or ratings) looked at per write transaction by the chunked steps.
const RECORDS_PER_CHUNK: usize = 10_000;

/// One pass of the rollup check, as the caller sees it before the pass writes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RollupPass {
    /// Passes begun by this call so far, this one included (a pass done again counts again).
    pub number: u64,
    /// The first organization id the pass covers.
    pub first_org: u64,
    /// The last organization id the pass covers.
    pub last_org: u64,
}

/// A row of `VALIDATION_PROGRESS`.
fn progress(
    table: &impl ReadableTable<&'static str, u64>,
    key: &str,
) -> Result<Option<u64>, StoreError> {
    Ok(table.get(key)?.map(|value| value.value()))
}

/// Calls `each` with the id and bytes of the records of `table` from id `first` on, at most
/// [`RECORDS_PER_CHUNK`] of them; returns the id to continue from (`None` when the table is done).
fn for_chunk(
    table: &impl ReadableTable<u64, &'static [u8]>,
    first: u64,
    mut each: impl FnMut(u64, &[u8]) -> Result<(), StoreError>,
) -> Result<Option<u64>, StoreError> {
    for (scanned, entry) in table.range(first..)?.enumerate() {
        crate::background::step_aside();
        let (id, bytes) = entry?;
        if scanned == RECORDS_PER_CHUNK {
            return Ok(Some(id.value()));
        }
        each(id.value(), bytes.value())?;
    }
    Ok(None)
}

/// Marks as gone, in `txn`, the live tickets changed since `since` that validation `run` did not see,
/// from ticket `first` on and at most [`RECORDS_PER_CHUNK`] of them; returns how many it marked and the
/// ticket to continue from (`None` when the table is done).
fn mark_chunk(
    txn: &WriteTransaction,
    run: u64,
    since: i64,
    first: u64,
) -> Result<(u64, Option<u64>), StoreError> {
    let mut tickets = txn.open_table(tables::TICKETS)?;
    let seen = txn.open_table(tables::VALIDATION_SEEN)?;
    let mut to_mark = Vec::new();
    let resume = for_chunk(&tickets, first, |id, bytes| {
        let ticket = super::codec::decode::<TicketRecord>("tickets", id, bytes)?;
        if ticket.gone || ticket.generated_timestamp < since {
            return Ok(());
        }
        if seen.get(id)?.map(|v| v.value()) != Some(run) {
            to_mark.push((id, ticket));
        }
        Ok(())
    })?;
    for (id, ticket) in &mut to_mark {
        ticket.gone = true;
        tickets.insert(*id, ticket.encode_to_vec().as_slice())?;
    }
    Ok((to_mark.len() as u64, resume))
}

/// A stored ticket without its subject: the fields its figures come from (`facts::ticket_facts`) and
/// its owner, decoded without copying the text (every pass of the check reads every ticket).
#[derive(Clone, PartialEq, Message)]
struct FigureFields {
    #[prost(uint32, tag = "2")]
    status: u32,
    #[prost(uint32, tag = "3")]
    priority: u32,
    #[prost(uint64, tag = "4")]
    requester_id: u64,
    #[prost(uint64, tag = "7")]
    organization_id: u64,
    #[prost(int64, tag = "8")]
    created_at: i64,
    #[prost(int64, tag = "9")]
    updated_at: i64,
    #[prost(uint32, tag = "11")]
    reopens: u32,
    #[prost(int64, tag = "12")]
    solved_at: i64,
    #[prost(bool, tag = "13")]
    gone: bool,
}

impl FigureFields {
    /// The ticket as far as its figures go.
    fn record(&self) -> TicketRecord {
        TicketRecord {
            status: self.status,
            priority: self.priority,
            requester_id: self.requester_id,
            organization_id: self.organization_id,
            created_at: self.created_at,
            updated_at: self.updated_at,
            reopens: self.reopens,
            solved_at: self.solved_at,
            gone: self.gone,
            ..Default::default()
        }
    }
}

/// The rows the check sums for one range of organizations: from `first_org` to `last_org`, which comes
/// down as the sums outgrow `budget` rows.
struct Sums {
    deltas: Deltas,
    first_org: u64,
    last_org: u64,
    budget: usize,
}

impl Sums {
    fn covers(&self, org: u64) -> bool {
        org != 0 && (self.first_org..=self.last_org).contains(&org)
    }

    fn rows(&self) -> usize {
        self.deltas.rows()
    }

    /// Drops the last organizations' sums (and their range) while the sums hold more than the budget.
    fn fit(&mut self) {
        while self.rows() > self.budget {
            let d = &self.deltas;
            let last = [
                d.counters.last_key_value().map(|(k, _)| *k),
                d.days.last_key_value().map(|(k, _)| k.0),
                d.ratings.last_key_value().map(|(k, _)| k.0),
            ]
            .into_iter()
            .flatten()
            .max();
            let Some(last) = last.filter(|&last| last > self.first_org) else {
                // One organization alone is over the budget: it is summed whole.
                return;
            };
            let d = &mut self.deltas;
            drop(d.counters.split_off(&last));
            drop(d.days.split_off(&(last, i64::MIN)));
            drop(d.ratings.split_off(&(last, i64::MIN)));
            self.last_org = last - 1;
        }
    }
}

/// Sums, from the tickets and ratings `txn` sees, the rollup rows of the organizations from `first_org`
/// on, as many as fit in `budget` rows: what a rebuild of everything would write for them.
fn sum_rows(txn: &ReadTransaction, first_org: u64, budget: usize) -> Result<Sums, StoreError> {
    let mut sums = Sums {
        deltas: Deltas::default(),
        first_org,
        last_org: u64::MAX,
        budget,
    };
    let tickets = txn.open_table(tables::TICKETS)?;
    let index = txn.open_table(tables::TICKET_RATINGS)?;
    let ratings = txn.open_table(tables::RATINGS)?;
    for entry in tickets.iter()? {
        crate::background::step_aside();
        let (id, bytes) = entry?;
        let id = id.value();
        let ticket = super::codec::decode::<FigureFields>("tickets", id, bytes.value())?.record();
        if !sums.covers(ticket.organization_id) {
            continue;
        }
        // The ticket's ratings through the index (put right when the check began, kept by every page):
        // each pass then reads only its own organizations' ratings.
        let org = rollups::org_of(&ticket);
        rollups::add_ticket_and_ratings(&mut sums.deltas, org, (id, &ticket), &index, &ratings)?;
        sums.fit();
    }
    Ok(sums)
}

/// Compares the rows of `def` inside `range` that `covered` keeps with `expected` (summed deltas under
/// their table keys, in key order, that `row` turns into row values; an all-zero row is no row), writes
/// the expected ones and removes the others; returns how many rows differed.
///
/// The day tables are keyed day first, so a range of organizations is not a range of keys there: their
/// whole key range is read and `covered` picks the pass's organizations.
fn repair<K, V, D>(
    txn: &WriteTransaction,
    def: TableDefinition<'static, K, V>,
    range: RangeInclusive<K>,
    covered: impl Fn(&K) -> bool,
    expected: &[(K, &D)],
    row: impl Fn(&D) -> V,
) -> Result<u64, StoreError>
where
    K: redb::Key + Ord + Copy + 'static + for<'a> redb::Value<SelfType<'a> = K>,
    V: redb::Value + PartialEq + Copy + Default + 'static + for<'a> redb::Value<SelfType<'a> = V>,
{
    let mut wanted = expected
        .iter()
        .map(|&(key, delta)| (key, row(delta)))
        .filter(|(_, value)| *value != V::default())
        .peekable();
    let mut fixes: Vec<(K, Option<V>)> = Vec::new();
    let mut table = txn.open_table(def)?;
    for entry in table.range(range)? {
        crate::background::step_aside();
        let (key, value) = entry?;
        let (key, value) = (key.value(), value.value());
        if !covered(&key) {
            continue;
        }
        while let Some((missing, want)) = wanted.next_if(|(wanted, _)| *wanted < key) {
            fixes.push((missing, Some(want)));
        }
        match wanted.next_if(|(wanted, _)| *wanted == key) {
            Some((_, want)) if want == value => {}
            Some((_, want)) => fixes.push((key, Some(want))),
            None => fixes.push((key, None)),
        }
    }
    fixes.extend(wanted.map(|(key, want)| (key, Some(want))));
    for (key, fix) in &fixes {
        match fix {
            Some(value) => drop(table.insert(key, value)?),
            None => drop(table.remove(key)?),
        }
    }
    Ok(fixes.len() as u64)
}

/// Compares and repairs every rollup row of the organizations `sums` covers; returns the rows that differed.
fn repair_range(txn: &WriteTransaction, sums: &Sums) -> Result<u64, StoreError> {
    let (first, last) = (sums.first_org, sums.last_org);
    let d = &sums.deltas;
    let counters = |delta: &_| rollups::next_counters(Default::default(), delta, &mut 0);
    let ticket_day = |delta: &_| rollups::next_ticket_day(Default::default(), delta, &mut 0);
    let rating_day = |delta: &_| rollups::next_rating_day(Default::default(), delta, &mut 0);
    let org_days = (i64::MIN, 0)..=(i64::MAX, u64::MAX);
    let org_day_covered = |&(_, org): &(i64, u64)| (first..=last).contains(&org);
    Ok(repair(
        txn,
        tables::ORG_COUNTERS,
        first..=last,
        |_: &_| true,
        &rollups::in_table_order(&d.counters, |org| org),
        counters,
    )? + repair(
        txn,
        tables::ORG_TICKET_DAYS,
        org_days.clone(),
        org_day_covered,
        &rollups::in_table_order(&d.days, rollups::day_key),
        ticket_day,
    )? + repair(
        txn,
        tables::ORG_RATING_DAYS,
        org_days,
        org_day_covered,
        &rollups::in_table_order(&d.ratings, rollups::day_key),
        rating_day,
    )?)
}

/// Blocks of the requester -> tickets index compared per write transaction: 8,192 ticket ids.
const INDEX_BLOCKS_PER_CHUNK: u64 = 2;

/// Makes the requester -> tickets rows of the blocks from `first` on (at most [`INDEX_BLOCKS_PER_CHUNK`]) the
/// ones their stored tickets make; returns the rows it changed and the next block holding a ticket or a row.
fn index_requesters_chunk(
    txn: &WriteTransaction,
    first: u64,
) -> Result<(u64, Option<u64>), StoreError> {
    use super::requester_tickets::{self as index, LAST_BLOCK};
    let last = first
        .saturating_add(INDEX_BLOCKS_PER_CHUNK - 1)
        .min(LAST_BLOCK);
    let tickets = txn.open_table(tables::TICKETS)?;
    let mut rows = txn.open_table(tables::REQUESTER_TICKETS)?;
    let mut expected = std::collections::BTreeSet::new();
    for entry in tickets.range(*index::ids_of(first).start()..=*index::ids_of(last).end())? {
        crate::background::step_aside();
        let (id, bytes) = entry?;
        let id = id.value();
        let requester =
            super::codec::decode::<FigureFields>("tickets", id, bytes.value())?.requester_id;
        if requester != 0 {
            expected.insert(index::key(id, requester));
        }
    }
    let changed = index::repair_blocks(&mut rows, first..=last, &expected)?;
    if last == LAST_BLOCK {
        return Ok((changed, None));
    }
    let after = last + 1;
    let next_ticket = match tickets.range(*index::ids_of(after).start()..)?.next() {
        Some(entry) => Some(index::block_of(entry?.0.value())),
        None => None,
    };
    let next_row = match rows.range((after, 0, 0)..)?.next() {
        Some(entry) => Some(entry?.0.value().0),
        None => None,
    };
    Ok((changed, next_ticket.into_iter().chain(next_row).min()))
}

/// Puts back, from rating `first` on and for at most [`RECORDS_PER_CHUNK`] ratings, the index rows
/// (ticket, rating) that are missing; returns the rows added and the rating to continue from.
fn index_ratings_chunk(
    txn: &WriteTransaction,
    first: u64,
) -> Result<(u64, Option<u64>), StoreError> {
    let ratings = txn.open_table(tables::RATINGS)?;
    let mut index = txn.open_table(tables::TICKET_RATINGS)?;
    let mut missing = Vec::new();
    let resume = for_chunk(&ratings, first, |id, bytes| {
        let key = (rollups::decode_rating(id, bytes)?.ticket_id, id);
        if index.get(key)?.is_none() {
            missing.push(key);
        }
        Ok(())
    })?;
    for key in &missing {
        index.insert(key, ())?;
    }
    Ok((missing.len() as u64, resume))
}

/// Removes, from index row `first` on and for at most [`RECORDS_PER_CHUNK`] rows, the (ticket, rating)
/// rows whose rating is gone or belongs to another ticket; returns the rows removed and where to go on.
fn unindex_ratings_chunk(
    txn: &WriteTransaction,
    first: (u64, u64),
) -> Result<(u64, Option<(u64, u64)>), StoreError> {
    let ratings = txn.open_table(tables::RATINGS)?;
    let mut index = txn.open_table(tables::TICKET_RATINGS)?;
    let mut stray = Vec::new();
    let mut resume = None;
    for (scanned, entry) in index.range(first..)?.enumerate() {
        crate::background::step_aside();
        let key = entry?.0.value();
        if scanned == RECORDS_PER_CHUNK {
            resume = Some(key);
            break;
        }
        let rating = match ratings.get(key.1)? {
            Some(bytes) => Some(rollups::decode_rating(key.1, bytes.value())?),
            None => None,
        };
        if rating.is_none_or(|rating| rating.ticket_id != key.0) {
            stray.push(key);
        }
    }
    for key in &stray {
        index.remove(key)?;
    }
    Ok((stray.len() as u64, resume))
}

impl Store {
    /// Forgets which tickets a previous validation saw and where its steps stood, before a new
    /// validation starts.
    pub fn reset_validation(&self) -> Result<(), StoreError> {
        let txn = self.db().begin_write()?;
        super::clear_table(&txn, tables::VALIDATION_SEEN)?;
        super::clear_table(&txn, tables::VALIDATION_PROGRESS)?;
        txn.open_table(tables::CURSORS)?
            .remove(tables::cursor_keys::VALIDATION_TICKETS)?;
        self.commit(txn)?;
        Ok(())
    }

    /// Marks as gone every live ticket changed since `since` (Unix seconds) that validation `run` did not
    /// see; returns how many the validation marked. Scans the tickets in chunks, each marked in its own
    /// transaction with the position reached, so a restart resumes and counts each ticket once.
    pub fn mark_unseen_tickets_gone(&self, run: u64, since: i64) -> Result<u64, StoreError> {
        let mut next = None;
        loop {
            let txn = self.db().begin_write()?;
            let (from, count) = {
                let table = txn.open_table(tables::VALIDATION_PROGRESS)?;
                let count = progress(&table, keys::MISSING_COUNT)?.unwrap_or(0);
                if progress(&table, keys::MISSING_DONE)?.is_some() {
                    return Ok(count);
                }
                let stored = progress(&table, keys::MISSING_NEXT)?.unwrap_or(0);
                (next.unwrap_or(stored), count)
            };
            let (marked, resume) = mark_chunk(&txn, run, since, from)?;
            next = resume;
            if marked == 0 && resume.is_some() {
                // Nothing to keep: the next chunk goes on from memory (a restart scans this one again).
                drop(txn);
                continue;
            }
            {
                let mut table = txn.open_table(tables::VALIDATION_PROGRESS)?;
                table.insert(keys::MISSING_COUNT, count + marked)?;
                match resume {
                    Some(ticket) => table.insert(keys::MISSING_NEXT, ticket)?,
                    None => table.insert(keys::MISSING_DONE, 1)?,
                };
            }
            self.commit(txn)?;
        }
    }

    /// Checks every rollup against the stored tickets and ratings and repairs it, resuming the check of
    /// the validation under way (see [`Store::check_rollups`]); returns how many rollup rows differed.
    pub fn rebuild_rollups(&self) -> Result<u64, StoreError> {
        let drift = self.check_rollups(ROLLUP_ROWS_PER_PASS, |_| ControlFlow::Continue(()))?;
        Ok(drift.unwrap_or_default())
    }

    /// Checks every rollup row against what the stored tickets and ratings make of it, one range of
    /// organizations (at most `rows_per_pass` rows) per pass and write transaction, repairing what
    /// differs; the ticket -> ratings index is put right first. Resumes where the validation under way
    /// left it ([`Store::reset_validation`] starts afresh). `between` is called before each pass writes;
    /// when it breaks, the check stops there (`None`) and a later call goes on. Returns the rollup rows
    /// that differed over the whole check.
    pub fn check_rollups(
        &self,
        rows_per_pass: usize,
        mut between: impl FnMut(RollupPass) -> ControlFlow<()>,
    ) -> Result<Option<u64>, StoreError> {
        let mut number = 0;
        // Requester -> tickets rows put right: each is a user's figure gone wrong, so they count as drift.
        let mut index_drift = 0;
        loop {
            let (first_org, drift) = {
                let read = self.db().begin_read()?;
                let table = read.open_table(tables::VALIDATION_PROGRESS)?;
                let drift = progress(&table, keys::ROLLUPS_DRIFT)?.unwrap_or(0);
                if progress(&table, keys::ROLLUPS_DONE)?.is_some() {
                    return Ok(Some(drift));
                }
                (
                    progress(&table, keys::ROLLUPS_NEXT_ORG)?.unwrap_or(0),
                    drift,
                )
            };
            // The check (or its restart after a reset of every rollup, which drops the index too) begins
            // by putting the ticket -> ratings index right.
            let indexed_at = if first_org == 0 {
                let before = generation(&self.db().begin_read()?.open_table(tables::META)?)?;
                self.check_rating_index()?;
                index_drift += self.check_requester_index()?;
                Some(before)
            } else {
                None
            };
            let read = self.db().begin_read()?;
            let seen = generation(&read.open_table(tables::META)?)?;
            if indexed_at.is_some_and(|before| before != seen) {
                continue;
            }
            let sums = sum_rows(&read, first_org, rows_per_pass)?;
            drop(read);
            number += 1;
            let pass = RollupPass {
                number,
                first_org,
                last_org: sums.last_org,
            };
            if between(pass).is_break() {
                return Ok(None);
            }
            let txn = self.db().begin_write()?;
            let current = {
                let table = txn.open_table(tables::VALIDATION_PROGRESS)?;
                let position = (
                    progress(&table, keys::ROLLUPS_NEXT_ORG)?.unwrap_or(0),
                    progress(&table, keys::ROLLUPS_DRIFT)?.unwrap_or(0),
                    progress(&table, keys::ROLLUPS_DONE)?,
                );
                position == (first_org, drift, None)
                    && generation(&txn.open_table(tables::META)?)? == seen
            };
            if !current {
                // The rollups moved (or the check was reset) since the sums were read: sum again.
                drop(txn);
                continue;
            }
            let differing = repair_range(&txn, &sums)? + std::mem::take(&mut index_drift);
            {
                let mut table = txn.open_table(tables::VALIDATION_PROGRESS)?;
                table.insert(keys::ROLLUPS_DRIFT, drift + differing)?;
                match sums.last_org.checked_add(1) {
                    Some(next) => table.insert(keys::ROLLUPS_NEXT_ORG, next)?,
                    None => table.insert(keys::ROLLUPS_DONE, 1)?,
                };
            }
            if differing > 0 {
                self.commit(txn)?;
            } else {
                self.commit_keeping_figures(txn)?;
            }
        }
    }

    /// Puts the ticket -> ratings index right (what the rollups of a ticket's ratings move by), in chunks.
    /// Idempotent, so it keeps no position: a restart goes over it again.
    fn check_rating_index(&self) -> Result<(), StoreError> {
        let mut next = Some(0);
        while let Some(first) = next {
            let txn = self.db().begin_write()?;
            let (fixed, resume) = index_ratings_chunk(&txn, first)?;
            self.commit_or_drop(txn, fixed)?;
            next = resume;
        }
        let mut next = Some((0, 0));
        while let Some(first) = next {
            let txn = self.db().begin_write()?;
            let (fixed, resume) = unindex_ratings_chunk(&txn, first)?;
            self.commit_or_drop(txn, fixed)?;
            next = resume;
        }
        Ok(())
    }

    /// Puts the requester -> tickets index right (what a user's figures are computed from), block by block,
    /// each chunk in its own transaction; returns the rows it changed. Idempotent, as the rating index's check.
    fn check_requester_index(&self) -> Result<u64, StoreError> {
        let mut changed = 0;
        let mut next = Some(0);
        while let Some(first) = next {
            let txn = self.db().begin_write()?;
            let (fixed, resume) = index_requesters_chunk(&txn, first)?;
            self.commit_or_drop(txn, fixed)?;
            changed += fixed;
            next = resume;
        }
        if changed > 0 {
            tracing::warn!(
                rows = changed,
                "validation: requester -> tickets rows put right"
            );
        }
        Ok(changed)
    }

    /// Commits `txn` when it `fixed` something (the index moves no figure by itself), else drops it.
    fn commit_or_drop(&self, txn: WriteTransaction, fixed: u64) -> Result<(), StoreError> {
        if fixed > 0 {
            self.commit_keeping_figures(txn)
        } else {
            drop(txn);
            Ok(())
        }
    }
}

#[cfg(test)]
mod tests {
    use std::sync::mpsc;
    use std::time::Duration;

    use super::*;
    use crate::store::page::PageWrite;
    use crate::store::zendesk_records::RatingRecord;

    const DAY: i64 = 86_400;
    /// Rows per pass of the check in these tests: some 5 per organization, so 30 organizations take 5 passes.
    const PASS_ROWS: usize = 30;
    const NOW: i64 = 1_800_000_000;

    /// Ticket `id`: organization `1 + id % 30`, requester `1 + id % 7`, created over the last 60 days.
    fn ticket(id: u64) -> TicketRecord {
        let age = i64::try_from(id % 60).expect("small") * DAY;
        TicketRecord {
            subject: format!("ticket {id}"),
            status: u32::try_from(1 + id % 5).expect("small"),
            priority: u32::try_from(id % 5).expect("small"),
            requester_id: 1 + id % 7,
            organization_id: 1 + id % 30,
            created_at: NOW - age,
            updated_at: NOW - age,
            generated_timestamp: NOW - age,
            ..Default::default()
        }
    }

    /// A store with 600 tickets over 30 organizations, a third of them rated.
    fn seeded() -> (tempfile::TempDir, Store) {
        let dir = tempfile::tempdir().expect("tempdir");
        let store = Store::open(dir.path()).expect("open");
        let tickets: Vec<(u64, TicketRecord)> = (1..=600).map(|id| (id, ticket(id))).collect();
        let ratings = (1..=200)
            .map(|id| {
                let score = if id % 2 == 0 { "good" } else { "bad" };
                let rating = RatingRecord {
                    ticket_id: id * 3,
                    score: score.into(),
                    updated_at: NOW - i64::try_from(id).expect("small") * DAY / 4,
                    ..Default::default()
                };
                (id, rating)
            })
            .collect();
        let page = PageWrite {
            tickets,
            ratings,
            ..Default::default()
        };
        store.apply_page(&page).expect("seed");
        (dir, store)
    }

    /// Every rollup row (and the ticket -> ratings index), as text.
    fn rollup_rows(store: &Store) -> Vec<String> {
        use crate::store::tests::rows_of;
        let mut rows = Vec::new();
        macro_rules! collect {
            ($($table:ident),+) => {
                $(rows.extend(rows_of(store, tables::$table, |k, v| {
                    format!("{} {k:?}={v:?}", stringify!($table))
                }));)+
            };
        }
        tables::with_rollup_tables!(collect);
        rows
    }

    /// A fresh check with `rows_per_pass`; returns its drift and how many passes wrote.
    fn check(store: &Store, rows_per_pass: usize) -> (u64, u64) {
        store.reset_validation().expect("reset");
        let mut passes = 0;
        let drift = store
            .check_rollups(rows_per_pass, |_| {
                passes += 1;
                ControlFlow::Continue(())
            })
            .expect("check")
            .expect("not stopped");
        (drift, passes)
    }

    #[test]
    fn a_ticket_read_without_its_subject_has_the_same_facts_and_owner() {
        let full = TicketRecord {
            subject: "printer on fire".into(),
            status: 3,
            priority: 4,
            requester_id: 11,
            assignee_id: 12,
            group_id: 13,
            organization_id: 14,
            created_at: NOW - DAY,
            updated_at: NOW,
            generated_timestamp: NOW + 1,
            reopens: 2,
            solved_at: NOW - 5,
            gone: true,
        };
        let lean = FigureFields::decode(full.encode_to_vec().as_slice()).expect("decode");
        assert_eq!(
            crate::store::facts::stored_ticket(1, &lean.record()).expect("facts"),
            crate::store::facts::stored_ticket(1, &full).expect("facts")
        );
        assert_eq!(rollups::org_of(&lean.record()), rollups::org_of(&full));
        assert_eq!(lean.record().requester_id, full.requester_id);
    }

    #[test]
    fn the_check_commits_pass_by_pass_and_an_admin_write_commits_between_two() {
        let (_dir, store) = seeded();
        let kept = rollup_rows(&store);
        store.reset_validation().expect("reset");
        let mut passes = Vec::new();
        let drift = store
            .check_rollups(PASS_ROWS, |pass| {
                passes.push(pass);
                if pass.number == 2 {
                    // Another thread pauses the schedule: it commits while the check stands between
                    // two passes (a check holding one write transaction throughout would block it).
                    let (done, wait) = mpsc::channel();
                    let writer = store.clone();
                    std::thread::spawn(move || {
                        let paused = writer.update_sync_state(|state| state.paused = true);
                        let _ = done.send(paused.map(|state| state.paused));
                    });
                    let paused = wait.recv_timeout(Duration::from_secs(60));
                    assert!(matches!(paused, Ok(Ok(true))), "{paused:?}");
                }
                ControlFlow::Continue(())
            })
            .expect("check");
        assert_eq!(drift, Some(0), "the deltas kept every row right");
        assert!(passes.len() > 3, "{passes:?}");
        assert_eq!(passes[0].first_org, 0);
        for pair in passes.windows(2) {
            assert_eq!(pair[1].first_org, pair[0].last_org + 1, "{passes:?}");
        }
        assert_eq!(passes.last().map(|p| p.last_org), Some(u64::MAX));
        assert!(store.sync_state().expect("state").paused);
        assert_eq!(rollup_rows(&store), kept);
        // Checked again, the validation under way reports what it found without another pass.
        let again = store
            .check_rollups(PASS_ROWS, |_| panic!("no pass once the check is done"))
            .expect("again");
        assert_eq!(again, Some(0));
    }

    #[test]
    fn drift_counts_each_differing_rollup_row_once_and_repairs_it() {
        let (_dir, store) = seeded();
        let kept = rollup_rows(&store);
        let txn = store.db().begin_write().expect("write");
        {
            let mut counters = txn.open_table(tables::ORG_COUNTERS).expect("table");
            let (open, total, urgent) = counters.get(5).expect("get").expect("row").value();
            counters
                .insert(5, (open + 1, total, urgent))
                .expect("changed");
            counters.insert(999, (1, 1, 0)).expect("stray organization");
            counters.insert(0, (1, 1, 1)).expect("organization none");
            let mut days = txn.open_table(tables::ORG_TICKET_DAYS).expect("table");
            let first = days.first().expect("first").expect("row").0.value();
            days.remove(first).expect("removed");
            // A user's figures come from the requester -> tickets rows: one lost, one for a ticket
            // the store does not have, blocks away.
            let mut requesters = txn.open_table(tables::REQUESTER_TICKETS).expect("table");
            let last = requesters.last().expect("last").expect("row").0.value();
            requesters.remove(last).expect("requester row gone");
            requesters
                .insert(super::super::requester_tickets::key(90_000, 3), ())
                .expect("stray requester row");
            let mut index = txn.open_table(tables::TICKET_RATINGS).expect("table");
            index.remove((3, 1)).expect("index row gone");
            index.insert((4, 1), ()).expect("stray index row");
        }
        store.commit(txn).expect("commit");
        assert_ne!(rollup_rows(&store), kept);
        let (drift, passes) = check(&store, PASS_ROWS);
        assert_eq!(
            drift, 6,
            "four rollup rows and two requester rows differed; the rating index is not drift"
        );
        assert!(passes > 3);
        assert_eq!(rollup_rows(&store), kept, "every row repaired");
        assert_eq!(check(&store, PASS_ROWS).0, 0, "nothing left to repair");
        // One pass over everything finds the same rows.
        let txn = store.db().begin_write().expect("write");
        txn.open_table(tables::ORG_COUNTERS)
            .expect("table")
            .insert(5, (0, 0, 0))
            .expect("zeroed");
        store.commit(txn).expect("commit");
        assert_eq!(check(&store, usize::MAX), (1, 1));
        assert_eq!(rollup_rows(&store), kept);
    }

    #[test]
    fn a_page_between_the_sums_and_the_write_sends_the_pass_back_to_sum_again() {
        let (_dir, store) = seeded();
        store.reset_validation().expect("reset");
        let mut ranges = Vec::new();
        let drift = store
            .check_rollups(PASS_ROWS, |pass| {
                ranges.push((pass.first_org, pass.last_org));
                if pass.number == 3 {
                    // A ticket moves to an organization of this pass and another is solved.
                    let moved = TicketRecord {
                        organization_id: pass.first_org,
                        generated_timestamp: NOW + 1,
                        ..ticket(1)
                    };
                    let solved = TicketRecord {
                        status: 4,
                        generated_timestamp: NOW + 1,
                        ..ticket(pass.first_org + 29)
                    };
                    let page = PageWrite {
                        tickets: vec![(1, moved), (pass.first_org + 29, solved)],
                        ..Default::default()
                    };
                    store.apply_page(&page).expect("page");
                }
                ControlFlow::Continue(())
            })
            .expect("check");
        assert_eq!(drift, Some(0));
        assert_eq!(ranges[2], ranges[3], "the third range was summed again");
        let kept = rollup_rows(&store);
        assert_eq!(check(&store, usize::MAX).0, 0, "the rollups are right");
        assert_eq!(rollup_rows(&store), kept);
    }

    #[test]
    fn a_reset_of_the_rollups_between_passes_starts_the_check_over_and_a_rematch_moves_nothing() {
        let (_dir, store) = seeded();
        let kept = rollup_rows(&store);
        let rows = kept
            .iter()
            .filter(|row| !row.starts_with("TICKET_RATINGS"))
            .count();
        store.reset_validation().expect("reset");
        let mut firsts = Vec::new();
        let drift = store
            .check_rollups(PASS_ROWS, |pass| {
                firsts.push(pass.first_org);
                match pass.number {
                    // The first Configure drops every rollup (a fresh integration starts from zero).
                    3 => store
                        .put_integration(&crate::store::tests::crm_integration())
                        .expect("configure"),
                    // A new match key re-matches every organization.
                    7 => store
                        .put_integration(&crate::store::sync_state::IntegrationRecord {
                            match_zendesk_field: "external_id".into(),
                            ..crate::store::tests::crm_integration()
                        })
                        .expect("re-match"),
                    _ => {}
                }
                ControlFlow::Continue(())
            })
            .expect("check");
        assert_eq!(firsts[3], 0, "the check started over: {firsts:?}");
        assert_eq!(
            drift,
            Some(u64::try_from(rows).expect("rows")),
            "every row differed from the dropped rollups"
        );
        assert_eq!(rollup_rows(&store), kept);
    }

    #[test]
    fn a_check_stopped_between_passes_resumes_in_a_reopened_store_to_the_same_end() {
        let (dir, store) = seeded();
        // Tickets changed behind the rollups' back: the check has rows to repair.
        for id in [5, 77, 301] {
            let moved = TicketRecord {
                organization_id: 12,
                ..ticket(id)
            };
            store.put_ticket_raw(id, &moved).expect("tamper");
        }
        let reference_dir = tempfile::tempdir().expect("tempdir");
        drop(store);
        std::fs::copy(
            dir.path().join(crate::store::DATABASE_FILE),
            reference_dir.path().join(crate::store::DATABASE_FILE),
        )
        .expect("copy");
        let reference = Store::open(reference_dir.path()).expect("open");
        let (expected_drift, _) = check(&reference, PASS_ROWS);
        assert!(expected_drift > 0);

        let mut store = Store::open(dir.path()).expect("open");
        store.reset_validation().expect("reset");
        let mut stops = 0;
        let drift = loop {
            // Stops before the second pass of every life writes, then "restarts" on the file.
            let stopped = store
                .check_rollups(PASS_ROWS, |pass| {
                    if pass.number == 2 {
                        ControlFlow::Break(())
                    } else {
                        ControlFlow::Continue(())
                    }
                })
                .expect("check");
            if let Some(drift) = stopped {
                break drift;
            }
            stops += 1;
            drop(store);
            store = Store::open(dir.path()).expect("reopen");
        };
        assert!(stops > 3, "{stops} {drift} {expected_drift}");
        assert_eq!(drift, expected_drift);
        assert_eq!(
            store.content_digest().expect("digest"),
            reference.content_digest().expect("digest")
        );
        assert_eq!(rollup_rows(&store), rollup_rows(&reference));
    }

    #[test]
    fn unseen_tickets_are_marked_gone_chunk_by_chunk_and_counted_once_across_a_restart() {
        let dir = tempfile::tempdir().expect("tempdir");
        let store = Store::open(dir.path()).expect("open");
        let count = u64::try_from(RECORDS_PER_CHUNK).expect("size") * 2 + 500;
        let tickets = (1..=count).map(|id| (id, ticket(id))).collect();
        store
            .apply_page(&PageWrite {
                tickets,
                ..Default::default()
            })
            .expect("seed");
        store.reset_validation().expect("reset");
        // The validation saw every ticket but every 1000th.
        let seen = (1..=count)
            .filter(|id| id % 1000 != 0)
            .map(|id| (id, ticket(id)))
            .collect();
        store
            .apply_page(&PageWrite {
                tickets: seen,
                validation_run: Some(3),
                ..Default::default()
            })
            .expect("validation page");
        // A life that marked the first chunk only, as a restart finds it.
        let txn = store.db().begin_write().expect("write");
        let (marked, resume) = mark_chunk(&txn, 3, 0, 0).expect("chunk");
        {
            let mut table = txn.open_table(tables::VALIDATION_PROGRESS).expect("table");
            table.insert(keys::MISSING_COUNT, marked).expect("count");
            table
                .insert(keys::MISSING_NEXT, resume.expect("more"))
                .expect("next");
        }
        store.commit(txn).expect("commit");
        assert_eq!(marked, 10);
        assert_eq!(store.mark_unseen_tickets_gone(3, 0).expect("mark"), 20);
        assert_eq!(store.mark_unseen_tickets_gone(3, 0).expect("again"), 20);
        assert!(store.ticket(20_000).expect("read").expect("ticket").gone);
        assert!(!store.ticket(20_001).expect("read").expect("ticket").gone);
    }
}
