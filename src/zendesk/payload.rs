//! Typed Zendesk records, keeping only the fields zdsync uses and ignoring every other field.
//!
//! Fields zdsync needs are required (a missing or mistyped one fails the page with a
//! `Malformed` error naming the field); fields Zendesk leaves null in real data are `Option`.
use std::fmt;

use chrono::{DateTime, Utc};
use serde::de::{self, Deserializer, MapAccess, SeqAccess, Visitor};
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

/// A UTC instant as Zendesk writes it (`2023-09-18T15:57:42Z`).
pub type Timestamp = DateTime<Utc>;

/// A ticket as the incremental ticket export returns it.
#[derive(Debug, Clone, PartialEq, Deserialize)]
pub struct Ticket {
    /// Ticket id.
    pub id: u64,
    /// Subject line; Zendesk allows none.
    #[serde(default)]
    pub subject: Option<String>,
    /// Current status (`deleted` for deleted tickets, which the export still returns).
    pub status: TicketStatus,
    /// Current priority; null on most tickets in real data.
    #[serde(default)]
    pub priority: Option<TicketPriority>,
    /// The requester (side-loaded in `users`).
    #[serde(default)]
    pub requester_id: Option<u64>,
    /// The assignee (side-loaded in `users`).
    #[serde(default)]
    pub assignee_id: Option<u64>,
    /// The assigned group (side-loaded in `groups`).
    #[serde(default)]
    pub group_id: Option<u64>,
    /// The requester's organization (side-loaded in `organizations`).
    #[serde(default)]
    pub organization_id: Option<u64>,
    /// When the ticket was created.
    #[serde(deserialize_with = "super::timestamp::required")]
    pub created_at: Timestamp,
    /// Last update that created a ticket event (can be older than the export's `start_time`).
    #[serde(deserialize_with = "super::timestamp::required")]
    pub updated_at: Timestamp,
    /// Unix seconds of the last change of any kind; keep the copy with the highest one.
    pub generated_timestamp: i64,
    /// The ticket's current satisfaction rating; `None` when Zendesk writes null (no rating, or
    /// a plan without CSAT) or leaves the field out.
    #[serde(default)]
    pub satisfaction_rating: Option<TicketSatisfaction>,
}

/// The current satisfaction rating Zendesk keeps on a ticket.
///
/// A score given or changed after the rating was listed shows here (and bumps the ticket's
/// `generated_timestamp`), while `/satisfaction_ratings` keeps listing the rating by its
/// creation time. Zendesk writes `{"id", "score", "comment"}` for a rating and only
/// `{"score": "offered"}` or `{"score": "unoffered"}` before one exists.
#[derive(Debug, Clone, PartialEq, Deserialize)]
pub struct TicketSatisfaction {
    /// The rating's id; Zendesk writes none while the survey is only offered or unoffered.
    #[serde(default)]
    pub id: Option<u64>,
    /// The current score (`offered` until the requester answers).
    pub score: SatisfactionScore,
    /// The requester's comment, if any.
    #[serde(default)]
    pub comment: Option<String>,
}

/// A ticket status as the payloads carry it (the domain's, spelled as Zendesk spells it).
pub use crate::domain::ticket::Status as TicketStatus;

/// A ticket priority as the payloads carry it; a ticket without one has `None` (never `Priority::None`).
pub use crate::domain::ticket::Priority as TicketPriority;

/// A Zendesk user (requester, agent or admin).
#[derive(Debug, Clone, PartialEq, Deserialize)]
pub struct User {
    /// User id.
    pub id: u64,
    /// Display name.
    #[serde(default)]
    pub name: Option<String>,
    /// Primary email; users created without one have none.
    #[serde(default)]
    pub email: Option<String>,
    /// `end-user`, `agent` or `admin`.
    #[serde(default)]
    pub role: Option<String>,
    /// The user's organization.
    #[serde(default)]
    pub organization_id: Option<u64>,
    /// False for deleted users.
    #[serde(default)]
    pub active: Option<bool>,
    /// When the user was created.
    #[serde(default, deserialize_with = "super::timestamp::optional")]
    pub created_at: Option<Timestamp>,
    /// Last update; keep the copy with the newest one.
    #[serde(deserialize_with = "super::timestamp::required")]
    pub updated_at: Timestamp,
}

