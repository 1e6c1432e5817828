//! The in-process control API: mutations, faults, counters and the clock offset. The HTTP
//! routes under `/_sim/` are thin wrappers around it.
use std::collections::BTreeMap;
use std::sync::atomic::Ordering;
use std::sync::Arc;

use serde::{Deserialize, Serialize};
use serde_json::Value;

use super::data::{Dataset, MutationError};
use super::endpoint::Endpoint;
use super::faults::{FaultSpec, RateLimitUsage};
use super::inputs::{
    NewRating, NewTicket, OrganizationInput, RatingScore, TicketUpdate, UserInput,
};
use super::render;
use super::state::Shared;

/// How many records the simulator holds.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct DatasetStats {
    /// Tickets, deleted ones included.
    pub tickets: usize,
    /// Organizations.
    pub organizations: usize,
    /// Users (admin and agents included).
    pub users: usize,
    /// Groups.
    pub groups: usize,
    /// Satisfaction ratings.
    pub satisfaction_ratings: usize,
    /// Ticket audits (status, priority and satisfaction rating events).
    pub ticket_events: usize,
    /// The simulator's now, Unix seconds.
    pub now: i64,
}

/// `value` as JSON.
fn json(value: &impl Serialize) -> Option<Value> {
    serde_json::to_value(value).ok()
}

/// In-process access to the simulator's data, faults, counters and clock offset.
#[derive(Debug, Clone)]
pub struct SimulatorControl {
    pub(crate) shared: Arc<Shared>,
}

impl SimulatorControl {
    /// Requests received by `endpoint` since the last reset (faulted and refused ones included).
    pub fn request_count(&self, endpoint: Endpoint) -> u64 {
        self.shared.counters.get(endpoint)
    }

    /// Every endpoint's request count.
    pub fn counters(&self) -> BTreeMap<Endpoint, u64> {
        self.shared.counters.snapshot()
    }

    /// How clients have used the rate limit (429s sent, lowest remaining count); `None` when it is off.
    pub fn rate_limit_usage(&self) -> Option<RateLimitUsage> {
        usage(self.shared.rate.as_ref())
    }

    /// How clients have used the incremental exports' own limit; `None` when it is off.
    pub fn export_rate_limit_usage(&self) -> Option<RateLimitUsage> {
        usage(self.shared.export_rate.as_ref())
    }

    /// Sets every request count to zero.
    pub fn reset_counters(&self) {
        self.shared.counters.reset();
    }

    /// Makes the next `spec.count` requests of `spec.endpoint` fail with `spec.kind`.
    pub fn inject_fault(&self, spec: FaultSpec) {
        self.shared.faults().push(spec);
    }

    /// Pending faults with their remaining counts.
    pub fn pending_faults(&self) -> Vec<FaultSpec> {
        self.shared.faults().list()
    }

    /// Drops every pending fault and lets the requests a `hold` fault holds go on.
    pub fn clear_faults(&self) {
        let clears = self.shared.faults().clear();
        self.shared.released.send_replace(clears);
    }

    /// The simulator's now (clock plus offset).
    pub fn now(&self) -> chrono::DateTime<chrono::Utc> {
        self.shared.now()
    }

    /// Sets the offset added to the clock, in seconds.
    pub fn set_time_offset(&self, seconds: i64) {
        self.shared.offset_seconds.store(seconds, Ordering::Relaxed);
    }

    /// The offset added to the clock, in seconds.
    pub fn time_offset(&self) -> i64 {
        self.shared.offset_seconds.load(Ordering::Relaxed)
    }

    /// Record counts.
    pub fn stats(&self) -> DatasetStats {
        let data = self.shared.read();
        DatasetStats {
            tickets: data.tickets.len(),
            organizations: data.organizations.len(),
            users: data.users.len(),
            groups: data.groups.len(),
            satisfaction_ratings: data.ratings.len(),
            ticket_events: data.audits.len(),
            now: self.shared.now_unix(),
        }
    }

    /// The ticket as the export shows it, or None.
    pub fn ticket_json(&self, id: u64) -> Option<Value> {
        self.render(|data, base| json(&render::TicketJson::new(data, data.ticket(id)?, base)))
    }

