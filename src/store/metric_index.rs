//! The account metrics index `ListAccountMetrics` pages through: every account's figures, computed in one
//! read transaction once per commit that may change them (and per UTC day, as the windows move), with one
//! sorted order per sort built the first time a page asks for it. A page is then a binary search and a slice.
//!
//! Pages continue from a keyset (the sort value and account id of the last row shown), not an offset: paging
//! on after a commit neither repeats nor skips an account whose figures did not change.
use std::cmp::Ordering;
use std::sync::atomic::{AtomicU64, Ordering as AtomicOrdering};
use std::sync::{Arc, Mutex, OnceLock};

use chrono::{DateTime, Utc};
use redb::{ReadableTable, ReadableTableMetadata};

use crate::domain::metrics::{Day, Timeframe};

use super::figures::{FigureChange, Figures};
use super::{locked, tables, Store, StoreError};

/// A metric `ListAccountMetrics` sorts by.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SortMetric {
    /// `open_tickets`.
    OpenTickets,
    /// `total_tickets`.
    TotalTickets,
    /// `tickets_created`.
    TicketsCreated,
    /// `open_high_urgent_tickets`.
    OpenHighUrgentTickets,
    /// `high_urgent_tickets_created`.
    HighUrgentTicketsCreated,
    /// `satisfaction_score` (accounts without one come last either way).
    SatisfactionScore,
    /// `satisfaction_score_high_urgent` (accounts without one come last either way).
    SatisfactionScoreHighUrgent,
    /// `good_ratings`.
    GoodRatings,
    /// `bad_ratings`.
    BadRatings,
}

impl SortMetric {
    /// Every metric, in the order of their slots in [`MetricIndex`].
    pub const ALL: [SortMetric; 9] = [
        SortMetric::OpenTickets,
        SortMetric::TotalTickets,
        SortMetric::TicketsCreated,
        SortMetric::OpenHighUrgentTickets,
        SortMetric::HighUrgentTicketsCreated,
        SortMetric::SatisfactionScore,
        SortMetric::SatisfactionScoreHighUrgent,
        SortMetric::GoodRatings,
        SortMetric::BadRatings,
    ];

    fn slot(self) -> usize {
        self as usize
    }
}

/// The order of a list: by a metric (ties by account id ascending), or by account id alone.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ListOrder {
    /// The metric; `None` sorts by account id.
    pub metric: Option<SortMetric>,
    /// Largest first.
    pub descending: bool,
}

/// Where a page ended: the sort value and the id of its last account. The value is the one the list was
/// sorted by when the page was served (a count, or a score's `f64` bits; `None`: no score; 0 when sorting
/// by account id), so the next page starts right after it whatever changed since.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Position {
    /// The sort value of the last account shown.
    pub value: Option<u64>,
    /// The id of the last account shown.
    pub account_id: String,
}

/// One page of the list: rows of the index, and where the next page starts if there is one.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct IndexPage {
    /// Row numbers (see [`MetricIndex::row`]), in list order.
    pub rows: Vec<usize>,
    /// The position after the last row, when more rows follow.
    pub next: Option<Position>,
}

/// One account's row of the index.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct IndexedAccount<'a> {
    /// The account id.
    pub id: &'a str,
    /// Its matched organizations, in id order.
    pub orgs: &'a [u64],
    /// Their summed figures.
    pub figures: &'a Figures,
}

/// Every account's figures at one state of the store on one UTC day, rows in account id order.
#[derive(Debug)]
pub struct MetricIndex {
    /// The day the windows end on.
    day: i64,
    timeframe: Timeframe,
    satisfaction: bool,
    /// Account ids end to end, `id_ends[i]` where row i's ends (one allocation instead of one per account).
    ids: String,
    id_ends: Vec<usize>,
    /// Organization ids end to end, `org_ends[i]` where row i's end.
    orgs: Vec<u64>,
    org_ends: Vec<usize>,
    figures: Vec<Figures>,
    /// Rows in each metric's ascending and descending order (slot `2 * metric + descending`), built when
    /// first asked for: a first page pays one sort, not eighteen.
    orders: [OnceLock<Vec<u32>>; 18],
}

impl MetricIndex {
    /// Accounts in the directory.
    pub fn len(&self) -> usize {
        self.figures.len()
    }

    /// Whether the directory is empty.
    pub fn is_empty(&self) -> bool {
        self.figures.is_empty()
    }

    /// The window in force.
    pub fn timeframe(&self) -> Timeframe {
        self.timeframe
    }

    /// Whether satisfaction scores are computed.
    pub fn satisfaction(&self) -> bool {
        self.satisfaction
    }

