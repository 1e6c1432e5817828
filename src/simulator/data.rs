//! The in-memory data set: compact records, their export indexes, and the mutations the
//! control API performs on them.
use std::num::NonZeroU64;
use std::sync::Arc;

use serde_json::{Map, Value};

use super::index::SortedIndex;
use super::inputs::{
    NewRating, NewTicket, OrganizationInput, RatingScore, TicketUpdate, UserInput,
};
use super::model::{Channel, Priority, Role, Score, Status};

/// Users have ids `USER_ID_BASE + 1 ..`; the first is the admin.
pub(crate) const USER_ID_BASE: u64 = 10_000_000;
/// Organizations have ids `ORG_ID_BASE + 1 ..`.
pub(crate) const ORG_ID_BASE: u64 = 20_000_000;
/// Groups have ids `GROUP_ID_BASE + 1 ..`.
pub(crate) const GROUP_ID_BASE: u64 = 30_000_000;
/// Satisfaction ratings have ids `RATING_ID_BASE + 1 ..`.
pub(crate) const RATING_ID_BASE: u64 = 40_000_000;
/// Ticket audits (ticket events) have ids `AUDIT_ID_BASE + 1 ..`.
pub(crate) const AUDIT_ID_BASE: u64 = 50_000_000;
/// A ticket's metric set has id `METRIC_SET_ID_BASE + ticket id`.
pub(crate) const METRIC_SET_ID_BASE: u64 = 60_000_000;

/// Text that is either one of the generator's templates or set through the control API;
/// templates keep 200,000 generated tickets small.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Text {
    /// Index into a fixed template list.
    Template(u16),
    /// Free text.
    Custom(Box<str>),
}

/// One ticket, as compact as the export allows.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Ticket {
    pub(crate) id: u64,
    pub(crate) created_at: i64,
    pub(crate) updated_at: i64,
    pub(crate) generated_timestamp: i64,
    pub(crate) status: Status,
    pub(crate) priority: Option<Priority>,
    pub(crate) ticket_type: Option<u8>,
    pub(crate) via: Channel,
    pub(crate) requester_id: u64,
    pub(crate) submitter_id: u64,
    pub(crate) assignee_id: Option<NonZeroU64>,
    pub(crate) group_id: Option<NonZeroU64>,
    pub(crate) organization_id: Option<NonZeroU64>,
    pub(crate) subject: Text,
    pub(crate) tags: Box<[Arc<str>]>,
    pub(crate) solved_at: Option<i64>,
    pub(crate) assigned_at: Option<i64>,
    pub(crate) status_updated_at: i64,
    pub(crate) reopens: u16,
    pub(crate) replies: u16,
    /// Index into `Dataset::ratings` of the ticket's latest rating.
    pub(crate) rating: Option<u32>,
}

/// One user (admin, agent or end-user).
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct User {
    pub(crate) id: u64,
    pub(crate) name: Box<str>,
    pub(crate) email: Box<str>,
    pub(crate) organization_id: Option<NonZeroU64>,
    pub(crate) role: Role,
    pub(crate) created_at: i64,
    pub(crate) updated_at: i64,
    pub(crate) active: bool,
    pub(crate) time_zone: u8,
}

/// One organization.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct Organization {
    pub(crate) id: u64,
    pub(crate) name: Box<str>,
    pub(crate) domain_names: Vec<Box<str>>,
    pub(crate) external_id: Option<Box<str>>,
    pub(crate) organization_fields: Map<String, Value>,
    pub(crate) tags: Box<[Arc<str>]>,
    pub(crate) group_id: Option<NonZeroU64>,
    pub(crate) created_at: i64,
    pub(crate) updated_at: i64,
}

/// One agent group.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Group {
    pub(crate) id: u64,
    pub(crate) name: Box<str>,
    pub(crate) description: Box<str>,
    pub(crate) default: bool,
    pub(crate) created_at: i64,
    pub(crate) updated_at: i64,
}

