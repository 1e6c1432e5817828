//! Fault injection, request counters and the optional requests-per-minute limit.
use std::collections::{BTreeMap, VecDeque};
use std::sync::atomic::{AtomicU64, Ordering};

use serde::{Deserialize, Serialize};

use super::endpoint::Endpoint;

/// What an injected fault does to one request.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum FaultKind {
    /// 429 with `Retry-After`.
    RateLimited {
        /// Seconds sent in `Retry-After`.
        #[serde(default = "default_retry_after")]
        retry_after_secs: u32,
    },
    /// 500 with a Zendesk-style error body.
    ServerError,
    /// Waits this long before answering normally (longer than a client timeout, usually).
    Stall {
        /// Milliseconds to wait.
        #[serde(default = "default_stall_ms")]
        stall_ms: u64,
    },
    /// 200 with a truncated, unparseable JSON body.
    MalformedBody,
    /// 401 `Couldn't authenticate you`.
    Unauthorized,
    /// 403 Forbidden.
    Forbidden,
    /// Holds the request until the faults are cleared (`DELETE /_sim/faults`), then answers normally: a
    /// gate a test opens when it has looked at what happens meanwhile.
    Hold,
}

fn default_retry_after() -> u32 {
    1
}

fn default_stall_ms() -> u64 {
    30_000
}

/// "The next `count` requests of `endpoint` fail with `kind`."
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct FaultSpec {
    /// The endpoint whose requests fail.
    pub endpoint: Endpoint,
    /// How they fail.
    #[serde(flatten)]
    pub kind: FaultKind,
    /// How many requests fail.
    pub count: u32,
}

/// Pending faults, per endpoint in injection order.
#[derive(Debug, Default)]
pub(crate) struct FaultQueue {
    pending: BTreeMap<Endpoint, VecDeque<FaultSpec>>,
    /// How many times the queue was cleared: a held request waits for it to move on.
    clears: u64,
}

impl FaultQueue {
    /// Queues a fault; a zero count is a no-op.
    pub(crate) fn push(&mut self, spec: FaultSpec) {
        if spec.count > 0 {
            self.pending
                .entry(spec.endpoint)
                .or_default()
                .push_back(spec);
        }
    }

    /// Takes one fault for a request to `endpoint`, if any is pending.
    pub(crate) fn take(&mut self, endpoint: Endpoint) -> Option<FaultKind> {
        let queue = self.pending.get_mut(&endpoint)?;
        let front = queue.front_mut()?;
        let kind = front.kind;
        front.count -= 1;
        if front.count == 0 {
            queue.pop_front();
        }
        Some(kind)
    }

    /// Every pending fault with its remaining count.
    pub(crate) fn list(&self) -> Vec<FaultSpec> {
        self.pending.values().flatten().copied().collect()
    }

    /// Drops every pending fault and releases the held requests; returns the new clear count.
    pub(crate) fn clear(&mut self) -> u64 {
        self.pending.clear();
        self.clears += 1;
        self.clears
    }

    /// How many times the queue was cleared.
    pub(crate) fn clears(&self) -> u64 {
        self.clears
    }
}

/// Requests received per endpoint.
#[derive(Debug, Default)]
pub(crate) struct Counters {
    counts: [AtomicU64; Endpoint::ALL.len()],
}

impl Counters {
    /// Counts one request.
    pub(crate) fn hit(&self, endpoint: Endpoint) {
        self.counts[endpoint.index()].fetch_add(1, Ordering::Relaxed);
    }

    /// Requests seen by `endpoint` since the last reset.
    pub(crate) fn get(&self, endpoint: Endpoint) -> u64 {
        self.counts[endpoint.index()].load(Ordering::Relaxed)
    }

    /// Every endpoint's count.
    pub(crate) fn snapshot(&self) -> BTreeMap<Endpoint, u64> {
        Endpoint::ALL.iter().map(|e| (*e, self.get(*e))).collect()
    }

    /// Sets every count to zero.
    pub(crate) fn reset(&self) {
        for count in &self.counts {
            count.store(0, Ordering::Relaxed);
        }
    }
}

/// A fixed-window limit on the simulator clock (a minute, as Zendesk's; shorter in tests).
#[derive(Debug)]
pub(crate) struct RateWindow {
    limit: u32,
    window_secs: i64,
    window_start: i64,
    used: u32,
    usage: RateLimitUsage,
}

/// How clients have used the rate limit since the simulator started.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct RateLimitUsage {
    /// Requests answered 429 because the window was spent.
    pub refused: u64,
    /// The lowest `x-rate-limit-remaining` an allowed request was answered with; `None` before any.
    pub lowest_remaining: Option<u32>,
}

