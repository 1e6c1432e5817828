//! Per-organization rollups: counters for the current figures and UTC-day buckets for the windowed ones,
//! moved by exact deltas in the page transaction. Accounts read them through their matched organizations, so
//! a re-match moves nothing here. A user's figures are summed on read from the user's tickets (found through
//! `requester_tickets`), plus those frozen when an integration was deleted.
use std::borrow::Borrow;
use std::collections::{BTreeMap, HashMap, HashSet};

use chrono::{DateTime, Utc};
use redb::{ReadableDatabase, ReadableTable, TableDefinition, WriteTransaction};

use crate::domain::metrics::{
    Checked, Contributes, Contribution, CounterDelta, Counters, Day, DayDeltas, DayTally,
    RatingContribution, RatingDayCounts, RatingDayDelta, TicketDayCounts, TicketDayDelta,
    Timeframe,
};

use super::facts::{stored_rating, stored_ticket};
pub use super::figures::{AccountFigures, Figures};
use super::page::Written;
use super::tables;
use super::zendesk_records::{RatingRecord, TicketRecord};
use super::{Store, StoreError};

/// Deltas of one page (or of a rebuild), summed per owner-first key before they touch the tables; each
/// table is written in its own key order ([`in_table_order`]), so the writes walk each B-tree once from
/// left to right. The owner `K` is an organization (the rollups) or an (organization, requester) pair (the
/// figures of matched users frozen when the integration is deleted, see [`freeze_user_figures`]).
#[derive(Debug)]
pub(super) struct OwnerDeltas<K> {
    /// Current figures per owner.
    pub(super) counters: BTreeMap<K, CounterDelta>,
    /// Tickets created per (owner, UTC day number).
    pub(super) days: BTreeMap<(K, i64), TicketDayDelta>,
    /// Ratings per (owner, UTC day number).
    pub(super) ratings: BTreeMap<(K, i64), RatingDayDelta>,
}

impl<K> Default for OwnerDeltas<K> {
    fn default() -> Self {
        Self {
            counters: BTreeMap::new(),
            days: BTreeMap::new(),
            ratings: BTreeMap::new(),
        }
    }
}

/// The rollups' deltas: per organization.
pub(super) type Deltas = OwnerDeltas<u64>;

fn add_counter(into: &mut CounterDelta, delta: &CounterDelta) {
    into.open += delta.open;
    into.total += delta.total;
    into.open_high_urgent += delta.open_high_urgent;
}

impl<K: FigureOwner> OwnerDeltas<K> {
    /// Adds a ticket's counters and day deltas to `owner`'s (an owner without an organization keeps none).
    pub(super) fn ticket(
        &mut self,
        owner: K,
        counters: &CounterDelta,
        days: &DayDeltas<TicketDayDelta>,
    ) {
        if !owner.kept() {
            return;
        }
        add_counter(self.counters.entry(owner).or_default(), counters);
        for (day, delta) in days.iter() {
            let entry = self.days.entry((owner, day.number())).or_default();
            entry.created += delta.created;
            entry.high_urgent_created += delta.high_urgent_created;
        }
    }

    /// Adds a rating's day deltas to `owner`'s.
    pub(super) fn rating(&mut self, owner: K, days: &DayDeltas<RatingDayDelta>) {
        if !owner.kept() {
            return;
        }
        for (day, delta) in days.iter() {
            add_rating(
                self.ratings.entry((owner, day.number())).or_default(),
                &delta,
            );
        }
    }

    /// How many rows the deltas hold.
    pub(super) fn rows(&self) -> usize {
        self.counters.len() + self.days.len() + self.ratings.len()
    }
}

fn add_rating(into: &mut RatingDayDelta, delta: &RatingDayDelta) {
    into.good += delta.good;
    into.bad += delta.bad;
    into.high_urgent_good += delta.high_urgent_good;
    into.high_urgent_bad += delta.high_urgent_bad;
}

/// Adds what stored ticket `id` and its ratings (read through the ticket -> ratings index) make of the
/// figures of `owner`, as if all were new: the rollup check's sums and a user's figures come from this.
pub(super) fn add_ticket_and_ratings<K: FigureOwner>(
    deltas: &mut OwnerDeltas<K>,
    owner: K,
    (id, ticket): (u64, &TicketRecord),
    index: &impl ReadableTable<(u64, u64), ()>,
    ratings: &impl ReadableTable<u64, &'static [u8]>,
) -> Result<(), StoreError> {
    let facts = stored_ticket(id, ticket)?;
    let added = Contribution::of(&facts).added();
    deltas.ticket(owner, &added.counters, &added.days);
    for row in index.range((id, 0)..=(id, u64::MAX))? {
        let rating_id = row?.0.value().1;
        let Some(bytes) = ratings.get(rating_id)? else {
            continue;
        };
        let rating = stored_rating(rating_id, &decode_rating(rating_id, bytes.value())?)?;
        let added = RatingContribution::of(&rating, Some(&facts)).added();
        deltas.rating(owner, &added.days);
    }
    Ok(())
}

/// The organization whose rollups a ticket's figures go to (0: none, kept nowhere).
pub(super) fn org_of(ticket: &TicketRecord) -> u64 {
    ticket.organization_id
}

