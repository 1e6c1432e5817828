//! Zendesk's JSON shapes, written straight from the compact records with serde (no
//! intermediate `serde_json::Value`).
use serde::ser::{SerializeMap, SerializeSeq};
use serde::{Serialize, Serializer};

use super::data::{
    Audit, Dataset, Group, Organization, Rating, SatisfactionEvent, Text, Ticket, User,
    METRIC_SET_ID_BASE,
};
use super::generate::{DESCRIPTIONS, SUBJECTS, TICKET_TYPES, TIME_ZONES};
use super::model::Score;
use super::timefmt::iso8601;

/// `{}` in `via.source.from` / `to`.
struct EmptyObject;

impl Serialize for EmptyObject {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_map(Some(0))?.end()
    }
}

/// `[]`.
struct EmptyArray;

impl Serialize for EmptyArray {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_seq(Some(0))?.end()
    }
}

/// `via: {channel, source: {from: {}, to: {}, rel: null}}`.
struct Via(&'static str);

impl Serialize for Via {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        struct Source;
        impl Serialize for Source {
            fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
                let mut map = s.serialize_map(Some(3))?;
                map.serialize_entry("from", &EmptyObject)?;
                map.serialize_entry("to", &EmptyObject)?;
                map.serialize_entry("rel", &None::<()>)?;
                map.end()
            }
        }
        let mut map = s.serialize_map(Some(2))?;
        map.serialize_entry("channel", self.0)?;
        map.serialize_entry("source", &Source)?;
        map.end()
    }
}

/// A tag list.
struct Tags<'a>(&'a [std::sync::Arc<str>]);

impl Serialize for Tags<'_> {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        let mut seq = s.serialize_seq(Some(self.0.len()))?;
        for tag in self.0 {
            seq.serialize_element(&**tag)?;
        }
        seq.end()
    }
}

/// An entity URL `{base}/api/v2/{kind}/{id}.json`, formatted while serializing.
struct Url<'a> {
    base: &'a str,
    kind: &'static str,
    id: u64,
}

impl Serialize for Url<'_> {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_str(&format_args!(
            "{}/api/v2/{}/{}.json",
            self.base, self.kind, self.id
        ))
    }
}

/// A record wrapped for serialization, with the base URL of its `url`.
pub(crate) struct Rendered<'a, T> {
    record: &'a T,
    base: &'a str,
}

impl<'a, T> Rendered<'a, T> {
    /// Wraps a record for serialization.
    pub(crate) fn new(record: &'a T, base: &'a str) -> Self {
        Self { record, base }
    }
}

/// A user as the users export and `users/me` show it.
pub(crate) type UserJson<'a> = Rendered<'a, User>;
/// An organization as the organizations export shows it.
pub(crate) type OrganizationJson<'a> = Rendered<'a, Organization>;
/// A group as `groups.json` shows it.
pub(crate) type GroupJson<'a> = Rendered<'a, Group>;
/// A satisfaction rating as `satisfaction_ratings.json` shows it.
pub(crate) type RatingJson<'a> = Rendered<'a, Rating>;

/// Opens the map of a record of `len` fields that starts with its `url`
/// (`{base}/api/v2/{kind}/{id}.json`) and its `id`, as every Zendesk record does.
fn open_record<S: Serializer>(
    s: S,
    len: usize,
    base: &str,
    kind: &'static str,
    id: u64,
) -> Result<S::SerializeMap, S::Error> {
    crate::background::step_aside();
    let mut map = s.serialize_map(Some(len))?;
    map.serialize_entry("url", &Url { base, kind, id })?;
    map.serialize_entry("id", &id)?;
    Ok(map)
}

fn text<'a>(value: &'a Text, templates: &'static [&'static str]) -> &'a str {
    match value {
        Text::Template(i) => templates.get(usize::from(*i)).copied().unwrap_or(""),
        Text::Custom(s) => s,
    }
}