/// A Zendesk organization.
#[derive(Debug, Clone, PartialEq, Deserialize)]
pub struct Organization {
    /// Organization id.
    pub id: u64,
    /// Unique name.
    pub name: String,
    /// External id, a common account match key.
    #[serde(default)]
    pub external_id: Option<String>,
    /// Email domains of the organization.
    #[serde(default, deserialize_with = "null_as_default")]
    pub domain_names: Vec<String>,
    /// Custom organization fields by key (values are strings, numbers, booleans or null).
    #[serde(default, deserialize_with = "null_as_default")]
    pub organization_fields: Map<String, Value>,
    /// When the organization was created.
    #[serde(default, deserialize_with = "super::timestamp::optional")]
    pub created_at: Option<Timestamp>,
    /// Last update; keep the copy with the newest one.
    #[serde(deserialize_with = "super::timestamp::required")]
    pub updated_at: Timestamp,
    /// Set when the organization was deleted (incremental export only).
    #[serde(default, deserialize_with = "super::timestamp::optional")]
    pub deleted_at: Option<Timestamp>,
}

/// A Zendesk agent group.
#[derive(Debug, Clone, PartialEq, Deserialize)]
pub struct Group {
    /// Group id.
    pub id: u64,
    /// Group name (not unique).
    pub name: String,
    /// Whether the group was deleted.
    #[serde(default)]
    pub deleted: bool,
    /// Last update.
    #[serde(default, deserialize_with = "super::timestamp::optional")]
    pub updated_at: Option<Timestamp>,
}

/// A customer satisfaction rating.
#[derive(Debug, Clone, PartialEq, Deserialize)]
pub struct SatisfactionRating {
    /// Rating id.
    pub id: u64,
    /// The rated ticket.
    pub ticket_id: u64,
    /// The score.
    pub score: SatisfactionScore,
    /// The requester's comment.
    #[serde(default)]
    pub comment: Option<String>,
    /// The requester who rated.
    #[serde(default)]
    pub requester_id: Option<u64>,
    /// The ticket's assignee when rated.
    #[serde(default)]
    pub assignee_id: Option<u64>,
    /// The ticket's group when rated.
    #[serde(default)]
    pub group_id: Option<u64>,
    /// When the rating was created (offered).
    #[serde(deserialize_with = "super::timestamp::required")]
    pub created_at: Timestamp,
    /// When the rating last changed (given); keep the copy with the newest one.
    #[serde(deserialize_with = "super::timestamp::required")]
    pub updated_at: Timestamp,
}

/// A satisfaction score; scores Zendesk may add later are kept as `Other`.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum SatisfactionScore {
    /// The survey was sent, not answered.
    Offered,
    /// No survey was sent.
    Unoffered,
    /// Good.
    Good,
    /// Good, with a comment (older accounts).
    GoodWithComment,
    /// Bad.
    Bad,
    /// Bad, with a comment (older accounts).
    BadWithComment,
    /// A score this version does not know.
    Other(String),
}

impl SatisfactionScore {
    /// Good or good with comment.
    pub fn is_good(&self) -> bool {
        matches!(self, Self::Good | Self::GoodWithComment)
    }

    /// Bad or bad with comment.
    pub fn is_bad(&self) -> bool {
        matches!(self, Self::Bad | Self::BadWithComment)
    }

    /// The score as Zendesk spells it.
    pub fn as_str(&self) -> &str {
        match self {
            Self::Offered => "offered",
            Self::Unoffered => "unoffered",
            Self::Good => "good",
            Self::GoodWithComment => "good_with_comment",
            Self::Bad => "bad",
            Self::BadWithComment => "bad_with_comment",
            Self::Other(other) => other,
        }
    }
}

impl<'de> Deserialize<'de> for SatisfactionScore {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let raw = String::deserialize(deserializer)?;
        Ok(match raw.as_str() {
            "offered" => Self::Offered,
            "unoffered" => Self::Unoffered,
            "good" => Self::Good,
            "good_with_comment" => Self::GoodWithComment,
            "bad" => Self::Bad,
            "bad_with_comment" => Self::BadWithComment,
            _ => Self::Other(raw),
        })
    }
}

