//! The Zendesk API endpoints: `users/me`, the incremental exports, groups and satisfaction
//! ratings, with Zendesk's paging semantics.
use std::collections::HashMap;
use std::sync::Arc;

use axum::extract::{Query, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use serde::ser::{SerializeMap, SerializeSeq};
use serde::{Serialize, Serializer};

use super::cursor;
use super::data::{Dataset, Organization, Rating, User};
use super::endpoint::Endpoint;
use super::index::time_page_len;
use super::model::Score;
use super::render::{
    AuditJson, GroupJson, MetricSetJson, OrganizationJson, RatingJson, TicketJson, UserJson,
};
use super::server::{admit, json_body, zendesk_error};
use super::state::Shared;

/// Default and maximum page size of the incremental exports.
const EXPORT_PAGE_MAX: usize = 1000;
/// Default and maximum page size of the satisfaction ratings list.
const RATINGS_PAGE_MAX: usize = 100;
/// `start_time` must be at least this many seconds in the past.
const MIN_START_AGE: i64 = 60;

type Params = Query<HashMap<String, String>>;

/// A 400 with Zendesk's `{"error", "description"}` body, kept small until it is rendered.
#[derive(Debug)]
struct BadRequest {
    error: &'static str,
    description: String,
}

impl IntoResponse for BadRequest {
    fn into_response(self) -> Response {
        zendesk_error(StatusCode::BAD_REQUEST, self.error, &self.description)
    }
}

fn bad_request(error: &'static str, description: &str) -> BadRequest {
    BadRequest {
        error,
        description: description.to_string(),
    }
}

fn serialize_body<T: Serialize>(value: &T, capacity: usize) -> Response {
    let mut body = Vec::with_capacity(capacity);
    match serde_json::to_writer(&mut body, value) {
        Ok(()) => json_body(StatusCode::OK, body),
        Err(e) => zendesk_error(
            StatusCode::INTERNAL_SERVER_ERROR,
            "InternalServerError",
            &format!("cannot encode the response: {e}"),
        ),
    }
}

fn per_page(params: &HashMap<String, String>, key: &str, max: usize) -> Result<usize, BadRequest> {
    match params.get(key) {
        None => Ok(max),
        Some(raw) => match raw.trim().parse::<usize>() {
            Ok(n) if n >= 1 => Ok(n.min(max)),
            _ => Err(bad_request(
                "InvalidPaginationParameter",
                &format!("{key} must be a positive integer"),
            )),
        },
    }
}

/// Parses `start_time` and applies the 60-second rule.
fn start_time(params: &HashMap<String, String>, now: i64) -> Result<i64, BadRequest> {
    let Some(raw) = params.get("start_time") else {
        return Err(bad_request("InvalidValue", "start_time is required"));
    };
    let Ok(start) = raw.trim().parse::<i64>() else {
        return Err(bad_request(
            "InvalidValue",
            "start_time must be a Unix epoch time in seconds",
        ));
    };
    if start > now - MIN_START_AGE {
        return Err(bad_request(
            "InvalidValue",
            "Too recent start_time. Use a start_time older than one minute.",
        ));
    }
    Ok(start.max(0))
}

/// Where a cursor export starts: after the `cursor`, or at `start_time`.
fn cursor_position(params: &HashMap<String, String>, now: i64) -> Result<(i64, u64), BadRequest> {
    match params.get("cursor") {
        Some(raw) => cursor::decode(raw)
            .ok_or_else(|| bad_request("InvalidCursor", "The cursor is invalid or has expired")),
        None => start_time(params, now).map(|start| (start, 0)),
    }
}

/// `GET /api/v2/users/me.json`.
pub(crate) async fn users_me(State(shared): State<Arc<Shared>>, headers: HeaderMap) -> Response {
    let admission = match admit(&shared, Endpoint::UsersMe, &headers, true).await {
        Ok(admission) => admission,
        Err(response) => return response,
    };
    let data = shared.read();
    let Some(admin) = data.admin() else {
        return zendesk_error(StatusCode::NOT_FOUND, "RecordNotFound", "Not found");
    };
    struct Me<'a>(UserJson<'a>);
    impl Serialize for Me<'_> {
        fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
            let mut map = s.serialize_map(Some(1))?;
            map.serialize_entry("user", &self.0)?;
            map.end()
        }
    }
    admission.finish(serialize_body(
        &Me(UserJson::new(admin, &shared.base_url)),
        2048,
    ))
}

