//! The fuzz targets: every decoder zdsync runs on bytes that come from outside.
use std::hint::black_box;
use std::path::PathBuf;

use base64::Engine;
use prost::Message;
use serde::de::DeserializeOwned;
use sha2::{Digest, Sha256};
use tokio::runtime::Runtime;
use tokio::sync::watch;
use tonic::Request;

use zdsync::proto::v1 as pb;
use zdsync::proto::v1::account_directory_service_server::AccountDirectoryService;
use zdsync::proto::v1::metrics_service_server::MetricsService;
use zdsync::zendesk::envelope::{self as env, PageEnvelope};
use zdsync::zendesk::ZendeskError;

use crate::mutate::InputKind;

/// What one target decodes and how its corpus starts.
pub struct Target {
    /// Name on the command line and in `artifacts/<name>/`.
    pub name: &'static str,
    /// One line on what is fuzzed.
    pub about: &'static str,
    /// Shape of the inputs.
    pub kind: InputKind,
    /// Subdirectories of the fixture directory whose files seed the corpus.
    pub fixture_dirs: &'static [&'static str],
    /// Built-in seeds (for inputs the fixtures do not cover).
    pub seeds: fn() -> Vec<Vec<u8>>,
    /// Extra dictionary words.
    pub tokens: &'static [&'static str],
    /// Whether the target needs a store and a runtime.
    pub needs_services: bool,
    /// Runs one input; true when zdsync accepted it (accepted inputs may join the corpus).
    pub run: fn(&mut Ctx, &[u8]) -> bool,
}

/// Per-worker state the targets share: a scratch directory, and for gRPC targets a store.
pub struct Ctx {
    scratch: tempfile::TempDir,
    services: Option<Services>,
}

struct Services {
    runtime: Runtime,
    metrics: zdsync::grpc::metrics::Metrics,
    accounts: zdsync::grpc::accounts::AccountDirectory,
    // Kept alive: the store's directory and the shutdown signal the services watch.
    _data_dir: tempfile::TempDir,
    _shutdown: watch::Sender<bool>,
}

impl Ctx {
    /// A context; with `services`, an empty store in a temporary directory and the gRPC services on it.
    pub fn new(services: bool) -> Result<Self, String> {
        let scratch = tempfile::tempdir().map_err(|e| format!("scratch directory: {e}"))?;
        let services = if services {
            Some(Services::new()?)
        } else {
            None
        };
        Ok(Self { scratch, services })
    }

    fn scratch_file(&self, name: &str, data: &[u8]) -> Option<PathBuf> {
        let path = self.scratch.path().join(name);
        std::fs::write(&path, data).ok().map(|()| path)
    }
}

impl Services {
    fn new() -> Result<Self, String> {
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .map_err(|e| format!("tokio runtime: {e}"))?;
        let data_dir = tempfile::tempdir().map_err(|e| format!("data directory: {e}"))?;
        let store = zdsync::store::Store::open(data_dir.path())
            .map_err(|e| format!("store in {}: {e}", data_dir.path().display()))?;
        // Shut down from the start: a watch checks the request, then its watcher ends at once.
        let (shutdown, receiver) = watch::channel(true);
        let metrics = zdsync::grpc::metrics::Metrics::new(
            store.clone(),
            zdsync::clock::system(),
            receiver.clone(),
        );
        let accounts = zdsync::grpc::accounts::AccountDirectory::new(store, receiver);
        Ok(Self {
            runtime,
            metrics,
            accounts,
            _data_dir: data_dir,
            _shutdown: shutdown,
        })
    }
}