    /// Row `row` (below [`MetricIndex::len`]).
    pub fn row(&self, row: usize) -> IndexedAccount<'_> {
        let start = |ends: &[usize]| if row == 0 { 0 } else { ends[row - 1] };
        IndexedAccount {
            id: &self.ids[start(&self.id_ends)..self.id_ends[row]],
            orgs: &self.orgs[start(&self.org_ends)..self.org_ends[row]],
            figures: &self.figures[row],
        }
    }

    /// This index with the figures of the accounts matched to one of `orgs` read again from `txn` (on `now`'s
    /// day, which must be this index's): what a commit of ticket and rating pages needs, instead of a whole
    /// new index.
    fn refreshed(
        &self,
        txn: &redb::ReadTransaction,
        orgs: &std::collections::BTreeSet<u64>,
        now: DateTime<Utc>,
    ) -> Result<MetricIndex, StoreError> {
        let mut figures = self.figures.clone();
        for (row, sum) in figures.iter_mut().enumerate() {
            let account_orgs = self.row(row).orgs;
            if account_orgs.iter().any(|org| orgs.contains(org)) {
                *sum = super::rollups::org_figures_in(txn, account_orgs, self.timeframe, now)?;
            }
        }
        Ok(MetricIndex {
            day: self.day,
            timeframe: self.timeframe,
            satisfaction: self.satisfaction,
            ids: self.ids.clone(),
            id_ends: self.id_ends.clone(),
            orgs: self.orgs.clone(),
            org_ends: self.org_ends.clone(),
            figures,
            orders: Default::default(),
        })
    }

    fn id(&self, row: usize) -> &str {
        let start = if row == 0 { 0 } else { self.id_ends[row - 1] };
        &self.ids[start..self.id_ends[row]]
    }

    /// The value row `row` sorts by under `metric`, as `ListAccountMetrics` shows it: satisfaction figures
    /// are unset (scores) or zero (counts) while satisfaction is off.
    pub fn sort_value(&self, metric: SortMetric, row: usize) -> Option<u64> {
        let figures = &self.figures[row];
        let shown = |count: u64| if self.satisfaction { count } else { 0 };
        let score = |score: Option<f64>| score.filter(|_| self.satisfaction).map(f64::to_bits);
        Some(match metric {
            SortMetric::OpenTickets => figures.counters.open,
            SortMetric::TotalTickets => figures.counters.total,
            SortMetric::TicketsCreated => figures.created.created,
            SortMetric::OpenHighUrgentTickets => figures.counters.open_high_urgent,
            SortMetric::HighUrgentTicketsCreated => figures.created.high_urgent_created,
            // Scores are percentages in [0, 100]: their bits order as the numbers do.
            SortMetric::SatisfactionScore => return score(figures.ratings.score()),
            SortMetric::SatisfactionScoreHighUrgent => {
                return score(figures.ratings.score_high_urgent())
            }
            SortMetric::GoodRatings => shown(figures.ratings.good),
            SortMetric::BadRatings => shown(figures.ratings.bad),
        })
    }

    /// Rows in `metric`'s order: by value (`descending` or not), accounts without a value last, ties by
    /// account id ascending (which is row order).
    fn order(&self, metric: SortMetric, descending: bool) -> &[u32] {
        self.orders[2 * metric.slot() + usize::from(descending)].get_or_init(|| {
            let mut keys: Vec<u128> = (0..self.len())
                .map(|row| {
                    let (missing, value) = match self.sort_value(metric, row) {
                        Some(value) if descending => (0u128, !value),
                        Some(value) => (0, value),
                        None => (1, 0),
                    };
                    (missing << 96) | (u128::from(value) << 32) | row as u128
                })
                .collect();
            // One integer key per row: an unstable sort of plain integers is the fastest there is, and the row
            // in the low bits keeps ties in account id order.
            keys.sort_unstable();
            keys.into_iter().map(|key| key as u32).collect()
        })
    }

    /// How row `row` compares with `position` in `order`.
    fn compare(&self, order: ListOrder, row: usize, position: &Position) -> Ordering {
        let id = self.id(row);
        let Some(metric) = order.metric else {
            let by_id = id.cmp(position.account_id.as_str());
            return if order.descending {
                by_id.reverse()
            } else {
                by_id
            };
        };
        let by_value = match (self.sort_value(metric, row), position.value) {
            (Some(a), Some(b)) if order.descending => b.cmp(&a),
            (Some(a), Some(b)) => a.cmp(&b),
            (Some(_), None) => Ordering::Less,
            (None, Some(_)) => Ordering::Greater,
            (None, None) => Ordering::Equal,
        };
        by_value.then_with(|| id.cmp(position.account_id.as_str()))
    }

    /// The position of row `row` in `order` (what a token names).
    fn position(&self, order: ListOrder, row: usize) -> Position {
        Position {
            value: order.metric.map_or(Some(0), |m| self.sort_value(m, row)),
            account_id: self.id(row).to_owned(),
        }
    }

    /// Up to `size` rows in `order`, after `after` (from the start when `None`).
    pub fn page(&self, order: ListOrder, after: Option<&Position>, size: usize) -> IndexPage {
        let len = self.len();
        let sorted = order.metric.map(|m| self.order(m, order.descending));
        let row_at = |at: usize| match sorted {
            Some(rows) => rows[at] as usize,
            None if order.descending => len - 1 - at,
            None => at,
        };
        let start = match after {
            None => 0,
            Some(position) => partition_point(len, |at| {
                self.compare(order, row_at(at), position) != Ordering::Greater
            }),
        };
        let end = start.saturating_add(size).min(len);
        let rows: Vec<usize> = (start..end).map(row_at).collect();
        let next = match rows.last() {
            Some(&last) if end < len => Some(self.position(order, last)),
            _ => None,
        };
        IndexPage { rows, next }
    }
}

/// The first of `0..len` for which `before` is false, `before` being true then false along it.
fn partition_point(len: usize, before: impl Fn(usize) -> bool) -> usize {
    let (mut low, mut high) = (0, len);
    while low < high {
        let mid = low + (high - low) / 2;
        if before(mid) {
            low = mid + 1;
        } else {
            high = mid;
        }
    }
    low
}