/// The side-loads a ticket page may carry.
#[derive(Debug, Default, Clone, Copy)]
struct Includes {
    users: bool,
    groups: bool,
    organizations: bool,
    metric_sets: bool,
}

fn includes(params: &HashMap<String, String>) -> Includes {
    let mut out = Includes::default();
    for name in params
        .get("include")
        .map(String::as_str)
        .unwrap_or("")
        .split(',')
    {
        match name.trim() {
            "users" => out.users = true,
            "groups" => out.groups = true,
            "organizations" => out.organizations = true,
            "metric_sets" => out.metric_sets = true,
            _ => {}
        }
    }
    out
}

/// A sequence serialized from an iterator made on demand.
struct SeqOf<F>(F);

impl<F, I, T> Serialize for SeqOf<F>
where
    F: Fn() -> I,
    I: Iterator<Item = T>,
    T: Serialize,
{
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        let mut seq = s.serialize_seq(None)?;
        for item in (self.0)() {
            seq.serialize_element(&item)?;
        }
        seq.end()
    }
}

/// The cursor-export envelope fields after the records.
struct CursorEnvelope {
    after_url: String,
    after_cursor: String,
    end_of_stream: bool,
}

impl CursorEnvelope {
    fn new(
        base: &str,
        path: &str,
        after: (i64, u64),
        per_page: Option<&String>,
        end_of_stream: bool,
    ) -> Self {
        let after_cursor = cursor::encode(after);
        let mut after_url = format!(
            "{base}{path}?cursor={}",
            super::auth::percent_encode(&after_cursor)
        );
        if let Some(per_page) = per_page {
            after_url.push_str(&format!(
                "&per_page={}",
                super::auth::percent_encode(per_page)
            ));
        }
        Self {
            after_url,
            after_cursor,
            end_of_stream,
        }
    }

    fn write<M: SerializeMap>(&self, map: &mut M) -> Result<(), M::Error> {
        map.serialize_entry("after_url", &self.after_url)?;
        map.serialize_entry("before_url", &None::<()>)?;
        map.serialize_entry("after_cursor", &self.after_cursor)?;
        map.serialize_entry("before_cursor", &None::<()>)?;
        map.serialize_entry("end_of_stream", &self.end_of_stream)
    }
}

/// One page of the cursor ticket export.
struct TicketPage<'a> {
    data: &'a Dataset,
    keys: &'a [(i64, u64)],
    base: &'a str,
    envelope: CursorEnvelope,
    includes: Includes,
}

impl TicketPage<'_> {
    fn tickets(&self) -> impl Iterator<Item = &super::data::Ticket> + '_ {
        self.keys.iter().filter_map(|k| self.data.ticket(k.1))
    }

    fn sorted_ids(&self, pick: impl Fn(&super::data::Ticket, &mut Vec<u64>)) -> Vec<u64> {
        let mut ids = Vec::with_capacity(self.keys.len() * 2);
        for ticket in self.tickets() {
            pick(ticket, &mut ids);
        }
        ids.sort_unstable();
        ids.dedup();
        ids
    }
}

