//! When runs are due: pure functions of "now", the settings and what the last runs did.
use std::time::Duration;

use chrono::{DateTime, NaiveTime, TimeDelta, Utc};

/// The schedule's settings.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ScheduleSettings {
    /// Time between incremental runs.
    pub incremental_interval: Duration,
    /// Time of day (UTC) of the nightly validation.
    pub full_validation_at: NaiveTime,
}

/// First retry delay after a failed run; it doubles per failure up to the incremental interval.
pub const FIRST_RETRY_DELAY: Duration = Duration::from_secs(60);

/// The next instant at or after `after` whose UTC time of day is `at`, strictly after `after` when equal is false.
pub fn next_time_of_day(after: DateTime<Utc>, at: NaiveTime) -> DateTime<Utc> {
    let today = after.date_naive().and_time(at).and_utc();
    if today > after {
        today
    } else {
        today + TimeDelta::days(1)
    }
}

/// When the nightly validation is next due: the first `at` after the last validation (or after `since`,
/// when the integration was configured, if none ran yet).
pub fn next_full_validation(
    settings: &ScheduleSettings,
    last_validation: Option<DateTime<Utc>>,
    since: DateTime<Utc>,
) -> DateTime<Utc> {
    next_time_of_day(
        last_validation.unwrap_or(since).max(since),
        settings.full_validation_at,
    )
}

/// Delay before retrying after `consecutive_failures` failed runs (1 = the first failure).
pub fn retry_delay(settings: &ScheduleSettings, consecutive_failures: u32) -> Duration {
    let exponent = consecutive_failures.saturating_sub(1).min(16);
    let delay = FIRST_RETRY_DELAY.saturating_mul(1u32 << exponent);
    delay.min(settings.incremental_interval)
}

/// When the next incremental run is due, from the end of the last attempt.
pub fn next_incremental(
    settings: &ScheduleSettings,
    last_attempt_end: DateTime<Utc>,
    consecutive_failures: u32,
) -> DateTime<Utc> {
    let wait = if consecutive_failures == 0 {
        settings.incremental_interval
    } else {
        retry_delay(settings, consecutive_failures)
    };
    last_attempt_end + TimeDelta::from_std(wait).unwrap_or(TimeDelta::hours(1))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn at(text: &str) -> DateTime<Utc> {
        DateTime::parse_from_rfc3339(text)
            .expect("time")
            .with_timezone(&Utc)
    }

    fn settings() -> ScheduleSettings {
        ScheduleSettings {
            incremental_interval: Duration::from_secs(3600),
            full_validation_at: NaiveTime::from_hms_opt(2, 0, 0).expect("time"),
        }
    }

    #[test]
    fn hourly_runs_follow_the_last_attempt() {
        let end = at("2026-11-29T10:15:30Z");
        assert_eq!(
            next_incremental(&settings(), end, 0),
            at("2026-11-29T11:15:30Z")
        );
    }

    #[test]
    fn failures_back_off_up_to_the_interval() {
        let end = at("2026-11-29T10:00:00Z");
        for (failures, expected) in [
            (1, "2026-11-29T10:01:00Z"),
            (2, "2026-11-29T10:02:00Z"),
            (4, "2026-11-29T10:08:00Z"),
            (7, "2026-11-29T11:00:00Z"),
            (40, "2026-11-29T11:00:00Z"),
        ] {
            assert_eq!(
                next_incremental(&settings(), end, failures),
                at(expected),
                "{failures} failures"
            );
        }
    }

    #[test]
    fn nightly_validation_fires_at_the_next_two_oclock() {
        let configured = at("2026-11-29T10:00:00Z");
        assert_eq!(
            next_full_validation(&settings(), None, configured),
            at("2026-11-30T02:00:00Z")
        );
        let early = at("2026-11-29T01:59:59Z");
        assert_eq!(
            next_full_validation(&settings(), None, early),
            at("2026-11-29T02:00:00Z")
        );
        // A validation that ran at 02:00:05 is not due again until the next night.
        let ran = at("2026-11-30T02:00:05Z");
        assert_eq!(
            next_full_validation(&settings(), Some(ran), configured),
            at("2026-12-01T02:00:00Z")
        );
        assert_eq!(
            next_time_of_day(at("2026-11-30T02:00:00Z"), settings().full_validation_at),
            at("2026-12-01T02:00:00Z")
        );
    }
}
