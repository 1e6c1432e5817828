//! Process-wide Prometheus metrics: what the sync, the Zendesk client and the gRPC server record as they work.
//!
//! The metrics live in one registry for the process (as a tracing subscriber does); recording costs an atomic
//! add and happens whether or not `[prometheus] listen` serves them. `crate::prometheus` serves the registry
//! and refreshes the store-derived gauges at each scrape.
use std::sync::atomic::AtomicU64;
use std::sync::OnceLock;
use std::time::Duration;

use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::{exponential_buckets, Histogram};
use prometheus_client::metrics::{MetricType, TypedMetric};
use prometheus_client::registry::Registry;

use crate::zendesk::WaitReason;

pub mod grpc;

/// Labels of one series: fixed keys, values known at record time.
pub type Labels<const N: usize> = [(&'static str, String); N];

/// A float gauge.
pub type FloatGauge = Gauge<f64, AtomicU64>;

/// go-grpc-prometheus's default latency buckets (seconds).
const GRPC_BUCKETS: [f64; 11] = [
    0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0,
];

fn grpc_histogram() -> Histogram {
    Histogram::new(GRPC_BUCKETS)
}

fn run_histogram() -> Histogram {
    // 1 s to about 1.5 days: an incremental run takes seconds, a first sync against real Zendesk hours.
    Histogram::new(exponential_buckets(1.0, 3.0, 12))
}

/// Every metric zdsync exports.
#[derive(Debug)]
pub struct Metrics {
    /// The registry the metrics below are registered in.
    pub registry: Registry,
    /// The sample names the registry can export (`_total` of counters, `_bucket`, `_sum`, `_count` of histograms).
    pub names: Vec<String>,
    /// Sync runs finished, by kind and outcome.
    pub sync_runs: Family<Labels<2>, Counter>,
    /// Run durations from the run's first start, by kind.
    pub sync_run_duration: Family<Labels<1>, Histogram, fn() -> Histogram>,
    /// Pages applied (committed), by phase.
    pub pages_applied: Family<Labels<1>, Counter>,
    /// Tickets applied.
    pub tickets_applied: Counter,
    /// Timeline events recorded by sync runs.
    pub events_applied: Counter,
    /// Lookups of an account's figures in the store's cache, by result (`hit`, `miss`).
    pub figure_cache_lookups: Family<Labels<1>, Counter>,
    /// The `hit` and `miss` counters of `figure_cache_lookups`, made once: the read path counts every call
    /// without a label allocation or the family's lock.
    figure_cache_results: (Counter, Counter),
    /// Zendesk HTTP requests answered, by endpoint and status (`error` without an answer).
    pub zendesk_requests: Family<Labels<2>, Counter>,
    /// Waits on Zendesk's 429 answers, by endpoint.
    pub rate_limit_waits: Family<Labels<1>, Counter>,
    /// Seconds waited on Zendesk's 429 answers, by endpoint.
    pub rate_limit_wait_seconds: Family<Labels<1>, Counter<f64, AtomicU64>>,
    /// Waits on the client-side budget, by endpoint.
    pub budget_waits: Family<Labels<1>, Counter>,
    /// Seconds waited on the client-side budget, by endpoint.
    pub budget_wait_seconds: Family<Labels<1>, Counter<f64, AtomicU64>>,
    /// Requests left in the client-side budget after the last request, by endpoint class.
    pub budget_remaining: Family<Labels<1>, FloatGauge>,
    /// Store-derived gauges, refreshed at each scrape.
    pub state: StateGauges,
    /// gRPC RPCs started (go-grpc-prometheus `grpc_server_started_total`).
    pub grpc_started: Family<Labels<3>, Counter>,
    /// gRPC RPCs completed (go-grpc-prometheus `grpc_server_handled_total`).
    pub grpc_handled: Family<Labels<4>, Counter>,
    /// gRPC handling latency (go-grpc-prometheus `grpc_server_handling_seconds`).
    pub grpc_handling_seconds: Family<Labels<3>, Histogram, fn() -> Histogram>,
}

/// Gauges that describe the daemon's state, set from `GetStatus` and the data directory at each scrape.
#[derive(Debug, Default)]
pub struct StateGauges {
    /// 1 for the current sync state, 0 for the others, by state.
    pub sync_state: Family<Labels<1>, Gauge>,
    /// Unix time of the last successful sync; absent before the first.
    pub last_successful_sync: Family<Labels<0>, FloatGauge>,
    /// 1 while the last run's failure stands, by error kind (`AUTHENTICATION`, ...).
    pub last_error: Family<Labels<1>, Gauge>,
    /// What the last full validation found, by what.
    pub drift: Family<Labels<1>, Gauge>,
    /// Organizations by match outcome (`matched`, `unmatched`, `ambiguous`, `total`).
    pub organizations: Family<Labels<1>, Gauge>,
    /// Accounts with and without a Zendesk organization.
    pub accounts: Family<Labels<1>, Gauge>,
    /// Account users matched to a Zendesk user.
    pub users_matched: Gauge,
    /// Records in the store, by kind.
    pub stored: Family<Labels<1>, Gauge>,
    /// Size of the store file in bytes.
    pub store_file_bytes: Gauge,
    /// 1 when the data directory accepted a durable write at the last scrape.
    pub store_writable: Gauge,
    /// 1 while a run is in progress.
    pub run_in_progress: Gauge,
    /// The run in progress: pages fetched in its phase.
    pub run_phase_pages: Gauge,
    /// The run in progress: estimated seconds left (absent when unknown).
    pub run_eta_seconds: Family<Labels<0>, FloatGauge>,
}

impl Metrics {
    fn new() -> Self {
        let mut registry = Registry::default();
        let mut names = Vec::new();
        let sync_runs = Family::default();
        let sync_run_duration =
            Family::<Labels<1>, Histogram, fn() -> Histogram>::new_with_constructor(run_histogram);
        let pages_applied = Family::default();
        let tickets_applied = Counter::default();
        let events_applied = Counter::default();
        let zendesk_requests = Family::default();
        let rate_limit_waits = Family::default();
        let rate_limit_wait_seconds = Family::default();
        let budget_waits = Family::default();
        let budget_wait_seconds = Family::default();
        let budget_remaining = Family::default();
        let grpc_started = Family::default();
        let grpc_handled = Family::default();
        let grpc_handling_seconds =
            Family::<Labels<3>, Histogram, fn() -> Histogram>::new_with_constructor(grpc_histogram);
        let state = StateGauges::default();

        register(
            &mut registry,
            &mut names,
            "zdsync_sync_runs",
            "Sync runs finished, by kind (initial, incremental, full_validation) and outcome (succeeded, failed, paused, interrupted)",
            sync_runs.clone(),
        );
        register(
            &mut registry,
            &mut names,
            "zdsync_sync_run_duration_seconds",
            "Duration of finished sync runs from their first start, by kind",
            sync_run_duration.clone(),
        );
        register(
            &mut registry,
            &mut names,
            "zdsync_sync_pages",
            "Zendesk pages applied to the store, by phase",
            pages_applied.clone(),
        );
        register(
            &mut registry,
            &mut names,
            "zdsync_sync_tickets",
            "Tickets applied to the store",
            tickets_applied.clone(),
        );
        register(
            &mut registry,
            &mut names,
            "zdsync_sync_events",
            "Timeline events recorded by sync runs",
            events_applied.clone(),
        );
        let figure_cache_lookups: Family<Labels<1>, Counter> = Family::default();
        register(
            &mut registry,
            &mut names,
            "zdsync_figure_cache_lookups",
            "Reads of an account's figures, by result: `hit` served figures computed since the last commit that changed their inputs, `miss` computed them from the rollups",
            figure_cache_lookups.clone(),
        );
        register(
            &mut registry,
            &mut names,
            "zdsync_zendesk_requests",
            "Zendesk HTTP requests answered, by endpoint and HTTP status (`error` when no answer came)",
            zendesk_requests.clone(),
        );
        register(
            &mut registry,
            &mut names,
            "zdsync_zendesk_rate_limit_waits",
            "Waits on Zendesk 429 answers (Retry-After), by endpoint",
            rate_limit_waits.clone(),
        );
        register(
            &mut registry,
            &mut names,
            "zdsync_zendesk_rate_limit_wait_seconds",
            "Seconds waited on Zendesk 429 answers, by endpoint",
            rate_limit_wait_seconds.clone(),
        );
        register(
            &mut registry,
            &mut names,
            "zdsync_zendesk_budget_waits",
            "Waits on the client-side request budget, by endpoint",
            budget_waits.clone(),
        );
        register(
            &mut registry,
            &mut names,
            "zdsync_zendesk_budget_wait_seconds",
            "Seconds waited on the client-side request budget, by endpoint",
            budget_wait_seconds.clone(),
        );
        register(
            &mut registry,
            &mut names,
            "zdsync_zendesk_budget_remaining",
            "Requests left in the client-side budget after the last request, by endpoint class (export, other)",
            budget_remaining.clone(),
        );
        register(
            &mut registry,
            &mut names,
            "zdsync_sync_state",
            "1 for the integration's current state (NOT_CONFIGURED, IDLE, SYNCING, PAUSED, FAILED), 0 for the others",
            state.sync_state.clone(),
        );
        register(
            &mut registry,
            &mut names,
            "zdsync_last_successful_sync_timestamp_seconds",
            "Unix time the last successful sync run finished",
            state.last_successful_sync.clone(),
        );
        register(
            &mut registry,
            &mut names,
            "zdsync_last_error",
            "1 while the last run's failure stands, by kind (AUTHENTICATION, ERROR_KIND_RATE_LIMITED, ERROR_KIND_TRANSPORT, ERROR_KIND_SERVER, ERROR_KIND_MALFORMED, ERROR_KIND_INTERNAL)",
            state.last_error.clone(),
        );
        register(
            &mut registry,
            &mut names,
            "zdsync_drift",
            "What the last full validation found, by what (tickets_added, tickets_updated, tickets_gone, rollups_corrected)",
            state.drift.clone(),
        );
        register(
            &mut registry,
            &mut names,
            "zdsync_organizations",
            "Zendesk organizations in the store, by match outcome (total, matched, unmatched, ambiguous)",
            state.organizations.clone(),
        );
        register(
            &mut registry,
            &mut names,
            "zdsync_accounts",
            "Accounts of the directory, by whether a Zendesk organization matches them (with_organization, without_organization)",
            state.accounts.clone(),
        );
        register(
            &mut registry,
            &mut names,
            "zdsync_users_matched",
            "Account users matched to a Zendesk user",
            state.users_matched.clone(),
        );
        register(
            &mut registry,
            &mut names,
            "zdsync_stored_records",
            "Records in the local store, by kind (tickets, organizations, users, ratings, events)",
            state.stored.clone(),
        );
        register(
            &mut registry,
            &mut names,
            "zdsync_store_file_bytes",
            "Size of the store file (zdsync.redb) in bytes",
            state.store_file_bytes.clone(),
        );
        register(
            &mut registry,
            &mut names,
            "zdsync_store_writable",
            "1 when the data directory accepted a durable write at the last scrape, 0 when it did not",
            state.store_writable.clone(),
        );
        register(
            &mut registry,
            &mut names,
            "zdsync_sync_run_in_progress",
            "1 while a sync run is in progress",
            state.run_in_progress.clone(),
        );
        register(
            &mut registry,
            &mut names,
            "zdsync_sync_run_phase_pages",
            "Pages the run in progress has fetched in its current phase",
            state.run_phase_pages.clone(),
        );
        register(
            &mut registry,
            &mut names,
            "zdsync_sync_run_eta_seconds",
            "Estimated seconds left of the run in progress, from the request budget",
            state.run_eta_seconds.clone(),
        );
        register(
            &mut registry,
            &mut names,
            "grpc_server_started",
            "Total number of RPCs started on the server.",
            grpc_started.clone(),
        );
        register(
            &mut registry,
            &mut names,
            "grpc_server_handled",
            "Total number of RPCs completed on the server, regardless of success or failure.",
            grpc_handled.clone(),
        );
        register(
            &mut registry,
            &mut names,
            "grpc_server_handling_seconds",
            "Histogram of response latency (seconds) of gRPC that had been application-level handled by the server.",
            grpc_handling_seconds.clone(),
        );
        let result = |name: &str| {
            figure_cache_lookups
                .get_or_create(&[("result", name.to_owned())])
                .clone()
        };
        let figure_cache_results = (result("hit"), result("miss"));
        Self {
            registry,
            names,
            sync_runs,
            sync_run_duration,
            pages_applied,
            tickets_applied,
            events_applied,
            figure_cache_lookups,
            figure_cache_results,
            zendesk_requests,
            rate_limit_waits,
            rate_limit_wait_seconds,
            budget_waits,
            budget_wait_seconds,
            budget_remaining,
            state,
            grpc_started,
            grpc_handled,
            grpc_handling_seconds,
        }
    }

    /// The registry in the Prometheus text format (OpenMetrics 1.0).
    pub fn encode(&self) -> Result<String, std::fmt::Error> {
        let mut text = String::new();
        prometheus_client::encoding::text::encode(&mut text, &self.registry)?;
        Ok(text)
    }
}

/// Registers `metric` under `name` and notes the sample names it exports.
fn register<M: prometheus_client::registry::Metric + TypedMetric>(
    registry: &mut Registry,
    names: &mut Vec<String>,
    name: &str,
    help: &str,
    metric: M,
) {
    match M::TYPE {
        MetricType::Counter => names.push(format!("{name}_total")),
        MetricType::Histogram => {
            names.extend(["_bucket", "_sum", "_count"].map(|suffix| format!("{name}{suffix}")));
        }
        _ => names.push(name.to_owned()),
    }
    registry.register(name, help, metric);
}

/// The process's metrics.
pub fn metrics() -> &'static Metrics {
    static METRICS: OnceLock<Metrics> = OnceLock::new();
    METRICS.get_or_init(Metrics::new)
}

/// Records a finished run: `kind` and `outcome` as named in logs, `duration` from its first start.
pub fn run_finished(kind: &str, outcome: &str, duration: Duration) {
    let m = metrics();
    m.sync_runs
        .get_or_create(&[("kind", kind.to_owned()), ("outcome", outcome.to_owned())])
        .inc();
    m.sync_run_duration
        .get_or_create(&[("kind", kind.to_owned())])
        .observe(duration.as_secs_f64());
}

/// Records a commit of `pages` pages of `phase` holding `tickets` tickets and producing `events` events.
pub fn pages_applied(phase: &str, pages: u64, tickets: u64, events: u64) {
    let m = metrics();
    m.pages_applied
        .get_or_create(&[("phase", phase.to_owned())])
        .inc_by(pages);
    m.tickets_applied.inc_by(tickets);
    m.events_applied.inc_by(events);
}

/// Records a read of an account's figures that the cache answered (`hit`) or did not.
pub fn figure_cache_lookup(hit: bool) {
    let (hits, misses) = &metrics().figure_cache_results;
    if hit { hits } else { misses }.inc();
}

/// The figure-cache lookups counted so far in this process: (hits, misses).
pub fn figure_cache_lookups() -> (u64, u64) {
    let (hits, misses) = &metrics().figure_cache_results;
    (hits.get(), misses.get())
}

/// Records a Zendesk answer (`None`: the request got none).
pub fn zendesk_response(endpoint: &str, status: Option<u16>) {
    let status = status.map_or_else(|| "error".to_owned(), |code| code.to_string());
    metrics()
        .zendesk_requests
        .get_or_create(&[("endpoint", endpoint.to_owned()), ("status", status)])
        .inc();
}

/// Records a wait of the Zendesk client before a request.
pub fn zendesk_wait(endpoint: &str, reason: WaitReason, duration: Duration) {
    let m = metrics();
    let labels = [("endpoint", endpoint.to_owned())];
    match reason {
        WaitReason::RateLimited => {
            m.rate_limit_waits.get_or_create(&labels).inc();
            m.rate_limit_wait_seconds
                .get_or_create(&labels)
                .inc_by(duration.as_secs_f64());
        }
        WaitReason::Budget => {
            m.budget_waits.get_or_create(&labels).inc();
            m.budget_wait_seconds
                .get_or_create(&labels)
                .inc_by(duration.as_secs_f64());
        }
        WaitReason::Backoff => {}
    }
}

/// Records the requests left in a budget (`class`: `export` or `other`) after a request.
pub fn budget_remaining(class: &str, left: f64) {
    metrics()
        .budget_remaining
        .get_or_create(&[("class", class.to_owned())])
        .set(left);
}