impl Serialize for TicketPage<'_> {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        let mut map = s.serialize_map(None)?;
        map.serialize_entry(
            "tickets",
            &SeqOf(|| {
                self.tickets()
                    .map(|t| TicketJson::new(self.data, t, self.base))
            }),
        )?;
        self.envelope.write(&mut map)?;
        if self.includes.users {
            let ids = self.sorted_ids(|t, ids| {
                ids.push(t.requester_id);
                ids.push(t.submitter_id);
                ids.extend(t.assignee_id.map(|a| a.get()));
            });
            map.serialize_entry(
                "users",
                &SeqOf(|| {
                    ids.iter()
                        .filter_map(|id| self.data.user(*id))
                        .map(|u| UserJson::new(u, self.base))
                }),
            )?;
        }
        if self.includes.groups {
            let ids = self.sorted_ids(|t, ids| ids.extend(t.group_id.map(|g| g.get())));
            map.serialize_entry(
                "groups",
                &SeqOf(|| {
                    ids.iter()
                        .filter_map(|id| self.data.group(*id))
                        .map(|g| GroupJson::new(g, self.base))
                }),
            )?;
        }
        if self.includes.organizations {
            let ids = self.sorted_ids(|t, ids| ids.extend(t.organization_id.map(|o| o.get())));
            map.serialize_entry(
                "organizations",
                &SeqOf(|| {
                    ids.iter()
                        .filter_map(|id| self.data.organization(*id))
                        .map(|o| OrganizationJson::new(o, self.base))
                }),
            )?;
        }
        if self.includes.metric_sets {
            map.serialize_entry(
                "metric_sets",
                &SeqOf(|| self.tickets().map(|t| MetricSetJson::new(t, self.base))),
            )?;
        }
        map.end()
    }
}

/// `GET /api/v2/incremental/tickets/cursor.json`.
pub(crate) async fn incremental_tickets(
    State(shared): State<Arc<Shared>>,
    headers: HeaderMap,
    Query(params): Params,
) -> Response {
    let admission = match admit(&shared, Endpoint::IncrementalTickets, &headers, true).await {
        Ok(admission) => admission,
        Err(response) => return response,
    };
    let response = (|| {
        let per_page = per_page(&params, "per_page", EXPORT_PAGE_MAX)?;
        let position = cursor_position(&params, shared.now_unix())?;
        let data = shared.read();
        let rest = data.ticket_order.after(position);
        let keys = &rest[..rest.len().min(per_page)];
        let page = TicketPage {
            data: &data,
            keys,
            base: &shared.base_url,
            envelope: CursorEnvelope::new(
                &shared.base_url,
                "/api/v2/incremental/tickets/cursor.json",
                keys.last().copied().unwrap_or(position),
                params.get("per_page"),
                rest.len() <= per_page,
            ),
            includes: includes(&params),
        };
        Ok(serialize_body(&page, keys.len() * 1800 + 512))
    })();
    admission.finish(response.unwrap_or_else(|e: BadRequest| e.into_response()))
}

/// One page of the cursor users export.
struct UserPage<'a> {
    users: Vec<&'a User>,
    base: &'a str,
    envelope: CursorEnvelope,
}

impl Serialize for UserPage<'_> {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        let mut map = s.serialize_map(Some(6))?;
        map.serialize_entry(
            "users",
            &SeqOf(|| self.users.iter().map(|u| UserJson::new(u, self.base))),
        )?;
        self.envelope.write(&mut map)?;
        map.end()
    }
}

/// `GET /api/v2/incremental/users/cursor.json`.
pub(crate) async fn incremental_users(
    State(shared): State<Arc<Shared>>,
    headers: HeaderMap,
    Query(params): Params,
) -> Response {
    let admission = match admit(&shared, Endpoint::IncrementalUsers, &headers, true).await {
        Ok(admission) => admission,
        Err(response) => return response,
    };
    let response = (|| {
        let per_page = per_page(&params, "per_page", EXPORT_PAGE_MAX)?;
        let position = cursor_position(&params, shared.now_unix())?;
        let data = shared.read();
        let rest = data.user_order.after(position);
        let keys = &rest[..rest.len().min(per_page)];
        let page = UserPage {
            users: keys.iter().filter_map(|k| data.user(k.1)).collect(),
            base: &shared.base_url,
            envelope: CursorEnvelope::new(
                &shared.base_url,
                "/api/v2/incremental/users/cursor.json",
                keys.last().copied().unwrap_or(position),
                params.get("per_page"),
                rest.len() <= per_page,
            ),
        };
        Ok(serialize_body(&page, keys.len() * 1200 + 512))
    })();
    admission.finish(response.unwrap_or_else(|e: BadRequest| e.into_response()))
}