/// A ticket as the incremental export shows it.
pub(crate) struct TicketJson<'a> {
    data: &'a Dataset,
    ticket: &'a Ticket,
    base: &'a str,
}

impl<'a> TicketJson<'a> {
    /// Wraps a ticket for serialization.
    pub(crate) fn new(data: &'a Dataset, ticket: &'a Ticket, base: &'a str) -> Self {
        Self { data, ticket, base }
    }
}

/// `satisfaction_rating` on a ticket: `{id, score, comment}` once scored, only
/// `{"score": "offered"}` while the survey waits for an answer (Zendesk's "state of
/// satisfaction"; see [`Rating`]).
struct TicketRating<'a>(&'a Rating);

impl Serialize for TicketRating<'_> {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        if self.0.score == Score::Offered {
            let mut map = s.serialize_map(Some(1))?;
            map.serialize_entry("score", self.0.score.as_str())?;
            return map.end();
        }
        let mut map = s.serialize_map(Some(3))?;
        map.serialize_entry("id", &self.0.id)?;
        map.serialize_entry("score", self.0.score.as_str())?;
        map.serialize_entry("comment", &self.0.comment.as_deref())?;
        map.end()
    }
}

impl Serialize for TicketJson<'_> {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        let t = self.ticket;
        let subject = match &t.subject {
            Text::Template(_) => text(&t.subject, SUBJECTS),
            Text::Custom(s) => s,
        };
        let description = match &t.subject {
            Text::Template(i) => DESCRIPTIONS.get(usize::from(*i)).copied().unwrap_or(""),
            Text::Custom(s) => s,
        };
        let mut map = open_record(s, 44, self.base, "tickets", t.id)?;
        map.serialize_entry("external_id", &None::<()>)?;
        map.serialize_entry("via", &Via(t.via.as_str()))?;
        map.serialize_entry("created_at", &iso8601(t.created_at))?;
        map.serialize_entry("updated_at", &iso8601(t.updated_at))?;
        map.serialize_entry(
            "type",
            &t.ticket_type.and_then(|i| TICKET_TYPES.get(usize::from(i))),
        )?;
        map.serialize_entry("subject", subject)?;
        map.serialize_entry("raw_subject", subject)?;
        map.serialize_entry("description", description)?;
        map.serialize_entry("priority", &t.priority.map(super::model::Priority::as_str))?;
        map.serialize_entry("status", t.status.name())?;
        map.serialize_entry("recipient", &None::<()>)?;
        map.serialize_entry("requester_id", &t.requester_id)?;
        map.serialize_entry("submitter_id", &t.submitter_id)?;
        map.serialize_entry("assignee_id", &t.assignee_id)?;
        map.serialize_entry("organization_id", &t.organization_id)?;
        map.serialize_entry("group_id", &t.group_id)?;
        map.serialize_entry("collaborator_ids", &EmptyArray)?;
        map.serialize_entry("follower_ids", &EmptyArray)?;
        map.serialize_entry("email_cc_ids", &EmptyArray)?;
        map.serialize_entry("forum_topic_id", &None::<()>)?;
        map.serialize_entry("problem_id", &None::<()>)?;
        map.serialize_entry("has_incidents", &false)?;
        map.serialize_entry("is_public", &true)?;
        map.serialize_entry("due_at", &None::<()>)?;
        map.serialize_entry("tags", &Tags(&t.tags))?;
        map.serialize_entry("custom_fields", &EmptyArray)?;
        map.serialize_entry(
            "satisfaction_rating",
            &t.rating
                .and_then(|i| self.data.rating_at(i))
                .map(TicketRating),
        )?;
        map.serialize_entry("sharing_agreement_ids", &EmptyArray)?;
        map.serialize_entry("custom_status_id", &(900 + t.status as u64))?;
        map.serialize_entry("fields", &EmptyArray)?;
        map.serialize_entry("followup_ids", &EmptyArray)?;
        map.serialize_entry("ticket_form_id", &1_u64)?;
        map.serialize_entry("brand_id", &1_u64)?;
        map.serialize_entry("allow_channelback", &false)?;
        map.serialize_entry("allow_attachments", &true)?;
        map.serialize_entry("from_messaging_channel", &false)?;
        map.serialize_entry("generated_timestamp", &t.generated_timestamp)?;
        map.end()
    }
}

