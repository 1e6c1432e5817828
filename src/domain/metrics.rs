//! Per-account metric rules: what one ticket or rating contributes, exact deltas between two
//! versions of it, checked counters, UTC day buckets and the windows read from them.
//!
//! The store keeps, per account, one [`Counters`] row for the "current" figures and one row per
//! UTC day for the windowed ones ([`TicketDayCounts`], [`RatingDayCounts`]). Every ticket or
//! rating write turns into a [`Delta`] / [`RatingDelta`] (`new - old`) applied in the same
//! transaction, so a window query reads at most `x` day rows and never scans tickets.
//! A ticket moving between accounts applies `old.removed()` to the old account and
//! `new.added()` to the new one.

use std::fmt;
use std::ops::RangeInclusive;

use chrono::{DateTime, NaiveDate, Utc};

use super::ticket::{Priority, Status};

const SECONDS_PER_DAY: i64 = 86_400;

/// Why a metric rule refused its input.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum MetricsError {
    /// Only 7, 14, 30, 90 and 180 days are valid timeframes.
    #[error("timeframe of {days} days is not one of 7, 14, 30, 90, 180")]
    InvalidTimeframe {
        /// The rejected number of days.
        days: u32,
    },
    /// A delta would take a counter below zero: the rollup drifted from the tickets.
    #[error("counter {counter} would go below zero (rollup drift)")]
    Underflow {
        /// Which counter.
        counter: &'static str,
    },
    /// A counter would exceed u64.
    #[error("counter {counter} would overflow")]
    Overflow {
        /// Which counter.
        counter: &'static str,
    },
}

/// The facts about one ticket that metrics and event detection read.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TicketFacts {
    /// Zendesk ticket id.
    pub id: u64,
    /// Current status.
    pub status: Status,
    /// Current priority.
    pub priority: Priority,
    /// Creation time.
    pub created_at: DateTime<Utc>,
    /// Last update.
    pub updated_at: DateTime<Utc>,
    /// How often the ticket was reopened, per its metric set.
    pub reopens: u32,
    /// When it was last solved, per its metric set.
    pub solved_at: Option<DateTime<Utc>>,
    /// Zendesk no longer returns the ticket (nightly validation): it counts nowhere.
    pub gone: bool,
}

impl TicketFacts {
    /// Whether the ticket counts anywhere: it exists (neither deleted nor gone).
    pub fn exists(&self) -> bool {
        !self.gone && self.status != Status::Deleted
    }
}

/// A satisfaction score as zdsync reasons about it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum RatingScore {
    /// The survey was sent, not answered: counts nowhere.
    Offered,
    /// No survey was sent: counts nowhere.
    Unoffered,
    /// Good.
    Good,
    /// Good, with a comment (older accounts).
    GoodWithComment,
    /// Bad.
    Bad,
    /// Bad, with a comment (older accounts).
    BadWithComment,
    /// A score this version does not know: counts nowhere.
    Other,
}

impl RatingScore {
    /// Reads Zendesk's name of a score; names this version does not know are `Other`.
    pub fn from_name(name: &str) -> Self {
        match name {
            "offered" => Self::Offered,
            "unoffered" => Self::Unoffered,
            "good" => Self::Good,
            "good_with_comment" => Self::GoodWithComment,
            "bad" => Self::Bad,
            "bad_with_comment" => Self::BadWithComment,
            _ => Self::Other,
        }
    }

    /// Good or good with comment.
    pub fn is_good(self) -> bool {
        matches!(self, Self::Good | Self::GoodWithComment)
    }

    /// Bad or bad with comment.
    pub fn is_bad(self) -> bool {
        matches!(self, Self::Bad | Self::BadWithComment)
    }
}

/// The facts about one satisfaction rating that metrics and event detection read.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RatingFacts {
    /// Zendesk rating id.
    pub id: u64,
    /// The rated ticket.
    pub ticket_id: u64,
    /// The score.
    pub score: RatingScore,
    /// When the rating was created (the survey was offered, or the score given directly).
    pub created_at: DateTime<Utc>,
    /// When the rating last changed: when the current score was given.
    pub updated_at: DateTime<Utc>,
}

/// A UTC calendar day, as whole days since 1970-01-01 (the key of a day bucket).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Day(i64);

impl Day {
    /// The UTC day `at` falls on.
    pub fn of(at: DateTime<Utc>) -> Self {
        Self(at.timestamp().div_euclid(SECONDS_PER_DAY))
    }

    /// The day with this number (days since 1970-01-01), e.g. read back from a store key.
    pub fn from_number(number: i64) -> Self {
        Self(number)
    }

    /// Days since 1970-01-01.
    pub fn number(self) -> i64 {
        self.0
    }

    /// The day `days` before this one.
    pub fn minus_days(self, days: i64) -> Self {
        Self(self.0.saturating_sub(days))
    }

    /// 00:00:00 UTC of this day, when chrono can represent it.
    pub fn start(self) -> Option<DateTime<Utc>> {
        DateTime::from_timestamp(self.0.checked_mul(SECONDS_PER_DAY)?, 0)
    }

    /// The calendar date, when chrono can represent it.
    pub fn date(self) -> Option<NaiveDate> {
        self.start().map(|at| at.date_naive())
    }
}

impl fmt::Display for Day {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.date() {
            Some(date) => write!(f, "{date}"),
            None => write!(f, "day {}", self.0),
        }
    }
}