/// One satisfaction rating, with its lifecycle: offered (score `offered`), then scored good or
/// bad at `updated_at`, perhaps re-scored later.
///
/// How Zendesk shows each step, which the simulator mirrors:
/// - `/satisfaction_ratings` (<https://developer.zendesk.com/api-reference/ticketing/ticket-management/satisfaction_ratings/>)
///   lists ratings by `created_at` (the offer) and filters `start_time` on it; a later score
///   changes `score`, `comment` and `updated_at` only, so a list read from after the offer never
///   returns the rating again;
/// - the ticket's `satisfaction_rating` (<https://developer.zendesk.com/api-reference/ticketing/tickets/tickets/>):
///   "the satisfaction rating of the ticket, if it exists, or the state of satisfaction,
///   'offered' or 'unoffered'": `{"score": "offered"}` before an answer, `{id, score, comment}`
///   after; a score is a ticket update, so the ticket comes out of the incremental export again;
/// - that update is an audit holding a "Satisfaction rating event" (`type` `SatisfactionRating`,
///   `score`, `assignee_id`, `body` = the comment), per the Ticket Audit events reference
///   (<https://developer.zendesk.com/documentation/ticketing/reference-guides/ticket-audit-events-reference/>);
///   the incremental ticket events export (<https://developer.zendesk.com/api-reference/ticketing/ticket-management/incremental_exports/#incremental-ticket-event-export>)
///   writes it as a child event with `event_type` in place of `type`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Rating {
    pub(crate) id: u64,
    pub(crate) ticket_id: u64,
    pub(crate) score: Score,
    pub(crate) comment: Option<Box<str>>,
    pub(crate) requester_id: u64,
    pub(crate) assignee_id: Option<NonZeroU64>,
    pub(crate) group_id: Option<NonZeroU64>,
    pub(crate) created_at: i64,
    pub(crate) updated_at: i64,
}

/// The satisfaction rating event of an audit: the score the requester gave then.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct SatisfactionEvent {
    pub(crate) score: Score,
    /// The comment given with the score (the event's `body`).
    pub(crate) comment: Option<Box<str>>,
    /// The ticket's assignee when the score was given.
    pub(crate) assignee_id: Option<NonZeroU64>,
}

/// One ticket audit carrying status, priority and/or satisfaction rating events.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Audit {
    pub(crate) id: u64,
    pub(crate) ticket_id: u64,
    pub(crate) timestamp: i64,
    pub(crate) updater_id: u64,
    pub(crate) via: Channel,
    /// The audit that created the ticket (its events are `Create`, not `Change`).
    pub(crate) create: bool,
    /// `(previous, value)` of a status event.
    pub(crate) status: Option<(Option<Status>, Status)>,
    /// `(previous, value)` of a priority event.
    pub(crate) priority: Option<(Option<Priority>, Option<Priority>)>,
    /// A score given to the ticket's rating (boxed: most audits have none).
    pub(crate) satisfaction: Option<Box<SatisfactionEvent>>,
}

/// The whole simulated account.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct Dataset {
    /// Ticket `id` lives at index `id - 1`.
    pub(crate) tickets: Vec<Ticket>,
    /// `(generated_timestamp, id)` of every ticket.
    pub(crate) ticket_order: SortedIndex,
    /// User `id` lives at index `id - USER_ID_BASE - 1`.
    pub(crate) users: Vec<User>,
    /// `(updated_at, id)` of every user.
    pub(crate) user_order: SortedIndex,
    /// Organization `id` lives at index `id - ORG_ID_BASE - 1`.
    pub(crate) organizations: Vec<Organization>,
    /// `(updated_at, id)` of every organization.
    pub(crate) organization_order: SortedIndex,
    /// Group `id` lives at index `id - GROUP_ID_BASE - 1`.
    pub(crate) groups: Vec<Group>,
    /// Rating `id` lives at index `id - RATING_ID_BASE - 1`.
    pub(crate) ratings: Vec<Rating>,
    /// `(created_at, id)` of every rating.
    pub(crate) rating_order: SortedIndex,
    /// Audits sorted by `(timestamp, id)`.
    pub(crate) audits: Vec<Audit>,
    /// Ids of the agents (the admin included), for assignment.
    pub(crate) agent_ids: Vec<u64>,
}

/// Why a mutation was refused.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum MutationError {
    /// No record of that kind has that id.
    #[error("{kind} {id} not found")]
    NotFound {
        /// `ticket`, `user`, `organization`, `group`.
        kind: &'static str,
        /// The id asked for.
        id: u64,
    },
    /// The change is not allowed.
    #[error("invalid {field}: {reason}")]
    Invalid {
        /// The offending field.
        field: &'static str,
        /// Why.
        reason: String,
    },
}