/// A per-organization table is read whole rather than one lookup per organization when it holds at most this
/// many rows per organization to read: a B-tree descent costs about what walking this many rows does.
const SCAN_ROWS_PER_OWNER: u64 = 16;

/// How [`build`] reads the per-organization tables.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Reads {
    /// Whole tables or one lookup per organization, whichever reads less.
    Cheapest,
    /// Always whole tables (tests compare both ways).
    #[cfg(test)]
    Scans,
    /// Always one lookup per organization.
    #[cfg(test)]
    Lookups,
}

impl Reads {
    /// Whether to read a table of `rows` rows whole, for about `owners` organizations.
    fn scan(self, rows: u64, owners: u64) -> bool {
        match self {
            Reads::Cheapest => rows <= SCAN_ROWS_PER_OWNER.saturating_mul(owners),
            #[cfg(test)]
            Reads::Scans => true,
            #[cfg(test)]
            Reads::Lookups => false,
        }
    }
}

type CounterRow = (u64, u64, u64);
type TicketDayRow = (u64, u64);

/// Rows of one per-organization table summed per organization, in organization order.
type Sums<T> = Vec<(u64, T)>;

/// The per-organization tables, each summed per organization (`None`: to be read by lookups, once the
/// organizations the accounts need are known).
struct OrgSums {
    counters: Option<Sums<CounterRow>>,
    days: Option<Sums<TicketDayRow>>,
    ratings: Option<Sums<tables::RatingDay>>,
}

/// A row of a per-organization table: rows sum field by field.
trait SumRow {
    /// Adds `row` to this sum.
    fn add(&mut self, row: Self);
}

impl SumRow for TicketDayRow {
    fn add(&mut self, row: Self) {
        self.0 += row.0;
        self.1 += row.1;
    }
}

impl SumRow for CounterRow {
    fn add(&mut self, row: Self) {
        self.0 += row.0;
        self.1 += row.1;
        self.2 += row.2;
    }
}

impl SumRow for tables::RatingDay {
    fn add(&mut self, row: Self) {
        self.0 += row.0;
        self.1 += row.1;
        self.2 += row.2;
        self.3 += row.3;
    }
}

/// A per-organization table: its keys start with the organization id.
struct PerOrg<K: redb::Key + 'static, V: redb::Value + 'static>(
    redb::TableDefinition<'static, K, V>,
);

const COUNTERS: PerOrg<u64, CounterRow> = PerOrg(tables::ORG_COUNTERS);
const TICKET_DAYS: PerDay<TicketDayRow> = PerDay(tables::ORG_TICKET_DAYS);
const RATING_DAYS: PerDay<tables::RatingDay> = PerDay(tables::ORG_RATING_DAYS);

impl<K, V> PerOrg<K, V>
where
    K: redb::Key + 'static,
    V: redb::Value + 'static,
{
    /// Sums every row per organization (`owner` gives a key's organization, or `None` to skip it) when
    /// reading the table whole costs less than a lookup for each of about `owners` organizations; `None`
    /// when it does not. The table is in organization order, so the sums are too.
    fn scan<T>(
        &self,
        txn: &redb::ReadTransaction,
        owners: u64,
        reads: Reads,
        owner: impl Fn(K::SelfType<'_>) -> Option<u64>,
    ) -> Result<Option<Sums<T>>, StoreError>
    where
        T: SumRow,
        V: for<'a> redb::Value<SelfType<'a> = T>,
    {
        let table = txn.open_table(self.0)?;
        if !reads.scan(table.len()?, owners) {
            return Ok(None);
        }
        let mut sums: Sums<T> = Vec::new();
        for entry in table.iter()? {
            let (key, value) = entry?;
            let Some(org) = owner(key.value()) else {
                continue;
            };
            match sums.last_mut() {
                Some((last, sum)) if *last == org => sum.add(value.value()),
                _ => sums.push((org, value.value())),
            }
        }
        Ok(Some(sums))
    }

    /// `scanned` when [`PerOrg::scan`] read the table, else the sums of the rows of `owners` (sorted,
    /// distinct) looked up, each one's rows being the keys `keys(owner)` gives.
    fn lookup_unscanned<T, R>(
        &self,
        scanned: Option<Sums<T>>,
        txn: &redb::ReadTransaction,
        owners: &[u64],
        keys: impl Fn(u64) -> R,
    ) -> Result<Sums<T>, StoreError>
    where
        T: SumRow,
        V: for<'a> redb::Value<SelfType<'a> = T>,
        R: std::ops::RangeBounds<K::SelfType<'static>>,
        for<'a> K::SelfType<'static>: std::borrow::Borrow<K::SelfType<'a>>,
    {
        if let Some(sums) = scanned {
            return Ok(sums);
        }
        let table = txn.open_table(self.0)?;
        sum_per_owner(owners, |owner, add| {
            for entry in table.range(keys(owner))? {
                add(entry?.1.value());
            }
            Ok(())
        })
    }
}

/// The sums of the rows `rows_of` gives each of `owners` (passing them to its `add`), for the owners that
/// have any, in the order of `owners`.
fn sum_per_owner<T: SumRow>(
    owners: &[u64],
    mut rows_of: impl FnMut(u64, &mut dyn FnMut(T)) -> Result<(), StoreError>,
) -> Result<Sums<T>, StoreError> {
    let mut sums = Vec::new();
    for &owner in owners {
        let mut sum: Option<T> = None;
        rows_of(owner, &mut |row| match &mut sum {
            Some(sum) => sum.add(row),
            None => sum = Some(row),
        })?;
        if let Some(sum) = sum {
            sums.push((owner, sum));
        }
    }
    Ok(sums)
}

/// A per-organization day table, keyed (day, organization).
struct PerDay<V: redb::Value + 'static>(redb::TableDefinition<'static, (i64, u64), V>);