/// A metric timeframe: 7, 14, 30, 90 or 180 days.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Timeframe {
    days: u32,
}

impl Timeframe {
    /// Every valid number of days.
    pub const VALID_DAYS: [u32; 5] = [7, 14, 30, 90, 180];
    /// The window used when a request leaves it unset, and for a stored one zdsync no longer offers.
    pub const DEFAULT: Self = Self { days: 30 };

    /// The stored window, or [`Timeframe::DEFAULT`] when it is not one zdsync offers (reads never fail on it).
    pub fn stored_or_default(days: u32) -> Self {
        Self::from_days(days).unwrap_or(Self::DEFAULT)
    }

    /// The timeframe of `days` days; anything but 7, 14, 30, 90, 180 is an error.
    pub fn from_days(days: u32) -> Result<Self, MetricsError> {
        if Self::VALID_DAYS.contains(&days) {
            Ok(Self { days })
        } else {
            Err(MetricsError::InvalidTimeframe { days })
        }
    }

    /// Its length in days.
    pub fn days(self) -> u32 {
        self.days
    }

    /// The day buckets "the last x days" covers at `now`: x UTC calendar days ending with today.
    ///
    /// Day buckets cannot resolve `created_at > now - x days` to the second, so the window is
    /// whole UTC days: from 00:00:00 of day `today - (x - 1)` through the end of today. A ticket
    /// created at 23:59:59 of `today - x` is outside; one created at 00:00:00 of
    /// `today - (x - 1)` is inside. Buckets after today (clock skew) are outside.
    pub fn window(self, now: DateTime<Utc>) -> RangeInclusive<Day> {
        let today = Day::of(now);
        today.minus_days(i64::from(self.days) - 1)..=today
    }
}

/// Adds a signed delta to an unsigned counter, refusing to go below zero or overflow.
fn apply_signed(value: u64, delta: i64, counter: &'static str) -> Result<u64, MetricsError> {
    if delta >= 0 {
        value
            .checked_add(delta.unsigned_abs())
            .ok_or(MetricsError::Overflow { counter })
    } else {
        value
            .checked_sub(delta.unsigned_abs())
            .ok_or(MetricsError::Underflow { counter })
    }
}

/// Adds a signed delta to an unsigned counter, stopping at zero and at `u64::MAX`.
fn apply_signed_clamped(value: u64, delta: i64) -> u64 {
    if delta >= 0 {
        value.saturating_add(delta.unsigned_abs())
    } else {
        value.saturating_sub(delta.unsigned_abs())
    }
}

/// The result of a checked change that the caller must keep going from: the clamped value when the
/// change drifted (went below zero or overflowed), with the error that says so.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Checked<T> {
    /// The new value: exact, or clamped at the bound it crossed.
    pub value: T,
    /// Why the exact value could not be kept, when it could not.
    pub drift: Option<MetricsError>,
}

impl<T> Checked<T> {
    /// Runs the checked change; on an error falls back to the clamped one and keeps the error.
    fn of(checked: Result<T, MetricsError>, clamped: impl FnOnce() -> T) -> Self {
        match checked {
            Ok(value) => Self { value, drift: None },
            Err(err) => Self {
                value: clamped(),
                drift: Some(err),
            },
        }
    }
}
/// A signed change of some day's counts.
pub trait DayDelta: Copy + Default + PartialEq + fmt::Debug {
    /// `self - other`, field by field.
    fn minus(self, other: Self) -> Self;
    /// Whether every field is zero.
    fn is_zero(&self) -> bool;
}

/// The counts one day bucket holds.
pub trait DayTally: Copy + Default + PartialEq + fmt::Debug {
    /// The signed change of these counts.
    type Delta: DayDelta;
    /// These counts changed by `delta`; an error when a count would go below zero or overflow.
    fn apply(self, delta: Self::Delta) -> Result<Self, MetricsError>;
    /// These counts changed by `delta`, each count stopping at zero.
    fn apply_clamped(self, delta: Self::Delta) -> Self;
    /// [`DayTally::apply`], falling back to [`DayTally::apply_clamped`] with the drift it found.
    fn apply_checked(self, delta: Self::Delta) -> Checked<Self> {
        Checked::of(self.apply(delta), || self.apply_clamped(delta))
    }
    /// Whether every count is zero (such a bucket is not kept).
    fn is_zero(&self) -> bool;
}

/// Tickets created on one UTC day.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct TicketDayCounts {
    /// Tickets created that day, any status or priority.
    pub created: u64,
    /// High/urgent tickets created that day.
    pub high_urgent_created: u64,
}

/// A signed change of [`TicketDayCounts`].
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct TicketDayDelta {
    /// Change of `created`.
    pub created: i64,
    /// Change of `high_urgent_created`.
    pub high_urgent_created: i64,
}

impl DayDelta for TicketDayDelta {
    fn minus(self, other: Self) -> Self {
        Self {
            created: self.created - other.created,
            high_urgent_created: self.high_urgent_created - other.high_urgent_created,
        }
    }

    fn is_zero(&self) -> bool {
        self.created == 0 && self.high_urgent_created == 0
    }
}

impl DayTally for TicketDayCounts {
    type Delta = TicketDayDelta;

    fn apply(self, delta: TicketDayDelta) -> Result<Self, MetricsError> {
        Ok(Self {
            created: apply_signed(self.created, delta.created, "created")?,
            high_urgent_created: apply_signed(
                self.high_urgent_created,
                delta.high_urgent_created,
                "high_urgent_created",
            )?,
        })
    }