/// A refused change of `field`.
fn invalid(field: &'static str, reason: impl Into<String>) -> MutationError {
    MutationError::Invalid {
        field,
        reason: reason.into(),
    }
}

/// A required field's value, refused when absent.
fn required(field: &'static str, value: &Option<String>) -> Result<String, MutationError> {
    value
        .clone()
        .ok_or_else(|| invalid(field, "cannot be blank"))
}

/// Checks the new value of a clearable field: `Some(None)` (clear) and `None` (keep) pass.
fn check_change<T>(
    change: Option<Option<u64>>,
    check: impl FnOnce(u64) -> Result<T, MutationError>,
) -> Result<Option<Option<T>>, MutationError> {
    change.map(|value| value.map(check).transpose()).transpose()
}

/// The key of a record changed at `now` in `order`: never behind the newest key, so a change
/// always lands after every cursor already handed out.
fn next_key(order: &SortedIndex, id: u64, now: i64) -> i64 {
    match order.last() {
        Some(newest) if newest >= (now, id) && newest.1 != id => newest.0 + 1,
        Some(newest) if newest.1 == id => now.max(newest.0),
        _ => now,
    }
}

/// Index of record `id` (of `kind`) among `len` records with ids `base + 1 ..`.
fn record_index(
    kind: &'static str,
    id: u64,
    base: u64,
    len: usize,
) -> Result<usize, MutationError> {
    dense_index(id, base, len).ok_or(MutationError::NotFound { kind, id })
}

fn dense_index(id: u64, base: u64, len: usize) -> Option<usize> {
    let offset = id.checked_sub(base + 1)?;
    let index = usize::try_from(offset).ok()?;
    (index < len).then_some(index)
}

impl Dataset {
    /// The ticket with `id`.
    pub(crate) fn ticket(&self, id: u64) -> Option<&Ticket> {
        dense_index(id, 0, self.tickets.len()).map(|i| &self.tickets[i])
    }

    /// The user with `id`.
    pub(crate) fn user(&self, id: u64) -> Option<&User> {
        dense_index(id, USER_ID_BASE, self.users.len()).map(|i| &self.users[i])
    }

    /// The organization with `id`.
    pub(crate) fn organization(&self, id: u64) -> Option<&Organization> {
        dense_index(id, ORG_ID_BASE, self.organizations.len()).map(|i| &self.organizations[i])
    }

    /// The group with `id`.
    pub(crate) fn group(&self, id: u64) -> Option<&Group> {
        dense_index(id, GROUP_ID_BASE, self.groups.len()).map(|i| &self.groups[i])
    }

    /// The rating at index `index`.
    pub(crate) fn rating_at(&self, index: u32) -> Option<&Rating> {
        self.ratings.get(usize::try_from(index).ok()?)
    }

    /// The rating with `id`.
    pub(crate) fn rating(&self, id: u64) -> Option<&Rating> {
        dense_index(id, RATING_ID_BASE, self.ratings.len()).map(|i| &self.ratings[i])
    }

    /// The admin user (the principal of every credential).
    pub(crate) fn admin(&self) -> Option<&User> {
        self.users.first()
    }

    /// The next audit id.
    fn next_audit_id(&self) -> u64 {
        AUDIT_ID_BASE + self.audits.len() as u64 + 1
    }

    /// Adds an audit, keeping `(timestamp, id)` order.
    pub(crate) fn push_audit(&mut self, audit: Audit) {
        let key = (audit.timestamp, audit.id);
        let at = self.audits.partition_point(|a| (a.timestamp, a.id) < key);
        self.audits.insert(at, audit);
    }

    /// Marks ticket `index` as changed at `now` (updated_at and generated_timestamp).
    fn touch_ticket(&mut self, index: usize, now: i64) {
        let id = self.tickets[index].id;
        let old_key = (self.tickets[index].generated_timestamp, id);
        self.ticket_order.remove(old_key);
        let generated = next_key(&self.ticket_order, id, now);
        let ticket = &mut self.tickets[index];
        ticket.updated_at = now.max(ticket.updated_at);
        ticket.generated_timestamp = generated.max(old_key.0);
        self.ticket_order.insert((ticket.generated_timestamp, id));
    }