pub(super) fn decode_rating(id: u64, bytes: &[u8]) -> Result<RatingRecord, StoreError> {
    super::codec::decode("ratings", id, bytes)
}

/// Moves the rollups by what the page's written tickets and ratings changed; returns the rows that
/// drifted (see [`settle`]). `new_days` says the page's day rows are mostly new (a first sync's).
pub(crate) fn apply(
    txn: &WriteTransaction,
    tickets: &[Written<TicketRecord>],
    ratings: &[Written<RatingRecord>],
    new_days: bool,
) -> Result<RollupsMoved, StoreError> {
    if tickets.is_empty() && ratings.is_empty() {
        return Ok(RollupsMoved::default());
    }
    super::rollup_generation::rollups_moved(txn)?;
    let mut deltas = Deltas::default();
    // Ratings written by this page still count as they were before it while their tickets move.
    let before_page: HashMap<u64, Option<&RatingRecord>> = ratings
        .iter()
        .map(|(id, old, _)| (*id, old.as_ref()))
        .collect();
    {
        let rated = ratings_of_tickets(
            &txn.open_table(tables::TICKET_RATINGS)?,
            tickets.iter().map(|(id, _, _)| *id),
        )?;
        let stored_ratings = txn.open_table(tables::RATINGS)?;
        for (id, old, new) in tickets {
            crate::background::step_aside();
            let old_facts = old.as_ref().map(|t| stored_ticket(*id, t)).transpose()?;
            let new_facts = stored_ticket(*id, new)?;
            let old_contribution = old_facts.as_ref().map(Contribution::of).unwrap_or_default();
            let new_contribution = Contribution::of(&new_facts);
            let old_owner = old.as_ref().map(org_of).unwrap_or_default();
            let new_owner = org_of(new);
            if old_owner == new_owner {
                let delta = Contribution::between(&old_contribution, &new_contribution);
                deltas.ticket(new_owner, &delta.counters, &delta.days);
            } else {
                let removed = old_contribution.removed();
                deltas.ticket(old_owner, &removed.counters, &removed.days);
                let added = new_contribution.added();
                deltas.ticket(new_owner, &added.counters, &added.days);
            }
            for &rating_id in rated.get(id).map_or(&[][..], Vec::as_slice) {
                let rating = match before_page.get(&rating_id) {
                    Some(None) => continue,
                    Some(Some(old_rating)) => (*old_rating).clone(),
                    None => match stored_ratings.get(rating_id)? {
                        Some(bytes) => decode_rating(rating_id, bytes.value())?,
                        None => continue,
                    },
                };
                let rating = stored_rating(rating_id, &rating)?;
                let removed = RatingContribution::of(&rating, old_facts.as_ref()).removed();
                deltas.rating(old_owner, &removed.days);
                let added = RatingContribution::of(&rating, Some(&new_facts)).added();
                deltas.rating(new_owner, &added.days);
            }
        }
    }
    {
        let mut ticket_ratings = txn.open_table(tables::TICKET_RATINGS)?;
        let stored_tickets = txn.open_table(tables::TICKETS)?;
        for (id, old, new) in ratings {
            crate::background::step_aside();
            if let Some(old) = old.as_ref().filter(|old| old.ticket_id != new.ticket_id) {
                ticket_ratings.remove((old.ticket_id, *id))?;
            }
            ticket_ratings.insert((new.ticket_id, *id), ())?;
            let ticket = match stored_tickets.get(new.ticket_id)? {
                Some(bytes) => Some(super::codec::decode::<TicketRecord>(
                    "tickets",
                    new.ticket_id,
                    bytes.value(),
                )?),
                None => None,
            };
            let ticket_facts = ticket
                .as_ref()
                .map(|t| stored_ticket(new.ticket_id, t))
                .transpose()?;
            let owner = ticket.as_ref().map(org_of).unwrap_or_default();
            if let Some(old) = old {
                // The old copy counted against the ticket as it is now (the ticket loop kept it so).
                let old_ticket = if old.ticket_id == new.ticket_id {
                    ticket_facts.clone()
                } else {
                    None
                };
                // Zendesk never moves a rating to another ticket; if it did, the nightly rebuild would settle it.
                let old_owner = if old.ticket_id == new.ticket_id {
                    owner
                } else {
                    0
                };
                let removed =
                    RatingContribution::of(&stored_rating(*id, old)?, old_ticket.as_ref())
                        .removed();
                deltas.rating(old_owner, &removed.days);
            }
            let added =
                RatingContribution::of(&stored_rating(*id, new)?, ticket_facts.as_ref()).added();
            deltas.rating(owner, &added.days);
        }
    }
    let orgs = deltas
        .counters
        .keys()
        .copied()
        .chain(deltas.days.keys().map(|&(org, _)| org))
        .chain(deltas.ratings.keys().map(|&(org, _)| org))
        .collect();
    Ok(RollupsMoved {
        drifted: deltas.write(txn, ORG_FIGURES, new_days)?,
        orgs,
    })
}

/// Tickets spread over at most this many ids each are read from `TICKET_RATINGS` in one range.
const ONE_RANGE_IDS_PER_TICKET: u64 = 16;