    /// The organization as the export shows it, or None.
    pub fn organization_json(&self, id: u64) -> Option<Value> {
        self.render(|data, base| json(&render::OrganizationJson::new(data.organization(id)?, base)))
    }

    /// The user as the export shows it, or None.
    pub fn user_json(&self, id: u64) -> Option<Value> {
        self.render(|data, base| json(&render::UserJson::new(data.user(id)?, base)))
    }

    /// The rating as the API shows it, or None.
    pub fn rating_json(&self, id: u64) -> Option<Value> {
        self.render(|data, base| json(&render::RatingJson::new(data.rating(id)?, base)))
    }

    /// `show` of the data set and the base URL, under the read lock.
    fn render(&self, show: impl FnOnce(&Dataset, &str) -> Option<Value>) -> Option<Value> {
        show(&self.shared.read(), &self.shared.base_url)
    }

    /// `change` applied to the data set at the simulator's now, under the write lock.
    fn mutate<T>(&self, change: impl FnOnce(&mut Dataset, i64) -> T) -> T {
        let now = self.shared.now_unix();
        change(&mut self.shared.write(), now)
    }

    /// Creates a ticket now; returns its id.
    pub fn create_ticket(&self, new: NewTicket) -> Result<u64, MutationError> {
        self.mutate(|data, now| data.create_ticket(&new, now))
    }

    /// Changes a ticket now, recording status/priority events.
    pub fn update_ticket(&self, id: u64, update: TicketUpdate) -> Result<(), MutationError> {
        self.mutate(|data, now| data.update_ticket(id, &update, now))
    }

    /// Deletes a ticket (exports show it as `deleted`).
    pub fn delete_ticket(&self, id: u64) -> Result<(), MutationError> {
        self.mutate(|data, now| data.delete_ticket(id, now))
    }

    /// Adds a satisfaction rating to a ticket; returns the rating id.
    pub fn add_rating(&self, ticket_id: u64, rating: NewRating) -> Result<u64, MutationError> {
        self.mutate(|data, now| data.add_rating(ticket_id, &rating, now))
    }

    /// Adds a satisfaction rating to a ticket, created at `at` (Unix seconds); returns the
    /// rating id. Offering a survey is a rating with score `offered`.
    pub fn add_rating_at(
        &self,
        ticket_id: u64,
        rating: NewRating,
        at: i64,
    ) -> Result<u64, MutationError> {
        self.mutate(|data, _| data.add_rating_at(ticket_id, &rating, at))
    }

    /// Scores or re-scores a rating at `score.at` (default now): the rating, its ticket and the
    /// ticket events export all show the new score, as Zendesk does.
    pub fn score_rating(&self, rating_id: u64, score: RatingScore) -> Result<(), MutationError> {
        self.mutate(|data, now| data.score_rating(rating_id, &score, now))
    }

    /// Creates an organization; returns its id.
    pub fn create_organization(&self, new: OrganizationInput) -> Result<u64, MutationError> {
        self.mutate(|data, now| data.create_organization(&new, now))
    }

    /// Changes an organization.
    pub fn update_organization(
        &self,
        id: u64,
        update: OrganizationInput,
    ) -> Result<(), MutationError> {
        self.mutate(|data, now| data.update_organization(id, &update, now))
    }

    /// Creates a user; returns its id.
    pub fn create_user(&self, new: UserInput) -> Result<u64, MutationError> {
        self.mutate(|data, now| data.create_user(&new, now))
    }

    /// Changes a user.
    pub fn update_user(&self, id: u64, update: UserInput) -> Result<(), MutationError> {
        self.mutate(|data, now| data.update_user(id, &update, now))
    }

    /// Ids of every ticket, in export order (`generated_timestamp`, id).
    pub fn ticket_ids(&self) -> Vec<u64> {
        let data = self.shared.read();
        data.ticket_order
            .after((i64::MIN, 0))
            .iter()
            .map(|k| k.1)
            .collect()
    }
}

/// How clients have used a limit; `None` when it is off.
fn usage(window: Option<&std::sync::Mutex<super::faults::RateWindow>>) -> Option<RateLimitUsage> {
    window.map(|window| {
        window
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .usage()
    })
}