/// Every target, in the order `all` and `smoke` run them.
pub fn all() -> Vec<Target> {
    vec![
        zendesk_target(
            "ticket_cursor_page",
            "TicketCursorPage (/incremental/tickets/cursor.json, with side-loads)",
            &["incremental_tickets_cursor", "incremental_tickets_time"],
            zendesk_run::<env::TicketCursorPage>,
        ),
        zendesk_target(
            "user_cursor_page",
            "UserCursorPage (/incremental/users/cursor.json)",
            &["incremental_users"],
            zendesk_run::<env::UserCursorPage>,
        ),
        zendesk_target(
            "ticket_time_page",
            "TicketTimePage (time-based /incremental/tickets.json)",
            &["incremental_tickets_time", "incremental_tickets_cursor"],
            zendesk_run::<env::TicketTimePage>,
        ),
        zendesk_target(
            "user_time_page",
            "UserTimePage (time-based /incremental/users.json)",
            &["incremental_users"],
            zendesk_run::<env::UserTimePage>,
        ),
        zendesk_target(
            "organization_time_page",
            "OrganizationTimePage (/incremental/organizations.json)",
            &["incremental_organizations", "organizations"],
            zendesk_run::<env::OrganizationTimePage>,
        ),
        zendesk_target(
            "ticket_event_time_page",
            "TicketEventTimePage (/incremental/ticket_events.json: status/priority changes)",
            &["incremental_ticket_events", "ticket_audits"],
            zendesk_run::<env::TicketEventTimePage>,
        ),
        zendesk_target(
            "ticket_metric_event_time_page",
            "TicketMetricEventTimePage (/incremental/ticket_metric_events.json)",
            &["incremental_ticket_metric_events"],
            zendesk_run::<env::TicketMetricEventTimePage>,
        ),
        zendesk_target(
            "group_list_page",
            "GroupListPage (/groups.json, offset and cursor paging)",
            &["groups"],
            zendesk_run::<env::GroupListPage>,
        ),
        zendesk_target(
            "satisfaction_rating_list_page",
            "SatisfactionRatingListPage (/satisfaction_ratings.json)",
            &["satisfaction_ratings"],
            zendesk_run::<env::SatisfactionRatingListPage>,
        ),
        zendesk_target(
            "organization_list_page",
            "OrganizationListPage (/organizations.json)",
            &["organizations", "incremental_organizations"],
            zendesk_run::<env::OrganizationListPage>,
        ),
        zendesk_target(
            "ticket_metric_list_page",
            "TicketMetricListPage (/ticket_metrics.json)",
            &["ticket_metrics"],
            zendesk_run::<env::TicketMetricListPage>,
        ),
        zendesk_target(
            "ticket_audit_list_page",
            "TicketAuditListPage (/tickets/{id}/audits.json, with side-loaded users)",
            &["ticket_audits"],
            zendesk_run::<env::TicketAuditListPage>,
        ),
        zendesk_target(
            "current_user",
            "CurrentUserEnvelope (/users/me.json)",
            &["users_me"],
            zendesk_run::<env::CurrentUserEnvelope>,
        ),
        zendesk_target(
            "satisfaction_rating",
            "SatisfactionRatingEnvelope (/satisfaction_ratings/{id}.json, object or array)",
            &["satisfaction_ratings"],
            zendesk_run::<env::SatisfactionRatingEnvelope>,
        ),
        zendesk_target(
            "ticket_metric",
            "TicketMetricEnvelope (/ticket_metrics/{id}.json, object or array)",
            &["ticket_metrics"],
            zendesk_run::<env::TicketMetricEnvelope>,
        ),
        Target {
            name: "error_body",
            about: "zendesk::error::error_message on error bodies (JSON shapes, text, HTML)",
            kind: InputKind::Json,
            fixture_dirs: &["errors"],
            seeds: || vec![b"<html>\n<body>Too many requests</body></html>".to_vec(), Vec::new()],
            tokens: &["\"error\"", "\"description\"", "\"errors\"", "\"title\"", "\"message\"", "\"code\"", "\"detail\"", "\"error_description\""],
            needs_services: false,
            run: |_, data| {
                black_box(zdsync::zendesk::error::error_message(data));
                true
            },
        },
        Target {
            name: "retry_after",
            about: "zendesk::retry::parse_retry_after on Retry-After header values",
            kind: InputKind::Text,
            fixture_dirs: &[],
            seeds: || {
                ["10", "0", "1.5", "Wed, 21 Oct 2015 07:28:00 GMT", "Sun, 06 Dec 2026 05:00:00 +0000", "-1", "1e9"]
                    .iter()
                    .map(|s| s.as_bytes().to_vec())
                    .collect()
            },
            tokens: &["GMT", "+0000", "-2359", "Mon, ", "99999999999999999999", "1e308", "NaN", "inf"],
            needs_services: false,
            run: |_, data| {
                let Ok(text) = std::str::from_utf8(data) else {
                    return false;
                };
                let nows = [0_i64, 1_700_000_000, -62_135_596_800, 8_210_298_412_799];
                let now = chrono::DateTime::from_timestamp(nows[data.len() % nows.len()], 0)
                    .unwrap_or_default();
                zdsync::zendesk::retry::parse_retry_after(text, now).is_some()
            },
        },
        Target {
            name: "rate_limit_headers",
            about: "zendesk::account_limit: x-rate-limit, x-rate-limit-remaining and ratelimit-reset values (one a line), then the reserve they drive",
            kind: InputKind::Text,
            fixture_dirs: &[],
            seeds: || {
                ["700\n699\n41", "10\n0\n", "\n\n", "2500\n2500\n60", "1\n-1\n1.5", "99999999999999999999\n5\n1e300"]
                    .iter()
                    .map(|s| s.as_bytes().to_vec())
                    .collect()
            },
            tokens: &["\n", "99999999999999999999", "4294967296", "1e308", "NaN", "inf", "-0", "0.000001"],
            needs_services: false,
            run: |_, data| {
                let Ok(text) = std::str::from_utf8(data) else {
                    return false;
                };
                let mut lines = text.split('\n');
                let headers = zdsync::zendesk::account_limit::RateLimitHeaders::parse(
                    lines.next(),
                    lines.next(),
                    lines.next(),
                );
                // The parsed values must drive the reserve without panicking; three callers queue
                // behind at most three windows.
                let limit = zdsync::zendesk::account_limit::AccountLimit::new(
                    u32::try_from(data.len() % 91).unwrap_or(0),
                );
                let now = std::time::Instant::now();
                limit.observe(headers, now);
                for _ in 0..3 {
                    let wait = limit.reserve(now);
                    assert!(
                        wait <= 3 * zdsync::zendesk::account_limit::WINDOW,
                        "a header made the client wait {wait:?}"
                    );
                }
                headers.limit.is_some() || headers.remaining.is_some() || headers.reset.is_some()
            },
        },
        Target {
            name: "config",
            about: "Config::from_toml: TOML text plus ZDSYNC_* overrides (lines after `#ENV`)",
            kind: InputKind::Text,
            fixture_dirs: &[],
            seeds: config_seeds,
            tokens: &[
                "listen", "data_dir", "log_format", "[auth]", "[tls]", "[zendesk]", "[schedule]",
                "admin_token_file", "read_token_file", "cert_file", "key_file", "base_url",
                "requests_per_minute", "other_requests_per_minute", "reserve_for_other_apps", "timeout", "incremental_interval", "full_validation_at",
                "pages_per_commit", "\n#ENV\n", "ZDSYNC_LISTEN=", "ZDSYNC_ADMIN_TOKEN=",
                "ZDSYNC_READ_TOKEN=", "ZDSYNC_ZENDESK_TIMEOUT=", "ZDSYNC_SCHEDULE_FULL_VALIDATION_AT=",
                "ZDSYNC_ZENDESK_REQUESTS_PER_MINUTE=", "ZDSYNC_DATA_DIR=", "STATE_DIRECTORY=",
                "[::1]:0", "0.0.0.0:65535", "99999999999999999999y", "24:00", "23:59:60",
                "http://[::1]:99999", "= \"\"", "= 1", "= -1", "[[zendesk]]", "'''",
            ],
            needs_services: false,
            run: run_config,
        },
        Target {
            name: "accounts_csv",
            about: "cli::accounts::read_csv (a temp file) then the server's account validation",
            kind: InputKind::Text,
            fixture_dirs: &[],
            seeds: || {
                vec![
                    b"id,name,owner,users,attr:crm_id,num:seats,date:renewal\nacme,Acme,am@example.com,a@acme.com;Bob <b@acme.com>,C-1,12,2027-01-31\nglobex,Globex,,,C-2,3.5,2026-12-01T00:00:00Z\n".to_vec(),
                    b"id\nx\n".to_vec(),
                ]
            },
            tokens: &["id", "name", "owner", "users", "attr:", "num:", "date:", ",", ";", "\"", "\n", "\r\n", "<", ">", "NaN", "inf", "1e400"],
            needs_services: false,
            run: |ctx, data| {
                let Some(path) = ctx.scratch_file("accounts.csv", data) else {
                    return false;
                };
                zdsync::cli::accounts::read_csv(&path).is_ok_and(validate_accounts)
            },
        },
        Target {
            name: "accounts_json",
            about: "cli::accounts::read_json (a temp file) then the server's account validation",
            kind: InputKind::Json,
            fixture_dirs: &[],
            seeds: || {
                vec![br#"[{"id":"acme","name":"Acme","owner":"am@example.com","attributes":{"crm_id":"C-1","seats":12,"renewal":{"date":"2027-01-31"}},"users":[{"email":"a@acme.com","name":"A"},"b@acme.com"]},{"id":"globex"}]"#.to_vec()]
            },
            tokens: &["\"id\"", "\"name\"", "\"owner\"", "\"attributes\"", "\"users\"", "\"email\"", "\"date\"", "\"text\"", "\"number\""],
            needs_services: false,
            run: |ctx, data| {
                let Some(path) = ctx.scratch_file("accounts.json", data) else {
                    return false;
                };
                zdsync::cli::accounts::read_json(&path).is_ok_and(validate_accounts)
            },
        },
        Target {
            name: "timeline_page_token",
            about: "ListTimelineEvents page_token (raw, or the decoded token text re-encoded) on a store",
            kind: InputKind::Text,
            fixture_dirs: &[],
            seeds: || {
                let digest = default_filter_digest();
                vec![
                    format!("\u{1}timeline.v2:1700000000000:5:{digest}").into_bytes(),
                    format!("\u{1}timeline.v2:-9223372036854775808:18446744073709551615:{digest}").into_bytes(),
                    b"\x01timeline:1:2".to_vec(),
                    b"\x00dGltZWxpbmUudjI6MToyOjAwMDAwMDAwMDAwMDAwMDA".to_vec(),
                ]
            },
            tokens: &["timeline.v2:", "timeline:", ":", "-", "18446744073709551616", "9223372036854775807"],
            needs_services: true,
            run: |ctx, data| {
                let request = pb::ListTimelineEventsRequest {
                    page_token: token_from(data),
                    ..Default::default()
                };
                ctx.with_services(|s| {
                    s.runtime
                        .block_on(s.metrics.list_timeline_events(Request::new(request)))
                        .is_ok()
                })
            },
        },
        Target {
            name: "metrics_page_token",
            about: "ListAccountMetrics page_token with the sort it was issued for, on a store",
            kind: InputKind::Text,
            fixture_dirs: &[],
            seeds: || vec![b"\x01metrics:50:0:false".to_vec(), b"\x01metrics:18446744073709551615:3:true".to_vec()],
            tokens: &["metrics:", ":", "true", "false", "18446744073709551616"],
            needs_services: true,
            run: |ctx, data| {
                let sort = data.get(1).copied().unwrap_or(0);
                let request = pb::ListAccountMetricsRequest {
                    page_token: token_from(data),
                    sort_by: i32::from(sort % 12),
                    descending: sort & 0x80 != 0,
                    page_size: u32::from(sort & 0x70),
                };
                ctx.with_services(|s| {
                    s.runtime
                        .block_on(s.metrics.list_account_metrics(Request::new(request)))
                        .is_ok()
                })
            },
        },
        Target {
            name: "accounts_page_token",
            about: "ListAccounts page_token, on a store",
            kind: InputKind::Text,
            fixture_dirs: &[],
            seeds: || vec![b"\x01acct:acme".to_vec(), "\u{1}acct:acct/42 é".as_bytes().to_vec()],
            tokens: &["acct:", "\u{0}", "\u{10ffff}"],
            needs_services: true,
            run: |ctx, data| {
                let request = pb::ListAccountsRequest {
                    page_token: token_from(data),
                    page_size: 0,
                };
                ctx.with_services(|s| {
                    s.runtime
                        .block_on(s.accounts.list_accounts(Request::new(request)))
                        .is_ok()
                })
            },
        },
        Target {
            name: "watch_cursor",
            about: "WatchTimelineEvents after_cursor (event cursor) and scope, on a store",
            kind: InputKind::Text,
            fixture_dirs: &[],
            seeds: || vec![b"0".to_vec(), b"18446744073709551615".to_vec(), b"42".to_vec()],
            tokens: &["18446744073709551616", "-1", "+1", " 1", "0x10"],
            needs_services: true,
            run: |ctx, data| {
                let request = pb::WatchTimelineEventsRequest {
                    after_cursor: String::from_utf8_lossy(data).into_owned(),
                    include_history: data.len() % 2 == 0,
                    ..Default::default()
                };
                ctx.with_services(|s| watch_once(s, request))
            },
        },
        Target {
            name: "grpc_integration",
            about: "prost decoding of every IntegrationService request, then the public validators",
            kind: InputKind::Binary,
            fixture_dirs: &[],
            seeds: integration_seeds,
            tokens: &[],
            needs_services: false,
            run: |_, data| run_integration(data),
        },
        Target {
            name: "grpc_accounts",
            about: "prost decoding of every AccountDirectoryService request, validation, reads on a store",
            kind: InputKind::Binary,
            fixture_dirs: &[],
            seeds: account_seeds,
            tokens: &[],
            needs_services: true,
            run: run_accounts,
        },
        Target {
            name: "grpc_metrics",
            about: "prost decoding of every MetricsService request, then the service on a store",
            kind: InputKind::Binary,
            fixture_dirs: &[],
            seeds: metrics_seeds,
            tokens: &[],
            needs_services: true,
            run: run_metrics,
        },
    ]
}

impl Ctx {
    fn with_services(&mut self, work: impl FnOnce(&mut Services) -> bool) -> bool {
        match self.services.as_mut() {
            Some(services) => work(services),
            None => false,
        }
    }
}

/// A Zendesk payload target running `run` (a [`zendesk_run`] instance).
fn zendesk_target(
    name: &'static str,
    about: &'static str,
    fixture_dirs: &'static [&'static str],
    run: fn(&mut Ctx, &[u8]) -> bool,
) -> Target {
    Target {
        name,
        about,
        kind: InputKind::Json,
        fixture_dirs,
        seeds: Vec::new,
        tokens: ZENDESK_TOKENS,
        needs_services: false,
        run,
    }
}