/// The stored ratings of each of the tickets `ids` (those that have any): one range over the ids' span when
/// they lie close together, else a range per ticket.
///
/// A first sync's batch holds the tickets updated in a few days, created over the weeks before: at 1,000,000
/// tickets, 6,000 of them spread over about 80,000 ids. A B-tree walk from the root per ticket there was 5 %
/// of the commit thread's samples in the ticket phase (perf); the span's rows (a third of its tickets have a
/// rating) read in order cost a fraction of it. An hourly sync's tickets lie all over the table: a walk each.
fn ratings_of_tickets(
    table: &impl ReadableTable<(u64, u64), ()>,
    ids: impl Iterator<Item = u64> + Clone,
) -> Result<HashMap<u64, Vec<u64>>, StoreError> {
    let mut rated: HashMap<u64, Vec<u64>> = HashMap::new();
    let (Some(low), Some(high)) = (ids.clone().min(), ids.clone().max()) else {
        return Ok(rated);
    };
    let mut wanted: Vec<u64> = ids.collect();
    wanted.sort_unstable();
    wanted.dedup();
    let span = high - low + 1;
    if span <= (wanted.len() as u64).saturating_mul(ONE_RANGE_IDS_PER_TICKET) {
        for entry in table.range((low, 0u64)..=(high, u64::MAX))? {
            let (ticket, rating) = entry?.0.value();
            if wanted.binary_search(&ticket).is_ok() {
                rated.entry(ticket).or_default().push(rating);
            }
        }
    } else {
        for &ticket in &wanted {
            for entry in table.range((ticket, 0u64)..=(ticket, u64::MAX))? {
                rated.entry(ticket).or_default().push(entry?.0.value().1);
            }
        }
    }
    Ok(rated)
}

/// What [`apply`] moved.
#[derive(Debug, Default)]
pub(crate) struct RollupsMoved {
    /// Rows a delta did not fit (see [`settle`]).
    pub(crate) drifted: u64,
    /// The organizations whose rollups the page moved: the only ones whose accounts' figures may differ.
    pub(crate) orgs: std::collections::BTreeSet<u64>,
}

/// Adds each summed delta to its row (`$rows`: (table key, delta) in key order); a row that reaches all
/// zeroes is removed.
///
/// With `$new_first` (rows a page mostly creates: a first sync's day rows) each row is written first as if
/// it were new, and only a row that was there is read and written again: one B-tree walk for a new row
/// where a read and a write take two. Where rows mostly exist, reading first is one walk less.
macro_rules! merge_rows {
    ($txn:expr, $table:expr, $rows:expr, $zero:expr, $next:path, $drift:ident, $new_first:expr) => {{
        let mut table = $txn.open_table($table)?;
        for &(key, delta) in $rows {
            crate::background::step_aside();
            if moves_nothing(delta) {
                // A zero delta moves no row: nothing to read, nothing to dirty.
                continue;
            }
            if $new_first {
                let mut drift_if_new = 0;
                let if_new = $next($zero, delta, &mut drift_if_new);
                if if_new != $zero {
                    let Some(old) = table.insert(key, if_new)?.map(|v| v.value()) else {
                        $drift += drift_if_new;
                        continue;
                    };
                    let next = $next(old, delta, &mut $drift);
                    if next == $zero {
                        table.remove(key)?;
                    } else if next != if_new {
                        table.insert(key, next)?;
                    }
                    continue;
                }
            }
            // A row is changed where it lies: one walk down the tree, and the value written in place (rollup
            // values are fixed-width, so it always fits; a growing value would never split its leaf this way).
            let stored = match table.get_mut(key)? {
                Some(mut row) => {
                    let old = row.value();
                    let next = $next(old, delta, &mut $drift);
                    if next == $zero {
                        RowMerge::Remove
                    } else {
                        if next != old {
                            row.insert(next)?;
                        }
                        RowMerge::Done
                    }
                }
                None => RowMerge::Insert,
            };
            match stored {
                RowMerge::Done => {}
                RowMerge::Remove => drop(table.remove(key)?),
                RowMerge::Insert => {
                    let next = $next($zero, delta, &mut $drift);
                    if next != $zero {
                        table.insert(key, next)?;
                    }
                }
            }
        }
    }};
}

/// Whether `delta` is all zeroes: adding it changes no row and reports no drift.
fn moves_nothing<D: Default + PartialEq>(delta: &D) -> bool {
    *delta == D::default()
}

/// What [`merge_rows`] does with a row after it looked at the stored one.
enum RowMerge {
    /// Nothing more: the row was updated in place, or is unchanged.
    Done,
    /// The row reached all zeroes: it goes.
    Remove,
    /// There was no row: the delta makes a new one.
    Insert,
}

impl<K: FigureOwner> OwnerDeltas<K> {
    /// Writes the summed deltas to `tables`; returns how many rows drifted (a delta that did not fit).
    /// `new_days`: the day rows are mostly new (see [`merge_rows`]).
    fn write(
        &self,
        txn: &WriteTransaction,
        (counters, days, ratings): FigureTables<K>,
        new_days: bool,
    ) -> Result<u64, StoreError> {
        let mut drift = 0;
        merge_rows!(
            txn,
            counters,
            &in_table_order(&self.counters, |owner| owner),
            (0, 0, 0),
            next_counters,
            drift,
            false
        );
        merge_rows!(
            txn,
            days,
            &in_table_order(&self.days, day_key),
            (0, 0),
            next_ticket_day,
            drift,
            new_days
        );
        merge_rows!(
            txn,
            ratings,
            &in_table_order(&self.ratings, day_key),
            (0, 0, 0, 0),
            next_rating_day,
            drift,
            new_days
        );
        Ok(drift)
    }
}

