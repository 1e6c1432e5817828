//! Waiting: the injectable sleeper, backoff with full jitter, and `Retry-After` parsing.
use std::future::Future;
use std::pin::Pin;
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use rand::Rng;

/// A boxed future, as the object-safe traits of this module return.
pub type BoxFuture<'a, T> = Pin<Box<dyn Future<Output = T> + Send + 'a>>;

/// Waits for a duration. The client waits only through this, so tests can record the waits.
pub trait Sleeper: Send + Sync + std::fmt::Debug {
    /// Completes after `duration` (or, for test sleepers, at once).
    fn sleep(&self, duration: Duration) -> BoxFuture<'_, ()>;
}

/// The real sleeper: `tokio::time::sleep`.
#[derive(Debug, Default, Clone, Copy)]
pub struct TokioSleeper;

impl Sleeper for TokioSleeper {
    fn sleep(&self, duration: Duration) -> BoxFuture<'_, ()> {
        Box::pin(tokio::time::sleep(duration))
    }
}

/// A sleeper for tests: returns at once and records every duration it was asked to wait.
#[derive(Debug, Default, Clone)]
pub struct RecordingSleeper {
    waits: Arc<Mutex<Vec<Duration>>>,
}

impl RecordingSleeper {
    /// A sleeper with no recorded waits.
    pub fn new() -> Self {
        Self::default()
    }

    /// Every duration asked so far, in order.
    pub fn waits(&self) -> Vec<Duration> {
        self.waits
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .clone()
    }
}

impl Sleeper for RecordingSleeper {
    fn sleep(&self, duration: Duration) -> BoxFuture<'_, ()> {
        self.waits
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .push(duration);
        Box::pin(std::future::ready(()))
    }
}

/// Capped exponential backoff with full jitter: a uniform wait in
/// `0..=min(cap, base * 2^(attempt - 1))`, so many clients retrying at once spread out.
pub fn backoff_with_jitter(attempt: u32, base: Duration, cap: Duration) -> Duration {
    let exponent = attempt.saturating_sub(1).min(31);
    let ceiling = base.saturating_mul(1u32 << exponent).min(cap);
    let ceiling_ms = u64::try_from(ceiling.as_millis()).unwrap_or(u64::MAX);
    Duration::from_millis(rand::rng().random_range(0..=ceiling_ms))
}

/// The wait a `Retry-After` header value asks for: whole seconds (Zendesk's form) or an HTTP date.
pub fn parse_retry_after(value: &str, now: chrono::DateTime<chrono::Utc>) -> Option<Duration> {
    let trimmed = value.trim();
    if let Ok(seconds) = trimmed.parse::<u64>() {
        return Some(Duration::from_secs(seconds));
    }
    if let Ok(seconds) = trimmed.parse::<f64>() {
        if seconds.is_finite() && seconds >= 0.0 {
            // Too large for a Duration (2^64 s and up) is as good as "forever": the caller refuses
            // a wait past its `max_retry_after` either way, so it must not panic here.
            return Some(Duration::try_from_secs_f64(seconds).unwrap_or(Duration::MAX));
        }
    }
    let date = chrono::DateTime::parse_from_rfc2822(trimmed).ok()?;
    let delta = date.with_timezone(&chrono::Utc) - now;
    Some(delta.to_std().unwrap_or(Duration::ZERO))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn huge_retry_after_values_do_not_panic() {
        let now = chrono::Utc::now();
        for value in [
            "18446744073709551616",
            "99999999999999999999",
            "18446744073709551615.5",
            "1e300",
        ] {
            assert_eq!(
                parse_retry_after(value, now),
                Some(Duration::MAX),
                "{value}"
            );
        }
        assert_eq!(
            parse_retry_after("2.5", now),
            Some(Duration::from_millis(2500))
        );
    }

    #[test]
    fn backoff_stays_under_the_capped_ceiling() {
        let base = Duration::from_millis(100);
        let cap = Duration::from_secs(1);
        for attempt in 1..40 {
            let ceiling = (base * 2u32.pow(attempt.min(20) - 1)).min(cap);
            for _ in 0..50 {
                assert!(backoff_with_jitter(attempt, base, cap) <= ceiling);
            }
        }
    }

    #[test]
    fn retry_after_forms() {
        let now = chrono::DateTime::parse_from_rfc3339("2023-09-10T02:18:50Z")
            .map(|d| d.with_timezone(&chrono::Utc))
            .unwrap_or_default();
        assert_eq!(parse_retry_after("10", now), Some(Duration::from_secs(10)));
        assert_eq!(
            parse_retry_after(" 1.5 ", now),
            Some(Duration::from_millis(1500))
        );
        assert_eq!(
            parse_retry_after("Sun, 10 Sep 2023 02:19:00 GMT", now),
            Some(Duration::from_secs(10))
        );
        assert_eq!(parse_retry_after("soon", now), None);
        assert_eq!(parse_retry_after("-3", now), None);
    }

    #[tokio::test]
    async fn recording_sleeper_records() {
        let sleeper = RecordingSleeper::new();
        sleeper.sleep(Duration::from_secs(10)).await;
        sleeper.sleep(Duration::from_secs(1)).await;
        assert_eq!(
            sleeper.waits(),
            vec![Duration::from_secs(10), Duration::from_secs(1)]
        );
    }
}