/// Words of the Zendesk payloads worth splicing into any of them.
const ZENDESK_TOKENS: &[&str] = &[
    "\"id\"",
    "\"status\"",
    "\"priority\"",
    "\"created_at\"",
    "\"updated_at\"",
    "\"generated_timestamp\"",
    "\"end_of_stream\"",
    "\"after_cursor\"",
    "\"end_time\"",
    "\"next_page\"",
    "\"count\"",
    "\"meta\"",
    "\"has_more\"",
    "\"links\"",
    "\"next\"",
    "\"child_events\"",
    "\"event_type\"",
    "\"field_name\"",
    "\"value\"",
    "\"previous_value\"",
    "\"timestamp\"",
    "\"score\"",
    "\"ticket_id\"",
    "\"users\"",
    "\"groups\"",
    "\"organizations\"",
    "\"metric_sets\"",
    "\"domain_names\"",
    "\"organization_fields\"",
    "\"deleted_at\"",
    "\"urgent\"",
    "\"solved\"",
    "\"bad\"",
    "\"Change\"",
    "\"Create\"",
];

/// Decodes `data` as `T` with `decode_json` (the production path, its error explanation
/// included), then walks the result the way the sync engine does.
fn zendesk_run<T: DeserializeOwned + Inspect>(_: &mut Ctx, data: &[u8]) -> bool {
    match zdsync::zendesk::decode::decode_json::<T>(std::any::type_name::<T>(), data) {
        Ok(value) => {
            value.inspect();
            true
        }
        Err(error) => {
            explain(&error);
            false
        }
    }
}