/// A counters row: (open, total, open high/urgent).
pub(super) type CounterRow = (u64, u64, u64);
/// A ticket day row: (created, high/urgent created).
pub(super) type TicketDayRow = (u64, u64);

/// Keeps a checked result; drift (a counter that would go below zero) is logged and counted, and the
/// row is kept at the clamped value until the nightly rebuild repairs it.
fn settle<T>(checked: Checked<T>, table: &'static str, drift: &mut u64) -> T {
    if let Some(err) = checked.drift {
        *drift += 1;
        tracing::warn!(table, error = %err, "rollup drift: a delta did not fit the stored row");
    }
    checked.value
}

pub(super) fn next_counters(old: CounterRow, delta: &CounterDelta, drift: &mut u64) -> CounterRow {
    let counters = Counters {
        open: old.0,
        total: old.1,
        open_high_urgent: old.2,
    };
    let next = settle(counters.apply_checked(*delta), "counters", drift);
    (next.open, next.total, next.open_high_urgent)
}

pub(super) fn next_ticket_day(
    old: TicketDayRow,
    delta: &TicketDayDelta,
    drift: &mut u64,
) -> TicketDayRow {
    let counts = TicketDayCounts {
        created: old.0,
        high_urgent_created: old.1,
    };
    let next = settle(counts.apply_checked(*delta), "ticket_days", drift);
    (next.created, next.high_urgent_created)
}

pub(super) fn next_rating_day(
    old: tables::RatingDay,
    delta: &RatingDayDelta,
    drift: &mut u64,
) -> tables::RatingDay {
    let counts = RatingDayCounts {
        good: old.0,
        bad: old.1,
        high_urgent_good: old.2,
        high_urgent_bad: old.3,
    };
    let next = settle(counts.apply_checked(*delta), "rating_days", drift);
    (
        next.good,
        next.bad,
        next.high_urgent_good,
        next.high_urgent_bad,
    )
}

/// The rows of `deltas` under their table keys (`key` maps an owner-first key to it), in table key order.
pub(super) fn in_table_order<K: Copy, L: Ord + Copy, D>(
    deltas: &BTreeMap<K, D>,
    key: impl Fn(K) -> L,
) -> Vec<(L, &D)> {
    let mut rows: Vec<(L, &D)> = deltas.iter().map(|(k, d)| (key(*k), d)).collect();
    rows.sort_unstable_by_key(|(k, _)| *k);
    rows
}

/// The table key of an owner's day row: day first.
pub(super) fn day_key<K: FigureOwner>((owner, day): (K, i64)) -> K::Day {
    owner.on(day)
}

/// Frozen user rows summed in memory at most before they are written (rows add up, so a write of part of
/// the sums is as good as one of all of them).
const FREEZE_ROWS_PER_WRITE: usize = 100_000;

/// Freezes, from the stored tickets and ratings, the figures of every Zendesk user whose email an account
/// lists (the only users `GetUserMetrics` answers for), before a delete of the integration drops the tickets
/// they are computed from: one scan of the tickets, in bounded memory.
pub(crate) fn freeze_user_figures(txn: &WriteTransaction) -> Result<(), StoreError> {
    let matched: HashSet<u64> = {
        let emails = txn.open_table(tables::ACCOUNT_EMAILS)?;
        let users = txn.open_table(tables::USERS_BY_EMAIL)?;
        let mut listed: Vec<String> = Vec::new();
        for row in emails.iter()? {
            let email = row?.0.value().0.to_owned();
            if listed.last() != Some(&email) {
                listed.push(email);
            }
        }
        let mut ids = HashSet::new();
        for email in &listed {
            ids.extend(super::scan::ids_under(&users, email)?);
        }
        ids
    };
    if matched.is_empty() {
        return Ok(());
    }
    let tickets = txn.open_table(tables::TICKETS)?;
    let index = txn.open_table(tables::TICKET_RATINGS)?;
    let ratings = txn.open_table(tables::RATINGS)?;
    let mut deltas = OwnerDeltas::<(u64, u64)>::default();
    for entry in tickets.iter()? {
        crate::background::step_aside();
        let (id, bytes) = entry?;
        let id = id.value();
        let ticket = super::codec::decode::<TicketRecord>("tickets", id, bytes.value())?;
        if !matched.contains(&ticket.requester_id) {
            continue;
        }
        let owner = (ticket.organization_id, ticket.requester_id);
        add_ticket_and_ratings(&mut deltas, owner, (id, &ticket), &index, &ratings)?;
        if deltas.rows() >= FREEZE_ROWS_PER_WRITE {
            std::mem::take(&mut deltas).write(txn, FROZEN_USER_FIGURES, false)?;
        }
    }
    deltas.write(txn, FROZEN_USER_FIGURES, false)?;
    Ok(())
}

