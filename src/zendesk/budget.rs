//! Client-side request budgets: one token bucket per endpoint class.
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

/// A token bucket that refills `per_minute` tokens per window (a minute, as Zendesk counts) and holds at most
/// `per_minute`.
///
/// Taking a token never fails: it reserves the next free slot and says how long to wait for it,
/// so concurrent callers queue in order and a test sleeper that returns at once still sees the
/// waits a real clock would impose.
#[derive(Debug)]
pub struct TokenBucket {
    per_minute: Option<u32>,
    /// Seconds of one window: 60, or shorter against a simulator whose windows are.
    window_secs: f64,
    state: Mutex<BucketState>,
}

#[derive(Debug)]
struct BucketState {
    tokens: f64,
    updated: Instant,
}

impl TokenBucket {
    /// A full bucket for `per_minute` requests a minute; `None` or 0 means no budget at all.
    pub fn new(per_minute: Option<u32>) -> Self {
        Self::with_window(per_minute, super::account_limit::WINDOW)
    }

    /// A full bucket for `per_window` requests per `window` (a zero window counts as one second).
    pub fn with_window(per_window: Option<u32>, window: Duration) -> Self {
        let per_minute = per_window.filter(|rate| *rate > 0);
        Self {
            per_minute,
            window_secs: if window.is_zero() {
                1.0
            } else {
                window.as_secs_f64()
            },
            state: Mutex::new(BucketState {
                tokens: per_minute.map_or(0.0, f64::from),
                updated: Instant::now(),
            }),
        }
    }

    /// Takes one token and returns how long the caller must wait before sending.
    pub fn reserve(&self) -> Duration {
        let Some(per_minute) = self.per_minute else {
            return Duration::ZERO;
        };
        let capacity = f64::from(per_minute);
        let per_second = capacity / self.window_secs;
        let mut state = self.state.lock().unwrap_or_else(PoisonError::into_inner);
        let now = Instant::now();
        let elapsed = now.saturating_duration_since(state.updated).as_secs_f64();
        state.tokens = (state.tokens + elapsed * per_second).min(capacity);
        state.updated = now;
        state.tokens -= 1.0;
        if state.tokens >= 0.0 {
            Duration::ZERO
        } else {
            Duration::from_secs_f64(-state.tokens / per_second)
        }
    }

    /// Requests the bucket allows now without waiting (0 when callers queue); `None` without a budget.
    pub fn remaining(&self) -> Option<f64> {
        let per_minute = f64::from(self.per_minute?);
        let state = self.state.lock().unwrap_or_else(PoisonError::into_inner);
        let elapsed = Instant::now()
            .saturating_duration_since(state.updated)
            .as_secs_f64();
        Some((state.tokens + elapsed * per_minute / self.window_secs).clamp(0.0, per_minute))
    }

    /// Empties the bucket, after Zendesk said 429, so the next requests do not burst.
    pub fn drain(&self) {
        if self.per_minute.is_some() {
            let mut state = self.state.lock().unwrap_or_else(PoisonError::into_inner);
            state.tokens = state.tokens.min(0.0);
        }
    }
}

/// The budgets of both endpoint classes.
#[derive(Debug)]
pub struct Budgets {
    export: TokenBucket,
    other: TokenBucket,
}

impl Budgets {
    /// Budgets for the export class and for everything else, each refilled per `window`.
    pub fn new(
        export_per_minute: Option<u32>,
        other_per_minute: Option<u32>,
        window: Duration,
    ) -> Self {
        Self {
            export: TokenBucket::with_window(export_per_minute, window),
            other: TokenBucket::with_window(other_per_minute, window),
        }
    }

    /// The bucket of `class`.
    pub fn bucket(&self, class: EndpointClass) -> &TokenBucket {
        match class {
            EndpointClass::Export => &self.export,
            EndpointClass::Other => &self.other,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn burst_then_one_slot_per_interval() {
        let bucket = TokenBucket::new(Some(10));
        for _ in 0..10 {
            assert_eq!(bucket.reserve(), Duration::ZERO);
        }
        let first_wait = bucket.reserve();
        assert!(first_wait > Duration::from_millis(5900) && first_wait <= Duration::from_secs(6));
        let second_wait = bucket.reserve();
        assert!(
            second_wait > Duration::from_millis(11900) && second_wait <= Duration::from_secs(12)
        );
    }

    #[test]
    fn zero_or_none_is_unlimited() {
        for budget in [None, Some(0)] {
            let bucket = TokenBucket::new(budget);
            for _ in 0..1000 {
                assert_eq!(bucket.reserve(), Duration::ZERO);
            }
        }
    }

    #[test]
    fn a_shorter_window_refills_as_much_sooner() {
        let bucket = TokenBucket::with_window(Some(10), Duration::from_secs(1));
        for _ in 0..10 {
            assert_eq!(bucket.reserve(), Duration::ZERO);
        }
        let wait = bucket.reserve();
        assert!(wait > Duration::from_millis(90) && wait <= Duration::from_millis(100));
    }

    #[test]
    fn drain_stops_the_burst() {
        let bucket = TokenBucket::new(Some(60));
        bucket.drain();
        assert!(bucket.reserve() > Duration::from_millis(900));
    }
}
