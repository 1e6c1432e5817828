//! Client-side request budgets: one rolling window per endpoint class.
use std::collections::VecDeque;
use std::sync::{Mutex, PoisonError};
use std::time::{Duration, Instant};

/// Which budget a request draws from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum EndpointClass {
    /// `/api/v2/incremental/...`: Zendesk allows 10 requests per minute.
    Export,
    /// Every other endpoint (lists, `users/me`, the token endpoint).
    Other,
}

/// A rolling window: at most `per_minute` requests in any window (a minute, as Zendesk counts).
///
/// A token bucket of that size lets up to twice as many through one of Zendesk's windows (its burst,
/// then its refill), and the incremental exports' limit answered the excess with 429s (the
/// `first_sync_budget` bench saw 18 of 504 export requests refused). The window keeps the send times of
/// the last `per_minute` requests: the next one goes once the oldest of them is a window old (and a little more).
///
/// Taking a slot never fails: it reserves the next free slot and says how long to wait for it,
/// so concurrent callers queue in order and a test sleeper that returns at once still sees the
/// waits a real clock would impose.
#[derive(Debug)]
pub struct RequestWindow {
    per_minute: Option<u32>,
    /// One window: a minute, or shorter against a simulator whose windows are.
    window: Duration,
    /// When the last `per_minute` requests go (or went), oldest first; some may be in the future.
    slots: Mutex<VecDeque<Instant>>,
}

impl RequestWindow {
    /// A window for `per_minute` requests a minute; `None` or 0 means no budget at all.
    pub fn new(per_minute: Option<u32>) -> Self {
        Self::with_window(per_minute, super::account_limit::WINDOW)
    }

    /// A budget of `per_window` requests per `window` (a zero window counts as one second).
    pub fn with_window(per_window: Option<u32>, window: Duration) -> Self {
        let per_minute = per_window.filter(|rate| *rate > 0);
        Self {
            per_minute,
            window: if window.is_zero() {
                Duration::from_secs(1)
            } else {
                window
            },
            slots: Mutex::new(VecDeque::new()),
        }
    }

    /// Added to a window before the next request: requests reach Zendesk a varying time after they
    /// leave, and one a window after the oldest can arrive in that one's window (the bench saw one 429
    /// in 487 export requests without it). 2 % of the window: 1.2 s of Zendesk's minute.
    fn margin(&self) -> Duration {
        self.window / 50
    }

    /// Takes one slot and returns how long the caller must wait before sending.
    pub fn reserve(&self) -> Duration {
        let Some(per_minute) = self.per_minute else {
            return Duration::ZERO;
        };
        let limit = usize::try_from(per_minute).unwrap_or(usize::MAX);
        let now = Instant::now();
        let mut slots = self.slots.lock().unwrap_or_else(PoisonError::into_inner);
        let slot = match slots.front() {
            Some(oldest) if slots.len() >= limit => {
                (*oldest + self.window + self.margin()).max(now)
            }
            _ => now,
        };
        // Slots only move forward, so the oldest kept is the one the next caller waits for.
        let slot = slots.back().map_or(slot, |last| slot.max(*last));
        slots.push_back(slot);
        while slots.len() > limit {
            slots.pop_front();
        }
        slot.saturating_duration_since(now)
    }

    /// Requests the window allows now without waiting (0 when callers queue); `None` without a budget.
    pub fn remaining(&self) -> Option<f64> {
        let per_minute = self.per_minute?;
        let now = Instant::now();
        let slots = self.slots.lock().unwrap_or_else(PoisonError::into_inner);
        let taken = slots
            .iter()
            .filter(|slot| **slot + self.window > now)
            .count();
        let taken = u32::try_from(taken).unwrap_or(u32::MAX);
        Some(f64::from(per_minute.saturating_sub(taken)))
    }

