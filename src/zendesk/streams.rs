//! The export streams: each `next_page` yields one whole page with the position that follows it.
//!
//! The caller commits a page's records together with its `position` (one transaction), then asks
//! for the next page; after a crash it starts a new stream from the stored position.
//!
//! Duplicates are normal: the same record can come back on a later page or in a later run
//! (every update re-exports it, and time-based exports repeat their boundary second). Callers
//! upsert by `id`, keeping the copy with the newest `generated_timestamp` (tickets) or
//! `updated_at` (users, organizations, ratings).
//!
//! `next_page` is cancel-safe: a position moves only when a whole page has been decoded, so a
//! dropped call (pause, shutdown) or a failed one leaves the stream where it was.
use reqwest::Url;
use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};
use tracing::Instrument;

use super::budget::EndpointClass;
use super::client::ZendeskClient;
use super::envelope::{
    GroupListPage, ListMeta, NextLink, OrganizationTimePage, PageEnvelope,
    SatisfactionRatingListPage, TicketCursorPage, TicketEventTimePage, TimeExportMeta,
    UserCursorPage,
};
use super::error::ZendeskError;
use super::payload::{
    Group, Organization, SatisfactionRating, Ticket, TicketEvent, TicketMetricSet, User,
};

/// Cursor-based ticket export.
pub const TICKETS_PATH: &str = "/api/v2/incremental/tickets/cursor.json";
/// Cursor-based user export.
pub const USERS_PATH: &str = "/api/v2/incremental/users/cursor.json";
/// Time-based organization export.
pub const ORGANIZATIONS_PATH: &str = "/api/v2/incremental/organizations.json";
/// Time-based ticket event export.
pub const TICKET_EVENTS_PATH: &str = "/api/v2/incremental/ticket_events.json";
/// Group list.
pub const GROUPS_PATH: &str = "/api/v2/groups.json";
/// Satisfaction rating list.
pub const SATISFACTION_RATINGS_PATH: &str = "/api/v2/satisfaction_ratings.json";
/// Side-loads asked with the ticket export, so no per-ticket requests are needed.
pub const TICKET_SIDE_LOADS: &str = "users,groups,organizations,metric_sets";
/// Zendesk refuses a `start_time` later than one minute ago.
const NEWEST_START_TIME_AGE_SECS: i64 = 60;

/// One page of a stream.
#[derive(Debug, Clone, PartialEq)]
pub struct Page<T, P, S = ()> {
    /// 1-based number of the page within this stream.
    pub number: u32,
    /// The page's records, in Zendesk's order.
    pub records: Vec<T>,
    /// Records side-loaded with the page (tickets only).
    pub side_loads: S,
    /// Where to resume after this page: store it with the records.
    pub position: P,
    /// True on the last page of this run; the stream then yields nothing more.
    pub end_of_stream: bool,
    /// Records in the whole listing, where the endpoint says (an offset-paginated list's `count`).
    pub total: Option<u64>,
}

/// Where a cursor-based export (tickets, users) resumes.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum ExportPosition {
    /// First call: everything changed at or after this Unix time (0 = everything).
    StartTime(i64),
    /// Later calls: the opaque `after_cursor` of the last page.
    Cursor(String),
}

/// Where a time-based export (organizations, ticket events) resumes.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
pub struct TimePosition {
    /// The next `start_time` (Unix seconds).
    pub start_time: i64,
    /// Records already returned at exactly `start_time`, skipped when they come again unchanged.
    pub boundary_ids: Vec<u64>,
}

impl TimePosition {
    /// Starts at `start_time` with nothing seen.
    pub fn from_start_time(start_time: i64) -> Self {
        Self {
            start_time,
            boundary_ids: Vec::new(),
        }
    }
}

/// Where a list (groups, ratings) resumes.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum ListPosition {
    /// The first page.
    Start,
    /// The page at this path and query (relative to the base URL, never another host).
    Next(String),
    /// Nothing more in this listing.
    Finished,
}

/// The records side-loaded with a ticket export page.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct TicketSideLoads {
    /// Requesters, submitters and assignees of the page's tickets.
    pub users: Vec<User>,
    /// Groups of the page's tickets.
    pub groups: Vec<Group>,
    /// Organizations of the page's tickets.
    pub organizations: Vec<Organization>,
    /// Metric sets (reopens, solved_at) of the page's tickets.
    pub metric_sets: Vec<TicketMetricSet>,
}