/// The outcome of asking the rate limiter for one request.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum RateDecision {
    /// Allowed; this many remain in the window.
    Allowed {
        /// Requests left in the current window.
        remaining: u32,
        /// Whole seconds until the window resets (never before the true reset: the clock is read in
        /// whole seconds, and this rounds up).
        reset_secs: u32,
    },
    /// Refused; retry after this many seconds.
    Limited {
        /// Seconds until the window resets.
        retry_after_secs: u32,
    },
}

impl RateWindow {
    /// A limiter allowing `limit` requests per window of `window_secs` seconds (at least 1).
    pub(crate) fn new(limit: u32, window_secs: u32) -> Self {
        Self {
            limit,
            window_secs: i64::from(window_secs.max(1)),
            window_start: i64::MIN,
            used: 0,
            usage: RateLimitUsage::default(),
        }
    }

    /// How clients have used the limit so far.
    pub(crate) fn usage(&self) -> RateLimitUsage {
        self.usage
    }

    /// The configured limit.
    pub(crate) fn limit(&self) -> u32 {
        self.limit
    }

    /// Accounts one request at Unix time `now`.
    pub(crate) fn check(&mut self, now: i64) -> RateDecision {
        let window = now.div_euclid(self.window_secs) * self.window_secs;
        if window != self.window_start {
            self.window_start = window;
            self.used = 0;
        }
        let left = u32::try_from((window + self.window_secs - now).max(1)).unwrap_or(u32::MAX);
        if self.used >= self.limit {
            self.usage.refused += 1;
            return RateDecision::Limited {
                retry_after_secs: left,
            };
        }
        self.used += 1;
        let remaining = self.limit - self.used;
        self.usage.lowest_remaining = Some(
            self.usage
                .lowest_remaining
                .map_or(remaining, |lowest| lowest.min(remaining)),
        );
        RateDecision::Allowed {
            remaining,
            reset_secs: left,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fault_fires_count_times_in_order() {
        let mut queue = FaultQueue::default();
        queue.push(FaultSpec {
            endpoint: Endpoint::Groups,
            kind: FaultKind::ServerError,
            count: 2,
        });
        queue.push(FaultSpec {
            endpoint: Endpoint::Groups,
            kind: FaultKind::Forbidden,
            count: 1,
        });
        assert_eq!(queue.take(Endpoint::UsersMe), None);
        assert_eq!(queue.take(Endpoint::Groups), Some(FaultKind::ServerError));
        assert_eq!(queue.take(Endpoint::Groups), Some(FaultKind::ServerError));
        assert_eq!(queue.take(Endpoint::Groups), Some(FaultKind::Forbidden));
        assert_eq!(queue.take(Endpoint::Groups), None);
    }

    #[test]
    fn fault_spec_json_shape() {
        let spec: FaultSpec = serde_json::from_str(
            r#"{"endpoint":"incremental_tickets","kind":"rate_limited","count":2,"retry_after_secs":3}"#,
        )
        .unwrap();
        assert_eq!(
            spec,
            FaultSpec {
                endpoint: Endpoint::IncrementalTickets,
                kind: FaultKind::RateLimited {
                    retry_after_secs: 3
                },
                count: 2
            }
        );
        let stall: FaultSpec =
            serde_json::from_str(r#"{"endpoint":"groups","kind":"stall","count":1}"#).unwrap();
        assert_eq!(stall.kind, FaultKind::Stall { stall_ms: 30_000 });
    }

    #[test]
    fn rate_window_resets_each_minute() {
        let mut window = RateWindow::new(2, 60);
        assert_eq!(
            window.check(120),
            RateDecision::Allowed {
                remaining: 1,
                reset_secs: 60
            }
        );
        assert_eq!(
            window.check(130),
            RateDecision::Allowed {
                remaining: 0,
                reset_secs: 50
            }
        );
        assert_eq!(
            window.check(170),
            RateDecision::Limited {
                retry_after_secs: 10
            }
        );
        assert_eq!(
            window.check(180),
            RateDecision::Allowed {
                remaining: 1,
                reset_secs: 60
            }
        );
    }

    #[test]
    fn a_short_window_for_tests_resets_sooner() {
        let mut window = RateWindow::new(1, 3);
        assert_eq!(
            window.check(10),
            RateDecision::Allowed {
                remaining: 0,
                reset_secs: 2
            }
        );
        assert_eq!(
            window.check(11),
            RateDecision::Limited {
                retry_after_secs: 1
            }
        );
        assert!(matches!(
            window.check(12),
            RateDecision::Allowed { remaining: 0, .. }
        ));
        assert_eq!(
            window.usage(),
            RateLimitUsage {
                refused: 1,
                lowest_remaining: Some(0)
            }
        );
    }
}