/// A ticket's metric set (`metric_sets` side-load).
pub(crate) struct MetricSetJson<'a> {
    ticket: &'a Ticket,
    base: &'a str,
}

impl<'a> MetricSetJson<'a> {
    /// Wraps a ticket's metrics for serialization.
    pub(crate) fn new(ticket: &'a Ticket, base: &'a str) -> Self {
        Self { ticket, base }
    }
}

/// `{calendar, business}` minute pair.
struct Minutes(Option<i64>);

impl Serialize for Minutes {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        let mut map = s.serialize_map(Some(2))?;
        map.serialize_entry("calendar", &self.0)?;
        map.serialize_entry("business", &self.0)?;
        map.end()
    }
}

impl Serialize for MetricSetJson<'_> {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        let t = self.ticket;
        let id = METRIC_SET_ID_BASE + t.id;
        let resolution = t.solved_at.map(|at| (at - t.created_at) / 60);
        let mut map = open_record(s, 22, self.base, "ticket_metrics", id)?;
        map.serialize_entry("ticket_id", &t.id)?;
        map.serialize_entry("created_at", &iso8601(t.created_at))?;
        map.serialize_entry("updated_at", &iso8601(t.updated_at))?;
        map.serialize_entry("group_stations", &u32::from(t.group_id.is_some()))?;
        map.serialize_entry("assignee_stations", &u32::from(t.assignee_id.is_some()))?;
        map.serialize_entry("reopens", &t.reopens)?;
        map.serialize_entry("replies", &t.replies)?;
        map.serialize_entry("assignee_updated_at", &t.assigned_at.map(iso8601))?;
        map.serialize_entry("requester_updated_at", &iso8601(t.created_at))?;
        map.serialize_entry("status_updated_at", &iso8601(t.status_updated_at))?;
        map.serialize_entry("initially_assigned_at", &t.assigned_at.map(iso8601))?;
        map.serialize_entry("assigned_at", &t.assigned_at.map(iso8601))?;
        map.serialize_entry("solved_at", &t.solved_at.map(iso8601))?;
        map.serialize_entry("latest_comment_added_at", &iso8601(t.updated_at))?;
        map.serialize_entry("reply_time_in_minutes", &Minutes(None))?;
        map.serialize_entry("first_resolution_time_in_minutes", &Minutes(resolution))?;
        map.serialize_entry("full_resolution_time_in_minutes", &Minutes(resolution))?;
        map.serialize_entry("agent_wait_time_in_minutes", &Minutes(None))?;
        map.serialize_entry("requester_wait_time_in_minutes", &Minutes(None))?;
        map.serialize_entry("on_hold_time_in_minutes", &Minutes(Some(0)))?;
        map.end()
    }
}