/// The time-based export envelope.
struct TimeEnvelope {
    count: usize,
    end_time: i64,
    next_page: String,
    end_of_stream: bool,
}

impl TimeEnvelope {
    /// `end_time` is the last record's second when the stream ended (a later change in that
    /// second is then not lost), else one past it (the page holds that whole second).
    fn new(
        base: &str,
        path: &str,
        start: i64,
        last: Option<i64>,
        count: usize,
        end_of_stream: bool,
        per_page: Option<&String>,
    ) -> Self {
        let end_time = match last {
            None => start,
            Some(last) if end_of_stream => last,
            Some(last) => last + 1,
        };
        let mut next_page = format!("{base}{path}?start_time={end_time}");
        if let Some(per_page) = per_page {
            next_page.push_str(&format!(
                "&per_page={}",
                super::auth::percent_encode(per_page)
            ));
        }
        Self {
            count,
            end_time,
            next_page,
            end_of_stream,
        }
    }

    fn write<M: SerializeMap>(&self, map: &mut M) -> Result<(), M::Error> {
        map.serialize_entry("count", &self.count)?;
        map.serialize_entry("end_time", &self.end_time)?;
        map.serialize_entry("next_page", &self.next_page)?;
        map.serialize_entry("end_of_stream", &self.end_of_stream)
    }
}

/// Time-based exports only return records older than the 60-second window, so the next
/// page's `start_time` (`end_time`) is always a legal one.
fn time_cutoff(now: i64) -> i64 {
    now - MIN_START_AGE
}

/// `GET /api/v2/incremental/organizations.json`.
pub(crate) async fn incremental_organizations(
    State(shared): State<Arc<Shared>>,
    headers: HeaderMap,
    Query(params): Params,
) -> Response {
    let admission = match admit(&shared, Endpoint::IncrementalOrganizations, &headers, true).await {
        Ok(admission) => admission,
        Err(response) => return response,
    };
    let response = (|| {
        let per_page = per_page(&params, "per_page", EXPORT_PAGE_MAX)?;
        let now = shared.now_unix();
        let start = start_time(&params, now)?;
        let data = shared.read();
        let rest = data.organization_order.starting_at(start);
        let cutoff = time_cutoff(now);
        let rest = &rest[..rest.partition_point(|k| k.0 < cutoff)];
        let len = time_page_len(rest, per_page, |k| k.0);
        let keys = &rest[..len];
        struct OrganizationPage<'a> {
            organizations: Vec<&'a Organization>,
            base: &'a str,
            envelope: TimeEnvelope,
        }
        impl Serialize for OrganizationPage<'_> {
            fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
                let mut map = s.serialize_map(Some(5))?;
                map.serialize_entry(
                    "organizations",
                    &SeqOf(|| {
                        self.organizations
                            .iter()
                            .map(|o| OrganizationJson::new(o, self.base))
                    }),
                )?;
                self.envelope.write(&mut map)?;
                map.end()
            }
        }
        let page = OrganizationPage {
            organizations: keys.iter().filter_map(|k| data.organization(k.1)).collect(),
            base: &shared.base_url,
            envelope: TimeEnvelope::new(
                &shared.base_url,
                "/api/v2/incremental/organizations.json",
                start,
                keys.last().map(|k| k.0),
                keys.len(),
                len == rest.len(),
                params.get("per_page"),
            ),
        };
        Ok(serialize_body(&page, keys.len() * 700 + 512))
    })();
    admission.finish(response.unwrap_or_else(|e: BadRequest| e.into_response()))
}

