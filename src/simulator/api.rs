//! The Zendesk API endpoints: `users/me`, the incremental exports, groups and satisfaction
//! ratings, with Zendesk's paging semantics.
use std::collections::HashMap;
use std::num::NonZeroU64;
use std::sync::Arc;

use axum::extract::{Path, Query, State};
use axum::http::HeaderMap;
use axum::response::Response;
use axum::routing::{get, MethodRouter};
use axum::Router;
use serde::ser::{SerializeMap, SerializeSeq};
use serde::{Serialize, Serializer};
use serde_json::Value;

use super::admission::serve;
use super::cursor;
use super::data::{Audit, Dataset, Rating, Ticket};
use super::endpoint::Endpoint;
use super::http::{
    not_found, per_page, per_page_suffix, percent_encode, serialize_body, unix_param, BadRequest,
    Params,
};
use super::index::{time_page_len, SortedIndex};
use super::model::Score;
use super::render::{
    AuditJson, GroupJson, MetricSetJson, OrganizationJson, RatingJson, TicketJson, UserJson,
};
use super::state::Shared;

/// The query parameters of a request, by name.
type QueryMap = HashMap<String, String>;

/// What a handler answers: its response, or a 400.
type Answer = Result<Response, BadRequest>;

/// Default and maximum page size of the incremental exports.
const EXPORT_PAGE_MAX: usize = 1000;
/// Default and maximum page size of the satisfaction ratings list.
const RATINGS_PAGE_MAX: usize = 100;
/// `start_time` must be at least this many seconds in the past.
const MIN_START_AGE: i64 = 60;

/// Parses `start_time` and applies the 60-second rule.
fn start_time(params: &QueryMap, now: i64) -> Result<i64, BadRequest> {
    let Some(raw) = params.get("start_time") else {
        return Err(BadRequest::new("InvalidValue", "start_time is required"));
    };
    let Ok(start) = raw.trim().parse::<i64>() else {
        return Err(BadRequest::new(
            "InvalidValue",
            "start_time must be a Unix epoch time in seconds",
        ));
    };
    if start > now - MIN_START_AGE {
        return Err(BadRequest::new(
            "InvalidValue",
            "Too recent start_time. Use a start_time older than one minute.",
        ));
    }
    Ok(start.max(0))
}