    /// After Zendesk said 429: the window is spent, so the next request waits one request's share of
    /// it (Zendesk's `Retry-After` is waited as well) and the following ones do not burst before it.
    pub fn drain(&self) {
        let Some(per_minute) = self.per_minute else {
            return;
        };
        let now = Instant::now();
        let share = self.window / per_minute;
        let mut slots = self.slots.lock().unwrap_or_else(PoisonError::into_inner);
        let latest = slots.back().copied().unwrap_or(now).max(now);
        // Every slot of the window taken at once, a window less one share ago.
        let taken = (latest + share)
            .checked_sub(self.window + self.margin())
            .unwrap_or(latest);
        slots.clear();
        slots.extend(std::iter::repeat_n(
            taken,
            usize::try_from(per_minute).unwrap_or(usize::MAX),
        ));
    }
}

/// The budgets of both endpoint classes.
#[derive(Debug)]
pub struct Budgets {
    export: RequestWindow,
    other: RequestWindow,
}

impl Budgets {
    /// Budgets for the export class and for everything else, each refilled per `window`.
    pub fn new(
        export_per_minute: Option<u32>,
        other_per_minute: Option<u32>,
        window: Duration,
    ) -> Self {
        Self {
            export: RequestWindow::with_window(export_per_minute, window),
            other: RequestWindow::with_window(other_per_minute, window),
        }
    }

    /// The budget of `class`.
    pub fn bucket(&self, class: EndpointClass) -> &RequestWindow {
        match class {
            EndpointClass::Export => &self.export,
            EndpointClass::Other => &self.other,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The waits of `count` reservations made now.
    fn sends(bucket: &RequestWindow, count: usize) -> Vec<Duration> {
        (0..count).map(|_| bucket.reserve()).collect()
    }

    #[test]
    fn a_window_of_requests_at_once_then_the_next_when_the_first_is_a_window_old() {
        let bucket = RequestWindow::new(Some(10));
        let waits = sends(&bucket, 12);
        assert!(waits[..10].iter().all(Duration::is_zero), "{waits:?}");
        for wait in &waits[10..] {
            assert!(
                *wait > Duration::from_millis(61_100) && *wait <= Duration::from_millis(61_200),
                "{waits:?}"
            );
        }
        assert_eq!(bucket.remaining(), Some(0.0));
    }

    #[test]
    fn no_window_ever_holds_more_than_the_limit() {
        let bucket = RequestWindow::with_window(Some(10), Duration::from_secs(1));
        let started = Instant::now();
        let slots: Vec<Instant> = (0..45)
            .map(|_| {
                let wait = bucket.reserve();
                Instant::now() + wait
            })
            .collect();
        // Each slot was read a little after it was taken: allow for that.
        let reading = started.elapsed();
        for (first, eleventh) in slots.iter().zip(&slots[10..]) {
            assert!(
                *eleventh + reading >= *first + Duration::from_secs(1),
                "{first:?} .. {eleventh:?}"
            );
        }
        let waits: Vec<Duration> = slots.iter().map(|slot| *slot - started).collect();
        assert!(
            waits[44] <= Duration::from_millis(4_080) + reading,
            "and the pace is the limit's: {:?}",
            waits[44]
        );
    }

    #[test]
    fn zero_or_none_is_unlimited() {
        for budget in [None, Some(0)] {
            let bucket = RequestWindow::new(budget);
            for _ in 0..1000 {
                assert_eq!(bucket.reserve(), Duration::ZERO);
            }
            assert_eq!(bucket.remaining(), None);
        }
    }

    #[test]
    fn drain_waits_one_share_and_stops_the_burst() {
        let bucket = RequestWindow::new(Some(60));
        assert_eq!(bucket.remaining(), Some(60.0));
        bucket.drain();
        let waits = sends(&bucket, 2);
        for wait in waits {
            assert!(
                wait > Duration::from_millis(900) && wait <= Duration::from_secs(1),
                "{wait:?}"
            );
        }
    }
}