/// `GET /api/v2/incremental/ticket_events.json`.
pub(crate) async fn ticket_events(
    State(shared): State<Arc<Shared>>,
    headers: HeaderMap,
    Query(params): Params,
) -> Response {
    let admission = match admit(&shared, Endpoint::TicketEvents, &headers, true).await {
        Ok(admission) => admission,
        Err(response) => return response,
    };
    let response = (|| {
        let per_page = per_page(&params, "per_page", EXPORT_PAGE_MAX)?;
        let now = shared.now_unix();
        let start = start_time(&params, now)?;
        let data = shared.read();
        let from = data.audits.partition_point(|a| a.timestamp < start);
        let cutoff = time_cutoff(now);
        let to = data
            .audits
            .partition_point(|a| a.timestamp < cutoff)
            .max(from);
        let rest = &data.audits[from..to];
        let len = time_page_len(rest, per_page, |a| a.timestamp);
        let audits = &rest[..len];
        struct EventPage<'a> {
            audits: &'a [super::data::Audit],
            envelope: TimeEnvelope,
        }
        impl Serialize for EventPage<'_> {
            fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
                let mut map = s.serialize_map(Some(5))?;
                map.serialize_entry(
                    "ticket_events",
                    &SeqOf(|| self.audits.iter().map(AuditJson)),
                )?;
                self.envelope.write(&mut map)?;
                map.end()
            }
        }
        let page = EventPage {
            audits,
            envelope: TimeEnvelope::new(
                &shared.base_url,
                "/api/v2/incremental/ticket_events.json",
                start,
                audits.last().map(|a| a.timestamp),
                audits.len(),
                len == rest.len(),
                params.get("per_page"),
            ),
        };
        Ok(serialize_body(&page, audits.len() * 400 + 512))
    })();
    admission.finish(response.unwrap_or_else(|e: BadRequest| e.into_response()))
}

/// `GET /api/v2/groups.json`: every group on one page.
pub(crate) async fn groups(State(shared): State<Arc<Shared>>, headers: HeaderMap) -> Response {
    let admission = match admit(&shared, Endpoint::Groups, &headers, true).await {
        Ok(admission) => admission,
        Err(response) => return response,
    };
    let data = shared.read();
    struct GroupList<'a>(&'a Dataset, &'a str);
    impl Serialize for GroupList<'_> {
        fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
            let mut map = s.serialize_map(Some(4))?;
            map.serialize_entry(
                "groups",
                &SeqOf(|| self.0.groups.iter().map(|g| GroupJson::new(g, self.1))),
            )?;
            map.serialize_entry("next_page", &None::<()>)?;
            map.serialize_entry("previous_page", &None::<()>)?;
            map.serialize_entry("count", &self.0.groups.len())?;
            map.end()
        }
    }
    admission.finish(serialize_body(&GroupList(&data, &shared.base_url), 4096))
}

/// Which ratings a `score` filter keeps.
fn score_filter(name: &str) -> Option<fn(&Rating) -> bool> {
    let received = |r: &Rating| r.score != Score::Offered;
    Some(match name {
        "offered" => |r: &Rating| r.score == Score::Offered,
        "unoffered" => |_: &Rating| false,
        "received" => received,
        "received_with_comment" => |r: &Rating| r.score != Score::Offered && r.comment.is_some(),
        "received_without_comment" => |r: &Rating| r.score != Score::Offered && r.comment.is_none(),
        "good" => |r: &Rating| r.score == Score::Good,
        "good_with_comment" => |r: &Rating| r.score == Score::Good && r.comment.is_some(),
        "good_without_comment" => |r: &Rating| r.score == Score::Good && r.comment.is_none(),
        "bad" => |r: &Rating| r.score == Score::Bad,
        "bad_with_comment" => |r: &Rating| r.score == Score::Bad && r.comment.is_some(),
        "bad_without_comment" => |r: &Rating| r.score == Score::Bad && r.comment.is_none(),
        _ => return None,
    })
}