fn explain(error: &ZendeskError) {
    black_box((error.to_string(), error.kind(), error.is_auth_failure()));
}

/// What the sync engine reads from a decoded payload.
trait Inspect {
    /// Touches what the engine uses: records, paging facts, derived flags.
    fn inspect(self);
}

macro_rules! inspect_time_pages {
    ($($ty:ty),*) => {$(
        impl Inspect for $ty {
            fn inspect(self) {
                let (records, meta) = self.into_parts();
                black_box((records, meta));
            }
        }
    )*};
}
inspect_time_pages!(
    env::TicketTimePage,
    env::UserTimePage,
    env::OrganizationTimePage,
    env::TicketEventTimePage,
    env::TicketMetricEventTimePage
);

macro_rules! inspect_list_pages {
    ($($ty:ty),*) => {$(
        impl Inspect for $ty {
            fn inspect(self) {
                let (records, meta) = self.into_parts();
                black_box((records, meta.next()));
            }
        }
    )*};
}
inspect_list_pages!(
    env::GroupListPage,
    env::OrganizationListPage,
    env::TicketMetricListPage
);

impl Inspect for env::TicketCursorPage {
    fn inspect(self) {
        for ticket in &self.tickets {
            black_box((
                ticket.status.is_unsolved(),
                ticket.priority.map(|p| p.is_high_or_urgent()),
            ));
        }
        black_box(self);
    }
}

