//! `zdsync.v1.MetricsService`: per-account and per-user metrics from the rollups, and the timeline.
use chrono::{DateTime, Utc};
use tokio::sync::watch;
use tonic::{Request, Response, Status};

use crate::clock::SharedClock;
use crate::domain::account::{validate_email, validate_id};
use crate::domain::metrics::Timeframe;
use crate::proto::v1 as pb;
use crate::proto::v1::metrics_service_server::MetricsService;
use crate::store::figures::AccountFigures;
use crate::store::metric_index::{ListOrder, Position, SortMetric};
use crate::store::rollups::Figures;
use crate::store::Store;

use super::convert::timestamp_to_proto;
use super::status::from_store;

/// Most accounts one `BatchGetAccountMetrics` may ask for.
pub const MAX_BATCH: usize = 1000;
/// Default `ListAccountMetrics` page.
pub const DEFAULT_PAGE_SIZE: usize = 50;
pub use super::paging::MAX_PAGE_SIZE;

/// The metrics service.
#[derive(Debug, Clone)]
pub struct Metrics {
    store: Store,
    clock: SharedClock,
    shutdown: watch::Receiver<bool>,
}

impl Metrics {
    /// A service reading `store`, with "now" from `clock`.
    pub fn new(store: Store, clock: SharedClock, shutdown: watch::Receiver<bool>) -> Self {
        Self {
            store,
            clock,
            shutdown,
        }
    }

    async fn blocking<T: Send + 'static>(
        &self,
        work: impl FnOnce(Store) -> Result<T, Status> + Send + 'static,
    ) -> Result<T, Status> {
        super::status::on_store(&self.store, work).await
    }
}

/// The window settings in force (the last configured ones survive a delete).
fn settings(store: &Store) -> Result<(Timeframe, bool), Status> {
    let (days, satisfaction) = store.metrics_settings().map_err(from_store)?;
    Ok((Timeframe::stored_or_default(days), satisfaction))
}

/// The metric fields of a message (`AccountMetrics`, `UserMetrics`) from summed figures; the
/// satisfaction fields stay unset or zero when satisfaction is off.
macro_rules! figure_fields {
    ($message:path, $figures:expr, $satisfaction:expr) => {{
        let (figures, satisfaction): (&Figures, bool) = (&$figures, $satisfaction);
        let shown = |count: u64| if satisfaction { count } else { 0 };
        $message {
            open_tickets: figures.counters.open,
            total_tickets: figures.counters.total,
            tickets_created: figures.created.created,
            open_high_urgent_tickets: figures.counters.open_high_urgent,
            high_urgent_tickets_created: figures.created.high_urgent_created,
            satisfaction_score: satisfaction.then(|| figures.ratings.score()).flatten(),
            satisfaction_score_high_urgent: satisfaction
                .then(|| figures.ratings.score_high_urgent())
                .flatten(),
            good_ratings: shown(figures.ratings.good),
            bad_ratings: shown(figures.ratings.bad),
            ..Default::default()
        }
    }};
}

fn account_metrics(
    store: &Store,
    account_id: &str,
    now: DateTime<Utc>,
) -> Result<Option<pb::AccountMetrics>, Status> {
    // One read transaction per call: this is the hot read path.
    let (found, cached) = store
        .account_figures_cached(account_id, now)
        .map_err(from_store)?;
    crate::telemetry::figure_cache_lookup(cached);
    Ok(found.map(|account| account_proto(account_id, &account, now)))
}

/// The message of an account's figures.
fn account_proto(
    account_id: &str,
    account: &AccountFigures,
    now: DateTime<Utc>,
) -> pb::AccountMetrics {
    to_account_proto(
        account_id,
        &account.orgs,
        &account.figures,
        account.timeframe,
        account.satisfaction,
        now,
    )
}

fn to_account_proto(
    account_id: &str,
    orgs: &[u64],
    figures: &Figures,
    timeframe: Timeframe,
    satisfaction: bool,
    now: DateTime<Utc>,
) -> pb::AccountMetrics {
    pb::AccountMetrics {
        account_id: account_id.to_owned(),
        timeframe_days: timeframe.days(),
        computed_at: Some(timestamp_to_proto(now)),
        zendesk_organization_ids: orgs
            .iter()
            .map(|id| i64::try_from(*id).unwrap_or(i64::MAX))
            .collect(),
        ..figure_fields!(pb::AccountMetrics, figures, satisfaction)
    }
}

/// The account `GetUserMetrics` reads: the one asked for, or the only one listing the email.
fn user_account(store: &Store, request: &pb::GetUserMetricsRequest) -> Result<String, Status> {
    let accounts = store
        .accounts_with_user(&request.email)
        .map_err(from_store)?;
    if !request.account_id.is_empty() {
        return if accounts.contains(&request.account_id) {
            Ok(request.account_id.clone())
        } else {
            Err(Status::not_found(format!(
                "email: {:?} is not a user of account {:?}",
                request.email, request.account_id
            )))
        };
    }
    match accounts.as_slice() {
        [] => Err(Status::not_found(format!(
            "email: {:?} is not a user of any account",
            request.email
        ))),
        [only] => Ok(only.clone()),
        many => Err(Status::invalid_argument(format!(
            "account_id: required, {:?} is a user of {} accounts",
            request.email,
            many.len()
        ))),
    }
}