/// Drops every rollup (a fresh integration starts from zero); a nightly check under way starts over.
pub(crate) fn clear_all(txn: &WriteTransaction) -> Result<(), StoreError> {
    super::rollup_generation::rollups_reset(txn)?;
    super::clear_table(txn, tables::ORG_COUNTERS)?;
    super::clear_table(txn, tables::ORG_TICKET_DAYS)?;
    super::clear_table(txn, tables::ORG_RATING_DAYS)?;
    super::clear_table(txn, tables::FROZEN_USER_COUNTERS)?;
    super::clear_table(txn, tables::FROZEN_USER_TICKET_DAYS)?;
    super::clear_table(txn, tables::FROZEN_USER_RATING_DAYS)?;
    super::clear_table(txn, tables::TICKET_RATINGS)?;
    super::clear_table(txn, tables::REQUESTER_TICKETS)?;
    Ok(())
}

/// One account's organizations and figures as `txn` sees them; `None` when there is no such account.
fn account_figures_in(
    txn: &redb::ReadTransaction,
    account_id: &str,
    now: DateTime<Utc>,
) -> Result<Option<AccountFigures>, StoreError> {
    if txn.open_table(tables::ACCOUNTS)?.get(account_id)?.is_none() {
        return Ok(None);
    }
    let (days, satisfaction) = super::sync_state::read_metrics_settings(txn)?;
    let timeframe = Timeframe::stored_or_default(days);
    let orgs = super::scan::ids_under(&txn.open_table(tables::ACCOUNT_ORGS)?, account_id)?;
    let figures = sum_figures(txn, ORG_FIGURES, orgs.iter().copied(), timeframe, now)?;
    Ok(Some(AccountFigures {
        orgs,
        figures,
        timeframe,
        satisfaction,
    }))
}

/// The summed figures of organizations `orgs` over `timeframe` on `now`'s day.
pub(super) fn org_figures_in(
    txn: &redb::ReadTransaction,
    orgs: &[u64],
    timeframe: Timeframe,
    now: DateTime<Utc>,
) -> Result<Figures, StoreError> {
    sum_figures(txn, ORG_FIGURES, orgs.iter().copied(), timeframe, now)
}

/// The key of one owner of figures (an organization, or a requester in one) in its counters table.
pub(super) trait FigureOwner:
    redb::Key + Ord + Copy + 'static + for<'a> Borrow<Self::SelfType<'a>>
{
    /// The key of the owner's day rows: the day followed by the owner's key parts.
    type Day: redb::Key
        + Ord
        + Copy
        + 'static
        + for<'a> Borrow<<Self::Day as redb::Value>::SelfType<'a>>;
    /// The owner's row on `day`.
    fn on(self, day: i64) -> Self::Day;
    /// Whether the owner keeps figures: one without an organization (0) keeps none.
    fn kept(self) -> bool;
}

impl FigureOwner for u64 {
    type Day = (i64, u64);
    fn on(self, day: i64) -> (i64, u64) {
        (day, self)
    }
    fn kept(self) -> bool {
        self != 0
    }
}

impl FigureOwner for (u64, u64) {
    type Day = (i64, u64, u64);
    fn on(self, day: i64) -> (i64, u64, u64) {
        (day, self.0, self.1)
    }
    fn kept(self) -> bool {
        self.0 != 0 && self.1 != 0
    }
}

/// One kind of owner's counters, ticket days and rating days.
pub(super) type FigureTables<K> = (
    TableDefinition<'static, K, CounterRow>,
    TableDefinition<'static, <K as FigureOwner>::Day, TicketDayRow>,
    TableDefinition<'static, <K as FigureOwner>::Day, tables::RatingDay>,
);

const ORG_FIGURES: FigureTables<u64> = (
    tables::ORG_COUNTERS,
    tables::ORG_TICKET_DAYS,
    tables::ORG_RATING_DAYS,
);

/// The figures of matched users frozen when the integration was deleted (its tickets went with it).
const FROZEN_USER_FIGURES: FigureTables<(u64, u64)> = (
    tables::FROZEN_USER_COUNTERS,
    tables::FROZEN_USER_TICKET_DAYS,
    tables::FROZEN_USER_RATING_DAYS,
);

/// Sums the figures of `owners` over `timeframe` ending `now`: each one's counters row and its row on
/// each day of the window (a lookup per day: the day tables are keyed day first).
fn sum_figures<K: FigureOwner>(
    txn: &redb::ReadTransaction,
    (counters, days, ratings): FigureTables<K>,
    owners: impl IntoIterator<Item = K>,
    timeframe: Timeframe,
    now: DateTime<Utc>,
) -> Result<Figures, StoreError> {
    let counters = txn.open_table(counters)?;
    let days = txn.open_table(days)?;
    let ratings = txn.open_table(ratings)?;
    let window = timeframe.window(now);
    let (from, to) = (window.start().number(), window.end().number());
    let mut figures = Figures::default();
    for owner in owners {
        if let Some(value) = counters.get(owner)? {
            add_counts(&mut figures, value.value());
        }
        for day in from..=to {
            if let Some(row) = days.get(owner.on(day))? {
                add_ticket_day(&mut figures, row.value());
            }
            if let Some(row) = ratings.get(owner.on(day))? {
                add_rating_day(&mut figures, row.value());
            }
        }
    }
    Ok(figures)
}