impl Inspect for env::UserCursorPage {
    fn inspect(self) {
        black_box(self);
    }
}

impl Inspect for env::SatisfactionRatingListPage {
    fn inspect(self) {
        let (records, meta) = self.into_parts();
        for rating in &records {
            black_box((
                rating.score.is_good(),
                rating.score.is_bad(),
                rating.score.as_str(),
            ));
        }
        black_box(meta.next());
    }
}

impl Inspect for env::TicketAuditListPage {
    fn inspect(self) {
        black_box(self.meta.next());
        black_box(self);
    }
}

impl Inspect for env::CurrentUserEnvelope {
    fn inspect(self) {
        black_box(self.user);
    }
}

impl Inspect for env::SatisfactionRatingEnvelope {
    fn inspect(self) {
        black_box(self.satisfaction_rating.into_first());
    }
}

impl Inspect for env::TicketMetricEnvelope {
    fn inspect(self) {
        black_box(self.ticket_metric.into_first());
    }
}

/// The environment of a `config` input: `KEY=VALUE` lines after `#ENV`.
struct FuzzEnv(Vec<(String, String)>);

impl zdsync::config::Env for FuzzEnv {
    fn var(&self, name: &str) -> Option<String> {
        self.0
            .iter()
            .rev()
            .find(|(key, value)| key == name && !value.is_empty())
            .map(|(_, value)| value.clone())
    }
}

fn config_seeds() -> Vec<Vec<u8>> {
    let mut seeds = vec![
        b"".to_vec(),
        b"listen = \"[::1]:50051\"\ndata_dir = \"/tmp/zdsync\"\nlog_format = \"json\"\n[auth]\nadmin_token_file = \"/etc/zdsync/admin.token\"\nread_token_file = \"/etc/zdsync/read.token\"\n[tls]\ncert_file = \"c.pem\"\nkey_file = \"k.pem\"\n[zendesk]\nbase_url = \"http://127.0.0.1:8080\"\nrequests_per_minute = 0\ntimeout = \"2m 5s\"\n[schedule]\nincremental_interval = \"15min\"\nfull_validation_at = \"23:59\"\npages_per_commit = 50\n".to_vec(),
        b"log_format = \"text\"\n#ENV\nZDSYNC_LISTEN=127.0.0.1:0\nZDSYNC_ADMIN_TOKEN=0123456789abcdef0123456789abcdef\nZDSYNC_READ_TOKEN=fedcba9876543210fedcba9876543210\nZDSYNC_ZENDESK_TIMEOUT=1s\nZDSYNC_SCHEDULE_FULL_VALIDATION_AT=00:00\nZDSYNC_ZENDESK_REQUESTS_PER_MINUTE=700\nSTATE_DIRECTORY=/var/lib/zdsync\n".to_vec(),
    ];
    // The example shipped with the unit, read at run time (never copied here).
    let example = concat!(env!("CARGO_MANIFEST_DIR"), "/../systemd/zdsync.toml");
    if let Ok(text) = std::fs::read(example) {
        seeds.push(text);
    }
    seeds
}

fn run_config(_: &mut Ctx, data: &[u8]) -> bool {
    let Ok(text) = std::str::from_utf8(data) else {
        // `Config::load` reads the file with `read_to_string`: not UTF-8 never reaches the parser.
        return false;
    };
    let (toml, env_text) = text.split_once("\n#ENV\n").unwrap_or((text, ""));
    let env = FuzzEnv(
        env_text
            .lines()
            .filter_map(|line| line.split_once('='))
            .map(|(key, value)| (key.to_owned(), value.to_owned()))
            .collect(),
    );
    match zdsync::config::Config::from_toml(toml, &env) {
        Ok(config) => {
            black_box(format!("{config:?}"));
            true
        }
        Err(error) => {
            black_box(error.to_string());
            false
        }
    }
}

/// What the server does with imported accounts: conversion, then the batch rules.
fn validate_accounts(accounts: Vec<pb::Account>) -> bool {
    match zdsync::grpc::convert::accounts_from_proto(accounts, 0) {
        Ok(accounts) => zdsync::domain::account::validate_batch(&accounts).is_ok(),
        Err(error) => {
            black_box(format!("{error:?}"));
            false
        }
    }
}