    fn apply_clamped(self, delta: TicketDayDelta) -> Self {
        Self {
            created: apply_signed_clamped(self.created, delta.created),
            high_urgent_created: apply_signed_clamped(
                self.high_urgent_created,
                delta.high_urgent_created,
            ),
        }
    }

    fn is_zero(&self) -> bool {
        self.created == 0 && self.high_urgent_created == 0
    }
}

/// Good and bad ratings given on one UTC day, overall and on high/urgent tickets.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct RatingDayCounts {
    /// Good ratings.
    pub good: u64,
    /// Bad ratings.
    pub bad: u64,
    /// Good ratings of high/urgent tickets.
    pub high_urgent_good: u64,
    /// Bad ratings of high/urgent tickets.
    pub high_urgent_bad: u64,
}

/// A signed change of [`RatingDayCounts`].
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct RatingDayDelta {
    /// Change of `good`.
    pub good: i64,
    /// Change of `bad`.
    pub bad: i64,
    /// Change of `high_urgent_good`.
    pub high_urgent_good: i64,
    /// Change of `high_urgent_bad`.
    pub high_urgent_bad: i64,
}

impl DayDelta for RatingDayDelta {
    fn minus(self, other: Self) -> Self {
        Self {
            good: self.good - other.good,
            bad: self.bad - other.bad,
            high_urgent_good: self.high_urgent_good - other.high_urgent_good,
            high_urgent_bad: self.high_urgent_bad - other.high_urgent_bad,
        }
    }

    fn is_zero(&self) -> bool {
        self.good == 0 && self.bad == 0 && self.high_urgent_good == 0 && self.high_urgent_bad == 0
    }
}

impl DayTally for RatingDayCounts {
    type Delta = RatingDayDelta;

    fn apply(self, delta: RatingDayDelta) -> Result<Self, MetricsError> {
        Ok(Self {
            good: apply_signed(self.good, delta.good, "good_ratings")?,
            bad: apply_signed(self.bad, delta.bad, "bad_ratings")?,
            high_urgent_good: apply_signed(
                self.high_urgent_good,
                delta.high_urgent_good,
                "high_urgent_good_ratings",
            )?,
            high_urgent_bad: apply_signed(
                self.high_urgent_bad,
                delta.high_urgent_bad,
                "high_urgent_bad_ratings",
            )?,
        })
    }

    fn apply_clamped(self, delta: RatingDayDelta) -> Self {
        Self {
            good: apply_signed_clamped(self.good, delta.good),
            bad: apply_signed_clamped(self.bad, delta.bad),
            high_urgent_good: apply_signed_clamped(self.high_urgent_good, delta.high_urgent_good),
            high_urgent_bad: apply_signed_clamped(self.high_urgent_bad, delta.high_urgent_bad),
        }
    }

    fn is_zero(&self) -> bool {
        self.good == 0 && self.bad == 0 && self.high_urgent_good == 0 && self.high_urgent_bad == 0
    }
}

impl RatingDayCounts {
    /// good / (good + bad) × 100; `None` without good or bad ratings.
    pub fn score(&self) -> Option<f64> {
        percentage(self.good, self.bad)
    }

    /// The same over ratings of high/urgent tickets.
    pub fn score_high_urgent(&self) -> Option<f64> {
        percentage(self.high_urgent_good, self.high_urgent_bad)
    }
}

/// good / (good + bad) × 100, computed in f64 (exact for the integers a rollup holds).
fn percentage(good: u64, bad: u64) -> Option<f64> {
    let total = good.checked_add(bad)?;
    if total == 0 {
        return None;
    }
    // u64 -> f64 rounds only above 2^53 ratings, far beyond any account.
    Some(good as f64 * 100.0 / total as f64)
}

/// Day-bucket changes from one write: at most two days (the old one and the new one).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct DayDeltas<D: DayDelta> {
    entries: [Option<(Day, D)>; 2],
}

impl<D: DayDelta> Default for DayDeltas<D> {
    fn default() -> Self {
        Self {
            entries: [None, None],
        }
    }
}

impl<D: DayDelta> DayDeltas<D> {
    /// `new - old` for two optional day contributions; zero changes are dropped.
    fn between(old: Option<(Day, D)>, new: Option<(Day, D)>) -> Self {
        let entries = match (old, new) {
            (Some((old_day, old)), Some((new_day, new))) if old_day == new_day => {
                [Some((new_day, new.minus(old))), None]
            }
            (old, new) => [old.map(|(day, old)| (day, D::default().minus(old))), new],
        };
        Self {
            entries: entries.map(|entry| entry.filter(|(_, delta)| !delta.is_zero())),
        }
    }

    /// The days that change, with their changes.
    pub fn iter(&self) -> impl Iterator<Item = (Day, D)> + '_ {
        self.entries.iter().flatten().copied()
    }
}

/// Signed change of the "current" counters.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct CounterDelta {
    /// Change of `open`.
    pub open: i64,
    /// Change of `total`.
    pub total: i64,
    /// Change of `open_high_urgent`.
    pub open_high_urgent: i64,
}

impl CounterDelta {
    fn minus(self, other: Self) -> Self {
        Self {
            open: self.open - other.open,
            total: self.total - other.total,
            open_high_urgent: self.open_high_urgent - other.open_high_urgent,
        }
    }