/// A ticket's metric set (side-loaded as `metric_sets`; also `/ticket_metrics`).
#[derive(Debug, Clone, PartialEq, Deserialize)]
pub struct TicketMetricSet {
    /// Metric set id.
    pub id: u64,
    /// The ticket it measures.
    pub ticket_id: u64,
    /// How often the ticket was reopened.
    #[serde(default)]
    pub reopens: Option<u32>,
    /// Number of public agent replies.
    #[serde(default)]
    pub replies: Option<u32>,
    /// When the ticket was last solved.
    #[serde(default, deserialize_with = "super::timestamp::optional")]
    pub solved_at: Option<Timestamp>,
    /// When the status last changed.
    #[serde(default, deserialize_with = "super::timestamp::optional")]
    pub status_updated_at: Option<Timestamp>,
    /// Last update of the metric set.
    #[serde(default, deserialize_with = "super::timestamp::optional")]
    pub updated_at: Option<Timestamp>,
}

/// A ticket metric event (`/incremental/ticket_metric_events`).
#[derive(Debug, Clone, PartialEq, Deserialize)]
pub struct TicketMetricEvent {
    /// Event id.
    pub id: u64,
    /// The ticket.
    pub ticket_id: u64,
    /// The metric, e.g. `agent_work_time`.
    pub metric: String,
    /// Which instance of the metric.
    #[serde(default)]
    pub instance_id: Option<u64>,
    /// `activate`, `pause`, `fulfill`, `measure`, ...
    #[serde(rename = "type")]
    pub kind: String,
    /// When it happened.
    #[serde(deserialize_with = "super::timestamp::required")]
    pub time: Timestamp,
}

/// Whether a change record created the ticket's field or changed it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum ChangeKind {
    /// The field's value when the ticket was created.
    Create,
    /// A later change of the field.
    Change,
}

/// A status or priority change of a ticket, from the ticket events export or an audit.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum FieldChange {
    /// The status became `to`.
    Status {
        /// Create or Change.
        kind: ChangeKind,
        /// Status before (none on Create).
        from: Option<TicketStatus>,
        /// Status after.
        to: TicketStatus,
    },
    /// The priority became `to` (none when it was cleared).
    Priority {
        /// Create or Change.
        kind: ChangeKind,
        /// Priority before.
        from: Option<TicketPriority>,
        /// Priority after.
        to: Option<TicketPriority>,
    },
}

/// One update of a ticket from `/incremental/ticket_events`, with its status/priority changes.
///
/// Child events of other kinds (comments, tags, notifications, ...) and records of a different
/// shape (such as the metric-event records of Zendesk's own doc example) are kept with no
/// changes rather than failing the page.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(try_from = "RawTicketEvent")]
pub struct TicketEvent {
    /// Ticket event id.
    pub id: u64,
    /// The ticket.
    pub ticket_id: u64,
    /// When the update happened, in Unix seconds (used for paging and de-duplication).
    pub timestamp: Option<i64>,
    /// When the update happened.
    pub occurred_at: Option<Timestamp>,
    /// The updater (user id), when known.
    pub updater_id: Option<i64>,
    /// The status and priority changes the update made, in order.
    pub changes: Vec<FieldChange>,
}

#[derive(Deserialize)]
struct RawTicketEvent {
    id: u64,
    ticket_id: u64,
    #[serde(default)]
    timestamp: Option<i64>,
    #[serde(default, deserialize_with = "super::timestamp::optional")]
    created_at: Option<Timestamp>,
    #[serde(default, deserialize_with = "super::timestamp::optional")]
    time: Option<Timestamp>,
    #[serde(default)]
    updater_id: Option<i64>,
    #[serde(default, deserialize_with = "null_as_default")]
    child_events: Vec<Member>,
}

impl TryFrom<RawTicketEvent> for TicketEvent {
    type Error = String;

    fn try_from(raw: RawTicketEvent) -> Result<Self, Self::Error> {
        let changes = interpret_changes(&raw.child_events, "child_events")?;
        let occurred_at = raw
            .timestamp
            .and_then(|secs| DateTime::from_timestamp(secs, 0))
            .or(raw.created_at)
            .or(raw.time);
        if occurred_at.is_none() && !changes.is_empty() {
            return Err("timestamp: missing on a record with status/priority changes".to_owned());
        }
        Ok(Self {
            id: raw.id,
            ticket_id: raw.ticket_id,
            timestamp: raw.timestamp.or(occurred_at.map(|at| at.timestamp())),
            occurred_at,
            updater_id: raw.updater_id,
            changes,
        })
    }
}