/// One user's figures inside the account [`user_account`] picks.
fn user_metrics(
    store: &Store,
    request: &pb::GetUserMetricsRequest,
    now: DateTime<Utc>,
) -> Result<pb::UserMetrics, Status> {
    let account_id = user_account(store, request)?;
    let (timeframe, satisfaction) = settings(store)?;
    let orgs = store.account_org_ids(&account_id).map_err(from_store)?;
    let requesters = store
        .zendesk_users_with_email(&request.email)
        .map_err(from_store)?;
    let figures = store
        .user_figures(&orgs, &requesters, timeframe, now)
        .map_err(from_store)?;
    Ok(pb::UserMetrics {
        email: request.email.clone(),
        account_id,
        timeframe_days: timeframe.days(),
        computed_at: Some(timestamp_to_proto(now)),
        zendesk_user_id: requesters
            .first()
            .map_or(0, |id| i64::try_from(*id).unwrap_or(i64::MAX)),
        ..figure_fields!(pb::UserMetrics, figures, satisfaction)
    })
}

fn invalid_id(field: &str, id: &str) -> Result<(), Status> {
    validate_id(id).map_err(|reason| Status::invalid_argument(format!("{field}: {reason}")))
}

/// The order a `ListAccountMetrics` request asks for. Unset sorts by account id ascending whatever
/// `descending` says, as it always has.
fn list_order(key: pb::MetricSortKey, descending: bool) -> ListOrder {
    use pb::MetricSortKey as K;
    let metric = match key {
        K::Unspecified => {
            return ListOrder {
                metric: None,
                descending: false,
            }
        }
        K::AccountId => None,
        K::OpenTickets => Some(SortMetric::OpenTickets),
        K::TotalTickets => Some(SortMetric::TotalTickets),
        K::TicketsCreated => Some(SortMetric::TicketsCreated),
        K::OpenHighUrgentTickets => Some(SortMetric::OpenHighUrgentTickets),
        K::HighUrgentTicketsCreated => Some(SortMetric::HighUrgentTicketsCreated),
        K::SatisfactionScore => Some(SortMetric::SatisfactionScore),
        K::SatisfactionScoreHighUrgent => Some(SortMetric::SatisfactionScoreHighUrgent),
        K::GoodRatings => Some(SortMetric::GoodRatings),
        K::BadRatings => Some(SortMetric::BadRatings),
    };
    ListOrder { metric, descending }
}

/// Tokens name the sort and order they continue, then the keyset position: the sort value of the last
/// account shown (`-` for none) and its id, last since an id may hold any character.
const LIST_TOKEN_PREFIX: &str = "metrics.v2:";
/// The offset tokens of earlier versions.
const OFFSET_TOKEN_PREFIX: &str = "metrics:";

fn encode_list_token(position: &Position, key: i32, descending: bool) -> String {
    let value = position
        .value
        .map_or_else(|| "-".to_owned(), |value| value.to_string());
    super::paging::encode_token(
        LIST_TOKEN_PREFIX,
        &format!("{key}:{descending}:{value}:{}", position.account_id),
    )
}

fn decode_list_token(token: &str, key: i32, descending: bool) -> Result<Position, Status> {
    let bad = || {
        Status::invalid_argument(
            "page_token: not a token returned by ListAccountMetrics with this sort",
        )
    };
    let text = super::paging::token_text(token, bad)?;
    let rest = super::paging::token_body(&text, LIST_TOKEN_PREFIX, OFFSET_TOKEN_PREFIX, bad)?;
    let mut parts = rest.splitn(4, ':');
    let (Some(sort), Some(order), Some(value), Some(account_id)) =
        (parts.next(), parts.next(), parts.next(), parts.next())
    else {
        return Err(bad());
    };
    if sort != key.to_string() || order != descending.to_string() {
        return Err(bad());
    }
    let value = match value {
        "-" => None,
        digits => Some(digits.parse::<u64>().map_err(|_| bad())?),
    };
    Ok(Position {
        value,
        account_id: account_id.to_owned(),
    })
}