impl<V: redb::Value + 'static> PerDay<V> {
    /// Sums the window's rows (days `from..=to`) per organization, in organization order, when that range
    /// costs less than a lookup per day for each of about `owners` organizations; `None` when it does not.
    fn scan<T>(
        &self,
        txn: &redb::ReadTransaction,
        (from, to): (i64, i64),
        owners: u64,
        reads: Reads,
    ) -> Result<Option<Sums<T>>, StoreError>
    where
        T: SumRow,
        V: for<'a> redb::Value<SelfType<'a> = T>,
    {
        let table = txn.open_table(self.0)?;
        let days = u64::try_from(to.saturating_sub(from).saturating_add(1)).unwrap_or(0);
        if !reads.scan(table.len()?, owners.saturating_mul(days)) {
            return Ok(None);
        }
        let mut sums: std::collections::BTreeMap<u64, T> = std::collections::BTreeMap::new();
        for entry in table.range((from, 0)..=(to, u64::MAX))? {
            let (key, value) = entry?;
            let (_, org) = key.value();
            let row = value.value();
            match sums.get_mut(&org) {
                Some(sum) => sum.add(row),
                None => {
                    sums.insert(org, row);
                }
            }
        }
        Ok(Some(sums.into_iter().collect()))
    }

    /// `scanned` when [`PerDay::scan`] read the window, else the sums of the rows of `owners` (sorted,
    /// distinct) on days `from..=to`, a lookup per day.
    fn lookup_unscanned<T>(
        &self,
        scanned: Option<Sums<T>>,
        txn: &redb::ReadTransaction,
        owners: &[u64],
        (from, to): (i64, i64),
    ) -> Result<Sums<T>, StoreError>
    where
        T: SumRow,
        V: for<'a> redb::Value<SelfType<'a> = T>,
    {
        if let Some(sums) = scanned {
            return Ok(sums);
        }
        let table = txn.open_table(self.0)?;
        sum_per_owner(owners, |owner, add| {
            for day in from..=to {
                if let Some(row) = table.get((day, owner))? {
                    add(row.value());
                }
            }
            Ok(())
        })
    }
}

/// Reads the per-organization tables that are cheaper read whole (the day tables: their window) than
/// lookups for each of about `owners` organizations; the window's days are `from..=to`.
fn scan_org_tables(
    txn: &redb::ReadTransaction,
    (from, to): (i64, i64),
    owners: u64,
    reads: Reads,
) -> Result<OrgSums, StoreError> {
    Ok(OrgSums {
        counters: COUNTERS.scan(txn, owners, reads, Some)?,
        days: TICKET_DAYS.scan(txn, (from, to), owners, reads)?,
        ratings: RATING_DAYS.scan(txn, (from, to), owners, reads)?,
    })
}

/// Calls `each` with the slot in `owners` and the sum of every organization of `sums` that is one of
/// `owners` (both sorted).
fn join<T>(owners: &[u64], sums: &Sums<T>, mut each: impl FnMut(usize, &T)) {
    let mut slot = 0;
    for (org, sum) in sums {
        while slot < owners.len() && owners[slot] < *org {
            slot += 1;
        }
        if slot == owners.len() {
            return;
        }
        if owners[slot] == *org {
            each(slot, sum);
        }
    }
}

/// The account side of the index: ids and their organizations, in account id order.
struct AccountRows {
    ids: String,
    id_ends: Vec<usize>,
    orgs: Vec<u64>,
    org_ends: Vec<usize>,
}

fn read_accounts(txn: &redb::ReadTransaction) -> Result<AccountRows, StoreError> {
    let accounts = txn.open_table(tables::ACCOUNTS)?;
    let count = usize::try_from(accounts.len()?).unwrap_or(usize::MAX);
    let mut ids = String::with_capacity(count.saturating_mul(16));
    let mut id_ends = Vec::with_capacity(count);
    for entry in accounts.iter()? {
        ids.push_str(entry?.0.value());
        id_ends.push(ids.len());
    }
    let count = id_ends.len();
    let id = |row: usize| &ids[if row == 0 { 0 } else { id_ends[row - 1] }..id_ends[row]];
    // Both tables are in account id order: one walk over each, side by side.
    let mut orgs = Vec::with_capacity(count);
    let mut org_ends = Vec::with_capacity(count);
    let mut row = 0;
    for entry in txn.open_table(tables::ACCOUNT_ORGS)?.iter()? {
        let (key, _) = entry?;
        let (account, org) = key.value();
        while row < count && id(row) < account {
            org_ends.push(orgs.len());
            row += 1;
        }
        if row < count && id(row) == account {
            orgs.push(org);
        }
    }
    org_ends.resize(count, orgs.len());
    Ok(AccountRows {
        ids,
        id_ends,
        orgs,
        org_ends,
    })
}