fn unix_param(params: &HashMap<String, String>, key: &str) -> Result<Option<i64>, BadRequest> {
    params
        .get(key)
        .map(|raw| {
            raw.trim().parse::<i64>().map_err(|_| {
                bad_request(
                    "InvalidValue",
                    &format!("{key} must be a Unix epoch time in seconds"),
                )
            })
        })
        .transpose()
}

/// `GET /api/v2/satisfaction_ratings.json`.
pub(crate) async fn satisfaction_ratings(
    State(shared): State<Arc<Shared>>,
    headers: HeaderMap,
    Query(params): Params,
) -> Response {
    let admission = match admit(&shared, Endpoint::SatisfactionRatings, &headers, true).await {
        Ok(admission) => admission,
        Err(response) => return response,
    };
    let response = (|| {
        let size = per_page(&params, "page[size]", RATINGS_PAGE_MAX)?;
        let start = unix_param(&params, "start_time")?;
        let end = unix_param(&params, "end_time")?;
        let filter = match params.get("score") {
            Some(name) => Some(score_filter(name).ok_or_else(|| {
                bad_request("InvalidValue", &format!("unknown score filter {name}"))
            })?),
            None => None,
        };
        let mut position = start.map_or((i64::MIN, 0), |s| (s - 1, u64::MAX));
        if let Some(raw) = params.get("page[after]") {
            let after = cursor::decode(raw)
                .ok_or_else(|| bad_request("InvalidCursor", "page[after] is invalid"))?;
            position = position.max(after);
        }
        let data = shared.read();
        let mut matched: Vec<&Rating> = Vec::with_capacity(size + 1);
        for key in data.rating_order.after(position) {
            if end.is_some_and(|end| key.0 >= end) || matched.len() > size {
                break;
            }
            if let Some(rating) = data.rating(key.1) {
                if filter.is_none_or(|keep| keep(rating)) {
                    matched.push(rating);
                }
            }
        }
        let has_more = matched.len() > size;
        matched.truncate(size);
        let after_cursor = matched.last().map(|r| cursor::encode((r.created_at, r.id)));
        let next = after_cursor.as_ref().filter(|_| has_more).map(|c| {
            let mut url = format!(
                "{}/api/v2/satisfaction_ratings.json?page%5Bafter%5D={}&page%5Bsize%5D={size}",
                shared.base_url,
                super::auth::percent_encode(c)
            );
            for key in ["start_time", "end_time", "score"] {
                if let Some(value) = params.get(key) {
                    url.push_str(&format!("&{key}={}", super::auth::percent_encode(value)));
                }
            }
            url
        });
        let body = serde_json::json!({
            "meta": {"has_more": has_more, "after_cursor": after_cursor, "before_cursor": null},
            "links": {"next": next, "prev": null},
        });
        struct RatingPage<'a> {
            ratings: Vec<&'a Rating>,
            base: &'a str,
            tail: serde_json::Value,
        }
        impl Serialize for RatingPage<'_> {
            fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
                let mut map = s.serialize_map(Some(3))?;
                map.serialize_entry(
                    "satisfaction_ratings",
                    &SeqOf(|| self.ratings.iter().map(|r| RatingJson::new(r, self.base))),
                )?;
                map.serialize_entry("meta", &self.tail["meta"])?;
                map.serialize_entry("links", &self.tail["links"])?;
                map.end()
            }
        }
        let page = RatingPage {
            ratings: matched,
            base: &shared.base_url,
            tail: body,
        };
        Ok(serialize_body(&page, size * 400 + 512))
    })();
    admission.finish(response.unwrap_or_else(|e: BadRequest| e.into_response()))
}