    fn check_user(&self, field: &'static str, id: u64) -> Result<&User, MutationError> {
        self.user(id)
            .ok_or_else(|| invalid(field, format!("no user {id}")))
    }

    fn check_agent(&self, field: &'static str, id: u64) -> Result<NonZeroU64, MutationError> {
        let user = self.check_user(field, id)?;
        if user.role == Role::EndUser {
            return Err(invalid(field, format!("user {id} is not an agent")));
        }
        NonZeroU64::new(id).ok_or_else(|| invalid(field, "id 0"))
    }

    fn check_group(&self, id: u64) -> Result<NonZeroU64, MutationError> {
        self.group(id)
            .and_then(|g| NonZeroU64::new(g.id))
            .ok_or_else(|| invalid("group_id", format!("no group {id}")))
    }

    fn check_organization(&self, id: u64) -> Result<NonZeroU64, MutationError> {
        self.organization(id)
            .and_then(|o| NonZeroU64::new(o.id))
            .ok_or_else(|| invalid("organization_id", format!("no organization {id}")))
    }

    /// Creates a ticket at `now`; returns its id.
    pub(crate) fn create_ticket(
        &mut self,
        new: &NewTicket,
        now: i64,
    ) -> Result<u64, MutationError> {
        let requester_id = match new.requester_id {
            Some(id) => id,
            None => self
                .users
                .iter()
                .find(|u| u.role == Role::EndUser)
                .map_or(USER_ID_BASE + 1, |u| u.id),
        };
        let requester = self.check_user("requester_id", requester_id)?;
        let organization_id = requester.organization_id;
        let status = new.status.unwrap_or(Status::New);
        if status == Status::Deleted {
            return Err(invalid("status", "a ticket cannot be created deleted"));
        }
        let group_id = new.group_id.map(|g| self.check_group(g)).transpose()?;
        let assignee_id = new
            .assignee_id
            .map(|a| self.check_agent("assignee_id", a))
            .transpose()?;
        let subject = new.subject.clone().unwrap_or_else(|| "New ticket".into());
        let id = self.tickets.len() as u64 + 1;
        let generated = next_key(&self.ticket_order, id, now);
        let ticket = Ticket {
            id,
            created_at: now,
            updated_at: now,
            generated_timestamp: generated,
            status,
            priority: new.priority,
            ticket_type: None,
            via: Channel::Api,
            requester_id,
            submitter_id: requester_id,
            assignee_id,
            group_id,
            organization_id,
            subject: Text::Custom(subject.into_boxed_str()),
            tags: new.tags.iter().map(|t| Arc::from(t.as_str())).collect(),
            solved_at: matches!(status, Status::Solved | Status::Closed).then_some(now),
            assigned_at: assignee_id.map(|_| now),
            status_updated_at: now,
            reopens: 0,
            replies: 0,
            rating: None,
        };
        self.ticket_order.insert((ticket.generated_timestamp, id));
        self.tickets.push(ticket);
        let audit = Audit {
            id: self.next_audit_id(),
            ticket_id: id,
            timestamp: now,
            updater_id: requester_id,
            via: Channel::Api,
            create: true,
            status: Some((None, status)),
            priority: Some((None, new.priority)),
            satisfaction: None,
        };
        self.push_audit(audit);
        Ok(id)
    }

    fn ticket_index(&self, id: u64) -> Result<usize, MutationError> {
        record_index("ticket", id, 0, self.tickets.len())
    }