/// A ticket export page.
pub type TicketPage = Page<Ticket, ExportPosition, TicketSideLoads>;
/// A user export page.
pub type UserPage = Page<User, ExportPosition>;
/// An organization export page.
pub type OrganizationPage = Page<Organization, TimePosition>;
/// A ticket event export page.
pub type TicketEventPage = Page<TicketEvent, TimePosition>;
/// A group list page.
pub type GroupPage = Page<Group, ListPosition>;
/// A satisfaction rating list page.
pub type SatisfactionRatingPage = Page<SatisfactionRating, ListPosition>;

#[derive(Debug)]
struct Progress<P> {
    position: P,
    pages: u32,
    finished: bool,
}

/// Moves `progress` past page `number` and builds the page.
fn advance<R, P: Clone, S>(
    progress: &mut Progress<P>,
    number: u32,
    position: P,
    end_of_stream: bool,
    records: Vec<R>,
    side_loads: S,
) -> Page<R, P, S> {
    *progress = Progress {
        position: position.clone(),
        pages: number,
        finished: end_of_stream,
    };
    Page {
        number,
        records,
        side_loads,
        position,
        end_of_stream,
        total: None,
    }
}

impl<P> Progress<P> {
    fn new(position: P) -> Self {
        Self {
            position,
            pages: 0,
            finished: false,
        }
    }
}

impl ZendeskClient {
    /// The cursor-based ticket export (`per_page`, side-loads users, groups, organizations, metric sets).
    pub fn ticket_export(&self, from: ExportPosition) -> TicketExport {
        CursorExport::new(self, from)
    }

    /// The cursor-based user export.
    pub fn user_export(&self, from: ExportPosition) -> UserExport {
        CursorExport::new(self, from)
    }

    /// The time-based organization export.
    pub fn organization_export(&self, from: TimePosition) -> OrganizationExport {
        OrganizationExport {
            client: self.clone(),
            progress: Progress::new(from),
        }
    }

    /// The time-based ticket event export (status and priority changes with their times).
    pub fn ticket_event_export(&self, from: TimePosition) -> TicketEventExport {
        TicketEventExport {
            client: self.clone(),
            progress: Progress::new(from),
        }
    }

    /// All groups.
    pub fn groups(&self) -> GroupList {
        GroupList {
            client: self.clone(),
            progress: Progress::new(ListPosition::Start),
        }
    }

    /// Satisfaction ratings created at or after `start_time` (Unix seconds).
    pub fn satisfaction_ratings(&self, start_time: i64) -> SatisfactionRatingList {
        self.satisfaction_ratings_from(start_time, ListPosition::Start)
    }

    /// Satisfaction ratings created at or after `start_time`, resuming at `position`.
    pub fn satisfaction_ratings_from(
        &self,
        start_time: i64,
        position: ListPosition,
    ) -> SatisfactionRatingList {
        SatisfactionRatingList {
            client: self.clone(),
            start_time,
            progress: Progress::new(position),
        }
    }

    /// `path` with `query` under the base URL.
    fn url_with(&self, path: &str, query: &[(&str, String)]) -> Result<Url, ZendeskError> {
        let mut url = self.settings().url(path)?;
        if !query.is_empty() {
            let mut pairs = url.query_pairs_mut();
            for (key, value) in query {
                pairs.append_pair(key, value);
            }
        }
        Ok(url)
    }

    /// A `start_time` Zendesk accepts: not newer than one minute ago (earlier only repeats records).
    fn acceptable_start_time(&self, start_time: i64) -> i64 {
        let newest = self.now().timestamp() - NEWEST_START_TIME_AGE_SECS;
        start_time.min(newest).max(0)
    }

    fn cursor_export_url(
        &self,
        path: &str,
        position: &ExportPosition,
        include: Option<&str>,
    ) -> Result<Url, ZendeskError> {
        let mut query = match position {
            ExportPosition::StartTime(start_time) => {
                vec![(
                    "start_time",
                    self.acceptable_start_time(*start_time).to_string(),
                )]
            }
            ExportPosition::Cursor(cursor) => vec![("cursor", cursor.clone())],
        };
        query.push(("per_page", self.settings().export_page_size.to_string()));
        if let Some(include) = include {
            query.push(("include", include.to_owned()));
        }
        self.url_with(path, &query)
    }
}

fn malformed(endpoint: &str, detail: impl Into<String>) -> ZendeskError {
    ZendeskError::Malformed {
        endpoint: endpoint.to_owned(),
        record_id: None,
        detail: detail.into(),
    }
}

