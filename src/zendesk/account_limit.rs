//! The account-wide rate limit Zendesk reports on its responses, and the share of it zdsync leaves
//! to the customer's other apps.
//!
//! Zendesk's "Rate limits" reference (<https://developer.zendesk.com/api-reference/introduction/rate-limits/>)
//! and its "Best practices for avoiding rate limiting"
//! (<https://developer.zendesk.com/documentation/api-basics/best-practices/best-practices-for-avoiding-rate-limiting>):
//! every Support API response carries `X-Rate-Limit` (the account's requests per minute, 200 to
//! 2,500 by plan, for all of its apps together) and `X-Rate-Limit-Remaining` (left this minute);
//! list endpoints add `ratelimit-reset` (seconds until the minute's window resets). The limit is
//! the whole account's, so spending it to zero starves the customer's other apps: the client
//! stops at a configurable share and waits for the reset instead.
use std::sync::{Mutex, PoisonError};
use std::time::{Duration, Instant};

/// Zendesk's rate-limit window: the account limit counts requests per minute.
pub const WINDOW: Duration = Duration::from_secs(60);

/// The three rate-limit headers of one response, each `None` when absent or unusable.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct RateLimitHeaders {
    /// `x-rate-limit`: the account's requests per minute.
    pub limit: Option<u32>,
    /// `x-rate-limit-remaining`: requests left in the current window.
    pub remaining: Option<u32>,
    /// `ratelimit-reset`: time until the window resets, at most one [`WINDOW`].
    pub reset: Option<Duration>,
}

impl RateLimitHeaders {
    /// Parses the raw header values (`None` for a missing header); hostile values read as absent.
    pub fn parse(limit: Option<&str>, remaining: Option<&str>, reset: Option<&str>) -> Self {
        Self {
            limit: limit.and_then(parse_count),
            remaining: remaining.and_then(parse_count),
            reset: reset.and_then(parse_reset),
        }
    }
}

/// A request count header: a whole non-negative number; larger than `u32` saturates.
pub fn parse_count(value: &str) -> Option<u32> {
    let trimmed = value.trim();
    if trimmed.is_empty() || !trimmed.bytes().all(|byte| byte.is_ascii_digit()) {
        return None;
    }
    // All digits: the only failure left is overflow, which saturates.
    Some(trimmed.parse::<u32>().unwrap_or(u32::MAX))
}

/// `ratelimit-reset`: seconds (whole or fractional) until the window resets.
///
/// A value past one window is taken as one window: the limit is per minute, and a header must
/// not be able to park the sync for longer.
pub fn parse_reset(value: &str) -> Option<Duration> {
    let trimmed = value.trim();
    if let Ok(seconds) = trimmed.parse::<u64>() {
        return Some(Duration::from_secs(seconds).min(WINDOW));
    }
    let seconds = trimmed.parse::<f64>().ok()?;
    if !seconds.is_finite() || seconds < 0.0 {
        return None;
    }
    Some(Duration::try_from_secs_f64(seconds).map_or(WINDOW, |reset| reset.min(WINDOW)))
}

/// What the client knows of the account's current window.
#[derive(Debug, Clone, Copy)]
struct Reading {
    limit: u32,
    /// Requests left, counting down locally as requests go out until the next response says.
    remaining: u32,
    /// Before this the window's requests may not be sent (a caller already waits for the reset).
    opens_at: Instant,
    resets_at: Instant,
}

/// Holds back the last share of the account's limit for the customer's other apps.
///
/// Like the request budgets, taking a slot never fails: it says how long to wait, and callers that
/// queue behind a reset are given slots of the next window, so a test sleeper that returns at once
/// still sees the waits a real clock would impose.
#[derive(Debug)]
pub struct AccountLimit {
    reserve_percent: u32,
    reading: Mutex<Option<Reading>>,
}

impl AccountLimit {
    /// Leaves `reserve_percent` (0..=100) of the account's limit to other apps; at 0 the client
    /// still waits out an exhausted window rather than spend a 429.
    pub fn new(reserve_percent: u32) -> Self {
        Self {
            reserve_percent: reserve_percent.min(100),
            reading: Mutex::new(None),
        }
    }

    /// Requests of `limit` left to other apps: the client sends none of them.
    fn kept(&self, limit: u32) -> u32 {
        u32::try_from(u64::from(limit) * u64::from(self.reserve_percent) / 100).unwrap_or(limit)
    }

    /// Records a response's headers received at `now`; without both counts there is nothing to learn.
    pub fn observe(&self, headers: RateLimitHeaders, now: Instant) {
        let (Some(limit), Some(remaining)) = (headers.limit, headers.remaining) else {
            return;
        };
        if limit == 0 {
            return;
        }
        // Without a reset time the window may have just begun: assume a whole one (the safe side).
        let resets_at = now + headers.reset.unwrap_or(WINDOW);
        let remaining = remaining.min(limit);
        let mut reading = self.reading.lock().unwrap_or_else(PoisonError::into_inner);
        let fresh = match *reading {
            // Responses of one window overlap with requests still in flight: within a window the
            // count only falls, so the lower of the two is the better estimate.
            Some(known) if now < known.resets_at && same_window(known.resets_at, resets_at) => {
                Reading {
                    remaining: remaining.min(known.remaining),
                    ..known
                }
            }
            _ => Reading {
                limit,
                remaining,
                opens_at: now,
                resets_at,
            },
        };
        *reading = Some(fresh);
    }