/// Where a cursor export starts: after the `cursor`, or at `start_time`.
fn cursor_position(params: &QueryMap, now: i64) -> Result<(i64, u64), BadRequest> {
    match params.get("cursor") {
        Some(raw) => cursor::decode(raw).ok_or_else(|| {
            BadRequest::new("InvalidCursor", "The cursor is invalid or has expired")
        }),
        None => start_time(params, now).map(|start| (start, 0)),
    }
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

/// The fields a page writes after its records, in order.
struct Envelope(Vec<(&'static str, Value)>);

impl Envelope {
    /// Writes the fields into the page's map.
    fn write<M: SerializeMap>(&self, map: &mut M) -> Result<(), M::Error> {
        self.0
            .iter()
            .try_for_each(|(key, value)| map.serialize_entry(key, value))
    }
}

/// `{key: [records…], …envelope}`: one page of a list or export.
struct Page<F> {
    key: &'static str,
    records: SeqOf<F>,
    envelope: Envelope,
}

impl<F> Page<F> {
    fn new(key: &'static str, records: F, envelope: Envelope) -> Self {
        Self {
            key,
            records: SeqOf(records),
            envelope,
        }
    }
}

impl<F> Serialize for Page<F>
where
    SeqOf<F>: Serialize,
{
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        let mut map = s.serialize_map(None)?;
        map.serialize_entry(self.key, &self.records)?;
        self.envelope.write(&mut map)?;
        map.end()
    }
}

/// The page `{key: [records…], …envelope}` of the records `keys` name (`show` renders one),
/// serialized; `per_record` is a size hint in bytes.
fn records_page<J: Serialize>(
    key: &'static str,
    keys: &[(i64, u64)],
    show: impl Fn(u64) -> Option<J>,
    envelope: Envelope,
    per_record: usize,
) -> Response {
    let records = || keys.iter().filter_map(|k| show(k.1));
    serialize_body(
        &Page::new(key, records, envelope),
        keys.len() * per_record + 512,
    )
}

/// The `(timestamp, id)` keys of one page of records.
type Keys<'d> = &'d [(i64, u64)];

/// One page of a cursor export at `path` over `order`: its keys and the envelope after them.
fn cursor_page<'d>(
    shared: &Shared,
    params: &QueryMap,
    path: &str,
    order: &'d SortedIndex,
) -> Result<(Keys<'d>, Envelope), BadRequest> {
    let per_page = per_page(params, "per_page", EXPORT_PAGE_MAX)?;
    let position = cursor_position(params, shared.now_unix())?;
    let rest = order.after(position);
    let keys = &rest[..rest.len().min(per_page)];
    let after_cursor = cursor::encode(keys.last().copied().unwrap_or(position));
    let after_url = format!(
        "{}{path}?cursor={}{}",
        shared.base_url,
        percent_encode(&after_cursor),
        per_page_suffix(params.get("per_page"))
    );
    let envelope = Envelope(vec![
        ("after_url", after_url.into()),
        ("before_url", Value::Null),
        ("after_cursor", after_cursor.into()),
        ("before_cursor", Value::Null),
        ("end_of_stream", (rest.len() <= per_page).into()),
    ]);
    Ok((keys, envelope))
}

/// What a time-based export request asks for, and the now it was checked against.
#[derive(Debug, Clone, Copy)]
struct TimeWindow {
    per_page: usize,
    start: i64,
    now: i64,
}

/// Page size and `start_time` of a time-based export request.
fn time_params(shared: &Shared, params: &QueryMap) -> Result<TimeWindow, BadRequest> {
    let per_page = per_page(params, "per_page", EXPORT_PAGE_MAX)?;
    let now = shared.now_unix();
    let start = start_time(params, now)?;
    Ok(TimeWindow {
        per_page,
        start,
        now,
    })
}

/// One page of a time-based export at `path`: `from_start` holds the time-ordered records at
/// or after `start`.
///
/// Only records older than the 60-second window are returned, so the next page's
/// `start_time` (`end_time`) is always a legal one. `end_time` is the last record's second
/// when the stream ended (a later change in that second is then not lost), else one past it
/// (the page holds that whole second).
fn time_page<'d, T>(
    shared: &Shared,
    params: &QueryMap,
    path: &str,
    window: TimeWindow,
    from_start: &'d [T],
    timestamp: impl Fn(&T) -> i64,
) -> (&'d [T], Envelope) {
    let TimeWindow {
        per_page,
        start,
        now,
    } = window;
    let cutoff = now - MIN_START_AGE;
    let rest = &from_start[..from_start.partition_point(|r| timestamp(r) < cutoff)];
    let len = time_page_len(rest, per_page, &timestamp);
    let records = &rest[..len];
    let end_of_stream = len == rest.len();
    let end_time = match records.last().map(&timestamp) {
        None => start,
        Some(last) if end_of_stream => last,
        Some(last) => last + 1,
    };
    let next_page = format!(
        "{}{path}?start_time={end_time}{}",
        shared.base_url,
        per_page_suffix(params.get("per_page"))
    );
    let envelope = Envelope(vec![
        ("count", records.len().into()),
        ("end_time", end_time.into()),
        ("next_page", next_page.into()),
        ("end_of_stream", end_of_stream.into()),
    ]);
    (records, envelope)
}

/// The API routes: each one admits the request (counter, fault, rate limit, auth), then
/// answers with its handler.
pub(crate) fn routes() -> Router<Arc<Shared>> {
    let both = |router: Router<Arc<Shared>>, path: &str, route: MethodRouter<Arc<Shared>>| {
        router
            .route(&format!("{path}.json"), route.clone())
            .route(path, route)
    };
    let router = Router::new()
        .route(
            "/api/v2/incremental/tickets/cursor.json",
            api(Endpoint::IncrementalTickets, incremental_tickets),
        )
        .route(
            "/api/v2/incremental/users/cursor.json",
            api(Endpoint::IncrementalUsers, incremental_users),
        )
        .route(
            "/api/v2/incremental/organizations.json",
            api(
                Endpoint::IncrementalOrganizations,
                incremental_organizations,
            ),
        )
        .route(
            "/api/v2/incremental/ticket_events.json",
            api(Endpoint::TicketEvents, ticket_events),
        );
    let router = both(router, "/api/v2/users/me", api(Endpoint::UsersMe, users_me));
    let router = both(router, "/api/v2/groups", api(Endpoint::Groups, groups));
    both(
        router,
        "/api/v2/satisfaction_ratings",
        api(Endpoint::SatisfactionRatings, satisfaction_ratings),
    )
    .route(
        "/api/v2/satisfaction_ratings/{file}",
        get(
            |State(shared): State<Arc<Shared>>, headers: HeaderMap, Path(file): Path<String>| async move {
                serve(&shared, Endpoint::SatisfactionRatings, &headers, |shared| {
                    satisfaction_rating(shared, &file)
                })
                .await
            },
        ),
    )
}