impl<K: FigureOwner> OwnerDeltas<K> {
    /// The figures these deltas (all of them additions) make over `timeframe` ending `now`, every owner summed.
    fn figures(&self, timeframe: Timeframe, now: DateTime<Utc>) -> Figures {
        let window = timeframe.window(now);
        let days = window.start().number()..=window.end().number();
        let mut figures = Figures::default();
        for delta in self.counters.values() {
            add_counts(&mut figures, next_counters((0, 0, 0), delta, &mut 0));
        }
        for ((_, day), delta) in &self.days {
            if days.contains(day) {
                add_ticket_day(&mut figures, next_ticket_day((0, 0), delta, &mut 0));
            }
        }
        for ((_, day), delta) in &self.ratings {
            if days.contains(day) {
                add_rating_day(&mut figures, next_rating_day((0, 0, 0, 0), delta, &mut 0));
            }
        }
        figures
    }
}

/// Adds one day bucket of created tickets: (created, high/urgent created).
fn add_ticket_day(figures: &mut Figures, (created, high_urgent): (u64, u64)) {
    figures.created.created += created;
    figures.created.high_urgent_created += high_urgent;
}

/// Adds one day bucket of ratings: (good, bad, high/urgent good, high/urgent bad).
fn add_rating_day(figures: &mut Figures, (good, bad, hu_good, hu_bad): tables::RatingDay) {
    figures.ratings.good += good;
    figures.ratings.bad += bad;
    figures.ratings.high_urgent_good += hu_good;
    figures.ratings.high_urgent_bad += hu_bad;
}

fn add_counts(figures: &mut Figures, counters: (u64, u64, u64)) {
    figures.counters.open += counters.0;
    figures.counters.total += counters.1;
    figures.counters.open_high_urgent += counters.2;
}

impl Store {
    /// The figures of the organizations `orgs` over `timeframe` ending `now` (no ticket is scanned).
    pub fn org_figures(
        &self,
        orgs: &[u64],
        timeframe: Timeframe,
        now: DateTime<Utc>,
    ) -> Result<Figures, StoreError> {
        let owners = orgs.iter().copied();
        sum_figures(
            &self.db().begin_read()?,
            ORG_FIGURES,
            owners,
            timeframe,
            now,
        )
    }

    /// One account's organizations and figures under the configured window, all read in one transaction
    /// (the `GetAccountMetrics` path); `None` when there is no such account.
    pub fn account_figures(
        &self,
        account_id: &str,
        now: DateTime<Utc>,
    ) -> Result<Option<AccountFigures>, StoreError> {
        self.account_figures_cached(account_id, now)
            .map(|(figures, _)| figures)
    }

    /// [`Store::account_figures`], and whether the figures came from the cache (the reader counts hits).
    pub fn account_figures_cached(
        &self,
        account_id: &str,
        now: DateTime<Utc>,
    ) -> Result<(Option<AccountFigures>, bool), StoreError> {
        let day = Day::of(now).number();
        if let Some(figures) = self.cached_figures(account_id, day) {
            return Ok((figures, true));
        }
        let seen = self.figure_changes();
        let view = self.snapshot()?;
        let figures = account_figures_in(&view, account_id, now)?;
        self.cache_figures(seen, account_id, day, figures.clone());
        Ok((figures, false))
    }

    /// [`Store::account_figures`] if the figure cache holds them for `now`'s day, without touching the
    /// database (`Some(None)`: no such account); `None` when they must be computed.
    pub fn cached_account_figures(
        &self,
        account_id: &str,
        now: DateTime<Utc>,
    ) -> Option<Option<AccountFigures>> {
        self.cached_figures(account_id, Day::of(now).number())
    }

    /// The figures of the Zendesk users `requesters` inside organizations `orgs`: computed from their tickets
    /// (found through the requester -> tickets index), plus what was frozen when an integration was deleted.
    pub fn user_figures(
        &self,
        orgs: &[u64],
        requesters: &[u64],
        timeframe: Timeframe,
        now: DateTime<Utc>,
    ) -> Result<Figures, StoreError> {
        let txn = self.db().begin_read()?;
        let owners = orgs
            .iter()
            .flat_map(|&org| requesters.iter().map(move |&requester| (org, requester)));
        let mut figures = sum_figures(&txn, FROZEN_USER_FIGURES, owners, timeframe, now)?;
        let index = txn.open_table(tables::REQUESTER_TICKETS)?;
        let tickets = txn.open_table(tables::TICKETS)?;
        let ticket_ratings = txn.open_table(tables::TICKET_RATINGS)?;
        let ratings = txn.open_table(tables::RATINGS)?;
        let orgs: std::collections::HashSet<u64> = orgs.iter().copied().collect();
        let mut wanted: Vec<u64> = requesters.iter().copied().filter(|&r| r != 0).collect();
        wanted.sort_unstable();
        wanted.dedup();
        let mut deltas = Deltas::default();
        for requester in wanted {
            for id in super::requester_tickets::tickets_of(&index, requester)? {
                let Some(bytes) = tickets.get(id)? else {
                    continue;
                };
                let ticket = super::codec::decode::<TicketRecord>("tickets", id, bytes.value())?;
                // The index moves with the ticket in one transaction; the check keeps it honest anyway.
                if ticket.requester_id != requester || !orgs.contains(&ticket.organization_id) {
                    continue;
                }
                let org = ticket.organization_id;
                add_ticket_and_ratings(&mut deltas, org, (id, &ticket), &ticket_ratings, &ratings)?;
            }
        }
        figures.add(&deltas.figures(timeframe, now));
        Ok(figures)
    }