    /// Whether nothing changes.
    pub fn is_zero(&self) -> bool {
        *self == Self::default()
    }
}

/// The "current" figures of an account: never negative.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Counters {
    /// Unsolved tickets, any priority (`open_tickets`).
    pub open: u64,
    /// Tickets that exist, any status (`total_tickets`).
    pub total: u64,
    /// Unsolved high/urgent tickets (`open_high_urgent_tickets`).
    pub open_high_urgent: u64,
}

impl Counters {
    /// These counters changed by `delta`, all or nothing; an error signals drift.
    pub fn apply(&mut self, delta: CounterDelta) -> Result<(), MetricsError> {
        let next = Self {
            open: apply_signed(self.open, delta.open, "open_tickets")?,
            total: apply_signed(self.total, delta.total, "total_tickets")?,
            open_high_urgent: apply_signed(
                self.open_high_urgent,
                delta.open_high_urgent,
                "open_high_urgent_tickets",
            )?,
        };
        *self = next;
        Ok(())
    }

    /// These counters changed by `delta`: exact when possible, else clamped with the drift found.
    pub fn apply_checked(self, delta: CounterDelta) -> Checked<Self> {
        let mut exact = self;
        Checked::of(exact.apply(delta).map(|()| exact), || Self {
            open: apply_signed_clamped(self.open, delta.open),
            total: apply_signed_clamped(self.total, delta.total),
            open_high_urgent: apply_signed_clamped(self.open_high_urgent, delta.open_high_urgent),
        })
    }
}

/// What one ticket adds to its account's rollup.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Contribution {
    counters: CounterDelta,
    created: Option<(Day, TicketDayDelta)>,
}

impl Contribution {
    /// The contribution of `ticket` as it is now; nothing when deleted or gone.
    pub fn of(ticket: &TicketFacts) -> Self {
        if !ticket.exists() {
            return Self::default();
        }
        let unsolved = ticket.status.is_unsolved();
        let high_urgent = ticket.priority.is_high_or_urgent();
        Self {
            counters: CounterDelta {
                open: i64::from(unsolved),
                total: 1,
                open_high_urgent: i64::from(unsolved && high_urgent),
            },
            created: Some((
                Day::of(ticket.created_at),
                TicketDayDelta {
                    created: 1,
                    high_urgent_created: i64::from(high_urgent),
                },
            )),
        }
    }

    /// The delta that adds this contribution to an account (a new ticket, or the new account).
    pub fn added(&self) -> Delta {
        Delta::between(&Self::default(), self)
    }

    /// The delta that removes it (a deleted ticket, or the account the ticket left).
    pub fn removed(&self) -> Delta {
        Delta::between(self, &Self::default())
    }
}

/// The exact change of one account's rollup when a ticket changes: `new - old`.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Delta {
    /// Change of the current counters.
    pub counters: CounterDelta,
    /// Change of the creation day buckets.
    pub days: DayDeltas<TicketDayDelta>,
}

impl Delta {
    /// `new - old` within one account.
    pub fn between(old: &Contribution, new: &Contribution) -> Self {
        Self {
            counters: new.counters.minus(old.counters),
            days: DayDeltas::between(old.created, new.created),
        }
    }
}

/// What one rating adds to its ticket's account: a good or bad rating on the day it was given.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct RatingContribution {
    given: Option<(Day, RatingDayDelta)>,
}

impl RatingContribution {
    /// The contribution of `rating` on `ticket` (its current priority decides "high/urgent").
    ///
    /// A rating counts on the UTC day of its `updated_at` (when the score was given). It counts
    /// nowhere when it is neither good nor bad (`offered`, `unoffered`, unknown scores), when
    /// its ticket is unknown, deleted or gone. When the ticket's priority changes, the caller
    /// recomputes this for the ticket's ratings too.
    pub fn of(rating: &RatingFacts, ticket: Option<&TicketFacts>) -> Self {
        let Some(ticket) = ticket.filter(|ticket| ticket.exists()) else {
            return Self::default();
        };
        let good = i64::from(rating.score.is_good());
        let bad = i64::from(rating.score.is_bad());
        if good == 0 && bad == 0 {
            return Self::default();
        }
        let high_urgent = i64::from(ticket.priority.is_high_or_urgent());
        Self {
            given: Some((
                Day::of(rating.updated_at),
                RatingDayDelta {
                    good,
                    bad,
                    high_urgent_good: good * high_urgent,
                    high_urgent_bad: bad * high_urgent,
                },
            )),
        }
    }

    /// The delta that adds this contribution to an account.
    pub fn added(&self) -> RatingDelta {
        RatingDelta::between(&Self::default(), self)
    }

    /// The delta that removes it from an account.
    pub fn removed(&self) -> RatingDelta {
        RatingDelta::between(self, &Self::default())
    }
}

/// The exact change of one account's satisfaction buckets when a rating (or its ticket) changes.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct RatingDelta {
    /// Change of the satisfaction day buckets.
    pub days: DayDeltas<RatingDayDelta>,
}

impl RatingDelta {
    /// `new - old` within one account.
    pub fn between(old: &RatingContribution, new: &RatingContribution) -> Self {
        Self {
            days: DayDeltas::between(old.given, new.given),
        }
    }
}

#[cfg(test)]
mod test_model;

#[cfg(test)]
mod tests {
    use super::test_model::*;
    use super::*;
    use chrono::TimeZone;