/// Computes every account's figures as `txn` sees them on `now`'s day.
///
/// The account tables and the organization tables are read on two threads at once: each side is a few
/// walks over whole tables, and the two halves take about as long.
fn build(
    txn: &redb::ReadTransaction,
    now: DateTime<Utc>,
    reads: Reads,
) -> Result<MetricIndex, StoreError> {
    let (days, satisfaction) = super::sync_state::read_metrics_settings(txn)?;
    let timeframe = Timeframe::stored_or_default(days);
    let window = timeframe.window(now);
    let window = (window.start().number(), window.end().number());
    let links = txn.open_table(tables::ACCOUNT_ORGS)?.len()?;
    let org_side = || scan_org_tables(txn, window, links, reads);
    let (accounts, scanned) = std::thread::scope(|scope| {
        let spawned = std::thread::Builder::new()
            .name("metric-index".into())
            .spawn_scoped(scope, org_side);
        let accounts = read_accounts(txn);
        let scanned = match spawned {
            Ok(handle) => handle
                .join()
                .unwrap_or_else(|panic| std::panic::resume_unwind(panic)),
            // No thread to be had (a process at its limit): the same reads, one after the other.
            Err(_) => org_side(),
        };
        (accounts, scanned)
    });
    let AccountRows {
        ids,
        id_ends,
        orgs,
        org_ends,
    } = accounts?;
    let scanned = scanned?;

    let mut owners = orgs.clone();
    owners.sort_unstable();
    owners.dedup();
    let (from, to) = window;
    // What the scan left out (a table with many rows per organization) is looked up per organization.
    let counters = COUNTERS.lookup_unscanned(scanned.counters, txn, &owners, |org| org..=org)?;
    let days = TICKET_DAYS.lookup_unscanned(scanned.days, txn, &owners, (from, to))?;
    let ratings = RATING_DAYS.lookup_unscanned(scanned.ratings, txn, &owners, (from, to))?;
    let mut org_figures = vec![Figures::default(); owners.len()];
    join(
        &owners,
        &counters,
        |slot, &(open, total, open_high_urgent)| {
            let counters = &mut org_figures[slot].counters;
            counters.open += open;
            counters.total += total;
            counters.open_high_urgent += open_high_urgent;
        },
    );
    join(&owners, &days, |slot, &(created, high_urgent_created)| {
        let counts = &mut org_figures[slot].created;
        counts.created += created;
        counts.high_urgent_created += high_urgent_created;
    });
    join(&owners, &ratings, |slot, &(good, bad, hu_good, hu_bad)| {
        let counts = &mut org_figures[slot].ratings;
        counts.good += good;
        counts.bad += bad;
        counts.high_urgent_good += hu_good;
        counts.high_urgent_bad += hu_bad;
    });

    let mut figures = Vec::with_capacity(org_ends.len());
    let mut start = 0;
    for &end in &org_ends {
        let mut sum = Figures::default();
        for org in &orgs[start..end] {
            if let Ok(slot) = owners.binary_search(org) {
                sum.add(&org_figures[slot]);
            }
        }
        figures.push(sum);
        start = end;
    }
    Ok(MetricIndex {
        day: Day::of(now).number(),
        timeframe,
        satisfaction,
        ids,
        id_ends,
        orgs,
        org_ends,
        figures,
        orders: Default::default(),
    })
}

/// The index the store keeps between commits (see [`Store::metric_index`]).
#[derive(Debug, Default)]
pub(crate) struct IndexCell {
    /// The newest index, with the count of figure-changing commits it was built after.
    latest: Mutex<Option<(u64, Arc<MetricIndex>)>>,
    /// What the commits after `latest`'s count changed; taken together with the count it ends at.
    pending: Mutex<FigureChange>,
    /// Held while an index is built: callers that arrive meanwhile wait for it rather than build their own.
    building: Mutex<()>,
}

impl IndexCell {
    /// Lets go of the index (the database is being replaced).
    pub(crate) fn forget(&self) {
        let stale = locked(&self.latest).take();
        drop(stale);
    }

    /// Records a commit's `change` and counts it in `count`, under one lock, so that a builder always takes
    /// the changes of exactly the commits its count covers.
    pub(crate) fn changed(&self, change: FigureChange, count: &AtomicU64) {
        let mut pending = locked(&self.pending);
        pending.merge(change);
        count.fetch_add(1, AtomicOrdering::AcqRel);
    }

    /// The count of figure-changing commits so far and what they changed since the last take.
    fn take_pending(&self, count: &AtomicU64) -> (u64, FigureChange) {
        let mut pending = locked(&self.pending);
        (
            count.load(AtomicOrdering::Acquire),
            std::mem::take(&mut *pending),
        )
    }
}