    /// Zendesk user ids with `email` (compared lower-cased).
    pub fn zendesk_users_with_email(&self, email: &str) -> Result<Vec<u64>, StoreError> {
        let txn = self.db().begin_read()?;
        let table = txn.open_table(tables::USERS_BY_EMAIL)?;
        super::scan::ids_under(&table, &email.to_lowercase())
    }

    /// Accounts that list a user with `email` (compared lower-cased).
    pub fn accounts_with_user(&self, email: &str) -> Result<Vec<String>, StoreError> {
        let txn = self.db().begin_read()?;
        let table = txn.open_table(tables::ACCOUNT_EMAILS)?;
        let email = email.to_lowercase();
        let mut ids = Vec::new();
        super::scan::for_each_second(&table, &email, |account| {
            ids.push(account.to_owned());
            Ok(())
        })?;
        Ok(ids)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::metrics::TicketDayDelta;
    use crate::store::zendesk_records::RatingRecord;

    fn day_delta(created: i64) -> TicketDayDelta {
        TicketDayDelta {
            created,
            high_urgent_created: 0,
        }
    }

    /// A batch's tickets close together (read in one range) and spread out (a range each) find the same
    /// ratings: their own, none of their neighbours', duplicates counted once.
    #[test]
    fn ratings_of_close_and_spread_tickets_are_each_tickets_own() {
        let dir = tempfile::tempdir().expect("tempdir");
        let store = Store::open(dir.path()).expect("open");
        let txn = store.db().begin_write().expect("write");
        let mut table = txn.open_table(tables::TICKET_RATINGS).expect("t");
        for (ticket, rating) in [(10, 1), (11, 2), (11, 3), (12, 4), (13, 5), (5_000, 6)] {
            table.insert((ticket, rating), ()).expect("row");
        }
        let expect = |pairs: &[(u64, &[u64])]| -> HashMap<u64, Vec<u64>> {
            pairs.iter().map(|(t, r)| (*t, r.to_vec())).collect()
        };
        // Span 4 for 3 tickets: one range, which also passes 12's rating.
        let close = ratings_of_tickets(&table, [11, 13, 10, 11].into_iter()).expect("close");
        assert_eq!(close, expect(&[(10, &[1]), (11, &[2, 3]), (13, &[5])]));
        // Span 4,991 for 3 tickets: a range each.
        let spread = ratings_of_tickets(&table, [5_000, 11, 12].into_iter()).expect("spread");
        assert_eq!(spread, expect(&[(11, &[2, 3]), (12, &[4]), (5_000, &[6])]));
        assert!(ratings_of_tickets(&table, std::iter::empty())
            .expect("none")
            .is_empty());
    }

    const NOW: i64 = 1_800_000_000;
    const DAY: i64 = 86_400;

    /// An open ticket (status 2) of `org` asked by `requester`, `age` days old, of priority `priority`.
    fn ticket(org: u64, requester: u64, age: i64, priority: u32) -> TicketRecord {
        TicketRecord {
            status: 2,
            priority,
            requester_id: requester,
            organization_id: org,
            created_at: NOW - age * DAY,
            updated_at: NOW - age * DAY,
            generated_timestamp: NOW - age * DAY,
            ..Default::default()
        }
    }

    /// A user's figures as (open, total, open high/urgent, created in 30 days, high/urgent created, good,
    /// bad, high/urgent bad).
    fn user(store: &Store, orgs: &[u64], requesters: &[u64]) -> [u64; 8] {
        let now = DateTime::from_timestamp(NOW, 0).expect("now");
        let timeframe = Timeframe::from_days(30).expect("30");
        let f = store
            .user_figures(orgs, requesters, timeframe, now)
            .expect("figures");
        [
            f.counters.open,
            f.counters.total,
            f.counters.open_high_urgent,
            f.created.created,
            f.created.high_urgent_created,
            f.ratings.good,
            f.ratings.bad,
            f.ratings.high_urgent_bad,
        ]
    }

    /// A user's figures come from that user's tickets in the account's organizations, wherever their ids lie,
    /// follow a ticket that changes requester, and stay the same once the integration is deleted (frozen),
    /// until a new integration starts from zero.
    #[test]
    fn a_users_figures_follow_their_tickets_and_are_frozen_by_a_delete() {
        let dir = tempfile::tempdir().expect("tempdir");
        let store = Store::open(dir.path()).expect("open");
        let rating = |ticket_id: u64, score: &str| RatingRecord {
            ticket_id,
            score: score.into(),
            created_at: NOW - DAY,
            updated_at: NOW - DAY,
            ..Default::default()
        };
        let first = crate::store::page::PageWrite {
            tickets: vec![
                (1, ticket(10, 7, 1, 4)), // urgent
                (
                    2,
                    TicketRecord {
                        status: 5,
                        ..ticket(10, 7, 40, 2)
                    },
                ), // solved, 40 days old
                (3, ticket(11, 7, 2, 2)), // another organization
                (4, ticket(10, 8, 2, 2)), // another requester
                (5, ticket(10, 8, 3, 3)), // moves to 7 below
                (6, ticket(10, 7, 3, 2)), // moves to 8 below
                (50_000, ticket(10, 7, 5, 2)), // blocks away
                (9_000_000_000, ticket(10, 0, 5, 2)), // no requester
            ],
            ratings: vec![(1, rating(1, "bad")), (2, rating(6, "good"))],
            ..Default::default()
        };
        store.apply_page(&first).expect("first");
        assert_eq!(user(&store, &[10], &[7]), [3, 4, 1, 3, 1, 1, 1, 1]);
        let moves = crate::store::page::PageWrite {
            tickets: vec![
                (
                    5,
                    TicketRecord {
                        requester_id: 7,
                        generated_timestamp: NOW,
                        ..ticket(10, 8, 3, 3)
                    },
                ),
                (
                    6,
                    TicketRecord {
                        requester_id: 8,
                        generated_timestamp: NOW,
                        ..ticket(10, 7, 3, 2)
                    },
                ),
            ],
            ..Default::default()
        };
        store.apply_page(&moves).expect("moves");
        let expected = [3, 4, 2, 3, 2, 0, 1, 1];
        assert_eq!(user(&store, &[10], &[7]), expected);
        assert_eq!(user(&store, &[10, 11], &[7]), [4, 5, 2, 4, 2, 0, 1, 1]);
        assert_eq!(user(&store, &[10], &[8]), [2, 2, 0, 2, 0, 1, 0, 0]);
        assert_eq!(user(&store, &[10], &[7, 8]), [5, 6, 2, 5, 2, 1, 1, 1]);
        assert_eq!(user(&store, &[12], &[7]), [0; 8]);

        // Only users an account lists are frozen: requester 7 is one, 8 is not.
        let txn = store.db().begin_write().expect("write");
        txn.open_table(tables::ACCOUNT_EMAILS)
            .expect("t")
            .insert(("ann@example.com", "acct"), ())
            .expect("row");
        let mut by_email = txn.open_table(tables::USERS_BY_EMAIL).expect("t");
        by_email.insert(("ann@example.com", 7), ()).expect("row");
        by_email.insert(("bob@example.com", 8), ()).expect("row");
        drop(by_email);
        store.commit(txn).expect("commit");
        store.delete_integration_data().expect("delete");
        assert_eq!(store.stored_counts().expect("counts").tickets, 0);
        assert_eq!(user(&store, &[10], &[7]), expected, "frozen");
        assert_eq!(user(&store, &[10], &[8]), [0; 8]);
        let fresh = crate::store::sync_state::IntegrationRecord::default();
        store.put_integration(&fresh).expect("configure");
        assert_eq!(
            user(&store, &[10], &[7]),
            [0; 8],
            "a new integration starts from zero"
        );
    }

    /// Whether the day rows are written as if new first or read first, a new row, a row that was there, a row
    /// that reaches zero and a delta that does not fit end the same.
    #[test]
    fn day_rows_are_created_summed_removed_and_drift_is_counted() {
        for new_days in [true, false] {
            day_rows_merge(new_days);
        }
    }

    fn day_rows_merge(new_days: bool) {
        let dir = tempfile::tempdir().expect("tempdir");
        let store = Store::open(dir.path()).expect("open");
        let txn = store.db().begin_write().expect("write");
        {
            let mut days = txn.open_table(tables::ORG_TICKET_DAYS).expect("days");
            days.insert((10, 1), (2, 0)).expect("row");
            days.insert((10, 2), (3, 0)).expect("row");
            days.insert((10, 6), (2, 0)).expect("row");
            days.insert((10, 7), (1, 0)).expect("row");
        }
        let mut deltas = Deltas::default();
        deltas.days.insert((1, 10), day_delta(4)); // there: 2 + 4
        deltas.days.insert((2, 10), day_delta(-3)); // there: 3 - 3, removed
        deltas.days.insert((3, 10), day_delta(5)); // new
        deltas.days.insert((4, 10), day_delta(-1)); // not there: drift, no row
        deltas.days.insert((5, 10), day_delta(0)); // nothing
        deltas.days.insert((6, 10), day_delta(-5)); // there: 2 - 5, drift, clamped to zero, removed
        deltas.days.insert((7, 10), day_delta(0)); // there, untouched
        let drift = deltas.write(&txn, ORG_FIGURES, new_days).expect("write");
        assert_eq!(drift, 2, "only the deltas below zero drifted");
        let days = txn.open_table(tables::ORG_TICKET_DAYS).expect("days");
        let rows: Vec<((i64, u64), (u64, u64))> = days
            .iter()
            .expect("iter")
            .map(|row| {
                let (key, value) = row.expect("row");
                (key.value(), value.value())
            })
            .collect();
        assert_eq!(
            rows,
            [((10, 1), (6, 0)), ((10, 3), (5, 0)), ((10, 7), (1, 0))],
            "new_days {new_days}"
        );
    }
}
