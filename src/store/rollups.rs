//! Per-organization (and per requester) rollups: counters for the current figures and UTC-day buckets for
//! the windowed ones, moved by exact deltas in the page transaction. Accounts read them through their
//! matched organizations, so a re-match moves nothing here.
use std::borrow::Borrow;
use std::collections::{BTreeMap, HashMap};

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

/// Where a ticket's figures go: (organization, requester); organization 0 (none) is not kept.
pub(super) type Owner = (u64, u64);

/// Deltas of one page (or of a rebuild), summed per owner-first key before they touch the tables; each
/// table is written in its own key order ([`in_table_order`]), so the writes walk each B-tree once from
/// left to right.
#[derive(Debug, Default)]
pub(super) struct Deltas {
    pub(super) org_counters: BTreeMap<u64, CounterDelta>,
    pub(super) org_days: BTreeMap<(u64, i64), TicketDayDelta>,
    pub(super) org_ratings: BTreeMap<(u64, i64), RatingDayDelta>,
    pub(super) user_counters: BTreeMap<(u64, u64), CounterDelta>,
    pub(super) user_days: BTreeMap<(u64, u64, i64), TicketDayDelta>,
    pub(super) user_ratings: BTreeMap<(u64, u64, i64), RatingDayDelta>,
}

fn add_counter(into: &mut CounterDelta, delta: &CounterDelta) {
    into.open += delta.open;
    into.total += delta.total;
    into.open_high_urgent += delta.open_high_urgent;
}

impl Deltas {
    pub(super) fn ticket(
        &mut self,
        owner: Owner,
        counters: &CounterDelta,
        days: &DayDeltas<TicketDayDelta>,
    ) {
        let (org, requester) = owner;
        if org == 0 {
            return;
        }
        add_counter(self.org_counters.entry(org).or_default(), counters);
        for (day, delta) in days.iter() {
            let entry = self.org_days.entry((org, day.number())).or_default();
            entry.created += delta.created;
            entry.high_urgent_created += delta.high_urgent_created;
        }
        if requester == 0 {
            return;
        }
        add_counter(self.user_counters.entry(owner).or_default(), counters);
        for (day, delta) in days.iter() {
            let entry = self
                .user_days
                .entry((org, requester, day.number()))
                .or_default();
            entry.created += delta.created;
            entry.high_urgent_created += delta.high_urgent_created;
        }
    }

    pub(super) fn rating(&mut self, owner: Owner, days: &DayDeltas<RatingDayDelta>) {
        let (org, requester) = owner;
        if org == 0 {
            return;
        }
        for (day, delta) in days.iter() {
            add_rating(
                self.org_ratings.entry((org, day.number())).or_default(),
                &delta,
            );
            if requester != 0 {
                add_rating(
                    self.user_ratings
                        .entry((org, requester, day.number()))
                        .or_default(),
                    &delta,
                );
            }
        }
    }
}

fn add_rating(into: &mut RatingDayDelta, delta: &RatingDayDelta) {
    into.good += delta.good;
    into.bad += delta.bad;
    into.high_urgent_good += delta.high_urgent_good;
    into.high_urgent_bad += delta.high_urgent_bad;
}

