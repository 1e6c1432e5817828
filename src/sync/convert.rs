//! Turns decoded Zendesk pages into the records one page transaction writes.
use crate::domain::ticket::Priority;
use crate::store::page::{PageWrite, TicketChange, TicketRating};
use crate::store::zendesk_records::{
    ChangeRecord, GroupRecord, OrganizationRecord, RatingRecord, TicketRecord, ZendeskUserRecord,
    CHANGE_FIELD_PRIORITY, CHANGE_FIELD_STATUS,
};
use crate::zendesk::payload::{
    FieldChange, Group, Organization, SatisfactionRating, Ticket, TicketEvent, TicketMetricSet,
    User,
};
use crate::zendesk::TicketSideLoads;

/// The domain priority of a Zendesk priority (none when unset).
pub fn priority(priority: Option<Priority>) -> Priority {
    priority.unwrap_or(Priority::None)
}

/// The stored form of a ticket, with its metric set if the page side-loaded one.
///
/// The converters take the decoded records by value: their strings move into the stored form instead of being
/// copied and then freed with the page (a ticket page side-loads about a thousand users and metric sets).
pub fn ticket(ticket: Ticket, metrics: Option<&TicketMetricSet>) -> TicketRecord {
    TicketRecord {
        subject: ticket.subject.unwrap_or_default(),
        status: ticket.status.code(),
        priority: priority(ticket.priority).code(),
        requester_id: ticket.requester_id.unwrap_or(0),
        assignee_id: ticket.assignee_id.unwrap_or(0),
        group_id: ticket.group_id.unwrap_or(0),
        organization_id: ticket.organization_id.unwrap_or(0),
        created_at: ticket.created_at.timestamp(),
        updated_at: ticket.updated_at.timestamp(),
        generated_timestamp: ticket.generated_timestamp,
        reopens: metrics.and_then(|m| m.reopens).unwrap_or(0),
        solved_at: metrics
            .and_then(|m| m.solved_at)
            .map_or(0, |t| t.timestamp()),
        gone: false,
    }
}

/// The stored form of an organization; non-text custom fields are kept as their JSON text.
pub fn organization(org: Organization) -> OrganizationRecord {
    let fields = org
        .organization_fields
        .into_iter()
        .filter_map(|(key, value)| {
            let text = match value {
                serde_json::Value::Null => return None,
                serde_json::Value::String(text) => text,
                other => other.to_string(),
            };
            Some((key, text))
        })
        .collect();
    OrganizationRecord {
        name: org.name,
        has_external_id: org.external_id.is_some(),
        external_id: org.external_id.unwrap_or_default(),
        domain_names: org.domain_names,
        fields,
        updated_at: org.updated_at.timestamp(),
    }
}

/// The stored form of a user.
pub fn user(user: User) -> ZendeskUserRecord {
    ZendeskUserRecord {
        name: user.name.unwrap_or_default(),
        email: user.email.unwrap_or_default(),
        role: user.role.unwrap_or_default(),
        organization_id: user.organization_id.unwrap_or(0),
        active: user.active.unwrap_or(true),
        updated_at: user.updated_at.timestamp(),
    }
}

/// The stored form of a group.
pub fn group(group: Group) -> GroupRecord {
    GroupRecord {
        name: group.name,
        deleted: group.deleted,
    }
}

/// The stored form of a satisfaction rating.
pub fn rating(rating: SatisfactionRating) -> RatingRecord {
    RatingRecord {
        ticket_id: rating.ticket_id,
        score: rating.score.as_str().to_owned(),
        comment: rating.comment.unwrap_or_default(),
        requester_id: rating.requester_id.unwrap_or(0),
        created_at: rating.created_at.timestamp(),
        updated_at: rating.updated_at.timestamp(),
        from_ticket: false,
    }
}

/// A ticket export page with its side-loads, ready to apply.
pub fn ticket_page(tickets: Vec<Ticket>, side_loads: TicketSideLoads) -> PageWrite {
    let metrics: std::collections::HashMap<u64, &TicketMetricSet> = side_loads
        .metric_sets
        .iter()
        .map(|m| (m.ticket_id, m))
        .collect();
    let ticket_ratings = tickets.iter().filter_map(ticket_rating).collect();
    PageWrite {
        tickets: tickets
            .into_iter()
            .map(|t| {
                let metric_set = metrics.get(&t.id).copied();
                (t.id, ticket(t, metric_set))
            })
            .collect(),
        users: side_loads
            .users
            .into_iter()
            .map(|u| (u.id, user(u)))
            .collect(),
        organizations: side_loads
            .organizations
            .into_iter()
            .map(|o| (o.id, organization(o)))
            .collect(),
        groups: side_loads
            .groups
            .into_iter()
            .map(|g| (g.id, group(g)))
            .collect(),
        ticket_ratings,
        ..Default::default()
    }
}

/// The rating a ticket carries, when it has one (an offered survey without a rating id is none).
pub fn ticket_rating(ticket: &Ticket) -> Option<TicketRating> {
    let rating = ticket.satisfaction_rating.as_ref()?;
    Some(TicketRating {
        rating_id: rating.id?,
        ticket_id: ticket.id,
        score: rating.score.as_str().to_owned(),
        comment: rating.comment.clone().unwrap_or_default(),
        seen_at: ticket.updated_at.timestamp(),
    })
}

/// The status and priority changes of a ticket events page.
pub fn ticket_changes(events: &[TicketEvent]) -> Vec<TicketChange> {
    let mut changes = Vec::new();
    for event in events {
        let Some(at) = event.timestamp else { continue };
        for (index, change) in event.changes.iter().enumerate() {
            let record = match change {
                FieldChange::Status { from, to, .. } => ChangeRecord {
                    field: CHANGE_FIELD_STATUS,
                    from: from.map_or(0, super::super::domain::ticket::Status::code),
                    to: to.code(),
                },
                FieldChange::Priority { from, to, .. } => ChangeRecord {
                    field: CHANGE_FIELD_PRIORITY,
                    from: priority(*from).code(),
                    to: priority(*to).code(),
                },
            };
            changes.push(TicketChange {
                ticket_id: event.ticket_id,
                at,
                event_id: event.id,
                index: u32::try_from(index).unwrap_or(u32::MAX),
                change: record,
            });
        }
    }
    changes
}