    /// Takes a slot for one request at `now` and returns how long to wait before sending it.
    pub fn reserve(&self, now: Instant) -> Duration {
        let mut guard = self.reading.lock().unwrap_or_else(PoisonError::into_inner);
        let Some(reading) = guard.as_mut() else {
            return Duration::ZERO;
        };
        if now >= reading.resets_at {
            // A past window says nothing about this one; the next response will.
            *guard = None;
            return Duration::ZERO;
        }
        if reading.remaining <= self.kept(reading.limit) {
            let wait = reading.resets_at.saturating_duration_since(now);
            // This caller takes the first slot of the next window; later callers queue behind it.
            *reading = Reading {
                limit: reading.limit,
                remaining: reading.limit.saturating_sub(1),
                opens_at: reading.resets_at,
                resets_at: reading.resets_at + WINDOW,
            };
            return wait;
        }
        reading.remaining -= 1;
        reading.opens_at.saturating_duration_since(now)
    }

    /// Requests left in the account's current window as last known; `None` before any response said.
    pub fn remaining(&self) -> Option<u32> {
        let reading = self.reading.lock().unwrap_or_else(PoisonError::into_inner);
        reading.map(|known| known.remaining)
    }
}

/// Two resets this close belong to the same window (`ratelimit-reset` is given in whole seconds).
fn same_window(a: Instant, b: Instant) -> bool {
    let gap = if a > b { a - b } else { b - a };
    gap <= Duration::from_millis(1500)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn headers(limit: u32, remaining: u32, reset_secs: u64) -> RateLimitHeaders {
        RateLimitHeaders {
            limit: Some(limit),
            remaining: Some(remaining),
            reset: Some(Duration::from_secs(reset_secs)),
        }
    }

    #[test]
    fn header_values_parse_and_hostile_ones_read_as_absent() {
        let parsed = RateLimitHeaders::parse(Some(" 700 "), Some("699"), Some("41"));
        assert_eq!(parsed, headers(700, 699, 41));
        assert_eq!(parse_count("99999999999999999999"), Some(u32::MAX));
        for bad in ["", "-1", "+5", "1.5", "7e2", "seven", "٣"] {
            assert_eq!(parse_count(bad), None, "{bad:?}");
        }
        assert_eq!(parse_reset("2.5"), Some(Duration::from_millis(2500)));
        for huge in ["61", "18446744073709551616", "1e300"] {
            assert_eq!(parse_reset(huge), Some(WINDOW), "{huge:?}");
        }
        for bad in ["-3", "NaN", "inf", "soon", ""] {
            assert_eq!(parse_reset(bad), None, "{bad:?}");
        }
    }

    #[test]
    fn the_last_share_is_left_and_the_client_waits_for_the_reset() {
        let limit = AccountLimit::new(20);
        let now = Instant::now();
        assert_eq!(limit.reserve(now), Duration::ZERO, "nothing known yet");
        limit.observe(headers(10, 4, 30), now);
        // 20 % of 10 is 2: requests go while more than 2 are left.
        assert_eq!(limit.reserve(now), Duration::ZERO);
        assert_eq!(limit.reserve(now), Duration::ZERO);
        assert_eq!(limit.remaining(), Some(2));
        // The answer to the first of those (its reset rounded a second off) counted only itself:
        // the lower local count stands.
        let later = now + Duration::from_millis(500);
        limit.observe(headers(10, 3, 29), later);
        assert_eq!(limit.remaining(), Some(2));
        assert_eq!(limit.reserve(later), Duration::from_millis(29_500));
        // The next caller queues behind the reset too, with a slot of the next window.
        assert_eq!(limit.reserve(later), Duration::from_millis(29_500));
        assert_eq!(limit.remaining(), Some(8));
    }

    #[test]
    fn no_share_still_waits_out_an_exhausted_window() {
        let limit = AccountLimit::new(0);
        let now = Instant::now();
        limit.observe(headers(10, 1, 5), now);
        assert_eq!(limit.reserve(now), Duration::ZERO);
        assert_eq!(limit.reserve(now), Duration::from_secs(5));
    }

    #[test]
    fn a_past_window_or_unusable_headers_hold_nothing_back() {
        let limit = AccountLimit::new(50);
        let now = Instant::now();
        limit.observe(headers(0, 0, 30), now);
        limit.observe(RateLimitHeaders::parse(Some("10"), None, Some("5")), now);
        assert_eq!(limit.reserve(now), Duration::ZERO, "no usable reading");
        limit.observe(headers(10, 0, 5), now);
        assert_eq!(limit.reserve(now + Duration::from_secs(6)), Duration::ZERO);
        // Without a reset the window is taken to be a whole minute long.
        limit.observe(RateLimitHeaders::parse(Some("10"), Some("0"), None), now);
        assert_eq!(limit.reserve(now), WINDOW);
    }
}