impl Store {
    /// Every account's figures on `now`'s day, as of the newest commit: built in one read transaction after a
    /// commit that may change figures (or when the day changes), then shared until the next one.
    pub fn metric_index(&self, now: DateTime<Utc>) -> Result<Arc<MetricIndex>, StoreError> {
        let day = Day::of(now).number();
        let cell = &self.reads.metric_index;
        let current = || {
            let seen = self.figure_changes();
            locked(&cell.latest)
                .as_ref()
                .filter(|(at, index)| *at == seen && index.day == day)
                .map(|(_, index)| index.clone())
        };
        if let Some(index) = current() {
            return Ok(index);
        }
        let _building = locked(&cell.building);
        if let Some(index) = current() {
            return Ok(index);
        }
        let (seen, change) = cell.take_pending(&self.reads.figure_changes);
        let base = locked(&cell.latest)
            .as_ref()
            .filter(|(_, index)| index.day == day)
            .map(|(_, index)| index.clone());
        let view = self.snapshot()?;
        // The snapshot holds at least the commits `seen` counts: rows no commit since `base` touched keep
        // their figures, the others are read again.
        let built = match (base, &change) {
            (Some(base), FigureChange::Nothing) => Ok(base),
            (Some(base), FigureChange::Orgs(orgs)) => {
                base.refreshed(&view, orgs, now).map(Arc::new)
            }
            _ => build(&view, now, Reads::Cheapest).map(Arc::new),
        };
        drop(view);
        let index = match built {
            Ok(index) => index,
            Err(error) => {
                // The changes taken are still to be applied by the next build.
                locked(&cell.pending).merge(change);
                return Err(error);
            }
        };
        // Kept even if commits came meanwhile: it is then the base the next build refreshes, not current.
        let replaced = locked(&cell.latest).replace((seen, index.clone()));
        drop(replaced);
        Ok(index)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::account::AttributeValue;
    use crate::store::page::PageWrite;
    use crate::store::zendesk_records::{OrganizationRecord, RatingRecord, TicketRecord};
    use chrono::TimeZone;
    use rand::{Rng, SeedableRng};

    /// A store of `accounts` accounts matched to organizations (some to two, some to none) and random
    /// tickets and ratings over them.
    fn filled(dir: &std::path::Path, accounts: u64, seed: u64) -> (Store, DateTime<Utc>) {
        let store = Store::open(dir).expect("open");
        store
            .put_integration(&crate::store::tests::crm_integration())
            .expect("integration");
        let directory: Vec<_> = (0..accounts)
            .map(|i| {
                let mut account = crate::store::tests::account(&format!("acct-{i:03}"));
                if i % 7 != 3 {
                    account
                        .attributes
                        .insert("crm".into(), AttributeValue::Text(format!("c-{i}")));
                }
                account
            })
            .collect();
        store.upsert_accounts(&directory, 0).expect("accounts");
        let now = Utc.with_ymd_and_hms(2026, 3, 20, 12, 0, 0).unwrap();
        let mut rng = rand::rngs::StdRng::seed_from_u64(seed);
        let orgs = accounts + accounts / 4;
        let organizations = (1..=orgs)
            .map(|org| {
                // The last quarter shares keys with the first accounts: accounts with two organizations.
                let key = format!("c-{}", (org - 1) % accounts);
                let fields = [("crm".to_owned(), key)].into_iter().collect();
                (
                    org,
                    OrganizationRecord {
                        fields,
                        ..Default::default()
                    },
                )
            })
            .collect();
        let tickets: Vec<(u64, TicketRecord)> = (1..=accounts * 6)
            .map(|id| (id, random_ticket(&mut rng, orgs, now, None)))
            .collect();
        let ratings = tickets
            .iter()
            .filter(|(id, _)| id % 3 == 0)
            .map(|(id, ticket)| {
                let bad = rng.random_bool(0.3);
                (
                    40_000_000 + id,
                    rating_of(*id, ticket, bad, ticket.created_at),
                )
            })
            .collect();
        store
            .apply_page(&PageWrite {
                tickets,
                organizations,
                ratings,
                ..Default::default()
            })
            .expect("page");
        (store, now)
    }

    /// A ticket of a random organization up to `orgs` (0: none), status and priority, created in the 20 days
    /// before `now` and last updated at `updated` (its creation when `None`).
    fn random_ticket(
        rng: &mut rand::rngs::StdRng,
        orgs: u64,
        now: DateTime<Utc>,
        updated: Option<i64>,
    ) -> TicketRecord {
        let created = now.timestamp() - rng.random_range(0..20 * 86_400);
        let organization_id = rng.random_range(0..=orgs);
        let status = rng.random_range(1..=6);
        let priority = rng.random_range(0..=4);
        TicketRecord {
            organization_id,
            status,
            priority,
            created_at: created,
            updated_at: updated.unwrap_or(created),
            generated_timestamp: updated.unwrap_or(created),
            ..Default::default()
        }
    }

    /// A rating of ticket `ticket_id`, given when the ticket was created.
    fn rating_of(
        ticket_id: u64,
        ticket: &TicketRecord,
        bad: bool,
        updated_at: i64,
    ) -> RatingRecord {
        RatingRecord {
            ticket_id,
            score: if bad { "bad" } else { "good" }.into(),
            created_at: ticket.created_at,
            updated_at,
            ..Default::default()
        }
    }

    fn built(store: &Store, now: DateTime<Utc>, reads: Reads) -> MetricIndex {
        build(&store.snapshot().expect("snapshot"), now, reads).expect("build")
    }

    #[test]
    fn rows_equal_each_accounts_own_figures_read_either_way() {
        let dir = tempfile::tempdir().expect("tempdir");
        let (store, now) = filled(dir.path(), 60, 1);
        for reads in [Reads::Cheapest, Reads::Scans, Reads::Lookups] {
            let index = built(&store, now, reads);
            assert_eq!(index.len(), 60);
            assert!(index.satisfaction());
            assert_eq!(index.timeframe().days(), 7);
            let mut two_orgs = 0;
            let mut in_window = 0;
            for row in 0..index.len() {
                let account = index.row(row);
                let own = store
                    .account_figures(account.id, now)
                    .expect("figures")
                    .expect("account");
                assert_eq!(
                    account.orgs,
                    own.orgs.as_slice(),
                    "{reads:?} {}",
                    account.id
                );
                assert_eq!(account.figures, &own.figures, "{reads:?} {}", account.id);
                two_orgs += usize::from(account.orgs.len() == 2);
                in_window += usize::from(account.figures.created.created > 0);
            }
            assert!(two_orgs > 5 && in_window > 20, "{two_orgs} {in_window}");
            assert!(index.row(3).orgs.is_empty(), "an account without a match");
        }
    }

    /// Every row in `order`, paging `size` rows at a time.
    fn walk(index: &MetricIndex, order: ListOrder, size: usize) -> Vec<usize> {
        let mut rows = Vec::new();
        let mut after: Option<Position> = None;
        loop {
            let page = index.page(order, after.as_ref(), size);
            rows.extend(&page.rows);
            match page.next {
                Some(next) => after = Some(next),
                None => return rows,
            }
        }
    }

    fn orders() -> Vec<ListOrder> {
        let mut orders = Vec::new();
        for metric in std::iter::once(None).chain(SortMetric::ALL.map(Some)) {
            for descending in [false, true] {
                orders.push(ListOrder { metric, descending });
            }
        }
        orders
    }

    #[test]
    fn pages_walk_every_account_once_in_sort_order() {
        let dir = tempfile::tempdir().expect("tempdir");
        let (store, now) = filled(dir.path(), 60, 2);
        let index = store.metric_index(now).expect("index");
        for order in orders() {
            let mut want: Vec<usize> = (0..index.len()).collect();
            // The documented order, spelled out with f64 scores as the service shows them.
            let shown = |row: usize| {
                order.metric.and_then(|metric| {
                    index.sort_value(metric, row).map(|value| match metric {
                        SortMetric::SatisfactionScore | SortMetric::SatisfactionScoreHighUrgent => {
                            f64::from_bits(value)
                        }
                        _ => value as f64,
                    })
                })
            };
            want.sort_by(|&a, &b| {
                let by_value = match (shown(a), shown(b)) {
                    (Some(x), Some(y)) if order.descending => y.total_cmp(&x),
                    (Some(x), Some(y)) => x.total_cmp(&y),
                    (Some(_), None) => Ordering::Less,
                    (None, Some(_)) => Ordering::Greater,
                    (None, None) => Ordering::Equal,
                };
                let by_id = index.id(a).cmp(index.id(b));
                let by_id = if order.metric.is_none() && order.descending {
                    by_id.reverse()
                } else {
                    by_id
                };
                by_value.then(by_id)
            });
            for size in [1, 7, 60, 1000] {
                assert_eq!(walk(&index, order, size), want, "{order:?} by {size}");
            }
        }
    }

    #[test]
    fn an_index_is_shared_until_a_commit_changes_figures_or_the_day_changes() {
        let dir = tempfile::tempdir().expect("tempdir");
        let (store, now) = filled(dir.path(), 20, 3);
        let first = store.metric_index(now).expect("index");
        assert!(Arc::ptr_eq(
            &first,
            &store.metric_index(now).expect("index")
        ));
        let tomorrow = now + chrono::Duration::days(1);
        let next_day = store.metric_index(tomorrow).expect("index");
        assert!(!Arc::ptr_eq(&first, &next_day), "the windows moved");
        // A page that writes no figure input keeps the index.
        store
            .apply_page(&PageWrite {
                cursors: vec![("tickets".into(), b"after".to_vec())],
                ..Default::default()
            })
            .expect("quiet page");
        assert!(Arc::ptr_eq(
            &next_day,
            &store.metric_index(tomorrow).expect("index")
        ));
        store
            .upsert_accounts(&[crate::store::tests::account("acct-new")], 0)
            .expect("upsert");
        let after = store.metric_index(tomorrow).expect("index");
        assert_eq!(after.len(), 21, "the commit is seen at once");
        assert!(Arc::ptr_eq(
            &after,
            &store.metric_index(tomorrow).expect("index")
        ));
    }

    #[test]
    fn paging_on_after_a_change_neither_repeats_nor_skips_an_unchanged_account() {
        let dir = tempfile::tempdir().expect("tempdir");
        let (store, now) = filled(dir.path(), 40, 4);
        let order = ListOrder {
            metric: Some(SortMetric::OpenTickets),
            descending: true,
        };
        let before = store.metric_index(now).expect("index");
        let page = before.page(order, None, 10);
        let shown: Vec<String> = page
            .rows
            .iter()
            .map(|&r| before.row(r).id.to_owned())
            .collect();
        // Two open tickets for an account not shown yet, and two for one already shown: both move.
        let with_orgs = |rows: Vec<usize>| {
            rows.into_iter()
                .map(|r| before.row(r))
                .find(|account| !account.orgs.is_empty())
                .expect("an account with an organization")
        };
        let unseen = with_orgs(before.page(order, page.next.as_ref(), 100).rows);
        let seen = with_orgs(page.rows.clone());
        let moved = [unseen.id.to_owned(), seen.id.to_owned()];
        let orgs = [unseen.orgs[0], seen.orgs[0]];
        let tickets = orgs
            .iter()
            .flat_map(|&org| [org; 2])
            .enumerate()
            .map(|(i, org)| {
                (
                    90_000 + i as u64,
                    TicketRecord {
                        organization_id: org,
                        status: 2,
                        created_at: now.timestamp(),
                        updated_at: now.timestamp(),
                        generated_timestamp: now.timestamp(),
                        ..Default::default()
                    },
                )
            })
            .collect();
        store
            .apply_page(&PageWrite {
                tickets,
                ..Default::default()
            })
            .expect("page");
        let after = store.metric_index(now).expect("index");
        assert!(!Arc::ptr_eq(&before, &after));
        let mut rest = Vec::new();
        let mut position = page.next;
        while let Some(at) = position {
            let page = after.page(order, Some(&at), 10);
            rest.extend(page.rows.iter().map(|&r| after.row(r).id.to_owned()));
            position = page.next;
        }
        for id in &shown {
            if !moved.contains(id) {
                assert!(!rest.contains(id), "{id} repeated");
            }
        }
        for row in 0..after.len() {
            let id = after.row(row).id;
            if !moved.iter().any(|m| m == id) && !shown.iter().any(|s| s == id) {
                assert!(rest.iter().any(|r| r == id), "{id} skipped");
            }
        }
    }

    /// Random pages of ticket changes (some moving a ticket to another organization, some new ratings),
    /// each followed by a read of the index: every row equals what a whole new index reads, and only a
    /// written organization or account makes a whole new index.
    #[test]
    fn an_index_refreshed_after_ticket_pages_equals_one_built_anew() {
        let dir = tempfile::tempdir().expect("tempdir");
        let (store, now) = filled(dir.path(), 50, 5);
        let mut rng = rand::rngs::StdRng::seed_from_u64(6);
        let orgs = 50 + 50 / 4;
        let mut index = store.metric_index(now).expect("index");
        for round in 0..12_u64 {
            let updated = now.timestamp() + i64::try_from(round).unwrap() + 1;
            let tickets: Vec<(u64, TicketRecord)> = (0..rng.random_range(1..8))
                .map(|_| {
                    let id = rng.random_range(1..=50 * 6 + 20);
                    (id, random_ticket(&mut rng, orgs, now, Some(updated)))
                })
                .collect();
            let ratings = tickets
                .iter()
                .take(2)
                .map(|(id, ticket)| {
                    let bad = rng.random_bool(0.5);
                    (
                        50_000_000 + round * 10 + id % 10,
                        rating_of(*id, ticket, bad, ticket.updated_at),
                    )
                })
                .collect();
            store
                .apply_page(&PageWrite {
                    tickets,
                    ratings,
                    ..Default::default()
                })
                .expect("page");
            let refreshed = store.metric_index(now).expect("index");
            assert!(
                !Arc::ptr_eq(&index, &refreshed),
                "round {round}: a new index"
            );
            let anew = built(&store, now, Reads::Cheapest);
            assert_eq!(refreshed.len(), anew.len());
            for row in 0..anew.len() {
                assert_eq!(refreshed.row(row), anew.row(row), "round {round} row {row}");
            }
            // The refreshed index sorts like a new one.
            for order in orders() {
                assert_eq!(
                    walk(&refreshed, order, 7),
                    walk(&anew, order, 7),
                    "{order:?}"
                );
            }
            index = refreshed;
        }
    }

    /// A ticket page drops the cached figures of the accounts of the organizations it moved, and only those.
    #[test]
    fn a_ticket_page_recomputes_only_its_organizations_accounts_figures() {
        let dir = tempfile::tempdir().expect("tempdir");
        let (store, now) = filled(dir.path(), 20, 7);
        let index = store.metric_index(now).expect("index");
        let with_org: Vec<_> = (0..index.len())
            .map(|row| index.row(row))
            .filter(|account| !account.orgs.is_empty())
            .map(|account| (account.id.to_owned(), account.orgs.to_vec()))
            .collect();
        for (id, _) in &with_org {
            let (_, cached) = store.account_figures_cached(id, now).expect("figures");
            assert!(!cached, "{id}: the first read computes");
            let (_, cached) = store.account_figures_cached(id, now).expect("figures");
            assert!(cached, "{id}: the second read hits");
        }
        let (moved_id, moved_orgs) = &with_org[0];
        let before = store
            .account_figures(moved_id, now)
            .expect("figures")
            .expect("account");
        store
            .apply_page(&PageWrite {
                tickets: vec![(
                    95_000,
                    TicketRecord {
                        organization_id: moved_orgs[0],
                        status: 2,
                        created_at: now.timestamp(),
                        updated_at: now.timestamp(),
                        generated_timestamp: now.timestamp(),
                        ..Default::default()
                    },
                )],
                ..Default::default()
            })
            .expect("page");
        for (id, orgs) in &with_org {
            let (figures, cached) = store.account_figures_cached(id, now).expect("figures");
            let touched = orgs.contains(&moved_orgs[0]);
            assert_eq!(cached, !touched, "{id}");
            if id == moved_id {
                let figures = figures.expect("account").figures;
                assert_eq!(figures.counters.open, before.figures.counters.open + 1);
                assert_eq!(figures.counters.total, before.figures.counters.total + 1);
            }
        }
        // A run's state and its cursors are no figure input.
        store.update_sync_state(|_| {}).expect("sync state");
        store.clear_cursors(&["tickets"]).expect("cursors");
        for (id, _) in &with_org {
            let (_, cached) = store.account_figures_cached(id, now).expect("figures");
            assert!(cached, "{id} after a sync state write");
        }
        // An account write changes what anything matches: every account's figures are computed again.
        store
            .upsert_accounts(&[crate::store::tests::account("acct-new")], 0)
            .expect("upsert");
        for (id, _) in &with_org {
            let (_, cached) = store.account_figures_cached(id, now).expect("figures");
            assert!(!cached, "{id} after an account write");
        }
    }
}
