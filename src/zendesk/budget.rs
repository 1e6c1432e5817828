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

/// A token bucket that refills `per_minute` tokens a minute and holds at most `per_minute`.
///
/// Taking a token never fails: it reserves the next free slot and says how long to wait for it,
/// so concurrent callers queue in order and a test sleeper that returns at once still sees the
/// waits a real clock would impose.
#[derive(Debug)]
pub struct TokenBucket {
    per_minute: Option<u32>,
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
        let per_minute = per_minute.filter(|rate| *rate > 0);
        Self {
            per_minute,
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
        let per_second = capacity / 60.0;
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
        Some((state.tokens + elapsed * per_minute / 60.0).clamp(0.0, per_minute))
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
    /// Budgets for the export class and for everything else.
    pub fn new(export_per_minute: Option<u32>, other_per_minute: Option<u32>) -> Self {
        Self {
            export: TokenBucket::new(export_per_minute),
            other: TokenBucket::new(other_per_minute),
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
    fn drain_stops_the_burst() {
        let bucket = TokenBucket::new(Some(60));
        bucket.drain();
        assert!(bucket.reserve() > Duration::from_millis(900));
    }
}