    fn at(y: i32, mo: u32, d: u32, h: u32, mi: u32, s: u32) -> DateTime<Utc> {
        Utc.with_ymd_and_hms(y, mo, d, h, mi, s)
            .single()
            .expect("valid time")
    }

    fn ticket(
        id: u64,
        status: Status,
        priority: Priority,
        created_at: DateTime<Utc>,
    ) -> TicketFacts {
        TicketFacts {
            id,
            status,
            priority,
            created_at,
            updated_at: created_at,
            reopens: 0,
            solved_at: None,
            gone: false,
        }
    }

    fn rating(id: u64, ticket_id: u64, score: RatingScore, given: DateTime<Utc>) -> RatingFacts {
        RatingFacts {
            id,
            ticket_id,
            score,
            created_at: given,
            updated_at: given,
        }
    }

    fn tf(days: u32) -> Timeframe {
        Timeframe::from_days(days).expect("valid timeframe")
    }

    #[test]
    fn timeframe_accepts_only_the_listed_days() {
        for days in [7, 14, 30, 90, 180] {
            assert_eq!(tf(days).days(), days);
        }
        for days in [0, 1, 6, 8, 31, 365] {
            assert_eq!(
                Timeframe::from_days(days),
                Err(MetricsError::InvalidTimeframe { days })
            );
        }
    }

    #[test]
    fn window_covers_x_utc_days_ending_today_with_exact_edges() {
        let now = at(2024, 3, 10, 15, 0, 0);
        let window = tf(7).window(now);
        assert_eq!(window.start().to_string(), "2024-03-04");
        assert_eq!(window.end().to_string(), "2024-03-10");
        let mut rollup = AccountRollup::default();
        let created = [
            at(2024, 3, 3, 23, 59, 59),  // last second of today - 7: outside
            at(2024, 3, 4, 0, 0, 0),     // first second of today - 6: inside
            at(2024, 3, 10, 15, 0, 0),   // now: inside
            at(2024, 3, 10, 23, 59, 59), // later today (skew): inside
            at(2024, 3, 11, 0, 0, 0),    // tomorrow (skew): outside
        ];
        for (id, created_at) in (1..).zip(created) {
            let facts = ticket(id, Status::Open, Priority::Urgent, created_at);
            rollup
                .apply_ticket(&Contribution::of(&facts).added())
                .expect("apply");
        }
        let week = rollup.metrics(now, tf(7)).expect("metrics");
        assert_eq!(week.created.created, 3);
        assert_eq!(week.created.high_urgent_created, 3);
        assert_eq!(week.counters.open, 5);
        assert_eq!(week.counters.total, 5);
        // One more day of timeframe takes in the 23:59:59 ticket of 2024-03-03.
        let fortnight = rollup.metrics(now, tf(14)).expect("metrics");
        assert_eq!(fortnight.created.created, 4);
        // At midnight the window moves: 2024-03-04 drops out a day later.
        let next_week = rollup
            .metrics(at(2024, 3, 11, 0, 0, 0), tf(7))
            .expect("metrics");
        assert_eq!(next_week.created.created, 3);
        assert_eq!(
            window_sum(&rollup.created, at(2024, 3, 11, 0, 0, 0), tf(7))
                .expect("sum")
                .created,
            3
        );
    }

    #[test]
    fn contribution_counts_current_figures_and_the_creation_day() {
        let day = at(2024, 1, 2, 8, 0, 0);
        let cases = [
            (Status::New, Priority::None, (1, 1, 0), (1, 0)),
            (Status::Hold, Priority::High, (1, 1, 1), (1, 1)),
            (Status::Pending, Priority::Normal, (1, 1, 0), (1, 0)),
            (Status::Solved, Priority::Urgent, (0, 1, 0), (1, 1)),
            (Status::Closed, Priority::Low, (0, 1, 0), (1, 0)),
            (Status::Deleted, Priority::Urgent, (0, 0, 0), (0, 0)),
        ];
        for (status, priority, (open, total, open_hu), (created, hu_created)) in cases {
            let mut rollup = AccountRollup::default();
            let facts = ticket(1, status, priority, day);
            rollup
                .apply_ticket(&Contribution::of(&facts).added())
                .expect("apply");
            assert_eq!(
                rollup.counters,
                Counters {
                    open,
                    total,
                    open_high_urgent: open_hu
                },
                "{status:?} {priority:?}"
            );
            assert_eq!(
                rollup.created.get(Day::of(day)),
                TicketDayCounts {
                    created,
                    high_urgent_created: hu_created
                }
            );
        }
        let mut gone = ticket(2, Status::Open, Priority::Urgent, day);
        gone.gone = true;
        assert_eq!(Contribution::of(&gone), Contribution::default());
        assert!(Contribution::of(&gone).added().is_empty());
    }

