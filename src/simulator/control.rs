//! The in-process control API: mutations, faults, counters and the clock offset. The HTTP
//! routes under `/_sim/` are thin wrappers around it.
use std::collections::BTreeMap;
use std::sync::atomic::Ordering;
use std::sync::Arc;

use serde::{Deserialize, Deserializer, Serialize};
use serde_json::{Map, Value};

use super::data::MutationError;
use super::endpoint::Endpoint;
use super::faults::FaultSpec;
use super::model::{Priority, Role, Score, Status};
use super::render;
use super::state::Shared;

/// Deserializes a field that distinguishes "absent" (None) from "null" (Some(None)).
fn double_option<'de, D, T>(deserializer: D) -> Result<Option<Option<T>>, D::Error>
where
    D: Deserializer<'de>,
    T: Deserialize<'de>,
{
    Option::<T>::deserialize(deserializer).map(Some)
}

/// A ticket to create.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct NewTicket {
    /// Subject (default "New ticket").
    pub subject: Option<String>,
    /// Requester user id (default: the first end-user); the ticket takes their organization.
    pub requester_id: Option<u64>,
    /// Initial status (default new).
    pub status: Option<Status>,
    /// Initial priority (default none).
    pub priority: Option<Priority>,
    /// Group id.
    pub group_id: Option<u64>,
    /// Assignee (an agent's user id).
    pub assignee_id: Option<u64>,
    /// Tags.
    #[serde(default)]
    pub tags: Vec<String>,
}

/// Changes to a ticket; absent fields stay, `null` clears where allowed.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TicketUpdate {
    /// New status (not `deleted`: delete the ticket instead).
    pub status: Option<Status>,
    /// New priority; `Some(None)` clears it.
    #[serde(default, deserialize_with = "double_option")]
    pub priority: Option<Option<Priority>>,
    /// New subject.
    pub subject: Option<String>,
    /// New group; `Some(None)` clears it.
    #[serde(default, deserialize_with = "double_option")]
    pub group_id: Option<Option<u64>>,
    /// New assignee; `Some(None)` clears it.
    #[serde(default, deserialize_with = "double_option")]
    pub assignee_id: Option<Option<u64>>,
    /// New tags (replacing the old ones).
    pub tags: Option<Vec<String>>,
    /// Who made the change (default: the assignee, else the admin).
    pub updater_id: Option<u64>,
}

/// A satisfaction rating to add.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct NewRating {
    /// The score.
    pub score: Score,
    /// The requester's comment (not for `offered`).
    pub comment: Option<String>,
}

/// Organization fields to create with or change; absent fields stay.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct OrganizationInput {
    /// Name (required on create, unique).
    pub name: Option<String>,
    /// Domain names (replacing the old ones).
    pub domain_names: Option<Vec<String>>,
    /// External id; `Some(None)` clears it.
    #[serde(default, deserialize_with = "double_option")]
    pub external_id: Option<Option<String>>,
    /// Custom organization fields, merged key by key into the existing ones.
    pub organization_fields: Option<Map<String, Value>>,
    /// Tags (replacing the old ones).
    pub tags: Option<Vec<String>>,
}

/// User fields to create with or change; absent fields stay.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct UserInput {
    /// Name (required on create).
    pub name: Option<String>,
    /// Email (required on create, unique ignoring case).
    pub email: Option<String>,
    /// Organization; `Some(None)` clears it.
    #[serde(default, deserialize_with = "double_option")]
    pub organization_id: Option<Option<u64>>,
    /// Role (default end-user).
    pub role: Option<Role>,
    /// Whether the user is active (default true).
    pub active: Option<bool>,
}

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
    /// Ticket audits carrying status/priority events.
    pub ticket_events: usize,
    /// The simulator's now, Unix seconds.
    pub now: i64,
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

    /// Drops every pending fault.
    pub fn clear_faults(&self) {
        self.shared.faults().clear();
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
        let data = self.shared.read();
        let ticket = data.ticket(id)?;
        serde_json::to_value(render::TicketJson::new(
            &data,
            ticket,
            &self.shared.base_url,
        ))
        .ok()
    }

    /// The organization as the export shows it, or None.
    pub fn organization_json(&self, id: u64) -> Option<Value> {
        let data = self.shared.read();
        let organization = data.organization(id)?;
        serde_json::to_value(render::OrganizationJson::new(
            organization,
            &self.shared.base_url,
        ))
        .ok()
    }

    /// The user as the export shows it, or None.
    pub fn user_json(&self, id: u64) -> Option<Value> {
        let data = self.shared.read();
        let user = data.user(id)?;
        serde_json::to_value(render::UserJson::new(user, &self.shared.base_url)).ok()
    }

    /// The rating as the API shows it, or None.
    pub fn rating_json(&self, id: u64) -> Option<Value> {
        let data = self.shared.read();
        let rating = data.rating(id)?;
        serde_json::to_value(render::RatingJson::new(rating, &self.shared.base_url)).ok()
    }

    /// Creates a ticket now; returns its id.
    pub fn create_ticket(&self, new: NewTicket) -> Result<u64, MutationError> {
        let now = self.shared.now_unix();
        self.shared.write().create_ticket(&new, now)
    }

    /// Changes a ticket now, recording status/priority events.
    pub fn update_ticket(&self, id: u64, update: TicketUpdate) -> Result<(), MutationError> {
        let now = self.shared.now_unix();
        self.shared.write().update_ticket(id, &update, now)
    }

    /// Deletes a ticket (exports show it as `deleted`).
    pub fn delete_ticket(&self, id: u64) -> Result<(), MutationError> {
        let now = self.shared.now_unix();
        self.shared.write().delete_ticket(id, now)
    }

    /// Adds a satisfaction rating to a ticket; returns the rating id.
    pub fn add_rating(&self, ticket_id: u64, rating: NewRating) -> Result<u64, MutationError> {
        let now = self.shared.now_unix();
        self.shared.write().add_rating(ticket_id, &rating, now)
    }

    /// Creates an organization; returns its id.
    pub fn create_organization(&self, new: OrganizationInput) -> Result<u64, MutationError> {
        let now = self.shared.now_unix();
        self.shared.write().create_organization(&new, now)
    }

    /// Changes an organization.
    pub fn update_organization(
        &self,
        id: u64,
        update: OrganizationInput,
    ) -> Result<(), MutationError> {
        let now = self.shared.now_unix();
        self.shared.write().update_organization(id, &update, now)
    }

    /// Creates a user; returns its id.
    pub fn create_user(&self, new: UserInput) -> Result<u64, MutationError> {
        let now = self.shared.now_unix();
        self.shared.write().create_user(&new, now)
    }

    /// Changes a user.
    pub fn update_user(&self, id: u64, update: UserInput) -> Result<(), MutationError> {
        let now = self.shared.now_unix();
        self.shared.write().update_user(id, &update, now)
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