    /// Applies `update` to ticket `id` at `now`, recording status/priority events.
    pub(crate) fn update_ticket(
        &mut self,
        id: u64,
        update: &TicketUpdate,
        now: i64,
    ) -> Result<(), MutationError> {
        let index = self.ticket_index(id)?;
        let current = &self.tickets[index];
        if current.status == Status::Deleted {
            return Err(invalid("status", format!("ticket {id} is deleted")));
        }
        if current.status == Status::Closed {
            return Err(invalid(
                "status",
                format!("ticket {id} is closed and cannot be updated"),
            ));
        }
        if update.status == Some(Status::Deleted) {
            return Err(invalid("status", "delete the ticket instead"));
        }
        let group_id = check_change(update.group_id, |g| self.check_group(g))?;
        let assignee_id = check_change(update.assignee_id, |a| self.check_agent("assignee_id", a))?;
        let updater_id = match update.updater_id {
            Some(u) => self.check_user("updater_id", u)?.id,
            None => current.assignee_id.map_or_else(
                || self.admin().map_or(USER_ID_BASE + 1, |a| a.id),
                NonZeroU64::get,
            ),
        };
        let old_status = current.status;
        let old_priority = current.priority;
        let status_change = update
            .status
            .filter(|s| *s != old_status)
            .map(|s| (Some(old_status), s));
        let priority_change = update
            .priority
            .filter(|p| *p != old_priority)
            .map(|p| (old_priority, p));

        let ticket = &mut self.tickets[index];
        if let Some((_, new_status)) = status_change {
            let was_solved = matches!(old_status, Status::Solved | Status::Closed);
            let is_solved = matches!(new_status, Status::Solved | Status::Closed);
            if was_solved && !is_solved {
                ticket.reopens = ticket.reopens.saturating_add(1);
                ticket.solved_at = None;
            }
            if new_status == Status::Solved || (new_status == Status::Closed && !was_solved) {
                ticket.solved_at = Some(now);
            }
            ticket.status = new_status;
            ticket.status_updated_at = now;
        }
        if let Some((_, new_priority)) = priority_change {
            ticket.priority = new_priority;
        }
        if let Some(subject) = &update.subject {
            ticket.subject = Text::Custom(subject.clone().into_boxed_str());
        }
        if let Some(group_id) = group_id {
            ticket.group_id = group_id;
        }
        if let Some(assignee_id) = assignee_id {
            if assignee_id.is_some() && ticket.assigned_at.is_none() {
                ticket.assigned_at = Some(now);
            }
            ticket.assignee_id = assignee_id;
        }
        if let Some(tags) = &update.tags {
            ticket.tags = tags.iter().map(|t| Arc::from(t.as_str())).collect();
        }
        self.touch_ticket(index, now);
        if status_change.is_some() || priority_change.is_some() {
            let audit = Audit {
                id: self.next_audit_id(),
                ticket_id: id,
                timestamp: now,
                updater_id,
                via: Channel::Web,
                create: false,
                status: status_change,
                priority: priority_change,
                satisfaction: None,
            };
            self.push_audit(audit);
        }
        Ok(())
    }

    /// Deletes ticket `id`: exports then show it with status `deleted`.
    pub(crate) fn delete_ticket(&mut self, id: u64, now: i64) -> Result<(), MutationError> {
        let index = self.ticket_index(id)?;
        if self.tickets[index].status == Status::Deleted {
            return Err(MutationError::NotFound { kind: "ticket", id });
        }
        self.tickets[index].status = Status::Deleted;
        self.touch_ticket(index, now);
        Ok(())
    }

    /// Adds a satisfaction rating to ticket `id` at `now`; returns the rating id.
    pub(crate) fn add_rating(
        &mut self,
        ticket_id: u64,
        new: &NewRating,
        now: i64,
    ) -> Result<u64, MutationError> {
        // Never behind the newest rating, so a `page[after]` cursor already handed out still
        // sees it.
        let created_at = match self.rating_order.last() {
            Some(newest) if newest.0 > now => newest.0,
            _ => now,
        };
        self.add_rating_at(ticket_id, new, created_at)
    }

    /// Adds a satisfaction rating to ticket `id`, created at `at` (which may be in the past:
    /// the list then shows it among older ratings); returns the rating id.
    ///
    /// A rating created already good or bad is a shortcut that records no satisfaction rating
    /// event (the ticket events export stays as it always was for it, which model tests of the
    /// export rely on); offer it and [`Dataset::score_rating`] it for Zendesk's full picture.
    pub(crate) fn add_rating_at(
        &mut self,
        ticket_id: u64,
        new: &NewRating,
        at: i64,
    ) -> Result<u64, MutationError> {
        let index = self.live_ticket_index(ticket_id)?;
        let ticket = &self.tickets[index];
        if new.score == Score::Offered && new.comment.is_some() {
            return Err(invalid("comment", "an offered rating has no comment"));
        }
        let rating_index =
            u32::try_from(self.ratings.len()).map_err(|_| invalid("score", "too many ratings"))?;
        let id = RATING_ID_BASE + u64::from(rating_index) + 1;
        let rating = Rating {
            id,
            ticket_id,
            score: new.score,
            comment: new.comment.clone().map(String::into_boxed_str),
            requester_id: ticket.requester_id,
            assignee_id: ticket.assignee_id,
            group_id: ticket.group_id,
            created_at: at,
            updated_at: at,
        };
        self.rating_order.insert((at, id));
        self.ratings.push(rating);
        self.tickets[index].rating = Some(rating_index);
        self.touch_ticket(index, at);
        Ok(id)
    }