impl Serialize for UserJson<'_> {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        crate::background::step_aside();
        let u = self.record;
        let zone = TIME_ZONES
            .get(usize::from(u.time_zone))
            .copied()
            .unwrap_or(("UTC", "Etc/UTC"));
        let mut map = s.serialize_map(Some(36))?;
        map.serialize_entry("id", &u.id)?;
        map.serialize_entry(
            "url",
            &Url {
                base: self.base,
                kind: "users",
                id: u.id,
            },
        )?;
        map.serialize_entry("name", &*u.name)?;
        map.serialize_entry("email", &*u.email)?;
        map.serialize_entry("created_at", &iso8601(u.created_at))?;
        map.serialize_entry("updated_at", &iso8601(u.updated_at))?;
        map.serialize_entry("time_zone", zone.0)?;
        map.serialize_entry("iana_time_zone", zone.1)?;
        map.serialize_entry("phone", &None::<()>)?;
        map.serialize_entry("shared_phone_number", &None::<()>)?;
        map.serialize_entry("photo", &None::<()>)?;
        map.serialize_entry("locale_id", &1)?;
        map.serialize_entry("locale", "en-US")?;
        map.serialize_entry("organization_id", &u.organization_id)?;
        map.serialize_entry("role", u.role.as_str())?;
        map.serialize_entry("verified", &true)?;
        map.serialize_entry("external_id", &None::<()>)?;
        map.serialize_entry("tags", &EmptyArray)?;
        map.serialize_entry("alias", &None::<()>)?;
        map.serialize_entry("active", &u.active)?;
        map.serialize_entry("shared", &false)?;
        map.serialize_entry("shared_agent", &false)?;
        map.serialize_entry("last_login_at", &None::<()>)?;
        map.serialize_entry("two_factor_auth_enabled", &false)?;
        map.serialize_entry("signature", &None::<()>)?;
        map.serialize_entry("details", &None::<()>)?;
        map.serialize_entry("notes", &None::<()>)?;
        map.serialize_entry("role_type", &None::<()>)?;
        map.serialize_entry("custom_role_id", &None::<()>)?;
        map.serialize_entry("moderator", &(u.role != super::model::Role::EndUser))?;
        map.serialize_entry(
            "ticket_restriction",
            &(u.role == super::model::Role::EndUser).then_some("requested"),
        )?;
        map.serialize_entry("only_private_comments", &false)?;
        map.serialize_entry("restricted_agent", &(u.role == super::model::Role::EndUser))?;
        map.serialize_entry("suspended", &false)?;
        map.serialize_entry("default_group_id", &None::<()>)?;
        map.serialize_entry("report_csv", &false)?;
        map.serialize_entry("user_fields", &EmptyObject)?;
        map.end()
    }
}

impl Serialize for OrganizationJson<'_> {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        let o = self.record;
        let mut map = open_record(s, 14, self.base, "organizations", o.id)?;
        map.serialize_entry("name", &*o.name)?;
        map.serialize_entry("shared_tickets", &false)?;
        map.serialize_entry("shared_comments", &false)?;
        map.serialize_entry("external_id", &o.external_id.as_deref())?;
        map.serialize_entry("created_at", &iso8601(o.created_at))?;
        map.serialize_entry("updated_at", &iso8601(o.updated_at))?;
        map.serialize_entry("domain_names", &o.domain_names)?;
        map.serialize_entry("details", &None::<()>)?;
        map.serialize_entry("notes", &None::<()>)?;
        map.serialize_entry("group_id", &o.group_id)?;
        map.serialize_entry("tags", &Tags(&o.tags))?;
        map.serialize_entry("organization_fields", &o.organization_fields)?;
        map.end()
    }
}

impl Serialize for GroupJson<'_> {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        let g = self.record;
        let mut map = open_record(s, 9, self.base, "groups", g.id)?;
        map.serialize_entry("name", &*g.name)?;
        map.serialize_entry("description", &*g.description)?;
        map.serialize_entry("default", &g.default)?;
        map.serialize_entry("deleted", &false)?;
        map.serialize_entry("is_public", &true)?;
        map.serialize_entry("created_at", &iso8601(g.created_at))?;
        map.serialize_entry("updated_at", &iso8601(g.updated_at))?;
        map.end()
    }
}