/// The digest a timeline page token carries for the default filter (all accounts, no bounds,
/// no kinds), so seeds can reach past the filter check (the encoder is private to zdsync).
fn default_filter_digest() -> String {
    let mut hasher = Sha256::new();
    hasher.update(b"zdsync.timeline.filter.v1");
    hasher.update([0u8]);
    hasher.update([0u8]);
    hasher.update([0u8]);
    hasher.update(0u64.to_be_bytes());
    hasher.finalize()[..8]
        .iter()
        .map(|byte| format!("{byte:02x}"))
        .collect()
}

/// A page token from an input: its first byte odd means "base64url-encode the rest" (so
/// mutations work on the decoded text), even means "use the rest as it is".
fn token_from(data: &[u8]) -> String {
    match data.split_first() {
        None => String::new(),
        Some((mode, rest)) if mode & 1 == 1 => {
            base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(rest)
        }
        Some((_, rest)) => String::from_utf8_lossy(rest).into_owned(),
    }
}

/// Starts a watch and lets its watcher task run to its end (the services' shutdown is set).
fn watch_once(services: &mut Services, request: pb::WatchTimelineEventsRequest) -> bool {
    let metrics = &services.metrics;
    services.runtime.block_on(async {
        let accepted = metrics
            .watch_timeline_events(Request::new(request))
            .await
            .is_ok();
        for _ in 0..4 {
            tokio::task::yield_now().await;
        }
        accepted
    })
}

/// Decodes `body` as `M`, checks it survives re-encoding, then hands it to `check`.
fn decoded<M: Message + Default>(body: &[u8], check: impl FnOnce(M)) -> bool {
    match M::decode(body) {
        Ok(message) => {
            let bytes = message.encode_to_vec();
            match M::decode(bytes.as_slice()) {
                Ok(again) => assert_eq!(
                    again.encoded_len(),
                    message.encoded_len(),
                    "re-encoding changed the message"
                ),
                Err(error) => panic!("a decoded message, re-encoded, does not decode: {error}"),
            }
            check(message);
            true
        }
        Err(error) => {
            black_box(error.to_string());
            false
        }
    }
}

fn selector(data: &[u8]) -> (u8, &[u8]) {
    data.split_first()
        .map_or((0, &[][..]), |(first, rest)| (*first, rest))
}

fn with_selector(selector: u8, message: &impl Message) -> Vec<u8> {
    let mut bytes = vec![selector];
    bytes.extend(message.encode_to_vec());
    bytes
}

fn subdomain(text: &str) {
    let _ = black_box(zdsync::sync::login::validate_subdomain(text).map_err(|e| e.to_string()));
}

fn match_key(key: Option<&pb::MatchKey>) {
    if let Some(key) = key {
        let _ = black_box(zdsync::grpc::integration::validate_match_key(key).map_err(|s| s.code()));
    }
}

fn timeframe(days: u32) {
    let _ =
        black_box(zdsync::domain::metrics::Timeframe::from_days(days).map_err(|e| e.to_string()));
}

fn secrets(values: &[&str]) {
    for value in values {
        black_box(zdsync::secrets::mask(value));
    }
}

fn credentials_check(
    oauth_client: Option<&pb::OAuthClientCredentials>,
    oauth: Option<&pb::OAuthTokens>,
    api: Option<&pb::ApiTokenCredentials>,
) {
    if let Some(c) = oauth_client {
        secrets(&[&c.client_id, &c.client_secret]);
    }
    if let Some(c) = oauth {
        secrets(&[
            &c.access_token,
            &c.refresh_token,
            &c.client_id,
            &c.client_secret,
        ]);
    }
    if let Some(c) = api {
        let _ = black_box(zdsync::domain::account::validate_email(&c.email));
        secrets(&[&c.token]);
    }
}

fn sample_match_key() -> Option<pb::MatchKey> {
    Some(pb::MatchKey {
        zendesk_field: "organization_fields.account_id".into(),
        account_attribute: "attributes.crm_id".into(),
    })
}