    #[test]
    fn deltas_move_a_ticket_exactly() {
        let created = at(2024, 5, 1, 12, 0, 0);
        let mut account_a = AccountRollup::default();
        let mut account_b = AccountRollup::default();
        let v1 = ticket(7, Status::Open, Priority::Normal, created);
        account_a
            .apply_ticket(&Contribution::of(&v1).added())
            .expect("add");

        // Raised to urgent: same day, one more high/urgent created and open.
        let v2 = TicketFacts {
            priority: Priority::Urgent,
            ..v1.clone()
        };
        let delta = Delta::between(&Contribution::of(&v1), &Contribution::of(&v2));
        assert_eq!(
            delta.counters,
            CounterDelta {
                open: 0,
                total: 0,
                open_high_urgent: 1
            }
        );
        assert_eq!(
            delta.days.iter().collect::<Vec<_>>(),
            vec![(
                Day::of(created),
                TicketDayDelta {
                    created: 0,
                    high_urgent_created: 1
                }
            )]
        );
        account_a.apply_ticket(&delta).expect("apply");

        // Solved: no longer open.
        let v3 = TicketFacts {
            status: Status::Solved,
            ..v2.clone()
        };
        account_a
            .apply_ticket(&Delta::between(
                &Contribution::of(&v2),
                &Contribution::of(&v3),
            ))
            .expect("apply");
        assert_eq!(
            account_a.counters,
            Counters {
                open: 0,
                total: 1,
                open_high_urgent: 0
            }
        );

        // Moves to account B: removed from A, added to B.
        account_a
            .apply_ticket(&Contribution::of(&v3).removed())
            .expect("remove");
        account_b
            .apply_ticket(&Contribution::of(&v3).added())
            .expect("add");
        assert_eq!(account_a, AccountRollup::default());
        assert_eq!(account_b.counters.total, 1);
        assert_eq!(
            account_b.created.get(Day::of(created)).high_urgent_created,
            1
        );

        // A changed created_at moves the day bucket (two days in one delta).
        let v4 = TicketFacts {
            created_at: at(2024, 5, 3, 0, 0, 0),
            ..v3.clone()
        };
        let moved = Delta::between(&Contribution::of(&v3), &Contribution::of(&v4));
        assert_eq!(moved.days.iter().count(), 2);
        account_b.apply_ticket(&moved).expect("apply");
        assert_eq!(
            account_b.created.get(Day::of(created)),
            TicketDayCounts::default()
        );
        assert_eq!(account_b.created.iter().count(), 1);

        // Deleted: contributes nothing anymore.
        let v5 = TicketFacts {
            status: Status::Deleted,
            ..v4.clone()
        };
        account_b
            .apply_ticket(&Delta::between(
                &Contribution::of(&v4),
                &Contribution::of(&v5),
            ))
            .expect("apply");
        assert_eq!(account_b, AccountRollup::default());
    }

    #[test]
    fn underflow_is_an_error_that_changes_nothing() {
        let facts = ticket(1, Status::Open, Priority::High, at(2024, 1, 1, 0, 0, 0));
        let mut rollup = AccountRollup::default();
        assert_eq!(
            rollup.apply_ticket(&Contribution::of(&facts).removed()),
            Err(MetricsError::Underflow {
                counter: "open_tickets"
            })
        );
        assert_eq!(rollup, AccountRollup::default());

        // Counters fine but the day bucket is missing: nothing applied either.
        rollup.counters = Counters {
            open: 1,
            total: 1,
            open_high_urgent: 1,
        };
        assert_eq!(
            rollup.apply_ticket(&Contribution::of(&facts).removed()),
            Err(MetricsError::Underflow { counter: "created" })
        );
        assert_eq!(rollup.counters.total, 1);

        let mut counters = Counters {
            open: u64::MAX,
            total: 0,
            open_high_urgent: 0,
        };
        assert_eq!(
            counters.apply(CounterDelta {
                open: 1,
                total: 1,
                open_high_urgent: 0
            }),
            Err(MetricsError::Overflow {
                counter: "open_tickets"
            })
        );
        assert_eq!(counters.total, 0);
    }

    #[test]
    fn satisfaction_counts_good_and_bad_in_the_window_only() {
        let now = at(2024, 6, 30, 12, 0, 0);
        let urgent = ticket(1, Status::Solved, Priority::Urgent, at(2024, 6, 1, 0, 0, 0));
        let normal = ticket(2, Status::Solved, Priority::Normal, at(2024, 6, 1, 0, 0, 0));
        let mut rollup = AccountRollup::default();
        let ratings = [
            (
                rating(10, 1, RatingScore::Good, at(2024, 6, 29, 0, 0, 0)),
                &urgent,
            ),
            (
                rating(11, 1, RatingScore::BadWithComment, at(2024, 6, 28, 0, 0, 0)),
                &urgent,
            ),
            (
                rating(
                    12,
                    2,
                    RatingScore::GoodWithComment,
                    at(2024, 6, 27, 0, 0, 0),
                ),
                &normal,
            ),
            (
                rating(13, 2, RatingScore::Good, at(2024, 6, 26, 0, 0, 0)),
                &normal,
            ),
            (
                rating(14, 2, RatingScore::Offered, at(2024, 6, 29, 0, 0, 0)),
                &normal,
            ),
            (
                rating(15, 2, RatingScore::Unoffered, at(2024, 6, 29, 0, 0, 0)),
                &normal,
            ),
            (
                rating(16, 2, RatingScore::Other, at(2024, 6, 29, 0, 0, 0)),
                &normal,
            ),
            // Given 8 days before today: outside a 7-day window.
            (
                rating(17, 2, RatingScore::Bad, at(2024, 6, 23, 23, 0, 0)),
                &normal,
            ),
        ];
        for (rating, ticket) in &ratings {
            rollup
                .apply_rating(&RatingContribution::of(rating, Some(ticket)).added())
                .expect("apply");
        }
        let week = rollup.metrics(now, tf(7)).expect("metrics");
        assert_eq!(
            week.ratings,
            RatingDayCounts {
                good: 3,
                bad: 1,
                high_urgent_good: 1,
                high_urgent_bad: 1
            }
        );
        assert_eq!(week.satisfaction_score(), Some(75.0));
        assert_eq!(week.satisfaction_score_high_urgent(), Some(50.0));
        let fortnight = rollup.metrics(now, tf(14)).expect("metrics");
        assert_eq!(fortnight.satisfaction_score(), Some(60.0));

        // No good or bad ratings in the window: no score.
        let later = rollup
            .metrics(at(2025, 1, 1, 0, 0, 0), tf(7))
            .expect("metrics");
        assert_eq!(later.satisfaction_score(), None);
        assert_eq!(later.satisfaction_score_high_urgent(), None);

        // Bad -> good moves the rating's contribution; no ticket or a deleted one: nothing.
        let (bad, _) = &ratings[1];
        let now_good = RatingFacts {
            score: RatingScore::Good,
            ..bad.clone()
        };
        let delta = RatingDelta::between(
            &RatingContribution::of(bad, Some(&urgent)),
            &RatingContribution::of(&now_good, Some(&urgent)),
        );
        rollup.apply_rating(&delta).expect("apply");
        let week = rollup.metrics(now, tf(7)).expect("metrics");
        assert_eq!((week.ratings.good, week.ratings.bad), (4, 0));
        assert_eq!(week.satisfaction_score_high_urgent(), Some(100.0));
        assert!(RatingContribution::of(bad, None).added().is_empty());
        let deleted = TicketFacts {
            status: Status::Deleted,
            ..urgent.clone()
        };
        assert!(RatingContribution::of(bad, Some(&deleted))
            .added()
            .is_empty());
    }

