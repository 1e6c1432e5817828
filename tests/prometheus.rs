//! `[prometheus] listen`: `/metrics` scraped and parsed after a sync, counters checked against the simulator's
//! request counters, gRPC server metrics named as go-grpc-prometheus names them.
mod common;

use std::collections::BTreeMap;
use std::time::Instant;

use common::{inproc, spawn_serve, with_token, DaemonOptions, DEADLINE};
use zdsync::proto::v1 as pb;
use zdsync::proto::v1::integration_service_client::IntegrationServiceClient;
use zdsync::simulator::Endpoint;
use zdsync::simulator::SimulatorConfig;

/// One sample of the text format: name, labels, value.
#[derive(Debug, Clone)]
pub struct Sample {
    /// Metric name (with its `_total`/`_bucket` suffix).
    pub name: String,
    /// Labels.
    pub labels: BTreeMap<String, String>,
    /// Value.
    pub value: f64,
}

/// Parses the Prometheus/OpenMetrics text format (the subset zdsync writes: no timestamps, no exemplars).
pub fn parse(text: &str) -> Vec<Sample> {
    let mut samples = Vec::new();
    for line in text.lines() {
        if line.is_empty() || line.starts_with('#') {
            continue;
        }
        let (series, value) = line.rsplit_once(' ').expect("`series value`");
        let value: f64 = match value {
            "+Inf" => f64::INFINITY,
            other => other
                .parse()
                .unwrap_or_else(|_| panic!("a number in {line}")),
        };
        let (name, labels) = match series.split_once('{') {
            None => (series.to_owned(), BTreeMap::new()),
            Some((name, rest)) => {
                let body = rest.strip_suffix('}').expect("closing brace");
                let mut labels = BTreeMap::new();
                let mut remaining = body;
                while !remaining.is_empty() {
                    let (key, after) = remaining.split_once("=\"").expect("key=\"value\"");
                    let mut value = String::new();
                    let mut chars = after.char_indices();
                    let mut end = after.len();
                    while let Some((index, c)) = chars.next() {
                        match c {
                            '\\' => {
                                if let Some((_, escaped)) = chars.next() {
                                    value.push(if escaped == 'n' { '\n' } else { escaped });
                                }
                            }
                            '"' => {
                                end = index + 1;
                                break;
                            }
                            other => value.push(other),
                        }
                    }
                    labels.insert(key.to_owned(), value);
                    remaining = after[end..].trim_start_matches(',');
                }
                (name.to_owned(), labels)
            }
        };
        samples.push(Sample {
            name,
            labels,
            value,
        });
    }
    samples
}

/// The sum of the samples named `name` whose labels include every pair of `with`.
fn sum(samples: &[Sample], name: &str, with: &[(&str, &str)]) -> f64 {
    samples
        .iter()
        .filter(|s| s.name == name)
        .filter(|s| {
            with.iter()
                .all(|(k, v)| s.labels.get(*k).map(String::as_str) == Some(*v))
        })
        .map(|s| s.value)
        .sum()
}

fn has(samples: &[Sample], name: &str) -> bool {
    samples.iter().any(|s| s.name == name)
}

async fn scrape(url: &str) -> (String, Vec<Sample>) {
    let response = reqwest::get(url).await.expect("GET /metrics");
    assert!(response.status().is_success(), "{}", response.status());
    let content_type = response
        .headers()
        .get("content-type")
        .and_then(|v| v.to_str().ok())
        .unwrap_or_default()
        .to_owned();
    assert!(
        content_type.starts_with("application/openmetrics-text"),
        "{content_type}"
    );
    let text = response.text().await.expect("body");
    assert!(
        text.trim_end().ends_with("# EOF"),
        "OpenMetrics ends with # EOF"
    );
    let samples = parse(&text);
    (text, samples)
}