#[tonic::async_trait]
impl MetricsService for Metrics {
    async fn get_account_metrics(
        &self,
        request: Request<pb::GetAccountMetricsRequest>,
    ) -> Result<Response<pb::AccountMetrics>, Status> {
        let account_id = request.into_inner().account_id;
        invalid_id("account_id", &account_id)?;
        let now = self.clock.now();
        // Figures the cache holds are served on this serving thread: a hop to the blocking pool would cost
        // more than the lookup, and it set this call's tail latency (`cargo bench --bench metrics_load`).
        // Figures to compute go to the blocking pool: reading them may wait on redb's locks held by a commit
        // on the sync's idle-priority thread, which runs only when a core is free. Computed on this thread,
        // such a wait (up to 10 ms, off-CPU profile of the bench, stop 17) held up every call queued behind it.
        let metrics = match self.store.cached_account_figures(&account_id, now) {
            Some(found) => {
                crate::telemetry::figure_cache_lookup(true);
                found.map(|account| account_proto(&account_id, &account, now))
            }
            None => {
                let id = account_id.clone();
                self.blocking(move |store| account_metrics(&store, &id, now))
                    .await?
            }
        };
        metrics
            .map(Response::new)
            .ok_or_else(|| Status::not_found(format!("account_id: no account {account_id:?}")))
    }

    async fn batch_get_account_metrics(
        &self,
        request: Request<pb::BatchGetAccountMetricsRequest>,
    ) -> Result<Response<pb::BatchGetAccountMetricsResponse>, Status> {
        let ids = request.into_inner().account_ids;
        super::status::check_batch("account_ids", ids.len(), MAX_BATCH, "")?;
        for (index, id) in ids.iter().enumerate() {
            invalid_id(&format!("account_ids[{index}]"), id)?;
        }
        let now = self.clock.now();
        let response = self
            .blocking(move |store| {
                let mut response = pb::BatchGetAccountMetricsResponse::default();
                for id in ids {
                    match account_metrics(&store, &id, now)? {
                        Some(metrics) => response.metrics.push(metrics),
                        None => response.not_found.push(id),
                    }
                }
                Ok(response)
            })
            .await?;
        Ok(Response::new(response))
    }

    async fn list_account_metrics(
        &self,
        request: Request<pb::ListAccountMetricsRequest>,
    ) -> Result<Response<pb::ListAccountMetricsResponse>, Status> {
        let request = request.into_inner();
        let key = pb::MetricSortKey::try_from(request.sort_by).map_err(|_| {
            Status::invalid_argument(format!(
                "sort_by: {} is not a MetricSortKey",
                request.sort_by
            ))
        })?;
        let page_size = super::paging::page_size(request.page_size, DEFAULT_PAGE_SIZE)?;
        let descending = request.descending;
        let after = if request.page_token.is_empty() {
            None
        } else {
            Some(decode_list_token(
                &request.page_token,
                request.sort_by,
                descending,
            )?)
        };
        let order = list_order(key, descending);
        let now = self.clock.now();
        // The index holds every account's figures as of the newest commit: built by the first page after a
        // commit that may change them, then each page is a binary search and a slice of it.
        let (metrics, next, total) = self
            .blocking(move |store| {
                let index = store.metric_index(now).map_err(from_store)?;
                let page = index.page(order, after.as_ref(), page_size);
                let metrics = page
                    .rows
                    .iter()
                    .map(|&row| {
                        let account = index.row(row);
                        to_account_proto(
                            account.id,
                            account.orgs,
                            account.figures,
                            index.timeframe(),
                            index.satisfaction(),
                            now,
                        )
                    })
                    .collect::<Vec<_>>();
                Ok((metrics, page.next, index.len() as u64))
            })
            .await?;
        let next_page_token = next
            .map(|position| encode_list_token(&position, request.sort_by, descending))
            .unwrap_or_default();
        Ok(Response::new(pb::ListAccountMetricsResponse {
            metrics,
            next_page_token,
            total,
        }))
    }

    async fn get_user_metrics(
        &self,
        request: Request<pb::GetUserMetricsRequest>,
    ) -> Result<Response<pb::UserMetrics>, Status> {
        let request = request.into_inner();
        validate_email(&request.email)
            .map_err(|reason| Status::invalid_argument(format!("email: {reason}")))?;
        if !request.account_id.is_empty() {
            invalid_id("account_id", &request.account_id)?;
        }
        let now = self.clock.now();
        self.blocking(move |store| user_metrics(&store, &request, now))
            .await
            .map(Response::new)
    }

    async fn list_timeline_events(
        &self,
        request: Request<pb::ListTimelineEventsRequest>,
    ) -> Result<Response<pb::ListTimelineEventsResponse>, Status> {
        super::timeline::list(self.store.clone(), request.into_inner())
            .await
            .map(Response::new)
    }

    type WatchTimelineEventsStream =
        tokio_stream::wrappers::ReceiverStream<Result<pb::WatchTimelineEventsResponse, Status>>;

    async fn watch_timeline_events(
        &self,
        request: Request<pb::WatchTimelineEventsRequest>,
    ) -> Result<Response<Self::WatchTimelineEventsStream>, Status> {
        super::timeline::watch(
            self.store.clone(),
            request.into_inner(),
            self.shutdown.clone(),
        )
        .map(Response::new)
    }
}