fn integration_seeds() -> Vec<Vec<u8>> {
    use pb::configure_request::Credentials as C;
    vec![
        with_selector(
            0,
            &pb::ConfigureRequest {
                subdomain: "acme".into(),
                credentials: Some(C::OauthClient(pb::OAuthClientCredentials {
                    client_id: "zdsync".into(),
                    client_secret: "s3cr3t-s3cr3t-s3cr3t-s3cr3t".into(),
                })),
                match_key: sample_match_key(),
                timeframe_days: 30,
                include_satisfaction: true,
            },
        ),
        with_selector(
            0,
            &pb::ConfigureRequest {
                subdomain: "Acme-2".into(),
                credentials: Some(C::ApiToken(pb::ApiTokenCredentials {
                    email: "admin@example.com".into(),
                    token: "tok".into(),
                })),
                match_key: None,
                timeframe_days: 7,
                include_satisfaction: false,
            },
        ),
        with_selector(1, &pb::GetIntegrationRequest {}),
        with_selector(
            2,
            &pb::UpdateSettingsRequest {
                match_key: sample_match_key(),
                timeframe_days: Some(90),
                include_satisfaction: Some(false),
            },
        ),
        with_selector(
            3,
            &pb::ChangeLoginRequest {
                credentials: Some(pb::change_login_request::Credentials::Oauth(
                    pb::OAuthTokens {
                        access_token: "a".repeat(40),
                        refresh_token: "r".repeat(40),
                        client_id: "c".into(),
                        client_secret: "s".into(),
                    },
                )),
            },
        ),
        with_selector(
            4,
            &pb::BeginOAuthRequest {
                client_id: "zdsync".into(),
                client_secret: "secret".into(),
                redirect_uri: "http://127.0.0.1:8765/callback".into(),
                subdomain: "acme".into(),
                match_key: sample_match_key(),
                timeframe_days: 14,
                include_satisfaction: true,
            },
        ),
        with_selector(
            5,
            &pb::CompleteOAuthRequest {
                code: "code".into(),
                state: "state".into(),
            },
        ),
        with_selector(6, &pb::GetStatusRequest {}),
        with_selector(7, &pb::ForceSyncRequest { kind: 2 }),
        with_selector(8, &pb::PauseRequest {}),
        with_selector(9, &pb::ResumeRequest {}),
        with_selector(
            10,
            &pb::DeleteIntegrationRequest {
                confirm_subdomain: "acme".into(),
            },
        ),
        with_selector(
            11,
            &pb::ListUnmatchedRequest {
                reasons: vec![1, 2],
            },
        ),
    ]
}

fn run_integration(data: &[u8]) -> bool {
    use pb::change_login_request::Credentials as L;
    use pb::configure_request::Credentials as C;
    let (which, body) = selector(data);
    match which % 12 {
        0 => decoded::<pb::ConfigureRequest>(body, |m| {
            subdomain(&m.subdomain);
            match_key(m.match_key.as_ref());
            timeframe(m.timeframe_days);
            match &m.credentials {
                Some(C::OauthClient(c)) => credentials_check(Some(c), None, None),
                Some(C::Oauth(c)) => credentials_check(None, Some(c), None),
                Some(C::ApiToken(c)) => credentials_check(None, None, Some(c)),
                None => {}
            }
        }),
        1 => decoded::<pb::GetIntegrationRequest>(body, drop),
        2 => decoded::<pb::UpdateSettingsRequest>(body, |m| {
            match_key(m.match_key.as_ref());
            timeframe(m.timeframe_days.unwrap_or(30));
        }),
        3 => decoded::<pb::ChangeLoginRequest>(body, |m| match &m.credentials {
            Some(L::OauthClient(c)) => credentials_check(Some(c), None, None),
            Some(L::Oauth(c)) => credentials_check(None, Some(c), None),
            Some(L::ApiToken(c)) => credentials_check(None, None, Some(c)),
            None => {}
        }),
        4 => decoded::<pb::BeginOAuthRequest>(body, |m| {
            subdomain(&m.subdomain);
            match_key(m.match_key.as_ref());
            timeframe(m.timeframe_days);
            secrets(&[&m.client_id, &m.client_secret]);
        }),
        5 => decoded::<pb::CompleteOAuthRequest>(body, |m| secrets(&[&m.code, &m.state])),
        6 => decoded::<pb::GetStatusRequest>(body, drop),
        7 => decoded::<pb::ForceSyncRequest>(body, |m| {
            black_box(pb::SyncKind::try_from(m.kind).is_ok());
        }),
        8 => decoded::<pb::PauseRequest>(body, drop),
        9 => decoded::<pb::ResumeRequest>(body, drop),
        10 => decoded::<pb::DeleteIntegrationRequest>(body, |m| subdomain(&m.confirm_subdomain)),
        _ => decoded::<pb::ListUnmatchedRequest>(body, |m| {
            for reason in m.reasons {
                black_box(pb::UnmatchedReason::try_from(reason).is_ok());
            }
        }),
    }
}

fn sample_account(id: &str) -> pb::Account {
    use pb::attribute_value::Value as V;
    let mut attributes = std::collections::HashMap::new();
    attributes.insert(
        "crm_id".to_owned(),
        pb::AttributeValue {
            value: Some(V::Text("C-1".into())),
        },
    );
    attributes.insert(
        "seats".to_owned(),
        pb::AttributeValue {
            value: Some(V::Number(12.5)),
        },
    );
    attributes.insert(
        "renewal".to_owned(),
        pb::AttributeValue {
            value: Some(V::Date(prost_types::Timestamp {
                seconds: 1_800_000_000,
                nanos: 5,
            })),
        },
    );
    pb::Account {
        id: id.into(),
        name: "Acme".into(),
        owner: "am@example.com".into(),
        attributes,
        users: vec![pb::User {
            email: "a@acme.com".into(),
            name: "A".into(),
        }],
    }
}

fn account_seeds() -> Vec<Vec<u8>> {
    vec![
        with_selector(
            0,
            &pb::UpsertAccountsRequest {
                accounts: vec![sample_account("acme"), sample_account("globex")],
            },
        ),
        with_selector(
            1,
            &pb::ImportAccountsRequest {
                accounts: vec![sample_account("initech")],
            },
        ),
        with_selector(
            2,
            &pb::DeleteAccountsRequest {
                ids: vec!["acme".into(), "x".into()],
            },
        ),
        with_selector(3, &pb::GetAccountRequest { id: "acme".into() }),
        with_selector(
            4,
            &pb::ListAccountsRequest {
                page_size: 10,
                page_token: base64::engine::general_purpose::URL_SAFE_NO_PAD.encode("acct:acme"),
            },
        ),
    ]
}