impl Serialize for RatingJson<'_> {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        let r = self.record;
        let mut map = open_record(s, 12, self.base, "satisfaction_ratings", r.id)?;
        map.serialize_entry("assignee_id", &r.assignee_id)?;
        map.serialize_entry("group_id", &r.group_id)?;
        map.serialize_entry("requester_id", &r.requester_id)?;
        map.serialize_entry("ticket_id", &r.ticket_id)?;
        map.serialize_entry("score", r.score.as_str())?;
        map.serialize_entry("comment", &r.comment.as_deref())?;
        map.serialize_entry("reason", &None::<()>)?;
        map.serialize_entry("reason_code", &None::<()>)?;
        map.serialize_entry("created_at", &iso8601(r.created_at))?;
        map.serialize_entry("updated_at", &iso8601(r.updated_at))?;
        map.end()
    }
}

/// A ticket audit as the ticket events export shows it.
pub(crate) struct AuditJson<'a>(pub(crate) &'a Audit);

/// One child event of an audit.
struct ChildEvent {
    id: u64,
    create: bool,
    field_name: &'static str,
    value: Option<&'static str>,
    previous_value: Option<&'static str>,
}

impl Serialize for ChildEvent {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        let mut map = s.serialize_map(Some(5))?;
        map.serialize_entry("id", &self.id)?;
        map.serialize_entry("event_type", if self.create { "Create" } else { "Change" })?;
        map.serialize_entry("field_name", self.field_name)?;
        map.serialize_entry("value", &self.value)?;
        if !self.create {
            map.serialize_entry("previous_value", &self.previous_value)?;
        }
        map.end()
    }
}

/// A satisfaction rating child event, as the ticket events export writes the audit event
/// `{"type": "SatisfactionRating", "score", "assignee_id", "body"}` (see [`Rating`]).
struct SatisfactionChild<'a> {
    id: u64,
    event: &'a SatisfactionEvent,
}

impl Serialize for SatisfactionChild<'_> {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        let mut map = s.serialize_map(Some(5))?;
        map.serialize_entry("id", &self.id)?;
        map.serialize_entry("event_type", "SatisfactionRating")?;
        map.serialize_entry("score", self.event.score.as_str())?;
        map.serialize_entry("assignee_id", &self.event.assignee_id)?;
        map.serialize_entry("body", &self.event.comment.as_deref())?;
        map.end()
    }
}

/// The child events of an audit.
struct ChildEvents<'a>(&'a Audit);

impl Serialize for ChildEvents<'_> {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        let a = self.0;
        let mut seq = s.serialize_seq(None)?;
        if let Some((previous, value)) = a.status {
            seq.serialize_element(&ChildEvent {
                id: a.id * 4,
                create: a.create,
                field_name: "status",
                value: Some(value.name()),
                previous_value: previous.map(super::super::domain::ticket::Status::name),
            })?;
        }
        if let Some((previous, value)) = a.priority {
            seq.serialize_element(&ChildEvent {
                id: a.id * 4 + 1,
                create: a.create,
                field_name: "priority",
                value: value.map(super::model::Priority::as_str),
                previous_value: previous.map(super::model::Priority::as_str),
            })?;
        }
        if let Some(event) = &a.satisfaction {
            seq.serialize_element(&SatisfactionChild {
                id: a.id * 4 + 2,
                event,
            })?;
        }
        seq.end()
    }
}

impl Serialize for AuditJson<'_> {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        crate::background::step_aside();
        let a = self.0;
        let mut map = s.serialize_map(Some(9))?;
        map.serialize_entry("id", &a.id)?;
        map.serialize_entry("ticket_id", &a.ticket_id)?;
        map.serialize_entry("timestamp", &a.timestamp)?;
        map.serialize_entry("created_at", &iso8601(a.timestamp))?;
        map.serialize_entry("updater_id", &a.updater_id)?;
        map.serialize_entry("via", &Via(a.via.as_str()))?;
        map.serialize_entry("event_type", "Audit")?;
        map.serialize_entry("merged_ticket_ids", &EmptyArray)?;
        map.serialize_entry("child_events", &ChildEvents(a))?;
        map.end()
    }
}