    /// Scores (or re-scores) rating `id` at `change.at` (default `now`): the rating's score,
    /// comment and `updated_at` change, its `created_at` stays; the ticket is updated at that
    /// time with a satisfaction rating event.
    pub(crate) fn score_rating(
        &mut self,
        id: u64,
        change: &RatingScore,
        now: i64,
    ) -> Result<(), MutationError> {
        let rating_index = record_index(
            "satisfaction_rating",
            id,
            RATING_ID_BASE,
            self.ratings.len(),
        )?;
        if change.score == Score::Offered {
            return Err(invalid(
                "score",
                "a rating is scored good or bad; it cannot be offered again",
            ));
        }
        let at = change.at.unwrap_or(now);
        let rating = &self.ratings[rating_index];
        if at < rating.updated_at {
            return Err(invalid(
                "at",
                format!(
                    "{at} is before the rating's last change at {}",
                    rating.updated_at
                ),
            ));
        }
        let ticket_index = self.live_ticket_index(rating.ticket_id)?;
        let rating = &mut self.ratings[rating_index];
        rating.score = change.score;
        rating.comment = change.comment.clone().map(String::into_boxed_str);
        rating.updated_at = at;
        let rating_index =
            u32::try_from(rating_index).map_err(|_| invalid("score", "too many ratings"))?;
        self.push_satisfaction_audit(ticket_index, rating_index, at);
        self.touch_ticket(ticket_index, at);
        Ok(())
    }

    /// The index of ticket `id`, refused as not found when it is deleted.
    fn live_ticket_index(&self, id: u64) -> Result<usize, MutationError> {
        let index = self.ticket_index(id)?;
        if self.tickets[index].status == Status::Deleted {
            return Err(MutationError::NotFound { kind: "ticket", id });
        }
        Ok(index)
    }

    /// Records, at `at`, the audit of ticket `ticket_index` in which its requester gave rating
    /// `rating_index` its current score.
    fn push_satisfaction_audit(&mut self, ticket_index: usize, rating_index: u32, at: i64) {
        let ticket = &self.tickets[ticket_index];
        let Some(rating) = self.rating_at(rating_index) else {
            return;
        };
        let audit = Audit {
            id: self.next_audit_id(),
            ticket_id: ticket.id,
            timestamp: at,
            updater_id: rating.requester_id,
            via: Channel::Web,
            create: false,
            status: None,
            priority: None,
            satisfaction: Some(Box::new(SatisfactionEvent {
                score: rating.score,
                comment: rating.comment.clone(),
                assignee_id: ticket.assignee_id,
            })),
        };
        self.push_audit(audit);
    }

    /// Creates an organization at `now`; returns its id.
    pub(crate) fn create_organization(
        &mut self,
        new: &OrganizationInput,
        now: i64,
    ) -> Result<u64, MutationError> {
        let name = required("name", &new.name)?;
        self.check_organization_name(&name, None)?;
        let id = ORG_ID_BASE + self.organizations.len() as u64 + 1;
        let mut organization = Organization {
            id,
            name: name.into_boxed_str(),
            domain_names: Vec::new(),
            external_id: None,
            organization_fields: Map::new(),
            tags: Box::new([]),
            group_id: None,
            created_at: now,
            updated_at: now,
        };
        apply_organization_input(&mut organization, new);
        self.organization_order.insert((now, id));
        self.organizations.push(organization);
        Ok(id)
    }

    fn check_organization_name(
        &self,
        name: &str,
        except: Option<u64>,
    ) -> Result<(), MutationError> {
        if name.trim().is_empty() {
            return Err(invalid("name", "cannot be blank"));
        }
        if self
            .organizations
            .iter()
            .any(|o| &*o.name == name && Some(o.id) != except)
        {
            return Err(invalid("name", format!("{name} has already been taken")));
        }
        Ok(())
    }