pub(super) fn owner_of(ticket: &TicketRecord) -> Owner {
    (ticket.organization_id, ticket.requester_id)
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
            let old_owner = old.as_ref().map(owner_of).unwrap_or_default();
            let new_owner = owner_of(new);
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
            let owner = ticket.as_ref().map(owner_of).unwrap_or_default();
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
                    (0, 0)
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
        .org_counters
        .keys()
        .copied()
        .chain(deltas.org_days.keys().map(|&(org, _)| org))
        .chain(deltas.org_ratings.keys().map(|&(org, _)| org))
        .collect();
    Ok(RollupsMoved {
        drifted: write(txn, &deltas, new_days)?,
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

/// The table key of an organization's day row: day first.
pub(super) fn org_day_key((org, day): (u64, i64)) -> (i64, u64) {
    (day, org)
}

/// The table key of a requester's day row: day first.
pub(super) fn user_day_key((org, requester, day): (u64, u64, i64)) -> (i64, u64, u64) {
    (day, org, requester)
}

/// Writes the summed deltas; returns how many rows drifted (a delta that did not fit).
/// `new_days`: the day rows are mostly new (see [`merge_rows`]).
fn write(txn: &WriteTransaction, deltas: &Deltas, new_days: bool) -> Result<u64, StoreError> {
    let mut drift = 0;
    merge_rows!(
        txn,
        tables::ORG_COUNTERS,
        &in_table_order(&deltas.org_counters, |org| org),
        (0, 0, 0),
        next_counters,
        drift,
        false
    );
    merge_rows!(
        txn,
        tables::USER_COUNTERS,
        &in_table_order(&deltas.user_counters, |owner| owner),
        (0, 0, 0),
        next_counters,
        drift,
        false
    );
    merge_rows!(
        txn,
        tables::ORG_TICKET_DAYS,
        &in_table_order(&deltas.org_days, org_day_key),
        (0, 0),
        next_ticket_day,
        drift,
        new_days
    );
    merge_rows!(
        txn,
        tables::USER_TICKET_DAYS,
        &in_table_order(&deltas.user_days, user_day_key),
        (0, 0),
        next_ticket_day,
        drift,
        new_days
    );
    merge_rows!(
        txn,
        tables::ORG_RATING_DAYS,
        &in_table_order(&deltas.org_ratings, org_day_key),
        (0, 0, 0, 0),
        next_rating_day,
        drift,
        new_days
    );
    merge_rows!(
        txn,
        tables::USER_RATING_DAYS,
        &in_table_order(&deltas.user_ratings, user_day_key),
        (0, 0, 0, 0),
        next_rating_day,
        drift,
        new_days
    );
    Ok(drift)
}

/// Drops every rollup (a fresh integration starts from zero); a nightly check under way starts over.
pub(crate) fn clear_all(txn: &WriteTransaction) -> Result<(), StoreError> {
    super::rollup_generation::rollups_reset(txn)?;
    super::clear_table(txn, tables::ORG_COUNTERS)?;
    super::clear_table(txn, tables::ORG_TICKET_DAYS)?;
    super::clear_table(txn, tables::ORG_RATING_DAYS)?;
    super::clear_table(txn, tables::USER_COUNTERS)?;
    super::clear_table(txn, tables::USER_TICKET_DAYS)?;
    super::clear_table(txn, tables::USER_RATING_DAYS)?;
    super::clear_table(txn, tables::TICKET_RATINGS)?;
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
trait FigureOwner: redb::Key + Copy + 'static + for<'a> Borrow<Self::SelfType<'a>> {
    /// The key of the owner's day rows: the day followed by the owner's key parts.
    type Day: redb::Key + 'static + for<'a> Borrow<<Self::Day as redb::Value>::SelfType<'a>>;
    /// The owner's row on `day`.
    fn on(self, day: i64) -> Self::Day;
}

impl FigureOwner for u64 {
    type Day = (i64, u64);
    fn on(self, day: i64) -> (i64, u64) {
        (day, self)
    }
}

impl FigureOwner for (u64, u64) {
    type Day = (i64, u64, u64);
    fn on(self, day: i64) -> (i64, u64, u64) {
        (day, self.0, self.1)
    }
}

/// One kind of owner's counters, ticket days and rating days.
type FigureTables<K> = (
    TableDefinition<'static, K, CounterRow>,
    TableDefinition<'static, <K as FigureOwner>::Day, TicketDayRow>,
    TableDefinition<'static, <K as FigureOwner>::Day, tables::RatingDay>,
);

const ORG_FIGURES: FigureTables<u64> = (
    tables::ORG_COUNTERS,
    tables::ORG_TICKET_DAYS,
    tables::ORG_RATING_DAYS,
);

const USER_FIGURES: FigureTables<(u64, u64)> = (
    tables::USER_COUNTERS,
    tables::USER_TICKET_DAYS,
    tables::USER_RATING_DAYS,
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

    /// The figures of the Zendesk users `requesters` inside organizations `orgs`.
    pub fn user_figures(
        &self,
        orgs: &[u64],
        requesters: &[u64],
        timeframe: Timeframe,
        now: DateTime<Utc>,
    ) -> Result<Figures, StoreError> {
        let owners = orgs
            .iter()
            .flat_map(|&org| requesters.iter().map(move |&requester| (org, requester)));
        sum_figures(
            &self.db().begin_read()?,
            USER_FIGURES,
            owners,
            timeframe,
            now,
        )
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
        deltas.org_days.insert((1, 10), day_delta(4)); // there: 2 + 4
        deltas.org_days.insert((2, 10), day_delta(-3)); // there: 3 - 3, removed
        deltas.org_days.insert((3, 10), day_delta(5)); // new
        deltas.org_days.insert((4, 10), day_delta(-1)); // not there: drift, no row
        deltas.org_days.insert((5, 10), day_delta(0)); // nothing
        deltas.org_days.insert((6, 10), day_delta(-5)); // there: 2 - 5, drift, clamped to zero, removed
        deltas.org_days.insert((7, 10), day_delta(0)); // there, untouched
        let drift = write(&txn, &deltas, new_days).expect("write");
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