    mod exactness {
        use super::*;
        use proptest::prelude::*;
        use std::collections::BTreeMap;

        const ACCOUNTS: u64 = 3;

        #[derive(Debug, Clone)]
        enum Op {
            UpsertTicket {
                id: u64,
                account: u64,
                status: usize,
                priority: usize,
                created_day: i64,
                gone: bool,
            },
            RemoveTicket {
                id: u64,
            },
            UpsertRating {
                id: u64,
                ticket_id: u64,
                score: usize,
                given_day: i64,
            },
        }

        const SCORES: [RatingScore; 7] = [
            RatingScore::Offered,
            RatingScore::Unoffered,
            RatingScore::Good,
            RatingScore::GoodWithComment,
            RatingScore::Bad,
            RatingScore::BadWithComment,
            RatingScore::Other,
        ];

        fn op() -> impl Strategy<Value = Op> {
            prop_oneof![
                4 => (0..8u64, 0..ACCOUNTS, 0..7usize, 0..5usize, 0..40i64, proptest::bool::weighted(0.1))
                    .prop_map(|(id, account, status, priority, created_day, gone)| Op::UpsertTicket {
                        id, account, status, priority, created_day, gone
                    }),
                1 => (0..8u64).prop_map(|id| Op::RemoveTicket { id }),
                3 => (0..6u64, 0..8u64, 0..7usize, 0..40i64)
                    .prop_map(|(id, ticket_id, score, given_day)| Op::UpsertRating {
                        id, ticket_id, score, given_day
                    }),
            ]
        }

        fn base() -> DateTime<Utc> {
            at(2024, 1, 1, 0, 0, 0)
        }

        /// Counters, creation day buckets and rating day buckets, counted from scratch.
        type Recomputed = (
            Counters,
            Vec<(Day, TicketDayCounts)>,
            Vec<(Day, RatingDayCounts)>,
        );

        #[derive(Default)]
        struct Model {
            tickets: BTreeMap<u64, (u64, TicketFacts)>,
            ratings: BTreeMap<u64, RatingFacts>,
            rollups: BTreeMap<u64, AccountRollup>,
        }

        impl Model {
            fn rollup(&mut self, account: u64) -> &mut AccountRollup {
                self.rollups.entry(account).or_default()
            }

            /// Moves every rating of `ticket_id` from its old ticket version to the new one.
            fn move_ratings(
                &mut self,
                ticket_id: u64,
                old: Option<&(u64, TicketFacts)>,
                new: Option<&(u64, TicketFacts)>,
            ) {
                let ratings: Vec<RatingFacts> = self
                    .ratings
                    .values()
                    .filter(|rating| rating.ticket_id == ticket_id)
                    .cloned()
                    .collect();
                for rating in ratings {
                    if let Some((account, facts)) = old {
                        let delta = RatingContribution::of(&rating, Some(facts)).removed();
                        self.rollup(*account)
                            .apply_rating(&delta)
                            .expect("no drift");
                    }
                    if let Some((account, facts)) = new {
                        let delta = RatingContribution::of(&rating, Some(facts)).added();
                        self.rollup(*account)
                            .apply_rating(&delta)
                            .expect("no drift");
                    }
                }
            }