    /// Changes organization `id` at `now`.
    pub(crate) fn update_organization(
        &mut self,
        id: u64,
        update: &OrganizationInput,
        now: i64,
    ) -> Result<(), MutationError> {
        let index = record_index("organization", id, ORG_ID_BASE, self.organizations.len())?;
        if let Some(name) = &update.name {
            self.check_organization_name(name, Some(id))?;
        }
        let organization = &mut self.organizations[index];
        self.organization_order
            .remove((organization.updated_at, id));
        apply_organization_input(organization, update);
        organization.updated_at = now.max(organization.updated_at);
        self.organization_order
            .insert((organization.updated_at, id));
        Ok(())
    }

    fn check_email(&self, email: &str, except: Option<u64>) -> Result<(), MutationError> {
        if !email.contains('@') {
            return Err(invalid(
                "email",
                format!("{email} is not a valid email address"),
            ));
        }
        let lower = email.to_lowercase();
        if self
            .users
            .iter()
            .any(|u| u.email.to_lowercase() == lower && Some(u.id) != except)
        {
            return Err(invalid(
                "email",
                format!("{email} is already being used by another user"),
            ));
        }
        Ok(())
    }

    /// Creates a user at `now`; returns its id.
    pub(crate) fn create_user(&mut self, new: &UserInput, now: i64) -> Result<u64, MutationError> {
        let name = required("name", &new.name)?;
        let email = required("email", &new.email)?;
        self.check_email(&email, None)?;
        let organization_id =
            check_change(new.organization_id, |o| self.check_organization(o))?.flatten();
        let id = USER_ID_BASE + self.users.len() as u64 + 1;
        let updated_at = next_key(&self.user_order, id, now);
        let user = User {
            id,
            name: name.into_boxed_str(),
            email: email.into_boxed_str(),
            organization_id,
            role: new.role.unwrap_or(Role::EndUser),
            created_at: now,
            updated_at,
            active: new.active.unwrap_or(true),
            time_zone: 0,
        };
        if user.role != Role::EndUser {
            self.agent_ids.push(id);
        }
        self.user_order.insert((updated_at, id));
        self.users.push(user);
        Ok(id)
    }

    /// Changes user `id` at `now`.
    pub(crate) fn update_user(
        &mut self,
        id: u64,
        update: &UserInput,
        now: i64,
    ) -> Result<(), MutationError> {
        let index = record_index("user", id, USER_ID_BASE, self.users.len())?;
        if let Some(email) = &update.email {
            self.check_email(email, Some(id))?;
        }
        let organization_id = check_change(update.organization_id, |o| self.check_organization(o))?;
        let updated_at = next_key(&self.user_order, id, now);
        let user = &mut self.users[index];
        self.user_order.remove((user.updated_at, id));
        if let Some(name) = &update.name {
            user.name = name.clone().into_boxed_str();
        }
        if let Some(email) = &update.email {
            user.email = email.clone().into_boxed_str();
        }
        if let Some(organization_id) = organization_id {
            user.organization_id = organization_id;
        }
        if let Some(role) = update.role {
            user.role = role;
        }
        if let Some(active) = update.active {
            user.active = active;
        }
        user.updated_at = updated_at.max(user.updated_at);
        self.user_order.insert((user.updated_at, id));
        if user.role != Role::EndUser && !self.agent_ids.contains(&id) {
            self.agent_ids.push(id);
        }
        Ok(())
    }
}

fn apply_organization_input(organization: &mut Organization, input: &OrganizationInput) {
    if let Some(name) = &input.name {
        organization.name = name.clone().into_boxed_str();
    }
    if let Some(domains) = &input.domain_names {
        organization.domain_names = domains.iter().map(|d| d.clone().into_boxed_str()).collect();
    }
    if let Some(external_id) = &input.external_id {
        organization.external_id = external_id.clone().map(String::into_boxed_str);
    }
    if let Some(fields) = &input.organization_fields {
        for (key, value) in fields {
            organization
                .organization_fields
                .insert(key.clone(), value.clone());
        }
    }
    if let Some(tags) = &input.tags {
        organization.tags = tags.iter().map(|t| Arc::from(t.as_str())).collect();
    }
}