/// One audit of a ticket (`/tickets/{id}/audits`), with its status/priority changes.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(try_from = "RawAudit")]
pub struct TicketAudit {
    /// Audit id.
    pub id: u64,
    /// The ticket.
    pub ticket_id: u64,
    /// When the audit happened.
    pub created_at: Timestamp,
    /// Who made it.
    pub author_id: Option<i64>,
    /// The status and priority changes it made, in order.
    pub changes: Vec<FieldChange>,
}

#[derive(Deserialize)]
struct RawAudit {
    id: u64,
    ticket_id: u64,
    #[serde(deserialize_with = "super::timestamp::required")]
    created_at: Timestamp,
    #[serde(default)]
    author_id: Option<i64>,
    #[serde(default, deserialize_with = "null_as_default")]
    events: Vec<Member>,
}

impl TryFrom<RawAudit> for TicketAudit {
    type Error = String;

    fn try_from(raw: RawAudit) -> Result<Self, Self::Error> {
        Ok(Self {
            id: raw.id,
            ticket_id: raw.ticket_id,
            created_at: raw.created_at,
            author_id: raw.author_id,
            changes: interpret_changes(&raw.events, "events")?,
        })
    }
}

/// Picks the status and priority Create/Change events out of a list of child events.
///
/// Two shapes exist: audits write `{"type": "Change", "field_name": "status", "value",
/// "previous_value"}`, the ticket events export writes `{"event_type": "Change", "status": "open",
/// "previous_value"}`. Anything else is not a change zdsync tracks and is skipped.
fn interpret_changes(children: &[Member], list_name: &str) -> Result<Vec<FieldChange>, String> {
    let mut changes = Vec::new();
    for (index, child) in children.iter().enumerate() {
        let at = |field: &str| format!("{list_name}[{index}].{field}");
        // Any other kind of value is no child event zdsync knows.
        let Member::Object(object) = child else {
            continue;
        };
        let kind_name = if object.event_type.is_present() {
            object.event_type.as_str()
        } else {
            object.kind.as_str()
        };
        let kind = match kind_name {
            Some("Change") => ChangeKind::Change,
            Some("Create") => ChangeKind::Create,
            _ => continue,
        };
        let (field, value_key, value) = match object.field_name.as_str() {
            Some(name @ ("status" | "priority")) => (name, "value", &object.value),
            Some(_) => continue,
            None if object.status.is_present() => ("status", "status", &object.status),
            None if object.priority.is_present() => ("priority", "priority", &object.priority),
            None => continue,
        };
        let value = value
            .optional_text()
            .map_err(|e| format!("{}: {e}", at(value_key)))?;
        let previous = object
            .previous_value
            .optional_text()
            .map_err(|e| format!("{}: {e}", at("previous_value")))?;
        let change = if field == "status" {
            let to = parse_word::<TicketStatus>(value)
                .map_err(|e| format!("{}: {e}", at(value_key)))?
                .ok_or_else(|| format!("{}: a status change without a status", at(value_key)))?;
            let from = parse_word::<TicketStatus>(previous)
                .map_err(|e| format!("{}: {e}", at("previous_value")))?;
            FieldChange::Status { kind, from, to }
        } else {
            let to = parse_word::<TicketPriority>(value)
                .map_err(|e| format!("{}: {e}", at(value_key)))?;
            let from = parse_word::<TicketPriority>(previous)
                .map_err(|e| format!("{}: {e}", at("previous_value")))?;
            FieldChange::Priority { kind, from, to }
        };
        changes.push(change);
    }
    Ok(changes)
}

/// The members of a child event that tell whether and how it changed a status or priority.
#[derive(Default)]
struct ChildMembers {
    event_type: Member,
    kind: Member,
    field_name: Member,
    status: Member,
    priority: Member,
    value: Member,
    previous_value: Member,
}