/// The position after a cursor page, refusing a stream that would loop on one cursor.
fn next_cursor_position(
    endpoint: &str,
    current: &ExportPosition,
    after_cursor: Option<String>,
    end_of_stream: bool,
) -> Result<ExportPosition, ZendeskError> {
    match after_cursor.filter(|cursor| !cursor.is_empty()) {
        Some(cursor) => {
            let next = ExportPosition::Cursor(cursor);
            if !end_of_stream && next == *current {
                return Err(malformed(
                    endpoint,
                    "after_cursor did not advance on a page that is not the last",
                ));
            }
            Ok(next)
        }
        // An empty last page may omit the cursor: resume where this one started.
        None if end_of_stream => Ok(current.clone()),
        None => Err(malformed(
            endpoint,
            "field `after_cursor`: missing on a page that is not the last",
        )),
    }
}

/// A cursor export page: what [`CursorExport`] needs to know of it.
pub trait CursorEnvelope: DeserializeOwned {
    /// The record type.
    type Record;
    /// What is side-loaded with the records (`()` for none).
    type SideLoads;
    /// The endpoint's path.
    const PATH: &'static str;
    /// The stream's name in spans.
    const STREAM: &'static str;
    /// The `include=` side-loads to ask for.
    const INCLUDE: Option<&'static str>;
    /// Splits the page into records, side-loads, the cursor that follows and `end_of_stream`.
    fn into_parts(self) -> (Vec<Self::Record>, Self::SideLoads, Option<String>, bool);
}

impl CursorEnvelope for TicketCursorPage {
    type Record = Ticket;
    type SideLoads = TicketSideLoads;
    const PATH: &'static str = TICKETS_PATH;
    const STREAM: &'static str = "tickets";
    const INCLUDE: Option<&'static str> = Some(TICKET_SIDE_LOADS);
    fn into_parts(self) -> (Vec<Ticket>, TicketSideLoads, Option<String>, bool) {
        let side_loads = TicketSideLoads {
            users: self.users,
            groups: self.groups,
            organizations: self.organizations,
            metric_sets: self.metric_sets,
        };
        (
            self.tickets,
            side_loads,
            self.after_cursor,
            self.end_of_stream,
        )
    }
}

impl CursorEnvelope for UserCursorPage {
    type Record = User;
    type SideLoads = ();
    const PATH: &'static str = USERS_PATH;
    const STREAM: &'static str = "users";
    const INCLUDE: Option<&'static str> = None;
    fn into_parts(self) -> (Vec<User>, (), Option<String>, bool) {
        (self.users, (), self.after_cursor, self.end_of_stream)
    }
}

/// A cursor-based export (tickets, users); see the module docs for duplicates and positions.
#[derive(Debug)]
pub struct CursorExport<E> {
    client: ZendeskClient,
    progress: Progress<ExportPosition>,
    envelope: std::marker::PhantomData<fn() -> E>,
}

/// The cursor-based ticket export.
pub type TicketExport = CursorExport<TicketCursorPage>;
/// The cursor-based user export.
pub type UserExport = CursorExport<UserCursorPage>;

impl<E: CursorEnvelope> CursorExport<E> {
    fn new(client: &ZendeskClient, from: ExportPosition) -> Self {
        Self {
            client: client.clone(),
            progress: Progress::new(from),
            envelope: std::marker::PhantomData,
        }
    }

    /// The position the next page starts from.
    pub fn position(&self) -> &ExportPosition {
        &self.progress.position
    }

    /// The next page, or `None` after the page with `end_of_stream`.
    pub async fn next_page(
        &mut self,
    ) -> Result<Option<Page<E::Record, ExportPosition, E::SideLoads>>, ZendeskError> {
        if self.progress.finished {
            return Ok(None);
        }
        let number = self.progress.pages + 1;
        let url = self
            .client
            .cursor_export_url(E::PATH, &self.progress.position, E::INCLUDE)?;
        let span = tracing::info_span!("zendesk_page", stream = E::STREAM, page = number);
        let envelope: E = self
            .client
            .get_json(EndpointClass::Export, E::PATH, url)
            .instrument(span)
            .await?;
        let (records, side_loads, after_cursor, end_of_stream) = envelope.into_parts();
        let position = next_cursor_position(
            E::PATH,
            &self.progress.position,
            after_cursor,
            end_of_stream,
        )?;
        let page = advance(
            &mut self.progress,
            number,
            position,
            end_of_stream,
            records,
            side_loads,
        );
        Ok(Some(page))
    }
}

