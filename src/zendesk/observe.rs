//! What the client did, for `GetStatus` and tests: counters and an optional observer hook.
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

/// Why the client waited before a request.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum WaitReason {
    /// The client-side budget of the endpoint class was used up.
    Budget,
    /// Zendesk answered 429; the wait is its `Retry-After`.
    RateLimited,
    /// Backoff before retrying a 5xx, a timeout or a connection fault.
    Backoff,
}

/// Receives client events as they happen; every method has a do-nothing default.
pub trait ClientObserver: Send + Sync + std::fmt::Debug {
    /// A request got an answer (`status`) or failed without one (`None`).
    fn on_response(&self, _endpoint: &str, _status: Option<u16>) {}
    /// The client is about to wait `duration` before a request.
    fn on_wait(&self, _endpoint: &str, _reason: WaitReason, _duration: Duration) {}
}

/// The client's counters: a copy at one moment as plain numbers, or the live set the client bumps as
/// atomics ([`StatsCounters`]), so the two cannot drift apart.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct ClientStats<C = u64> {
    /// HTTP requests sent (every attempt, token requests included).
    pub requests: C,
    /// Waits caused by Zendesk's 429 answers.
    pub rate_limit_waits: C,
    /// Waits caused by the client-side budget.
    pub budget_waits: C,
    /// Retries after a 5xx, a timeout or a connection fault.
    pub retries: C,
    /// Access tokens minted or refreshed.
    pub token_renewals: C,
}

/// The live counters behind [`ClientStats`].
pub(crate) type StatsCounters = ClientStats<AtomicU64>;

impl StatsCounters {
    pub(crate) fn bump(counter: &AtomicU64) {
        counter.fetch_add(1, Ordering::Relaxed);
    }

    pub(crate) fn snapshot(&self) -> ClientStats {
        ClientStats {
            requests: self.requests.load(Ordering::Relaxed),
            rate_limit_waits: self.rate_limit_waits.load(Ordering::Relaxed),
            budget_waits: self.budget_waits.load(Ordering::Relaxed),
            retries: self.retries.load(Ordering::Relaxed),
            token_renewals: self.token_renewals.load(Ordering::Relaxed),
        }
    }
}