/// A child event, or one of its members, as the change rules see it: absent, null, text, an object with
/// the members they read, or another kind of JSON value (named for the error).
///
/// Decoded straight from the body rather than through a `serde_json::Value` (a map, its keys and every
/// member of every child allocated, then dropped): a first sync decodes a few hundred thousand children.
/// Every other member is skipped unread whatever its shape, as the `Value` route accepted any.
#[derive(Default)]
enum Member {
    #[default]
    Absent,
    Null,
    /// Text; the words these members normally hold are kept without an allocation.
    Known(&'static str),
    Text(String),
    Object(Box<ChildMembers>),
    Other(&'static str),
}

/// The words child events carry in the members zdsync reads: kinds, field names, statuses, priorities.
const KNOWN_WORDS: &[&str] = &[
    "Change", "Create", "status", "priority", "new", "open", "pending", "hold", "solved", "closed",
    "deleted", "low", "normal", "high", "urgent", "",
];

impl Member {
    /// Whether the object has the member at all (null counts), as `Map::contains_key` told.
    fn is_present(&self) -> bool {
        !matches!(self, Member::Absent)
    }

    /// The member's text, when it is text.
    fn as_str(&self) -> Option<&str> {
        match self {
            Member::Known(word) => Some(word),
            Member::Text(text) => Some(text),
            _ => None,
        }
    }

    /// The text; none when absent or null, an error for any other kind of value.
    fn optional_text(&self) -> Result<Option<&str>, String> {
        match self {
            Member::Object(_) => Err("expected a string or null, found an object".to_owned()),
            Member::Other(kind) => Err(format!("expected a string or null, found {kind}")),
            _ => Ok(self.as_str()),
        }
    }
}

impl<'de> Deserialize<'de> for Member {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct MemberVisitor;

        impl<'de> Visitor<'de> for MemberVisitor {
            type Value = Member;

            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("any JSON value")
            }

            fn visit_str<E: de::Error>(self, text: &str) -> Result<Member, E> {
                Ok(KNOWN_WORDS
                    .iter()
                    .find(|word| **word == text)
                    .map_or_else(|| Member::Text(text.to_owned()), |word| Member::Known(word)))
            }

            fn visit_unit<E: de::Error>(self) -> Result<Member, E> {
                Ok(Member::Null)
            }

            fn visit_bool<E: de::Error>(self, _: bool) -> Result<Member, E> {
                Ok(Member::Other("a boolean"))
            }

            fn visit_i64<E: de::Error>(self, _: i64) -> Result<Member, E> {
                Ok(Member::Other("a number"))
            }

            fn visit_u64<E: de::Error>(self, _: u64) -> Result<Member, E> {
                Ok(Member::Other("a number"))
            }

            fn visit_f64<E: de::Error>(self, _: f64) -> Result<Member, E> {
                Ok(Member::Other("a number"))
            }

            fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Member, A::Error> {
                while seq.next_element::<de::IgnoredAny>()?.is_some() {}
                Ok(Member::Other("an array"))
            }

            fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Member, A::Error> {
                let mut members = ChildMembers::default();
                // A repeated member keeps its last value, as a `serde_json::Map` did.
                while let Some(name) = map.next_key::<MemberName>()? {
                    let member = match name {
                        MemberName::EventType => &mut members.event_type,
                        MemberName::Kind => &mut members.kind,
                        MemberName::FieldName => &mut members.field_name,
                        MemberName::Status => &mut members.status,
                        MemberName::Priority => &mut members.priority,
                        MemberName::Value => &mut members.value,
                        MemberName::PreviousValue => &mut members.previous_value,
                        MemberName::Ignored => {
                            map.next_value::<de::IgnoredAny>()?;
                            continue;
                        }
                    };
                    *member = map.next_value()?;
                }
                Ok(Member::Object(Box::new(members)))
            }
        }

        deserializer.deserialize_any(MemberVisitor)
    }
}

/// Which member of [`ChildMembers`] a child event's key names, if any.
enum MemberName {
    EventType,
    Kind,
    FieldName,
    Status,
    Priority,
    Value,
    PreviousValue,
    Ignored,
}

impl<'de> Deserialize<'de> for MemberName {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct NameVisitor;