/// Fetches one page of a time-based export, drops the boundary second's repeats and works out
/// the next position. `stamp` gives a record's id and timestamp (Unix seconds).
async fn next_time_page<E>(
    client: &ZendeskClient,
    path: &str,
    stream: &'static str,
    progress: &mut Progress<TimePosition>,
    stamp: fn(&E::Record) -> (u64, Option<i64>),
) -> Result<Option<Page<E::Record, TimePosition>>, ZendeskError>
where
    E: PageEnvelope<Meta = TimeExportMeta> + DeserializeOwned,
{
    if progress.finished {
        return Ok(None);
    }
    let number = progress.pages + 1;
    let current = progress.position.clone();
    let per_page = client.settings().export_page_size;
    let url = client.url_with(
        path,
        &[
            (
                "start_time",
                client.acceptable_start_time(current.start_time).to_string(),
            ),
            ("per_page", per_page.to_string()),
        ],
    )?;
    let span = tracing::info_span!("zendesk_page", stream, page = number);
    let envelope: E = client
        .get_json(EndpointClass::Export, path, url)
        .instrument(span)
        .await?;
    let (mut records, meta) = envelope.into_parts();
    let returned = records.len();
    let end_time = meta
        .end_time
        .ok_or_else(|| malformed(path, "field `end_time`: missing"))?;
    let next_start = end_time.max(current.start_time);
    let mut boundary_ids: Vec<u64> = records
        .iter()
        .map(stamp)
        .filter(|(_, at)| *at == Some(next_start))
        .map(|(id, _)| id)
        .collect();
    records.retain(|record| {
        let (id, at) = stamp(record);
        !(at == Some(current.start_time) && current.boundary_ids.contains(&id))
    });
    if next_start == current.start_time {
        boundary_ids.extend(current.boundary_ids.iter().copied());
    }
    boundary_ids.sort_unstable();
    boundary_ids.dedup();
    let mut end_of_stream = meta
        .end_of_stream
        .unwrap_or(returned < usize::try_from(per_page).unwrap_or(usize::MAX));
    if !end_of_stream && next_start == current.start_time && records.is_empty() {
        // Zendesk never splits one second across pages, so this cannot advance: stop this run
        // rather than loop; the next run asks again from the same position.
        tracing::warn!(
            stream,
            start_time = current.start_time,
            "time-based export did not advance; ending the run"
        );
        end_of_stream = true;
    }
    let position = TimePosition {
        start_time: next_start,
        boundary_ids,
    };
    let page = advance(progress, number, position, end_of_stream, records, ());
    Ok(Some(page))
}

/// The time-based organization export; repeats of the boundary second are dropped.
#[derive(Debug)]
pub struct OrganizationExport {
    client: ZendeskClient,
    progress: Progress<TimePosition>,
}

impl OrganizationExport {
    /// The position the next page starts from.
    pub fn position(&self) -> &TimePosition {
        &self.progress.position
    }

    /// The next page, or `None` after the page with `end_of_stream`.
    pub async fn next_page(&mut self) -> Result<Option<OrganizationPage>, ZendeskError> {
        next_time_page::<OrganizationTimePage>(
            &self.client,
            ORGANIZATIONS_PATH,
            "organizations",
            &mut self.progress,
            |organization| (organization.id, Some(organization.updated_at.timestamp())),
        )
        .await
    }
}

/// The time-based ticket event export; repeats of the boundary second are dropped.
#[derive(Debug)]
pub struct TicketEventExport {
    client: ZendeskClient,
    progress: Progress<TimePosition>,
}

impl TicketEventExport {
    /// The position the next page starts from.
    pub fn position(&self) -> &TimePosition {
        &self.progress.position
    }

    /// The next page, or `None` after the page with `end_of_stream`.
    pub async fn next_page(&mut self) -> Result<Option<TicketEventPage>, ZendeskError> {
        next_time_page::<TicketEventTimePage>(
            &self.client,
            TICKET_EVENTS_PATH,
            "ticket_events",
            &mut self.progress,
            |event| (event.id, event.timestamp),
        )
        .await
    }
}