            fn apply(&mut self, op: &Op) {
                match *op {
                    Op::UpsertTicket {
                        id,
                        account,
                        status,
                        priority,
                        created_day,
                        gone,
                    } => {
                        let created_at = base()
                            + chrono::Duration::days(created_day)
                            + chrono::Duration::hours(created_day % 24);
                        let mut facts =
                            ticket(id, Status::ALL[status], Priority::ALL[priority], created_at);
                        facts.gone = gone;
                        let new = (account, facts);
                        let old = self.tickets.insert(id, new.clone());
                        let new_contribution = Contribution::of(&new.1);
                        match &old {
                            Some((old_account, old_facts)) if *old_account == account => {
                                let delta =
                                    Delta::between(&Contribution::of(old_facts), &new_contribution);
                                self.rollup(account).apply_ticket(&delta).expect("no drift");
                            }
                            Some((old_account, old_facts)) => {
                                let removed = Contribution::of(old_facts).removed();
                                self.rollup(*old_account)
                                    .apply_ticket(&removed)
                                    .expect("no drift");
                                self.rollup(account)
                                    .apply_ticket(&new_contribution.added())
                                    .expect("no drift");
                            }
                            None => {
                                self.rollup(account)
                                    .apply_ticket(&new_contribution.added())
                                    .expect("no drift");
                            }
                        }
                        self.move_ratings(id, old.as_ref(), Some(&new));
                    }
                    Op::RemoveTicket { id } => {
                        if let Some(old) = self.tickets.remove(&id) {
                            let removed = Contribution::of(&old.1).removed();
                            self.rollup(old.0).apply_ticket(&removed).expect("no drift");
                            self.move_ratings(id, Some(&old), None);
                        }
                    }
                    Op::UpsertRating {
                        id,
                        ticket_id,
                        score,
                        given_day,
                    } => {
                        let given = base() + chrono::Duration::days(given_day);
                        let new = rating(id, ticket_id, SCORES[score], given);
                        let old = self.ratings.insert(id, new.clone());
                        // The old copy may have rated another ticket.
                        if let Some(old) = old {
                            if let Some((account, facts)) =
                                self.tickets.get(&old.ticket_id).cloned()
                            {
                                let delta = RatingContribution::of(&old, Some(&facts)).removed();
                                self.rollup(account).apply_rating(&delta).expect("no drift");
                            }
                        }
                        if let Some((account, facts)) = self.tickets.get(&ticket_id).cloned() {
                            let delta = RatingContribution::of(&new, Some(&facts)).added();
                            self.rollup(account).apply_rating(&delta).expect("no drift");
                        }
                    }
                }
            }

            /// Recomputes one account's rollup by counting, independently of the delta code.
            fn recompute(&self, account: u64) -> Recomputed {
                let mut counters = Counters::default();
                let mut created: BTreeMap<Day, TicketDayCounts> = BTreeMap::new();
                let mut given: BTreeMap<Day, RatingDayCounts> = BTreeMap::new();
                for (owner, facts) in self.tickets.values() {
                    if *owner != account || facts.gone || facts.status == Status::Deleted {
                        continue;
                    }
                    let unsolved = matches!(
                        facts.status,
                        Status::New | Status::Open | Status::Pending | Status::Hold
                    );
                    let high = matches!(facts.priority, Priority::High | Priority::Urgent);
                    counters.total += 1;
                    counters.open += u64::from(unsolved);
                    counters.open_high_urgent += u64::from(unsolved && high);
                    let day = created.entry(Day::of(facts.created_at)).or_default();
                    day.created += 1;
                    day.high_urgent_created += u64::from(high);
                    for rating in self.ratings.values().filter(|r| r.ticket_id == facts.id) {
                        let good = u64::from(matches!(
                            rating.score,
                            RatingScore::Good | RatingScore::GoodWithComment
                        ));
                        let bad = u64::from(matches!(
                            rating.score,
                            RatingScore::Bad | RatingScore::BadWithComment
                        ));
                        if good + bad == 0 {
                            continue;
                        }
                        let day = given.entry(Day::of(rating.updated_at)).or_default();
                        day.good += good;
                        day.bad += bad;
                        day.high_urgent_good += good * u64::from(high);
                        day.high_urgent_bad += bad * u64::from(high);
                    }
                }
                (
                    counters,
                    created.into_iter().collect(),
                    given.into_iter().collect(),
                )
            }
        }

        proptest! {
            #![proptest_config(ProptestConfig::with_cases(256))]
            #[test]
            fn deltas_equal_recomputation(ops in proptest::collection::vec(op(), 1..80)) {
                let mut model = Model::default();
                for op in &ops {
                    model.apply(op);
                }
                let now = base() + chrono::Duration::days(38) + chrono::Duration::hours(5);
                for account in 0..ACCOUNTS {
                    let rollup = model.rollups.get(&account).cloned().unwrap_or_default();
                    let (counters, created, given) = model.recompute(account);
                    prop_assert_eq!(rollup.counters, counters);
                    prop_assert_eq!(rollup.created.iter().collect::<Vec<_>>(), created);
                    prop_assert_eq!(rollup.ratings.iter().collect::<Vec<_>>(), given.clone());
                    for days in Timeframe::VALID_DAYS {
                        let timeframe = tf(days);
                        let first_day = Day::of(now).minus_days(i64::from(days) - 1);
                        let expected_created = model.tickets.values()
                            .filter(|(owner, facts)| *owner == account && facts.exists()
                                && Day::of(facts.created_at) >= first_day
                                && Day::of(facts.created_at) <= Day::of(now))
                            .count() as u64;
                        let metrics = rollup.metrics(now, timeframe).expect("metrics");
                        prop_assert_eq!(metrics.created.created, expected_created);
                        let expected_good: u64 = given.iter()
                            .filter(|(day, _)| *day >= first_day && *day <= Day::of(now))
                            .map(|(_, counts)| counts.good)
                            .sum();
                        prop_assert_eq!(metrics.ratings.good, expected_good);
                    }
                }
            }
        }
    }
}