fn endpoint_path(endpoint: Endpoint) -> &'static str {
    use zdsync::zendesk::streams as s;
    match endpoint {
        Endpoint::IncrementalTickets => s::TICKETS_PATH,
        Endpoint::IncrementalUsers => s::USERS_PATH,
        Endpoint::IncrementalOrganizations => s::ORGANIZATIONS_PATH,
        Endpoint::TicketEvents => s::TICKET_EVENTS_PATH,
        Endpoint::Groups => s::GROUPS_PATH,
        Endpoint::SatisfactionRatings => s::SATISFACTION_RATINGS_PATH,
        other => panic!("not a sync endpoint: {other:?}"),
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn metrics_after_a_sync_match_the_simulator_and_name_grpc_as_go_grpc_prometheus() {
    let sim = inproc::simulator(SimulatorConfig {
        tickets: 2_500,
        organizations: 20,
        users: 100,
        ..Default::default()
    })
    .await;
    // One 429 on the ticket export: counted as a 429 answer and a wait.
    sim.control().inject_fault(
        serde_json::from_value(serde_json::json!({
            "endpoint": "incremental_tickets", "kind": "rate_limited", "count": 1, "retry_after_secs": 1
        }))
        .expect("fault spec"),
    );
    let dir = tempfile::tempdir().expect("tempdir");
    let options = DaemonOptions {
        config: format!(
            "[zendesk]\nbase_url = {:?}\nrequests_per_minute = 0\n[prometheus]\nlisten = \"127.0.0.1:0\"\n",
            sim.base_url()
        ),
        ..Default::default()
    };
    let data_dir = dir.path().join("data");
    let (mut child, log) = spawn_serve(&data_dir, &options);
    let deadline = Instant::now() + DEADLINE;
    let (mut metrics_url, mut grpc_addr) = (None, None);
    while metrics_url.is_none() || grpc_addr.is_none() {
        let line = log
            .recv_timeout(deadline.saturating_duration_since(Instant::now()))
            .unwrap_or_else(|_| {
                let _ = child.kill();
                panic!("the daemon did not log its listening addresses")
            });
        if line.contains("prometheus metrics at") {
            metrics_url = line
                .split_whitespace()
                .find(|word| word.starts_with("http://"))
                .map(str::to_owned);
        }
        if line.contains("zdsync listening") {
            grpc_addr = line
                .split_whitespace()
                .find_map(|word| word.strip_prefix("addr="))
                .map(str::to_owned);
        }
    }
    let metrics_url = metrics_url.expect("metrics URL");
    assert!(
        metrics_url.starts_with("http://127.0.0.1:"),
        "{metrics_url}"
    );
    let grpc_addr = grpc_addr.expect("gRPC address");
    let token = std::fs::read_to_string(data_dir.join("admin.token"))
        .expect("admin token")
        .trim()
        .to_owned();

    let (_, before) = scrape(&metrics_url).await;
    assert_eq!(
        sum(&before, "zdsync_sync_state", &[("state", "NOT_CONFIGURED")]),
        1.0
    );
    assert!(!has(
        &before,
        "zdsync_last_successful_sync_timestamp_seconds"
    ));
    assert_eq!(sum(&before, "zdsync_store_writable", &[]), 1.0);

    let channel = tonic::transport::Channel::from_shared(format!("http://{grpc_addr}"))
        .expect("uri")
        .connect()
        .await
        .expect("connect");
    let mut client = IntegrationServiceClient::new(channel);
    let denied = client
        .get_status(tonic::Request::new(pb::GetStatusRequest {}))
        .await
        .expect_err("no token");
    assert_eq!(denied.code(), tonic::Code::Unauthenticated);
    let mut request = inproc::configure_request();
    request.include_satisfaction = true;
    client
        .configure(with_token(request, &token))
        .await
        .expect("configure");
    let status = common::eventually("the first sync", || {
        let mut client = client.clone();
        let token = token.clone();
        async move {
            let status = client
                .get_status(with_token(pb::GetStatusRequest {}, &token))
                .await
                .expect("status")
                .into_inner();
            (status.state() == pb::SyncState::Idle && status.last_successful_sync_at.is_some())
                .then_some(status)
        }
    })
    .await;

    let (text, after) = scrape(&metrics_url).await;
    assert_eq!(
        sum(
            &after,
            "zdsync_sync_runs_total",
            &[("kind", "initial"), ("outcome", "succeeded")]
        ),
        1.0,
        "{text}"
    );
    assert_eq!(
        sum(
            &after,
            "zdsync_sync_run_duration_seconds_count",
            &[("kind", "initial")]
        ),
        1.0
    );
    assert_eq!(sum(&after, "zdsync_sync_state", &[("state", "IDLE")]), 1.0);
    assert_eq!(
        sum(&after, "zdsync_sync_state", &[("state", "NOT_CONFIGURED")]),
        0.0
    );
    let stored = status.stored.expect("stored counts");
    assert_eq!(
        sum(&after, "zdsync_stored_records", &[("kind", "tickets")]),
        stored.tickets as f64
    );
    assert_eq!(
        sum(&after, "zdsync_sync_tickets_total", &[]),
        stored.tickets as f64
    );
    assert_eq!(
        sum(&after, "zdsync_sync_events_total", &[]),
        stored.events as f64,
        "every stored event was recorded by this run"
    );
    let last = status.last_successful_sync_at.expect("last success");
    assert_eq!(
        sum(&after, "zdsync_last_successful_sync_timestamp_seconds", &[]).floor(),
        last.seconds as f64
    );
    assert_eq!(
        sum(&after, "zdsync_organizations", &[("match", "total")]),
        status.match_stats.expect("match stats").organizations_total as f64
    );
    assert!(sum(&after, "zdsync_store_file_bytes", &[]) > 0.0);
    assert_eq!(sum(&after, "zdsync_store_writable", &[]), 1.0);
    assert!(!has(&after, "zdsync_last_error"), "no failure stands");

    // Every request the sync made, as the simulator counted it, per endpoint (Configure's credential check
    // goes through a client of its own, so users/me and the token endpoint are left out).
    let counters = sim.control().counters();
    for endpoint in [
        Endpoint::IncrementalTickets,
        Endpoint::IncrementalUsers,
        Endpoint::IncrementalOrganizations,
        Endpoint::TicketEvents,
        Endpoint::Groups,
        Endpoint::SatisfactionRatings,
    ] {
        let simulated = counters.get(&endpoint).copied().unwrap_or(0) as f64;
        let exported = sum(
            &after,
            "zdsync_zendesk_requests_total",
            &[("endpoint", endpoint_path(endpoint))],
        );
        assert_eq!(exported, simulated, "{endpoint:?}\n{text}");
        assert!(simulated > 0.0, "{endpoint:?} was requested");
    }
    let tickets = endpoint_path(Endpoint::IncrementalTickets);
    assert_eq!(
        sum(
            &after,
            "zdsync_zendesk_requests_total",
            &[("endpoint", tickets), ("status", "429")]
        ),
        1.0
    );
    assert_eq!(
        sum(
            &after,
            "zdsync_zendesk_rate_limit_waits_total",
            &[("endpoint", tickets)]
        ),
        1.0
    );
    assert_eq!(
        sum(
            &after,
            "zdsync_zendesk_rate_limit_wait_seconds_total",
            &[("endpoint", tickets)]
        ),
        1.0
    );
    let pages: f64 = sum(&after, "zdsync_sync_pages_total", &[("phase", "tickets")]);
    let ticket_pages = counters[&Endpoint::IncrementalTickets] as f64 - 1.0;
    assert_eq!(
        pages, ticket_pages,
        "one applied page per answered ticket request"
    );

    // gRPC server metrics, labelled as go-grpc-prometheus labels them.
    let get_status = [
        ("grpc_type", "unary"),
        ("grpc_service", "zdsync.v1.IntegrationService"),
        ("grpc_method", "GetStatus"),
    ];
    let ok: Vec<(&str, &str)> = get_status
        .iter()
        .copied()
        .chain([("grpc_code", "OK")])
        .collect();
    let unauthenticated: Vec<(&str, &str)> = get_status
        .iter()
        .copied()
        .chain([("grpc_code", "Unauthenticated")])
        .collect();
    assert!(
        sum(&after, "grpc_server_handled_total", &ok) >= 1.0,
        "{text}"
    );
    assert_eq!(
        sum(&after, "grpc_server_handled_total", &unauthenticated),
        1.0
    );
    assert_eq!(
        sum(&after, "grpc_server_started_total", &get_status),
        sum(&after, "grpc_server_handled_total", &get_status)
    );
    assert_eq!(
        sum(&after, "grpc_server_handling_seconds_count", &get_status),
        sum(&after, "grpc_server_handled_total", &get_status)
    );
    assert!(has(&after, "grpc_server_handling_seconds_bucket"));
    // What the dashboard and alerts test (tests/contrib.rs) takes as exported is what is served.
    let names = &zdsync::telemetry::metrics().names;
    for sample in &after {
        assert!(
            names.contains(&sample.name),
            "{} is served but not listed",
            sample.name
        );
    }

    common::signal(&child, "TERM");
    let exit = common::wait_exit(&mut child);
    assert!(exit.success(), "{exit}");
    sim.shutdown().await.expect("simulator stops");
}