/// Fetches one page of a list endpoint, offset or cursor paginated.
async fn next_list_page<E>(
    client: &ZendeskClient,
    path: &str,
    stream: &'static str,
    filters: &[(&str, String)],
    progress: &mut Progress<ListPosition>,
) -> Result<Option<Page<E::Record, ListPosition>>, ZendeskError>
where
    E: PageEnvelope<Meta = ListMeta> + DeserializeOwned,
{
    let page_size = ("page[size]", client.settings().list_page_size.to_string());
    let url = match &progress.position {
        _ if progress.finished => return Ok(None),
        ListPosition::Finished => {
            progress.finished = true;
            return Ok(None);
        }
        ListPosition::Start => {
            let mut query = filters.to_vec();
            query.push(page_size.clone());
            client.url_with(path, &query)?
        }
        ListPosition::Next(relative) => client.settings().url(relative)?,
    };
    let number = progress.pages + 1;
    let span = tracing::info_span!("zendesk_page", stream, page = number);
    let envelope: E = client
        .get_json(EndpointClass::Other, path, url)
        .instrument(span)
        .await?;
    let (records, meta) = envelope.into_parts();
    let position = match meta.next() {
        None => ListPosition::Finished,
        Some(NextLink::Url(link)) => ListPosition::Next(same_endpoint(client, path, &link)?),
        Some(NextLink::AfterCursor(cursor)) => {
            let mut query = filters.to_vec();
            query.push(page_size);
            query.push(("page[after]", cursor));
            let url = client.url_with(path, &query)?;
            ListPosition::Next(format!("{path}?{}", url.query().unwrap_or_default()))
        }
    };
    if position == progress.position {
        return Err(malformed(
            path,
            "the next-page link points at the page just fetched",
        ));
    }
    let end_of_stream = position == ListPosition::Finished;
    let mut page = advance(progress, number, position, end_of_stream, records, ());
    page.total = meta.count;
    Ok(Some(page))
}

/// Keeps the path and query of a next-page link, which must name the endpoint being listed:
/// credentials are only ever sent to the configured base URL.
fn same_endpoint(client: &ZendeskClient, path: &str, link: &str) -> Result<String, ZendeskError> {
    let base = client.settings().url(path)?;
    let url = base
        .join(link)
        .map_err(|err| malformed(path, format!("next-page link is not a URL: {err}")))?;
    if !url.path().ends_with(path) {
        return Err(malformed(
            path,
            format!("next-page link points at another endpoint ({})", url.path()),
        ));
    }
    Ok(format!(
        "{path}{}",
        url.query()
            .map(|query| format!("?{query}"))
            .unwrap_or_default()
    ))
}

/// All groups, one page at a time.
#[derive(Debug)]
pub struct GroupList {
    client: ZendeskClient,
    progress: Progress<ListPosition>,
}

impl GroupList {
    /// The next page, or `None` after the last.
    pub async fn next_page(&mut self) -> Result<Option<GroupPage>, ZendeskError> {
        next_list_page::<GroupListPage>(
            &self.client,
            GROUPS_PATH,
            "groups",
            &[],
            &mut self.progress,
        )
        .await
    }
}

/// Satisfaction ratings created since a start time, one page at a time.
#[derive(Debug)]
pub struct SatisfactionRatingList {
    client: ZendeskClient,
    start_time: i64,
    progress: Progress<ListPosition>,
}

impl SatisfactionRatingList {
    /// The position the next page starts from.
    pub fn position(&self) -> &ListPosition {
        &self.progress.position
    }

    /// The next page, or `None` after the last.
    pub async fn next_page(&mut self) -> Result<Option<SatisfactionRatingPage>, ZendeskError> {
        let filters = [("start_time", self.start_time.max(0).to_string())];
        next_list_page::<SatisfactionRatingListPage>(
            &self.client,
            SATISFACTION_RATINGS_PATH,
            "satisfaction_ratings",
            &filters,
            &mut self.progress,
        )
        .await
    }
}

/// A paged Zendesk stream, as a sync run drains it.
pub trait PageStream: Send {
    /// One page of the stream.
    type Page: Send;

    /// The next page, or `None` after the last.
    fn next_page(
        &mut self,
    ) -> impl std::future::Future<Output = Result<Option<Self::Page>, ZendeskError>> + Send;
}

macro_rules! page_stream {
    ($($stream:ty => $page:ty),* $(,)?) => {
        $(
            impl PageStream for $stream {
                type Page = $page;

                fn next_page(
                    &mut self,
                ) -> impl std::future::Future<Output = Result<Option<$page>, ZendeskError>> + Send {
                    // The inherent method of the same name.
                    <$stream>::next_page(self)
                }
            }
        )*
    };
}

impl<E> PageStream for CursorExport<E>
where
    E: CursorEnvelope + Send,
    E::Record: Send,
    E::SideLoads: Send,
{
    type Page = Page<E::Record, ExportPosition, E::SideLoads>;

    fn next_page(
        &mut self,
    ) -> impl std::future::Future<Output = Result<Option<Self::Page>, ZendeskError>> + Send {
        // The inherent method of the same name.
        CursorExport::next_page(self)
    }
}

page_stream!(
    OrganizationExport => OrganizationPage,
    TicketEventExport => TicketEventPage,
    GroupList => GroupPage,
    SatisfactionRatingList => SatisfactionRatingPage,
);