/// What an API endpoint answers to an admitted request with these query parameters.
type Handler = fn(&Shared, &QueryMap) -> Answer;

/// `GET` of an API endpoint: admission, then `handler` (the shape of every API route).
fn api(endpoint: Endpoint, handler: Handler) -> MethodRouter<Arc<Shared>> {
    get(
        move |State(shared): State<Arc<Shared>>, headers: HeaderMap, Query(params): Params| async move {
            serve(&shared, endpoint, &headers, |shared| {
                handler(shared, &params)
            })
            .await
        },
    )
}

/// One record under its name, `{"user": {...}}`, as Zendesk's show endpoints answer.
struct Named<T>(&'static str, T);

impl<T: Serialize> Serialize for Named<T> {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        let mut map = s.serialize_map(Some(1))?;
        map.serialize_entry(self.0, &self.1)?;
        map.end()
    }
}

/// `GET /api/v2/users/me.json`.
fn users_me(shared: &Shared, _params: &QueryMap) -> Answer {
    let data = shared.read();
    let Some(admin) = data.admin() else {
        return Ok(not_found("Not found"));
    };
    Ok(serialize_body(
        &Named("user", UserJson::new(admin, &shared.base_url)),
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

fn includes(params: &QueryMap) -> Includes {
    let mut out = Includes::default();
    for name in params.get("include").map_or("", String::as_str).split(',') {
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

/// The people of a ticket: requester, submitter and assignee.
fn people(ticket: &Ticket) -> [Option<NonZeroU64>; 3] {
    [
        NonZeroU64::new(ticket.requester_id),
        NonZeroU64::new(ticket.submitter_id),
        ticket.assignee_id,
    ]
}

/// One page of the cursor ticket export.
struct TicketPage<'a> {
    data: &'a Dataset,
    keys: &'a [(i64, u64)],
    base: &'a str,
    envelope: Envelope,
    includes: Includes,
}

impl TicketPage<'_> {
    fn tickets(&self) -> impl Iterator<Item = &Ticket> + '_ {
        self.keys.iter().filter_map(|k| self.data.ticket(k.1))
    }

    /// Writes the side-load `key`: the records `show` renders for the ids `pick` takes from the
    /// page's tickets, in id order, each once.
    fn side_load<M, T, const N: usize>(
        &self,
        map: &mut M,
        key: &'static str,
        pick: impl Fn(&Ticket) -> [Option<NonZeroU64>; N],
        show: impl Fn(u64) -> Option<T>,
    ) -> Result<(), M::Error>
    where
        M: SerializeMap,
        T: Serialize,
    {
        let mut ids: Vec<u64> = self
            .tickets()
            .flat_map(|ticket| pick(ticket).into_iter().flatten().map(NonZeroU64::get))
            .collect();
        ids.sort_unstable();
        ids.dedup();
        map.serialize_entry(key, &SeqOf(|| ids.iter().filter_map(|id| show(*id))))
    }
}

impl Serialize for TicketPage<'_> {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        let (data, base) = (self.data, self.base);
        let mut map = s.serialize_map(None)?;
        map.serialize_entry(
            "tickets",
            &SeqOf(|| self.tickets().map(|t| TicketJson::new(data, t, base))),
        )?;
        self.envelope.write(&mut map)?;
        if self.includes.users {
            let show = |id| data.user(id).map(|u| UserJson::new(u, base));
            self.side_load(&mut map, "users", people, show)?;
        }
        if self.includes.groups {
            let show = |id| data.group(id).map(|g| GroupJson::new(g, base));
            self.side_load(&mut map, "groups", |t| [t.group_id], show)?;
        }
        if self.includes.organizations {
            let show = |id| {
                data.organization(id)
                    .map(|o| OrganizationJson::new(o, base))
            };
            self.side_load(&mut map, "organizations", |t| [t.organization_id], show)?;
        }
        if self.includes.metric_sets {
            map.serialize_entry(
                "metric_sets",
                &SeqOf(|| self.tickets().map(|t| MetricSetJson::new(t, base))),
            )?;
        }
        map.end()
    }
}

/// `GET /api/v2/incremental/tickets/cursor.json`.
fn incremental_tickets(shared: &Shared, params: &QueryMap) -> Answer {
    let data = shared.read();
    let path = "/api/v2/incremental/tickets/cursor.json";
    let (keys, envelope) = cursor_page(shared, params, path, &data.ticket_order)?;
    let page = TicketPage {
        data: &data,
        keys,
        base: &shared.base_url,
        envelope,
        includes: includes(params),
    };
    Ok(serialize_body(&page, keys.len() * 1800 + 512))
}