        impl Visitor<'_> for NameVisitor {
            type Value = MemberName;

            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("a member name")
            }

            fn visit_str<E: de::Error>(self, name: &str) -> Result<MemberName, E> {
                Ok(match name {
                    "event_type" => MemberName::EventType,
                    "type" => MemberName::Kind,
                    "field_name" => MemberName::FieldName,
                    "status" => MemberName::Status,
                    "priority" => MemberName::Priority,
                    "value" => MemberName::Value,
                    "previous_value" => MemberName::PreviousValue,
                    _ => MemberName::Ignored,
                })
            }
        }

        deserializer.deserialize_identifier(NameVisitor)
    }
}

/// Parses `open`, `high`, ...; empty text (how older data writes "no priority") is none.
fn parse_word<T: for<'de> Deserialize<'de>>(text: Option<&str>) -> Result<Option<T>, String> {
    match text.map(str::trim) {
        None | Some("" | "-") => Ok(None),
        Some(word) => T::deserialize(de::value::StrDeserializer::<de::value::Error>::new(word))
            .map(Some)
            .map_err(|err| err.to_string()),
    }
}

/// Deserializes `null` as the type's default (Zendesk writes null for empty lists and maps).
fn null_as_default<'de, D, T>(deserializer: D) -> Result<T, D::Error>
where
    D: Deserializer<'de>,
    T: Default + Deserialize<'de>,
{
    Ok(Option::<T>::deserialize(deserializer)?.unwrap_or_default())
}

/// A value Zendesk wraps either alone (`{"x": {...}}`, the real API) or in an array
/// (`{"x": [{...}]}`, some of its doc examples).
#[derive(Debug, Clone, PartialEq)]
pub struct OneOrMany<T>(pub Vec<T>);

impl<T> OneOrMany<T> {
    /// The first (normally the only) value.
    pub fn into_first(self) -> Option<T> {
        self.0.into_iter().next()
    }
}

impl<'de, T: Deserialize<'de>> Deserialize<'de> for OneOrMany<T> {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct OneOrManyVisitor<T>(std::marker::PhantomData<T>);

        impl<'de, T: Deserialize<'de>> Visitor<'de> for OneOrManyVisitor<T> {
            type Value = OneOrMany<T>;

            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("an object or an array of objects")
            }

            fn visit_map<A: MapAccess<'de>>(self, map: A) -> Result<Self::Value, A::Error> {
                T::deserialize(de::value::MapAccessDeserializer::new(map))
                    .map(|one| OneOrMany(vec![one]))
            }

            fn visit_seq<A: SeqAccess<'de>>(self, seq: A) -> Result<Self::Value, A::Error> {
                Vec::<T>::deserialize(de::value::SeqAccessDeserializer::new(seq)).map(OneOrMany)
            }
        }

        deserializer.deserialize_any(OneOrManyVisitor(std::marker::PhantomData))
    }
}

/// The user behind a set of credentials (`/users/me`); anonymous users have no id.
#[derive(Debug, Clone, PartialEq, Deserialize)]
pub struct CurrentUser {
    /// User id; null for the anonymous user Zendesk returns for unusable credentials.
    #[serde(default)]
    pub id: Option<u64>,
    /// Display name.
    #[serde(default)]
    pub name: Option<String>,
    /// Email.
    #[serde(default)]
    pub email: Option<String>,
    /// `end-user`, `agent` or `admin`.
    #[serde(default)]
    pub role: Option<String>,
}

#[cfg(test)]
mod tests {
    use super::*;

    fn event(json: Value) -> Result<TicketEvent, String> {
        serde_json::from_value(json).map_err(|e| e.to_string())
    }

    #[test]
    fn export_style_child_events() {
        let decoded = event(serde_json::json!({
            "id": 1, "ticket_id": 7, "timestamp": 1375964693, "event_type": "Audit",
            "child_events": [
                {"id": 2, "event_type": "Comment", "body": "hi"},
                {"id": 3, "event_type": "Change", "status": "open", "previous_value": "new"},
                {"id": 4, "event_type": "Change", "priority": null, "previous_value": "high"},
                {"id": 5, "event_type": "Create", "priority": "urgent"},
                {"id": 6, "event_type": "Change", "tags": ["a"]},
                "not an object"
            ]
        }));
        let decoded = decoded.map(|e| (e.occurred_at.map(|t| t.timestamp()), e.changes));
        assert_eq!(
            decoded,
            Ok((
                Some(1375964693),
                vec![
                    FieldChange::Status {
                        kind: ChangeKind::Change,
                        from: Some(TicketStatus::New),
                        to: TicketStatus::Open
                    },
                    FieldChange::Priority {
                        kind: ChangeKind::Change,
                        from: Some(TicketPriority::High),
                        to: None
                    },
                    FieldChange::Priority {
                        kind: ChangeKind::Create,
                        from: None,
                        to: Some(TicketPriority::Urgent)
                    },
                ]
            ))
        );
    }