fn run_accounts(ctx: &mut Ctx, data: &[u8]) -> bool {
    let (which, body) = selector(data);
    match which % 5 {
        0 => decoded::<pb::UpsertAccountsRequest>(body, |m| {
            black_box(validate_accounts(m.accounts));
        }),
        1 => decoded::<pb::ImportAccountsRequest>(body, |m| {
            black_box(validate_accounts(m.accounts));
        }),
        2 => decoded::<pb::DeleteAccountsRequest>(body, |m| {
            for id in &m.ids {
                black_box(zdsync::domain::account::validate_id(id).is_ok());
            }
        }),
        3 => decoded::<pb::GetAccountRequest>(body, |m| {
            ctx.with_services(|s| {
                s.runtime
                    .block_on(s.accounts.get_account(Request::new(m)))
                    .is_ok()
            });
        }),
        _ => decoded::<pb::ListAccountsRequest>(body, |m| {
            ctx.with_services(|s| {
                s.runtime
                    .block_on(s.accounts.list_accounts(Request::new(m)))
                    .is_ok()
            });
        }),
    }
}

fn metrics_seeds() -> Vec<Vec<u8>> {
    let digest = default_filter_digest();
    let token = base64::engine::general_purpose::URL_SAFE_NO_PAD
        .encode(format!("timeline.v2:1:2:{digest}"));
    vec![
        with_selector(
            0,
            &pb::GetAccountMetricsRequest {
                account_id: "acme".into(),
            },
        ),
        with_selector(
            1,
            &pb::BatchGetAccountMetricsRequest {
                account_ids: vec!["acme".into(), "globex".into()],
            },
        ),
        with_selector(
            2,
            &pb::ListAccountMetricsRequest {
                page_size: 10,
                page_token: base64::engine::general_purpose::URL_SAFE_NO_PAD
                    .encode("metrics:10:3:true"),
                sort_by: 3,
                descending: true,
            },
        ),
        with_selector(
            3,
            &pb::GetUserMetricsRequest {
                email: "a@acme.com".into(),
                account_id: "acme".into(),
            },
        ),
        with_selector(
            4,
            &pb::ListTimelineEventsRequest {
                scope: None,
                since: Some(prost_types::Timestamp {
                    seconds: 1_600_000_000,
                    nanos: 0,
                }),
                until: Some(prost_types::Timestamp {
                    seconds: 1_900_000_000,
                    nanos: 999_999_999,
                }),
                kinds: vec![1, 4],
                page_size: 50,
                page_token: token.clone(),
            },
        ),
        with_selector(
            4,
            &pb::ListTimelineEventsRequest {
                page_token: token,
                ..Default::default()
            },
        ),
        with_selector(
            4,
            &pb::ListTimelineEventsRequest {
                scope: Some(pb::list_timeline_events_request::Scope::Owner(
                    "am@example.com".into(),
                )),
                ..Default::default()
            },
        ),
        with_selector(
            5,
            &pb::WatchTimelineEventsRequest {
                after_cursor: "17".into(),
                include_history: true,
                kinds: vec![2],
                scope: Some(pb::watch_timeline_events_request::Scope::AccountId(
                    "acme".into(),
                )),
                // Fields added later (the heartbeat) keep their defaults.
                ..Default::default()
            },
        ),
    ]
}

fn run_metrics(ctx: &mut Ctx, data: &[u8]) -> bool {
    let (which, body) = selector(data);
    match which % 6 {
        0 => decoded::<pb::GetAccountMetricsRequest>(body, |m| {
            ctx.with_services(|s| {
                s.runtime
                    .block_on(s.metrics.get_account_metrics(Request::new(m)))
                    .is_ok()
            });
        }),
        1 => decoded::<pb::BatchGetAccountMetricsRequest>(body, |m| {
            ctx.with_services(|s| {
                s.runtime
                    .block_on(s.metrics.batch_get_account_metrics(Request::new(m)))
                    .is_ok()
            });
        }),
        2 => decoded::<pb::ListAccountMetricsRequest>(body, |m| {
            ctx.with_services(|s| {
                s.runtime
                    .block_on(s.metrics.list_account_metrics(Request::new(m)))
                    .is_ok()
            });
        }),
        3 => decoded::<pb::GetUserMetricsRequest>(body, |m| {
            ctx.with_services(|s| {
                s.runtime
                    .block_on(s.metrics.get_user_metrics(Request::new(m)))
                    .is_ok()
            });
        }),
        4 => decoded::<pb::ListTimelineEventsRequest>(body, |m| {
            ctx.with_services(|s| {
                s.runtime
                    .block_on(s.metrics.list_timeline_events(Request::new(m)))
                    .is_ok()
            });
        }),
        _ => decoded::<pb::WatchTimelineEventsRequest>(body, |m| {
            ctx.with_services(|s| watch_once(s, m));
        }),
    }
}