/// `GET /api/v2/incremental/users/cursor.json`.
fn incremental_users(shared: &Shared, params: &QueryMap) -> Answer {
    let data = shared.read();
    let path = "/api/v2/incremental/users/cursor.json";
    let (keys, envelope) = cursor_page(shared, params, path, &data.user_order)?;
    let show = |id| data.user(id).map(|u| UserJson::new(u, &shared.base_url));
    Ok(records_page("users", keys, show, envelope, 1200))
}

/// `GET /api/v2/incremental/organizations.json`.
fn incremental_organizations(shared: &Shared, params: &QueryMap) -> Answer {
    let window = time_params(shared, params)?;
    let data = shared.read();
    let from_start = data.organization_order.starting_at(window.start);
    let path = "/api/v2/incremental/organizations.json";
    let (keys, envelope) = time_page(shared, params, path, window, from_start, |k| k.0);
    let show = |id| {
        data.organization(id)
            .map(|o| OrganizationJson::new(o, &shared.base_url))
    };
    Ok(records_page("organizations", keys, show, envelope, 700))
}

/// `GET /api/v2/incremental/ticket_events.json`.
fn ticket_events(shared: &Shared, params: &QueryMap) -> Answer {
    let window = time_params(shared, params)?;
    let data = shared.read();
    let from = data.audits.partition_point(|a| a.timestamp < window.start);
    let path = "/api/v2/incremental/ticket_events.json";
    let timestamp = |a: &Audit| a.timestamp;
    let (audits, envelope) = time_page(
        shared,
        params,
        path,
        window,
        &data.audits[from..],
        timestamp,
    );
    let page = Page::new("ticket_events", || audits.iter().map(AuditJson), envelope);
    Ok(serialize_body(&page, audits.len() * 400 + 512))
}

/// `GET /api/v2/groups.json`: every group on one page.
fn groups(shared: &Shared, _params: &QueryMap) -> Answer {
    let data = shared.read();
    let page = Page::new(
        "groups",
        || {
            data.groups
                .iter()
                .map(|g| GroupJson::new(g, &shared.base_url))
        },
        Envelope(vec![
            ("next_page", Value::Null),
            ("previous_page", Value::Null),
            ("count", data.groups.len().into()),
        ]),
    );
    Ok(serialize_body(&page, 4096))
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

/// `GET /api/v2/satisfaction_ratings/{id}.json` (counted as `satisfaction_ratings`):
/// `{"satisfaction_rating": {...}}`, or 404 `RecordNotFound`.
fn satisfaction_rating(shared: &Shared, file: &str) -> Answer {
    let data = shared.read();
    let rating = file
        .strip_suffix(".json")
        .unwrap_or(file)
        .parse::<u64>()
        .ok()
        .and_then(|id| data.rating(id));
    let Some(rating) = rating else {
        return Ok(not_found("Not found"));
    };
    Ok(serialize_body(
        &Named(
            "satisfaction_rating",
            RatingJson::new(rating, &shared.base_url),
        ),
        1024,
    ))
}

/// `GET /api/v2/satisfaction_ratings.json`.
fn satisfaction_ratings(shared: &Shared, params: &QueryMap) -> Answer {
    let size = per_page(params, "page[size]", RATINGS_PAGE_MAX)?;
    let start = unix_param(params, "start_time")?;
    let end = unix_param(params, "end_time")?;
    let filter = match params.get("score") {
        Some(name) => Some(score_filter(name).ok_or_else(|| {
            BadRequest::new("InvalidValue", &format!("unknown score filter {name}"))
        })?),
        None => None,
    };
    let mut position = start.map_or((i64::MIN, 0), |s| (s - 1, u64::MAX));
    if let Some(raw) = params.get("page[after]") {
        let after = cursor::decode(raw)
            .ok_or_else(|| BadRequest::new("InvalidCursor", "page[after] is invalid"))?;
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
            percent_encode(c)
        );
        for key in ["start_time", "end_time", "score"] {
            if let Some(value) = params.get(key) {
                url.push_str(&format!("&{key}={}", percent_encode(value)));
            }
        }
        url
    });
    let envelope = Envelope(vec![
        (
            "meta",
            serde_json::json!({
                "has_more": has_more, "after_cursor": after_cursor, "before_cursor": null
            }),
        ),
        ("links", serde_json::json!({"next": next, "prev": null})),
    ]);
    let page = Page::new(
        "satisfaction_ratings",
        || matched.iter().map(|r| RatingJson::new(r, &shared.base_url)),
        envelope,
    );
    Ok(serialize_body(&page, size * 400 + 512))
}
