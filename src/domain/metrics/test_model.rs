//! A test model of one account's rollup built on the production algebra (contributions, deltas,
//! checked counters and day tallies): the store keeps the same figures in redb rows, and the model
//! lets the rules be checked alone.
use std::collections::BTreeMap;

use chrono::{DateTime, Utc};

use super::*;

/// The sum of two day buckets (the store adds rows as it reads them).
pub(super) trait Plus: Sized {
    /// `self + other`, an error on overflow.
    fn plus(self, other: Self) -> Result<Self, MetricsError>;
}

/// Implements [`Plus`] field by field, each field's overflow named as the production counters name it.
macro_rules! plus_by_field {
    ($type:ty { $($field:ident: $counter:literal),+ $(,)? }) => {
        impl Plus for $type {
            fn plus(self, other: Self) -> Result<Self, MetricsError> {
                Ok(Self {
                    $($field: add_counts(self.$field, other.$field, $counter)?,)+
                })
            }
        }
    };
}

plus_by_field!(TicketDayCounts {
    created: "created",
    high_urgent_created: "high_urgent_created",
});
plus_by_field!(RatingDayCounts {
    good: "good_ratings",
    bad: "bad_ratings",
    high_urgent_good: "high_urgent_good_ratings",
    high_urgent_bad: "high_urgent_bad_ratings",
});

impl<D: DayDelta> DayDeltas<D> {
    /// Whether no day changes.
    pub(super) fn is_empty(&self) -> bool {
        self.entries.iter().all(Option::is_none)
    }
}

impl Delta {
    /// Whether applying it changes nothing.
    pub(super) fn is_empty(&self) -> bool {
        self.counters.is_zero() && self.days.is_empty()
    }
}

impl RatingDelta {
    /// Whether applying it changes nothing.
    pub(super) fn is_empty(&self) -> bool {
        self.days.is_empty()
    }
}

/// One account's day buckets; days whose counts are all zero are not kept.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) struct DayBuckets<T: DayTally> {
    days: BTreeMap<Day, T>,
}

impl<T: DayTally> Default for DayBuckets<T> {
    fn default() -> Self {
        Self {
            days: BTreeMap::new(),
        }
    }
}

impl<T: DayTally> DayBuckets<T> {
    /// Applies day deltas, all or nothing; an error (underflow signals drift) changes nothing.
    pub(super) fn apply(&mut self, deltas: &DayDeltas<T::Delta>) -> Result<(), MetricsError> {
        let mut updated: [Option<(Day, T)>; 2] = [None, None];
        for (slot, (day, delta)) in updated.iter_mut().zip(deltas.iter()) {
            let current = self.days.get(&day).copied().unwrap_or_default();
            *slot = Some((day, current.apply(delta)?));
        }
        for (day, counts) in updated.into_iter().flatten() {
            if counts.is_zero() {
                self.days.remove(&day);
            } else {
                self.days.insert(day, counts);
            }
        }
        Ok(())
    }

    /// The counts of one day (zero when absent).
    pub(super) fn get(&self, day: Day) -> T {
        self.days.get(&day).copied().unwrap_or_default()
    }

    /// Every kept day with its counts, oldest first.
    pub(super) fn iter(&self) -> impl Iterator<Item = (Day, T)> + '_ {
        self.days.iter().map(|(day, counts)| (*day, *counts))
    }
}

/// The counts over the last `timeframe` days at `now` (see [`Timeframe::window`] for the edges).
pub(super) fn window_sum<T: DayTally + Plus>(
    buckets: &DayBuckets<T>,
    now: DateTime<Utc>,
    timeframe: Timeframe,
) -> Result<T, MetricsError> {
    sum_days(buckets.days.range(timeframe.window(now)).map(|(_, c)| *c))
}

/// Sums day buckets, e.g. the rows a store range scan over [`Timeframe::window`] returns.
pub(super) fn sum_days<T: DayTally + Plus>(
    days: impl IntoIterator<Item = T>,
) -> Result<T, MetricsError> {
    days.into_iter().try_fold(T::default(), Plus::plus)
}

/// Everything one account's metrics are read from.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub(super) struct AccountRollup {
    /// The current figures.
    pub(super) counters: Counters,
    /// Tickets created per UTC day.
    pub(super) created: DayBuckets<TicketDayCounts>,
    /// Good/bad ratings given per UTC day.
    pub(super) ratings: DayBuckets<RatingDayCounts>,
}

/// The metric figures of one account for one timeframe.
#[derive(Debug, Clone, Copy, PartialEq)]
pub(super) struct WindowMetrics {
    /// The current counters.
    pub(super) counters: Counters,
    /// Tickets created in the window.
    pub(super) created: TicketDayCounts,
    /// Good and bad ratings given in the window.
    pub(super) ratings: RatingDayCounts,
}

impl WindowMetrics {
    /// `satisfaction_score`: `None` when no good or bad rating was given in the window.
    pub(super) fn satisfaction_score(&self) -> Option<f64> {
        self.ratings.score()
    }

    /// `satisfaction_score_high_urgent`.
    pub(super) fn satisfaction_score_high_urgent(&self) -> Option<f64> {
        self.ratings.score_high_urgent()
    }
}

impl AccountRollup {
    /// Applies a ticket delta to this account, all or nothing.
    pub(super) fn apply_ticket(&mut self, delta: &Delta) -> Result<(), MetricsError> {
        let mut counters = self.counters;
        counters.apply(delta.counters)?;
        self.created.apply(&delta.days)?;
        self.counters = counters;
        Ok(())
    }

    /// Applies a rating delta to this account.
    pub(super) fn apply_rating(&mut self, delta: &RatingDelta) -> Result<(), MetricsError> {
        self.ratings.apply(&delta.days)
    }

    /// The figures for `timeframe` at `now`.
    pub(super) fn metrics(
        &self,
        now: DateTime<Utc>,
        timeframe: Timeframe,
    ) -> Result<WindowMetrics, MetricsError> {
        Ok(WindowMetrics {
            counters: self.counters,
            created: window_sum(&self.created, now, timeframe)?,
            ratings: window_sum(&self.ratings, now, timeframe)?,
        })
    }
}

fn add_counts(a: u64, b: u64, counter: &'static str) -> Result<u64, MetricsError> {
    a.checked_add(b).ok_or(MetricsError::Overflow { counter })
}