    #[test]
    fn mistyped_status_names_the_child_field() {
        let err = event(serde_json::json!({
            "id": 1, "ticket_id": 7, "timestamp": 1,
            "child_events": [{"event_type": "Change", "status": 5}]
        }));
        assert!(
            matches!(err, Err(ref m) if m.contains("child_events[0].status")),
            "{err:?}"
        );
        let unknown = event(serde_json::json!({
            "id": 1, "ticket_id": 7, "timestamp": 1,
            "child_events": [{"event_type": "Change", "status": "exploded"}]
        }));
        assert!(unknown.is_err());
    }

    #[test]
    fn child_members_read_as_a_json_object_would() {
        let changes = |children: Value| {
            event(serde_json::json!({"id": 1, "ticket_id": 7, "timestamp": 1, "child_events": children}))
                .map(|e| e.changes)
        };
        let status = |from, to| FieldChange::Status {
            kind: ChangeKind::Change,
            from,
            to,
        };
        // A present `event_type` rules, even when it is not text; `type` only stands in when it is absent.
        assert_eq!(
            changes(serde_json::json!([
                {"event_type": null, "type": "Change", "status": "open"},
                {"event_type": 3, "type": "Change", "status": "open"},
                {"type": "Change", "status": "open", "body": {"nested": [1, {"a": null}]}},
                [1, 2], 5, null, true
            ])),
            Ok(vec![status(None, TicketStatus::Open)])
        );
        // A `field_name` that is not text falls back to the member names; the last of a repeated member counts.
        let body = br#"{"id": 1, "ticket_id": 7, "timestamp": 1, "child_events": [
            {"event_type": "Change", "field_name": 4, "status": "new", "status": "solved", "previous_value": "open"}
        ]}"#;
        let decoded: Result<TicketEvent, _> = serde_json::from_slice(body);
        assert_eq!(
            decoded.map(|e| e.changes).map_err(|e| e.to_string()),
            Ok(vec![status(Some(TicketStatus::Open), TicketStatus::Solved)])
        );
        for (wrong, kind) in [
            (serde_json::json!(true), "a boolean"),
            (serde_json::json!(1.5), "a number"),
            (serde_json::json!(["open"]), "an array"),
            (serde_json::json!({"name": "open"}), "an object"),
        ] {
            let err = changes(serde_json::json!([
                {"event_type": "Create", "field_name": "priority", "value": wrong}
            ]));
            assert!(
                matches!(err, Err(ref m) if m.contains(&format!("child_events[0].value: expected a string or null, found {kind}"))),
                "{err:?}"
            );
        }
        let err = changes(serde_json::json!([
            "skipped", {"event_type": "Change", "status": "open", "previous_value": "sideways"}
        ]));
        assert!(
            matches!(err, Err(ref m) if m.contains("child_events[1].previous_value") && m.contains("sideways")),
            "{err:?}"
        );
        assert!(
            changes(serde_json::json!({"status": "open"})).is_err(),
            "a list is required"
        );
    }

    #[test]
    fn changes_need_a_time() {
        let err = event(serde_json::json!({
            "id": 1, "ticket_id": 7,
            "child_events": [{"event_type": "Change", "status": "open"}]
        }));
        assert!(
            matches!(err, Err(ref m) if m.contains("timestamp")),
            "{err:?}"
        );
    }

    fn ticket_with(rating: Option<Value>) -> Result<Ticket, String> {
        let mut json = serde_json::json!({
            "id": 7, "status": "solved", "created_at": "2024-01-02T03:04:05Z",
            "updated_at": "2024-01-03T03:04:05Z", "generated_timestamp": 1704251045
        });
        if let (Some(rating), Some(object)) = (rating, json.as_object_mut()) {
            object.insert("satisfaction_rating".to_owned(), rating);
        }
        let body =
            serde_json::to_vec(&serde_json::json!({ "tickets": [json], "end_of_stream": true }))
                .map_err(|e| e.to_string())?;
        crate::zendesk::decode::decode_json::<crate::zendesk::envelope::TicketCursorPage>(
            "tickets", &body,
        )
        .map_err(|e| e.to_string())
        .and_then(|page| {
            page.tickets
                .into_iter()
                .next()
                .ok_or_else(|| "no ticket".to_owned())
        })
    }

    fn rating_of(rating: Option<Value>) -> Result<Option<TicketSatisfaction>, String> {
        ticket_with(rating).map(|t| t.satisfaction_rating)
    }

    #[test]
    fn ticket_satisfaction_absent_or_null_is_none() {
        assert_eq!(rating_of(None), Ok(None));
        assert_eq!(rating_of(Some(Value::Null)), Ok(None));
    }

    #[test]
    fn ticket_satisfaction_with_a_rating() {
        let rating = serde_json::json!({"comment": "Great support!", "id": 1234, "score": "good"});
        assert_eq!(
            rating_of(Some(rating)),
            Ok(Some(TicketSatisfaction {
                id: Some(1234),
                score: SatisfactionScore::Good,
                comment: Some("Great support!".to_owned()),
            }))
        );
        let bad = serde_json::json!({"id": 9, "score": "bad", "comment": null});
        assert_eq!(
            rating_of(Some(bad)),
            Ok(Some(TicketSatisfaction {
                id: Some(9),
                score: SatisfactionScore::Bad,
                comment: None,
            }))
        );
    }

    #[test]
    fn ticket_satisfaction_offered_and_unoffered_have_no_id() {
        for (word, score) in [
            ("offered", SatisfactionScore::Offered),
            ("unoffered", SatisfactionScore::Unoffered),
        ] {
            assert_eq!(
                rating_of(Some(serde_json::json!({ "score": word }))),
                Ok(Some(TicketSatisfaction {
                    id: None,
                    score,
                    comment: None,
                }))
            );
        }
    }

    #[test]
    fn mistyped_ticket_satisfaction_names_the_field() {
        for wrong in [
            serde_json::json!("good"),
            serde_json::json!({"id": "1234", "score": "good"}),
            serde_json::json!({"id": 1, "score": 5}),
            serde_json::json!({"id": 1}),
        ] {
            let err = rating_of(Some(wrong.clone()));
            assert!(
                matches!(err, Err(ref m) if m.contains("tickets[0].satisfaction_rating")),
                "{wrong}: {err:?}"
            );
        }
    }

    #[test]
    fn satisfaction_child_events_are_skipped() {
        let decoded = event(serde_json::json!({
            "id": 1, "ticket_id": 7, "timestamp": 1375964693, "event_type": "Audit",
            "child_events": [
                {"id": 2, "event_type": "SatisfactionRating", "score": "bad",
                 "assignee_id": 3, "body": "slow"},
                {"id": 3, "event_type": "Change", "status": "closed", "previous_value": "solved"}
            ]
        }));
        assert_eq!(
            decoded.map(|e| e.changes),
            Ok(vec![FieldChange::Status {
                kind: ChangeKind::Change,
                from: Some(TicketStatus::Solved),
                to: TicketStatus::Closed
            }])
        );
        let audit: Result<TicketAudit, String> = serde_json::from_value(serde_json::json!({
            "id": 1, "ticket_id": 7, "created_at": "2024-01-02T03:04:05Z",
            "events": [{"id": 2, "type": "SatisfactionRating", "score": "good",
                        "assignee_id": 3, "body": null}]
        }))
        .map_err(|e| e.to_string());
        assert_eq!(audit.map(|a| a.changes), Ok(Vec::new()));
    }

    #[test]
    fn scores() {
        let scores: Vec<SatisfactionScore> =
            serde_json::from_str(r#"["good","bad_with_comment","offered","new_kind"]"#)
                .unwrap_or_default();
        assert_eq!(scores.len(), 4);
        assert!(scores[0].is_good() && scores[1].is_bad());
        assert_eq!(scores[3].as_str(), "new_kind");
    }
}
