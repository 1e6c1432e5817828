//! The bodies of the control API's mutations (the same types in process and over HTTP).
use serde::{Deserialize, Deserializer, Serialize};
use serde_json::{Map, Value};

use super::model::{Priority, Role, Score, Status};

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

/// A score given to an existing satisfaction rating: the requester answers the survey, or
/// changes an earlier answer.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RatingScore {
    /// The new score: `good` or `bad` (`offered` is refused).
    pub score: Score,
    /// The comment given with it; replaces the earlier one (none leaves no comment).
    pub comment: Option<String>,
    /// When the score was given, Unix seconds (default: the simulator's now); not before the
    /// rating's last change.
    pub at: Option<i64>,
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
